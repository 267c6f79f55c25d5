/* nn/cell_peephole_lstm.c - LSTM whose gates also see the cell state
 * (Gers & Schmidhuber 2000), peephole P [3, H] with rows i, f, o:
 *
 *   prepare:  xp = x W_ih^T + b_ih + b_hh; the rows of P as [1, H] each
 *   step:     z = xp_t + h_{t-1} W_hh^T
 *             i = s(z_i + P_i * c_{t-1}),  f = s(z_f + P_f * c_{t-1}),  g = a(z_g)
 *             c_t = f * c_{t-1} + i * g,   o = s(z_o + P_o * c_t),    h_t = o * a(c_t)
 * P starts U(-sqrt(3/H), sqrt(3/H)) (Glorot for a [H] vector, as Keras' peepholes). */
#include "nn_private.h"

#include <math.h>

enum { PEEP = NN_B_HH + 1 };

static tg_status peephole_describe(const tg_cell_cfg *cfg, tg_cell_layout *l) {
    int64_t H = cfg->hidden_size;
    double lim = sqrt(3.0 / (double)H);
    tg_status st = tg_cell_layout_state(l, "h", H);
    if (st == TG_OK) st = tg_cell_layout_state(l, "c", H);
    if (st == TG_OK) st = nn_describe_torch4(cfg, l, 4, H);
    if (st == TG_OK)
        st = tg_cell_layout_param_init(l, "peephole", TG_PARAM_OTHER, 2, (int64_t[]){3, H},
                                       (tg_initializer){TG_INIT_UNIFORM, -lim, lim});
    return st;
}

static tg_tensor *peephole_prepare(tg_cell_run *run, tg_tensor *x) {
    for (int g = 0; g < 3; g++) run->prep[g] = tg_slice(run->tp, run->param[PEEP], 0, g, g + 1);
    return nn_project_both_biases(run, x);
}

static void peephole_step(const tg_cell_run *run, tg_tensor *xp, tg_tensor *const *prev,
                          tg_tensor *h_rec, tg_tensor **next) {
    tg_tape *tp = run->tp;
    const tg_cell_cfg *cfg = run->cfg;
    int64_t H = cfg->hidden_size;
    tg_act s = cfg->recurrent_activation;
    tg_tensor *const *P = run->prep, *c_prev = prev[1];
    tg_tensor *z = tg_add(tp, xp, tg_matmul_ex(tp, h_rec, run->param[NN_W_HH],
                                               &(tg_matmul_opts){.trans_b = true}));
    tg_tensor *i = tg_activate(tp, tg_add(tp, tg_gate_cols(tp, z, H, 0, 1), tg_mul(tp, P[0], c_prev)), s);
    tg_tensor *f = tg_activate(tp, tg_add(tp, tg_gate_cols(tp, z, H, 1, 1), tg_mul(tp, P[1], c_prev)), s);
    tg_tensor *g = tg_activate(tp, tg_gate_cols(tp, z, H, 2, 1), cfg->activation);
    tg_tensor *c = tg_add(tp, tg_mul(tp, f, c_prev), tg_mul(tp, i, g));
    tg_tensor *o = tg_activate(tp, tg_add(tp, tg_gate_cols(tp, z, H, 3, 1), tg_mul(tp, P[2], c)), s);
    next[0] = tg_mul(tp, o, tg_activate(tp, c, cfg->activation));
    next[1] = c;
}

const tg_cell tg_cell_peephole_lstm = {
    .name = "peephole_lstm",
    .convention = "LSTM with peepholes P_i, P_f on c_{t-1} and P_o on c_t (Gers & Schmidhuber 2000)",
    .describe = peephole_describe,
    .after_init = nn_unit_forget_bias,
    .prepare = peephole_prepare,
    .step = peephole_step,
};
