// tests/nn/gtest_nn_gradcheck.cpp - every layer and recurrent cell against
// central differences (tg_gradcheck), in float64 and float32: single steps
// and unrolled sequences, with and without masks, both GRU conventions,
// bidirectional and stacked, dropout masks, the composed LSTM variants.
#include <gtest/gtest.h>

#include <string>
#include <vector>

extern "C" {
#include "tapegrad.h"
#include "tapegrad/nn.h"
}

namespace {

// ---- recurrent layers ------------------------------------------------------------
enum : unsigned {
    BIDIR = 1u,      // bidirectional
    MASKED = 2u,     // lengths {T, 2, 1}: padded steps in the batch
    STEP = 4u,       // one tg_rnn_cell_step on x [B, C] from a given state
    SEQ = 8u,        // return_sequences (else the last valid output)
};

struct RnnCase {
    const char *name;
    tg_rnn_kind kind;
    int layers;
    unsigned flags;
    tg_gru_variant gru;
    tg_merge merge;
    double dropout, recurrent_dropout;
    tg_act recurrent_activation;
};

constexpr tg_gru_variant AFTER = TG_GRU_RESET_AFTER, BEFORE = TG_GRU_RESET_BEFORE;
constexpr tg_merge CAT = TG_MERGE_CONCAT;
constexpr tg_act SIG = TG_ACT_SIGMOID;

const RnnCase kRnnCases[] = {
    {"Elman_single_step", TG_RNN_ELMAN, 1, STEP | SEQ, AFTER, CAT, 0, 0, SIG},
    {"Elman_unrolled", TG_RNN_ELMAN, 1, SEQ, AFTER, CAT, 0, 0, SIG},
    {"Elman_unrolled_masked_bidirectional", TG_RNN_ELMAN, 1, BIDIR | MASKED | SEQ, AFTER, CAT, 0, 0, SIG},
    {"Jordan_single_step", TG_RNN_JORDAN, 1, STEP | SEQ, AFTER, CAT, 0, 0, SIG},
    {"Jordan_unrolled_masked", TG_RNN_JORDAN, 1, MASKED | SEQ, AFTER, CAT, 0, 0, SIG},
    {"LSTM_single_step", TG_RNN_LSTM, 1, STEP | SEQ, AFTER, CAT, 0, 0, SIG},
    {"LSTM_unrolled", TG_RNN_LSTM, 1, SEQ, AFTER, CAT, 0, 0, SIG},
    {"LSTM_unrolled_last_output", TG_RNN_LSTM, 1, 0, AFTER, CAT, 0, 0, SIG},
    {"LSTM_unrolled_masked", TG_RNN_LSTM, 1, MASKED | SEQ, AFTER, CAT, 0, 0, SIG},
    {"LSTM_unrolled_masked_bidirectional_stacked", TG_RNN_LSTM, 2, BIDIR | MASKED | SEQ, AFTER, CAT,
     0, 0, SIG},
    {"LSTM_masked_bidirectional_last_output_summed", TG_RNN_LSTM, 1, BIDIR | MASKED, AFTER,
     TG_MERGE_SUM, 0, 0, SIG},
    {"LSTM_bidirectional_multiplied", TG_RNN_LSTM, 1, BIDIR | SEQ, AFTER, TG_MERGE_MUL, 0, 0, SIG},
    {"LSTM_bidirectional_averaged_stacked", TG_RNN_LSTM, 2, BIDIR | MASKED | SEQ, AFTER,
     TG_MERGE_AVE, 0, 0, SIG},
    {"LSTM_with_input_and_recurrent_dropout", TG_RNN_LSTM, 1, MASKED | SEQ, AFTER, CAT, 0.3, 0.3, SIG},
    {"LSTM_hard_sigmoid_gates", TG_RNN_LSTM, 1, SEQ, AFTER, CAT, 0, 0, TG_ACT_HARD_SIGMOID},
    {"PeepholeLSTM_single_step", TG_RNN_LSTM_PEEPHOLE, 1, STEP | SEQ, AFTER, CAT, 0, 0, SIG},
    {"PeepholeLSTM_unrolled_masked", TG_RNN_LSTM_PEEPHOLE, 1, MASKED | SEQ, AFTER, CAT, 0, 0, SIG},
    {"PrototypeLSTM_single_step", TG_RNN_LSTM_PROTOTYPE, 1, STEP | SEQ, AFTER, CAT, 0, 0, SIG},
    {"PrototypeLSTM_unrolled_masked_bidirectional", TG_RNN_LSTM_PROTOTYPE, 1, BIDIR | MASKED | SEQ,
     AFTER, CAT, 0, 0, SIG},
    {"GRU_reset_after_single_step", TG_RNN_GRU, 1, STEP | SEQ, AFTER, CAT, 0, 0, SIG},
    {"GRU_reset_before_single_step", TG_RNN_GRU, 1, STEP | SEQ, BEFORE, CAT, 0, 0, SIG},
    {"GRU_reset_after_unrolled_masked", TG_RNN_GRU, 1, MASKED | SEQ, AFTER, CAT, 0, 0, SIG},
    {"GRU_reset_before_unrolled_masked", TG_RNN_GRU, 1, MASKED | SEQ, BEFORE, CAT, 0, 0, SIG},
    {"GRU_reset_after_masked_bidirectional_stacked", TG_RNN_GRU, 2, BIDIR | MASKED | SEQ, AFTER, CAT,
     0, 0, SIG},
    {"GRU_reset_before_masked_bidirectional_stacked_last_output", TG_RNN_GRU, 2, BIDIR | MASKED,
     BEFORE, CAT, 0, 0, SIG},
    {"GRU_with_recurrent_dropout", TG_RNN_GRU, 1, SEQ, BEFORE, CAT, 0, 0.4, SIG},
};

constexpr int64_t B = 3, T = 4, C = 3, H = 4;

// The addresses of every parameter pointer of a layer, in a fixed order.
int param_slots(tg_rnn *r, tg_tensor **slots[]) {
    int n = 0;
    for (int l = 0; l < r->opts.num_layers; l++)
        for (int d = 0; d < r->num_dirs; d++) {
            tg_rnn_cell *c = &r->cell[l][d];
            tg_tensor **all[] = {&c->weight_ih, &c->weight_hh, &c->bias_ih, &c->bias_hh, &c->weight,
                                 &c->bias, &c->weight_out, &c->bias_out, &c->peephole};
            for (tg_tensor **s : all)
                if (*s) slots[n++] = s;
        }
    return n;
}

struct RnnRun {
    const RnnCase *c;
    tg_rnn r;          // its parameter pointers are replaced by the gradcheck inputs
};

// inputs: x, params..., [h0, c0 for a single step]
tg_tensor *run_rnn(tg_tape *tp, tg_tensor *const *in, void *user) {
    RnnRun *u = static_cast<RnnRun *>(user);
    tg_rnn r = u->r;
    tg_tensor **slots[64];
    int n = param_slots(&r, slots);
    for (int i = 0; i < n; i++) *slots[i] = in[1 + i];
    if ((u->c->flags & STEP)) {
        bool has_c = u->c->kind == TG_RNN_LSTM || u->c->kind == TG_RNN_LSTM_PEEPHOLE;
        tg_rnn_state prev = {in[1 + n], has_c ? in[2 + n] : nullptr}, next;
        tg_tensor *h = tg_rnn_cell_step(tp, &r.cell[0][0], in[0], &prev, &next);
        if (!next.c) return h;
        tg_tensor *both[2] = {next.h, next.c};
        return tg_concat(tp, 2, both, 1);
    }
    static const int64_t lengths[B] = {T, 2, 1};
    tg_rng rng = tg_rng_seeded(77);   // same dropout masks on every call
    tg_rnn_call call = {};
    call.lengths = (u->c->flags & MASKED) ? lengths : nullptr;
    call.rng = &rng;
    return tg_rnn_forward(tp, &r, in[0], &call, nullptr);
}

tg_tensor *random_tensor(tg_dtype dt, int ndim, const int64_t *shape, tg_rng *rng) {
    tg_tensor *t = tg_tensor_new(dt, ndim, shape);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, tg_rng_uniform(rng) * 2 - 1);
    return t;
}

struct RnnParam {
    int index;
    tg_dtype dtype;
};

class RecurrentLayer : public ::testing::TestWithParam<RnnParam> {};

TEST_P(RecurrentLayer, GradientMatchesFiniteDifferences) {
    const RnnCase &c = kRnnCases[GetParam().index];
    tg_dtype dt = GetParam().dtype;
    tg_rnn_opts o = tg_rnn_opts_default(c.kind, C, H);
    o.num_layers = c.layers;
    o.bidirectional = (c.flags & BIDIR) != 0;
    o.return_sequences = (c.flags & SEQ) != 0;
    o.gru_variant = c.gru;
    o.merge = c.merge;
    o.dropout = c.dropout;
    o.recurrent_dropout = c.recurrent_dropout;
    o.recurrent_activation = c.recurrent_activation;
    if (c.kind == TG_RNN_JORDAN) o.output_size = 2;
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(1000u + (uint64_t)GetParam().index);
    RnnRun run{&c, {}};
    ASSERT_EQ(tg_rnn_init(&run.r, p, "rnn", &o, dt, &rng), TG_OK);
    tg_tensor **slots[64];
    int n = param_slots(&run.r, slots);
    std::vector<tg_tensor *> in;
    if ((c.flags & STEP)) {
        int64_t xs[2] = {B, C};
        in.push_back(random_tensor(dt, 2, xs, &rng));
    } else {
        int64_t xs[3] = {B, T, C};
        in.push_back(random_tensor(dt, 3, xs, &rng));
    }
    for (int i = 0; i < n; i++) {
        tg_tensor *w = tg_tensor_clone(*slots[i], dt);
        // biases drawn too, so the gates do not all start at the same point
        for (int64_t j = 0; j < tg_tensor_numel(w); j++)
            if (tg_tensor_ndim(w) == 1) tg_tensor_set(w, j, tg_rng_uniform(&rng) - 0.5);
        in.push_back(w);
    }
    if ((c.flags & STEP)) {
        int64_t F = c.kind == TG_RNN_JORDAN ? 2 : H;
        int64_t hs[2] = {B, F}, cs[2] = {B, H};
        in.push_back(random_tensor(dt, 2, hs, &rng));
        if (c.kind == TG_RNN_LSTM || c.kind == TG_RNN_LSTM_PEEPHOLE)
            in.push_back(random_tensor(dt, 2, cs, &rng));
    }
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(run_rnn, &run, (int)in.size(), in.data(), nullptr, &rep);
    for (tg_tensor *t : in) tg_tensor_free(t);
    tg_params_free(p);
    ASSERT_EQ(st, TG_OK) << rep.message;
    EXPECT_GT(rep.checked, 0);
    EXPECT_TRUE(rep.passed) << c.name << " in " << tg_dtype_name(dt) << ": max abs err "
                            << rep.max_abs_err << " at input " << rep.worst_input << "["
                            << rep.worst_index << "]: analytic " << rep.worst_analytic
                            << " vs numeric " << rep.worst_numeric;
}

std::vector<RnnParam> rnn_params() {
    std::vector<RnnParam> v;
    for (int i = 0; i < (int)(sizeof kRnnCases / sizeof kRnnCases[0]); i++) {
        v.push_back({i, TG_F64});
        v.push_back({i, TG_F32});
    }
    return v;
}

std::string rnn_name(const ::testing::TestParamInfo<RnnParam> &info) {
    return std::string(kRnnCases[info.param.index].name) + "_in_" + tg_dtype_name(info.param.dtype);
}

INSTANTIATE_TEST_SUITE_P(EveryCell, RecurrentLayer, ::testing::ValuesIn(rnn_params()), rnn_name);

// ---- feed-forward layers ------------------------------------------------------------
struct LayerCase {
    const char *name;
    // builds the layer's parameters in p; fills inputs (x first); returns the function
    tg_fn (*make)(tg_params *p, tg_dtype dt, tg_rng *rng, std::vector<tg_tensor *> &in);
};

tg_tensor *clone_param(tg_params *p, int i, tg_dtype dt) { return tg_tensor_clone(tg_params_at(p, i), dt); }

tg_tensor *linear_fn(tg_tape *tp, tg_tensor *const *in, void *) {
    tg_linear l = {in[1], in[2], 3, 2, TG_ACT_TANH};
    return tg_linear_forward(tp, &l, in[0]);
}
tg_fn linear_make(tg_params *p, tg_dtype dt, tg_rng *rng, std::vector<tg_tensor *> &in) {
    tg_linear l;
    tg_linear_init(&l, p, "fc", 3, 2, dt, rng, nullptr);
    int64_t xs[3] = {2, 2, 3};
    in = {random_tensor(dt, 3, xs, rng), clone_param(p, 0, dt), random_tensor(dt, 1, xs + 1, rng)};
    return linear_fn;
}

tg_tensor *layer_norm_fn(tg_tape *tp, tg_tensor *const *in, void *) {
    tg_layer_norm ln = {in[1], in[2], 5, 1e-5};
    return tg_layer_norm_forward(tp, &ln, in[0]);
}
tg_fn layer_norm_make(tg_params *, tg_dtype dt, tg_rng *rng, std::vector<tg_tensor *> &in) {
    int64_t xs[2] = {3, 5};
    in = {random_tensor(dt, 2, xs, rng), random_tensor(dt, 1, xs + 1, rng),
          random_tensor(dt, 1, xs + 1, rng)};
    return layer_norm_fn;
}

tg_tensor *embedding_fn(tg_tape *tp, tg_tensor *const *in, void *) {
    tg_embedding_layer e = {in[0], 5, 3, 1, false};
    return tg_embedding_layer_forward(tp, &e, in[1]);
}
tg_fn embedding_make(tg_params *, tg_dtype dt, tg_rng *rng, std::vector<tg_tensor *> &in) {
    int64_t ws[2] = {5, 3}, is[2] = {2, 3};
    double ids[6] = {0, 1, 4, 1, 1, 2};   // id 1 is the padding index
    in = {random_tensor(dt, 2, ws, rng), tg_tensor_from(TG_I32, 2, is, ids)};
    return embedding_fn;
}

tg_tensor *spatial_dropout_fn(tg_tape *tp, tg_tensor *const *in, void *) {
    tg_rng rng = tg_rng_seeded(5);
    return tg_spatial_dropout1d(tp, in[0], 0.4, &rng);
}
tg_fn spatial_dropout_make(tg_params *, tg_dtype dt, tg_rng *rng, std::vector<tg_tensor *> &in) {
    int64_t xs[3] = {2, 4, 3};
    in = {random_tensor(dt, 3, xs, rng)};
    return spatial_dropout_fn;
}

tg_tensor *conv_fn(tg_tape *tp, tg_tensor *const *in, void *) {
    tg_conv1d_layer c = {};
    c.weight = in[1];
    c.bias = in[2];
    c.in = 3;
    c.out = 2;
    c.kernel = 2;
    c.channels_last = true;
    c.act = TG_ACT_TANH;
    return tg_global_max_pool1d(tp, tg_transpose(tp, tg_conv1d_layer_forward(tp, &c, in[0]), 1, 2));
}
tg_fn conv_make(tg_params *, tg_dtype dt, tg_rng *rng, std::vector<tg_tensor *> &in) {
    int64_t xs[3] = {2, 5, 3}, ws[3] = {2, 3, 2}, bs[1] = {2};
    in = {random_tensor(dt, 3, xs, rng), random_tensor(dt, 3, ws, rng), random_tensor(dt, 1, bs, rng)};
    return conv_fn;
}

tg_tensor *pad_fn(tg_tape *tp, tg_tensor *const *in, void *) {
    tg_tensor *x = tg_pad_sequences(tp, 2, in, nullptr);
    return tg_mul(tp, x, x);
}
tg_fn pad_make(tg_params *, tg_dtype dt, tg_rng *rng, std::vector<tg_tensor *> &in) {
    int64_t a[2] = {3, 2}, b[2] = {1, 2};
    in = {random_tensor(dt, 2, a, rng), random_tensor(dt, 2, b, rng)};
    return pad_fn;
}

const LayerCase kLayerCases[] = {
    {"Linear_tanh_on_3d_input", linear_make},
    {"LayerNorm", layer_norm_make},
    {"Embedding_with_padding_index", embedding_make},
    {"SpatialDropout1D", spatial_dropout_make},
    {"Conv1D_channels_last_then_global_max_pool", conv_make},
    {"pad_sequences", pad_make},
};

class Layer : public ::testing::TestWithParam<RnnParam> {};

TEST_P(Layer, GradientMatchesFiniteDifferences) {
    const LayerCase &c = kLayerCases[GetParam().index];
    tg_dtype dt = GetParam().dtype;
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(2000u + (uint64_t)GetParam().index);
    std::vector<tg_tensor *> in;
    tg_fn fn = c.make(p, dt, &rng, in);
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(fn, nullptr, (int)in.size(), in.data(), nullptr, &rep);
    for (tg_tensor *t : in) tg_tensor_free(t);
    tg_params_free(p);
    ASSERT_EQ(st, TG_OK) << rep.message;
    EXPECT_GT(rep.checked, 0);
    EXPECT_TRUE(rep.passed) << c.name << ": max abs err " << rep.max_abs_err << " at input "
                            << rep.worst_input << "[" << rep.worst_index << "]";
}

std::vector<RnnParam> layer_params() {
    std::vector<RnnParam> v;
    for (int i = 0; i < (int)(sizeof kLayerCases / sizeof kLayerCases[0]); i++) {
        v.push_back({i, TG_F64});
        v.push_back({i, TG_F32});
    }
    return v;
}

std::string layer_name(const ::testing::TestParamInfo<RnnParam> &info) {
    return std::string(kLayerCases[info.param.index].name) + "_in_" + tg_dtype_name(info.param.dtype);
}

INSTANTIATE_TEST_SUITE_P(EveryLayer, Layer, ::testing::ValuesIn(layer_params()), layer_name);

}  // namespace
