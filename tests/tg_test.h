/* tests/tg_test.h - helpers every test shares (C and C++, any framework).
 *
 * The one rule: a comparison must fail on NaN or Inf. fmax() ignores NaN and
 * `fabs(a - b) <= tol` is false for NaN only by accident of how it is
 * written, so worst differences are taken with tgt_diff_update(), which makes
 * any non-finite difference the worst possible one. */
#ifndef TG_TEST_H
#define TG_TEST_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "tapegrad.h"

/* Literal shapes and values: tg_tensor_from(TG_F64, 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, ...)) */
#define TGT_SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define TGT_VALS(...) ((const double[]){__VA_ARGS__})
#define TGT_PERM(...) ((const int[]){__VA_ARGS__})

/* |a - b|, or INFINITY when either is NaN or they differ in being infinite
 * (two equal infinities compare equal: 0). */
static inline double tgt_diff(double a, double b) {
    if (isnan(a) || isnan(b)) return INFINITY;
    if (isinf(a) || isinf(b)) return a == b ? 0.0 : INFINITY;
    return fabs(a - b);
}

/* *worst = max(*worst, tgt_diff(a, b)), NaN-safe: a NaN anywhere makes it Inf. */
static inline void tgt_diff_update(double *worst, double a, double b) {
    double d = tgt_diff(a, b);
    if (!(d <= *worst)) *worst = d;
}

/* True when d is a finite number within tol (false for NaN and Inf). */
static inline bool tgt_within(double d, double tol) { return isfinite(d) && d <= tol; }

/* Largest elementwise difference between two tensors' values (or a's
 * gradient against b's values); INFINITY when sizes differ or on NaN/Inf. */
static inline double tgt_max_diff(const tg_tensor *a, const tg_tensor *b, bool a_grad) {
    if (!a || !b || tg_tensor_numel(a) != tg_tensor_numel(b)) return INFINITY;
    double worst = 0;
    for (int64_t i = 0; i < tg_tensor_numel(a); i++)
        tgt_diff_update(&worst, a_grad ? tg_tensor_grad_get(a, i) : tg_tensor_get(a, i),
                        tg_tensor_get(b, i));
    return worst;
}

/* Largest difference between a tensor's values and an array. */
static inline double tgt_max_diff_vals(const tg_tensor *t, const double *want, int64_t n) {
    if (!t || tg_tensor_numel(t) != n) return INFINITY;
    double worst = 0;
    for (int64_t i = 0; i < n; i++) tgt_diff_update(&worst, tg_tensor_get(t, i), want[i]);
    return worst;
}

#endif
