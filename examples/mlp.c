/* examples/mlp.c - a perceptron, then a 2-layer MLP with ReLU and dropout, on
 * Fashion-MNIST (28x28 grey images of clothing, 10 classes).
 *
 * Data: Debian's dataset-fashion-mnist package, gzipped IDX files in
 * /usr/share/datasets/fashion-mnist, read with zlib; pixels scaled to [0, 1].
 *
 * Models, for a batch X [B, 784] of flattened images:
 *   perceptron   logits = X W^T + b                              W [10, 784]
 *   MLP          h1 = dropout(relu(X W1^T + b1))                 W1 [H, 784]
 *                h2 = dropout(relu(h1 W2^T + b2))                W2 [H, H]
 *                logits = h2 W3^T + b3                           W3 [10, H]
 *   loss = cross_entropy(logits, labels) (softmax over the 10 classes)
 * Both train with Adam on shuffled minibatches; test accuracy is measured on
 * the 10000 test images after every epoch and plotted. The batch tensors are
 * made once and refilled, and the tape is reset every step, so a warm
 * training step makes no heap allocation (the program counts them).
 *
 * Data-parallel (--dist, or under mpirun -np N; common.h): every rank draws
 * the same shuffle, takes its B/N rows of each batch and its own dropout
 * masks, and the ranks average their gradients before each Adam step. */
#include <tapegrad.h>

#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define DATA_HINT "install Debian's package: apt-get install dataset-fashion-mnist (or give --data DIR " \
                  "holding the four *-ubyte.gz files)"

enum { CLASSES = 10, EVAL_CHUNK = 1000, MAX_EPOCHS = 1000 };

static const char *const CLASS_NAMES[CLASSES] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                                 "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                                                 "Ankle boot"};

typedef struct options {
    const char *data, *plot;
    int64_t epochs, steps, batch, hidden, seed, threads;
    double lr, dropout;
    ex_dist_opts dist;
} options;

typedef struct dataset {
    float *x;          /* [n, pixels], in [0, 1]; 64 bytes of slack for BLIS */
    int32_t *y;        /* [n], 0..9                                          */
    int64_t n, pixels;
} dataset;

/* ---- IDX files (big-endian header: magic 0x0000080<ndim>, then ndim sizes) ---- */
static bool read_exact(gzFile f, void *dst, size_t n) {
    unsigned char *p = dst;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(f, p, chunk);
        if (got <= 0) return false;
        p += got;
        n -= (size_t)got;
    }
    return true;
}

/* Opens path and reads its header; dims[] gets the sizes. NULL after a message. */
static gzFile idx_open(const char *path, int ndim, int64_t *dims) {
    int fd = tg_file_open(path, "data file");   /* a FIFO or device is refused, never read */
    gzFile f = fd >= 0 ? gzdopen(fd, "rb") : NULL;
    if (!f && fd >= 0) {
        close(fd);
        fprintf(stderr, "error: data file: %s: cannot open: out of memory\n", path);
    } else if (!f) {
        fprintf(stderr, "error: %s\n  %s\n", tg_last_error(), DATA_HINT);
    }
    if (!f) return NULL;
    unsigned char head[4 + 4 * 3];
    size_t len = 4 + 4 * (size_t)ndim;
    if (!read_exact(f, head, len) || head[0] || head[1] || head[2] != 0x08 || head[3] != ndim) {
        ex_bad_data(path, 0, ndim == 3 ? "not a gzipped IDX image file (magic 0x00000803)"
                                       : "not a gzipped IDX label file (magic 0x00000801)", DATA_HINT);
        gzclose(f);
        return NULL;
    }
    for (int i = 0; i < ndim; i++) {
        const unsigned char *b = head + 4 + 4 * i;
        dims[i] = (int64_t)b[0] << 24 | (int64_t)b[1] << 16 | (int64_t)b[2] << 8 | b[3];
    }
    return f;
}

/* Reads images and labels into d; 0, or 1 after a message. */
static int load_split(const char *dir, const char *prefix, dataset *d) {
    char ipath[1024], lpath[1024];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    int64_t idims[3], ldims[1];
    gzFile fi = idx_open(ipath, 3, idims), fl = fi ? idx_open(lpath, 1, ldims) : NULL;
    int rc = 1;
    unsigned char *raw = NULL;
    if (!fi || !fl) goto out;
    if (idims[0] < 1 || idims[1] != 28 || idims[2] != 28 || ldims[0] != idims[0]) {
        ex_bad_data(ipath, 0, "expected N images of 28x28 and as many labels", DATA_HINT);
        goto out;
    }
    d->n = idims[0];
    d->pixels = 28 * 28;
    size_t npx = (size_t)d->n * (size_t)d->pixels;
    raw = malloc(npx);
    d->x = malloc(npx * sizeof *d->x + 64);
    d->y = malloc((size_t)d->n * sizeof *d->y);
    if (!raw || !d->x || !d->y) {
        fprintf(stderr, "error: out of memory reading '%s'\n", ipath);
        goto out;
    }
    if (!read_exact(fi, raw, npx)) {
        ex_bad_data(ipath, 0, "file ends before all images were read", DATA_HINT);
        goto out;
    }
    for (size_t i = 0; i < npx; i++) d->x[i] = (float)raw[i] / 255.0f;
    if (!read_exact(fl, raw, (size_t)d->n)) {
        ex_bad_data(lpath, 0, "file ends before all labels were read", DATA_HINT);
        goto out;
    }
    for (int64_t i = 0; i < d->n; i++) {
        if (raw[i] >= CLASSES) {
            ex_bad_data(lpath, 0, "label outside 0..9", DATA_HINT);
            goto out;
        }
        d->y[i] = raw[i];
    }
    rc = 0;
out:
    free(raw);
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    return rc;
}

static void free_dataset(dataset *d) {
    free(d->x);
    free(d->y);
}

/* ---- models ---------------------------------------------------------------------------- */
typedef struct model {
    const char *name;
    tg_params *params;
    tg_linear fc[3];
    int layers;            /* 1: perceptron, 3: MLP */
    double dropout;
    double acc[MAX_EPOCHS];   /* test accuracy after each epoch */
} model;

static int model_init(model *m, const char *name, const options *o, bool mlp, tg_rng *rng) {
    memset(m, 0, sizeof *m);
    m->name = name;
    m->params = tg_params_new();
    if (!m->params) return -1;
    if (!mlp) {
        m->layers = 1;
        return tg_linear_init(&m->fc[0], m->params, "fc", 784, CLASSES, TG_F32, rng, NULL);
    }
    m->layers = 3;
    m->dropout = o->dropout;
    tg_linear_opts relu = {.activation = TG_ACT_RELU};
    int64_t H = o->hidden;
    return tg_linear_init(&m->fc[0], m->params, "fc1", 784, H, TG_F32, rng, &relu) ||
           tg_linear_init(&m->fc[1], m->params, "fc2", H, H, TG_F32, rng, &relu) ||
           tg_linear_init(&m->fc[2], m->params, "fc3", H, CLASSES, TG_F32, rng, NULL);
}

/* x [B, 784] -> logits [B, 10]; dropout after each hidden layer when training. */
static tg_tensor *model_forward(tg_tape *tp, const model *m, tg_tensor *x, tg_rng *drop_rng) {
    tg_tensor *h = x;
    for (int i = 0; i + 1 < m->layers; i++)
        h = tg_dropout(tp, tg_linear_forward(tp, &m->fc[i], h), m->dropout, drop_rng);
    return tg_linear_forward(tp, &m->fc[m->layers - 1], h);
}

/* ---- training and evaluation ---------------------------------------------------------- */
typedef struct trainer {
    tg_tape *tp;
    ex_dist *dist;               /* the ranks (alone: one)                            */
    int64_t shard;               /* this rank's first row of each batch              */
    tg_tensor *xb, *yb;          /* its rows, made once and refilled: [B/N, 784], [B/N] */
    tg_tensor **eval_x;          /* views of the test images, EVAL_CHUNK rows each   */
    int64_t n_eval_chunks;
    int64_t *order;              /* shuffled training indices                          */
    tg_rng rng;                  /* shuffling and dropout                              */
    ex_progress pg;
    int64_t step, total_steps;
    uint64_t warm_allocs;        /* heap allocations in warm training steps            */
} trainer;

static void shuffle(int64_t *a, int64_t n, tg_rng *rng) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(tg_rng_next(rng) % (uint64_t)(i + 1));
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static void fill_batch(trainer *t, const dataset *d, int64_t first) {
    int64_t B = tg_tensor_dim(t->xb, 0);
    float *x = tg_tensor_data(t->xb);
    int32_t *y = tg_tensor_data(t->yb);
    for (int64_t b = 0; b < B; b++) {
        int64_t i = t->order[first + b];
        memcpy(x + b * d->pixels, d->x + i * d->pixels, (size_t)d->pixels * sizeof *x);
        y[b] = d->y[i];
    }
}

/* Test accuracy, in chunks over views of the test images; -1 on error.
 * hits/seen (optional) count right answers and images per class. */
static double evaluate(trainer *t, const model *m, const dataset *test, int64_t *hits,
                       int64_t *seen) {
    tg_tape_set_training(t->tp, false);
    tg_no_grad_begin(t->tp);
    int64_t right = 0;
    for (int64_t c = 0; c < t->n_eval_chunks; c++) {
        tg_tensor *logits = model_forward(t->tp, m, t->eval_x[c], NULL);
        if (!logits) {
            right = -1;
            break;
        }
        int64_t rows = tg_tensor_dim(logits, 0);
        const float *l = tg_tensor_cdata(logits);
        for (int64_t r = 0; r < rows; r++) {
            int best = 0;
            for (int k = 1; k < CLASSES; k++)
                if (l[r * CLASSES + k] > l[r * CLASSES + best]) best = k;
            int32_t y = test->y[c * EVAL_CHUNK + r];
            right += best == y;
            if (hits) hits[y] += best == y, seen[y]++;
        }
        tg_tape_reset(t->tp);
    }
    tg_no_grad_end(t->tp);
    tg_tape_set_training(t->tp, true);
    return right < 0 ? -1 : (double)right / (double)test->n;
}

/* One Adam step on this rank's rows of the batch, with the gradients averaged
 * over the ranks; returns the loss (mean over the ranks), NaN on error. */
static double train_step(trainer *t, const model *m, tg_optim *opt) {
    tg_params_zero_grad(m->params);
    tg_rng own, *drop = ex_dist_step_rng(t->dist, &t->rng, &own);
    tg_tensor *loss = tg_cross_entropy(t->tp, model_forward(t->tp, m, t->xb, drop), t->yb);
    tg_status st = loss ? tg_backward(t->tp, loss) : tg_tape_status(t->tp);
    if (ex_dist_sync(t->dist, t->tp) != TG_OK || st != TG_OK || tg_optim_step(opt) != TG_OK)
        return NAN;   /* the error stays on the tape, on every rank */
    double v = tg_tensor_item(loss);
    ex_dist_mean(t->dist, &v, 1);
    tg_tape_reset(t->tp);
    return v;
}

static int train_model(trainer *t, model *m, const options *o, const dataset *train,
                       const dataset *test) {
    tg_optim *opt = tg_optim_new(TG_OPTIM_ADAM, m->params, o->lr);
    if (!opt || ex_dist_attach(t->dist, m->params, t->tp)) {
        tg_optim_free(opt);
        return -1;
    }
    int64_t B = o->batch, per_epoch = train->n / B, done = 0;
    for (int64_t e = 0; e < o->epochs; e++) {
        shuffle(t->order, train->n, &t->rng);
        double sum = 0;
        int64_t n = 0;
        for (int64_t s = 0; s < per_epoch && (o->steps <= 0 || done < o->steps); s++, n++, done++) {
            fill_batch(t, train, s * B + t->shard);
            uint64_t before = tg_heap_allocs();
            double loss = train_step(t, m, opt);
            if (done > 0) t->warm_allocs += tg_heap_allocs() - before;
            if (!ex_loss_ok(&t->pg, t->tp, m->name, done + 1, loss, o->lr)) {
                ex_dist_detach(t->dist);
                tg_optim_free(opt);
                return -1;
            }
            sum += loss;
            ex_progress_update(&t->pg, ++t->step, loss, B);
        }
        m->acc[e] = evaluate(t, m, test, NULL, NULL);
        if (m->acc[e] < 0) {
            fprintf(stderr, "%s: evaluation: %s\n", m->name, tg_tape_error(t->tp));
            ex_dist_detach(t->dist);
            tg_optim_free(opt);
            return -1;
        }
        ex_log(&t->pg, "%s epoch %lld/%lld  train loss %.4f  test accuracy %.4f", m->name,
               (long long)e + 1, (long long)o->epochs, n ? sum / (double)n : NAN, m->acc[e]);
    }
    if (m->layers > 1) ex_dist_report(t->dist);
    ex_dist_detach(t->dist);
    tg_optim_free(opt);
    return 0;
}

/* rows: this rank's share of a batch, from row shard on. */
static int trainer_init(trainer *t, const options *o, const dataset *train, const dataset *test,
                        ex_dist *dist, int64_t shard, int64_t rows) {
    memset(t, 0, sizeof *t);
    t->dist = dist, t->shard = shard;
    t->tp = tg_tape_new();
    if (t->tp && o->threads > 0) tg_tape_set_threads(t->tp, (int)o->threads);
    t->rng = tg_rng_seeded((uint64_t)o->seed + 1);
    t->xb = tg_tensor_new(TG_F32, 2, (int64_t[]){rows, train->pixels});
    t->yb = tg_tensor_new(TG_I32, 1, (int64_t[]){rows});
    t->order = malloc((size_t)train->n * sizeof *t->order);
    t->n_eval_chunks = (test->n + EVAL_CHUNK - 1) / EVAL_CHUNK;
    t->eval_x = calloc((size_t)t->n_eval_chunks, sizeof *t->eval_x);
    if (!t->tp || !t->xb || !t->yb || !t->order || !t->eval_x) return -1;
    for (int64_t i = 0; i < train->n; i++) t->order[i] = i;
    for (int64_t c = 0; c < t->n_eval_chunks; c++) {
        int64_t rows = test->n - c * EVAL_CHUNK < EVAL_CHUNK ? test->n - c * EVAL_CHUNK : EVAL_CHUNK;
        t->eval_x[c] = tg_tensor_wrap(TG_F32, 2, (int64_t[]){rows, test->pixels},
                                      test->x + c * EVAL_CHUNK * test->pixels);
        if (!t->eval_x[c]) return -1;
    }
    return 0;
}

static void trainer_free(trainer *t) {
    for (int64_t c = 0; t->eval_x && c < t->n_eval_chunks; c++) tg_tensor_free(t->eval_x[c]);
    free(t->eval_x);
    free(t->order);
    tg_tensor_free(t->xb);
    tg_tensor_free(t->yb);
    tg_tape_free(t->tp);
}

/* ---- report ------------------------------------------------------------------------------ */
static void plot(const options *o, const model *ms) {
    static double x[MAX_EPOCHS];
    for (int64_t e = 0; e < o->epochs; e++) x[e] = (double)(e + 1);
    const char *names[] = {ms[0].name, ms[1].name};
    const double *ys[] = {ms[0].acc, ms[1].acc};
    ex_plot_lines(o->plot, "Fashion-MNIST test accuracy", "epoch", "accuracy", x, o->epochs, 2,
                  names, ys);
}

static void print_classes(trainer *t, const model *m, const dataset *test) {
    int64_t hits[CLASSES] = {0}, seen[CLASSES] = {0};
    if (evaluate(t, m, test, hits, seen) < 0) return;
    printf("MLP test accuracy per class:\n");
    for (int k = 0; k < CLASSES; k++)
        printf("  %-12s %.3f\n", CLASS_NAMES[k], seen[k] ? (double)hits[k] / (double)seen[k] : 0.0);
}

static int run(const options *o, const dataset *train, const dataset *test, ex_dist *dist) {
    tg_rng init_rng = tg_rng_seeded((uint64_t)o->seed);
    model ms[2];
    memset(ms, 0, sizeof ms);
    trainer t;
    int64_t shard, rows;
    if (ex_dist_shard(dist, "mlp", o->batch, &shard, &rows)) return 2;
    int rc = 1;
    if (trainer_init(&t, o, train, test, dist, shard, rows) ||
        model_init(&ms[0], "perceptron", o, false, &init_rng) ||
        model_init(&ms[1], "MLP", o, true, &init_rng)) {
        fprintf(stderr, "setup failed: %s\n", tg_last_error());
        goto out;
    }
    /* a --steps limit ends training early: no epochs without steps */
    options capped = *o;
    int64_t per_epoch = train->n / o->batch;
    if (o->steps > 0 && (o->steps + per_epoch - 1) / per_epoch < o->epochs)
        capped.epochs = (o->steps + per_epoch - 1) / per_epoch;
    o = &capped;
    int64_t per_model = o->epochs * per_epoch;
    if (o->steps > 0 && o->steps < per_model) per_model = o->steps;
    printf("Fashion-MNIST: %lld training and %lld test images; perceptron 784 -> 10, MLP 784 -> %lld "
           "-> %lld -> 10 (ReLU, dropout %g); Adam lr %g, batch %lld (%d rank(s) x %lld), %lld "
           "epochs, seed %lld\n", (long long)train->n, (long long)test->n, (long long)o->hidden,
           (long long)o->hidden, o->dropout, o->lr, (long long)o->batch, dist->size,
           (long long)rows, (long long)o->epochs, (long long)o->seed);
    ex_progress_start(&t.pg, 2 * per_model, "img");
    double start = ex_now();
    for (int i = 0; i < 2; i++)
        if (train_model(&t, &ms[i], o, train, test)) goto out;
    ex_progress_done(&t.pg);
    printf("\ntraining and evaluation took %.1f s; %lld test images\n", ex_now() - start,
           (long long)test->n);
    printf("test accuracy (perceptron): %.4f\n", ms[0].acc[o->epochs - 1]);
    printf("test accuracy (MLP): %.4f\n", ms[1].acc[o->epochs - 1]);
    print_classes(&t, &ms[1], test);
    printf("heap allocations in warm training steps: %llu\n", (unsigned long long)t.warm_allocs);
    if (o->plot && *o->plot) plot(o, ms);
    rc = 0;
out:
    for (int i = 0; i < 2; i++) tg_params_free(ms[i].params);
    trainer_free(&t);
    return rc;
}

/* Peak memory, measured (peak RSS, hidden 256..2048, batch 128..8192): about
 * 230 MB of images, the MLP's weights with gradients and two Adam moments,
 * and on the tape about 67 bytes per batch x hidden (evaluation runs in
 * chunks of EVAL_CHUNK images) plus the batch's input images. */
static bool fits_memory(const options *o, const char *prog) {
    double H = (double)o->hidden, B = (double)o->batch;
    double bytes = 250e6 + 16 * (794 + H) * H + 80 * fmax(B, EVAL_CHUNK) * H + 20 * B * 784;
    char sizes[64];
    snprintf(sizes, sizeof sizes, "--batch %lld --hidden %lld", (long long)o->batch,
             (long long)o->hidden);
    return ex_memory_fits(prog, bytes, sizes);
}

int main(int argc, char **argv) {
    options o = {.data = DEFAULT_DIR, .plot = "mlp.png", .epochs = 15, .steps = 0, .batch = 128,
                 .hidden = 256, .seed = 1, .threads = 1, .lr = 1e-3, .dropout = 0.2};
    ex_opt opts[] = {
        {"data", EX_STR, &o.data, "folder with the Fashion-MNIST *-ubyte.gz files", EX_NONE},
        {"epochs", EX_INT, &o.epochs, "epochs per model", EX_IN(1, MAX_EPOCHS)},
        {"steps", EX_INT, &o.steps, "stop each model after this many steps (0: no limit)",
         EX_IN(0, EX_MAX_COUNT)},
        {"batch", EX_INT, &o.batch, "minibatch size", EX_IN(1, EX_MAX_SIZE)},
        {"hidden", EX_INT, &o.hidden, "units in each of the MLP's two hidden layers",
         EX_IN(1, EX_MAX_SIZE)},
        {"dropout", EX_DOUBLE, &o.dropout, "dropout rate after each hidden layer", EX_IN(0, 0.99)},
        {"lr", EX_DOUBLE, &o.lr, "Adam learning rate", EX_LR},
        {"seed", EX_INT, &o.seed, "seed for weights, shuffling and dropout", EX_SEED},
        EX_OPT_THREADS(&o.threads),
        {"plot", EX_STR, &o.plot, "PNG of test accuracy per epoch ('' for none)", EX_NONE},
        EX_OPTS_DIST(&o.dist),
    };
    int prc = ex_parse(argc, argv,
                       "Trains a perceptron, then a 2-layer MLP with ReLU and dropout, on Fashion-MNIST\n"
                       "and reports their test accuracy.",
                       opts, EX_COUNT(opts));
    if (prc >= 0) return prc;
    if (!fits_memory(&o, argv[0])) return 2;
    ex_dist dist;
    if ((prc = ex_dist_start(&dist, &o.dist, argv[0], &argc, &argv)) != 0) return prc;
    if (!ex_dist_root(&dist)) o.plot = "";   /* rank 0 draws */
    dataset train = {0}, test = {0};
    int rc = load_split(o.data, "train", &train) || load_split(o.data, "t10k", &test);
    if (!rc && o.batch > train.n) {
        fprintf(stderr, "%s: --batch %lld exceeds the %lld training images\n", argv[0],
                (long long)o.batch, (long long)train.n);
        rc = 2;
    }
    if (!rc) rc = run(&o, &train, &test, &dist);
    free_dataset(&train);
    free_dataset(&test);
    return ex_dist_end(&dist, rc);
}
