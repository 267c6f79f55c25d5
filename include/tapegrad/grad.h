/* tapegrad/grad.h - gradients as tensors: double backward, Hessian-vector and
 * Jacobian-vector products, Jacobians (PyTorch's torch.autograd.grad).
 *
 * tg_grad replays the tape from y through each op's `vjp_graph` (op.h): the
 * VJP written with ops. The gradients come back as tensors on the tape; with
 * create_graph those ops are recorded like any others, so a gradient can be
 * used in a loss (a gradient penalty) and differentiated again by tg_backward
 * or tg_grad, to any order. Leaves' .grad buffers are not touched.
 *
 *   tg_tensor *gx;
 *   tg_grad_opts o = {.create_graph = true};
 *   tg_grad(tp, loss, NULL, 1, &x, &gx, &o);                 // d loss / dx
 *   tg_tensor *pen = tg_sum(tp, tg_mul(tp, gx, gx));         // |d loss/dx|^2
 *   tg_backward(tp, tg_add(tp, loss, tg_scale(tp, pen, lambda)));
 *
 * First-order tg_backward is unchanged (its own fast kernels); tg_grad is the
 * slower, op-by-op path. An op on the way from y to an input without a
 * vjp_graph fails with "<op>: no double backward (vjp_graph) ...". */
#ifndef TAPEGRAD_GRAD_H
#define TAPEGRAD_GRAD_H

#include "tape.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_grad_opts {
    bool create_graph;   /* record the backward's ops, so grads can be differentiated */
} tg_grad_opts;

/* grads[i] = d <dy, y> / d inputs[i], a tensor of inputs[i]'s shape (zeros
 * when y does not depend on it). dy: same shape and dtype as y, or NULL for
 * 1 when y has one element. dy may itself require grad (tg_jvp uses that).
 * inputs: tensors requiring grad (leaves or recorded results). opts NULL:
 * no create_graph. On error grads are NULL and the error is on the tape. */
TG_API tg_status tg_grad(tg_tape *tp, tg_tensor *y, tg_tensor *dy, int n,
                         tg_tensor *const *inputs, tg_tensor **grads, const tg_grad_opts *opts);

/* Hessian-vector product of a one-element loss: hv[i] = sum_j d2 loss /
 * (d inputs[i] d inputs[j]) v[j] (v[j] shaped like inputs[j]), by double
 * backward. With create_graph hv is differentiable again. */
TG_API tg_status tg_hvp(tg_tape *tp, tg_tensor *loss, int n, tg_tensor *const *inputs,
                        tg_tensor *const *v, tg_tensor **hv, const tg_grad_opts *opts);

/* Jacobian-vector product: jv = sum_i (dy/d inputs[i]) v[i], shaped like y,
 * by double backward (the VJP u -> J^T u is linear in u; its VJP is J v). */
TG_API tg_tensor *tg_jvp(tg_tape *tp, tg_tensor *y, int n, tg_tensor *const *inputs,
                         tg_tensor *const *v, const tg_grad_opts *opts);

/* Full Jacobian for small functions: [numel(y), sum of numel(inputs[i])],
 * row r = d y_r / d (inputs flattened and joined), in y's dtype; one backward
 * per element of y. Not differentiable (no create_graph). */
TG_API tg_tensor *tg_jacobian(tg_tape *tp, tg_tensor *y, int n, tg_tensor *const *inputs);

#ifdef __cplusplus
}
#endif
#endif
