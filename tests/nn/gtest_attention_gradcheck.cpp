// tests/nn/gtest_attention_gradcheck.cpp - gradcheck of attention (with padding,
// causal and fully masked rows), Bahdanau / Luong scores, multi-head attention,
// transformer encoder / decoder blocks (pre- and post-norm) and the seq2seq loss,
// in float64 and float32. Every parameter is a gradcheck input: the function
// points a copy of the layer at the inputs gradcheck hands it.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "tapegrad.h"
#include "tapegrad/nn_attention.h"
#include "tapegrad/nn_seq2seq.h"
}

namespace {

struct Ctx {
    tg_dtype dt = TG_F64;
    tg_params *p = nullptr;
    std::vector<tg_tensor *> data;   // caller-owned inputs before the parameters
    tg_attention att{};
    tg_mha mha{};
    tg_transformer_block blk{};
    tg_seq2seq s2s{};
    std::vector<int64_t> lengths;    // padding of the keys (or of the targets)
    std::vector<int64_t> lengths2;   // padding of the memory (decoder blocks)
    bool causal = false;
    bool step_query = false;         // Bahdanau / Luong: one decoder step [B, Dq]
    mutable std::vector<bool> bound; // parameter k was found in the layer (else it went unchecked)
};

// A copy of layer m in which every tg_tensor* member that points at registry
// parameter k points at gradcheck input n_data + k instead. The layers are
// plain C structs, so scanning their pointer-sized slots finds every member,
// nested ones included, without listing them.
template <class M>
M rebound(const M &m, const Ctx *c, tg_tensor *const *in) {
    M copy = m;
    unsigned char *bytes = reinterpret_cast<unsigned char *>(&copy);
    size_t nd = c->data.size();
    for (size_t off = 0; off + sizeof(tg_tensor *) <= sizeof copy; off += alignof(tg_tensor *)) {
        tg_tensor *ptr;
        std::memcpy(&ptr, bytes + off, sizeof ptr);
        for (int k = 0; ptr && k < tg_params_count(c->p); k++)
            if (ptr == tg_params_at(c->p, k)) {
                std::memcpy(bytes + off, &in[nd + k], sizeof ptr);
                c->bound[(size_t)k] = true;
                break;
            }
    }
    return copy;
}

tg_tensor *rand_tensor(tg_dtype dt, std::vector<int64_t> shape, tg_rng *rng) {
    tg_tensor *t = tg_tensor_new(dt, (int)shape.size(), shape.data());
    for (int64_t i = 0; t && i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, tg_rng_normal(rng));
    return t;
}

tg_tensor *id_tensor(std::vector<int64_t> shape, std::vector<double> v) {
    return tg_tensor_from(TG_I32, (int)shape.size(), shape.data(), v.data());
}

tg_tensor *pad_mask(tg_tape *tp, tg_tensor *like, const std::vector<int64_t> &len, int64_t Tk) {
    if (len.empty()) return nullptr;
    return tg_padding_mask(tp, tg_tensor_dtype(like), (int64_t)len.size(), Tk, len.data());
}

// ---- functions under check ----------------------------------------------------------------
tg_tensor *f_sdpa(tg_tape *tp, tg_tensor *const *in, void *user) {
    const Ctx *c = static_cast<const Ctx *>(user);
    tg_tensor *keep = pad_mask(tp, in[0], c->lengths, tg_tensor_dim(in[1], -2));
    if (keep && tg_tensor_ndim(in[0]) == 4)   // [B, 1, Tk] -> [B, 1, 1, Tk] for the head axis
        keep = tg_reshape(tp, keep, 4, std::vector<int64_t>{tg_tensor_dim(keep, 0), 1, 1,
                                                            tg_tensor_dim(keep, 2)}.data());
    tg_sdpa_opts o{};
    o.mask = keep;
    o.causal = c->causal;
    return tg_scaled_dot_product_attention(tp, in[0], in[1], in[2], &o, nullptr);
}

tg_tensor *f_masked_softmax(tg_tape *tp, tg_tensor *const *in, void *user) {
    const Ctx *c = static_cast<const Ctx *>(user);
    tg_tensor *keep = pad_mask(tp, in[0], c->lengths, tg_tensor_dim(in[0], -1));   // [R, 1, C]
    tg_tensor *s = tg_reshape(tp, in[0], 3, std::vector<int64_t>{tg_tensor_dim(in[0], 0), 1,
                                                                 tg_tensor_dim(in[0], 1)}.data());
    return tg_masked_softmax(tp, s, keep);
}

tg_tensor *f_score_attention(tg_tape *tp, tg_tensor *const *in, void *user) {
    const Ctx *c = static_cast<const Ctx *>(user);
    tg_attention a = rebound(c->att, c, in);
    tg_tensor *keep = pad_mask(tp, in[0], c->lengths, tg_tensor_dim(in[1], 1));
    if (keep && c->step_query)   // the [B, Tk] form a decoder step may pass
        keep = tg_reshape(tp, keep, 2, std::vector<int64_t>{tg_tensor_dim(keep, 0),
                                                            tg_tensor_dim(keep, 2)}.data());
    tg_tensor *w;
    tg_tensor *ctx = tg_attention_forward(tp, &a, in[0], in[1], in[2], keep, &w);
    // the weights are an output too: check them through the context and directly
    return tg_concat(tp, 2, std::vector<tg_tensor *>{ctx, w}.data(), -1);
}

tg_tensor *f_mha(tg_tape *tp, tg_tensor *const *in, void *user) {
    const Ctx *c = static_cast<const Ctx *>(user);
    tg_mha m = rebound(c->mha, c, in);
    tg_tensor *mem = c->data.size() > 1 ? in[1] : nullptr;
    tg_mha_call call{};
    call.mask = pad_mask(tp, in[0], c->lengths, tg_tensor_dim(mem ? mem : in[0], 1));
    call.causal = c->causal;
    return tg_mha_forward(tp, &m, in[0], mem, &call);
}

tg_tensor *f_block(tg_tape *tp, tg_tensor *const *in, void *user) {
    const Ctx *c = static_cast<const Ctx *>(user);
    tg_transformer_block b = rebound(c->blk, c, in);
    tg_tensor *keep = pad_mask(tp, in[0], c->lengths, tg_tensor_dim(in[0], 1));
    if (!b.decoder) return tg_transformer_encoder_forward(tp, &b, in[0], keep, nullptr);
    tg_tensor *mkeep = pad_mask(tp, in[0], c->lengths2, tg_tensor_dim(in[1], 1));
    return tg_transformer_decoder_forward(tp, &b, in[0], in[1], keep, mkeep, nullptr);
}

tg_tensor *f_seq2seq(tg_tape *tp, tg_tensor *const *in, void *user) {
    const Ctx *c = static_cast<const Ctx *>(user);
    tg_seq2seq m = rebound(c->s2s, c, in);
    // the encoder's cells live in an array of their own: rebind a copy of it too
    std::vector<tg_rnn_cell> cells(m.encoder.cells, m.encoder.cells + tg_rnn_num_states(&m.encoder));
    for (tg_rnn_cell &cell : cells) cell = rebound(cell, c, in);
    m.encoder.cells = cells.data();
    return tg_seq2seq_loss(tp, &m, in[0], in[1], nullptr);
}

// ---- cases ----------------------------------------------------------------------------------
struct Case {
    const char *name;
    void (*setup)(Ctx *c, tg_rng *rng);
    tg_fn fn;
    bool f32;   // also in float32
};

void sdpa_padding(Ctx *c, tg_rng *r) {
    c->data = {rand_tensor(c->dt, {2, 3, 4}, r), rand_tensor(c->dt, {2, 5, 4}, r),
               rand_tensor(c->dt, {2, 5, 3}, r)};
    c->lengths = {5, 2};
}
void sdpa_causal_fully_masked(Ctx *c, tg_rng *r) {
    c->data = {rand_tensor(c->dt, {2, 3, 4}, r), rand_tensor(c->dt, {2, 3, 4}, r),
               rand_tensor(c->dt, {2, 3, 4}, r)};
    c->lengths = {2, 0};   // batch 1 has no key at all
    c->causal = true;
}
void sdpa_heads(Ctx *c, tg_rng *r) {
    c->data = {rand_tensor(c->dt, {2, 2, 3, 2}, r), rand_tensor(c->dt, {2, 2, 4, 2}, r),
               rand_tensor(c->dt, {2, 2, 4, 3}, r)};
    c->lengths = {3, 4};
    c->causal = true;
}
void masked_softmax_rows(Ctx *c, tg_rng *r) {
    c->data = {rand_tensor(c->dt, {3, 5}, r)};
    c->lengths = {5, 1, 0};
}

void score_setup(Ctx *c, tg_rng *r, tg_score_kind kind, bool step, bool values) {
    c->p = tg_params_new();
    int64_t Dq = kind == TG_SCORE_GENERAL || kind == TG_SCORE_ADDITIVE ? 3 : 4;
    ASSERT_EQ(tg_attention_init(&c->att, c->p, "attn", kind, Dq, 4, 5, c->dt, r), TG_OK);
    c->step_query = step;
    c->data = {step ? rand_tensor(c->dt, {2, Dq}, r) : rand_tensor(c->dt, {2, 3, Dq}, r),
               rand_tensor(c->dt, {2, 4, 4}, r), values ? rand_tensor(c->dt, {2, 4, 2}, r) : nullptr};
    if (!values) c->data.pop_back();
    c->lengths = {4, 3};
}
// tg_attention_forward takes values NULL for "the keys"; the third input is read only if present
tg_tensor *f_score_attention_keys(tg_tape *tp, tg_tensor *const *in, void *user) {
    const Ctx *c = static_cast<const Ctx *>(user);
    tg_attention a = rebound(c->att, c, in);
    tg_tensor *keep = pad_mask(tp, in[0], c->lengths, tg_tensor_dim(in[1], 1));
    return tg_attention_forward(tp, &a, in[0], in[1], nullptr, keep, nullptr);
}
void additive_step(Ctx *c, tg_rng *r) { score_setup(c, r, TG_SCORE_ADDITIVE, true, true); }
void additive_seq(Ctx *c, tg_rng *r) { score_setup(c, r, TG_SCORE_ADDITIVE, false, true); }
void general_step(Ctx *c, tg_rng *r) { score_setup(c, r, TG_SCORE_GENERAL, true, true); }
void dot_seq(Ctx *c, tg_rng *r) { score_setup(c, r, TG_SCORE_DOT, false, true); }
void scaled_dot_keys(Ctx *c, tg_rng *r) { score_setup(c, r, TG_SCORE_SCALED_DOT, false, false); }

void mha_self(Ctx *c, tg_rng *r) {
    c->p = tg_params_new();
    ASSERT_EQ(tg_mha_init(&c->mha, c->p, "attn", 4, 2, c->dt, r, nullptr), TG_OK);
    c->data = {rand_tensor(c->dt, {2, 3, 4}, r)};
    c->lengths = {3, 2};
    c->causal = true;
}
void mha_cross(Ctx *c, tg_rng *r) {
    c->p = tg_params_new();
    tg_mha_opts o{};
    o.kv_dim = 3;
    o.no_bias = true;
    ASSERT_EQ(tg_mha_init(&c->mha, c->p, "attn", 4, 2, c->dt, r, &o), TG_OK);
    c->data = {rand_tensor(c->dt, {2, 3, 4}, r), rand_tensor(c->dt, {2, 5, 3}, r)};
    c->lengths = {5, 1};
}

void block_setup(Ctx *c, tg_rng *r, bool decoder, bool pre_norm) {
    c->p = tg_params_new();
    tg_transformer_opts o{};
    o.heads = 2;
    o.ffn_dim = 6;
    o.pre_norm = pre_norm;
    tg_status st = decoder ? tg_transformer_decoder_init(&c->blk, c->p, "blk", 4, c->dt, r, &o)
                           : tg_transformer_encoder_init(&c->blk, c->p, "blk", 4, c->dt, r, &o);
    ASSERT_EQ(st, TG_OK);
    c->data = {rand_tensor(c->dt, {2, 3, 4}, r)};
    if (decoder) c->data.push_back(rand_tensor(c->dt, {2, 4, 4}, r));
    c->lengths = {3, 2};
    c->lengths2 = {4, 2};
}
void encoder_post(Ctx *c, tg_rng *r) { block_setup(c, r, false, false); }
void encoder_pre(Ctx *c, tg_rng *r) { block_setup(c, r, false, true); }
void decoder_post(Ctx *c, tg_rng *r) { block_setup(c, r, true, false); }
void decoder_pre(Ctx *c, tg_rng *r) { block_setup(c, r, true, true); }

void s2s_setup(Ctx *c, tg_rng *r, const tg_cell *cell, bool attention, tg_score_kind score, int layers) {
    c->p = tg_params_new();
    tg_seq2seq_opts o = tg_seq2seq_opts_default(cell, 8, 7, 3, 4);
    o.attention = attention;
    o.score = score;
    o.num_layers = layers;
    ASSERT_EQ(tg_seq2seq_init(&c->s2s, c->p, "s2s", &o, c->dt, r), TG_OK);
    // row 1 of src is padded; row 1 of tgt ends early (PAD targets are ignored)
    c->data = {id_tensor({2, 3}, {4, 5, 6, 7, 4, 0}), id_tensor({2, 3}, {5, 6, 3, 4, 3, 0})};
}
void s2s_lstm(Ctx *c, tg_rng *r) { s2s_setup(c, r, &tg_cell_lstm, false, TG_SCORE_DOT, 1); }
void s2s_gru_additive(Ctx *c, tg_rng *r) {
    s2s_setup(c, r, &tg_cell_gru_reset_before, true, TG_SCORE_ADDITIVE, 1);
}
void s2s_lstm2_general(Ctx *c, tg_rng *r) { s2s_setup(c, r, &tg_cell_lstm, true, TG_SCORE_GENERAL, 2); }

const Case kCases[] = {
    {"sdpa_with_padding_mask", sdpa_padding, f_sdpa, true},
    {"sdpa_causal_with_a_fully_masked_batch_row", sdpa_causal_fully_masked, f_sdpa, true},
    {"sdpa_per_head_4d_causal_and_padded", sdpa_heads, f_sdpa, true},
    {"masked_softmax_with_partial_and_empty_rows", masked_softmax_rows, f_masked_softmax, true},
    {"additive_attention_one_step_with_mask", additive_step, f_score_attention, true},
    {"additive_attention_over_query_steps", additive_seq, f_score_attention, true},
    {"general_attention_one_step_with_mask", general_step, f_score_attention, true},
    {"dot_attention_over_query_steps", dot_seq, f_score_attention, true},
    {"scaled_dot_attention_values_are_keys", scaled_dot_keys, f_score_attention_keys, true},
    {"multi_head_self_attention_causal_padded", mha_self, f_mha, true},
    {"multi_head_cross_attention_kv_width_no_bias", mha_cross, f_mha, true},
    {"transformer_encoder_block_post_norm", encoder_post, f_block, true},
    {"transformer_encoder_block_pre_norm", encoder_pre, f_block, true},
    {"transformer_decoder_block_post_norm", decoder_post, f_block, true},
    {"transformer_decoder_block_pre_norm", decoder_pre, f_block, true},
    {"seq2seq_lstm_loss", s2s_lstm, f_seq2seq, true},
    {"seq2seq_gru_reset_before_additive_attention_loss", s2s_gru_additive, f_seq2seq, true},
    {"seq2seq_stacked_lstm_general_attention_loss", s2s_lstm2_general, f_seq2seq, true},
};

struct Param {
    int index;
    tg_dtype dtype;
};

class AttentionLayer : public ::testing::TestWithParam<Param> {};

TEST_P(AttentionLayer, GradientMatchesFiniteDifferences) {
    const Param prm = GetParam();
    const Case &k = kCases[prm.index];
    Ctx c;
    c.dt = prm.dtype;
    tg_rng rng = tg_rng_seeded(100u + (uint64_t)prm.index);
    k.setup(&c, &rng);
    std::vector<tg_tensor *> in = c.data;
    for (int i = 0; c.p && i < tg_params_count(c.p); i++) in.push_back(tg_params_at(c.p, i));
    for (tg_tensor *t : in) ASSERT_NE(t, nullptr) << tg_last_error();
    ASSERT_LE(in.size(), 64u);
    c.bound.assign(in.size() - c.data.size(), false);

    tg_gradcheck_report r;
    tg_status st = tg_gradcheck(k.fn, &c, (int)in.size(), in.data(), nullptr, &r);
    for (size_t k = 0; k < c.bound.size(); k++)
        EXPECT_TRUE(c.bound[k]) << "parameter " << tg_params_name(c.p, (int)k)
                                << " never reached the layer";
    for (tg_tensor *t : c.data) tg_tensor_free(t);
    tg_seq2seq_free(&c.s2s);
    tg_params_free(c.p);

    ASSERT_EQ(st, TG_OK) << r.message;
    EXPECT_GT(r.checked, 0);
    EXPECT_TRUE(r.passed) << k.name << " in " << tg_dtype_name(prm.dtype) << ": max abs err "
                          << r.max_abs_err << ", worst at input " << r.worst_input << "["
                          << r.worst_index << "]: analytic " << r.worst_analytic << " vs numeric "
                          << r.worst_numeric;
}

std::vector<Param> all_params() {
    std::vector<Param> v;
    for (int i = 0; i < (int)(sizeof kCases / sizeof kCases[0]); i++) {
        v.push_back({i, TG_F64});
        if (kCases[i].f32) v.push_back({i, TG_F32});
    }
    return v;
}

std::string param_name(const ::testing::TestParamInfo<Param> &info) {
    return std::string(kCases[info.param.index].name) + "_in_" + tg_dtype_name(info.param.dtype);
}

INSTANTIATE_TEST_SUITE_P(Every, AttentionLayer, ::testing::ValuesIn(all_params()), param_name);

}  // namespace
