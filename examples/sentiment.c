/* examples/sentiment.c - word-level sentiment classification of short
 * sentences (label TAB sentence, 1 positive, 0 negative), the classic
 * tutorial setup:
 *   - lower-cased tokens; the file repeats most sentences, so identical
 *     token sequences are merged first (a sentence given both labels is
 *     dropped), or the split would leak training sentences into validation;
 *   - 80/20 split with a fixed seed (--split-seed);
 *   - vocabulary: the 2000 most frequent training words plus PAD and UNK
 *     (tg_vocab also reserves GO and EOS ids, unused here);
 *   - sentences padded or cut to 40 tokens at the front (Keras'
 *     pad_sequences), so the last step the recurrent layers see is the last word.
 *
 * Models (--model), ids [B, T] -> E = embedding(ids) [B, T, 128]:
 *   lstm      h = LSTM_64(E, dropout 0.2, recurrent dropout 0.2)    [B, 64]
 *   bilstm    h = [LSTM_fwd(E), LSTM_bwd(E)]                         [B, 128]
 *   stacked   h = LSTM_64(LSTM_64(E) as a sequence)                  [B, 64]
 *   cnn       h = globalmax_t relu(conv1d_k3(spatial_dropout(E)))    [B, 256]
 *   cnn-lstm  h = LSTM_64(maxpool_4(relu(conv1d_k5(dropout(E)))))    [B, 64]
 *   p(positive) = sigmoid(h w + b); loss = binary cross-entropy (with logits).
 * Adam, batch 32, 10 epochs. --glove FILE starts the embedding from
 * GloVe-format vectors (its dimension replaces --embed). */
#include <tapegrad.h>

#include "common.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DATA_FILE "umich-sentiment-train.tsv"
#define DATA_HINT "see ../shared/data/README.md (umich-sentiment-train.tsv)"
#define GLOVE_HINT "a GloVe text file has one word and its numbers per line (e.g. glove.6B.100d.txt " \
                   "from the GloVe project at nlp.stanford.edu)"

enum { MAX_EPOCHS = 1000 };

typedef enum kind { M_LSTM, M_BILSTM, M_STACKED, M_CNN, M_CNN_LSTM } kind;
static const char *const KIND_NAMES[] = {"lstm", "bilstm", "stacked", "cnn", "cnn-lstm"};

typedef struct options {
    const char *data, *model, *glove, *plot;
    int64_t epochs, steps, batch, embed, hidden, filters, vocab, maxlen, seed, split_seed, show, threads;
    double lr, dropout;
    bool freeze;
    kind kind;
} options;

/* ---- sentences --------------------------------------------------------------------- */
typedef struct sentence {
    const char *text;   /* the line as in the file (points into the file buffer) */
    char *key;          /* lower-cased tokens joined by single spaces            */
    int label;
    int64_t line;       /* 1-based, for messages and a stable order              */
} sentence;

typedef struct corpus {
    char *buf;               /* the file */
    sentence *s;             /* after merging duplicates */
    int64_t n, lines, dropped_conflicts;
} corpus;

/* Lower-cased tokens of text joined by spaces: runs of letters, digits,
 * apostrophes and non-ASCII bytes are words; a run of one other visible
 * character is a token of its own. Returns a new string. */
static char *tokenize(const char *text) {
    size_t len = strlen(text);
    char *out = malloc(2 * len + 1), *o = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        if (isspace(*p)) {
            p++;
            continue;
        }
        if (o > out) *o++ = ' ';
        bool word = isalnum(*p) || *p == '\'' || *p >= 0x80;
        if (!word) {   /* "..." or "!!" is one token, as nltk's "..." */
            unsigned char ch = *p;
            while (*p == ch) *o++ = (char)*p++;
            continue;
        }
        while (*p && (isalnum(*p) || *p == '\'' || *p >= 0x80)) *o++ = (char)tolower(*p++);
    }
    *o = '\0';
    return out;
}

static int by_key_then_line(const void *a, const void *b) {
    const sentence *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int by_line(const void *a, const void *b) {
    const sentence *x = a, *y = b;
    return (x->line > y->line) - (x->line < y->line);
}

/* Keeps the first of each group of equal keys; drops groups with both labels. */
static void merge_duplicates(corpus *c) {
    qsort(c->s, (size_t)c->n, sizeof *c->s, by_key_then_line);
    int64_t kept = 0;
    for (int64_t i = 0, j; i < c->n; i = j) {
        bool conflict = false;
        for (j = i + 1; j < c->n && !strcmp(c->s[j].key, c->s[i].key); j++)
            conflict |= c->s[j].label != c->s[i].label;
        for (int64_t k = i + 1; k < j; k++) free(c->s[k].key);
        if (conflict) {
            free(c->s[i].key);
            c->dropped_conflicts++;
        } else {
            c->s[kept++] = c->s[i];
        }
    }
    c->n = kept;
    qsort(c->s, (size_t)c->n, sizeof *c->s, by_line);
}

/* Reads "label<TAB>sentence" lines; 0, or 1 after a message. */
static int load_corpus(const char *path, corpus *c) {
    memset(c, 0, sizeof *c);
    size_t len;
    c->buf = ex_read_file(path, &len, DATA_HINT);
    if (!c->buf) return 1;
    if (memchr(c->buf, '\0', len)) return ex_bad_data(path, 0, "contains NUL bytes", DATA_HINT);
    int64_t cap = 1;
    for (size_t i = 0; i < len; i++) cap += c->buf[i] == '\n';
    c->s = calloc((size_t)cap, sizeof *c->s);
    if (!c->s) return ex_bad_data(path, 0, "out of memory", DATA_HINT);
    char *save = NULL;
    for (char *line = strtok_r(c->buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        c->lines++;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r') line[l - 1] = '\0';
        if (!*line) continue;
        if ((line[0] != '0' && line[0] != '1') || line[1] != '\t' || !line[2])
            return ex_bad_data(path, c->lines, "expected '0' or '1', a TAB, then the sentence", DATA_HINT);
        sentence *s = &c->s[c->n++];
        *s = (sentence){.text = line + 2, .label = line[0] - '0', .line = c->lines,
                        .key = tokenize(line + 2)};
        if (!s->key) return ex_bad_data(path, c->lines, "out of memory", DATA_HINT);
    }
    int64_t raw = c->n;
    merge_duplicates(c);
    if (c->n < 10) return ex_bad_data(path, 0, "fewer than 10 distinct sentences", DATA_HINT);
    printf("%s: %lld lines, %lld distinct sentences (%lld duplicates merged, %lld with both labels "
           "dropped)\n", path, (long long)raw, (long long)c->n,
           (long long)(raw - c->n - c->dropped_conflicts), (long long)c->dropped_conflicts);
    return 0;
}

static void free_corpus(corpus *c) {
    for (int64_t i = 0; i < c->n; i++) free(c->s[i].key);
    free(c->s);
    free(c->buf);
}

/* ---- vocabulary --------------------------------------------------------------------- */
typedef struct word_count { const char *word; int64_t count; } word_count;

static int by_count(const void *a, const void *b) {
    const word_count *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return strcmp(x->word, y->word);
}

/* Calls fn(word, arg) for each token of key (a space-separated copy is cut). */
static void each_token(const char *key, void (*fn)(const char *, void *), void *arg) {
    char tok[256];
    for (const char *p = key; *p;) {
        size_t n = strcspn(p, " ");
        size_t k = n < sizeof tok - 1 ? n : sizeof tok - 1;
        memcpy(tok, p, k);
        tok[k] = '\0';
        fn(tok, arg);
        p += n + (p[n] == ' ');
    }
}

typedef struct counter { tg_vocab *all; int64_t *count, cap; bool failed; } counter;

static void count_word(const char *w, void *arg) {
    counter *c = arg;
    int32_t id = tg_vocab_add(c->all, w);
    if (id < 0 || id >= c->cap) {
        int64_t cap = c->cap ? 2 * c->cap : 4096;
        int64_t *grown = id >= 0 ? realloc(c->count, (size_t)cap * sizeof *grown) : NULL;
        if (!grown) {
            c->failed = true;
            return;
        }
        memset(grown + c->cap, 0, (size_t)(cap - c->cap) * sizeof *grown);
        c->count = grown;
        c->cap = cap;
    }
    c->count[id]++;
}

/* The max_words most frequent words of the training sentences (ties in
 * alphabetical order) after the special tokens; NULL on failure. */
static tg_vocab *build_vocab(const sentence *s, int64_t n, int64_t max_words) {
    counter c = {.all = tg_vocab_new()};
    tg_vocab *v = tg_vocab_new();
    word_count *wc = NULL;
    if (!c.all || !v) goto fail;
    for (int64_t i = 0; i < n && !c.failed; i++) each_token(s[i].key, count_word, &c);
    int32_t first = TG_TOKEN_EOS + 1, total = tg_vocab_size(c.all) - first;
    wc = malloc((size_t)(total > 0 ? total : 1) * sizeof *wc);
    if (c.failed || !wc) goto fail;
    for (int32_t i = 0; i < total; i++) wc[i] = (word_count){tg_vocab_word(c.all, first + i), c.count[first + i]};
    qsort(wc, (size_t)total, sizeof *wc, by_count);
    for (int32_t i = 0; i < total && i < max_words; i++)
        if (tg_vocab_add(v, wc[i].word) < 0) goto fail;
    printf("vocabulary: %d distinct training words, kept %d (+ PAD, UNK)\n", (int)total,
           (int)(tg_vocab_size(v) - first));
    free(wc);
    free(c.count);
    tg_vocab_free(c.all);
    return v;
fail:
    free(wc);
    free(c.count);
    tg_vocab_free(c.all);
    tg_vocab_free(v);
    return NULL;
}

/* ---- encoded data ---------------------------------------------------------------------- */
typedef struct encoded {
    int32_t *ids;     /* [n, T], padded / cut at the front */
    float *y;         /* [n]                                */
    const sentence **s;
    int64_t n, T;
} encoded;

/* The last T ids of a sentence, kept in a ring of T slots while it is read. */
typedef struct enc_ctx { const tg_vocab *v; int32_t *ring; int64_t n, T; } enc_ctx;

static void encode_word(const char *w, void *arg) {
    enc_ctx *e = arg;
    e->ring[e->n++ % e->T] = tg_vocab_id(e->v, w);
}

static int encode(encoded *d, const sentence *s, int64_t n, int64_t T, const tg_vocab *v) {
    d->n = n;
    d->T = T;
    d->ids = calloc((size_t)(n * T), sizeof *d->ids);
    d->y = malloc((size_t)n * sizeof *d->y);
    d->s = malloc((size_t)n * sizeof *d->s);
    enc_ctx e = {.v = v, .ring = malloc((size_t)T * sizeof *e.ring), .T = T};
    if (!d->ids || !d->y || !d->s || !e.ring) {
        free(e.ring);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        e.n = 0;
        each_token(s[i].key, encode_word, &e);
        /* the last `keep` tokens, right-aligned: padding (TG_TOKEN_PAD, 0) in front */
        int64_t keep = e.n < T ? e.n : T;
        for (int64_t k = 0; k < keep; k++) d->ids[i * T + T - keep + k] = e.ring[(e.n - keep + k) % T];
        d->y[i] = (float)s[i].label;
        d->s[i] = &s[i];
    }
    free(e.ring);
    return 0;
}

static void free_encoded(encoded *d) {
    free(d->ids);
    free(d->y);
    free(d->s);
}

/* ---- model ------------------------------------------------------------------------------- */
typedef struct model {
    kind kind;
    tg_params *params;
    tg_embedding_layer emb;
    tg_rnn rnn;
    tg_conv1d_layer conv;
    tg_linear out;
    double dropout;
} model;

static tg_rnn_opts lstm_opts(const options *o, int64_t in) {
    tg_rnn_opts r = tg_rnn_opts_default(&tg_cell_lstm, in, o->hidden);
    r.dropout = r.recurrent_dropout = o->kind == M_CNN_LSTM ? 0 : o->dropout;
    r.bidirectional = o->kind == M_BILSTM;
    r.num_layers = o->kind == M_STACKED ? 2 : 1;
    return r;
}

static int model_init(model *m, const options *o, int64_t vocab_size, int64_t embed, tg_rng *rng) {
    memset(m, 0, sizeof *m);
    m->kind = o->kind;
    m->dropout = o->dropout;
    m->params = tg_params_new();
    if (!m->params) return -1;
    /* Keras' Embedding starts at U(-0.05, 0.05): the UNK row, rarely trained, stays small */
    tg_embedding_opts eo = {.has_padding = true, .padding_idx = TG_TOKEN_PAD, .freeze = o->freeze,
                            .init = {TG_INIT_UNIFORM, -0.05, 0.05}};
    if (tg_embedding_layer_init(&m->emb, m->params, "embedding", vocab_size, embed, TG_F32, rng, &eo))
        return -1;
    int64_t feat = embed;   /* features entering the next layer */
    if (m->kind == M_CNN || m->kind == M_CNN_LSTM) {
        tg_conv1d_layer_opts co = {.activation = TG_ACT_RELU};
        int64_t filters = m->kind == M_CNN ? o->filters : o->hidden, k = m->kind == M_CNN ? 3 : 5;
        if (tg_conv1d_layer_init(&m->conv, m->params, "conv", embed, filters, k, TG_F32, rng, &co))
            return -1;
        feat = filters;
    }
    if (m->kind != M_CNN) {
        tg_rnn_opts ro = lstm_opts(o, feat);
        if (tg_rnn_init(&m->rnn, m->params, "lstm", &ro, TG_F32, rng)) return -1;
        feat = o->kind == M_BILSTM ? 2 * o->hidden : o->hidden;
    }
    return tg_linear_init(&m->out, m->params, "out", feat, 1, TG_F32, rng, NULL) ? -1 : 0;
}

/* ids [B, T] -> logits [B, 1] (shapes in the file comment). */
static tg_tensor *model_forward(tg_tape *tp, const model *m, tg_tensor *ids, tg_rng *rng) {
    tg_tensor *e = tg_embedding_layer_forward(tp, &m->emb, ids);   /* [B, T, C] */
    tg_rnn_call call = {.rng = rng};
    tg_tensor *h = NULL;
    switch (m->kind) {
    case M_LSTM:
    case M_BILSTM:
    case M_STACKED: h = tg_rnn_forward(tp, &m->rnn, e, &call, NULL, 0); break;
    case M_CNN: {
        tg_tensor *x = tg_transpose(tp, tg_spatial_dropout1d(tp, e, m->dropout, rng), 1, 2);
        h = tg_global_max_pool1d(tp, tg_conv1d_layer_forward(tp, &m->conv, x));   /* [B, F] */
        break;
    }
    case M_CNN_LSTM: {
        tg_tensor *x = tg_transpose(tp, tg_dropout(tp, e, m->dropout, rng), 1, 2);   /* [B, C, T] */
        tg_tensor *c = tg_max_pool1d(tp, tg_conv1d_layer_forward(tp, &m->conv, x), 4, 4);
        h = tg_rnn_forward(tp, &m->rnn, tg_transpose(tp, c, 1, 2), &call, NULL, 0);
        break;
    }
    }
    return tg_linear_forward(tp, &m->out, h);
}

/* Embedding dimension of a GloVe file (numbers on its first line); 0 after a message. */
static int64_t glove_dim(const char *path) {
    FILE *f = ex_open_data(path, GLOVE_HINT);
    if (!f) return 0;
    int64_t fields = 0;
    bool in_field = false;
    for (int ch; (ch = fgetc(f)) != EOF && ch != '\n';) {
        bool blank = ch == ' ' || ch == '\t' || ch == '\r';
        if (!blank && !in_field) fields++;
        in_field = !blank;
    }
    fclose(f);
    if (fields < 2) ex_bad_data(path, 1, "expected a word followed by its numbers", GLOVE_HINT);
    return fields < 2 ? 0 : fields - 1;
}

static int load_glove(model *m, tg_vocab *v, const char *path) {
    tg_glove_report r;
    if (tg_embedding_layer_load_glove(&m->emb, v, path, NULL, &r) != TG_OK) {
        fprintf(stderr, "error: %s\n  %s\n", r.message[0] ? r.message : tg_last_error(), GLOVE_HINT);
        return -1;
    }
    printf("GloVe %s: %lld vectors loaded, %lld vocabulary words without one\n", path,
           (long long)r.loaded, (long long)r.missing);
    return 0;
}

/* ---- training ------------------------------------------------------------------------------ */
typedef struct batch { tg_tensor *ids, *y; } batch;   /* I32 [B, T], F32 [B, 1] */

typedef struct trainer {
    tg_tape *tp;
    batch full, rest;          /* made once and refilled; rest holds n % B rows (or none) */
    batch val;                 /* the whole validation set, filled once                 */
    int64_t *order;
    tg_rng rng;                /* shuffling and dropout */
    ex_progress pg;
    int64_t step;
    uint64_t warm_allocs;
    double loss[MAX_EPOCHS], acc[MAX_EPOCHS];
} trainer;

static int batch_new(batch *b, int64_t rows, int64_t T) {
    if (rows == 0) return 0;
    b->ids = tg_tensor_new(TG_I32, 2, (int64_t[]){rows, T});
    b->y = tg_tensor_new(TG_F32, 2, (int64_t[]){rows, 1});
    return b->ids && b->y ? 0 : -1;
}

static void batch_free(batch *b) {
    tg_tensor_free(b->ids);
    tg_tensor_free(b->y);
}

static void batch_fill(batch *b, const encoded *d, const int64_t *idx) {
    int64_t rows = tg_tensor_dim(b->ids, 0), T = d->T;
    int32_t *ids = tg_tensor_data(b->ids);
    float *y = tg_tensor_data(b->y);
    for (int64_t r = 0; r < rows; r++) {
        int64_t i = idx ? idx[r] : r;
        memcpy(ids + r * T, d->ids + i * T, (size_t)T * sizeof *ids);
        y[r] = d->y[i];
    }
}

static int trainer_init(trainer *t, const options *o, const encoded *train, const encoded *val) {
    memset(t, 0, sizeof *t);
    t->tp = tg_tape_new();
    if (t->tp && o->threads > 0) tg_tape_set_threads(t->tp, (int)o->threads);
    t->rng = tg_rng_seeded((uint64_t)o->seed + 1);
    t->order = malloc((size_t)train->n * sizeof *t->order);
    if (!t->tp || !t->order || batch_new(&t->full, o->batch, train->T) ||
        batch_new(&t->rest, train->n % o->batch, train->T) || batch_new(&t->val, val->n, val->T))
        return -1;
    for (int64_t i = 0; i < train->n; i++) t->order[i] = i;
    batch_fill(&t->val, val, NULL);
    return 0;
}

static void trainer_free(trainer *t) {
    batch_free(&t->full);
    batch_free(&t->rest);
    batch_free(&t->val);
    free(t->order);
    tg_tape_free(t->tp);
}

static void shuffle(int64_t *a, int64_t n, tg_rng *rng) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(tg_rng_next(rng) % (uint64_t)(i + 1)), x = a[i];
        a[i] = a[j];
        a[j] = x;
    }
}

/* One Adam step on b; returns the loss, NaN on error. */
static double train_step(trainer *t, model *m, tg_optim *opt, const batch *b) {
    tg_params_zero_grad(m->params);
    tg_tensor *loss = tg_bce_with_logits(t->tp, model_forward(t->tp, m, b->ids, &t->rng), b->y);
    if (!loss || tg_backward(t->tp, loss) != TG_OK || tg_optim_step(opt) != TG_OK) return NAN;
    double v = tg_tensor_item(loss);
    tg_tape_reset(t->tp);
    return v;
}

/* Validation accuracy; prob (optional, [n]) gets p(positive). -1 on error. */
static double evaluate(trainer *t, model *m, double *prob) {
    tg_tape_set_training(t->tp, false);
    tg_no_grad_begin(t->tp);
    tg_tensor *logits = model_forward(t->tp, m, t->val.ids, NULL);
    int64_t right = 0, n = tg_tensor_dim(t->val.ids, 0);
    for (int64_t i = 0; logits && i < n; i++) {
        double z = tg_tensor_get(logits, i), p = 1 / (1 + exp(-z));
        right += (p > 0.5) == (tg_tensor_get(t->val.y, i) > 0.5);
        if (prob) prob[i] = p;
    }
    tg_no_grad_end(t->tp);
    tg_tape_set_training(t->tp, true);
    if (!logits) fprintf(stderr, "evaluation: %s\n", tg_tape_error(t->tp));
    tg_tape_reset(t->tp);
    return logits ? (double)right / (double)n : -1;
}

/* One epoch over shuffled batches; returns the mean loss, NaN on error. */
static double train_epoch(trainer *t, model *m, tg_optim *opt, const encoded *train,
                          const options *o, int64_t *done) {
    shuffle(t->order, train->n, &t->rng);
    double sum = 0;
    int64_t seen = 0;
    for (int64_t first = 0; first < train->n && (o->steps <= 0 || *done < o->steps); first += o->batch) {
        batch *b = train->n - first >= o->batch ? &t->full : &t->rest;
        int64_t rows = tg_tensor_dim(b->ids, 0);
        batch_fill(b, train, t->order + first);
        uint64_t before = tg_heap_allocs();
        double loss = train_step(t, m, opt, b);
        if (*done > 1) t->warm_allocs += tg_heap_allocs() - before;   /* both batch sizes warm */
        if (!ex_loss_ok(&t->pg, t->tp, KIND_NAMES[o->kind], *done + 1, loss, o->lr)) return NAN;
        sum += loss * (double)rows;
        seen += rows;
        ++*done;
        ex_progress_update(&t->pg, ++t->step, loss, rows);
    }
    return seen ? sum / (double)seen : 0;
}

static int fit(trainer *t, model *m, const encoded *train, options *o) {
    tg_optim *opt = tg_optim_new(TG_OPTIM_ADAM, m->params, o->lr);
    if (!opt) return -1;
    int64_t per_epoch = (train->n + o->batch - 1) / o->batch, total = o->epochs * per_epoch, done = 0;
    if (o->steps > 0 && o->steps < total) {   /* a --steps limit ends training early */
        total = o->steps;
        o->epochs = (total + per_epoch - 1) / per_epoch;
    }
    ex_progress_start(&t->pg, total, "sent");
    int rc = 0;
    for (int64_t e = 0; e < o->epochs && !rc; e++) {
        t->loss[e] = train_epoch(t, m, opt, train, o, &done);
        t->acc[e] = isfinite(t->loss[e]) ? evaluate(t, m, NULL) : -1;
        if (t->acc[e] < 0) rc = -1;
        else
            ex_log(&t->pg, "epoch %lld/%lld  train loss %.4f  validation accuracy %.4f",
                   (long long)e + 1, (long long)o->epochs, t->loss[e], t->acc[e]);
    }
    ex_progress_done(&t->pg);
    tg_optim_free(opt);
    return rc;
}

/* ---- report ------------------------------------------------------------------------------- */
static void show_examples(trainer *t, model *m, const encoded *val, int64_t k) {
    double *prob = malloc((size_t)val->n * sizeof *prob);
    if (!prob || evaluate(t, m, prob) < 0) {
        free(prob);
        return;
    }
    printf("\nvalidation sentences (p = predicted probability of positive):\n");
    for (int64_t i = 0; i < k && i < val->n; i++) {
        int pred = prob[i] > 0.5, truth = val->s[i]->label;
        printf("  p %.3f  predicted %s  true %s%s  %.90s\n", prob[i], pred ? "pos" : "neg",
               truth ? "pos" : "neg", pred == truth ? " " : " *", val->s[i]->text);
    }
    int64_t wrong = 0;
    for (int64_t i = 0; i < val->n; i++) wrong += (prob[i] > 0.5) != val->s[i]->label;
    printf("misclassified: %lld of %lld%s\n", (long long)wrong, (long long)val->n,
           wrong ? ", for example:" : "");
    for (int64_t i = 0, shown = 0; i < val->n && shown < 3; i++)
        if ((prob[i] > 0.5) != val->s[i]->label)
            printf("  p %.3f  true %s  %.90s\n", prob[i], val->s[i]->label ? "pos" : "neg",
                   val->s[i]->text), shown++;
    free(prob);
}

static void plot(const options *o, const trainer *t) {
    double x[MAX_EPOCHS];
    for (int64_t e = 0; e < o->epochs; e++) x[e] = (double)(e + 1);
    const char *names[] = {"train loss", "validation accuracy"};
    const double *ys[] = {t->loss, t->acc};
    char title[128];
    snprintf(title, sizeof title, "Sentiment (%s): training curves", KIND_NAMES[o->kind]);
    ex_plot_lines(o->plot, title, "epoch", "loss / accuracy", x, o->epochs, 2, names, ys);
}

/* ---- main ------------------------------------------------------------------------------------ */
/* Peak memory, measured (peak RSS, T 40..200, B 32..1024, H 64..1024, E up to
 * 8192): a training step keeps about 270 bytes per batch x maxlen x hidden
 * unit (per direction and layer) on the tape, evaluating the validation set
 * at once about 140 per sentence x maxlen x hidden; the embeddings [rows,
 * maxlen, E] about 30 bytes per element; a conv1d filter costs about a tenth
 * of an LSTM unit. Weights count with gradients and two Adam moments. */
static bool fits_memory(const options *o, int64_t vocab, int64_t embed, int64_t n_train,
                        int64_t n_val) {
    double T = (double)o->maxlen, N = (double)n_val, E = (double)embed;
    double B = (double)(o->batch < n_train ? o->batch : n_train);   /* a batch holds at most all */
    double H = o->kind == M_CNN ? (double)o->filters / 10 : (double)o->hidden;
    if (o->kind == M_BILSTM || o->kind == M_STACKED) H *= 2;
    double tape = T * (fmax(270 * B, 140 * N) * H + 30 * fmax(B, N) * E);
    double weights = 16 * ((double)vocab * E + 8 * H * (E + H) + 5.0 * (double)o->filters * E);
    char sizes[200];
    snprintf(sizes, sizeof sizes, "--model %s --batch %lld --maxlen %lld --embed %lld --%s %lld "
             "(%lld words, %lld validation sentences)", KIND_NAMES[o->kind], (long long)o->batch,
             (long long)o->maxlen, (long long)embed, o->kind == M_CNN ? "filters" : "hidden",
             (long long)(o->kind == M_CNN ? o->filters : o->hidden), (long long)vocab,
             (long long)n_val);
    return ex_memory_fits("sentiment", 100e6 + tape + weights, sizes);
}

static int run(options *o, corpus *c) {
    tg_rng split_rng = tg_rng_seeded((uint64_t)o->split_seed), rng = tg_rng_seeded((uint64_t)o->seed);
    /* shuffle the distinct sentences with the fixed split seed; the last 20% validate */
    for (int64_t i = c->n - 1; i > 0; i--) {
        int64_t j = (int64_t)(tg_rng_next(&split_rng) % (uint64_t)(i + 1));
        sentence s = c->s[i];
        c->s[i] = c->s[j];
        c->s[j] = s;
    }
    int64_t n_val = (c->n + 4) / 5, n_train = c->n - n_val;
    tg_vocab *v = build_vocab(c->s, n_train, o->vocab);
    encoded train = {0}, val = {0};
    model m = {0};
    trainer t;
    memset(&t, 0, sizeof t);
    int rc = 1;
    int64_t embed = o->glove ? glove_dim(o->glove) : o->embed;
    if (!v || !embed) goto out;
    if (!fits_memory(o, tg_vocab_size(v), embed, n_train, n_val)) {
        rc = 2;
        goto out;
    }
    if (encode(&train, c->s, n_train, o->maxlen, v) || encode(&val, c->s + n_train, n_val, o->maxlen, v) ||
        model_init(&m, o, tg_vocab_size(v), embed, &rng) || trainer_init(&t, o, &train, &val)) {
        fprintf(stderr, "setup failed: %s\n", tg_last_error());
        goto out;
    }
    if (o->glove && load_glove(&m, v, o->glove)) goto out;
    printf("model %s: embedding %lld x %lld%s, %lld parameters; %lld training and %lld validation "
           "sentences of %lld tokens; Adam lr %g, batch %lld, %lld epochs, seed %lld\n",
           KIND_NAMES[o->kind], (long long)tg_vocab_size(v), (long long)embed,
           o->freeze ? " (frozen)" : "", (long long)tg_params_numel(m.params), (long long)n_train,
           (long long)n_val, (long long)o->maxlen, o->lr, (long long)o->batch, (long long)o->epochs,
           (long long)o->seed);
    double start = ex_now();
    if (fit(&t, &m, &train, o)) goto out;
    int64_t last = o->epochs - 1;
    printf("validation accuracy (%s): %.4f  (%lld sentences, %.1f s)\n", KIND_NAMES[o->kind],
           t.acc[last], (long long)n_val, ex_now() - start);
    printf("heap allocations in warm training steps: %llu\n", (unsigned long long)t.warm_allocs);
    show_examples(&t, &m, &val, o->show);
    if (o->plot && *o->plot) plot(o, &t);
    rc = 0;
out:
    trainer_free(&t);
    tg_rnn_free(&m.rnn);
    tg_params_free(m.params);
    free_encoded(&train);
    free_encoded(&val);
    tg_vocab_free(v);
    return rc;
}

static int check_options(options *o, const char *prog) {
    int k = 0;
    while (k < 5 && strcmp(o->model, KIND_NAMES[k]) != 0) k++;
    if (k == 5) {
        fprintf(stderr, "%s: --model must be lstm, bilstm, stacked, cnn or cnn-lstm: '%s'\n", prog, o->model);
        return 2;
    }
    o->kind = (kind)k;
    if (o->kind == M_CNN_LSTM && o->maxlen < 8) {
        fprintf(stderr, "%s: cnn-lstm needs --maxlen >= 8 (conv 5, pool 4)\n", prog);
        return 2;
    }
    return -1;
}

int main(int argc, char **argv) {
    char path[1024];
    options o = {.data = ex_data_path(DATA_FILE, path, sizeof path), .model = "lstm", .plot = "sentiment.png",
                 .epochs = 10, .batch = 32, .embed = 128, .hidden = 64, .filters = 256, .vocab = 2000,
                 .maxlen = 40, .seed = 1, .split_seed = 42, .threads = 1, .show = 8, .lr = 1e-3, .dropout = 0.2};
    ex_opt opts[] = {
        {"data", EX_STR, &o.data, "label<TAB>sentence file", EX_NONE},
        {"model", EX_STR, &o.model, "lstm | bilstm | stacked | cnn | cnn-lstm", EX_NONE},
        {"epochs", EX_INT, &o.epochs, "training epochs", EX_IN(1, MAX_EPOCHS)},
        {"steps", EX_INT, &o.steps, "stop after this many steps (0: no limit)",
         EX_IN(0, EX_MAX_COUNT)},
        {"batch", EX_INT, &o.batch, "minibatch size", EX_IN(1, EX_MAX_SIZE)},
        {"embed", EX_INT, &o.embed, "embedding size (--glove sets it from the file)",
         EX_IN(1, EX_MAX_SIZE)},
        {"hidden", EX_INT, &o.hidden, "LSTM units (per direction); cnn-lstm conv filters",
         EX_IN(1, EX_MAX_SIZE)},
        {"filters", EX_INT, &o.filters, "cnn: conv1d filters", EX_IN(1, EX_MAX_SIZE)},
        {"vocab", EX_INT, &o.vocab, "most frequent words kept", EX_IN(1, 1 << 24)},
        {"maxlen", EX_INT, &o.maxlen, "tokens per sentence (padded or cut at the front)",
         EX_IN(1, EX_MAX_SIZE)},
        {"dropout", EX_DOUBLE, &o.dropout, "dropout rate", EX_IN(0, 0.99)},
        {"lr", EX_DOUBLE, &o.lr, "Adam learning rate", EX_LR},
        {"glove", EX_STR, &o.glove, "start the embedding from this GloVe-format file", EX_NONE},
        {"freeze", EX_FLAG, &o.freeze, "keep the (GloVe) embedding fixed", EX_NONE},
        {"seed", EX_INT, &o.seed, "seed for weights, shuffling and dropout", EX_SEED},
        {"split-seed", EX_INT, &o.split_seed, "seed of the 80/20 split", EX_SEED},
        EX_OPT_THREADS(&o.threads),
        {"show", EX_INT, &o.show, "validation sentences to print with their predictions",
         EX_IN(0, EX_MAX_COUNT)},
        {"plot", EX_STR, &o.plot, "PNG of the training curves ('' for none)", EX_NONE},
    };
    int rc = ex_parse(argc, argv,
                      "Classifies the sentiment of short sentences (label TAB sentence) with an LSTM,\n"
                      "a bidirectional or stacked LSTM, a 1-D CNN or a CNN + LSTM.",
                      opts, EX_COUNT(opts));
    if (rc >= 0) return rc;
    if ((rc = check_options(&o, argv[0])) >= 0) return rc;
    corpus c;
    rc = load_corpus(o.data, &c);
    if (!rc) rc = run(&o, &c);
    free_corpus(&c);
    return rc;
}
