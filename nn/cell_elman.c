/* nn/cell_elman.c - the Elman (simple) RNN, PyTorch's nn.RNN and Keras' SimpleRNN.
 *
 *   h_t = a(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
 * (the lecture's h_t = a(W [x_t, h_{t-1}] + b) with W = [W_ih | W_hh] and
 * b = b_ih + b_hh; PyTorch keeps both biases, so do we).
 *   prepare:  xp = x W_ih^T + b_ih + b_hh   all T steps, one GEMM [T*B, H]
 *   step:     h_t = a(xp_t + h_{t-1} W_hh^T) */
#include "nn_private.h"

static tg_status elman_describe(const tg_cell_cfg *cfg, tg_cell_layout *l) {
    tg_status st = tg_cell_layout_state(l, "h", cfg->hidden_size);
    return st == TG_OK ? nn_describe_torch4(cfg, l, 1, cfg->hidden_size) : st;
}

static void elman_step(const tg_cell_run *run, tg_tensor *xp, tg_tensor *const *prev,
                       tg_tensor *h_rec, tg_tensor **next) {
    (void)prev;
    tg_tape *tp = run->tp;
    tg_tensor *hw = tg_matmul_ex(tp, h_rec, run->param[NN_W_HH], &(tg_matmul_opts){.trans_b = true});
    next[0] = tg_activate(tp, tg_add(tp, xp, hw), run->cfg->activation);
}

const tg_cell tg_cell_elman = {
    .name = "elman",
    .torch_module = "RNN",
    .convention = "h = a(x W_ih^T + b_ih + h W_hh^T + b_hh) (PyTorch nn.RNN, Keras SimpleRNN)",
    .describe = elman_describe,
    .prepare = nn_project_both_biases,
    .step = elman_step,
};
