// kernels/conv/engine.h - the direct engine shared by forward and dx: the
// tap lists of a job, its interior rows and edge columns, and the jobs over
// the threads (a region timed by the stall guard).

// The direct engine: "in" is read, "out" written.  Forward: in = x, out = y,
// in row = out row*sh - pt + kh*dh.  Backward (bwd): in = dz, out = dx,
// in row = (out row + pt - kh*dh) / sh where divisible; columns likewise.
typedef struct {
    const NNC_T *in;
    nnc_ssize ild, IH, IW;
    NNC_T *out;
    nnc_ssize old, OHo, OWo;
    nnc_ssize KH, KW, sh, sw, dh, dw, pt, pl;
    int bwd, depthwise, merge;
    int slide;               // forward, one vector of outputs, 3 kernel columns, stride 1, merged runs:
                             // the interior runs the sliding kernels (ukernels_slide.h)
    int dot;                 // few output channels: reduction in the lanes (conv_dot)
    int narrow;              // Cog <= NNC_VHLEN: half-width vector kernels (2: a full one too)
    nnc_ssize Cr;            // reduction channels per tap (general)
    nnc_ssize ngrp, Cog;     // groups; output channels per group (depthwise: all, ngrp 1)
    nnc_ssize xg;            // input channel offset per group
    const NNC_T *wp;         // packed weights (depthwise: W itself)
    nnc_ssize wgs, wbs;      // packed weights per group / per block
    const NNC_T *bias;
    int act;
    const NNC_T *res;        // NULL, or added after act: laid out like out (may be out)
} NNC_FN(dconv);

// Per-thread scratch of a job: 2*KH*KW taps and 4*KH + 2*KW indices.
static int NNC_FN(dconv_scratch_bytes)(const NNC_FN(dconv) *d, size_t *bytes)
{
    nnc_ssize t, a, b;
    if (!nnc_mul_ok(d->KH, d->KW, &t) || !nnc_mul_ok(2 * t, (nnc_ssize)sizeof(NNC_FN(conv_tap)), &a) ||
        !nnc_mul_ok(4 * d->KH + 2 * d->KW, (nnc_ssize)sizeof(nnc_ssize), &b))
        return 0;
    *bytes = (size_t)a + (size_t)b;
    return 1;
}

// Width of tile t when npx pixels are cut into tiles of at most rwmax: as
// few tiles as possible, their widths differing by at most one (109 pixels
// at 6: 14 x 6 + 5 x 5, not 18 x 6 + 1, whose 1-pixel tile loads as many
// weights per FMA as a whole one and runs at a quarter of the speed).
static inline nnc_ssize NNC_FN(conv_tile_width)(nnc_ssize npx, nnc_ssize rwmax, nnc_ssize t)
{
    const nnc_ssize ntile = NNC_CEILDIV(npx, rwmax);
    return npx / ntile + (t < npx % ntile);
}

// conv_dot for npx pixels, every group: pixel i reads the input at element
// offset xoff + i*ics and writes out + i*ocs (res the same pixels of d->res);
// tiles of up to NNC_CONV_RWD pixels, each over the outputs 4 at a time.
static void NNC_FN(dconv_run_dot)(const NNC_FN(dconv) *d, const NNC_FN(conv_tap) *taps, nnc_ssize ntap,
                                  nnc_ssize npx, nnc_ssize xoff, nnc_ssize ics, NNC_T *out, nnc_ssize ocs,
                                  const NNC_T *res)
{
    for (nnc_ssize g = 0; g < d->ngrp; ++g)
        for (nnc_ssize t = 0, i = 0, rw; i < npx; ++t, i += rw) {
            rw = NNC_FN(conv_tile_width)(npx, NNC_CONV_RWD, t);
            for (nnc_ssize o0 = 0; o0 < d->Cog; o0 += 4) {
                const nnc_ssize no = NNC_MIN(4, d->Cog - o0), yo = i * ocs + g * d->Cog + o0;
                const NNC_T *w = d->wp + g * d->wgs + o0 * d->wbs, *bias = d->bias ? d->bias + g * d->Cog + o0 : NULL;
                NNC_FN(conv_dots)[rw - 1][no - 1](taps, ntap, d->in, xoff + i * ics + g * d->xg, ics, w, d->wbs,
                                                  out + yo, res ? res + yo : NULL, ocs, no, bias, d->act);
            }
        }
}

// Calls the micro-kernels for npx output pixels with one tap list, over
// every (group, channel block): pixel i reads the input at element offset
// xoff + i*ics (plus the tap offsets) and writes out + i*ocs.  The pixels
// are a run along a row, or (edges) one column down several rows.  slide:
// the taps are the merged runs of an interior row and d->slide holds.
static void NNC_FN(dconv_run_px)(const NNC_FN(dconv) *d, const NNC_FN(conv_tap) *taps, nnc_ssize ntap,
                                 nnc_ssize npx, nnc_ssize xoff, nnc_ssize ics, NNC_T *out, nnc_ssize ocs,
                                 int slide)
{
    const NNC_T *res = d->res ? d->res + (out - d->out) : NULL;   // the same pixels of res
    if (d->dot) {
        NNC_FN(dconv_run_dot)(d, taps, ntap, npx, xoff, ics, out, ocs, res);
        return;
    }
    const nnc_ssize nblk = NNC_CEILDIV(d->Cog, CONV_NB);
    for (nnc_ssize g = 0; g < d->ngrp; ++g) {
        for (nnc_ssize b = 0; b < nblk; ++b) {
            const nnc_ssize c0 = b * CONV_NB, nch = NNC_MIN(CONV_NB, d->Cog - c0);
            const int nv = (int)NNC_CEILDIV(nch, NNC_VLEN);
            const nnc_ssize yo = g * d->Cog + c0;
            const NNC_T *bias = d->bias ? d->bias + yo : NULL;
            const NNC_T *w;
            nnc_ssize wst, xo;
            if (d->depthwise) {
                w = d->wp + c0;
                wst = d->Cog;
                xo = c0;
            } else {
                w = d->wp + g * d->wgs + b * d->wbs;
                wst = d->narrow ? (d->narrow - 1) * NNC_VLEN + NNC_VHLEN : (nnc_ssize)nv * NNC_VLEN;
                xo = g * d->xg;
            }
#if CONV_HAS_NARROW
            if (d->narrow) {
                const nnc_ssize rwn = d->narrow == 1 ? NNC_CONV_RWH : NNC_CONV_RWM;
                for (nnc_ssize t = 0, i = 0, rw; i < npx; ++t, i += rw) {
                    rw = NNC_FN(conv_tile_width)(npx, rwn, t);
                    // each table indexed on its own (UBSan's object-size check
                    // misjudges an index into `cond ? table1 : table2`)
                    NNC_FN(conv_ukr_fn) f =
                        d->narrow == 1 ? NNC_FN(conv_ukrhs)[rw - 1] : NNC_FN(conv_ukrms)[rw - 1];
                    f(taps, ntap, d->in, xoff + i * ics + xo, ics, w, wst, out + i * ocs + yo,
                      res ? res + i * ocs + yo : NULL, ocs, nch, bias, d->act);
                }
                continue;
            }
#endif
            const nnc_ssize rwmax = slide ? NNC_CONV_RWX : CONV_RWMAX(nv);
            for (nnc_ssize t = 0, i = 0, rw; i < npx; ++t, i += rw) {
                rw = NNC_FN(conv_tile_width)(npx, rwmax, t);
                const NNC_FN(conv_ukr_set) *k = &NNC_FN(conv_ukrs)[rw - 1][nv - 1];
                NNC_FN(conv_ukr_fn) f = slide ? NNC_FN(conv_slides)[rw - 1] : d->depthwise ? k->dw : k->conv;
                f(taps, ntap, d->in, xoff + i * ics + xo, ics, w, wst, out + i * ocs + yo,
                  res ? res + i * ocs + yo : NULL, ocs, nch, bias, d->act);
            }
        }
    }
}

// The kernel rows that reach output row orow of image n: khs[2a] = kh,
// khs[2a + 1] = pixel index of its input row.  Returns their number.
NNC_INLINE nnc_ssize NNC_FN(dconv_khs)(const NNC_FN(dconv) *d, nnc_ssize n, nnc_ssize orow, nnc_ssize *khs)
{
    nnc_ssize nkh = 0;
    for (nnc_ssize kh = 0; kh < d->KH; ++kh) {
        nnc_ssize ir;
        if (!d->bwd) {
            ir = orow * d->sh - d->pt + kh * d->dh;
        } else {
            const nnc_ssize num = orow + d->pt - kh * d->dh;
            if (num % d->sh) continue;
            ir = num / d->sh;
        }
        if (ir < 0 || ir >= d->IH) continue;
        khs[2 * nkh] = kh;
        khs[2 * nkh + 1] = (n * d->IH + ir) * d->IW;
        ++nkh;
    }
    return nkh;
}

// The output columns of one job (column class rho of the output row: forward
// every column, backward dx columns rho, rho + sw, ...): the nj columns, j
// at output column rho + j*ostep, read the input at column j*cs + bcol of
// each reaching kernel column.
typedef struct {
    nnc_ssize nkw;      // kernel columns reaching the class: kws[2a] = kw, kws[2a + 1] = its bcol
    nnc_ssize nj;       // output columns of the class
    nnc_ssize j0, j1;   // [j0, j1): the interior, every reaching tap inside the input
    nnc_ssize cs;       // input columns per output column
    nnc_ssize xs, ys;   // input / output elements per output column
} NNC_FN(dconv_cols);

// Fills the kernel-column list kws and the interior of column class rho.
NNC_INLINE void NNC_FN(dconv_cols_init)(const NNC_FN(dconv) *d, nnc_ssize rho, nnc_ssize *kws,
                                    NNC_FN(dconv_cols) *cols)
{
    const nnc_ssize ostep = d->bwd ? d->sw : 1, cs = d->bwd ? 1 : d->sw;
    const nnc_ssize nj = NNC_CEILDIV(d->OWo - rho, ostep);
    nnc_ssize j0 = 0, j1 = nj, nkw = 0;
    for (nnc_ssize kw = 0; kw < d->KW; ++kw) {
        nnc_ssize bcol;  // input column of pixel j: j*cs + bcol
        if (!d->bwd) {
            bcol = kw * d->dw - d->pl;
        } else {
            const nnc_ssize num = rho + d->pl - kw * d->dw;
            if (num % d->sw) continue;
            bcol = num / d->sw;
        }
        nnc_ssize jlo, jhi;
        NNC_FN(conv_span)(bcol, cs, d->IW, &jlo, &jhi);
        j0 = NNC_MAX(j0, jlo);
        j1 = NNC_MIN(j1, jhi);
        kws[2 * nkw] = kw;
        kws[2 * nkw + 1] = bcol;
        ++nkw;
    }
    cols->nkw = nkw;
    cols->nj = nj;
    cols->j0 = NNC_MIN(j0, nj);
    cols->j1 = NNC_MAX(j1, cols->j0);
    cols->cs = cs;
    cols->xs = cs * d->ild;
    cols->ys = ostep * d->old;
}

// The taps of the interior of an output row reached by the kernel rows khs
// (nkh) and columns kws (cols->nkw), in (kh, kw) order; with d->merge and
// every kernel column, one run of KW*Cr channels per kernel row.  wunit:
// weight rows per tap.  Returns their number.
NNC_INLINE nnc_ssize NNC_FN(dconv_row_taps)(const NNC_FN(dconv) *d, const nnc_ssize *khs, nnc_ssize nkh,
                                        const nnc_ssize *kws, const NNC_FN(dconv_cols) *cols, nnc_ssize wunit,
                                        NNC_FN(conv_tap) *taps)
{
    nnc_ssize nt = 0;
    if (d->merge && cols->nkw == d->KW) {
        for (nnc_ssize a = 0; a < nkh; ++a)
            taps[nt++] = (NNC_FN(conv_tap)){(khs[2 * a + 1] + kws[1]) * d->ild, khs[2 * a] * d->KW * d->Cr,
                                            d->KW * d->Cr};
    } else {
        for (nnc_ssize a = 0; a < nkh; ++a)
            for (nnc_ssize c = 0; c < cols->nkw; ++c)
                taps[nt++] = (NNC_FN(conv_tap)){(khs[2 * a + 1] + kws[2 * c + 1]) * d->ild,
                                                (khs[2 * a] * d->KW + kws[2 * c]) * wunit, d->Cr};
    }
    return nt;
}

// Rows r, r + 1, ... (before r1) reached by the same kernel rows as row r
// (khs, nkh >= 1 of them) with input rows *step pixels further per row: a
// vertical tile.  Returns their number (>= 1); kh2: scratch for 2*KH indices.
NNC_INLINE nnc_ssize NNC_FN(dconv_row_run)(const NNC_FN(dconv) *d, nnc_ssize n, nnc_ssize r, nnc_ssize r1,
                                       const nnc_ssize *khs, nnc_ssize nkh, nnc_ssize *kh2, nnc_ssize *step)
{
    nnc_ssize g = 1, D = 0;
    for (; r + g < r1; ++g) {
        if (NNC_FN(dconv_khs)(d, n, r + g, kh2) != nkh) break;
        if (g == 1) D = kh2[1] - khs[1];
        nnc_ssize a = 0;
        while (a < nkh && kh2[2 * a] == khs[2 * a] && kh2[2 * a + 1] - khs[2 * a + 1] == g * D) ++a;
        if (a < nkh) break;
    }
    *step = D;
    return g;
}

// Edge column j of output rows [r0, r1) of image n: only the taps inside the
// input, in the same order, run as vertical tiles of rows with the same taps.
static void NNC_FN(dconv_edge_column)(const NNC_FN(dconv) *d, nnc_ssize n, nnc_ssize r0, nnc_ssize r1,
                                      nnc_ssize j, const NNC_FN(dconv_cols) *cols, const nnc_ssize *kws,
                                      nnc_ssize wunit, nnc_ssize *khs, nnc_ssize *kh2,
                                      NNC_FN(conv_tap) *etaps, NNC_T *out0)
{
    const nnc_ssize orl = d->OWo * d->old;  // output row length
    for (nnc_ssize r = r0; r < r1;) {
        const nnc_ssize nkh = NNC_FN(dconv_khs)(d, n, r, khs);
        if (nkh == 0) {
            ++r;
            continue;
        }
        nnc_ssize D;
        const nnc_ssize g = NNC_FN(dconv_row_run)(d, n, r, r1, khs, nkh, kh2, &D);
        nnc_ssize ne = 0;
        for (nnc_ssize a = 0; a < nkh; ++a)
            for (nnc_ssize c = 0; c < cols->nkw; ++c) {
                const nnc_ssize col = j * cols->cs + kws[2 * c + 1];
                if (col < 0 || col >= d->IW) continue;
                etaps[ne++] = (NNC_FN(conv_tap)){(khs[2 * a + 1] + kws[2 * c + 1]) * d->ild,
                                                 (khs[2 * a] * d->KW + kws[2 * c]) * wunit, d->Cr};
            }
        NNC_FN(dconv_run_px)(d, etaps, ne, g, j * cols->xs, D * d->ild, out0 + r * orl + j * cols->ys, orl, 0);
        r += g;
    }
}

// One job: output rows [r0, r1) of image n, column class rho (forward: 0;
// backward: dx columns rho, rho + sw, ...).  The interior pixels (every
// kernel column inside the input) run along each row; an edge column runs
// down the rows whose kernel rows are the same and step uniformly through
// the input (a vertical tile), so edges stream FMAs like the interior.
NNC_INLINE void NNC_FN(dconv_rows)(const NNC_FN(dconv) *d, nnc_ssize n, nnc_ssize r0, nnc_ssize r1, nnc_ssize rho,
                               void *scratch)
{
    NNC_FN(conv_tap) *taps = scratch, *etaps = taps + d->KH * d->KW;
    nnc_ssize *khs = (nnc_ssize *)(etaps + d->KH * d->KW), *kh2 = khs + 2 * d->KH, *kws = kh2 + 2 * d->KH;
    const nnc_ssize wunit = d->depthwise ? 1 : d->dot ? NNC_CEILDIV(d->Cog, 4) * 4 : d->Cr;
    NNC_FN(dconv_cols) cols;
    NNC_FN(dconv_cols_init)(d, rho, kws, &cols);
    const nnc_ssize orl = d->OWo * d->old;  // output row length
    NNC_T *out0 = d->out + ((n * d->OHo) * d->OWo + rho) * d->old;

    for (nnc_ssize orow = r0; orow < r1; ++orow) {
        const nnc_ssize nkh = NNC_FN(dconv_khs)(d, n, orow, khs);
        NNC_T *op = out0 + orow * orl;
        if (nkh == 0 || cols.nkw == 0) {  // no tap reaches this row: act(bias) (or 0)
            NNC_FN(dconv_run_px)(d, taps, 0, cols.nj, 0, cols.xs, op, cols.ys, 0);
            continue;
        }
        if (cols.j1 <= cols.j0) continue;
        const nnc_ssize nt = NNC_FN(dconv_row_taps)(d, khs, nkh, kws, &cols, wunit, taps);
        const nnc_ssize j0 = cols.j0;
        NNC_FN(dconv_run_px)(d, taps, nt, cols.j1 - j0, j0 * cols.xs, cols.xs, op + j0 * cols.ys, cols.ys,
                             d->slide && cols.nkw == d->KW);
    }
    if (cols.nkw == 0) return;
    for (nnc_ssize j = 0; j < cols.nj; ++j) {
        if (j == cols.j0) j = cols.j1;
        if (j >= cols.nj) break;
        NNC_FN(dconv_edge_column)(d, n, r0, r1, j, &cols, kws, wunit, khs, kh2, etaps, out0);
    }
}

// Runs every job of d over N images on nt threads.  A job is a block of up
// to 8 output rows of one image, or a whole image of up to 16 rows, whose
// edge columns then run as one vertical tile each, while that makes at
// least 4 jobs a thread; else fewer rows, so that no thread idles, in as
// many blocks as split evenly over the threads (one image of 38 rows: 6
// blocks of 6-7 rows, 3 a thread, not 5 blocks of 8 rows split 3 + 2).
// The results do not depend on the blocking.
static int NNC_FN(dconv_run)(const NNC_FN(dconv) *d, nnc_ssize N, int nt)
{
    size_t bytes;
    if (!NNC_FN(dconv_scratch_bytes)(d, &bytes)) return NNC_EOVERFLOW;
    const nnc_ssize ncls = d->bwd ? NNC_MIN(d->sw, d->OWo) : 1;
    const nnc_ssize rbmax = d->OHo <= 16 ? d->OHo : 8;
    const int few = N * ncls * NNC_CEILDIV(d->OHo, rbmax) < 4 * nt;
    const nnc_ssize rb = few ? NNC_MAX(1, NNC_MIN(rbmax, NNC_CEILDIV(N * d->OHo * ncls, nt) / (N * ncls))) : rbmax;
    nnc_ssize nrb = NNC_CEILDIV(d->OHo, rb);
    while (few && (N * ncls * nrb) % nt && nrb < d->OHo) ++nrb;
    const int spread = nrb != NNC_CEILDIV(d->OHo, rb);   // blocks added: rows spread evenly
    const nnc_ssize items = N * nrb * ncls;
    int failed = 0;
    nnc_region_clock clk;
    nnc_region_begin(&clk, nt);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        nnc_region_started(&clk);
        void *scratch = nnc_tls_scratch(NNC_SCRATCH_WORK, bytes);
        if (!scratch) {
            #pragma omp atomic write
            failed = 1;
        }
        // static: each thread runs one contiguous block of jobs, so the
        // input rows it reads and the output lines it writes are its own.
        // (dynamic, 1 interleaved the rows and cost up to 2x on small convs.)
        #pragma omp for schedule(static) nowait
        for (nnc_ssize it = 0; it < items; ++it) {
            if (!scratch) continue;
            const nnc_ssize rho = it % ncls, blk = it / ncls, b = blk % nrb;
            const nnc_ssize r0 = spread ? d->OHo * b / nrb : b * rb;
            const nnc_ssize r1 = spread ? d->OHo * (b + 1) / nrb : NNC_MIN(d->OHo, r0 + rb);
            NNC_FN(dconv_rows)(d, blk / nrb, r0, r1, rho, scratch);
        }
        nnc_region_master_done(&clk);
    }
    nnc_region_end(&clk);
    return failed ? NNC_ENOMEM : NNC_OK;
}
