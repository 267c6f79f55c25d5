/* tests/check_dropout.c - (in progress) */
#include "check_suites.h"

Suite *suite_dropout(void) { return suite_create("dropout"); }
