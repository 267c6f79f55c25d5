/* bench/ckpt_lstm.c - activation checkpointing on a long sequence (issue 12):
 * a 1-layer LSTM, 512 units, batch 32, input 512, sequence 4096 (time major),
 * loss = sum of every step's output, trained without checkpointing or with
 * tg_rnn_opts.checkpoint_every = k. One configuration per process, so the
 * peak RSS is its own. Prints the median step time (forward + backward +
 * reset, after one warm-up step), the process's peak RSS, and the arena peak
 * (the tape's, plus the checkpoint sub-tape's).
 *
 *   ckpt_lstm [--every K] [--inputs] [--T N] [--steps N] [--threads N]
 *   --inputs: checkpoint_inputs (the input projection inside the spans too) */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 32, H = 512, C = 512 };

typedef struct cfg {
    int64_t every, T;
    bool inputs;
    int steps, threads;
} cfg;

static int parse(int argc, char **argv, cfg *c) {
    *c = (cfg){.T = 4096, .steps = 3, .threads = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--inputs")) c->inputs = true;
        else if (!strcmp(a, "--every") && v) c->every = atoll(argv[++i]);
        else if (!strcmp(a, "--T") && v) c->T = atoll(argv[++i]);
        else if (!strcmp(a, "--steps") && v) c->steps = atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && v) c->threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--every K] [--inputs] [--T N] [--steps N] [--threads N]\n",
                    argv[0]);
            return -1;
        }
    }
    return c->T > 0 && c->steps > 0 && c->steps <= BENCH_MAX_ITERS ? 0 : -1;
}

/* One training step's forward and backward; the caller resets. */
static double step(tg_tape *tp, tg_rnn *r, tg_params *p, tg_tensor *x) {
    double t0 = bench_now();
    tg_params_zero_grad(p);
    tg_tensor *y = tg_rnn_forward(tp, r, x, NULL, NULL, 0);   /* [T, B, H] */
    tg_tensor *loss = tg_sum(tp, y);
    if (!loss || tg_backward(tp, loss) != TG_OK) {
        fprintf(stderr, "step failed: %s\n", tg_tape_error(tp));
        exit(1);
    }
    return bench_now() - t0;
}

int main(int argc, char **argv) {
    cfg c;
    if (parse(argc, argv, &c) != 0) return 2;
    tg_rng rng = tg_rng_seeded(1);
    tg_rnn_opts o = tg_rnn_opts_torch(&tg_cell_lstm, C, H);
    o.checkpoint_every = c.every;
    o.checkpoint_inputs = c.inputs;
    tg_params *p = tg_params_new();
    tg_rnn r;
    if (tg_rnn_init(&r, p, "lstm", &o, TG_F32, &rng) != TG_OK) {
        fprintf(stderr, "%s\n", tg_last_error());
        return 1;
    }
    tg_tensor *x = tg_tensor_new(TG_F32, 3, (int64_t[]){c.T, B, C});
    bench_fill_uniform(x, &rng, -1, 1);
    tg_tape *tp = tg_tape_new();
    tg_tape_set_threads(tp, c.threads);
    double times[BENCH_MAX_ITERS];
    step(tp, &r, p, x);   /* warm-up: the arena and the sub-tape reach their size */
    tg_tape_reset(tp);
    for (int i = 0; i < c.steps; i++) {
        times[i] = step(tp, &r, p, x);
        if (i + 1 < c.steps) tg_tape_reset(tp);
    }
    if (getenv("CKPT_MEMORY_REPORT")) tg_tape_memory_report(tp, stderr);   /* by op kind */
    tg_tape_stats st;
    tg_tape_stats_get(tp, &st);
    uint64_t sub = tg_tape_checkpoint_peak(tp);
    printf("ckpt_lstm T=%lld B=%d H=%d C=%d every=%lld%s threads=%d: step %.3f s (median of %d), "
           "peak RSS %.1f MiB, arena peak %.1f MiB (tape %.1f + checkpoint sub-tape %.1f)\n",
           (long long)c.T, B, H, C, (long long)c.every, c.inputs ? " inputs" : "", c.threads,
           bench_median(times, c.steps), c.steps, bench_rss_kb() / 1024.0,
           (double)(st.arena_peak + sub) / (1 << 20), (double)st.arena_peak / (1 << 20),
           (double)sub / (1 << 20));
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_rnn_free(&r);
    tg_params_free(p);
    return 0;
}
