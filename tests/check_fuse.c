/* tests/check_fuse.c - fusion of elementwise chains (autograd/fuse*.c).
 *
 * The engine's promise is that fusion changes nothing but speed, so most of
 * this file runs one program twice, fused and unfused (tg_tape_set_fusion),
 * and compares every value read and every gradient. A bounded random test
 * builds elementwise graphs with broadcasts ([R,C] with [C], [R,1], [1]),
 * slices of columns and rows, reshapes, values reused, reads mid-chain,
 * caller writes to inputs between ops, and non-fusible ops in between; the
 * other tests pin the hazards (writes and frees of inputs a group still
 * reads) and the switch. TG_FUSE_MIN=1 makes tiny tensors fuse too. The
 * last test drives the thread-split policy through its hidden interface
 * (the runner links the static library). */
#include "../autograd/internal.h"
#include "check_suites.h"
#include "tg_test.h"

enum { LEAVES = 5, MAX_VALS = 96 };

typedef struct graph {
    tg_tape *tp;
    tg_dtype dt;
    int64_t R, C;
    tg_tensor *leaf[LEAVES];   /* [R,C], [C], [R,1], [R,2C], [C,C]: caller-owned, with grad */
    tg_tensor *val[MAX_VALS];
    int n;
    double reads[MAX_VALS];    /* values read mid-chain, in order */
    int n_reads;
} graph;

/* Tiny tensors fuse too, gradient buffers never zeroed show as NaN, and
 * groups of 4K element-instructions split across threads (by default from
 * 64K on). */
static void fuse_everything(void) {
    setenv("TG_FUSE_MIN", "1", 1);
    setenv("TG_PARALLEL_MIN", "4096", 1);
    setenv("TG_ARENA_POISON", "1", 1);
}

static tg_tensor *leaf_like(tg_dtype dt, int ndim, const int64_t *shape, tg_rng *rng) {
    tg_tensor *t = tg_tensor_new(dt, ndim, shape);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, tg_rng_uniform(rng) * 2 - 1);
    tg_tensor_set_requires_grad(t, true);
    return t;
}

static void graph_open(graph *g, tg_dtype dt, int64_t R, int64_t C, uint64_t seed, bool fused) {
    memset(g, 0, sizeof *g);
    g->tp = tg_tape_new();
    tg_tape_set_fusion(g->tp, fused);
    tg_tape_set_threads(g->tp, 2);   /* large groups split across threads */
    g->dt = dt;
    g->R = R;
    g->C = C;
    tg_rng rng = tg_rng_seeded(seed);
    g->leaf[0] = leaf_like(dt, 2, TGT_SHAPE(R, C), &rng);
    g->leaf[1] = leaf_like(dt, 1, TGT_SHAPE(C), &rng);
    g->leaf[2] = leaf_like(dt, 2, TGT_SHAPE(R, 1), &rng);
    g->leaf[3] = leaf_like(dt, 2, TGT_SHAPE(R, 2 * C), &rng);
    g->leaf[4] = leaf_like(dt, 2, TGT_SHAPE(C, C), &rng);
}

static void graph_close(graph *g) {
    for (int i = 0; i < LEAVES; i++) tg_tensor_free(g->leaf[i]);
    tg_tape_free(g->tp);
}

/* A random [R,C] operand: an earlier value or leaf 0. */
static tg_tensor *pick(graph *g, tg_rng *rng) {
    int k = (int)(tg_rng_next(rng) % (uint64_t)(g->n + 1));
    return k == g->n ? g->leaf[0] : g->val[k];
}

/* A partner for a binary op: full, a row [C], a column [R,1], or a scalar-like [1]. */
static tg_tensor *partner(graph *g, tg_rng *rng) {
    switch (tg_rng_next(rng) % 4) {
    case 0: return pick(g, rng);
    case 1: return g->leaf[1];
    case 2: return g->leaf[2];
    default: return tg_slice(g->tp, g->leaf[1], 0, 0, 1);
    }
}

static tg_tensor *unary_step(graph *g, tg_tensor *x, uint64_t r) {
    tg_tape *tp = g->tp;
    switch (r % 9) {
    case 0: return tg_tanh(tp, x);
    case 1: return tg_sigmoid(tp, x);
    case 2: return tg_exp(tp, tg_tanh(tp, x));            /* bounded */
    case 3: return tg_scale(tp, x, 0.75);
    case 4: return tg_shift(tp, tg_neg(tp, x), 0.25);
    case 5: return tg_relu(tp, x);
    case 6: return tg_sqrt(tp, tg_sigmoid(tp, x));         /* positive */
    case 7: return tg_log(tp, tg_shift(tp, tg_sigmoid(tp, x), 0.5));
    default: return tg_hard_sigmoid(tp, x);
    }
}

static tg_tensor *binary_step(graph *g, tg_tensor *x, tg_rng *rng) {
    tg_tape *tp = g->tp;
    tg_tensor *y = partner(g, rng);
    switch (tg_rng_next(rng) % 5) {
    case 0: return tg_add(tp, x, y);
    case 1: return tg_sub(tp, y, x);
    case 2: return tg_mul(tp, x, y);
    case 3: /* a condition of mixed zeros, broadcast like a partner; it requires grad too */
        return tg_where(tp, tg_relu(tp, partner(g, rng)), x, y);
    default: return tg_div(tp, x, tg_shift(tp, tg_sigmoid(tp, y), 0.5));
    }
}

/* Movement and non-fusible ops, each giving [R,C] back. */
static tg_tensor *other_step(graph *g, tg_tensor *x, tg_rng *rng) {
    tg_tape *tp = g->tp;
    int64_t R = g->R, C = g->C;
    switch (tg_rng_next(rng) % 7) {
    case 0: /* columns of a [R,2C] value */
        return tg_slice(tp, tg_add(tp, g->leaf[3], tg_concat(tp, 2, (tg_tensor *[]){x, x}, 1)), 1,
                        C / 2, C / 2 + C);
    case 1: /* rows of a [2R,C] value */
        return tg_slice(tp, tg_concat(tp, 2, (tg_tensor *[]){x, tg_tanh(tp, x)}, 0), 0, R / 2,
                        R / 2 + R);
    case 2: /* a reshape keeping the last dim, and back */
        return tg_reshape(tp, tg_scale(tp, tg_reshape(tp, x, 3, TGT_SHAPE(1, R, C)), 1.5), 2,
                          TGT_SHAPE(R, C));
    case 3: return tg_mul(tp, x, tg_sum_axis(tp, x, 1, true));              /* [R,1] back in */
    case 4: return tg_softmax(tp, x, -1);
    case 5: return tg_matmul(tp, x, g->leaf[4]);
    default: /* the slice of a slice of a pending value */
        return tg_slice(tp, tg_slice(tp, tg_concat(tp, 3, (tg_tensor *[]){x, x, x}, 1), 1, 1,
                                     1 + 2 * C), 1, C - 1, 2 * C - 1);
    }
}

/* One random program of steps ops; reads and writes are part of it. */
static void build(graph *g, uint64_t seed, int steps) {
    tg_rng rng = tg_rng_seeded(seed);
    for (int s = 0; s < steps && g->n < MAX_VALS; s++) {
        tg_tensor *x = pick(g, &rng), *y;
        uint64_t r = tg_rng_next(&rng) % 10;
        if (r < 4) y = unary_step(g, x, tg_rng_next(&rng));
        else if (r < 7) y = binary_step(g, x, &rng);
        else if (r < 9) y = other_step(g, x, &rng);
        else y = tg_add(g->tp, x, x);                          /* one value twice */
        ck_assert_msg(y != NULL, "%s", tg_tape_error(g->tp));
        g->val[g->n++] = y;
        uint64_t e = tg_rng_next(&rng) % 8;
        int64_t at = (int64_t)(tg_rng_next(&rng) % (uint64_t)(g->R * g->C));
        if (e == 0) /* a read mid-chain */
            g->reads[g->n_reads++] = tg_tensor_get(g->val[tg_rng_next(&rng) % (uint64_t)g->n], at);
        if (e == 1) /* the caller writes an input that pending values read */
            tg_tensor_set(g->leaf[0], at, tg_rng_uniform(&rng));
    }
}

/* loss = sum over every value of sum(value * (k+1)/n): all of them get gradients. */
static tg_tensor *loss_of(graph *g) {
    tg_tensor *loss = NULL;
    for (int k = 0; k < g->n; k++) {
        tg_tensor *term = tg_scale(g->tp, tg_sum(g->tp, g->val[k]), (double)(k + 1) / g->n);
        loss = loss ? tg_add(g->tp, loss, term) : term;
    }
    return loss;
}

/* *worst = max(*worst, |a - b| / (1 + |b|)); NaN or Inf anywhere makes it NaN or Inf. */
static void rel_update(double *worst, double a, double b) {
    double d = tgt_diff(a, b) / (1 + fabs(b));
    if (!(d <= *worst)) *worst = d;
}

/* Fused and unfused runs of one program agree on every read, value and gradient. */
static void compare_runs(tg_dtype dt, int64_t R, int64_t C, uint64_t seed, double tol) {
    graph g[2];
    for (int f = 0; f < 2; f++) {
        graph_open(&g[f], dt, R, C, seed, f == 1);
        build(&g[f], seed * 31 + 7, 24);
        tg_tensor *loss = loss_of(&g[f]);
        ck_assert_msg(loss && tg_backward(g[f].tp, loss) == TG_OK, "%s", tg_tape_error(g[f].tp));
    }
    double worst = 0;
    ck_assert_int_eq(g[0].n_reads, g[1].n_reads);
    for (int i = 0; i < g[0].n_reads; i++)
        rel_update(&worst, g[1].reads[i], g[0].reads[i]);
    for (int k = 0; k < g[0].n; k++)
        for (int64_t i = 0; i < tg_tensor_numel(g[0].val[k]); i++)
            rel_update(&worst, tg_tensor_get(g[1].val[k], i), tg_tensor_get(g[0].val[k], i));
    for (int l = 0; l < LEAVES; l++)
        for (int64_t i = 0; i < tg_tensor_numel(g[0].leaf[l]); i++)
            rel_update(&worst, tg_tensor_grad_get(g[1].leaf[l], i),
                       tg_tensor_grad_get(g[0].leaf[l], i));
    ck_assert_msg(tgt_within(worst, tol), "seed %llu %s [%lld,%lld]: fused differs by %g",
                  (unsigned long long)seed, tg_dtype_name(dt), (long long)R, (long long)C, worst);
    graph_close(&g[0]);
    graph_close(&g[1]);
}

/* 120 random programs per dtype: odd shapes (padded tails), one row, rows
 * longer than a block (several blocks per row), groups large enough to be
 * split across two threads. Values agree to rounding;
 * a gradient summed from many contributions may add them in another order,
 * which float64 shows as 1e-12 at most and float32 as a few 1e-5 (so its
 * bound is loose: float64 is the check of the logic). */
START_TEST(random_programs_give_the_same_values_and_gradients_fused) {
    fuse_everything();
    static const int64_t shapes[][2] = {{5, 7}, {1, 33}, {6, 300}, {17, 16}, {96, 40}};
    for (uint64_t seed = 1; seed <= 120; seed++) {
        const int64_t *s = shapes[seed % 5];
        compare_runs(TG_F64, s[0], s[1], seed, 1e-12);
        compare_runs(TG_F32, s[0], s[1], seed + 1000, 5e-4);
    }
}
END_TEST

/* A chain without broadcasts or reuse gives the same bits fused: the same
 * kernels run on every element, tails padded the same way. */
START_TEST(a_plain_chain_gives_the_same_bits) {
    fuse_everything();
    tg_tensor *x[2], *y[2];
    tg_tape *tp[2];
    tg_rng rng = tg_rng_seeded(5);
    tg_tensor *x0 = leaf_like(TG_F32, 2, TGT_SHAPE(9, 37), &rng);
    for (int f = 0; f < 2; f++) {
        tp[f] = tg_tape_new();
        tg_tape_set_fusion(tp[f], f == 1);
        x[f] = tg_tensor_clone(x0, TG_F32);
        tg_tensor_set_requires_grad(x[f], true);
        tg_tensor *h = x[f];
        for (int i = 0; i < 12; i++)
            h = i % 3 == 0 ? tg_tanh(tp[f], h) : i % 3 == 1 ? tg_mul(tp[f], h, tg_sigmoid(tp[f], h))
                                                           : tg_scale(tp[f], h, 1.25);
        y[f] = h;
        ck_assert_int_eq(tg_backward(tp[f], tg_sum(tp[f], y[f])), TG_OK);
    }
    for (int64_t i = 0; i < tg_tensor_numel(x0); i++) {
        ck_assert(tg_tensor_get(y[0], i) == tg_tensor_get(y[1], i));
        ck_assert(tg_tensor_grad_get(x[0], i) == tg_tensor_grad_get(x[1], i));
    }
    for (int f = 0; f < 2; f++) {
        tg_tensor_free(x[f]);
        tg_tape_free(tp[f]);
    }
    tg_tensor_free(x0);
}
END_TEST

/* An LSTM-like cell on column windows of z [R, 4C]: short rows (C <= 128)
 * run several to a block, each row padded to a multiple of TG_VEC, the
 * windows gathered (strided), a [C] row broadcast in, and a [R, 1] column
 * whose sigmoid runs once per row (narrow) before it is broadcast. Nothing
 * is summed, so values and gradients are the same bits fused and unfused,
 * on one thread and split across two. */
static void gate_cell(tg_tape *tp, tg_tensor *const *in, int64_t C, tg_tensor **h) {
    tg_tensor *z = in[0], *s[4];
    for (int k = 0; k < 4; k++) s[k] = tg_slice(tp, z, 1, k * C, (k + 1) * C);
    tg_tensor *i = tg_sigmoid(tp, s[0]), *f = tg_sigmoid(tp, s[1]);
    tg_tensor *g = tg_tanh(tp, tg_mul(tp, s[2], tg_sigmoid(tp, in[2])));   /* row-constant */
    tg_tensor *o = tg_sigmoid(tp, tg_add(tp, s[3], in[3]));
    tg_tensor *c = tg_add(tp, tg_mul(tp, f, in[1]), tg_mul(tp, i, g));
    *h = tg_mul(tp, o, tg_tanh(tp, c));
}

START_TEST(short_strided_rows_give_the_same_bits) {
    fuse_everything();
    static const int64_t cols[] = {24, 64, 100};   /* padded rows; exact rows; one row a block */
    for (int ci = 0; ci < 3; ci++)
        for (int threads = 1; threads <= 2; threads++) {
            int64_t R = 13, C = cols[ci];
            tg_rng rng = tg_rng_seeded(11 + (uint64_t)ci);
            tg_tensor *src[4] = {leaf_like(TG_F32, 2, TGT_SHAPE(R, 4 * C), &rng),
                                 leaf_like(TG_F32, 2, TGT_SHAPE(R, C), &rng),
                                 leaf_like(TG_F32, 2, TGT_SHAPE(R, 1), &rng),
                                 leaf_like(TG_F32, 1, TGT_SHAPE(C), &rng)};
            tg_tensor *in[2][4], *h[2];
            tg_tape *tp[2];
            for (int f = 0; f < 2; f++) {
                tp[f] = tg_tape_new();
                tg_tape_set_fusion(tp[f], f == 1);
                tg_tape_set_threads(tp[f], threads);
                for (int k = 0; k < 4; k++) {
                    in[f][k] = tg_tensor_clone(src[k], TG_F32);
                    tg_tensor_set_requires_grad(in[f][k], k < 2);
                }
                gate_cell(tp[f], in[f], C, &h[f]);
                ck_assert_int_eq(tg_backward(tp[f], tg_sum(tp[f], h[f])), TG_OK);
            }
            for (int64_t e = 0; e < R * C; e++)
                ck_assert_msg(tg_tensor_get(h[0], e) == tg_tensor_get(h[1], e), "C %lld h[%lld]",
                              (long long)C, (long long)e);
            for (int k = 0; k < 2; k++)
                for (int64_t e = 0; e < tg_tensor_numel(src[k]); e++)
                    ck_assert_msg(tg_tensor_grad_get(in[0][k], e) == tg_tensor_grad_get(in[1][k], e),
                                  "C %lld %d threads: gradient of input %d [%lld]", (long long)C,
                                  threads, k, (long long)e);
            for (int f = 0; f < 2; f++) {
                for (int k = 0; k < 4; k++) tg_tensor_free(in[f][k]);
                tg_tape_free(tp[f]);
            }
            for (int k = 0; k < 4; k++) tg_tensor_free(src[k]);
        }
}
END_TEST

/* Eager semantics survive caller writes: y = tanh(x) is pending when x is
 * written, and a group that already closed still holds x. */
START_TEST(writing_an_input_after_the_op_does_not_change_its_result) {
    fuse_everything();
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_from(TG_F64, 1, TGT_SHAPE(3), TGT_VALS(0.1, 0.2, 0.3));
    tg_tensor *y = tg_tanh(tp, x);                     /* pending */
    tg_tensor_set(x, 0, 5.0);                          /* the open group must run first */
    tg_tensor *z = tg_mul(tp, y, x);
    ck_assert(fabs(tg_tensor_get(z, 0) - tanh(0.1) * 5.0) < 1e-15);
    tg_tensor *a = tg_tanh(tp, x), *b = tg_sigmoid(tp, a);
    ck_assert_ptr_nonnull(tg_sum(tp, b));              /* a non-fusible op closes the group */
    tg_tensor_fill(x, -1.0);                           /* the closed group still reads x */
    ck_assert(fabs(tg_tensor_get(a, 0) - tanh(5.0)) < 1e-15);   /* a was never stored */
    ck_assert(fabs(tg_tensor_get(a, 1) - tanh(0.2)) < 1e-15);
    float *raw = NULL;
    tg_tensor *w = tg_tensor_from(TG_F32, 1, TGT_SHAPE(2), TGT_VALS(1, 2));
    tg_tensor *v = tg_exp(tp, w);
    raw = tg_tensor_data(w);                           /* getting the pointer runs v's group */
    raw[0] = 3;
    ck_assert(fabs(tg_tensor_get(v, 0) - exp(1.0)) < 1e-6);
    tg_tensor_free(w);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(freeing_an_input_before_its_result_is_read_is_fine) {
    fuse_everything();
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_from(TG_F64, 1, TGT_SHAPE(2), TGT_VALS(1, 2));
    tg_tensor *y = tg_sigmoid(tp, tg_scale(tp, x, 2));
    tg_tensor_free(x);                                 /* y still pending */
    ck_assert(fabs(tg_tensor_get(y, 1) - 1 / (1 + exp(-4.0))) < 1e-15);
    tg_tape_free(tp);
}
END_TEST

/* Slices of a concrete tensor read it in place and send their gradient
 * straight to it; a fused value can be the loss of a non-scalar backward;
 * values seen by the user after backward are the forward's. */
START_TEST(slices_reshapes_and_backward_from_a_pending_value) {
    fuse_everything();
    for (int f = 0; f < 2; f++) {
        tg_tape *tp = tg_tape_new();
        tg_tape_set_fusion(tp, f == 1);
        tg_tensor *p = tg_tensor_from(TG_F64, 2, TGT_SHAPE(4, 4),
                                      TGT_VALS(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16));
        tg_tensor_set_requires_grad(p, true);
        tg_tensor *rows = tg_slice(tp, p, 0, 1, 3);            /* [2,4] rows 1..2 */
        tg_tensor *cols = tg_slice(tp, rows, 1, 2, 4);         /* [2,2] */
        tg_tensor *y = tg_mul(tp, tg_reshape(tp, cols, 3, TGT_SHAPE(1, 2, 2)), cols);
        tg_tensor *dy = tg_tensor_from(TG_F64, 3, TGT_SHAPE(1, 2, 2), TGT_VALS(0.5, 0.5, 0.5, 0.5));
        tg_tensor *two = tg_scale(tp, dy, 2);                  /* dy itself a pending value */
        ck_assert_int_eq(tg_backward_ex(tp, y, two), TG_OK);
        ck_assert(tg_tensor_get(y, 3) == 144.0);                /* 12 * 12 */
        double want[16] = {0, 0, 0, 0, 0, 0, 14, 16, 0, 0, 22, 24};
        ck_assert(tgt_within(tgt_max_diff_vals(p, (double[16]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                                               12, 13, 14, 15, 16}, 16), 0));
        for (int i = 0; i < 16; i++) ck_assert(tg_tensor_grad_get(p, i) == want[i]);
        tg_tensor_free(dy);
        tg_tensor_free(p);
        tg_tape_free(tp);
    }
}
END_TEST

/* The switch: per tape, by environment, and the answer is the same. */
START_TEST(the_switch_turns_fusion_off_per_tape_and_by_environment) {
    setenv("TG_FUSE", "0", 1);
    tg_tape *off = tg_tape_new();
    ck_assert(!tg_tape_fusion(off));
    unsetenv("TG_FUSE");
    tg_tape *on = tg_tape_new();
    ck_assert(tg_tape_fusion(on));
    tg_tape_set_fusion(on, false);
    ck_assert(!tg_tape_fusion(on));
    tg_tape_set_fusion(on, true);
    ck_assert(tg_tape_fusion(on));
    ck_assert(!tg_tape_fusion(NULL));
    tg_tape_free(off);
    tg_tape_free(on);
}
END_TEST

/* A chain longer than a group holds, across dtypes, with no_grad in between,
 * and two backward passes on one tape: all as unfused. */
START_TEST(long_chains_dtype_changes_no_grad_and_two_backwards) {
    fuse_everything();
    double got[2][4];
    for (int f = 0; f < 2; f++) {
        tg_tape *tp = tg_tape_new();
        tg_tape_set_fusion(tp, f == 1);
        tg_tensor *x = tg_tensor_from(TG_F64, 1, TGT_SHAPE(3), TGT_VALS(0.5, -0.25, 1));
        tg_tensor *x32 = tg_tensor_from(TG_F32, 1, TGT_SHAPE(3), TGT_VALS(0.5, -0.25, 1));
        tg_tensor_set_requires_grad(x, true);
        tg_tensor_set_requires_grad(x32, true);
        tg_tensor *h = x, *h32 = x32;
        for (int i = 0; i < 150; i++) {
            h = tg_tanh(tp, tg_scale(tp, h, 1.01));
            if (i % 7 == 0) h32 = tg_sigmoid(tp, h32);
            if (i % 50 != 10) continue;
            tg_no_grad_begin(tp);   /* a value no gradient flows through, mixed in */
            tg_tensor *side = tg_sigmoid(tp, h);
            tg_no_grad_end(tp);
            h = tg_add(tp, h, tg_scale(tp, side, 0.1));
        }
        ck_assert_int_eq(tg_backward(tp, tg_sum(tp, h)), TG_OK);
        ck_assert_int_eq(tg_backward(tp, tg_sum(tp, tg_mul(tp, h32, h32))), TG_OK);
        ck_assert_int_eq(tg_backward(tp, tg_sum(tp, h)), TG_OK);
        got[f][0] = tg_tensor_get(h, 2);
        got[f][1] = tg_tensor_grad_get(x, 1);
        got[f][2] = tg_tensor_grad_get(x32, 0);
        got[f][3] = tg_tensor_get(h32, 1);
        tg_tensor_free(x);
        tg_tensor_free(x32);
        tg_tape_free(tp);
    }
    for (int i = 0; i < 4; i++) ck_assert_msg(got[0][i] == got[1][i], "%d: %g vs %g", i, got[0][i], got[1][i]);
}
END_TEST

/* Kernels split across threads (large softmax, reductions, cross-entropy,
 * unfused and fused elementwise ops) give what one thread gives: the same
 * bits where lines are independent, rounding where partial sums meet. */
static void threaded_program(int threads, bool fused, double *out, int64_t n_out) {
    setenv("TG_PARALLEL_MIN", "4096", 1);   /* the default splits from 64K on */
    tg_tape *tp = tg_tape_new();
    tg_tape_set_threads(tp, threads);
    tg_tape_set_fusion(tp, fused);
    tg_rng rng = tg_rng_seeded(77);
    tg_tensor *x = leaf_like(TG_F64, 2, TGT_SHAPE(256, 300), &rng);
    tg_tensor *b = leaf_like(TG_F64, 1, TGT_SHAPE(300), &rng);
    tg_tensor *ids = tg_tensor_new(TG_I32, 1, TGT_SHAPE(256));
    for (int64_t i = 0; i < 256; i++) tg_tensor_set(ids, i, (double)(i * 7 % 300));
    tg_tensor *h = tg_tanh(tp, tg_add(tp, x, b));                 /* fused: a bias gradient */
    tg_tensor *s = tg_softmax(tp, h, -1), *l = tg_log_softmax(tp, h, 0);
    tg_tensor *r = tg_add(tp, tg_sum_axis(tp, s, 1, true), tg_mean_axis(tp, l, 1, true));
    tg_tensor *loss = tg_add(tp, tg_sum(tp, tg_mul(tp, h, r)), tg_cross_entropy(tp, h, ids));
    ck_assert_msg(loss && tg_backward(tp, loss) == TG_OK, "%s", tg_tape_error(tp));
    int64_t k = 0;
    out[k++] = tg_tensor_item(loss);
    for (int64_t i = 0; i < 256 * 300 && k < n_out; i += 97) out[k++] = tg_tensor_grad_get(x, i);
    for (int64_t i = 0; i < 300 && k < n_out; i += 7) out[k++] = tg_tensor_grad_get(b, i);
    tg_tensor_free(x);
    tg_tensor_free(b);
    tg_tensor_free(ids);
    tg_tape_free(tp);
}

START_TEST(kernels_split_across_threads_agree_with_one_thread) {
    enum { N = 900 };
    static double one[N], two[N];
    for (int fused = 0; fused < 2; fused++) {
        threaded_program(1, fused, one, N);
        threaded_program(2, fused, two, N);
        double worst = 0;
        for (int i = 0; i < N; i++) rel_update(&worst, two[i], one[i]);
        ck_assert_msg(tgt_within(worst, 1e-12), "fused %d: 2 threads differ by %g", fused, worst);
    }
}
END_TEST

/* Refusals of work worth splitting on an idle machine before it splits again. */
static int refusals(tg_tape *tp) {
    int n = 0;
    while (!tg__split(tp, TG__PARALLEL_MIN) && n < 100000) n++;
    return n;
}

/* A split region that waited for a descheduled thread makes the tape split
 * only large work for 64 decisions, 128 if the next split waits too, and so
 * on; splits that do not wait bring the backoff down again. */
START_TEST(a_contended_split_backs_off_and_tries_again) {
    unsetenv("TG_PARALLEL_MIN");
    tg_tape *tp = tg_tape_new();
    ck_assert(!tg__split(tp, TG__PARALLEL_MIN - 1));
    ck_assert(tg__split(tp, TG__PARALLEL_MIN));
    tg__split_timed(tp, 60e-6, 20e-6);   /* a thread woke in 40 us: fine */
    ck_assert(tg__split(tp, TG__PARALLEL_MIN));

    tg__split_timed(tp, 4e-3, 20e-6);    /* waited 4 ms for a thread */
    ck_assert(tg__split(tp, TG__PARALLEL_MIN_BUSY));   /* large work still splits */
    ck_assert_int_eq(refusals(tp), 63);
    tg__split_timed(tp, 4e-3, 20e-6);    /* contended again: twice as long */
    ck_assert_int_eq(refusals(tp), 128);
    tg__split_timed(tp, 60e-6, 20e-6);   /* two clean splits: back to the first wait */
    tg__split_timed(tp, 60e-6, 20e-6);
    tg__split_timed(tp, 4e-3, 20e-6);
    ck_assert_int_eq(refusals(tp), 64);
    tg_tape_free(tp);

    setenv("TG_PARALLEL_MIN", "100", 1);  /* the tests' setting */
    tp = tg_tape_new();
    ck_assert(tg__split(tp, 100) && !tg__split(tp, 99));
    tg_tape_free(tp);
}
END_TEST

Suite *suite_fuse(void) {
    Suite *s = suite_create("fuse");
    TCase *tc = tcase_create("fuse");
    tcase_set_timeout(tc, 300);   /* wall time: 20 s of CPU, a shared machine */
    tcase_add_test(tc, random_programs_give_the_same_values_and_gradients_fused);
    tcase_add_test(tc, a_plain_chain_gives_the_same_bits);
    tcase_add_test(tc, short_strided_rows_give_the_same_bits);
    tcase_add_test(tc, writing_an_input_after_the_op_does_not_change_its_result);
    tcase_add_test(tc, freeing_an_input_before_its_result_is_read_is_fine);
    tcase_add_test(tc, slices_reshapes_and_backward_from_a_pending_value);
    tcase_add_test(tc, the_switch_turns_fusion_off_per_tape_and_by_environment);
    tcase_add_test(tc, long_chains_dtype_changes_no_grad_and_two_backwards);
    tcase_add_test(tc, kernels_split_across_threads_agree_with_one_thread);
    tcase_add_test(tc, a_contended_split_backs_off_and_tries_again);
    suite_add_tcase(s, tc);
    return s;
}
