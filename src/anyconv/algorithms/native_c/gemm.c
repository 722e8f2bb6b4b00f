/* A packed, register-blocked matrix product (gemm_f32 / gemm_f64), batched, any strides:

   C[i, j] (+)= sum_k A[i, k] B[k, j]     for each of `batch` (A, B, C) triples

   The loops of Goto and van de Geijn (BLIS's five loops): B's block of KC rows x NC columns is copied
   into panels of GNR columns (k-major), A's block of MC rows x KC into panels of GMR rows, and a
   GMR x GNR register tile of C accumulates over the KC products of one panel pair. Packing reads A and B
   through both their strides, so a transposed operand (a weight gradient's columns) costs no copy in
   Python; the zero-padded panel edges let the tile loop run without bounds. The register tile is what
   the build's vectors allow: 12 x 32 (float32) with AVX-512's 32 registers, 6 x 16 with AVX2's 16,
   3 x 16 otherwise. Sums run in k order within a KC block, blocks in order: the result depends only on
   the shapes and the build, never on the thread count (threads split batch items, C's columns or C's
   rows). gemm_x.c reads B straight from a convolution's input (the implicit products); gemm.h has the
   parts they share. */
#include "gemm.h"

/* B's rows [p0, p0 + kc) x columns [j0, j0 + nc) into panels of GNR columns, k-major, zero past nc */
static void FN(pack_b)(const T *b, int64_t rs, int64_t cs, int64_t kc, int64_t nc, T *bp) {
    for (int64_t j0 = 0; j0 < nc; j0 += GNR) {
        int64_t nr = nc - j0 < GNR ? nc - j0 : GNR;
        if (rs == 1 && cs != 1) { /* columns contiguous (a transposed operand): each column read as one run */
            for (int64_t j = 0; j < GNR; j++)
                for (int64_t p = 0; p < kc; p++) bp[p * GNR + j] = j < nr ? b[(j0 + j) * cs + p] : (T)0;
            bp += kc * GNR;
            continue;
        }
        for (int64_t p = 0; p < kc; p++) {
            const T *src = b + p * rs + j0 * cs;
            if (cs == 1 && nr == GNR) {
                for (int v = 0; v < GNB; v++) *(gvec *)(bp + v * GL) = *(const ugvec *)(src + v * GL);
            } else {
                int64_t j = 0;
                for (; j < nr; j++) bp[j] = src[j * cs];
                for (; j < GNR; j++) bp[j] = 0;
            }
            bp += GNR;
        }
    }
}

/* C[i0:i1, j0:j1] of one batch item, with this thread's panels */
static void FN(gemm_one)(const GemmArgs *g, const T *a, const T *b, T *c, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                         T *ap, T *bp) {
    for (int64_t jc = j0; jc < j1; jc += NC) {
        int64_t nc = j1 - jc < NC ? j1 - jc : NC;
        for (int64_t pc = 0; pc < g->k || pc == 0; pc += KC) {
            int64_t kc = g->k - pc < KC ? g->k - pc : KC;
            int set = pc == 0 && !g->accumulate;
            if (kc > 0) FN(pack_b)(b + pc * g->b_rs + jc * g->b_cs, g->b_rs, g->b_cs, kc, nc, bp);
            for (int64_t ic = i0; ic < i1; ic += MC) {
                int64_t mc = i1 - ic < MC ? i1 - ic : MC;
                if (kc > 0) FN(pack_a)(a + ic * g->a_rs + pc * g->a_cs, g->a_rs, g->a_cs, mc, kc, ap);
                for (int64_t jr = 0; jr < nc; jr += GNR) {
                    int64_t nr = nc - jr < GNR ? nc - jr : GNR;
                    for (int64_t ir = 0; ir < mc; ir += GMR) {
                        int64_t mr = mc - ir < GMR ? mc - ir : GMR;
                        FN(tile)(kc, ap + ir * kc, bp + jr * kc, c + (ic + ir) * g->c_rs + jc + jr, g->c_rs, set, mr, nr);
                    }
                }
            }
            if (kc <= 0) break; /* k = 0: C = 0 (set) or unchanged */
        }
    }
}

typedef struct {
    const GemmArgs *g;
    const T *a, *b;
    T *c;
    int64_t tid;
    int status;
} FN(GemmJob);

/* this thread's packing panels (MC x KC of A, then KC x NC of B), kept for the thread's life and freed
   when it ends (a pthread key's destructor): the pool's threads do not map and fault in fresh pages per
   call, and a thread that ends leaves nothing behind; NULL if they cannot be allocated */
static pthread_key_t FN(panel_key);
static pthread_once_t FN(panel_once) = PTHREAD_ONCE_INIT;
static void FN(make_key)(void) { pthread_key_create(&FN(panel_key), free); }

INTERNAL T *FN(panels)(void) {
    pthread_once(&FN(panel_once), FN(make_key));
    T *p = (T *)pthread_getspecific(FN(panel_key));
    if (!p) {
        p = (T *)aligned_alloc(64, sizeof(T) * (MC * KC + KC * NC));
        if (p && pthread_setspecific(FN(panel_key), p) != 0) {
            free(p);
            return NULL;
        }
    }
    return p;
}

static void *FN(gemm_work)(void *arg) {
    FN(GemmJob) *job = (FN(GemmJob) *)arg;
    const GemmArgs *g = job->g;
    T *ap = FN(panels)();
    if (!ap) {
        job->status = 1;
        return NULL;
    }
    T *bp = ap + MC * KC;
    const int64_t nt = g->threads, t = job->tid;
    const int64_t panels = (g->n + GNR - 1) / GNR, tiles = (g->m + GMR - 1) / GMR;
    if (g->batch >= nt) { /* whole batch items per thread */
        for (int64_t e = t; e < g->batch; e += nt)
            FN(gemm_one)(g, job->a + e * g->a_bs, job->b + e * g->b_bs, job->c + e * g->c_bs, 0, g->m, 0, g->n, ap, bp);
    } else if (tiles < nt || (g->n >= g->m && panels >= nt)) { /* C's columns split in runs of whole panels (each
                                                                    thread packs all of A: when B is the larger) */
        int64_t per = (panels + nt - 1) / nt;
        int64_t j0 = t * per * GNR, j1 = (t + 1) * per * GNR;
        if (j1 > g->n) j1 = g->n;
        for (int64_t e = 0; e < g->batch && j0 < j1; e++)
            FN(gemm_one)(g, job->a + e * g->a_bs, job->b + e * g->b_bs, job->c + e * g->c_bs, 0, g->m, j0, j1, ap, bp);
    } else { /* few columns, many rows (a 1x1 layer on a small map): C's rows split in runs of whole tiles */
        int64_t per = (tiles + nt - 1) / nt;
        int64_t i0 = t * per * GMR, i1 = (t + 1) * per * GMR;
        if (i1 > g->m) i1 = g->m;
        for (int64_t e = 0; e < g->batch && i0 < i1; e++)
            FN(gemm_one)(g, job->a + e * g->a_bs, job->b + e * g->b_bs, job->c + e * g->c_bs, i0, i1, 0, g->n, ap, bp);
    }
    job->status = 0;
    return NULL;
}

EXPORT int FN(gemm)(const GemmArgs *g, const T *a, const T *b, T *c) {
    if (g->m <= 0 || g->n <= 0 || g->batch <= 0) return 0;
    int64_t nt = g->threads < 1 ? 1 : g->threads;
    FN(GemmJob) jobs[64];
    if (nt > 64) nt = 64;
    GemmArgs call = *g;
    call.threads = nt;
    for (int64_t t = 0; t < nt; t++) jobs[t] = (FN(GemmJob)){&call, a, b, c, t, 1};
    run_jobs(nt, FN(gemm_work), jobs, sizeof(FN(GemmJob)));
    int status = 0;
    for (int64_t t = 0; t < nt; t++) status |= jobs[t].status;
    return status;
}

/* the FMA units' peak (anyconv bench): n rounds of 24 independent multiply-adds on the build's vectors
   per thread, on `threads` threads, no memory traffic; the floating-point operations done (the caller
   times the call) */
typedef struct {
    int64_t n;
    T sink;
} FN(PeakJob);

static void *FN(peak_work)(void *arg) {
    FN(PeakJob) *job = (FN(PeakJob) *)arg;
    gvec acc[24], a = -(gvec){0} + (T)0.999, b = -(gvec){0} + (T)1e-7;
    for (int i = 0; i < 24; i++) acc[i] = -(gvec){0} + (T)(i * 1e-3);
    for (int64_t r = 0; r < job->n; r++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++) acc[i] = acc[i] * a + b;
        __asm__("" : "+x"(a)); /* a is not known to be constant: the loop is not folded */
    }
    T s = 0;
    for (int i = 0; i < 24; i++) s += acc[i][0];
    job->sink = s;
    return NULL;
}

EXPORT int64_t FN(fma_flops)(int64_t n, int64_t threads) {
    FN(PeakJob) jobs[64];
    int64_t nt = threads < 1 ? 1 : threads > 64 ? 64 : threads;
    for (int64_t t = 0; t < nt; t++) jobs[t] = (FN(PeakJob)){n, 0};
    run_jobs(nt, FN(peak_work), jobs, sizeof(FN(PeakJob)));
    return n * 24 * GL * 2 * nt + (jobs[0].sink == (T)-1); /* (the sums read: the work is kept) */
}
