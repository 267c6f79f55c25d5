// tests/nn/gtest_conv2d_layer.cpp - the Conv2D layer: PyTorch's parameter
// names, shapes and initialisation bounds, argument errors, and a small CNN
// composed from it (conv, max pool, grouped conv, average pool, flatten,
// linear) against central differences in float64 and float32.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

extern "C" {
#include "tapegrad.h"
#include "tapegrad/nn.h"
}

namespace {

// x [2,2,7,6] -> conv 3x3 pad 1 tanh [2,4,7,6] -> max 2x2 [2,4,3,3]
// -> conv 2x2 groups 2 stride (1,2) pad 1 [2,6,4,2] -> avg 2x2 [2,6,2,1] -> [2,12] -> linear [2,3]
tg_tensor *small_cnn(tg_tape *tp, tg_tensor *const *in, void *) {
    tg_conv2d_layer c1 = {in[1], in[2], 2, 4, {3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}, TG_ACT_TANH};
    tg_conv2d_layer c2 = {in[3], in[4], 4, 6, {2, 2}, {{1, 2}, {1, 1}, {1, 1}, 2}, TG_ACT_LINEAR};
    tg_linear fc = {in[5], in[6], 12, 3, TG_ACT_LINEAR};
    tg_tensor *h = tg_max_pool2d(tp, tg_conv2d_layer_forward(tp, &c1, in[0]), 2, 2);
    h = tg_avg_pool2d(tp, tg_conv2d_layer_forward(tp, &c2, h), 2, 2);
    return tg_linear_forward(tp, &fc, tg_reshape(tp, h, 2, (const int64_t[]){2, -1}));
}

class SmallCnn : public ::testing::TestWithParam<tg_dtype> {};

TEST_P(SmallCnn, GradientsOfInputAndEveryParameterMatchFiniteDifferences) {
    const tg_dtype dt = GetParam();
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(3);
    tg_conv2d_layer c1, c2;
    tg_linear fc;
    tg_conv2d_layer_opts o1 = {{{1, 1}, {1, 1}, {1, 1}, 1}, false, TG_ACT_TANH, {}, {}};
    tg_conv2d_layer_opts o2 = {{{1, 2}, {1, 1}, {1, 1}, 2}, false, TG_ACT_LINEAR, {}, {}};
    ASSERT_EQ(tg_conv2d_layer_init(&c1, p, "conv1", 2, 4, 3, 3, dt, &rng, &o1), TG_OK);
    ASSERT_EQ(tg_conv2d_layer_init(&c2, p, "conv2", 4, 6, 2, 2, dt, &rng, &o2), TG_OK);
    ASSERT_EQ(tg_linear_init(&fc, p, "fc", 12, 3, dt, &rng, nullptr), TG_OK);
    tg_tensor *x = tg_tensor_new(dt, 4, (const int64_t[]){2, 2, 7, 6});
    ASSERT_NE(x, nullptr);
    for (int64_t i = 0; i < tg_tensor_numel(x); i++) tg_tensor_set(x, i, 2 * tg_rng_uniform(&rng) - 1);
    tg_tensor *in[7] = {x, c1.weight, c1.bias, c2.weight, c2.bias, fc.weight, fc.bias};
    tg_gradcheck_report r;
    ASSERT_EQ(tg_gradcheck(small_cnn, nullptr, 7, in, nullptr, &r), TG_OK) << r.message;
    EXPECT_TRUE(r.passed) << "max abs err " << r.max_abs_err << " at input " << r.worst_input << "["
                          << r.worst_index << "]: analytic " << r.worst_analytic << " vs numeric "
                          << r.worst_numeric;
    EXPECT_EQ(r.checked, tg_tensor_numel(x) + tg_params_numel(p));
    tg_tensor_free(x);
    tg_params_free(p);
}

INSTANTIATE_TEST_SUITE_P(BothDtypes, SmallCnn, ::testing::Values(TG_F64, TG_F32),
                         [](const ::testing::TestParamInfo<tg_dtype> &i) {
                             return std::string(tg_dtype_name(i.param));
                         });

TEST(Conv2dLayer, RegistersPyTorchNamesShapesAndInitBounds) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(1);
    tg_conv2d_layer c;
    tg_conv2d_layer_opts o = {};
    o.conv.groups = 3;
    ASSERT_EQ(tg_conv2d_layer_init(&c, p, "features.0", 6, 12, 3, 5, TG_F32, &rng, &o), TG_OK);
    tg_tensor *w = tg_params_find(p, "features.0.weight"), *b = tg_params_find(p, "features.0.bias");
    ASSERT_EQ(w, c.weight);
    ASSERT_EQ(b, c.bias);
    EXPECT_EQ(tg_tensor_ndim(w), 4);
    const int64_t want[4] = {12, 2, 3, 5};   // [Cout, Cin/groups, KH, KW]
    for (int i = 0; i < 4; i++) EXPECT_EQ(tg_tensor_dim(w, i), want[i]);
    EXPECT_EQ(tg_tensor_dim(b, 0), 12);
    const double bound = 1 / std::sqrt(2.0 * 3 * 5);   // fan_in = Cin/groups * KH * KW
    double wmax = 0, bmax = 0;
    for (int64_t i = 0; i < tg_tensor_numel(w); i++) wmax = std::max(wmax, std::fabs(tg_tensor_get(w, i)));
    for (int64_t i = 0; i < tg_tensor_numel(b); i++) bmax = std::max(bmax, std::fabs(tg_tensor_get(b, i)));
    EXPECT_TRUE(wmax <= bound && wmax > 0.8 * bound) << wmax << " vs bound " << bound;
    EXPECT_TRUE(bmax <= bound && bmax > 0.5 * bound) << bmax << " vs bound " << bound;
    tg_params_free(p);
}

TEST(Conv2dLayer, BadArgumentsAndUninitialisedLayersAreErrors) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(1);
    tg_conv2d_layer c = {};
    tg_conv2d_layer_opts o = {};
    o.conv.groups = 4;
    EXPECT_EQ(tg_conv2d_layer_init(&c, p, "c", 6, 8, 3, 3, TG_F64, &rng, &o), TG_ERR_ARG);
    EXPECT_NE(std::string(tg_last_error()).find("in 6, out 8, kernel 3x3, groups 4"), std::string::npos)
        << tg_last_error();
    EXPECT_EQ(tg_conv2d_layer_init(&c, p, "c", 6, 8, 0, 3, TG_F64, &rng, nullptr), TG_ERR_ARG);
    o.conv.groups = -1;
    EXPECT_EQ(tg_conv2d_layer_init(&c, p, "c", 6, 8, 3, 3, TG_F64, &rng, &o), TG_ERR_ARG);
    EXPECT_EQ(tg_params_count(p), 0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tape_tensor(tp, TG_F64, 4, (const int64_t[]){1, 6, 4, 4});
    EXPECT_EQ(tg_conv2d_layer_forward(tp, &c, x), nullptr);
    EXPECT_STREQ(tg_tape_error(tp), "conv2d_layer: layer is not initialised");
    tg_tape_free(tp);
    tg_params_free(p);
}

TEST(Conv2dLayer, ForwardErrorsNameTheShapes) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(1);
    tg_conv2d_layer c;
    ASSERT_EQ(tg_conv2d_layer_init(&c, p, "c", 3, 4, 3, 3, TG_F32, &rng, nullptr), TG_OK);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tape_tensor(tp, TG_F32, 4, (const int64_t[]){2, 5, 8, 8});
    EXPECT_EQ(tg_conv2d_layer_forward(tp, &c, x), nullptr);
    EXPECT_STREQ(tg_tape_error(tp),
                 "conv2d: input channels differ: x [2,5,8,8] has 5, w [4,3,3,3] takes 3 per group "
                 "x 1 groups");
    tg_tape_free(tp);
    tg_params_free(p);
}

}  // namespace
