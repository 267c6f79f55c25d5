/* tests/check_suites.h - one Check suite per file; helpers shared by them. */
#ifndef TG_CHECK_SUITES_H
#define TG_CHECK_SUITES_H

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"

Suite *suite_tensor(void);
Suite *suite_tape(void);
Suite *suite_gradcheck(void);
Suite *suite_unary(void);
Suite *suite_matmul(void);
Suite *suite_binary(void);
Suite *suite_reduce(void);
Suite *suite_shape(void);
Suite *suite_softmax(void);
Suite *suite_conv(void);
Suite *suite_embedding(void);
Suite *suite_dropout(void);
Suite *suite_loss(void);
Suite *suite_fuse(void);

/* A caller-owned tensor from literal values: T_(TG_F64, ((int64_t[]){2,3}), 2, vals) */
static inline tg_tensor *tt_make(tg_dtype dt, int ndim, const int64_t *shape, const double *v) {
    return tg_tensor_from(dt, ndim, shape, v);
}

/* Assert every element of t equals want[] within tol. */
#define ck_assert_tensor_near(t, want, n, tol)                                                   \
    do {                                                                                         \
        ck_assert_int_eq(tg_tensor_numel(t), (n));                                               \
        for (int64_t i_ = 0; i_ < (n); i_++)                                                     \
            ck_assert_msg(fabs(tg_tensor_get((t), i_) - (want)[i_]) <= (tol),                    \
                          "element %lld: got %.9g, want %.9g", (long long)i_,                    \
                          tg_tensor_get((t), i_), (double)(want)[i_]);                           \
    } while (0)

/* Assert the tape holds an error whose message contains text. */
#define ck_assert_tape_error(tp, code, text)                                                     \
    do {                                                                                         \
        ck_assert_int_eq(tg_tape_status(tp), (code));                                            \
        ck_assert_msg(strstr(tg_tape_error(tp), (text)) != NULL, "message '%s' lacks '%s'",      \
                      tg_tape_error(tp), (text));                                                \
    } while (0)

#endif
