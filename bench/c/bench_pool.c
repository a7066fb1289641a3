// bench_pool.c - max and average pooling forward and backward, GB/s of
// compulsory traffic against the copy bandwidth measured in the same run.
//
// Shape list (--shapes, space or comma separated):  NxHxWxC-kKsSpP
//   e.g. 32x112x112x64-k2s2p0 (2x2 pooling of a batch of 112x112x64 maps).
// Traffic: forward reads x and writes y (max in training also writes the
// argmax, counted); backward reads dy (and the argmax) and writes dx.  The
// copy bandwidth is a memcpy of x's bytes split over the same thread count
// (OpenMP), so "%copy" compares like with like.  Every row's output (y, or dx
// for the backward passes) is compared with the naive double references
// (reference.c): maxerr is the largest |out - ref|, and an element beyond its
// bound fails the run (pool_references: max exact, average within a few ulps).
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "bench.h"
#include "bench_util.h"
#include "reference.h"
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

// References of the pool passes, computed once per shape from the double inputs: the reference of the
// pass's output (y or dx), the absolute values its bound scales (NULL: |ref|) and the reduction length k
// of the bound (reference.h's ref_error_check; 0: exact).
typedef struct {
    double *ymax, *dxmax, *dxmax_abs, *yavg, *yavg_abs, *dxavg, *dxavg_abs;
    double k[NPASS];
} prefs;

static void free_refs(prefs *r)
{
    free(r->ymax), free(r->dxmax), free(r->dxmax_abs), free(r->yavg), free(r->yavg_abs), free(r->dxavg);
    free(r->dxavg_abs);
}

// Fills r for problem p and inputs x (nx), dy (ny): max forward exact (a selection); max backward a sum
// over the m = ceil(kh/sh) ceil(kw/sw) windows that can pick one cell (exact when windows do not
// overlap: m = 1), of |dy| terms; average forward a kh kw-term sum and a division; average backward m
// terms, each divided, summed.
static int pool_references(const nnc_pool_desc *p, const void *x, const void *dy, int f64, prefs *r)
{
    const ref_pool g = {p->n, p->h, p->w, p->c, p->oh, p->ow, p->kh, p->kw, p->sh, p->sw, p->ph, p->pw};
    const size_t nx = (size_t)(p->n * p->h * p->w * p->c), ny = (size_t)(p->n * p->oh * p->ow * p->c);
    const long m = (p->kh + p->sh - 1) / p->sh * ((p->kw + p->sw - 1) / p->sw);
    double *xd = malloc(nx * sizeof(double)), *dyd = malloc(ny * sizeof(double));
    *r = (prefs){malloc(ny * sizeof(double)), malloc(nx * sizeof(double)), m > 1 ? malloc(nx * sizeof(double)) : NULL,
                 malloc(ny * sizeof(double)), malloc(ny * sizeof(double)), malloc(nx * sizeof(double)),
                 malloc(nx * sizeof(double)), {0, 0, (double)(m - 1), (double)(p->kh * p->kw + 1), (double)(m + 1)}};
    int status = !xd || !dyd || !r->ymax || !r->dxmax || (m > 1 && !r->dxmax_abs) || !r->yavg || !r->yavg_abs ||
                 !r->dxavg || !r->dxavg_abs ? -1 : 0;
    if (!status) {
        ref_to_double(xd, x, nx, f64), ref_to_double(dyd, dy, ny, f64);
        ref_maxpool_fwd(&g, xd, r->ymax);
        ref_maxpool_bwd(&g, xd, dyd, r->dxmax);
        ref_avgpool_fwd(&g, xd, r->yavg);
        ref_avgpool_bwd(&g, dyd, r->dxavg);
        for (size_t i = 0; i < ny; ++i) dyd[i] = fabs(dyd[i]);
        if (m > 1) ref_maxpool_bwd(&g, xd, dyd, r->dxmax_abs);   // the cells x picks, |dy| summed
        ref_avgpool_bwd(&g, dyd, r->dxavg_abs);
        for (size_t i = 0; i < nx; ++i) xd[i] = fabs(xd[i]);
        ref_avgpool_fwd(&g, xd, r->yavg_abs);
    }
    free(xd), free(dyd);
    return status;
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
    prefs r = {0};
    int status = 0;
    if (!c.x || !c.y || !c.idx || !c.dy || !c.dx || !cp) { status = -1; goto done; }
    unsigned seed = 12345;
    bench_fill(c.x, bx / es, f64, &seed);
    bench_fill(c.dy, by / es, f64, &seed);
    memset(cp, 0, bx);
    if (pool_references(p, c.x, c.dy, f64, &r)) { status = -1; goto done; }
    const double traffic[NPASS] = {(double)(bx + by), (double)(bx + 2 * by), (double)(2 * by + bx),
                                   (double)(bx + by), (double)(by + bx)};
    const double *const ref[NPASS] = {r.ymax, r.ymax, r.dxmax, r.yavg, r.dxavg};
    const double *const abs[NPASS] = {NULL, NULL, r.dxmax_abs, r.yavg_abs, r.dxavg_abs};
    for (int ii = 0; ii < o->n_isas; ++ii) {
        nnc_set_isa(o->isas[ii]);
        for (int ti = 0; ti < o->n_threads; ++ti) {
            const int thr = o->threads[ti];
            nnc_set_num_threads(thr);
            const double copy = copy_gbs(cp, c.x, bx, thr, o->reps);
            printf("%-7s %3d %4s %-4s %-34s copy bandwidth %.1f GB/s\n", nnc_isa_name(o->isas[ii]), thr, "",
                   f64 ? "f64" : "f32", label, copy);
            for (int pass = 0; pass < NPASS; ++pass) {
                double times[256];
                c.pass = MAX_TRAIN;   // max bwd reads the argmax of a training forward
                if (pass == MAX_BWD && run_pass(&c)) { status = -1; goto done; }
                c.pass = pass;
                const int reps = bench_time(o, run_pass, &c, times);
                if (reps < 0) { status = -1; goto done; }
                const double med = bench_median(times, reps), gbs = traffic[pass] / times[0] / 1e9;
                const int on_dx = pass == MAX_BWD || pass == AVG_BWD;
                const size_t n = (on_dx ? bx : by) / es;
                double err, worst;
                const size_t bad = ref_error_check(on_dx ? c.dx : c.y, f64, ref[pass], abs[pass], n, r.k[pass],
                                                   &err, &worst);
                if (bad) {
                    fprintf(stderr, "pool %s %s %s %s %d threads: %zu of %zu elements beyond the bound of the "
                            "reference (k = %.0f; worst %.1f x the bound, max error %.3e)\n", label,
                            pass_name[pass], f64 ? "f64" : "f32", nnc_isa_name(o->isas[ii]), thr, bad, n,
                            r.k[pass], worst, err);
                    status = -1;
                }
                printf("%-7s %3d %4s %-4s %-22s %-11s %10.4f %10.4f %8.1f GB/s %5.0f%% of copy %10.2e\n",
                       nnc_isa_name(o->isas[ii]), thr, bench_used_threads(), f64 ? "f64" : "f32", label,
                       pass_name[pass], 1e3 * times[0], 1e3 * med, gbs, 100.0 * gbs / copy, err);
                fflush(stdout);
            }
        }
    }
done:
    if (status) fprintf(stderr, "pool %s: failed (allocation, kernel status or error bound)\n", label);
    free(c.x), free(c.y), free(c.idx), free(c.dy), free(c.dx), free(cp);
    free_refs(&r);
    return status;
}

static int run_pool(const bench_opts *o)
{
    printf("%-7s %3s %4s %-4s %-22s %-11s %10s %10s %13s %14s %10s\n", "isa", "thr", "used", "dt", "shape", "pass",
           "min_ms", "med_ms", "traffic", "", "maxerr");
    return bench_each_shape(o, default_shapes, bench_one);
}

const bench_family bench_pool = {"pool", "'NxHxWxC-kKsSpP ...' (e.g. 32x112x112x64-k2s2p0)", run_pool};
