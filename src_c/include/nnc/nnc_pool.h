// nnc_pool.h - pooling: parameter structs and constants.
#ifndef NNC_POOL_H
#define NNC_POOL_H

#endif
