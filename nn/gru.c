/* nn/gru.c - GRU step in both conventions; gate order r, z, n (PyTorch).
 *
 * xp is this step's rows of x W_ih^T + b ([B, 3H]); for reset-before all of
 * b_hh is folded in there too, for reset-after b_hh stays inside r * (.). */
#include "nn_private.h"

static tg_tensor *cols(tg_tape *tp, tg_tensor *z, int64_t H, int g, int n) {
    return tg_slice(tp, z, 1, g * H, (g + n) * H);
}

/* reset after (PyTorch / cuDNN):
 *   hp = h W_hh^T + b_hh;  [r, z] = s(xp_rz + hp_rz);  n = a(xp_n + r * hp_n)
 * reset before (Cho et al. 2014):
 *   [r, z] = s(xp_rz + h W_hh,rz^T);                   n = a(xp_n + (r * h) W_hh,n^T)
 * both: h_t = (1 - z) * n + z * h_{t-1} = n + z * (h_{t-1} - n) */
tg_tensor *nn_gru_run(tg_tape *tp, const nn_prep *pp, tg_tensor *xp, const tg_rnn_state *prev,
                      tg_rnn_state *next) {
    const tg_rnn_cell *c = pp->c;
    int64_t H = c->hidden_size;
    tg_matmul_opts tb = {.trans_b = true};
    tg_tensor *h_rec = nn_h_rec(tp, pp, prev->h), *r, *z, *n;
    if (c->gru_variant == TG_GRU_RESET_AFTER) {
        tg_tensor *hp = nn_affine(tp, h_rec, c->weight_hh, c->bias_hh);
        tg_tensor *rz = tg_activate(tp, tg_add(tp, cols(tp, xp, H, 0, 2), cols(tp, hp, H, 0, 2)),
                                    c->recurrent_activation);
        r = cols(tp, rz, H, 0, 1);
        z = cols(tp, rz, H, 1, 1);
        n = tg_activate(tp, tg_add(tp, cols(tp, xp, H, 2, 1), tg_mul(tp, r, cols(tp, hp, H, 2, 1))),
                        c->activation);
    } else {
        tg_tensor *rz = tg_activate(tp, tg_add(tp, cols(tp, xp, H, 0, 2),
                                               tg_matmul_ex(tp, h_rec, pp->w_a, &tb)),
                                    c->recurrent_activation);
        r = cols(tp, rz, H, 0, 1);
        z = cols(tp, rz, H, 1, 1);
        tg_tensor *rh = tg_matmul_ex(tp, tg_mul(tp, r, h_rec), pp->w_b, &tb);
        n = tg_activate(tp, tg_add(tp, cols(tp, xp, H, 2, 1), rh), c->activation);
    }
    tg_tensor *ht = tg_add(tp, n, tg_mul(tp, z, tg_sub(tp, prev->h, n)));
    *next = (tg_rnn_state){ht, NULL};
    return ht;
}
