/* ops/matmul.c - matrix product, 2-D and batched.
 *
 * a [..., M, K] x b [..., K, N] -> c [..., M, N]   (with trans flags on the
 * stored matrices). Leading (batch) dims must match, or b is 2-D and shared;
 * in that case, without trans_a, the whole batch is one GEMM of (batch*M) rows.
 * With heads = h (multi-head attention), a [B, T, h*d] operand is read as the
 * [B, h, T, d] of its heads and the result [B, h, M, N] may be written as
 * [B, M, h*N]: each (batch, head) matrix is a strided view BLIS reads in
 * place, so splitting and merging heads copies nothing.
 * VJP: da = dc op(b)^T, db = op(a)^T dc, mapped back through the flags. */
#include "gemm_internal.h"

#include <stdio.h>
#include <string.h>

typedef struct matmul_attr {
    bool trans_a, trans_b, merge_heads;
    int64_t heads;          /* 0: plain batched products */
} matmul_attr;

typedef struct mm_dims {
    int64_t batch, m, n, k;
    int64_t kb;             /* b's inner dimension: equal to k in a valid product */
    bool b_shared;          /* b is 2-D, used by every batch entry */
    tg__mat_view a, b, c;
} mm_dims;

/* The stored [rows, cols] of x's matrices and where each is (gemm_internal.h):
 * a plain [..., R, C], a 2-D operand (one matrix, shared by the batch when it
 * is b), or with heads a [B, T, h*d] read as [B, h, T, d]. */
static tg__mat_view operand_view(const tg_tensor *x, int64_t heads, int64_t *rows, int64_t *cols) {
    int nd = x->ndim;
    *rows = x->shape[nd - 2];
    *cols = x->shape[nd - 1];
    if (heads > 0 && nd == 3) {   /* [B, T, h*d] as [B, h, T, d] */
        *cols /= heads;
        return (tg__mat_view){heads, x->shape[1] * x->shape[2], *cols, x->shape[2]};
    }
    return (tg__mat_view){1, nd == 2 ? 0 : *rows * *cols, 0, *cols};
}

/* m, k, n and b's k, each bounded by its operand's size. */
static mm_dims sizes_of(const tg_tensor *a, const tg_tensor *b, const matmul_attr *at) {
    mm_dims d;
    int64_t ar, ac, br, bc, h = at->heads;
    d.a = operand_view(a, h, &ar, &ac);
    d.b = operand_view(b, h, &br, &bc);
    d.m = at->trans_a ? ac : ar;
    d.k = at->trans_a ? ar : ac;
    d.n = at->trans_b ? br : bc;
    d.kb = at->trans_b ? bc : br;
    return d;
}

/* Everything a kernel needs; the products here are exact once tg_apply has
 * bounded the result. */
static mm_dims dims_of(const tg_tensor *a, const tg_tensor *b, const matmul_attr *at) {
    mm_dims d = sizes_of(a, b, at);
    int64_t h = at->heads;
    d.batch = tg__numel(a->ndim - 2, a->shape) * (h > 0 && a->ndim == 3 ? h : 1);
    d.b_shared = b->ndim == 2;
    d.c = at->merge_heads ? (tg__mat_view){h, d.m * h * d.n, d.n, h * d.n}
                          : (tg__mat_view){1, d.m * d.n, 0, d.n};
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

/* With h heads each operand is [B, T, h*d] (heads side by side) or
 * [B, h, R, C], and both have the same B. */
static int heads_check(tg_tape *tp, const tg_tensor *a, const tg_tensor *b, const matmul_attr *at) {
    int64_t h = at->heads;
    const tg_tensor *x[2] = {a, b};
    bool ok = h > 0 && a->shape[0] == b->shape[0];
    for (int i = 0; ok && i < 2; i++)
        ok = x[i]->ndim == 3 ? x[i]->shape[2] % h == 0 : x[i]->ndim == 4 && x[i]->shape[1] == h;
    if (ok) {   /* the result [B, h, M, N] within bounds keeps every product in dims_of exact */
        int64_t ar, ac, br, bc;
        operand_view(a, h, &ar, &ac);
        operand_view(b, h, &br, &bc);
        int64_t res[4] = {a->shape[0], h, at->trans_a ? ac : ar, at->trans_b ? br : bc};
        const char *why;
        if (tg__checked_numel(4, res, &why) >= 0) return 0;
        return matmul_fail(tp, "per-head result would have more than 2^40 elements", a, b, at);
    }
    char what[96];
    snprintf(what, sizeof what, "with %lld heads operands must be [B, T, h*d] or [B, h, R, C]%s",
             (long long)h, at->merge_heads ? " (merged)" : "");
    return matmul_fail(tp, h > 0 ? what : "heads must be >= 0", a, b, NULL);
}

static int matmul_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                        tg_desc *out) {
    (void)n_in;
    const matmul_attr *at = attr;
    const tg_tensor *a = in[0], *b = in[1];
    if (tg_check_float_pair(tp, "matmul", a, b)) return -1;
    if (a->ndim < 2 || b->ndim < 2)
        return matmul_fail(tp, "needs at least 2-D operands", a, b, NULL);
    if (at->merge_heads && at->heads <= 0)
        return matmul_fail(tp, "merge_heads needs heads > 0", a, b, NULL);
    if (at->heads != 0) {
        if (heads_check(tp, a, b, at) < 0) return -1;
    } else if (b->ndim > 2 && (b->ndim != a->ndim ||
                               memcmp(a->shape, b->shape, (size_t)(a->ndim - 2) * sizeof(int64_t)))) {
        return matmul_fail(tp, "batch dimensions differ", a, b, NULL);
    }
    /* not dims_of: m*n may overflow until tg_apply has bounded the result
     * (e.g. [2^40, 0] x [0, 2^40], both operands empty) */
    mm_dims d = sizes_of(a, b, at);
    if (d.k != d.kb) return matmul_fail(tp, "inner dimensions differ", a, b, at);
    out->dtype = a->dtype;
    if (at->heads > 0) {   /* [B, h, M, N], merged [B, M, h*N] (h*N <= numel(b), no overflow) */
        out->ndim = at->merge_heads ? 3 : 4;
        int64_t merged[3] = {a->shape[0], d.m, at->heads * d.n};
        int64_t split[4] = {a->shape[0], at->heads, d.m, d.n};
        memcpy(out->shape, at->merge_heads ? merged : split, (size_t)out->ndim * sizeof(int64_t));
        return 0;
    }
    out->ndim = a->ndim;
    memcpy(out->shape, a->shape, sizeof out->shape);
    out->shape[a->ndim - 2] = d.m;
    out->shape[a->ndim - 1] = d.n;
    return 0;
}

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

/* z_i = op(x_i) op(y_i) + beta z_i for every batch entry i, each z_i its own
 * matrix: small products in one batch call (gemm_pack.c), else one GEMM each. */
static void batched(tg_node *nd, const mm_dims *d, bool tx, bool ty, int64_t m, int64_t n,
                    int64_t k, const void *x, const tg__mat_view *vx, const void *y,
                    const tg__mat_view *vy, double beta, void *z, const tg__mat_view *vz) {
    tg_dtype dt = nd->out->dtype;
    if (tg__gemm_batch_small(nd->tape, dt, tx, ty, m, n, k, d->batch, x, vx, y, vy, beta, z, vz))
        return;
    size_t es = tg_dtype_size(dt);
    for (int64_t i = 0; i < d->batch; i++)
        tg_gemm(nd->tape, dt, tx, ty, m, n, k, 1.0, (const char *)x + (size_t)tg__mat_at(vx, i) * es,
                vx->ld, (const char *)y + (size_t)tg__mat_at(vy, i) * es, vy->ld, beta,
                (char *)z + (size_t)tg__mat_at(vz, i) * es, vz->ld);
}

static int matmul_forward(tg_node *nd) {
    const matmul_attr *at = nd->attr;
    tg_tensor *a = nd->in[0], *b = nd->in[1], *c = nd->out;
    mm_dims d = dims_of(a, b, at);
    size_t es = tg_dtype_size(a->dtype);
    int64_t lda = d.a.ld, ldb = d.b.ld, ldc = d.c.ld;
    if (d.b_shared && !at->trans_a) { /* fold the batch into the rows */
        product_on_b(nd, true, false, at->trans_b, d.batch * d.m, d.n, d.k, a->data, lda, ldb,
                     0.0, c->data, ldc);
        return 0;
    }
    if (!d.b_shared) {
        batched(nd, &d, at->trans_a, at->trans_b, d.m, d.n, d.k, a->data, &d.a, b->data, &d.b,
                0.0, c->data, &d.c);
        return 0;
    }
    for (int64_t i = 0; i < d.batch; i++) {
        const char *ab = (const char *)a->data + (size_t)tg__mat_at(&d.a, i) * es;
        char *cb = (char *)c->data + (size_t)tg__mat_at(&d.c, i) * es;
        product_on_b(nd, true, at->trans_a, at->trans_b, d.m, d.n, d.k, ab, lda, ldb, 0.0, cb,
                     ldc);
    }
    return 0;
}

/* da += dc op(b)^T  (stored: a m x k) or, with trans_a, da += op(b) dc^T (stored k x m). */
static void grad_a(tg_node *nd, const mm_dims *d, const void *dc, const void *b, void *da,
                   double beta) {
    const matmul_attr *at = nd->attr;
    int64_t lda = d->a.ld, ldb = d->b.ld, ldc = d->c.ld;
    if (!at->trans_a && d->b_shared && b == nd->in[1]->data)  /* b's other orientation */
        product_on_b(nd, false, false, !at->trans_b, d->m, d->k, d->n, dc, ldc, ldb, beta, da,
                     lda);
    else if (!at->trans_a)
        tg_gemm(nd->tape, nd->out->dtype, false, !at->trans_b, d->m, d->k, d->n, 1.0, dc, ldc, b,
                ldb, beta, da, lda);
    else
        tg_gemm(nd->tape, nd->out->dtype, at->trans_b, true, d->k, d->m, d->n, 1.0, b, ldb, dc,
                ldc, beta, da, lda);
}

/* db += op(a)^T dc (stored k x n) or, with trans_b, db += dc^T op(a) (stored n x k). */
static void grad_b(tg_node *nd, const mm_dims *d, int64_t rows, const void *a, const void *dc,
                   void *db, double beta) {
    const matmul_attr *at = nd->attr;
    int64_t lda = d->a.ld, ldb = d->b.ld, ldc = d->c.ld;
    if (!at->trans_b)
        tg_gemm(nd->tape, nd->out->dtype, !at->trans_a, false, d->k, d->n, rows, 1.0, a, lda, dc,
                ldc, beta, db, ldb);
    else
        tg_gemm(nd->tape, nd->out->dtype, true, at->trans_a, d->n, d->k, rows, 1.0, dc, ldc, a,
                lda, beta, db, ldb);
}

/* grad_a and grad_b for every batch entry, each with its own b (batched). */
static void batched_grad_a(tg_node *nd, const mm_dims *d, const void *dc, const void *b, void *da,
                           double beta) {
    const matmul_attr *at = nd->attr;
    if (!at->trans_a)   /* da_i += dc_i op(b_i)^T */
        batched(nd, d, false, !at->trans_b, d->m, d->k, d->n, dc, &d->c, b, &d->b, beta, da, &d->a);
    else                /* da_i (stored k x m) += op(b_i) dc_i^T */
        batched(nd, d, at->trans_b, true, d->k, d->m, d->n, b, &d->b, dc, &d->c, beta, da, &d->a);
}

static void batched_grad_b(tg_node *nd, const mm_dims *d, const void *a, const void *dc, void *db,
                           double beta) {
    const matmul_attr *at = nd->attr;
    if (!at->trans_b)   /* db_i += op(a_i)^T dc_i */
        batched(nd, d, !at->trans_a, false, d->k, d->n, d->m, a, &d->a, dc, &d->c, beta, db, &d->b);
    else                /* db_i (stored n x k) += dc_i^T op(a_i) */
        batched(nd, d, true, at->trans_a, d->n, d->k, d->m, dc, &d->c, a, &d->a, beta, db, &d->b);
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
    else if (da && !d.b_shared)
        batched_grad_a(nd, &d, dc, b->data, da, fresh ? 0.0 : 1.0);
    for (int64_t i = 0; da && !fold && d.b_shared && i < d.batch; i++) {
        size_t ao = (size_t)tg__mat_at(&d.a, i) * es, co = (size_t)tg__mat_at(&d.c, i) * es;
        grad_a(nd, &d, dc + co, b->data, da + ao, fresh ? 0.0 : 1.0);
    }
    if (fold) {
        if (b->requires_grad) fold_grad_b(nd, &all, a->data, dc);
        return 0;
    }
    char *db = tg_input_grad_fresh(nd, 1, &fresh);
    if (db && !d.b_shared) {
        batched_grad_b(nd, &d, a->data, dc, db, fresh ? 0.0 : 1.0);
        return 0;
    }
    for (int64_t i = 0; db && i < d.batch; i++) {
        size_t ao = (size_t)tg__mat_at(&d.a, i) * es, co = (size_t)tg__mat_at(&d.c, i) * es;
        /* a shared b sums over the batch: only its first term may overwrite */
        grad_b(nd, &d, d.m, (const char *)a->data + ao, dc + co, db, fresh && i == 0 ? 0.0 : 1.0);
    }
    return 0;
}

/* For tg_grad, with op(A) = A or A^T (likewise B), G = dC:
 *   d op(A) = G op(B)^T,  d op(B) = op(A)^T G,
 * transposed back where the stored operand is transposed; a 2-D b shared by
 * a batch gets the sum over the batch (sum_to). */
/* With heads, each gradient is itself a per-head product written in its
 * input's layout (merged when the input is a [B, T, h*d]); no input is
 * shared or broadcast, so nothing is summed. */
static void heads_vjp_graph(tg_node *nd, tg_tensor *g, const bool *want, tg_tensor **dx) {
    const matmul_attr *at = nd->attr;
    tg_tape *tp = nd->tape;
    tg_tensor *a = nd->in[0], *b = nd->in[1];
    bool ta = at->trans_a, tb = at->trans_b;
    int64_t h = at->heads;
    if (want[0]) {   /* da = g op(b)^T, stored transposed: op(b) g^T */
        tg_matmul_opts o = {.trans_a = ta && tb, .trans_b = ta || !tb, .heads = h,
                            .merge_heads = a->ndim == 3};
        dx[0] = ta ? tg_matmul_ex(tp, b, g, &o) : tg_matmul_ex(tp, g, b, &o);
    }
    if (want[1]) {   /* db = op(a)^T g, stored transposed: g^T op(a) */
        tg_matmul_opts o = {.trans_a = tb || !ta, .trans_b = tb && ta, .heads = h,
                            .merge_heads = b->ndim == 3};
        dx[1] = tb ? tg_matmul_ex(tp, g, a, &o) : tg_matmul_ex(tp, a, g, &o);
    }
}

static int matmul_vjp_graph(tg_node *nd, tg_tensor *g, const bool *want, tg_tensor **dx) {
    const matmul_attr *at = nd->attr;
    tg_tape *tp = nd->tape;
    tg_tensor *a = nd->in[0], *b = nd->in[1];
    if (at->heads > 0) {
        heads_vjp_graph(nd, g, want, dx);
        return 0;
    }
    if (want[0]) {
        tg_matmul_opts o = {.trans_b = !at->trans_b};
        tg_tensor *da = tg_matmul_ex(tp, g, b, &o);
        dx[0] = at->trans_a ? tg_transpose(tp, da, -1, -2) : da;
    }
    if (want[1]) {
        tg_matmul_opts o = {.trans_a = !at->trans_a};
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
    matmul_attr at = {0};
    if (o) at = (matmul_attr){o->trans_a, o->trans_b, o->merge_heads, o->heads};
    tg_tensor *in[2] = {a, b};
    return tg_apply(tp, &matmul_op, 2, in, &at);
}

tg_tensor *tg_matmul(tg_tape *tp, tg_tensor *a, tg_tensor *b) {
    return tg_matmul_ex(tp, a, b, NULL);
}
