// bench_conv.c - 2-D convolution: forward, dx (conv_bwd_data) and dW + db
// (conv_bwd_filter), GFLOP/s against the FMA peak.
//
// Shape list (--shapes, space or comma separated):  NxHxWxC-KkKsSpPgG
//   e.g. 32x56x56x64-64k3s1p1g1: batch 32, 56x56 input, 64 -> 64 channels,
//   3x3 kernel, stride 1, padding 1 on every side, 1 group.
// The error column compares with the scalar path on one thread.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "bench_util.h"
#include "timer.h"

static const char *const default_shapes =
    // a ResNet 3x3 layer, first layers at batch 1, a depthwise layer
    "32x56x56x64-64k3s1p1g1 1x224x224x3-64k7s2p3g1 1x32x32x3-32k3s1p1g1 32x56x56x128-128k3s1p1g128 "
    // the demo CNN's convs (batch 64): first layer, residual, DenseBlock (growth 8), strided
    "64x32x32x3-16k3s1p1g1 64x32x32x16-16k3s1p1g1 64x16x16x16-8k3s1p1g1 64x16x16x24-8k3s1p1g1 "
    "64x16x16x32-32k3s2p1g1";

typedef struct {
    nnc_conv_desc p;
    char label[64];
} cshape;

static int parse_shape(const char *tok, cshape *s)
{
    long n, h, w, c, k, kk, st, pad, g;
    if (sscanf(tok, "%ldx%ldx%ldx%ld-%ldk%lds%ldp%ldg%ld", &n, &h, &w, &c, &k, &kk, &st, &pad, &g) != 9) return -1;
    if (n < 1 || h < 1 || w < 1 || c < 1 || k < 1 || kk < 1 || st < 1 || pad < 0 || g < 1 || c % g || k % g)
        return -1;
    nnc_conv_desc *p = &s->p;
    memset(p, 0, sizeof *p);
    p->n = n, p->h = h, p->w = w, p->c = c, p->k = k, p->kh = p->kw = kk;
    p->stride_h = p->stride_w = st, p->dil_h = p->dil_w = 1;
    p->pad_top = p->pad_bottom = p->pad_left = p->pad_right = pad;
    p->groups = g;
    p->oh = (h + 2 * pad - kk) / st + 1;
    p->ow = (w + 2 * pad - kk) / st + 1;
    p->ldx = c, p->ldy = k;
    if (p->oh < 1 || p->ow < 1) return -1;
    snprintf(s->label, sizeof s->label, "%s", tok);
    return 0;
}

enum { FWD, DX, DW, NPASS };
static const char *const pass_name[NPASS] = {"fwd", "dx", "dW+db"};

typedef struct {
    int f64, pass;
    const nnc_conv_desc *p;
    void *x, *W, *b, *y, *dz, *dx, *dW, *db;
} ccase;

static int run_pass(const void *ctx)
{
    const ccase *c = ctx;
    const nnc_conv_desc *p = c->p;
    const int pass = c->pass;
    if (c->f64) {
        if (pass == FWD) return nnc_conv_fwd_f64(p, c->x, c->W, c->b, NNC_ACT_RELU, NULL, c->y);
        if (pass == DX) return nnc_conv_bwd_data_f64(p, c->dz, c->W, c->dx, 0);
        return nnc_conv_bwd_filter_f64(p, c->x, c->dz, c->dW, c->db);
    }
    if (pass == FWD) return nnc_conv_fwd_f32(p, c->x, c->W, c->b, NNC_ACT_RELU, NULL, c->y);
    if (pass == DX) return nnc_conv_bwd_data_f32(p, c->dz, c->W, c->dx, 0);
    return nnc_conv_bwd_filter_f32(p, c->x, c->dz, c->dW, c->db);
}

static void *pass_out(const ccase *c, int pass, size_t *n)
{
    const nnc_conv_desc *p = c->p;
    if (pass == FWD) { *n = (size_t)(p->n * p->oh * p->ow * p->k); return c->y; }
    if (pass == DX) { *n = (size_t)(p->n * p->h * p->w * p->c); return c->dx; }
    *n = (size_t)(p->kh * p->kw * (p->c / p->groups) * p->k);
    return c->dW;
}

static int bench_one(const bench_opts *o, const char *token, int f64)
{
    cshape shape, *s = &shape;
    if (parse_shape(token, s)) {
        fprintf(stderr, "bad conv shape '%s'\n", token);
        return 2;
    }
    const nnc_conv_desc *p = &s->p;
    const size_t es = f64 ? sizeof(double) : sizeof(float);
    const size_t nx = (size_t)(p->n * p->h * p->w * p->c), ny = (size_t)(p->n * p->oh * p->ow * p->k);
    const size_t nw = (size_t)(p->kh * p->kw * (p->c / p->groups) * p->k);
    ccase c = {f64, FWD, p, malloc(nx * es), malloc(nw * es), malloc((size_t)p->k * es), malloc(ny * es),
               malloc(ny * es), malloc(nx * es), malloc(nw * es), malloc((size_t)p->k * es)};
    double *ref = malloc((nx > nw ? (nx > ny ? nx : ny) : (nw > ny ? nw : ny)) * sizeof(double));
    int status = 0;
    if (!c.x || !c.W || !c.b || !c.y || !c.dz || !c.dx || !c.dW || !c.db || !ref) { status = -1; goto done; }
    unsigned seed = 12345;
    bench_fill(c.x, nx, f64, &seed);
    bench_fill(c.W, nw, f64, &seed);
    bench_fill(c.b, (size_t)p->k, f64, &seed);
    bench_fill(c.dz, ny, f64, &seed);
    const double flops = 2.0 * (double)(p->n * p->oh * p->ow * p->k) * (double)(p->c / p->groups * p->kh * p->kw);
    for (int pass = 0; pass < NPASS; ++pass) {
        c.pass = pass;
        size_t nout;
        void *out = pass_out(&c, pass, &nout);
        const int have_ref = flops <= 2.0e9;
        if (have_ref) {
            nnc_set_isa(NNC_ISA_SCALAR);
            nnc_set_num_threads(1);
            if (run_pass(&c)) { status = -1; goto done; }
            for (size_t i = 0; i < nout; ++i) ref[i] = bench_get(out, i, f64);
        }
        char label[96];
        snprintf(label, sizeof label, "%s %s", s->label, pass_name[pass]);
        for (int ii = 0; ii < o->n_isas; ++ii) {
            nnc_set_isa(o->isas[ii]);
            for (int ti = 0; ti < o->n_threads; ++ti) {
                nnc_set_num_threads(o->threads[ti]);
                double times[256];
                const int reps = bench_time(o, run_pass, &c, times);
                if (reps < 0) { status = -1; goto done; }
                double err = NAN;
                if (have_ref) {
                    err = 0;
                    for (size_t i = 0; i < nout; ++i) err = fmax(err, fabs(bench_get(out, i, f64) - ref[i]));
                }
                bench_print_row(nnc_isa_name(o->isas[ii]), o->threads[ti], f64 ? "f64" : "f32", label, flops,
                                times, reps, f64, err);
            }
        }
    }
done:
    if (status) fprintf(stderr, "conv %s: allocation or kernel failure\n", s->label);
    free(c.x), free(c.W), free(c.b), free(c.y), free(c.dz), free(c.dx), free(c.dW), free(c.db), free(ref);
    return status;
}

static int run_conv(const bench_opts *o)
{
    bench_print_header();
    return bench_each_shape(o, default_shapes, bench_one);
}

const bench_family bench_conv = {"conv", "'NxHxWxC-KkKsSpPgG ...' (e.g. 32x56x56x64-64k3s1p1g1)", run_conv};
