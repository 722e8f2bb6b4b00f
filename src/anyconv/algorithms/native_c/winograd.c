/* Winograd F(m x m, 3 x 3)'s input and output transforms in 2-D (wino_in_* / wino_out_*), for
   `winograd`'s chunks of tiles; the products between them are one batched matrix product (gemm.c).

   Input: tile (b, ty, tx) of channel c reads the a x a patch d of the padded input at rows ty m + i,
   columns tx m + j (a = m + 2), and
       V[i' a + j', c, t] = sum_{i, j} bt[i', i] d[i, j] bt[j', j]            (V = B^T d B)
   Separably, per (c, b, ty): the a padded input rows are combined into U = B^T rows (vectorised along
   the row), each U row is split into its m phases (U[t m + r] -> P_r[t]), and then for every tile at once
   V[i', j'][tx] = sum_j bt[j', j] P_{j mod m}[tx + j div m] (contiguous loads: vectorised over tiles).
   Output: Y = A^T M A per tile, the same two steps in reverse, written into y where it lies inside
   (the output's last tiles are cropped). Threads split channels (input) and output channels (output);
   each result is computed by one thread in a fixed order (bit-identical at every thread count). */
#include "native.h"


/* whole vectors covering n elements */
static inline int64_t FN(vecs)(int64_t n) { return (n + LANES - 1) / LANES; }

/* phases and output columns by lane shuffles on AVX-512 builds (one instruction each there; on narrower
   builds the 64-byte vectors' shuffles are emulated: U-Net's 128-pixel rows ran 9x slower than by the
   scalar loops) */
#ifdef __AVX512F__
#define SHUFFLES 1
#else
#define SHUFFLES 0
#endif

/* the vectors of one U row: the input row's rv, or for m = 2 and 4 (phases by shuffles) the (tv + 1) m
   vectors the phases' tv + 1 vectors are made from */
static inline int64_t FN(u_vecs)(int64_t m, int64_t tv, int64_t rv) {
    return SHUFFLES && (m == 2 || m == 4) && (tv + 1) * m > rv ? (tv + 1) * m : rv;
}

/* dst[0, n) = the first n lanes of the vectors acc (nv of them) */
static inline void FN(store_n)(T *restrict dst, const vec *acc, int64_t n) {
    int64_t v = 0;
    for (; (v + 1) * LANES <= n; v++) *(uvec *)(dst + v * LANES) = acc[v];
    if (v * LANES < n) {
#ifdef __AVX512F__
        MASKED_STORE(dst + v * LANES, (1u << (n - v * LANES)) - 1u, acc[v]);
#else
        T part[LANES] __attribute__((aligned(64)));
        *(vec *)part = acc[v];
        for (int64_t k = 0; v * LANES + k < n; k++) dst[v * LANES + k] = part[k];
#endif
    }
}

/* V[ip, jp][tiles] = sum_j bt[jp, j] P_{j mod m}[tile + j div m] for every (ip, jp): TV vectors of tiles
   (a constant after inlining; the phases have (TV + 1) LANES elements, zeros past the row) */
static inline __attribute__((always_inline)) void FN(in_cols)(const T *bt, const T *ph, T *out, int64_t m, int64_t a,
                                                              int64_t pl, int64_t plane, int64_t ntx, const int TV) {
    for (int64_t ip = 0; ip < a; ip++)
        for (int64_t jp = 0; jp < a; jp++) {
            vec acc[8];
            for (int q = 0; q < TV; q++) acc[q] = (vec){0};
            for (int64_t j = 0; j < a; j++) {
                const vec sv = SPLAT(bt[jp * a + j]);
                const T *pr = ph + (ip * m + j % m) * pl + j / m;
                for (int q = 0; q < TV; q++) acc[q] += sv * *(const uvec *)(pr + q * LANES);
            }
            FN(store_n)(out + (ip * a + jp) * plane, acc, ntx);
        }
}

/* one (c, b, ty) unit: the chunk's tiles [tx0, tx1) of tile row ty of sample b, channel c. Buffers
   (64-byte aligned, in vectors): rows and U, a x rv vectors each; phases, a m x pv vectors */
static inline __attribute__((always_inline)) void FN(in_unit)(const WinoArgs *g, const T *x, const T *bt, T *v,
                                                              int64_t c, int64_t b, int64_t ty, vec *rows, vec *u,
                                                              T *ph, const int64_t M) {
    const int64_t m = M, a = M + 2, ntx = g->tx1 - g->tx0, wp = ntx * m + 2;
    int64_t tv = FN(vecs)(ntx);
    if (tv > 4) tv = 8; /* in_cols' vector counts: 1-4, else 8 */
    const int64_t rv = FN(vecs)(wp), pl = (tv + 1) * LANES;
    const int64_t nty = g->ty1 - g->ty0, p = (g->b1 - g->b0) * nty * ntx, plane = g->plane;
    const int64_t col0 = g->tx0 * m - g->pw; /* x's column of the chunk's first padded column */
    for (int64_t i = 0; i < a; i++) {
        T *row = (T *)(rows + i * rv);
        int64_t iy = ty * m + i - g->ph;
        memset(row, 0, sizeof(vec) * rv);
        if (iy < 0 || iy >= g->h) continue;
        const T *src = x + b * g->xs[0] + c * g->xs[1] + iy * g->xs[2];
        int64_t k0 = col0 < 0 ? -col0 : 0, k1 = g->w - col0 < wp ? g->w - col0 : wp;
        if (g->xs[3] == 1 && k1 > k0)
            memcpy(row + k0, src + col0 + k0, sizeof(T) * (size_t)(k1 - k0));
        else
            for (int64_t k = k0; k < k1; k++) row[k] = src[(col0 + k) * g->xs[3]];
    }
    const int64_t uv = FN(u_vecs)(m, tv, rv);
    for (int64_t ip = 0; ip < a; ip++) { /* U[ip] = sum_i bt[ip, i] rows[i], then its m phases */
        vec *ur = u + ip * uv;
        for (int64_t k = 0; k < rv; k++) { /* one vector of the row at a time: its sum stays in a register */
            vec acc = (vec){0};
            for (int64_t i = 0; i < a; i++) acc += SPLAT(bt[ip * a + i]) * rows[i * rv + k];
            ur[k] = acc;
        }
        if (SHUFFLES && (M == 4 || M == 2)) { /* the phases by lane shuffles: U's vectors past the row are zeros */
            for (int64_t k = rv; k < uv; k++) ur[k] = (vec){0};
            for (int64_t q = 0; q <= tv; q++) {
                vec *pq = (vec *)(ph + ip * m * pl + q * LANES);
                if (M == 2) {
                    pq[0] = EVENS(ur[2 * q], ur[2 * q + 1]);
                    pq[pl / LANES] = ODDS(ur[2 * q], ur[2 * q + 1]);
                } else {
                    const vec e01 = EVENS(ur[4 * q], ur[4 * q + 1]), e23 = EVENS(ur[4 * q + 2], ur[4 * q + 3]);
                    const vec o01 = ODDS(ur[4 * q], ur[4 * q + 1]), o23 = ODDS(ur[4 * q + 2], ur[4 * q + 3]);
                    pq[0] = EVENS(e01, e23);
                    pq[pl / LANES] = EVENS(o01, o23);
                    pq[2 * pl / LANES] = ODDS(e01, e23);
                    pq[3 * pl / LANES] = ODDS(o01, o23);
                }
            }
            continue;
        }
        const T *uf = (const T *)ur;
        for (int64_t r = 0; r < m; r++) {
            T *pr = ph + (ip * m + r) * pl;
            int64_t t = 0;
            for (; t * m + r < wp; t++) pr[t] = uf[t * m + r];
            for (; t < pl; t++) pr[t] = 0;
        }
    }
    const int64_t t0 = ((b - g->b0) * nty + (ty - g->ty0)) * ntx;
    T *out = v + c * g->rs + t0;
    /* whole vectors where they stay inside this channel's tiles: the lanes past this unit's tiles belong
       to the channel's later units, which this thread writes after it (masked stores are slow) */
    const int64_t nw = FN(vecs)(ntx) * LANES, ns = t0 + nw <= g->rs ? nw : ntx;
    switch (tv) { /* the tiles' vectors as a constant: the accumulators stay in registers */
    case 1: FN(in_cols)(bt, ph, out, m, a, pl, plane, ns, 1); break;
    case 2: FN(in_cols)(bt, ph, out, m, a, pl, plane, ns, 2); break;
    case 3: FN(in_cols)(bt, ph, out, m, a, pl, plane, ns, 3); break;
    case 4: FN(in_cols)(bt, ph, out, m, a, pl, plane, ns, 4); break;
    default: FN(in_cols)(bt, ph, out, m, a, pl, plane, ns, 8); break; /* (tv = 8) */
    }
}

/* Y = A^T M A for one tile row: r1[ip, j] = sum_jp at[j, jp] M[ip, jp], yt[i, j] = sum_ip at[i, ip] r1[ip, j]
   over TV vectors of tiles (M rows read as whole vectors: the caller leaves LANES elements of slack
   after the products) */
static inline __attribute__((always_inline)) void FN(out_tiles)(const T *at, const T *src, int64_t plane, int64_t m,
                                                               int64_t a, vec *r1, vec *yt, const int TV) {
    for (int64_t ip = 0; ip < a; ip++)
        for (int64_t j = 0; j < m; j++) {
            vec acc[8];
            for (int q = 0; q < TV; q++) acc[q] = (vec){0};
            for (int64_t jp = 0; jp < a; jp++) {
                const vec sv = SPLAT(at[j * a + jp]);
                const T *row = src + (ip * a + jp) * plane;
                for (int q = 0; q < TV; q++) acc[q] += sv * *(const uvec *)(row + q * LANES);
            }
            for (int q = 0; q < TV; q++) r1[(ip * m + j) * TV + q] = acc[q];
        }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++) {
            vec acc[8];
            for (int q = 0; q < TV; q++) acc[q] = (vec){0};
            for (int64_t ip = 0; ip < a; ip++) {
                const vec sv = SPLAT(at[i * a + ip]);
                for (int q = 0; q < TV; q++) acc[q] += sv * r1[(ip * m + j) * TV + q];
            }
            for (int q = 0; q < TV; q++) yt[(i * m + j) * TV + q] = acc[q];
        }
}

/* one (r, b, ty) unit of the output: M's row r (output channel och) for tile row ty of sample b;
   r1: a m x tv vectors, yt: m m x tv vectors */
static inline __attribute__((always_inline)) void FN(out_unit)(const WinoArgs *g, const T *mm, const T *at, T *y,
                                                               int64_t r, int64_t b, int64_t ty, vec *r1, vec *yt,
                                                               const int64_t M) {
    const int64_t m = M, a = M + 2, ntx = g->tx1 - g->tx0, nty = g->ty1 - g->ty0;
    const int64_t p = (g->b1 - g->b0) * nty * ntx, plane = g->plane;
    const T *src = mm + r * p + ((b - g->b0) * nty + (ty - g->ty0)) * ntx;
    int64_t tv = FN(vecs)(ntx);
    switch (tv) {
    case 1: FN(out_tiles)(at, src, plane, m, a, r1, yt, 1); break;
    case 2: FN(out_tiles)(at, src, plane, m, a, r1, yt, 2); break;
    case 3: FN(out_tiles)(at, src, plane, m, a, r1, yt, 3); break;
    case 4: FN(out_tiles)(at, src, plane, m, a, r1, yt, 4); break;
    default: FN(out_tiles)(at, src, plane, m, a, r1, yt, 8); tv = 8; break;
    }
    const int64_t och = (r / g->oc) * g->og + g->o0 + r % g->oc;
    const T *ytf = (const T *)yt;
    if (SHUFFLES && (M == 4 || M == 2) && g->ys[3] == 1) { /* the tiles' columns interleaved by lane shuffles */
        const int64_t c0 = g->tx0 * m, nv = FN(vecs)(ntx);
        for (int64_t i = 0; i < m && ty * m + i < g->oh; i++) {
            T *dst = y + b * g->ys[0] + och * g->ys[1] + (ty * m + i) * g->ys[2];
            for (int64_t q = 0; q < nv; q++) {
                const int64_t col = c0 + q * LANES * m;
                int64_t n = g->ow - col, nt = (ntx - q * LANES) * m;
                if (n > nt) n = nt;
                if (n <= 0) break;
                const vec *yi = yt + i * m * tv + q;
                vec z[4];
                if (M == 2) {
                    z[0] = ILV_LO(yi[0], yi[tv]);
                    z[1] = ILV_HI(yi[0], yi[tv]);
                } else {
                    const vec a0 = ILV_LO(yi[0], yi[2 * tv]), a1 = ILV_HI(yi[0], yi[2 * tv]);
                    const vec b0 = ILV_LO(yi[tv], yi[3 * tv]), b1 = ILV_HI(yi[tv], yi[3 * tv]);
                    z[0] = ILV_LO(a0, b0);
                    z[1] = ILV_HI(a0, b0);
                    z[2] = ILV_LO(a1, b1);
                    z[3] = ILV_HI(a1, b1);
                }
                FN(store_n)(dst + col, z, n);
            }
        }
        return;
    }
    for (int64_t i = 0; i < m; i++) {
        int64_t oy = ty * m + i;
        if (oy >= g->oh) break;
        T *dst = y + b * g->ys[0] + och * g->ys[1] + oy * g->ys[2];
        for (int64_t j = 0; j < m; j++) {
            const T *yr = ytf + (i * m + j) * tv * LANES;
            int64_t tmax = ntx;
            while (tmax > 0 && (g->tx0 + tmax - 1) * m + j >= g->ow) tmax--;
            int64_t o = (g->tx0 * m + j) * g->ys[3], step = m * g->ys[3];
            for (int64_t t = 0; t < tmax; t++) dst[o + t * step] = yr[t];
        }
    }
}

/* the units with the tile size a constant (no division by a variable m in the inner loops; the loops
   over a and m unrolled): m = 2, 4 or 6 */
static void FN(in_any)(const WinoArgs *g, const T *x, const T *bt, T *v, int64_t c, int64_t b, int64_t ty,
                       vec *rows, vec *u, T *ph) {
    switch (g->m) {
    case 2: FN(in_unit)(g, x, bt, v, c, b, ty, rows, u, ph, 2); break;
    case 4: FN(in_unit)(g, x, bt, v, c, b, ty, rows, u, ph, 4); break;
    default: FN(in_unit)(g, x, bt, v, c, b, ty, rows, u, ph, 6); break;
    }
}

static void FN(out_any)(const WinoArgs *g, const T *mm, const T *at, T *y, int64_t r, int64_t b, int64_t ty,
                        vec *r1, vec *yt) {
    switch (g->m) {
    case 2: FN(out_unit)(g, mm, at, y, r, b, ty, r1, yt, 2); break;
    case 4: FN(out_unit)(g, mm, at, y, r, b, ty, r1, yt, 4); break;
    default: FN(out_unit)(g, mm, at, y, r, b, ty, r1, yt, 6); break;
    }
}

typedef struct {
    const WinoArgs *g;
    const T *src, *mat;
    T *dst;
    int64_t tid, nt;
    int out, status;
} FN(WinoJob);

static void *FN(wino_work)(void *arg) {
    FN(WinoJob) *job = (FN(WinoJob) *)arg;
    const WinoArgs *g = job->g;
    const int64_t m = g->m, a = g->a, ntx = g->tx1 - g->tx0;
    int64_t tv = FN(vecs)(ntx);
    if (tv > 4) tv = 8; /* the kernels' vector counts: 1-4, else 8 */
    const int64_t rv = FN(vecs)(ntx * m + 2), pv = tv + 1, uv = FN(u_vecs)(m, tv, rv);
    /* input: rows (a rv vectors), U (a uv) and phases (a m pv); output: r1 (a m tv) and yt (m m tv) */
    size_t n = job->out ? (size_t)((a * m + m * m) * tv) : (size_t)(a * rv + a * uv + a * m * pv);
    vec *buf = (vec *)aligned_alloc(64, sizeof(vec) * n);
    if (!buf) {
        job->status = 1;
        return NULL;
    }
    for (int64_t ch = job->tid; ch < g->c; ch += job->nt)
        for (int64_t b = g->b0; b < g->b1; b++)
            for (int64_t ty = g->ty0; ty < g->ty1; ty++) {
                if (job->out)
                    FN(out_any)(g, job->src, job->mat, job->dst, ch, b, ty, buf, buf + a * m * tv);
                else
                    FN(in_any)(g, job->src, job->mat, job->dst, ch, b, ty, buf, buf + a * rv, (T *)(buf + a * rv + a * uv));
            }
    free(buf);
    job->status = 0;
    return NULL;
}

static int FN(wino_run)(const WinoArgs *g, const T *src, const T *mat, T *dst, int out) {
    if ((g->m != 2 && g->m != 4 && g->m != 6) || g->a != g->m + 2 || g->c < 0) return 2;
    const int64_t tiles = (g->b1 - g->b0) * (g->ty1 - g->ty0) * (g->tx1 - g->tx0);
    if ((!out && g->rs < tiles) || g->plane < g->c * (out ? tiles : g->rs)) return 2;
    if ((g->tx1 - g->tx0 + LANES - 1) / LANES > 8) return 2; /* at most 8 vectors of tiles per row (acc) */
    if (g->c == 0 || g->b1 <= g->b0 || g->ty1 <= g->ty0 || g->tx1 <= g->tx0) return 0;
    int64_t nt = g->threads < 1 ? 1 : g->threads > 64 ? 64 : g->threads;
    if (nt > g->c) nt = g->c;
    FN(WinoJob) jobs[64];
    for (int64_t t = 0; t < nt; t++) jobs[t] = (FN(WinoJob)){g, src, mat, dst, t, nt, out, 1};
    run_jobs(nt, FN(wino_work), jobs, sizeof(FN(WinoJob)));
    int status = 0;
    for (int64_t t = 0; t < nt; t++) status |= jobs[t].status;
    return status;
}

/* x (strides xs) -> v (a^2, c, tiles of the chunk), bt: B^T (a x a, row-major) */
EXPORT int FN(wino_in)(const WinoArgs *g, const T *x, const T *bt, T *v) { return FN(wino_run)(g, x, bt, v, 0); }

/* mm (a^2, c = rows, tiles of the chunk) -> y (strides ys), at: A^T (m x a, row-major) */
EXPORT int FN(wino_out)(const WinoArgs *g, const T *mm, const T *at, T *y) { return FN(wino_run)(g, mm, at, y, 1); }
