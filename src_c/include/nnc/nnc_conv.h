// nnc_conv.h - 2-D convolution (NHWC, HWIO): parameter structs and constants.
#ifndef NNC_CONV_H
#define NNC_CONV_H

// Geometry of one 2-D cross-correlation  y = act(x * W + b):
//   x  (n, h, w, ldx)  NHWC; the conv reads channels [0, c) of each pixel
//   W  (kh, kw, c/groups, k)  HWIO, dense
//   y  (n, oh, ow, ldy) NHWC; the conv writes channels [0, k) of each pixel
// The pointers passed to the ops point at channel 0 of the slice, so a layer
// can read the first c channels of a wider buffer (ldx > c) and write into a
// channel slice of another (ldy > k).  Backward ops use the same strides for
// dx (ldx) and dz (ldy).  Every field is checked by the ops (NNC_EINVAL).
//   oh = (h + pad_top + pad_bottom - dil_h*(kh-1) - 1) / stride_h + 1, >= 1
//   ow likewise.  Group g reads channels [g*c/G, (g+1)*c/G) and writes
//   [g*k/G, (g+1)*k/G), G = groups.
// Or'd into conv_fwd's act: a ReLU after res is added, y = max(0, act(conv +
// bias) + res) (the ReLU of a residual block's sum, in the same pass).
#define NNC_CONV_RES_RELU 256

typedef struct nnc_conv_desc {
    nnc_ssize n, h, w, c, k;          // batch, input height/width, in/out channels
    nnc_ssize kh, kw;                 // kernel
    nnc_ssize stride_h, stride_w;
    nnc_ssize dil_h, dil_w;
    nnc_ssize pad_top, pad_bottom, pad_left, pad_right;
    nnc_ssize groups;
    nnc_ssize oh, ow;                 // output size (must match the formula)
    nnc_ssize ldx, ldy;               // pixel strides of x / dx and y / dz (elements)
} nnc_conv_desc;

#endif
