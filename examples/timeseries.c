/* examples/timeseries.c - monthly airline passengers 1949-1960: a window of
 * previous months predicts the next one.
 *
 * The series grows about threefold, so the last third (the test months) lies
 * above anything seen in training; a model squashed through tanh/sigmoid
 * cannot extrapolate levels. We therefore model the month-to-month change of
 * log(passengers), which is stationary and strongly seasonal, and add the
 * predicted change back to the last known month:
 *   d_t = log x_t - log x_{t-1}          (standardised with training statistics)
 *   window d_{t-W} .. d_{t-1}  ->  d^_t,   x^_t = x_{t-1} * exp(d^_t)
 * Persistence (x^_t = x_{t-1}) is the same with d^_t = 0, so every model is
 * measured against it on equal terms.
 *
 * Models, for a batch of windows X [N, W] (or [N, W, 1] as a sequence):
 *   perceptron   d^ = X w + b                          one linear unit
 *   SimpleRNN    h_t = tanh(W [x_t, h_{t-1}] + b),  d^ = h_W v + c
 *   LSTM         (h_W, c_W) = LSTM(x_1..x_W),       d^ = h_W v + c
 * Each is trained on the first two thirds of the months with Adam on the
 * mean squared error, full batch; the test RMSE is in passengers (thousands). */
#include <tapegrad.h>

#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DATA_HINT "see ../shared/data/README.md (airline-passengers.csv), or omit --data to use the built-in figures"

enum { MONTHS = 144, MAX_MONTHS = 4096, N_MODELS = 3 };

/* Box & Jenkins (1976) series G: international airline passengers, thousands,
 * January 1949 to December 1960. */
static const double AIRLINE[MONTHS] = {
    112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118,   /* 1949 */
    115, 126, 141, 135, 125, 149, 170, 170, 158, 133, 114, 140,   /* 1950 */
    145, 150, 178, 163, 172, 178, 199, 199, 184, 162, 146, 166,   /* 1951 */
    171, 180, 193, 181, 183, 218, 230, 242, 209, 191, 172, 194,   /* 1952 */
    196, 196, 236, 235, 229, 243, 264, 272, 237, 211, 180, 201,   /* 1953 */
    204, 188, 235, 227, 234, 264, 302, 293, 259, 229, 203, 229,   /* 1954 */
    242, 233, 267, 269, 270, 315, 364, 347, 312, 274, 237, 278,   /* 1955 */
    284, 277, 317, 313, 318, 374, 413, 405, 355, 306, 271, 306,   /* 1956 */
    315, 301, 356, 348, 355, 422, 465, 467, 404, 347, 305, 336,   /* 1957 */
    340, 318, 362, 348, 363, 435, 491, 505, 404, 359, 310, 337,   /* 1958 */
    360, 342, 406, 396, 420, 472, 548, 559, 463, 407, 362, 405,   /* 1959 */
    417, 391, 419, 461, 472, 535, 622, 606, 508, 461, 390, 432,   /* 1960 */
};

typedef struct options {
    const char *data, *plot;
    int64_t window, hidden, epochs, seed, threads;
    double lr;
} options;

typedef struct series {
    double x[MAX_MONTHS];   /* passengers                      */
    double d[MAX_MONTHS];   /* standardised log change, d[0] = 0 */
    double mean, std;       /* of the raw log changes in training */
    int64_t n, n_train;     /* months; months in the training part */
    double year0;           /* decimal year of month 0, for the plot */
} series;

/* Windows as tensors, made once: inputs flat [N, W] and as a sequence
 * [N, W, 1] (same numbers), targets [N, 1]; month[i] is the predicted month. */
typedef struct windows {
    tg_tensor *flat, *seq, *y;
    int64_t n, first;       /* predicted months first .. first+n-1 */
} windows;

typedef struct model {
    const char *name;
    tg_params *params;
    tg_rnn rnn;             /* unused by the perceptron */
    tg_linear head;
    bool recurrent;
    double pred[MAX_MONTHS];   /* test predictions in passengers, NaN outside the test part */
    double rmse;
} model;

/* ---- data ---------------------------------------------------------------------------- */
/* One "YYYY-MM,N" row (quotes allowed); false when it is not one. */
static bool parse_row(char *line, int *year, int *month, double *value) {
    for (char *p = line; *p; p++)
        if (*p == '"') *p = ' ';
    char *comma = strrchr(line, ',');
    if (!comma) return false;
    char *end;
    *value = strtod(comma + 1, &end);
    while (*end == ' ' || *end == '\r') end++;
    if (end == comma + 1 || *end || !(*value > 0)) return false;
    return sscanf(line, " %d-%d", year, month) == 2 && *month >= 1 && *month <= 12;
}

static int load_csv(const char *path, series *s) {
    size_t len;
    char *text = ex_read_file(path, &len, DATA_HINT);
    if (!text) return 1;
    long line_no = 0;
    int rc = 0, year = 0, month = 0;
    s->n = 0;
    for (char *line = strtok(text, "\n"); line && !rc; line = strtok(NULL, "\n")) {
        line_no++;
        double v;
        if (line_no == 1 && strncmp(line, "Month", 5) == 0) continue;   /* header */
        if (strspn(line, " \r") == strlen(line)) continue;
        int y, m;
        if (!parse_row(line, &y, &m, &v))
            rc = ex_bad_data(path, line_no, "expected 'YYYY-MM,passengers' with a positive count", DATA_HINT);
        else if (s->n == MAX_MONTHS)
            rc = ex_bad_data(path, line_no, "more than 4096 months", DATA_HINT);
        else {
            if (s->n == 0) year = y, month = m;
            s->x[s->n++] = v;
        }
    }
    free(text);
    if (!rc && s->n == 0) rc = ex_bad_data(path, 0, "no data rows", DATA_HINT);
    s->year0 = year + (month - 1) / 12.0;
    return rc;
}

/* Log changes, standardised with the mean and std of the training part. */
static void prepare(series *s) {
    s->n_train = s->n * 2 / 3;
    double sum = 0, sq = 0;
    for (int64_t t = 1; t < s->n; t++) s->d[t] = log(s->x[t]) - log(s->x[t - 1]);
    for (int64_t t = 1; t < s->n_train; t++) sum += s->d[t];
    s->mean = sum / (double)(s->n_train - 1);
    for (int64_t t = 1; t < s->n_train; t++) sq += (s->d[t] - s->mean) * (s->d[t] - s->mean);
    s->std = sqrt(sq / (double)(s->n_train - 1));
    if (!(s->std > 0)) s->std = 1;
    s->d[0] = 0;
    for (int64_t t = 1; t < s->n; t++) s->d[t] = (s->d[t] - s->mean) / s->std;
}

/* Windows predicting months first .. last-1 from the W changes before each. */
static int make_windows(windows *w, const series *s, int64_t W, int64_t first, int64_t last) {
    w->first = first;
    w->n = last - first;
    w->flat = tg_tensor_new(TG_F32, 2, (int64_t[]){w->n, W});
    w->seq = tg_tensor_new(TG_F32, 3, (int64_t[]){w->n, W, 1});
    w->y = tg_tensor_new(TG_F32, 2, (int64_t[]){w->n, 1});
    if (!w->flat || !w->seq || !w->y) return -1;
    for (int64_t i = 0; i < w->n; i++) {
        int64_t t = first + i;
        for (int64_t k = 0; k < W; k++) {
            tg_tensor_set(w->flat, i * W + k, s->d[t - W + k]);
            tg_tensor_set(w->seq, i * W + k, s->d[t - W + k]);
        }
        tg_tensor_set(w->y, i, s->d[t]);
    }
    return 0;
}

static void free_windows(windows *w) {
    tg_tensor_free(w->flat);
    tg_tensor_free(w->seq);
    tg_tensor_free(w->y);
}

/* ---- models ----------------------------------------------------------------------------- */
static int model_init(model *m, const char *name, const tg_cell *cell, const options *o,
                      tg_rng *rng) {
    memset(m, 0, sizeof *m);
    m->name = name;
    m->params = tg_params_new();
    if (!m->params) return -1;
    m->recurrent = cell != NULL;
    int64_t in = o->window;
    if (m->recurrent) {
        tg_rnn_opts ro = tg_rnn_opts_default(cell, 1, o->hidden);
        if (tg_rnn_init(&m->rnn, m->params, "rnn", &ro, TG_F32, rng) != TG_OK) return -1;
        in = o->hidden;
    }
    return tg_linear_init(&m->head, m->params, "head", in, 1, TG_F32, rng, NULL) == TG_OK ? 0 : -1;
}

/* Predicted standardised changes [N, 1]. */
static tg_tensor *model_forward(tg_tape *tp, const model *m, const windows *w) {
    tg_tensor *h = m->recurrent ? tg_rnn_forward(tp, &m->rnn, w->seq, NULL, NULL, 0) : w->flat;
    return tg_linear_forward(tp, &m->head, h);
}

/* Full-batch Adam on the MSE; returns the last loss, NaN on error. */
static double model_train(tg_tape *tp, model *m, const windows *train, const options *o,
                          ex_progress *pg, int64_t *step) {
    tg_optim *opt = tg_optim_new(TG_OPTIM_ADAM, m->params, o->lr);
    double loss_v = NAN;
    for (int64_t e = 0; opt && e < o->epochs; e++) {
        tg_params_zero_grad(m->params);
        tg_tensor *loss = tg_mse(tp, model_forward(tp, m, train), train->y);
        if (!loss || tg_backward(tp, loss) != TG_OK || tg_optim_step(opt) != TG_OK) {
            fprintf(stderr, "%s: %s\n", m->name, tg_tape_error(tp)[0] ? tg_tape_error(tp) : tg_last_error());
            loss_v = NAN;
            break;
        }
        loss_v = tg_tensor_item(loss);
        tg_tape_reset(tp);
        if (!ex_loss_ok(pg, NULL, m->name, e + 1, loss_v, o->lr)) break;
        ex_progress_update(pg, ++*step, loss_v, train->n);
    }
    tg_tape_reset(tp);
    tg_optim_free(opt);
    return loss_v;
}

/* Predictions for the test windows, back in passengers; returns the RMSE. */
static double model_test(tg_tape *tp, model *m, const windows *test, const series *s) {
    tg_no_grad_begin(tp);
    tg_tensor *d = model_forward(tp, m, test);
    tg_no_grad_end(tp);
    if (!d) {
        fprintf(stderr, "%s: %s\n", m->name, tg_tape_error(tp));
        return NAN;
    }
    double se = 0;
    for (int64_t t = 0; t < s->n; t++) m->pred[t] = NAN;
    for (int64_t i = 0; i < test->n; i++) {
        int64_t t = test->first + i;
        double change = tg_tensor_get(d, i) * s->std + s->mean;
        m->pred[t] = s->x[t - 1] * exp(change);
        se += (m->pred[t] - s->x[t]) * (m->pred[t] - s->x[t]);
    }
    tg_tape_reset(tp);
    m->rmse = sqrt(se / (double)test->n);
    return m->rmse;
}

/* ---- report ------------------------------------------------------------------------------ */
static double persistence(const series *s, int64_t first, double *pred) {
    double se = 0;
    for (int64_t t = 0; t < s->n; t++) pred[t] = NAN;
    for (int64_t t = first; t < s->n; t++) {
        pred[t] = s->x[t - 1];
        se += (pred[t] - s->x[t]) * (pred[t] - s->x[t]);
    }
    return sqrt(se / (double)(s->n - first));
}

static void plot(const options *o, const series *s, const model *ms, const double *persist) {
    static double year[MAX_MONTHS];
    for (int64_t t = 0; t < s->n; t++) year[t] = s->year0 + (double)t / 12.0;
    const char *names[] = {"actual", "persistence", ms[0].name, ms[1].name, ms[2].name};
    const double *ys[] = {s->x, persist, ms[0].pred, ms[1].pred, ms[2].pred};
    ex_plot_lines(o->plot, "Airline passengers: actual vs predicted (test months)", "year",
                  "passengers (thousands)", year, s->n, 5, names, ys);
}

static int run(const options *o, series *s) {
    tg_rng rng = tg_rng_seeded((uint64_t)o->seed);
    prepare(s);
    windows train = {0}, test = {0};
    model ms[N_MODELS];
    memset(ms, 0, sizeof ms);
    tg_tape *tp = tg_tape_new();
    int rc = 1;
    if (tp && o->threads > 0) tg_tape_set_threads(tp, (int)o->threads);
    if (!tp || make_windows(&train, s, o->window, o->window + 1, s->n_train) ||
        make_windows(&test, s, o->window, s->n_train, s->n) ||
        model_init(&ms[0], "perceptron", NULL, o, &rng) ||
        model_init(&ms[1], "SimpleRNN", &tg_cell_elman, o, &rng) ||
        model_init(&ms[2], "LSTM", &tg_cell_lstm, o, &rng)) {
        fprintf(stderr, "setup failed: %s\n", tg_last_error());
        goto out;
    }
    printf("airline passengers: %lld months, train %lld (%lld windows), test %lld; window %lld, "
           "hidden %lld, %lld epochs, Adam lr %g, seed %lld\n",
           (long long)s->n, (long long)s->n_train, (long long)train.n, (long long)test.n,
           (long long)o->window, (long long)o->hidden, (long long)o->epochs, o->lr, (long long)o->seed);
    static double persist[MAX_MONTHS];
    double base = persistence(s, s->n_train, persist);
    ex_progress pg;
    ex_progress_start(&pg, N_MODELS * o->epochs, "samples");
    int64_t step = 0;
    for (int i = 0; i < N_MODELS; i++) {
        double loss = model_train(tp, &ms[i], &train, o, &pg, &step);
        if (!isfinite(loss) || !isfinite(model_test(tp, &ms[i], &test, s))) goto out;
        ex_log(&pg, "%-11s final train loss %.4f  test RMSE %.2f", ms[i].name, loss, ms[i].rmse);
    }
    ex_progress_done(&pg);
    printf("\ntest RMSE (passengers, thousands), months %lld..%lld:\n", (long long)s->n_train + 1,
           (long long)s->n);
    printf("  %-12s %7.2f\n", "persistence", base);
    for (int i = 0; i < N_MODELS; i++) printf("  %-12s %7.2f\n", ms[i].name, ms[i].rmse);
    printf("LSTM %s persistence (%.2f vs %.2f)\n", ms[2].rmse < base ? "beats" : "does NOT beat",
           ms[2].rmse, base);
    printf("LSTM RMSE / persistence RMSE: %.3f\n", ms[2].rmse / base);
    if (o->plot && *o->plot) plot(o, s, ms, persist);
    rc = 0;
out:
    for (int i = 0; i < N_MODELS; i++) tg_rnn_free(&ms[i].rnn), tg_params_free(ms[i].params);
    free_windows(&train);
    free_windows(&test);
    tg_tape_free(tp);
    return rc;
}

/* Peak memory, measured (peak RSS, hidden 256..2048, window 12 and 48): about
 * 300 bytes per window x month x hidden unit on the tape (the LSTM's full
 * batch), and the SimpleRNN's and LSTM's weights (5 H^2 in all) with their
 * gradients and two Adam moments. */
static bool fits_memory(const options *o, int64_t months, const char *prog) {
    double H = (double)o->hidden, tape = 400.0 * (double)months * (double)o->window * H;
    char sizes[96];
    snprintf(sizes, sizeof sizes, "--hidden %lld --window %lld (%lld months)",
             (long long)o->hidden, (long long)o->window, (long long)months);
    return ex_memory_fits(prog, 32e6 + tape + 16 * 5 * (H + 2) * H, sizes);
}

int main(int argc, char **argv) {
    options o = {.data = NULL, .plot = "timeseries.png", .window = 12, .hidden = 8,
                 .epochs = 400, .seed = 1, .threads = 1, .lr = 0.01};
    ex_opt opts[] = {
        {"data", EX_STR, &o.data,
         "CSV 'Month,Passengers' (default: the built-in 1949-1960 figures)", EX_NONE},
        {"window", EX_INT, &o.window, "previous months in each window", EX_IN(1, MAX_MONTHS)},
        {"hidden", EX_INT, &o.hidden, "hidden units of the SimpleRNN and the LSTM",
         EX_IN(1, EX_MAX_SIZE)},
        {"epochs", EX_INT, &o.epochs, "full-batch training epochs per model",
         EX_IN(1, EX_MAX_COUNT)},
        {"lr", EX_DOUBLE, &o.lr, "Adam learning rate", EX_LR},
        {"seed", EX_INT, &o.seed, "seed for the initial weights", EX_SEED},
        EX_OPT_THREADS(&o.threads),
        {"plot", EX_STR, &o.plot, "PNG of actual vs predicted ('' for none)", EX_NONE},
    };
    int prc = ex_parse(argc, argv,
                       "Predicts monthly airline passengers from a window of previous months with a\n"
                       "perceptron, a SimpleRNN and an LSTM, and compares their test RMSE with persistence.",
                       opts, EX_COUNT(opts));
    if (prc >= 0) return prc;
    static series s;
    if (o.data) {
        if (load_csv(o.data, &s)) return 1;
    } else {
        memcpy(s.x, AIRLINE, sizeof AIRLINE);
        s.n = MONTHS;
        s.year0 = 1949;
    }
    if (s.n / 3 < 1 || s.n * 2 / 3 < o.window + 3) {
        fprintf(stderr, "error: %lld months are too few for a window of %lld (need %lld)\n",
                (long long)s.n, (long long)o.window, (long long)(3 * (o.window + 3) + 3) / 2);
        return 1;
    }
    if (!fits_memory(&o, s.n, argv[0])) return 2;
    return run(&o, &s);
}
