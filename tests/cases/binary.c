/* tests/cases/binary.c - builders for cases/binary.def */
#include "../case_table.h"

tg_tensor *build_add(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_add(tp, in[0], in[1]); }
tg_tensor *build_sub(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_sub(tp, in[0], in[1]); }
tg_tensor *build_mul(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_mul(tp, in[0], in[1]); }
tg_tensor *build_div(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_div(tp, in[0], in[1]); }
/* One tensor as both operands: both gradients accumulate into the same buffer. */
tg_tensor *build_add_self(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_add(tp, in[0], in[0]); }
tg_tensor *build_mul_self(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_mul(tp, in[0], in[0]); }
