/* autograd/internal.h - the structs behind the opaque public types.
 * Shared by autograd/ and ops/; never installed. */
#ifndef TG_INTERNAL_H
#define TG_INTERNAL_H

/* Only the core's own headers: the core knows nothing of nn, optim or io. */
#include "tapegrad/core.h"
#include "tapegrad/grad.h"
#include "tapegrad/gradcheck.h"
#include "tapegrad/op.h"
#include "tapegrad/ops.h"
#include "tapegrad/params.h"
#include "tapegrad/tape.h"
#include "tapegrad/tensor.h"

#include <stdarg.h>
#include <stdatomic.h>

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
    /* fusion (autograd/fuse.h): the group that computes this tensor (data is
     * NULL while it is pending), its index there, and how many live groups
     * read it */
    int32_t fz_index;
    _Atomic uint32_t fz_holds;
    struct fz_group *fz;
    uint8_t owner;         /* tg_owner                                        */
    bool requires_grad;
    bool grad_on_heap;     /* leaf gradient, malloc'd, freed with the tensor  */
    /* grad_lo < grad_hi: only those rows of the gradient (seen as a matrix
     * [rows, last dim]) are written yet; tg__grad_complete zeroes the rest */
    int64_t grad_lo, grad_hi;
};

/* Who an arena block is for (tg_tape_stats reports bytes by owner). */
typedef enum tg_arena_owner {
    TG_ARENA_SCRATCH,       /* nodes' inputs and attributes, op scratch, fusion */
    TG_ARENA_ACTIVATION,    /* tensor data: op results and tape tensors          */
    TG_ARENA_GRADIENT       /* gradients of intermediates                        */
} tg_arena_owner;

typedef struct tg_chunk {
    struct tg_chunk *next;
    size_t size, used;
    unsigned char *base;   /* TG_ALIGN-aligned start of usable memory         */
} tg_chunk;

struct tg_tape {
    tg_chunk *chunks;      /* all chunks, oldest first; kept until tape_free  */
    tg_chunk *current;     /* the one being filled (reset: the first)         */
    tg_chunk *last;        /* end of the list, where a new chunk goes         */
    size_t capacity;       /* sum of chunk sizes                              */
    size_t used_before;    /* bytes used in chunks before the current one     */
    size_t owned[3];       /* bytes in use by owner (tg_arena_owner)          */
    size_t peak;           /* most bytes in use at once, ever                 */
    tg_node *nodes;
    int64_t n_nodes, cap_nodes;
    int no_grad;           /* depth of no-grad scopes                         */
    bool training;
    int threads;           /* < 1: tg_default_threads()                       */
    tg_status status;      /* first error since reset                         */
    char msg[512];
    uint64_t heap_allocs;
    const char *current_op; /* name of the op inside tg_apply, for messages */
    /* ops/gemm_*.c: this recording's packed operands and deferred weight
     * gradients, in the arena; tg_tape_reset drops them (NULL). */
    struct tg_gemm_state *gemm;
    /* Deferred work: backward calls it with a gradient buffer before the VJP
     * that reads that buffer, and with NULL at its end. NULL: none pending. */
    void (*flush_deferred)(tg_tape *tp, const void *grad);
    uint64_t gemm_packed, gemm_deferred, gemm_merged;   /* tg_tape_stats, since reset */
    struct tg_fuse *fuse;   /* fusion state (autograd/fuse.c), NULL when off */
    bool fusion;            /* tg_tape_set_fusion / TG_FUSE                   */
    int64_t fuse_min;       /* smallest output fused (TG_FUSE_MIN, tests)     */
    int64_t parallel_min;   /* work split across threads (TG_PARALLEL_MIN)    */
    int32_t split_wait;     /* splits still refused after a contended one     */
    int32_t split_level;    /* contended splits in a row (backoff exponent)   */
    bool poison;            /* TG_ARENA_POISON: uninitialised arena = NaNs   */
    uint64_t generation;   /* tg_tape_reset count: arena tensors of an older one are stale */
    tg_tensor **claimed;   /* leaves the running backward has claimed (backward.c) */
    int64_t n_claimed, cap_claimed;
    const char *scope;      /* tg_tape_set_scope: appended to error messages  */
    tg_grad_ready_fn grad_ready; /* tg_tape_on_grad_ready (grad_ready.c), or NULL */
    void *grad_ready_ctx;
    /* checkpoint.c: the sub-tape checkpointed spans run on (NULL until one
     * does), and, on a sub-tape, the tape whose backward claims the leaves
     * it writes (the outermost one), else NULL */
    tg_tape *ckpt_sub;
    tg_tape *claim_for;
    struct tg__tools *tools; /* anomaly mode, profiler (tools.h); NULL when both are off */
};

/* Work a VJP left pending (ops/gemm_defer.c merges the weight-gradient GEMMs
 * of successive steps): grad is complete once this returns; NULL: all of it.
 * Called before anything reads a gradient: a VJP, a fused group, the
 * grad-ready callback, the end of backward. */
static inline void tg__flush_deferred(tg_tape *tp, const void *grad) {
    if (tp->flush_deferred) tp->flush_deferred(tp, grad);
}

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

/* Backward on tp from m outputs at once (checkpoint.c's recomputation): y[j]
 * (recorded on tp, or a leaf) receives dy[j] (its shape and dtype; NULL: no
 * gradient), then one replay from the highest of their nodes. */
TG_HIDDEN tg_status tg__backward_seeds(tg_tape *tp, int m, tg_tensor *const *y,
                                       const void *const *dy);
/* Record a node whether or not an input requires grad (a checkpoint's VJP
 * reaches leaves no input shows); still none while no-grad. As tg__record. */
TG_HIDDEN int tg__record_always(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                                const void *attr, tg_tensor *out, tg_node **node);

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

/* Splitting work across the tape's threads (tape.c). Work is counted in
 * element-operations (an element through one instruction of a fused group,
 * or one pass of a line kernel). A fork and join costs microseconds on an
 * idle machine, so work from TG__PARALLEL_MIN (64K, about 20 us; TG_PARALLEL_MIN
 * for new tapes) is split: W1 at 2 threads is 10% faster than splitting only
 * from 4M. But it costs a scheduler time slice when another process holds
 * one of the cores: W3 at 2 threads beside one busy process took 600-1900 ms
 * a step instead of 40, every LSTM step's group waiting at the join for a
 * descheduled thread. So every split region is timed: one that took much
 * longer than its slowest thread's work (the others waited for a thread
 * that was not running) makes the tape split only from TG__PARALLEL_MIN_BUSY
 * (4M, about a millisecond) for the next 64, 128, ... 64K split decisions
 * (doubling while splits stay contended), then it tries again. */
enum { TG__PARALLEL_MIN = 1 << 16, TG__PARALLEL_MIN_BUSY = 1 << 22 };
/* Whether to split `work` element-operations now (counts down a backoff). */
TG_HIDDEN bool tg__split(tg_tape *tp, int64_t work);
/* After a split region: its wall time and the slowest thread's own time. */
TG_HIDDEN void tg__split_timed(tg_tape *tp, double wall, double slowest);
/* Monotonic seconds. */
TG_HIDDEN double tg__seconds(void);

/* Fusion on for this tape (tg_tape_set_fusion, TG_FUSE=0 turns it off). The
 * one switch other engine code reads. */
static inline bool tg__fusion_enabled(const tg_tape *tp) { return tp && tp->fusion; }
/* Gradient buffer of t for a VJP (allocated on first use: uninitialised and
 * *fresh for arena tensors, zeroed for leaves); NULL and an error on the
 * tape when out of memory. */
TG_HIDDEN void *tg__grad_buffer(tg_tape *tp, tg_tensor *t, const char *op, bool *fresh);
/* The gradient of t for a write of whole rows [row0, row0 + n): *assign when
 * those rows are not written yet and may be written (=), else the gradient
 * is complete and they are to be added to. An arena gradient written by row
 * blocks (an RNN's steps into its input projection's gradient) is then never
 * zero-filled. NULL and an error on the tape when out of memory. */
TG_HIDDEN void *tg__grad_rows(tg_tape *tp, tg_tensor *t, int64_t row0, int64_t n, const char *op,
                              bool *assign);
/* Zero the rows of t's gradient not written yet: before anyone reads it. */
TG_HIDDEN void tg__grad_zero_rest(tg_tensor *t);
static inline void tg__grad_complete(tg_tensor *t) {
    if (t->grad_lo < t->grad_hi) tg__grad_zero_rest(t);
}

/* Record op on the tape when recording is on and an input requires grad:
 * inputs and attributes copied into the arena, *node set (NULL when not
 * recorded), out marked. 0, or -1 with an error on the tape. */
TG_HIDDEN int tg__record(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                         const void *attr, tg_tensor *out, tg_node **node);

/* Arena tensor struct of that shape, no data yet (views, pending values). */
TG_HIDDEN tg_tensor *tg__arena_struct(tg_tape *tp, tg_dtype dt, int ndim, const int64_t *shape);
/* Arena tensor with an uninitialised data buffer (ops write every element). */
TG_HIDDEN tg_tensor *tg__arena_tensor(tg_tape *tp, tg_dtype dt, int ndim, const int64_t *shape,
                                      bool zero);
TG_HIDDEN void *tg__arena_alloc(tg_tape *tp, size_t bytes, bool zero);   /* scratch */
TG_HIDDEN void *tg__arena_data(tg_tape *tp, size_t bytes, bool zero, tg_arena_owner owner);
static inline int64_t tg__numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

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

/* ---- for the ops' vjp_graph (grad_helpers.c) --------------------------------------------
 * sum_to: g summed over the axes `like` was broadcast along (to like's shape);
 * expand: g broadcast to like's shape (a recorded add to zeros); map_const: a
 * constant (unrecorded) tensor like `like` holding f(like[i]); zeros: a zero
 * tape tensor. NULL on error (on the tape) or when given NULL. */
TG_HIDDEN tg_tensor *tg__gg_sum_to(tg_tape *tp, tg_tensor *g, const tg_tensor *like);
TG_HIDDEN tg_tensor *tg__gg_expand(tg_tape *tp, tg_tensor *g, const tg_tensor *like);
TG_HIDDEN tg_tensor *tg__gg_map_const(tg_tape *tp, tg_tensor *like,
                                      double (*f)(double v, const void *ctx), const void *ctx);
TG_HIDDEN tg_tensor *tg__gg_zeros(tg_tape *tp, tg_dtype dt, int ndim, const int64_t *shape);
/* A first-order vjp computed by the op's vjp_graph without recording (ops/graph_vjp.c):
 * for ops that exist only on the second-order path. */
TG_HIDDEN int tg__vjp_from_graph(tg_node *n);
/* A max pool's VJP as an op: g [y's shape] sent to x's elements arg[i] (the
 * pool's saved argmax, flat indices into x), a tensor of x's shape. */
TG_HIDDEN tg_tensor *tg__argmax_scatter(tg_tape *tp, tg_tensor *g, const int64_t *arg,
                                        const tg_tensor *x);

/* ---- gradcheck (gradcheck.c), shared by tg_gradcheck and tg_gradcheck_params ---------
 * The output weighting w of L = sum(w * y): uniform in [-1, 1) from seed, the
 * same every call; as a tensor like y (NULL when out of memory), or summed
 * against y in double. */
TG_HIDDEN tg_tensor *tg__gradcheck_weights(const tg_tensor *y, uint64_t seed);
TG_HIDDEN double tg__gradcheck_weighted_sum(const tg_tensor *y, uint64_t seed);
/* What one check of fn's derivatives works on (gradcheck.c, gradgradcheck.c).
 * o and r point at the caller's options and report, or at defaults (all zero)
 * and scratch inside the struct: use it where tg__gradcheck_start filled it. */
enum { TG__GC_MAX_INPUTS = 64 };
typedef struct tg__gc_ctx {
    tg_fn fn;
    void *user;
    int n;
    tg_tensor *const *inputs;
    const tg_gradcheck_opts *o;
    tg_gradcheck_report *r;
    bool f32;   /* some input is float32: float32 tolerances */
    tg_gradcheck_opts defaults;
    tg_gradcheck_report scratch;
} tg__gc_ctx;
/* Fills c, resets the report and checks fn and the inputs (1..64, none NULL
 * or stale): TG_OK, else the error with the report's message ("gradcheck:
 * input 2: is NULL"). */
TG_HIDDEN tg_status tg__gradcheck_start(tg__gc_ctx *c, tg_fn fn, void *user, int n_inputs,
                                        tg_tensor *const *inputs, const tg_gradcheck_opts *opts,
                                        tg_gradcheck_report *report);
/* Input i is checked: a float tensor the options do not skip. */
TG_HIDDEN bool tg__gradcheck_checked(const tg__gc_ctx *c, int i);
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
/* Normalise axis for ndim; -1 when out of range. */
TG_HIDDEN int tg__axis(int axis, int ndim);
/* "[2,3], [3]" for the first four inputs (then ", ..."), for messages. */
TG_HIDDEN char *tg__inputs_str(int n_in, tg_tensor *const *in, char *buf, size_t size);
/* "[2,3]" from a shape. */
TG_HIDDEN char *tg__shape_str(int ndim, const int64_t *shape, char *buf, size_t size);

#endif
