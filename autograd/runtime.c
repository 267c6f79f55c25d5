/* autograd/runtime.c - once-only BLIS set-up, thread defaults, heap counter,
 * per-thread last error, RNG. */
#define _GNU_SOURCE
#include "internal.h"

#include <blis.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- heap counter -------------------------------------------------------- */
static atomic_uint_fast64_t heap_alloc_count;

void *tg__malloc(size_t bytes) {
    atomic_fetch_add_explicit(&heap_alloc_count, 1, memory_order_relaxed);
    return malloc(bytes ? bytes : 1);
}

void *tg__calloc(size_t n, size_t size) {
    atomic_fetch_add_explicit(&heap_alloc_count, 1, memory_order_relaxed);
    return calloc(n ? n : 1, size ? size : 1);
}

void tg__count_alloc(void) { atomic_fetch_add_explicit(&heap_alloc_count, 1, memory_order_relaxed); }

uint64_t tg_heap_allocs(void) { return atomic_load(&heap_alloc_count); }

/* ---- errors without a tape ------------------------------------------------- */
static _Thread_local tg_status last_status;
static _Thread_local char last_msg[512];

tg_status tg_set_last_error(tg_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    last_status = st;
    return st;
}

const char *tg_last_error(void) { return last_msg; }
tg_status tg_last_status(void) { return last_status; }
void tg_clear_last_error(void) {
    last_status = TG_OK;
    last_msg[0] = '\0';
}

const char *tg_status_name(tg_status st) {
    switch (st) {
    case TG_OK: return "ok";
    case TG_ERR_SHAPE: return "shape error";
    case TG_ERR_DTYPE: return "dtype error";
    case TG_ERR_AXIS: return "axis error";
    case TG_ERR_INDEX: return "index error";
    case TG_ERR_ARG: return "bad argument";
    case TG_ERR_NOMEM: return "out of memory";
    case TG_ERR_IO: return "I/O error";
    case TG_ERR_FORMAT: return "format error";
    case TG_ERR_STATE: return "invalid state";
    }
    return "unknown status";
}

/* ---- BLIS ---------------------------------------------------------------------
 * Debian's BLIS 0.9.0 falls back to slow kernels on CPUs it does not know
 * (Zen 4/5 -> generic; Xeons whose FMA-unit count it cannot read -> haswell).
 * Its AVX-512 "skx" kernels run 1.7-6x faster there. BLIS reads BLIS_ARCH_TYPE
 * only when bli_init() runs before the first bli_arch_query_id(), so we set it
 * for the duration of bli_init() and restore the environment afterwards. A
 * BLIS_ARCH_TYPE the user set is left alone. */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int default_threads_at_start;
static atomic_int default_threads_override;

static int fastest_arch_for_cpu(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        return BLIS_ARCH_SKX;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return __builtin_cpu_is("amd") ? BLIS_ARCH_ZEN : BLIS_ARCH_HASWELL;
    return -1; /* let BLIS decide */
}

static int threads_from_env(void) {
    const char *s = getenv("TG_NUM_THREADS");
    if (s && *s) {
        int n = atoi(s);
        if (n > 0) return n;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (int)cores : 1;
}

static void init_runtime(void) {
    const char *user_choice = getenv("BLIS_ARCH_TYPE");
    int arch = (user_choice && *user_choice) ? -1 : fastest_arch_for_cpu();
    if (arch >= 0) {
        char id[16];
        snprintf(id, sizeof id, "%d", arch);
        setenv("BLIS_ARCH_TYPE", id, 1);
        bli_init();
        unsetenv("BLIS_ARCH_TYPE");
    } else {
        bli_init();
    }
    (void)bli_arch_query_id();
    /* Every shape reaches BLIS validated by an op's infer; BLIS's own checks
     * cost a visible share of tiny GEMMs (attention over a few keys). */
    bli_error_checking_level_set(BLIS_NO_ERROR_CHECKING);
    default_threads_at_start = threads_from_env();
}

void tg_init(void) { pthread_once(&init_once, init_runtime); }

const char *tg_blas_arch(void) {
    tg_init();
    return bli_arch_string(bli_arch_query_id());
}

int tg_default_threads(void) {
    tg_init();
    int n = atomic_load(&default_threads_override);
    return n > 0 ? n : default_threads_at_start;
}

void tg_set_default_threads(int n) { atomic_store(&default_threads_override, n > 0 ? n : 0); }

/* ---- RNG: xoshiro256**, seeded through splitmix64 -------------------------- */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

tg_rng tg_rng_seeded(uint64_t seed) {
    tg_rng r;
    for (int i = 0; i < 4; i++) r.s[i] = splitmix64(&seed);
    return r;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t tg_rng_next(tg_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tg_rng_uniform(tg_rng *r) { return (double)(tg_rng_next(r) >> 11) * 0x1.0p-53; }

double tg_rng_normal(tg_rng *r) {
    /* Box-Muller; 1 - u keeps the log argument in (0, 1]. */
    double u = 1.0 - tg_rng_uniform(r), v = tg_rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}
