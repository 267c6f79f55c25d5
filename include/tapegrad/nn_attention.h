/* tapegrad/nn_attention.h - attention, positional encoding, transformer blocks.
 *
 * Composed from the primitives in ops.h like every layer: no gradient code.
 * Shape letters: B batch, Tq query steps, Tk key (memory) steps, C model
 * width, h heads, d = C/h per head, A additive attention size, Dq/Dk/Dv
 * query, key and value widths.
 *
 * Masks are 0/1 "keep" tensors of the scores' dtype (1: the query may look at
 * this key) that broadcast to the scores [..., Tq, Tk] without growing them:
 *   tg_padding_mask   [B, 1, Tk]  hides padded keys
 *   tg_causal_mask    [Tq, Tk]    hides future keys
 *   tg_mul(tp, pad, causal)       both, [B, Tq, Tk]
 * Masked scores get -1e9 added before the softmax and the weights are then
 * multiplied by the mask, so a query whose keys are all masked gets weights
 * 0 and context 0 (never NaN; PyTorch gives NaN there) and passes no gradient.
 *
 *   tg_mha attn;                                            // 4 heads, C = 32
 *   tg_mha_init(&attn, params, "decoder.attn", 32, 4, TG_F32, &rng, NULL);
 *   // registers nn.MultiheadAttention's decoder.attn.in_proj_weight [96,32],
 *   // .in_proj_bias [96], .out_proj.weight [32,32], .out_proj.bias [32]
 *   tg_tensor *keep = tg_padding_mask(tp, TG_F32, B, S, src_lengths);  // [B, 1, S]
 *   tg_tensor *y = tg_mha_forward(tp, &attn, x, memory,                 // [B, T, 32]
 *                                 &(tg_mha_call){.mask = keep});
 *   // or PyTorch's way: &(tg_mha_call){.key_padding_mask = pad}, pad [B, S], non-zero = ignore
 *
 * Errors go to the tape as "<layer>: <what>: <shapes>"; a NULL input gives
 * NULL, so a whole block is written and checked once. */
#ifndef TAPEGRAD_NN_ATTENTION_H
#define TAPEGRAD_NN_ATTENTION_H

#include "nn_layers.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- masks and positions (arena constants, no gradient) ------------------------- */
/* [B, 1, Tk]: 1 where t < lengths[b] (lengths in [0, Tk]). */
TG_API tg_tensor *tg_padding_mask(tg_tape *tp, tg_dtype dt, int64_t B, int64_t Tk,
                                  const int64_t *lengths);
/* PyTorch's key_padding_mask [B, Tk] (any dtype, non-zero = ignore this key)
 * -> the keep mask [B, 1, Tk] (1 where the mask is 0). */
TG_API tg_tensor *tg_key_padding_keep(tg_tape *tp, tg_dtype dt, const tg_tensor *key_padding_mask);
/* [B, 1, T] from ids TG_I32 [B, T]: 1 where ids != pad_id (pads may be anywhere). */
TG_API tg_tensor *tg_padding_mask_ids(tg_tape *tp, tg_dtype dt, const tg_tensor *ids,
                                      int32_t pad_id);
/* [Tq, Tk]: query i sees key j when j <= i + (Tk - Tq). The queries are the
 * last Tq of the Tk positions, so Tq == Tk is the usual lower triangle and a
 * single query (incremental decoding) sees every key. Needs 1 <= Tq <= Tk. */
TG_API tg_tensor *tg_causal_mask(tg_tape *tp, tg_dtype dt, int64_t Tq, int64_t Tk);
/* Sinusoidal encoding [T, C] of positions start .. start+T-1 (Vaswani et al.):
 *   PE[t, 2i] = sin(p / 10000^(2i/C)),  PE[t, 2i+1] = cos(p / 10000^(2i/C)),  p = start + t.
 * Add it to embeddings [B, T, C] (broadcast). Odd C ends with a sin column. */
TG_API tg_tensor *tg_positional_encoding(tg_tape *tp, tg_dtype dt, int64_t start, int64_t T,
                                         int64_t C);

/* ---- scaled dot-product attention -------------------------------------------------- */
/* scores [..., Tq, Tk], keep (NULL: none) -> softmax(scores + (keep-1)*1e9) * keep
 * over the last axis, same shape. */
TG_API tg_tensor *tg_masked_softmax(tg_tape *tp, tg_tensor *scores, tg_tensor *keep);

typedef struct tg_sdpa_opts {
    tg_tensor *mask;   /* keep mask broadcastable to [..., Tq, Tk], or NULL              */
    bool causal;       /* also apply tg_causal_mask(Tq, Tk)                              */
    double scale;      /* 0: 1/sqrt(d)                                                   */
    double dropout;    /* on the weights, when the tape is training (needs rng)          */
    tg_rng *rng;
    int64_t heads;     /* h > 0: q, k, v hold h heads side by side (below)               */
} tg_sdpa_opts;

/* q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv] (equal leading dims) -> [..., Tq, dv]:
 *   W = masked_softmax((q * scale) k^T, keep),  out = W v.
 * weights (optional) receives W [..., Tq, Tk]. o may be NULL.
 * With heads = h: q [B, Tq, h*d], k [B, Tk, h*d], v [B, Tk, h*dv] (the heads
 * side by side, as projections make them) -> [B, Tq, h*dv], the heads'
 * outputs side by side; W is [B, h, Tq, Tk] (the mask broadcasts to it) and
 * scale defaults to 1/sqrt(d). The heads are read and written in place
 * (tg_matmul_opts.heads): no split or merge copies. */
TG_API tg_tensor *tg_scaled_dot_product_attention(tg_tape *tp, tg_tensor *q, tg_tensor *k,
                                                  tg_tensor *v, const tg_sdpa_opts *o,
                                                  tg_tensor **weights);

/* ---- Bahdanau and Luong attention ---------------------------------------------------
 * score(s, h_j) between a query s (a decoder state) and each key h_j:
 *   dot         s . h_j                                    (Luong; Dq == Dk)
 *   general     s W_a h_j            W_a [Dq, Dk]          (Luong)  "<name>.w_a"
 *   additive    v . tanh(W_q s + W_k h_j + b)              (Bahdanau)
 *               W_q [A, Dq], W_k [A, Dk], b [A], v [1, A]  "<name>.w_q", ".w_k", ".bias", ".v"
 *   scaled_dot  s . h_j / sqrt(Dk)                         (Dq == Dk)
 * weights = masked_softmax(scores, keep) over the keys, context = sum_j weights_j v_j. */
typedef enum tg_score_kind {
    TG_SCORE_DOT = 0,
    TG_SCORE_GENERAL,
    TG_SCORE_ADDITIVE,
    TG_SCORE_SCALED_DOT
} tg_score_kind;

typedef struct tg_attention {
    tg_score_kind kind;
    int64_t query_size, key_size, attn_size;   /* Dq, Dk, A (additive only) */
    tg_tensor *w_a;                            /* general                    */
    tg_tensor *w_q, *w_k, *bias, *v;           /* additive                   */
} tg_attention;

/* attn_size: additive only (0 means Dq). Weights Glorot uniform, bias zeros. */
TG_API tg_status tg_attention_init(tg_attention *a, tg_params *p, const char *name,
                                   tg_score_kind kind, int64_t query_size, int64_t key_size,
                                   int64_t attn_size, tg_dtype dt, tg_rng *rng);
/* query [B, Dq] (one decoder step) or [B, Tq, Dq]; keys [B, Tk, Dk]; values
 * [B, Tk, Dv] or NULL (the keys); keep mask broadcastable to [B, Tq, Tk] (for
 * a 2-D query also [B, Tk]) or NULL -> context [B, Dv] or [B, Tq, Dv].
 * weights (optional): [B, Tk] or [B, Tq, Tk]. */
TG_API tg_tensor *tg_attention_forward(tg_tape *tp, const tg_attention *a, tg_tensor *query,
                                       tg_tensor *keys, tg_tensor *values, tg_tensor *mask,
                                       tg_tensor **weights);
TG_API const char *tg_score_name(tg_score_kind kind);

/* ---- multi-head attention ------------------------------------------------------------
 * Q = x W_q^T + b_q, K = m W_k^T + b_k, V = m W_v^T + b_v, each split into h
 * heads of d = C/h; head_i = sdpa(Q_i, K_i, V_i); out = [head_1..head_h] W_o^T + b_o.
 * Parameters are nn.MultiheadAttention's (batch_first=True), names included:
 *   "<name>.in_proj_weight" [3C, C] = [W_q; W_k; W_v]    (Ckv == C)
 *   "<name>.q_proj_weight" [C, C], ".k_proj_weight", ".v_proj_weight" [C, Ckv]   (Ckv != C)
 *   "<name>.in_proj_bias" [3C] = [b_q; b_k; b_v], "<name>.out_proj.weight" [C, C],
 *   "<name>.out_proj.bias" [C]   (no biases with no_bias, as bias=False). */
typedef struct tg_mha {
    int64_t dim, heads, head_dim, kv_dim;   /* C, h, d, Ckv                               */
    tg_tensor *in_proj_weight;              /* [3C, C], or NULL when Ckv != C             */
    tg_tensor *q_proj_weight, *k_proj_weight, *v_proj_weight;   /* Ckv != C, else NULL */
    tg_tensor *in_proj_bias;                /* [3C] or NULL (no_bias)                     */
    tg_tensor *out_proj_weight, *out_proj_bias;   /* [C, C], [C] or NULL               */
    double dropout;                         /* on the attention weights                   */
    bool no_bias;
} tg_mha;

typedef struct tg_mha_opts {
    int64_t kv_dim;             /* width of the memory (0: C)               */
    bool no_bias;
    double dropout;             /* in [0, 1)                                */
    tg_initializer weight_init; /* default Glorot uniform (biases zeros)    */
} tg_mha_opts;

/* dim must be a multiple of heads. */
TG_API tg_status tg_mha_init(tg_mha *m, tg_params *p, const char *name, int64_t dim,
                             int64_t heads, tg_dtype dt, tg_rng *rng, const tg_mha_opts *o);

typedef struct tg_mha_call {
    tg_tensor *mask;     /* keep mask broadcastable to [B, Tq, Tk], or NULL (heads share it) */
    const tg_tensor *key_padding_mask;   /* PyTorch's: [B, Tk], non-zero = ignore the key; or
                                            NULL. Applied together with mask.            */
    bool causal;         /* also hide future keys (tg_causal_mask)                   */
    tg_rng *rng;         /* dropout draws (needed when dropout > 0 and training)     */
    tg_tensor **weights; /* out (optional): [B, h, Tq, Tk]                           */
} tg_mha_call;

/* x [B, Tq, C], memory [B, Tk, Ckv] (NULL: self-attention, memory = x) -> [B, Tq, C].
 * call may be NULL. */
TG_API tg_tensor *tg_mha_forward(tg_tape *tp, const tg_mha *m, tg_tensor *x, tg_tensor *memory,
                                 const tg_mha_call *call);

/* ---- transformer blocks ----------------------------------------------------------------
 * Sublayers: SA = self-attention, CA = cross-attention on the encoder memory,
 * FF(x) = act(x W_1^T + b_1) W_2^T + b_2, Drop = dropout (training only).
 *   post-norm (Vaswani et al., PyTorch's default):   x = LN(x + Drop(Sub(x)))
 *   pre-norm  (GPT-2, PyTorch norm_first=True):      x = x + Drop(Sub(LN(x)))
 * Encoder: SA, FF.  Decoder: SA (always causal), CA, FF. A pre-norm stack
 * usually ends with one more LayerNorm (yours to add).
 * Parameter names are the state_dict keys of PyTorch's nn.TransformerEncoderLayer
 * / nn.TransformerDecoderLayer (batch_first=True, norm_first = pre_norm):
 * "<name>.self_attn.in_proj_weight", "<name>.self_attn.out_proj.weight",
 * "<name>.multihead_attn.in_proj_weight" (decoder: the cross-attention, cross_attn
 * here), "<name>.linear1.weight", "<name>.linear2.weight", "<name>.norm1.weight",
 * "<name>.norm2.weight", "<name>.norm3.weight" (decoder), and the biases.
 * Masks are keep masks; tg_key_padding_keep turns PyTorch's key_padding_mask
 * into one. */
typedef struct tg_transformer_opts {
    int64_t heads;        /* 0: 1                                  */
    int64_t ffn_dim;      /* 0: 4 C                                */
    double dropout;       /* sublayer outputs and attention weights */
    bool pre_norm;
    tg_act activation;    /* FF: default relu                      */
    double norm_eps;      /* <= 0: 1e-5                            */
} tg_transformer_opts;

typedef struct tg_transformer_block {
    bool decoder, pre_norm;
    int64_t dim;
    double dropout;
    tg_act activation;
    tg_mha self_attn, cross_attn;            /* cross_attn: decoder only */
    tg_linear linear1, linear2;              /* [F, C], [C, F]           */
    tg_layer_norm norm1, norm2, norm3;       /* norm3: decoder only      */
} tg_transformer_block;

TG_API tg_status tg_transformer_encoder_init(tg_transformer_block *blk, tg_params *p,
                                             const char *name, int64_t dim, tg_dtype dt,
                                             tg_rng *rng, const tg_transformer_opts *o);
TG_API tg_status tg_transformer_decoder_init(tg_transformer_block *blk, tg_params *p,
                                             const char *name, int64_t dim, tg_dtype dt,
                                             tg_rng *rng, const tg_transformer_opts *o);
/* x [B, T, C], mask (keep, broadcastable to [B, T, T], e.g. tg_padding_mask) or
 * NULL -> [B, T, C]. rng: dropout draws (NULL without dropout). */
TG_API tg_tensor *tg_transformer_encoder_forward(tg_tape *tp, const tg_transformer_block *blk,
                                                 tg_tensor *x, tg_tensor *mask, tg_rng *rng);
/* y [B, T, C], memory [B, S, C] (encoder output); self_mask broadcastable to
 * [B, T, T] (target padding; the causal mask is always added) and memory_mask
 * broadcastable to [B, T, S] (source padding), either may be NULL -> [B, T, C]. */
TG_API tg_tensor *tg_transformer_decoder_forward(tg_tape *tp, const tg_transformer_block *blk,
                                                 tg_tensor *y, tg_tensor *memory,
                                                 tg_tensor *self_mask, tg_tensor *memory_mask,
                                                 tg_rng *rng);

#ifdef __cplusplus
}
#endif
#include "call_site.h"   /* file:line of each call (anomaly mode, profiler) */
#endif
