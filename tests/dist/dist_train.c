/* tests/dist/dist_train.c - data-parallel training under mpirun (issue 13),
 * one scenario per run (tests/dist/meson.build runs them with 2 ranks):
 *
 *   equivalence --model mlp|lstm --dtype f64|f32 [--no-overlap] [--bucket-bytes N]
 *       Ranks seeded differently differ, and are identical (bit for bit)
 *       after tg_dist_broadcast_params. Then N ranks with B/N rows each train
 *       20 steps (Adam, gradient clipping) and must end where one process
 *       with all B rows ends (every rank trains that reference too, from the
 *       broadcast weights): within 1e-12 in float64, 1e-5 in float32; and the
 *       ranks stay bit for bit identical.
 *   fail        rank 1's forward fails at step 3: every rank's sync returns
 *               that error, naming rank 1; the program exits 0 when they all did.
 *   checkpoint --path FILE
 *               rank 0 saves (with a row-split and a shared carry), every rank
 *               resumes from the file into a fresh model: 4 more steps equal 4
 *               more steps of the uninterrupted run, bit for bit; the file holds
 *               the carry in rank order; a save with ranks that differ is refused.
 *   kill        rank 1 kills itself (SIGKILL) at step 5 (tests/dist/failing_rank.sh).
 *   stall       rank 1 stops answering at step 5; rank 0's wait times out after
 *               --timeout seconds and ends the job (failing_rank.sh). */
#define _POSIX_C_SOURCE 200809L
#include <tapegrad.h>
#include <tapegrad/dist.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tg_test.h"

enum { STEPS = 20, BATCH = 8, IN = 8, HID = 16, CLASSES = 4, T = 5, C = 3, OUT = 2 };

typedef struct config {
    const char *scenario, *path;
    bool lstm, no_overlap;
    tg_dtype dt;
    size_t bucket_bytes;
    double timeout;
} config;

/* Prints a failure; returns 1 (a failed check). */
static int complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int complain(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    return 1;
}

/* ---- data: STEPS batches of BATCH rows, the same on every rank ---------------------------- */
typedef struct data {
    double *x;      /* [STEPS * BATCH, IN] (mlp) or [STEPS * BATCH, T, C] (lstm) */
    double *y;      /* class ids (mlp) or [.., OUT] targets (lstm)             */
    int64_t row_x, row_y;
} data;

static int data_make(data *d, bool lstm) {
    d->row_x = lstm ? T * C : IN;
    d->row_y = lstm ? OUT : 1;
    int64_t rows = STEPS * BATCH;
    d->x = malloc((size_t)(rows * d->row_x) * sizeof *d->x);
    d->y = malloc((size_t)(rows * d->row_y) * sizeof *d->y);
    if (!d->x || !d->y) return -1;
    tg_rng r = tg_rng_seeded(7);
    for (int64_t i = 0; i < rows * d->row_x; i++) d->x[i] = 2 * tg_rng_uniform(&r) - 1;
    for (int64_t i = 0; i < rows * d->row_y; i++)
        d->y[i] = lstm ? tg_rng_normal(&r) : (double)(tg_rng_next(&r) % CLASSES);
    return 0;
}

/* ---- the model ------------------------------------------------------------------------- */
typedef struct net {
    tg_params *p;
    bool lstm;
    tg_rnn rnn;
    tg_linear l1, head;
    tg_optim *opt;
} net;

static int net_open(net *m, const config *cf, uint64_t seed) {
    memset(m, 0, sizeof *m);
    tg_rng rng = tg_rng_seeded(seed);
    m->p = tg_params_new();
    m->lstm = cf->lstm;
    tg_status st = m->p ? TG_OK : TG_ERR_NOMEM;
    if (st == TG_OK && cf->lstm) {
        tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_lstm, C, HID);
        st = tg_rnn_init(&m->rnn, m->p, "rnn", &o, cf->dt, &rng);
        if (st == TG_OK) st = tg_linear_init(&m->head, m->p, "head", HID, OUT, cf->dt, &rng, NULL);
    } else if (st == TG_OK) {
        tg_linear_opts act = {.activation = TG_ACT_TANH};
        st = tg_linear_init(&m->l1, m->p, "fc1", IN, HID, cf->dt, &rng, &act);
        if (st == TG_OK) st = tg_linear_init(&m->head, m->p, "fc2", HID, CLASSES, cf->dt, &rng, NULL);
    }
    if (st == TG_OK) m->opt = tg_optim_new(TG_OPTIM_ADAM, m->p, 1e-2);
    return st == TG_OK && m->opt ? 0 : -1;
}

static void net_close(net *m) {
    tg_optim_free(m->opt);
    tg_rnn_free(&m->rnn);
    tg_params_free(m->p);
}

/* Rows [first, first + n) of the data as x and target tensors of dtype dt. */
static void batch_fill(const data *d, int64_t first, tg_tensor *x, tg_tensor *y) {
    for (int64_t i = 0; i < tg_tensor_numel(x); i++) tg_tensor_set(x, i, d->x[first * d->row_x + i]);
    for (int64_t i = 0; i < tg_tensor_numel(y); i++) tg_tensor_set(y, i, d->y[first * d->row_y + i]);
}

/* The loss of the model on x: mean over the rows (cross-entropy or MSE). */
static tg_tensor *loss_of(tg_tape *tp, const net *m, tg_tensor *x, tg_tensor *y) {
    if (m->lstm)
        return tg_mse(tp, tg_linear_forward(tp, &m->head, tg_rnn_forward(tp, &m->rnn, x, NULL, NULL, 0)), y);
    return tg_cross_entropy(tp, tg_linear_forward(tp, &m->head, tg_linear_forward(tp, &m->l1, x)), y);
}

typedef struct trainer {
    tg_tape *tp;
    tg_tensor *x, *y;   /* this rank's rows of a batch */
    int64_t rows, first;
    tg_dist_reducer *r; /* NULL: one process */
} trainer;

static int trainer_open(trainer *t, const config *cf, int64_t rows, int64_t first) {
    memset(t, 0, sizeof *t);
    t->tp = tg_tape_new();
    t->rows = rows, t->first = first;
    t->x = cf->lstm ? tg_tensor_new(cf->dt, 3, (int64_t[]){rows, T, C})
                    : tg_tensor_new(cf->dt, 2, (int64_t[]){rows, IN});
    t->y = cf->lstm ? tg_tensor_new(cf->dt, 2, (int64_t[]){rows, OUT})
                    : tg_tensor_new(TG_I32, 1, (int64_t[]){rows});
    return t->tp && t->x && t->y ? 0 : -1;
}

static void trainer_close(trainer *t) {
    tg_dist_reducer_free(t->r);
    tg_tensor_free(t->x), tg_tensor_free(t->y);
    tg_tape_free(t->tp);
}

/* One step on this trainer's rows of batch k. bad_target: make the forward fail. */
static tg_status step(trainer *t, net *m, const data *d, int k, bool bad_target) {
    batch_fill(d, (int64_t)k * BATCH + t->first, t->x, t->y);
    if (bad_target) tg_tensor_set(t->y, 0, 99);
    tg_params_zero_grad(m->p);
    tg_tensor *loss = loss_of(t->tp, m, t->x, t->y);
    tg_status st = loss ? tg_backward(t->tp, loss) : tg_tape_status(t->tp);
    if (t->r) st = tg_dist_reducer_sync(t->r);
    else if (st != TG_OK) tg_set_last_error(st, "%s", tg_tape_error(t->tp));
    if (st == TG_OK) tg_clip_grad_norm(m->p, 1.0);
    if (st == TG_OK) st = tg_optim_step(m->opt);
    tg_tape_reset(t->tp);
    return st;
}

/* ---- equivalence ------------------------------------------------------------------------- */
/* Largest difference per parameter, printed llm.c style; the worst of all. */
static double compare(const tg_params *a, const tg_params *b, bool print) {
    double worst = 0;
    for (int i = 0; i < tg_params_count(a); i++) {
        double diff = tgt_max_diff(tg_params_at(a, i), tg_params_at(b, i), false);
        if (print) printf("  %-20s max |diff| %.3g\n", tg_params_name(a, i), diff);
        tgt_diff_update(&worst, diff, 0);
    }
    return worst;
}

static tg_status copy_params(tg_params *dst, const tg_params *src) {
    tg_status st = TG_OK;
    for (int i = 0; i < tg_params_count(src) && st == TG_OK; i++)
        st = tg_tensor_copy(tg_params_at(dst, i), tg_params_at(src, i));
    return st;
}

/* Seeded differently, the ranks differ; after the broadcast they are identical. */
static int broadcast_check(tg_dist *d, net *m) {
    if (tg_dist_size(d) > 1 && tg_dist_check_params(d, m->p) != TG_ERR_STATE) {
        fprintf(stderr, "differently seeded ranks were not seen to differ: %s\n", tg_last_error());
        return 1;
    }
    if (tg_dist_broadcast_params(d, m->p) != TG_OK || tg_dist_check_params(d, m->p) != TG_OK) {
        fprintf(stderr, "after the broadcast: %s\n", tg_last_error());
        return 1;
    }
    if (tg_dist_rank(d) == 0) printf("broadcast: %d differently seeded ranks now hold identical "
                                     "parameters\n", tg_dist_size(d));
    return 0;
}

static int equivalence(tg_dist *d, const config *cf) {
    int rank = tg_dist_rank(d), size = tg_dist_size(d);
    if (BATCH % size) return complain("%d ranks do not divide batch %d\n", size, BATCH);
    data dt = {0};
    net dist_net, ref;
    trainer mine, whole;
    int64_t b = BATCH / size;
    int rc = data_make(&dt, cf->lstm) || net_open(&dist_net, cf, 100 + (uint64_t)rank) ||
             net_open(&ref, cf, 1) || trainer_open(&mine, cf, b, rank * b) ||
             trainer_open(&whole, cf, BATCH, 0);
    if (rc) fprintf(stderr, "set-up failed: %s\n", tg_last_error());
    if (!rc) rc = broadcast_check(d, &dist_net) || copy_params(ref.p, dist_net.p) != TG_OK;
    tg_dist_reducer_opts ro = {.bucket_bytes = cf->bucket_bytes, .no_overlap = cf->no_overlap};
    if (!rc && !(mine.r = tg_dist_reducer_new(d, dist_net.p, mine.tp, &ro)))
        rc = complain("reducer: %s\n", tg_last_error());
    for (int k = 0; k < STEPS && !rc; k++)
        if (step(&mine, &dist_net, &dt, k, false) != TG_OK || step(&whole, &ref, &dt, k, false) != TG_OK)
            rc = complain("step %d: %s\n", k, tg_last_error());
    if (!rc) {
        double tol = cf->dt == TG_F64 ? 1e-12 : 1e-5, worst = compare(dist_net.p, ref.p, rank == 0);
        tg_dist_reducer_stats s;
        tg_dist_reducer_stats_get(mine.r, &s);
        if (rank == 0)
            printf("%s %s, %d ranks x %lld rows vs 1 x %d, %d steps, %d bucket(s), %lld started "
                   "during backward: worst %.3g (tol %g)\n", cf->lstm ? "lstm" : "mlp",
                   tg_dtype_name(cf->dt), size, (long long)b, BATCH, STEPS, s.buckets,
                   (long long)s.started_in_backward, worst, tol);
        if (!tgt_within(worst, tol)) rc = complain("rank %d: worst %.3g > %g\n", rank, worst, tol);
        /* with overlap, every bucket starts inside backward (every parameter is
         * used, so each is reported final there); without, none does */
        int64_t want = cf->no_overlap ? 0 : (int64_t)STEPS * s.buckets;
        if (s.started_in_backward != want)
            rc = complain("rank %d: %lld allreduces started during backward, want %lld\n", rank,
                          (long long)s.started_in_backward, (long long)want);
        if (tg_dist_check_params(d, dist_net.p) != TG_OK)
            rc = complain("after training: %s\n", tg_last_error());
    }
    trainer_close(&mine), trainer_close(&whole);
    net_close(&dist_net), net_close(&ref);
    free(dt.x), free(dt.y);
    return rc;
}

/* ---- a failing rank -------------------------------------------------------------------------- */
/* Trains the MLP with a reducer; at step `at` rank 1 misbehaves as mode says. */
static int train_until_trouble(tg_dist *d, const config *cf, int at, const char *mode) {
    int rank = tg_dist_rank(d), size = tg_dist_size(d);
    data dt = {0};
    net m;
    trainer t;
    int64_t b = BATCH / size;
    if (data_make(&dt, false) || net_open(&m, cf, 1) || trainer_open(&t, cf, b, rank * b) ||
        !(t.r = tg_dist_reducer_new(d, m.p, t.tp, NULL)))
        return complain("set-up failed: %s\n", tg_last_error());
    int rc = 2;   /* the expected error never came */
    for (int k = 0; k < STEPS && rc == 2; k++) {
        bool trouble = rank == 1 && k == at;
        if (trouble && !strcmp(mode, "kill")) raise(SIGKILL);
        if (trouble && !strcmp(mode, "stall")) sleep(600);   /* ended by mpirun after rank 0 aborts */
        tg_status st = step(&t, &m, &dt, k, trouble && !strcmp(mode, "fail"));
        if (st == TG_OK) continue;
        fprintf(stderr, "rank %d, step %d: %s\n", rank, k, tg_last_error());
        if (strcmp(mode, "fail")) tg_dist_abort(d, 3);
        rc = k == at && strstr(tg_last_error(), "rank 1 failed: cross_entropy") ? 0 : 1;
    }
    if (rc == 2) fprintf(stderr, "rank %d: %s: no error reached this rank\n", rank, mode);
    trainer_close(&t);
    net_close(&m);
    free(dt.x), free(dt.y);
    return rc;
}

/* ---- checkpoints ---------------------------------------------------------------------------------- */
typedef struct carries {
    tg_tensor *state, *shared;   /* [2, 3] per rank (row-split), [3] on every rank */
    tg_params *rows, *same;
} carries;

static int carries_open(carries *c) {
    c->state = tg_tensor_new(TG_F64, 2, (int64_t[]){2, 3});
    c->shared = tg_tensor_new(TG_F64, 1, (int64_t[]){3});
    c->rows = tg_params_new(), c->same = tg_params_new();
    return c->state && c->shared && c->rows && c->same &&
                   tg_params_add(c->rows, "state", c->state) == TG_OK &&
                   tg_params_add(c->same, "shared", c->shared) == TG_OK
               ? 0 : -1;
}

static void carries_close(carries *c) {
    tg_params_free(c->rows), tg_params_free(c->same);
    tg_tensor_free(c->state), tg_tensor_free(c->shared);
}

/* What a loop carries, changed every step: per-rank rows, and a shared count. */
static void carries_step(carries *c, int rank, int k) {
    for (int64_t i = 0; i < 6; i++)
        tg_tensor_set(c->state, i, 0.5 * tg_tensor_get(c->state, i) + rank + 0.1 * i + k);
    for (int64_t i = 0; i < 3; i++) tg_tensor_set(c->shared, i, k + i);
}

/* The file holds the row-split carry whole, rank 0's rows first. */
static int check_file_rows(const char *path, const carries *c) {
    tg_safetensors *f = tg_safetensors_open(path);
    tg_tensor *whole = f ? tg_safetensors_get(f, "tapegrad.carry.state", TG_F64) : NULL;
    int rc = !whole || tg_tensor_dim(whole, 0) != 4 || tg_tensor_dim(whole, 1) != 3;
    for (int64_t i = 0; !rc && i < 6; i++)
        rc = tg_tensor_get(whole, i) != tg_tensor_get(c->state, i);   /* rank 0's rows */
    if (rc) fprintf(stderr, "checkpoint: the saved carry is not [4, 3] with rank 0's rows first\n");
    tg_tensor_free(whole);
    tg_safetensors_close(f);
    return rc;
}

static int checkpoint(tg_dist *d, const config *cf) {
    int rank = tg_dist_rank(d), size = tg_dist_size(d);
    int64_t b = BATCH / size;
    data dt = {0};
    net a, fresh;
    trainer ta, tf;
    carries ca, cf_;
    tg_train_state ts = {.rng = tg_rng_seeded(5)}, ts_back = {0};
    int rc = size != 2 || data_make(&dt, false) || net_open(&a, cf, 1) || net_open(&fresh, cf, 9) ||
             trainer_open(&ta, cf, b, rank * b) || trainer_open(&tf, cf, b, rank * b) ||
             carries_open(&ca) || carries_open(&cf_) ||
             !(ta.r = tg_dist_reducer_new(d, a.p, ta.tp, NULL)) ||
             !(tf.r = tg_dist_reducer_new(d, fresh.p, tf.tp, NULL));
    if (rc) return complain("set-up failed (2 ranks needed): %s\n", tg_last_error());
    for (int k = 0; k < 6 && !rc; k++) {
        rc = step(&ta, &a, &dt, k, false) != TG_OK;
        carries_step(&ca, rank, k);
        ts.step++;
    }
    tg_dist_carry carry = {.shared = ca.same, .rows = ca.rows};
    if (!rc && tg_dist_checkpoint_save(d, cf->path, a.p, a.opt, NULL, &ts, &carry) != TG_OK)
        rc = complain("save: %s\n", tg_last_error());
    if (!rc && rank == 0) rc = check_file_rows(cf->path, &ca);
    tg_dist_carry back = {.shared = cf_.same, .rows = cf_.rows};
    if (!rc && tg_dist_checkpoint_load(d, cf->path, fresh.p, fresh.opt, NULL, &ts_back, &back) != TG_OK)
        rc = complain("load: %s\n", tg_last_error());
    if (!rc && (ts_back.step != ts.step || memcmp(&ts_back.rng, &ts.rng, sizeof ts.rng) ||
                tgt_max_diff(cf_.state, ca.state, false) != 0 ||
                tgt_max_diff(cf_.shared, ca.shared, false) != 0))
        rc = complain("rank %d: training state or carries not restored exactly\n", rank);
    for (int k = 6; k < 10 && !rc; k++)   /* resumed == uninterrupted */
        rc = step(&ta, &a, &dt, k, false) != TG_OK || step(&tf, &fresh, &dt, k, false) != TG_OK;
    if (!rc && compare(a.p, fresh.p, false) != 0)
        rc = complain("rank %d: resumed run differs from the uninterrupted one\n", rank);
    if (!rc) {   /* ranks that differ are not saved */
        if (rank == 1) tg_tensor_set(tg_params_at(a.p, 0), 0, 42);
        tg_status st = tg_dist_checkpoint_save(d, cf->path, a.p, a.opt, NULL, &ts, &carry);
        if (st != TG_ERR_STATE || !strstr(tg_last_error(), "differs between ranks"))
            rc = complain("rank %d: a save of differing ranks gave '%s'\n", rank, tg_last_error());
    }
    if (!rc && rank == 0) printf("checkpoint: saved by rank 0, resumed on 2 ranks bit for bit\n");
    trainer_close(&ta), trainer_close(&tf);
    carries_close(&ca), carries_close(&cf_);
    net_close(&a), net_close(&fresh);
    free(dt.x), free(dt.y);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------------------- */
static int parse(int argc, char **argv, config *cf) {
    *cf = (config){.scenario = argc > 1 ? argv[1] : "", .dt = TG_F64, .timeout = 60};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-overlap")) cf->no_overlap = true;
        else if (!strcmp(a, "--model") && v) cf->lstm = !strcmp(argv[++i], "lstm");
        else if (!strcmp(a, "--dtype") && v) cf->dt = !strcmp(argv[++i], "f32") ? TG_F32 : TG_F64;
        else if (!strcmp(a, "--bucket-bytes") && v) cf->bucket_bytes = (size_t)atoll(argv[++i]);
        else if (!strcmp(a, "--timeout") && v) cf->timeout = atof(argv[++i]);
        else if (!strcmp(a, "--path") && v) cf->path = argv[++i];
        else return fprintf(stderr, "dist_train: unknown argument '%s'\n", a), 2;
    }
    return 0;
}

int main(int argc, char **argv) {
    config cf;
    if (parse(argc, argv, &cf)) return 2;
    tg_dist *d = tg_dist_init(&argc, &argv, &(tg_dist_opts){.timeout_seconds = cf.timeout});
    if (!d) return complain("dist_train: %s\n", tg_last_error());
    int rc;
    if (!strcmp(cf.scenario, "equivalence")) rc = equivalence(d, &cf);
    else if (!strcmp(cf.scenario, "checkpoint") && cf.path) rc = checkpoint(d, &cf);
    else if (!strcmp(cf.scenario, "fail")) rc = train_until_trouble(d, &cf, 3, "fail");
    else if (!strcmp(cf.scenario, "kill") || !strcmp(cf.scenario, "stall"))
        rc = train_until_trouble(d, &cf, 5, cf.scenario);
    else rc = 2 * complain("dist_train: scenario equivalence|fail|checkpoint --path F|kill|stall\n");
    /* every rank must finish alike: one that failed alone would leave the others waiting */
    tg_status all = tg_dist_agree(d, rc ? tg_set_last_error(TG_ERR_STATE, "exit %d", rc) : TG_OK,
                                  "dist_train");
    if (all != TG_OK && tg_dist_rank(d) == 0) fprintf(stderr, "dist_train: %s\n", tg_last_error());
    tg_dist_free(d);
    return all == TG_OK ? 0 : 1;
}
