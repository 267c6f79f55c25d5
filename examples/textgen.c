/* examples/textgen.c - a character-level language model (issue 5, item 3).
 *
 * Model, for B streams of T characters (V distinct bytes, embedding E, hidden H):
 *   x ids [B, T] -> embedding [B, T, E] -> L stacked cells (rnn | lstm | gru) [B, T, H]
 *   -> linear [B, T, V] logits -> cross-entropy against the next characters y [B, T]
 *
 * Truncated backpropagation through time: the training text is cut into B
 * contiguous streams and batch k holds characters [kT, kT+T) of every stream,
 * so row b of batch k+1 continues row b of batch k. The final state of one
 * batch is the initial state of the next, carried as values only (detached):
 * gradients stop at the batch boundary. The state restarts at zero each epoch.
 *
 * Corpus (textgen_corpus.c): --data FILE, or by default every fortune of
 * Debian's `fortunes` package, shuffled with a fixed seed so that the
 * validation split (the last --val-frac of the text) is drawn from all the
 * files. The vocabulary is the set of bytes present.
 *
 * Checkpoint (--save, one safetensors file through io.h): the weights, the
 * optimizer's moments, the schedule, the RNG and the position, the recurrent
 * state carried into the next batch and the stream geometry, plus two buffers
 * without gradient, "textgen.vocab" (byte of each id) and "textgen.config"
 * (cell, layers, hidden, embedding), so --load rebuilds the model by itself:
 * --sample-only generates from it; without it training resumes where it
 * stopped, bit for bit: --steps more steps, evaluations and samples on the
 * same steps as an uninterrupted run (the sampling RNG is made from the seed
 * and the step), the --lr-min schedule over the horizon saved in the
 * checkpoint (set it for the whole plan with --decay-steps).
 *
 * Memory: every tensor the loop touches is made once; each step resets the
 * tape, so warm steps make no heap allocation (the program counts them).
 *
 * Data-parallel (--dist, or under mpirun -np N; common.h): rank r reads
 * streams [r B/N, (r+1) B/N) of every batch and carries their recurrent
 * state from batch to batch; the ranks average their gradients, so they stay
 * identical. Validation is split the same way and averaged. Dropout masks
 * come from a stream of each rank's own, drawn each step from the shared
 * generator (ex_dist_step_rng). The checkpoint, written by rank 0, holds the
 * carried states of all B streams in order, as one process with batch B would
 * save them; on resume each rank takes its rows back, and the shared
 * generator resumes every rank's dropout stream. */
#define _POSIX_C_SOURCE 200809L
#include <tapegrad.h>

#include "common.h"
#include "textgen_corpus.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

enum { N_CONFIG = 4 };                         /* cell kind, layers, hidden, embedding */
enum { MAX_LAYERS = 8 };
/* the cell kinds as numbers in textgen.config */
typedef enum cell_kind { CELL_RNN = 0, CELL_LSTM = 2, CELL_GRU = 3 } cell_kind;

typedef struct options {
    const char *data, *cell, *optim, *save, *load, *plot, *prime, *profile;
    int64_t layers, hidden, embed, batch, seq, steps, epochs, seed, threads;
    int64_t eval_every, eval_chars, sample_every, sample_len;
    double lr, clip, dropout, val_frac, temperature, max_seconds, lr_min;
    int64_t decay_steps;
    bool sample_only;
    ex_dist_opts dist;
} options;

typedef struct model {
    tg_params *p;
    cell_kind kind;
    int64_t L, H, E, V;
    tg_embedding_layer emb;
    tg_rnn rnn;
    tg_linear fc;
    tg_tensor *vocab, *config;   /* buffers: saved with the weights, never trained */
} model;

/* The recurrent state carried between calls, caller-owned so it outlives tape resets. */
typedef struct carry {
    int L;
    tg_tensor *h[MAX_LAYERS], *c[MAX_LAYERS];   /* [B, H] */
    tg_rnn_state init[MAX_LAYERS], fin[MAX_LAYERS];
} carry;

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

/* ---- model --------------------------------------------------------------------------- */
static bool parse_cell(const char *s, cell_kind *k) {
    if (!strcmp(s, "rnn")) *k = CELL_RNN;
    else if (!strcmp(s, "lstm")) *k = CELL_LSTM;
    else if (!strcmp(s, "gru")) *k = CELL_GRU;
    else return false;
    return true;
}

static const char *cell_name(cell_kind k) {
    return k == CELL_LSTM ? "lstm" : k == CELL_GRU ? "gru" : "rnn";
}

static const tg_cell *cell_of(cell_kind k) {
    return k == CELL_LSTM ? &tg_cell_lstm : k == CELL_GRU ? &tg_cell_gru : &tg_cell_elman;
}

static tg_tensor *buffer(tg_params *p, const char *name, int64_t n) {
    tg_tensor *t = tg_params_create(p, name, TG_F32, 1, &n);
    tg_tensor_set_requires_grad(t, false);   /* NULL is fine */
    return t;
}

/* Builds the layers of m (kind, L, H, E, V set) and its buffers from cp's vocabulary. */
static int model_build(model *m, const corpus *cp, double dropout, tg_rng *rng) {
    m->p = tg_params_new();
    tg_rnn_opts ro = tg_rnn_opts_default(cell_of(m->kind), m->E, m->H);
    ro.num_layers = (int)m->L;
    ro.return_sequences = true;
    ro.dropout = dropout;
    if (!m->p || tg_embedding_layer_init(&m->emb, m->p, "embed", m->V, m->E, TG_F32, rng, NULL) ||
        tg_rnn_init(&m->rnn, m->p, "rnn", &ro, TG_F32, rng) ||
        tg_linear_init(&m->fc, m->p, "head", m->H, m->V, TG_F32, rng, NULL) ||
        !(m->vocab = buffer(m->p, "textgen.vocab", m->V)) ||
        !(m->config = buffer(m->p, "textgen.config", N_CONFIG))) {
        fprintf(stderr, "error: cannot build the model: %s\n", tg_last_error());
        return 1;
    }
    for (int i = 0; i < m->V; i++) tg_tensor_set(m->vocab, i, cp->byte_of[i]);
    double cfg[N_CONFIG] = {(double)m->kind, (double)m->L, (double)m->H, (double)m->E};
    for (int i = 0; i < N_CONFIG; i++) tg_tensor_set(m->config, i, cfg[i]);
    return 0;
}

/* cell kind one of ours, layers in 1..MAX_LAYERS, hidden and embedding in 1..EX_MAX_SIZE */
static bool config_ok(const tg_tensor *cfg) {
    double k = tg_tensor_get(cfg, 0), l = tg_tensor_get(cfg, 1);
    bool ok = (k == CELL_RNN || k == CELL_LSTM || k == CELL_GRU) && l >= 1 &&
              l <= MAX_LAYERS && l == floor(l);
    for (int i = 2; i < N_CONFIG; i++) {
        double v = tg_tensor_get(cfg, i);
        ok = ok && v >= 1 && v <= EX_MAX_SIZE && v == floor(v);
    }
    return ok;
}

/* Reads the model's shape and vocabulary from a checkpoint (into m and cp). */
static int read_header(const tg_safetensors *f, const char *path, model *m, corpus *cp) {
    tg_tensor *cfg = tg_safetensors_get(f, "textgen.config", TG_F32);
    tg_tensor *voc = tg_safetensors_get(f, "textgen.vocab", TG_F32);
    int rc = 0;
    if (!cfg || !voc || tg_tensor_numel(cfg) != N_CONFIG || tg_tensor_numel(voc) < 1 ||
        tg_tensor_numel(voc) > 256) {
        rc = ex_bad_data(path, 0, "not a textgen checkpoint (no valid textgen.config / "
                         "textgen.vocab)", "make one with: textgen --save PATH");
    } else if (!config_ok(cfg)) {
        rc = ex_bad_data(path, 0, "textgen.config holds an unknown cell or sizes out of range",
                         NULL);
    } else {
        m->kind = (cell_kind)tg_tensor_get(cfg, 0);
        m->L = (int64_t)tg_tensor_get(cfg, 1), m->H = (int64_t)tg_tensor_get(cfg, 2);
        m->E = (int64_t)tg_tensor_get(cfg, 3), m->V = tg_tensor_numel(voc);
        cp->V = (int)m->V;
        memset(cp->id_of, -1, sizeof cp->id_of);
        for (int i = 0; i < cp->V; i++) {
            double b = tg_tensor_get(voc, i);
            if (!(b >= 0 && b < 256) || cp->id_of[(int)b] >= 0) {
                rc = ex_bad_data(path, 0, "textgen.vocab holds a bad or repeated byte", NULL);
                break;
            }
            cp->byte_of[i] = (uint8_t)b, cp->id_of[(int)b] = (int16_t)i;
        }
    }
    tg_tensor_free(cfg);
    tg_tensor_free(voc);
    return rc;
}

static void model_free(model *m) {
    tg_rnn_free(&m->rnn);
    tg_params_free(m->p);
}

static int carry_open(carry *s, const model *m, int64_t B) {
    memset(s, 0, sizeof *s);
    s->L = (int)m->L;
    for (int l = 0; l < s->L; l++) {
        s->h[l] = tg_tensor_new(TG_F32, 2, (int64_t[]){B, m->H});
        if (m->kind == CELL_LSTM) s->c[l] = tg_tensor_new(TG_F32, 2, (int64_t[]){B, m->H});
        if (!s->h[l] || (m->kind == CELL_LSTM && !s->c[l])) return -1;
        s->init[l] = (tg_rnn_state){.h = s->h[l], .c = s->c[l]};
    }
    return 0;
}

static void carry_zero(carry *s) {
    for (int l = 0; l < s->L; l++) {
        tg_tensor_fill(s->h[l], 0);
        if (s->c[l]) tg_tensor_fill(s->c[l], 0);
    }
}

/* The detach: copy the final state's values into the caller-owned initial
 * state. Call it after backward (the cells' VJPs still read the initial state);
 * the next batch then starts from these values with no path back into this one. */
static void carry_keep(carry *s) {
    for (int l = 0; l < s->L; l++) {
        tg_tensor_copy(s->h[l], s->fin[l].h);
        if (s->c[l]) tg_tensor_copy(s->c[l], s->fin[l].c);
    }
}

static void carry_close(carry *s) {
    for (int l = 0; l < s->L; l++) tg_tensor_free(s->h[l]), tg_tensor_free(s->c[l]);
}

/* x ids [B, T] -> logits [B, T, V], from the state in s (final state into s->fin). */
static tg_tensor *forward(tg_tape *tp, const model *m, tg_tensor *x, carry *s, tg_rng *rng) {
    tg_rnn_call call = {.initial = s->init, .n_initial = s->L, .rng = rng};
    tg_tensor *e = tg_embedding_layer_forward(tp, &m->emb, x);   /* [B, T, E] */
    tg_tensor *h = tg_rnn_forward(tp, &m->rnn, e, &call, s->fin, s->L);  /* [B, T, H] */
    return tg_linear_forward(tp, &m->fc, h);                      /* [B, T, V] */
}

/* ---- sampling ------------------------------------------------------------------------- */
typedef struct sampler {
    carry state;         /* B = 1 */
    tg_tensor *x;        /* [1, 1] */
    char *text;          /* sample_len + 1 */
    double probs[256];
} sampler;

/* Feeds one character; the next character's distribution goes into sp->probs
 * (softmax of logits / temperature; temperature <= 0: all mass on the argmax). */
static int feed(tg_tape *tp, const model *m, sampler *sp, int id, double temp) {
    *(int32_t *)tg_tensor_data(sp->x) = id;
    tg_tensor *logits = forward(tp, m, sp->x, &sp->state, NULL);
    if (!logits) return -1;
    const float *z = tg_tensor_cdata(logits);
    int best = 0;
    for (int v = 1; v < m->V; v++) best = z[v] > z[best] ? v : best;
    double sum = 0;
    for (int v = 0; v < m->V; v++) {
        sp->probs[v] = temp > 0 ? exp((z[v] - z[best]) / temp) : v == best;
        sum += sp->probs[v];
    }
    for (int v = 0; v < m->V; v++) sp->probs[v] /= sum;
    carry_keep(&sp->state);
    tg_tape_reset(tp);
    return 0;
}

static int draw(const double *probs, int V, tg_rng *r) {
    double u = tg_rng_uniform(r), acc = 0;
    for (int v = 0; v < V; v++)
        if ((acc += probs[v]) > u) return v;
    return V - 1;
}

/* n characters after the prime text (default: a newline) into sp->text. */
static int sample(tg_tape *tp, const model *m, const corpus *cp, sampler *sp, const char *prime,
                  int64_t n, double temp, tg_rng *r) {
    tg_tape_set_training(tp, false);
    tg_no_grad_begin(tp);
    carry_zero(&sp->state);
    sp->text[0] = '\0';
    int rc = 0, fed = 0;
    for (const char *c = prime && *prime ? prime : "\n"; *c && rc == 0; c++)
        if (cp->id_of[(uint8_t)*c] >= 0) rc = feed(tp, m, sp, cp->id_of[(uint8_t)*c], temp), fed++;
    if (rc == 0 && fed == 0) rc = feed(tp, m, sp, 0, temp);   /* no prime character is known */
    for (int64_t i = 0; i < n && rc == 0; i++) {
        int id = draw(sp->probs, (int)m->V, r);
        sp->text[i] = (char)cp->byte_of[id];
        sp->text[i + 1] = '\0';
        rc = feed(tp, m, sp, id, temp);
    }
    tg_no_grad_end(tp);
    tg_tape_set_training(tp, true);
    if (rc) fprintf(stderr, "sampling failed: %s\n", tg_tape_error(tp));
    return rc;
}

/* ---- training ------------------------------------------------------------------------- */
typedef struct trainer {
    const options *o;
    model *m;
    const corpus *cp;
    tg_tape *tp;
    tg_optim *opt;
    tg_sched *sched;
    ex_dist *dist;                   /* the ranks (alone: one)                            */
    int64_t B;                       /* streams per batch, over all ranks                 */
    tg_tensor *x, *y;                /* [B/N, T] ids of this rank's streams, reused       */
    carry train, eval;
    sampler sp;
    batcher tr, va;                  /* this rank's streams of each split                 */
    tg_train_state ts;               /* rng (dropout), epoch, step, data_pos (next batch) */
    tg_params *carry_rows;           /* checkpointed: train's states, this rank's rows    */
    tg_params *carry_shared;         /* checkpointed: the stream geometry                  */
    tg_tensor *stream;               /* [3] B, T, training characters: a resume needs the same */
    int64_t total;                   /* steps to run in this call */
    double *h_step, *h_train, *h_val;
    int n_hist;
    uint64_t warm_allocs;            /* library heap allocations in warm steps */
} trainer;

static double train_step(trainer *t) {
    tg_tape *tp = t->tp;
    if (t->ts.data_pos >= t->tr.per_epoch) {   /* new epoch: streams restart, so does the state */
        t->ts.data_pos = 0, t->ts.epoch++;
        carry_zero(&t->train);
    }
    fill_batch(&t->tr, t->ts.data_pos, t->x, t->y);
    tg_params_zero_grad(t->m->p);
    tg_rng own, *drop = ex_dist_step_rng(t->dist, &t->ts.rng, &own);
    tg_tensor *loss = tg_cross_entropy(tp, forward(tp, t->m, t->x, &t->train, drop), t->y);
    tg_status st = loss ? tg_backward(tp, loss) : tg_tape_status(tp);
    if (ex_dist_sync(t->dist, tp) != TG_OK || st != TG_OK) return NAN;   /* the error stays on tp */
    double value = tg_tensor_item(loss);
    double norm = t->o->clip > 0 ? tg_clip_grad_norm(t->m->p, t->o->clip) : 0;
    if (isfinite(norm) && isfinite(value)) tg_optim_step(t->opt);   /* else skip the update */
    if (t->sched) tg_sched_step(t->sched);
    carry_keep(&t->train);
    tg_tape_reset(tp);
    t->ts.data_pos++, t->ts.step++;
    return value;
}

/* Mean validation cross-entropy (nats/char) over at most max_chars characters
 * (0: the whole split), from a zero state carried across batches; each rank
 * reads its streams, and the means are averaged. */
static double evaluate(trainer *t, int64_t max_chars, int64_t *chars) {
    tg_tape *tp = t->tp;
    int64_t per = t->B * t->va.T, n = t->va.per_epoch;
    if (max_chars > 0 && max_chars / per < n) n = max_chars / per > 0 ? max_chars / per : 1;
    tg_tape_set_training(tp, false);
    tg_no_grad_begin(tp);
    carry_zero(&t->eval);
    double sum = 0;
    for (int64_t k = 0; k < n && isfinite(sum); k++) {
        fill_batch(&t->va, k, t->x, t->y);
        tg_tensor *loss = tg_cross_entropy(tp, forward(tp, t->m, t->x, &t->eval, NULL), t->y);
        if (!loss) fprintf(stderr, "\nevaluation: %s\n", tg_tape_error(tp));
        sum += loss ? tg_tensor_item(loss) : NAN;
        carry_keep(&t->eval);
        tg_tape_reset(tp);
    }
    tg_no_grad_end(tp);
    tg_tape_set_training(tp, true);
    *chars = n * per;
    double mean = sum / (double)n;
    ex_dist_mean(t->dist, &mean, 1);
    return mean;
}

/* The sampling generator is made from the seed and the step, so a resumed run
 * prints the samples the uninterrupted one would (and needs no state saved). */
static void show_sample(trainer *t, ex_progress *pg, const char *when) {
    const options *o = t->o;
    if (!ex_dist_root(t->dist)) return;   /* rank 0 prints */
    tg_rng r = tg_rng_seeded(((uint64_t)o->seed ^ 0x5eedULL) + 0x9e3779b97f4a7c15ULL *
                             (uint64_t)t->ts.step);
    if (sample(t->tp, t->m, t->cp, &t->sp, o->prime, o->sample_len, o->temperature, &r) == 0)
        ex_log(pg, "---- sample %s (temperature %g) ----\n%s%s\n----", when, o->temperature,
               o->prime ? o->prime : "", t->sp.text);
}

/* Validation on part of the split, one point of the loss curve. */
static void checkpoint_eval(trainer *t, ex_progress *pg, double train_mean) {
    int64_t chars;
    double val = evaluate(t, t->o->eval_chars, &chars);
    t->h_step[t->n_hist] = (double)t->ts.step;
    t->h_train[t->n_hist] = train_mean;
    t->h_val[t->n_hist++] = val;
    ex_log(pg, "step %lld  epoch %lld  train loss %.4f  val loss %.4f nats/char (%lld chars)",
           (long long)t->ts.step, (long long)t->ts.epoch + 1, train_mean, val, (long long)chars);
}

static int train_loop(trainer *t) {
    const options *o = t->o;
    ex_progress pg;
    ex_progress_start(&pg, t->total, "char");
    double start = ex_now(), sum = 0;
    int64_t n_sum = 0;
    for (int64_t s = 1; s <= t->total; s++) {
        uint64_t before = tg_heap_allocs();
        int64_t step = t->ts.step + 1;   /* counted over resumed runs */
        double loss = train_step(t);
        if (s > 2) t->warm_allocs += tg_heap_allocs() - before;
        bool stop = interrupted || (o->max_seconds > 0 && ex_now() - start > o->max_seconds);
        double both[2] = {loss, stop};   /* the ranks go on with the mean loss, and stop together */
        ex_dist_mean(t->dist, both, 2);
        loss = both[0], stop = both[1] > 0;
        if (!ex_loss_ok(&pg, t->tp, cell_name(t->m->kind), step, loss, o->lr)) return 1;
        sum += loss, n_sum++;
        ex_progress_update(&pg, s, loss, t->B * t->tr.T);
        /* evaluations and samples fall on the same steps in a resumed run */
        if (o->eval_every > 0 && (step % o->eval_every == 0 || s == t->total || stop)) {
            checkpoint_eval(t, &pg, sum / (double)n_sum);
            sum = 0, n_sum = 0;
        }
        if (o->sample_every > 0 && step % o->sample_every == 0 && s < t->total && !stop) {
            char when[64];
            snprintf(when, sizeof when, "at step %lld", (long long)t->ts.step);
            show_sample(t, &pg, when);
        }
        if (stop) {
            ex_log(&pg, "stopping after step %lld: %s", (long long)t->ts.step,
                   interrupted ? "interrupted" : "--max-seconds reached");
            break;
        }
    }
    ex_progress_done(&pg);
    return 0;
}

/* ---- setup and reports ------------------------------------------------------------------- */
/* The optimizer, and the cosine schedule: for a new run when --lr-min asks for
 * one, over --decay-steps (default: this run's steps); for a resumed run when
 * the checkpoint holds one, whose horizon and position it then restores. */
static int make_optim(trainer *t, const tg_safetensors *resume) {
    const options *o = t->o;
    tg_optim_kind k;
    if (!strcmp(o->optim, "adam")) k = TG_OPTIM_ADAM;
    else if (!strcmp(o->optim, "rmsprop")) k = TG_OPTIM_RMSPROP;
    else return fprintf(stderr, "error: --optim must be adam or rmsprop, not '%s'\n", o->optim), 2;
    bool asked = o->lr_min >= 0 && o->lr_min < o->lr;
    bool in_file = resume && tg_safetensors_meta(resume, "tapegrad.sched");
    if (resume && !in_file && (asked || o->decay_steps > 0))
        return fprintf(stderr, "error: %s holds no learning-rate schedule to continue: resume "
                       "without --lr-min and --decay-steps\n", o->load), 2;
    t->opt = tg_optim_new(k, t->m->p, o->lr);
    int64_t horizon = o->decay_steps > 0 ? o->decay_steps : t->total;
    if (t->opt && (resume ? in_file : asked))   /* a resumed schedule is overwritten by the load */
        t->sched = tg_sched_new_cosine(t->opt, 0, horizon, asked ? o->lr_min : 0);
    if (!t->opt || ((resume ? in_file : asked) && !t->sched))
        return fprintf(stderr, "error: optimizer: %s\n", tg_last_error()), 2;
    return 0;
}

/* The state that goes into the checkpoint besides weights, optimizer and
 * schedule: the recurrent state carried between batches (a run resumed
 * mid-epoch starts from it; each rank holds its streams' rows) and the
 * stream geometry it belongs to (the same on every rank). */
static int carried_open(trainer *t) {
    t->carry_rows = tg_params_new();
    t->carry_shared = tg_params_new();
    t->stream = tg_tensor_new(TG_F64, 1, (int64_t[]){3});
    if (!t->carry_rows || !t->carry_shared || !t->stream) return -1;
    double stream[3] = {(double)t->B, (double)t->tr.T, (double)t->cp->n_train};
    for (int i = 0; i < 3; i++) tg_tensor_set(t->stream, i, stream[i]);
    tg_status st = tg_params_add(t->carry_shared, "textgen.stream", t->stream);
    for (int l = 0; l < t->train.L && st == TG_OK; l++) {
        char name[32];
        snprintf(name, sizeof name, "h.%d", l);
        st = tg_params_add(t->carry_rows, name, t->train.h[l]);
        snprintf(name, sizeof name, "c.%d", l);
        if (st == TG_OK && t->train.c[l]) st = tg_params_add(t->carry_rows, name, t->train.c[l]);
    }
    return st == TG_OK ? 0 : -1;
}

/* A resumed run must read the text as the saved one did. */
static int check_stream(const trainer *t, const tg_safetensors *f) {
    tg_tensor *saved = tg_safetensors_get(f, "tapegrad.carry.textgen.stream", TG_F64);
    bool same = saved && tg_tensor_numel(saved) == 3;
    for (int i = 0; same && i < 3; i++) same = tg_tensor_get(saved, i) == tg_tensor_get(t->stream, i);
    if (!saved)
        fprintf(stderr, "error: %s holds no carried state (an older textgen saved it): it can be "
                "sampled with --sample-only, not resumed\n", t->o->load);
    else if (!same)
        fprintf(stderr, "error: %s was trained with --batch %g --seq %g on %g training characters; "
                "resuming needs the same (now %lld, %lld, %lld)\n", t->o->load,
                tg_tensor_get(saved, 0), tg_tensor_get(saved, 1), tg_tensor_get(saved, 2),
                (long long)t->B, (long long)t->tr.T, (long long)t->cp->n_train);
    tg_tensor_free(saved);
    return same ? 0 : 1;
}

/* This rank's streams [first, first + n) of a split read as B streams. */
static batcher shard_of(batcher b, int64_t first, int64_t n) {
    b.start += first * b.stream;
    b.B = n;
    return b;
}

static int trainer_open(trainer *t, const options *o, model *m, const corpus *cp, tg_tape *tp,
                        const tg_safetensors *resume, ex_dist *dist) {
    memset(t, 0, sizeof *t);
    t->o = o, t->m = m, t->cp = cp, t->tp = tp, t->dist = dist, t->B = o->batch;
    int64_t first, rows;
    if (ex_dist_shard(dist, "textgen", o->batch, &first, &rows)) return 2;
    t->tr = shard_of(make_batcher(cp, false, o->batch, o->seq), first, rows);
    t->va = shard_of(make_batcher(cp, true, o->batch, o->seq), first, rows);
    t->total = o->steps > 0 ? o->steps : o->epochs * t->tr.per_epoch;
    t->ts.rng = tg_rng_seeded((uint64_t)o->seed);
    int64_t hist = (o->eval_every > 0 ? t->total / o->eval_every : 0) + 2;
    t->h_step = malloc((size_t)hist * sizeof(double));
    t->h_train = malloc((size_t)hist * sizeof(double));
    t->h_val = malloc((size_t)hist * sizeof(double));
    t->x = tg_tensor_new(TG_I32, 2, (int64_t[]){rows, o->seq});
    t->y = tg_tensor_new(TG_I32, 2, (int64_t[]){rows, o->seq});
    if (!t->h_step || !t->h_train || !t->h_val || !t->x || !t->y ||
        carry_open(&t->train, m, rows) || carry_open(&t->eval, m, rows) ||
        carry_open(&t->sp.state, m, 1) || !(t->sp.x = tg_tensor_new(TG_I32, 2, (int64_t[]){1, 1})) ||
        !(t->sp.text = calloc((size_t)o->sample_len + 1, 1)) || carried_open(t))
        return fprintf(stderr, "error: out of memory: %s\n", tg_last_error()), 1;
    return make_optim(t, resume);
}

static void trainer_close(trainer *t) {
    carry_close(&t->train), carry_close(&t->eval), carry_close(&t->sp.state);
    tg_tensor_free(t->x), tg_tensor_free(t->y), tg_tensor_free(t->sp.x);
    free(t->sp.text), free(t->h_step), free(t->h_train), free(t->h_val);
    tg_sched_free(t->sched);
    tg_optim_free(t->opt);
    tg_params_free(t->carry_rows);   /* the tensors stay the carries' and ours */
    tg_params_free(t->carry_shared);
    tg_tensor_free(t->stream);
}

static void plot_history(const trainer *t) {
    if (!t->o->plot || !*t->o->plot || t->n_hist < 2) return;
    const char *names[] = {"training (mean since last point)", "validation"};
    const double *ys[] = {t->h_train, t->h_val};
    ex_plot_lines(t->o->plot, "textgen: cross-entropy per character", "step", "nats/char",
                  t->h_step, t->n_hist, 2, names, ys);
}

/* Full validation, final sample, checkpoint, plot. */
static int finish(trainer *t, double seconds, int64_t first_step) {
    int64_t chars, steps = t->ts.step - first_step;
    double val = evaluate(t, 0, &chars);
    printf("validation cross-entropy: %.4f nats/char (%.4f bits/char) over %lld characters\n",
           val, val / log(2.0), (long long)chars);
    printf("trained %lld steps (%lld characters) in %.1f s, now at step %lld; heap allocations "
           "in warm steps: %llu\n", (long long)steps, (long long)(steps * t->B * t->tr.T),
           seconds, (long long)t->ts.step, (unsigned long long)t->warm_allocs);
    show_sample(t, NULL, "after training");
    const char *save = t->o->save;
    ex_dist_report(t->dist);
    if (save && *save) {
        if (ex_dist_save(t->dist, save, t->m->p, t->opt, t->sched, &t->ts, t->carry_shared,
                         t->carry_rows) != TG_OK)
            return fprintf(stderr, "error: saving %s: %s\n", save, tg_last_error()), 1;
        printf("saved checkpoint %s (generate with: textgen --load %s --sample-only)\n", save, save);
    }
    plot_history(t);
    return isfinite(val) ? 0 : 1;
}

static void describe(const trainer *t) {
    const options *o = t->o;
    const model *m = t->m;
    printf("model: embedding %lld -> %lld x %s %lld -> linear %lld; %lld parameters\n",
           (long long)m->E, (long long)m->L, cell_name(m->kind), (long long)m->H, (long long)m->V,
           (long long)(tg_params_numel(m->p) - m->V - N_CONFIG));
    printf("training: %s lr %g%s, clip %g, batch %lld x seq %lld, %lld steps (%lld per epoch), "
           "%d BLIS threads (%s), seed %lld\n", o->optim, o->lr,
           t->sched ? " cosine-decayed" : "", o->clip, (long long)o->batch, (long long)o->seq,
           (long long)t->total, (long long)t->tr.per_epoch, tg_tape_threads(t->tp),
           tg_blas_arch(), (long long)o->seed);
    if (t->dist->size > 1)
        printf("data-parallel: %d ranks x %lld streams, %d BLIS threads each\n", t->dist->size,
               (long long)t->tr.B, tg_tape_threads(t->tp));
}

static int run_training(const options *o, model *m, const corpus *cp, tg_tape *tp,
                        const tg_safetensors *resume, ex_dist *dist) {
    trainer t;
    int rc = trainer_open(&t, o, m, cp, tp, resume, dist);
    if (rc == 0 && resume) rc = check_stream(&t, resume);
    if (rc == 0 && resume &&
        ex_dist_load_from(dist, resume, m->p, t.opt, t.sched, &t.ts, t.carry_shared,
                          t.carry_rows) != TG_OK) {
        fprintf(stderr, "error: resuming from %s: %s\n", o->load, tg_last_error());
        rc = 1;
    }
    if (rc == 0) rc = ex_dist_attach(dist, m->p, tp);   /* rank 0's weights, averaged gradients */
    if (rc == 0) {
        if (resume) printf("resumed from %s at step %lld\n", o->load, (long long)t.ts.step);
        describe(&t);
        double start = ex_now();
        int64_t first_step = t.ts.step;
        rc = train_loop(&t);
        if (rc == 0) rc = finish(&t, ex_now() - start, first_step);
    }
    ex_dist_detach(dist);
    trainer_close(&t);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------ */
/* Peak memory, measured (peak RSS, H 128..1024, layers 2..4, B 32..1024, T 64):
 * a training step keeps about 265 bytes per B x T x H x layer on the tape (the
 * final validation runs batches of the same shape without gradients), plus
 * the embeddings and logits, about 30 bytes per B x T x (E + V), V <= 256;
 * weights (LSTM: 4H(E+H) in the first layer, 8H^2 in each other) count with
 * gradients and two Adam moments. */
static bool fits_memory(const model *m, int64_t B, int64_t T) {
    double H = (double)m->H, E = (double)m->E, L = (double)m->L, V = 256;
    double weights = V * E + 4 * H * (E + H) + (L - 1) * 8 * H * H + H * V;
    double tape = (double)B * (double)T * (280 * H * L + 30 * (E + V));
    char sizes[128];
    snprintf(sizes, sizeof sizes, "--batch %lld --seq %lld --hidden %lld --layers %lld "
             "--embed %lld", (long long)B, (long long)T, (long long)m->H, (long long)m->L,
             (long long)m->E);
    return ex_memory_fits("textgen", 100e6 + 16 * weights + tape, sizes);
}

static int check_options(const options *o) {
    cell_kind k;
    const char *bad = !parse_cell(o->cell, &k) ? "--cell must be rnn, lstm or gru"
        : o->sample_only && !o->load ? "--sample-only needs --load PATH" : NULL;
    if (bad) fprintf(stderr, "textgen: %s (see --help)\n", bad);
    return bad ? 2 : 0;
}

static int sample_only(const options *o, model *m, const corpus *cp, tg_tape *tp) {
    sampler sp = {0};
    tg_rng r = tg_rng_seeded((uint64_t)o->seed);
    int rc = carry_open(&sp.state, m, 1) || !(sp.x = tg_tensor_new(TG_I32, 2, (int64_t[]){1, 1})) ||
             !(sp.text = calloc((size_t)o->sample_len + 1, 1));
    if (rc) fprintf(stderr, "error: out of memory\n");
    if (!rc) rc = sample(tp, m, cp, &sp, o->prime, o->sample_len, o->temperature, &r);
    if (!rc) printf("%s%s\n", o->prime ? o->prime : "", sp.text);
    carry_close(&sp.state);
    tg_tensor_free(sp.x);
    free(sp.text);
    return rc;
}

static int run(const options *o, tg_tape *tp, ex_dist *dist) {
    model m = {0};
    corpus cp = {0};
    tg_rng rng = tg_rng_seeded((uint64_t)o->seed);
    tg_safetensors *f = NULL;
    int rc = 0;
    if (o->load) {
        if (!(f = ex_dist_open(dist, o->load)))   /* across ranks: rank 0 reads, all parse */
            rc = (fprintf(stderr, "error: cannot load checkpoint: %s\n  make one with: textgen "
                          "--save %s\n", tg_last_error(), o->load), 1);
        else rc = read_header(f, o->load, &m, &cp);
    } else {
        parse_cell(o->cell, &m.kind);
        m.L = o->layers, m.H = o->hidden, m.E = o->embed;
    }
    if (rc == 0 && !fits_memory(&m, o->sample_only ? 1 : o->batch, o->sample_only ? 1 : o->seq))
        rc = 2;
    if (rc == 0 && !o->sample_only)
        rc = load_corpus(&cp, o->data, o->batch, o->seq, o->val_frac, o->load != NULL);
    if (rc == 0) m.V = cp.V, rc = model_build(&m, &cp, o->dropout, &rng);
    if (rc == 0 && o->sample_only && tg_checkpoint_load_from(f, m.p, NULL, NULL, NULL) != TG_OK)
        rc = (fprintf(stderr, "error: loading %s: %s\n", o->load, tg_last_error()), 1);
    if (rc == 0)
        rc = o->sample_only ? sample_only(o, &m, &cp, tp) : run_training(o, &m, &cp, tp, f, dist);
    tg_safetensors_close(f);
    model_free(&m);
    free(cp.ids);
    return rc;
}

int main(int argc, char **argv) {
    options o = {.cell = "lstm", .optim = "adam", .save = "textgen.safetensors",
                 .plot = "textgen-loss.png", .layers = 2, .hidden = 256, .embed = 64,
                 .batch = 32, .seq = 64, .epochs = 1, .seed = 1, .eval_every = 200,
                 .eval_chars = 32768, .sample_every = 500, .sample_len = 300, .lr = 2e-3,
                 .clip = 5, .val_frac = 0.1, .temperature = 0.8, .lr_min = -1};
    ex_opt opts[] = {
        {"data", EX_STR, &o.data, "text file (default: the fortunes in " FORTUNE_DIR "/)",
         EX_NONE},
        {"cell", EX_STR, &o.cell, "rnn (Elman), lstm or gru", EX_NONE},
        {"layers", EX_INT, &o.layers, "stacked recurrent layers", EX_IN(1, MAX_LAYERS)},
        {"hidden", EX_INT, &o.hidden, "hidden size H", EX_IN(1, EX_MAX_SIZE)},
        {"embed", EX_INT, &o.embed, "character embedding size E", EX_IN(1, EX_MAX_SIZE)},
        {"batch", EX_INT, &o.batch, "streams per batch B", EX_IN(1, EX_MAX_SIZE)},
        {"seq", EX_INT, &o.seq, "characters per stream per step T (BPTT length)",
         EX_IN(1, EX_MAX_SIZE)},
        {"steps", EX_INT, &o.steps, "training steps (0: --epochs)", EX_IN(0, EX_MAX_COUNT)},
        {"epochs", EX_INT, &o.epochs, "epochs when --steps is 0", EX_IN(1, EX_MAX_COUNT)},
        {"max-seconds", EX_DOUBLE, &o.max_seconds, "stop training after this long (0: no limit)",
         EX_IN(0, INFINITY)},
        {"optim", EX_STR, &o.optim, "adam or rmsprop", EX_NONE},
        {"lr", EX_DOUBLE, &o.lr, "learning rate", EX_LR},
        {"lr-min", EX_DOUBLE, &o.lr_min, "cosine decay to this lr (< 0: constant lr)",
         EX_IN(-1, INFINITY)},
        {"decay-steps", EX_INT, &o.decay_steps,
         "steps the --lr-min decay spans from step 0 (0: this run's); a resumed run keeps its "
         "checkpoint's", EX_IN(0, EX_MAX_COUNT)},
        {"clip", EX_DOUBLE, &o.clip, "clip the global gradient norm (0: off)", EX_IN(0, INFINITY)},
        {"dropout", EX_DOUBLE, &o.dropout, "dropout on each recurrent layer's input",
         EX_IN(0, 0.99)},
        {"val-frac", EX_DOUBLE, &o.val_frac, "fraction of the text held out (its end)",
         EX_IN(1e-9, 0.99)},
        {"eval-every", EX_INT, &o.eval_every, "steps between validation points (0: end only)",
         EX_IN(0, EX_MAX_COUNT)},
        {"eval-chars", EX_INT, &o.eval_chars, "characters per periodic validation (0: all)",
         EX_IN(0, EX_MAX_COUNT)},
        {"sample-every", EX_INT, &o.sample_every, "steps between printed samples (0: end only)",
         EX_IN(0, EX_MAX_COUNT)},
        {"sample-len", EX_INT, &o.sample_len, "characters per sample", EX_IN(0, 1 << 24)},
        {"temperature", EX_DOUBLE, &o.temperature, "sampling temperature (0: greedy)",
         EX_IN(0, INFINITY)},
        {"prime", EX_STR, &o.prime, "text the samples start from (default: a newline)", EX_NONE},
        {"save", EX_STR, &o.save, "checkpoint written after training (\"\": none)", EX_NONE},
        {"load", EX_STR, &o.load, "checkpoint to resume from, or to sample with --sample-only",
         EX_NONE},
        {"sample-only", EX_FLAG, &o.sample_only, "generate --sample-len characters from --load",
         EX_NONE},
        {"plot", EX_STR, &o.plot, "loss-curve PNG (\"\": none)", EX_NONE},
        {"profile", EX_STR, &o.profile,
         "per-op profile: Chrome trace JSON to this file, table and memory report to stderr",
         EX_NONE},
        EX_OPT_THREADS(&o.threads),
        {"seed", EX_INT, &o.seed, "seed for initial weights, dropout and sampling", EX_SEED},
        EX_OPTS_DIST(&o.dist),
    };
    int rc = ex_parse(argc, argv,
                      "Trains a character-level language model (embedding, stacked RNN/LSTM/GRU, "
                      "softmax)\nwith truncated BPTT, prints samples as it learns, reports the "
                      "validation\ncross-entropy in nats per character and saves a checkpoint.",
                      opts, EX_COUNT(opts));
    if (rc >= 0) return rc;
    if ((rc = check_options(&o)) != 0) return rc;
    ex_dist dist;
    if ((rc = ex_dist_start(&dist, &o.dist, "textgen", &argc, &argv)) != 0) return rc;
    if (!ex_dist_root(&dist)) o.plot = "";   /* rank 0 draws */
    if (o.profile && *o.profile) setenv("TG_PROFILE", o.profile, 1);   /* tapegrad/inspect.h */
    tg_tape *tp = tg_tape_new();
    if (!tp) return ex_dist_end(&dist, (fprintf(stderr, "error: cannot create a tape\n"), 1));
    if (o.threads > 0) tg_tape_set_threads(tp, (int)o.threads);
    signal(SIGINT, on_sigint);
    rc = run(&o, tp, &dist);
    tg_tape_free(tp);
    return ex_dist_end(&dist, rc);
}
