/* tests/check_tape.c - tape semantics: recording, accumulation, zeroing,
 * no-grad, detach, reset and reuse, non-scalar backward, errors, user ops,
 * zero allocations per warm step, thread counts. (Tests with several threads
 * of our own are in check_threads.c, which also runs under ThreadSanitizer.) */
#include "check_suites.h"

static tg_tensor *vec(tg_dtype dt, int64_t n, const double *v, bool grad) {
    tg_tensor *t = tg_tensor_from(dt, 1, &n, v);
    tg_tensor_set_requires_grad(t, grad);
    return t;
}

/* y = 3 * x (elementwise), so dL/dx = 3 * dy */
START_TEST(gradients_accumulate_until_zeroed_like_pytorch) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = vec(TG_F64, 2, (double[]){1, 2}, true);
    tg_tensor *dy = vec(TG_F64, 2, (double[]){1, 10}, false);
    for (int step = 0; step < 2; step++) {
        tg_tensor *y = tg_scale(tp, x, 3.0);
        ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
        tg_tape_reset(tp);
    }
    ck_assert_near(tg_tensor_grad_get(x, 0), 6.0, 0);
    ck_assert_near(tg_tensor_grad_get(x, 1), 60.0, 0);
    tg_tensor_zero_grad(x);
    ck_assert_near(tg_tensor_grad_get(x, 0), 0.0, 0);
    ck_assert_near(tg_tensor_grad_get(x, 1), 0.0, 0);
    tg_tensor_free(x);
    tg_tensor_free(dy);
    tg_tape_free(tp);
}
END_TEST

/* The same tensor as both operands: y = x x (1x1 matrices), dy/dx = 2x = 2 * (2 * 0.5);
 * the tape must add both contributions, and a NULL input gives NULL. */
START_TEST(a_tensor_used_twice_gets_both_contributions) {
    tg_tape *tp = tg_tape_new();
    int64_t s11[] = {1, 1};
    tg_tensor *x = tg_tensor_from(TG_F64, 2, s11, (double[]){0.5});
    tg_tensor_set_requires_grad(x, true);
    tg_tensor *h = tg_scale(tp, x, 2.0);        /* h = 2x = 1     */
    tg_tensor *y = tg_matmul(tp, h, h);         /* y = h^2 = 4x^2 */
    ck_assert_near(tg_tensor_item(y), 1.0, 0);
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);
    ck_assert_near(tg_tensor_grad_get(x, 0), 4.0, 1e-12); /* 8x */
    ck_assert_ptr_null(tg_matmul(tp, h, NULL));
    ck_assert_tape_error(tp, TG_ERR_ARG, "matmul: input 1 is NULL");
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(nothing_is_recorded_without_requires_grad_or_inside_no_grad) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *c = vec(TG_F32, 2, (double[]){1, 2}, false);
    tg_tensor *x = vec(TG_F32, 2, (double[]){1, 2}, true);
    tg_tape_stats st;
    tg_tensor *y = tg_tanh(tp, c);
    ck_assert_ptr_nonnull(y);
    tg_tape_stats_get(tp, &st);
    ck_assert_int_eq(st.nodes, 0);
    ck_assert(!tg_tensor_requires_grad(y));
    tg_no_grad_begin(tp);
    tg_no_grad_begin(tp);
    y = tg_tanh(tp, x);
    tg_no_grad_end(tp);
    ck_assert(!tg_tape_is_recording(tp));
    tg_no_grad_end(tp);
    ck_assert(tg_tape_is_recording(tp));
    tg_tape_stats_get(tp, &st);
    ck_assert_int_eq(st.nodes, 0);
    ck_assert_near(tg_tensor_get(y, 1), tanh(2.0), 1e-6); /* forward still ran */
    ck_assert_int_eq(tg_backward(tp, tg_sqrt(tp, c)), TG_ERR_SHAPE); /* not a scalar */
    tg_tape_clear_error(tp);
    int64_t one = 1;
    tg_tensor *s = tg_tensor_new(TG_F32, 1, &one);
    ck_assert_int_eq(tg_backward(tp, tg_exp(tp, s)), TG_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(tg_tape_error(tp), "was not recorded on this tape"));
    tg_tensor_free(s);
    tg_tensor_free(c);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(detach_stops_the_gradient_but_shares_data) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = vec(TG_F64, 1, (double[]){2}, true);
    tg_tensor *h = tg_scale(tp, x, 5.0);
    tg_tensor *d = tg_detach(tp, h);
    ck_assert_ptr_eq(tg_tensor_data(d), tg_tensor_data(h));
    ck_assert(!tg_tensor_requires_grad(d));
    /* y = h * detach(h) -> dy/dx = 5 * detach(h) = 50 (not 100) */
    tg_tensor *y = tg_scale(tp, h, tg_tensor_item(d));
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);
    ck_assert_near(tg_tensor_grad_get(x, 0), 50.0, 1e-12);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(non_scalar_backward_takes_an_output_gradient) {
    tg_tape *tp = tg_tape_new();
    int64_t s23[] = {2, 3}, s32[] = {3, 2};
    tg_tensor *a = tg_tensor_from(TG_F64, 2, s23, (double[]){1, 2, 3, 4, 5, 6});
    tg_tensor *b = tg_tensor_from(TG_F64, 2, s32, (double[]){1, 0, 0, 1, 1, 1});
    tg_tensor_set_requires_grad(a, true);
    tg_tensor *c = tg_matmul(tp, a, b); /* [2,2] */
    int64_t s22[] = {2, 2};
    tg_tensor *dc = tg_tensor_from(TG_F64, 2, s22, (double[]){1, 0, 0, 1});
    ck_assert_int_eq(tg_backward_ex(tp, c, dc), TG_OK);
    /* da = dc b^T = [[1,0,1],[0,1,1]] worked by hand */
    double want[] = {1, 0, 1, 0, 1, 1};
    for (int i = 0; i < 6; i++) ck_assert_near(tg_tensor_grad_get(a, i), want[i], 0);
    ck_assert_ptr_null(tg_tensor_grad(b)); /* b did not ask for one */
    tg_tensor *wrong = tg_tensor_new(TG_F64, 2, s23);
    ck_assert_int_eq(tg_backward_ex(tp, c, wrong), TG_ERR_SHAPE);
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "backward: output gradient shape [2,3] differs from output [2,2]");
    tg_tensor_free(wrong);
    tg_tensor_free(dc);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

START_TEST(first_error_sticks_and_null_propagates) {
    tg_tape *tp = tg_tape_new();
    int64_t s1[] = {32, 65}, s2[] = {128, 1024};
    tg_tensor *a = tg_tensor_new(TG_F32, 2, s1), *b = tg_tensor_new(TG_F32, 2, s2);
    tg_tensor *c = tg_matmul(tp, a, b);
    ck_assert_ptr_null(c);
    tg_tensor *d = tg_tanh(tp, tg_sigmoid(tp, c)); /* a whole chain on NULL */
    ck_assert_ptr_null(d);
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "matmul: inner dimensions differ: [32,65] x [128,1024]");
    tg_tape_reset(tp);
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    ck_assert_str_eq(tg_tape_error(tp), "");
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

/* ---- a user-defined primitive: y = x^3, through the public op API ---- */
static int cube_forward(tg_node *n) {
    const double *x = tg_tensor_cdata(n->in[0]);
    double *y = tg_tensor_data(n->out);
    for (int64_t i = 0; i < tg_tensor_numel(n->out); i++) y[i] = x[i] * x[i] * x[i];
    return 0;
}
static int cube_vjp(tg_node *n) {
    const double *x = tg_tensor_cdata(n->in[0]), *dy = tg_output_grad(n);
    double *dx = tg_input_grad(n, 0);
    for (int64_t i = 0; dx && i < tg_tensor_numel(n->out); i++) dx[i] += 3 * x[i] * x[i] * dy[i];
    return 0;
}
static int cube_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr, tg_desc *out) {
    if (tg_tensor_dtype(in[0]) != TG_F64)
        return tg_fail(tp, TG_ERR_DTYPE, "cube", "float64 only");
    return tg_infer_same_as_input0(tp, n_in, in, attr, out);
}
static const tg_op cube_op = {.name = "cube", .n_in = 1, .infer = cube_infer,
                              .forward = cube_forward, .vjp = cube_vjp};
static tg_tensor *cube(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_apply(tp, &cube_op, 1, in, NULL);
}

START_TEST(user_defined_op_records_and_passes_gradcheck) {
    tg_tensor *x = vec(TG_F64, 3, (double[]){0.5, -1.5, 2}, false);
    tg_gradcheck_report r;
    ck_assert_int_eq(tg_gradcheck(cube, NULL, 1, &x, NULL, &r), TG_OK);
    ck_assert_msg(r.passed, "max abs err %g", r.max_abs_err);
    tg_tape *tp = tg_tape_new();
    tg_tensor *f = tg_tensor_clone(x, TG_F32);
    ck_assert_ptr_null(cube(tp, &f, NULL));
    ck_assert_tape_error(tp, TG_ERR_DTYPE, "cube: float64 only");
    tg_tensor_free(f);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* One "training step": h = tanh(x W), backward with a fixed output gradient. */
static void mlp_step(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *dy) {
    tg_tensor *h = tg_tanh(tp, tg_matmul(tp, x, w));
    ck_assert_int_eq(tg_backward_ex(tp, h, dy), TG_OK);
    tg_tape_reset(tp);
}

START_TEST(warm_steps_make_no_heap_allocations) {
    tg_tape *tp = tg_tape_new();
    int64_t sx[] = {64, 300}, sw[] = {300, 900}, sy[] = {64, 900};
    tg_tensor *x = tg_tensor_new(TG_F32, 2, sx), *w = tg_tensor_new(TG_F32, 2, sw);
    tg_tensor *dy = tg_tensor_new(TG_F32, 2, sy);
    tg_tensor_fill(x, 0.01);
    tg_tensor_fill(dy, 1);
    tg_tensor_set_requires_grad(w, true);
    for (int i = 0; i < 3; i++) mlp_step(tp, x, w, dy); /* grows the arena past 1 MiB */
    tg_tape_stats st;
    tg_tape_stats_get(tp, &st);
    uint64_t before = tg_heap_allocs(), tape_before = st.heap_allocs;
    for (int i = 0; i < 20; i++) mlp_step(tp, x, w, dy);
    tg_tape_stats_get(tp, &st);
    ck_assert_int_eq(tg_heap_allocs() - before, 0);
    ck_assert_int_eq(st.heap_allocs - tape_before, 0);
    ck_assert_int_ge(st.arena_capacity, 2 * 64 * 900 * sizeof(float));
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(dy);
    tg_tape_free(tp);
}
END_TEST

START_TEST(arena_tensors_from_the_tape_can_be_leaves_too) {
    tg_tape *tp = tg_tape_new();
    int64_t s[] = {1, 2};
    tg_tensor *x = tg_tape_tensor(tp, TG_F64, 2, s);
    tg_tensor_set(x, 0, 1.0);
    tg_tensor_set(x, 1, -1.0);
    tg_tensor_set_requires_grad(x, true);
    tg_matmul_opts tb = {.trans_b = true};
    tg_tensor *y = tg_matmul_ex(tp, x, x, &tb); /* x x^T = sum of squares */
    ck_assert_near(tg_tensor_item(y), 2.0, 0);
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);
    ck_assert_near(tg_tensor_grad_get(x, 0), 2.0, 0);
    ck_assert_near(tg_tensor_grad_get(x, 1), -2.0, 0);
    ck_assert_ptr_null(tg_tape_tensor(tp, TG_F32, 1, (int64_t[]){-3}));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "tape_tensor: bad shape [-3]");
    tg_tape_free(tp);
}
END_TEST

/* A tensor kept from before tg_tape_reset silently computed on reused memory. */
START_TEST(a_tensor_used_after_reset_is_caught) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = vec(TG_F64, 2, TGT_VALS(1, 2), true);
    tg_tensor *h = tg_scale(tp, x, 2.0);
    tg_tensor *c = tg_tape_tensor(tp, TG_F64, 1, TGT_SHAPE(2));
    tg_tensor *d = tg_detach(tp, h);
    ck_assert_near(tg_tensor_get(h, 1), 4.0, 0);
    tg_tape_reset(tp);
    ck_assert_fails(tp, tg_tanh(tp, h), TG_ERR_STATE,
                    "tanh: input 0: tensor is from before the last tg_tape_reset of its tape");
    ck_assert_fails(tp, tg_add(tp, x, c), TG_ERR_STATE, "add: input 1: tensor is from before");
    ck_assert_fails(tp, tg_detach(tp, d), TG_ERR_STATE, "detach: input: tensor is from before");
    tg_tape_clear_error(tp);
    ck_assert_int_eq(tg_backward(tp, h), TG_ERR_STATE);
    ck_assert_tape_error(tp, TG_ERR_STATE, "backward: output: tensor is from before");
    tg_clear_last_error();
    ck_assert(isnan(tg_tensor_get(h, 1)));
    ck_assert_last_error(TG_ERR_STATE, "tensor_get: tensor is from before the last tg_tape_reset");
    ck_assert_ptr_null(tg_tensor_data(c));
    ck_assert_int_eq(tg_tensor_numel(d), -1);
    ck_assert_int_eq(tg_tensor_set(c, 0, 1.0), TG_ERR_STATE);
    /* the tape goes on: a fresh step works */
    tg_tape_clear_error(tp);
    tg_tensor *y = tg_sum(tp, tg_scale(tp, x, 3.0));
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);
    ck_assert_grad_near(x, TGT_VALS(3, 3), 2, 0);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* A step that outgrew the first arena chunk: a tensor kept from that step
 * must still be refused after the reset, not read from freed memory (found
 * by tests/fuzz_api.c under ASan when the reset merged the chunks). */
START_TEST(a_tensor_kept_across_an_overflowing_step_is_caught) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *big = tg_tape_tensor(tp, TG_F64, 1, TGT_SHAPE(300000)); /* 2.4 MB: a second chunk */
    tg_tensor *h = tg_tape_tensor(tp, TG_F64, 1, TGT_SHAPE(2));
    ck_assert_ptr_nonnull(big);
    tg_tape_stats st;
    tg_tape_stats_get(tp, &st);
    ck_assert_int_gt(st.arena_capacity, 2400000);
    tg_tape_reset(tp);
    tg_clear_last_error();
    ck_assert(isnan(tg_tensor_get(h, 0)));
    ck_assert_last_error(TG_ERR_STATE, "tensor_get: tensor is from before the last tg_tape_reset");
    ck_assert_fails(tp, tg_exp(tp, big), TG_ERR_STATE, "exp: input 0: tensor is from before");
    tg_tape_free(tp);
}
END_TEST

/* One step's tape tensors: a small one, one of 2.4 MB (more than the first
 * chunk holds) and a small one after it; their data pointers in *data. */
static void overflowing_step(tg_tape *tp, int64_t big_numel, void *data[3]) {
    tg_tensor *t[3] = {tg_tape_tensor(tp, TG_F64, 1, TGT_SHAPE(1000)),
                       tg_tape_tensor(tp, TG_F64, 1, TGT_SHAPE(big_numel)),
                       tg_tape_tensor(tp, TG_F64, 1, TGT_SHAPE(2))};
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_nonnull(t[i]);
        ck_assert_int_eq(tg_tensor_fill(t[i], i), TG_OK);   /* every byte written */
        data[i] = tg_tensor_data(t[i]);
    }
}

/* The reset after a step that outgrew the first chunk merged the chunks into
 * a new one while the old ones were still held (for the generation check),
 * so the next step had both mapped: W1's peak RSS was 122 MB instead of about
 * 70. A step like the last one now reuses the same chunks and the same
 * addresses (the same pages: no page faults), allocating nothing. */
START_TEST(a_step_like_the_last_reuses_its_chunks) {
    tg_tape *tp = tg_tape_new();
    void *first[3], *again[3];
    overflowing_step(tp, 300000, first);
    tg_tape_stats st1, st2;
    tg_tape_stats_get(tp, &st1);
    ck_assert_int_gt(st1.arena_capacity, 2400000);
    tg_tape_reset(tp);
    overflowing_step(tp, 300000, again);
    tg_tape_stats_get(tp, &st2);
    ck_assert_int_eq(st2.heap_allocs, st1.heap_allocs);
    ck_assert_int_eq(st2.arena_capacity, st1.arena_capacity);
    ck_assert_int_eq(st2.arena_used, st1.arena_used);
    for (int i = 0; i < 3; i++) ck_assert_ptr_eq(again[i], first[i]);
    /* a bigger block than any chunk after the current one: a new chunk at the
     * end, and a step like the first one still fits in the old ones */
    tg_tape_reset(tp);
    overflowing_step(tp, 1000000, again);
    tg_tape_stats_get(tp, &st2);
    ck_assert_int_gt(st2.arena_capacity, st1.arena_capacity + 8000000);
    ck_assert_int_ge(st2.arena_used, 8000000 + 8000 + 16);
    tg_tape_reset(tp);
    overflowing_step(tp, 300000, again);
    for (int i = 0; i < 3; i++) ck_assert_ptr_eq(again[i], first[i]);
    tg_tape_free(tp);
}
END_TEST

/* An op given a NULL tape left tg_last_status() at TG_OK with no message. */
START_TEST(a_null_tape_is_reported_in_the_last_error) {
    tg_tensor *x = vec(TG_F32, 2, TGT_VALS(1, 2), false);
    tg_tensor *outs[2];
    tg_clear_last_error();
    ck_assert_ptr_null(tg_tanh(NULL, x));
    ck_assert_last_error(TG_ERR_ARG, "tanh: tape is NULL");
    tg_clear_last_error();
    ck_assert_ptr_null(tg_matmul(NULL, x, x));
    ck_assert_last_error(TG_ERR_ARG, "matmul: tape is NULL");
    tg_clear_last_error();
    ck_assert_int_eq(tg_split(NULL, x, 0, 2, TGT_SHAPE(1, 1), outs), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "split: tape is NULL");
    ck_assert_ptr_null(outs[0]);
    tg_clear_last_error();
    ck_assert_int_eq(tg_backward(NULL, x), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "backward: tape is NULL");
    tg_clear_last_error();
    ck_assert_ptr_null(tg_detach(NULL, x));
    ck_assert_last_error(TG_ERR_ARG, "detach: tape is NULL");
    tg_clear_last_error();
    ck_assert_ptr_null(tg_tape_tensor(NULL, TG_F32, 1, TGT_SHAPE(2)));
    ck_assert_last_error(TG_ERR_ARG, "tape_tensor: tape is NULL");
    tg_clear_last_error();
    ck_assert_ptr_null(tg_apply(NULL, NULL, 1, &x, NULL));
    ck_assert_last_error(TG_ERR_ARG, "apply: tape is NULL");
    tg_tensor_free(x);
}
END_TEST

/* tg_params_add took tape tensors, which the registry used after reset. */
START_TEST(params_refuse_tape_tensors) {
    tg_tape *tp = tg_tape_new();
    tg_params *p = tg_params_new();
    tg_tensor *t = tg_tape_tensor(tp, TG_F32, 1, TGT_SHAPE(4));
    ck_assert_int_eq(tg_params_add(p, "w", t), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "params_add: 'w' is a tape tensor");
    ck_assert_int_eq(tg_params_count(p), 0);
    tg_tensor *own = tg_tensor_clone(t, TG_F32);
    ck_assert_int_eq(tg_params_add(p, "w", own), TG_OK);
    tg_params_free(p);
    tg_tensor_free(own);
    tg_tape_free(tp);
}
END_TEST

/* The duplicate-name check and tg_params_find scanned every name: creating
 * 100,000 parameters took about 40 s (Xeon), over 3 minutes on this VM's
 * EPYC under load. With the hash index it takes about 0.05 s; this test's
 * tcase gives it 20 s. */
START_TEST(a_hundred_thousand_parameters_are_created_and_found_at_once) {
    enum { N = 100000 };
    tg_params *p = tg_params_new();
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "layer%d.weight", i);
        ck_assert_msg(tg_params_create(p, name, TG_F32, 1, TGT_SHAPE(1)) != NULL, "%s: %s", name,
                      tg_last_error());
    }
    ck_assert_int_eq(tg_params_count(p), N);
    for (int i = 0; i < N; i += 7) {   /* found, and in creation order */
        snprintf(name, sizeof name, "layer%d.weight", i);
        ck_assert_ptr_eq(tg_params_find(p, name), tg_params_at(p, i));
        ck_assert_str_eq(tg_params_name(p, i), name);
    }
    ck_assert_ptr_null(tg_params_find(p, "layer100000.weight"));
    ck_assert_ptr_null(tg_params_find(p, "layer1.weigh"));
    ck_assert_ptr_null(tg_params_find(p, NULL));
    ck_assert_ptr_null(tg_params_create(p, "layer99999.weight", TG_F32, 1, TGT_SHAPE(1)));
    ck_assert_last_error(TG_ERR_ARG, "params_create: duplicate parameter name 'layer99999.weight'");
    tg_tensor *own = tg_tensor_new(TG_F32, 1, TGT_SHAPE(2));
    ck_assert_int_eq(tg_params_add(p, "layer0.weight", own), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "params_add: duplicate parameter name 'layer0.weight'");
    ck_assert_int_eq(tg_params_add(p, "extra", own), TG_OK);
    ck_assert_ptr_eq(tg_params_find(p, "extra"), own);
    ck_assert_int_eq(tg_params_count(p), N + 1);
    ck_assert_int_eq(tg_params_numel(p), N + 2);
    tg_params_free(p);
    tg_tensor_free(own);
}
END_TEST

/* The choice documented in tape.h: a second backward on the same tape
 * replays it; intermediate gradients start fresh, leaves accumulate again
 * (PyTorch with retain_graph=True). y = sum(tanh(2x)) with x = (0.1, -0.7):
 * dy/dx = 2 (1 - tanh(2x)^2). */
START_TEST(a_second_backward_accumulates_like_retain_graph) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = vec(TG_F64, 2, TGT_VALS(0.1, -0.7), true);
    tg_tensor *h = tg_tanh(tp, tg_scale(tp, x, 2.0));
    tg_tensor *y = tg_sum(tp, h);
    double g[2] = {2 * (1 - pow(tanh(0.2), 2)), 2 * (1 - pow(tanh(-1.4), 2))};
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);
    ck_assert_grad_near(x, g, 2, 1e-15);
    ck_assert_grad_near(h, TGT_VALS(1, 1), 2, 0);
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);
    ck_assert_grad_near(x, TGT_VALS(2 * g[0], 2 * g[1]), 2, 1e-15);
    ck_assert_grad_near(h, TGT_VALS(1, 1), 2, 0); /* fresh, not 2 */
    /* and from an earlier output of the same tape, with its own output gradient */
    tg_tensor *dh = vec(TG_F64, 2, TGT_VALS(1, 0), false);
    ck_assert_int_eq(tg_backward_ex(tp, h, dh), TG_OK);
    ck_assert_grad_near(x, TGT_VALS(3 * g[0], 2 * g[1]), 2, 1e-15);
    tg_tensor_free(dh);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* White-box: autograd/runtime.c's hidden helpers (the tests link the static library). */
int tg__max_threads(void);
int tg__parse_threads(const char *s, int cores);

/* tg_tape_set_threads(tp, 100000) + a 256^3 matmul overflowed libgomp's stack;
 * TG_NUM_THREADS=1000 ran for minutes on 2 cores. Both are clamped to 4 per core. */
START_TEST(thread_counts_are_clamped_to_four_per_core) {
    int max = tg__max_threads();
    ck_assert_int_ge(max, 4);
    tg_tape *tp = tg_tape_new();
    tg_tape_set_threads(tp, 100000);
    ck_assert_int_eq(tg_tape_threads(tp), max);
    tg_tape_set_threads(tp, -7); /* < 1: the default */
    ck_assert_int_eq(tg_tape_threads(tp), tg_default_threads());
    tg_tape_set_threads(tp, 2);
    ck_assert_int_eq(tg_tape_threads(tp), 2);
    tg_set_default_threads(1 << 30);
    ck_assert_int_eq(tg_default_threads(), max);
    tg_set_default_threads(0);
    ck_assert_int_le(tg_default_threads(), max);
    /* the 256^3 product on the clamped count: every element is 256 * 0.5 * 2 */
    tg_tape_set_threads(tp, 100000);
    tg_tensor *a = tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(256, 256));
    tg_tensor *b = tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(256, 256));
    tg_tensor_fill(a, 0.5);
    tg_tensor_fill(b, 2.0);
    tg_tensor *c = tg_matmul(tp, a, b);
    ck_assert_msg(c != NULL, "%s", tg_tape_error(tp));
    ck_assert_near(tg_tensor_get(c, 0), 256, 0);
    ck_assert_near(tg_tensor_get(c, 256 * 256 - 1), 256, 0);
    /* TG_NUM_THREADS, read once at start: a number is clamped, anything else means all cores */
    ck_assert_int_eq(tg__parse_threads("1000", 2), 8);
    ck_assert_int_eq(tg__parse_threads("99999999999999999999", 2), 8);
    ck_assert_int_eq(tg__parse_threads("3", 2), 3);
    ck_assert_int_eq(tg__parse_threads("0", 2), 2);
    ck_assert_int_eq(tg__parse_threads("-4", 2), 2);
    ck_assert_int_eq(tg__parse_threads("2x", 2), 2);
    ck_assert_int_eq(tg__parse_threads("", 2), 2);
    ck_assert_int_eq(tg__parse_threads(NULL, 2), 2);
    tg_tape_free(tp);
}
END_TEST

Suite *suite_tape(void) {
    Suite *s = suite_create("tape");
    TCase *tc = tcase_create("tape");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, gradients_accumulate_until_zeroed_like_pytorch);
    tcase_add_test(tc, a_tensor_used_twice_gets_both_contributions);
    tcase_add_test(tc, nothing_is_recorded_without_requires_grad_or_inside_no_grad);
    tcase_add_test(tc, detach_stops_the_gradient_but_shares_data);
    tcase_add_test(tc, non_scalar_backward_takes_an_output_gradient);
    tcase_add_test(tc, first_error_sticks_and_null_propagates);
    tcase_add_test(tc, user_defined_op_records_and_passes_gradcheck);
    tcase_add_test(tc, warm_steps_make_no_heap_allocations);
    tcase_add_test(tc, arena_tensors_from_the_tape_can_be_leaves_too);
    tcase_add_test(tc, a_tensor_used_after_reset_is_caught);
    tcase_add_test(tc, a_tensor_kept_across_an_overflowing_step_is_caught);
    tcase_add_test(tc, a_step_like_the_last_reuses_its_chunks);
    tcase_add_test(tc, a_null_tape_is_reported_in_the_last_error);
    tcase_add_test(tc, params_refuse_tape_tensors);
    tcase_add_test(tc, a_second_backward_accumulates_like_retain_graph);
    tcase_add_test(tc, thread_counts_are_clamped_to_four_per_core);
    suite_add_tcase(s, tc);
    TCase *big = tcase_create("params");
    tcase_set_timeout(big, 20);   /* the linear scan took minutes: a timeout fails it */
    tcase_add_test(big, a_hundred_thousand_parameters_are_created_and_found_at_once);
    suite_add_tcase(s, big);
    return s;
}
