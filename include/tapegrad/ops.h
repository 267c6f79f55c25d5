/* tapegrad/ops.h - the built-in primitives: a reference card.
 *
 * Every op takes the tape first, runs at once, records itself when an input
 * requires grad, and returns an arena tensor (NULL + tape error on bad input).
 * Float ops accept TG_F32 or TG_F64; all float inputs of one call share a dtype.
 * Shape letters: B batch, T time, C channels/features, H hidden, V vocabulary,
 * L length, K kernel. "bcast" = NumPy broadcasting; its VJP sums over the
 * broadcast axes. Axes may be negative (counted from the end). */
#ifndef TAPEGRAD_OPS_H
#define TAPEGRAD_OPS_H

#include "op.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- linear algebra ------------------------------------------------------ */
typedef struct tg_matmul_opts {
    bool trans_a, trans_b;
    /* heads = h > 0: per-head products of multi-head attention, read and
     * written through strides, never copies. An operand [B, T, h*d] stands
     * for the [B, h, T, d] its heads side by side are (a [B, h, ., .] one is
     * read as it is); the result is [B, h, M, N], or with merge_heads
     * [B, M, h*N] (heads side by side again). */
    int64_t heads;
    bool merge_heads;
} tg_matmul_opts;
/* a [..., M, K] x b [..., K, N] -> [..., M, N]; leading dims equal, or b 2-D
 * (shared by every batch). Transposes use strides, never copies. A 2-D b that
 * recurs in a recording with few rows of a (M <= BLIS's MC block, e.g. an
 * RNN's h W_hh^T) is packed once per recording (see tape.h); the products of
 * its steps then round identically whether packed or not. */
TG_API tg_tensor *tg_matmul(tg_tape *tp, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_matmul_ex(tg_tape *tp, tg_tensor *a, tg_tensor *b, const tg_matmul_opts *o);

/* ---- elementwise binary (bcast) ------------------------------------------ */
TG_API tg_tensor *tg_add(tg_tape *tp, tg_tensor *a, tg_tensor *b);   /* a + b */
TG_API tg_tensor *tg_sub(tg_tape *tp, tg_tensor *a, tg_tensor *b);   /* a - b */
TG_API tg_tensor *tg_mul(tg_tape *tp, tg_tensor *a, tg_tensor *b);   /* a * b */
TG_API tg_tensor *tg_div(tg_tape *tp, tg_tensor *a, tg_tensor *b);   /* a / b */

/* ---- elementwise unary (same shape) -------------------------------------- */
TG_API tg_tensor *tg_neg(tg_tape *tp, tg_tensor *x);                 /* -x            */
TG_API tg_tensor *tg_scale(tg_tape *tp, tg_tensor *x, double a);     /* a * x         */
TG_API tg_tensor *tg_shift(tg_tape *tp, tg_tensor *x, double b);     /* x + b         */
TG_API tg_tensor *tg_sigmoid(tg_tape *tp, tg_tensor *x);             /* 1/(1+e^-x), no overflow */
TG_API tg_tensor *tg_tanh(tg_tape *tp, tg_tensor *x);
TG_API tg_tensor *tg_relu(tg_tape *tp, tg_tensor *x);                /* max(x,0); d/dx at 0 is 0; NaN stays NaN */
TG_API tg_tensor *tg_exp(tg_tape *tp, tg_tensor *x);
TG_API tg_tensor *tg_log(tg_tape *tp, tg_tensor *x);
TG_API tg_tensor *tg_sqrt(tg_tape *tp, tg_tensor *x);
TG_API tg_tensor *tg_pow(tg_tape *tp, tg_tensor *x, double p);       /* x^p; d/dx of x^0 is 0 */
/* clip(slope*x + offset, 0, 1). tg_hard_sigmoid is Keras' classic (0.2, 0.5);
 * PyTorch's Hardsigmoid is (1/6, 0.5). Subgradient: slope strictly inside
 * (0,1), 0 at and beyond the two kinks (as PyTorch). */
TG_API tg_tensor *tg_hard_sigmoid(tg_tape *tp, tg_tensor *x);
TG_API tg_tensor *tg_hard_sigmoid_ex(tg_tape *tp, tg_tensor *x, double slope, double offset);
TG_API tg_tensor *tg_rsqrt(tg_tape *tp, tg_tensor *x);               /* 1/sqrt(x)     */
/* a * x + b (a, b finite); 1 - x is tg_affine(tp, x, -1, 1). */
TG_API tg_tensor *tg_affine(tg_tape *tp, tg_tensor *x, double a, double b);

/* ---- selection ----------------------------------------------------------- */
/* cond (float or int32; non-zero = true), a, b (floats of one dtype), all
 * bcast -> cond ? a : b. Never reads the value it discards, so a NaN or Inf
 * there cannot leak into y or into any gradient (keep*a + (1-keep)*b would:
 * 0 * NaN is NaN). da = cond ? dy : 0, db = cond ? 0 : dy; cond gets none. */
TG_API tg_tensor *tg_where(tg_tape *tp, tg_tensor *cond, tg_tensor *a, tg_tensor *b);

/* ---- softmax ------------------------------------------------------------- */
TG_API tg_tensor *tg_softmax(tg_tape *tp, tg_tensor *x, int axis);      /* max-shifted */
TG_API tg_tensor *tg_log_softmax(tg_tape *tp, tg_tensor *x, int axis);  /* x - logsumexp */

/* ---- shape --------------------------------------------------------------- */
/* n tensors equal except along axis -> concatenated along axis. */
TG_API tg_tensor *tg_concat(tg_tape *tp, int n, tg_tensor *const *xs, int axis);
/* x[..., start:stop, ...] along axis; negative start/stop count from the end. */
TG_API tg_tensor *tg_slice(tg_tape *tp, tg_tensor *x, int axis, int64_t start, int64_t stop);
/* n consecutive slices of the given sizes (summing to the axis length) into
 * outs[0..n-1]. Returns TG_OK or the error code (outs set to NULL). */
TG_API tg_status tg_split(tg_tape *tp, tg_tensor *x, int axis, int n, const int64_t *sizes,
                          tg_tensor **outs);
/* Same data, new shape; one entry may be -1 (inferred). */
TG_API tg_tensor *tg_reshape(tg_tape *tp, tg_tensor *x, int ndim, const int64_t *shape);
TG_API tg_tensor *tg_transpose(tg_tape *tp, tg_tensor *x, int axis0, int axis1);
/* out axis i = x axis perm[i]; perm has ndim(x) entries. */
TG_API tg_tensor *tg_permute(tg_tape *tp, tg_tensor *x, const int *perm);

/* ---- reductions ---------------------------------------------------------- */
TG_API tg_tensor *tg_sum(tg_tape *tp, tg_tensor *x);                 /* all -> shape [] */
TG_API tg_tensor *tg_mean(tg_tape *tp, tg_tensor *x);                /* all -> shape [] */
TG_API tg_tensor *tg_sum_axis(tg_tape *tp, tg_tensor *x, int axis, bool keepdim);
TG_API tg_tensor *tg_mean_axis(tg_tape *tp, tg_tensor *x, int axis, bool keepdim);
/* The same under PyTorch's word for an axis (torch.sum(x, dim, keepdim)). */
static inline tg_tensor *tg_sum_dim(tg_tape *tp, tg_tensor *x, int dim, bool keepdim) {
    return tg_sum_axis(tp, x, dim, keepdim);
}
static inline tg_tensor *tg_mean_dim(tg_tape *tp, tg_tensor *x, int dim, bool keepdim) {
    return tg_mean_axis(tp, x, dim, keepdim);
}
/* Max along axis; the gradient goes to the first maximal element. */
TG_API tg_tensor *tg_max_axis(tg_tape *tp, tg_tensor *x, int axis, bool keepdim);

/* ---- convolution and pooling (x is [B, C, L]) ---------------------------- */
typedef struct tg_conv1d_opts {
    int64_t stride;     /* default 1 (0 means 1) */
    int64_t padding;    /* zeros on both ends    */
    int64_t dilation;   /* default 1 (0 means 1) */
} tg_conv1d_opts;
/* x [B, Cin, L], w [Cout, Cin, K], bias [Cout] or NULL -> [B, Cout, Lout],
 * Lout = (L + 2*padding - dilation*(K-1) - 1) / stride + 1.
 * out[b,o,t] = bias[o] + sum_{c,k} w[o,c,k] * x[b,c,t*stride - padding + k*dilation]
 * (cross-correlation, as PyTorch's Conv1d). */
TG_API tg_tensor *tg_conv1d(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *bias,
                            const tg_conv1d_opts *o);
/* [B, C, L] -> [B, C, (L - kernel)/stride + 1]; stride 0 means kernel. */
TG_API tg_tensor *tg_max_pool1d(tg_tape *tp, tg_tensor *x, int64_t kernel, int64_t stride);

/* ---- 2-D convolution and pooling (x is [B, C, H, W], NCHW) ----------------
 * Pairs are (height, width). In option structs 0 means the default. */
typedef struct tg_conv2d_opts {
    int64_t stride[2];     /* default 1                                        */
    int64_t padding[2];    /* zeros on both sides of each axis                 */
    int64_t dilation[2];   /* default 1                                        */
    int64_t groups;        /* default 1; divides Cin and Cout                  */
} tg_conv2d_opts;
/* x [B, Cin, H, W], w [Cout, Cin/groups, KH, KW], bias [Cout] or NULL -> [B, Cout, Ho, Wo],
 * Ho = (H + 2*padding - dilation*(KH-1) - 1) / stride + 1 (Wo likewise).
 * out[b,o,i,j] = bias[o] + sum_{c,p,q} w[o,c,p,q] * x[b, g*Cin/groups + c,
 *                i*stride - padding + p*dilation, j*stride - padding + q*dilation],
 * g = o / (Cout/groups) (cross-correlation, as PyTorch's Conv2d). */
TG_API tg_tensor *tg_conv2d(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *bias);
TG_API tg_tensor *tg_conv2d_ex(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *bias,
                               const tg_conv2d_opts *o);
typedef struct tg_pool2d_opts {
    int64_t stride[2];     /* default: the kernel                              */
    int64_t padding[2];    /* at most half the kernel; max ignores it, avg counts zeros */
    bool exclude_pad;      /* avg: divide by the positions inside x, not KH*KW
                              (PyTorch's count_include_pad=False)              */
} tg_pool2d_opts;
/* [B, C, H, W] -> [B, C, Ho, Wo], Ho = (H + 2*padding - KH) / stride + 1: the max
 * (gradient to the first maximum) or the mean of each KH x KW window. */
TG_API tg_tensor *tg_max_pool2d(tg_tape *tp, tg_tensor *x, int64_t kh, int64_t kw);
TG_API tg_tensor *tg_max_pool2d_ex(tg_tape *tp, tg_tensor *x, int64_t kh, int64_t kw,
                                   const tg_pool2d_opts *o);
TG_API tg_tensor *tg_avg_pool2d(tg_tape *tp, tg_tensor *x, int64_t kh, int64_t kw);
TG_API tg_tensor *tg_avg_pool2d_ex(tg_tape *tp, tg_tensor *x, int64_t kh, int64_t kw,
                                   const tg_pool2d_opts *o);

/* ---- embedding, dropout -------------------------------------------------- */
/* weight [V, C], idx TG_I32 of any shape S -> [S..., C]. Index outside [0,V)
 * is an error naming the index. Gradient flows to weight only. */
TG_API tg_tensor *tg_embedding(tg_tape *tp, tg_tensor *weight, tg_tensor *idx);
/* Inverted dropout: keep with prob 1-p and scale by 1/(1-p); element i is kept
 * when the i-th tg_rng_uniform draw is >= p. Draws from *rng (advancing it) and
 * records the state it used on the tape; the mask (one byte per element) is
 * kept in the tape's arena for backward. When the tape is not training or
 * p == 0 it returns a recorded copy of x, and rng may be NULL. p in [0, 1). */
TG_API tg_tensor *tg_dropout(tg_tape *tp, tg_tensor *x, double p, tg_rng *rng);

/* ---- losses (scalar results, shape []) ----------------------------------- */
/* mean((pred - target)^2) over all elements; shapes equal. */
TG_API tg_tensor *tg_mse(tg_tape *tp, tg_tensor *pred, tg_tensor *target);
/* mean(max(x,0) - x*t + log(1 + exp(-|x|))); target float in [0,1], same shape. */
TG_API tg_tensor *tg_bce_with_logits(tg_tape *tp, tg_tensor *logits, tg_tensor *target);
/* logits [..., C], target TG_I32 [...] -> mean over targets != ignore_index of
 * -log_softmax(logits)[target]. All ignored: loss 0, gradient 0 (PyTorch gives
 * NaN there). tg_cross_entropy uses ignore_index -100 like PyTorch. */
TG_API tg_tensor *tg_cross_entropy(tg_tape *tp, tg_tensor *logits, tg_tensor *target);
TG_API tg_tensor *tg_cross_entropy_ex(tg_tape *tp, tg_tensor *logits, tg_tensor *target,
                                      int32_t ignore_index);

#ifdef __cplusplus
}
#endif
#include "call_site.h"   /* file:line of each call (anomaly mode, profiler) */
#endif
