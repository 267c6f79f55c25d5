/* autograd/grad_helpers.c - building blocks the ops' vjp_graph functions share:
 * broadcasting undone (sum_to), broadcasting done (expand), constant tensors
 * (masks, one-hots: their derivative is zero almost everywhere, so they are
 * data, not recorded ops). */
#include "fuse.h"

#include <string.h>

/* Sum g over the axes along which `like` was broadcast to g's shape:
 * leading extra axes, and axes where like has size 1. */
tg_tensor *tg__gg_sum_to(tg_tape *tp, tg_tensor *g, const tg_tensor *like) {
    if (!g) return NULL;
    while (g && g->ndim > like->ndim) g = tg_sum_axis(tp, g, 0, false);
    for (int d = 0; g && d < like->ndim; d++)
        if (like->shape[d] == 1 && g->shape[d] != 1) g = tg_sum_axis(tp, g, d, true);
    if (g && g->ndim == 0 && like->ndim == 0) return g;
    return g && g->numel == like->numel && g->ndim != like->ndim
               ? tg_reshape(tp, g, like->ndim, like->shape) : g;
}

/* g broadcast to like's shape (g's shape must broadcast to it): 0 + g, so the
 * expansion is an ordinary recorded op (its VJP sums back). */
tg_tensor *tg__gg_expand(tg_tape *tp, tg_tensor *g, const tg_tensor *like) {
    tg_tensor *z = tg_tape_tensor(tp, like->dtype, like->ndim, like->shape);
    return z && g ? tg_add(tp, z, g) : NULL;
}

/* A constant tensor like `like` holding f(like[i]) (not recorded). */
tg_tensor *tg__gg_map_const(tg_tape *tp, tg_tensor *like, double (*f)(double v, const void *ctx),
                            const void *ctx) {
    if (tg__concrete(like) != 0) return NULL;
    tg_tensor *c = tg_tape_tensor(tp, like->dtype, like->ndim, like->shape);
    for (int64_t i = 0; c && i < c->numel; i++)
        tg_tensor_set(c, i, f(tg_tensor_get(like, i), ctx));
    return c;
}

/* A zero tensor of dtype dt and the given shape (filled by the caller). */
tg_tensor *tg__gg_zeros(tg_tape *tp, tg_dtype dt, int ndim, const int64_t *shape) {
    return tg_tape_tensor(tp, dt, ndim, shape);
}
