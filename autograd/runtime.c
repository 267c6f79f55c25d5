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
    case TG_ERR_NUMERIC: return "NaN or Inf (anomaly mode)";
    }
    return "unknown status";
}

/* ---- BLIS ---------------------------------------------------------------------
 * Debian's BLIS 0.9.0 falls back to slow kernels on CPUs it does not know
 * (Zen 4/5 -> generic; Xeons whose FMA-unit count it cannot read -> haswell).
 * Its AVX-512 "skx" kernels run 1.7-6x faster there.
 *
 * BLIS 0.9 takes a sub-configuration only from the environment variable
 * BLIS_ARCH_TYPE, read once by its first bli_init(), and only as a number
 * ("haswell" reads as 0, which is skx: SIGILL on a CPU without AVX-512). Its
 * exported API has no other way to choose one (no lookup of another arch's
 * context), so the variable has to hold our choice during that one call.
 * setenv() races with getenv() in other threads, so the set-up runs in a
 * load-time constructor, before main() and before any thread of the program
 * exists; a program that dlopen()s tapegrad while its threads read the
 * environment is the case left (README, runtime settings). The user's own
 * value is respected: a number as BLIS reads it, a name translated to BLIS's
 * number for that call; an unknown name is ignored (our choice instead). The
 * environment is left as it was found. */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int default_threads_at_start, online_cores = 1;
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

enum { ARCH_AS_GIVEN = -2, ARCH_BLIS_DECIDES = -1 };

/* The id to hand BLIS for the user's BLIS_ARCH_TYPE text (NULL: unset). */
static int arch_to_request(const char *user) {
    if (user && *user) {
        char *end;
        (void)strtol(user, &end, 10);
        if (*end == '\0') return ARCH_AS_GIVEN; /* a number: BLIS reads it itself */
        for (int id = 0; id < BLIS_NUM_ARCHS; id++)
            if (strcmp(bli_arch_string((arch_t)id), user) == 0) return id;
    }
    return fastest_arch_for_cpu();
}

/* bli_init() with BLIS_ARCH_TYPE holding arch's number (or absent when BLIS is
 * to decide), then the user's value put back. */
static void blis_init_as(int arch, const char *user) {
    if (arch == ARCH_AS_GIVEN || (arch == ARCH_BLIS_DECIDES && !user)) {
        bli_init();
        return;
    }
    char id[16];
    snprintf(id, sizeof id, "%d", arch);
    if (arch >= 0)
        setenv("BLIS_ARCH_TYPE", id, 1);
    else
        unsetenv("BLIS_ARCH_TYPE");
    bli_init();
    if (user)
        setenv("BLIS_ARCH_TYPE", user, 1);
    else
        unsetenv("BLIS_ARCH_TYPE");
}

/* More threads than cores only queue up, and a huge count breaks things (a
 * 100000-thread BLIS team overflowed libgomp's stack; TG_NUM_THREADS=1000 on 2
 * cores ran for minutes): counts are clamped to this many per online core. */
enum { TG_THREADS_PER_CORE = 4 };

int tg__max_threads(void) {
    tg_init();
    return TG_THREADS_PER_CORE * online_cores;
}

int tg__clamp_threads(int n) {
    if (n < 1) return 0; /* the default */
    int max = tg__max_threads();
    return n > max ? max : n;
}

int tg__parse_threads(const char *s, int cores) {
    int max = TG_THREADS_PER_CORE * cores;
    if (s && *s) {
        char *end;
        long n = strtol(s, &end, 10);
        if (*end == '\0' && n > 0) return n < max ? (int)n : max;
    }
    return cores; /* unset, 0, negative or not a number: all cores */
}

static void init_runtime(void) {
    const char *found = getenv("BLIS_ARCH_TYPE");
    char *user = found ? strdup(found) : NULL; /* setenv may free what getenv gave */
    blis_init_as(arch_to_request(user), user);
    free(user);
    (void)bli_arch_query_id();
    /* Every shape reaches BLIS validated by an op's infer; BLIS's own checks
     * cost a visible share of tiny GEMMs (attention over a few keys). */
    bli_error_checking_level_set(BLIS_NO_ERROR_CHECKING);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    online_cores = cores > 0 ? (int)cores : 1;
    default_threads_at_start = tg__parse_threads(getenv("TG_NUM_THREADS"), online_cores);
}

void tg_init(void) { pthread_once(&init_once, init_runtime); }

/* See above: the environment is touched only here, while the program is still
 * single-threaded. */
__attribute__((constructor)) static void init_at_load(void) { tg_init(); }

const char *tg_blas_arch(void) {
    tg_init();
    return bli_arch_string(bli_arch_query_id());
}

int tg_default_threads(void) {
    tg_init();
    int n = atomic_load(&default_threads_override);
    return n > 0 ? n : default_threads_at_start;
}

void tg_set_default_threads(int n) { atomic_store(&default_threads_override, tg__clamp_threads(n)); }

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
