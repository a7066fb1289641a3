// bench_pool.c - max and average pooling forward and backward, GB/s of
// compulsory traffic against the copy bandwidth measured in the same run.
//
// Shape list (--shapes, space or comma separated):  NxHxWxC-kKsSpP
//   e.g. 32x112x112x64-k2s2p0 (2x2 pooling of a batch of 112x112x64 maps).
// Traffic: forward reads x and writes y (max in training also writes the
// argmax, counted); backward reads dy (and the argmax) and writes dx.  The
// copy bandwidth is a memcpy of x's bytes split over the same thread count
// (OpenMP), so "%copy" compares like with like.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "bench.h"
#include "bench_util.h"
#include "timer.h"

static const char *const default_shapes = "32x112x112x64-k2s2p0 32x56x56x64-k3s2p1";

static int parse_shape(const char *tok, nnc_pool_desc *p)
{
    long n, h, w, c, k, st, pad;
    if (sscanf(tok, "%ldx%ldx%ldx%ld-k%lds%ldp%ld", &n, &h, &w, &c, &k, &st, &pad) != 7) return -1;
    if (n < 1 || h < 1 || w < 1 || c < 1 || k < 1 || st < 1 || pad < 0 || pad > k / 2) return -1;
    *p = (nnc_pool_desc){n, h, w, c, (h + 2 * pad - k) / st + 1, (w + 2 * pad - k) / st + 1,
                         k, k, st, st, pad, pad};
    return p->oh >= 1 && p->ow >= 1 ? 0 : -1;
}

// Copy bandwidth (GB/s, read + write) of `bytes` on `threads` threads.
static double copy_gbs(char *dst, const char *src, size_t bytes, int threads, int reps)
{
    double best = 1e30;
    for (int r = 0; r <= reps; ++r) {
        double t = bench_now();
        #pragma omp parallel num_threads(threads)
        {
            const int nt = omp_get_num_threads(), id = omp_get_thread_num();
            const size_t chunk = (bytes / (size_t)nt + 63) & ~(size_t)63;
            const size_t s = chunk * (size_t)id < bytes ? chunk * (size_t)id : bytes;
            const size_t e = s + chunk < bytes ? s + chunk : bytes;
            memcpy(dst + s, src + s, e - s);
        }
        t = bench_now() - t;
        if (r && t < best) best = t;   // r = 0 warms up
    }
    return 2.0 * (double)bytes / best / 1e9;
}

enum { MAX_FWD, MAX_TRAIN, MAX_BWD, AVG_FWD, AVG_BWD, NPASS };
static const char *const pass_name[NPASS] = {"max fwd", "max fwd+idx", "max bwd", "avg fwd", "avg bwd"};

typedef struct {
    int f64, pass;
    const nnc_pool_desc *p;
    void *x, *y, *idx, *dy, *dx;
} pcase;

static int run_pass(const void *ctx)
{
    const pcase *c = ctx;
    const nnc_pool_desc *p = c->p;
    switch (c->pass) {
    case MAX_FWD: return c->f64 ? nnc_maxpool2d_fwd_f64(c->y, NULL, c->x, p) : nnc_maxpool2d_fwd_f32(c->y, NULL, c->x, p);
    case MAX_TRAIN: return c->f64 ? nnc_maxpool2d_fwd_f64(c->y, c->idx, c->x, p) : nnc_maxpool2d_fwd_f32(c->y, c->idx, c->x, p);
    case MAX_BWD: return c->f64 ? nnc_maxpool2d_bwd_f64(c->dx, c->dy, c->idx, p) : nnc_maxpool2d_bwd_f32(c->dx, c->dy, c->idx, p);
    case AVG_FWD: return c->f64 ? nnc_avgpool2d_fwd_f64(c->y, c->x, p) : nnc_avgpool2d_fwd_f32(c->y, c->x, p);
    default: return c->f64 ? nnc_avgpool2d_bwd_f64(c->dx, c->dy, p) : nnc_avgpool2d_bwd_f32(c->dx, c->dy, p);
    }
}

static int bench_one(const bench_opts *o, const char *label, int f64)
{
    nnc_pool_desc pool, *p = &pool;
    if (parse_shape(label, p)) {
        fprintf(stderr, "bad pool shape '%s'\n", label);
        return 2;
    }
    const size_t es = f64 ? sizeof(double) : sizeof(float);
    const size_t bx = (size_t)(p->n * p->h * p->w * p->c) * es, by = (size_t)(p->n * p->oh * p->ow * p->c) * es;
    pcase c = {f64, MAX_FWD, p, malloc(bx), malloc(by), malloc(by), malloc(by), malloc(bx)};
    char *cp = malloc(bx);
    int status = 0;
    if (!c.x || !c.y || !c.idx || !c.dy || !c.dx || !cp) { status = -1; goto done; }
    unsigned seed = 12345;
    bench_fill(c.x, bx / es, f64, &seed);
    bench_fill(c.dy, by / es, f64, &seed);
    memset(cp, 0, bx);
    const double traffic[NPASS] = {(double)(bx + by), (double)(bx + 2 * by), (double)(2 * by + bx),
                                   (double)(bx + by), (double)(by + bx)};
    for (int ii = 0; ii < o->n_isas; ++ii) {
        nnc_set_isa(o->isas[ii]);
        for (int ti = 0; ti < o->n_threads; ++ti) {
            const int thr = o->threads[ti];
            nnc_set_num_threads(thr);
            const double copy = copy_gbs(cp, c.x, bx, thr, o->reps);
            printf("%-7s %3d %-4s %-34s copy bandwidth %.1f GB/s\n", nnc_isa_name(o->isas[ii]), thr,
                   f64 ? "f64" : "f32", label, copy);
            for (int pass = 0; pass < NPASS; ++pass) {
                double times[256];
                c.pass = MAX_TRAIN;   // max bwd reads the argmax of a training forward
                if (pass == MAX_BWD && run_pass(&c)) { status = -1; goto done; }
                c.pass = pass;
                const int reps = bench_time(o, run_pass, &c, times);
                if (reps < 0) { status = -1; goto done; }
                const double med = bench_median(times, reps), gbs = traffic[pass] / times[0] / 1e9;
                printf("%-7s %3d %-4s %-22s %-11s %10.4f %10.4f %8.1f GB/s %5.0f%% of copy\n",
                       nnc_isa_name(o->isas[ii]), thr, f64 ? "f64" : "f32", label, pass_name[pass], 1e3 * times[0],
                       1e3 * med, gbs, 100.0 * gbs / copy);
                fflush(stdout);
            }
        }
    }
done:
    if (status) fprintf(stderr, "pool %s: allocation or kernel failure\n", label);
    free(c.x), free(c.y), free(c.idx), free(c.dy), free(c.dx), free(cp);
    return status;
}

static int run_pool(const bench_opts *o)
{
    printf("%-7s %3s %-4s %-22s %-11s %10s %10s %13s\n", "isa", "thr", "dt", "shape", "pass", "min_ms", "med_ms",
           "traffic");
    return bench_each_shape(o, default_shapes, bench_one);
}

const bench_family bench_pool = {"pool", "'NxHxWxC-kKsSpP ...' (e.g. 32x112x112x64-k2s2p0)", run_pool};
