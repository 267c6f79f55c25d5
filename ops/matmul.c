/* ops/matmul.c - matrix product, 2-D and batched.
 *
 * a [..., M, K] x b [..., K, N] -> c [..., M, N]   (with trans flags on the
 * stored matrices). Leading (batch) dims must match, or b is 2-D and shared;
 * in that case, without trans_a, the whole batch is one GEMM of (batch*M) rows.
 * VJP: da = dc op(b)^T, db = op(a)^T dc, mapped back through the flags. */
#include "gemm_internal.h"

#include <string.h>

typedef struct matmul_attr { bool trans_a, trans_b; } matmul_attr;

typedef struct mm_dims {
    int64_t batch, m, n, k;
    bool b_shared;          /* b is 2-D, used by every batch entry */
} mm_dims;

static mm_dims dims_of(const tg_tensor *a, const tg_tensor *b, const matmul_attr *at) {
    mm_dims d;
    int an = a->ndim, bn = b->ndim;
    d.m = at->trans_a ? a->shape[an - 1] : a->shape[an - 2];
    d.k = at->trans_a ? a->shape[an - 2] : a->shape[an - 1];
    d.n = at->trans_b ? b->shape[bn - 2] : b->shape[bn - 1];
    d.batch = tg__numel(an - 2, a->shape);
    d.b_shared = bn == 2;
    return d;
}

/* "<what>: [2,3]^T x [4,5]": shapes are formatted only when there is an error. */
static int matmul_fail(tg_tape *tp, const char *what, const tg_tensor *a, const tg_tensor *b,
                       const matmul_attr *at) {
    char sa[160], sb[160];
    return tg_fail(tp, TG_ERR_SHAPE, "matmul", "%s: %s%s x %s%s", what,
                   tg_shape_str(a, sa, sizeof sa), at && at->trans_a ? "^T" : "",
                   tg_shape_str(b, sb, sizeof sb), at && at->trans_b ? "^T" : "");
}

static int matmul_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                        tg_desc *out) {
    (void)n_in;
    const matmul_attr *at = attr;
    const tg_tensor *a = in[0], *b = in[1];
    if (tg_check_float_pair(tp, "matmul", a, b)) return -1;
    if (a->ndim < 2 || b->ndim < 2)
        return matmul_fail(tp, "needs at least 2-D operands", a, b, NULL);
    if (b->ndim > 2 && (b->ndim != a->ndim || memcmp(a->shape, b->shape,
                                                     (size_t)(a->ndim - 2) * sizeof(int64_t))))
        return matmul_fail(tp, "batch dimensions differ", a, b, NULL);
    mm_dims d = dims_of(a, b, at);
    int64_t kb = at->trans_b ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    if (d.k != kb) return matmul_fail(tp, "inner dimensions differ", a, b, at);
    out->dtype = a->dtype;
    out->ndim = a->ndim;
    memcpy(out->shape, a->shape, sizeof out->shape);
    out->shape[a->ndim - 2] = d.m;
    out->shape[a->ndim - 1] = d.n;
    return 0;
}

/* Stored row-major layouts: a is m x k (or k x m if trans), b likewise. */
static int64_t lda_of(const mm_dims *d, bool t) { return t ? d->m : d->k; }
static int64_t ldb_of(const mm_dims *d, bool t) { return t ? d->k : d->n; }

/* c [m, n] = op(A) op(B) + beta c where B is the data of the node's b, shared
 * by the batch. A recorded node's b stays as it is until tg_tape_reset, so when
 * it recurs (an RNN's W_hh, step after step) the product runs on b packed once
 * per recording (gemm_pack.c); otherwise through BLIS. `forward`: a forward
 * product, which counts as a use of b. */
static void product_on_b(tg_node *nd, bool forward, bool ta, bool tb, int64_t m, int64_t n,
                         int64_t k, const void *a, int64_t lda, int64_t ldb, double beta, void *c,
                         int64_t ldc) {
    tg_dtype dt = nd->out->dtype;
    const void *b = nd->in[1]->data;
    bool recorded = nd->out->node >= 0;
    if (recorded && tg__gemm_packed(nd->tape, forward, dt, ta, tb, m, n, k, a, lda, b, ldb, beta,
                                    c, ldc))
        return;
    tg_gemm(nd->tape, dt, ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

static int matmul_forward(tg_node *nd) {
    const matmul_attr *at = nd->attr;
    tg_tensor *a = nd->in[0], *b = nd->in[1], *c = nd->out;
    mm_dims d = dims_of(a, b, at);
    size_t es = tg_dtype_size(a->dtype);
    int64_t lda = lda_of(&d, at->trans_a), ldb = ldb_of(&d, at->trans_b);
    if (d.b_shared && !at->trans_a) { /* fold the batch into the rows */
        product_on_b(nd, true, false, at->trans_b, d.batch * d.m, d.n, d.k, a->data, lda, ldb,
                     0.0, c->data, d.n);
        return 0;
    }
    for (int64_t i = 0; i < d.batch; i++) {
        const char *ab = (const char *)a->data + (size_t)(i * d.m * d.k) * es;
        char *cb = (char *)c->data + (size_t)(i * d.m * d.n) * es;
        if (d.b_shared) {
            product_on_b(nd, true, at->trans_a, at->trans_b, d.m, d.n, d.k, ab, lda, ldb, 0.0, cb,
                         d.n);
            continue;
        }
        const char *bb = (const char *)b->data + (size_t)(i * d.k * d.n) * es;
        tg_gemm(nd->tape, a->dtype, at->trans_a, at->trans_b, d.m, d.n, d.k, 1.0, ab, lda, bb, ldb,
                0.0, cb, d.n);
    }
    return 0;
}

/* da += dc op(b)^T  (stored: a m x k) or, with trans_a, da += op(b) dc^T (stored k x m). */
static void grad_a(tg_node *nd, const mm_dims *d, const void *dc, const void *b, void *da,
                   double beta) {
    const matmul_attr *at = nd->attr;
    int64_t ldb = ldb_of(d, at->trans_b);
    if (!at->trans_a && d->b_shared && b == nd->in[1]->data)  /* b's other orientation */
        product_on_b(nd, false, false, !at->trans_b, d->m, d->k, d->n, dc, d->n, ldb, beta, da,
                     d->k);
    else if (!at->trans_a)
        tg_gemm(nd->tape, nd->out->dtype, false, !at->trans_b, d->m, d->k, d->n, 1.0, dc, d->n, b,
                ldb, beta, da, d->k);
    else
        tg_gemm(nd->tape, nd->out->dtype, at->trans_b, true, d->k, d->m, d->n, 1.0, b, ldb, dc,
                d->n, beta, da, d->m);
}

/* db += op(a)^T dc (stored k x n) or, with trans_b, db += dc^T op(a) (stored n x k). */
static void grad_b(tg_node *nd, const mm_dims *d, int64_t rows, const void *a, const void *dc,
                   void *db, double beta) {
    const matmul_attr *at = nd->attr;
    int64_t lda = lda_of(d, at->trans_a);
    if (!at->trans_b)
        tg_gemm(nd->tape, nd->out->dtype, !at->trans_a, false, d->k, d->n, rows, 1.0, a, lda, dc,
                d->n, beta, db, d->n);
    else
        tg_gemm(nd->tape, nd->out->dtype, true, at->trans_a, d->n, d->k, rows, 1.0, dc, d->n, a,
                lda, beta, db, d->k);
}

/* As grad_b over all rows of a folded product (a not transposed), left for
 * gemm_defer.c to merge with the other steps' contributions to the same
 * weight. db must hold valid values. false: not deferred (fusion off). */
static bool defer_grad_b(tg_node *nd, const mm_dims *all, const void *a, const void *dc,
                         void *db) {
    const matmul_attr *at = nd->attr;
    tg_dtype dt = nd->out->dtype;
    if (!at->trans_b)   /* db [k, n] += a^T dc */
        return tg__gemm_defer_xty(nd->tape, dt, all->k, all->n, all->m, a, all->k, dc, all->n, db);
    return tg__gemm_defer_xty(nd->tape, dt, all->n, all->k, all->m, dc, all->n, a, all->k, db);
}

/* db for a folded product: deferred when the engine may reorder sums (it
 * then needs db initialised, so a new one is zeroed), else one GEMM. */
static void fold_grad_b(tg_node *nd, const mm_dims *all, const void *a, const void *dc) {
    bool fresh;
    if (tg__fusion_enabled(nd->tape)) {
        void *db = tg_input_grad(nd, 1);
        if (db && !defer_grad_b(nd, all, a, dc, db)) grad_b(nd, all, all->m, a, dc, db, 1.0);
        return;
    }
    void *db = tg_input_grad_fresh(nd, 1, &fresh);
    if (db) grad_b(nd, all, all->m, a, dc, db, fresh ? 0.0 : 1.0);
}

/* A fresh (uninitialised) gradient is written with beta = 0 instead of being
 * zeroed and accumulated into. da is complete before db is asked for, since a
 * and b may be the same tensor. */
static int matmul_vjp(tg_node *nd) {
    const matmul_attr *at = nd->attr;
    tg_tensor *a = nd->in[0], *b = nd->in[1];
    mm_dims d = dims_of(a, b, at);
    size_t es = tg_dtype_size(a->dtype);
    const char *dc = tg_output_grad(nd);
    bool fresh;
    bool fold = d.b_shared && !at->trans_a; /* one GEMM each over all batch rows */
    mm_dims all = d;
    all.m = d.batch * d.m;
    char *da = tg_input_grad_fresh(nd, 0, &fresh);
    if (da && fold)
        grad_a(nd, &all, dc, b->data, da, fresh ? 0.0 : 1.0);
    for (int64_t i = 0; da && !fold && i < d.batch; i++) {
        size_t ao = (size_t)(i * d.m * d.k) * es, co = (size_t)(i * d.m * d.n) * es;
        size_t bo = d.b_shared ? 0 : (size_t)(i * d.k * d.n) * es;
        grad_a(nd, &d, dc + co, (const char *)b->data + bo, da + ao, fresh ? 0.0 : 1.0);
    }
    if (fold) {
        if (b->requires_grad) fold_grad_b(nd, &all, a->data, dc);
        return 0;
    }
    char *db = tg_input_grad_fresh(nd, 1, &fresh);
    for (int64_t i = 0; db && i < d.batch; i++) {
        size_t ao = (size_t)(i * d.m * d.k) * es, co = (size_t)(i * d.m * d.n) * es;
        size_t bo = d.b_shared ? 0 : (size_t)(i * d.k * d.n) * es;
        /* a shared b sums over the batch: only its first term may overwrite */
        bool overwrite = fresh && (!d.b_shared || i == 0);
        grad_b(nd, &d, d.m, (const char *)a->data + ao, dc + co, db + bo, overwrite ? 0.0 : 1.0);
    }
    return 0;
}

/* For tg_grad, with op(A) = A or A^T (likewise B), G = dC:
 *   d op(A) = G op(B)^T,  d op(B) = op(A)^T G,
 * transposed back where the stored operand is transposed; a 2-D b shared by
 * a batch gets the sum over the batch (sum_to). */
static int matmul_vjp_graph(tg_node *nd, tg_tensor *g, const bool *want, tg_tensor **dx) {
    const matmul_attr *at = nd->attr;
    tg_tape *tp = nd->tape;
    tg_tensor *a = nd->in[0], *b = nd->in[1];
    if (want[0]) {
        tg_matmul_opts o = {false, !at->trans_b};
        tg_tensor *da = tg_matmul_ex(tp, g, b, &o);
        dx[0] = at->trans_a ? tg_transpose(tp, da, -1, -2) : da;
    }
    if (want[1]) {
        tg_matmul_opts o = {!at->trans_a, false};
        tg_tensor *db = tg_matmul_ex(tp, a, g, &o);
        dx[1] = tg__gg_sum_to(tp, at->trans_b ? tg_transpose(tp, db, -1, -2) : db, b);
    }
    return 0;
}

static const tg_op matmul_op = {
    .name = "matmul",
    .n_in = 2,
    .attr_size = sizeof(matmul_attr),
    .infer = matmul_infer,
    .forward = matmul_forward,
    .vjp = matmul_vjp,
    .vjp_graph = matmul_vjp_graph,
};

tg_tensor *tg_matmul_ex(tg_tape *tp, tg_tensor *a, tg_tensor *b, const tg_matmul_opts *o) {
    matmul_attr at = {o ? o->trans_a : false, o ? o->trans_b : false};
    tg_tensor *in[2] = {a, b};
    return tg_apply(tp, &matmul_op, 2, in, &at);
}

tg_tensor *tg_matmul(tg_tape *tp, tg_tensor *a, tg_tensor *b) {
    return tg_matmul_ex(tp, a, b, NULL);
}
