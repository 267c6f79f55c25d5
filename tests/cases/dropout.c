/* tests/cases/dropout.c - builders for cases/dropout.def. The rng is seeded
 * inside each builder so the function gradcheck sees is deterministic. */
#include "../case_table.h"

tg_tensor *build_dropout_p03(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    tg_rng r = tg_rng_seeded(42);
    return tg_dropout(tp, in[0], 0.3, &r);
}

tg_tensor *build_dropout_p0(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    tg_rng r = tg_rng_seeded(42);
    return tg_dropout(tp, in[0], 0.0, &r);
}

tg_tensor *build_dropout_eval(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    tg_rng r = tg_rng_seeded(42);
    tg_tape_set_training(tp, false);
    return tg_dropout(tp, in[0], 0.5, &r);
}
