// reference.h - naive double-precision references for the harness's error columns:
// GEMM, 2-D convolution (forward, dx, dW + db) and 2-D pooling (max, average;
// forward and backward).  Plain loops in the textbook order, sharing no code
// with the library: they take the problem in their own structs (not the
// library's parameter structs) and double arrays, and also give, where a sum
// is formed, the sum of the terms' absolute values, from which
// ref_error_check bounds the rounding error of any summation order.
#ifndef NNC_BENCH_REFERENCE_H
#define NNC_BENCH_REFERENCE_H
#include <stddef.h>

// Convolution geometry: x (n, h, w, c) NHWC, weights (kh, kw, c / groups, k)
// HWIO, y (n, oh, ow, k); output pixel (i, j) reads input row
// i * sh - pt + a * dh for kernel row a (likewise columns with sw, pl, dw);
// rows and columns outside the input read zero.
typedef struct {
    long n, h, w, c, k, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, groups;
} ref_conv;

// Pooling geometry: x (n, h, w, c), y (n, oh, ow, c), window (kh, kw) at
// stride (sh, sw) over the input padded by (ph, pw) on each side; padded
// cells never win a max and are not counted in a mean.
typedef struct {
    long n, h, w, c, oh, ow, kh, kw, sh, sw, ph, pw;
} ref_pool;

// Converts n values of a float (f64 = 0) or double array to double.
void ref_to_double(double *dst, const void *src, size_t n, int f64);

// C = op(A) op(B), op(A) (m, k), op(B) (k, n), C (m, n) row-major, overwritten;
// A is (m, k) with row stride lda, or (k, m) when ta; B is (k, n) with row
// stride ldb, or (n, k) when tb.  Cabs (may be NULL) = |op(A)| |op(B)|.
// Parallel over the rows of C.
void ref_gemm(int ta, int tb, long m, long n, long k, const double *A, long lda, const double *B, long ldb,
              double *C, double *Cabs);

// y = act(conv(x, W) + b), act = ReLU when relu, else identity; b may be NULL.
// yabs (may be NULL) = sum of |x w| + |b| per output (before the activation).
void ref_conv_fwd(const ref_conv *g, const double *x, const double *W, const double *b, int relu, double *y,
                  double *yabs);
// dx = the transposed convolution of dz (n, oh, ow, k) with W: the gradient of
// sum(dz * conv(x, W)) with respect to x.  dxabs (may be NULL) likewise of |dz| |W|.
void ref_conv_bwd_data(const ref_conv *g, const double *dz, const double *W, double *dx, double *dxabs);
// dW = the gradient of sum(dz * conv(x, W)) with respect to W, db = dz summed
// over n, oh, ow (db may be NULL); dWabs, dbabs (may be NULL) likewise of |x| |dz|.
void ref_conv_bwd_filter(const ref_conv *g, const double *x, const double *dz, double *dW, double *db,
                         double *dWabs, double *dbabs);

// One element of each pass, gathered (the form the harness uses to check a sample of a large
// problem's outputs): the value at flat index `at` of y (ref_conv_fwd), dx (ref_conv_bwd_data, a gather
// over the kernel taps and the group's output channels whose output pixel reads that input cell) and dW
// (ref_conv_bwd_filter, a gather over n, oh, ow); *abs (abs may be NULL) the sum of the terms' absolute
// values, as the whole-tensor forms give.
double ref_conv_fwd_at(const ref_conv *g, const double *x, const double *W, const double *b, int relu, size_t at,
                       double *abs);
double ref_conv_bwd_data_at(const ref_conv *g, const double *dz, const double *W, size_t at, double *abs);
double ref_conv_bwd_filter_at(const ref_conv *g, const double *x, const double *dz, size_t at, double *abs);
// db = dz summed over n, oh, ow alone (ref_conv_bwd_filter's db without dW); dbabs (may be NULL) of |dz|.
void ref_conv_bwd_bias(const ref_conv *g, const double *dz, double *db, double *dbabs);

// y = the window maxima of x.
void ref_maxpool_fwd(const ref_pool *g, const double *x, double *y);
// dx = dy routed to each window's first (row-major) maximal cell of x, summed
// where windows overlap.
void ref_maxpool_bwd(const ref_pool *g, const double *x, const double *dy, double *dx);
// y = the window means of x over the cells inside the input.
void ref_avgpool_fwd(const ref_pool *g, const double *x, double *y);
// dx = the gradient of sum(dy * avgpool(x)) with respect to x.
void ref_avgpool_bwd(const ref_pool *g, const double *dy, double *dx);

// Compares n values of got (float or double array) with ref: each must be
// within (gamma(k, dtype) + gamma(k, double)) * abs[i] of ref[i], gamma(k, t) =
// k u / (1 - k u) with u the unit roundoff of t: the rounding of a k-term
// sum of products in any order, and of the double reference.  abs NULL:
// abs = |ref| (exact-selection results such as pooling maxima).  Returns the
// number of elements outside their bound (NaN counts); *max_err = max |got -
// ref| and *worst = max |got - ref| / bound (0 where the bound is 0 and the
// values agree).
size_t ref_error_check(const void *got, int f64, const double *ref, const double *abs, size_t n, double k,
                       double *max_err, double *worst);

// Checks the references at small sizes: a 1x1 convolution against ref_gemm,
// a strided, padded, grouped, dilated convolution against an im2col product
// through the library's float64 GEMM, dx and dW against the forward
// (adjoint identities), the gathered one-element conv forms against the
// whole-tensor ones, and the pooling backward passes against their forward
// passes.  Returns 0, or -1 after printing the failed check to stderr.
int ref_self_test(void);
#endif
