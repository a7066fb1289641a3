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
