/* tests/optim/check_sched.c - gradient clipping, learning-rate schedules and
 * early stopping, on hand-worked sequences (formulas in optim.h). */
#include "optim_tests.h"

#include <unistd.h>

#define PI 3.14159265358979323846

/* ---- clipping ------------------------------------------------------------------ */
START_TEST(clip_by_norm_scales_every_gradient_and_returns_the_old_norm) {
    tg_params *p = tg_params_new();
    tg_tensor *a = tg_params_create(p, "a", TG_F64, 1, (int64_t[]){2});
    tg_tensor *b = tg_params_create(p, "b", TG_F32, 1, (int64_t[]){1});
    tg_params_create(p, "no_grad", TG_F64, 1, (int64_t[]){1});
    ot_set_grad(a, (double[]){3, 0});
    ot_set_grad(b, (double[]){-4});
    /* norm of the per-tensor norms: sqrt(3^2 + 4^2) = 5; coef = 1/(5 + 1e-6). */
    ck_assert_double_eq_tol(tg_clip_grad_norm(p, 1.0), 5.0, 1e-12);
    double c = 1.0 / (5.0 + 1e-6);
    ck_assert_double_eq_tol(tg_tensor_grad_get(a, 0), 3 * c, 1e-15);
    ck_assert(tg_tensor_grad_get(a, 1) == 0);
    ck_assert_double_eq_tol(tg_tensor_grad_get(b, 0), -4 * c, 1e-7);
    /* Below the limit: unchanged, norm still returned. */
    double n = tg_clip_grad_norm(p, 10.0);
    ck_assert_double_eq_tol(n, 5 * c, 1e-7);
    ck_assert_double_eq_tol(tg_tensor_grad_get(a, 0), 3 * c, 1e-15);
    tg_params_free(p);
}
END_TEST

START_TEST(clip_by_norm_leaves_non_finite_gradients_for_the_caller) {
    tg_params *p = tg_params_new();
    tg_tensor *a = tg_params_create(p, "a", TG_F64, 1, (int64_t[]){2});
    ot_set_grad(a, (double[]){NAN, 1});
    ck_assert(isnan(tg_clip_grad_norm(p, 1.0)));
    ck_assert(tg_tensor_grad_get(a, 1) == 1.0);
    ot_set_grad(a, (double[]){INFINITY, 1});
    ck_assert(isinf(tg_clip_grad_norm(p, 1.0)));
    ck_assert(tg_tensor_grad_get(a, 1) == 1.0);
    ck_assert(tg_clip_grad_norm(p, -1) == -1);
    ck_assert_last_error(TG_ERR_ARG, "clip_grad_norm: max_norm -1 must be >= 0");
    ck_assert(tg_clip_grad_norm(NULL, 1) == -1);
    tg_params_free(p);
}
END_TEST

START_TEST(clip_by_value_clamps_each_element) {
    tg_params *p = tg_params_new();
    tg_tensor *a = tg_params_create(p, "a", TG_F32, 1, (int64_t[]){4});
    ot_set_grad(a, (double[]){-3, 0.5, 2, -1});
    ck_assert_int_eq(tg_clip_grad_value(p, 1.0), TG_OK);
    const double want[] = {-1, 0.5, 1, -1};
    for (int i = 0; i < 4; i++) ck_assert(tg_tensor_grad_get(a, i) == want[i]);
    ck_assert_int_eq(tg_clip_grad_value(p, -0.5), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "clip_grad_value: clip -0.5 must be >= 0");
    tg_params_free(p);
}
END_TEST

/* ---- schedules ------------------------------------------------------------------- */
typedef struct two_groups {
    tg_params *p;
    tg_optim *o;
} two_groups;

/* Group 0 ("w") at lr 0.1, group 1 ("b") at lr 0.2. */
static two_groups make_two(void) {
    two_groups t = {tg_params_new(), NULL};
    tg_params_create(t.p, "w", TG_F64, 0, NULL);
    tg_params_create(t.p, "b", TG_F64, 0, NULL);
    t.o = tg_optim_new(TG_OPTIM_SGD, t.p, 0.1);
    ck_assert_int_eq(tg_optim_add_group(t.o, "b", 0.2, 0), 1);
    return t;
}

static void free_two(two_groups *t) {
    tg_optim_free(t->o);
    tg_params_free(t->p);
}

static void expect_lrs(tg_optim *o, const double *want0, int n, tg_sched *s) {
    for (int t = 0; t < n; t++) {
        ck_assert_int_eq(tg_sched_epoch(s), t);
        ck_assert_msg(tgt_within(tgt_diff(tg_optim_lr(o, 0), want0[t]), 1e-15),
                      "epoch %d: lr %.17g, want %.17g", t, tg_optim_lr(o, 0), want0[t]);
        /* group 1 follows its own base lr */
        ck_assert(tgt_within(tgt_diff(tg_optim_lr(o, 1), 2 * want0[t]), 1e-15));
        ck_assert_int_eq(tg_sched_step(s), TG_OK);
    }
}

START_TEST(step_schedule_decays_every_step_size_epochs) {
    two_groups t = make_two();
    tg_sched *s = tg_sched_new_step(t.o, 2, 0.5);
    const double want[] = {0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125};
    expect_lrs(t.o, want, 7, s);
    tg_sched_free(s);
    free_two(&t);
}
END_TEST

START_TEST(exp_schedule_multiplies_by_gamma_each_epoch) {
    two_groups t = make_two();
    tg_sched *s = tg_sched_new_exp(t.o, 0.9);
    const double want[] = {0.1, 0.09, 0.081, 0.0729, 0.06561};
    expect_lrs(t.o, want, 5, s);
    tg_sched_free(s);
    free_two(&t);
}
END_TEST

START_TEST(cosine_schedule_warms_up_then_anneals_to_min_lr) {
    tg_params *p = tg_params_new();
    tg_params_create(p, "w", TG_F64, 0, NULL);
    tg_optim *o = tg_optim_new(TG_OPTIM_ADAM, p, 0.1);
    tg_sched *s = tg_sched_new_cosine(o, 2, 6, 0.01);
    /* warm-up 0.1*(t+1)/2; then 0.01 + 0.09*(1 + cos(pi*(t-2)/4))/2; then 0.01. */
    const double want[] = {0.05, 0.1, 0.1, 0.01 + 0.045 * (1 + cos(PI / 4)), 0.055,
                           0.01 + 0.045 * (1 + cos(3 * PI / 4)), 0.01, 0.01};
    for (int t = 0; t < 8; t++) {
        ck_assert_msg(tgt_within(tgt_diff(tg_optim_lr(o, 0), want[t]), 1e-15),
                      "epoch %d: lr %.17g, want %.17g", t, tg_optim_lr(o, 0), want[t]);
        tg_sched_step(s);
    }
    tg_sched_free(s);
    tg_optim_free(o);
    tg_params_free(p);
}
END_TEST

START_TEST(plateau_cuts_lr_after_patience_then_cools_down) {
    two_groups t = make_two();
    tg_plateau_opts po = tg_plateau_defaults();
    po.patience = 2, po.factor = 0.5, po.cooldown = 1, po.min_lr = 0.03;
    tg_sched *s = tg_sched_new_plateau(t.o, &po);
    ck_assert_int_eq(tg_sched_step(s), TG_ERR_STATE);
    ck_assert_last_error(TG_ERR_STATE, "plateau schedule needs a metric");
    /* best 1.0, 0.9; three bad (> patience 2) -> halve; one cooldown epoch;
     * then bad 0.95s count again: a third bad -> halve again, floored at 0.03. */
    const double metric[] = {1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95};
    const double lr0[] = {0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.03};
    const double lr1[] = {0.2, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05};
    for (int i = 0; i < 9; i++) {
        ck_assert_int_eq(tg_sched_step_metric(s, metric[i]), TG_OK);
        ck_assert_msg(tgt_within(tgt_diff(tg_optim_lr(t.o, 0), lr0[i]), 1e-15) &&
                          tgt_within(tgt_diff(tg_optim_lr(t.o, 1), lr1[i]), 1e-15),
                      "after metric %d: lrs %g %g, want %g %g", i, tg_optim_lr(t.o, 0),
                      tg_optim_lr(t.o, 1), lr0[i], lr1[i]);
    }
    tg_sched_free(s);
    free_two(&t);
}
END_TEST

START_TEST(plateau_maximising_with_an_absolute_threshold) {
    two_groups t = make_two();
    tg_plateau_opts po = tg_plateau_defaults();
    po.maximize = true, po.patience = 0, po.threshold = 0.1, po.threshold_abs = true;
    tg_sched *s = tg_sched_new_plateau(t.o, &po);
    tg_sched_step_metric(s, 0.5);    /* best 0.5 */
    tg_sched_step_metric(s, 0.55);   /* not > 0.5 + 0.1: bad 1 > 0 -> cut */
    ck_assert_double_eq_tol(tg_optim_lr(t.o, 0), 0.01, 1e-15);
    tg_sched_step_metric(s, 0.7);    /* improves */
    ck_assert_double_eq_tol(tg_optim_lr(t.o, 0), 0.01, 1e-15);
    tg_sched_step_metric(s, NAN);    /* never improves */
    ck_assert_double_eq_tol(tg_optim_lr(t.o, 0), 0.001, 1e-15);
    tg_sched_free(s);
    free_two(&t);
}
END_TEST

START_TEST(schedule_errors_name_the_bad_value) {
    two_groups t = make_two();
    ck_assert_ptr_null(tg_sched_new_step(t.o, 0, 0.5));
    ck_assert_last_error(TG_ERR_ARG, "sched_new_step: step_size 0 must be >= 1");
    ck_assert_ptr_null(tg_sched_new_exp(t.o, -1));
    ck_assert_last_error(TG_ERR_ARG, "gamma -1");
    ck_assert_ptr_null(tg_sched_new_cosine(t.o, 5, 3, 0));
    ck_assert_last_error(TG_ERR_ARG, "warmup 5, total 3");
    tg_plateau_opts po = tg_plateau_defaults();
    po.factor = 1.0;
    ck_assert_ptr_null(tg_sched_new_plateau(t.o, &po));
    ck_assert_last_error(TG_ERR_ARG, "factor in [0,1) (got 1)");
    ck_assert_ptr_null(tg_sched_new_exp(NULL, 0.5));
    ck_assert_last_error(TG_ERR_ARG, "optimizer is NULL");
    tg_sched *s = tg_sched_new_exp(t.o, 0.5);
    tg_params_create(t.p, "c", TG_F64, 0, NULL);
    ck_assert_int_eq(tg_optim_add_group(t.o, "c", 0.3, 0), 2);
    ck_assert_int_eq(tg_sched_step(s), TG_ERR_STATE);
    ck_assert_last_error(TG_ERR_STATE, "the optimizer has 3 groups, the schedule was made for 2");
    tg_sched_free(s);
    free_two(&t);
}
END_TEST

/* ---- early stopping -------------------------------------------------------------- */
/* Feed metrics; before update i the single parameter holds the value 10 + i. */
static void feed(tg_early_stop *e, tg_tensor *w, const double *m, const bool *want_stop, int n) {
    for (int i = 0; i < n; i++) {
        tg_tensor_fill(w, 10 + i);
        bool stop = true;
        ck_assert_int_eq(tg_early_stop_update(e, m[i], &stop), TG_OK);
        ck_assert_msg(stop == want_stop[i], "update %d: stop %d", i, stop);
    }
}

static void early_stop_case(const char *path) {
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_params_create(p, "w", TG_F32, 1, (int64_t[]){3});
    tg_early_stop_opts eo = {.patience = 2, .min_delta = 0.01, .path = path};
    tg_early_stop *e = tg_early_stop_new(p, &eo);
    ck_assert_int_eq(tg_early_stop_restore(e), TG_ERR_STATE);
    /* 0.8 is best (update 1); 0.795 is within min_delta: no improvement. */
    const double m[] = {1.0, 0.8, 0.795, 0.9};
    const bool stop[] = {false, false, false, true};
    feed(e, w, m, stop, 4);
    ck_assert(tg_early_stop_best(e) == 0.8);
    ck_assert_int_eq(tg_early_stop_best_epoch(e), 1);
    ck_assert_int_eq(tg_early_stop_restore(e), TG_OK);
    for (int i = 0; i < 3; i++) ck_assert(tg_tensor_get(w, i) == 11.0);
    tg_early_stop_free(e);
    tg_params_free(p);
}

START_TEST(early_stop_keeps_the_best_parameters_in_memory) { early_stop_case(NULL); }
END_TEST

START_TEST(early_stop_keeps_the_best_parameters_on_disk) {
    char *dir = ot_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/best.safetensors", dir);
    early_stop_case(path);
    ck_assert_int_eq(access(path, R_OK), 0);
    ot_rmdir(dir);
}
END_TEST

START_TEST(early_stop_maximising_and_nan) {
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_params_create(p, "w", TG_F64, 0, NULL);
    tg_early_stop_opts eo = {.maximize = true, .patience = 1};
    tg_early_stop *e = tg_early_stop_new(p, &eo);
    const double m[] = {0.5, 0.7, NAN};
    const bool stop[] = {false, false, true};
    feed(e, w, m, stop, 3);
    ck_assert(tg_early_stop_best(e) == 0.7);
    tg_early_stop_restore(e);
    ck_assert(tg_tensor_item(w) == 11.0);
    tg_early_stop_free(e);
    /* Keras' defaults: minimise, patience 0: the first non-improvement stops. */
    e = tg_early_stop_new(p, NULL);
    const double m2[] = {1.0, 1.0};
    const bool stop2[] = {false, true};
    feed(e, w, m2, stop2, 2);
    tg_early_stop_free(e);
    eo.patience = -1;
    ck_assert_ptr_null(tg_early_stop_new(p, &eo));
    ck_assert_last_error(TG_ERR_ARG, "patience >= 0 (got -1)");
    tg_params_free(p);
}
END_TEST

Suite *suite_sched(void) {
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("sched");
    tcase_add_test(tc, clip_by_norm_scales_every_gradient_and_returns_the_old_norm);
    tcase_add_test(tc, clip_by_norm_leaves_non_finite_gradients_for_the_caller);
    tcase_add_test(tc, clip_by_value_clamps_each_element);
    tcase_add_test(tc, step_schedule_decays_every_step_size_epochs);
    tcase_add_test(tc, exp_schedule_multiplies_by_gamma_each_epoch);
    tcase_add_test(tc, cosine_schedule_warms_up_then_anneals_to_min_lr);
    tcase_add_test(tc, plateau_cuts_lr_after_patience_then_cools_down);
    tcase_add_test(tc, plateau_maximising_with_an_absolute_threshold);
    tcase_add_test(tc, schedule_errors_name_the_bad_value);
    tcase_add_test(tc, early_stop_keeps_the_best_parameters_in_memory);
    tcase_add_test(tc, early_stop_keeps_the_best_parameters_on_disk);
    tcase_add_test(tc, early_stop_maximising_and_nan);
    suite_add_tcase(s, tc);
    return s;
}
