/* tests/optim/test_util.c - see test_util.h. */
#include "test_util.h"

#include <dirent.h>
#include <unistd.h>

void ot_set_grad(tg_tensor *p, const double *g) {
    tg_tape *tp = tg_tape_new();
    tg_tensor_zero_grad(p);
    tg_tensor *y = tg_scale(tp, p, 1.0);
    tg_tensor *dy = tg_tensor_from(tg_tensor_dtype(p), tg_tensor_ndim(p), tg_tensor_shape(p), g);
    ck_assert_int_eq(tg_backward_ex(tp, y, dy), TG_OK);
    tg_tensor_free(dy);
    tg_tape_free(tp);
}

char *ot_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/tg_optim_XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(d);
    return strdup(d);
}

void ot_rmdir(char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
    free(dir);
}

const char *ot_path(const char *dir, const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}
