/* tests/check_shape.c - concat, slice, split, reshape, transpose, permute: values and
 * gradients worked by hand, permutations of 4-D against index arithmetic written out
 * here, int32 data, reshape sharing its input's data, and every error path.
 * Value tests run in both dtypes (loop index 0: float64, 1: float32). */
#include "check_suites.h"

/* Tensor of the values 0, 1, 2, ... (exact in both dtypes). */
static tg_tensor *iota(tg_dtype dt, int ndim, const int64_t *shape) {
    tg_tensor *t = tg_tensor_new(dt, ndim, shape);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) tg_tensor_set(t, i, (double)i);
    return t;
}

/* ---- concat ----------------------------------------------------------------------------- */
START_TEST(concat_values_by_hand) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tt_make(dt, 2, TGT_SHAPE(2, 2), TGT_VALS(1, 2, 3, 4)), *b = tt_make(dt, 2, TGT_SHAPE(2, 1), TGT_VALS(5, 6));
    tg_tensor *y = tg_concat(tp, 2, (tg_tensor *[]){a, b}, 1);
    ck_assert_shape(y, 2, TGT_SHAPE(2, 3));
    ck_assert_int_eq(tg_tensor_dtype(y), dt);
    ck_assert_tensor_near(y, TGT_VALS(1, 2, 5, 3, 4, 6), 6, 0);
    y = tg_concat(tp, 2, (tg_tensor *[]){a, b}, -1);
    ck_assert_tensor_near(y, TGT_VALS(1, 2, 5, 3, 4, 6), 6, 0);
    /* axis 0: [1,2] on top of [2,2] */
    tg_tensor *r = tt_make(dt, 2, TGT_SHAPE(1, 2), TGT_VALS(9, 8));
    y = tg_concat(tp, 2, (tg_tensor *[]){r, a}, 0);
    ck_assert_shape(y, 2, TGT_SHAPE(3, 2));
    ck_assert_tensor_near(y, TGT_VALS(9, 8, 1, 2, 3, 4), 6, 0);
    /* one input: a copy */
    y = tg_concat(tp, 1, &a, 0);
    ck_assert_shape(y, 2, TGT_SHAPE(2, 2));
    ck_assert_tensor_near(y, TGT_VALS(1, 2, 3, 4), 4, 0);
    ck_assert_ptr_ne(tg_tensor_data(y), tg_tensor_data(a));
    /* three 1-D inputs of lengths 1, 2, 3 */
    tg_tensor *p = tt_make(dt, 1, TGT_SHAPE(1), TGT_VALS(1)), *q = tt_make(dt, 1, TGT_SHAPE(2), TGT_VALS(2, 3)),
              *s = tt_make(dt, 1, TGT_SHAPE(3), TGT_VALS(4, 5, 6));
    y = tg_concat(tp, 3, (tg_tensor *[]){p, q, s}, 0);
    ck_assert_shape(y, 1, TGT_SHAPE(6));
    ck_assert_tensor_near(y, TGT_VALS(1, 2, 3, 4, 5, 6), 6, 0);
    /* middle axis of 3-D: [2,1,2] and [2,2,2] -> [2,3,2], per outer index x's row then z's two */
    tg_tensor *x = tt_make(dt, 3, TGT_SHAPE(2, 1, 2), TGT_VALS(1, 2, 3, 4)), *z = iota(dt, 3, TGT_SHAPE(2, 2, 2));
    y = tg_concat(tp, 2, (tg_tensor *[]){x, z}, 1);
    ck_assert_shape(y, 3, TGT_SHAPE(2, 3, 2));
    ck_assert_tensor_near(y, TGT_VALS(1, 2, 0, 1, 2, 3, 3, 4, 4, 5, 6, 7), 12, 0);
    tg_tensor *all[] = {a, b, r, p, q, s, x, z};
    for (int i = 0; i < 8; i++) tg_tensor_free(all[i]);
    tg_tape_free(tp);
}
END_TEST

START_TEST(concat_grad_splits_dy_and_accumulates) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tt_make(dt, 2, TGT_SHAPE(2, 2), TGT_VALS(1, 2, 3, 4)), *c = tt_make(dt, 2, TGT_SHAPE(2, 1), TGT_VALS(7, 8));
    tg_tensor *dy = tt_make(dt, 2, TGT_SHAPE(2, 5), TGT_VALS(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
    tg_tensor_set_requires_grad(x, true);
    /* [x, c, x] along the last axis: x's gradient is dy[:, 0:2] + dy[:, 3:5] */
    tg_tensor *y = tg_concat(tp, 3, (tg_tensor *[]){x, c, x}, 1);
    ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
    ck_assert_grad_near(x, TGT_VALS(1 + 4, 2 + 5, 6 + 9, 7 + 10), 4, 0);
    ck_assert_ptr_null(tg_tensor_grad(c)); /* c needs none */
    tg_tensor_free(x);
    tg_tensor_free(c);
    tg_tensor_free(dy);
    tg_tape_free(tp);
}
END_TEST

/* ---- slice and split ---------------------------------------------------------------------- */
START_TEST(slice_values_by_hand) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = iota(dt, 2, TGT_SHAPE(3, 4)); /* rows 0..3, 4..7, 8..11 */
    tg_tensor *y = tg_slice(tp, x, 1, 1, 3);
    ck_assert_shape(y, 2, TGT_SHAPE(3, 2));
    ck_assert_tensor_near(y, TGT_VALS(1, 2, 5, 6, 9, 10), 6, 0);
    y = tg_slice(tp, x, -1, -3, -1); /* Python x[:, -3:-1] */
    ck_assert_tensor_near(y, TGT_VALS(1, 2, 5, 6, 9, 10), 6, 0);
    y = tg_slice(tp, x, 0, 2, 3);
    ck_assert_shape(y, 2, TGT_SHAPE(1, 4));
    ck_assert_tensor_near(y, TGT_VALS(8, 9, 10, 11), 4, 0);
    y = tg_slice(tp, x, -2, -1, 3); /* x[-1:3] is the last row */
    ck_assert_tensor_near(y, TGT_VALS(8, 9, 10, 11), 4, 0);
    y = tg_slice(tp, x, 1, 0, 4); /* the whole axis */
    ck_assert_shape(y, 2, TGT_SHAPE(3, 4));
    ck_assert_tensor_near(y, TGT_VALS(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), 12, 0);
    tg_tensor *z = iota(dt, 3, TGT_SHAPE(2, 3, 2));
    y = tg_slice(tp, z, 1, 1, 2);
    ck_assert_shape(y, 3, TGT_SHAPE(2, 1, 2));
    ck_assert_tensor_near(y, TGT_VALS(2, 3, 8, 9), 4, 0);
    tg_tensor_free(x);
    tg_tensor_free(z);
    tg_tape_free(tp);
}
END_TEST

START_TEST(slice_grad_fills_the_window_and_accumulates) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = iota(dt, 2, TGT_SHAPE(3, 4));
    tg_tensor *dy = tt_make(dt, 2, TGT_SHAPE(3, 2), TGT_VALS(1, 2, 3, 4, 5, 6));
    tg_tensor_set_requires_grad(x, true);
    tg_tensor *y = tg_slice(tp, x, 1, 1, 3);
    ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
    ck_assert_grad_near(x, TGT_VALS(0, 1, 2, 0, 0, 3, 4, 0, 0, 5, 6, 0), 12, 0);
    /* overlapping windows 0:2 and 1:3 side by side, dy = 1: column 1 is counted twice,
     * and the leaf keeps what the first backward left (+1 on the old window) */
    tg_tape_reset(tp);
    tg_tensor *ones = tg_tensor_new(dt, 2, TGT_SHAPE(3, 4));
    tg_tensor_fill(ones, 1);
    y = tg_concat(tp, 2, (tg_tensor *[]){tg_slice(tp, x, 1, 0, 2), tg_slice(tp, x, -1, 1, 3)}, 1);
    ck_assert_int_eq(tg_backward_ex(tp, y, ones), TG_OK);
    ck_assert_grad_near(x, TGT_VALS(1, 3, 3, 0, 1, 5, 5, 0, 1, 7, 7, 0), 12, 0);
    tg_tensor_free(x);
    tg_tensor_free(dy);
    tg_tensor_free(ones);
    tg_tape_free(tp);
}
END_TEST

START_TEST(split_into_parts) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = iota(dt, 2, TGT_SHAPE(2, 5)), *p[3];
    tg_tensor_set_requires_grad(x, true);
    ck_assert_int_eq(tg_split(tp, x, 1, 2, TGT_SHAPE(2, 3), p), TG_OK);
    ck_assert_shape(p[0], 2, TGT_SHAPE(2, 2));
    ck_assert_shape(p[1], 2, TGT_SHAPE(2, 3));
    ck_assert_tensor_near(p[0], TGT_VALS(0, 1, 5, 6), 4, 0);
    ck_assert_tensor_near(p[1], TGT_VALS(2, 3, 4, 7, 8, 9), 6, 0);
    ck_assert_int_eq(tg_split(tp, x, 0, 2, TGT_SHAPE(1, 1), p), TG_OK);
    ck_assert_tensor_near(p[1], TGT_VALS(5, 6, 7, 8, 9), 5, 0);
    ck_assert_int_eq(tg_split(tp, x, -1, 3, TGT_SHAPE(1, 3, 1), p), TG_OK);
    ck_assert_tensor_near(p[2], TGT_VALS(4, 9), 2, 0);
    /* gradient of the middle part alone: ones in columns 1..3 */
    tg_tensor *ones = tg_tensor_new(dt, 2, TGT_SHAPE(2, 3));
    tg_tensor_fill(ones, 1);
    ck_assert_int_eq(tg_backward_ex(tp, p[1], ones), TG_OK);
    ck_assert_grad_near(x, TGT_VALS(0, 1, 1, 1, 0, 0, 1, 1, 1, 0), 10, 0);
    ck_assert_int_eq(tg_split(tp, x, 1, 1, TGT_SHAPE(5), p), TG_OK); /* one part: everything */
    ck_assert_tensor_near(p[0], TGT_VALS(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), 10, 0);
    tg_tensor_free(x);
    tg_tensor_free(ones);
    tg_tape_free(tp);
}
END_TEST

/* The LSTM layout: z [B, 4H] cut into four [B, H] gates and joined again, against
 * index arithmetic; H odd so no block is a multiple of a vector width. */
START_TEST(lstm_gates_round_trip) {
    enum { B = 5, H = 33 };
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *z = iota(dt, 2, TGT_SHAPE(B, 4 * H)), *g[4];
    ck_assert_int_eq(tg_split(tp, z, 1, 4, TGT_SHAPE(H, H, H, H), g), TG_OK);
    for (int k = 0; k < 4; k++) {
        tg_tensor *s = tg_slice(tp, z, 1, k * H, (k + 1) * H);
        for (int64_t i = 0; i < B * H; i++) {
            double want = (double)((i / H) * 4 * H + k * H + i % H);
            ck_assert_near(tg_tensor_get(g[k], i), want, 0);
            ck_assert_near(tg_tensor_get(s, i), want, 0);
        }
    }
    tg_tensor *back = tg_concat(tp, 4, g, -1);
    for (int64_t i = 0; i < B * 4 * H; i++) ck_assert_near(tg_tensor_get(back, i), (double)i, 0);
    tg_tensor_free(z);
    tg_tape_free(tp);
}
END_TEST

/* ---- reshape ------------------------------------------------------------------------------- */
START_TEST(reshape_shares_data_and_infers_minus_one) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = iota(dt, 2, TGT_SHAPE(2, 3));
    tg_tensor *y = tg_reshape(tp, x, 2, TGT_SHAPE(3, -1));
    ck_assert_shape(y, 2, TGT_SHAPE(3, 2));
    ck_assert_ptr_eq(tg_tensor_data(y), tg_tensor_data(x));
    tg_tensor_set(x, 5, 42); /* a write to x shows through y */
    ck_assert_near(tg_tensor_get(y, 5), 42, 0);
    y = tg_reshape(tp, x, 4, TGT_SHAPE(1, 2, 1, 3));
    ck_assert_shape(y, 4, TGT_SHAPE(1, 2, 1, 3));
    y = tg_reshape(tp, x, 1, TGT_SHAPE(-1));
    ck_assert_shape(y, 1, TGT_SHAPE(6));
    ck_assert_tensor_near(y, TGT_VALS(0, 1, 2, 3, 4, 42), 6, 0);
    tg_tensor *one = tt_make(dt, 2, TGT_SHAPE(1, 1), TGT_VALS(7));
    y = tg_reshape(tp, one, 0, NULL); /* to a 0-dim tensor */
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tensor_ndim(y), 0);
    ck_assert_near(tg_tensor_item(y), 7, 0);
    tg_tensor *empty = tg_tensor_new(dt, 2, TGT_SHAPE(0, 3));
    y = tg_reshape(tp, empty, 3, TGT_SHAPE(3, 0, 5));
    ck_assert_shape(y, 3, TGT_SHAPE(3, 0, 5));
    tg_tensor_free(x);
    tg_tensor_free(one);
    tg_tensor_free(empty);
    tg_tape_free(tp);
}
END_TEST

START_TEST(reshape_grad_passes_through_and_accumulates) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = iota(dt, 2, TGT_SHAPE(2, 3));
    tg_tensor *dy = tt_make(dt, 1, TGT_SHAPE(12), TGT_VALS(1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60));
    tg_tensor_set_requires_grad(x, true);
    tg_tensor *a = tg_reshape(tp, x, 1, TGT_SHAPE(6)), *b = tg_reshape(tp, x, 2, TGT_SHAPE(-1, 2));
    tg_tensor *y = tg_concat(tp, 2, (tg_tensor *[]){a, tg_reshape(tp, b, 1, TGT_SHAPE(6))}, 0);
    ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
    ck_assert_grad_near(x, TGT_VALS(11, 22, 33, 44, 55, 66), 6, 0);
    tg_tensor_free(x);
    tg_tensor_free(dy);
    tg_tape_free(tp);
}
END_TEST

/* ---- transpose and permute --------------------------------------------------------------- */
START_TEST(transpose_values_by_hand) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *m = tt_make(dt, 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, 3, 4, 5, 6));
    tg_tensor *y = tg_transpose(tp, m, 0, 1);
    ck_assert_shape(y, 2, TGT_SHAPE(3, 2));
    ck_assert_tensor_near(y, TGT_VALS(1, 4, 2, 5, 3, 6), 6, 0);
    y = tg_transpose(tp, m, -1, 0);
    ck_assert_tensor_near(y, TGT_VALS(1, 4, 2, 5, 3, 6), 6, 0);
    y = tg_transpose(tp, m, 1, 1); /* the same axis: a copy */
    ck_assert_shape(y, 2, TGT_SHAPE(2, 3));
    ck_assert_tensor_near(y, TGT_VALS(1, 2, 3, 4, 5, 6), 6, 0);
    /* x[a,b,c] = 6a + 3b + c, [2,2,3] -> out[i,j,k] = x[k,j,i] */
    tg_tensor *x = iota(dt, 3, TGT_SHAPE(2, 2, 3));
    y = tg_transpose(tp, x, 0, 2);
    ck_assert_shape(y, 3, TGT_SHAPE(3, 2, 2));
    ck_assert_tensor_near(y, TGT_VALS(0, 6, 3, 9, 1, 7, 4, 10, 2, 8, 5, 11), 12, 0);
    /* x[a,b,c] = 6a + 2b + c, [2,3,2] -> out[i,j,k] = x[j,i,k]: pairs stay together */
    tg_tensor *w = iota(dt, 3, TGT_SHAPE(2, 3, 2));
    y = tg_transpose(tp, w, 0, 1);
    ck_assert_shape(y, 3, TGT_SHAPE(3, 2, 2));
    ck_assert_tensor_near(y, TGT_VALS(0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11), 12, 0);
    tg_tensor_free(m);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tape_free(tp);
}
END_TEST

START_TEST(transpose_grad_by_hand) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *m = tt_make(dt, 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, 3, 4, 5, 6));
    tg_tensor *dy = tt_make(dt, 2, TGT_SHAPE(3, 2), TGT_VALS(1, 2, 3, 4, 5, 6));
    tg_tensor_set_requires_grad(m, true);
    ck_assert_int_eq(tg_backward_ex(tp, tg_transpose(tp, m, 0, 1), dy), TG_OK);
    ck_assert_grad_near(m, TGT_VALS(1, 3, 5, 2, 4, 6), 6, 0);
    tg_tensor_free(m);
    tg_tensor_free(dy);
    tg_tape_free(tp);
}
END_TEST

/* Flat index of element idx (in x's axes) in a row-major tensor of the given shape. */
static int64_t flat(int nd, const int64_t *shape, const int64_t *idx) {
    int64_t f = 0;
    for (int d = 0; d < nd; d++) f = f * shape[d] + idx[d];
    return f;
}

/* Every one of the 24 permutations of a [2,3,1,4] tensor (a size-1 axis makes
 * dims merge in some of them), forward and gradient, against index arithmetic:
 * out[i0,i1,i2,i3] = x[j] with j[perm[d]] = i[d]. */
START_TEST(permute_all_4d_orders_match_index_arithmetic) {
    tg_dtype dt = tt_dtype_of(_i);
    const int64_t xs[4] = {2, 3, 1, 4};
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = iota(dt, 4, xs);
    tg_tensor_set_requires_grad(x, true);
    int n_perms = 0;
    for (int p = 0; p < 256; p++) {
        int perm[4] = {p & 3, (p >> 2) & 3, (p >> 4) & 3, (p >> 6) & 3}, seen = 0;
        for (int d = 0; d < 4; d++) seen |= 1 << perm[d];
        if (seen != 15) continue;
        n_perms++;
        tg_tape_reset(tp);
        tg_tensor_zero_grad(x);
        tg_tensor *y = tg_permute(tp, x, perm);
        int64_t ys[4];
        for (int d = 0; d < 4; d++) ys[d] = xs[perm[d]];
        ck_assert_shape(y, 4, ys);
        tg_tensor *dy = iota(dt, 4, ys); /* dy at out position f is f */
        ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
        int64_t i[4];
        for (i[0] = 0; i[0] < ys[0]; i[0]++)
            for (i[1] = 0; i[1] < ys[1]; i[1]++)
                for (i[2] = 0; i[2] < ys[2]; i[2]++)
                    for (i[3] = 0; i[3] < ys[3]; i[3]++) {
                        int64_t j[4];
                        for (int d = 0; d < 4; d++) j[perm[d]] = i[d];
                        int64_t fy = flat(4, ys, i), fx = flat(4, xs, j);
                        ck_assert_near(tg_tensor_get(y, fy), (double)fx, 0);
                        ck_assert_near(tg_tensor_grad_get(x, fx), (double)fy, 0);
                    }
        tg_tensor_free(dy);
    }
    ck_assert_int_eq(n_perms, 24);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(permute_values_negative_entries_and_0_dim) {
    tg_dtype dt = tt_dtype_of(_i);
    tg_tape *tp = tg_tape_new();
    tg_tensor *m = tt_make(dt, 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, 3, 4, 5, 6));
    tg_tensor *y = tg_permute(tp, m, TGT_PERM(1, 0));
    ck_assert_shape(y, 2, TGT_SHAPE(3, 2));
    ck_assert_tensor_near(y, TGT_VALS(1, 4, 2, 5, 3, 6), 6, 0);
    y = tg_permute(tp, m, TGT_PERM(-1, -2));
    ck_assert_tensor_near(y, TGT_VALS(1, 4, 2, 5, 3, 6), 6, 0);
    y = tg_permute(tp, m, TGT_PERM(0, 1)); /* identity: a copy */
    ck_assert_tensor_near(y, TGT_VALS(1, 2, 3, 4, 5, 6), 6, 0);
    tg_tensor *s = tt_make(dt, 0, NULL, TGT_VALS(3));
    y = tg_permute(tp, s, NULL); /* nothing to permute */
    ck_assert_ptr_nonnull(y);
    ck_assert_near(tg_tensor_item(y), 3, 0);
    tg_tensor_free(m);
    tg_tensor_free(s);
    tg_tape_free(tp);
}
END_TEST

/* Shape ops move int32 ids as they are (no gradient involved). */
START_TEST(int32_data_moves_unchanged) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *ids = tt_make(TG_I32, 2, TGT_SHAPE(2, 3), TGT_VALS(1, 2, 3, 4, 5, -6));
    tg_tensor *y = tg_transpose(tp, ids, 0, 1);
    ck_assert_int_eq(tg_tensor_dtype(y), TG_I32);
    ck_assert_tensor_near(y, TGT_VALS(1, 4, 2, 5, 3, -6), 6, 0);
    y = tg_concat(tp, 2, (tg_tensor *[]){ids, ids}, 0);
    ck_assert_tensor_near(y, TGT_VALS(1, 2, 3, 4, 5, -6, 1, 2, 3, 4, 5, -6), 12, 0);
    y = tg_slice(tp, ids, 1, 2, 3);
    ck_assert_tensor_near(y, TGT_VALS(3, -6), 2, 0);
    y = tg_reshape(tp, ids, 1, TGT_SHAPE(6));
    ck_assert_int_eq(tg_tensor_dtype(y), TG_I32);
    ck_assert_tensor_near(y, TGT_VALS(1, 2, 3, 4, 5, -6), 6, 0);
    tg_tensor_free(ids);
    tg_tape_free(tp);
}
END_TEST

/* ---- errors --------------------------------------------------------------------------------- */
START_TEST(concat_errors) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tg_tensor_new(TG_F64, 2, TGT_SHAPE(2, 3)), *b = tg_tensor_new(TG_F32, 2, TGT_SHAPE(2, 3)),
              *c = tg_tensor_new(TG_F64, 2, TGT_SHAPE(3, 3)), *d = tg_tensor_new(TG_F64, 3, TGT_SHAPE(2, 3, 1)),
              *s = tg_tensor_new(TG_F64, 0, NULL);
    ck_assert_ptr_null(tg_concat(tp, 2, (tg_tensor *[]){a, a}, 2));
    ck_assert_tape_error(tp, TG_ERR_AXIS, "concat: axis 2 out of range for [2,3]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_concat(tp, 2, (tg_tensor *[]){a, a}, -3));
    ck_assert_tape_error(tp, TG_ERR_AXIS, "concat: axis -3 out of range for [2,3]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_concat(tp, 1, &s, 0));
    ck_assert_tape_error(tp, TG_ERR_AXIS, "concat: axis 0 out of range for []");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_concat(tp, 2, (tg_tensor *[]){a, b}, 0));
    ck_assert_tape_error(
        tp, TG_ERR_DTYPE,
        "concat: dtypes differ: input 0 is float64 [2,3], input 1 is float32 [2,3]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_concat(tp, 3, (tg_tensor *[]){a, a, c}, 1));
    ck_assert_tape_error(
        tp, TG_ERR_SHAPE,
        "concat: shapes differ outside axis 1: input 0 is [2,3], input 2 is [3,3]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_concat(tp, 2, (tg_tensor *[]){a, d}, -1));
    ck_assert_tape_error(
        tp, TG_ERR_SHAPE,
        "concat: shapes differ outside axis -1: input 0 is [2,3], input 1 is [2,3,1]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_concat(tp, 0, (tg_tensor *[]){a}, 0));
    ck_assert_tape_error(tp, TG_ERR_ARG, "concat: no inputs");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_concat(tp, 2, NULL, 0));
    ck_assert_tape_error(tp, TG_ERR_ARG, "concat: no inputs");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_concat(tp, 2, (tg_tensor *[]){a, NULL}, 0));
    ck_assert_tape_error(tp, TG_ERR_ARG, "concat: input 1 is NULL");
    ck_assert_ptr_null(tg_concat(NULL, 1, &a, 0));
    tg_tensor *all[] = {a, b, c, d, s};
    for (int i = 0; i < 5; i++) tg_tensor_free(all[i]);
    tg_tape_free(tp);
}
END_TEST

static void slice_error(int64_t start, int64_t stop, int axis, tg_status code, const char *text) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_new(TG_F32, 2, TGT_SHAPE(2, 4));
    ck_assert_ptr_null(tg_slice(tp, x, axis, start, stop));
    ck_assert_tape_error(tp, code, text);
    tg_tensor_free(x);
    tg_tape_free(tp);
}

START_TEST(slice_errors) {
    slice_error(0, 1, 2, TG_ERR_AXIS, "slice: axis 2 out of range for [2,4]");
    slice_error(0, 1, -3, TG_ERR_AXIS, "slice: axis -3 out of range for [2,4]");
    slice_error(0, 5, 1, TG_ERR_INDEX, "slice: range 0:5 out of bounds for axis 1 of [2,4]");
    slice_error(-5, 2, 1, TG_ERR_INDEX, "slice: range -5:2 out of bounds for axis 1 of [2,4]");
    slice_error(5, 6, -1, TG_ERR_INDEX, "slice: range 5:6 out of bounds for axis -1 of [2,4]");
    slice_error(2, 2, 1, TG_ERR_INDEX, "slice: empty range 2:2 along axis 1 of [2,4]");
    slice_error(3, 1, 1, TG_ERR_INDEX, "slice: empty range 3:1 along axis 1 of [2,4]");
    slice_error(-1, -2, 0, TG_ERR_INDEX, "slice: empty range -1:-2 along axis 0 of [2,4]");
    slice_error(4, 4, 1, TG_ERR_INDEX, "slice: empty range 4:4 along axis 1 of [2,4]");
    tg_tape *tp = tg_tape_new();
    ck_assert_ptr_null(tg_slice(tp, NULL, 0, 0, 1));
    ck_assert_tape_error(tp, TG_ERR_ARG, "slice: input 0 is NULL");
    tg_tape_free(tp);
}
END_TEST

/* split fails as a whole: the status names the error, every out is NULL. */
static void split_error(tg_tensor *x, int axis, int n, const int64_t *sizes, tg_status code,
                        const char *text) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *outs[4];
    for (int i = 0; i < 4; i++) outs[i] = x; /* anything non-NULL */
    ck_assert_int_eq(tg_split(tp, x, axis, n, sizes, outs), code);
    ck_assert_tape_error(tp, code, text);
    for (int i = 0; i < n && i < 4; i++) ck_assert_ptr_null(outs[i]);
    tg_tape_stats st;
    tg_tape_stats_get(tp, &st);
    ck_assert_int_eq(st.nodes, 0); /* no part was taken before the check failed */
    tg_tape_free(tp);
}

START_TEST(split_errors) {
    tg_tensor *x = tg_tensor_new(TG_F64, 2, TGT_SHAPE(2, 6));
    tg_tensor_set_requires_grad(x, true); /* slices of x would be recorded */
    split_error(x, 1, 2, TGT_SHAPE(2, 3), TG_ERR_SHAPE,
                "split: sizes [2,3] do not sum to 6, the length of axis 1 of [2,6]");
    split_error(x, 1, 3, TGT_SHAPE(2, 3, 4), TG_ERR_SHAPE,
                "split: sizes [2,3,4] do not sum to 6, the length of axis 1 of [2,6]");
    split_error(x, -2, 2, TGT_SHAPE(2, 0), TG_ERR_SHAPE,
                "split: size 1 of [2,0] is not positive (axis -2 of [2,6])");
    split_error(x, 1, 3, TGT_SHAPE(3, -1, 4), TG_ERR_SHAPE,
                "split: size 1 of [3,-1,4] is not positive (axis 1 of [2,6])");
    split_error(x, 1, 2, TGT_SHAPE(INT64_MAX, 7), TG_ERR_SHAPE,
                "split: sizes [9223372036854775807,7] do not sum to 6");
    split_error(x, 2, 1, TGT_SHAPE(6), TG_ERR_AXIS, "split: axis 2 out of range for [2,6]");
    split_error(x, 1, 0, TGT_SHAPE(6), TG_ERR_ARG, "split: needs n >= 1 sizes and outputs, got n 0");
    split_error(x, 1, 2, NULL, TG_ERR_ARG,
                "split: needs n >= 1 sizes and outputs, got n 2, sizes NULL");
    split_error(NULL, 1, 1, TGT_SHAPE(6), TG_ERR_ARG, "split: input is NULL");
    tg_tape *tp = tg_tape_new();
    ck_assert_int_eq(tg_split(tp, x, 1, 1, TGT_SHAPE(6), NULL), TG_ERR_ARG);
    ck_assert_tape_error(tp, TG_ERR_ARG,
                         "split: needs n >= 1 sizes and outputs, got n 1, outs NULL");
    tg_tensor *o[1];
    ck_assert_int_eq(tg_split(NULL, x, 1, 1, TGT_SHAPE(6), o), TG_ERR_ARG);
    ck_assert_ptr_null(o[0]);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

static void reshape_error(int nx, const int64_t *sx, int ndim, const int64_t *shape,
                          tg_status code, const char *text) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_new(TG_F32, nx, sx);
    ck_assert_ptr_null(tg_reshape(tp, x, ndim, shape));
    ck_assert_tape_error(tp, code, text);
    tg_tensor_free(x);
    tg_tape_free(tp);
}

START_TEST(reshape_errors) {
    reshape_error(2, TGT_SHAPE(2, 3), 2, TGT_SHAPE(4, 2), TG_ERR_SHAPE, "reshape: cannot reshape [2,3] to [4,2]");
    reshape_error(2, TGT_SHAPE(2, 3), 2, TGT_SHAPE(4, -1), TG_ERR_SHAPE,
                  "reshape: cannot reshape [2,3] to [4,-1]");
    reshape_error(2, TGT_SHAPE(2, 3), 0, NULL, TG_ERR_SHAPE, "reshape: cannot reshape [2,3] to []");
    reshape_error(2, TGT_SHAPE(2, 3), 2, TGT_SHAPE(-1, -1), TG_ERR_SHAPE,
                  "reshape: more than one -1 in [-1,-1] (input [2,3])");
    reshape_error(2, TGT_SHAPE(2, 3), 2, TGT_SHAPE(-2, -3), TG_ERR_SHAPE,
                  "reshape: negative dimension -2 in [-2,-3] (input [2,3])");
    reshape_error(2, TGT_SHAPE(2, 3), 7, TGT_SHAPE(1, 1, 1, 1, 1, 1, 6), TG_ERR_SHAPE,
                  "reshape: ndim 7 not in [0,6] (input [2,3])");
    reshape_error(2, TGT_SHAPE(2, 3), -1, TGT_SHAPE(6), TG_ERR_SHAPE,
                  "reshape: ndim -1 not in [0,6] (input [2,3])");
    reshape_error(2, TGT_SHAPE(2, 3), 2, NULL, TG_ERR_ARG,
                  "reshape: shape is NULL for ndim 2 (input [2,3])");
    reshape_error(2, TGT_SHAPE(0, 3), 2, TGT_SHAPE(0, -1), TG_ERR_SHAPE,
                  "reshape: cannot reshape [0,3] to [0,-1] (-1 next to a 0)");
    reshape_error(2, TGT_SHAPE(2, 3), 3, TGT_SHAPE(INT64_MAX, 4, 0), TG_ERR_SHAPE,
                  "reshape: cannot reshape [2,3] to [9223372036854775807,4,0]");
    tg_tape *tp = tg_tape_new();
    ck_assert_ptr_null(tg_reshape(tp, NULL, 1, TGT_SHAPE(6)));
    ck_assert_tape_error(tp, TG_ERR_ARG, "reshape: input 0 is NULL");
    tg_tape_free(tp);
}
END_TEST

START_TEST(transpose_and_permute_errors) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *m = tg_tensor_new(TG_F64, 2, TGT_SHAPE(2, 3)), *x = tg_tensor_new(TG_F32, 3, TGT_SHAPE(2, 3, 4));
    ck_assert_ptr_null(tg_transpose(tp, m, 0, 2));
    ck_assert_tape_error(tp, TG_ERR_AXIS, "transpose: axes 0 and 2: out of range for [2,3]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_transpose(tp, m, -3, 1));
    ck_assert_tape_error(tp, TG_ERR_AXIS, "transpose: axes -3 and 1: out of range for [2,3]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_permute(tp, x, TGT_PERM(0, 0, 1)));
    ck_assert_tape_error(tp, TG_ERR_AXIS,
                         "permute: [0,0,1] is not a permutation of the axes of [2,3,4]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_permute(tp, x, TGT_PERM(0, 3, 1)));
    ck_assert_tape_error(tp, TG_ERR_AXIS,
                         "permute: [0,3,1] is not a permutation of the axes of [2,3,4]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_permute(tp, x, TGT_PERM(2, -1, 0)));
    ck_assert_tape_error(tp, TG_ERR_AXIS,
                         "permute: [2,-1,0] is not a permutation of the axes of [2,3,4]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_permute(tp, m, NULL));
    ck_assert_tape_error(tp, TG_ERR_ARG, "permute: perm is NULL for [2,3]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_permute(tp, NULL, TGT_PERM(0)));
    ck_assert_tape_error(tp, TG_ERR_ARG, "permute: input 0 is NULL");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_transpose(tp, NULL, 0, 1));
    ck_assert_tape_error(tp, TG_ERR_ARG, "transpose: input 0 is NULL");
    tg_tensor_free(m);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

Suite *suite_shape(void) {
    Suite *s = suite_create("shape");
    TCase *tc = tcase_create("values");
    tcase_add_loop_test(tc, concat_values_by_hand, 0, 2);
    tcase_add_loop_test(tc, concat_grad_splits_dy_and_accumulates, 0, 2);
    tcase_add_loop_test(tc, slice_values_by_hand, 0, 2);
    tcase_add_loop_test(tc, slice_grad_fills_the_window_and_accumulates, 0, 2);
    tcase_add_loop_test(tc, split_into_parts, 0, 2);
    tcase_add_loop_test(tc, lstm_gates_round_trip, 0, 2);
    tcase_add_loop_test(tc, reshape_shares_data_and_infers_minus_one, 0, 2);
    tcase_add_loop_test(tc, reshape_grad_passes_through_and_accumulates, 0, 2);
    tcase_add_loop_test(tc, transpose_values_by_hand, 0, 2);
    tcase_add_loop_test(tc, transpose_grad_by_hand, 0, 2);
    tcase_add_loop_test(tc, permute_all_4d_orders_match_index_arithmetic, 0, 2);
    tcase_add_loop_test(tc, permute_values_negative_entries_and_0_dim, 0, 2);
    tcase_add_test(tc, int32_data_moves_unchanged);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("errors");
    tcase_add_test(te, concat_errors);
    tcase_add_test(te, slice_errors);
    tcase_add_test(te, split_errors);
    tcase_add_test(te, reshape_errors);
    tcase_add_test(te, transpose_and_permute_errors);
    suite_add_tcase(s, te);
    return s;
}
