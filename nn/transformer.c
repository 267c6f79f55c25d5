/* nn/transformer.c - transformer encoder and decoder blocks, post-norm and
 * pre-norm, composed from multi-head attention, Linear and LayerNorm. */
#include "nn_private.h"
#include "tapegrad/nn_attention.h"

static tg_status block_init(tg_transformer_block *blk, tg_params *p, const char *name, int64_t dim,
                            tg_dtype dt, tg_rng *rng, const tg_transformer_opts *o, bool decoder) {
    tg_transformer_opts def = {0};
    if (!o) o = &def;
    int64_t heads = o->heads ? o->heads : 1, ffn = o->ffn_dim ? o->ffn_dim : 4 * dim;
    if (!blk || !p || dim < 1 || heads < 1 || ffn < 1 || dim % heads != 0)
        return nn_error(TG_ERR_ARG,
                        "transformer: needs dim %lld a multiple of heads %lld, ffn_dim %lld >= 1",
                        (long long)dim, (long long)heads, (long long)ffn);
    if (!(o->dropout >= 0 && o->dropout < 1))
        return nn_error(TG_ERR_ARG, "transformer: dropout must be in [0, 1): %g", o->dropout);
    *blk = (tg_transformer_block){.decoder = decoder, .pre_norm = o->pre_norm, .dim = dim,
                                  .dropout = o->dropout,
                                  .activation = o->activation ? o->activation : TG_ACT_RELU};
    char sub[NN_NAME_MAX];
    tg_mha_opts mo = {.dropout = o->dropout};
#define SUB(leaf) (tg_param_name(sub, sizeof sub, name, (leaf)) ? sub : "")
    tg_status st = tg_mha_init(&blk->self_attn, p, SUB("self_attn"), dim, heads, dt, rng, &mo);
    if (st == TG_OK && decoder)
        st = tg_mha_init(&blk->cross_attn, p, SUB("multihead_attn"), dim, heads, dt, rng, &mo);
    if (st == TG_OK) st = tg_linear_init(&blk->linear1, p, SUB("linear1"), dim, ffn, dt, rng, NULL);
    if (st == TG_OK) st = tg_linear_init(&blk->linear2, p, SUB("linear2"), ffn, dim, dt, rng, NULL);
    if (st == TG_OK) st = tg_layer_norm_init(&blk->norm1, p, SUB("norm1"), dim, o->norm_eps, dt);
    if (st == TG_OK) st = tg_layer_norm_init(&blk->norm2, p, SUB("norm2"), dim, o->norm_eps, dt);
    if (st == TG_OK && decoder)
        st = tg_layer_norm_init(&blk->norm3, p, SUB("norm3"), dim, o->norm_eps, dt);
#undef SUB
    return st;
}

tg_status tg_transformer_encoder_init(tg_transformer_block *blk, tg_params *p, const char *name,
                                      int64_t dim, tg_dtype dt, tg_rng *rng,
                                      const tg_transformer_opts *o) {
    return block_init(blk, p, name, dim, dt, rng, o, false);
}

tg_status tg_transformer_decoder_init(tg_transformer_block *blk, tg_params *p, const char *name,
                                      int64_t dim, tg_dtype dt, tg_rng *rng,
                                      const tg_transformer_opts *o) {
    return block_init(blk, p, name, dim, dt, rng, o, true);
}

static tg_tensor *drop(tg_tape *tp, const tg_transformer_block *blk, tg_tensor *x, tg_rng *rng) {
    if (blk->dropout == 0 || !tg_tape_training(tp)) return x;
    return tg_dropout(tp, x, blk->dropout, rng);
}

/* What a sublayer reads: LN(x) in pre-norm, x in post-norm. */
static tg_tensor *sub_in(tg_tape *tp, const tg_transformer_block *blk, const tg_layer_norm *ln,
                         tg_tensor *x) {
    return blk->pre_norm ? tg_layer_norm_forward(tp, ln, x) : x;
}

/* The residual around it: pre-norm x + Drop(s), post-norm LN(x + Drop(s)). */
static tg_tensor *sub_out(tg_tape *tp, const tg_transformer_block *blk, const tg_layer_norm *ln,
                          tg_tensor *x, tg_tensor *s, tg_rng *rng) {
    tg_tensor *r = tg_add(tp, x, drop(tp, blk, s, rng));
    return blk->pre_norm ? r : tg_layer_norm_forward(tp, ln, r);
}

/* FF(x) = act(x W_1^T + b_1) W_2^T + b_2, dropout after the activation as PyTorch */
static tg_tensor *feed_forward(tg_tape *tp, const tg_transformer_block *blk, tg_tensor *x,
                               tg_rng *rng) {
    tg_tensor *h = tg_activate(tp, tg_linear_forward(tp, &blk->linear1, x), blk->activation);
    return tg_linear_forward(tp, &blk->linear2, drop(tp, blk, h, rng));
}

static bool usable(tg_tape *tp, const tg_transformer_block *blk, bool decoder) {
    if (blk && blk->self_attn.out_proj_weight && blk->decoder == decoder) return true;
    tg_fail(tp, TG_ERR_ARG, decoder ? "transformer_decoder" : "transformer_encoder",
            "block is not initialised as %s", decoder ? "a decoder" : "an encoder");
    return false;
}

tg_tensor *tg_transformer_encoder_forward(tg_tape *tp, const tg_transformer_block *blk,
                                          tg_tensor *x, tg_tensor *mask, tg_rng *rng) {
    if (!usable(tp, blk, false)) return NULL;
    /* x = x + SA(x) and x = x + FF(x), each normed before or after (see the header) */
    tg_mha_call sa = {.mask = mask, .rng = rng};
    tg_tensor *s = tg_mha_forward(tp, &blk->self_attn, sub_in(tp, blk, &blk->norm1, x), NULL, &sa);
    x = sub_out(tp, blk, &blk->norm1, x, s, rng);
    s = feed_forward(tp, blk, sub_in(tp, blk, &blk->norm2, x), rng);
    return sub_out(tp, blk, &blk->norm2, x, s, rng);
}

tg_tensor *tg_transformer_decoder_forward(tg_tape *tp, const tg_transformer_block *blk,
                                          tg_tensor *y, tg_tensor *memory, tg_tensor *self_mask,
                                          tg_tensor *memory_mask, tg_rng *rng) {
    if (!usable(tp, blk, true) || !memory) return NULL;
    /* y = y + SA(y) (causal), y = y + CA(y, memory), y = y + FF(y) */
    tg_mha_call sa = {.mask = self_mask, .causal = true, .rng = rng};
    tg_tensor *s = tg_mha_forward(tp, &blk->self_attn, sub_in(tp, blk, &blk->norm1, y), NULL, &sa);
    y = sub_out(tp, blk, &blk->norm1, y, s, rng);
    tg_mha_call ca = {.mask = memory_mask, .rng = rng};
    s = tg_mha_forward(tp, &blk->cross_attn, sub_in(tp, blk, &blk->norm2, y), memory, &ca);
    y = sub_out(tp, blk, &blk->norm2, y, s, rng);
    s = feed_forward(tp, blk, sub_in(tp, blk, &blk->norm3, y), rng);
    return sub_out(tp, blk, &blk->norm3, y, s, rng);
}
