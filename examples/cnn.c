/* examples/cnn.c - a small convolutional network on Fashion-MNIST (28x28 grey
 * images of clothing, 10 classes; Debian's dataset-fashion-mnist).
 *
 * For a batch of images x [B, 1, 28, 28] (F1, F2 filters, H hidden units):
 *   h1 = maxpool_2x2(relu(conv_3x3(x, padding 1)))     [B, F1, 14, 14]
 *   h2 = maxpool_2x2(relu(conv_3x3(h1, padding 1)))    [B, F2, 7, 7]
 *   f  = dropout(flatten(h2))                          [B, F2*49]
 *   h3 = dropout(relu(f W1^T + b1))                    [B, H]
 *   logits = h3 W2^T + b2                              [B, 10]
 *   loss = cross_entropy(logits, labels)
 * Adam on shuffled minibatches, the learning rate cosine-decayed to lr/20 over
 * the run. Test accuracy is measured after every epoch; at the end it is
 * printed per class, with a confusion matrix and the first layer's learned
 * filters as pictures.
 *
 * --bench N times N training steps on one thread (after 3 warm-up steps) and
 * prints the milliseconds per batch; examples/cnn_torch.py does the same for
 * this model in PyTorch (docs/performance.md has the two side by side). */
#include <tapegrad.h>

#include "common.h"
#include "fashion_mnist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EVAL_CHUNK = 250, MAX_EPOCHS = 1000, MAX_WIDTH = 4096, WARMUP = 3 };

typedef struct options {
    const char *data, *plot_filters, *plot_confusion;
    int64_t epochs, steps, batch, f1, f2, hidden, seed, threads, bench, limit;
    double lr, dropout;
} options;

/* ---- model ---------------------------------------------------------------------------- */
typedef struct model {
    tg_params *params;
    tg_conv2d_layer conv1, conv2;
    tg_linear fc1, fc2;
    double dropout;
} model;

static int model_init(model *m, const options *o, tg_rng *rng) {
    memset(m, 0, sizeof *m);
    m->dropout = o->dropout;
    if (!(m->params = tg_params_new())) return -1;
    tg_conv2d_layer_opts same = {.conv = {.padding = {1, 1}}, .activation = TG_ACT_RELU};
    tg_linear_opts relu = {.activation = TG_ACT_RELU};
    int64_t flat = o->f2 * (FM_SIDE / 4) * (FM_SIDE / 4);
    return tg_conv2d_layer_init(&m->conv1, m->params, "conv1", 1, o->f1, 3, 3, TG_F32, rng, &same) ||
           tg_conv2d_layer_init(&m->conv2, m->params, "conv2", o->f1, o->f2, 3, 3, TG_F32, rng,
                                &same) ||
           tg_linear_init(&m->fc1, m->params, "fc1", flat, o->hidden, TG_F32, rng, &relu) ||
           tg_linear_init(&m->fc2, m->params, "fc2", o->hidden, FM_CLASSES, TG_F32, rng, NULL);
}

/* x [B, 1, 28, 28] -> logits [B, 10] (shapes in the file comment); rng NULL when evaluating. */
static tg_tensor *model_forward(tg_tape *tp, const model *m, tg_tensor *x, tg_rng *rng) {
    tg_tensor *h = tg_max_pool2d(tp, tg_conv2d_layer_forward(tp, &m->conv1, x), 2, 2);
    h = tg_max_pool2d(tp, tg_conv2d_layer_forward(tp, &m->conv2, h), 2, 2);
    h = tg_dropout(tp, tg_reshape(tp, h, 2, (int64_t[]){tg_tensor_dim(x, 0), -1}), m->dropout, rng);
    h = tg_dropout(tp, tg_linear_forward(tp, &m->fc1, h), m->dropout, rng);
    return tg_linear_forward(tp, &m->fc2, h);
}

/* ---- training and evaluation ---------------------------------------------------------- */
typedef struct trainer {
    tg_tape *tp;
    tg_tensor *xb, *yb;       /* the batch, made once and refilled: [B, 1, 28, 28], [B] */
    int64_t *order;           /* shuffled training indices                            */
    tg_rng rng;               /* shuffling and dropout                                */
    ex_progress pg;
    int64_t confusion[FM_CLASSES][FM_CLASSES];   /* [true][predicted], last evaluation */
    double acc[MAX_EPOCHS];   /* test accuracy after each epoch run                 */
    int64_t epochs_run;
} trainer;

static void shuffle(int64_t *a, int64_t n, tg_rng *rng) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(tg_rng_next(rng) % (uint64_t)(i + 1)), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static void fill_batch(trainer *t, const fm_split *d, const int64_t *idx) {
    int64_t B = tg_tensor_dim(t->xb, 0);
    float *x = tg_tensor_data(t->xb);
    int32_t *y = tg_tensor_data(t->yb);
    for (int64_t b = 0; b < B; b++) {
        memcpy(x + b * FM_PIXELS, d->x + idx[b] * FM_PIXELS, FM_PIXELS * sizeof *x);
        y[b] = d->y[idx[b]];
    }
}

/* Test accuracy over views of EVAL_CHUNK images; fills t->confusion. -1 on error. */
static double evaluate(trainer *t, const model *m, const fm_split *test) {
    memset(t->confusion, 0, sizeof t->confusion);
    tg_tape_set_training(t->tp, false);
    tg_no_grad_begin(t->tp);
    int64_t right = 0;
    for (int64_t first = 0; first < test->n && right >= 0; first += EVAL_CHUNK) {
        int64_t rows = test->n - first < EVAL_CHUNK ? test->n - first : EVAL_CHUNK;
        tg_tensor *x = tg_tensor_wrap(TG_F32, 4, (int64_t[]){rows, 1, FM_SIDE, FM_SIDE},
                                      test->x + first * FM_PIXELS);
        tg_tensor *logits = x ? model_forward(t->tp, m, x, NULL) : NULL;
        for (int64_t r = 0; logits && r < rows; r++) {
            const float *l = (const float *)tg_tensor_cdata(logits) + r * FM_CLASSES;
            int best = 0;
            for (int k = 1; k < FM_CLASSES; k++) best = l[k] > l[best] ? k : best;
            t->confusion[test->y[first + r]][best]++;
            right += best == test->y[first + r];
        }
        if (!logits) right = -1;
        tg_tensor_free(x);
        tg_tape_reset(t->tp);
    }
    tg_no_grad_end(t->tp);
    tg_tape_set_training(t->tp, true);
    return right < 0 ? -1 : (double)right / (double)test->n;
}

/* One Adam step on the current batch (and a schedule step, sched may be NULL);
 * returns the loss, or NaN leaving the error on the tape (ex_loss_ok says it). */
static double train_step(trainer *t, model *m, tg_optim *opt, tg_sched *sched) {
    tg_params_zero_grad(m->params);
    tg_tensor *loss = tg_cross_entropy(t->tp, model_forward(t->tp, m, t->xb, &t->rng), t->yb);
    double v = loss ? tg_tensor_item(loss) : NAN;
    if (!loss || tg_backward(t->tp, loss) != TG_OK || tg_optim_step(opt) != TG_OK) return NAN;
    if (sched) tg_sched_step(sched);
    tg_tape_reset(t->tp);
    return v;
}

static int trainer_init(trainer *t, const options *o, const fm_split *train) {
    memset(t, 0, sizeof *t);
    t->tp = tg_tape_new();
    if (t->tp && o->threads > 0) tg_tape_set_threads(t->tp, (int)o->threads);
    t->rng = tg_rng_seeded((uint64_t)o->seed + 1);
    t->xb = tg_tensor_new(TG_F32, 4, (int64_t[]){o->batch, 1, FM_SIDE, FM_SIDE});
    t->yb = tg_tensor_new(TG_I32, 1, (int64_t[]){o->batch});
    t->order = malloc((size_t)train->n * sizeof *t->order);
    if (!t->tp || !t->xb || !t->yb || !t->order) return -1;
    for (int64_t i = 0; i < train->n; i++) t->order[i] = i;
    return 0;
}

static void trainer_free(trainer *t) {
    free(t->order);
    tg_tensor_free(t->xb);
    tg_tensor_free(t->yb);
    tg_tape_free(t->tp);
}

static int fit(trainer *t, model *m, const options *o, const fm_split *train, const fm_split *test) {
    int64_t per_epoch = train->n / o->batch, total = o->epochs * per_epoch;
    if (o->steps > 0 && o->steps < total) total = o->steps;
    tg_optim *opt = tg_optim_new(TG_OPTIM_ADAM, m->params, o->lr);
    tg_sched *sched = opt ? tg_sched_new_cosine(opt, 0, total, o->lr / 20) : NULL;
    int rc = sched ? 0 : -1;
    ex_progress_start(&t->pg, total, "img");
    for (int64_t e = 0, done = 0; e < o->epochs && done < total && !rc; e++) {
        shuffle(t->order, train->n, &t->rng);
        double sum = 0;
        int64_t n = 0;
        for (int64_t s = 0; s < per_epoch && done < total && !rc; s++, n++) {
            fill_batch(t, train, t->order + s * o->batch);
            double loss = train_step(t, m, opt, sched);
            if (!ex_loss_ok(&t->pg, t->tp, "CNN", done + 1, loss, o->lr)) rc = -1;
            sum += loss;
            ex_progress_update(&t->pg, ++done, loss, o->batch);
        }
        t->acc[e] = rc ? -1 : evaluate(t, m, test);
        t->epochs_run = e + 1;
        if (rc) break;
        if (t->acc[e] < 0) rc = (fprintf(stderr, "evaluation: %s\n", tg_tape_error(t->tp)), -1);
        else ex_log(&t->pg, "epoch %lld  train loss %.4f  test accuracy %.4f", (long long)e + 1,
                    sum / (double)n, t->acc[e]);
    }
    ex_progress_done(&t->pg);
    tg_sched_free(sched);
    tg_optim_free(opt);
    return rc;
}

/* ---- report --------------------------------------------------------------------------- */
static void print_classes(const trainer *t) {
    printf("test accuracy per class, and the class each is most confused with:\n");
    for (int k = 0; k < FM_CLASSES; k++) {
        int64_t seen = 0, worst = k == 0 ? 1 : 0;
        for (int j = 0; j < FM_CLASSES; j++) {
            seen += t->confusion[k][j];
            if (j != k && t->confusion[k][j] > t->confusion[k][worst]) worst = j;
        }
        printf("  %-12s %.3f   (%lld taken for %s)\n", FM_CLASS_NAMES[k],
               seen ? (double)t->confusion[k][k] / (double)seen : 0.0,
               (long long)t->confusion[k][worst], FM_CLASS_NAMES[worst]);
    }
}

static void plot_confusion(const trainer *t, const char *png) {
    double m[FM_CLASSES * FM_CLASSES];
    for (int k = 0; k < FM_CLASSES; k++) {
        int64_t seen = 0;
        for (int j = 0; j < FM_CLASSES; j++) seen += t->confusion[k][j];
        for (int j = 0; j < FM_CLASSES; j++)
            m[k * FM_CLASSES + j] = seen ? (double)t->confusion[k][j] / (double)seen : 0;
    }
    /* numbered columns: ten class names side by side do not fit under the picture */
    static const char *const numbers[FM_CLASSES] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    char rows[FM_CLASSES][32];
    const char *row_labels[FM_CLASSES];
    for (int k = 0; k < FM_CLASSES; k++)
        snprintf(rows[k], sizeof rows[k], "%s %d", FM_CLASS_NAMES[k], k), row_labels[k] = rows[k];
    ex_plot_heatmap(png, "CNN confusion matrix on the test set (rows: true class, columns: "
                         "predicted; share of the row)",
                    m, FM_CLASSES, FM_CLASSES, row_labels, numbers);
}

static void plot_filters(const model *m, const char *png) {
    char title[96];
    snprintf(title, sizeof title, "The %lld learned 3x3 filters of the first layer",
             (long long)m->conv1.out);
    fm_plot_tiles(png, title, tg_tensor_cdata(m->conv1.weight), (int)m->conv1.out, 3, 3, 8, true,
                  0, 0, NULL);
}

/* ---- benchmark --------------------------------------------------------------------------- */
static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Milliseconds per training step (forward, backward, Adam) over o->bench steps:
 * wall time, and the process's CPU time, which other jobs on a shared machine
 * disturb less. */
static int bench(trainer *t, model *m, const options *o, const fm_split *train) {
    tg_optim *opt = tg_optim_new(TG_OPTIM_ADAM, m->params, o->lr);
    if (!opt) return 1;
    double start = 0, cpu = 0, loss = 0;
    for (int64_t s = 0; s < WARMUP + o->bench && isfinite(loss); s++) {
        if (s == WARMUP) start = ex_now(), cpu = cpu_seconds();
        fill_batch(t, train, t->order + (s * o->batch) % (train->n - o->batch + 1));
        loss = train_step(t, m, opt, NULL);
    }
    double ms = 1e3 * (ex_now() - start) / (double)o->bench;
    double cpu_ms = 1e3 * (cpu_seconds() - cpu) / (double)o->bench;
    tg_optim_free(opt);
    if (!isfinite(loss)) return 1;
    printf("tapegrad: %.2f ms per batch of %lld (training step: forward, backward, Adam), "
           "%.2f ms CPU, %lld steps, loss %.4f\n", ms, (long long)o->batch, cpu_ms,
           (long long)o->bench, loss);
    return 0;
}

/* ---- main --------------------------------------------------------------------------------- */
static int run(const options *o, const fm_split *train, const fm_split *test) {
    tg_rng init_rng = tg_rng_seeded((uint64_t)o->seed);
    model m;
    trainer t;
    memset(&m, 0, sizeof m);
    int rc = 1;
    if (trainer_init(&t, o, train) || model_init(&m, o, &init_rng)) {
        fprintf(stderr, "setup failed: %s\n", tg_last_error());
        goto out;
    }
    if (o->bench) {
        rc = bench(&t, &m, o, train);
        goto out;
    }
    printf("Fashion-MNIST: %lld training and %lld test images; CNN conv3x3(%lld) pool conv3x3(%lld) "
           "pool, dense %lld, dropout %g, %lld parameters; Adam lr %g (cosine), batch %lld, "
           "%lld epochs, seed %lld\n", (long long)train->n, (long long)test->n, (long long)o->f1,
           (long long)o->f2, (long long)o->hidden, o->dropout, (long long)tg_params_numel(m.params),
           o->lr, (long long)o->batch, (long long)o->epochs, (long long)o->seed);
    double start = ex_now();
    if (fit(&t, &m, o, train, test)) goto out;
    printf("\ntraining and evaluation took %.1f s\n", ex_now() - start);
    printf("test accuracy (CNN): %.4f\n", t.acc[t.epochs_run - 1]);
    print_classes(&t);
    if (o->plot_confusion && *o->plot_confusion) plot_confusion(&t, o->plot_confusion);
    if (o->plot_filters && *o->plot_filters) plot_filters(&m, o->plot_filters);
    rc = 0;
out:
    tg_params_free(m.params);
    trainer_free(&t);
    return rc;
}

/* Ranges are checked by the option table; what remains is whether the sizes fit
 * in memory. Per training image the arena holds each conv block's im2col
 * buffer, outputs and their gradients (counted below in floats per pre-pool
 * activation and per im2col column), plus the dense layer; the count is scaled
 * by 1.35 and the images themselves (about 220 MB) added, which matches peak
 * RSS measured at the defaults: 397 MB at --batch 128, 996 MB at --batch 512. */
static int check_memory(const options *o) {
    double per_image = 1.35 * 4.0 * (6.0 * (double)o->f1 * 784 + 9.0 * 784 +
                              6.0 * (double)o->f2 * 196 + 9.0 * (double)o->f1 * 196 +
                              4.0 * (double)o->hidden);
    double weights = 4.0 * 4 * ((double)o->f1 * o->f2 * 9 + (double)o->f2 * 49 * o->hidden);
    char sizes[96];
    snprintf(sizes, sizeof sizes, "--batch %lld --filters1 %lld --filters2 %lld --hidden %lld",
             (long long)o->batch, (long long)o->f1, (long long)o->f2, (long long)o->hidden);
    return ex_memory_fits("cnn", 230e6 + weights + per_image * (double)o->batch, sizes) ? 0 : 2;
}

int main(int argc, char **argv) {
    options o = {.data = FM_DEFAULT_DIR, .plot_filters = "cnn-filters.png",
                 .plot_confusion = "cnn-confusion.png", .epochs = 12, .batch = 128, .f1 = 32,
                 .f2 = 64, .hidden = 128, .seed = 1, .threads = 1, .lr = 1e-3, .dropout = 0.3};
    ex_opt opts[] = {
        {"data", EX_STR, &o.data, "folder with the Fashion-MNIST *-ubyte.gz files", EX_NONE},
        {"epochs", EX_INT, &o.epochs, "training epochs", EX_IN(1, MAX_EPOCHS)},
        {"steps", EX_INT, &o.steps, "stop after this many steps (0: no limit)", EX_IN(0, EX_MAX_COUNT)},
        {"batch", EX_INT, &o.batch, "minibatch size", EX_IN(1, EX_MAX_SIZE)},
        {"filters1", EX_INT, &o.f1, "filters of the first convolution", EX_IN(1, MAX_WIDTH)},
        {"filters2", EX_INT, &o.f2, "filters of the second convolution", EX_IN(1, MAX_WIDTH)},
        {"hidden", EX_INT, &o.hidden, "units of the dense layer", EX_IN(1, EX_MAX_SIZE)},
        {"dropout", EX_DOUBLE, &o.dropout, "dropout rate before and after the dense layer", EX_IN(0, 0.99)},
        {"lr", EX_DOUBLE, &o.lr, "Adam learning rate (cosine-decayed to lr/20)", EX_LR},
        {"seed", EX_INT, &o.seed, "seed for weights, shuffling and dropout", EX_SEED},
        EX_OPT_THREADS(&o.threads),
        {"bench", EX_INT, &o.bench, "only time this many training steps (ms per batch)", EX_IN(0, 1 << 20)},
        {"limit", EX_INT, &o.limit, "use only the first N training and test images (0: all)", EX_IN(0, EX_MAX_COUNT)},
        {"plot-filters", EX_STR, &o.plot_filters, "PNG of the first layer's filters ('' for none)", EX_NONE},
        {"plot-confusion", EX_STR, &o.plot_confusion, "PNG of the confusion matrix ('' for none)", EX_NONE},
    };
    int rc = ex_parse(argc, argv,
                      "Trains a small CNN (two conv + max-pool blocks, dropout, a dense head) on\n"
                      "Fashion-MNIST and reports its test accuracy, per class too.",
                      opts, EX_COUNT(opts));
    if (rc >= 0) return rc;
    if ((rc = check_memory(&o)) != 0) return rc;
    fm_split train = {0}, test = {0};
    rc = fm_load(o.data, "train", &train) || (!o.bench && fm_load(o.data, "t10k", &test));
    if (o.limit && train.n > o.limit) train.n = o.limit;   /* the smoke runs' small sets */
    if (o.limit && test.n > o.limit) test.n = o.limit;
    if (!rc && o.batch > train.n) {
        fprintf(stderr, "cnn: --batch %lld exceeds the %lld training images\n", (long long)o.batch,
                (long long)train.n);
        rc = 2;
    }
    if (!rc) rc = run(&o, &train, &test);
    fm_free(&train);
    fm_free(&test);
    return rc;
}
