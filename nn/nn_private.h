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


/* ---- recurrent cells (rnn_cell.c, lstm.c, gru.c) ----------------------------------
 * A cell is run as: nn_prepare once per sequence (weight slices, folded
 * biases), nn_project on the inputs of all steps at once (one GEMM), then
 * nn_cell_run per step on that step's rows of the projection. */
typedef struct nn_prep {
    const tg_rnn_cell *c;
    tg_tensor *bias;        /* added to the input projection (b_ih, or b_ih + b_hh)     */
    tg_tensor *w_a, *w_b;   /* recurrent weight split: GRU reset-before [2H,H] / [H,H];
                               prototype LSTM gates [3H,H] / candidate [H,H]             */
    tg_tensor *peep[3];     /* peephole rows i, f, o as [1, H]                           */
    tg_tensor *rec_mask;    /* recurrent dropout keep mask [B, H] or NULL                */
} nn_prep;

NN_HIDDEN const char *nn_kind_name(tg_rnn_kind k);
/* Kinds whose input enters through W_ih (one GEMM for all steps); Elman and
 * Jordan concatenate [x, h] per step, as in the lecture. */
NN_HIDDEN bool nn_projects(const tg_rnn_cell *c);
NN_HIDDEN int nn_prepare(tg_tape *tp, const tg_rnn_cell *c, nn_prep *pp);
/* x [N, C] -> [N, G*H] (identity for Elman / Jordan) */
NN_HIDDEN tg_tensor *nn_project(tg_tape *tp, const nn_prep *pp, tg_tensor *x);
/* One step from in (a projection row block [B, G*H], or x [B, C] for Elman /
 * Jordan) and prev (members set) -> next; returns the output, always next->h. */
NN_HIDDEN tg_tensor *nn_cell_run(tg_tape *tp, const nn_prep *pp, tg_tensor *in,
                                 const tg_rnn_state *prev, tg_rnn_state *next);
NN_HIDDEN tg_tensor *nn_lstm_run(tg_tape *tp, const nn_prep *pp, tg_tensor *xp,
                                 const tg_rnn_state *prev, tg_rnn_state *next);
NN_HIDDEN tg_tensor *nn_peephole_run(tg_tape *tp, const nn_prep *pp, tg_tensor *xp,
                                     const tg_rnn_state *prev, tg_rnn_state *next);
NN_HIDDEN tg_tensor *nn_prototype_run(tg_tape *tp, const nn_prep *pp, tg_tensor *xp,
                                      const tg_rnn_state *prev, tg_rnn_state *next);
NN_HIDDEN tg_tensor *nn_gru_run(tg_tape *tp, const nn_prep *pp, tg_tensor *xp,
                                const tg_rnn_state *prev, tg_rnn_state *next);
/* h_prev as the recurrent matmuls see it (times the recurrent dropout mask). */
NN_HIDDEN tg_tensor *nn_h_rec(tg_tape *tp, const nn_prep *pp, tg_tensor *h);
/* size of the state member h: O for Jordan, else H */
NN_HIDDEN int64_t nn_state_size(const tg_rnn_cell *c);

#endif
