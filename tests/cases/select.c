/* tests/cases/select.c - builders for cases/select.def */
#include "../case_table.h"

tg_tensor *build_where(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_where(tp, in[0], in[1], in[2]);
}
/* One tensor as both sides: both gradients land in one buffer. */
tg_tensor *build_where_self(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_where(tp, in[0], in[1], in[1]);
}
/* x [N, C] with the rows where cond [N, 1] is 0 replaced by a zero scalar. */
tg_tensor *build_where_zero_rows(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    tg_tensor *zero = tg_tape_tensor(tp, tg_tensor_dtype(in[1]), 1, (const int64_t[]){1});
    return tg_where(tp, in[0], in[1], zero);
}
/* cond = relu(in[0]): non-zero where in[0] > 0. */
tg_tensor *build_where_float_cond(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_where(tp, tg_relu(tp, in[0]), in[1], in[2]);
}
