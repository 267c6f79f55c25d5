/* io/checkpoint.c - parameters, optimizer, schedule and training state in
 * one safetensors file.
 *
 * Layout (every non-parameter name starts with "tapegrad."):
 *   <param name>                          the parameter (a PyTorch state_dict)
 *   tapegrad.optim.<slot>.<param name>    optimizer state (exp_avg, sum, ...)
 *   tapegrad.optim.step.<param name>      I64 [], updates applied to the parameter
 *   tapegrad.train.rng                    U64 [4], the xoshiro256** state
 *   tapegrad.train.position               I64 [3], epoch, step, data position
 *   tapegrad.carry.<name>                 a tensor the loop carries between steps
 *   __metadata__ "tapegrad.optim"         JSON: kind, step count, groups with
 *                                         hyperparameters and member names
 *   __metadata__ "tapegrad.sched"         JSON: kind, epoch, base lrs, settings
 * Numbers inside the JSON are strings printed with %.17g, which round-trip
 * every double exactly (also inf, which JSON numbers cannot hold).
 *
 * Saving is here; loading is in checkpoint_load.c. Loading stages everything (validated and
 * converted into new buffers) before it changes any object, so a bad file leaves them untouched. */
#include "io_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESERVED "tapegrad."
#define OPTIM_PREFIX "tapegrad.optim."
const char *const tg__carry_prefix = "tapegrad.carry.";

bool tg__reserved_name(const char *name) {
    return strncmp(name, RESERVED, strlen(RESERVED)) == 0 || strcmp(name, "__metadata__") == 0;
}

static tg_status check_names(const char *fn, const tg_params *p) {
    for (int i = 0; i < tg_params_count(p); i++)
        if (tg__reserved_name(tg_params_name(p, i))) {
            tg__set_last_error(TG_ERR_ARG, "%s: parameter name '%s' is reserved (prefix '%s')", fn,
                               tg_params_name(p, i), RESERVED);
            return TG_ERR_ARG;
        }
    return TG_OK;
}

/* Every tensor of p under prefix + its name. */
static tg_status add_tensors(tg_safetensors_writer *w, const tg_params *p, const char *prefix) {
    tg_status st = TG_OK;
    for (int i = 0; st == TG_OK && i < tg_params_count(p); i++) {
        char *name = tg__join3(prefix, tg_params_name(p, i), "");
        st = name ? tg_safetensors_writer_add(w, name, tg_params_at(p, i)) : TG_ERR_NOMEM;
        free(name);
    }
    return st;
}

static tg_status add_params(tg_safetensors_writer *w, const tg_params *p) {
    tg_status st = tg_safetensors_writer_meta(w, "format", "pt");
    return st == TG_OK ? add_tensors(w, p, "") : st;
}

tg_status tg_params_save(const tg_params *p, const char *path) {
    if (!p || !path) {
        tg__set_last_error(TG_ERR_ARG, "params_save: registry and path are required");
        return TG_ERR_ARG;
    }
    tg_status st = check_names("params_save", p);
    if (st != TG_OK) return st;
    tg_safetensors_writer *w = tg_safetensors_writer_new();
    if (!w) return TG_ERR_NOMEM;
    st = add_params(w, p);
    if (st == TG_OK) st = tg_safetensors_writer_save(w, path);
    tg_safetensors_writer_free(w);
    return st;
}

/* ---- staged parameter load ---------------------------------------------------- */
tg_status tg__lerr(const char *fn, const tg_safetensors *f, tg_status st, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    tg__set_last_error(st, "%s: %s: %s", fn, tg__st_label(f), what);
    return st;
}

static bool same_shape(const tg_st_info *in, const tg_tensor *t) {
    if (in->ndim != t->ndim) return false;
    for (int d = 0; d < t->ndim; d++)
        if (in->shape[d] != t->shape[d]) return false;
    return true;
}

/* Convert file entry `name` into a new buffer shaped like t. */
tg_status tg__stage_like(const char *fn, const tg_safetensors *f, const char *name,
                            const tg_tensor *t, void **out) {
    int k = tg_safetensors_find(f, name);
    if (k < 0) return tg__lerr(fn, f, TG_ERR_FORMAT, "tensor '%s' is missing from the file", name);
    tg_st_info in;
    tg_safetensors_info(f, k, &in);
    if (!same_shape(&in, t)) {
        char a[160], b[160];
        return tg__lerr(fn, f, TG_ERR_SHAPE, "tensor '%s': shape %s in file, %s in model", name,
                    tg__shape_str(in.ndim, in.shape, a, sizeof a), tg_shape_str(t, b, sizeof b));
    }
    *out = tg__malloc((size_t)t->numel * tg_dtype_size(t->dtype) + 1);
    if (!*out) return tg__lerr(fn, f, TG_ERR_NOMEM, "tensor '%s': out of memory", name);
    return tg__st_convert(f, k, t->dtype, *out, fn);
}

void tg__free_staged(void **b, int n) {
    for (int i = 0; b && i < n; i++) free(b[i]);
    free(b);
}

/* The file's tensors of this kind (prefix ""): parameters, every name that
 * is not reserved; else the names under prefix) must each be one of p's. */
static tg_status check_unexpected(const char *fn, const tg_params *p, const tg_safetensors *f,
                                  const char *prefix) {
    tg__name_index names;
    if (tg__params_index(p, &names) != TG_OK) return tg__lerr(fn, f, TG_ERR_NOMEM, "out of memory");
    size_t np = strlen(prefix);
    tg_status st = TG_OK;
    for (int k = 0; k < tg_safetensors_count(f) && st == TG_OK; k++) {
        tg_st_info in;
        tg_safetensors_info(f, k, &in);
        bool ours = np ? strncmp(in.name, prefix, np) == 0 : !tg__reserved_name(in.name);
        if (ours && tg__name_index_find(&names, in.name + np) < 0)
            st = tg__lerr(fn, f, TG_ERR_FORMAT, "tensor '%s' in the file is no %s of the model",
                          in.name, np ? "carried tensor" : "parameter");
    }
    tg__name_index_free(&names);
    return st;
}

tg_status tg__stage_tensors(const char *fn, const tg_params *p, const tg_safetensors *f,
                            const char *prefix, const tg_load_opts *o, void ***staged) {
    int n = tg_params_count(p);
    tg_status st = o->allow_unexpected ? TG_OK : check_unexpected(fn, p, f, prefix);
    if (st != TG_OK) return st;
    void **b = tg__calloc((size_t)n + 1, sizeof *b);
    if (!b) return tg__lerr(fn, f, TG_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && st == TG_OK; i++) {
        char *name = tg__join3(prefix, tg_params_name(p, i), "");
        if (!name) st = tg__lerr(fn, f, TG_ERR_NOMEM, "out of memory");
        else if (!o->allow_missing || tg_safetensors_find(f, name) >= 0)
            st = tg__stage_like(fn, f, name, tg_params_at(p, i), &b[i]);
        free(name);
    }
    if (st != TG_OK) {
        tg__free_staged(b, n);
        return st;
    }
    *staged = b;
    return TG_OK;
}

void tg__commit_tensors(tg_params *p, void **staged) {
    for (int i = 0; i < tg_params_count(p); i++) {
        tg_tensor *t = tg_params_at(p, i);
        if (staged[i]) memcpy(t->data, staged[i], (size_t)t->numel * tg_dtype_size(t->dtype));
    }
}

tg_status tg_params_load_from(tg_params *p, const tg_safetensors *f, const tg_load_opts *o) {
    if (!p || !f) {
        tg__set_last_error(TG_ERR_ARG, "params_load: registry and file are required");
        return TG_ERR_ARG;
    }
    tg_load_opts opts = o ? *o : (tg_load_opts){0};
    void **staged = NULL;
    tg_status st = tg__stage_tensors("params_load", p, f, "", &opts, &staged);
    if (st == TG_OK) tg__commit_tensors(p, staged);
    tg__free_staged(staged, tg_params_count(p));
    return st;
}

tg_status tg_params_load_ex(tg_params *p, const char *path, const tg_load_opts *o) {
    tg_safetensors *f = tg_safetensors_open(path);
    if (!f) return tg_last_status();
    tg_status st = tg_params_load_from(p, f, o);
    tg_safetensors_close(f);
    return st;
}

tg_status tg_params_load(tg_params *p, const char *path) {
    return tg_params_load_ex(p, path, NULL);
}

/* ---- saving -------------------------------------------------------------------- */
char *tg__join3(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = tg__malloc(n);
    if (s) snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

static tg_status add_optim_tensors(tg_safetensors_writer *w, const tg_optim *o) {
    tg_status st = TG_OK;
    for (int i = 0; st == TG_OK && i < o->n_ps; i++) {
        const char *pname = tg_params_name(o->params, i);
        const tg_tensor *t = tg_params_at(o->params, i);
        for (int k = 0; st == TG_OK && k < TG_OPTIM_SLOTS; k++) {
            if (!o->ps[i].slot[k] || o->ps[i].fresh & (1u << k)) continue;
            char *slot = tg__join3(tg__optim_slot_name(o->kind, k), ".", pname);
            char *name = slot ? tg__join3(OPTIM_PREFIX, slot, "") : NULL;
            st = name ? tg__st_writer_add_raw(w, name, t->dtype == TG_F64 ? "F64" : "F32", t->ndim,
                                              t->shape, o->ps[i].slot[k],
                                              (size_t)t->numel * tg_dtype_size(t->dtype))
                      : TG_ERR_NOMEM;
            free(slot);
            free(name);
        }
        char *name = tg__join3(OPTIM_PREFIX, "step.", pname);
        st = st != TG_OK ? st
             : name      ? tg__st_writer_add_raw(w, name, "I64", 0, NULL, &o->ps[i].step, 8)
                         : TG_ERR_NOMEM;
        free(name);
    }
    return st;
}

static tg_status add_optim(tg_safetensors_writer *w, tg_optim *o) {
    tg_status st = tg__optim_sync(o);
    if (st != TG_OK) return st;
    cJSON *root = cJSON_CreateObject(), *groups = cJSON_AddArrayToObject(root, "groups");
    bool ok = root && groups &&
              cJSON_AddStringToObject(root, "kind", tg_optim_kind_name(o->kind)) &&
              tg__json_put_int(root, "steps", o->steps);
    for (int g = 0; ok && g < o->n_groups; g++) {
        cJSON *gj = cJSON_CreateObject(), *names = gj ? cJSON_AddArrayToObject(gj, "params") : NULL;
        ok = gj && cJSON_AddItemToArray(groups, gj) && names && tg__opts_to_json(gj, &o->groups[g]);
        for (int i = 0; ok && i < o->n_ps; i++)
            if (o->ps[i].group == g)
                ok = cJSON_AddItemToArray(names, cJSON_CreateString(tg_params_name(o->params, i)));
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    st = json ? tg_safetensors_writer_meta(w, "tapegrad.optim", json) : TG_ERR_NOMEM;
    cJSON_free(json);
    return st == TG_OK ? add_optim_tensors(w, o) : st;
}

static tg_status add_sched(tg_safetensors_writer *w, const tg_sched *s) {
    cJSON *root = cJSON_CreateObject(), *base = cJSON_AddArrayToObject(root, "base");
    bool ok = root && base && cJSON_AddStringToObject(root, "kind", tg__sched_kind_name(s->kind)) &&
              tg__sched_to_json(root, s);
    for (int g = 0; ok && g < s->n_groups; g++) {
        char b[40];
        snprintf(b, sizeof b, "%.17g", s->base[g]);
        ok = cJSON_AddItemToArray(base, cJSON_CreateString(b));
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    tg_status st = json ? tg_safetensors_writer_meta(w, "tapegrad.sched", json) : TG_ERR_NOMEM;
    cJSON_free(json);
    return st;
}

bool tg__rng_is_zero(const tg_rng *r) {
    return (r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0;
}

static tg_status add_train(tg_safetensors_writer *w, const tg_train_state *ts) {
    if (tg__rng_is_zero(&ts->rng)) {
        tg__set_last_error(TG_ERR_ARG, "checkpoint_save: the training state's rng is all zero "
                           "(xoshiro256** then only outputs zeros): seed it with tg_rng_seeded");
        return TG_ERR_ARG;
    }
    int64_t four = 4, three = 3, pos[3] = {ts->epoch, ts->step, ts->data_pos};
    tg_status st = tg__st_writer_add_raw(w, "tapegrad.train.rng", "U64", 1, &four, ts->rng.s, 32);
    return st != TG_OK
               ? st
               : tg__st_writer_add_raw(w, "tapegrad.train.position", "I64", 1, &three, pos, 24);
}

tg_status tg_checkpoint_save(const char *path, const tg_params *p, const tg_optim *o,
                             const tg_sched *s, const tg_train_state *ts) {
    return tg_checkpoint_save_ex(path, p, o, s, ts, NULL);
}

tg_status tg_checkpoint_save_ex(const char *path, const tg_params *p, const tg_optim *o,
                                const tg_sched *s, const tg_train_state *ts,
                                const tg_checkpoint_extra *x) {
    if (!path || !p || (o && o->params != p) || (s && o && s->o != o)) {
        tg__set_last_error(TG_ERR_ARG, "checkpoint_save: need a path and a registry; the optimizer "
                           "must use that registry and the schedule that optimizer");
        return TG_ERR_ARG;
    }
    tg_status st = check_names("checkpoint_save", p);
    if (st != TG_OK) return st;
    tg_safetensors_writer *w = tg_safetensors_writer_new();
    if (!w) return TG_ERR_NOMEM;
    st = add_params(w, p);
    if (st == TG_OK && o) st = add_optim(w, (tg_optim *)o);
    if (st == TG_OK && s) st = add_sched(w, s);
    if (st == TG_OK && ts) st = add_train(w, ts);
    if (st == TG_OK && x && x->carry) st = add_tensors(w, x->carry, tg__carry_prefix);
    if (st == TG_OK) st = tg_safetensors_writer_save(w, path);
    else if (st == TG_ERR_NOMEM) tg__set_last_error(st, "checkpoint_save: out of memory");
    tg_safetensors_writer_free(w);
    return st;
}
