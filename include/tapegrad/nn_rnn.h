/* tapegrad/nn_rnn.h - recurrent cells and layers composed from primitives.
 *
 * Shapes: x [B, T, C] (batch first), hidden size H, one step's input [B, C].
 *
 * Cells and their equations (s = recurrent activation, sigmoid by default;
 * a = activation, tanh by default; * is the elementwise product):
 *
 *   Elman    h_t = a(W [x_t, h_{t-1}] + b)              W [H, C+H], b [H]
 *   Jordan   h_t = a(W [x_t, y_{t-1}] + b)              W [H, C+O], b [H]
 *            y_t = out_act(W_y h_t + b_y)               W_y [O, H], b_y [O]; state is y
 *   LSTM     [i, f, g, o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh   (gate order i, f, g, o)
 *            i, f, o = s(.), g = a(.)
 *            c_t = f * c_{t-1} + i * g,   h_t = o * a(c_t)
 *   GRU      [r, z, n] rows of W_ih [3H, C], W_hh [3H, H] (gate order r, z, n)
 *            r = s(W_ir x + b_ir + W_hr h + b_hr),  z = s(W_iz x + b_iz + W_hz h + b_hz)
 *            reset after (PyTorch/cuDNN, default):  n = a(W_in x + b_in + r * (W_hn h + b_hn))
 *            reset before (Cho et al. 2014):        n = a(W_in x + b_in + W_hn (r * h) + b_hn)
 *            h_t = (1 - z) * n + z * h_{t-1}   (the lecture's update gate is 1 - z)
 *   Peephole LSTM: LSTM whose gates also see the cell, P [3, H] rows i, f, o:
 *            i = s(.. + P_i * c_{t-1}), f = s(.. + P_f * c_{t-1}), o = s(.. + P_o * c_t)
 *   Prototype LSTM (the lecture's): one state s, W_ih [4H, C], W_hh [4H, H], rows i, f, o, cand
 *            [i, f, o] = s(x W_ih^T + b_ih + s_{t-1} W_hh^T + b_hh)   (rows 0..3H)
 *            s~_t = a(W_hh,cand (o * s_{t-1}) + W_ih,cand x_t + b)   (rows 3H..4H)
 *            s_t = f * s_{t-1} + i * s~_t,   output s_t
 *
 * Weights use PyTorch's layout and names, so nn.LSTM / nn.GRU weights copy in
 * unchanged (tg_rnn_import_torch). In the registry a layer named "enc.lstm"
 * owns "enc.lstm.0.weight_ih", "enc.lstm.0.weight_hh", "enc.lstm.0.bias_ih",
 * "enc.lstm.0.bias_hh" (layer 0, forward), "enc.lstm.0.reverse.weight_ih"
 * (backward direction), "enc.lstm.1...." (stacked layers), "....weight" /
 * "....bias" (Elman, Jordan), "....weight_out", "....bias_out" (Jordan),
 * "....peephole" (peephole LSTM).
 *
 * Performance: a layer does the input projection of all T steps in one GEMM
 * ([T*B, C] x W_ih^T) and one recurrent GEMM per step into [B, G*H], then
 * slices the gates.
 *
 * Masking and variable lengths: give per-sequence lengths (padding at the
 * end) or a [B, T] 0/1 mask. At a padded step the state is carried through
 * unchanged and the output is zero; the last output / final state is that of
 * the last valid step. The backward direction of a bidirectional layer runs
 * from T-1 down to 0 with the same carrying, so it sees only the valid steps
 * of each sequence, in reverse, and its outputs stay aligned with the input. */
#ifndef TAPEGRAD_NN_RNN_H
#define TAPEGRAD_NN_RNN_H

#include "nn_layers.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tg_rnn_kind {
    TG_RNN_ELMAN = 0,
    TG_RNN_JORDAN,
    TG_RNN_LSTM,
    TG_RNN_GRU,
    TG_RNN_LSTM_PEEPHOLE,
    TG_RNN_LSTM_PROTOTYPE
} tg_rnn_kind;

typedef enum tg_gru_variant {
    TG_GRU_RESET_AFTER = 0,   /* PyTorch / cuDNN / Keras reset_after=True */
    TG_GRU_RESET_BEFORE       /* Cho et al. 2014, the lecture's equations */
} tg_gru_variant;

typedef enum tg_merge {       /* how a bidirectional layer joins its two outputs */
    TG_MERGE_CONCAT = 0,      /* [..., 2H]: forward then backward */
    TG_MERGE_SUM,
    TG_MERGE_MUL,
    TG_MERGE_AVE
} tg_merge;

#define TG_RNN_MAX_LAYERS 8

typedef struct tg_rnn_opts {
    tg_rnn_kind kind;
    int64_t input_size;           /* C                                               */
    int64_t hidden_size;          /* H                                               */
    int64_t output_size;          /* Jordan only: O (0 means H)                      */
    int num_layers;               /* stacked layers (1..TG_RNN_MAX_LAYERS)           */
    bool bidirectional;
    tg_merge merge;               /* bidirectional merge, also between stacked layers */
    bool return_sequences;        /* output [B, T, D] instead of the last [B, D]     */
    tg_act activation;            /* candidate / cell: default tanh                  */
    tg_act recurrent_activation;  /* gates: default sigmoid (or TG_ACT_HARD_SIGMOID)  */
    tg_act output_activation;     /* Jordan output: default linear                   */
    tg_gru_variant gru_variant;
    bool unit_forget_bias;        /* LSTM: forget-gate bias_ih starts at 1 (Keras)    */
    tg_initializer kernel_init;          /* W_ih (and Elman/Jordan W): default Glorot uniform */
    tg_initializer recurrent_init;       /* W_hh: default orthogonal                        */
    tg_initializer bias_init;            /* default zeros                                   */
    double dropout;               /* on each layer's input, one mask for all steps   */
    double recurrent_dropout;     /* on h_{t-1}, one mask for all steps              */
    /* (dropout as Keras: per layer and direction, masks drawn once per call from
     * call->rng; PyTorch's nn.LSTM dropout instead acts between layers only.) */
} tg_rnn_opts;

/* Keras defaults: 1 layer, forward only, last output, tanh / sigmoid,
 * unit_forget_bias on, Glorot / orthogonal / zeros, no dropout. */
TG_API tg_rnn_opts tg_rnn_opts_default(tg_rnn_kind kind, int64_t input_size, int64_t hidden_size);

/* One direction of one layer. */
typedef struct tg_rnn_cell {
    tg_rnn_kind kind;
    int64_t input_size, hidden_size, output_size;
    tg_act activation, recurrent_activation, output_activation;   /* resolved */
    tg_gru_variant gru_variant;
    tg_tensor *weight_ih, *weight_hh;   /* LSTM kinds [4H, C], [4H, H]; GRU [3H, C], [3H, H] */
    tg_tensor *bias_ih, *bias_hh;       /* [4H] / [3H]                                      */
    tg_tensor *weight, *bias;           /* Elman [H, C+H], Jordan [H, C+O]; [H]              */
    tg_tensor *weight_out, *bias_out;   /* Jordan [O, H], [O]                                */
    tg_tensor *peephole;                /* peephole LSTM [3, H]                              */
} tg_rnn_cell;

/* h [B, H] (Jordan: the previous output y [B, O]); c [B, H] for LSTM kinds.
 * NULL members mean zeros. */
typedef struct tg_rnn_state { tg_tensor *h, *c; } tg_rnn_state;

/* Create one cell's parameters as "<name>.weight_ih" etc. Uses o's kind,
 * sizes (input_size overridden by the argument), activations and initialisers. */
TG_API tg_status tg_rnn_cell_init(tg_rnn_cell *cell, tg_params *p, const char *name,
                                  const tg_rnn_opts *o, int64_t input_size, tg_dtype dt,
                                  tg_rng *rng);
/* One step: x [B, C], prev (NULL or members NULL: zeros) -> next (both members
 * set; arena tensors). Returns the step's output (h, or y for Jordan). No
 * dropout here: apply tg_dropout to x yourself. For decoders and custom loops. */
TG_API tg_tensor *tg_rnn_cell_step(tg_tape *tp, const tg_rnn_cell *cell, tg_tensor *x,
                                   const tg_rnn_state *prev, tg_rnn_state *next);

/* A full layer: stacked, optionally bidirectional. */
typedef struct tg_rnn {
    tg_rnn_opts opts;
    int num_dirs;                                /* 1 or 2 */
    tg_rnn_cell cell[TG_RNN_MAX_LAYERS][2];      /* [layer][0 forward, 1 backward] */
} tg_rnn;

TG_API tg_status tg_rnn_init(tg_rnn *r, tg_params *p, const char *name, const tg_rnn_opts *o,
                             tg_dtype dt, tg_rng *rng);

typedef struct tg_rnn_call {
    const int64_t *lengths;       /* [B] valid steps per sequence (padding at the end), or NULL */
    const uint8_t *mask;          /* [B*T] row-major, 1 valid 0 padded (any position), or NULL;
                                     used when lengths is NULL                                  */
    const tg_rnn_state *initial;  /* [num_layers * num_dirs], index layer*num_dirs + dir, or NULL */
    tg_rng *rng;                  /* dropout draws (required when dropout is on and training)  */
} tg_rnn_call;

/* x [B, T, C] -> return_sequences ? [B, T, D] : [B, D], D = H (2H with concat;
 * Jordan: O). final (optional, return_state): num_layers*num_dirs states, the
 * state after each sequence's last valid step (backward direction: after step 0).
 * call may be NULL. */
TG_API tg_tensor *tg_rnn_forward(tg_tape *tp, const tg_rnn *r, tg_tensor *x,
                                 const tg_rnn_call *call, tg_rnn_state *final);

/* Copy one PyTorch nn.LSTM / nn.GRU parameter into the layer by its PyTorch
 * name: weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, with
 * suffix _reverse for the backward direction. value: any float dtype, same
 * shape. The gate orders agree (LSTM i, f, g, o; GRU r, z, n). */
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
#endif
