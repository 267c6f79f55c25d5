/* tests/cases/conv2d.c - builders for cases/conv2d.def. Each conv2d setting
 * has two builders: NAME (x, w) and NAME_bias (x, w, bias); the inputs array
 * holds exactly the row's inputs, so a 2-input row must not read in[2]. */
#include "../case_table.h"

#define CONV2D_BUILDERS(NAME, SH, SW, PH, PW, DH, DW, G)                                         \
    tg_tensor *NAME(tg_tape *tp, tg_tensor *const *in, void *u) {                                \
        (void)u;                                                                                 \
        tg_conv2d_opts o = {{SH, SW}, {PH, PW}, {DH, DW}, G};                                     \
        return tg_conv2d_ex(tp, in[0], in[1], NULL, &o);                                         \
    }                                                                                            \
    tg_tensor *NAME##_bias(tg_tape *tp, tg_tensor *const *in, void *u) {                         \
        (void)u;                                                                                 \
        tg_conv2d_opts o = {{SH, SW}, {PH, PW}, {DH, DW}, G};                                     \
        return tg_conv2d_ex(tp, in[0], in[1], in[2], &o);                                        \
    }

/*              builder                stride  padding  dilation  groups (0 = default 1) */
CONV2D_BUILDERS(build_conv2d,          0, 0,   0, 0,    0, 0,     0)
CONV2D_BUILDERS(build_conv2d_s2p1,     2, 2,   1, 1,    1, 1,     1)
CONV2D_BUILDERS(build_conv2d_s12p01,   1, 2,   0, 1,    1, 1,     1)
CONV2D_BUILDERS(build_conv2d_d2,       1, 1,   0, 0,    2, 2,     1)
CONV2D_BUILDERS(build_conv2d_s3p2d21,  3, 3,   2, 2,    2, 1,     1)
CONV2D_BUILDERS(build_conv2d_g2,       1, 1,   0, 0,    1, 1,     2)
CONV2D_BUILDERS(build_conv2d_g3p1,     1, 1,   1, 1,    1, 1,     3)
CONV2D_BUILDERS(build_conv2d_g2s2p1d2, 2, 2,   1, 1,    2, 2,     2)
CONV2D_BUILDERS(build_conv2d_p3,       1, 1,   3, 3,    1, 1,     1)

#define POOL2D_BUILDER(NAME, POOL, KH, KW, SH, SW, PH, PW, EXCL)                                 \
    tg_tensor *NAME(tg_tape *tp, tg_tensor *const *in, void *u) {                                \
        (void)u;                                                                                 \
        tg_pool2d_opts o = {{SH, SW}, {PH, PW}, EXCL};                                            \
        return POOL(tp, in[0], KH, KW, &o);                                                      \
    }

/*             builder                     pool              kernel  stride (0 = kernel)  padding  exclude_pad */
POOL2D_BUILDER(build_max_pool2d_k2,        tg_max_pool2d_ex, 2, 2,   0, 0,                0, 0,    false)
POOL2D_BUILDER(build_max_pool2d_k3s1,      tg_max_pool2d_ex, 3, 3,   1, 1,                0, 0,    false)
POOL2D_BUILDER(build_max_pool2d_k3s2p1,    tg_max_pool2d_ex, 3, 3,   2, 2,                1, 1,    false)
POOL2D_BUILDER(build_max_pool2d_k23s12p11, tg_max_pool2d_ex, 2, 3,   1, 2,                1, 1,    false)
POOL2D_BUILDER(build_max_pool2d_k1s2,      tg_max_pool2d_ex, 1, 1,   2, 2,                0, 0,    false)
POOL2D_BUILDER(build_max_pool2d_k45,       tg_max_pool2d_ex, 4, 5,   0, 0,                0, 0,    false)
POOL2D_BUILDER(build_avg_pool2d_k2,        tg_avg_pool2d_ex, 2, 2,   0, 0,                0, 0,    false)
POOL2D_BUILDER(build_avg_pool2d_k3s1,      tg_avg_pool2d_ex, 3, 3,   1, 1,                0, 0,    false)
POOL2D_BUILDER(build_avg_pool2d_k3s2p1,    tg_avg_pool2d_ex, 3, 3,   2, 2,                1, 1,    false)
POOL2D_BUILDER(build_avg_pool2d_k3s2p1x,   tg_avg_pool2d_ex, 3, 3,   2, 2,                1, 1,    true)
POOL2D_BUILDER(build_avg_pool2d_k23s12p11, tg_avg_pool2d_ex, 2, 3,   1, 2,                1, 1,    false)
POOL2D_BUILDER(build_avg_pool2d_k45,       tg_avg_pool2d_ex, 4, 5,   0, 0,                0, 0,    false)
