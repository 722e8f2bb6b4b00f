/* anyconv's native kernel: grouped direct cross-correlation in up to 3 spatial dims.

   y[b, g*Og + o, p] = sum_{c, q} w[g*Og + o, c, q] * x_pad[b, g*Cg + c, p * s + q * d]

   The same sums as the `direct` algorithm, written as plain loops that the C compiler vectorises
   (built by _native_build.py with the system compiler, -O3 -march=native: every .c file of this
   directory twice, once for float and once with -DANYCONV_DOUBLE for double, linked into one library).
   One family of kernels per file, in the manner of XNNPACK's microkernels; this header is what they
   share: the call's geometry (Geom), its plan (Plan, the one place the forms and buffers are decided:
   plan.c, read by Python through ctypes), the vector types and the helpers every form uses.

   - plan.c: which form computes a call, its buffers' sizes, the register blocks and bands; exported
     as plan_f32 / plan_f64 (native's Python side asks it instead of repeating it).
   - corr.c: the worker threads, the padded phase-split copy of a group's input, the entry point corr_*.
   - rows.c: "rows" form (long output rows, small kernels): blocks of OB output channels x R output
     rows x VL output columns accumulated in registers over every (channel, tap); depthwise layers with
     stride 2 over columns read x directly (AVX-512).
   - dots.c: "dots" form (short output rows, large kernels: the weight gradients): every output a dot
     product over the kernel's rows.
   - lanes.c: "lanes" form (float32 with AVX-512; one output channel per group, at least 16 groups,
     1-2 dims): 16 groups in the lanes of every vector, with a nested Winograd F(3, 3) variant.
   - transposed.c: the transposed correlation (a strided layer's input gradient), corr_t_*.
   - gemm.c: a packed, register-blocked matrix product (gemm_*), the GEMM-based algorithms' products;
     gemm.h: its register tile, blocking and packing, shared with
   - gemm_x.c: the implicit products (gemm_x_*: im2col's forward, gemm_xt_*: a stride-1 input gradient,
     gemm_w_*: a weight gradient), their panels of windows read straight from x.
   - dot_w.c: a weight gradient as dot products along output rows (dot_w_*: few channels, long rows).
   - winograd.c: Winograd F(m x m, 3 x 3)'s input and output transforms in 2-D (wino_in_*, wino_out_*).
   - copy.c: a strided copy (copy_strided), compiled in the float object only.

   Depth (the first of 3 dims) is not padded in the buffers: taps that fall outside are skipped.
   Accumulation is in the input type (float or double), in order channel, tap (the dots form sums
   each row's vector lanes at the end). x is read through its strides (rows contiguous). */
#ifndef ANYCONV_NATIVE_H
#define ANYCONV_NATIVE_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* the library's entry points (everything else is hidden: no other library's symbol can stand in) */
#define EXPORT __attribute__((visibility("default")))
#define INTERNAL __attribute__((visibility("hidden")))

/* the call's geometry: filled by native's Python side (its ctypes.Structure Geom, field by field); form
   and chunks are the plan's (plan.c fills them in a copy before the workers start; the caller's are
   ignored) */
typedef struct {
    int64_t b, g, cg, og;        /* samples, groups, in / out channels per group */
    int64_t in[3], k[3], out[3]; /* spatial sizes, leading dims 1 below 3-D */
    int64_t s[3], d[3], p[3];    /* stride, dilation, padding before */
    int64_t form;                /* 0: rows, 1: dots, 2: lanes (float32, AVX-512): the plan's */
    int64_t threads;             /* worker threads */
    int64_t chunks;              /* chunks of output channels per (sample, group): the plan's */
    int64_t xs[4];               /* x's strides (elements) of sample, channel, depth, row; columns: 1 */
    int64_t ws[4];               /* w's strides of output channel, input channel, depth, row (dots
                                    and lanes forms; the rows form takes a contiguous w) */
    int64_t xg;                  /* x's stride between groups: Cg xs[1] for a tensor, another for the
                                    batch/channel-swapped input of a weight gradient read in place */
    int64_t n;                   /* the call's spatial dims (1-3) */
    int64_t wrap;                /* implicit products (gemm_x.c): out[2] counts every column of x's rows */
} Geom;

/* a matrix product (gemm.c): read by Python through its ctypes.Structure GemmArgs, field by field */
typedef struct {
    int64_t m, n, k, batch;
    int64_t a_rs, a_cs, b_rs, b_cs, c_rs; /* strides in elements; C's columns are contiguous */
    int64_t a_bs, b_bs, c_bs;             /* strides between batch items (0: the same matrix for each) */
    int64_t accumulate;                   /* 1: C += A B; 0: C = A B */
    int64_t threads;
} GemmArgs;

/* a chunk of Winograd F(m x m, 3 x 3) tiles (winograd.c): read by Python through its ctypes.Structure
   WinoArgs, field by field */
typedef struct {
    int64_t m, a, c;                   /* tile, a = m + 2, channels (input) or rows of the products (output) */
    int64_t b0, b1, ty0, ty1, tx0, tx1; /* the chunk: samples, tile rows, tile columns */
    int64_t h, w, ph, pw;              /* input rows, columns, padding before */
    int64_t xs[4];                     /* input strides: sample, channel, row, column */
    int64_t oh, ow;                    /* output rows, columns */
    int64_t ys[4];                     /* output strides */
    int64_t oc, og, o0;                /* output: rows per group in the products, channels per group, first */
    int64_t threads;
    int64_t plane;                     /* elements between the a^2 coordinates' planes (>= c x rs) */
    int64_t rs;                        /* input: elements between a plane's channel rows (>= tiles) */
} WinoArgs;

/* a call's plan (plan_f32 / plan_f64): what the kernel will do, for the caller's scratch check and
   cost model; read by Python through its ctypes.Structure Plan, field by field */
typedef struct {
    int64_t form;          /* 0: rows, 1: dots, 2: lanes */
    int64_t chunks;        /* chunks of output channels per (sample, group) */
    int64_t direct;        /* 1: computed straight from x, no padded copy (rows_s2) */
    int64_t bytes;         /* the buffers of every thread that gets work, forward */
    int64_t bytes_t;       /* the same for the transposed correlation (corr_t) */
    /* the rows or dots form that the call takes without the lanes form (layout): */
    int64_t dots;          /* 1: the dots form */
    int64_t copied;        /* elements of one (sample, group)'s padded buffer */
    int64_t staged;        /* elements of the two staging rows of a stride-2 split */
    int64_t blocks;        /* register blocks per output channel (rows form) */
    int64_t block_outputs; /* outputs one block computes (rows form) */
    /* the lanes form's (LanesPlan; filled for every call): */
    int64_t rows, cols, band, hp, wp, nest, sub, tiles, rowlen;
} Plan;

/* the padded, phase-split copy of one group's input: buffer shape (Cg, ID, hp, q, wq) */
typedef struct {
    int64_t hp, q, wq;
    int64_t *tap;    /* rows form: where kernel column kw starts in a buffer row, (kw d mod s) wq + kw d div s */
    int64_t *inside; /* per phase r: [t0, t1), the part of the phase's row that lies inside x */
} Layout;

/* the lanes form's register block and band (see lanes_plan in plan.c) */
typedef struct {
    int64_t rows, cols, band, hp, wp; /* hp x wp: the input tile of one band */
    int64_t nest, sub, tiles, rowlen;  /* nested F(3, 3) over columns: sub-kernels, tiles per row, tile row length */
} LanesPlan;

#define LANES_BAND_BYTES (512 * 1024) /* a band's input and output tiles, at most (unless the least band is more) */
#ifndef NEST_ON
#define NEST_ON 1 /* (0: never the nested form; for A/B builds) */
#endif

/* the input depth index that output depth od reads with kernel depth kd, or -1 outside the input
   (depth is not padded in the buffers) */
static inline int64_t depth_row(const Geom *m, int64_t od, int64_t kd) {
    int64_t z = od * m->s[0] + kd * m->d[0] - m->p[0];
    return z < 0 || z >= m->in[0] ? -1 : z;
}

/* the rows that output row rr of a lanes block shares with row 0 (tile row i feeds row rr with kernel
   row i - rr shift): s1 / d1 when the stride over rows is a multiple of the dilation, else 0 (no sharing);
   inline: the lanes form's inner blocks ask it */
static inline int64_t lanes_shift(const Geom *m) { return m->s[1] % m->d[1] == 0 ? m->s[1] / m->d[1] : 0; }

/* ceil(a / b) for b > 0 and any sign of a */
static inline int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/* compiled twice: -DANYCONV_DOUBLE gives the float64 kernels */
#ifdef ANYCONV_DOUBLE
typedef double T;
#define VL 16 /* output columns per register block */
#define FN(name) name##_f64
#else
typedef float T;
#define VL 32
#define FN(name) name##_f32
#endif

/* GCC/Clang vector types: VL columns are NV vectors of 64 bytes (the compiler splits them where
   the machine's vectors are narrower); uvec is the same vector read from any T-aligned address */
#define LANES ((int)(64 / sizeof(T)))
#define NV (VL / LANES)

typedef T vec __attribute__((vector_size(64)));
typedef T uvec __attribute__((vector_size(64), aligned(sizeof(T))));
#ifdef ANYCONV_DOUBLE
typedef int64_t ivec __attribute__((vector_size(64))); /* lane masks */
#else
typedef int32_t ivec __attribute__((vector_size(64)));
#endif

/* s in every lane: -0.0 + s is s for every s (+0.0 + -0.0 is +0.0), so the compiler drops the add and
   broadcasts s straight from memory into the multiply-add ((vec){0} + s cost an add and a shuffle) */
#define SPLAT(s) (-(vec){0} + (s))

/* v stays in a register: without it the compiler folds a vector that several multiply-adds use into each
   of them as a memory operand, one load per use (the dots form: 16 loads per 12 multiply-adds, not 7) */
#if defined(__GNUC__) && defined(__AVX512F__)
#define KEEP_IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define KEEP_IN_REGISTER(v) ((void)0)
#endif

#ifdef __AVX512F__
#include <immintrin.h>
#ifdef ANYCONV_DOUBLE
#define MASKED_STORE(p, k, v) _mm512_mask_storeu_pd((p), (__mmask8)(k), (__m512d)(v))
#define MASKED_LOAD(p, k) ((vec)_mm512_maskz_loadu_pd((__mmask8)(k), (p)))
#else
#define MASKED_STORE(p, k, v) _mm512_mask_storeu_ps((p), (__mmask16)(k), (__m512)(v))
#define MASKED_LOAD(p, k) ((vec)_mm512_maskz_loadu_ps((__mmask16)(k), (p)))
#endif
#endif

/* the even and the odd lanes of two vectors (a, b): the stride-2 phases of 2 * LANES consecutive inputs */
#ifdef ANYCONV_DOUBLE
#ifdef __clang__
#define EVENS(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#define ODDS(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15)
#else
#define EVENS(a, b) __builtin_shuffle(a, b, (ivec){0, 2, 4, 6, 8, 10, 12, 14})
#define ODDS(a, b) __builtin_shuffle(a, b, (ivec){1, 3, 5, 7, 9, 11, 13, 15})
#endif
#else
#ifdef __clang__
#define EVENS(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define ODDS(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#else
#define EVENS(a, b) __builtin_shuffle(a, b, (ivec){0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30})
#define ODDS(a, b) __builtin_shuffle(a, b, (ivec){1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31})
#endif
#endif

/* the interleave of two vectors' lanes: the low halves (a0 b0 a1 b1 ...) and the high halves */
#ifdef ANYCONV_DOUBLE
#ifdef __clang__
#define ILV_LO(a, b) __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11)
#define ILV_HI(a, b) __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15)
#else
#define ILV_LO(a, b) __builtin_shuffle(a, b, (ivec){0, 8, 1, 9, 2, 10, 3, 11})
#define ILV_HI(a, b) __builtin_shuffle(a, b, (ivec){4, 12, 5, 13, 6, 14, 7, 15})
#endif
#else
#ifdef __clang__
#define ILV_LO(a, b) __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define ILV_HI(a, b) __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
#else
#define ILV_LO(a, b) __builtin_shuffle(a, b, (ivec){0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23})
#define ILV_HI(a, b) __builtin_shuffle(a, b, (ivec){8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31})
#endif
#endif

/* the lanes form: float32 on an AVX-512 build */
#if !defined(ANYCONV_DOUBLE) && defined(__AVX512F__)
#define LANES_FORM 1
#else
#define LANES_FORM 0
#endif

/* one output row's NB accumulated vectors stored at dst: the first nv <= NB LANES columns (a row's
   last, partial vector by a masked store with AVX-512, else through a buffer, so that the accumulators
   stay in registers) */
static inline __attribute__((always_inline)) void FN(store_row)(const vec *acc, T *dst, int64_t nv, const int NB) {
    if (nv == NB * LANES) { /* whole rows without the per-vector tests (the loop alone measured 5-13% slower
                               on 7-wide depthwise and RGB s2 rows) */
        for (int n = 0; n < NB; n++) *(uvec *)(dst + n * LANES) = acc[n];
        return;
    }
    for (int n = 0; n < NB; n++) { /* constant indices into acc (a variable one would keep it in memory) */
        int64_t left = nv - n * LANES;
        if (left >= LANES) {
            *(uvec *)(dst + n * LANES) = acc[n];
        } else if (left > 0) {
#ifdef __AVX512F__
            MASKED_STORE(dst + n * LANES, (1u << left) - 1u, acc[n]);
#else
            T part[LANES];
            *(uvec *)part = acc[n];
            for (int64_t v = 0; v < left; v++) dst[n * LANES + v] = part[v];
#endif
        }
    }
}

/* one worker thread's share of a call */
typedef struct {
    const Geom *m;
    const T *x, *w;
    T *y;
    int64_t tid;
    int status;
} FN(Job);

/* copy.c: worker(jobs + t * size) for t in [0, n): with an OpenMP build on the OpenMP threads of the
   process (torch's own pool: the library's libgomp.so.1 is the one torch loaded, so no second set of
   threads competes for the cores), else on pthreads started for the call (the caller runs job 0, and
   the jobs of threads that could not start) */
INTERNAL void run_jobs(int64_t n, void *(*worker)(void *), void *jobs, size_t size);

/* plan.c: the decisions every form reads */
INTERNAL Geom FN(planned)(const Geom *call);
INTERNAL Layout FN(layout)(const Geom *m, int64_t rows_r, int64_t cols_r);
INTERNAL int FN(rows_per_block)(const Geom *m);
INTERNAL int64_t FN(cols_per_block)(const Geom *m);
INTERNAL int FN(direct_s2)(const Geom *m);
INTERNAL int64_t FN(wpad_len)(const Geom *m);
INTERNAL LanesPlan FN(lanes_plan)(const Geom *m);
INTERNAL int64_t FN(lanes_floats)(const Geom *m);

/* corr.c */
INTERNAL int FN(launch)(const Geom *m, const T *x, const T *w, T *y, void *(*worker)(void *));
/* rows.c */
INTERNAL void FN(fill)(const Geom *m, const Layout *l, const T *x, T *buf, T *stage);
INTERNAL void FN(rows)(const Geom *m, const Layout *l, const T *buf, const T *w, T *y, int64_t o0, int64_t o1, int R);
INTERNAL void FN(rows_s2)(const Geom *m, const T *x, const T *w, T *y);
/* dots.c */
INTERNAL void FN(pad_weights)(const Geom *m, const T *w, T *wpad);
INTERNAL void FN(dots)(const Geom *m, const Layout *l, const T *buf, const T *wpad, T *y, int64_t o0, int64_t o1);
/* lanes.c */
INTERNAL void *FN(lanes_work)(void *arg); /* (float32 with AVX-512 only) */
/* transposed.c */
INTERNAL int64_t FN(buffer_bytes_t)(const Geom *m);

#endif
