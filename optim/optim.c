/* optim/optim.c - SGD, RMSprop, Adam, AdamW, Adagrad, Adadelta over the
 * parameter registry, with parameter groups.
 *
 * Each update is one kernel per dtype (optim_kernels.h), written in the
 * operation order of PyTorch 1.13's single-tensor implementation (the
 * formulas are in optim.h); parameters are updated in place, float32 ones in
 * float32 arithmetic as PyTorch does. */
#include "optim_internal.h"

#include <fnmatch.h>
#include <tgmath.h>
#include <stdlib.h>
#include <string.h>


/* ---- names and defaults ------------------------------------------------- */
static const char *const kind_names[] = {"sgd", "rmsprop", "adam", "adamw", "adagrad", "adadelta"};

static const char *const slot_names[][TG_OPTIM_SLOTS] = {
    [TG_OPTIM_SGD] = {"momentum_buffer", NULL, NULL},
    [TG_OPTIM_RMSPROP] = {"square_avg", "momentum_buffer", "grad_avg"},
    [TG_OPTIM_ADAM] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    [TG_OPTIM_ADAMW] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    [TG_OPTIM_ADAGRAD] = {"sum", NULL, NULL},
    [TG_OPTIM_ADADELTA] = {"square_avg", "acc_delta", NULL},
};

static bool kind_ok(tg_optim_kind k) { return (unsigned)k <= (unsigned)TG_OPTIM_ADADELTA; }

const char *tg_optim_kind_name(tg_optim_kind k) { return kind_ok(k) ? kind_names[k] : "unknown"; }

const char *tg__optim_slot_name(tg_optim_kind k, int slot) {
    return (kind_ok(k) && slot >= 0 && slot < TG_OPTIM_SLOTS) ? slot_names[k][slot] : NULL;
}

tg_optim_opts tg_optim_defaults(tg_optim_kind k) {
    tg_optim_opts o = {.lr = 0.01, .alpha = 0.99, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                       .rho = 0.9};
    switch (k) {
    case TG_OPTIM_SGD: break;
    case TG_OPTIM_RMSPROP: break;
    case TG_OPTIM_ADAM: o.lr = 1e-3; break;
    case TG_OPTIM_ADAMW: o.lr = 1e-3; o.weight_decay = 1e-2; break;
    case TG_OPTIM_ADAGRAD: o.eps = 1e-10; break;
    case TG_OPTIM_ADADELTA: o.lr = 1.0; o.eps = 1e-6; break;
    }
    return o;
}

tg_optim_opts tg_optim_keras_defaults(tg_optim_kind k) {
    tg_optim_opts o = tg_optim_defaults(k);
    switch (k) {
    case TG_OPTIM_SGD: break;
    case TG_OPTIM_RMSPROP: o.lr = 1e-3; o.alpha = 0.9; o.eps = 1e-7; break;
    case TG_OPTIM_ADAM: o.eps = 1e-7; break;
    case TG_OPTIM_ADAMW: o.eps = 1e-7; o.weight_decay = 4e-3; break;
    case TG_OPTIM_ADAGRAD: o.eps = 1e-7; break;
    case TG_OPTIM_ADADELTA: o.rho = 0.95; o.eps = 1e-7; break;
    }
    return o;
}

/* ---- validation ----------------------------------------------------------- */
static tg_status bad(const char *fn, tg_optim_kind k, const char *what, double v,
                     const char *range) {
    tg__set_last_error(TG_ERR_ARG, "%s: %s: %s %g %s", fn, tg_optim_kind_name(k), what, v, range);
    return TG_ERR_ARG;
}

tg_status tg__optim_check_opts(const char *fn, tg_optim_kind k, const tg_optim_opts *g) {
    const struct { const char *name; double v, lo, hi; bool hi_open; } f[] = {
        {"lr", g->lr, 0, INFINITY, true},
        {"weight_decay", g->weight_decay, 0, INFINITY, true},
        {"momentum", g->momentum, 0, INFINITY, true},
        {"dampening", g->dampening, -INFINITY, INFINITY, true},
        {"alpha", g->alpha, 0, INFINITY, true},
        {"beta1", g->beta1, 0, 1, true},
        {"beta2", g->beta2, 0, 1, true},
        {"eps", g->eps, 0, INFINITY, true},
        {"lr_decay", g->lr_decay, 0, INFINITY, true},
        {"initial_accumulator_value", g->initial_accumulator_value, 0, INFINITY, true},
        {"rho", g->rho, 0, 1, false},
    };
    if (!kind_ok(k)) {
        tg__set_last_error(TG_ERR_ARG, "%s: unknown optimizer kind %d", fn, (int)k);
        return TG_ERR_ARG;
    }
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        double v = f[i].v;
        bool ok = isfinite(v) && v >= f[i].lo && (f[i].hi_open ? v < f[i].hi : v <= f[i].hi);
        if (!ok)
            return bad(fn, k, f[i].name, v,
                       f[i].hi == 1
                           ? (f[i].hi_open ? "not in [0, 1)" : "not in [0, 1]")
                           : (f[i].lo == 0 ? "must be finite and >= 0" : "must be finite"));
    }
    if (k == TG_OPTIM_SGD && g->nesterov && (g->momentum <= 0 || g->dampening != 0)) {
        tg__set_last_error(TG_ERR_ARG, "%s: sgd: nesterov needs momentum > 0 and dampening 0 "
                           "(momentum %g, dampening %g)", fn, g->momentum, g->dampening);
        return TG_ERR_ARG;
    }
    return TG_OK;
}

/* ---- lifecycle ------------------------------------------------------------- */
tg_status tg__optim_sync(tg_optim *o) {
    int n = tg_params_count(o->params);
    if (n <= o->n_ps) return TG_OK;
    tg_optim_pstate *grown = realloc(o->ps, (size_t)n * sizeof *grown);
    if (!grown) {
        tg__set_last_error(TG_ERR_NOMEM, "optim: out of memory");
        return TG_ERR_NOMEM;
    }
    tg__count_alloc();
    memset(grown + o->n_ps, 0, (size_t)(n - o->n_ps) * sizeof *grown);
    o->ps = grown;
    o->n_ps = n;
    return TG_OK;
}

tg_optim *tg_optim_new_ex(tg_optim_kind k, tg_params *p, const tg_optim_opts *opts) {
    if (!p) {
        tg__set_last_error(TG_ERR_ARG, "optim_new: parameter registry is NULL");
        return NULL;
    }
    tg_optim_opts g = opts ? *opts : tg_optim_defaults(k);
    if (tg__optim_check_opts("optim_new", k, &g) != TG_OK) return NULL;
    tg_optim *o = tg__calloc(1, sizeof *o);
    if (o) o->groups = tg__malloc(4 * sizeof *o->groups);
    if (!o || !o->groups) {
        free(o);
        tg__set_last_error(TG_ERR_NOMEM, "optim_new: out of memory");
        return NULL;
    }
    o->kind = k;
    o->params = p;
    o->groups[0] = g;
    o->n_groups = 1;
    o->cap_groups = 4;
    if (tg__optim_sync(o) != TG_OK) {
        tg_optim_free(o);
        return NULL;
    }
    return o;
}

tg_optim *tg_optim_new(tg_optim_kind k, tg_params *p, double lr) {
    tg_optim_opts g = tg_optim_defaults(k);
    g.lr = lr;
    return tg_optim_new_ex(k, p, &g);
}

void tg_optim_free(tg_optim *o) {
    if (!o) return;
    for (int i = 0; i < o->n_ps; i++)
        for (int s = 0; s < TG_OPTIM_SLOTS; s++) free(o->ps[i].slot[s]);
    free(o->ps);
    free(o->groups);
    free(o);
}

/* ---- groups ------------------------------------------------------------------ */
int tg_optim_add_group_ex(tg_optim *o, const char *pattern, const tg_optim_opts *g) {
    if (!o || !pattern || !g) {
        tg__set_last_error(TG_ERR_ARG,
                           "optim_add_group: optimizer, pattern and options are required");
        return -1;
    }
    if (tg__optim_check_opts("optim_add_group", o->kind, g) != TG_OK) return -1;
    if (tg__optim_sync(o) != TG_OK) return -1;
    int matches = 0;
    for (int i = 0; i < o->n_ps; i++)
        matches += fnmatch(pattern, tg_params_name(o->params, i), 0) == 0;
    if (matches == 0) {
        tg__set_last_error(TG_ERR_ARG, "optim_add_group: no parameter name matches '%s'", pattern);
        return -1;
    }
    if (o->n_groups == o->cap_groups) {
        tg_optim_opts *grown = realloc(o->groups, (size_t)o->cap_groups * 2 * sizeof *grown);
        if (!grown) {
            tg__set_last_error(TG_ERR_NOMEM, "optim_add_group: out of memory");
            return -1;
        }
        tg__count_alloc();
        o->groups = grown;
        o->cap_groups *= 2;
    }
    int gi = o->n_groups++;
    o->groups[gi] = *g;
    for (int i = 0; i < o->n_ps; i++)
        if (fnmatch(pattern, tg_params_name(o->params, i), 0) == 0) o->ps[i].group = gi;
    return gi;
}

int tg_optim_add_group(tg_optim *o, const char *pattern, double lr, double weight_decay) {
    if (!o) return tg_optim_add_group_ex(NULL, pattern, NULL);
    tg_optim_opts g = o->groups[0];
    g.lr = lr;
    g.weight_decay = weight_decay;
    return tg_optim_add_group_ex(o, pattern, &g);
}

tg_optim_kind tg_optim_kind_of(const tg_optim *o) { return o ? o->kind : TG_OPTIM_SGD; }
int tg_optim_group_count(const tg_optim *o) { return o ? o->n_groups : 0; }
tg_params *tg_optim_params(const tg_optim *o) { return o ? o->params : NULL; }
int64_t tg_optim_steps(const tg_optim *o) { return o ? o->steps : 0; }

int tg_optim_param_group(const tg_optim *o, int i) {
    if (!o || i < 0 || i >= tg_params_count(o->params)) return -1;
    return i < o->n_ps ? o->ps[i].group : 0;
}

tg_optim_opts tg_optim_group_opts(const tg_optim *o, int group) {
    tg_optim_opts none = {0};
    return (o && group >= 0 && group < o->n_groups) ? o->groups[group] : none;
}

double tg_optim_lr(const tg_optim *o, int group) {
    return (o && group >= 0 && group < o->n_groups) ? o->groups[group].lr : NAN;
}

tg_status tg_optim_set_lr(tg_optim *o, int group, double lr) {
    if (!o || group < -1 || group >= o->n_groups || !isfinite(lr) || lr < 0) {
        tg__set_last_error(TG_ERR_ARG, "optim_set_lr: bad group %d or lr %g", group,
                           lr);
        return TG_ERR_ARG;
    }
    for (int gi = 0; gi < o->n_groups; gi++)
        if (group == -1 || gi == group) o->groups[gi].lr = lr;
    return TG_OK;
}

void tg_optim_zero_grad(tg_optim *o) {
    if (o) tg_params_zero_grad(o->params);
}

/* ---- update kernels (optim_kernels.h; s[k] is slot k or NULL) ------------------ */
typedef struct upd_ctx {
    const tg_optim_opts *h;
    int64_t t;          /* this parameter's step count, after the increment */
    bool first;         /* SGD: the momentum buffer was None                */
    bool decoupled;     /* AdamW                                            */
} upd_ctx;

/* Each kernel is compiled for AVX-512, AVX2 and baseline x86-64, picked at
 * load time (as ops/ does for its elementwise kernels). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define TG_OPTIM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TG_OPTIM_CLONES
#endif
#define TG_OPTIM_SIMD _Pragma("omp simd")

#define REAL double
#define K(name) name##_f64
#include "optim_kernels.h"
#undef REAL
#undef K
#define REAL float
#define K(name) name##_f32
#include "optim_kernels.h"
#undef REAL
#undef K

typedef void (*kernel_f64)(const upd_ctx *c, int64_t n, double *p, const double *g, double **s);
typedef void (*kernel_f32)(const upd_ctx *c, int64_t n, float *p, const float *g, float **s);

static const kernel_f64 kernels_f64[] = {
    [TG_OPTIM_SGD] = sgd_f64,         [TG_OPTIM_RMSPROP] = rmsprop_f64,
    [TG_OPTIM_ADAM] = adam_f64,       [TG_OPTIM_ADAMW] = adam_f64,
    [TG_OPTIM_ADAGRAD] = adagrad_f64, [TG_OPTIM_ADADELTA] = adadelta_f64,
};
static const kernel_f32 kernels_f32[] = {
    [TG_OPTIM_SGD] = sgd_f32,         [TG_OPTIM_RMSPROP] = rmsprop_f32,
    [TG_OPTIM_ADAM] = adam_f32,       [TG_OPTIM_ADAMW] = adam_f32,
    [TG_OPTIM_ADAGRAD] = adagrad_f32, [TG_OPTIM_ADADELTA] = adadelta_f32,
};

/* Which slots a group's settings use. */
static void slots_needed(tg_optim_kind k, const tg_optim_opts *h, bool need[TG_OPTIM_SLOTS]) {
    need[0] = need[1] = need[2] = false;
    switch (k) {
    case TG_OPTIM_SGD: need[0] = h->momentum != 0; break;
    case TG_OPTIM_RMSPROP: need[0] = true, need[1] = h->momentum > 0, need[2] = h->centered; break;
    case TG_OPTIM_ADAM:
    case TG_OPTIM_ADAMW: need[0] = need[1] = true, need[2] = h->amsgrad; break;
    case TG_OPTIM_ADAGRAD: need[0] = true; break;
    case TG_OPTIM_ADADELTA: need[0] = need[1] = true; break;
    }
}

static void fill(void *buf, tg_dtype dt, int64_t n, double v) {
    for (int64_t i = 0; i < n; i++) {
        if (dt == TG_F64)
            ((double *)buf)[i] = v;
        else
            ((float *)buf)[i] = (float)v;
    }
}

static bool updatable(tg_tensor *t) { return t && t->grad && tg__is_float(t->dtype); }

/* Allocate every missing slot first, so an allocation failure changes nothing. */
static tg_status alloc_slots(tg_optim *o) {
    for (int i = 0; i < o->n_ps; i++) {
        tg_tensor *t = tg_params_at(o->params, i);
        if (!updatable(t)) continue;
        const tg_optim_opts *h = &o->groups[o->ps[i].group];
        bool need[TG_OPTIM_SLOTS];
        slots_needed(o->kind, h, need);
        for (int k = 0; k < TG_OPTIM_SLOTS; k++) {
            if (!need[k] || o->ps[i].slot[k]) continue;
            void *buf = tg__calloc((size_t)t->numel, tg_dtype_size(t->dtype));
            if (!buf) {
                tg__set_last_error(TG_ERR_NOMEM, "optim_step: out of memory");
                return TG_ERR_NOMEM;
            }
            if (o->kind == TG_OPTIM_ADAGRAD)
                fill(buf, t->dtype, t->numel, h->initial_accumulator_value);
            o->ps[i].slot[k] = buf;
            o->ps[i].fresh |= (uint8_t)(1u << k);
        }
    }
    return TG_OK;
}

tg_status tg_optim_step(tg_optim *o) {
    if (!o) {
        tg__set_last_error(TG_ERR_ARG, "optim_step: optimizer is NULL");
        return TG_ERR_ARG;
    }
    tg_status st = tg__optim_sync(o);
    if (st == TG_OK) st = alloc_slots(o);
    if (st != TG_OK) return st;
    for (int i = 0; i < o->n_ps; i++) {
        tg_tensor *t = tg_params_at(o->params, i);
        if (!updatable(t)) continue;
        tg_optim_pstate *ps = &o->ps[i];
        upd_ctx c = {.h = &o->groups[ps->group], .t = ++ps->step,
                     .first = ps->fresh & 1, .decoupled = o->kind == TG_OPTIM_ADAMW};
        ps->fresh = 0;
        if (t->dtype == TG_F64) {
            double *s[TG_OPTIM_SLOTS] = {ps->slot[0], ps->slot[1], ps->slot[2]};
            kernels_f64[o->kind](&c, t->numel, t->data, t->grad, s);
        } else {
            float *s[TG_OPTIM_SLOTS] = {ps->slot[0], ps->slot[1], ps->slot[2]};
            kernels_f32[o->kind](&c, t->numel, t->data, t->grad, s);
        }
    }
    o->steps++;
    return TG_OK;
}
