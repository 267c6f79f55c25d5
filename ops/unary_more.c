/* ops/unary_more.c - elementwise functions of one tensor that cell authors
 * asked for: rsqrt and affine (a * x + b, so 1 - x is affine(x, -1, 1)).
 *
 * Same contract as ops/unary.c (y has x's shape; dx += dy * dy/dx), written as
 * plain loops on purpose: the elementwise kernels are moving onto one kernel
 * system, and these join it there.
 *   rsqrt   y = 1 / sqrt(x)      dy/dx = -y^3 / 2      (x > 0; 0 gives inf, < 0 NaN)
 *   affine  y = a * x + b        dy/dx = a */
#include "../autograd/internal.h"

#include <math.h>

typedef struct affine_attr { double a, b; } affine_attr;

/* ---- rsqrt ----------------------------------------------------------------------------------- */
static int rsqrt_forward(tg_node *n) {
    const tg_tensor *x = n->in[0];
    tg_tensor *y = n->out;
    if (x->dtype == TG_F32) {
        const float *X = x->data;
        float *Y = y->data;
        for (int64_t i = 0; i < x->numel; i++) Y[i] = 1.0f / sqrtf(X[i]);
    } else {
        const double *X = x->data;
        double *Y = y->data;
        for (int64_t i = 0; i < x->numel; i++) Y[i] = 1.0 / sqrt(X[i]);
    }
    return 0;
}

/* d(x^-1/2)/dx = -x^-3/2 / 2 = -y^3 / 2 */
static int rsqrt_vjp(tg_node *n) {
    const tg_tensor *y = n->out;
    void *dx = tg_input_grad(n, 0);
    if (!dx) return 0;
    if (y->dtype == TG_F32) {
        const float *Y = y->data, *DY = tg_output_grad(n);
        float *DX = dx;
        for (int64_t i = 0; i < y->numel; i++) DX[i] += DY[i] * -0.5f * Y[i] * Y[i] * Y[i];
    } else {
        const double *Y = y->data, *DY = tg_output_grad(n);
        double *DX = dx;
        for (int64_t i = 0; i < y->numel; i++) DX[i] += DY[i] * -0.5 * Y[i] * Y[i] * Y[i];
    }
    return 0;
}

static const tg_op rsqrt_op = {.name = "rsqrt", .n_in = 1, .infer = tg_infer_same_as_input0,
                               .forward = rsqrt_forward, .vjp = rsqrt_vjp};

tg_tensor *tg_rsqrt(tg_tape *tp, tg_tensor *x) { return tg_apply(tp, &rsqrt_op, 1, &x, NULL); }

/* ---- affine ---------------------------------------------------------------------------------- */
static int affine_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                        tg_desc *out) {
    const affine_attr *at = attr;
    if (!isfinite(at->a) || !isfinite(at->b))
        return tg_fail(tp, TG_ERR_ARG, "affine", "a and b must be finite: a %g, b %g", at->a, at->b);
    return tg_infer_same_as_input0(tp, n_in, in, attr, out);
}

static int affine_forward(tg_node *n) {
    const affine_attr *at = n->attr;
    const tg_tensor *x = n->in[0];
    tg_tensor *y = n->out;
    if (x->dtype == TG_F32) {
        const float *X = x->data;
        float *Y = y->data, a = (float)at->a, b = (float)at->b;
        for (int64_t i = 0; i < x->numel; i++) Y[i] = a * X[i] + b;
    } else {
        const double *X = x->data;
        double *Y = y->data;
        for (int64_t i = 0; i < x->numel; i++) Y[i] = at->a * X[i] + at->b;
    }
    return 0;
}

static int affine_vjp(tg_node *n) {
    const affine_attr *at = n->attr;
    const tg_tensor *y = n->out;
    void *dx = tg_input_grad(n, 0);
    if (!dx) return 0;
    if (y->dtype == TG_F32) {
        const float *DY = tg_output_grad(n);
        float *DX = dx, a = (float)at->a;
        for (int64_t i = 0; i < y->numel; i++) DX[i] += a * DY[i];
    } else {
        const double *DY = tg_output_grad(n);
        double *DX = dx;
        for (int64_t i = 0; i < y->numel; i++) DX[i] += at->a * DY[i];
    }
    return 0;
}

static const tg_op affine_op = {.name = "affine", .n_in = 1, .attr_size = sizeof(affine_attr),
                                .infer = affine_infer, .forward = affine_forward,
                                .vjp = affine_vjp};

tg_tensor *tg_affine(tg_tape *tp, tg_tensor *x, double a, double b) {
    affine_attr at = {a, b};
    return tg_apply(tp, &affine_op, 1, &x, &at);
}
