/* nn/rnn.c - recurrent layers over any cell descriptor (nn_cell.h): stacking,
 * bidirectional runs, masking and variable lengths, Keras- and PyTorch-style
 * dropout, initial and final states. Nothing here knows which cell it runs.
 *
 * Inside a layer sequences are time-major 2-D, [T*B, D] with row t*B + b, so
 * a cell's prepare sees the inputs of all steps at once (one GEMM) and step t
 * is rows [t*B, (t+1)*B). Batch-first input is transposed at the ends only.
 *
 * Padding never leaks: padded input rows are replaced by zeros before the
 * first projection, and at a padded step every state is selected from the
 * previous one (tg_where), so a NaN or Inf in a padded position reaches no
 * valid value and no gradient (a 0/1 blend would: 0 * NaN = NaN). */
#include "nn_private.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct run_ctx {
    tg_tape *tp;
    const tg_rnn *r;
    const tg_rnn_call *call;
    int64_t B, T;
    tg_dtype dt;
    tg_tensor **keep;        /* per step [B, 1] 1 valid 0 padded; NULL (entries): all valid */
    tg_tensor *valid_rows;   /* [T*B, 1] the same for the time-major input rows, or NULL    */
    tg_tensor *zero;         /* [1], with masks                                             */
    char scope[224];         /* error context: "rnn 'enc': cell lstm, layer 1 reverse, step 3" */
    size_t scope_len;        /* where ", step t" goes                                        */
} run_ctx;

/* ---- options and set-up ------------------------------------------------------------------ */
tg_rnn_opts tg_rnn_opts_default(const tg_cell *cell, int64_t input_size, int64_t hidden_size) {
    return (tg_rnn_opts){.cell = cell, .input_size = input_size, .hidden_size = hidden_size,
                         .num_layers = 1, .activation = TG_ACT_TANH,
                         .recurrent_activation = TG_ACT_SIGMOID,
                         .output_activation = TG_ACT_LINEAR, .unit_forget_bias = true};
}

/* U(-1/sqrt(H), 1/sqrt(H)) everywhere, every step's output, time major */
tg_rnn_opts tg_rnn_opts_torch(const tg_cell *cell, int64_t input_size, int64_t hidden_size) {
    tg_rnn_opts o = tg_rnn_opts_default(cell, input_size, hidden_size);
    double k = hidden_size > 0 ? 1 / sqrt((double)hidden_size) : 0;
    tg_initializer u = {TG_INIT_UNIFORM, -k, k};
    o.kernel_init = o.recurrent_init = o.bias_init = u;
    o.unit_forget_bias = false;
    o.return_sequences = true;
    o.time_major = true;
    return o;
}

static bool rate_ok(double p) { return p >= 0 && p < 1; }

static tg_status check_layer_opts(const tg_rnn_opts *o) {
    const char *cell = o->cell && o->cell->name ? o->cell->name : "rnn";
    if (o->num_layers < 1)
        return nn_error(TG_ERR_ARG, "%s: num_layers %d must be >= 1", cell, o->num_layers);
    if (o->checkpoint_every < 0)
        return nn_error(TG_ERR_ARG, "%s: checkpoint_every %lld must be >= 0 (0: off)", cell,
                        (long long)o->checkpoint_every);
    if (!rate_ok(o->dropout) || !rate_ok(o->recurrent_dropout) || !rate_ok(o->layer_dropout) ||
        o->merge < TG_MERGE_CONCAT || o->merge > TG_MERGE_AVE)
        return nn_error(TG_ERR_ARG, "%s: dropout rates must be in [0, 1), merge a tg_merge", cell);
    return TG_OK;
}

tg_status tg_rnn_init(tg_rnn *r, tg_params *p, const char *name, const tg_rnn_opts *o,
                      tg_dtype dt, tg_rng *rng) {
    if (!r || !p || !o) return nn_error(TG_ERR_ARG, "rnn_init: needs a layer, registry, options");
    memset(r, 0, sizeof *r);
    tg_status st = check_layer_opts(o);
    if (st != TG_OK) return st;
    r->opts = *o;
    r->num_dirs = o->bidirectional ? 2 : 1;
    snprintf(r->name, sizeof r->name, "%s", name ? name : "");
    r->cells = calloc((size_t)o->num_layers * (size_t)r->num_dirs, sizeof *r->cells);
    if (!r->cells) return nn_error(TG_ERR_NOMEM, "rnn_init: out of memory");
    int64_t in = o->input_size;
    for (int l = 0; l < o->num_layers; l++) {
        for (int d = 0; d < r->num_dirs; d++) {
            st = nn_cell_setup(&r->cells[l * r->num_dirs + d], p, name, o, l, d, in, dt, rng);
            if (st != TG_OK) {
                tg_rnn_free(r);
                return st;
            }
        }
        int64_t D = r->cells[l * r->num_dirs].layout.state_size[0];
        in = (r->num_dirs == 2 && o->merge == TG_MERGE_CONCAT) ? 2 * D : D;
    }
    return TG_OK;
}

void tg_rnn_free(tg_rnn *r) {
    if (!r) return;
    free(r->cells);
    r->cells = NULL;
}

tg_rnn_cell *tg_rnn_cell_at(const tg_rnn *r, int layer, int dir) {
    if (!r || !r->cells || layer < 0 || layer >= r->opts.num_layers || dir < 0 || dir >= r->num_dirs)
        return NULL;
    return &r->cells[layer * r->num_dirs + dir];
}

int tg_rnn_num_states(const tg_rnn *r) {
    return r && r->cells ? r->opts.num_layers * r->num_dirs : 0;
}

/* ---- input, counts and masks ---------------------------------------------------------------- */
static bool check_input(run_ctx *x, const tg_tensor *in) {
    const tg_rnn_cell *c0 = &x->r->cells[0];
    bool tm = x->r->opts.time_major;
    x->dt = nn_cell_dtype(c0);
    if (tg_tensor_ndim(in) == 3 && tg_tensor_dtype(in) == x->dt &&
        tg_tensor_dim(in, 2) == c0->cfg.input_size && tg_tensor_dim(in, 0) > 0 &&
        tg_tensor_dim(in, 1) > 0 && tg_tensor_dim(in, tm ? 0 : 1) <= INT_MAX) {
        x->B = tg_tensor_dim(in, tm ? 1 : 0);
        x->T = tg_tensor_dim(in, tm ? 0 : 1);
        return true;
    }
    char sh[160];
    tg_fail(x->tp, TG_ERR_SHAPE, c0->cell->name, "x must be %s [%s,%lld] with B, T >= 1: got %s %s",
            tg_dtype_name(x->dt), tm ? "T,B" : "B,T", (long long)c0->cfg.input_size,
            tg_dtype_name(tg_tensor_dtype(in)), tg_shape_str(in, sh, sizeof sh));
    return false;
}

static bool check_counts(run_ctx *x, int n_final, bool want_final) {
    const tg_rnn_call *call = x->call;
    int slots = tg_rnn_num_states(x->r);
    const char *cell = x->r->cells[0].cell->name;
    if (call && call->initial && call->n_initial != slots)
        return tg_fail(x->tp, TG_ERR_ARG, cell, "call->n_initial is %d, the layer has %d states "
                       "(layers x directions)", call->n_initial, slots), false;
    if (want_final && n_final < slots)
        return tg_fail(x->tp, TG_ERR_ARG, cell, "final has room for %d states, the layer has %d "
                       "(layers x directions)", n_final, slots), false;
    return true;
}

static bool valid_at(const tg_rnn_call *call, int64_t T, int64_t b, int64_t t) {
    return call->lengths ? t < call->lengths[b] : call->mask[b * T + t] != 0;
}

/* Per-step [B, 1] keep masks, only for steps where some sequence is padded,
 * and the [T*B, 1] mask of valid input rows when any is. */
static int build_masks(run_ctx *x) {
    const tg_rnn_call *call = x->call;
    if (!call || (!call->lengths && !call->mask)) return 0;
    tg_tape *tp = x->tp;
    int64_t B = x->B, T = x->T;
    for (int64_t b = 0; call->lengths && b < B; b++)
        if (call->lengths[b] < 0 || call->lengths[b] > T)
            return tg_fail(tp, TG_ERR_ARG, x->r->cells[0].cell->name,
                           "lengths[%lld] = %lld outside [0, %lld]", (long long)b,
                           (long long)call->lengths[b], (long long)T);
    x->keep = tg_tape_alloc(tp, (size_t)T * sizeof *x->keep);
    tg_tensor *rows = nn_const(tp, x->dt, 2, (int64_t[]){T * B, 1}, 0);
    if (!x->keep || !rows) return -1;
    bool any = false;
    for (int64_t t = 0; t < T; t++) {
        int64_t pads = 0;
        for (int64_t b = 0; b < B; b++) {
            bool valid = valid_at(call, T, b, t);
            tg_tensor_set(rows, t * B + b, valid);
            pads += !valid;
        }
        if (pads == 0) continue;
        any = true;
        x->keep[t] = tg_slice(tp, rows, 0, t * B, (t + 1) * B);
        if (!x->keep[t]) return -1;
    }
    x->valid_rows = any ? rows : NULL;
    x->zero = any ? nn_const(tp, x->dt, 1, (int64_t[]){1}, 0) : NULL;
    return any && !x->zero ? -1 : 0;
}

/* *keep = a keep mask [rows, cols] drawn once (inverted dropout of ones), or
 * NULL when dropout is off. Returns -1 on error. */
static int dropout_mask(run_ctx *x, int64_t rows, int64_t cols, double p, tg_tensor **keep) {
    *keep = NULL;
    if (p <= 0 || !tg_tape_training(x->tp)) return 0;
    if (!x->call || !x->call->rng)
        return tg_fail(x->tp, TG_ERR_ARG, x->r->cells[0].cell->name,
                       "dropout %g in training needs call->rng", p);
    tg_tensor *ones = nn_const(x->tp, x->dt, 2, (int64_t[]){rows, cols}, 1);
    *keep = tg_dropout(x->tp, ones, p, x->call->rng);
    return *keep ? 0 : -1;
}

/* ---- one direction of one layer -------------------------------------------------------------- */
static void scope_direction(run_ctx *x, const tg_rnn_cell *c) {
    int n = snprintf(x->scope, sizeof x->scope, "rnn '%s': cell %s, layer %d%s", x->r->name,
                     c->cell->name, c->layer, c->dir ? " reverse" : "");
    x->scope_len = n < 0 ? 0 : (size_t)n < sizeof x->scope ? (size_t)n : sizeof x->scope - 1;
}

static void scope_step(run_ctx *x, int64_t t) {
    snprintf(x->scope + x->scope_len, sizeof x->scope - x->scope_len, ", step %lld", (long long)t);
}

static int initial_state(run_ctx *x, const tg_rnn_cell *c, int slot, tg_rnn_state *st) {
    const tg_rnn_call *call = x->call;
    *st = call && call->initial ? call->initial[slot] : (tg_rnn_state){{{0}}};
    char what[32];
    snprintf(what, sizeof what, "initial[%d]", slot);
    if (nn_state_check(x->tp, c, what, x->B, x->dt, st, true) != 0) return -1;
    return nn_state_zeros(x->tp, c, x->B, x->dt, st);
}

/* The cell's prepare on the inputs of `steps` steps X [steps*B, Cin] (all T,
 * or a checkpointed span's), which must keep the rows. */
static tg_tensor *prepared(run_ctx *x, const tg_rnn_cell *c, tg_cell_run *run, tg_tensor *X,
                           int64_t steps) {
    if (!c->cell->prepare || !X) return X;
    tg_tensor *P = c->cell->prepare(run, X);
    if (!P || (tg_tensor_ndim(P) == 2 && tg_tensor_dim(P, 0) == steps * x->B)) return P;
    char sh[160];
    tg_fail(x->tp, TG_ERR_SHAPE, c->cell->name, "prepare must return [T*B, G] = [%lld, G]: got %s",
            (long long)(steps * x->B), tg_shape_str(P, sh, sizeof sh));
    return NULL;
}

/* Step t from *st: the cell's step, its states checked, padded rows carried
 * by selection. *st becomes the state after t; returns the output at t (zero
 * on padded rows; NULL when !want_out or on error). */
static tg_tensor *cell_step(run_ctx *x, const tg_rnn_cell *c, const tg_cell_run *run,
                            tg_tensor *in, tg_tensor *rec_keep, int64_t t, bool want_out,
                            tg_rnn_state *st) {
    tg_tape *tp = x->tp;
    tg_rnn_state next = {{{0}}};
    tg_tensor *h_rec = rec_keep ? tg_mul(tp, st->s[0], rec_keep) : st->s[0];
    if (!in || !h_rec) return NULL;
    c->cell->step(run, in, st->s, h_rec, next.s);
    if (nn_state_check(tp, c, "the step's result", x->B, x->dt, &next, false) != 0) return NULL;
    tg_tensor *keep = x->keep ? x->keep[t] : NULL, *out = next.s[0];
    if (keep) {   /* padded rows: every state carried, output zero; selected, never blended */
        out = want_out ? tg_where(tp, keep, out, x->zero) : NULL;
        for (int k = 0; k < c->layout.n_states; k++)
            next.s[k] = tg_where(tp, keep, next.s[k], st->s[k]);
    }
    *st = next;
    return want_out ? out : st->s[0];
}

/* ---- checkpointed spans (tg_rnn_opts.checkpoint_every) ----------------------------------------
 * A span is steps t0 .. t0+len-1 of one direction, run by tg_checkpoint on its
 * sub-tape. Inputs: each step's rows of P [B, G], computed one by one (a fused
 * projection adds its biases per step, as without spans, so their gradients
 * sum in the same order), or with checkpoint_inputs the span's rows of X
 * [len*B, Cin]; then the states before it. Outputs: each step's output
 * [B, F] (want_seq), then the states after it (h is usually the last step's
 * output: one tensor, so its gradient sums in the order of the plain tape). */
typedef struct span_ctx {
    run_ctx x;   /* a copy in the arena: the recomputation runs in backward, after tg_rnn_forward */
    const tg_rnn_cell *c;
    tg_tensor *rec_keep;
    int64_t t0, len;
    bool want_seq, project;   /* project: in[0] is X; run the cell's prepare on it */
} span_ctx;

static int span_fn(tg_tape *sub, void *ctx, tg_tensor *const *in, int n, tg_tensor **out, int m) {
    const span_ctx *sc = ctx;
    const tg_rnn_cell *c = sc->c;
    run_ctx x = sc->x;   /* the same layer, on the sub-tape */
    x.tp = sub;
    const char *outer = tg_tape_set_scope(sub, x.scope);
    tg_cell_run run = {.tp = sub, .cfg = &c->cfg, .param = c->param};
    tg_rnn_state st = {{{0}}};
    int n_steps_in = sc->project ? 1 : (int)sc->len;
    for (int k = 0; k + n_steps_in < n; k++) st.s[k] = in[n_steps_in + k];
    tg_tensor *P = sc->project ? prepared(&x, c, &run, in[0], sc->len) : NULL;
    tg_tensor **outs = sc->want_seq ? out : NULL;
    int rc = P || !sc->project ? 0 : -1;
    for (int64_t s = 0; rc == 0 && s < sc->len; s++) {
        int64_t i = c->dir ? sc->len - 1 - s : s, t = sc->t0 + i;
        scope_step(&x, t);
        tg_tensor *xp = P ? tg_slice(sub, P, 0, i * x.B, (i + 1) * x.B) : in[i];
        tg_tensor *o = cell_step(&x, c, &run, xp, sc->rec_keep, t, sc->want_seq, &st);
        if (!o) rc = -1;
        else if (outs) outs[i] = o;
    }
    for (int k = 0; rc == 0 && k < c->layout.n_states; k++) out[m - c->layout.n_states + k] = st.s[k];
    tg_tape_set_scope(sub, outer);
    return rc;
}

/* in[] of a span (see above) from Z (P, or X with checkpoint_inputs) and the
 * states; returns how many, -1 on error. */
static int span_inputs(run_ctx *x, const span_ctx *sc, tg_tensor *Z, const tg_rnn_state *st,
                       int ns, tg_tensor **in) {
    int64_t B = x->B, t0 = sc->t0;
    int n = 0;
    if (sc->project) {
        in[n++] = tg_slice(x->tp, Z, 0, t0 * B, (t0 + sc->len) * B);
    } else {
        for (int64_t s = 0; s < sc->len; s++, n++) {   /* in the order the steps run */
            int64_t i = sc->c->dir ? sc->len - 1 - s : s;
            in[i] = tg_slice(x->tp, Z, 0, (t0 + i) * B, (t0 + i + 1) * B);
            if (!tg_tensor_data(in[i])) return -1;   /* this step's rows alone */
        }
    }
    if (!in[0]) return -1;
    for (int i = 0; i < ns; i++) in[n++] = st->s[i];
    return n;
}

/* The steps of one direction as checkpointed spans of checkpoint_every steps
 * (the backward direction runs its spans from the last); Z is P, or X with
 * checkpoint_inputs. Returns as run_direction. */
static tg_tensor *run_spans(run_ctx *x, const tg_rnn_cell *c, tg_tensor *Z, tg_tensor *rec_keep,
                            bool want_seq, tg_rnn_state *st) {
    tg_tape *tp = x->tp;
    int64_t T = x->T, k = x->r->opts.checkpoint_every, n_spans = (T + k - 1) / k;
    int ns = c->layout.n_states;
    if (k > T) k = T;
    /* the outputs of every step (outs[t]) and one span's: k steps, the states */
    tg_tensor **outs = tg_tape_alloc(tp, (size_t)(want_seq ? T : 0) * sizeof *outs +
                                             (size_t)(k + ns) * sizeof *outs);
    if (!outs) return NULL;
    tg_tensor **out = outs + (want_seq ? T : 0);
    tg_tensor **in = tg_tape_alloc(tp, (size_t)(k + ns) * sizeof *in);
    if (!in) return NULL;
    for (int64_t q = 0; q < n_spans; q++) {
        int64_t span = c->dir ? n_spans - 1 - q : q, t0 = span * k;
        span_ctx *sc = tg_tape_alloc(tp, sizeof *sc);
        if (!sc) return NULL;
        *sc = (span_ctx){.x = *x, .c = c, .rec_keep = rec_keep, .t0 = t0,
                         .len = T - t0 < k ? T - t0 : k, .want_seq = want_seq,
                         .project = x->r->opts.checkpoint_inputs};
        sc->x.call = NULL;   /* the caller's; dropout masks are drawn outside the spans */
        int n_in = span_inputs(x, sc, Z, st, ns, in);
        int m = (want_seq ? (int)sc->len : 0) + ns;
        if (n_in < 0 || tg_checkpoint(tp, span_fn, sc, NULL, in, n_in, out, m) != TG_OK)
            return NULL;
        for (int64_t i = 0; want_seq && i < sc->len; i++) outs[t0 + i] = out[i];
        for (int i = 0; i < ns; i++) st->s[i] = out[m - ns + i];
    }
    return want_seq ? tg_concat(tp, (int)T, outs, 0) : st->s[0];
}

/* X [T*B, Cin] -> outputs [T*B, F] (want_seq), else the last output; *st the final state. */
static tg_tensor *run_direction(run_ctx *x, const tg_rnn_cell *c, int slot, tg_tensor *X,
                                bool want_seq, tg_rnn_state *st) {
    tg_tape *tp = x->tp;
    int64_t B = x->B, T = x->T, Cin = c->cfg.input_size;
    scope_direction(x, c);
    tg_tensor *in_keep, *rec_keep;
    if (initial_state(x, c, slot, st) != 0 ||
        dropout_mask(x, B, Cin, x->r->opts.dropout, &in_keep) != 0 ||
        dropout_mask(x, B, c->layout.state_size[0], x->r->opts.recurrent_dropout, &rec_keep) != 0)
        return NULL;
    if (in_keep)   /* Keras: the same mask at every step, [T, B, Cin] * [B, Cin] */
        X = tg_reshape(tp, tg_mul(tp, tg_reshape(tp, X, 3, (int64_t[]){T, B, Cin}), in_keep), 2,
                       (int64_t[]){T * B, Cin});
    if (x->r->opts.checkpoint_every > 0)
        return run_spans(x, c, x->r->opts.checkpoint_inputs ? X : prepared(x, c, &(tg_cell_run){
                         .tp = tp, .cfg = &c->cfg, .param = c->param}, X, T), rec_keep, want_seq, st);
    tg_cell_run run = {.tp = tp, .cfg = &c->cfg, .param = c->param};
    tg_tensor *P = prepared(x, c, &run, X, T);
    tg_tensor **outs = want_seq ? tg_tape_alloc(tp, (size_t)T * sizeof *outs) : NULL;
    if (!P || (want_seq && !outs)) return NULL;
    tg_tensor *out = NULL;
    for (int64_t s = 0; s < T; s++) {
        int64_t t = c->dir ? T - 1 - s : s;   /* the backward direction runs T-1 .. 0 */
        scope_step(x, t);
        out = cell_step(x, c, &run, tg_slice(tp, P, 0, t * B, (t + 1) * B), rec_keep, t, want_seq, st);
        if (!out) return NULL;
        if (outs) outs[t] = out;
    }
    return outs ? tg_concat(tp, (int)T, outs, 0) : out;
}

/* ---- the layer ----------------------------------------------------------------------------------- */
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

/* PyTorch's dropout between layers: a fresh draw per element and step. */
static tg_tensor *layer_dropout(run_ctx *x, tg_tensor *X) {
    double p = x->r->opts.layer_dropout;
    if (!X || p <= 0 || !tg_tape_training(x->tp)) return X;
    if (!x->call || !x->call->rng) {
        tg_fail(x->tp, TG_ERR_ARG, x->r->cells[0].cell->name,
                "layer_dropout %g in training needs call->rng", p);
        return NULL;
    }
    return tg_dropout(x->tp, X, p, x->call->rng);
}

static tg_tensor *forward(run_ctx *x, tg_tensor *in, tg_rnn_state *final) {
    tg_tape *tp = x->tp;
    const tg_rnn *r = x->r;
    int64_t B = x->B, T = x->T;
    bool seq_out = r->opts.return_sequences, tm = r->opts.time_major;
    /* [T*B, C] time-major rows; padded rows zeroed by selection before any projection,
     * so a NaN there reaches neither the GEMM nor W_ih's gradient (dW = dP^T X) */
    tg_tensor *X = tg_reshape(tp, tm ? in : tg_transpose(tp, in, 0, 1), 2, (int64_t[]){T * B, -1});
    if (x->valid_rows) X = tg_where(tp, x->valid_rows, X, x->zero);
    tg_tensor *last = NULL;
    for (int l = 0; l < r->opts.num_layers; l++) {
        bool want_seq = seq_out || l + 1 < r->opts.num_layers;
        tg_tensor *Y[2] = {NULL, NULL}, *H[2] = {NULL, NULL};
        for (int d = 0; d < r->num_dirs; d++) {
            tg_rnn_state st;
            int slot = l * r->num_dirs + d;
            Y[d] = run_direction(x, &r->cells[slot], slot, X, want_seq, &st);
            if (!Y[d]) return NULL;
            H[d] = st.s[0];
            if (final) final[slot] = st;
        }
        X = want_seq ? merge(tp, r->opts.merge, Y[0], Y[1]) : NULL;
        if (l + 1 < r->opts.num_layers) X = layer_dropout(x, X);
        last = merge(tp, r->opts.merge, H[0], H[1]);
    }
    if (!seq_out) return last;
    tg_tensor *seq = tg_reshape(tp, X, 3, (int64_t[]){T, B, -1});
    return tm ? seq : tg_transpose(tp, seq, 0, 1);
}

tg_tensor *tg_rnn_forward(tg_tape *tp, const tg_rnn *r, tg_tensor *x, const tg_rnn_call *call,
                          tg_rnn_state *final, int n_final) {
    if (!r || !r->cells || r->num_dirs < 1) {
        tg_fail(tp, TG_ERR_ARG, "rnn", "layer is not initialised");
        return NULL;
    }
    if (!x) return NULL;
    run_ctx cx = {.tp = tp, .r = r, .call = call};
    snprintf(cx.scope, sizeof cx.scope, "rnn '%s'", r->name);
    const char *outer = tg_tape_set_scope(tp, cx.scope);
    tg_tensor *y = NULL;
    if (check_input(&cx, x) && check_counts(&cx, n_final, final != NULL) && build_masks(&cx) == 0)
        y = forward(&cx, x, final);
    tg_tape_set_scope(tp, outer);
    return y;
}
