/* ops/softmax.c - softmax and log_softmax along one axis.
 *
 * x is seen as [O, L, I] around the axis (see ops/reduce.c); each of the O*I
 * lines of L elements is normalised on its own. With m the line's maximum and
 * s = sum_k exp(x_k - m) (every exponent <= 0, so nothing overflows and s >= 1):
 *   softmax:      y_k = exp(x_k - m) / s          dx_k += y_k (dy_k - sum_j dy_j y_j)
 *   log_softmax:  y_k = (x_k - m) - log(s)        dx_k += dy_k - exp(y_k) sum_j dy_j
 * Both VJPs read only the saved output y. Line sums are kept in double, so long
 * float32 lines stay accurate. A NaN anywhere in a line makes the whole line NaN,
 * as in PyTorch.
 *
 * Last axis (I == 1): each line is contiguous and handled by a row kernel.
 * Other axes: lines are strided by I, so LANES neighbouring lines are done
 * together, walking x row by row (contiguous) with per-lane max and sum. */
#include "kernels.h"

#include <string.h>
#include <tgmath.h>

typedef struct softmax_attr { int axis; } softmax_attr;

enum { LANES = 64 };

/* Only called after infer accepted the axis. */
static tg_geom geom_of(const tg_tensor *x, const softmax_attr *at) {
    return tg_geom_around(x, tg__axis(at->axis, x->ndim));
}

static int softmax_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                         tg_desc *out) {
    const char *op = tp->current_op;
    const softmax_attr *at = attr;
    const tg_tensor *x = in[0];
    char s[160];
    if (tg_infer_same_as_input0(tp, n_in, in, attr, out)) return -1;
    if (tg__axis(at->axis, x->ndim) < 0)
        return tg_fail(tp, TG_ERR_AXIS, op, "axis %d out of range for %s", at->axis,
                       tg_shape_str(x, s, sizeof s));
    return 0;
}

/* ---- kernels ----------------------------------------------------------------------------
 * For one element type T with its exp: the row forward and VJP (last axis), the lane
 * forward and VJP (w <= LANES lines at stride I), and the walkers over all lines. */
#define ROW_KERNELS(T)                                                                           \
    /* max_k x[k]: TG_VEC running maxima (a serial compare chain does not vectorise); a NaN      \
     * is skipped here and turns the line NaN through exp */                                     \
    TG_SIMD_CLONES static T row_max_##T(const T *x, int64_t L) {                                 \
        T part[TG_VEC], m = -INFINITY;                                                           \
        for (int l = 0; l < TG_VEC; l++) part[l] = -INFINITY;                                    \
        int64_t k = 0, body = tg_vec_body(L);                                                    \
        for (; k < body; k += TG_VEC) {                                                          \
            TG_PRAGMA_SIMD                                                                       \
            for (int l = 0; l < TG_VEC; l++) part[l] = x[k + l] > part[l] ? x[k + l] : part[l];  \
        }                                                                                        \
        for (; k < L; k++) m = x[k] > m ? x[k] : m;                                              \
        for (int l = 0; l < TG_VEC; l++) m = part[l] > m ? part[l] : m;                          \
        return m;                                                                                \
    }                                                                                            \
    /* y[k] = exp(x[k] - m), returning their sum. Two loops measured faster than one             \
     * (about 15% of the row forward at rows of 64): the vector exp call clobbers every          \
     * vector register, so a fused loop's partial sums go through the stack each time,           \
     * while tg__ew_sum reads y back from L1 */                                                  \
    TG_SIMD_CLONES static double row_exp_sum_##T(const T *x, T *y, T m, int64_t L) {             \
        TG_PRAGMA_SIMD                                                                           \
        for (int64_t k = 0; k < L; k++) y[k] = exp(x[k] - m);                                    \
        return tg__ew_sum(TG_DTYPE_OF(T), y, L);                                                 \
    }                                                                                            \
    /* sum_k dy[k] y[k] in TG_VEC double partials */                                             \
    __attribute__((optimize("no-tree-loop-distribute-patterns")))                                \
    TG_SIMD_CLONES static double row_dot_##T(const T *dy, const T *y, int64_t L) {               \
        double part[TG_VEC], s = 0;                                                              \
        for (int l = 0; l < TG_VEC; l++) part[l] = 0;                                            \
        int64_t k = 0, body = tg_vec_body(L);                                                    \
        for (; k < body; k += TG_VEC)                                                            \
            for (int l = 0; l < TG_VEC; l++) part[l] += (double)dy[k + l] * y[k + l];            \
        for (; k < L; k++) s += (double)dy[k] * y[k];                                            \
        return s + tg__fold_parts(part);                                                         \
    }                                                                                            \
    TG_SIMD_CLONES static void row_fwd_##T(const T *x, T *y, int64_t L, bool log_out) {          \
        T m = row_max_##T(x, L);                                                                 \
        double s = row_exp_sum_##T(x, y, m, L);                                                  \
        T ls = (T)log(s), r = (T)(1 / s);                                                        \
        if (log_out) {                                                                           \
            TG_PRAGMA_SIMD                                                                       \
            for (int64_t k = 0; k < L; k++) y[k] = (x[k] - m) - ls;                              \
        } else {                                                                                 \
            TG_PRAGMA_SIMD                                                                       \
            for (int64_t k = 0; k < L; k++) y[k] *= r;                                           \
        }                                                                                        \
    }                                                                                            \
    /* fresh: dx is uninitialised and is written, else added into */                             \
    TG_SIMD_CLONES static void row_vjp_##T(const T *y, const T *dy, T *dx, int64_t L,            \
                                           bool log_out, bool fresh) {                           \
        double s = 0;                                                                            \
        if (log_out) {                                                                           \
            s = tg__ew_sum(TG_DTYPE_OF(T), dy, L);                                               \
            if (fresh) {                                                                         \
                TG_PRAGMA_SIMD                                                                   \
                for (int64_t k = 0; k < L; k++) dx[k] = dy[k] - exp(y[k]) * (T)s;                \
            } else {                                                                             \
                TG_PRAGMA_SIMD                                                                   \
                for (int64_t k = 0; k < L; k++) dx[k] += dy[k] - exp(y[k]) * (T)s;               \
            }                                                                                    \
            return;                                                                              \
        }                                                                                        \
        s = row_dot_##T(dy, y, L);                                                               \
        if (fresh) {                                                                             \
            TG_PRAGMA_SIMD                                                                       \
            for (int64_t k = 0; k < L; k++) dx[k] = y[k] * (dy[k] - (T)s);                       \
        } else {                                                                                 \
            TG_PRAGMA_SIMD                                                                       \
            for (int64_t k = 0; k < L; k++) dx[k] += y[k] * (dy[k] - (T)s);                      \
        }                                                                                        \
    }

/* Lanes: line j (0 <= j < w) has its element k at x[k*S + j] (S, the line stride, is I). */
#define LANE_KERNELS(T)                                                                          \
    static void lane_fwd_##T(const T *x, T *y, int64_t L, int64_t S, int w, bool log_out) {      \
        T m[LANES];                                                                              \
        double s[LANES];                                                                         \
        for (int j = 0; j < w; j++) {                                                            \
            m[j] = -INFINITY;                                                                    \
            s[j] = 0;                                                                            \
        }                                                                                        \
        for (int64_t k = 0; k < L; k++)                                                          \
            for (int j = 0; j < w; j++) m[j] = x[k * S + j] > m[j] ? x[k * S + j] : m[j];        \
        for (int64_t k = 0; k < L; k++)                                                          \
            for (int j = 0; j < w; j++) {                                                        \
                T e = exp(x[k * S + j] - m[j]);                                                  \
                y[k * S + j] = e;                                                                \
                s[j] += e;                                                                       \
            }                                                                                    \
        for (int j = 0; j < w; j++) s[j] = log_out ? log(s[j]) : 1 / s[j];                       \
        for (int64_t k = 0; k < L; k++)                                                          \
            for (int j = 0; j < w; j++) {                                                        \
                int64_t at = k * S + j;                                                          \
                y[at] = log_out ? (x[at] - m[j]) - (T)s[j] : y[at] * (T)s[j];                    \
            }                                                                                    \
    }                                                                                            \
    static void lane_vjp_##T(const T *y, const T *dy, T *dx, int64_t L, int64_t S, int w,        \
                             bool log_out) {                                                     \
        double s[LANES] = {0};                                                                   \
        for (int64_t k = 0; k < L; k++)                                                          \
            for (int j = 0; j < w; j++)                                                          \
                s[j] += log_out ? dy[k * S + j] : (double)dy[k * S + j] * y[k * S + j];          \
        for (int64_t k = 0; k < L; k++)                                                          \
            for (int j = 0; j < w; j++) {                                                        \
                int64_t at = k * S + j;                                                          \
                dx[at] += log_out ? dy[at] - exp(y[at]) * (T)s[j] : y[at] * (dy[at] - (T)s[j]);  \
            }                                                                                    \
    }

/* Walk the O*I lines: rows when I == 1, else blocks of up to LANES lines;
 * the O outer blocks are independent, so nt threads share them. */
#define WALKERS(T)                                                                               \
    static void fwd_##T(const T *x, T *y, tg_geom g, bool log_out, int nt) {                     \
        (void)nt;                                                                                \
        TG_OMP_FOR_NT                                                                            \
        for (int64_t o = 0; o < g.outer; o++) {                                                  \
            int64_t base = o * g.len * g.inner;                                                  \
            if (g.inner == 1) {                                                                  \
                row_fwd_##T(x + base, y + base, g.len, log_out);                                 \
                continue;                                                                        \
            }                                                                                    \
            for (int64_t i = 0; i < g.inner; i += LANES) {                                       \
                int w = (int)(g.inner - i < LANES ? g.inner - i : LANES);                        \
                lane_fwd_##T(x + base + i, y + base + i, g.len, g.inner, w, log_out);            \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
    static void vjp_##T(const T *y, const T *dy, T *dx, tg_geom g, bool log_out, bool fresh,     \
                        int nt) {                                                                \
        (void)nt;                                                                                \
        TG_OMP_FOR_NT                                                                            \
        for (int64_t o = 0; o < g.outer; o++) {                                                  \
            int64_t base = o * g.len * g.inner;                                                  \
            if (g.inner == 1) {                                                                  \
                row_vjp_##T(y + base, dy + base, dx + base, g.len, log_out, fresh);              \
                continue;                                                                        \
            }                                                                                    \
            for (int64_t i = 0; i < g.inner; i += LANES) {                                       \
                int w = (int)(g.inner - i < LANES ? g.inner - i : LANES);                        \
                lane_vjp_##T(y + base + i, dy + base + i, dx + base + i, g.len, g.inner, w,      \
                             log_out);                                                           \
            }                                                                                    \
        }                                                                                        \
    }

TG_STAMP_FLOAT(ROW_KERNELS)
TG_STAMP_FLOAT(LANE_KERNELS)
TG_STAMP_FLOAT(WALKERS)

/* ---- forward and vjp ------------------------------------------------------------------------ */
static int forward_as(tg_node *n, bool log_out) {
    tg_tensor *x = n->in[0], *y = n->out;
    tg_geom g = geom_of(x, n->attr);
    int nt = g.outer > 1 ? tg_threads_for(n->tape, x->numel) : 1;
    TG_BY_DTYPE(x->dtype, fwd, x->data, y->data, g, log_out, nt);
    return 0;
}

static int vjp_as(tg_node *n, bool log_out) {
    tg_tensor *x = n->in[0], *y = n->out;
    bool fresh;
    void *dx = tg_input_grad_fresh(n, 0, &fresh);
    if (!dx) return 0;
    tg_geom g = geom_of(x, n->attr);
    if (fresh && g.inner != 1) { /* lanes accumulate: start from zeros */
        memset(dx, 0, (size_t)x->numel * tg_dtype_size(x->dtype));
        fresh = false;
    }
    int nt = g.outer > 1 ? tg_threads_for(n->tape, x->numel) : 1;
    TG_BY_DTYPE(x->dtype, vjp, y->data, tg_output_grad(n), dx, g, log_out, fresh, nt);
    return 0;
}

static int softmax_forward(tg_node *n) { return forward_as(n, false); }
static int softmax_vjp(tg_node *n) { return vjp_as(n, false); }
static int log_softmax_forward(tg_node *n) { return forward_as(n, true); }
static int log_softmax_vjp(tg_node *n) { return vjp_as(n, true); }

/* ---- as ops, for tg_grad (op.h's vjp_graph) ------------------------------------------------
 * softmax:      dx = y * (dy - sum(dy * y))       (sums along the axis, kept)
 * log_softmax:  dx = dy - exp(y) * sum(dy)  */
static int softmax_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    tg_tape *tp = n->tape;
    tg_tensor *y = n->out;
    int ax = ((const softmax_attr *)n->attr)->axis;
    if (want[0]) dx[0] = tg_mul(tp, y, tg_sub(tp, g, tg_sum_axis(tp, tg_mul(tp, g, y), ax, true)));
    return 0;
}

static int log_softmax_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    tg_tape *tp = n->tape;
    int ax = ((const softmax_attr *)n->attr)->axis;
    if (want[0])
        dx[0] = tg_sub(tp, g, tg_mul(tp, tg_exp(tp, n->out), tg_sum_axis(tp, g, ax, true)));
    return 0;
}

/* ---- descriptors and public wrappers -------------------------------------------------------- */
static const tg_op softmax_op = {.name = "softmax", .n_in = 1, .attr_size = sizeof(softmax_attr),
                                 .infer = softmax_infer, .forward = softmax_forward,
                                 .vjp = softmax_vjp, .vjp_graph = softmax_vjp_graph};
static const tg_op log_softmax_op = {.name = "log_softmax", .n_in = 1,
                                     .attr_size = sizeof(softmax_attr), .infer = softmax_infer,
                                     .forward = log_softmax_forward, .vjp = log_softmax_vjp,
                                     .vjp_graph = log_softmax_vjp_graph};

tg_tensor *tg_softmax(tg_tape *tp, tg_tensor *x, int axis) {
    softmax_attr at = {axis};
    return tg_apply(tp, &softmax_op, 1, &x, &at);
}

tg_tensor *tg_log_softmax(tg_tape *tp, tg_tensor *x, int axis) {
    softmax_attr at = {axis};
    return tg_apply(tp, &log_softmax_op, 1, &x, &at);
}
