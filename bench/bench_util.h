/* bench/bench_util.h - shared by the workload programs w1..w5 (issue 6).
 *
 * Each program is one translation unit that includes this header once; the
 * helpers are static. A program runs ONE workload at one thread count, so its
 * peak RSS (ru_maxrss) is that workload's, and prints a human-readable summary
 * followed by one JSON line (the line starting with '{') that bench/compare.py
 * reads.
 *
 * Common options (bench_parse):
 *   --threads N      BLIS threads for the tape and for the GEMM floor (default 1)
 *   --min-time S     seconds of timed iterations (default 2; at least --min-iters)
 *   --min-iters N    default 10
 *   --warmup S       seconds of warm-up, at least 3 iterations (default 0.5)
 *   --no-floor       skip the GEMM floor measurement
 *   --verbose        print the GEMM floor per shape
 *   --cpu-clock      time iterations by the process's CPU clock, not the wall
 *                    (1 thread on a shared machine: time spent descheduled
 *                    does not count; with more threads it sums them)
 *   --profile FILE   profile every tape (TG_PROFILE=FILE, tapegrad/inspect.h):
 *                    a Chrome trace in FILE, the per-op table and the memory
 *                    report on stderr when the tape is freed (warm-up and
 *                    timed iterations alike; the profiler's own cost is in
 *                    the times printed)
 * Programs add their own options through bench_parse's callback. */
#ifndef TG_BENCH_UTIL_H
#define TG_BENCH_UTIL_H

#include <stdlib.h>   /* first: defines __GLIBC__ for the allocation counter */

#include <tapegrad.h>
#include <tapegrad/nn.h>
#include <tapegrad/optim.h>

#include <blis.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* ---- process-wide allocation counter --------------------------------------------
 * tg_heap_allocs() counts the library's own allocations; interposing malloc
 * also sees BLIS, OpenMP and libc. Not under sanitizers (they interpose too). */
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define BENCH_COUNT_MALLOC 1
extern void *__libc_malloc(size_t bytes);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t bytes);
static atomic_uint_fast64_t bench_process_allocs;
void *malloc(size_t bytes) {
    atomic_fetch_add_explicit(&bench_process_allocs, 1, memory_order_relaxed);
    return __libc_malloc(bytes);
}
void *calloc(size_t n, size_t size) {
    atomic_fetch_add_explicit(&bench_process_allocs, 1, memory_order_relaxed);
    return __libc_calloc(n, size);
}
void *realloc(void *p, size_t bytes) {
    atomic_fetch_add_explicit(&bench_process_allocs, 1, memory_order_relaxed);
    return __libc_realloc(p, bytes);
}
static uint64_t bench_mallocs(void) { return atomic_load(&bench_process_allocs); }
#else
#define BENCH_COUNT_MALLOC 0
static uint64_t bench_mallocs(void) { return 0; }
#endif

/* ---- options ----------------------------------------------------------------------- */
typedef struct bench_opts {
    int threads;
    double min_time, warmup;
    int min_iters;
    bool no_floor, verbose, cpu_clock;
} bench_opts;

/* A program's own option: returns the number of argv entries it used (0: not its). */
typedef int (*bench_opt_fn)(int argc, char **argv, int i, void *ctx);

static inline void bench_usage(const char *prog, const char *extra) {
    fprintf(stderr,
            "usage: %s [--threads N] [--min-time S] [--min-iters N] [--warmup S] [--no-floor]"
            " [--verbose] [--cpu-clock] [--profile FILE]%s%s\n",
            prog, extra ? " " : "", extra ? extra : "");
}

/* Returns 0, or 2 after printing usage. */
static inline int bench_parse(int argc, char **argv, bench_opts *o, bench_opt_fn own,
                              void *ctx, const char *extra_usage) {
    *o = (bench_opts){.threads = 1, .min_time = 2.0, .warmup = 0.5, .min_iters = 10};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int used = own ? own(argc, argv, i, ctx) : 0;
        if (used < 0) break;
        if (used > 0) {
            i += used - 1;
        } else if (!strcmp(a, "--threads") && v) {
            o->threads = atoi(v), i++;
        } else if (!strcmp(a, "--min-time") && v) {
            o->min_time = atof(v), i++;
        } else if (!strcmp(a, "--min-iters") && v) {
            o->min_iters = atoi(v), i++;
        } else if (!strcmp(a, "--warmup") && v) {
            o->warmup = atof(v), i++;
        } else if (!strcmp(a, "--no-floor")) {
            o->no_floor = true;
        } else if (!strcmp(a, "--verbose")) {
            o->verbose = true;
        } else if (!strcmp(a, "--cpu-clock")) {
            o->cpu_clock = true;
        } else if (!strcmp(a, "--profile") && v && *v) {
            setenv("TG_PROFILE", v, 1), i++;   /* read by every tape made from here on */
        } else {
            bench_usage(argv[0], extra_usage);
            return 2;
        }
    }
    if (o->threads < 1 || o->min_iters < 1 || !(o->min_time >= 0) || !(o->warmup >= 0)) {
        bench_usage(argv[0], extra_usage);
        return 2;
    }
    return 0;
}

/* ---- timing ------------------------------------------------------------------------ */
static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline double bench_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One training iteration; returns 0, or -1 on error (the program reports it). */
typedef int (*bench_step_fn)(void *ctx);

typedef struct bench_result {
    double sec;              /* median seconds per iteration                 */
    double best;             /* fastest iteration (on a shared machine, the  */
                             /* least disturbed one)                         */
    int iters;               /* timed iterations                             */
    double lib_allocs;       /* tg_heap_allocs per timed iteration           */
    double all_allocs;       /* process-wide mallocs per timed iteration     */
} bench_result;

enum { BENCH_MAX_ITERS = 100000 };

/* Warm-up (>= 3 iterations and warmup seconds), then iterations timed one by
 * one until min_time and min_iters are both reached. Allocation counters
 * cover the timed (steady) iterations only. */
static inline int bench_measure(bench_step_fn step, void *ctx, const bench_opts *o,
                                bench_result *r) {
    double end = bench_now() + o->warmup;
    for (int i = 0; i < 3 || bench_now() < end; i++)
        if (step(ctx) != 0) return -1;
    static double times[BENCH_MAX_ITERS];
    int n = 0;
    uint64_t lib0 = tg_heap_allocs(), all0 = bench_mallocs();
    end = bench_now() + o->min_time;
    while (n < BENCH_MAX_ITERS && (n < o->min_iters || bench_now() < end)) {
        double t0 = bench_now(), c0 = bench_cpu_now();
        if (step(ctx) != 0) return -1;
        times[n++] = o->cpu_clock ? bench_cpu_now() - c0 : bench_now() - t0;
    }
    r->lib_allocs = (double)(tg_heap_allocs() - lib0) / n;
    r->all_allocs = (double)(bench_mallocs() - all0) / n;
    r->iters = n;
    r->sec = bench_median(times, n);   /* sorts: times[0] is the fastest */
    r->best = times[0];
    return 0;
}

static inline long bench_rss_kb(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

/* ---- GEMM floor -----------------------------------------------------------------------
 * The GEMMs a training step cannot avoid, each at its shape, timed by calling
 * bli_sgemm_ex directly (row-major, transposes by flags as ops/gemm.c does):
 * C[m,n] = op(A)[m,k] op(B)[k,n], `count` times per step. The floor is the
 * sum of count x median time; the FLOP count is the sum of 2mnk x count.
 *
 * Reported both ways: with today's per-step BLIS calls (BLIS repacks the
 * recurrent weight at every call), and in the packed-once formulation, where
 * the `recurrent` products (the same right operand at every step: h W_hh^T,
 * dZ W_hh) are timed through the engine instead: `count` tg_matmul calls on a
 * recording tape, which packs the operand once per recording and runs BLIS's
 * micro-kernel over it (ops/gemm_pack.c), per-recording packing included. */
typedef struct bench_gemm {
    const char *what;
    int64_t m, n, k;
    bool ta, tb;
    int64_t count;
    bool recurrent;          /* same right operand at every step of the sequence    */
} bench_gemm;

typedef struct bench_floor {
    double gflop;            /* GEMM GFLOP per step                                 */
    double sec;              /* floor at exactly `threads` BLIS threads             */
    double sec_best;         /* each shape at its best of 1..threads threads        */
    double sec_packed;       /* recurrent products packed once, `threads` threads   */
    double sec_packed_best;  /* the same, each shape at its best of 1..threads      */
} bench_floor;

static inline double bench_gemm_once(const bench_gemm *g, int threads, float *a, float *b,
                                     float *c) {
    float one = 1.0f, zero = 0.0f;
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(threads, &rntm);
    int64_t lda = g->ta ? g->m : g->k, ldb = g->tb ? g->k : g->n;
    double t0 = bench_now();
    bli_sgemm_ex(g->ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 g->tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, g->m, g->n, g->k, &one, a, lda, 1,
                 b, ldb, 1, &zero, c, g->n, 1, NULL, &rntm);
    return bench_now() - t0;
}

/* Median seconds of one GEMM over 7 batches of calls, each about 1.5 ms long. */
static inline double bench_gemm_time(const bench_gemm *g, int threads, float *a, float *b,
                                     float *c) {
    double one = 0, s[7];
    for (int i = 0; i < 3; i++) one = bench_gemm_once(g, threads, a, b, c);
    int reps = (int)(1.5e-3 / (one + 1e-7)) + 1;   /* about 1.5 ms per batch */
    for (int r = 0; r < 7; r++) {
        double t = 0;
        for (int i = 0; i < reps; i++) t += bench_gemm_once(g, threads, a, b, c);
        s[r] = t / reps;
    }
    return bench_median(s, 7);
}

/* One recording of g->count products through the engine, W recurring. */
static inline double bench_engine_once(const bench_gemm *g, tg_tape *tp, tg_tensor *a,
                                       tg_tensor *w) {
    tg_matmul_opts o = {.trans_a = g->ta, .trans_b = g->tb};
    double t0 = bench_now();
    for (int64_t i = 0; i < g->count; i++) tg_matmul_ex(tp, a, w, &o);
    double t = bench_now() - t0;
    tg_tape_reset(tp);
    return t;
}

/* Seconds per product of a recurrent g through the engine (median of 7
 * recordings); a and b are g's operands as bench_gemm_time uses them. */
static inline double bench_engine_time(const bench_gemm *g, int threads, float *a, float *b) {
    tg_tape *tp = tg_tape_new();
    int64_t ra = g->ta ? g->k : g->m, ca = g->ta ? g->m : g->k;
    int64_t rb = g->tb ? g->n : g->k, cb = g->tb ? g->k : g->n;
    tg_tensor *ta = tg_tensor_wrap(TG_F32, 2, (int64_t[]){ra, ca}, a);
    tg_tensor *tw = tg_tensor_wrap(TG_F32, 2, (int64_t[]){rb, cb}, b);
    double s[7] = {0};
    if (tp && ta && tw) {
        tg_tape_set_threads(tp, threads);
        tg_tensor_set_requires_grad(tw, true);   /* recorded, as in training */
        for (int i = 0; i < 2; i++) bench_engine_once(g, tp, ta, tw);
        for (int r = 0; r < 7; r++) s[r] = bench_engine_once(g, tp, ta, tw) / (double)g->count;
    }
    tg_tensor_free(ta);
    tg_tensor_free(tw);
    tg_tape_free(tp);
    return bench_median(s, 7);
}

static inline int bench_gemm_floor(const bench_gemm *gs, int n, int threads, bool verbose,
                                   bench_floor *f) {
    *f = (bench_floor){0};
    for (int i = 0; i < n; i++) {
        const bench_gemm *g = &gs[i];
        /* +64 bytes: BLIS edge kernels may touch just past C (see tensor.h) */
        size_t na = (size_t)(g->m * g->k) + 16, nb = (size_t)(g->k * g->n) + 16,
               nc = (size_t)(g->m * g->n) + 16;
        float *a = calloc(na, sizeof *a), *b = calloc(nb, sizeof *b), *c = calloc(nc, sizeof *c);
        if (!a || !b || !c) {
            free(a), free(b), free(c);
            return -1;
        }
        for (size_t j = 0; j < na; j++) a[j] = (float)((j * 7 % 13) - 6) * 0.1f;
        for (size_t j = 0; j < nb; j++) b[j] = (float)((j * 5 % 11) - 5) * 0.1f;
        double t = bench_gemm_time(g, threads, a, b, c), best = t;
        for (int th = 1; th < threads; th++) {
            double tt = bench_gemm_time(g, th, a, b, c);
            if (tt < best) best = tt;
        }
        double tp = t, tp_best = best;   /* packed once: the recurrent products only */
        for (int th = 1; g->recurrent && th <= threads; th++) {
            double tt = bench_engine_time(g, th, a, b);
            if (th == threads) tp = tt;
            if (th == 1 || tt < tp_best) tp_best = tt;
        }
        double flops = 2.0 * (double)g->m * (double)g->n * (double)g->k;
        f->gflop += flops * (double)g->count * 1e-9;
        f->sec += t * (double)g->count;
        f->sec_best += best * (double)g->count;
        f->sec_packed += tp * (double)g->count;
        f->sec_packed_best += tp_best * (double)g->count;
        if (verbose)
            printf("    gemm %-28s m %5lld n %5lld k %5lld %c%c x%-4lld %7.1f GFLOP/s"
                   " (best of 1..%d: %.1f)  %8.3f ms/step\n",
                   g->what, (long long)g->m, (long long)g->n, (long long)g->k,
                   g->ta ? 'T' : 'N', g->tb ? 'T' : 'N', (long long)g->count, flops / t * 1e-9,
                   threads, flops / best * 1e-9, t * (double)g->count * 1e3);
        if (verbose && g->recurrent)
            printf("         %-28s packed once (engine)               %7.1f GFLOP/s"
                   " (best of 1..%d: %.1f)  %8.3f ms/step\n", "", flops / tp * 1e-9, threads,
                   flops / tp_best * 1e-9, tp * (double)g->count * 1e3);
        free(a), free(b), free(c);
    }
    return 0;
}

/* ---- one training iteration -----------------------------------------------------------
 * zero_grad, forward (the workload's model -> scalar loss), backward, Adam
 * step (the library's tg_optim, PyTorch 1.13 defaults, lr 1e-3), reset. */
typedef tg_tensor *(*bench_forward_fn)(tg_tape *tp, void *model);

typedef struct bench_train {
    tg_tape *tp;
    tg_optim *opt;
    bench_forward_fn forward;
    void *model;
    double loss;             /* last loss, to show the step trains */
    uint64_t nodes;          /* ops recorded by the last step      */
    tg_tape_stats step;      /* the last step's tape, before reset */
} bench_train;

static inline int bench_train_step(void *ctx) {
    bench_train *t = ctx;
    tg_optim_zero_grad(t->opt);
    tg_tensor *loss = t->forward(t->tp, t->model);
    if (!loss || tg_backward(t->tp, loss) != TG_OK || tg_optim_step(t->opt) != TG_OK) {
        fprintf(stderr, "bench: step failed: %s%s\n", tg_tape_error(t->tp), tg_last_error());
        return -1;
    }
    t->loss = tg_tensor_item(loss);
    tg_tape_stats_get(t->tp, &t->step);
    t->nodes = t->step.nodes;
    tg_tape_reset(t->tp);
    return 0;
}

/* Tape at `threads` threads and an Adam optimizer over p; 0 or -1. */
static inline int bench_train_open(bench_train *t, tg_params *p, int threads,
                                   bench_forward_fn fwd, void *model) {
    tg_set_default_threads(threads);
    *t = (bench_train){.tp = tg_tape_new(), .opt = tg_optim_new(TG_OPTIM_ADAM, p, 1e-3),
                       .forward = fwd, .model = model};
    if (!t->tp || !t->opt) {
        fprintf(stderr, "bench: setup failed: %s\n", tg_last_error());
        return -1;
    }
    tg_tape_set_threads(t->tp, threads);
    return 0;
}

static inline void bench_train_close(bench_train *t) {
    tg_optim_free(t->opt);
    tg_tape_free(t->tp);
}

/* ---- report ------------------------------------------------------------------------------ */
typedef struct bench_report {
    const char *workload;    /* "W1", "W6-T64-B32", ...            */
    const char *variant;     /* "composed (tg_rnn LSTM)", ...       */
    int threads;
    int64_t tokens;          /* per iteration (0: not applicable)   */
    double ops;              /* W5: recorded ops per iteration      */
    const bench_result *r;
    const bench_floor *floor;   /* NULL: none                       */
    const tg_tape *tp;          /* arena figures from it, or NULL   */
    uint64_t nodes;             /* ops recorded per iteration       */
    const char *side;           /* "tapegrad" (NULL) or "onednn"    */
    const tg_tape_stats *step;  /* a step's tape before reset, or NULL */
} bench_report;

static inline void bench_print(const bench_report *rp) {
    const bench_result *r = rp->r;
    const bench_floor *f = rp->floor;
    double ms = r->sec * 1e3;
    printf("%s  %s  threads %d  BLIS %s%s\n", rp->workload, rp->variant, rp->threads,
           rp->side ? "(not used)" : tg_blas_arch(),
#ifdef __OPTIMIZE__
           ""
#else
           "  (UNOPTIMISED build: figures are meaningless)"
#endif
    );
    printf("  median %.3f ms/iter (fastest %.3f) over %d iterations", ms, r->best * 1e3, r->iters);
    if (rp->tokens) printf(", %.0f tokens/s", (double)rp->tokens / r->sec);
    if (rp->ops > 0) printf(", %.1f ns/op", r->sec * 1e9 / rp->ops);
    printf("\n  heap allocations per steady iteration: tg_heap_allocs %.3f, all mallocs %s%.3f\n",
           r->lib_allocs, BENCH_COUNT_MALLOC ? "" : "(not counted) ", r->all_allocs);
    if (f) {
        printf("  GEMM floor: %.3f GFLOP/step, BLIS alone %.3f ms at %d thread(s) (%.3f ms with "
               "the best of 1..%d per shape); time / floor = %.2f (%.2f)\n",
               f->gflop, f->sec * 1e3, rp->threads, f->sec_best * 1e3, rp->threads,
               r->sec / f->sec, r->sec / f->sec_best);
        printf("  GEMM floor, recurrent products packed once: %.3f ms (%.3f ms with the best of "
               "1..%d per shape); time / floor = %.2f (%.2f)\n", f->sec_packed * 1e3,
               f->sec_packed_best * 1e3, rp->threads, r->sec / f->sec_packed,
               r->sec / f->sec_packed_best);
    }
    long rss = bench_rss_kb();
    tg_tape_stats st = {0};
    if (rp->tp) tg_tape_stats_get(rp->tp, &st);
    const double MB = 1048576.0;
    printf("  peak RSS %.1f MB; tape arena %.1f MB, %llu ops recorded per iteration\n",
           (double)rss / 1024.0, (double)st.arena_capacity / MB, (unsigned long long)rp->nodes);
    if (rp->step) {   /* merged < deferred: successive steps' rows were contiguous */
        printf("  arena per step: %.1f MB used (activations %.1f, gradients %.1f, scratch %.1f)\n",
               (double)rp->step->arena_used / MB, (double)rp->step->arena_activations / MB,
               (double)rp->step->arena_gradients / MB, (double)rp->step->arena_scratch / MB);
        printf("  GEMM engine per step: %llu products on packed-once operands; %llu weight-gradient"
               " contributions deferred, run as %llu GEMMs\n",
               (unsigned long long)rp->step->gemm_packed,
               (unsigned long long)rp->step->gemm_deferred,
               (unsigned long long)rp->step->gemm_merged);
    }
    printf("{\"side\": \"%s\", \"workload\": \"%s\", \"variant\": \"%s\", \"threads\": %d, "
           "\"ms\": %.6f, \"best_ms\": %.6f, \"iters\": %d, \"tokens_per_s\": ",
           rp->side ? rp->side : "tapegrad", rp->workload, rp->variant, rp->threads, ms,
           r->best * 1e3, r->iters);
    if (rp->tokens) printf("%.3f", (double)rp->tokens / r->sec);
    else printf("null");
    if (rp->ops > 0) printf(", \"ns_per_op\": %.3f", r->sec * 1e9 / rp->ops);
    printf(", \"lib_allocs\": %.4f, \"all_allocs\": %.4f, \"rss_kb\": %ld, \"blis\": \"%s\"",
           r->lib_allocs, r->all_allocs, rss, tg_blas_arch());
    printf(", \"arena_mb\": %.3f, \"tape_ops\": %llu", (double)st.arena_capacity / MB,
           (unsigned long long)rp->nodes);
    if (rp->step)
        printf(", \"arena_used_mb\": %.3f, \"arena_activations_mb\": %.3f, "
               "\"arena_gradients_mb\": %.3f, \"arena_scratch_mb\": %.3f",
               (double)rp->step->arena_used / MB, (double)rp->step->arena_activations / MB,
               (double)rp->step->arena_gradients / MB, (double)rp->step->arena_scratch / MB);
    if (f)
        printf(", \"gemm_gflop\": %.6f, \"floor_ms\": %.6f, \"floor_best_ms\": %.6f, "
               "\"floor_packed_ms\": %.6f, \"floor_packed_best_ms\": %.6f", f->gflop,
               f->sec * 1e3, f->sec_best * 1e3, f->sec_packed * 1e3, f->sec_packed_best * 1e3);
    printf("}\n");
    fflush(stdout);
}

/* Fill a float tensor with U[lo, hi) from rng. */
static inline void bench_fill_uniform(tg_tensor *t, tg_rng *rng, double lo, double hi) {
    float *d = tg_tensor_data(t);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++)
        d[i] = (float)(lo + (hi - lo) * tg_rng_uniform(rng));
}

/* Integer ids in [0, n) into an I32 tensor. */
static inline void bench_fill_ids(tg_tensor *t, tg_rng *rng, int32_t n) {
    int32_t *d = tg_tensor_data(t);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++)
        d[i] = (int32_t)(tg_rng_next(rng) % (uint64_t)n);
}

#endif
