/* tests/cases/grad_ops.c - builders for the ops that exist for double
 * backward only: the max pools' argmax routing (scatter, gather) and
 * avg_pool2d's gradient. Each is reached through tg_grad (create_graph) of
 * its pool on a copy of x that requires grad; recording is switched on
 * around it, since the numeric pass of gradcheck runs without it. */
#include "../case_table.h"

typedef tg_tensor *(*pool_fn)(tg_tape *tp, tg_tensor *x);

static tg_tensor *pool1d(tg_tape *tp, tg_tensor *x) { return tg_max_pool1d(tp, x, 2, 2); }
static tg_tensor *pool2d(tg_tape *tp, tg_tensor *x) { return tg_max_pool2d(tp, x, 2, 2); }
static tg_tensor *avg2d(tg_tape *tp, tg_tensor *x) { return tg_avg_pool2d(tp, x, 2, 2); }
static tg_tensor *avg2d_pad(tg_tape *tp, tg_tensor *x) {
    tg_pool2d_opts o = {.stride = {2, 2}, .padding = {1, 1}, .exclude_pad = true};
    return tg_avg_pool2d_ex(tp, x, 3, 3, &o);
}

/* A copy of x (values only) that requires grad. */
static tg_tensor *leaf_copy(tg_tape *tp, tg_tensor *x) {
    tg_tensor *c = tg_tape_tensor(tp, tg_tensor_dtype(x), tg_tensor_ndim(x), tg_tensor_shape(x));
    for (int64_t i = 0; c && i < tg_tensor_numel(c); i++) tg_tensor_set(c, i, tg_tensor_get(x, i));
    if (c) tg_tensor_set_requires_grad(c, true);
    return c;
}

/* in: x, g [pool(x)'s shape] -> the pool's VJP of g, as a recorded op.
 * gather: in: x, u [x's shape] -> the VJP of that (at a zero g) for u. */
static tg_tensor *pool_grad(tg_tape *tp, tg_tensor *const *in, pool_fn f, bool gather) {
    bool off = !tg_tape_is_recording(tp);
    if (off) tg_no_grad_end(tp);
    tg_grad_opts rec = {.create_graph = true};
    tg_tensor *x = leaf_copy(tp, in[0]), *y = x ? f(tp, x) : NULL, *dx = NULL, *r = NULL;
    tg_tensor *g = gather && y ? tg_tape_tensor(tp, tg_tensor_dtype(y), tg_tensor_ndim(y),
                                                tg_tensor_shape(y)) : in[1];
    if (gather && g) tg_tensor_set_requires_grad(g, true);
    if (y && g && tg_grad(tp, y, g, 1, &x, &dx, &rec) == TG_OK)
        r = gather ? (tg_grad(tp, dx, in[1], 1, &g, &r, &rec) == TG_OK ? r : NULL) : dx;
    if (off) tg_no_grad_begin(tp);
    return r;
}

#define POOL_GRAD_BUILDER(NAME, F, GATHER)                                                       \
    tg_tensor *NAME(tg_tape *tp, tg_tensor *const *in, void *u) {                                \
        (void)u;                                                                                 \
        return pool_grad(tp, in, F, GATHER);                                                     \
    }
POOL_GRAD_BUILDER(build_max_pool_scatter_1d, pool1d, false)
POOL_GRAD_BUILDER(build_max_pool_scatter_2d, pool2d, false)
POOL_GRAD_BUILDER(build_max_pool_gather_1d, pool1d, true)
POOL_GRAD_BUILDER(build_max_pool_gather_2d, pool2d, true)
POOL_GRAD_BUILDER(build_avg_pool2d_grad, avg2d, false)
POOL_GRAD_BUILDER(build_avg_pool2d_grad_pad, avg2d_pad, false)

/* conv2d's two gradients as ops: Dx(g, w) with inputs (w, g) and x's H, W
 * given; Dw(x, g) with inputs (x, g) and the kernel given. The other operand
 * of the conv2d is a zero leaf made here. */
static tg_tensor *conv2d_grad_of(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *g,
                                 const tg_conv2d_opts *o, bool of_input) {
    bool off = !tg_tape_is_recording(tp);
    if (off) tg_no_grad_end(tp);
    tg_tensor *leaf = of_input ? x : w, *d = NULL;
    tg_tensor_set_requires_grad(leaf, true);
    tg_grad_opts rec = {.create_graph = true};
    tg_tensor *y = tg_conv2d_ex(tp, x, w, NULL, o);
    if (y) tg_grad(tp, y, g, 1, &leaf, &d, &rec);
    if (off) tg_no_grad_begin(tp);
    return d;
}

static tg_tensor *conv2d_grad_input(tg_tape *tp, tg_tensor *const *in, int64_t H, int64_t W,
                                    tg_conv2d_opts o) {
    const int64_t *ws = tg_tensor_shape(in[0]), *gs = tg_tensor_shape(in[1]);
    int64_t G = o.groups ? o.groups : 1;
    tg_tensor *x = tg_tape_tensor(tp, tg_tensor_dtype(in[0]), 4, (int64_t[]){gs[0], ws[1] * G, H, W});
    return x ? conv2d_grad_of(tp, x, in[0], in[1], &o, true) : NULL;
}

static tg_tensor *conv2d_grad_weight(tg_tape *tp, tg_tensor *const *in, int64_t KH, int64_t KW,
                                     tg_conv2d_opts o) {
    const int64_t *xs = tg_tensor_shape(in[0]), *gs = tg_tensor_shape(in[1]);
    int64_t G = o.groups ? o.groups : 1;
    tg_tensor *w = tg_tape_tensor(tp, tg_tensor_dtype(in[0]), 4, (int64_t[]){gs[1], xs[1] / G, KH, KW});
    return w ? conv2d_grad_of(tp, in[0], w, in[1], &o, false) : NULL;
}

static const tg_conv2d_opts grouped_s2p1 = {{2, 2}, {1, 1}, {1, 1}, 2};

tg_tensor *build_conv2d_grad_input(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return conv2d_grad_input(tp, in, 5, 5, (tg_conv2d_opts){{0, 0}, {0, 0}, {0, 0}, 0});
}
tg_tensor *build_conv2d_grad_input_grouped(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return conv2d_grad_input(tp, in, 6, 6, grouped_s2p1);
}
tg_tensor *build_conv2d_grad_weight(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return conv2d_grad_weight(tp, in, 3, 3, (tg_conv2d_opts){{0, 0}, {0, 0}, {0, 0}, 0});
}
tg_tensor *build_conv2d_grad_weight_grouped(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return conv2d_grad_weight(tp, in, 3, 3, grouped_s2p1);
}
