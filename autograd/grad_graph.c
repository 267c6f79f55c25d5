/* autograd/grad_graph.c - tg_grad: backward through each op's vjp_graph, so
 * the gradients are tensors (recorded with create_graph, hence differentiable
 * again). The first-order tg_backward (backward.c) is a separate path with its
 * own kernels; nothing here runs during it.
 *
 * The walk: mark the nodes that depend on a requested input (forward, once),
 * then from y's node down to 0 hand each marked node's output gradient (a
 * tensor) to its vjp_graph and add what comes back into the gradient tensor
 * of each input (tg_add: recorded like any op). Ops recorded during the walk
 * land after y's node and are not visited. */
#include "internal.h"

#include <string.h>

typedef struct gg_walk {
    tg_tape *tp;
    int64_t top;              /* y's node                               */
    int n;                    /* requested inputs                        */
    tg_tensor *const *inputs;
    tg_tensor **node_grad;    /* [top + 1]: gradient of each node output */
    tg_tensor **input_grad;   /* [n]: gradients of requested leaves       */
    bool *reach;              /* [top + 1]: depends on a requested input  */
} gg_walk;

static bool is_node_output(const gg_walk *w, const tg_tensor *t) {
    return t->owner == TG_OWN_ARENA && t->tape == w->tp && t->node >= 0 && t->node <= w->top &&
           w->tp->nodes[t->node].out == t;
}

static int requested(const gg_walk *w, const tg_tensor *t) {
    for (int i = 0; i < w->n; i++)
        if (w->inputs[i] == t) return i;
    return -1;
}

/* Where t's gradient accumulates, or NULL when nobody asked for it. */
static tg_tensor **slot_of(gg_walk *w, const tg_tensor *t) {
    if (!t->requires_grad || !tg__is_float(t->dtype)) return NULL;
    if (is_node_output(w, t)) return w->reach[t->node] || requested(w, t) >= 0
                                         ? &w->node_grad[t->node] : NULL;
    int i = requested(w, t);
    return i >= 0 ? &w->input_grad[i] : NULL;
}

static void mark_reach(gg_walk *w) {
    for (int64_t k = 0; k <= w->top; k++) {
        const tg_node *nd = &w->tp->nodes[k];
        bool r = false;
        for (int j = 0; j < nd->n_in && !r; j++) {
            const tg_tensor *t = nd->in[j];
            r = requested(w, t) >= 0 || (is_node_output(w, t) && w->reach[t->node]);
        }
        w->reach[k] = r;
    }
}

static bool same_shape(const tg_tensor *a, const tg_tensor *b) {
    return a->dtype == b->dtype && a->ndim == b->ndim &&
           memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) == 0;
}

static int add_into(gg_walk *w, tg_node *nd, int j, tg_tensor **slot, tg_tensor *dx) {
    if (!same_shape(dx, nd->in[j])) { /* a vjp_graph's own bug: say whose */
        char a[160], b[160];
        return tg_fail(w->tp, TG_ERR_STATE, nd->op->name,
                       "vjp_graph gave a gradient %s %s for input %d %s %s",
                       tg_dtype_name(dx->dtype), tg_shape_str(dx, a, sizeof a), j,
                       tg_dtype_name(nd->in[j]->dtype), tg_shape_str(nd->in[j], b, sizeof b));
    }
    *slot = *slot ? tg_add(w->tp, *slot, dx) : dx;
    return *slot ? 0 : -1;
}

static int replay_graph_node(gg_walk *w, int64_t k) {
    tg_tape *tp = w->tp;
    tg_node nd = tp->nodes[k];    /* a copy: recording may move the array */
    tg_tensor *dy = w->node_grad[k];
    if (!dy || !w->reach[k] || nd.out->numel == 0) return 0;
    if (!nd.op->vjp_graph)
        return tg_fail(tp, TG_ERR_STATE, nd.op->name,
                       "no double backward (vjp_graph) for this op: tg_grad cannot go through it");
    bool *want = tg_tape_alloc(tp, (size_t)nd.n_in * sizeof *want);
    tg_tensor **dx = tg_tape_alloc(tp, (size_t)nd.n_in * sizeof *dx);
    tg_tensor ***slot = tg_tape_alloc(tp, (size_t)nd.n_in * sizeof *slot);
    if (!want || !dx || !slot) return tg_fail(tp, TG_ERR_NOMEM, "grad", "out of memory");
    for (int j = 0; j < nd.n_in; j++) {
        slot[j] = slot_of(w, nd.in[j]);
        want[j] = slot[j] != NULL;
        dx[j] = NULL;
    }
    if (nd.op->vjp_graph(&nd, dy, want, dx) != 0 || tp->status != TG_OK) return -1;
    for (int j = 0; j < nd.n_in; j++)
        if (want[j] && dx[j] && add_into(w, &nd, j, slot[j], dx[j]) != 0) return -1;
    return 0;
}

static tg_status grad_check(tg_tape *tp, tg_tensor *y, tg_tensor *dy, int n,
                            tg_tensor *const *inputs, tg_tensor **grads) {
    char a[160], b[160];
    if (!y || !inputs || !grads || n < 1)
        return tg_fail(tp, TG_ERR_ARG, "grad", "%s", !y ? "output is NULL"
                       : n < 1 ? "no inputs" : "inputs or grads is NULL"), TG_ERR_ARG;
    for (int i = 0; i < n; i++) {
        grads[i] = NULL;
        if (!inputs[i] || tg__tensor_stale(inputs[i]))
            return tg_fail(tp, TG_ERR_ARG, "grad", "input %d is %s", i,
                           inputs[i] ? "stale (kept across tg_tape_reset)" : "NULL"), TG_ERR_ARG;
    }
    if (tg__tensor_stale(y) || y->tape != tp || y->node < 0 || y->node >= tp->n_nodes ||
        tp->nodes[y->node].out != y)
        return tg_fail(tp, TG_ERR_STATE, "grad",
                       "output %s was not recorded on this tape (does any input require grad?)",
                       tg_shape_str(y, a, sizeof a)), TG_ERR_STATE;
    if (!dy && y->numel != 1)
        return tg_fail(tp, TG_ERR_SHAPE, "grad",
                       "output %s has more than one element: give its gradient dy",
                       tg_shape_str(y, a, sizeof a)), TG_ERR_SHAPE;
    if (dy && (tg__tensor_stale(dy) || !same_shape(dy, y)))
        return tg_fail(tp, TG_ERR_SHAPE, "grad", "output gradient %s %s differs from output %s %s",
                       tg_dtype_name(dy->dtype), tg_shape_str(dy, b, sizeof b),
                       tg_dtype_name(y->dtype), tg_shape_str(y, a, sizeof a)), TG_ERR_SHAPE;
    return TG_OK;
}

static tg_status walk(gg_walk *w, tg_tensor *y, tg_tensor *dy) {
    tg_tape *tp = w->tp;
    size_t m = (size_t)(w->top + 1);
    w->node_grad = tg_tape_alloc(tp, m * sizeof *w->node_grad);
    w->reach = tg_tape_alloc(tp, m * sizeof *w->reach);
    w->input_grad = tg_tape_alloc(tp, (size_t)w->n * sizeof *w->input_grad);
    if (!w->node_grad || !w->reach || !w->input_grad)
        return tg_fail(tp, TG_ERR_NOMEM, "grad", "out of memory"), TG_ERR_NOMEM;
    memset(w->node_grad, 0, m * sizeof *w->node_grad);
    memset(w->input_grad, 0, (size_t)w->n * sizeof *w->input_grad);
    mark_reach(w);
    if (!dy) {
        dy = tg_tape_tensor(tp, y->dtype, y->ndim, y->shape);
        if (dy) tg_tensor_set(dy, 0, 1.0);
    }
    w->node_grad[w->top] = dy;
    for (int64_t k = w->top; k >= 0 && tp->status == TG_OK; k--)
        if (replay_graph_node(w, k) != 0) break;
    return tp->status;
}

tg_status tg_grad(tg_tape *tp, tg_tensor *y, tg_tensor *dy, int n, tg_tensor *const *inputs,
                  tg_tensor **grads, const tg_grad_opts *opts) {
    if (!tp) return tg_set_last_error(TG_ERR_ARG, "grad: tape is NULL");
    if (tp->status != TG_OK) return tp->status;
    tg_status st = grad_check(tp, y, dy, n, inputs, grads);
    if (st != TG_OK) return st;
    bool record = opts && opts->create_graph;
    if (!record) tg_no_grad_begin(tp);
    gg_walk w = {.tp = tp, .top = y->node, .n = n, .inputs = inputs};
    st = walk(&w, y, dy);
    for (int i = 0; i < n && st == TG_OK; i++) {
        tg_tensor *x = inputs[i];
        grads[i] = is_node_output(&w, x) ? w.node_grad[x->node] : w.input_grad[i];
        if (!grads[i]) grads[i] = tg_tape_tensor(tp, x->dtype, x->ndim, x->shape);
        if (!grads[i]) st = tp->status ? tp->status : TG_ERR_NOMEM;
    }
    if (!record) tg_no_grad_end(tp);
    for (int i = 0; i < n && st != TG_OK; i++) grads[i] = NULL;
    return st;
}
