/* The "rows" form (long output rows, small kernels): a block of OB output channels x R output rows x VL
   output columns (one vector, LANES, for output rows that fit in one) is accumulated in registers over
   every (channel, tap) and stored once. The buffer's columns are split by the stride: tap kw of output
   column ow reads phase (kw d) mod s at index ow + (kw d) div s, contiguous in ow. Depthwise layers with
   stride 2 over columns (AVX-512) skip the buffer (rows_s2). */
#include "native.h"

/* one block: OB channels (weights wo, stride wstride between channels) x R rows x NB LANES columns
   of output slice od starting at row oh, column ow, accumulated in OB * R * NB vector registers */
static inline __attribute__((always_inline)) void FN(block)(
    const Geom *m, const Layout *l, const T *buf, const T *wo, int64_t wstride, T *yo,
    int64_t ystride, int64_t od, int64_t oh, int64_t ow, const int OB, const int R, const int NB) {
    vec acc[4][4][NV]; /* OB, R <= 4, NB <= NV: fixed sizes, so that the compiler keeps them in registers */
    for (int o = 0; o < OB; o++)
        for (int r = 0; r < R; r++)
            for (int n = 0; n < NB; n++) acc[o][r][n] = (vec){0};
    const int64_t kd_n = m->k[0], kh_n = m->k[1], kw_n = m->k[2];
    const int64_t rowlen = l->q * l->wq, rowstep = m->s[1] * rowlen;
    for (int64_t c = 0; c < m->cg; c++)
        for (int64_t kd = 0; kd < kd_n; kd++) {
            int64_t z = depth_row(m, od, kd);
            if (z < 0) continue;
            const T *plane = buf + (c * m->in[0] + z) * l->hp * rowlen;
            for (int64_t kh = 0; kh < kh_n; kh++) {
                const T *wrow = wo + ((c * kd_n + kd) * kh_n + kh) * kw_n;
                const T *xrow = plane + (oh * m->s[1] + kh * m->d[1]) * rowlen + ow;
                for (int64_t kw = 0; kw < kw_n; kw++) {
                    const T *xp = xrow + l->tap[kw];
                    vec wv[4];
                    for (int o = 0; o < OB; o++) wv[o] = SPLAT(wrow[o * wstride + kw]);
                    for (int r = 0; r < R; r++)
                        for (int n = 0; n < NB; n++) {
                            vec xv = *(const uvec *)(xp + r * rowstep + n * LANES);
                            if (OB > 1) KEEP_IN_REGISTER(xv);
                            for (int o = 0; o < OB; o++) acc[o][r][n] += wv[o] * xv;
                        }
                }
            }
        }
    int64_t nr = m->out[1] - oh < R ? m->out[1] - oh : R;
    int64_t nv = m->out[2] - ow < NB * LANES ? m->out[2] - ow : NB * LANES;
    for (int o = 0; o < OB; o++)
        for (int64_t r = 0; r < nr; r++)
            FN(store_row)(acc[o][r], yo + o * ystride + ((od * m->out[1]) + oh + r) * m->out[2] + ow, nv, NB);
}

/* one output channel x 8 rows x VL columns of a 3x3 kernel with stride and dilation 1 over rows:
   input row i of the block feeds output rows i - kh (kh = 0..2), so each (input row, kernel column)
   vector is loaded once for up to 3 multiply-adds instead of once per multiply-add (the loads, not
   the multiply-adds, bound the general block on depthwise layers) */
static inline __attribute__((always_inline)) void FN(block_rows3)(
    const Geom *m, const Layout *l, const T *buf, const T *wo, T *yo, int64_t od, int64_t oh, int64_t ow,
    const int NB) {
    vec acc[8][NV];
    for (int r = 0; r < 8; r++)
        for (int n = 0; n < NB; n++) acc[r][n] = (vec){0};
    const int64_t rowlen = l->q * l->wq, t0 = l->tap[0], t1 = l->tap[1], t2 = l->tap[2];
    for (int64_t c = 0; c < m->cg; c++)
        for (int64_t kd = 0; kd < m->k[0]; kd++) {
            int64_t z = depth_row(m, od, kd);
            if (z < 0) continue;
            const T *x0 = buf + (c * m->in[0] + z) * l->hp * rowlen + oh * rowlen + ow;
            const T *wk = wo + (c * m->k[0] + kd) * 9;
            vec wv[3][3];
            for (int kh = 0; kh < 3; kh++)
                for (int kw = 0; kw < 3; kw++) wv[kh][kw] = SPLAT(wk[kh * 3 + kw]);
#pragma GCC unroll 10
            for (int i = 0; i < 10; i++) {
                const T *xr = x0 + i * rowlen;
#pragma GCC unroll 3
                for (int kw = 0; kw < 3; kw++) {
                    const T *xp = xr + (kw == 0 ? t0 : (kw == 1 ? t1 : t2));
                    vec xv[NV];
                    for (int n = 0; n < NB; n++) {
                        xv[n] = *(const uvec *)(xp + n * LANES);
                        KEEP_IN_REGISTER(xv[n]);
                    }
#pragma GCC unroll 3
                    for (int kh = 0; kh < 3; kh++) {
                        int r = i - kh;
                        if (r < 0 || r >= 8) continue;
                        for (int n = 0; n < NB; n++) acc[r][n] += wv[kh][kw] * xv[n];
                    }
                }
            }
        }
    int64_t nr = m->out[1] - oh < 8 ? m->out[1] - oh : 8;
    int64_t nv = m->out[2] - ow < NB * LANES ? m->out[2] - ow : NB * LANES;
    for (int64_t r = 0; r < nr; r++)
        FN(store_row)(acc[r], yo + ((od * m->out[1]) + oh + r) * m->out[2] + ow, nv, NB);
}

static void FN(rows_nb)(const Geom *m, const Layout *l, const T *buf, const T *w, T *y,
                          int64_t o0, int64_t o1, int R, const int NB) {
    /* w: the group's first output channel's weights; y: its first output plane */
    const int64_t wstride = m->cg * m->k[0] * m->k[1] * m->k[2];
    const int64_t ystride = m->out[0] * m->out[1] * m->out[2];
    for (int64_t o = o0; o < o1;) {
        int ob = (o1 - o >= 4) ? 4 : 1;
        for (int64_t od = 0; od < m->out[0]; od++)
            for (int64_t oh = 0; oh < m->out[1]; oh += R)
                for (int64_t ow = 0; ow < m->out[2]; ow += NB * LANES) {
                    const T *wo = w + o * wstride;
                    T *yo = y + o * ystride;
                    if (R == 8)
                        FN(block_rows3)(m, l, buf, wo, yo, od, oh, ow, NB);
                    else if (ob == 4 && R == 2)
                        FN(block)(m, l, buf, wo, wstride, yo, ystride, od, oh, ow, 4, 2, NB);
                    else if (ob == 4)
                        FN(block)(m, l, buf, wo, wstride, yo, ystride, od, oh, ow, 4, 1, NB);
                    else if (R == 4)
                        FN(block)(m, l, buf, wo, wstride, yo, ystride, od, oh, ow, 1, 4, NB);
                    else if (R == 2)
                        FN(block)(m, l, buf, wo, wstride, yo, ystride, od, oh, ow, 1, 2, NB);
                    else
                        FN(block)(m, l, buf, wo, wstride, yo, ystride, od, oh, ow, 1, 1, NB);
                }
        o += ob;
    }
}

/* output rows of at most LANES columns take blocks of one vector per row (cols_per_block), others of NV */
void FN(rows)(const Geom *m, const Layout *l, const T *buf, const T *w, T *y, int64_t o0, int64_t o1,
                     int R) {
    if (FN(cols_per_block)(m) == LANES)
        FN(rows_nb)(m, l, buf, w, y, o0, o1, R, 1);
    else
        FN(rows_nb)(m, l, buf, w, y, o0, o1, R, NV);
}

/* Depthwise (one input and one output channel per group) with stride 2 and dilation 1 over columns, at
   most 8 kernel columns, AVX-512: computed straight from x, with no padded copy. Input columns 2 t + e - pw
   for LANES consecutive t are the even lanes of two loads from 2 t + e - pw (kernel column e) and their odd
   lanes are kernel column e + 1; loads that reach past a row's ends are masked (a masked-off lane is never
   read), rows outside x are skipped. The padded copy of the other forms is a full extra pass over the
   input, which is most of a stride-2 depthwise layer's time. */
#ifdef __AVX512F__
/* the lanes of LANES inputs from column j that lie inside [0, n), as a load mask */
static inline unsigned FN(inside_mask)(int64_t j, int64_t n) {
    int64_t lo = j < 0 ? -j : 0, hi = n - j < LANES ? n - j : LANES;
    return lo >= hi ? 0u : ((1u << hi) - 1u) & ~((1u << lo) - 1u);
}

/* R output rows from oh x NB vectors of columns from ow (kernel w: k0 x k1 x k2, contiguous); the loads'
   column offsets and masks depend on the column block only, so they are worked out once per block */
static inline __attribute__((always_inline)) void FN(block_s2)(const Geom *m, const T *x, const T *w, T *y,
                                                               int64_t od, int64_t oh, int64_t ow, const int R,
                                                               const int NB) {
    vec acc[4][NV];
    for (int r = 0; r < R; r++)
        for (int n = 0; n < NB; n++) acc[r][n] = (vec){0};
    const int64_t kw_n = m->k[2], pairs = (kw_n + 1) / 2;
    int64_t col[4][NV]; /* pair p (kernel columns 2p, 2p + 1), vector n: first input column of its two loads */
    unsigned mask[4][NV][2];
    for (int64_t p = 0; p < pairs; p++)
        for (int n = 0; n < NB; n++) {
            col[p][n] = 2 * (ow + n * LANES) + 2 * p - m->p[2];
            mask[p][n][0] = FN(inside_mask)(col[p][n], m->in[2]);
            mask[p][n][1] = FN(inside_mask)(col[p][n] + LANES, m->in[2]);
        }
    for (int64_t kd = 0; kd < m->k[0]; kd++) {
        int64_t z = depth_row(m, od, kd);
        if (z < 0) continue;
        for (int64_t kh = 0; kh < m->k[1]; kh++) {
            const T *src[4];
            int inside[4];
            for (int r = 0; r < R; r++) {
                int64_t iy = (oh + r) * m->s[1] + kh * m->d[1] - m->p[1];
                inside[r] = iy >= 0 && iy < m->in[1];
                src[r] = x + z * m->xs[2] + (inside[r] ? iy : 0) * m->xs[3];
            }
            const T *wr = w + (kd * m->k[1] + kh) * kw_n;
            for (int64_t p = 0; p < pairs; p++) {
                const int odd = 2 * p + 1 < kw_n; /* the pair's second kernel column exists */
                vec w0 = SPLAT(wr[2 * p]), w1 = SPLAT(odd ? wr[2 * p + 1] : 0);
                for (int r = 0; r < R; r++)
                    for (int n = 0; n < NB; n++) {
                        if (!inside[r]) continue;
                        const T *at = src[r] + col[p][n];
                        vec a = MASKED_LOAD(at, mask[p][n][0]), b = MASKED_LOAD(at + LANES, mask[p][n][1]);
                        acc[r][n] += w0 * EVENS(a, b);
                        if (odd) acc[r][n] += w1 * ODDS(a, b);
                    }
            }
        }
    }
    int64_t nr = m->out[1] - oh < R ? m->out[1] - oh : R;
    int64_t nv = m->out[2] - ow < NB * LANES ? m->out[2] - ow : NB * LANES;
    for (int64_t r = 0; r < nr; r++)
        FN(store_row)(acc[r], y + ((od * m->out[1]) + oh + r) * m->out[2] + ow, nv, NB);
}

/* one unit's output plane(s) y from its input channel x (strides m->xs) and kernel w */
void FN(rows_s2)(const Geom *m, const T *x, const T *w, T *y) {
    const int NB = FN(cols_per_block)(m) == LANES ? 1 : NV;
    for (int64_t od = 0; od < m->out[0]; od++)
        for (int64_t oh = 0; oh < m->out[1]; oh += 4)
            for (int64_t ow = 0; ow < m->out[2]; ow += NB * LANES) {
                if (NB == 1) FN(block_s2)(m, x, w, y, od, oh, ow, 4, 1);
                else FN(block_s2)(m, x, w, y, od, oh, ow, 4, NV);
            }
}
#endif
