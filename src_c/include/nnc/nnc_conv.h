// nnc_conv.h - 2-D convolution (NHWC, HWIO): parameter structs and constants.
#ifndef NNC_CONV_H
#define NNC_CONV_H

// Geometry of one 2-D cross-correlation  y = act(x * W + b):
//   x  (N, H, W, ldx)  NHWC; the conv reads channels [0, C) of each pixel
//   W  (KH, KW, C/groups, K)  HWIO, dense
//   y  (N, OH, OW, ldy) NHWC; the conv writes channels [0, K) of each pixel
// The pointers passed to the ops point at channel 0 of the slice, so a layer
// can read the first C channels of a wider buffer (ldx > C) and write into a
// channel slice of another (ldy > K).  Backward ops use the same strides for
// dx (ldx) and dz (ldy).  Every field is checked by the ops (NNC_EINVAL).
//   OH = (H + pad_top + pad_bottom - dil_h*(KH-1) - 1) / stride_h + 1, >= 1
//   OW likewise.  Group g reads channels [g*C/G, (g+1)*C/G) and writes
//   [g*K/G, (g+1)*K/G).
typedef struct nnc_conv_params {
    nnc_ssize N, H, W, C, K;          // batch, input height/width, in/out channels
    nnc_ssize KH, KW;                 // kernel
    nnc_ssize stride_h, stride_w;
    nnc_ssize dil_h, dil_w;
    nnc_ssize pad_top, pad_bottom, pad_left, pad_right;
    nnc_ssize groups;
    nnc_ssize OH, OW;                 // output size (must match the formula)
    nnc_ssize ldx, ldy;               // pixel strides of x / dx and y / dz (elements)
} nnc_conv_params;

#endif
