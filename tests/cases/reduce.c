/* tests/cases/reduce.c - builders for cases/reduce.def (one per axis/keepdim pair) */
#include "../case_table.h"

tg_tensor *build_sum(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_sum(tp, in[0]); }
tg_tensor *build_mean(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_mean(tp, in[0]); }

tg_tensor *build_sum_axis0(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_sum_axis(tp, in[0], 0, false); }
tg_tensor *build_sum_axis0_keep(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_sum_axis(tp, in[0], 0, true); }
tg_tensor *build_sum_axis1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_sum_axis(tp, in[0], 1, false); }
tg_tensor *build_sum_axis1_keep(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_sum_axis(tp, in[0], 1, true); }
tg_tensor *build_sum_axis_m1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_sum_axis(tp, in[0], -1, false); }
tg_tensor *build_sum_axis_m1_keep(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_sum_axis(tp, in[0], -1, true); }
tg_tensor *build_sum_axis_m2(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_sum_axis(tp, in[0], -2, false); }

tg_tensor *build_mean_axis0(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_mean_axis(tp, in[0], 0, false); }
tg_tensor *build_mean_axis1_keep(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_mean_axis(tp, in[0], 1, true); }
tg_tensor *build_mean_axis_m1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_mean_axis(tp, in[0], -1, false); }
tg_tensor *build_mean_axis_m1_keep(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_mean_axis(tp, in[0], -1, true); }
tg_tensor *build_mean_axis_m2_keep(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_mean_axis(tp, in[0], -2, true); }

tg_tensor *build_max_axis0(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_max_axis(tp, in[0], 0, false); }
tg_tensor *build_max_axis0_keep(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_max_axis(tp, in[0], 0, true); }
tg_tensor *build_max_axis1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_max_axis(tp, in[0], 1, false); }
tg_tensor *build_max_axis_m1_keep(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_max_axis(tp, in[0], -1, true); }
tg_tensor *build_max_axis_m2(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_max_axis(tp, in[0], -2, false); }
