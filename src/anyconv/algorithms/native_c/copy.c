/* A strided copy (copy_strided), compiled in the float object only, and the ABI's struct sizes. */
#include "native.h"

#ifndef ANYCONV_DOUBLE
/* Strided copy (compiled once, in the float object): dst[i] = src[j] over an index grid of nd
   dims, outermost first; the last dim is the inner loop. Strides are in elements of esize bytes
   (4 or 8: any dtype of that size is copied bitwise). native's copy helper (_native_copy.py) orders and merges the dims (the
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

EXPORT int copy_strided(const CopyGeom *g, void *dst, const void *src) {
    if (g->nd < 1 || g->nd > COPY_MAX_DIMS || (g->esize != 4 && g->esize != 8)) return 1;
    int64_t rows = 1;
    for (int64_t k = 0; k < g->nd - 1; k++) rows *= g->shape[k];
    int64_t n = g->threads < 1 ? 1 : (g->threads > 64 ? 64 : g->threads);
    if (n > rows) n = rows;
    CopyJob jobs[64];
    for (int64_t t = 0; t < n; t++) {
        jobs[t].g = g;
        jobs[t].dst = (char *)dst;
        jobs[t].src = (const char *)src;
        jobs[t].r0 = rows * t / n;
        jobs[t].r1 = rows * (t + 1) / n;
    }
    run_jobs(n, copy_work, jobs, sizeof(CopyJob));
    return 0;
}

#ifdef _OPENMP
#include <omp.h>
#endif

void run_jobs(int64_t n, void *(*worker)(void *), void *jobs, size_t size) {
    char *base = (char *)jobs;
    if (n <= 1) {
        worker(base);
        return;
    }
#ifdef _OPENMP
    /* one job per thread of a team of n (fewer if the runtime gives fewer: the loop covers every job) */
#pragma omp parallel for num_threads((int)n) schedule(static, 1)
    for (int64_t t = 0; t < n; t++) worker(base + t * size);
#else
    pthread_t ids[64];
    int64_t started = 1;
    if (n > 64) n = 64;
    for (; started < n; started++)
        if (pthread_create(&ids[started], NULL, worker, base + started * size) != 0) break;
    for (int64_t t = started; t < n; t++) worker(base + t * size); /* threads that did not start */
    worker(base);
    for (int64_t t = 1; t < started; t++) pthread_join(ids[t], NULL);
#endif
}

/* the ABI's struct sizes (0: Geom, 1: Plan, 2: CopyGeom, 3: GemmArgs, 4: WinoArgs), which native's Python side checks against its
   ctypes structures when it loads the library */
EXPORT int64_t abi_bytes(int64_t which) {
    return which == 0 ? (int64_t)sizeof(Geom) : which == 1 ? (int64_t)sizeof(Plan)
           : which == 2 ? (int64_t)sizeof(CopyGeom) : which == 3 ? (int64_t)sizeof(GemmArgs)
           : which == 4 ? (int64_t)sizeof(WinoArgs) : -1;
}
#endif
