/* examples/autoencoder.c - autoencoders on Fashion-MNIST against PCA.
 *
 * The lecture's claim: an autoencoder with linear activations and k hidden
 * units learns what PCA with k components finds. Here PCA is computed exactly
 * (the covariance of the training images, accumulated in float64 through the
 * engine's GEMM, and LAPACK's symmetric eigensolver dsyevd), then:
 *   linear      z = x W1^T + b1 [B, k],  x^ = z W2^T + b2 [B, 784]
 *   non-linear  h = relu(x W1^T + b1) [B, W],  z = h W2^T + b2 [B, k],
 *               g = relu(z W3^T + b3) [B, W],  x^ = g W4^T + b4 [B, 784]
 * trained with Adam on mean((x^ - x)^2), the learning rate cosine-decayed to
 * lr/100. Every image is centred by the training mean first, for PCA and the
 * autoencoders alike (the biases could learn the mean; centring makes the
 * linear problem better conditioned, so Adam converges in a few epochs).
 *
 * Reported on the 10000 test images: the mean squared error per pixel of each
 * model and its ratio to PCA's, and the principal angles between the linear
 * decoder's column space (span of W2's columns, made orthonormal by QR) and
 * the top-k PCA subspace: the singular values of Q^T U_k are their cosines.
 * An angle is only determined when the k-th eigenvalue stands clear of the
 * (k+1)-th; the program prints that gap (the default k = 18 has 14.5%, while
 * k = 32 has 0.5%, and there one angle may be anything). A PNG shows test
 * images against their reconstructions by PCA and both autoencoders. */
#include <tapegrad.h>

#include "common.h"
#include "fashion_mnist.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { D = FM_PIXELS, CHUNK = 1000, MAX_EPOCHS = 1000 };

typedef struct options {
    const char *data, *models, *plot;
    int64_t k, width, epochs, steps, batch, seed, threads, limit;
    double lr, lr_nonlinear;
} options;

/* ---- PCA -------------------------------------------------------------------------------- */
typedef struct pca {
    double *mean;     /* [784], of the training images                               */
    double *U;        /* [784, k] row-major: the top-k eigenvectors as columns        */
    double *eig;      /* [784] eigenvalues of the covariance, largest first          */
    int64_t k;
} pca;

/* cov [784, 784] = sum over the rows of x (centred, float32) of x^T x, in float64 chunks. */
static int covariance(tg_tape *tp, const fm_split *d, double *cov) {
    double *chunk = malloc((size_t)CHUNK * D * sizeof *chunk + 64);
    if (!chunk) return -1;
    memset(cov, 0, (size_t)D * D * sizeof *cov);
    for (int64_t first = 0; first < d->n; first += CHUNK) {
        int64_t rows = d->n - first < CHUNK ? d->n - first : CHUNK;
        for (int64_t i = 0; i < rows * D; i++) chunk[i] = d->x[first * D + i];
        tg_gemm(tp, TG_F64, true, false, D, D, rows, 1.0, chunk, D, chunk, D, 1.0, cov, D);
    }
    free(chunk);
    return 0;
}

/* Eigen-decomposition of the training covariance; 0, or -1 after a message. */
static int pca_fit(tg_tape *tp, const fm_split *train, int64_t k, pca *p) {
    double *cov = malloc((size_t)D * D * sizeof *cov + 64), *w = malloc(D * sizeof *w);
    p->U = malloc((size_t)D * k * sizeof *p->U);
    p->eig = malloc(D * sizeof *p->eig);
    p->k = k;
    int rc = !cov || !w || !p->U || !p->eig || covariance(tp, train, cov) ? -1 : 0;
    for (int64_t i = 0; !rc && i < D * D; i++) cov[i] /= (double)train->n;
    /* dsyevd: eigenvalues ascending, eigenvectors in the columns of cov */
    lapack_int info = rc ? 0 : LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', D, cov, D, w);
    if (rc || info != 0) {
        fprintf(stderr, "error: PCA failed (%s, LAPACK info %d)\n", rc ? "out of memory" : "dsyevd",
                (int)info);
        rc = -1;
    }
    for (int64_t j = 0; !rc && j < D; j++) p->eig[j] = w[D - 1 - j];
    for (int64_t i = 0; !rc && i < D; i++)
        for (int64_t j = 0; j < k; j++) p->U[i * k + j] = cov[i * D + (D - 1 - j)];
    free(cov);
    free(w);
    return rc;
}

static void pca_free(pca *p) {
    free(p->mean);
    free(p->U);
    free(p->eig);
}

/* out [rows, 784] = x U U^T for rows of x (centred), through float64. */
static void pca_reconstruct(tg_tape *tp, const pca *p, const float *x, int64_t rows, double *xd,
                            double *z, float *out) {
    for (int64_t i = 0; i < rows * D; i++) xd[i] = x[i];
    tg_gemm(tp, TG_F64, false, false, rows, p->k, D, 1.0, xd, D, p->U, p->k, 0.0, z, p->k);
    tg_gemm(tp, TG_F64, false, true, rows, D, p->k, 1.0, z, p->k, p->U, p->k, 0.0, xd, D);
    for (int64_t i = 0; i < rows * D; i++) out[i] = (float)xd[i];
}

/* Mean squared error per pixel of PCA's reconstructions of d; -1 when out of memory. */
static double pca_error(tg_tape *tp, const pca *p, const fm_split *d) {
    double *xd = malloc((size_t)CHUNK * D * sizeof *xd + 64);
    double *z = malloc((size_t)CHUNK * p->k * sizeof *z + 64);
    float *out = malloc((size_t)CHUNK * D * sizeof *out);
    double sum = 0;
    for (int64_t first = 0; xd && z && out && first < d->n; first += CHUNK) {
        int64_t rows = d->n - first < CHUNK ? d->n - first : CHUNK;
        pca_reconstruct(tp, p, d->x + first * D, rows, xd, z, out);
        for (int64_t i = 0; i < rows * D; i++) {
            double e = (double)out[i] - d->x[first * D + i];
            sum += e * e;
        }
    }
    double mse = xd && z && out ? sum / ((double)d->n * D) : -1;
    free(xd);
    free(z);
    free(out);
    return mse;
}

/* ---- autoencoders --------------------------------------------------------------------- */
typedef struct autoencoder {
    const char *name;
    tg_params *params;
    tg_linear layer[4];
    int n_layers;            /* 2: linear, 4: non-linear (shapes in the file comment) */
    double lr, test_error;
} autoencoder;

static int ae_init(autoencoder *m, bool linear, const options *o, tg_rng *rng) {
    memset(m, 0, sizeof *m);
    m->name = linear ? "linear autoencoder" : "non-linear autoencoder";
    m->lr = linear ? o->lr : o->lr_nonlinear;
    if (!(m->params = tg_params_new())) return -1;
    tg_linear_opts relu = {.activation = TG_ACT_RELU};
    if (linear) {
        m->n_layers = 2;
        return tg_linear_init(&m->layer[0], m->params, "encoder", D, o->k, TG_F32, rng, NULL) ||
               tg_linear_init(&m->layer[1], m->params, "decoder", o->k, D, TG_F32, rng, NULL);
    }
    m->n_layers = 4;
    return tg_linear_init(&m->layer[0], m->params, "encoder.0", D, o->width, TG_F32, rng, &relu) ||
           tg_linear_init(&m->layer[1], m->params, "encoder.1", o->width, o->k, TG_F32, rng, NULL) ||
           tg_linear_init(&m->layer[2], m->params, "decoder.0", o->k, o->width, TG_F32, rng, &relu) ||
           tg_linear_init(&m->layer[3], m->params, "decoder.1", o->width, D, TG_F32, rng, NULL);
}

/* x [B, 784] -> x^ [B, 784] */
static tg_tensor *ae_forward(tg_tape *tp, const autoencoder *m, tg_tensor *x) {
    for (int i = 0; i < m->n_layers; i++) x = tg_linear_forward(tp, &m->layer[i], x);
    return x;
}

/* out [rows, 784] = the reconstructions of rows of x; -1 after the tape's error. */
static int ae_reconstruct(tg_tape *tp, const autoencoder *m, float *x, int64_t rows, float *out) {
    tg_no_grad_begin(tp);
    tg_tensor *xt = tg_tensor_wrap(TG_F32, 2, (int64_t[]){rows, D}, x);
    tg_tensor *y = xt ? ae_forward(tp, m, xt) : NULL;
    if (y) memcpy(out, tg_tensor_cdata(y), (size_t)rows * D * sizeof *out);
    else fprintf(stderr, "error: %s: %s\n", m->name, tg_tape_error(tp));
    tg_tensor_free(xt);
    tg_tape_reset(tp);
    tg_no_grad_end(tp);
    return y ? 0 : -1;
}

static double ae_error(tg_tape *tp, const autoencoder *m, const fm_split *d) {
    float *out = malloc((size_t)CHUNK * D * sizeof *out);
    double sum = 0;
    int rc = out ? 0 : -1;
    for (int64_t first = 0; !rc && first < d->n; first += CHUNK) {
        int64_t rows = d->n - first < CHUNK ? d->n - first : CHUNK;
        rc = ae_reconstruct(tp, m, d->x + first * D, rows, out);
        for (int64_t i = 0; !rc && i < rows * D; i++) {
            double e = (double)out[i] - d->x[first * D + i];
            sum += e * e;
        }
    }
    free(out);
    return rc ? -1 : sum / ((double)d->n * D);
}

static void shuffle(int64_t *a, int64_t n, tg_rng *rng) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(tg_rng_next(rng) % (uint64_t)(i + 1)), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Adam on mean((x^ - x)^2) over shuffled batches; logs the test error per epoch. */
static int ae_train(tg_tape *tp, autoencoder *m, const options *o, const fm_split *train,
                    const fm_split *test, tg_rng *rng) {
    int64_t per_epoch = train->n / o->batch, total = o->epochs * per_epoch, done = 0;
    if (o->steps > 0 && o->steps < total) total = o->steps;
    int64_t *order = malloc((size_t)train->n * sizeof *order);
    tg_tensor *xb = tg_tensor_new(TG_F32, 2, (int64_t[]){o->batch, D});
    tg_optim *opt = tg_optim_new(TG_OPTIM_ADAM, m->params, m->lr);
    tg_sched *sched = opt ? tg_sched_new_cosine(opt, 0, total, m->lr / 100) : NULL;
    int rc = order && xb && sched ? 0 : -1;
    for (int64_t i = 0; !rc && i < train->n; i++) order[i] = i;
    ex_progress pg;
    ex_progress_start(&pg, total, "img");
    for (int64_t e = 0; !rc && done < total; e++) {
        shuffle(order, train->n, rng);
        for (int64_t s = 0; !rc && s < per_epoch && done < total; s++) {
            float *x = tg_tensor_data(xb);
            for (int64_t b = 0; b < o->batch; b++)
                memcpy(x + b * D, train->x + order[s * o->batch + b] * D, D * sizeof *x);
            tg_params_zero_grad(m->params);
            double loss = ex_update(tp, tg_mse(tp, ae_forward(tp, m, xb), xb), m->params, opt, sched,
                                    INFINITY);
            if (!ex_loss_ok(&pg, tp, m->name, done + 1, loss, m->lr)) rc = -1;
            ex_progress_update(&pg, ++done, loss, o->batch);
        }
        double err = rc ? -1 : ae_error(tp, m, test);
        if (err < 0) rc = -1;
        else ex_log(&pg, "%s epoch %lld  test error %.6f", m->name, (long long)e + 1, err);
    }
    ex_progress_done(&pg);
    tg_sched_free(sched);
    tg_optim_free(opt);
    tg_tensor_free(xb);
    free(order);
    return rc;
}

/* ---- principal angles ------------------------------------------------------------------- */
/* Angles in degrees (ascending) between span(columns of dec [784, k]) and span(U [784, k]). */
static int principal_angles(const tg_tensor *dec, const pca *p, double *deg) {
    int64_t k = p->k;
    double *q = malloc((size_t)D * k * sizeof *q), *tau = malloc(k * sizeof *tau);
    double *m = calloc((size_t)(k * k), sizeof *m), *superb = malloc(k * sizeof *superb);
    int rc = q && tau && m && superb ? 0 : -1;
    for (int64_t i = 0; !rc && i < D * k; i++) q[i] = tg_tensor_get(dec, i);
    if (!rc && (LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, D, k, q, k, tau) != 0 ||
                LAPACKE_dorgqr(LAPACK_ROW_MAJOR, D, k, k, q, k, tau) != 0))
        rc = -1;
    for (int64_t a = 0; !rc && a < k; a++)   /* m = Q^T U */
        for (int64_t b = 0; b < k; b++)
            for (int64_t i = 0; i < D; i++) m[a * k + b] += q[i * k + a] * p->U[i * k + b];
    if (!rc && LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', k, k, m, k, deg, NULL, 1, NULL, 1,
                              superb) != 0)
        rc = -1;
    for (int64_t i = 0; !rc && i < k; i++)   /* cosines, descending -> angles, ascending */
        deg[i] = acos(deg[i] < 1 ? deg[i] : 1) * 180 / acos(-1.0);
    free(q);
    free(tau);
    free(m);
    free(superb);
    if (rc) fprintf(stderr, "error: principal angles: out of memory or LAPACK failed\n");
    return rc;
}

static void report_angles(const autoencoder *lin, const pca *p) {
    double *deg = malloc((size_t)p->k * sizeof *deg);
    if (!deg || principal_angles(lin->layer[1].weight, p, deg)) {
        free(deg);
        return;
    }
    printf("principal angles (degrees) between the linear decoder's subspace and the top-%lld PCA "
           "subspace:\n ", (long long)p->k);
    for (int64_t i = 0; i < p->k; i++) printf(" %.2f", deg[i]);
    printf("\nlargest principal angle (degrees): %.2f\n", deg[p->k - 1]);
    free(deg);
}

/* ---- picture ------------------------------------------------------------------------------- */
/* Rows: test images (the first of each class), PCA, then each model's reconstructions. */
static void plot(const options *o, tg_tape *tp, const pca *p, const autoencoder *ms, int n_models,
                 const fm_split *test) {
    enum { N = FM_CLASSES };
    float *tiles = malloc((size_t)(2 + n_models) * N * D * sizeof *tiles + 64);   /* + BLIS slack */
    double *xd = malloc((size_t)N * D * sizeof *xd + 64), *z = malloc((size_t)N * p->k * sizeof *z + 64);
    const char *labels[4] = {"test images", "PCA"};
    bool ok = tiles && xd && z;
    for (int c = 0; ok && c < N; c++) {   /* the first test image of class c (else image c) */
        int64_t at = c;
        for (int64_t i = test->n - 1; i >= 0; i--) at = test->y[i] == c ? i : at;
        memcpy(tiles + (size_t)c * D, test->x + at * D, D * sizeof *tiles);
    }
    if (ok) pca_reconstruct(tp, p, tiles, N, xd, z, tiles + N * D);
    for (int m = 0; ok && m < n_models; m++) {
        labels[2 + m] = ms[m].n_layers == 2 ? "linear AE" : "non-linear AE";
        ok = ae_reconstruct(tp, &ms[m], tiles, N, tiles + (size_t)(2 + m) * N * D) == 0;
    }
    for (int64_t i = 0; ok && i < (int64_t)(2 + n_models) * N * D; i++)   /* add the mean back */
        tiles[i] += (float)p->mean[i % D];
    char title[128];
    snprintf(title, sizeof title, "Fashion-MNIST test images and their reconstructions from k = %lld",
             (long long)p->k);
    if (ok) fm_plot_tiles(o->plot, title, tiles, (2 + n_models) * N, FM_SIDE, FM_SIDE, N, false, 0, 1,
                          labels);
    free(tiles);
    free(xd);
    free(z);
}

/* ---- main ------------------------------------------------------------------------------------ */
/* Subtracts the training mean from every image of both splits; p->mean keeps it. */
static int centre(const fm_split *train, const fm_split *test, pca *p) {
    if (!(p->mean = calloc(D, sizeof *p->mean))) return -1;
    for (int64_t i = 0; i < train->n * D; i++) p->mean[i % D] += train->x[i];
    for (int64_t j = 0; j < D; j++) p->mean[j] /= (double)train->n;
    for (int64_t i = 0; i < train->n * D; i++) train->x[i] -= (float)p->mean[i % D];
    for (int64_t i = 0; i < test->n * D; i++) test->x[i] -= (float)p->mean[i % D];
    return 0;
}

static void report_pca(const pca *p, double err) {
    double all = 0, top = 0;
    for (int64_t j = 0; j < D; j++) all += p->eig[j], top += j < p->k ? p->eig[j] : 0;
    printf("PCA (LAPACK dsyevd on the float64 covariance): %lld components keep %.1f%% of the "
           "variance; eigenvalue gap lambda_k / lambda_k+1 - 1 = %.1f%%\n", (long long)p->k,
           100 * top / all, 100 * (p->eig[p->k - 1] / p->eig[p->k] - 1));
    printf("PCA test error (MSE per pixel): %.6f\n", err);
}

static int run(const options *o, const fm_split *train, const fm_split *test, tg_tape *tp) {
    pca p = {0};
    autoencoder ms[2];
    int n = 0, rc = centre(train, test, &p) || pca_fit(tp, train, o->k, &p) ? 1 : 0;
    double pca_err = rc ? -1 : pca_error(tp, &p, test);
    if (!rc && pca_err > 0) report_pca(&p, pca_err);
    tg_rng rng = tg_rng_seeded((uint64_t)o->seed);
    for (int lin = 1; lin >= 0 && !rc; lin--) {
        /* --models is "linear", "non-linear" or both (checked up front) */
        if (strcmp(o->models, lin ? "non-linear" : "linear") == 0) continue;
        rc = ae_init(&ms[n], lin, o, &rng) || ae_train(tp, &ms[n], o, train, test, &rng) ? 1 : 0;
        if (!rc && (ms[n].test_error = ae_error(tp, &ms[n], test)) < 0) rc = 1;
        n++;
    }
    for (int m = 0; !rc && m < n; m++) {
        printf("%s test error (MSE per pixel): %.6f\n", ms[m].name, ms[m].test_error);
        printf("test error / PCA's, %s: %.4f\n", ms[m].name, ms[m].test_error / pca_err);
        if (ms[m].n_layers == 2) report_angles(&ms[m], &p);
    }
    if (!rc && o->plot && *o->plot) plot(o, tp, &p, ms, n, test);
    for (int m = 0; m < n; m++) tg_params_free(ms[m].params);
    pca_free(&p);
    return rc;
}


/* Ranges are checked by the option table; here the models list, and whether
 * the sizes fit in memory. Fitted to peak RSS measured with the non-linear
 * model: about 250 MB of images and PCA, 12 floats per weight of the two outer
 * layers (weights, gradients, Adam's moments, copies for evaluation), and per
 * image of a batch 16 floats per pixel plus 22 per unit of width
 * (262 MB at width 256 / batch 128, 548 MB at width 4096 / batch 128, 662 MB at
 * width 256 / batch 8192, 2.03 GB at width 4096 / batch 4096). */
static int check_options(const options *o) {
    if (strcmp(o->models, "linear") && strcmp(o->models, "non-linear") &&
        strcmp(o->models, "linear,non-linear")) {
        fprintf(stderr, "autoencoder: --models must be linear, non-linear or linear,non-linear "
                        "(see --help)\n");
        return 2;
    }
    double width = (double)o->width, per_image = 4.0 * (16.0 * D + 22.0 * width);
    double weights = 4.0 * 12 * 2 * D * width;
    char sizes[64];
    snprintf(sizes, sizeof sizes, "--batch %lld --width %lld", (long long)o->batch,
             (long long)o->width);
    return ex_memory_fits("autoencoder", 250e6 + weights + per_image * (double)o->batch, sizes)
               ? 0 : 2;
}

int main(int argc, char **argv) {
    options o = {.data = FM_DEFAULT_DIR, .models = "linear,non-linear",
                 .plot = "autoencoder.png", .k = 18, .width = 256, .epochs = 10, .batch = 128,
                 .seed = 1, .threads = 1, .lr = 1e-2, .lr_nonlinear = 1e-3};
    ex_opt opts[] = {
        {"data", EX_STR, &o.data, "folder with the Fashion-MNIST *-ubyte.gz files", EX_NONE},
        {"k", EX_INT, &o.k, "hidden units of the code = PCA components", EX_IN(1, D - 1)},
        {"models", EX_STR, &o.models, "linear, non-linear or linear,non-linear", EX_NONE},
        {"width", EX_INT, &o.width, "units of the non-linear model's outer layers", EX_IN(1, EX_MAX_SIZE)},
        {"epochs", EX_INT, &o.epochs, "training epochs per model", EX_IN(1, MAX_EPOCHS)},
        {"steps", EX_INT, &o.steps, "stop each model after this many steps (0: no limit)", EX_IN(0, EX_MAX_COUNT)},
        {"batch", EX_INT, &o.batch, "minibatch size", EX_IN(1, EX_MAX_SIZE)},
        {"lr", EX_DOUBLE, &o.lr, "Adam learning rate of the linear model (cosine to lr/100)", EX_LR},
        {"lr-nonlinear", EX_DOUBLE, &o.lr_nonlinear, "Adam learning rate of the non-linear model", EX_LR},
        {"seed", EX_INT, &o.seed, "seed for weights and shuffling", EX_SEED},
        EX_OPT_THREADS(&o.threads),
        {"limit", EX_INT, &o.limit, "use only the first N training and test images (0: all)", EX_IN(0, EX_MAX_COUNT)},
        {"plot", EX_STR, &o.plot, "PNG of test images and reconstructions ('' for none)", EX_NONE},
    };
    int rc = ex_parse(argc, argv,
                      "Trains a linear and a non-linear autoencoder on Fashion-MNIST and compares\n"
                      "their reconstruction error with PCA's (LAPACK) at the same k.",
                      opts, EX_COUNT(opts));
    if (rc >= 0) return rc;
    if ((rc = check_options(&o)) != 0) return rc;
    fm_split train = {0}, test = {0};
    rc = fm_load(o.data, "train", &train) || fm_load(o.data, "t10k", &test);
    if (o.limit && train.n > o.limit) train.n = o.limit;   /* the smoke runs' small sets */
    if (o.limit && test.n > o.limit) test.n = o.limit;
    if (!rc && (o.batch > train.n || test.n < FM_CLASSES)) {
        fprintf(stderr, "autoencoder: --batch %lld exceeds the %lld training images (or fewer than "
                        "10 test images)\n", (long long)o.batch, (long long)train.n);
        rc = 2;
    }
    tg_tape *tp = rc ? NULL : tg_tape_new();
    if (tp && o.threads > 0) tg_tape_set_threads(tp, (int)o.threads);
    if (!rc) rc = tp ? run(&o, &train, &test, tp) : 1;
    tg_tape_free(tp);
    fm_free(&train);
    fm_free(&test);
    return rc;
}
