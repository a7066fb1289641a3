// runtime/cpu.c - the CPU model (nnc_cpu.h): detection and the table of CPU
// families the blocking is derived from.
//
// A row holds a family's nominal cache sizes (not this machine's: forcing a
// row elsewhere reproduces that family's blocking exactly) and the shares of
// L1 and L2 the GEMM's packed panels may fill.  kernels/gemm/gemm.h derives
// KC, MC and NC from them.  The shares: a KC x NR packed B panel is reused by
// every MR-row tile of a block, so it stays in L1 with room for the A panel
// streaming past it; the MC x KC A block stays in L2.  Values:
// - zen4: KC 256 (a 32 KiB panel in a 32 KiB L1d, measured ~3% faster than
//   KC 128 on Zen 4), MC 264 (float32, AVX-512): the tuning of the kernels.
// - zen5: the same 32 KiB panel, in a 48 KiB L1d; two full-width 512-bit pipes.
// - Intel server cores: half of L1d for the panel (48 KiB L1d: KC 192 for
//   a 128-byte NR row), the larger L2 for a larger MC.
// - generic: the caches detected, half of L1d and a quarter of L2.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define NNC_CPUID 1
#endif
#include "nnc_internal.h"

typedef struct {
    const char *name;
    int vendor;             // 1 AMD, 2 Intel
    int family;             // display family
    const unsigned char *models;   // display models (0-terminated list), NULL = any model of the family
    int avx512;             // 1: only with AVX-512, 0: only without, -1: either
    int l1d_kib, l2_kib, l3_kib, pipes, kc_l1_pct, mc_l2_pct;
} cpu_row;

enum { VENDOR_OTHER = 0, VENDOR_AMD = 1, VENDOR_INTEL = 2 };

static const unsigned char intel_skx_models[] = {0x55, 0x6A, 0x6C, 0};       // Skylake-SP .. Ice Lake-SP
static const unsigned char intel_spr_models[] = {0x8F, 0xCF, 0xAD, 0xAE, 0};  // Sapphire, Emerald, Granite Rapids
static const unsigned char intel_client512_models[] = {0x7D, 0x7E, 0x8C, 0x8D, 0xA7, 0};  // Ice/Tiger/Rocket Lake

// Checked in order; the first match wins.  "generic" (last) has no caches of
// its own: it takes the ones detected.
static const cpu_row rows[] = {
    {"zen2", VENDOR_AMD, 0x17, NULL, 0, 32, 512, 4096, 0, 100, 26},
    {"zen3", VENDOR_AMD, 0x19, NULL, 0, 32, 512, 4096, 0, 100, 26},
    {"zen4", VENDOR_AMD, 0x19, NULL, 1, 32, 1024, 4096, 1, 100, 26},
    {"zen5", VENDOR_AMD, 0x1A, NULL, -1, 48, 1024, 4096, 2, 67, 26},
    {"skylakex", VENDOR_INTEL, 6, intel_skx_models, 1, 32, 1024, 1408, 2, 50, 40},
    {"sapphirerapids", VENDOR_INTEL, 6, intel_spr_models, 1, 48, 2048, 1920, 2, 50, 40},
    {"icelake", VENDOR_INTEL, 6, intel_client512_models, 1, 48, 512, 2048, 1, 50, 40},
    {"haswell", VENDOR_INTEL, 6, NULL, 0, 32, 256, 2048, 0, 50, 40},
    {"generic", VENDOR_OTHER, 0, NULL, -1, 0, 0, 0, 0, 50, 25},
};
#define NROWS ((int)(sizeof rows / sizeof rows[0]))
#define GENERIC (NROWS - 1)

static struct {
    int vendor, family, model, avx512, l1d, l2, l3;
    char vendor_name[13];
} machine;
static nnc_cpu_model active;
static int detected_row = -1;

#ifdef NNC_CPUID
// Cache sizes from the deterministic cache leaf (Intel 4, AMD 0x8000001D:
// the same layout); the L3 share per core divides by the logical
// processors sharing it and multiplies by the threads per core.
static void cpuid_caches(unsigned leaf, int smt)
{
    for (unsigned i = 0; i < 16; ++i) {
        unsigned a, b, c, d;
        __cpuid_count(leaf, i, a, b, c, d);
        const unsigned type = a & 31, level = (a >> 5) & 7;
        if (type == 0) break;
        if (type == 2) continue;   // instruction cache
        const long long bytes = (long long)(((b >> 22) & 1023) + 1) * (((b >> 12) & 1023) + 1) *
                                ((b & 4095) + 1) * ((long long)c + 1);
        const int kib = (int)(bytes >> 10), sharing = (int)((a >> 14) & 4095) + 1;
        if (level == 1) machine.l1d = kib;
        else if (level == 2) machine.l2 = kib;
        else if (level == 3) machine.l3 = kib / (sharing > smt ? sharing / smt : 1);
    }
}
#endif

// The caches from sysfs (Linux), where CPUID gave none.
static void sysfs_caches(void)
{
    for (int i = 0; i < 8; ++i) {
        char path[96], type[32] = "";
        int level = 0, kib = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f) break;
        if (fscanf(f, "%d", &level) != 1) level = 0;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%31s", type) != 1) type[0] = 0;
            fclose(f);
        }
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%dK", &kib) != 1) kib = 0;
            fclose(f);
        }
        if (strcmp(type, "Instruction") == 0 || kib <= 0) continue;
        if (level == 1 && !machine.l1d) machine.l1d = kib;
        else if (level == 2 && !machine.l2) machine.l2 = kib;
        else if (level == 3 && !machine.l3) machine.l3 = kib;   // whole L3: an upper bound of the share
    }
}

static void detect(void)
{
#ifdef NNC_CPUID
    unsigned a, b, c, d, maxleaf, maxext;
    if (__get_cpuid(0, &maxleaf, &b, &c, &d)) {
        memcpy(machine.vendor_name, &b, 4);
        memcpy(machine.vendor_name + 4, &d, 4);
        memcpy(machine.vendor_name + 8, &c, 4);
        machine.vendor = !strcmp(machine.vendor_name, "AuthenticAMD")   ? VENDOR_AMD
                         : !strcmp(machine.vendor_name, "GenuineIntel") ? VENDOR_INTEL
                                                                        : VENDOR_OTHER;
        __cpuid(1, a, b, c, d);
        const int fam = (a >> 8) & 15, mod = (a >> 4) & 15;
        machine.family = fam == 15 ? fam + (int)((a >> 20) & 255) : fam;
        machine.model = fam == 6 || fam == 15 ? mod + (int)(((a >> 16) & 15) << 4) : mod;
        const int smt = (d >> 28) & 1 ? 2 : 1;
        machine.avx512 = nnc_isa_supported(NNC_ISA_AVX512);
        maxext = __get_cpuid_max(0x80000000u, NULL);
        if (machine.vendor == VENDOR_INTEL && maxleaf >= 4) cpuid_caches(4, smt);
        else if (machine.vendor == VENDOR_AMD && maxext >= 0x8000001Du) {
            __cpuid(0x80000001u, a, b, c, d);
            if ((c >> 22) & 1) cpuid_caches(0x8000001Du, smt);   // TOPOEXT
        }
    }
#endif
    if (!machine.l1d || !machine.l2) sysfs_caches();
}

static int row_matches(const cpu_row *r)
{
    if (r->vendor == VENDOR_OTHER || r->vendor != machine.vendor || r->family != machine.family) return 0;
    if (r->avx512 >= 0 && r->avx512 != machine.avx512) return 0;
    if (!r->models) return 1;
    for (const unsigned char *m = r->models; *m; ++m)
        if (*m == machine.model) return 1;
    return 0;
}

static void use_row(int i)
{
    const cpu_row *r = &rows[i];
    active.row = r->name;
    active.vendor = machine.vendor_name[0] ? machine.vendor_name : "unknown";
    active.family = machine.family;
    active.model = machine.model;
    active.detected_l1d_kib = machine.l1d;
    active.detected_l2_kib = machine.l2;
    active.detected_l3_kib = machine.l3;
    if (i == GENERIC) {   // the caches detected, or a small core's where none were
        active.l1d_kib = machine.l1d > 0 ? machine.l1d : 32;
        active.l2_kib = machine.l2 > 0 ? machine.l2 : 256;
        // an L3 share is at most 4 MiB a core on the families above; a larger
        // reading (the whole L3 of a virtual machine's vCPU) is taken as that
        active.l3_kib = machine.l3 > 0 ? (machine.l3 < 4096 ? machine.l3 : 4096) : 1024;
        active.fma512_pipes = machine.avx512 ? 1 : 0;
    } else {
        active.l1d_kib = r->l1d_kib;
        active.l2_kib = r->l2_kib;
        active.l3_kib = r->l3_kib;
        active.fma512_pipes = r->pipes;
    }
    active.kc_l1_pct = r->kc_l1_pct;
    active.mc_l2_pct = r->mc_l2_pct;
}

int nnc_set_cpu(const char *name)
{
    if (detected_row < 0) {
        detect();
        detected_row = GENERIC;
        for (int i = 0; i < GENERIC; ++i)
            if (row_matches(&rows[i])) { detected_row = i; break; }
    }
    if (!name || !*name) {
        use_row(detected_row);
        return NNC_OK;
    }
    for (int i = 0; i < NROWS; ++i)
        if (strcmp(name, rows[i].name) == 0) {
            use_row(i);
            return NNC_OK;
        }
    if (!active.row) use_row(detected_row);
    return NNC_EINVAL;
}

const nnc_cpu_model *nnc_cpu(void)
{
    if (!active.row) nnc_set_cpu(NULL);
    return &active;
}

int nnc_cpu_row_count(void) { return NROWS; }

const char *nnc_cpu_row_name(int i) { return i >= 0 && i < NROWS ? rows[i].name : NULL; }

const char *nnc_cpu_detected_row(void)
{
    nnc_cpu();
    return rows[detected_row].name;
}
