/* tests/check_conv2d.c - conv2d, max_pool2d and avg_pool2d: cases worked by
 * hand (stride, padding, dilation, groups, gradients), the definition written
 * out as plain loops, ties and NaN in max pooling, padding counted and
 * excluded in average pooling, and every error path, hostile sizes included.
 * PyTorch parity lives in conv2d_parity.c, gradchecks in cases/conv2d.def. */
#include "check_suites.h"
#include "tg_test.h"

/* Arena tensor from literal values (freed with the tape). */
static tg_tensor *lit(tg_tape *tp, tg_dtype dt, int ndim, const int64_t *shape, const double *v) {
    tg_tensor *t = tg_tape_tensor(tp, dt, ndim, shape);
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, v[i]);
    return t;
}

static tg_dtype dtype_of(int i) { return i ? TG_F32 : TG_F64; }

/* Clear the previous error, then expect expr to fail with code and text. */
#define ck_assert_fails(tp, expr, code, text)                                                      \
    do {                                                                                           \
        tg_tape_clear_error(tp);                                                                   \
        ck_assert_ptr_null(expr);                                                                  \
        ck_assert_tape_error(tp, code, text);                                                      \
    } while (0)

static const double NINE[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}; /* x [1,1,3,3] in the hand cases */
static const double KERNEL[4] = {1, 2, 3, 4}; /* w [1,1,2,2] */

/* ---- conv2d worked by hand ---------------------------------------------------------------- */
START_TEST(conv2d_by_hand_plain_stride_padding_dilation) {
    /* plain: y[i,j] = x[i,j] + 2 x[i,j+1] + 3 x[i+1,j] + 4 x[i+1,j+1] + 0.5
     *   = 1+4+12+20, 2+6+15+24, 4+10+21+32, 5+12+24+36 (+0.5).
     * stride 2, padding 1: windows start at rows/cols -1 and 1:
     *   (-1,-1) sees x00 under w11: 4;  (-1,1) sees x01 w10 + x02 w11 = 6 + 12;
     *   (1,-1) sees x10 w01 + x20 w11 = 8 + 28;  (1,1) is the plain corner 77.
     * dilation 2: the taps are the four corners, 1 + 6 + 21 + 36 = 64. */
    for (int d = 0; d < 2; d++) {
        tg_tape *tp = tg_tape_new();
        tg_dtype dt = dtype_of(d);
        tg_tensor *x = lit(tp, dt, 4, TGT_SHAPE(1, 1, 3, 3), NINE);
        tg_tensor *w = lit(tp, dt, 4, TGT_SHAPE(1, 1, 2, 2), KERNEL);
        tg_tensor *b = lit(tp, dt, 1, TGT_SHAPE(1), TGT_VALS(0.5));
        tg_tensor *y = tg_conv2d(tp, x, w, b);
        ck_assert_ptr_nonnull(y);
        ck_assert_int_eq(tg_tensor_dim(y, 2), 2);
        ck_assert_tensor_near(y, TGT_VALS(37.5, 47.5, 67.5, 77.5), 4, 0);
        tg_tensor *s =
            tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.stride = {2, 2}, .padding = {1, 1}});
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(tg_tensor_dim(s, 3), 2); /* (3 + 2 - 2)/2 + 1 */
        ck_assert_tensor_near(s, TGT_VALS(4, 18, 36, 77), 4, 0);
        tg_tensor *dl = tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.dilation = {2, 2}});
        ck_assert_ptr_nonnull(dl);
        ck_assert_int_eq(tg_tensor_numel(dl), 1);
        ck_assert_tensor_near(dl, TGT_VALS(64), 1, 0);
        tg_tape_free(tp);
    }
}
END_TEST

START_TEST(conv2d_by_hand_groups_keep_channels_apart) {
    /* x [1,2,2,2]: channel 0 = 1..4, channel 1 = 5..8; w [2,1,2,2], 2 groups:
     * output 0 sums channel 0 (weights 1): 10; output 1 sees only channel 1
     * (weights 1,-1,1,-1): 5 - 6 + 7 - 8 = -2. Stride (1,2) changes nothing here. */
    for (int d = 0; d < 2; d++) {
        tg_tape *tp = tg_tape_new();
        tg_dtype dt = dtype_of(d);
        tg_tensor *x = lit(tp, dt, 4, TGT_SHAPE(1, 2, 2, 2), TGT_VALS(1, 2, 3, 4, 5, 6, 7, 8));
        tg_tensor *w = lit(tp, dt, 4, TGT_SHAPE(2, 1, 2, 2), TGT_VALS(1, 1, 1, 1, 1, -1, 1, -1));
        tg_tensor *y =
            tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.stride = {1, 2}, .groups = 2});
        ck_assert_ptr_nonnull(y);
        ck_assert_int_eq(tg_tensor_dim(y, 1), 2);
        ck_assert_tensor_near(y, TGT_VALS(10, -2), 2, 0);
        tg_tape_free(tp);
    }
}
END_TEST

START_TEST(conv2d_gradients_by_hand_accumulate) {
    /* The plain case with dy = ones: dx[i,j] sums the kernel taps that cover
     * (i,j): [[1,3,2],[4,10,6],[3,7,4]]; dw[p,q] sums the 2x2 block of x at
     * (p,q): 12, 16, 24, 28; dbias = 4. A second backward adds the same again. */
    static const double dx[9] = {1, 3, 2, 4, 10, 6, 3, 7, 4}, dw[4] = {12, 16, 24, 28};
    for (int d = 0; d < 2; d++) {
        tg_tape *tp = tg_tape_new();
        tg_dtype dt = dtype_of(d);
        tg_tensor *x = lit(tp, dt, 4, TGT_SHAPE(1, 1, 3, 3), NINE);
        tg_tensor *w = lit(tp, dt, 4, TGT_SHAPE(1, 1, 2, 2), KERNEL);
        tg_tensor *b = lit(tp, dt, 1, TGT_SHAPE(1), TGT_VALS(0.5));
        tg_tensor_set_requires_grad(x, true);
        tg_tensor_set_requires_grad(w, true);
        tg_tensor_set_requires_grad(b, true);
        tg_tensor *y = tg_conv2d(tp, x, w, b);
        tg_tensor *dy = lit(tp, dt, 4, TGT_SHAPE(1, 1, 2, 2), TGT_VALS(1, 1, 1, 1));
        for (int pass = 1; pass <= 2; pass++) {
            ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
            for (int i = 0; i < 9; i++) ck_assert_double_eq(tg_tensor_grad_get(x, i), pass * dx[i]);
            for (int i = 0; i < 4; i++) ck_assert_double_eq(tg_tensor_grad_get(w, i), pass * dw[i]);
            ck_assert_double_eq(tg_tensor_grad_get(b, 0), pass * 4.0);
        }
        tg_tape_free(tp);
    }
}
END_TEST

/* ---- conv2d against its definition ----------------------------------------------------------- */
/* y[b,o,i,j] from the formula in ops.h, one element at a time. */
static double conv2d_by_definition(const tg_tensor *x, const tg_tensor *w, const tg_conv2d_opts *o,
                                   int64_t b, int64_t oc, int64_t i, int64_t j) {
    int64_t Cin = tg_tensor_dim(x, 1), H = tg_tensor_dim(x, 2), W = tg_tensor_dim(x, 3);
    int64_t Cg = tg_tensor_dim(w, 1), KH = tg_tensor_dim(w, 2), KW = tg_tensor_dim(w, 3);
    int64_t g = oc / (tg_tensor_dim(w, 0) / o->groups);
    double s = 0;
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t p = 0; p < KH; p++)
            for (int64_t q = 0; q < KW; q++) {
                int64_t r = i * o->stride[0] - o->padding[0] + p * o->dilation[0];
                int64_t col = j * o->stride[1] - o->padding[1] + q * o->dilation[1];
                if (r < 0 || r >= H || col < 0 || col >= W) continue;
                s += tg_tensor_get(w, ((oc * Cg + c) * KH + p) * KW + q) *
                     tg_tensor_get(x, ((b * Cin + g * Cg + c) * H + r) * W + col);
            }
    return s;
}

START_TEST(conv2d_matches_its_definition) {
    static const struct {
        int64_t x[4], w[4];
        tg_conv2d_opts o;
    } cases[] = {
        {{2, 3, 7, 6}, {4, 3, 3, 2}, {{1, 1}, {0, 0}, {1, 1}, 1}},
        {{1, 4, 9, 8}, {6, 2, 3, 3}, {{2, 1}, {1, 2}, {1, 2}, 2}},
        {{2, 6, 8, 9}, {6, 1, 3, 3}, {{2, 3}, {2, 1}, {2, 2}, 6}},
        {{1, 2, 4, 5}, {3, 2, 2, 2}, {{1, 1}, {3, 2}, {1, 1}, 1}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int d = 0; d < 2; d++) {
            tg_tape *tp = tg_tape_new();
            tg_rng r = tg_rng_seeded(7 + k);
            tg_tensor *x = tg_tape_tensor(tp, dtype_of(d), 4, cases[k].x);
            tg_tensor *w = tg_tape_tensor(tp, dtype_of(d), 4, cases[k].w);
            for (int64_t i = 0; i < tg_tensor_numel(x); i++)
                tg_tensor_set(x, i, 2 * tg_rng_uniform(&r) - 1);
            for (int64_t i = 0; i < tg_tensor_numel(w); i++)
                tg_tensor_set(w, i, 2 * tg_rng_uniform(&r) - 1);
            tg_tensor *y = tg_conv2d_ex(tp, x, w, NULL, &cases[k].o);
            ck_assert_msg(y != NULL, "%s", tg_tape_error(tp));
            double worst = 0;
            int64_t Co = tg_tensor_dim(y, 1), Ho = tg_tensor_dim(y, 2), Wo = tg_tensor_dim(y, 3);
            for (int64_t b = 0, e = 0; b < tg_tensor_dim(y, 0); b++)
                for (int64_t o = 0; o < Co; o++)
                    for (int64_t i = 0; i < Ho; i++)
                        for (int64_t j = 0; j < Wo; j++, e++)
                            tgt_diff_update(&worst, tg_tensor_get(y, e),
                                            conv2d_by_definition(x, w, &cases[k].o, b, o, i, j));
            ck_assert_msg(tgt_within(worst, d ? 1e-5 : 1e-13), "case %zu %s: worst %g", k,
                          tg_dtype_name(dtype_of(d)), worst);
            tg_tape_free(tp);
        }
}
END_TEST

START_TEST(conv2d_without_grad_records_nothing) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = lit(tp, TG_F32, 4, TGT_SHAPE(1, 1, 3, 3), NINE);
    tg_tensor *w = lit(tp, TG_F32, 4, TGT_SHAPE(1, 1, 2, 2), KERNEL);
    ck_assert_ptr_nonnull(tg_conv2d(tp, x, w, NULL));
    ck_assert_ptr_nonnull(tg_max_pool2d(tp, x, 2, 2));
    ck_assert_ptr_nonnull(tg_avg_pool2d(tp, x, 2, 2));
    tg_tape_stats s;
    tg_tape_stats_get(tp, &s);
    ck_assert_int_eq(s.nodes, 0);
    tg_tape_free(tp);
}
END_TEST

/* ---- pooling worked by hand ------------------------------------------------------------------ */
START_TEST(max_pool2d_by_hand) {
    /* x 4x4 below; each 2x2 window has its max in a different place: 5, 7 / 9, 8.
     * 3x3, stride 1, padding 1 keeps the size; corner (0,0) sees x[0..1][0..1].
     * 1x4 (stride = kernel): the row maxima. */
    static const double x4[16] = {1, 5, 7, 2, 3, 0, -1, 6, 9, -2, 4, 3, 0, 1, 8, -5};
    for (int d = 0; d < 2; d++) {
        tg_tape *tp = tg_tape_new();
        tg_tensor *x = lit(tp, dtype_of(d), 4, TGT_SHAPE(1, 1, 4, 4), x4);
        tg_tensor *y = tg_max_pool2d(tp, x, 2, 2);
        ck_assert_ptr_nonnull(y);
        ck_assert_tensor_near(y, TGT_VALS(5, 7, 9, 8), 4, 0);
        tg_tensor *same =
            tg_max_pool2d_ex(tp, x, 3, 3, &(tg_pool2d_opts){.stride = {1, 1}, .padding = {1, 1}});
        ck_assert_ptr_nonnull(same);
        ck_assert_tensor_near(same, TGT_VALS(5, 7, 7, 7, 9, 9, 7, 7, 9, 9, 8, 8, 9, 9, 8, 8), 16,
                              0);
        tg_tensor *rect = tg_max_pool2d_ex(tp, x, 1, 4, NULL); /* row maxima */
        ck_assert_ptr_nonnull(rect);
        ck_assert_int_eq(tg_tensor_dim(rect, 2), 4);
        ck_assert_tensor_near(rect, TGT_VALS(7, 6, 9, 8), 4, 0);
        tg_tape_free(tp);
    }
}
END_TEST

START_TEST(max_pool2d_gradient_goes_to_first_max_and_nan_propagates) {
    /* x 2x3 = (3 3 1 / 3 2 NaN), kernel 2x2, stride 1: windows (3,3,3,2) and
     * (3,1,2,NaN). The first takes its first maximum x[0,0]; the second holds
     * a NaN, which wins and gets the gradient. */
    for (int d = 0; d < 2; d++) {
        tg_tape *tp = tg_tape_new();
        tg_tensor *x = lit(tp, dtype_of(d), 4, TGT_SHAPE(1, 1, 2, 3), TGT_VALS(3, 3, 1, 3, 2, NAN));
        tg_tensor_set_requires_grad(x, true);
        tg_tensor *y = tg_max_pool2d_ex(tp, x, 2, 2, &(tg_pool2d_opts){.stride = {1, 1}});
        ck_assert_ptr_nonnull(y);
        ck_assert_double_eq(tg_tensor_get(y, 0), 3);
        ck_assert(isnan(tg_tensor_get(y, 1)));
        ck_assert_int_eq(
            tg_backward_ex(tp, y, lit(tp, dtype_of(d), 4, TGT_SHAPE(1, 1, 1, 2), TGT_VALS(1, 10))),
            TG_OK);
        static const double want[6] = {1, 0, 0, 0, 0, 10};
        for (int i = 0; i < 6; i++) ck_assert_double_eq(tg_tensor_grad_get(x, i), want[i]);
        tg_tape_free(tp);
    }
}
END_TEST

START_TEST(avg_pool2d_padding_counted_or_excluded) {
    /* x 2x2 = (1 2 / 3 4), kernel 2, stride 1, padding 1 -> 3x3 windows over
     * the zero-padded 4x4. Counted: sums / 4. Excluded: sums / in-bounds count
     * (1 at the corners, 2 on the edges, 4 in the middle). With dy = ones each
     * x is in four windows: counted dx = 4/4 = 1; excluded 1 + 1/2 + 1/2 + 1/4. */
    for (int d = 0; d < 2; d++) {
        tg_tape *tp = tg_tape_new();
        tg_dtype dt = dtype_of(d);
        tg_tensor *x = lit(tp, dt, 4, TGT_SHAPE(1, 1, 2, 2), TGT_VALS(1, 2, 3, 4));
        tg_tensor_set_requires_grad(x, true);
        tg_pool2d_opts o = {.stride = {1, 1}, .padding = {1, 1}};
        tg_tensor *in = tg_avg_pool2d_ex(tp, x, 2, 2, &o);
        o.exclude_pad = true;
        tg_tensor *ex = tg_avg_pool2d_ex(tp, x, 2, 2, &o);
        ck_assert_ptr_nonnull(in);
        ck_assert_ptr_nonnull(ex);
        ck_assert_tensor_near(in, TGT_VALS(0.25, 0.75, 0.5, 1, 2.5, 1.5, 0.75, 1.75, 1), 9, 0);
        ck_assert_tensor_near(ex, TGT_VALS(1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4), 9, 0);
        tg_tensor *ones = tg_tape_tensor(tp, dt, 4, TGT_SHAPE(1, 1, 3, 3));
        tg_tensor_fill(ones, 1);
        ck_assert_int_eq(tg_backward_ex(tp, in, ones), TG_OK);
        for (int i = 0; i < 4; i++) ck_assert_double_eq(tg_tensor_grad_get(x, i), 1);
        tg_tensor_zero_grad(x);
        ck_assert_int_eq(tg_backward_ex(tp, ex, ones), TG_OK);
        for (int i = 0; i < 4; i++) ck_assert_double_eq(tg_tensor_grad_get(x, i), 2.25);
        tg_tape_free(tp);
    }
}
END_TEST

/* ---- errors ---------------------------------------------------------------------------------- */
START_TEST(conv2d_errors_name_the_shapes) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tape_tensor(tp, TG_F32, 4, TGT_SHAPE(2, 4, 6, 5));
    tg_tensor *w = tg_tape_tensor(tp, TG_F32, 4, TGT_SHAPE(6, 4, 3, 3));
    tg_tensor *b = tg_tape_tensor(tp, TG_F32, 1, TGT_SHAPE(6));
    ck_assert_fails(tp,
                    tg_conv2d(tp, x, tg_tape_tensor(tp, TG_F32, 4, TGT_SHAPE(6, 3, 3, 3)), NULL),
                    TG_ERR_SHAPE,
                    "conv2d: input channels differ: x [2,4,6,5] has 4, w [6,3,3,3] "
                    "takes 3 per group x 1 groups");
    ck_assert_fails(
        tp, tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.groups = 2}), TG_ERR_SHAPE,
        "conv2d: input channels differ: x [2,4,6,5] has 4, w [6,4,3,3] takes 4 per group "
        "x 2 groups");
    ck_assert_fails(tp,
                    tg_conv2d_ex(tp, x, tg_tape_tensor(tp, TG_F32, 4, TGT_SHAPE(5, 2, 3, 3)), NULL,
                                 &(tg_conv2d_opts){.groups = 2}),
                    TG_ERR_SHAPE,
                    "conv2d: groups 2 must divide input channels 4 and output channels 5: "
                    "x [2,4,6,5] w [5,2,3,3]");
    ck_assert_fails(tp, tg_conv2d(tp, tg_tape_tensor(tp, TG_F32, 3, TGT_SHAPE(2, 4, 6)), w, NULL),
                    TG_ERR_SHAPE,
                    "conv2d: needs x [B,Cin,H,W] and w [Cout,Cin/groups,KH,KW]: "
                    "x [2,4,6] w [6,4,3,3]");
    ck_assert_fails(tp, tg_conv2d(tp, x, w, tg_tape_tensor(tp, TG_F32, 1, TGT_SHAPE(4))),
                    TG_ERR_SHAPE, "conv2d: bias must be [Cout]: bias [4] w [6,4,3,3]");
    ck_assert_fails(tp, tg_conv2d(tp, x, tg_tape_tensor(tp, TG_F64, 4, TGT_SHAPE(6, 4, 3, 3)), b),
                    TG_ERR_DTYPE, "conv2d: dtypes differ: float32 [2,4,6,5] x float64 [6,4,3,3]");
    ck_assert_fails(tp, tg_conv2d(tp, x, w, tg_tape_tensor(tp, TG_F64, 1, TGT_SHAPE(6))),
                    TG_ERR_DTYPE, "conv2d: dtypes differ: float32 [2,4,6,5] x float64 [6]");
    ck_assert_fails(tp,
                    tg_conv2d(tp, tg_tape_tensor(tp, TG_I32, 4, TGT_SHAPE(2, 4, 6, 5)), w, NULL),
                    TG_ERR_DTYPE, "conv2d: needs a float tensor, got int32 [2,4,6,5]");
    ck_assert_fails(tp,
                    tg_conv2d(tp, x, tg_tape_tensor(tp, TG_F32, 4, TGT_SHAPE(6, 4, 0, 3)), NULL),
                    TG_ERR_SHAPE, "conv2d: weight has an empty dimension: w [6,4,0,3]");
    ck_assert_fails(tp,
                    tg_conv2d(tp, x, tg_tape_tensor(tp, TG_F32, 4, TGT_SHAPE(6, 4, 7, 3)), NULL),
                    TG_ERR_SHAPE,
                    "conv2d: kernel (7x3, dilation 1x1) larger than the padded input "
                    "(6x5), output size < 1: x [2,4,6,5] w [6,4,7,3]");
    ck_assert_fails(tp, tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.dilation = {1, 3}}),
                    TG_ERR_SHAPE,
                    "conv2d: kernel (3x3, dilation 1x3) larger than the padded input (6x5)");
    ck_assert_fails(tp, tg_conv2d(tp, NULL, w, b), TG_ERR_ARG, "input 0 is NULL");
    /* the first error sticks: a later error does not replace it, a good call does not clear it */
    ck_assert_ptr_null(
        tg_conv2d(tp, x, tg_tape_tensor(tp, TG_F32, 4, TGT_SHAPE(6, 3, 3, 3)), NULL));
    ck_assert_ptr_nonnull(tg_conv2d(tp, x, w, b));
    ck_assert_tape_error(tp, TG_ERR_ARG, "input 0 is NULL");
    tg_tape_free(tp);
}
END_TEST

START_TEST(conv2d_hostile_settings_fail_cleanly) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tape_tensor(tp, TG_F64, 4, TGT_SHAPE(1, 2, 5, 5));
    tg_tensor *w = tg_tape_tensor(tp, TG_F64, 4, TGT_SHAPE(2, 2, 2, 2));
    const int64_t big = INT64_MAX, huge_pad = (int64_t)1 << 40;
    ck_assert_fails(
        tp, tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.stride = {1, -1}}), TG_ERR_ARG,
        "conv2d: stride must be >= 1: stride (1,-1) padding (0,0) dilation (1,1) groups 1: "
        "x [1,2,5,5] w [2,2,2,2]");
    ck_assert_fails(tp, tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.stride = {INT64_MIN, 1}}),
                    TG_ERR_ARG, "stride must be >= 1");
    ck_assert_fails(tp, tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.dilation = {-2, 1}}),
                    TG_ERR_ARG, "dilation must be >= 1");
    ck_assert_fails(tp, tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.padding = {-1, 0}}),
                    TG_ERR_ARG, "padding must be in [0,2^40]");
    ck_assert_fails(tp, tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.padding = {0, big}}),
                    TG_ERR_ARG, "padding must be in [0,2^40]");
    ck_assert_fails(tp, tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.groups = -2}), TG_ERR_ARG,
                    "groups must be >= 1");
    ck_assert_fails(tp, tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.groups = big}),
                    TG_ERR_SHAPE, "must divide input channels 2");
    ck_assert_fails(tp, tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.dilation = {big, 1}}),
                    TG_ERR_SHAPE, "larger than the padded input");
    /* padding 2^40 on both axes: Ho*Wo about 2^82, far past any buffer */
    ck_assert_fails(
        tp, tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.padding = {huge_pad, huge_pad}}),
        TG_ERR_SHAPE,
        "conv2d: output [1,2,2199023255556,2199023255556] or its im2col "
        "buffer is too large: x [1,2,5,5] w [2,2,2,2]");
    /* padding (2^28, 2^27): the output [1,2,~2^29,~2^28] (2^58 elements) fits the
     * tensor bound, its im2col buffer (Cin*KH*KW = 8 rows, 2^60) does not */
    ck_assert_fails(
        tp,
        tg_conv2d_ex(tp, x, w, NULL,
                     &(tg_conv2d_opts){.padding = {(int64_t)1 << 28, (int64_t)1 << 27}}),
        TG_ERR_SHAPE, "or its im2col buffer is too large");
    /* the largest stride is valid: one output position per axis, also with padding
     * (window offsets below zero divided by the stride: the kernels must not overflow) */
    tg_tape_clear_error(tp);
    tg_tensor *y = tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.stride = {big, big}});
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tensor_numel(y), 2);
    tg_tensor_fill(x, 1);
    tg_tensor_fill(w, 1);
    tg_tensor_set_requires_grad(x, true);
    y = tg_conv2d_ex(tp, x, w, NULL, &(tg_conv2d_opts){.stride = {big, big}, .padding = {1, 1}});
    ck_assert_ptr_nonnull(y);
    ck_assert_tensor_near(y, TGT_VALS(2, 2), 2, 0);   /* the window at (-1,-1) sees x[.,.,0,0] */
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, y)), TG_OK);
    ck_assert_double_eq(tg_tensor_grad_get(x, 0), 2);
    tg_tape_free(tp);
}
END_TEST

START_TEST(pool2d_errors_name_the_shapes) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tape_tensor(tp, TG_F64, 4, TGT_SHAPE(2, 3, 4, 5));
    ck_assert_fails(tp, tg_max_pool2d(tp, x, 5, 2), TG_ERR_SHAPE,
                    "max_pool2d: kernel 5x2 larger than the padded input 4x5, output size < 1: "
                    "x [2,3,4,5]");
    ck_assert_fails(
        tp, tg_avg_pool2d(tp, x, 0, 2), TG_ERR_ARG,
        "avg_pool2d: need kernel >= 1, stride >= 1, 0 <= padding <= min(kernel/2, 2^40): "
        "kernel (0,2) stride (0,2) padding (0,0): x [2,3,4,5]");
    ck_assert_fails(tp, tg_max_pool2d_ex(tp, x, 2, 2, &(tg_pool2d_opts){.stride = {-1, 1}}),
                    TG_ERR_ARG, "stride (-1,1)");
    ck_assert_fails(tp, tg_max_pool2d_ex(tp, x, 3, 3, &(tg_pool2d_opts){.padding = {2, 1}}),
                    TG_ERR_ARG, "padding (2,1)");
    ck_assert_fails(tp, tg_avg_pool2d_ex(tp, x, 2, 2, &(tg_pool2d_opts){.padding = {0, -1}}),
                    TG_ERR_ARG, "padding (0,-1)");
    ck_assert_fails(
        tp, tg_max_pool2d_ex(tp, x, INT64_MAX, 2, &(tg_pool2d_opts){.padding = {INT64_MAX / 2, 0}}),
        TG_ERR_ARG, "padding (4611686018427387903,0)");
    ck_assert_fails(tp, tg_max_pool2d(tp, x, INT64_MAX, INT64_MIN), TG_ERR_ARG, "need kernel >= 1");
    ck_assert_fails(tp, tg_max_pool2d(tp, tg_tape_tensor(tp, TG_F64, 3, TGT_SHAPE(3, 4, 5)), 2, 2),
                    TG_ERR_SHAPE, "max_pool2d: needs x [B,C,H,W], got [3,4,5]");
    ck_assert_fails(tp,
                    tg_avg_pool2d(tp, tg_tape_tensor(tp, TG_I32, 4, TGT_SHAPE(1, 1, 2, 2)), 2, 2),
                    TG_ERR_DTYPE, "avg_pool2d: needs a float tensor, got int32 [1,1,2,2]");
    /* an empty plane with padding would leave windows with nothing to pool */
    ck_assert_fails(tp,
                    tg_max_pool2d_ex(tp, tg_tape_tensor(tp, TG_F64, 4, TGT_SHAPE(1, 1, 0, 3)), 2, 2,
                                     &(tg_pool2d_opts){.padding = {1, 1}}),
                    TG_ERR_SHAPE, "max_pool2d: needs H and W >= 1: x [1,1,0,3]");
    ck_assert_fails(tp, tg_avg_pool2d(tp, NULL, 2, 2), TG_ERR_ARG, "avg_pool2d: input 0 is NULL");
    /* stride far past the input: one window per axis */
    tg_tape_clear_error(tp);
    tg_tensor *y =
        tg_avg_pool2d_ex(tp, x, 2, 2, &(tg_pool2d_opts){.stride = {INT64_MAX, INT64_MAX}});
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tensor_numel(y), 6);
    tg_tape_free(tp);
}
END_TEST

Suite *suite_conv2d(void) {
    Suite *s = suite_create("conv2d");
    TCase *tc = tcase_create("conv2d");
    tcase_add_test(tc, conv2d_by_hand_plain_stride_padding_dilation);
    tcase_add_test(tc, conv2d_by_hand_groups_keep_channels_apart);
    tcase_add_test(tc, conv2d_gradients_by_hand_accumulate);
    tcase_add_test(tc, conv2d_matches_its_definition);
    tcase_add_test(tc, conv2d_without_grad_records_nothing);
    tcase_add_test(tc, conv2d_errors_name_the_shapes);
    tcase_add_test(tc, conv2d_hostile_settings_fail_cleanly);
    suite_add_tcase(s, tc);
    tc = tcase_create("pool2d");
    tcase_add_test(tc, max_pool2d_by_hand);
    tcase_add_test(tc, max_pool2d_gradient_goes_to_first_max_and_nan_propagates);
    tcase_add_test(tc, avg_pool2d_padding_counted_or_excluded);
    tcase_add_test(tc, pool2d_errors_name_the_shapes);
    suite_add_tcase(s, tc);
    return s;
}
