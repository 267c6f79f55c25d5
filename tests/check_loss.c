/* tests/check_loss.c - (in progress) */
#include "check_suites.h"

Suite *suite_loss(void) { return suite_create("loss"); }
