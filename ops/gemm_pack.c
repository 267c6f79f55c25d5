/* ops/gemm_pack.c - products whose right operand is packed once per recording.
 *
 * BLIS 0.9's API packs both operands on every call and cannot reuse a packed
 * matrix (flame/blis issue #135). An RNN multiplies the same W_hh by a new
 * h_{t-1} at every step with few rows (m = batch): there, repacking the whole
 * W_hh is about half of each call. Here op(B) is packed once per recording,
 * in the micro-panel layout of the micro-kernel BLIS picked for this CPU
 * (bli_cntx_get_l3_nat_ukr_dt), and that kernel runs over the panels; only
 * the small A (m <= MC rows) is packed per call. The forward product (W^T)
 * and the backward one (W) each get their own copy: the other orientation
 * would cost up to 1.6x.
 *
 * Layout. op(B) [k, n] is cut into KC-deep blocks; block b holds ceil(n / R)
 * panels of kc x R elements stored depth-major (R consecutive elements per
 * depth p), the last panel zero-padded; panels start on 64-byte boundaries.
 * R is the kernel's NR; a column-preferring kernel (skx, sandybridge) gets
 * the transposed problem C^T = op(B)^T op(A)^T, so there R is MR and the roles
 * of the two packed operands in the kernel call swap. A is packed the same
 * way into panels of the other width. A row-preferring kernel also runs the
 * transposed problem when that measured faster for the shape (few rows: see
 * "which way round"); values are the same either way.
 *
 * Threads (OpenMP) split a product by op(B)'s panels or by A's, whichever
 * measured faster for its shape (see "how threads split a product"); they
 * pack A's panels between them either way.
 *
 * Batches of small products (attention's per-head products) reuse the same
 * packing and panel loop with both operands packed per product
 * (tg__gemm_batch_small, at the end). */
#include "gemm_internal.h"

#include <blis.h>
#include <stdatomic.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum {
    PACK_ENTRIES = 16,                           /* distinct right operands per recording */
};
/* Packed copies a recording may hold (arena memory until reset). */
static const size_t PACK_MAX_BYTES = (size_t)256 << 20;

/* ---- the kernel BLIS chose, and its block sizes ------------------------------------------ */
typedef struct ukr_geom {
    gemm_ukr_vft ukr;
    cntx_t *cx;
    size_t es;               /* element size                                         */
    int64_t kc, kc_max, mc;  /* block depth (the last may reach kc_max); rows of A   */
    int64_t rb, ra;          /* panel widths of packed op(B) and op(A)               */
    bool swap;               /* column-preferring kernel: it computes C^T            */
    void_fp packm_a, packm_b; /* BLIS's packing kernels for ra- and rb-wide panels, or NULL */
} ukr_geom;

/* BLIS's packm kernel type (one panel: p[l*ldp + i] = kappa a[i*inca + l*lda],
 * i < cdim, l < n; the ukernel discards what padding rows and columns compute). */
typedef void (*packm_ker)(conj_t conja, pack_t schema, dim_t cdim, dim_t n, dim_t n_max,
                          void *kappa, void *a, inc_t inca, inc_t lda, void *p, inc_t ldp,
                          cntx_t *cntx);

static ukr_geom geom_of(tg_dtype dt) {
    cntx_t *cx = bli_gks_query_cntx();
    num_t bd = dt == TG_F32 ? BLIS_FLOAT : BLIS_DOUBLE;
    ukr_geom g = {.ukr = (gemm_ukr_vft)bli_cntx_get_l3_nat_ukr_dt(bd, BLIS_GEMM_UKR, cx),
                  .cx = cx, .es = tg_dtype_size(dt),
                  .kc = bli_cntx_get_blksz_def_dt(bd, BLIS_KC, cx),
                  .kc_max = bli_cntx_get_blksz_max_dt(bd, BLIS_KC, cx),
                  .mc = bli_cntx_get_blksz_def_dt(bd, BLIS_MC, cx),
                  .swap = !bli_cntx_l3_nat_ukr_prefers_rows_dt(bd, BLIS_GEMM_UKR, cx)};
    int64_t mr = bli_cntx_get_blksz_def_dt(bd, BLIS_MR, cx);
    int64_t nr = bli_cntx_get_blksz_def_dt(bd, BLIS_NR, cx);
    g.rb = g.swap ? mr : nr;
    g.ra = g.swap ? nr : mr;
    g.packm_a = bli_cntx_get_packm_ker_dt(bd, (l1mkr_t)g.ra, cx);
    g.packm_b = bli_cntx_get_packm_ker_dt(bd, (l1mkr_t)g.rb, cx);
    return g;
}

/* g for the transposed problem C^T = op(B)^T op(A)^T: the operands trade
 * panel widths. The kernel computes each C element as the same chain of
 * multiply-adds over the same KC blocks either way (only which tiles are
 * edges changes), so the values are the same bit for bit; what changes is
 * how many padding rows the tiles compute (see "which way round"). */
static ukr_geom turned(const ukr_geom *g) {
    ukr_geom t = *g;
    t.swap = !g->swap;
    t.ra = g->rb;
    t.rb = g->ra;
    t.packm_a = g->packm_b;
    t.packm_b = g->packm_a;
    return t;
}

/* ---- packing ------------------------------------------------------------------------------
 * X is a logical [depth, width] matrix with X(p, j) at src + (p*rs + j*cs)
 * elements. Its packed form: KC-deep blocks of R-wide panels (see the top). */
static size_t panel_bytes(const ukr_geom *g, int64_t kc, int64_t R) {
    return ((size_t)(kc * R) * g->es + TG_ALIGN - 1) & ~(size_t)(TG_ALIGN - 1);
}

/* Depth of the block starting at p0, as BLIS cuts k: KC, except that a rest
 * of at most KC's maximum is one block (so the rounding is BLIS's). */
static int64_t block_depth(const ukr_geom *g, int64_t p0, int64_t depth) {
    return depth - p0 <= g->kc_max ? depth - p0 : g->kc;
}

static size_t packed_bytes(const ukr_geom *g, int64_t depth, int64_t width, int64_t R) {
    int64_t panels = (width + R - 1) / R;
    size_t bytes = 0;
    for (int64_t p0 = 0, kc; p0 < depth; p0 += kc) {
        kc = block_depth(g, p0, depth);
        bytes += (size_t)panels * panel_bytes(g, kc, R);
    }
    return bytes;
}

/* Block starting at depth pc: all blocks before it are KC deep. */
static size_t block_offset(const ukr_geom *g, int64_t pc, int64_t width, int64_t R) {
    int64_t panels = (width + R - 1) / R;
    return (size_t)(pc / g->kc) * (size_t)panels * panel_bytes(g, g->kc, R);
}

/* One panel: dst[p*R + j] = X(p, j0 + j) for j < w, 0 for w <= j < R.
 * Inlined with a constant es, the element copies become plain moves. */
static inline __attribute__((always_inline)) void
pack_panel(size_t es, char *restrict dst, const char *restrict src, int64_t rs, int64_t cs,
           int64_t kc, int64_t w, int64_t R) {
    if (w < R) memset(dst, 0, (size_t)(kc * R) * es);
    if (cs == 1) {   /* a panel row is contiguous in X */
        for (int64_t p = 0; p < kc; p++)
            memcpy(dst + (size_t)(p * R) * es, src + (size_t)(p * rs) * es, (size_t)w * es);
        return;
    }
    for (int64_t j = 0; j < w; j++)   /* transposing: read X's columns contiguously when rs == 1 */
        for (int64_t p = 0; p < kc; p++)
            memcpy(dst + (size_t)(p * R + j) * es, src + (size_t)(p * rs + j * cs) * es, es);
}

/* Panels [i0, i1) of X's packed form (all blocks), as everywhere below. */
static inline __attribute__((always_inline)) void
pack_all(size_t es, const ukr_geom *g, char *dst, const char *src, int64_t rs, int64_t cs,
         int64_t depth, int64_t width, int64_t R, int64_t i0, int64_t i1) {
    for (int64_t pc = 0, kc; pc < depth; pc += kc) {
        kc = block_depth(g, pc, depth);
        size_t pb = panel_bytes(g, kc, R);
        char *blk = dst + block_offset(g, pc, width, R);
        for (int64_t i = i0, j0 = i0 * R; i < i1; j0 += R, i++)
            pack_panel(es, blk + (size_t)i * pb, src + (size_t)(pc * rs + j0 * cs) * es, rs, cs,
                       kc, width - j0 < R ? width - j0 : R, R);
    }
}

/* The same layout through BLIS's vectorised packing kernel ker (R wide):
 * 2-4x faster than the loops above on the per-head products of attention,
 * whose panels are short rows copied or transposed. */
static void pack_blis(const ukr_geom *g, packm_ker ker, char *dst, const char *src, int64_t rs,
                      int64_t cs, int64_t depth, int64_t width, int64_t R, int64_t i0,
                      int64_t i1) {
    union { float f; double d; } one;
    if (g->es == sizeof(float)) one.f = 1;
    else one.d = 1;
    pack_t schema = R == g->ra ? BLIS_PACKED_ROW_PANELS : BLIS_PACKED_COL_PANELS;
    for (int64_t pc = 0, kc; pc < depth; pc += kc) {
        kc = block_depth(g, pc, depth);
        size_t pb = panel_bytes(g, kc, R);
        char *blk = dst + block_offset(g, pc, width, R);
        for (int64_t i = i0, j0 = i0 * R; i < i1; j0 += R, i++)
            ker(BLIS_NO_CONJUGATE, schema, width - j0 < R ? width - j0 : R, kc, kc, &one,
                (void *)(src + (size_t)(pc * rs + j0 * cs) * g->es), cs, rs, blk + (size_t)i * pb,
                R, g->cx);
    }
}

/* Panels [i0, i1) of X's packed form; threads may pack disjoint ranges. */
static void pack_range(const ukr_geom *g, char *dst, const char *src, int64_t rs, int64_t cs,
                       int64_t depth, int64_t width, int64_t R, int64_t i0, int64_t i1) {
    void_fp ker = R == g->ra ? g->packm_a : g->packm_b;
    if (ker && g->ra != g->rb) {   /* equal widths: which kernel is which is unclear */
        pack_blis(g, (packm_ker)ker, dst, src, rs, cs, depth, width, R, i0, i1);
        return;
    }
    if (g->es == sizeof(float))
        pack_all(sizeof(float), g, dst, src, rs, cs, depth, width, R, i0, i1);
    else
        pack_all(sizeof(double), g, dst, src, rs, cs, depth, width, R, i0, i1);
}

static void pack(const ukr_geom *g, char *dst, const char *src, int64_t rs, int64_t cs,
                 int64_t depth, int64_t width, int64_t R) {
    pack_range(g, dst, src, rs, cs, depth, width, R, 0, (width + R - 1) / R);
}

/* ---- the per-recording cache -------------------------------------------------------------- */
typedef struct pack_entry {
    const void *b;                 /* stored B [rows, cols], leading dimension ld */
    int64_t rows, cols, ld;
    tg_dtype dt;
    int64_t forward_uses;
    void *packed[2][2];            /* [turned][op(B) = B, B^T]; NULL until needed */
} pack_entry;

struct pack_cache {
    pack_entry ent[PACK_ENTRIES];
    int n_ent;
    size_t held;                   /* bytes of packed copies                   */
    void *a_buf;                   /* A (or a small batch's A and B) packed per call */
    size_t a_cap;
};

static struct pack_cache *cache_of(tg_tape *tp) {
    struct tg_gemm_state *s = tg__gemm_state(tp);
    if (s && !s->pack) s->pack = tg__arena_alloc(tp, sizeof *s->pack, true);
    return s ? s->pack : NULL;
}

static pack_entry *entry_for(struct pack_cache *s, tg_dtype dt, const void *b, int64_t rows,
                             int64_t cols, int64_t ld) {
    for (int i = 0; i < s->n_ent; i++) {
        pack_entry *e = &s->ent[i];
        if (e->b == b && e->dt == dt && e->rows == rows && e->cols == cols && e->ld == ld)
            return e;
    }
    if (s->n_ent == PACK_ENTRIES) return NULL;
    pack_entry *e = &s->ent[s->n_ent++];
    *e = (pack_entry){.b = b, .rows = rows, .cols = cols, .ld = ld, .dt = dt};
    return e;
}

/* op(B) of e packed (once), or NULL when over the budget or out of memory. */
static const char *packed_b(tg_tape *tp, struct pack_cache *s, pack_entry *e,
                            const ukr_geom *g, bool trans_b, bool turn) {
    if (e->packed[turn][trans_b]) return e->packed[turn][trans_b];
    int64_t k = trans_b ? e->cols : e->rows, n = trans_b ? e->rows : e->cols;
    size_t bytes = packed_bytes(g, k, n, g->rb);
    if (bytes > PACK_MAX_BYTES - s->held) return NULL;
    char *p = tg__arena_alloc(tp, bytes, false);
    if (!p) return NULL;
    /* op(B)(p, j) = B[p, j] or B[j, p] */
    pack(g, p, e->b, trans_b ? 1 : e->ld, trans_b ? e->ld : 1, k, n, g->rb);
    s->held += bytes;
    return e->packed[turn][trans_b] = p;
}

static char *a_scratch(tg_tape *tp, struct pack_cache *s, size_t bytes) {
    if (bytes > s->a_cap) {
        void *p = tg__arena_alloc(tp, bytes, false);
        if (!p) return NULL;
        s->a_buf = p;
        s->a_cap = bytes;
    }
    return s->a_buf;
}

/* ---- the product over packed panels ---------------------------------------------------------- */
typedef struct packed_call {
    const ukr_geom *g;
    int64_t m, n, k;
    const char *pa, *pb;         /* packed op(A), op(B) */
    double beta;
    char *c;
    int64_t ldc;
} packed_call;

/* Panels [j0, j1) of op(B) against panels [i0, i1) of A, all blocks (one thread). */
static void run_panels(const packed_call *pc, int64_t j0, int64_t j1, int64_t i0, int64_t i1) {
    const ukr_geom *g = pc->g;
    size_t es = g->es;
    union { float f; double d; } one, beta0, beta1;
    if (es == sizeof(float)) one.f = 1, beta0.f = (float)pc->beta, beta1.f = 1;
    else one.d = 1, beta0.d = pc->beta, beta1.d = 1;
    auxinfo_t aux;
    memset(&aux, 0, sizeof aux);
    bli_auxinfo_set_schema_a(BLIS_PACKED_ROW_PANELS, &aux);
    bli_auxinfo_set_schema_b(BLIS_PACKED_COL_PANELS, &aux);
    bli_auxinfo_set_is_a(1, &aux);
    bli_auxinfo_set_is_b(1, &aux);
    for (int64_t p0 = 0, kc; p0 < pc->k; p0 += kc) {
        kc = block_depth(g, p0, pc->k);
        size_t sa = panel_bytes(g, kc, g->ra), sb = panel_bytes(g, kc, g->rb);
        const char *ablk = pc->pa + block_offset(g, p0, pc->m, g->ra);
        const char *bblk = pc->pb + block_offset(g, p0, pc->n, g->rb);
        void *beta = p0 == 0 ? (void *)&beta0 : (void *)&beta1;
        for (int64_t j = j0; j < j1; j++) {
            const char *bp = bblk + (size_t)j * sb;
            int64_t nn = pc->n - j * g->rb < g->rb ? pc->n - j * g->rb : g->rb;
            for (int64_t i = i0; i < i1; i++) {
                const char *ap = ablk + (size_t)i * sa;
                int64_t mm = pc->m - i * g->ra < g->ra ? pc->m - i * g->ra : g->ra;
                char *c = pc->c + (size_t)(i * g->ra * pc->ldc + j * g->rb) * es;
                /* prefetch hints: the next A panel, or the next B panel after the last A */
                bli_auxinfo_set_next_a((void *)(i + 1 < i1 ? ap + sa : ablk + (size_t)i0 * sa),
                                       &aux);
                bli_auxinfo_set_next_b((void *)(i + 1 < i1 ? bp : bp + sb), &aux);
                if (!g->swap)
                    g->ukr(mm, nn, kc, &one, (void *)ap, (void *)bp, beta, c, pc->ldc, 1, &aux,
                           g->cx);
                else   /* C^T [n, m] = op(B)^T op(A)^T: C^T's rows are C's columns */
                    g->ukr(nn, mm, kc, &one, (void *)bp, (void *)ap, beta, c, 1, pc->ldc, &aux,
                           g->cx);
            }
        }
    }
}

/* This thread's index in its team and the team's size (0 and 1 without OpenMP). */
static void team_slot(int *t, int *nt) {
#ifdef _OPENMP
    *t = omp_get_thread_num();
    *nt = omp_get_num_threads();
#else
    *t = 0;
    *nt = 1;
#endif
}

/* op(A), packed per product into dst (which pc->pa points at):
 * X(p, i) = op(A)[i, p] at src + p*rs + i*cs elements. */
typedef struct a_source {
    const char *src;
    int64_t rs, cs;
    char *dst;
} a_source;

/* ---- how threads split a product ---------------------------------------------------------
 * By columns: the threads pack A's panels between them, meet at a barrier, and
 * each runs its share of op(B)'s panels against all of A (each reads half of
 * op(B)). By rows: each packs and runs its own A panels against all of op(B)
 * (no barrier, but every thread reads all of op(B)). Which wins depends on
 * op(B)'s size against a core's cache and on the barrier's cost, so a shape's
 * first SPLIT_TRIALS multi-threaded products alternate and the faster way
 * (fastest time of each) is kept for it. Values do not depend on the split:
 * every C tile is the same kernel calls over the same blocks either way. */
enum { SPLIT_SLOTS = 64, SPLIT_PROBES = 4, SPLIT_TRIALS = 8 };
typedef struct split_seen {
    _Atomic uint64_t key;      /* 0: free */
    _Atomic uint64_t calls;
    _Atomic uint64_t ns[2];    /* fastest by columns, by rows; 0: not yet */
    _Atomic uint64_t turn_calls;
    _Atomic uint64_t turn_ns[2];   /* fastest as stored, turned; 0: not yet */
} split_seen;
static split_seen splits[SPLIT_SLOTS];

static uint64_t split_key(tg_dtype dt, bool trans_b, int64_t m, int64_t n, int64_t k) {
    uint64_t h = 1469598103934665603ULL;
    uint64_t parts[] = {(uint64_t)dt, trans_b, (uint64_t)m, (uint64_t)n, (uint64_t)k};
    for (int i = 0; i < 5; i++) h = (h ^ parts[i]) * 1099511628211ULL;
    return h | 1;
}

/* The shape's slot (claiming a free one, else taking over the first probed). */
static split_seen *split_slot(uint64_t key) {
    split_seen *free_slot = NULL;
    for (int i = 0; i < SPLIT_PROBES; i++) {
        split_seen *s = &splits[(key + (uint64_t)i) % SPLIT_SLOTS];
        uint64_t at = atomic_load_explicit(&s->key, memory_order_relaxed);
        if (at == key) return s;
        if (at == 0 && !free_slot) free_slot = s;
    }
    split_seen *s = free_slot ? free_slot : &splits[key % SPLIT_SLOTS];
    atomic_store_explicit(&s->ns[0], 0, memory_order_relaxed);
    atomic_store_explicit(&s->ns[1], 0, memory_order_relaxed);
    atomic_store_explicit(&s->calls, 0, memory_order_relaxed);
    atomic_store_explicit(&s->turn_ns[0], 0, memory_order_relaxed);
    atomic_store_explicit(&s->turn_ns[1], 0, memory_order_relaxed);
    atomic_store_explicit(&s->turn_calls, 0, memory_order_relaxed);
    atomic_store_explicit(&s->key, key, memory_order_relaxed);
    return s;
}

/* Whether this product of the shape splits by rows: alternating while on trial. */
static bool split_by_rows(split_seen *s) {
    uint64_t calls = atomic_fetch_add_explicit(&s->calls, 1, memory_order_relaxed);
    if (calls < SPLIT_TRIALS) return calls % 2 == 1;
    uint64_t cols = atomic_load_explicit(&s->ns[0], memory_order_relaxed);
    uint64_t rows = atomic_load_explicit(&s->ns[1], memory_order_relaxed);
    return rows != 0 && rows < cols;
}

/* *best = ns when faster (0: nothing yet); a lost race only loses a sample. */
static void keep_fastest(_Atomic uint64_t *best, uint64_t ns) {
    uint64_t b = atomic_load_explicit(best, memory_order_relaxed);
    if (b == 0 || ns < b) atomic_store_explicit(best, ns, memory_order_relaxed);
}

/* ---- which way round ------------------------------------------------------------------------
 * With few rows the kernel's tiles pad m up to a multiple of their height:
 * W3's 32 rows are 36 on zen's 6x16 kernel (12% of the multiply-adds
 * wasted), while the transposed problem pads W's 64 or 256 columns to 66 or
 * 258 and the 32 rows fit two 16-wide panels exactly. dh = dz W_hh at
 * 32x64x256 ran 1.19x faster turned (docs/performance.md, branch gemm2).
 * Which way wins depends on the shape and the kernel, so a shape's first
 * TURN_TRIALS products alternate in pairs (apart from the thread split's
 * alternation) and the faster way (fastest time of each) is kept. Values do
 * not depend on it (see turned()). Tests may force it (tg__gemm_force_turn). */
enum { TURN_TRIALS = 8 };
static _Atomic int forced_turn = -1;

void tg__gemm_force_turn(int turn) {
    atomic_store_explicit(&forced_turn, turn, memory_order_relaxed);
}

static bool turn_pays(split_seen *s) {
    int forced = atomic_load_explicit(&forced_turn, memory_order_relaxed);
    if (forced >= 0) return forced == 1;
    uint64_t calls = atomic_fetch_add_explicit(&s->turn_calls, 1, memory_order_relaxed);
    if (calls < TURN_TRIALS) return calls / 2 % 2 == 1;
    uint64_t plain = atomic_load_explicit(&s->turn_ns[0], memory_order_relaxed);
    uint64_t turn = atomic_load_explicit(&s->turn_ns[1], memory_order_relaxed);
    return turn != 0 && turn < plain;
}

static void run_packed(const packed_call *pc, const a_source *a, int threads, bool by_rows) {
    const ukr_geom *g = pc->g;
    int64_t nb = (pc->n + g->rb - 1) / g->rb, na = (pc->m + g->ra - 1) / g->ra;
    if (threads <= 1) {
        pack_range(g, a->dst, a->src, a->rs, a->cs, pc->k, pc->m, g->ra, 0, na);
        run_panels(pc, 0, nb, 0, na);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        int t, nt;
        team_slot(&t, &nt);
        int64_t i0 = na * t / nt, i1 = na * (t + 1) / nt;
        pack_range(g, a->dst, a->src, a->rs, a->cs, pc->k, pc->m, g->ra, i0, i1);
        if (by_rows) {
            run_panels(pc, 0, nb, i0, i1);
        } else {
#pragma omp barrier
            run_panels(pc, nb * t / nt, nb * (t + 1) / nt, 0, na);
        }
    }
}

/* The product on `threads` threads, split as measured fastest for its shape
 * (slot s). */
static void run_timed(const packed_call *pc, const a_source *a, int threads, split_seen *s) {
    if (threads <= 1) {
        run_packed(pc, a, 1, false);
        return;
    }
    bool by_rows = split_by_rows(s);
    uint64_t t0 = tg__gemm_now_ns();
    run_packed(pc, a, threads, by_rows);
    keep_fastest(&s->ns[by_rows], tg__gemm_now_ns() - t0);
}

bool tg__gemm_packed(tg_tape *tp, bool forward, tg_dtype dt, bool trans_a, bool trans_b,
                     int64_t m, int64_t n, int64_t k, const void *a, int64_t lda, const void *b,
                     int64_t ldb, double beta, void *c, int64_t ldc) {
    if (m < 1 || n < 1 || k < 1 || (dt != TG_F32 && dt != TG_F64)) return false;
    tg_init();
    ukr_geom g = geom_of(dt);
    /* Fewer rows than a micro-tile: BLIS's small-matrix kernels do better than
     * a mostly empty tile. More than MC: BLIS amortises its own packing. */
    if (!g.ukr || m < g.ra || m > g.mc) return false;
    struct pack_cache *s = cache_of(tp);
    pack_entry *e = s ? entry_for(s, dt, b, trans_b ? n : k, trans_b ? k : n, ldb) : NULL;
    if (e && forward) e->forward_uses++;
    /* used once so far (nothing to amortise), or no room: BLIS, same rounding */
    split_seen *seen = e && e->forward_uses >= 2 ? split_slot(split_key(dt, trans_b, m, n, k))
                                                 : NULL;
    bool turn = seen && turn_pays(seen);
    if (turn) g = turned(&g);
    const char *pb = seen ? packed_b(tp, s, e, &g, trans_b, turn) : NULL;
    char *pa = pb ? a_scratch(tp, s, packed_bytes(&g, k, m, g.ra)) : NULL;
    if (!pa) {
        tg__gemm_native(tp, dt, trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc);
        return true;
    }
    /* op(A)^T as the packed matrix: X(p, i) = op(A)[i, p] */
    a_source as = {a, trans_a ? lda : 1, trans_a ? 1 : lda, pa};
    packed_call pc = {&g, m, n, k, pa, pb, beta, c, ldc};
    tg__gemm_timing tm;
    uint64_t t0 = tg__gemm_now_ns();
    run_timed(&pc, &as, tg__gemm_threads_begin(tp, dt, m, n, k, &tm), seen);
    tg__gemm_threads_end(&tm);
    keep_fastest(&seen->turn_ns[turn], tg__gemm_now_ns() - t0);
    tp->gemm_packed++;
    return true;
}

/* ---- batches of small products -------------------------------------------------------------
 * A BLIS call at 64x64x32 (attention's q k^T per head) spends more time in
 * its set-up than in the micro-kernel: 8 us of which the arithmetic is about
 * 3 (docs/performance.md, W4). Packing both operands into per-thread scratch
 * and running the micro-kernel directly removes that set-up. */
enum { SMALL_MAX_FLOPS = 1 << 21 };   /* per product: 2 MFLOP, e.g. 128x64x64 */

typedef struct small_batch {
    const ukr_geom *g;
    bool ta, tb;
    int64_t m, n, k;
    const char *a, *b;
    char *c;
    const tg__mat_view *va, *vb, *vc;
    double beta;
    size_t a_bytes, b_bytes;
} small_batch;

/* Products [i0, i1) of the batch, packing into scratch (a_bytes + b_bytes). */
static void run_small(const small_batch *sb, int64_t i0, int64_t i1, char *scratch) {
    const ukr_geom *g = sb->g;
    size_t es = g->es;
    char *pa = scratch, *pb = scratch + sb->a_bytes;
    for (int64_t i = i0; i < i1; i++) {
        const char *a = sb->a + (size_t)tg__mat_at(sb->va, i) * es;
        const char *b = sb->b + (size_t)tg__mat_at(sb->vb, i) * es;
        /* op(A)^T: X(p, r) = op(A)[r, p]; op(B): X(p, j) = op(B)[p, j] */
        pack(g, pa, a, sb->ta ? sb->va->ld : 1, sb->ta ? 1 : sb->va->ld, sb->k, sb->m, g->ra);
        pack(g, pb, b, sb->tb ? 1 : sb->vb->ld, sb->tb ? sb->vb->ld : 1, sb->k, sb->n, g->rb);
        packed_call pc = {g, sb->m, sb->n, sb->k, pa, pb, sb->beta,
                          sb->c + (size_t)tg__mat_at(sb->vc, i) * es, sb->vc->ld};
        run_panels(&pc, 0, (sb->n + g->rb - 1) / g->rb, 0, (sb->m + g->ra - 1) / g->ra);
    }
}

bool tg__gemm_batch_small(tg_tape *tp, tg_dtype dt, bool trans_a, bool trans_b, int64_t m,
                          int64_t n, int64_t k, int64_t count, const void *a,
                          const tg__mat_view *va, const void *b, const tg__mat_view *vb,
                          double beta, void *c, const tg__mat_view *vc) {
    if (m < 1 || n < 1 || k < 1 || count < 1 || (dt != TG_F32 && dt != TG_F64) ||
        2.0 * (double)m * (double)n * (double)k > SMALL_MAX_FLOPS)
        return false;
    tg_init();
    ukr_geom g = geom_of(dt);
    if (!g.ukr || m > g.mc) return false;
    small_batch sb = {&g, trans_a, trans_b, m, n, k, a, b, c, va, vb, vc, beta,
                      packed_bytes(&g, k, m, g.ra), packed_bytes(&g, k, n, g.rb)};
    struct pack_cache *s = cache_of(tp);
    tg__gemm_timing tm;
    int threads = tg__gemm_threads_begin(tp, dt, m * count, n, k, &tm);
    if (threads > count) threads = (int)count;
    char *scratch = s ? a_scratch(tp, s, (size_t)threads * (sb.a_bytes + sb.b_bytes)) : NULL;
    if (!scratch) {
        tg__gemm_threads_end(&tm);
        return false;
    }
    if (threads <= 1) {
        run_small(&sb, 0, count, scratch);
    } else {
#pragma omp parallel num_threads(threads)
        {
            int t, nt;
            team_slot(&t, &nt);
            run_small(&sb, count * t / nt, count * (t + 1) / nt,
                      scratch + (size_t)t * (sb.a_bytes + sb.b_bytes));
        }
    }
    tg__gemm_threads_end(&tm);
    return true;
}
