/* bench/w4_transformer.c - W4 transformer encoder block, issue 6.
 *
 * x [B, T, C] (B 32, T 64, C 128) -> tg_transformer_encoder (4 heads, feed-
 * forward 512, relu, post-norm, dropout 0) -> loss = mean(out^2); Adam. The
 * PyTorch side is nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0,
 * batch_first=True) on the same shapes.
 *   build-h/bench/w4_transformer --threads 2 [--verbose] */
#include "bench_util.h"

#include <tapegrad/nn_attention.h>

enum { XB = 32, XT = 64, XC = 128, XH = 4, XF = 512 };

typedef struct xf_model {
    tg_transformer_block blk;
    tg_tensor *x;   /* [B, T, C], no gradient */
} xf_model;

static tg_tensor *xf_forward(tg_tape *tp, void *model) {
    xf_model *m = model;
    tg_tensor *y = tg_transformer_encoder_forward(tp, &m->blk, m->x, NULL, NULL);
    return tg_mean(tp, tg_mul(tp, y, y));
}

/* The step's GEMMs as the block computes them: separate q, k, v projections
 * (PyTorch fuses them into one [N,C] x [C,3C]; same FLOPs), per-(batch, head)
 * attention products, out projection, feed-forward. x needs no gradient, so
 * the q/k/v projections have no dX. Each shape is timed as BLIS calls; the
 * engine runs the per-head products as batches on BLIS's micro-kernel
 * (ops/gemm_pack.c), so the step can beat this floor there. */
static int xf_gemms(bench_gemm *g) {
    int64_t N = XB * XT, C = XC, d = XC / XH, T = XT, BH = XB * XH, F = XF;
    int n = 0;
    g[n++] = (bench_gemm){"x W_{q,k,v}^T", N, C, C, false, true, 3, false};
    g[n++] = (bench_gemm){"q k^T (per b, head)", T, T, d, false, true, BH, false};
    g[n++] = (bench_gemm){"W v (per b, head)", T, d, T, false, false, BH, false};
    g[n++] = (bench_gemm){"ctx W_o^T", N, C, C, false, true, 1, false};
    g[n++] = (bench_gemm){"x1 W_1^T", N, F, C, false, true, 1, false};
    g[n++] = (bench_gemm){"relu W_2^T", N, C, F, false, true, 1, false};
    g[n++] = (bench_gemm){"dY W_2", N, F, C, false, false, 1, false};
    g[n++] = (bench_gemm){"dW_2", C, F, N, true, false, 1, false};
    g[n++] = (bench_gemm){"dH W_1", N, C, F, false, false, 1, false};
    g[n++] = (bench_gemm){"dW_1", F, C, N, true, false, 1, false};
    g[n++] = (bench_gemm){"dO W_o", N, C, C, false, false, 1, false};
    g[n++] = (bench_gemm){"dW_o", C, C, N, true, false, 1, false};
    g[n++] = (bench_gemm){"dW = dctx v^T", T, T, d, false, true, BH, false};
    g[n++] = (bench_gemm){"dv = W^T dctx", T, d, T, true, false, BH, false};
    g[n++] = (bench_gemm){"dq = dS k", T, d, T, false, false, BH, false};
    g[n++] = (bench_gemm){"dk = dS^T q", T, d, T, true, false, BH, false};
    g[n++] = (bench_gemm){"dW_{q,k,v}", C, C, N, true, false, 3, false};
    return n;
}

int main(int argc, char **argv) {
    bench_opts o;
    if (bench_parse(argc, argv, &o, NULL, NULL, NULL)) return 2;
    tg_init();
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(42);
    xf_model m = {0};
    bench_train t;
    bench_result r;
    tg_transformer_opts xo = {.heads = XH, .ffn_dim = XF, .dropout = 0.0, .pre_norm = false,
                              .activation = TG_ACT_RELU};
    m.x = tg_tensor_new(TG_F32, 3, (int64_t[]){XB, XT, XC});
    if (!p || !m.x ||
        tg_transformer_encoder_init(&m.blk, p, "enc", XC, TG_F32, &rng, &xo) != TG_OK ||
        bench_train_open(&t, p, o.threads, xf_forward, &m) != 0) {
        fprintf(stderr, "W4: setup failed: %s\n", tg_last_error());
        return 1;
    }
    for (int64_t i = 0; i < XB * XT * XC; i++) tg_tensor_set(m.x, i, tg_rng_normal(&rng));
    if (bench_measure(bench_train_step, &t, &o, &r) != 0) return 1;
    bench_floor f;
    bench_gemm gs[17];
    int ng = xf_gemms(gs);
    bool floor_ok = !o.no_floor && bench_gemm_floor(gs, ng, o.threads, o.verbose, &f) == 0;
    printf("  loss %.4f\n", t.loss);
    bench_print(&(bench_report){.workload = "W4",
                                .variant = "composed (tg_transformer_encoder, post-norm, dropout 0)",
                                .threads = o.threads, .tokens = XT * XB, .r = &r,
                                .floor = floor_ok ? &f : NULL, .tp = t.tp, .nodes = t.nodes,
                                .step = &t.step});
    bench_train_close(&t);
    tg_tensor_free(m.x);
    tg_params_free(p);
    return 0;
}
