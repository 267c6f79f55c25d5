/* io/ckpt_json.c - exact numbers in checkpoint metadata.
 *
 * safetensors metadata values are strings, and JSON numbers cannot hold inf
 * (a plateau schedule's initial best); so every number is a string printed
 * with %.17g (or %lld), which strtod/strtoll read back bit for bit. */
#include "io_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

bool tg__json_put_num(cJSON *o, const char *k, double v) {
    char b[40];
    snprintf(b, sizeof b, "%.17g", v);
    return cJSON_AddStringToObject(o, k, b) != NULL;
}

bool tg__json_put_int(cJSON *o, const char *k, int64_t v) {
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    return cJSON_AddStringToObject(o, k, b) != NULL;
}

bool tg__json_num(const cJSON *x, double *v) {
    if (!cJSON_IsString(x) || !*x->valuestring) return false;
    char *end;
    *v = strtod(x->valuestring, &end);
    return *end == '\0';
}

bool tg__json_get_num(const cJSON *o, const char *k, double *v) {
    return tg__json_num(cJSON_GetObjectItemCaseSensitive(o, k), v);
}

bool tg__json_get_int(const cJSON *o, const char *k, int64_t *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(x) || !*x->valuestring) return false;
    char *end;
    errno = 0;
    long long r = strtoll(x->valuestring, &end, 10);
    *v = r;
    return *end == '\0' && errno == 0;
}

#define OPT_D(f) {#f, offsetof(tg_optim_opts, f), false}
#define OPT_B(f) {#f, offsetof(tg_optim_opts, f), true}
static const struct { const char *name; size_t off; bool is_bool; } fields[] = {
    OPT_D(lr), OPT_D(weight_decay), OPT_D(momentum), OPT_D(dampening), OPT_B(nesterov),
    OPT_D(alpha), OPT_B(centered), OPT_D(beta1), OPT_D(beta2), OPT_B(amsgrad), OPT_D(eps),
    OPT_D(lr_decay), OPT_D(initial_accumulator_value), OPT_D(rho),
};

bool tg__opts_to_json(cJSON *j, const tg_optim_opts *g) {
    bool ok = true;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *at = (const char *)g + fields[i].off;
        ok = ok && (fields[i].is_bool ? tg__json_put_int(j, fields[i].name, *(const bool *)at)
                                      : tg__json_put_num(j, fields[i].name, *(const double *)at));
    }
    return ok;
}

bool tg__opts_from_json(const cJSON *j, tg_optim_opts *g) {
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char *at = (char *)g + fields[i].off;
        if (fields[i].is_bool) {
            int64_t v;
            if (!tg__json_get_int(j, fields[i].name, &v) || (v != 0 && v != 1)) return false;
            *(bool *)at = v == 1;
        } else if (!tg__json_get_num(j, fields[i].name, (double *)at)) {
            return false;
        }
    }
    return true;
}

/* A schedule's settings and state; the kind and base lrs are handled apart. */
enum { F_I64, F_DBL, F_BOOL };
#define S_I(f) {#f, offsetof(tg_sched, f), F_I64}
#define S_D(f) {#f, offsetof(tg_sched, f), F_DBL}
static const struct { const char *name; size_t off; int type; } sched_fields[] = {
    S_I(epoch), S_I(step_size), S_D(gamma), S_I(warmup), S_I(total), S_D(min_lr),
    {"maximize", offsetof(tg_sched, po.maximize), F_BOOL},
    {"factor", offsetof(tg_sched, po.factor), F_DBL},
    {"patience", offsetof(tg_sched, po.patience), F_I64},
    {"threshold", offsetof(tg_sched, po.threshold), F_DBL},
    {"threshold_abs", offsetof(tg_sched, po.threshold_abs), F_BOOL},
    {"cooldown", offsetof(tg_sched, po.cooldown), F_I64},
    {"plateau_min_lr", offsetof(tg_sched, po.min_lr), F_DBL},
    {"plateau_eps", offsetof(tg_sched, po.eps), F_DBL},
    S_D(best), S_I(num_bad), S_I(cooldown_counter),
};

bool tg__sched_to_json(cJSON *j, const tg_sched *s) {
    bool ok = true;
    for (size_t i = 0; ok && i < sizeof sched_fields / sizeof sched_fields[0]; i++) {
        const char *at = (const char *)s + sched_fields[i].off;
        const char *k = sched_fields[i].name;
        switch (sched_fields[i].type) {
        case F_I64: ok = tg__json_put_int(j, k, *(const int64_t *)at); break;
        case F_DBL: ok = tg__json_put_num(j, k, *(const double *)at); break;
        default: ok = tg__json_put_int(j, k, *(const bool *)at); break;
        }
    }
    return ok;
}

bool tg__sched_from_json(const cJSON *j, tg_sched *s) {
    for (size_t i = 0; i < sizeof sched_fields / sizeof sched_fields[0]; i++) {
        char *at = (char *)s + sched_fields[i].off;
        const char *k = sched_fields[i].name;
        int64_t v;
        switch (sched_fields[i].type) {
        case F_I64:
            if (!tg__json_get_int(j, k, (int64_t *)at)) return false;
            break;
        case F_DBL:
            if (!tg__json_get_num(j, k, (double *)at)) return false;
            break;
        default:
            if (!tg__json_get_int(j, k, &v) || (v != 0 && v != 1)) return false;
            *(bool *)at = v == 1;
        }
    }
    return true;
}
