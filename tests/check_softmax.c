/* tests/check_softmax.c - softmax and log_softmax: values and gradients worked by hand,
 * no overflow at 1000, every axis position (with lines wider than the kernel's lane
 * block checked against a plain loop written here), the lecture's attention case,
 * and the error paths. Value tests run in both dtypes (0: float64, 1: float32).
 *
 * Decimal values are e-arithmetic done by hand and confirmed with PyTorch 1.13:
 *   import torch; x = torch.tensor([1., 2., 3.], dtype=torch.float64)
 *   torch.softmax(x, 0)      # [0.09003057317038045, 0.2447284710547976, 0.6652409557748218]
 *   torch.log_softmax(x, 0)  # [-2.4076059644443806, -1.4076059644443804, -0.4076059644443804]
 *   torch.softmax(torch.tensor([1., 3.], dtype=torch.float64), 0)
 *                            # [0.11920292202211755, 0.8807970779778823] */
#include "check_suites.h"

static double tol_of(tg_dtype dt) { return dt == TG_F64 ? 1e-12 : 1e-6; }
static const double LN2 = 0.6931471805599453;

/* softmax([1,2,3]) = e^(x-3) / (1 + e^-1 + e^-2); log_softmax = x - 3 - log(1 + e^-1 + e^-2) */
static const double SM123[3] = {0.09003057317038045, 0.2447284710547976, 0.6652409557748218};
static const double LSM123[3] = {-2.4076059644443806, -1.4076059644443804, -0.4076059644443804};
/* softmax([1,3]) = [1/(1+e^2), 1/(1+e^-2)] */
static const double S_LO = 0.11920292202211755, S_HI = 0.8807970779778823;

typedef tg_tensor *(*sm_fn)(tg_tape *, tg_tensor *, int);

/* y = f(x, axis) against want (same shape as x). */
static void check_values(sm_fn f, tg_dtype dt, int nx, const int64_t *sx, const double *vx,
                         int axis, const double *want) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_make(dt, nx, sx, vx);
    tg_tensor *y = f(tp, x, axis);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_tensor_dtype(y), dt);
    ck_assert_int_eq(tg_tensor_ndim(y), nx);
    for (int i = 0; i < nx; i++) ck_assert_int_eq(tg_tensor_shape(y)[i], sx[i]);
    for (int64_t i = 0; i < tg_tensor_numel(x); i++) /* relative: log_softmax can be large */
        ck_assert_near(tg_tensor_get(y, i), want[i], tol_of(dt) * (1 + fabs(want[i])));
    tg_tensor_free(x);
    tg_tape_free(tp);
}

/* dx of y = f(x, axis) for output gradient dy, against want. */
static void check_grad(sm_fn f, tg_dtype dt, int nx, const int64_t *sx, const double *vx, int axis,
                       const double *dyv, const double *want) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_make(dt, nx, sx, vx), *dy = tt_make(dt, nx, sx, dyv);
    tg_tensor_set_requires_grad(x, true);
    tg_tensor *y = f(tp, x, axis);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
    ck_assert_grad_near(x, want, tg_tensor_numel(x), tol_of(dt));
    tg_tensor_free(x);
    tg_tensor_free(dy);
    tg_tape_free(tp);
}

START_TEST(values_by_hand_last_axis) {
    tg_dtype dt = tt_dtype_of(_i);
    check_values(tg_softmax, dt, 1, TGT_SHAPE(3), TGT_VALS(1, 2, 3), 0, SM123);
    check_values(tg_log_softmax, dt, 1, TGT_SHAPE(3), TGT_VALS(1, 2, 3), -1, LSM123);
    /* two rows: a shift of a row does not change its softmax */
    const double want[6] = {SM123[0], SM123[1], SM123[2], SM123[0], SM123[1], SM123[2]};
    check_values(tg_softmax, dt, 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, 3, -4, -3, -2), 1, want);
    /* a line of one element: softmax 1, log_softmax 0 */
    check_values(tg_softmax, dt, 2, TGT_SHAPE(2, 1), TGT_VALS(5, -7), -1, TGT_VALS(1, 1));
    check_values(tg_log_softmax, dt, 2, TGT_SHAPE(2, 1), TGT_VALS(5, -7), 1, TGT_VALS(0, 0));
}
END_TEST

START_TEST(values_by_hand_other_axes) {
    tg_dtype dt = tt_dtype_of(_i);
    /* [[1,3],[1,1]] along axis 0: column 0 is [1,1] -> halves, column 1 is [3,1] */
    check_values(tg_softmax, dt, 2, TGT_SHAPE(2, 2), TGT_VALS(1, 3, 1, 1), 0, TGT_VALS(0.5, S_HI, 0.5, S_LO));
    check_values(tg_softmax, dt, 2, TGT_SHAPE(2, 2), TGT_VALS(1, 3, 1, 1), -2, TGT_VALS(0.5, S_HI, 0.5, S_LO));
    /* x[a,b,c] = 4a + 2b + c along the middle axis: every line is [v, v+2] */
    check_values(tg_softmax, dt, 3, TGT_SHAPE(2, 2, 2), TGT_VALS(0, 1, 2, 3, 4, 5, 6, 7), 1,
                 TGT_VALS(S_LO, S_LO, S_HI, S_HI, S_LO, S_LO, S_HI, S_HI));
    double l0 = log(S_LO), l1 = log(S_HI);
    check_values(tg_log_softmax, dt, 3, TGT_SHAPE(2, 2, 2), TGT_VALS(0, 1, 2, 3, 4, 5, 6, 7), -2,
                 TGT_VALS(l0, l0, l1, l1, l0, l0, l1, l1));
}
END_TEST

START_TEST(large_inputs_do_not_overflow) {
    tg_dtype dt = tt_dtype_of(_i);
    check_values(tg_softmax, dt, 1, TGT_SHAPE(2), TGT_VALS(1000, 1000), 0, TGT_VALS(0.5, 0.5));
    check_values(tg_softmax, dt, 1, TGT_SHAPE(2), TGT_VALS(-1000, -1000), 0, TGT_VALS(0.5, 0.5));
    check_values(tg_softmax, dt, 1, TGT_SHAPE(2), TGT_VALS(1000, 0), 0, TGT_VALS(1, 0));
    check_values(tg_log_softmax, dt, 1, TGT_SHAPE(2), TGT_VALS(1000, 1000), 0, TGT_VALS(-LN2, -LN2));
    check_values(tg_log_softmax, dt, 1, TGT_SHAPE(2), TGT_VALS(1000, 0), 0, TGT_VALS(0, -1000));
    /* log_softmax([1000,1001,1002]) = log_softmax([1,2,3]) (exact in float32 too) */
    check_values(tg_log_softmax, dt, 1, TGT_SHAPE(3), TGT_VALS(1000, 1001, 1002), 0, LSM123);
    check_values(tg_softmax, dt, 2, TGT_SHAPE(3, 1), TGT_VALS(1000, 1001, 1002), 0, SM123);
    /* no NaN in the gradient either: y = [.5,.5], dy = [1,0] -> .5 * (dy - .5) */
    check_grad(tg_softmax, dt, 1, TGT_SHAPE(2), TGT_VALS(1000, 1000), 0, TGT_VALS(1, 0), TGT_VALS(0.25, -0.25));
    check_grad(tg_log_softmax, dt, 1, TGT_SHAPE(2), TGT_VALS(1000, 1000), 0, TGT_VALS(1, 0), TGT_VALS(0.5, -0.5));
}
END_TEST

START_TEST(nan_makes_its_line_nan) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_make(TG_F64, 2, TGT_SHAPE(2, 2), TGT_VALS(1, NAN, 1, 1));
    tg_tensor *y = tg_softmax(tp, x, 1), *l = tg_log_softmax(tp, x, 1);
    ck_assert(isnan(tg_tensor_get(y, 0)) && isnan(tg_tensor_get(y, 1)));
    ck_assert(isnan(tg_tensor_get(l, 0)) && isnan(tg_tensor_get(l, 1)));
    ck_assert_near(tg_tensor_get(y, 2), 0.5, 0);
    ck_assert_near(tg_tensor_get(l, 3), -LN2, 0);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* y = [1/4, 3/4] from x = [0, ln 3]; dy = [1, 0]:
 *   softmax:     sum dy*y = 1/4, dx = y * (dy - 1/4) = [3/16, -3/16]
 *   log_softmax: sum dy = 1,     dx = dy - y         = [3/4, -3/4] */
START_TEST(gradients_by_hand) {
    tg_dtype dt = tt_dtype_of(_i);
    double l3 = log(3.0);
    check_grad(tg_softmax, dt, 1, TGT_SHAPE(2), TGT_VALS(0, l3), 0, TGT_VALS(1, 0), TGT_VALS(0.1875, -0.1875));
    check_grad(tg_log_softmax, dt, 1, TGT_SHAPE(2), TGT_VALS(0, l3), -1, TGT_VALS(1, 0), TGT_VALS(0.75, -0.75));
    /* the same along axis 0 of [2,2], with a second column x = [0,0] (y = [1/2,1/2])
     * and dy = [0,2] there: softmax dx = 1/2 * ([0,2] - 1), log_softmax dx = [0,2] - 2 y */
    check_grad(tg_softmax, dt, 2, TGT_SHAPE(2, 2), TGT_VALS(0, 0, l3, 0), 0, TGT_VALS(1, 0, 0, 2),
               TGT_VALS(0.1875, -0.5, -0.1875, 0.5));
    check_grad(tg_log_softmax, dt, 2, TGT_SHAPE(2, 2), TGT_VALS(0, 0, l3, 0), 0, TGT_VALS(1, 0, 0, 2),
               TGT_VALS(0.75, -1, -0.75, 1));
}
END_TEST

START_TEST(gradients_accumulate) {
    /* softmax and log_softmax of the same x side by side: the two cases of
     * gradients_by_hand added, [3/16 + 3/4, -3/16 - 3/4] */
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_make(dt, 1, TGT_SHAPE(2), TGT_VALS(0, log(3.0))),
              *dy = tt_make(dt, 1, TGT_SHAPE(4), TGT_VALS(1, 0, 1, 0));
    tg_tensor_set_requires_grad(x, true);
    tg_tensor *y =
        tg_concat(tp, 2, (tg_tensor *[]){tg_softmax(tp, x, 0), tg_log_softmax(tp, x, -1)}, 0);
    ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
    ck_assert_near(tg_tensor_grad_get(x, 0), 0.9375, tol_of(dt));
    ck_assert_near(tg_tensor_grad_get(x, 1), -0.9375, tol_of(dt));
    tg_tensor_free(x);
    tg_tensor_free(dy);
    tg_tape_free(tp);
}
END_TEST

/* Lines of 5 along the middle axis of [2, 5, 70] (70 lines side by side: more than the
 * 64-line lane block) and lines of 70 along the last axis of the same numbers as [10, 70],
 * against plain double loops over each line. */
static void line_reference(const double *v, int64_t O, int64_t L, int64_t I, double *sm,
                           double *lsm) {
    for (int64_t o = 0; o < O; o++)
        for (int64_t i = 0; i < I; i++) {
            double m = -INFINITY, s = 0;
            for (int64_t k = 0; k < L; k++) /* a NaN is maximal, as in the op */
                m = isnan(m) || m >= v[(o * L + k) * I + i] ? m : v[(o * L + k) * I + i];
            for (int64_t k = 0; k < L; k++) s += exp(v[(o * L + k) * I + i] - m);
            for (int64_t k = 0; k < L; k++) {
                int64_t at = (o * L + k) * I + i;
                sm[at] = exp(v[at] - m) / s;
                lsm[at] = v[at] - m - log(s);
            }
        }
}

START_TEST(wide_lines_match_a_plain_loop) {
    enum { O = 2, L = 5, I = 70, N = O * L * I };
    tg_dtype dt = tt_dtype_of(_i);
    double v[N], sm[N], lsm[N];
    for (int i = 0; i < N; i++) v[i] = 3 * sin(0.37 * i) + (i % 7 == 0 ? 40 : 0);
    line_reference(v, O, L, I, sm, lsm);
    check_values(tg_softmax, dt, 3, TGT_SHAPE(O, L, I), v, 1, sm);
    check_values(tg_log_softmax, dt, 3, TGT_SHAPE(O, L, I), v, -2, lsm);
    line_reference(v, O * L, I, 1, sm, lsm);
    check_values(tg_softmax, dt, 2, TGT_SHAPE(O * L, I), v, -1, sm);
    check_values(tg_log_softmax, dt, 2, TGT_SHAPE(O * L, I), v, 1, lsm);
}
END_TEST

/* Rows of 37 along the last axis (a vector body of 32 and a tail of 5) with each
 * row's peak (1000 + r after h = x/2) at a body or a tail position: a maximum the
 * row kernel missed would overflow exp and turn the row NaN. The VJP is checked
 * against dx = y (dy - sum dy y) and dx = dy - exp(y) sum dy worked here, with
 * h's gradient fresh (written by softmax's VJP) and accumulated (h*c recorded
 * after softmax, so its VJP writes first), each twice on one tape: after the
 * reset the fresh gradient lands on the first run's bytes, so adding into it
 * would double it. */
enum { ODD_R = 4, ODD_L = 37, ODD_N = ODD_R * ODD_L };

static void odd_rows_reference(bool log_out, const double *hv, const double *dyv, double c,
                               double *y, double *dx) {
    double sm[ODD_N], lsm[ODD_N];
    line_reference(hv, ODD_R, ODD_L, 1, sm, lsm);
    for (int r = 0; r < ODD_R; r++) {
        const double *yr = sm + r * ODD_L, *dyr = dyv + r * ODD_L;
        double dot = 0, sum = 0;
        for (int k = 0; k < ODD_L; k++) {
            dot += dyr[k] * yr[k];
            sum += dyr[k];
        }
        for (int k = 0; k < ODD_L; k++) {
            int at = r * ODD_L + k;
            y[at] = log_out ? lsm[at] : sm[at];
            double dh = log_out ? dyr[k] - yr[k] * sum : yr[k] * (dyr[k] - dot);
            dx[at] = 0.5 * (dh + c); /* h = x / 2 */
        }
    }
}

static void check_odd_rows(sm_fn f, bool log_out, tg_dtype dt, bool accumulate) {
    static const int peak_at[ODD_R] = {3, 35, 31, 32}; /* body, tail, last of body, first of tail */
    double xv[ODD_N], hv[ODD_N], dyv[ODD_N], want_y[ODD_N], want_dx[ODD_N];
    for (int i = 0; i < ODD_N; i++) {
        xv[i] = 3 * sin(0.7 * i);
        dyv[i] = cos(0.3 * i);
    }
    for (int r = 0; r < ODD_R; r++) xv[r * ODD_L + peak_at[r]] = 2000 + 2 * r;
    for (int i = 0; i < ODD_N; i++) hv[i] = xv[i] / 2;
    const double c = accumulate ? 0.75 : 0;
    odd_rows_reference(log_out, hv, dyv, c, want_y, want_dx);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_make(dt, 2, TGT_SHAPE(ODD_R, ODD_L), xv),
              *dy = tt_make(dt, 2, TGT_SHAPE(ODD_R, ODD_L), dyv);
    tg_tensor_set_requires_grad(x, true);
    for (int run = 0; run < 2; run++) {
        tg_tape_reset(tp);
        tg_tensor_zero_grad(x);
        tg_tensor *h = tg_scale(tp, x, 0.5), *y = f(tp, h, -1);
        tg_tensor *loss = tg_sum(tp, tg_mul(tp, y, dy));
        if (accumulate) loss = tg_add(tp, loss, tg_sum(tp, tg_scale(tp, h, c)));
        ck_assert_msg(loss != NULL, "%s", tg_tape_error(tp));
        for (int i = 0; i < ODD_N; i++) /* relative: log_softmax is about -1000 */
            ck_assert_near(tg_tensor_get(y, i), want_y[i], tol_of(dt) * (1 + fabs(want_y[i])));
        ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
        ck_assert_grad_near(x, want_dx, ODD_N, tol_of(dt));
    }
    tg_tensor_free(dy);
    tg_tensor_free(x);
    tg_tape_free(tp);
}

START_TEST(odd_rows_fresh_and_accumulated) {
    tg_dtype dt = tt_dtype_of(_i);
    for (int acc = 0; acc < 2; acc++) {
        check_odd_rows(tg_softmax, false, dt, acc);
        check_odd_rows(tg_log_softmax, true, dt, acc);
    }
}
END_TEST

/* The lecture's attention case: q . k1 = 112, q . k2 = 96; divided by sqrt(64) = 8 they
 * are 14 and 12, and softmax(14, 12) = (1/(1+e^-2), 1/(1+e^2)) = (0.88, 0.12) to 2 places.
 * q is 64 ones, k1 is 64 times 1.75, k2 is 64 times 1.5. */
START_TEST(attention_weights_from_the_lecture) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *q = tg_tensor_new(dt, 2, TGT_SHAPE(1, 64)), *k = tg_tensor_new(dt, 2, TGT_SHAPE(2, 64));
    tg_tensor_fill(q, 1);
    for (int j = 0; j < 64; j++) {
        tg_tensor_set(k, j, 1.75);
        tg_tensor_set(k, 64 + j, 1.5);
    }
    tg_tensor *dots = tg_matmul_ex(tp, q, k, &(tg_matmul_opts){.trans_b = true});
    ck_assert_tensor_near(dots, TGT_VALS(112, 96), 2, 0);
    tg_tensor *scores = tg_scale(tp, dots, 1.0 / sqrt(64.0));
    ck_assert_tensor_near(scores, TGT_VALS(14, 12), 2, 0);
    tg_tensor *w = tg_softmax(tp, scores, -1);
    ck_assert_int_eq(tg_tensor_dim(w, 0), 1);
    ck_assert_int_eq(tg_tensor_dim(w, 1), 2);
    ck_assert_near(tg_tensor_get(w, 0), 0.88, 0.005);
    ck_assert_near(tg_tensor_get(w, 1), 0.12, 0.005);
    ck_assert_tensor_near(w, TGT_VALS(S_HI, S_LO), 2, tol_of(dt));
    tg_tensor_free(q);
    tg_tensor_free(k);
    tg_tape_free(tp);
}
END_TEST

/* ---- errors -------------------------------------------------------------------------------- */
static void check_error(sm_fn f, tg_dtype dt, int nx, const int64_t *sx, int axis, tg_status code,
                        const char *text) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_new(dt, nx, sx);
    ck_assert_ptr_null(f(tp, x, axis));
    ck_assert_tape_error(tp, code, text);
    tg_tensor_free(x);
    tg_tape_free(tp);
}

START_TEST(errors) {
    check_error(tg_softmax, TG_F64, 2, TGT_SHAPE(2, 3), 2, TG_ERR_AXIS,
                "softmax: axis 2 out of range for [2,3]");
    check_error(tg_log_softmax, TG_F32, 2, TGT_SHAPE(2, 3), -3, TG_ERR_AXIS,
                "log_softmax: axis -3 out of range for [2,3]");
    check_error(tg_softmax, TG_F32, 0, NULL, 0, TG_ERR_AXIS, "softmax: axis 0 out of range for []");
    check_error(tg_log_softmax, TG_F64, 0, NULL, -1, TG_ERR_AXIS,
                "log_softmax: axis -1 out of range for []");
    check_error(tg_softmax, TG_I32, 2, TGT_SHAPE(2, 3), 1, TG_ERR_DTYPE,
                "softmax: needs a float tensor, got int32 [2,3]");
    check_error(tg_log_softmax, TG_I32, 1, TGT_SHAPE(4), 0, TG_ERR_DTYPE,
                "log_softmax: needs a float tensor, got int32 [4]");
    tg_tape *tp = tg_tape_new();
    ck_assert_ptr_null(tg_softmax(tp, NULL, 0));
    ck_assert_tape_error(tp, TG_ERR_ARG, "softmax: input 0 is NULL");
    ck_assert_ptr_null(tg_log_softmax(tp, NULL, 0));
    ck_assert_tape_error(tp, TG_ERR_ARG, "softmax: input 0 is NULL"); /* the first error sticks */
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_log_softmax(tp, NULL, 0));
    ck_assert_tape_error(tp, TG_ERR_ARG, "log_softmax: input 0 is NULL");
    tg_tape_free(tp);
}
END_TEST

Suite *suite_softmax(void) {
    Suite *s = suite_create("softmax");
    TCase *tc = tcase_create("values");
    tcase_add_loop_test(tc, values_by_hand_last_axis, 0, 2);
    tcase_add_loop_test(tc, values_by_hand_other_axes, 0, 2);
    tcase_add_loop_test(tc, large_inputs_do_not_overflow, 0, 2);
    tcase_add_test(tc, nan_makes_its_line_nan);
    tcase_add_loop_test(tc, gradients_by_hand, 0, 2);
    tcase_add_loop_test(tc, gradients_accumulate, 0, 2);
    tcase_add_loop_test(tc, wide_lines_match_a_plain_loop, 0, 2);
    tcase_add_loop_test(tc, odd_rows_fresh_and_accumulated, 0, 2);
    tcase_add_loop_test(tc, attention_weights_from_the_lecture, 0, 2);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("errors");
    tcase_add_test(te, errors);
    suite_add_tcase(s, te);
    return s;
}
