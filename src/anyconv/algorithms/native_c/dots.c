/* The "dots" form (short output rows, large kernels: the weight gradients): every output is a dot
   product over the kernel's rows, 4 output channels x up to 4 outputs of a row at a time, over a copy of
   the group's weights with rows padded to whole vectors. The buffer's columns are split by the dilation:
   output column ow, tap kw reads phase (ow s) mod d at index (ow s) div d + kw, contiguous in kw. */
#include "native.h"

void FN(pad_weights)(const Geom *m, const T *w, T *wpad) {
    /* w: the group's weights (Og, Cg, *k), strides m->ws */
    const int64_t kw_n = m->k[2], kwr = (kw_n + LANES - 1) / LANES * LANES;
    T *dst = wpad;
    for (int64_t o = 0; o < m->og; o++)
        for (int64_t c = 0; c < m->cg; c++)
            for (int64_t kd = 0; kd < m->k[0]; kd++)
                for (int64_t kh = 0; kh < m->k[1]; kh++, dst += kwr) {
                    const T *src = w + o * m->ws[0] + c * m->ws[1] + kd * m->ws[2] + kh * m->ws[3];
                    for (int64_t v = 0; v < kw_n; v++) dst[v] = src[v];
                    for (int64_t v = kw_n; v < kwr; v++) dst[v] = 0;
                }
}

/* a dots-form block's start: A x J accumulators zeroed, and where output column ow + j (j < J) starts
   in a buffer row (columns split by the dilation) */
static inline __attribute__((always_inline)) void FN(dot_begin)(const Geom *m, const Layout *l, int64_t ow,
                                                                 vec acc[4][4], const int A, const int J,
                                                                 int64_t *off) {
    for (int a = 0; a < A; a++)
        for (int j = 0; j < J; j++) acc[a][j] = (vec){0};
    for (int j = 0; j < J; j++) {
        int64_t col = (ow + j) * m->s[2];
        off[j] = (col % l->q) * l->wq + col / l->q;
    }
}

/* the lanes of v summed: halves added in a tree of vector shuffles (log2 LANES steps) */
static inline __attribute__((always_inline)) T FN(hsum)(vec v) {
#ifdef ANYCONV_DOUBLE
#ifdef __clang__
    v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 4, 5, 6, 7);
    v += __builtin_shufflevector(v, v, 2, 3, 2, 3, 2, 3, 2, 3);
    v += __builtin_shufflevector(v, v, 1, 1, 1, 1, 1, 1, 1, 1);
#else
    v += __builtin_shuffle(v, (ivec){4, 5, 6, 7, 4, 5, 6, 7});
    v += __builtin_shuffle(v, (ivec){2, 3, 2, 3, 2, 3, 2, 3});
    v += __builtin_shuffle(v, (ivec){1, 1, 1, 1, 1, 1, 1, 1});
#endif
#else
#ifdef __clang__
    v += __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
    v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7);
    v += __builtin_shufflevector(v, v, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    v += __builtin_shufflevector(v, v, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
#else
    v += __builtin_shuffle(v, (ivec){8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15});
    v += __builtin_shuffle(v, (ivec){4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7});
    v += __builtin_shuffle(v, (ivec){2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3});
    v += __builtin_shuffle(v, (ivec){1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
#endif
#endif
    return v[0];
}

/* the dots form's input vectors of J output columns at xr (off: the columns' offsets); a kernel row's
   last, partial vector has the lanes past the row masked to zero (an Inf or NaN there never reaches a sum) */
static inline __attribute__((always_inline)) void FN(dot_loads)(const T *xr, const int64_t *off, int last,
                                                                 ivec mask, const int J, const int REUSED, vec *xv) {
    for (int j = 0; j < J; j++) {
        xv[j] = *(const uvec *)(xr + off[j]);
        if (last) xv[j] = (vec)((ivec)xv[j] & mask);
        if (REUSED) KEEP_IN_REGISTER(xv[j]); /* several multiply-adds read it (one alone: folded is cheaper) */
    }
}

/* the dots form's outputs: the lanes of acc[a][j] summed into dst[a * astride + j] */
static inline __attribute__((always_inline)) void FN(dot_store)(vec acc[4][4], const int A, const int J, T *dst,
                                                                 int64_t astride) {
    for (int a = 0; a < A; a++)
        for (int j = 0; j < J; j++) dst[a * astride + j] = FN(hsum)(acc[a][j]);
}

/* one row block of the dots form: OB output channels (padded weights wp, wlen apart) x J <= 4
   output columns starting at ow of output row (od, oh), accumulated in OB * J vectors */
static inline __attribute__((always_inline)) void FN(dot_block)(
    const Geom *m, const Layout *l, const T *buf, const T *wp, int64_t wlen, T *yo, int64_t ystride,
    int64_t od, int64_t oh, int64_t ow, ivec mask, const int OB, const int J) {
    const int64_t kd_n = m->k[0], kh_n = m->k[1], kw_n = m->k[2];
    const int64_t rowlen = l->q * l->wq;
    const int64_t full = kw_n / LANES * LANES, kwr = (kw_n + LANES - 1) / LANES * LANES;
    vec acc[4][4];
    int64_t off[4];
    FN(dot_begin)(m, l, ow, acc, OB, J, off);
    for (int64_t c = 0; c < m->cg; c++)
        for (int64_t kd = 0; kd < kd_n; kd++) {
            int64_t z = depth_row(m, od, kd);
            if (z < 0) continue;
            for (int64_t kh = 0; kh < kh_n; kh++) {
                const T *wr = wp + ((c * kd_n + kd) * kh_n + kh) * kwr;
                const T *xr = buf + ((c * m->in[0] + z) * l->hp + oh * m->s[1] + kh * m->d[1]) * rowlen;
                for (int64_t kv = 0; kv < kwr; kv += LANES) {
                    vec xv[4];
                    FN(dot_loads)(xr + kv, off, kv >= full, mask, J, OB > 1, xv);
                    for (int o = 0; o < OB; o++) {
                        vec wv = *(const uvec *)(wr + o * wlen + kv);
                        for (int j = 0; j < J; j++) acc[o][j] += wv * xv[j];
                    }
                }
            }
        }
    FN(dot_store)(acc, OB, J, yo + (od * m->out[1] + oh) * m->out[2] + ow, ystride);
}

/* one output channel, OH <= 4 output rows from oh0 x J <= 4 columns from ow: the dots form walking the
   buffer's rows once: buffer row i serves output row oh with kernel row kh when i = oh s + kh d, so each
   input vector loaded feeds up to OH x J multiply-adds (dot_block loads one per J) */
static inline __attribute__((always_inline)) void FN(dot_rows)(
    const Geom *m, const Layout *l, const T *buf, const T *wp, T *yo, int64_t od, int64_t oh0, int64_t ow,
    ivec mask, const int OH, const int J) {
    const int64_t kd_n = m->k[0], kh_n = m->k[1], kw_n = m->k[2], s1 = m->s[1], d1 = m->d[1];
    const int64_t rowlen = l->q * l->wq;
    const int64_t full = kw_n / LANES * LANES, kwr = (kw_n + LANES - 1) / LANES * LANES;
    const int64_t rows_i = (OH - 1) * s1 + (kh_n - 1) * d1 + 1;
    vec acc[4][4];
    int64_t off[4];
    FN(dot_begin)(m, l, ow, acc, OH, J, off);
    for (int64_t c = 0; c < m->cg; c++)
        for (int64_t kd = 0; kd < kd_n; kd++) {
            int64_t z = depth_row(m, od, kd);
            if (z < 0) continue;
            const T *x0 = buf + ((c * m->in[0] + z) * l->hp + oh0 * s1) * rowlen;
            const T *w0 = wp + (c * kd_n + kd) * kh_n * kwr;
            for (int64_t i = 0; i < rows_i; i++) {
                const T *wr[4];
                int use[4];
                for (int h = 0; h < OH; h++) {
                    int64_t rem = i - h * s1;
                    use[h] = rem >= 0 && rem % d1 == 0 && rem / d1 < kh_n;
                    wr[h] = w0 + (use[h] ? rem / d1 : 0) * kwr;
                }
                const T *xr = x0 + i * rowlen;
                for (int64_t kv = 0; kv < kwr; kv += LANES) {
                    vec xv[4];
                    FN(dot_loads)(xr + kv, off, kv >= full, mask, J, OH > 1, xv);
                    for (int h = 0; h < OH; h++) {
                        if (!use[h]) continue;
                        vec wv = *(const uvec *)(wr[h] + kv);
                        for (int j = 0; j < J; j++) acc[h][j] += wv * xv[j];
                    }
                }
            }
        }
    FN(dot_store)(acc, OH, J, yo + (od * m->out[1] + oh0) * m->out[2] + ow, m->out[2]);
}

#define DOT_ROWS_J(OHC)                                                                               \
    do {                                                                                              \
        if (left >= 4) FN(dot_rows)(m, l, buf, wp, yo, od, oh, ow, mask, OHC, 4);                      \
        else if (left == 3) FN(dot_rows)(m, l, buf, wp, yo, od, oh, ow, mask, OHC, 3);                 \
        else if (left == 2) FN(dot_rows)(m, l, buf, wp, yo, od, oh, ow, mask, OHC, 2);                 \
        else FN(dot_rows)(m, l, buf, wp, yo, od, oh, ow, mask, OHC, 1);                                \
    } while (0)

void FN(dots)(const Geom *m, const Layout *l, const T *buf, const T *wpad, T *y,
                     int64_t o0, int64_t o1) {
    /* every output is a dot product over each kernel row, 4 output channels x 4 outputs of a row
       at a time, in vector accumulators (one horizontal sum per output at the end); a kernel
       row's last partial vector reads zeros past the row's end from the weights (wpad: the
       group's weights with rows padded to whole vectors) and has those lanes of the inputs
       zeroed with a bit mask (so that an Inf or NaN read there never makes a NaN) */
    const int64_t kw_n = m->k[2];
    const int64_t kwr = (kw_n + LANES - 1) / LANES * LANES, wlen = m->cg * m->k[0] * m->k[1] * kwr;
    const int64_t ystride = m->out[0] * m->out[1] * m->out[2];
    ivec mask;
    for (int v = 0; v < LANES; v++) mask[v] = v < kw_n - kw_n / LANES * LANES ? -1 : 0;
    for (int64_t o = o0; o < o1;) {
        int ob = (o1 - o >= 4) ? 4 : 1;
        const T *wp = wpad + o * wlen;
        T *yo = y + o * ystride;
        if (ob == 1 && m->d[1] == 1) { /* one channel (a depthwise weight gradient), kernel rows 1 apart:
                                         blocks of up to 4 rows x 4 columns, each input row read once
                                         (C harness: 3x3 depthwise at 56x56 5.5 -> 4.7 us per group; rows
                                         2 apart, a stride-2 layer's, gained nothing) */
            for (int64_t od = 0; od < m->out[0]; od++)
                for (int64_t oh = 0; oh < m->out[1]; oh += 4)
                    for (int64_t ow = 0; ow < m->out[2]; ow += 4) {
                        int64_t left = m->out[2] - ow, rows = m->out[1] - oh;
                        if (rows >= 4) DOT_ROWS_J(4);
                        else if (rows == 3) DOT_ROWS_J(3);
                        else if (rows == 2) DOT_ROWS_J(2);
                        else DOT_ROWS_J(1);
                    }
            o += ob;
            continue;
        }
        for (int64_t od = 0; od < m->out[0]; od++)
            for (int64_t oh = 0; oh < m->out[1]; oh++)
                for (int64_t ow = 0; ow < m->out[2]; ow += 4) {
                    /* J = the columns left, at most 4 (a 3-wide output, the usual weight gradient
                       of a 3x3 layer, wastes no lanes) */
                    int64_t left = m->out[2] - ow;
                    if (ob == 4) {
                        if (left >= 4) FN(dot_block)(m, l, buf, wp, wlen, yo, ystride, od, oh, ow, mask, 4, 4);
                        else if (left == 3) FN(dot_block)(m, l, buf, wp, wlen, yo, ystride, od, oh, ow, mask, 4, 3);
                        else if (left == 2) FN(dot_block)(m, l, buf, wp, wlen, yo, ystride, od, oh, ow, mask, 4, 2);
                        else FN(dot_block)(m, l, buf, wp, wlen, yo, ystride, od, oh, ow, mask, 4, 1);
                    } else {
                        if (left >= 4) FN(dot_block)(m, l, buf, wp, wlen, yo, ystride, od, oh, ow, mask, 1, 4);
                        else if (left == 3) FN(dot_block)(m, l, buf, wp, wlen, yo, ystride, od, oh, ow, mask, 1, 3);
                        else if (left == 2) FN(dot_block)(m, l, buf, wp, wlen, yo, ystride, od, oh, ow, mask, 1, 2);
                        else FN(dot_block)(m, l, buf, wp, wlen, yo, ystride, od, oh, ow, mask, 1, 1);
                    }
                }
        o += ob;
    }
}
