/* autograd/params.c - named parameter registry (a growable array). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct param_entry {
    char *name;
    tg_tensor *t;
    bool owned;
} param_entry;

struct tg_params {
    param_entry *items;
    int n, cap;
};

tg_params *tg_params_new(void) {
    tg_params *p = tg__calloc(1, sizeof *p);
    if (!p) tg__set_last_error(TG_ERR_NOMEM, "params_new: out of memory");
    return p;
}

void tg_params_free(tg_params *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        if (p->items[i].owned) tg_tensor_free(p->items[i].t);
        free(p->items[i].name);
    }
    free(p->items);
    free(p);
}

static tg_status append(tg_params *p, const char *name, tg_tensor *t, bool owned) {
    if (!p || !name || !*name || !t) {
        tg__set_last_error(TG_ERR_ARG, "params_add: registry, name and tensor are required");
        return TG_ERR_ARG;
    }
    if (tg_params_find(p, name)) {
        tg__set_last_error(TG_ERR_ARG, "params_add: duplicate parameter name '%s'", name);
        return TG_ERR_ARG;
    }
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 16;
        param_entry *grown = realloc(p->items, (size_t)cap * sizeof *grown);
        if (!grown) goto nomem;
        tg__count_alloc();
        p->items = grown;
        p->cap = cap;
    }
    size_t len = strlen(name) + 1;
    char *copy = tg__malloc(len);
    if (!copy) goto nomem;
    memcpy(copy, name, len);
    p->items[p->n++] = (param_entry){copy, t, owned};
    return TG_OK;
nomem:
    tg__set_last_error(TG_ERR_NOMEM, "params_add: out of memory");
    return TG_ERR_NOMEM;
}

tg_tensor *tg_params_create(tg_params *p, const char *name, tg_dtype dt, int ndim,
                            const int64_t *shape) {
    if (!p || !name || !*name) {
        tg__set_last_error(TG_ERR_ARG, "params_create: registry and name are required");
        return NULL;
    }
    if (tg_params_find(p, name)) {
        tg__set_last_error(TG_ERR_ARG, "params_create: duplicate parameter name '%s'", name);
        return NULL;
    }
    tg_tensor *t = tg_tensor_new(dt, ndim, shape);
    if (!t) return NULL;
    tg_tensor_set_requires_grad(t, true);
    if (append(p, name, t, true) != TG_OK) {
        tg_tensor_free(t);
        return NULL;
    }
    return t;
}

tg_status tg_params_add(tg_params *p, const char *name, tg_tensor *t) {
    /* A tape's tensor dies at tg_tape_reset; the registry would keep using it. */
    if (t && t->owner == TG_OWN_ARENA)
        return tg__set_last_error(TG_ERR_ARG,
                                  "params_add: '%s' is a tape tensor (freed at tg_tape_reset); "
                                  "register a caller-owned one (tg_tensor_new, tg_tensor_clone)",
                                  name ? name : "(null)");
    return append(p, name, t, false);
}

int tg_params_count(const tg_params *p) { return p ? p->n : 0; }

tg_tensor *tg_params_at(const tg_params *p, int i) {
    return (p && i >= 0 && i < p->n) ? p->items[i].t : NULL;
}

const char *tg_params_name(const tg_params *p, int i) {
    return (p && i >= 0 && i < p->n) ? p->items[i].name : NULL;
}

tg_tensor *tg_params_find(const tg_params *p, const char *name) {
    if (!p || !name) return NULL;
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->items[i].name, name) == 0) return p->items[i].t;
    return NULL;
}

int64_t tg_params_numel(const tg_params *p) {
    int64_t n = 0;
    for (int i = 0; p && i < p->n; i++) n += p->items[i].t->numel;
    return n;
}

void tg_params_zero_grad(tg_params *p) {
    for (int i = 0; p && i < p->n; i++) tg_tensor_zero_grad(p->items[i].t);
}
