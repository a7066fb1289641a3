// bench.h - what every bench_<family>.c sees: the run options and the
// registry entry type.  A family adds one `bench_family bench_<fam>` and
// one line in bench_main.c's table.
#ifndef NNC_BENCH_H
#define NNC_BENCH_H
#include "nnc/nnc.h"

typedef struct {
    int isas[NNC_ISA_COUNT];   // ISA ids to run, in order
    int n_isas;
    int threads[8];            // thread counts to run
    int n_threads;
    int f32, f64;              // dtypes to run
    int reps;                  // timed repetitions (after one warm-up)
    const char *shapes;        // family-specific shape list, or NULL for its default
} bench_opts;

typedef struct {
    const char *name;          // --family value
    const char *shape_help;    // format of --shapes for this family
    int (*run)(const bench_opts *o);
} bench_family;

// Times fn(ctx) after one warm-up call: o->reps calls (at most 256; fewer
// once 3 s have passed and 3 are done), seconds into times.  Returns the
// count, or -1 (after a message on stderr) when any call returns a nonzero
// status.  Records the OpenMP team sizes the timed calls used, which the
// next bench_print_row shows.
int bench_time(const bench_opts *o, int (*fn)(const void *ctx), const void *ctx, double *times);
// Threads the last bench_time's timed calls ran on: "2", or "1-2" when calls differed.
const char *bench_used_threads(void);
// Calls one(o, token, f64) for every token of o->shapes (default: defaults)
// and each selected dtype; one() returns 0, -1 (failure) or 2 (bad token:
// stops).  Restores the ISA; returns the statuses OR-ed.
int bench_each_shape(const bench_opts *o, const char *defaults,
                     int (*one)(const bench_opts *o, const char *token, int f64));

// Prints the table header and one result row (shared by every family): %peak
// against the peak measured at start-up for that ISA and thread count, and
// the threads the timed calls used (bench_time).
void bench_print_header(void);
void bench_print_row(const char *isa, int threads, const char *dtype, const char *shape, double flops,
                     const double *times, int reps, int is_f64, double max_err);

// Measured float32 peak (GFLOP/s) of `threads` threads running the ISA's
// multiply-add instructions (fma_peak.c); 0 where it cannot be measured.
double bench_fma_peak(int isa, int threads);
// Largest OpenMP team of a library parallel region since bench_team_reset
// (1 when there was none), omp_team.c.
void bench_team_reset(void);
int bench_team_max(void);
#endif
