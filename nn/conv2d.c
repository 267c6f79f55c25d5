/* nn/conv2d.c - the Conv2D layer: act(conv2d(x, W) + b), PyTorch's nn.Conv2d
 * names and initialisation (tapegrad/nn_conv2d.h). The gradient comes from
 * the tape: this file only composes tg_conv2d_ex and an activation. */
#include "nn_private.h"

#include <math.h>

tg_status tg_conv2d_layer_init(tg_conv2d_layer *c, tg_params *p, const char *name, int64_t in,
                               int64_t out, int64_t kh, int64_t kw, tg_dtype dt, tg_rng *rng,
                               const tg_conv2d_layer_opts *o) {
    tg_conv2d_layer_opts def = {0};
    if (!o) o = &def;
    int64_t groups = o->conv.groups ? o->conv.groups : 1;
    if (!c || !p || in <= 0 || out <= 0 || kh <= 0 || kw <= 0 || groups < 1 || in % groups ||
        out % groups)
        return nn_error(TG_ERR_ARG,
                        "conv2d_layer: needs sizes > 0 and groups dividing both channel counts: "
                        "in %lld, out %lld, kernel %lldx%lld, groups %lld",
                        (long long)in, (long long)out, (long long)kh, (long long)kw,
                        (long long)groups);
    *c = (tg_conv2d_layer){.in = in, .out = out, .kernel = {kh, kw}, .conv = o->conv,
                           .act = o->activation};
    /* PyTorch: kaiming_uniform(a = sqrt 5) on the weight and U(+-1/sqrt fan_in) on the
     * bias, both of which come to the bound 1/sqrt(fan_in) */
    double fan_in = (double)(in / groups) * (double)kh * (double)kw, bound = 1 / sqrt(fan_in);
    tg_initializer torch_default = {TG_INIT_UNIFORM, -bound, bound};
    c->weight = nn_param(p, name, "weight", dt, 4, (int64_t[]){out, in / groups, kh, kw},
                         nn_init_or(o->weight_init, torch_default), rng);
    if (!c->weight) return nn_last();
    if (o->no_bias) return TG_OK;
    c->bias = nn_param(p, name, "bias", dt, 1, &out, nn_init_or(o->bias_init, torch_default), rng);
    return c->bias ? TG_OK : nn_last();
}

/* x [B, Cin, H, W] -> act(conv2d(x, W) + b) [B, Cout, Ho, Wo] */
tg_tensor *tg_conv2d_layer_forward(tg_tape *tp, const tg_conv2d_layer *c, tg_tensor *x) {
    if (!c || !c->weight) {
        tg_fail(tp, TG_ERR_ARG, "conv2d_layer", "layer is not initialised");
        return NULL;
    }
    return tg_activate(tp, tg_conv2d_ex(tp, x, c->weight, c->bias, &c->conv), c->act);
}
