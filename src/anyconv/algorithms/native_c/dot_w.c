/* The weight gradient of a one-group stride-1 correlation in 1-2 dims as dot products along output rows
   (dot_w_*), for few channels on large maps (U-Net's 16-64 channels at 64-128 pixels), where a matrix
   product's packing of the windows costs more than its multiply-adds:

       dw[o, c, kh, kw] = sum_b sum_oh sum_ow gy[b, o, oh, ow] * xp[b, c, oh + kh d0, ow + kw d1]

   xp is x padded by the caller, its rows long enough that every vector read of them lies inside
   (dot_w.py: at least ceil(OW / GL) GL + (KW - 1) d1, zeros past the padding); gy is contiguous. A register
   block holds OBN output channels x KW taps of one kernel row of one input channel, as vectors of
   partial sums along the row (OBN = DOT_ACC / KW: the build's registers, with KW x-vectors and one
   gy vector beside them). The output rows are taken in bands whose gy and x fit a core's cache; the
   blocks' vectors are kept between bands in a buffer (the caller's), and summed across their lanes
   at the end. Threads own whole blocks: the sums run in one order at every thread count. */
#include "gemm.h"

#if GBYTES == 64
#define DOT_ACC 24
#elif GBYTES == 32
#define DOT_ACC 12
#else
#define DOT_ACC 6
#endif
#define DOT_OBN(kw) (DOT_ACC / (kw) > 0 ? DOT_ACC / (kw) : 1) /* output channels per block */
#ifndef DOT_BAND_BYTES
#define DOT_BAND_BYTES (32 * 1024) /* a band's rows of one block's gy and one channel's x, at most (unless one row is more) */
#endif

/* the first n < GL elements at p, zeros after */
static inline gvec FN(load_part)(const T *p, int64_t n) {
#if GBYTES == 64
    return (gvec)MASKED_LOAD(p, (1u << n) - 1u);
#else
    T buf[GL] __attribute__((aligned(GBYTES))) = {0};
    for (int64_t i = 0; i < n; i++) buf[i] = p[i];
    return *(gvec *)buf;
#endif
}

/* one block (input channel c, output channels o0 .. o0 + nob - 1 (nob <= OBN), kernel row kh) over the
   output rows [r0, r1) of sample b: part (OBN x KWN vectors) += the rows' products; a block's rows past
   nob read output channel o0 again (no branch in the loop; their sums are never stored). One function per
   kernel row length (OBN, KWN constants: the accumulators stay in registers) */
#define DOT_BLOCK(KWN)                                                                                          \
    static void FN(dot_block_##KWN)(const Geom *g, const T *xp, const T *gy, T *part, int64_t b, int64_t c,   \
                                    int64_t o0, int64_t nob, int64_t kh, int64_t r0, int64_t r1, int first) {  \
        enum { OBN = DOT_OBN(KWN) };                                                                           \
        gvec acc[OBN][KWN];                                                                                     \
        _Pragma("GCC unroll 24") for (int i = 0; i < OBN; i++)                                                  \
            _Pragma("GCC unroll 8") for (int k = 0; k < KWN; k++)                                               \
                acc[i][k] = first ? (gvec){0} : *(const gvec *)(part + (i * KWN + k) * GL);                     \
        const int64_t ow = g->out[2], plane = g->out[1] * ow, d = g->d[2], full = ow / GL, tail = ow % GL;      \
        int64_t rows[OBN];                                                                                      \
        for (int i = 0; i < OBN; i++) rows[i] = (i < nob ? i : 0) * plane;                                      \
        for (int64_t oh = r0; oh < r1; oh++) {                                                                  \
            const T *xr = xp + b * g->xs[0] + c * g->xs[1] + (oh + kh * g->d[1]) * g->xs[3];                    \
            const T *gr = gy + (b * g->og + o0) * plane + oh * ow;                                              \
            for (int64_t v = 0; v < full; v++) {                                                                \
                gvec xv[KWN];                                                                                   \
                _Pragma("GCC unroll 8") for (int k = 0; k < KWN; k++) xv[k] = *(const ugvec *)(xr + v * GL + k * d); \
                _Pragma("GCC unroll 24") for (int i = 0; i < OBN; i++) {                                        \
                    gvec gv = *(const ugvec *)(gr + rows[i] + v * GL);                                          \
                    KEEP_IN_REGISTER(gv); /* one load for its KWN multiply-adds, not one each */                \
                    _Pragma("GCC unroll 8") for (int k = 0; k < KWN; k++) acc[i][k] += gv * xv[k];              \
                }                                                                                               \
            }                                                                                                   \
            if (tail) { /* the row's last, partial vector: gy's lanes past the row read as zeros */             \
                gvec xv[KWN];                                                                                   \
                _Pragma("GCC unroll 8") for (int k = 0; k < KWN; k++) xv[k] = *(const ugvec *)(xr + full * GL + k * d); \
                _Pragma("GCC unroll 24") for (int i = 0; i < OBN; i++) {                                        \
                    gvec gv = FN(load_part)(gr + rows[i] + full * GL, tail);                                    \
                    _Pragma("GCC unroll 8") for (int k = 0; k < KWN; k++) acc[i][k] += gv * xv[k];              \
                }                                                                                               \
            }                                                                                                   \
        }                                                                                                       \
        _Pragma("GCC unroll 24") for (int i = 0; i < OBN; i++)                                                  \
            _Pragma("GCC unroll 8") for (int k = 0; k < KWN; k++) *(gvec *)(part + (i * KWN + k) * GL) = acc[i][k]; \
    }
DOT_BLOCK(1)
DOT_BLOCK(2)
DOT_BLOCK(3)
DOT_BLOCK(4)
DOT_BLOCK(5)
DOT_BLOCK(6)
DOT_BLOCK(7)

typedef struct {
    const Geom *g;
    const T *xp, *gy;
    T *dw, *part;
    int64_t tid, nt;
} FN(DotJob);

/* this thread's blocks (kh fastest, then input channels, then output-channel blocks: a band's gy rows of
   one block of output channels stay in the first-level cache across the blocks that read them) over every band */
#define DOT_CASE(KWN)                                                                                           \
    case KWN: {                                                                                                 \
        enum { OBN = DOT_OBN(KWN) };                                                                           \
        const int64_t obs = (g->og + OBN - 1) / OBN, blocks = g->cg * obs * kh_n;                               \
        const int64_t per = (blocks + job->nt - 1) / job->nt, q0 = job->tid * per;                              \
        const int64_t q1 = q0 + per < blocks ? q0 + per : blocks;                                               \
        for (int64_t b = 0; b < g->b; b++)                                                                      \
            for (int64_t r0 = 0; r0 < g->out[1]; r0 += band) {                                                  \
                int64_t r1 = r0 + band < g->out[1] ? r0 + band : g->out[1];                                     \
                for (int64_t q = q0; q < q1; q++) {                                                             \
                    int64_t kh = q % kh_n, c = (q / kh_n) % g->cg, ob = q / (kh_n * g->cg);                    \
                    int64_t nob = g->og - ob * OBN < OBN ? g->og - ob * OBN : OBN;                               \
                    FN(dot_block_##KWN)(g, job->xp, job->gy, job->part + q * OBN * KWN * GL, b, c, ob * OBN,   \
                                        nob, kh, r0, r1, b == 0 && r0 == 0);                                    \
                }                                                                                               \
            }                                                                                                   \
        for (int64_t q = q0; q < q1; q++) { /* the lanes summed, in order, into dw */                          \
            int64_t kh = q % kh_n, c = (q / kh_n) % g->cg, ob = q / (kh_n * g->cg);                             \
            for (int64_t i = 0; i < OBN && ob * OBN + i < g->og; i++)                                           \
                for (int64_t k = 0; k < KWN; k++) {                                                             \
                    const T *lanes = job->part + ((q * OBN + i) * KWN + k) * GL;                                \
                    T s = 0;                                                                                    \
                    for (int l = 0; l < GL; l++) s += lanes[l];                                                 \
                    job->dw[(((ob * OBN + i) * g->cg + c) * kh_n + kh) * KWN + k] = s;                          \
                }                                                                                               \
        }                                                                                                       \
        break;                                                                                                  \
    }

static void *FN(dot_w_work)(void *arg) {
    FN(DotJob) *job = (FN(DotJob) *)arg;
    const Geom *g = job->g;
    const int64_t kh_n = g->k[1];
    const int64_t obn = DOT_OBN(g->k[2] > 0 ? g->k[2] : 1);
    const int64_t row_bytes = (int64_t)sizeof(T) * (obn * g->out[2] + g->xs[3]);
    int64_t band = DOT_BAND_BYTES / (row_bytes > 0 ? row_bytes : 1);
    band = band < 1 ? 1 : band;
    switch (g->k[2]) {
        DOT_CASE(1)
        DOT_CASE(2)
        DOT_CASE(3)
        DOT_CASE(4)
        DOT_CASE(5)
        DOT_CASE(6)
        DOT_CASE(7)
        default:
            break;
    }
    return NULL;
}

/* the vectors of partial sums dot_w keeps for a call (the caller's buffer: (dot_w_floats) elements) */
EXPORT int64_t FN(dot_w_floats)(const Geom *g) {
    if (g->k[2] < 1 || g->k[2] > 7) return -1;
    const int64_t obn = DOT_OBN(g->k[2]);
    return g->cg * ((g->og + obn - 1) / obn) * g->k[1] * obn * g->k[2] * GL;
}

/* dw (O, Cg, KH, KW) of the stride-1 one-group correlation g of the padded xp (rows long enough: see
   above) with gy (B, O, OH, OW, contiguous); part: dot_w_floats(g) elements; 2 if the call is not one
   this serves (2-D at most, kernel rows of 1-7 taps, stride 1) */
EXPORT int FN(dot_w)(const Geom *g, const T *xp, const T *gy, T *dw, T *part) {
    if (g->g != 1 || g->k[0] != 1 || g->out[0] != 1 || g->k[2] < 1 || g->k[2] > 7 || g->s[1] != 1 || g->s[2] != 1)
        return 2;
    int64_t nt = g->threads < 1 ? 1 : g->threads > 64 ? 64 : g->threads;
    FN(DotJob) jobs[64];
    for (int64_t t = 0; t < nt; t++) jobs[t] = (FN(DotJob)){g, xp, gy, dw, part, t, nt};
    run_jobs(nt, FN(dot_w_work), jobs, sizeof(FN(DotJob)));
    return 0;
}
