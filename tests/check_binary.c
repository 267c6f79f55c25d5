/* tests/check_binary.c - add, sub, mul, div: broadcast shapes, worked values,
 * hand-worked gradients, and every error path. Value tests run in both dtypes
 * (loop index 0: float64, 1: float32). The two larger broadcast cases compare
 * with a naive index-by-index loop written out in the test. */
#include "check_suites.h"

static double tol_of(tg_dtype dt) { return dt == TG_F64 ? 1e-12 : 1e-5; }

/* y = op(a, b) for two literal tensors, checked against want; frees everything. */
typedef tg_tensor *(*binary_fn)(tg_tape *, tg_tensor *, tg_tensor *);
static void check_values(binary_fn f, tg_dtype dt, int na, const int64_t *sa, const double *va,
                         int nb, const int64_t *sb, const double *vb, int ny, const int64_t *sy,
                         const double *want) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tt_make(dt, na, sa, va), *b = tt_make(dt, nb, sb, vb);
    tg_tensor *y = f(tp, a, b);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tp));
    ck_assert_shape(y, ny, sy);
    ck_assert_int_eq(tg_tensor_dtype(y), dt);
    int64_t n = 1;
    for (int i = 0; i < ny; i++) n *= sy[i];
    ck_assert_tensor_near(y, want, n, tol_of(dt));
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}

/* ---- forward values ------------------------------------------------------------------------ */
START_TEST(add_same_shape) {
    check_values(tg_add, tt_dtype_of(_i), 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, 3, 4, 5, 6), 2, TGT_SHAPE(2, 3),
                 TGT_VALS(10, 20, 30, 40, 50, 60), 2, TGT_SHAPE(2, 3), TGT_VALS(11, 22, 33, 44, 55, 66));
}
END_TEST

START_TEST(sub_bias_row_both_spellings) {
    tg_dtype dt = tt_dtype_of(_i);
    check_values(tg_sub, dt, 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, 3, 4, 5, 6), 1, TGT_SHAPE(3), TGT_VALS(1, 2, 3), 2, TGT_SHAPE(2, 3),
                 TGT_VALS(0, 0, 0, 3, 3, 3));
    check_values(tg_sub, dt, 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, 3, 4, 5, 6), 2, TGT_SHAPE(1, 3), TGT_VALS(1, 2, 3), 2,
                 TGT_SHAPE(2, 3), TGT_VALS(0, 0, 0, 3, 3, 3));
}
END_TEST

START_TEST(sub_row_on_the_left_keeps_operand_order) {
    check_values(tg_sub, tt_dtype_of(_i), 1, TGT_SHAPE(3), TGT_VALS(1, 2, 3), 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, 3, 4, 5, 6), 2,
                 TGT_SHAPE(2, 3), TGT_VALS(0, 0, 0, -3, -3, -3));
}
END_TEST

START_TEST(mul_column_by_row_is_outer_product) {
    check_values(tg_mul, tt_dtype_of(_i), 2, TGT_SHAPE(3, 1), TGT_VALS(1, 2, 3), 2, TGT_SHAPE(1, 4), TGT_VALS(1, 10, 100, 1000),
                 2, TGT_SHAPE(3, 4), TGT_VALS(1, 10, 100, 1000, 2, 20, 200, 2000, 3, 30, 300, 3000));
}
END_TEST

START_TEST(mul_leading_dim_broadcast) {
    check_values(tg_mul, tt_dtype_of(_i), 3, TGT_SHAPE(2, 2, 2), TGT_VALS(1, 2, 3, 4, 5, 6, 7, 8), 2, TGT_SHAPE(2, 2),
                 TGT_VALS(1, 2, 3, 4), 3, TGT_SHAPE(2, 2, 2), TGT_VALS(1, 4, 9, 16, 5, 12, 21, 32));
}
END_TEST

START_TEST(div_by_and_of_a_single_element) {
    tg_dtype dt = tt_dtype_of(_i);
    check_values(tg_div, dt, 2, TGT_SHAPE(2, 2), TGT_VALS(1, 2, 3, 4), 1, TGT_SHAPE(1), TGT_VALS(2), 2, TGT_SHAPE(2, 2),
                 TGT_VALS(0.5, 1, 1.5, 2));
    check_values(tg_div, dt, 1, TGT_SHAPE(1), TGT_VALS(1), 1, TGT_SHAPE(4), TGT_VALS(1, 2, 4, 8), 1, TGT_SHAPE(4),
                 TGT_VALS(1, 0.5, 0.25, 0.125));
}
END_TEST

START_TEST(zero_dim_operands) {
    tg_dtype dt = tt_dtype_of(_i);
    check_values(tg_mul, dt, 0, NULL, TGT_VALS(3), 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, 3, 4, 5, 6), 2, TGT_SHAPE(2, 3),
                 TGT_VALS(3, 6, 9, 12, 15, 18));
    check_values(tg_sub, dt, 0, NULL, TGT_VALS(5), 0, NULL, TGT_VALS(7), 0, NULL, TGT_VALS(-2));
}
END_TEST

START_TEST(size_one_dims_broadcast_both_ways) {
    /* [1,3] + [2,1,1] -> [2,1,3] */
    check_values(tg_add, tt_dtype_of(_i), 2, TGT_SHAPE(1, 3), TGT_VALS(1, 2, 3), 3, TGT_SHAPE(2, 1, 1), TGT_VALS(10, 20), 3,
                 TGT_SHAPE(2, 1, 3), TGT_VALS(11, 12, 13, 21, 22, 23));
}
END_TEST

START_TEST(empty_output_is_fine) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tg_tensor_new(TG_F64, 2, TGT_SHAPE(0, 3)), *b = tt_make(TG_F64, 1, TGT_SHAPE(3), TGT_VALS(1, 2, 3));
    tg_tensor_set_requires_grad(b, true);
    tg_tensor *y = tg_add(tp, a, b);
    ck_assert_shape(y, 2, TGT_SHAPE(0, 3));
    ck_assert_int_eq(tg_tensor_numel(y), 0);
    tg_tensor *dy = tg_tensor_new(TG_F64, 2, TGT_SHAPE(0, 3));
    ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
    ck_assert_grad_near(b, TGT_VALS(0, 0, 0), 3, 0);
    tg_tensor_free(dy);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

/* [2,1,3,1] (op) [4,1,5] -> [2,4,3,5], against out[n,p,q,r] = a[n,q] (op) b[p,r];
 * then the gradients for dy = 1 against naive sums over the broadcast axes. */
START_TEST(generic_path_matches_naive_loops) {
    tg_dtype dt = tt_dtype_of(_i);
    double av[6], bv[20];
    for (int i = 0; i < 6; i++) av[i] = i + 1;
    for (int i = 0; i < 20; i++) bv[i] = 0.5 * (i + 1);
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tt_make(dt, 4, TGT_SHAPE(2, 1, 3, 1), av), *b = tt_make(dt, 3, TGT_SHAPE(4, 1, 5), bv);
    tg_tensor_set_requires_grad(a, true);
    tg_tensor_set_requires_grad(b, true);
    tg_tensor *y = tg_mul(tp, a, b), *z = tg_sub(tp, b, a);
    ck_assert_shape(y, 4, TGT_SHAPE(2, 4, 3, 5));
    ck_assert_shape(z, 4, TGT_SHAPE(2, 4, 3, 5));
    double want_da[6] = {0}, want_db[20] = {0};
    for (int n = 0; n < 2; n++)
        for (int p = 0; p < 4; p++)
            for (int q = 0; q < 3; q++)
                for (int r = 0; r < 5; r++) {
                    int64_t at = ((n * 4 + p) * 3 + q) * 5 + r;
                    double x = av[n * 3 + q], w = bv[p * 5 + r];
                    ck_assert_near(tg_tensor_get(y, at), x * w, tol_of(dt) * 100);
                    ck_assert_near(tg_tensor_get(z, at), w - x, tol_of(dt) * 100);
                    want_da[n * 3 + q] += w;
                    want_db[p * 5 + r] += x;
                }
    tg_tensor *dy = tg_tensor_new(dt, 4, TGT_SHAPE(2, 4, 3, 5));
    tg_tensor_fill(dy, 1);
    ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
    ck_assert_grad_near(a, want_da, 6, tol_of(dt) * 100);
    ck_assert_grad_near(b, want_db, 20, tol_of(dt) * 100);
    tg_tensor_free(dy);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

/* A bias row longer than a vector register, so the vectorised loop and its tail both run. */
START_TEST(long_bias_row_matches_naive_loops) {
    tg_dtype dt = tt_dtype_of(_i);
    enum { B = 5, H = 37 };
    double av[B * H], bv[H], dyv[B * H];
    for (int i = 0; i < B * H; i++) av[i] = 0.25 * (i % 11) - 1, dyv[i] = 1 + (i % 3);
    for (int j = 0; j < H; j++) bv[j] = 1 + 0.125 * j;
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tt_make(dt, 2, TGT_SHAPE(B, H), av), *b = tt_make(dt, 1, TGT_SHAPE(H), bv);
    tg_tensor *dy = tt_make(dt, 2, TGT_SHAPE(B, H), dyv);
    tg_tensor_set_requires_grad(a, true);
    tg_tensor_set_requires_grad(b, true);
    tg_tensor *y = tg_div(tp, a, b);
    double want_da[B * H], want_db[H] = {0};
    for (int r = 0; r < B; r++)
        for (int j = 0; j < H; j++) {
            int at = r * H + j;
            ck_assert_near(tg_tensor_get(y, at), av[at] / bv[j], 1e-6);
            want_da[at] = dyv[at] / bv[j];
            want_db[j] -= dyv[at] * av[at] / (bv[j] * bv[j]);
        }
    ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
    ck_assert_grad_near(a, want_da, B * H, 1e-5);
    ck_assert_grad_near(b, want_db, H, 1e-5);
    tg_tensor_free(dy);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

/* Gradients that sum a whole row into one element (a [1] operand, a column
 * [R,1] operand), with rows long enough for the blocked sum and its tail. */
START_TEST(single_element_and_column_grads_match_naive_loops) {
    tg_dtype dt = tt_dtype_of(_i);
    enum { R = 3, C = 37 };
    double av[R * C], cv[R], dyv[R * C];
    for (int i = 0; i < R * C; i++) av[i] = 0.5 - 0.125 * (i % 9), dyv[i] = 1 + (i % 4);
    for (int r = 0; r < R; r++) cv[r] = 1.5 + r;
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tt_make(dt, 2, TGT_SHAPE(R, C), av), *s = tt_make(dt, 1, TGT_SHAPE(1), TGT_VALS(2));
    tg_tensor *c = tt_make(dt, 2, TGT_SHAPE(R, 1), cv), *dy = tt_make(dt, 2, TGT_SHAPE(R, C), dyv);
    tg_tensor_set_requires_grad(s, true);
    tg_tensor_set_requires_grad(c, true);
    /* y = (a * s) / c: ds = sum dy a / c; dc[r] = -sum_j dy y / c[r] */
    tg_tensor *y = tg_div(tp, tg_mul(tp, a, s), c);
    double want_ds = 0, want_dc[R] = {0};
    for (int r = 0; r < R; r++)
        for (int j = 0; j < C; j++) {
            int at = r * C + j;
            want_ds += dyv[at] * av[at] / cv[r];
            want_dc[r] -= dyv[at] * (av[at] * 2 / cv[r]) / cv[r];
        }
    ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
    ck_assert_grad_near(s, &want_ds, 1, 1e-4);
    ck_assert_grad_near(c, want_dc, R, 1e-4);
    tg_tensor_free(dy);
    tg_tensor_free(a);
    tg_tensor_free(s);
    tg_tensor_free(c);
    tg_tape_free(tp);
}
END_TEST

/* ---- gradients worked by hand ---------------------------------------------------------------- */
/* y = a + b, a [2,3], b [3]: da = dy; db = dy summed over the 2 rows. */
START_TEST(grad_add_bias_sums_rows) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tg_tensor_new(dt, 2, TGT_SHAPE(2, 3)), *b = tg_tensor_new(dt, 1, TGT_SHAPE(3));
    tg_tensor *dy = tt_make(dt, 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, 3, 4, 5, 6));
    tg_tensor_set_requires_grad(a, true);
    tg_tensor_set_requires_grad(b, true);
    ck_assert_int_eq(tg_backward_ex(tp, tg_add(tp, a, b), dy), TG_OK);
    ck_assert_grad_near(a, TGT_VALS(1, 2, 3, 4, 5, 6), 6, 0);
    ck_assert_grad_near(b, TGT_VALS(5, 7, 9), 3, 0);
    tg_tensor_free(dy);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

/* d/db sum(a + b) for b [2] broadcast over 4 rows is the row count. */
START_TEST(grad_of_broadcast_operand_counts_rows) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tg_tensor_new(TG_F64, 2, TGT_SHAPE(4, 2)), *b = tg_tensor_new(TG_F64, 1, TGT_SHAPE(2));
    tg_tensor_set_requires_grad(b, true);
    tg_tensor *y = tg_sum(tp, tg_add(tp, a, b));
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);
    ck_assert_grad_near(b, TGT_VALS(4, 4), 2, 0);
    ck_assert_ptr_null(tg_tensor_grad(a)); /* a did not ask for a gradient */
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

/* y = a - b, a [2,2], b [1], dy = 1: da = 1, db = -4. */
START_TEST(grad_sub_scalar_like) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tg_tensor_new(dt, 2, TGT_SHAPE(2, 2)), *b = tt_make(dt, 1, TGT_SHAPE(1), TGT_VALS(3));
    tg_tensor *dy = tt_make(dt, 2, TGT_SHAPE(2, 2), TGT_VALS(1, 1, 1, 1));
    tg_tensor_set_requires_grad(a, true);
    tg_tensor_set_requires_grad(b, true);
    ck_assert_int_eq(tg_backward_ex(tp, tg_sub(tp, a, b), dy), TG_OK);
    ck_assert_grad_near(a, TGT_VALS(1, 1, 1, 1), 4, 0);
    ck_assert_grad_near(b, TGT_VALS(-4), 1, 0);
    tg_tensor_free(dy);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

/* y = a * b, a [2,1] = (1,2), b [1,3] = (1,2,3), dy = [[1,2,3],[4,5,6]]:
 * da[i] = sum_j dy[i,j] b[j] = (1+4+9, 4+10+18) = (14, 32)
 * db[j] = sum_i dy[i,j] a[i] = (1+8, 2+10, 3+12) = (9, 12, 15) */
START_TEST(grad_mul_both_sides) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tt_make(dt, 2, TGT_SHAPE(2, 1), TGT_VALS(1, 2)), *b = tt_make(dt, 2, TGT_SHAPE(1, 3), TGT_VALS(1, 2, 3));
    tg_tensor *dy = tt_make(dt, 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, 3, 4, 5, 6));
    tg_tensor_set_requires_grad(a, true);
    tg_tensor_set_requires_grad(b, true);
    ck_assert_int_eq(tg_backward_ex(tp, tg_mul(tp, a, b), dy), TG_OK);
    ck_assert_grad_near(a, TGT_VALS(14, 32), 2, tol_of(dt));
    ck_assert_grad_near(b, TGT_VALS(9, 12, 15), 3, tol_of(dt));
    tg_tensor_free(dy);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

/* y = a / b, a = (2, 6), b [1] = 2, dy = (1, 3):
 * da = dy / b = (0.5, 1.5); db = -sum dy a / b^2 = -(2 + 18) / 4 = -5 */
START_TEST(grad_div_scalar_denominator) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tt_make(dt, 1, TGT_SHAPE(2), TGT_VALS(2, 6)), *b = tt_make(dt, 1, TGT_SHAPE(1), TGT_VALS(2));
    tg_tensor *dy = tt_make(dt, 1, TGT_SHAPE(2), TGT_VALS(1, 3));
    tg_tensor_set_requires_grad(a, true);
    tg_tensor_set_requires_grad(b, true);
    ck_assert_int_eq(tg_backward_ex(tp, tg_div(tp, a, b), dy), TG_OK);
    ck_assert_grad_near(a, TGT_VALS(0.5, 1.5), 2, tol_of(dt));
    ck_assert_grad_near(b, TGT_VALS(-5), 1, tol_of(dt));
    tg_tensor_free(dy);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

/* x * x and x + x: both operand gradients land in x: 2x and 2. */
START_TEST(grad_same_tensor_as_both_operands) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_make(dt, 1, TGT_SHAPE(3), TGT_VALS(1, 2, 3)), *dy = tt_make(dt, 1, TGT_SHAPE(3), TGT_VALS(1, 1, 1));
    tg_tensor_set_requires_grad(x, true);
    ck_assert_int_eq(tg_backward_ex(tp, tg_mul(tp, x, x), dy), TG_OK);
    ck_assert_grad_near(x, TGT_VALS(2, 4, 6), 3, 0);
    tg_tensor_zero_grad(x);
    tg_tape_reset(tp);
    ck_assert_int_eq(tg_backward_ex(tp, tg_add(tp, x, x), dy), TG_OK);
    ck_assert_grad_near(x, TGT_VALS(2, 2, 2), 3, 0);
    tg_tensor_free(dy);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* z = (a + b) * a with a = (1, 2), b [1] = 3, dz = 1: a feeds two nodes, so the
 * VJPs must accumulate: dz/da = (a + b) + a = (5, 7); dz/db = sum a = 3. */
START_TEST(grad_accumulates_across_nodes) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tt_make(TG_F64, 1, TGT_SHAPE(2), TGT_VALS(1, 2)), *b = tt_make(TG_F64, 1, TGT_SHAPE(1), TGT_VALS(3));
    tg_tensor *dz = tt_make(TG_F64, 1, TGT_SHAPE(2), TGT_VALS(1, 1));
    tg_tensor_set_requires_grad(a, true);
    tg_tensor_set_requires_grad(b, true);
    tg_tensor *z = tg_mul(tp, tg_add(tp, a, b), a);
    ck_assert_int_eq(tg_backward_ex(tp, z, dz), TG_OK);
    ck_assert_grad_near(a, TGT_VALS(5, 7), 2, 0);
    ck_assert_grad_near(b, TGT_VALS(3), 1, 0);
    tg_tensor_free(dz);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------------------ */
static void check_error(binary_fn f, tg_dtype da, int na, const int64_t *sa, tg_dtype db, int nb,
                        const int64_t *sb, tg_status code, const char *text) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tg_tensor_new(da, na, sa), *b = tg_tensor_new(db, nb, sb);
    ck_assert_ptr_null(f(tp, a, b));
    ck_assert_tape_error(tp, code, text);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}

START_TEST(error_shapes_do_not_broadcast) {
    check_error(tg_add, TG_F64, 2, TGT_SHAPE(2, 3), TG_F64, 1, TGT_SHAPE(4), TG_ERR_SHAPE,
                "add: shapes do not broadcast: [2,3] x [4]");
    check_error(tg_sub, TG_F32, 2, TGT_SHAPE(3, 2), TG_F32, 2, TGT_SHAPE(2, 3), TG_ERR_SHAPE,
                "sub: shapes do not broadcast: [3,2] x [2,3]");
    check_error(tg_mul, TG_F64, 3, TGT_SHAPE(2, 3, 4), TG_F64, 3, TGT_SHAPE(3, 1, 4), TG_ERR_SHAPE,
                "mul: shapes do not broadcast: [2,3,4] x [3,1,4]");
    check_error(tg_div, TG_F64, 1, TGT_SHAPE(0), TG_F64, 1, TGT_SHAPE(2), TG_ERR_SHAPE,
                "div: shapes do not broadcast: [0] x [2]");
}
END_TEST

START_TEST(error_dtypes_differ) {
    check_error(tg_add, TG_F32, 2, TGT_SHAPE(2, 3), TG_F64, 2, TGT_SHAPE(2, 3), TG_ERR_DTYPE,
                "add: dtypes differ: float32 [2,3] x float64 [2,3]");
    check_error(tg_div, TG_F64, 1, TGT_SHAPE(4), TG_F32, 1, TGT_SHAPE(1), TG_ERR_DTYPE,
                "div: dtypes differ: float64 [4] x float32 [1]");
}
END_TEST

START_TEST(error_not_float) {
    check_error(tg_mul, TG_I32, 1, TGT_SHAPE(2), TG_F32, 1, TGT_SHAPE(2), TG_ERR_DTYPE,
                "mul: needs a float tensor, got int32 [2]");
    check_error(tg_sub, TG_F64, 2, TGT_SHAPE(2, 2), TG_I32, 1, TGT_SHAPE(2), TG_ERR_DTYPE,
                "sub: needs a float tensor, got int32 [2]");
}
END_TEST

START_TEST(null_input_returns_null) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tg_tensor_new(TG_F64, 1, TGT_SHAPE(2));
    ck_assert_ptr_null(tg_add(tp, NULL, a));
    ck_assert_tape_error(tp, TG_ERR_ARG, "add");
    ck_assert_ptr_null(tg_div(tp, a, NULL));
    ck_assert_ptr_null(tg_mul(NULL, a, a));
    tg_tensor_free(a);
    tg_tape_free(tp);
}
END_TEST

/* A bad add followed by ops on its NULL result keeps the first message. */
START_TEST(first_error_sticks_through_a_chain) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tg_tensor_new(TG_F64, 2, TGT_SHAPE(2, 3)), *b = tg_tensor_new(TG_F64, 1, TGT_SHAPE(4));
    tg_tensor *y = tg_mul(tp, tg_add(tp, a, b), a);
    ck_assert_ptr_null(tg_sub(tp, y, a));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "add: shapes do not broadcast: [2,3] x [4]");
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

Suite *suite_binary(void) {
    Suite *s = suite_create("binary");
    TCase *tc = tcase_create("forward");
    tcase_add_loop_test(tc, add_same_shape, 0, 2);
    tcase_add_loop_test(tc, sub_bias_row_both_spellings, 0, 2);
    tcase_add_loop_test(tc, sub_row_on_the_left_keeps_operand_order, 0, 2);
    tcase_add_loop_test(tc, mul_column_by_row_is_outer_product, 0, 2);
    tcase_add_loop_test(tc, mul_leading_dim_broadcast, 0, 2);
    tcase_add_loop_test(tc, div_by_and_of_a_single_element, 0, 2);
    tcase_add_loop_test(tc, zero_dim_operands, 0, 2);
    tcase_add_loop_test(tc, size_one_dims_broadcast_both_ways, 0, 2);
    tcase_add_test(tc, empty_output_is_fine);
    tcase_add_loop_test(tc, generic_path_matches_naive_loops, 0, 2);
    tcase_add_loop_test(tc, long_bias_row_matches_naive_loops, 0, 2);
    tcase_add_loop_test(tc, single_element_and_column_grads_match_naive_loops, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("gradient");
    tcase_add_loop_test(tc, grad_add_bias_sums_rows, 0, 2);
    tcase_add_test(tc, grad_of_broadcast_operand_counts_rows);
    tcase_add_loop_test(tc, grad_sub_scalar_like, 0, 2);
    tcase_add_loop_test(tc, grad_mul_both_sides, 0, 2);
    tcase_add_loop_test(tc, grad_div_scalar_denominator, 0, 2);
    tcase_add_loop_test(tc, grad_same_tensor_as_both_operands, 0, 2);
    tcase_add_test(tc, grad_accumulates_across_nodes);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, error_shapes_do_not_broadcast);
    tcase_add_test(tc, error_dtypes_differ);
    tcase_add_test(tc, error_not_float);
    tcase_add_test(tc, null_input_returns_null);
    tcase_add_test(tc, first_error_sticks_through_a_chain);
    suite_add_tcase(s, tc);
    return s;
}
