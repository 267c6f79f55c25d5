/* ops/unary.c - elementwise functions of one tensor: y = f(x), same shape.
 *
 * Each op is a line in the table below: its forward expression in x and its
 * derivative dy/dx in x and y (the saved input and output), with the scalar
 * attributes a, b. UNARY_OP stamps out the float and double loops, infer and
 * VJP (dx += dy * dy/dx), and the descriptor; the public wrappers are written
 * out at the bottom so every symbol can be found with grep. */
#include "../autograd/internal.h"

#include "simd_math.h" /* before tgmath.h: it declares the real functions */

#include <tgmath.h>

typedef struct unary_attr { double a, b; } unary_attr;

/* sigmoid without overflow: exp only of a non-positive number, e = e^-|x|,
 * then 1/(1+e) or e/(1+e); written without a branch so it vectorizes. */
#define SIGMOID(x) sigmoid_of(x, exp(-fabs(x)))
#define sigmoid_of(x, e) ((x) >= 0 ? 1 / (1 + (e)) : (e) / (1 + (e)))
#define CLIP01(v) ((v) < 0 ? 0 : (v) > 1 ? 1 : (v))

#define UNARY_LOOPS(NAME, T, FWD, DYDX)                                                           \
    TG_SIMD_CLONES static void NAME##_fwd_##T(const T *X, T *Y, int64_t n, T a, T b) {            \
        (void)a;                                                                                  \
        (void)b;                                                                                  \
        TG_PRAGMA_SIMD                                                                            \
        for (int64_t i = 0; i < n; i++) {                                                         \
            T x = X[i];                                                                           \
            Y[i] = (FWD);                                                                         \
        }                                                                                         \
    }                                                                                             \
    /* fresh: DX is uninitialised and is written, else accumulated into */                     \
    TG_SIMD_CLONES static void NAME##_vjp_##T(const T *X, const T *Y, const T *DY, T *DX,        \
                                              int64_t n, T a, T b, bool fresh) {                  \
        (void)a;                                                                                  \
        (void)b;                                                                                  \
        (void)X;                                                                                  \
        (void)Y;                                                                                  \
        if (fresh) {                                                                              \
            TG_PRAGMA_SIMD                                                                        \
            for (int64_t i = 0; i < n; i++) {                                                     \
                T x = X[i], y = Y[i];                                                             \
                (void)x;                                                                          \
                (void)y;                                                                          \
                DX[i] = DY[i] * (DYDX);                                                           \
            }                                                                                     \
            return;                                                                               \
        }                                                                                         \
        TG_PRAGMA_SIMD                                                                            \
        for (int64_t i = 0; i < n; i++) {                                                         \
            T x = X[i], y = Y[i];                                                                 \
            (void)x;                                                                              \
            (void)y;                                                                              \
            DX[i] += DY[i] * (DYDX);                                                              \
        }                                                                                         \
    }

#define UNARY_OP(NAME, FWD, DYDX)                                                                \
    UNARY_LOOPS(NAME, float, FWD, DYDX)                                                          \
    UNARY_LOOPS(NAME, double, FWD, DYDX)                                                         \
    static int NAME##_forward(tg_node *n) {                                                      \
        const unary_attr *at = n->attr;                                                          \
        tg_tensor *x = n->in[0], *y = n->out;                                                    \
        if (x->dtype == TG_F32)                                                                  \
            NAME##_fwd_float(x->data, y->data, x->numel, (float)at->a, (float)at->b);            \
        else                                                                                     \
            NAME##_fwd_double(x->data, y->data, x->numel, at->a, at->b);                         \
        return 0;                                                                                \
    }                                                                                            \
    static int NAME##_vjp(tg_node *n) {                                                          \
        const unary_attr *at = n->attr;                                                          \
        tg_tensor *x = n->in[0], *y = n->out;                                                    \
        bool fresh;                                                                              \
        void *dx = tg_input_grad_fresh(n, 0, &fresh);                                            \
        if (!dx) return 0;                                                                       \
        if (x->dtype == TG_F32)                                                                  \
            NAME##_vjp_float(x->data, y->data, tg_output_grad(n), dx, x->numel, (float)at->a,    \
                             (float)at->b, fresh);                                               \
        else                                                                                     \
            NAME##_vjp_double(x->data, y->data, tg_output_grad(n), dx, x->numel, at->a, at->b,   \
                              fresh);                                                            \
        return 0;                                                                                \
    }                                                                                            \
    static const tg_op NAME##_op = {.name = #NAME,                                               \
                                    .n_in = 1,                                                   \
                                    .attr_size = sizeof(unary_attr),                             \
                                    .infer = tg_infer_same_as_input0,                            \
                                    .forward = NAME##_forward,                                   \
                                    .vjp = NAME##_vjp};

/*        name          forward                      dy/dx                               */
UNARY_OP(neg,           -x,                          -1)
UNARY_OP(scale,         a * x,                       a)
UNARY_OP(shift,         x + b,                       1)
UNARY_OP(sigmoid,       SIGMOID(x),                  y * (1 - y))
UNARY_OP(tanh,          tanh(x),                     1 - y * y)
/* as PyTorch: NaN stays NaN (a diverging run stays visible), and so does -0 */
UNARY_OP(relu,          x < 0 ? 0 : x,               x <= 0 ? 0 : 1)
UNARY_OP(exp,           exp(x),                      y)
UNARY_OP(log,           log(x),                      1 / x)
UNARY_OP(sqrt,          sqrt(x),                     1 / (y + y))
/* x^0 is 1 everywhere: its derivative is 0, also at x = 0 where 0 * 0^-1 is NaN */
UNARY_OP(pow,           pow(x, a),                   a == 0 ? 0 : a * pow(x, a - 1))
/* slope a strictly inside the linear part, 0 at and beyond the kinks */
UNARY_OP(hard_sigmoid,  CLIP01(a * x + b),           (a * x + b > 0 && a * x + b < 1) ? a : 0)

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
tg_tensor *tg_hard_sigmoid_ex(tg_tape *tp, tg_tensor *x, double slope, double offset) {
    return unary(tp, &hard_sigmoid_op, x, slope, offset);
}
