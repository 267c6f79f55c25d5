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
#include "../ref_cases.h"
#include "../tg_test.h"

#define TOL 1e-5
#define MAX_LAYERS 4

/* A case's own lines: "config KIND C H LAYERS BIDIRECTIONAL B T" and "lengths ..." (B of them). */
typedef struct rnn_cfg {
    char kind[8];
    int64_t C, H, L, bi, B, T;
    int64_t lengths[16];
} rnn_cfg;

static bool read_field(FILE *f, const char *word, void *user) {
    rnn_cfg *k = user;
    if (strcmp(word, "config") == 0)
        return fscanf(f, "%7s %lld %lld %lld %lld %lld %lld", k->kind, (long long *)&k->C,
                      (long long *)&k->H, (long long *)&k->L, (long long *)&k->bi,
                      (long long *)&k->B, (long long *)&k->T) == 7 &&
               k->B >= 0 && k->B <= 16 && k->L >= 1 && k->L <= MAX_LAYERS;
    if (strcmp(word, "lengths") != 0) return false;
    for (int64_t b = 0; b < k->B; b++)
        if (fscanf(f, "%lld", (long long *)&k->lengths[b]) != 1) return false;
    return true;
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

static int run_case(const tgt_ref_case *rc, void *user) {
    const rnn_cfg *k = user;
    bool lstm = strcmp(k->kind, "lstm") == 0;
    tg_rnn_opts o = tg_rnn_opts_default(lstm ? &tg_cell_lstm : &tg_cell_gru, k->C, k->H);
    o.num_layers = (int)k->L;
    o.bidirectional = k->bi != 0;
    o.return_sequences = true;
    tg_params *p = tg_params_new();
    tg_rng rng = tg_rng_seeded(1);
    tg_rnn r;
    int fails = 0;
    if (tg_rnn_init(&r, p, "rnn", &o, TG_F32, &rng) != TG_OK) return 1;
    for (int i = 0; i < rc->n; i++) {
        const char *nm = rc->tensor[i].name;
        if ((strncmp(nm, "weight_", 7) == 0 || strncmp(nm, "bias_", 5) == 0) &&
            tg_rnn_import_torch(&r, nm, rc->tensor[i].t) != TG_OK) {
            printf("  %s: cannot import %s\n", rc->name, nm);
            fails++;
        }
    }
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_clone(tgt_ref_find(rc, "x"), TG_F32);
    tg_tensor_set_requires_grad(x, true);
    tg_rnn_state fin[2 * MAX_LAYERS];
    int slots = (int)(k->L * (k->bi ? 2 : 1));
    tg_tensor *out = tg_rnn_forward(tp, &r, x, &(tg_rnn_call){.lengths = k->lengths}, fin, 2 * MAX_LAYERS);
    tg_tensor *h_n = out ? stack_states(tp, fin, slots, false) : NULL;
    tg_tensor *c_n = out && lstm ? stack_states(tp, fin, slots, true) : NULL;
    tg_tensor *loss = tg_add(tp, tg_sum(tp, tg_mul(tp, out, tgt_ref_find(rc, "d_out"))),
                             tg_sum(tp, tg_mul(tp, h_n, tgt_ref_find(rc, "d_h_n"))));
    if (lstm) loss = tg_add(tp, loss, tg_sum(tp, tg_mul(tp, c_n, tgt_ref_find(rc, "d_c_n"))));
    if (!loss || tg_backward(tp, loss) != TG_OK) {
        printf("  %s: %s\n", rc->name, tg_tape_error(tp));
        fails++;
    } else {
        fails += report(rc->name, "out", max_diff(out, tgt_ref_find(rc, "out"), false));
        fails += report(rc->name, "h_n", max_diff(h_n, tgt_ref_find(rc, "h_n"), false));
        if (lstm) fails += report(rc->name, "c_n", max_diff(c_n, tgt_ref_find(rc, "c_n"), false));
        fails += report(rc->name, "grad.x", max_diff(x, tgt_ref_find(rc, "grad.x"), true));
        for (int i = 0; i < rc->n; i++) {
            const char *nm = rc->tensor[i].name;
            if (strncmp(nm, "grad.", 5) != 0 || strcmp(nm, "grad.x") == 0) continue;
            /* grad.weight_ih_l1_reverse -> rnn.weight_ih_l1_reverse: PyTorch's key */
            char ours[96];
            snprintf(ours, sizeof ours, "rnn.%s", nm + 5);
            fails += report(rc->name, nm, max_diff(tg_params_find(p, ours), rc->tensor[i].t, true));
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
    rnn_cfg k;
    printf("PyTorch parity (float32, tolerance %g)\n", TOL);
    return tgt_ref_main("nn_parity", path, TG_F32, read_field, run_case, &k, 4);
}
