/* The implicit products: a correlation's weight gradient (gemm_w_*) and forward (gemm_x_*) as gemm.c's
   packed product with the panel of x's windows read straight from x in the packing, so that no column
   matrix is ever written (im2col's copy of every window costs 20-30% of its product on ResNet's 3x3
   layers, and does not scale with threads):

       forward:          y[o, (b, p)] = sum_n w[o, n] X[n, (b, p)]
       weight gradient:  dw[o, n]     = sum_b sum_p gy[b, o, p] X[n, (b, p)]
       X[n, (b, p)] = x[b, c, p s + k d]   (n = (c, k), p an output position)

   When no tap falls outside x (the Python side pads x first) each panel row is a gather at fixed
   offsets; the weight gradient also takes calls with padding, tested per read. */
#include "gemm.h"

/* whether every tap of every output position falls inside x (no padding before, none needed after: the
   caller pads x when the call pads), so that the packing reads x without bounds tests; and whether every
   offset into a sample (all samples: `samples`) fits 32 bits (the gather's indices). With g->wrap (2-3
   dims, stride 1 along rows, rows contiguous) out[2] is the row's length xs[3]: the positions of a row's
   every column, those past the call's own in[2] - (k[2] - 1) d[2] read on into the next row (their
   results are the caller's to drop) */
static int FN(inside_all)(const Geom *g, int samples) {
    int64_t last = samples ? (g->b - 1) * g->xs[0] : 0;
    for (int i = 0; i < 3; i++) {
        int64_t reach = (g->out[i] - 1) * g->s[i] + (g->k[i] - 1) * g->d[i];
        if (i == 2 && g->wrap)
            reach = g->s[2] == 1 && g->out[2] == g->xs[3] && g->in[2] <= g->xs[3] && g->n >= 2 ? (g->k[2] - 1) * g->d[2] : g->in[2];
        if (g->p[i] != 0 || reach >= g->in[i]) return 0;
        last += (g->in[i] - 1) * (i < 2 ? g->xs[2 + i] : 1);
    }
    return last + (g->cg - 1) * g->xs[1] < INT32_MAX;
}

/* which vectors of GL positions (pos[v GL + i], count of them, a multiple of GL) read elements 1 or 2 apart
   (fast[v] = 1, 2; 0: neither) for every tap (offsets up to `reach`) at or before x's last element `last`:
   those are read by loads in the packing; the other vectors' positions past a wrapped row's own columns
   (g->wrap: positions from p0, whose reads may fall past x's end) are set to read x's first element */
static void FN(runs)(const Geom *g, int64_t p0, int64_t count, int64_t reach, int64_t last, int32_t *pos,
                     unsigned char *fast) {
    const int64_t own = g->in[2] - (g->k[2] - 1) * g->d[2];
    for (int64_t v = 0; v < count / GL; v++) {
        int32_t *at = pos + v * GL;
        int64_t step = (int64_t)at[1] - at[0];
        int ok = (step == 1 || step == 2) && (int64_t)at[0] + step * GL - 1 + reach <= last;
        for (int i = 2; i < GL && ok; i++) ok = at[i] == at[0] + step * i;
        fast[v] = (unsigned char)(ok ? step : 0);
        if (!ok && g->wrap)
            for (int i = 0; i < GL; i++)
                if ((p0 + v * GL + i) % g->out[2] >= own) at[i] = 0;
    }
}

/* the packing's AVX-512 operations in the build's element type: GL 32-bit indices, gathers, loads, stores,
   and the even lanes of two vectors */
#if defined(__AVX512F__) && defined(ANYCONV_DOUBLE)
#define GX_IDX __m256i
#define GX_IDX_LOAD(p) _mm256_loadu_si256((const __m256i *)(p))
#define GX_IDX_SET1 _mm256_set1_epi32
#define GX_IDX_ADD _mm256_add_epi32
#define GX_GATHER(i, base) _mm512_i32gather_pd(i, base, 8)
#define GX_LOAD _mm512_loadu_pd
#define GX_STORE _mm512_store_pd
#define GX_PERM _mm512_permutex2var_pd
#define GX_EVEN _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0)
#elif defined(__AVX512F__)
#define GX_IDX __m512i
#define GX_IDX_LOAD(p) _mm512_loadu_si512((const void *)(p))
#define GX_IDX_SET1 _mm512_set1_epi32
#define GX_IDX_ADD _mm512_add_epi32
#define GX_GATHER(i, base) _mm512_i32gather_ps(i, base, 4)
#define GX_LOAD _mm512_loadu_ps
#define GX_STORE _mm512_store_ps
#define GX_PERM _mm512_permutex2var_ps
#define GX_EVEN _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0)
#endif

/* kc rows of one panel of GNR columns when every read is inside x: element (q, j) is xb[col[j] + row[q]];
   a vector of GL columns whose reads are 1 apart (fast[v] = 1; fast NULL: none) by a load, 2 apart (a
   stride-2 layer's, AVX-512) by two loads and a permutation, the others by gathers (AVX-512) or element
   by element */
static void FN(gather)(const T *xb, const int32_t *col, const int32_t *row, int64_t kc, T *bp,
                       const unsigned char *fast) {
    int runs = 0, twos = 0;
    for (int v = 0; v < GNB && fast; v++) runs |= (fast[v] == 1) << v, twos |= (fast[v] == 2) << v;
#if defined(__AVX512F__)
    GX_IDX o[GNB];
    const __m512i even = GX_EVEN;
    for (int v = 0; v < GNB; v++) o[v] = GX_IDX_LOAD(col + v * GL);
    for (int64_t q = 0; q < kc; q++) {
        GX_IDX at = GX_IDX_SET1(row[q]);
        for (int v = 0; v < GNB; v++) {
            const T *src = xb + col[v * GL] + row[q];
            GX_STORE(bp + q * GNR + v * GL, runs >> v & 1   ? GX_LOAD(src)
                                            : twos >> v & 1 ? GX_PERM(GX_LOAD(src), even, GX_LOAD(src + GL))
                                                            : GX_GATHER(GX_IDX_ADD(o[v], at), xb));
        }
    }
#else
    (void)twos; /* (element by element) */
    for (int64_t q = 0; q < kc; q++)
        for (int v = 0; v < GNB; v++) {
            T *dst = bp + q * GNR + v * GL;
            if (runs >> v & 1)
                *(gvec *)dst = *(const ugvec *)(xb + col[v * GL] + row[q]);
            else
                for (int64_t j = 0; j < GL; j++) dst[j] = xb[col[v * GL + j] + row[q]];
        }
#endif
}

/* the offsets into a sample of the taps n0 .. n0 + count - 1 (n = (c, k), k row-major) */
static void FN(tap_offsets)(const Geom *g, int64_t n0, int64_t count, int32_t *off) {
    const int64_t kk = g->k[0] * g->k[1] * g->k[2];
    for (int64_t i = 0; i < count; i++) {
        int64_t n = n0 + i, c = n / kk, t = n % kk, kw = t % g->k[2], kh = (t / g->k[2]) % g->k[1], kd = t / (g->k[2] * g->k[1]);
        off[i] = (int32_t)(c * g->xs[1] + kd * g->d[0] * g->xs[2] + kh * g->d[1] * g->xs[3] + kw * g->d[2]);
    }
}

/* the offsets of output positions p0 .. p0 + count - 1 (over samples when `samples`: p = (b, out)), the
   first tap's read; positions past the last read position 0 */
static void FN(position_offsets)(const Geom *g, int64_t p0, int64_t count, int samples, int32_t *pos) {
    const int64_t L = g->out[0] * g->out[1] * g->out[2], all = samples ? g->b * L : L;
    int64_t b = p0 / L, r = p0 % L, ow = r % g->out[2], oh = (r / g->out[2]) % g->out[1], od = r / (g->out[2] * g->out[1]);
    for (int64_t q = 0; q < count; q++) {
        pos[q] = p0 + q >= all ? 0
                 : (int32_t)((samples ? b * g->xs[0] : 0) + od * g->s[0] * g->xs[2] + oh * g->s[1] * g->xs[3] + ow * g->s[2]);
        if (++ow == g->out[2]) {
            ow = 0;
            if (++oh == g->out[1]) {
                oh = 0;
                if (++od == g->out[0]) od = 0, b++;
            }
        }
    }
}

/* The weight gradient of a one-group correlation as one product per sample, the columns read from x in
   the packing (no column matrix):
       dw[o, n] = sum_b sum_p gy[b, o, p] X_b[p, n],   X_b[p, n] = x_pad[b, c, p s + k d]  (n = (c, k))
   over the output positions p and the kernel taps k (3 dims, leading ones 1). B's panel of rows
   [p0, p0 + kc) x columns [j0, j0 + nc) of X_b, zero where a tap falls in the padding */
static void FN(pack_x)(const Geom *g, const T *x, int64_t b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, T *bp,
                       const int32_t *taps) {
    const int64_t kk = g->k[0] * g->k[1] * g->k[2], n_all = g->cg * kk;
    const T *xb = x + b * g->xs[0];
    int32_t row[KC];
    if (taps) FN(position_offsets)(g, p0, kc, 0, row);
    for (int64_t jp = 0; jp < nc; jp += GNR, bp += kc * GNR) {
        if (taps) { /* every read inside x: a gather (a last, partial panel's extra columns read x[0]; the
                       tiles never store them) */
            FN(gather)(xb, taps + jp, row, kc, bp, NULL);
            continue;
        }
        /* the panel's columns: where each reads x (offset at position 0) and its tap's shift per dim */
        int64_t off[GNR], dz[GNR], dy[GNR], dx[GNR];
        for (int64_t jj = 0; jj < GNR; jj++) {
            int64_t n = j0 + jp + jj;
            if (jp + jj >= nc || n >= n_all) { /* past the columns: never inside */
                off[jj] = 0, dz[jj] = -g->in[0] - 1, dy[jj] = dx[jj] = 0;
                continue;
            }
            int64_t c = n / kk, t = n % kk, kw = t % g->k[2], kh = (t / g->k[2]) % g->k[1], kd = t / (g->k[2] * g->k[1]);
            dz[jj] = kd * g->d[0] - g->p[0], dy[jj] = kh * g->d[1] - g->p[1], dx[jj] = kw * g->d[2] - g->p[2];
            off[jj] = c * g->xs[1] + dz[jj] * g->xs[2] + dy[jj] * g->xs[3] + dx[jj];
        }
        int64_t ow = p0 % g->out[2], oh = (p0 / g->out[2]) % g->out[1], od = p0 / (g->out[2] * g->out[1]);
        int64_t pz[KC], py[KC], px[KC]; /* the panel's positions: where each reads x (kc <= KC) */
        for (int64_t q = 0; q < kc; q++) {
            pz[q] = od * g->s[0], py[q] = oh * g->s[1], px[q] = ow * g->s[2];
            if (++ow == g->out[2]) {
                ow = 0;
                if (++oh == g->out[1]) oh = 0, od++;
            }
        }
        /* column by column: a column's reads run along x (columns read across, a channel apart, fall into
           one cache set when the channel's size is a power of two) */
        for (int64_t jj = 0; jj < GNR; jj++) {
            const T *xc = xb + off[jj];
            for (int64_t q = 0; q < kc; q++) {
                int inside = (uint64_t)(pz[q] + dz[jj]) < (uint64_t)g->in[0] && (uint64_t)(py[q] + dy[jj]) < (uint64_t)g->in[1]
                             && (uint64_t)(px[q] + dx[jj]) < (uint64_t)g->in[2];
                bp[q * GNR + jj] = inside ? xc[pz[q] * g->xs[2] + py[q] * g->xs[3] + px[q]] : (T)0;
            }
        }
    }
}

/* where the positions j0 .. j0 + count - 1 (over samples, out[2] columns a row) go in y (B, O, own
   positions: g->wrap drops the columns past the call's own, at -1, as it does the positions past the
   last), and per vector of GL: its kept lanes, whether their places are consecutive, the first's place */
static void FN(places)(const Geom *g, int64_t j0, int64_t count, int64_t *at, int64_t *base, uint16_t *lanes,
                       unsigned char *run) {
    const int64_t wv = g->out[2], own = g->wrap ? g->in[2] - (g->k[2] - 1) * g->d[2] : wv;
    const int64_t lv = g->out[0] * g->out[1] * wv, lown = g->out[0] * g->out[1] * own, all = g->b * lv;
    for (int64_t q = 0; q < count; q++) {
        int64_t j = j0 + q, b = j / lv, pv = j % lv, ow = pv % wv;
        at[q] = j >= all || ow >= own ? -1 : b * g->og * lown + pv / wv * own + ow;
    }
    for (int64_t v = 0; v < count / GL; v++) {
        const int64_t *a = at + v * GL;
        int64_t next = -1;
        unsigned m = 0;
        int ok = 1;
        base[v] = 0;
        for (int i = 0; i < GL; i++) {
            if (a[i] < 0) continue;
            if (!m) base[v] = a[i];
            else ok &= a[i] == next;
            next = a[i] + 1, m |= 1u << i;
        }
        lanes[v] = (uint16_t)m, run[v] = (unsigned char)ok;
    }
}

/* one thread's share of an implicit product: x, the other operand (gy or w) and the result */
typedef struct {
    const Geom *g;
    const T *x, *a;
    T *out;
    int64_t tid, nt;
    int flip; /* gemm_x: a is the weight of the forward whose input gradient this is (pack_wt) */
    int status;
} FN(IJob);

/* worker on nt threads (at most 64); 1 if a thread's packing panels could not be allocated */
static int FN(launch_implicit)(void *(*worker)(void *), const Geom *g, int64_t nt, const T *x, const T *a, T *out,
                               int flip) {
    FN(IJob) jobs[64];
    nt = nt < 1 ? 1 : nt > 64 ? 64 : nt;
    for (int64_t t = 0; t < nt; t++) jobs[t] = (FN(IJob)){g, x, a, out, t, nt, flip, 1};
    run_jobs(nt, worker, jobs, sizeof(FN(IJob)));
    int status = 0;
    for (int64_t t = 0; t < nt; t++) status |= jobs[t].status;
    return status;
}

/* the job's thread's packing panels (A's, then B's at *bp), or NULL with the job's status 1 */
static T *FN(job_panels)(FN(IJob) *job, T **bp) {
    T *ap = FN(panels)();
    job->status = ap ? 0 : 1;
    *bp = ap ? ap + MC * KC : NULL;
    return ap;
}

static void *FN(gemm_w_work)(void *arg) {
    FN(IJob) *job = (FN(IJob) *)arg;
    const Geom *g = job->g;
    T *bp, *ap = FN(job_panels)(job, &bp);
    if (!ap) return NULL;
    const int64_t o = g->og, n = g->cg * g->k[0] * g->k[1] * g->k[2], L = g->out[0] * g->out[1] * g->out[2];
    int64_t panels = (n + GNR - 1) / GNR, per = (panels + job->nt - 1) / job->nt;
    int64_t j0 = job->tid * per * GNR, j1 = (job->tid + 1) * per * GNR < n ? (job->tid + 1) * per * GNR : n;
    const int inside = FN(inside_all)(g, 0);
    int32_t taps[NC + GNR]; /* every read inside x: the offsets of the block's columns (taps), for the gathers */
    for (int64_t jc = j0; jc < j1; jc += NC) { /* this thread's columns of dw, summed over samples, positions */
        int64_t nc = j1 - jc < NC ? j1 - jc : NC;
        if (inside) {
            FN(tap_offsets)(g, jc, nc, taps);
            for (int64_t j = nc; j < (nc + GNR - 1) / GNR * GNR; j++) taps[j] = 0;
        }
        for (int64_t b = 0; b < g->b; b++)
            for (int64_t pc = 0; pc < L; pc += KC) {
                int64_t kc = L - pc < KC ? L - pc : KC;
                int set = b == 0 && pc == 0;
                FN(pack_x)(g, job->x, b, pc, kc, jc, nc, bp, inside ? taps : NULL);
                for (int64_t ic = 0; ic < o; ic += MC) {
                    int64_t mc = o - ic < MC ? o - ic : MC;
                    FN(pack_a)(job->a + (b * o + ic) * L + pc, L, 1, mc, kc, ap);
                    for (int64_t jr = 0; jr < nc; jr += GNR)
                        for (int64_t ir = 0; ir < mc; ir += GMR)
                            FN(tile)(kc, ap + ir * kc, bp + jr * kc, job->out + (ic + ir) * n + jc + jr, n, set,
                                     mc - ir < GMR ? mc - ir : GMR, nc - jr < GNR ? nc - jr : GNR);
                }
            }
    }
    return NULL;
}

/* dw (O, Cg K) = the weight gradient for x (strides g->xs, columns contiguous) and a contiguous gy
   (B, O, out): one group (g->g = 1, og = O), g->threads threads over dw's columns */
EXPORT int FN(gemm_w)(const Geom *g, const T *x, const T *gy, T *dw) {
    const int64_t n = g->cg * g->k[0] * g->k[1] * g->k[2], L = g->out[0] * g->out[1] * g->out[2];
    if (g->g != 1 || g->og <= 0 || n <= 0) return g->g != 1 ? 2 : 0;
    if (g->b <= 0 || L <= 0) {
        memset(dw, 0, sizeof(T) * (size_t)(g->og * n));
        return 0;
    }
    const int64_t panels = (n + GNR - 1) / GNR;
    return FN(launch_implicit)(FN(gemm_w_work), g, g->threads < panels ? g->threads : panels, x, gy, dw, 0);
}

/* A's rows [i0, i0 + mc) x columns [p0, p0 + kc) into panels of GMR rows (as pack_a) when A is the weight of
   a stride-1 input gradient, read from the forward's weight wf (cg' x og' x kk: this call's input channels
   are its output channels): A[i, (c, t)] = wf[c, i, kk - 1 - t], the kernel flipped and the channels
   swapped without a copy of the weight */
static void FN(pack_wt)(const T *wf, int64_t og, int64_t kk, int64_t i0, int64_t mc, int64_t p0, int64_t kc, T *ap) {
    /* channel by channel: the block's rows of one channel are one contiguous run of wf (mc x kk), read in
       order; each row's taps go to its panel (GMR rows, k-major), reversed */
    for (int64_t p = 0, c = p0 / kk, t0 = p0 % kk; p < kc; c++, t0 = 0) {
        const T *blk = wf + c * og * kk + i0 * kk + kk - 1;
        int64_t taps = kk - t0 < kc - p ? kk - t0 : kc - p;
        for (int64_t r0 = 0; r0 < mc; r0 += GMR) {
            int64_t mr = mc - r0 < GMR ? mc - r0 : GMR;
            T *dst = ap + r0 * kc + p * GMR;
            for (int64_t i = 0; i < GMR; i++)
                for (int64_t t = 0; t < taps; t++) dst[t * GMR + i] = i < mr ? blk[(r0 + i) * kk - t0 - t] : (T)0;
        }
        p += taps;
    }
}

/* The forward correlation of one group: y (B, O, L) row-major, as the product y[o, (b, p)] of w's rows
   (O, Cg K, contiguous) and B's panels gathered from x (every read inside: inside_all; g->wrap: the
   positions along whole rows of x, the others dropped in the store); threads split the product's columns
   in runs of whole panels, or its rows when there are few columns and many rows */
static void *FN(gemm_x_work)(void *arg) {
    FN(IJob) *job = (FN(IJob) *)arg;
    const Geom *g = job->g;
    T *bp, *ap = FN(job_panels)(job, &bp);
    if (!ap) return NULL;
    const int64_t o = g->og, n = g->cg * g->k[0] * g->k[1] * g->k[2], cols = g->b * g->out[0] * g->out[1] * g->out[2];
    const int64_t panels = (cols + GNR - 1) / GNR, tiles = (o + GMR - 1) / GMR, nt = job->nt, t = job->tid;
    int64_t i0 = 0, i1 = o, j0 = 0, j1 = cols;
    if (tiles < nt || (cols >= o && panels >= nt)) { /* each thread reads all of A: columns when B is the larger */
        int64_t per = (panels + nt - 1) / nt;
        j0 = t * per * GNR, j1 = (t + 1) * per * GNR < cols ? (t + 1) * per * GNR : cols;
    } else {
        int64_t per = (tiles + nt - 1) / nt;
        i0 = t * per * GMR, i1 = (t + 1) * per * GMR < o ? (t + 1) * per * GMR : o;
    }
    int32_t pos[NC + GNR], row[KC], reach; /* the block's positions (whole panels), a KC block's taps */
    int64_t at[NC + GNR], base[(NC + GNR) / GL]; /* their places in y */
    uint16_t lanes[(NC + GNR) / GL];
    unsigned char fast[(NC + GNR) / GL], run[(NC + GNR) / GL]; /* vectors read by loads, stored as vectors */
    const int64_t own = g->wrap ? g->in[2] - (g->k[2] - 1) * g->d[2] : g->out[2], lown = g->out[0] * g->out[1] * own;
    const int64_t last = (g->b - 1) * g->xs[0] + (g->cg - 1) * g->xs[1] + (g->in[0] - 1) * g->xs[2]
                         + (g->in[1] - 1) * g->xs[3] + g->in[2] - 1;
    FN(tap_offsets)(g, n - 1, 1, &reach);
    /* A is read where it lies (tile_sum_direct), not packed: measured at 1 thread, as fast or faster on
       ResNet's 3x3 layers (256 channels at 8x8: 1.71 -> 1.59 ms), and on few columns (512 at 4x4, where each
       element of A serves two panels) packing A took a third of the product (2.3 -> 1.5 ms) */
    const int64_t kk = g->k[0] * g->k[1] * g->k[2], rs = job->flip ? kk : g->ws[0];
    int64_t koff[KC];
    for (int64_t jc = j0; jc < j1 && i0 < i1; jc += NC) {
        int64_t nc = j1 - jc < NC ? j1 - jc : NC, np = (nc + GNR - 1) / GNR * GNR;
        FN(position_offsets)(g, jc, np, 1, pos);
        FN(runs)(g, jc, np, reach, last, pos, fast);
        FN(places)(g, jc, np, at, base, lanes, run);
        for (int64_t pc = 0; pc < n; pc += KC) {
            int64_t kc = n - pc < KC ? n - pc : KC;
            FN(tap_offsets)(g, pc, kc, row);
            for (int64_t jp = 0; jp < nc; jp += GNR) FN(gather)(job->x, pos + jp, row, kc, bp + jp * kc, fast + jp / GL);
            for (int64_t p = 0; p < kc; p++) /* where A's rows lie: the forward's w (O, n), or the flipped wf */
                koff[p] = job->flip ? (pc + p) / kk * g->og * kk + kk - 1 - (pc + p) % kk : pc + p;
            for (int64_t ic = i0; ic < i1; ic += MC) { /* a block of rows; its tiles over each panel of B */
                int64_t mc = i1 - ic < MC ? i1 - ic : MC, full = mc / GMR * GMR;
                if (full < mc && job->flip) /* a last, partial tile: its rows packed */
                    FN(pack_wt)(job->a, g->og, kk, ic + full, mc - full, pc, kc, ap);
                else if (full < mc)
                    FN(pack_a)(job->a + (ic + full) * g->ws[0] + pc, g->ws[0], 1, mc - full, kc, ap);
                for (int64_t jr = 0; jr < nc; jr += GNR)
                    for (int64_t ir = ic; ir < ic + mc; ir += GMR)
                        FN(tile_mapped)(kc, ap, bp + jr * kc, job->out + ir * lown, lown, pc == 0,
                                        ic + mc - ir < GMR ? ic + mc - ir : GMR,
                                        (FN(Places)){at + jr, base + jr / GL, lanes + jr / GL, run + jr / GL},
                                        ir < ic + full ? job->a + ir * rs : NULL, koff, rs);
            }
        }
    }
    return NULL;
}

static int FN(implicit_forward)(const Geom *g, const T *x, const T *w, T *y, int flip) {
    const int64_t n = g->cg * g->k[0] * g->k[1] * g->k[2], cols = g->b * g->out[0] * g->out[1] * g->out[2];
    if (g->g != 1 || !FN(inside_all)(g, 1)) return 2;
    if (g->og <= 0 || cols <= 0) return 0;
    if (n <= 0) { /* y's own positions */
        const int64_t own = g->wrap ? g->in[2] - (g->k[2] - 1) * g->d[2] : g->out[2];
        memset(y, 0, sizeof(T) * (size_t)(g->b * g->og * g->out[0] * g->out[1] * own));
        return 0;
    }
    return FN(launch_implicit)(FN(gemm_x_work), g, g->threads, x, w, y, flip);
}

/* y (B, O, L) = the forward correlation of x (strides g->xs, columns contiguous, every read inside: the
   caller pads) with w (O, Cg K, rows g->ws[0] apart, contiguous within): one group; 2 if the call is not
   one this serves, 1 if a thread's packing panels could not be allocated */
EXPORT int FN(gemm_x)(const Geom *g, const T *x, const T *w, T *y) { return FN(implicit_forward)(g, x, w, y, 0); }

/* the same for the stride-1 input gradient of a forward with weight wf (O x Cg x K, contiguous): g is its
   correlation (g->og the forward's input channels, g->cg its output channels), read from wf by pack_wt */
EXPORT int FN(gemm_xt)(const Geom *g, const T *x, const T *wf, T *y) { return FN(implicit_forward)(g, x, wf, y, 1); }
