/* nn/embedding.c - Embedding layer, vocabulary, GloVe text loader. */
#include "nn_private.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Embedding layer --------------------------------------------------------------- */
tg_status tg_embedding_layer_init(tg_embedding_layer *e, tg_params *p, const char *name,
                                  int64_t num, int64_t dim, tg_dtype dt, tg_rng *rng,
                                  const tg_embedding_opts *o) {
    tg_embedding_opts def = {0};
    if (!o) o = &def;
    if (!e || !p || num <= 0 || dim <= 0 || num > INT32_MAX)
        return nn_error(TG_ERR_ARG, "embedding: needs sizes in (0, 2^31): %lld x %lld",
                        (long long)num, (long long)dim);
    if (o->has_padding && (o->padding_idx < 0 || o->padding_idx >= num))
        return nn_error(TG_ERR_ARG, "embedding: padding_idx %d outside [0, %lld)",
                        (int)o->padding_idx, (long long)num);
    *e = (tg_embedding_layer){.num = num, .dim = dim,
                              .padding_idx = o->has_padding ? o->padding_idx : -1};
    e->weight = nn_param(p, name, "weight", dt, 2, (int64_t[]){num, dim},
                         nn_init_or(o->init, (tg_initializer){TG_INIT_NORMAL, 0, 1}), rng);
    if (!e->weight) return nn_last();
    if (e->padding_idx >= 0)
        for (int64_t j = 0; j < dim; j++) tg_tensor_set(e->weight, e->padding_idx * dim + j, 0);
    tg_embedding_layer_freeze(e, o->freeze);
    return TG_OK;
}

void tg_embedding_layer_freeze(tg_embedding_layer *e, bool frozen) {
    if (!e || !e->weight) return;
    e->frozen = frozen;
    tg_tensor_set_requires_grad(e->weight, !frozen);
}

/* out = W[idx] * (idx != pad)[..., None]: the mask keeps the padding row's
 * output zero and stops any gradient from reaching that row. */
tg_tensor *tg_embedding_layer_forward(tg_tape *tp, const tg_embedding_layer *e, tg_tensor *idx) {
    if (!e || !e->weight) {
        tg_fail(tp, TG_ERR_ARG, "embedding_layer", "layer is not initialised");
        return NULL;
    }
    tg_tensor *out = tg_embedding(tp, e->weight, idx);
    if (!out || e->padding_idx < 0) return out;
    /* out was produced, so idx is a valid TG_I32 tensor of ndim < TG_MAX_DIMS */
    int nd = tg_tensor_ndim(idx);
    int64_t shape[TG_MAX_DIMS];
    memcpy(shape, tg_tensor_shape(idx), (size_t)nd * sizeof *shape);
    shape[nd] = 1;
    const int32_t *id = tg_tensor_cdata(idx);
    int64_t n = tg_tensor_numel(idx), pads = 0;
    for (int64_t i = 0; i < n; i++) pads += id[i] == e->padding_idx;
    if (pads == 0) return out;
    tg_tensor *keep = nn_const(tp, tg_tensor_dtype(out), nd + 1, shape, 0);
    if (!keep) return NULL;
    for (int64_t i = 0; i < n; i++) tg_tensor_set(keep, i, id[i] != e->padding_idx);
    return tg_mul(tp, out, keep);
}

/* ---- vocabulary: open addressing over copied words --------------------------------- */
struct tg_vocab {
    char **words;        /* id -> word            */
    int32_t n, cap;      /* words used / allocated */
    int32_t *slots;      /* hash -> id, -1 empty  */
    int64_t n_slots;     /* power of two          */
};

static uint64_t hash_word(const char *s) {   /* FNV-1a */
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int64_t find_slot(const tg_vocab *v, const char *word) {
    int64_t mask = v->n_slots - 1, i = (int64_t)(hash_word(word) & (uint64_t)mask);
    while (v->slots[i] >= 0 && strcmp(v->words[v->slots[i]], word) != 0) i = (i + 1) & mask;
    return i;
}

static bool rehash(tg_vocab *v, int64_t n_slots) {
    int32_t *slots = malloc((size_t)n_slots * sizeof *slots);
    if (!slots) return false;
    free(v->slots);
    v->slots = slots;
    v->n_slots = n_slots;
    for (int64_t i = 0; i < n_slots; i++) slots[i] = -1;
    for (int32_t id = 0; id < v->n; id++) slots[find_slot(v, v->words[id])] = id;
    return true;
}

tg_vocab *tg_vocab_new(void) {
    tg_vocab *v = calloc(1, sizeof *v);
    if (!v || !rehash(v, 64)) {
        free(v);
        return NULL;
    }
    static const char *const specials[] = {"<pad>", "<unk>", "<go>", "<eos>"};
    for (int i = 0; i < 4; i++) {
        if (tg_vocab_add(v, specials[i]) != i) {
            tg_vocab_free(v);
            return NULL;
        }
    }
    return v;
}

void tg_vocab_free(tg_vocab *v) {
    if (!v) return;
    for (int32_t i = 0; i < v->n; i++) free(v->words[i]);
    free(v->words);
    free(v->slots);
    free(v);
}

int32_t tg_vocab_add(tg_vocab *v, const char *word) {
    if (!v || !word) return -1;
    int64_t s = find_slot(v, word);
    if (v->slots[s] >= 0) return v->slots[s];
    if (v->n == INT32_MAX) return -1;
    if (v->n == v->cap) {
        int32_t cap = v->cap ? (v->cap > INT32_MAX / 2 ? INT32_MAX : v->cap * 2) : 64;
        char **grown = realloc(v->words, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        v->words = grown;
        v->cap = cap;
    }
    size_t len = strlen(word) + 1;
    char *copy = malloc(len);
    if (!copy) return -1;
    memcpy(copy, word, len);
    v->words[v->n] = copy;
    v->slots[s] = v->n++;
    if ((int64_t)v->n * 2 > v->n_slots && !rehash(v, v->n_slots * 2)) {
        free(v->words[--v->n]);   /* undo: the table could not grow; the new */
        v->slots[s] = -1;         /* entry ends its probe chain, so just clear it */
        return -1;
    }
    return v->n - 1;
}

bool tg_vocab_contains(const tg_vocab *v, const char *word) {
    return v && word && v->slots[find_slot(v, word)] >= 0;
}

int32_t tg_vocab_id(const tg_vocab *v, const char *word) {
    if (!v || !word) return TG_TOKEN_UNK;
    int32_t id = v->slots[find_slot(v, word)];
    return id >= 0 ? id : TG_TOKEN_UNK;
}

int32_t tg_vocab_size(const tg_vocab *v) { return v ? v->n : 0; }

const char *tg_vocab_word(const tg_vocab *v, int32_t id) {
    return (v && id >= 0 && id < v->n) ? v->words[id] : NULL;
}
