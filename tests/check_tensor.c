/* tests/check_tensor.c - (in progress) */
#include "check_suites.h"

Suite *suite_tensor(void) { return suite_create("tensor"); }
