/* tests/check_tensor.c - tensor creation, access, ownership, errors. */
#include "check_suites.h"

START_TEST(new_tensor_is_zero_filled_with_its_shape) {
    int64_t shape[] = {2, 3, 4};
    tg_tensor *t = tg_tensor_new(TG_F32, 3, shape);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tg_tensor_ndim(t), 3);
    ck_assert_int_eq(tg_tensor_numel(t), 24);
    ck_assert_int_eq(tg_tensor_dim(t, -1), 4);
    ck_assert_int_eq(tg_tensor_dim(t, 5), -1);
    for (int i = 0; i < 24; i++) ck_assert_near(tg_tensor_get(t, i), 0.0, 0);
    ck_assert_ptr_null(tg_tensor_grad(t));
    tg_tensor_free(t);
}
END_TEST

START_TEST(values_round_trip_through_both_float_dtypes) {
    int64_t shape[] = {3};
    double v[] = {1.5, -2.25, 1e-3};
    tg_tensor *a = tg_tensor_from(TG_F64, 1, shape, v);
    tg_tensor *b = tg_tensor_clone(a, TG_F32);
    ck_assert_tensor_near(b, v, 3, 1e-7);
    ck_assert_int_eq(tg_tensor_dtype(b), TG_F32);
    ck_assert_int_eq(tg_tensor_copy(a, b), TG_OK);
    ck_assert_tensor_near(a, v, 3, 1e-7);
    tg_tensor_free(a);
    tg_tensor_free(b);
}
END_TEST

START_TEST(wrap_uses_caller_memory_without_copying) {
    float buf[4] = {1, 2, 3, 4};
    int64_t shape[] = {2, 2};
    tg_tensor *t = tg_tensor_wrap(TG_F32, 2, shape, buf);
    ck_assert_ptr_eq(tg_tensor_data(t), buf);
    tg_tensor_set(t, 3, 9);
    ck_assert(buf[3] == 9.0f);
    tg_tensor_free(t);
    ck_assert(buf[0] == 1.0f); /* still ours */
}
END_TEST

START_TEST(zero_dim_tensor_holds_one_element) {
    tg_tensor *t = tg_tensor_new(TG_F64, 0, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tg_tensor_numel(t), 1);
    tg_tensor_set(t, 0, 4.5);
    ck_assert_near(tg_tensor_item(t), 4.5, 0);
    char s[32];
    ck_assert_str_eq(tg_shape_str(t, s, sizeof s), "[]");
    tg_tensor_free(t);
}
END_TEST

START_TEST(bad_shapes_and_dtypes_are_errors_not_crashes) {
    int64_t neg[] = {2, -1};
    ck_assert_ptr_null(tg_tensor_new(TG_F32, 2, neg));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tensor_new: bad shape [2,-1]"));
    int64_t ok[] = {2};
    ck_assert_ptr_null(tg_tensor_new(TG_F32, TG_MAX_DIMS + 1, ok));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_ptr_null(tg_tensor_new((tg_dtype)7, 1, ok));
    ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
    int64_t huge[] = {INT64_MAX / 2, 4};
    ck_assert_ptr_null(tg_tensor_new(TG_F32, 2, huge));
    ck_assert_ptr_null(tg_tensor_wrap(TG_F32, 1, ok, NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
}
END_TEST

START_TEST(copy_between_different_sizes_is_an_error) {
    int64_t s2[] = {2}, s3[] = {3};
    tg_tensor *a = tg_tensor_new(TG_F32, 1, s2), *b = tg_tensor_new(TG_F32, 1, s3);
    ck_assert_int_eq(tg_tensor_copy(a, b), TG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tensor_copy: sizes differ: [2] <- [3]"));
    tg_tensor_free(a);
    tg_tensor_free(b);
}
END_TEST

/* get(t, 99) on 3 elements returned 0 and set(t, -5, v) did nothing, silently. */
START_TEST(out_of_range_element_access_is_reported) {
    tg_tensor *t = tg_tensor_new(TG_F32, 1, TGT_SHAPE(3));
    tg_clear_last_error();
    ck_assert(isnan(tg_tensor_get(t, 99)));
    ck_assert_last_error(TG_ERR_INDEX, "tensor_get: index 99 out of range [0,3) for [3]");
    ck_assert_int_eq(tg_tensor_set(t, -5, 5.0), TG_ERR_INDEX);
    ck_assert_last_error(TG_ERR_INDEX, "tensor_set: index -5 out of range [0,3) for [3]");
    ck_assert_int_eq(tg_tensor_set(t, 3, 5.0), TG_ERR_INDEX);
    ck_assert(isnan(tg_tensor_grad_get(t, 3)));
    ck_assert_last_error(TG_ERR_INDEX, "tensor_grad_get: index 3 out of range");
    ck_assert_tensor_near(t, TGT_VALS(0, 0, 0), 3, 0);
    ck_assert_near(tg_tensor_grad_get(t, 2), 0.0, 0); /* in range, no gradient yet: 0 */
    tg_tensor *empty = tg_tensor_new(TG_F64, 1, TGT_SHAPE(0));
    ck_assert(isnan(tg_tensor_item(empty)));
    ck_assert_last_error(TG_ERR_INDEX, "tensor_item: index 0 out of range [0,0) for [0]");
    ck_assert_int_eq(tg_tensor_dim(t, 1), -1);
    ck_assert_last_error(TG_ERR_AXIS, "tensor_dim: axis 1 out of range for [3]");
    tg_tensor_free(empty);
    tg_tensor_free(t);
}
END_TEST

/* dtype/ndim/shape/numel/dim(NULL) crashed while data/get/grad took NULL. */
START_TEST(every_accessor_takes_null_and_says_so) {
    tg_tensor *t = NULL;
    char s[16];
    tg_clear_last_error();
    ck_assert_str_eq(tg_dtype_name(tg_tensor_dtype(t)), "unknown");
    ck_assert_last_error(TG_ERR_ARG, "tensor_dtype: tensor is NULL");
    ck_assert_int_eq(tg_tensor_ndim(t), -1);
    ck_assert_last_error(TG_ERR_ARG, "tensor_ndim: tensor is NULL");
    ck_assert_ptr_null(tg_tensor_shape(t));
    ck_assert_int_eq(tg_tensor_numel(t), -1);
    ck_assert_int_eq(tg_tensor_dim(t, 0), -1);
    ck_assert_last_error(TG_ERR_ARG, "tensor_dim: tensor is NULL");
    ck_assert_ptr_null(tg_tensor_data(t));
    ck_assert_ptr_null(tg_tensor_cdata(t));
    ck_assert_ptr_null(tg_tensor_grad(t));
    ck_assert(isnan(tg_tensor_get(t, 0)));
    ck_assert(isnan(tg_tensor_item(t)));
    ck_assert(isnan(tg_tensor_grad_get(t, 0)));
    ck_assert_int_eq(tg_tensor_set(t, 0, 1.0), TG_ERR_ARG);
    ck_assert_int_eq(tg_tensor_fill(t, 1.0), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "tensor_fill: tensor is NULL");
    ck_assert_int_eq(tg_tensor_copy(t, t), TG_ERR_ARG);
    ck_assert_ptr_null(tg_tensor_clone(t, TG_F32));
    tg_tensor_set_requires_grad(t, true);
    ck_assert(!tg_tensor_requires_grad(t));
    tg_tensor_zero_grad(t);
    ck_assert_str_eq(tg_shape_str(t, s, sizeof s), "(null)");
    tg_tensor_free(t);
}
END_TEST

/* An int32 set to 1e30 or NaN was a C conversion out of range (UB). */
START_TEST(int32_tensors_take_only_values_they_can_hold) {
    tg_tensor *t = tg_tensor_new(TG_I32, 1, TGT_SHAPE(3));
    ck_assert_int_eq(tg_tensor_set(t, 0, 1e30), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "tensor_set: 1e+30 does not fit an int32 tensor");
    ck_assert_int_eq(tg_tensor_set(t, 0, NAN), TG_ERR_ARG);
    ck_assert_int_eq(tg_tensor_set(t, 0, -INFINITY), TG_ERR_ARG);
    ck_assert_int_eq(tg_tensor_set(t, 0, 2147483648.0), TG_ERR_ARG);
    ck_assert_int_eq(tg_tensor_set(t, 0, -2147483649.0), TG_ERR_ARG);
    ck_assert_int_eq(tg_tensor_set(t, 0, 2147483647.9), TG_OK); /* truncated, as a C cast */
    ck_assert_int_eq(tg_tensor_set(t, 1, -2147483648.9), TG_OK);
    ck_assert_int_eq(tg_tensor_set(t, 2, -2.7), TG_OK);
    ck_assert_tensor_near(t, TGT_VALS(2147483647, -2147483648.0, -2), 3, 0);
    ck_assert_int_eq(tg_tensor_fill(t, NAN), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "tensor_fill: nan does not fit an int32 tensor");
    ck_assert_near(tg_tensor_get(t, 2), -2, 0); /* unchanged */
    ck_assert_ptr_null(tg_tensor_from(TG_I32, 1, TGT_SHAPE(2), TGT_VALS(1, 1e30)));
    ck_assert_last_error(TG_ERR_ARG, "tensor_from: 1e+30 does not fit");
    tg_tensor *f = tg_tensor_from(TG_F64, 1, TGT_SHAPE(3), TGT_VALS(4, NAN, 5));
    ck_assert_int_eq(tg_tensor_copy(t, f), TG_ERR_ARG);
    ck_assert_near(tg_tensor_get(t, 0), 2147483647, 0); /* checked before anything changed */
    ck_assert_ptr_null(tg_tensor_clone(f, TG_I32));
    tg_tensor_free(f);
    tg_tensor_free(t);
}
END_TEST

START_TEST(index_tensors_never_require_grad) {
    int64_t s[] = {3};
    tg_tensor *t = tg_tensor_new(TG_I32, 1, s);
    tg_tensor_set_requires_grad(t, true);
    ck_assert(!tg_tensor_requires_grad(t));
    tg_tensor_free(t);
}
END_TEST

START_TEST(rng_is_reproducible_and_uniform_in_unit_interval) {
    tg_rng a = tg_rng_seeded(7), b = tg_rng_seeded(7), c = tg_rng_seeded(8);
    ck_assert(tg_rng_next(&a) == tg_rng_next(&b));
    ck_assert(tg_rng_next(&a) != tg_rng_next(&c));
    double sum = 0, sq = 0;
    for (int i = 0; i < 100000; i++) {
        double u = tg_rng_uniform(&a);
        ck_assert(u >= 0 && u < 1);
        double z = tg_rng_normal(&b);
        sum += z;
        sq += z * z;
    }
    ck_assert_near(sum / 1e5, 0.0, 0.02);       /* N(0,1) mean ~ 0 */
    ck_assert_near(sq / 1e5, 1.0, 0.03);        /* and variance ~ 1 */
}
END_TEST

START_TEST(blis_runs_a_known_fast_subconfiguration) {
    const char *arch = tg_blas_arch();
    ck_assert_ptr_nonnull(arch);
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        !getenv("BLIS_ARCH_TYPE"))
        ck_assert_str_eq(arch, "skx");
    ck_assert_int_ge(tg_default_threads(), 1);
}
END_TEST

Suite *suite_tensor(void) {
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("tensor");
    tcase_add_test(tc, new_tensor_is_zero_filled_with_its_shape);
    tcase_add_test(tc, values_round_trip_through_both_float_dtypes);
    tcase_add_test(tc, wrap_uses_caller_memory_without_copying);
    tcase_add_test(tc, zero_dim_tensor_holds_one_element);
    tcase_add_test(tc, bad_shapes_and_dtypes_are_errors_not_crashes);
    tcase_add_test(tc, copy_between_different_sizes_is_an_error);
    tcase_add_test(tc, out_of_range_element_access_is_reported);
    tcase_add_test(tc, every_accessor_takes_null_and_says_so);
    tcase_add_test(tc, int32_tensors_take_only_values_they_can_hold);
    tcase_add_test(tc, index_tensors_never_require_grad);
    tcase_add_test(tc, rng_is_reproducible_and_uniform_in_unit_interval);
    tcase_add_test(tc, blis_runs_a_known_fast_subconfiguration);
    suite_add_tcase(s, tc);
    return s;
}
