/* bench/w5_tape_overhead.c - W5 tape overhead, issue 6.
 *
 * x [16] -> *0.9 -> tanh -> *0.9 -> ... (1000 recorded ops), backward with
 * dy = ones, tape reset: ns per op, forward + backward. Also prints the
 * forward alone and the same arithmetic in bare C loops (the kernels' own
 * cost), so the difference is the tape's. PyTorch side: the same chain with
 * autograd (torch_reference.py W5). No optimizer step: nothing to update.
 *   build-h/bench/w5_tape_overhead [--min-time 1] */
#include "bench_util.h"
#include "chain.h"

static int chain_step(void *p) { return chain_run(p); }

static int bare_step(void *p) {
    (void)p;
    bare_chain();
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
                                &rfull, NULL, tp, CHAIN, NULL});
    tg_tensor_free(x);
    tg_tensor_free(dy);
    tg_tape_free(tp);
    return 0;
}
