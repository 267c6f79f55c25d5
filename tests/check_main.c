/* tests/check_main.c - runs every Check suite, each test in its own process
 * (CK_FORK), so a crash is a failure and not a dead runner. */
#include <check.h>
#include <stdlib.h>

#include "check_suites.h"

int main(void) {
    SRunner *sr = srunner_create(suite_tensor());
    srunner_add_suite(sr, suite_tape());
    srunner_add_suite(sr, suite_gradcheck());
    srunner_add_suite(sr, suite_unary());
    srunner_add_suite(sr, suite_matmul());
    srunner_add_suite(sr, suite_gemm());
    srunner_add_suite(sr, suite_binary());
    srunner_add_suite(sr, suite_reduce());
    srunner_add_suite(sr, suite_shape());
    srunner_add_suite(sr, suite_softmax());
    srunner_add_suite(sr, suite_conv());
    srunner_add_suite(sr, suite_conv2d());
    srunner_add_suite(sr, suite_embedding());
    srunner_add_suite(sr, suite_dropout());
    srunner_add_suite(sr, suite_loss());
    srunner_add_suite(sr, suite_fuse());
    srunner_add_suite(sr, suite_sizes());
    srunner_add_suite(sr, suite_numerics());
    srunner_add_suite(sr, suite_select());
    srunner_add_suite(sr, suite_grad());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
