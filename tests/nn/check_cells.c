/* tests/nn/check_cells.c - cells as descriptors: a cell written here (outside
 * the library) runs through tg_rnn_forward like the built-in ones; NaN and Inf
 * in padded positions change nothing valid, for every cell, one and two
 * directions, stacked; errors name the layer, cell, direction and step;
 * time-major input; PyTorch-style dropout and defaults; import conventions. */
#include "check_nn.h"
#include "tg_test.h"

#include <stdio.h>
#include <unistd.h>

/* ---- a user's cell: the minimal gated unit --------------------------------------------- *
 *   f = s(x W_fx^T + h W_fh^T + b_f)
 *   n = a(x W_nx^T + (f * h) W_nh^T + b_n)
 *   h' = (1 - f) * h + f * n
 * weight_ih [2H, C] holds W_fx, W_nx; weight_hh [2H, H] holds W_fh, W_nh; bias [2H]. */
enum { MGU_W_IH, MGU_W_HH, MGU_B };

static tg_status mgu_describe(const tg_cell_cfg *cfg, tg_cell_layout *l) {
    int64_t C = cfg->input_size, H = cfg->hidden_size, G = 2 * H;
    tg_status st = tg_cell_layout_state(l, "h", H);
    if (st == TG_OK) st = tg_cell_layout_param(l, "weight_ih", TG_PARAM_KERNEL, 2, (int64_t[]){G, C});
    if (st == TG_OK) st = tg_cell_layout_param(l, "weight_hh", TG_PARAM_RECURRENT, 2, (int64_t[]){G, H});
    if (st == TG_OK) st = tg_cell_layout_param(l, "bias", TG_PARAM_BIAS, 1, &G);
    return st;
}

/* all steps at once: x W_ih^T + b [T*B, 2H]; the recurrent weight split once */
static tg_tensor *mgu_prepare(tg_cell_run *run, tg_tensor *x) {
    int64_t H = run->cfg->hidden_size;
    run->prep[0] = tg_slice(run->tp, run->param[MGU_W_HH], 0, 0, H);
    run->prep[1] = tg_slice(run->tp, run->param[MGU_W_HH], 0, H, 2 * H);
    tg_tensor *p = tg_matmul_ex(run->tp, x, run->param[MGU_W_IH], &(tg_matmul_opts){.trans_b = true});
    return tg_add(run->tp, p, run->param[MGU_B]);
}

static void mgu_step(const tg_cell_run *run, tg_tensor *in, tg_tensor *const *prev, tg_tensor *h_rec,
                     tg_tensor **next) {
    tg_tape *tp = run->tp;
    int64_t H = run->cfg->hidden_size;
    tg_matmul_opts tb = {.trans_b = true};
    tg_tensor *f = tg_sigmoid(tp, tg_add(tp, tg_gate_cols(tp, in, H, 0, 1),
                                         tg_matmul_ex(tp, h_rec, run->prep[0], &tb)));
    tg_tensor *n = tg_tanh(tp, tg_add(tp, tg_gate_cols(tp, in, H, 1, 1),
                                      tg_matmul_ex(tp, tg_mul(tp, f, h_rec), run->prep[1], &tb)));
    next[0] = tg_add(tp, tg_mul(tp, tg_affine(tp, f, -1, 1), prev[0]), tg_mul(tp, f, n));
}

static const tg_cell mgu_cell = {.name = "mgu", .describe = mgu_describe, .prepare = mgu_prepare,
                                 .step = mgu_step};

static const tg_cell *const every_cell[] = {
    &tg_cell_elman, &tg_cell_jordan, &tg_cell_lstm, &tg_cell_peephole_lstm,
    &tg_cell_prototype_lstm, &tg_cell_gru, &tg_cell_gru_reset_before, &mgu_cell,
};
enum { N_CELLS = sizeof every_cell / sizeof every_cell[0] };

/* ---- the user's cell through the layer ------------------------------------------------- */
typedef struct model { tg_rnn rnn; tg_tensor *x; const int64_t *lengths; } model;

static tg_tensor *model_loss(tg_tape *tp, void *user) {
    model *m = user;
    tg_rnn_state fin[4];
    tg_tensor *y = tg_rnn_forward(tp, &m->rnn, m->x, &(tg_rnn_call){.lengths = m->lengths}, fin, 4);
    /* outputs and every final state, so all of them are checked */
    tg_tensor *parts[5] = {tg_reshape(tp, y, 1, (int64_t[]){-1})};
    for (int s = 0; s < 4; s++) parts[1 + s] = tg_reshape(tp, fin[s].h, 1, (int64_t[]){-1});
    return tg_concat(tp, 5, parts, 0);
}

START_TEST(a_users_cell_runs_stacked_bidirectional_and_masked_with_correct_gradients) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(3);
    tg_rnn_opts o = tg_rnn_opts_default(&mgu_cell, 3, 4);
    o.num_layers = 2;
    o.bidirectional = true;
    o.return_sequences = true;
    model m = {.lengths = (int64_t[]){4, 2, 1}};
    ck_assert_int_eq(tg_rnn_init(&m.rnn, p, "enc", &o, TG_F64, &rng), TG_OK);
    ck_assert_int_eq(tg_params_count(p), 12);
    ck_assert_ptr_nonnull(tg_params_find(p, "enc.weight_hh_l1_reverse"));
    ck_assert_int_eq(tg_tensor_dim(tg_params_find(p, "enc.weight_ih_l1"), 1), 8);   /* 2H below */
    m.x = tg_tensor_new(TG_F64, 3, (int64_t[]){3, 4, 3});
    for (int64_t i = 0; i < 36; i++) tg_tensor_set(m.x, i, tg_rng_uniform(&rng) * 2 - 1);
    tg_tensor_set_requires_grad(m.x, true);
    ck_assert_int_eq(tg_params_add(p, "x", m.x), TG_OK);   /* checked like a parameter */
    tg_gradcheck_report r;
    ck_assert_int_eq(tg_gradcheck_params(p, model_loss, &m, 0, NULL, NULL, &r), TG_OK);
    ck_assert_msg(r.passed, "%s", r.message);
    ck_assert_int_eq(r.checked, 2 * (24 + 32 + 8) + 2 * (64 + 32 + 8) + 36);   /* both layers, x */
    tg_rnn_free(&m.rnn);
    tg_params_free(p);
    tg_tensor_free(m.x);
}
END_TEST

/* ---- NaN and Inf in padded positions ---------------------------------------------------- */
enum { NB = 3, NT = 5, NC = 3, NH = 4 };

typedef struct padded_run {
    double out[NB * NT * 2 * NH];
    double fin[4][NB * NH * 2];     /* h and c of every slot */
    double grads[64][256];          /* every parameter, then x */
    int n_grads;
} padded_run;

/* Runs the layer on x whose padded positions hold `pad`, with the loss
 * sum(w * y) + sum(w' * final states), and records every value and gradient. */
static void run_padded(tg_rnn *r, tg_params *p, bool use_mask, double pad, padded_run *out) {
    static const int64_t len[NB] = {5, 2, 3};
    static const int64_t start[NB] = {0, 3, 1};   /* with a mask: valid runs start here */
    uint8_t mask[NB * NT] = {0};
    tg_tape *tp = tg_tape_new();
    tg_rng rng = tg_rng_seeded(9);
    tg_tensor *x = tg_tensor_new(TG_F64, 3, (int64_t[]){NB, NT, NC});
    tg_tensor_set_requires_grad(x, true);
    for (int64_t b = 0; b < NB; b++)
        for (int64_t t = 0; t < NT; t++) {
            int64_t s0 = use_mask ? start[b] : 0;
            bool valid = t >= s0 && t < s0 + len[b];
            mask[b * NT + t] = valid;
            for (int64_t c = 0; c < NC; c++)
                tg_tensor_set(x, (b * NT + t) * NC + c, valid ? tg_rng_uniform(&rng) - 0.5 : pad);
        }
    tg_params_zero_grad(p);
    int slots = tg_rnn_num_states(r);
    tg_rnn_state fin[4];
    tg_rnn_call call = {.lengths = use_mask ? NULL : len, .mask = use_mask ? mask : NULL};
    tg_tensor *y = tg_rnn_forward(tp, r, x, &call, fin, 4);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tp));
    tg_rng wr = tg_rng_seeded(10);
    tg_tensor *w = tg_tape_tensor(tp, TG_F64, tg_tensor_ndim(y), tg_tensor_shape(y));
    for (int64_t i = 0; i < tg_tensor_numel(w); i++) tg_tensor_set(w, i, tg_rng_uniform(&wr) - 0.5);
    tg_tensor *loss = tg_sum(tp, tg_mul(tp, y, w));
    for (int s = 0; s < slots; s++)
        for (int k = 0; k < TG_CELL_MAX_STATES && fin[s].s[k]; k++)
            loss = tg_add(tp, loss, tg_sum(tp, tg_scale(tp, fin[s].s[k], 0.5 + s + k)));
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    for (int64_t i = 0; i < tg_tensor_numel(y); i++) out->out[i] = tg_tensor_get(y, i);
    for (int s = 0; s < slots; s++)
        for (int64_t i = 0; i < NB * NH; i++) {
            out->fin[s][i] = tg_tensor_get(fin[s].h, i);
            out->fin[s][NB * NH + i] = fin[s].c ? tg_tensor_get(fin[s].c, i) : 0;
        }
    out->n_grads = 0;
    for (int k = 0; k < tg_params_count(p); k++, out->n_grads++)
        for (int64_t i = 0; i < tg_tensor_numel(tg_params_at(p, k)); i++)
            out->grads[k][i] = tg_tensor_grad_get(tg_params_at(p, k), i);
    for (int64_t b = 0; b < NB; b++)   /* the input gradient where the input is valid */
        for (int64_t i = 0; i < NT * NC; i++)
            out->grads[out->n_grads][b * NT * NC + i] =
                mask[b * NT + i / NC] ? tg_tensor_grad_get(x, b * NT * NC + i) : 0;
    out->n_grads++;
    tg_tensor_free(x);
    tg_tape_free(tp);
}

/* Every number must be equal (NaN never equals anything: tgt_diff makes it Inf). */
static void assert_same(const double *a, const double *b, int n, const char *what, const char *cell,
                        int cfg) {
    for (int i = 0; i < n; i++)
        ck_assert_msg(tgt_diff(a[i], b[i]) == 0, "cell %s config %d: %s[%d] %g with NaN/Inf padding, "
                      "%g with zeros", cell, cfg, what, i, b[i], a[i]);
}

static void check_padding_never_leaks(const tg_cell *cell, int cfg) {
    tg_rnn_opts o = tg_rnn_opts_default(cell, NC, NH);
    o.return_sequences = true;
    o.bidirectional = cfg >= 1;
    o.num_layers = cfg >= 1 ? 2 : 1;
    bool use_mask = cfg == 2;
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(11);
    tg_rnn r;
    ck_assert_int_eq(tg_rnn_init(&r, p, "rnn", &o, TG_F64, &rng), TG_OK);
    static padded_run zero, bad;
    run_padded(&r, p, use_mask, 0, &zero);
    const double pads[2] = {NAN, INFINITY};
    for (int k = 0; k < 2; k++) {
        run_padded(&r, p, use_mask, pads[k], &bad);
        assert_same(zero.out, bad.out, NB * NT * 2 * NH, "output", cell->name, cfg);
        for (int s = 0; s < tg_rnn_num_states(&r); s++)
            assert_same(zero.fin[s], bad.fin[s], 2 * NB * NH, "final state", cell->name, cfg);
        for (int g = 0; g < zero.n_grads; g++)
            assert_same(zero.grads[g], bad.grads[g], 256, g + 1 < zero.n_grads ? tg_params_name(p, g) : "x grad",
                        cell->name, cfg);
    }
    tg_rnn_free(&r);
    tg_params_free(p);
}

/* configs: 0 one direction, lengths; 1 two stacked bidirectional layers,
 * lengths; 2 the same with a mask whose padding is at both ends */
START_TEST(nan_and_inf_padding_change_no_valid_output_state_or_gradient) {
    for (int c = 0; c < N_CELLS; c++)
        for (int cfg = 0; cfg < 3; cfg++) check_padding_never_leaks(every_cell[c], cfg);
}
END_TEST

/* ---- errors name the layer, the cell, the direction and the step ---------------------------- */
/* A cell with a shape bug that shows only above layer 0: weight_ih is [H, 3]
 * whatever the input width, and a step that returns a state of the wrong width. */
static tg_status broken_describe(const tg_cell_cfg *cfg, tg_cell_layout *l) {
    tg_status st = tg_cell_layout_state(l, "h", cfg->hidden_size);
    if (st == TG_OK)
        st = tg_cell_layout_param(l, "weight_ih", TG_PARAM_KERNEL, 2, (int64_t[]){cfg->hidden_size, 3});
    return st;
}
static tg_tensor *broken_prepare(tg_cell_run *run, tg_tensor *x) {
    return tg_matmul_ex(run->tp, x, run->param[0], &(tg_matmul_opts){.trans_b = true});
}
static void broken_step(const tg_cell_run *run, tg_tensor *in, tg_tensor *const *prev, tg_tensor *h_rec,
                        tg_tensor **next) {
    (void)prev;
    next[0] = tg_add(run->tp, in, h_rec);
}
static void narrow_step(const tg_cell_run *run, tg_tensor *in, tg_tensor *const *prev, tg_tensor *h_rec,
                        tg_tensor **next) {
    (void)in, (void)prev;
    next[0] = tg_sum_dim(run->tp, h_rec, 1, true);   /* [B, 1]: the wrong width */
}

START_TEST(errors_inside_a_cell_name_the_call_the_layer_the_direction_and_the_step) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(4);
    tg_tape *tp = tg_tape_new();
    tg_cell broken = {.name = "broken", .describe = broken_describe, .prepare = broken_prepare,
                      .step = broken_step};
    tg_rnn_opts o = tg_rnn_opts_default(&broken, 3, 4);
    o.num_layers = 2;
    o.bidirectional = true;
    tg_rnn r;
    ck_assert_int_eq(tg_rnn_init(&r, p, "enc", &o, TG_F64, &rng), TG_OK);
    tg_tensor *x = tg_tape_tensor(tp, TG_F64, 3, (int64_t[]){2, 5, 3});
    ck_assert_ptr_null(tg_rnn_forward(tp, &r, x, NULL, NULL, 0));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "matmul: inner dimensions differ: [10,8] x [4,3]^T "
                         "(in rnn 'enc': cell broken, layer 1)");
    tg_rnn_free(&r);
    /* the state a step returns is checked against the layout, naming the step */
    tg_tape_reset(tp);
    broken.step = narrow_step;
    o.num_layers = 1;
    ck_assert_int_eq(tg_rnn_init(&r, p, "dec", &o, TG_F64, &rng), TG_OK);
    x = tg_tape_tensor(tp, TG_F64, 3, (int64_t[]){2, 5, 3});
    ck_assert_ptr_null(tg_rnn_forward(tp, &r, x, NULL, NULL, 0));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "broken: the step's result: state h must be float64 [2,4]: "
                         "got float64 [2,1] (in rnn 'dec': cell broken, layer 0, step 0)");
    /* the scope is only for the layer's own calls */
    tg_tape_reset(tp);
    tg_tensor *a = tg_tape_tensor(tp, TG_F64, 2, (int64_t[]){2, 3});
    ck_assert_ptr_null(tg_matmul(tp, a, a));
    ck_assert_msg(strstr(tg_tape_error(tp), "(in ") == NULL, "%s", tg_tape_error(tp));
    /* and any code can name its own */
    tg_tape_reset(tp);
    a = tg_tape_tensor(tp, TG_F64, 2, (int64_t[]){2, 3});
    ck_assert_ptr_null(tg_tape_set_scope(tp, "my block"));
    ck_assert_ptr_null(tg_add(tp, a, tg_tape_tensor(tp, TG_F64, 1, (int64_t[]){2})));
    ck_assert_str_eq(tg_tape_set_scope(tp, NULL), "my block");
    ck_assert_tape_error(tp, TG_ERR_SHAPE, " (in my block)");
    tg_rnn_free(&r);
    tg_tape_free(tp);
    tg_params_free(p);
}
END_TEST

/* ---- time-major input, PyTorch dropout and defaults ------------------------------------------- */
START_TEST(time_major_input_gives_the_transposed_result) {
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_gru, 3, 4);
    o.bidirectional = true;
    o.return_sequences = true;
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(5);
    tg_rnn bf, tm;
    ck_assert_int_eq(tg_rnn_init(&bf, p, "a", &o, TG_F64, &rng), TG_OK);
    o.time_major = true;
    ck_assert_int_eq(tg_rnn_init(&tm, p, "b", &o, TG_F64, &rng), TG_OK);
    for (int i = 0; i < 8; i++) tg_tensor_copy(tg_params_at(p, 8 + i), tg_params_at(p, i));
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tape_tensor(tp, TG_F64, 3, (int64_t[]){2, 5, 3});
    for (int64_t i = 0; i < 30; i++) tg_tensor_set(x, i, tg_rng_uniform(&rng) - 0.5);
    tg_rnn_call call = {.lengths = (int64_t[]){5, 3}};
    tg_tensor *y = tg_rnn_forward(tp, &bf, x, &call, NULL, 0);
    tg_tensor *yt = tg_rnn_forward(tp, &tm, tg_transpose(tp, x, 0, 1), &call, NULL, 0);
    ck_assert_msg(yt != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_tensor_dim(yt, 0), 5);
    ck_assert(tgt_max_diff(tg_transpose(tp, yt, 0, 1), y, false) == 0);
    ck_assert_ptr_null(tg_rnn_forward(tp, &tm, tg_tape_tensor(tp, TG_F64, 3, (int64_t[]){5, 2, 2}),
                                      NULL, NULL, 0));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "gru: x must be float64 [T,B,3]");
    tg_tape_free(tp);
    tg_rnn_free(&bf);
    tg_rnn_free(&tm);
    tg_params_free(p);
}
END_TEST

/* Two linear Elman layers with W_ih = I, W_hh = 0: layer 1 sees layer 0's
 * output through PyTorch's dropout, a fresh mask at every step; a single
 * layer is never dropped (nothing above it). */
START_TEST(layer_dropout_acts_between_layers_with_a_fresh_mask_per_step) {
    enum { B = 2, T = 6, H = 8 };
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_elman, H, H);
    o.activation = TG_ACT_LINEAR;
    o.return_sequences = true;
    o.num_layers = 2;
    o.layer_dropout = 0.5;
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(6);
    tg_rnn r;
    ck_assert_int_eq(tg_rnn_init(&r, p, "r", &o, TG_F64, &rng), TG_OK);
    for (int i = 0; i < tg_params_count(p); i++) {
        tg_tensor *t = tg_params_at(p, i);
        tg_tensor_fill(t, 0);
        if (strstr(tg_params_name(p, i), "weight_ih"))
            for (int j = 0; j < H; j++) tg_tensor_set(t, j * H + j, 1);
    }
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tape_tensor(tp, TG_F64, 3, (int64_t[]){B, T, H});
    tg_tensor_fill(x, 1);
    tg_tensor *y = tg_rnn_forward(tp, &r, x, &(tg_rnn_call){.rng = &rng}, NULL, 0);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tp));
    int zeros = 0, twos = 0, differ = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int j = 0; j < H; j++) {
                double v = tg_tensor_get(y, (b * T + t) * H + j);
                ck_assert(v == 0 || v == 2);
                zeros += v == 0, twos += v == 2;
                if (t && v != tg_tensor_get(y, (b * T + t - 1) * H + j)) differ++;
            }
    ck_assert(zeros > 0 && twos > 0 && differ > 0);
    ck_assert_ptr_null(tg_rnn_forward(tp, &r, x, NULL, NULL, 0));
    ck_assert_tape_error(tp, TG_ERR_ARG, "elman: layer_dropout 0.5 in training needs call->rng");
    tg_tape_free(tp);
    tg_rnn_free(&r);
    tg_params_free(p);
}
END_TEST

START_TEST(pytorch_defaults_come_in_one_call) {
    tg_rnn_opts o = tg_rnn_opts_torch(&tg_cell_lstm, 3, 16);
    ck_assert(o.time_major && o.return_sequences && !o.unit_forget_bias && !o.bidirectional);
    ck_assert_int_eq(o.num_layers, 1);
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(7);
    tg_rnn r;
    ck_assert_int_eq(tg_rnn_init(&r, p, "lstm", &o, TG_F32, &rng), TG_OK);
    /* every weight and bias U(-1/sqrt(H), 1/sqrt(H)) = U(-0.25, 0.25), and the biases not zero */
    for (int i = 0; i < tg_params_count(p); i++) {
        tg_tensor *t = tg_params_at(p, i);
        double lo = 1, hi = -1;
        for (int64_t j = 0; j < tg_tensor_numel(t); j++) {
            double v = tg_tensor_get(t, j);
            lo = v < lo ? v : lo, hi = v > hi ? v : hi;
        }
        ck_assert_msg(lo >= -0.25 && hi <= 0.25 && lo < -0.15 && hi > 0.15, "%s: [%g, %g]",
                      tg_params_name(p, i), lo, hi);
    }
    tg_rnn_free(&r);
    tg_params_free(p);
}
END_TEST

/* ---- import conventions ------------------------------------------------------------------------- */
static tg_safetensors *saved(const char *path, tg_safetensors_writer *w) {
    ck_assert_int_eq(tg_safetensors_writer_save(w, path), TG_OK);
    tg_safetensors_writer_free(w);
    tg_safetensors *f = tg_safetensors_open(path);
    unlink(path);
    ck_assert_ptr_nonnull(f);
    return f;
}

static void make_layer(tg_rnn *r, tg_params *p, const tg_cell *cell, const char *name, uint64_t seed) {
    tg_rng rng = tg_rng_seeded(seed);
    tg_rnn_opts o = tg_rnn_opts_torch(cell, 3, 4);
    o.bidirectional = true;
    ck_assert_int_eq(tg_rnn_init(r, p, name, &o, TG_F32, &rng), TG_OK);
}

START_TEST(weights_import_only_into_the_cell_they_were_made_for) {
    char path[64];
    snprintf(path, sizeof path, "rnn_io_%d.safetensors", (int)getpid());
    tg_params *p = tg_params_new(), *q = tg_params_new();
    tg_rnn gru, gru2, before, lstm;
    make_layer(&gru, p, &tg_cell_gru, "enc", 1);
    make_layer(&gru2, q, &tg_cell_gru, "enc", 2);
    make_layer(&before, q, &tg_cell_gru_reset_before, "enc_b", 3);
    make_layer(&lstm, q, &tg_cell_lstm, "enc_l", 4);
    /* tapegrad's export carries the cell; the same cell imports it */
    tg_safetensors_writer *w = tg_safetensors_writer_new();
    ck_assert_int_eq(tg_rnn_export(&gru, w), TG_OK);
    tg_safetensors *f = saved(path, w);
    ck_assert_int_eq(tg_rnn_import(&gru2, f, NULL), TG_OK);
    for (int i = 0; i < 8; i++) ck_assert(tgt_max_diff(tg_params_at(q, i), tg_params_at(p, i), false) == 0);
    ck_assert_int_eq(tg_rnn_import(&before, f, "enc"), TG_ERR_ARG);
    ck_assert_msg(strstr(tg_last_error(), "written for cell gru (reset gate applied after") &&
                  strstr(tg_last_error(), "runs cell gru_reset_before (reset gate applied before"),
                  "%s", tg_last_error());
    tg_safetensors_close(f);
    /* a file with PyTorch's keys and no tag is PyTorch's: nn.GRU weights are reset-after */
    w = tg_safetensors_writer_new();
    for (int i = 0; i < tg_params_count(p); i++)
        ck_assert_int_eq(tg_safetensors_writer_add(w, tg_params_name(p, i), tg_params_at(p, i)), TG_OK);
    f = saved(path, w);
    ck_assert_int_eq(tg_rnn_import(&gru2, f, "enc"), TG_OK);
    ck_assert_int_eq(tg_rnn_import(&before, f, "enc"), TG_ERR_ARG);
    ck_assert_msg(strstr(tg_last_error(), "PyTorch nn.GRU's, cell gru (reset gate applied after") &&
                  strstr(tg_last_error(), "this layer runs cell gru_reset_before"), "%s", tg_last_error());
    ck_assert_int_eq(tg_rnn_import(&lstm, f, "enc"), TG_ERR_ARG);
    ck_assert_msg(strstr(tg_last_error(), "nn.GRU's") && strstr(tg_last_error(), "runs cell lstm"),
                  "%s", tg_last_error());
    tg_safetensors_close(f);
    /* one tensor by its key: the same check */
    tg_tensor *w_ih = tg_params_find(p, "enc.weight_ih_l0");
    ck_assert_int_eq(tg_rnn_import_torch(&before, "weight_ih_l0", w_ih), TG_ERR_ARG);
    ck_assert_msg(strstr(tg_last_error(), "reset gate applied before"), "%s", tg_last_error());
    ck_assert_int_eq(tg_rnn_import_torch(&gru2, "weight_ih_l0_reverse", w_ih), TG_OK);
    ck_assert_int_eq(tg_rnn_import_torch(&gru2, "weight_ih_l-1", w_ih), TG_ERR_ARG);
    tg_rnn_free(&gru), tg_rnn_free(&gru2), tg_rnn_free(&before), tg_rnn_free(&lstm);
    tg_params_free(p);
    tg_params_free(q);
}
END_TEST

/* ---- gradcheck over a registry ---------------------------------------------------------------- */
/* y = 2x with a VJP that claims 3: the check must fail and name the parameter. */
static int wrong_forward(tg_node *n) {
    for (int64_t i = 0; i < tg_tensor_numel(n->out); i++) tg_tensor_set(n->out, i, 2 * tg_tensor_get(n->in[0], i));
    return 0;
}
static int wrong_vjp(tg_node *n) {
    double *dx = tg_input_grad(n, 0);
    const double *dy = tg_output_grad(n);
    for (int64_t i = 0; dx && tg_tensor_dtype(n->out) == TG_F64 && i < tg_tensor_numel(n->out); i++)
        dx[i] += 3 * dy[i];
    return 0;
}
static const tg_op wrong_op = {.name = "wrong", .n_in = 1, .infer = tg_infer_same_as_input0,
                               .forward = wrong_forward, .vjp = wrong_vjp};

typedef struct lin_model { tg_linear fc; tg_tensor *x; bool wrong; } lin_model;
static tg_tensor *lin_loss(tg_tape *tp, void *user) {
    lin_model *m = user;
    tg_tensor *y = tg_linear_forward(tp, &m->fc, m->x);
    return m->wrong ? tg_apply(tp, &wrong_op, 1, &y, NULL) : y;
}

START_TEST(gradcheck_params_checks_a_whole_registry_and_restores_it) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(8);
    lin_model m = {.x = tg_tensor_new(TG_F32, 2, (int64_t[]){2, 3})};
    ck_assert_int_eq(tg_linear_init(&m.fc, p, "fc", 3, 2, TG_F32, &rng, NULL), TG_OK);
    tg_tensor_fill(m.fc.bias, 0.25);
    for (int i = 0; i < 6; i++) tg_tensor_set(m.x, i, 0.1 * i - 0.2);
    double w0 = tg_tensor_get(m.fc.weight, 4);
    tg_gradcheck_report r;
    ck_assert_int_eq(tg_gradcheck_params(p, lin_loss, &m, 1, &m.x, NULL, &r), TG_OK);
    ck_assert_msg(r.passed, "%s", r.message);
    ck_assert_int_eq(r.checked, 8);
    /* float32 again, values untouched, x too */
    ck_assert_int_eq(tg_tensor_dtype(m.fc.weight), TG_F32);
    ck_assert_int_eq(tg_tensor_dtype(m.x), TG_F32);
    ck_assert(tg_tensor_get(m.fc.weight, 4) == w0);
    /* a wrong VJP (float64 only) fails, naming the parameter */
    tg_params *q = tg_params_new();
    lin_model bad = {.x = tg_tensor_new(TG_F64, 2, (int64_t[]){2, 3}), .wrong = true};
    ck_assert_int_eq(tg_linear_init(&bad.fc, q, "head", 3, 2, TG_F64, &rng, NULL), TG_OK);
    for (int i = 0; i < 6; i++) tg_tensor_set(bad.x, i, 0.3 * i - 1);
    ck_assert_int_eq(tg_gradcheck_params(q, lin_loss, &bad, 0, NULL, NULL, &r), TG_OK);
    ck_assert(!r.passed);
    ck_assert_msg(strstr(r.message, "gradcheck: head.") != NULL, "%s", r.message);
    ck_assert_str_eq(tg_params_name(q, r.worst_input), strstr(r.message, "head.weight") ? "head.weight" : "head.bias");
    /* frozen parameters are not checked */
    tg_tensor_set_requires_grad(bad.fc.weight, false);
    ck_assert_int_eq(tg_gradcheck_params(q, lin_loss, &bad, 0, NULL, NULL, &r), TG_OK);
    ck_assert_int_eq(r.checked, 2);
    ck_assert_int_eq(tg_gradcheck_params(NULL, lin_loss, &bad, 0, NULL, NULL, &r), TG_ERR_ARG);
    ck_assert_int_eq(tg_gradcheck_params(q, lin_loss, &bad, 1, NULL, NULL, &r), TG_ERR_ARG);
    tg_tensor_free(m.x);
    tg_tensor_free(bad.x);
    tg_params_free(p);
    tg_params_free(q);
}
END_TEST

Suite *suite_nn_cells(void) {
    Suite *s = suite_create("nn_cells");
    TCase *tc = tcase_create("cells");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_users_cell_runs_stacked_bidirectional_and_masked_with_correct_gradients);
    tcase_add_test(tc, nan_and_inf_padding_change_no_valid_output_state_or_gradient);
    tcase_add_test(tc, errors_inside_a_cell_name_the_call_the_layer_the_direction_and_the_step);
    tcase_add_test(tc, time_major_input_gives_the_transposed_result);
    tcase_add_test(tc, layer_dropout_acts_between_layers_with_a_fresh_mask_per_step);
    tcase_add_test(tc, pytorch_defaults_come_in_one_call);
    tcase_add_test(tc, weights_import_only_into_the_cell_they_were_made_for);
    tcase_add_test(tc, gradcheck_params_checks_a_whole_registry_and_restores_it);
    suite_add_tcase(s, tc);
    return s;
}
