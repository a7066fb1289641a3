// reference_test.c - ref_self_test (reference.h): the naive references checked
// against each other, against the library's float64 GEMM and against the
// adjoint identities their backward passes must satisfy.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "bench_util.h"
#include "nnc/nnc.h"
#include "reference.h"

// <a, b> and sum |a b| of n doubles.
static double dot(const double *a, const double *b, size_t n, double *absdot)
{
    double s = 0, sa = 0;
    for (size_t i = 0; i < n; ++i) s += a[i] * b[i], sa += fabs(a[i] * b[i]);
    *absdot = sa;
    return s;
}

// Fails unless two evaluations of one inner product agree to 1e-12 of its absolute sum.
static int same_dot(const char *what, double a, double b, double absdot)
{
    if (fabs(a - b) <= 1e-12 * absdot) return 0;
    fprintf(stderr, "reference self-test: %s: %.17g != %.17g\n", what, a, b);
    return -1;
}

// Fails when ref_error_check finds an element of got outside its bound around ref.
static int within(const char *what, const double *got, const double *ref, const double *abs, size_t n, double k)
{
    double err, worst;
    if (!ref_error_check(got, 1, ref, abs, n, k, &err, &worst)) return 0;
    fprintf(stderr, "reference self-test: %s: max error %.3e (%.1f x its bound)\n", what, err, worst);
    return -1;
}

// Conv geometry check: the output size of every problem below.
static void conv_out(ref_conv *g)
{
    g->oh = (g->h + 2 * g->pt - g->dh * (g->kh - 1) - 1) / g->sh + 1;
    g->ow = (g->w + 2 * g->pl - g->dw * (g->kw - 1) - 1) / g->sw + 1;
}

// im2col of x for geometry g, one group: cols (n oh ow, kh kw cg) row-major, zero in the padding.
static void im2col(const ref_conv *g, const double *x, long grp, double *cols)
{
    const long cg = g->c / g->groups, kk = g->kh * g->kw * cg;
    for (long nn = 0; nn < g->n; ++nn)
        for (long i = 0; i < g->oh; ++i)
            for (long j = 0; j < g->ow; ++j)
                for (long a = 0; a < g->kh; ++a)
                    for (long b = 0; b < g->kw; ++b)
                        for (long ci = 0; ci < cg; ++ci) {
                            const long r = i * g->sh - g->pt + a * g->dh, q = j * g->sw - g->pl + b * g->dw;
                            const int in = r >= 0 && r < g->h && q >= 0 && q < g->w;
                            cols[((nn * g->oh + i) * g->ow + j) * kk + (a * g->kw + b) * cg + ci] =
                                in ? x[((nn * g->h + r) * g->w + q) * g->c + grp * cg + ci] : 0;
                        }
}

// The conv forward of g against im2col (x) @ W through nnc_gemm_f64, group by group.
static int conv_vs_gemm(const ref_conv *g, const double *x, const double *W, const double *y, const double *yabs)
{
    const long cg = g->c / g->groups, kg = g->k / g->groups, kk = g->kh * g->kw * cg, rows = g->n * g->oh * g->ow;
    double *cols = malloc(sizeof(double) * (size_t)(rows * kk)), *out = malloc(sizeof(double) * (size_t)(rows * kg));
    double *yg = malloc(sizeof(double) * (size_t)(rows * kg)), *ya = malloc(sizeof(double) * (size_t)(rows * kg));
    int status = !cols || !out || !yg || !ya ? -1 : 0;
    for (long grp = 0; grp < g->groups && !status; ++grp) {
        im2col(g, x, grp, cols);
        // W (kh kw cg, k) with the group's kg columns: ldb = k, offset grp * kg.
        if (nnc_gemm_f64(0, 0, rows, kg, kk, 1.0, cols, kk, W + grp * kg, g->k, 0.0, out, kg, NULL, 0)) status = -1;
        for (long r = 0; r < rows && !status; ++r)
            for (long o = 0; o < kg; ++o) {
                yg[r * kg + o] = y[r * g->k + grp * kg + o];
                ya[r * kg + o] = yabs[r * g->k + grp * kg + o];
            }
        if (!status) status = within("conv forward vs im2col + nnc_gemm_f64", out, yg, ya, (size_t)(rows * kg),
                                     (double)kk);
    }
    free(cols), free(out), free(yg), free(ya);
    return status;
}

// The gathered one-element forms (ref_conv_bwd_data_at, ref_conv_bwd_filter_at) and ref_conv_bwd_bias
// against the whole-tensor scatter forms, every element: values and absolute sums agree to 1e-12 of the
// absolute sum (the forms add in different orders).
static int gathers_agree(const ref_conv *g, const double *x, const double *W, const double *dz)
{
    const size_t nx = (size_t)(g->n * g->h * g->w * g->c), nw = (size_t)(g->kh * g->kw * (g->c / g->groups) * g->k);
    const size_t nk = (size_t)g->k;
    double *dx = malloc(sizeof(double) * 2 * nx), *dW = malloc(sizeof(double) * 2 * nw);
    double *db = malloc(sizeof(double) * 4 * nk);
    int status = !dx || !dW || !db ? -1 : 0;
    if (!status) {
        ref_conv_bwd_data(g, dz, W, dx, dx + nx);
        ref_conv_bwd_filter(g, x, dz, dW, db, dW + nw, db + nk);
        ref_conv_bwd_bias(g, dz, db + 2 * nk, db + 3 * nk);
    }
    for (size_t i = 0; i < nx && !status; ++i) {
        double a, v = ref_conv_bwd_data_at(g, dz, W, i, &a);
        status = same_dot("gathered dx", v, dx[i], dx[nx + i]) | same_dot("gathered |dx|", a, dx[nx + i], a);
    }
    for (size_t i = 0; i < nw && !status; ++i) {
        double a, v = ref_conv_bwd_filter_at(g, x, dz, i, &a);
        status = same_dot("gathered dW", v, dW[i], dW[nw + i]) | same_dot("gathered |dW|", a, dW[nw + i], a);
    }
    for (size_t o = 0; o < nk && !status; ++o)
        status = same_dot("ref_conv_bwd_bias", db[2 * nk + o], db[o], db[nk + o]) |
                 same_dot("ref_conv_bwd_bias |db|", db[3 * nk + o], db[nk + o], db[nk + o]);
    free(dx), free(dW), free(db);
    return status;
}

// Random doubles in [-1, 1).
static double *randoms(size_t n, unsigned *seed)
{
    double *p = malloc(sizeof(double) * n);
    if (p) bench_fill(p, n, 1, seed);
    return p;
}

// Conv: 1x1 against ref_gemm, a general problem against the GEMM path, the adjoint identities
// <conv(x, W), dz> = <x, bwd_data(dz, W)> = <W, bwd_filter(x, dz)>, and the gathered one-element forms
// against the whole-tensor ones.
static int conv_tests(void)
{
    unsigned seed = 7;
    int status = 0;
    ref_conv g1 = {.n = 2, .h = 5, .w = 4, .c = 6, .k = 5, .kh = 1, .kw = 1, .sh = 1, .sw = 1, .dh = 1, .dw = 1,
                   .groups = 1};
    ref_conv g2 = {.n = 2, .h = 9, .w = 7, .c = 6, .k = 4, .kh = 3, .kw = 2, .sh = 2, .sw = 1, .dh = 1, .dw = 2,
                   .pt = 1, .pl = 1, .groups = 2};
    conv_out(&g1), conv_out(&g2);
    for (int t = 0; t < 2 && !status; ++t) {
        const ref_conv *g = t ? &g2 : &g1;
        const size_t nx = (size_t)(g->n * g->h * g->w * g->c), ny = (size_t)(g->n * g->oh * g->ow * g->k);
        const size_t nw = (size_t)(g->kh * g->kw * (g->c / g->groups) * g->k);
        double *x = randoms(nx, &seed), *W = randoms(nw, &seed), *dz = randoms(ny, &seed);
        double *y = malloc(ny * sizeof(double)), *ya = malloc(ny * sizeof(double)), *dx = malloc(nx * sizeof(double));
        double *dW = malloc(nw * sizeof(double)), *c = malloc(ny * sizeof(double));
        if (!x || !W || !dz || !y || !ya || !dx || !dW || !c) status = -1;
        if (!status) {
            ref_conv_fwd(g, x, W, NULL, 0, y, ya);
            if (!t) {   // a 1x1 convolution is the product x (n h w, c) @ W (c, k)
                ref_gemm(0, 0, (long)(nx / (size_t)g->c), g->k, g->c, x, g->c, W, g->k, c, NULL);
                status = within("1x1 conv vs ref_gemm", y, c, ya, ny, (double)g->c);
            } else {
                status = conv_vs_gemm(g, x, W, y, ya);
            }
        }
        if (!status) {
            double a1, a2, a3, s;
            ref_conv_bwd_data(g, dz, W, dx, NULL);
            ref_conv_bwd_filter(g, x, dz, dW, NULL, NULL, NULL);
            a1 = dot(y, dz, ny, &s);
            a2 = dot(x, dx, nx, &(double){0});
            a3 = dot(W, dW, nw, &(double){0});
            status = same_dot("<conv(x), dz> vs <x, dx>", a1, a2, s) | same_dot("<conv(x), dz> vs <W, dW>", a1, a3, s);
        }
        if (!status) status = gathers_agree(g, x, W, dz);
        free(x), free(W), free(dz), free(y), free(ya), free(dx), free(dW), free(c);
    }
    return status;
}

// Pooling: the backward passes against the forward ones, <pool(x), dy> = <x, pool_bwd(dy)>
// (max pooling is a selection, linear at fixed x), and a mean over a padded corner.
static int pool_tests(void)
{
    unsigned seed = 11;
    ref_pool g = {.n = 2, .h = 7, .w = 6, .c = 3, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1};
    g.oh = (g.h + 2 * g.ph - g.kh) / g.sh + 1, g.ow = (g.w + 2 * g.pw - g.kw) / g.sw + 1;
    const size_t nx = (size_t)(g.n * g.h * g.w * g.c), ny = (size_t)(g.n * g.oh * g.ow * g.c);
    double *x = randoms(nx, &seed), *dy = randoms(ny, &seed);
    double *y = malloc(ny * sizeof(double)), *dx = malloc(nx * sizeof(double));
    int status = !x || !dy || !y || !dx ? -1 : 0;
    if (!status) {
        double s;
        ref_maxpool_fwd(&g, x, y);
        ref_maxpool_bwd(&g, x, dy, dx);
        const double m1 = dot(y, dy, ny, &s), m2 = dot(x, dx, nx, &(double){0});
        status |= same_dot("<maxpool(x), dy> vs <x, dx>", m1, m2, s);
        ref_avgpool_fwd(&g, x, y);
        ref_avgpool_bwd(&g, dy, dx);
        const double v1 = dot(y, dy, ny, &s), v2 = dot(x, dx, nx, &(double){0});
        status |= same_dot("<avgpool(x), dy> vs <x, dx>", v1, v2, s);
        // Output (0, 0, 0, 0): window rows -1..1, columns -1..1, of which 2 x 2 cells are inside.
        const double corner = (x[0] + x[g.c] + x[g.w * g.c] + x[(g.w + 1) * g.c]) / 4;
        status |= same_dot("avgpool padded corner", y[0], corner, fabs(corner) + 1e-300);
    }
    free(x), free(dy), free(y), free(dx);
    return status;
}

int ref_self_test(void)
{
    const int isa = nnc_get_isa(), threads = nnc_get_num_threads();
    const int status = conv_tests() | pool_tests();
    nnc_set_isa(isa);
    nnc_set_num_threads(threads);
    if (status) fprintf(stderr, "reference self-test failed\n");
    return status ? -1 : 0;
}
