/* examples/demo_xor.c - train a 2-layer MLP on noisy XOR data.
 *
 * Data: points scattered around the four corners (+-1, +-1) with Gaussian
 * noise; label 1 when the two coordinates have opposite signs (XOR), so no
 * straight line separates the classes and the hidden layer has work to do.
 *
 * Model, for a batch X [N, 2]:
 *   h      = tanh(X W1 + b1)          W1 [2, H], b1 [H]
 *   logits = h W2 + b2                W2 [H, 1], b2 [1]
 *   loss   = bce_with_logits(logits, y)   (sigmoid output, stable form)
 * Training: full-batch gradient descent, p -= lr * dp, written inline, with
 * one tape reset every step (no heap allocations once warm). */
#include <tapegrad.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N_TRAIN = 512, N_TEST = 512, HIDDEN = 16, N_PARAMS = 4 };
static const double NOISE = 0.5;   /* std of the Gaussian around each corner */
static const float LR = 0.5f;

typedef struct options { long long steps; unsigned long long seed; } options;

typedef struct dataset {
    tg_tensor *x;   /* [N, 2]                */
    tg_tensor *y;   /* [N, 1], 0 or 1 floats */
} dataset;

static void usage(FILE *f, const char *prog) {
    fprintf(f,
            "usage: %s [--steps N] [--seed S] [--help]\n"
            "  Trains a 2-layer MLP (2 -> %d tanh -> 1, sigmoid output) on noisy XOR\n"
            "  data with plain gradient descent and prints the loss as it falls.\n"
            "  --steps N   training steps (default 2000)\n"
            "  --seed S    seed for data and initial weights (default 1)\n",
            prog, HIDDEN);
}

/* Parses a non-negative integer option value; false on junk or overflow. */
static bool parse_count(const char *s, unsigned long long max, unsigned long long *out) {
    if (!s || !*s || *s == '-') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max) return false;
    *out = v;
    return true;
}

/* 0: run; 1: stop with success (--help); 2: usage error. */
static int parse_args(int argc, char **argv, options *o) {
    o->steps = 2000;
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        unsigned long long v;
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout, argv[0]);
            return 1;
        } else if (!strcmp(argv[i], "--steps") && parse_count(value, 100000000ULL, &v) && v > 0) {
            o->steps = (long long)v;
            i++;
        } else if (!strcmp(argv[i], "--seed") && parse_count(value, UINT64_MAX, &v)) {
            o->seed = v;
            i++;
        } else {
            fprintf(stderr, "%s: bad argument '%s'%s\n", argv[0], argv[i],
                    value && argv[i][0] == '-' && argv[i][1] == '-' ? " (or its value)" : "");
            usage(stderr, argv[0]);
            return 2;
        }
    }
    return 0;
}

static int make_dataset(dataset *d, int64_t n, tg_rng *rng) {
    d->x = tg_tensor_new(TG_F32, 2, (int64_t[]){n, 2});
    d->y = tg_tensor_new(TG_F32, 2, (int64_t[]){n, 1});
    if (!d->x || !d->y) return -1;
    for (int64_t i = 0; i < n; i++) {
        int sx = tg_rng_next(rng) & 1, sy = tg_rng_next(rng) & 1;   /* which corner */
        tg_tensor_set(d->x, 2 * i, (sx ? 1 : -1) + NOISE * tg_rng_normal(rng));
        tg_tensor_set(d->x, 2 * i + 1, (sy ? 1 : -1) + NOISE * tg_rng_normal(rng));
        tg_tensor_set(d->y, i, sx != sy);
    }
    return 0;
}

static void free_dataset(dataset *d) {
    tg_tensor_free(d->x);
    tg_tensor_free(d->y);
}

/* W1, b1, W2, b2; weights N(0, 1/fan_in), biases 0. */
static int make_params(tg_tensor **p, tg_rng *rng) {
    p[0] = tg_tensor_new(TG_F32, 2, (int64_t[]){2, HIDDEN});
    p[1] = tg_tensor_new(TG_F32, 1, (int64_t[]){HIDDEN});
    p[2] = tg_tensor_new(TG_F32, 2, (int64_t[]){HIDDEN, 1});
    p[3] = tg_tensor_new(TG_F32, 1, (int64_t[]){1});
    for (int i = 0; i < N_PARAMS; i++) {
        if (!p[i]) return -1;
        tg_tensor_set_requires_grad(p[i], true);
    }
    for (int i = 0; i < 2 * HIDDEN; i++) tg_tensor_set(p[0], i, tg_rng_normal(rng) / sqrt(2.0));
    for (int i = 0; i < HIDDEN; i++) tg_tensor_set(p[2], i, tg_rng_normal(rng) / sqrt(HIDDEN));
    return 0;
}

/* logits [N, 1] = tanh(X W1 + b1) W2 + b2 */
static tg_tensor *forward(tg_tape *tp, tg_tensor *x, tg_tensor *const *p) {
    tg_tensor *h = tg_tanh(tp, tg_add(tp, tg_matmul(tp, x, p[0]), p[1]));   /* [N, H] */
    return tg_add(tp, tg_matmul(tp, h, p[2]), p[3]);                        /* [N, 1] */
}

/* One gradient-descent step on the whole training set; returns the loss
 * before the update, NaN on error (message on the tape). */
static double train_step(tg_tape *tp, const dataset *d, tg_tensor *const *p) {
    for (int i = 0; i < N_PARAMS; i++) tg_tensor_zero_grad(p[i]);
    tg_tensor *loss = tg_bce_with_logits(tp, forward(tp, d->x, p), d->y);
    if (!loss || tg_backward(tp, loss) != TG_OK) return NAN;
    double value = tg_tensor_item(loss);
    for (int i = 0; i < N_PARAMS; i++) {
        float *w = tg_tensor_data(p[i]);
        const float *dw = tg_tensor_grad(p[i]);
        for (int64_t j = 0; dw && j < tg_tensor_numel(p[i]); j++) w[j] -= LR * dw[j];
    }
    tg_tape_reset(tp);
    return value;
}

/* Fraction of points whose logit has the label's sign; -1 on error. */
static double accuracy(tg_tape *tp, const dataset *d, tg_tensor *const *p) {
    tg_no_grad_begin(tp);
    tg_tensor *logits = forward(tp, d->x, p);
    tg_no_grad_end(tp);
    if (!logits) return -1;
    int64_t n = tg_tensor_numel(logits), right = 0;
    for (int64_t i = 0; i < n; i++)
        right += (tg_tensor_get(logits, i) > 0) == (tg_tensor_get(d->y, i) > 0.5);
    tg_tape_reset(tp);
    return (double)right / (double)n;
}

static int train(const options *o, tg_tape *tp, const dataset *train_set,
                 const dataset *test_set, tg_tensor *const *p) {
    long long every = o->steps >= 10 ? o->steps / 10 : 1;
    for (long long s = 1; s <= o->steps; s++) {
        double loss = train_step(tp, train_set, p);
        if (!isfinite(loss)) {
            fprintf(stderr, "step %lld: %s\n", s,
                    isnan(loss) && tg_tape_status(tp) != TG_OK ? tg_tape_error(tp)
                                                                : "loss is not finite");
            return 1;
        }
        if (s == 1 || s % every == 0 || s == o->steps)
            printf("step %6lld  loss %.4f\n", s, loss);
    }
    double acc_train = accuracy(tp, train_set, p), acc_test = accuracy(tp, test_set, p);
    if (acc_train < 0 || acc_test < 0) {
        fprintf(stderr, "evaluation: %s\n", tg_tape_error(tp));
        return 1;
    }
    printf("final accuracy: train %.1f%%, test %.1f%% (%d points each)\n", 100 * acc_train,
           100 * acc_test, N_TRAIN);
    return 0;
}

int main(int argc, char **argv) {
    options o;
    int parsed = parse_args(argc, argv, &o);
    if (parsed) return parsed == 1 ? 0 : 2;

    tg_rng rng = tg_rng_seeded(o.seed);
    dataset train_set = {0}, test_set = {0};
    tg_tensor *p[N_PARAMS] = {0};
    tg_tape *tp = tg_tape_new();
    int rc = 1;
    if (!tp || make_dataset(&train_set, N_TRAIN, &rng) || make_dataset(&test_set, N_TEST, &rng) ||
        make_params(p, &rng)) {
        fprintf(stderr, "setup failed: %s\n", tg_last_error());
    } else {
        printf("noisy XOR: %d training points, corners (+-1,+-1), noise std %.2f, seed %llu\n"
               "MLP 2 -> %d tanh -> 1 (sigmoid via bce_with_logits), gradient descent lr %.2f, "
               "%lld steps\n",
               N_TRAIN, NOISE, o.seed, HIDDEN, (double)LR, o.steps);
        rc = train(&o, tp, &train_set, &test_set, p);
    }
    for (int i = 0; i < N_PARAMS; i++) tg_tensor_free(p[i]);
    free_dataset(&train_set);
    free_dataset(&test_set);
    tg_tape_free(tp);
    return rc;
}
