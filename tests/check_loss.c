/* tests/check_loss.c - mse, bce_with_logits, cross_entropy: values and
 * gradients against PyTorch 1.13 (snippets next to the numbers), stability at
 * logits +-100, ignore_index, and every error path. */
#include "check_suites.h"

static tg_tensor *leaf(tg_tape *tp, tg_dtype dt, int ndim, const int64_t *shape, const double *v) {
    tg_tensor *t = tt_lit(tp, dt, ndim, shape, v);
    tg_tensor_set_requires_grad(t, true);
    return t;
}

static double tol_of(tg_dtype dt) { return dt == TG_F32 ? 2e-6 : 1e-12; }

/* Common to the PyTorch snippets below:
 *   import torch, torch.nn.functional as F; d = torch.float64 */

START_TEST(mse_matches_pytorch) {
    /* p = torch.tensor([[0.5,-1.25,2.0],[0.0,3.5,-0.75]], dtype=d, requires_grad=True)
     * t = torch.tensor([[1.0,-1.0,0.5],[0.25,2.0,-2.0]], dtype=d, requires_grad=True)
     * l = F.mse_loss(p, t); l.backward(); l.item(), p.grad, t.grad */
    static const double dp[6] = {-0.16666666666666666, -0.08333333333333333, 0.5,
                                 -0.08333333333333333, 0.5, 0.41666666666666663};
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        tg_tape *tp = tg_tape_new();
        tg_tensor *p = leaf(tp, dt, 2, TGT_SHAPE(2, 3), TGT_VALS(0.5, -1.25, 2.0, 0.0, 3.5, -0.75));
        tg_tensor *t = leaf(tp, dt, 2, TGT_SHAPE(2, 3), TGT_VALS(1.0, -1.0, 0.5, 0.25, 2.0, -2.0));
        tg_tensor *l = tg_mse(tp, p, t);
        ck_assert_ptr_nonnull(l);
        ck_assert_int_eq(tg_tensor_ndim(l), 0);
        ck_assert_near(tg_tensor_item(l), 1.0729166666666667, tol_of(dt));
        ck_assert_int_eq(tg_backward(tp, l), TG_OK);
        ck_assert_grad_near(p, dp, 6, tol_of(dt));
        for (int i = 0; i < 6; i++) /* the target's gradient is the negative */
            ck_assert_near(tg_tensor_grad_get(t, i), -dp[i], tol_of(dt));
        tg_tape_free(tp);
    }
}
END_TEST

START_TEST(bce_with_logits_matches_pytorch) {
    /* x = torch.tensor([[1.5,-0.3,4.0],[-2.2,0.0,0.7]], dtype=d, requires_grad=True)
     * y = torch.tensor([[1.0,0.0,0.25],[0.9,0.5,0.0]], dtype=d, requires_grad=True)
     * l = F.binary_cross_entropy_with_logits(x, y); l.backward(); l.item(), x.grad, y.grad */
    static const double dx[6] = {-0.030404253967726058, 0.07092624719805683, 0.12200229833965141,
                                 -0.13337491848005248,  0.0,                 0.11136462869469436};
    static const double dy[6] = {-0.25, 0.049999999999999996, -0.6666666666666666,
                                 0.3666666666666667, 0.0, -0.11666666666666665};
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        tg_tape *tp = tg_tape_new();
        tg_tensor *x = leaf(tp, dt, 2, TGT_SHAPE(2, 3), TGT_VALS(1.5, -0.3, 4.0, -2.2, 0.0, 0.7));
        tg_tensor *y = leaf(tp, dt, 2, TGT_SHAPE(2, 3), TGT_VALS(1.0, 0.0, 0.25, 0.9, 0.5, 0.0));
        tg_tensor *l = tg_bce_with_logits(tp, x, y);
        ck_assert_ptr_nonnull(l);
        ck_assert_int_eq(tg_tensor_ndim(l), 0);
        ck_assert_near(tg_tensor_item(l), 1.275889166597198, tol_of(dt));
        ck_assert_int_eq(tg_backward(tp, l), TG_OK);
        ck_assert_grad_near(x, dx, 6, tol_of(dt));
        ck_assert_grad_near(y, dy, 6, tol_of(dt));
        tg_tape_free(tp);
    }
}
END_TEST

START_TEST(bce_with_logits_is_stable_at_100) {
    /* x = torch.tensor([100.,-100.,100.,-100.], dtype=d, requires_grad=True)
     * y = torch.tensor([0.,1.,1.,0.], dtype=d)
     * l = F.binary_cross_entropy_with_logits(x, y); l.backward()
     * -> 50.0, grad [0.25, -0.25, 0.0, 9.300189940052089e-45] */
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        tg_tape *tp = tg_tape_new();
        tg_tensor *x = leaf(tp, dt, 1, TGT_SHAPE(4), TGT_VALS(100, -100, 100, -100));
        tg_tensor *l = tg_bce_with_logits(tp, x, tt_lit(tp, dt, 1, TGT_SHAPE(4), TGT_VALS(0, 1, 1, 0)));
        ck_assert_ptr_nonnull(l);
        ck_assert(isfinite(tg_tensor_item(l)));
        ck_assert_near(tg_tensor_item(l), 50.0, tol_of(dt) * 10);
        ck_assert_int_eq(tg_backward(tp, l), TG_OK);
        ck_assert_grad_near(x, TGT_VALS(0.25, -0.25, 0.0, 9.300189940052089e-45), 4, tol_of(dt));
        for (int i = 0; i < 4; i++) ck_assert(isfinite(tg_tensor_grad_get(x, i)));
        tg_tape_free(tp);
    }
}
END_TEST

START_TEST(cross_entropy_matches_pytorch_with_ignored_row) {
    /* x = torch.tensor([[2.0,-1.0,0.5,0.0],[0.1,0.2,0.3,0.4],[-3.0,5.0,1.0,-1.0]], dtype=d,
     *                  requires_grad=True)
     * l = F.cross_entropy(x, torch.tensor([0,-100,1])); l.backward(); l.item(), x.grad */
    static const double dx[12] = {-0.14495003855691285, 0.017676896704374435,
                                  0.07922235475748987,  0.048050787095048605,
                                  0.0, 0.0, 0.0, 0.0,
                                  0.00016426051333686122, -0.01034631081290921,
                                  0.00896832015168724,    0.0012137301478852137};
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        tg_tape *tp = tg_tape_new();
        tg_tensor *x = leaf(tp, dt, 2, TGT_SHAPE(3, 4),
                            TGT_VALS(2.0, -1.0, 0.5, 0.0, 0.1, 0.2, 0.3, 0.4, -3.0, 5.0, 1.0, -1.0));
        tg_tensor *l = tg_cross_entropy(tp, x, tt_lit(tp, TG_I32, 1, TGT_SHAPE(3), TGT_VALS(0, -100, 1)));
        ck_assert_ptr_nonnull(l);
        ck_assert_int_eq(tg_tensor_ndim(l), 0);
        ck_assert_near(tg_tensor_item(l), 0.18162964816933946, tol_of(dt));
        ck_assert_int_eq(tg_backward(tp, l), TG_OK);
        ck_assert_grad_near(x, dx, 12, tol_of(dt));
        tg_tape_free(tp);
    }
}
END_TEST

START_TEST(cross_entropy_batch_time_layout_and_ignore_index) {
    /* logits [B=2,T=2,C=3], class axis last; PyTorch wants it second:
     * x = torch.tensor([[[1.0,2.0,3.0],[0.5,-0.5,0.0]],[[-1.0,0.0,1.0],[2.0,2.0,-2.0]]],
     *                  dtype=d, requires_grad=True)
     * l = F.cross_entropy(x.permute(0,2,1), torch.tensor([[2,0],[1,1]]), ignore_index=0)
     * l.backward(); l.item(), x.grad.flatten() */
    static const double dx[12] = {0.030010191056793478, 0.08157615701826587, -0.1115863480750594,
                                  0.0, 0.0, 0.0,
                                  0.030010191056793478, -0.25175717631506744, 0.2217469852582739,
                                  0.16515421419261436, -0.16817911914071895, 0.003024904948104582};
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = leaf(tp, TG_F64, 3, TGT_SHAPE(2, 2, 3),
                        TGT_VALS(1.0, 2.0, 3.0, 0.5, -0.5, 0.0, -1.0, 0.0, 1.0, 2.0, 2.0, -2.0));
    tg_tensor *l = tg_cross_entropy_ex(tp, x, tt_lit(tp, TG_I32, 2, TGT_SHAPE(2, 2), TGT_VALS(2, 0, 1, 1)), 0);
    ck_assert_ptr_nonnull(l);
    ck_assert_near(tg_tensor_item(l), 0.8391584167759522, 1e-12);
    ck_assert_int_eq(tg_backward(tp, l), TG_OK);
    ck_assert_grad_near(x, dx, 12, 1e-12);
    tg_tape_free(tp);
}
END_TEST

START_TEST(cross_entropy_all_ignored_is_zero_with_zero_gradient) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = leaf(tp, TG_F32, 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, 3, 4, 5, 6));
    tg_tensor *l = tg_cross_entropy(tp, x, tt_lit(tp, TG_I32, 1, TGT_SHAPE(2), TGT_VALS(-100, -100)));
    ck_assert_ptr_nonnull(l);
    ck_assert_near(tg_tensor_item(l), 0.0, 0);
    ck_assert_int_eq(tg_backward(tp, l), TG_OK);
    for (int i = 0; i < 6; i++) ck_assert_near(tg_tensor_grad_get(x, i), 0.0, 0);
    tg_tape_free(tp);
}
END_TEST

START_TEST(cross_entropy_is_stable_for_large_logits) {
    /* logits (1000, 0): lse = 1000 + log(1 + e^-1000) = 1000, target 1 -> loss 1000 */
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_lit(tp, TG_F32, 2, TGT_SHAPE(1, 2), TGT_VALS(1000, 0));
    tg_tensor *l = tg_cross_entropy(tp, x, tt_lit(tp, TG_I32, 1, TGT_SHAPE(1), TGT_VALS(1)));
    ck_assert_ptr_nonnull(l);
    ck_assert_near(tg_tensor_item(l), 1000.0, 1e-3);
    tg_tape_free(tp);
}
END_TEST

START_TEST(cross_entropy_target_errors) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tape_tensor(tp, TG_F64, 2, TGT_SHAPE(3, 4));
    tg_tensor_set_requires_grad(x, true);
    ck_assert_fails(tp, tg_cross_entropy(tp, x, tt_lit(tp, TG_I32, 1, TGT_SHAPE(3), TGT_VALS(0, 4, 1))),
                    TG_ERR_INDEX,
                    "cross_entropy: target 4 out of range [0,4) at position 1 (ignore_index -100)");
    ck_assert_fails(tp, tg_cross_entropy(tp, x, tt_lit(tp, TG_I32, 1, TGT_SHAPE(3), TGT_VALS(0, 1, -1))),
                    TG_ERR_INDEX, "cross_entropy: target -1 out of range [0,4) at position 2");
    /* -100 is only special as the default: with ignore_index 3 it is an error */
    tg_tensor *t3 = tt_lit(tp, TG_I32, 1, TGT_SHAPE(3), TGT_VALS(3, -100, 1));
    ck_assert_fails(tp, tg_cross_entropy_ex(tp, x, t3, 3), TG_ERR_INDEX,
                    "target -100 out of range [0,4) at position 1 (ignore_index 3)");
    tg_tape_stats s;
    tg_tape_stats_get(tp, &s);
    ck_assert_int_eq(s.nodes, 0);
    tg_tape_free(tp);
}
END_TEST

START_TEST(cross_entropy_shape_and_dtype_errors) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tape_tensor(tp, TG_F64, 2, TGT_SHAPE(3, 4));
    ck_assert_fails(tp, tg_cross_entropy(tp, x, tg_tape_tensor(tp, TG_I32, 1, TGT_SHAPE(4))),
                    TG_ERR_SHAPE,
                    "cross_entropy: target shape must be logits shape without the class axis: "
                    "logits [3,4] target [4]");
    ck_assert_fails(tp, tg_cross_entropy(tp, x, tg_tape_tensor(tp, TG_I32, 2, TGT_SHAPE(3, 4))),
                    TG_ERR_SHAPE, "logits [3,4] target [3,4]");
    ck_assert_fails(tp, tg_cross_entropy(tp, x, tg_tape_tensor(tp, TG_F64, 1, TGT_SHAPE(3))),
                    TG_ERR_DTYPE, "cross_entropy: target must be int32, got float64 [3]");
    ck_assert_fails(tp, tg_cross_entropy(tp, tg_tape_tensor(tp, TG_I32, 2, TGT_SHAPE(3, 4)),
                                         tg_tape_tensor(tp, TG_I32, 1, TGT_SHAPE(3))),
                    TG_ERR_DTYPE, "cross_entropy: needs a float tensor, got int32 [3,4]");
    ck_assert_fails(tp, tg_cross_entropy(tp, tg_tape_tensor(tp, TG_F64, 0, NULL),
                                         tg_tape_tensor(tp, TG_I32, 0, NULL)),
                    TG_ERR_SHAPE, "logits [] target []");
    ck_assert_fails(tp, tg_cross_entropy(tp, tg_tape_tensor(tp, TG_F64, 2, TGT_SHAPE(3, 0)),
                                         tg_tape_tensor(tp, TG_I32, 1, TGT_SHAPE(3))),
                    TG_ERR_SHAPE, "cross_entropy: no classes: logits [3,0]");
    ck_assert_fails(tp, tg_cross_entropy(tp, x, NULL), TG_ERR_ARG,
                    "cross_entropy: input 1 is NULL");
    tg_tape_free(tp);
}
END_TEST

START_TEST(mse_and_bce_errors) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(2, 3));
    tg_tensor *b = tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(3, 2));
    ck_assert_fails(tp, tg_mse(tp, a, b), TG_ERR_SHAPE,
                    "mse: shapes differ: [2,3] vs target [3,2]");
    ck_assert_fails(tp, tg_bce_with_logits(tp, a, b), TG_ERR_SHAPE,
                    "bce_with_logits: shapes differ: [2,3] vs target [3,2]");
    ck_assert_fails(tp, tg_mse(tp, a, tg_tape_tensor(tp, TG_F32, 1, TGT_SHAPE(6))), TG_ERR_SHAPE,
                    "mse: shapes differ: [2,3] vs target [6]");
    tg_tensor *a64 = tg_tape_tensor(tp, TG_F64, 2, TGT_SHAPE(2, 3));
    ck_assert_fails(tp, tg_mse(tp, a, a64), TG_ERR_DTYPE,
                    "mse: dtypes differ: float32 [2,3] vs target float64 [2,3]");
    ck_assert_fails(tp, tg_bce_with_logits(tp, a64, a), TG_ERR_DTYPE,
                    "bce_with_logits: dtypes differ: float64 [2,3] vs target float32 [2,3]");
    tg_tensor *ai = tg_tape_tensor(tp, TG_I32, 2, TGT_SHAPE(2, 3));
    ck_assert_fails(tp, tg_bce_with_logits(tp, a, ai), TG_ERR_DTYPE,
                    "bce_with_logits: needs a float tensor, got int32 [2,3]");
    ck_assert_fails(tp, tg_mse(tp, ai, a), TG_ERR_DTYPE, "mse: needs a float tensor, got int32");
    tg_tensor *e = tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(0, 3));
    ck_assert_fails(tp, tg_mse(tp, e, e), TG_ERR_SHAPE, "mse: mean of an empty input: [0,3]");
    ck_assert_fails(tp, tg_bce_with_logits(tp, e, e), TG_ERR_SHAPE,
                    "bce_with_logits: mean of an empty input: [0,3]");
    ck_assert_fails(tp, tg_mse(tp, NULL, a), TG_ERR_ARG, "mse: input 0 is NULL");
    ck_assert_fails(tp, tg_bce_with_logits(tp, a, NULL), TG_ERR_ARG,
                    "bce_with_logits: input 1 is NULL");
    tg_tape_free(tp);
}
END_TEST

Suite *suite_loss(void) {
    Suite *s = suite_create("loss");
    TCase *tc = tcase_create("mse_bce");
    tcase_add_test(tc, mse_matches_pytorch);
    tcase_add_test(tc, bce_with_logits_matches_pytorch);
    tcase_add_test(tc, bce_with_logits_is_stable_at_100);
    tcase_add_test(tc, mse_and_bce_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("cross_entropy");
    tcase_add_test(tc, cross_entropy_matches_pytorch_with_ignored_row);
    tcase_add_test(tc, cross_entropy_batch_time_layout_and_ignore_index);
    tcase_add_test(tc, cross_entropy_all_ignored_is_zero_with_zero_gradient);
    tcase_add_test(tc, cross_entropy_is_stable_for_large_logits);
    tcase_add_test(tc, cross_entropy_target_errors);
    tcase_add_test(tc, cross_entropy_shape_and_dtype_errors);
    suite_add_tcase(s, tc);
    return s;
}
