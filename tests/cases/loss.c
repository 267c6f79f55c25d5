/* tests/cases/loss.c - builders for cases/loss.def */
#include "../case_table.h"

tg_tensor *build_mse(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_mse(tp, in[0], in[1]);
}

tg_tensor *build_bce(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_bce_with_logits(tp, in[0], in[1]);
}

tg_tensor *build_ce(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_cross_entropy(tp, in[0], in[1]);
}

/* A copy of the targets in which positions flagged by every_kth (r % k == 1)
 * hold the ignore index, so the row ignores some positions whatever the draw. */
static tg_tensor *with_ignored(tg_tape *tp, tg_tensor *target, int64_t k, int32_t ignore) {
    tg_tensor *t = tg_tape_tensor(tp, TG_I32, tg_tensor_ndim(target), tg_tensor_shape(target));
    if (!t) return NULL;
    tg_tensor_copy(t, target);
    for (int64_t r = 0; r < tg_tensor_numel(t); r++)
        if (k == 1 || r % k == 1) tg_tensor_set(t, r, ignore);
    return t;
}

tg_tensor *build_ce_ignore3rd(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_cross_entropy_ex(tp, in[0], with_ignored(tp, in[1], 3, -7), -7);
}

tg_tensor *build_ce_ignore_all(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_cross_entropy_ex(tp, in[0], with_ignored(tp, in[1], 1, 2), 2);
}
