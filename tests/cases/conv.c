/* tests/cases/conv.c - builders for cases/conv.def. Each conv1d setting has
 * two builders: NAME (x, w) and NAME_bias (x, w, bias); the inputs array holds
 * exactly the row's inputs, so the bias must not be looked for in a 2-input row. */
#include "../case_table.h"

#define CONV_BUILDERS(NAME, S, P, D)                                                             \
    tg_tensor *NAME(tg_tape *tp, tg_tensor *const *in, void *u) {                                \
        (void)u;                                                                                 \
        tg_conv1d_opts o = {S, P, D};                                                            \
        return tg_conv1d(tp, in[0], in[1], NULL, &o);                                            \
    }                                                                                            \
    tg_tensor *NAME##_bias(tg_tape *tp, tg_tensor *const *in, void *u) {                         \
        (void)u;                                                                                 \
        tg_conv1d_opts o = {S, P, D};                                                            \
        return tg_conv1d(tp, in[0], in[1], in[2], &o);                                           \
    }

/*            builder               stride padding dilation (0 = default 1) */
CONV_BUILDERS(build_conv1d,         0,     0,      0)
CONV_BUILDERS(build_conv1d_s2p1,    2,     1,      1)
CONV_BUILDERS(build_conv1d_s3,      3,     0,      1)
CONV_BUILDERS(build_conv1d_d2,      1,     0,      2)
CONV_BUILDERS(build_conv1d_s3p2d2,  3,     2,      2)
CONV_BUILDERS(build_conv1d_p1,      1,     1,      1)
CONV_BUILDERS(build_conv1d_p3,      1,     3,      1)

#define POOL_BUILDER(NAME, K, S)                                                                 \
    tg_tensor *NAME(tg_tape *tp, tg_tensor *const *in, void *u) {                                \
        (void)u;                                                                                 \
        return tg_max_pool1d(tp, in[0], K, S);                                                   \
    }

/*           builder          kernel stride (0 = kernel) */
POOL_BUILDER(build_pool_k3s1, 3,     1)
POOL_BUILDER(build_pool_k2s0, 2,     0)
POOL_BUILDER(build_pool_k2s3, 2,     3)
POOL_BUILDER(build_pool_k5s1, 5,     1)
POOL_BUILDER(build_pool_k1s2, 1,     2)

/* conv1d's two gradients as ops (double backward): Dx(g, w) = J_x^T g and
 * Dw(x, g) = J_w^T g, reached through tg_grad of a conv1d whose other operand
 * is a zero leaf made here (the row gives the two real inputs). Recording is
 * switched on around it: the numeric pass of gradcheck runs without it. */
static tg_tensor *conv_grad_of(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *g,
                               const tg_conv1d_opts *o, bool of_input) {
    bool off = !tg_tape_is_recording(tp);
    if (off) tg_no_grad_end(tp);
    tg_tensor *leaf = of_input ? x : w, *d = NULL;
    tg_tensor_set_requires_grad(leaf, true);
    tg_grad_opts rec = {.create_graph = true};
    tg_tensor *y = tg_conv1d(tp, x, w, NULL, o);
    if (y) tg_grad(tp, y, g, 1, &leaf, &d, &rec);
    if (off) tg_no_grad_begin(tp);
    return d;
}

/* in: w [Cout, Cin, K], g [B, Cout, Lout]; L given */
static tg_tensor *grad_input(tg_tape *tp, tg_tensor *const *in, int64_t L, tg_conv1d_opts o) {
    const int64_t *ws = tg_tensor_shape(in[0]), *gs = tg_tensor_shape(in[1]);
    tg_tensor *x = tg_tape_tensor(tp, tg_tensor_dtype(in[0]), 3, (int64_t[]){gs[0], ws[1], L});
    return x ? conv_grad_of(tp, x, in[0], in[1], &o, true) : NULL;
}

/* in: x [B, Cin, L], g [B, Cout, Lout]; K given */
static tg_tensor *grad_weight(tg_tape *tp, tg_tensor *const *in, int64_t K, tg_conv1d_opts o) {
    const int64_t *xs = tg_tensor_shape(in[0]), *gs = tg_tensor_shape(in[1]);
    tg_tensor *w = tg_tape_tensor(tp, tg_tensor_dtype(in[0]), 3, (int64_t[]){gs[1], xs[1], K});
    return w ? conv_grad_of(tp, in[0], w, in[1], &o, false) : NULL;
}

tg_tensor *build_conv1d_grad_input(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return grad_input(tp, in, 7, (tg_conv1d_opts){0, 0, 0});
}
tg_tensor *build_conv1d_grad_input_s2p1(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return grad_input(tp, in, 9, (tg_conv1d_opts){2, 1, 1});
}
tg_tensor *build_conv1d_grad_weight(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return grad_weight(tp, in, 3, (tg_conv1d_opts){0, 0, 0});
}
tg_tensor *build_conv1d_grad_weight_s2p1(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return grad_weight(tp, in, 3, (tg_conv1d_opts){2, 1, 1});
}
