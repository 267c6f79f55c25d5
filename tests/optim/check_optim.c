/* tests/optim/check_optim.c - optimizers: three steps against PyTorch 1.13
 * (optim_reference.h), convergence on a small regression, parameter groups,
 * state rules and bad arguments. */
#include "optim_tests.h"

#include "optim_reference.h"
#include "../tg_test.h"

/* ---- the reference problem: W [3,2], b [2], x [4,3], y [4,2] ---------------- */
typedef struct lin_model {
    tg_params *p;
    tg_tensor *w, *b;
} lin_model;

static lin_model lin_new(tg_dtype dt) {
    lin_model m = {tg_params_new(), NULL, NULL};
    m.w = tg_params_create(m.p, "lin.weight", dt, 2, (int64_t[]){3, 2});
    m.b = tg_params_create(m.p, "lin.bias", dt, 1, (int64_t[]){2});
    for (int i = 0; i < 6; i++) tg_tensor_set(m.w, i, ref_w0[i]);
    for (int i = 0; i < 2; i++) tg_tensor_set(m.b, i, ref_b0[i]);
    return m;
}

/* Gradients of mean((xW + b - y)^2) worked by hand:
 * r = xW + b - y; dW = x^T r * 2/8; db = sum_rows(r) * 2/8. */
static void lin_grads(lin_model *m) {
    double r[8], dw[6] = {0}, db[2] = {0};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++) {
            double s = tg_tensor_get(m->b, j) - ref_y[i * 2 + j];
            for (int k = 0; k < 3; k++) s += ref_x[i * 3 + k] * tg_tensor_get(m->w, k * 2 + j);
            r[i * 2 + j] = s;
        }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++) {
            for (int k = 0; k < 3; k++) dw[k * 2 + j] += ref_x[i * 3 + k] * r[i * 2 + j] * 0.25;
            db[j] += r[i * 2 + j] * 0.25;
        }
    ot_set_grad(m->w, dw);
    ot_set_grad(m->b, db);
}

static void run_reference(const ref_case *rc, tg_dtype dt, double tol) {
    lin_model m = lin_new(dt);
    tg_optim *o = tg_optim_new_ex(rc->kind, m.p, &rc->g0);
    ck_assert_msg(o != NULL, "%s: %s", rc->name, tg_last_error());
    ck_assert_int_eq(tg_optim_add_group(o, "*.bias", rc->lr1, rc->wd1), 1);
    double worst = 0;
    for (int step = 0; step < 3; step++) {
        lin_grads(&m);
        ck_assert_int_eq(tg_optim_step(o), TG_OK);
        for (int i = 0; i < 6; i++)
            tgt_diff_update(&worst, tg_tensor_get(m.w, i), rc->w[step][i]);
        for (int i = 0; i < 2; i++)
            tgt_diff_update(&worst, tg_tensor_get(m.b, i), rc->b[step][i]);
    }
    /* llm.c style: the max difference per case, visible in the test log. */
    printf("reference %-32s %s max |diff| %.3g\n", rc->name, tg_dtype_name(dt), worst);
    ck_assert_msg(tgt_within(worst, tol), "%s (%s): max |diff| %.3g > %.3g", rc->name,
                  tg_dtype_name(dt), worst, tol);
    ck_assert_int_eq(tg_optim_steps(o), 3);
    tg_optim_free(o);
    tg_params_free(m.p);
}

START_TEST(three_steps_match_pytorch_in_float64) {
    run_reference(&ref_cases[_i], TG_F64, 1e-14);
}
END_TEST

START_TEST(three_steps_match_pytorch_in_float32) {
    run_reference(&ref_cases[_i], TG_F32, 2e-7);
}
END_TEST

/* ---- convergence: y = x A + c on 64 points, through real ops ---------------- */
static double regression(tg_optim_kind kind, const tg_optim_opts *g, int steps) {
    tg_rng rng = tg_rng_seeded(7);
    double xs[64 * 3], ys[64 * 2];
    const double A[6] = {0.5, -1.0, 2.0, 0.3, -0.7, 1.1}, c[2] = {0.2, -0.4};
    for (int i = 0; i < 64; i++) {
        for (int k = 0; k < 3; k++) xs[i * 3 + k] = 2 * tg_rng_uniform(&rng) - 1;
        for (int j = 0; j < 2; j++) {
            ys[i * 2 + j] = c[j];
            for (int k = 0; k < 3; k++) ys[i * 2 + j] += xs[i * 3 + k] * A[k * 2 + j];
        }
    }
    tg_tensor *x = tg_tensor_from(TG_F32, 2, (int64_t[]){64, 3}, xs);
    tg_tensor *y = tg_tensor_from(TG_F32, 2, (int64_t[]){64, 2}, ys);
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_params_create(p, "w", TG_F32, 2, (int64_t[]){3, 2});
    tg_tensor *b = tg_params_create(p, "b", TG_F32, 2, (int64_t[]){1, 2});
    tg_optim *o = tg_optim_new_ex(kind, p, g);
    tg_tape *tp = tg_tape_new();
    double loss = NAN;
    for (int s = 0; s < steps; s++) {
        tg_params_zero_grad(p);
        tg_tensor *l = tg_mse(tp, tg_add(tp, tg_matmul(tp, x, w), b), y);
        ck_assert_msg(l != NULL, "%s", tg_tape_error(tp));
        loss = tg_tensor_item(l);
        ck_assert_int_eq(tg_backward(tp, l), TG_OK);
        ck_assert_int_eq(tg_optim_step(o), TG_OK);
        tg_tape_reset(tp);
    }
    tg_tape_free(tp);
    tg_optim_free(o);
    tg_params_free(p);
    tg_tensor_free(x);
    tg_tensor_free(y);
    return loss;
}

/* Adadelta's step grows from sqrt(eps): a larger eps gets it going in 400 steps. */
static const struct { tg_optim_kind kind; double lr, momentum, eps; } fits[] = {
    {TG_OPTIM_SGD, 0.1, 0.9, 0},  {TG_OPTIM_RMSPROP, 0.01, 0, 0}, {TG_OPTIM_ADAM, 0.05, 0, 0},
    {TG_OPTIM_ADAMW, 0.05, 0, 0}, {TG_OPTIM_ADAGRAD, 0.5, 0, 0},  {TG_OPTIM_ADADELTA, 1.0, 0, 1e-3},
};

START_TEST(each_optimizer_fits_a_small_regression) {
    tg_optim_opts g = tg_optim_defaults(fits[_i].kind);
    g.lr = fits[_i].lr;
    g.momentum = fits[_i].momentum;
    if (fits[_i].eps > 0) g.eps = fits[_i].eps;
    g.weight_decay = 0;
    double first = regression(fits[_i].kind, &g, 1), last = regression(fits[_i].kind, &g, 400);
    printf("fit %-9s loss %.4g -> %.3g\n", tg_optim_kind_name(fits[_i].kind), first, last);
    ck_assert_msg(last < 1e-3 && last < first / 1000, "%s: loss %g -> %g",
                  tg_optim_kind_name(fits[_i].kind), first, last);
}
END_TEST

/* ---- rules --------------------------------------------------------------------- */
START_TEST(a_parameter_without_gradient_is_left_alone) {
    tg_params *p = tg_params_new();
    tg_tensor *a = tg_params_create(p, "a", TG_F64, 1, (int64_t[]){2});
    tg_tensor *b = tg_params_create(p, "b", TG_F64, 1, (int64_t[]){2});
    tg_tensor_fill(a, 1.0);
    tg_tensor_fill(b, 1.0);
    tg_optim_opts g = tg_optim_defaults(TG_OPTIM_SGD);
    g.weight_decay = 0.5;   /* would move b if it were stepped */
    tg_optim *o = tg_optim_new_ex(TG_OPTIM_SGD, p, &g);
    ot_set_grad(a, (double[]){1.0, -2.0});
    ck_assert_int_eq(tg_optim_step(o), TG_OK);
    /* a: 1 - 0.01 * (g + 0.5*1) */
    ck_assert_double_eq_tol(tg_tensor_get(a, 0), 1 - 0.01 * 1.5, 1e-15);
    ck_assert_double_eq_tol(tg_tensor_get(a, 1), 1 - 0.01 * -1.5, 1e-15);
    ck_assert(tg_tensor_get(b, 0) == 1.0 && tg_tensor_get(b, 1) == 1.0);
    tg_optim_free(o);
    tg_params_free(p);
}
END_TEST

START_TEST(sgd_momentum_starts_from_the_first_gradient) {
    /* PyTorch: buf = g on the first step (no dampening), then m*buf + (1-d)*g. */
    tg_params *p = tg_params_new();
    tg_tensor *a = tg_params_create(p, "a", TG_F64, 0, NULL);
    tg_optim_opts g = tg_optim_defaults(TG_OPTIM_SGD);
    g.lr = 1, g.momentum = 0.5, g.dampening = 0.5;
    tg_optim *o = tg_optim_new_ex(TG_OPTIM_SGD, p, &g);
    ot_set_grad(a, (double[]){2.0});
    tg_optim_step(o);   /* buf = 2, a = -2 */
    ck_assert(tg_tensor_item(a) == -2.0);
    ot_set_grad(a, (double[]){2.0});
    tg_optim_step(o);   /* buf = 0.5*2 + 0.5*2 = 2, a = -4 */
    ck_assert(tg_tensor_item(a) == -4.0);
    tg_optim_free(o);
    tg_params_free(p);
}
END_TEST

START_TEST(groups_take_parameters_by_pattern) {
    tg_params *p = tg_params_new();
    tg_params_create(p, "enc.weight", TG_F32, 1, (int64_t[]){2});
    tg_params_create(p, "enc.bias", TG_F32, 1, (int64_t[]){2});
    tg_params_create(p, "dec.bias", TG_F32, 1, (int64_t[]){2});
    tg_optim *o = tg_optim_new(TG_OPTIM_ADAMW, p, 1e-3);
    ck_assert_int_eq(tg_optim_group_count(o), 1);
    ck_assert_int_eq(tg_optim_add_group(o, "*.bias", 2e-3, 0.0), 1);
    ck_assert_int_eq(tg_optim_param_group(o, 0), 0);
    ck_assert_int_eq(tg_optim_param_group(o, 1), 1);
    ck_assert_int_eq(tg_optim_param_group(o, 2), 1);
    ck_assert_int_eq(tg_optim_add_group(o, "dec.*", 3e-3, 0.1), 2);
    ck_assert_int_eq(tg_optim_param_group(o, 2), 2);
    ck_assert(tg_optim_lr(o, 1) == 2e-3 && tg_optim_group_opts(o, 2).weight_decay == 0.1);
    ck_assert(tg_optim_group_opts(o, 2).beta2 == 0.999);   /* copied from group 0 */
    ck_assert_int_eq(tg_optim_set_lr(o, -1, 0.5), TG_OK);
    ck_assert(tg_optim_lr(o, 0) == 0.5 && tg_optim_lr(o, 2) == 0.5);
    ck_assert_int_eq(tg_optim_add_group(o, "*.bais", 1e-3, 0), -1);
    ck_assert_last_error(TG_ERR_ARG, "no parameter name matches '*.bais'");
    tg_optim_free(o);
    tg_params_free(p);
}
END_TEST

START_TEST(parameters_added_later_join_group_0) {
    tg_params *p = tg_params_new();
    tg_params_create(p, "a", TG_F64, 0, NULL);
    tg_optim *o = tg_optim_new(TG_OPTIM_SGD, p, 0.5);
    tg_tensor *late = tg_params_create(p, "late", TG_F64, 0, NULL);
    ot_set_grad(late, (double[]){1.0});
    ck_assert_int_eq(tg_optim_step(o), TG_OK);
    ck_assert(tg_tensor_item(late) == -0.5);
    ck_assert_int_eq(tg_optim_param_group(o, 1), 0);
    tg_optim_free(o);
    tg_params_free(p);
}
END_TEST

START_TEST(a_warm_step_allocates_nothing) {
    tg_params *p = tg_params_new();
    tg_tensor *a = tg_params_create(p, "a", TG_F32, 1, (int64_t[]){1000});
    tg_optim_opts g = tg_optim_defaults(TG_OPTIM_ADAM);
    g.amsgrad = true;
    tg_optim *o = tg_optim_new_ex(TG_OPTIM_ADAM, p, &g);
    double ones[1000];
    for (int i = 0; i < 1000; i++) ones[i] = 1;
    ot_set_grad(a, ones);
    tg_optim_step(o);
    uint64_t before = tg_heap_allocs();
    for (int i = 0; i < 5; i++) tg_optim_step(o);
    ck_assert_uint_eq(tg_heap_allocs(), before);
    tg_optim_free(o);
    tg_params_free(p);
}
END_TEST

START_TEST(bad_hyperparameters_are_errors_naming_the_value) {
    tg_params *p = tg_params_new();
    tg_optim_opts g = tg_optim_defaults(TG_OPTIM_ADAM);
    g.beta1 = 1.0;
    ck_assert_ptr_null(tg_optim_new_ex(TG_OPTIM_ADAM, p, &g));
    ck_assert_last_error(TG_ERR_ARG, "optim_new: adam: beta1 1 not in [0, 1)");
    ck_assert_ptr_null(tg_optim_new(TG_OPTIM_RMSPROP, p, -0.1));
    ck_assert_last_error(TG_ERR_ARG, "optim_new: rmsprop: lr -0.1 must be finite and >= 0");
    ck_assert_ptr_null(tg_optim_new(TG_OPTIM_SGD, p, NAN));
    ck_assert_last_error(TG_ERR_ARG, "lr nan");
    g = tg_optim_defaults(TG_OPTIM_SGD);
    g.nesterov = true;
    ck_assert_ptr_null(tg_optim_new_ex(TG_OPTIM_SGD, p, &g));
    ck_assert_last_error(TG_ERR_ARG, "nesterov needs momentum > 0 and dampening 0");
    g = tg_optim_defaults(TG_OPTIM_ADADELTA);
    g.rho = 1.5;
    ck_assert_ptr_null(tg_optim_new_ex(TG_OPTIM_ADADELTA, p, &g));
    ck_assert_last_error(TG_ERR_ARG, "rho 1.5 not in [0, 1]");
    ck_assert_ptr_null(tg_optim_new((tg_optim_kind)42, p, 0.1));
    ck_assert_last_error(TG_ERR_ARG, "unknown optimizer kind 42");
    ck_assert_ptr_null(tg_optim_new(TG_OPTIM_SGD, NULL, 0.1));
    ck_assert_last_error(TG_ERR_ARG, "registry is NULL");
    ck_assert_int_eq(tg_optim_step(NULL), TG_ERR_ARG);
    tg_optim *o = tg_optim_new(TG_OPTIM_SGD, p, 0.1);
    ck_assert_int_eq(tg_optim_set_lr(o, 3, 0.1), TG_ERR_ARG);
    ck_assert_int_eq(tg_optim_set_lr(o, 0, -1), TG_ERR_ARG);
    ck_assert_int_eq(tg_optim_add_group(o, NULL, 0.1, 0), -1);
    tg_optim_free(o);
    tg_params_free(p);
}
END_TEST

START_TEST(defaults_follow_pytorch_and_keras) {
    ck_assert(tg_optim_defaults(TG_OPTIM_ADADELTA).lr == 1.0 &&
              tg_optim_defaults(TG_OPTIM_ADADELTA).rho == 0.9);
    ck_assert(tg_optim_defaults(TG_OPTIM_ADADELTA).eps == 1e-6);
    ck_assert(tg_optim_keras_defaults(TG_OPTIM_ADADELTA).lr == 1.0);
    ck_assert(tg_optim_keras_defaults(TG_OPTIM_ADADELTA).eps == 1e-7);
    ck_assert(tg_optim_keras_defaults(TG_OPTIM_ADADELTA).rho == 0.95);
    ck_assert(tg_optim_defaults(TG_OPTIM_ADAMW).weight_decay == 1e-2);
    ck_assert(tg_optim_defaults(TG_OPTIM_ADAGRAD).eps == 1e-10);
    ck_assert(tg_optim_defaults(TG_OPTIM_RMSPROP).alpha == 0.99);
    ck_assert(tg_optim_keras_defaults(TG_OPTIM_RMSPROP).alpha == 0.9);
    ck_assert_str_eq(tg_optim_kind_name(TG_OPTIM_ADAGRAD), "adagrad");
}
END_TEST

Suite *suite_optim(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    int n_ref = (int)(sizeof ref_cases / sizeof ref_cases[0]);
    tcase_add_loop_test(tc, three_steps_match_pytorch_in_float64, 0, n_ref);
    tcase_add_loop_test(tc, three_steps_match_pytorch_in_float32, 0, n_ref);
    tcase_add_loop_test(tc, each_optimizer_fits_a_small_regression, 0,
                        (int)(sizeof fits / sizeof fits[0]));
    tcase_add_test(tc, a_parameter_without_gradient_is_left_alone);
    tcase_add_test(tc, sgd_momentum_starts_from_the_first_gradient);
    tcase_add_test(tc, groups_take_parameters_by_pattern);
    tcase_add_test(tc, parameters_added_later_join_group_0);
    tcase_add_test(tc, a_warm_step_allocates_nothing);
    tcase_add_test(tc, bad_hyperparameters_are_errors_naming_the_value);
    tcase_add_test(tc, defaults_follow_pytorch_and_keras);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
