/* tests/io/io_tests.h - the Check suites of io/. */
#ifndef TG_IO_TESTS_H
#define TG_IO_TESTS_H

#include "test_util.h"
#include "tg_test.h"

Suite *suite_safetensors(void);
Suite *suite_checkpoint(void);
Suite *suite_files(void);
Suite *suite_temps(void);

#endif
