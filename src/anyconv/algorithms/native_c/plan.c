/* The plan: which form computes a call, the padded buffers' shapes, the register blocks and the lanes
   form's bands, and the bytes every thread allocates. The one place these are decided: the workers read
   them, and native's Python side asks plan_f32 / plan_f64 for its scratch check and cost model. */
#include "native.h"

/* the padded copy's shape for register blocks of rows_r rows x cols_r columns (rows form) or the dots
   form's (columns split by the dilation) */
Layout FN(layout)(const Geom *m, int64_t rows_r, int64_t cols_r) {
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
    l.tap = l.inside = NULL;
    return l;
}

/* output rows per register block of the rows form: 2 with blocks of 4 output channels, 4 with one
   channel (so that a block keeps 8-16 accumulators), 1 for a one-row output;
   3x3 kernels, stride and dilation 1 over rows, one output channel at a time (depthwise): 8 rows per
   block, each input row loaded once for the (up to) 3 output rows it feeds (see block_rows3) */
static int rows3(const Geom *m) {
    return m->form == 0 && m->og < 4 && m->k[1] == 3 && m->k[2] == 3 && m->s[1] == 1 && m->d[1] == 1 && m->out[1] > 1;
}

int FN(rows_per_block)(const Geom *m) { return m->out[1] == 1 ? 1 : (m->og >= 4 ? 2 : (rows3(m) ? 8 : 4)); }

/* output columns per register block of the rows form: one vector (LANES) for output rows that fit in
   one, else the full block (VL): a 7-wide row of a 7x7 plane wastes 9 of 16 lanes instead of 25 of 32 */
int64_t FN(cols_per_block)(const Geom *m) { return m->out[2] <= LANES ? LANES : VL; }

/* depthwise with stride 2 and dilation 1 over columns, at most 8 kernel columns, AVX-512: computed
   straight from x (rows_s2) */
int FN(direct_s2)(const Geom *m) {
#ifdef __AVX512F__
    return m->form == 0 && m->cg == 1 && m->og == 1 && m->s[2] == 2 && m->d[2] == 1 && m->k[2] <= 8;
#else
    (void)m;
    return 0;
#endif
}

/* elements of the dots form's padded copy of one group's weights (rows padded to whole vectors) */
int64_t FN(wpad_len)(const Geom *m) {
    return m->og * m->cg * m->k[0] * m->k[1] * ((m->k[2] + LANES - 1) / LANES * LANES);
}

/* the lanes form's nested variant (lanes.c: nest_block), for stride 1 and dilation 1 over columns, where
   its multiply-adds (5 per tile of 3 outputs and sub-kernel of 3 taps) and its input transform (about 15
   per tile and input row) are fewer than 5/6 of the direct sums' (its blocks measure about 1.2x their
   count). Over rows the sums stay direct. */
static int lanes_nest(const Geom *m) {
    if (!NEST_ON || m->s[2] != 1 || m->d[2] != 1 || m->k[2] < 3) return 0;
    const int64_t o1 = m->out[1], o2 = m->out[2], k1 = m->k[1], k2 = m->k[2];
    const int64_t sub = (k2 + 2) / 3, touts = (o2 + 2) / 3, hp = (o1 - 1) * m->s[1] + (k1 - 1) * m->d[1] + 1;
    const int64_t nested = o1 * touts * k1 * sub * 5 + hp * (touts + sub - 1) * 15;
    return 6 * nested < 5 * o1 * o2 * k1 * k2;
}

/* the lanes form's register block (up to ROWS output rows x up to 8 output columns: 3 rows when the
   stride over rows is a multiple of the dilation, so that the rows share input loads, else 1; the last
   block of a column is as many rows as are left, a row's blocks are as wide as an even split gives) and
   band (output rows per tile fill, a multiple of ROWS unless it is all of them): the largest band whose
   tiles fit in LANES_BAND_BYTES, at least twice the rows its windows share with the next band; smaller
   when there are more threads than (sample, block of 16 groups) units, so that every thread gets rows.
   The nested variant's tiles: sub-kernels of 3 taps, tiles of 3 outputs (plus those the sub-kernels
   reach) per row, a tile row 5 vectors per tile. */
LanesPlan FN(lanes_plan)(const Geom *m) {
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
    if (units > 0 && m->threads > units) {  /* (an empty batch has no units: nothing to split) */
        const int64_t parts = (m->threads + units - 1) / units;
        int64_t even = (o1 + parts - 1) / parts;
        even = (even + p.rows - 1) / p.rows * p.rows;
        if (even < p.band) p.band = even;
    }
    p.hp = (p.band - 1) * m->s[1] + halo + 1;
    return p;
}

/* floats of one lanes-form thread's tiles: input band, weights, output band (nested: a row scratch and
   the transformed weights) */
int64_t FN(lanes_floats)(const Geom *m) {
    LanesPlan p = FN(lanes_plan)(m);
    const int64_t nest = p.nest ? 3 * p.tiles + 2 + m->k[1] * p.sub * 5 : 0;
    return (p.hp * p.rowlen + m->k[1] * m->k[2] + p.band * m->out[2] + nest) * 16;
}

/* the form: lanes (16 groups in the vector lanes) for one output channel per group, at least 16 groups
   (fewer would leave lanes idle) and 1 or 2 dims on a build that has it; else dots (dot products over the
   kernel's columns) for kernel rows of 8 or more and output rows shorter than half a block; else rows */
static int64_t form_of(const Geom *m) {
    if (LANES_FORM && m->og == 1 && m->g >= 16 && m->n >= 1 && m->n <= 2) return 2;
    return m->k[2] >= 8 && m->out[2] < VL / 2;
}

/* chunks of output channels per (sample, group): 1 when the (sample, group) units keep every thread
   busy, else enough that every thread gets work (at most one channel per chunk) */
static int64_t chunks_of(const Geom *m) {
    const int64_t units = m->b * m->g > 1 ? m->b * m->g : 1, threads = m->threads < 1 ? 1 : m->threads;
    int64_t chunks = units >= threads ? 1 : (threads + units - 1) / units;
    if (chunks > m->og) chunks = m->og;
    return chunks < 1 ? 1 : chunks;
}

Geom FN(planned)(const Geom *call) {
    Geom m = *call;
    m.form = form_of(call);
    m.chunks = chunks_of(call);
    return m;
}

/* bytes of one thread's buffers (forward) */
static int64_t thread_bytes(const Geom *m) {
#if LANES_FORM
    if (m->form == 2) return FN(lanes_floats)(m) * (int64_t)sizeof(float);
#endif
    Layout l = FN(layout)(m, FN(rows_per_block)(m), FN(cols_per_block)(m));
    int64_t n = m->cg * m->in[0] * l.hp * l.q * l.wq + LANES + (l.q == 2 ? 4 * l.wq : 0)
                + (m->form == 1 ? FN(wpad_len)(m) : 0);
    return n * (int64_t)sizeof(T);
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

EXPORT int FN(plan)(const Geom *call, Plan *out) {
    const Geom m = FN(planned)(call);
    memset(out, 0, sizeof(*out));
    out->form = m.form;
    out->chunks = m.chunks;
    out->direct = FN(direct_s2)(&m);
    out->bytes = thread_bytes(&m) * min64(m.threads, m.b * m.g * m.chunks);
    out->bytes_t = FN(buffer_bytes_t)(&m) * min64(m.threads, m.b * m.g);
    /* the rows or dots form's layout (the form the call takes where the lanes form does not apply) */
    Geom r = m;
    r.form = form_of(call) == 2 ? (r.k[2] >= 8 && r.out[2] < VL / 2) : m.form;
    const int64_t R = FN(rows_per_block)(&r), cols = FN(cols_per_block)(&r);
    const Layout l = FN(layout)(&r, R, cols);
    out->dots = r.form;
    out->copied = r.cg * r.in[0] * l.hp * l.q * l.wq;
    out->staged = l.q == 2 ? 4 * l.wq : 0;
    if (r.form == 0) {
        out->blocks = r.out[0] * ((r.out[1] + R - 1) / R) * ((r.out[2] + cols - 1) / cols);
        out->block_outputs = R * cols;
    }
    const LanesPlan p = FN(lanes_plan)(&m);
    out->rows = p.rows;
    out->cols = p.cols;
    out->band = p.band;
    out->hp = p.hp;
    out->wp = p.wp;
    out->nest = p.nest;
    out->sub = p.sub;
    out->tiles = p.tiles;
    out->rowlen = p.rowlen;
    return 0;
}

/* whether this build has the lanes form (float32 with AVX-512) */
EXPORT int FN(lanes_form)(void) { return LANES_FORM; }
