/* examples/common_dist.c - data-parallel runs for the examples (common.h:
 * ex_dist_*), over tapegrad/dist.h when the build has MPI (EX_HAVE_DIST).
 * Alone, each call does what one process did before. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stdlib.h>
#include <string.h>

#ifdef EX_HAVE_DIST
#include <tapegrad/dist.h>
#endif

bool ex_dist_root(const ex_dist *x) { return x->rank == 0; }

int ex_dist_shard(const ex_dist *x, const char *prog, int64_t B, int64_t *first, int64_t *n) {
    if (B % x->size) {   /* the same on every rank: rank 0 says it */
        if (x->rank == 0)
            fprintf(stderr, "%s: --batch %lld does not split over %d ranks: use a multiple of %d\n",
                    prog, (long long)B, x->size, x->size);
        return 2;
    }
    *n = B / x->size;
    *first = x->rank * *n;
    return 0;
}

/* Alone, a checkpoint's carries are one registry: shared and rows together. */
static tg_params *all_carries(tg_params *shared, tg_params *rows) {
    tg_params *all = tg_params_new();
    tg_status st = all ? TG_OK : TG_ERR_NOMEM;
    for (int k = 0; k < 2; k++) {
        tg_params *part = k ? rows : shared;
        for (int i = 0; i < tg_params_count(part) && st == TG_OK; i++)
            st = tg_params_add(all, tg_params_name(part, i), tg_params_at(part, i));
    }
    if (st == TG_OK) return all;
    tg_params_free(all);
    return NULL;
}

static tg_status save_alone(const char *path, const tg_params *p, const tg_optim *o,
                            const tg_sched *s, const tg_train_state *ts, tg_params *shared,
                            tg_params *rows) {
    tg_params *all = all_carries(shared, rows);
    if (!all) return tg_last_status();
    tg_checkpoint_extra x = {.carry = all};
    tg_status st = tg_checkpoint_save_ex(path, p, o, s, ts, &x);
    tg_params_free(all);
    return st;
}

static tg_status load_alone(const tg_safetensors *f, tg_params *p, tg_optim *o, tg_sched *s,
                            tg_train_state *ts, tg_params *shared, tg_params *rows) {
    tg_params *all = all_carries(shared, rows);
    if (!all) return tg_last_status();
    tg_checkpoint_extra x = {.carry = all};
    tg_status st = tg_checkpoint_load_from_ex(f, p, o, s, ts, &x);
    tg_params_free(all);
    return st;
}

#ifdef EX_HAVE_DIST
/* ---- across ranks ---------------------------------------------------------------------------- */
int ex_dist_start(ex_dist *x, const ex_dist_opts *o, const char *prog, int *argc, char ***argv) {
    *x = (ex_dist){.rank = 0, .size = 1, .o = *o};
    if (!o->on && !ex_under_mpi_launcher()) return 0;
    x->d = tg_dist_init(argc, argv, &(tg_dist_opts){.timeout_seconds = o->timeout});
    if (!x->d) return fprintf(stderr, "%s: --dist: %s\n", prog, tg_last_error()), 1;
    x->rank = tg_dist_rank(x->d), x->size = tg_dist_size(x->d);
    if (x->rank != 0 && !freopen("/dev/null", "w", stdout))   /* only rank 0 prints */
        return fprintf(stderr, "%s: rank %d: cannot silence its output\n", prog, x->rank), 1;
    return 0;
}

int ex_dist_end(ex_dist *x, int rc) {
    ex_dist_detach(x);
    if (x->d && rc != 0) tg_dist_abort(x->d, rc);
    tg_dist_free(x->d);
    x->d = NULL;
    return rc;
}

int ex_dist_attach(ex_dist *x, tg_params *p, tg_tape *tp) {
    if (!x->d) return 0;
    tg_dist_reducer_opts ro = {.bucket_bytes = (size_t)x->o.bucket_kb * 1024,
                               .no_overlap = x->o.no_overlap};
    if (tg_dist_broadcast_params(x->d, p) != TG_OK || !(x->r = tg_dist_reducer_new(x->d, p, tp, &ro)))
        return fprintf(stderr, "error: rank %d: %s\n", x->rank, tg_last_error()), 1;
    return 0;
}

void ex_dist_detach(ex_dist *x) {
    tg_dist_reducer_free(x->r);
    x->r = NULL;
}

tg_status ex_dist_sync(ex_dist *x, tg_tape *tp) {
    if (!x->r) return tg_tape_status(tp);
    tg_status st = tg_dist_reducer_sync(x->r);
    if (st != TG_OK) tg_fail(tp, st, "dist", "%s", tg_last_error());   /* a tape error stays first */
    return st;
}

void ex_dist_mean(ex_dist *x, double *v, int n) {
    if (x->d && tg_dist_average(x->d, v, n) != TG_OK)
        for (int i = 0; i < n; i++) v[i] = NAN;   /* ends the run at ex_loss_ok */
}

tg_rng *ex_dist_step_rng(ex_dist *x, tg_rng *shared, tg_rng *own) {
    if (!x->d) return shared;
    *own = tg_dist_rank_rng(x->d, shared);
    return own;
}

tg_status ex_dist_save(ex_dist *x, const char *path, const tg_params *p, const tg_optim *o,
                       const tg_sched *s, const tg_train_state *ts, tg_params *shared,
                       tg_params *rows) {
    if (!x->d) return save_alone(path, p, o, s, ts, shared, rows);
    tg_dist_carry c = {.shared = shared, .rows = rows};
    return tg_dist_checkpoint_save(x->d, path, p, o, s, ts, &c);
}

tg_safetensors *ex_dist_open(ex_dist *x, const char *path) {
    return x->d ? tg_dist_safetensors_open(x->d, path) : tg_safetensors_open(path);
}

tg_status ex_dist_load_from(ex_dist *x, const tg_safetensors *f, tg_params *p, tg_optim *o,
                            tg_sched *s, tg_train_state *ts, tg_params *shared, tg_params *rows) {
    if (!x->d) return load_alone(f, p, o, s, ts, shared, rows);
    tg_dist_carry c = {.shared = shared, .rows = rows};
    return tg_dist_checkpoint_load_from(x->d, f, p, o, s, ts, &c);
}

void ex_dist_report(const ex_dist *x) {
    if (!x->r) return;
    tg_dist_reducer_stats s;
    tg_dist_reducer_stats_get(x->r, &s);
    double n = s.syncs > 0 ? (double)s.syncs : 1;
    printf("dist: %d ranks; %d allreduce bucket(s), %.2f MB of gradients per step; per step "
           "%.3f ms in the sync (communication not hidden), %.3f ms packing during backward; "
           "%.0f%% of allreduces started during backward\n", x->size, s.buckets,
           (double)s.bytes / 1e6, 1e3 * s.sync_seconds / n, 1e3 * s.backward_seconds / n,
           s.buckets ? 100.0 * (double)s.started_in_backward / (n * s.buckets) : 0.0);
}

#else
/* ---- a build without MPI ---------------------------------------------------------------------- */
int ex_dist_start(ex_dist *x, const ex_dist_opts *o, const char *prog, int *argc, char ***argv) {
    (void)argc, (void)argv;
    *x = (ex_dist){.rank = 0, .size = 1, .o = *o};
    if (!o->on && !ex_under_mpi_launcher()) return 0;
    fprintf(stderr, "%s: %s, but this build has no MPI: apt-get install libopenmpi-dev "
            "openmpi-bin, then meson setup --reconfigure and rebuild\n", prog,
            o->on ? "--dist asks for data-parallel training" : "launched by mpirun");
    return 2;
}

int ex_dist_end(ex_dist *x, int rc) {
    (void)x;
    return rc;
}

int ex_dist_attach(ex_dist *x, tg_params *p, tg_tape *tp) {
    (void)x, (void)p, (void)tp;
    return 0;
}

void ex_dist_detach(ex_dist *x) { (void)x; }

tg_status ex_dist_sync(ex_dist *x, tg_tape *tp) {
    (void)x;
    return tg_tape_status(tp);
}

void ex_dist_mean(ex_dist *x, double *v, int n) { (void)x, (void)v, (void)n; }

tg_rng *ex_dist_step_rng(ex_dist *x, tg_rng *shared, tg_rng *own) {
    (void)x, (void)own;
    return shared;
}

tg_status ex_dist_save(ex_dist *x, const char *path, const tg_params *p, const tg_optim *o,
                       const tg_sched *s, const tg_train_state *ts, tg_params *shared,
                       tg_params *rows) {
    (void)x;
    return save_alone(path, p, o, s, ts, shared, rows);
}

tg_safetensors *ex_dist_open(ex_dist *x, const char *path) {
    (void)x;
    return tg_safetensors_open(path);
}

tg_status ex_dist_load_from(ex_dist *x, const tg_safetensors *f, tg_params *p, tg_optim *o,
                            tg_sched *s, tg_train_state *ts, tg_params *shared, tg_params *rows) {
    (void)x;
    return load_alone(f, p, o, s, ts, shared, rows);
}

void ex_dist_report(const ex_dist *x) { (void)x; }
#endif
