/* autograd/grad_products.c - what double backward gives: Hessian-vector and
 * Jacobian-vector products, and the full Jacobian of a small function. */
#include "internal.h"

#include <string.h>

/* sum_i <a[i], b[i]>, a recorded scalar (NULL on error). */
static tg_tensor *inner_sum(tg_tape *tp, int n, tg_tensor *const *a, tg_tensor *const *b) {
    tg_tensor *s = NULL;
    for (int i = 0; i < n; i++) {
        tg_tensor *term = tg_sum(tp, tg_mul(tp, a[i], b[i]));
        s = s ? tg_add(tp, s, term) : term;
    }
    return s;
}

static tg_status vectors_check(tg_tape *tp, const char *op, int n, tg_tensor *const *inputs,
                               tg_tensor *const *v) {
    char a[160], b[160];
    if (n < 1 || !inputs || !v) return tg_fail(tp, TG_ERR_ARG, op, "no inputs or vectors"), TG_ERR_ARG;
    for (int i = 0; i < n; i++) {
        if (!inputs[i] || !v[i])
            return tg_fail(tp, TG_ERR_ARG, op, "input or vector %d is NULL", i), TG_ERR_ARG;
        if (inputs[i]->dtype != v[i]->dtype || inputs[i]->ndim != v[i]->ndim ||
            memcmp(inputs[i]->shape, v[i]->shape, (size_t)v[i]->ndim * sizeof v[i]->shape[0]))
            return tg_fail(tp, TG_ERR_SHAPE, op, "vector %d %s %s differs from input %s %s", i,
                           tg_dtype_name(v[i]->dtype), tg_shape_str(v[i], b, sizeof b),
                           tg_dtype_name(inputs[i]->dtype), tg_shape_str(inputs[i], a, sizeof a)),
                   TG_ERR_SHAPE;
    }
    return TG_OK;
}

/* H v = d/dx <d loss/dx, v>: the gradient, recorded, dotted with v, then
 * differentiated again. */
tg_status tg_hvp(tg_tape *tp, tg_tensor *loss, int n, tg_tensor *const *inputs,
                 tg_tensor *const *v, tg_tensor **hv, const tg_grad_opts *opts) {
    if (!tp) return tg_set_last_error(TG_ERR_ARG, "hvp: tape is NULL");
    tg_status st = vectors_check(tp, "hvp", n, inputs, v);
    if (st != TG_OK) return st;
    tg_tensor **g = tg_tape_alloc(tp, (size_t)n * sizeof *g);
    if (!g) return tp->status;
    tg_grad_opts record = {.create_graph = true};
    st = tg_grad(tp, loss, NULL, n, inputs, g, &record);
    if (st != TG_OK) return st;
    tg_tensor *s = inner_sum(tp, n, g, v);
    if (s && s->node < 0) { /* the gradient does not depend on the inputs: H = 0 */
        for (int i = 0; i < n; i++) hv[i] = tg_scale(tp, v[i], 0);
        return tp->status;
    }
    return s ? tg_grad(tp, s, NULL, n, inputs, hv, opts) : tp->status;
}

/* J v: u -> J^T u is linear in u; with u a dummy that requires grad,
 * d/du <J^T u, v> = J v. */
tg_tensor *tg_jvp(tg_tape *tp, tg_tensor *y, int n, tg_tensor *const *inputs, tg_tensor *const *v,
                  const tg_grad_opts *opts) {
    if (!tp || !y) {
        if (tp) tg_fail(tp, TG_ERR_ARG, "jvp", "output is NULL");
        else tg_set_last_error(TG_ERR_ARG, "jvp: tape is NULL");
        return NULL;
    }
    if (vectors_check(tp, "jvp", n, inputs, v) != TG_OK) return NULL;
    tg_tensor *u = tg_tape_tensor(tp, y->dtype, y->ndim, y->shape);
    tg_tensor **g = tg_tape_alloc(tp, (size_t)n * sizeof *g);
    if (!u || !g) return NULL;
    u->requires_grad = true;
    tg_grad_opts record = {.create_graph = true};
    if (tg_grad(tp, y, u, n, inputs, g, &record) != TG_OK) return NULL;
    tg_tensor *s = inner_sum(tp, n, g, v), *jv = NULL;
    if (s && s->node < 0) return tg_tape_tensor(tp, y->dtype, y->ndim, y->shape); /* J = 0 */
    return s && tg_grad(tp, s, NULL, 1, &u, &jv, opts) == TG_OK ? jv : NULL;
}

/* One tg_grad per element of y, seeded with that element's unit vector. */
tg_tensor *tg_jacobian(tg_tape *tp, tg_tensor *y, int n, tg_tensor *const *inputs) {
    if (!tp) {
        tg_set_last_error(TG_ERR_ARG, "jacobian: tape is NULL");
        return NULL;
    }
    if (!y || n < 1 || !inputs) {
        tg_fail(tp, TG_ERR_ARG, "jacobian", "output or inputs missing");
        return NULL;
    }
    int64_t cols = 0;
    for (int i = 0; i < n; i++) cols += inputs[i] ? inputs[i]->numel : 0;
    tg_tensor *jac = tg_tape_tensor(tp, y->dtype, 2, (int64_t[]){y->numel, cols});
    tg_tensor *e = tg_tape_tensor(tp, y->dtype, y->ndim, y->shape);
    tg_tensor **g = tg_tape_alloc(tp, (size_t)n * sizeof *g);
    for (int64_t r = 0; jac && e && g && r < y->numel; r++) {
        tg_tensor_set(e, r, 1.0);
        if (tg_grad(tp, y, e, n, inputs, g, NULL) != TG_OK) return NULL;
        tg_tensor_set(e, r, 0.0);
        int64_t c = 0;
        for (int i = 0; i < n; c += g[i]->numel, i++)
            for (int64_t k = 0; k < g[i]->numel; k++)
                tg_tensor_set(jac, r * cols + c + k, tg_tensor_get(g[i], k));
    }
    return tp->status == TG_OK ? jac : NULL;
}
