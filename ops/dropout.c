/* ops/dropout.c - inverted dropout.
 *
 * x [...] -> y [...], y = x * m, m = 1/(1-p) with probability 1-p, else 0.
 * VJP: dx += dy * m (the same m).
 *
 * The wrapper copies the caller's tg_rng into the attributes, so the tape
 * records the state the mask was drawn from: element i is kept when its draw
 * u_i = tg_rng_uniform >= p. The forward draws once per element, keeps the
 * mask as one byte per element in node scratch for the VJP, and leaves the
 * state after its draws in the caller's rng (so the next call sees fresh
 * numbers, without a second pass to skip them).
 * Why a stored mask rather than regenerating it in the VJP from the recorded
 * state: measured on 2^20 floats (forward + VJP, -O2), regenerating took
 * 7.4 ms and the byte mask 4.2 ms (16K floats: 95 vs 57 us); a draw costs more
 * than reading a byte. The price is numel bytes of arena per recorded call.
 *
 * Identity mode (the tape is not training, or p == 0, decided at call time and
 * recorded): the result is a copy of x in the arena, recorded like any op, so
 * "every op result is an arena tensor" holds; rng may then be NULL and is not
 * advanced. p outside [0, 1) is an error in either mode. */
#include "kernels.h"

#include <math.h>
#include <string.h>

typedef struct dropout_attr {
    double p;
    tg_rng rng;       /* state before the first draw (what the tape records) */
    tg_rng *advance;  /* the caller's rng: the forward leaves the state after its
                         draws there. Only valid during the call, never in the VJP. */
    bool identity;
} dropout_attr;

static int dropout_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                         tg_desc *out) {
    const dropout_attr *at = attr;
    char sx[160]; /* formatted only on an error */
    if (tg_infer_same_as_input0(tp, n_in, in, attr, out)) return -1;
    if (!(at->p >= 0 && at->p < 1))
        return tg_fail(tp, TG_ERR_ARG, "dropout", "p must be in [0,1), got %g: x %s", at->p,
                       tg_shape_str(in[0], sx, sizeof sx));
    if (!at->identity && !at->advance)
        return tg_fail(tp, TG_ERR_ARG, "dropout", "rng is NULL (needed in training mode): x %s",
                       tg_shape_str(in[0], sx, sizeof sx));
    return 0;
}

/* u = (next >> 11) * 2^-53 >= p  <=>  (next >> 11) >= ceil(p * 2^53): an
 * exact integer form of "tg_rng_uniform(r) >= p" without the conversion. */
static uint64_t keep_threshold(double p) { return (uint64_t)ceil(p * 0x1.0p53); }

#define DROPOUT_LOOPS(T)                                                                         \
    static void dropout_fwd_##T(const T *x, T *y, uint8_t *keep, int64_t n,                      \
                                const dropout_attr *a) {                                         \
        tg_rng r = a->rng;                                                                       \
        uint64_t thr = keep_threshold(a->p);                                                     \
        T scale = (T)(1.0 / (1.0 - a->p));                                                       \
        for (int64_t i = 0; i < n; i++) {                                                        \
            keep[i] = (tg_rng_next(&r) >> 11) >= thr;                                            \
            y[i] = x[i] * (keep[i] ? scale : 0); /* a NaN stays NaN, as in PyTorch */            \
        }                                                                                        \
        *a->advance = r;                                                                         \
    }                                                                                            \
    static void dropout_vjp_##T(const T *dy, T *dx, const uint8_t *keep, int64_t n, double p) {  \
        T scale = (T)(1.0 / (1.0 - p));                                                          \
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (keep[i] ? scale : 0);                  \
    }

TG_STAMP_FLOAT(DROPOUT_LOOPS)

static int dropout_forward(tg_node *n) {
    const dropout_attr *at = n->attr;
    tg_tensor *x = n->in[0], *y = n->out;
    if (at->identity) {
        memcpy(y->data, x->data, (size_t)x->numel * tg_dtype_size(x->dtype));
        return 0;
    }
    uint8_t *keep = tg_node_scratch(n, (size_t)x->numel);
    if (!keep) return -1;
    TG_BY_DTYPE(x->dtype, dropout_fwd, x->data, y->data, keep, x->numel, at);
    return 0;
}

static int dropout_vjp(tg_node *n) {
    const dropout_attr *at = n->attr;
    tg_tensor *x = n->in[0];
    void *dx = tg_input_grad(n, 0);
    const void *dy = tg_output_grad(n);
    if (!dx) return 0;
    if (at->identity)
        tg__ew_add(x->dtype, dx, dy, x->numel);
    else
        TG_BY_DTYPE(x->dtype, dropout_vjp, dy, dx, n->scratch, x->numel, at->p);
    return 0;
}

/* For tg_grad: dx = dy * keep / (1 - p), the mask a constant from the node. */
static int dropout_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    const dropout_attr *at = n->attr;
    tg_tensor *x = n->in[0];
    if (!want[0]) return 0;
    if (at->identity) {
        dx[0] = g;
        return 0;
    }
    const uint8_t *keep = n->scratch;
    tg_tensor *m = tg_tape_tensor(n->tape, x->dtype, x->ndim, x->shape);
    for (int64_t i = 0; m && i < x->numel; i++)
        if (keep[i]) tg_tensor_set(m, i, 1.0 / (1.0 - at->p));
    dx[0] = tg_mul(n->tape, g, m);
    return 0;
}

static const tg_op dropout_op = {
    .name = "dropout",
    .n_in = 1,
    .attr_size = sizeof(dropout_attr),
    .infer = dropout_infer,
    .forward = dropout_forward,
    .vjp = dropout_vjp,
    .vjp_graph = dropout_vjp_graph,
};

tg_tensor *tg_dropout(tg_tape *tp, tg_tensor *x, double p, tg_rng *rng) {
    dropout_attr at = {.p = p, .advance = rng, .identity = !tg_tape_training(tp) || p == 0};
    if (rng) at.rng = *rng;
    return tg_apply(tp, &dropout_op, 1, &x, &at);
}
