/* tests/optim/optim_tests.h - the Check suites of optim/. */
#ifndef TG_OPTIM_TESTS_H
#define TG_OPTIM_TESTS_H

#include "test_util.h"
#include "tg_test.h"

Suite *suite_optim(void);
Suite *suite_sched(void);

#endif
