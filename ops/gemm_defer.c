/* ops/gemm_defer.c - the weight gradient of a whole sequence as one GEMM.
 *
 * A weight shared by every step (W_hh in z_t = h_{t-1} W_hh^T) receives one
 * contribution per step from the matmul VJPs, dW += dZ_t^T h_{t-1}: T GEMMs
 * with k = B (32 rows), a shape BLIS runs well below its rate. When the h
 * rows and the dZ rows of successive steps lie next to each other in memory
 * (steps that are row blocks of whole-sequence buffers), the T products are
 * one GEMM with k = T*B. So a VJP only records its contribution here, and
 * contributions to the same gradient whose rows continue each other grow one
 * run. A run is computed when
 *   - backward is about to run the VJP that reads that gradient (the
 *     producer of the weight, when it is not a leaf),
 *   - backward ends (leaves: complete when tg_backward returns),
 *   - a contribution to the same gradient arrives that does not continue it
 *     (rows elsewhere: each run is then one per-step GEMM, as without this).
 *
 * Merging reorders the sum over steps (results move within rounding), so it
 * follows the fusion switch (tg__fusion_enabled). */
#include "gemm_internal.h"

enum { MAX_RUNS = 8 };   /* gradients with work pending at once */

/* dst [P, Q] += X^T Y over `rows` rows; x, y point at the lowest row. */
typedef struct defer_run {
    void *dst;
    tg_dtype dt;
    int64_t P, Q, rows;
    const char *x, *y;
    int64_t ldx, ldy;
} defer_run;

struct defer_list {
    defer_run run[MAX_RUNS];
    int n;
};

static struct defer_list *list_of(tg_tape *tp) {
    struct tg_gemm_state *s = tg__gemm_state(tp);
    if (s && !s->defer) s->defer = tg__arena_alloc(tp, sizeof *s->defer, true);
    return s ? s->defer : NULL;
}

static void compute(tg_tape *tp, const defer_run *r) {
    tg_gemm(tp, r->dt, true, false, r->P, r->Q, r->rows, 1.0, r->x, r->ldx, r->y, r->ldy, 1.0,
            r->dst, r->Q);
    tp->gemm_merged++;
}

/* backward's hook: compute the runs into grad (every run when grad is NULL). */
static void flush(tg_tape *tp, const void *grad) {
    struct defer_list *l = tp->gemm ? tp->gemm->defer : NULL;
    int kept = 0;
    for (int i = 0; l && i < l->n; i++) {
        if (!grad || l->run[i].dst == grad)
            compute(tp, &l->run[i]);
        else
            l->run[kept++] = l->run[i];
    }
    if (l) l->n = kept;
    if (kept == 0) tp->flush_deferred = NULL;
}

/* Whether c continues r (its rows right before or right after r's, in both
 * X and Y); if so r grows to cover them. */
static bool merge(defer_run *r, const defer_run *c) {
    if (r->dt != c->dt || r->P != c->P || r->Q != c->Q || r->ldx != c->ldx || r->ldy != c->ldy)
        return false;
    size_t es = tg_dtype_size(r->dt);
    size_t cx = (size_t)(c->rows * c->ldx) * es, cy = (size_t)(c->rows * c->ldy) * es;
    size_t rx = (size_t)(r->rows * r->ldx) * es, ry = (size_t)(r->rows * r->ldy) * es;
    if (c->x + cx == r->x && c->y + cy == r->y) {   /* the step before (backward's order) */
        r->x = c->x;
        r->y = c->y;
    } else if (r->x + rx != c->x || r->y + ry != c->y) {
        return false;
    }
    r->rows += c->rows;
    return true;
}

bool tg__gemm_defer_xty(tg_tape *tp, tg_dtype dt, int64_t P, int64_t Q, int64_t rows,
                        const void *x, int64_t ldx, const void *y, int64_t ldy, void *dst) {
    if (!tg__fusion_enabled(tp) || P < 1 || Q < 1 || rows < 1) return false;
    struct defer_list *l = list_of(tp);
    if (!l) return false;
    defer_run c = {dst, dt, P, Q, rows, x, y, ldx, ldy};
    tp->gemm_deferred++;
    for (int i = 0; i < l->n; i++) {
        if (l->run[i].dst != dst) continue;
        if (!merge(&l->run[i], &c)) {   /* rows elsewhere: the run so far is complete */
            compute(tp, &l->run[i]);
            l->run[i] = c;
        }
        return true;
    }
    if (l->n == MAX_RUNS) {   /* room for one more: the oldest run goes first */
        compute(tp, &l->run[0]);
        for (int i = 1; i < l->n; i++) l->run[i - 1] = l->run[i];
        l->n--;
    }
    l->run[l->n++] = c;
    tp->flush_deferred = flush;
    return true;
}
