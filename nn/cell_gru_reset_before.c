/* nn/cell_gru_reset_before.c - the GRU of Cho et al. 2014 (the lecture's, Keras
 * reset_after=False): the reset gate acts on h before the recurrent product.
 * Same parameters and gate order (r, z, n) as nn.GRU, different equations, so
 * PyTorch's GRU weights do not import into it.
 *
 *   prepare:  xp = x W_ih^T + b_ih + b_hh; W_hh split into [W_hr; W_hz] [2H, H] and W_hn [H, H]
 *   step:     [r, z] = s(xp_rz + h_{t-1} W_hrz^T)
 *             n = a(xp_n + (r * h_{t-1}) W_hn^T)
 *             h_t = (1 - z) * n + z * h_{t-1} */
#include "nn_private.h"

enum { W_RZ = 0, W_N };

static tg_tensor *gru_before_prepare(tg_cell_run *run, tg_tensor *x) {
    return nn_project_split_hh(run, x, 2 * run->cfg->hidden_size);   /* W_RZ, W_N */
}

static void gru_before_step(const tg_cell_run *run, tg_tensor *xp, tg_tensor *const *prev,
                            tg_tensor *h_rec, tg_tensor **next) {
    tg_tape *tp = run->tp;
    const tg_cell_cfg *cfg = run->cfg;
    int64_t H = cfg->hidden_size;
    tg_matmul_opts tb = {.trans_b = true};
    tg_tensor *rz = tg_activate(tp, tg_add(tp, tg_gate_cols(tp, xp, H, 0, 2),
                                           tg_matmul_ex(tp, h_rec, run->prep[W_RZ], &tb)),
                                cfg->recurrent_activation);
    tg_tensor *r = tg_gate_cols(tp, rz, H, 0, 1), *z = tg_gate_cols(tp, rz, H, 1, 1);
    tg_tensor *rh = tg_matmul_ex(tp, tg_mul(tp, r, h_rec), run->prep[W_N], &tb);
    tg_tensor *n = tg_activate(tp, tg_add(tp, tg_gate_cols(tp, xp, H, 2, 1), rh), cfg->activation);
    /* h = (1 - z) * n + z * h_{t-1} = n + z * (h_{t-1} - n) */
    next[0] = tg_add(tp, n, tg_mul(tp, z, tg_sub(tp, prev[0], n)));
}

const tg_cell tg_cell_gru_reset_before = {
    .name = "gru_reset_before",
    .convention = "reset gate applied before the recurrent product, W_hn (r * h) "
                  "(Cho et al. 2014, Keras reset_after=False)",
    .describe = nn_gru_describe,
    .prepare = gru_before_prepare,
    .step = gru_before_step,
};
