/* tests/check_reduce.c - sum, mean, sum_axis, mean_axis, max_axis: worked values,
 * hand-worked gradients, and every error path. Value tests run in both dtypes
 * (loop index 0: float64, 1: float32). */
#include "check_suites.h"

#include <stdlib.h>

static double tol_of(tg_dtype dt) { return dt == TG_F64 ? 1e-12 : 1e-5; }

static const double X23[6] = {1, 2, 3, 4, 5, 6};                  /* [2,3] */
static const double X232[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}; /* [2,3,2] */

typedef tg_tensor *(*axis_fn)(tg_tape *, tg_tensor *, int, bool);

/* y = f(x, axis, keepdim) checked against a shape and values; frees everything. */
static void check_axis(axis_fn f, tg_dtype dt, int nx, const int64_t *sx, const double *vx,
                       int axis, bool keepdim, int ny, const int64_t *sy, const double *want) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_make(dt, nx, sx, vx);
    tg_tensor *y = f(tp, x, axis, keepdim);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tp));
    ck_assert_shape(y, ny, sy);
    ck_assert_int_eq(tg_tensor_dtype(y), dt);
    int64_t n = 1;
    for (int i = 0; i < ny; i++) n *= sy[i];
    ck_assert_tensor_near(y, want, n, tol_of(dt));
    tg_tensor_free(x);
    tg_tape_free(tp);
}

/* dx of y = f(x, axis, keepdim) for a given dy, against want. */
static void check_axis_grad(axis_fn f, tg_dtype dt, int nx, const int64_t *sx, const double *vx,
                            int axis, bool keepdim, int ny, const int64_t *sy, const double *dyv,
                            const double *want) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_make(dt, nx, sx, vx), *dy = tt_make(dt, ny, sy, dyv);
    tg_tensor_set_requires_grad(x, true);
    tg_tensor *y = f(tp, x, axis, keepdim);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
    ck_assert_grad_near(x, want, tg_tensor_numel(x), tol_of(dt));
    tg_tensor_free(dy);
    tg_tensor_free(x);
    tg_tape_free(tp);
}

/* ---- forward values ----------------------------------------------------------------------------- */
START_TEST(sum_and_mean_of_all_give_0_dim) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_make(dt, 2, TGT_SHAPE(2, 3), X23);
    tg_tensor *s = tg_sum(tp, x), *m = tg_mean(tp, x);
    ck_assert_msg(s && m, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_tensor_ndim(s), 0);
    ck_assert_int_eq(tg_tensor_numel(s), 1);
    ck_assert_int_eq(tg_tensor_ndim(m), 0);
    ck_assert_near(tg_tensor_item(s), 21, tol_of(dt));
    ck_assert_near(tg_tensor_item(m), 3.5, tol_of(dt));
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(sum_axis_every_axis_and_keepdim) {
    tg_dtype dt = tt_dtype_of(_i);
    check_axis(tg_sum_axis, dt, 2, TGT_SHAPE(2, 3), X23, 0, false, 1, TGT_SHAPE(3), TGT_VALS(5, 7, 9));
    check_axis(tg_sum_axis, dt, 2, TGT_SHAPE(2, 3), X23, -2, true, 2, TGT_SHAPE(1, 3), TGT_VALS(5, 7, 9));
    check_axis(tg_sum_axis, dt, 2, TGT_SHAPE(2, 3), X23, 1, false, 1, TGT_SHAPE(2), TGT_VALS(6, 15));
    check_axis(tg_sum_axis, dt, 2, TGT_SHAPE(2, 3), X23, -1, true, 2, TGT_SHAPE(2, 1), TGT_VALS(6, 15));
}
END_TEST

START_TEST(mean_axis_every_axis) {
    tg_dtype dt = tt_dtype_of(_i);
    check_axis(tg_mean_axis, dt, 2, TGT_SHAPE(2, 3), X23, 0, false, 1, TGT_SHAPE(3), TGT_VALS(2.5, 3.5, 4.5));
    check_axis(tg_mean_axis, dt, 2, TGT_SHAPE(2, 3), X23, -1, false, 1, TGT_SHAPE(2), TGT_VALS(2, 5));
    check_axis(tg_mean_axis, dt, 2, TGT_SHAPE(2, 3), X23, 1, true, 2, TGT_SHAPE(2, 1), TGT_VALS(2, 5));
}
END_TEST

/* x[o,k,i] = 6o + 2k + i + 1 over [2,3,2]; the middle axis sums 3 rows of width 2. */
START_TEST(middle_axis_of_3d) {
    tg_dtype dt = tt_dtype_of(_i);
    check_axis(tg_sum_axis, dt, 3, TGT_SHAPE(2, 3, 2), X232, 1, false, 2, TGT_SHAPE(2, 2), TGT_VALS(9, 12, 27, 30));
    check_axis(tg_sum_axis, dt, 3, TGT_SHAPE(2, 3, 2), X232, -2, true, 3, TGT_SHAPE(2, 1, 2),
               TGT_VALS(9, 12, 27, 30));
    check_axis(tg_mean_axis, dt, 3, TGT_SHAPE(2, 3, 2), X232, 1, false, 2, TGT_SHAPE(2, 2), TGT_VALS(3, 4, 9, 10));
    check_axis(tg_sum_axis, dt, 3, TGT_SHAPE(2, 3, 2), X232, 0, false, 2, TGT_SHAPE(3, 2),
               TGT_VALS(8, 10, 12, 14, 16, 18));
}
END_TEST

START_TEST(max_axis_values_and_shapes) {
    tg_dtype dt = tt_dtype_of(_i);
    const double x[6] = {1, 5, 3, 7, 2, 7};
    check_axis(tg_max_axis, dt, 2, TGT_SHAPE(2, 3), x, 1, false, 1, TGT_SHAPE(2), TGT_VALS(5, 7));
    check_axis(tg_max_axis, dt, 2, TGT_SHAPE(2, 3), x, -1, true, 2, TGT_SHAPE(2, 1), TGT_VALS(5, 7));
    check_axis(tg_max_axis, dt, 2, TGT_SHAPE(2, 3), x, 0, false, 1, TGT_SHAPE(3), TGT_VALS(7, 5, 7));
    /* [2,3,2], middle axis: max(1,4,3)=4, max(6,2,5)=6, max(-1,-3,-2)=-1, max(-2,-1,-4)=-1 */
    check_axis(tg_max_axis, dt, 3, TGT_SHAPE(2, 3, 2), TGT_VALS(1, 6, 4, 2, 3, 5, -1, -2, -3, -1, -2, -4), 1,
               false, 2, TGT_SHAPE(2, 2), TGT_VALS(4, 6, -1, -1));
}
END_TEST

START_TEST(max_axis_propagates_nan) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_make(dt, 1, TGT_SHAPE(3), TGT_VALS(1, NAN, 3));
    tg_tensor *y = tg_max_axis(tp, x, 0, false);
    ck_assert_ptr_nonnull(y);
    ck_assert(isnan(tg_tensor_item(y)));
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* Sums of nothing are 0, means of nothing NaN (as PyTorch). */
START_TEST(empty_inputs) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *e = tg_tensor_new(TG_F64, 1, TGT_SHAPE(0)), *e2 = tg_tensor_new(TG_F64, 2, TGT_SHAPE(2, 0));
    ck_assert_near(tg_tensor_item(tg_sum(tp, e)), 0, 0);
    ck_assert(isnan(tg_tensor_item(tg_mean(tp, e))));
    tg_tensor *s = tg_sum_axis(tp, e2, 1, false), *m = tg_mean_axis(tp, e2, -1, true);
    ck_assert_shape(s, 1, TGT_SHAPE(2));
    ck_assert_tensor_near(s, TGT_VALS(0, 0), 2, 0);
    ck_assert_shape(m, 2, TGT_SHAPE(2, 1));
    ck_assert(isnan(tg_tensor_get(m, 0)) && isnan(tg_tensor_get(m, 1)));
    ck_assert_shape(tg_max_axis(tp, e2, 0, false), 1, TGT_SHAPE(0)); /* the reduced axis is not empty */
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    tg_tensor_free(e);
    tg_tensor_free(e2);
    tg_tape_free(tp);
}
END_TEST

/* 10000 x 0.1f: float accumulation drifts to ~999.90; the double accumulator gives 1000. */
START_TEST(long_float32_sum_stays_accurate) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_new(TG_F32, 1, TGT_SHAPE(10000));
    tg_tensor_fill(x, 0.1);
    ck_assert_near(tg_tensor_item(tg_sum(tp, x)), 1000, 1e-3);
    ck_assert_near(tg_tensor_item(tg_mean(tp, x)), 0.1, 1e-7);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* x [2,21,18]: rows and columns long enough for the vector body and its tail,
 * against naive loops; then the VJPs for a weighted dy. */
START_TEST(long_axes_match_naive_loops) {
    tg_dtype dt = tt_dtype_of(_i);
    enum { O = 2, L = 21, I = 18 };
    static double xv[O * L * I], dyv[O * I];
    for (int i = 0; i < O * L * I; i++) xv[i] = 0.25 * (i % 13) - 1;
    for (int i = 0; i < O * I; i++) dyv[i] = 1 + (i % 5);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_make(dt, 3, TGT_SHAPE(O, L, I), xv), *dy = tt_make(dt, 2, TGT_SHAPE(O, I), dyv);
    tg_tensor_set_requires_grad(x, true);
    tg_tensor *s = tg_sum_axis(tp, x, 1, false), *last = tg_mean_axis(tp, x, -1, false);
    for (int o = 0; o < O; o++)
        for (int i = 0; i < I; i++) {
            double want = 0;
            for (int k = 0; k < L; k++) want += xv[(o * L + k) * I + i];
            ck_assert_near(tg_tensor_get(s, o * I + i), want, 1e-5);
        }
    for (int r = 0; r < O * L; r++) {
        double want = 0;
        for (int i = 0; i < I; i++) want += xv[r * I + i];
        ck_assert_near(tg_tensor_get(last, r), want / I, 1e-6);
    }
    ck_assert_int_eq(tg_backward_ex(tp, s, dy), TG_OK);
    double *want_dx = malloc(sizeof(double) * O * L * I);
    for (int o = 0; o < O; o++)
        for (int k = 0; k < L; k++)
            for (int i = 0; i < I; i++) want_dx[(o * L + k) * I + i] = dyv[o * I + i];
    ck_assert_grad_near(x, want_dx, O * L * I, 0);
    /* mean over the last axis: each row of 18 gets dy2[r] / 18 */
    tg_tensor *dy2 = tg_tensor_new(dt, 2, TGT_SHAPE(O, L));
    for (int r = 0; r < O * L; r++) tg_tensor_set(dy2, r, r + 1);
    tg_tensor_zero_grad(x);
    ck_assert_int_eq(tg_backward_ex(tp, last, dy2), TG_OK);
    for (int r = 0; r < O * L; r++)
        for (int i = 0; i < I; i++) want_dx[r * I + i] = (r + 1) / (double)I;
    ck_assert_grad_near(x, want_dx, O * L * I, 1e-6);
    free(want_dx);
    tg_tensor_free(dy2);
    tg_tensor_free(dy);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* ---- fresh and accumulated input gradients ----------------------------------------------------
 * h = 2x is an intermediate, so the reduction's VJP is the first to write
 * dh (fresh: written, never zero-filled) unless h*c was recorded after it
 * (its VJP runs first, and the reduction's adds to it). Each case runs twice
 * on one tape: after the reset, h's gradient lands on the first run's bytes,
 * so a fresh gradient that were added into would come out doubled.
 * Lines of 37 (a vector body of 32 and a tail of 5) at the last axis
 * (x [3,37]) and at the middle one (x [2,37,3]: rows of 3 added elementwise). */
static void check_fresh_and_accumulated(axis_fn f, bool mean, tg_dtype dt, int nx,
                                        const int64_t *sx, int axis, bool accumulate) {
    enum { L = 37 };
    int64_t O = sx[0], I = nx == 3 ? sx[2] : 1, N = O * L * I;
    double xv[2 * 37 * 3], dyv[3 * 3], want[2 * 37 * 3];
    for (int64_t i = 0; i < N; i++) xv[i] = 0.5 * (double)(i % 11) - 2;
    for (int64_t i = 0; i < O * I; i++) dyv[i] = 1 + (double)i;
    const double c = 0.75; /* dh from h*c */
    for (int64_t o = 0; o < O; o++)
        for (int64_t k = 0; k < L; k++)
            for (int64_t i = 0; i < I; i++) /* dx = 2 dh */
                want[(o * L + k) * I + i] = 2 * (dyv[o * I + i] / (mean ? L : 1) + (accumulate ? c : 0));
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_make(dt, nx, sx, xv), *dy = tt_make(dt, 1, TGT_SHAPE(O * I), dyv);
    tg_tensor_set_requires_grad(x, true);
    for (int run = 0; run < 2; run++) {
        tg_tape_reset(tp);
        tg_tensor_zero_grad(x);
        tg_tensor *h = tg_scale(tp, x, 2);
        tg_tensor *y = tg_reshape(tp, f(tp, h, axis, false), 1, TGT_SHAPE(O * I));
        tg_tensor *loss = tg_sum(tp, tg_mul(tp, y, dy));
        if (accumulate) loss = tg_add(tp, loss, tg_sum(tp, tg_scale(tp, h, c)));
        ck_assert_msg(loss != NULL, "%s", tg_tape_error(tp));
        ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
        ck_assert_grad_near(x, want, N, tol_of(dt));
    }
    tg_tensor_free(dy);
    tg_tensor_free(x);
    tg_tape_free(tp);
}

START_TEST(grad_fresh_and_accumulated_lines) {
    tg_dtype dt = tt_dtype_of(_i);
    for (int acc = 0; acc < 2; acc++) {
        check_fresh_and_accumulated(tg_mean_axis, true, dt, 2, TGT_SHAPE(3, 37), -1, acc);
        check_fresh_and_accumulated(tg_sum_axis, false, dt, 2, TGT_SHAPE(3, 37), 1, acc);
        check_fresh_and_accumulated(tg_mean_axis, true, dt, 3, TGT_SHAPE(2, 37, 3), 1, acc);
        check_fresh_and_accumulated(tg_sum_axis, false, dt, 3, TGT_SHAPE(2, 37, 3), -2, acc);
    }
}
END_TEST

/* ---- gradients worked by hand --------------------------------------------------------------------- */
/* d sum / dx = dy everywhere; d mean / dx = dy / numel. */
START_TEST(grad_sum_and_mean_of_all) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_make(dt, 2, TGT_SHAPE(2, 3), X23), *dy = tt_make(dt, 0, NULL, TGT_VALS(2));
    tg_tensor_set_requires_grad(x, true);
    ck_assert_int_eq(tg_backward_ex(tp, tg_sum(tp, x), dy), TG_OK);
    ck_assert_grad_near(x, TGT_VALS(2, 2, 2, 2, 2, 2), 6, 0);
    tg_tensor_zero_grad(x);
    tg_tape_reset(tp);
    ck_assert_int_eq(tg_backward(tp, tg_mean(tp, x)), TG_OK);
    double sixth = 1.0 / 6;
    ck_assert_grad_near(x, TGT_VALS(sixth, sixth, sixth, sixth, sixth, sixth), 6, tol_of(dt));
    tg_tensor_free(dy);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* sum_axis spreads dy back along the reduced axis; mean_axis also divides by its length. */
START_TEST(grad_sum_and_mean_axis) {
    tg_dtype dt = tt_dtype_of(_i);
    check_axis_grad(tg_sum_axis, dt, 2, TGT_SHAPE(2, 3), X23, 0, false, 1, TGT_SHAPE(3), TGT_VALS(1, 2, 3),
                    TGT_VALS(1, 2, 3, 1, 2, 3));
    check_axis_grad(tg_sum_axis, dt, 2, TGT_SHAPE(2, 3), X23, -1, true, 2, TGT_SHAPE(2, 1), TGT_VALS(1, 2),
                    TGT_VALS(1, 1, 1, 2, 2, 2));
    check_axis_grad(tg_mean_axis, dt, 2, TGT_SHAPE(2, 3), X23, 1, false, 1, TGT_SHAPE(2), TGT_VALS(3, 6),
                    TGT_VALS(1, 1, 1, 2, 2, 2));
    /* [2,3,2] middle axis, dy [2,2] = (3,6,9,12) / 3 to each of the 3 rows */
    check_axis_grad(tg_mean_axis, dt, 3, TGT_SHAPE(2, 3, 2), X232, 1, false, 2, TGT_SHAPE(2, 2),
                    TGT_VALS(3, 6, 9, 12), TGT_VALS(1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4));
}
END_TEST

/* Ties: row (7, 2, 7) sends its gradient to the first 7 only. */
START_TEST(grad_max_goes_to_first_maximum) {
    tg_dtype dt = tt_dtype_of(_i);
    const double x[6] = {1, 5, 3, 7, 2, 7};
    check_axis_grad(tg_max_axis, dt, 2, TGT_SHAPE(2, 3), x, 1, false, 1, TGT_SHAPE(2), TGT_VALS(1, 2),
                    TGT_VALS(0, 1, 0, 2, 0, 0));
    /* columns (1,7) (5,2) (3,7): maxima in rows 1, 0, 1 */
    check_axis_grad(tg_max_axis, dt, 2, TGT_SHAPE(2, 3), x, 0, true, 2, TGT_SHAPE(1, 3), TGT_VALS(1, 2, 3),
                    TGT_VALS(0, 2, 0, 1, 0, 3));
    /* [2,3,2] middle axis: argmax k = (1, 0 | 0, 1) -> flat 2, 1, 6, 9 */
    check_axis_grad(tg_max_axis, dt, 3, TGT_SHAPE(2, 3, 2), TGT_VALS(1, 6, 4, 2, 3, 5, -1, -2, -3, -1, -2, -4),
                    1, false, 2, TGT_SHAPE(2, 2), TGT_VALS(1, 2, 3, 4), TGT_VALS(0, 2, 1, 0, 0, 0, 3, 0, 0, 4, 0, 0));
}
END_TEST

/* z = sum(x) + max_axis(x, 0), x = (1, 3, 2): dz/dx = 1 + onehot(argmax) = (1, 2, 1).
 * Recorded in both orders, so each VJP once runs after the other has written. */
START_TEST(grad_accumulates_across_reductions) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_make(TG_F64, 1, TGT_SHAPE(3), TGT_VALS(1, 3, 2));
    tg_tensor_set_requires_grad(x, true);
    for (int order = 0; order < 2; order++) {
        tg_tensor *s, *m;
        if (order == 0) {
            s = tg_sum(tp, x);
            m = tg_max_axis(tp, x, 0, false);
        } else {
            m = tg_max_axis(tp, x, 0, false);
            s = tg_sum(tp, x);
        }
        ck_assert_int_eq(tg_backward(tp, tg_add(tp, s, m)), TG_OK);
        ck_assert_grad_near(x, TGT_VALS(1, 2, 1), 3, 0);
        tg_tensor_zero_grad(x);
        tg_tape_reset(tp);
    }
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------------------------- */
static void check_axis_error(axis_fn f, tg_dtype dt, int nx, const int64_t *sx, int axis,
                             tg_status code, const char *text) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_new(dt, nx, sx);
    ck_assert_ptr_null(f(tp, x, axis, false));
    ck_assert_tape_error(tp, code, text);
    tg_tape_reset(tp);
    ck_assert_ptr_null(f(tp, x, axis, true));
    ck_assert_tape_error(tp, code, text);
    tg_tensor_free(x);
    tg_tape_free(tp);
}

START_TEST(error_axis_out_of_range) {
    check_axis_error(tg_sum_axis, TG_F64, 2, TGT_SHAPE(2, 3), 3, TG_ERR_AXIS,
                     "sum_axis: axis 3 out of range for [2,3]");
    check_axis_error(tg_mean_axis, TG_F32, 2, TGT_SHAPE(2, 3), -3, TG_ERR_AXIS,
                     "mean_axis: axis -3 out of range for [2,3]");
    check_axis_error(tg_max_axis, TG_F64, 2, TGT_SHAPE(2, 3), 2, TG_ERR_AXIS,
                     "max_axis: axis 2 out of range for [2,3]");
    check_axis_error(tg_max_axis, TG_F64, 0, NULL, 0, TG_ERR_AXIS,
                     "max_axis: axis 0 out of range for []");
}
END_TEST

START_TEST(error_max_of_empty_axis) {
    check_axis_error(tg_max_axis, TG_F64, 2, TGT_SHAPE(2, 0), 1, TG_ERR_SHAPE,
                     "max_axis: axis 1 is empty: [2,0]");
    check_axis_error(tg_max_axis, TG_F32, 2, TGT_SHAPE(0, 3), -2, TG_ERR_SHAPE,
                     "max_axis: axis -2 is empty: [0,3]");
}
END_TEST

START_TEST(error_not_float) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_new(TG_I32, 1, TGT_SHAPE(4));
    ck_assert_ptr_null(tg_sum(tp, x));
    ck_assert_tape_error(tp, TG_ERR_DTYPE, "sum: needs a float tensor, got int32 [4]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_mean(tp, x));
    ck_assert_tape_error(tp, TG_ERR_DTYPE, "mean: needs a float tensor, got int32 [4]");
    tg_tensor_free(x);
    tg_tape_free(tp);
    check_axis_error(tg_sum_axis, TG_I32, 2, TGT_SHAPE(2, 3), 0, TG_ERR_DTYPE,
                     "sum_axis: needs a float tensor, got int32 [2,3]");
    check_axis_error(tg_mean_axis, TG_I32, 2, TGT_SHAPE(2, 3), 0, TG_ERR_DTYPE,
                     "mean_axis: needs a float tensor, got int32 [2,3]");
    check_axis_error(tg_max_axis, TG_I32, 2, TGT_SHAPE(2, 3), 1, TG_ERR_DTYPE,
                     "max_axis: needs a float tensor, got int32 [2,3]");
}
END_TEST

START_TEST(null_input_returns_null) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_new(TG_F64, 1, TGT_SHAPE(2));
    ck_assert_ptr_null(tg_sum(tp, NULL));
    ck_assert_tape_error(tp, TG_ERR_ARG, "sum");
    ck_assert_ptr_null(tg_mean(tp, NULL));
    ck_assert_ptr_null(tg_sum_axis(tp, NULL, 0, false));
    ck_assert_ptr_null(tg_mean_axis(tp, NULL, 0, true));
    ck_assert_ptr_null(tg_max_axis(tp, NULL, 0, false));
    ck_assert_ptr_null(tg_mean(NULL, x));
    ck_assert_tape_error(tp, TG_ERR_ARG, "sum"); /* the first error sticks */
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

Suite *suite_reduce(void) {
    Suite *s = suite_create("reduce");
    TCase *tc = tcase_create("forward");
    tcase_add_loop_test(tc, sum_and_mean_of_all_give_0_dim, 0, 2);
    tcase_add_loop_test(tc, sum_axis_every_axis_and_keepdim, 0, 2);
    tcase_add_loop_test(tc, mean_axis_every_axis, 0, 2);
    tcase_add_loop_test(tc, middle_axis_of_3d, 0, 2);
    tcase_add_loop_test(tc, max_axis_values_and_shapes, 0, 2);
    tcase_add_loop_test(tc, max_axis_propagates_nan, 0, 2);
    tcase_add_test(tc, empty_inputs);
    tcase_add_test(tc, long_float32_sum_stays_accurate);
    tcase_add_loop_test(tc, long_axes_match_naive_loops, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("gradient");
    tcase_add_loop_test(tc, grad_sum_and_mean_of_all, 0, 2);
    tcase_add_loop_test(tc, grad_sum_and_mean_axis, 0, 2);
    tcase_add_loop_test(tc, grad_max_goes_to_first_maximum, 0, 2);
    tcase_add_test(tc, grad_accumulates_across_reductions);
    tcase_add_loop_test(tc, grad_fresh_and_accumulated_lines, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, error_axis_out_of_range);
    tcase_add_test(tc, error_max_of_empty_axis);
    tcase_add_test(tc, error_not_float);
    tcase_add_test(tc, null_input_returns_null);
    suite_add_tcase(s, tc);
    return s;
}
