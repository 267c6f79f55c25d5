/* tests/io/check_io_main.c - the io/ Check suites, each test forked
 * (CK_FORK) so a crash is a failure. CK_RUN_SUITE picks one suite. */
#include "io_tests.h"

int main(void) {
    SRunner *sr = srunner_create(suite_safetensors());
    srunner_add_suite(sr, suite_checkpoint());
    srunner_add_suite(sr, suite_files());
    srunner_add_suite(sr, suite_temps());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
