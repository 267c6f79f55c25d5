/* tests/check_anomaly.c - anomaly mode and the per-op profiler
 * (tapegrad/inspect.h), each with fusion off and on.
 *
 * Lines are compared with __LINE__ captured beside the call the error must
 * name, so the tests check the call-site macros (tapegrad/call_site.h) too. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tapegrad.h"
#include "tg_test.h"

static tg_tensor *filled(tg_dtype dt, int64_t r, int64_t c, double v, bool grad) {
    tg_tensor *t = tg_tensor_new(dt, 2, TGT_SHAPE(r, c));
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < r * c; i++) tg_tensor_set(t, i, v + 1e-3 * (double)(i % 7));
    tg_tensor_set_requires_grad(t, grad);
    return t;
}

static void assert_names(const tg_tape *tp, const char *op_dir, int line) {
    char at[64];
    snprintf(at, sizeof at, "check_anomaly.c:%d", line);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_NUMERIC);
    ck_assert_msg(strncmp(tg_tape_error(tp), op_dir, strlen(op_dir)) == 0 &&
                      strstr(tg_tape_error(tp), at),
                  "expected '%s ...%s', got '%s'", op_dir, at, tg_tape_error(tp));
}

/* A cell whose hidden state underflows to 0 and is then logged:
 *   z = x W, h = relu(z - 1000) = 0, y = log(h) = -inf (forward), loss = sum(y h).
 * [8, 64] outputs: 512 elements, so relu, log and mul fuse when fusion is on. */
static void log_of_zero(bool fuse, bool anomaly, int *line) {
    tg_tape *tp = tg_tape_new();
    tg_tape_set_fusion(tp, fuse);
    tg_tape_set_anomaly(tp, anomaly);
    ck_assert(tg_tape_anomaly(tp) == anomaly);
    tg_tensor *x = filled(TG_F32, 8, 16, 0.1, false), *w = filled(TG_F32, 16, 64, 0.2, true);
    tg_tensor *z = tg_matmul(tp, x, w);
    tg_tensor *h = tg_relu(tp, tg_shift(tp, z, -1000.0));
    *line = __LINE__ + 1;
    tg_tensor *y = tg_log(tp, h);
    tg_tensor *loss = tg_sum(tp, tg_mul(tp, y, h));
    if (anomaly) {
        ck_assert_ptr_null(loss);
        assert_names(tp, "log: anomaly in forward: -inf at element 0 of the output [8,64]", *line);
    } else {
        /* the control: without anomaly mode nothing stops the tape */
        ck_assert_msg(loss != NULL, "%s", tg_tape_error(tp));
        ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    }
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tape_free(tp);
}

START_TEST(forward_log_of_zero_names_op_and_line) {
    int line;
    log_of_zero(_i, true, &line);
    log_of_zero(_i, false, &line);
}
END_TEST

/* A naive log-sum-exp whose gradient overflows in backward (float32):
 *   e = exp(x) = 1.8e-35 for x = -80 (finite), l = log(e) = -80,
 *   loss = sum(1e5 l): every forward value is finite, but log's VJP gives
 *   1e5 / 1.8e-35 = 5e39 > FLT_MAX to e's gradient: +-inf. [4, 100]: fused. */
static void exp_log_overflow(bool fuse, bool anomaly) {
    tg_tape *tp = tg_tape_new();
    tg_tape_set_fusion(tp, fuse);
    tg_tape_set_anomaly(tp, anomaly);
    tg_tensor *x = filled(TG_F32, 4, 100, -80.0, true);
    tg_tensor *e = tg_exp(tp, x);
    int line = __LINE__ + 1;
    tg_tensor *l = tg_log(tp, e);
    tg_tensor *loss = tg_sum(tp, tg_scale(tp, l, 1e5));
    ck_assert_msg(loss != NULL, "%s", tg_tape_error(tp));
    ck_assert(tgt_within(tgt_diff(tg_tensor_item(loss), -80 * 1e5 * 400), 1e5 * 400));
    tg_status st = tg_backward(tp, loss);
    if (anomaly) {
        ck_assert_int_eq(st, TG_ERR_NUMERIC);
        assert_names(tp, "log: anomaly in backward: inf at element 0 of the gradient of input 0 "
                         "[4,100]", line);
    } else {
        ck_assert_int_eq(st, TG_OK);   /* the control: the Inf reaches x's gradient */
        ck_assert(!tgt_within(tgt_diff(tg_tensor_grad_get(x, 0), 0), 1e30));
    }
    tg_tensor_free(x);
    tg_tape_free(tp);
}

START_TEST(backward_overflow_names_op_and_line) {
    exp_log_overflow(_i, true);
    exp_log_overflow(_i, false);
}
END_TEST

/* Anomaly mode switched on by the environment, as an unchanged program would. */
START_TEST(environment_turns_anomaly_on) {
    setenv("TG_ANOMALY", "1", 1);
    tg_tape *tp = tg_tape_new();
    unsetenv("TG_ANOMALY");
    ck_assert(tg_tape_anomaly(tp));
    tg_tape_set_anomaly(tp, false);
    ck_assert(!tg_tape_anomaly(tp));
    tg_tape_free(tp);
}
END_TEST

/* An op inside a layer names the user's layer call, not a line of nn/. */
START_TEST(layer_ops_name_the_layer_call) {
    tg_tape *tp = tg_tape_new();
    tg_tape_set_fusion(tp, _i);
    tg_tape_set_anomaly(tp, true);
    tg_params *p = tg_params_new();
    tg_linear lin;
    tg_rng rng = tg_rng_seeded(1);
    ck_assert_int_eq(tg_linear_init(&lin, p, "lin", 16, 8, TG_F32, &rng, NULL), TG_OK);
    tg_tensor *x = filled(TG_F32, 4, 16, 0.1, false);
    tg_tensor_set(x, 5, 1.0 / 0.0);   /* the input's Inf reaches the matmul's output */
    int line = __LINE__ + 1;
    tg_tensor *y = tg_linear_forward(tp, &lin, x);
    ck_assert_ptr_null(y);
    assert_names(tp, "matmul: anomaly in forward", line);
    tg_tensor_free(x);
    tg_params_free(p);
    tg_tape_free(tp);
}
END_TEST

/* ---- the profiler ------------------------------------------------------------------------ */
/* Three layers h = tanh(h W_k), loss = sum(h): GEMMs of [64,256] x [256,256]. */
static tg_tensor *mlp(tg_tape *tp, tg_tensor *x, tg_tensor *const *w, int *mm_line) {
    tg_tensor *h = x;
    for (int k = 0; k < 3; k++) {
        *mm_line = __LINE__ + 1;
        tg_tensor *z = tg_matmul(tp, h, w[k]);
        h = tg_tanh(tp, z);
    }
    return tg_sum(tp, h);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

START_TEST(profile_totals_table_and_trace) {
    enum { STEPS = 20 };
    tg_tape *tp = tg_tape_new();
    tg_tape_set_fusion(tp, _i);
    tg_tensor *x = filled(TG_F32, 64, 256, 0.01, false), *w[3];
    for (int k = 0; k < 3; k++) w[k] = filled(TG_F32, 256, 256, -0.002, true);
    ck_assert_int_eq(tg_tape_profile_start(tp), TG_OK);
    int mm_line = 0;
    double t0 = now();
    for (int s = 0; s < STEPS; s++) {
        tg_tape_reset(tp);
        ck_assert_int_eq(tg_backward(tp, mlp(tp, x, w, &mm_line)), TG_OK);
    }
    double wall = now() - t0;
    tg_tape_profile_totals tot;
    ck_assert_int_eq(tg_tape_profile_totals_get(tp, &tot), TG_OK);
    /* every call is charged its exclusive time: the entries add up to the
     * outermost calls (rounding only) */
    ck_assert_msg(tgt_within(tgt_diff(tot.total_s, tot.span_s), 1e-6 + 1e-3 * tot.span_s),
                  "total %g s, outermost calls %g s", tot.total_s, tot.span_s);
    ck_assert(tot.forward_s > 0 && tot.backward_s > 0);
    /* and those cover the loop's wall time but for the test's own code
     * between calls (loose: a preempted gap is not counted) */
    ck_assert_msg(tot.span_s <= wall && tot.span_s >= 0.7 * wall, "profile %g s, wall %g s",
                  tot.span_s, wall);
    ck_assert_int_eq(tot.events + tot.dropped, tot.calls);

    char table[] = "/tmp/tg_profile_table_XXXXXX";
    int fd = mkstemp(table);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_int_eq(tg_tape_profile_report(tp, f), TG_OK);
    fclose(f);
    char *text = slurp(table), site[64];
    snprintf(site, sizeof site, "check_anomaly.c:%d", mm_line);
    ck_assert_msg(strstr(text, "matmul") && strstr(text, site) && strstr(text, "activations"),
                  "%s", text);
    if (_i) ck_assert_msg(strstr(text, "fused[tanh]"), "%s", text);
    else ck_assert_msg(strstr(text, "\ntanh "), "%s", text);
    unlink(table);
    free(text);

    char trace[] = "/tmp/tg_profile_trace_XXXXXX";
    close(mkstemp(trace));
    ck_assert_int_eq(tg_tape_profile_write(tp, trace), TG_OK);
    text = slurp(trace);
    cJSON *root = cJSON_Parse(text);
    ck_assert_ptr_nonnull(root);
    cJSON *events = cJSON_GetObjectItem(root, "traceEvents");
    ck_assert_int_eq(cJSON_GetArraySize(events), (int)tot.events);
    int matmuls = 0;
    for (cJSON *e = events->child; e; e = e->next) {
        ck_assert_str_eq(cJSON_GetObjectItem(e, "ph")->valuestring, "X");
        ck_assert(cJSON_GetObjectItem(e, "dur")->valuedouble >= 0);
        matmuls += !strcmp(cJSON_GetObjectItem(e, "name")->valuestring, "matmul");
    }
    ck_assert_int_eq(matmuls, 2 * 3 * STEPS);   /* forward and VJP of 3 GEMMs a step */
    cJSON_Delete(root);
    free(text);
    unlink(trace);

    tg_tape_profile_stop(tp);
    ck_assert_int_ne(tg_tape_profile_totals_get(tp, &tot), TG_OK);
    tg_tensor_free(x);
    for (int k = 0; k < 3; k++) tg_tensor_free(w[k]);
    tg_tape_free(tp);
}
END_TEST

/* TG_PROFILE=FILE: the trace is written when the tape is freed. */
START_TEST(environment_profile_writes_the_file) {
    char trace[] = "/tmp/tg_profile_env_XXXXXX";
    close(mkstemp(trace));
    setenv("TG_PROFILE", trace, 1);
    tg_tape *tp = tg_tape_new();
    unsetenv("TG_PROFILE");
    tg_tensor *x = filled(TG_F32, 4, 4, 0.5, true);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, tg_exp(tp, x))), TG_OK);
    freopen("/dev/null", "w", stderr);   /* the table it prints */
    tg_tape_free(tp);
    char *text = slurp(trace);
    cJSON *root = cJSON_Parse(text);
    ck_assert_ptr_nonnull(root);
    ck_assert_int_ge(cJSON_GetArraySize(cJSON_GetObjectItem(root, "traceEvents")), 4);
    cJSON_Delete(root);
    free(text);
    unlink(trace);
    tg_tensor_free(x);
}
END_TEST

START_TEST(profile_errors_name_the_call) {
    tg_tape *tp = tg_tape_new();
    tg_tape_profile_totals tot;
    ck_assert_int_eq(tg_tape_profile_totals_get(tp, &tot), TG_ERR_STATE);
    ck_assert(strstr(tg_last_error(), "tape_profile_totals_get: the tape is not profiling"));
    ck_assert_int_eq(tg_tape_profile_start(NULL), TG_ERR_ARG);
    ck_assert_int_eq(tg_tape_profile_start(tp), TG_OK);
    ck_assert_int_eq(tg_tape_profile_write(tp, "/nonexistent-dir/x.json"), TG_ERR_IO);
    ck_assert_int_eq(tg_tape_profile_report(tp, NULL), TG_ERR_ARG);
    tg_tape_free(tp);
}
END_TEST

static Suite *anomaly_suite(void) {
    Suite *s = suite_create("anomaly");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    /* _i: 0 fusion off, 1 fusion on */
    tcase_add_loop_test(tc, forward_log_of_zero_names_op_and_line, 0, 2);
    tcase_add_loop_test(tc, backward_overflow_names_op_and_line, 0, 2);
    tcase_add_test(tc, environment_turns_anomaly_on);
    tcase_add_loop_test(tc, layer_ops_name_the_layer_call, 0, 2);
    tcase_add_loop_test(tc, profile_totals_table_and_trace, 0, 2);
    tcase_add_test(tc, environment_profile_writes_the_file);
    tcase_add_test(tc, profile_errors_name_the_call);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(anomaly_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
