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
#include <string.h>

#include "ref_cases.h"
#include "tg_test.h"

/* A case's own lines: "op NAME" and "config" (kh kw sh sw ph pw dh dw groups exclude_pad). */
typedef struct conv_cfg {
    char op[16];
    int64_t cfg[10];
} conv_cfg;

static bool read_field(FILE *f, const char *word, void *user) {
    conv_cfg *k = user;
    if (strcmp(word, "op") == 0) return fscanf(f, "%15s", k->op) == 1;
    if (strcmp(word, "config") != 0) return false;
    for (int i = 0; i < 10; i++)
        if (fscanf(f, "%lld", (long long *)&k->cfg[i]) != 1) return false;
    return true;
}

/* The case's op on the given inputs (bias may be NULL). */
static tg_tensor *apply(tg_tape *tp, const conv_cfg *k, tg_tensor *x, tg_tensor *w, tg_tensor *b) {
    const int64_t *c = k->cfg;
    if (strcmp(k->op, "conv2d") == 0) {
        tg_conv2d_opts o = {{c[2], c[3]}, {c[4], c[5]}, {c[6], c[7]}, c[8]};
        return tg_conv2d_ex(tp, x, w, b, &o);
    }
    tg_pool2d_opts o = {{c[2], c[3]}, {c[4], c[5]}, c[9] != 0};
    if (strcmp(k->op, "max_pool2d") == 0) return tg_max_pool2d_ex(tp, x, c[0], c[1], &o);
    if (strcmp(k->op, "avg_pool2d") == 0) return tg_avg_pool2d_ex(tp, x, c[0], c[1], &o);
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

static int run_dtype(const tgt_ref_case *rc, const conv_cfg *k, tg_dtype dt) {
    const char *tag = dt == TG_F64 ? "f64" : "f32";
    double tol = dt == TG_F64 ? 1e-12 : 1e-5;
    static const char *const roles[3] = {"x", "w", "bias"};
    tg_tensor *in[3] = {NULL, NULL, NULL};
    tg_tape *tp = tg_tape_new();
    int fails = 0;
    for (int i = 0; i < 3; i++)
        if (tgt_ref_find(rc, roles[i])) {
            in[i] = tg_tensor_clone(tgt_ref_find(rc, roles[i]), dt);
            tg_tensor_set_requires_grad(in[i], true);
        }
    tg_tensor *y = apply(tp, k, in[0], in[1], in[2]);
    tg_tensor *dy = tgt_ref_find(rc, "dy") ? tg_tensor_clone(tgt_ref_find(rc, "dy"), dt) : NULL;
    if (!y || !dy || tg_backward_ex(tp, y, dy) != TG_OK) {
        printf("  %s (%s): %s\n", rc->name, tag, tg_tape_error(tp));
        fails++;
    } else {
        char name[48];
        snprintf(name, sizeof name, "out.%s", tag);
        fails += report(rc->name, name, worst_rel(y, false, tgt_ref_find(rc, name)), tol);
        for (int i = 0; i < 3; i++) {
            if (!in[i]) continue;
            snprintf(name, sizeof name, "grad.%s.%s", roles[i], tag);
            fails += report(rc->name, name, worst_rel(in[i], true, tgt_ref_find(rc, name)), tol);
        }
    }
    for (int i = 0; i < 3; i++) tg_tensor_free(in[i]);
    tg_tensor_free(dy);
    tg_tape_free(tp);
    return fails;
}

static int run_case(const tgt_ref_case *rc, void *user) {
    return run_dtype(rc, user, TG_F64) + run_dtype(rc, user, TG_F32);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "tests/parity/conv2d_reference.txt";
    conv_cfg k;
    printf("PyTorch parity of conv2d and 2-D pooling (float64 1e-12, float32 1e-5)\n");
    return tgt_ref_main("conv2d_parity", path, TG_F64, read_field, run_case, &k, 12);
}
