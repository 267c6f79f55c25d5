/* ops/gemm_defer.c - the weight gradient of a whole sequence as one GEMM.
 *
 * A weight shared by every step (W_hh in z_t = h_{t-1} W_hh^T) receives one
 * contribution per step from the matmul VJPs, dW += dZ_t^T h_{t-1}: T GEMMs
 * with k = B (32 rows), a shape BLIS runs well below its rate (W1's
 * 1024 x 256 weight gradient: 65 GFLOP/s with k = 32, 83 from k = 256 on one
 * zen core; 119 and 163 on two). So a VJP only records its contribution
 * here, and contributions to the same gradient are summed by as few GEMMs as
 * possible:
 *   - rows that continue each other in memory (steps that are row blocks of
 *     a whole-sequence buffer) grow one run in place, with no copy;
 *   - rows elsewhere (each step's h and dZ its own tensor, as in tg_rnn) are
 *     copied into a staging buffer of STAGE_ROWS rows (a "gathered" run), so
 *     up to STAGE_ROWS / B steps become one GEMM with k = STAGE_ROWS. The copy
 *     reads and writes (P + Q) values per row against the GEMM's P * Q
 *     multiply-adds. It is made when the contribution arrives (the first of
 *     a run is copied when the second arrives), so gathered rows are not
 *     read at the flush.
 * A run is computed when
 *   - backward is about to run the VJP that reads that gradient (the
 *     producer of the weight, when it is not a leaf), or the grad-ready
 *     callback reports the leaf, or backward ends,
 *   - its staging buffer is full (the chunk runs; the buffer is reused),
 *   - a contribution to the same gradient arrives that fits neither way.
 *
 * Merging reorders the sum over steps (results move within rounding), so it
 * follows the fusion switch (tg__fusion_enabled).
 *
 * A checkpointed span's sub-tape (autograd/checkpoint.c) hands a contribution
 * whose gradient outlives the span (a parameter's, anything outside the
 * sub-tape's arena) to the outermost tape's list, so it is summed in the same
 * chunks and order as on the plain tape (gradients equal bit for bit). Its
 * rows may live in the sub-arena: before the sub-tape resets,
 * tg__gemm_defer_settle copies such a run into staging, as the next
 * contribution would have (or computes it, when it is too wide to gather). */
#include "gemm_internal.h"

#include <string.h>

enum { MAX_RUNS = 8 };   /* gradients with work pending at once */

/* Rows of a gathered run: k = 256 reaches BLIS's plateau for W1-W3's weight
 * gradients on zen (1024 x 256: 83.0 GFLOP/s against 83.3 with k = 2048;
 * 256 x 64: 81 against 68 with k = 512; docs/performance.md), and the
 * buffer stays small (W1: 1.3 MB). Wide gradients get fewer rows so that
 * a buffer holds at most STAGE_BYTES; a contribution of more than half the
 * rows already is a GEMM with a long k and is not copied. */
enum { STAGE_ROWS = 256 };
#define STAGE_BYTES ((size_t)4 << 20)

/* dst [P, Q] += X^T Y over `rows` rows; x, y point at the lowest row. A
 * gathered run's x, y are its staging buffer (ldx = P, ldy = Q), `cap` rows. */
typedef struct defer_run {
    void *dst;
    tg_dtype dt;
    int64_t P, Q, rows;
    const char *x, *y;
    int64_t ldx, ldy;
    void *stage;           /* NULL: x, y are the contributions' own rows */
    size_t stage_bytes;
    int64_t cap;
    bool in_span;          /* x, y may be a checkpointed span's rows: settle before it resets */
} defer_run;

typedef struct spare_stage {
    void *mem;
    size_t bytes;
} spare_stage;

struct defer_list {
    defer_run run[MAX_RUNS];
    int n;
    spare_stage spare[MAX_RUNS];   /* staging buffers of computed runs, to reuse */
    int n_spare;
    void *transposed;                /* scratch of compute_transposed(): dW^T, reused */
    size_t transposed_bytes;
};

static struct defer_list *list_of(tg_tape *tp) {
    struct tg_gemm_state *s = tg__gemm_state(tp);
    if (s && !s->defer) s->defer = tg__arena_alloc(tp, sizeof *s->defer, true);
    return s ? s->defer : NULL;
}

/* ---- gradients with few columns, computed transposed ------------------------------------
 * dW [P, Q] += X^T Y with Q a few dozen columns (W1's input weight gradient
 * 1024 x 65 over 2048 rows, W2's 768 x 65) runs on BLIS's small-matrix path
 * at 49 GFLOP/s on zen: 65 columns leave most of a 16-wide micro-panel empty
 * (the native path is no faster). Computed transposed, T = Y^T X [Q, P] on the
 * native path into scratch, then added into dW transposed, it took 4.18 ms
 * against 5.53 (768 x 65: 2.66 against 3.24; float64 1.15-1.20x). Below 64
 * columns, 512 rows or 512 gradient rows it measured no faster (1024 x 32:
 * 0.77x; 1024 x 48: 0.96x float32; docs/performance.md, branch gemm2).
 * From 128 columns tg_gemm takes the native path itself. The sum over rows
 * is added to dW once instead of once per KC block: results move within
 * rounding, and as the rule is by shape, the same shape always takes the
 * same path. */
static bool transpose_pays(const defer_run *r) {
    return r->P >= 512 && r->Q >= 64 && r->Q < 128 && r->rows >= 512;
}

/* dst [P, Q] += t^T, t [Q, P]; 16 rows of t at a time keep both in cache. */
static void add_transposed_f32(int64_t P, int64_t Q, const float *t, float *dst) {
    for (int64_t j0 = 0; j0 < Q; j0 += 16)
        for (int64_t i = 0; i < P; i++)
            for (int64_t j = j0; j < Q && j < j0 + 16; j++) dst[i * Q + j] += t[j * P + i];
}

static void add_transposed_f64(int64_t P, int64_t Q, const double *t, double *dst) {
    for (int64_t j0 = 0; j0 < Q; j0 += 16)
        for (int64_t i = 0; i < P; i++)
            for (int64_t j = j0; j < Q && j < j0 + 16; j++) dst[i * Q + j] += t[j * P + i];
}

/* r computed transposed into the list's scratch (made once per recording, in
 * the arena); false when the arena is out of memory. */
static bool compute_transposed(tg_tape *tp, struct defer_list *l, const defer_run *r) {
    size_t bytes = (size_t)(r->P * r->Q) * tg_dtype_size(r->dt);
    if (l->transposed_bytes < bytes) {
        void *mem = tg__arena_alloc(tp, bytes, false);
        if (!mem) return false;
        l->transposed = mem;
        l->transposed_bytes = bytes;
    }
    tg__gemm_native(tp, r->dt, true, false, r->Q, r->P, r->rows, r->y, r->ldy, r->x, r->ldx,
                    0.0, l->transposed, r->P);
    if (r->dt == TG_F32)
        add_transposed_f32(r->P, r->Q, l->transposed, r->dst);
    else
        add_transposed_f64(r->P, r->Q, l->transposed, r->dst);
    return true;
}

static void compute(tg_tape *tp, const defer_run *r) {
    struct defer_list *l = tp->gemm ? tp->gemm->defer : NULL;
    if (!(l && transpose_pays(r) && compute_transposed(tp, l, r)))
        tg_gemm(tp, r->dt, true, false, r->P, r->Q, r->rows, 1.0, r->x, r->ldx, r->y, r->ldy,
                1.0, r->dst, r->Q);
    tp->gemm_merged++;
}

/* ---- staging buffers -------------------------------------------------------------------- */

/* Rows a staging buffer for a [P, Q] gradient holds; 0 when P + Q values
 * per row would not fit two rows in STAGE_BYTES. */
static int64_t stage_cap(const defer_run *r) {
    size_t es = tg_dtype_size(r->dt);
    if ((uint64_t)r->P > STAGE_BYTES || (uint64_t)r->Q > STAGE_BYTES) return 0;
    int64_t by_bytes = (int64_t)(STAGE_BYTES / ((size_t)(r->P + r->Q) * es));
    return by_bytes < STAGE_ROWS ? by_bytes : STAGE_ROWS;
}

/* A staging buffer of at least `bytes`: a spare one, else new in the arena
 * (scratch; tg_tape_reset drops it). NULL when the arena is out of memory. */
static void *stage_take(tg_tape *tp, struct defer_list *l, size_t bytes, size_t *got) {
    for (int i = 0; i < l->n_spare; i++) {
        if (l->spare[i].bytes < bytes) continue;
        void *mem = l->spare[i].mem;
        *got = l->spare[i].bytes;
        l->spare[i] = l->spare[--l->n_spare];
        return mem;
    }
    *got = bytes;
    return tg__arena_alloc(tp, bytes, false);
}

/* r's staging buffer goes back to the spares (at most MAX_RUNS are staged at once). */
static void stage_give_back(struct defer_list *l, defer_run *r) {
    if (r->stage && l->n_spare < MAX_RUNS)
        l->spare[l->n_spare++] = (spare_stage){r->stage, r->stage_bytes};
    r->stage = NULL;
}

/* rows x cols values at src (leading dimension ld) to dst, packed. */
static void copy_rows(char *dst, const char *src, int64_t rows, int64_t cols, int64_t ld,
                      size_t es) {
    size_t row = (size_t)cols * es;
    if (ld == cols) {
        memcpy(dst, src, (size_t)rows * row);
        return;
    }
    for (int64_t i = 0; i < rows; i++)
        memcpy(dst + (size_t)i * row, src + (size_t)(i * ld) * es, row);
}

/* Appends c's rows to gathered run r (room checked by the caller). */
static void stage_append(defer_run *r, const defer_run *c) {
    size_t es = tg_dtype_size(r->dt);
    char *xs = r->stage, *ys = xs + (size_t)(r->cap * r->P) * es;
    copy_rows(xs + (size_t)(r->rows * r->P) * es, c->x, c->rows, c->P, c->ldx, es);
    copy_rows(ys + (size_t)(r->rows * r->Q) * es, c->y, c->rows, c->Q, c->ldy, es);
    r->rows += c->rows;
}

/* Turns pointer run r into a gathered one holding its rows; false (r as it
 * was) when it cannot be. */
static bool stage_begin(tg_tape *tp, struct defer_list *l, defer_run *r, int64_t cap) {
    size_t es = tg_dtype_size(r->dt), got;
    void *mem = stage_take(tp, l, (size_t)(cap * (r->P + r->Q)) * es, &got);
    if (!mem) return false;
    defer_run own = *r;
    r->stage = mem;
    r->stage_bytes = got;
    r->cap = cap;
    r->rows = 0;
    r->x = mem;
    r->y = (const char *)mem + (size_t)(cap * r->P) * es;
    r->ldx = r->P;
    r->ldy = r->Q;
    r->in_span = false;
    stage_append(r, &own);
    return true;
}

/* ---- runs ------------------------------------------------------------------------------- */

/* Whether c continues pointer run r (its rows right before or right after
 * r's, in both X and Y); if so r grows to cover them. */
static bool merge(defer_run *r, const defer_run *c) {
    if (r->stage || r->ldx != c->ldx || r->ldy != c->ldy) return false;
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
    r->in_span |= c->in_span;
    return true;
}

/* Gathers c into r (made a gathered run if it is not one yet), computing r's
 * full buffer first when c does not fit; false when c is not to be copied. */
static bool gather(tg_tape *tp, struct defer_list *l, defer_run *r, const defer_run *c) {
    int64_t cap = r->stage ? r->cap : stage_cap(r);
    if (c->rows * 2 > cap || (!r->stage && r->rows * 2 > cap)) return false;
    if (!r->stage && !stage_begin(tp, l, r, cap)) return false;
    if (r->rows + c->rows > r->cap) {   /* full: this chunk runs, the buffer is reused */
        compute(tp, r);
        r->rows = 0;
    }
    stage_append(r, c);
    return true;
}

/* c joins r, the run of the same gradient: continuing it, gathered into its
 * staging buffer, or (neither possible) after r is computed, in its place. */
static void join(tg_tape *tp, struct defer_list *l, defer_run *r, const defer_run *c) {
    if (r->dt == c->dt && r->P == c->P && r->Q == c->Q &&
        (merge(r, c) || gather(tp, l, r, c)))
        return;
    compute(tp, r);
    stage_give_back(l, r);
    *r = *c;
}

/* backward's hook: compute the runs into grad (every run when grad is NULL). */
static void flush(tg_tape *tp, const void *grad) {
    struct defer_list *l = tp->gemm ? tp->gemm->defer : NULL;
    int kept = 0;
    for (int i = 0; l && i < l->n; i++) {
        if (!grad || l->run[i].dst == grad) {
            compute(tp, &l->run[i]);
            stage_give_back(l, &l->run[i]);
        } else {
            l->run[kept++] = l->run[i];
        }
    }
    if (l) l->n = kept;
    if (kept == 0) tp->flush_deferred = NULL;
}

/* Whether p lies in tp's arena. */
static bool in_arena(const tg_tape *tp, const void *p) {
    const unsigned char *q = p;
    for (const tg_chunk *c = tp->chunks; c; c = c->next)
        if (q >= c->base && q < c->base + c->size) return true;
    return false;
}

/* The tape whose list sums dst: a span's sub-tape keeps only gradients that
 * die with it (in its arena); others go to the outermost tape (see the top). */
static tg_tape *home_of(tg_tape *tp, const void *dst) {
    return tp->claim_for && !in_arena(tp, dst) ? tp->claim_for : tp;
}

bool tg__gemm_defer_xty(tg_tape *tp, tg_dtype dt, int64_t P, int64_t Q, int64_t rows,
                        const void *x, int64_t ldx, const void *y, int64_t ldy, void *dst) {
    if (!tg__fusion_enabled(tp) || P < 1 || Q < 1 || rows < 1) return false;
    tg_tape *home = home_of(tp, dst);
    struct defer_list *l = list_of(home);
    if (!l) return false;
    defer_run c = {dst, dt, P, Q, rows, x, y, ldx, ldy, NULL, 0, 0, home != tp};
    home->gemm_deferred++;
    for (int i = 0; i < l->n; i++) {
        if (l->run[i].dst == dst) {
            join(home, l, &l->run[i], &c);
            return true;
        }
    }
    if (l->n == MAX_RUNS) {   /* room for one more: the oldest run goes first */
        compute(home, &l->run[0]);
        stage_give_back(l, &l->run[0]);
        for (int i = 1; i < l->n; i++) l->run[i - 1] = l->run[i];
        l->n--;
    }
    l->run[l->n++] = c;
    home->flush_deferred = flush;
    return true;
}

void tg__gemm_defer_settle(tg_tape *tp) {
    struct defer_list *l = tp->gemm ? tp->gemm->defer : NULL;
    if (!l) return;
    int kept = 0;
    for (int i = 0; i < l->n; i++) {
        defer_run *r = &l->run[i];
        int64_t cap = r->in_span ? stage_cap(r) : 0;
        if (!r->in_span || (r->rows * 2 <= cap && stage_begin(tp, l, r, cap))) {
            l->run[kept++] = *r;   /* gathered as the next contribution would have */
            continue;
        }
        compute(tp, r);   /* too wide to gather: the next contribution would compute it first */
        stage_give_back(l, r);
    }
    l->n = kept;
    if (kept == 0) tp->flush_deferred = NULL;
}
