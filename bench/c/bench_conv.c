// bench_conv.c - 2-D convolution: forward, dx (conv_bwd_data) and dW + db
// (conv_bwd_filter), GFLOP/s against the FMA peak.
//
// Shape list (--shapes, space or comma separated):  NxHxWxC-KkKsSpPgG
//   e.g. 32x56x56x64-64k3s1p1g1: batch 32, 56x56 input, 64 -> 64 channels,
//   3x3 kernel, stride 1, padding 1 on every side, 1 group.
// Every pass of every shape is checked against the naive double references
// (reference.c): maxerr is the largest |out - ref|, and an element beyond the
// rounding bound gamma_k |terms| of its k-term sum fails the run (k: C/g KH KW + 1
// for y, K/g KH KW for dx, N OH OW for dW and db).  Above FULL_REF_MACS the check
// covers a spread sample of each tensor's elements, borders included, and says so.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "bench_util.h"
#include "reference.h"
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

// A problem whose naive reference costs more multiply-adds than this (a few seconds) is checked on a
// sample of each pass's output elements; below it, on every element.
#define FULL_REF_MACS 1.0e9
// Sampled check: per axis of an output tensor, at most this many indices.
#define SAMPLE_PER_AXIS 8

enum { CK_Y, CK_DX, CK_DW, CK_DB, NCHECK };
static const char *const check_name[NCHECK] = {"y", "dx", "dW", "db"};

// The reference of one output tensor: values ref and absolute sums abs at n elements, at[i] the flat
// index of element i (at NULL: every element, in order); k the reduction length of the rounding bound.
typedef struct {
    size_t n, total, *at;
    double *ref, *abs, k;
} rcheck;

// Up to SAMPLE_PER_AXIS indices of 0..size-1 into out, spread over it: the first two, the last two and
// evenly spaced ones between (all of them when size is small); returns the count.
static long spread(long size, long *out)
{
    if (size <= SAMPLE_PER_AXIS) {
        for (long i = 0; i < size; ++i) out[i] = i;
        return size;
    }
    const long inner = SAMPLE_PER_AXIS - 4;
    out[0] = 0, out[1] = 1;
    for (long t = 1; t <= inner; ++t) out[1 + t] = 1 + t * (size - 3) / (inner + 1);
    out[inner + 2] = size - 2, out[inner + 3] = size - 1;
    return SAMPLE_PER_AXIS;
}

// ck->at = the flat indices of the product of spread() indices of each axis of a (d0, d1, d2, d3)
// row-major tensor: borders (first and last two rows, columns, channels, images) always included.
static int sample_4d(rcheck *ck, long d0, long d1, long d2, long d3)
{
    long ix[4][SAMPLE_PER_AXIS], cnt[4], dims[4] = {d0, d1, d2, d3};
    size_t n = 1;
    for (int d = 0; d < 4; ++d) n *= (size_t)(cnt[d] = spread(dims[d], ix[d]));
    ck->at = malloc(n * sizeof(size_t));
    if (!ck->at) return -1;
    ck->n = 0;
    for (long a = 0; a < cnt[0]; ++a)
        for (long b = 0; b < cnt[1]; ++b)
            for (long c = 0; c < cnt[2]; ++c)
                for (long e = 0; e < cnt[3]; ++e)
                    ck->at[ck->n++] = (size_t)(((ix[0][a] * d1 + ix[1][b]) * d2 + ix[2][c]) * d3 + ix[3][e]);
    return 0;
}

// Fills ck (values, absolute sums, bound) for the checks of pass from the double inputs; sampled:
// gathered one-element references at a spread sample (db, cheap, always whole).
static int reference_of(int pass, const ref_conv *g, const double *const in[4], int sampled, rcheck ck[NCHECK])
{
    const double *x = in[0], *W = in[1], *b = in[2], *dz = in[3];
    const long cg = g->c / g->groups, kg = g->k / g->groups;
    const size_t total[NCHECK] = {(size_t)(g->n * g->oh * g->ow * g->k), (size_t)(g->n * g->h * g->w * g->c),
                                  (size_t)(g->kh * g->kw * cg * g->k), (size_t)g->k};
    const double k[NCHECK] = {(double)(cg * g->kh * g->kw + 1), (double)(kg * g->kh * g->kw),
                              (double)(g->n * g->oh * g->ow), (double)(g->n * g->oh * g->ow)};
    const int first = pass == FWD ? CK_Y : pass == DX ? CK_DX : CK_DW, last = pass == DW ? CK_DB : first;
    for (int t = first; t <= last; ++t) {
        rcheck *c = &ck[t];
        *c = (rcheck){total[t], total[t], NULL, NULL, NULL, k[t]};
        if (sampled && t == CK_Y && sample_4d(c, g->n, g->oh, g->ow, g->k)) return -1;
        if (sampled && t == CK_DX && sample_4d(c, g->n, g->h, g->w, g->c)) return -1;
        if (sampled && t == CK_DW && sample_4d(c, g->kh, g->kw, cg, g->k)) return -1;
        c->ref = malloc(c->n * sizeof(double)), c->abs = malloc(c->n * sizeof(double));
        if (!c->ref || !c->abs) return -1;
    }
    if (!sampled && pass == FWD) ref_conv_fwd(g, x, W, b, 1, ck[CK_Y].ref, ck[CK_Y].abs);
    if (!sampled && pass == DX) ref_conv_bwd_data(g, dz, W, ck[CK_DX].ref, ck[CK_DX].abs);
    if (!sampled && pass == DW) ref_conv_bwd_filter(g, x, dz, ck[CK_DW].ref, ck[CK_DB].ref, ck[CK_DW].abs,
                                                    ck[CK_DB].abs);
    if (sampled && pass == DW) ref_conv_bwd_bias(g, dz, ck[CK_DB].ref, ck[CK_DB].abs);
    for (size_t i = 0; sampled && i < ck[first].n; ++i) {
        const size_t at = ck[first].at[i];
        double *r = &ck[first].ref[i], *a = &ck[first].abs[i];
        if (pass == FWD) *r = ref_conv_fwd_at(g, x, W, b, 1, at, a);
        else if (pass == DX) *r = ref_conv_bwd_data_at(g, dz, W, at, a);
        else *r = ref_conv_bwd_filter_at(g, x, dz, at, a);
    }
    return 0;
}

static void free_checks(rcheck ck[NCHECK])
{
    for (int t = 0; t < NCHECK; ++t) free(ck[t].at), free(ck[t].ref), free(ck[t].abs), ck[t] = (rcheck){0};
}

// The library's output tensors of each check.
static void *check_out(const ccase *c, int t)
{
    void *const out[NCHECK] = {c->y, c->dx, c->dW, c->db};
    return out[t];
}

// Compares the outputs of pass (the last timed call's) with their references within the rounding bound
// gamma_k |terms| (reference.h); returns the elements beyond it (a message on stderr for each tensor
// with any), *max_err the largest |out - ref| over the pass's tensors.
static size_t check_pass(const ccase *c, const rcheck ck[NCHECK], void *buf, const char *what, double *max_err)
{
    const size_t es = c->f64 ? sizeof(double) : sizeof(float);
    size_t bad = 0;
    *max_err = 0;
    for (int t = 0; t < NCHECK; ++t) {
        if (!ck[t].ref) continue;
        const char *out = check_out(c, t);
        for (size_t i = 0; ck[t].at && i < ck[t].n; ++i) memcpy((char *)buf + i * es, out + ck[t].at[i] * es, es);
        double err, worst;
        const size_t b = ref_error_check(ck[t].at ? buf : out, c->f64, ck[t].ref, ck[t].abs, ck[t].n, ck[t].k,
                                         &err, &worst);
        if (b)
            fprintf(stderr, "conv %s %s: %zu of %zu checked elements beyond the rounding bound of the reference "
                    "(worst %.1f x the bound, max error %.3e)\n", what, check_name[t], b, ck[t].n, worst, err);
        bad += b;
        *max_err = isnan(err) || isnan(*max_err) ? NAN : fmax(*max_err, err);
    }
    return bad;
}

static int bench_one(const bench_opts *o, const char *token, int f64)
{
    cshape shape, *s = &shape;
    if (parse_shape(token, s)) {
        fprintf(stderr, "bad conv shape '%s'\n", token);
        return 2;
    }
    const nnc_conv_desc *p = &s->p;
    const ref_conv g = {p->n, p->h, p->w, p->c, p->k, p->kh, p->kw, p->stride_h, p->stride_w, p->dil_h, p->dil_w,
                        p->pad_top, p->pad_left, p->oh, p->ow, p->groups};
    const size_t es = f64 ? sizeof(double) : sizeof(float);
    const size_t nx = (size_t)(p->n * p->h * p->w * p->c), ny = (size_t)(p->n * p->oh * p->ow * p->k);
    const size_t nw = (size_t)(p->kh * p->kw * (p->c / p->groups) * p->k), nk = (size_t)p->k;
    ccase c = {f64, FWD, p, malloc(nx * es), malloc(nw * es), malloc(nk * es), malloc(ny * es),
               malloc(ny * es), malloc(nx * es), malloc(nw * es), malloc(nk * es)};
    double *xd = malloc(nx * sizeof(double)), *Wd = malloc(nw * sizeof(double)), *bd = malloc(nk * sizeof(double));
    double *dzd = malloc(ny * sizeof(double));
    void *buf = malloc((size_t)SAMPLE_PER_AXIS * SAMPLE_PER_AXIS * SAMPLE_PER_AXIS * SAMPLE_PER_AXIS * es);
    rcheck ck[NCHECK] = {{0}};
    int status = 0;
    if (!c.x || !c.W || !c.b || !c.y || !c.dz || !c.dx || !c.dW || !c.db || !xd || !Wd || !bd || !dzd || !buf) {
        status = -1;
        goto done;
    }
    unsigned seed = 12345;
    bench_fill(c.x, nx, f64, &seed);
    bench_fill(c.W, nw, f64, &seed);
    bench_fill(c.b, nk, f64, &seed);
    bench_fill(c.dz, ny, f64, &seed);
    ref_to_double(xd, c.x, nx, f64), ref_to_double(Wd, c.W, nw, f64), ref_to_double(bd, c.b, nk, f64);
    ref_to_double(dzd, c.dz, ny, f64);
    const double *const in[4] = {xd, Wd, bd, dzd};
    const double flops = 2.0 * (double)(p->n * p->oh * p->ow * p->k) * (double)(p->c / p->groups * p->kh * p->kw);
    const int sampled = flops / 2 > FULL_REF_MACS;
    for (int pass = 0; pass < NPASS; ++pass) {
        c.pass = pass;
        free_checks(ck);
        if (reference_of(pass, &g, in, sampled, ck)) { status = -1; goto done; }
        char label[96];
        snprintf(label, sizeof label, "%s %s", s->label, pass_name[pass]);
        if (sampled) {
            printf("# %s %s: %.2g multiply-adds a pass for the naive reference: maxerr on a sample", label,
                   f64 ? "f64" : "f32", flops / 2);
            for (int t = 0; t < NCHECK; ++t)
                if (ck[t].ref) printf(", %zu of %zu %s", ck[t].n, ck[t].total, check_name[t]);
            printf(" (up to %d indices per axis: first two, last two, spread between)\n", SAMPLE_PER_AXIS);
        }
        for (int ii = 0; ii < o->n_isas; ++ii) {
            nnc_set_isa(o->isas[ii]);
            for (int ti = 0; ti < o->n_threads; ++ti) {
                nnc_set_num_threads(o->threads[ti]);
                double times[256];
                const int reps = bench_time(o, run_pass, &c, times);
                if (reps < 0) { status = -1; goto done; }
                char what[160];
                snprintf(what, sizeof what, "%s %s %s %d threads", label, f64 ? "f64" : "f32",
                         nnc_isa_name(o->isas[ii]), o->threads[ti]);
                double err;
                if (check_pass(&c, ck, buf, what, &err)) status = -1;
                bench_print_row(nnc_isa_name(o->isas[ii]), o->threads[ti], f64 ? "f64" : "f32", label, flops,
                                times, reps, f64, err);
            }
        }
    }
done:
    if (status) fprintf(stderr, "conv %s: failed (allocation, kernel status or error bound)\n", s->label);
    free(c.x), free(c.W), free(c.b), free(c.y), free(c.dz), free(c.dx), free(c.dW), free(c.db);
    free(xd), free(Wd), free(bd), free(dzd), free(buf);
    free_checks(ck);
    return status;
}

static int run_conv(const bench_opts *o)
{
    bench_print_header();
    return bench_each_shape(o, default_shapes, bench_one);
}

const bench_family bench_conv = {"conv", "'NxHxWxC-KkKsSpPgG ...' (e.g. 32x56x56x64-64k3s1p1g1)", run_conv};
