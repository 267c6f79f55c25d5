/* nn/lstm.c - LSTM steps: standard (Keras / PyTorch), peephole, the lecture's prototype.
 *
 * Each takes xp, this step's rows of the input projection x W_ih^T + b
 * ([B, 4H], biases already folded in), and the previous state. */
#include "nn_private.h"

static tg_tensor *cols(tg_tape *tp, tg_tensor *z, int64_t H, int g, int n) {
    return tg_slice(tp, z, 1, g * H, (g + n) * H);
}

/* z = xp + h_{t-1} W_hh^T                        [B, 4H], gate order i, f, g, o
 * i, f, o = s(z_i), s(z_f), s(z_o),  g = a(z_g)
 * c_t = f * c_{t-1} + i * g,  h_t = o * a(c_t) */
tg_tensor *nn_lstm_run(tg_tape *tp, const nn_prep *pp, tg_tensor *xp, const tg_rnn_state *prev,
                       tg_rnn_state *next) {
    const tg_rnn_cell *c = pp->c;
    int64_t H = c->hidden_size;
    tg_tensor *hw = tg_matmul_ex(tp, nn_h_rec(tp, pp, prev->h), c->weight_hh,
                                 &(tg_matmul_opts){.trans_b = true});
    tg_tensor *z = tg_add(tp, xp, hw);
    /* one activation over all four blocks is cheaper than four small calls; g's
     * block of it is unused */
    tg_tensor *s = tg_activate(tp, z, c->recurrent_activation);
    tg_tensor *i = cols(tp, s, H, 0, 1), *f = cols(tp, s, H, 1, 1), *o = cols(tp, s, H, 3, 1);
    tg_tensor *g = tg_activate(tp, cols(tp, z, H, 2, 1), c->activation);
    tg_tensor *ct = tg_add(tp, tg_mul(tp, f, prev->c), tg_mul(tp, i, g));
    tg_tensor *ht = tg_mul(tp, o, tg_activate(tp, ct, c->activation));
    *next = (tg_rnn_state){ht, ct};
    return ht;
}

/* As nn_lstm_run, with the cell fed to the gates (P rows i, f, o):
 * i = s(z_i + P_i * c_{t-1}),  f = s(z_f + P_f * c_{t-1}),  g = a(z_g)
 * c_t = f * c_{t-1} + i * g,   o = s(z_o + P_o * c_t),      h_t = o * a(c_t) */
tg_tensor *nn_peephole_run(tg_tape *tp, const nn_prep *pp, tg_tensor *xp,
                           const tg_rnn_state *prev, tg_rnn_state *next) {
    const tg_rnn_cell *c = pp->c;
    int64_t H = c->hidden_size;
    tg_act s = c->recurrent_activation;
    tg_tensor *z = tg_add(tp, xp, tg_matmul_ex(tp, nn_h_rec(tp, pp, prev->h), c->weight_hh,
                                                &(tg_matmul_opts){.trans_b = true}));
    tg_tensor *i = tg_activate(tp, tg_add(tp, cols(tp, z, H, 0, 1), tg_mul(tp, pp->peep[0], prev->c)), s);
    tg_tensor *f = tg_activate(tp, tg_add(tp, cols(tp, z, H, 1, 1), tg_mul(tp, pp->peep[1], prev->c)), s);
    tg_tensor *g = tg_activate(tp, cols(tp, z, H, 2, 1), c->activation);
    tg_tensor *ct = tg_add(tp, tg_mul(tp, f, prev->c), tg_mul(tp, i, g));
    tg_tensor *o = tg_activate(tp, tg_add(tp, cols(tp, z, H, 3, 1), tg_mul(tp, pp->peep[2], ct)), s);
    tg_tensor *ht = tg_mul(tp, o, tg_activate(tp, ct, c->activation));
    *next = (tg_rnn_state){ht, ct};
    return ht;
}

/* The lecture's prototype LSTM: one state s, rows i, f, o, candidate.
 * [i, f, o] = s(xp[:, :3H] + s_{t-1} W_hh[:3H]^T)
 * s~_t = a(xp[:, 3H:] + (o * s_{t-1}) W_hh[3H:]^T)   i.e. phi(W (o * s) + U x + b)
 * s_t = f * s_{t-1} + i * s~_t                         (the output is s_t) */
tg_tensor *nn_prototype_run(tg_tape *tp, const nn_prep *pp, tg_tensor *xp,
                            const tg_rnn_state *prev, tg_rnn_state *next) {
    const tg_rnn_cell *c = pp->c;
    int64_t H = c->hidden_size;
    tg_matmul_opts tb = {.trans_b = true};
    tg_tensor *s_rec = nn_h_rec(tp, pp, prev->h);
    tg_tensor *gates = tg_activate(tp, tg_add(tp, cols(tp, xp, H, 0, 3),
                                              tg_matmul_ex(tp, s_rec, pp->w_a, &tb)),
                                   c->recurrent_activation);
    tg_tensor *i = cols(tp, gates, H, 0, 1), *f = cols(tp, gates, H, 1, 1);
    tg_tensor *o = cols(tp, gates, H, 2, 1);
    tg_tensor *sel = tg_matmul_ex(tp, tg_mul(tp, o, s_rec), pp->w_b, &tb);
    tg_tensor *cand = tg_activate(tp, tg_add(tp, cols(tp, xp, H, 3, 1), sel), c->activation);
    tg_tensor *st = tg_add(tp, tg_mul(tp, f, prev->h), tg_mul(tp, i, cand));
    *next = (tg_rnn_state){st, NULL};
    return st;
}
