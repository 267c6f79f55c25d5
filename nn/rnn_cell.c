/* nn/rnn_cell.c - recurrent cells: options, parameters, one step; Elman and Jordan.
 * LSTM variants are in lstm.c, GRU in gru.c, whole layers in rnn.c. */
#include "nn_private.h"

#include <math.h>
#include <stdio.h>

static const tg_initializer GLOROT = {TG_INIT_GLOROT_UNIFORM, 0, 0};
static const tg_initializer ORTHO = {TG_INIT_ORTHOGONAL, 0, 0};
static const tg_initializer ZEROS = {TG_INIT_ZEROS, 0, 0};

const char *nn_kind_name(tg_rnn_kind k) {
    switch (k) {
    case TG_RNN_ELMAN: return "elman";
    case TG_RNN_JORDAN: return "jordan";
    case TG_RNN_LSTM: return "lstm";
    case TG_RNN_GRU: return "gru";
    case TG_RNN_LSTM_PEEPHOLE: return "peephole_lstm";
    case TG_RNN_LSTM_PROTOTYPE: return "prototype_lstm";
    }
    return "rnn";
}

static bool lstm_like(tg_rnn_kind k) {
    return k == TG_RNN_LSTM || k == TG_RNN_LSTM_PEEPHOLE || k == TG_RNN_LSTM_PROTOTYPE;
}

bool nn_projects(const tg_rnn_cell *c) { return c->kind != TG_RNN_ELMAN && c->kind != TG_RNN_JORDAN; }

int64_t nn_state_size(const tg_rnn_cell *c) {
    return c->kind == TG_RNN_JORDAN ? c->output_size : c->hidden_size;
}

tg_rnn_opts tg_rnn_opts_default(tg_rnn_kind kind, int64_t input_size, int64_t hidden_size) {
    return (tg_rnn_opts){.kind = kind, .input_size = input_size, .hidden_size = hidden_size,
                         .num_layers = 1, .activation = TG_ACT_TANH,
                         .recurrent_activation = TG_ACT_SIGMOID,
                         .output_activation = TG_ACT_LINEAR, .unit_forget_bias = true};
}

/* ---- parameters ----------------------------------------------------------------------- */
/* Fill columns [col, col + block's columns) of the 2-D w from a block drawn with init. */
static tg_status init_block(tg_tensor *w, int64_t col, int64_t cols, tg_initializer init, tg_rng *rng) {
    int64_t rows = tg_tensor_dim(w, 0), width = tg_tensor_dim(w, 1);
    tg_tensor *blk = tg_tensor_new(TG_F64, 2, (int64_t[]){rows, cols});
    if (!blk) return nn_last();
    tg_status st = tg_init_apply(blk, init, rng);
    for (int64_t i = 0; st == TG_OK && i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            tg_tensor_set(w, i * width + col + j, tg_tensor_get(blk, i * cols + j));
    tg_tensor_free(blk);
    return st;
}

/* Elman W [H, C+H] / Jordan W [H, C+O]: the x block as a kernel, the feedback
 * block as a recurrent matrix (Keras' SimpleRNN initialisers). */
static tg_status concat_cell_params(tg_rnn_cell *c, tg_params *p, const char *name,
                                    const tg_rnn_opts *o, tg_dtype dt, tg_rng *rng) {
    int64_t H = c->hidden_size, C = c->input_size, F = nn_state_size(c);
    c->weight = nn_param(p, name, "weight", dt, 2, (int64_t[]){H, C + F}, ZEROS, NULL);
    if (!c->weight) return nn_last();
    tg_status st = init_block(c->weight, 0, C, nn_init_or(o->kernel_init, GLOROT), rng);
    if (st == TG_OK) st = init_block(c->weight, C, F, nn_init_or(o->recurrent_init, ORTHO), rng);
    if (st != TG_OK) return st;
    c->bias = nn_param(p, name, "bias", dt, 1, &H, nn_init_or(o->bias_init, ZEROS), rng);
    if (!c->bias) return nn_last();
    if (c->kind != TG_RNN_JORDAN) return TG_OK;
    c->weight_out = nn_param(p, name, "weight_out", dt, 2, (int64_t[]){F, H},
                             nn_init_or(o->kernel_init, GLOROT), rng);
    if (!c->weight_out) return nn_last();
    c->bias_out = nn_param(p, name, "bias_out", dt, 1, &F, nn_init_or(o->bias_init, ZEROS), rng);
    return c->bias_out ? TG_OK : nn_last();
}

/* LSTM kinds [4H, C] / [4H, H] / [4H] x2; GRU [3H, ...]. */
static tg_status gated_cell_params(tg_rnn_cell *c, tg_params *p, const char *name,
                                   const tg_rnn_opts *o, tg_dtype dt, tg_rng *rng) {
    int64_t H = c->hidden_size, G = (lstm_like(c->kind) ? 4 : 3) * H;
    c->weight_ih = nn_param(p, name, "weight_ih", dt, 2, (int64_t[]){G, c->input_size},
                            nn_init_or(o->kernel_init, GLOROT), rng);
    if (!c->weight_ih) return nn_last();
    c->weight_hh = nn_param(p, name, "weight_hh", dt, 2, (int64_t[]){G, H},
                            nn_init_or(o->recurrent_init, ORTHO), rng);
    if (!c->weight_hh) return nn_last();
    c->bias_ih = nn_param(p, name, "bias_ih", dt, 1, &G, nn_init_or(o->bias_init, ZEROS), rng);
    if (!c->bias_ih) return nn_last();
    c->bias_hh = nn_param(p, name, "bias_hh", dt, 1, &G, ZEROS, NULL);
    if (!c->bias_hh) return nn_last();
    /* Keras' unit_forget_bias: the forget gate (rows H..2H in every LSTM kind) starts open */
    if (lstm_like(c->kind) && o->unit_forget_bias)
        for (int64_t j = H; j < 2 * H; j++) tg_tensor_set(c->bias_ih, j, 1);
    if (c->kind != TG_RNN_LSTM_PEEPHOLE) return TG_OK;
    double lim = sqrt(3.0 / (double)H);   /* Glorot for a [H] vector, as Keras' peepholes */
    c->peephole = nn_param(p, name, "peephole", dt, 2, (int64_t[]){3, H},
                           nn_init_or(o->kernel_init, (tg_initializer){TG_INIT_UNIFORM, -lim, lim}), rng);
    return c->peephole ? TG_OK : nn_last();
}

static tg_act resolve(tg_act a, tg_act fallback) { return a == TG_ACT_DEFAULT ? fallback : a; }

tg_status tg_rnn_cell_init(tg_rnn_cell *cell, tg_params *p, const char *name, const tg_rnn_opts *o,
                           int64_t input_size, tg_dtype dt, tg_rng *rng) {
    if (!cell || !p || !o)
        return nn_error(TG_ERR_ARG, "rnn_cell_init: needs a cell, a registry and options");
    if (o->kind < TG_RNN_ELMAN || o->kind > TG_RNN_LSTM_PROTOTYPE)
        return nn_error(TG_ERR_ARG, "rnn_cell_init: unknown kind %d", (int)o->kind);
    if (input_size <= 0 || o->hidden_size <= 0 || o->output_size < 0)
        return nn_error(TG_ERR_ARG, "%s: sizes must be > 0: input %lld, hidden %lld",
                        nn_kind_name(o->kind), (long long)input_size, (long long)o->hidden_size);
    *cell = (tg_rnn_cell){
        .kind = o->kind, .input_size = input_size, .hidden_size = o->hidden_size,
        .output_size = o->kind == TG_RNN_JORDAN && o->output_size ? o->output_size : o->hidden_size,
        .activation = resolve(o->activation, TG_ACT_TANH),
        .recurrent_activation = resolve(o->recurrent_activation, TG_ACT_SIGMOID),
        .output_activation = resolve(o->output_activation, TG_ACT_LINEAR),
        .gru_variant = o->gru_variant};
    return nn_projects(cell) ? gated_cell_params(cell, p, name, o, dt, rng)
                             : concat_cell_params(cell, p, name, o, dt, rng);
}

/* ---- running ---------------------------------------------------------------------- */
/* Biases that sit outside every product fold into the input projection; only
 * GRU reset-after keeps b_hh inside r * (W_hn h + b_hn). */
int nn_prepare(tg_tape *tp, const tg_rnn_cell *c, nn_prep *pp) {
    *pp = (nn_prep){.c = c};
    if (!nn_projects(c)) return 0;
    int64_t H = c->hidden_size;
    bool gru_after = c->kind == TG_RNN_GRU && c->gru_variant == TG_GRU_RESET_AFTER;
    pp->bias = gru_after ? c->bias_ih : tg_add(tp, c->bias_ih, c->bias_hh);
    if (c->kind == TG_RNN_GRU && !gru_after) {
        pp->w_a = tg_slice(tp, c->weight_hh, 0, 0, 2 * H);
        pp->w_b = tg_slice(tp, c->weight_hh, 0, 2 * H, 3 * H);
    } else if (c->kind == TG_RNN_LSTM_PROTOTYPE) {
        pp->w_a = tg_slice(tp, c->weight_hh, 0, 0, 3 * H);
        pp->w_b = tg_slice(tp, c->weight_hh, 0, 3 * H, 4 * H);
    } else if (c->kind == TG_RNN_LSTM_PEEPHOLE) {
        for (int g = 0; g < 3; g++) pp->peep[g] = tg_slice(tp, c->peephole, 0, g, g + 1);
    }
    bool ok = pp->bias && (c->kind != TG_RNN_LSTM_PROTOTYPE || (pp->w_a && pp->w_b)) &&
              (c->kind != TG_RNN_GRU || gru_after || (pp->w_a && pp->w_b)) &&
              (c->kind != TG_RNN_LSTM_PEEPHOLE || (pp->peep[0] && pp->peep[1] && pp->peep[2]));
    return ok ? 0 : -1;
}

tg_tensor *nn_project(tg_tape *tp, const nn_prep *pp, tg_tensor *x) {
    return nn_projects(pp->c) ? nn_affine(tp, x, pp->c->weight_ih, pp->bias) : x;
}

tg_tensor *nn_h_rec(tg_tape *tp, const nn_prep *pp, tg_tensor *h) {
    return pp->rec_mask ? tg_mul(tp, h, pp->rec_mask) : h;
}

/* Elman:  h_t = a(W [x_t, h_{t-1}] + b)
 * Jordan: u_t = a(W [x_t, y_{t-1}] + b),  y_t = out_act(W_y u_t + b_y)   (state: y) */
static tg_tensor *concat_run(tg_tape *tp, const nn_prep *pp, tg_tensor *x,
                             const tg_rnn_state *prev, tg_rnn_state *next) {
    const tg_rnn_cell *c = pp->c;
    tg_tensor *xh = tg_concat(tp, 2, (tg_tensor *[]){x, nn_h_rec(tp, pp, prev->h)}, 1);
    tg_tensor *h = tg_activate(tp, nn_affine(tp, xh, c->weight, c->bias), c->activation);
    if (c->kind == TG_RNN_JORDAN)
        h = tg_activate(tp, nn_affine(tp, h, c->weight_out, c->bias_out), c->output_activation);
    next->h = h;
    next->c = NULL;
    return h;
}

tg_tensor *nn_cell_run(tg_tape *tp, const nn_prep *pp, tg_tensor *in, const tg_rnn_state *prev,
                       tg_rnn_state *next) {
    switch (pp->c->kind) {
    case TG_RNN_ELMAN:
    case TG_RNN_JORDAN: return concat_run(tp, pp, in, prev, next);
    case TG_RNN_LSTM: return nn_lstm_run(tp, pp, in, prev, next);
    case TG_RNN_LSTM_PEEPHOLE: return nn_peephole_run(tp, pp, in, prev, next);
    case TG_RNN_LSTM_PROTOTYPE: return nn_prototype_run(tp, pp, in, prev, next);
    case TG_RNN_GRU: return nn_gru_run(tp, pp, in, prev, next);
    }
    return NULL;
}

static bool state_ok(tg_tape *tp, const tg_rnn_cell *c, const tg_tensor *s, const char *what,
                     int64_t B, int64_t H, tg_dtype dt) {
    if (!s) return true;
    if (tg_tensor_dtype(s) == dt && tg_tensor_ndim(s) == 2 && tg_tensor_dim(s, 0) == B &&
        tg_tensor_dim(s, 1) == H)
        return true;
    char sh[160];
    tg_fail(tp, TG_ERR_SHAPE, nn_kind_name(c->kind), "%s must be %s [%lld,%lld]: got %s %s", what,
            tg_dtype_name(dt), (long long)B, (long long)H, tg_dtype_name(tg_tensor_dtype(s)),
            tg_shape_str(s, sh, sizeof sh));
    return false;
}

/* Checks one step's x [B, C] and prev against the cell; fills zeros for NULL state. */
static bool step_args(tg_tape *tp, const tg_rnn_cell *c, tg_tensor *x, const tg_rnn_state *prev,
                      tg_rnn_state *st) {
    tg_dtype dt = tg_tensor_dtype(c->weight_ih ? c->weight_ih : c->weight);
    if (tg_tensor_ndim(x) != 2 || tg_tensor_dim(x, 1) != c->input_size ||
        tg_tensor_dtype(x) != dt) {
        char sh[160];
        tg_fail(tp, TG_ERR_SHAPE, nn_kind_name(c->kind), "x must be %s [B,%lld]: got %s %s",
                tg_dtype_name(dt), (long long)c->input_size, tg_dtype_name(tg_tensor_dtype(x)),
                tg_shape_str(x, sh, sizeof sh));
        return false;
    }
    int64_t B = tg_tensor_dim(x, 0), F = nn_state_size(c);
    *st = prev ? *prev : (tg_rnn_state){0};
    if (!state_ok(tp, c, st->h, "prev->h", B, F, dt) ||
        !state_ok(tp, c, st->c, "prev->c", B, c->hidden_size, dt))
        return false;
    if (!st->h) st->h = nn_const(tp, dt, 2, (int64_t[]){B, F}, 0);
    if (!st->c && (c->kind == TG_RNN_LSTM || c->kind == TG_RNN_LSTM_PEEPHOLE))
        st->c = nn_const(tp, dt, 2, (int64_t[]){B, c->hidden_size}, 0);
    return true;
}

tg_tensor *tg_rnn_cell_step(tg_tape *tp, const tg_rnn_cell *cell, tg_tensor *x,
                            const tg_rnn_state *prev, tg_rnn_state *next) {
    if (!cell || !next || (!cell->weight_ih && !cell->weight)) {
        tg_fail(tp, TG_ERR_ARG, "rnn_cell_step", "needs an initialised cell and a next state");
        return NULL;
    }
    *next = (tg_rnn_state){0};
    if (!x) return NULL;
    tg_rnn_state st;
    nn_prep pp;
    if (!step_args(tp, cell, x, prev, &st) || nn_prepare(tp, cell, &pp) != 0) return NULL;
    return nn_cell_run(tp, &pp, nn_project(tp, &pp, x), &st, next);
}
