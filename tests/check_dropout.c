/* tests/check_dropout.c - identity modes, the same mask in forward and
 * backward, the keep fraction, rng bookkeeping, and every error path. */
#include "check_suites.h"

/* x[i] = 1 + i/n: never zero, so y == 0 means dropped. Arena-owned. */
static tg_tensor *ramp(tg_tape *tp, tg_dtype dt, int64_t n) {
    tg_tensor *x = tg_tape_tensor(tp, dt, 1, TGT_SHAPE(n));
    ck_assert_ptr_nonnull(x);
    for (int64_t i = 0; i < n; i++) tg_tensor_set(x, i, 1.0 + (double)i / (double)n);
    return x;
}

static tg_tensor *ones_like(tg_tape *tp, const tg_tensor *t) {
    tg_tensor *o = tg_tape_tensor(tp, tg_tensor_dtype(t), tg_tensor_ndim(t), tg_tensor_shape(t));
    tg_tensor_fill(o, 1.0);
    return o;
}

static bool rng_equal(const tg_rng *a, const tg_rng *b) {
    return memcmp(a->s, b->s, sizeof a->s) == 0;
}

START_TEST(dropout_is_identity_in_eval_mode) {
    tg_tape *tp = tg_tape_new();
    tg_tape_set_training(tp, false);
    tg_tensor *x = ramp(tp, TG_F32, 50);
    tg_tensor_set_requires_grad(x, true);
    tg_rng r = tg_rng_seeded(7), before = r;
    tg_tensor *y = tg_dropout(tp, x, 0.5, &r);
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_ne(y, x); /* a copy in the arena, so it is always an op result */
    for (int64_t i = 0; i < 50; i++) ck_assert_near(tg_tensor_get(y, i), tg_tensor_get(x, i), 0);
    ck_assert(rng_equal(&r, &before)); /* nothing drawn */
    ck_assert_int_eq(tg_backward_ex(tp, y, ones_like(tp, y)), TG_OK);
    for (int64_t i = 0; i < 50; i++) ck_assert_near(tg_tensor_grad_get(x, i), 1.0, 0);
    /* rng may be NULL when no draw is needed */
    ck_assert_ptr_nonnull(tg_dropout(tp, x, 0.5, NULL));
    tg_tape_free(tp);
}
END_TEST

START_TEST(dropout_p0_is_identity_in_training) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = ramp(tp, TG_F64, 33);
    tg_rng r = tg_rng_seeded(7), before = r;
    tg_tensor *y = tg_dropout(tp, x, 0.0, &r);
    ck_assert_ptr_nonnull(y);
    for (int64_t i = 0; i < 33; i++) ck_assert_near(tg_tensor_get(y, i), tg_tensor_get(x, i), 0);
    ck_assert(rng_equal(&r, &before));
    tg_tape_free(tp);
}
END_TEST

/* Gradient zero exactly where the output is zero and 1/(1-p) elsewhere, even
 * when the caller's rng moves on between forward and backward. */
START_TEST(dropout_backward_uses_the_forward_mask) {
    const double p = 0.3, scale = 1 / (1 - p);
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        double tol = d ? 1e-6 : 1e-14;
        tg_tape *tp = tg_tape_new();
        tg_tensor *x = ramp(tp, dt, 1001);
        tg_tensor_set_requires_grad(x, true);
        tg_rng r = tg_rng_seeded(2024);
        tg_tensor *y = tg_dropout(tp, x, p, &r);
        ck_assert_ptr_nonnull(y);
        for (int i = 0; i < 100; i++) tg_rng_next(&r);
        ck_assert_int_eq(tg_backward_ex(tp, y, ones_like(tp, y)), TG_OK);
        int64_t dropped = 0;
        for (int64_t i = 0; i < 1001; i++) {
            double yi = tg_tensor_get(y, i), gi = tg_tensor_grad_get(x, i);
            if (yi == 0) {
                dropped++;
                ck_assert_near(gi, 0.0, 0);
            } else {
                ck_assert_near(yi, tg_tensor_get(x, i) * scale, tol * 2);
                ck_assert_near(gi, scale, tol);
            }
        }
        ck_assert_int_gt(dropped, 0);
        ck_assert_int_lt(dropped, 1001);
        tg_tape_free(tp);
    }
}
END_TEST

START_TEST(dropout_keep_fraction_is_near_1_minus_p) {
    /* n = 200000, p = 0.3: the kept fraction has sd sqrt(.21/n) ~ 0.001; 0.006 is 6 sd. */
    const int64_t n = 200000;
    const double ps[3] = {0.1, 0.3, 0.75};
    for (int k = 0; k < 3; k++) {
        tg_tape *tp = tg_tape_new();
        tg_tensor *x = tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(400, 500));
        tg_tensor_fill(x, 1.0);
        tg_rng r = tg_rng_seeded(99 + (uint64_t)k);
        tg_tensor *y = tg_dropout(tp, x, ps[k], &r);
        ck_assert_ptr_nonnull(y);
        int64_t kept = 0;
        double sum = 0;
        for (int64_t i = 0; i < n; i++) {
            kept += tg_tensor_get(y, i) != 0;
            sum += tg_tensor_get(y, i);
        }
        ck_assert_near((double)kept / (double)n, 1 - ps[k], 0.006);
        ck_assert_near(sum / (double)n, 1.0, 0.03); /* inverted: the mean is kept */
        tg_tape_free(tp);
    }
}
END_TEST

START_TEST(dropout_advances_rng_past_its_draws) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = ramp(tp, TG_F64, 64);
    tg_rng r = tg_rng_seeded(5), same = tg_rng_seeded(5), skip = tg_rng_seeded(5);
    tg_tensor *a = tg_dropout(tp, x, 0.5, &r);
    tg_tensor *b = tg_dropout(tp, x, 0.5, &r);
    tg_tensor *a2 = tg_dropout(tp, x, 0.5, &same);
    for (int i = 0; i < 64 * 2; i++) tg_rng_next(&skip);
    ck_assert(rng_equal(&r, &skip)); /* one draw per element per call */
    int differ = 0;
    for (int64_t i = 0; i < 64; i++) {
        ck_assert_near(tg_tensor_get(a, i), tg_tensor_get(a2, i), 0); /* same seed, same mask */
        differ += (tg_tensor_get(a, i) == 0) != (tg_tensor_get(b, i) == 0);
    }
    ck_assert_int_gt(differ, 0); /* the second call drew fresh numbers */
    /* element i is kept exactly when the i-th tg_rng_uniform draw is >= p */
    tg_rng ref = tg_rng_seeded(5);
    for (int64_t i = 0; i < 64; i++)
        ck_assert_int_eq(tg_tensor_get(a, i) != 0, tg_rng_uniform(&ref) >= 0.5);
    tg_tape_free(tp);
}
END_TEST

START_TEST(dropout_errors) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(2, 3));
    tg_rng r = tg_rng_seeded(1), before = r;
    ck_assert_fails(tp, tg_dropout(tp, x, 1.0, &r), TG_ERR_ARG,
                    "dropout: p must be in [0,1), got 1: x [2,3]");
    ck_assert_fails(tp, tg_dropout(tp, x, -0.1, &r), TG_ERR_ARG,
                    "dropout: p must be in [0,1), got -0.1");
    ck_assert_fails(tp, tg_dropout(tp, x, NAN, &r), TG_ERR_ARG,
                    "dropout: p must be in [0,1), got nan");
    ck_assert_fails(tp, tg_dropout(tp, x, 0.5, NULL), TG_ERR_ARG,
                    "dropout: rng is NULL (needed in training mode): x [2,3]");
    ck_assert_fails(tp, tg_dropout(tp, tg_tape_tensor(tp, TG_I32, 1, TGT_SHAPE(4)), 0.5, &r),
                    TG_ERR_DTYPE, "dropout: needs a float tensor, got int32 [4]");
    ck_assert_fails(tp, tg_dropout(tp, NULL, 0.5, &r), TG_ERR_ARG, "dropout: input 0 is NULL");
    ck_assert(rng_equal(&r, &before)); /* failed calls draw nothing */
    tg_tape_set_training(tp, false); /* p is checked in eval mode too */
    ck_assert_fails(tp, tg_dropout(tp, x, 1.5, &r), TG_ERR_ARG,
                    "dropout: p must be in [0,1), got 1.5");
    tg_tape_free(tp);
}
END_TEST

Suite *suite_dropout(void) {
    Suite *s = suite_create("dropout");
    TCase *tc = tcase_create("dropout");
    tcase_add_test(tc, dropout_is_identity_in_eval_mode);
    tcase_add_test(tc, dropout_p0_is_identity_in_training);
    tcase_add_test(tc, dropout_backward_uses_the_forward_mask);
    tcase_add_test(tc, dropout_keep_fraction_is_near_1_minus_p);
    tcase_add_test(tc, dropout_advances_rng_past_its_draws);
    tcase_add_test(tc, dropout_errors);
    suite_add_tcase(s, tc);
    return s;
}
