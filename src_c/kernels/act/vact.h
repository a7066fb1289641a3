// kernels/act/vact.h - an activation and its gradient on one vector (part of
// kernels/act/act.h): the element-wise step every kernel with a fused
// activation shares.

// g(z) per lane for an element-wise nnc_act (softmax and unknown ids: z).
NNC_INLINE nnc_v NNC_FN(vact)(nnc_v z, int act)
{
    switch (act) {
    case NNC_ACT_RELU: return nnc_vmax(nnc_vzero(), z);              // keeps NaN
    case NNC_ACT_SIGMOID: return nnc_vsigmoid(z);
    case NNC_ACT_TANH: return nnc_vtanh(z);
    case NNC_ACT_SIGN: return nnc_vsel_ge(z, z, nnc_vsel_ge(z, nnc_vzero(), nnc_vset1(1), nnc_vzero()), z);
    default: return z;
    }
}

// dy * g'(z) per lane from the forward output y (softmax and unknown ids: dy).
NNC_INLINE nnc_v NNC_FN(vact_grad)(nnc_v y, nnc_v dy, int act)
{
    switch (act) {
    case NNC_ACT_RELU: return nnc_vsel_gt(y, nnc_vzero(), dy, nnc_vzero());
    case NNC_ACT_SIGMOID: return nnc_vmul(dy, nnc_vmul(y, nnc_vsub(nnc_vset1(1), y)));
    case NNC_ACT_TANH: return nnc_vmul(dy, nnc_vsub(nnc_vset1(1), nnc_vmul(y, y)));
    case NNC_ACT_SIGN: return nnc_vzero();
    default: return dy;
    }
}

// The ops act_fwd / act_bwd per lane: vact / vact_grad, and leaky ReLU with
// its slope a in every lane (not in vact: the fused epilogues carry no
// slope).  Leaky ReLU's gradient is taken from the forward input z in s
// (a slope <= 0 loses the sign of z in the output), the others' from the
// output y.  NaN compares false: a NaN z gives a * NaN = NaN forward and
// a * dy backward.
NNC_INLINE nnc_v NNC_FN(vact_a)(nnc_v z, int act, nnc_v a)
{
    return act == NNC_ACT_LEAKY_RELU ? nnc_vsel_gt(z, nnc_vzero(), z, nnc_vmul(z, a)) : NNC_FN(vact)(z, act);
}

NNC_INLINE nnc_v NNC_FN(vact_grad_a)(nnc_v s, nnc_v dy, int act, nnc_v a)
{
    return act == NNC_ACT_LEAKY_RELU ? nnc_vsel_gt(s, nnc_vzero(), dy, nnc_vmul(dy, a))
                                     : NNC_FN(vact_grad)(s, dy, act);
}
