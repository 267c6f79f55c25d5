/* tests/nn/check_layers.c - Linear, LayerNorm, Embedding (+ vocabulary, GloVe),
 * SpatialDropout1D, Conv1D, pooling, activations, initialisers, names.
 * Expected values are worked by hand in the comments next to them. */
#include "check_nn.h"

#include <stdio.h>
#include <unistd.h>

static void set_all(tg_tensor *t, const double *v) {
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, v[i]);
}

/* ---- names and Linear -------------------------------------------------------------- */
START_TEST(parameter_names_are_dotted_paths_and_bounded) {
    char buf[64];
    ck_assert_str_eq(tg_param_name(buf, sizeof buf, "encoder.fc", "weight"), "encoder.fc.weight");
    ck_assert_str_eq(tg_param_name(buf, sizeof buf, NULL, "bias"), "bias");
    ck_assert_str_eq(tg_param_name(buf, sizeof buf, "", "bias"), "bias");
    ck_assert_ptr_null(tg_param_name(buf, 8, "abc", "weight"));   /* "abc.weight" needs 11 */
}
END_TEST

START_TEST(linear_registers_named_parameters_and_computes_xWt_plus_b) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(1);
    tg_linear fc;
    ck_assert_int_eq(tg_linear_init(&fc, p, "classifier.fc", 3, 2, TG_F64, &rng, NULL), TG_OK);
    ck_assert_int_eq(tg_params_count(p), 2);
    ck_assert_ptr_eq(tg_params_find(p, "classifier.fc.weight"), fc.weight);
    ck_assert_ptr_eq(tg_params_find(p, "classifier.fc.bias"), fc.bias);
    ck_assert_int_eq(tg_tensor_dim(fc.weight, 0), 2);   /* [out, in] as PyTorch */
    ck_assert_int_eq(tg_tensor_dim(fc.weight, 1), 3);
    set_all(fc.weight, (double[]){1, 2, 3, -1, 0, 1});
    set_all(fc.bias, (double[]){0.5, -0.5});
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = nn_t(TG_F64, 2, 3, (double[]){1, 1, 1, 2, 0, -1}, false);
    /* row 0: 1+2+3+0.5 = 6.5, -1+0+1-0.5 = -0.5; row 1: 2-3+0.5 = -0.5, -2-1-0.5 = -3.5 */
    ck_assert_tensor_near(tg_linear_forward(tp, &fc, x), ((double[]){6.5, -0.5, -0.5, -3.5}), 4, 1e-12);
    fc.act = TG_ACT_RELU;
    ck_assert_tensor_near(tg_linear_forward(tp, &fc, x), ((double[]){6.5, 0, 0, 0}), 4, 1e-12);
    /* a duplicate name fails and says so */
    tg_linear again;
    ck_assert_int_eq(tg_linear_init(&again, p, "classifier.fc", 3, 2, TG_F64, &rng, NULL), TG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "duplicate"));
    tg_tensor_free(x);
    tg_tape_free(tp);
    tg_params_free(p);
}
END_TEST

START_TEST(linear_applies_to_the_last_axis_and_reports_bad_shapes) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(2);
    tg_linear fc;
    ck_assert_int_eq(tg_linear_init(&fc, p, "fc", 0, 2, TG_F32, &rng, NULL), TG_ERR_ARG);
    ck_assert_int_eq(tg_linear_init(&fc, p, "fc", 3, 2, TG_F32, &rng,
                                    &(tg_linear_opts){.no_bias = true}), TG_OK);
    ck_assert_ptr_null(fc.bias);
    ck_assert_int_eq(tg_params_count(p), 1);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x3 = tg_tape_tensor(tp, TG_F32, 3, (int64_t[]){4, 5, 3});
    tg_tensor *y = tg_linear_forward(tp, &fc, x3);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tensor_ndim(y), 3);
    ck_assert_int_eq(tg_tensor_dim(y, 2), 2);
    tg_tensor *bad = tg_tape_tensor(tp, TG_F32, 2, (int64_t[]){4, 5});
    ck_assert_ptr_null(tg_linear_forward(tp, &fc, bad));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "matmul: inner dimensions differ: [4,5] x [2,3]^T");
    tg_tape_free(tp);
    tg_params_free(p);
}
END_TEST

/* ---- LayerNorm ------------------------------------------------------------------------ */
START_TEST(layer_norm_normalises_the_last_axis) {
    tg_params *p = tg_params_new();
    tg_layer_norm ln;
    ck_assert_int_eq(tg_layer_norm_init(&ln, p, "enc.ln", 4, 0, TG_F64), TG_OK);
    ck_assert_ptr_eq(tg_params_find(p, "enc.ln.weight"), ln.gamma);
    ck_assert_ptr_eq(tg_params_find(p, "enc.ln.bias"), ln.beta);
    ck_assert(ln.eps == 1e-5);
    set_all(ln.gamma, (double[]){1, 1, 2, 2});
    set_all(ln.beta, (double[]){0, 0, 1, 1});
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = nn_t(TG_F64, 2, 4, (double[]){1, 2, 3, 4, 5, 5, 5, 5}, false);
    /* row 0: mean 2.5, var (2.25+0.25+0.25+2.25)/4 = 1.25, d = (-1.5,-0.5,0.5,1.5);
     * row 1: d = 0, so y = beta */
    double s = sqrt(1.25 + 1e-5);
    double want[8] = {-1.5 / s, -0.5 / s, 2 * 0.5 / s + 1, 2 * 1.5 / s + 1, 0, 0, 1, 1};
    ck_assert_tensor_near(tg_layer_norm_forward(tp, &ln, x), want, 8, 1e-12);
    tg_tensor *bad = tg_tape_tensor(tp, TG_F64, 2, (int64_t[]){2, 3});
    ck_assert_ptr_null(tg_layer_norm_forward(tp, &ln, bad));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "layer_norm: x [..., C] with weight and bias [C] or NULL: "
                         "x [2,3] weight [4] bias [4]");
    /* the function form: no registry, optional weight and bias */
    tg_tape_reset(tp);
    tg_tensor *plain = tg_layer_norm_fn(tp, x, NULL, NULL, 1e-5);
    double want_plain[8] = {-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s, 0, 0, 0, 0};
    ck_assert_tensor_near(plain, want_plain, 8, 1e-12);
    ck_assert_tensor_near(tg_layer_norm_fn(tp, x, ln.gamma, ln.beta, 1e-5), want, 8, 1e-12);
    ck_assert_ptr_null(tg_layer_norm_fn(tp, x, NULL, NULL, NAN));
    ck_assert_tape_error(tp, TG_ERR_ARG, "layer_norm: eps must be finite and > 0: nan");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_layer_norm_fn(tp, x, NULL, ln.gamma, 0));
    ck_assert_tape_error(tp, TG_ERR_ARG, "layer_norm: eps must be finite and > 0: 0");
    tg_tensor_free(x);
    tg_tape_free(tp);
    tg_params_free(p);
}
END_TEST

/* ---- Embedding ---------------------------------------------------------------------- */
START_TEST(embedding_padding_row_stays_zero_and_gets_no_gradient) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(3);
    tg_embedding_layer e;
    tg_embedding_opts o = {.has_padding = true, .padding_idx = 0};
    ck_assert_int_eq(tg_embedding_layer_init(&e, p, "emb", 5, 3, TG_F64, &rng, &o), TG_OK);
    for (int j = 0; j < 3; j++) ck_assert(tg_tensor_get(e.weight, j) == 0);
    ck_assert(tg_tensor_get(e.weight, 3) != 0);
    tg_tape *tp = tg_tape_new();
    int64_t shape[2] = {2, 3};
    tg_tensor *idx = tg_tensor_from(TG_I32, 2, shape, (double[]){2, 0, 4, 0, 0, 2});
    tg_tensor *y = tg_embedding_layer_forward(tp, &e, idx);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tensor_dim(y, 2), 3);
    for (int j = 0; j < 3; j++) {
        ck_assert(tg_tensor_get(y, 0 * 3 + j) == tg_tensor_get(e.weight, 2 * 3 + j));
        ck_assert(tg_tensor_get(y, 1 * 3 + j) == 0);
        ck_assert(tg_tensor_get(y, 3 * 3 + j) == 0);
    }
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, y)), TG_OK);
    for (int j = 0; j < 3; j++) {
        ck_assert(tg_tensor_grad_get(e.weight, 0 * 3 + j) == 0);   /* padding row */
        ck_assert(tg_tensor_grad_get(e.weight, 2 * 3 + j) == 2);   /* looked up twice */
        ck_assert(tg_tensor_grad_get(e.weight, 4 * 3 + j) == 1);
    }
    tg_tensor_free(idx);
    tg_tape_free(tp);
    tg_params_free(p);
}
END_TEST

START_TEST(frozen_embedding_gets_no_gradient_but_stays_registered) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(4);
    tg_embedding_layer e;
    ck_assert_int_eq(tg_embedding_layer_init(&e, p, "emb", 4, 2, TG_F32, &rng,
                                             &(tg_embedding_opts){.freeze = true}), TG_OK);
    ck_assert_ptr_eq(tg_params_find(p, "emb.weight"), e.weight);
    ck_assert(!tg_tensor_requires_grad(e.weight));
    ck_assert_int_eq(e.padding_idx, -1);
    tg_tape *tp = tg_tape_new();
    int64_t n = 2;
    tg_tensor *idx = tg_tensor_from(TG_I32, 1, &n, (double[]){1, 3});
    tg_tensor *y = tg_embedding_layer_forward(tp, &e, idx);
    ck_assert_ptr_nonnull(y);
    ck_assert(tg_tensor_get(y, 0) == tg_tensor_get(e.weight, 2));
    tg_embedding_layer_freeze(&e, false);
    ck_assert(tg_tensor_requires_grad(e.weight));
    /* an index outside [0, V) is the op's error */
    tg_tensor *bad = tg_tensor_from(TG_I32, 1, &n, (double[]){1, 4});
    ck_assert_ptr_null(tg_embedding_layer_forward(tp, &e, bad));
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_INDEX);
    ck_assert_ptr_nonnull(strstr(tg_tape_error(tp), "embedding"));
    ck_assert_int_eq(tg_embedding_layer_init(&e, p, "emb2", 4, 2, TG_F32, &rng,
                                             &(tg_embedding_opts){.has_padding = true,
                                                                  .padding_idx = 4}),
                     TG_ERR_ARG);
    tg_tensor_free(idx);
    tg_tensor_free(bad);
    tg_tape_free(tp);
    tg_params_free(p);
}
END_TEST

/* ---- vocabulary and GloVe ----------------------------------------------------------- */
START_TEST(vocabulary_has_fixed_specials_and_maps_unknown_words_to_unk) {
    tg_vocab *v = tg_vocab_new();
    ck_assert_int_eq(tg_vocab_size(v), 4);
    ck_assert_int_eq(tg_vocab_id(v, "<pad>"), TG_TOKEN_PAD);
    ck_assert_int_eq(tg_vocab_id(v, "<eos>"), TG_TOKEN_EOS);
    ck_assert_int_eq(tg_vocab_id(v, "zebra"), TG_TOKEN_UNK);
    ck_assert(!tg_vocab_contains(v, "zebra"));
    char w[32];
    for (int i = 0; i < 500; i++) {   /* grows past several rehashes */
        snprintf(w, sizeof w, "w%d", i);
        ck_assert_int_eq(tg_vocab_add(v, w), 4 + i);
    }
    ck_assert_int_eq(tg_vocab_add(v, "w7"), 11);   /* existing word keeps its id */
    for (int i = 0; i < 500; i++) {
        snprintf(w, sizeof w, "w%d", i);
        ck_assert_int_eq(tg_vocab_id(v, w), 4 + i);
        ck_assert_str_eq(tg_vocab_word(v, 4 + i), w);
    }
    ck_assert_ptr_null(tg_vocab_word(v, 504));
    ck_assert_ptr_null(tg_vocab_word(v, -1));
    ck_assert_int_eq(tg_vocab_add(v, NULL), -1);
    tg_vocab_free(v);
}
END_TEST

static void write_file(char *path, const char *text) {
    strcpy(path, "/tmp/tg_glove_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

typedef struct glove_fixture {
    tg_params *p;
    tg_embedding_layer e;
    tg_vocab *v;
    char path[64];
} glove_fixture;

static void glove_setup(glove_fixture *g, const char *text) {
    tg_rng rng = tg_rng_seeded(5);
    g->p = tg_params_new();
    ck_assert_int_eq(tg_embedding_layer_init(&g->e, g->p, "emb", 8, 3, TG_F64, &rng,
                                             &(tg_embedding_opts){.has_padding = true}), TG_OK);
    g->v = tg_vocab_new();
    ck_assert_int_eq(tg_vocab_add(g->v, "cat"), 4);
    ck_assert_int_eq(tg_vocab_add(g->v, "bird"), 5);
    write_file(g->path, text);
}

static void glove_teardown(glove_fixture *g) {
    unlink(g->path);
    tg_vocab_free(g->v);
    tg_params_free(g->p);
}

static const char *const GLOVE = "the 0.1 0.2 0.3\ncat 1 2 3\n\ndog -1 -2 -3e0\n";

START_TEST(glove_fills_known_rows_and_sets_unk_to_the_mean) {
    glove_fixture g;
    glove_setup(&g, GLOVE);
    double bird[3];
    for (int j = 0; j < 3; j++) bird[j] = tg_tensor_get(g.e.weight, 5 * 3 + j);
    tg_glove_report r;
    ck_assert_int_eq(tg_embedding_layer_load_glove(&g.e, g.v, g.path, NULL, &r), TG_OK);
    ck_assert_str_eq(r.message, "");
    ck_assert_int_eq(r.lines, 4);      /* the blank line is read and skipped */
    ck_assert_int_eq(r.loaded, 1);     /* cat */
    ck_assert_int_eq(r.skipped, 2);    /* the, dog: not in the vocabulary */
    ck_assert_int_eq(r.missing, 1);    /* bird */
    double head[6] = {0, 0, 0,                     /* pad stays zero                  */
                      0.1 / 3, 0.2 / 3, 0.3 / 3};  /* UNK = mean of the three vectors */
    for (int j = 0; j < 6; j++) ck_assert(fabs(tg_tensor_get(g.e.weight, j) - head[j]) < 1e-12);
    for (int j = 0; j < 3; j++) {
        ck_assert(tg_tensor_get(g.e.weight, 4 * 3 + j) == j + 1);    /* cat = (1,2,3) */
        ck_assert(tg_tensor_get(g.e.weight, 5 * 3 + j) == bird[j]);  /* bird untouched */
    }
    ck_assert_int_eq(tg_vocab_id(g.v, "dog"), TG_TOKEN_UNK);
    glove_teardown(&g);
}
END_TEST

START_TEST(glove_can_add_file_words_while_rows_remain) {
    glove_fixture g;
    glove_setup(&g, GLOVE);
    tg_glove_report r;
    ck_assert_int_eq(tg_embedding_layer_load_glove(&g.e, g.v, g.path,
                                                   &(tg_glove_opts){.add_words = true}, &r), TG_OK);
    ck_assert_int_eq(tg_vocab_id(g.v, "the"), 6);
    ck_assert_int_eq(tg_vocab_id(g.v, "dog"), 7);
    ck_assert_int_eq(r.loaded, 3);
    ck_assert_int_eq(r.skipped, 0);
    ck_assert(tg_tensor_get(g.e.weight, 7 * 3 + 2) == -3);
    ck_assert(fabs(tg_tensor_get(g.e.weight, 6 * 3 + 0) - 0.1) < 1e-15);
    glove_teardown(&g);
}
END_TEST

START_TEST(glove_reports_a_short_line_with_file_and_line) {
    glove_fixture g;
    glove_setup(&g, "the 0.1 0.2 0.3\ncat 1 2\ndog 1 2 3\n");
    tg_glove_report r;
    ck_assert_int_eq(tg_embedding_layer_load_glove(&g.e, g.v, g.path, NULL, &r), TG_ERR_FORMAT);
    ck_assert_int_eq(r.error_line, 2);
    char want[160];
    snprintf(want, sizeof want, "glove: %s:2: expected 3 numbers after 'cat', found 2", g.path);
    ck_assert_str_eq(r.message, want);
    glove_teardown(&g);
}
END_TEST

START_TEST(glove_reports_a_bad_number_and_a_missing_file) {
    glove_fixture g;
    glove_setup(&g, "cat 1 2 3 4\n");
    tg_glove_report r;
    ck_assert_int_eq(tg_embedding_layer_load_glove(&g.e, g.v, g.path, NULL, &r), TG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(r.message, ":1: expected 3 numbers after 'cat', found 4"));
    unlink(g.path);
    write_file(g.path, "cat 1 2 3\nbird 1 x2 3\n");
    ck_assert_int_eq(tg_embedding_layer_load_glove(&g.e, g.v, g.path, NULL, &r), TG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(r.message, ":2: value 2 after 'bird' is not a number: 'x2'"));
    unlink(g.path);
    write_file(g.path, "cat 1 nan 3\n");
    ck_assert_int_eq(tg_embedding_layer_load_glove(&g.e, g.v, g.path, NULL, &r), TG_ERR_FORMAT);
    ck_assert_int_eq(tg_embedding_layer_load_glove(&g.e, g.v, "/nonexistent/vec.txt", NULL, &r),
                     TG_ERR_IO);
    ck_assert_str_eq(r.message,
                     "glove: /nonexistent/vec.txt: cannot open: No such file or directory");
    ck_assert_int_eq(tg_embedding_layer_load_glove(&g.e, g.v, NULL, NULL, NULL), TG_ERR_ARG);
    glove_teardown(&g);
}
END_TEST

START_TEST(glove_survives_empty_files_and_very_long_lines) {
    glove_fixture g;
    glove_setup(&g, "");
    tg_glove_report r;
    ck_assert_int_eq(tg_embedding_layer_load_glove(&g.e, g.v, g.path, NULL, &r), TG_OK);
    ck_assert_int_eq(r.lines, 0);
    unlink(g.path);
    size_t n = 200000;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    write_file(g.path, big);
    free(big);
    ck_assert_int_eq(tg_embedding_layer_load_glove(&g.e, g.v, g.path, NULL, &r), TG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(r.message, "found 0"));
    glove_teardown(&g);
}
END_TEST

/* ---- dropout, conv, pooling, activations ---------------------------------------------- */
START_TEST(spatial_dropout_drops_whole_channels_across_time) {
    tg_tape *tp = tg_tape_new();
    tg_rng rng = tg_rng_seeded(6);
    int64_t shape[3] = {4, 5, 6};
    tg_tensor *x = tg_tape_tensor(tp, TG_F64, 3, shape);
    tg_tensor_fill(x, 1);
    tg_tensor *y = tg_spatial_dropout1d(tp, x, 0.5, &rng);
    ck_assert_ptr_nonnull(y);
    int zeros = 0, twos = 0;
    for (int b = 0; b < 4; b++)
        for (int c = 0; c < 6; c++) {
            double first = tg_tensor_get(y, (b * 5 + 0) * 6 + c);
            ck_assert(first == 0 || first == 2);   /* kept values scale by 1/(1-p) */
            zeros += first == 0;
            twos += first == 2;
            for (int t = 1; t < 5; t++) ck_assert(tg_tensor_get(y, (b * 5 + t) * 6 + c) == first);
        }
    ck_assert(zeros > 0 && twos > 0);
    tg_tape_set_training(tp, false);
    ck_assert_ptr_eq(tg_spatial_dropout1d(tp, x, 0.5, &rng), x);
    tg_tape_set_training(tp, true);
    ck_assert_ptr_null(tg_spatial_dropout1d(tp, x, 1.0, &rng));
    ck_assert_tape_error(tp, TG_ERR_ARG, "spatial_dropout1d: p must be in [0, 1): 1");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_spatial_dropout1d(tp, tg_tape_tensor(tp, TG_F64, 2, shape), 0.5, &rng));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "spatial_dropout1d: x must be [B, T, C]: x [4,5]");
    tg_tape_free(tp);
}
END_TEST

START_TEST(conv1d_layer_computes_cross_correlation_in_both_layouts) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(7);
    tg_conv1d_layer c, cl;
    ck_assert_int_eq(tg_conv1d_layer_init(&c, p, "conv", 1, 1, 2, TG_F64, &rng, NULL), TG_OK);
    ck_assert_int_eq(tg_conv1d_layer_init(&cl, p, "conv_last", 1, 1, 2, TG_F64, &rng,
                                          &(tg_conv1d_layer_opts){.channels_last = true}), TG_OK);
    ck_assert_int_eq(tg_params_count(p), 4);
    set_all(c.weight, (double[]){1, -1});
    set_all(c.bias, (double[]){0.5});
    set_all(cl.weight, (double[]){1, -1});
    set_all(cl.bias, (double[]){0.5});
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_from(TG_F64, 3, (int64_t[]){1, 1, 4}, (double[]){1, 3, 6, 10});
    tg_tensor *xl = tg_tensor_from(TG_F64, 3, (int64_t[]){1, 4, 1}, (double[]){1, 3, 6, 10});
    /* out[t] = x[t] - x[t+1] + 0.5 */
    double want[3] = {-1.5, -2.5, -3.5};
    tg_tensor *y = tg_conv1d_layer_forward(tp, &c, x), *yl = tg_conv1d_layer_forward(tp, &cl, xl);
    ck_assert_tensor_near(y, want, 3, 1e-12);
    ck_assert_tensor_near(yl, want, 3, 1e-12);
    ck_assert_int_eq(tg_tensor_dim(yl, 1), 3);
    ck_assert_int_eq(tg_tensor_dim(yl, 2), 1);
    tg_tensor_free(x);
    tg_tensor_free(xl);
    tg_tape_free(tp);
    tg_params_free(p);
}
END_TEST

START_TEST(global_max_pool_takes_the_max_over_length) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_from(TG_F32, 3, (int64_t[]){1, 2, 3}, (double[]){1, 5, 2, -1, -3, -2});
    tg_tensor *y = tg_global_max_pool1d(tp, x);
    ck_assert_tensor_near(y, ((double[]){5, -1}), 2, 0);
    ck_assert_int_eq(tg_tensor_ndim(y), 2);
    ck_assert_ptr_null(tg_global_max_pool1d(tp, tg_tape_tensor(tp, TG_F32, 2, (int64_t[]){2, 3})));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "global_max_pool1d: x must be [B, C, L]: x [2,3]");
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(activations_match_their_formulas) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = nn_t(TG_F64, 3, 0, (double[]){-1, 0, 2}, false);
    ck_assert_ptr_eq(tg_activate(tp, x, TG_ACT_LINEAR), x);
    ck_assert_tensor_near(tg_activate(tp, x, TG_ACT_RELU), ((double[]){0, 0, 2}), 3, 0);
    ck_assert_tensor_near(tg_activate(tp, x, TG_ACT_HARD_SIGMOID), ((double[]){0.3, 0.5, 0.9}), 3, 1e-15);
    ck_assert_tensor_near(tg_activate(tp, x, TG_ACT_TANH), ((double[]){tanh(-1), 0, tanh(2)}), 3, 1e-15);
    ck_assert_tensor_near(tg_activate(tp, x, TG_ACT_SIGMOID),
                          ((double[]){1 / (1 + exp(1)), 0.5, 1 / (1 + exp(-2))}), 3, 1e-15);
    double z = exp(-1) + 1 + exp(2);
    ck_assert_tensor_near(tg_activate(tp, x, TG_ACT_SOFTMAX),
                          ((double[]){exp(-1) / z, 1 / z, exp(2) / z}), 3, 1e-15);
    ck_assert_ptr_null(tg_activate(tp, x, (tg_act)99));
    ck_assert_tape_error(tp, TG_ERR_ARG, "activate: unknown activation 99");
    ck_assert_str_eq(tg_act_name(TG_ACT_HARD_SIGMOID), "hard_sigmoid");
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* ---- initialisers ---------------------------------------------------------------------- */
START_TEST(glorot_uniform_stays_within_its_limit_and_is_reproducible) {
    tg_tensor *a = tg_tensor_new(TG_F64, 2, (int64_t[]){20, 30});
    tg_tensor *b = tg_tensor_new(TG_F64, 2, (int64_t[]){20, 30});
    tg_rng r1 = tg_rng_seeded(9), r2 = tg_rng_seeded(9);
    ck_assert_int_eq(tg_init_glorot_uniform(a, &r1), TG_OK);
    ck_assert_int_eq(tg_init_apply(b, (tg_initializer){TG_INIT_GLOROT_UNIFORM, 0, 0}, &r2), TG_OK);
    double limit = sqrt(6.0 / 50), top = 0;
    for (int i = 0; i < 600; i++) {
        double v = tg_tensor_get(a, i);
        ck_assert(fabs(v) <= limit);
        ck_assert(v == tg_tensor_get(b, i));
        top = fmax(top, fabs(v));
    }
    ck_assert(top > 0.9 * limit);
    ck_assert_int_eq(tg_init_apply(a, (tg_initializer){TG_INIT_DEFAULT, 0, 0}, &r1), TG_ERR_ARG);
    tg_tensor *ids = tg_tensor_new(TG_I32, 1, (int64_t[]){3});
    ck_assert_int_eq(tg_init_zeros(ids), TG_ERR_ARG);
    tg_tensor_free(ids);
    tg_tensor_free(a);
    tg_tensor_free(b);
}
END_TEST

/* W^T W (tall) or W W^T (wide) equals gain^2 I */
static void assert_orthogonal(int64_t r, int64_t c, double gain) {
    tg_tensor *w = tg_tensor_new(TG_F64, 2, (int64_t[]){r, c});
    tg_rng rng = tg_rng_seeded(10);
    ck_assert_int_eq(tg_init_orthogonal(w, gain, &rng), TG_OK);
    int64_t k = r >= c ? c : r, len = r >= c ? r : c;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double dot = 0;
            for (int64_t m = 0; m < len; m++)
                dot += r >= c ? tg_tensor_get(w, m * c + i) * tg_tensor_get(w, m * c + j)
                              : tg_tensor_get(w, i * c + m) * tg_tensor_get(w, j * c + m);
            ck_assert_msg(fabs(dot - (i == j ? gain * gain : 0)) < 1e-12, "(%d,%d) = %g",
                          (int)i, (int)j, dot);
        }
    tg_tensor_free(w);
}

START_TEST(orthogonal_init_gives_orthonormal_columns_or_rows) {
    assert_orthogonal(6, 3, 1);
    assert_orthogonal(3, 6, 1);
    assert_orthogonal(5, 5, 2);
    tg_tensor *v = tg_tensor_new(TG_F64, 1, (int64_t[]){4});
    tg_rng rng = tg_rng_seeded(1);
    ck_assert_int_eq(tg_init_orthogonal(v, 1, &rng), TG_ERR_ARG);
    tg_tensor_free(v);
}
END_TEST

START_TEST(uniform_and_normal_draws_have_the_asked_range_and_moments) {
    tg_tensor *t = tg_tensor_new(TG_F64, 2, (int64_t[]){200, 200});
    tg_rng rng = tg_rng_seeded(11);
    ck_assert_int_eq(tg_init_uniform(t, -0.05, 0.05, &rng), TG_OK);
    for (int i = 0; i < 40000; i++) ck_assert(fabs(tg_tensor_get(t, i)) <= 0.05);
    ck_assert_int_eq(tg_init_normal(t, 0.5, 2, &rng), TG_OK);
    double s = 0, s2 = 0;
    for (int i = 0; i < 40000; i++) {
        double v = tg_tensor_get(t, i);
        s += v;
        s2 += v * v;
    }
    double mean = s / 40000, sd = sqrt(s2 / 40000 - mean * mean);
    ck_assert_msg(fabs(mean - 0.5) < 0.05 && fabs(sd - 2) < 0.05, "mean %g sd %g", mean, sd);
    ck_assert_int_eq(tg_init_uniform(t, 1, 0, &rng), TG_ERR_ARG);
    ck_assert_int_eq(tg_init_ones(t), TG_OK);
    ck_assert(tg_tensor_get(t, 123) == 1);
    tg_tensor_free(t);
}
END_TEST

Suite *suite_nn_layers(void) {
    Suite *s = suite_create("nn_layers");
    TCase *tc = tcase_create("layers");
    tcase_add_test(tc, parameter_names_are_dotted_paths_and_bounded);
    tcase_add_test(tc, linear_registers_named_parameters_and_computes_xWt_plus_b);
    tcase_add_test(tc, linear_applies_to_the_last_axis_and_reports_bad_shapes);
    tcase_add_test(tc, layer_norm_normalises_the_last_axis);
    tcase_add_test(tc, embedding_padding_row_stays_zero_and_gets_no_gradient);
    tcase_add_test(tc, frozen_embedding_gets_no_gradient_but_stays_registered);
    tcase_add_test(tc, vocabulary_has_fixed_specials_and_maps_unknown_words_to_unk);
    tcase_add_test(tc, glove_fills_known_rows_and_sets_unk_to_the_mean);
    tcase_add_test(tc, glove_can_add_file_words_while_rows_remain);
    tcase_add_test(tc, glove_reports_a_short_line_with_file_and_line);
    tcase_add_test(tc, glove_reports_a_bad_number_and_a_missing_file);
    tcase_add_test(tc, glove_survives_empty_files_and_very_long_lines);
    tcase_add_test(tc, spatial_dropout_drops_whole_channels_across_time);
    tcase_add_test(tc, conv1d_layer_computes_cross_correlation_in_both_layouts);
    tcase_add_test(tc, global_max_pool_takes_the_max_over_length);
    tcase_add_test(tc, activations_match_their_formulas);
    tcase_add_test(tc, glorot_uniform_stays_within_its_limit_and_is_reproducible);
    tcase_add_test(tc, orthogonal_init_gives_orthonormal_columns_or_rows);
    tcase_add_test(tc, uniform_and_normal_draws_have_the_asked_range_and_moments);
    suite_add_tcase(s, tc);
    return s;
}
