/* tests/cases/matmul.c - builders for cases/matmul.def */
#include "../case_table.h"

static tg_tensor *mm(tg_tape *tp, tg_tensor *const *in, bool ta, bool tb) {
    tg_matmul_opts o = {.trans_a = ta, .trans_b = tb};
    return tg_matmul_ex(tp, in[0], in[1], &o);
}
tg_tensor *build_matmul(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return mm(tp, in, false, false); }
tg_tensor *build_matmul_ta(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return mm(tp, in, true, false); }
tg_tensor *build_matmul_tb(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return mm(tp, in, false, true); }
tg_tensor *build_matmul_tab(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return mm(tp, in, true, true); }
/* h_{t+1} = tanh(h_t W^T), four steps from h_0 = in[0]: the engine packs W
 * from its second use and defers the per-step contributions to dW. */
tg_tensor *build_matmul_rec(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    tg_tensor *h = in[0];
    for (int t = 0; t < 4; t++) h = tg_tanh(tp, mm(tp, (tg_tensor *[]){h, in[1]}, false, true));
    return h;
}
/* two heads: [B, T, 2*d] operands read as [B, 2, T, d] through strides */
static tg_tensor *mm_heads(tg_tape *tp, tg_tensor *const *in, bool ta, bool tb, bool merge) {
    tg_matmul_opts o = {.trans_a = ta, .trans_b = tb, .heads = 2, .merge_heads = merge};
    return tg_matmul_ex(tp, in[0], in[1], &o);
}
tg_tensor *build_matmul_heads_tb(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return mm_heads(tp, in, false, true, false); }
tg_tensor *build_matmul_heads_merge(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return mm_heads(tp, in, false, false, true); }
tg_tensor *build_matmul_heads_ta(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return mm_heads(tp, in, true, false, true); }
