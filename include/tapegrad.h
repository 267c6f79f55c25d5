/* tapegrad.h - umbrella header.
 *
 * A tape records every primitive as it runs; tg_backward replays it in
 * reverse through each primitive's vector-Jacobian product.
 *
 *   tg_tape *tp = tg_tape_new();
 *   // one Elman step: h = tanh([x, h_prev] W + b)
 *   tg_tensor *xh = tg_concat(tp, 2, (tg_tensor *[]){x, h_prev}, 1);  // [B, C+H]
 *   tg_tensor *h  = tg_tanh(tp, tg_add(tp, tg_matmul(tp, xh, W), b)); // [B, H]
 *   tg_tensor *loss = tg_mse(tp, h, target);
 *   if (!loss) fprintf(stderr, "%s\n", tg_tape_error(tp));  // first error, with shapes
 *   tg_backward(tp, loss);            // W, b (requires_grad) now hold gradients
 *   tg_tape_reset(tp);                // drop intermediates, keep the memory
 *
 * Memory: caller-owned tensors (tg_tensor_new/wrap, parameters) outlive tapes;
 * every op result lives in the tape's arena until tg_tape_reset.
 * Headers: core (dtypes, errors, runtime, RNG), tensor, tape, op (writing
 * primitives), ops (the built-in primitives), gradcheck, params, optim
 * (optimizers, clipping, schedules, early stopping), io (safetensors, checkpoints),
 * nn (layers, recurrent cells, attention, transformer blocks, seq2seq). */
#ifndef TAPEGRAD_H
#define TAPEGRAD_H

#include "tapegrad/core.h"
#include "tapegrad/tensor.h"
#include "tapegrad/tape.h"
#include "tapegrad/inspect.h"
#include "tapegrad/op.h"
#include "tapegrad/ops.h"
#include "tapegrad/grad.h"
#include "tapegrad/gradcheck.h"
#include "tapegrad/params.h"
#include "tapegrad/optim.h"
#include "tapegrad/io.h"
#include "tapegrad/nn.h"

#endif
