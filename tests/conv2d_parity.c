/* tests/conv2d_parity.c - conv2d, max_pool2d and avg_pool2d against PyTorch's
 * F.conv2d / F.max_pool2d / F.avg_pool2d, in float64 and float32.
 *
 * Reads tests/parity/conv2d_reference.txt (made once by
 * tests/parity/gen_conv2d_reference.py, see there to regenerate): per case the
 * op and its settings, the inputs, dy, and PyTorch's output and gradients of
 * L = sum(y * dy) in each dtype. Runs the same op here in each dtype and prints
 * the max |difference| per named tensor, llm.c style. A difference counts
 * relative to the reference's size: |ours - theirs| / (1 + |theirs|) must stay
 * within 1e-12 (float64) or 1e-5 (float32; the two sum in different orders); NaN fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_test.h"

#define MAX_TENSORS 16

typedef struct named {
    char name[32];
    tg_tensor *t;
} named;

typedef struct ref_case {
    char name[64], op[16];
    int64_t cfg[10]; /* kh kw sh sw ph pw dh dw groups exclude_pad */
    named tensors[MAX_TENSORS];
    int n;
} ref_case;

static tg_tensor *find(const ref_case *rc, const char *name) {
    for (int i = 0; i < rc->n; i++)
        if (strcmp(rc->tensors[i].name, name) == 0) return rc->tensors[i].t;
    return NULL;
}

static void free_case(ref_case *rc) {
    for (int i = 0; i < rc->n; i++) tg_tensor_free(rc->tensors[i].t);
    rc->n = 0;
}

/* "tensor NAME NDIM DIMS... VALUES..." (the word "tensor" already read), kept in float64. */
static bool read_tensor(FILE *f, ref_case *rc) {
    named *nt = &rc->tensors[rc->n];
    int nd;
    int64_t shape[TG_MAX_DIMS];
    if (rc->n == MAX_TENSORS || fscanf(f, "%31s %d", nt->name, &nd) != 2 || nd < 0 ||
        nd > TG_MAX_DIMS)
        return false;
    for (int i = 0; i < nd; i++)
        if (fscanf(f, "%lld", (long long *)&shape[i]) != 1 || shape[i] < 0 || shape[i] > 4096)
            return false;
    if (!(nt->t = tg_tensor_new(TG_F64, nd, shape))) return false;
    rc->n++;
    for (int64_t i = 0; i < tg_tensor_numel(nt->t); i++) {
        double v;
        if (fscanf(f, "%lf", &v) != 1) return false;
        tg_tensor_set(nt->t, i, v);
    }
    return true;
}

/* Next case from f; false at the end of the file or on a format error. */
static bool read_case(FILE *f, ref_case *rc) {
    char word[64];
    memset(rc, 0, sizeof *rc);
    while (fscanf(f, "%63s", word) == 1) {
        if (word[0] == '#') {
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n') {
            }
        } else if (strcmp(word, "case") == 0) {
            if (fscanf(f, "%63s", rc->name) != 1) return false;
        } else if (strcmp(word, "op") == 0) {
            if (fscanf(f, "%15s", rc->op) != 1) return false;
        } else if (strcmp(word, "config") == 0) {
            for (int i = 0; i < 10; i++)
                if (fscanf(f, "%lld", (long long *)&rc->cfg[i]) != 1) return false;
        } else if (strcmp(word, "tensor") == 0) {
            if (!read_tensor(f, rc)) return false;
        } else if (strcmp(word, "end") == 0) {
            return true;
        } else {
            return false;
        }
    }
    return false;
}

/* The case's op on the given inputs (bias may be NULL). */
static tg_tensor *apply(tg_tape *tp, const ref_case *rc, tg_tensor *x, tg_tensor *w, tg_tensor *b) {
    const int64_t *c = rc->cfg;
    if (strcmp(rc->op, "conv2d") == 0) {
        tg_conv2d_opts o = {{c[2], c[3]}, {c[4], c[5]}, {c[6], c[7]}, c[8]};
        return tg_conv2d_ex(tp, x, w, b, &o);
    }
    tg_pool2d_opts o = {{c[2], c[3]}, {c[4], c[5]}, c[9] != 0};
    if (strcmp(rc->op, "max_pool2d") == 0) return tg_max_pool2d_ex(tp, x, c[0], c[1], &o);
    if (strcmp(rc->op, "avg_pool2d") == 0) return tg_avg_pool2d_ex(tp, x, c[0], c[1], &o);
    return NULL;
}

/* Worst |a - b| / (1 + |b|) over ours (values, or gradient) against the reference. */
static double worst_rel(const tg_tensor *ours, bool grad, const tg_tensor *ref) {
    if (!ours || !ref || tg_tensor_numel(ours) != tg_tensor_numel(ref)) return INFINITY;
    double worst = 0;
    for (int64_t i = 0; i < tg_tensor_numel(ref); i++) {
        double r = tg_tensor_get(ref, i);
        double a = grad ? tg_tensor_grad_get(ours, i) : tg_tensor_get(ours, i);
        tgt_diff_update(&worst, a / (1 + fabs(r)), r / (1 + fabs(r)));
    }
    return worst;
}

static int report(const char *cs, const char *what, double d, double tol) {
    bool ok = tgt_within(d, tol);
    printf("  %-36s %-16s max rel |diff| %.3g%s\n", cs, what, d, ok ? "" : "   FAIL");
    return ok ? 0 : 1;
}

static int run_dtype(const ref_case *rc, tg_dtype dt) {
    const char *tag = dt == TG_F64 ? "f64" : "f32";
    double tol = dt == TG_F64 ? 1e-12 : 1e-5;
    static const char *const roles[3] = {"x", "w", "bias"};
    tg_tensor *in[3] = {NULL, NULL, NULL};
    tg_tape *tp = tg_tape_new();
    int fails = 0;
    for (int i = 0; i < 3; i++)
        if (find(rc, roles[i])) {
            in[i] = tg_tensor_clone(find(rc, roles[i]), dt);
            tg_tensor_set_requires_grad(in[i], true);
        }
    tg_tensor *y = apply(tp, rc, in[0], in[1], in[2]);
    tg_tensor *dy = find(rc, "dy") ? tg_tensor_clone(find(rc, "dy"), dt) : NULL;
    if (!y || !dy || tg_backward_ex(tp, y, dy) != TG_OK) {
        printf("  %s (%s): %s\n", rc->name, tag, tg_tape_error(tp));
        fails++;
    } else {
        char name[48];
        snprintf(name, sizeof name, "out.%s", tag);
        fails += report(rc->name, name, worst_rel(y, false, find(rc, name)), tol);
        for (int i = 0; i < 3; i++) {
            if (!in[i]) continue;
            snprintf(name, sizeof name, "grad.%s.%s", roles[i], tag);
            fails += report(rc->name, name, worst_rel(in[i], true, find(rc, name)), tol);
        }
    }
    for (int i = 0; i < 3; i++) tg_tensor_free(in[i]);
    tg_tensor_free(dy);
    tg_tape_free(tp);
    return fails;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "tests/parity/conv2d_reference.txt";
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "conv2d_parity: cannot open %s\n", path);
        return 1;
    }
    ref_case *rc = malloc(sizeof *rc);
    int fails = 0, cases = 0;
    printf("PyTorch parity of conv2d and 2-D pooling (float64 1e-12, float32 1e-5)\n");
    while (rc && read_case(f, rc)) {
        fails += run_dtype(rc, TG_F64) + run_dtype(rc, TG_F32);
        free_case(rc);
        cases++;
    }
    if (rc) free_case(rc);
    free(rc);
    fclose(f);
    printf("%d cases, %d tensors over tolerance\n", cases, fails);
    return (fails == 0 && cases == 12) ? 0 : 1;
}
