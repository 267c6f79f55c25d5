/* tests/check_tape.c - (in progress) */
#include "check_suites.h"

Suite *suite_tape(void) { return suite_create("tape"); }
