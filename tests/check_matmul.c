/* tests/check_matmul.c - (in progress) */
#include "check_suites.h"

Suite *suite_matmul(void) { return suite_create("matmul"); }
