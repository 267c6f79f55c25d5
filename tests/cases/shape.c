/* tests/cases/shape.c - builders for cases/shape.def */
#include "../case_table.h"
#include "../tg_test.h"

tg_tensor *build_concat1_axis0(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_concat(tp, 1, in, 0); }
tg_tensor *build_concat2_axis0(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_concat(tp, 2, in, 0); }
tg_tensor *build_concat2_axis1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_concat(tp, 2, in, 1); }
tg_tensor *build_concat2_axis2(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_concat(tp, 2, in, 2); }
tg_tensor *build_concat2_axis_m1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_concat(tp, 2, in, -1); }
tg_tensor *build_concat3_axis0(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_concat(tp, 3, in, 0); }
tg_tensor *build_concat3_axis1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_concat(tp, 3, in, 1); }

tg_tensor *build_slice_0_2_5(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_slice(tp, in[0], 0, 2, 5); }
tg_tensor *build_slice_m1_m6_m2(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_slice(tp, in[0], -1, -6, -2); }
tg_tensor *build_slice_1_1_4(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_slice(tp, in[0], 1, 1, 4); }
tg_tensor *build_slice_0_1_2(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_slice(tp, in[0], 0, 1, 2); }
tg_tensor *build_slice_1_0_1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_slice(tp, in[0], 1, 0, 1); }

/* [3,7] split along the last axis into 2+4+1 columns, joined again as part 2, 0, 1:
 * every part reaches the output, each at a new place. */
tg_tensor *build_split_3_parts(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    tg_tensor *p[3];
    if (tg_split(tp, in[0], -1, 3, TGT_SHAPE(2, 4, 1), p) != TG_OK) return NULL;
    return tg_concat(tp, 3, (tg_tensor *[]){p[2], p[0], p[1]}, -1);
}

/* [2,5,3] split along the middle axis into 3+2, joined again in reverse order. */
tg_tensor *build_split_middle(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    tg_tensor *p[2];
    if (tg_split(tp, in[0], 1, 2, TGT_SHAPE(3, 2), p) != TG_OK) return NULL;
    return tg_concat(tp, 2, (tg_tensor *[]){p[1], p[0]}, 1);
}

tg_tensor *build_reshape_3_2(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_reshape(tp, in[0], 2, TGT_SHAPE(3, 2)); }
tg_tensor *build_reshape_m1_4(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_reshape(tp, in[0], 2, TGT_SHAPE(-1, 4)); }
tg_tensor *build_reshape_1_5_1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_reshape(tp, in[0], 3, TGT_SHAPE(1, 5, 1)); }
tg_tensor *build_reshape_flat(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_reshape(tp, in[0], 1, TGT_SHAPE(12)); }
tg_tensor *build_reshape_3_m1_1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_reshape(tp, in[0], 3, TGT_SHAPE(3, -1, 1)); }

tg_tensor *build_transpose_0_1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_transpose(tp, in[0], 0, 1); }
tg_tensor *build_transpose_0_2(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_transpose(tp, in[0], 0, 2); }
tg_tensor *build_transpose_m1_m2(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_transpose(tp, in[0], -1, -2); }
tg_tensor *build_transpose_1_3(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_transpose(tp, in[0], 1, 3); }
tg_tensor *build_transpose_0_0(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_transpose(tp, in[0], 0, 0); }

tg_tensor *build_permute_201(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_permute(tp, in[0], TGT_PERM(2, 0, 1)); }
tg_tensor *build_permute_1302(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_permute(tp, in[0], TGT_PERM(1, 3, 0, 2)); }
tg_tensor *build_permute_10(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_permute(tp, in[0], TGT_PERM(1, 0)); }
tg_tensor *build_permute_021(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_permute(tp, in[0], TGT_PERM(0, 2, 1)); }
tg_tensor *build_permute_m1_0_1(tg_tape *tp, tg_tensor *const *in, void *u) { (void)u; return tg_permute(tp, in[0], TGT_PERM(-1, 0, 1)); }
