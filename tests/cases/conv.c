/* tests/cases/conv.c - builders for cases/conv.def. Each conv1d setting has
 * two builders: NAME (x, w) and NAME_bias (x, w, bias); the inputs array holds
 * exactly the row's inputs, so the bias must not be looked for in a 2-input row. */
#include "../case_table.h"

#define CONV_BUILDERS(NAME, S, P, D)                                                             \
    tg_tensor *NAME(tg_tape *tp, tg_tensor *const *in, void *u) {                                \
        (void)u;                                                                                 \
        tg_conv1d_opts o = {S, P, D};                                                            \
        return tg_conv1d(tp, in[0], in[1], NULL, &o);                                            \
    }                                                                                            \
    tg_tensor *NAME##_bias(tg_tape *tp, tg_tensor *const *in, void *u) {                         \
        (void)u;                                                                                 \
        tg_conv1d_opts o = {S, P, D};                                                            \
        return tg_conv1d(tp, in[0], in[1], in[2], &o);                                           \
    }

/*            builder               stride padding dilation (0 = default 1) */
CONV_BUILDERS(build_conv1d,         0,     0,      0)
CONV_BUILDERS(build_conv1d_s2p1,    2,     1,      1)
CONV_BUILDERS(build_conv1d_s3,      3,     0,      1)
CONV_BUILDERS(build_conv1d_d2,      1,     0,      2)
CONV_BUILDERS(build_conv1d_s3p2d2,  3,     2,      2)
CONV_BUILDERS(build_conv1d_p1,      1,     1,      1)
CONV_BUILDERS(build_conv1d_p3,      1,     3,      1)

#define POOL_BUILDER(NAME, K, S)                                                                 \
    tg_tensor *NAME(tg_tape *tp, tg_tensor *const *in, void *u) {                                \
        (void)u;                                                                                 \
        return tg_max_pool1d(tp, in[0], K, S);                                                   \
    }

/*           builder          kernel stride (0 = kernel) */
POOL_BUILDER(build_pool_k3s1, 3,     1)
POOL_BUILDER(build_pool_k2s0, 2,     0)
POOL_BUILDER(build_pool_k2s3, 2,     3)
POOL_BUILDER(build_pool_k5s1, 5,     1)
POOL_BUILDER(build_pool_k1s2, 1,     2)
