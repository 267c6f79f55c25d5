/* examples/custom_cell.c - docs/custom-cells.md as a program: a new recurrent
 * cell written as a descriptor, run through the same layer as the built-in
 * LSTM, gradient-checked and trained.
 *
 * The cell is the guide's minimal gated unit (MGU, Zhou et al. 2016), a GRU
 * whose one gate does the work of two (* elementwise):
 *   f_t = sigmoid(x_t W_fx^T + h_{t-1} W_fh^T + b_f)            forget gate
 *   n_t = tanh(x_t W_nx^T + (f_t * h_{t-1}) W_nh^T + b_n)         candidate
 *   h_t = (1 - f_t) * h_{t-1} + f_t * n_t
 * written as a tg_cell (describe, prepare, step; include/tapegrad/nn_cell.h).
 * Given to tg_rnn_init it runs as --layers stacked layers in --directions
 * directions over padded batches of sequences of different lengths, through
 * tg_rnn_forward, the code the built-in cells run through. No gradient code:
 * the tape records the primitives and tg_backward replays their VJPs.
 *
 * 1. Gradient check: tg_gradcheck_params compares the gradients of every
 *    parameter of a small model of the same shape (float64, a NaN-padded
 *    batch) with central differences. The program stops if it fails.
 * 2. Training on the adding problem (Hochreiter & Schmidhuber 1997), with
 *    sequences of different lengths: each step carries a random value in
 *    [0, 1) and a marker; exactly two steps are marked, one in each half of
 *    the sequence, and the target is the sum of the two marked values.
 *    Predicting the mean gives MSE 1/6; the cell has to learn to remember.
 *    Lengths are drawn from [T/2, T] and the padding after them is NaN: the
 *    layer never reads it. A readout of the last layer's final states,
 *    y = [h_fwd, h_bwd] W_y^T + b_y, MSE loss, Adam. With --compare the
 *    built-in GRU and LSTM are trained the same way: the same layer and the
 *    same code, only the descriptor differs, so the new cell has a yardstick.
 *
 * Reported per cell: parameters, test MSE and accuracy (|error| < 0.04, the
 * usual criterion) on a fixed test set of sequences not used for training. */
#include "common.h"

#include <tapegrad.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* FEATURES per step: the value and its marker */
enum { FEATURES = 2, MAX_T = 1000, N_TEST = 1000 };
static const double TOLERANCE = 0.04;   /* a prediction is right within this */

typedef struct config {
    int64_t steps, batch, length, hidden, layers, directions, eval_every, seed, threads;
    double lr, clip;
    bool compare;
    const char *dot;   /* --dot: draw one step's tape instead of training */
} config;

/* ---- the new cell: docs/custom-cells.md, sections 2 to 4, word for word --------------------
 * (tests/nn/check_guide_sync.sh fails when the two differ) */
/* Parameters, in the order describe lists them */
enum { W_IH, W_HH, BIAS };

static tg_status mgu_describe(const tg_cell_cfg *cfg, tg_cell_layout *l) {
    int64_t C = cfg->input_size, H = cfg->hidden_size, G = 2 * H;
    tg_status st = tg_cell_layout_state(l, "h", H);   /* one state, also the output */
    if (st == TG_OK)   /* rows f, n: [W_fx; W_nx] [2H, C] */
        st = tg_cell_layout_param(l, "weight_ih", TG_PARAM_KERNEL, 2, (int64_t[]){G, C});
    if (st == TG_OK)   /* [W_fh; W_nh] [2H, H] */
        st = tg_cell_layout_param(l, "weight_hh", TG_PARAM_RECURRENT, 2, (int64_t[]){G, H});
    if (st == TG_OK)   /* [b_f; b_n] [2H] */
        st = tg_cell_layout_param(l, "bias", TG_PARAM_BIAS, 1, &G);
    return st;
}

/* x [T*B, C], every step at once -> x W_ih^T + b [T*B, 2H] (one GEMM);
 * the recurrent weight is split once per sequence, not once per step */
static tg_tensor *mgu_prepare(tg_cell_run *run, tg_tensor *x) {
    tg_tape *tp = run->tp;
    int64_t H = run->cfg->hidden_size;
    run->prep[0] = tg_slice(tp, run->param[W_HH], 0, 0, H);       /* W_fh [H, H] */
    run->prep[1] = tg_slice(tp, run->param[W_HH], 0, H, 2 * H);   /* W_nh [H, H] */
    tg_tensor *xw = tg_matmul_ex(tp, x, run->param[W_IH], &(tg_matmul_opts){.trans_b = true});
    return tg_add(tp, xw, run->param[BIAS]);
}

/* One step: in [B, 2H] (this step's rows of prepare's result), h [B, H] -> h' */
static void mgu_step(const tg_cell_run *run, tg_tensor *in, tg_tensor *const *prev,
                     tg_tensor *h_rec, tg_tensor **next) {
    tg_tape *tp = run->tp;
    int64_t H = run->cfg->hidden_size;
    tg_matmul_opts tb = {.trans_b = true};
    /* f = sigmoid(x W_fx^T + h W_fh^T + b_f) */
    tg_tensor *f = tg_sigmoid(tp, tg_add(tp, tg_gate_cols(tp, in, H, 0, 1),
                                         tg_matmul_ex(tp, h_rec, run->prep[0], &tb)));
    /* n = tanh(x W_nx^T + (f * h) W_nh^T + b_n) */
    tg_tensor *fh = tg_matmul_ex(tp, tg_mul(tp, f, h_rec), run->prep[1], &tb);
    tg_tensor *n = tg_tanh(tp, tg_add(tp, tg_gate_cols(tp, in, H, 1, 1), fh));
    /* h' = (1 - f) * h + f * n */
    next[0] = tg_add(tp, tg_mul(tp, tg_affine(tp, f, -1, 1), prev[0]), tg_mul(tp, f, n));
}

static const tg_cell mgu = {.name = "mgu", .describe = mgu_describe, .prepare = mgu_prepare,
                            .step = mgu_step};

/* ---- a model around any cell ------------------------------------------------------------ */
static const struct {
    const tg_cell *cell;
    const char *name;
} CELLS[] = {{&mgu, "MGU (new)"}, {&tg_cell_gru, "GRU (built-in)"}, {&tg_cell_lstm, "LSTM (built-in)"}};

/* The layer over the cell (its parameters "<cell>.weight_ih_l0", ...) and a
 * readout of the last layer's final states: y = [h_fwd, h_bwd] W_y^T + b_y. */
typedef struct model { tg_rnn rnn; tg_linear readout; } model;

static tg_status model_init(model *m, tg_params *p, const tg_cell *cell, const config *c, int64_t H,
                            tg_dtype dt, tg_rng *rng) {
    tg_rnn_opts o = tg_rnn_opts_default(cell, FEATURES, H);   /* batch first, last output only */
    o.num_layers = (int)c->layers;
    o.bidirectional = c->directions == 2;
    tg_status st = tg_rnn_init(&m->rnn, p, cell->name, &o, dt, rng);
    if (st == TG_OK) st = tg_linear_init(&m->readout, p, "readout", c->directions * H, 1, dt, rng, NULL);
    return st;
}

/* ---- the adding problem over padded batches ------------------------------------------------ */
typedef struct batch {
    int64_t B, T;
    tg_tensor *x;       /* [B, T, FEATURES]: value, marker; NaN after each sequence's length */
    tg_tensor *y;       /* [B, 1]                                                   */
    int64_t *lengths;   /* [B], in [T/2, T]                                         */
} batch;

/* x [B, T, FEATURES] -> y [B, 1] */
static tg_tensor *forward(tg_tape *tp, const model *m, const batch *b) {
    tg_rnn_call call = {.lengths = b->lengths};
    tg_tensor *h = tg_rnn_forward(tp, &m->rnn, b->x, &call, NULL, 0);   /* [B, directions * H] */
    return tg_linear_forward(tp, &m->readout, h);
}

static int make_batch(batch *b, int64_t B, int64_t T, tg_dtype dt) {
    *b = (batch){.B = B, .T = T, .lengths = calloc((size_t)B, sizeof *b->lengths)};
    b->x = tg_tensor_new(dt, 3, (int64_t[]){B, T, FEATURES});
    b->y = tg_tensor_new(dt, 2, (int64_t[]){B, 1});
    return b->x && b->y && b->lengths ? 0 : 1;
}

static void free_batch(batch *b) {
    tg_tensor_free(b->x);
    tg_tensor_free(b->y);
    free(b->lengths);
}

static int64_t below(tg_rng *rng, int64_t n) { return (int64_t)(tg_rng_next(rng) % (uint64_t)n); }

/* A sequence of length L in [T/2, T] (at least 2), one marker in each half. */
static void fill_batch(batch *b, tg_rng *rng) {
    int64_t T = b->T, shortest = T / 2 > 2 ? T / 2 : 2;
    for (int64_t r = 0; r < b->B; r++) {
        int64_t L = shortest + below(rng, T - shortest + 1), half = L / 2;
        int64_t m1 = below(rng, half), m2 = half + below(rng, L - half);
        double sum = 0;
        for (int64_t t = 0; t < T; t++) {
            double v = tg_rng_uniform(rng);
            bool marked = t == m1 || t == m2;
            tg_tensor_set(b->x, (r * T + t) * FEATURES, t < L ? v : NAN);
            tg_tensor_set(b->x, (r * T + t) * FEATURES + 1, t < L ? marked : NAN);
            sum += t < L && marked ? v : 0;
        }
        b->lengths[r] = L;
        tg_tensor_set(b->y, r, sum);
    }
}

/* ---- 1. gradient check --------------------------------------------------------------------- */
enum { GC_B = 3, GC_T = 5, GC_H = 3 };

typedef struct checked { model *m; batch *b; } checked;

static tg_tensor *checked_forward(tg_tape *tp, void *user) {
    checked *c = user;
    return forward(tp, c->m, c->b);
}

/* Every parameter of a small model of the configured shape, in float64, on a NaN-padded batch. */
static int gradcheck(const config *c) {
    tg_rng rng = tg_rng_seeded((uint64_t)c->seed);
    tg_params *p = tg_params_new();
    model m = {0};
    batch b = {0};
    int rc = 1;
    if (p && !make_batch(&b, GC_B, GC_T, TG_F64) &&
        model_init(&m, p, &mgu, c, GC_H, TG_F64, &rng) == TG_OK) {
        fill_batch(&b, &rng);
        for (int i = 0; i < tg_params_count(p); i++)   /* biases away from 0, so they are tested too */
            if (tg_tensor_ndim(tg_params_at(p, i)) == 1) tg_init_uniform(tg_params_at(p, i), -0.5, 0.5, &rng);
        tg_gradcheck_report r;
        tg_status st = tg_gradcheck_params(p, checked_forward, &(checked){&m, &b}, 1, &b.x, NULL, &r);
        printf("gradcheck of the MGU as %lld layer(s) x %lld direction(s) over a NaN-padded batch "
               "(B %d, T %d, H %d, float64, every parameter):\n  %s: %lld elements, max abs error %.1e\n",
               (long long)c->layers, (long long)c->directions, GC_B, GC_T, GC_H,
               st == TG_OK && r.passed ? "passed" : "FAILED", (long long)r.checked, r.max_abs_err);
        if (st != TG_OK || !r.passed) printf("  %s\n", r.message);   /* which parameter, which element */
        rc = st == TG_OK && r.passed ? 0 : 1;
    } else {
        fprintf(stderr, "error: gradcheck setup: %s\n", tg_last_error());
    }
    free_batch(&b);
    tg_rnn_free(&m.rnn);
    tg_params_free(p);
    return rc;
}

/* ---- the tape of one training step, drawn (docs/img/custom-cell-tape.png) ----------------- */
/* A small model (B 64, T 2, H 4, one layer, one direction; B x H = 256
 * elements, so the elementwise chains fuse): its forward and
 * loss recorded once and written as Graphviz DOT (tapegrad/inspect.h). */
static int write_dot(const config *c) {
    config small = *c;
    small.layers = small.directions = 1;
    tg_rng rng = tg_rng_seeded((uint64_t)c->seed);
    tg_params *p = tg_params_new();
    tg_tape *tp = tg_tape_new();
    model m = {0};
    batch b = {0};
    tg_status st = TG_ERR_NOMEM;
    if (p && tp && !make_batch(&b, 64, 2, TG_F32) &&
        (st = model_init(&m, p, &mgu, &small, 4, TG_F32, &rng)) == TG_OK) {
        fill_batch(&b, &rng);
        if (!tg_mse(tp, forward(tp, &m, &b), b.y)) st = tg_tape_status(tp);
        else st = tg_tape_write_dot(tp, c->dot);
    }
    if (st != TG_OK) fprintf(stderr, "error: --dot: %s\n", tp && tg_tape_status(tp) ? tg_tape_error(tp) : tg_last_error());
    else printf("wrote %s (%lld nodes): dot -Tpng %s -o tape.png\n", c->dot, (long long)tg_tape_node_count(tp), c->dot);
    free_batch(&b);
    tg_rnn_free(&m.rnn);
    tg_params_free(p);
    tg_tape_free(tp);
    return st == TG_OK ? 0 : 1;
}

/* ---- 2. training --------------------------------------------------------------------------- */
typedef struct result { double mse, acc, seconds; int64_t params; uint64_t warm_allocs; } result;

/* MSE and accuracy of m on the test batch; NAN on error. */
static double evaluate(tg_tape *tp, const model *m, const batch *test, double *acc) {
    tg_no_grad_begin(tp);
    tg_tensor *y = forward(tp, m, test);
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
    model m;
} trainer;

static double train_step(trainer *tr, batch *b, const config *c, tg_rng *rng) {
    fill_batch(b, rng);
    tg_params_zero_grad(tr->p);
    tg_tensor *loss = tg_mse(tr->tp, forward(tr->tp, &tr->m, b), b->y);
    return ex_update(tr->tp, loss, tr->p, tr->opt, tr->sched, c->clip);
}

static int train_loop(trainer *tr, const char *name, batch *b, const batch *test, const config *c,
                      tg_rng *rng, result *res) {
    ex_progress pr;
    ex_progress_start(&pr, c->steps, "seq");
    double avg = 0;
    for (int64_t step = 1; step <= c->steps; step++) {
        uint64_t before = tg_heap_allocs();
        double loss = train_step(tr, b, c, rng);
        if (step > 2) res->warm_allocs += tg_heap_allocs() - before;
        if (!ex_loss_ok(&pr, tr->tp, name, step, loss, c->lr)) return 1;
        avg = step == 1 ? loss : 0.98 * avg + 0.02 * loss;
        ex_progress_update(&pr, step, avg, b->B);
        if (c->eval_every > 0 && step % c->eval_every == 0 && step < c->steps) {
            double acc, mse = evaluate(tr->tp, &tr->m, test, &acc);
            if (isnan(mse)) return 1;
            ex_log(&pr, "step %lld  loss %.4f  test MSE %.4f  accuracy %.3f", (long long)step, avg,
                   mse, acc);
        }
    }
    ex_progress_done(&pr);
    res->mse = evaluate(tr->tp, &tr->m, test, &res->acc);
    return isnan(res->mse);
}

/* Trains cell k from scratch on the same stream of batches (same seed). */
static int train_cell(int k, const config *c, const batch *test, result *res) {
    tg_rng rng = tg_rng_seeded((uint64_t)c->seed);
    trainer tr = {.p = tg_params_new(), .tp = tg_tape_new()};
    batch b = {0};
    int rc = 1;
    memset(res, 0, sizeof *res);
    if (tr.p && tr.tp && model_init(&tr.m, tr.p, CELLS[k].cell, c, c->hidden, TG_F32, &rng) == TG_OK &&
        (tr.opt = tg_optim_new(TG_OPTIM_ADAM, tr.p, c->lr)) &&
        (tr.sched = tg_sched_new_cosine(tr.opt, 0, c->steps, c->lr / 20)) &&
        !make_batch(&b, c->batch, c->length, TG_F32)) {
        if (c->threads > 0) tg_tape_set_threads(tr.tp, (int)c->threads);
        res->params = tg_params_numel(tr.p);
        printf("\n%s: %lld layer(s) x %lld direction(s), hidden %lld, %lld parameters\n", CELLS[k].name,
               (long long)c->layers, (long long)c->directions, (long long)c->hidden,
               (long long)res->params);
        double t0 = ex_now();
        rc = train_loop(&tr, CELLS[k].name, &b, test, c, &rng, res);
        res->seconds = ex_now() - t0;
    } else {
        fprintf(stderr, "error: setup: %s\n", tg_last_error());
    }
    free_batch(&b);
    tg_sched_free(tr.sched);
    tg_optim_free(tr.opt);
    tg_tape_free(tr.tp);
    tg_rnn_free(&tr.m.rnn);
    tg_params_free(tr.p);
    return rc;
}

/* Peak memory, measured (peak RSS, T 100, H 128, 2 layers x 2 directions,
 * batch 8 and 512, 2 steps): a training step keeps about 170 bytes per
 * batch x length x hidden x layer-direction on the tape for the MGU and 290
 * with --compare (the LSTM); evaluating the test set adds about 85 (150 with
 * --compare) per N_TEST x length x hidden x layer-direction, as the training
 * tape's memory stays with the process. Parameters: at most 4 [FEATURES+2H, H]
 * matrices per layer-direction, each with its gradient and two Adam moments. */
static int check_config(const config *c, const char *prog) {
    double T = (double)c->length, H = (double)c->hidden, B = (double)c->batch;
    double LD = (double)(c->layers * c->directions);
    double per_train = c->compare ? 300 : 175, per_test = c->compare ? 150 : 85;
    double tape = LD * T * H * (per_train * B + per_test * N_TEST);
    double params = LD * 4 * 16.0 * (FEATURES + 2 * H) * H;
    char sizes[200];
    snprintf(sizes, sizeof sizes,
             "--batch %lld --length %lld --hidden %lld --layers %lld --directions %lld%s",
             (long long)c->batch, (long long)c->length, (long long)c->hidden, (long long)c->layers,
             (long long)c->directions, c->compare ? " --compare" : "");
    return ex_memory_fits(prog, 64e6 + tape + params, sizes) ? 0 : 2;
}

static void print_results(const config *c, const result *res, int n) {
    printf("\n%-16s %10s %10s %10s %8s %12s\n", "cell", "params", "test MSE", "accuracy", "time",
           "warm allocs");
    for (int k = 0; k < n; k++)
        printf("%-16s %10lld %10.5f %10.3f %7.1fs %12llu\n", CELLS[k].name, (long long)res[k].params,
               res[k].mse, res[k].acc, res[k].seconds, (unsigned long long)res[k].warm_allocs);
    printf("\nnew cell (MGU) test accuracy on the adding problem, T = %lld: %.3f\n",
           (long long)c->length, res[0].acc);
}

int main(int argc, char **argv) {
    config c = {.steps = 4000, .batch = 64, .length = 50, .hidden = 32, .layers = 2, .directions = 2,
                .eval_every = 500, .seed = 1, .lr = 3e-3, .clip = 1.0};
    ex_opt opts[] = {
        {"steps", EX_INT, &c.steps, "training steps per cell", EX_IN(1, EX_MAX_COUNT)},
        {"batch", EX_INT, &c.batch, "sequences per batch", EX_IN(1, EX_MAX_SIZE)},
        {"length", EX_INT, &c.length, "longest sequence T of the adding problem (lengths T/2..T)",
         EX_IN(2, MAX_T)},
        {"hidden", EX_INT, &c.hidden, "hidden size H (per direction)", EX_IN(1, EX_MAX_SIZE)},
        {"layers", EX_INT, &c.layers, "stacked layers", EX_IN(1, 16)},
        {"directions", EX_INT, &c.directions, "1: forward only, 2: bidirectional", EX_IN(1, 2)},
        {"lr", EX_DOUBLE, &c.lr, "Adam learning rate", EX_LR},
        {"clip", EX_DOUBLE, &c.clip, "gradient norm clipping", EX_ABOVE(0, INFINITY)},
        {"compare", EX_FLAG, &c.compare, "also train the built-in GRU and LSTM cells", EX_NONE},
        {"eval-every", EX_INT, &c.eval_every, "test every this many steps (0: only at the end)",
         EX_IN(0, EX_MAX_COUNT)},
        EX_OPT_THREADS(&c.threads),
        {"dot", EX_STR, &c.dot, "write one step's tape (a small model) as Graphviz DOT to this file, "
         "and stop", EX_NONE},
        {"seed", EX_INT, &c.seed, "seed for data and weights", EX_SEED},
    };
    int rc = ex_parse(argc, argv, "A new recurrent cell (MGU) as a descriptor, run as a stacked "
                      "bidirectional layer over padded batches:\ngradient-checked, then trained on the "
                      "adding problem.", opts, EX_COUNT(opts));
    if (rc >= 0) return rc;
    if ((rc = check_config(&c, argv[0]))) return rc;
    if (c.dot) return write_dot(&c);
    if (gradcheck(&c)) return 1;

    /* the test set comes from its own seed, apart from the training stream */
    tg_rng test_rng = tg_rng_seeded((uint64_t)c.seed ^ 0x7e57da7aULL);
    batch test;
    if (make_batch(&test, N_TEST, c.length, TG_F32)) {
        fprintf(stderr, "error: test set: %s\n", tg_last_error());
        free_batch(&test);
        return 1;
    }
    fill_batch(&test, &test_rng);
    printf("\nadding problem, lengths %lld..%lld padded with NaN: %lld steps of batch %lld, Adam lr %g; "
           "test set of %d sequences (predicting the mean scores MSE %.3f)\n",
           (long long)(c.length / 2 > 2 ? c.length / 2 : 2), (long long)c.length, (long long)c.steps,
           (long long)c.batch, c.lr, N_TEST, 1.0 / 6.0);
    result res[3];
    int n = c.compare ? 3 : 1;
    for (int k = 0; k < n && !rc; k++) rc = train_cell(k, &c, &test, &res[k]);
    if (!rc) print_results(&c, res, n);
    free_batch(&test);
    return rc;
}
