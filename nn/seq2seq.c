/* nn/seq2seq.c - RNN encoder-decoder: parameters, encoder, one decoder step,
 * the teacher-forced loss and greedy decoding. Beam search is in beam.c.
 * The equations are in include/tapegrad/nn_seq2seq.h. */
#include "nn_private.h"
#include "tapegrad/nn_seq2seq.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

tg_seq2seq_opts tg_seq2seq_opts_default(const tg_cell *cell, int64_t src_vocab, int64_t tgt_vocab,
                                        int64_t embed_dim, int64_t hidden_size) {
    return (tg_seq2seq_opts){.cell = cell, .src_vocab = src_vocab, .tgt_vocab = tgt_vocab,
                             .embed_dim = embed_dim, .hidden_size = hidden_size, .num_layers = 1,
                             .score = TG_SCORE_GENERAL};
}

static tg_status check_opts(const tg_seq2seq_opts *o) {
    if (!o->cell) return nn_error(TG_ERR_ARG, "seq2seq: needs a cell (e.g. &tg_cell_lstm)");
    if (o->src_vocab < 4 || o->tgt_vocab < 4 || o->embed_dim < 1 || o->hidden_size < 1 ||
        o->num_layers < 1 || o->num_layers > TG_SEQ2SEQ_MAX_LAYERS)
        return nn_error(TG_ERR_ARG,
                        "seq2seq: needs vocabularies >= 4, sizes >= 1, layers in [1, %d]",
                        TG_SEQ2SEQ_MAX_LAYERS);
    if (!(o->dropout >= 0 && o->dropout < 1))
        return nn_error(TG_ERR_ARG, "seq2seq: dropout must be in [0, 1): %g", o->dropout);
    return TG_OK;
}

/* "<name>.<a>.<b>" into buf ("" on overflow: the registry then rejects the
 * duplicate or empty name rather than us writing past buf). */
static const char *sub(char *buf, size_t size, const char *name, const char *path) {
    return tg_param_name(buf, size, name, path) ? buf : "";
}

static tg_status init_decoder(tg_seq2seq *m, tg_params *p, const char *name, tg_dtype dt,
                              tg_rng *rng) {
    const tg_seq2seq_opts *o = &m->opts;
    int64_t E = o->embed_dim, H = o->hidden_size;
    char buf[NN_NAME_MAX];
    tg_rnn_opts ro = tg_rnn_opts_default(o->cell, E, H);
    for (int l = 0; l < o->num_layers; l++) {
        tg_status st = tg_rnn_cell_init(&m->decoder[l], p, sub(buf, sizeof buf, name, "decoder.rnn"),
                                        &ro, l, l ? H : E, dt, rng);
        if (st != TG_OK) return st;
    }
    if (o->attention) {
        tg_status st = tg_attention_init(&m->attn, p, sub(buf, sizeof buf, name, "decoder.attn"),
                                         o->score, H, H, o->attn_size, dt, rng);
        if (st == TG_OK)
            st = tg_linear_init(&m->combine, p, sub(buf, sizeof buf, name, "decoder.combine"),
                                2 * H, H, dt, rng, &(tg_linear_opts){.activation = TG_ACT_TANH});
        if (st != TG_OK) return st;
    }
    return tg_linear_init(&m->out, p, sub(buf, sizeof buf, name, "decoder.out"), H, o->tgt_vocab,
                          dt, rng, NULL);
}

tg_status tg_seq2seq_init(tg_seq2seq *m, tg_params *p, const char *name, const tg_seq2seq_opts *o,
                          tg_dtype dt, tg_rng *rng) {
    if (!m || !p || !o)
        return nn_error(TG_ERR_ARG, "seq2seq: needs a model, a registry and options");
    tg_status st = check_opts(o);
    if (st != TG_OK) return st;
    memset(m, 0, sizeof *m);
    m->opts = *o;
    char buf[NN_NAME_MAX];
    tg_embedding_opts eo = {.has_padding = true, .padding_idx = TG_TOKEN_PAD};
    st = tg_embedding_layer_init(&m->src_embed, p, sub(buf, sizeof buf, name, "encoder.embedding"),
                                 o->src_vocab, o->embed_dim, dt, rng, &eo);
    if (st != TG_OK) return st;
    tg_rnn_opts ro = tg_rnn_opts_default(o->cell, o->embed_dim, o->hidden_size);
    ro.num_layers = o->num_layers;
    ro.return_sequences = true;
    st = tg_rnn_init(&m->encoder, p, sub(buf, sizeof buf, name, "encoder.rnn"), &ro, dt, rng);
    if (st != TG_OK) return st;
    st = tg_embedding_layer_init(&m->tgt_embed, p, sub(buf, sizeof buf, name, "decoder.embedding"),
                                 o->tgt_vocab, o->embed_dim, dt, rng, &eo);
    if (st == TG_OK) st = init_decoder(m, p, name, dt, rng);
    if (st != TG_OK) tg_seq2seq_free(m);
    return st;
}

void tg_seq2seq_free(tg_seq2seq *m) {
    if (m) tg_rnn_free(&m->encoder);
}

static bool ready(tg_tape *tp, const tg_seq2seq *m) {
    if (m && m->out.weight) return true;
    tg_fail(tp, TG_ERR_ARG, "seq2seq", "model is not initialised");
    return false;
}

/* ids must be TG_I32 [B, T] with B, T >= 1 (rows of B if B > 0). */
static bool ids_ok(tg_tape *tp, const char *what, const tg_tensor *ids, int64_t B) {
    if (tg_tensor_dtype(ids) == TG_I32 && tg_tensor_ndim(ids) == 2 && tg_tensor_dim(ids, 0) >= 1 &&
        tg_tensor_dim(ids, 1) >= 1 && (B == 0 || tg_tensor_dim(ids, 0) == B))
        return true;
    char s[160];
    tg_fail(tp, TG_ERR_SHAPE, "seq2seq", "%s must be int32 [B, T] with B, T >= 1%s: got %s %s",
            what, B ? " and B as src" : "", tg_dtype_name(tg_tensor_dtype(ids)),
            tg_shape_str(ids, s, sizeof s));
    return false;
}

static tg_tensor *embed(tg_tape *tp, const tg_seq2seq *m, const tg_embedding_layer *e,
                        tg_tensor *ids, tg_rng *rng) {
    tg_tensor *x = tg_embedding_layer_forward(tp, e, ids);
    if (m->opts.dropout > 0 && tg_tape_training(tp)) x = tg_dropout(tp, x, m->opts.dropout, rng);
    return x;
}

tg_status tg_seq2seq_encode(tg_tape *tp, const tg_seq2seq *m, tg_tensor *src, tg_rng *rng,
                            tg_seq2seq_memory *mem) {
    if (mem) memset(mem, 0, sizeof *mem);
    if (!mem || !ready(tp, m)) return mem ? tg_tape_status(tp) : TG_ERR_ARG;
    if (!src || !ids_ok(tp, "src", src, 0)) return src ? tg_tape_status(tp) : TG_ERR_ARG;
    int64_t B = tg_tensor_dim(src, 0), S = tg_tensor_dim(src, 1);
    int64_t *len = tg_tape_alloc(tp, (size_t)B * sizeof *len);
    if (!len || tg_seq_lengths(src, TG_TOKEN_PAD, len) != TG_OK) return TG_ERR_NOMEM;
    /* outputs [B, S, H], final state of each layer = the decoder's initial state */
    tg_rnn_call call = {.lengths = len, .rng = rng};
    tg_tensor *x = embed(tp, m, &m->src_embed, src, rng);
    mem->outputs = tg_rnn_forward(tp, &m->encoder, x, &call, mem->state, TG_SEQ2SEQ_MAX_LAYERS);
    mem->mask = tg_padding_mask(tp, tg_tensor_dtype(m->out.weight), B, S, len);
    if (mem->outputs && mem->mask) return TG_OK;
    tg_status st = tg_tape_status(tp);
    return st != TG_OK ? st : TG_ERR_ARG;
}

tg_tensor *tg_seq2seq_step(tg_tape *tp, const tg_seq2seq *m, const tg_seq2seq_memory *mem,
                           tg_rnn_state *state, tg_tensor *prev, tg_rng *rng) {
    if (!ready(tp, m) || !mem || !state || !prev) return NULL;
    /* x = emb_t(y_{t-1}); h^l = cell_l(h^(l-1), state^l) */
    tg_tensor *h = embed(tp, m, &m->tgt_embed, prev, rng);
    for (int l = 0; l < m->opts.num_layers; l++) {
        tg_rnn_state next;
        h = tg_rnn_cell_step(tp, &m->decoder[l], h, &state[l], &next);
        state[l] = next;
    }
    tg_tensor *o = h;
    if (m->opts.attention) {
        /* a = attention(h^L, outputs, mask);  o = tanh(W_c [a; h^L] + b_c) */
        tg_tensor *a = tg_attention_forward(tp, &m->attn, h, mem->outputs, NULL, mem->mask, NULL);
        o = tg_linear_forward(tp, &m->combine, tg_concat(tp, 2, (tg_tensor *[]){a, h}, 1));
    }
    return tg_linear_forward(tp, &m->out, o);   /* logits [n, V_t] */
}

/* TG_I32 [n] arena tensor of the given ids. */
static tg_tensor *id_tensor(tg_tape *tp, int64_t n, const int32_t *ids) {
    tg_tensor *t = tg_tape_tensor(tp, TG_I32, 1, &n);
    if (t) memcpy(tg_tensor_data(t), ids, (size_t)n * sizeof *ids);
    return t;
}

/* Index of the largest value of row[0..V) (the first on a tie). */
static int32_t argmax(const double *row, int64_t V) {
    int64_t best = 0;
    for (int64_t v = 1; v < V; v++)
        if (row[v] > row[best]) best = v;
    return (int32_t)best;
}

/* logits [n, V] -> log_softmax into lp[n*V] (doubles). */
static int read_logp(tg_tape *tp, tg_tensor *logits, double *lp) {
    tg_tensor *l = tg_log_softmax(tp, logits, -1);
    if (!l) return -1;
    for (int64_t i = 0; i < tg_tensor_numel(l); i++) lp[i] = tg_tensor_get(l, i);
    return 0;
}

/* The next inputs of teacher forcing: the reference tokens tgt[:, t], or with
 * scheduled sampling (per token, probability p) the argmax of this step. */
static void next_inputs(const tg_seq2seq_train *o, tg_tensor *tgt, int64_t t, tg_tensor *logits,
                        int32_t *prev) {
    int64_t B = tg_tensor_dim(tgt, 0), T = tg_tensor_dim(tgt, 1), V = tg_tensor_dim(logits, 1);
    for (int64_t b = 0; b < B; b++) {
        prev[b] = (int32_t)tg_tensor_get(tgt, b * T + t);
        if (o->sampling_prob > 0 && tg_rng_uniform(o->rng) < o->sampling_prob) {
            int64_t best = 0;
            for (int64_t v = 1; v < V; v++)
                if (tg_tensor_get(logits, b * V + v) > tg_tensor_get(logits, b * V + best))
                    best = v;
            prev[b] = (int32_t)best;
        }
    }
}

tg_tensor *tg_seq2seq_loss(tg_tape *tp, const tg_seq2seq *m, tg_tensor *src, tg_tensor *tgt,
                           const tg_seq2seq_train *o) {
    tg_seq2seq_train def = {0};
    if (!o) o = &def;
    if (o->logits) *o->logits = NULL;
    if (!ready(tp, m) || !src || !tgt || !ids_ok(tp, "src", src, 0) ||
        !ids_ok(tp, "tgt", tgt, tg_tensor_dim(src, 0)))
        return NULL;
    if (!(o->sampling_prob >= 0 && o->sampling_prob <= 1) || (o->sampling_prob > 0 && !o->rng)) {
        tg_fail(tp, TG_ERR_ARG, "seq2seq", "sampling_prob must be in [0, 1] (and needs an rng): %g",
                o->sampling_prob);
        return NULL;
    }
    tg_seq2seq_memory mem;
    if (tg_seq2seq_encode(tp, m, src, o->rng, &mem) != TG_OK) return NULL;
    int64_t B = tg_tensor_dim(tgt, 0), T = tg_tensor_dim(tgt, 1), V = m->opts.tgt_vocab;
    tg_tensor **steps = tg_tape_alloc(tp, (size_t)T * sizeof *steps);
    int32_t *prev = tg_tape_alloc(tp, (size_t)B * sizeof *prev);
    if (!steps || !prev) return NULL;
    for (int64_t b = 0; b < B; b++) prev[b] = TG_TOKEN_GO;
    for (int64_t t = 0; t < T; t++) {
        tg_tensor *logits = tg_seq2seq_step(tp, m, &mem, mem.state, id_tensor(tp, B, prev), o->rng);
        if (!logits) return NULL;
        steps[t] = tg_reshape(tp, logits, 3, (int64_t[]){B, 1, V});
        if (t + 1 < T) next_inputs(o, tgt, t, logits, prev);
    }
    /* logits [B, T, V_t]; mean cross entropy over the non-PAD targets */
    tg_tensor *all = tg_concat(tp, (int)T, steps, 1);
    if (o->logits) *o->logits = all;
    return tg_cross_entropy_ex(tp, all, tgt, TG_TOKEN_PAD);
}

/* ---- greedy decoding ------------------------------------------------------------------- */
/* Decoding records nothing and drops nothing (dropout off); returns the
 * training flag to restore. */
static bool inference_begin(tg_tape *tp) {
    bool training = tg_tape_training(tp);
    tg_no_grad_begin(tp);
    tg_tape_set_training(tp, false);
    return training;
}

static void inference_end(tg_tape *tp, bool training) {
    tg_tape_set_training(tp, training);
    tg_no_grad_end(tp);
}

static tg_status greedy_run(tg_tape *tp, const tg_seq2seq *m, tg_tensor *src, int64_t max_len,
                            int32_t *out, tg_decoded *res) {
    tg_seq2seq_memory mem;
    tg_status st = tg_seq2seq_encode(tp, m, src, NULL, &mem);
    if (st != TG_OK) return st;
    int64_t B = tg_tensor_dim(src, 0), V = m->opts.tgt_vocab;
    int32_t *prev = tg_tape_alloc(tp, (size_t)B * sizeof *prev);
    double *lp = tg_tape_alloc(tp, (size_t)(B * V) * sizeof *lp);
    if (!prev || !lp) return TG_ERR_NOMEM;
    for (int64_t b = 0; b < B; b++) {
        prev[b] = TG_TOKEN_GO;
        res[b] = (tg_decoded){0};
        for (int64_t t = 0; t < max_len; t++) out[b * max_len + t] = TG_TOKEN_PAD;
    }
    int64_t live = B;
    for (int64_t t = 0; t < max_len && live > 0; t++) {
        tg_tensor *logits = tg_seq2seq_step(tp, m, &mem, mem.state, id_tensor(tp, B, prev), NULL);
        if (!logits || read_logp(tp, logits, lp) != 0) {
            st = tg_tape_status(tp);
            return st != TG_OK ? st : TG_ERR_NOMEM;
        }
        for (int64_t b = 0; b < B; b++) {
            if (res[b].finished) continue;   /* it keeps running (batched) but is ignored */
            int32_t w = argmax(lp + b * V, V);
            out[b * max_len + t] = prev[b] = w;
            res[b].length = t + 1;
            res[b].logprob += lp[b * V + w];
            res[b].finished = w == TG_TOKEN_EOS;
            live -= res[b].finished;
        }
    }
    for (int64_t b = 0; b < B; b++) res[b].score = res[b].logprob;
    return TG_OK;
}

tg_status tg_seq2seq_greedy(tg_tape *tp, const tg_seq2seq *m, tg_tensor *src, int64_t max_len,
                            int32_t *out, tg_decoded *res) {
    if (!ready(tp, m)) return TG_ERR_ARG;
    if (!src || !out || !res || max_len < 1) {
        tg_fail(tp, TG_ERR_ARG, "seq2seq_greedy", "needs src, out, res and max_len >= 1 (%lld)",
                (long long)max_len);
        return TG_ERR_ARG;
    }
    bool training = inference_begin(tp);
    tg_status st = greedy_run(tp, m, src, max_len, out, res);
    inference_end(tp, training);
    return st;
}

/* ---- beam search over the model (the search itself is tg_beam_search, beam.c) ----- */
typedef struct beam_ctx {
    tg_tape *tp;
    const tg_seq2seq *m;
    tg_seq2seq_memory mem;                   /* one source: outputs [1, S, H]          */
    tg_rnn_state state[TG_SEQ2SEQ_MAX_LAYERS];   /* rows = the previous call's hypotheses */
} beam_ctx;

/* rows idx [n] of x [m, D] -> [n, D]: the embedding lookup is a row gather */
static tg_tensor *rows(tg_tape *tp, tg_tensor *x, tg_tensor *idx) {
    return x ? tg_embedding(tp, x, idx) : NULL;
}

static tg_status beam_step(void *user, int64_t n, const int64_t *parents, const int32_t *tokens,
                           double *logp) {
    beam_ctx *c = user;
    tg_tape *tp = c->tp;
    int32_t *par = tg_tape_alloc(tp, (size_t)n * sizeof *par);
    int32_t *zero = tg_tape_alloc(tp, (size_t)n * sizeof *zero);   /* arena memory is zeroed */
    if (!par || !zero) return TG_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) par[i] = (int32_t)parents[i];
    tg_tensor *pidx = id_tensor(tp, n, par);
    for (int l = 0; l < c->m->opts.num_layers; l++)   /* reorder the state by parent */
        for (int k = 0; k < TG_CELL_MAX_STATES; k++) c->state[l].s[k] = rows(tp, c->state[l].s[k], pidx);
    tg_seq2seq_memory mem = c->mem;   /* the source's outputs, once per hypothesis */
    if (c->m->opts.attention) {
        int64_t S = tg_tensor_dim(mem.outputs, 1), H = tg_tensor_dim(mem.outputs, 2);
        tg_tensor *flat = tg_reshape(tp, mem.outputs, 2, (int64_t[]){1, S * H});
        tg_tensor *copies = rows(tp, flat, id_tensor(tp, n, zero));   /* [n, S*H] */
        mem.outputs = tg_reshape(tp, copies, 3, (int64_t[]){n, S, H});
    }
    tg_tensor *logits = tg_seq2seq_step(tp, c->m, &mem, c->state, id_tensor(tp, n, tokens), NULL);
    if (!logits || read_logp(tp, logits, logp) != 0) {
        tg_status st = tg_tape_status(tp);
        return st != TG_OK ? st : TG_ERR_ARG;
    }
    return TG_OK;
}

/* Row b of src as its own [1, S] batch. */
static tg_tensor *src_row(tg_tape *tp, tg_tensor *src, int64_t b) {
    int64_t S = tg_tensor_dim(src, 1);
    tg_tensor *r = tg_tape_tensor(tp, TG_I32, 2, (int64_t[]){1, S});
    const int32_t *row = (const int32_t *)tg_tensor_cdata(src) + b * S;
    if (r) memcpy(tg_tensor_data(r), row, (size_t)S * sizeof *row);
    return r;
}

static tg_status beam_run(tg_tape *tp, const tg_seq2seq *m, tg_tensor *src, const tg_beam_opts *o,
                          int64_t max_len, int32_t *out, tg_decoded *res) {
    if (!ids_ok(tp, "src", src, 0)) return tg_tape_status(tp);
    for (int64_t b = 0; b < tg_tensor_dim(src, 0); b++) {
        beam_ctx c = {.tp = tp, .m = m};
        tg_status st = tg_seq2seq_encode(tp, m, src_row(tp, src, b), NULL, &c.mem);
        memcpy(c.state, c.mem.state, sizeof c.state);
        if (st == TG_OK)
            st = tg_beam_search(beam_step, &c, m->opts.tgt_vocab, TG_TOKEN_GO, TG_TOKEN_EOS, o,
                                out + b * max_len, &res[b]);
        if (st != TG_OK) return st;
        for (int64_t t = res[b].length; t < max_len; t++) out[b * max_len + t] = TG_TOKEN_PAD;
    }
    return TG_OK;
}

tg_status tg_seq2seq_beam(tg_tape *tp, const tg_seq2seq *m, tg_tensor *src, const tg_beam_opts *o,
                          int32_t *out, tg_decoded *res) {
    tg_beam_opts def = {0};
    if (!o) o = &def;
    if (!ready(tp, m)) return TG_ERR_ARG;
    if (!src || !out || !res || o->max_len < 0 || o->width < 0 || o->width > TG_BEAM_MAX_WIDTH ||
        !isfinite(o->alpha)) {
        tg_fail(tp, TG_ERR_ARG, "seq2seq_beam",
                "needs src, out, res, max_len >= 0, width in [0, %d], a finite alpha: %lld, %d, %g",
                TG_BEAM_MAX_WIDTH,
                (long long)o->max_len, o->width, o->alpha);
        return TG_ERR_ARG;
    }
    bool training = inference_begin(tp);
    int64_t max_len = o->max_len ? o->max_len : TG_BEAM_DEFAULT_MAX_LEN;
    tg_status st = beam_run(tp, m, src, o, max_len, out, res);
    inference_end(tp, training);
    return st;
}
