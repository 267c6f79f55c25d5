/* tests/optim/test_util.h - helpers the Check suites of optim/ and io/ share:
 * leaf gradients set by hand, scratch folders, last-error assertions. */
#ifndef TG_OPTIM_TEST_UTIL_H
#define TG_OPTIM_TEST_UTIL_H

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "tapegrad/io.h"
#include "tapegrad/optim.h"

/* Set p's gradient to exactly g (through a recorded identity and
 * tg_backward_ex, the only public way to produce leaf gradients). */
void ot_set_grad(tg_tensor *p, const double *g);

/* A fresh empty folder under $TMPDIR (or /tmp); ot_rmdir removes it and the
 * files in it. */
char *ot_tmpdir(void);
void ot_rmdir(char *dir);
/* dir + "/" + name in a static buffer (one at a time). */
const char *ot_path(const char *dir, const char *name);

/* Assert the last (thread) error has this status and contains text. */
#define ck_assert_last_error(code, text)                                                        \
    do {                                                                                        \
        ck_assert_int_eq(tg_last_status(), (code));                                             \
        ck_assert_msg(strstr(tg_last_error(), (text)) != NULL, "message '%s' lacks '%s'",       \
                      tg_last_error(), (text));                                                 \
    } while (0)

#endif
