/* ops/kernels.c - the helpers of ops/kernels.h: copy, fill, add, sum.
 * Each loop is its own non-inlined function with restrict pointers, the
 * shape GCC's vectoriser takes (see ops/binary.c's note on -O2). */
#include "kernels.h"

#include <string.h>

#define HELPERS(T)                                                                               \
    TG_SIMD_CLONES static TG_NOINLINE void add_##T(T *restrict d, const T *restrict s,            \
                                                   int64_t n) {                                  \
        for (int64_t i = 0; i < n; i++) d[i] += s[i];                                            \
    }                                                                                            \
    TG_SIMD_CLONES static TG_NOINLINE void fill_##T(T *restrict d, T v, int64_t n) {             \
        for (int64_t i = 0; i < n; i++) d[i] = v;                                                \
    }                                                                                            \
    /* one call for a block of short rows: cheaper than a memcpy per row (which GCC would   \
     * make of the inner loop without no-tree-loop-distribute-patterns) */                       \
    __attribute__((optimize("no-tree-loop-distribute-patterns")))                                 \
    TG_SIMD_CLONES static TG_NOINLINE void copy_rows_##T(T *restrict d, int64_t dld,               \
                                                         const T *restrict s, int64_t sld,       \
                                                         int64_t rows, int64_t n) {              \
        for (int64_t j = 0; j < rows; j++)                                                       \
            for (int64_t i = 0; i < n; i++) d[j * dld + i] = s[j * sld + i];                     \
    }                                                                                            \
    TG_SIMD_CLONES static TG_NOINLINE void add_rows_##T(T *restrict d, int64_t dld,                \
                                                        const T *restrict s, int64_t sld,        \
                                                        int64_t rows, int64_t n) {               \
        for (int64_t j = 0; j < rows; j++)                                                       \
            for (int64_t i = 0; i < n; i++) d[j * dld + i] += s[j * sld + i];                    \
    }                                                                                            \
    /* no memset for part (GCC makes it a `rep stos`, slow to start) */                           \
    __attribute__((optimize("no-tree-loop-distribute-patterns")))                                 \
    static double sum_##T(const T *s, int64_t n) {                                               \
        double part[TG_VEC], acc = 0;                                                            \
        for (int l = 0; l < TG_VEC; l++) part[l] = 0;                                            \
        int64_t i = 0, body = tg_vec_body(n);                                                    \
        for (; i < body; i += TG_VEC)                                                            \
            for (int l = 0; l < TG_VEC; l++) part[l] += s[i + l];                                \
        for (; i < n; i++) acc += s[i];                                                          \
        return acc + tg__fold_parts(part);                                                       \
    }

TG_STAMP_FLOAT(HELPERS)

void tg__ew_add(tg_dtype dt, void *d, const void *s, int64_t n) { TG_BY_DTYPE(dt, add, d, s, n); }

void tg__ew_copy(tg_dtype dt, void *d, const void *s, int64_t n) {
    if (n > 0 && d != s) memcpy(d, s, (size_t)n * tg_dtype_size(dt));
}

void tg__ew_fill(tg_dtype dt, void *d, double v, int64_t n) {
    if (dt == TG_F64)
        fill_double(d, v, n);
    else
        fill_float(d, (float)v, n);
}

void tg__ew_copy_rows(tg_dtype dt, void *d, int64_t dld, const void *s, int64_t sld,
                      int64_t rows, int64_t n) {
    TG_BY_DTYPE(dt, copy_rows, d, dld, s, sld, rows, n);
}

void tg__ew_add_rows(tg_dtype dt, void *d, int64_t dld, const void *s, int64_t sld,
                     int64_t rows, int64_t n) {
    TG_BY_DTYPE(dt, add_rows, d, dld, s, sld, rows, n);
}

double tg__ew_sum(tg_dtype dt, const void *s, int64_t n) {
    return TG_BY_DTYPE_EXPR(dt, sum, s, n);
}
