// bench_main.c - nnc C benchmark driver: options, family registry, output.
//
//   nnc_bench [--family gemm] [--isa all|scalar|avx2|avx512[,..]] [--threads 1,2]
//             [--dtype f32|f64|both] [--reps N] [--shapes LIST]
//
// Each row: ISA, threads, dtype, shape, min and median ms over the timed
// repetitions, GFLOP/s at the minimum, % of the FMA peak of that many cores
// (BENCH_PEAK_F32_GFLOPS per core, half for float64), and the max abs error
// against the scalar path.  The header also shows the single-core FMA peak
// measured on this machine.
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "timer.h"

extern const bench_family bench_gemm, bench_conv, bench_pool;
// Other families add a bench_<fam>.c and an entry here.
static const bench_family *const families[] = {&bench_gemm, &bench_conv, &bench_pool};
#define N_FAMILIES ((int)(sizeof families / sizeof families[0]))

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
// 12 independent FMA chains of 8 floats: enough to fill both Zen 4 FMA pipes.
__attribute__((target("avx2,fma"), noinline)) static double fma_peak_gflops(void)
{
    if (!nnc_isa_supported(NNC_ISA_AVX2)) return 0;
    __m256 acc[12], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps((float)i);
    const long iters = 20000000;
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
        double t = bench_now();
        for (long it = 0; it < iters; ++it)
            for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
        t = bench_now() - t;
        double g = 12.0 * 8 * 2 * (double)iters / t / 1e9;
        if (g > best) best = g;
    }
    float sink[8];
    __m256 s = acc[0];
    for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
    _mm256_storeu_ps(sink, s);
    return sink[0] == 12345.f ? 0 : best;
}
#else
static double fma_peak_gflops(void) { return 0; }
#endif

int bench_time(const bench_opts *o, int (*fn)(const void *ctx), const void *ctx, double *times)
{
    if (fn(ctx)) return -1;
    int reps = 0;
    double total = 0;
    while (reps < o->reps && reps < 256 && !(reps >= 3 && total > 3.0)) {
        double t = bench_now();
        fn(ctx);
        times[reps] = bench_now() - t;
        total += times[reps++];
    }
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

void bench_print_header(void)
{
    printf("%-7s %3s %-4s %-22s %10s %10s %9s %7s %10s\n", "isa", "thr", "dt", "shape", "min_ms", "med_ms",
           "GFLOP/s", "%peak", "maxerr");
}

void bench_print_row(const char *isa, int threads, const char *dtype, const char *shape, double flops,
                     const double *times, int reps, int is_f64, double max_err)
{
    double t[256];
    int n = reps < 256 ? reps : 256;
    memcpy(t, times, sizeof(double) * (size_t)n);
    double med = bench_median(t, n), mn = t[0];
    double gf = flops / mn / 1e9;
    double peak = BENCH_PEAK_F32_GFLOPS * threads * (is_f64 ? 0.5 : 1.0);
    printf("%-7s %3d %-4s %-22s %10.4f %10.4f %9.1f %6.1f%% %10.2e\n", isa, threads, dtype, shape, 1e3 * mn,
           1e3 * med, gf, 100.0 * gf / peak, max_err);
    fflush(stdout);
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
    if (peak) {
        printf("# reference peak %.0f GFLOP/s f32 per core; measured single-core FMA peak (AVX2): %.1f GFLOP/s\n",
               BENCH_PEAK_F32_GFLOPS, fma_peak_gflops());
    }
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
