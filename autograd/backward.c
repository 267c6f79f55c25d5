/* autograd/backward.c - replay the tape in reverse through each op's VJP. */
#include "tools.h"

#include <stdlib.h>
#include <string.h>

static void *alloc_grad(tg_tape *tp, tg_tensor *t, const char *op, bool zero) {
    size_t bytes = (size_t)t->numel * tg_dtype_size(t->dtype);
    if (t->owner == TG_OWN_ARENA) {
        t->grad = tg__arena_data(tp, bytes, zero, TG_ARENA_GRADIENT);
    } else {
        /* A leaf: its gradient outlives the tape and accumulates across steps. */
        t->grad = tg__calloc(1, bytes + TG_SLACK);
        t->grad_on_heap = t->grad != NULL;
        tp->heap_allocs++;
    }
    t->grad_lo = t->grad_hi = 0;
    if (!t->grad) tg_fail(tp, TG_ERR_NOMEM, op, "out of memory (gradient)");
    return t->grad;
}

/* ---- leaves shared between threads ----------------------------------------------
 * A leaf (any tensor no node of this tape produced) keeps its gradient across
 * backward calls. Two threads backpropagating into one leaf at the same time
 * lost updates (dx += ... is not atomic). The contract (tape.h): one tape per
 * thread, each with its own leaves, gradients summed afterwards. It is
 * enforced, not assumed: a backward claims each leaf it writes (an atomic owner
 * mark, held until tg_backward_ex returns), and one that finds a leaf claimed
 * by another tape fails with TG_ERR_STATE instead of racing. */
static bool is_leaf_of(const tg_tape *tp, const tg_tensor *t) {
    return !(t->owner == TG_OWN_ARENA && t->tape == tp && t->node >= 0);
}

static bool remember_claim(tg_tape *tp, tg_tensor *t) {
    if (tp->n_claimed == tp->cap_claimed) {
        int64_t cap = tp->cap_claimed ? tp->cap_claimed * 2 : 64;
        tg_tensor **grown = realloc(tp->claimed, (size_t)cap * sizeof *grown);
        if (!grown) return false;
        tg__count_alloc();
        tp->heap_allocs++;
        tp->claimed = grown;
        tp->cap_claimed = cap;
    }
    tp->claimed[tp->n_claimed++] = t;
    return true;
}

static bool claim_leaf(tg_tape *me, tg_tensor *t, const char *op) {
    tg_tape *none = NULL;
    if (__atomic_load_n(&t->grad_claim, __ATOMIC_ACQUIRE) == me) return true;
    if (__atomic_compare_exchange_n(&t->grad_claim, &none, me, false, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED)) {
        if (remember_claim(me, t)) return true;
        __atomic_store_n(&t->grad_claim, NULL, __ATOMIC_RELEASE);
        tg_fail(me, TG_ERR_NOMEM, "backward", "out of memory");
        return false;
    }
    char s[160];
    tg_fail(me, TG_ERR_STATE, op,
            "leaf %s is being written by another tape's backward at the same time (another "
            "thread?): give each thread its own leaves and sum their gradients (tape.h)",
            tg_shape_str(t, s, sizeof s));
    return false;
}

static void release_claims(tg_tape *tp) {
    for (int64_t i = 0; i < tp->n_claimed; i++)
        __atomic_store_n(&tp->claimed[i]->grad_claim, NULL, __ATOMIC_RELEASE);
    tp->n_claimed = 0;
}

/* A checkpoint's sub-tape (checkpoint.c) claims leaves for the outer tape,
 * whose backward is running and releases them; its own arena leaves (the
 * span's inputs) die with the span and need no claim. */
static bool claim_for_outer(tg_tape *tp, tg_tensor *t, const char *op) {
    return (t->owner == TG_OWN_ARENA && t->tape == tp) || claim_leaf(tp->claim_for, t, op);
}

/* t's gradient buffer may be touched: false (error set, naming op) if it is a
 * leaf another tape's backward holds. */
static bool may_write_grad(tg_tape *tp, tg_tensor *t, const char *op) {
    if (!is_leaf_of(tp, t)) return true;
    return tp->claim_for ? claim_for_outer(tp, t, op) : claim_leaf(tp, t, op);
}

static int64_t cols_of(const tg_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }

void tg__grad_zero_rest(tg_tensor *t) {
    int64_t cols = cols_of(t), rows = t->numel / cols;
    size_t row = (size_t)cols * tg_dtype_size(t->dtype);
    memset(t->grad, 0, (size_t)t->grad_lo * row);
    memset((char *)t->grad + (size_t)t->grad_hi * row, 0, (size_t)(rows - t->grad_hi) * row);
    t->grad_lo = t->grad_hi = 0;
}

void *tg__grad_rows(tg_tape *tp, tg_tensor *t, int64_t row0, int64_t n, const char *op,
                    bool *assign) {
    int64_t rows = t->numel ? t->numel / cols_of(t) : 0;
    *assign = false;
    if (!may_write_grad(tp, t, op)) return NULL;
    if (!t->grad) {
        if (!alloc_grad(tp, t, op, t->owner != TG_OWN_ARENA)) return NULL;
        *assign = t->owner == TG_OWN_ARENA;
        if (*assign && (row0 > 0 || n < rows)) {
            t->grad_lo = row0;
            t->grad_hi = row0 + n;
        }
        return t->grad;
    }
    bool next_to = row0 + n == t->grad_lo || row0 == t->grad_hi;
    if (t->grad_lo < t->grad_hi && next_to) {
        t->grad_lo = row0 < t->grad_lo ? row0 : t->grad_lo;
        t->grad_hi = row0 + n > t->grad_hi ? row0 + n : t->grad_hi;
        if (t->grad_lo == 0 && t->grad_hi == rows) t->grad_lo = t->grad_hi = 0;
        *assign = true;
        return t->grad;
    }
    tg__grad_complete(t);
    return t->grad;
}

void *tg_input_grad(tg_node *n, int i) {
    tg_tensor *t = n->in[i];
    if (!t->requires_grad || !may_write_grad(n->tape, t, n->op->name)) return NULL;
    if (!t->grad) return alloc_grad(n->tape, t, n->op->name, true);
    tg__grad_complete(t);
    return t->grad;
}

void *tg__grad_buffer(tg_tape *tp, tg_tensor *t, const char *op, bool *fresh) {
    *fresh = false;
    if (!may_write_grad(tp, t, op)) return NULL;
    if (t->grad) {
        tg__grad_complete(t);
        return t->grad;
    }
    /* Only arena gradients start uninitialised; a leaf's is zeroed once, when
     * it is first made, and accumulates from then on. */
    *fresh = t->owner == TG_OWN_ARENA;
    return alloc_grad(tp, t, op, !*fresh);
}

void *tg_input_grad_fresh(tg_node *n, int i, bool *fresh) {
    *fresh = false;
    return n->in[i]->requires_grad ? tg__grad_buffer(n->tape, n->in[i], n->op->name, fresh)
                                   : NULL;
}

const void *tg_output_grad(const tg_node *n) {
    tg__grad_complete(n->out);
    return n->out->grad;
}

/* The VJP of an op with an empty result: a zero gradient for every input that
 * wants one (as PyTorch gives), without running kernels that could loop over
 * the other dims of the empty shape. */
static bool zero_vjp(tg_node *n) {
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i]->requires_grad && !tg_input_grad(n, i)) return false;
    return true;
}

static tg_status backward_check(tg_tape *tp, tg_tensor *y, const tg_tensor *dy) {
    char a[160], b[160];
    if (!y) {
        tg_fail(tp, TG_ERR_ARG, "backward", "output is NULL");
        return TG_ERR_ARG;
    }
    if (tg__tensor_stale(y)) {
        tg_fail(tp, TG_ERR_STATE, "backward", "output: %s", TG_STALE_TEXT);
        return TG_ERR_STATE;
    }
    if (y->tape != tp || y->node < 0 || y->node >= tp->n_nodes || tp->nodes[y->node].out != y) {
        tg_fail(tp, TG_ERR_STATE, "backward",
                "tensor %s was not recorded on this tape (does any input require grad?)",
                tg_shape_str(y, a, sizeof a));
        return TG_ERR_STATE;
    }
    if (!dy) return TG_OK;
    if (tg__tensor_stale(dy)) {
        tg_fail(tp, TG_ERR_STATE, "backward", "output gradient: %s", TG_STALE_TEXT);
        return TG_ERR_STATE;
    }
    if (dy->numel != y->numel || dy->ndim != y->ndim ||
        memcmp(dy->shape, y->shape, (size_t)y->ndim * sizeof y->shape[0]) != 0) {
        tg_fail(tp, TG_ERR_SHAPE, "backward", "output gradient shape %s differs from output %s",
                tg_shape_str(dy, b, sizeof b), tg_shape_str(y, a, sizeof a));
        return TG_ERR_SHAPE;
    }
    if (!tg__is_float(dy->dtype)) {
        tg_fail(tp, TG_ERR_DTYPE, "backward", "output gradient must be float, got %s",
                tg_dtype_name(dy->dtype));
        return TG_ERR_DTYPE;
    }
    return TG_OK;
}

/* Intermediate gradients start fresh each backward; leaves keep accumulating. */
static void clear_intermediate_grads(tg_tape *tp, int64_t top) {
    for (int64_t i = 0; i <= top; i++) {
        tp->nodes[i].out->grad = NULL;
        tp->nodes[i].out->grad_lo = tp->nodes[i].out->grad_hi = 0;
    }
}

static tg_status seed_output_grad(tg_tape *tp, tg_tensor *y, const tg_tensor *dy) {
    clear_intermediate_grads(tp, y->node);
    y->grad = tg__arena_data(tp, (size_t)y->numel * tg_dtype_size(y->dtype), true,
                             TG_ARENA_GRADIENT);
    if (!y->grad) {
        tg_fail(tp, TG_ERR_NOMEM, "backward", "out of memory");
        return TG_ERR_NOMEM;
    }
    if (dy && dy->dtype == y->dtype) {
        memcpy(y->grad, dy->data, (size_t)y->numel * tg_dtype_size(y->dtype));
        return TG_OK;
    }
    for (int64_t i = 0; i < y->numel; i++) {
        double g = dy ? tg_tensor_get(dy, i) : 1.0;
        if (y->dtype == TG_F32)
            ((float *)y->grad)[i] = (float)g;
        else
            ((double *)y->grad)[i] = g;
    }
    return TG_OK;
}

/* always inlined: called twice (replay_node_hooked), GCC stopped inlining it */
static inline __attribute__((always_inline)) tg_status replay_node(tg_tape *tp, tg_node *n) {
    if (!n->out->grad) return TG_OK; /* nothing flowed into this op */
    tg__flush_deferred(tp, n->out->grad);   /* the VJP reads its output's gradient */
    if (n->out->numel == 0)          /* forward did not run (tg_apply): the VJP is 0 */
        return zero_vjp(n) ? TG_OK : tp->status;
    if (n->op->vjp(n) != 0 || tp->status != TG_OK)
        return tp->status != TG_OK ? tp->status : TG_ERR_STATE;
    return TG_OK;
}

/* replay_node with the tools' hook (timing, the anomaly check; tools.h). */
static tg_status replay_node_hooked(tg_tape *tp, tg_node *n) {
    if (__builtin_expect(tp->tools == NULL, 1)) return replay_node(tp, n);
    tg__span s = tg__tools_begin(tp);
    return tg__tools_after_vjp(tp, n, s, replay_node(tp, n));
}

/* ready: the leaves to report as their gradients become final (grad_ready.c).
 * A fused group runs its VJP once, at its last node reached, so every
 * gradient it writes is written before the walk passes any of its nodes. */
static tg_status replay_nodes(tg_tape *tp, tg_tensor *y, tg__ready_list *ready) {
    tg__fuse_backward_begin(tp);
    for (int64_t i = y->node; i >= 0; i--) {
        tg_node *n = &tp->nodes[i];
        int fused = n->out->fz ? tg__fuse_backward(tp, n->out->fz, y->node) : 1;
        if (fused < 0) return tp->status != TG_OK ? tp->status : TG_ERR_STATE;
        tg_status st = fused > 0 ? replay_node_hooked(tp, n) : TG_OK;
        if (st != TG_OK) return st;
        tg__ready_passed(tp, ready, i);
    }
    return TG_OK;
}

static tg_status replay(tg_tape *tp, tg_tensor *y, tg__ready_list *ready) {
    tg_status st = replay_nodes(tp, y, ready);
    tg__flush_deferred(tp, NULL);   /* leaves: complete when backward returns; nothing stays pending */
    return st;
}

static tg_status backward(tg_tape *tp, tg_tensor *y, const tg_tensor *dy) {
    if (tp->status != TG_OK) return tp->status; /* a failed forward has nothing to replay */
    tg_status st = backward_check(tp, y, dy);
    if (st == TG_OK && dy && tg__concrete((tg_tensor *)dy) != 0) st = tp->status; /* a fused value */
    if (st == TG_OK) st = seed_output_grad(tp, y, dy);
    tg__ready_list ready;
    if (st == TG_OK) st = tg__ready_begin(tp, y->node, &ready);
    if (st != TG_OK) return st;
    st = replay(tp, y, &ready);
    release_claims(tp);
    return st;
}

tg_status tg_backward_ex(tg_tape *tp, tg_tensor *y, const tg_tensor *dy) {
    if (!tp) return tg_set_last_error(TG_ERR_ARG, "backward: tape is NULL");
    tg__span s = tg__tools_begin(tp);   /* the profiler times the walk (tools.h) */
    tg_status st = backward(tp, y, dy);
    tg__tools_after_walk(tp, s);
    return st;
}

tg_status tg_backward(tg_tape *tp, tg_tensor *loss) {
    if (tp && loss && !tg__tensor_stale(loss) && loss->numel != 1) {
        char a[160];
        tg_fail(tp, TG_ERR_SHAPE, "backward",
                "loss must have one element, got %s (use tg_backward_ex with an output gradient)",
                tg_shape_str(loss, a, sizeof a));
        return TG_ERR_SHAPE;
    }
    return tg_backward_ex(tp, loss, NULL);
}

/* ---- several outputs (checkpoint.c) -------------------------------------------- */
static bool recorded_here(const tg_tape *tp, const tg_tensor *t) {
    return t->tape == tp && t->node >= 0 && t->node < tp->n_nodes && tp->nodes[t->node].out == t;
}

/* y's gradient = dy (the first seed), or += dy (the same tensor given twice). */
static bool seed_one(tg_tape *tp, tg_tensor *y, const void *dy) {
    bool fresh;
    void *g = tg__grad_buffer(tp, y, "checkpoint", &fresh);
    if (!g) return false;
    if (fresh) {
        memcpy(g, dy, (size_t)y->numel * tg_dtype_size(y->dtype));
    } else if (y->dtype == TG_F32) {
        for (int64_t i = 0; i < y->numel; i++) ((float *)g)[i] += ((const float *)dy)[i];
    } else {
        for (int64_t i = 0; i < y->numel; i++) ((double *)g)[i] += ((const double *)dy)[i];
    }
    return true;
}

tg_status tg__backward_seeds(tg_tape *tp, int m, tg_tensor *const *y, const void *const *dy) {
    tg_tensor *top = NULL;
    for (int j = 0; j < m; j++)
        if (recorded_here(tp, y[j]) && (!top || y[j]->node > top->node)) top = y[j];
    if (top) clear_intermediate_grads(tp, top->node);
    for (int j = 0; j < m; j++)
        if (dy[j] && y[j]->requires_grad && !seed_one(tp, y[j], dy[j])) return tp->status;
    if (!top) return tp->status;
    tg__ready_list ready;
    tg_status st = tg__ready_begin(tp, top->node, &ready);
    if (st == TG_OK) st = replay(tp, top, &ready);
    release_claims(tp);
    return st;
}
