// kernels/rnn/rnn.h - SimpleRNN, LSTM, GRU over whole sequences, and ConvRNN2D /
// ConvLSTM2D (template; see nnc_internal.h).  The family's files, in order:
//   rnn/gates.h     fused gate passes (element-wise, any rows) and the cell ops
//   rnn/context.h   the per-call context shared by forward and backward, and the
//                   gate and phase counts of a cell
//   rnn/gemv.h      the recurrent product on one thread (GEMM, batch-1 streams)
//   rnn/step.h      one step of the forward for a row block and a unit slice
//   rnn/forward.h   the forward's schedules, workspace and op (rnn_fwd)
//   rnn/backward.h  backpropagation through time (rnn_bwd)
//   rnn/convrnn.h   ConvRNN2D / ConvLSTM2D, from the conv kernels and gates.h
// The column split's claim board is runtime/claim.h.
//
// Forward (one call per sequence):
//   1. input projection for every timestep: a (n*t, GH) = x Wx^T + bias, the
//      same GEMM elements however it is cut (one GEMM, a step's rows of a
//      batch block, or a thread's columns);
//   2. W_h packed once per call (gemm_pack_b layout);
//   3. the time loop, in C: each thread owns a fixed block of batch rows for
//      the whole sequence (rows are independent) and (blocks of >= 4 rows)
//      runs 1. for its rows step by step, each step's rows right before the
//      step (they are still in cache when the step adds to them; with
//      lengths row by row before its time loop instead), so there
//      is one parallel region per call and no barrier at all; a step is one
//      recurrent GEMM (beta = 1 onto the step's rows of a, or into q for GRU
//      reset_after) plus one fused pass computing every gate and the new
//      state.
//   Small batches with a big step (batch 1) instead cut the hidden units into
//   slices (rnn_fwd_slices): each thread owns a fixed block of slices (all
//   gates of those units), sets it up itself (packs its part of W_h, which
//   then stays in its own L2, and runs 1. for its columns) and claims its own
//   slices first each step, then any slice nobody has claimed yet; steps are
//   separated by a spin-then-yield wait on a counter.  A descheduled thread
//   (a loaded core) therefore never holds back work it has not started, and
//   a stall (a partner descheduled while holding a slice, or late at the
//   join) makes the waiting thread finish alone and tells the library's
//   stall guard (nnc_stall_note), which sends the next calls to one thread
//   for a while.
//   One row (batch 1) runs the recurrent product as rnn_gemv: the GEMM's
//   per-element FMA chain over the packed gate blocks, four gate streams at
//   a time, no packing of h and no per-call set-up.
// Backward: per step (reverse) one fused pass gives the gate gradients da_t,
// dh_{t-1} goes through the recurrent GEMM with W_h (packed once); at the end
// dWx, dWh, dx and the bias gradients are large GEMMs / column sums over all
// n*t rows.
//
// Lengths (d->lengths, rows sorted longest first by the layer): the rows that
// run step t are a prefix of the batch (lengths_active_end), so every schedule
// runs each step on that prefix of its rows only, batch blocks are cut to
// equal shares of the steps to run (rnn_block_start), and the backward keeps
// its per-step rows packed step after step, so its final GEMMs cover the
// steps that ran and nothing else.  With d->order the kernels read x and dhs
// and write dx (and hs_out, a copy of hs) in the caller's row order, so the
// layer copies none of them into or out of length order.
//
// Determinism: a row's result never depends on which thread, batch block or
// slice computes it (the GEMM and rnn_gemv give every element the same FMA
// chain whatever m and the tile; the gate passes are element-wise), and the
// final reductions run over the n*t rows in a fixed order.  So outputs and
// gradients are bitwise identical for any thread count and any batch split.

#include "kernels/rnn/gates.h"
#include "kernels/rnn/context.h"
#include "kernels/rnn/gemv.h"
#include "kernels/rnn/step.h"
#include "kernels/rnn/forward.h"
#include "kernels/rnn/backward.h"
#include "kernels/rnn/convrnn.h"
