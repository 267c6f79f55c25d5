/* tests/check_binary.c - (in progress) */
#include "check_suites.h"

Suite *suite_binary(void) { return suite_create("binary"); }
