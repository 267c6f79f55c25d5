/* tapegrad/nn_rnn.h - recurrent layers over any cell (nn_cell.h).
 *
 * Shapes: x [B, T, C] (batch first, Keras' layout) or, with time_major,
 * [T, B, C] (PyTorch's default, batch_first=False); hidden size H; D the
 * output width (H, or 2H for a concatenated bidirectional layer; Jordan: O).
 *
 *   tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_lstm, 32, 64);   // Keras defaults
 *   o.num_layers = 2;  o.bidirectional = true;  o.return_sequences = true;
 *   tg_rnn enc;
 *   tg_rnn_init(&enc, params, "enc", &o, TG_F32, &rng);
 *   tg_rnn_state fin[4];                                           // layers x directions
 *   tg_tensor *y = tg_rnn_forward(tp, &enc, x, &(tg_rnn_call){.lengths = len}, fin, 4);
 *   ...
 *   tg_rnn_free(&enc);                       // the cells; parameters stay in the registry
 *
 * The cell is a descriptor (tg_cell_lstm, tg_cell_gru, ..., or your own): the
 * layer does the same for every cell.
 *
 * Parameter names are PyTorch's state_dict keys for nn.RNN / nn.LSTM / nn.GRU
 * under the layer's name: "enc.weight_ih_l0", "enc.weight_hh_l0",
 * "enc.bias_ih_l0", "enc.bias_hh_l0", "enc.weight_ih_l0_reverse", ...,
 * "enc.weight_ih_l1" (both biases kept, as PyTorch). So tg_params_save writes
 * a file that nn.LSTM(...).load_state_dict(..., strict=True) accepts, and
 * tg_params_load reads PyTorch's. Cells PyTorch lacks use the same scheme for
 * their own parameters ("enc.peephole_l0", "enc.weight_out_l0").
 *
 * Performance: a layer projects the inputs of all T steps at once (the cell's
 * prepare: one GEMM [T*B, C] x W_ih^T) and runs one recurrent GEMM per step.
 *
 * Masking and variable lengths: give per-sequence lengths (padding at the end)
 * or a [B, T] 0/1 mask (padding anywhere). At a padded step the state is
 * carried through unchanged and the output is zero; the last output / final
 * state is that after the last valid step. The backward direction of a
 * bidirectional layer runs from T-1 down to 0 with the same carrying, so it
 * starts at each sequence's last valid step, and its outputs stay aligned with
 * the input. Padded positions never leak: padded input rows are replaced by
 * zeros and states carried by selection (tg_where), never by multiplying with
 * a 0/1 mask, so NaN or Inf there changes no valid output, final state or
 * gradient.
 *
 * Defaults. tg_rnn_opts_default gives Keras' (the lecture's):
 *   batch first [B, T, C]; the last output only (return_sequences false);
 *   kernels Glorot uniform, recurrent weights orthogonal, biases zero;
 *   unit_forget_bias on (LSTM kinds); dropout (Keras style) off.
 * tg_rnn_opts_torch gives PyTorch's nn.RNN / nn.LSTM / nn.GRU:
 *   time major [T, B, C] (batch_first=False); every step's output
 *   (return_sequences true); every weight and bias U(-1/sqrt(H), 1/sqrt(H));
 *   no unit_forget_bias; layer_dropout (PyTorch's dropout=) off.
 * Either way: tanh / sigmoid, one layer, forward only, concatenated directions.
 *
 * Dropout, two styles:
 *   Keras    dropout (on each layer's input) and recurrent_dropout (on h_{t-1}
 *            as the recurrent products see it), one mask per sequence, drawn
 *            per layer and direction for every call.
 *   PyTorch  layer_dropout: on each layer's output except the last layer's, a
 *            fresh draw per step and element (nn.LSTM's dropout=p). */
#ifndef TAPEGRAD_NN_RNN_H
#define TAPEGRAD_NN_RNN_H

#include "io.h"
#include "nn_cell.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tg_merge {       /* how a bidirectional layer joins its two outputs */
    TG_MERGE_CONCAT = 0,      /* [..., 2H]: forward then backward (PyTorch)      */
    TG_MERGE_SUM,
    TG_MERGE_MUL,
    TG_MERGE_AVE
} tg_merge;

typedef struct tg_rnn_opts {
    const tg_cell *cell;          /* &tg_cell_lstm, ... or your own                  */
    int64_t input_size;           /* C                                               */
    int64_t hidden_size;          /* H                                               */
    int64_t output_size;          /* cells with an output width of their own (Jordan: O); 0: H */
    int num_layers;               /* stacked layers, >= 1                            */
    bool bidirectional;
    tg_merge merge;               /* bidirectional merge, also between stacked layers */
    bool return_sequences;        /* every step's output instead of the last [B, D] */
    bool time_major;              /* x [T, B, C], outputs [T, B, D] (= !batch_first) */
    tg_act activation;            /* candidate / cell: default tanh                  */
    tg_act recurrent_activation;  /* gates: default sigmoid (or TG_ACT_HARD_SIGMOID)  */
    tg_act output_activation;     /* Jordan output: default linear                   */
    bool unit_forget_bias;        /* LSTM kinds: forget-gate bias_ih starts at 1      */
    tg_initializer kernel_init;          /* TG_PARAM_KERNEL: default Glorot uniform  */
    tg_initializer recurrent_init;       /* TG_PARAM_RECURRENT: default orthogonal   */
    tg_initializer bias_init;            /* TG_PARAM_BIAS: default zeros             */
    double dropout;               /* Keras: each layer's input, one mask per sequence */
    double recurrent_dropout;     /* Keras: h_{t-1}, one mask per sequence            */
    double layer_dropout;         /* PyTorch: between layers, fresh per step          */
    const void *cell_options;     /* your cell's own options (tg_cell_cfg.options)    */
    /* Activation checkpointing (tg_checkpoint, tape.h): every k steps of a
     * direction are one span whose intermediates are dropped after forward
     * and recomputed in backward; the gradients are the same bit for bit.
     * 0: off. The input projection (the cell's prepare) stays outside the
     * spans unless checkpoint_inputs: then each span projects its own rows,
     * so [T*B, G] never exists whole (W_ih's and b_ih's gradients are then
     * sums per span: equal to the plain ones within rounding, not bit for bit). */
    int64_t checkpoint_every;
    bool checkpoint_inputs;
} tg_rnn_opts;

/* Keras defaults (above) for a cell. */
TG_API tg_rnn_opts tg_rnn_opts_default(const tg_cell *cell, int64_t input_size, int64_t hidden_size);
/* PyTorch's defaults (above): what nn.LSTM(input_size, hidden_size) would do. */
TG_API tg_rnn_opts tg_rnn_opts_torch(const tg_cell *cell, int64_t input_size, int64_t hidden_size);

/* One direction of one layer: the cell, its configuration and parameters. */
typedef struct tg_rnn_cell {
    const tg_cell *cell;
    tg_cell_cfg cfg;
    tg_cell_layout layout;                  /* states and parameters, from describe */
    tg_tensor *param[TG_CELL_MAX_PARAMS];   /* in layout order                      */
    int layer, dir;                         /* dir 1: the backward direction        */
    char name[96];                          /* the layer's name, for messages       */
} tg_rnn_cell;

/* The state of one cell: s[k] is state k of its layout ([B, state_size k]);
 * h and c name states 0 and 1. NULL members mean zeros where states are given. */
typedef struct tg_rnn_state {
    union {
        tg_tensor *s[TG_CELL_MAX_STATES];
        struct { tg_tensor *h, *c; };
    };
} tg_rnn_state;

/* Create one cell's parameters as "<name>.<leaf>_l<layer>" from o's cell,
 * sizes (input_size overridden by the argument), activations, initialisers. */
TG_API tg_status tg_rnn_cell_init(tg_rnn_cell *cell, tg_params *p, const char *name,
                                  const tg_rnn_opts *o, int layer, int64_t input_size,
                                  tg_dtype dt, tg_rng *rng);
/* The parameter by its leaf name ("weight_hh"), NULL if the cell has none. */
TG_API tg_tensor *tg_rnn_cell_param(const tg_rnn_cell *cell, const char *leaf);
/* One step: x [B, C], prev (NULL or members NULL: zeros) -> next (every state
 * set; arena tensors). Returns the step's output (state 0). No dropout here:
 * apply tg_dropout to x yourself. For decoders and custom loops. */
TG_API tg_tensor *tg_rnn_cell_step(tg_tape *tp, const tg_rnn_cell *cell, tg_tensor *x,
                                   const tg_rnn_state *prev, tg_rnn_state *next);

/* A full layer: stacked, optionally bidirectional. Caller-owned struct; the
 * cell array is allocated by tg_rnn_init and freed by tg_rnn_free. */
typedef struct tg_rnn {
    tg_rnn_opts opts;
    int num_dirs;          /* 1 or 2                                              */
    tg_rnn_cell *cells;    /* [num_layers * num_dirs], index layer * num_dirs + dir */
    char name[96];
} tg_rnn;

TG_API tg_status tg_rnn_init(tg_rnn *r, tg_params *p, const char *name, const tg_rnn_opts *o,
                             tg_dtype dt, tg_rng *rng);
TG_API void tg_rnn_free(tg_rnn *r);   /* the cell array; NULL and zeroed layers are fine */
/* Cell of a layer and direction (0 forward, 1 backward), NULL outside the layer. */
TG_API tg_rnn_cell *tg_rnn_cell_at(const tg_rnn *r, int layer, int dir);
/* num_layers * num_dirs: the size of initial and final state arrays. */
TG_API int tg_rnn_num_states(const tg_rnn *r);

typedef struct tg_rnn_call {
    const int64_t *lengths;       /* [B] valid steps per sequence (padding at the end), or NULL */
    const uint8_t *mask;          /* [B*T] row-major [B, T], 1 valid 0 padded, or NULL;
                                     used when lengths is NULL                                  */
    const tg_rnn_state *initial;  /* n_initial states (index layer*num_dirs + dir), or NULL     */
    int n_initial;                /* tg_rnn_num_states(r) when initial is given                 */
    tg_rng *rng;                  /* dropout draws (required when dropout is on and training)  */
} tg_rnn_call;

/* x [B, T, C] ([T, B, C] time major) -> return_sequences ? [B, T, D] ([T, B, D])
 * : [B, D]. final (optional, return_state): room for n_final >=
 * tg_rnn_num_states(r) states, filled with the state after each sequence's last
 * valid step (backward direction: after step 0). call may be NULL. */
TG_API tg_tensor *tg_rnn_forward(tg_tape *tp, const tg_rnn *r, tg_tensor *x,
                                 const tg_rnn_call *call, tg_rnn_state *final, int n_final);

/* ---- PyTorch import and export ------------------------------------------------------
 * The registry names are PyTorch's, so tg_params_save / tg_params_load already
 * exchange files with PyTorch by name. These add the check that the weights
 * were made for the same equations: a file from PyTorch (no tapegrad cell
 * tag) holds nn.RNN / nn.LSTM / nn.GRU weights, which import only into the
 * cell with that convention; a reset-before GRU refuses nn.GRU's weights with
 * an error naming both conventions. */
/* Every tensor of the layer under "<prefix>.<key>" (prefix NULL: the layer's
 * name; "": bare keys such as "weight_ih_l0"). */
TG_API tg_status tg_rnn_import(tg_rnn *r, const tg_safetensors *f, const char *prefix);
/* The layer's parameters under their registry names, plus metadata
 * "tapegrad_cell.<name>" = the cell's name, which tg_rnn_import checks. */
TG_API tg_status tg_rnn_export(const tg_rnn *r, tg_safetensors_writer *w);
/* One PyTorch parameter by its key (weight_ih_l{k}, ..., suffix _reverse),
 * any float dtype, same shape. */
TG_API tg_status tg_rnn_import_torch(tg_rnn *r, const char *torch_name, const tg_tensor *value);

/* ---- sequences --------------------------------------------------------------------- */
/* Lengths of right-padded id rows: ids TG_I32 [B, T]; lengths[b] = index of the
 * last id != pad_id, plus one. */
TG_API tg_status tg_seq_lengths(const tg_tensor *ids, int32_t pad_id, int64_t *lengths);
/* n sequences [T_i, C] of different lengths (differentiable) -> one batch
 * [n, max T_i, C] padded with zeros at the end; lengths[i] = T_i (optional). */
TG_API tg_tensor *tg_pad_sequences(tg_tape *tp, int n, tg_tensor *const *seqs, int64_t *lengths);

#ifdef __cplusplus
}
#endif
#include "call_site.h"   /* file:line of each call (anomaly mode, profiler) */
#endif
