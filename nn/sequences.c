/* nn/sequences.c - variable-length batches: lengths from padded id rows, and
 * padding a list of sequences into one batch (differentiably). */
#include "nn_private.h"

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
