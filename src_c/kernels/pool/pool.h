// kernels/pool/pool.h - 2-D max and average pooling on NHWC (template; see
// nnc_internal.h).  The problem and its checks: nnc/nnc_pool.h.
//
// One pass over memory, SIMD over channels: for every output pixel and every
// NNC_VLEN-channel slice, the window's cells inside the input are read in
// row-major order (padded cells are skipped, never read).
//   max: m starts at the window's first cell; a later cell v replaces it when
//        v > m, or when v is NaN and m is not.  Ties keep the first maximum
//        and the first NaN wins, so NaN propagates.  In training the winning
//        cell number i*kw + j is written to idx, as a value of NNC_T (exact:
//        windows have at most NNC_POOL_MAX_CELLS cells).
//   avg: the sum of the cells inside the input, in row-major order, divided
//        by their count.
// Forward: threads own output rows (n, oh).  Backward: threads own bands of
// input rows of one image; a band's dx rows are zeroed just before the first
// window reaches them, and every window touching the band adds its share in
// (oh, ow) order.  So each dx element is summed in the same order for any
// thread count or band split (bitwise-identical results).
// Both passes are the same for every ISA except the vector width: max is
// exact, avg differs only in the order lanes are added (none: one lane per
// channel), so every ISA gives bitwise the same result.
//
// Parts:
//   window.h  the problem's checks, one window's extent along an axis
//   fwd.h     maxpool2d_fwd, avgpool2d_fwd
//   bwd.h     maxpool2d_bwd, avgpool2d_bwd
#include "kernels/pool/window.h"
#include "kernels/pool/fwd.h"
#include "kernels/pool/bwd.h"
