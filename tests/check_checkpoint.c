/* tests/check_checkpoint.c - activation checkpointing (tg_checkpoint, tape.h;
 * tg_rnn_opts.checkpoint_every): gradients equal the plain tape's bit for bit
 * (memcmp) for LSTM and GRU layers, with dropout, with fusion as the test
 * setup has it and switched off; a user span with dropout inside; the arena
 * really holds less; gradcheck through a span; errors name the op. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "check_suites.h"
#include "tg_test.h"

/* ---- helpers -------------------------------------------------------------------- */
static tg_tensor *random_leaf(tg_dtype dt, int ndim, const int64_t *shape, uint64_t seed,
                              bool grad) {
    tg_tensor *t = tg_tensor_new(dt, ndim, shape);
    ck_assert_ptr_nonnull(t);
    tg_rng rng = tg_rng_seeded(seed);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, 2 * tg_rng_uniform(&rng) - 1);
    tg_tensor_set_requires_grad(t, grad);
    return t;
}

static size_t bytes_of(const tg_tensor *t) {
    return (size_t)tg_tensor_numel(t) * tg_dtype_size(tg_tensor_dtype(t));
}

/* A caller-owned copy of t's gradient bytes (NULL when it has none). */
static void *grad_copy(tg_tensor *t) {
    const void *g = tg_tensor_grad(t);
    if (!g) return NULL;
    void *c = malloc(bytes_of(t));
    ck_assert_ptr_nonnull(c);
    memcpy(c, g, bytes_of(t));
    return c;
}

/* The gradient of t equals want byte for byte (both missing counts as equal). */
static void assert_grad_bits(tg_tensor *t, const void *want, const char *what) {
    const void *g = tg_tensor_grad(t);
    ck_assert_msg((g == NULL) == (want == NULL), "%s: gradient %s with checkpointing", what,
                  g ? "appears" : "is missing");
    if (g) ck_assert_msg(memcmp(g, want, bytes_of(t)) == 0, "%s: gradient differs", what);
}

/* With the input projection inside the spans W_ih's gradient sums per span:
 * float32 rounding apart from the plain one, no more. */
static void assert_grad_close(tg_tensor *t, const float *want, const char *what) {
    const float *g = tg_tensor_grad(t);
    ck_assert_ptr_nonnull(g);
    double worst = 0;
    for (int64_t i = 0; i < tg_tensor_numel(t); i++)
        tgt_diff_update(&worst, g[i] / (1 + fabs(want[i])), want[i] / (1 + fabs(want[i])));
    ck_assert_msg(tgt_within(worst, 1e-5), "%s: gradient off by %g", what, worst);
}

/* ---- recurrent layers through tg_rnn_forward ------------------------------------------ */
typedef struct rnn_case {
    const tg_cell *cell;
    int layers;
    bool bidirectional, inputs_in_span;
    double dropout, recurrent_dropout, layer_dropout;
    int64_t k;
    int64_t T, B;   /* 0: T = 7, B = 8 */
    bool one_thread;
} rnn_case;

enum { C = 5, H = 32 };

/* loss = sum(y * w) + sum(h_final * v) of one run; backward; returns the output y's bytes. */
static void *run_layer(tg_tape *tp, tg_rnn *r, tg_tensor *x, tg_tensor *w, tg_tensor *v,
                       uint64_t seed) {
    tg_tape_reset(tp);
    tg_rng rng = tg_rng_seeded(seed);
    tg_rnn_state fin[4];
    tg_tensor *y = tg_rnn_forward(tp, r, x, &(tg_rnn_call){.rng = &rng}, fin, 4);
    tg_tensor *loss = tg_add(tp, tg_sum(tp, tg_mul(tp, y, w)), tg_sum(tp, tg_mul(tp, fin[0].s[0], v)));
    ck_assert_msg(loss != NULL, "%s", tg_tape_error(tp));
    ck_assert_msg(tg_backward(tp, loss) == TG_OK, "%s", tg_tape_error(tp));
    void *out = malloc(bytes_of(y));
    memcpy(out, tg_tensor_data(y), bytes_of(y));
    return out;
}

static void check_rnn_case(const rnn_case *rc, bool fusion) {
    int64_t T = rc->T ? rc->T : 7, B = rc->B ? rc->B : 8;
    tg_rng init = tg_rng_seeded(11);
    tg_rnn_opts o = tg_rnn_opts_torch(rc->cell, C, H);
    o.num_layers = rc->layers;
    o.bidirectional = rc->bidirectional;
    o.merge = TG_MERGE_SUM;   /* w below is [T, B, H] */
    o.dropout = rc->dropout;
    o.recurrent_dropout = rc->recurrent_dropout;
    o.layer_dropout = rc->layer_dropout;
    tg_params *p = tg_params_new();
    tg_rnn r;
    ck_assert_int_eq(tg_rnn_init(&r, p, "rnn", &o, TG_F32, &init), TG_OK);
    tg_tape *tp = tg_tape_new();
    tg_tape_set_fusion(tp, fusion);
    if (rc->one_thread) tg_tape_set_threads(tp, 1);
    tg_tensor *x = random_leaf(TG_F32, 3, TGT_SHAPE(T, B, C), 1, true);
    tg_tensor *w = random_leaf(TG_F32, 3, TGT_SHAPE(T, B, H), 2, false);
    tg_tensor *v = random_leaf(TG_F32, 2, TGT_SHAPE(B, H), 3, false);

    void *y_plain = run_layer(tp, &r, x, w, v, 5);
    int np = tg_params_count(p);
    void **want = calloc((size_t)np + 1, sizeof *want);
    for (int i = 0; i < np; i++) want[i] = grad_copy(tg_params_at(p, i));
    want[np] = grad_copy(x);
    tg_params_zero_grad(p);
    tg_tensor_zero_grad(x);

    r.opts.checkpoint_every = rc->k;
    r.opts.checkpoint_inputs = rc->inputs_in_span;
    void *y_ckpt = run_layer(tp, &r, x, w, v, 5);
    ck_assert_msg(memcmp(y_plain, y_ckpt, (size_t)T * B * H * sizeof(float)) == 0,
                  "outputs differ");
    for (int i = 0; i < np; i++) {
        const char *name = tg_params_name(p, i);
        /* with the projection inside the spans, what it reads (W_ih, the
         * biases an LSTM adds there) sums per span */
        if (rc->inputs_in_span && (strstr(name, "_ih") || strstr(name, "bias"))) {
            assert_grad_close(tg_params_at(p, i), want[i], name);
            continue;
        }
        assert_grad_bits(tg_params_at(p, i), want[i], name);
    }
    assert_grad_bits(x, want[np], "x");
    for (int i = 0; i <= np; i++) free(want[i]);
    free(want);
    free(y_plain);
    free(y_ckpt);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(v);
    tg_tape_free(tp);
    tg_rnn_free(&r);
    tg_params_free(p);
}

static const rnn_case rnn_cases[] = {
    {.cell = &tg_cell_lstm, .layers = 1, .k = 3},
    {.cell = &tg_cell_gru, .layers = 1, .k = 2},
    {.cell = &tg_cell_lstm, .layers = 1, .k = 64},   /* one span longer than the sequence */
    {.cell = &tg_cell_lstm, .layers = 2, .k = 3, .layer_dropout = 0.3, .dropout = 0.2,
     .recurrent_dropout = 0.25},
    {.cell = &tg_cell_gru, .layers = 2, .k = 4, .bidirectional = true, .layer_dropout = 0.3,
     .recurrent_dropout = 0.25},
    {.cell = &tg_cell_lstm, .layers = 1, .k = 1, .bidirectional = true},
    {.cell = &tg_cell_lstm, .layers = 2, .k = 3, .inputs_in_span = true, .recurrent_dropout = 0.2},
    /* Longer than one 256-row chunk of the deferred weight-gradient GEMMs
     * (ops/gemm_defer.c; 32 steps of B = 8): the spans' contributions must
     * be summed in the plain tape's chunks, not span by span. k not dividing
     * T, a chunk boundary inside a span, k = 1, both directions, GRU. One
     * thread: at these sizes a fused group's sum over rows (a bias gradient)
     * may be split across two threads or not as contention is timed, and its
     * rounding then differs from run to run even without checkpointing. */
    {.cell = &tg_cell_lstm, .layers = 1, .k = 5, .T = 70, .one_thread = true},
    {.cell = &tg_cell_lstm, .layers = 1, .k = 1, .T = 40, .one_thread = true},
    {.cell = &tg_cell_gru, .layers = 2, .k = 4, .T = 45, .bidirectional = true,
     .recurrent_dropout = 0.25, .one_thread = true},
    /* steps too wide to gather (B > 128 rows, half a chunk): each its own
     * GEMM, computed before its span's rows are reused */
    {.cell = &tg_cell_lstm, .layers = 1, .k = 2, .T = 5, .B = 160, .one_thread = true},
    {.cell = &tg_cell_gru, .layers = 1, .k = 1, .T = 3, .B = 130, .one_thread = true},
};

START_TEST(rnn_gradients_equal_the_plain_tape_bit_for_bit) {
    check_rnn_case(&rnn_cases[_i], true);
}
END_TEST

START_TEST(rnn_gradients_equal_the_plain_tape_bit_for_bit_without_fusion) {
    check_rnn_case(&rnn_cases[_i], false);
}
END_TEST

/* ---- a user span --------------------------------------------------------------------- */
/* in: x [4,16], W [16,16], u [4,16]. out[0] = tanh(x W); out[1] = dropout(sigmoid(out0) * u). */
static int user_span(tg_tape *tp, void *ctx, tg_tensor *const *in, int n, tg_tensor **out, int m) {
    (void)n;
    (void)m;
    tg_rng *rng = ctx;
    out[0] = tg_tanh(tp, tg_matmul(tp, in[0], in[1]));
    out[1] = tg_dropout(tp, tg_mul(tp, tg_sigmoid(tp, out[0]), in[2]), 0.4, rng);
    return out[1] ? 0 : -1;
}

/* loss = sum(out0 * out1) + sum(out1): both outputs receive gradients. */
static tg_tensor *user_loss(tg_tape *tp, tg_tensor **o) {
    return tg_add(tp, tg_sum(tp, tg_mul(tp, o[0], o[1])), tg_sum(tp, o[1]));
}

static void user_run(bool ckpt, bool fusion, tg_tensor *const *in, tg_rng *rng_after) {
    tg_tape *tp = tg_tape_new();
    tg_tape_set_fusion(tp, fusion);
    tg_rng rng = tg_rng_seeded(7);
    tg_tensor *o[2];
    if (ckpt)
        ck_assert_int_eq(tg_checkpoint(tp, user_span, &rng, &rng, in, 3, o, 2), TG_OK);
    else
        ck_assert_int_eq(user_span(tp, &rng, in, 3, o, 2), 0);
    *rng_after = rng;
    tg_tensor *loss = user_loss(tp, o);
    ck_assert_msg(loss != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    ck_assert(memcmp(&rng, rng_after, sizeof rng) == 0);   /* backward gave the stream back */
    tg_tape_free(tp);
}

START_TEST(user_span_with_dropout_inside_gives_the_plain_gradients) {
    for (int fusion = 0; fusion < 2; fusion++) {
        tg_tensor *in[3] = {random_leaf(TG_F32, 2, TGT_SHAPE(4, 16), 1, true),
                            random_leaf(TG_F32, 2, TGT_SHAPE(16, 16), 2, true),
                            random_leaf(TG_F32, 2, TGT_SHAPE(4, 16), 3, true)};
        tg_rng plain_rng, ckpt_rng;
        user_run(false, fusion, in, &plain_rng);
        void *want[3];
        for (int i = 0; i < 3; i++) {
            want[i] = grad_copy(in[i]);
            ck_assert_ptr_nonnull(want[i]);
            tg_tensor_zero_grad(in[i]);
        }
        user_run(true, fusion, in, &ckpt_rng);
        ck_assert(memcmp(&plain_rng, &ckpt_rng, sizeof plain_rng) == 0);
        for (int i = 0; i < 3; i++) {
            assert_grad_bits(in[i], want[i], "input");
            free(want[i]);
            tg_tensor_free(in[i]);
        }
    }
}
END_TEST

/* A chain of 32 ops on [64, 64]: unfused, the plain tape keeps every result;
 * the checkpointed one keeps the output only (and the sub-tape one span). */
static int long_chain(tg_tape *tp, void *ctx, tg_tensor *const *in, int n, tg_tensor **out, int m) {
    (void)ctx, (void)n, (void)m;
    tg_tensor *h = in[0];
    for (int i = 0; i < 32; i++) h = tg_tanh(tp, tg_scale(tp, h, 0.9));
    out[0] = h;
    return h ? 0 : -1;
}

START_TEST(a_checkpointed_chain_keeps_its_intermediates_out_of_the_arena) {
    tg_tensor *x = random_leaf(TG_F64, 2, TGT_SHAPE(64, 64), 4, true);
    uint64_t peak[2];
    for (int ckpt = 0; ckpt < 2; ckpt++) {
        tg_tape *tp = tg_tape_new();
        tg_tape_set_fusion(tp, false);
        tg_tensor *y;
        if (ckpt)
            ck_assert_int_eq(tg_checkpoint(tp, long_chain, NULL, NULL, &x, 1, &y, 1), TG_OK);
        else
            ck_assert_int_eq(long_chain(tp, NULL, &x, 1, &y, 1), 0);
        tg_tape_stats st;
        tg_tape_stats_get(tp, &st);
        peak[ckpt] = st.arena_activations;
        ck_assert_int_eq(tg_backward(tp, tg_sum(tp, y)), TG_OK);
        if (ckpt) ck_assert_uint_gt(tg_tape_checkpoint_peak(tp), 0);
        tg_tape_free(tp);
    }
    /* 64 results of 32 KiB each against one */
    ck_assert_msg(peak[1] * 16 < peak[0], "activations %llu with checkpointing, %llu without",
                  (unsigned long long)peak[1], (unsigned long long)peak[0]);
    tg_tensor_free(x);
}
END_TEST

/* f(x, W, u) = sum(out0 * out1) + sum(out1) through a span (dropout 0: gradcheck's
 * float64 run draws the same mask only if fn re-seeds, so none here). */
static int smooth_span(tg_tape *tp, void *ctx, tg_tensor *const *in, int n, tg_tensor **out, int m) {
    (void)ctx, (void)n, (void)m;
    out[0] = tg_tanh(tp, tg_matmul(tp, in[0], in[1]));
    out[1] = tg_mul(tp, tg_sigmoid(tp, out[0]), in[2]);
    return out[1] ? 0 : -1;
}

static tg_tensor *through_span(tg_tape *tp, tg_tensor *const *in, void *user) {
    (void)user;
    tg_tensor *o[2];
    if (tg_checkpoint(tp, smooth_span, NULL, NULL, in, 3, o, 2) != TG_OK) return NULL;
    return user_loss(tp, o);
}

START_TEST(gradcheck_passes_through_a_span) {
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = dt ? TG_F32 : TG_F64;
        tg_tensor *in[3] = {random_leaf(d, 2, TGT_SHAPE(3, 5), 1, true),
                            random_leaf(d, 2, TGT_SHAPE(5, 4), 2, true),
                            random_leaf(d, 2, TGT_SHAPE(3, 4), 3, true)};
        tg_gradcheck_report rep;
        ck_assert_int_eq(tg_gradcheck(through_span, NULL, 3, in, NULL, &rep), TG_OK);
        ck_assert_msg(rep.passed, "worst input %d [%lld]: %g vs %g", rep.worst_input,
                      (long long)rep.worst_index, rep.worst_analytic, rep.worst_numeric);
        for (int i = 0; i < 3; i++) tg_tensor_free(in[i]);
    }
}
END_TEST

/* A span has no vjp_graph (its backward re-runs fn on a sub-tape): tg_grad,
 * with or without create_graph, is refused by name (grad.h), never a crash or
 * a silently wrong result; tg_backward through the same span still works. */
START_TEST(tg_grad_through_a_span_is_refused_by_name) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *in[3] = {random_leaf(TG_F64, 2, TGT_SHAPE(3, 5), 1, true),
                        random_leaf(TG_F64, 2, TGT_SHAPE(5, 4), 2, true),
                        random_leaf(TG_F64, 2, TGT_SHAPE(3, 4), 3, true)};
    tg_grad_opts second = {.create_graph = true}, *opts[2] = {NULL, &second};
    for (int i = 0; i < 2; i++) {
        tg_tape_reset(tp);
        tg_tensor *loss = through_span(tp, in, NULL), *g = in[0];
        ck_assert_msg(loss != NULL, "%s", tg_tape_error(tp));
        ck_assert_int_eq(tg_grad(tp, loss, NULL, 1, in, &g, opts[i]), TG_ERR_STATE);
        ck_assert_ptr_null(g);
        ck_assert_tape_error(tp, TG_ERR_STATE,
                             "checkpoint_output: no double backward (vjp_graph) for this op");
    }
    tg_tape_reset(tp);
    tg_tensor *loss = through_span(tp, in, NULL);
    ck_assert_msg(loss && tg_backward(tp, loss) == TG_OK, "%s", tg_tape_error(tp));
    ck_assert_ptr_nonnull(tg_tensor_grad(in[0]));
    for (int i = 0; i < 3; i++) tg_tensor_free(in[i]);
    tg_tape_free(tp);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------ */
static int bad_span(tg_tape *tp, void *ctx, tg_tensor *const *in, int n, tg_tensor **out, int m) {
    (void)ctx, (void)n, (void)m;
    out[0] = tg_matmul(tp, in[0], in[0]);   /* [3,5] x [3,5] */
    return out[0] ? 0 : -1;
}

static int foreign_span(tg_tape *tp, void *ctx, tg_tensor *const *in, int n, tg_tensor **out, int m) {
    (void)tp, (void)in, (void)n, (void)m;
    out[0] = ctx;   /* a tensor of the outer tape */
    return 0;
}

START_TEST(errors_name_the_op) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = random_leaf(TG_F32, 2, TGT_SHAPE(3, 5), 1, true), *y[2];
    ck_assert_int_eq(tg_checkpoint(tp, NULL, NULL, NULL, &x, 1, y, 1), TG_ERR_ARG);
    ck_assert_tape_error(tp, TG_ERR_ARG, "checkpoint: fn is NULL");
    tg_tape_clear_error(tp);
    ck_assert_int_eq(tg_checkpoint(tp, smooth_span, NULL, NULL, &x, 1, y, 0), TG_ERR_ARG);
    ck_assert_tape_error(tp, TG_ERR_ARG, "checkpoint: needs room for m >= 1 outputs");
    tg_tape_clear_error(tp);
    tg_tensor *none[1] = {NULL};
    ck_assert_int_eq(tg_checkpoint(tp, smooth_span, NULL, NULL, none, 1, y, 1), TG_ERR_ARG);
    ck_assert_tape_error(tp, TG_ERR_ARG, "checkpoint: input 0 is NULL");
    tg_tape_clear_error(tp);
    ck_assert_int_eq(tg_checkpoint(tp, bad_span, NULL, NULL, &x, 1, y, 1), TG_ERR_SHAPE);
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "checkpoint: in the span: matmul: inner dimensions differ");
    tg_tape_clear_error(tp);
    tg_tensor *outer = tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(3, 5));
    ck_assert_int_eq(tg_checkpoint(tp, foreign_span, outer, NULL, &x, 1, y, 1), TG_ERR_ARG);
    ck_assert_tape_error(tp, TG_ERR_ARG, "checkpoint: output 0 [3,5] is another tape's");
    ck_assert_int_eq(tg_checkpoint(NULL, smooth_span, NULL, NULL, &x, 1, y, 1), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "checkpoint: tape is NULL");
    tg_tensor_free(x);
    tg_tape_free(tp);

    tg_rng rng = tg_rng_seeded(1);
    tg_rnn_opts o = tg_rnn_opts_torch(&tg_cell_lstm, C, H);
    o.checkpoint_every = -2;
    tg_params *p = tg_params_new();
    tg_rnn r;
    ck_assert_int_eq(tg_rnn_init(&r, p, "rnn", &o, TG_F32, &rng), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "lstm: checkpoint_every -2 must be >= 0");
    tg_rnn_free(&r);
    tg_params_free(p);
}
END_TEST

int main(void) {
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_set_timeout(tc, 120);
    int n = (int)(sizeof rnn_cases / sizeof rnn_cases[0]);
    tcase_add_loop_test(tc, rnn_gradients_equal_the_plain_tape_bit_for_bit, 0, n);
    tcase_add_loop_test(tc, rnn_gradients_equal_the_plain_tape_bit_for_bit_without_fusion, 0, n);
    tcase_add_test(tc, user_span_with_dropout_inside_gives_the_plain_gradients);
    tcase_add_test(tc, tg_grad_through_a_span_is_refused_by_name);
    tcase_add_test(tc, a_checkpointed_chain_keeps_its_intermediates_out_of_the_arena);
    tcase_add_test(tc, gradcheck_passes_through_a_span);
    tcase_add_test(tc, errors_name_the_op);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
