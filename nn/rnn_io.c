/* nn/rnn_io.c - recurrent layers to and from PyTorch: one parameter by its
 * state_dict key, a whole layer from a safetensors file (with the check that
 * the weights were made for this cell's equations), and export.
 *
 * Keys are "<leaf>_l<k>" plus "_reverse" for the backward direction
 * (PyTorch's), under "<prefix>." in files. A file tapegrad exports carries the
 * cell's name in its metadata; a file without one is taken for PyTorch's and
 * may only go into the cell with PyTorch's equations for that module. */
#include "nn_private.h"

#include <stdio.h>
#include <string.h>

#define META_PREFIX "tapegrad_cell."

/* The built-in cells, to name a convention found in a file. */
static const tg_cell *const builtin_cells[] = {
    &tg_cell_elman, &tg_cell_jordan, &tg_cell_lstm, &tg_cell_peephole_lstm,
    &tg_cell_prototype_lstm, &tg_cell_gru, &tg_cell_gru_reset_before,
};

static const tg_cell *builtin_named(const char *name) {
    for (size_t i = 0; i < sizeof builtin_cells / sizeof builtin_cells[0]; i++)
        if (strcmp(builtin_cells[i]->name, name) == 0) return builtin_cells[i];
    return NULL;
}

/* PyTorch's module from the gate rows of weight_ih (1, 4 or 3 blocks of H). */
static const tg_cell *torch_cell_for_rows(int64_t rows, int64_t H) {
    return rows == H ? &tg_cell_elman : rows == 4 * H ? &tg_cell_lstm
                                      : rows == 3 * H ? &tg_cell_gru : NULL;
}

/* "cell gru (reset gate applied after ...)" */
static const char *describe_cell(char *buf, size_t size, const tg_cell *c) {
    snprintf(buf, size, "cell %s (%s)", c->name, c->convention ? c->convention : "no convention given");
    return buf;
}

/* TG_OK when weights made for `from` (a PyTorch module's cell, or a tapegrad
 * cell's name) may go into r's cell; else an error naming both conventions. */
static tg_status same_convention(const tg_rnn *r, const tg_cell *from, const char *from_name,
                                 bool from_torch) {
    const tg_cell *to = r->cells[0].cell;
    if (from_torch ? (from && to->torch_module && strcmp(to->torch_module, from->torch_module) == 0)
                   : strcmp(to->name, from_name) == 0)
        return TG_OK;
    char a[320], b[320];
    if (from_torch && from)
        return nn_error(TG_ERR_ARG, "rnn_import: '%s': the weights are PyTorch nn.%s's, %s; this layer "
                        "runs %s", r->name, from->torch_module, describe_cell(a, sizeof a, from),
                        describe_cell(b, sizeof b, to));
    if (from_torch)
        return nn_error(TG_ERR_ARG, "rnn_import: '%s': the weights are no PyTorch nn.RNN, nn.LSTM or "
                        "nn.GRU's (weight_ih rows are not 1, 4 or 3 times H); this layer runs %s",
                        r->name, describe_cell(b, sizeof b, to));
    if (!from) snprintf(a, sizeof a, "cell %s", from_name);
    return nn_error(TG_ERR_ARG, "rnn_import: '%s': the file was written for %s; this layer runs %s",
                    r->name, from ? describe_cell(a, sizeof a, from) : a,
                    describe_cell(b, sizeof b, to));
}

/* ---- one parameter by its PyTorch key -------------------------------------------------------- */
/* "weight_hh_l1_reverse" -> the cell (layer 1, backward) and its parameter index. */
static tg_status find_key(const tg_rnn *r, const char *key, tg_rnn_cell **cell, int *index) {
    const tg_rnn_cell *c0 = &r->cells[0];
    for (int k = 0; k < c0->layout.n_params; k++) {
        const char *leaf = c0->layout.param[k].name;
        size_t n = strlen(leaf);
        int layer = -1, used = 0;
        if (strncmp(key, leaf, n) != 0 || strncmp(key + n, "_l", 2) != 0 ||
            sscanf(key + n + 2, "%d%n", &layer, &used) != 1 || layer < 0 || key[n + 2] == '-' ||
            key[n + 2] == '+')
            continue;
        const char *rest = key + n + 2 + used;
        int dir = strcmp(rest, "_reverse") == 0 ? 1 : *rest ? -1 : 0;
        if (dir < 0) continue;
        *cell = tg_rnn_cell_at(r, layer, dir);
        *index = k;
        if (*cell) return TG_OK;
        return nn_error(TG_ERR_ARG, "rnn_import_torch: '%s' names a layer or direction '%s' lacks",
                        key, r->name);
    }
    return nn_error(TG_ERR_ARG, "rnn_import_torch: unknown name '%s' for cell %s", key,
                    c0->cell->name);
}

static tg_status copy_into(tg_tensor *dst, const tg_tensor *value, const char *key) {
    char a[160], b[160];
    if (tg_tensor_ndim(dst) != tg_tensor_ndim(value) ||
        memcmp(tg_tensor_shape(dst), tg_tensor_shape(value),
               (size_t)tg_tensor_ndim(value) * sizeof(int64_t)) != 0)
        return nn_error(TG_ERR_SHAPE, "rnn_import: shape of '%s' differs: %s given, %s in the layer",
                        key, tg_shape_str(value, a, sizeof a), tg_shape_str(dst, b, sizeof b));
    return tg_tensor_copy(dst, value);
}

tg_status tg_rnn_import_torch(tg_rnn *r, const char *torch_name, const tg_tensor *value) {
    if (!r || !r->cells || !torch_name || !value)
        return nn_error(TG_ERR_ARG, "rnn_import_torch: NULL argument or layer not initialised");
    tg_rnn_cell *c = NULL;
    int k = 0;
    tg_status st = find_key(r, torch_name, &c, &k);
    if (st != TG_OK) return st;
    if (!r->cells[0].cell->torch_module) {   /* a weight_ih tells the module it came from */
        bool ih = strcmp(c->layout.param[k].name, "weight_ih") == 0 && tg_tensor_ndim(value) == 2;
        const tg_cell *from = ih ? torch_cell_for_rows(tg_tensor_dim(value, 0), c->cfg.hidden_size) : NULL;
        st = same_convention(r, from, NULL, true);
        if (st != TG_OK) return st;
    }
    return copy_into(c->param[k], value, torch_name);
}

/* ---- a whole layer ------------------------------------------------------------------------- */
/* The convention of the weights in f: its metadata tag, else PyTorch's module by shape. */
static tg_status file_convention(const tg_rnn *r, const tg_safetensors *f, const char *prefix) {
    char key[NN_NAME_MAX], name[NN_NAME_MAX];
    snprintf(key, sizeof key, META_PREFIX "%s", prefix);
    const char *tag = tg_safetensors_meta(f, key);
    if (tag) return same_convention(r, builtin_named(tag), tag, false);
    if (!tg_param_name(name, sizeof name, prefix, "weight_ih_l0"))
        return nn_error(TG_ERR_ARG, "rnn_import: prefix too long");
    int i = tg_safetensors_find(f, name);
    tg_st_info info;
    const tg_cell *from = NULL;
    if (i >= 0 && tg_safetensors_info(f, i, &info) == TG_OK && info.ndim == 2)
        from = torch_cell_for_rows(info.shape[0], r->cells[0].cfg.hidden_size);
    return same_convention(r, from, NULL, true);
}

static tg_status import_cell(tg_rnn_cell *c, const tg_safetensors *f, const char *prefix) {
    for (int k = 0; k < c->layout.n_params; k++) {
        char leaf[NN_NAME_MAX], name[NN_NAME_MAX];
        if (!nn_param_key(leaf, sizeof leaf, c, k) || !tg_param_name(name, sizeof name, prefix, leaf))
            return nn_error(TG_ERR_ARG, "rnn_import: name too long: '%s'", c->layout.param[k].name);
        if (tg_safetensors_find(f, name) < 0)
            return nn_error(TG_ERR_FORMAT, "rnn_import: '%s' is missing from the file", name);
        tg_tensor *value = tg_safetensors_get(f, name, tg_tensor_dtype(c->param[k]));
        if (!value) return nn_last();
        tg_status st = copy_into(c->param[k], value, name);
        tg_tensor_free(value);
        if (st != TG_OK) return st;
    }
    return TG_OK;
}

tg_status tg_rnn_import(tg_rnn *r, const tg_safetensors *f, const char *prefix) {
    if (!r || !r->cells || !f) return nn_error(TG_ERR_ARG, "rnn_import: needs a layer and a file");
    if (!prefix) prefix = r->name;
    tg_status st = file_convention(r, f, prefix);
    for (int s = 0; st == TG_OK && s < tg_rnn_num_states(r); s++)
        st = import_cell(&r->cells[s], f, prefix);
    return st;
}

tg_status tg_rnn_export(const tg_rnn *r, tg_safetensors_writer *w) {
    if (!r || !r->cells || !w) return nn_error(TG_ERR_ARG, "rnn_export: needs a layer and a writer");
    char key[NN_NAME_MAX], name[NN_NAME_MAX];
    snprintf(key, sizeof key, META_PREFIX "%s", r->name);
    tg_status st = tg_safetensors_writer_meta(w, key, r->cells[0].cell->name);
    for (int s = 0; st == TG_OK && s < tg_rnn_num_states(r); s++) {
        const tg_rnn_cell *c = &r->cells[s];
        for (int k = 0; st == TG_OK && k < c->layout.n_params; k++) {
            char leaf[NN_NAME_MAX];
            st = nn_param_key(leaf, sizeof leaf, c, k) && tg_param_name(name, sizeof name, r->name, leaf)
                     ? tg_safetensors_writer_add(w, name, c->param[k])
                     : nn_error(TG_ERR_ARG, "rnn_export: name too long: '%s'", c->layout.param[k].name);
        }
    }
    return st;
}
