/* nn/cell.c - what every cell shares: layout helpers, creating a cell's
 * parameters (PyTorch names, initialisers by role), the state check, and one
 * step outside a layer (tg_rnn_cell_step). The cells are cell_*.c, the layer
 * driver rnn.c. */
#include "nn_private.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Sizes above this are refused, so no gate count times a size can overflow. */
#define NN_MAX_SIZE ((int64_t)1 << 32)

/* ---- layouts -------------------------------------------------------------------------------- */
tg_status tg_cell_layout_state(tg_cell_layout *l, const char *name, int64_t size) {
    if (!l || !name || size < 1 || l->n_states >= TG_CELL_MAX_STATES)
        return nn_error(TG_ERR_ARG, "cell layout: state '%s' of size %lld: needs a name, size >= 1 "
                        "and at most %d states", name ? name : "(null)", (long long)size,
                        TG_CELL_MAX_STATES);
    l->state_name[l->n_states] = name;
    l->state_size[l->n_states++] = size;
    return TG_OK;
}

tg_status tg_cell_layout_param_init(tg_cell_layout *l, const char *name, tg_param_role role,
                                    int ndim, const int64_t *shape, tg_initializer init) {
    if (!l || !name || !*name || ndim < 1 || ndim > TG_MAX_DIMS || !shape ||
        l->n_params >= TG_CELL_MAX_PARAMS || role < TG_PARAM_KERNEL || role > TG_PARAM_OTHER)
        return nn_error(TG_ERR_ARG, "cell layout: parameter '%s': needs a name, 1..%d dims, a role "
                        "and at most %d parameters", name ? name : "(null)", TG_MAX_DIMS,
                        TG_CELL_MAX_PARAMS);
    tg_cell_param *p = &l->param[l->n_params++];
    *p = (tg_cell_param){.name = name, .role = role, .ndim = ndim, .init = init};
    memcpy(p->shape, shape, (size_t)ndim * sizeof *shape);
    return TG_OK;
}

tg_status tg_cell_layout_param(tg_cell_layout *l, const char *name, tg_param_role role, int ndim,
                               const int64_t *shape) {
    return tg_cell_layout_param_init(l, name, role, ndim, shape, (tg_initializer){0});
}

tg_tensor *tg_gate_cols(tg_tape *tp, tg_tensor *z, int64_t H, int g, int n) {
    return tg_slice(tp, z, 1, g * H, (g + n) * H);
}

/* weight_ih [G, C], weight_hh [G, F], bias_ih [G], bias_hh [G]: PyTorch's four */
tg_status nn_describe_torch4(const tg_cell_cfg *cfg, tg_cell_layout *l, int64_t gates,
                             int64_t fed_back) {
    int64_t G = gates * cfg->hidden_size;
    tg_status st = tg_cell_layout_param(l, "weight_ih", TG_PARAM_KERNEL, 2,
                                        (int64_t[]){G, cfg->input_size});
    if (st == TG_OK)
        st = tg_cell_layout_param(l, "weight_hh", TG_PARAM_RECURRENT, 2, (int64_t[]){G, fed_back});
    if (st == TG_OK) st = tg_cell_layout_param(l, "bias_ih", TG_PARAM_BIAS, 1, &G);
    if (st == TG_OK) st = tg_cell_layout_param(l, "bias_hh", TG_PARAM_BIAS, 1, &G);
    return st;
}

/* W_hh split at row `rows` into prep[0] (above) and prep[1] (below), then the projection */
tg_tensor *nn_project_split_hh(tg_cell_run *run, tg_tensor *x, int64_t rows) {
    tg_tensor *w_hh = run->param[NN_W_HH];
    run->prep[0] = tg_slice(run->tp, w_hh, 0, 0, rows);
    run->prep[1] = tg_slice(run->tp, w_hh, 0, rows, tg_tensor_dim(w_hh, 0));
    return nn_project_both_biases(run, x);
}

/* x W_ih^T + (b_ih + b_hh): the biases sum once per sequence, not per step */
tg_tensor *nn_project_both_biases(tg_cell_run *run, tg_tensor *x) {
    tg_tensor *const *w = run->param;
    return nn_affine(run->tp, x, w[NN_W_IH], tg_add(run->tp, w[NN_B_IH], w[NN_B_HH]));
}

/* ---- creating a cell -------------------------------------------------------------------------- */
static tg_act act_or(tg_act a, tg_act fallback) { return a == TG_ACT_DEFAULT ? fallback : a; }

static tg_status check_cell_opts(const tg_rnn_opts *o, int64_t input_size) {
    const tg_cell *cell = o->cell;
    if (!cell || !cell->name || !cell->describe || !cell->step)
        return nn_error(TG_ERR_ARG, "rnn: opts.cell must be a cell with a name, describe and step "
                        "(e.g. &tg_cell_lstm)");
    if (input_size < 1 || o->hidden_size < 1 || o->output_size < 0 || input_size > NN_MAX_SIZE ||
        o->hidden_size > NN_MAX_SIZE || o->output_size > NN_MAX_SIZE)
        return nn_error(TG_ERR_ARG, "%s: sizes must be in [1, 2^32]: input %lld, hidden %lld, "
                        "output %lld", cell->name, (long long)input_size,
                        (long long)o->hidden_size, (long long)o->output_size);
    return TG_OK;
}

/* The first that applies: the layer's option for the role, the cell's own, the role's default. */
static tg_initializer init_of(const tg_cell_param *pa, const tg_rnn_opts *o) {
    static const tg_initializer glorot = {TG_INIT_GLOROT_UNIFORM, 0, 0};
    static const tg_initializer ortho = {TG_INIT_ORTHOGONAL, 0, 0};
    static const tg_initializer zeros = {TG_INIT_ZEROS, 0, 0};
    switch (pa->role) {
    case TG_PARAM_KERNEL: return nn_init_or(o->kernel_init, nn_init_or(pa->init, glorot));
    case TG_PARAM_RECURRENT: return nn_init_or(o->recurrent_init, nn_init_or(pa->init, ortho));
    case TG_PARAM_BIAS: return nn_init_or(o->bias_init, nn_init_or(pa->init, zeros));
    case TG_PARAM_OTHER: break;
    }
    return pa->init;
}

bool nn_param_key(char *buf, size_t size, const tg_rnn_cell *c, int k) {
    int n = snprintf(buf, size, "%s_l%d%s", c->layout.param[k].name, c->layer,
                     c->dir ? "_reverse" : "");
    return n >= 0 && (size_t)n < size;
}

/* "<name>.<leaf>_l<layer>" (+ "_reverse"): PyTorch's state_dict key */
static tg_status create_params(tg_rnn_cell *c, tg_params *p, const char *name,
                               const tg_rnn_opts *o, tg_dtype dt, tg_rng *rng) {
    for (int k = 0; k < c->layout.n_params; k++) {
        const tg_cell_param *pa = &c->layout.param[k];
        char leaf[NN_NAME_MAX];
        if (!nn_param_key(leaf, sizeof leaf, c, k))
            return nn_error(TG_ERR_ARG, "%s: parameter name too long: '%s'", c->cell->name, pa->name);
        tg_initializer init = init_of(pa, o);
        if (init.kind == TG_INIT_DEFAULT)
            return nn_error(TG_ERR_ARG, "%s: parameter '%s' (role other) has no initialiser",
                            c->cell->name, pa->name);
        c->param[k] = nn_param(p, name, leaf, dt, pa->ndim, pa->shape, init, rng);
        if (!c->param[k]) return nn_last();
    }
    return c->cell->after_init ? c->cell->after_init(&c->cfg, c->param) : TG_OK;
}

/* describe, then a sanity look at what it said */
static tg_status describe(tg_rnn_cell *c) {
    tg_clear_last_error();
    tg_status st = c->cell->describe(&c->cfg, &c->layout);
    if (st != TG_OK) return tg_last_status() != TG_OK ? st : nn_error(st, "%s: describe failed", c->cell->name);
    if (c->layout.n_states < 1)
        return nn_error(TG_ERR_ARG, "%s: describe named no state", c->cell->name);
    return TG_OK;
}

tg_status nn_cell_setup(tg_rnn_cell *cell, tg_params *p, const char *name, const tg_rnn_opts *o,
                        int layer, int dir, int64_t input_size, tg_dtype dt, tg_rng *rng) {
    tg_status st = check_cell_opts(o, input_size);
    if (st != TG_OK) return st;
    if (layer < 0) return nn_error(TG_ERR_ARG, "%s: layer index %d < 0", o->cell->name, layer);
    *cell = (tg_rnn_cell){
        .cell = o->cell, .layer = layer, .dir = dir,
        .cfg = {.input_size = input_size, .hidden_size = o->hidden_size,
                .output_size = o->output_size ? o->output_size : o->hidden_size,
                .activation = act_or(o->activation, TG_ACT_TANH),
                .recurrent_activation = act_or(o->recurrent_activation, TG_ACT_SIGMOID),
                .output_activation = act_or(o->output_activation, TG_ACT_LINEAR),
                .unit_forget_bias = o->unit_forget_bias, .options = o->cell_options}};
    snprintf(cell->name, sizeof cell->name, "%s", name ? name : "");
    st = describe(cell);
    return st == TG_OK ? create_params(cell, p, name, o, dt, rng) : st;
}

tg_status tg_rnn_cell_init(tg_rnn_cell *cell, tg_params *p, const char *name, const tg_rnn_opts *o,
                           int layer, int64_t input_size, tg_dtype dt, tg_rng *rng) {
    if (!cell || !p || !o)
        return nn_error(TG_ERR_ARG, "rnn_cell_init: needs a cell, a registry and options");
    return nn_cell_setup(cell, p, name, o, layer, 0, input_size, dt, rng);
}

tg_tensor *tg_rnn_cell_param(const tg_rnn_cell *cell, const char *leaf) {
    if (!cell || !leaf) return NULL;
    for (int k = 0; k < cell->layout.n_params; k++)
        if (strcmp(cell->layout.param[k].name, leaf) == 0) return cell->param[k];
    return NULL;
}

tg_dtype nn_cell_dtype(const tg_rnn_cell *c) {
    return c->layout.n_params ? tg_tensor_dtype(c->param[0]) : TG_F32;
}

/* ---- states ------------------------------------------------------------------------------------ */
int nn_state_check(tg_tape *tp, const tg_rnn_cell *c, const char *what, int64_t B, tg_dtype dt,
                   const tg_rnn_state *st, bool allow_null) {
    for (int k = 0; k < c->layout.n_states; k++) {
        const tg_tensor *s = st->s[k];
        int64_t F = c->layout.state_size[k];
        if (s ? (tg_tensor_dtype(s) == dt && tg_tensor_ndim(s) == 2 && tg_tensor_dim(s, 0) == B &&
                 tg_tensor_dim(s, 1) == F)
              : allow_null)
            continue;
        char sh[160], got[200] = "none";
        if (s) snprintf(got, sizeof got, "%s %s", tg_dtype_name(tg_tensor_dtype(s)),
                        tg_shape_str(s, sh, sizeof sh));
        return tg_fail(tp, TG_ERR_SHAPE, c->cell->name, "%s: state %s must be %s [%lld,%lld]: got %s",
                       what, c->layout.state_name[k], tg_dtype_name(dt), (long long)B,
                       (long long)F, got);
    }
    return 0;
}

int nn_state_zeros(tg_tape *tp, const tg_rnn_cell *c, int64_t B, tg_dtype dt, tg_rnn_state *st) {
    for (int k = 0; k < c->layout.n_states; k++)
        if (!st->s[k] &&
            !(st->s[k] = nn_const(tp, dt, 2, (int64_t[]){B, c->layout.state_size[k]}, 0)))
            return -1;
    return 0;
}

/* ---- one step outside a layer ---------------------------------------------------------------- */
static bool step_input_ok(tg_tape *tp, const tg_rnn_cell *c, const tg_tensor *x, tg_dtype dt) {
    if (tg_tensor_ndim(x) == 2 && tg_tensor_dim(x, 1) == c->cfg.input_size && tg_tensor_dtype(x) == dt)
        return true;
    char sh[160];
    tg_fail(tp, TG_ERR_SHAPE, c->cell->name, "x must be %s [B,%lld]: got %s %s", tg_dtype_name(dt),
            (long long)c->cfg.input_size, tg_dtype_name(tg_tensor_dtype(x)),
            tg_shape_str(x, sh, sizeof sh));
    return false;
}

tg_tensor *tg_rnn_cell_step(tg_tape *tp, const tg_rnn_cell *cell, tg_tensor *x,
                            const tg_rnn_state *prev, tg_rnn_state *next) {
    if (next) *next = (tg_rnn_state){{{0}}};
    if (!cell || !cell->cell || !next) {
        tg_fail(tp, TG_ERR_ARG, "rnn_cell_step", "needs an initialised cell and a next state");
        return NULL;
    }
    if (!x) return NULL;
    tg_dtype dt = nn_cell_dtype(cell);
    if (!step_input_ok(tp, cell, x, dt)) return NULL;
    int64_t B = tg_tensor_dim(x, 0);
    tg_rnn_state st = prev ? *prev : (tg_rnn_state){{{0}}};
    char scope[160];
    snprintf(scope, sizeof scope, "cell %s '%s' layer %d", cell->cell->name, cell->name, cell->layer);
    const char *outer = tg_tape_set_scope(tp, scope);
    tg_tensor *out = NULL;
    if (nn_state_check(tp, cell, "prev", B, dt, &st, true) == 0 &&
        nn_state_zeros(tp, cell, B, dt, &st) == 0) {
        tg_cell_run run = {.tp = tp, .cfg = &cell->cfg, .param = cell->param};
        tg_tensor *in = cell->cell->prepare ? cell->cell->prepare(&run, x) : x;
        if (in) cell->cell->step(&run, in, st.s, st.s[0], next->s);
        if (in && nn_state_check(tp, cell, "the step's result", B, dt, next, false) == 0)
            out = next->s[0];
    }
    tg_tape_set_scope(tp, outer);
    return out;
}
