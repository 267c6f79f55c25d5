/* tests/nn/check_nn_main.c - runs the nn Check suites, each test forked. */
#include "check_nn.h"

int main(void) {
    SRunner *sr = srunner_create(suite_nn_layers());
    srunner_add_suite(sr, suite_nn_rnn());
    srunner_add_suite(sr, suite_nn_cells());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
