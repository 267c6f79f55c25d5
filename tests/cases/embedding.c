/* tests/cases/embedding.c - builders for cases/embedding.def */
#include "../case_table.h"

tg_tensor *build_embedding(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_embedding(tp, in[0], in[1]);
}
