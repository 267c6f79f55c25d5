/* autograd/gradcheck_params.c - tg_gradcheck over a whole parameter registry.
 *
 * The model's layers point at the registry's tensors, so instead of handing
 * the function copies (as tg_gradcheck does) the check works on the tensors
 * themselves: the analytic pass backpropagates into them; for the float64
 * pass each float parameter (and each data tensor named by the caller) is
 * switched in place to a float64 copy of its values, and switched back at
 * the end, whatever happened. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A tensor switched to float64 for the numeric pass; restored afterwards. */
typedef struct swapped {
    tg_tensor *t;
    tg_dtype dtype;
    void *data;
} swapped;

typedef struct gp_ctx {
    tg_params *p;
    tg_model_fn fn;
    void *user;
    const tg_gradcheck_opts *o;
    tg_gradcheck_report *r;
    double **grads;          /* [count] analytic gradients in float64, NULL when not checked */
    swapped *sw;             /* parameters first, then data */
    int n_sw;
} gp_ctx;

static tg_status gp_fail(tg_gradcheck_report *r, tg_status st, const char *fmt, const char *a,
                         const char *b) {
    snprintf(r->message, sizeof r->message, fmt, a, b ? b : "");
    return st;
}

static bool gp_checked(const gp_ctx *c, int i) {
    tg_tensor *t = tg_params_at(c->p, i);
    return tg__is_float(t->dtype) && t->requires_grad && !(c->o->skip && c->o->skip[i]);
}

/* Backward of L = sum(w * y), w drawn from the seed; grads[i] = dL/dparam_i. */
static tg_status gp_analytic(gp_ctx *c) {
    int n = tg_params_count(c->p);
    tg_tape *tp = tg_tape_new();
    if (!tp) return gp_fail(c->r, TG_ERR_NOMEM, "gradcheck: %s%s", "out of memory", NULL);
    for (int i = 0; i < n; i++) tg_tensor_zero_grad(tg_params_at(c->p, i));
    tg_tensor *y = c->fn(tp, c->user);
    tg_status st = TG_OK;
    if (!y) {
        st = gp_fail(c->r, tp->status ? tp->status : TG_ERR_ARG, "gradcheck: function failed: %.200s%s",
                     tp->msg, NULL);
    } else {
        tg_tensor *w = tg_tensor_new(y->dtype, y->ndim, y->shape);
        tg_rng rng = tg_rng_seeded(c->o->seed);
        for (int64_t j = 0; w && j < w->numel; j++) tg_tensor_set(w, j, tg_rng_uniform(&rng) * 2 - 1);
        st = w ? tg_backward_ex(tp, y, w) : TG_ERR_NOMEM;
        if (st != TG_OK) gp_fail(c->r, st, "gradcheck: backward failed: %.200s%s", tp->msg, NULL);
        tg_tensor_free(w);
    }
    for (int i = 0; st == TG_OK && i < n; i++) {
        tg_tensor *t = tg_params_at(c->p, i);
        if (!gp_checked(c, i)) continue;
        c->grads[i] = tg__calloc((size_t)t->numel + 1, sizeof(double));
        if (!c->grads[i]) st = gp_fail(c->r, TG_ERR_NOMEM, "gradcheck: %s%s", "out of memory", NULL);
        for (int64_t j = 0; st == TG_OK && j < t->numel; j++) c->grads[i][j] = tg_tensor_grad_get(t, j);
        tg_tensor_zero_grad(t);
    }
    tg_tape_free(tp);
    return st;
}

/* Switch t to a float64 copy of its values (once; int32 tensors stay). */
static tg_status gp_swap_in(gp_ctx *c, tg_tensor *t) {
    if (!t || !tg__is_float(t->dtype)) return TG_OK;
    for (int k = 0; k < c->n_sw; k++)
        if (c->sw[k].t == t) return TG_OK;
    double *d = tg__calloc(1, (size_t)t->numel * sizeof *d + TG_SLACK);
    if (!d) return gp_fail(c->r, TG_ERR_NOMEM, "gradcheck: %s%s", "out of memory", NULL);
    for (int64_t j = 0; j < t->numel; j++) d[j] = tg_tensor_get(t, j);
    c->sw[c->n_sw++] = (swapped){t, t->dtype, t->data};
    t->dtype = TG_F64;
    t->data = d;
    return TG_OK;
}

static void gp_swap_out(gp_ctx *c) {
    for (int k = 0; k < c->n_sw; k++) {
        tg_tensor *t = c->sw[k].t;
        free(t->data);
        t->dtype = c->sw[k].dtype;
        t->data = c->sw[k].data;
    }
    c->n_sw = 0;
}

/* sum(w * y) in double with the same weighting as the analytic pass. */
static double gp_weighted(const tg_tensor *y, uint64_t seed) {
    tg_rng rng = tg_rng_seeded(seed);
    double s = 0;
    for (int64_t j = 0; j < y->numel; j++) s += (tg_rng_uniform(&rng) * 2 - 1) * tg_tensor_get(y, j);
    return s;
}

static void gp_compare(gp_ctx *c, int i, int64_t j, double ana, double num, bool f32) {
    tg_gradcheck_report *r = c->r;
    double atol = c->o->atol > 0 ? c->o->atol : (f32 ? 1e-3 : 1e-6);
    double rtol = c->o->rtol > 0 ? c->o->rtol : (f32 ? 1e-2 : 1e-4);
    double abs_err = fabs(ana - num), rel = abs_err / fmax(fabs(num), 1e-12);
    r->checked++;
    if (!(abs_err <= r->max_abs_err) || r->worst_input < 0) {   /* NaN is the worst */
        r->max_abs_err = abs_err;
        r->worst_input = i;
        r->worst_index = j;
        r->worst_analytic = ana;
        r->worst_numeric = num;
    }
    if (rel > r->max_rel_err && abs_err > atol) r->max_rel_err = rel;
    if (!(abs_err <= atol + rtol * fabs(num))) r->passed = false;
}

/* Central differences of every checked element, in float64. */
static tg_status gp_numeric(gp_ctx *c, bool f32) {
    tg_tape *tp = tg_tape_new();
    if (!tp) return gp_fail(c->r, TG_ERR_NOMEM, "gradcheck: %s%s", "out of memory", NULL);
    double eps = c->o->eps > 0 ? c->o->eps : 1e-6;
    tg_status st = TG_OK;
    tg_no_grad_begin(tp);
    for (int i = 0; st == TG_OK && i < tg_params_count(c->p); i++) {
        tg_tensor *t = tg_params_at(c->p, i);
        if (!c->grads[i]) continue;
        double *v = t->data;   /* swapped in: float64 */
        for (int64_t j = 0; st == TG_OK && j < t->numel; j++) {
            double keep = v[j], f[2] = {0, 0};
            for (int side = 0; side < 2 && st == TG_OK; side++) {
                v[j] = keep + (side ? -eps : eps);
                tg_tape_reset(tp);
                tg_tensor *y = c->fn(tp, c->user);
                if (!y)
                    st = gp_fail(c->r, tp->status ? tp->status : TG_ERR_ARG,
                                 "gradcheck: function failed in float64: %.200s%s", tp->msg, NULL);
                else
                    f[side] = gp_weighted(y, c->o->seed);
            }
            v[j] = keep;
            if (st == TG_OK) gp_compare(c, i, j, c->grads[i][j], (f[0] - f[1]) / (2 * eps), f32);
        }
    }
    tg_tape_free(tp);
    return st;
}

static tg_status gp_run(gp_ctx *c, int n_data, tg_tensor *const *data, bool f32) {
    tg_status st = gp_analytic(c);
    for (int i = 0; st == TG_OK && i < tg_params_count(c->p); i++)
        st = gp_swap_in(c, tg_params_at(c->p, i));
    for (int k = 0; st == TG_OK && k < n_data; k++) st = gp_swap_in(c, data[k]);
    if (st == TG_OK) st = gp_numeric(c, f32);
    gp_swap_out(c);
    return st;
}

/* Checks the arguments; sets *f32 when some parameter is float32. */
static tg_status gp_args(tg_params *p, tg_model_fn fn, int n_data, tg_tensor *const *data,
                         tg_gradcheck_report *r, bool *f32) {
    if (!p || !fn || tg_params_count(p) < 1 || n_data < 0 || (n_data > 0 && !data))
        return gp_fail(r, TG_ERR_ARG, "gradcheck_params: %s%s",
                       "needs a registry with parameters, a function, and data when n_data > 0", NULL);
    *f32 = false;
    for (int i = 0; i < tg_params_count(p); i++) {
        tg_tensor *t = tg_params_at(p, i);
        if (t->owner == TG_OWN_ARENA)
            return gp_fail(r, TG_ERR_ARG, "gradcheck_params: parameter '%s' is a tape tensor%s",
                           tg_params_name(p, i), NULL);
        *f32 |= t->dtype == TG_F32;
    }
    for (int k = 0; k < n_data; k++)
        if (!data[k] || data[k]->owner == TG_OWN_ARENA)
            return gp_fail(r, TG_ERR_ARG, "gradcheck_params: %s%s",
                           "data tensors must be caller-owned (not NULL, not from a tape)", NULL);
    return TG_OK;
}

tg_status tg_gradcheck_params(tg_params *p, tg_model_fn fn, void *user, int n_data,
                              tg_tensor *const *data, const tg_gradcheck_opts *opts,
                              tg_gradcheck_report *report) {
    tg_gradcheck_opts defaults = {0};
    tg_gradcheck_report scratch;
    tg_gradcheck_report *r = report ? report : &scratch;
    memset(r, 0, sizeof *r);
    r->worst_input = -1;
    bool f32;
    tg_status st = gp_args(p, fn, n_data, data, r, &f32);
    if (st != TG_OK) return st;
    int n = tg_params_count(p);
    gp_ctx c = {p, fn, user, opts ? opts : &defaults, r, tg__calloc((size_t)n, sizeof(double *)),
                tg__calloc((size_t)(n + n_data), sizeof(swapped)), 0};
    if (!c.grads || !c.sw) st = gp_fail(r, TG_ERR_NOMEM, "gradcheck: %s%s", "out of memory", NULL);
    r->passed = true;
    if (st == TG_OK) st = gp_run(&c, n_data, data, f32);
    if (st != TG_OK) r->passed = false;
    else if (!r->passed)
        snprintf(r->message, sizeof r->message,
                 "gradcheck: %.120s[%lld]: analytic %.6g vs numeric %.6g (max abs err %.3g)",
                 tg_params_name(p, r->worst_input), (long long)r->worst_index, r->worst_analytic,
                 r->worst_numeric, r->max_abs_err);
    for (int i = 0; c.grads && i < n; i++) free(c.grads[i]);
    free(c.grads);
    free(c.sw);
    return st;
}
