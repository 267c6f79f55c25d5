/* tests/check_conv.c - conv1d and max_pool1d: the lecture's worked cases,
 * PyTorch parity for stride/padding/dilation, hand-worked gradients, and every
 * error path. */
#include "check_suites.h"

static double tol_of(tg_dtype dt) { return dt == TG_F32 ? 1e-5 : 1e-12; }

/* The 4x4 channel table of the lecture, one channel row per batch entry.
 * Row 1 is given whole; rows 2-4 start with the lecture's windows and their
 * fourth values are ours, each chosen below the row's listed max
 * (1.5 < 23.4, -3.3 < -0.6, -1.6 < -1.2). */
static const double TABLE[16] = {0.4,  9.7,  -0.7, 0.4,  23.4, 5.4,  -5.2, 1.5,
                                 -0.6, -9.4, -2.1, -3.3, -2.4, -1.2, -0.9, -1.6};

/* ---- conv1d forward ------------------------------------------------------------------ */
START_TEST(conv_lecture_windows) {
    /* kernel . window, by hand: 0.2*0.4 + 0.3*9.7 + 0.2*(-0.7) = 2.85, etc. */
    static const struct { double k[3], win[3], want; } cases[] = {
        {{0.2, 0.3, 0.2}, {0.4, 9.7, -0.7}, 2.85},
        {{0.2, 0.3, 0.2}, {23.4, 5.4, -5.2}, 5.26},
        {{0.2, 0.3, 0.2}, {-0.6, -9.4, -2.1}, -3.36},
        {{0.2, 0.3, 0.2}, {-2.4, -1.2, -0.9}, -1.02},
        {{0.3, 0.3, 0.1}, {9.7, -0.7, 0.4}, 2.74},
    };
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            tg_tape *tp = tg_tape_new();
            tg_tensor *x = tt_lit(tp, dt, 3, TGT_SHAPE(1, 1, 3), cases[i].win);
            tg_tensor *w = tt_lit(tp, dt, 3, TGT_SHAPE(1, 1, 3), cases[i].k);
            tg_tensor *y = tg_conv1d(tp, x, w, NULL, NULL);
            ck_assert_ptr_nonnull(y);
            ck_assert_int_eq(tg_tensor_ndim(y), 3);
            ck_assert_tensor_near(y, &cases[i].want, 1, tol_of(dt) * 10);
            tg_tape_free(tp);
        }
    }
}
END_TEST

START_TEST(conv_lecture_table_two_kernels) {
    /* x [4,1,4] (the table), w [2,1,3] = the lecture's two kernels -> [4,2,2].
     * Hand-worked, and the same as PyTorch:
     *   F.conv1d(torch.tensor(TABLE, dtype=torch.float64).reshape(4,1,4),
     *            torch.tensor([[.2,.3,.2],[.3,.3,.1]], dtype=torch.float64).reshape(2,1,3)) */
    static const double want[16] = {2.85,  1.81,  2.96,  2.74,  5.26,  -0.18, 8.12,  0.21,
                                    -3.36, -3.17, -3.21, -3.78, -1.02, -0.83, -1.17, -0.79};
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_lit(tp, TG_F64, 3, TGT_SHAPE(4, 1, 4), TABLE);
    tg_tensor *w = tt_lit(tp, TG_F64, 3, TGT_SHAPE(2, 1, 3), TGT_VALS(0.2, 0.3, 0.2, 0.3, 0.3, 0.1));
    tg_tensor *y = tg_conv1d(tp, x, w, NULL, NULL);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tensor_dim(y, 0), 4);
    ck_assert_int_eq(tg_tensor_dim(y, 1), 2);
    ck_assert_int_eq(tg_tensor_dim(y, 2), 2);
    ck_assert_tensor_near(y, want, 16, 1e-12);
    tg_tape_free(tp);
}
END_TEST

START_TEST(conv_stride_padding_dilation_bias_match_pytorch) {
    /* x = torch.tensor([[[0.5,-1.0,2.0,0.25,-0.75],[1.5,0.0,-2.5,1.0,3.0]]], dtype=torch.float64)
     * w = torch.tensor([[[1.0,-1.0],[0.5,2.0]],[[0.0,1.0],[-1.0,0.5]],[[2.0,0.0],[0.0,-0.5]]],
     *                  dtype=torch.float64)
     * b = torch.tensor([0.1,-0.2,0.3], dtype=torch.float64)
     * F.conv1d(x, w, b, stride=2, padding=1, dilation=2).flatten().tolist() */
    static const double want[9] = {1.1, 0.85, 0.85, -1.2, 0.55, -1.2, 0.3, -2.2, 0.8};
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        tg_tape *tp = tg_tape_new();
        tg_tensor *x = tt_lit(tp, dt, 3, TGT_SHAPE(1, 2, 5),
                           TGT_VALS(0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 0.0, -2.5, 1.0, 3.0));
        tg_tensor *w = tt_lit(tp, dt, 3, TGT_SHAPE(3, 2, 2),
                           TGT_VALS(1.0, -1.0, 0.5, 2.0, 0.0, 1.0, -1.0, 0.5, 2.0, 0.0, 0.0, -0.5));
        tg_tensor *b = tt_lit(tp, dt, 1, TGT_SHAPE(3), TGT_VALS(0.1, -0.2, 0.3));
        tg_conv1d_opts o = {.stride = 2, .padding = 1, .dilation = 2};
        tg_tensor *y = tg_conv1d(tp, x, w, b, &o);
        ck_assert_ptr_nonnull(y);
        ck_assert_int_eq(tg_tensor_dim(y, 2), 3); /* (5 + 2 - 2*1 - 1)/2 + 1 */
        ck_assert_tensor_near(y, want, 9, tol_of(dt) * 10);
        tg_tape_free(tp);
    }
}
END_TEST

START_TEST(conv_gradients_by_hand_accumulate) {
    /* x (1,2,3), w (1,-1), bias 0.5: y = (1-2+.5, 2-3+.5) = (-0.5, -0.5).
     * dy = (1,1): dx = (1, 1-1, -1) = (1,0,-1), dw = (1+2, 2+3) = (3,5), db = 2.
     * A second backward adds the same again (leaves accumulate). */
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_lit(tp, TG_F64, 3, TGT_SHAPE(1, 1, 3), TGT_VALS(1, 2, 3));
    tg_tensor *w = tt_lit(tp, TG_F64, 3, TGT_SHAPE(1, 1, 2), TGT_VALS(1, -1));
    tg_tensor *b = tt_lit(tp, TG_F64, 1, TGT_SHAPE(1), TGT_VALS(0.5));
    tg_tensor_set_requires_grad(x, true);
    tg_tensor_set_requires_grad(w, true);
    tg_tensor_set_requires_grad(b, true);
    tg_tensor *y = tg_conv1d(tp, x, w, b, NULL);
    ck_assert_tensor_near(y, TGT_VALS(-0.5, -0.5), 2, 1e-15);
    tg_tensor *dy = tt_lit(tp, TG_F64, 3, TGT_SHAPE(1, 1, 2), TGT_VALS(1, 1));
    for (int pass = 1; pass <= 2; pass++) {
        ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
        double dx[3] = {1. * pass, 0, -1. * pass}, dw[2] = {3. * pass, 5. * pass};
        for (int i = 0; i < 3; i++) ck_assert_near(tg_tensor_grad_get(x, i), dx[i], 1e-15);
        for (int i = 0; i < 2; i++) ck_assert_near(tg_tensor_grad_get(w, i), dw[i], 1e-15);
        ck_assert_near(tg_tensor_grad_get(b, 0), 2. * pass, 1e-15);
    }
    tg_tape_free(tp);
}
END_TEST

START_TEST(conv_without_grad_records_nothing) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_lit(tp, TG_F32, 3, TGT_SHAPE(2, 1, 4), TABLE);
    tg_tensor *w = tt_lit(tp, TG_F32, 3, TGT_SHAPE(1, 1, 2), TGT_VALS(1, 1));
    ck_assert_ptr_nonnull(tg_conv1d(tp, x, w, NULL, NULL));
    tg_tape_stats s;
    tg_tape_stats_get(tp, &s);
    ck_assert_int_eq(s.nodes, 0);
    tg_tape_free(tp);
}
END_TEST

/* ---- max_pool1d ---------------------------------------------------------------------- */
START_TEST(pool_lecture_table) {
    /* One window per row (kernel 4): 9.7, 23.4, -0.6, then -0.9, not the
     * lecture's -1.2: row 4 is (-2.4, -1.2, -0.9, -1.6) and -0.9 > -1.2.
     * Kernel 2 (stride 0 = kernel): the first windows give exactly the
     * lecture's 9.7, 23.4, -0.6, -1.2; the second ones 0.4, 1.5, -2.1, -0.9.
     * PyTorch agrees: F.max_pool1d(x, 4) and F.max_pool1d(x, 2) on x [4,1,4]. */
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_lit(tp, TG_F64, 3, TGT_SHAPE(4, 1, 4), TABLE);
    tg_tensor *whole = tg_max_pool1d(tp, x, 4, 0);
    ck_assert_ptr_nonnull(whole);
    ck_assert_int_eq(tg_tensor_dim(whole, 2), 1);
    ck_assert_tensor_near(whole, TGT_VALS(9.7, 23.4, -0.6, -0.9), 4, 0);
    tg_tensor *halves = tg_max_pool1d(tp, x, 2, 0);
    ck_assert_ptr_nonnull(halves);
    ck_assert_int_eq(tg_tensor_dim(halves, 2), 2);
    ck_assert_tensor_near(halves, TGT_VALS(9.7, 0.4, 23.4, 1.5, -0.6, -2.1, -1.2, -0.9), 8, 0);
    tg_tape_free(tp);
}
END_TEST

START_TEST(pool_gradient_goes_to_first_max) {
    /* x (1,3,3,2), kernel 2, stride 1: windows (1,3) (3,3) (3,2) -> 3,3,3 with
     * argmax 1, 1 (first of the tie), 2. dy = (1,1,1): dx = (0,2,1,0). */
    for (int d = 0; d < 2; d++) {
        tg_tape *tp = tg_tape_new();
        tg_dtype dt = d ? TG_F32 : TG_F64;
        tg_tensor *x = tt_lit(tp, dt, 3, TGT_SHAPE(1, 1, 4), TGT_VALS(1, 3, 3, 2));
        tg_tensor_set_requires_grad(x, true);
        tg_tensor *y = tg_max_pool1d(tp, x, 2, 1);
        ck_assert_tensor_near(y, TGT_VALS(3, 3, 3), 3, 0);
        ck_assert_int_eq(tg_backward_ex(tp, y, tt_lit(tp, dt, 3, TGT_SHAPE(1, 1, 3), TGT_VALS(1, 1, 1))),
                         TG_OK);
        double want[4] = {0, 2, 1, 0};
        for (int i = 0; i < 4; i++) ck_assert_near(tg_tensor_grad_get(x, i), want[i], 0);
        tg_tape_free(tp);
    }
}
END_TEST

START_TEST(pool_stride_above_kernel_skips_elements) {
    /* L 7, kernel 2, stride 3: windows [0,1] [3,4] -> Lout (7-2)/3+1 = 2; 2,5,6 unused. */
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_lit(tp, TG_F64, 3, TGT_SHAPE(1, 1, 7), TGT_VALS(4, -1, 9, 0, 2, 9, 9));
    tg_tensor *y = tg_max_pool1d(tp, x, 2, 3);
    ck_assert_ptr_nonnull(y);
    ck_assert_tensor_near(y, TGT_VALS(4, 2), 2, 0);
    tg_tape_free(tp);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------------- */
START_TEST(conv_errors) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tape_tensor(tp, TG_F32, 3, TGT_SHAPE(2, 3, 10));
    tg_tensor *w = tg_tape_tensor(tp, TG_F32, 3, TGT_SHAPE(4, 3, 3));
    tg_tensor *b = tg_tape_tensor(tp, TG_F32, 1, TGT_SHAPE(4));
    tg_conv1d_opts o = {0};

    ck_assert_fails(tp, tg_conv1d(tp, x, tg_tape_tensor(tp, TG_F32, 3, TGT_SHAPE(4, 5, 3)), NULL, NULL),
                    TG_ERR_SHAPE, "conv1d: input channels differ: x [2,3,10] w [4,5,3]");
    ck_assert_str_eq(tg_tape_error(tp), "conv1d: input channels differ: x [2,3,10] w [4,5,3]");
    ck_assert_fails(tp, tg_conv1d(tp, tg_tape_tensor(tp, TG_F32, 3, TGT_SHAPE(1, 3, 2)), w, NULL, NULL),
                    TG_ERR_SHAPE, "output length < 1: x [1,3,2] w [4,3,3]");
    o.dilation = 5; /* span 5*2+1 = 11 > 10 */
    ck_assert_fails(tp, tg_conv1d(tp, x, w, NULL, &o), TG_ERR_SHAPE,
                    "conv1d: kernel (K 3, dilation 5) longer than padded input (length 10)");
    o.padding = 1; /* now 12 >= 11: fits, Lout = (12 - 11)/1 + 1 = 2 */
    tg_tape_clear_error(tp);
    tg_tensor *y = tg_conv1d(tp, x, w, NULL, &o);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tensor_dim(y, 2), 2);
    o = (tg_conv1d_opts){.stride = -1};
    ck_assert_fails(tp, tg_conv1d(tp, x, w, NULL, &o), TG_ERR_ARG,
                    "conv1d: stride must be in [1,2^40], got -1");
    o = (tg_conv1d_opts){.padding = -2};
    ck_assert_fails(tp, tg_conv1d(tp, x, w, NULL, &o), TG_ERR_ARG,
                    "conv1d: padding must be in [0,2^40], got -2");
    o = (tg_conv1d_opts){.padding = INT64_MAX / 2};
    ck_assert_fails(tp, tg_conv1d(tp, x, w, NULL, &o), TG_ERR_ARG, "padding must be in [0,2^40]");
    o = (tg_conv1d_opts){.dilation = -3};
    ck_assert_fails(tp, tg_conv1d(tp, x, w, NULL, &o), TG_ERR_ARG,
                    "conv1d: dilation must be in [1,2^40], got -3");
    o = (tg_conv1d_opts){.dilation = INT64_MAX};
    ck_assert_fails(tp, tg_conv1d(tp, x, w, NULL, &o), TG_ERR_ARG, "dilation must be in [1,2^40]");
    o = (tg_conv1d_opts){.dilation = (int64_t)1 << 40};
    ck_assert_fails(tp, tg_conv1d(tp, x, w, NULL, &o), TG_ERR_SHAPE, "output length < 1");
    ck_assert_fails(tp, tg_conv1d(tp, tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(3, 10)), w, NULL, NULL),
                    TG_ERR_SHAPE,
                    "conv1d: needs x [B,Cin,L] and w [Cout,Cin,K]: x [3,10] w [4,3,3]");
    ck_assert_fails(tp, tg_conv1d(tp, x, tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(4, 3)), NULL, NULL),
                    TG_ERR_SHAPE, "w [4,3]");
    ck_assert_fails(tp, tg_conv1d(tp, x, w, tg_tape_tensor(tp, TG_F32, 1, TGT_SHAPE(5)), NULL),
                    TG_ERR_SHAPE, "conv1d: bias must be [Cout]: bias [5] w [4,3,3]");
    ck_assert_fails(tp, tg_conv1d(tp, x, w, tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(4, 1)), NULL),
                    TG_ERR_SHAPE, "bias [4,1]");
    ck_assert_fails(tp, tg_conv1d(tp, x, tg_tape_tensor(tp, TG_F64, 3, TGT_SHAPE(4, 3, 3)), b, NULL),
                    TG_ERR_DTYPE, "conv1d: dtypes differ: x float32 [2,3,10] w float64 [4,3,3]");
    ck_assert_fails(tp, tg_conv1d(tp, x, w, tg_tape_tensor(tp, TG_F64, 1, TGT_SHAPE(4)), NULL),
                    TG_ERR_DTYPE, "bias float64 [4]");
    ck_assert_fails(tp, tg_conv1d(tp, tg_tape_tensor(tp, TG_I32, 3, TGT_SHAPE(2, 3, 10)), w, b, NULL),
                    TG_ERR_DTYPE, "conv1d: needs a float tensor, got int32 [2,3,10]");
    ck_assert_fails(tp, tg_conv1d(tp, tg_tape_tensor(tp, TG_F32, 3, TGT_SHAPE(2, 0, 10)),
                                  tg_tape_tensor(tp, TG_F32, 3, TGT_SHAPE(4, 0, 3)), NULL, NULL),
                    TG_ERR_SHAPE, "conv1d: weight has an empty dimension: w [4,0,3]");
    ck_assert_fails(tp, tg_conv1d(tp, NULL, w, b, NULL), TG_ERR_ARG, "input 0 is NULL");
    tg_tape_free(tp);
}
END_TEST

START_TEST(pool_errors) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tape_tensor(tp, TG_F64, 3, TGT_SHAPE(2, 3, 4));
    ck_assert_fails(tp, tg_max_pool1d(tp, x, 5, 1), TG_ERR_SHAPE,
                    "max_pool1d: kernel 5 longer than input length, output length < 1: x [2,3,4]");
    ck_assert_fails(tp, tg_max_pool1d(tp, x, 0, 1), TG_ERR_ARG,
                    "max_pool1d: kernel must be >= 1, got 0: x [2,3,4]");
    ck_assert_fails(tp, tg_max_pool1d(tp, x, -2, 0), TG_ERR_ARG, "kernel must be >= 1, got -2");
    ck_assert_fails(tp, tg_max_pool1d(tp, x, 2, -1), TG_ERR_ARG,
                    "max_pool1d: stride must be in [1,2^40], got -1: x [2,3,4]");
    ck_assert_fails(tp, tg_max_pool1d(tp, tg_tape_tensor(tp, TG_F64, 2, TGT_SHAPE(3, 4)), 2, 2),
                    TG_ERR_SHAPE, "max_pool1d: needs x [B,C,L], got [3,4]");
    ck_assert_fails(tp, tg_max_pool1d(tp, tg_tape_tensor(tp, TG_I32, 3, TGT_SHAPE(1, 1, 4)), 2, 2),
                    TG_ERR_DTYPE, "max_pool1d: needs a float tensor, got int32 [1,1,4]");
    ck_assert_fails(tp, tg_max_pool1d(tp, NULL, 2, 2), TG_ERR_ARG, "max_pool1d: input 0 is NULL");
    tg_tape_free(tp);
}
END_TEST

Suite *suite_conv(void) {
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv1d");
    tcase_add_test(tc, conv_lecture_windows);
    tcase_add_test(tc, conv_lecture_table_two_kernels);
    tcase_add_test(tc, conv_stride_padding_dilation_bias_match_pytorch);
    tcase_add_test(tc, conv_gradients_by_hand_accumulate);
    tcase_add_test(tc, conv_without_grad_records_nothing);
    tcase_add_test(tc, conv_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("max_pool1d");
    tcase_add_test(tc, pool_lecture_table);
    tcase_add_test(tc, pool_gradient_goes_to_first_max);
    tcase_add_test(tc, pool_stride_above_kernel_skips_elements);
    tcase_add_test(tc, pool_errors);
    suite_add_tcase(s, tc);
    return s;
}
