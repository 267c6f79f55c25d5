/* bench/w5_tape_overhead.c - W5 tape overhead, issue 6.
 *
 * x [16] -> *0.9 -> tanh -> *0.9 -> ... (1000 recorded ops), backward with
 * dy = ones, tape reset: ns per op, forward + backward. Also prints the
 * forward alone and the same arithmetic in bare C loops (the kernels' own
 * cost), so the difference is the tape's. PyTorch side: the same chain with
 * autograd (torch_reference.py W5). No optimizer step: nothing to update.
 *   build-h/bench/w5_tape_overhead [--min-time 1] */
#include "bench_util.h"

enum { CHAIN = 1000, WIDTH = 16 };
static const double CHAIN_SCALE = 0.9;

typedef struct chain_ctx {
    tg_tape *tp;
    tg_tensor *x, *dy;
    bool backward;
} chain_ctx;

static int chain_step(void *p) {
    chain_ctx *c = p;
    tg_tensor *h = c->x;
    for (int i = 0; i < CHAIN; i++) h = i % 2 ? tg_tanh(c->tp, h) : tg_scale(c->tp, h, CHAIN_SCALE);
    int rc = !h || (c->backward && tg_backward_ex(c->tp, h, c->dy) != TG_OK) ? -1 : 0;
    if (rc) fprintf(stderr, "W5: chain failed: %s\n", tg_tape_error(c->tp));
    tg_tape_reset(c->tp);
    return rc;
}

/* The chain's arithmetic without the engine: one buffer per op, as the arena gives. */
static float bare_y[CHAIN + 1][WIDTH], bare_g[CHAIN + 1][WIDTH];
static volatile float bare_sink;

static int bare_step(void *p) {
    (void)p;
    const float a = (float)CHAIN_SCALE;
    for (int i = 0; i < CHAIN; i++)
        for (int j = 0; j < WIDTH; j++)
            bare_y[i + 1][j] = i % 2 ? tanhf(bare_y[i][j]) : a * bare_y[i][j];
    for (int j = 0; j < WIDTH; j++) bare_g[CHAIN][j] = 1.0f;
    for (int i = CHAIN - 1; i >= 0; i--)
        for (int j = 0; j < WIDTH; j++) {
            float y = bare_y[i + 1][j];
            bare_g[i][j] = bare_g[i + 1][j] * (i % 2 ? 1.0f - y * y : a);
        }
    bare_sink = bare_g[0][0];
    return 0;
}

int main(int argc, char **argv) {
    bench_opts o;
    if (bench_parse(argc, argv, &o, NULL, NULL, NULL)) return 2;
    tg_init();
    tg_tape *tp = tg_tape_new();
    int64_t shape[1] = {WIDTH};
    tg_tensor *x = tg_tensor_new(TG_F32, 1, shape), *dy = tg_tensor_new(TG_F32, 1, shape);
    if (!tp || !x || !dy) {
        fprintf(stderr, "W5: setup failed: %s\n", tg_last_error());
        return 1;
    }
    tg_tape_set_threads(tp, o.threads);
    for (int j = 0; j < WIDTH; j++) {
        tg_tensor_set(x, j, (double)(j - 8) / 8.0);
        bare_y[0][j] = (float)(j - 8) / 8.0f;
    }
    tg_tensor_fill(dy, 1.0);
    tg_tensor_set_requires_grad(x, true);
    chain_ctx fwd = {tp, x, dy, false}, full = {tp, x, dy, true};
    bench_result rf, rb, rfull;
    bench_opts short_o = o;
    short_o.min_time = o.min_time / 4;
    if (bench_measure(chain_step, &fwd, &short_o, &rf) ||
        bench_measure(bare_step, NULL, &short_o, &rb) ||
        bench_measure(chain_step, &full, &o, &rfull))
        return 1;
    double ns = 1e9 / CHAIN;
    printf("  forward only %.1f ns/op; bare C kernels %.1f ns/op; tape cost %.1f ns/op\n",
           rf.sec * ns, rb.sec * ns, (rfull.sec - rb.sec) * ns);
    bench_print(&(bench_report){"W5", "tape: scale/tanh chain, fwd+bwd+reset", o.threads, 0, CHAIN,
                                &rfull, NULL, tp, CHAIN});
    tg_tensor_free(x);
    tg_tensor_free(dy);
    tg_tape_free(tp);
    return 0;
}
