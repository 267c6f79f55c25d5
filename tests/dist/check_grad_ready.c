/* tests/dist/check_grad_ready.c - the tape's leaf-gradient-ready callback
 * (tape.h: tg_tape_on_grad_ready), which data-parallel training uses to start
 * allreduces during backward. Needs no MPI: it runs in every build.
 *
 * What is checked: each leaf is reported once, after its last consumer in
 * the replay, holding its final gradient (a snapshot taken in the callback
 * equals the gradient after backward, bit for bit); the order is the replay's;
 * what is not a leaf that requires grad is not reported; errors stop the
 * reports; warm steps still allocate nothing. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_test.h"

enum { MAX_SEEN = 16 };

/* What the callback saw: the leaves in order, and a copy of each gradient. */
typedef struct seen {
    int n;
    tg_tensor *leaf[MAX_SEEN];
    bool had_grad[MAX_SEEN];
    double grad[MAX_SEEN][16];
} seen;

static void remember(tg_tensor *leaf, void *ctx) {
    seen *s = ctx;
    ck_assert_int_lt(s->n, MAX_SEEN);
    int k = s->n++;
    s->leaf[k] = leaf;
    s->had_grad[k] = tg_tensor_grad(leaf) != NULL;
    ck_assert_int_le(tg_tensor_numel(leaf), 16);
    for (int64_t i = 0; i < tg_tensor_numel(leaf); i++) s->grad[k][i] = tg_tensor_grad_get(leaf, i);
}

static tg_tensor *leaf(int64_t rows, int64_t cols, double first, bool grad) {
    tg_tensor *t = tg_tensor_new(TG_F64, 2, (int64_t[]){rows, cols});
    for (int64_t i = 0; i < rows * cols; i++) tg_tensor_set(t, i, first + 0.1 * (double)i);
    tg_tensor_set_requires_grad(t, grad);
    return t;
}

/* The snapshot taken when leaf k was reported equals its gradient now, exactly. */
static void assert_final(const seen *s, int k) {
    ck_assert_msg(s->had_grad[k], "leaf %d was reported without a gradient", k);
    for (int64_t i = 0; i < tg_tensor_numel(s->leaf[k]); i++)
        ck_assert_msg(tgt_diff(s->grad[k][i], tg_tensor_grad_get(s->leaf[k], i)) == 0,
                      "leaf %d element %lld: %.17g when reported, %.17g after backward", k,
                      (long long)i, s->grad[k][i], tg_tensor_grad_get(s->leaf[k], i));
}

/* Nodes: 0 a = x W, 1 a + b, 2 tanh, 3 c V, 4 d * s, 5 e W, 6 sum. W is used
 * at nodes 0 and 5, so the replay (6 down to 0) must not report it at 5,
 * where only part of its gradient is in. Expected order: s, V, b, W. */
START_TEST(each_leaf_is_reported_once_with_its_final_gradient_in_replay_order) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = leaf(2, 3, 0.3, false), *W = leaf(3, 3, -0.4, true);
    tg_tensor *b = leaf(1, 3, 0.1, true), *V = leaf(3, 3, 0.2, true), *s = leaf(2, 3, 0.5, true);
    seen got = {0};
    tg_tape_on_grad_ready(tp, remember, &got);
    tg_tensor *c = tg_tanh(tp, tg_add(tp, tg_matmul(tp, x, W), b));
    tg_tensor *loss = tg_sum(tp, tg_matmul(tp, tg_mul(tp, tg_matmul(tp, c, V), s), W));
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    ck_assert_int_eq(got.n, 4);
    tg_tensor *order[] = {s, V, b, W};
    for (int k = 0; k < 4; k++) {
        ck_assert_msg(got.leaf[k] == order[k], "report %d is not the expected leaf", k);
        assert_final(&got, k);
    }
    tg_tensor *all[] = {x, W, b, V, s};
    for (int i = 0; i < 5; i++) tg_tensor_free(all[i]);
    tg_tape_free(tp);
}
END_TEST

/* A leaf used twice by one node (s * s) is reported once; the inputs of one
 * node come in input order (A before B in A B). */
START_TEST(a_nodes_leaves_come_in_input_order_and_repeats_once) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *A = leaf(2, 2, 0.1, true), *B = leaf(2, 2, 0.7, true), *s = leaf(2, 2, -0.2, true);
    seen got = {0};
    tg_tape_on_grad_ready(tp, remember, &got);
    tg_tensor *ab = tg_matmul(tp, A, B);   /* node 0 (apart: C leaves argument order open) */
    tg_tensor *ss = tg_mul(tp, s, s);      /* node 1 */
    tg_tensor *loss = tg_sum(tp, tg_add(tp, ab, ss));
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    ck_assert_int_eq(got.n, 3);
    ck_assert(got.leaf[0] == s);   /* node 1 is replayed before node 0 */
    ck_assert(got.leaf[1] == A);
    ck_assert(got.leaf[2] == B);
    for (int k = 0; k < 3; k++) assert_final(&got, k);
    tg_tensor_free(A), tg_tensor_free(B), tg_tensor_free(s);
    tg_tape_free(tp);
}
END_TEST

/* Data (no requires_grad) and a leaf used only after the output are not
 * reported; a leaf in a branch the output does not depend on is reported,
 * with no gradient (none ever reached it). */
START_TEST(only_leaves_that_require_grad_and_are_replayed_are_reported) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = leaf(2, 2, 0.3, false), *W = leaf(2, 2, 0.1, true);
    tg_tensor *dead = leaf(2, 2, 0.5, true), *late = leaf(2, 2, 0.9, true);
    seen got = {0};
    tg_tape_on_grad_ready(tp, remember, &got);
    tg_tensor *unused = tg_tanh(tp, dead);                 /* node 0: not on the path to y */
    tg_tensor *y = tg_matmul(tp, x, W);                    /* node 1 */
    tg_tensor *after = tg_mul(tp, y, late);                /* node 2: after y */
    ck_assert_ptr_nonnull(unused);
    ck_assert_ptr_nonnull(after);
    tg_tensor *dy = leaf(2, 2, 1.0, false);
    ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
    ck_assert_int_eq(got.n, 2);
    ck_assert(got.leaf[0] == W);
    assert_final(&got, 0);
    ck_assert(got.leaf[1] == dead);
    ck_assert_msg(!got.had_grad[1], "a leaf no gradient reached was reported with one");
    tg_tensor *all[] = {x, W, dead, late, dy};
    for (int i = 0; i < 5; i++) tg_tensor_free(all[i]);
    tg_tape_free(tp);
}
END_TEST

/* The callback outlives tg_tape_reset; NULL removes it. */
START_TEST(the_callback_stays_across_resets_until_removed) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *W = leaf(2, 2, 0.1, true);
    seen got = {0};
    tg_tape_on_grad_ready(tp, remember, &got);
    for (int step = 0; step < 2; step++) {
        ck_assert_int_eq(tg_backward(tp, tg_sum(tp, tg_tanh(tp, W))), TG_OK);
        tg_tape_reset(tp);
    }
    ck_assert_int_eq(got.n, 2);
    tg_tape_on_grad_ready(tp, NULL, &got);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, tg_tanh(tp, W))), TG_OK);
    ck_assert_int_eq(got.n, 2);
    tg_tape_on_grad_ready(NULL, remember, &got);   /* a NULL tape is ignored */
    tg_tensor_free(W);
    tg_tape_free(tp);
}
END_TEST

/* A VJP that fails: y = W2 * fail(W0 * x). The replay reports W2 (node 2),
 * then stops at the failing node 1: W0 is never reported. */
static int fail_forward(tg_node *n) {
    memcpy(tg_tensor_data(n->out), tg_tensor_cdata(n->in[0]),
           (size_t)tg_tensor_numel(n->out) * sizeof(double));
    return 0;
}
static int fail_vjp(tg_node *n) { return tg_fail(n->tape, TG_ERR_STATE, "fails", "on purpose"); }
static const tg_op fail_op = {.name = "fails", .n_in = 1, .infer = tg_infer_same_as_input0,
                              .forward = fail_forward, .vjp = fail_vjp};

START_TEST(an_error_in_backward_stops_the_reports) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = leaf(2, 2, 0.3, false), *W0 = leaf(2, 2, 0.1, true), *W2 = leaf(2, 2, 0.2, true);
    seen got = {0};
    tg_tape_on_grad_ready(tp, remember, &got);
    tg_tensor *a = tg_mul(tp, W0, x);
    tg_tensor *f = tg_apply(tp, &fail_op, 1, &a, NULL);
    tg_tensor *loss = tg_sum(tp, tg_mul(tp, W2, f));
    ck_assert_int_eq(tg_backward(tp, loss), TG_ERR_STATE);
    ck_assert_int_eq(got.n, 1);
    ck_assert(got.leaf[0] == W2);
    tg_tensor_free(x), tg_tensor_free(W0), tg_tensor_free(W2);
    tg_tape_free(tp);
}
END_TEST

static void count(tg_tensor *leaf, void *ctx) {
    (void)leaf;
    ++*(int *)ctx;
}

/* The list of leaves lives in the arena: warm steps allocate nothing. */
START_TEST(warm_steps_with_a_callback_make_no_heap_allocations) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = leaf(8, 16, 0.01, false), *W = leaf(16, 16, 0.0, true);
    tg_tensor *V = leaf(16, 4, 0.0, true);
    int reports = 0;
    tg_tape_on_grad_ready(tp, count, &reports);
    uint64_t before = 0;
    for (int step = 0; step < 12; step++) {
        if (step == 3) before = tg_heap_allocs();
        tg_tensor *h = x;
        for (int t = 0; t < 20; t++) h = tg_tanh(tp, tg_matmul(tp, h, W));   /* W used 20 times */
        ck_assert_int_eq(tg_backward(tp, tg_sum(tp, tg_matmul(tp, h, V))), TG_OK);
        tg_tape_reset(tp);
    }
    ck_assert_int_eq(tg_heap_allocs() - before, 0);
    ck_assert_int_eq(reports, 12 * 2);
    tg_tensor_free(x), tg_tensor_free(W), tg_tensor_free(V);
    tg_tape_free(tp);
}
END_TEST

int main(void) {
    Suite *s = suite_create("grad_ready");
    TCase *tc = tcase_create("grad_ready");
    tcase_add_test(tc, each_leaf_is_reported_once_with_its_final_gradient_in_replay_order);
    tcase_add_test(tc, a_nodes_leaves_come_in_input_order_and_repeats_once);
    tcase_add_test(tc, only_leaves_that_require_grad_and_are_replayed_are_reported);
    tcase_add_test(tc, the_callback_stays_across_resets_until_removed);
    tcase_add_test(tc, an_error_in_backward_stops_the_reports);
    tcase_add_test(tc, warm_steps_with_a_callback_make_no_heap_allocations);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
