/* autograd/fuse.h - the fusion engine's private interface (never installed).
 *
 * With fusion on, an elementwise op (tg_op.eltwise) or a movement op that
 * only re-indexes (tg_op.window) does not run in tg_apply: its output becomes
 * a *pending* value of the tape's open group (data NULL) and its node is
 * recorded as usual. The group runs as one pass over memory when something
 * needs data; backward runs its VJP in one pass. docs/ARCHITECTURE.md
 * ("Fusion") tells the whole story; the files are:
 *   fuse.c          recording, flushing, demands, user-write hazards, reset;
 *   fuse_compile.c  signatures, the per-tape program cache, compilation;
 *   fuse_exec.c     the block interpreter (forward, backward).
 *
 * Every value and operand of a group is seen as a matrix [rows, cols]
 * (cols = last dim, 0-d and 1-d tensors are one row). An argument of a value
 * is read through a fz_map from the value's coordinates. */
#ifndef TG_FUSE_H
#define TG_FUSE_H

#include "internal.h"

enum {
    FZ_MAX_VALUES = 64,     /* per group: store masks are one uint64_t     */
    FZ_MAX_OPERANDS = 32,
    FZ_MIN_NUMEL = 256      /* smaller outputs run unfused (W5's 16 floats) */
};

/* (r, c) of a consumer -> (row0 + ar*r, col0 + ac*c) of its source;
 * ar, ac = 0 broadcast along that axis. */
typedef struct fz_map {
    int64_t row0, col0;
    uint8_t ar, ac;
} fz_map;

/* What a value reads: value id >= 0 of the group, or operand ~id (id < 0). */
typedef struct fz_ref {
    int32_t id;
    fz_map map;
} fz_ref;

typedef struct fz_group fz_group;

typedef struct fz_value {
    tg_tensor *t;                  /* the pending tensor; NULL for a clone        */
    const tg_op *op;               /* the op: elementwise, or a window (a view)   */
    const void *attr;              /* arena copy (or NULL)                        */
    tg_tensor **in;                /* the op's inputs as given (for unfused runs) */
    int n_in;
    fz_ref arg[TG_ELTWISE_MAX_IN]; /* a view has one: its source and window       */
    int64_t rows, cols;
    bool view;                     /* op->window: no arithmetic                   */
    bool aliased;                  /* stored as a view of an operand's memory     */
    bool recorded;                 /* its node is on the tape (gradients flow)    */
    /* A clone: a cheap value of a closed group recomputed here, instead of
     * stored there and read back (fuse.c, resolve) */
    const fz_group *clone_of;
    int32_t clone_index;
    fz_map clone_at;               /* which window of the original it is          */
} fz_value;

/* A concrete window the group reads: rows x cols at row stride ld, starting
 * at element off of t's data (and of t's gradient: same layout). */
typedef struct fz_operand {
    tg_tensor *t;
    int64_t off, rows, cols, ld;
} fz_operand;

typedef struct fz_entry fz_entry;

struct fz_group {
    struct fz_group *prev;         /* the tape's live groups, newest first        */
    fz_value *v;
    fz_operand *o;
    int n_values, n_operands;
    tg_dtype dt;
    bool open, dissolved;
    uint64_t stored;               /* values with data                            */
    fz_entry *entry;               /* cache entry, or NULL (uncached)             */
    uint64_t bwd_stamp;            /* the backward pass that last ran it          */
};

/* The tape's fusion state (tp->fuse), made at the first fused op. */
typedef struct fz_cache fz_cache;
typedef struct tg_fuse {
    tg_tape *tp;
    fz_group *open;                /* the open group (its arrays are the stages)  */
    fz_group *live;                /* groups since reset, newest first            */
    fz_value stage_v[FZ_MAX_VALUES];
    fz_operand stage_o[FZ_MAX_OPERANDS];
    fz_cache *cache;               /* signature -> store mask and programs        */
    void *compile;                 /* the compiler's working memory (heap)        */
    unsigned char *regs;           /* register blocks for the interpreter (heap)  */
    size_t regs_bytes;
    uint64_t bwd_stamp;            /* counts backward passes                      */
    struct tg_fuse *next, *prev;   /* registry of tapes with live groups          */
    bool registered;
    unsigned long owner;           /* thread that records on it (pthread_t)       */
} tg_fuse;

/* ---- fuse.c: what tape.c, tensor.c and backward.c call ------------------------------------ */
/* Record op on in as a pending value of the open group. Returns 1 and *out
 * (NULL after an error on the tape) when it did, 0 when the op should run
 * unfused (shapes that do not map, a small output, ...). */
TG_HIDDEN int tg__fuse_apply(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                             const void *attr, const tg_desc *d, tg_tensor **out);
/* Give a pending tensor its data (runs or recomputes its group). 0 or -1. */
TG_HIDDEN int tg__fuse_demand(tg_tensor *t);
/* Close the open group (backward is starting). */
TG_HIDDEN void tg__fuse_close(tg_tape *tp);
/* Before the caller writes or frees t: every group that reads t (and could
 * still compute from it) runs to the end unfused, as eager mode would have. */
TG_HIDDEN void tg__fuse_before_write(tg_tensor *t);
/* Drop every group (tape reset / free). */
TG_HIDDEN void tg__fuse_release(tg_tape *tp);
/* Drop every group and free the fusion state (tape free). */
TG_HIDDEN void tg__fuse_free(tg_tape *tp);
/* Backward is starting: close the open group, count the pass. */
TG_HIDDEN void tg__fuse_backward_begin(tg_tape *tp);
/* Backward reached a node whose output is a value of group g: run g's VJP
 * (once per pass), for the gradients of values recorded up to node limit.
 * 0: done; 1: g could not compile and now runs unfused (replay the node);
 * -1: error on the tape. */
TG_HIDDEN int tg__fuse_backward(tg_tape *tp, fz_group *g, int64_t limit);

/* A tensor still without data that a group will compute. */
static inline bool tg__pending(const tg_tensor *t) { return t->data == NULL && t->fz != NULL; }

/* Make t concrete if it is pending; 0 or -1. */
static inline int tg__concrete(tg_tensor *t) { return tg__pending(t) ? tg__fuse_demand(t) : 0; }

/* ---- fuse_compile.c ---------------------------------------------------------------------- */
typedef struct fz_prog fz_prog;
/* The group's signature and cache entry (NULL when the cache is full). */
TG_HIDDEN fz_entry *tg__fz_lookup(tg_tape *tp, fz_group *g);
TG_HIDDEN uint64_t tg__fz_learned(const fz_entry *e);
TG_HIDDEN void tg__fz_learn(fz_entry *e, uint64_t mask);
/* Programs that store the values in mask / propagate the seeds' gradients to
 * the operands that want one; cached in e when e is not NULL, else built in
 * the arena. NULL when the group does not compile (too large). */
TG_HIDDEN const fz_prog *tg__fz_forward_prog(tg_tape *tp, fz_group *g, uint64_t mask);
TG_HIDDEN const fz_prog *tg__fz_backward_prog(tg_tape *tp, fz_group *g, uint64_t seeds,
                                               uint32_t wants);
TG_HIDDEN void tg__fz_cache_free(tg_tape *tp);

/* ---- fuse_exec.c ------------------------------------------------------------------------- */
/* Run a forward program (value buffers allocated). 0 or -1. */
TG_HIDDEN int tg__fz_run_forward(tg_tape *tp, fz_group *g, const fz_prog *p);
/* Run a backward program (operand gradients allocated). 0 or -1. */
TG_HIDDEN int tg__fz_run_backward(tg_tape *tp, fz_group *g, const fz_prog *p, uint32_t wants);

#endif
