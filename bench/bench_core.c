/* bench/bench_core.c - the core engine's figures (issue 2, "Benchmarks").
 *
 * Prints, with 1 and 2 BLIS threads:
 *   (a) tape overhead: ns per recorded op on a chain of 1000 elementwise ops
 *       over 16 floats (scale, tanh, scale, ...), forward + backward + reset;
 *   (b) sgemm GFLOP/s through tg_matmul against bli_sgemm_ex called directly;
 *   (c) heap allocations per warm training step of a 64 -> 128 -> 10 MLP;
 *   (d) W1-W3's recurrent products: per-step BLIS calls against the engine's
 *       packed-once path;
 *   (e) BLIS's sup path against its native path at the workloads' shapes;
 * then the 1- vs 2-thread rate of direct BLIS at small shapes, against a size
 * rule (ops/gemm_guard.c decides per shape by timing instead).
 *
 * Every figure is timed with CLOCK_MONOTONIC. The machine is shared, so
 * repeats are interleaved (engine, BLIS, engine, ...) and medians reported. */
#include <stdlib.h>   /* first: defines __GLIBC__ for the allocation counter */

#include <tapegrad.h>

#include "chain.h"

#include <blis.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- process-wide allocation counter ------------------------------------------
 * tg_heap_allocs() counts the library's own allocations. To see everything a
 * step allocates (BLIS, OpenMP, libc included), the bench also interposes
 * malloc/calloc/realloc for the whole process. Not under sanitizers, which
 * interpose them themselves. */
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define BENCH_COUNT_MALLOC 1
extern void *__libc_malloc(size_t bytes);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t bytes);
static atomic_uint_fast64_t process_allocs;

static void count_one(void) { atomic_fetch_add_explicit(&process_allocs, 1, memory_order_relaxed); }
void *malloc(size_t bytes) {
    count_one();
    return __libc_malloc(bytes);
}
void *calloc(size_t n, size_t size) {
    count_one();
    return __libc_calloc(n, size);
}
void *realloc(void *p, size_t bytes) {
    count_one();
    return __libc_realloc(p, bytes);
}
static uint64_t process_alloc_count(void) { return atomic_load(&process_allocs); }
#else
#define BENCH_COUNT_MALLOC 0
static uint64_t process_alloc_count(void) { return 0; }
#endif

/* "0.000" per unit, or "n/a" when the process-wide counter is not built in. */
static const char *per_unit(char *buf, size_t size, uint64_t count, int64_t units) {
    if (!BENCH_COUNT_MALLOC) return "n/a";
    snprintf(buf, size, "%.3f", (double)count / (double)units);
    return buf;
}

/* ---- timing ---------------------------------------------------------------------- */
enum { REPEATS = 7 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef void (*bench_fn)(void *ctx);

/* Seconds per call over iters calls. */
static double time_calls(bench_fn fn, void *ctx, int64_t iters) {
    double t0 = now_s();
    for (int64_t i = 0; i < iters; i++) fn(ctx);
    return (now_s() - t0) / (double)iters;
}

/* Calls needed to fill about target seconds (after one warm-up call). */
static int64_t calibrate(bench_fn fn, void *ctx, double target) {
    fn(ctx);
    int64_t iters = 1;
    double t;
    while ((t = time_calls(fn, ctx, iters)) * (double)iters < 0.1 * target) iters *= 4;
    int64_t want = (int64_t)(target / (t > 1e-9 ? t : 1e-9));
    return want > 0 ? want : 1;
}

/* Median seconds per call of one function. */
static double time_median(bench_fn f, void *cf, double target) {
    int64_t n = calibrate(f, cf, target);
    double s[REPEATS];
    for (int r = 0; r < REPEATS; r++) s[r] = time_calls(f, cf, n);
    return median(s, REPEATS);
}

/* Interleaved repeats of two functions; medians of seconds per call. */
static void time_pair(bench_fn f, void *cf, bench_fn g, void *cg, double target, double *tf,
                      double *tg) {
    int64_t nf = calibrate(f, cf, target), ng = calibrate(g, cg, target);
    double sf[REPEATS], sg[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
        sf[r] = time_calls(f, cf, nf);
        sg[r] = time_calls(g, cg, ng);
    }
    *tf = median(sf, REPEATS);
    *tg = median(sg, REPEATS);
}

static void fill_uniform(tg_tensor *t, tg_rng *rng, double lo, double hi) {
    for (int64_t i = 0; i < tg_tensor_numel(t); i++)
        tg_tensor_set(t, i, lo + (hi - lo) * tg_rng_uniform(rng));
}

static int die(const char *what, const tg_tape *tp) {
    fprintf(stderr, "bench_core: %s failed: %s\n", what, tp ? tg_tape_error(tp) : tg_last_error());
    return 1;
}

/* ---- (a) tape overhead ---------------------------------------------------------------
 * The chain of bench/chain.h; `failed` records a tape error for the caller. */
typedef struct chain_job {
    chain_ctx c;
    int failed;
} chain_job;

static void chain_step(void *p) {
    chain_job *j = p;
    if (chain_run(&j->c)) j->failed = 1;
}

static void bare_step(void *p) {
    (void)p;
    bare_chain();
}

static int bench_tape_overhead(const int *threads, int n_threads) {
    printf("\n(a) tape overhead: chain of %d elementwise ops (scale, tanh, ...) on %d floats\n",
           CHAIN, WIDTH);
    printf("    ns per recorded op, median of %d repeats; target <= 150 ns/op (fwd+bwd)\n",
           REPEATS);
    printf("    threads | forward | fwd+bwd+reset | bare C kernels | tape cost | target\n");
    for (int j = 0; j < WIDTH; j++) bare_y[0][j] = (float)(j - 8) / 8.0f;
    double t_bare = time_median(bare_step, NULL, 0.05);
    for (int ti = 0; ti < n_threads; ti++) {
        tg_tape *tp = tg_tape_new();
        int64_t shape[1] = {WIDTH};
        tg_tensor *x = tg_tensor_new(TG_F32, 1, shape), *dy = tg_tensor_new(TG_F32, 1, shape);
        if (!tp || !x || !dy) return die("setup", NULL);
        tg_tape_set_threads(tp, threads[ti]);
        for (int j = 0; j < WIDTH; j++) tg_tensor_set(x, j, (double)(j - 8) / 8.0);
        tg_tensor_fill(dy, 1.0);
        tg_tensor_set_requires_grad(x, true);
        chain_job fwd = {{tp, x, dy, false}, 0}, full = {{tp, x, dy, true}, 0};
        double t_fwd, t_full;
        time_pair(chain_step, &fwd, chain_step, &full, 0.05, &t_fwd, &t_full);
        if (fwd.failed || full.failed) return die("chain", tp);
        double ns = 1e9 / CHAIN;
        printf("    %7d | %7.1f | %13.1f | %14.1f | %9.1f | %s\n", threads[ti], t_fwd * ns,
               t_full * ns, t_bare * ns, (t_full - t_bare) * ns,
               t_full * ns <= 150 ? "met" : "NOT met");
        tg_tensor_free(x);
        tg_tensor_free(dy);
        tg_tape_free(tp);
    }
    return 0;
}

/* ---- (b) matmul through the engine vs BLIS ----------------------------------------- */
typedef struct gemm_ctx {
    tg_tape *tp;
    tg_tensor *a, *b;      /* caller-owned, no grad                */
    float *c;              /* output for the direct BLIS call      */
    int64_t m, k, n;
    int threads;
    int failed;
} gemm_ctx;

static void engine_matmul(void *p) {
    gemm_ctx *g = p;
    if (!tg_matmul(g->tp, g->a, g->b)) g->failed = 1;
    tg_tape_reset(g->tp);
}

/* Row-major C[m,n] = op(A)[m,k] op(B)[k,n] straight through BLIS, as
 * ops/gemm.c calls it; rntm says how (threads, sup kernels). */
static void blis_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float *c, rntm_t *rntm) {
    float one = 1.0f, zero = 0.0f;
    bli_sgemm_ex(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 m, n, k, &one, (float *)a, lda, 1, (float *)b, ldb, 1, &zero, c, n, 1, NULL, rntm);
}

static void direct_sgemm(void *p) {
    gemm_ctx *g = p;
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(g->threads, &rntm);
    blis_sgemm(false, false, g->m, g->n, g->k, tg_tensor_data(g->a), g->k, tg_tensor_data(g->b),
               g->n, g->c, &rntm);
}

static int gemm_open(gemm_ctx *g, int64_t m, int64_t k, int64_t n, int threads, tg_rng *rng) {
    memset(g, 0, sizeof *g);
    g->m = m, g->k = k, g->n = n, g->threads = threads;
    g->tp = tg_tape_new();
    g->a = tg_tensor_new(TG_F32, 2, (int64_t[]){m, k});
    g->b = tg_tensor_new(TG_F32, 2, (int64_t[]){k, n});
    g->c = aligned_alloc(64, (size_t)(((m * n * 4) + 63) / 64 * 64));
    if (!g->tp || !g->a || !g->b || !g->c) return -1;
    tg_tape_set_threads(g->tp, threads);
    tg_no_grad_begin(g->tp);   /* forward only: nothing is recorded */
    fill_uniform(g->a, rng, -1, 1);
    fill_uniform(g->b, rng, -1, 1);
    return 0;
}

static void gemm_close(gemm_ctx *g) {
    tg_tape_free(g->tp);
    tg_tensor_free(g->a);
    tg_tensor_free(g->b);
    free(g->c);
}

static double gflops(const gemm_ctx *g, double seconds) {
    return 2.0 * (double)g->m * (double)g->k * (double)g->n / seconds * 1e-9;
}

static int bench_matmul(const int *threads, int n_threads, tg_rng *rng) {
    static const int64_t shapes[][3] = {{32, 320, 1024}, {64, 1024, 256}, {1024, 1024, 1024}};
    printf("\n(b) sgemm GFLOP/s, tg_matmul (forward, no grad, arena reset) vs bli_sgemm_ex\n");
    printf("    BLIS sub-configuration: %s; median of %d interleaved repeats; target >= 90%%\n",
           tg_blas_arch(), REPEATS);
    printf("    (m, k, n)          threads | engine | BLIS   | engine/BLIS | target | mallocs/call\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ti = 0; ti < n_threads; ti++) {
            gemm_ctx g;
            if (gemm_open(&g, shapes[s][0], shapes[s][1], shapes[s][2], threads[ti], rng))
                return die("matmul setup", g.tp);
            double te, tb;
            time_pair(engine_matmul, &g, direct_sgemm, &g, 0.06, &te, &tb);
            if (g.failed) return die("tg_matmul", g.tp);
            double ratio = tb / te;
            uint64_t a0 = process_alloc_count();
            for (int i = 0; i < 10; i++) engine_matmul(&g);
            char buf[32];
            const char *allocs = per_unit(buf, sizeof buf, process_alloc_count() - a0, 10);
            printf("    (%4lld,%5lld,%5lld) %7d | %6.1f | %6.1f | %10.1f%% | %6s | %s\n",
                   (long long)g.m, (long long)g.k, (long long)g.n, threads[ti], gflops(&g, te),
                   gflops(&g, tb), 100 * ratio, ratio >= 0.9 ? "met" : "NOT met", allocs);
            gemm_close(&g);
        }
    return 0;
}

/* ---- (d) recurrent products: per-step BLIS calls vs the packed-once path ----------
 * W1-W3's per-step products: z = h W_hh^T (forward) and dh = dz W_hh
 * (backward), W_hh [G, H], 32 rows, T steps per recording. The engine path is
 * tg_matmul on a recording tape (W requires grad): from the second step on
 * it runs on W packed once per recording (ops/gemm_pack.c), its thread count
 * and split chosen per shape by timing (gemm_guard.c). The BLIS path is
 * bli_sgemm_ex per step, which repacks W at every call. */
typedef struct rec_shape { const char *what; int64_t B, H, G, T; } rec_shape;
static const rec_shape rec_shapes[] = {
    {"W1", 32, 256, 1024, 64}, {"W2", 32, 256, 768, 64}, {"W3", 32, 64, 256, 40},
};

typedef struct rec_ctx {
    tg_tape *tp;
    const rec_shape *s;
    tg_tensor *x, *w;      /* x [B, H] (forward) or [B, G]; w [G, H] */
    float *c;
    bool backward;         /* dh = dz W (W as stored) instead of h W^T          */
    int threads, failed;
} rec_ctx;

/* One recording: T products on the tape, then reset. */
static void rec_engine(void *p) {
    rec_ctx *r = p;
    tg_matmul_opts o = {.trans_b = !r->backward};
    for (int64_t t = 0; t < r->s->T; t++)
        if (!tg_matmul_ex(r->tp, r->x, r->w, &o)) r->failed = 1;
    tg_tape_reset(r->tp);
}

static void rec_blis(void *p) {
    rec_ctx *r = p;
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(r->threads, &rntm);
    int64_t n = r->backward ? r->s->H : r->s->G, k = r->backward ? r->s->G : r->s->H;
    for (int64_t t = 0; t < r->s->T; t++)
        blis_sgemm(false, !r->backward, r->s->B, n, k, tg_tensor_data(r->x), k,
                   tg_tensor_data(r->w), r->s->H, r->c, &rntm);
}

/* One shape, one direction, one thread count: a row of the table. */
static int rec_row(const rec_shape *s, bool backward, int threads, tg_rng *rng) {
    rec_ctx r = {.tp = tg_tape_new(), .s = s, .backward = backward, .threads = threads};
    int64_t k = backward ? s->G : s->H, n = backward ? s->H : s->G;
    r.x = tg_tensor_new(TG_F32, 2, (int64_t[]){s->B, k});
    r.w = tg_tensor_new(TG_F32, 2, (int64_t[]){s->G, s->H});
    r.c = aligned_alloc(64, (size_t)(s->B * s->G) * sizeof(float));
    if (!r.tp || !r.x || !r.w || !r.c) return die("recurrent setup", r.tp);
    tg_tape_set_threads(r.tp, threads);
    fill_uniform(r.x, rng, -1, 1);
    fill_uniform(r.w, rng, -0.1, 0.1);
    tg_tensor_set_requires_grad(r.w, true);
    int64_t ne = calibrate(rec_engine, &r, 0.05), nb = calibrate(rec_blis, &r, 0.05);
    double se[REPEATS], sb[REPEATS];
    for (int i = 0; i < REPEATS; i++) {
        se[i] = time_calls(rec_engine, &r, ne);
        sb[i] = time_calls(rec_blis, &r, nb);
    }
    if (r.failed) return die("recurrent matmul", r.tp);
    double fl = 2.0 * (double)(s->B * n * k * s->T) * 1e-9;
    double me = median(se, REPEATS), mb = median(sb, REPEATS);   /* sorts: [0] is best */
    char what[64];
    snprintf(what, sizeof what, "%s %s (%lldx%lldx%lld)", s->what,
             backward ? "dh = dz W_hh " : "z = h W_hh^T", (long long)s->B, (long long)n,
             (long long)k);
    printf("    %-33s %7d | %6.1f (%5.1f) | %6.1f (%5.1f) | %.2fx\n", what, threads, fl / mb,
           fl / sb[0], fl / me, fl / se[0], mb / me);
    tg_tape_free(r.tp);
    tg_tensor_free(r.x);
    tg_tensor_free(r.w);
    free(r.c);
    return 0;
}

static int bench_recurrent(const int *threads, int n_threads, tg_rng *rng) {
    printf("\n(d) recurrent products at W1-W3's shapes, T per recording: per-step bli_sgemm_ex\n"
           "    vs the engine (tg_matmul, W packed once per recording); GFLOP/s, median (best) "
           "of %d\n", REPEATS);
    printf("    product                           threads | per-step BLIS  | engine, packed | "
           "ratio\n");
    for (size_t i = 0; i < sizeof rec_shapes / sizeof rec_shapes[0]; i++)
        for (int dir = 0; dir < 2; dir++)
            for (int ti = 0; ti < n_threads; ti++)
                if (rec_row(&rec_shapes[i], dir == 1, threads[ti], rng) != 0) return 1;
    return 0;
}

/* ---- (e) BLIS's sup path against its native path at the workloads' shapes -------------
 * ops/gemm.c turns BLIS's small-matrix (sup) kernels off from m >= 128 with
 * n >= 256 and from m >= 512 with n >= 128; this prints both paths, 1 thread,
 * best of the interleaved repeats, at W1-W4's batched shapes and two per-step
 * ones (which keep sup, or go to the packed path). */
typedef struct sup_ctx { gemm_ctx g; bool ta, tb, sup; } sup_ctx;

static void sup_or_native(void *p) {
    sup_ctx *s = p;
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(1, &rntm);
    if (!s->sup) bli_rntm_disable_l3_sup(&rntm);
    blis_sgemm(s->ta, s->tb, s->g.m, s->g.n, s->g.k, tg_tensor_data(s->g.a),
               s->ta ? s->g.m : s->g.k, tg_tensor_data(s->g.b), s->tb ? s->g.k : s->g.n, s->g.c,
               &rntm);
}

static int bench_sup(tg_rng *rng) {
    static const struct { const char *what; int64_t m, n, k; bool ta, tb; } shapes[] = {
        {"W1 x W_ih^T", 2048, 1024, 65, false, true}, {"W1 h W_fc^T", 2048, 65, 256, false, true},
        {"W1 dlogits W_fc", 2048, 256, 65, false, false},
        {"W1 dW_hh", 1024, 256, 2048, true, false}, {"W1 dW_ih", 1024, 65, 2048, true, false},
        {"W3 x W_ih^T", 1280, 256, 128, false, true}, {"W4 x W^T", 2048, 128, 128, false, true},
        {"W4 x W_1^T", 2048, 512, 128, false, true}, {"W1 h W_hh^T", 32, 1024, 256, false, true},
        {"W1 dz W_hh", 32, 256, 1024, false, false}};
    printf("\n(e) BLIS sup path vs native path, 1 thread, GFLOP/s (best of %d interleaved)\n",
           REPEATS);
    printf("    shape               (m, n, k)        | sup    | native | ops/gemm.c takes\n");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        sup_ctx s = {.ta = shapes[i].ta, .tb = shapes[i].tb};
        /* gemm_ctx's a [m, k] and b [k, n] hold the same element counts either way */
        if (gemm_open(&s.g, shapes[i].m, shapes[i].k, shapes[i].n, 1, rng))
            return die("sup setup", s.g.tp);
        sup_ctx native = s;
        s.sup = true;
        int64_t ns = calibrate(sup_or_native, &s, 0.02), nn = calibrate(sup_or_native, &native, 0.02);
        double ts[REPEATS], tn[REPEATS];
        for (int r = 0; r < REPEATS; r++) {
            ts[r] = time_calls(sup_or_native, &s, ns);
            tn[r] = time_calls(sup_or_native, &native, nn);
        }
        median(ts, REPEATS);   /* sorts: [0] is the best */
        median(tn, REPEATS);
        bool native_rule = (s.g.m >= 128 && s.g.n >= 256) || (s.g.m >= 512 && s.g.n >= 128);
        printf("    %-18s (%4lld,%5lld,%5lld) | %6.1f | %6.1f | %s\n", shapes[i].what,
               (long long)s.g.m, (long long)s.g.n, (long long)s.g.k, gflops(&s.g, ts[0]),
               gflops(&s.g, tn[0]), native_rule ? "native" : "BLIS's choice");
        gemm_close(&s.g);
    }
    return 0;
}

/* ---- GEMM thread policy: direct BLIS, 1 vs 2 threads, at small shapes ------------ */
/* The old size rule (one thread below 8 MFLOP). ops/gemm_guard.c now tries two
 * threads from 1 MFLOP and keeps, per shape, whichever measures faster: this
 * table shows where a size rule alone would go wrong for BLIS calls. */
enum { POLICY_MIN_FLOPS = 8 * 1000 * 1000 };

typedef struct policy_row { int64_t m, k, n; double flops, g1, g2; } policy_row;

static void policy_verdict(const policy_row *rows, int n);

static int bench_gemm_policy(tg_rng *rng) {
    /* The first five are the shapes the brief asks for; the rest bracket 8e6. */
    static const int64_t shapes[][3] = {{32, 64, 256},  {32, 128, 256}, {32, 256, 256},
                                        {32, 256, 1024}, {64, 64, 256},  {64, 128, 256},
                                        {32, 512, 256}, {64, 256, 256}, {32, 320, 1024}};
    enum { N = sizeof shapes / sizeof shapes[0] };
    policy_row rows[N];
    printf("\n    GEMM thread policy: direct bli_sgemm_ex, 1 vs 2 threads (GFLOP/s, median)\n");
    printf("    a size rule of 1 thread below %d flops against the best (ops/gemm_guard.c\n"
           "    decides per shape by timing from 1 MFLOP)\n", POLICY_MIN_FLOPS);
    printf("    (m, k, n)         MFLOP | 1 thread | 2 threads | 2T/1T | policy picks | best\n");
    for (int s = 0; s < N; s++) {
        gemm_ctx g1, g2;
        if (gemm_open(&g1, shapes[s][0], shapes[s][1], shapes[s][2], 1, rng) ||
            gemm_open(&g2, shapes[s][0], shapes[s][1], shapes[s][2], 2, rng))
            return die("policy setup", NULL);
        double t1, t2;
        time_pair(direct_sgemm, &g1, direct_sgemm, &g2, 0.03, &t1, &t2);
        policy_row *r = &rows[s];
        *r = (policy_row){g1.m, g1.k, g1.n, 2.0 * (double)(g1.m * g1.k * g1.n), gflops(&g1, t1),
                          gflops(&g2, t2)};
        printf("    (%3lld,%4lld,%5lld) %6.1f | %8.1f | %9.1f | %5.2f | %12s | %s\n",
               (long long)r->m, (long long)r->k, (long long)r->n, r->flops * 1e-6, r->g1, r->g2,
               r->g2 / r->g1, r->flops < POLICY_MIN_FLOPS ? "1 thread" : "2 threads",
               r->g2 > r->g1 ? "2 threads" : "1 thread");
        gemm_close(&g1);
        gemm_close(&g2);
    }
    policy_verdict(rows, N);
    return 0;
}

/* The threshold is right when, at every measured shape, the thread count it
 * picks runs within 10% of the better one. Also prints the crossover the
 * measurements suggest: between the largest size where 1 thread wins and the
 * smallest where 2 threads win. */
static void policy_verdict(const policy_row *rows, int n) {
    int wrong = 0;
    double max_1t_win = 0, min_2t_win = 1e300;
    for (int i = 0; i < n; i++) {
        const policy_row *r = &rows[i];
        double picked = r->flops < POLICY_MIN_FLOPS ? r->g1 : r->g2;
        double best = r->g1 > r->g2 ? r->g1 : r->g2;
        if (picked < 0.9 * best) wrong++;
        if (r->g1 >= r->g2 && r->flops > max_1t_win) max_1t_win = r->flops;
        if (r->g2 > r->g1 && r->flops < min_2t_win) min_2t_win = r->flops;
    }
    printf("    verdict: the threshold picks a thread count within 10%% of the best at %d of %d "
           "shapes%s\n", n - wrong, n, wrong ? " -> revisit it" : " -> right");
    if (min_2t_win < 1e300 && max_1t_win < min_2t_win)
        printf("    measured crossover: 1 thread wins up to %.1f MFLOP, 2 threads from %.1f MFLOP "
               "(a threshold in between, e.g. %.1f MFLOP, fits)\n", max_1t_win * 1e-6,
               min_2t_win * 1e-6, sqrt(max_1t_win * min_2t_win) * 1e-6);
    else if (min_2t_win < 1e300)
        printf("    no clean crossover: 1 thread wins up to %.1f MFLOP, 2 threads already at "
               "%.1f MFLOP (shape matters, not only size)\n", max_1t_win * 1e-6,
               min_2t_win * 1e-6);
    else
        printf("    1 thread wins at every measured shape\n");
}

/* ---- (c) heap allocations per warm training step ------------------------------------
 * logits = relu(X W1 + b1) W2 + b2, X [B, 64], W1 [64, 128], W2 [128, 10];
 * loss = cross_entropy(logits, y); plain SGD: p -= lr * dp. */
enum { MLP_B = 64, MLP_IN = 64, MLP_H = 128, MLP_OUT = 10, WARM_STEPS = 20, MLP_STEPS = 2000 };

typedef struct mlp {
    tg_tensor *x, *y;                  /* batch, TG_I32 targets */
    tg_tensor *params[4];              /* W1, b1, W2, b2        */
} mlp;

static int mlp_open(mlp *net, tg_rng *rng) {
    net->x = tg_tensor_new(TG_F32, 2, (int64_t[]){MLP_B, MLP_IN});
    net->y = tg_tensor_new(TG_I32, 1, (int64_t[]){MLP_B});
    net->params[0] = tg_tensor_new(TG_F32, 2, (int64_t[]){MLP_IN, MLP_H});
    net->params[1] = tg_tensor_new(TG_F32, 1, (int64_t[]){MLP_H});
    net->params[2] = tg_tensor_new(TG_F32, 2, (int64_t[]){MLP_H, MLP_OUT});
    net->params[3] = tg_tensor_new(TG_F32, 1, (int64_t[]){MLP_OUT});
    for (int i = 0; i < 4; i++)
        if (!net->params[i]) return -1;
    if (!net->x || !net->y) return -1;
    fill_uniform(net->x, rng, -1, 1);
    for (int64_t i = 0; i < MLP_B; i++) tg_tensor_set(net->y, i, (double)(tg_rng_next(rng) % MLP_OUT));
    fill_uniform(net->params[0], rng, -1 / sqrt(MLP_IN), 1 / sqrt(MLP_IN));
    fill_uniform(net->params[2], rng, -1 / sqrt(MLP_H), 1 / sqrt(MLP_H));
    for (int i = 0; i < 4; i++) tg_tensor_set_requires_grad(net->params[i], true);
    return 0;
}

static void mlp_close(mlp *net) {
    tg_tensor_free(net->x);
    tg_tensor_free(net->y);
    for (int i = 0; i < 4; i++) tg_tensor_free(net->params[i]);
}

/* One step; returns the loss, NaN on error (message on the tape). */
static double mlp_step(tg_tape *tp, mlp *net, float lr) {
    tg_tensor **p = net->params;
    for (int i = 0; i < 4; i++) tg_tensor_zero_grad(p[i]);
    tg_tensor *h = tg_relu(tp, tg_add(tp, tg_matmul(tp, net->x, p[0]), p[1]));   /* [B, H] */
    tg_tensor *logits = tg_add(tp, tg_matmul(tp, h, p[2]), p[3]);                 /* [B, 10] */
    tg_tensor *loss = tg_cross_entropy(tp, logits, net->y);
    double value = loss ? tg_tensor_item(loss) : NAN;
    if (!loss || tg_backward(tp, loss) != TG_OK) return NAN;
    for (int i = 0; i < 4; i++) {
        float *w = tg_tensor_data(p[i]);
        const float *dw = tg_tensor_grad(p[i]);
        for (int64_t j = 0; dw && j < tg_tensor_numel(p[i]); j++) w[j] -= lr * dw[j];
    }
    tg_tape_reset(tp);
    return value;
}

static int bench_heap(const int *threads, int n_threads, tg_rng *rng) {
    printf("\n(c) heap allocations per warm training step: MLP %d -> %d -> %d, batch %d, relu,\n"
           "    cross-entropy, inline SGD; %d warm-up steps, then %d measured; target 0\n",
           MLP_IN, MLP_H, MLP_OUT, MLP_B, WARM_STEPS, MLP_STEPS);
    printf("    threads | tg_heap_allocs/step | tape stats/step | all mallocs/step | us/step"
           " | loss first -> last\n");
    for (int ti = 0; ti < n_threads; ti++) {
        mlp net;
        tg_tape *tp = tg_tape_new();
        if (!tp || mlp_open(&net, rng)) return die("mlp setup", tp);
        tg_tape_set_threads(tp, threads[ti]);
        double first = 0, last = 0;
        for (int s = 0; s < WARM_STEPS; s++) {
            last = mlp_step(tp, &net, 0.1f);
            if (isnan(last)) return die("mlp step", tp);
            if (s == 0) first = last;
        }
        tg_tape_stats st0, st1;
        tg_tape_stats_get(tp, &st0);
        uint64_t lib0 = tg_heap_allocs(), all0 = process_alloc_count();
        double t0 = now_s();
        for (int s = 0; s < MLP_STEPS && !isnan(last); s++) last = mlp_step(tp, &net, 0.1f);
        if (isnan(last)) return die("mlp step", tp);
        double dt = now_s() - t0;
        uint64_t lib = tg_heap_allocs() - lib0, all = process_alloc_count() - all0;
        tg_tape_stats_get(tp, &st1);
        char buf[32];
        printf("    %7d | %19.3f | %15.3f | %16s | %7.1f | %.4f -> %.4f %s\n", threads[ti],
               (double)lib / MLP_STEPS, (double)(st1.heap_allocs - st0.heap_allocs) / MLP_STEPS,
               per_unit(buf, sizeof buf, all, MLP_STEPS), 1e6 * dt / MLP_STEPS, first, last,
               lib == 0 ? "(target met)" : "(target NOT met)");
        mlp_close(&net);
        tg_tape_free(tp);
    }
    return 0;
}

int main(int argc, char **argv) {
    bool only_recurrent = argc > 1 && strcmp(argv[1], "--recurrent") == 0;
    if (argc > 1 && !only_recurrent) {
        printf("usage: %s [--recurrent]\n  prints the core engine's benchmark figures (about 30 "
               "s); --recurrent: only (d)\n", argv[0]);
        return strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    tg_init();   /* BLIS picks its sub-configuration here, before any direct call */
    static const int threads[] = {1, 2};
    tg_rng rng = tg_rng_seeded(42);
    printf("tapegrad bench_core: BLIS sub-configuration %s, default threads %d%s\n",
           tg_blas_arch(), tg_default_threads(),
#ifdef __OPTIMIZE__
           ""
#else
           " (UNOPTIMISED build: figures are meaningless)"
#endif
    );
    double t0 = now_s();
    if (only_recurrent) return bench_recurrent(threads, 2, &rng);
    if (bench_tape_overhead(threads, 2) || bench_matmul(threads, 2, &rng) ||
        bench_recurrent(threads, 2, &rng) || bench_sup(&rng) || bench_gemm_policy(&rng) ||
        bench_heap(threads, 2, &rng))
        return 1;
    if (BENCH_COUNT_MALLOC)
        printf("\nprocess-wide malloc/calloc/realloc counter is live: %llu calls in this run\n",
               (unsigned long long)process_alloc_count());
    printf("total time %.1f s\n", now_s() - t0);
    return 0;
}
