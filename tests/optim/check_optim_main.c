/* tests/optim/check_optim_main.c - the optim/ Check suites, each test forked
 * (CK_FORK) so a crash is a failure. CK_RUN_SUITE picks one suite. */
#include "optim_tests.h"

int main(void) {
    SRunner *sr = srunner_create(suite_optim());
    srunner_add_suite(sr, suite_sched());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
