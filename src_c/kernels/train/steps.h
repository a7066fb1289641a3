// kernels/train/steps.h - the element-wise training loops (part of
// kernels/train/train.h): the optimiser steps sgd_step and adam_step, and
// add.  Threads own blocks of NNC_TRAIN_BLOCK elements; every element is
// computed alone, so results do not depend on the threads.

// Which optimiser step_run applies.
enum { NNC_FN(STEP_SGD), NNC_FN(STEP_ADAM) };

// One optimiser step over n elements (see ops/train.def for the formulas).
typedef struct {
    NNC_T *p;                    // parameters, updated in place
    const NNC_T *g;              // their gradient
    NNC_T *m, *v;                // Adam: the moments; SGD: v the velocity (or NULL), m unused
    NNC_T lr, momentum;          // SGD
    NNC_T b1, b2, eps, bc1, sqrt_bc2;  // Adam (and lr)
} NNC_FN(step_args);

// SGD on elements [s, e):  v = momentum*v + g (when v);  p -= lr*(v or g).
NNC_INLINE void NNC_FN(sgd_block)(const NNC_FN(step_args) *a, nnc_ssize s, nnc_ssize e)
{
    const nnc_v vlr = nnc_vset1(a->lr), vmo = nnc_vset1(a->momentum);
    const NNC_T *g = a->g;
    NNC_T *p = a->p, *v = a->v;
    for (nnc_ssize i = s; i < e; i += NNC_VLEN) {
        const nnc_ssize k = NNC_MIN(NNC_VLEN, e - i);
        nnc_v d = nnc_vloadp(g + i, k);
        if (v) {
            d = nnc_vadd(nnc_vmul(vmo, nnc_vloadp(v + i, k)), d);
            nnc_vstorep(v + i, d, k);
        }
        nnc_vstorep(p + i, nnc_vsub(nnc_vloadp(p + i, k), nnc_vmul(vlr, d)), k);
    }
}

// Adam on elements [s, e):  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
// p -= (lr / bc1) m / (sqrt(v) / sqrt_bc2 + eps).
NNC_INLINE void NNC_FN(adam_block)(const NNC_FN(step_args) *a, nnc_ssize s, nnc_ssize e)
{
    const nnc_v vb1 = nnc_vset1(a->b1), vc1 = nnc_vset1(1 - a->b1);
    const nnc_v vb2 = nnc_vset1(a->b2), vc2 = nnc_vset1(1 - a->b2);
    const nnc_v vstep = nnc_vset1(a->lr / a->bc1), vsb2 = nnc_vset1(a->sqrt_bc2), veps = nnc_vset1(a->eps);
    const NNC_T *g = a->g;
    NNC_T *p = a->p, *m = a->m, *v = a->v;
    for (nnc_ssize i = s; i < e; i += NNC_VLEN) {
        const nnc_ssize k = NNC_MIN(NNC_VLEN, e - i);
        nnc_v gi = nnc_vloadp(g + i, k);
        nnc_v mi = nnc_vadd(nnc_vmul(vb1, nnc_vloadp(m + i, k)), nnc_vmul(vc1, gi));
        nnc_v vi = nnc_vadd(nnc_vmul(vb2, nnc_vloadp(v + i, k)), nnc_vmul(vc2, nnc_vmul(gi, gi)));
        nnc_v den = nnc_vadd(nnc_vdiv(nnc_vsqrt(vi), vsb2), veps);
        nnc_vstorep(m + i, mi, k);
        nnc_vstorep(v + i, vi, k);
        nnc_vstorep(p + i, nnc_vsub(nnc_vloadp(p + i, k), nnc_vmul(vstep, nnc_vdiv(mi, den))), k);
    }
}

// Applies the optimiser `kind` to n elements, blocks of NNC_TRAIN_BLOCK on
// threads (work: flops for nnc_threads_for).
static void NNC_FN(step_run)(const NNC_FN(step_args) *a, nnc_ssize n, double work, int kind)
{
    int nt = nnc_threads_for(work);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize s = 0; s < n; s += NNC_TRAIN_BLOCK) {
        const nnc_ssize e = NNC_MIN(n, s + NNC_TRAIN_BLOCK);
        if (kind == NNC_FN(STEP_SGD)) NNC_FN(sgd_block)(a, s, e);
        else NNC_FN(adam_block)(a, s, e);
    }
}

static int NNC_FN(sgd_step)(NNC_T *p, const NNC_T *g, NNC_T *v, nnc_ssize n, NNC_T lr, NNC_T momentum)
{
    if (n <= 0) return NNC_OK;
    NNC_FN(step_args) a = {.p = p, .g = g, .v = v, .lr = lr, .momentum = momentum};
    NNC_FN(step_run)(&a, n, 3.0 * (double)n, NNC_FN(STEP_SGD));
    return NNC_OK;
}

static int NNC_FN(adam_step)(NNC_T *p, const NNC_T *g, NNC_T *m, NNC_T *v, nnc_ssize n, NNC_T lr, NNC_T b1,
                             NNC_T b2, NNC_T eps, NNC_T bc1, NNC_T sqrt_bc2)
{
    if (n <= 0) return NNC_OK;
    NNC_FN(step_args) a = {.p = p, .g = g, .m = m, .v = v, .lr = lr, .b1 = b1, .b2 = b2, .eps = eps, .bc1 = bc1,
                           .sqrt_bc2 = sqrt_bc2};
    NNC_FN(step_run)(&a, n, 10.0 * (double)n, NNC_FN(STEP_ADAM));
    return NNC_OK;
}

// y = a + b over n elements (y may alias a or b).
static int NNC_FN(add)(NNC_T *y, const NNC_T *a, const NNC_T *b, nnc_ssize n)
{
    if (n <= 0) return NNC_OK;
    int nt = nnc_threads_for((double)n);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize s = 0; s < n; s += NNC_TRAIN_BLOCK) {
        nnc_ssize e = NNC_MIN(n, s + NNC_TRAIN_BLOCK), i = s;
        for (; i + NNC_VLEN <= e; i += NNC_VLEN)
            nnc_vstore(y + i, nnc_vadd(nnc_vload(a + i), nnc_vload(b + i)));
        if (i < e) nnc_vstoren(y + i, nnc_vadd(nnc_vloadn(a + i, e - i), nnc_vloadn(b + i, e - i)), e - i);
    }
    return NNC_OK;
}
