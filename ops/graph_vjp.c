/* ops/graph_vjp.c - a first-order VJP from an op's vjp_graph.
 *
 * The ops that exist only for double backward (conv1d's input and weight
 * gradients as ops) need a first-order `vjp` too, so that tg_backward can go
 * through a recorded backward. Rather than a second set of kernels, their
 * vjp runs their vjp_graph without recording and adds the resulting values
 * into the raw gradient buffers. Slower than hand-written kernels, and only
 * on the second-order path. */
#include "../autograd/fuse.h"
#include "kernels.h"

#include <string.h>

int tg__vjp_from_graph(tg_node *n) {
    tg_tape *tp = n->tape;
    tg_tensor *y = n->out;
    tg_tensor *dy = tg_tape_tensor(tp, y->dtype, y->ndim, y->shape);
    bool *want = tg_tape_alloc(tp, (size_t)n->n_in * sizeof *want);
    tg_tensor **dx = tg_tape_alloc(tp, (size_t)n->n_in * sizeof *dx);
    if (!dy || !want || !dx) return -1;
    memcpy(dy->data, tg_output_grad(n), (size_t)y->numel * tg_dtype_size(y->dtype));
    for (int i = 0; i < n->n_in; i++) {
        want[i] = n->in[i]->requires_grad && tg__is_float(n->in[i]->dtype);
        dx[i] = NULL;
    }
    tg_node copy = *n;
    tg_no_grad_begin(tp);
    int rc = n->op->vjp_graph(&copy, dy, want, dx);
    tg_no_grad_end(tp);
    if (rc != 0 || tp->status != TG_OK) return -1;
    for (int i = 0; i < n->n_in; i++) {
        if (!want[i] || !dx[i]) continue;
        if (tg__concrete(dx[i]) != 0) return -1;
        void *g = tg_input_grad(n, i);
        if (g) tg__ew_add(dx[i]->dtype, g, dx[i]->data, dx[i]->numel);
    }
    return 0;
}

/* ---- the max pools' double backward: routing by the saved argmax ------------------------
 * A max pool's VJP sends dy[i] to x's element arg[i] (arg: flat indices into
 * x, one per output element, kept in the pool node's scratch until reset). As
 * ops, with arg held as a constant:
 *   scatter(g) [x's shape]:  out[arg[i]] += g[i]     vjp_graph: gather(u)
 *   gather(u)  [y's shape]:  out[i] = u[arg[i]]       vjp_graph: scatter(u)
 * each linear in its one input and the other's transpose, so they
 * differentiate to any order. */
typedef struct route_attr {
    const int64_t *arg;
    int ndim;                       /* of the result */
    int64_t shape[TG_MAX_DIMS];
} route_attr;

static const tg_op max_pool_scatter_op, max_pool_gather_op;

static tg_tensor *route(tg_tape *tp, const tg_op *op, tg_tensor *in, const int64_t *arg,
                        const tg_tensor *like) {
    route_attr at = {.arg = arg, .ndim = like->ndim};
    memcpy(at.shape, like->shape, sizeof at.shape);
    return tg_apply(tp, op, 1, &in, &at);
}

tg_tensor *tg__argmax_scatter(tg_tape *tp, tg_tensor *g, const int64_t *arg, const tg_tensor *x) {
    return route(tp, &max_pool_scatter_op, g, arg, x);
}

static int route_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                       tg_desc *out) {
    (void)tp;
    (void)n_in;
    const route_attr *at = attr;   /* built only by the pools' vjp_graph: shapes fit */
    out->dtype = in[0]->dtype;
    out->ndim = at->ndim;
    memcpy(out->shape, at->shape, sizeof out->shape);
    return 0;
}

#define ROUTE_LOOPS(T)                                                                           \
    static void scatter_##T(const T *g, T *out, const int64_t *arg, int64_t n) {                 \
        for (int64_t i = 0; i < n; i++) out[arg[i]] += g[i];                                     \
    }                                                                                            \
    static void gather_##T(const T *u, T *out, const int64_t *arg, int64_t n) {                  \
        for (int64_t i = 0; i < n; i++) out[i] = u[arg[i]];                                      \
    }
TG_STAMP_FLOAT(ROUTE_LOOPS)

static int scatter_forward(tg_node *n) {
    const route_attr *at = n->attr;
    memset(n->out->data, 0, (size_t)n->out->numel * tg_dtype_size(n->out->dtype));
    TG_BY_DTYPE(n->out->dtype, scatter, n->in[0]->data, n->out->data, at->arg, n->in[0]->numel);
    return 0;
}

static int gather_forward(tg_node *n) {
    const route_attr *at = n->attr;
    TG_BY_DTYPE(n->out->dtype, gather, n->in[0]->data, n->out->data, at->arg, n->out->numel);
    return 0;
}

static int scatter_vjp_graph(tg_node *n, tg_tensor *u, const bool *want, tg_tensor **dx) {
    if (want[0]) dx[0] = route(n->tape, &max_pool_gather_op, u, ((const route_attr *)n->attr)->arg,
                               n->in[0]);
    return 0;
}

static int gather_vjp_graph(tg_node *n, tg_tensor *u, const bool *want, tg_tensor **dx) {
    if (want[0]) dx[0] = route(n->tape, &max_pool_scatter_op, u, ((const route_attr *)n->attr)->arg,
                               n->in[0]);
    return 0;
}

static const tg_op max_pool_scatter_op = {
    .name = "max_pool_scatter", .n_in = 1, .attr_size = sizeof(route_attr), .infer = route_infer,
    .forward = scatter_forward, .vjp = tg__vjp_from_graph, .vjp_graph = scatter_vjp_graph};
static const tg_op max_pool_gather_op = {
    .name = "max_pool_gather", .n_in = 1, .attr_size = sizeof(route_attr), .infer = route_infer,
    .forward = gather_forward, .vjp = tg__vjp_from_graph, .vjp_graph = gather_vjp_graph};
