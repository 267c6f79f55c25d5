/* tests/nn/check_seq2seq.c - encoder-decoder: names, teacher forcing, training,
 * greedy decoding, beam search (width 1 is greedy; the best sequence of a
 * hand-built model; length normalisation), error paths. */
#include "check_suites.h"
#include "tapegrad/nn_seq2seq.h"
#include "tapegrad/optim.h"

#include <math.h>
#include <stdio.h>

enum { PAD = TG_TOKEN_PAD, UNK = TG_TOKEN_UNK, GO = TG_TOKEN_GO, EOS = TG_TOKEN_EOS };

static tg_tensor *ids(int64_t B, int64_t T, const double *v) {
    return tg_tensor_from(TG_I32, 2, (int64_t[]){B, T}, v);
}

/* ---- parameters --------------------------------------------------------------------------- */
START_TEST(seq2seq_registers_named_parameters_with_zero_pad_rows) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(1);
    tg_seq2seq m;
    tg_seq2seq_opts o = tg_seq2seq_opts_default(&tg_cell_lstm, 10, 9, 5, 6);
    o.num_layers = 2;
    o.attention = true;
    o.score = TG_SCORE_ADDITIVE;
    ck_assert_int_eq(tg_seq2seq_init(&m, p, "mt", &o, TG_F64, &rng), TG_OK);
    const char *want[] = {"mt.encoder.embedding.weight", "mt.encoder.rnn.weight_ih_l0",
                          "mt.encoder.rnn.weight_hh_l1", "mt.decoder.embedding.weight",
                          "mt.decoder.rnn.weight_ih_l0", "mt.decoder.rnn.bias_hh_l1",
                          "mt.decoder.attn.w_q", "mt.decoder.attn.v", "mt.decoder.combine.weight",
                          "mt.decoder.out.bias"};
    for (int i = 0; i < 10; i++) ck_assert_msg(tg_params_find(p, want[i]) != NULL, "missing %s", want[i]);
    /* embeddings 2, encoder 2 x 4, decoder 2 x 4, attention 4, combine 2, out 2 */
    ck_assert_int_eq(tg_params_count(p), 26);
    ck_assert_int_eq(tg_tensor_dim(m.out.weight, 0), 9);
    for (int j = 0; j < 5; j++) {
        ck_assert(tg_tensor_get(m.src_embed.weight, PAD * 5 + j) == 0);
        ck_assert(tg_tensor_get(m.tgt_embed.weight, PAD * 5 + j) == 0);
    }
    tg_params *q = tg_params_new();
    o = tg_seq2seq_opts_default(&tg_cell_gru, 10, 9, 5, 6);
    tg_seq2seq_free(&m);
    ck_assert_int_eq(tg_seq2seq_init(&m, q, NULL, &o, TG_F64, &rng), TG_OK);
    ck_assert_ptr_nonnull(tg_params_find(q, "decoder.rnn.weight_hh_l0"));
    ck_assert_ptr_null(tg_params_find(q, "decoder.combine.weight"));   /* no attention */
    tg_seq2seq_free(&m);
    tg_params_free(q);
    tg_params_free(p);
}
END_TEST

START_TEST(seq2seq_init_rejects_bad_options) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(2);
    tg_seq2seq m;
    /* a source vocabulary of 3 has no room for the 4 special tokens */
    tg_seq2seq_opts o = tg_seq2seq_opts_default(&tg_cell_lstm, 3, 9, 5, 6);
    ck_assert_int_eq(tg_seq2seq_init(&m, p, "a", &o, TG_F64, &rng), TG_ERR_ARG);
    o = tg_seq2seq_opts_default(NULL, 10, 9, 5, 6);   /* no cell */
    ck_assert_int_eq(tg_seq2seq_init(&m, p, "a", &o, TG_F64, &rng), TG_ERR_ARG);
    o = tg_seq2seq_opts_default(&tg_cell_gru, 10, 9, 5, 6);
    o.attention = true;
    o.score = TG_SCORE_DOT;
    o.num_layers = TG_SEQ2SEQ_MAX_LAYERS + 1;
    ck_assert_int_eq(tg_seq2seq_init(&m, p, "a", &o, TG_F64, &rng), TG_ERR_ARG);
    ck_assert_int_eq(tg_params_count(p), 0);
    tg_params_free(p);
}
END_TEST

/* ---- training ------------------------------------------------------------------------------ */
static void scale_params(tg_params *p, double s) {
    for (int k = 0; k < tg_params_count(p); k++) {
        tg_tensor *t = tg_params_at(p, k);
        for (int64_t i = 0; i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, s * tg_tensor_get(t, i));
    }
}

START_TEST(teacher_forcing_feeds_reference_tokens_and_ignores_pad_targets) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(3);
    tg_seq2seq m;
    tg_seq2seq_opts o = tg_seq2seq_opts_default(&tg_cell_gru, 10, 9, 4, 5);
    o.attention = true;
    ck_assert_int_eq(tg_seq2seq_init(&m, p, "s", &o, TG_F64, &rng), TG_OK);
    scale_params(p, 3);
    tg_tape *tp = tg_tape_new();
    tg_tensor *src = ids(2, 3, (double[]){4, 5, 6, 7, PAD, PAD});
    tg_tensor *ta = ids(2, 4, (double[]){5, 6, EOS, PAD, 8, EOS, PAD, PAD});
    tg_tensor *tb = ids(2, 4, (double[]){5, 7, EOS, PAD, 8, EOS, PAD, PAD});   /* differs at t = 1 */
    tg_tensor *la, *lb;
    tg_tensor *loss = tg_seq2seq_loss(tp, &m, src, ta, &(tg_seq2seq_train){.logits = &la});
    ck_assert_msg(loss != NULL, "%s", tg_tape_error(tp));
    ck_assert_ptr_nonnull(tg_seq2seq_loss(tp, &m, src, tb, &(tg_seq2seq_train){.logits = &lb}));
    ck_assert_int_eq(tg_tensor_dim(la, 2), 9);   /* [B, T, V_t] */
    /* step t sees tgt[:, :t]: steps 0 and 1 agree, step 2 (fed tgt[0, 1]) differs in row 0 only */
    bool diff2 = false;
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 4; t++)
            for (int v = 0; v < 9; v++) {
                int i = (b * 4 + t) * 9 + v;
                if (t < 2 || b == 1) ck_assert(tg_tensor_get(la, i) == tg_tensor_get(lb, i));
                else if (t == 2) diff2 |= tg_tensor_get(la, i) != tg_tensor_get(lb, i);
            }
    ck_assert(diff2);
    /* the loss is the mean of -log softmax over the 5 non-PAD targets */
    double want = 0;
    int n = 0;
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 4; t++) {
            int y = (int)tg_tensor_get(ta, b * 4 + t);
            if (y == PAD) continue;
            double mx = -INFINITY, z = 0;
            for (int v = 0; v < 9; v++) mx = fmax(mx, tg_tensor_get(la, (b * 4 + t) * 9 + v));
            for (int v = 0; v < 9; v++) z += exp(tg_tensor_get(la, (b * 4 + t) * 9 + v) - mx);
            want += -(tg_tensor_get(la, (b * 4 + t) * 9 + y) - mx - log(z));
            n++;
        }
    ck_assert_int_eq(n, 5);
    ck_assert_double_eq_tol(tg_tensor_item(loss), want / n, 1e-12);
    tg_tensor_free(src);
    tg_tensor_free(ta);
    tg_tensor_free(tb);
    tg_tape_free(tp);
    tg_seq2seq_free(&m);
    tg_params_free(p);
}
END_TEST

/* Reversal of 3-token sequences over tokens 4..8; the target ends with EOS. */
static void reversal_batch(tg_rng *rng, int64_t B, double *src, double *tgt) {
    for (int64_t b = 0; b < B; b++) {
        for (int t = 0; t < 3; t++) src[b * 3 + t] = 4 + (double)(tg_rng_next(rng) % 5);
        for (int t = 0; t < 3; t++) tgt[b * 4 + t] = src[b * 3 + 2 - t];
        tgt[b * 4 + 3] = EOS;
    }
}

START_TEST(training_with_attention_learns_to_reverse_and_greedy_decodes_it) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(11);
    tg_seq2seq m;
    tg_seq2seq_opts o = tg_seq2seq_opts_default(&tg_cell_lstm, 9, 9, 8, 24);
    o.attention = true;
    o.score = TG_SCORE_GENERAL;
    ck_assert_int_eq(tg_seq2seq_init(&m, p, NULL, &o, TG_F32, &rng), TG_OK);
    tg_optim *opt = tg_optim_new(TG_OPTIM_ADAM, p, 0.02);
    tg_tape *tp = tg_tape_new();
    enum { B = 16 };
    double sv[B * 3], tv[B * 4];
    double first = 0, last = 0;
    for (int step = 0; step < 250; step++) {
        reversal_batch(&rng, B, sv, tv);
        tg_tensor *src = ids(B, 3, sv), *tgt = ids(B, 4, tv);
        tg_params_zero_grad(p);
        tg_tensor *loss = tg_seq2seq_loss(tp, &m, src, tgt, NULL);
        ck_assert_msg(loss != NULL, "%s", tg_tape_error(tp));
        if (step == 0) first = tg_tensor_item(loss);
        last = tg_tensor_item(loss);
        ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
        ck_assert_int_eq(tg_optim_step(opt), TG_OK);
        tg_tape_reset(tp);
        tg_tensor_free(src);
        tg_tensor_free(tgt);
    }
    ck_assert_msg(last < 0.1 * first, "loss %g -> %g", first, last);
    /* greedy decodes fresh sequences: the reversal, then EOS */
    reversal_batch(&rng, 8, sv, tv);
    tg_tensor *src = ids(8, 3, sv);
    int32_t out[8 * 6];
    tg_decoded res[8];
    tg_tape_set_training(tp, false);
    ck_assert_int_eq(tg_seq2seq_greedy(tp, &m, src, 6, out, res), TG_OK);
    int right = 0;
    for (int b = 0; b < 8; b++) {
        bool ok = res[b].finished && res[b].length == 4;
        for (int t = 0; ok && t < 4; t++) ok = out[b * 6 + t] == (int32_t)tv[b * 4 + t];
        right += ok;
    }
    ck_assert_msg(right >= 7, "%d of 8 reversed", right);
    tg_tensor_free(src);
    tg_tape_free(tp);
    tg_optim_free(opt);
    tg_seq2seq_free(&m);
    tg_params_free(p);
}
END_TEST

/* ---- a hand-built bigram model -------------------------------------------------------------
 * GRU decoder with E = H = V = 8: one-hot target embeddings, W_in = 3 I, every other input and
 * recurrent weight 0, update-gate bias -40 (z = 4e-18), so h_t = tanh(3) onehot(y_{t-1}) and
 * with W_o[:, j] = log P(. | j) / tanh(3) the logits are log P(. | y_{t-1}): a bigram model
 * whose log-probabilities are exactly the table's. The encoder does not matter (z = 0). */
enum { V = 8, TA = 4, TB = 5, TC = 6, TD = 7 };

typedef struct bigram { double p[V][V]; } bigram;   /* p[prev][next] */

/* Row prev: the listed (token, prob) pairs, the remaining mass shared by the other tokens. */
static void bigram_row(bigram *g, int prev, int n, const int *tok, const double *pr) {
    double rest = 1;
    for (int i = 0; i < n; i++) rest -= pr[i];
    for (int v = 0; v < V; v++) g->p[prev][v] = rest / (V - n);
    for (int i = 0; i < n; i++) g->p[prev][tok[i]] = pr[i];
}

static void bigram_uniform(bigram *g) {
    for (int a = 0; a < V; a++) bigram_row(g, a, 0, NULL, NULL);
}

static void build_bigram_model(tg_seq2seq *m, tg_params *p, const bigram *g) {
    tg_rng rng = tg_rng_seeded(5);
    tg_seq2seq_opts o = tg_seq2seq_opts_default(&tg_cell_gru, 6, V, V, V);
    ck_assert_int_eq(tg_seq2seq_init(m, p, NULL, &o, TG_F64, &rng), TG_OK);
    const tg_rnn_cell *c = &m->decoder[0];
    tg_tensor *w_ih = tg_rnn_cell_param(c, "weight_ih"), *b_ih = tg_rnn_cell_param(c, "bias_ih");
    tg_tensor_fill(w_ih, 0);
    tg_tensor_fill(tg_rnn_cell_param(c, "weight_hh"), 0);
    tg_tensor_fill(b_ih, 0);
    tg_tensor_fill(tg_rnn_cell_param(c, "bias_hh"), 0);
    for (int j = 0; j < V; j++) {
        tg_tensor_set(w_ih, (2 * V + j) * V + j, 3);   /* W_in = 3 I */
        tg_tensor_set(b_ih, V + j, -40);               /* b_iz */
        for (int k = 0; k < V; k++) tg_tensor_set(m->tgt_embed.weight, j * V + k, j == k && j != PAD);
        for (int v = 0; v < V; v++) tg_tensor_set(m->out.weight, v * V + j, log(g->p[j][v]) / tanh(3));
    }
    tg_tensor_fill(m->out.bias, 0);
}

/* Best complete sequence (ending in EOS, up to L tokens) by brute force over the table. */
static double brute_best(const bigram *g, int L, int *best, int *best_len) {
    double best_lp = -INFINITY;
    int seq[8];
    for (int len = 1; len <= L; len++) {
        int64_t n = 1;
        for (int i = 0; i < len - 1; i++) n *= V;
        for (int64_t c = 0; c < n; c++) {
            int64_t r = c;
            bool ok = true;
            double lp = 0;
            int prev = GO;
            for (int i = 0; i < len; i++) {
                seq[i] = i == len - 1 ? EOS : (int)(r % V);
                if (i < len - 1) r /= V;
                if (i < len - 1 && seq[i] == EOS) ok = false;
                lp += log(g->p[prev][seq[i]]);
                prev = seq[i];
            }
            if (ok && lp > best_lp) {
                best_lp = lp;
                *best_len = len;
                for (int i = 0; i < len; i++) best[i] = seq[i];
            }
        }
    }
    return best_lp;
}

/* The greedy trap: GO -> a .55 / b .44; a -> EOS .34, c .33, d .32; b, c, d -> EOS .9.
 * Greedy: a EOS (.55 x .34 = .187). Best: b EOS (.44 x .9 = .396). */
static void trap_table(bigram *g) {
    bigram_uniform(g);
    bigram_row(g, GO, 2, (int[]){TA, TB}, (double[]){.55, .44});
    bigram_row(g, TA, 3, (int[]){EOS, TC, TD}, (double[]){.34, .33, .32});
    bigram_row(g, TB, 1, (int[]){EOS}, (double[]){.9});
    bigram_row(g, TC, 1, (int[]){EOS}, (double[]){.9});
    bigram_row(g, TD, 1, (int[]){EOS}, (double[]){.9});
}

START_TEST(greedy_takes_the_likeliest_token_stops_at_eos_and_pads) {
    bigram g;
    trap_table(&g);
    tg_params *p = tg_params_new();
    tg_seq2seq m;
    build_bigram_model(&m, p, &g);
    tg_tape *tp = tg_tape_new();
    tg_tensor *src = ids(1, 2, (double[]){4, 5});
    int32_t out[5];
    tg_decoded res;
    ck_assert_int_eq(tg_seq2seq_greedy(tp, &m, src, 5, out, &res), TG_OK);
    ck_assert_int_eq(res.length, 2);
    ck_assert(res.finished);
    int32_t want[5] = {TA, EOS, PAD, PAD, PAD};
    for (int i = 0; i < 5; i++) ck_assert_int_eq(out[i], want[i]);
    ck_assert_double_eq_tol(res.logprob, log(.55) + log(.34), 1e-12);
    ck_assert_int_eq(tg_seq2seq_greedy(tp, &m, src, 0, out, &res), TG_ERR_ARG);
    ck_assert_tape_error(tp, TG_ERR_ARG,
                         "seq2seq_greedy: needs src, out, res and max_len >= 1 (0)");
    tg_tensor_free(src);
    tg_tape_free(tp);
    tg_seq2seq_free(&m);
    tg_params_free(p);
}
END_TEST

START_TEST(beam_search_finds_the_best_sequence_of_a_hand_built_model) {
    bigram g;
    trap_table(&g);
    int best[8], best_len = 0;
    double best_lp = brute_best(&g, 4, best, &best_len);
    ck_assert_int_eq(best_len, 2);   /* the brute force agrees with the hand analysis */
    ck_assert_int_eq(best[0], TB);
    tg_params *p = tg_params_new();
    tg_seq2seq m;
    build_bigram_model(&m, p, &g);
    tg_tape *tp = tg_tape_new();
    tg_tensor *src = ids(1, 2, (double[]){4, 5});
    int32_t out[4];
    tg_decoded res;
    ck_assert_int_eq(tg_seq2seq_beam(tp, &m, src, &(tg_beam_opts){.width = 2, .max_len = 4}, out, &res),
                     TG_OK);
    ck_assert(res.finished);
    ck_assert_int_eq(res.length, best_len);
    for (int i = 0; i < best_len; i++) ck_assert_int_eq(out[i], best[i]);
    ck_assert_double_eq_tol(res.logprob, best_lp, 1e-12);
    ck_assert_double_eq_tol(res.logprob, log(.44) + log(.9), 1e-12);
    ck_assert_int_eq(out[2], PAD);
    tg_tensor_free(src);
    tg_tape_free(tp);
    tg_seq2seq_free(&m);
    tg_params_free(p);
}
END_TEST

/* GO -> a .49 / b .50; b -> EOS .6; a -> c .8; c -> d .8; d -> EOS .8.
 * "b EOS" has probability .30, "a c d EOS" .2509: the raw log-probability prefers the
 * short one, the per-token mean (alpha 1) the long one: ln(.30)/2 = -.60 < ln(.2509)/4 = -.35.
 * Width 2 sees both: b EOS finishes at step 2 (rank 1), a c d EOS at step 4 (rank 0). */
START_TEST(length_normalisation_ranks_by_mean_log_probability) {
    bigram g;
    bigram_uniform(&g);
    bigram_row(&g, GO, 2, (int[]){TA, TB}, (double[]){.49, .50});
    bigram_row(&g, TB, 1, (int[]){EOS}, (double[]){.6});
    bigram_row(&g, TA, 1, (int[]){TC}, (double[]){.8});
    bigram_row(&g, TC, 1, (int[]){TD}, (double[]){.8});
    bigram_row(&g, TD, 1, (int[]){EOS}, (double[]){.8});
    tg_params *p = tg_params_new();
    tg_seq2seq m;
    build_bigram_model(&m, p, &g);
    tg_tape *tp = tg_tape_new();
    tg_tensor *src = ids(1, 1, (double[]){4});
    int32_t out[6];
    tg_decoded res;
    tg_beam_opts raw = {.width = 2, .max_len = 6};
    ck_assert_int_eq(tg_seq2seq_beam(tp, &m, src, &raw, out, &res), TG_OK);
    ck_assert_int_eq(res.length, 2);
    ck_assert_int_eq(out[0], TB);
    ck_assert_double_eq_tol(res.score, log(.5 * .6), 1e-12);
    tg_beam_opts o = {.width = 2, .max_len = 6, .alpha = 1};
    ck_assert_int_eq(tg_seq2seq_beam(tp, &m, src, &o, out, &res), TG_OK);
    ck_assert_int_eq(res.length, 4);
    int32_t want[4] = {TA, TC, TD, EOS};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(out[i], want[i]);
    ck_assert_double_eq_tol(res.logprob, log(.49 * .8 * .8 * .8), 1e-12);
    ck_assert_double_eq_tol(res.score, log(.49 * .8 * .8 * .8) / 4, 1e-12);
    tg_tensor_free(src);
    tg_tape_free(tp);
    tg_seq2seq_free(&m);
    tg_params_free(p);
}
END_TEST

/* ---- width 1 is greedy ------------------------------------------------------------------- */
static void check_width_one_is_greedy(const tg_cell *cell, bool attention, tg_score_kind score, int layers,
                                      uint64_t seed) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(seed);
    tg_seq2seq m;
    tg_seq2seq_opts o = tg_seq2seq_opts_default(cell, 10, 9, 6, 7);
    o.attention = attention;
    o.score = score;
    o.num_layers = layers;
    ck_assert_int_eq(tg_seq2seq_init(&m, p, "m", &o, TG_F64, &rng), TG_OK);
    scale_params(p, 2.5);   /* peakier distributions */
    tg_tensor_set(m.out.bias, EOS, 0.3);   /* rows end at steps 1 to 7 or never (seeds 21-23) */
    tg_tape *tp = tg_tape_new();
    enum { B = 4, L = 7 };
    tg_tensor *src = ids(B, 5, (double[]){4, 5, 6, 7, PAD, 8, 4, PAD, PAD, PAD, 5, 5, 5, 5, 5,
                                          9, PAD, PAD, PAD, PAD});
    int32_t g_out[B * L], b_out[B * L];
    tg_decoded g_res[B], b_res[B];
    ck_assert_int_eq(tg_seq2seq_greedy(tp, &m, src, L, g_out, g_res), TG_OK);
    tg_beam_opts one = {.width = 1, .max_len = L};
    ck_assert_int_eq(tg_seq2seq_beam(tp, &m, src, &one, b_out, b_res), TG_OK);
    for (int b = 0; b < B; b++) {
        ck_assert_int_eq(b_res[b].length, g_res[b].length);
        ck_assert_int_eq(b_res[b].finished, g_res[b].finished);
        ck_assert_double_eq_tol(b_res[b].logprob, g_res[b].logprob, 1e-9);
        for (int t = 0; t < L; t++) ck_assert_int_eq(b_out[b * L + t], g_out[b * L + t]);
    }
    tg_tensor_free(src);
    tg_tape_free(tp);
    tg_seq2seq_free(&m);
    tg_params_free(p);
}

START_TEST(beam_width_one_equals_greedy_lstm_without_attention) {
    check_width_one_is_greedy(&tg_cell_lstm, false, TG_SCORE_DOT, 1, 21);
}
END_TEST
START_TEST(beam_width_one_equals_greedy_gru_with_additive_attention) {
    check_width_one_is_greedy(&tg_cell_gru, true, TG_SCORE_ADDITIVE, 1, 22);
}
END_TEST
START_TEST(beam_width_one_equals_greedy_stacked_lstm_with_general_attention) {
    check_width_one_is_greedy(&tg_cell_lstm, true, TG_SCORE_GENERAL, 2, 23);
}
END_TEST

/* ---- the search over a callback model ---------------------------------------------------- */
typedef struct table_model {
    const bigram *g;
    int calls;
    int fail_at;   /* return an error on this call (0: never) */
} table_model;

static tg_status table_step(void *user, int64_t n, const int64_t *parents, const int32_t *tokens,
                            double *logp) {
    table_model *tm = user;
    (void)parents;   /* a bigram needs no state: the last token is enough */
    if (++tm->calls == tm->fail_at) return TG_ERR_STATE;
    for (int64_t i = 0; i < n; i++)
        for (int v = 0; v < V; v++) logp[i * V + v] = log(tm->g->p[tokens[i]][v]);
    return TG_OK;
}

START_TEST(beam_search_over_a_callback_stops_at_max_len_and_passes_errors_on) {
    bigram g;
    bigram_uniform(&g);
    /* a loop a -> a (.9) that never ends: the result is the unfinished a a a */
    bigram_row(&g, GO, 1, (int[]){TA}, (double[]){.9});
    bigram_row(&g, TA, 1, (int[]){TA}, (double[]){.9});
    table_model tm = {.g = &g};
    int32_t out[3];
    tg_decoded res;
    tg_beam_opts o = {.width = 3, .max_len = 3};
    ck_assert_int_eq(tg_beam_search(table_step, &tm, V, GO, EOS, &o, out, &res), TG_OK);
    ck_assert(!res.finished);
    ck_assert_int_eq(res.length, 3);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(out[i], TA);
    ck_assert_double_eq_tol(res.logprob, 3 * log(.9), 1e-12);
    ck_assert_int_eq(tm.calls, 3);
    /* the trap again, through the callback: width 1 falls in, width 2 does not */
    trap_table(&g);
    tm = (table_model){.g = &g};
    o = (tg_beam_opts){.width = 1, .max_len = 4};
    ck_assert_int_eq(tg_beam_search(table_step, &tm, V, GO, EOS, &o, out, &res), TG_OK);
    ck_assert(out[0] == TA && out[1] == EOS && res.length == 2);
    o.width = 2;
    ck_assert_int_eq(tg_beam_search(table_step, &tm, V, GO, EOS, &o, out, &res), TG_OK);
    ck_assert(out[0] == TB && out[1] == EOS && res.length == 2);
    /* errors from the model stop the search and come back */
    tm = (table_model){.g = &g, .fail_at = 2};
    ck_assert_int_eq(tg_beam_search(table_step, &tm, V, GO, EOS, &o, out, &res), TG_ERR_STATE);
    /* eos outside the vocabulary */
    ck_assert_int_eq(tg_beam_search(table_step, &tm, V, GO, V, &o, out, &res), TG_ERR_ARG);
    ck_assert_int_eq(tg_beam_search(NULL, &tm, V, GO, EOS, &o, out, &res), TG_ERR_ARG);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------------------- */
START_TEST(seq2seq_reports_bad_token_tensors) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(9);
    tg_seq2seq m;
    tg_seq2seq_opts o = tg_seq2seq_opts_default(&tg_cell_lstm, 10, 9, 4, 5);
    ck_assert_int_eq(tg_seq2seq_init(&m, p, "s", &o, TG_F64, &rng), TG_OK);
    tg_tape *tp = tg_tape_new();
    tg_tensor *src = ids(2, 3, (double[]){4, 5, 6, 7, PAD, PAD});
    tg_tensor *tgt = ids(3, 2, (double[]){5, EOS, 6, EOS, 7, EOS});
    ck_assert_ptr_null(tg_seq2seq_loss(tp, &m, src, tgt, NULL));
    ck_assert_tape_error(tp, TG_ERR_SHAPE,
                         "seq2seq: tgt must be int32 [B, T] with B, T >= 1 and B as src: got "
                         "int32 [3,2]");
    tg_tape_reset(tp);
    tg_tensor *fsrc = tg_tensor_new(TG_F64, 2, (int64_t[]){2, 3});
    ck_assert_ptr_null(tg_seq2seq_loss(tp, &m, fsrc, tgt, NULL));
    ck_assert_tape_error(tp, TG_ERR_SHAPE,
                         "seq2seq: src must be int32 [B, T] with B, T >= 1: got float64 [2,3]");
    tg_tape_reset(tp);
    tg_tensor *big = ids(2, 2, (double[]){5, EOS, 12, EOS});   /* 12 is outside V_t = 9 */
    ck_assert_ptr_null(tg_seq2seq_loss(tp, &m, src, big, NULL));
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_INDEX);
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_seq2seq_loss(tp, &m, src, NULL, NULL));
    int32_t out[4];
    tg_decoded res[2];
    ck_assert_int_eq(tg_seq2seq_beam(tp, &m, src, &(tg_beam_opts){.width = -1}, out, res), TG_ERR_ARG);
    ck_assert_tape_error(tp, TG_ERR_ARG,
                         "seq2seq_beam: needs src, out, res, max_len >= 0, width in [0, 4096], a "
                         "finite alpha: 0, -1, 0");
    tg_tensor_free(src);
    tg_tensor_free(tgt);
    tg_tensor_free(fsrc);
    tg_tensor_free(big);
    tg_tape_free(tp);
    tg_seq2seq_free(&m);
    tg_params_free(p);
}
END_TEST

Suite *suite_nn_seq2seq(void) {
    Suite *s = suite_create("nn_seq2seq");
    TCase *c = tcase_create("model");
    tcase_add_test(c, seq2seq_registers_named_parameters_with_zero_pad_rows);
    tcase_add_test(c, seq2seq_init_rejects_bad_options);
    tcase_add_test(c, teacher_forcing_feeds_reference_tokens_and_ignores_pad_targets);
    tcase_add_test(c, seq2seq_reports_bad_token_tensors);
    suite_add_tcase(s, c);
    c = tcase_create("training");
    tcase_set_timeout(c, 120);
    tcase_add_test(c, training_with_attention_learns_to_reverse_and_greedy_decodes_it);
    suite_add_tcase(s, c);
    c = tcase_create("decoding");
    tcase_add_test(c, greedy_takes_the_likeliest_token_stops_at_eos_and_pads);
    tcase_add_test(c, beam_search_finds_the_best_sequence_of_a_hand_built_model);
    tcase_add_test(c, length_normalisation_ranks_by_mean_log_probability);
    tcase_add_test(c, beam_width_one_equals_greedy_lstm_without_attention);
    tcase_add_test(c, beam_width_one_equals_greedy_gru_with_additive_attention);
    tcase_add_test(c, beam_width_one_equals_greedy_stacked_lstm_with_general_attention);
    tcase_add_test(c, beam_search_over_a_callback_stops_at_max_len_and_passes_errors_on);
    suite_add_tcase(s, c);
    return s;
}
