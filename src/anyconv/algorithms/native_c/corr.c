/* The forward correlation's entry point (corr_f32 / corr_f64), its worker threads, and the padded,
   phase-split copy of a (sample, group)'s input that the rows and dots forms read: each unit first
   copies its group's input into a private buffer with the zero padding added and the columns split into
   phases, so that every tap reads a contiguous run of memory and no inner loop checks a bound. */
#include "native.h"

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
void FN(fill)(const Geom *m, const Layout *l, const T *x, T *buf, T *stage) {
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

static void *FN(work)(void *arg) {
    FN(Job) *job = (FN(Job) *)arg;
    const Geom *m = job->m;
    int R = FN(rows_per_block)(m);
    Layout l = FN(layout)(m, R, FN(cols_per_block)(m));
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
        if (FN(direct_s2)(m)) { /* no padded copy */
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

/* the worker run on m->threads threads (the calling thread one of them; threads that cannot be started
   have their share run on the calling thread); nonzero if a worker could not allocate its buffers */
int FN(launch)(const Geom *m, const T *x, const T *w, T *y, void *(*worker)(void *)) {
    int64_t n = m->threads < 1 ? 1 : m->threads;
    FN(Job) jobs[64];
    if (n > 64) n = 64;
    for (int64_t t = 0; t < n; t++) {
        jobs[t].m = m;
        jobs[t].x = x;
        jobs[t].w = w;
        jobs[t].y = y;
        jobs[t].tid = t;
        jobs[t].status = 0;
    }
    run_jobs(n, worker, jobs, sizeof(FN(Job)));
    int status = 0;
    for (int64_t t = 0; t < n; t++) status |= jobs[t].status;
    return status;
}

/* x, w -> y for the call's geometry (form and chunks: the plan's) */
EXPORT int FN(corr)(const Geom *call, const T *x, const T *w, T *y) {
    const Geom m = FN(planned)(call);
#if LANES_FORM
    if (m.form == 2) return FN(launch)(&m, x, w, y, FN(lanes_work));
#endif
    return FN(launch)(&m, x, w, y, FN(work));
}
