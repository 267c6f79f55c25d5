/* tests/cases/unary.c - builders for cases/unary.def */
#include "../case_table.h"

tg_tensor *build_neg(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_neg(tp, in[0]); }
tg_tensor *build_scale(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_scale(tp, in[0], -2.5); }
tg_tensor *build_shift(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_shift(tp, in[0], 0.75); }
tg_tensor *build_sigmoid(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_sigmoid(tp, in[0]); }
tg_tensor *build_tanh(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_tanh(tp, in[0]); }
tg_tensor *build_relu(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_relu(tp, in[0]); }
tg_tensor *build_exp(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_exp(tp, in[0]); }
tg_tensor *build_log(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_log(tp, in[0]); }
tg_tensor *build_sqrt(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_sqrt(tp, in[0]); }
tg_tensor *build_pow3(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_pow(tp, in[0], 3.0); }
tg_tensor *build_pow_half(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_pow(tp, in[0], 0.5); }
tg_tensor *build_hard_sigmoid(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_hard_sigmoid(tp, in[0]); }
tg_tensor *build_hard_sigmoid_torch(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_hard_sigmoid_ex(tp, in[0], 1.0 / 6.0, 0.5);
}
