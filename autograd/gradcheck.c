/* autograd/gradcheck.c - tape gradients against central differences in float64. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef tg__gc_ctx gc_ctx;
enum { GC_MAX_INPUTS = TG__GC_MAX_INPUTS };

bool tg__gradcheck_checked(const gc_ctx *c, int i) {
    return tg__is_float(c->inputs[i]->dtype) && !(c->o->skip && c->o->skip[i]);
}

static tg_status fail(tg_gradcheck_report *r, tg_status st, const char *what, const char *detail) {
    snprintf(r->message, sizeof r->message, "gradcheck: %s%s%.200s", what, detail ? ": " : "",
             detail ? detail : "");
    return st;
}

/* ---- what tg_gradcheck_params (gradcheck_params.c) shares --------------------------- */
/* The output weighting w, uniform in [-1, 1) from the seed, the same every call. */
static double weight(tg_rng *rng) { return tg_rng_uniform(rng) * 2 - 1; }

tg_tensor *tg__gradcheck_weights(const tg_tensor *y, uint64_t seed) {
    tg_tensor *w = tg_tensor_new(y->dtype, y->ndim, y->shape);
    tg_rng rng = tg_rng_seeded(seed);
    for (int64_t i = 0; w && i < w->numel; i++) tg_tensor_set(w, i, weight(&rng));
    return w;
}

double tg__gradcheck_weighted_sum(const tg_tensor *y, uint64_t seed) {
    tg_rng rng = tg_rng_seeded(seed);
    double s = 0;
    for (int64_t i = 0; i < y->numel; i++) s += weight(&rng) * tg_tensor_get(y, i);
    return s;
}

void tg__gradcheck_compare(tg_gradcheck_report *r, const tg_gradcheck_opts *o, bool f32, int input,
                           int64_t index, double analytic, double numeric) {
    /* float32 defaults: every float32 case of the three gtest tables passes down
     * to atol 1e-5 / rtol 1e-4 and some fail at 3e-6 / 3e-5; these keep a 10x
     * margin, and a derivative 1% wrong fails wherever |dL/dx| > 0.011. */
    double atol = o->atol > 0 ? o->atol : (f32 ? 1e-4 : 1e-6);
    double rtol = o->rtol > 0 ? o->rtol : (f32 ? 1e-3 : 1e-4);
    double abs_err = fabs(analytic - numeric), rel = abs_err / fmax(fabs(numeric), 1e-12);
    r->checked++;
    /* NaN is the worst, and the first NaN stays (nothing compares above it) */
    if (r->worst_input < 0 || (!isnan(r->max_abs_err) && !(abs_err <= r->max_abs_err))) {
        r->max_abs_err = abs_err;
        r->worst_input = input;
        r->worst_index = index;
        r->worst_analytic = analytic;
        r->worst_numeric = numeric;
    }
    if (rel > r->max_rel_err && abs_err > atol) r->max_rel_err = rel;
    if (!(abs_err <= atol + rtol * fabs(numeric))) r->passed = false;
}

/* ---- tg_gradcheck ---------------------------------------------------------------- */

/* Analytic pass: backward of L = sum(w*y) in the inputs' own dtype.
 * grads[i] (float64, caller-owned) receives dL/dinput_i. */
/* The function gets GC_MAX_INPUTS pointers whatever n is: one that reads past
 * its n inputs finds NULL (ops fail cleanly on it), never garbage. */
static tg_status analytic(const gc_ctx *c, tg_tensor **grads) {
    tg_tensor *leaf[GC_MAX_INPUTS] = {0};
    tg_status st = TG_OK;
    tg_tape *tp = tg_tape_new();
    for (int i = 0; i < c->n; i++) {
        leaf[i] = tg_tensor_clone(c->inputs[i], c->inputs[i]->dtype);
        if (!leaf[i]) st = fail(c->r, tg_last_status(), "cannot copy an input", tg_last_error());
        tg_tensor_set_requires_grad(leaf[i], tg__gradcheck_checked(c, i));
    }
    tg_tensor *y = tp && st == TG_OK ? c->fn(tp, leaf, c->user) : NULL;
    if (st != TG_OK) {
        /* reported above */
    } else if (!y) {
        st = fail(c->r, tp && tp->status ? tp->status : TG_ERR_ARG, "function failed",
                  tp ? tp->msg : "no tape");
    } else {
        tg_tensor *w = tg__gradcheck_weights(y, c->o->seed);
        st = w ? tg_backward_ex(tp, y, w) : TG_ERR_NOMEM;
        if (st != TG_OK) fail(c->r, st, "backward failed", w ? tp->msg : "out of memory");
        tg_tensor_free(w);
    }
    for (int i = 0; i < c->n; i++) {
        if (st == TG_OK && tg__gradcheck_checked(c, i)) {
            grads[i] = tg_tensor_new(TG_F64, leaf[i]->ndim, leaf[i]->shape);
            if (!grads[i]) st = fail(c->r, TG_ERR_NOMEM, "out of memory", NULL);
            for (int64_t j = 0; grads[i] && j < leaf[i]->numel; j++)
                tg_tensor_set(grads[i], j, tg_tensor_grad_get(leaf[i], j));
        }
        tg_tensor_free(leaf[i]);
    }
    tg_tape_free(tp);
    return st;
}

/* Numeric pass in float64: move each checked element by +-eps. */
static tg_status numeric_compare(const gc_ctx *c, tg_tensor **grads) {
    tg_tensor *x[GC_MAX_INPUTS] = {0};
    tg_status st = TG_OK;
    tg_tape *tp = tg_tape_new();
    double eps = c->o->eps > 0 ? c->o->eps : 1e-6;
    tg_gradcheck_report *r = c->r;
    for (int i = 0; i < c->n && st == TG_OK; i++) {
        x[i] = tg_tensor_clone(c->inputs[i], tg__is_float(c->inputs[i]->dtype) ? TG_F64 : TG_I32);
        if (!x[i]) st = fail(r, tg_last_status(), "cannot copy an input", tg_last_error());
    }
    if (!tp && st == TG_OK) st = fail(r, TG_ERR_NOMEM, "out of memory", NULL);
    tg_no_grad_begin(tp);
    for (int i = 0; i < c->n && st == TG_OK; i++) {
        if (!tg__gradcheck_checked(c, i)) continue;
        double *v = x[i]->data;
        for (int64_t j = 0; j < x[i]->numel && st == TG_OK; j++) {
            double keep = v[j], f[2];
            for (int side = 0; side < 2; side++) {
                v[j] = keep + (side ? -eps : eps);
                tg_tape_reset(tp);
                tg_tensor *y = c->fn(tp, x, c->user);
                if (!y) {
                    st = fail(r, tp->status ? tp->status : TG_ERR_ARG, "function failed in float64",
                              tp->msg);
                    break;
                }
                f[side] = tg__gradcheck_weighted_sum(y, c->o->seed);
            }
            v[j] = keep;
            if (st != TG_OK) break;
            tg__gradcheck_compare(r, c->o, c->f32, i, j, tg_tensor_get(grads[i], j),
                                  (f[0] - f[1]) / (2 * eps));
        }
    }
    for (int i = 0; i < c->n; i++) tg_tensor_free(x[i]);
    tg_tape_free(tp);
    return st;
}

tg_status tg__gradcheck_start(gc_ctx *c, tg_fn fn, void *user, int n_inputs,
                              tg_tensor *const *inputs, const tg_gradcheck_opts *opts,
                              tg_gradcheck_report *report) {
    *c = (gc_ctx){.fn = fn, .user = user, .n = n_inputs, .inputs = inputs};
    c->o = opts ? opts : &c->defaults;
    c->r = report ? report : &c->scratch;
    tg_gradcheck_report *r = c->r;
    memset(r, 0, sizeof *r);
    r->worst_input = -1;
    char why[64];
    if (!fn || !inputs) return fail(r, TG_ERR_ARG, fn ? "inputs is NULL" : "function is NULL", NULL);
    if (n_inputs < 1 || n_inputs > GC_MAX_INPUTS) {
        snprintf(why, sizeof why, "%d inputs, not in [1,%d]", n_inputs, GC_MAX_INPUTS);
        return fail(r, TG_ERR_ARG, why, NULL);
    }
    for (int i = 0; i < n_inputs; i++) {
        snprintf(why, sizeof why, "input %d", i);
        if (!inputs[i]) return fail(r, TG_ERR_ARG, why, "is NULL");
        if (tg__tensor_stale(inputs[i])) return fail(r, TG_ERR_STATE, why, TG_STALE_TEXT);
        c->f32 |= inputs[i]->dtype == TG_F32;
    }
    r->passed = true;
    return TG_OK;
}

tg_status tg_gradcheck(tg_fn fn, void *user, int n_inputs, tg_tensor *const *inputs,
                       const tg_gradcheck_opts *opts, tg_gradcheck_report *report) {
    gc_ctx c;
    tg_status st = tg__gradcheck_start(&c, fn, user, n_inputs, inputs, opts, report);
    if (st != TG_OK) return st;
    tg_tensor *grads[GC_MAX_INPUTS] = {0};
    st = analytic(&c, grads);
    if (st == TG_OK) st = numeric_compare(&c, grads);
    for (int i = 0; i < n_inputs; i++) tg_tensor_free(grads[i]);
    if (st != TG_OK) c.r->passed = false;
    return st;
}
