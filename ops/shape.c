/* ops/shape.c - ops that move data without changing it.
 *
 *   concat     n tensors equal except along axis -> joined along axis
 *   slice      x[..., start:stop, ...] along one axis (split is n slices)
 *   reshape    same data, new shape (a view: the output shares x's data)
 *   transpose  two axes swapped;  permute  out axis i = x axis perm[i]
 *
 * Every VJP is the inverse data movement, accumulated: dx += move^-1(dy).
 * Around an axis a tensor is seen as [O, L, I] (O: dims before it, L: its
 * length, I: dims after it), so a block of L*I elements per o is contiguous:
 * concat and slice copy one such block (or its sub-range) per o with memcpy.
 * Along the last axis of [B, 4H] (the LSTM gates) that is one memcpy per row.
 * Copies, not views, for everything but reshape; views are a later item.
 * These ops accept any dtype (int32 ids can be reshaped and joined too);
 * gradients only ever reach float tensors. */
#include "kernels.h"

#include <string.h>

/* ---- shared helpers ------------------------------------------------------------------------ */
/* d[d_off + i] += s[s_off + i], i < n (float dtypes; gradients only ever reach those). */
static void add_block(tg_dtype dt, void *d, int64_t d_off, const void *s, int64_t s_off,
                      int64_t n) {
    if (tg__is_float(dt)) tg__ew_add(dt, tg__at(dt, d, d_off), tg__at(dt, s, s_off), n);
}

/* n elements of any dtype from s + s_off to d + d_off. */
static void copy_block(tg_dtype dt, void *d, int64_t d_off, const void *s, int64_t s_off,
                       int64_t n) {
    size_t es = tg_dtype_size(dt);
    tg__ew_copy(dt, (char *)d + (size_t)d_off * es, (const char *)s + (size_t)s_off * es, n);
}

/* ---- concat ------------------------------------------------------------------------------- */
typedef struct concat_attr { int axis; } concat_attr;

static bool same_except(const tg_tensor *a, const tg_tensor *b, int ax) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (d != ax && a->shape[d] != b->shape[d]) return false;
    return true;
}

static int concat_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                        tg_desc *out) {
    const concat_attr *at = attr;
    const tg_tensor *x0 = in[0];
    char s0[160], si[160];
    int ax = tg__axis(at->axis, x0->ndim);
    if (ax < 0)
        return tg_fail(tp, TG_ERR_AXIS, "concat", "axis %d out of range for %s", at->axis,
                       tg_shape_str(x0, s0, sizeof s0));
    int64_t total = 0;
    for (int i = 0; i < n_in; i++) {
        const tg_tensor *xi = in[i];
        bool dtype_ok = xi->dtype == x0->dtype, shape_ok = same_except(x0, xi, ax);
        if (!dtype_ok || !shape_ok) { /* shapes are formatted only here, off the hot path */
            tg_shape_str(x0, s0, sizeof s0);
            tg_shape_str(xi, si, sizeof si);
        }
        if (!dtype_ok)
            return tg_fail(tp, TG_ERR_DTYPE, "concat",
                           "dtypes differ: input 0 is %s %s, input %d is %s %s",
                           tg_dtype_name(x0->dtype), s0, i, tg_dtype_name(xi->dtype), si);
        if (!shape_ok)
            return tg_fail(tp, TG_ERR_SHAPE, "concat",
                           "shapes differ outside axis %d: input 0 is %s, input %d is %s", at->axis,
                           s0, i, si);
        /* inputs are at most 2^40 long, but there may be very many of them */
        if (__builtin_add_overflow(total, xi->shape[ax], &total))
            return tg_fail(tp, TG_ERR_SHAPE, "concat", "axis %d of the result overflows: %d inputs",
                           at->axis, n_in);
    }
    out->dtype = x0->dtype;
    out->ndim = x0->ndim;
    memcpy(out->shape, x0->shape, sizeof out->shape);
    out->shape[ax] = total;
    return 0;
}

/* y is [O, sum_i L_i * I]; input i fills the columns [off_i, off_i + L_i * I) of each row. */
static int concat_forward(tg_node *n) {
    tg_tensor *y = n->out;
    int ax = tg__axis(((const concat_attr *)n->attr)->axis, y->ndim);
    tg_geom g = tg_geom_around(y, ax);
    int64_t row = g.len * g.inner, off = 0;
    for (int i = 0; i < n->n_in; i++) {
        const tg_tensor *x = n->in[i];
        int64_t blk = x->shape[ax] * g.inner;
        for (int64_t o = 0; o < g.outer; o++)
            copy_block(y->dtype, y->data, o * row + off, x->data, o * blk, blk);
        off += blk;
    }
    return 0;
}

static int concat_vjp(tg_node *n) {
    tg_tensor *y = n->out;
    int ax = tg__axis(((const concat_attr *)n->attr)->axis, y->ndim);
    const void *dy = tg_output_grad(n);
    tg_geom g = tg_geom_around(y, ax);
    int64_t row = g.len * g.inner, off = 0;
    for (int i = 0; i < n->n_in; i++) {
        int64_t blk = n->in[i]->shape[ax] * g.inner;
        bool fresh;
        void *dx = tg_input_grad_fresh(n, i, &fresh);
        for (int64_t o = 0; dx && o < g.outer; o++) {
            if (fresh) /* first gradient of input i: its block of dy, as is */
                copy_block(y->dtype, dx, o * blk, dy, o * row + off, blk);
            else
                add_block(y->dtype, dx, o * blk, dy, o * row + off, blk);
        }
        off += blk;
    }
    return 0;
}

/* For tg_grad: dx_i is input i's slice of dy along the axis. */
static int concat_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    const concat_attr *at = n->attr;
    int ax = tg__axis(at->axis, n->out->ndim);
    int64_t off = 0;
    for (int i = 0; i < n->n_in; i++) {
        int64_t len = n->in[i]->shape[ax];
        if (want[i]) dx[i] = tg_slice(n->tape, g, ax, off, off + len);
        off += len;
    }
    return 0;
}

static const tg_op concat_op = {.name = "concat", .n_in = TG_VARIADIC,
                                .attr_size = sizeof(concat_attr), .infer = concat_infer,
                                .forward = concat_forward, .vjp = concat_vjp,
                                .vjp_graph = concat_vjp_graph};

tg_tensor *tg_concat(tg_tape *tp, int n, tg_tensor *const *xs, int axis) {
    concat_attr at = {axis};
    return tg_apply(tp, &concat_op, n, xs, &at);
}

/* ---- slice (and split) ---------------------------------------------------------------------- */
typedef struct slice_attr {
    int axis;
    int64_t start, stop;     /* as given: negative counts from the end */
} slice_attr;

/* Axis and range [lo, hi) in x's own terms; only called after infer accepted them. */
static int slice_range(const tg_tensor *x, const slice_attr *at, int64_t *lo, int64_t *hi) {
    int ax = tg__axis(at->axis, x->ndim);
    int64_t len = ax < 0 ? 0 : x->shape[ax];
    *lo = at->start < 0 ? at->start + len : at->start;
    *hi = at->stop < 0 ? at->stop + len : at->stop;
    return ax;
}

static int slice_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                       tg_desc *out) {
    (void)n_in;
    const slice_attr *at = attr;
    const tg_tensor *x = in[0];
    char s[160];
    int64_t lo, hi;
    int ax = slice_range(x, at, &lo, &hi);
    if (ax < 0)
        return tg_fail(tp, TG_ERR_AXIS, "slice", "axis %d out of range for %s", at->axis,
                       tg_shape_str(x, s, sizeof s));
    int64_t len = x->shape[ax];
    if (lo < 0 || lo > len || hi < 0 || hi > len)
        return tg_fail(tp, TG_ERR_INDEX, "slice", "range %lld:%lld out of bounds for axis %d of %s",
                       (long long)at->start, (long long)at->stop, at->axis,
                       tg_shape_str(x, s, sizeof s));
    if (lo >= hi)
        return tg_fail(tp, TG_ERR_INDEX, "slice", "empty range %lld:%lld along axis %d of %s",
                       (long long)at->start, (long long)at->stop, at->axis,
                       tg_shape_str(x, s, sizeof s));
    out->dtype = x->dtype;
    out->ndim = x->ndim;
    memcpy(out->shape, x->shape, sizeof out->shape);
    out->shape[ax] = hi - lo;
    return 0;
}

/* x is [O, L, I], y is [O, hi-lo, I]: one contiguous block of (hi-lo)*I per o. */
static int slice_forward(tg_node *n) {
    tg_tensor *x = n->in[0], *y = n->out;
    int64_t lo, hi;
    int ax = slice_range(x, n->attr, &lo, &hi);
    tg_geom g = tg_geom_around(x, ax);
    int64_t blk = (hi - lo) * g.inner;
    for (int64_t o = 0; o < g.outer; o++)
        copy_block(x->dtype, y->data, o * blk, x->data, (o * g.len + lo) * g.inner, blk);
    return 0;
}

static int slice_vjp(tg_node *n) {
    tg_tensor *x = n->in[0];
    void *dx = tg_input_grad(n, 0);
    if (!dx) return 0;
    int64_t lo, hi;
    int ax = slice_range(x, n->attr, &lo, &hi);
    tg_geom g = tg_geom_around(x, ax);
    int64_t blk = (hi - lo) * g.inner;
    for (int64_t o = 0; o < g.outer; o++)
        add_block(x->dtype, dx, (o * g.len + lo) * g.inner, tg_output_grad(n), o * blk, blk);
    return 0;
}

/* Seen as matrices [rows, last dim]: a slice of the last axis is a block of
 * columns; a slice of an axis with only size-1 dims before it is a block of
 * rows (the time steps t*B.. of a [T*B, 4H] projection). */
static bool slice_window(const tg_tensor *x, const void *attr, const tg_desc *out,
                         tg_window *w) {
    (void)out;
    int64_t lo, hi;
    int ax = slice_range(x, attr, &lo, &hi);
    *w = (tg_window){0, 0};
    if (ax == x->ndim - 1) {
        w->col0 = lo;
        return true;
    }
    if (tg__numel(ax, x->shape) != 1) return false;
    w->row0 = lo * tg__numel(x->ndim - ax - 2, x->shape + ax + 1);
    return true;
}

/* For tg_grad: dy with zeros joined on both sides along the axis. */
static int slice_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    tg_tensor *x = n->in[0];
    if (!want[0]) return 0;
    int64_t lo, hi, shape[TG_MAX_DIMS];
    int ax = slice_range(x, n->attr, &lo, &hi), k = 0;
    tg_tensor *parts[3];
    memcpy(shape, x->shape, sizeof shape);
    shape[ax] = lo;
    if (lo > 0) parts[k++] = tg_tape_tensor(n->tape, x->dtype, x->ndim, shape);
    parts[k++] = g;
    shape[ax] = x->shape[ax] - hi;
    if (shape[ax] > 0) parts[k++] = tg_tape_tensor(n->tape, x->dtype, x->ndim, shape);
    dx[0] = k == 1 ? g : tg_concat(n->tape, k, parts, ax);
    return 0;
}

static const tg_op slice_op = {.name = "slice", .n_in = 1, .attr_size = sizeof(slice_attr),
                               .infer = slice_infer, .forward = slice_forward, .vjp = slice_vjp,
                               .window = slice_window, .vjp_graph = slice_vjp_graph};

tg_tensor *tg_slice(tg_tape *tp, tg_tensor *x, int axis, int64_t start, int64_t stop) {
    slice_attr at = {axis, start, stop};
    return tg_apply(tp, &slice_op, 1, &x, &at);
}

/* Everything split can get wrong, checked before any slice is taken. */
static tg_status split_check(tg_tape *tp, const tg_tensor *x, int axis, int n,
                             const int64_t *sizes, tg_tensor **outs) {
    char s[160], z[160];
    if (n < 1 || !sizes || !outs) {
        tg_fail(tp, TG_ERR_ARG, "split", "needs n >= 1 sizes and outputs, got n %d%s%s", n,
                sizes ? "" : ", sizes NULL", outs ? "" : ", outs NULL");
        return TG_ERR_ARG;
    }
    if (!x) {
        tg_fail(tp, TG_ERR_ARG, "split", "input is NULL");
        return TG_ERR_ARG;
    }
    /* shapes below are formatted only on an error */
    int ax = tg__axis(axis, x->ndim);
    if (ax < 0) {
        tg_fail(tp, TG_ERR_AXIS, "split", "axis %d out of range for %s", axis,
                tg_shape_str(x, s, sizeof s));
        return TG_ERR_AXIS;
    }
    int64_t len = x->shape[ax], sum = 0;
    for (int i = 0; i < n && sum <= len; i++) {
        if (sizes[i] <= 0) {
            tg_fail(tp, TG_ERR_SHAPE, "split", "size %d of %s is not positive (axis %d of %s)", i,
                    tg__shape_str(n, sizes, z, sizeof z), axis, tg_shape_str(x, s, sizeof s));
            return TG_ERR_SHAPE;
        }
        sum += sizes[i] <= len ? sizes[i] : len + 1; /* past len is wrong anyway: no overflow */
    }
    if (sum != len) {
        tg__shape_str(n, sizes, z, sizeof z);
        tg_shape_str(x, s, sizeof s);
        tg_fail(tp, TG_ERR_SHAPE, "split",
                "sizes %s do not sum to %lld, the length of axis %d of %s", z, (long long)len,
                axis, s);
        return TG_ERR_SHAPE;
    }
    return TG_OK;
}

tg_status tg_split(tg_tape *tp, tg_tensor *x, int axis, int n, const int64_t *sizes,
                   tg_tensor **outs) {
    for (int i = 0; outs && i < n; i++) outs[i] = NULL;
    if (!tp) return tg_set_last_error(TG_ERR_ARG, "split: tape is NULL");
    tg_status st = split_check(tp, x, axis, n, sizes, outs);
    if (st != TG_OK) return st;
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        outs[i] = tg_slice(tp, x, axis, at, at + sizes[i]);
        at += sizes[i];
        if (!outs[i]) {
            for (int j = 0; j < i; j++) outs[j] = NULL;
            return tp->status != TG_OK ? tp->status : TG_ERR_NOMEM;
        }
    }
    return TG_OK;
}

/* ---- reshape (a view) -------------------------------------------------------------------- */
typedef struct reshape_attr {
    int ndim;
    bool has_shape;                   /* the caller's shape pointer was not NULL */
    int64_t shape[TG_MAX_DIMS];       /* as given, one entry may be -1           */
} reshape_attr;

/* The input and target shapes as text, formatted on first use: only errors use them. */
typedef struct reshape_text {
    const tg_tensor *x;
    const reshape_attr *at;
    char x_str[160], to_str[160];
} reshape_text;

static const char *sx_of(reshape_text *t) {
    if (!t->x_str[0]) tg_shape_str(t->x, t->x_str, sizeof t->x_str);
    return t->x_str;
}
static const char *sw_of(reshape_text *t) {
    if (!t->to_str[0]) tg__shape_str(t->at->ndim, t->at->shape, t->to_str, sizeof t->to_str);
    return t->to_str;
}

/* Product of the given dims other than -1 into *known, the -1's index into *free_at (or -1).
 * Returns 0, or an error already reported. */
static int reshape_known(tg_tape *tp, const reshape_attr *at, reshape_text *t, int64_t *known,
                         int *free_at) {
    *known = 1;
    *free_at = -1;
    bool overflow = false;
    for (int i = 0; i < at->ndim; i++) {
        int64_t d = at->shape[i];
        if (d == -1 && *free_at >= 0)
            return tg_fail(tp, TG_ERR_SHAPE, "reshape", "more than one -1 in %s (input %s)",
                           sw_of(t), sx_of(t));
        if (d == -1) {
            *free_at = i;
            continue;
        }
        if (d < 0)
            return tg_fail(tp, TG_ERR_SHAPE, "reshape", "negative dimension %lld in %s (input %s)",
                           (long long)d, sw_of(t), sx_of(t));
        overflow |= __builtin_mul_overflow(*known, d, known);
    }
    if (overflow)
        return tg_fail(tp, TG_ERR_SHAPE, "reshape", "cannot reshape %s to %s", sx_of(t), sw_of(t));
    return 0;
}

static int reshape_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                         tg_desc *out) {
    (void)n_in;
    const reshape_attr *at = attr;
    const tg_tensor *x = in[0];
    reshape_text t;
    t.x = x;
    t.at = at;
    t.x_str[0] = t.to_str[0] = '\0';
    if (at->ndim < 0 || at->ndim > TG_MAX_DIMS)
        return tg_fail(tp, TG_ERR_SHAPE, "reshape", "ndim %d not in [0,%d] (input %s)", at->ndim,
                       TG_MAX_DIMS, sx_of(&t));
    if (!at->has_shape && at->ndim > 0)
        return tg_fail(tp, TG_ERR_ARG, "reshape", "shape is NULL for ndim %d (input %s)", at->ndim,
                       sx_of(&t));
    int64_t known;
    int free_at;
    if (reshape_known(tp, at, &t, &known, &free_at)) return -1;
    out->dtype = x->dtype;
    out->ndim = at->ndim;
    memcpy(out->shape, at->shape, sizeof out->shape);
    if (free_at >= 0 && known == 0)   /* 0 * anything: the -1 cannot be told */
        return tg_fail(tp, TG_ERR_SHAPE, "reshape", "cannot reshape %s to %s (-1 next to a 0)",
                       sx_of(&t), sw_of(&t));
    if (free_at >= 0 && x->numel % known == 0) out->shape[free_at] = x->numel / known;
    if ((free_at >= 0 && x->numel % known != 0) || (free_at < 0 && known != x->numel))
        return tg_fail(tp, TG_ERR_SHAPE, "reshape", "cannot reshape %s to %s", sx_of(&t),
                       sw_of(&t));
    return 0;
}

/* TG_OP_VIEW: tg_apply points the output at x's data; nothing to compute. */
static int reshape_forward(tg_node *n) {
    (void)n;
    return 0;
}

static int reshape_vjp(tg_node *n) {
    tg_tensor *x = n->in[0];
    void *dx = tg_input_grad(n, 0);
    if (dx) add_block(x->dtype, dx, 0, tg_output_grad(n), 0, x->numel);
    return 0;
}

/* A reshape that keeps the last dim keeps every row: the whole input. */
static bool reshape_window(const tg_tensor *x, const void *attr, const tg_desc *out,
                           tg_window *w) {
    (void)attr;
    *w = (tg_window){0, 0};
    int64_t xc = x->ndim ? x->shape[x->ndim - 1] : 1, yc = out->ndim ? out->shape[out->ndim - 1] : 1;
    return xc == yc;
}

/* For tg_grad: dy in x's shape. */
static int reshape_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    if (want[0]) dx[0] = tg_reshape(n->tape, g, n->in[0]->ndim, n->in[0]->shape);
    return 0;
}

static const tg_op reshape_op = {.name = "reshape", .n_in = 1, .attr_size = sizeof(reshape_attr),
                                 .flags = TG_OP_VIEW, .infer = reshape_infer,
                                 .forward = reshape_forward, .vjp = reshape_vjp,
                                 .window = reshape_window, .vjp_graph = reshape_vjp_graph};

tg_tensor *tg_reshape(tg_tape *tp, tg_tensor *x, int ndim, const int64_t *shape) {
    reshape_attr at = {.ndim = ndim, .has_shape = shape != NULL};
    for (int i = 0; shape && i < ndim && i < TG_MAX_DIMS; i++) at.shape[i] = shape[i];
    return tg_apply(tp, &reshape_op, 1, &x, &at);
}

/* ---- transpose and permute ------------------------------------------------------------------- */
/* Output dims in order, each with its element stride in x. Size-1 dims are dropped and
 * neighbours that are contiguous in x merged, so the innermost dim is as long as it
 * can be; when it has stride 1 in x a whole output row is one memcpy. */
typedef struct perm_plan {
    int nd;                          /* >= 1 */
    int64_t size[TG_MAX_DIMS];
    int64_t stride[TG_MAX_DIMS];
} perm_plan;

static void perm_plan_of(const tg_tensor *x, const int *perm, perm_plan *p) {
    int64_t xs[TG_MAX_DIMS], s = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        xs[d] = s;
        s *= x->shape[d];
    }
    p->nd = 0;
    for (int i = 0; i < x->ndim; i++) {
        int64_t len = x->shape[perm[i]], st = xs[perm[i]];
        if (len == 1) continue;
        int k = p->nd - 1;
        if (k >= 0 && p->stride[k] == st * len) {
            p->size[k] *= len;
        } else {
            k = p->nd++;
            p->size[k] = len;
        }
        p->stride[k] = st;
    }
    if (p->nd == 0) { /* one element: 0-dim or all dims 1 */
        p->nd = 1;
        p->size[0] = 1;
        p->stride[0] = 1;
    }
}

/* One output row of n elements gathered from x at stride st (forward; float32 and int32
 * data move as 4-byte bits), or its gradient added back at that stride. */
#define GATHER(T)                                                                                  \
    static TG_NOINLINE void gather_##T(T *restrict y, const T *restrict x, int64_t n,              \
                                       int64_t st) {                                               \
        for (int64_t j = 0; j < n; j++) y[j] = x[j * st];                                          \
    }
#define SCATTER_ADD(T)                                                                             \
    static TG_NOINLINE void scatter_add_##T(T *restrict dx, const T *restrict dy, int64_t n,       \
                                            int64_t st) {                                          \
        for (int64_t j = 0; j < n; j++) dx[j * st] += dy[j];                                       \
    }
GATHER(uint32_t)
GATHER(uint64_t)
TG_STAMP_FLOAT(SCATTER_ADD)

static void row_copy(tg_dtype dt, void *y, int64_t y_off, const void *x, int64_t x_off,
                     int64_t n, int64_t st) {
    if (st == 1)
        copy_block(dt, y, y_off, x, x_off, n);
    else if (tg_dtype_size(dt) == 8)
        gather_uint64_t((uint64_t *)y + y_off, (const uint64_t *)x + x_off, n, st);
    else
        gather_uint32_t((uint32_t *)y + y_off, (const uint32_t *)x + x_off, n, st);
}

static void row_grad(tg_dtype dt, void *dx, int64_t x_off, const void *dy, int64_t y_off,
                     int64_t n, int64_t st) {
    if (st == 1)
        add_block(dt, dx, x_off, dy, y_off, n);
    else if (tg__is_float(dt))
        TG_BY_DTYPE(dt, scatter_add, tg__at(dt, dx, x_off), tg__at(dt, dy, y_off), n, st);
}

/* Forward: dst = y, src = x's data: y = x permuted. Backward (grad): dst = dx, src = dy:
 * dx += dy permuted back. An odometer over the outer output dims keeps the offset in x;
 * the output side is walked in order, row by row. */
static void permute_walk(const tg_tensor *x, const int *perm, bool grad, void *dst,
                         const void *src) {
    perm_plan p;
    if (x->numel == 0) return;
    perm_plan_of(x, perm, &p);
    int last = p.nd - 1;
    int64_t len = p.size[last], rows = x->numel / len, idx[TG_MAX_DIMS] = {0}, off = 0;
    for (int64_t r = 0; r < rows; r++) {
        if (grad)
            row_grad(x->dtype, dst, off, src, r * len, len, p.stride[last]);
        else
            row_copy(x->dtype, dst, r * len, src, off, len, p.stride[last]);
        for (int d = last - 1; d >= 0; d--) {
            off += p.stride[d];
            if (++idx[d] < p.size[d]) break;
            off -= p.stride[d] * p.size[d];
            idx[d] = 0;
        }
    }
}

typedef struct transpose_attr { int axis0, axis1; } transpose_attr;
typedef struct permute_attr {
    bool has_perm;                /* the caller's perm pointer was not NULL */
    int perm[TG_MAX_DIMS];        /* as given, negative entries allowed     */
} permute_attr;

/* Normalised perm of each op; only called after infer accepted the attributes. */
static void perm_of_transpose(const tg_tensor *x, const transpose_attr *at, int *perm) {
    for (int d = 0; d < x->ndim; d++) perm[d] = d;
    int a = tg__axis(at->axis0, x->ndim), b = tg__axis(at->axis1, x->ndim);
    perm[a] = b;
    perm[b] = a;
}

static void perm_of_permute(const tg_tensor *x, const permute_attr *at, int *perm) {
    for (int d = 0; d < x->ndim; d++) perm[d] = tg__axis(at->perm[d], x->ndim);
}

static void permuted_desc(const tg_tensor *x, const int *perm, tg_desc *out) {
    out->dtype = x->dtype;
    out->ndim = x->ndim;
    for (int d = 0; d < x->ndim; d++) out->shape[d] = x->shape[perm[d]];
}

static int transpose_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                           tg_desc *out) {
    (void)n_in;
    const transpose_attr *at = attr;
    const tg_tensor *x = in[0];
    char s[160];
    if (tg__axis(at->axis0, x->ndim) < 0 || tg__axis(at->axis1, x->ndim) < 0)
        return tg_fail(tp, TG_ERR_AXIS, "transpose", "axes %d and %d: out of range for %s",
                       at->axis0, at->axis1, tg_shape_str(x, s, sizeof s));
    int perm[TG_MAX_DIMS];
    perm_of_transpose(x, at, perm);
    permuted_desc(x, perm, out);
    return 0;
}

static int permute_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                         tg_desc *out) {
    (void)n_in;
    const permute_attr *at = attr;
    const tg_tensor *x = in[0];
    char s[160], sp[160]; /* formatted only on an error */
    if (!at->has_perm && x->ndim > 0)
        return tg_fail(tp, TG_ERR_ARG, "permute", "perm is NULL for %s",
                       tg_shape_str(x, s, sizeof s));
    bool seen[TG_MAX_DIMS] = {false}, ok = true;
    int64_t given[TG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) {
        int a = tg__axis(at->perm[d], x->ndim);
        given[d] = at->perm[d];
        ok = ok && a >= 0 && !seen[a];
        if (a >= 0) seen[a] = true;
    }
    if (!ok)
        return tg_fail(tp, TG_ERR_AXIS, "permute", "%s is not a permutation of the axes of %s",
                       tg__shape_str(x->ndim, given, sp, sizeof sp), tg_shape_str(x, s, sizeof s));
    int perm[TG_MAX_DIMS];
    perm_of_permute(x, at, perm);
    permuted_desc(x, perm, out);
    return 0;
}

static int transpose_forward(tg_node *n) {
    int perm[TG_MAX_DIMS];
    perm_of_transpose(n->in[0], n->attr, perm);
    permute_walk(n->in[0], perm, false, n->out->data, n->in[0]->data);
    return 0;
}

static int transpose_vjp(tg_node *n) {
    void *dx = tg_input_grad(n, 0);
    if (!dx) return 0;
    int perm[TG_MAX_DIMS];
    perm_of_transpose(n->in[0], n->attr, perm);
    permute_walk(n->in[0], perm, true, dx, tg_output_grad(n));
    return 0;
}

static int permute_forward(tg_node *n) {
    int perm[TG_MAX_DIMS];
    perm_of_permute(n->in[0], n->attr, perm);
    permute_walk(n->in[0], perm, false, n->out->data, n->in[0]->data);
    return 0;
}

static int permute_vjp(tg_node *n) {
    void *dx = tg_input_grad(n, 0);
    if (!dx) return 0;
    int perm[TG_MAX_DIMS];
    perm_of_permute(n->in[0], n->attr, perm);
    permute_walk(n->in[0], perm, true, dx, tg_output_grad(n));
    return 0;
}

/* For tg_grad: dy moved back by the inverse permutation (a transpose is its own). */
static int transpose_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    const transpose_attr *at = n->attr;
    if (want[0]) dx[0] = tg_transpose(n->tape, g, at->axis0, at->axis1);
    return 0;
}

static int permute_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    int perm[TG_MAX_DIMS], inverse[TG_MAX_DIMS];
    if (!want[0]) return 0;
    perm_of_permute(n->in[0], n->attr, perm);
    for (int d = 0; d < n->in[0]->ndim; d++) inverse[perm[d]] = d;
    dx[0] = tg_permute(n->tape, g, inverse);
    return 0;
}

static const tg_op transpose_op = {.name = "transpose", .n_in = 1,
                                   .attr_size = sizeof(transpose_attr), .infer = transpose_infer,
                                   .forward = transpose_forward, .vjp = transpose_vjp,
                                   .vjp_graph = transpose_vjp_graph};
static const tg_op permute_op = {.name = "permute", .n_in = 1, .attr_size = sizeof(permute_attr),
                                 .infer = permute_infer, .forward = permute_forward,
                                 .vjp = permute_vjp, .vjp_graph = permute_vjp_graph};

tg_tensor *tg_transpose(tg_tape *tp, tg_tensor *x, int axis0, int axis1) {
    transpose_attr at = {axis0, axis1};
    return tg_apply(tp, &transpose_op, 1, &x, &at);
}

tg_tensor *tg_permute(tg_tape *tp, tg_tensor *x, const int *perm) {
    permute_attr at = {.has_perm = perm != NULL};
    /* x's ndim tells how many entries perm has; a NULL x fails inside tg_apply. */
    for (int d = 0; x && perm && d < x->ndim; d++) at.perm[d] = perm[d];
    return tg_apply(tp, &permute_op, 1, &x, &at);
}
