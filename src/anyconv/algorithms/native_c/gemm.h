/* The packed matrix product's shared parts (gemm.c, gemm_x.c): the register tile in the build's vectors,
   the blocking, A's packing and the tile itself, and each thread's packing panels. */
#ifndef ANYCONV_GEMM_H
#define ANYCONV_GEMM_H

#include "native.h"

/* the tile in the build's own vectors (gvec: 64, 32 or 16 bytes; a wider generic vector would be split
   by the compiler and the tile spilled to memory) */
#if defined(__AVX512F__)
#define GMR 12
#define GNB 2
#define GBYTES 64
#elif defined(__AVX2__) || defined(__AVX__)
#define GMR 6
#define GNB 2
#define GBYTES 32
#else
#define GMR 4
#define GNB 3
#define GBYTES 16
#endif
typedef T gvec __attribute__((vector_size(GBYTES)));
typedef T ugvec __attribute__((vector_size(GBYTES), aligned(sizeof(T))));
#define GL ((int)(GBYTES / sizeof(T)))
#define GNR (GNB * GL)
#ifndef KC
#define KC 128
#endif
#ifndef MC
#define MC (GMR * 12)
#endif
#ifndef NC
#define NC (GNR * 64)
#endif

/* A's rows [i0, i0 + mc) x columns [p0, p0 + kc) into panels of GMR rows, k-major, zero rows past mc */
static inline void FN(pack_a)(const T *a, int64_t rs, int64_t cs, int64_t mc, int64_t kc, T *ap) {
    for (int64_t i0 = 0; i0 < mc; i0 += GMR) {
        int64_t mr = mc - i0 < GMR ? mc - i0 : GMR;
        if (cs == 1 && rs != 1) { /* rows contiguous: each row read as one run (rows read across, a power of
                                     two apart, would fall into one cache set) */
            for (int64_t i = 0; i < GMR; i++)
                for (int64_t p = 0; p < kc; p++) ap[p * GMR + i] = i < mr ? a[(i0 + i) * rs + p] : (T)0;
            ap += kc * GMR;
            continue;
        }
        for (int64_t p = 0; p < kc; p++) {
            const T *src = a + i0 * rs + p * cs;
            int64_t i = 0;
            for (; i < mr; i++) ap[i] = src[i * rs];
            for (; i < GMR; i++) ap[i] = 0;
            ap += GMR;
        }
    }
}

/* a tile's sums set to 0 */
static inline __attribute__((always_inline)) void FN(tile_zero)(gvec acc[GMR][GNB]) {
#pragma GCC unroll 16
    for (int i = 0; i < GMR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < GNB; v++) acc[i][v] = (gvec){0};
}

/* acc = ap^T bp over kc: one GMR x GNR tile's sums (inlined: acc stays in registers) */
static inline __attribute__((always_inline)) void FN(tile_sum)(int64_t kc, const T *restrict ap, const T *restrict bp,
                                                              gvec acc[GMR][GNB]) {
    FN(tile_zero)(acc);
    for (int64_t p = 0; p < kc; p++) {
        gvec bv[GNB];
#pragma GCC unroll 4
        for (int v = 0; v < GNB; v++) bv[v] = *(const gvec *)(bp + v * GL);
#pragma GCC unroll 16
        for (int i = 0; i < GMR; i++) {
            gvec av = -(gvec){0} + ap[i];
#pragma GCC unroll 4
            for (int v = 0; v < GNB; v++) acc[i][v] += av * bv[v];
        }
        ap += GMR;
        bp += GNR;
    }
}

/* the same sums with A read where it lies, not packed: A[i, p] = a[at[p] + i rs] for the tile's GMR rows
   (a product with few columns reads each element of A for one or two panels: packing it would cost a
   third of the product, as for ResNet's 512-channel layers at 4x4) */
static inline __attribute__((always_inline)) void FN(tile_sum_direct)(int64_t kc, const T *restrict a,
                                                                     const int64_t *at, int64_t rs,
                                                                     const T *restrict bp, gvec acc[GMR][GNB]) {
    FN(tile_zero)(acc);
    for (int64_t p = 0; p < kc; p++) {
        gvec bv[GNB];
        const T *ar = a + at[p];
#pragma GCC unroll 4
        for (int v = 0; v < GNB; v++) bv[v] = *(const gvec *)(bp + v * GL);
#pragma GCC unroll 16
        for (int i = 0; i < GMR; i++) {
            gvec av = -(gvec){0} + ar[i * rs];
#pragma GCC unroll 4
            for (int v = 0; v < GNB; v++) acc[i][v] += av * bv[v];
        }
        bp += GNR;
    }
}

/* one GMR x GNR tile: acc = ap^T bp over kc; then C = acc (set), or C += acc; mr x nr of it is C's */
static inline __attribute__((always_inline)) void FN(tile)(int64_t kc, const T *restrict ap, const T *restrict bp,
                                                          T *c, int64_t ldc, int set, int64_t mr, int64_t nr) {
    gvec acc[GMR][GNB];
    FN(tile_sum)(kc, ap, bp, acc);
    if (mr == GMR && nr == GNR) {
#pragma GCC unroll 16
        for (int i = 0; i < GMR; i++)
#pragma GCC unroll 4
            for (int v = 0; v < GNB; v++) {
                ugvec *dst = (ugvec *)(c + i * ldc + v * GL);
                *dst = set ? acc[i][v] : *dst + acc[i][v];
            }
        return;
    }
    T part[GMR * GNR] __attribute__((aligned(64)));
#pragma GCC unroll 16
    for (int i = 0; i < GMR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < GNB; v++) *(gvec *)(part + i * GNR + v * GL) = acc[i][v];
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++) c[i * ldc + j] = set ? part[i * GNR + j] : c[i * ldc + j] + part[i * GNR + j];
}

/* where a tile's columns go (tile_mapped): column j of a vector v of GL at at[j] (< 0: dropped); lanes[v]
   its kept columns, run[v] whether their places are consecutive, from at[first kept] (base[v]) */
typedef struct {
    const int64_t *at, *base;
    const uint16_t *lanes;
    const unsigned char *run;
} FN(Places);

/* the same tile stored at mapped columns (pl, from the tile's first column), its rows ldc apart: a vector
   of kept columns in consecutive places by one (masked, AVX-512: compressed) vector store; with `a`, the
   tile's A read where it lies (tile_sum_direct), ap unused */
static inline __attribute__((always_inline)) void FN(tile_mapped)(int64_t kc, const T *restrict ap, const T *restrict bp,
                                                                 T *c, int64_t ldc, int set, int64_t mr,
                                                                 FN(Places) pl, const T *a, const int64_t *at,
                                                                 int64_t rs) {
    gvec acc[GMR][GNB];
    if (a) /* A unpacked (tile_sum_direct) */
        FN(tile_sum_direct)(kc, a, at, rs, bp, acc);
    else
        FN(tile_sum)(kc, ap, bp, acc);
    const unsigned full = GL == 16 ? 0xffffu : (1u << GL) - 1;
#pragma GCC unroll 4
    for (int v = 0; v < GNB; v++) {
        const unsigned lanes = pl.lanes[v];
        if (pl.run[v] && lanes == full) {
#pragma GCC unroll 16
            for (int i = 0; i < GMR; i++)
                if (i < mr) {
                    ugvec *dst = (ugvec *)(c + i * ldc + pl.base[v]);
                    *dst = set ? acc[i][v] : *dst + acc[i][v];
                }
            continue;
        }
        if (!lanes) continue;
#if defined(__AVX512F__)
        if (pl.run[v]) { /* the kept lanes compressed to the front, stored under the mask of their count */
            const int kept = __builtin_popcount(lanes);
#pragma GCC unroll 16
            for (int i = 0; i < GMR; i++)
                if (i < mr) {
                    T *dst = c + i * ldc + pl.base[v];
#ifdef ANYCONV_DOUBLE
                    __mmask8 m = (__mmask8)lanes, cm = (__mmask8)((1u << kept) - 1);
                    __m512d r = _mm512_maskz_compress_pd(m, (__m512d)acc[i][v]);
                    if (!set) r = _mm512_add_pd(r, _mm512_maskz_loadu_pd(cm, dst));
                    _mm512_mask_storeu_pd(dst, cm, r);
#else
                    __mmask16 m = (__mmask16)lanes, cm = (__mmask16)((1u << kept) - 1);
                    __m512 r = _mm512_maskz_compress_ps(m, (__m512)acc[i][v]);
                    if (!set) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(cm, dst));
                    _mm512_mask_storeu_ps(dst, cm, r);
#endif
                }
            continue;
        }
#endif
        const int64_t *av = pl.at + v * GL;
        T part[GMR * GL] __attribute__((aligned(64)));
#pragma GCC unroll 16
        for (int i = 0; i < GMR; i++) *(gvec *)(part + i * GL) = acc[i][v];
        for (int64_t i = 0; i < mr; i++)
            for (int j = 0; j < GL; j++)
                if (av[j] >= 0) c[i * ldc + av[j]] = set ? part[i * GL + j] : c[i * ldc + av[j]] + part[i * GL + j];
    }
}

/* this thread's packing panels (MC x KC of A, then KC x NC of B; gemm.c), NULL if they cannot be allocated */
INTERNAL T *FN(panels)(void);

#endif
