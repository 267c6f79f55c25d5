/* tests/nn/torch_interop.c - the C half of the PyTorch round trip
 * (torch_interop.py drives it; see there).
 *
 *   torch_interop write DIR   for every layer and dtype: build the layer
 *                             (registry names = the module's state_dict keys),
 *                             save <layer>_<dt>.tg.safetensors with
 *                             tg_params_save, and <layer>_<dt>.tg_io.safetensors
 *                             with the inputs, output weights w.*, outputs and
 *                             the gradients of L = sum(w.out * out).
 *   torch_interop read DIR    for every layer and dtype: tg_params_load (strict)
 *                             PyTorch's <layer>_<dt>.pt.safetensors, run the
 *                             inputs of <layer>_<dt>.pt_io.safetensors, and
 *                             compare outputs and gradients with PyTorch's,
 *                             printing the max |difference| per named tensor.
 * Tolerances: 1e-5 in float32, 1e-10 in float64. */
#include <stdio.h>
#include <string.h>

#include "tapegrad.h"
#include "tapegrad/nn.h"
#include "../tg_test.h"

enum { B = 2, T = 3, S = 4, MAX_OUT = 3 };

typedef struct layer {
    const char *name;
    tg_rnn rnn;
    tg_linear lin;
    tg_embedding_layer emb;
    tg_conv1d_layer conv;
    tg_layer_norm ln;
    tg_mha mha;
    tg_transformer_block blk;
} layer;

typedef struct outputs { int n; const char *name[MAX_OUT]; tg_tensor *t[MAX_OUT]; } outputs;

/* ---- the layers, as PyTorch builds them (torch_interop.py) ----------------------------------- */
static tg_status build(layer *l, tg_params *p, tg_dtype dt, tg_rng *rng) {
    const char *n = l->name;
    if (!strcmp(n, "rnn") || !strcmp(n, "lstm") || !strcmp(n, "gru")) {
        const tg_cell *cell = n[0] == 'r' ? &tg_cell_elman : n[0] == 'l' ? &tg_cell_lstm : &tg_cell_gru;
        tg_rnn_opts o = tg_rnn_opts_torch(cell, 3, 4);   /* nn.X(3, 4, num_layers=2, bidirectional=True) */
        o.num_layers = 2;
        o.bidirectional = true;
        return tg_rnn_init(&l->rnn, p, "", &o, dt, rng);
    }
    if (!strcmp(n, "linear")) return tg_linear_init(&l->lin, p, "", 3, 5, dt, rng, NULL);
    if (!strcmp(n, "embedding")) return tg_embedding_layer_init(&l->emb, p, "", 7, 4, dt, rng, NULL);
    if (!strcmp(n, "conv1d"))
        return tg_conv1d_layer_init(&l->conv, p, "", 3, 5, 2, dt, rng,
                                    &(tg_conv1d_layer_opts){.conv = {.padding = 1}});
    if (!strcmp(n, "layer_norm")) return tg_layer_norm_init(&l->ln, p, "", 6, 1e-5, dt);
    if (!strcmp(n, "mha")) return tg_mha_init(&l->mha, p, "", 8, 2, dt, rng, NULL);
    if (!strcmp(n, "mha_kdim"))
        return tg_mha_init(&l->mha, p, "", 8, 2, dt, rng, &(tg_mha_opts){.kv_dim = 5});
    tg_transformer_opts to = {.heads = 2, .ffn_dim = 16, .pre_norm = strstr(n, "_pre") != NULL};
    if (!strncmp(n, "encoder", 7)) return tg_transformer_encoder_init(&l->blk, p, "", 8, dt, rng, &to);
    if (!strncmp(n, "decoder", 7)) return tg_transformer_decoder_init(&l->blk, p, "", 8, dt, rng, &to);
    return tg_set_last_error(TG_ERR_ARG, "unknown layer %s", n);
}

static const char *const LAYERS[] = {"rnn", "lstm", "gru", "linear", "embedding", "conv1d",
                                     "layer_norm", "mha", "mha_kdim", "encoder", "encoder_pre",
                                     "decoder", "decoder_pre"};
enum { N_LAYERS = sizeof LAYERS / sizeof LAYERS[0] };

/* h_n [L*D, B, H] from the final states (PyTorch's layout) */
static tg_tensor *stack(tg_tape *tp, const tg_rnn_state *fin, int n, int k) {
    tg_tensor *parts[8];
    for (int s = 0; s < n; s++)
        parts[s] = tg_reshape(tp, fin[s].s[k], 3, (int64_t[]){1, B, tg_tensor_dim(fin[s].s[k], 1)});
    return tg_concat(tp, n, parts, 0);
}

/* The inputs x (and memory) -> the outputs PyTorch's module returns. */
static void forward(tg_tape *tp, layer *l, tg_tensor *x, tg_tensor *mem, outputs *o) {
    const char *n = l->name;
    o->n = 1;
    o->name[0] = "y";
    if (l->rnn.cells) {
        tg_rnn_state fin[4];
        o->t[0] = tg_rnn_forward(tp, &l->rnn, x, NULL, fin, 4);   /* x [T, B, C] */
        if (!o->t[0]) return;
        o->name[o->n] = "h_n", o->t[o->n++] = stack(tp, fin, 4, 0);
        if (fin[0].c) o->name[o->n] = "c_n", o->t[o->n++] = stack(tp, fin, 4, 1);
    } else if (!strcmp(n, "linear")) {
        o->t[0] = tg_linear_forward(tp, &l->lin, x);
    } else if (!strcmp(n, "embedding")) {
        o->t[0] = tg_embedding_layer_forward(tp, &l->emb, x);
    } else if (!strcmp(n, "conv1d")) {
        o->t[0] = tg_conv1d_layer_forward(tp, &l->conv, x);
    } else if (!strcmp(n, "layer_norm")) {
        o->t[0] = tg_layer_norm_forward(tp, &l->ln, x);
    } else if (!strncmp(n, "mha", 3)) {
        o->t[0] = tg_mha_forward(tp, &l->mha, x, mem, NULL);
    } else if (!strncmp(n, "encoder", 7)) {
        o->t[0] = tg_transformer_encoder_forward(tp, &l->blk, x, NULL, NULL);
    } else {
        o->t[0] = tg_transformer_decoder_forward(tp, &l->blk, x, mem, NULL, NULL, NULL);
    }
}

/* x and memory of a layer, filled from a seed (write mode) */
static void make_inputs(const char *n, tg_dtype dt, tg_rng *rng, tg_tensor **x, tg_tensor **mem) {
    int64_t xs[3] = {B, T, 8};
    int nd = 3;
    if (!strcmp(n, "rnn") || !strcmp(n, "lstm") || !strcmp(n, "gru")) xs[0] = T, xs[1] = B, xs[2] = 3;
    else if (!strcmp(n, "linear")) xs[2] = 3;
    else if (!strcmp(n, "conv1d")) xs[1] = 3, xs[2] = 5;   /* [B, C, L] */
    else if (!strcmp(n, "layer_norm")) xs[2] = 6;
    else if (!strcmp(n, "embedding")) nd = 2;
    *x = tg_tensor_new(nd == 2 ? TG_I32 : dt, nd, xs);
    for (int64_t i = 0; i < tg_tensor_numel(*x); i++)
        tg_tensor_set(*x, i, nd == 2 ? (double)(tg_rng_next(rng) % 7) : tg_rng_uniform(rng) * 2 - 1);
    *mem = NULL;
    if (!strcmp(n, "mha_kdim") || !strncmp(n, "decoder", 7)) {
        *mem = tg_tensor_new(dt, 3, (int64_t[]){B, S, n[0] == 'm' ? 5 : 8});
        for (int64_t i = 0; i < tg_tensor_numel(*mem); i++) tg_tensor_set(*mem, i, tg_rng_uniform(rng) * 2 - 1);
    }
}

/* ---- write: tapegrad's file and results for PyTorch ------------------------------------------ */
static int write_one(const char *dir, const char *name, tg_dtype dt) {
    char path[512];
    tg_rng rng = tg_rng_seeded(7);
    tg_params *p = tg_params_new();
    layer l = {.name = name};
    tg_tensor *x, *mem, *w[MAX_OUT] = {0};
    int rc = 1;
    if (build(&l, p, dt, &rng) != TG_OK) return fprintf(stderr, "%s: %s\n", name, tg_last_error()), 1;
    make_inputs(name, dt, &rng, &x, &mem);
    tg_tensor_set_requires_grad(x, tg_tensor_dtype(x) != TG_I32);
    if (mem) tg_tensor_set_requires_grad(mem, true);
    tg_tape *tp = tg_tape_new();
    outputs o;
    forward(tp, &l, x, mem, &o);
    tg_safetensors_writer *wr = tg_safetensors_writer_new();
    tg_tensor *loss = NULL;
    for (int k = 0; k < o.n && o.t[k]; k++) {   /* L = sum_k sum(w_k * out_k) */
        w[k] = tg_tensor_new(dt, tg_tensor_ndim(o.t[k]), tg_tensor_shape(o.t[k]));
        for (int64_t i = 0; i < tg_tensor_numel(w[k]); i++) tg_tensor_set(w[k], i, tg_rng_uniform(&rng) - 0.5);
        tg_tensor *term = tg_sum(tp, tg_mul(tp, o.t[k], w[k]));
        loss = loss ? tg_add(tp, loss, term) : term;
        char key[32];
        snprintf(key, sizeof key, "w.%s", o.name[k]);
        tg_safetensors_writer_add(wr, key, w[k]);
        tg_safetensors_writer_add(wr, o.name[k], o.t[k]);
    }
    if (!loss || tg_backward(tp, loss) != TG_OK) {
        fprintf(stderr, "%s: %s\n", name, tg_tape_error(tp));
        goto out;
    }
    /* gradients: grad.x, grad.mem and grad.<key> of every parameter, as tensors */
    tg_tensor *grads[64];
    int ng = 0;
    tg_tensor *ins[2] = {x, mem};
    const char *in_names[2] = {"x", "mem"};
    tg_safetensors_writer_add(wr, "x", x);
    if (mem) tg_safetensors_writer_add(wr, "mem", mem);
    char keys[64][96];
    for (int k = 0; k < 2 + tg_params_count(p) && ng < 64; k++) {
        tg_tensor *t = k < 2 ? ins[k] : tg_params_at(p, k - 2);
        if (!t || tg_tensor_dtype(t) == TG_I32) continue;
        grads[ng] = tg_tensor_new(dt, tg_tensor_ndim(t), tg_tensor_shape(t));
        for (int64_t i = 0; i < tg_tensor_numel(t); i++) tg_tensor_set(grads[ng], i, tg_tensor_grad_get(t, i));
        snprintf(keys[ng], sizeof keys[ng], "grad.%s", k < 2 ? in_names[k] : tg_params_name(p, k - 2));
        tg_safetensors_writer_add(wr, keys[ng], grads[ng]);
        ng++;
    }
    snprintf(path, sizeof path, "%s/%s_%s.tg_io.safetensors", dir, name, tg_dtype_name(dt));
    rc = tg_safetensors_writer_save(wr, path) != TG_OK;
    snprintf(path, sizeof path, "%s/%s_%s.tg.safetensors", dir, name, tg_dtype_name(dt));
    rc |= tg_params_save(p, path) != TG_OK;
    if (rc) fprintf(stderr, "%s: %s\n", name, tg_last_error());
    for (int k = 0; k < ng; k++) tg_tensor_free(grads[k]);
out:
    tg_safetensors_writer_free(wr);
    for (int k = 0; k < MAX_OUT; k++) tg_tensor_free(w[k]);
    tg_tensor_free(x);
    tg_tensor_free(mem);
    tg_tape_free(tp);
    tg_rnn_free(&l.rnn);
    tg_params_free(p);
    return rc;
}

/* ---- read: PyTorch's file and results --------------------------------------------------------- */
static int report(const char *what, const char *tensor, double d, double tol) {
    bool ok = tgt_within(d, tol);
    printf("  %-26s %-34s max |diff| %.3g%s\n", what, tensor, d, ok ? "" : "   FAIL");
    return ok ? 0 : 1;
}

static int compare_one(const char *name, tg_dtype dt, const tg_safetensors *io, tg_params *p,
                       layer *l, double tol) {
    char what[64];
    snprintf(what, sizeof what, "torch->tg %s %s", name, tg_dtype_name(dt));
    tg_tensor *x = tg_safetensors_get(io, "x", !strcmp(name, "embedding") ? TG_I32 : dt);
    tg_tensor *mem = tg_safetensors_find(io, "mem") >= 0 ? tg_safetensors_get(io, "mem", dt) : NULL;
    int fails = 0;
    if (!x) return printf("  %s: no x: %s\n", what, tg_last_error()), 1;
    tg_tensor_set_requires_grad(x, tg_tensor_dtype(x) != TG_I32);
    if (mem) tg_tensor_set_requires_grad(mem, true);
    tg_tape *tp = tg_tape_new();
    outputs o;
    forward(tp, l, x, mem, &o);
    tg_tensor *loss = NULL, *tmp[2 * MAX_OUT] = {0};
    for (int k = 0; k < o.n && o.t[k]; k++) {
        char key[32];
        snprintf(key, sizeof key, "w.%s", o.name[k]);
        tmp[2 * k] = tg_safetensors_get(io, key, dt);
        tmp[2 * k + 1] = tg_safetensors_get(io, o.name[k], dt);
        fails += report(what, o.name[k], tgt_max_diff(o.t[k], tmp[2 * k + 1], false), tol);
        tg_tensor *term = tg_sum(tp, tg_mul(tp, o.t[k], tmp[2 * k]));
        loss = loss ? tg_add(tp, loss, term) : term;
    }
    if (!loss || tg_backward(tp, loss) != TG_OK) {
        printf("  %s: %s\n", what, tg_tape_error(tp));
        fails++;
    }
    for (int k = 0; loss && k < 2 + tg_params_count(p); k++) {
        tg_tensor *t = k == 0 ? x : k == 1 ? mem : tg_params_at(p, k - 2);
        if (!t || tg_tensor_dtype(t) == TG_I32) continue;
        char key[96];
        snprintf(key, sizeof key, "grad.%s", k == 0 ? "x" : k == 1 ? "mem" : tg_params_name(p, k - 2));
        tg_tensor *want = tg_safetensors_get(io, key, dt);
        fails += report(what, key, tgt_max_diff(t, want, true), tol);
        tg_tensor_free(want);
    }
    for (int k = 0; k < 2 * MAX_OUT; k++) tg_tensor_free(tmp[k]);
    tg_tensor_free(x);
    tg_tensor_free(mem);
    tg_tape_free(tp);
    return fails;
}

static int read_one(const char *dir, const char *name, tg_dtype dt) {
    char path[512];
    tg_rng rng = tg_rng_seeded(99);   /* any values: the load replaces them */
    tg_params *p = tg_params_new();
    layer l = {.name = name};
    int fails = 1;
    snprintf(path, sizeof path, "%s/%s_%s.pt.safetensors", dir, name, tg_dtype_name(dt));
    if (build(&l, p, dt, &rng) != TG_OK || tg_params_load(p, path) != TG_OK) {
        printf("  torch->tg %s %s: %s\n", name, tg_dtype_name(dt), tg_last_error());
    } else {
        snprintf(path, sizeof path, "%s/%s_%s.pt_io.safetensors", dir, name, tg_dtype_name(dt));
        tg_safetensors *io = tg_safetensors_open(path);
        fails = io ? compare_one(name, dt, io, p, &l, dt == TG_F32 ? 1e-5 : 1e-10) : 1;
        if (!io) printf("  %s: %s\n", path, tg_last_error());
        tg_safetensors_close(io);
    }
    tg_rnn_free(&l.rnn);
    tg_params_free(p);
    return fails;
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "write") && strcmp(argv[1], "read"))) {
        fprintf(stderr, "usage: torch_interop write|read DIR\n");
        return 2;
    }
    bool writing = !strcmp(argv[1], "write");
    int fails = 0;
    for (int i = 0; i < N_LAYERS; i++)
        for (int d = 0; d < 2; d++) {
            tg_dtype dt = d ? TG_F64 : TG_F32;
            fails += writing ? write_one(argv[2], LAYERS[i], dt) : read_one(argv[2], LAYERS[i], dt);
        }
    if (!writing) printf("torch -> tapegrad: %d layers x 2 dtypes, %d over tolerance\n", N_LAYERS, fails);
    return fails ? 1 : 0;
}
