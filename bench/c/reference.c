// reference.c - naive double-precision references (see reference.h).
#define _POSIX_C_SOURCE 200809L
#include "reference.h"
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nnc/nnc.h"

void ref_to_double(double *dst, const void *src, size_t n, int f64)
{
    for (size_t i = 0; i < n; ++i) dst[i] = f64 ? ((const double *)src)[i] : ((const float *)src)[i];
}

void ref_gemm(int ta, int tb, long m, long n, long k, const double *A, long lda, const double *B, long ldb,
              double *C, double *Cabs)
{
    // op(B) row-major and its absolute values, so the inner loop runs over contiguous j.
    double *Bk = malloc(sizeof(double) * (size_t)k * (size_t)n * 2);
    if (!Bk) { fprintf(stderr, "ref_gemm: out of memory\n"); exit(1); }
    double *Babs = Bk + (size_t)k * (size_t)n;
    for (long p = 0; p < k; ++p)
        for (long j = 0; j < n; ++j) {
            Bk[p * n + j] = tb ? B[j * ldb + p] : B[p * ldb + j];
            Babs[p * n + j] = fabs(Bk[p * n + j]);
        }
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < m; ++i) {
        double *c = C + i * n, *ca = Cabs ? Cabs + i * n : NULL;
        memset(c, 0, sizeof(double) * (size_t)n);
        if (ca) memset(ca, 0, sizeof(double) * (size_t)n);
        for (long p = 0; p < k; ++p) {
            const double a = ta ? A[p * lda + i] : A[i * lda + p];
            for (long j = 0; j < n; ++j) c[j] += a * Bk[p * n + j];
            if (ca)
                for (long j = 0; j < n; ++j) ca[j] += fabs(a) * Babs[p * n + j];
        }
    }
    free(Bk);
}

// Input row (or column) of output index o and kernel index a; -1 when it falls in the padding.
static long in_index(long o, long a, long stride, long dil, long pad, long size)
{
    const long r = o * stride - pad + a * dil;
    return r >= 0 && r < size ? r : -1;
}

double ref_conv_fwd_at(const ref_conv *g, const double *x, const double *W, const double *b, int relu, size_t at,
                       double *abs)
{
    const long cg = g->c / g->groups, kg = g->k / g->groups, o = (long)(at % (size_t)g->k);
    const long pix = (long)(at / (size_t)g->k), j = pix % g->ow, i = pix / g->ow % g->oh, nn = pix / g->ow / g->oh;
    const long grp = o / kg;
    double s = b ? b[o] : 0, sa = b ? fabs(b[o]) : 0;
    for (long a = 0; a < g->kh; ++a) {
        const long r = in_index(i, a, g->sh, g->dh, g->pt, g->h);
        for (long bb = 0; bb < g->kw && r >= 0; ++bb) {
            const long q = in_index(j, bb, g->sw, g->dw, g->pl, g->w);
            for (long ci = 0; ci < cg && q >= 0; ++ci) {
                const double xv = x[((nn * g->h + r) * g->w + q) * g->c + grp * cg + ci];
                const double wv = W[((a * g->kw + bb) * cg + ci) * g->k + o];
                s += xv * wv;
                sa += fabs(xv * wv);
            }
        }
    }
    if (abs) *abs = sa;
    return relu && s < 0 ? 0 : s;
}

void ref_conv_fwd(const ref_conv *g, const double *x, const double *W, const double *b, int relu, double *y,
                  double *yabs)
{
    const size_t ny = (size_t)(g->n * g->oh * g->ow * g->k);
    for (size_t at = 0; at < ny; ++at) y[at] = ref_conv_fwd_at(g, x, W, b, relu, at, yabs ? yabs + at : NULL);
}

void ref_conv_bwd_data(const ref_conv *g, const double *dz, const double *W, double *dx, double *dxabs)
{
    const long cg = g->c / g->groups, kg = g->k / g->groups;
    const size_t nx = (size_t)(g->n * g->h * g->w * g->c);
    memset(dx, 0, nx * sizeof(double));
    if (dxabs) memset(dxabs, 0, nx * sizeof(double));
    // Scatter form: every (output, kernel tap, channel) product lands on its input cell.
    for (long nn = 0; nn < g->n; ++nn)
        for (long i = 0; i < g->oh; ++i)
            for (long j = 0; j < g->ow; ++j)
                for (long a = 0; a < g->kh; ++a) {
                    const long r = in_index(i, a, g->sh, g->dh, g->pt, g->h);
                    for (long bb = 0; bb < g->kw && r >= 0; ++bb) {
                        const long q = in_index(j, bb, g->sw, g->dw, g->pl, g->w);
                        for (long o = 0; o < g->k && q >= 0; ++o) {
                            const long grp = o / kg;
                            const double d = dz[((nn * g->oh + i) * g->ow + j) * g->k + o];
                            for (long ci = 0; ci < cg; ++ci) {
                                const size_t at = (size_t)(((nn * g->h + r) * g->w + q) * g->c + grp * cg + ci);
                                const double t = d * W[((a * g->kw + bb) * cg + ci) * g->k + o];
                                dx[at] += t;
                                if (dxabs) dxabs[at] += fabs(t);
                            }
                        }
                    }
                }
}

void ref_conv_bwd_filter(const ref_conv *g, const double *x, const double *dz, double *dW, double *db,
                         double *dWabs, double *dbabs)
{
    const long cg = g->c / g->groups, kg = g->k / g->groups;
    const size_t nw = (size_t)(g->kh * g->kw * cg * g->k);
    memset(dW, 0, nw * sizeof(double));
    if (dWabs) memset(dWabs, 0, nw * sizeof(double));
    if (db) memset(db, 0, (size_t)g->k * sizeof(double));
    if (dbabs) memset(dbabs, 0, (size_t)g->k * sizeof(double));
    for (long nn = 0; nn < g->n; ++nn)
        for (long i = 0; i < g->oh; ++i)
            for (long j = 0; j < g->ow; ++j)
                for (long o = 0; o < g->k; ++o) {
                    const long grp = o / kg;
                    const double d = dz[((nn * g->oh + i) * g->ow + j) * g->k + o];
                    if (db) db[o] += d;
                    if (dbabs) dbabs[o] += fabs(d);
                    for (long a = 0; a < g->kh; ++a) {
                        const long r = in_index(i, a, g->sh, g->dh, g->pt, g->h);
                        for (long bb = 0; bb < g->kw && r >= 0; ++bb) {
                            const long q = in_index(j, bb, g->sw, g->dw, g->pl, g->w);
                            for (long ci = 0; ci < cg && q >= 0; ++ci) {
                                const size_t at = (size_t)(((a * g->kw + bb) * cg + ci) * g->k + o);
                                const double t = d * x[((nn * g->h + r) * g->w + q) * g->c + grp * cg + ci];
                                dW[at] += t;
                                if (dWabs) dWabs[at] += fabs(t);
                            }
                        }
                    }
                }
}

// Output index of input index r through kernel index a (the inverse of in_index); -1 when no output reads it.
static long out_index(long r, long a, long stride, long dil, long pad, long osize)
{
    const long t = r + pad - a * dil;
    return t >= 0 && t % stride == 0 && t / stride < osize ? t / stride : -1;
}

double ref_conv_bwd_data_at(const ref_conv *g, const double *dz, const double *W, size_t at, double *abs)
{
    const long cg = g->c / g->groups, kg = g->k / g->groups, ch = (long)(at % (size_t)g->c);
    const long pix = (long)(at / (size_t)g->c), q = pix % g->w, r = pix / g->w % g->h, nn = pix / g->w / g->h;
    const long grp = ch / cg, ci = ch % cg;
    double s = 0, sa = 0;
    for (long a = 0; a < g->kh; ++a) {
        const long i = out_index(r, a, g->sh, g->dh, g->pt, g->oh);
        for (long bb = 0; bb < g->kw && i >= 0; ++bb) {
            const long j = out_index(q, bb, g->sw, g->dw, g->pl, g->ow);
            for (long o = grp * kg; o < (grp + 1) * kg && j >= 0; ++o) {
                const double t =
                    dz[((nn * g->oh + i) * g->ow + j) * g->k + o] * W[((a * g->kw + bb) * cg + ci) * g->k + o];
                s += t;
                sa += fabs(t);
            }
        }
    }
    if (abs) *abs = sa;
    return s;
}

double ref_conv_bwd_filter_at(const ref_conv *g, const double *x, const double *dz, size_t at, double *abs)
{
    const long cg = g->c / g->groups, kg = g->k / g->groups, o = (long)(at % (size_t)g->k);
    const long rest = (long)(at / (size_t)g->k), ci = rest % cg, bb = rest / cg % g->kw, a = rest / cg / g->kw;
    const long ch = o / kg * cg + ci;
    double s = 0, sa = 0;
    for (long nn = 0; nn < g->n; ++nn)
        for (long i = 0; i < g->oh; ++i) {
            const long r = in_index(i, a, g->sh, g->dh, g->pt, g->h);
            for (long j = 0; j < g->ow && r >= 0; ++j) {
                const long q = in_index(j, bb, g->sw, g->dw, g->pl, g->w);
                if (q < 0) continue;
                const double t =
                    dz[((nn * g->oh + i) * g->ow + j) * g->k + o] * x[((nn * g->h + r) * g->w + q) * g->c + ch];
                s += t;
                sa += fabs(t);
            }
        }
    if (abs) *abs = sa;
    return s;
}

void ref_conv_bwd_bias(const ref_conv *g, const double *dz, double *db, double *dbabs)
{
    const size_t pixels = (size_t)(g->n * g->oh * g->ow);
    for (long o = 0; o < g->k; ++o) {
        double s = 0, sa = 0;
        for (size_t p = 0; p < pixels; ++p) {
            s += dz[p * (size_t)g->k + (size_t)o];
            sa += fabs(dz[p * (size_t)g->k + (size_t)o]);
        }
        db[o] = s;
        if (dbabs) dbabs[o] = sa;
    }
}

// Visits every window of a pooling problem: fn(ctx, window's output index,
// input indices of its cells inside the input, their count).  The cells run
// row-major through the window.
static void each_window(const ref_pool *g, void (*fn)(void *ctx, size_t out, const size_t *cells, long n),
                        void *ctx)
{
    size_t *cells = malloc(sizeof(size_t) * (size_t)(g->kh * g->kw));
    if (!cells) { fprintf(stderr, "ref pool: out of memory\n"); exit(1); }
    for (long nn = 0; nn < g->n; ++nn)
        for (long i = 0; i < g->oh; ++i)
            for (long j = 0; j < g->ow; ++j)
                for (long ch = 0; ch < g->c; ++ch) {
                    long cnt = 0;
                    for (long a = 0; a < g->kh; ++a) {
                        const long r = in_index(i, a, g->sh, 1, g->ph, g->h);
                        for (long bb = 0; bb < g->kw && r >= 0; ++bb) {
                            const long q = in_index(j, bb, g->sw, 1, g->pw, g->w);
                            if (q >= 0) cells[cnt++] = (size_t)(((nn * g->h + r) * g->w + q) * g->c + ch);
                        }
                    }
                    fn(ctx, (size_t)(((nn * g->oh + i) * g->ow + j) * g->c + ch), cells, cnt);
                }
    free(cells);
}

typedef struct { const double *x, *dy; double *out; } pool_ctx;

// Index (into cells) of the first maximal cell of x.
static long first_max(const double *x, const size_t *cells, long n)
{
    long best = 0;
    for (long t = 1; t < n; ++t)
        if (x[cells[t]] > x[cells[best]]) best = t;
    return best;
}

static void max_fwd_window(void *ctx, size_t out, const size_t *cells, long n)
{
    pool_ctx *p = ctx;
    p->out[out] = p->x[cells[first_max(p->x, cells, n)]];
}

static void max_bwd_window(void *ctx, size_t out, const size_t *cells, long n)
{
    pool_ctx *p = ctx;
    p->out[cells[first_max(p->x, cells, n)]] += p->dy[out];
}

static void avg_fwd_window(void *ctx, size_t out, const size_t *cells, long n)
{
    pool_ctx *p = ctx;
    double s = 0;
    for (long t = 0; t < n; ++t) s += p->x[cells[t]];
    p->out[out] = s / (double)n;
}

static void avg_bwd_window(void *ctx, size_t out, const size_t *cells, long n)
{
    pool_ctx *p = ctx;
    for (long t = 0; t < n; ++t) p->out[cells[t]] += p->dy[out] / (double)n;
}

static size_t pool_nx(const ref_pool *g) { return (size_t)(g->n * g->h * g->w * g->c); }

void ref_maxpool_fwd(const ref_pool *g, const double *x, double *y)
{
    pool_ctx c = {x, NULL, y};
    each_window(g, max_fwd_window, &c);
}

void ref_maxpool_bwd(const ref_pool *g, const double *x, const double *dy, double *dx)
{
    memset(dx, 0, pool_nx(g) * sizeof(double));
    pool_ctx c = {x, dy, dx};
    each_window(g, max_bwd_window, &c);
}

void ref_avgpool_fwd(const ref_pool *g, const double *x, double *y)
{
    pool_ctx c = {x, NULL, y};
    each_window(g, avg_fwd_window, &c);
}

void ref_avgpool_bwd(const ref_pool *g, const double *dy, double *dx)
{
    memset(dx, 0, pool_nx(g) * sizeof(double));
    pool_ctx c = {NULL, dy, dx};
    each_window(g, avg_bwd_window, &c);
}

static double gamma_k(double k, double u) { return k * u < 1 ? k * u / (1 - k * u) : INFINITY; }

size_t ref_error_check(const void *got, int f64, const double *ref, const double *abs, size_t n, double k,
                       double *max_err, double *worst)
{
    const double g = gamma_k(k, f64 ? DBL_EPSILON / 2 : FLT_EPSILON / 2) + gamma_k(k, DBL_EPSILON / 2);
    size_t bad = 0, nan = 0;
    double me = 0, wr = 0;
    for (size_t i = 0; i < n; ++i) {
        const double v = f64 ? ((const double *)got)[i] : ((const float *)got)[i];
        const double e = fabs(v - ref[i]), bound = g * (abs ? abs[i] : fabs(ref[i]));
        if (!(e <= bound)) ++bad;
        if (isnan(e)) { ++nan; continue; }
        me = fmax(me, e);
        if (e > 0) wr = fmax(wr, bound > 0 ? e / bound : INFINITY);
    }
    if (max_err) *max_err = nan ? NAN : me;
    if (worst) *worst = nan ? NAN : wr;
    return bad;
}
