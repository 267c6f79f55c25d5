/* nn/cell_prototype_lstm.c - the lecture's prototype LSTM: one state s, rows
 * i, f, o, candidate of W_ih [4H, C] and W_hh [4H, H].
 *
 *   prepare:  xp = x W_ih^T + b_ih + b_hh; W_hh split into gates [3H, H] and candidate [H, H]
 *   step:     [i, f, o] = s(xp_t[:, :3H] + s_{t-1} W_hh,gates^T)
 *             s~_t = a(xp_t[:, 3H:] + (o * s_{t-1}) W_hh,cand^T)   i.e. phi(W (o * s) + U x + b)
 *             s_t = f * s_{t-1} + i * s~_t                            (the output is s_t) */
#include "nn_private.h"

enum { W_GATES = 0, W_CAND };

static tg_status prototype_describe(const tg_cell_cfg *cfg, tg_cell_layout *l) {
    tg_status st = tg_cell_layout_state(l, "s", cfg->hidden_size);
    return st == TG_OK ? nn_describe_torch4(cfg, l, 4, cfg->hidden_size) : st;
}

static tg_tensor *prototype_prepare(tg_cell_run *run, tg_tensor *x) {
    return nn_project_split_hh(run, x, 3 * run->cfg->hidden_size);   /* W_GATES, W_CAND */
}

static void prototype_step(const tg_cell_run *run, tg_tensor *xp, tg_tensor *const *prev,
                           tg_tensor *s_rec, tg_tensor **next) {
    tg_tape *tp = run->tp;
    const tg_cell_cfg *cfg = run->cfg;
    int64_t H = cfg->hidden_size;
    tg_matmul_opts tb = {.trans_b = true};
    tg_tensor *gates = tg_activate(tp, tg_add(tp, tg_gate_cols(tp, xp, H, 0, 3),
                                              tg_matmul_ex(tp, s_rec, run->prep[W_GATES], &tb)),
                                   cfg->recurrent_activation);
    tg_tensor *i = tg_gate_cols(tp, gates, H, 0, 1), *f = tg_gate_cols(tp, gates, H, 1, 1);
    tg_tensor *o = tg_gate_cols(tp, gates, H, 2, 1);
    tg_tensor *sel = tg_matmul_ex(tp, tg_mul(tp, o, s_rec), run->prep[W_CAND], &tb);
    tg_tensor *cand = tg_activate(tp, tg_add(tp, tg_gate_cols(tp, xp, H, 3, 1), sel), cfg->activation);
    next[0] = tg_add(tp, tg_mul(tp, f, prev[0]), tg_mul(tp, i, cand));
}

const tg_cell tg_cell_prototype_lstm = {
    .name = "prototype_lstm",
    .convention = "the lecture's prototype LSTM: one state s, rows i, f, o, candidate; "
                  "the candidate reads o * s_{t-1}",
    .describe = prototype_describe,
    .after_init = nn_unit_forget_bias,
    .prepare = prototype_prepare,
    .step = prototype_step,
};
