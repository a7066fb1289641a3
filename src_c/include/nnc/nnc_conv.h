// nnc_conv.h - 2-D convolution (NHWC, HWIO): parameter structs and constants.
#ifndef NNC_CONV_H
#define NNC_CONV_H

#endif
