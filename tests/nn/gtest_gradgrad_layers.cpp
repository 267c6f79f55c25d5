// tests/nn/gtest_gradgrad_layers.cpp - second derivatives through whole layers:
// tg_gradgradcheck on an LSTM, a GRU (unrolled, masked) and multi-head
// self-attention (key padding mask), in float64 and float32, with respect to
// the input x. Every op of the layer (gates, state carry by tg_where, weight
// products, softmax) is on the way, so each op's vjp_graph and the VJPs of
// what it records are checked together.
#include <gtest/gtest.h>

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

std::string name(const ::testing::TestParamInfo<Param> &info) {
    const char *k = info.param.kind == Kind::LSTM ? "LSTM" : info.param.kind == Kind::GRU ? "GRU" : "MultiHeadAttention";
    return std::string(k) + "_masked_in_" + tg_dtype_name(info.param.dtype);
}

INSTANTIATE_TEST_SUITE_P(
    Layers, LayerSecondOrder,
    ::testing::Values(Param{Kind::LSTM, TG_F64}, Param{Kind::LSTM, TG_F32}, Param{Kind::GRU, TG_F64},
                      Param{Kind::GRU, TG_F32}, Param{Kind::MHA, TG_F64}, Param{Kind::MHA, TG_F32}),
    name);

}  // namespace
