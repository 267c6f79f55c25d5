/* bench/chain.h - the tape-overhead chain shared by bench_core (issue 2's
 * figure) and w5_tape_overhead (issue 6's W5):
 * x [16] -> *0.9 -> tanh -> *0.9 -> ... (1000 recorded ops), backward with
 * dy = ones, tape reset; and the same arithmetic in bare C loops, one buffer
 * per op as the arena gives, so the difference is the tape's own cost. */
#ifndef TG_BENCH_CHAIN_H
#define TG_BENCH_CHAIN_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#include <tapegrad.h>

#include "../ops/simd_math.h"

enum { CHAIN = 1000, WIDTH = 16 };
static const double CHAIN_SCALE = 0.9;

typedef struct chain_ctx {
    tg_tape *tp;
    tg_tensor *x, *dy;
    bool backward;
} chain_ctx;

/* One pass of the chain (and its backward when asked); 0, or -1 on a tape error. */
static inline int chain_run(chain_ctx *c) {
    tg_tensor *h = c->x;
    for (int i = 0; i < CHAIN; i++) h = i % 2 ? tg_tanh(c->tp, h) : tg_scale(c->tp, h, CHAIN_SCALE);
    int rc = !h || (c->backward && tg_backward_ex(c->tp, h, c->dy) != TG_OK) ? -1 : 0;
    if (rc) fprintf(stderr, "tape chain failed: %s\n", tg_tape_error(c->tp));
    tg_tape_reset(c->tp);
    return rc;
}

static float bare_y[CHAIN + 1][WIDTH], bare_g[CHAIN + 1][WIDTH];
static volatile float bare_sink;

/* The chain's arithmetic without the engine; bare_y[0] holds the input. Its
 * loops vectorize with the engine's vector math (ops/simd_math.h). */
static inline void bare_chain(void) {
    const float a = (float)CHAIN_SCALE;
    for (int i = 0; i < CHAIN; i++)
        TG_PRAGMA_SIMD
        for (int j = 0; j < WIDTH; j++)
            bare_y[i + 1][j] = i % 2 ? tanhf(bare_y[i][j]) : a * bare_y[i][j];
    for (int j = 0; j < WIDTH; j++) bare_g[CHAIN][j] = 1.0f;
    for (int i = CHAIN - 1; i >= 0; i--)
        TG_PRAGMA_SIMD
        for (int j = 0; j < WIDTH; j++) {
            float y = bare_y[i + 1][j];
            bare_g[i][j] = bare_g[i + 1][j] * (i % 2 ? 1.0f - y * y : a);
        }
    bare_sink = bare_g[0][0];
}

#endif
