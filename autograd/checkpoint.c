/* autograd/checkpoint.c - activation checkpointing (tg_checkpoint, tape.h).
 *
 * A span runs on a sub-tape (tp->ckpt_sub), recording as usual, so it forms
 * the same fused groups and runs the same kernels as it would on tp. Its
 * outputs are copied into tp's arena and the sub-tape is reset: the span's
 * intermediates, gradients-to-be and fusion state are gone, and the next
 * span reuses the same sub-arena chunks. On tp the span is one node,
 * "checkpoint" (inputs: the span's inputs; output: a one-element anchor), and
 * one "checkpoint_output" node per output reading the anchor, so an output
 * that receives a gradient makes the replay reach the checkpoint node.
 *
 * Its VJP runs fn again on the reset sub-tape from the saved RNG state,
 * seeds the outputs with their gradients on tp and backpropagates the
 * sub-recording, adds what reached the span's inputs into their gradients on
 * tp, and resets the sub-tape. Leaves fn reads through its ctx (parameters) are written
 * directly, in the order the plain replay would write them, which is what
 * makes the gradients equal bit for bit; so are their deferred weight-gradient
 * GEMMs: they join the outermost tape's list (ops/gemm_defer.c) and are
 * summed in its chunks, at its flush points, as without the span. */
#include "fuse.h"
#include "../ops/gemm_internal.h"

#include <string.h>

typedef struct ckpt_attr {
    tg_checkpoint_fn fn;
    void *ctx;
    tg_rng *rng;        /* the generator fn draws from, or NULL            */
    tg_rng rng_start;   /* its state when the span's forward began         */
    int n_out;
    tg_tensor **out;    /* the span's outputs on the outer tape (arena)    */
} ckpt_attr;

/* The sub-tape, empty, with tp's modes; NULL (error on tp) when out of memory. */
static tg_tape *sub_tape(tg_tape *tp) {
    if (!tp->ckpt_sub && !(tp->ckpt_sub = tg_tape_new())) {
        tg_fail(tp, TG_ERR_NOMEM, "checkpoint", "out of memory (sub-tape)");
        return NULL;
    }
    tg_tape *sub = tp->ckpt_sub;
    tg_tape_reset(sub);
    sub->claim_for = tp->claim_for ? tp->claim_for : tp;
    sub->training = tp->training;
    sub->threads = tp->threads;
    sub->fusion = tp->fusion;
    sub->fuse_min = tp->fuse_min;
    sub->parallel_min = tp->parallel_min;
    sub->poison = tp->poison;
    sub->scope = tp->scope;
    return sub;
}

/* The span's inputs as leaves of the sub-tape: tp's data, read in place
 * (their gradients collect there and are added into tp's afterwards). */
static tg_tensor **alias_inputs(tg_tape *sub, tg_tensor *const *in, int n) {
    tg_tensor **al = tg__arena_alloc(sub, (size_t)(n > 0 ? n : 1) * sizeof *al, true);
    for (int i = 0; al && i < n; i++) {
        if (!(al[i] = tg__arena_struct(sub, in[i]->dtype, in[i]->ndim, in[i]->shape))) return NULL;
        al[i]->data = in[i]->data;
        al[i]->requires_grad = in[i]->requires_grad;
    }
    return al;
}

/* fn on the sub-tape: the input aliases in *alias, its outputs (computed,
 * checked) in *outs. -1 with the error copied to tp. */
static int run_span(tg_tape *tp, tg_tape *sub, tg_checkpoint_fn fn, void *ctx,
                    tg_tensor *const *in, int n, int m, tg_tensor ***alias, tg_tensor ***outs) {
    tg_tensor **al = alias_inputs(sub, in, n);
    tg_tensor **out = tg__arena_alloc(sub, (size_t)m * sizeof *out, true);
    if (!al || !out)
        return tg_fail(tp, TG_ERR_NOMEM, "checkpoint", "out of memory (span inputs)");
    int rc = fn(sub, ctx, al, n, out, m);
    if (sub->status != TG_OK)
        return tg_fail(tp, sub->status, "checkpoint", "in the span: %s", sub->msg);
    if (rc != 0)
        return tg_fail(tp, TG_ERR_STATE, "checkpoint", "fn failed without an error on its tape");
    for (int j = 0; j < m; j++) {
        char s[160];
        if (!out[j]) return tg_fail(tp, TG_ERR_ARG, "checkpoint", "fn left output %d NULL", j);
        if (out[j]->owner == TG_OWN_ARENA && out[j]->tape != sub)   /* its gradient would die with the span */
            return tg_fail(tp, TG_ERR_ARG, "checkpoint", "output %d %s is another tape's: compute "
                           "outputs on the tape fn is given", j, tg_shape_str(out[j], s, sizeof s));
        if (!tg__is_float(out[j]->dtype))
            return tg_fail(tp, TG_ERR_DTYPE, "checkpoint", "output %d is %s %s: outputs must be "
                           "float", j, tg_dtype_name(out[j]->dtype),
                           tg_shape_str(out[j], s, sizeof s));
        if (tg__concrete(out[j]) != 0)
            return tg_fail(tp, sub->status, "checkpoint", "in the span: %s", sub->msg);
    }
    *alias = al;
    *outs = out;
    return 0;
}

/* The first output slot holding the same tensor as slot j (j if none). */
static int first_slot(tg_tensor *const *span_out, int j) {
    int i = 0;
    while (span_out[i] != span_out[j]) i++;
    return i;
}

static bool same_shape(const tg_tensor *a, const tg_tensor *b) {
    return a->dtype == b->dtype && a->ndim == b->ndim &&
           memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) == 0;
}

/* ---- backward: recompute and backpropagate the span --------------------------- */
static void add_into(void *dst, const void *src, const tg_tensor *t) {
    if (t->dtype == TG_F32)
        for (int64_t i = 0; i < t->numel; i++) ((float *)dst)[i] += ((const float *)src)[i];
    else
        for (int64_t i = 0; i < t->numel; i++) ((double *)dst)[i] += ((const double *)src)[i];
}

/* An input's gradient so far (the replay's contributions from after the
 * span) starts its alias's, so the span's contributions add onto it in the
 * order the plain replay adds them (h_{t-1} of a GRU has three: the output,
 * the blend and the product; a sum of three depends on its order). */
static int lend_input_grads(tg_node *node, tg_tensor *const *al) {
    tg_tape *sub = al[0] ? al[0]->tape : NULL;
    for (int i = 0; i < node->n_in; i++) {
        tg_tensor *x = node->in[i];
        if (!x->grad || !x->requires_grad) continue;
        tg__flush_deferred(node->tape, x->grad);   /* copied now: nothing may land in it later */
        tg__grad_complete(x);
        size_t bytes = (size_t)x->numel * tg_dtype_size(x->dtype);
        if (!(al[i]->grad = tg__arena_data(sub, bytes, false, TG_ARENA_GRADIENT)))
            return tg_fail(node->tape, TG_ERR_NOMEM, "checkpoint", "out of memory (gradient)");
        memcpy(al[i]->grad, x->grad, bytes);
    }
    return 0;
}

/* The gradients the span's input aliases hold, back into the node's inputs
 * (a lent gradient replaces the input's: it started from it). */
static int give_input_grads(tg_node *node, tg_tensor *const *al) {
    for (int i = 0; i < node->n_in; i++) {
        if (!al[i]->grad || !node->in[i]->requires_grad) continue;
        tg__grad_complete(al[i]);
        if (node->in[i]->grad) {
            memcpy(node->in[i]->grad, al[i]->grad, (size_t)al[i]->numel * tg_dtype_size(al[i]->dtype));
            continue;
        }
        bool fresh;
        void *g = tg_input_grad_fresh(node, i, &fresh);
        if (!g) return -1;
        if (fresh)
            memcpy(g, al[i]->grad, (size_t)al[i]->numel * tg_dtype_size(al[i]->dtype));
        else
            add_into(g, al[i]->grad, al[i]);
    }
    return 0;
}

/* The outputs' gradients on tp (NULL: none reached that output), complete. */
static const void **output_grads(tg_tape *tp, const ckpt_attr *a, tg_tape *sub) {
    const void **g = tg__arena_alloc(sub, (size_t)a->n_out * sizeof *g, true);
    for (int j = 0; g && j < a->n_out; j++) {
        tg_tensor *o = a->out[j];
        if (!o->grad || first_slot(a->out, j) < j) continue;   /* a repeat: seeded once */
        tg__flush_deferred(tp, o->grad);
        tg__grad_complete(o);
        g[j] = o->grad;
    }
    return g;
}

static int recompute_and_backward(tg_node *node, tg_tape *sub) {
    tg_tape *tp = node->tape;
    const ckpt_attr *a = node->attr;
    tg_rng caller_rng;
    if (a->rng) {   /* replay the draws of the forward run, then give the stream back */
        caller_rng = *a->rng;
        *a->rng = a->rng_start;
    }
    tg_tensor **al = NULL, **out = NULL;
    int rc = run_span(tp, sub, a->fn, a->ctx, node->in, node->n_in, a->n_out, &al, &out);
    if (a->rng) *a->rng = caller_rng;
    if (rc != 0) return -1;
    for (int j = 0; j < a->n_out; j++) {
        char s1[160], s2[160];
        if (!same_shape(out[j], a->out[j]))
            return tg_fail(tp, TG_ERR_STATE, "checkpoint", "recomputed output %d is %s, the forward "
                           "gave %s: fn must compute the same thing both times", j,
                           tg_shape_str(out[j], s1, sizeof s1), tg_shape_str(a->out[j], s2, sizeof s2));
    }
    const void **g = output_grads(tp, a, sub);
    if (!g) return tg_fail(tp, TG_ERR_NOMEM, "checkpoint", "out of memory");
    if (node->n_in > 0 && lend_input_grads(node, al) != 0) return -1;
    if (tg__backward_seeds(sub, a->n_out, out, g) != TG_OK)
        return tg_fail(tp, sub->status, "checkpoint", "backward through the span: %s", sub->msg);
    return give_input_grads(node, al);
}

static int ckpt_vjp(tg_node *node) {
    tg_tape *tp = node->tape;
    tg_tape *sub = sub_tape(tp);
    if (!sub) return -1;
    int rc = recompute_and_backward(node, sub);
    tg__gemm_defer_settle(sub->claim_for);   /* pending runs stop reading the span's rows */
    tg_tape_reset(sub);
    return rc;
}

/* checkpoint_output: out[j] of a span. Its VJP only marks the anchor, so the
 * replay runs the span's VJP once, after every output's consumers. */
static int ckpt_output_vjp(tg_node *node) { return tg_input_grad(node, 0) ? 0 : -1; }

static int ckpt_no_forward(tg_node *node) {
    (void)node;
    return 0;
}

static const tg_op ckpt_op = {
    .name = "checkpoint", .n_in = TG_VARIADIC, .attr_size = sizeof(ckpt_attr),
    .forward = ckpt_no_forward, .vjp = ckpt_vjp};
static const tg_op ckpt_output_op = {
    .name = "checkpoint_output", .n_in = 1, .forward = ckpt_no_forward, .vjp = ckpt_output_vjp};

/* ---- forward ----------------------------------------------------------------- */
static int check_args(tg_tape *tp, tg_checkpoint_fn fn, tg_tensor *const *in, int n,
                      tg_tensor **out, int m) {
    if (!fn) return tg_fail(tp, TG_ERR_ARG, "checkpoint", "fn is NULL");
    if (!out || m < 1)
        return tg_fail(tp, TG_ERR_ARG, "checkpoint", "needs room for m >= 1 outputs (m = %d%s)", m,
                       out ? "" : ", out NULL");
    if (n < 0 || (n > 0 && !in))
        return tg_fail(tp, TG_ERR_ARG, "checkpoint", "n = %d inputs%s", n, in ? "" : ", in NULL");
    for (int i = 0; i < n; i++) {
        if (!in[i]) return tg_fail(tp, TG_ERR_ARG, "checkpoint", "input %d is NULL", i);
        if (tg__tensor_stale(in[i]))
            return tg_fail(tp, TG_ERR_STATE, "checkpoint", "input %d: %s", i, TG_STALE_TEXT);
        if (tg__concrete(in[i]) != 0) return -1;
    }
    return 0;
}

/* out[j] = copies, in tp's arena, of the span's outputs; an output given twice
 * is one tensor (its gradient then sums in one buffer, as without the span). */
static int keep_outputs(tg_tape *tp, tg_tensor *const *span_out, tg_tensor **out, int m) {
    for (int j = 0; j < m; j++) {
        const tg_tensor *o = span_out[j];
        int i = first_slot(span_out, j);
        if (i < j) {
            out[j] = out[i];
            continue;
        }
        if (!(out[j] = tg__arena_tensor(tp, o->dtype, o->ndim, o->shape, false)))
            return tg_fail(tp, TG_ERR_NOMEM, "checkpoint", "out of memory (outputs)");
        memcpy(out[j]->data, o->data, (size_t)o->numel * tg_dtype_size(o->dtype));
    }
    return 0;
}

/* The checkpoint node and one output node per output (see the top). */
static int record_span(tg_tape *tp, ckpt_attr *a, tg_tensor *const *in, int n) {
    tg_tensor *anchor = tg__arena_tensor(tp, a->out[0]->dtype, 1, (int64_t[]){1}, true);
    tg_node *node;
    if (!anchor || tg__record_always(tp, &ckpt_op, n, in, a, anchor, &node) != 0)
        return tg_fail(tp, TG_ERR_NOMEM, "checkpoint", "out of memory");
    for (int j = 0; j < a->n_out; j++)
        if (first_slot(a->out, j) == j &&
            tg__record(tp, &ckpt_output_op, 1, &anchor, NULL, a->out[j], &node) != 0)
            return -1;
    return 0;
}

static bool any_requires_grad(tg_tensor *const *t, int m) {
    for (int j = 0; j < m; j++)
        if (t[j]->requires_grad) return true;
    return false;
}

tg_status tg_checkpoint(tg_tape *tp, tg_checkpoint_fn fn, void *ctx, tg_rng *rng,
                        tg_tensor *const *in, int n, tg_tensor **out, int m) {
    if (!tp) return tg_set_last_error(TG_ERR_ARG, "checkpoint: tape is NULL");
    if (tp->status != TG_OK) return tp->status;
    if (check_args(tp, fn, in, n, out, m) != 0) return tp->status;
    for (int j = 0; j < m; j++) out[j] = NULL;
    if (!tg_tape_is_recording(tp)) {   /* nothing to recompute: run it here */
        if (fn(tp, ctx, in, n, out, m) != 0 && tp->status == TG_OK)
            tg_fail(tp, TG_ERR_STATE, "checkpoint", "fn failed without an error on its tape");
        return tp->status;
    }
    tg_tape *sub = sub_tape(tp);
    if (!sub) return tp->status;
    ckpt_attr a = {.fn = fn, .ctx = ctx, .rng = rng, .n_out = m};
    if (rng) a.rng_start = *rng;
    tg_tensor **al, **span_out;
    a.out = tg__arena_alloc(tp, (size_t)m * sizeof *a.out, true);
    if (!a.out) tg_fail(tp, TG_ERR_NOMEM, "checkpoint", "out of memory");
    else if (run_span(tp, sub, fn, ctx, in, n, m, &al, &span_out) == 0 &&
             keep_outputs(tp, span_out, a.out, m) == 0 && any_requires_grad(span_out, m))
        record_span(tp, &a, in, n);
    tg_tape_reset(sub);   /* the span's intermediates: gone */
    if (tp->status != TG_OK) return tp->status;
    memcpy(out, a.out, (size_t)m * sizeof *out);
    return TG_OK;
}

uint64_t tg_tape_checkpoint_peak(const tg_tape *tp) {
    if (!tp || !tp->ckpt_sub) return 0;
    tg_tape_stats st;
    tg_tape_stats_get(tp->ckpt_sub, &st);
    return st.arena_peak + tg_tape_checkpoint_peak(tp->ckpt_sub);
}
