/* tapegrad/core.h - dtypes, status codes, errors, runtime (BLIS, threads), RNG.
 *
 * Nothing here holds global mutable state a user can observe across tapes:
 * the BLIS runtime is initialised once (thread-safe), the heap counter is atomic,
 * and random numbers come from an explicit tg_rng the caller owns. */
#ifndef TAPEGRAD_CORE_H
#define TAPEGRAD_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TG_BUILDING_LIBRARY) && defined(__GNUC__)
#define TG_API __attribute__((visibility("default")))
#else
#define TG_API
#endif

#define TG_MAX_DIMS 6   /* tensors have 0..TG_MAX_DIMS dimensions */

typedef enum tg_dtype {
    TG_F32 = 0,         /* float                          */
    TG_F64 = 1,         /* double (gradcheck runs here)   */
    TG_I32 = 2          /* int32 indices: embedding, targets; never differentiable */
} tg_dtype;

typedef enum tg_status {
    TG_OK = 0,
    TG_ERR_SHAPE,       /* shapes do not fit the operation          */
    TG_ERR_DTYPE,       /* dtype not accepted or mixed              */
    TG_ERR_AXIS,        /* axis out of range                        */
    TG_ERR_INDEX,       /* an index value out of range              */
    TG_ERR_ARG,         /* any other bad argument (NULL, p not in [0,1), ...) */
    TG_ERR_NOMEM,       /* allocation failed                        */
    TG_ERR_IO,          /* file could not be read or written        */
    TG_ERR_FORMAT,      /* file content malformed                   */
    TG_ERR_STATE,       /* call not valid now (e.g. backward of a non-recorded tensor) */
    TG_ERR_NUMERIC      /* anomaly mode: an op produced NaN or Inf (tapegrad/inspect.h) */
} tg_status;

TG_API const char *tg_dtype_name(tg_dtype dt);
TG_API size_t tg_dtype_size(tg_dtype dt);
TG_API const char *tg_status_name(tg_status st);

/* Errors of calls that take no tape (tensor creation, file I/O) are kept
 * per thread, like errno. Calls that take a tape keep them on the tape. */
TG_API const char *tg_last_error(void);
TG_API tg_status tg_last_status(void);
TG_API void tg_clear_last_error(void);
/* Set the per-thread error, for code built on tapegrad (layers, loaders) that
 * reports errors without a tape. Returns st. */
TG_API tg_status tg_set_last_error(tg_status st, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The call site of the tg_* call running on this thread, for anomaly mode
 * and the profiler (tapegrad/inspect.h). The public headers wrap the op and
 * layer functions in macros that call this with __FILE__ and __LINE__
 * (tapegrad/call_site.h), so user code passes nothing; define
 * TG_NO_CALL_SITES before including them to call the functions directly. */
TG_API void tg_call_site(const char *file, int line);

/* ---- runtime ------------------------------------------------------------
 * tg_init() runs when the library loads (and again, harmlessly, from every
 * entry point that needs BLIS). It picks the fastest BLIS sub-configuration
 * the CPU supports (AVX-512 "skx" where available, else AVX2 "haswell"/"zen",
 * else BLIS's own choice), unless the user set BLIS_ARCH_TYPE (a BLIS number
 * or a name such as "haswell"), which is respected; the environment is left
 * as it was found (README, runtime settings).
 * Threads: TG_NUM_THREADS (else all online cores) is the default each new
 * tape starts from; tg_tape_set_threads overrides per tape. Every count is
 * clamped to 4 threads per online core; n < 1 means the default. */
TG_API void tg_init(void);
TG_API const char *tg_blas_arch(void);         /* e.g. "skx" */
TG_API int tg_default_threads(void);
TG_API void tg_set_default_threads(int n);     /* n < 1 means all cores */

/* Number of heap allocations the library has made since start (atomic).
 * A warm training step should not move it; benchmarks and tests check that. */
TG_API uint64_t tg_heap_allocs(void);

/* ---- random numbers -------------------------------------------------------
 * xoshiro256** state; the caller owns it. Ops that draw random numbers copy
 * the state they used onto the tape, so backward replays the same draw. */
typedef struct tg_rng { uint64_t s[4]; } tg_rng;

TG_API tg_rng tg_rng_seeded(uint64_t seed);
TG_API uint64_t tg_rng_next(tg_rng *r);
TG_API double tg_rng_uniform(tg_rng *r);               /* [0, 1)       */
TG_API double tg_rng_normal(tg_rng *r);                /* N(0, 1)      */

#ifdef __cplusplus
}
#endif
#endif
