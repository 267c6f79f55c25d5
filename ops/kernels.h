/* ops/kernels.h - the one kernel system of ops/ (private, never installed).
 *
 * Every family file and the fusion engine (autograd/fuse*.c) build their
 * float/double loops from this header:
 *
 *   TG_STAMP_FLOAT(KERNELS)   stamps a family's kernel macro for float and
 *                             double: KERNELS(float) KERNELS(double);
 *   TG_BY_DTYPE(dt, NAME, ...)   calls NAME_float(...) or NAME_double(...)
 *                             by a float dtype (TG_BY_DTYPE_EXPR: same, as an
 *                             expression with a value);
 *   TG_EW_FOR(i, n)           the loop of an elementwise block kernel;
 *   tg_geom                   a tensor seen as [O, L, I] around one axis;
 *   tg__ew_*                  copy/fill/add/sum helpers shared by all.
 *
 * Elementwise block kernels (op.h's tg_eltwise) are called on lengths that
 * are multiples of TG_VEC: the driver pads the last block of a row into a
 * register, so every element goes through the same vector code wherever it
 * sits. That is what makes a fused group's results bit-identical to the op
 * run alone (libmvec's vector tanh and the scalar tanhf differ in the last
 * bit; GCC's -std=c11 default -ffp-contract=off keeps a*b+c unfused). */
#ifndef TG_KERNELS_H
#define TG_KERNELS_H

#include "../autograd/internal.h"

#include "simd_math.h" /* before any tgmath.h: it declares the real functions */

/* ---- sizes ------------------------------------------------------------------------------ */
enum {
    TG_VEC = 16,     /* kernels run on multiples of this many elements (any SIMD width) */
    TG_BLOCK = 256,  /* elements per register block: 1 KB of float32, 2 KB of float64  */
    TG_EW_MAX_IN = 4 /* inputs of an elementwise op                                     */
};

static inline int64_t tg_vec_round(int64_t n) { return (n + TG_VEC - 1) & ~(int64_t)(TG_VEC - 1); }
static inline int64_t tg_vec_body(int64_t n) { return n & ~(int64_t)(TG_VEC - 1); }

/* ---- dtype stamping and dispatch ---------------------------------------------------------- */
#define TG_STAMP_FLOAT(KERNELS) KERNELS(float) KERNELS(double)

/* The dtype of a stamped type: TG_DTYPE_OF(float) is TG_F32. */
#define TG_DTYPE_OF(T) TG_DTYPE_OF_##T
#define TG_DTYPE_OF_float TG_F32
#define TG_DTYPE_OF_double TG_F64

#define TG_BY_DTYPE(dt, NAME, ...)                                                               \
    do {                                                                                         \
        if ((dt) == TG_F64)                                                                      \
            NAME##_double(__VA_ARGS__);                                                          \
        else                                                                                     \
            NAME##_float(__VA_ARGS__);                                                           \
    } while (0)
#define TG_BY_DTYPE_EXPR(dt, NAME, ...)                                                          \
    ((dt) == TG_F64 ? NAME##_double(__VA_ARGS__) : NAME##_float(__VA_ARGS__))

/* The body of an elementwise block kernel: n is a multiple of TG_VEC. The
 * fixed inner trip count is what GCC vectorises without a scalar tail. */
#define TG_EW_FOR(i, n)                                                                          \
    for (int64_t i##_blk = 0; i##_blk < (n); i##_blk += TG_VEC)                                  \
        TG_PRAGMA_SIMD for (int64_t i = i##_blk; i < i##_blk + TG_VEC; i++)

#define TG_NOINLINE __attribute__((noinline))

/* Headers of an elementwise op's block kernels (op.h: tg_block_fwd, tg_block_vjp),
 * with the argument names the family tables use. */
#define TG_EW_FWD_KERNEL(FN) void FN(int64_t n, const void *const *xs, void *ys, const void *attr)
#define TG_EW_VJP_KERNEL(FN)                                                                     \
    void FN(int k, int64_t n, const void *const *xs, const void *ys, const void *dys, void *dxs, \
            bool acc, const void *attr)

/* ---- threads ------------------------------------------------------------------------------ */
/* Threads for a kernel over `elements` elements of independent lines: the
 * tape's threads when its passes (about four: softmax's max, exp, sum and
 * scale) are worth splitting (tg__split: autograd/internal.h), else one.
 * TG_OMP_FOR_NT shares the next loop among the local variable nt's threads
 * (one: no team). */
enum { TG_LINE_PASSES = 4 };

static inline int tg_threads_for(tg_tape *tp, int64_t elements) {
    int nt = tg_tape_threads(tp);
    int64_t work = elements > INT64_MAX / TG_LINE_PASSES ? INT64_MAX : elements * TG_LINE_PASSES;
    return nt > 1 && tg__split(tp, work) ? nt : 1;
}

#ifdef _OPENMP
#define TG_OMP_FOR_NT _Pragma("omp parallel for num_threads(nt) if (nt > 1) schedule(static)")
#else
#define TG_OMP_FOR_NT
#endif

/* ---- geometry ----------------------------------------------------------------------------- */
/* t seen as [outer, len, inner] around axis ax (already normalised); for every
 * element at once: [1, numel, 1]. */
typedef struct tg_geom { int64_t outer, len, inner; } tg_geom;

static inline tg_geom tg_geom_around(const tg_tensor *t, int ax) {
    tg_geom g = {tg__numel(ax, t->shape), t->shape[ax],
                 tg__numel(t->ndim - ax - 1, t->shape + ax + 1)};
    return g;
}

static inline tg_geom tg_geom_all(const tg_tensor *t) {
    tg_geom g = {1, t->numel, 1};
    return g;
}

/* ---- shared helpers (ops/kernels.c) --------------------------------------------------------- */
/* d[i] += s[i], i < n (dtype dt, float only). */
TG_HIDDEN void tg__ew_add(tg_dtype dt, void *d, const void *s, int64_t n);
/* d[i] = s[i] for n elements of any dtype. */
TG_HIDDEN void tg__ew_copy(tg_dtype dt, void *d, const void *s, int64_t n);
/* d[i] = v for i < n (float dtypes). */
TG_HIDDEN void tg__ew_fill(tg_dtype dt, void *d, double v, int64_t n);
/* sum of n elements in TG_VEC double partial sums (vectorisable, and more
 * accurate than one running sum); the same grouping everywhere it is used. */
TG_HIDDEN double tg__ew_sum(tg_dtype dt, const void *s, int64_t n);
/* Rows of a matrix (the fusion engine's register blocks): rows x n elements,
 * row j at d + j*dld and s + j*sld (element strides; sld or dld 0 = one row
 * used for all). copy: d = s (float dtypes); add: d += s, row after row in
 * order (so dld = 0 sums the rows into one, as tg__ew_add row by row would). */
TG_HIDDEN void tg__ew_copy_rows(tg_dtype dt, void *d, int64_t dld, const void *s, int64_t sld,
                                int64_t rows, int64_t n);
TG_HIDDEN void tg__ew_add_rows(tg_dtype dt, void *d, int64_t dld, const void *s, int64_t sld,
                               int64_t rows, int64_t n);
/* part[0] + ... + part[TG_VEC-1], added pairwise (halves, then quarters, ...):
 * four dependent adds instead of a chain of sixteen, in one fixed order.
 * Overwrites part. */
static inline double tg__fold_parts(double part[TG_VEC]) {
    _Static_assert(TG_VEC == 16, "tg__fold_parts folds 16 partial sums");
    /* constant trip counts, so the compiler unrolls it into registers */
    for (int l = 0; l < 8; l++) part[l] += part[l + 8];
    for (int l = 0; l < 4; l++) part[l] += part[l + 4];
    return (part[0] + part[2]) + (part[1] + part[3]);
}
/* NumPy broadcast shape of the inputs into nd, shape; false if they do not broadcast. */
TG_HIDDEN bool tg__bcast_shape(int n_in, tg_tensor *const *in, int *nd, int64_t *shape);
/* Bytes per element of a float dtype, without a call. */
static inline size_t tg__fsize(tg_dtype dt) { return dt == TG_F64 ? sizeof(double) : sizeof(float); }
/* Pointer to element i of a buffer of float dtype dt. */
static inline void *tg__at(tg_dtype dt, const void *p, int64_t i) {
    return (char *)p + (size_t)i * tg__fsize(dt);
}

#endif
