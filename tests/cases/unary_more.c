/* tests/cases/unary_more.c - builders for cases/unary_more.def */
#include "../case_table.h"

tg_tensor *build_rsqrt(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_rsqrt(tp, in[0]); }
tg_tensor *build_one_minus(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_affine(tp, in[0], -1, 1); }
tg_tensor *build_affine(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_affine(tp, in[0], 2.5, -0.5); }
