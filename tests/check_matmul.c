/* tests/check_matmul.c - matmul values worked by hand, batching, errors,
 * and the lecture's RNN weighted sum. */
#include "check_suites.h"

static tg_tensor *mat(tg_dtype dt, int64_t r, int64_t c, const double *v) {
    int64_t s[] = {r, c};
    return tg_tensor_from(dt, 2, s, v);
}

START_TEST(two_by_three_times_three_by_two) {
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        tg_tape *tp = tg_tape_new();
        tg_tensor *a = mat(dt, 2, 3, (double[]){1, 2, 3, 4, 5, 6});
        tg_tensor *b = mat(dt, 3, 2, (double[]){7, 8, 9, 10, 11, 12});
        tg_tensor *c = tg_matmul(tp, a, b);
        double want[] = {58, 64, 139, 154};
        ck_assert_tensor_near(c, want, 4, 0);
        /* the same through both transposes: (b^T)^T (a^T)^T... c^T = b^T a^T */
        tg_tensor *at = mat(dt, 3, 2, (double[]){1, 4, 2, 5, 3, 6});
        tg_tensor *bt = mat(dt, 2, 3, (double[]){7, 9, 11, 8, 10, 12});
        tg_matmul_opts both = {.trans_a = true, .trans_b = true};
        ck_assert_tensor_near(tg_matmul_ex(tp, at, bt, &both), want, 4, 0);
        tg_tensor_free(a);
        tg_tensor_free(b);
        tg_tensor_free(at);
        tg_tensor_free(bt);
        tg_tape_free(tp);
    }
}
END_TEST

/* Lecture: the RNN's weighted sum of input 0.4 and previous state 3 with
 * weights 0.2 and 0.4 is 0.2*0.4 + 0.4*3 = 1.28. */
START_TEST(rnn_weighted_sum_from_the_lecture) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *xh = mat(TG_F64, 1, 2, (double[]){0.4, 3});
    tg_tensor *w = mat(TG_F64, 2, 1, (double[]){0.2, 0.4});
    ck_assert_near(tg_tensor_item(tg_matmul(tp, xh, w)), 1.28, 1e-12);
    tg_tensor_free(xh);
    tg_tensor_free(w);
    tg_tape_free(tp);
}
END_TEST

START_TEST(batched_and_shared_weight_products) {
    tg_tape *tp = tg_tape_new();
    int64_t sa[] = {2, 1, 2}, sb[] = {2, 2, 1};
    tg_tensor *a = tg_tensor_from(TG_F64, 3, sa, (double[]){1, 2, 3, 4});
    tg_tensor *b = tg_tensor_from(TG_F64, 3, sb, (double[]){5, 6, 7, 8});
    tg_tensor *c = tg_matmul(tp, a, b); /* [2,1,1]: 1*5+2*6, 3*7+4*8 */
    ck_assert_int_eq(tg_tensor_ndim(c), 3);
    ck_assert_tensor_near(c, ((double[]){17, 53}), 2, 0);
    tg_tensor *w = mat(TG_F64, 2, 1, (double[]){1, -1});
    ck_assert_tensor_near(tg_matmul(tp, a, w), ((double[]){-1, -1}), 2, 0);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(w);
    tg_tape_free(tp);
}
END_TEST

START_TEST(shape_and_dtype_errors_name_the_operands) {
    tg_tape *tp = tg_tape_new();
    int64_t s1[] = {2, 3}, s2[] = {2, 3}, s3[] = {3}, s4[] = {2, 3, 4}, s5[] = {3, 3, 4};
    tg_tensor *a = tg_tensor_new(TG_F32, 2, s1), *b = tg_tensor_new(TG_F32, 2, s2);
    tg_tensor *v = tg_tensor_new(TG_F32, 1, s3), *d = tg_tensor_new(TG_F64, 2, s2);
    tg_tensor *p = tg_tensor_new(TG_F32, 3, s4), *q = tg_tensor_new(TG_F32, 3, s5);
    tg_tensor *i = tg_tensor_new(TG_I32, 2, s2);

    ck_assert_ptr_null(tg_matmul(tp, a, b));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "matmul: inner dimensions differ: [2,3] x [2,3]");
    tg_tape_reset(tp);
    tg_matmul_opts tb = {.trans_b = true};
    ck_assert_ptr_nonnull(tg_matmul_ex(tp, a, b, &tb)); /* [2,3] x [2,3]^T is fine */
    ck_assert_ptr_null(tg_matmul(tp, a, v));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "matmul: needs at least 2-D operands: [2,3] x [3]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_matmul_ex(tp, a, d, &tb));
    ck_assert_tape_error(tp, TG_ERR_DTYPE, "matmul: dtypes differ: float32 [2,3] x float64 [2,3]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_matmul(tp, p, q));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "matmul: batch dimensions differ: [2,3,4] x [3,3,4]");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_matmul(tp, i, i));
    ck_assert_tape_error(tp, TG_ERR_DTYPE, "matmul: needs a float tensor, got int32 [2,3]");
    tg_tensor *all[] = {a, b, v, d, p, q, i};
    for (int k = 0; k < 7; k++) tg_tensor_free(all[k]);
    tg_tape_free(tp);
}
END_TEST

/* Two heads of width 1, worked by hand. q = [[1,2],[3,4]] holds head 0
 * [[1],[3]] and head 1 [[2],[4]]; k = [[5,6],[7,8]] heads [[5],[7]], [[6],[8]].
 * q k^T per head: [[5,7],[15,21]] and [[12,16],[24,32]]. Those times v's
 * heads [[1],[2]] and [[-1],[0]]: [[19],[57]] and [[-12],[-24]], merged
 * side by side per row: [[19,-12],[57,-24]]. */
START_TEST(per_head_products_read_and_write_heads_in_place) {
    for (int dd = 0; dd < 2; dd++) {
        tg_dtype dt = dd ? TG_F32 : TG_F64;
        tg_tape *tp = tg_tape_new();
        int64_t s3[] = {1, 2, 2};
        tg_tensor *q = tg_tensor_from(dt, 3, s3, (double[]){1, 2, 3, 4});
        tg_tensor *k = tg_tensor_from(dt, 3, s3, (double[]){5, 6, 7, 8});
        tg_tensor *v = tg_tensor_from(dt, 3, s3, (double[]){1, -1, 2, 0});
        tg_tensor *s = tg_matmul_ex(tp, q, k, &(tg_matmul_opts){.trans_b = true, .heads = 2});
        ck_assert_shape(s, 4, TGT_SHAPE(1, 2, 2, 2));
        ck_assert_tensor_near(s, ((double[]){5, 7, 15, 21, 12, 16, 24, 32}), 8, 0);
        tg_tensor *o = tg_matmul_ex(tp, s, v, &(tg_matmul_opts){.heads = 2, .merge_heads = true});
        ck_assert_shape(o, 3, TGT_SHAPE(1, 2, 2));
        ck_assert_tensor_near(o, ((double[]){19, -12, 57, -24}), 4, 0);
        tg_tensor_free(q);
        tg_tensor_free(k);
        tg_tensor_free(v);
        tg_tape_free(tp);
    }
}
END_TEST

START_TEST(head_layout_errors_name_the_operands) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tg_tensor_new(TG_F32, 3, (int64_t[]){2, 3, 4});
    tg_tensor *b = tg_tensor_new(TG_F32, 3, (int64_t[]){3, 3, 4});
    tg_tensor *w = tg_tensor_new(TG_F32, 4, (int64_t[]){2, 3, 3, 3});
    ck_assert_fails(tp, tg_matmul_ex(tp, a, a, &(tg_matmul_opts){.trans_b = true, .heads = 3}),
                    TG_ERR_SHAPE, "matmul: with 3 heads operands must be [B, T, h*d] or "
                    "[B, h, R, C]: [2,3,4] x [2,3,4]");
    ck_assert_fails(tp, tg_matmul_ex(tp, a, b, &(tg_matmul_opts){.trans_b = true, .heads = 2}),
                    TG_ERR_SHAPE, "matmul: with 2 heads operands must be [B, T, h*d] or "
                    "[B, h, R, C]: [2,3,4] x [3,3,4]");
    ck_assert_fails(tp, tg_matmul_ex(tp, w, a, &(tg_matmul_opts){.heads = 2}), TG_ERR_SHAPE,
                    "matmul: with 2 heads operands must be");
    ck_assert_fails(tp, tg_matmul_ex(tp, a, a, &(tg_matmul_opts){.heads = -1}), TG_ERR_SHAPE,
                    "matmul: heads must be >= 0: [2,3,4] x [2,3,4]");
    ck_assert_fails(tp, tg_matmul_ex(tp, a, a, &(tg_matmul_opts){.merge_heads = true}),
                    TG_ERR_SHAPE, "matmul: merge_heads needs heads > 0");
    ck_assert_fails(tp, tg_matmul_ex(tp, a, a, &(tg_matmul_opts){.heads = 2}), TG_ERR_SHAPE,
                    "matmul: inner dimensions differ: [2,3,4] x [2,3,4]");
    /* empty operands whose per-head product would be [1, 1, 2^40, 2^23]: refused before
     * any size of it is computed (2^63 would overflow) */
    tg_tensor *wide = tg_tensor_new(TG_F32, 3, (int64_t[]){1, (int64_t)1 << 40, 0});
    tg_tensor *tall = tg_tensor_new(TG_F32, 3, (int64_t[]){1, 0, (int64_t)1 << 23});
    ck_assert_ptr_nonnull(wide);
    ck_assert_ptr_nonnull(tall);
    ck_assert_fails(tp, tg_matmul_ex(tp, wide, tall, &(tg_matmul_opts){.heads = 1}), TG_ERR_SHAPE,
                    "matmul: per-head result would have more than 2^40 elements");
    tg_tensor_free(wide);
    tg_tensor_free(tall);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(w);
    tg_tape_free(tp);
}
END_TEST

/* ---- per-head products split across a tape's threads --------------------------------- */
/* Attention's per-head products of [4, 64, 4*32] projections (16 MFLOP a
 * batch): run with 2 threads the batch splits across them. Each product is
 * computed alone either way, so values and gradients equal a 1-thread tape's
 * bit for bit. (The GEMM layer's first calls of a shape, and every call while
 * another process holds a core, run on one thread: several steps are run.) */
/* (Here, not in check_threads.c: that suite runs under ThreadSanitizer with one
 * OpenMP thread, since libgomp's barriers are invisible to it; this test sets
 * 2 threads on its tape.) */
static void head_products(int threads, tg_tensor *q, tg_tensor *k, tg_tensor *v, double *out,
                          double *dq) {
    tg_tape *tp = tg_tape_new();
    tg_tape_set_threads(tp, threads);
    for (int step = 0; step < 6; step++) {
        tg_tensor_zero_grad(q);
        tg_tensor *s = tg_matmul_ex(tp, q, k, &(tg_matmul_opts){.trans_b = true, .heads = 4});
        tg_tensor *o = tg_matmul_ex(tp, s, v, &(tg_matmul_opts){.heads = 4, .merge_heads = true});
        ck_assert_int_eq(tg_backward(tp, tg_sum(tp, tg_mul(tp, o, o))), TG_OK);
        for (int64_t i = 0; i < tg_tensor_numel(o); i++) out[i] = tg_tensor_get(o, i);
        tg_tape_reset(tp);
    }
    for (int64_t i = 0; i < tg_tensor_numel(q); i++) dq[i] = tg_tensor_grad_get(q, i);
    tg_tape_free(tp);
}

START_TEST(per_head_batches_on_two_threads_equal_one_thread) {
    int64_t n = 4 * 64 * 128;
    tg_tensor *x[3];
    tg_rng rng = tg_rng_seeded(7);
    for (int j = 0; j < 3; j++) {
        x[j] = tg_tensor_new(TG_F32, 3, TGT_SHAPE(4, 64, 128));
        for (int64_t i = 0; i < n; i++) tg_tensor_set(x[j], i, tg_rng_normal(&rng) * 0.1);
    }
    tg_tensor_set_requires_grad(x[0], true);
    double *o1 = malloc(sizeof(double) * (size_t)n * 4), *o2 = o1 + n, *g1 = o2 + n, *g2 = g1 + n;
    ck_assert_ptr_nonnull(o1);
    head_products(1, x[0], x[1], x[2], o1, g1);
    head_products(2, x[0], x[1], x[2], o2, g2);
    for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(o1[i] == o2[i], "out[%lld]: %.9g on 1 thread, %.9g on 2", (long long)i,
                      o1[i], o2[i]);
        ck_assert_msg(g1[i] == g2[i], "dq[%lld]: %.9g on 1 thread, %.9g on 2", (long long)i,
                      g1[i], g2[i]);
    }
    free(o1);
    for (int j = 0; j < 3; j++) tg_tensor_free(x[j]);
}
END_TEST

Suite *suite_matmul(void) {
    Suite *s = suite_create("matmul");
    TCase *tc = tcase_create("matmul");
    tcase_add_test(tc, two_by_three_times_three_by_two);
    tcase_add_test(tc, rnn_weighted_sum_from_the_lecture);
    tcase_add_test(tc, batched_and_shared_weight_products);
    tcase_add_test(tc, shape_and_dtype_errors_name_the_operands);
    tcase_add_test(tc, per_head_products_read_and_write_heads_in_place);
    tcase_add_test(tc, head_layout_errors_name_the_operands);
    tcase_add_test(tc, per_head_batches_on_two_threads_equal_one_thread);
    suite_add_tcase(s, tc);
    return s;
}
