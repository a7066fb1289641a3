// bench_gemm.c - GEMM engine: square sizes and the skinny shapes the layers use.
//
// Shape list (--shapes, space or comma separated):  MxNxK[:XYp] or S (= SxSxS)
//   X, Y = n|t  transposes of A and B (default nn);  p = B packed once by
//   gemm_pack_b outside the timed loop (the weights of a layer);  d = the
//   unpacked dot-product path C = A B^T (gemm_nt: a dense layer's forward,
//   B its (n, k) weight as stored; the transposes are ignored).
// A GEMV shape (m = 1) cannot run at the FMA peak: it reads every byte of B
// for two flops.  Its row is followed by one giving B's bytes per second
// against a plain read of a buffer of B's size, split over the same thread
// count with no synchronisation between passes, so "%read" says how close
// the kernel is to what the caches deliver.  A B of 512 KiB
// (1x512x256) is one core's half of an LSTM's W_h (hidden 256) at 2 threads.
// Every row's C (that of its last timed call) is compared with a naive double
// reference (reference.c) on every shape: maxerr is the largest |C - ref|, and
// an element beyond the rounding bound of a k-term sum, gamma_k |A| |B|, fails
// the run (a message on stderr, exit status nonzero).
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "bench_util.h"
#include "reference.h"
#include "timer.h"
#include <omp.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

static const char *const default_shapes =
    // squares
    "32 64 128 256 512 1024 2048 "
    // Dense forward x @ W^T (batch 1, 32, 256; 256->256, 1024->1024)
    "1x256x256:nt 32x256x256:nt 256x256x256:nt 1x1024x1024:nt 32x1024x1024:nt 256x1024x1024:nt "
    // Dense backward: dx = dz @ W, dW = dz^T @ x
    "256x1024x1024:nn 1024x1024x256:tn "
    // Dense forward with prepacked W, RNN step (m = batch, n = 4H, k = H, B prepacked)
    "1x1024x1024:ntp 32x1024x1024:ntp 1x1024x256:nnp 32x1024x256:nnp 64x2048x512:nnp";

typedef struct {
    nnc_ssize m, n, k;
    int ta, tb, packed, dot;
    char label[80];
} gshape;

static int parse_shape(const char *tok, gshape *s)
{
    long m, n, k;
    char flags[8] = "";
    int got = sscanf(tok, "%ldx%ldx%ld:%7s", &m, &n, &k, flags);
    if (got < 3) {
        if (sscanf(tok, "%ld:%7s", &m, flags) < 1) return -1;
        n = k = m;
    }
    if (m < 1 || n < 1 || k < 1) return -1;
    const int dot = strchr(flags, 'd') != NULL;
    *s = (gshape){m, n, k, !dot && flags[0] == 't', dot || (flags[0] && flags[1] == 't'),
                  !dot && strchr(flags, 'p') != NULL, dot, ""};
    snprintf(s->label, sizeof s->label, "%ldx%ldx%ld %s%s", m, n, k,
             s->dot ? "dot" : (s->ta ? (s->tb ? "tt" : "tn") : (s->tb ? "nt" : "nn")), s->packed ? " packed" : "");
    return 0;
}

typedef struct {
    int f64;
    gshape s;
    void *A, *B, *Bp, *C;
} gcase;

#if defined(__x86_64__) && defined(__GNUC__)
// Sums n floats (n a multiple of 64) with 256-bit loads, 8 chains: two loads
// a cycle, more than any cache level below L1 delivers.
__attribute__((target("avx2"), noinline)) static float read_sum(const float *p, size_t n)
{
    __m256 s[8];
    for (int j = 0; j < 8; ++j) s[j] = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 64)
        for (int j = 0; j < 8; ++j) s[j] = _mm256_add_ps(s[j], _mm256_loadu_ps(p + i + 8 * j));
    for (int j = 1; j < 8; ++j) s[0] = _mm256_add_ps(s[0], s[j]);
    float t[8];
    _mm256_storeu_ps(t, s[0]);
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#else
static float read_sum(const float *p, size_t n)
{
    float s = 0;
    for (size_t i = 0; i < n; ++i) s += p[i];
    return s;
}
#endif

// Read bandwidth (GB/s) of `bytes` of buf split over `threads` threads, with
// no synchronisation: in one parallel region each thread reads its part
// 3 times (bringing it into the caches it fits in, as a layer's repeated
// calls do), then `reps` times on its own clock; the slowest thread's best
// pass sets the figure (best, like the kernel's min_ms).
static double read_gbs(const float *buf, size_t bytes, int threads, int reps)
{
    const size_t n = bytes / sizeof(float) / 64 * 64;
    double slowest = 0;
    volatile float sink = 0;
    #pragma omp parallel num_threads(threads) reduction(max : slowest)
    {
        const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        const size_t chunk = (n / nt + 63) / 64 * 64, s = chunk * id < n ? chunk * id : n,
                     e = s + chunk < n ? s + chunk : n;
        float v = 0;
        for (int r = 0; r < 3; ++r) v += read_sum(buf + s, e - s);
        double best = 1e30;
        for (int r = 0; r < reps; ++r) {
            const double t = bench_now();
            v += read_sum(buf + s, e - s);
            best = fmin(best, bench_now() - t);
        }
        slowest = best;
        if (v == 12345.f) sink = v;
    }
    (void)sink;
    return (double)(n * sizeof(float)) / slowest / 1e9;
}

static size_t esize(int f64) { return f64 ? sizeof(double) : sizeof(float); }

static int run_once(const void *ctx)
{
    const gcase *c = ctx;
    const gshape *s = &c->s;
    nnc_ssize lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
    if (s->dot)
        return c->f64 ? nnc_gemm_nt_f64(s->m, s->n, s->k, 1.0, c->A, lda, c->B, ldb, 0.0, c->C, s->n, NULL, 0)
                      : nnc_gemm_nt_f32(s->m, s->n, s->k, 1.0f, c->A, lda, c->B, ldb, 0.0f, c->C, s->n, NULL, 0);
    if (c->f64)
        return s->packed ? nnc_gemm_packed_f64(s->ta, s->m, s->n, s->k, 1.0, c->A, lda, c->Bp, 0.0, c->C, s->n, NULL, 0)
                         : nnc_gemm_f64(s->ta, s->tb, s->m, s->n, s->k, 1.0, c->A, lda, c->B, ldb, 0.0, c->C, s->n,
                                        NULL, 0);
    return s->packed ? nnc_gemm_packed_f32(s->ta, s->m, s->n, s->k, 1.0f, c->A, lda, c->Bp, 0.0f, c->C, s->n, NULL, 0)
                     : nnc_gemm_f32(s->ta, s->tb, s->m, s->n, s->k, 1.0f, c->A, lda, c->B, ldb, 0.0f, c->C, s->n,
                                    NULL, 0);
}

// Packs B for the active ISA (the packed layout is ISA-specific).
static int pack(gcase *c)
{
    if (!c->s.packed) return 0;
    const gshape *s = &c->s;
    nnc_ssize ldb = s->tb ? s->k : s->n;
    nnc_ssize sz = c->f64 ? nnc_gemm_packed_b_size_f64(s->n, s->k) : nnc_gemm_packed_b_size_f32(s->n, s->k);
    free(c->Bp);
    c->Bp = malloc((size_t)sz * esize(c->f64));
    if (!c->Bp) return -1;
    return c->f64 ? nnc_gemm_pack_b_f64(c->Bp, s->tb, s->n, s->k, c->B, ldb)
                  : nnc_gemm_pack_b_f32(c->Bp, s->tb, s->n, s->k, c->B, ldb);
}

static int bench_one(const bench_opts *o, const char *token, int f64)
{
    gshape shape, *s = &shape;
    if (parse_shape(token, s)) {
        fprintf(stderr, "bad gemm shape '%s'\n", token);
        return 2;
    }
    size_t na = (size_t)s->m * s->k, nb = (size_t)s->k * s->n, nc = (size_t)s->m * s->n;
    gcase c = {f64, *s, malloc(na * esize(f64)), malloc(nb * esize(f64)), NULL, calloc(nc, esize(f64))};
    double *ref = malloc(nc * sizeof(double)), *refabs = malloc(nc * sizeof(double));
    double *Ad = malloc(na * sizeof(double)), *Bd = malloc(nb * sizeof(double));
    int status = 0;
    if (!c.A || !c.B || !c.C || !ref || !refabs || !Ad || !Bd) { status = -1; goto done; }
    unsigned seed = 12345;
    bench_fill(c.A, na, f64, &seed);
    bench_fill(c.B, nb, f64, &seed);
    const double flops = 2.0 * (double)s->m * (double)s->n * (double)s->k;
    ref_to_double(Ad, c.A, na, f64);
    ref_to_double(Bd, c.B, nb, f64);
    ref_gemm(s->ta, s->tb, s->m, s->n, s->k, Ad, s->ta ? s->m : s->k, Bd, s->tb ? s->k : s->n, ref, refabs);
    for (int ii = 0; ii < o->n_isas; ++ii) {
        nnc_set_isa(o->isas[ii]);
        if (pack(&c)) { status = -1; goto done; }
        for (int ti = 0; ti < o->n_threads; ++ti) {
            nnc_set_num_threads(o->threads[ti]);
            double times[256];
            const int reps = bench_time(o, run_once, &c, times);
            if (reps < 0) { status = -1; goto done; }
            double err, worst;
            const size_t bad = ref_error_check(c.C, f64, ref, refabs, nc, (double)s->k, &err, &worst);
            if (bad) {
                fprintf(stderr, "gemm %s %s %s %d threads: %zu elements beyond the rounding bound of the "
                        "reference (worst %.1f x the bound, max error %.3e)\n", s->label, f64 ? "f64" : "f32",
                        nnc_isa_name(o->isas[ii]), o->threads[ti], bad, worst, err);
                status = -1;
            }
            bench_print_row(nnc_isa_name(o->isas[ii]), o->threads[ti], f64 ? "f64" : "f32", s->label, flops, times,
                            reps, f64, err);
            if (s->m == 1 && s->packed) {
                const size_t bytes = (size_t)s->k * (size_t)s->n * esize(f64);
                double mn = times[0];
                for (int r = 1; r < reps; ++r) mn = fmin(mn, times[r]);
                const double gbs = (double)bytes / mn / 1e9, rd = read_gbs(c.Bp, bytes, o->threads[ti], 1000);
                printf("%-7s %3d %-4s %-22s B %.0f KiB at %.1f GB/s; a read of as many bytes %.1f GB/s: %.0f%%read\n",
                       nnc_isa_name(o->isas[ii]), o->threads[ti], f64 ? "f64" : "f32", s->label, (double)bytes / 1024,
                       gbs, rd, 100.0 * gbs / rd);
                fflush(stdout);
            }
        }
    }
done:
    if (status) fprintf(stderr, "gemm %s: failed (allocation, kernel status or error bound)\n", s->label);
    free(c.A), free(c.B), free(c.Bp), free(c.C), free(ref), free(refabs), free(Ad), free(Bd);
    return status;
}

static int run_gemm(const bench_opts *o)
{
    bench_print_header();
    return bench_each_shape(o, default_shapes, bench_one);
}

const bench_family bench_gemm = {
    "gemm", "'MxNxK[:XYp] ...' (X,Y = n|t transposes, p = B prepacked) or 'S' for SxSxS", run_gemm};
