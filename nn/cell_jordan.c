/* nn/cell_jordan.c - the Jordan network: the output, not the hidden layer, is
 * fed back. Hidden size H, output size O (cfg->output_size).
 *
 *   u_t = a(x_t W_ih^T + b_ih + y_{t-1} W_hh^T + b_hh)     W_ih [H, C], W_hh [H, O]
 *   y_t = out_act(u_t W_out^T + b_out)                     W_out [O, H], b_out [O]
 * The state (and the output) is y [B, O].
 *   prepare:  xp = x W_ih^T + b_ih + b_hh   all T steps, one GEMM [T*B, H] */
#include "nn_private.h"

enum { W_OUT = NN_B_HH + 1, B_OUT };

static tg_status jordan_describe(const tg_cell_cfg *cfg, tg_cell_layout *l) {
    int64_t H = cfg->hidden_size, O = cfg->output_size;
    tg_status st = tg_cell_layout_state(l, "y", O);
    if (st == TG_OK) st = nn_describe_torch4(cfg, l, 1, O);
    if (st == TG_OK) st = tg_cell_layout_param(l, "weight_out", TG_PARAM_KERNEL, 2, (int64_t[]){O, H});
    if (st == TG_OK) st = tg_cell_layout_param(l, "bias_out", TG_PARAM_BIAS, 1, &O);
    return st;
}

static void jordan_step(const tg_cell_run *run, tg_tensor *xp, tg_tensor *const *prev,
                        tg_tensor *y_rec, tg_tensor **next) {
    (void)prev;
    tg_tape *tp = run->tp;
    const tg_cell_cfg *cfg = run->cfg;
    tg_tensor *yw = tg_matmul_ex(tp, y_rec, run->param[NN_W_HH], &(tg_matmul_opts){.trans_b = true});
    tg_tensor *u = tg_activate(tp, tg_add(tp, xp, yw), cfg->activation);
    next[0] = tg_activate(tp, nn_affine(tp, u, run->param[W_OUT], run->param[B_OUT]),
                          cfg->output_activation);
}

const tg_cell tg_cell_jordan = {
    .name = "jordan",
    .convention = "Jordan network: y = out_act(a(x W_ih^T + b_ih + y W_hh^T + b_hh) W_out^T + b_out)",
    .describe = jordan_describe,
    .prepare = nn_project_both_biases,
    .step = jordan_step,
};
