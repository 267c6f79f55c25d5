/* ops/conv.c - 1-D convolution (im2col + GEMM) and 1-D max pooling.
 *
 * conv1d: x [B, Cin, L], w [Cout, Cin, K], bias [Cout] or none -> y [B, Cout, Lout]
 *   y[b,o,t] = bias[o] + sum_{c,k} w[o,c,k] * x[b,c, t*S - P + k*D]
 *   Lout = (L + 2P - D*(K-1) - 1) / S + 1      (S stride, P padding, D dilation)
 * Per batch entry, im2col unrolls x[b] into col [Cin*K, Lout] (zeros where a
 * window hangs over the padding), so y[b] = w [Cout, Cin*K] x col is one GEMM.
 * VJP: dw += dy[b] col^T; dcol = w^T dy[b], scattered back into dx[b] by col2im;
 * dbias[o] += sum_{b,t} dy[b,o,t]. col is rebuilt in the VJP rather than kept
 * from the forward: it is K times the size of x, and rebuilding it is a copy.
 * Two descriptors (conv1d, conv1d_bias) so that no bias means no third input.
 *
 * max_pool1d: x [B, C, L] -> [B, C, Lout], Lout = (L - kernel) / stride + 1,
 *   y[b,c,t] = max_{k < kernel} x[b,c, t*stride + k]
 * The forward saves each window's argmax (its first maximum, or its first NaN,
 * which propagates as in PyTorch) in node scratch; the VJP sends dy there. */
#include "kernels.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- conv1d -------------------------------------------------------------------- */
typedef struct conv_attr { int64_t stride, padding, dilation; } conv_attr;

typedef struct conv_dims { int64_t B, Cin, L, Cout, K, Lout; } conv_dims;

static conv_dims conv_dims_of(const tg_tensor *x, const tg_tensor *w, const conv_attr *at) {
    conv_dims d = {x->shape[0], x->shape[1], x->shape[2], w->shape[0], w->shape[2], 0};
    d.Lout = (d.L + 2 * at->padding - at->dilation * (d.K - 1) - 1) / at->stride + 1;
    return d;
}

/* Largest accepted stride, padding and dilation: 2^40, the longest axis a
 * tensor can have. Then L + 2P, (K-1)*D (checked by division in infer) and
 * every index im2col/col2im compute stay far from int64 overflow. */
#define CONV_MAX_ATTR ((int64_t)1 << 40)

static int conv_check_attr(tg_tape *tp, const conv_attr *at) {
    if (at->stride < 1 || at->stride > CONV_MAX_ATTR)
        return tg_fail(tp, TG_ERR_ARG, "conv1d", "stride must be in [1,2^40], got %lld",
                       (long long)at->stride);
    if (at->dilation < 1 || at->dilation > CONV_MAX_ATTR)
        return tg_fail(tp, TG_ERR_ARG, "conv1d", "dilation must be in [1,2^40], got %lld",
                       (long long)at->dilation);
    if (at->padding < 0 || at->padding > CONV_MAX_ATTR)
        return tg_fail(tp, TG_ERR_ARG, "conv1d", "padding must be in [0,2^40], got %lld",
                       (long long)at->padding);
    return 0;
}

static int conv_check_types(tg_tape *tp, int n_in, tg_tensor *const *in) {
    static const char *const role[3] = {"x", "w", "bias"};
    char s0[160], si[160];
    for (int i = 0; i < n_in; i++) {
        if (tg_check_float(tp, "conv1d", in[i])) return -1;
        if (in[i]->dtype != in[0]->dtype)
            return tg_fail(tp, TG_ERR_DTYPE, "conv1d", "dtypes differ: x %s %s %s %s %s",
                           tg_dtype_name(in[0]->dtype), tg_shape_str(in[0], s0, sizeof s0),
                           role[i], tg_dtype_name(in[i]->dtype),
                           tg_shape_str(in[i], si, sizeof si));
    }
    return 0;
}

/* "conv1d: <what>: x [..] w [..]": shapes are formatted only on an error. */
static int conv_fail(tg_tape *tp, const tg_tensor *x, const tg_tensor *w, const char *what) {
    char sx[160], sw[160];
    return tg_fail(tp, TG_ERR_SHAPE, "conv1d", "%s: x %s w %s", what,
                   tg_shape_str(x, sx, sizeof sx), tg_shape_str(w, sw, sizeof sw));
}

static int conv_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                      tg_desc *out) {
    const conv_attr *at = attr;
    const tg_tensor *x = in[0], *w = in[1], *bias = n_in == 3 ? in[2] : NULL;
    char sw[160], sb[160], what[160];
    if (conv_check_types(tp, n_in, in) || conv_check_attr(tp, at)) return -1;
    if (x->ndim != 3 || w->ndim != 3)
        return conv_fail(tp, x, w, "needs x [B,Cin,L] and w [Cout,Cin,K]");
    if (x->shape[1] != w->shape[1]) return conv_fail(tp, x, w, "input channels differ");
    if (w->shape[0] < 1 || w->shape[1] < 1 || w->shape[2] < 1)
        return tg_fail(tp, TG_ERR_SHAPE, "conv1d", "weight has an empty dimension: w %s",
                       tg_shape_str(w, sw, sizeof sw));
    if (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0]))
        return tg_fail(tp, TG_ERR_SHAPE, "conv1d", "bias must be [Cout]: bias %s w %s",
                       tg_shape_str(bias, sb, sizeof sb), tg_shape_str(w, sw, sizeof sw));
    /* The dilated kernel spans D*(K-1)+1 positions; it must fit in L + 2P,
     * else the output length is < 1. Written with a division: no overflow. */
    int64_t padded = x->shape[2] + 2 * at->padding, K = w->shape[2];
    if (padded < 1 || K - 1 > (padded - 1) / at->dilation) {
        snprintf(what, sizeof what,
                 "kernel (K %lld, dilation %lld) longer than padded input (length %lld), "
                 "output length < 1",
                 (long long)K, (long long)at->dilation, (long long)padded);
        return conv_fail(tp, x, w, what);
    }
    conv_dims d = conv_dims_of(x, w, at);
    /* forward and VJP unroll one batch entry into col [Cin*K, Lout]: its size
     * too must be a tensor's (Cin*K and Lout are each below 2^41) */
    int64_t col;
    if (__builtin_mul_overflow(d.Cin * d.K, d.Lout, &col) || col > TG_MAX_NUMEL) {
        snprintf(what, sizeof what, "im2col buffer [%lld,%lld] has more than 2^40 elements",
                 (long long)(d.Cin * d.K), (long long)d.Lout);
        return conv_fail(tp, x, w, what);
    }
    out->dtype = x->dtype;
    out->ndim = 3;
    out->shape[0] = d.B;
    out->shape[1] = d.Cout;
    out->shape[2] = d.Lout;
    return 0;
}

/* Output positions t in [*lo, *hi) read inside x for kernel offset off = k*D - P:
 * 0 <= t*S + off < L. Outside that range the column holds padding zeros. */
static void valid_range(int64_t off, int64_t S, int64_t L, int64_t Lout, int64_t *lo,
                        int64_t *hi) {
    /* ceil(-off / S) without -off + S - 1, which could pass INT64_MAX for a large S */
    int64_t a = off >= 0 ? 0 : -off / S + (-off % S != 0); /* first t with t*S + off >= 0 */
    int64_t b = L - off <= 0 ? 0 : (L - off - 1) / S + 1;  /* first t with t*S + off >= L */
    *lo = a < Lout ? a : Lout;
    *hi = b < Lout ? b : Lout;
    if (*hi < *lo) *hi = *lo;
}

#define CONV_LOOPS(T)                                                                            \
    /* col [Cin*K, Lout] from one batch entry x [Cin, L] */                                      \
    static void im2col_##T(const T *x, T *col, const conv_dims *d, const conv_attr *a) {         \
        for (int64_t c = 0; c < d->Cin; c++)                                                     \
            for (int64_t k = 0; k < d->K; k++) {                                                 \
                T *row = col + (c * d->K + k) * d->Lout;                                         \
                const T *xc = x + c * d->L;                                                      \
                int64_t off = k * a->dilation - a->padding, lo, hi;                              \
                valid_range(off, a->stride, d->L, d->Lout, &lo, &hi);                            \
                for (int64_t t = 0; t < lo; t++) row[t] = 0;                                     \
                for (int64_t t = lo; t < hi; t++) row[t] = xc[t * a->stride + off];              \
                for (int64_t t = hi; t < d->Lout; t++) row[t] = 0;                               \
            }                                                                                    \
    }                                                                                            \
    /* dx [Cin, L] += the columns of dcol [Cin*K, Lout], each back where im2col read it */      \
    static void col2im_##T(const T *dcol, T *dx, const conv_dims *d, const conv_attr *a) {       \
        for (int64_t c = 0; c < d->Cin; c++)                                                     \
            for (int64_t k = 0; k < d->K; k++) {                                                 \
                const T *row = dcol + (c * d->K + k) * d->Lout;                                  \
                T *dxc = dx + c * d->L;                                                          \
                int64_t off = k * a->dilation - a->padding, lo, hi;                              \
                valid_range(off, a->stride, d->L, d->Lout, &lo, &hi);                            \
                for (int64_t t = lo; t < hi; t++) dxc[t * a->stride + off] += row[t];            \
            }                                                                                    \
    }                                                                                            \
    /* y [Cout, Lout] = bias broadcast along t (the GEMM then adds with beta 1) */               \
    static void fill_bias_##T(const T *bias, T *y, const conv_dims *d) {                         \
        for (int64_t o = 0; o < d->Cout; o++)                                                    \
            for (int64_t t = 0; t < d->Lout; t++) y[o * d->Lout + t] = bias[o];                  \
    }                                                                                            \
    /* dbias[o] += sum_t dy[o, t] for one batch entry */                                         \
    static void bias_grad_##T(const T *dy, T *dbias, const conv_dims *d) {                       \
        for (int64_t o = 0; o < d->Cout; o++) {                                                  \
            T s = 0;                                                                             \
            for (int64_t t = 0; t < d->Lout; t++) s += dy[o * d->Lout + t];                      \
            dbias[o] += s;                                                                       \
        }                                                                                        \
    }

TG_STAMP_FLOAT(CONV_LOOPS)

/* Type dispatch for the loops above; offsets are in elements. */
static void im2col(tg_dtype dt, const void *x, void *col, const conv_dims *d,
                   const conv_attr *a) {
    TG_BY_DTYPE(dt, im2col, x, col, d, a);
}

static int conv_forward(tg_node *n) {
    const conv_attr *at = n->attr;
    tg_tensor *x = n->in[0], *w = n->in[1], *y = n->out;
    tg_tensor *bias = n->n_in == 3 ? n->in[2] : NULL;
    tg_dtype dt = x->dtype;
    conv_dims d = conv_dims_of(x, w, at);
    int64_t ck = d.Cin * d.K;
    void *col = tg__arena_alloc(n->tape, (size_t)(ck * d.Lout) * tg_dtype_size(dt), false);
    if (!col) return tg_fail(n->tape, TG_ERR_NOMEM, "conv1d", "out of memory (im2col)");
    for (int64_t b = 0; b < d.B; b++) {
        void *yb = tg__at(dt, y->data, b * d.Cout * d.Lout);
        im2col(dt, tg__at(dt, x->data, b * d.Cin * d.L), col, &d, at);
        if (bias) TG_BY_DTYPE(dt, fill_bias, bias->data, yb, &d);
        tg_gemm(n->tape, dt, false, false, d.Cout, d.Lout, ck, 1.0, w->data, ck, col, d.Lout,
                bias ? 1.0 : 0.0, yb, d.Lout);
    }
    return 0;
}

/* dw [Cout, Cin*K] += sum_b dy[b] col(x[b])^T; col: scratch [Cin*K, Lout]. */
static void conv_grad_weight(tg_tape *tp, tg_dtype dt, const conv_dims *d, const conv_attr *at,
                             const void *x, const void *dy, void *dw, void *col) {
    int64_t ck = d->Cin * d->K;
    for (int64_t b = 0; b < d->B; b++) {
        im2col(dt, tg__at(dt, x, b * d->Cin * d->L), col, d, at);
        tg_gemm(tp, dt, false, true, d->Cout, ck, d->Lout, 1.0, tg__at(dt, dy, b * d->Cout * d->Lout),
                d->Lout, col, d->Lout, 1.0, dw, ck);
    }
}

/* dx[b] += col2im(w^T dy[b]); col: scratch [Cin*K, Lout] for dcol. */
static void conv_grad_input(tg_tape *tp, tg_dtype dt, const conv_dims *d, const conv_attr *at,
                            const void *w, const void *dy, void *dx, void *col) {
    int64_t ck = d->Cin * d->K;
    for (int64_t b = 0; b < d->B; b++) {
        tg_gemm(tp, dt, true, false, ck, d->Lout, d->Cout, 1.0, w, ck,
                tg__at(dt, dy, b * d->Cout * d->Lout), d->Lout, 0.0, col, d->Lout);
        TG_BY_DTYPE(dt, col2im, col, tg__at(dt, dx, b * d->Cin * d->L), d, at);
    }
}

static int conv_vjp(tg_node *n) {
    const conv_attr *at = n->attr;
    tg_tensor *x = n->in[0], *w = n->in[1];
    tg_dtype dt = x->dtype;
    conv_dims d = conv_dims_of(x, w, at);
    void *dy = (void *)tg_output_grad(n);
    void *dx = tg_input_grad(n, 0), *dw = tg_input_grad(n, 1);
    void *dbias = n->n_in == 3 ? tg_input_grad(n, 2) : NULL;
    void *col = NULL; /* holds col for dw, then dcol for dx */
    if ((dx || dw) && !(col = tg__arena_alloc(n->tape, (size_t)(d.Cin * d.K * d.Lout) *
                                                           tg_dtype_size(dt), false)))
        return tg_fail(n->tape, TG_ERR_NOMEM, "conv1d", "out of memory (im2col)");
    if (dw) conv_grad_weight(n->tape, dt, &d, at, x->data, dy, dw, col);
    if (dx) conv_grad_input(n->tape, dt, &d, at, w->data, dy, dx, col);
    for (int64_t b = 0; dbias && b < d.B; b++)
        TG_BY_DTYPE(dt, bias_grad, tg__at(dt, dy, b * d.Cout * d.Lout), dbias, &d);
    return 0;
}

/* ---- double backward (tg_grad): conv1d's two gradients as ops ----------------------
 * conv1d is bilinear: y = F(x, w). Its VJP is Dx(dy, w) = J_x^T dy and
 * Dw(x, dy) = J_w^T dy, each linear in both of its inputs; their own VJPs are
 * again F, Dx and Dw (with u the gradient arriving at their output):
 *   Dx(g, w):  dg = F(u, w),  dw = Dw(u, g)
 *   Dw(x, g):  dx = Dx(g, u), dg = F(x, u)
 * so the three ops differentiate to any order. Dx and Dw are the kernels of
 * conv_vjp above; their first-order VJP is their vjp_graph run unrecorded. */
typedef struct conv_grad_attr {
    conv_attr conv;
    int64_t len;   /* Dx: the input length L; Dw: the kernel length K */
} conv_grad_attr;

static tg_tensor *conv_grad_input_op(tg_tape *tp, tg_tensor *g, tg_tensor *w, const conv_attr *c,
                                     int64_t L);
static tg_tensor *conv_grad_weight_op(tg_tape *tp, tg_tensor *x, tg_tensor *g, const conv_attr *c,
                                      int64_t K);

static tg_tensor *conv_apply(tg_tape *tp, tg_tensor *x, tg_tensor *w, const conv_attr *c) {
    tg_conv1d_opts o = {c->stride, c->padding, c->dilation};
    return tg_conv1d(tp, x, w, NULL, &o);
}

/* Only built by vjp_graph from a valid conv1d, so the shapes fit: infer states them. */
static int conv_grad_input_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                                 tg_desc *out) {
    (void)tp;
    (void)n_in;
    const conv_grad_attr *at = attr;   /* g [B, Cout, Lout], w [Cout, Cin, K] -> [B, Cin, L] */
    *out = (tg_desc){in[0]->dtype, 3, {in[0]->shape[0], in[1]->shape[1], at->len}};
    return 0;
}

static int conv_grad_weight_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                                  tg_desc *out) {
    (void)tp;
    (void)n_in;
    const conv_grad_attr *at = attr;   /* x [B, Cin, L], g [B, Cout, Lout] -> [Cout, Cin, K] */
    *out = (tg_desc){in[0]->dtype, 3, {in[1]->shape[1], in[0]->shape[1], at->len}};
    return 0;
}

static void *conv_col(tg_node *n, const conv_dims *d) {
    void *col = tg__arena_alloc(n->tape, (size_t)(d->Cin * d->K * d->Lout) *
                                             tg_dtype_size(n->out->dtype), false);
    if (!col) tg_fail(n->tape, TG_ERR_NOMEM, "conv1d", "out of memory (im2col)");
    return col;
}

static int conv_grad_input_forward(tg_node *n) {
    const conv_grad_attr *at = n->attr;
    tg_tensor *g = n->in[0], *w = n->in[1], *dx = n->out;
    conv_dims d = {g->shape[0], w->shape[1], at->len, w->shape[0], w->shape[2], g->shape[2]};
    void *col = conv_col(n, &d);
    if (!col) return -1;
    memset(dx->data, 0, (size_t)dx->numel * tg_dtype_size(dx->dtype));
    conv_grad_input(n->tape, dx->dtype, &d, &at->conv, w->data, g->data, dx->data, col);
    return 0;
}

static int conv_grad_weight_forward(tg_node *n) {
    const conv_grad_attr *at = n->attr;
    tg_tensor *x = n->in[0], *g = n->in[1], *dw = n->out;
    conv_dims d = {x->shape[0], x->shape[1], x->shape[2], g->shape[1], at->len, g->shape[2]};
    void *col = conv_col(n, &d);
    if (!col) return -1;
    memset(dw->data, 0, (size_t)dw->numel * tg_dtype_size(dw->dtype));
    conv_grad_weight(n->tape, dw->dtype, &d, &at->conv, x->data, g->data, dw->data, col);
    return 0;
}

static int conv_grad_input_vjp_graph(tg_node *n, tg_tensor *u, const bool *want, tg_tensor **dx) {
    const conv_grad_attr *at = n->attr;
    tg_tensor *g = n->in[0], *w = n->in[1];
    if (want[0]) dx[0] = conv_apply(n->tape, u, w, &at->conv);
    if (want[1]) dx[1] = conv_grad_weight_op(n->tape, u, g, &at->conv, w->shape[2]);
    return 0;
}

static int conv_grad_weight_vjp_graph(tg_node *n, tg_tensor *u, const bool *want, tg_tensor **dx) {
    const conv_grad_attr *at = n->attr;
    tg_tensor *x = n->in[0], *g = n->in[1];
    if (want[0]) dx[0] = conv_grad_input_op(n->tape, g, u, &at->conv, x->shape[2]);
    if (want[1]) dx[1] = conv_apply(n->tape, x, u, &at->conv);
    return 0;
}

static const tg_op conv1d_grad_input_op = {
    .name = "conv1d_grad_input", .n_in = 2, .attr_size = sizeof(conv_grad_attr),
    .infer = conv_grad_input_infer, .forward = conv_grad_input_forward,
    .vjp = tg__vjp_from_graph, .vjp_graph = conv_grad_input_vjp_graph};
static const tg_op conv1d_grad_weight_op = {
    .name = "conv1d_grad_weight", .n_in = 2, .attr_size = sizeof(conv_grad_attr),
    .infer = conv_grad_weight_infer, .forward = conv_grad_weight_forward,
    .vjp = tg__vjp_from_graph, .vjp_graph = conv_grad_weight_vjp_graph};

static tg_tensor *conv_grad_input_op(tg_tape *tp, tg_tensor *g, tg_tensor *w, const conv_attr *c,
                                     int64_t L) {
    conv_grad_attr at = {*c, L};
    return tg_apply(tp, &conv1d_grad_input_op, 2, (tg_tensor *[]){g, w}, &at);
}

static tg_tensor *conv_grad_weight_op(tg_tape *tp, tg_tensor *x, tg_tensor *g, const conv_attr *c,
                                      int64_t K) {
    conv_grad_attr at = {*c, K};
    return tg_apply(tp, &conv1d_grad_weight_op, 2, (tg_tensor *[]){x, g}, &at);
}

/* conv1d itself: dx = Dx(dy, w), dw = Dw(x, dy), dbias = dy summed over B and L. */
static int conv_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    const conv_attr *at = n->attr;
    tg_tensor *x = n->in[0], *w = n->in[1];
    if (want[0]) dx[0] = conv_grad_input_op(n->tape, g, w, at, x->shape[2]);
    if (want[1]) dx[1] = conv_grad_weight_op(n->tape, x, g, at, w->shape[2]);
    if (n->n_in == 3 && want[2])
        dx[2] = tg_sum_axis(n->tape, tg_sum_axis(n->tape, g, 2, false), 0, false);
    return 0;
}

static const tg_op conv1d_op = {
    .name = "conv1d",
    .n_in = 2,
    .attr_size = sizeof(conv_attr),
    .infer = conv_infer,
    .forward = conv_forward,
    .vjp = conv_vjp,
    .vjp_graph = conv_vjp_graph,
};

static const tg_op conv1d_bias_op = {
    .name = "conv1d_bias",
    .n_in = 3,
    .attr_size = sizeof(conv_attr),
    .infer = conv_infer,
    .forward = conv_forward,
    .vjp = conv_vjp,
    .vjp_graph = conv_vjp_graph,
};

tg_tensor *tg_conv1d(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *bias,
                     const tg_conv1d_opts *o) {
    conv_attr at = {o ? o->stride : 0, o ? o->padding : 0, o ? o->dilation : 0};
    if (at.stride == 0) at.stride = 1;
    if (at.dilation == 0) at.dilation = 1;
    if (!bias) {
        tg_tensor *in[2] = {x, w};
        return tg_apply(tp, &conv1d_op, 2, in, &at);
    }
    tg_tensor *in[3] = {x, w, bias};
    return tg_apply(tp, &conv1d_bias_op, 3, in, &at);
}

/* ---- max_pool1d ------------------------------------------------------------------ */
typedef struct pool_attr { int64_t kernel, stride; } pool_attr;   /* stride already >= 1 if valid */

static int pool_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                      tg_desc *out) {
    (void)n_in;
    const pool_attr *at = attr;
    const tg_tensor *x = in[0];
    char sx[160]; /* formatted only on an error */
    if (tg_check_float(tp, "max_pool1d", x)) return -1;
    if (x->ndim != 3)
        return tg_fail(tp, TG_ERR_SHAPE, "max_pool1d", "needs x [B,C,L], got %s",
                       tg_shape_str(x, sx, sizeof sx));
    if (at->kernel < 1)
        return tg_fail(tp, TG_ERR_ARG, "max_pool1d", "kernel must be >= 1, got %lld: x %s",
                       (long long)at->kernel, tg_shape_str(x, sx, sizeof sx));
    if (at->stride < 1 || at->stride > CONV_MAX_ATTR)
        return tg_fail(tp, TG_ERR_ARG, "max_pool1d", "stride must be in [1,2^40], got %lld: x %s",
                       (long long)at->stride, tg_shape_str(x, sx, sizeof sx));
    if (at->kernel > x->shape[2])
        return tg_fail(tp, TG_ERR_SHAPE, "max_pool1d",
                       "kernel %lld longer than input length, output length < 1: x %s",
                       (long long)at->kernel, tg_shape_str(x, sx, sizeof sx));
    out->dtype = x->dtype;
    out->ndim = 3;
    out->shape[0] = x->shape[0];
    out->shape[1] = x->shape[1];
    out->shape[2] = (x->shape[2] - at->kernel) / at->stride + 1;
    return 0;
}

#define POOL_LOOPS(T)                                                                            \
    /* rows = B*C independent rows of length L; arg gets flat indices into x */                  \
    static void pool_fwd_##T(const T *x, T *y, int64_t *arg, int64_t rows, int64_t L,            \
                             int64_t Lout, const pool_attr *a) {                                 \
        for (int64_t r = 0; r < rows; r++)                                                       \
            for (int64_t t = 0; t < Lout; t++) {                                                 \
                int64_t best = r * L + t * a->stride;                                            \
                for (int64_t i = best + 1; i < r * L + t * a->stride + a->kernel; i++)           \
                    if (x[i] > x[best] || (isnan(x[i]) && !isnan(x[best]))) best = i;            \
                y[r * Lout + t] = x[best];                                                       \
                arg[r * Lout + t] = best;                                                        \
            }                                                                                    \
    }                                                                                            \
    static void pool_vjp_##T(const T *dy, T *dx, const int64_t *arg, int64_t n) {                \
        for (int64_t i = 0; i < n; i++) dx[arg[i]] += dy[i];                                     \
    }

TG_STAMP_FLOAT(POOL_LOOPS)

static int pool_forward(tg_node *n) {
    const pool_attr *at = n->attr;
    tg_tensor *x = n->in[0], *y = n->out;
    int64_t *arg = tg_node_scratch(n, (size_t)y->numel * sizeof *arg);
    if (!arg) return -1;
    int64_t rows = x->shape[0] * x->shape[1];
    TG_BY_DTYPE(x->dtype, pool_fwd, x->data, y->data, arg, rows, x->shape[2], y->shape[2], at);
    return 0;
}

static int pool_vjp(tg_node *n) {
    void *dx = tg_input_grad(n, 0);
    if (!dx) return 0;
    TG_BY_DTYPE(n->out->dtype, pool_vjp, tg_output_grad(n), dx, n->scratch, n->out->numel);
    return 0;
}

/* For tg_grad: dy routed to the saved argmax, as an op (ops/graph_vjp.c). */
static int pool_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    if (want[0]) dx[0] = tg__argmax_scatter(n->tape, g, n->scratch, n->in[0]);
    return 0;
}

static const tg_op max_pool1d_op = {
    .name = "max_pool1d",
    .n_in = 1,
    .attr_size = sizeof(pool_attr),
    .infer = pool_infer,
    .forward = pool_forward,
    .vjp = pool_vjp,
    .vjp_graph = pool_vjp_graph,
};

tg_tensor *tg_max_pool1d(tg_tape *tp, tg_tensor *x, int64_t kernel, int64_t stride) {
    pool_attr at = {kernel, stride == 0 ? kernel : stride};
    return tg_apply(tp, &max_pool1d_op, 1, &x, &at);
}
