/* tests/check_unary.c - forward values and derivatives worked by hand,
 * stability at extreme inputs, the hard_sigmoid kinks, errors. */
#include "check_suites.h"

typedef tg_tensor *(*unary_fn)(tg_tape *, tg_tensor *);

/* Forward y and gradient dx (for dy = 1) of f at the points x, in dtype dt. */
static void run(unary_fn f, tg_dtype dt, int n, const double *x, double *y, double *dx) {
    tg_tape *tp = tg_tape_new();
    int64_t len = n;
    tg_tensor *t = tg_tensor_from(dt, 1, &len, x), *ones = tg_tensor_new(dt, 1, &len);
    tg_tensor_fill(ones, 1);
    tg_tensor_set_requires_grad(t, true);
    tg_tensor *out = f(tp, t);
    ck_assert_msg(out != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_backward_ex(tp, out, ones), TG_OK);
    for (int i = 0; i < n; i++) {
        y[i] = tg_tensor_get(out, i);
        dx[i] = tg_tensor_grad_get(t, i);
    }
    tg_tensor_free(t);
    tg_tensor_free(ones);
    tg_tape_free(tp);
}

static tg_tensor *hs_torch(tg_tape *tp, tg_tensor *x) { return tg_hard_sigmoid_ex(tp, x, 1.0 / 6, 0.5); }
static tg_tensor *pow3(tg_tape *tp, tg_tensor *x) { return tg_pow(tp, x, 3); }
static tg_tensor *times_m2(tg_tape *tp, tg_tensor *x) { return tg_scale(tp, x, -2); }
static tg_tensor *plus_half(tg_tape *tp, tg_tensor *x) { return tg_shift(tp, x, 0.5); }

START_TEST(sigmoid_is_stable_at_extremes) {
    for (int d = 0; d < 2; d++) {
        double x[] = {0, -1000, 1000, 2}, y[4], dx[4];
        run(tg_sigmoid, d ? TG_F32 : TG_F64, 4, x, y, dx);
        ck_assert(y[0] == 0.5 && dx[0] == 0.25);
        ck_assert(y[1] == 0.0 && dx[1] == 0.0);
        ck_assert(y[2] == 1.0 && dx[2] == 0.0);
        ck_assert_near(y[3], 0.8807970779778823, 1e-7);   /* 1/(1+e^-2) */
        ck_assert_near(dx[3], 0.1049935854035065, 1e-7);  /* s(1-s)    */
    }
}
END_TEST

START_TEST(tanh_exp_log_sqrt_relu_neg_match_hand_values) {
    double x[] = {0.5, 2.0}, y[2], dx[2];
    run(tg_tanh, TG_F64, 2, x, y, dx);
    ck_assert_near(y[0], 0.46211715726000974, 1e-15);
    ck_assert_near(dx[0], 0.7864477329659274, 1e-15);
    run(tg_exp, TG_F64, 2, x, y, dx);
    ck_assert_near(y[1], 7.38905609893065, 1e-13);
    ck_assert_near(dx[1], 7.38905609893065, 1e-13);
    run(tg_log, TG_F64, 2, x, y, dx);
    ck_assert_near(y[0], -0.6931471805599453, 1e-15);
    ck_assert_near(dx[0], 2.0, 0);
    ck_assert_near(dx[1], 0.5, 0);
    run(tg_sqrt, TG_F64, 2, (double[]){4, 0.25}, y, dx);
    ck_assert_array_near(y, TGT_VALS(2, 0.5), 2, 0);
    ck_assert_array_near(dx, TGT_VALS(0.25, 1.0), 2, 0);
    run(tg_relu, TG_F64, 2, (double[]){-1, 0}, y, dx);
    ck_assert_array_near(y, TGT_VALS(0, 0), 2, 0);
    ck_assert_array_near(dx, TGT_VALS(0, 0), 2, 0); /* d/dx at 0 is 0 */
    run(tg_neg, TG_F64, 2, x, y, dx);
    ck_assert_near(y[0], -0.5, 0);
    ck_assert_near(dx[1], -1, 0);
    run(pow3, TG_F64, 2, x, y, dx);
    ck_assert_near(y[1], 8, 0);
    ck_assert_array_near(dx, TGT_VALS(0.75, 12), 2, 0);
    run(times_m2, TG_F32, 2, x, y, dx);
    ck_assert_near(y[1], -4, 0);
    ck_assert_near(dx[0], -2, 0);
    run(plus_half, TG_F32, 2, x, y, dx);
    ck_assert_near(y[0], 1, 0);
    ck_assert_near(dx[0], 1, 0);
}
END_TEST

START_TEST(hard_sigmoid_keras_and_pytorch_slopes_with_kinks) {
    /* Keras classic: clip(0.2x + 0.5, 0, 1); kinks at -2.5 and 2.5 */
    double x[] = {1, 3, -3, 2.5, -2.5, 0}, y[6], dx[6];
    run(tg_hard_sigmoid, TG_F64, 6, x, y, dx);
    double want_y[] = {0.7, 1, 0, 1, 0, 0.5}, want_dx[] = {0.2, 0, 0, 0, 0, 0.2};
    for (int i = 0; i < 6; i++) {
        ck_assert_near(y[i], want_y[i], 1e-12);
        ck_assert_near(dx[i], want_dx[i], 1e-12);
    }
    /* PyTorch Hardsigmoid: x/6 + 0.5, kinks at -3 and 3 (torch gives grad 0 there) */
    double xt[] = {1, 3, -3, 4}, yt[4], dt[4];
    run(hs_torch, TG_F64, 4, xt, yt, dt);
    ck_assert_near(yt[0], 2.0 / 3, 1e-12);
    ck_assert_near(dt[0], 1.0 / 6, 1e-12);
    ck_assert_array_near(yt + 1, TGT_VALS(1, 0, 1), 3, 0);
    ck_assert_array_near(dt + 1, TGT_VALS(0, 0, 0), 3, 0);
}
END_TEST

START_TEST(unary_ops_reject_index_tensors) {
    tg_tape *tp = tg_tape_new();
    int64_t s[] = {2, 3};
    tg_tensor *i = tg_tensor_new(TG_I32, 2, s);
    ck_assert_ptr_null(tg_tanh(tp, i));
    ck_assert_tape_error(tp, TG_ERR_DTYPE, "tanh: needs a float tensor, got int32 [2,3]");
    ck_assert_ptr_null(tg_sigmoid(tp, NULL));
    tg_tensor_free(i);
    tg_tape_free(tp);
}
END_TEST

Suite *suite_unary(void) {
    Suite *s = suite_create("unary");
    TCase *tc = tcase_create("unary");
    tcase_add_test(tc, sigmoid_is_stable_at_extremes);
    tcase_add_test(tc, tanh_exp_log_sqrt_relu_neg_match_hand_values);
    tcase_add_test(tc, hard_sigmoid_keras_and_pytorch_slopes_with_kinks);
    tcase_add_test(tc, unary_ops_reject_index_tensors);
    suite_add_tcase(s, tc);
    return s;
}
