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
 * The kernels are plain loops over the output with an odometer of input
 * offsets: the masks the recurrent layers select with are small. */
#include "../autograd/internal.h"

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

/* ---- kernels -------------------------------------------------------------------------------- */
static bool truth(const tg_tensor *cond, int64_t i) {
    switch (cond->dtype) {
    case TG_F32: return ((const float *)cond->data)[i] != 0;
    case TG_F64: return ((const double *)cond->data)[i] != 0;
    default: return ((const int32_t *)cond->data)[i] != 0;
    }
}

/* Advance the input offsets off[3] to output element i + 1 (idx: the odometer). */
static void step_offsets(const where_geom *g, int64_t *idx, int64_t *off) {
    for (int d = g->nd - 1; d >= 0; d--) {
        for (int k = 0; k < 3; k++) off[k] += g->stride[k][d];
        if (++idx[d] < g->shape[d]) return;
        for (int k = 0; k < 3; k++) off[k] -= g->stride[k][d] * g->shape[d];
        idx[d] = 0;
    }
}

#define WHERE_LOOPS(T)                                                                           \
    static void where_fwd_##T(const where_geom *g, const tg_tensor *cond, const T *A,           \
                              const T *B, T *Y, int64_t n) {                                     \
        int64_t idx[TG_MAX_DIMS] = {0}, off[3] = {0, 0, 0};                                      \
        for (int64_t i = 0; i < n; i++) {                                                        \
            Y[i] = truth(cond, off[0]) ? A[off[1]] : B[off[2]];                                  \
            step_offsets(g, idx, off);                                                           \
        }                                                                                        \
    }                                                                                            \
    /* side 1: da += cond ? dy : 0;  side 2: db += cond ? 0 : dy */                              \
    static void where_vjp_##T(const where_geom *g, const tg_tensor *cond, const T *DY, T *DX,   \
                              int side, int64_t n) {                                             \
        int64_t idx[TG_MAX_DIMS] = {0}, off[3] = {0, 0, 0};                                      \
        for (int64_t i = 0; i < n; i++) {                                                        \
            if (truth(cond, off[0]) == (side == 1)) DX[off[side]] += DY[i];                      \
            step_offsets(g, idx, off);                                                           \
        }                                                                                        \
    }
WHERE_LOOPS(float)
WHERE_LOOPS(double)

static int where_forward(tg_node *n) {
    tg_tensor *y = n->out;
    where_geom g;
    geom_of(n->in, y->ndim, y->shape, &g);
    if (y->dtype == TG_F32)
        where_fwd_float(&g, n->in[0], n->in[1]->data, n->in[2]->data, y->data, y->numel);
    else
        where_fwd_double(&g, n->in[0], n->in[1]->data, n->in[2]->data, y->data, y->numel);
    return 0;
}

static int where_vjp(tg_node *n) {
    tg_tensor *y = n->out;
    where_geom g;
    geom_of(n->in, y->ndim, y->shape, &g);
    for (int side = 1; side <= 2; side++) {
        void *dx = tg_input_grad(n, side);
        if (!dx) continue;
        if (y->dtype == TG_F32)
            where_vjp_float(&g, n->in[0], tg_output_grad(n), dx, side, y->numel);
        else
            where_vjp_double(&g, n->in[0], tg_output_grad(n), dx, side, y->numel);
    }
    return 0;
}

static const tg_op where_op = {.name = "where", .n_in = 3, .infer = where_infer,
                               .forward = where_forward, .vjp = where_vjp};

tg_tensor *tg_where(tg_tape *tp, tg_tensor *cond, tg_tensor *a, tg_tensor *b) {
    return tg_apply(tp, &where_op, 3, (tg_tensor *[]){cond, a, b}, NULL);
}
