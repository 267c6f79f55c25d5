/* examples/seq2seq.c - the lecture's addition task with an LSTM encoder-decoder.
 *
 * Questions such as "535+61" go in one character at a time and the answer
 * "596" comes out one character at a time, so the network has to learn
 * addition with carries from examples alone.
 *
 *   source  "535+61"  -> ids of '1' '6' '+' '5' '3' '5', then PAD     [B, S], S = 2D+1
 *   target  "596"     -> ids of '5' '9' '6', EOS, then PAD             [B, T], T = D+2
 * The question is read reversed, as in the lecture (--no-reverse: as written).
 *
 * Model (tapegrad/nn_seq2seq.h): an LSTM reads the source; an LSTM decoder
 * starts from its final state and, from GO, predicts one character per step.
 * Training uses teacher forcing (the decoder is fed the reference characters);
 * the loss is the mean cross entropy over the non-PAD target positions. With
 * --attention the decoder also looks at every encoder output at each step
 * (Luong et al. 2015). Decoding is greedy, and with --beam K also beam search.
 *
 * Data: both operands are drawn uniformly from 0 .. 10^D - 1 with a seeded
 * tg_rng. A held-out test set and a validation set of distinct questions are
 * drawn first and marked in a bitmap; training questions are drawn afresh for
 * every batch and any marked question is rejected, so no test question is
 * ever trained on. Training stops early once the validation exact-match
 * accuracy reaches --stop-at; the test set is only used at the end.
 *
 * Memory: the batch tensors are made once and refilled; the training tape is
 * reset every step, so a warm step makes no heap allocation (counted and
 * printed at the end). Evaluation uses its own tape. */
#include "common.h"

#include <tapegrad.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Vocabularies: the four special tokens (nn_layers.h), then '0'..'9', then '+'. */
enum { TOK_DIGIT = 4, TOK_PLUS = 14, SRC_VOCAB = 15, TGT_VOCAB = 14 };
enum { MAX_DIGITS = 4, EVAL_BATCH = 500, N_SHOW = 4 };

typedef struct config {
    int64_t steps, batch, hidden, embed, digits, test, val, eval_every, beam, seed, threads;
    double lr, clip, stop_at, alpha;
    bool attention, no_reverse;
    const char *score, *plot;
} config;

typedef struct question { int32_t a, b; } question;

/* The questions, and which of them may not be trained on. */
typedef struct dataset {
    int64_t space;       /* 10^D: operands are 0 .. space-1            */
    uint8_t *held;       /* bitmap over space^2 questions: test or val */
    question *test, *val;
    int64_t n_test, n_val;
} dataset;

/* Batch tensors, made once and refilled. */
typedef struct batch {
    int64_t B, S, T;
    tg_tensor *src;   /* TG_I32 [B, S] */
    tg_tensor *tgt;   /* TG_I32 [B, T] */
} batch;

/* Evaluation buffers: decoded ids [EVAL_BATCH, T] and their summaries. */
typedef struct decoder_out {
    batch in;
    int32_t *ids;
    tg_decoded *res;
} decoder_out;

/* ---- data -------------------------------------------------------------------------- */
static int64_t pow10i(int64_t d) {
    int64_t p = 1;
    while (d-- > 0) p *= 10;
    return p;
}

static int64_t qkey(const dataset *d, question q) { return (int64_t)q.a * d->space + q.b; }
static bool is_held(const dataset *d, question q) {
    int64_t k = qkey(d, q);
    return d->held[k >> 3] & (1u << (k & 7));
}
static void hold(dataset *d, question q) {
    int64_t k = qkey(d, q);
    d->held[k >> 3] |= (uint8_t)(1u << (k & 7));
}

static question draw(const dataset *d, tg_rng *rng) {
    return (question){(int32_t)(tg_rng_next(rng) % (uint64_t)d->space),
                      (int32_t)(tg_rng_next(rng) % (uint64_t)d->space)};
}

/* n distinct questions not held yet; they become held. */
static void draw_held(dataset *d, question *out, int64_t n, tg_rng *rng) {
    for (int64_t i = 0; i < n; i++) {
        question q;
        do q = draw(d, rng);
        while (is_held(d, q));
        hold(d, q);
        out[i] = q;
    }
}

/* A training question: never a test or validation one. */
static question draw_train(const dataset *d, tg_rng *rng) {
    question q;
    do q = draw(d, rng);
    while (is_held(d, q));
    return q;
}

static int make_dataset(dataset *d, const config *c, tg_rng *rng) {
    memset(d, 0, sizeof *d);
    d->space = pow10i(c->digits);
    int64_t total = d->space * d->space;
    /* keep at least half of all questions for training */
    if (c->test + c->val > total / 2) {
        fprintf(stderr, "error: --test + --val (%lld) leave too few of the %lld questions with "
                "%lld-digit operands for training\n", (long long)(c->test + c->val),
                (long long)total, (long long)c->digits);
        return 1;
    }
    d->held = calloc((size_t)(total + 7) / 8, 1);
    d->test = malloc((size_t)c->test * sizeof *d->test);
    d->val = malloc((size_t)(c->val > 0 ? c->val : 1) * sizeof *d->val);
    if (!d->held || !d->test || !d->val) {
        fprintf(stderr, "error: out of memory for the question sets\n");
        return 1;
    }
    d->n_test = c->test;
    d->n_val = c->val;
    draw_held(d, d->test, d->n_test, rng);
    draw_held(d, d->val, d->n_val, rng);
    return 0;
}

static void free_dataset(dataset *d) {
    free(d->held);
    free(d->test);
    free(d->val);
}

/* Decimal digits of v into s (no terminator); returns their count. */
static int digits_of(int64_t v, char *s) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    memcpy(s, tmp, (size_t)n);
    return n;
}

/* "535+61", or reversed "16+535" (the trick of Sutskever et al. 2014: the
 * encoder ends on the leading digits, which the decoder writes first). */
static int question_text(question q, bool reverse, char *s) {
    int n = digits_of(q.a, s);
    s[n++] = '+';
    n += digits_of(q.b, s + n);
    for (int i = 0; reverse && i < n / 2; i++) {
        char t = s[i];
        s[i] = s[n - 1 - i];
        s[n - 1 - i] = t;
    }
    s[n] = '\0';
    return n;
}

/* Row r of the batch: the question's characters, the answer's and EOS, PAD after. */
static void encode(batch *bt, int64_t r, question q, bool reverse) {
    int32_t *src = (int32_t *)tg_tensor_data(bt->src) + r * bt->S;
    int32_t *tgt = (int32_t *)tg_tensor_data(bt->tgt) + r * bt->T;
    char s[2 * MAX_DIGITS + 2];
    int n = question_text(q, reverse, s);
    for (int64_t i = 0; i < bt->S; i++)
        src[i] = i >= n ? TG_TOKEN_PAD : s[i] == '+' ? TOK_PLUS : TOK_DIGIT + (s[i] - '0');
    n = digits_of((int64_t)q.a + q.b, s);
    for (int64_t i = 0; i < bt->T; i++)
        tgt[i] = i < n ? TOK_DIGIT + (s[i] - '0') : i == n ? TG_TOKEN_EOS : TG_TOKEN_PAD;
}

static int make_batch(batch *bt, int64_t B, int64_t digits) {
    bt->B = B;
    bt->S = 2 * digits + 1;
    bt->T = digits + 2;   /* up to D+1 answer digits, then EOS */
    bt->src = tg_tensor_new(TG_I32, 2, (int64_t[]){B, bt->S});
    bt->tgt = tg_tensor_new(TG_I32, 2, (int64_t[]){B, bt->T});
    return bt->src && bt->tgt ? 0 : 1;
}

static void free_batch(batch *bt) {
    tg_tensor_free(bt->src);
    tg_tensor_free(bt->tgt);
}

/* Decoded ids -> "596" (digits up to EOS); false if anything else came out. */
static bool answer_text(const int32_t *ids, int64_t n, char *s) {
    int64_t k = 0;
    bool ok = true;
    for (int64_t i = 0; i < n && ids[i] != TG_TOKEN_EOS; i++) {
        bool digit = ids[i] >= TOK_DIGIT && ids[i] < TOK_DIGIT + 10;
        s[k++] = digit ? (char)('0' + ids[i] - TOK_DIGIT) : '?';
        ok = ok && digit;
    }
    s[k] = '\0';
    return ok && k > 0;
}

/* ---- model ------------------------------------------------------------------------ */
static bool parse_score(const char *name, tg_score_kind *k) {
    static const tg_score_kind kinds[] = {TG_SCORE_DOT, TG_SCORE_GENERAL, TG_SCORE_ADDITIVE,
                                          TG_SCORE_SCALED_DOT};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(name, tg_score_name(kinds[i]))) {
            *k = kinds[i];
            return true;
        }
    return false;
}

static int make_model(tg_seq2seq *m, tg_params *p, const config *c, tg_rng *rng) {
    tg_seq2seq_opts o = tg_seq2seq_opts_default(&tg_cell_lstm, SRC_VOCAB, TGT_VOCAB, c->embed,
                                                c->hidden);
    o.attention = c->attention;
    if (!parse_score(c->score, &o.score)) {
        fprintf(stderr, "error: --score must be dot, general, additive or scaled_dot, not '%s'\n",
                c->score);
        return 1;
    }
    if (tg_seq2seq_init(m, p, "adder", &o, TG_F32, rng) != TG_OK) {
        fprintf(stderr, "error: model: %s\n", tg_last_error());
        return 1;
    }
    return 0;
}

/* ---- evaluation ------------------------------------------------------------------- */
/* Decodes rows [0, n) of the evaluation batch: greedy (beam < 2) or beam search. */
static tg_status decode(tg_tape *tp, const tg_seq2seq *m, decoder_out *d, int64_t beam,
                        double alpha) {
    if (beam < 2) return tg_seq2seq_greedy(tp, m, d->in.src, d->in.T, d->ids, d->res);
    tg_beam_opts bo = {.width = (int)beam, .alpha = alpha, .max_len = d->in.T};
    return tg_seq2seq_beam(tp, m, d->in.src, &bo, d->ids, d->res);
}

/* One question as written, the model's answer and the true one. */
static void show(ex_progress *pr, question q, const int32_t *ids, int64_t T) {
    char qs[2 * MAX_DIGITS + 2], got[MAX_DIGITS + 4];
    question_text(q, false, qs);
    bool ok = answer_text(ids, T, got);
    int64_t want = (int64_t)q.a + q.b;
    bool right = ok && strtoll(got, NULL, 10) == want && got[0] && (got[0] != '0' || !got[1]);
    ex_log(pr, "    %-*s = %-*s %s %lld", (int)(2 * MAX_DIGITS + 1), qs, MAX_DIGITS + 2, got,
           right ? "ok   " : "WRONG", (long long)want);
}

/* Exact-match accuracy on qs[0..n): the decoded characters must be the answer
 * and EOS. Shows the first `shown` questions. Returns -1 on a decoding error. */
static double evaluate(tg_tape *tp, const tg_seq2seq *m, decoder_out *d, const question *qs,
                       int64_t n, const config *c, int64_t beam, int shown, ex_progress *pr) {
    int64_t right = 0, T = d->in.T;
    for (int64_t start = 0; start < n; start += d->in.B) {
        int64_t rows = n - start < d->in.B ? n - start : d->in.B;
        /* a short last chunk repeats its first question in the spare rows */
        for (int64_t r = 0; r < d->in.B; r++)
            encode(&d->in, r, qs[start + (r < rows ? r : 0)], !c->no_reverse);
        tg_status st = decode(tp, m, d, beam, c->alpha);
        if (st != TG_OK) {
            fprintf(stderr, "error: decoding: %s\n", tg_tape_error(tp));
            tg_tape_reset(tp);
            return -1;
        }
        const int32_t *ref = tg_tensor_cdata(d->in.tgt);
        for (int64_t r = 0; r < rows; r++) {
            bool same = d->res[r].finished;   /* EOS right after the answer */
            for (int64_t t = 0; same && t < d->res[r].length; t++)
                same = d->ids[r * T + t] == ref[r * T + t];
            right += same;
            if (start + r < shown) show(pr, qs[start + r], d->ids + r * T, T);
        }
        tg_tape_reset(tp);
    }
    return (double)right / (double)n;
}

/* ---- attention picture ------------------------------------------------------------ */
/* One decoder step as tg_seq2seq_step computes it (the equations of
 * nn_seq2seq.h), written out because that call does not return the attention
 * weights: w receives them, [n, S]. */
static tg_tensor *step_with_weights(tg_tape *tp, const tg_seq2seq *m,
                                    const tg_seq2seq_memory *mem, tg_rnn_state *state,
                                    tg_tensor *prev, tg_tensor **w) {
    /* x = emb_t(y_{t-1}); h^l = cell_l(h^(l-1), state^l) */
    tg_tensor *h = tg_embedding_layer_forward(tp, &m->tgt_embed, prev);
    for (int l = 0; l < m->opts.num_layers; l++) {
        tg_rnn_state next;
        h = tg_rnn_cell_step(tp, &m->decoder[l], h, &state[l], &next);
        state[l] = next;
    }
    /* a = attention(h^L, outputs, mask);  o = tanh(W_c [a; h^L] + b_c);  logits = W_o o + b_o */
    tg_tensor *a = tg_attention_forward(tp, &m->attn, h, mem->outputs, NULL, mem->mask, w);
    tg_tensor *o = tg_linear_forward(tp, &m->combine, tg_concat(tp, 2, (tg_tensor *[]){a, h}, 1));
    return tg_linear_forward(tp, &m->out, o);
}

/* Greedy decoding of row 0 of src [1, S], keeping each step's weights in
 * map[T][S]. Returns the steps decoded (EOS included), -1 on error. */
static int64_t decode_with_weights(tg_tape *tp, const tg_seq2seq *m, tg_tensor *src, int64_t T,
                                   int32_t *ids, double *map) {
    int64_t S = tg_tensor_dim(src, 1), n = 0;
    tg_seq2seq_memory mem;
    if (tg_seq2seq_encode(tp, m, src, NULL, &mem) != TG_OK) return -1;
    tg_tensor *prev = tg_tape_tensor(tp, TG_I32, 1, (int64_t[]){1});
    if (!prev) return -1;
    *(int32_t *)tg_tensor_data(prev) = TG_TOKEN_GO;
    while (n < T) {
        tg_tensor *w = NULL, *logits = step_with_weights(tp, m, &mem, mem.state, prev, &w);
        if (!logits || !w) return -1;
        int32_t best = 0;
        for (int32_t v = 1; v < TGT_VOCAB; v++)
            if (tg_tensor_get(logits, v) > tg_tensor_get(logits, best)) best = v;
        for (int64_t j = 0; j < S; j++) map[n * S + j] = tg_tensor_get(w, j);
        ids[n++] = best;
        *(int32_t *)tg_tensor_data(prev) = best;
        if (best == TG_TOKEN_EOS) break;
    }
    return n;
}

/* Heatmap of the attention while answering the first test question with two
 * D-digit operands (rows: answer characters, columns: question characters). */
static void plot_attention(tg_tape *tp, const tg_seq2seq *m, const dataset *d, const config *c) {
    int64_t pick = -1, lo = d->space / 10, S = 2 * c->digits + 1, T = c->digits + 2;
    for (int64_t i = 0; i < d->n_test && pick < 0; i++)
        if (d->test[i].a >= lo && d->test[i].b >= lo) pick = i;
    pick = pick < 0 ? 0 : pick;
    batch one;
    if (make_batch(&one, 1, c->digits)) return;
    encode(&one, 0, d->test[pick], !c->no_reverse);
    int32_t ids[MAX_DIGITS + 2];
    double map[(MAX_DIGITS + 2) * (2 * MAX_DIGITS + 1)];
    tg_no_grad_begin(tp);
    tg_tape_set_training(tp, false);
    int64_t n = decode_with_weights(tp, m, one.src, T, ids, map);
    tg_tape_set_training(tp, true);
    tg_no_grad_end(tp);
    if (n < 0) fprintf(stderr, "error: attention weights: %s\n", tg_tape_error(tp));
    /* the written-out step must decode exactly as the library's */
    int32_t lib[MAX_DIGITS + 2];
    tg_decoded res;
    if (n > 0 && (tg_seq2seq_greedy(tp, m, one.src, T, lib, &res) != TG_OK || res.length != n ||
                  memcmp(lib, ids, (size_t)n * sizeof *ids)))
        printf("note: the written-out decoder step disagrees with tg_seq2seq_greedy\n");
    char q[2 * MAX_DIGITS + 2], title[128], rl[MAX_DIGITS + 2][8], cl[2 * MAX_DIGITS + 1][4];
    const char *rows[MAX_DIGITS + 2], *cols[2 * MAX_DIGITS + 1];
    int64_t cols_n = question_text(d->test[pick], !c->no_reverse, q);
    for (int64_t j = 0; j < cols_n; j++) {
        snprintf(cl[j], sizeof cl[j], "%c", q[j]);
        cols[j] = cl[j];
    }
    for (int64_t i = 0; i < n; i++) {   /* drop the PAD columns: keep the first cols_n of S */
        bool digit = ids[i] >= TOK_DIGIT && ids[i] < TOK_DIGIT + 10;
        if (ids[i] == TG_TOKEN_EOS) snprintf(rl[i], sizeof rl[i], "EOS");
        else snprintf(rl[i], sizeof rl[i], "%c", digit ? '0' + ids[i] - TOK_DIGIT : '?');
        rows[i] = rl[i];
        memmove(map + i * cols_n, map + i * S, (size_t)cols_n * sizeof *map);
    }
    char as_written[2 * MAX_DIGITS + 2];
    question_text(d->test[pick], false, as_written);
    snprintf(title, sizeof title, "attention (%s score) while answering %s%s", c->score,
             as_written, c->no_reverse ? "" : " (read reversed)");
    if (n > 0) ex_plot_heatmap(c->plot, title, map, (int)n, (int)cols_n, rows, cols);
    tg_tape_reset(tp);
    free_batch(&one);
}

/* ---- training --------------------------------------------------------------------- */
typedef struct trainer {
    tg_tape *tp, *eval_tp;
    tg_params *p;
    tg_optim *opt;
    tg_sched *sched;        /* cosine decay of the learning rate, stepped per update */
    tg_seq2seq *m;
    batch bt;
    decoder_out dec;
    uint64_t warm_allocs;   /* heap allocations inside warm training steps */
} trainer;

/* One teacher-forced step on a fresh batch; returns the loss, NaN on error. */
static double train_step(trainer *t, const dataset *d, const config *c, tg_rng *rng) {
    for (int64_t r = 0; r < t->bt.B; r++) encode(&t->bt, r, draw_train(d, rng), !c->no_reverse);
    tg_params_zero_grad(t->p);
    tg_tensor *loss = tg_seq2seq_loss(t->tp, t->m, t->bt.src, t->bt.tgt, NULL);
    return ex_update(t->tp, loss, t->p, t->opt, t->sched, c->clip);
}

/* Trains until --steps or until the validation accuracy reaches --stop-at.
 * Returns the steps done, -1 on error. */
static int64_t train(trainer *t, const dataset *d, const config *c, tg_rng *rng) {
    ex_progress pr;
    ex_progress_start(&pr, c->steps, "questions");
    double avg = 0;
    int64_t step = 0;
    while (step < c->steps) {
        uint64_t before = tg_heap_allocs();
        double loss = train_step(t, d, c, rng);
        if (++step > 2) t->warm_allocs += tg_heap_allocs() - before;
        if (!ex_loss_ok(&pr, t->tp, "seq2seq", step, loss, c->lr)) return -1;
        avg = step == 1 ? loss : 0.98 * avg + 0.02 * loss;
        ex_progress_update(&pr, step, avg, t->bt.B);
        if (c->eval_every > 0 && (step % c->eval_every == 0 || step == c->steps) && d->n_val) {
            double acc = evaluate(t->eval_tp, t->m, &t->dec, d->val, d->n_val, c, 1,
                                  step == c->steps ? 0 : 2, &pr);
            if (acc < 0) return -1;
            ex_log(&pr, "step %lld  loss %.4f  lr %.2e  validation exact match %.4f (greedy)",
                   (long long)step, avg, tg_optim_lr(t->opt, 0), acc);
            if (c->stop_at > 0 && acc >= c->stop_at) {
                ex_log(&pr, "validation accuracy reached --stop-at %.3f: stopping", c->stop_at);
                break;
            }
        }
    }
    ex_progress_done(&pr);
    return step;
}

/* Final figures on the held-out test set. */
static int report(trainer *t, const dataset *d, const config *c) {
    printf("held-out test set: %lld questions never trained on; first few:\n",
           (long long)d->n_test);
    double t0 = ex_now();
    double greedy = evaluate(t->eval_tp, t->m, &t->dec, d->test, d->n_test, c, 1, N_SHOW, NULL);
    if (greedy < 0) return 1;
    printf("test exact-match accuracy (greedy):      %.4f  (%.1f s)\n", greedy, ex_now() - t0);
    if (c->beam >= 2) {
        t0 = ex_now();
        double beam = evaluate(t->eval_tp, t->m, &t->dec, d->test, d->n_test, c, c->beam, 0, NULL);
        if (beam < 0) return 1;
        printf("test exact-match accuracy (beam, k=%lld):  %.4f  (%.1f s)\n", (long long)c->beam,
               beam, ex_now() - t0);
    }
    if (c->attention && *c->plot) plot_attention(t->eval_tp, t->m, d, c);
    return 0;
}

/* Peak memory, measured (peak RSS, hidden 128..1024, batch 128..2048, beam 16):
 * a training step keeps about 280 bytes per batch x (question + answer
 * length) x hidden on the tape (340 with attention); decoding about 100 per
 * evaluation row x beam x answer length x hidden. Weights (two LSTMs, and an
 * attention layer) count with gradients and two Adam moments; the held-out
 * questions with a bitmap over all 10^2D of them. */
static int check_config(const config *c, const char *prog) {
    double H = (double)c->hidden, E = (double)c->embed, D = (double)c->digits;
    double L = 3 * D + 5, per = c->attention ? 340 : 280;
    double rows = fmin(fmax((double)c->test, (double)c->val), EVAL_BATCH);
    double tape = fmax(per * (double)c->batch * L, 100 * rows * fmax((double)c->beam, 1) * (D + 2));
    double weights = 16 * (8 * H * (E + H) + (c->attention ? 3 * H * H : 0));
    double data = pow(100, D) / 8 + 16 * ((double)c->test + (double)c->val);
    char sizes[160];
    snprintf(sizes, sizeof sizes, "--batch %lld --hidden %lld --embed %lld --digits %lld --beam "
             "%lld --test %lld --val %lld", (long long)c->batch, (long long)c->hidden,
             (long long)c->embed, (long long)c->digits, (long long)c->beam, (long long)c->test,
             (long long)c->val);
    return ex_memory_fits(prog, 64e6 + tape * H + weights + data, sizes) ? 0 : 2;
}

static int setup(trainer *t, tg_seq2seq *m, const config *c, tg_rng *rng) {
    memset(t, 0, sizeof *t);
    t->m = m;
    t->p = tg_params_new();
    t->tp = tg_tape_new();
    t->eval_tp = tg_tape_new();
    if (!t->p || !t->tp || !t->eval_tp || make_model(m, t->p, c, rng)) return 1;
    t->opt = tg_optim_new(TG_OPTIM_ADAM, t->p, c->lr);
    t->sched = t->opt ? tg_sched_new_cosine(t->opt, 0, c->steps, c->lr / 20) : NULL;
    int64_t eb = c->test < EVAL_BATCH ? c->test : EVAL_BATCH;
    if (c->val > eb) eb = c->val < EVAL_BATCH ? c->val : EVAL_BATCH;
    if (!t->sched || make_batch(&t->bt, c->batch, c->digits) ||
        make_batch(&t->dec.in, eb, c->digits))
        return fprintf(stderr, "error: setup: %s\n", tg_last_error()), 1;
    t->dec.ids = malloc((size_t)(eb * t->dec.in.T) * sizeof *t->dec.ids);
    t->dec.res = malloc((size_t)eb * sizeof *t->dec.res);
    if (!t->dec.ids || !t->dec.res) return fprintf(stderr, "error: out of memory\n"), 1;
    if (c->threads > 0) {
        tg_tape_set_threads(t->tp, (int)c->threads);
        tg_tape_set_threads(t->eval_tp, (int)c->threads);
    }
    return 0;
}

static void teardown(trainer *t) {
    free(t->dec.ids);
    free(t->dec.res);
    free_batch(&t->dec.in);
    free_batch(&t->bt);
    tg_sched_free(t->sched);
    tg_optim_free(t->opt);
    tg_tape_free(t->tp);
    tg_tape_free(t->eval_tp);
    tg_params_free(t->p);
}

int main(int argc, char **argv) {
    config c = {.steps = 10000, .batch = 128, .hidden = 128, .embed = 32, .digits = 3,
                .test = 2000, .val = 1000, .eval_every = 1000, .beam = 0, .seed = 1,
                .lr = 3e-3, .clip = 1.0, .stop_at = 0.995, .alpha = 0, .score = "additive",
                .plot = "seq2seq-attention.png"};
    ex_opt opts[] = {
        {"steps", EX_INT, &c.steps, "training steps (batches)", EX_IN(1, EX_MAX_COUNT)},
        {"batch", EX_INT, &c.batch, "questions per batch", EX_IN(1, EX_MAX_SIZE)},
        {"digits", EX_INT, &c.digits, "operand digits D: operands 0 .. 10^D-1",
         EX_IN(1, MAX_DIGITS)},
        {"hidden", EX_INT, &c.hidden, "LSTM hidden size (encoder and decoder)",
         EX_IN(1, EX_MAX_SIZE)},
        {"embed", EX_INT, &c.embed, "character embedding size", EX_IN(1, EX_MAX_SIZE)},
        {"attention", EX_FLAG, &c.attention, "decoder attends to the encoder outputs", EX_NONE},
        {"score", EX_STR, &c.score, "attention score: dot, general, additive, scaled_dot", EX_NONE},
        {"plot", EX_STR, &c.plot, "with --attention: heatmap PNG of one answer (\"\": none)",
         EX_NONE},
        {"no-reverse", EX_FLAG, &c.no_reverse, "feed the question as written, not reversed",
         EX_NONE},
        {"beam", EX_INT, &c.beam, "also decode the test set with beam search of this width (>= 2)",
         EX_IN(0, 64)},
        {"alpha", EX_DOUBLE, &c.alpha, "beam length normalisation: score = logprob / length^alpha",
         EX_IN(0, 10)},
        {"lr", EX_DOUBLE, &c.lr, "Adam learning rate (cosine decay to lr/20 over --steps)", EX_LR},
        {"clip", EX_DOUBLE, &c.clip, "gradient norm clipping", EX_ABOVE(0, INFINITY)},
        {"test", EX_INT, &c.test, "held-out test questions", EX_IN(1, EX_MAX_COUNT)},
        {"val", EX_INT, &c.val, "validation questions (also never trained on)",
         EX_IN(0, EX_MAX_COUNT)},
        {"eval-every", EX_INT, &c.eval_every, "validate every this many steps (0: never)",
         EX_IN(0, EX_MAX_COUNT)},
        {"stop-at", EX_DOUBLE, &c.stop_at, "stop at this validation exact match (0: off)",
         EX_IN(0, 1)},
        EX_OPT_THREADS(&c.threads),
        {"seed", EX_INT, &c.seed, "seed for data and weights", EX_SEED},
    };
    int rc = ex_parse(argc, argv,
                      "Learns to add: an LSTM encoder-decoder reads \"535+61\" and writes \"596\".",
                      opts, EX_COUNT(opts));
    if (rc >= 0) return rc;
    if ((rc = check_config(&c, argv[0]))) return rc;

    tg_rng rng = tg_rng_seeded((uint64_t)c.seed);
    dataset d;
    tg_seq2seq m;
    memset(&m, 0, sizeof m);
    trainer t = {0};
    rc = make_dataset(&d, &c, &rng) || setup(&t, &m, &c, &rng);
    if (!rc) {
        printf("addition with %lld-digit operands: %lld test + %lld validation questions held out "
               "of %lld\nLSTM encoder-decoder, embed %lld, hidden %lld, %s, %lld parameters; "
               "Adam lr %g, batch %lld, seed %lld\n",
               (long long)c.digits, (long long)c.test, (long long)c.val,
               (long long)(d.space * d.space), (long long)c.embed, (long long)c.hidden,
               c.attention ? "with attention" : "no attention", (long long)tg_params_numel(t.p),
               c.lr, (long long)c.batch, (long long)c.seed);
        double t0 = ex_now();
        int64_t steps = train(&t, &d, &c, &rng);
        rc = steps < 0;
        if (!rc) {
            printf("trained %lld steps (%lld questions) in %.1f s; heap allocations in warm "
                   "training steps: %llu\n", (long long)steps, (long long)(steps * c.batch),
                   ex_now() - t0, (unsigned long long)t.warm_allocs);
            rc = report(&t, &d, &c);
        }
    }
    teardown(&t);
    tg_seq2seq_free(&m);
    free_dataset(&d);
    return rc;
}
