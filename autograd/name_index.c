/* autograd/name_index.c - a hash index from names to ids, for the parameter
 * registry (params.c) and, above the core, safetensors files and checkpoints
 * (io/). Registries and files can hold 100k names; finding each one with a
 * linear scan made creating 100k parameters, or loading a file of 100k
 * tensors, quadratic (tens of seconds). Open addressing: FNV-1a, linear
 * probing, at most half full. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

uint64_t tg__name_hash(const char *s) {   /* FNV-1a */
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Slot of name, or of the empty slot where it would go. */
static size_t probe(const tg__name_index *x, const char *name) {
    size_t i = (size_t)tg__name_hash(name) & (x->cap - 1);
    while (x->key[i] && strcmp(x->key[i], name) != 0) i = (i + 1) & (x->cap - 1);
    return i;
}

static bool grow(tg__name_index *x) {
    size_t cap = x->cap ? 2 * x->cap : 64;
    tg__name_index g = {tg__calloc(cap, sizeof *g.key), tg__calloc(cap, sizeof *g.id), cap, 0};
    if (!g.key || !g.id) {
        tg__name_index_free(&g);
        return false;
    }
    for (size_t i = 0; i < x->cap; i++)
        if (x->key[i]) {
            size_t j = probe(&g, x->key[i]);
            g.key[j] = x->key[i], g.id[j] = x->id[i], g.n++;
        }
    tg__name_index_free(x);
    *x = g;
    return true;
}

int tg__name_index_find(const tg__name_index *x, const char *name) {
    if (!x->cap || !name) return -1;
    size_t i = probe(x, name);
    return x->key[i] ? x->id[i] : -1;
}

int tg__name_index_add(tg__name_index *x, const char *name, int id) {
    if (2 * (x->n + 1) > x->cap && !grow(x)) return TG__NAME_NOMEM;
    size_t i = probe(x, name);
    if (x->key[i]) return x->id[i];
    x->key[i] = name, x->id[i] = id, x->n++;
    return TG__NAME_ADDED;
}

void tg__name_index_free(tg__name_index *x) {
    free(x->key);
    free(x->id);
    memset(x, 0, sizeof *x);
}
