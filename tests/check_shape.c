/* tests/check_shape.c - (in progress) */
#include "check_suites.h"

Suite *suite_shape(void) { return suite_create("shape"); }
