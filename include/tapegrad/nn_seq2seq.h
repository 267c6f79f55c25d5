/* tapegrad/nn_seq2seq.h - RNN encoder-decoder with optional attention:
 * teacher-forced training, greedy decoding and beam search.
 *
 * Token ids are TG_I32 with the special tokens of nn_layers.h at fixed ids:
 * TG_TOKEN_PAD 0, TG_TOKEN_UNK 1, TG_TOKEN_GO 2, TG_TOKEN_EOS 3. A source row
 * is its tokens then PAD; a target row is its tokens, EOS, then PAD.
 *
 *   Encoder   e = emb_s(src) [B, S, E];  outputs [B, S, H], final states = RNN(e)
 *             (padded steps carry the state, so each final state is the last valid one)
 *   Decoder   starts from the encoder's final state, layer by layer. Step t with
 *             previous token y_{t-1} (GO at t = 0):
 *               x = emb_t(y_{t-1});  h^l_t = cell_l(h^(l-1)_t, state^l_(t-1)),  h^0_t = x
 *               no attention:  o_t = h^L_t
 *               attention:     a_t = attention(h^L_t, outputs, source padding mask)
 *                              o_t = tanh(W_c [a_t; h^L_t] + b_c)       (Luong et al. 2015)
 *               logits_t = W_o o_t + b_o  [B, V_t]
 *   Training  teacher forcing: y_{t-1} is the reference token (optionally, with
 *             scheduled sampling, the model's own argmax); the loss is the mean
 *             cross entropy over non-PAD target positions.
 *
 * Parameter names under a model named "mt" (no name: no "mt." prefix):
 *   mt.encoder.embedding.weight, mt.encoder.rnn.weight_ih_l0 ... (as tg_rnn: PyTorch's keys),
 *   mt.decoder.embedding.weight, mt.decoder.rnn.weight_ih_l0 ... (one cell per layer),
 *   mt.decoder.attn.w_q / .w_k / .bias / .v (additive) or .w_a (general),
 *   mt.decoder.combine.weight / .bias, mt.decoder.out.weight / .bias.
 *
 * Decoding runs in inference mode (nothing recorded, no dropout) but allocates
 * in the tape's arena at every step: use a tape you reset afterwards.
 *
 * Layers: any number (as tg_rnn). The decoder's cells are a heap array made by
 * tg_seq2seq_init and freed, with the encoder's, by tg_seq2seq_free. */
#ifndef TAPEGRAD_NN_SEQ2SEQ_H
#define TAPEGRAD_NN_SEQ2SEQ_H

#include "nn_attention.h"
#include "nn_rnn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_seq2seq_opts {
    const tg_cell *cell;          /* &tg_cell_lstm, &tg_cell_gru, ... or your own      */
    int64_t src_vocab, tgt_vocab; /* V_s, V_t, special tokens included (each >= 4)     */
    int64_t embed_dim;            /* E                                                 */
    int64_t hidden_size;          /* H                                                 */
    int num_layers;               /* encoder and decoder, >= 1                         */
    bool attention;
    tg_score_kind score;          /* with attention: dot, general, additive, scaled_dot */
    int64_t attn_size;            /* additive: 0 means H                               */
    double dropout;               /* on the embeddings when training, in [0, 1)        */
} tg_seq2seq_opts;

/* One layer, no attention (score general if you turn it on), no dropout. */
TG_API tg_seq2seq_opts tg_seq2seq_opts_default(const tg_cell *cell, int64_t src_vocab,
                                               int64_t tgt_vocab, int64_t embed_dim,
                                               int64_t hidden_size);

typedef struct tg_seq2seq {
    tg_seq2seq_opts opts;
    tg_embedding_layer src_embed, tgt_embed;   /* PAD rows stay zero                */
    tg_rnn encoder;                            /* return_sequences                 */
    tg_rnn_cell *decoder;                      /* [num_layers] (tg_seq2seq_free)    */
    tg_attention attn;                         /* with attention                    */
    tg_linear combine;                         /* W_c [H, Dv + H], tanh (attention) */
    tg_linear out;                             /* W_o [V_t, H]                      */
} tg_seq2seq;

TG_API tg_status tg_seq2seq_init(tg_seq2seq *m, tg_params *p, const char *name,
                                 const tg_seq2seq_opts *o, tg_dtype dt, tg_rng *rng);
/* The encoder's and the decoder's cell arrays; parameters stay in the registry.
 * NULL and a model whose init failed are fine. */
TG_API void tg_seq2seq_free(tg_seq2seq *m);

/* The encoded source, for writing your own decoding loop. */
typedef struct tg_seq2seq_memory {
    tg_tensor *outputs;                       /* [B, S, H], zero at padded steps    */
    tg_tensor *mask;                          /* [B, 1, S] source keep mask         */
    tg_rnn_state *state;                      /* [num_layers], the decoder's initial
                                                 state (in the tape's arena)         */
} tg_seq2seq_memory;

/* src TG_I32 [B, S] -> *mem (arena tensors). rng: dropout draws (or NULL). */
TG_API tg_status tg_seq2seq_encode(tg_tape *tp, const tg_seq2seq *m, tg_tensor *src, tg_rng *rng,
                                   tg_seq2seq_memory *mem);
/* One decoder step: prev TG_I32 [n] (previous tokens), state[num_layers] (members
 * [n, H]; advanced in place), mem with n rows -> logits [n, V_t]. */
TG_API tg_tensor *tg_seq2seq_step(tg_tape *tp, const tg_seq2seq *m, const tg_seq2seq_memory *mem,
                                  tg_rnn_state *state, tg_tensor *prev, tg_rng *rng);

typedef struct tg_seq2seq_train {
    double sampling_prob;   /* per token, feed the model's own argmax instead of the
                               reference with this probability (0: pure teacher forcing) */
    tg_rng *rng;            /* dropout and sampling draws                             */
    tg_tensor **logits;     /* out (optional): [B, T, V_t]                            */
} tg_seq2seq_train;

/* src [B, S], tgt [B, T] (TG_I32) -> scalar loss. o may be NULL. */
TG_API tg_tensor *tg_seq2seq_loss(tg_tape *tp, const tg_seq2seq *m, tg_tensor *src, tg_tensor *tgt,
                                  const tg_seq2seq_train *o);

/* ---- decoding ------------------------------------------------------------------------ */
typedef struct tg_decoded {
    int64_t length;    /* tokens written, EOS included when reached        */
    double logprob;    /* sum of the tokens' log-probabilities             */
    double score;      /* logprob / length^alpha (greedy: logprob)         */
    bool finished;     /* ended with EOS (else stopped at max_len)         */
} tg_decoded;

/* Greedy: at each step the most probable token (the lowest id on a tie).
 * src [B, S] -> out [B, max_len] row-major (PAD after each row's length), res[B]. */
TG_API tg_status tg_seq2seq_greedy(tg_tape *tp, const tg_seq2seq *m, tg_tensor *src,
                                   int64_t max_len, int32_t *out, tg_decoded *res);

#define TG_BEAM_DEFAULT_WIDTH 4
#define TG_BEAM_DEFAULT_MAX_LEN 50
#define TG_BEAM_MAX_WIDTH 4096

typedef struct tg_beam_opts {
    int width;          /* k in [1, TG_BEAM_MAX_WIDTH]; 0: 4                             */
    double alpha;       /* length normalisation: score = logprob / length^alpha;
                           0: none (raw log-probability), 1: mean log-probability per token */
    int64_t max_len;    /* tokens per hypothesis, EOS included; 0: 50                    */
} tg_beam_opts;

/* Beam search, in the usual form (as fairseq's): each step extends the k live
 * hypotheses by every token and ranks the candidates by log-probability; among
 * the best k, those ending in EOS are finished, and the best k others stay live.
 * It stops when k hypotheses have finished, none is live, or at max_len (the
 * live ones then count, unfinished). The result is the finished hypothesis with
 * the best score (if none finished, the best live one). Width 1 is greedy. */
TG_API tg_status tg_seq2seq_beam(tg_tape *tp, const tg_seq2seq *m, tg_tensor *src,
                                 const tg_beam_opts *o, int32_t *out, tg_decoded *res);

/* The same search over any model. step is called once per step with the n live
 * hypotheses: hypothesis i extends hypothesis parents[i] of the previous call
 * (reorder your state by it; the first call has n = 1, parents {0}, tokens {go})
 * and its last token is tokens[i]. It fills logp [n, vocab] with log-probabilities
 * of the next token and returns TG_OK (any other status stops the search and is
 * returned). out [max_len] receives the best hypothesis, *res its summary. */
typedef tg_status (*tg_beam_step_fn)(void *user, int64_t n, const int64_t *parents,
                                     const int32_t *tokens, double *logp);
TG_API tg_status tg_beam_search(tg_beam_step_fn step, void *user, int64_t vocab, int32_t go,
                                int32_t eos, const tg_beam_opts *o, int32_t *out,
                                tg_decoded *res);

#ifdef __cplusplus
}
#endif
#include "call_site.h"   /* file:line of each call (anomaly mode, profiler) */
#endif
