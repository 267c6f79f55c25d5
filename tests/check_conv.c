/* tests/check_conv.c - (in progress) */
#include "check_suites.h"

Suite *suite_conv(void) { return suite_create("conv"); }
