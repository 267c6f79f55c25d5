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
// Checked with tg_gradcheck_params: the layer is used as built, and the input
// (and, for a single step, the state) are registered next to the parameters
// so their gradients are checked too.
enum : unsigned {
    BIDIR = 1u,       // bidirectional
    MASKED = 2u,      // lengths {T, 2, 1}: padded steps in the batch
    STEP = 4u,        // one tg_rnn_cell_step on x [B, C] from a given state
    SEQ = 8u,         // return_sequences (else the last valid output)
    TIME_MAJOR = 16u, // x [T, B, C]
};

struct RnnCase {
    const char *name;
    const tg_cell *cell;
    int layers;
    unsigned flags;
    tg_merge merge;
    double dropout, recurrent_dropout, layer_dropout;
    tg_act recurrent_activation;
};

constexpr tg_merge CAT = TG_MERGE_CONCAT;
constexpr tg_act SIG = TG_ACT_SIGMOID;
const tg_cell *const ELMAN = &tg_cell_elman, *const JORDAN = &tg_cell_jordan,
                     *const LSTM = &tg_cell_lstm, *const PEEP = &tg_cell_peephole_lstm,
                     *const PROTO = &tg_cell_prototype_lstm, *const GRU = &tg_cell_gru,
                     *const GRU_BEFORE = &tg_cell_gru_reset_before;

const RnnCase kRnnCases[] = {
    {"Elman_single_step", ELMAN, 1, STEP | SEQ, CAT, 0, 0, 0, SIG},
    {"Elman_unrolled", ELMAN, 1, SEQ, CAT, 0, 0, 0, SIG},
    {"Elman_unrolled_masked_bidirectional", ELMAN, 1, BIDIR | MASKED | SEQ, CAT, 0, 0, 0, SIG},
    {"Jordan_single_step", JORDAN, 1, STEP | SEQ, CAT, 0, 0, 0, SIG},
    {"Jordan_unrolled_masked", JORDAN, 1, MASKED | SEQ, CAT, 0, 0, 0, SIG},
    {"LSTM_single_step", LSTM, 1, STEP | SEQ, CAT, 0, 0, 0, SIG},
    {"LSTM_unrolled", LSTM, 1, SEQ, CAT, 0, 0, 0, SIG},
    {"LSTM_unrolled_last_output", LSTM, 1, 0, CAT, 0, 0, 0, SIG},
    {"LSTM_unrolled_masked", LSTM, 1, MASKED | SEQ, CAT, 0, 0, 0, SIG},
    {"LSTM_unrolled_masked_bidirectional_stacked", LSTM, 2, BIDIR | MASKED | SEQ, CAT, 0, 0, 0, SIG},
    {"LSTM_masked_bidirectional_last_output_summed", LSTM, 1, BIDIR | MASKED, TG_MERGE_SUM, 0, 0, 0,
     SIG},
    {"LSTM_bidirectional_multiplied", LSTM, 1, BIDIR | SEQ, TG_MERGE_MUL, 0, 0, 0, SIG},
    {"LSTM_bidirectional_averaged_stacked", LSTM, 2, BIDIR | MASKED | SEQ, TG_MERGE_AVE, 0, 0, 0,
     SIG},
    {"LSTM_with_input_and_recurrent_dropout", LSTM, 1, MASKED | SEQ, CAT, 0.3, 0.3, 0, SIG},
    {"LSTM_stacked_with_pytorch_layer_dropout", LSTM, 2, MASKED | SEQ, CAT, 0, 0, 0.4, SIG},
    {"LSTM_time_major_masked_bidirectional", LSTM, 1, TIME_MAJOR | BIDIR | MASKED | SEQ, CAT, 0, 0,
     0, SIG},
    {"LSTM_hard_sigmoid_gates", LSTM, 1, SEQ, CAT, 0, 0, 0, TG_ACT_HARD_SIGMOID},
    {"PeepholeLSTM_single_step", PEEP, 1, STEP | SEQ, CAT, 0, 0, 0, SIG},
    {"PeepholeLSTM_unrolled_masked", PEEP, 1, MASKED | SEQ, CAT, 0, 0, 0, SIG},
    {"PrototypeLSTM_single_step", PROTO, 1, STEP | SEQ, CAT, 0, 0, 0, SIG},
    {"PrototypeLSTM_unrolled_masked_bidirectional", PROTO, 1, BIDIR | MASKED | SEQ, CAT, 0, 0, 0,
     SIG},
    {"GRU_reset_after_single_step", GRU, 1, STEP | SEQ, CAT, 0, 0, 0, SIG},
    {"GRU_reset_before_single_step", GRU_BEFORE, 1, STEP | SEQ, CAT, 0, 0, 0, SIG},
    {"GRU_reset_after_unrolled_masked", GRU, 1, MASKED | SEQ, CAT, 0, 0, 0, SIG},
    {"GRU_reset_before_unrolled_masked", GRU_BEFORE, 1, MASKED | SEQ, CAT, 0, 0, 0, SIG},
    {"GRU_reset_after_masked_bidirectional_stacked", GRU, 2, BIDIR | MASKED | SEQ, CAT, 0, 0, 0,
     SIG},
    {"GRU_reset_before_masked_bidirectional_stacked_last_output", GRU_BEFORE, 2, BIDIR | MASKED,
     CAT, 0, 0, 0, SIG},
    {"GRU_with_recurrent_dropout", GRU_BEFORE, 1, SEQ, CAT, 0, 0.4, 0, SIG},
};

constexpr int64_t B = 3, T = 4, C = 3, H = 4;

tg_tensor *random_tensor(tg_dtype dt, int ndim, const int64_t *shape, tg_rng *rng) {
    tg_tensor *t = tg_tensor_new(dt, ndim, shape);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, tg_rng_uniform(rng) * 2 - 1);
    return t;
}

struct RnnRun {
    const RnnCase *c;
    tg_rnn r;
    tg_tensor *x;
    tg_rnn_state prev;   // single step: the given state
};

tg_tensor *run_rnn(tg_tape *tp, void *user) {
    RnnRun *u = static_cast<RnnRun *>(user);
    if ((u->c->flags & STEP)) {
        tg_rnn_state next;
        const tg_rnn_cell *cell = tg_rnn_cell_at(&u->r, 0, 0);
        tg_tensor *h = tg_rnn_cell_step(tp, cell, u->x, &u->prev, &next);
        if (!next.c) return h;
        tg_tensor *both[2] = {next.h, next.c};
        return tg_concat(tp, 2, both, 1);
    }
    static const int64_t lengths[B] = {T, 2, 1};
    tg_rng rng = tg_rng_seeded(77);   // same dropout masks on every call
    tg_rnn_call call = {};
    call.lengths = (u->c->flags & MASKED) ? lengths : nullptr;
    call.rng = &rng;
    return tg_rnn_forward(tp, &u->r, u->x, &call, nullptr, 0);
}

// Registers a caller-owned tensor that requires grad, so the check covers it.
tg_tensor *checked_input(tg_params *p, const char *name, tg_tensor *t) {
    tg_tensor_set_requires_grad(t, true);
    EXPECT_EQ(tg_params_add(p, name, t), TG_OK) << tg_last_error();
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
    tg_rnn_opts o = tg_rnn_opts_default(c.cell, C, H);
    o.num_layers = c.layers;
    o.bidirectional = (c.flags & BIDIR) != 0;
    o.return_sequences = (c.flags & SEQ) != 0;
    o.time_major = (c.flags & TIME_MAJOR) != 0;
    o.merge = c.merge;
    o.dropout = c.dropout;
    o.recurrent_dropout = c.recurrent_dropout;
    o.layer_dropout = c.layer_dropout;
    o.recurrent_activation = c.recurrent_activation;
    if (c.cell == JORDAN) o.output_size = 2;
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(1000u + (uint64_t)GetParam().index);
    RnnRun run{&c, {}, nullptr, {}};
    ASSERT_EQ(tg_rnn_init(&run.r, p, "rnn", &o, dt, &rng), TG_OK) << tg_last_error();
    // biases drawn too, so the gates do not all start at the same point
    for (int i = 0; i < tg_params_count(p); i++) {
        tg_tensor *w = tg_params_at(p, i);
        for (int64_t j = 0; tg_tensor_ndim(w) == 1 && j < tg_tensor_numel(w); j++)
            tg_tensor_set(w, j, tg_rng_uniform(&rng) - 0.5);
    }
    std::vector<tg_tensor *> mine;   // caller-owned: x and the given state
    int64_t xs[3] = {B, T, C}, txs[3] = {T, B, C}, sx[2] = {B, C};
    run.x = (c.flags & STEP) ? random_tensor(dt, 2, sx, &rng)
                             : random_tensor(dt, 3, (c.flags & TIME_MAJOR) ? txs : xs, &rng);
    mine.push_back(checked_input(p, "x", run.x));
    if ((c.flags & STEP)) {
        const tg_rnn_cell *cell = tg_rnn_cell_at(&run.r, 0, 0);
        for (int k = 0; k < cell->layout.n_states; k++) {
            int64_t ss[2] = {B, cell->layout.state_size[k]};
            run.prev.s[k] = random_tensor(dt, 2, ss, &rng);
            mine.push_back(checked_input(p, cell->layout.state_name[k], run.prev.s[k]));
        }
    }
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck_params(p, run_rnn, &run, 0, nullptr, nullptr, &rep);
    tg_rnn_free(&run.r);
    tg_params_free(p);
    for (tg_tensor *t : mine) tg_tensor_free(t);
    ASSERT_EQ(st, TG_OK) << rep.message;
    EXPECT_GT(rep.checked, 0);
    EXPECT_TRUE(rep.passed) << c.name << " in " << tg_dtype_name(dt) << ": " << rep.message;
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

// the function form, weight and bias from the inputs (none registered)
tg_tensor *layer_norm_fn_fn(tg_tape *tp, tg_tensor *const *in, void *) {
    return tg_layer_norm_fn(tp, in[0], in[1], nullptr, 1e-3);
}
tg_fn layer_norm_fn_make(tg_params *, tg_dtype dt, tg_rng *rng, std::vector<tg_tensor *> &in) {
    int64_t xs[3] = {2, 2, 6};
    in = {random_tensor(dt, 3, xs, rng), random_tensor(dt, 1, xs + 2, rng)};
    return layer_norm_fn_fn;
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
    {"layer_norm_fn_weight_only", layer_norm_fn_make},
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
