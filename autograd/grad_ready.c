/* autograd/grad_ready.c - telling a callback when a leaf's gradient is final
 * during backward (tape.h: tg_tape_on_grad_ready).
 *
 * The replay runs from the output's node down to node 0, so a leaf's gradient
 * is final once the replay has passed the lowest-numbered node that takes it
 * as input. When backward starts, the leaves that require grad are listed with
 * that node, sorted in replay order; backward.c then calls tg__ready_passed
 * after each node, which reports the leaves whose turn has come.
 *
 * Nothing is written into the leaves (another thread's tape may be reading
 * them), and the list lives in the tape's arena: a warm step allocates
 * nothing. A replay that runs several nodes at once, or defers part of a
 * node's gradient, keeps the contract by calling tg__ready_passed only once
 * every gradient up to that node has been written (deferred weight-gradient
 * GEMMs are flushed for each leaf as it is reported). */
#include "internal.h"

#include <stdlib.h>

typedef struct tg__ready_entry {
    tg_tensor *leaf;
    int64_t node;   /* its last consumer in the replay */
    int slot;       /* which input of that node it is  */
} ready_entry;

void tg_tape_on_grad_ready(tg_tape *tp, tg_grad_ready_fn fn, void *ctx) {
    if (!tp) return;
    tp->grad_ready = fn;
    tp->grad_ready_ctx = fn ? ctx : NULL;
}

/* A tensor no node of this tape produced, whose gradient backward accumulates. */
static bool wants_ready(const tg_tape *tp, const tg_tensor *t) {
    bool leaf = !(t->owner == TG_OWN_ARENA && t->tape == tp && t->node >= 0);
    return leaf && t->requires_grad;
}

static int cmp_uintptr(uintptr_t a, uintptr_t b) { return (a > b) - (a < b); }
static int cmp_int64(int64_t a, int64_t b) { return (a > b) - (a < b); }

/* By leaf, then by node and slot ascending: each leaf's first entry is its last consumer. */
static int by_leaf(const void *pa, const void *pb) {
    const ready_entry *a = pa, *b = pb;
    int c = cmp_uintptr((uintptr_t)a->leaf, (uintptr_t)b->leaf);
    if (!c) c = cmp_int64(a->node, b->node);
    return c ? c : (a->slot > b->slot) - (a->slot < b->slot);
}

/* Replay order: node descending, then the node's inputs in order. */
static int by_replay(const void *pa, const void *pb) {
    const ready_entry *a = pa, *b = pb;
    int c = cmp_int64(b->node, a->node);
    return c ? c : (a->slot > b->slot) - (a->slot < b->slot);
}

static int64_t count_uses(const tg_tape *tp, int64_t y_node) {
    int64_t n = 0;
    for (int64_t i = 0; i <= y_node; i++)
        for (int k = 0; k < tp->nodes[i].n_in; k++) n += wants_ready(tp, tp->nodes[i].in[k]);
    return n;
}

tg_status tg__ready_begin(tg_tape *tp, int64_t y_node, tg__ready_list *r) {
    *r = (tg__ready_list){0};
    if (!tp->grad_ready) return TG_OK;
    int64_t uses = count_uses(tp, y_node);
    if (uses == 0) return TG_OK;
    ready_entry *e = tg__arena_alloc(tp, (size_t)uses * sizeof *e, false);
    if (!e) {
        tg_fail(tp, TG_ERR_NOMEM, "backward", "out of memory (gradient-ready list)");
        return TG_ERR_NOMEM;
    }
    int64_t n = 0;
    for (int64_t i = 0; i <= y_node; i++)
        for (int k = 0; k < tp->nodes[i].n_in; k++)
            if (wants_ready(tp, tp->nodes[i].in[k]))
                e[n++] = (ready_entry){tp->nodes[i].in[k], i, k};
    qsort(e, (size_t)n, sizeof *e, by_leaf);
    int64_t kept = 0;   /* the first entry of each leaf */
    for (int64_t j = 0; j < n; j++)
        if (kept == 0 || e[kept - 1].leaf != e[j].leaf) e[kept++] = e[j];
    qsort(e, (size_t)kept, sizeof *e, by_replay);
    *r = (tg__ready_list){e, kept, 0, tp->grad_ready, tp->grad_ready_ctx};
    return TG_OK;
}

/* A leaf's weight-gradient GEMMs may still be pending (ops/gemm_defer.c):
 * they are run before the leaf is reported, so the callback reads it whole. */
void tg__ready_passed(tg_tape *tp, tg__ready_list *r, int64_t i) {
    while (r->next < r->n && r->at[r->next].node >= i) {
        tg_tensor *leaf = r->at[r->next++].leaf;
        if (leaf->grad) tg__flush_deferred(tp, leaf->grad);   /* NULL would flush all */
        r->fn(leaf, r->ctx);
    }
}
