// isa/scalar/simd.h - the portable baseline: one lane,
// vector wrappers for float32 and float64 (NNC_IS_F32 picks), so every kernel
// template is written once.  Included once per dtype by isa/instantiate.h;
// isa/simd_undef.h removes everything again.  Every ISA's simd.h defines:
//
//   nnc_v, NNC_VLEN                  vector type and lanes
//   nnc_vzero() nnc_vset1(x)         constants
//   nnc_vload(p) nnc_vstore(p, v)    unaligned full-vector load/store
//   nnc_vloadn(p, n) nnc_vstoren(p, v, n)
//                                    first n < NNC_VLEN lanes (others read as 0,
//                                    never touched in memory: no out-of-bounds access)
//   nnc_vmask nnc_vmaskn(n) nnc_vloadm(p, m)
//                                    the mask of the first n < NNC_VLEN lanes, made once
//                                    (outside a loop) for nnc_vloadm: nnc_vloadn's load
//   nnc_vloadp(p, n) nnc_vstorep(p, v, n)
//                                    n lanes, whole or partial: the full-vector
//                                    instruction when n >= NNC_VLEN, else the masked one
//   nnc_vadd vsub vmul vdiv          arithmetic; nnc_vfma(a, b, c) = a*b + c, fused
//                                    wherever the ISA has FMA (so only use it where
//                                    the rounding is the same for every caller)
//   nnc_vmax(a, b) nnc_vmin(a, b)    a > b ? a : b (resp. <): b wins when either is
//                                    NaN, so nnc_vmax(zero, x) keeps a NaN x
//   nnc_vsel_gt(a, b, x, y)          a > b ? x : y per lane (NaN compares false)
//   nnc_vsel_ge / nnc_vsel_eq        a >= b, a == b likewise
//   nnc_vhsum(v)                     horizontal sum in a fixed lane order
//   nnc_vhsums(v, out)               out[i] = nnc_vhsum(v[i]) for NNC_VLEN vectors, bitwise,
//                                    by one transposing network (the same lane pairings)
//   nnc_vsqrt(v)
//   nnc_vh, NNC_VHLEN                half-width vector; nnc_vhzero() nnc_vhset1(x)
//                                    nnc_vhload(p) nnc_vhfma(a, b, c) as above, and
//                                    nnc_vhwiden(v): the nnc_v with v in its low lanes, 0 above
//   nnc_vtransp(dst, ldd, src, lds)  NNC_TB x NNC_TB block transpose: dst[j*ldd+i] = src[i*lds+j]
//   NNC_SIMD_POLY_MATH               1: float32 exp/tanh/sigmoid by polynomials (isa/simd_math.h)
#define NNC_SIMD_POLY_MATH 0

#define nnc_v NNC_T
#define NNC_VLEN 1
#define nnc_vzero() ((NNC_T)0)
#define nnc_vset1(x) ((NNC_T)(x))
#define nnc_vload(p) (*(p))
#define nnc_vstore(p, v) (*(p) = (v))
#define nnc_vloadn(p, n) ((n) > 0 ? *(p) : (NNC_T)0)
#define nnc_vmask int
#define nnc_vmaskn(n) ((n) > 0)
#define nnc_vloadm(p, m) ((m) ? *(p) : (NNC_T)0)
#define nnc_vstoren(p, v, n) do { if ((n) > 0) *(p) = (v); } while (0)
#define nnc_vadd(a, b) ((a) + (b))
#define nnc_vsub(a, b) ((a) - (b))
#define nnc_vmul(a, b) ((a) * (b))
#define nnc_vdiv(a, b) ((a) / (b))
#define nnc_vfma(a, b, c) ((a) * (b) + (c))
#define nnc_vmax(a, b) ((a) > (b) ? (a) : (b))
#define nnc_vmin(a, b) ((a) < (b) ? (a) : (b))
#define nnc_vsel_gt(a, b, x, y) ((a) > (b) ? (x) : (y))
#define nnc_vsel_ge(a, b, x, y) ((a) >= (b) ? (x) : (y))
#define nnc_vsel_eq(a, b, x, y) ((a) == (b) ? (x) : (y))
#define nnc_vhsum(v) (v)
#define nnc_vhsums(v, out) (*(out) = *(v))
#define nnc_vsqrt(v) (NNC_IS_F32 ? (NNC_T)sqrtf((float)(v)) : (NNC_T)sqrt((double)(v)))
#define nnc_vh NNC_T
#define NNC_VHLEN 1
#define nnc_vhzero() ((NNC_T)0)
#define nnc_vhset1(x) ((NNC_T)(x))
#define nnc_vhload(p) (*(p))
#define nnc_vhfma(a, b, c) ((a) * (b) + (c))
#define nnc_vhwiden(v) (v)
#define NNC_TB 1
#define nnc_vtransp(dst, ldd, src, lds) ((dst)[0] = (src)[0])
