/* autograd/tape.c - the arena, recording (tg_apply) and errors.
 * backward lives in backward.c. */
#include "tools.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { FIRST_CHUNK = 1 << 20 };

/* ---- arena ------------------------------------------------------------------ */
static tg_chunk *chunk_new(tg_tape *tp, size_t size) {
    tg_chunk *c = tg__malloc(sizeof *c + size + TG_ALIGN + TG_SLACK);
    if (!c) return NULL;
    tp->heap_allocs++;
    c->size = size;
    c->used = 0;
    c->base = (unsigned char *)(((uintptr_t)(c + 1) + TG_ALIGN - 1) & ~(uintptr_t)(TG_ALIGN - 1));
    c->next = NULL;
    return c;
}

/* The arena only grows within a step: its peak is what it holds when a
 * chunk fills up, at reset, or when someone asks. */
static void note_peak(tg_tape *tp) {
    size_t used = tp->used_before + (tp->current ? tp->current->used : 0);
    if (used > tp->peak) tp->peak = used;
}

/* The chunk after the current one with room for bytes, else a new one at the
 * end of the list (sized to the capacity so far: the list doubles); NULL when
 * out of memory. A chunk skipped because the block is bigger stays empty
 * for the rest of the step. */
static __attribute__((noinline)) tg_chunk *arena_grow(tg_tape *tp, size_t bytes) {
    note_peak(tp);
    tg_chunk *c = tp->current, *next = c ? c->next : NULL;
    while (next && next->size < bytes) next = next->next;
    if (!next) {
        size_t size = tp->capacity ? tp->capacity : FIRST_CHUNK;
        while (size < bytes) size *= 2;
        if (!(next = chunk_new(tp, size))) return NULL;
        if (tp->last) tp->last->next = next;
        else tp->chunks = next;
        tp->last = next;
        tp->capacity += size;
    }
    if (c) tp->used_before += c->used;
    return tp->current = next;
}

/* libc's memset: inlined, GCC zeroes a tensor header with `rep stos`, whose
 * start-up cost was a tenth of a tiny op's time (W5). */
static __attribute__((noinline)) void fill(void *p, int byte, size_t bytes) {
    memset(p, byte, bytes);
}

/* Every arena block comes from here; the common case is a bump of c->used. */
static inline void *arena_take(tg_tape *tp, size_t bytes, bool zero, tg_arena_owner owner) {
    /* the cap keeps the rounding below and the doubling of the chunk size
     * (arena_grow) from overflowing */
    if (__builtin_expect(bytes > TG_MAX_BYTES, 0)) return NULL;
    bytes = (bytes + TG_ALIGN - 1) & ~(size_t)(TG_ALIGN - 1);
    tg_chunk *c = tp->current;
    if (__builtin_expect(!c || c->size - c->used < bytes, 0) && !(c = arena_grow(tp, bytes)))
        return NULL;
    void *p = c->base + c->used;
    c->used += bytes;
    tp->owned[owner] += bytes;
    if (zero || tp->poison) fill(p, zero ? 0 : 0xff, bytes);   /* 0xff..: NaN */
    return p;
}

void *tg__arena_alloc(tg_tape *tp, size_t bytes, bool zero) {
    return arena_take(tp, bytes, zero, TG_ARENA_SCRATCH);
}

void *tg__arena_data(tg_tape *tp, size_t bytes, bool zero, tg_arena_owner owner) {
    return arena_take(tp, bytes, zero, owner);
}

void *tg_tape_alloc(tg_tape *tp, size_t bytes) {
    if (!tp) {
        tg_fail(NULL, TG_ERR_ARG, "tape_alloc", "tape is NULL");
        return NULL;
    }
    if (bytes > TG_MAX_BYTES) {
        tg_fail(tp, TG_ERR_ARG, "tape_alloc", "%zu bytes is more than the arena's limit (2^43)",
                bytes);
        return NULL;
    }
    void *p = tg__arena_alloc(tp, bytes, true);
    if (!p) tg_fail(tp, TG_ERR_NOMEM, "tape_alloc", "out of memory (%zu bytes)", bytes);
    return p;
}

static void free_chunks(tg_chunk *c) {
    while (c) {
        tg_chunk *next = c->next;
        free(c);
        c = next;
    }
}

/* Every chunk is kept and the next step allocates forward through the same
 * list, so a step like the last one touches the same pages: no page faults
 * (about 11 us each here) and no heap allocations. Nothing is freed before
 * tg_tape_free, so a tensor kept from the step before (a caller's mistake)
 * still has its struct to read until its bytes are handed out again, and
 * the generation check refuses it. (Merging the chunks of an overflowing
 * step into one new chunk would need the old ones kept for that, mapping
 * both for a step: the peak RSS doubled.) */
static void arena_reset(tg_tape *tp) {
    note_peak(tp);
    for (tg_chunk *c = tp->chunks; c; c = c->next) c->used = 0;
    tp->current = tp->chunks;
    tp->used_before = 0;
    memset(tp->owned, 0, sizeof tp->owned);
}

/* ---- tape life cycle ----------------------------------------------------------- */
tg_tape *tg_tape_new(void) {
    tg_init();
    tg_tape *tp = tg__calloc(1, sizeof *tp);
    if (!tp) {
        tg__set_last_error(TG_ERR_NOMEM, "tape_new: out of memory");
        return NULL;
    }
    tp->heap_allocs = 1;
    tp->training = true;
    const char *fuse = getenv("TG_FUSE");
    tp->fusion = !(fuse && fuse[0] == '0' && fuse[1] == '\0');
    const char *min = getenv("TG_FUSE_MIN");   /* tests fuse tiny tensors with 1 */
    tp->fuse_min = min && atoll(min) > 0 ? atoll(min) : FZ_MIN_NUMEL;
    const char *par = getenv("TG_PARALLEL_MIN");
    tp->parallel_min = par && atoll(par) > 0 ? atoll(par) : TG__PARALLEL_MIN;
    /* tests: memory handed out uninitialised reads as NaN, so a missing write shows */
    tp->poison = getenv("TG_ARENA_POISON") != NULL;
    tg__tools_from_env(tp);   /* TG_ANOMALY, TG_PROFILE */
    return tp;
}

void tg_tape_free(tg_tape *tp) {
    if (!tp) return;
    tg__tools_free(tp);
    tg__fuse_free(tp);
    tg_tape_free(tp->ckpt_sub);   /* checkpoint.c's sub-tape, if any */
    free_chunks(tp->chunks);
    free(tp->nodes);
    free(tp->claimed);
    free(tp);
}

void tg_tape_reset(tg_tape *tp) {
    if (!tp) return;
    tg__fuse_release(tp);
    arena_reset(tp);
    tp->gemm = NULL;            /* lived in the arena */
    tp->flush_deferred = NULL;  /* a failed backward may leave work pending: dropped */
    tp->gemm_packed = tp->gemm_deferred = tp->gemm_merged = 0;
    tp->generation++;
    tp->n_nodes = 0;
    tp->status = TG_OK;
    tp->msg[0] = '\0';
}

void tg_tape_stats_get(const tg_tape *tp, tg_tape_stats *out) {
    memset(out, 0, sizeof *out);
    if (!tp) return;
    note_peak((tg_tape *)tp);
    out->nodes = (uint64_t)tp->n_nodes;
    out->arena_used = tp->used_before + (tp->current ? tp->current->used : 0);
    out->arena_capacity = tp->capacity;
    out->heap_allocs = tp->heap_allocs;
    out->gemm_packed = tp->gemm_packed;
    out->gemm_deferred = tp->gemm_deferred;
    out->gemm_merged = tp->gemm_merged;
    out->arena_peak = tp->peak;
    out->arena_activations = tp->owned[TG_ARENA_ACTIVATION];
    out->arena_gradients = tp->owned[TG_ARENA_GRADIENT];
    out->arena_scratch = tp->owned[TG_ARENA_SCRATCH];
}

/* The struct of an arena tensor (shape and data still to set), stamped with
 * the tape's generation: views, pending values, op results. */
tg_tensor *tg__arena_struct(tg_tape *tp, tg_dtype dt, int ndim, const int64_t *shape) {
    tg_tensor *t = tg__arena_alloc(tp, sizeof *t, true);
    if (!t) return NULL;
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = tg__numel(ndim, shape);
    t->tape = tp;
    t->node = -1;
    t->owner = TG_OWN_ARENA;
    t->gen = tp->generation;
    return t;
}

tg_tensor *tg__arena_tensor(tg_tape *tp, tg_dtype dt, int ndim, const int64_t *shape, bool zero) {
    tg_tensor *t = tg__arena_struct(tp, dt, ndim, shape);
    if (!t) return NULL;
    t->data = tg__arena_data(tp, (size_t)t->numel * tg_dtype_size(dt), zero, TG_ARENA_ACTIVATION);
    return t->data ? t : NULL;
}

tg_tensor *tg_tape_tensor(tg_tape *tp, tg_dtype dt, int ndim, const int64_t *shape) {
    if (!tp) {
        tg_fail(NULL, TG_ERR_ARG, "tape_tensor", "tape is NULL");
        return NULL;
    }
    if (tg__check_new_shape(tp, "tape_tensor", dt, ndim, shape)) return NULL;
    tg_tensor *t = tg__arena_tensor(tp, dt, ndim, shape, true);
    if (!t) tg_fail(tp, TG_ERR_NOMEM, "tape_tensor", "out of memory");
    return t;
}

/* ---- errors ----------------------------------------------------------------- */
void tg__vformat_error(char *buf, size_t size, const char *op, const char *fmt, va_list ap) {
    int at = snprintf(buf, size, "%s: ", op ? op : "?");
    if (at >= 0 && (size_t)at < size) vsnprintf(buf + at, size - (size_t)at, fmt, ap);
}

int tg_fail(tg_tape *tp, tg_status st, const char *op, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (tp && tp->status == TG_OK) {
        tp->status = st;
        tg__vformat_error(tp->msg, sizeof tp->msg, op, fmt, ap);
        size_t used = strlen(tp->msg);
        if (tp->scope) snprintf(tp->msg + used, sizeof tp->msg - used, " (in %s)", tp->scope);
    } else if (!tp) {
        char msg[512];
        tg__vformat_error(msg, sizeof msg, op, fmt, ap);
        tg__set_last_error(st, "%s", msg);
    }
    va_end(ap);
    return -1;
}

const char *tg_tape_set_scope(tg_tape *tp, const char *scope) {
    if (!tp) return NULL;
    const char *prev = tp->scope;
    tp->scope = scope;
    return prev;
}

tg_status tg_tape_status(const tg_tape *tp) { return tp ? tp->status : TG_ERR_ARG; }
const char *tg_tape_error(const tg_tape *tp) { return tp ? tp->msg : "tape is NULL"; }
void tg_tape_clear_error(tg_tape *tp) {
    if (!tp) return;
    tp->status = TG_OK;
    tp->msg[0] = '\0';
}

/* ---- modes ------------------------------------------------------------------- */
void tg_no_grad_begin(tg_tape *tp) {
    if (tp) tp->no_grad++;
}
void tg_no_grad_end(tg_tape *tp) {
    if (tp && tp->no_grad > 0) tp->no_grad--;
}
bool tg_tape_is_recording(const tg_tape *tp) { return tp && tp->no_grad == 0; }
void tg_tape_set_training(tg_tape *tp, bool training) {
    if (tp) tp->training = training;
}
bool tg_tape_training(const tg_tape *tp) { return tp && tp->training; }
void tg_tape_set_threads(tg_tape *tp, int n) {
    if (tp) tp->threads = tg__clamp_threads(n);
}
int tg_tape_threads(const tg_tape *tp) {
    return (tp && tp->threads > 0) ? tp->threads : tg_default_threads();
}

/* ---- splitting work across threads (internal.h says why) --------------------- */
enum { SPLIT_WAIT_FIRST = 64, SPLIT_LEVEL_MAX = 10 };

bool tg__split(tg_tape *tp, int64_t work) {
    if (work < tp->parallel_min) return false;
    if (tp->split_wait == 0) return true;
    tp->split_wait--;
    return work >= TG__PARALLEL_MIN_BUSY;
}

/* Contended: the region took over twice its slowest thread's time plus
 * 200 us (waking a sleeping thread takes tens of us on an idle machine; a
 * descheduled one, milliseconds). */
void tg__split_timed(tg_tape *tp, double wall, double slowest) {
    if (wall > 2 * slowest + 200e-6) {
        tp->split_wait = SPLIT_WAIT_FIRST << tp->split_level;
        if (tp->split_level < SPLIT_LEVEL_MAX) tp->split_level++;
    } else if (tp->split_level > 0 && tp->split_wait == 0) {
        tp->split_level--;
    }
}

double tg__seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

tg_tensor *tg_detach(tg_tape *tp, tg_tensor *x) {
    if (!tp || !x) {
        tg_fail(tp, TG_ERR_ARG, "detach", "%s is NULL", tp ? "input" : "tape");
        return NULL;
    }
    if (tg__tensor_stale(x)) {
        tg_fail(tp, TG_ERR_STATE, "detach", "input: %s", TG_STALE_TEXT);
        return NULL;
    }
    if (tg__concrete(x) != 0) return NULL;
    tg_tensor *t = tg__arena_struct(tp, x->dtype, x->ndim, x->shape);
    if (!t) {
        tg_fail(tp, TG_ERR_NOMEM, "detach", "out of memory");
        return NULL;
    }
    t->data = x->data;
    return t;
}

/* ---- recording -------------------------------------------------------------- */
static tg_node *push_node(tg_tape *tp) {
    if (tp->n_nodes == tp->cap_nodes) {
        int64_t cap = tp->cap_nodes ? tp->cap_nodes * 2 : 1024;
        tg_node *grown = realloc(tp->nodes, (size_t)cap * sizeof *grown);
        if (!grown) return NULL;
        tg__count_alloc();
        tp->heap_allocs++;
        tp->nodes = grown;
        tp->cap_nodes = cap;
    }
    return &tp->nodes[tp->n_nodes++];
}

static bool wants_record(const tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in) {
    if (tp->no_grad > 0 || !op->vjp) return false;
    for (int i = 0; i < n_in; i++)
        if (in[i]->requires_grad) return true;
    return false;
}

/* Always inlined, as output_of: apply is stamped twice (tg_apply,
 * tg__apply_plain), and GCC then stopped inlining these into either, which
 * cost W5 about 25 instructions an op (callgrind). */
#define TG__INLINE static inline __attribute__((always_inline))
TG__INLINE bool inputs_present(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in) {
    if (op->n_in != TG_VARIADIC && n_in != op->n_in)
        return tg_fail(tp, TG_ERR_ARG, op->name, "takes %d inputs, got %d", op->n_in, n_in), false;
    if (n_in < 1 || !in) return tg_fail(tp, TG_ERR_ARG, op->name, "no inputs"), false;
    for (int i = 0; i < n_in; i++) {
        if (!in[i]) return tg_fail(tp, TG_ERR_ARG, op->name, "input %d is NULL", i), false;
        if (tg__tensor_stale(in[i]))
            return tg_fail(tp, TG_ERR_STATE, op->name, "input %d: %s", i, TG_STALE_TEXT), false;
    }
    return true;
}

static inline int record_node(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                              const void *attr, tg_tensor *out, tg_node **node);

static inline int record(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                         const void *attr, tg_tensor *out, tg_node **node) {
    *node = NULL;
    if (!wants_record(tp, op, n_in, in)) return 0;
    return record_node(tp, op, n_in, in, attr, out, node);
}

int tg__record_always(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                      const void *attr, tg_tensor *out, tg_node **node) {
    *node = NULL;
    return tp->no_grad > 0 ? 0 : record_node(tp, op, n_in, in, attr, out, node);
}

static inline int record_node(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                              const void *attr, tg_tensor *out, tg_node **node) {
    tg_tensor **ins = tg__arena_alloc(tp, (size_t)n_in * sizeof *ins, false);
    void *attr_copy = op->attr_size ? tg__arena_alloc(tp, op->attr_size, false) : NULL;
    tg_node *n = ins && (!op->attr_size || attr_copy) ? push_node(tp) : NULL;
    if (!n) return tg_fail(tp, TG_ERR_NOMEM, op->name, "out of memory");
    for (int i = 0; i < n_in; i++) ins[i] = in[i];   /* a loop: n_in is 1 or 2 */
    if (attr_copy) memcpy(attr_copy, attr, op->attr_size);
    *n = (tg_node){.op = op, .tape = tp, .n_in = n_in, .in = ins, .out = out, .attr = attr_copy};
    out->node = tp->n_nodes - 1;
    out->requires_grad = true;
    *node = n;
    return 0;
}

int tg__record(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in, const void *attr,
               tg_tensor *out, tg_node **node) {
    return record(tp, op, n_in, in, attr, out, node);
}

/* The output tensor: a view of input 0 or a fresh arena buffer. */
TG__INLINE tg_tensor *output_of(tg_tape *tp, const tg_op *op, tg_tensor *const *in,
                                const tg_desc *d) {
    if (!(op->flags & TG_OP_VIEW)) return tg__arena_tensor(tp, d->dtype, d->ndim, d->shape, false);
    tg_tensor *out = tg__arena_struct(tp, d->dtype, d->ndim, d->shape);
    if (out) out->data = in[0]->data;
    return out;
}

/* "[2,3], [3]" for the first few inputs, for messages. */
char *tg__inputs_str(int n_in, tg_tensor *const *in, char *buf, size_t size) {
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < n_in && i < 4 && at < size; i++) {
        char s[160];
        at += (size_t)snprintf(buf + at, size - at, "%s%s", i ? ", " : "",
                               tg_shape_str(in[i], s, sizeof s));
    }
    if (n_in > 4 && at < size) snprintf(buf + at, size - at, ", ...");
    return buf;
}

/* What infer produced must be a tensor the arena can hold: a known dtype,
 * ndim in range and at most 2^40 elements. A product of input dims (matmul's
 * M x N, a broadcast, a concatenated axis) or a user op's infer may be
 * anything, so it is checked here, once for every op: inline, since it runs
 * for every op (the same test as tg__checked_numel, which words the error). */
static inline bool result_fits(const tg_desc *d) {
    if ((unsigned)d->dtype > TG_I32 || (unsigned)d->ndim > TG_MAX_DIMS) return false;
    int64_t bounded = 1;
    for (int i = 0; i < d->ndim; i++) {
        int64_t x = d->shape[i];
        if (x < 0) return false;
        if (x > 1 && (__builtin_mul_overflow(bounded, x, &bounded) || bounded > TG_MAX_NUMEL))
            return false;
    }
    return true;
}

static void report_bad_result(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                              const tg_desc *d) {
    char si[400], so[160];
    const char *why = "";
    if (d->dtype != TG_F32 && d->dtype != TG_F64 && d->dtype != TG_I32)
        why = "unknown dtype";
    else if (d->ndim < 0 || d->ndim > TG_MAX_DIMS)
        why = "ndim out of range";
    else
        tg__checked_numel(d->ndim, d->shape, &why);
    bool shape_known = d->ndim >= 0 && d->ndim <= TG_MAX_DIMS;
    tg_fail(tp, TG_ERR_SHAPE, op->name, "result %s (dtype %d, ndim %d): %s; inputs %s",
            shape_known ? tg__shape_str(d->ndim, d->shape, so, sizeof so) : "[?]", (int)d->dtype,
            d->ndim, why, tg__inputs_str(n_in, in, si, sizeof si));
}

static inline __attribute__((always_inline)) tg_tensor *
apply(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in, const void *attr) {
    if (!inputs_present(tp, op, n_in, in)) return NULL;
    tg_desc d = {0};
    tp->current_op = op->name;
    if (op->infer(tp, n_in, in, attr, &d) != 0) return NULL;
    if (!result_fits(&d)) {
        report_bad_result(tp, op, n_in, in, &d);
        return NULL;
    }
    /* fuse_min is at least 1: an empty result never fuses */
    tg_tensor *out;
    if ((op->eltwise || op->window) && tg__fusion_enabled(tp) &&
        tg__numel(d.ndim, d.shape) >= tp->fuse_min && tg__fuse_apply(tp, op, n_in, in, attr, &d, &out))
        return out;
    for (int i = 0; i < n_in; i++) /* an unfused op reads data: compute pending inputs */
        if (tg__concrete(in[i]) != 0) return NULL;
    out = output_of(tp, op, in, &d);
    if (!out) {
        tg_fail(tp, TG_ERR_NOMEM, op->name, "out of memory");
        return NULL;
    }
    tg_node local = {.op = op, .tape = tp, .n_in = n_in, .in = (tg_tensor **)in, .out = out,
                     .attr = attr};
    tg_node *n;
    if (record(tp, op, n_in, in, attr, out, &n) != 0) return NULL;
    /* An empty result has nothing to compute (and its VJP nothing to give):
     * forward is not run, so no kernel loops over the other dims of an empty
     * shape, which may be as long as 2^40. */
    if (out->numel > 0 && op->forward(n ? n : &local) != 0) {
        if (n) tp->n_nodes--;
        return NULL;
    }
    return out;
}

tg_tensor *tg__apply_plain(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                           const void *attr) {
    return apply(tp, op, n_in, in, attr);
}

tg_tensor *tg_apply(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                    const void *attr) {
    if (!tp || !op) {
        tg_fail(NULL, TG_ERR_ARG, op ? op->name : "apply", "%s is NULL", tp ? "op" : "tape");
        return NULL;
    }
    if (__builtin_expect(tp->tools != NULL, 0))   /* anomaly mode, profiler (tools.c) */
        return tg__tools_apply(tp, op, n_in, in, attr);
    return apply(tp, op, n_in, in, attr);
}

/* ---- helpers for op authors ------------------------------------------------------ */
int tg_check_float(tg_tape *tp, const char *op, const tg_tensor *t) {
    if (!tg__is_float(t->dtype)) {
        char s[160];
        return tg_fail(tp, TG_ERR_DTYPE, op, "needs a float tensor, got %s %s",
                       tg_dtype_name(t->dtype), tg_shape_str(t, s, sizeof s));
    }
    return 0;
}

int tg_check_float_pair(tg_tape *tp, const char *op, const tg_tensor *a, const tg_tensor *b) {
    if (tg_check_float(tp, op, a) || tg_check_float(tp, op, b)) return -1;
    if (a->dtype == b->dtype) return 0;
    char sa[160], sb[160];
    return tg_fail(tp, TG_ERR_DTYPE, op, "dtypes differ: %s %s x %s %s", tg_dtype_name(a->dtype),
                   tg_shape_str(a, sa, sizeof sa), tg_dtype_name(b->dtype),
                   tg_shape_str(b, sb, sizeof sb));
}

int tg_infer_same_as_input0(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                            tg_desc *out) {
    (void)n_in;
    (void)attr;
    if (tg_check_float(tp, tp->current_op, in[0])) return -1;
    out->dtype = in[0]->dtype;
    out->ndim = in[0]->ndim;
    memcpy(out->shape, in[0]->shape, sizeof out->shape);
    return 0;
}

void *tg_node_scratch(tg_node *n, size_t bytes) {
    n->scratch = tg__arena_alloc(n->tape, bytes, true);
    if (!n->scratch) tg_fail(n->tape, TG_ERR_NOMEM, n->op->name, "out of memory (scratch)");
    return n->scratch;
}
