/* nn/rnn.c - recurrent layers: stacking, bidirectional merge, masking,
 * dropout with one mask per sequence, PyTorch weight import, sequence helpers.
 *
 * Inside a layer sequences are time-major 2-D, [T*B, D] with row t*B + b, so
 * the input projection of all steps is one GEMM and step t is rows
 * [t*B, (t+1)*B). Only the ends transpose from and to [B, T, D]. */
#include "nn_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct run_ctx {
    tg_tape *tp;
    const tg_rnn *r;
    const tg_rnn_call *call;
    int64_t B, T;
    tg_dtype dt;
    tg_tensor **keep, **drop;   /* per step [B, 1] valid / padded masks, NULL: all valid */
    const char *name;
} run_ctx;

tg_status tg_rnn_init(tg_rnn *r, tg_params *p, const char *name, const tg_rnn_opts *o,
                      tg_dtype dt, tg_rng *rng) {
    if (!r || !p || !o) return nn_error(TG_ERR_ARG, "rnn_init: needs a layer, registry, options");
    if (o->num_layers < 1 || o->num_layers > TG_RNN_MAX_LAYERS)
        return nn_error(TG_ERR_ARG, "%s: num_layers %d not in [1, %d]", nn_kind_name(o->kind),
                        o->num_layers, TG_RNN_MAX_LAYERS);
    if (!(o->dropout >= 0 && o->dropout < 1) ||
        !(o->recurrent_dropout >= 0 && o->recurrent_dropout < 1) || o->merge < TG_MERGE_CONCAT ||
        o->merge > TG_MERGE_AVE)
        return nn_error(TG_ERR_ARG, "%s: dropout rates must be in [0, 1), merge a tg_merge",
                        nn_kind_name(o->kind));
    memset(r, 0, sizeof *r);
    r->opts = *o;
    r->num_dirs = o->bidirectional ? 2 : 1;
    int64_t in = o->input_size;
    for (int l = 0; l < o->num_layers; l++) {
        for (int d = 0; d < r->num_dirs; d++) {
            char cname[NN_NAME_MAX], idx[32];
            snprintf(idx, sizeof idx, d ? "%d.reverse" : "%d", l);
            if (!tg_param_name(cname, sizeof cname, name, idx))
                return nn_error(TG_ERR_ARG, "rnn_init: name too long");
            tg_status st = tg_rnn_cell_init(&r->cell[l][d], p, cname, o, in, dt, rng);
            if (st != TG_OK) return st;
        }
        int64_t D = nn_state_size(&r->cell[l][0]);
        in = (r->num_dirs == 2 && o->merge == TG_MERGE_CONCAT) ? 2 * D : D;
    }
    return TG_OK;
}

/* ---- masks ------------------------------------------------------------------------ */
/* Per-step [B, 1] keep (1 valid) and drop (1 padded) constants, only for steps
 * that have a padded sequence; all-valid steps skip the masking ops. */
static int build_masks(run_ctx *x) {
    const tg_rnn_call *call = x->call;
    if (!call || (!call->lengths && !call->mask)) return 0;
    int64_t B = x->B, T = x->T;
    for (int64_t b = 0; call->lengths && b < B; b++)
        if (call->lengths[b] < 0 || call->lengths[b] > T)
            return tg_fail(x->tp, TG_ERR_ARG, x->name, "lengths[%lld] = %lld outside [0, %lld]",
                           (long long)b, (long long)call->lengths[b], (long long)T);
    x->keep = tg_tape_alloc(x->tp, (size_t)T * sizeof *x->keep);
    x->drop = tg_tape_alloc(x->tp, (size_t)T * sizeof *x->drop);
    if (!x->keep || !x->drop) return -1;
    for (int64_t t = 0; t < T; t++) {
        int64_t pads = 0;
        for (int64_t b = 0; b < B; b++)
            pads += call->lengths ? t >= call->lengths[b] : !call->mask[b * T + t];
        if (pads == 0) continue;
        x->keep[t] = nn_const(x->tp, x->dt, 2, (int64_t[]){B, 1}, 0);
        x->drop[t] = nn_const(x->tp, x->dt, 2, (int64_t[]){B, 1}, 0);
        if (!x->keep[t] || !x->drop[t]) return -1;
        for (int64_t b = 0; b < B; b++) {
            bool valid = call->lengths ? t < call->lengths[b] : call->mask[b * T + t];
            tg_tensor_set(x->keep[t], b, valid);
            tg_tensor_set(x->drop[t], b, !valid);
        }
    }
    return 0;
}

/* *keep = a keep mask [rows, cols] drawn once (inverted dropout of ones), or
 * NULL when dropout is off. Returns -1 on error. */
static int dropout_mask(run_ctx *x, int64_t rows, int64_t cols, double p, tg_tensor **keep) {
    *keep = NULL;
    if (p <= 0 || !tg_tape_training(x->tp)) return 0;
    if (!x->call || !x->call->rng)
        return tg_fail(x->tp, TG_ERR_ARG, x->name, "dropout %g in training needs call->rng", p);
    tg_tensor *ones = nn_const(x->tp, x->dt, 2, (int64_t[]){rows, cols}, 1);
    *keep = tg_dropout(x->tp, ones, p, x->call->rng);
    return *keep ? 0 : -1;
}

/* ---- one direction of one layer ---------------------------------------------------- */
static int initial_state(run_ctx *x, const tg_rnn_cell *c, int slot, tg_rnn_state *st) {
    const tg_rnn_state *given = x->call && x->call->initial ? &x->call->initial[slot] : NULL;
    *st = given ? *given : (tg_rnn_state){0};
    int64_t F = nn_state_size(c), H = c->hidden_size;
    const tg_tensor *chk[2] = {st->h, st->c};
    int64_t want[2] = {F, H};
    for (int k = 0; k < 2; k++) {
        if (!chk[k]) continue;
        if (tg_tensor_dtype(chk[k]) != x->dt || tg_tensor_ndim(chk[k]) != 2 ||
            tg_tensor_dim(chk[k], 0) != x->B || tg_tensor_dim(chk[k], 1) != want[k]) {
            char sh[160];
            return tg_fail(x->tp, TG_ERR_SHAPE, x->name,
                           "initial[%d].%s must be %s [%lld,%lld]: got %s %s", slot, k ? "c" : "h",
                           tg_dtype_name(x->dt), (long long)x->B, (long long)want[k],
                           tg_dtype_name(tg_tensor_dtype(chk[k])),
                           tg_shape_str(chk[k], sh, sizeof sh));
        }
    }
    if (!st->h) st->h = nn_const(x->tp, x->dt, 2, (int64_t[]){x->B, F}, 0);
    if (!st->c && (c->kind == TG_RNN_LSTM || c->kind == TG_RNN_LSTM_PEEPHOLE))
        st->c = nn_const(x->tp, x->dt, 2, (int64_t[]){x->B, H}, 0);
    return 0;
}

/* Carry the state through padded rows: s = keep * s_new + drop * s_prev. */
static tg_tensor *carry(tg_tape *tp, tg_tensor *kept_new, tg_tensor *prev, tg_tensor *drop) {
    return tg_add(tp, kept_new, tg_mul(tp, drop, prev));
}

/* X [T*B, Cin] -> outputs [T*B, F] (or NULL when !want_seq) and the final state. */
static tg_tensor *run_direction(run_ctx *x, const tg_rnn_cell *c, int slot, bool reverse,
                                tg_tensor *X, bool want_seq, tg_rnn_state *st) {
    tg_tape *tp = x->tp;
    int64_t B = x->B, T = x->T, Cin = c->input_size;
    nn_prep pp;
    if (initial_state(x, c, slot, st) != 0 || nn_prepare(tp, c, &pp) != 0) return NULL;
    tg_tensor *in_keep;
    if (dropout_mask(x, B, Cin, x->r->opts.dropout, &in_keep) != 0 ||
        dropout_mask(x, B, nn_state_size(c), x->r->opts.recurrent_dropout, &pp.rec_mask) != 0)
        return NULL;
    if (in_keep)   /* same mask at every step: [T, B, Cin] * [B, Cin] */
        X = tg_reshape(tp, tg_mul(tp, tg_reshape(tp, X, 3, (int64_t[]){T, B, Cin}), in_keep), 2,
                       (int64_t[]){T * B, Cin});
    tg_tensor *P = nn_project(tp, &pp, X);
    tg_tensor **outs = want_seq ? tg_tape_alloc(tp, (size_t)T * sizeof *outs) : NULL;
    if (!P || (want_seq && !outs)) return NULL;
    for (int64_t s = 0; s < T; s++) {
        int64_t t = reverse ? T - 1 - s : s;
        tg_rnn_state next;
        tg_tensor *out = nn_cell_run(tp, &pp, tg_slice(tp, P, 0, t * B, (t + 1) * B), st, &next);
        if (x->keep && x->keep[t]) {   /* padded rows: output 0, state unchanged */
            out = tg_mul(tp, out, x->keep[t]);
            next.h = carry(tp, out, st->h, x->drop[t]);
            if (next.c) next.c = carry(tp, tg_mul(tp, next.c, x->keep[t]), st->c, x->drop[t]);
        }
        if (!out) return NULL;
        if (outs) outs[t] = out;
        *st = next;
    }
    return outs ? tg_concat(tp, (int)T, outs, 0) : st->h;
}

static tg_tensor *merge(tg_tape *tp, tg_merge m, tg_tensor *a, tg_tensor *b) {
    if (!b) return a;
    switch (m) {
    case TG_MERGE_CONCAT: return tg_concat(tp, 2, (tg_tensor *[]){a, b}, 1);
    case TG_MERGE_SUM: return tg_add(tp, a, b);
    case TG_MERGE_MUL: return tg_mul(tp, a, b);
    case TG_MERGE_AVE: return tg_scale(tp, tg_add(tp, a, b), 0.5);
    }
    return NULL;
}

static bool check_input(run_ctx *x, tg_tensor *in) {
    const tg_rnn_cell *c0 = &x->r->cell[0][0];
    x->dt = tg_tensor_dtype(c0->weight_ih ? c0->weight_ih : c0->weight);
    if (tg_tensor_ndim(in) == 3 && tg_tensor_dtype(in) == x->dt &&
        tg_tensor_dim(in, 2) == c0->input_size && tg_tensor_dim(in, 0) > 0 &&
        tg_tensor_dim(in, 1) > 0) {
        x->B = tg_tensor_dim(in, 0);
        x->T = tg_tensor_dim(in, 1);
        return true;
    }
    char sh[160];
    tg_fail(x->tp, TG_ERR_SHAPE, x->name, "x must be %s [B,T,%lld] with B, T >= 1: got %s %s",
            tg_dtype_name(x->dt), (long long)c0->input_size, tg_dtype_name(tg_tensor_dtype(in)),
            tg_shape_str(in, sh, sizeof sh));
    return false;
}

tg_tensor *tg_rnn_forward(tg_tape *tp, const tg_rnn *r, tg_tensor *x, const tg_rnn_call *call,
                          tg_rnn_state *final) {
    if (!r || r->num_dirs < 1 || !(r->cell[0][0].weight_ih || r->cell[0][0].weight)) {
        tg_fail(tp, TG_ERR_ARG, "rnn", "layer is not initialised");
        return NULL;
    }
    if (!x) return NULL;
    run_ctx cx = {.tp = tp, .r = r, .call = call, .name = nn_kind_name(r->opts.kind)};
    if (!check_input(&cx, x) || build_masks(&cx) != 0) return NULL;
    int64_t B = cx.B, T = cx.T;
    bool seq_out = r->opts.return_sequences;
    tg_tensor *X = tg_reshape(tp, tg_transpose(tp, x, 0, 1), 2, (int64_t[]){T * B, -1});
    tg_tensor *last = NULL;
    for (int l = 0; l < r->opts.num_layers; l++) {
        bool want_seq = seq_out || l + 1 < r->opts.num_layers;
        tg_tensor *Y[2] = {NULL, NULL};
        tg_tensor *H[2] = {NULL, NULL};
        for (int d = 0; d < r->num_dirs; d++) {
            tg_rnn_state st;
            int slot = l * r->num_dirs + d;
            Y[d] = run_direction(&cx, &r->cell[l][d], slot, d == 1, X, want_seq, &st);
            if (!Y[d]) return NULL;
            H[d] = st.h;
            if (final) final[slot] = st;
        }
        X = want_seq ? merge(tp, r->opts.merge, Y[0], Y[1]) : NULL;
        last = merge(tp, r->opts.merge, H[0], H[1]);
    }
    if (!seq_out) return last;
    tg_tensor *seq = tg_reshape(tp, X, 3, (int64_t[]){T, B, -1});
    return tg_transpose(tp, seq, 0, 1);
}

/* ---- PyTorch import ------------------------------------------------------------------ */
tg_status tg_rnn_import_torch(tg_rnn *r, const char *torch_name, const tg_tensor *value) {
    if (!r || !torch_name || !value) return nn_error(TG_ERR_ARG, "rnn_import_torch: NULL argument");
    static const char *const kinds[] = {"weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l"};
    int k = 0, layer = -1, used = 0;
    while (k < 4 && strncmp(torch_name, kinds[k], strlen(kinds[k])) != 0) k++;
    const char *rest = k < 4 ? torch_name + strlen(kinds[k]) : "";
    if (k == 4 || sscanf(rest, "%d%n", &layer, &used) != 1 || layer < 0 ||
        (strcmp(rest + used, "") != 0 && strcmp(rest + used, "_reverse") != 0))
        return nn_error(TG_ERR_ARG, "rnn_import_torch: unknown name '%s'", torch_name);
    int dir = rest[used] ? 1 : 0;
    if (layer >= r->opts.num_layers || dir >= r->num_dirs)
        return nn_error(TG_ERR_ARG, "rnn_import_torch: '%s' names a layer or direction this layer lacks",
                        torch_name);
    tg_rnn_cell *c = &r->cell[layer][dir];
    tg_tensor *dst[4] = {c->weight_ih, c->weight_hh, c->bias_ih, c->bias_hh};
    if (!dst[k]) return nn_error(TG_ERR_ARG, "rnn_import_torch: a %s has no '%s'",
                                 nn_kind_name(c->kind), torch_name);
    if (tg_tensor_ndim(dst[k]) != tg_tensor_ndim(value) ||
        memcmp(tg_tensor_shape(dst[k]), tg_tensor_shape(value),
               (size_t)tg_tensor_ndim(value) * sizeof(int64_t)) != 0)
        return nn_error(TG_ERR_SHAPE, "rnn_import_torch: shape of '%s' differs", torch_name);
    return tg_tensor_copy(dst[k], value);
}

/* ---- sequences ----------------------------------------------------------------------- */
tg_status tg_seq_lengths(const tg_tensor *ids, int32_t pad_id, int64_t *lengths) {
    if (!ids || !lengths || tg_tensor_dtype(ids) != TG_I32 || tg_tensor_ndim(ids) != 2)
        return nn_error(TG_ERR_ARG, "seq_lengths: needs int32 ids [B, T] and a lengths array");
    int64_t B = tg_tensor_dim(ids, 0), T = tg_tensor_dim(ids, 1);
    const int32_t *id = tg_tensor_cdata(ids);
    for (int64_t b = 0; b < B; b++) {
        lengths[b] = 0;
        for (int64_t t = 0; t < T; t++)
            if (id[b * T + t] != pad_id) lengths[b] = t + 1;
    }
    return TG_OK;
}

/* Each [T_i, C] gets zeros [Tmax - T_i, C] appended, then the rows stack. */
tg_tensor *tg_pad_sequences(tg_tape *tp, int n, tg_tensor *const *seqs, int64_t *lengths) {
    if (n < 1 || !seqs) {
        tg_fail(tp, TG_ERR_ARG, "pad_sequences", "needs n >= 1 sequences, got %d", n);
        return NULL;
    }
    int64_t Tmax = 0;
    for (int i = 0; i < n; i++) {
        if (!seqs[i]) return NULL;
        char s0[160], si[160];
        if (tg_tensor_ndim(seqs[i]) != 2 || tg_tensor_dim(seqs[i], 1) != tg_tensor_dim(seqs[0], 1) ||
            tg_tensor_dtype(seqs[i]) != tg_tensor_dtype(seqs[0])) {
            tg_fail(tp, TG_ERR_SHAPE, "pad_sequences", "sequence %d must be [T, C] like sequence 0: %s vs %s",
                    i, tg_shape_str(seqs[i], si, sizeof si), tg_shape_str(seqs[0], s0, sizeof s0));
            return NULL;
        }
        if (tg_tensor_dim(seqs[i], 0) > Tmax) Tmax = tg_tensor_dim(seqs[i], 0);
    }
    if (Tmax == 0) {
        tg_fail(tp, TG_ERR_SHAPE, "pad_sequences", "every sequence is empty");
        return NULL;
    }
    int64_t C = tg_tensor_dim(seqs[0], 1);
    tg_dtype dt = tg_tensor_dtype(seqs[0]);
    tg_tensor **rows = tg_tape_alloc(tp, (size_t)n * sizeof *rows);
    if (!rows) return NULL;
    for (int i = 0; i < n; i++) {
        int64_t Ti = tg_tensor_dim(seqs[i], 0);
        if (lengths) lengths[i] = Ti;
        tg_tensor *pad = Ti < Tmax ? nn_const(tp, dt, 2, (int64_t[]){Tmax - Ti, C}, 0) : NULL;
        tg_tensor *full = !pad ? seqs[i] : Ti == 0 ? pad
                                         : tg_concat(tp, 2, (tg_tensor *[]){seqs[i], pad}, 0);
        rows[i] = tg_reshape(tp, full, 3, (int64_t[]){1, Tmax, C});
    }
    return tg_concat(tp, n, rows, 0);
}
