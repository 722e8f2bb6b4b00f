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

/* one GMR x GNR tile: acc = ap^T bp over kc; then C = acc (set), or C += acc; mr x nr of it is C's */
static inline __attribute__((always_inline)) void FN(tile)(int64_t kc, const T *restrict ap, const T *restrict bp,
                                                          T *c, int64_t ldc, int set, int64_t mr, int64_t nr) {
    gvec acc[GMR][GNB];
#pragma GCC unroll 16
    for (int i = 0; i < GMR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < GNB; v++) acc[i][v] = (gvec){0};
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

/* this thread's packing panels (MC x KC of A, then KC x NC of B; gemm.c), NULL if they cannot be allocated */
INTERNAL T *FN(panels)(void);

#endif
