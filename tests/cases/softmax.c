/* tests/cases/softmax.c - builders for cases/softmax.def */
#include "../case_table.h"

tg_tensor *build_softmax_0(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_softmax(tp, in[0], 0); }
tg_tensor *build_softmax_1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_softmax(tp, in[0], 1); }
tg_tensor *build_softmax_m1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_softmax(tp, in[0], -1); }
tg_tensor *build_softmax_m2(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_softmax(tp, in[0], -2); }
/* inputs in [-120, 120]: exp(120) overflows float32 unless the max is subtracted */
tg_tensor *build_softmax_x30(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_softmax(tp, tg_scale(tp, in[0], 30), -1);
}
tg_tensor *build_softmax_plus1000(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_softmax(tp, tg_shift(tp, in[0], 1000), -1);
}

tg_tensor *build_log_softmax_0(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_log_softmax(tp, in[0], 0); }
tg_tensor *build_log_softmax_1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_log_softmax(tp, in[0], 1); }
tg_tensor *build_log_softmax_m1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_log_softmax(tp, in[0], -1); }
tg_tensor *build_log_softmax_m3(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_log_softmax(tp, in[0], -3); }
tg_tensor *build_log_softmax_x30(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_log_softmax(tp, tg_scale(tp, in[0], 30), -1);
}
tg_tensor *build_log_softmax_plus1000(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_log_softmax(tp, tg_shift(tp, in[0], 1000), -1);
}
