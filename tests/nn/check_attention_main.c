/* tests/nn/check_attention_main.c - runs the attention / transformer / seq2seq
 * Check suites (CK_RUN_SUITE=nn_attention or nn_seq2seq picks one), each test forked. */
#include "check_suites.h"

Suite *suite_nn_attention(void);
Suite *suite_nn_seq2seq(void);

int main(void) {
    SRunner *sr = srunner_create(suite_nn_attention());
    srunner_add_suite(sr, suite_nn_seq2seq());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
