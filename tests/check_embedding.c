/* tests/check_embedding.c - row lookup by hand, gradient scatter-add with
 * repeated ids, and every error path (ids out of range are errors, not crashes). */
#include "check_suites.h"

/* weight [3,2]: row v = (10v, 10v+1) */
static const double W3x2[6] = {0, 1, 10, 11, 20, 21};

START_TEST(embedding_looks_up_rows) {
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        tg_tape *tp = tg_tape_new();
        tg_tensor *w = tt_lit(tp, dt, 2, TGT_SHAPE(3, 2), W3x2);
        tg_tensor *idx = tt_lit(tp, TG_I32, 2, TGT_SHAPE(2, 2), TGT_VALS(2, 0, 2, 1));
        tg_tensor *y = tg_embedding(tp, w, idx);
        ck_assert_ptr_nonnull(y);
        ck_assert_int_eq(tg_tensor_ndim(y), 3);
        ck_assert_int_eq(tg_tensor_dim(y, 0), 2);
        ck_assert_int_eq(tg_tensor_dim(y, 1), 2);
        ck_assert_int_eq(tg_tensor_dim(y, 2), 2);
        ck_assert_tensor_near(y, TGT_VALS(20, 21, 0, 1, 20, 21, 10, 11), 8, 0);
        tg_tape_free(tp);
    }
}
END_TEST

START_TEST(embedding_scalar_index_gives_a_row) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *y = tg_embedding(tp, tt_lit(tp, TG_F64, 2, TGT_SHAPE(3, 2), W3x2),
                                tt_lit(tp, TG_I32, 0, NULL, TGT_VALS(1)));
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tensor_ndim(y), 1);
    ck_assert_tensor_near(y, TGT_VALS(10, 11), 2, 0);
    tg_tape_free(tp);
}
END_TEST

START_TEST(embedding_gradient_scatter_adds_repeated_ids) {
    /* ids (2,0,2,2), dy rows (1,2) (3,4) (5,6) (7,8):
     * dW row 0 = (3,4); row 1 untouched = 0; row 2 = (1+5+7, 2+6+8) = (13,16). */
    tg_tape *tp = tg_tape_new();
    tg_tensor *w = tt_lit(tp, TG_F64, 2, TGT_SHAPE(3, 2), W3x2);
    tg_tensor_set_requires_grad(w, true);
    tg_tensor *y = tg_embedding(tp, w, tt_lit(tp, TG_I32, 1, TGT_SHAPE(4), TGT_VALS(2, 0, 2, 2)));
    tg_tensor *dy = tt_lit(tp, TG_F64, 2, TGT_SHAPE(4, 2), TGT_VALS(1, 2, 3, 4, 5, 6, 7, 8));
    ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
    double want[6] = {3, 4, 0, 0, 13, 16};
    for (int i = 0; i < 6; i++) ck_assert_near(tg_tensor_grad_get(w, i), want[i], 0);
    tg_tape_free(tp);
}
END_TEST

START_TEST(embedding_index_out_of_range_is_an_error) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *w = tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(10, 4));
    tg_tensor_set_requires_grad(w, true);
    ck_assert_fails(tp, tg_embedding(tp, w, tt_lit(tp, TG_I32, 1, TGT_SHAPE(5), TGT_VALS(1, 2, 3, 12, 0))),
                    TG_ERR_INDEX, "embedding: index 12 out of range [0,10) at position 3");
    ck_assert_str_eq(tg_tape_error(tp), "embedding: index 12 out of range [0,10) at position 3");
    ck_assert_fails(tp, tg_embedding(tp, w, tt_lit(tp, TG_I32, 2, TGT_SHAPE(1, 2), TGT_VALS(-1, 0))),
                    TG_ERR_INDEX, "embedding: index -1 out of range [0,10) at position 0");
    ck_assert_fails(tp, tg_embedding(tp, w, tt_lit(tp, TG_I32, 1, TGT_SHAPE(1), TGT_VALS(10))),
                    TG_ERR_INDEX, "index 10 out of range [0,10)");
    ck_assert_fails(tp, tg_embedding(tp, w, tt_lit(tp, TG_I32, 1, TGT_SHAPE(1), TGT_VALS(-2147483648.0))),
                    TG_ERR_INDEX, "index -2147483648 out of range");
    /* a failed forward records nothing: the tape has no node */
    tg_tape_stats s;
    tg_tape_stats_get(tp, &s);
    ck_assert_int_eq(s.nodes, 0);
    tg_tape_free(tp);
}
END_TEST

START_TEST(embedding_shape_and_dtype_errors) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *w = tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(10, 4));
    tg_tensor *idx = tg_tape_tensor(tp, TG_I32, 1, TGT_SHAPE(3));
    ck_assert_fails(tp, tg_embedding(tp, w, tg_tape_tensor(tp, TG_F32, 1, TGT_SHAPE(3))), TG_ERR_DTYPE,
                    "embedding: indices must be int32, got float32 [3]");
    ck_assert_fails(tp, tg_embedding(tp, tg_tape_tensor(tp, TG_F32, 1, TGT_SHAPE(10)), idx),
                    TG_ERR_SHAPE, "embedding: weight must be [V,C], got [10]");
    ck_assert_fails(tp, tg_embedding(tp, tg_tape_tensor(tp, TG_I32, 2, TGT_SHAPE(10, 4)), idx),
                    TG_ERR_DTYPE, "embedding: needs a float tensor, got int32 [10,4]");
    ck_assert_fails(tp, tg_embedding(tp, w, tg_tape_tensor(tp, TG_I32, 6, TGT_SHAPE(1, 1, 1, 1, 1, 2))),
                    TG_ERR_SHAPE, "embedding: indices have too many dimensions");
    ck_assert_fails(tp, tg_embedding(tp, w, NULL), TG_ERR_ARG, "embedding: input 1 is NULL");
    ck_assert_fails(tp, tg_embedding(tp, NULL, idx), TG_ERR_ARG, "embedding: input 0 is NULL");
    /* an empty vocabulary rejects every id, accepts no ids */
    tg_tensor *empty = tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(0, 4));
    ck_assert_fails(tp, tg_embedding(tp, empty, idx), TG_ERR_INDEX, "out of range [0,0)");
    tg_tape_clear_error(tp);
    ck_assert_ptr_nonnull(tg_embedding(tp, empty, tg_tape_tensor(tp, TG_I32, 1, TGT_SHAPE(0))));
    tg_tape_free(tp);
}
END_TEST

START_TEST(embedding_ids_changed_before_backward_fail_cleanly) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *w = tt_lit(tp, TG_F64, 2, TGT_SHAPE(3, 2), W3x2);
    tg_tensor_set_requires_grad(w, true);
    tg_tensor *idx = tt_lit(tp, TG_I32, 1, TGT_SHAPE(2), TGT_VALS(1, 2));
    tg_tensor *y = tg_embedding(tp, w, idx);
    ck_assert_ptr_nonnull(y);
    tg_tensor_set(idx, 1, 99); /* the caller scribbles on its ids */
    tg_tensor *dy = tt_lit(tp, TG_F64, 2, TGT_SHAPE(2, 2), TGT_VALS(1, 1, 1, 1));
    ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_ERR_STATE);
    ck_assert_tape_error(tp, TG_ERR_STATE, "embedding: index 99 at position 1 changed");
    tg_tape_free(tp);
}
END_TEST

Suite *suite_embedding(void) {
    Suite *s = suite_create("embedding");
    TCase *tc = tcase_create("embedding");
    tcase_add_test(tc, embedding_looks_up_rows);
    tcase_add_test(tc, embedding_scalar_index_gives_a_row);
    tcase_add_test(tc, embedding_gradient_scatter_adds_repeated_ids);
    tcase_add_test(tc, embedding_index_out_of_range_is_an_error);
    tcase_add_test(tc, embedding_shape_and_dtype_errors);
    tcase_add_test(tc, embedding_ids_changed_before_backward_fail_cleanly);
    suite_add_tcase(s, tc);
    return s;
}
