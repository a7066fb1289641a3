// kernels/conv/ukernel_table.h - the micro-kernels of each register-tile size:
// one instance of each register tile (conv_tile, conv_dw_tile, conv_wgrad_tile)
// per size, and the table the engine and dW pick them from.

_Static_assert((NNC_CONV_RW == 4 || NNC_CONV_RW == 6) && (NNC_CONV_NV == 2 || NNC_CONV_NV == 4) &&
                   (NNC_CONV_RWX == NNC_CONV_RW ||
                    (NNC_CONV_RW == 6 && NNC_CONV_RWX == 12 && (NNC_CONV_NVH == 1 || NNC_CONV_NVH == 2))),
               "conv: the kernel instances cover 4 or 6 pixels x 2 or 4 vectors, 12 pixels x 1 or 2 vectors");
_Static_assert(NNC_CONV_RWX * NNC_CONV_NVH <= NNC_CONV_RW * NNC_CONV_NV, "conv: conv_store_tile's copy holds a tile");

// <family>_<pixels>_<vectors>: pixels 1..NNC_CONV_RW x vectors 1..NNC_CONV_NV, and pixels
// up to NNC_CONV_RWX x vectors 1..NNC_CONV_NVH (for dW: broadcast channels for pixels).
static void NNC_FN(conv_ukr_1_1)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(1, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_1_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(1, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_1_1)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(1, 1, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_1_2)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(1, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_1_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(1, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_1_2)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(1, 2, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_2_1)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(2, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_2_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(2, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_2_1)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(2, 1, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_2_2)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(2, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_2_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(2, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_2_2)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(2, 2, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_3_1)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(3, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_3_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(3, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_3_1)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(3, 1, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_3_2)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(3, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_3_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(3, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_3_2)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(3, 2, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_4_1)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(4, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_4_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(4, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_4_1)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(4, 1, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_4_2)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(4, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_4_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(4, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_4_2)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(4, 2, CONV_WUKR_ARGS); }
#if NNC_CONV_NV == 4
static void NNC_FN(conv_ukr_1_3)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(1, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_1_3)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(1, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_1_3)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(1, 3, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_1_4)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(1, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_1_4)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(1, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_1_4)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(1, 4, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_2_3)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(2, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_2_3)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(2, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_2_3)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(2, 3, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_2_4)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(2, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_2_4)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(2, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_2_4)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(2, 4, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_3_3)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(3, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_3_3)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(3, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_3_3)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(3, 3, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_3_4)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(3, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_3_4)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(3, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_3_4)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(3, 4, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_4_3)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(4, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_4_3)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(4, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_4_3)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(4, 3, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_4_4)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(4, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_4_4)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(4, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_4_4)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(4, 4, CONV_WUKR_ARGS); }
#endif
#if NNC_CONV_RW == 6
static void NNC_FN(conv_ukr_5_1)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(5, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_5_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(5, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_5_1)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(5, 1, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_5_2)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(5, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_5_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(5, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_5_2)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(5, 2, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_6_1)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(6, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_6_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(6, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_6_1)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(6, 1, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_6_2)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(6, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_6_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(6, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_6_2)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(6, 2, CONV_WUKR_ARGS); }
#endif
#if NNC_CONV_RW == 6 && NNC_CONV_NV == 4
static void NNC_FN(conv_ukr_5_3)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(5, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_5_3)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(5, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_5_3)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(5, 3, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_5_4)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(5, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_5_4)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(5, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_5_4)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(5, 4, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_6_3)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(6, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_6_3)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(6, 3, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_6_3)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(6, 3, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_6_4)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(6, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_6_4)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(6, 4, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_6_4)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(6, 4, CONV_WUKR_ARGS); }
#endif
#if NNC_CONV_RWX == 12
static void NNC_FN(conv_ukr_7_1)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(7, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_7_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(7, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_7_1)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(7, 1, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_8_1)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(8, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_8_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(8, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_8_1)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(8, 1, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_9_1)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(9, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_9_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(9, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_9_1)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(9, 1, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_10_1)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(10, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_10_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(10, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_10_1)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(10, 1, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_11_1)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(11, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_11_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(11, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_11_1)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(11, 1, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_12_1)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(12, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_12_1)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(12, 1, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_12_1)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(12, 1, CONV_WUKR_ARGS); }
#endif
#if NNC_CONV_RWX == 12 && NNC_CONV_NVH == 2
static void NNC_FN(conv_ukr_7_2)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(7, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_7_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(7, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_7_2)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(7, 2, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_8_2)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(8, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_8_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(8, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_8_2)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(8, 2, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_9_2)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(9, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_9_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(9, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_9_2)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(9, 2, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_10_2)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(10, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_10_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(10, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_10_2)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(10, 2, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_11_2)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(11, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_11_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(11, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_11_2)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(11, 2, CONV_WUKR_ARGS); }
static void NNC_FN(conv_ukr_12_2)(CONV_UKR_PARAMS) { NNC_FN(conv_tile)(12, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_dw_ukr_12_2)(CONV_UKR_PARAMS) { NNC_FN(conv_dw_tile)(12, 2, CONV_UKR_ARGS); }
static void NNC_FN(conv_wgrad_ukr_12_2)(CONV_WUKR_PARAMS) { NNC_FN(conv_wgrad_tile)(12, 2, CONV_WUKR_ARGS); }
#endif

// The kernels of one tile size: general and depthwise forward / dx, dW.
typedef struct {
    NNC_FN(conv_ukr_fn) conv, dw;
    NNC_FN(conv_wgrad_ukr_fn) wgrad;
} NNC_FN(conv_ukr_set);
// The kernels of tile size s = <pixels>_<vectors>.
#define CONV_KERNELS(s) {NNC_FN(conv_ukr_##s), NNC_FN(conv_dw_ukr_##s), NNC_FN(conv_wgrad_ukr_##s)}

// [rw - 1][nv - 1] for rw <= CONV_RWMAX(nv); zero elsewhere.
static const NNC_FN(conv_ukr_set) NNC_FN(conv_ukrs)[NNC_CONV_RWX][NNC_CONV_NV] = {
    [0][0] = CONV_KERNELS(1_1), [0][1] = CONV_KERNELS(1_2), [1][0] = CONV_KERNELS(2_1),
    [1][1] = CONV_KERNELS(2_2), [2][0] = CONV_KERNELS(3_1), [2][1] = CONV_KERNELS(3_2),
    [3][0] = CONV_KERNELS(4_1), [3][1] = CONV_KERNELS(4_2),
#if NNC_CONV_NV == 4
    [0][2] = CONV_KERNELS(1_3), [0][3] = CONV_KERNELS(1_4), [1][2] = CONV_KERNELS(2_3),
    [1][3] = CONV_KERNELS(2_4), [2][2] = CONV_KERNELS(3_3), [2][3] = CONV_KERNELS(3_4),
    [3][2] = CONV_KERNELS(4_3), [3][3] = CONV_KERNELS(4_4),
#endif
#if NNC_CONV_RW == 6
    [4][0] = CONV_KERNELS(5_1), [4][1] = CONV_KERNELS(5_2), [5][0] = CONV_KERNELS(6_1),
    [5][1] = CONV_KERNELS(6_2),
#endif
#if NNC_CONV_RW == 6 && NNC_CONV_NV == 4
    [4][2] = CONV_KERNELS(5_3), [4][3] = CONV_KERNELS(5_4), [5][2] = CONV_KERNELS(6_3),
    [5][3] = CONV_KERNELS(6_4),
#endif
#if NNC_CONV_RWX == 12
    [6][0] = CONV_KERNELS(7_1), [7][0] = CONV_KERNELS(8_1), [8][0] = CONV_KERNELS(9_1),
    [9][0] = CONV_KERNELS(10_1), [10][0] = CONV_KERNELS(11_1), [11][0] = CONV_KERNELS(12_1),
#endif
#if NNC_CONV_RWX == 12 && NNC_CONV_NVH == 2
    [6][1] = CONV_KERNELS(7_2), [7][1] = CONV_KERNELS(8_2), [8][1] = CONV_KERNELS(9_2),
    [9][1] = CONV_KERNELS(10_2), [10][1] = CONV_KERNELS(11_2), [11][1] = CONV_KERNELS(12_2),
#endif
};
