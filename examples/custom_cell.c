/* examples/custom_cell.c - docs/custom-cells.md as a program: a new recurrent
 * cell written from primitives, its gradients checked, then trained.
 *
 * The cell is the minimal gated unit (MGU, Zhou et al. 2016), a GRU whose one
 * gate does the work of two. With [a, b] the concatenation along features:
 *   f_t  = sigmoid([x_t, h_{t-1}] W_f + b_f)          forget gate
 *   h~_t = tanh([x_t, f_t * h_{t-1}] W_h + b_h)        candidate
 *   h_t  = (1 - f_t) * h_{t-1} + f_t * h~_t
 * x_t [B, C], h [B, H], W_f and W_h [C+H, H], biases [H]. No gradient code:
 * the tape records the primitives and tg_backward replays their VJPs.
 *
 * 1. Gradient check: tg_gradcheck compares the tape's gradients of a small
 *    unrolled MGU (every input and parameter, float64) with central
 *    differences. The program stops if it fails.
 * 2. Training on the adding problem (Hochreiter & Schmidhuber 1997): each
 *    step of a length-T sequence carries a random value in [0, 1) and a
 *    marker; exactly two steps are marked, one in each half, and the target is
 *    the sum of the two marked values. Predicting the mean gives MSE 1/6; the
 *    cell has to learn to remember. A readout y = h_T W_y + b_y, MSE loss,
 *    Adam. With --compare the built-in GRU and LSTM cells (tg_rnn_cell_step)
 *    are trained the same way, so the new cell has a yardstick.
 *
 * Reported per cell: parameters, test MSE and accuracy (|error| < 0.04, the
 * usual criterion) on a fixed test set of sequences not used for training. */
#include "common.h"

#include <tapegrad.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { C = 2, MAX_T = 1000, N_TEST = 1000 };
static const double TOLERANCE = 0.04;   /* a prediction is right within this */

typedef struct config {
    int64_t steps, batch, length, hidden, eval_every, seed, threads;
    double lr, clip;
    bool compare;
} config;

/* ---- the new cell -------------------------------------------------------------------- */
/* W_f, W_h [C+H, H]; b_f, b_h [H] */
typedef struct mgu { tg_tensor *w_f, *b_f, *w_h, *b_h; } mgu;

static tg_status mgu_init(mgu *c, tg_params *p, const char *name, int64_t in, int64_t H,
                          tg_dtype dt, tg_rng *rng) {
    char n[4][64];
    static const char *const leaf[4] = {"w_f", "b_f", "w_h", "b_h"};
    for (int i = 0; i < 4; i++) snprintf(n[i], sizeof n[i], "%s.%s", name, leaf[i]);
    c->w_f = tg_params_create(p, n[0], dt, 2, (int64_t[]){in + H, H});
    c->b_f = tg_params_create(p, n[1], dt, 1, (int64_t[]){H});
    c->w_h = tg_params_create(p, n[2], dt, 2, (int64_t[]){in + H, H});
    c->b_h = tg_params_create(p, n[3], dt, 1, (int64_t[]){H});
    if (!c->w_f || !c->b_f || !c->w_h || !c->b_h) return tg_last_status();
    tg_init_glorot_uniform(c->w_f, rng);
    return tg_init_glorot_uniform(c->w_h, rng);
}

/* One step: x [B, C], h [B, H] -> h' [B, H] */
static tg_tensor *mgu_step(tg_tape *tp, const mgu *c, tg_tensor *x, tg_tensor *h) {
    /* f = sigmoid([x, h] W_f + b_f) */
    tg_tensor *xh = tg_concat(tp, 2, (tg_tensor *[]){x, h}, 1);
    tg_tensor *f = tg_sigmoid(tp, tg_add(tp, tg_matmul(tp, xh, c->w_f), c->b_f));
    /* h~ = tanh([x, f * h] W_h + b_h) */
    tg_tensor *xfh = tg_concat(tp, 2, (tg_tensor *[]){x, tg_mul(tp, f, h)}, 1);
    tg_tensor *cand = tg_tanh(tp, tg_add(tp, tg_matmul(tp, xfh, c->w_h), c->b_h));
    /* h' = (1 - f) * h + f * h~, written as h + f * (h~ - h) */
    return tg_add(tp, h, tg_mul(tp, f, tg_sub(tp, cand, h)));
}

/* ---- a model around any of the cells ---------------------------------------------------- */
typedef enum cell_kind { CELL_MGU, CELL_GRU, CELL_LSTM } cell_kind;
static const char *const CELL_NAMES[] = {"MGU (new)", "GRU (built-in)", "LSTM (built-in)"};

typedef struct model {
    cell_kind kind;
    mgu mgu;                 /* CELL_MGU                */
    tg_rnn_cell builtin;     /* CELL_GRU, CELL_LSTM     */
    tg_tensor *w_y, *b_y;    /* readout [H, 1], [1]     */
    int64_t H;
} model;

static tg_status model_init(model *m, cell_kind kind, tg_params *p, int64_t H, tg_dtype dt,
                            tg_rng *rng) {
    *m = (model){.kind = kind, .H = H};
    tg_status st;
    if (kind == CELL_MGU) {
        st = mgu_init(&m->mgu, p, "mgu", C, H, dt, rng);
    } else {
        tg_rnn_opts o = tg_rnn_opts_default(kind == CELL_GRU ? &tg_cell_gru : &tg_cell_lstm, C, H);
        st = tg_rnn_cell_init(&m->builtin, p, kind == CELL_GRU ? "gru" : "lstm", &o, 0, C, dt, rng);
    }
    m->w_y = tg_params_create(p, "readout.w", dt, 2, (int64_t[]){H, 1});
    m->b_y = tg_params_create(p, "readout.b", dt, 1, (int64_t[]){1});
    if (st != TG_OK || !m->w_y || !m->b_y) return st != TG_OK ? st : tg_last_status();
    return tg_init_glorot_uniform(m->w_y, rng);
}

/* xs: T steps of [B, C] -> y [B, 1] = h_T W_y + b_y */
static tg_tensor *forward(tg_tape *tp, const model *m, tg_tensor *const *xs, int64_t T) {
    int64_t B = tg_tensor_dim(xs[0], 0);
    tg_tensor *h = NULL;
    if (m->kind == CELL_MGU) {
        h = tg_tape_tensor(tp, tg_tensor_dtype(m->w_y), 2, (int64_t[]){B, m->H});   /* h_0 = 0 */
        for (int64_t t = 0; t < T; t++) h = mgu_step(tp, &m->mgu, xs[t], h);
    } else {
        tg_rnn_state s = {{{0}}};   /* NULL members: zeros */
        for (int64_t t = 0; t < T; t++) {
            tg_rnn_state next;
            h = tg_rnn_cell_step(tp, &m->builtin, xs[t], &s, &next);
            s = next;
        }
    }
    return tg_add(tp, tg_matmul(tp, h, m->w_y), m->b_y);
}

/* ---- 1. gradient check ----------------------------------------------------------------- */
enum { GC_B = 3, GC_T = 4, GC_H = 5, GC_PARAMS = 6 };

/* inputs: x_0 .. x_{T-1}, then w_f, b_f, w_h, b_h, w_y, b_y */
static tg_tensor *checked(tg_tape *tp, tg_tensor *const *in, void *user) {
    (void)user;
    model m = {.kind = CELL_MGU, .H = GC_H,
               .mgu = {in[GC_T], in[GC_T + 1], in[GC_T + 2], in[GC_T + 3]},
               .w_y = in[GC_T + 4], .b_y = in[GC_T + 5]};
    return forward(tp, &m, in, GC_T);
}

static int gradcheck(uint64_t seed) {
    tg_rng rng = tg_rng_seeded(seed);
    tg_params *p = tg_params_new();
    model m;
    tg_tensor *in[GC_T + GC_PARAMS] = {0};
    int rc = 1;
    if (p && model_init(&m, CELL_MGU, p, GC_H, TG_F64, &rng) == TG_OK) {
        for (int t = 0; t < GC_T; t++) {
            in[t] = tg_tensor_new(TG_F64, 2, (int64_t[]){GC_B, C});
            for (int64_t i = 0; in[t] && i < GC_B * C; i++)
                tg_tensor_set(in[t], i, tg_rng_normal(&rng));
        }
        tg_tensor *params[GC_PARAMS] = {m.mgu.w_f, m.mgu.b_f, m.mgu.w_h, m.mgu.b_h, m.w_y, m.b_y};
        for (int i = 0; i < GC_PARAMS; i++) {   /* biases away from 0, so they are tested too */
            in[GC_T + i] = params[i];
            if (tg_tensor_ndim(params[i]) == 1) tg_init_uniform(params[i], -0.5, 0.5, &rng);
        }
        tg_gradcheck_report r;
        tg_status st = tg_gradcheck(checked, NULL, GC_T + GC_PARAMS, in, NULL, &r);
        printf("gradcheck of the MGU unrolled %d steps (B %d, C %d, H %d, float64, every input "
               "and parameter):\n  %s: %lld elements, max abs error %.1e\n",
               GC_T, GC_B, C, GC_H, st == TG_OK && r.passed ? "passed" : "FAILED",
               (long long)r.checked, r.max_abs_err);
        if (st != TG_OK) printf("  %s\n", r.message);
        else if (!r.passed)
            printf("  worst: input %d element %lld, analytic %g, numeric %g\n", r.worst_input,
                   (long long)r.worst_index, r.worst_analytic, r.worst_numeric);
        rc = st == TG_OK && r.passed ? 0 : 1;
    } else {
        fprintf(stderr, "error: gradcheck setup: %s\n", tg_last_error());
    }
    for (int t = 0; t < GC_T; t++) tg_tensor_free(in[t]);
    tg_params_free(p);
    return rc;
}

/* ---- 2. the adding problem ----------------------------------------------------------------- */
typedef struct batch {
    int64_t B, T;
    tg_tensor *xs[MAX_T];   /* T steps of [B, C]: value, marker */
    tg_tensor *y;           /* [B, 1]                           */
} batch;

static int make_batch(batch *b, int64_t B, int64_t T) {
    memset(b, 0, sizeof *b);
    b->B = B;
    b->T = T;
    for (int64_t t = 0; t < T; t++)
        if (!(b->xs[t] = tg_tensor_new(TG_F32, 2, (int64_t[]){B, C}))) return 1;
    return (b->y = tg_tensor_new(TG_F32, 2, (int64_t[]){B, 1})) ? 0 : 1;
}

static void free_batch(batch *b) {
    for (int64_t t = 0; t < b->T; t++) tg_tensor_free(b->xs[t]);
    tg_tensor_free(b->y);
}

static void fill_batch(batch *b, tg_rng *rng) {
    int64_t half = b->T / 2;
    for (int64_t r = 0; r < b->B; r++) {
        int64_t m1 = (int64_t)(tg_rng_next(rng) % (uint64_t)half);
        int64_t m2 = half + (int64_t)(tg_rng_next(rng) % (uint64_t)(b->T - half));
        double sum = 0;
        for (int64_t t = 0; t < b->T; t++) {
            double v = tg_rng_uniform(rng);
            bool marked = t == m1 || t == m2;
            float *x = (float *)tg_tensor_data(b->xs[t]) + r * C;
            x[0] = (float)v;
            x[1] = marked;
            sum += marked ? v : 0;
        }
        tg_tensor_set(b->y, r, sum);
    }
}

typedef struct result { double mse, acc, seconds; int64_t params; uint64_t warm_allocs; } result;

/* MSE and accuracy of m on the test batch; NAN on error. */
static double evaluate(tg_tape *tp, const model *m, const batch *test, double *acc) {
    tg_no_grad_begin(tp);
    tg_tensor *y = forward(tp, m, test->xs, test->T);
    double se = 0;
    int64_t right = 0;
    for (int64_t r = 0; y && r < test->B; r++) {
        double e = tg_tensor_get(y, r) - tg_tensor_get(test->y, r);
        se += e * e;
        right += fabs(e) < TOLERANCE;
    }
    tg_no_grad_end(tp);
    if (!y) fprintf(stderr, "error: evaluation: %s\n", tg_tape_error(tp));
    tg_tape_reset(tp);
    *acc = (double)right / (double)test->B;
    return y ? se / (double)test->B : NAN;
}

typedef struct trainer {
    tg_tape *tp;
    tg_params *p;
    tg_optim *opt;
    tg_sched *sched;   /* cosine decay of the learning rate, stepped per update */
} trainer;

static double train_step(const trainer *tr, const model *m, batch *b, const config *c,
                         tg_rng *rng) {
    tg_tape *tp = tr->tp;
    fill_batch(b, rng);
    tg_params_zero_grad(tr->p);
    tg_tensor *loss = tg_mse(tp, forward(tp, m, b->xs, b->T), b->y);
    return ex_update(tp, loss, tr->p, tr->opt, tr->sched, c->clip);
}

static int train_loop(const trainer *tr, const model *m, batch *b, const batch *test,
                      const config *c, tg_rng *rng, result *res) {
    tg_tape *tp = tr->tp;
    ex_progress pr;
    ex_progress_start(&pr, c->steps, "seq");
    double avg = 0;
    for (int64_t step = 1; step <= c->steps; step++) {
        uint64_t before = tg_heap_allocs();
        double loss = train_step(tr, m, b, c, rng);
        if (step > 2) res->warm_allocs += tg_heap_allocs() - before;
        if (!ex_loss_ok(&pr, tp, CELL_NAMES[m->kind], step, loss, c->lr)) return 1;
        avg = step == 1 ? loss : 0.98 * avg + 0.02 * loss;
        ex_progress_update(&pr, step, avg, b->B);
        if (c->eval_every > 0 && step % c->eval_every == 0 && step < c->steps) {
            double acc, mse = evaluate(tp, m, test, &acc);
            if (isnan(mse)) return 1;
            ex_log(&pr, "step %lld  loss %.4f  test MSE %.4f  accuracy %.3f", (long long)step, avg,
                   mse, acc);
        }
    }
    ex_progress_done(&pr);
    res->mse = evaluate(tp, m, test, &res->acc);
    return isnan(res->mse);
}

/* Trains one cell kind from scratch on the same stream of batches (same seed). */
static int train_cell(cell_kind kind, const config *c, const batch *test, result *res) {
    tg_rng rng = tg_rng_seeded((uint64_t)c->seed);
    trainer tr = {.p = tg_params_new(), .tp = tg_tape_new()};
    model m;
    batch b;
    int rc = 1;
    memset(res, 0, sizeof *res);
    if (tr.p && tr.tp && model_init(&m, kind, tr.p, c->hidden, TG_F32, &rng) == TG_OK &&
        (tr.opt = tg_optim_new(TG_OPTIM_ADAM, tr.p, c->lr)) &&
        (tr.sched = tg_sched_new_cosine(tr.opt, 0, c->steps, c->lr / 20)) &&
        !make_batch(&b, c->batch, c->length)) {
        if (c->threads > 0) tg_tape_set_threads(tr.tp, (int)c->threads);
        res->params = tg_params_numel(tr.p);
        printf("\n%s, hidden %lld, %lld parameters\n", CELL_NAMES[kind], (long long)c->hidden,
               (long long)res->params);
        double t0 = ex_now();
        rc = train_loop(&tr, &m, &b, test, c, &rng, res);
        res->seconds = ex_now() - t0;
        free_batch(&b);
    } else {
        fprintf(stderr, "error: setup: %s\n", tg_last_error());
    }
    tg_sched_free(tr.sched);
    tg_optim_free(tr.opt);
    tg_tape_free(tr.tp);
    tg_params_free(tr.p);
    return rc;
}

/* Peak memory, measured (peak RSS, T 100, H 128): a training step keeps about
 * 92 bytes per batch x length x hidden on the tape for the MGU and 230 for the
 * LSTM (--compare); evaluating the test set about 46 per N_TEST x length x
 * hidden. Parameters: at most 4 [C+H, H] matrices, each with its gradient and
 * two Adam moments. */
static int check_config(const config *c, const char *prog) {
    double T = (double)c->length, H = (double)c->hidden, B = (double)c->batch;
    double per_unit = c->compare ? 250 : 100;
    double tape = T * H * fmax(per_unit * B, 50.0 * N_TEST);
    double params = 4 * 16.0 * (C + H) * H;
    char sizes[160];
    snprintf(sizes, sizeof sizes, "--batch %lld --length %lld --hidden %lld%s", (long long)c->batch,
             (long long)c->length, (long long)c->hidden, c->compare ? " --compare" : "");
    return ex_memory_fits(prog, 64e6 + tape + params, sizes) ? 0 : 2;
}

int main(int argc, char **argv) {
    config c = {.steps = 4000, .batch = 64, .length = 50, .hidden = 32, .eval_every = 500,
                .seed = 1, .lr = 3e-3, .clip = 1.0};
    ex_opt opts[] = {
        {"steps", EX_INT, &c.steps, "training steps per cell", EX_IN(1, EX_MAX_COUNT)},
        {"batch", EX_INT, &c.batch, "sequences per batch", EX_IN(1, EX_MAX_SIZE)},
        {"length", EX_INT, &c.length, "sequence length T of the adding problem", EX_IN(2, MAX_T)},
        {"hidden", EX_INT, &c.hidden, "hidden size H", EX_IN(1, EX_MAX_SIZE)},
        {"lr", EX_DOUBLE, &c.lr, "Adam learning rate", EX_LR},
        {"clip", EX_DOUBLE, &c.clip, "gradient norm clipping", EX_ABOVE(0, INFINITY)},
        {"compare", EX_FLAG, &c.compare, "also train the built-in GRU and LSTM cells", EX_NONE},
        {"eval-every", EX_INT, &c.eval_every, "test every this many steps (0: only at the end)",
         EX_IN(0, EX_MAX_COUNT)},
        EX_OPT_THREADS(&c.threads),
        {"seed", EX_INT, &c.seed, "seed for data and weights", EX_SEED},
    };
    int rc = ex_parse(argc, argv, "A new recurrent cell (MGU) from primitives: gradient-checked, "
                      "then trained on the adding problem.", opts, EX_COUNT(opts));
    if (rc >= 0) return rc;
    if ((rc = check_config(&c, argv[0]))) return rc;
    if (gradcheck((uint64_t)c.seed)) return 1;

    /* the test set comes from its own seed, apart from the training stream */
    tg_rng test_rng = tg_rng_seeded((uint64_t)c.seed ^ 0x7e57da7aULL);
    batch test;
    if (make_batch(&test, N_TEST, c.length)) {
        fprintf(stderr, "error: test set: %s\n", tg_last_error());
        return 1;
    }
    fill_batch(&test, &test_rng);
    printf("\nadding problem, T = %lld: %lld steps of batch %lld, Adam lr %g; test set of %d "
           "sequences (predicting the mean scores MSE %.3f)\n", (long long)c.length,
           (long long)c.steps, (long long)c.batch, c.lr, N_TEST, 1.0 / 6.0);
    result res[3];
    int n = c.compare ? 3 : 1;
    for (int k = 0; k < n && !rc; k++) rc = train_cell((cell_kind)k, &c, &test, &res[k]);
    if (!rc) {
        printf("\n%-16s %10s %10s %10s %8s %12s\n", "cell", "params", "test MSE", "accuracy",
               "time", "warm allocs");
        for (int k = 0; k < n; k++)
            printf("%-16s %10lld %10.5f %10.3f %7.1fs %12llu\n", CELL_NAMES[k],
                   (long long)res[k].params, res[k].mse, res[k].acc, res[k].seconds,
                   (unsigned long long)res[k].warm_allocs);
        printf("\nnew cell (MGU) test accuracy on the adding problem, T = %lld: %.3f\n",
               (long long)c.length, res[0].acc);
    }
    free_batch(&test);
    return rc;
}
