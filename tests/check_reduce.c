/* tests/check_reduce.c - (in progress) */
#include "check_suites.h"

Suite *suite_reduce(void) { return suite_create("reduce"); }
