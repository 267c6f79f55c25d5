/* nn/attention.c - masks, positional encoding, masked softmax, scaled
 * dot-product attention, and the Bahdanau / Luong score attention
 * (multi-head attention is mha.c).
 * Every function is a few op calls under its formula; gradients come from
 * replaying the tape. */
#include "nn_private.h"
#include "tapegrad/nn_attention.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Added to masked scores. Large enough that exp underflows to exactly 0 next
 * to any real score in float32 and float64, finite so an all-masked row stays
 * a finite (uniform) softmax instead of -inf - -inf = NaN. */
#define MASK_NEG 1e9

static bool float_dt(tg_dtype dt) { return dt == TG_F32 || dt == TG_F64; }

/* "[2,1,5]" for a shape given as numbers (for scores not yet computed). */
static char *dims_str(char *buf, size_t size, int nd, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < nd && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

/* keep must be float of dtype dt and broadcast to shape[nd] without growing it. */
int nn_check_mask(tg_tape *tp, const char *op, const tg_tensor *keep, tg_dtype dt, int nd,
                  const int64_t *shape) {
    char sm[160], ss[160];
    int mn = tg_tensor_ndim(keep);
    bool ok = tg_tensor_dtype(keep) == dt && mn <= nd;
    for (int i = 1; ok && i <= mn; i++) {
        int64_t m = tg_tensor_dim(keep, -i);
        ok = m == 1 || m == shape[nd - i];
    }
    if (ok) return 0;
    return tg_fail(tp, tg_tensor_dtype(keep) == dt ? TG_ERR_SHAPE : TG_ERR_DTYPE, op,
                   "mask %s %s does not broadcast to scores %s %s",
                   tg_shape_str(keep, sm, sizeof sm), tg_dtype_name(tg_tensor_dtype(keep)),
                   dims_str(ss, sizeof ss, nd, shape), tg_dtype_name(dt));
}

/* ---- masks and positions ------------------------------------------------------------- */
tg_tensor *tg_padding_mask(tg_tape *tp, tg_dtype dt, int64_t B, int64_t Tk,
                           const int64_t *lengths) {
    if (!float_dt(dt) || B < 1 || Tk < 1 || !lengths) {
        tg_fail(tp, TG_ERR_ARG, "padding_mask", "needs a float dtype, B >= 1, Tk >= 1 and lengths: "
                "%s, B %lld, Tk %lld", tg_dtype_name(dt), (long long)B, (long long)Tk);
        return NULL;
    }
    for (int64_t b = 0; b < B; b++)
        if (lengths[b] < 0 || lengths[b] > Tk) {
            tg_fail(tp, TG_ERR_ARG, "padding_mask", "lengths[%lld] = %lld outside [0, %lld]",
                    (long long)b, (long long)lengths[b], (long long)Tk);
            return NULL;
        }
    tg_tensor *m = nn_const(tp, dt, 3, (int64_t[]){B, 1, Tk}, 0);
    for (int64_t b = 0; m && b < B; b++)
        for (int64_t t = 0; t < lengths[b]; t++) tg_tensor_set(m, b * Tk + t, 1);
    return m;
}

tg_tensor *tg_padding_mask_ids(tg_tape *tp, tg_dtype dt, const tg_tensor *ids, int32_t pad_id) {
    char s[160];
    if (!ids) return NULL;
    if (!float_dt(dt) || tg_tensor_dtype(ids) != TG_I32 || tg_tensor_ndim(ids) != 2) {
        tg_fail(tp, TG_ERR_ARG, "padding_mask",
                "needs a float dtype and int32 ids [B, T]: ids %s %s",
                tg_shape_str(ids, s, sizeof s), tg_dtype_name(tg_tensor_dtype(ids)));
        return NULL;
    }
    int64_t B = tg_tensor_dim(ids, 0), T = tg_tensor_dim(ids, 1);
    tg_tensor *m = nn_const(tp, dt, 3, (int64_t[]){B, 1, T}, 0);
    const int32_t *id = tg_tensor_cdata(ids);
    for (int64_t i = 0; m && i < B * T; i++) tg_tensor_set(m, i, id[i] != pad_id);
    return m;
}

/* PyTorch's key_padding_mask (non-zero: ignore) -> our keep mask [B, 1, Tk] */
tg_tensor *tg_key_padding_keep(tg_tape *tp, tg_dtype dt, const tg_tensor *key_padding_mask) {
    char s[160];
    const tg_tensor *kpm = key_padding_mask;
    if (!kpm) return NULL;
    if (!float_dt(dt) || tg_tensor_ndim(kpm) != 2) {
        tg_fail(tp, TG_ERR_ARG, "key_padding_mask", "needs a float dtype and a mask [B, Tk]: got %s %s",
                tg_dtype_name(tg_tensor_dtype(kpm)), tg_shape_str(kpm, s, sizeof s));
        return NULL;
    }
    int64_t B = tg_tensor_dim(kpm, 0), Tk = tg_tensor_dim(kpm, 1);
    tg_tensor *m = nn_const(tp, dt, 3, (int64_t[]){B, 1, Tk}, 0);
    for (int64_t i = 0; m && i < B * Tk; i++) tg_tensor_set(m, i, tg_tensor_get(kpm, i) == 0);
    return m;
}

tg_tensor *tg_causal_mask(tg_tape *tp, tg_dtype dt, int64_t Tq, int64_t Tk) {
    if (!float_dt(dt) || Tq < 1 || Tq > Tk) {
        tg_fail(tp, TG_ERR_ARG, "causal_mask",
                "needs a float dtype and 1 <= Tq <= Tk: %s, Tq %lld, Tk %lld",
                tg_dtype_name(dt), (long long)Tq, (long long)Tk);
        return NULL;
    }
    tg_tensor *m = nn_const(tp, dt, 2, (int64_t[]){Tq, Tk}, 0);
    for (int64_t i = 0; m && i < Tq; i++)
        for (int64_t j = 0; j <= i + (Tk - Tq); j++) tg_tensor_set(m, i * Tk + j, 1);
    return m;
}

tg_tensor *tg_positional_encoding(tg_tape *tp, tg_dtype dt, int64_t start, int64_t T, int64_t C) {
    if (!float_dt(dt) || start < 0 || T < 1 || C < 1) {
        tg_fail(tp, TG_ERR_ARG, "positional_encoding",
                "needs a float dtype, start >= 0, T >= 1, C >= 1: %s, start %lld, T %lld, C %lld",
                tg_dtype_name(dt), (long long)start, (long long)T, (long long)C);
        return NULL;
    }
    tg_tensor *pe = nn_const(tp, dt, 2, (int64_t[]){T, C}, 0);
    for (int64_t t = 0; pe && t < T; t++)
        for (int64_t c = 0; c < C; c++) {
            /* columns 2i and 2i+1 share the frequency 10000^(-2i/C) */
            double angle = (double)(start + t) * pow(10000.0, -(double)(c - c % 2) / (double)C);
            tg_tensor_set(pe, t * C + c, c % 2 ? cos(angle) : sin(angle));
        }
    return pe;
}

/* ---- masked softmax and scaled dot-product attention ---------------------------------- */
/* W = softmax(scores + (keep - 1) * 1e9) * keep, over the last axis. The
 * product zeroes rows whose keys are all masked (and their gradient); in the
 * other rows masked weights are already exactly 0. */
tg_tensor *tg_masked_softmax(tg_tape *tp, tg_tensor *scores, tg_tensor *keep) {
    if (!scores) return NULL;
    if (!keep) return tg_softmax(tp, scores, -1);
    if (nn_check_mask(tp, "masked_softmax", keep, tg_tensor_dtype(scores), tg_tensor_ndim(scores),
                   tg_tensor_shape(scores)) < 0)
        return NULL;
    tg_tensor *bias = tg_scale(tp, tg_shift(tp, keep, -1), MASK_NEG);
    return tg_mul(tp, tg_softmax(tp, tg_add(tp, scores, bias), -1), keep);
}

/* q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv]: same rank >= 2, same leading dims;
 * with h heads q [B, Tq, h*d], k [B, Tk, h*d], v [B, Tk, h*dv]. */
static int check_qkv(tg_tape *tp, const tg_tensor *q, const tg_tensor *k, const tg_tensor *v,
                     int64_t heads) {
    int nd = tg_tensor_ndim(q);
    bool ok = nd >= 2 && tg_tensor_ndim(k) == nd && tg_tensor_ndim(v) == nd &&
              tg_tensor_dim(q, -1) == tg_tensor_dim(k, -1) &&
              tg_tensor_dim(k, -2) == tg_tensor_dim(v, -2) && heads >= 0;
    for (int i = 0; ok && i < nd - 2; i++)
        ok = tg_tensor_dim(k, i) == tg_tensor_dim(q, i) &&
             tg_tensor_dim(v, i) == tg_tensor_dim(q, i);
    if (ok && heads > 0)
        ok = nd == 3 && tg_tensor_dim(q, -1) % heads == 0 && tg_tensor_dim(v, -1) % heads == 0;
    if (ok) return 0;
    char sq[160], sk[160], sv[160];
    if (heads != 0)
        return tg_fail(tp, TG_ERR_SHAPE, "attention",
                       "with %lld heads q [B, Tq, h*d], k [B, Tk, h*d], v [B, Tk, h*dv] do not "
                       "fit: q %s k %s v %s", (long long)heads, tg_shape_str(q, sq, sizeof sq),
                       tg_shape_str(k, sk, sizeof sk), tg_shape_str(v, sv, sizeof sv));
    return tg_fail(tp, TG_ERR_SHAPE, "attention",
                   "q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv] do not fit: q %s k %s v %s",
                   tg_shape_str(q, sq, sizeof sq), tg_shape_str(k, sk, sizeof sk),
                   tg_shape_str(v, sv, sizeof sv));
}

/* The shape of the scores: [..., Tq, Tk], with heads [B, h, Tq, Tk]; returns its rank. */
static int scores_shape(const tg_tensor *q, const tg_tensor *k, int64_t heads, int64_t *shape) {
    int nd = tg_tensor_ndim(q);
    if (heads > 0) {
        int64_t s[4] = {tg_tensor_dim(q, 0), heads, tg_tensor_dim(q, 1), tg_tensor_dim(k, 1)};
        memcpy(shape, s, sizeof s);
        return 4;
    }
    memcpy(shape, tg_tensor_shape(q), (size_t)nd * sizeof *shape);
    shape[nd - 1] = tg_tensor_dim(k, -2);
    return nd;
}

tg_tensor *tg_scaled_dot_product_attention(tg_tape *tp, tg_tensor *q, tg_tensor *k, tg_tensor *v,
                                           const tg_sdpa_opts *o, tg_tensor **weights) {
    tg_sdpa_opts def = {0};
    if (!o) o = &def;
    if (weights) *weights = NULL;
    if (!q || !k || !v || check_qkv(tp, q, k, v, o->heads) < 0) return NULL;
    int64_t shape[TG_MAX_DIMS];   /* of the scores [..., Tq, Tk] */
    int nd = scores_shape(q, k, o->heads, shape);
    if (o->mask && nn_check_mask(tp, "attention", o->mask, tg_tensor_dtype(q), nd, shape) < 0)
        return NULL;
    if (!(o->dropout >= 0 && o->dropout < 1)) {
        tg_fail(tp, TG_ERR_ARG, "attention", "dropout must be in [0, 1): %g", o->dropout);
        return NULL;
    }
    int64_t d = tg_tensor_dim(q, -1) / (o->heads > 0 ? o->heads : 1);
    double scale = o->scale != 0 ? o->scale : 1.0 / sqrt((double)d);
    tg_tensor *keep = o->mask;
    if (o->causal) {
        tg_tensor *c = tg_causal_mask(tp, tg_tensor_dtype(q), shape[nd - 2], shape[nd - 1]);
        keep = keep ? tg_mul(tp, keep, c) : c;
        if (!keep) return NULL;
    }
    /* W = masked_softmax((q * scale) k^T, keep) [..., Tq, Tk] (per head: [B, h, Tq, Tk]).
     * q is scaled rather than the scores, as PyTorch does: q is Tk/d times smaller, and
     * its scaling fuses into the pass that adds the projection's bias. */
    tg_matmul_opts qk = {.trans_b = true, .heads = o->heads}, wv = {.heads = o->heads};
    wv.merge_heads = o->heads > 0;
    tg_tensor *s = tg_matmul_ex(tp, tg_scale(tp, q, scale), k, &qk);
    tg_tensor *w = tg_masked_softmax(tp, s, keep);
    if (weights) *weights = w;
    if (o->dropout > 0 && tg_tape_training(tp)) w = tg_dropout(tp, w, o->dropout, o->rng);
    return tg_matmul_ex(tp, w, v, &wv);   /* [..., Tq, dv], heads: [B, Tq, h*dv] */
}

/* ---- Bahdanau / Luong attention ------------------------------------------------------- */
const char *tg_score_name(tg_score_kind kind) {
    switch (kind) {
    case TG_SCORE_DOT: return "dot";
    case TG_SCORE_GENERAL: return "general";
    case TG_SCORE_ADDITIVE: return "additive";
    case TG_SCORE_SCALED_DOT: return "scaled_dot";
    }
    return "unknown";
}

tg_status tg_attention_init(tg_attention *a, tg_params *p, const char *name, tg_score_kind kind,
                            int64_t query_size, int64_t key_size, int64_t attn_size, tg_dtype dt,
                            tg_rng *rng) {
    if (!a || !p || query_size < 1 || key_size < 1 || attn_size < 0 || kind < TG_SCORE_DOT ||
        kind > TG_SCORE_SCALED_DOT)
        return nn_error(TG_ERR_ARG, "attention: needs a layer, a registry, a score kind and sizes");
    if ((kind == TG_SCORE_DOT || kind == TG_SCORE_SCALED_DOT) && query_size != key_size)
        return nn_error(TG_ERR_SHAPE,
                        "attention: %s score needs query size == key size (%lld, %lld)",
                        tg_score_name(kind), (long long)query_size, (long long)key_size);
    int64_t A = attn_size ? attn_size : query_size;
    *a = (tg_attention){.kind = kind, .query_size = query_size, .key_size = key_size};
    tg_initializer glorot = {TG_INIT_GLOROT_UNIFORM, 0, 0}, zeros = {TG_INIT_ZEROS, 0, 0};
    if (kind == TG_SCORE_GENERAL) {
        a->w_a = nn_param(p, name, "w_a", dt, 2, (int64_t[]){query_size, key_size}, glorot, rng);
        return a->w_a ? TG_OK : nn_last();
    }
    if (kind != TG_SCORE_ADDITIVE) return TG_OK;
    a->attn_size = A;
    a->w_q = nn_param(p, name, "w_q", dt, 2, (int64_t[]){A, query_size}, glorot, rng);
    a->w_k = a->w_q ? nn_param(p, name, "w_k", dt, 2, (int64_t[]){A, key_size}, glorot, rng) : NULL;
    a->bias = a->w_k ? nn_param(p, name, "bias", dt, 1, &A, zeros, rng) : NULL;
    a->v = a->bias ? nn_param(p, name, "v", dt, 2, (int64_t[]){1, A}, glorot, rng) : NULL;
    return a->v ? TG_OK : nn_last();
}

/* q [B, Tq, Dq], keys [B, Tk, Dk] -> scores [B, Tq, Tk] */
static tg_tensor *scores(tg_tape *tp, const tg_attention *a, tg_tensor *q, tg_tensor *keys) {
    const tg_matmul_opts tb = {.trans_b = true};
    int64_t B = tg_tensor_dim(q, 0), Tq = tg_tensor_dim(q, 1), Tk = tg_tensor_dim(keys, 1);
    switch (a->kind) {
    case TG_SCORE_DOT: /* s . h_j */
        return tg_matmul_ex(tp, q, keys, &tb);
    case TG_SCORE_SCALED_DOT: /* s . h_j / sqrt(Dk) */
        return tg_scale(tp, tg_matmul_ex(tp, q, keys, &tb), 1.0 / sqrt((double)a->key_size));
    case TG_SCORE_GENERAL: /* (s W_a) . h_j */
        return tg_matmul_ex(tp, tg_matmul(tp, q, a->w_a), keys, &tb);
    case TG_SCORE_ADDITIVE: {
        /* v . tanh(W_q s + W_k h_j + b): [B, Tq, 1, A] + [B, 1, Tk, A] -> [B, Tq, Tk, A] */
        int64_t A = a->attn_size;
        tg_tensor *qp = tg_matmul_ex(tp, q, a->w_q, &tb);
        tg_tensor *kp = tg_add(tp, tg_matmul_ex(tp, keys, a->w_k, &tb), a->bias);
        tg_tensor *e = tg_tanh(tp, tg_add(tp, tg_reshape(tp, qp, 4, (int64_t[]){B, Tq, 1, A}),
                                          tg_reshape(tp, kp, 4, (int64_t[]){B, 1, Tk, A})));
        return tg_reshape(tp, tg_matmul_ex(tp, e, a->v, &tb), 3, (int64_t[]){B, Tq, Tk});
    }
    }
    return NULL;
}

static int check_score_inputs(tg_tape *tp, const tg_attention *a, const tg_tensor *query,
                              const tg_tensor *keys, const tg_tensor *values) {
    int qn = tg_tensor_ndim(query);
    bool ok = (qn == 2 || qn == 3) && tg_tensor_ndim(keys) == 3 && tg_tensor_ndim(values) == 3 &&
              tg_tensor_dim(query, -1) == a->query_size && tg_tensor_dim(keys, 2) == a->key_size &&
              tg_tensor_dim(keys, 0) == tg_tensor_dim(query, 0) &&
              tg_tensor_dim(values, 0) == tg_tensor_dim(query, 0) &&
              tg_tensor_dim(values, 1) == tg_tensor_dim(keys, 1);
    if (ok) return 0;
    char sq[160], sk[160], sv[160];
    return tg_fail(tp, TG_ERR_SHAPE, tg_score_name(a->kind),
                   "query [B, (Tq,) %lld], keys [B, Tk, %lld], values [B, Tk, Dv] do not fit: "
                   "query %s keys %s values %s", (long long)a->query_size, (long long)a->key_size,
                   tg_shape_str(query, sq, sizeof sq), tg_shape_str(keys, sk, sizeof sk),
                   tg_shape_str(values, sv, sizeof sv));
}

tg_tensor *tg_attention_forward(tg_tape *tp, const tg_attention *a, tg_tensor *query,
                                tg_tensor *keys, tg_tensor *values, tg_tensor *mask,
                                tg_tensor **weights) {
    if (weights) *weights = NULL;
    if (!a || a->query_size < 1) {
        tg_fail(tp, TG_ERR_ARG, "attention", "layer is not initialised");
        return NULL;
    }
    if (!values) values = keys;
    if (!query || !keys || check_score_inputs(tp, a, query, keys, values) < 0) return NULL;
    bool step = tg_tensor_ndim(query) == 2;   /* one decoder step: [B, Dq] */
    int64_t B = tg_tensor_dim(query, 0), Tk = tg_tensor_dim(keys, 1), Dv = tg_tensor_dim(values, 2);
    tg_tensor *q = step ? tg_reshape(tp, query, 3, (int64_t[]){B, 1, a->query_size}) : query;
    if (!q) return NULL;
    if (mask && step && tg_tensor_ndim(mask) == 2 && tg_tensor_dim(mask, 0) == B &&
        tg_tensor_dim(mask, 1) == Tk)
        mask = tg_reshape(tp, mask, 3, (int64_t[]){B, 1, Tk});
    int64_t sshape[3] = {B, step ? 1 : tg_tensor_dim(query, 1), Tk};
    if (mask && nn_check_mask(tp, tg_score_name(a->kind), mask, tg_tensor_dtype(query), 3, sshape) < 0)
        return NULL;
    /* weights = masked_softmax(score(s, h_j)) [B, Tq, Tk];  context = weights values [B, Tq, Dv] */
    tg_tensor *w = tg_masked_softmax(tp, scores(tp, a, q, keys), mask);
    tg_tensor *ctx = tg_matmul(tp, w, values);
    if (!step) {
        if (weights) *weights = w;
        return ctx;
    }
    if (weights) *weights = tg_reshape(tp, w, 2, (int64_t[]){B, Tk});
    return tg_reshape(tp, ctx, 2, (int64_t[]){B, Dv});
}
