/* nn/nn_private.h - helpers shared by the files in nn/ (never installed).
 * nn/ sees only the public API: this header includes nothing else. */
#ifndef TG_NN_PRIVATE_H
#define TG_NN_PRIVATE_H

#include "tapegrad.h"
#include "tapegrad/nn.h"

#define NN_HIDDEN __attribute__((visibility("hidden")))
#define NN_NAME_MAX 256

/* Status of a call that has no tape: the message goes to tg_last_error(). */
NN_HIDDEN tg_status nn_error(tg_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* tg_last_status() if a callee set one, else TG_ERR_ARG. */
NN_HIDDEN tg_status nn_last(void);
/* Parameter "<prefix>.<leaf>" created and filled with init; NULL on error. */
NN_HIDDEN tg_tensor *nn_param(tg_params *p, const char *prefix, const char *leaf, tg_dtype dt,
                              int ndim, const int64_t *shape, tg_initializer init, tg_rng *rng);
/* init unless it is TG_INIT_DEFAULT, then fallback. */
NN_HIDDEN tg_initializer nn_init_or(tg_initializer init, tg_initializer fallback);
/* Arena tensor filled with v (a constant: no gradient). */
NN_HIDDEN tg_tensor *nn_const(tg_tape *tp, tg_dtype dt, int ndim, const int64_t *shape, double v);
/* x [N, in] (2-D) x W^T [in, out] + b: the GEMM every layer uses. */
NN_HIDDEN tg_tensor *nn_affine(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *b);


/* keep (float of dtype dt) must broadcast to shape[nd] without growing it;
 * else an error "<op>: mask [..] does not broadcast to scores [..]". */
NN_HIDDEN int nn_check_mask(tg_tape *tp, const char *op, const tg_tensor *keep, tg_dtype dt,
                            int nd, const int64_t *shape);

/* ---- recurrent cells (cell.c, cell_*.c, rnn.c) --------------------------------------- */
/* Parameter indices the built-in cells share: PyTorch's four, in its order. */
enum { NN_W_IH = 0, NN_W_HH, NN_B_IH, NN_B_HH };
/* describe's common part: weight_ih [G, C], weight_hh [G, F], bias_ih [G],
 * bias_hh [G] (G = gates * H rows; F the fed-back state's width). */
NN_HIDDEN tg_status nn_describe_torch4(const tg_cell_cfg *cfg, tg_cell_layout *l, int64_t gates,
                                       int64_t fed_back);
/* prepare's common part: x [N, C] -> x W_ih^T + b_ih + b_hh [N, G] (one GEMM),
 * both biases folded into the projection. */
NN_HIDDEN tg_tensor *nn_project_both_biases(tg_cell_run *run, tg_tensor *x);
/* The same, after splitting W_hh at row `rows`: prep[0] = W_hh[:rows], prep[1] = W_hh[rows:]
 * (the reset-before GRU's [W_hr; W_hz] / W_hn, the prototype LSTM's gates / candidate). */
NN_HIDDEN tg_tensor *nn_project_split_hh(tg_cell_run *run, tg_tensor *x, int64_t rows);
/* The state check, the one place: st's members k < n_states must be NULL (when
 * allow_null) or [B, state_size k] of dtype dt; an error on the tape names
 * `what` ("initial[2]", "prev", "the step's result") and the state. */
NN_HIDDEN int nn_state_check(tg_tape *tp, const tg_rnn_cell *c, const char *what, int64_t B,
                             tg_dtype dt, const tg_rnn_state *st, bool allow_null);
/* NULL members of st (k < n_states) become zero states [B, state_size k]. */
NN_HIDDEN int nn_state_zeros(tg_tape *tp, const tg_rnn_cell *c, int64_t B, tg_dtype dt,
                             tg_rnn_state *st);
/* One direction (dir) of one layer: describe the cell, create its parameters. */
NN_HIDDEN tg_status nn_cell_setup(tg_rnn_cell *cell, tg_params *p, const char *name,
                                  const tg_rnn_opts *o, int layer, int dir, int64_t input_size,
                                  tg_dtype dt, tg_rng *rng);
/* after_init of the LSTM kinds: Keras' unit_forget_bias (bias_ih rows H..2H = 1). */
NN_HIDDEN tg_status nn_unit_forget_bias(const tg_cell_cfg *cfg, tg_tensor *const *param);
/* describe of both GRUs: one state h, PyTorch's four parameters with 3H rows. */
NN_HIDDEN tg_status nn_gru_describe(const tg_cell_cfg *cfg, tg_cell_layout *l);
/* PyTorch's key of parameter k: "<leaf>_l<layer>" (+ "_reverse"); false if it does not fit. */
NN_HIDDEN bool nn_param_key(char *buf, size_t size, const tg_rnn_cell *c, int k);
/* dtype of a cell's parameters */
NN_HIDDEN tg_dtype nn_cell_dtype(const tg_rnn_cell *c);

#endif
