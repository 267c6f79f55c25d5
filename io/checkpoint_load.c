/* io/checkpoint_load.c - restoring a training checkpoint (layout in
 * checkpoint.c). Every part is validated and staged into new buffers first;
 * only when all parts are good are the objects changed, so a bad file
 * leaves parameters, optimizer, schedule and training state untouched. */
#include "io_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FN "checkpoint_load"
#define OPTIM_PREFIX "tapegrad.optim."
/* Counts above 2^53 cannot come from a real run; bounding them keeps every
 * later increment free of overflow. */
#define MAX_COUNT ((int64_t)1 << 53)

typedef struct staged_optim {
    tg_optim_opts *groups;
    int n_groups;
    tg_optim_pstate *ps;
    int n_ps;
    int64_t steps;
} staged_optim;

static void staged_optim_free(staged_optim *so) {
    for (int i = 0; so->ps && i < so->n_ps; i++)
        for (int k = 0; k < TG_OPTIM_SLOTS; k++) free(so->ps[i].slot[k]);
    free(so->ps);
    free(so->groups);
}

/* An I64 entry of the given shape (ndim 0 or 1) into out. */
static tg_status read_ints(const tg_safetensors *f, const char *name, const char *dtype,
                           int ndim, int64_t len, void *out) {
    int k = tg_safetensors_find(f, name);
    if (k < 0) return tg__lerr(FN, f, TG_ERR_FORMAT, "tensor '%s' is missing from the file", name);
    tg_st_info in;
    tg_safetensors_info(f, k, &in);
    if (strcmp(in.dtype, dtype) != 0 || in.ndim != ndim || in.numel != len)
        return tg__lerr(FN, f, TG_ERR_FORMAT, "tensor '%s' must be %s with %lld element(s) in %d "
                        "dimension(s)", name, dtype, (long long)len, ndim);
    memcpy(out, in.data, (size_t)len * 8);
    return TG_OK;
}

/* Group membership from the JSON "params" lists: every parameter in exactly one group. */
static tg_status stage_groups(const tg_safetensors *f, const tg_optim *o,
                              const tg__name_index *index, const cJSON *groups, staged_optim *so) {
    int g = 0;
    const cJSON *gj;
    cJSON_ArrayForEach(gj, groups) {
        const cJSON *names = cJSON_GetObjectItemCaseSensitive(gj, "params"), *nm;
        if (!cJSON_IsArray(names) || !tg__opts_from_json(gj, &so->groups[g]))
            return tg__lerr(FN, f, TG_ERR_FORMAT, "optimizer group %d is malformed", g);
        if (tg__optim_check_opts(FN, o->kind, &so->groups[g]) != TG_OK) return TG_ERR_FORMAT;
        cJSON_ArrayForEach(nm, names) {
            int i = cJSON_IsString(nm) ? tg__name_index_find(index, nm->valuestring) : -1;
            if (i < 0 || i >= so->n_ps)
                return tg__lerr(FN, f, TG_ERR_FORMAT,
                                "optimizer group %d names '%s', which is no "
                                "parameter of the model",
                                g, cJSON_IsString(nm) ? nm->valuestring : "?");
            if (so->ps[i].group >= 0)
                return tg__lerr(FN, f, TG_ERR_FORMAT, "parameter '%s' is in two optimizer groups",
                                nm->valuestring);
            so->ps[i].group = g;
        }
        g++;
    }
    for (int i = 0; i < so->n_ps; i++)
        if (so->ps[i].group < 0)
            return tg__lerr(FN, f, TG_ERR_FORMAT, "parameter '%s' is in no optimizer group",
                            tg_params_name(o->params, i));
    return TG_OK;
}

/* Slots and step count of every parameter. */
static tg_status stage_state(const tg_safetensors *f, const tg_optim *o, staged_optim *so) {
    for (int i = 0; i < so->n_ps; i++) {
        const char *pname = tg_params_name(o->params, i);
        for (int k = 0; k < TG_OPTIM_SLOTS; k++) {
            const char *slot = tg__optim_slot_name(o->kind, k);
            if (!slot) continue;
            char *s = tg__join3(slot, ".", pname),
                 *name = s ? tg__join3(OPTIM_PREFIX, s, "") : NULL;
            tg_status st =
                !name ? tg__lerr(FN, f, TG_ERR_NOMEM, "out of memory")
                : tg_safetensors_find(f, name) < 0
                    ? TG_OK
                    : tg__stage_like(FN, f, name, tg_params_at(o->params, i), &so->ps[i].slot[k]);
            free(s);
            free(name);
            if (st != TG_OK) return st;
        }
        char *name = tg__join3(OPTIM_PREFIX, "step.", pname);
        tg_status st = name ? read_ints(f, name, "I64", 0, 1, &so->ps[i].step)
                            : tg__lerr(FN, f, TG_ERR_NOMEM, "out of memory");
        if (st == TG_OK && (so->ps[i].step < 0 || so->ps[i].step > MAX_COUNT))
            st = tg__lerr(FN, f, TG_ERR_FORMAT, "tensor '%s' holds the step count %lld, out of "
                          "range", name, (long long)so->ps[i].step);
        free(name);
        if (st != TG_OK) return st;
    }
    return TG_OK;
}

/* Every "tapegrad.optim." tensor must be a known slot or step of a parameter. */
static tg_status check_optim_names(const tg_safetensors *f, const tg_optim *o,
                                   const tg__name_index *names) {
    size_t np = strlen(OPTIM_PREFIX);
    for (int k = 0; k < tg_safetensors_count(f); k++) {
        tg_st_info in;
        tg_safetensors_info(f, k, &in);
        if (strncmp(in.name, OPTIM_PREFIX, np) != 0) continue;
        const char *rest = in.name + np, *pname = NULL;
        for (int s = -1; s < TG_OPTIM_SLOTS && !pname; s++) {
            const char *slot = s < 0 ? "step" : tg__optim_slot_name(o->kind, s);
            size_t n = slot ? strlen(slot) : 0;
            if (slot && strncmp(rest, slot, n) == 0 && rest[n] == '.') pname = rest + n + 1;
        }
        if (!pname || tg__name_index_find(names, pname) < 0)
            return tg__lerr(FN, f, TG_ERR_FORMAT, "tensor '%s' is no state of a %s optimizer over "
                            "this model", in.name, tg_optim_kind_name(o->kind));
    }
    return TG_OK;
}

static tg_status stage_optim_json(const tg_safetensors *f, const tg_optim *o, const cJSON *root,
                                  staged_optim *so) {
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(root, "groups");
    if (!cJSON_IsString(kind) || !cJSON_IsArray(groups) || cJSON_GetArraySize(groups) < 1 ||
        !tg__json_get_int(root, "steps", &so->steps) || so->steps < 0 ||
        so->steps > MAX_COUNT)
        return tg__lerr(FN, f, TG_ERR_FORMAT, "optimizer metadata 'tapegrad.optim' is malformed");
    if (strcmp(kind->valuestring, tg_optim_kind_name(o->kind)) != 0)
        return tg__lerr(FN, f, TG_ERR_FORMAT, "optimizer kind '%.20s' in the file, '%s' here",
                        kind->valuestring, tg_optim_kind_name(o->kind));
    so->n_groups = cJSON_GetArraySize(groups);
    so->n_ps = tg_params_count(o->params);
    so->groups = tg__calloc((size_t)so->n_groups, sizeof *so->groups);
    so->ps = tg__calloc((size_t)so->n_ps + 1, sizeof *so->ps);
    if (!so->groups || !so->ps) return tg__lerr(FN, f, TG_ERR_NOMEM, "out of memory");
    for (int i = 0; i < so->n_ps; i++) so->ps[i].group = -1;
    tg__name_index names;
    if (tg__params_index(o->params, &names) != TG_OK)
        return tg__lerr(FN, f, TG_ERR_NOMEM, "out of memory");
    tg_status st = stage_groups(f, o, &names, groups, so);
    if (st == TG_OK) st = stage_state(f, o, so);
    if (st == TG_OK) st = check_optim_names(f, o, &names);
    tg__name_index_free(&names);
    return st;
}

/* The JSON object under metadata key, holding what ("optimizer", "schedule");
 * NULL after an error naming both. */
static cJSON *meta_object(const tg_safetensors *f, const char *key, const char *what) {
    const char *meta = tg_safetensors_meta(f, key);
    cJSON *root = meta ? cJSON_Parse(meta) : NULL;
    if (!meta)
        tg__lerr(FN, f, TG_ERR_FORMAT, "the file holds no %s state (metadata '%s')", what, key);
    else if (!cJSON_IsObject(root))
        tg__lerr(FN, f, TG_ERR_FORMAT, "%s metadata '%s' is not a JSON object", what, key);
    if (cJSON_IsObject(root)) return root;
    cJSON_Delete(root);
    return NULL;
}

static tg_status stage_optim(const tg_safetensors *f, const tg_optim *o, staged_optim *so) {
    cJSON *root = meta_object(f, "tapegrad.optim", "optimizer");
    tg_status st = root ? stage_optim_json(f, o, root, so) : tg_last_status();
    cJSON_Delete(root);
    return st;
}

static void commit_optim(tg_optim *o, staged_optim *so) {
    for (int i = 0; i < o->n_ps; i++)
        for (int k = 0; k < TG_OPTIM_SLOTS; k++) free(o->ps[i].slot[k]);
    free(o->ps);
    free(o->groups);
    o->ps = so->ps;
    o->n_ps = so->n_ps;
    o->groups = so->groups;
    o->n_groups = o->cap_groups = so->n_groups;
    o->steps = so->steps;
    so->ps = NULL;
    so->groups = NULL;
}

/* ---- schedule ------------------------------------------------------------------- */
static bool count_ok(int64_t v) { return v >= 0 && v <= MAX_COUNT; }

static bool sched_values_ok(const tg_sched *s) {
    if (!count_ok(s->epoch) || !count_ok(s->step_size) || !count_ok(s->warmup) ||
        !count_ok(s->total) || !count_ok(s->po.patience) || !count_ok(s->po.cooldown) ||
        !count_ok(s->num_bad) || !count_ok(s->cooldown_counter))
        return false;
    bool fin = isfinite(s->gamma) && s->gamma >= 0 && isfinite(s->min_lr) && s->min_lr >= 0;
    switch (s->kind) {
    case TG_SCHED_STEP: return fin && s->step_size >= 1 && s->epoch >= 0;
    case TG_SCHED_EXP: return fin && s->epoch >= 0;
    case TG_SCHED_COSINE:
        return fin && s->total >= 1 && s->warmup >= 0 && s->warmup <= s->total && s->epoch >= 0;
    case TG_SCHED_PLATEAU:
        return s->po.factor >= 0 && s->po.factor < 1 && s->po.patience >= 0 &&
               s->po.cooldown >= 0 && s->num_bad >= 0 && s->cooldown_counter >= 0 &&
               isfinite(s->po.threshold) && s->po.threshold >= 0 && isfinite(s->po.min_lr) &&
               s->po.min_lr >= 0 && isfinite(s->po.eps) && s->po.eps >= 0 && !isnan(s->best);
    }
    return false;
}

static tg_status stage_sched_json(const tg_safetensors *f, const cJSON *root, int n_groups,
                                  tg_sched *out) {
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(root, "base"), *b;
    if (!cJSON_IsString(kind) || !cJSON_IsArray(base) || !tg__sched_from_json(root, out))
        return tg__lerr(FN, f, TG_ERR_FORMAT, "schedule metadata 'tapegrad.sched' is malformed");
    if (strcmp(kind->valuestring, tg__sched_kind_name(out->kind)) != 0)
        return tg__lerr(FN, f, TG_ERR_FORMAT, "schedule kind '%.20s' in the file, '%s' here",
                        kind->valuestring, tg__sched_kind_name(out->kind));
    if (cJSON_GetArraySize(base) != n_groups)
        return tg__lerr(FN, f, TG_ERR_FORMAT, "the schedule holds %d base lrs for %d optimizer "
                        "groups", cJSON_GetArraySize(base), n_groups);
    if (!sched_values_ok(out))
        return tg__lerr(FN, f, TG_ERR_FORMAT, "schedule metadata holds out-of-range values");
    out->base = tg__malloc((size_t)n_groups * sizeof *out->base + 1);
    if (!out->base) return tg__lerr(FN, f, TG_ERR_NOMEM, "out of memory");
    int g = 0;
    cJSON_ArrayForEach(b, base) {
        if (!tg__json_num(b, &out->base[g]) || !isfinite(out->base[g]) || out->base[g] < 0)
            return tg__lerr(FN, f, TG_ERR_FORMAT, "schedule base lr %d is malformed", g);
        g++;
    }
    out->n_groups = n_groups;
    return TG_OK;
}

static tg_status stage_sched(const tg_safetensors *f, const tg_sched *s, int n_groups,
                             tg_sched *out) {
    *out = *s;
    out->base = NULL;
    cJSON *root = meta_object(f, "tapegrad.sched", "schedule");
    tg_status st = root ? stage_sched_json(f, root, n_groups, out) : tg_last_status();
    cJSON_Delete(root);
    return st;
}

/* ---- the whole load ---------------------------------------------------------------- */
static tg_status stage_train(const tg_safetensors *f, tg_train_state *out) {
    int64_t pos[3] = {0, 0, 0};
    tg_status st = read_ints(f, "tapegrad.train.rng", "U64", 1, 4, out->rng.s);
    if (st == TG_OK && tg__rng_is_zero(&out->rng))
        st = tg__lerr(FN, f, TG_ERR_FORMAT, "tensor 'tapegrad.train.rng' holds the all-zero "
                      "state, from which xoshiro256** only ever outputs zeros");
    if (st == TG_OK) st = read_ints(f, "tapegrad.train.position", "I64", 1, 3, pos);
    out->epoch = pos[0], out->step = pos[1], out->data_pos = pos[2];
    return st;
}

tg_status tg_checkpoint_load_from_ex(const tg_safetensors *f, tg_params *p, tg_optim *o,
                                     tg_sched *s, tg_train_state *ts,
                                     const tg_checkpoint_extra *x) {
    if (!f || !p || (o && o->params != p) || (s && o && s->o != o)) {
        tg__set_last_error(TG_ERR_ARG, FN ": need a file and a registry; the optimizer must use "
                           "that registry and the schedule that optimizer");
        return TG_ERR_ARG;
    }
    tg_params *carry = x ? x->carry : NULL;
    tg_load_opts strict = {0};
    void **params = NULL, **carried = NULL;
    staged_optim so = {0};
    tg_sched ss = {0};
    tg_train_state tr = {0};
    tg_status st = tg__stage_tensors(FN, p, f, "", &strict, &params);
    if (st == TG_OK && o) st = tg__optim_sync(o);
    if (st == TG_OK && o) st = stage_optim(f, o, &so);
    if (st == TG_OK && s) st = stage_sched(f, s, o ? so.n_groups : s->o->n_groups, &ss);
    if (st == TG_OK && ts) st = stage_train(f, &tr);
    if (st == TG_OK && carry) st = tg__stage_tensors(FN, carry, f, tg__carry_prefix, &strict,
                                                     &carried);
    if (st == TG_OK) {   /* everything is staged and valid: only now change the objects */
        tg__commit_tensors(p, params);
        if (o) commit_optim(o, &so);
        if (s) {
            free(s->base);
            *s = ss;
            ss.base = NULL;
            tg__sched_apply(s);
        }
        if (ts) *ts = tr;
        if (carry) tg__commit_tensors(carry, carried);
    }
    tg__free_staged(params, tg_params_count(p));
    if (carry) tg__free_staged(carried, tg_params_count(carry));
    staged_optim_free(&so);
    free(ss.base);
    return st;
}

tg_status tg_checkpoint_load_from(const tg_safetensors *f, tg_params *p, tg_optim *o, tg_sched *s,
                                  tg_train_state *ts) {
    return tg_checkpoint_load_from_ex(f, p, o, s, ts, NULL);
}

tg_status tg_checkpoint_load_ex(const char *path, tg_params *p, tg_optim *o, tg_sched *s,
                                tg_train_state *ts, const tg_checkpoint_extra *x) {
    tg_safetensors *f = tg_safetensors_open(path);
    if (!f) return tg_last_status();
    tg_status st = tg_checkpoint_load_from_ex(f, p, o, s, ts, x);
    tg_safetensors_close(f);
    return st;
}

tg_status tg_checkpoint_load(const char *path, tg_params *p, tg_optim *o, tg_sched *s,
                             tg_train_state *ts) {
    return tg_checkpoint_load_ex(path, p, o, s, ts, NULL);
}
