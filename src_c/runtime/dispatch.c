// runtime/dispatch.c - ISA choice and the public entry points.
//
// nnc_init() picks the best ISA this CPU supports (lowered by NNC_ISA) and
// the CPU row (runtime/cpu.c, NNC_CPU), and fills the two active ops tables;
// every public nnc_<op>_<dtype>() forwards to the table.  The tables are written only by nnc_init/nnc_set_isa, which
// the bindings call with the GIL held (import time, tests, the bench).
#include <stdlib.h>
#include <string.h>
#include "nnc_internal.h"
#include "ops_table.h"

static nnc_ops_f32 ops_f32;
static nnc_ops_f64 ops_f64;
static int active_isa = -1;

static const char *const isa_names[NNC_ISA_COUNT] = {"scalar", "avx2", "avx512"};

const char *nnc_isa_name(int isa)
{
    return (isa >= 0 && isa < NNC_ISA_COUNT) ? isa_names[isa] : "unknown";
}

int nnc_isa_supported(int isa)
{
    if (isa == NNC_ISA_SCALAR) return 1;
#if defined(NNC_HAVE_X86) && (defined(__GNUC__) || defined(__clang__))
    // __builtin_cpu_supports consults CPUID and, since GCC 11 / clang 12,
    // checks that the OS enabled the YMM/ZMM state (XCR0).
    __builtin_cpu_init();
    if (isa == NNC_ISA_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == NNC_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return 0;
}

int nnc_set_isa(int isa)
{
    if (isa < 0 || isa >= NNC_ISA_COUNT || !nnc_isa_supported(isa)) return NNC_EINVAL;
    switch (isa) {
#ifdef NNC_HAVE_X86
    case NNC_ISA_AVX512:
        nnc_fill_ops_f32__avx512(&ops_f32);
        nnc_fill_ops_f64__avx512(&ops_f64);
        break;
    case NNC_ISA_AVX2:
        nnc_fill_ops_f32__avx2(&ops_f32);
        nnc_fill_ops_f64__avx2(&ops_f64);
        break;
#endif
    default:
        nnc_fill_ops_f32__scalar(&ops_f32);
        nnc_fill_ops_f64__scalar(&ops_f64);
        break;
    }
    active_isa = isa;
    return NNC_OK;
}

int nnc_get_isa(void) { return active_isa; }

int nnc_init(void)
{
    int best = NNC_ISA_SCALAR;
    for (int isa = NNC_ISA_COUNT - 1; isa > NNC_ISA_SCALAR; --isa)
        if (nnc_isa_supported(isa)) { best = isa; break; }
    int status = NNC_OK;
    const char *want = getenv("NNC_ISA");
    if (want && *want) {
        int asked = -1;
        for (int isa = 0; isa < NNC_ISA_COUNT; ++isa)
            if (strcmp(want, isa_names[isa]) == 0) asked = isa;
        if (asked >= 0 && asked <= best && nnc_isa_supported(asked)) best = asked;
        else status = NNC_EINVAL;
    }
    nnc_set_isa(best);
    if (nnc_set_cpu(getenv("NNC_CPU")) != NNC_OK) status = NNC_EINVAL;
    return status;
}

#define NNC_OP(ret, name, params, args) ret nnc_##name##_f32 params { return ops_f32.name args; }
#define NNC_T float
#include "nnc/ops.def"
#undef NNC_T
#undef NNC_OP
#define NNC_OP(ret, name, params, args) ret nnc_##name##_f64 params { return ops_f64.name args; }
#define NNC_T double
#include "nnc/ops.def"
#undef NNC_T
#undef NNC_OP
