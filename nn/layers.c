/* nn/layers.c - Linear, LayerNorm, SpatialDropout1D, Conv1D, pooling, activations.
 * Each layer is a few op calls under its formula; gradients come from the tape. */
#include "nn_private.h"

#include <math.h>
#include <stdio.h>

tg_tensor *nn_const(tg_tape *tp, tg_dtype dt, int ndim, const int64_t *shape, double v) {
    tg_tensor *t = tg_tape_tensor(tp, dt, ndim, shape);
    if (t && v != 0) tg_tensor_fill(t, v);
    return t;
}

/* x [..., in] x W^T + b -> [..., out]; W [out, in] is used transposed in place. */
tg_tensor *nn_affine(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *b) {
    tg_tensor *y = tg_matmul_ex(tp, x, w, &(tg_matmul_opts){.trans_b = true});
    return b ? tg_add(tp, y, b) : y;
}

const char *tg_act_name(tg_act act) {
    switch (act) {
    case TG_ACT_DEFAULT: return "default";
    case TG_ACT_LINEAR: return "linear";
    case TG_ACT_TANH: return "tanh";
    case TG_ACT_SIGMOID: return "sigmoid";
    case TG_ACT_HARD_SIGMOID: return "hard_sigmoid";
    case TG_ACT_RELU: return "relu";
    case TG_ACT_SOFTMAX: return "softmax";
    }
    return "unknown";
}

tg_tensor *tg_activate(tg_tape *tp, tg_tensor *x, tg_act act) {
    switch (act) {
    case TG_ACT_DEFAULT:
    case TG_ACT_LINEAR: return x;
    case TG_ACT_TANH: return tg_tanh(tp, x);
    case TG_ACT_SIGMOID: return tg_sigmoid(tp, x);
    case TG_ACT_HARD_SIGMOID: return tg_hard_sigmoid(tp, x);
    case TG_ACT_RELU: return tg_relu(tp, x);
    case TG_ACT_SOFTMAX: return tg_softmax(tp, x, -1);
    }
    tg_fail(tp, TG_ERR_ARG, "activate", "unknown activation %d", (int)act);
    return NULL;
}

/* ---- Linear ------------------------------------------------------------------------ */
tg_status tg_linear_init(tg_linear *l, tg_params *p, const char *name, int64_t in, int64_t out,
                         tg_dtype dt, tg_rng *rng, const tg_linear_opts *o) {
    tg_linear_opts def = {0};
    if (!o) o = &def;
    if (!l || !p || in <= 0 || out <= 0)
        return nn_error(TG_ERR_ARG, "linear: needs a layer, a registry and sizes > 0 (%lld, %lld)",
                        (long long)in, (long long)out);
    *l = (tg_linear){.in = in, .out = out, .act = o->activation};
    l->weight = nn_param(p, name, "weight", dt, 2, (int64_t[]){out, in},
                         nn_init_or(o->weight_init, (tg_initializer){TG_INIT_GLOROT_UNIFORM, 0, 0}), rng);
    if (!l->weight) return nn_last();
    if (o->no_bias) return TG_OK;
    l->bias = nn_param(p, name, "bias", dt, 1, (int64_t[]){out},
                       nn_init_or(o->bias_init, (tg_initializer){TG_INIT_ZEROS, 0, 0}), rng);
    return l->bias ? TG_OK : nn_last();
}

/* y = act(x W^T + b): x [..., in] -> [..., out] */
tg_tensor *tg_linear_forward(tg_tape *tp, const tg_linear *l, tg_tensor *x) {
    if (!l || !l->weight) {
        tg_fail(tp, TG_ERR_ARG, "linear", "layer is not initialised");
        return NULL;
    }
    return tg_activate(tp, nn_affine(tp, x, l->weight, l->bias), l->act);
}

/* ---- LayerNorm -------------------------------------------------------------------- */
tg_status tg_layer_norm_init(tg_layer_norm *ln, tg_params *p, const char *name, int64_t dim,
                             double eps, tg_dtype dt) {
    if (!ln || !p || dim <= 0)
        return nn_error(TG_ERR_ARG, "layer_norm: needs a layer, a registry and dim > 0");
    if (isnan(eps) || isinf(eps)) /* NaN read as "not > 0" and became 1e-5 silently */
        return nn_error(TG_ERR_ARG, "layer_norm: eps must be a finite number, got %g", eps);
    *ln = (tg_layer_norm){.dim = dim, .eps = eps > 0 ? eps : 1e-5};
    ln->gamma = nn_param(p, name, "weight", dt, 1, &dim, (tg_initializer){TG_INIT_ONES, 0, 0}, NULL);
    if (!ln->gamma) return nn_last();
    ln->beta = nn_param(p, name, "bias", dt, 1, &dim, (tg_initializer){TG_INIT_ZEROS, 0, 0}, NULL);
    return ln->beta ? TG_OK : nn_last();
}

/* x [..., C]: mu = mean(x), d = x - mu, var = mean(d^2),
 * y = d * rsqrt(var + eps) (* weight + bias) */
tg_tensor *tg_layer_norm_fn(tg_tape *tp, tg_tensor *x, tg_tensor *weight, tg_tensor *bias,
                            double eps) {
    if (!x) return NULL;
    char s[160], sw[160], sb[160];
    int64_t C = tg_tensor_ndim(x) >= 1 ? tg_tensor_dim(x, -1) : 0;
    bool w_ok = !weight || (tg_tensor_ndim(weight) == 1 && tg_tensor_dim(weight, 0) == C);
    bool b_ok = !bias || (tg_tensor_ndim(bias) == 1 && tg_tensor_dim(bias, 0) == C);
    if (C < 1 || !w_ok || !b_ok) {
        tg_fail(tp, TG_ERR_SHAPE, "layer_norm", "x [..., C] with weight and bias [C] or NULL: "
                "x %s weight %s bias %s", tg_shape_str(x, s, sizeof s),
                weight ? tg_shape_str(weight, sw, sizeof sw) : "NULL",
                bias ? tg_shape_str(bias, sb, sizeof sb) : "NULL");
        return NULL;
    }
    if (!(eps > 0 && eps < INFINITY)) {
        tg_fail(tp, TG_ERR_ARG, "layer_norm", "eps must be finite and > 0: %g", eps);
        return NULL;
    }
    tg_tensor *mu = tg_mean_axis(tp, x, -1, true);
    tg_tensor *d = tg_sub(tp, x, mu);
    tg_tensor *var = tg_mean_axis(tp, tg_mul(tp, d, d), -1, true);
    tg_tensor *y = tg_mul(tp, d, tg_rsqrt(tp, tg_shift(tp, var, eps)));
    if (weight) y = tg_mul(tp, y, weight);
    return bias ? tg_add(tp, y, bias) : y;
}

tg_tensor *tg_layer_norm_forward(tg_tape *tp, const tg_layer_norm *ln, tg_tensor *x) {
    if (!ln || !ln->gamma) {
        tg_fail(tp, TG_ERR_ARG, "layer_norm", "layer is not initialised");
        return NULL;
    }
    return tg_layer_norm_fn(tp, x, ln->gamma, ln->beta, ln->eps);
}

/* ---- SpatialDropout1D -------------------------------------------------------------- */
/* x [B, T, C] * (dropout of ones [B, 1, C]): one draw per (b, c), shared by all T. */
tg_tensor *tg_spatial_dropout1d(tg_tape *tp, tg_tensor *x, double p, tg_rng *rng) {
    if (!x) return NULL;
    if (tg_tensor_ndim(x) != 3) {
        char s[160];
        tg_fail(tp, TG_ERR_SHAPE, "spatial_dropout1d", "x must be [B, T, C]: x %s",
                tg_shape_str(x, s, sizeof s));
        return NULL;
    }
    if (!(p >= 0 && p < 1)) {
        tg_fail(tp, TG_ERR_ARG, "spatial_dropout1d", "p must be in [0, 1): %g", p);
        return NULL;
    }
    if (!tg_tape_training(tp) || p == 0) return x;
    int64_t shape[3] = {tg_tensor_dim(x, 0), 1, tg_tensor_dim(x, 2)};
    tg_tensor *keep = tg_dropout(tp, nn_const(tp, tg_tensor_dtype(x), 3, shape, 1), p, rng);
    return tg_mul(tp, x, keep);
}

/* ---- Conv1D ------------------------------------------------------------------------ */
tg_status tg_conv1d_layer_init(tg_conv1d_layer *c, tg_params *p, const char *name, int64_t in,
                               int64_t out, int64_t kernel, tg_dtype dt, tg_rng *rng,
                               const tg_conv1d_layer_opts *o) {
    tg_conv1d_layer_opts def = {0};
    if (!o) o = &def;
    if (!c || !p || in <= 0 || out <= 0 || kernel <= 0)
        return nn_error(TG_ERR_ARG, "conv1d_layer: needs sizes > 0");
    *c = (tg_conv1d_layer){.in = in, .out = out, .kernel = kernel, .conv = o->conv,
                           .channels_last = o->channels_last, .act = o->activation};
    c->weight = nn_param(p, name, "weight", dt, 3, (int64_t[]){out, in, kernel},
                         nn_init_or(o->weight_init, (tg_initializer){TG_INIT_GLOROT_UNIFORM, 0, 0}), rng);
    if (!c->weight) return nn_last();
    if (o->no_bias) return TG_OK;
    c->bias = nn_param(p, name, "bias", dt, 1, &out,
                       nn_init_or(o->bias_init, (tg_initializer){TG_INIT_ZEROS, 0, 0}), rng);
    return c->bias ? TG_OK : nn_last();
}

/* [B, Cin, L] -> act(conv1d(x, W) + b) [B, Cout, Lout]; channels_last permutes around it. */
tg_tensor *tg_conv1d_layer_forward(tg_tape *tp, const tg_conv1d_layer *c, tg_tensor *x) {
    if (!c || !c->weight) {
        tg_fail(tp, TG_ERR_ARG, "conv1d_layer", "layer is not initialised");
        return NULL;
    }
    if (c->channels_last) x = tg_transpose(tp, x, 1, 2);
    tg_tensor *y = tg_activate(tp, tg_conv1d(tp, x, c->weight, c->bias, &c->conv), c->act);
    return c->channels_last ? tg_transpose(tp, y, 1, 2) : y;
}

/* [B, C, L] -> max over L -> [B, C] */
tg_tensor *tg_global_max_pool1d(tg_tape *tp, tg_tensor *x) {
    if (!x) return NULL;
    if (tg_tensor_ndim(x) != 3) {
        char s[160];
        tg_fail(tp, TG_ERR_SHAPE, "global_max_pool1d", "x must be [B, C, L]: x %s",
                tg_shape_str(x, s, sizeof s));
        return NULL;
    }
    return tg_max_axis(tp, x, 2, false);
}
