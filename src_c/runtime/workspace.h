// runtime/workspace.h - carving a caller's workspace into 64-byte aligned
// pieces.  An op that needs scratch memory takes a `workspace` pointer and
// has a *_workspace_size op (elements of the op's type; -1 on overflow).
// The size op adds its pieces up with nnc_ws_reserve, starting from
// NNC_WS_ALIGN bytes (the caller's array may be aligned to its element size
// only), and converts with nnc_ws_elements; the op takes the same pieces in
// the same order with nnc_ws_take.  Every piece starts on a cache line, so
// packed panels do not straddle lines and a piece's lines are its own.
#ifndef NNC_RUNTIME_WORKSPACE_H
#define NNC_RUNTIME_WORKSPACE_H

#include <stdint.h>
#include "nnc_internal.h"

#define NNC_WS_ALIGN 64

// *total += count * elem_bytes rounded up to NNC_WS_ALIGN; 0 on overflow (or
// a negative count), leaving *total as it was.
static inline int nnc_ws_reserve(nnc_ssize *total, nnc_ssize count, nnc_ssize elem_bytes)
{
    nnc_ssize bytes, sum;
    if (!nnc_mul_ok(count, elem_bytes, &bytes) || __builtin_add_overflow(bytes, NNC_WS_ALIGN - 1, &bytes) ||
        __builtin_add_overflow(*total, bytes / NNC_WS_ALIGN * NNC_WS_ALIGN, &sum))
        return 0;
    *total = sum;
    return 1;
}

// The workspace elements (elem_bytes each) holding `bytes`; -1 for bytes < 0.
static inline nnc_ssize nnc_ws_elements(nnc_ssize bytes, nnc_ssize elem_bytes)
{
    return bytes < 0 ? -1 : NNC_CEILDIV(bytes, elem_bytes);
}

// The next piece of count * elem_bytes bytes at *cursor (aligned up to
// NNC_WS_ALIGN); advances *cursor past it.
static inline void *nnc_ws_take(char **cursor, nnc_ssize count, nnc_ssize elem_bytes)
{
    const uintptr_t at = ((uintptr_t)*cursor + NNC_WS_ALIGN - 1) & ~(uintptr_t)(NNC_WS_ALIGN - 1);
    *cursor = (char *)at + count * elem_bytes;
    return (void *)at;
}

#endif
