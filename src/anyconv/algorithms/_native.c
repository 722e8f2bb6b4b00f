/* anyconv's native kernel: grouped direct cross-correlation in up to 3 spatial dims.

   y[b, g*Og + o, p] = sum_{c, q} w[g*Og + o, c, q] * x_pad[b, g*Cg + c, p * s + q * d]

   The same sums as the `direct` algorithm, written as plain loops that the C compiler
   vectorises (built by native.py with the system compiler, -O3 -march=native). Work units are
   (sample, group, chunk of output channels); each unit first copies its group's input into a
   private buffer with the zero padding added and the columns split into phases, so that every
   tap reads a contiguous run of memory and no loop below checks a bound:

   - "rows" form (long output rows, small kernels): a block of OB output channels x R output
     rows x VL output columns (one vector, LANES, for output rows that fit in one) is accumulated
     in registers over every (channel, tap) and stored once. The buffer's columns are split by the stride: tap kw of output column ow reads phase
     (kw d) mod s at index ow + (kw d) div s, contiguous in ow.
   - "dots" form (short output rows, large kernels: the weight gradients): every output is a dot
     product over the kernel's rows, 4 output channels x up to 4 outputs of a row at a time, over a
     copy of the group's weights with rows padded to whole vectors. The buffer's columns are split
     by the dilation: output column ow, tap kw reads phase (ow s) mod d at index (ow s) div d + kw,
     contiguous in kw.

   - "lanes" form (float32 with AVX-512; one output channel per group, at least 16 groups, 1-2 dims:
     depthwise layers and their weight gradients): 16 groups in the lanes of every vector (see the
     section "form 2" below).

   Depth (the first of 3 dims) is not padded in the buffer: taps that fall outside are skipped.
   Accumulation is in the input type (float or double), in order channel, tap (the dots form sums
   each row's vector lanes at the end). x is read through its strides (rows contiguous).
*/
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* the call's geometry: filled by native.py in this order */
typedef struct {
    int64_t b, g, cg, og;        /* samples, groups, in / out channels per group */
    int64_t in[3], k[3], out[3]; /* spatial sizes, leading dims 1 below 3-D */
    int64_t s[3], d[3], p[3];    /* stride, dilation, padding before */
    int64_t form;                /* 0: rows, 1: dots, 2: lanes (float32, AVX-512) */
    int64_t threads;             /* worker threads */
    int64_t chunks;              /* chunks of output channels per (sample, group) */
    int64_t xs[4];               /* x's strides (elements) of sample, channel, depth, row; columns: 1 */
    int64_t ws[4];               /* w's strides of output channel, input channel, depth, row (dots
                                    and lanes forms; the rows form takes a contiguous w) */
    int64_t xg;                  /* x's stride between groups: Cg xs[1] for a tensor, another for the
                                    batch/channel-swapped input of a weight gradient read in place */
} Geom;

/* the padded, phase-split copy of one group's input: buffer shape (Cg, ID, hp, q, wq) */
typedef struct {
    int64_t hp, q, wq;
    int64_t *tap;    /* rows form: where kernel column kw starts in a buffer row, (kw d mod s) wq + kw d div s */
    int64_t *inside; /* per phase r: [t0, t1), the part of the phase's row that lies inside x */
} Layout;

static Layout layout(const Geom *m, int64_t rows_r, int64_t cols_r) {
    Layout l;
    if (m->form == 0) {
        int64_t ohr = (m->out[1] + rows_r - 1) / rows_r * rows_r;
        int64_t owr = (m->out[2] + cols_r - 1) / cols_r * cols_r;
        int64_t wp = (owr - 1) * m->s[2] + (m->k[2] - 1) * m->d[2] + 1;
        l.hp = (ohr - 1) * m->s[1] + (m->k[1] - 1) * m->d[1] + 1;
        l.q = m->s[2];
        l.wq = (wp + l.q - 1) / l.q;
    } else {
        int64_t owr = (m->out[2] + 3) / 4 * 4;
        int64_t wp = (owr - 1) * m->s[2] + (m->k[2] - 1) * m->d[2] + 1;
        l.hp = (m->out[1] - 1) * m->s[1] + (m->k[1] - 1) * m->d[1] + 1;
        l.q = m->d[2];
        l.wq = (wp + l.q - 1) / l.q;
    }
    return l;
}

/* the input depth index that output depth od reads with kernel depth kd, or -1 outside the input
   (depth is not padded in the buffers) */
static inline int64_t depth_row(const Geom *m, int64_t od, int64_t kd) {
    int64_t z = od * m->s[0] + kd * m->d[0] - m->p[0];
    return z < 0 || z >= m->in[0] ? -1 : z;
}

/* ceil(a / b) for b > 0 and any sign of a */
static inline int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/* output rows per register block of the rows form: 2 with blocks of 4 output channels, 4 with one
   channel (so that a block keeps 8-16 accumulators), 1 for a one-row output */
/* 3x3 kernels, stride and dilation 1 over rows, one output channel at a time (depthwise): 8 rows per
   block, each input row loaded once for the (up to) 3 output rows it feeds (see block_rows3) */
static int rows3(const Geom *m) {
    return m->form == 0 && m->og < 4 && m->k[1] == 3 && m->k[2] == 3 && m->s[1] == 1 && m->d[1] == 1 && m->out[1] > 1;
}

static int rows_per_block(const Geom *m) { return m->out[1] == 1 ? 1 : (m->og >= 4 ? 2 : (rows3(m) ? 8 : 4)); }

/* compiled twice by native.py: -DANYCONV_DOUBLE gives the float64 kernels */
#ifdef ANYCONV_DOUBLE
typedef double T;
#define VL 16 /* output columns per register block */
#define FN(name) name##_f64
#else
typedef float T;
#define VL 32
#define FN(name) name##_f32
#endif

/* GCC/Clang vector types: VL columns are NV vectors of 64 bytes (the compiler splits them where
   the machine's vectors are narrower); uvec is the same vector read from any T-aligned address */
#define LANES ((int)(64 / sizeof(T)))
#define NV (VL / LANES)

/* output columns per register block of the rows form: one vector (LANES) for output rows that fit in
   one, else the full block (VL): a 7-wide row of a 7x7 plane wastes 9 of 16 lanes instead of 25 of 32 */
static int64_t cols_per_block(const Geom *m) { return m->out[2] <= LANES ? LANES : VL; }

typedef T vec __attribute__((vector_size(64)));
typedef T uvec __attribute__((vector_size(64), aligned(sizeof(T))));
#ifdef ANYCONV_DOUBLE
typedef int64_t ivec __attribute__((vector_size(64))); /* lane masks */
#else
typedef int32_t ivec __attribute__((vector_size(64)));
#endif

/* s in every lane: -0.0 + s is s for every s (+0.0 + -0.0 is +0.0), so the compiler drops the add and
   broadcasts s straight from memory into the multiply-add ((vec){0} + s cost an add and a shuffle) */
#define SPLAT(s) (-(vec){0} + (s))

/* v stays in a register: without it the compiler folds a vector that several multiply-adds use into each
   of them as a memory operand, one load per use (the dots form: 16 loads per 12 multiply-adds, not 7) */
#if defined(__GNUC__) && defined(__AVX512F__)
#define KEEP_IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define KEEP_IN_REGISTER(v) ((void)0)
#endif

#ifdef __AVX512F__
#include <immintrin.h>
#ifdef ANYCONV_DOUBLE
#define MASKED_STORE(p, k, v) _mm512_mask_storeu_pd((p), (__mmask8)(k), (__m512d)(v))
#define MASKED_LOAD(p, k) ((vec)_mm512_maskz_loadu_pd((__mmask8)(k), (p)))
#else
#define MASKED_STORE(p, k, v) _mm512_mask_storeu_ps((p), (__mmask16)(k), (__m512)(v))
#define MASKED_LOAD(p, k) ((vec)_mm512_maskz_loadu_ps((__mmask16)(k), (p)))
#endif
#endif

/* the even and the odd lanes of two vectors (a, b): the stride-2 phases of 2 * LANES consecutive inputs */
#ifdef ANYCONV_DOUBLE
#ifdef __clang__
#define EVENS(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#define ODDS(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15)
#else
#define EVENS(a, b) __builtin_shuffle(a, b, (ivec){0, 2, 4, 6, 8, 10, 12, 14})
#define ODDS(a, b) __builtin_shuffle(a, b, (ivec){1, 3, 5, 7, 9, 11, 13, 15})
#endif
#else
#ifdef __clang__
#define EVENS(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define ODDS(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#else
#define EVENS(a, b) __builtin_shuffle(a, b, (ivec){0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30})
#define ODDS(a, b) __builtin_shuffle(a, b, (ivec){1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31})
#endif
#endif

/* stride 2 (q = 2): an input row goes to a staging row first, stage[k] = src[k - pw] for k < 2 wq (zero
   outside the part that x covers, the same part for every row of a call, so the zeros are written once),
   then is split into its two phases by whole vectors, d_r[t] = stage[2 t + r] (the last vector
   overlapping the one before: no element-wise tail, no bound to check). The split reads a row staged
   one row earlier (two staging rows, used in turn): a vector load right after the copy's stores to
   the same bytes at other offsets waits for them to reach the cache (C harness: 40% of the fill's
   time there). */
static void FN(stage_row)(const T *src, int64_t n, int64_t pw, int64_t wq, T *stage) {
    const int64_t k0 = pw > 0 ? pw : 0, k1 = n + pw < 2 * wq ? n + pw : 2 * wq;
    for (int64_t k = k0; k < k1; k++) stage[k] = src[k - pw];
}

static void FN(split_row)(const T *stage, int64_t wq, T *d0, T *d1) {
    if (wq < LANES) {
        for (int64_t t = 0; t < wq; t++) {
            d0[t] = stage[2 * t];
            d1[t] = stage[2 * t + 1];
        }
        return;
    }
    for (int64_t t = 0;; t += LANES) {
        if (t > wq - LANES) t = wq - LANES;
        vec a = *(const uvec *)(stage + 2 * t), b = *(const uvec *)(stage + 2 * t + LANES);
        *(uvec *)(d0 + t) = EVENS(a, b);
        *(uvec *)(d1 + t) = ODDS(a, b);
        if (t == wq - LANES) break;
    }
}

/* x's part of one (sample, group) copied into buf: (Cg, ID, hp, q, wq), phase r of a row holding input
   columns r, r + q, ... shifted by the padding. buf and stage (two rows of 2 wq, q = 2) start zeroed
   and every call writes the same elements of them (the parts inside x): the padding is written once */
static void FN(fill)(const Geom *m, const Layout *l, const T *x, T *buf, T *stage) {
    /* x: the group's first input channel of one sample (strides m->xs) */
    const int64_t id = m->in[0], ih = m->in[1], wq = l->wq;
    T *pending = NULL; /* q = 2: the buffer row whose input is staged, not yet split */
    int64_t staged = 0;
    for (int64_t c = 0; c < m->cg; c++)
        for (int64_t z = 0; z < id; z++)
            for (int64_t hb = 0; hb < l->hp; hb++) {
                T *row = buf + ((c * id + z) * l->hp + hb) * l->q * wq;
                int64_t iy = hb - m->p[1];
                if (iy < 0 || iy >= ih) continue; /* a padding row: zero already */
                const T *src = x + c * m->xs[1] + z * m->xs[2] + iy * m->xs[3];
                if (l->q == 2) {
                    T *slot = stage + (staged & 1) * 2 * wq;
                    FN(stage_row)(src, m->in[2], m->p[2], wq, slot);
                    if (pending) FN(split_row)(stage + ((staged - 1) & 1) * 2 * wq, wq, pending, pending + wq);
                    pending = row;
                    staged++;
                    continue;
                }
                for (int64_t r = 0; r < l->q; r++) {
                    T *dst = row + r * wq;
                    int64_t t0 = l->inside[2 * r], t1 = l->inside[2 * r + 1];
                    const T *from = src + r + t0 * l->q - m->p[2];
                    if (l->q == 1)
                        for (int64_t t = t0; t < t1; t++) dst[t] = from[t - t0];
                    else
                        for (int64_t t = t0; t < t1; t++) dst[t] = from[(t - t0) * l->q];
                }
            }
    if (pending) FN(split_row)(stage + ((staged - 1) & 1) * 2 * wq, wq, pending, pending + wq);
}


/* the first and the second half of the lanes of a and b interleaved (a0 b0 a1 b1 ...): two stride-2
   phases of a row written back as consecutive columns */
#ifdef ANYCONV_DOUBLE
#ifdef __clang__
#define ZIPLO(a, b) __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11)
#define ZIPHI(a, b) __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15)
#else
#define ZIPLO(a, b) __builtin_shuffle(a, b, (ivec){0, 8, 1, 9, 2, 10, 3, 11})
#define ZIPHI(a, b) __builtin_shuffle(a, b, (ivec){4, 12, 5, 13, 6, 14, 7, 15})
#endif
#else
#ifdef __clang__
#define ZIPLO(a, b) __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define ZIPHI(a, b) __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
#else
#define ZIPLO(a, b) __builtin_shuffle(a, b, (ivec){0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23})
#define ZIPHI(a, b) __builtin_shuffle(a, b, (ivec){8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31})
#endif
#endif

/* one output row's NB accumulated vectors stored at dst: the first nv <= NB LANES columns (a row's
   last, partial vector by a masked store with AVX-512, else through a buffer, so that the accumulators
   stay in registers) */
static inline __attribute__((always_inline)) void FN(store_row)(const vec *acc, T *dst, int64_t nv, const int NB) {
    if (nv == NB * LANES) { /* whole rows without the per-vector tests (the loop alone measured 5-13% slower
                               on 7-wide depthwise and RGB s2 rows) */
        for (int n = 0; n < NB; n++) *(uvec *)(dst + n * LANES) = acc[n];
        return;
    }
    for (int n = 0; n < NB; n++) { /* constant indices into acc (a variable one would keep it in memory) */
        int64_t left = nv - n * LANES;
        if (left >= LANES) {
            *(uvec *)(dst + n * LANES) = acc[n];
        } else if (left > 0) {
#ifdef __AVX512F__
            MASKED_STORE(dst + n * LANES, (1u << left) - 1u, acc[n]);
#else
            T part[LANES];
            *(uvec *)part = acc[n];
            for (int64_t v = 0; v < left; v++) dst[n * LANES + v] = part[v];
#endif
        }
    }
}

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
static void FN(rows)(const Geom *m, const Layout *l, const T *buf, const T *w, T *y, int64_t o0, int64_t o1,
                     int R) {
    if (cols_per_block(m) == LANES)
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
static int direct_s2(const Geom *m) {
#ifdef __AVX512F__
    return m->form == 0 && m->cg == 1 && m->og == 1 && m->s[2] == 2 && m->d[2] == 1 && m->k[2] <= 8;
#else
    (void)m;
    return 0;
#endif
}

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
static void FN(rows_s2)(const Geom *m, const T *x, const T *w, T *y) {
    const int NB = cols_per_block(m) == LANES ? 1 : NV;
    for (int64_t od = 0; od < m->out[0]; od++)
        for (int64_t oh = 0; oh < m->out[1]; oh += 4)
            for (int64_t ow = 0; ow < m->out[2]; ow += NB * LANES) {
                if (NB == 1) FN(block_s2)(m, x, w, y, od, oh, ow, 4, 1);
                else FN(block_s2)(m, x, w, y, od, oh, ow, 4, NV);
            }
}
#endif

/* elements of the dots form's padded copy of one group's weights (rows padded to whole vectors) */
static int64_t FN(wpad_len)(const Geom *m) {
    return m->og * m->cg * m->k[0] * m->k[1] * ((m->k[2] + LANES - 1) / LANES * LANES);
}

static void FN(pad_weights)(const Geom *m, const T *w, T *wpad) {
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

static void FN(dots)(const Geom *m, const Layout *l, const T *buf, const T *wpad, T *y,
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

/* ---- form 2, "lanes": the groups in the vector lanes (float32, AVX-512) ----
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
#if !defined(ANYCONV_DOUBLE) && defined(__AVX512F__) /* (immintrin.h: included above) */
#define LANES_FORM 1
#ifndef NEST_ON
#define NEST_ON 1 /* (0: never the nested form; for A/B builds) */
#endif
#define LANES_BAND_BYTES (512 * 1024) /* a band's input and output tiles, at most (unless the least band is more) */

/* the rows that output row rr of a block shares with row 0 (tile row i feeds row rr with kernel row
   i - rr shift): s1 / d1 when the stride over rows is a multiple of the dilation, else 0 (no sharing) */
static int64_t lanes_shift(const Geom *m) { return m->s[1] % m->d[1] == 0 ? m->s[1] / m->d[1] : 0; }

/* form 2's register block (up to ROWS output rows x up to 8 output columns: 3 rows when the stride over
   rows is a multiple of the dilation, so that the rows share input loads, else 1; the last block of a
   column is as many rows as are left, a row's blocks are as wide as an even split gives) and band (output
   rows per tile fill, a multiple of ROWS unless it is all of them): the largest band whose tiles fit in LANES_BAND_BYTES, at least twice
   the rows its windows share with the next band. native.py's lanes_plan mirrors this. */
typedef struct {
    int64_t rows, cols, band, hp, wp; /* hp x wp: the input tile of one band */
    int64_t nest, sub, tiles, rowlen;  /* nested F(3, 3) over columns: sub-kernels, tiles per row, tile row length */
} LanesPlan;

/* the nested form (nest_block), for stride 1 and dilation 1 over columns, where its multiply-adds (5 per
   tile of 3 outputs and sub-kernel of 3 taps) and its input transform (about 15 per tile and input row)
   are fewer than 5/6 of the direct sums' (the blocks of the nested form measure about 1.2x their count) */
static int lanes_nest(const Geom *m) {
    if (!NEST_ON || m->s[2] != 1 || m->d[2] != 1 || m->k[2] < 3) return 0;
    const int64_t o1 = m->out[1], o2 = m->out[2], k1 = m->k[1], k2 = m->k[2];
    const int64_t sub = (k2 + 2) / 3, touts = (o2 + 2) / 3, hp = (o1 - 1) * m->s[1] + (k1 - 1) * m->d[1] + 1;
    const int64_t nested = o1 * touts * k1 * sub * 5 + hp * (touts + sub - 1) * 15;
    return 6 * nested < 5 * o1 * o2 * k1 * k2;
}

static LanesPlan lanes_plan(const Geom *m) {
    LanesPlan p;
    const int64_t o1 = m->out[1], o2 = m->out[2];
    p.rows = lanes_shift(m) ? 3 : 1;
    p.cols = 8;
    p.wp = (o2 - 1) * m->s[2] + (m->k[2] - 1) * m->d[2] + 1;
    p.nest = lanes_nest(m);
    p.sub = (m->k[2] + 2) / 3;
    p.tiles = (o2 + 2) / 3 + p.sub - 1;
    p.rowlen = p.nest ? 5 * p.tiles : p.wp;
    /* every band fills the (k1 - 1) d1 rows its windows share with the next one again */
    const int64_t halo = (m->k[1] - 1) * m->d[1], least = (2 * halo / m->s[1] + p.rows) / p.rows * p.rows;
    for (p.band = least < o1 ? least : o1; p.band < o1;) {
        int64_t next = p.band + p.rows < o1 ? p.band + p.rows : o1, hp = (next - 1) * m->s[1] + halo + 1;
        if ((hp * p.rowlen + next * o2) * 64 > LANES_BAND_BYTES) break;
        p.band = next;
    }
    /* threads with no (sample, group block) of their own split the rows: bands of about o1 / parts rows */
    const int64_t units = m->b * ((m->g + 15) / 16);
    if (m->threads > units) {
        const int64_t parts = (m->threads + units - 1) / units;
        int64_t even = (o1 + parts - 1) / parts;
        even = (even + p.rows - 1) / p.rows * p.rows;
        if (even < p.band) p.band = even;
    }
    p.hp = (p.band - 1) * m->s[1] + halo + 1;
    return p;
}

/* floats of one thread's tiles: input band, weights, output band */
static int64_t lanes_floats(const Geom *m) {
    LanesPlan p = lanes_plan(m);
    const int64_t nest = p.nest ? 3 * p.tiles + 2 + m->k[1] * p.sub * 5 : 0; /* row scratch, transformed weights */
    return (p.hp * p.rowlen + m->k[1] * m->k[2] + p.band * m->out[2] + nest) * 16;
}

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
#else
#define LANES_FORM 0
#endif

typedef struct {
    const Geom *m;
    const T *x, *w;
    T *y;
    int64_t tid;
    int status;
} FN(Job);

#if LANES_FORM
/* form 2's worker: units (sample, block of 16 groups); per unit, band of output rows and input channel c
   of a group, the block's input rows transposed into the input tile (x's columns at the same places in
   every band: the columns outside x are zeroed once per call and never written; rows outside x are
   zeroed) and its weights into the weight tile, the band's outputs accumulated in the output tile over
   c, then transposed into the block's output planes */
static void *lanes_work(void *arg) {
    FN(Job) *job = (FN(Job) *)arg;
    const Geom *m = job->m;
    const LanesPlan p = lanes_plan(m);
    float *buf = NULL;
    if (posix_memalign((void **)&buf, 64, (size_t)lanes_floats(m) * sizeof(float)) != 0) {
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

static void *FN(work)(void *arg) {
    FN(Job) *job = (FN(Job) *)arg;
    const Geom *m = job->m;
    int R = rows_per_block(m);
    Layout l = layout(m, R, cols_per_block(m));
    const int64_t plane_out = m->out[0] * m->out[1] * m->out[2];
    const int64_t wsize = m->cg * m->k[0] * m->k[1] * m->k[2];
    const int64_t nbuf = m->cg * m->in[0] * l.hp * l.q * l.wq + LANES; /* + two staging rows when q = 2 */
    T *buf = (T *)calloc((size_t)(nbuf + (l.q == 2 ? 4 * l.wq : 0)), sizeof(T));
    l.tap = (int64_t *)malloc((size_t)(m->k[2] + 2 * l.q) * sizeof(int64_t));
    T *wpad = m->form == 1 ? (T *)malloc((size_t)FN(wpad_len)(m) * sizeof(T)) : NULL;
    if (!buf || !l.tap || (m->form == 1 && !wpad)) {
        free(buf);
        free(l.tap);
        free(wpad);
        job->status = 1;
        return NULL;
    }
    for (int64_t kw = 0; kw < m->k[2]; kw++) {
        int64_t tap = kw * m->d[2];
        l.tap[kw] = (tap % l.q) * l.wq + tap / l.q;
    }
    l.inside = l.tap + m->k[2];
    for (int64_t r = 0; r < l.q; r++) {
        /* phase r, element t is input column r + t q - pw: inside x for t in [t0, t1) */
        int64_t t0 = ceil_div(m->p[2] - r, l.q), t1 = ceil_div(m->in[2] + m->p[2] - r, l.q);
        t0 = t0 < 0 ? 0 : (t0 > l.wq ? l.wq : t0);
        l.inside[2 * r] = t0;
        l.inside[2 * r + 1] = t1 < t0 ? t0 : (t1 > l.wq ? l.wq : t1);
    }
    const int64_t units = m->b * m->g * m->chunks;
    const int64_t per = (m->og + m->chunks - 1) / m->chunks;
    int64_t filled = -1, padded = -1; /* the (sample, group) whose input is in buf, the group in wpad */
    for (int64_t u = job->tid; u < units; u += m->threads) {
        /* rows form: units in (sample, group, chunk) order, so that chunks share the input copy;
           dots form: (group, chunk, sample), so that samples share the padded weights */
        int64_t b, g, ch;
        if (m->form == 0) {
            ch = u % m->chunks;
            b = u / m->chunks / m->g;
            g = u / m->chunks % m->g;
        } else {
            b = u % m->b;
            ch = u / m->b % m->chunks;
            g = u / m->b / m->chunks;
        }
        int64_t o0 = ch * per, o1 = o0 + per < m->og ? o0 + per : m->og;
        if (o0 >= o1) continue;
#ifdef __AVX512F__
        if (direct_s2(m)) { /* no padded copy */
            FN(rows_s2)(m, job->x + b * m->xs[0] + g * m->xg, job->w + g * m->og * wsize,
                        job->y + (b * m->g + g) * m->og * plane_out);
            continue;
        }
#endif
        if (filled != b * m->g + g) {
            FN(fill)(m, &l, job->x + b * m->xs[0] + g * m->xg, buf, buf + nbuf);
            filled = b * m->g + g;
        }
        const T *wg = job->w + g * m->og * (m->form == 0 ? wsize : m->ws[0]);
        T *yg = job->y + (b * m->g + g) * m->og * plane_out;
        if (m->form == 0) {
            FN(rows)(m, &l, buf, wg, yg, o0, o1, R);
        } else {
            if (padded != g) {
                FN(pad_weights)(m, wg, wpad);
                padded = g;
            }
            FN(dots)(m, &l, buf, wpad, yg, o0, o1);
        }
    }
    free(buf);
    free(l.tap);
    free(wpad);
    return NULL;
}

/* one block of phase r of a dx row (sample/group/channel c, depth z, row y): VL consecutive t from t0,
   summed over the output channels and every tap that lands there (see work_t) */
static inline __attribute__((always_inline)) void FN(phase_block)(
    const Geom *m, const T *buf, int64_t wbuf, int64_t lpad, const int64_t *taps, const int64_t *ntap,
    int64_t kw_n, int64_t ksize, const T *w, int64_t g, int64_t c, const int64_t *zl, int64_t zn,
    const int64_t *yl, int64_t yn, int64_t r, int64_t t0, vec *acc) {
    /* zl / yl: the (kernel index, gy index) pairs of depth z / row y's taps that land on gy (zn / yn) */
    const int64_t sw = m->s[2];
    for (int n = 0; n < NV; n++) acc[n] = (vec){0};
    for (int64_t o = 0; o < m->og; o++)
        for (int64_t a = 0; a < zn; a++) {
            const int64_t kd = zl[2 * a], oz = zl[2 * a + 1];
            for (int64_t e = 0; e < yn; e++) {
                const int64_t kh = yl[2 * e], oy = yl[2 * e + 1];
                const T *gr = buf + ((o * m->out[0] + oz) * m->out[1] + oy) * wbuf + lpad + t0;
                const T *wr = w + (g * m->og + o) * ksize + ((c * m->k[0] + kd) * m->k[1] + kh) * kw_n;
                for (int64_t i = 0; i < ntap[r]; i++) {
                    vec wv = SPLAT(wr[taps[r * kw_n + i]]);
                    const T *gp = gr - taps[(sw + r) * kw_n + i];
                    for (int n = 0; n < NV; n++) acc[n] += wv * *(const uvec *)(gp + n * LANES);
                }
            }
        }
}

/* the transposed correlation, the adjoint of the above in x (strided input gradients):

     dx[b, g*Cg + c, i] = sum_{o, q : i = p s + q d - pad} w[g*Og + o, c, q] gy[b, g*Og + o, p]

   m describes the forward correlation (in = dx's spatial size, out = gy's), gy and w contiguous.
   Units (sample, group); each copies its group's Og planes of gy into a buffer with zero columns on
   both sides. dx columns are computed phase by phase: column x = t s + r - pad (phase r) gets tap kw
   when kw d = r (mod s), reading gy column t - (kw d - r) / s, contiguous in t, so VL consecutive t
   are one vector block; rows and depth keep only the taps that land on a gy row. Every dx element
   belongs to one phase and one t, so each is written once (zero where no tap reaches it). */
static void *FN(work_t)(void *arg) {
    FN(Job) *job = (FN(Job) *)arg;
    const Geom *m = job->m;
    const int64_t sw = m->s[2], dw = m->d[2], pw = m->p[2], kw_n = m->k[2];
    const int64_t lpad = (kw_n - 1) * dw / sw;                   /* the largest tap shift (kw d - r) / s */
    const int64_t tcount = (m->in[2] - 1 + pw) / sw + 1;          /* t of every phase is below this */
    const int64_t wbuf = lpad + (tcount + VL - 1) / VL * VL + VL;
    const int64_t planes = m->og * m->out[0] * m->out[1];
    T *buf = (T *)malloc((size_t)(planes * wbuf) * sizeof(T));
    /* taps and shifts per phase (2 kw_n sw), taps per phase (sw), then per depth z and per row y the
       (kernel index, gy index) pairs that land on gy: computed once, not per block (divisions) */
    const int64_t nz_list = m->in[0] * 2 * m->k[0], ny_list = m->in[1] * 2 * m->k[1];
    int64_t *taps = (int64_t *)malloc((size_t)(2 * kw_n * sw + sw + nz_list + ny_list + m->in[0] + m->in[1])
                                      * sizeof(int64_t));
    if (!buf || !taps) {
        free(buf);
        free(taps);
        job->status = 1;
        return NULL;
    }
    int64_t *ntap = taps + 2 * kw_n * sw; /* per phase r: its taps kw (taps[r kw_n ..]) and shifts */
    for (int64_t r = 0; r < sw; r++) {
        ntap[r] = 0;
        for (int64_t kw = 0; kw < kw_n; kw++)
            if ((kw * dw) % sw == r) {
                taps[r * kw_n + ntap[r]] = kw;
                taps[(sw + r) * kw_n + ntap[r]] = (kw * dw - r) / sw;
                ntap[r]++;
            }
    }
    int64_t *zlist = ntap + sw, *ylist = zlist + nz_list, *zcount = ylist + ny_list, *ycount = zcount + m->in[0];
    for (int dim = 0; dim < 2; dim++) { /* depth (dim 0) and rows (dim 1) */
        int64_t *list = dim ? ylist : zlist, *count = dim ? ycount : zcount;
        for (int64_t i = 0; i < m->in[dim]; i++) {
            count[i] = 0;
            for (int64_t k = 0; k < m->k[dim]; k++) {
                int64_t n = i + m->p[dim] - k * m->d[dim];
                if (n < 0 || n % m->s[dim] || n / m->s[dim] >= m->out[dim]) continue;
                list[i * 2 * m->k[dim] + 2 * count[i]] = k;
                list[i * 2 * m->k[dim] + 2 * count[i] + 1] = n / m->s[dim];
                count[i]++;
            }
        }
    }
    const int64_t ksize = m->cg * m->k[0] * m->k[1] * kw_n;
    for (int64_t u = job->tid; u < m->b * m->g; u += m->threads) {
        int64_t b = u / m->g, g = u % m->g;
        const T *gy = job->x + (b * m->g + g) * planes * m->out[2];
        for (int64_t row = 0; row < planes; row++) {
            T *dst = buf + row * wbuf;
            for (int64_t v = 0; v < lpad; v++) dst[v] = 0;
            for (int64_t v = 0; v < m->out[2]; v++) dst[lpad + v] = gy[row * m->out[2] + v];
            for (int64_t v = lpad + m->out[2]; v < wbuf; v++) dst[v] = 0;
        }
        for (int64_t c = 0; c < m->cg; c++)
            for (int64_t z = 0; z < m->in[0]; z++)
                for (int64_t y = 0; y < m->in[1]; y++) {
                    T *dxrow = job->y + (((b * m->g + g) * m->cg + c) * m->in[0] + z) * m->in[1] * m->in[2]
                               + y * m->in[2];
                    const int64_t *zl = zlist + z * 2 * m->k[0], *yl = ylist + y * 2 * m->k[1];
                    const int64_t zn = zcount[z], yn = ycount[y];
                    if (sw == 2) { /* both phases of a block of t at once, interleaved: contiguous stores */
                        int64_t ts0 = ceil_div(pw, 2), ts1 = ceil_div(pw - 1, 2);
                        int64_t te0 = ceil_div(m->in[2] + pw, 2), te1 = ceil_div(m->in[2] + pw - 1, 2);
                        int64_t tlo = ts1 < ts0 ? ts1 : ts0, thi = te0 > te1 ? te0 : te1;
                        if (tlo < 0) tlo = 0;
                        for (int64_t t0 = tlo; t0 < thi; t0 += VL) {
                            vec a0[NV], a1[NV];
                            FN(phase_block)(m, buf, wbuf, lpad, taps, ntap, kw_n, ksize, job->w, g, c, zl, zn, yl, yn, 0, t0, a0);
                            FN(phase_block)(m, buf, wbuf, lpad, taps, ntap, kw_n, ksize, job->w, g, c, zl, zn, yl, yn, 1, t0, a1);
                            T part[2 * VL]; /* dx columns x0 .. x0 + 2 VL - 1 */
                            for (int n = 0; n < NV; n++) {
                                *(uvec *)(part + 2 * n * LANES) = ZIPLO(a0[n], a1[n]);
                                *(uvec *)(part + (2 * n + 1) * LANES) = ZIPHI(a0[n], a1[n]);
                            }
                            int64_t x0 = 2 * t0 - pw, i0 = x0 < 0 ? -x0 : 0;
                            int64_t i1 = m->in[2] - x0 < 2 * VL ? m->in[2] - x0 : 2 * VL;
                            for (int64_t i = i0; i < i1; i++) dxrow[x0 + i] = part[i];
                        }
                        continue;
                    }
                    for (int64_t r = 0; r < sw; r++) {
                        /* phase r's columns x = t s + r - pw inside dx: t in [ts, te) */
                        int64_t ts = ceil_div(pw - r, sw), te = ceil_div(m->in[2] + pw - r, sw);
                        if (ts < 0) ts = 0;
                        for (int64_t t0 = ts; t0 < te; t0 += VL) {
                            vec acc[NV];
                            FN(phase_block)(m, buf, wbuf, lpad, taps, ntap, kw_n, ksize, job->w, g, c, zl, zn, yl, yn, r, t0, acc);
                            T part[VL];
                            for (int n = 0; n < NV; n++) *(uvec *)(part + n * LANES) = acc[n];
                            int64_t nv = te - t0 < VL ? te - t0 : VL;
                            T *dx = dxrow + t0 * sw + r - pw;
                            for (int64_t v = 0; v < nv; v++) dx[v * sw] = part[v];
                        }
                    }
                }
    }
    free(buf);
    free(taps);
    return NULL;
}

/* elements of one thread's buffer for the transposed correlation */
int64_t FN(buffer_bytes_t)(const int64_t *geom) {
    const Geom *m = (const Geom *)geom;
    int64_t lpad = (m->k[2] - 1) * m->d[2] / m->s[2], tcount = (m->in[2] - 1 + m->p[2]) / m->s[2] + 1;
    int64_t wbuf = lpad + (tcount + VL - 1) / VL * VL + VL;
    return (m->og * m->out[0] * m->out[1] * wbuf) * (int64_t)sizeof(T);
}

static int FN(launch)(const int64_t *geom, const T *x, const T *w, T *y, void *(*worker)(void *)) {
    const Geom *m = (const Geom *)geom;
    int64_t n = m->threads < 1 ? 1 : m->threads;
    FN(Job) jobs[64];
    pthread_t ids[64];
    if (n > 64) n = 64;
    for (int64_t t = 0; t < n; t++) {
        jobs[t].m = m;
        jobs[t].x = x;
        jobs[t].w = w;
        jobs[t].y = y;
        jobs[t].tid = t;
        jobs[t].status = 0;
    }
    int64_t started = 1;
    for (; started < n; started++)
        if (pthread_create(&ids[started], NULL, worker, &jobs[started]) != 0) break;
    for (int64_t t = started; t < n; t++) worker(&jobs[t]); /* threads that did not start */
    worker(&jobs[0]);
    int status = jobs[0].status;
    for (int64_t t = 1; t < started; t++) {
        pthread_join(ids[t], NULL);
        status |= jobs[t].status;
    }
    for (int64_t t = started; t < n; t++) status |= jobs[t].status;
    return status;
}

int FN(corr)(const int64_t *geom, const T *x, const T *w, T *y) {
#if LANES_FORM
    if (((const Geom *)geom)->form == 2) return FN(launch)(geom, x, w, y, lanes_work);
#endif
    return FN(launch)(geom, x, w, y, FN(work));
}

/* whether this build has form 2 (float32 with AVX-512) */
int FN(lanes_form)(void) { return LANES_FORM; }

/* gy, w -> dx (see work_t): geom is the forward correlation's */
int FN(corr_t)(const int64_t *geom, const T *gy, const T *w, T *dx) {
    return FN(launch)(geom, gy, w, dx, FN(work_t));
}

/* whether the call reads x directly (no padded copy, see direct_s2) */
int FN(direct_columns)(const int64_t *geom) { return direct_s2((const Geom *)geom); }

int64_t FN(buffer_bytes)(const int64_t *geom) {
    const Geom *m = (const Geom *)geom;
#if LANES_FORM
    if (m->form == 2) return lanes_floats(m) * (int64_t)sizeof(float);
#endif
    int R = rows_per_block(m);
    Layout l = layout(m, R, cols_per_block(m));
    int64_t n = m->cg * m->in[0] * l.hp * l.q * l.wq + LANES + (l.q == 2 ? 4 * l.wq : 0)
                + (m->form == 1 ? FN(wpad_len)(m) : 0);
    return n * (int64_t)sizeof(T);
}

#ifndef ANYCONV_DOUBLE
/* Strided copy (compiled once, in the float object): dst[i] = src[j] over an index grid of nd
   dims, outermost first; the last dim is the inner loop. Strides are in elements of esize bytes
   (4 or 8: any dtype of that size is copied bitwise). native.py orders and merges the dims (the
   inner one with a unit stride on one side) and splits the outer rows over threads. Torch's own
   copy runs such permutations (im2col's columns, interleaved phases) 2-10x slower when the rows are
   short. */
#define COPY_MAX_DIMS 16
typedef struct {
    int64_t nd, esize, threads;
    int64_t shape[COPY_MAX_DIMS], ds[COPY_MAX_DIMS], ss[COPY_MAX_DIMS];
} CopyGeom;

typedef struct {
    const CopyGeom *g;
    char *dst;
    const char *src;
    int64_t r0, r1; /* outer rows [r0, r1) */
} CopyJob;

#define COPY_ROW(TYPE)                                                               \
    do {                                                                             \
        TYPE *d = (TYPE *)job->dst + doff;                                           \
        const TYPE *s = (const TYPE *)job->src + soff;                               \
        if (dst1 && src1) memcpy(d, s, (size_t)n * sizeof(TYPE));                    \
        else if (dst1) for (int64_t j = 0; j < n; j++) d[j] = s[j * sst];            \
        else if (src1) for (int64_t j = 0; j < n; j++) d[j * dst] = s[j];            \
        else for (int64_t j = 0; j < n; j++) d[j * dst] = s[j * sst];                \
    } while (0)

static void *copy_work(void *arg) {
    CopyJob *job = (CopyJob *)arg;
    const CopyGeom *g = job->g;
    int64_t nd = g->nd, n = g->shape[nd - 1], dst = g->ds[nd - 1], sst = g->ss[nd - 1];
    int dst1 = dst == 1, src1 = sst == 1;
    int64_t idx[COPY_MAX_DIMS], doff = 0, soff = 0, r = job->r0;
    for (int64_t k = nd - 2; k >= 0; k--) {
        idx[k] = r % g->shape[k];
        r /= g->shape[k];
        doff += idx[k] * g->ds[k];
        soff += idx[k] * g->ss[k];
    }
    for (int64_t row = job->r0; row < job->r1; row++) {
        if (g->esize == 4) COPY_ROW(uint32_t);
        else COPY_ROW(uint64_t);
        for (int64_t k = nd - 2; k >= 0; k--) { /* next row: odometer over the outer dims */
            idx[k]++;
            doff += g->ds[k];
            soff += g->ss[k];
            if (idx[k] < g->shape[k]) break;
            doff -= g->ds[k] * g->shape[k];
            soff -= g->ss[k] * g->shape[k];
            idx[k] = 0;
        }
    }
    return NULL;
}

int copy_strided(const int64_t *geom, void *dst, const void *src) {
    const CopyGeom *g = (const CopyGeom *)geom;
    if (g->nd < 1 || g->nd > COPY_MAX_DIMS || (g->esize != 4 && g->esize != 8)) return 1;
    int64_t rows = 1;
    for (int64_t k = 0; k < g->nd - 1; k++) rows *= g->shape[k];
    int64_t n = g->threads < 1 ? 1 : (g->threads > 64 ? 64 : g->threads);
    if (n > rows) n = rows;
    CopyJob jobs[64];
    pthread_t ids[64];
    for (int64_t t = 0; t < n; t++) {
        jobs[t].g = g;
        jobs[t].dst = (char *)dst;
        jobs[t].src = (const char *)src;
        jobs[t].r0 = rows * t / n;
        jobs[t].r1 = rows * (t + 1) / n;
    }
    int64_t started = 1;
    for (; started < n; started++)
        if (pthread_create(&ids[started], NULL, copy_work, &jobs[started]) != 0) break;
    for (int64_t t = started; t < n; t++) copy_work(&jobs[t]);
    copy_work(&jobs[0]);
    for (int64_t t = 1; t < started; t++) pthread_join(ids[t], NULL);
    return 0;
}
#endif
