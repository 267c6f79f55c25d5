/* optim/clip.c - gradient clipping by global norm and by value. */
#include "optim_internal.h"

#include <math.h>

/* Sum of squares of one gradient, in double. */
static double grad_sumsq(const tg_tensor *t) {
    double s = 0;
    if (t->dtype == TG_F64)
        for (int64_t i = 0; i < t->numel; i++)
            s += ((const double *)t->grad)[i] * ((const double *)t->grad)[i];
    else
        for (int64_t i = 0; i < t->numel; i++)
            s += (double)((const float *)t->grad)[i] * ((const float *)t->grad)[i];
    return s;
}

static void grad_scale(tg_tensor *t, double c) {
    if (t->dtype == TG_F64)
        for (int64_t i = 0; i < t->numel; i++) ((double *)t->grad)[i] *= c;
    else
        for (int64_t i = 0; i < t->numel; i++)
            ((float *)t->grad)[i] = (float)(((float *)t->grad)[i] * c);
}

static bool has_float_grad(const tg_tensor *t) {
    return t && t->grad && (t->dtype == TG_F32 || t->dtype == TG_F64);
}

double tg_clip_grad_norm(tg_params *p, double max_norm) {
    if (!p || !(max_norm >= 0)) {
        tg__set_last_error(TG_ERR_ARG, "clip_grad_norm: max_norm %g must be >= 0 (registry %s)",
                           max_norm, p ? "given" : "NULL");
        return -1;
    }
    /* As PyTorch: the norm of the per-tensor norms. */
    double total = 0;
    for (int i = 0; i < tg_params_count(p); i++) {
        tg_tensor *t = tg_params_at(p, i);
        if (has_float_grad(t)) total += grad_sumsq(t);
    }
    total = sqrt(total);
    if (!isfinite(total)) return total;
    double coef = max_norm / (total + 1e-6);
    if (coef < 1.0)
        for (int i = 0; i < tg_params_count(p); i++) {
            tg_tensor *t = tg_params_at(p, i);
            if (has_float_grad(t)) grad_scale(t, coef);
        }
    return total;
}

tg_status tg_clip_grad_value(tg_params *p, double clip) {
    if (!p || !(clip >= 0)) {
        tg__set_last_error(TG_ERR_ARG, "clip_grad_value: clip %g must be >= 0 (registry %s)", clip,
                           p ? "given" : "NULL");
        return TG_ERR_ARG;
    }
    for (int i = 0; i < tg_params_count(p); i++) {
        tg_tensor *t = tg_params_at(p, i);
        if (!has_float_grad(t)) continue;
        for (int64_t j = 0; j < t->numel; j++) {
            double g = tg_tensor_grad_get(t, j);
            double c = g > clip ? clip : g < -clip ? -clip : g;   /* NaN stays NaN */
            if (t->dtype == TG_F64)
                ((double *)t->grad)[j] = c;
            else
                ((float *)t->grad)[j] = (float)c;
        }
    }
    return TG_OK;
}
