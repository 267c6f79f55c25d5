/* bench/onednn_reference.c - the anchor of issue 10: W1-W3 trained with
 * oneDNN's fused RNN primitives (Debian libdnnl-dev 2.6.3), at the shapes of
 * bench/w1-w3, timed the same way and printed in their format (one JSON line,
 * "side": "onednn") for bench/compare.py. Built only when meson finds dnnl.
 *
 *   W1  one-hot [T 64, B 32, V 65] -> LSTM (H 256, forward_training + backward)
 *       -> Linear(256, 65) -> cross-entropy over all steps; Adam
 *   W2  the same with lbr_gru (GRU, reset after: PyTorch's convention)
 *   W3  ids [T 40, B 32] -> Embedding(2002, 128) -> LSTM (H 64), last h ->
 *       Linear(64, 1) -> BCE with logits; Adam over everything (the embedding's
 *       gradient is dense, as PyTorch's)
 *
 * The RNN and the Linear layers are oneDNN primitives (onednn_rnn.h); the
 * embedding gather/scatter, the losses and Adam (PyTorch 1.13's formulas, in
 * float32) are plain loops. oneDNN 2.6.3 computes a wrong LSTM
 * diff_weights_iter when the initial state is omitted, so src_iter and
 * src_iter_c are explicit zeros.
 *
 *   onednn_reference W1 --threads 2 [--min-time S] [--min-iters N] [--warmup S]
 *   onednn_reference W2 --check    one step on tapegrad's initial weights:
 *                                  loss and every gradient against tapegrad's
 *                                  (exit 1 when they differ) */
#include "bench_util.h"

#include "onednn_rnn.h"

#include <omp.h>

enum { CV = 65, CH = 256, CT = 64, CB = 32 };             /* W1, W2 */
enum { SV = 2002, SE = 128, SH = 64, ST = 40, SB = 32 };  /* W3 */

/* ---- Adam over float arrays (PyTorch 1.13, lr 1e-3, defaults) ---------------------- */
typedef struct adam_param { float *p, *g, *m, *v; size_t n; } adam_param;

typedef struct adam {
    adam_param ps[8];
    int n;
    int64_t t;
} adam;

static void adam_add(adam *a, float *p, float *g, size_t n) {
    float *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    if (!m || !v) exit(1);
    a->ps[a->n++] = (adam_param){p, g, m, v, n};
}

static void adam_step(adam *a) {
    const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    a->t++;
    float nstep = (float)-(lr / (1 - pow(b1, (double)a->t)));
    float bc2 = (float)sqrt(1 - pow(b2, (double)a->t));
    for (int k = 0; k < a->n; k++) {
        adam_param *q = &a->ps[k];
#pragma omp simd
        for (size_t i = 0; i < q->n; i++) {
            float d = q->g[i];
            q->m[i] = q->m[i] * (float)b1 + (float)(1 - b1) * d;
            q->v[i] = q->v[i] * (float)b2 + (float)(1 - b2) * d * d;
            q->p[i] = q->p[i] + nstep * q->m[i] / (sqrtf(q->v[i]) / bc2 + (float)eps);
        }
    }
}

static void adam_free(adam *a) {
    for (int k = 0; k < a->n; k++) free(a->ps[k].m), free(a->ps[k].v);
}

/* ---- losses ---------------------------------------------------------------------------
 * Mean cross-entropy of logits z [N, V] against y; dz = (softmax - onehot) / N. */
static double cross_entropy(const float *z, const int32_t *y, int64_t N, int64_t V, float *dz) {
    double loss = 0;
    for (int64_t i = 0; i < N; i++) {
        const float *zi = z + i * V;
        float top = zi[0], sum = 0;
        for (int64_t v = 1; v < V; v++) top = zi[v] > top ? zi[v] : top;
        for (int64_t v = 0; v < V; v++) sum += expf(zi[v] - top);
        loss += log(sum) + top - zi[y[i]];
        for (int64_t v = 0; v < V; v++)
            dz[i * V + v] = (expf(zi[v] - top) / sum - (v == y[i])) / (float)N;
    }
    return loss / (double)N;
}

/* Mean BCE with logits z [N] against t; dz = (sigmoid(z) - t) / N. */
static double bce_logits(const float *z, const float *t, int64_t N, float *dz) {
    double loss = 0;
    for (int64_t i = 0; i < N; i++) {
        loss += fmax(z[i], 0) - z[i] * t[i] + log1p(exp(-fabs(z[i])));
        dz[i] = (1 / (1 + expf(-z[i])) - t[i]) / (float)N;
    }
    return loss / (double)N;
}

/* ---- the models ------------------------------------------------------------------------- */
typedef struct dn_model {
    const char *name;
    bool gru, w3;
    int64_t T, B, V, E, H;     /* E: the RNN's input width (V one-hot, or the embedding's) */
    dn_ctx c;
    dn_rnn rnn;
    dn_linear fc;
    dn_buf last_h;             /* W3: the head reads hT through its own view */
    float *emb, *demb;         /* W3: [V, E] */
    int32_t *ids, *y;          /* time-major: W3 ids [T, B]; W1/W2 targets [T, B] */
    float *target;             /* W3 [B] */
    adam opt;
    double loss;
} dn_model;

static void model_open(dn_model *m, const char *name, int threads, tg_rng *rng) {
    bool w3 = !strcmp(name, "W3");
    *m = (dn_model){.name = name, .gru = !strcmp(name, "W2"), .w3 = w3, .T = w3 ? ST : CT,
                    .B = w3 ? SB : CB, .V = w3 ? SV : CV, .E = w3 ? SE : CV, .H = w3 ? SH : CH};
    omp_set_num_threads(threads);   /* oneDNN's OpenMP runtime reads it */
    DN_CHECK(dnnl_engine_create(&m->c.engine, dnnl_cpu, 0));
    DN_CHECK(dnnl_stream_create(&m->c.stream, m->c.engine, dnnl_stream_default_flags));
    dn_rnn_open(&m->rnn, &m->c, m->gru, m->T, m->B, m->E, m->H);
    if (w3) {   /* the head reads the last state hT [1, 1, B, H] as [B, H] */
        dn_linear_open(&m->fc, &m->c, &m->rnn.hT, m->B, m->H, 1);
    } else {
        dn_linear_open(&m->fc, &m->c, &m->rnn.y, m->T * m->B, m->H, m->V);
    }
    int64_t N = m->T * m->B;
    m->ids = calloc((size_t)N, sizeof *m->ids);
    m->y = calloc((size_t)N, sizeof *m->y);
    m->target = calloc((size_t)m->B, sizeof *m->target);
    m->emb = w3 ? calloc((size_t)(m->V * m->E), sizeof *m->emb) : NULL;
    m->demb = w3 ? calloc((size_t)(m->V * m->E), sizeof *m->demb) : NULL;
    if (!m->ids || !m->y || !m->target || (w3 && (!m->emb || !m->demb))) exit(1);
    /* random data and weights; --check overwrites them with tapegrad's */
    for (int64_t i = 0; i < N; i++) {
        m->ids[i] = (int32_t)(tg_rng_next(rng) % (uint64_t)m->V);
        m->y[i] = (int32_t)(tg_rng_next(rng) % (uint64_t)m->V);
    }
    for (int64_t b = 0; b < m->B; b++) m->target[b] = (float)(tg_rng_next(rng) % 2);
    float bound = 1.0f / sqrtf((float)m->H);
    dn_buf *w[] = {&m->rnn.w_x, &m->rnn.w_h, &m->rnn.bias, &m->fc.w, &m->fc.b};
    for (int k = 0; k < 5; k++)
        for (size_t i = 0; i < w[k]->n; i++)
            w[k]->p[i] = bound * (float)(2 * tg_rng_uniform(rng) - 1);
    for (int64_t i = 0; w3 && i < m->V * m->E; i++) m->emb[i] = (float)tg_rng_normal(rng);
    adam_add(&m->opt, m->rnn.w_x.p, m->rnn.dw_x.p, m->rnn.w_x.n);
    adam_add(&m->opt, m->rnn.w_h.p, m->rnn.dw_h.p, m->rnn.w_h.n);
    adam_add(&m->opt, m->rnn.bias.p, m->rnn.dbias.p, m->rnn.bias.n);
    adam_add(&m->opt, m->fc.w.p, m->fc.dw.p, m->fc.w.n);
    adam_add(&m->opt, m->fc.b.p, m->fc.db.p, m->fc.b.n);
    if (w3) adam_add(&m->opt, m->emb, m->demb, (size_t)(m->V * m->E));
}

/* The RNN input: W1/W2 a fixed one-hot of ids, W3 the embedding rows of ids. */
static void fill_input(dn_model *m) {
    int64_t N = m->T * m->B;
    float *x = m->rnn.x.p;
    if (!m->w3) {
        memset(x, 0, (size_t)(N * m->E) * sizeof *x);
        for (int64_t i = 0; i < N; i++) x[i * m->E + m->ids[i]] = 1;
        return;
    }
    for (int64_t i = 0; i < N; i++)
        memcpy(x + i * m->E, m->emb + (int64_t)m->ids[i] * m->E, (size_t)m->E * sizeof *x);
}

/* forward, loss, backward: every gradient of the step, no update. */
static void model_grads(dn_model *m) {
    if (m->w3) fill_input(m);
    dn_rnn_forward(&m->c, &m->rnn);
    dn_linear_forward(&m->c, &m->fc);
    if (m->w3) {
        m->loss = bce_logits(m->fc.y.p, m->target, m->B, m->fc.dy.p);
        dn_linear_backward(&m->c, &m->fc);
        memcpy(m->rnn.dhT.p, m->fc.dx.p, m->rnn.dhT.n * sizeof(float));   /* dy stays 0 */
    } else {
        m->loss = cross_entropy(m->fc.y.p, m->y, m->T * m->B, m->V, m->fc.dy.p);
        dn_linear_backward(&m->c, &m->fc);
        memcpy(m->rnn.dy.p, m->fc.dx.p, m->rnn.dy.n * sizeof(float));
    }
    dn_rnn_backward(&m->c, &m->rnn);
    if (m->w3) {   /* scatter-add the input gradient into the embedding's */
        memset(m->demb, 0, (size_t)(m->V * m->E) * sizeof *m->demb);
        for (int64_t i = 0; i < m->T * m->B; i++)
            for (int64_t e = 0; e < m->E; e++)
                m->demb[(int64_t)m->ids[i] * m->E + e] += m->rnn.dx.p[i * m->E + e];
    }
}

static int model_step(void *ctx) {
    dn_model *m = ctx;
    model_grads(m);
    adam_step(&m->opt);
    return isfinite(m->loss) ? 0 : -1;
}

static void model_close(dn_model *m) {
    dn_linear_close(&m->fc);
    dn_rnn_close(&m->rnn);
    adam_free(&m->opt);
    free(m->ids), free(m->y), free(m->target), free(m->emb), free(m->demb);
    dnnl_stream_destroy(m->c.stream);
    dnnl_engine_destroy(m->c.engine);
}

#include "onednn_check.h"

/* ---- main ----------------------------------------------------------------------------------- */
typedef struct own_opts { const char *workload; bool check; } own_opts;

static int own_opt(int argc, char **argv, int i, void *ctx) {
    own_opts *o = ctx;
    (void)argc;
    if (!strcmp(argv[i], "--check")) return o->check = true, 1;
    if (argv[i][0] != '-' && !o->workload) return o->workload = argv[i], 1;
    return 0;
}

int main(int argc, char **argv) {
    const char *usage = "W1|W2|W3 [--check]";
    own_opts own = {0};
    bench_opts o;
    if (bench_parse(argc, argv, &o, own_opt, &own, usage)) return 2;
    if (!own.workload || (strcmp(own.workload, "W1") && strcmp(own.workload, "W2") &&
                          strcmp(own.workload, "W3")))
        return bench_usage(argv[0], usage), 2;
    tg_init();
    if (own.check) return check_against_tapegrad(own.workload);
    tg_rng rng = tg_rng_seeded(42);
    dn_model m;
    model_open(&m, own.workload, o.threads, &rng);
    fill_input(&m);
    bench_result r;
    if (bench_measure(model_step, &m, &o, &r) != 0) {
        fprintf(stderr, "%s: the loss is not finite\n", own.workload);
        return 1;
    }
    const dnnl_version_t *v = dnnl_version();
    char variant[96];
    snprintf(variant, sizeof variant, "oneDNN %d.%d.%d %s", v->major, v->minor, v->patch,
             m.gru ? "lbr_gru" : "LSTM");
    printf("  loss %.4f\n", m.loss);
    bench_print(&(bench_report){.side = "onednn", .workload = own.workload, .variant = variant,
                                .threads = o.threads, .tokens = m.T * m.B, .r = &r});
    model_close(&m);
    return 0;
}
