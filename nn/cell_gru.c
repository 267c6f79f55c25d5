/* nn/cell_gru.c - the GRU as PyTorch and cuDNN compute it (reset after, Keras
 * reset_after=True), gate order r, z, n.
 *
 *   prepare:  xp = x W_ih^T + b_ih            all T steps, one GEMM [T*B, 3H]
 *             (b_hh stays out: the reset gate multiplies it)
 *   step:     hp = h_{t-1} W_hh^T + b_hh      [B, 3H]
 *             [r, z] = s(xp_rz + hp_rz),  n = a(xp_n + r * hp_n)
 *             h_t = (1 - z) * n + z * h_{t-1}   (the lecture's update gate is 1 - z) */
#include "nn_private.h"

tg_status nn_gru_describe(const tg_cell_cfg *cfg, tg_cell_layout *l) {
    tg_status st = tg_cell_layout_state(l, "h", cfg->hidden_size);
    return st == TG_OK ? nn_describe_torch4(cfg, l, 3, cfg->hidden_size) : st;
}

static tg_tensor *gru_prepare(tg_cell_run *run, tg_tensor *x) {
    return nn_affine(run->tp, x, run->param[NN_W_IH], run->param[NN_B_IH]);
}

static void gru_step(const tg_cell_run *run, tg_tensor *xp, tg_tensor *const *prev,
                     tg_tensor *h_rec, tg_tensor **next) {
    tg_tape *tp = run->tp;
    const tg_cell_cfg *cfg = run->cfg;
    int64_t H = cfg->hidden_size;
    tg_tensor *hp = nn_affine(tp, h_rec, run->param[NN_W_HH], run->param[NN_B_HH]);
    tg_tensor *rz = tg_activate(tp, tg_add(tp, tg_gate_cols(tp, xp, H, 0, 2),
                                           tg_gate_cols(tp, hp, H, 0, 2)),
                                cfg->recurrent_activation);
    tg_tensor *r = tg_gate_cols(tp, rz, H, 0, 1), *z = tg_gate_cols(tp, rz, H, 1, 1);
    tg_tensor *n = tg_activate(tp, tg_add(tp, tg_gate_cols(tp, xp, H, 2, 1),
                                          tg_mul(tp, r, tg_gate_cols(tp, hp, H, 2, 1))),
                               cfg->activation);
    /* h = (1 - z) * n + z * h_{t-1} = n + z * (h_{t-1} - n) */
    next[0] = tg_add(tp, n, tg_mul(tp, z, tg_sub(tp, prev[0], n)));
}

const tg_cell tg_cell_gru = {
    .name = "gru",
    .torch_module = "GRU",
    .convention = "reset gate applied after the recurrent product, r * (W_hn h + b_hn) "
                  "(PyTorch nn.GRU, cuDNN, Keras reset_after=True)",
    .describe = nn_gru_describe,
    .prepare = gru_prepare,
    .step = gru_step,
};
