/* nn/cell_lstm.c - the LSTM cell (Keras / PyTorch nn.LSTM), gate order i, f, g, o.
 *
 *   prepare:  xp = x W_ih^T + b_ih + b_hh                  all T steps, one GEMM [T*B, 4H]
 *   step:     z = xp_t + h_{t-1} W_hh^T                   [B, 4H]
 *             i, f, o = s(z_i), s(z_f), s(z_o),  g = a(z_g)
 *             c_t = f * c_{t-1} + i * g,   h_t = o * a(c_t)
 * Keras' unit_forget_bias starts the forget gate's bias_ih rows (H..2H) at 1. */
#include "nn_private.h"

static tg_status lstm_describe(const tg_cell_cfg *cfg, tg_cell_layout *l) {
    tg_status st = tg_cell_layout_state(l, "h", cfg->hidden_size);
    if (st == TG_OK) st = tg_cell_layout_state(l, "c", cfg->hidden_size);
    return st == TG_OK ? nn_describe_torch4(cfg, l, 4, cfg->hidden_size) : st;
}

tg_status nn_unit_forget_bias(const tg_cell_cfg *cfg, tg_tensor *const *param) {
    if (cfg->unit_forget_bias)
        for (int64_t j = cfg->hidden_size; j < 2 * cfg->hidden_size; j++)
            tg_tensor_set(param[NN_B_IH], j, 1);
    return TG_OK;
}

static void lstm_step(const tg_cell_run *run, tg_tensor *xp, tg_tensor *const *prev,
                      tg_tensor *h_rec, tg_tensor **next) {
    tg_tape *tp = run->tp;
    const tg_cell_cfg *cfg = run->cfg;
    int64_t H = cfg->hidden_size;
    tg_tensor *z = tg_add(tp, xp, tg_matmul_ex(tp, h_rec, run->param[NN_W_HH],
                                               &(tg_matmul_opts){.trans_b = true}));
    /* one activation over all four blocks is cheaper than three small calls; g's block is unused */
    tg_tensor *s = tg_activate(tp, z, cfg->recurrent_activation);
    tg_tensor *i = tg_gate_cols(tp, s, H, 0, 1), *f = tg_gate_cols(tp, s, H, 1, 1);
    tg_tensor *o = tg_gate_cols(tp, s, H, 3, 1);
    tg_tensor *g = tg_activate(tp, tg_gate_cols(tp, z, H, 2, 1), cfg->activation);
    tg_tensor *c = tg_add(tp, tg_mul(tp, f, prev[1]), tg_mul(tp, i, g));
    next[0] = tg_mul(tp, o, tg_activate(tp, c, cfg->activation));
    next[1] = c;
}

const tg_cell tg_cell_lstm = {
    .name = "lstm",
    .torch_module = "LSTM",
    .convention = "LSTM without peepholes, gates i, f, g, o (PyTorch nn.LSTM, Keras LSTM)",
    .describe = lstm_describe,
    .after_init = nn_unit_forget_bias,
    .prepare = nn_project_both_biases,
    .step = lstm_step,
};
