/* tests/check_select.c - where, rsqrt, affine: worked values and gradients in
 * both dtypes, NaN and Inf in discarded positions, every error path. */
#include "check_suites.h"
#include "tg_test.h"

static tg_dtype dtype_of(int i) { return i == 0 ? TG_F64 : TG_F32; }

/* cond [2,3] int32, a [2,3], b [3] (a row):
 *   cond 1 0 1      a 1 2 3     b 10 20 30     y  1 20  3
 *        0 0 1        4 5 6                      10 20  6
 * with dy = 1..6: da = (1 0 3 / 0 0 6), db = column sums of dy where cond is 0 = (4, 2+5, 0). */
START_TEST(where_selects_and_routes_gradients) {
    tg_dtype dt = dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *cond = tg_tensor_from(TG_I32, 2, TGT_SHAPE(2, 3), TGT_VALS(1, 0, 1, 0, 0, 1));
    tg_tensor *a = tg_tensor_from(dt, 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, 3, 4, 5, 6));
    tg_tensor *b = tg_tensor_from(dt, 1, TGT_SHAPE(3), TGT_VALS(10, 20, 30));
    tg_tensor_set_requires_grad(a, true);
    tg_tensor_set_requires_grad(b, true);
    tg_tensor *y = tg_where(tp, cond, a, b);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_tensor_dtype(y), dt);
    ck_assert(tgt_max_diff_vals(y, TGT_VALS(1, 20, 3, 10, 20, 6), 6) == 0);
    tg_tensor *dy = tg_tensor_from(dt, 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, 3, 4, 5, 6));
    ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
    const double da[6] = {1, 0, 3, 0, 0, 6}, db[3] = {4, 7, 0};
    for (int i = 0; i < 6; i++) ck_assert(tg_tensor_grad_get(a, i) == da[i]);
    for (int i = 0; i < 3; i++) ck_assert(tg_tensor_grad_get(b, i) == db[i]);
    ck_assert_ptr_null(tg_tensor_grad(cond));
    tg_tensor_free(dy);
    tg_tensor_free(cond);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

/* A float cond: non-zero is true, NaN too; a [3,1] column against b [1,2]. */
START_TEST(where_reads_float_conditions_and_broadcasts_all_three) {
    tg_dtype dt = dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *cond = tg_tensor_from(dt, 2, TGT_SHAPE(3, 2), TGT_VALS(0, -2, NAN, 0, 0.5, 0));
    tg_tensor *a = tg_tensor_from(dt, 2, TGT_SHAPE(3, 1), TGT_VALS(1, 2, 3));
    tg_tensor *b = tg_tensor_from(dt, 2, TGT_SHAPE(1, 2), TGT_VALS(-1, -2));
    tg_tensor *y = tg_where(tp, cond, a, b);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_tensor_ndim(y), 2);
    ck_assert(tgt_max_diff_vals(y, TGT_VALS(-1, 1, 2, -2, 3, -2), 6) == 0);
    tg_tensor_free(cond);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

/* NaN and Inf in the discarded side change neither the values nor any gradient,
 * where the blend keep*a + (1-keep)*b turns them into NaN. */
START_TEST(where_never_reads_what_it_discards) {
    tg_dtype dt = dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *keep = tg_tensor_from(dt, 2, TGT_SHAPE(2, 1), TGT_VALS(1, 0));
    tg_tensor *a = tg_tensor_from(dt, 2, TGT_SHAPE(2, 2), TGT_VALS(1, 2, NAN, INFINITY));
    tg_tensor *b = tg_tensor_from(dt, 2, TGT_SHAPE(2, 2), TGT_VALS(-INFINITY, NAN, 5, 6));
    tg_tensor_set_requires_grad(a, true);
    tg_tensor_set_requires_grad(b, true);
    tg_tensor *y = tg_where(tp, keep, a, b);
    ck_assert(tgt_max_diff_vals(y, TGT_VALS(1, 2, 5, 6), 4) == 0);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, tg_mul(tp, y, y))), TG_OK);
    ck_assert(tgt_max_diff_vals(y, TGT_VALS(1, 2, 5, 6), 4) == 0);
    const double da[4] = {2, 4, 0, 0}, db[4] = {0, 0, 10, 12};
    for (int i = 0; i < 4; i++) {
        ck_assert(tg_tensor_grad_get(a, i) == da[i]);
        ck_assert(tg_tensor_grad_get(b, i) == db[i]);
    }
    /* the blend, for contrast: row 1 becomes NaN */
    tg_tape_reset(tp);
    tg_tensor *drop = tg_affine(tp, keep, -1, 1);
    tg_tensor *blend = tg_add(tp, tg_mul(tp, keep, a), tg_mul(tp, drop, b));
    ck_assert(isnan(tg_tensor_get(blend, 2)));
    tg_tensor_free(keep);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

START_TEST(where_errors_name_the_op_and_the_shapes) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *c = tg_tape_tensor(tp, TG_I32, 2, TGT_SHAPE(2, 3));
    tg_tensor *a = tg_tape_tensor(tp, TG_F64, 2, TGT_SHAPE(2, 3));
    tg_tensor *b4 = tg_tape_tensor(tp, TG_F64, 1, TGT_SHAPE(4));
    tg_tensor *b32 = tg_tape_tensor(tp, TG_F32, 1, TGT_SHAPE(3));
    tg_tensor *ai = tg_tape_tensor(tp, TG_I32, 2, TGT_SHAPE(2, 3));
    ck_assert_ptr_null(tg_where(tp, c, a, b4));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "where: shapes do not broadcast: cond [2,3], a [2,3], b [4]");
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_where(tp, c, a, b32));
    ck_assert_tape_error(tp, TG_ERR_DTYPE, "where: dtypes differ: float64 [2,3] x float32 [3]");
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_where(tp, c, ai, ai));
    ck_assert_tape_error(tp, TG_ERR_DTYPE, "where: needs a float tensor, got int32 [2,3]");
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_where(tp, tg_tape_tensor(tp, TG_F64, 1, TGT_SHAPE(2)), a, a));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "where: shapes do not broadcast: cond [2], a [2,3]");
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_where(tp, NULL, a, a));
    ck_assert_tape_error(tp, TG_ERR_ARG, "where: input 0 is NULL");
    tg_tape_free(tp);
}
END_TEST

/* rsqrt(4) = 0.5, d/dx = -x^-1.5 / 2 = -1/16; rsqrt(0.25) = 2, d/dx = -4.
 * affine: 3 x - 1 at (1, -2) = (2, -7), d/dx = 3 each. */
START_TEST(rsqrt_and_affine_values_and_gradients) {
    tg_dtype dt = dtype_of(_i);
    double tol = dt == TG_F64 ? 1e-15 : 1e-6;
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_from(dt, 1, TGT_SHAPE(2), TGT_VALS(4, 0.25));
    tg_tensor_set_requires_grad(x, true);
    tg_tensor *y = tg_rsqrt(tp, x);
    ck_assert(tgt_within(tgt_max_diff_vals(y, TGT_VALS(0.5, 2), 2), tol));
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, y)), TG_OK);
    ck_assert(tgt_within(tgt_diff(tg_tensor_grad_get(x, 0), -1.0 / 16), tol));
    ck_assert(tgt_within(tgt_diff(tg_tensor_grad_get(x, 1), -4), tol));
    tg_tape_reset(tp);
    tg_tensor *z = tg_tensor_from(dt, 1, TGT_SHAPE(2), TGT_VALS(1, -2));
    tg_tensor_set_requires_grad(z, true);
    y = tg_affine(tp, z, 3, -1);
    ck_assert(tgt_max_diff_vals(y, TGT_VALS(2, -7), 2) == 0);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, y)), TG_OK);
    ck_assert(tg_tensor_grad_get(z, 0) == 3 && tg_tensor_grad_get(z, 1) == 3);
    tg_tape_reset(tp);
    ck_assert(tgt_max_diff_vals(tg_affine(tp, z, -1, 1), TGT_VALS(0, 3), 2) == 0);   /* 1 - x */
    tg_tensor_free(x);
    tg_tensor_free(z);
    tg_tape_free(tp);
}
END_TEST

START_TEST(rsqrt_and_affine_refuse_bad_input) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *i = tg_tape_tensor(tp, TG_I32, 1, TGT_SHAPE(3));
    tg_tensor *x = tg_tape_tensor(tp, TG_F64, 1, TGT_SHAPE(3));
    ck_assert_ptr_null(tg_rsqrt(tp, i));
    ck_assert_tape_error(tp, TG_ERR_DTYPE, "rsqrt: needs a float tensor, got int32 [3]");
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_affine(tp, x, NAN, 1));
    ck_assert_tape_error(tp, TG_ERR_ARG, "affine: a and b must be finite: a nan, b 1");
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_affine(tp, x, 1, INFINITY));
    ck_assert_tape_error(tp, TG_ERR_ARG, "affine: a and b must be finite");
    tg_tape_free(tp);
}
END_TEST

Suite *suite_select(void) {
    Suite *s = suite_create("select");
    TCase *tc = tcase_create("select");
    tcase_add_loop_test(tc, where_selects_and_routes_gradients, 0, 2);
    tcase_add_loop_test(tc, where_reads_float_conditions_and_broadcasts_all_three, 0, 2);
    tcase_add_loop_test(tc, where_never_reads_what_it_discards, 0, 2);
    tcase_add_test(tc, where_errors_name_the_op_and_the_shapes);
    tcase_add_loop_test(tc, rsqrt_and_affine_values_and_gradients, 0, 2);
    tcase_add_test(tc, rsqrt_and_affine_refuse_bad_input);
    suite_add_tcase(s, tc);
    return s;
}
