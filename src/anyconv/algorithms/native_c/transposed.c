/* The transposed correlation (corr_t_f32 / corr_t_f64): a strided layer's input gradient for one output
   channel per group, in one pass (no phase calls). */
#include "native.h"


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

/* bytes of one thread's buffer for the transposed correlation */
int64_t FN(buffer_bytes_t)(const Geom *m) {
    int64_t lpad = (m->k[2] - 1) * m->d[2] / m->s[2], tcount = (m->in[2] - 1 + m->p[2]) / m->s[2] + 1;
    int64_t wbuf = lpad + (tcount + VL - 1) / VL * VL + VL;
    return (m->og * m->out[0] * m->out[1] * wbuf) * (int64_t)sizeof(T);
}

/* gy, w -> dx (see work_t): geom is the forward correlation's */
EXPORT int FN(corr_t)(const Geom *call, const T *gy, const T *w, T *dx) {
    const Geom m = FN(planned)(call);
    return FN(launch)(&m, gy, w, dx, FN(work_t));
}
