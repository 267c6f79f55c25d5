/* optim/sched.c - learning-rate schedules (formulas in optim.h). */
#include "optim_internal.h"

#include <math.h>
#include <stdlib.h>

#define TG_PI 3.14159265358979323846

static const char *const sched_names[] = {"step", "exp", "cosine", "plateau"};

const char *tg__sched_kind_name(tg_sched_kind k) {
    return (unsigned)k <= (unsigned)TG_SCHED_PLATEAU ? sched_names[k] : "unknown";
}

static tg_sched *sched_new(const char *fn, tg_optim *o, tg_sched_kind kind) {
    if (!o) {
        tg__set_last_error(TG_ERR_ARG, "%s: optimizer is NULL", fn);
        return NULL;
    }
    tg_sched *s = tg__calloc(1, sizeof *s);
    if (s) s->base = tg__malloc((size_t)o->n_groups * sizeof *s->base);
    if (!s || !s->base) {
        free(s);
        tg__set_last_error(TG_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    s->kind = kind;
    s->o = o;
    s->n_groups = o->n_groups;
    for (int g = 0; g < o->n_groups; g++) s->base[g] = o->groups[g].lr;
    return s;
}

static double sched_lr(const tg_sched *s, double base) {
    int64_t t = s->epoch;
    switch (s->kind) {
    case TG_SCHED_STEP: return base * pow(s->gamma, (double)(t / s->step_size));
    case TG_SCHED_EXP: return base * pow(s->gamma, (double)t);
    case TG_SCHED_COSINE:
        if (t < s->warmup) return base * (double)(t + 1) / (double)s->warmup;
        if (t >= s->total) return s->min_lr;
        return s->min_lr +
               (base - s->min_lr) *
                   (1 + cos(TG_PI * (double)(t - s->warmup) / (double)(s->total - s->warmup))) / 2;
    case TG_SCHED_PLATEAU: break;
    }
    return base;
}

void tg__sched_apply(tg_sched *s) {
    if (s->kind == TG_SCHED_PLATEAU) return;
    for (int g = 0; g < s->n_groups; g++) {
        s->o->groups[g].lr = sched_lr(s, s->base[g]);
    }
}

static tg_sched *started(tg_sched *s) {
    if (s) tg__sched_apply(s);
    return s;
}

static bool finite_nonneg(double v) { return isfinite(v) && v >= 0; }

tg_sched *tg_sched_new_step(tg_optim *o, int64_t step_size, double gamma) {
    if (step_size < 1 || !finite_nonneg(gamma)) {
        tg__set_last_error(TG_ERR_ARG,
                           "sched_new_step: step_size %lld must be >= 1 and gamma %g >= 0",
                           (long long)step_size, gamma);
        return NULL;
    }
    tg_sched *s = sched_new("sched_new_step", o, TG_SCHED_STEP);
    if (s) s->step_size = step_size, s->gamma = gamma;
    return started(s);
}

tg_sched *tg_sched_new_exp(tg_optim *o, double gamma) {
    if (!finite_nonneg(gamma)) {
        tg__set_last_error(TG_ERR_ARG, "sched_new_exp: gamma %g must be >= 0", gamma);
        return NULL;
    }
    tg_sched *s = sched_new("sched_new_exp", o, TG_SCHED_EXP);
    if (s) s->gamma = gamma;
    return started(s);
}

tg_sched *tg_sched_new_cosine(tg_optim *o, int64_t warmup, int64_t total, double min_lr) {
    if (total < 1 || warmup < 0 || warmup > total || !finite_nonneg(min_lr)) {
        tg__set_last_error(TG_ERR_ARG, "sched_new_cosine: need 0 <= warmup <= total, total >= 1, "
                           "min_lr >= 0 (warmup %lld, total %lld, min_lr %g)",
                           (long long)warmup, (long long)total, min_lr);
        return NULL;
    }
    tg_sched *s = sched_new("sched_new_cosine", o, TG_SCHED_COSINE);
    if (s) s->warmup = warmup, s->total = total, s->min_lr = min_lr;
    return started(s);
}

tg_plateau_opts tg_plateau_defaults(void) {
    return (tg_plateau_opts){.factor = 0.1, .patience = 10, .threshold = 1e-4, .eps = 1e-8};
}

tg_sched *tg_sched_new_plateau(tg_optim *o, const tg_plateau_opts *po) {
    tg_plateau_opts p = po ? *po : tg_plateau_defaults();
    if (!(p.factor >= 0 && p.factor < 1) || p.patience < 0 || !finite_nonneg(p.threshold) ||
        p.cooldown < 0 || !finite_nonneg(p.min_lr) || !finite_nonneg(p.eps)) {
        tg__set_last_error(TG_ERR_ARG,
                           "sched_new_plateau: need factor in [0,1) (got %g), patience, "
                           "cooldown >= 0, threshold, min_lr, eps finite and >= 0",
                           p.factor);
        return NULL;
    }
    tg_sched *s = sched_new("sched_new_plateau", o, TG_SCHED_PLATEAU);
    if (s) s->po = p, s->best = p.maximize ? -INFINITY : INFINITY;
    return s;
}

void tg_sched_free(tg_sched *s) {
    if (!s) return;
    free(s->base);
    free(s);
}

int64_t tg_sched_epoch(const tg_sched *s) { return s ? s->epoch : 0; }

static tg_status sched_check(const char *fn, const tg_sched *s) {
    if (!s) {
        tg__set_last_error(TG_ERR_ARG, "%s: schedule is NULL", fn);
        return TG_ERR_ARG;
    }
    if (s->o->n_groups != s->n_groups) {
        tg__set_last_error(TG_ERR_STATE, "%s: the optimizer has %d groups, the schedule was made "
                           "for %d: create schedules after the groups", fn, s->o->n_groups,
                           s->n_groups);
        return TG_ERR_STATE;
    }
    return TG_OK;
}

tg_status tg_sched_step(tg_sched *s) {
    tg_status st = sched_check("sched_step", s);
    if (st != TG_OK) return st;
    if (s->kind == TG_SCHED_PLATEAU) {
        tg__set_last_error(TG_ERR_STATE, "sched_step: the plateau schedule needs a metric: "
                           "call tg_sched_step_metric");
        return TG_ERR_STATE;
    }
    s->epoch++;
    tg__sched_apply(s);
    return TG_OK;
}

static bool improves(const tg_plateau_opts *p, double m, double best) {
    if (p->maximize)
        return p->threshold_abs ? m > best + p->threshold : m > best * (1 + p->threshold);
    return p->threshold_abs ? m < best - p->threshold : m < best * (1 - p->threshold);
}

static void reduce_lr(tg_sched *s) {
    for (int g = 0; g < s->n_groups; g++) {
        double old = s->o->groups[g].lr;
        double lr = old * s->po.factor;
        if (lr < s->po.min_lr) lr = s->po.min_lr;
        if (old - lr > s->po.eps) s->o->groups[g].lr = lr;
    }
}

tg_status tg_sched_step_metric(tg_sched *s, double metric) {
    if (s && s->kind != TG_SCHED_PLATEAU) return tg_sched_step(s);
    tg_status st = sched_check("sched_step_metric", s);
    if (st != TG_OK) return st;
    s->epoch++;
    if (improves(&s->po, metric, s->best)) {
        s->best = metric;
        s->num_bad = 0;
    } else {
        s->num_bad++;
    }
    if (s->cooldown_counter > 0) {
        s->cooldown_counter--;
        s->num_bad = 0;
    }
    if (s->num_bad > s->po.patience) {
        reduce_lr(s);
        s->cooldown_counter = s->po.cooldown;
        s->num_bad = 0;
    }
    return TG_OK;
}
