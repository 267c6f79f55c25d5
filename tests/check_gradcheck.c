/* tests/check_gradcheck.c - (in progress) */
#include "check_suites.h"

Suite *suite_gradcheck(void) { return suite_create("gradcheck"); }
