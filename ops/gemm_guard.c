/* ops/gemm_guard.c - how many threads a GEMM gets.
 *
 * By size: below PARALLEL_MIN_FLOPS (1 MFLOP, W3's per-step products) a
 * second thread is not tried at all.
 *
 * By measurement, per shape: above it, a shape's first calls run on one
 * thread (the yardstick below), then on all; the fastest time of each is
 * kept, and a shape whose fastest multi-threaded call was no faster than its
 * fastest one-thread call stays on one thread, trying all again once in
 * PROBE_EVERY calls. BLIS's own set-up makes two threads lose on small
 * products (below about 8 MFLOP through its API, docs/performance.md) and
 * on some thin ones (few rows of the result), where the packed path of
 * gemm_pack.c, which has no such set-up, may still win: so the size alone
 * does not decide.
 *
 * By contention: an OpenMP team waits at its barriers for every thread. When
 * another process holds the second core, a multi-threaded GEMM waits for a
 * descheduled thread (a time slice, milliseconds); per-step GEMMs of 0.1 ms
 * then take 4-20 ms and a 2-thread run got 6-30x slower than a 1-thread one.
 * libgomp reads OMP_WAIT_POLICY only at load, and a passive policy is no
 * cure: the wake-up is what is late. So the choice is timed:
 *
 *   - each shape's one-thread time is known: its first YARDSTICKS calls run
 *     on one thread, and so does every YARDSTICK_EVERY-th (the fastest is
 *     kept: the first call of a shape is often slower, its memory cold);
 *   - multi-threaded calls are summed against what the same calls take on one
 *     thread. When they have cost WASTE_NS more than one thread would, or
 *     were a quarter slower over a window of WINDOW calls, every GEMM runs on
 *     one thread for a while. The first window after that probes again: the
 *     while doubles as long as two threads lose (up to a second, so probing
 *     costs a few percent at most) and halves with each window they win.
 *
 * Occasional slow calls on a mostly free machine are fine as long as two
 * threads still win overall; only a net loss switches to one.
 *
 * The state is per process (contention is the machine's), in relaxed
 * atomics: racing updates from several tapes only blur the estimates. */
#include "gemm_internal.h"

#include <stdatomic.h>
#include <time.h>

enum {
    HISTORY = 128, PROBES = 4,   /* shapes remembered                                  */
    WINDOW = 32,                 /* multi-threaded calls weighed together              */
    YARDSTICKS = 3,              /* a shape's first calls on one thread ...            */
    YARDSTICK_EVERY = 1024,      /* ... and one in this many after them                */
    PROBE_EVERY = 64,            /* a shape faster on one thread tries more this often */
    TRIALS = 8,                  /* calls in a row on several before that is judged    */
};
static const double PARALLEL_MIN_FLOPS = 1e6, ALWAYS_MANY_FLOPS = 8e6;
static const uint64_t WASTE_NS = 8000000;    /* lost to waiting: one thread now       */
static const uint64_t PENALTY_MIN_NS = 50000000, PENALTY_MAX_NS = 1000000000;

typedef struct shape_seen {
    _Atomic uint64_t key;        /* dtype, m, n, k, threads; 0: free slot       */
    _Atomic uint64_t one_ns;     /* fastest on one thread                       */
    _Atomic uint64_t many_ns;    /* fastest on several; 0: not tried yet        */
    _Atomic uint64_t many_calls; /* calls on several                            */
    _Atomic uint64_t calls;
} shape_seen;
static shape_seen seen[HISTORY];
static _Atomic uint64_t one_thread_until_ns, penalty_ns;
static _Atomic int forced_threads;   /* tests: tg__gemm_force_threads */
/* the current window: multi-threaded time, the same calls on one thread, calls */
static _Atomic uint64_t win_many_ns, win_one_ns, win_calls;

#define RELAXED memory_order_relaxed
#define LOAD(x) atomic_load_explicit(&(x), RELAXED)
#define STORE(x, v) atomic_store_explicit(&(x), (v), RELAXED)

double tg__gemm_parallel_min_flops(void) { return PARALLEL_MIN_FLOPS; }

void tg__gemm_force_threads(int threads) { STORE(forced_threads, threads > 0 ? threads : 0); }

uint64_t tg__gemm_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mix(uint64_t h, uint64_t v) { return h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)); }

/* A shape lives in one of PROBES slots from its hash on. */
static int find(uint64_t key) {
    for (int i = 0; i < PROBES; i++) {
        int s = (int)((key + (uint64_t)i) % HISTORY);
        if (LOAD(seen[s].key) == key) return s;
    }
    return -1;
}

/* A slot for a new shape: a free one, else the first (its shape is forgotten). */
static int claim(uint64_t key) {
    for (int i = 0; i < PROBES; i++) {
        int s = (int)((key + (uint64_t)i) % HISTORY);
        if (LOAD(seen[s].key) == 0) return s;
    }
    return (int)(key % HISTORY);
}

/* Whether slot's shape (flops) has been slower on several threads than on one
 * (both fastest times, so a slow call on a busy machine does not decide it).
 * Only after TRIALS calls in a row on several: a lone call pays for waking
 * the team up, so the occasional probe alone would keep a shape on one thread
 * for good. From the old size rule up, several threads are kept (measured:
 * W1/W2's per-step products then run 1.7-1.9x one thread's rate). */
static bool one_is_faster(int slot, double flops) {
    uint64_t many = LOAD(seen[slot].many_ns);
    return flops < ALWAYS_MANY_FLOPS && LOAD(seen[slot].many_calls) >= TRIALS &&
           many >= LOAD(seen[slot].one_ns);
}

int tg__gemm_threads_begin(const tg_tape *tp, tg_dtype dt, int64_t m, int64_t n, int64_t k,
                           tg__gemm_timing *tm) {
    int nt = tg_tape_threads(tp), forced = LOAD(forced_threads);
    *tm = (tg__gemm_timing){.threads = forced > 0 ? forced : 1, .slot = -1};
    if (forced > 0) return forced;
    double flops = 2.0 * (double)m * (double)n * (double)k;
    if (nt < 2 || flops < PARALLEL_MIN_FLOPS) return 1;
    uint64_t t = tg__gemm_now_ns();
    uint64_t key = mix(mix(mix(mix(mix(1, (uint64_t)dt), (uint64_t)m), (uint64_t)n),
                           (uint64_t)k), (uint64_t)nt) | 1;   /* 0 marks a free slot */
    int slot = find(key);
    uint64_t calls = slot < 0 ? 0 : atomic_fetch_add_explicit(&seen[slot].calls, 1, RELAXED);
    bool one = slot < 0 || t < LOAD(one_thread_until_ns) || calls < YARDSTICKS ||
               calls % YARDSTICK_EVERY == 0 || (one_is_faster(slot, flops) && calls % PROBE_EVERY != 0);
    *tm = (tg__gemm_timing){.threads = one ? 1 : nt, .slot = slot < 0 ? claim(key) : slot,
                            .key = key, .t0 = t};
    return tm->threads;
}

static void start_window(void) {
    STORE(win_many_ns, 0);
    STORE(win_one_ns, 0);
    STORE(win_calls, 0);
}

/* Two threads lost: one thread for a while, longer each time in a row. */
static void penalise(uint64_t t) {
    uint64_t p = LOAD(penalty_ns);
    p = p < PENALTY_MIN_NS ? PENALTY_MIN_NS : p;
    STORE(one_thread_until_ns, t + p);
    STORE(penalty_ns, p * 2 < PENALTY_MAX_NS ? p * 2 : PENALTY_MAX_NS);
    start_window();
}

/* A one-thread call: it sets or improves its shape's yardstick. */
static void yardstick(const tg__gemm_timing *tm, uint64_t took) {
    shape_seen *s = &seen[tm->slot];
    if (LOAD(s->key) != tm->key) {   /* first sight (or a slot taken over) */
        STORE(s->one_ns, took);
        STORE(s->many_ns, 0);
        STORE(s->many_calls, 0);
        STORE(s->calls, 1);
        STORE(s->key, tm->key);
    } else if (took < LOAD(s->one_ns)) {
        STORE(s->one_ns, took);
    }
}

void tg__gemm_threads_end(const tg__gemm_timing *tm) {
    if (tm->slot < 0) return;
    uint64_t t = tg__gemm_now_ns(), took = t - tm->t0;
    if (tm->threads == 1) {
        yardstick(tm, took);
        return;
    }
    shape_seen *s = &seen[tm->slot];
    uint64_t best = LOAD(s->many_ns);
    if (LOAD(s->key) == tm->key) {
        atomic_fetch_add_explicit(&s->many_calls, 1, RELAXED);
        if (best == 0 || took < best) STORE(s->many_ns, took);
    }
    uint64_t many = atomic_fetch_add_explicit(&win_many_ns, took, RELAXED) + took;
    uint64_t one = atomic_fetch_add_explicit(&win_one_ns, LOAD(seen[tm->slot].one_ns), RELAXED) +
                   LOAD(seen[tm->slot].one_ns);
    uint64_t calls = atomic_fetch_add_explicit(&win_calls, 1, RELAXED) + 1;
    if (many > one + WASTE_NS) {
        penalise(t);
    } else if (calls >= WINDOW) {
        if (many > one + one / 4) {   /* clearly slower than one thread */
            penalise(t);
        } else {
            STORE(penalty_ns, LOAD(penalty_ns) / 2);
            start_window();
        }
    }
}
