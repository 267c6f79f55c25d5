/* ops/loss.c - losses with scalar results (shape [], ndim 0).
 *
 * mse:            pred [...], target [...] (same shape)
 *                 L = mean((p - t)^2);  dp += 2 (p - t) g / N,  dt -= the same
 * bce_with_logits: x [...], t [...] (same shape, t float, soft labels allowed)
 *                 l = max(x,0) - x t + log1p(exp(-|x|))  (no overflow for any x)
 *                 L = mean(l);  dx += (sigmoid(x) - t) g / N,  dt += -x g / N
 * cross_entropy:  logits [..., C], target int32 [...]; rows with target ==
 *                 ignore_index are skipped, M = number of other rows
 *                 L = (1/M) sum_r (logsumexp(x_r) - x_r[t_r]),  0 when M == 0
 *                 dx_r += (softmax(x_r) - onehot(t_r)) g / M
 * Sums are accumulated in double for both dtypes. Targets of bce are not
 * range-checked: the formula stays defined outside [0,1] (as in PyTorch). */
#include "kernels.h"

#include <string.h>
#include <tgmath.h>

/* ---- shared checks --------------------------------------------------------------- */
/* a and b float of one dtype and one shape, not empty (a mean over nothing). */
static int same_shape_infer(tg_tape *tp, const char *op, tg_tensor *const *in, tg_desc *out) {
    const tg_tensor *a = in[0], *b = in[1];
    if (tg_check_float(tp, op, a) || tg_check_float(tp, op, b)) return -1;
    bool dtype_ok = a->dtype == b->dtype, shape_ok = a->ndim == b->ndim &&
        !memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]);
    if (dtype_ok && shape_ok && a->numel > 0) {
        out->dtype = a->dtype;
        out->ndim = 0;
        return 0;
    }
    char sa[160], sb[160]; /* formatted only here, off the hot path */
    tg_shape_str(a, sa, sizeof sa);
    tg_shape_str(b, sb, sizeof sb);
    if (!dtype_ok)
        return tg_fail(tp, TG_ERR_DTYPE, op, "dtypes differ: %s %s vs target %s %s",
                       tg_dtype_name(a->dtype), sa, tg_dtype_name(b->dtype), sb);
    if (!shape_ok) return tg_fail(tp, TG_ERR_SHAPE, op, "shapes differ: %s vs target %s", sa, sb);
    return tg_fail(tp, TG_ERR_SHAPE, op, "mean of an empty input: %s", sa);
}

static int mse_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                     tg_desc *out) {
    (void)n_in;
    (void)attr;
    return same_shape_infer(tp, "mse", in, out);
}

static int bce_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                     tg_desc *out) {
    (void)n_in;
    (void)attr;
    return same_shape_infer(tp, "bce_with_logits", in, out);
}

/* ---- loops, stamped for float and double ---------------------------------------- */
#define LOSS_LOOPS(T)                                                                            \
    static double mse_fwd_##T(const T *p, const T *t, int64_t n) {                               \
        double s = 0;                                                                            \
        for (int64_t i = 0; i < n; i++) s += ((double)p[i] - t[i]) * ((double)p[i] - t[i]);      \
        return s / (double)n;                                                                    \
    }                                                                                            \
    /* dp and dt may be NULL (no gradient wanted) */                                             \
    static void mse_vjp_##T(const T *p, const T *t, T *dp, T *dt, int64_t n, double g) {         \
        T c = (T)(2 * g / (double)n);                                                            \
        for (int64_t i = 0; i < n; i++) {                                                        \
            T r = c * (p[i] - t[i]);                                                             \
            if (dp) dp[i] += r;                                                                  \
            if (dt) dt[i] -= r;                                                                  \
        }                                                                                        \
    }                                                                                            \
    static double bce_fwd_##T(const T *x, const T *t, int64_t n) {                               \
        double s = 0;                                                                            \
        for (int64_t i = 0; i < n; i++)                                                          \
            s += (x[i] > 0 ? x[i] : 0) - x[i] * t[i] + log1p(exp(-fabs(x[i])));                 \
        return s / (double)n;                                                                    \
    }                                                                                            \
    static void bce_vjp_##T(const T *x, const T *t, T *dx, T *dt, int64_t n, double g) {         \
        T c = (T)(g / (double)n);                                                                \
        for (int64_t i = 0; i < n; i++) {                                                        \
            /* sigmoid with exp of a non-positive number only */                                 \
            T e = exp(-fabs(x[i])), sig = x[i] >= 0 ? 1 / (1 + e) : e / (1 + e);                 \
            if (dx) dx[i] += c * (sig - t[i]);                                                   \
            if (dt) dt[i] -= c * x[i];                                                           \
        }                                                                                        \
    }                                                                                            \
    /* logsumexp of one row, max-shifted */                                                      \
    static double lse_##T(const T *x, int64_t C) {                                               \
        T m = x[0];                                                                              \
        for (int64_t c = 1; c < C; c++) m = x[c] > m ? x[c] : m;                                 \
        double s = 0;                                                                            \
        for (int64_t c = 0; c < C; c++) s += exp(x[c] - m);                                      \
        return m + log(s);                                                                       \
    }                                                                                            \
    /* returns the summed loss; lse[r] is kept for the VJP */                                    \
    /* rows on nt threads; the loss summed after, in row order */                               \
    static double ce_fwd_##T(const T *x, const int32_t *t, int64_t R, int64_t C, int32_t ign,    \
                             double *lse, int nt) {                                              \
        (void)nt;                                                                                \
        TG_OMP_FOR_NT                                                                            \
        for (int64_t r = 0; r < R; r++)                                                          \
            if (t[r] != ign) lse[r] = lse_##T(x + r * C, C);                                     \
        double s = 0;                                                                            \
        for (int64_t r = 0; r < R; r++)                                                          \
            if (t[r] != ign) s += lse[r] - x[r * C + t[r]];                                      \
        return s;                                                                                \
    }                                                                                            \
    static void ce_vjp_##T(const T *x, const int32_t *t, T *dx, int64_t R, int64_t C,            \
                           int32_t ign, const double *lse, double gm, int nt) {                  \
        (void)nt;                                                                                \
        TG_OMP_FOR_NT                                                                            \
        for (int64_t r = 0; r < R; r++) {                                                        \
            if (t[r] == ign) continue;                                                           \
            for (int64_t c = 0; c < C; c++)                                                      \
                dx[r * C + c] += (T)(gm * (exp((double)x[r * C + c] - lse[r]) - (c == t[r])));   \
        }                                                                                        \
    }

TG_STAMP_FLOAT(LOSS_LOOPS)

/* ---- mse ------------------------------------------------------------------------- */
static int mse_forward(tg_node *n) {
    tg_tensor *p = n->in[0], *t = n->in[1];
    double v = TG_BY_DTYPE_EXPR(p->dtype, mse_fwd, p->data, t->data, p->numel);
    tg_tensor_set(n->out, 0, v);
    return 0;
}

static int mse_vjp(tg_node *n) {
    tg_tensor *p = n->in[0], *t = n->in[1];
    double g = tg_tensor_grad_get(n->out, 0);
    void *dp = tg_input_grad(n, 0), *dt = tg_input_grad(n, 1);
    TG_BY_DTYPE(p->dtype, mse_vjp, p->data, t->data, dp, dt, p->numel, g);
    return 0;
}

/* For tg_grad: dpred = dy * 2 (pred - target) / N, dtarget = -dpred. */
static int mse_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    tg_tape *tp = n->tape;
    tg_tensor *p = n->in[0];
    double k = p->numel ? 2.0 / (double)p->numel : 0;
    tg_tensor *dp = tg_mul(tp, tg_scale(tp, tg_sub(tp, p, n->in[1]), k), g);
    if (want[0]) dx[0] = dp;
    if (want[1]) dx[1] = tg_neg(tp, dp);
    return 0;
}

static const tg_op mse_op = {
    .name = "mse",
    .n_in = 2,
    .infer = mse_infer,
    .forward = mse_forward,
    .vjp = mse_vjp,
    .vjp_graph = mse_vjp_graph,
};

tg_tensor *tg_mse(tg_tape *tp, tg_tensor *pred, tg_tensor *target) {
    tg_tensor *in[2] = {pred, target};
    return tg_apply(tp, &mse_op, 2, in, NULL);
}

/* ---- bce_with_logits --------------------------------------------------------------- */
static int bce_forward(tg_node *n) {
    tg_tensor *x = n->in[0], *t = n->in[1];
    double v = TG_BY_DTYPE_EXPR(x->dtype, bce_fwd, x->data, t->data, x->numel);
    tg_tensor_set(n->out, 0, v);
    return 0;
}

static int bce_vjp(tg_node *n) {
    tg_tensor *x = n->in[0], *t = n->in[1];
    double g = tg_tensor_grad_get(n->out, 0);
    void *dx = tg_input_grad(n, 0), *dt = tg_input_grad(n, 1);
    TG_BY_DTYPE(x->dtype, bce_vjp, x->data, t->data, dx, dt, x->numel, g);
    return 0;
}

/* For tg_grad: dx = dy (sigmoid(x) - t) / N, dt = -dy x / N. */
static int bce_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    tg_tape *tp = n->tape;
    tg_tensor *x = n->in[0], *t = n->in[1];
    double k = x->numel ? 1.0 / (double)x->numel : 0;
    if (want[0]) dx[0] = tg_mul(tp, tg_scale(tp, tg_sub(tp, tg_sigmoid(tp, x), t), k), g);
    if (want[1]) dx[1] = tg_mul(tp, tg_scale(tp, x, -k), g);
    return 0;
}

static const tg_op bce_op = {
    .name = "bce_with_logits",
    .n_in = 2,
    .infer = bce_infer,
    .forward = bce_forward,
    .vjp = bce_vjp,
    .vjp_graph = bce_vjp_graph,
};

tg_tensor *tg_bce_with_logits(tg_tape *tp, tg_tensor *logits, tg_tensor *target) {
    tg_tensor *in[2] = {logits, target};
    return tg_apply(tp, &bce_op, 2, in, NULL);
}

/* ---- cross_entropy ------------------------------------------------------------------- */
typedef struct ce_attr { int32_t ignore_index; } ce_attr;

/* Node scratch: the number of counted rows, then logsumexp per row. */
typedef struct ce_scratch {
    int64_t counted;
    double lse[];
} ce_scratch;

static int ce_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                    tg_desc *out) {
    (void)n_in;
    (void)attr;
    const tg_tensor *x = in[0], *t = in[1];
    char sx[160], st[160]; /* formatted only on an error */
    if (tg_check_float(tp, "cross_entropy", x)) return -1;
    if (t->dtype != TG_I32)
        return tg_fail(tp, TG_ERR_DTYPE, "cross_entropy", "target must be int32, got %s %s",
                       tg_dtype_name(t->dtype), tg_shape_str(t, st, sizeof st));
    if (x->ndim < 1 || t->ndim != x->ndim - 1 ||
        memcmp(x->shape, t->shape, (size_t)t->ndim * sizeof t->shape[0]))
        return tg_fail(tp, TG_ERR_SHAPE, "cross_entropy",
                       "target shape must be logits shape without the class axis: "
                       "logits %s target %s",
                       tg_shape_str(x, sx, sizeof sx), tg_shape_str(t, st, sizeof st));
    if (x->shape[x->ndim - 1] < 1)
        return tg_fail(tp, TG_ERR_SHAPE, "cross_entropy", "no classes: logits %s",
                       tg_shape_str(x, sx, sizeof sx));
    out->dtype = x->dtype;
    out->ndim = 0;
    return 0;
}

static int ce_forward(tg_node *n) {
    const ce_attr *at = n->attr;
    tg_tensor *x = n->in[0], *t = n->in[1];
    const int32_t *tv = t->data;
    int64_t C = x->shape[x->ndim - 1], R = t->numel, counted = 0;
    for (int64_t r = 0; r < R; r++) {
        if (tv[r] == at->ignore_index) continue;
        if (tv[r] < 0 || tv[r] >= C)
            return tg_fail(n->tape, TG_ERR_INDEX, "cross_entropy",
                           "target %d out of range [0,%lld) at position %lld (ignore_index %d)",
                           (int)tv[r], (long long)C, (long long)r, (int)at->ignore_index);
        counted++;
    }
    ce_scratch *s = tg_node_scratch(n, sizeof *s + (size_t)R * sizeof s->lse[0]);
    if (!s) return -1;
    s->counted = counted;
    int nt = tg_threads_for(n->tape, x->numel);
    double sum = TG_BY_DTYPE_EXPR(x->dtype, ce_fwd, x->data, tv, R, C, at->ignore_index, s->lse, nt);
    tg_tensor_set(n->out, 0, counted ? sum / (double)counted : 0.0);
    return 0;
}

static int ce_vjp(tg_node *n) {
    const ce_attr *at = n->attr;
    tg_tensor *x = n->in[0], *t = n->in[1];
    const ce_scratch *s = n->scratch;
    void *dx = tg_input_grad(n, 0);
    if (!dx || s->counted == 0) return 0; /* all ignored: the gradient stays 0 */
    int64_t C = x->shape[x->ndim - 1];
    double gm = tg_tensor_grad_get(n->out, 0) / (double)s->counted;
    int nt = tg_threads_for(n->tape, x->numel);
    TG_BY_DTYPE(x->dtype, ce_vjp, x->data, t->data, dx, t->numel, C, at->ignore_index, s->lse, gm,
                nt);
    return 0;
}

/* For tg_grad: dlogits = dy (softmax(logits) keep - onehot) / counted, where
 * keep (1 per counted row) and onehot are constants from the target. */
static int ce_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    const ce_attr *at = n->attr;
    const ce_scratch *s = n->scratch;
    tg_tape *tp = n->tape;
    tg_tensor *x = n->in[0], *t = n->in[1];
    if (!want[0] || s->counted == 0) return 0;   /* all ignored: zero, as the first order */
    int64_t C = x->shape[x->ndim - 1], keep_shape[TG_MAX_DIMS];
    memcpy(keep_shape, x->shape, sizeof keep_shape);
    keep_shape[x->ndim - 1] = 1;
    tg_tensor *hot = tg_tape_tensor(tp, x->dtype, x->ndim, x->shape);
    tg_tensor *keep = tg_tape_tensor(tp, x->dtype, x->ndim, keep_shape);
    const int32_t *tv = t->data;
    for (int64_t r = 0; hot && keep && r < t->numel; r++) {
        if (tv[r] == at->ignore_index) continue;
        tg_tensor_set(hot, r * C + tv[r], 1.0);
        tg_tensor_set(keep, r, 1.0);
    }
    tg_tensor *p = tg_mul(tp, tg_softmax(tp, x, -1), keep);
    dx[0] = tg_mul(tp, tg_scale(tp, tg_sub(tp, p, hot), 1.0 / (double)s->counted), g);
    return 0;
}

static const tg_op cross_entropy_op = {
    .name = "cross_entropy",
    .n_in = 2,
    .attr_size = sizeof(ce_attr),
    .infer = ce_infer,
    .forward = ce_forward,
    .vjp = ce_vjp,
    .vjp_graph = ce_vjp_graph,
};

tg_tensor *tg_cross_entropy_ex(tg_tape *tp, tg_tensor *logits, tg_tensor *target,
                               int32_t ignore_index) {
    ce_attr at = {ignore_index};
    tg_tensor *in[2] = {logits, target};
    return tg_apply(tp, &cross_entropy_op, 2, in, &at);
}

tg_tensor *tg_cross_entropy(tg_tape *tp, tg_tensor *logits, tg_tensor *target) {
    return tg_cross_entropy_ex(tp, logits, target, -100);
}
