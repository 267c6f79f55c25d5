/* tests/nn/check_attention.c - masks, positional encoding, masked softmax,
 * scaled dot-product / Bahdanau / Luong attention, multi-head attention and
 * transformer blocks: worked values, PyTorch parity, error paths. */
#include "check_suites.h"
#include "tapegrad/nn_attention.h"

#include <math.h>
#include <stdio.h>

#define F64 TG_F64

static tg_tensor *mk(tg_tape *tp, int nd, const int64_t *shape, const double *v) {
    tg_tensor *t = tg_tape_tensor(tp, F64, nd, shape);
    for (int64_t i = 0; t && i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, v[i]);
    return t;
}

/* Caller-owned leaf with requires_grad (for backward checks). */
static tg_tensor *leaf(int nd, const int64_t *shape, const double *v) {
    tg_tensor *t = tg_tensor_from(F64, nd, shape, v);
    tg_tensor_set_requires_grad(t, true);
    return t;
}

static void set_all(tg_tensor *t, const double *v) {
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, v[i]);
}

/* ---- masks and positions ------------------------------------------------------------- */
START_TEST(padding_mask_marks_the_valid_keys_of_each_row) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *m = tg_padding_mask(tp, F64, 3, 3, (int64_t[]){2, 0, 3});
    ck_assert_int_eq(tg_tensor_ndim(m), 3);
    ck_assert_int_eq(tg_tensor_dim(m, 1), 1);   /* [B, 1, Tk]: broadcasts over queries */
    ck_assert_tensor_near(m, ((double[]){1, 1, 0, 0, 0, 0, 1, 1, 1}), 9, 0);
    /* from ids: pads anywhere */
    tg_tensor *ids = tg_tensor_from(TG_I32, 2, (int64_t[]){2, 3}, (double[]){5, 6, 0, 0, 7, 0});
    ck_assert_tensor_near(tg_padding_mask_ids(tp, F64, ids, 0), ((double[]){1, 1, 0, 0, 1, 0}), 6, 0);
    tg_tensor_free(ids);
    tg_tape_free(tp);
}
END_TEST

START_TEST(causal_mask_hides_future_keys_aligned_at_the_end) {
    tg_tape *tp = tg_tape_new();
    ck_assert_tensor_near(tg_causal_mask(tp, F64, 3, 3), ((double[]){1, 0, 0, 1, 1, 0, 1, 1, 1}), 9, 0);
    /* 2 queries at positions 2 and 3 of 4 keys */
    ck_assert_tensor_near(tg_causal_mask(tp, F64, 2, 4), ((double[]){1, 1, 1, 0, 1, 1, 1, 1}), 8, 0);
    tg_tape_free(tp);
}
END_TEST

START_TEST(mask_helpers_report_bad_arguments) {
    tg_tape *tp = tg_tape_new();
    ck_assert_ptr_null(tg_padding_mask(tp, F64, 2, 3, (int64_t[]){1, 4}));
    ck_assert_tape_error(tp, TG_ERR_ARG, "padding_mask: lengths[1] = 4 outside [0, 3]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_causal_mask(tp, F64, 3, 2));
    ck_assert_tape_error(tp, TG_ERR_ARG,
                         "causal_mask: needs a float dtype and 1 <= Tq <= Tk: float64, Tq 3, Tk "
                         "2");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_padding_mask(tp, TG_I32, 1, 3, (int64_t[]){1}));
    ck_assert_tape_error(tp, TG_ERR_ARG, "padding_mask: needs a float dtype");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_positional_encoding(tp, F64, 0, 0, 4));
    ck_assert_tape_error(tp, TG_ERR_ARG,
                         "positional_encoding: needs a float dtype, start >= 0, T >= 1, C >= 1");
    tg_tape_free(tp);
}
END_TEST

START_TEST(positional_encoding_is_sin_cos_of_position_over_frequency) {
    tg_tape *tp = tg_tape_new();
    /* C = 4: frequencies 1 and 10000^(-2/4) = 1/100 */
    double want[8] = {0, 1, 0, 1, sin(1), cos(1), sin(0.01), cos(0.01)};
    ck_assert_tensor_near(tg_positional_encoding(tp, F64, 0, 2, 4), want, 8, 1e-15);
    ck_assert_tensor_near(tg_positional_encoding(tp, F64, 1, 1, 4), want + 4, 4, 1e-15);
    /* odd C = 3: the last column is sin with frequency 10000^(-2/3) */
    double odd[3] = {sin(1), cos(1), sin(pow(10000.0, -2.0 / 3.0))};
    ck_assert_tensor_near(tg_positional_encoding(tp, F64, 1, 1, 3), odd, 3, 1e-15);
    tg_tape_free(tp);
}
END_TEST

/* ---- masked softmax and scaled dot-product attention -------------------------------- */
START_TEST(masked_softmax_gives_masked_keys_zero_and_fully_masked_rows_zero) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *s = leaf(2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
    tg_tensor *keep = mk(tp, 2, (int64_t[]){2, 3}, (double[]){1, 1, 0, 0, 0, 0});
    tg_tensor *w = tg_masked_softmax(tp, s, keep);
    /* row 0: softmax(1, 2) = (1/(1+e), e/(1+e)); row 1: every key masked -> 0 */
    ck_assert_tensor_near(w, ((double[]){0.2689414213699951, 0.7310585786300049, 0, 0, 0, 0}), 6, 1e-15);
    tg_tensor *wt = mk(tp, 2, (int64_t[]){2, 3}, (double[]){1, -1, 5, 7, 8, 9});
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, tg_mul(tp, w, wt))), TG_OK);
    for (int i = 0; i < 6; i++) ck_assert(isfinite(tg_tensor_grad_get(s, i)));
    for (int i = 2; i < 6; i++) ck_assert(tg_tensor_grad_get(s, i) == 0);   /* masked: no gradient */
    /* L = w0 - w1: dL/ds0 = w0 (1 - w0) + w0 w1 = 2 w0 w1 */
    ck_assert_double_eq_tol(tg_tensor_grad_get(s, 0), 2 * 0.2689414213699951 * 0.7310585786300049, 1e-14);
    tg_tensor_free(s);
    tg_tape_free(tp);
}
END_TEST

START_TEST(masked_softmax_rejects_a_mask_that_would_grow_the_scores) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *s = mk(tp, 2, (int64_t[]){1, 3}, (double[]){1, 2, 3});
    tg_tensor *keep = mk(tp, 2, (int64_t[]){2, 3}, (double[]){1, 1, 1, 1, 1, 1});
    ck_assert_ptr_null(tg_masked_softmax(tp, s, keep));
    ck_assert_tape_error(tp, TG_ERR_SHAPE,
                         "masked_softmax: mask [2,3] float64 does not broadcast to scores [1,3] float64");
    tg_tape_free(tp);
}
END_TEST

START_TEST(scaled_dot_product_attention_worked_example) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *q = mk(tp, 3, (int64_t[]){1, 1, 2}, (double[]){1, 0});
    tg_tensor *k = mk(tp, 3, (int64_t[]){1, 2, 2}, (double[]){1, 0, 0, 1});
    tg_tensor *v = mk(tp, 3, (int64_t[]){1, 2, 2}, (double[]){1, 2, 3, 4});
    tg_tensor *w;
    /* scores (1, 0)/sqrt(2); w0 = 1/(1 + e^(-1/sqrt 2)) = 0.66976...; out = w0 (1,2) + w1 (3,4) */
    tg_tensor *y = tg_scaled_dot_product_attention(tp, q, k, v, NULL, &w);
    ck_assert_tensor_near(w, ((double[]){0.6697615493266569, 0.3302384506733431}), 2, 1e-15);
    ck_assert_tensor_near(y, ((double[]){1.6604769013466862, 2.6604769013466862}), 2, 1e-14);
    /* the mask hides key 1: all weight on key 0 */
    tg_tensor *keep = mk(tp, 3, (int64_t[]){1, 1, 2}, (double[]){1, 0});
    y = tg_scaled_dot_product_attention(tp, q, k, v, &(tg_sdpa_opts){.mask = keep}, NULL);
    ck_assert_tensor_near(y, ((double[]){1, 2}), 2, 0);
    tg_tape_free(tp);
}
END_TEST

START_TEST(causal_attention_only_sees_the_past) {
    tg_tape *tp = tg_tape_new();
    double xv[12] = {0.3, -1, 2, 0.5, 1, 1, -0.2, 0.7, 0.1, 0.9, -0.4, 0.6};
    tg_tensor *x = mk(tp, 3, (int64_t[]){1, 3, 4}, xv);
    tg_tensor *w;
    tg_tensor *y = tg_scaled_dot_product_attention(tp, x, x, x, &(tg_sdpa_opts){.causal = true}, &w);
    ck_assert_ptr_nonnull(y);
    /* row 0 can only see key 0; query 1 not key 2 */
    ck_assert(tg_tensor_get(w, 0) == 1 && tg_tensor_get(w, 1) == 0 && tg_tensor_get(w, 2) == 0);
    ck_assert(tg_tensor_get(w, 5) == 0);
    for (int r = 0; r < 3; r++) {
        double s = 0;
        for (int c = 0; c < 3; c++) s += tg_tensor_get(w, r * 3 + c);
        ck_assert_double_eq_tol(s, 1, 1e-15);
    }
    for (int i = 0; i < 4; i++) ck_assert(tg_tensor_get(y, i) == xv[i]);   /* query 0 gets value 0 */
    tg_tape_free(tp);
}
END_TEST

START_TEST(fully_padded_batch_row_gives_zero_output_and_finite_gradients) {
    tg_tape *tp = tg_tape_new();
    double v[16];
    for (int i = 0; i < 16; i++) v[i] = sin(0.9 * i + 0.3);
    tg_tensor *q = leaf(3, (int64_t[]){2, 2, 4}, v);
    tg_tensor *kv = leaf(3, (int64_t[]){2, 2, 4}, v);
    tg_tensor *keep = tg_padding_mask(tp, F64, 2, 2, (int64_t[]){1, 0});
    tg_sdpa_opts o = {.mask = keep, .causal = true};
    tg_tensor *y = tg_scaled_dot_product_attention(tp, q, kv, kv, &o, NULL);
    ck_assert_ptr_nonnull(y);
    for (int i = 8; i < 16; i++) ck_assert(tg_tensor_get(y, i) == 0);   /* batch 1: no keys */
    for (int i = 0; i < 8; i++) ck_assert(tg_tensor_get(y, i) == v[i % 4]);   /* batch 0: key 0 only */
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, tg_mul(tp, y, y))), TG_OK);
    for (int i = 0; i < 16; i++) {
        ck_assert(isfinite(tg_tensor_grad_get(q, i)) && isfinite(tg_tensor_grad_get(kv, i)));
        if (i >= 8) ck_assert(tg_tensor_grad_get(q, i) == 0 && tg_tensor_grad_get(kv, i) == 0);
    }
    tg_tensor_free(q);
    tg_tensor_free(kv);
    tg_tape_free(tp);
}
END_TEST

START_TEST(attention_reports_mismatched_shapes_and_masks) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *q = tg_tape_tensor(tp, F64, 3, (int64_t[]){2, 3, 4});
    tg_tensor *k = tg_tape_tensor(tp, F64, 3, (int64_t[]){2, 5, 3});
    ck_assert_ptr_null(tg_scaled_dot_product_attention(tp, q, k, k, NULL, NULL));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "attention: q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv] "
                                           "do not fit: q [2,3,4] k [2,5,3] v [2,5,3]");
    tg_tape_reset(tp);   /* drops q and k: make them again */
    q = tg_tape_tensor(tp, F64, 3, (int64_t[]){2, 3, 4});
    k = tg_tape_tensor(tp, F64, 3, (int64_t[]){2, 5, 4});
    tg_tensor *keep = tg_tape_tensor(tp, F64, 3, (int64_t[]){2, 1, 4});
    ck_assert_ptr_null(tg_scaled_dot_product_attention(tp, q, k, k, &(tg_sdpa_opts){.mask = keep}, NULL));
    ck_assert_tape_error(tp, TG_ERR_SHAPE,
                         "attention: mask [2,1,4] float64 does not broadcast to scores [2,3,5] "
                         "float64");
    tg_tape_reset(tp);
    q = tg_tape_tensor(tp, F64, 3, (int64_t[]){2, 3, 4});
    k = tg_tape_tensor(tp, F64, 3, (int64_t[]){2, 5, 4});
    tg_tensor *keep32 = tg_tape_tensor(tp, TG_F32, 3, (int64_t[]){2, 1, 5});
    tg_sdpa_opts o32 = {.mask = keep32};
    ck_assert_ptr_null(tg_scaled_dot_product_attention(tp, q, k, k, &o32, NULL));
    ck_assert_tape_error(tp, TG_ERR_DTYPE, "attention: mask [2,1,5] float32 does not broadcast");
    tg_tape_reset(tp);
    q = tg_tape_tensor(tp, F64, 3, (int64_t[]){2, 3, 4});
    k = tg_tape_tensor(tp, F64, 3, (int64_t[]){2, 5, 4});
    ck_assert_ptr_null(tg_scaled_dot_product_attention(tp, q, k, k, &(tg_sdpa_opts){.dropout = 1}, NULL));
    ck_assert_tape_error(tp, TG_ERR_ARG, "attention: dropout must be in [0, 1): 1");
    tg_tape_reset(tp);
    k = tg_tape_tensor(tp, F64, 3, (int64_t[]){2, 5, 4});
    /* NULL in, NULL out, no new error */
    ck_assert_ptr_null(tg_scaled_dot_product_attention(tp, q, NULL, k, NULL, NULL));
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    tg_tape_free(tp);
}
END_TEST

START_TEST(attention_dropout_is_off_outside_training_and_seeded_inside) {
    tg_tape *tp = tg_tape_new();
    double v[24];
    for (int i = 0; i < 24; i++) v[i] = cos(0.5 * i);
    tg_tensor *x = mk(tp, 3, (int64_t[]){2, 3, 4}, v);
    tg_tensor *plain = tg_scaled_dot_product_attention(tp, x, x, x, NULL, NULL);
    tg_rng r1 = tg_rng_seeded(7), r2 = tg_rng_seeded(7);
    tg_sdpa_opts o = {.dropout = 0.5, .rng = &r1};
    tg_tape_set_training(tp, false);
    ck_assert_tensor_near(tg_scaled_dot_product_attention(tp, x, x, x, &o, NULL),
                          (double *)tg_tensor_data(plain), 24, 0);
    tg_tape_set_training(tp, true);
    tg_tensor *a = tg_scaled_dot_product_attention(tp, x, x, x, &o, NULL);
    o.rng = &r2;
    tg_tensor *b = tg_scaled_dot_product_attention(tp, x, x, x, &o, NULL);
    ck_assert_tensor_near(a, (double *)tg_tensor_data(b), 24, 0);   /* same seed, same drops */
    bool differs = false;
    for (int i = 0; i < 24; i++) differs |= tg_tensor_get(a, i) != tg_tensor_get(plain, i);
    ck_assert(differs);
    tg_tape_free(tp);
}
END_TEST

/* ---- Bahdanau and Luong ------------------------------------------------------------------ */
START_TEST(additive_attention_registers_its_parameters_and_matches_a_worked_case) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(1);
    tg_attention a;
    ck_assert_int_eq(tg_attention_init(&a, p, "dec.attn", TG_SCORE_ADDITIVE, 1, 1, 0, F64, &rng), TG_OK);
    ck_assert_int_eq(tg_params_count(p), 4);
    ck_assert_ptr_eq(tg_params_find(p, "dec.attn.w_q"), a.w_q);
    ck_assert_ptr_eq(tg_params_find(p, "dec.attn.w_k"), a.w_k);
    ck_assert_ptr_eq(tg_params_find(p, "dec.attn.bias"), a.bias);
    ck_assert_ptr_eq(tg_params_find(p, "dec.attn.v"), a.v);
    tg_tensor_fill(a.w_q, 1);
    tg_tensor_fill(a.w_k, 1);
    tg_tensor_fill(a.v, 1);
    tg_tape *tp = tg_tape_new();
    /* s = 0, keys (0, 1): scores v tanh(0 + h) = (0, tanh 1); w0 = 1/(1 + e^tanh(1)) */
    tg_tensor *s = mk(tp, 2, (int64_t[]){1, 1}, (double[]){0});
    tg_tensor *h = mk(tp, 3, (int64_t[]){1, 2, 1}, (double[]){0, 1});
    tg_tensor *w;
    tg_tensor *ctx = tg_attention_forward(tp, &a, s, h, NULL, NULL, &w);
    ck_assert_int_eq(tg_tensor_ndim(ctx), 2);
    ck_assert_int_eq(tg_tensor_ndim(w), 2);
    ck_assert_tensor_near(w, ((double[]){0.3183002578054738, 0.6816997421945262}), 2, 1e-15);
    ck_assert_tensor_near(ctx, ((double[]){0.6816997421945262}), 1, 1e-15);
    /* a [B, Tk] mask is accepted for a one-step query */
    tg_tensor *keep = mk(tp, 2, (int64_t[]){1, 2}, (double[]){1, 0});
    ctx = tg_attention_forward(tp, &a, s, h, NULL, keep, &w);
    ck_assert_tensor_near(w, ((double[]){1, 0}), 2, 0);
    ck_assert_tensor_near(ctx, ((double[]){0}), 1, 0);
    tg_tape_free(tp);
    tg_params_free(p);
}
END_TEST

START_TEST(luong_dot_general_and_scaled_scores_worked_cases) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(2);
    tg_attention dot, gen, sdot;
    ck_assert_int_eq(tg_attention_init(&dot, p, "dot", TG_SCORE_DOT, 2, 2, 0, F64, &rng), TG_OK);
    ck_assert_int_eq(tg_attention_init(&gen, p, "gen", TG_SCORE_GENERAL, 2, 2, 0, F64, &rng), TG_OK);
    ck_assert_int_eq(tg_attention_init(&sdot, p, "sdot", TG_SCORE_SCALED_DOT, 2, 2, 0, F64, &rng), TG_OK);
    ck_assert_int_eq(tg_params_count(p), 1);   /* only general has a parameter */
    ck_assert_ptr_eq(tg_params_find(p, "gen.w_a"), gen.w_a);
    set_all(gen.w_a, (double[]){2, 0, 0, 2});
    tg_tape *tp = tg_tape_new();
    tg_tensor *s = mk(tp, 3, (int64_t[]){1, 1, 2}, (double[]){1, 0});
    tg_tensor *h = mk(tp, 3, (int64_t[]){1, 2, 2}, (double[]){1, 0, 0, 1});
    tg_tensor *v = mk(tp, 3, (int64_t[]){1, 2, 2}, (double[]){1, 2, 3, 4});
    /* dot: scores (1, 0), w0 = 1/(1+e^-1); general with W_a = 2I: (2, 0); scaled: (1/sqrt 2, 0) */
    ck_assert_tensor_near(tg_attention_forward(tp, &dot, s, h, v, NULL, NULL),
                          ((double[]){1.5378828427399902, 2.5378828427399902}), 2, 1e-14);
    ck_assert_tensor_near(tg_attention_forward(tp, &gen, s, h, v, NULL, NULL),
                          ((double[]){1.2384058440442354, 2.2384058440442354}), 2, 1e-14);
    ck_assert_tensor_near(tg_attention_forward(tp, &sdot, s, h, v, NULL, NULL),
                          ((double[]){1.6604769013466862, 2.6604769013466862}), 2, 1e-14);
    tg_tape_free(tp);
    tg_params_free(p);
}
END_TEST

START_TEST(score_attention_reports_bad_sizes) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(3);
    tg_attention a;
    ck_assert_int_eq(tg_attention_init(&a, p, "a", TG_SCORE_DOT, 3, 2, 0, F64, &rng), TG_ERR_SHAPE);
    ck_assert_int_eq(tg_attention_init(&a, p, "a", TG_SCORE_GENERAL, 2, 2, 0, F64, &rng), TG_OK);
    tg_tape *tp = tg_tape_new();
    tg_tensor *s = tg_tape_tensor(tp, F64, 2, (int64_t[]){1, 3});
    tg_tensor *h = tg_tape_tensor(tp, F64, 3, (int64_t[]){1, 2, 2});
    ck_assert_ptr_null(tg_attention_forward(tp, &a, s, h, NULL, NULL, NULL));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "general: query [B, (Tq,) 2], keys [B, Tk, 2], values "
                                           "[B, Tk, Dv] do not fit: query [1,3] keys [1,2,2] values [1,2,2]");
    tg_tape_reset(tp);
    s = tg_tape_tensor(tp, F64, 2, (int64_t[]){1, 2});
    h = tg_tape_tensor(tp, F64, 3, (int64_t[]){1, 2, 2});
    tg_tensor *keep = tg_tape_tensor(tp, F64, 2, (int64_t[]){1, 3});
    ck_assert_ptr_null(tg_attention_forward(tp, &a, s, h, NULL, keep, NULL));
    ck_assert_tape_error(tp, TG_ERR_SHAPE,
                         "general: mask [1,3] float64 does not broadcast to scores [1,1,2]");
    tg_tape_free(tp);
    tg_params_free(p);
}
END_TEST

/* ---- multi-head attention and transformer blocks: PyTorch parity --------------------------
 * Every parameter k (registry order) holds 0.5 sin(0.7 i + k), i its flat index; the inputs
 * are x[i] = sin(0.9 i + 0.3) [2, 3, 4] and memory[i] = sin(0.9 i + 0.5) [2, 4, 4]; target
 * lengths (3, 2), source lengths (4, 2); the parameters are filled as load_mha and
 * load_rest below fill them (fill_mha, fill_rest here). Reference (torch 1.13, float64):
 *   torch.set_default_dtype(torch.float64); B, T, S, C, h, F = 2, 3, 4, 4, 2, 6
 *   fill = lambda n, k: torch.tensor([0.5 * math.sin(0.7 * i + k) for i in range(n)])
 *   data = lambda shape, s: torch.tensor([math.sin(0.9 * i + s)
 *                                         for i in range(math.prod(shape))]).reshape(shape)
 *   def load_mha(m, k0):
 *       w = [fill(C * C, k0 + 2 * j).reshape(C, C) for j in range(4)]
 *       b = [fill(C, k0 + 2 * j + 1) for j in range(4)]
 *       m.in_proj_weight.data = torch.cat(w[:3]); m.in_proj_bias.data = torch.cat(b[:3])
 *       m.out_proj.weight.data = w[3]; m.out_proj.bias.data = b[3]
 *   def load_rest(l, k0, dec):   # linear1, linear2, norm1, norm2 (, norm3)
 *       l.linear1.weight.data = fill(F * C, k0).reshape(F, C); l.linear1.bias.data = fill(F, k0 + 1)
 *       l.linear2.weight.data = fill(C * F, k0 + 2).reshape(C, F); l.linear2.bias.data = fill(C, k0 + 3)
 *       for j, n in enumerate([l.norm1, l.norm2] + ([l.norm3] if dec else [])):
 *           n.weight.data = fill(C, k0 + 4 + 2 * j); n.bias.data = fill(C, k0 + 5 + 2 * j)
 *   x, mem = data((B, T, C), 0.3), data((B, S, C), 0.5)
 *   tgt_pad = torch.tensor([[0, 0, 0], [0, 0, 1]]).bool()
 *   src_pad = torch.tensor([[0, 0, 0, 0], [0, 0, 1, 1]]).bool()
 *   causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
 *   m = nn.MultiheadAttention(C, h, batch_first=True); load_mha(m, 0)
 *   MHA_SELF = m(x, x, x, key_padding_mask=tgt_pad, attn_mask=causal)[0]
 *   MHA_CROSS = m(x, mem, mem, key_padding_mask=src_pad)[0]
 *   enc = nn.TransformerEncoderLayer(C, h, F, dropout=0.0, batch_first=True, norm_first=pre).train()
 *   load_mha(enc.self_attn, 0); load_rest(enc, 8, False); ENC = enc(x, src_key_padding_mask=tgt_pad)
 *   dec = nn.TransformerDecoderLayer(C, h, F, dropout=0.0, batch_first=True, norm_first=pre).train()
 *   load_mha(dec.self_attn, 0); load_mha(dec.multihead_attn, 8); load_rest(dec, 16, True)
 *   DEC = dec(x, mem, tgt_mask=causal, tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad) */
static const double MHA_SELF[24] = {
    0.806571310799, -0.180940919488, 1.22126878227, -0.661617060116, 0.447010779127, 0.21048723731,
    0.843204605737, -0.340604190245, 0.599796869413, 0.129168634564, 0.843658923889, -0.260141724924,
    0.619646171122, 0.103975910917, 0.871283916264, -0.287006771231, 0.544707335755, 0.194780396434,
    0.775106721857, -0.196570654282, 0.404041763196, 0.306975585165, 0.704346667741, -0.175422435381};
static const double MHA_CROSS[24] = {
    0.655232915182, 0.0103037994626, 1.01221708442, -0.458915418941, 0.463939077546, 0.227714542628,
    0.793812403436, -0.264754622638, 0.624471445267, 0.0921024308631, 0.888833558457, -0.308204621066,
    0.509308927201, 0.147819739641, 0.898999890338, -0.383079819886, 0.643101758218, 0.0865893506533,
    0.880592340184, -0.287161420915, 0.462126214971, 0.188715169057, 0.869117428114, -0.367663402298};
static const double ENC_POST[24] = {
    -0.176327482221, 0.178808939344, -0.100043507111, -0.330412522177, -0.265978210558, -0.305360978486,
    -0.126756908172, -0.617388491145, -0.284003715372, 0.393716416877, -0.160545811251, -0.35111811808,
    -0.207659799683, -0.368374615059, -0.128768503228, -0.625897782094, -0.393754428484, 0.406720119667,
    -0.181760220247, -0.414313930757, -0.190212238182, -0.17222702254, -0.0696432406897, -0.456031874606};
static const double ENC_PRE[24] = {
    0.402763149548, 0.703052169419, 1.74432652138, -0.203105805362, -0.422460794873, -1.42505061495,
    0.366608596902, 0.131167521563, 1.00024800961, 0.716533068577, 0.96166773046, -1.09121491524,
    -0.700521191163, -1.02999314556, 1.28599604936, 0.780841394887, 0.924940084926, -0.0348252103375,
    0.118440752803, -1.37674404347, -0.297603945174, -0.0638600404661, 1.89114617886, 0.606189368372};
static const double DEC_POST[24] = {
    0.0377572581488, 0.312362254277, 0.323858033504, 1.11939489164, 0.0457639638078, 0.259144366815,
    0.305691830131, 1.07882721241, 0.0491930149377, 0.351914751222, 0.343888797795, 1.14499690589,
    0.0194643138028, 0.271660680043, 0.305164787971, 1.08113257472, 0.0499306531027, 0.352537517287,
    0.344346040239, 1.14546471288, -0.00532158394062, 0.303027671066, 0.312198427609, 1.09825233605};
static const double DEC_PRE[24] = {
    2.12001201097, 0.836057136083, 2.19714855525, -0.570862737002, 1.03013923975, -0.970339104418,
    0.608346750426, -0.175130954771, 2.67747417816, 0.890030145234, 1.3139651692, -1.29361799816,
    0.669309232789, -0.548737384349, 1.56241782872, 0.416835974704, 2.54424562302, 0.208426349202,
    0.39722519114, -1.51173236618, 1.17490017665, 0.356025202704, 2.17356093939, 0.248888818985};

#define PARITY_TOL 1e-10   /* the references carry 12 significant digits */

/* elements [at, at + n) of t = fill(n, k) = 0.5 sin(0.7 i + k), i = 0 .. n-1 */
static void fill(tg_tensor *t, int64_t at, int64_t n, int k) {
    for (int64_t i = 0; i < n; i++) tg_tensor_set(t, at + i, 0.5 * sin(0.7 * (double)i + k));
}

/* load_mha(m, k0): W_q, W_k, W_v (rows of in_proj_weight) and W_o get fill(k0 + 2j),
 * their biases fill(k0 + 2j + 1) */
static void fill_mha(const tg_mha *m, int k0) {
    int64_t C = m->dim;
    for (int j = 0; j < 3; j++) {
        fill(m->in_proj_weight, j * C * C, C * C, k0 + 2 * j);
        fill(m->in_proj_bias, j * C, C, k0 + 2 * j + 1);
    }
    fill(m->out_proj_weight, 0, C * C, k0 + 6);
    fill(m->out_proj_bias, 0, C, k0 + 7);
}

/* load_rest(l, k0, dec): linear1, linear2, then the norms, weight and bias each */
static void fill_rest(const tg_transformer_block *b, int k0) {
    const tg_tensor *ts[10] = {b->linear1.weight, b->linear1.bias, b->linear2.weight, b->linear2.bias,
                               b->norm1.gamma, b->norm1.beta, b->norm2.gamma, b->norm2.beta,
                               b->norm3.gamma, b->norm3.beta};
    for (int j = 0; j < (b->decoder ? 10 : 8); j++)
        fill((tg_tensor *)ts[j], 0, tg_tensor_numel(ts[j]), k0 + j);
}

static tg_tensor *wave(tg_tape *tp, int64_t B, int64_t T, int64_t C, double s) {
    tg_tensor *t = tg_tape_tensor(tp, F64, 3, (int64_t[]){B, T, C});
    for (int64_t i = 0; i < B * T * C; i++) tg_tensor_set(t, i, sin(0.9 * (double)i + s));
    return t;
}

START_TEST(multi_head_attention_matches_pytorch_with_masks) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(4);
    tg_mha m;
    ck_assert_int_eq(tg_mha_init(&m, p, "decoder.attn", 4, 2, F64, &rng, NULL), TG_OK);
    /* nn.MultiheadAttention(4, 2).state_dict()'s keys, in its order */
    const char *names[4] = {"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"};
    ck_assert_int_eq(tg_params_count(p), 4);
    for (int i = 0; i < 4; i++) {
        char full[64];
        snprintf(full, sizeof full, "decoder.attn.%s", names[i]);
        ck_assert_str_eq(tg_params_name(p, i), full);
    }
    ck_assert_int_eq(tg_tensor_dim(m.in_proj_weight, 0), 12);
    fill_mha(&m, 0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = wave(tp, 2, 3, 4, 0.3), *mem = wave(tp, 2, 4, 4, 0.5);
    tg_tensor *tgt_keep = tg_padding_mask(tp, F64, 2, 3, (int64_t[]){3, 2});
    tg_tensor *src_keep = tg_padding_mask(tp, F64, 2, 4, (int64_t[]){4, 2});
    tg_tensor *w;
    tg_tensor *y = tg_mha_forward(tp, &m, x, NULL,
                                  &(tg_mha_call){.mask = tgt_keep, .causal = true, .weights = &w});
    ck_assert_tensor_near(y, MHA_SELF, 24, PARITY_TOL);
    ck_assert_int_eq(tg_tensor_ndim(w), 4);   /* [B, h, Tq, Tk] */
    ck_assert_int_eq(tg_tensor_dim(w, 1), 2);
    y = tg_mha_forward(tp, &m, x, mem, &(tg_mha_call){.mask = src_keep});
    ck_assert_tensor_near(y, MHA_CROSS, 24, PARITY_TOL);
    /* PyTorch's key_padding_mask (true = ignore) gives the same */
    tg_tensor *src_pad = tg_tensor_from(TG_I32, 2, (int64_t[]){2, 4}, (double[]){0, 0, 0, 0, 0, 0, 1, 1});
    y = tg_mha_forward(tp, &m, x, mem, &(tg_mha_call){.key_padding_mask = src_pad});
    ck_assert_tensor_near(y, MHA_CROSS, 24, PARITY_TOL);
    tg_tensor *tgt_pad = tg_tensor_from(TG_F64, 2, (int64_t[]){2, 3}, (double[]){0, 0, 0, 0, 0, 1});
    y = tg_mha_forward(tp, &m, x, NULL, &(tg_mha_call){.key_padding_mask = tgt_pad, .causal = true});
    ck_assert_tensor_near(y, MHA_SELF, 24, PARITY_TOL);
    ck_assert_ptr_null(tg_mha_forward(tp, &m, x, mem, &(tg_mha_call){.key_padding_mask = tgt_pad}));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "mha: key_padding_mask must be [B, Tk] = [2,4]: got [2,3]");
    tg_tensor_free(src_pad);
    tg_tensor_free(tgt_pad);
    tg_tape_free(tp);
    tg_params_free(p);
}
END_TEST

START_TEST(multi_head_attention_reports_bad_configuration_and_shapes) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(5);
    tg_mha m;
    ck_assert_int_eq(tg_mha_init(&m, p, "a", 6, 4, F64, &rng, NULL), TG_ERR_ARG);   /* 6 % 4 != 0 */
    tg_mha_opts bad = {.dropout = 1.5}, cross = {.no_bias = true, .kv_dim = 3};
    ck_assert_int_eq(tg_mha_init(&m, p, "a", 4, 2, F64, &rng, &bad), TG_ERR_ARG);
    ck_assert_int_eq(tg_mha_init(&m, p, "a", 4, 2, F64, &rng, &cross), TG_OK);
    ck_assert_int_eq(tg_params_count(p), 4);   /* q/k/v_proj_weight, out_proj.weight: bias=False */
    ck_assert_int_eq(tg_tensor_dim(m.k_proj_weight, 1), 3);
    ck_assert_ptr_nonnull(tg_params_find(p, "a.v_proj_weight"));
    ck_assert_ptr_null(m.in_proj_weight);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tape_tensor(tp, F64, 3, (int64_t[]){2, 3, 4});
    ck_assert_ptr_null(tg_mha_forward(tp, &m, x, NULL, NULL));   /* memory defaults to x: width 4 != 3 */
    ck_assert_tape_error(tp, TG_ERR_SHAPE,
                         "mha: x [B, Tq, 4] and memory [B, Tk, 3] do not fit: x [2,3,4] memory "
                         "[2,3,4]");
    tg_tape_reset(tp);
    x = tg_tape_tensor(tp, F64, 3, (int64_t[]){2, 3, 4});
    tg_tensor *mem = tg_tape_tensor(tp, F64, 3, (int64_t[]){2, 5, 3});
    ck_assert_ptr_nonnull(tg_mha_forward(tp, &m, x, mem, NULL));
    tg_tensor *keep = tg_tape_tensor(tp, F64, 3, (int64_t[]){2, 1, 4});
    ck_assert_ptr_null(tg_mha_forward(tp, &m, x, mem, &(tg_mha_call){.mask = keep}));
    ck_assert_tape_error(tp, TG_ERR_SHAPE,
                         "mha: mask [2,1,4] float64 does not broadcast to scores [2,3,5] "
                         "float64");
    tg_tape_free(tp);
    tg_params_free(p);
}
END_TEST

static void check_block(bool decoder, bool pre_norm, const double *want) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(6);
    tg_transformer_block blk;
    tg_transformer_opts o = {.heads = 2, .ffn_dim = 6, .pre_norm = pre_norm};
    tg_status st = decoder ? tg_transformer_decoder_init(&blk, p, "blk", 4, F64, &rng, &o)
                           : tg_transformer_encoder_init(&blk, p, "blk", 4, F64, &rng, &o);
    ck_assert_int_eq(st, TG_OK);
    ck_assert_int_eq(tg_params_count(p), decoder ? 18 : 12);   /* PyTorch's state_dict sizes */
    fill_mha(&blk.self_attn, 0);
    if (decoder) fill_mha(&blk.cross_attn, 8);
    fill_rest(&blk, decoder ? 16 : 8);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = wave(tp, 2, 3, 4, 0.3), *mem = wave(tp, 2, 4, 4, 0.5);
    tg_tensor *tgt_keep = tg_padding_mask(tp, F64, 2, 3, (int64_t[]){3, 2});
    tg_tensor *src_keep = tg_padding_mask(tp, F64, 2, 4, (int64_t[]){4, 2});
    tg_tensor *y = decoder ? tg_transformer_decoder_forward(tp, &blk, x, mem, tgt_keep, src_keep, NULL)
                           : tg_transformer_encoder_forward(tp, &blk, x, tgt_keep, NULL);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tp));
    ck_assert_tensor_near(y, want, 24, PARITY_TOL);
    tg_tape_free(tp);
    tg_params_free(p);
}

START_TEST(encoder_block_post_norm_matches_pytorch) { check_block(false, false, ENC_POST); }
END_TEST
START_TEST(encoder_block_pre_norm_matches_pytorch) { check_block(false, true, ENC_PRE); }
END_TEST
START_TEST(decoder_block_post_norm_matches_pytorch) { check_block(true, false, DEC_POST); }
END_TEST
START_TEST(decoder_block_pre_norm_matches_pytorch) { check_block(true, true, DEC_PRE); }
END_TEST

START_TEST(transformer_blocks_name_their_parts_and_refuse_the_wrong_role) {
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(8);
    tg_transformer_block enc, dec;
    ck_assert_int_eq(tg_transformer_encoder_init(&enc, p, "encoder.0", 4, F64, &rng, NULL), TG_OK);
    ck_assert_int_eq(tg_transformer_decoder_init(&dec, p, "decoder.0", 4, F64, &rng,
                                                 &(tg_transformer_opts){.heads = 2, .dropout = 0.1}),
                     TG_OK);
    const char *want[] = {"encoder.0.self_attn.in_proj_weight", "encoder.0.linear1.weight",
                          "encoder.0.norm2.bias", "decoder.0.multihead_attn.out_proj.weight",
                          "decoder.0.norm3.weight", "decoder.0.linear2.bias"};
    for (int i = 0; i < 6; i++) ck_assert_msg(tg_params_find(p, want[i]) != NULL, "missing %s", want[i]);
    ck_assert_int_eq(tg_tensor_dim(tg_params_find(p, "encoder.0.linear1.weight"), 0), 16);   /* 4 C */
    ck_assert_int_eq(tg_transformer_encoder_init(&enc, p, "bad", 6, F64, &rng,
                                                 &(tg_transformer_opts){.heads = 4}), TG_ERR_ARG);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = wave(tp, 1, 2, 4, 0.1);
    ck_assert_ptr_null(tg_transformer_decoder_forward(tp, &enc, x, x, NULL, NULL, NULL));
    ck_assert_tape_error(tp, TG_ERR_ARG,
                         "transformer_decoder: block is not initialised as a decoder");
    tg_tape_reset(tp);
    /* not training: dropout is off and the block is deterministic without an rng */
    tg_tape_set_training(tp, false);
    x = wave(tp, 1, 2, 4, 0.1);
    tg_tensor *a = tg_transformer_decoder_forward(tp, &dec, x, x, NULL, NULL, NULL);
    tg_tensor *b = tg_transformer_decoder_forward(tp, &dec, x, x, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_tensor_near(a, (double *)tg_tensor_data(b), 8, 0);
    tg_tape_free(tp);
    tg_params_free(p);
}
END_TEST

Suite *suite_nn_attention(void) {
    Suite *s = suite_create("nn_attention");
    TCase *c = tcase_create("masks");
    tcase_add_test(c, padding_mask_marks_the_valid_keys_of_each_row);
    tcase_add_test(c, causal_mask_hides_future_keys_aligned_at_the_end);
    tcase_add_test(c, mask_helpers_report_bad_arguments);
    tcase_add_test(c, positional_encoding_is_sin_cos_of_position_over_frequency);
    suite_add_tcase(s, c);
    c = tcase_create("scaled_dot_product");
    tcase_add_test(c, masked_softmax_gives_masked_keys_zero_and_fully_masked_rows_zero);
    tcase_add_test(c, masked_softmax_rejects_a_mask_that_would_grow_the_scores);
    tcase_add_test(c, scaled_dot_product_attention_worked_example);
    tcase_add_test(c, causal_attention_only_sees_the_past);
    tcase_add_test(c, fully_padded_batch_row_gives_zero_output_and_finite_gradients);
    tcase_add_test(c, attention_reports_mismatched_shapes_and_masks);
    tcase_add_test(c, attention_dropout_is_off_outside_training_and_seeded_inside);
    suite_add_tcase(s, c);
    c = tcase_create("bahdanau_luong");
    tcase_add_test(c, additive_attention_registers_its_parameters_and_matches_a_worked_case);
    tcase_add_test(c, luong_dot_general_and_scaled_scores_worked_cases);
    tcase_add_test(c, score_attention_reports_bad_sizes);
    suite_add_tcase(s, c);
    c = tcase_create("multi_head_and_transformer");
    tcase_add_test(c, multi_head_attention_matches_pytorch_with_masks);
    tcase_add_test(c, multi_head_attention_reports_bad_configuration_and_shapes);
    tcase_add_test(c, encoder_block_post_norm_matches_pytorch);
    tcase_add_test(c, encoder_block_pre_norm_matches_pytorch);
    tcase_add_test(c, decoder_block_post_norm_matches_pytorch);
    tcase_add_test(c, decoder_block_pre_norm_matches_pytorch);
    tcase_add_test(c, transformer_blocks_name_their_parts_and_refuse_the_wrong_role);
    suite_add_tcase(s, c);
    return s;
}
