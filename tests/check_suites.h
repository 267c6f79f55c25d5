/* tests/check_suites.h - one Check suite per file; helpers shared by them. */
#ifndef TG_CHECK_SUITES_H
#define TG_CHECK_SUITES_H

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_test.h"

Suite *suite_tensor(void);
Suite *suite_tape(void);
Suite *suite_gradcheck(void);
Suite *suite_unary(void);
Suite *suite_matmul(void);
Suite *suite_gemm(void);
Suite *suite_binary(void);
Suite *suite_reduce(void);
Suite *suite_shape(void);
Suite *suite_softmax(void);
Suite *suite_conv(void);
Suite *suite_conv2d(void);
Suite *suite_embedding(void);
Suite *suite_dropout(void);
Suite *suite_loss(void);
Suite *suite_fuse(void);
Suite *suite_sizes(void);
Suite *suite_numerics(void);
Suite *suite_select(void);
Suite *suite_grad(void);

/* ---- shared helpers: literal tensors, comparisons that fail on NaN/Inf, errors ---- */

/* Loop tests over both dtypes: _i 0 is float64, 1 is float32. */
static inline tg_dtype tt_dtype_of(int i) { return i == 0 ? TG_F64 : TG_F32; }

/* A caller-owned tensor from literal values: tt_make(TG_F64, 2, TGT_SHAPE(2, 3), vals) */
static inline tg_tensor *tt_make(tg_dtype dt, int ndim, const int64_t *shape, const double *v) {
    return tg_tensor_from(dt, ndim, shape, v);
}

/* An arena tensor from literal values (freed with the tape). */
static inline tg_tensor *tt_lit(tg_tape *tp, tg_dtype dt, int ndim, const int64_t *shape,
                                const double *v) {
    tg_tensor *t = tg_tape_tensor(tp, dt, ndim, shape);
    ck_assert_msg(t != NULL, "tape_tensor: %s", tg_tape_error(tp));
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, v[i]);
    return t;
}

/* got within tol of want, as tgt_diff sees it: NaN, or an Inf where a finite
 * value (or the other Inf) is wanted, always fails. tol 0 asks for equality. */
#define ck_assert_near(got, want, tol)                                                           \
    do {                                                                                         \
        double got_ = (got), want_ = (want), tol_ = (tol);                                       \
        ck_assert_msg(tgt_within(tgt_diff(got_, want_), tol_), "%s: got %.12g, want %.12g (tol %g)", \
                      #got, got_, want_, tol_);                                                  \
    } while (0)

/* Every element of t (values, or its gradient) within tol of want[0..n-1]. */
#define ck_assert_tensor_near(t, want, n, tol) tt_assert_elems((t), false, (want), (n), (tol), #t)
#define ck_assert_grad_near(t, want, n, tol) tt_assert_elems((t), true, (want), (n), (tol), #t)

static inline void tt_assert_elems(const tg_tensor *t, bool grad, const double *want, int64_t n,
                                   double tol, const char *what) {
    ck_assert_msg(t != NULL, "%s is NULL", what);
    ck_assert_msg(!grad || tg_tensor_grad((tg_tensor *)t) != NULL, "%s has no gradient", what);
    ck_assert_int_eq(tg_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++) {
        double got = grad ? tg_tensor_grad_get(t, i) : tg_tensor_get(t, i);
        ck_assert_msg(tgt_within(tgt_diff(got, want[i]), tol),
                      "%s%s element %lld: got %.12g, want %.12g (tol %g)", what,
                      grad ? " gradient" : "", (long long)i, got, want[i], tol);
    }
}

/* got[0..n-1] within tol of want[] (tgt_diff: NaN and a wrong Inf fail). */
#define ck_assert_array_near(got, want, n, tol)                                                  \
    do {                                                                                         \
        for (int64_t k_ = 0; k_ < (int64_t)(n); k_++)                                            \
            ck_assert_msg(tgt_within(tgt_diff((got)[k_], (want)[k_]), (tol)),                    \
                          "%s[%lld]: got %.12g, want %.12g", #got, (long long)k_,                \
                          (double)(got)[k_], (double)(want)[k_]);                                \
    } while (0)

/* t is not NULL and has this shape. */
static inline void ck_assert_shape(const tg_tensor *t, int ndim, const int64_t *shape) {
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tg_tensor_ndim(t), ndim);
    for (int i = 0; i < ndim; i++) ck_assert_int_eq(tg_tensor_shape(t)[i], shape[i]);
}

/* Assert the tape holds an error whose message contains text. */
#define ck_assert_tape_error(tp, code, text)                                                     \
    do {                                                                                         \
        ck_assert_int_eq(tg_tape_status(tp), (code));                                            \
        ck_assert_msg(strstr(tg_tape_error(tp), (text)) != NULL, "message '%s' lacks '%s'",      \
                      tg_tape_error(tp), (text));                                                \
    } while (0)

/* Clear the previous error, then expect expr to give NULL with code and text. */
#define ck_assert_fails(tp, expr, code, text)                                                    \
    do {                                                                                         \
        tg_tape_clear_error(tp);                                                                 \
        ck_assert_ptr_null(expr);                                                                \
        ck_assert_tape_error(tp, code, text);                                                    \
    } while (0)

/* Expect the per-thread last error (calls without a tape) to hold code and text. */
#define ck_assert_last_error(code, text)                                                         \
    do {                                                                                         \
        ck_assert_int_eq(tg_last_status(), (code));                                              \
        ck_assert_msg(strstr(tg_last_error(), (text)) != NULL, "last error '%s' lacks '%s'",     \
                      tg_last_error(), (text));                                                  \
    } while (0)

#endif
