// bench_main.c - nnc C benchmark driver: options, family registry, output.
//
//   nnc_bench [--family gemm] [--isa all|scalar|avx2|avx512[,..]] [--threads 1,2]
//             [--dtype f32|f64|both] [--reps N] [--shapes LIST] [--no-peak]
//
// At start-up: a self-test of the naive references (reference_test.c), then
// the peak of every ISA and thread count asked for, measured (fma_peak.c) and
// printed in the header (--no-peak skips it: %peak then shows "-").  Each
// row: ISA, threads asked for, threads the timed calls used (the OpenMP team
// size of the library's parallel regions, the largest of a call; "1-2" when
// calls differed; omp_team.c), dtype, shape, min and median ms over the timed
// repetitions, GFLOP/s at the minimum, % of the measured peak of that ISA and
// thread count, and the max abs error against a reference (see each family).
// A call returning a nonzero status fails the run.
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "reference.h"
#include "timer.h"

extern const bench_family bench_gemm, bench_conv, bench_pool;
// Other families add a bench_<fam>.c and an entry here.
static const bench_family *const families[] = {&bench_gemm, &bench_conv, &bench_pool};
#define N_FAMILIES ((int)(sizeof families / sizeof families[0]))

// Measured float32 peaks (GFLOP/s) per ISA and thread count of peak_threads; 0 = not measured.
static double peak_gflops[NNC_ISA_COUNT][8];
static int peak_threads[8], n_peak_threads;
// Threads the last bench_time's timed calls used: the least and the most of any call.
static int used_min = 1, used_max = 1;

int bench_time(const bench_opts *o, int (*fn)(const void *ctx), const void *ctx, double *times)
{
    int rc = fn(ctx);
    if (rc) {
        fprintf(stderr, "bench: the warm-up call returned status %d\n", rc);
        return -1;
    }
    int reps = 0;
    double total = 0;
    used_min = 1 << 30, used_max = 1;
    while (reps < o->reps && reps < 256 && !(reps >= 3 && total > 3.0)) {
        bench_team_reset();
        double t = bench_now();
        rc = fn(ctx);
        times[reps] = bench_now() - t;
        if (rc) {
            fprintf(stderr, "bench: timed call %d returned status %d\n", reps + 1, rc);
            return -1;
        }
        const int used = bench_team_max();
        used_min = used < used_min ? used : used_min;
        used_max = used > used_max ? used : used_max;
        total += times[reps++];
    }
    if (used_min > used_max) used_min = used_max;
    return reps;
}

int bench_each_shape(const bench_opts *o, const char *defaults,
                     int (*one)(const bench_opts *o, const char *token, int f64))
{
    char *list = strdup(o->shapes ? o->shapes : defaults);
    if (!list) return -1;
    int status = 0, isa0 = nnc_get_isa();
    for (char *tok = strtok(list, " ,"); tok && status != 2; tok = strtok(NULL, " ,")) {
        if (o->f32) status |= one(o, tok, 0);
        if (o->f64 && status != 2) status |= one(o, tok, 1);
    }
    nnc_set_isa(isa0);
    free(list);
    return status;
}

const char *bench_used_threads(void)
{
    static char used[24];
    if (used_min == used_max) snprintf(used, sizeof used, "%d", used_max);
    else snprintf(used, sizeof used, "%d-%d", used_min, used_max);
    return used;
}

void bench_print_header(void)
{
    printf("%-7s %3s %4s %-4s %-22s %10s %10s %9s %7s %10s\n", "isa", "thr", "used", "dt", "shape", "min_ms",
           "med_ms", "GFLOP/s", "%peak", "maxerr");
}

// Measured peak (GFLOP/s) of the ISA named isa on `threads` threads, float64 when is_f64; 0 if not measured.
static double peak_of(const char *isa, int threads, int is_f64)
{
    for (int i = 0; i < NNC_ISA_COUNT; ++i)
        for (int t = 0; t < n_peak_threads; ++t)
            if (!strcmp(isa, nnc_isa_name(i)) && peak_threads[t] == threads)
                return peak_gflops[i][t] * (is_f64 ? 0.5 : 1.0);
    return 0;
}

void bench_print_row(const char *isa, int threads, const char *dtype, const char *shape, double flops,
                     const double *times, int reps, int is_f64, double max_err)
{
    double t[256];
    int n = reps < 256 ? reps : 256;
    memcpy(t, times, sizeof(double) * (size_t)n);
    double med = bench_median(t, n), mn = t[0];
    double gf = flops / mn / 1e9, peak = peak_of(isa, threads, is_f64);
    char pct[24];
    if (peak > 0) snprintf(pct, sizeof pct, "%6.1f%%", 100.0 * gf / peak);
    else snprintf(pct, sizeof pct, "-");
    printf("%-7s %3d %4s %-4s %-22s %10.4f %10.4f %9.1f %7s %10.2e\n", isa, threads, bench_used_threads(), dtype,
           shape, 1e3 * mn, 1e3 * med, gf, pct, max_err);
    fflush(stdout);
}

// Measures and prints the peak of every ISA and thread count of o.
static void measure_peaks(const bench_opts *o)
{
    n_peak_threads = o->n_threads;
    memcpy(peak_threads, o->threads, sizeof peak_threads);
    printf("# peak measured at start-up, GFLOP/s float32 (float64: half), per ISA and thread count:");
    for (int i = 0; i < o->n_isas; ++i) {
        const int isa = o->isas[i];
        printf("%s %s%s", i ? ";" : "", nnc_isa_name(isa), isa == NNC_ISA_SCALAR ? " (SSE2 mul+add)" : " (FMA)");
        for (int t = 0; t < o->n_threads; ++t) {
            peak_gflops[isa][t] = bench_fma_peak(isa, o->threads[t]);
            printf(" %dT %.1f", o->threads[t], peak_gflops[isa][t]);
        }
    }
    printf("\n# used = threads the timed calls ran on (OpenMP team size; a kernel below its threading threshold "
           "uses 1)\n");
}

static void usage(void)
{
    printf("usage: nnc_bench [--family NAME] [--isa all|scalar|avx2|avx512[,...]] [--threads 1,2]\n"
           "                 [--dtype f32|f64|both] [--reps N] [--shapes LIST] [--no-peak]\n"
           "families:\n");
    for (int i = 0; i < N_FAMILIES; ++i) printf("  %-8s --shapes %s\n", families[i]->name, families[i]->shape_help);
}

static int parse_isas(const char *s, bench_opts *o)
{
    o->n_isas = 0;
    if (!strcmp(s, "all")) {
        for (int i = 0; i < NNC_ISA_COUNT; ++i)
            if (nnc_isa_supported(i)) o->isas[o->n_isas++] = i;
        return 0;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int found = -1;
        for (int i = 0; i < NNC_ISA_COUNT; ++i)
            if (!strcmp(tok, nnc_isa_name(i))) found = i;
        if (found < 0 || !nnc_isa_supported(found) || o->n_isas == NNC_ISA_COUNT) {
            fprintf(stderr, "unknown or unsupported ISA '%s'\n", tok);
            return -1;
        }
        o->isas[o->n_isas++] = found;
    }
    return 0;
}

static int parse_threads(const char *s, bench_opts *o)
{
    o->n_threads = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int t = atoi(tok);
        if (t < 1 || o->n_threads == 8) return -1;
        o->threads[o->n_threads++] = t;
    }
    return o->n_threads ? 0 : -1;
}

int main(int argc, char **argv)
{
    nnc_init();
    nnc_stall_threshold_ns(0);   // kernel speed at the thread count asked for, never the stall guard's

    bench_opts o = {.n_isas = 0, .threads = {1, 2}, .n_threads = 2, .f32 = 1, .f64 = 0, .reps = 10};
    parse_isas("all", &o);
    const char *family = NULL;
    int peak = 1;
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(); return 0; }
        else if (!strcmp(a, "--no-peak")) { peak = 0; continue; }
        else if (!v) bad = 1;
        else if (!strcmp(a, "--family")) family = v;
        else if (!strcmp(a, "--isa")) bad = parse_isas(v, &o);
        else if (!strcmp(a, "--threads")) bad = parse_threads(v, &o);
        else if (!strcmp(a, "--reps")) bad = (o.reps = atoi(v)) < 1;
        else if (!strcmp(a, "--shapes")) o.shapes = v;
        else if (!strcmp(a, "--dtype")) {
            o.f32 = !strcmp(v, "f32") || !strcmp(v, "both");
            o.f64 = !strcmp(v, "f64") || !strcmp(v, "both");
            bad = !o.f32 && !o.f64;
        } else bad = 1;
        if (bad) { fprintf(stderr, "bad option %s %s\n", a, v ? v : ""); usage(); return 2; }
        ++i;
    }
    if (ref_self_test()) return 1;
    printf("# reference self-test passed (naive double references: GEMM, conv, pool)\n");
    const nnc_cpu_model *cpu = nnc_cpu();
    printf("# cpu: %s family 0x%x model 0x%x; row %s (NNC_CPU to force): L1d %d KiB, L2 %d KiB, "
           "L3 share %d KiB, 512-bit FMA pipes %d\n",
           cpu->vendor, cpu->family, cpu->model, cpu->row, cpu->l1d_kib, cpu->l2_kib, cpu->l3_kib,
           cpu->fma512_pipes);
    if (peak) measure_peaks(&o);
    int status = 0, ran = 0;
    for (int i = 0; i < N_FAMILIES; ++i) {
        if (family && strcmp(family, families[i]->name)) continue;
        printf("# family %s\n", families[i]->name);
        status |= families[i]->run(&o);
        ran = 1;
    }
    if (!ran) { fprintf(stderr, "unknown family %s\n", family); return 2; }
    return status;
}
