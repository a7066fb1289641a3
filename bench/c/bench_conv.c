// bench_conv.c - Conv2D (NHWC, HWIO): forward, dx and dW+db of each shape.
//
// Shape list (--shapes, space or comma separated):  NxHxWxC-K:kKsSpP[gG]
//   batch N, input H x W x C, K output channels, a K x K kernel, stride S,
//   padding P on every side, G groups (default 1).  GFLOP/s count every
//   kernel tap (2*N*OH*OW*K*KH*KW*C/G per pass), as the Python benchmarks do.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "timer.h"

static const char *const default_shapes =
    // issue #3's workloads: ResNet 3x3, 7x7/2 first layer, batch-1 3x3 first layer, depthwise
    "32x56x56x64-64:k3s1p1 1x224x224x3-64:k7s2p3 1x32x32x3-32:k3s1p1 32x56x56x128-128:k3s1p1g128 "
    // the demo CNN: DenseBlock layers (few output channels) and the residual conv
    "64x16x16x16-8:k3s1p1 64x16x16x24-8:k3s1p1 64x32x32x16-16:k3s1p1";

typedef struct {
    nnc_conv_params p;
    char label[64];
} cshape;

static int parse_shape(const char *tok, cshape *s)
{
    long n, h, w, c, k, ks, st, pd, g = 1;
    if (sscanf(tok, "%ldx%ldx%ldx%ld-%ld:k%lds%ldp%ldg%ld", &n, &h, &w, &c, &k, &ks, &st, &pd, &g) < 8) return -1;
    if (n < 1 || h < 1 || w < 1 || c < 1 || k < 1 || ks < 1 || st < 1 || pd < 0 || g < 1 || c % g || k % g)
        return -1;
    nnc_conv_params p = {n, h, w, c, k, ks, ks, st, st, 1, 1, pd, pd, pd, pd, g, 0, 0, c, k};
    p.OH = (h + 2 * pd - ks) / st + 1;
    p.OW = (w + 2 * pd - ks) / st + 1;
    if (h + 2 * pd < ks || w + 2 * pd < ks || n > 99999 || h > 99999 || w > 99999 || c > 99999 || k > 99999 ||
        ks > 999 || st > 999)
        return -1;
    s->p = p;
    snprintf(s->label, sizeof s->label, "%dx%dx%dx%d-%d k%d/%d%s", (int)n, (int)h, (int)w, (int)c, (int)k, (int)ks,
             (int)st, g > 1 ? " g" : "");
    return 0;
}

static size_t esize(int f64) { return f64 ? sizeof(double) : sizeof(float); }

static void fill(void *p, size_t n, int f64, unsigned *seed)
{
    for (size_t i = 0; i < n; ++i) {
        *seed = *seed * 1664525u + 1013904223u;
        double v = (double)(*seed >> 8) / (double)(1u << 24) * 2.0 - 1.0;
        if (f64) ((double *)p)[i] = v;
        else ((float *)p)[i] = (float)v;
    }
}

static double get(const void *p, size_t i, int f64) { return f64 ? ((const double *)p)[i] : ((const float *)p)[i]; }

// pass 0: y = conv(x, W) + b;  1: dx;  2: dW and db
static int run_pass(int pass, const nnc_conv_params *p, int f64, void *x, void *W, void *b, void *y, void *dW,
                    void *db)
{
    if (f64) {
        if (pass == 0) return nnc_conv_fwd_f64(p, x, W, b, NNC_ACT_LINEAR, y);
        if (pass == 1) return nnc_conv_bwd_data_f64(p, y, W, x, 0);
        return nnc_conv_bwd_filter_f64(p, x, y, dW, db);
    }
    if (pass == 0) return nnc_conv_fwd_f32(p, x, W, b, NNC_ACT_LINEAR, y);
    if (pass == 1) return nnc_conv_bwd_data_f32(p, y, W, x, 0);
    return nnc_conv_bwd_filter_f32(p, x, y, dW, db);
}

static int bench_one(const bench_opts *o, const cshape *s, int f64)
{
    const nnc_conv_params *p = &s->p;
    const size_t nx = (size_t)(p->N * p->H * p->W * p->C), ny = (size_t)(p->N * p->OH * p->OW * p->K);
    const size_t nw = (size_t)(p->KH * p->KW * (p->C / p->groups) * p->K);
    // x is overwritten by dx and y read as dz, so each pass gets fresh copies of its inputs
    void *x = malloc(nx * esize(f64)), *x0 = malloc(nx * esize(f64)), *W = malloc(nw * esize(f64));
    void *b = malloc((size_t)p->K * esize(f64)), *y = malloc(ny * esize(f64)), *dW = malloc(nw * esize(f64));
    void *db = malloc((size_t)p->K * esize(f64));
    size_t nout[3] = {ny, nx, nw};
    double *ref = malloc((ny > nx ? (ny > nw ? ny : nw) : (nx > nw ? nx : nw)) * sizeof(double));
    int status = 0;
    if (!x || !x0 || !W || !b || !y || !dW || !db || !ref) { status = -1; goto done; }
    unsigned seed = 12345;
    fill(x0, nx, f64, &seed);
    fill(W, nw, f64, &seed);
    fill(b, (size_t)p->K, f64, &seed);
    const double flops = 2.0 * (double)(p->N * p->OH * p->OW * p->K) * (double)(p->KH * p->KW * (p->C / p->groups));
    static const char *const names[3] = {"fwd", "dx", "dW"};
    for (int pass = 0; pass < 3; ++pass) {
        void *outp[3] = {y, x, dW};
        char label[80];
        snprintf(label, sizeof label, "%s %s", names[pass], s->label);
        // inputs: x for fwd/dW, y (as dz) for dx/dW: a forward on the scalar path
        memcpy(x, x0, nx * esize(f64));
        nnc_set_isa(NNC_ISA_SCALAR);
        nnc_set_num_threads(o->threads[o->n_threads - 1]);
        if (pass > 0 && run_pass(0, p, f64, x, W, b, y, dW, db)) { status = -1; goto done; }
        // reference: the scalar path (skipped when it would take long)
        const int have_ref = flops <= 2.5e9;
        if (have_ref) {
            if (run_pass(pass, p, f64, x, W, b, y, dW, db)) { status = -1; goto done; }
            for (size_t i = 0; i < nout[pass]; ++i) ref[i] = get(outp[pass], i, f64);
        }
        for (int ii = 0; ii < o->n_isas; ++ii) {
            nnc_set_isa(o->isas[ii]);
            for (int ti = 0; ti < o->n_threads; ++ti) {
                nnc_set_num_threads(o->threads[ti]);
                double times[256], t_total = 0;
                if (run_pass(pass, p, f64, x, W, b, y, dW, db)) { status = -1; goto done; }   // warm-up
                int reps = 0;
                while (reps < o->reps && reps < 256 && !(reps >= 3 && t_total > 3.0)) {
                    double t = bench_now();
                    run_pass(pass, p, f64, x, W, b, y, dW, db);
                    times[reps] = bench_now() - t;
                    t_total += times[reps++];
                }
                double err = NAN;
                if (have_ref) {
                    err = 0;
                    for (size_t i = 0; i < nout[pass]; ++i) err = fmax(err, fabs(get(outp[pass], i, f64) - ref[i]));
                }
                bench_print_row(nnc_isa_name(o->isas[ii]), o->threads[ti], f64 ? "f64" : "f32", label, flops, times,
                                reps, f64, err);
            }
        }
    }
done:
    if (status) fprintf(stderr, "conv %s: allocation or kernel failure\n", s->label);
    free(x), free(x0), free(W), free(b), free(y), free(dW), free(db), free(ref);
    return status;
}

static int run_conv(const bench_opts *o)
{
    char *list = strdup(o->shapes ? o->shapes : default_shapes);
    if (!list) return -1;
    int status = 0;
    int isa0 = nnc_get_isa();
    bench_print_header();
    for (char *tok = strtok(list, " ,"); tok; tok = strtok(NULL, " ,")) {
        cshape s;
        if (parse_shape(tok, &s)) {
            fprintf(stderr, "bad conv shape '%s'\n", tok);
            status = 2;
            break;
        }
        if (o->f32) status |= bench_one(o, &s, 0);
        if (o->f64) status |= bench_one(o, &s, 1);
    }
    nnc_set_isa(isa0);
    free(list);
    return status;
}

const bench_family bench_conv = {"conv", "'NxHxWxC-K:kKsSpP[gG] ...' (kernel K x K, stride S, padding P, G groups)",
                                 run_conv};
