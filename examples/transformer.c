/* examples/transformer.c - a small transformer encoder learns to sort (or
 * reverse) strings of digits, and shows where its heads look.
 *
 *   input  3 1 4 1 5 9 2 6 5 3        ids [B, L], L = 10
 *   target 1 1 2 3 3 4 5 5 6 9        (--task sort, the default)
 *          3 5 6 2 9 5 1 4 1 3        (--task reverse)
 *
 * Model, for ids [B, L]:
 *   x      = Embed(ids) + PE            [B, L, C]   sinusoidal positions (nn_attention.h)
 *   x      = Block_l(x), l = 1..N       [B, L, C]   self-attention + feed-forward, post-norm
 *   logits = x W_o^T + b_o              [B, L, 10]  one digit per position
 *   loss   = mean cross entropy over all B*L positions
 * C = 64, 4 heads, N = 2 by default. Every position sees the whole input, so
 * one forward pass answers the whole string: sorting needs each position to
 * count how many digits of each kind there are, reversing to attend to its
 * mirror image.
 *
 * Training: Adam with a linear warm-up then cosine decay; fresh random strings
 * every batch. A test set and a validation set of distinct strings are drawn
 * first and training strings equal to any of them are rejected. The metric is
 * exact match: all L digits right.
 *
 * Picture: the self-attention weights of one head for one test string, as a
 * PNG heatmap (gnuplot). The encoder block does not return its attention
 * weights, so the program recomputes the chosen layer's self-attention with
 * tg_mha_forward on the block's input (post-norm feeds the block input to
 * attention unchanged; pre-norm feeds LN_1 of it). It also prints, per layer
 * and head, the share of attention that lands on positions holding the digit
 * the query position must output. */
#include "common.h"

#include <tapegrad.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_LAYERS = 8, MAX_LEN = 18, EVAL_BATCH = 500, V = 10 };

typedef struct config {
    int64_t steps, batch, length, dim, heads, layers, ffn, warmup, test, val, eval_every, seed,
        threads, plot_layer, plot_head;
    double lr, clip, stop_at;
    bool pre_norm;
    const char *task, *plot;
} config;

typedef struct model {
    tg_embedding_layer embed;            /* [V, C]      */
    tg_transformer_block blk[MAX_LAYERS];
    tg_layer_norm final_norm;            /* pre-norm only */
    tg_linear out;                       /* [V, C]      */
    int64_t layers;
    bool pre_norm;
} model;

/* A batch: ids and targets TG_I32 [B, L], made once and refilled. */
typedef struct batch { int64_t B, L; tg_tensor *ids, *tgt; } batch;

/* Strings that may not be trained on: an open-addressing set of their values. */
typedef struct held_set { uint64_t *slot; int64_t mask; } held_set;

typedef struct dataset {
    int64_t L;
    bool sort;
    held_set held;
    uint64_t *test, *val;   /* the strings as L-digit numbers */
    int64_t n_test, n_val;
} dataset;

/* ---- data -------------------------------------------------------------------------- */
static uint64_t hash64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

/* Inserts v (stored as v+1 so 0 means empty); false if it was there already. */
static bool held_add(held_set *h, uint64_t v) {
    for (int64_t i = (int64_t)(hash64(v) & (uint64_t)h->mask);; i = (i + 1) & h->mask) {
        if (h->slot[i] == v + 1) return false;
        if (!h->slot[i]) {
            h->slot[i] = v + 1;
            return true;
        }
    }
}

static bool held_has(const held_set *h, uint64_t v) {
    for (int64_t i = (int64_t)(hash64(v) & (uint64_t)h->mask);; i = (i + 1) & h->mask) {
        if (h->slot[i] == v + 1) return true;
        if (!h->slot[i]) return false;
    }
}

static uint64_t draw_string(const dataset *d, tg_rng *rng) {
    uint64_t v = 0;
    for (int64_t i = 0; i < d->L; i++) v = v * 10 + tg_rng_next(rng) % 10;
    return v;
}

static void draw_held(dataset *d, uint64_t *out, int64_t n, tg_rng *rng) {
    for (int64_t i = 0; i < n; i++) {
        uint64_t v;
        do v = draw_string(d, rng);
        while (!held_add(&d->held, v));
        out[i] = v;
    }
}

static uint64_t draw_train(const dataset *d, tg_rng *rng) {
    uint64_t v;
    do v = draw_string(d, rng);
    while (held_has(&d->held, v));
    return v;
}

static int make_dataset(dataset *d, const config *c, tg_rng *rng) {
    memset(d, 0, sizeof *d);
    d->L = c->length;
    d->sort = !strcmp(c->task, "sort");
    double space = pow(10.0, (double)c->length);
    if ((double)(c->test + c->val) > space / 2) {
        fprintf(stderr, "error: --test + --val leave too few %lld-digit strings for training\n",
                (long long)c->length);
        return 1;
    }
    int64_t cap = 16;
    while (cap < 2 * (c->test + c->val)) cap *= 2;
    d->held.slot = calloc((size_t)cap, sizeof *d->held.slot);
    d->held.mask = cap - 1;
    d->test = malloc((size_t)c->test * sizeof *d->test);
    d->val = malloc((size_t)(c->val > 0 ? c->val : 1) * sizeof *d->val);
    if (!d->held.slot || !d->test || !d->val) {
        fprintf(stderr, "error: out of memory for the string sets\n");
        return 1;
    }
    d->n_test = c->test;
    d->n_val = c->val;
    draw_held(d, d->test, d->n_test, rng);
    draw_held(d, d->val, d->n_val, rng);
    return 0;
}

static void free_dataset(dataset *d) {
    free(d->held.slot);
    free(d->test);
    free(d->val);
}

/* The digits of v (most significant first) and the task's answer. */
static void digits_and_target(const dataset *d, uint64_t v, int32_t *in, int32_t *out) {
    for (int64_t i = d->L - 1; i >= 0; i--, v /= 10) in[i] = (int32_t)(v % 10);
    if (!d->sort) {
        for (int64_t i = 0; i < d->L; i++) out[i] = in[d->L - 1 - i];
        return;
    }
    int64_t count[V] = {0}, k = 0;
    for (int64_t i = 0; i < d->L; i++) count[in[i]]++;
    for (int32_t digit = 0; digit < V; digit++)
        while (count[digit]--) out[k++] = digit;
}

static void encode(const dataset *d, batch *b, int64_t row, uint64_t v) {
    digits_and_target(d, v, (int32_t *)tg_tensor_data(b->ids) + row * b->L,
                      (int32_t *)tg_tensor_data(b->tgt) + row * b->L);
}

static int make_batch(batch *b, int64_t B, int64_t L) {
    *b = (batch){.B = B, .L = L};
    b->ids = tg_tensor_new(TG_I32, 2, (int64_t[]){B, L});
    b->tgt = tg_tensor_new(TG_I32, 2, (int64_t[]){B, L});
    return b->ids && b->tgt ? 0 : 1;
}

static void free_batch(batch *b) {
    tg_tensor_free(b->ids);
    tg_tensor_free(b->tgt);
}

/* ---- model ------------------------------------------------------------------------ */
static int make_model(model *m, tg_params *p, const config *c, tg_rng *rng) {
    memset(m, 0, sizeof *m);
    m->layers = c->layers;
    m->pre_norm = c->pre_norm;
    tg_transformer_opts xo = {.heads = c->heads, .ffn_dim = c->ffn, .pre_norm = c->pre_norm};
    tg_status st = tg_embedding_layer_init(&m->embed, p, "embed", V, c->dim, TG_F32, rng, NULL);
    for (int64_t l = 0; st == TG_OK && l < c->layers; l++) {
        char name[32];
        snprintf(name, sizeof name, "layers.%lld", (long long)l);
        st = tg_transformer_encoder_init(&m->blk[l], p, name, c->dim, TG_F32, rng, &xo);
    }
    if (st == TG_OK && c->pre_norm)   /* a pre-norm stack ends with one more LayerNorm */
        st = tg_layer_norm_init(&m->final_norm, p, "norm", c->dim, 0, TG_F32);
    if (st == TG_OK) st = tg_linear_init(&m->out, p, "out", c->dim, V, TG_F32, rng, NULL);
    if (st != TG_OK) fprintf(stderr, "error: model: %s\n", tg_last_error());
    return st != TG_OK;
}

/* x [B, L, C] = Embed(ids) + PE */
static tg_tensor *embed(tg_tape *tp, const model *m, tg_tensor *ids) {
    int64_t L = tg_tensor_dim(ids, 1);
    tg_tensor *pe = tg_positional_encoding(tp, TG_F32, 0, L, m->embed.dim);
    return tg_add(tp, tg_embedding_layer_forward(tp, &m->embed, ids), pe);
}

/* ids [B, L] -> logits [B, L, V] */
static tg_tensor *forward(tg_tape *tp, const model *m, tg_tensor *ids) {
    tg_tensor *x = embed(tp, m, ids);
    for (int64_t l = 0; l < m->layers; l++)
        x = tg_transformer_encoder_forward(tp, &m->blk[l], x, NULL, NULL);
    if (m->pre_norm) x = tg_layer_norm_forward(tp, &m->final_norm, x);
    return tg_linear_forward(tp, &m->out, x);
}

/* ---- evaluation ------------------------------------------------------------------- */
static void digits_str(const int32_t *d, int64_t L, char *s) {
    for (int64_t i = 0; i < L; i++) s[i] = (char)('0' + d[i]);
    s[L] = '\0';
}

/* Argmax digit of each position of logits [n, L, V] into pred [n*L]. */
static void predict(const tg_tensor *logits, int32_t *pred, int64_t n_pos) {
    const float *z = tg_tensor_cdata(logits);
    for (int64_t i = 0; i < n_pos; i++) {
        int32_t best = 0;
        for (int32_t v = 1; v < V; v++)
            if (z[i * V + v] > z[i * V + best]) best = v;
        pred[i] = best;
    }
}

/* Exact-match accuracy on strings[0..n); shows the first `shown`. -1 on error. */
static double evaluate(tg_tape *tp, const model *m, const dataset *d, batch *eb, int32_t *pred,
                       const uint64_t *strings, int64_t n, int shown, ex_progress *pr) {
    int64_t right = 0, L = d->L;
    tg_no_grad_begin(tp);
    tg_tape_set_training(tp, false);
    for (int64_t start = 0; start < n; start += eb->B) {
        int64_t rows = n - start < eb->B ? n - start : eb->B;
        for (int64_t r = 0; r < eb->B; r++) encode(d, eb, r, strings[start + (r < rows ? r : 0)]);
        tg_tensor *logits = forward(tp, m, eb->ids);
        if (!logits) {
            fprintf(stderr, "error: evaluation: %s\n", tg_tape_error(tp));
            right = -1;
            break;
        }
        predict(logits, pred, eb->B * L);
        const int32_t *ref = tg_tensor_cdata(eb->tgt), *in = tg_tensor_cdata(eb->ids);
        for (int64_t r = 0; r < rows; r++) {
            bool same = !memcmp(pred + r * L, ref + r * L, (size_t)L * sizeof *pred);
            right += same;
            if (start + r >= shown) continue;
            char a[MAX_LEN + 1], b[MAX_LEN + 1];
            digits_str(in + r * L, L, a);
            digits_str(pred + r * L, L, b);
            ex_log(pr, "    %s -> %s %s", a, b, same ? "ok" : "WRONG");
        }
        tg_tape_reset(tp);
    }
    tg_tape_set_training(tp, true);
    tg_no_grad_end(tp);
    tg_tape_reset(tp);
    return right < 0 ? -1 : (double)right / (double)n;
}

/* ---- attention picture ------------------------------------------------------------- */
/* Self-attention weights of every layer for ids [1, L]: w[l] [1, h, L, L]. */
static int attention_weights(tg_tape *tp, const model *m, tg_tensor *ids, tg_tensor **w) {
    tg_tensor *x = embed(tp, m, ids);
    for (int64_t l = 0; l < m->layers && x; l++) {
        const tg_transformer_block *blk = &m->blk[l];
        tg_tensor *a_in = m->pre_norm ? tg_layer_norm_forward(tp, &blk->norm1, x) : x;
        tg_mha_call call = {.weights = &w[l]};
        tg_mha_forward(tp, &blk->self_attn, a_in, NULL, &call);
        x = tg_transformer_encoder_forward(tp, blk, x, NULL, NULL);
    }
    return x ? 0 : -1;
}

/* Share of query i's attention on keys holding the digit i must output,
 * averaged over the L queries. */
static double focus(const float *a, const int32_t *in, const int32_t *tgt, int64_t L) {
    double s = 0;
    for (int64_t i = 0; i < L; i++)
        for (int64_t j = 0; j < L; j++) s += in[j] == tgt[i] ? a[i * L + j] : 0;
    return s / (double)L;
}

/* Prints the focus of every head on test string 0 and plots one head. */
static int plot_attention(tg_tape *tp, const model *m, const dataset *d, const config *c) {
    int64_t L = d->L, H = c->heads;
    batch one;
    if (make_batch(&one, 1, L)) return 1;
    encode(d, &one, 0, d->test[0]);
    tg_tensor *w[MAX_LAYERS] = {0};
    tg_no_grad_begin(tp);
    tg_tape_set_training(tp, false);
    int rc = attention_weights(tp, m, one.ids, w);
    const int32_t *in = tg_tensor_cdata(one.ids), *tgt = tg_tensor_cdata(one.tgt);
    int64_t best_l = 0, best_h = 0;
    double best = -1;
    for (int64_t l = 0; !rc && l < m->layers; l++) {
        printf("  layer %lld focus by head:", (long long)l + 1);
        for (int64_t h = 0; h < H; h++) {
            double f = focus((const float *)tg_tensor_cdata(w[l]) + h * L * L, in, tgt, L);
            printf(" %.2f", f);
            if (f > best) best = f, best_l = l, best_h = h;
        }
        printf("\n");
    }
    if (c->plot_layer > 0) best_l = c->plot_layer - 1;
    if (c->plot_head > 0) best_h = c->plot_head - 1;
    if (!rc && *c->plot) {
        double map[MAX_LEN * MAX_LEN];
        const float *a = (const float *)tg_tensor_cdata(w[best_l]) + best_h * L * L;
        for (int64_t i = 0; i < L * L; i++) map[i] = a[i];
        char rl[MAX_LEN][8], cl[MAX_LEN][8], s_in[MAX_LEN + 1], s_out[MAX_LEN + 1], title[160];
        const char *rows[MAX_LEN], *cols[MAX_LEN];
        for (int64_t i = 0; i < L; i++) {
            snprintf(rl[i], sizeof rl[i], "%d", tgt[i]);
            snprintf(cl[i], sizeof cl[i], "%d", in[i]);
            rows[i] = rl[i];
            cols[i] = cl[i];
        }
        digits_str(in, L, s_in);
        digits_str(tgt, L, s_out);
        /* rows: query positions, labelled with the digit each must output */
        snprintf(title, sizeof title, "%s %s -> %s: layer %lld, head %lld (rows: output, columns: "
                 "input)", c->task, s_in, s_out, (long long)best_l + 1, (long long)best_h + 1);
        ex_plot_heatmap(c->plot, title, map, (int)L, (int)L, rows, cols);
    }
    if (rc) fprintf(stderr, "error: attention weights: %s\n", tg_tape_error(tp));
    tg_tape_set_training(tp, true);
    tg_no_grad_end(tp);
    tg_tape_reset(tp);
    free_batch(&one);
    return rc ? 1 : 0;
}

/* ---- training --------------------------------------------------------------------- */
typedef struct trainer {
    tg_tape *tp, *eval_tp;
    tg_params *p;
    tg_optim *opt;
    tg_sched *sched;
    model m;
    batch bt, eb;
    int32_t *pred;
    uint64_t warm_allocs;
} trainer;

static double train_step(trainer *t, const dataset *d, const config *c, tg_rng *rng) {
    for (int64_t r = 0; r < t->bt.B; r++) encode(d, &t->bt, r, draw_train(d, rng));
    tg_params_zero_grad(t->p);
    tg_tensor *loss = tg_cross_entropy(t->tp, forward(t->tp, &t->m, t->bt.ids), t->bt.tgt);
    return ex_update(t->tp, loss, t->p, t->opt, t->sched, c->clip);
}

static int64_t train(trainer *t, const dataset *d, const config *c, tg_rng *rng) {
    ex_progress pr;
    ex_progress_start(&pr, c->steps, "strings");
    double avg = 0;
    int64_t step = 0;
    while (step < c->steps) {
        uint64_t before = tg_heap_allocs();
        double loss = train_step(t, d, c, rng);
        if (++step > 2) t->warm_allocs += tg_heap_allocs() - before;
        if (!ex_loss_ok(&pr, t->tp, "transformer", step, loss, c->lr)) return -1;
        avg = step == 1 ? loss : 0.98 * avg + 0.02 * loss;
        ex_progress_update(&pr, step, avg, t->bt.B);
        if (c->eval_every > 0 && (step % c->eval_every == 0 || step == c->steps) && d->n_val) {
            double acc = evaluate(t->eval_tp, &t->m, d, &t->eb, t->pred, d->val, d->n_val,
                                  step == c->steps ? 0 : 2, &pr);
            if (acc < 0) return -1;
            ex_log(&pr, "step %lld  loss %.4f  lr %.2e  validation exact match %.4f",
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

/* Peak memory, measured (peak RSS, d_model 64..1024, ffn 256..2048, batch
 * 64..2048, length 10 and 18): about 40 bytes per weight (its gradient, Adam's
 * moments, the gradients of each use on the tape) and per token and layer
 * about 50 d_model + 5 ffn + 4 heads x length floats on the tape; evaluation
 * runs up to EVAL_BATCH strings at a time without gradients. */
static bool fits_memory(const config *c, const char *prog) {
    double d = (double)c->dim, f = (double)c->ffn, L = (double)c->length;
    double weights = (double)c->layers * (4 * d * d + 2 * d * f) + (V + L) * d;
    double eval_rows = fmin(fmax((double)c->test, (double)c->val), EVAL_BATCH);
    double rows = fmax((double)c->batch, eval_rows / 2);   /* no gradients: half the cost */
    double tape = 4 * (double)c->layers * rows * L * (50 * d + 5 * f + 4 * (double)c->heads * L);
    char sizes[160];
    snprintf(sizes, sizeof sizes, "--batch %lld --length %lld --layers %lld --dim %lld --ffn %lld "
             "--heads %lld", (long long)c->batch, (long long)c->length, (long long)c->layers,
             (long long)c->dim, (long long)c->ffn, (long long)c->heads);
    return ex_memory_fits(prog, 200e6 + 40 * weights + tape, sizes);
}

static int check_config(const config *c, const char *prog) {
    const char *bad = NULL;
    if (strcmp(c->task, "reverse") && strcmp(c->task, "sort"))
        bad = "--task must be reverse or sort";
    else if (c->dim % c->heads) bad = "--dim must be a multiple of --heads";
    else if (c->plot_layer > c->layers || c->plot_head > c->heads)
        bad = "--plot-layer and --plot-head must name an existing layer and head";
    if (bad) fprintf(stderr, "error: %s\n", bad);
    return bad || !fits_memory(c, prog) ? 2 : 0;
}

static int setup(trainer *t, const config *c, tg_rng *rng) {
    t->p = tg_params_new();
    t->tp = tg_tape_new();
    t->eval_tp = tg_tape_new();
    if (!t->p || !t->tp || !t->eval_tp || make_model(&t->m, t->p, c, rng)) return 1;
    t->opt = tg_optim_new(TG_OPTIM_ADAM, t->p, c->lr);
    int64_t warm = c->warmup < c->steps ? c->warmup : c->steps - 1;
    t->sched = t->opt ? tg_sched_new_cosine(t->opt, warm, c->steps, c->lr / 50) : NULL;
    int64_t eb = c->test > c->val ? c->test : c->val;
    eb = eb < EVAL_BATCH ? eb : EVAL_BATCH;
    if (!t->sched || make_batch(&t->bt, c->batch, c->length) || make_batch(&t->eb, eb, c->length))
        return fprintf(stderr, "error: setup: %s\n", tg_last_error()), 1;
    t->pred = malloc((size_t)(eb * c->length) * sizeof *t->pred);
    if (!t->pred) return fprintf(stderr, "error: out of memory\n"), 1;
    if (c->threads > 0) {
        tg_tape_set_threads(t->tp, (int)c->threads);
        tg_tape_set_threads(t->eval_tp, (int)c->threads);
    }
    return 0;
}

static void teardown(trainer *t) {
    free(t->pred);
    free_batch(&t->bt);
    free_batch(&t->eb);
    tg_sched_free(t->sched);
    tg_optim_free(t->opt);
    tg_tape_free(t->tp);
    tg_tape_free(t->eval_tp);
    tg_params_free(t->p);
}

static int run(trainer *t, const dataset *d, const config *c, tg_rng *rng) {
    printf("%s %lld-digit strings: %lld test + %lld validation strings held out\n"
           "transformer encoder: %lld layers, d_model %lld, %lld heads, ffn %lld, %s; %lld "
           "parameters; Adam lr %g (warm-up %lld, cosine), batch %lld, seed %lld\n",
           c->task, (long long)c->length, (long long)c->test, (long long)c->val,
           (long long)c->layers, (long long)c->dim, (long long)c->heads, (long long)c->ffn,
           c->pre_norm ? "pre-norm" : "post-norm", (long long)tg_params_numel(t->p), c->lr,
           (long long)c->warmup, (long long)c->batch, (long long)c->seed);
    double t0 = ex_now();
    int64_t steps = train(t, d, c, rng);
    if (steps < 0) return 1;
    printf("trained %lld steps (%lld strings) in %.1f s; heap allocations in warm training "
           "steps: %llu\n", (long long)steps, (long long)(steps * c->batch), ex_now() - t0,
           (unsigned long long)t->warm_allocs);
    printf("held-out test set: %lld strings never trained on; first few:\n", (long long)d->n_test);
    double acc = evaluate(t->eval_tp, &t->m, d, &t->eb, t->pred, d->test, d->n_test, 4, NULL);
    if (acc < 0) return 1;
    printf("test exact-match accuracy: %.4f\n", acc);
    printf("attention on test string 1 (focus: share of each position's attention on inputs "
           "holding the digit it outputs):\n");
    return plot_attention(t->eval_tp, &t->m, d, c);
}

int main(int argc, char **argv) {
    config c = {.steps = 2000, .batch = 64, .length = 10, .dim = 64, .heads = 4, .layers = 2,
                .ffn = 256, .warmup = 200, .test = 2000, .val = 1000, .eval_every = 500,
                .seed = 1, .lr = 1e-3, .clip = 1.0, .task = "sort",
                .plot = "transformer-attention.png"};
    ex_opt opts[] = {
        {"task", EX_STR, &c.task, "reverse or sort", EX_NONE},
        {"steps", EX_INT, &c.steps, "training steps (batches)", EX_IN(1, EX_MAX_COUNT)},
        {"batch", EX_INT, &c.batch, "strings per batch", EX_IN(1, EX_MAX_SIZE)},
        {"length", EX_INT, &c.length, "digits per string", EX_IN(2, MAX_LEN)},
        {"layers", EX_INT, &c.layers, "encoder blocks", EX_IN(1, MAX_LAYERS)},
        {"dim", EX_INT, &c.dim, "model width d_model", EX_IN(1, EX_MAX_SIZE)},
        {"heads", EX_INT, &c.heads, "attention heads", EX_IN(1, EX_MAX_SIZE)},
        {"ffn", EX_INT, &c.ffn, "feed-forward width", EX_IN(1, EX_MAX_SIZE)},
        {"pre-norm", EX_FLAG, &c.pre_norm, "LayerNorm before each sublayer (default: after)",
         EX_NONE},
        {"lr", EX_DOUBLE, &c.lr, "peak Adam learning rate", EX_LR},
        {"warmup", EX_INT, &c.warmup, "linear warm-up steps before the cosine decay",
         EX_IN(0, EX_MAX_COUNT)},
        {"clip", EX_DOUBLE, &c.clip, "gradient norm clipping", EX_ABOVE(0, INFINITY)},
        {"test", EX_INT, &c.test, "held-out test strings", EX_IN(1, EX_MAX_COUNT)},
        {"val", EX_INT, &c.val, "validation strings (also never trained on)",
         EX_IN(0, EX_MAX_COUNT)},
        {"eval-every", EX_INT, &c.eval_every, "validate every this many steps (0: never)",
         EX_IN(0, EX_MAX_COUNT)},
        {"stop-at", EX_DOUBLE, &c.stop_at, "stop at this validation exact match (0: off)",
         EX_IN(0, 1)},
        {"plot", EX_STR, &c.plot, "attention heatmap PNG (\"\": none)", EX_NONE},
        {"plot-layer", EX_INT, &c.plot_layer, "layer to plot, 1-based (0: most focused head's)",
         EX_IN(0, MAX_LAYERS)},
        {"plot-head", EX_INT, &c.plot_head, "head to plot, 1-based (0: the most focused)",
         EX_IN(0, EX_MAX_SIZE)},
        EX_OPT_THREADS(&c.threads),
        {"seed", EX_INT, &c.seed, "seed for data and weights", EX_SEED},
    };
    int rc = ex_parse(argc, argv, "A small transformer encoder learns to reverse or sort digit "
                      "strings; plots one head's attention.", opts, EX_COUNT(opts));
    if (rc >= 0) return rc;
    if ((rc = check_config(&c, argv[0]))) return rc;

    tg_rng rng = tg_rng_seeded((uint64_t)c.seed);
    dataset d;
    trainer t = {0};
    rc = make_dataset(&d, &c, &rng) || setup(&t, &c, &rng) || run(&t, &d, &c, &rng);
    teardown(&t);
    free_dataset(&d);
    return rc;
}
