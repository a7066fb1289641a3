// kernels/conv/conv.h - 2-D convolution, NHWC activations, HWIO weights
// (template; see nnc_internal.h).  Geometry: nnc_conv_desc (nnc_conv.h).
//
//   y[n,oh,ow,k] = act(b[k] + sum_{kh,kw,c} x[n, oh*sh-pt+kh*dh, ow*sw-pl+kw*dw, c] W[kh,kw,c,k])
//
// Paths (chosen from the geometry only, never from N or the thread count):
// - 1x1, stride 1, no padding, groups 1: the NHWC buffer is a (N*H*W, C)
//   matrix, so forward, dx and dW are single calls of the GEMM engine
//   (forward with at most a half-width vector of outputs: the direct engine).
// - everything else: a direct convolution.  A job computes a block of up
//   to 8 output rows of one image; its micro-kernel keeps RW pixels x NV
//   vectors of output channels in registers (up to 12 pixels when the
//   channels fill at most half the tile, e.g. K = 32 on AVX-512) and runs
//   broadcast-FMAs over a list of taps (kernel offsets that fall inside the
//   input), each tap a run of `len` reduction channels.  Interior pixels run
//   along each row; the pixels of an edge column (some taps outside the
//   input) run down the job's rows as a vertical tile, so they stream FMAs
//   too.  Weights are packed per call into output-channel blocks
//   [group][block][kh][kw][c][NB] (per-thread scratch; a pass over W).
//   Forward with dil_w == 1 and a dense input (ldx == C, groups 1) merges
//   the KW taps of a kernel row into one run of KW*C channels, so a short
//   reduction (C = 3 in a first layer) still streams FMAs.  With one
//   vector of outputs (K = 9-16 on AVX-512 float32), KW = 3 and stride 1
//   along the row, the interior runs the sliding kernels instead: a kernel
//   row's 3 weight vectors of a channel in registers and each input pixel
//   broadcast once for the 3 outputs it reaches (the general tile of one
//   vector issues a load per FMA).
//   dx is the same engine run backwards (transposed convolution as a
//   gather): each dx pixel collects dz * W^T over the taps that reach it;
//   with stride s the dx columns split into s residue classes, each of which
//   reads consecutive dz pixels.  Every thread owns the dx rows it writes.
//   Depthwise (C/G == K/G == 1) has its own micro-kernel: channels in the
//   vector lanes of both x and W.  Few output channels per group from a
//   long reduction (K = 3-9 from C = 32-352, dx of a first layer with 3
//   input channels; setup.h counts the FMAs) use conv_dot: reduction
//   channels in the lanes, tiles of up to NNC_CONV_RWD pixels x 4 outputs,
//   one horizontal sum per output; otherwise up to a half-width
//   vector (K = 8 on AVX-512 float32) uses the narrow kernels: up to 16
//   pixels x one half-width vector, at the full FMA rate on Zen 4 (and
//   one vector and a half, e.g. 24 channels, a full plus a half-width one).
//   Workspace, per thread: 2*KH*KW taps, plus the packed weights (about |W|
//   rounded up to whole vectors) on the calling thread; nothing grows with N.
// - dW (general case): a direct kernel with the GEMM micro-kernel's shape:
//   a register tile of up to NNC_CONV_RW(X) broadcast channels x NNC_CONV_NV vectors
//   per tap, one FMA chain over the pixels of a block of 8 output rows,
//   added into dW block after block.  The vectors hold dz's output channels,
//   or x's input channels when those fill the lanes better (K = 8 from 16
//   inputs; then into a transposed copy, scratch slot 3).  Threads own dW
//   tiles and read every row.  db in the same pass.  Depthwise dW: channels
//   in the lanes of both operands, a chain per output row.
//
// Determinism: each output element is one FMA chain over its taps in
// (kh, kw, c) order (the sliding kernels: (kh, c, kw)), whatever tile, edge
// path or thread computes it, and which kernel computes a pixel depends on
// the geometry only; dW and db add the blocks of output rows (images, then
// rows) in order.  So results are bitwise identical for any thread count
// and, for y and dx, any batch split.  Threads: from about 1 MFLOP (conv_threads).
//
// Files, in dependency order:
//   geometry.h          checks of the desc, path predicates, thread count
//   ukernels.h          the tap list, the tile store, the general register-tile kernels
//   ukernels_narrow.h   few output channels: half-width (ukrh), one and a half (ukrm), conv_dot
//   ukernels_slide.h    one vector of outputs, a 3-wide kernel row sliding along the output row
//   depthwise.h         depthwise register-tile kernels, depthwise dW
//   ukernels_filter.h   the register-tile kernels of dW (general conv)
//   ukernel_table.h     the kernel of each tile size
//   engine.h            the direct engine: tap lists, edge columns, jobs over threads
//   pack.h              weight packing for the engine
//   setup.h             the engine set up for forward or dx
//   forward.h           conv_fwd
//   bwd_data.h          conv_bwd_data (dx as a transposed convolution)
//   bwd_filter.h        conv_bwd_filter (dW, db)
#include "kernels/conv/geometry.h"
#include "kernels/conv/ukernels.h"
#include "kernels/conv/ukernels_narrow.h"
#include "kernels/conv/ukernels_slide.h"
#include "kernels/conv/depthwise.h"
#include "kernels/conv/ukernels_filter.h"
#include "kernels/conv/ukernel_table.h"
#include "kernels/conv/engine.h"
#include "kernels/conv/pack.h"
#include "kernels/conv/setup.h"
#include "kernels/conv/forward.h"
#include "kernels/conv/bwd_data.h"
#include "kernels/conv/bwd_filter.h"

#undef CONV_NB
#undef CONV_RWMAX
#undef CONV_HAS_NARROW
#undef CONV_UKR_PARAMS
#undef CONV_UKR_ARGS
#undef CONV_WUKR_PARAMS
#undef CONV_WUKR_ARGS
#undef CONV_KERNELS
#undef CONV_DWK_ROWS
