// nnc_cpu.h - the CPU model (runtime/cpu.c): what the blocking of the
// kernels depends on besides the ISA.
//
// At start-up nnc_init() reads the CPU's vendor, family/model and cache
// sizes (CPUID leaf 4 on Intel, 0x8000001D on AMD, sysfs as a fallback) and
// picks a row of a table of CPU families ("zen4", "sapphirerapids", ...).
// A row carries the cache sizes the blocking is derived from and how many
// 512-bit FMAs the family issues per cycle; a CPU no row names gets the
// "generic" row, built from the caches detected.  NNC_CPU=<row> forces a
// row (any row runs on any CPU: a row changes block sizes, never the
// instructions), so every row is tested on any machine.
//
// Results are bitwise the same for any thread count and batch split under
// one row and ISA; they may differ between rows, as between ISAs (the GEMM's
// KC slice depth is a row's).
#ifndef NNC_CPU_H
#define NNC_CPU_H

typedef struct nnc_cpu_model {
    const char *row;        // table row in use ("generic": derived from the caches detected)
    const char *vendor;     // CPUID vendor of this machine ("AuthenticAMD", "GenuineIntel", ...)
    int family, model;      // CPUID display family and model of this machine (0 if unknown)
    int l1d_kib;            // the row's L1 data cache per core
    int l2_kib;             // the row's L2 per core
    int l3_kib;             // the row's L3 share per core
    int fma512_pipes;       // 512-bit FMAs per cycle (1 = one port or double-pumped; 0 = no AVX-512)
    int kc_l1_pct;          // the share of L1d one KC x NR packed B panel may fill, percent
    int mc_l2_pct;          // the share of L2 the MC x KC packed A block may fill, percent
    int detected_l1d_kib;   // what this machine reported (0 if unknown)
    int detected_l2_kib;
    int detected_l3_kib;    // per core
} nnc_cpu_model;

// The row in use (never NULL after nnc_init).
const nnc_cpu_model *nnc_cpu(void);
// Switches to the row named `name` (NULL or "" = the one detected); NNC_EINVAL
// for an unknown name.  For tests and the bench: not while kernels run.
int nnc_set_cpu(const char *name);
int nnc_cpu_row_count(void);
const char *nnc_cpu_row_name(int i);   // NULL out of range
// The row this machine is detected as (what nnc_set_cpu(NULL) picks).
const char *nnc_cpu_detected_row(void);

#endif
