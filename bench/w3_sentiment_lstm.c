/* bench/w3_sentiment_lstm.c - W3 sentiment LSTM, issue 6.
 *
 * ids I32 [B, T] (B 32, T 40) -> Embedding(2002, 128) -> tg_rnn LSTM (hidden
 * 64, last state) -> Linear(64, 1) -> BCE with logits against 0/1 targets;
 * Adam. Same shapes as bench/torch_reference.py W3.
 *   build-h/bench/w3_sentiment_lstm --threads 1 [--verbose] */
#include "bench_util.h"

enum { SB = 32, ST = 40, SV = 2002, SE = 128, SH = 64 };

typedef struct sent_model {
    tg_embedding_layer emb;
    tg_rnn lstm;
    tg_linear fc;
    tg_tensor *ids, *target;   /* I32 [B, T]; float [B, 1] */
} sent_model;

/* logit = fc(lstm(emb(ids))) [B, 1]; loss = BCE with logits. */
static tg_tensor *sent_forward(tg_tape *tp, void *model) {
    sent_model *m = model;
    tg_tensor *h = tg_rnn_forward(tp, &m->lstm, tg_embedding_layer_forward(tp, &m->emb, m->ids),
                                  NULL, NULL, 0);   /* [B, H], the last step */
    return tg_bce_with_logits(tp, tg_linear_forward(tp, &m->fc, h), m->target);
}

static int sent_open(sent_model *m, tg_params *p, tg_rng *rng) {
    memset(m, 0, sizeof *m);
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_lstm, SE, SH);
    if (tg_embedding_layer_init(&m->emb, p, "emb", SV, SE, TG_F32, rng, NULL) != TG_OK ||
        tg_rnn_init(&m->lstm, p, "lstm", &o, TG_F32, rng) != TG_OK ||
        tg_linear_init(&m->fc, p, "fc", SH, 1, TG_F32, rng, NULL) != TG_OK)
        return -1;
    m->ids = tg_tensor_new(TG_I32, 2, (int64_t[]){SB, ST});
    m->target = tg_tensor_new(TG_F32, 2, (int64_t[]){SB, 1});
    if (!m->ids || !m->target) return -1;
    bench_fill_ids(m->ids, rng, SV);
    for (int64_t b = 0; b < SB; b++) tg_tensor_set(m->target, b, (double)(tg_rng_next(rng) % 2));
    return 0;
}

/* The step's GEMMs (N = T*B, G = 4H). Unlike W1 the input (the embedding
 * output) needs a gradient, so dX is one more GEMM. */
static int sent_gemms(bench_gemm *g) {
    int64_t N = ST * SB, G = 4 * SH;
    int n = 0;
    g[n++] = (bench_gemm){"x W_ih^T (all steps)", N, G, SE, false, true, 1};
    g[n++] = (bench_gemm){"h W_hh^T (per step)", SB, G, SH, false, true, ST};
    g[n++] = (bench_gemm){"h_T W_fc^T", SB, 1, SH, false, true, 1};
    g[n++] = (bench_gemm){"dlogit W_fc", SB, SH, 1, false, false, 1};
    g[n++] = (bench_gemm){"dW_fc = dlogit^T h_T", 1, SH, SB, true, false, 1};
    g[n++] = (bench_gemm){"dZ W_hh (per step)", SB, SH, G, false, false, ST - 1};
    g[n++] = (bench_gemm){"dW_hh = dZ^T h_prev", G, SH, N, true, false, 1};
    g[n++] = (bench_gemm){"dW_ih = dZ^T x", G, SE, N, true, false, 1};
    g[n++] = (bench_gemm){"dx = dZ W_ih", N, SE, G, false, false, 1};
    return n;
}

int main(int argc, char **argv) {
    bench_opts o;
    if (bench_parse(argc, argv, &o, NULL, NULL, NULL)) return 2;
    tg_init();
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(42);
    sent_model m;
    bench_train t;
    bench_result r;
    if (!p || sent_open(&m, p, &rng) != 0 ||
        bench_train_open(&t, p, o.threads, sent_forward, &m) != 0) {
        fprintf(stderr, "W3: setup failed: %s\n", tg_last_error());
        return 1;
    }
    if (bench_measure(bench_train_step, &t, &o, &r) != 0) return 1;
    bench_floor f;
    bench_gemm gs[9];
    int ng = sent_gemms(gs);
    bool floor_ok = !o.no_floor && bench_gemm_floor(gs, ng, o.threads, o.verbose, &f) == 0;
    printf("  loss %.4f (ln 2 = 0.6931 at the start)\n", t.loss);
    bench_print(&(bench_report){"W3", "composed (tg_rnn LSTM)", o.threads, ST * SB, 0, &r,
                                floor_ok ? &f : NULL, t.tp, t.nodes, &t.stats});
    bench_train_close(&t);
    tg_rnn_free(&m.lstm);
    tg_tensor_free(m.ids);
    tg_tensor_free(m.target);
    tg_params_free(p);
    return 0;
}
