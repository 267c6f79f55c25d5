/* ops/select.c - selection: y = cond ? a : b, elementwise, with broadcasting.
 *
 * cond, a and b broadcast together as NumPy does (shapes align from the right,
 * a missing dim or a dim of 1 stretches). cond may be float or int32; an
 * element is true when it is non-zero (NaN counts as true). a and b are
 * floats of one dtype, which the output takes.
 *
 * Why a primitive: masking written as keep * new + (1 - keep) * old turns a NaN
 * or Inf in a discarded position into NaN (0 * NaN = NaN), in the values and
 * in every gradient that flows through the product. Selection never looks at
 * the discarded value:
 *   y = cond ? a : b          da += cond ? dy : 0,   db += cond ? 0 : dy
 * (summed over each input's broadcast axes). cond gets no gradient.
 *
 * Two descriptors, one op: a cond of a's dtype (the recurrent layers' [B, 1]
 * keep masks) makes `where` an elementwise op of three inputs with block
 * kernels (ops/kernels.h), run by ops/eltwise.c and fused with the cell's
 * other elementwise ops; an int32 cond, or a float cond of the other dtype,
 * runs the row walk below, which reads each dtype as it is. */
#include "kernels.h"

#include <string.h>

/* Element strides of the three inputs on the output's dims (0: broadcast). */
typedef struct where_geom {
    int nd;
    int64_t shape[TG_MAX_DIMS];
    int64_t stride[3][TG_MAX_DIMS];   /* cond, a, b */
} where_geom;

/* Output dims of broadcasting t into n dims; false when some dim conflicts. */
static bool bcast_into(const tg_tensor *t, int n, int64_t *shape) {
    for (int i = 0; i < t->ndim; i++) {
        int o = i + n - t->ndim;
        int64_t d = t->shape[i];
        if (shape[o] == 1) shape[o] = d;
        else if (d != 1 && d != shape[o]) return false;
    }
    return true;
}

static void strides_of(const tg_tensor *t, const where_geom *g, int64_t *st) {
    int64_t s = 1;
    for (int i = g->nd - 1; i >= 0; i--) {
        int it = i - (g->nd - t->ndim);
        int64_t d = it >= 0 ? t->shape[it] : 1;
        st[i] = (d == g->shape[i] && d != 1) ? s : 0;
        s *= d;
    }
}

static void geom_of(tg_tensor *const *in, int nd, const int64_t *shape, where_geom *g) {
    g->nd = nd;
    memcpy(g->shape, shape, (size_t)nd * sizeof *shape);
    for (int k = 0; k < 3; k++) strides_of(in[k], g, g->stride[k]);
}

/* ---- infer -------------------------------------------------------------------------------- */
static int where_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                       tg_desc *out) {
    (void)n_in;
    (void)attr;
    const tg_tensor *cond = in[0], *a = in[1], *b = in[2];
    if (tg_check_float_pair(tp, "where", a, b)) return -1;
    char sc[160], sa[160], sb[160];
    if (!tg__is_float(cond->dtype) && cond->dtype != TG_I32)
        return tg_fail(tp, TG_ERR_DTYPE, "where", "cond must be float or int32: got %s %s",
                       tg_dtype_name(cond->dtype), tg_shape_str(cond, sc, sizeof sc));
    int nd = cond->ndim;
    if (a->ndim > nd) nd = a->ndim;
    if (b->ndim > nd) nd = b->ndim;
    int64_t shape[TG_MAX_DIMS];
    for (int i = 0; i < nd; i++) shape[i] = 1;
    if (!bcast_into(cond, nd, shape) || !bcast_into(a, nd, shape) || !bcast_into(b, nd, shape))
        return tg_fail(tp, TG_ERR_SHAPE, "where", "shapes do not broadcast: cond %s, a %s, b %s",
                       tg_shape_str(cond, sc, sizeof sc), tg_shape_str(a, sa, sizeof sa),
                       tg_shape_str(b, sb, sizeof sb));
    /* every output dim is some input's dim, but their product may still overflow */
    int64_t numel = 1;
    for (int i = 0; i < nd; i++)
        if (__builtin_mul_overflow(numel, shape[i], &numel) ||
            numel > INT64_MAX / (int64_t)sizeof(double))
            return tg_fail(tp, TG_ERR_SHAPE, "where", "output too large: cond %s, a %s, b %s",
                           tg_shape_str(cond, sc, sizeof sc), tg_shape_str(a, sa, sizeof sa),
                           tg_shape_str(b, sb, sizeof sb));
    out->dtype = a->dtype;
    out->ndim = nd;
    memcpy(out->shape, shape, (size_t)nd * sizeof *shape);
    return 0;
}

/* ---- kernels -------------------------------------------------------------------------------- *
 * The output is walked as rows along its last axis (an odometer over the other
 * axes moves the three input offsets once per row); inside a row each input
 * has a stride of 0 or 1. A condition that is constant along the row (the
 * usual [N, 1] mask) makes the row a plain copy of a's or b's row. */
typedef struct row_walk {
    const where_geom *g;
    int64_t idx[TG_MAX_DIMS], off[3];   /* position of the current row */
    int64_t n, st[3];                   /* row length, inner strides   */
} row_walk;

static void walk_start(row_walk *w, const where_geom *g) {
    memset(w, 0, sizeof *w);
    w->g = g;
    int last = g->nd - 1;
    w->n = g->nd ? g->shape[last] : 1;
    for (int k = 0; k < 3; k++) w->st[k] = g->nd ? g->stride[k][last] : 0;
}

/* to the next row: the odometer over every axis but the last */
static void walk_next(row_walk *w) {
    const where_geom *g = w->g;
    for (int d = g->nd - 2; d >= 0; d--) {
        for (int k = 0; k < 3; k++) w->off[k] += g->stride[k][d];
        if (++w->idx[d] < g->shape[d]) return;
        for (int k = 0; k < 3; k++) w->off[k] -= g->stride[k][d] * g->shape[d];
        w->idx[d] = 0;
    }
}

static bool truth(const tg_tensor *cond, int64_t i) {
    switch (cond->dtype) {
    case TG_F32: return ((const float *)cond->data)[i] != 0;
    case TG_F64: return ((const double *)cond->data)[i] != 0;
    default: return ((const int32_t *)cond->data)[i] != 0;
    }
}

/* keep[j] = cond true at element j of the row (cond's inner stride is 1) */
static void row_truth(const tg_tensor *cond, const row_walk *w, bool *keep) {
    for (int64_t j = 0; j < w->n; j++) keep[j] = truth(cond, w->off[0] + j);
}

/* A cond constant along the row (stride 0): the row is a copy of one side. */
#define WHERE_LOOPS(T)                                                                           \
    static void where_fwd_##T(const where_geom *g, const tg_tensor *cond, const T *A,           \
                              const T *B, T *Y, int64_t numel, bool *keep) {                     \
        row_walk w;                                                                              \
        walk_start(&w, g);                                                                       \
        for (int64_t r = 0; w.n && r < numel / w.n; r++, walk_next(&w)) {                        \
            const T *a = A + w.off[1], *b = B + w.off[2];                                        \
            T *y = Y + r * w.n;                                                                  \
            if (w.st[0] == 0) {                                                                  \
                bool t = truth(cond, w.off[0]);                                                  \
                const T *src = t ? a : b;                                                        \
                int64_t ss = t ? w.st[1] : w.st[2];                                              \
                for (int64_t j = 0; j < w.n; j++) y[j] = src[j * ss];                            \
                continue;                                                                        \
            }                                                                                    \
            row_truth(cond, &w, keep);                                                           \
            for (int64_t j = 0; j < w.n; j++) y[j] = keep[j] ? a[j * w.st[1]] : b[j * w.st[2]];  \
        }                                                                                        \
    }                                                                                            \
    /* side 1: da (+)= cond ? dy : 0;  side 2: db (+)= cond ? 0 : dy. fresh: DX is as large as  \
     * the output (every element written once) and uninitialised: written, not accumulated */  \
    static void where_vjp_##T(const where_geom *g, const tg_tensor *cond, const T *DY, T *DX,   \
                              int side, int64_t numel, bool fresh, bool *keep) {                 \
        row_walk w;                                                                              \
        walk_start(&w, g);                                                                       \
        bool want = side == 1;                                                                   \
        for (int64_t r = 0; w.n && r < numel / w.n; r++, walk_next(&w)) {                        \
            const T *dy = DY + r * w.n;                                                          \
            T *dx = DX + w.off[side];                                                            \
            int64_t sx = w.st[side];                                                             \
            bool whole = w.st[0] == 0, t = whole && truth(cond, w.off[0]) == want;               \
            if (!whole) row_truth(cond, &w, keep);                                               \
            if (fresh && whole)                                                                  \
                for (int64_t j = 0; j < w.n; j++) dx[j] = t ? dy[j] : 0;                         \
            else if (fresh)                                                                      \
                for (int64_t j = 0; j < w.n; j++) dx[j] = keep[j] == want ? dy[j] : 0;           \
            else if (whole && t)                                                                 \
                for (int64_t j = 0; j < w.n; j++) dx[j * sx] += dy[j];                           \
            else if (!whole)                                                                     \
                for (int64_t j = 0; j < w.n; j++)                                                \
                    if (keep[j] == want) dx[j * sx] += dy[j];                                    \
        }                                                                                        \
    }
WHERE_LOOPS(float)
WHERE_LOOPS(double)

/* The geometry of node n, and *keep: one bool per element of a row (arena),
 * needed only when cond varies along rows (else NULL). -1 when out of memory. */
static int where_setup(tg_node *n, where_geom *g, bool **keep) {
    geom_of(n->in, n->out->ndim, n->out->shape, g);
    *keep = NULL;
    if (!g->nd || g->stride[0][g->nd - 1] == 0) return 0;
    *keep = tg_tape_alloc(n->tape, (size_t)g->shape[g->nd - 1] + 1);
    return *keep ? 0 : -1;
}

static int where_forward(tg_node *n) {
    tg_tensor *y = n->out;
    where_geom g;
    bool *keep;
    if (where_setup(n, &g, &keep) != 0) return -1;
    if (y->dtype == TG_F32)
        where_fwd_float(&g, n->in[0], n->in[1]->data, n->in[2]->data, y->data, y->numel, keep);
    else
        where_fwd_double(&g, n->in[0], n->in[1]->data, n->in[2]->data, y->data, y->numel, keep);
    return 0;
}

static int where_vjp(tg_node *n) {
    tg_tensor *y = n->out;
    where_geom g;
    bool *keep;
    if (where_setup(n, &g, &keep) != 0) return -1;
    for (int side = 1; side <= 2; side++) {
        bool fresh;
        void *dx = tg_input_grad_fresh(n, side, &fresh);
        if (!dx) continue;
        size_t es = tg_dtype_size(y->dtype);
        if (fresh && n->in[side]->numel != y->numel) {   /* broadcast: accumulate from zero */
            memset(dx, 0, (size_t)n->in[side]->numel * es);
            fresh = false;
        }
        if (y->dtype == TG_F32)
            where_vjp_float(&g, n->in[0], tg_output_grad(n), dx, side, y->numel, fresh, keep);
        else
            where_vjp_double(&g, n->in[0], tg_output_grad(n), dx, side, y->numel, fresh, keep);
    }
    return 0;
}

/* For tg_grad (both forms): da = where(c, dy, 0), db = where(c, 0, dy), each
 * summed back to its input's shape; the condition gets none. */
static int where_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    tg_tape *tp = n->tape;
    tg_tensor *c = n->in[0], *zero = tg_tape_tensor(tp, g->dtype, 0, NULL);
    if (want[1]) dx[1] = tg__gg_sum_to(tp, tg_where(tp, c, g, zero), n->in[1]);
    if (want[2]) dx[2] = tg__gg_sum_to(tp, tg_where(tp, c, zero, g), n->in[2]);
    return 0;
}

static const tg_op where_rows_op = {.name = "where", .n_in = 3, .infer = where_infer,
                                    .forward = where_forward, .vjp = where_vjp,
                                    .vjp_graph = where_vjp_graph};

/* ---- cond of the output's dtype: block kernels ------------------------------------------- *
 * y = c != 0 ? a : b;  input 1: da (=|+=) c != 0 ? dy : 0;  input 2: db the other way;
 * input 0 (cond, when a caller made it require grad): zero. Selections, no products. */
#define WHERE_KERNELS(T)                                                                         \
    TG_SIMD_CLONES static TG_EW_FWD_KERNEL(where_fwd_##T##_blk) {                               \
        const T *C = xs[0], *A = xs[1], *B = xs[2];                                              \
        T *restrict Y = ys;                                                                      \
        (void)attr;                                                                              \
        TG_EW_FOR(i, n) Y[i] = C[i] != 0 ? A[i] : B[i];                                          \
    }                                                                                            \
    TG_SIMD_CLONES static TG_EW_VJP_KERNEL(where_vjp_##T##_blk) {                               \
        const T *C = xs[0], *DY = dys;                                                           \
        T *restrict DX = dxs;                                                                    \
        (void)ys;                                                                                \
        (void)attr;                                                                              \
        bool want = k == 1;                                                                      \
        if (k == 0 && !acc) TG_EW_FOR(i, n) DX[i] = 0;                                           \
        if (k == 0) return;                                                                      \
        if (acc)                                                                                 \
            TG_EW_FOR(i, n) DX[i] += (C[i] != 0) == want ? DY[i] : 0;                            \
        else                                                                                     \
            TG_EW_FOR(i, n) DX[i] = (C[i] != 0) == want ? DY[i] : 0;                             \
    }
TG_STAMP_FLOAT(WHERE_KERNELS)

/* reads its inputs (the cond); cheap to recompute; no gradient is handed on as is */
static const tg_eltwise where_kernels = {{where_fwd_float_blk, where_fwd_double_blk},
                                         {where_vjp_float_blk, where_vjp_double_blk},
                                         TG_NEEDS_X, 0, true};
static const tg_op where_op = {.name = "where", .n_in = 3, .infer = where_infer,
                               .forward = tg_eltwise_forward, .vjp = tg_eltwise_vjp,
                               .eltwise = &where_kernels, .vjp_graph = where_vjp_graph};

tg_tensor *tg_where(tg_tape *tp, tg_tensor *cond, tg_tensor *a, tg_tensor *b) {
    bool blocks = cond && a && cond->dtype == a->dtype;   /* else tg_apply reports NULLs */
    return tg_apply(tp, blocks ? &where_op : &where_rows_op, 3, (tg_tensor *[]){cond, a, b},
                    NULL);
}
