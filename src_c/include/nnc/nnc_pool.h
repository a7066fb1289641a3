// nnc_pool.h - 2-D pooling (NHWC): parameter struct and constants.
#ifndef NNC_POOL_H
#define NNC_POOL_H

// One pooling problem: input x (n, h, w, c), output y (n, oh, ow, c), window
// (kh, kw) moved by (sh, sw) over the input padded by (ph, pw) cells on each
// side, with oh = (h + 2 ph - kh) / sh + 1 (likewise ow).  Padded cells never
// take part: they never win a max and are not counted in a mean.  The ops
// check the fields (NNC_EINVAL: h, w, kh, kw, sh, sw >= 1, 0 <= ph <= kh / 2,
// 0 <= pw <= kw / 2, oh/ow as above; NNC_EOVERFLOW: a size product overflows).
typedef struct nnc_pool_desc {
    nnc_ssize n, h, w, c;   // input
    nnc_ssize oh, ow;       // output
    nnc_ssize kh, kw;       // window
    nnc_ssize sh, sw;       // stride
    nnc_ssize ph, pw;       // padding on each side (top = bottom, left = right)
} nnc_pool_desc;

// Largest window (kh * kw cells) of max pooling: the argmax is kept as the
// cell number in the element type, exact in float32 up to 2^24.
#define NNC_POOL_MAX_CELLS ((nnc_ssize)1 << 24)

#endif
