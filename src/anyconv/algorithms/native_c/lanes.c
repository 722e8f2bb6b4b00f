/* Form 2, "lanes": the groups in the vector lanes (float32, AVX-512; the plan in plan.c).
   One output channel per group and at least 16 groups (depthwise layers, and their weight gradients,
   where the sum runs over the batch): the 16 groups of a block take the 16 lanes of every vector, so a
   tap's weights are one vector and an input position's 16 values are another, 64-byte aligned, and no
   lane needs a broadcast. Per (sample, block of 16 groups), band of output rows and input channel c of
   a group, the block's input rows are transposed into a tile (positions x 16 lanes, padding included)
   and its weights into another (k1 x k2 x 16); output blocks of ROWS rows x R columns are accumulated
   in registers over every tap (the rows share each input load when the stride over rows is a multiple
   of the dilation) into an output tile, transposed back into the block's output planes after the last
   c. The rows and dots forms load a weight broadcast and an unaligned input vector (usually two cache
   lines) per multiply-add; this form loads 0.4-1.1 aligned vectors per multiply-add. */
#include "native.h"

#if LANES_FORM
/* 16 x 16 floats transposed in registers: r[i][j] <-> r[j][i] */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a0 = _mm512_castps_pd(t[4 * i]), a1 = _mm512_castps_pd(t[4 * i + 1]);
        __m512d a2 = _mm512_castps_pd(t[4 * i + 2]), a3 = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
    }
    /* r[4 i + k]: rows 4 i .. 4 i + 3, element k of each 128-bit lane: gather the 128-bit lanes */
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) {
            __m512 a = r[8 * i + k], b = r[8 * i + 4 + k];
            t[8 * i + k] = _mm512_shuffle_f32x4(a, b, 0x88);
            t[8 * i + 4 + k] = _mm512_shuffle_f32x4(a, b, 0xdd);
        }
    for (int k = 0; k < 4; k++) {
        __m512 a = t[k], b = t[8 + k], c = t[4 + k], d = t[12 + k];
        r[k] = _mm512_shuffle_f32x4(a, b, 0x88);
        r[8 + k] = _mm512_shuffle_f32x4(a, b, 0xdd);
        r[4 + k] = _mm512_shuffle_f32x4(c, d, 0x88);
        r[12 + k] = _mm512_shuffle_f32x4(c, d, 0xdd);
    }
}

/* columns [j0, j1) of one row of n <= 16 lanes (lane l's at src + l ls; lanes n.. read as zeros)
   transposed into vectors dst[j]. With 16 lanes and at least 16 columns every block is a whole one (the
   last overlapping the one before), with constant trip counts: with a variable count the compiler keeps
   the 16 registers in memory (25% of a 56-wide row's blocks were partial, at about twice the cost). */
static void lanes_pack_row(const float *src, int64_t ls, int64_t n, int64_t j0, int64_t j1, vec *dst) {
    __m512 v[16];
    int64_t j = j0;
    if (n == 16 && j1 - j0 >= 16) { /* the last block overlaps the one before (the same values again) */
        for (;; j += 16) {
            if (j > j1 - 16) j = j1 - 16;
            for (int l = 0; l < 16; l++) v[l] = _mm512_loadu_ps(src + l * ls + j);
            transpose16(v);
            for (int t = 0; t < 16; t++) dst[j + t] = (vec)v[t];
            if (j == j1 - 16) return;
        }
    }
    for (; j < j1; j += 16) {
        int64_t cnt = j1 - j < 16 ? j1 - j : 16;
        __mmask16 k = (__mmask16)((1u << cnt) - 1u);
        for (int l = 0; l < 16; l++) v[l] = l < n ? _mm512_maskz_loadu_ps(k, src + l * ls + j) : _mm512_setzero_ps();
        transpose16(v);
        for (int64_t t = 0; t < cnt; t++) dst[j + t] = (vec)v[t];
    }
}

/* an output tile (count positions x 16 lanes) transposed into n <= 16 lanes' runs (lane l's at
   dst + l ls, positions contiguous); full blocks as in lanes_pack_row */
static void lanes_unpack(const vec *tile, int64_t count, int64_t n, float *dst, int64_t ls) {
    __m512 v[16];
    int64_t p = 0;
    if (n == 16 && count >= 16) { /* the last block overlaps the one before, as in lanes_pack_row */
        for (;; p += 16) {
            if (p > count - 16) p = count - 16;
            for (int t = 0; t < 16; t++) v[t] = (__m512)tile[p + t];
            transpose16(v);
            for (int l = 0; l < 16; l++) _mm512_storeu_ps(dst + l * ls + p, v[l]);
            if (p == count - 16) return;
        }
    }
    for (; p < count; p += 16) {
        int64_t cnt = count - p < 16 ? count - p : 16;
        __mmask16 k = (__mmask16)((1u << cnt) - 1u);
        for (int t = 0; t < 16; t++) v[t] = t < cnt ? (__m512)tile[p + t] : _mm512_setzero_ps();
        transpose16(v);
        for (int64_t l = 0; l < n; l++) _mm512_mask_storeu_ps(dst + l * ls + p, k, v[l]);
    }
}

/* one tile row's taps for block rows LO..HI (row rr: kernel row i - rr shift, weights wr[rr]): every
   input vector loaded once for the HI - LO + 1 rows it feeds */
static inline __attribute__((always_inline)) void lanes_taps(vec a[3][8], const vec *row, const vec *const wr[3],
                                                             int64_t k2, int64_t s2, int64_t d2, const int LO,
                                                             const int HI, const int R) {
    for (int64_t kw = 0; kw < k2; kw++) {
        vec u[3];
        for (int rr = LO; rr <= HI; rr++) u[rr] = wr[rr][kw];
        const vec *p = row + kw * d2;
        for (int r = 0; r < R; r++) {
            vec q = p[r * s2];
            if (HI > LO) KEEP_IN_REGISTER(q);
            for (int rr = LO; rr <= HI; rr++) a[rr][r] += q * u[rr];
        }
    }
}

/* the sums of a block of ROWS output rows from oh (of the band) x R columns into a: tile row i (of the
   tile from xt, ld vectors a row) feeds block row rr with kernel row i - rr shift where that lies in
   [0, k1); a kernel row is kw taps (of wt, kw vectors a row) at stride s2 and dilation d2 over columns */
static inline __attribute__((always_inline)) void lanes_sums(vec a[3][8], const Geom *m, const vec *xt, int64_t ld,
                                                             const vec *wt, int64_t kw, int64_t s2, int64_t d2,
                                                             int64_t oh, const int ROWS, const int R) {
    for (int rr = 0; rr < ROWS; rr++)
        for (int r = 0; r < R; r++) a[rr][r] = (vec){0};
    const int64_t k1 = m->k[1];
    const int64_t shift = ROWS > 1 ? lanes_shift(m) : 1;
    for (int64_t i = 0; i < k1 + (ROWS - 1) * shift; i++) {
        const int64_t lo = i < k1 ? 0 : (i - k1) / shift + 1, hi = i / shift < ROWS - 1 ? i / shift : ROWS - 1;
        if (lo > hi) continue; /* a tile row between two rows' windows (shift > k1) */
        const vec *row = xt + (oh * m->s[1] + i * m->d[1]) * ld;
        const vec *wr[3];
        for (int rr = 0; rr < ROWS; rr++) wr[rr] = wt + (i - rr * shift) * kw;
        switch (lo * 3 + hi) {
        case 0: lanes_taps(a, row, wr, kw, s2, d2, 0, 0, R); break;
        case 1: lanes_taps(a, row, wr, kw, s2, d2, 0, ROWS > 1 ? 1 : 0, R); break;
        case 2: lanes_taps(a, row, wr, kw, s2, d2, 0, ROWS > 2 ? 2 : 0, R); break;
        case 4: lanes_taps(a, row, wr, kw, s2, d2, ROWS > 1 ? 1 : 0, ROWS > 1 ? 1 : 0, R); break;
        case 5: lanes_taps(a, row, wr, kw, s2, d2, ROWS > 1 ? 1 : 0, ROWS > 2 ? 2 : 0, R); break;
        default: lanes_taps(a, row, wr, kw, s2, d2, ROWS > 2 ? 2 : 0, ROWS > 2 ? 2 : 0, R); break;
        }
    }
}

/* the direct sums' block: ROWS output rows from oh x R columns from ow, stored (or added: add) */
static inline __attribute__((always_inline)) void lanes_block(const Geom *m, const vec *xt, int64_t wp,
                                                              const vec *wt, vec *yt, int64_t oh, int64_t ow,
                                                              int add, const int ROWS, const int R) {
    vec a[3][8];
    lanes_sums(a, m, xt + ow * m->s[2], wp, wt, m->k[2], m->s[2], m->d[2], oh, ROWS, R);
    for (int rr = 0; rr < ROWS; rr++) {
        vec *dst = yt + (oh + rr) * m->out[2] + ow;
        for (int r = 0; r < R; r++) dst[r] = add ? dst[r] + a[rr][r] : a[rr][r];
    }
}

/* The nested form: over columns, the kernel row is cut into S = ceil(k2 / 3) sub-kernels of 3 taps (the
   last zero-padded) and the output row into tiles of 3, and every (tile, sub-kernel) product is Winograd's
   F(3, 3) (Toom-Cook at 0, 1, -1, 2 and infinity): y[3t + j] = (A^T sum_a U_a * V_{t + a})_j, where V_t is
   B^T applied to the 5 input columns from 3t and U_a is G applied to sub-kernel a. The input rows are
   transformed once per band (V: 5 vectors per tile, stored component by component), the weights once per
   group block (U: 5 vectors per sub-kernel), and the 5 components are 5 direct correlations over the row
   of tiles with a k1 x S kernel, computed one at a time by the lanes form's register block: 5 multiply-adds
   per 3 outputs and sub-kernel, instead of 9 (k = 13 x 13: 108 per output instead of 169). All 5
   components of a block at once needed 30 accumulators and more loads than multiply-adds (1.2x slower than
   the direct sums). B^T has integer entries (rows scaled, the scale moved into G). */
static inline void nest_input(const vec *d, vec *v, int64_t ld) {
    v[0] = 2 * d[0] - d[1] - 2 * d[2] + d[3];
    v[ld] = 2 * d[1] + d[2] - d[3];
    v[2 * ld] = 3 * d[2] - 2 * d[1] - d[3];
    v[3 * ld] = d[3] - d[1];
    v[4 * ld] = 2 * d[1] - d[2] - 2 * d[3] + d[4];
}

static inline void nest_weight(vec g0, vec g1, vec g2, vec *u, int64_t ld) {
    u[0] = g0 * 0.5f;
    u[ld] = (g0 + g1 + g2) * 0.5f;
    u[2 * ld] = (g0 - g1 + g2) * (1.0f / 6);
    u[3 * ld] = (g0 + 2 * g1 + 4 * g2) * (1.0f / 6);
    u[4 * ld] = g2;
}

/* a block of ROWS output rows from oh x R tiles from t0: for each component c, lanes_sums with the
   sub-kernels as taps (the component's transformed rows and weights are a row of tiles and a k1 x S
   kernel), the sums kept in a small scratch; then A^T gives the 3 R outputs of each row */
static inline __attribute__((always_inline)) void nest_block(const Geom *m, const LanesPlan *p, const vec *vt,
                                                             const vec *ut, vec *yt, int64_t oh, int64_t t0,
                                                             int add, const int ROWS, const int R) {
    vec mm[5][3][8];
    const int64_t k1 = m->k[1], sub = p->sub, o2 = m->out[2];
    for (int c = 0; c < 5; c++) { /* component c: a row of tiles and a k1 x S kernel, stride and dilation 1 */
        vec a[3][8]; /* (summed in registers, then kept: summing into mm[c] kept them in memory, 1.2x slower) */
        lanes_sums(a, m, vt + c * p->tiles + t0, p->rowlen, ut + c * k1 * sub, sub, 1, 1, oh, ROWS, R);
        for (int rr = 0; rr < ROWS; rr++)
            for (int r = 0; r < R; r++) mm[c][rr][r] = a[rr][r];
    }
    for (int rr = 0; rr < ROWS; rr++)
        for (int r = 0; r < R; r++) {
            const vec m0 = mm[0][rr][r], m1 = mm[1][rr][r], m2 = mm[2][rr][r], m3 = mm[3][rr][r], m4 = mm[4][rr][r];
            vec y[3] = {m0 + m1 + m2 + m3, m1 - m2 + 2 * m3, m1 + m2 + 4 * m3 + m4};
            const int64_t col = 3 * (t0 + r);
            vec *dst = yt + (oh + rr) * o2 + col;
            for (int j = 0; j < 3 && col + j < o2; j++) dst[j] = add ? dst[j] + y[j] : y[j];
        }
}

/* one register block: the nested form's (xt, wt: the transformed input and weights; ow: a tile) or the
   direct sums' */
#define LANES_BLOCK(ROWS, R)                                                    \
    if (p->nest)                                                                \
        nest_block(m, p, xt, wt, yt, oh, ow, add, ROWS, R);                     \
    else                                                                        \
        lanes_block(m, xt, p->wp, wt, yt, oh, ow, add, ROWS, R);

#define LANES_COLS(ROWS)                                                        \
    switch (cols) {                                                             \
    case 8: LANES_BLOCK(ROWS, 8) break;                                         \
    case 7: LANES_BLOCK(ROWS, 7) break;                                         \
    case 6: LANES_BLOCK(ROWS, 6) break;                                         \
    case 5: LANES_BLOCK(ROWS, 5) break;                                         \
    case 4: LANES_BLOCK(ROWS, 4) break;                                         \
    case 3: LANES_BLOCK(ROWS, 3) break;                                         \
    case 2: LANES_BLOCK(ROWS, 2) break;                                         \
    default: LANES_BLOCK(ROWS, 1) break;                                        \
    }

/* the first rows output rows of a band, by columns of up to p->cols outputs (nested form: tiles), as many
   per column as the same number of columns gives (19 tiles as 7 + 6 + 6, not 8 + 8 + 3: 8% on a 13x13
   kernel); a column's input window, about k1 + ROWS tile rows of R + k2 - 1 vectors, stays in the L1 cache
   while the blocks go down; the last block of a column is as many rows as are left (no padded outputs) */
static void lanes_compute(const Geom *m, const LanesPlan *p, const vec *xt, const vec *wt, vec *yt, int64_t rows,
                          int add) {
    const int64_t n = p->nest ? (m->out[2] + 2) / 3 : m->out[2], nb = (n + p->cols - 1) / p->cols;
    for (int64_t bi = 0, ow = 0; bi < nb; bi++) {
        const int64_t cols = (n - ow) / (nb - bi) + ((n - ow) % (nb - bi) != 0);
        for (int64_t oh = 0; oh < rows; oh += p->rows) {
            const int64_t nr = rows - oh < p->rows ? rows - oh : p->rows;
            if (nr == 3) {
                LANES_COLS(3)
            } else if (nr == 2) {
                LANES_COLS(2)
            } else {
                LANES_COLS(1)
            }
        }
        ow += cols;
    }
}

/* form 2's worker: units (sample, block of 16 groups); per unit, band of output rows and input channel c
   of a group, the block's input rows transposed into the input tile (x's columns at the same places in
   every band: the columns outside x are zeroed once per call and never written; rows outside x are
   zeroed) and its weights into the weight tile, the band's outputs accumulated in the output tile over
   c, then transposed into the block's output planes */
void *FN(lanes_work)(void *arg) {
    FN(Job) *job = (FN(Job) *)arg;
    const Geom *m = job->m;
    const LanesPlan p = FN(lanes_plan)(m);
    float *buf = NULL;
    if (posix_memalign((void **)&buf, 64, (size_t)FN(lanes_floats)(m) * sizeof(float)) != 0) {
        job->status = 1;
        return NULL;
    }
    vec *xt = (vec *)buf, *wt = xt + p.hp * p.rowlen, *yt = wt + m->k[1] * m->k[2];
    vec *xr = yt + p.band * m->out[2], *ut = xr + 3 * p.tiles + 2; /* (nested form) */
    memset(xt, 0, (size_t)(p.hp * p.rowlen) * sizeof(vec)); /* (the other tiles are written before they are read) */
    if (p.nest) memset(xr, 0, (size_t)(3 * p.tiles + 2) * sizeof(vec));
    const int64_t blocks = (m->g + 15) / 16, o1 = m->out[1], o2 = m->out[2], plane = m->out[0] * o1 * o2;
    /* x's columns that the tile holds: tile column j + p2 inside [0, wp) */
    const int64_t j0 = m->p[2] < 0 ? -m->p[2] : 0, j1 = m->in[2] < p.wp - m->p[2] ? m->in[2] : p.wp - m->p[2];
    int64_t packed = -1; /* the group block whose weights are in the weight tile */
    const int64_t bands = (o1 + p.band - 1) / p.band;
    for (int64_t u = job->tid; u < m->b * blocks * bands; u += m->threads) {
        /* units (sample, group block, band of output rows) */
        const int64_t b = u / bands / blocks, g0 = u / bands % blocks * 16, n = m->g - g0 < 16 ? m->g - g0 : 16;
        const int64_t oh0 = u % bands * p.band, rows = o1 - oh0 < p.band ? o1 - oh0 : p.band;
        const int64_t hrows = (rows - 1) * m->s[1] + (m->k[1] - 1) * m->d[1] + 1;
        for (int64_t c = 0; c < m->cg; c++) {
            const float *xc = job->x + b * m->xs[0] + g0 * m->xg + c * m->xs[1];
            for (int64_t t = 0; t < hrows; t++) {
                const int64_t iy = oh0 * m->s[1] + t - m->p[1];
                if (iy < 0 || iy >= m->in[1])
                    memset(xt + t * p.rowlen, 0, (size_t)p.rowlen * sizeof(vec));
                else if (!p.nest) {
                    if (j0 < j1) lanes_pack_row(xc + iy * m->xs[3], m->xg, n, j0, j1, xt + t * p.wp + m->p[2]);
                } else {
                    if (j0 < j1) lanes_pack_row(xc + iy * m->xs[3], m->xg, n, j0, j1, xr + m->p[2]);
                    for (int64_t q = 0; q < p.tiles; q++) nest_input(xr + 3 * q, xt + t * p.rowlen + q, p.tiles);
                }
            }
            if (m->cg > 1 || packed != g0) { /* (one channel per group: the block's weights, kept over units) */
                for (int64_t kh = 0; kh < m->k[1]; kh++)
                    lanes_pack_row(job->w + g0 * m->ws[0] + c * m->ws[1] + kh * m->ws[3], m->ws[0], n, 0, m->k[2],
                                   wt + kh * m->k[2]);
                packed = g0;
                if (p.nest)
                    for (int64_t kh = 0; kh < m->k[1]; kh++)
                        for (int64_t a = 0; a < p.sub; a++) {
                            const vec *g = wt + kh * m->k[2] + 3 * a, z = {0};
                            nest_weight(g[0], 3 * a + 1 < m->k[2] ? g[1] : z, 3 * a + 2 < m->k[2] ? g[2] : z,
                                        ut + kh * p.sub + a, m->k[1] * p.sub);
                        }
            }
            lanes_compute(m, &p, xt, p.nest ? ut : wt, yt, rows, c > 0);
        }
        lanes_unpack(yt, rows * o2, n, job->y + (b * m->g + g0) * plane + oh0 * o2, plane);
    }
    free(buf);
    return NULL;
}
#endif
