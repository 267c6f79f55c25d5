/* nn/mha.c - multi-head attention with PyTorch's nn.MultiheadAttention
 * parameters, so a state_dict moves between the two unchanged:
 *   in_proj_weight [3C, C] (rows W_q, W_k, W_v), in_proj_bias [3C],
 *   out_proj.weight [C, C], out_proj.bias [C];
 * with a memory of another width (kdim = vdim = Ckv != C) PyTorch keeps the
 * projections apart: q_proj_weight [C, C], k_proj_weight, v_proj_weight [C, Ckv].
 * Composed from primitives like every layer: no gradient code. */
#include "nn_private.h"
#include "tapegrad/nn_attention.h"

#include <string.h>

/* rows [row0, row0 + rows) of the 2-D w from init, drawn as a [rows, cols]
 * matrix of their own (Glorot per projection, as Keras; PyTorch draws the
 * packed [3C, C] at once: only the scale of the default differs). */
static tg_status init_rows(tg_tensor *w, int64_t row0, int64_t rows, tg_initializer init,
                           tg_rng *rng) {
    int64_t cols = tg_tensor_dim(w, 1);
    tg_tensor *blk = tg_tensor_new(TG_F64, 2, (int64_t[]){rows, cols});
    if (!blk) return nn_last();
    tg_status st = tg_init_apply(blk, init, rng);
    for (int64_t i = 0; st == TG_OK && i < rows * cols; i++)
        tg_tensor_set(w, row0 * cols + i, tg_tensor_get(blk, i));
    tg_tensor_free(blk);
    return st;
}

static tg_status init_in_proj(tg_mha *m, tg_params *p, const char *name, tg_dtype dt, tg_rng *rng,
                              tg_initializer wi) {
    int64_t C = m->dim, kv = m->kv_dim;
    tg_initializer zeros = {TG_INIT_ZEROS, 0, 0};
    if (kv == C) {
        m->in_proj_weight = nn_param(p, name, "in_proj_weight", dt, 2, (int64_t[]){3 * C, C}, zeros, NULL);
        if (!m->in_proj_weight) return nn_last();
        for (int k = 0; k < 3; k++) {
            tg_status st = init_rows(m->in_proj_weight, k * C, C, wi, rng);
            if (st != TG_OK) return st;
        }
    } else {
        static const char *const names[3] = {"q_proj_weight", "k_proj_weight", "v_proj_weight"};
        tg_tensor **w[3] = {&m->q_proj_weight, &m->k_proj_weight, &m->v_proj_weight};
        for (int k = 0; k < 3; k++) {
            *w[k] = nn_param(p, name, names[k], dt, 2, (int64_t[]){C, k ? kv : C}, wi, rng);
            if (!*w[k]) return nn_last();
        }
    }
    if (m->no_bias) return TG_OK;
    m->in_proj_bias = nn_param(p, name, "in_proj_bias", dt, 1, (int64_t[]){3 * C}, zeros, NULL);
    return m->in_proj_bias ? TG_OK : nn_last();
}

tg_status tg_mha_init(tg_mha *m, tg_params *p, const char *name, int64_t dim, int64_t heads,
                      tg_dtype dt, tg_rng *rng, const tg_mha_opts *o) {
    tg_mha_opts def = {0};
    if (!o) o = &def;
    if (!m || !p || dim < 1 || heads < 1 || dim % heads != 0 || o->kv_dim < 0)
        return nn_error(TG_ERR_ARG, "mha: needs dim >= 1 a multiple of heads >= 1: %lld, %lld",
                        (long long)dim, (long long)heads);
    if (!(o->dropout >= 0 && o->dropout < 1))
        return nn_error(TG_ERR_ARG, "mha: dropout must be in [0, 1): %g", o->dropout);
    *m = (tg_mha){.dim = dim, .heads = heads, .head_dim = dim / heads,
                  .kv_dim = o->kv_dim ? o->kv_dim : dim, .dropout = o->dropout,
                  .no_bias = o->no_bias};
    tg_initializer wi = nn_init_or(o->weight_init, (tg_initializer){TG_INIT_GLOROT_UNIFORM, 0, 0});
    tg_status st = init_in_proj(m, p, name, dt, rng, wi);
    if (st != TG_OK) return st;
    char sub[NN_NAME_MAX];
    if (!tg_param_name(sub, sizeof sub, name, "out_proj"))
        return nn_error(TG_ERR_ARG, "mha: name too long");
    m->out_proj_weight = nn_param(p, sub, "weight", dt, 2, (int64_t[]){dim, dim}, wi, rng);
    if (!m->out_proj_weight) return nn_last();
    if (o->no_bias) return TG_OK;
    m->out_proj_bias = nn_param(p, sub, "bias", dt, 1, &dim, (tg_initializer){TG_INIT_ZEROS, 0, 0}, rng);
    return m->out_proj_bias ? TG_OK : nn_last();
}

/* ---- forward ---------------------------------------------------------------------------------- */
/* rows [k*C, (k+n)*C) of the packed weight or bias (n blocks of the projections) */
static tg_tensor *block(tg_tape *tp, tg_tensor *w, int64_t C, int k, int n) {
    return w ? tg_slice(tp, w, 0, k * C, (k + n) * C) : NULL;
}

/* Q, K, V [B, T, C] of x and the memory: self-attention as one GEMM with the
 * packed weight, cross-attention as two (Q; K and V together), separate
 * weights as three. */
static void project(tg_tape *tp, const tg_mha *m, tg_tensor *x, tg_tensor *mem, tg_tensor **qkv) {
    int64_t C = m->dim;
    tg_tensor *W = m->in_proj_weight, *b = m->in_proj_bias;
    if (!W) {
        tg_tensor *w[3] = {m->q_proj_weight, m->k_proj_weight, m->v_proj_weight};
        for (int k = 0; k < 3; k++) qkv[k] = nn_affine(tp, k ? mem : x, w[k], block(tp, b, C, k, 1));
        return;
    }
    if (mem == x) {
        tg_tensor *all = nn_affine(tp, x, W, b);   /* [B, T, 3C] */
        if (all) tg_split(tp, all, -1, 3, (int64_t[]){C, C, C}, qkv);
        return;
    }
    qkv[0] = nn_affine(tp, x, block(tp, W, C, 0, 1), block(tp, b, C, 0, 1));
    tg_tensor *kv = nn_affine(tp, mem, block(tp, W, C, 1, 2), block(tp, b, C, 1, 2));
    tg_tensor *parts[2] = {NULL, NULL};
    if (kv) tg_split(tp, kv, -1, 2, (int64_t[]){C, C}, parts);
    qkv[1] = parts[0];
    qkv[2] = parts[1];
}

static int check_mha_inputs(tg_tape *tp, const tg_mha *m, const tg_tensor *x,
                            const tg_tensor *mem) {
    if (tg_tensor_ndim(x) == 3 && tg_tensor_dim(x, 2) == m->dim && tg_tensor_ndim(mem) == 3 &&
        tg_tensor_dim(mem, 2) == m->kv_dim && tg_tensor_dim(mem, 0) == tg_tensor_dim(x, 0))
        return 0;
    char sx[160], sm[160];
    return tg_fail(tp, TG_ERR_SHAPE, "mha",
                   "x [B, Tq, %lld] and memory [B, Tk, %lld] do not fit: x %s memory %s",
                   (long long)m->dim, (long long)m->kv_dim, tg_shape_str(x, sx, sizeof sx),
                   tg_shape_str(mem, sm, sizeof sm));
}

/* The keep mask of the call, [B', 1, Tq', Tk'] for all heads (or NULL):
 * call->mask times the keep form of call->key_padding_mask. */
static int call_keep(tg_tape *tp, const tg_mha_call *call, tg_tensor *x, int64_t Tq, int64_t Tk,
                     tg_tensor **keep) {
    int64_t B = tg_tensor_dim(x, 0);
    tg_dtype dt = tg_tensor_dtype(x);
    *keep = call->mask;
    if (*keep && nn_check_mask(tp, "mha", *keep, dt, 3, (int64_t[]){B, Tq, Tk}) < 0) return -1;
    if (call->key_padding_mask) {
        const tg_tensor *kpm = call->key_padding_mask;
        if (tg_tensor_ndim(kpm) != 2 || tg_tensor_dim(kpm, 0) != B || tg_tensor_dim(kpm, 1) != Tk) {
            char s[160];
            return tg_fail(tp, TG_ERR_SHAPE, "mha", "key_padding_mask must be [B, Tk] = [%lld,%lld]: "
                           "got %s", (long long)B, (long long)Tk, tg_shape_str(kpm, s, sizeof s));
        }
        tg_tensor *pad = tg_key_padding_keep(tp, dt, kpm);   /* [B, 1, Tk] */
        *keep = *keep ? tg_mul(tp, *keep, pad) : pad;
        if (!*keep) return -1;
    }
    if (*keep && tg_tensor_ndim(*keep) == 3) {   /* [B', Tq', Tk'] -> [B', 1, Tq', Tk'] */
        const int64_t *ks = tg_tensor_shape(*keep);
        *keep = tg_reshape(tp, *keep, 4, (int64_t[]){ks[0], 1, ks[1], ks[2]});
    }
    return 0;
}

tg_tensor *tg_mha_forward(tg_tape *tp, const tg_mha *m, tg_tensor *x, tg_tensor *memory,
                          const tg_mha_call *call) {
    tg_mha_call def = {0};
    if (!call) call = &def;
    if (call->weights) *call->weights = NULL;
    if (!m || !m->out_proj_weight) {
        tg_fail(tp, TG_ERR_ARG, "mha", "layer is not initialised");
        return NULL;
    }
    if (!memory) memory = x;
    if (!x || !memory || check_mha_inputs(tp, m, x, memory) < 0) return NULL;
    int64_t Tq = tg_tensor_dim(x, 1), Tk = tg_tensor_dim(memory, 1);
    tg_tensor *keep;
    if (call_keep(tp, call, x, Tq, Tk, &keep) < 0) return NULL;
    /* Q = x W_q^T + b_q, K = mem W_k^T + b_k, V = mem W_v^T + b_v, each [B, T, C]: the h
     * heads [B, T, d] side by side, which attention reads per head in place */
    tg_tensor *qkv[3] = {NULL, NULL, NULL};
    project(tp, m, x, memory, qkv);
    tg_sdpa_opts so = {.mask = keep, .causal = call->causal, .dropout = m->dropout,
                       .rng = call->rng, .heads = m->heads};
    /* [B, Tq, C], the heads' outputs side by side; out = . W_o^T + b_o */
    tg_tensor *o = tg_scaled_dot_product_attention(tp, qkv[0], qkv[1], qkv[2], &so, call->weights);
    return nn_affine(tp, o, m->out_proj_weight, m->out_proj_bias);
}
