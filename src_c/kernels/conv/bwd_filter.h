// kernels/conv/bwd_filter.h - dW and db: one GEMM on the 1x1 path, the
// depthwise kernel (depthwise.h), else the register-tile dW below.

// The column sums of one vector of channels (all lanes valid when full)
// over P pixels: four chains over the pixels (q mod 4, the last P % 4 on
// chain 0) added (0 + 1) + (2 + 3), so the add latency does not bound it.
NNC_INLINE nnc_v NNC_FN(conv_bias_sum)(const int full, const NNC_T *dz, nnc_ssize P, nnc_ssize ld, nnc_ssize nc)
{
    const nnc_vmask lanes = nnc_vmaskn(full ? 0 : nc);
    nnc_v acc[4] = {nnc_vzero(), nnc_vzero(), nnc_vzero(), nnc_vzero()};
    nnc_ssize q = 0;
    for (; q + 4 <= P; q += 4)
        NNC_UNROLL_TILE for (int u = 0; u < 4; ++u) {
            const NNC_T *p = dz + (q + u) * ld;
            acc[u] = nnc_vadd(acc[u], full ? nnc_vload(p) : nnc_vloadm(p, lanes));
        }
    for (; q < P; ++q) acc[0] = nnc_vadd(acc[0], full ? nnc_vload(dz + q * ld) : nnc_vloadm(dz + q * ld, lanes));
    return nnc_vadd(nnc_vadd(acc[0], acc[1]), nnc_vadd(acc[2], acc[3]));
}

// db[k] = sum over the P pixels of dz[pixel, k] (conv_bias_sum's order);
// pixel stride ld.
static void NNC_FN(conv_bias_grad)(NNC_T *NNC_RESTRICT db, const NNC_T *NNC_RESTRICT dz, nnc_ssize P,
                                   nnc_ssize K, nnc_ssize ld)
{
    const nnc_ssize nb = NNC_CEILDIV(K, NNC_VLEN);
    int nt = nnc_threads_for((double)P * (double)K);
    nt = (int)NNC_MIN(nt, nb);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize b = 0; b < nb; ++b) {
        const nnc_ssize c0 = b * NNC_VLEN, nc = NNC_MIN(NNC_VLEN, K - c0);
        const nnc_v sum = nc == NNC_VLEN ? NNC_FN(conv_bias_sum)(1, dz + c0, P, ld, nc)
                                         : NNC_FN(conv_bias_sum)(0, dz + c0, P, ld, nc);
        nnc_vstorep(db + c0, sum, nc);
    }
}

#define CONV_DWK_ROWS 8  // output rows per dW chain (geometry only)

// How a general dW is split into items: (group, tap, a block of up to
// `rows` broadcast channels, a block of up to `vblock` vector channels).
// The vector operand is dz (output channels) unless x's channels fill the
// lanes better (swap: few output channels, e.g. K = 8 from 16 inputs): then
// x is the vector, dz the broadcast, and the sums go to a transposed copy.
typedef struct {
    const nnc_conv_desc *p;
    const NNC_T *x, *dz;
    NNC_T *dst;                   // dW[tap][c][k], or (swap) dWT[g][tap][k][c]
    nnc_ssize cin_g, cout_g;      // input / output channels per group
    nnc_ssize taps;
    int swap;
    nnc_ssize nbcast, nvec;       // broadcast / vector channels per group
    nnc_ssize vblock, rows;       // vector / broadcast channels per item
    nnc_ssize nrow_blocks, nvec_blocks, items;
    nnc_ssize x_end, dz_end;      // element offsets one past the last channel of x / dz
} NNC_FN(conv_wgrad_plan);

// The split of a general dW (everything but dst).
static void NNC_FN(conv_wgrad_plan_init)(NNC_FN(conv_wgrad_plan) *plan, const nnc_conv_desc *p,
                                         const NNC_T *x, const NNC_T *dz)
{
    const nnc_ssize cin_g = p->c / p->groups, cout_g = p->k / p->groups;
    const nnc_ssize cin_lanes = NNC_CEILDIV(cin_g, NNC_VLEN) * NNC_VLEN;
    const nnc_ssize cout_lanes = NNC_CEILDIV(cout_g, NNC_VLEN) * NNC_VLEN;
    plan->p = p;
    plan->x = x;
    plan->dz = dz;
    plan->cin_g = cin_g;
    plan->cout_g = cout_g;
    plan->taps = p->kh * p->kw;
    plan->swap = cin_g * cout_lanes > cout_g * cin_lanes;
    plan->nbcast = plan->swap ? cout_g : cin_g;
    plan->nvec = plan->swap ? cin_g : cout_g;
    // swapped: one vector per item, so a partial vector is an item of its own
    plan->vblock = plan->swap ? NNC_VLEN : CONV_NB;
    plan->rows = CONV_RWMAX(NNC_CEILDIV(NNC_MIN(plan->nvec, plan->vblock), NNC_VLEN));
    plan->nrow_blocks = NNC_CEILDIV(plan->nbcast, plan->rows);
    plan->nvec_blocks = NNC_CEILDIV(plan->nvec, plan->vblock);
    plan->items = p->groups * plan->taps * plan->nrow_blocks * plan->nvec_blocks;
    plan->x_end = (p->n * p->h * p->w - 1) * p->ldx + p->c;
    plan->dz_end = (p->n * p->oh * p->ow - 1) * p->ldy + p->k;
}

// db[v-th vector] += the chain over the block's npix consecutive dz pixels
// (from dz_rows), for the vectors [v_begin, v_end).
static void NNC_FN(conv_wgrad_bias_block)(const nnc_conv_desc *p, NNC_T *db, const NNC_T *dz_rows,
                                          nnc_ssize npix, nnc_ssize v_begin, nnc_ssize v_end)
{
    for (nnc_ssize v = v_begin; v < v_end; ++v) {
        const nnc_ssize c0 = v * NNC_VLEN, nc = NNC_MIN(NNC_VLEN, p->k - c0);
        const NNC_T *z = dz_rows + c0;
        nnc_v acc = nnc_vzero();
        if (nc == NNC_VLEN) {
            for (nnc_ssize q = 0; q < npix; ++q) acc = nnc_vadd(acc, nnc_vload(z + q * p->ldy));
            nnc_vstore(db + c0, nnc_vadd(nnc_vload(db + c0), acc));
        } else {
            const nnc_vmask lanes = nnc_vmaskn(nc);
            for (nnc_ssize q = 0; q < npix; ++q) acc = nnc_vadd(acc, nnc_vloadm(z + q * p->ldy, lanes));
            nnc_vstoren(db + c0, nnc_vadd(nnc_vloadn(db + c0, nc), acc), nc);
        }
    }
}

// Adds item `item`'s chain over output rows [oh0, oh1) of image n into its
// dW tile: the rows and columns whose input pixel is inside x, one register
// tile of broadcast channels x vectors.
static void NNC_FN(conv_wgrad_item)(const NNC_FN(conv_wgrad_plan) *plan, nnc_ssize item, nnc_ssize n,
                                    nnc_ssize oh0, nnc_ssize oh1)
{
    const nnc_conv_desc *p = plan->p;
    const nnc_ssize vec_block = item % plan->nvec_blocks;
    const nnc_ssize row_block = (item / plan->nvec_blocks) % plan->nrow_blocks;
    const nnc_ssize tap = (item / (plan->nvec_blocks * plan->nrow_blocks)) % plan->taps;
    const nnc_ssize g = item / (plan->nvec_blocks * plan->nrow_blocks * plan->taps);
    const nnc_ssize kh = tap / p->kw, kw = tap % p->kw;
    // output rows [row_lo, row_hi) of the block, columns [col_lo, col_hi): input inside x
    const nnc_ssize brow = kh * p->dil_h - p->pad_top, bcol = kw * p->dil_w - p->pad_left;
    nnc_ssize row_lo, row_hi, col_lo, col_hi;
    NNC_FN(conv_span)(brow, p->stride_h, p->h, &row_lo, &row_hi);
    row_lo = NNC_MAX(oh0, row_lo);
    row_hi = NNC_MIN(oh1, row_hi);
    if (row_hi <= row_lo) return;
    NNC_FN(conv_span)(bcol, p->stride_w, p->w, &col_lo, &col_hi);
    col_hi = NNC_MIN(p->ow, col_hi);
    if (col_hi <= col_lo) return;
    const nnc_ssize a0 = row_block * plan->rows, nbcast = NNC_MIN(plan->rows, plan->nbcast - a0);
    const nnc_ssize b0 = vec_block * plan->vblock, nch = NNC_MIN(plan->vblock, plan->nvec - b0);
    const nnc_ssize nv = NNC_CEILDIV(nch, NNC_VLEN), nrow = row_hi - row_lo, npx = col_hi - col_lo;
    const nnc_ssize xpix = (n * p->h + row_lo * p->stride_h + brow) * p->w + col_lo * p->stride_w + bcol;
    const nnc_ssize zpix = (n * p->oh + row_lo) * p->ow + col_lo;
    const nnc_ssize xps = p->stride_w * p->ldx, xrs = p->stride_h * p->w * p->ldx;
    const nnc_ssize zrs = p->ow * p->ldy;
    const nnc_ssize cin_g = plan->cin_g, cout_g = plan->cout_g;
    const NNC_T *xp = plan->x + xpix * p->ldx + g * cin_g, *zp = plan->dz + zpix * p->ldy + g * cout_g;
    // whole vectors readable at the block's last vector-operand pixel
    const nnc_ssize vend = nv * NNC_VLEN + b0;
    const nnc_ssize x_last = xpix * p->ldx + (nrow - 1) * xrs + (npx - 1) * xps + g * cin_g;
    const nnc_ssize dz_last = (zpix + (nrow - 1) * p->ow + npx - 1) * p->ldy + g * cout_g;
    const int zfull = plan->swap ? x_last + vend <= plan->x_end : dz_last + vend <= plan->dz_end;
    const NNC_FN(conv_wgrad_ukr_fn) f = NNC_FN(conv_ukrs)[nbcast - 1][nv - 1].wgrad;
    if (!plan->swap)
        f(xp + a0, xps, xrs, zp + b0, p->ldy, zrs, nrow, npx,
          plan->dst + (tap * cin_g + a0) * p->k + g * cout_g + b0, p->k, nch, zfull);
    else
        f(zp + a0, p->ldy, zrs, xp + b0, xps, xrs, nrow, npx,
          plan->dst + ((g * plan->taps + tap) * cout_g + a0) * cin_g + b0, cin_g, nch, zfull);
}

// Thread `slot` of nt: items [slot*per, ...) and a range of db's vectors,
// over the output rows in order, in blocks of CONV_DWK_ROWS rows of one image.
static void NNC_FN(conv_wgrad_thread)(const NNC_FN(conv_wgrad_plan) *plan, NNC_T *db, nnc_ssize slot, int nt)
{
    const nnc_conv_desc *p = plan->p;
    const nnc_ssize per = NNC_CEILDIV(plan->items, nt), nbv = NNC_CEILDIV(p->k, NNC_VLEN);
    const nnc_ssize i0 = slot * per, i1 = NNC_MIN(plan->items, i0 + per);
    const nnc_ssize v0 = db ? slot * nbv / nt : 0, v1 = db ? (slot + 1) * nbv / nt : 0;
    for (nnc_ssize n = 0; n < p->n; ++n)
        for (nnc_ssize oh0 = 0; oh0 < p->oh; oh0 += CONV_DWK_ROWS) {
            const nnc_ssize oh1 = NNC_MIN(p->oh, oh0 + CONV_DWK_ROWS);
            const NNC_T *dz_rows = plan->dz + (n * p->oh + oh0) * p->ow * p->ldy;
            NNC_FN(conv_wgrad_bias_block)(p, db, dz_rows, (oh1 - oh0) * p->ow, v0, v1);
            for (nnc_ssize it = i0; it < i1; ++it) NNC_FN(conv_wgrad_item)(plan, it, n, oh0, oh1);
        }
}

// dW[tap][c][g*Kg + k] = dWT[g][tap][k][c]: the swapped sums written out.
static void NNC_FN(conv_wgrad_unswap)(const NNC_FN(conv_wgrad_plan) *plan, NNC_T *dW)
{
    const nnc_ssize cin_g = plan->cin_g, cout_g = plan->cout_g, K = plan->p->k, taps = plan->taps;
    const NNC_T *dWT = plan->dst;
    for (nnc_ssize g = 0; g < plan->p->groups; ++g)
        for (nnc_ssize t = 0; t < taps; ++t)
            for (nnc_ssize k = 0; k < cout_g; ++k)
                for (nnc_ssize c = 0; c < cin_g; ++c)
                    dW[(t * cin_g + c) * K + g * cout_g + k] = dWT[((g * taps + t) * cout_g + k) * cin_g + c];
}

// dW[kh,kw,c,k] = sum_{n,oh} (sum_ow x[n, ih, iw, c] dz[n, oh, ow, k]) for
// a general (not depthwise) conv, overwritten.  The items (conv_wgrad_plan)
// are split over the threads; each thread runs over the output rows in
// order, in blocks of CONV_DWK_ROWS rows of one image, and per block adds a
// register chain over the block's (row, ow) pixels into its dW items.  The
// same FMA chains swapped or not.  db (if not NULL), in the same pass while
// the dz rows are in cache: each thread owns a range of its vectors and
// adds, block after block, the chain over the block's pixels.
static int NNC_FN(conv_w_filter)(const nnc_conv_desc *p, const NNC_T *x, const NNC_T *dz, NNC_T *dW,
                                 NNC_T *db, int nt)
{
    NNC_FN(conv_wgrad_plan) plan;
    NNC_FN(conv_wgrad_plan_init)(&plan, p, x, dz);
    const nnc_ssize nw = plan.taps * plan.cin_g * p->k;
    plan.dst = dW;
    if (plan.swap) {
        plan.dst = nnc_tls_scratch(NNC_SCRATCH_WEIGHTS, (size_t)nw * sizeof(NNC_T));
        if (!plan.dst) return NNC_ENOMEM;
    }
    for (nnc_ssize i = 0; i < nw; ++i) plan.dst[i] = 0;
    if (db)
        for (nnc_ssize i = 0; i < p->k; ++i) db[i] = 0;
    nt = (int)NNC_MIN(nt, plan.items);
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (nnc_ssize slot = 0; slot < nt; ++slot) NNC_FN(conv_wgrad_thread)(&plan, db, slot, nt);
    if (plan.swap) NNC_FN(conv_wgrad_unswap)(&plan, dW);
    return NNC_OK;
}

// The dW / db op (ops/conv.def): both overwritten.
static int NNC_FN(conv_bwd_filter)(const nnc_conv_desc *p, const NNC_T *x, const NNC_T *dz, NNC_T *dW,
                                   NNC_T *db)
{
    int st = NNC_FN(conv_check)(p);
    if (st != NNC_OK) return st;
    const nnc_ssize M = p->kh * p->kw * (p->c / p->groups), P = p->n * p->oh * p->ow;
    if (p->n == 0) {
        for (nnc_ssize i = 0; i < M * p->k; ++i) dW[i] = 0;
        if (db)
            for (nnc_ssize i = 0; i < p->k; ++i) db[i] = 0;
        return NNC_OK;
    }
    const int nt = NNC_FN(conv_threads)(p);
    if (!NNC_FN(conv_is_gemm)(p) && !NNC_FN(conv_is_depthwise)(p))
        return NNC_FN(conv_w_filter)(p, x, dz, dW, db, nt);
    if (db) NNC_FN(conv_bias_grad)(db, dz, P, p->k, p->ldy);
    if (NNC_FN(conv_is_gemm)(p)) {
        NNC_FN(gemm_args) g = {1, p->c, p->k, P, 1, 0, x, p->ldx, 0, dz, p->ldy, NULL, dW, p->k, NULL,
                               NNC_ACT_LINEAR};
        return NNC_FN(gemm_run)(&g, nt);
    }
    return NNC_FN(conv_dw_filter)(p, x, dz, dW);
}
