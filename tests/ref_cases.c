/* tests/ref_cases.c - see ref_cases.h. */
#include "ref_cases.h"

#include <stdlib.h>
#include <string.h>

tg_tensor *tgt_ref_find(const tgt_ref_case *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->tensor[i].name, name) == 0) return c->tensor[i].t;
    return NULL;
}

void tgt_ref_free(tgt_ref_case *c) {
    for (int i = 0; i < c->n; i++) tg_tensor_free(c->tensor[i].t);
    c->n = 0;
}

/* "NAME NDIM DIMS... VALUES..." after the word "tensor". */
static bool read_tensor(FILE *f, tgt_ref_case *c, tg_dtype dt) {
    tgt_ref_tensor *nt = &c->tensor[c->n];
    int nd;
    int64_t shape[TG_MAX_DIMS];
    if (c->n == TGT_REF_MAX_TENSORS || fscanf(f, "%63s %d", nt->name, &nd) != 2 || nd < 0 ||
        nd > TG_MAX_DIMS)
        return false;
    for (int i = 0; i < nd; i++)
        if (fscanf(f, "%lld", (long long *)&shape[i]) != 1 || shape[i] < 0 ||
            shape[i] > TGT_REF_MAX_DIM)
            return false;
    if (!(nt->t = tg_tensor_new(dt, nd, shape))) return false;
    c->n++;
    for (int64_t i = 0; i < tg_tensor_numel(nt->t); i++) {
        double v;
        if (fscanf(f, "%lf", &v) != 1) return false;
        tg_tensor_set(nt->t, i, v);
    }
    return true;
}

bool tgt_ref_read(FILE *f, tgt_ref_case *c, tg_dtype dt, tgt_ref_field_fn field, void *user) {
    char word[64];
    memset(c, 0, sizeof *c);
    while (fscanf(f, "%63s", word) == 1) {
        if (word[0] == '#') {
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n') {
            }
        } else if (strcmp(word, "case") == 0) {
            if (fscanf(f, "%63s", c->name) != 1) return false;
        } else if (strcmp(word, "tensor") == 0) {
            if (!read_tensor(f, c, dt)) return false;
        } else if (strcmp(word, "end") == 0) {
            return true;
        } else if (!field || !field(f, word, user)) {
            return false;
        }
    }
    return false;
}

int tgt_ref_main(const char *prog, const char *path, tg_dtype dt, tgt_ref_field_fn field,
                 tgt_ref_run_fn run, void *user, int want_cases) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open %s\n", prog, path);
        return 1;
    }
    tgt_ref_case *c = malloc(sizeof *c);
    int fails = 0, cases = 0;
    while (c && tgt_ref_read(f, c, dt, field, user)) {
        fails += run(c, user);
        tgt_ref_free(c);
        cases++;
    }
    if (c) tgt_ref_free(c);   /* a case cut short by a format error */
    free(c);
    fclose(f);
    printf("%d cases (want %d), %d tensors over tolerance\n", cases, want_cases, fails);
    return fails == 0 && cases == want_cases ? 0 : 1;
}
