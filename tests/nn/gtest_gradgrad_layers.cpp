// tests/nn/gtest_gradgrad_layers.cpp - second derivatives through whole layers:
// tg_gradgradcheck on an LSTM, a GRU (unrolled, masked) and multi-head
// self-attention (key padding mask), in float64 and float32, with respect to
// the input x. Every op of the layer (gates, state carry by tg_where, weight
// products, softmax) is on the way, so each op's vjp_graph and the VJPs of
// what it records are checked together. The mixed second derivatives (with
// respect to the weights) are checked through a gradient penalty: d/dW of
// |dL/dx|^2 against central differences, in float64.
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <string>

extern "C" {
#include "tapegrad.h"
#include "tapegrad/nn.h"
}

namespace {

constexpr int64_t B = 2, T = 3, C = 3, H = 3;

enum class Kind { LSTM, GRU, MHA };

// The same layer in both dtypes (float64 values copied into the float32 one),
// so the float64 differences of a float32 check run the same function.
struct Layer {
    Kind kind;
    tg_params *p[2] = {};
    tg_rnn rnn[2] = {};
    tg_mha mha[2] = {};
    tg_tensor *pad = nullptr;    // MHA key padding mask [B, T]
};

int slot(tg_dtype dt) { return dt == TG_F64 ? 1 : 0; }

tg_tensor *run_layer(tg_tape *tp, tg_tensor *const *in, void *user) {
    Layer *l = static_cast<Layer *>(user);
    int s = slot(tg_tensor_dtype(in[0]));
    if (l->kind == Kind::MHA) {
        tg_mha_call call = {};
        call.key_padding_mask = l->pad;
        return tg_mha_forward(tp, &l->mha[s], in[0], nullptr, &call);
    }
    static const int64_t lengths[B] = {T, 2};
    tg_rnn_call call = {};
    call.lengths = lengths;
    return tg_rnn_forward(tp, &l->rnn[s], in[0], &call, nullptr, 0);
}

void build(Layer *l, Kind kind) {
    l->kind = kind;
    for (int s = 1; s >= 0; s--) {
        tg_dtype dt = s ? TG_F64 : TG_F32;
        tg_rng rng = tg_rng_seeded(5);
        l->p[s] = tg_params_new();
        if (kind == Kind::MHA) {
            ASSERT_EQ(tg_mha_init(&l->mha[s], l->p[s], "attn", 4, 2, dt, &rng, nullptr), TG_OK);
        } else {
            tg_rnn_opts o = tg_rnn_opts_default(kind == Kind::LSTM ? &tg_cell_lstm : &tg_cell_gru, C, H);
            o.return_sequences = true;
            ASSERT_EQ(tg_rnn_init(&l->rnn[s], l->p[s], "rnn", &o, dt, &rng), TG_OK);
        }
        for (int i = 0; i < tg_params_count(l->p[s]); i++) {
            tg_tensor *w = tg_params_at(l->p[s], i);
            for (int64_t j = 0; j < tg_tensor_numel(w); j++)
                tg_tensor_set(w, j, s ? tg_rng_uniform(&rng) - 0.5
                                      : tg_tensor_get(tg_params_at(l->p[1], i), j));
        }
    }
    if (kind == Kind::MHA) {
        int64_t ps[2] = {B, T};
        l->pad = tg_tensor_new(TG_F32, 2, ps);
        tg_tensor_set(l->pad, 1 * T + 2, 1.0);   // batch 1 ignores its last key
    }
}

void destroy(Layer *l) {
    for (int s = 0; s < 2; s++) {
        if (l->kind != Kind::MHA) tg_rnn_free(&l->rnn[s]);
        tg_params_free(l->p[s]);
    }
    tg_tensor_free(l->pad);
}

struct Param {
    Kind kind;
    tg_dtype dtype;
};

const char *kind_name(Kind k) {
    return k == Kind::LSTM ? "LSTM" : k == Kind::GRU ? "GRU" : "MultiHeadAttention";
}

void PrintTo(const Param &p, std::ostream *os) {
    *os << kind_name(p.kind) << " in " << tg_dtype_name(p.dtype);
}

class LayerSecondOrder : public ::testing::TestWithParam<Param> {};

TEST_P(LayerSecondOrder, GradientOfGradientMatchesFiniteDifferences) {
    Layer l;
    build(&l, GetParam().kind);
    int64_t xs[3] = {B, T, GetParam().kind == Kind::MHA ? 4 : C};
    tg_tensor *x = tg_tensor_new(GetParam().dtype, 3, xs);
    tg_rng rng = tg_rng_seeded(9);
    for (int64_t i = 0; i < tg_tensor_numel(x); i++) tg_tensor_set(x, i, 2 * tg_rng_uniform(&rng) - 1);
    tg_gradcheck_report r;
    tg_status st = tg_gradgradcheck(run_layer, &l, 1, &x, nullptr, &r);
    tg_tensor_free(x);
    destroy(&l);
    ASSERT_EQ(st, TG_OK) << r.message;
    EXPECT_GT(r.checked, 0);
    EXPECT_TRUE(r.passed) << r.message << " max abs err " << r.max_abs_err << " at x["
                          << r.worst_index << "]: analytic " << r.worst_analytic << " vs numeric "
                          << r.worst_numeric;
}

// |d mse(layer(x), 0) / dx|^2 with the float64 layer, recorded (create_graph).
tg_tensor *penalty(tg_tape *tp, Layer *l, tg_tensor *x) {
    tg_tensor *y = run_layer(tp, &x, l);
    tg_tensor *zero = y ? tg_tape_tensor(tp, TG_F64, tg_tensor_ndim(y), tg_tensor_shape(y)) : nullptr;
    tg_tensor *loss = tg_mse(tp, y, zero), *gx = nullptr;
    tg_grad_opts rec = {true};
    if (!loss || tg_grad(tp, loss, nullptr, 1, &x, &gx, &rec) != TG_OK) return nullptr;
    return tg_sum(tp, tg_mul(tp, gx, gx));
}

void check_penalty_gradient(Kind kind) {
    Layer l;
    build(&l, kind);
    int64_t xs[3] = {B, T, kind == Kind::MHA ? 4 : C};
    tg_tensor *x = tg_tensor_new(TG_F64, 3, xs);
    tg_rng rng = tg_rng_seeded(10);
    for (int64_t i = 0; i < tg_tensor_numel(x); i++) tg_tensor_set(x, i, 2 * tg_rng_uniform(&rng) - 1);
    tg_tensor_set_requires_grad(x, true);
    tg_tape *tp = tg_tape_new();
    tg_params_zero_grad(l.p[1]);
    tg_tensor *pen = penalty(tp, &l, x);
    ASSERT_NE(pen, nullptr) << tg_tape_error(tp);
    ASSERT_EQ(tg_backward(tp, pen), TG_OK) << tg_tape_error(tp);
    double worst = 0, eps = 1e-6;
    int checked = 0;
    for (int i = 0; i < tg_params_count(l.p[1]); i++) {
        tg_tensor *w = tg_params_at(l.p[1], i);
        for (int64_t j = 0; j < tg_tensor_numel(w); j += 3, checked++) {
            double keep = tg_tensor_get(w, j), f[2];
            for (int side = 0; side < 2; side++) {
                tg_tensor_set(w, j, keep + (side ? -eps : eps));
                tg_tape *t2 = tg_tape_new();
                tg_tensor *p2 = penalty(t2, &l, x);
                f[side] = p2 ? tg_tensor_item(p2) : NAN;
                tg_tape_free(t2);
            }
            tg_tensor_set(w, j, keep);
            double num = (f[0] - f[1]) / (2 * eps), ana = tg_tensor_grad_get(w, j);
            double err = std::fabs(ana - num) / (1e-7 + std::fabs(num));
            if (!(err <= worst)) worst = err;   // NaN counts as the worst
        }
    }
    tg_tape_free(tp);
    tg_tensor_free(x);
    destroy(&l);
    EXPECT_GT(checked, 10);
    EXPECT_TRUE(std::isfinite(worst) && worst < 1e-4) << "worst relative error " << worst;
}

TEST(LayerPenalty, LstmPenaltyGradientWrtWeightsMatchesDifferences) { check_penalty_gradient(Kind::LSTM); }
TEST(LayerPenalty, GruPenaltyGradientWrtWeightsMatchesDifferences) { check_penalty_gradient(Kind::GRU); }
TEST(LayerPenalty, AttentionPenaltyGradientWrtWeightsMatchesDifferences) {
    check_penalty_gradient(Kind::MHA);
}

std::string name(const ::testing::TestParamInfo<Param> &info) {
    return std::string(kind_name(info.param.kind)) + "_masked_in_" + tg_dtype_name(info.param.dtype);
}

INSTANTIATE_TEST_SUITE_P(
    Layers, LayerSecondOrder,
    ::testing::Values(Param{Kind::LSTM, TG_F64}, Param{Kind::LSTM, TG_F32}, Param{Kind::GRU, TG_F64},
                      Param{Kind::GRU, TG_F32}, Param{Kind::MHA, TG_F64}, Param{Kind::MHA, TG_F32}),
    name);

}  // namespace
