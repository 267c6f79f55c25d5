/* tests/check_grad.c - tg_grad (gradients as tensors, create_graph), higher
 * derivatives, tg_hvp / tg_jvp / tg_jacobian against finite differences, and
 * the errors: an op without double backward is named. */
#include "check_suites.h"

#include <stdio.h>

/* d/dx, d2/dx2, d3/dx3 of sum(x^4): 4x^3, 12x^2, 24x (worked values). */
START_TEST(third_derivative_of_x_to_the_fourth) {
    tg_dtype dt = tt_dtype_of(_i);
    const double xv[3] = {0.5, -1.25, 2.0};
    tg_tensor *x = tt_make(dt, 1, TGT_SHAPE(3), xv);
    tg_tensor_set_requires_grad(x, true);
    tg_tape *tp = tg_tape_new();
    tg_grad_opts rec = {.create_graph = true};
    tg_tensor *g1, *g2, *g3;
    ck_assert_int_eq(tg_grad(tp, tg_sum(tp, tg_pow(tp, x, 4)), NULL, 1, &x, &g1, &rec), TG_OK);
    ck_assert_int_eq(tg_grad(tp, tg_sum(tp, g1), NULL, 1, &x, &g2, &rec), TG_OK);
    ck_assert_int_eq(tg_grad(tp, tg_sum(tp, g2), NULL, 1, &x, &g3, NULL), TG_OK);
    double w1[3], w2[3], w3[3];
    for (int i = 0; i < 3; i++) {
        w1[i] = 4 * xv[i] * xv[i] * xv[i];
        w2[i] = 12 * xv[i] * xv[i];
        w3[i] = 24 * xv[i];
    }
    double tol = dt == TG_F64 ? 1e-12 : 1e-4;
    ck_assert(tgt_within(tgt_max_diff_vals(g1, w1, 3), tol));
    ck_assert(tgt_within(tgt_max_diff_vals(g2, w2, 3), tol));
    ck_assert(tgt_within(tgt_max_diff_vals(g3, w3, 3), tol));
    ck_assert_ptr_null(tg_tensor_grad(x));   /* tg_grad leaves .grad alone */
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

/* The test function: loss = sum(sigmoid(x W)^2), y = softmax(x W, -1). */
static tg_tensor *loss_of(tg_tape *tp, tg_tensor *x, tg_tensor *w) {
    tg_tensor *s = tg_sigmoid(tp, tg_matmul(tp, x, w));
    return tg_sum(tp, tg_mul(tp, s, s));
}
static tg_tensor *vector_fn(tg_tape *tp, tg_tensor *x, tg_tensor *w) {
    return tg_softmax(tp, tg_tanh(tp, tg_matmul(tp, x, w)), -1);
}

static tg_tensor *rand_tensor(int ndim, const int64_t *shape, uint64_t seed) {
    tg_rng r = tg_rng_seeded(seed);
    tg_tensor *t = tg_tensor_new(TG_F64, ndim, shape);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, 2 * tg_rng_uniform(&r) - 1);
    return t;
}

/* in[k] += s * v[k] for both inputs */
static void move(tg_tensor **in, tg_tensor **v, double s) {
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < tg_tensor_numel(in[k]); i++)
            tg_tensor_set(in[k], i, tg_tensor_get(in[k], i) + s * tg_tensor_get(v[k], i));
}

/* First-order gradients of loss_of at in (tg_backward), into out[k] values. */
static void first_order(tg_tensor **in, double *out0, double *out1) {
    tg_tape *tp = tg_tape_new();
    tg_tensor_zero_grad(in[0]);
    tg_tensor_zero_grad(in[1]);
    ck_assert_int_eq(tg_backward(tp, loss_of(tp, in[0], in[1])), TG_OK);
    for (int64_t i = 0; i < tg_tensor_numel(in[0]); i++) out0[i] = tg_tensor_grad_get(in[0], i);
    for (int64_t i = 0; i < tg_tensor_numel(in[1]); i++) out1[i] = tg_tensor_grad_get(in[1], i);
    tg_tape_free(tp);
}

START_TEST(hessian_vector_product_matches_finite_differences) {
    tg_tensor *in[2] = {rand_tensor(2, TGT_SHAPE(2, 3), 1), rand_tensor(2, TGT_SHAPE(3, 2), 2)};
    tg_tensor *v[2] = {rand_tensor(2, TGT_SHAPE(2, 3), 3), rand_tensor(2, TGT_SHAPE(3, 2), 4)};
    tg_tensor_set_requires_grad(in[0], true);
    tg_tensor_set_requires_grad(in[1], true);
    tg_tape *tp = tg_tape_new();
    tg_tensor *hv[2];
    ck_assert_int_eq(tg_hvp(tp, loss_of(tp, in[0], in[1]), 2, in, v, hv, NULL), TG_OK);
    double p0[6], p1[6], m0[6], m1[6], eps = 1e-5, worst = 0;
    move(in, v, eps);
    first_order(in, p0, p1);
    move(in, v, -2 * eps);
    first_order(in, m0, m1);
    move(in, v, eps);
    for (int i = 0; i < 6; i++) {
        tgt_diff_update(&worst, tg_tensor_get(hv[0], i), (p0[i] - m0[i]) / (2 * eps));
        tgt_diff_update(&worst, tg_tensor_get(hv[1], i), (p1[i] - m1[i]) / (2 * eps));
    }
    ck_assert_msg(tgt_within(worst, 1e-8), "hvp vs differences: %g", worst);
    tg_tape_free(tp);
    for (int k = 0; k < 2; k++) tg_tensor_free(in[k]), tg_tensor_free(v[k]);
}
END_TEST

static void values_of(tg_tensor **in, double *out) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *y = vector_fn(tp, in[0], in[1]);
    for (int64_t i = 0; i < tg_tensor_numel(y); i++) out[i] = tg_tensor_get(y, i);
    tg_tape_free(tp);
}

START_TEST(jacobian_vector_product_matches_finite_differences) {
    tg_tensor *in[2] = {rand_tensor(2, TGT_SHAPE(2, 3), 5), rand_tensor(2, TGT_SHAPE(3, 4), 6)};
    tg_tensor *v[2] = {rand_tensor(2, TGT_SHAPE(2, 3), 7), rand_tensor(2, TGT_SHAPE(3, 4), 8)};
    tg_tensor_set_requires_grad(in[0], true);
    tg_tensor_set_requires_grad(in[1], true);
    tg_tape *tp = tg_tape_new();
    tg_tensor *jv = tg_jvp(tp, vector_fn(tp, in[0], in[1]), 2, in, v, NULL);
    ck_assert_msg(jv != NULL, "%s", tg_tape_error(tp));
    double p[8], m[8], eps = 1e-5, worst = 0;
    move(in, v, eps);
    values_of(in, p);
    move(in, v, -2 * eps);
    values_of(in, m);
    for (int i = 0; i < 8; i++) tgt_diff_update(&worst, tg_tensor_get(jv, i), (p[i] - m[i]) / (2 * eps));
    ck_assert_msg(tgt_within(worst, 1e-8), "jvp vs differences: %g", worst);
    tg_tape_free(tp);
    for (int k = 0; k < 2; k++) tg_tensor_free(in[k]), tg_tensor_free(v[k]);
}
END_TEST

START_TEST(jacobian_matches_finite_differences) {
    tg_tensor *in[2] = {rand_tensor(2, TGT_SHAPE(2, 3), 9), rand_tensor(2, TGT_SHAPE(3, 4), 10)};
    tg_tensor_set_requires_grad(in[0], true);
    tg_tensor_set_requires_grad(in[1], true);
    tg_tape *tp = tg_tape_new();
    tg_tensor *jac = tg_jacobian(tp, vector_fn(tp, in[0], in[1]), 2, in);
    ck_assert_msg(jac != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_tensor_shape(jac)[0], 8);
    ck_assert_int_eq(tg_tensor_shape(jac)[1], 18);
    double p[8], m[8], eps = 1e-6, worst = 0;
    for (int col = 0; col < 18; col++) {
        tg_tensor *t = col < 6 ? in[0] : in[1];
        int64_t i = col < 6 ? col : col - 6;
        double keep = tg_tensor_get(t, i);
        tg_tensor_set(t, i, keep + eps);
        values_of(in, p);
        tg_tensor_set(t, i, keep - eps);
        values_of(in, m);
        tg_tensor_set(t, i, keep);
        for (int r = 0; r < 8; r++)
            tgt_diff_update(&worst, tg_tensor_get(jac, r * 18 + col), (p[r] - m[r]) / (2 * eps));
    }
    ck_assert_msg(tgt_within(worst, 1e-8), "jacobian vs differences: %g", worst);
    tg_tape_free(tp);
    for (int k = 0; k < 2; k++) tg_tensor_free(in[k]);
}
END_TEST

/* A user op with a first-order VJP and no vjp_graph: y = 2x. */
static int twice_forward(tg_node *n) {
    for (int64_t i = 0; i < tg_tensor_numel(n->out); i++)
        tg_tensor_set(n->out, i, 2 * tg_tensor_get(n->in[0], i));
    return 0;
}
static int twice_vjp(tg_node *n) {
    double *dx = tg_input_grad(n, 0);
    const double *dy = tg_output_grad(n);
    for (int64_t i = 0; dx && i < tg_tensor_numel(n->out); i++) dx[i] += 2 * dy[i];
    return 0;
}
static const tg_op twice_op = {.name = "my_twice", .n_in = 1, .infer = tg_infer_same_as_input0,
                               .forward = twice_forward, .vjp = twice_vjp};

START_TEST(an_op_without_double_backward_is_named) {
    tg_tensor *x = rand_tensor(1, TGT_SHAPE(5), 11);
    tg_tensor_set_requires_grad(x, true);
    tg_tape *tp = tg_tape_new();
    tg_tensor *g = NULL;
    tg_tensor *y = tg_sum(tp, tg_tanh(tp, tg_apply(tp, &twice_op, 1, &x, NULL)));
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);   /* first order works */
    ck_assert_int_eq(tg_grad(tp, y, NULL, 1, &x, &g, NULL), TG_ERR_STATE);
    ck_assert_ptr_null(g);
    ck_assert_msg(strstr(tg_tape_error(tp), "my_twice: no double backward (vjp_graph) for this op") !=
                      NULL, "%s", tg_tape_error(tp));
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

START_TEST(bad_calls_are_errors) {
    tg_tensor *x = rand_tensor(2, TGT_SHAPE(2, 3), 13), *c = rand_tensor(2, TGT_SHAPE(2, 3), 14);
    tg_tensor_set_requires_grad(x, true);
    tg_tape *tp = tg_tape_new();
    tg_tensor *g = NULL, *y = tg_tanh(tp, x);
    ck_assert_int_eq(tg_grad(tp, y, NULL, 1, &x, &g, NULL), TG_ERR_SHAPE);   /* y not scalar */
    ck_assert_msg(strstr(tg_tape_error(tp), "grad: output [2,3] has more than one element") != NULL,
                  "%s", tg_tape_error(tp));
    tg_tape_clear_error(tp);
    tg_tensor *dy = tg_tape_tensor(tp, TG_F64, 2, TGT_SHAPE(3, 2));
    ck_assert_int_eq(tg_grad(tp, y, dy, 1, &x, &g, NULL), TG_ERR_SHAPE);
    ck_assert_msg(strstr(tg_tape_error(tp), "output gradient float64 [3,2] differs from output "
                                            "float64 [2,3]") != NULL, "%s", tg_tape_error(tp));
    tg_tape_clear_error(tp);
    tg_tensor *k = tg_sum(tp, tg_tanh(tp, c));   /* c does not require grad: not recorded */
    ck_assert_int_eq(tg_grad(tp, k, NULL, 1, &x, &g, NULL), TG_ERR_STATE);
    tg_tape_clear_error(tp);
    ck_assert_int_eq(tg_grad(NULL, y, NULL, 1, &x, &g, NULL), TG_ERR_ARG);
    ck_assert_int_eq(tg_grad(tp, y, NULL, 0, &x, &g, NULL), TG_ERR_ARG);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(c);
}
END_TEST

/* Without create_graph the gradient is a plain value: a backward from it is
 * refused; with it, the gradient is recorded. An input y does not depend on
 * gets zeros. */
START_TEST(create_graph_records_the_gradient) {
    tg_tensor *x = rand_tensor(1, TGT_SHAPE(4), 15), *u = rand_tensor(1, TGT_SHAPE(2), 16);
    tg_tensor_set_requires_grad(x, true);
    tg_tensor_set_requires_grad(u, true);
    tg_tape *tp = tg_tape_new();
    tg_tensor *in[2] = {x, u}, *g[2];
    tg_tensor *y = tg_sum(tp, tg_exp(tp, x));
    ck_assert_int_eq(tg_grad(tp, y, NULL, 2, in, g, NULL), TG_OK);
    ck_assert(tgt_within(tgt_max_diff_vals(g[1], TGT_VALS(0, 0), 2), 0));
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, g[0])), TG_ERR_STATE);
    tg_tape_clear_error(tp);
    tg_grad_opts rec = {.create_graph = true};
    ck_assert_int_eq(tg_grad(tp, y, NULL, 2, in, g, &rec), TG_OK);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, g[0])), TG_OK);   /* d/dx sum(e^x) = e^x */
    double worst = 0;
    for (int i = 0; i < 4; i++) tgt_diff_update(&worst, tg_tensor_grad_get(x, i), exp(tg_tensor_get(x, i)));
    ck_assert(tgt_within(worst, 1e-12));
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(u);
}
END_TEST

Suite *suite_grad(void) {
    Suite *s = suite_create("grad");
    TCase *t = tcase_create("core");
    tcase_add_loop_test(t, third_derivative_of_x_to_the_fourth, 0, 2);
    tcase_add_test(t, hessian_vector_product_matches_finite_differences);
    tcase_add_test(t, jacobian_vector_product_matches_finite_differences);
    tcase_add_test(t, jacobian_matches_finite_differences);
    tcase_add_test(t, an_op_without_double_backward_is_named);
    tcase_add_test(t, bad_calls_are_errors);
    tcase_add_test(t, create_graph_records_the_gradient);
    suite_add_tcase(s, t);
    return s;
}
