/* bench/char_rnn.h - W1 (char-LSTM), W2 (char-GRU) and W6 (W1 scaled), shared
 * by w1_char_lstm.c and w2_char_gru.c, which only pick the cell kind.
 *
 * x one-hot [B, T, V] (V = 65) -> tg_rnn (1 layer, hidden H = 256, all steps)
 * -> Linear(H, V) -> cross-entropy over all B*T steps; Adam. Same shapes as
 * bench/torch_reference.py. The cell is tapegrad's composed one (nn/cell_lstm.c,
 * nn/cell_gru.c: primitives on the tape), not a fused kernel.
 *
 * Own options: --seq T (default 64), --batch B (default 32); a shape other
 * than 64 x 32 is reported as W6-T<T>-B<B>. */
#include "bench_util.h"

enum { CHAR_V = 65, CHAR_H = 256 };

typedef struct char_model {
    int64_t B, T;
    tg_rnn rnn;
    tg_linear fc;
    tg_tensor *x, *y;        /* one-hot [B, T, V] float, targets I32 [B, T] */
} char_model;

typedef struct char_shape { int64_t T, B; } char_shape;

static int char_opt(int argc, char **argv, int i, void *ctx) {
    char_shape *s = ctx;
    if (i + 1 >= argc) return 0;
    if (!strcmp(argv[i], "--seq")) return s->T = atoll(argv[i + 1]), 2;
    if (!strcmp(argv[i], "--batch")) return s->B = atoll(argv[i + 1]), 2;
    return 0;
}

/* logits = fc(rnn(x)) [B, T, V]; loss = mean cross-entropy over B*T. */
static tg_tensor *char_forward(tg_tape *tp, void *model) {
    char_model *m = model;
    tg_tensor *h = tg_rnn_forward(tp, &m->rnn, m->x, NULL, NULL, 0);   /* [B, T, H] */
    return tg_cross_entropy(tp, tg_linear_forward(tp, &m->fc, h), m->y);
}

static int char_open(char_model *m, tg_params *p, const tg_cell *cell, char_shape s, tg_rng *rng) {
    memset(m, 0, sizeof *m);
    m->B = s.B, m->T = s.T;
    tg_rnn_opts o = tg_rnn_opts_default(cell, CHAR_V, CHAR_H);
    o.return_sequences = true;   /* GRU: reset-after, PyTorch's convention */
    if (tg_rnn_init(&m->rnn, p, "rnn", &o, TG_F32, rng) != TG_OK ||
        tg_linear_init(&m->fc, p, "fc", CHAR_H, CHAR_V, TG_F32, rng, NULL) != TG_OK)
        return -1;
    m->x = tg_tensor_new(TG_F32, 3, (int64_t[]){s.B, s.T, CHAR_V});
    m->y = tg_tensor_new(TG_I32, 2, (int64_t[]){s.B, s.T});
    if (!m->x || !m->y) return -1;
    float *x = tg_tensor_data(m->x);
    for (int64_t i = 0; i < s.B * s.T; i++)   /* one 1 per (b, t) row */
        x[i * CHAR_V + (int64_t)(tg_rng_next(rng) % CHAR_V)] = 1;
    bench_fill_ids(m->y, rng, CHAR_V);
    return 0;
}

/* The step's GEMMs (N = T*B rows, G = gates*H): see bench_util.h. Per-step
 * shapes only where the recurrence forces them (h W_hh^T forward, dZ W_hh
 * backward); the weight gradients of all steps are one GEMM each. No dX:
 * the one-hot input needs no gradient. The backward of step 0 needs no dh
 * (h_0 is a constant), hence T-1. */
static int char_gemms(bench_gemm *g, int64_t T, int64_t B, int64_t gates) {
    int64_t N = T * B, H = CHAR_H, G = gates * CHAR_H, V = CHAR_V;
    int n = 0;
    g[n++] = (bench_gemm){"x W_ih^T (all steps)", N, G, V, false, true, 1};
    g[n++] = (bench_gemm){"h W_hh^T (per step)", B, G, H, false, true, T};
    g[n++] = (bench_gemm){"h W_fc^T", N, V, H, false, true, 1};
    g[n++] = (bench_gemm){"dlogits W_fc", N, H, V, false, false, 1};
    g[n++] = (bench_gemm){"dW_fc = dlogits^T h", V, H, N, true, false, 1};
    g[n++] = (bench_gemm){"dZ W_hh (per step)", B, H, G, false, false, T - 1};
    g[n++] = (bench_gemm){"dW_hh = dZ^T h_prev", G, H, N, true, false, 1};
    g[n++] = (bench_gemm){"dW_ih = dZ^T x", G, V, N, true, false, 1};
    return n;
}

static int char_main(int argc, char **argv, const tg_cell *cell) {
    bool lstm = cell == &tg_cell_lstm;
    char_shape s = {64, 32};
    bench_opts o;
    if (bench_parse(argc, argv, &o, char_opt, &s, "[--seq T] [--batch B]")) return 2;
    if (s.T < 1 || s.B < 1) return bench_usage(argv[0], "[--seq T] [--batch B]"), 2;
    tg_init();   /* BLIS picks its sub-configuration before any direct call */
    char name[64];
    if (s.T == 64 && s.B == 32) snprintf(name, sizeof name, "%s", lstm ? "W1" : "W2");
    else snprintf(name, sizeof name, "W6-T%lld-B%lld%s", (long long)s.T, (long long)s.B,
                  lstm ? "" : "-gru");

    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(42);
    char_model m;
    bench_train t;
    bench_result r;
    if (!p || char_open(&m, p, cell, s, &rng) != 0 ||
        bench_train_open(&t, p, o.threads, char_forward, &m) != 0) {
        fprintf(stderr, "%s: setup failed: %s\n", name, tg_last_error());
        return 1;
    }
    if (bench_measure(bench_train_step, &t, &o, &r) != 0) return 1;
    double first_loss = log((double)CHAR_V);
    bench_floor f;
    bench_gemm gs[8];
    int ng = char_gemms(gs, s.T, s.B, lstm ? 4 : 3);
    bool floor_ok = !o.no_floor && bench_gemm_floor(gs, ng, o.threads, o.verbose, &f) == 0;
    printf("  loss %.4f (ln V = %.4f at the start)\n", t.loss, first_loss);
    bench_print(&(bench_report){name, lstm ? "composed (tg_rnn LSTM)" : "composed (tg_rnn GRU)",
                                o.threads, s.T * s.B, 0, &r, floor_ok ? &f : NULL, t.tp,
                                t.nodes, &t.stats});
    bench_train_close(&t);
    tg_rnn_free(&m.rnn);
    tg_tensor_free(m.x);
    tg_tensor_free(m.y);
    tg_params_free(p);
    return 0;
}
