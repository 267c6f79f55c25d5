/* tapegrad/nn_conv2d.h - the Conv2D layer, composed from tg_conv2d (ops.h).
 *
 * x [B, Cin, H, W] -> act(conv2d(x, W) + b) [B, Cout, Ho, Wo], as PyTorch's
 * nn.Conv2d: W [Cout, Cin/groups, KH, KW] "<name>.weight", b [Cout]
 * "<name>.bias", so weights import from a PyTorch state_dict without changes.
 * Default initialisation is PyTorch's too: weight and bias uniform in
 * +-1/sqrt(fan_in), fan_in = Cin/groups * KH * KW. Pooling is the primitive
 * (tg_max_pool2d, tg_avg_pool2d); flattening is tg_reshape. */
#ifndef TAPEGRAD_NN_CONV2D_H
#define TAPEGRAD_NN_CONV2D_H

#include "nn_layers.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_conv2d_layer {
    tg_tensor *weight;       /* [Cout, Cin/groups, KH, KW] */
    tg_tensor *bias;         /* [Cout] or NULL             */
    int64_t in, out, kernel[2];
    tg_conv2d_opts conv;     /* stride, padding, dilation, groups */
    tg_act act;
} tg_conv2d_layer;

typedef struct tg_conv2d_layer_opts {
    tg_conv2d_opts conv;     /* stride, padding, dilation, groups (0: defaults) */
    bool no_bias;
    tg_act activation;       /* default linear                                  */
    tg_initializer weight_init;   /* default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
    tg_initializer bias_init;     /* default the same                           */
} tg_conv2d_layer_opts;

/* in, out channels; kh x kw kernel. groups must divide in and out. */
TG_API tg_status tg_conv2d_layer_init(tg_conv2d_layer *c, tg_params *p, const char *name,
                                      int64_t in, int64_t out, int64_t kh, int64_t kw,
                                      tg_dtype dt, tg_rng *rng, const tg_conv2d_layer_opts *o);
TG_API tg_tensor *tg_conv2d_layer_forward(tg_tape *tp, const tg_conv2d_layer *c, tg_tensor *x);

#ifdef __cplusplus
}
#endif
#include "call_site.h"   /* file:line of each call (anomaly mode, profiler) */
#endif
