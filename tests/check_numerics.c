/* tests/check_numerics.c - numerics at the edges (issue 9, item 12): pow(x, 0)
 * at 0, relu of NaN, layer norm's eps. Expected values from PyTorch 1.13. */
#include "check_suites.h"

#include "tapegrad/nn.h"

/* Forward y and gradient dx (for dy = 1) of f at the points x, in dtype dt. */
static void run(tg_tensor *(*f)(tg_tape *, tg_tensor *), tg_dtype dt, int n, const double *x,
                double *y, double *dx) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *t = tg_tensor_from(dt, 1, TGT_SHAPE(n), x);
    tg_tensor_set_requires_grad(t, true);
    tg_tensor *out = f(tp, t);
    ck_assert_msg(out != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, out)), TG_OK);
    for (int i = 0; i < n; i++) {
        y[i] = tg_tensor_get(out, i);
        dx[i] = tg_tensor_grad_get(t, i);
    }
    tg_tensor_free(t);
    tg_tape_free(tp);
}

static tg_tensor *pow0(tg_tape *tp, tg_tensor *x) { return tg_pow(tp, x, 0); }

/* From PyTorch 1.13 (/usr/bin/python3), in both dtypes:
 *   x = torch.tensor([0., 2., -3.], requires_grad=True); x.pow(0).sum().backward()
 *     -> y [1, 1, 1], x.grad [0, 0, 0]   (we gave NaN at 0: 0 * 0^-1)
 *   x = torch.tensor([nan, -1., 2., -0.], requires_grad=True); x.relu().sum().backward()
 *     -> y [nan, 0, 2, -0.], x.grad [1, 0, 1, 0]   (we gave relu(NaN) = 0, which hid
 *        a diverging run) */
START_TEST(pow_0_has_gradient_0_and_relu_keeps_nan) {
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = tt_dtype_of(d);
        double y[4], dx[4];
        run(pow0, dt, 3, TGT_VALS(0, 2, -3), y, dx);
        ck_assert_array_near(y, TGT_VALS(1, 1, 1), 3, 0);
        ck_assert_array_near(dx, TGT_VALS(0, 0, 0), 3, 0);
        run(tg_relu, dt, 4, TGT_VALS(NAN, -1, 2, -0.0), y, dx);
        ck_assert(isnan(y[0]));
        ck_assert_array_near(y + 1, TGT_VALS(0, 2, 0), 3, 0);
        ck_assert(signbit(y[3])); /* -0 stays -0, as in PyTorch */
        ck_assert_array_near(dx, TGT_VALS(1, 0, 1, 0), 4, 0);
    }
}
END_TEST

/* eps = NaN was read as "not > 0" and silently became 1e-5; +-Inf likewise
 * turned every output into 0 or NaN. Both are refused now. */
START_TEST(layer_norm_refuses_an_eps_that_is_not_a_number) {
    tg_params *p = tg_params_new();
    tg_layer_norm ln;
    ck_assert_int_eq(tg_layer_norm_init(&ln, p, "ln", 4, NAN, TG_F32), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "layer_norm: eps must be a finite number, got nan");
    ck_assert_int_eq(tg_layer_norm_init(&ln, p, "ln", 4, INFINITY, TG_F32), TG_ERR_ARG);
    ck_assert_int_eq(tg_params_count(p), 0);
    ck_assert_int_eq(tg_layer_norm_init(&ln, p, "ln", 4, 0, TG_F32), TG_OK); /* 0: the default */
    ck_assert_near(ln.eps, 1e-5, 0);
    tg_params_free(p);
}
END_TEST

Suite *suite_numerics(void) {
    Suite *s = suite_create("numerics");
    TCase *tc = tcase_create("numerics");
    tcase_add_test(tc, pow_0_has_gradient_0_and_relu_keeps_nan);
    tcase_add_test(tc, layer_norm_refuses_an_eps_that_is_not_a_number);
    suite_add_tcase(s, tc);
    return s;
}
