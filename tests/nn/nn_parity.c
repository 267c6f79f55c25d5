/* tests/nn/nn_parity.c - LSTM and GRU against PyTorch's nn.LSTM / nn.GRU.
 *
 * Reads tests/nn/parity/rnn_reference.txt (made once by
 * gen_rnn_reference.py, see there to regenerate), imports the weights by
 * their PyTorch names, runs the same batch (packed lengths included), and
 * prints the max |difference| per named tensor, llm.c style: outputs, h_n,
 * c_n, and the gradients of the same loss w.r.t. the input and every weight.
 * Fails when any difference exceeds 1e-5 (float32). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "tapegrad/nn.h"
#include "../tg_test.h"

#define TOL 1e-5
#define MAX_TENSORS 64
#define MAX_LAYERS 4

typedef struct named { char name[64]; tg_tensor *t; } named;

typedef struct ref_case {
    char name[64], kind[8];
    int64_t C, H, L, bi, B, T;
    int64_t lengths[16];
    named tensors[MAX_TENSORS];
    int n;
} ref_case;

static tg_tensor *find(ref_case *rc, const char *name) {
    for (int i = 0; i < rc->n; i++)
        if (strcmp(rc->tensors[i].name, name) == 0) return rc->tensors[i].t;
    return NULL;
}

static void free_case(ref_case *rc) {
    for (int i = 0; i < rc->n; i++) tg_tensor_free(rc->tensors[i].t);
    rc->n = 0;
}

static bool read_tensor(FILE *f, ref_case *rc) {
    named *nt = &rc->tensors[rc->n];
    int nd;
    int64_t shape[TG_MAX_DIMS];
    if (rc->n == MAX_TENSORS || fscanf(f, "%63s %d", nt->name, &nd) != 2 || nd < 0 || nd > TG_MAX_DIMS)
        return false;
    for (int i = 0; i < nd; i++)
        if (fscanf(f, "%lld", (long long *)&shape[i]) != 1) return false;
    nt->t = tg_tensor_new(TG_F32, nd, shape);
    if (!nt->t) return false;
    for (int64_t i = 0; i < tg_tensor_numel(nt->t); i++) {
        double v;
        if (fscanf(f, "%lf", &v) != 1) return false;
        tg_tensor_set(nt->t, i, v);
    }
    rc->n++;
    return true;
}

/* Next case from f; false at the end of the file or on a format error. */
static bool read_case(FILE *f, ref_case *rc) {
    char word[64];
    memset(rc, 0, sizeof *rc);
    while (fscanf(f, "%63s", word) == 1) {
        if (word[0] == '#') {
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n') {}
        } else if (strcmp(word, "case") == 0) {
            if (fscanf(f, "%63s", rc->name) != 1) return false;
        } else if (strcmp(word, "config") == 0) {
            if (fscanf(f, "%7s %lld %lld %lld %lld %lld %lld", rc->kind, (long long *)&rc->C,
                       (long long *)&rc->H, (long long *)&rc->L, (long long *)&rc->bi,
                       (long long *)&rc->B, (long long *)&rc->T) != 7 || rc->B > 16 ||
                rc->L < 1 || rc->L > MAX_LAYERS)
                return false;
        } else if (strcmp(word, "lengths") == 0) {
            for (int64_t b = 0; b < rc->B; b++)
                if (fscanf(f, "%lld", (long long *)&rc->lengths[b]) != 1) return false;
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

/* NaN-safe (tg_test.h): a NaN or Inf anywhere is a failure */
static double max_diff(const tg_tensor *a, const tg_tensor *b, bool grad) {
    return tgt_max_diff(a, b, grad);
}

static int report(const char *cs, const char *what, double d) {
    bool ok = tgt_within(d, TOL);
    printf("  %-40s %-26s max |diff| %.3g%s\n", cs, what, d, ok ? "" : "   FAIL");
    return ok ? 0 : 1;
}

/* h_n / c_n of PyTorch are [L*dirs, B, H]; ours are one [B, H] per slot. */
static tg_tensor *stack_states(tg_tape *tp, tg_rnn_state *fin, int slots, bool cell) {
    tg_tensor *parts[2 * MAX_LAYERS];
    for (int s = 0; s < slots; s++) {
        tg_tensor *t = cell ? fin[s].c : fin[s].h;
        parts[s] = tg_reshape(tp, t, 3, (int64_t[]){1, tg_tensor_dim(t, 0), tg_tensor_dim(t, 1)});
    }
    return tg_concat(tp, slots, parts, 0);
}

static int run_case(ref_case *rc) {
    bool lstm = strcmp(rc->kind, "lstm") == 0;
    tg_rnn_opts o = tg_rnn_opts_default(lstm ? &tg_cell_lstm : &tg_cell_gru, rc->C, rc->H);
    o.num_layers = (int)rc->L;
    o.bidirectional = rc->bi != 0;
    o.return_sequences = true;
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(1);
    tg_rnn r;
    int fails = 0;
    if (tg_rnn_init(&r, p, "rnn", &o, TG_F32, &rng) != TG_OK) return 1;
    for (int i = 0; i < rc->n; i++) {
        const char *nm = rc->tensors[i].name;
        if ((strncmp(nm, "weight_", 7) == 0 || strncmp(nm, "bias_", 5) == 0) &&
            tg_rnn_import_torch(&r, nm, rc->tensors[i].t) != TG_OK) {
            printf("  %s: cannot import %s\n", rc->name, nm);
            fails++;
        }
    }
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_clone(find(rc, "x"), TG_F32);
    tg_tensor_set_requires_grad(x, true);
    tg_rnn_state fin[2 * MAX_LAYERS];
    int slots = (int)(rc->L * (rc->bi ? 2 : 1));
    tg_tensor *out = tg_rnn_forward(tp, &r, x, &(tg_rnn_call){.lengths = rc->lengths}, fin, 2 * MAX_LAYERS);
    tg_tensor *h_n = out ? stack_states(tp, fin, slots, false) : NULL;
    tg_tensor *c_n = out && lstm ? stack_states(tp, fin, slots, true) : NULL;
    tg_tensor *loss = tg_add(tp, tg_sum(tp, tg_mul(tp, out, find(rc, "d_out"))),
                             tg_sum(tp, tg_mul(tp, h_n, find(rc, "d_h_n"))));
    if (lstm) loss = tg_add(tp, loss, tg_sum(tp, tg_mul(tp, c_n, find(rc, "d_c_n"))));
    if (!loss || tg_backward(tp, loss) != TG_OK) {
        printf("  %s: %s\n", rc->name, tg_tape_error(tp));
        fails++;
    } else {
        fails += report(rc->name, "out", max_diff(out, find(rc, "out"), false));
        fails += report(rc->name, "h_n", max_diff(h_n, find(rc, "h_n"), false));
        if (lstm) fails += report(rc->name, "c_n", max_diff(c_n, find(rc, "c_n"), false));
        fails += report(rc->name, "grad.x", max_diff(x, find(rc, "grad.x"), true));
        for (int i = 0; i < rc->n; i++) {
            const char *nm = rc->tensors[i].name;
            if (strncmp(nm, "grad.", 5) != 0 || strcmp(nm, "grad.x") == 0) continue;
            /* grad.weight_ih_l1_reverse -> rnn.weight_ih_l1_reverse: PyTorch's key */
            char ours[96];
            snprintf(ours, sizeof ours, "rnn.%s", nm + 5);
            fails += report(rc->name, nm, max_diff(tg_params_find(p, ours), rc->tensors[i].t, true));
        }
    }
    tg_tensor_free(x);
    tg_tape_free(tp);
    tg_rnn_free(&r);
    tg_params_free(p);
    return fails;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "tests/nn/parity/rnn_reference.txt";
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "nn_parity: cannot open %s\n", path);
        return 1;
    }
    ref_case *rc = malloc(sizeof *rc);
    int fails = 0, cases = 0;
    printf("PyTorch parity (float32, tolerance %g)\n", TOL);
    while (rc && read_case(f, rc)) {
        fails += run_case(rc);
        free_case(rc);
        cases++;
    }
    free_case(rc);
    free(rc);
    fclose(f);
    printf("%d cases, %d tensors over tolerance\n", cases, fails);
    return (fails == 0 && cases == 4) ? 0 : 1;
}
