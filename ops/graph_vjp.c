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
