/* autograd/internal.h - the structs behind the opaque public types.
 * Shared by autograd/ and ops/; never installed. */
#ifndef TG_INTERNAL_H
#define TG_INTERNAL_H

/* Only the core's own headers: the core knows nothing of nn, optim or io. */
#include "tapegrad/core.h"
#include "tapegrad/gradcheck.h"
#include "tapegrad/op.h"
#include "tapegrad/ops.h"
#include "tapegrad/params.h"
#include "tapegrad/tape.h"
#include "tapegrad/tensor.h"

#include <stdarg.h>

#define TG_HIDDEN __attribute__((visibility("hidden")))
#define TG_ALIGN 64
/* BLIS's AVX2 small-matrix kernels read a few bytes past the end of C on edge
 * tiles (seen under valgrind). Every buffer we own that BLIS may touch gets
 * this much slack, so such reads stay inside our allocation. */
#define TG_SLACK 64

typedef enum tg_owner {
    TG_OWN_HEAP,    /* struct and data malloc'd by tg_tensor_new             */
    TG_OWN_WRAP,    /* struct malloc'd, data belongs to the caller           */
    TG_OWN_ARENA    /* struct and data in a tape's arena                     */
} tg_owner;

struct tg_tensor {
    tg_dtype dtype;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t numel;
    void *data;
    void *grad;            /* NULL until a gradient reaches this tensor       */
    tg_tape *tape;         /* owning tape for arena tensors                   */
    int64_t node;          /* index of the producing node, -1 if not recorded */
    uint64_t gen;          /* arena tensors: the tape's generation when made  */
    tg_tape *grad_claim;   /* leaves: the tape whose backward is writing the
                              gradient (atomic; backward.c), else NULL          */
    uint8_t owner;         /* tg_owner                                        */
    bool requires_grad;
    bool grad_on_heap;     /* leaf gradient, malloc'd, freed with the tensor  */
};

typedef struct tg_chunk {
    struct tg_chunk *next;
    size_t size, used;
    unsigned char *base;   /* TG_ALIGN-aligned start of usable memory         */
} tg_chunk;

struct tg_tape {
    tg_chunk *chunks;      /* current chunk first                             */
    tg_chunk *retired;     /* chunks merged away at the last reset, freed at the next */
    size_t capacity;       /* sum of chunk sizes                              */
    size_t used_before;    /* bytes used in chunks behind the current one     */
    tg_node *nodes;
    int64_t n_nodes, cap_nodes;
    int no_grad;           /* depth of no-grad scopes                         */
    bool training;
    int threads;           /* < 1: tg_default_threads()                       */
    tg_status status;      /* first error since reset                         */
    char msg[512];
    uint64_t heap_allocs;
    const char *current_op; /* name of the op inside tg_apply, for messages */
    bool fusion_off;       /* tg_tape_set_fusion(tp, false); see tg__fusion_enabled */
    /* ops/gemm_*.c: this recording's packed operands and deferred weight
     * gradients, in the arena; tg_tape_reset drops them (NULL). */
    struct tg_gemm_state *gemm;
    /* Deferred work: backward calls it with a gradient buffer before the VJP
     * that reads that buffer, and with NULL at its end. NULL: none pending. */
    void (*flush_deferred)(tg_tape *tp, const void *grad);
    uint64_t gemm_packed, gemm_deferred, gemm_merged;   /* tg_tape_stats, since reset */
    uint64_t generation;   /* tg_tape_reset count: arena tensors of an older one are stale */
    tg_tensor **claimed;   /* leaves the running backward has claimed (backward.c) */
    int64_t n_claimed, cap_claimed;
    const char *scope;      /* tg_tape_set_scope: appended to error messages  */
    tg_grad_ready_fn grad_ready; /* tg_tape_on_grad_ready (grad_ready.c), or NULL */
    void *grad_ready_ctx;
};

/* The leaves whose gradients become final during one backward, in replay
 * order (grad_ready.c). Empty when the tape has no grad-ready callback. */
typedef struct tg__ready_list {
    struct tg__ready_entry *at;
    int64_t n, next;
    tg_grad_ready_fn fn;   /* the callback when backward started */
    void *ctx;
} tg__ready_list;
/* Lists, for the backward from node y_node, each leaf that requires grad with
 * its last consumer in the replay; TG_ERR_NOMEM (set on tp) if the arena is full. */
TG_HIDDEN tg_status tg__ready_begin(tg_tape *tp, int64_t y_node, tg__ready_list *r);
/* The replay has passed node i: report the leaves whose last consumer it was. */
TG_HIDDEN void tg__ready_passed(tg_tape *tp, tg__ready_list *r, int64_t i);

/* Counted heap allocation (the counter behind tg_heap_allocs). */
TG_HIDDEN void *tg__malloc(size_t bytes);
TG_HIDDEN void *tg__calloc(size_t n, size_t size);
TG_HIDDEN void tg__count_alloc(void);   /* for realloc growth */
#define tg__set_last_error tg_set_last_error
TG_HIDDEN void tg__vformat_error(char *buf, size_t size, const char *op, const char *fmt,
                                 va_list ap);

/* An arena tensor whose tape has been reset since it was made (see tensor.c:
 * the generation check). Inline: tg_apply asks it for every input. */
static inline bool tg__tensor_stale(const tg_tensor *t) {
    return t->owner == TG_OWN_ARENA && t->gen != t->tape->generation;
}
#define TG_STALE_TEXT                                                                          \
    "tensor is from before the last tg_tape_reset of its tape (its memory is reused); keep "   \
    "values across steps in caller-owned tensors (tg_tensor_clone)"

/* Thread counts: at most TG_THREADS_PER_CORE (4) per online core (runtime.c).
 * clamp: n < 1 gives 0 (the default); parse: TG_NUM_THREADS's text, clamped,
 * or all cores when unset or not a positive number. */
TG_HIDDEN int tg__max_threads(void);
TG_HIDDEN int tg__clamp_threads(int n);
TG_HIDDEN int tg__parse_threads(const char *s, int cores);

/* Arena tensor with an uninitialised data buffer (ops write every element). */
TG_HIDDEN tg_tensor *tg__arena_tensor(tg_tape *tp, tg_dtype dt, int ndim, const int64_t *shape,
                                      bool zero);
TG_HIDDEN void *tg__arena_alloc(tg_tape *tp, size_t bytes, bool zero);
/* Product of dims the caller knows to be checked (tensor shapes, parts of them). */
TG_HIDDEN int64_t tg__numel(int ndim, const int64_t *shape);

/* ---- names (name_index.c) ----------------------------------------------------
 * A hash index from names to ids, for the parameter registry and io/'s files.
 * It points at the names: they must outlive it. Zero-initialised means empty. */
typedef struct tg__name_index {
    const char **key;
    int *id;
    size_t cap, n;
} tg__name_index;

enum { TG__NAME_ADDED = -1, TG__NAME_NOMEM = -2 };
/* A 64-bit hash of a name (FNV-1a). */
TG_HIDDEN uint64_t tg__name_hash(const char *s);
/* The id of name, or -1. */
TG_HIDDEN int tg__name_index_find(const tg__name_index *x, const char *name);
/* Adds name -> id: TG__NAME_ADDED, the id already held by name, or TG__NAME_NOMEM. */
TG_HIDDEN int tg__name_index_add(tg__name_index *x, const char *name, int id);
TG_HIDDEN void tg__name_index_free(tg__name_index *x);

/* ---- gradcheck (gradcheck.c), shared by tg_gradcheck and tg_gradcheck_params ---------
 * The output weighting w of L = sum(w * y): uniform in [-1, 1) from seed, the
 * same every call; as a tensor like y (NULL when out of memory), or summed
 * against y in double. */
TG_HIDDEN tg_tensor *tg__gradcheck_weights(const tg_tensor *y, uint64_t seed);
TG_HIDDEN double tg__gradcheck_weighted_sum(const tg_tensor *y, uint64_t seed);
/* One element: counts it in r, keeps it as the worst when its error is the
 * largest so far (NaN counts as the largest), and fails r when
 * |analytic - numeric| > atol + rtol |numeric| (o's tolerances, else the
 * defaults for float64, or float32 when f32). */
TG_HIDDEN void tg__gradcheck_compare(tg_gradcheck_report *r, const tg_gradcheck_opts *o, bool f32,
                                     int input, int64_t index, double analytic, double numeric);

/* ---- sizes ------------------------------------------------------------------
 * The largest tensor has 2^40 elements (8 TiB of float64); the arena hands out
 * at most that many bytes of float64 at once. Every shape that becomes a tensor
 * is checked against it: the constructors, tg_tape_tensor, and every op's
 * result (tg_apply checks what infer produced). Below the cap, no product of
 * dims, no element offset and no numel * dtype size can overflow. */
#define TG_MAX_NUMEL ((int64_t)1 << 40)
#define TG_MAX_BYTES ((size_t)TG_MAX_NUMEL * sizeof(double))

/* numel of shape, or -1 with *why saying what is wrong (a negative dim, more
 * than TG_MAX_NUMEL elements). A zero dim does not end the check: the other
 * dims' product must stay under the cap as well, so an empty [0, 2^62] cannot
 * carry a dimension kernels would loop over. ndim must be in [0, TG_MAX_DIMS]. */
TG_HIDDEN int64_t tg__checked_numel(int ndim, const int64_t *shape, const char **why);
/* dtype, ndim and shape of a new tensor, reported as "<op>: ..." on tp (or in
 * the per-thread last error when tp is NULL). 0 when fine, else -1. */
TG_HIDDEN int tg__check_new_shape(tg_tape *tp, const char *op, tg_dtype dt, int ndim,
                                  const int64_t *shape);
TG_HIDDEN bool tg__is_float(tg_dtype dt);
/* Whether the engine may reorder floating-point sums on tp to go faster
 * (merged weight-gradient GEMMs): off with TG_FUSE=0 in the environment or
 * tg_tape_set_fusion(tp, false). */
TG_HIDDEN bool tg__fusion_enabled(const tg_tape *tp);
/* Normalise axis for ndim; -1 when out of range. */
TG_HIDDEN int tg__axis(int axis, int ndim);
/* "[2,3]" from a shape. */
TG_HIDDEN char *tg__shape_str(int ndim, const int64_t *shape, char *buf, size_t size);

#endif
