// nnc_act.h - element-wise activations, dense and perceptron helpers: parameter structs and constants.
#ifndef NNC_ACT_H
#define NNC_ACT_H

#endif
