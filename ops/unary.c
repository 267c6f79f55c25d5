/* ops/unary.c - elementwise functions of one tensor: y = f(x), same shape.
 *
 * Each op is a line in the table below: its forward expression in x, its
 * derivative dy/dx in x and y (the input and output), with the scalar
 * attributes a, b, what that derivative reads (X, Y, both or nothing), and
 * the fusion engine's hints (op.h: PASS hands the gradient on, CHEAP is
 * recomputed rather than stored).
 * UNARY_OP stamps out the op's block kernels (ops/kernels.h) and its
 * descriptor; the engine runs them alone or fused (ops/eltwise.c,
 * autograd/fuse*.c). The public wrappers are written out at the bottom so
 * every symbol can be found with grep. */
#include "kernels.h"

#include <tgmath.h>

typedef struct unary_attr { double a, b; } unary_attr;

/* sigmoid without overflow: exp only of a non-positive number, e = e^-|x|,
 * then 1/(1+e) or e/(1+e); the select picks the numerator, so the loop has
 * one unconditional division and vectorizes. */
#define SIGMOID(x) sigmoid_of(x, exp(-fabs(x)))
#define sigmoid_of(x, e) (((x) >= 0 ? 1 : (e)) / (1 + (e)))
#define CLIP01(v) ((v) < 0 ? 0 : (v) > 1 ? 1 : (v))

#define NEEDS_0 0
#define NEEDS_X TG_NEEDS_X
#define NEEDS_Y TG_NEEDS_Y

/* fwd: Y = FWD(x); vjp: DX (=|+=) DY * DYDX(x, y). Unread inputs point at zeros.
 * The derivative goes through a T variable: GCC 12 does not vectorise
 * DY * (x > 0 ? 1 : 0) written inline (measured: relu's VJP ran scalar). */
#define UNARY_KERNELS(NAME, FWD, DYDX, T)                                                         \
    TG_SIMD_CLONES static TG_EW_FWD_KERNEL(NAME##_fwd_##T) {                                      \
        const unary_attr *at = attr;                                                              \
        const T a = (T)at->a, b = (T)at->b, *X = xs[0];                                           \
        T *Y = ys;                                                                                \
        (void)a;                                                                                  \
        (void)b;                                                                                  \
        TG_EW_FOR(i, n) {                                                                         \
            T x = X[i];                                                                           \
            Y[i] = (FWD);                                                                         \
        }                                                                                         \
    }                                                                                             \
    TG_SIMD_CLONES static TG_EW_VJP_KERNEL(NAME##_vjp_##T) {                                      \
        const unary_attr *at = attr;                                                              \
        const T a = (T)at->a, b = (T)at->b, *X = xs[0], *Y = ys, *DY = dys;                       \
        T *DX = dxs;                                                                              \
        (void)k;                                                                                  \
        (void)a;                                                                                  \
        (void)b;                                                                                  \
        if (acc) {                                                                                \
            TG_EW_FOR(i, n) {                                                                     \
                T x = X[i], y = Y[i], d = (DYDX);                                                 \
                (void)x;                                                                          \
                (void)y;                                                                          \
                DX[i] += DY[i] * d;                                                               \
            }                                                                                     \
            return;                                                                               \
        }                                                                                         \
        TG_EW_FOR(i, n) {                                                                         \
            T x = X[i], y = Y[i], d = (DYDX);                                                     \
            (void)x;                                                                              \
            (void)y;                                                                              \
            DX[i] = DY[i] * d;                                                                    \
        }                                                                                         \
    }

static int affine_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                        tg_desc *out) {
    const unary_attr *at = attr;
    if (!isfinite(at->a) || !isfinite(at->b))
        return tg_fail(tp, TG_ERR_ARG, "affine", "a and b must be finite: a %g, b %g", at->a, at->b);
    return tg_infer_same_as_input0(tp, n_in, in, attr, out);
}

/* HINTS: PASS (the VJP hands dy on) and CHEAP (fused groups recompute it), see op.h */
#define PASS 1, true
#define CHEAP 0, true
#define COSTLY 0, false

#define UNARY_OP(NAME, FWD, DYDX, NEEDS, HINTS)                                                   \
    UNARY_OP_INFER(NAME, FWD, DYDX, NEEDS, tg_infer_same_as_input0, HINTS)
/* HINTS last: it expands to two arguments */
#define UNARY_OP_INFER(NAME, FWD, DYDX, NEEDS, INFER, ...)                                        \
    static int NAME##_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx);     \
    UNARY_KERNELS(NAME, FWD, DYDX, float)                                                         \
    UNARY_KERNELS(NAME, FWD, DYDX, double)                                                        \
    static const tg_eltwise NAME##_kernels = {                                                    \
        {NAME##_fwd_float, NAME##_fwd_double}, {NAME##_vjp_float, NAME##_vjp_double}, NEEDS,     \
        __VA_ARGS__};                                                                             \
    static const tg_op NAME##_op = {.name = #NAME,                                                \
                                    .n_in = 1,                                                    \
                                    .attr_size = sizeof(unary_attr),                              \
                                    .infer = INFER,                                               \
                                    .forward = tg_eltwise_forward,                                \
                                    .vjp = tg_eltwise_vjp,                                        \
                                    .eltwise = &NAME##_kernels,                                   \
                                    .vjp_graph = NAME##_vjp_graph};

/*        name          forward             dy/dx                                     reads    hints */
UNARY_OP(neg,           -x,                 -1,                                       NEEDS_0, CHEAP)
UNARY_OP(scale,         a * x,              a,                                        NEEDS_0, CHEAP)
UNARY_OP(shift,         x + b,              1,                                        NEEDS_0, PASS)
UNARY_OP(sigmoid,       SIGMOID(x),         y * (1 - y),                              NEEDS_Y, COSTLY)
UNARY_OP(tanh,          tanh(x),            1 - y * y,                                NEEDS_Y, COSTLY)
/* as PyTorch: NaN stays NaN (a diverging run stays visible), and so does -0 */
UNARY_OP(relu,          x < 0 ? 0 : x,      x <= 0 ? 0 : 1,                           NEEDS_X, CHEAP)
UNARY_OP(exp,           exp(x),             y,                                        NEEDS_Y, COSTLY)
UNARY_OP(log,           log(x),             1 / x,                                    NEEDS_X, COSTLY)
UNARY_OP(sqrt,          sqrt(x),            1 / (y + y),                              NEEDS_Y, COSTLY)
/* x^0 is 1 everywhere: its derivative is 0, also at x = 0 where 0 * 0^-1 is NaN */
UNARY_OP(pow,           pow(x, a),          a == 0 ? 0 : a * pow(x, a - 1),           NEEDS_X, COSTLY)
/* slope a strictly inside the linear part, 0 at and beyond the kinks */
UNARY_OP(hard_sigmoid,  CLIP01(a * x + b),  (a * x + b > 0 && a * x + b < 1) ? a : 0, NEEDS_X, CHEAP)
/* x > 0; 0 gives inf, < 0 NaN. d(x^-1/2)/dx = -x^-3/2 / 2 = -y^3 / 2 */
UNARY_OP(rsqrt,         1 / sqrt(x),        -0.5f * y * y * y,                        NEEDS_Y, COSTLY)
/* a * x + b, so 1 - x is affine(x, -1, 1); a and b must be finite (affine_infer) */
UNARY_OP_INFER(affine,  a * x + b,          a,                                        NEEDS_0, affine_infer, CHEAP)

/* ---- the same derivatives as ops, for tg_grad (op.h's vjp_graph) --------------------------
 * dx from g (the output gradient), x, y and the attribute a, written with
 * recorded ops so that they can be differentiated again. Where the derivative
 * is piecewise constant (relu, hard_sigmoid: 0 or a slope, with the kinks as
 * in the table) it is a constant tensor: its own derivative is 0. */
static double relu_slope(double x, const void *at) { (void)at; return x <= 0 ? 0 : 1; }
static double hard_sigmoid_slope(double x, const void *attr) {
    const unary_attr *at = attr;
    double v = at->a * x + at->b;
    return v > 0 && v < 1 ? at->a : 0;
}
#define MUL(p, q) tg_mul(tp, p, q)
#define SLOPE(f) tg__gg_map_const(tp, x, f, at)
#define UNARY_GRAPH(NAME, DX)                                                                     \
    static int NAME##_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {    \
        tg_tape *tp = n->tape;                                                                    \
        const unary_attr *at = n->attr;                                                           \
        tg_tensor *x = n->in[0], *y = n->out;                                                     \
        double a = at->a;                                                                         \
        (void)tp;                                                                                 \
        (void)x;                                                                                  \
        (void)y;                                                                                  \
        (void)a;                                                                                  \
        if (want[0]) dx[0] = (DX);                                                                \
        return 0;                                                                                 \
    }

/*          name          dx                                                                    */
UNARY_GRAPH(neg,          tg_neg(tp, g))
UNARY_GRAPH(scale,        tg_scale(tp, g, a))
UNARY_GRAPH(shift,        g)
UNARY_GRAPH(sigmoid,      MUL(g, MUL(y, tg_affine(tp, y, -1, 1))))
UNARY_GRAPH(tanh,         MUL(g, tg_affine(tp, MUL(y, y), -1, 1)))
UNARY_GRAPH(relu,         MUL(g, SLOPE(relu_slope)))
UNARY_GRAPH(exp,          MUL(g, y))
UNARY_GRAPH(log,          tg_div(tp, g, x))
UNARY_GRAPH(sqrt,         tg_div(tp, g, tg_scale(tp, y, 2)))
UNARY_GRAPH(pow,          a == 0 ? tg_scale(tp, g, 0) : MUL(g, tg_scale(tp, tg_pow(tp, x, a - 1), a)))
UNARY_GRAPH(hard_sigmoid, MUL(g, SLOPE(hard_sigmoid_slope)))
UNARY_GRAPH(rsqrt,        MUL(g, tg_scale(tp, MUL(y, MUL(y, y)), -0.5)))
UNARY_GRAPH(affine,       tg_scale(tp, g, a))

static tg_tensor *unary(tg_tape *tp, const tg_op *op, tg_tensor *x, double a, double b) {
    unary_attr at = {a, b};
    return tg_apply(tp, op, 1, &x, &at);
}

tg_tensor *tg_neg(tg_tape *tp, tg_tensor *x) { return unary(tp, &neg_op, x, 0, 0); }
tg_tensor *tg_scale(tg_tape *tp, tg_tensor *x, double a) { return unary(tp, &scale_op, x, a, 0); }
tg_tensor *tg_shift(tg_tape *tp, tg_tensor *x, double b) { return unary(tp, &shift_op, x, 0, b); }
tg_tensor *tg_sigmoid(tg_tape *tp, tg_tensor *x) { return unary(tp, &sigmoid_op, x, 0, 0); }
tg_tensor *tg_tanh(tg_tape *tp, tg_tensor *x) { return unary(tp, &tanh_op, x, 0, 0); }
tg_tensor *tg_relu(tg_tape *tp, tg_tensor *x) { return unary(tp, &relu_op, x, 0, 0); }
tg_tensor *tg_exp(tg_tape *tp, tg_tensor *x) { return unary(tp, &exp_op, x, 0, 0); }
tg_tensor *tg_log(tg_tape *tp, tg_tensor *x) { return unary(tp, &log_op, x, 0, 0); }
tg_tensor *tg_sqrt(tg_tape *tp, tg_tensor *x) { return unary(tp, &sqrt_op, x, 0, 0); }
tg_tensor *tg_pow(tg_tape *tp, tg_tensor *x, double p) { return unary(tp, &pow_op, x, p, 0); }
tg_tensor *tg_hard_sigmoid(tg_tape *tp, tg_tensor *x) {
    return unary(tp, &hard_sigmoid_op, x, 0.2, 0.5);
}
tg_tensor *tg_rsqrt(tg_tape *tp, tg_tensor *x) { return unary(tp, &rsqrt_op, x, 0, 0); }
tg_tensor *tg_affine(tg_tape *tp, tg_tensor *x, double a, double b) {
    return unary(tp, &affine_op, x, a, b);
}
tg_tensor *tg_hard_sigmoid_ex(tg_tape *tp, tg_tensor *x, double slope, double offset) {
    return unary(tp, &hard_sigmoid_op, x, slope, offset);
}
