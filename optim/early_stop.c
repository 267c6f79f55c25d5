/* optim/early_stop.c - stop when a validation metric stops improving, and
 * keep the best parameters (Keras' EarlyStopping, restore_best_weights). */
#include "optim_internal.h"
#include "tapegrad/io.h"   /* the best parameters on disk */

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct tg_early_stop {
    tg_params *p;
    tg_early_stop_opts o;
    char *path;             /* owned copy of o.path                          */
    double best;
    int64_t best_epoch, epoch, wait;
    tg_tensor **snap;       /* in-memory copies, one per parameter           */
    int n_snap;
};

tg_early_stop *tg_early_stop_new(tg_params *p, const tg_early_stop_opts *o) {
    tg_early_stop_opts opts = o ? *o : (tg_early_stop_opts){0};
    if (!p || !(opts.min_delta >= 0) || !isfinite(opts.min_delta) || opts.patience < 0) {
        tg__set_last_error(TG_ERR_ARG,
                           "early_stop_new: need a registry, min_delta >= 0 (got %g) "
                           "and patience >= 0 (got %lld)",
                           opts.min_delta, (long long)opts.patience);
        return NULL;
    }
    tg_early_stop *e = tg__calloc(1, sizeof *e);
    if (!e) goto nomem;
    e->p = p;
    e->o = opts;
    if (opts.path) {
        size_t n = strlen(opts.path) + 1;
        e->path = tg__malloc(n);
        if (!e->path) goto nomem;
        memcpy(e->path, opts.path, n);
    }
    e->o.path = e->path;
    e->best = opts.maximize ? -INFINITY : INFINITY;
    e->best_epoch = -1;
    return e;
nomem:
    free(e);
    tg__set_last_error(TG_ERR_NOMEM, "early_stop_new: out of memory");
    return NULL;
}

static void drop_snapshot(tg_early_stop *e) {
    for (int i = 0; i < e->n_snap; i++) tg_tensor_free(e->snap[i]);
    free(e->snap);
    e->snap = NULL;
    e->n_snap = 0;
}

void tg_early_stop_free(tg_early_stop *e) {
    if (!e) return;
    drop_snapshot(e);
    free(e->path);
    free(e);
}

/* Copy every parameter into the snapshot, (re)allocating it when the
 * registry changed size. */
static tg_status snapshot(tg_early_stop *e) {
    if (e->path) return tg_params_save(e->p, e->path);
    int n = tg_params_count(e->p);
    if (n != e->n_snap) {
        drop_snapshot(e);
        e->snap = tg__calloc((size_t)(n ? n : 1), sizeof *e->snap);
        if (!e->snap) goto nomem;
        e->n_snap = n;
        for (int i = 0; i < n; i++) {
            tg_tensor *t = tg_params_at(e->p, i);
            e->snap[i] = tg_tensor_clone(t, t->dtype);
            if (!e->snap[i]) goto nomem;
        }
        return TG_OK;
    }
    for (int i = 0; i < n; i++) tg_tensor_copy(e->snap[i], tg_params_at(e->p, i));
    return TG_OK;
nomem:
    drop_snapshot(e);
    tg__set_last_error(TG_ERR_NOMEM, "early_stop_update: out of memory");
    return TG_ERR_NOMEM;
}

tg_status tg_early_stop_update(tg_early_stop *e, double metric, bool *stop) {
    if (!e) {
        tg__set_last_error(TG_ERR_ARG, "early_stop_update: early stop is NULL");
        return TG_ERR_ARG;
    }
    int64_t epoch = e->epoch++;
    bool better = e->o.maximize ? metric - e->o.min_delta > e->best
                                : metric + e->o.min_delta < e->best;
    tg_status st = TG_OK;
    if (better) {
        st = snapshot(e);
        if (st == TG_OK) {
            e->best = metric;
            e->best_epoch = epoch;
            e->wait = 0;
        }
    } else {
        e->wait++;
    }
    if (stop) *stop = e->wait >= e->o.patience && !better;
    return st;
}

tg_status tg_early_stop_restore(tg_early_stop *e) {
    if (!e || e->best_epoch < 0) {
        tg__set_last_error(TG_ERR_STATE, "early_stop_restore: no best parameters recorded yet");
        return TG_ERR_STATE;
    }
    if (e->path) return tg_params_load(e->p, e->path);
    if (e->n_snap != tg_params_count(e->p)) {
        tg__set_last_error(TG_ERR_STATE, "early_stop_restore: the registry has %d parameters, "
                           "the snapshot %d", tg_params_count(e->p), e->n_snap);
        return TG_ERR_STATE;
    }
    for (int i = 0; i < e->n_snap; i++) tg_tensor_copy(tg_params_at(e->p, i), e->snap[i]);
    return TG_OK;
}

double tg_early_stop_best(const tg_early_stop *e) { return e ? e->best : NAN; }
int64_t tg_early_stop_best_epoch(const tg_early_stop *e) { return e ? e->best_epoch : -1; }
