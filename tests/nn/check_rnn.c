/* tests/nn/check_rnn.c - recurrent cells and layers: worked single steps
 * (the lecture's LSTM table among them), masking and variable lengths against
 * separate unpadded runs, bidirectional merges, dropout masks shared across
 * time, parameter names and initialisers, PyTorch import, errors. */
#include "check_nn.h"

#include <stdio.h>

static void set_all(tg_tensor *t, const double *v) {
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, v[i]);
}

static double sigm(double v) { return 1 / (1 + exp(-v)); }

/* A layer with its own registry; free with rnn_done. */
typedef struct rnn_fixture {
    tg_params *p;
    tg_rnn r;
    tg_tape *tp;
} rnn_fixture;

static void rnn_make(rnn_fixture *f, const tg_rnn_opts *o, tg_dtype dt, uint64_t seed) {
    tg_rng rng = tg_rng_seeded(seed);
    f->p = tg_params_new();
    f->tp = tg_tape_new();
    ck_assert_int_eq(tg_rnn_init(&f->r, f->p, "rnn", o, dt, &rng), TG_OK);
}

static void rnn_done(rnn_fixture *f) {
    tg_tape_free(f->tp);
    tg_rnn_free(&f->r);
    tg_params_free(f->p);
}

/* Parameter `leaf` of layer 0's forward cell. */
static tg_tensor *P0(rnn_fixture *f, const char *leaf) {
    return tg_rnn_cell_param(tg_rnn_cell_at(&f->r, 0, 0), leaf);
}

static tg_tensor *random_x(tg_tape *tp, int64_t B, int64_t T, int64_t C, uint64_t seed) {
    tg_tensor *x = tg_tape_tensor(tp, TG_F64, 3, (int64_t[]){B, T, C});
    tg_rng rng = tg_rng_seeded(seed);
    for (int64_t i = 0; i < B * T * C; i++) tg_tensor_set(x, i, tg_rng_uniform(&rng) * 2 - 1);
    return x;
}

/* ---- worked single steps -------------------------------------------------------------- */
/* The lecture's 'putting it all together' table. Gates are made exactly with
 * hard_sigmoid(z) = 0.2 z + 0.5 (z in [-2.5, 2.5]): W_ih = W_hh = 0 and the
 * biases are the pre-activations. f (0.5, 0.9, 1.0) <- z (0, 2, 2.5);
 * i (0.6, 0.3, 0.9) <- z (0.5, -1, 2); o (0.3, 0.7, 1.0) <- z (-1, 1, 2.5);
 * candidate tanh(z) = (0.2, -0.5, 0.6) <- z = atanh(.).
 * c = f*c_prev + i*g = (0.5*0 + 0.6*0.2, 0.9*0 + 0.3*-0.5, 1.0*1 + 0.9*0.6)
 *   = (0.12, -0.15, 1.54);  h = o * tanh(c). */
START_TEST(lstm_step_reproduces_the_lecture_table) {
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_lstm, 2, 3);
    o.recurrent_activation = TG_ACT_HARD_SIGMOID;
    rnn_fixture f;
    rnn_make(&f, &o, TG_F64, 1);
    tg_rnn_cell *c = tg_rnn_cell_at(&f.r, 0, 0);
    tg_init_zeros(P0(&f, "weight_ih"));
    tg_init_zeros(P0(&f, "weight_hh"));
    tg_init_zeros(P0(&f, "bias_hh"));
    set_all(P0(&f, "bias_ih"), (double[]){0.5, -1, 2,                           /* i, order i f g o */
                                   0, 2, 2.5,                            /* f */
                                   atanh(0.2), atanh(-0.5), atanh(0.6),  /* g */
                                   -1, 1, 2.5});                         /* o */
    tg_tensor *x = nn_t(TG_F64, 1, 2, (double[]){0.7, -0.3}, false);
    tg_tensor *h0 = nn_t(TG_F64, 1, 3, (double[]){0.4, 0.1, -0.2}, false);
    tg_tensor *c0 = nn_t(TG_F64, 1, 3, (double[]){0, 0, 1}, false);
    tg_rnn_state prev = {.h = h0, .c = c0}, next;
    tg_tensor *h = tg_rnn_cell_step(f.tp, c, x, &prev, &next);
    ck_assert_msg(h != NULL, "%s", tg_tape_error(f.tp));
    ck_assert_tensor_near(next.c, ((double[]){0.12, -0.15, 1.54}), 3, 1e-12);
    ck_assert_tensor_near(h, ((double[]){0.3 * tanh(0.12), 0.7 * tanh(-0.15), 1.0 * tanh(1.54)}), 3,
                          1e-12);
    ck_assert_ptr_eq(next.h, h);
    tg_tensor_free(x);
    tg_tensor_free(h0);
    tg_tensor_free(c0);
    rnn_done(&f);
}
END_TEST

/* GRU, C = H = 1: r = s(a_r x + b_r + u_r h + c_r), z likewise,
 * after:  n = tanh(a_n x + b_n + r (u_n h + c_n))
 * before: n = tanh(a_n x + b_n + u_n (r h) + c_n);   h' = (1 - z) n + z h */
START_TEST(gru_step_follows_both_conventions) {
    const double a[3] = {0.5, -0.4, 0.9}, u[3] = {0.3, 0.8, -1.2}, b[3] = {0.1, 0.2, -0.3},
                 cb[3] = {-0.2, 0.05, 0.4}, x = 0.7, h = -0.6;
    double r = sigm(a[0] * x + b[0] + u[0] * h + cb[0]);
    double z = sigm(a[1] * x + b[1] + u[1] * h + cb[1]);
    double n_after = tanh(a[2] * x + b[2] + r * (u[2] * h + cb[2]));
    double n_before = tanh(a[2] * x + b[2] + u[2] * (r * h) + cb[2]);
    double want[2] = {(1 - z) * n_after + z * h, (1 - z) * n_before + z * h};
    for (int v = 0; v < 2; v++) {
        tg_rnn_opts o = tg_rnn_opts_default(v ? &tg_cell_gru_reset_before : &tg_cell_gru, 1, 1);
        rnn_fixture f;
        rnn_make(&f, &o, TG_F64, 2);
        tg_rnn_cell *c = tg_rnn_cell_at(&f.r, 0, 0);
        set_all(P0(&f, "weight_ih"), a);
        set_all(P0(&f, "weight_hh"), u);
        set_all(P0(&f, "bias_ih"), b);
        set_all(P0(&f, "bias_hh"), cb);
        tg_tensor *xt = nn_t(TG_F64, 1, 1, &x, false), *ht = nn_t(TG_F64, 1, 1, &h, false);
        tg_rnn_state next;
        tg_tensor *out = tg_rnn_cell_step(f.tp, c, xt, &(tg_rnn_state){.h = ht}, &next);
        ck_assert_tensor_near(out, &want[v], 1, 1e-14);
        ck_assert_ptr_null(next.c);
        tg_tensor_free(xt);
        tg_tensor_free(ht);
        rnn_done(&f);
    }
    ck_assert(fabs(want[0] - want[1]) > 1e-3);   /* the two conventions differ here */
}
END_TEST

/* Peephole, C = H = 1 (rows i f g o, P = (p_i, p_f, p_o)):
 * i = s(zi + p_i c), f = s(zf + p_f c), g = tanh(zg), c' = f c + i g,
 * o = s(zo + p_o c'), h' = o tanh(c'), z = a x + u h + b + cb */
START_TEST(peephole_lstm_step_feeds_the_cell_to_the_gates) {
    const double a[4] = {0.5, -0.4, 0.9, 0.2}, u[4] = {0.3, 0.8, -1.2, 0.6},
                 b[4] = {0.1, 0.2, -0.3, 0.05}, P[3] = {0.7, -0.5, 1.1}, x = 0.7, h = -0.6,
                 c = 0.8;
    double z[4];
    for (int k = 0; k < 4; k++) z[k] = a[k] * x + u[k] * h + b[k];
    double i = sigm(z[0] + P[0] * c), fg = sigm(z[1] + P[1] * c), g = tanh(z[2]);
    double c1 = fg * c + i * g, o = sigm(z[3] + P[2] * c1), h1 = o * tanh(c1);
    tg_rnn_opts o_ = tg_rnn_opts_default(&tg_cell_peephole_lstm, 1, 1);
    rnn_fixture f;
    rnn_make(&f, &o_, TG_F64, 3);
    tg_rnn_cell *cl = tg_rnn_cell_at(&f.r, 0, 0);
    set_all(P0(&f, "weight_ih"), a);
    set_all(P0(&f, "weight_hh"), u);
    set_all(P0(&f, "bias_ih"), b);
    tg_init_zeros(P0(&f, "bias_hh"));
    set_all(P0(&f, "peephole"), P);
    ck_assert_ptr_eq(tg_params_find(f.p, "rnn.peephole_l0"), P0(&f, "peephole"));
    tg_tensor *xt = nn_t(TG_F64, 1, 1, &x, false), *ht = nn_t(TG_F64, 1, 1, &h, false);
    tg_tensor *ct = nn_t(TG_F64, 1, 1, &c, false);
    tg_rnn_state next;
    tg_tensor *out = tg_rnn_cell_step(f.tp, cl, xt, &(tg_rnn_state){.h = ht, .c = ct}, &next);
    ck_assert_tensor_near(out, &h1, 1, 1e-14);
    ck_assert_tensor_near(next.c, &c1, 1, 1e-14);
    tg_tensor_free(xt);
    tg_tensor_free(ht);
    tg_tensor_free(ct);
    rnn_done(&f);
}
END_TEST

/* Prototype, C = H = 1 (rows i f o cand): i, f, o = s(a x + u s + b);
 * s~ = tanh(a_c x + u_c (o s) + b_c);  s' = f s + i s~ */
START_TEST(prototype_lstm_step_selects_the_state_before_the_candidate) {
    const double a[4] = {0.5, -0.4, 0.9, 0.2}, u[4] = {0.3, 0.8, -1.2, 0.6},
                 b[4] = {0.1, 0.2, -0.3, 0.05}, x = 0.7, s = -0.6;
    double i = sigm(a[0] * x + u[0] * s + b[0]), fg = sigm(a[1] * x + u[1] * s + b[1]);
    double o = sigm(a[2] * x + u[2] * s + b[2]);
    double cand = tanh(a[3] * x + u[3] * (o * s) + b[3]), s1 = fg * s + i * cand;
    tg_rnn_opts o_ = tg_rnn_opts_default(&tg_cell_prototype_lstm, 1, 1);
    rnn_fixture f;
    rnn_make(&f, &o_, TG_F64, 4);
    tg_rnn_cell *cl = tg_rnn_cell_at(&f.r, 0, 0);
    set_all(P0(&f, "weight_ih"), a);
    set_all(P0(&f, "weight_hh"), u);
    set_all(P0(&f, "bias_hh"), b);
    tg_init_zeros(P0(&f, "bias_ih"));
    tg_tensor *xt = nn_t(TG_F64, 1, 1, &x, false), *st = nn_t(TG_F64, 1, 1, &s, false);
    tg_rnn_state next;
    tg_tensor *out = tg_rnn_cell_step(f.tp, cl, xt, &(tg_rnn_state){.h = st}, &next);
    ck_assert_tensor_near(out, &s1, 1, 1e-14);
    tg_tensor_free(xt);
    tg_tensor_free(st);
    rnn_done(&f);
}
END_TEST

/* Elman h = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) with W_ih = [1, 2], W_hh = 0.5,
 * b_ih = 0.1, b_hh = -0.3 (both biases kept, as nn.RNN); Jordan feeds back
 * y = W_out u + b_out instead of h, through W_hh [H, O]. */
START_TEST(elman_and_jordan_steps_feed_back_the_hidden_state_or_the_output) {
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_elman, 2, 1);
    rnn_fixture f;
    rnn_make(&f, &o, TG_F64, 5);
    tg_rnn_cell *c = tg_rnn_cell_at(&f.r, 0, 0);
    ck_assert_ptr_eq(tg_params_find(f.p, "rnn.weight_hh_l0"), P0(&f, "weight_hh"));
    ck_assert_ptr_nonnull(tg_params_find(f.p, "rnn.bias_hh_l0"));
    set_all(P0(&f, "weight_ih"), (double[]){1, 2});
    set_all(P0(&f, "weight_hh"), (double[]){0.5});
    set_all(P0(&f, "bias_ih"), (double[]){0.1});
    set_all(P0(&f, "bias_hh"), (double[]){-0.3});
    tg_tensor *x = nn_t(TG_F64, 1, 2, (double[]){0.3, -0.2}, false);
    tg_tensor *h0 = nn_t(TG_F64, 1, 1, (double[]){0.8}, false);
    tg_rnn_state next;
    double want = tanh(0.3 - 0.4 + 0.4 + 0.1 - 0.3);
    ck_assert_tensor_near(tg_rnn_cell_step(f.tp, c, x, &(tg_rnn_state){.h = h0}, &next), &want, 1,
                          1e-15);
    rnn_done(&f);

    o = tg_rnn_opts_default(&tg_cell_jordan, 2, 1);
    o.output_size = 2;
    rnn_make(&f, &o, TG_F64, 6);
    c = tg_rnn_cell_at(&f.r, 0, 0);
    ck_assert_int_eq(tg_tensor_dim(P0(&f, "weight_hh"), 1), 2);   /* [H, O] */
    set_all(P0(&f, "weight_ih"), (double[]){1, 2});
    set_all(P0(&f, "weight_hh"), (double[]){0.5, -1});
    set_all(P0(&f, "bias_ih"), (double[]){0.1});
    set_all(P0(&f, "bias_hh"), (double[]){0});
    set_all(P0(&f, "weight_out"), (double[]){2, -3});
    set_all(P0(&f, "bias_out"), (double[]){0.5, 0});
    tg_tensor *y0 = nn_t(TG_F64, 1, 2, (double[]){0.8, 0.25}, false);
    double u = tanh(0.3 - 0.4 + 0.4 - 0.25 + 0.1);
    tg_tensor *y = tg_rnn_cell_step(f.tp, c, x, &(tg_rnn_state){.h = y0}, &next);
    ck_assert_tensor_near(y, ((double[]){2 * u + 0.5, -3 * u}), 2, 1e-15);
    ck_assert_ptr_eq(next.h, y);   /* the state is the output */
    tg_tensor_free(x);
    tg_tensor_free(h0);
    tg_tensor_free(y0);
    rnn_done(&f);
}
END_TEST

/* ---- masking and variable lengths ------------------------------------------------------ */
/* Copies x[b, t0 : t0+len] into a [1, len, C] tensor. */
static tg_tensor *one_sequence(tg_tape *tp, tg_tensor *x, int64_t b, int64_t t0, int64_t len) {
    int64_t T = tg_tensor_dim(x, 1), C = tg_tensor_dim(x, 2);
    tg_tensor *s = tg_tape_tensor(tp, TG_F64, 3, (int64_t[]){1, len, C});
    for (int64_t t = 0; t < len; t++)
        for (int64_t c = 0; c < C; c++)
            tg_tensor_set(s, t * C + c, tg_tensor_get(x, (b * T + t0 + t) * C + c));
    return s;
}

/* Padded batch with lengths (or a mask of valid runs starting at start[b])
 * must equal running each sequence alone: outputs at valid steps, zeros at
 * pads, and every final state. */
static void check_against_separate_runs(tg_rnn_opts o, bool use_mask) {
    enum { B = 4, T = 5, C = 3 };
    const int64_t len[B] = {5, 2, 0, 3}, start[B] = {0, 3, 0, 1};
    o.return_sequences = true;
    rnn_fixture f;
    rnn_make(&f, &o, TG_F64, 7);
    tg_tensor *x = random_x(f.tp, B, T, C, 8);
    uint8_t mask[B * T] = {0};
    for (int b = 0; b < B; b++)
        for (int t = 0; t < len[b]; t++) mask[b * T + start[b] + t] = 1;
    tg_rnn_call call = {.lengths = use_mask ? NULL : len, .mask = use_mask ? mask : NULL};
    int slots = o.num_layers * (o.bidirectional ? 2 : 1);
    tg_rnn_state fin[4], one[4];
    tg_tensor *y = tg_rnn_forward(f.tp, &f.r, x, &call, fin, 4);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(f.tp));
    int64_t D = tg_tensor_dim(y, 2);
    for (int b = 0; b < B; b++) {
        int64_t s0 = use_mask ? start[b] : 0;
        tg_tensor *yb = len[b] ? tg_rnn_forward(f.tp, &f.r, one_sequence(f.tp, x, b, s0, len[b]),
                                                NULL, one, 4)
                               : NULL;
        for (int64_t t = 0; t < T; t++)
            for (int64_t d = 0; d < D; d++) {
                bool valid = t >= s0 && t < s0 + len[b];
                double got = tg_tensor_get(y, (b * T + t) * D + d);
                double want = valid ? tg_tensor_get(yb, (t - s0) * D + d) : 0;
                ck_assert_msg(fabs(got - want) < 1e-12, "%s b=%d t=%d d=%d: %g vs %g",
                              tg_act_name(o.activation), b, (int)t, (int)d, got, want);
            }
        for (int s = 0; s < slots; s++) {
            int64_t H = tg_tensor_dim(fin[s].h, 1);
            for (int64_t j = 0; j < H; j++) {
                double want = len[b] ? tg_tensor_get(one[s].h, j) : 0;
                ck_assert(fabs(tg_tensor_get(fin[s].h, b * H + j) - want) < 1e-12);
                if (fin[s].c) {
                    want = len[b] ? tg_tensor_get(one[s].c, j) : 0;
                    ck_assert(fabs(tg_tensor_get(fin[s].c, b * H + j) - want) < 1e-12);
                }
            }
        }
    }
    rnn_done(&f);
}

START_TEST(padded_batches_equal_separate_runs_for_every_kind) {
    const tg_cell *cells[] = {&tg_cell_elman, &tg_cell_jordan, &tg_cell_lstm, &tg_cell_gru,
                              &tg_cell_peephole_lstm, &tg_cell_prototype_lstm,
                              &tg_cell_gru_reset_before};
    for (int k = 0; k < 7; k++) {
        tg_rnn_opts o = tg_rnn_opts_default(cells[k], 3, 4);
        check_against_separate_runs(o, false);
        o.bidirectional = true;
        o.num_layers = 2;
        check_against_separate_runs(o, false);
    }
}
END_TEST

START_TEST(masks_at_any_position_skip_those_steps_both_ways) {
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_gru_reset_before, 3, 4);
    o.bidirectional = true;
    check_against_separate_runs(o, true);
    o = tg_rnn_opts_default(&tg_cell_lstm, 3, 4);
    o.bidirectional = true;
    o.num_layers = 2;
    o.merge = TG_MERGE_SUM;
    check_against_separate_runs(o, true);
}
END_TEST

/* Without return_sequences the output is the last valid step; bidirectional:
 * [forward after the last valid step, backward after step 0]. */
START_TEST(last_output_is_the_last_valid_step_and_merges_apply) {
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_lstm, 3, 4);
    o.bidirectional = true;
    o.return_sequences = true;
    rnn_fixture f;
    rnn_make(&f, &o, TG_F64, 9);
    tg_tensor *x = random_x(f.tp, 2, 4, 3, 10);
    tg_rnn_call call = {.lengths = (int64_t[]){4, 2}};
    tg_tensor *seq = tg_rnn_forward(f.tp, &f.r, x, &call, NULL, 0);
    for (int m = TG_MERGE_CONCAT; m <= TG_MERGE_AVE; m++) {
        f.r.opts.merge = (tg_merge)m;
        f.r.opts.return_sequences = false;
        tg_tensor *last = tg_rnn_forward(f.tp, &f.r, x, &call, NULL, 0);
        ck_assert_ptr_nonnull(last);
        ck_assert_int_eq(tg_tensor_dim(last, 1), m == TG_MERGE_CONCAT ? 8 : 4);
        const int64_t lastt[2] = {3, 1};
        for (int b = 0; b < 2; b++)
            for (int j = 0; j < 4; j++) {
                double fw = tg_tensor_get(seq, (b * 4 + lastt[b]) * 8 + j);
                double bw = tg_tensor_get(seq, (b * 4 + 0) * 8 + 4 + j);
                double want = m == TG_MERGE_CONCAT ? fw : m == TG_MERGE_SUM ? fw + bw
                            : m == TG_MERGE_MUL  ? fw * bw : (fw + bw) / 2;
                ck_assert(fabs(tg_tensor_get(last, b * tg_tensor_dim(last, 1) + j) - want) < 1e-12);
                if (m == TG_MERGE_CONCAT)
                    ck_assert(fabs(tg_tensor_get(last, b * 8 + 4 + j) - bw) < 1e-12);
            }
    }
    rnn_done(&f);
}
END_TEST

/* ---- dropout: one mask per sequence ------------------------------------------------------ */
/* Elman with W_ih = I, W_hh = 0, b = 0, linear activation: h_t = keep * x_t, so
 * the outputs show the input mask; with W_ih = 0, W_hh = I and h_0 = 1,
 * h_t = keep^t shows the recurrent one. Either way a channel is zero at every
 * step or at none. */
static void check_mask_shared(bool recurrent) {
    enum { B = 3, T = 4, H = 6 };
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_elman, H, H);
    o.activation = TG_ACT_LINEAR;
    o.return_sequences = true;
    if (recurrent) o.recurrent_dropout = 0.5;
    else o.dropout = 0.5;
    rnn_fixture f;
    rnn_make(&f, &o, TG_F64, 11);
    tg_tensor *w_ih = P0(&f, "weight_ih"), *w_hh = P0(&f, "weight_hh");
    tg_init_zeros(w_ih);
    tg_init_zeros(w_hh);
    for (int j = 0; j < H; j++) tg_tensor_set(recurrent ? w_hh : w_ih, j * H + j, 1);
    tg_tensor *x = tg_tape_tensor(f.tp, TG_F64, 3, (int64_t[]){B, T, H});
    tg_tensor_fill(x, 1);
    tg_tensor *h0 = tg_tape_tensor(f.tp, TG_F64, 2, (int64_t[]){B, H});
    tg_tensor_fill(h0, 1);
    tg_rng rng = tg_rng_seeded(12);
    tg_rnn_call call = {.rng = &rng, .initial = &(tg_rnn_state){.h = h0}, .n_initial = 1};
    tg_tensor *y = tg_rnn_forward(f.tp, &f.r, x, &call, NULL, 0);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(f.tp));
    int dropped = 0, kept = 0;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) {
            bool zero = tg_tensor_get(y, (b * T + 0) * H + j) == 0;
            dropped += zero;
            kept += !zero;
            for (int t = 0; t < T; t++) {
                double want = zero ? 0 : recurrent ? pow(2, t + 1) : 2;
                ck_assert_msg(tg_tensor_get(y, (b * T + t) * H + j) == want, "b%d t%d j%d", b, t, j);
            }
        }
    ck_assert(dropped > 0 && kept > 0);
    tg_tape_set_training(f.tp, false);   /* inference: no dropout, no rng needed */
    y = tg_rnn_forward(f.tp, &f.r, x, &(tg_rnn_call){.initial = call.initial, .n_initial = 1}, NULL, 0);
    ck_assert(tg_tensor_get(y, 0) == 1);
    rnn_done(&f);
}

START_TEST(input_and_recurrent_dropout_use_one_mask_for_all_steps) {
    check_mask_shared(false);
    check_mask_shared(true);
}
END_TEST

/* ---- parameters ----------------------------------------------------------------------------- */
START_TEST(stacked_bidirectional_parameters_have_pytorch_like_names) {
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_lstm, 3, 4);
    o.num_layers = 2;
    o.bidirectional = true;
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(13);
    tg_rnn r;
    ck_assert_int_eq(tg_rnn_init(&r, p, "encoder.lstm", &o, TG_F32, &rng), TG_OK);
    ck_assert_int_eq(tg_params_count(p), 16);
    /* exactly nn.LSTM(3, 4, num_layers=2, bidirectional=True).state_dict()'s keys, in its order */
    const char *keys[16] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                            "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse",
                            "bias_hh_l0_reverse", "weight_ih_l1", "weight_hh_l1", "bias_ih_l1",
                            "bias_hh_l1", "weight_ih_l1_reverse", "weight_hh_l1_reverse",
                            "bias_ih_l1_reverse", "bias_hh_l1_reverse"};
    for (int i = 0; i < 16; i++) {
        char want[64];
        snprintf(want, sizeof want, "encoder.lstm.%s", keys[i]);
        ck_assert_str_eq(tg_params_name(p, i), want);
    }
    ck_assert_ptr_eq(tg_params_find(p, "encoder.lstm.weight_ih_l0"),
                     tg_rnn_cell_param(tg_rnn_cell_at(&r, 0, 0), "weight_ih"));
    ck_assert_ptr_eq(tg_params_find(p, "encoder.lstm.bias_hh_l0_reverse"),
                     tg_rnn_cell_param(tg_rnn_cell_at(&r, 0, 1), "bias_hh"));
    tg_tensor *w1 = tg_params_find(p, "encoder.lstm.weight_ih_l1");
    ck_assert_int_eq(tg_tensor_dim(w1, 0), 16);
    ck_assert_int_eq(tg_tensor_dim(w1, 1), 8);     /* concat of both directions */
    /* unit_forget_bias: bias_ih is 1 on the forget rows (H..2H), 0 elsewhere */
    for (int j = 0; j < 16; j++)
        ck_assert(tg_tensor_get(tg_params_find(p, "encoder.lstm.bias_ih_l1_reverse"), j) ==
                  (j >= 4 && j < 8 ? 1 : 0));
    /* W_hh [4H, H] starts with orthonormal columns */
    tg_tensor *whh = tg_params_find(p, "encoder.lstm.weight_hh_l0");
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            double dot = 0;
            for (int m = 0; m < 16; m++) dot += tg_tensor_get(whh, m * 4 + a) * tg_tensor_get(whh, m * 4 + b);
            ck_assert(fabs(dot - (a == b)) < 1e-5);
        }
    tg_rnn_free(&r);
    tg_params_free(p);
}
END_TEST

START_TEST(pytorch_parameters_import_by_name) {
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_gru, 2, 3);
    o.bidirectional = true;
    rnn_fixture f;
    rnn_make(&f, &o, TG_F32, 14);
    tg_tensor *w = tg_tensor_new(TG_F64, 2, (int64_t[]){9, 3});
    for (int i = 0; i < 27; i++) tg_tensor_set(w, i, i * 0.25);
    ck_assert_int_eq(tg_rnn_import_torch(&f.r, "weight_hh_l0_reverse", w), TG_OK);
    ck_assert(tg_tensor_get(tg_params_find(f.p, "rnn.weight_hh_l0_reverse"), 26) == 6.5f);
    ck_assert_int_eq(tg_rnn_import_torch(&f.r, "weight_ih_l0", w), TG_ERR_SHAPE);
    ck_assert_int_eq(tg_rnn_import_torch(&f.r, "weight_hh_l1", w), TG_ERR_ARG);
    ck_assert_int_eq(tg_rnn_import_torch(&f.r, "weight_hh_l0_forward", w), TG_ERR_ARG);
    ck_assert_int_eq(tg_rnn_import_torch(&f.r, "weight_hh", w), TG_ERR_ARG);
    ck_assert_int_eq(tg_rnn_import_torch(&f.r, "weight_hr_l0", w), TG_ERR_ARG);
    tg_tensor_free(w);
    rnn_done(&f);
}
END_TEST

START_TEST(bad_options_are_refused) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(15);
    tg_rnn r;
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_lstm, 3, 4);
    o.num_layers = 0;
    ck_assert_int_eq(tg_rnn_init(&r, p, "a", &o, TG_F32, &rng), TG_ERR_ARG);
    o = tg_rnn_opts_default(&tg_cell_lstm, 3, 4);
    o.dropout = 1;
    ck_assert_int_eq(tg_rnn_init(&r, p, "a", &o, TG_F32, &rng), TG_ERR_ARG);
    o = tg_rnn_opts_default(&tg_cell_lstm, 3, 4);
    o.layer_dropout = -0.1;
    ck_assert_int_eq(tg_rnn_init(&r, p, "a", &o, TG_F32, &rng), TG_ERR_ARG);
    o = tg_rnn_opts_default(&tg_cell_lstm, 3, 0);
    ck_assert_int_eq(tg_rnn_init(&r, p, "a", &o, TG_F32, &rng), TG_ERR_ARG);
    o = tg_rnn_opts_default(&tg_cell_lstm, 3, (int64_t)1 << 40);   /* 4H x H would overflow */
    ck_assert_int_eq(tg_rnn_init(&r, p, "a", &o, TG_F32, &rng), TG_ERR_ARG);
    o = tg_rnn_opts_default(NULL, 3, 4);
    ck_assert_int_eq(tg_rnn_init(&r, p, "a", &o, TG_F32, &rng), TG_ERR_ARG);
    ck_assert_msg(strstr(tg_last_error(), "opts.cell") != NULL, "%s", tg_last_error());
    o = tg_rnn_opts_default(&tg_cell_lstm, 3, 4);
    ck_assert_int_ne(tg_rnn_init(&r, p, "b", &o, TG_I32, &rng), TG_OK);   /* int32 weights */
    tg_params_free(p);
}
END_TEST

/* No fixed layer limit: twelve stacked bidirectional layers run, and their
 * states come back in an array of the size the layer reports. */
START_TEST(deep_stacks_have_no_layer_limit) {
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_gru, 2, 3);
    o.num_layers = 12;
    o.bidirectional = true;
    rnn_fixture f;
    rnn_make(&f, &o, TG_F64, 21);
    ck_assert_int_eq(tg_rnn_num_states(&f.r), 24);
    ck_assert_ptr_nonnull(tg_params_find(f.p, "rnn.weight_hh_l11_reverse"));
    ck_assert_ptr_null(tg_rnn_cell_at(&f.r, 12, 0));
    tg_rnn_state fin[24];
    tg_tensor *y = tg_rnn_forward(f.tp, &f.r, random_x(f.tp, 2, 3, 2, 22), NULL, fin, 24);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(f.tp));
    ck_assert_int_eq(tg_tensor_dim(y, 1), 6);
    for (int s = 0; s < 24; s++) ck_assert_ptr_nonnull(fin[s].h);
    rnn_done(&f);
}
END_TEST

/* ---- errors at run time ------------------------------------------------------------------- */
START_TEST(run_time_errors_name_the_layer_and_the_shapes) {
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_lstm, 3, 4);
    o.return_sequences = true;
    rnn_fixture f;
    rnn_make(&f, &o, TG_F64, 16);
    tg_tape *tp = f.tp;
    tg_tensor *bad = random_x(tp, 2, 5, 2, 1);
    ck_assert_ptr_null(tg_rnn_forward(tp, &f.r, bad, NULL, NULL, 0));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "lstm: x must be float64 [B,T,3] with B, T >= 1: got float64 [2,5,2] (in rnn 'rnn')");
    tg_tape_reset(tp);
    tg_tensor *x = random_x(tp, 2, 5, 3, 1);
    ck_assert_ptr_null(tg_rnn_forward(tp, &f.r, x, &(tg_rnn_call){.lengths = (int64_t[]){5, 6}}, NULL, 0));
    ck_assert_tape_error(tp, TG_ERR_ARG, "lstm: lengths[1] = 6 outside [0, 5]");
    tg_tape_reset(tp);
    x = random_x(tp, 2, 5, 3, 1);
    tg_tensor *h0 = tg_tape_tensor(tp, TG_F64, 2, (int64_t[]){3, 4});
    tg_rnn_call with_h0 = {.initial = &(tg_rnn_state){.h = h0}, .n_initial = 1};
    ck_assert_ptr_null(tg_rnn_forward(tp, &f.r, x, &with_h0, NULL, 0));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "lstm: initial[0]: state h must be float64 [2,4]: got float64 [3,4] (in rnn 'rnn': cell lstm, layer 0)");
    tg_tape_reset(tp);
    x = random_x(tp, 2, 5, 3, 1);
    with_h0.n_initial = 2;   /* the layer has one state slot */
    ck_assert_ptr_null(tg_rnn_forward(tp, &f.r, x, &with_h0, NULL, 0));
    ck_assert_tape_error(tp, TG_ERR_ARG, "lstm: call->n_initial is 2, the layer has 1 states");
    tg_tape_reset(tp);
    x = random_x(tp, 2, 5, 3, 1);
    tg_rnn_state fin[1];
    ck_assert_ptr_null(tg_rnn_forward(tp, &f.r, x, NULL, fin, 0));
    ck_assert_tape_error(tp, TG_ERR_ARG, "lstm: final has room for 0 states, the layer has 1");
    tg_tape_reset(tp);
    tg_rnn_state next;
    ck_assert_ptr_null(tg_rnn_cell_step(tp, tg_rnn_cell_at(&f.r, 0, 0), tg_tape_tensor(tp, TG_F32, 2, (int64_t[]){2, 3}), NULL, &next));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "lstm: x must be float64 [B,3]: got float32 [2,3]");
    tg_tape_reset(tp);
    x = random_x(tp, 2, 5, 3, 1);
    tg_rnn dropping = f.r;
    dropping.opts.recurrent_dropout = 0.5;
    ck_assert_ptr_null(tg_rnn_forward(tp, &dropping, x, NULL, NULL, 0));
    ck_assert_tape_error(tp, TG_ERR_ARG, "lstm: dropout 0.5 in training needs call->rng");
    tg_tape_reset(tp);
    tg_rnn none = {0};
    ck_assert_ptr_null(tg_rnn_forward(tp, &none, x, NULL, NULL, 0));
    ck_assert_tape_error(tp, TG_ERR_ARG, "rnn: layer is not initialised");
    /* a NULL input gives NULL (the error that produced it is already on the tape) */
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_rnn_forward(tp, &f.r, NULL, NULL, NULL, 0));
    /* an earlier error stays first but does not stop later, valid calls */
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_rnn_forward(tp, &f.r, random_x(tp, 2, 5, 2, 1), NULL, NULL, 0));
    f.r.opts.dropout = 0.3;
    tg_rng rng = tg_rng_seeded(1);
    ck_assert_ptr_nonnull(tg_rnn_forward(tp, &f.r, random_x(tp, 2, 5, 3, 1), &(tg_rnn_call){.rng = &rng}, NULL, 0));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "lstm: x must be");
    rnn_done(&f);
}
END_TEST

/* ---- sequences ------------------------------------------------------------------------------- */
START_TEST(pad_sequences_batches_different_lengths_differentiably) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = nn_t(TG_F64, 3, 2, (double[]){1, 2, 3, 4, 5, 6}, true);
    tg_tensor *b = nn_t(TG_F64, 1, 2, (double[]){7, 8}, true);
    int64_t len[2];
    tg_tensor *x = tg_pad_sequences(tp, 2, (tg_tensor *[]){a, b}, len);
    ck_assert_tensor_near(x, ((double[]){1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0}), 12, 0);
    ck_assert_int_eq(tg_tensor_ndim(x), 3);
    ck_assert(len[0] == 3 && len[1] == 1);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, x)), TG_OK);
    ck_assert(tg_tensor_grad_get(a, 5) == 1 && tg_tensor_grad_get(b, 1) == 1);
    tg_tensor *c = nn_t(TG_F64, 1, 3, (double[]){1, 2, 3}, false);
    ck_assert_ptr_null(tg_pad_sequences(tp, 2, (tg_tensor *[]){a, c}, NULL));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "pad_sequences: sequence 1 must be [T, C] like sequence 0: [1,3] vs [3,2]");
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(c);
    tg_tape_free(tp);
}
END_TEST

START_TEST(sequence_lengths_come_from_the_last_non_pad_id) {
    int64_t len[3];
    tg_tensor *ids = tg_tensor_from(TG_I32, 2, (int64_t[]){3, 4},
                                    (double[]){5, 6, 0, 0, 0, 0, 0, 0, 7, 0, 8, 0});
    ck_assert_int_eq(tg_seq_lengths(ids, 0, len), TG_OK);
    ck_assert(len[0] == 2 && len[1] == 0 && len[2] == 3);
    ck_assert_int_eq(tg_seq_lengths(ids, 0, NULL), TG_ERR_ARG);
    tg_tensor_free(ids);
}
END_TEST

/* A warm training step (forward, backward, reset) allocates nothing. */
START_TEST(a_warm_lstm_step_allocates_nothing) {
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_lstm, 3, 8);
    o.bidirectional = true;
    o.dropout = 0.2;
    rnn_fixture f;
    rnn_make(&f, &o, TG_F32, 17);
    uint64_t before = 0;
    for (int step = 0; step < 3; step++) {
        if (step == 2) before = tg_heap_allocs();
        tg_rng rng = tg_rng_seeded(3);
        tg_tensor *x = tg_tape_tensor(f.tp, TG_F32, 3, (int64_t[]){4, 6, 3});
        tg_tensor_fill(x, 0.5);
        tg_tensor *y = tg_rnn_forward(f.tp, &f.r, x,
                                      &(tg_rnn_call){.rng = &rng, .lengths = (int64_t[]){6, 2, 3, 1}}, NULL, 0);
        ck_assert_int_eq(tg_backward(f.tp, tg_sum(f.tp, y)), TG_OK);
        tg_tape_reset(f.tp);
    }
    ck_assert_int_eq(tg_heap_allocs(), before);
    rnn_done(&f);
}
END_TEST

Suite *suite_nn_rnn(void) {
    Suite *s = suite_create("nn_rnn");
    TCase *tc = tcase_create("rnn");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, lstm_step_reproduces_the_lecture_table);
    tcase_add_test(tc, gru_step_follows_both_conventions);
    tcase_add_test(tc, peephole_lstm_step_feeds_the_cell_to_the_gates);
    tcase_add_test(tc, prototype_lstm_step_selects_the_state_before_the_candidate);
    tcase_add_test(tc, elman_and_jordan_steps_feed_back_the_hidden_state_or_the_output);
    tcase_add_test(tc, padded_batches_equal_separate_runs_for_every_kind);
    tcase_add_test(tc, masks_at_any_position_skip_those_steps_both_ways);
    tcase_add_test(tc, last_output_is_the_last_valid_step_and_merges_apply);
    tcase_add_test(tc, input_and_recurrent_dropout_use_one_mask_for_all_steps);
    tcase_add_test(tc, stacked_bidirectional_parameters_have_pytorch_like_names);
    tcase_add_test(tc, pytorch_parameters_import_by_name);
    tcase_add_test(tc, bad_options_are_refused);
    tcase_add_test(tc, deep_stacks_have_no_layer_limit);
    tcase_add_test(tc, run_time_errors_name_the_layer_and_the_shapes);
    tcase_add_test(tc, pad_sequences_batches_different_lengths_differentiably);
    tcase_add_test(tc, sequence_lengths_come_from_the_last_non_pad_id);
    tcase_add_test(tc, a_warm_lstm_step_allocates_nothing);
    suite_add_tcase(s, tc);
    return s;
}
