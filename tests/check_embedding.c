/* tests/check_embedding.c - (in progress) */
#include "check_suites.h"

Suite *suite_embedding(void) { return suite_create("embedding"); }
