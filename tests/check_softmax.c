/* tests/check_softmax.c - (in progress) */
#include "check_suites.h"

Suite *suite_softmax(void) { return suite_create("softmax"); }
