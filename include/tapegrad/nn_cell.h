/* tapegrad/nn_cell.h - writing a recurrent cell (built-in or your own).
 *
 * A cell is one constant descriptor, as a primitive is (op.h): it says what
 * state it carries, which parameters it owns (with PyTorch's names and their
 * initialisers), optionally what to do once per sequence, and one step
 * composed from primitives. Give it to a layer (nn_rnn.h: tg_rnn_opts.cell)
 * and the layer does the rest, the same for every cell: stacking,
 * bidirectional runs, masking and variable lengths, dropout, initial and final
 * states, the state checks, parameter names, PyTorch import and export.
 *
 *   describe  lists the states (state 0 is also the cell's output) and the
 *             parameters for a configuration (input and hidden size, options).
 *   prepare   (optional) runs once per sequence on the inputs of all T steps,
 *             x [T*B, C] time-major, and returns what each step receives, row
 *             block t: typically the input projection x W_ih^T + b as ONE GEMM
 *             [T*B, G]. It may also keep tensors for the steps in run->prep
 *             (weight slices, summed biases). Without it a step gets x_t [B, C].
 *   step      one step: in [B, G] (this step's rows of prepare's result),
 *             prev[k] [B, state_size k], h_rec = prev[0] as recurrent products
 *             must see it (times the recurrent-dropout mask; prev[0] itself
 *             when there is none) -> next[k]. Write it as the equations, with
 *             no checks: ops return NULL on error and the layer looks at
 *             next[] once. Never blend with masks yourself: the layer carries
 *             the state through padded steps by selection (tg_where).
 *
 * Parameters are created by the layer as "<layer>.<name>_l<k>" (suffix
 * "_reverse" for the backward direction), as PyTorch's nn.LSTM names them:
 * "enc.weight_ih_l0", "enc.bias_hh_l1_reverse". A parameter's initialiser
 * is, first match wins: the layer's option for its role (tg_rnn_opts
 * kernel_init / recurrent_init / bias_init), the cell's own `init`, then the
 * role's default (Glorot uniform, orthogonal, zeros; TG_PARAM_OTHER has none,
 * give it one). after_init (optional) then adjusts values (Keras'
 * unit_forget_bias).
 *
 * A minimal gated unit (docs/custom-cells.md has it whole, with a gradcheck):
 *
 *   static tg_status mgu_describe(const tg_cell_cfg *cfg, tg_cell_layout *l) {
 *       int64_t C = cfg->input_size, H = cfg->hidden_size;
 *       tg_cell_layout_state(l, "h", H);
 *       tg_cell_layout_param(l, "weight_ih", TG_PARAM_KERNEL, 2, (int64_t[]){2 * H, C});
 *       ...
 *   }
 *   static void mgu_step(const tg_cell_run *run, tg_tensor *in, tg_tensor *const *prev,
 *                        tg_tensor *h_rec, tg_tensor **next) { ... next[0] = h; }
 *   const tg_cell my_mgu = {.name = "mgu", .describe = mgu_describe,
 *                           .prepare = mgu_prepare, .step = mgu_step};
 */
#ifndef TAPEGRAD_NN_CELL_H
#define TAPEGRAD_NN_CELL_H

#include "nn_layers.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TG_CELL_MAX_STATES 4    /* LSTM uses 2 (h, c)            */
#define TG_CELL_MAX_PARAMS 16   /* per direction of one layer    */
#define TG_CELL_MAX_PREP 8      /* tensors prepare keeps for step */

typedef enum tg_param_role {
    TG_PARAM_KERNEL = 0,   /* reads the input: tg_rnn_opts.kernel_init, default Glorot uniform */
    TG_PARAM_RECURRENT,    /* reads the state: recurrent_init, default orthogonal              */
    TG_PARAM_BIAS,         /* bias_init, default zeros                                         */
    TG_PARAM_OTHER         /* only the cell's own init                                         */
} tg_param_role;

typedef struct tg_cell_param {
    const char *name;          /* PyTorch's leaf, e.g. "weight_ih" (a string literal) */
    tg_param_role role;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    tg_initializer init;       /* the cell's own default, or TG_INIT_DEFAULT        */
} tg_cell_param;

typedef struct tg_cell_layout {
    int n_states;
    const char *state_name[TG_CELL_MAX_STATES];   /* "h", "c": in error messages */
    int64_t state_size[TG_CELL_MAX_STATES];       /* width of state k; state 0 is the output */
    int n_params;
    tg_cell_param param[TG_CELL_MAX_PARAMS];
} tg_cell_layout;

/* What a layer tells its cells (one direction of one layer). */
typedef struct tg_cell_cfg {
    int64_t input_size;              /* C of this layer (above layer 0: the layer below's output) */
    int64_t hidden_size;             /* H                                                        */
    int64_t output_size;             /* cells with a separate output width (Jordan); 0: H        */
    tg_act activation;               /* resolved by the layer: never TG_ACT_DEFAULT (tanh)        */
    tg_act recurrent_activation;     /* sigmoid unless set                                       */
    tg_act output_activation;        /* linear unless set                                        */
    bool unit_forget_bias;           /* LSTM kinds: forget-gate bias starts at 1 (Keras)          */
    const void *options;             /* your cell's own options (tg_rnn_opts.cell_options)       */
} tg_cell_cfg;

/* What prepare and step see. */
typedef struct tg_cell_run {
    tg_tape *tp;
    const tg_cell_cfg *cfg;
    tg_tensor *const *param;            /* in the order describe listed them */
    tg_tensor *prep[TG_CELL_MAX_PREP];  /* set by prepare, read by step      */
} tg_cell_run;

typedef struct tg_cell {
    const char *name;            /* "lstm": errors, file metadata                              */
    /* PyTorch module whose state_dict this cell's parameters are, unchanged, or NULL:
     * "RNN", "LSTM" or "GRU". Weights from PyTorch import only into such a cell. */
    const char *torch_module;
    const char *convention;      /* one line naming the equations, for errors on import  */
    tg_status (*describe)(const tg_cell_cfg *cfg, tg_cell_layout *out);
    tg_status (*after_init)(const tg_cell_cfg *cfg, tg_tensor *const *param);   /* or NULL */
    tg_tensor *(*prepare)(tg_cell_run *run, tg_tensor *x);                    /* or NULL */
    void (*step)(const tg_cell_run *run, tg_tensor *in, tg_tensor *const *prev, tg_tensor *h_rec,
                 tg_tensor **next);
} tg_cell;

/* For describe: append a state / a parameter (TG_ERR_ARG when full or bad). */
TG_API tg_status tg_cell_layout_state(tg_cell_layout *l, const char *name, int64_t size);
TG_API tg_status tg_cell_layout_param(tg_cell_layout *l, const char *name, tg_param_role role,
                                      int ndim, const int64_t *shape);
/* The same with the cell's own initialiser. */
TG_API tg_status tg_cell_layout_param_init(tg_cell_layout *l, const char *name, tg_param_role role,
                                           int ndim, const int64_t *shape, tg_initializer init);

/* For prepare and step: columns [g*H, (g+n)*H) of z [B, G*H] (gate blocks). */
TG_API tg_tensor *tg_gate_cols(tg_tape *tp, tg_tensor *z, int64_t H, int g, int n);

/* ---- the built-in cells (one file each in nn/) -----------------------------------------
 * s = recurrent activation (sigmoid), a = activation (tanh), * elementwise.
 *   tg_cell_elman    h = a(x W_ih^T + b_ih + h W_hh^T + b_hh)             nn.RNN
 *   tg_cell_jordan   u = a(x W_ih^T + b_ih + y W_hh^T + b_hh)
 *                    y = out_act(u W_out^T + b_out); the state is y [B, O]
 *   tg_cell_lstm     [i f g o] = x W_ih^T + b_ih + h W_hh^T + b_hh;
 *                    c = s(f) * c + s(i) * a(g),  h = s(o) * a(c)          nn.LSTM
 *   tg_cell_peephole_lstm   LSTM whose gates see the cell: peephole P [3, H] (i, f, o)
 *   tg_cell_prototype_lstm  the lecture's: one state s, rows i, f, o, candidate
 *   tg_cell_gru      r, z = s(..);  n = a(x W_in^T + b_in + r * (h W_hn^T + b_hn))
 *                    h = (1 - z) * n + z * h   (reset after: PyTorch, cuDNN) nn.GRU
 *   tg_cell_gru_reset_before   n = a(x W_in^T + b_in + (r * h) W_hn^T + b_hn)
 *                    (Cho et al. 2014, the lecture) */
TG_API extern const tg_cell tg_cell_elman;
TG_API extern const tg_cell tg_cell_jordan;
TG_API extern const tg_cell tg_cell_lstm;
TG_API extern const tg_cell tg_cell_peephole_lstm;
TG_API extern const tg_cell tg_cell_prototype_lstm;
TG_API extern const tg_cell tg_cell_gru;
TG_API extern const tg_cell tg_cell_gru_reset_before;

#ifdef __cplusplus
}
#endif
#include "call_site.h"   /* file:line of each call (anomaly mode, profiler) */
#endif
