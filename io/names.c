/* io/names.c - tensor names: UTF-8 validation and a hash index.
 *
 * The reference safetensors implementation refuses a header that is not
 * UTF-8, so names are checked both when a file is read and before one is
 * written. Files and registries can hold 100k names; looking each one up
 * with a linear scan made loading such a file quadratic (22.7 s), so lookups
 * go through an open-addressing hash table (FNV-1a, linear probing, at most
 * half full). */
#include "io_internal.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), 0 when it is not one:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_seq(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int n = c >= 0xC2 && c <= 0xDF   ? 2   /* C0, C1: overlong two-byte forms */
            : c >= 0xE0 && c <= 0xEF ? 3
            : c >= 0xF0 && c <= 0xF4 ? 4   /* above F4: beyond U+10FFFF */
                                     : 0;
    for (int k = 1; k < n; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    if (n == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F))) return 0;
    if (n == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))) return 0;
    return n;
}

bool tg__utf8_valid(const char *s, size_t *bad_at) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; p[i];) {
        int n = utf8_seq(p + i);
        if (!n) {
            if (bad_at) *bad_at = i;
            return false;
        }
        i += (size_t)n;
    }
    return true;
}

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

tg_status tg__params_index(const tg_params *p, tg__name_index *x) {
    memset(x, 0, sizeof *x);
    for (int i = 0; i < tg_params_count(p); i++)
        if (tg__name_index_add(x, tg_params_name(p, i), i) == TG__NAME_NOMEM) {
            tg__name_index_free(x);
            return TG_ERR_NOMEM;
        }
    return TG_OK;
}
