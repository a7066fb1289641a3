// isa/simd_math.h - element-wise functions on top of an ISA's simd.h
// (exp, tanh, sigmoid), and the partial-vector load/store helpers.
#include <math.h>

// float32 on AVX2/AVX-512: Cephes-style polynomials (about 2 ulp), NaN in,
// NaN out.  Everything else: the C library per lane (float64 stays exact to
// libm's accuracy, which the float64 gradient checks rely on).
#if NNC_SIMD_POLY_MATH && NNC_IS_F32
NNC_INLINE nnc_v NNC_FN(vexp)(nnc_v x)
{
    // Clamp so that 2^n stays a normal number; the operand order keeps NaN.
    x = nnc_vmin(nnc_vset1(88.3762626647949f), x);
    x = nnc_vmax(nnc_vset1(-87.3365447504f), x);
    nnc_v n = nnc_vround_(nnc_vmul(x, nnc_vset1(1.44269504088896341f)));
    nnc_v r = nnc_vfma(n, nnc_vset1(-0.693359375f), x);
    r = nnc_vfma(n, nnc_vset1(2.12194440e-4f), r);
    nnc_v p = nnc_vset1(1.9875691500e-4f);
    p = nnc_vfma(p, r, nnc_vset1(1.3981999507e-3f));
    p = nnc_vfma(p, r, nnc_vset1(8.3334519073e-3f));
    p = nnc_vfma(p, r, nnc_vset1(4.1665795894e-2f));
    p = nnc_vfma(p, r, nnc_vset1(1.6666665459e-1f));
    p = nnc_vfma(p, r, nnc_vset1(5.0000001201e-1f));
    p = nnc_vfma(p, nnc_vmul(r, r), nnc_vadd(r, nnc_vset1(1.0f)));
    return nnc_vmul(p, nnc_vpow2i_(n));
}

NNC_INLINE nnc_v NNC_FN(vtanh)(nnc_v x)
{
    // |x| < 0.625: odd polynomial; else 1 - 2 / (exp(2|x|) + 1) with x's sign.
    nnc_v ax = nnc_vmax(nnc_vsub(nnc_vzero(), x), x);
    nnc_v z = nnc_vmul(x, x);
    nnc_v p = nnc_vset1(-5.70498872745e-3f);
    p = nnc_vfma(p, z, nnc_vset1(2.06390887954e-2f));
    p = nnc_vfma(p, z, nnc_vset1(-5.37397155531e-2f));
    p = nnc_vfma(p, z, nnc_vset1(1.33314422036e-1f));
    p = nnc_vfma(p, z, nnc_vset1(-3.33332819422e-1f));
    nnc_v small = nnc_vfma(nnc_vmul(p, z), x, x);
    nnc_v e = NNC_FN(vexp)(nnc_vadd(ax, ax));
    nnc_v big = nnc_vsub(nnc_vset1(1.0f), nnc_vdiv(nnc_vset1(2.0f), nnc_vadd(e, nnc_vset1(1.0f))));
    big = nnc_vsel_gt(nnc_vzero(), x, nnc_vsub(nnc_vzero(), big), big);
    return nnc_vsel_ge(ax, nnc_vset1(0.625f), big, small);
}

NNC_INLINE nnc_v NNC_FN(vsigmoid)(nnc_v x)
{
    return nnc_vdiv(nnc_vset1(1.0f), nnc_vadd(nnc_vset1(1.0f), NNC_FN(vexp)(nnc_vsub(nnc_vzero(), x))));
}
#else
// f applied to each lane: the C library's float or double function.
NNC_INLINE nnc_v NNC_FN(vlanewise)(nnc_v x, float (*f32)(float), double (*f64)(double))
{
    NNC_T t[NNC_VLEN];
    nnc_vstore(t, x);
    for (int l = 0; l < NNC_VLEN; ++l) t[l] = NNC_IS_F32 ? (NNC_T)f32((float)t[l]) : (NNC_T)f64((double)t[l]);
    return nnc_vload(t);
}
NNC_INLINE nnc_v NNC_FN(vexp)(nnc_v x) { return NNC_FN(vlanewise)(x, expf, exp); }
NNC_INLINE nnc_v NNC_FN(vtanh)(nnc_v x) { return NNC_FN(vlanewise)(x, tanhf, tanh); }
NNC_INLINE nnc_v NNC_FN(vsigmoid)(nnc_v x)
{
    return nnc_vdiv(nnc_vset1(1), nnc_vadd(nnc_vset1(1), NNC_FN(vexp)(nnc_vsub(nnc_vzero(), x))));
}
#endif
#define nnc_vexp NNC_FN(vexp)
#define nnc_vtanh NNC_FN(vtanh)
#define nnc_vsigmoid NNC_FN(vsigmoid)

// n lanes at p, n >= 1: the full-vector instruction when n >= NNC_VLEN (the
// usual case, and the faster one), else the masked one on the first n.
NNC_INLINE nnc_v NNC_FN(vloadp)(const NNC_T *p, nnc_ssize n)
{
    return n >= NNC_VLEN ? nnc_vload(p) : nnc_vloadn(p, n);
}
NNC_INLINE void NNC_FN(vstorep)(NNC_T *p, nnc_v v, nnc_ssize n)
{
    if (n >= NNC_VLEN) nnc_vstore(p, v);
    else nnc_vstoren(p, v, n);
}
#define nnc_vloadp NNC_FN(vloadp)
#define nnc_vstorep NNC_FN(vstorep)
