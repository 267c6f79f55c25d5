/* tests/check_unary.c - (in progress) */
#include "check_suites.h"

Suite *suite_unary(void) { return suite_create("unary"); }
