/* ops/reduce.c - sums, means and maxima over all elements or along one axis.
 *
 * x is viewed as [O, L, I] around the reduced axis (O: the dims before it,
 * L: its length, I: the dims after it; all elements: [1, numel, 1]), and y
 * as [O, I]. keepdim keeps the axis as size 1, which does not move any data.
 *   sum:  y[o,i] = sum_k x[o,k,i]             dx[o,k,i] += dy[o,i]
 *   mean: y[o,i] = sum_k x[o,k,i] / L         dx[o,k,i] += dy[o,i] / L
 *   max:  y[o,i] = x[o,k*,i], k* the first maximal k, kept in node scratch
 *                                             dx[o,k*,i] += dy[o,i]
 * sum and mean over everything give a 0-dim tensor (ndim 0, numel 1).
 * Like PyTorch, the mean of nothing is NaN and a NaN is maximal. */
#include "kernels.h"

#include <math.h>
#include <string.h>

typedef struct reduce_attr {
    int axis;
    bool keepdim;
    bool all;       /* reduce every element: sum, mean */
} reduce_attr;

/* Only called after infer accepted the axis. */
static tg_geom geom_of(const tg_tensor *x, const reduce_attr *at) {
    return at->all ? tg_geom_all(x) : tg_geom_around(x, tg__axis(at->axis, x->ndim));
}

/* ---- infer ----------------------------------------------------------------------------- */
static int reduce_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                        tg_desc *out) {
    (void)n_in;
    const char *op = tp->current_op;
    const reduce_attr *at = attr;
    const tg_tensor *x = in[0];
    if (tg_check_float(tp, op, x)) return -1;
    out->dtype = x->dtype;
    out->ndim = 0;
    if (at->all) return 0;
    int ax = tg__axis(at->axis, x->ndim);
    char s[160];
    if (ax < 0)
        return tg_fail(tp, TG_ERR_AXIS, op, "axis %d out of range for %s", at->axis,
                       tg_shape_str(x, s, sizeof s));
    for (int i = 0; i < x->ndim; i++) {
        if (i != ax)
            out->shape[out->ndim++] = x->shape[i];
        else if (at->keepdim)
            out->shape[out->ndim++] = 1;
    }
    return 0;
}

/* max has no value to give for an empty axis (sum and mean do: 0 and NaN). */
static int max_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                     tg_desc *out) {
    if (reduce_infer(tp, n_in, in, attr, out)) return -1;
    const reduce_attr *at = attr;
    const tg_tensor *x = in[0];
    char s[160];
    if (x->shape[tg__axis(at->axis, x->ndim)] == 0)
        return tg_fail(tp, TG_ERR_SHAPE, "max_axis", "axis %d is empty: %s", at->axis,
                       tg_shape_str(x, s, sizeof s));
    return 0;
}

/* ---- kernels ----------------------------------------------------------------------------- */
/* Loops are cut for GCC's -O2 vectoriser (see ops/kernels.c): a body of a
 * multiple of TG_VEC plus a tail, restrict outputs, one loop per non-inlined
 * function. A last-axis row (I == 1) is summed by tg__ew_sum (TG_VEC double
 * partial sums: vectorisable and accurate in float32); otherwise the I-wide
 * rows are added into y elementwise. */
#define REDUCE_KERNELS(T)                                                                        \
    /* y[i] += s * x[i] */                                                                       \
    static __attribute__((noinline)) void axpy_##T(T *restrict y, const T *x, T s, int64_t n) {  \
        int64_t i = 0, body = tg_vec_body(n);                                                    \
        for (; i < body; i++) y[i] += s * x[i];                                                  \
        for (; i < n; i++) y[i] += s * x[i];                                                     \
    }                                                                                            \
    static void sum_fwd_##T(const T *X, T *Y, tg_geom g, double scale, int nt) {                 \
        (void)nt;                                                                                \
        TG_OMP_FOR_NT                                                                            \
        for (int64_t o = 0; o < g.outer; o++) {                                                  \
            const T *xo = X + o * g.len * g.inner;                                               \
            T *yo = Y + o * g.inner;                                                             \
            if (g.inner == 1) {                                                                  \
                yo[0] = (T)(tg__ew_sum(TG_DTYPE_OF(T), xo, g.len) * scale);                      \
                continue;                                                                        \
            }                                                                                    \
            for (int64_t i = 0; i < g.inner; i++) yo[i] = 0;                                     \
            for (int64_t k = 0; k < g.len; k++) axpy_##T(yo, xo + k * g.inner, 1, g.inner);      \
            if (scale != 1)                                                                      \
                for (int64_t i = 0; i < g.inner; i++) yo[i] = (T)(yo[i] * scale);                \
        }                                                                                        \
    }                                                                                            \
    /* y[i] += c */                                                                              \
    static __attribute__((noinline)) void add_const_##T(T *restrict y, T c, int64_t n) {         \
        int64_t i = 0, body = tg_vec_body(n);                                                    \
        for (; i < body; i++) y[i] += c;                                                         \
        for (; i < n; i++) y[i] += c;                                                            \
    }                                                                                            \
    /* y[i] = s * x[i] */                                                                        \
    static __attribute__((noinline)) void scale_to_##T(T *restrict y, const T *x, T s,           \
                                                       int64_t n) {                              \
        int64_t i = 0, body = tg_vec_body(n);                                                    \
        for (; i < body; i++) y[i] = s * x[i];                                                   \
        for (; i < n; i++) y[i] = s * x[i];                                                      \
    }                                                                                            \
    /* fresh: DX is uninitialised and is written (=), else added into */                         \
    static void sum_vjp_##T(const T *DY, T *DX, tg_geom g, double scale, bool fresh, int nt) {   \
        (void)nt;                                                                                \
        TG_OMP_FOR_NT                                                                            \
        for (int64_t o = 0; o < g.outer; o++) {                                                  \
            T *dxo = DX + o * g.len * g.inner;                                                   \
            if (g.inner == 1) {                                                                  \
                T c = (T)(DY[o] * scale);                                                        \
                if (fresh)                                                                       \
                    tg__ew_fill(TG_DTYPE_OF(T), dxo, c, g.len);                                  \
                else                                                                             \
                    add_const_##T(dxo, c, g.len);                                                \
                continue;                                                                        \
            }                                                                                    \
            for (int64_t k = 0; k < g.len; k++)                                                  \
                if (fresh)                                                                       \
                    scale_to_##T(dxo + k * g.inner, DY + o * g.inner, (T)scale, g.inner);        \
                else                                                                             \
                    axpy_##T(dxo + k * g.inner, DY + o * g.inner, (T)scale, g.inner);            \
        }                                                                                        \
    }                                                                                            \
    /* ARG may be NULL (nothing recorded: no gradient will ask for it). */                       \
    static void max_fwd_##T(const T *X, T *Y, int64_t *ARG, tg_geom g) {                         \
        for (int64_t o = 0; o < g.outer; o++) {                                                  \
            const T *xo = X + o * g.len * g.inner;                                               \
            T *yo = Y + o * g.inner;                                                             \
            int64_t *ao = ARG ? ARG + o * g.inner : NULL;                                        \
            for (int64_t i = 0; i < g.inner; i++) yo[i] = xo[i];                                 \
            if (ao)                                                                              \
                for (int64_t i = 0; i < g.inner; i++) ao[i] = 0;                                 \
            for (int64_t k = 1; k < g.len; k++)                                                  \
                for (int64_t i = 0; i < g.inner; i++) {                                          \
                    T v = xo[k * g.inner + i];                                                   \
                    /* strict >: ties keep the first; the first NaN wins */                      \
                    if (v > yo[i] || (isnan(v) && !isnan(yo[i]))) {                              \
                        yo[i] = v;                                                               \
                        if (ao) ao[i] = k;                                                       \
                    }                                                                            \
                }                                                                                \
        }                                                                                        \
    }                                                                                            \
    static void max_vjp_##T(const T *DY, T *DX, const int64_t *ARG, tg_geom g) {                 \
        for (int64_t o = 0; o < g.outer; o++)                                                    \
            for (int64_t i = 0; i < g.inner; i++) {                                              \
                int64_t at = o * g.inner + i;                                                    \
                DX[(o * g.len + ARG[at]) * g.inner + i] += DY[at];                               \
            }                                                                                    \
    }

TG_STAMP_FLOAT(REDUCE_KERNELS)

/* ---- forward and vjp ------------------------------------------------------------------------ */
static double mean_scale(tg_geom g) { return g.len > 0 ? 1.0 / (double)g.len : NAN; }

static int sum_scaled_forward(tg_node *n, bool mean) {
    tg_tensor *x = n->in[0], *y = n->out;
    tg_geom g = geom_of(x, n->attr);
    double scale = mean ? mean_scale(g) : 1.0;
    int nt = g.outer > 1 ? tg_threads_for(n->tape, x->numel) : 1;   /* outer lines apart */
    TG_BY_DTYPE(x->dtype, sum_fwd, x->data, y->data, g, scale, nt);
    return 0;
}

/* A fresh gradient (nothing accumulated into it yet) is written, not
 * zero-filled and then added into: one pass over dx instead of two. */
static int sum_scaled_vjp(tg_node *n, bool mean) {
    tg_tensor *x = n->in[0];
    bool fresh;
    void *dx = tg_input_grad_fresh(n, 0, &fresh);
    if (!dx) return 0;
    tg_geom g = geom_of(x, n->attr);
    double scale = mean ? mean_scale(g) : 1.0;
    int nt = g.outer > 1 ? tg_threads_for(n->tape, x->numel) : 1;
    TG_BY_DTYPE(x->dtype, sum_vjp, tg_output_grad(n), dx, g, scale, fresh, nt);
    return 0;
}

static int sum_forward(tg_node *n) { return sum_scaled_forward(n, false); }
static int sum_vjp(tg_node *n) { return sum_scaled_vjp(n, false); }
static int mean_forward(tg_node *n) { return sum_scaled_forward(n, true); }
static int mean_vjp(tg_node *n) { return sum_scaled_vjp(n, true); }

/* The argmax is only kept when the op is recorded (tg_apply marks the output). */
static int max_forward(tg_node *n) {
    tg_tensor *x = n->in[0], *y = n->out;
    tg_geom g = geom_of(x, n->attr);
    int64_t *arg = NULL;
    if (y->requires_grad) {
        arg = tg_node_scratch(n, (size_t)(g.outer * g.inner) * sizeof *arg);
        if (!arg) return -1;
    }
    TG_BY_DTYPE(x->dtype, max_fwd, x->data, y->data, arg, g);
    return 0;
}

static int max_vjp(tg_node *n) {
    tg_tensor *x = n->in[0];
    void *dx = tg_input_grad(n, 0);
    if (!dx) return 0;
    tg_geom g = geom_of(x, n->attr);
    TG_BY_DTYPE(x->dtype, max_vjp, tg_output_grad(n), dx, n->scratch, g);
    return 0;
}

/* ---- as ops, for tg_grad (op.h's vjp_graph) ------------------------------------------------
 * dx = dy put back along the reduced axis (reshaped to keepdim, then
 * broadcast), / L for a mean, and only at the argmax for max (a constant
 * one-hot from the node's scratch). */
static tg_tensor *dy_kept(tg_tape *tp, tg_tensor *g, const tg_tensor *x, const reduce_attr *at) {
    if (at->all || at->keepdim) return g;
    int64_t shape[TG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[tg__axis(at->axis, x->ndim)] = 1;
    return tg_reshape(tp, g, x->ndim, shape);
}

static int sum_scaled_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx,
                                bool mean) {
    tg_tensor *x = n->in[0];
    if (!want[0]) return 0;
    tg_tensor *e = tg__gg_expand(n->tape, dy_kept(n->tape, g, x, n->attr), x);
    dx[0] = mean ? tg_scale(n->tape, e, mean_scale(geom_of(x, n->attr))) : e;
    return 0;
}
static int sum_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    return sum_scaled_vjp_graph(n, g, want, dx, false);
}
static int mean_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    return sum_scaled_vjp_graph(n, g, want, dx, true);
}

static int max_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    tg_tensor *x = n->in[0];
    if (!want[0]) return 0;
    tg_geom gm = geom_of(x, n->attr);
    const int64_t *arg = n->scratch;
    tg_tensor *hot = tg__gg_zeros(n->tape, x->dtype, x->ndim, x->shape);
    for (int64_t o = 0; hot && o < gm.outer; o++)
        for (int64_t i = 0; i < gm.inner; i++)
            tg_tensor_set(hot, (o * gm.len + arg[o * gm.inner + i]) * gm.inner + i, 1.0);
    dx[0] = tg_mul(n->tape, hot, dy_kept(n->tape, g, x, n->attr));
    return 0;
}

/* ---- descriptors and public wrappers -------------------------------------------------------- */
static const tg_op sum_op = {.name = "sum", .n_in = 1, .attr_size = sizeof(reduce_attr),
                             .infer = reduce_infer, .forward = sum_forward, .vjp = sum_vjp,
                             .vjp_graph = sum_vjp_graph};
static const tg_op mean_op = {.name = "mean", .n_in = 1, .attr_size = sizeof(reduce_attr),
                              .infer = reduce_infer, .forward = mean_forward, .vjp = mean_vjp,
                              .vjp_graph = mean_vjp_graph};
static const tg_op sum_axis_op = {.name = "sum_axis", .n_in = 1,
                                  .attr_size = sizeof(reduce_attr), .infer = reduce_infer,
                                  .forward = sum_forward, .vjp = sum_vjp,
                                  .vjp_graph = sum_vjp_graph};
static const tg_op mean_axis_op = {.name = "mean_axis", .n_in = 1,
                                   .attr_size = sizeof(reduce_attr), .infer = reduce_infer,
                                   .forward = mean_forward, .vjp = mean_vjp,
                                   .vjp_graph = mean_vjp_graph};
static const tg_op max_axis_op = {.name = "max_axis", .n_in = 1,
                                  .attr_size = sizeof(reduce_attr), .infer = max_infer,
                                  .forward = max_forward, .vjp = max_vjp,
                                  .vjp_graph = max_vjp_graph};

static tg_tensor *reduce(tg_tape *tp, const tg_op *op, tg_tensor *x, int axis, bool keepdim,
                         bool all) {
    reduce_attr at = {axis, keepdim, all};
    return tg_apply(tp, op, 1, &x, &at);
}

tg_tensor *tg_sum(tg_tape *tp, tg_tensor *x) { return reduce(tp, &sum_op, x, 0, false, true); }
tg_tensor *tg_mean(tg_tape *tp, tg_tensor *x) { return reduce(tp, &mean_op, x, 0, false, true); }
tg_tensor *tg_sum_axis(tg_tape *tp, tg_tensor *x, int axis, bool keepdim) {
    return reduce(tp, &sum_axis_op, x, axis, keepdim, false);
}
tg_tensor *tg_mean_axis(tg_tape *tp, tg_tensor *x, int axis, bool keepdim) {
    return reduce(tp, &mean_axis_op, x, axis, keepdim, false);
}
tg_tensor *tg_max_axis(tg_tape *tp, tg_tensor *x, int axis, bool keepdim) {
    return reduce(tp, &max_axis_op, x, axis, keepdim, false);
}
