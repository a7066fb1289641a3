// bench.h - what every bench_<family>.c sees: the run options and the
// registry entry type.  A family adds one `bench_family bench_<fam>` and
// one line in bench_main.c's table.
#ifndef NNC_BENCH_H
#define NNC_BENCH_H
#include "nnc/nnc.h"

// Single-core FMA peak of the reference machine (Zen 4: AVX2 and AVX-512
// alike), float32; float64 is half.
#define BENCH_PEAK_F32_GFLOPS 117.0

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
// count, or -1 when the warm-up call fails.
int bench_time(const bench_opts *o, int (*fn)(const void *ctx), const void *ctx, double *times);
// Calls one(o, token, f64) for every token of o->shapes (default: defaults)
// and each selected dtype; one() returns 0, -1 (failure) or 2 (bad token:
// stops).  Restores the ISA; returns the statuses OR-ed.
int bench_each_shape(const bench_opts *o, const char *defaults,
                     int (*one)(const bench_opts *o, const char *token, int f64));

// Prints the table header and one result row (shared by every family).
void bench_print_header(void);
void bench_print_row(const char *isa, int threads, const char *dtype, const char *shape, double flops,
                     const double *times, int reps, int is_f64, double max_err);
#endif
