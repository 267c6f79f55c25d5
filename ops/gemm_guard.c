/* ops/gemm_guard.c - how many threads a GEMM gets.
 *
 * By size: below PARALLEL_MIN_FLOPS a second thread costs more in start-up
 * and synchronisation than it saves (measured, see docs/performance.md).
 *
 * By contention: an OpenMP team waits at its barriers for every thread. When
 * another process holds the second core, each multi-threaded GEMM waits for
 * a descheduled thread (a time slice, milliseconds) and a 2-thread run got
 * 6-30x slower than a 1-thread one (libgomp reads OMP_WAIT_POLICY only at
 * load, and a passive policy is no cure: the wake-up is what is late). So
 * multi-threaded calls are timed. The first time a shape is seen it runs on
 * one thread, as a yardstick; after that a multi-threaded call that takes
 * twice that yardstick, or several times the fastest the shape has run
 * multi-threaded, had a thread waiting for a core, and every GEMM then runs
 * on one thread for a while. The next multi-threaded call after that probes
 * again: the while doubles as long as the contention lasts (up to a second,
 * so probing costs well under 1%) and halves with each call that runs at
 * speed.
 *
 * The state is per process (contention is the machine's), in relaxed
 * atomics: racing updates from several tapes only blur the estimates. */
#include "gemm_internal.h"

#include <stdatomic.h>
#include <time.h>

enum { HISTORY = 128, PROBES = 4 };          /* shapes remembered                  */
static const double PARALLEL_MIN_FLOPS = 8e6;
static const uint64_t SLOW_FACTOR = 4;       /* this many times the shape's best ... */
static const uint64_t SLOW_SLACK_NS = 100000; /* ... plus this: a thread was waiting */
static const uint64_t PENALTY_MIN_NS = 50000000, PENALTY_MAX_NS = 1000000000;

typedef struct shape_seen {
    _Atomic uint64_t key;                    /* dtype, m, n, k, threads             */
    _Atomic uint64_t one_ns, best_ns;        /* on one thread (first call); best    */
} shape_seen;
static shape_seen seen[HISTORY];
static _Atomic uint64_t one_thread_until_ns, penalty_ns;

double tg__gemm_parallel_min_flops(void) { return PARALLEL_MIN_FLOPS; }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mix(uint64_t h, uint64_t v) { return h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)); }

#define RELAXED memory_order_relaxed

/* A shape lives in one of PROBES slots from its hash on. */
static int find(uint64_t key) {
    for (int i = 0; i < PROBES; i++) {
        int s = (int)((key + (uint64_t)i) % HISTORY);
        if (atomic_load_explicit(&seen[s].key, RELAXED) == key) return s;
    }
    return -1;
}

/* A slot for a new shape: a free one, else the first (its shape is forgotten). */
static int claim(uint64_t key) {
    for (int i = 0; i < PROBES; i++) {
        int s = (int)((key + (uint64_t)i) % HISTORY);
        if (atomic_load_explicit(&seen[s].key, RELAXED) == 0) return s;
    }
    return (int)(key % HISTORY);
}

int tg__gemm_threads_begin(const tg_tape *tp, tg_dtype dt, int64_t m, int64_t n, int64_t k,
                           tg__gemm_timing *tm) {
    int nt = tg_tape_threads(tp);
    *tm = (tg__gemm_timing){.threads = 1, .slot = -1};
    if (nt < 2 || 2.0 * (double)m * (double)n * (double)k < PARALLEL_MIN_FLOPS) return 1;
    uint64_t t = now_ns();
    if (t < atomic_load_explicit(&one_thread_until_ns, RELAXED)) return 1;
    uint64_t key = mix(mix(mix(mix(mix(1, (uint64_t)dt), (uint64_t)m), (uint64_t)n),
                           (uint64_t)k), (uint64_t)nt) | 1;   /* 0 marks a free slot */
    int slot = find(key);
    bool known = slot >= 0;
    *tm = (tg__gemm_timing){.threads = known ? nt : 1, .slot = known ? slot : claim(key),
                            .key = key, .t0 = t};
    return tm->threads;
}

static void penalise(uint64_t t) {
    uint64_t p = atomic_load_explicit(&penalty_ns, RELAXED);
    p = p < PENALTY_MIN_NS ? PENALTY_MIN_NS : p;
    atomic_store_explicit(&one_thread_until_ns, t + p, RELAXED);
    atomic_store_explicit(&penalty_ns, p * 2 < PENALTY_MAX_NS ? p * 2 : PENALTY_MAX_NS, RELAXED);
}

void tg__gemm_threads_end(const tg__gemm_timing *tm) {
    if (tm->slot < 0) return;
    uint64_t t = now_ns(), took = t - tm->t0;
    shape_seen *s = &seen[tm->slot];
    if (tm->threads == 1) {   /* the shape's first call: the one-thread yardstick */
        atomic_store_explicit(&s->one_ns, took, RELAXED);
        atomic_store_explicit(&s->best_ns, UINT64_MAX / 8, RELAXED);
        atomic_store_explicit(&s->key, tm->key, RELAXED);
        return;
    }
    uint64_t best = atomic_load_explicit(&s->best_ns, RELAXED);
    uint64_t one = atomic_load_explicit(&s->one_ns, RELAXED);
    if (took < best) atomic_store_explicit(&s->best_ns, took, RELAXED);
    bool waited = took > 2 * one + SLOW_SLACK_NS ||
                  (best < UINT64_MAX / 8 && took > SLOW_FACTOR * best + SLOW_SLACK_NS);
    if (waited)
        penalise(t);
    else
        atomic_store_explicit(&penalty_ns, atomic_load_explicit(&penalty_ns, RELAXED) / 2,
                              RELAXED);
}
