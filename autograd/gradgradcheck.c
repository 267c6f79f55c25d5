/* autograd/gradgradcheck.c - second derivatives against central differences
 * of first derivatives, in float64.
 *
 * With L = sum(w * f(x)) (w the fixed output weighting of gradcheck) and
 * G_i = dL/dx_i, the checked scalar is M = sum_i sum(v_i * G_i) for fixed
 * random v_i. Analytic: G from tg_grad with create_graph (the ops' vjp_graph),
 * then dM/dx by tg_backward through those recorded ops. Numeric: M at x +- eps,
 * with G from the ordinary first-order tg_backward (the ops' own kernels), so
 * the two sides share no gradient code. Before that, G from tg_grad must equal
 * tg_backward's gradient (a vjp_graph that is wrong at first order fails). */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef tg__gc_ctx gg_ctx;
enum { GG_MAX_INPUTS = TG__GC_MAX_INPUTS };

static tg_status gg_fail(tg_gradcheck_report *r, tg_status st, const char *what, const char *detail) {
    snprintf(r->message, sizeof r->message, "gradgradcheck: %s%s%.200s", what, detail ? ": " : "",
             detail ? detail : "");
    r->passed = false;
    return st;
}

/* Fresh leaves: clones of the inputs in dtype dt (int32 ones stay int32), the
 * checked ones requiring grad. */
static tg_status make_leaves(const gg_ctx *c, bool as_f64, tg_tensor **leaf) {
    for (int i = 0; i < c->n; i++) {
        tg_dtype dt = tg__is_float(c->inputs[i]->dtype) && as_f64 ? TG_F64 : c->inputs[i]->dtype;
        leaf[i] = tg_tensor_clone(c->inputs[i], dt);
        if (!leaf[i]) return gg_fail(c->r, tg_last_status(), "cannot copy an input", tg_last_error());
        tg_tensor_set_requires_grad(leaf[i], tg__gradcheck_checked(c, i));
    }
    return TG_OK;
}

/* sum_i sum(v_i * grad(leaf_i)), v_i = the weighting from seed + 1 + i. */
static double weighted_grads(const gg_ctx *c, tg_tensor **leaf) {
    double m = 0;
    for (int i = 0; i < c->n; i++) {
        if (!tg__gradcheck_checked(c, i)) continue;
        tg_tensor *v = tg__gradcheck_weights(leaf[i], c->o->seed + 1 + (uint64_t)i);
        for (int64_t j = 0; v && j < leaf[i]->numel; j++)
            m += tg_tensor_get(v, j) * tg_tensor_grad_get(leaf[i], j);
        tg_tensor_free(v);
    }
    return m;
}

/* G_i from tg_grad against tg_backward's gradient, element by element. */
static tg_status first_order_agrees(const gg_ctx *c, tg_tensor **leaf, tg_tensor **g) {
    double atol = c->f32 ? 1e-5 : 1e-10, rtol = c->f32 ? 1e-4 : 1e-8;
    for (int i = 0; i < c->n; i++) {
        for (int64_t j = 0; tg__gradcheck_checked(c, i) && j < leaf[i]->numel; j++) {
            double a = tg_tensor_get(g[i], j), b = tg_tensor_grad_get(leaf[i], j);
            if (fabs(a - b) <= atol + rtol * fabs(b)) continue;
            char why[160];
            snprintf(why, sizeof why, "input %d[%lld]: tg_grad %.9g vs tg_backward %.9g", i,
                     (long long)j, a, b);
            return gg_fail(c->r, TG_OK, "first-order gradients differ", why);
        }
    }
    return TG_OK;
}

/* dM/dx in the inputs' dtype, into d[i] (float64, caller-owned). */
static tg_status analytic2(const gg_ctx *c, tg_tape *tp, tg_tensor **leaf, tg_tensor **d) {
    tg_tensor *g[GG_MAX_INPUTS] = {0}, *req[GG_MAX_INPUTS] = {0};
    int m = 0, at[GG_MAX_INPUTS];
    tg_tensor *y = c->fn(tp, leaf, c->user);
    if (!y) return gg_fail(c->r, tp->status ? tp->status : TG_ERR_ARG, "function failed", tp->msg);
    tg_tensor *w = tg__gradcheck_weights(y, c->o->seed);
    for (int i = 0; i < c->n; i++)
        if (tg__gradcheck_checked(c, i)) at[m] = i, req[m++] = leaf[i];
    tg_grad_opts record = {.create_graph = true};
    tg_status st = w ? tg_grad(tp, y, w, m, req, g, &record) : TG_ERR_NOMEM;
    if (st == TG_OK) st = tg_backward_ex(tp, y, w);  /* first order, for the comparison */
    tg_tensor *gi[GG_MAX_INPUTS] = {0};
    for (int k = 0; k < m; k++) gi[at[k]] = g[k];
    if (st == TG_OK) st = first_order_agrees(c, leaf, gi);
    if (st != TG_OK || !c->r->passed) {
        tg_tensor_free(w);
        return st != TG_OK ? gg_fail(c->r, st, "tg_grad failed", tp->msg) : TG_OK;
    }
    for (int k = 0; k < m; k++) tg_tensor_zero_grad(req[k]);
    for (int k = 0; k < m && st == TG_OK; k++) {
        if (g[k]->node < 0) continue;  /* G_k does not depend on x: no second derivative */
        tg_tensor *v = tg__gradcheck_weights(leaf[at[k]], c->o->seed + 1 + (uint64_t)at[k]);
        st = v ? tg_backward_ex(tp, g[k], v) : TG_ERR_NOMEM;
        tg_tensor_free(v);
    }
    tg_tensor_free(w);
    if (st != TG_OK) return gg_fail(c->r, st, "second backward failed", tp->msg);
    for (int k = 0; k < m; k++) {
        d[at[k]] = tg_tensor_new(TG_F64, req[k]->ndim, req[k]->shape);
        for (int64_t j = 0; d[at[k]] && j < req[k]->numel; j++)
            tg_tensor_set(d[at[k]], j, tg_tensor_grad_get(req[k], j));
    }
    return TG_OK;
}

/* M at the current float64 leaves, with G from tg_backward. */
static tg_status eval_m(const gg_ctx *c, tg_tape *tp, tg_tensor **x, double *m) {
    tg_tape_reset(tp);
    for (int i = 0; i < c->n; i++) tg_tensor_zero_grad(x[i]);
    tg_tensor *y = c->fn(tp, x, c->user);
    if (!y) return gg_fail(c->r, tp->status ? tp->status : TG_ERR_ARG, "function failed in float64",
                           tp->msg);
    tg_tensor *w = tg__gradcheck_weights(y, c->o->seed);
    tg_status st = w ? tg_backward_ex(tp, y, w) : TG_ERR_NOMEM;
    tg_tensor_free(w);
    if (st != TG_OK) return gg_fail(c->r, st, "backward failed in float64", tp->msg);
    *m = weighted_grads(c, x);
    return TG_OK;
}

static tg_status numeric2(const gg_ctx *c, tg_tensor **d) {
    tg_tensor *x[GG_MAX_INPUTS] = {0};
    tg_tape *tp = tg_tape_new();
    tg_status st = tp ? make_leaves(c, true, x) : gg_fail(c->r, TG_ERR_NOMEM, "out of memory", NULL);
    double eps = c->o->eps > 0 ? c->o->eps : 1e-6;
    for (int i = 0; i < c->n && st == TG_OK; i++) {
        for (int64_t j = 0; tg__gradcheck_checked(c, i) && j < x[i]->numel && st == TG_OK; j++) {
            double *v = x[i]->data, keep = v[j], f[2] = {0, 0};
            for (int side = 0; side < 2 && st == TG_OK; side++) {
                v[j] = keep + (side ? -eps : eps);
                st = eval_m(c, tp, x, &f[side]);
            }
            v[j] = keep;
            if (st == TG_OK)
                tg__gradcheck_compare(c->r, c->o, c->f32, i, j, tg_tensor_get(d[i], j),
                                      (f[0] - f[1]) / (2 * eps));
        }
    }
    for (int i = 0; i < c->n; i++) tg_tensor_free(x[i]);
    tg_tape_free(tp);
    return st;
}

tg_status tg_gradgradcheck(tg_fn fn, void *user, int n_inputs, tg_tensor *const *inputs,
                           const tg_gradcheck_opts *opts, tg_gradcheck_report *report) {
    gg_ctx c;
    tg_status st = tg__gradcheck_start(&c, fn, user, n_inputs, inputs, opts, report);
    tg_gradcheck_report *r = c.r;
    if (st != TG_OK) {   /* the same checks as gradcheck's; name this check */
        char why[sizeof r->message];
        snprintf(why, sizeof why, "grad%.240s", r->message);
        memcpy(r->message, why, sizeof why);
        return st;
    }
    tg_tensor *leaf[GG_MAX_INPUTS] = {0}, *d[GG_MAX_INPUTS] = {0};
    tg_tape *tp = tg_tape_new();
    st = tp ? make_leaves(&c, false, leaf) : gg_fail(r, TG_ERR_NOMEM, "out of memory", NULL);
    if (st == TG_OK) st = analytic2(&c, tp, leaf, d);
    tg_tape_free(tp);
    for (int i = 0; i < n_inputs; i++) tg_tensor_free(leaf[i]);
    if (st == TG_OK && r->passed) st = numeric2(&c, d);
    for (int i = 0; i < n_inputs; i++) tg_tensor_free(d[i]);
    if (st != TG_OK) r->passed = false;
    return st;
}
