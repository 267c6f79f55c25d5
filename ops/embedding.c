/* ops/embedding.c - row lookup.
 *
 * weight [V, C], idx int32 of any shape S -> y [S..., C], y[s, :] = weight[idx[s], :]
 * The index values are only known at run time, so the forward (not infer)
 * checks each against [0, V) and fails naming the first bad one.
 * VJP: dweight[idx[s], :] += dy[s, :] (repeated indices accumulate); idx has
 * no gradient. */
#include "kernels.h"

#include <string.h>

static int embedding_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                           tg_desc *out) {
    (void)n_in;
    (void)attr;
    const tg_tensor *w = in[0], *idx = in[1];
    char sw[160], si[160]; /* formatted only on an error */
    if (tg_check_float(tp, "embedding", w)) return -1;
    if (w->ndim != 2)
        return tg_fail(tp, TG_ERR_SHAPE, "embedding", "weight must be [V,C], got %s",
                       tg_shape_str(w, sw, sizeof sw));
    if (idx->dtype != TG_I32)
        return tg_fail(tp, TG_ERR_DTYPE, "embedding", "indices must be int32, got %s %s",
                       tg_dtype_name(idx->dtype), tg_shape_str(idx, si, sizeof si));
    if (idx->ndim + 1 > TG_MAX_DIMS)
        return tg_fail(tp, TG_ERR_SHAPE, "embedding",
                       "indices have too many dimensions for a [...,C] output (max %d): %s",
                       TG_MAX_DIMS - 1, tg_shape_str(idx, si, sizeof si));
    out->dtype = w->dtype;
    out->ndim = idx->ndim + 1;
    memcpy(out->shape, idx->shape, (size_t)idx->ndim * sizeof out->shape[0]);
    out->shape[idx->ndim] = w->shape[1];
    return 0;
}

static int embedding_forward(tg_node *n) {
    tg_tensor *w = n->in[0], *idx = n->in[1];
    const int32_t *id = idx->data;
    int64_t V = w->shape[0];
    size_t row = (size_t)w->shape[1] * tg_dtype_size(w->dtype);
    for (int64_t s = 0; s < idx->numel; s++)
        if (id[s] < 0 || id[s] >= V)
            return tg_fail(n->tape, TG_ERR_INDEX, "embedding",
                           "index %d out of range [0,%lld) at position %lld", (int)id[s],
                           (long long)V, (long long)s);
    for (int64_t s = 0; s < idx->numel; s++)
        memcpy((char *)n->out->data + (size_t)s * row, (const char *)w->data + (size_t)id[s] * row,
               row);
    return 0;
}

#define EMBEDDING_VJP(T)                                                                         \
    static void embedding_vjp_##T(const T *dy, T *dw, const int32_t *id, int64_t S, int64_t C) { \
        for (int64_t s = 0; s < S; s++) {                                                        \
            T *dst = dw + (int64_t)id[s] * C;                                                    \
            const T *src = dy + s * C;                                                           \
            for (int64_t c = 0; c < C; c++) dst[c] += src[c];                                    \
        }                                                                                        \
    }

TG_STAMP_FLOAT(EMBEDDING_VJP)

static int embedding_vjp(tg_node *n) {
    tg_tensor *w = n->in[0], *idx = n->in[1];
    const int32_t *id = idx->data;
    void *dw = tg_input_grad(n, 0);
    if (!dw) return 0;
    /* The caller owns idx and could have changed it since the forward. */
    for (int64_t s = 0; s < idx->numel; s++)
        if (id[s] < 0 || id[s] >= w->shape[0])
            return tg_fail(n->tape, TG_ERR_STATE, "embedding",
                           "index %d at position %lld changed to outside [0,%lld) after forward",
                           (int)id[s], (long long)s, (long long)w->shape[0]);
    TG_BY_DTYPE(w->dtype, embedding_vjp, tg_output_grad(n), dw, id, idx->numel, w->shape[1]);
    return 0;
}

/* For tg_grad: dweight = onehot(idx)^T dy, as [N, V]^T x [N, C] with N the
 * number of indices: linear in dy, so it can be differentiated again. */
static int embedding_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {
    tg_tape *tp = n->tape;
    tg_tensor *w = n->in[0], *idx = n->in[1];
    if (!want[0]) return 0;
    const int32_t *id = idx->data;
    int64_t V = w->shape[0], C = w->shape[1], N = idx->numel;
    for (int64_t s = 0; s < N; s++)
        if (id[s] < 0 || id[s] >= V)
            return tg_fail(tp, TG_ERR_STATE, "embedding",
                           "index %d at position %lld changed to outside [0,%lld) after forward",
                           (int)id[s], (long long)s, (long long)V);
    tg_tensor *hot = tg_tape_tensor(tp, w->dtype, 2, (int64_t[]){N, V});
    for (int64_t s = 0; hot && s < N; s++) tg_tensor_set(hot, s * V + id[s], 1.0);
    tg_tensor *g2 = tg_reshape(tp, g, 2, (int64_t[]){N, C});
    dx[0] = tg_matmul_ex(tp, hot, g2, &(tg_matmul_opts){.trans_a = true});
    return 0;
}

static const tg_op embedding_op = {
    .name = "embedding",
    .n_in = 2,
    .infer = embedding_infer,
    .forward = embedding_forward,
    .vjp = embedding_vjp,
    .vjp_graph = embedding_vjp_graph,
};

tg_tensor *tg_embedding(tg_tape *tp, tg_tensor *weight, tg_tensor *idx) {
    tg_tensor *in[2] = {weight, idx};
    return tg_apply(tp, &embedding_op, 2, in, NULL);
}
