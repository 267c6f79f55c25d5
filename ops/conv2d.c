/* ops/conv2d.c - 2-D convolution (im2col + GEMM, with groups) and 2-D max and
 * average pooling, NCHW as in PyTorch.
 *
 * conv2d: x [B, Cin, H, W], w [Cout, Cin/G, KH, KW], bias [Cout] or none -> y [B, Cout, Ho, Wo]
 *   y[b,o,i,j] = bias[o] + sum_{c,p,q} w[o,c,p,q]
 *                            * x[b, g*Cin/G + c, i*SH - PH + p*DH, j*SW - PW + q*DW]
 *   with g = o / (Cout/G) the group of output channel o (G groups; S stride,
 *   P padding, D dilation, per axis); Ho = (H + 2PH - DH*(KH-1) - 1) / SH + 1, Wo likewise.
 * Per batch entry, im2col unrolls x[b] into col [Cin*KH*KW, Ho*Wo] (zeros where
 * a window hangs over the padding). Group g's rows of col form one block
 * col_g [Cin/G*KH*KW, Ho*Wo], so each group is one GEMM:
 *   y_g [Cout/G, Ho*Wo] = w_g [Cout/G, Cin/G*KH*KW] x col_g.
 * VJP per group: dw_g += dy_g col_g^T; dcol_g = w_g^T dy_g, added back into dx[b]
 * by col2im; dbias[o] += sum of dy[b,o,:,:]. As in conv1d, col is rebuilt in
 * the VJP instead of kept: it is KH*KW times the size of x, and rebuilding it
 * is a copy. Two descriptors (conv2d, conv2d_bias): no bias, no third input.
 *
 * max_pool2d / avg_pool2d: x [B, C, H, W] -> [B, C, Ho, Wo], Ho = (H + 2PH - KH) / SH + 1.
 *   Windows are clipped to the input. Max ignores padded positions (as if they
 *   held -inf) and keeps each window's argmax (first maximum, or first NaN,
 *   which propagates as in PyTorch) in node scratch for its VJP. Avg counts
 *   padded positions as zeros and divides by KH*KW, or with exclude_pad by the
 *   positions inside the input (PyTorch's count_include_pad=False).
 *
 * Sizes: stride, padding and dilation come from users and are hostile. infer
 * caps padding at 2^40 (so H + 2P cannot overflow), compares the dilated
 * kernel with the padded input by division, and checks every buffer's element
 * count with overflow-checked products before anything is allocated. */
#include "../autograd/internal.h"

#include <math.h>
#include <string.h>

#define MAX_PADDING ((int64_t)1 << 40)

/* ---- geometry shared by convolution and pooling ------------------------------------ */
/* One spatial axis of a sliding window: input length n, kernel k, stride s,
 * padding p, dilation d, and out output positions (0 when the window does not fit). */
typedef struct win_axis {
    int64_t n, k, s, p, d, out;
} win_axis;

static win_axis axis_of(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d) {
    win_axis a = {n, k, s, p, d, 0};
    int64_t padded = n + 2 * p; /* n < 2^60 (tensor bound), p <= 2^40: no overflow */
    /* the dilated kernel spans d*(k-1)+1 positions; written with a division: no overflow */
    if (padded >= 1 && k >= 1 && k - 1 <= (padded - 1) / d)
        a.out = (padded - d * (k - 1) - 1) / s + 1;
    return a;
}

/* Output positions t in [*lo, *hi) whose tap at offset off (= tap*d - p) lands
 * inside the input: 0 <= t*s + off < n. */
static void axis_range(const win_axis *a, int64_t off, int64_t *lo, int64_t *hi) {
    int64_t first = off >= 0 ? 0 : (-off - 1) / a->s + 1;   /* ceil(-off / s), no overflow */
    int64_t end = a->n - off <= 0 ? 0 : (a->n - off - 1) / a->s + 1;
    *lo = first < a->out ? first : a->out;
    *hi = end < a->out ? end : a->out;
    if (*hi < *lo) *hi = *lo;
}

/* True when the product of f[0..n-1] (all >= 0) stays within the tensor bound
 * numel * 16 <= INT64_MAX, so numel * dtype size fits a size_t as well. */
static bool product_ok(int n, const int64_t *f) {
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        if (__builtin_mul_overflow(p, f[i], &p) || p > INT64_MAX / 16) return false;
    return true;
}

static void *at_elem(void *p, tg_dtype dt, int64_t i) {
    return (char *)p + (size_t)i * tg_dtype_size(dt);
}

/* f_float(args) or f_double(args) by dtype; the kernels below come in both. */
#define BY_DTYPE(dt, f, ...) ((dt) == TG_F32 ? f##_float(__VA_ARGS__) : f##_double(__VA_ARGS__))

/* ---- conv2d ----------------------------------------------------------------------------- */
typedef struct conv2d_attr {
    int64_t stride[2], padding[2], dilation[2], groups;
} conv2d_attr;

typedef struct conv2d_dims {
    int64_t B, Cin, Cout, G;
    win_axis h, w;
    int64_t rows_g; /* rows of one group's col block: Cin/G * KH * KW */
    int64_t plane; /* Ho * Wo                                        */
} conv2d_dims;

static conv2d_dims conv2d_dims_of(const tg_tensor *x, const tg_tensor *w, const conv2d_attr *at) {
    conv2d_dims d = {
        x->shape[0],
        x->shape[1],
        w->shape[0],
        at->groups,
        axis_of(x->shape[2], w->shape[2], at->stride[0], at->padding[0], at->dilation[0]),
        axis_of(x->shape[3], w->shape[3], at->stride[1], at->padding[1], at->dilation[1]),
        0,
        0};
    d.rows_g = w->shape[1] * d.h.k * d.w.k;   /* part of w's element count: no overflow */
    /* Ho * Wo can overflow for hostile padding; infer rejects those sizes before any
     * kernel uses plane, so saturating here is enough */
    if (__builtin_mul_overflow(d.h.out, d.w.out, &d.plane)) d.plane = INT64_MAX;
    return d;
}

static int conv2d_check_attr(tg_tape *tp, const conv2d_attr *at, const char *sx, const char *sw) {
    const char *what = at->stride[0] < 1 || at->stride[1] < 1       ? "stride must be >= 1"
                       : at->dilation[0] < 1 || at->dilation[1] < 1 ? "dilation must be >= 1"
                       : at->padding[0] < 0 || at->padding[1] < 0 || at->padding[0] > MAX_PADDING ||
                               at->padding[1] > MAX_PADDING
                           ? "padding must be in [0,2^40]"
                       : at->groups < 1 ? "groups must be >= 1"
                                        : NULL;
    if (!what) return 0;
    return tg_fail(tp, TG_ERR_ARG, "conv2d",
                   "%s: stride (%lld,%lld) padding (%lld,%lld) dilation (%lld,%lld) groups %lld: "
                   "x %s w %s",
                   what, (long long)at->stride[0], (long long)at->stride[1],
                   (long long)at->padding[0], (long long)at->padding[1], (long long)at->dilation[0],
                   (long long)at->dilation[1], (long long)at->groups, sx, sw);
}

/* Channel counts and bias against the weight; 0 or -1 after the error. */
static int conv2d_check_channels(tg_tape *tp, const tg_tensor *x, const tg_tensor *w,
                                 const tg_tensor *bias, int64_t G, const char *sx, const char *sw) {
    char sb[160];
    int64_t Cin = x->shape[1], Cout = w->shape[0];
    if (w->shape[0] < 1 || w->shape[1] < 1 || w->shape[2] < 1 || w->shape[3] < 1)
        return tg_fail(tp, TG_ERR_SHAPE, "conv2d", "weight has an empty dimension: w %s", sw);
    if (Cin % G != 0 || Cout % G != 0)
        return tg_fail(tp, TG_ERR_SHAPE, "conv2d",
                       "groups %lld must divide input channels %lld and output channels %lld: "
                       "x %s w %s",
                       (long long)G, (long long)Cin, (long long)Cout, sx, sw);
    if (w->shape[1] != Cin / G)
        return tg_fail(tp, TG_ERR_SHAPE, "conv2d",
                       "input channels differ: x %s has %lld, w %s takes %lld per group x %lld "
                       "groups",
                       sx, (long long)Cin, sw, (long long)w->shape[1], (long long)G);
    if (bias && (bias->ndim != 1 || bias->shape[0] != Cout))
        return tg_fail(tp, TG_ERR_SHAPE, "conv2d", "bias must be [Cout]: bias %s w %s",
                       tg_shape_str(bias, sb, sizeof sb), sw);
    return 0;
}

static int conv2d_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                        tg_desc *out) {
    const conv2d_attr *at = attr;
    const tg_tensor *x = in[0], *w = in[1], *bias = n_in == 3 ? in[2] : NULL;
    char sx[160], sw[160];
    tg_shape_str(x, sx, sizeof sx);
    tg_shape_str(w, sw, sizeof sw);
    if (tg_check_float_pair(tp, "conv2d", x, w) ||
        (bias && tg_check_float_pair(tp, "conv2d", x, bias)))
        return -1;
    if (conv2d_check_attr(tp, at, sx, sw)) return -1;
    if (x->ndim != 4 || w->ndim != 4)
        return tg_fail(tp, TG_ERR_SHAPE, "conv2d",
                       "needs x [B,Cin,H,W] and w [Cout,Cin/groups,KH,KW]: x %s w %s", sx, sw);
    if (conv2d_check_channels(tp, x, w, bias, at->groups, sx, sw)) return -1;
    conv2d_dims d = conv2d_dims_of(x, w, at);
    if (d.h.out < 1 || d.w.out < 1)
        return tg_fail(tp, TG_ERR_SHAPE, "conv2d",
                       "kernel (%lldx%lld, dilation %lldx%lld) larger than the padded input "
                       "(%lldx%lld), output size < 1: x %s w %s",
                       (long long)d.h.k, (long long)d.w.k, (long long)d.h.d, (long long)d.w.d,
                       (long long)(d.h.n + 2 * d.h.p), (long long)(d.w.n + 2 * d.w.p), sx, sw);
    /* the output, and the im2col buffer of one batch entry [Cin*KH*KW, Ho*Wo] */
    if (!product_ok(4, (int64_t[]){d.B, d.Cout, d.h.out, d.w.out}) ||
        !product_ok(5, (int64_t[]){d.Cin, d.h.k, d.w.k, d.h.out, d.w.out}))
        return tg_fail(tp, TG_ERR_SHAPE, "conv2d",
                       "output [%lld,%lld,%lld,%lld] or its im2col buffer is too large: x %s w %s",
                       (long long)d.B, (long long)d.Cout, (long long)d.h.out, (long long)d.w.out,
                       sx, sw);
    out->dtype = x->dtype;
    out->ndim = 4;
    out->shape[0] = d.B;
    out->shape[1] = d.Cout;
    out->shape[2] = d.h.out;
    out->shape[3] = d.w.out;
    return 0;
}

#define CONV2D_LOOPS(T)                                                                            \
    /* col [Cin*KH*KW, Ho*Wo] from one batch entry x [Cin, H, W] */                                \
    static void im2col_##T(const T *x, T *col, const conv2d_dims *d) {                             \
        const win_axis *h = &d->h, *w = &d->w;                                                     \
        for (int64_t c = 0; c < d->Cin; c++)                                                       \
            for (int64_t p = 0; p < h->k; p++)                                                     \
                for (int64_t q = 0; q < w->k; q++) {                                               \
                    T *row = col + ((c * h->k + p) * w->k + q) * d->plane;                         \
                    int64_t offh = p * h->d - h->p, offw = q * w->d - w->p, ilo, ihi, jlo, jhi;    \
                    axis_range(h, offh, &ilo, &ihi);                                               \
                    axis_range(w, offw, &jlo, &jhi);                                               \
                    memset(row, 0, (size_t)(ilo * w->out) * sizeof(T));                            \
                    for (int64_t i = ilo; i < ihi; i++) {                                          \
                        T *r = row + i * w->out;                                                   \
                        const T *xr = x + (c * h->n + i * h->s + offh) * w->n + offw;              \
                        for (int64_t j = 0; j < jlo; j++) r[j] = 0;                                \
                        if (w->s == 1) /* the common case: a contiguous copy */                  \
                            memcpy(r + jlo, xr + jlo, (size_t)(jhi - jlo) * sizeof(T));            \
                        else                                                                       \
                            for (int64_t j = jlo; j < jhi; j++) r[j] = xr[j * w->s];               \
                        for (int64_t j = jhi; j < w->out; j++) r[j] = 0;                           \
                    }                                                                              \
                    memset(row + ihi * w->out, 0, (size_t)((h->out - ihi) * w->out) * sizeof(T));  \
                }                                                                                  \
    }                                                                                              \
    /* dx [Cin, H, W] += the entries of dcol [Cin*KH*KW, Ho*Wo], each back where im2col read it */ \
    static void col2im_##T(const T *dcol, T *dx, const conv2d_dims *d) {                           \
        const win_axis *h = &d->h, *w = &d->w;                                                     \
        for (int64_t c = 0; c < d->Cin; c++)                                                       \
            for (int64_t p = 0; p < h->k; p++)                                                     \
                for (int64_t q = 0; q < w->k; q++) {                                               \
                    const T *row = dcol + ((c * h->k + p) * w->k + q) * d->plane;                  \
                    int64_t offh = p * h->d - h->p, offw = q * w->d - w->p, ilo, ihi, jlo, jhi;    \
                    axis_range(h, offh, &ilo, &ihi);                                               \
                    axis_range(w, offw, &jlo, &jhi);                                               \
                    for (int64_t i = ilo; i < ihi; i++) {                                          \
                        const T *r = row + i * w->out;                                             \
                        T *dxr = dx + (c * h->n + i * h->s + offh) * w->n + offw;                  \
                        if (w->s == 1) /* contiguous: the compiler vectorizes it */              \
                            for (int64_t j = jlo; j < jhi; j++) dxr[j] += r[j];                    \
                        else                                                                       \
                            for (int64_t j = jlo; j < jhi; j++) dxr[j * w->s] += r[j];             \
                    }                                                                              \
                }                                                                                  \
    }                                                                                              \
    /* y [Cout, Ho*Wo] = bias broadcast over the plane (the GEMMs then add with beta 1) */         \
    static void fill_bias_##T(const T *bias, T *y, const conv2d_dims *d) {                         \
        for (int64_t o = 0; o < d->Cout; o++)                                                      \
            for (int64_t t = 0; t < d->plane; t++) y[o * d->plane + t] = bias[o];                  \
    }                                                                                              \
    /* dbias[o] += sum_t dy[o, t] for one batch entry */                                           \
    static void bias_grad_##T(const T *dy, T *dbias, const conv2d_dims *d) {                       \
        for (int64_t o = 0; o < d->Cout; o++) {                                                    \
            T s = 0;                                                                               \
            for (int64_t t = 0; t < d->plane; t++) s += dy[o * d->plane + t];                      \
            dbias[o] += s;                                                                         \
        }                                                                                          \
    }

CONV2D_LOOPS(float)
CONV2D_LOOPS(double)

/* The im2col buffer of one batch entry, in the arena; NULL after the error. */
static void *col_alloc(tg_node *n, const conv2d_dims *d) {
    size_t bytes = (size_t)(d->Cin * d->h.k * d->w.k * d->plane) * tg_dtype_size(n->out->dtype);
    void *col = tg__arena_alloc(n->tape, bytes, false);
    if (!col) tg_fail(n->tape, TG_ERR_NOMEM, "conv2d", "out of memory (im2col, %zu bytes)", bytes);
    return col;
}

static int conv2d_forward(tg_node *n) {
    const conv2d_attr *at = n->attr;
    tg_tensor *x = n->in[0], *w = n->in[1], *y = n->out;
    tg_tensor *bias = n->n_in == 3 ? n->in[2] : NULL;
    tg_dtype dt = x->dtype;
    conv2d_dims d = conv2d_dims_of(x, w, at);
    int64_t og = d.Cout / d.G, P = d.plane, K = d.rows_g; /* one group's GEMM: og x P x K */
    void *col = col_alloc(n, &d);
    if (!col) return -1;
    for (int64_t b = 0; b < d.B; b++) {
        void *yb = at_elem(y->data, dt, b * d.Cout * P);
        BY_DTYPE(dt, im2col, at_elem(x->data, dt, b * d.Cin * d.h.n * d.w.n), col, &d);
        if (bias) BY_DTYPE(dt, fill_bias, bias->data, yb, &d);
        for (int64_t g = 0; g < d.G; g++)
            tg_gemm(n->tape, dt, false, false, og, P, K, 1.0, at_elem(w->data, dt, g * og * K), K,
                    at_elem(col, dt, g * K * P), P, bias ? 1.0 : 0.0, at_elem(yb, dt, g * og * P),
                    P);
    }
    return 0;
}

/* dw += sum_b, per group: dy_g [og, P] col_g^T; col: scratch for one batch entry. */
static void conv2d_grad_weight(tg_tape *tp, tg_dtype dt, const conv2d_dims *d, const void *x,
                               const void *dy, void *dw, void *col) {
    int64_t og = d->Cout / d->G, P = d->plane, K = d->rows_g;
    for (int64_t b = 0; b < d->B; b++) {
        const void *dyb = at_elem((void *)dy, dt, b * d->Cout * P);
        BY_DTYPE(dt, im2col, at_elem((void *)x, dt, b * d->Cin * d->h.n * d->w.n), col, d);
        for (int64_t g = 0; g < d->G; g++) /* dw_g [og, K] += dy_g [og, P] col_g^T */
            tg_gemm(tp, dt, false, true, og, K, P, 1.0, at_elem((void *)dyb, dt, g * og * P), P,
                    at_elem(col, dt, g * K * P), P, 1.0, at_elem(dw, dt, g * og * K), K);
    }
}

/* dx[b] += col2im(per group: w_g^T dy_g); col: scratch for one batch entry's dcol. */
static void conv2d_grad_input(tg_tape *tp, tg_dtype dt, const conv2d_dims *d, const void *w,
                              const void *dy, void *dx, void *col) {
    int64_t og = d->Cout / d->G, P = d->plane, K = d->rows_g;
    for (int64_t b = 0; b < d->B; b++) {
        const void *dyb = at_elem((void *)dy, dt, b * d->Cout * P);
        for (int64_t g = 0; g < d->G; g++) /* dcol_g [K, P] = w_g^T dy_g */
            tg_gemm(tp, dt, true, false, K, P, og, 1.0, at_elem((void *)w, dt, g * og * K), K,
                    at_elem((void *)dyb, dt, g * og * P), P, 0.0, at_elem(col, dt, g * K * P), P);
        BY_DTYPE(dt, col2im, col, at_elem(dx, dt, b * d->Cin * d->h.n * d->w.n), d);
    }
}

static int conv2d_vjp(tg_node *n) {
    const conv2d_attr *at = n->attr;
    tg_tensor *x = n->in[0], *w = n->in[1];
    tg_dtype dt = x->dtype;
    conv2d_dims d = conv2d_dims_of(x, w, at);
    void *dy = (void *)tg_output_grad(n);
    void *dx = tg_input_grad(n, 0), *dw = tg_input_grad(n, 1);
    void *dbias = n->n_in == 3 ? tg_input_grad(n, 2) : NULL;
    void *col = NULL; /* holds col for dw, then dcol for dx */
    if ((dx || dw) && !(col = col_alloc(n, &d))) return -1;
    if (dw) conv2d_grad_weight(n->tape, dt, &d, x->data, dy, dw, col);
    if (dx) conv2d_grad_input(n->tape, dt, &d, w->data, dy, dx, col);
    for (int64_t b = 0; dbias && b < d.B; b++)
        BY_DTYPE(dt, bias_grad, at_elem(dy, dt, b * d.Cout * d.plane), dbias, &d);
    return 0;
}

/* ---- double backward (tg_grad): conv2d's two gradients as ops ----------------------
 * As conv1d's (ops/conv.c): y = F(x, w) is bilinear, and with u the gradient
 * arriving at each op's output
 *   Dx(g, w):  dg = F(u, w),  dw = Dw(u, g)
 *   Dw(x, g):  dx = Dx(g, u), dg = F(x, u)
 * so the three differentiate to any order. */
typedef struct conv2d_grad_attr {
    conv2d_attr conv;
    int64_t size[2];   /* Dx: x's H and W; Dw: the kernel's KH and KW */
} conv2d_grad_attr;

static const tg_op conv2d_grad_input_op, conv2d_grad_weight_op;

static tg_tensor *conv2d_grad_apply(tg_tape *tp, const tg_op *op, tg_tensor *a, tg_tensor *b,
                                    const conv2d_attr *c, int64_t s0, int64_t s1) {
    conv2d_grad_attr at = {*c, {s0, s1}};
    return tg_apply(tp, op, 2, (tg_tensor *[]){a, b}, &at);
}

static tg_tensor *conv2d_plain(tg_tape *tp, tg_tensor *x, tg_tensor *w, const conv2d_attr *c) {
    tg_conv2d_opts o = {{c->stride[0], c->stride[1]}, {c->padding[0], c->padding[1]},
                        {c->dilation[0], c->dilation[1]}, c->groups};
    return tg_conv2d_ex(tp, x, w, NULL, &o);
}

/* Only built by vjp_graph from a valid conv2d, so the shapes fit:
 * Dx: g [B, Cout, Ho, Wo], w [Cout, Cin/G, KH, KW] -> [B, Cin, H, W]. */
static int conv2d_grad_input_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                                   tg_desc *out) {
    (void)tp;
    (void)n_in;
    const conv2d_grad_attr *at = attr;
    *out = (tg_desc){in[0]->dtype, 4, {in[0]->shape[0], in[1]->shape[1] * at->conv.groups,
                                       at->size[0], at->size[1]}};
    return 0;
}

/* Dw: x [B, Cin, H, W], g [B, Cout, Ho, Wo] -> [Cout, Cin/G, KH, KW]. */
static int conv2d_grad_weight_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                                    tg_desc *out) {
    (void)tp;
    (void)n_in;
    const conv2d_grad_attr *at = attr;
    *out = (tg_desc){in[0]->dtype, 4, {in[1]->shape[1], in[0]->shape[1] / at->conv.groups,
                                       at->size[0], at->size[1]}};
    return 0;
}

static int conv2d_grad_input_forward(tg_node *n) {
    const conv2d_grad_attr *at = n->attr;
    tg_tensor *g = n->in[0], *w = n->in[1], *dx = n->out;
    conv2d_dims d = conv2d_dims_of(dx, w, &at->conv);
    void *col = col_alloc(n, &d);
    if (!col) return -1;
    memset(dx->data, 0, (size_t)dx->numel * tg_dtype_size(dx->dtype));
    conv2d_grad_input(n->tape, dx->dtype, &d, w->data, g->data, dx->data, col);
    return 0;
}

static int conv2d_grad_weight_forward(tg_node *n) {
    const conv2d_grad_attr *at = n->attr;
    tg_tensor *x = n->in[0], *g = n->in[1], *dw = n->out;
    conv2d_dims d = conv2d_dims_of(x, dw, &at->conv);
    void *col = col_alloc(n, &d);
    if (!col) return -1;
    memset(dw->data, 0, (size_t)dw->numel * tg_dtype_size(dw->dtype));
    conv2d_grad_weight(n->tape, dw->dtype, &d, x->data, g->data, dw->data, col);
    return 0;
}

static int conv2d_grad_input_vjp_graph(tg_node *n, tg_tensor *u, const bool *want,
                                       tg_tensor **dx) {
    const conv2d_grad_attr *at = n->attr;
    tg_tensor *g = n->in[0], *w = n->in[1];
    if (want[0]) dx[0] = conv2d_plain(n->tape, u, w, &at->conv);
    if (want[1])
        dx[1] = conv2d_grad_apply(n->tape, &conv2d_grad_weight_op, u, g, &at->conv, w->shape[2],
                                  w->shape[3]);
    return 0;
}

static int conv2d_grad_weight_vjp_graph(tg_node *n, tg_tensor *u, const bool *want,
                                        tg_tensor **dx) {
    const conv2d_grad_attr *at = n->attr;
    tg_tensor *x = n->in[0], *g = n->in[1];
    if (want[0])
        dx[0] = conv2d_grad_apply(n->tape, &conv2d_grad_input_op, g, u, &at->conv, x->shape[2],
                                  x->shape[3]);
    if (want[1]) dx[1] = conv2d_plain(n->tape, x, u, &at->conv);
    return 0;
}

static const tg_op conv2d_grad_input_op = {
    .name = "conv2d_grad_input", .n_in = 2, .attr_size = sizeof(conv2d_grad_attr),
    .infer = conv2d_grad_input_infer, .forward = conv2d_grad_input_forward,
    .vjp = tg__vjp_from_graph, .vjp_graph = conv2d_grad_input_vjp_graph};
static const tg_op conv2d_grad_weight_op = {
    .name = "conv2d_grad_weight", .n_in = 2, .attr_size = sizeof(conv2d_grad_attr),
    .infer = conv2d_grad_weight_infer, .forward = conv2d_grad_weight_forward,
    .vjp = tg__vjp_from_graph, .vjp_graph = conv2d_grad_weight_vjp_graph};

/* conv2d itself: dx = Dx(dy, w), dw = Dw(x, dy), dbias = dy summed over B, Ho, Wo. */
static int conv2d_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    const conv2d_attr *at = n->attr;
    tg_tape *tp = n->tape;
    tg_tensor *x = n->in[0], *w = n->in[1];
    if (want[0])
        dx[0] = conv2d_grad_apply(tp, &conv2d_grad_input_op, g, w, at, x->shape[2], x->shape[3]);
    if (want[1])
        dx[1] = conv2d_grad_apply(tp, &conv2d_grad_weight_op, x, g, at, w->shape[2], w->shape[3]);
    if (n->n_in == 3 && want[2])
        dx[2] = tg_sum_axis(tp, tg_sum_axis(tp, tg_sum_axis(tp, g, 3, false), 2, false), 0, false);
    return 0;
}

static const tg_op conv2d_op = {
    .name = "conv2d",
    .n_in = 2,
    .attr_size = sizeof(conv2d_attr),
    .infer = conv2d_infer,
    .forward = conv2d_forward,
    .vjp = conv2d_vjp,
    .vjp_graph = conv2d_vjp_graph,
};

static const tg_op conv2d_bias_op = {
    .name = "conv2d_bias",
    .n_in = 3,
    .attr_size = sizeof(conv2d_attr),
    .infer = conv2d_infer,
    .forward = conv2d_forward,
    .vjp = conv2d_vjp,
    .vjp_graph = conv2d_vjp_graph,
};

tg_tensor *tg_conv2d_ex(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *bias,
                        const tg_conv2d_opts *o) {
    tg_conv2d_opts def = {0};
    if (!o) o = &def;
    conv2d_attr at = {.groups = o->groups ? o->groups : 1};
    for (int i = 0; i < 2; i++) { /* 0 means the default, 1 */
        at.stride[i] = o->stride[i] ? o->stride[i] : 1;
        at.padding[i] = o->padding[i];
        at.dilation[i] = o->dilation[i] ? o->dilation[i] : 1;
    }
    if (!bias) return tg_apply(tp, &conv2d_op, 2, (tg_tensor *[]){x, w}, &at);
    return tg_apply(tp, &conv2d_bias_op, 3, (tg_tensor *[]){x, w, bias}, &at);
}

tg_tensor *tg_conv2d(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *bias) {
    return tg_conv2d_ex(tp, x, w, bias, NULL);
}

/* ---- max_pool2d and avg_pool2d ------------------------------------------------------------ */
typedef struct pool2d_attr {
    int64_t kernel[2], stride[2], padding[2]; /* stride already resolved (>= 1 if valid) */
    bool exclude_pad; /* avg: divide by in-bounds positions */
} pool2d_attr;

typedef struct pool2d_dims {
    int64_t planes;
    win_axis h, w;
} pool2d_dims; /* planes = B*C */

static pool2d_dims pool2d_dims_of(const tg_tensor *x, const pool2d_attr *at) {
    return (pool2d_dims){x->shape[0] * x->shape[1],
                         axis_of(x->shape[2], at->kernel[0], at->stride[0], at->padding[0], 1),
                         axis_of(x->shape[3], at->kernel[1], at->stride[1], at->padding[1], 1)};
}

/* Shared by both pools; the op's name comes from the descriptor being applied. */
static int pool2d_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                        tg_desc *out) {
    (void)n_in;
    const pool2d_attr *at = attr;
    const tg_tensor *x = in[0];
    const char *op = tp->current_op;
    char sx[160];
    tg_shape_str(x, sx, sizeof sx);
    if (tg_check_float(tp, op, x)) return -1;
    if (x->ndim != 4) return tg_fail(tp, TG_ERR_SHAPE, op, "needs x [B,C,H,W], got %s", sx);
    bool ok = true;
    for (int i = 0; i < 2; i++) /* PyTorch's rule: padding at most half the kernel */
        ok = ok && at->kernel[i] >= 1 && at->stride[i] >= 1 && at->padding[i] >= 0 &&
             at->padding[i] <= at->kernel[i] / 2 && at->padding[i] <= MAX_PADDING;
    if (!ok)
        return tg_fail(tp, TG_ERR_ARG, op,
                       "need kernel >= 1, stride >= 1, 0 <= padding <= min(kernel/2, 2^40): "
                       "kernel (%lld,%lld) stride (%lld,%lld) padding (%lld,%lld): x %s",
                       (long long)at->kernel[0], (long long)at->kernel[1], (long long)at->stride[0],
                       (long long)at->stride[1], (long long)at->padding[0],
                       (long long)at->padding[1], sx);
    /* with H, W >= 1 and padding <= kernel/2, every window holds an input position */
    if (x->shape[2] < 1 || x->shape[3] < 1)
        return tg_fail(tp, TG_ERR_SHAPE, op, "needs H and W >= 1: x %s", sx);
    pool2d_dims d = pool2d_dims_of(x, at);
    if (d.h.out < 1 || d.w.out < 1)
        return tg_fail(tp, TG_ERR_SHAPE, op,
                       "kernel %lldx%lld larger than the padded input %lldx%lld, output size < 1: "
                       "x %s",
                       (long long)d.h.k, (long long)d.w.k, (long long)(d.h.n + 2 * d.h.p),
                       (long long)(d.w.n + 2 * d.w.p), sx);
    if (!product_ok(3, (int64_t[]){d.planes, d.h.out, d.w.out})) /* Ho can exceed H by one */
        return tg_fail(tp, TG_ERR_SHAPE, op, "output [%lld,%lld,%lld,%lld] is too large: x %s",
                       (long long)x->shape[0], (long long)x->shape[1], (long long)d.h.out,
                       (long long)d.w.out, sx);
    out->dtype = x->dtype;
    out->ndim = 4;
    out->shape[0] = x->shape[0];
    out->shape[1] = x->shape[1];
    out->shape[2] = d.h.out;
    out->shape[3] = d.w.out;
    return 0;
}

/* Window t of axis a, clipped to the input: [*lo, *hi). */
static void window(const win_axis *a, int64_t t, int64_t *lo, int64_t *hi) {
    int64_t start = t * a->s - a->p;
    *lo = start > 0 ? start : 0;
    *hi = start + a->k < a->n ? start + a->k : a->n;
}

#define POOL2D_LOOPS(T)                                                                            \
    /* arg gets each window's argmax as a flat index into x. "!(v <= best) && best == best":  \
     * v wins when larger or NaN, unless best is already a NaN (the first NaN stays). */          \
    static void max_pool2d_fwd_##T(const T *x, T *y, int64_t *arg, const pool2d_dims *d) {         \
        int64_t H = d->h.n, W = d->w.n;                                                            \
        for (int64_t r = 0, o = 0; r < d->planes; r++)                                             \
            for (int64_t i = 0; i < d->h.out; i++) {                                               \
                int64_t i0, i1, j0, j1;                                                            \
                window(&d->h, i, &i0, &i1);                                                        \
                for (int64_t j = 0; j < d->w.out; j++, o++) {                                      \
                    window(&d->w, j, &j0, &j1);                                                    \
                    int64_t at = (r * H + i0) * W + j0;                                            \
                    T best = x[at];                                                                \
                    for (int64_t u = i0; u < i1; u++)                                              \
                        for (int64_t v = j0; v < j1; v++) {                                        \
                            T xv = x[(r * H + u) * W + v];                                         \
                            if (!(xv <= best) && best == best) best = xv, at = (r * H + u) * W + v; \
                        }                                                                          \
                    y[o] = best;                                                                   \
                    arg[o] = at;                                                                   \
                }                                                                                  \
            }                                                                                      \
    }                                                                                              \
    static void max_pool2d_vjp_##T(const T *dy, T *dx, const int64_t *arg, int64_t n) {            \
        for (int64_t i = 0; i < n; i++) dx[arg[i]] += dy[i];                                       \
    }                                                                                              \
    /* forward (dx NULL): y = window sums / divisor; VJP (dx set): dx += dy / divisor over it */   \
    static void avg_pool2d_##T(const T *x, T *y, const T *dy, T *dx, const pool2d_dims *d,         \
                               bool exclude_pad) {                                                 \
        int64_t H = d->h.n, W = d->w.n;                                                            \
        for (int64_t r = 0, o = 0; r < d->planes; r++)                                             \
            for (int64_t i = 0; i < d->h.out; i++)                                                 \
                for (int64_t j = 0; j < d->w.out; j++, o++) {                                      \
                    int64_t i0, i1, j0, j1;                                                        \
                    window(&d->h, i, &i0, &i1);                                                    \
                    window(&d->w, j, &j0, &j1);                                                    \
                    T div = (T)(exclude_pad ? (double)((i1 - i0) * (j1 - j0))                      \
                                            : (double)d->h.k * (double)d->w.k),                    \
                      s = 0;                                                                       \
                    for (int64_t u = i0; u < i1; u++)                                              \
                        for (int64_t v = j0; v < j1; v++) {                                        \
                            int64_t at = (r * H + u) * W + v;                                      \
                            if (dx)                                                                \
                                dx[at] += dy[o] / div;                                             \
                            else                                                                   \
                                s += x[at];                                                        \
                        }                                                                          \
                    if (!dx) y[o] = s / div;                                                       \
                }                                                                                  \
    }

POOL2D_LOOPS(float)
POOL2D_LOOPS(double)

static int max_pool2d_forward(tg_node *n) {
    pool2d_dims d = pool2d_dims_of(n->in[0], n->attr);
    int64_t *arg = tg_node_scratch(n, (size_t)n->out->numel * sizeof *arg);
    if (!arg) return -1;
    BY_DTYPE(n->out->dtype, max_pool2d_fwd, n->in[0]->data, n->out->data, arg, &d);
    return 0;
}

static int max_pool2d_vjp(tg_node *n) {
    void *dx = tg_input_grad(n, 0);
    if (dx)
        BY_DTYPE(n->out->dtype, max_pool2d_vjp, tg_output_grad(n), dx, n->scratch, n->out->numel);
    return 0;
}

static int avg_pool2d_forward(tg_node *n) {
    const pool2d_attr *at = n->attr;
    pool2d_dims d = pool2d_dims_of(n->in[0], at);
    BY_DTYPE(n->out->dtype, avg_pool2d, n->in[0]->data, n->out->data, NULL, NULL, &d,
             at->exclude_pad);
    return 0;
}

static int avg_pool2d_vjp(tg_node *n) {
    const pool2d_attr *at = n->attr;
    pool2d_dims d = pool2d_dims_of(n->in[0], at);
    void *dx = tg_input_grad(n, 0);
    if (dx)
        BY_DTYPE(n->out->dtype, avg_pool2d, NULL, NULL, tg_output_grad(n), dx, &d, at->exclude_pad);
    return 0;
}

/* ---- double backward (tg_grad) ------------------------------------------------------------
 * max_pool2d: dy routed to the saved argmax (ops/graph_vjp.c). avg_pool2d is
 * linear: its VJP is an op of its own (the kernel above in VJP mode), whose
 * VJP is avg_pool2d again. */
typedef struct avg_grad_attr {
    pool2d_attr pool;
    int64_t h, w;   /* x's height and width */
} avg_grad_attr;

static const tg_op avg_pool2d_op, avg_pool2d_grad_op;

static int max_pool2d_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    if (want[0]) dx[0] = tg__argmax_scatter(n->tape, g, n->scratch, n->in[0]);
    return 0;
}

static int avg_grad_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                          tg_desc *out) {
    (void)tp;
    (void)n_in;
    const avg_grad_attr *at = attr;   /* g [B, C, Ho, Wo] -> [B, C, H, W] */
    *out = (tg_desc){in[0]->dtype, 4, {in[0]->shape[0], in[0]->shape[1], at->h, at->w}};
    return 0;
}

static int avg_grad_forward(tg_node *n) {
    const avg_grad_attr *at = n->attr;
    pool2d_dims d = pool2d_dims_of(n->out, &at->pool);
    memset(n->out->data, 0, (size_t)n->out->numel * tg_dtype_size(n->out->dtype));
    BY_DTYPE(n->out->dtype, avg_pool2d, NULL, NULL, n->in[0]->data, n->out->data, &d,
             at->pool.exclude_pad);
    return 0;
}

static int avg_grad_vjp_graph(tg_node *n, tg_tensor *u, const bool *want, tg_tensor **dx) {
    const avg_grad_attr *at = n->attr;
    if (want[0]) dx[0] = tg_apply(n->tape, &avg_pool2d_op, 1, &u, &at->pool);
    return 0;
}

static int avg_pool2d_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    avg_grad_attr at = {*(const pool2d_attr *)n->attr, n->in[0]->shape[2], n->in[0]->shape[3]};
    if (want[0]) dx[0] = tg_apply(n->tape, &avg_pool2d_grad_op, 1, &g, &at);
    return 0;
}

static const tg_op avg_pool2d_grad_op = {
    .name = "avg_pool2d_grad", .n_in = 1, .attr_size = sizeof(avg_grad_attr),
    .infer = avg_grad_infer, .forward = avg_grad_forward, .vjp = tg__vjp_from_graph,
    .vjp_graph = avg_grad_vjp_graph};

static const tg_op max_pool2d_op = {
    .name = "max_pool2d",
    .n_in = 1,
    .attr_size = sizeof(pool2d_attr),
    .infer = pool2d_infer,
    .forward = max_pool2d_forward,
    .vjp = max_pool2d_vjp,
    .vjp_graph = max_pool2d_vjp_graph,
};

static const tg_op avg_pool2d_op = {
    .name = "avg_pool2d",
    .n_in = 1,
    .attr_size = sizeof(pool2d_attr),
    .infer = pool2d_infer,
    .forward = avg_pool2d_forward,
    .vjp = avg_pool2d_vjp,
    .vjp_graph = avg_pool2d_vjp_graph,
};

static tg_tensor *pool2d_apply(tg_tape *tp, const tg_op *op, tg_tensor *x, int64_t kh, int64_t kw,
                               const tg_pool2d_opts *o) {
    tg_pool2d_opts def = {0};
    if (!o) o = &def;
    pool2d_attr at = {.kernel = {kh, kw}, .exclude_pad = o->exclude_pad};
    for (int i = 0; i < 2; i++) { /* stride 0 means the kernel's size */
        at.stride[i] = o->stride[i] ? o->stride[i] : at.kernel[i];
        at.padding[i] = o->padding[i];
    }
    return tg_apply(tp, op, 1, &x, &at);
}

tg_tensor *tg_max_pool2d_ex(tg_tape *tp, tg_tensor *x, int64_t kh, int64_t kw,
                            const tg_pool2d_opts *o) {
    return pool2d_apply(tp, &max_pool2d_op, x, kh, kw, o);
}

tg_tensor *tg_max_pool2d(tg_tape *tp, tg_tensor *x, int64_t kh, int64_t kw) {
    return pool2d_apply(tp, &max_pool2d_op, x, kh, kw, NULL);
}

tg_tensor *tg_avg_pool2d_ex(tg_tape *tp, tg_tensor *x, int64_t kh, int64_t kw,
                            const tg_pool2d_opts *o) {
    return pool2d_apply(tp, &avg_pool2d_op, x, kh, kw, o);
}

tg_tensor *tg_avg_pool2d(tg_tape *tp, tg_tensor *x, int64_t kh, int64_t kw) {
    return pool2d_apply(tp, &avg_pool2d_op, x, kh, kw, NULL);
}
