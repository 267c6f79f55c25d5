/* autograd/anomaly.c - anomaly mode: the first NaN or Inf an op makes, forward
 * or backward, stops the tape with an error that names the op, its shapes,
 * the direction and the user's line (tapegrad/inspect.h).
 *
 * Called from the hooks in tools.c only while the tape's anomaly mode is on.
 * An unfused op is checked after its forward and after its VJP. A fused group
 * stores every value in anomaly mode (tools.h: tg__tools_store_all), so after
 * it ran each value is checked in recorded order and the first bad one names
 * the node that made it; in backward it dissolves (fuse.c) and its members'
 * VJPs run and are checked one by one, as with fusion off. */
#include "tools.h"

#include <math.h>
#include <stdio.h>

/* Whether a row holds NaN or Inf: an all-ones exponent, tested on the bits
 * with an OR over the row, which the compiler vectorizes (isfinite per
 * element in a loop that stops at the first does not). */
static bool row_bad(const void *p, tg_dtype dt, int64_t n) {
    uint32_t any = 0;
    if (dt == TG_F32) {
        const uint32_t *u = p;
        for (int64_t i = 0; i < n; i++) any |= (u[i] & 0x7f800000u) == 0x7f800000u;
    } else {
        const uint64_t *u = p;
        for (int64_t i = 0; i < n; i++)
            any |= (u[i] & 0x7ff0000000000000ull) == 0x7ff0000000000000ull;
    }
    return any != 0;
}

/* The first element of a [rows, cols] window at row stride ld that is NaN or
 * Inf, as an offset from p; -1 when all are finite. */
static int64_t first_bad(const void *p, tg_dtype dt, int64_t rows, int64_t cols, int64_t ld) {
    size_t es = tg_dtype_size(dt);
    for (int64_t r = 0; r < rows; r++) {
        const char *row = (const char *)p + (size_t)(r * ld) * es;
        if (!row_bad(row, dt, cols)) continue;
        for (int64_t c = 0; c < cols; c++)
            if (!isfinite(dt == TG_F32 ? (double)((const float *)row)[c]
                                       : ((const double *)row)[c]))
                return r * ld + c;
    }
    return -1;
}

static double element(const void *p, tg_dtype dt, int64_t i) {
    return dt == TG_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

/* "cell.c:42", or what is known when the op was not recorded from user code. */
static const char *site_str(tg__site s, char *buf, size_t size) {
    if (!s.file) return "at an unknown line (not called through tapegrad's headers)";
    snprintf(buf, size, "at %s:%d", s.file, s.line);
    return buf;
}

static int report_forward(tg_tape *tp, const char *op, int n_in, tg_tensor *const *in,
                          const tg_tensor *out, int64_t bad, tg__site site) {
    char so[160], si[400], at[600];
    return tg_fail(tp, TG_ERR_NUMERIC, op,
                   "anomaly in forward: %g at element %lld of the output %s (inputs %s), called %s",
                   element(out->data, out->dtype, bad), (long long)bad,
                   tg_shape_str(out, so, sizeof so),
                   tg__inputs_str(n_in, in, si, sizeof si),
                   site_str(site, at, sizeof at));
}

static int report_backward(tg_tape *tp, const char *op, int input, const tg_tensor *x,
                           int64_t bad, tg__site site) {
    char sx[160], at[600];
    return tg_fail(tp, TG_ERR_NUMERIC, op,
                   "anomaly in backward: %g at element %lld of the gradient of input %d %s, "
                   "called %s",
                   element(x->grad, x->dtype, bad), (long long)bad, input,
                   tg_shape_str(x, sx, sizeof sx), site_str(site, at, sizeof at));
}

int tg__anomaly_forward(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                        const tg_tensor *out) {
    if (!tg__is_float(out->dtype)) return 0;
    int64_t bad = first_bad(out->data, out->dtype, 1, out->numel, out->numel);
    if (bad < 0) return 0;
    tg__site site = out->node >= 0 ? tg__node_site(tp, out->node) : tg__site_now();
    if (!site.file) site = tg__site_now();
    return report_forward(tp, op->name, n_in, in, out, bad, site);
}

/* The rows of x's gradient that hold values: all, or those written so far
 * by row blocks (tg__grad_rows). */
static int64_t grad_first_bad(const tg_tensor *x) {
    int64_t cols = x->ndim ? x->shape[x->ndim - 1] : 1;
    int64_t lo = 0, hi = cols ? x->numel / cols : 0;
    if (x->grad_lo < x->grad_hi) lo = x->grad_lo, hi = x->grad_hi;
    const char *base = (const char *)x->grad + (size_t)(lo * cols) * tg_dtype_size(x->dtype);
    int64_t bad = first_bad(base, x->dtype, hi - lo, cols, cols);
    return bad < 0 ? -1 : bad + lo * cols;
}

int tg__anomaly_vjp(tg_tape *tp, const tg_node *n) {
    for (int i = 0; i < n->n_in; i++) {
        tg_tensor *x = n->in[i];
        if (!x->requires_grad || !x->grad || !tg__is_float(x->dtype)) continue;
        /* a matmul may have deferred its part (ops/gemm_defer.c): run it, so
         * what is checked is what this VJP gave */
        tg__flush_deferred(tp, x->grad);
        int64_t bad = grad_first_bad(x);
        if (bad >= 0)
            return report_backward(tp, n->op->name, i, x, bad, tg__node_site(tp, n->out->node));
    }
    return 0;
}

int tg__anomaly_group_forward(tg_tape *tp, const fz_group *g) {
    for (int i = 0; i < g->n_values; i++) {
        const fz_value *v = &g->v[i];
        const tg_tensor *t = v->t;
        if (!t || !t->data || !tg__is_float(t->dtype)) continue;
        int64_t bad = first_bad(t->data, t->dtype, 1, t->numel, t->numel);
        if (bad < 0) continue;
        tg__site site = v->recorded ? tg__node_site(tp, t->node) : (tg__site){0};
        return report_forward(tp, v->op->name, v->n_in, v->in, t, bad, site);
    }
    return 0;
}
