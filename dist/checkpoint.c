/* dist/checkpoint.c - checkpoints of a data-parallel run (dist.h): rank 0
 * writes io.h's crash-safe file, every rank resumes from its bytes.
 *
 * Row-split carries (tg_dist_carry.rows) are gathered into whole tensors on
 * rank 0 before the save and cut back into each rank's rows after a load, so
 * the file holds what one process with the whole batch would hold.
 *
 * Every function runs the same collectives on every rank whatever failed
 * locally, and ends with the ranks agreeing on the outcome, so no rank waits
 * for a call another rank skipped. */
#define _POSIX_C_SOURCE 200809L
#include "dist_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t bytes_of(const tg_tensor *t) {
    return (size_t)tg_tensor_numel(t) * tg_dtype_size(tg_tensor_dtype(t));
}

/* ---- whole tensors for the row-split carries -------------------------------------------- */
/* A tensor N times as tall as rows carry t (same dtype), into all under name. */
static tg_status add_whole(const tg_dist *d, tg_params *all, const char *name, const tg_tensor *t,
                           const char *what) {
    int nd = tg_tensor_ndim(t);
    if (nd < 1)
        return tg_set_last_error(TG_ERR_ARG, "%s: row-split carry '%s' has no rows (0 dims)",
                                 what, name);
    int64_t shape[TG_MAX_DIMS];
    memcpy(shape, tg_tensor_shape(t), (size_t)nd * sizeof shape[0]);
    shape[0] *= d->size;   /* <= 2^40 * 2^31: no overflow; tg_params_create checks the size */
    tg_tensor *whole = tg_params_create(all, name, tg_tensor_dtype(t), nd, shape);
    if (!whole) return tg_last_status();
    tg_tensor_set_requires_grad(whole, false);
    return TG_OK;
}

/* What the file holds besides the model: the shared carries and, for each
 * rows carry, a whole tensor of the same name. NULL after an error. */
static tg_params *whole_carries(const tg_dist *d, const tg_dist_carry *c, const char *what) {
    tg_params *all = tg_params_new();
    tg_status st = all ? TG_OK : TG_ERR_NOMEM;
    for (int i = 0; i < tg_params_count(c->shared) && st == TG_OK; i++)
        st = tg_params_add(all, tg_params_name(c->shared, i), tg_params_at(c->shared, i));
    for (int i = 0; i < tg_params_count(c->rows) && st == TG_OK; i++)
        st = add_whole(d, all, tg_params_name(c->rows, i), tg_params_at(c->rows, i), what);
    if (st == TG_OK) return all;
    tg_params_free(all);
    return NULL;
}

/* The registry's entry for rows carry i (after the shared ones). */
static tg_tensor *whole_of(const tg_params *all, const tg_dist_carry *c, int i) {
    return tg_params_at(all, tg_params_count(c->shared) + i);
}

static tg_status check_carry_layouts(const tg_dist *d, const tg_dist_carry *c, const char *what) {
    tg_status st = tgd_same_layout(d, c->shared, false, what);
    if (st == TG_OK) st = tgd_same_layout(d, c->rows, false, what);
    for (int i = 0; i < tg_params_count(c->rows) && st == TG_OK; i++)
        if (bytes_of(tg_params_at(c->rows, i)) > (size_t)2147483647)
            st = tg_set_last_error(TG_ERR_ARG, "%s: row-split carry '%s' holds over 2 GiB per rank",
                                   what, tg_params_name(c->rows, i));
    return st;
}

/* Rank 0's whole tensors get every rank's rows, in rank order. */
static tg_status gather_rows(const tg_dist *d, const tg_dist_carry *c, tg_params *all) {
    for (int i = 0; i < tg_params_count(c->rows); i++) {
        tg_tensor *mine = tg_params_at(c->rows, i);
        int n = (int)bytes_of(mine);   /* < 2^31: check_carry_layouts */
        void *into = d->rank == 0 ? tg_tensor_data(whole_of(all, c, i)) : NULL;
        MPI_Request req;
        int rc = MPI_Igather(tg_tensor_data(mine), n, MPI_BYTE, into, n, MPI_BYTE, 0, d->comm, &req);
        tg_status st = rc == MPI_SUCCESS ? tgd_wait(d, &req, "checkpoint_save (gathering carries)")
                                         : tgd_mpi_fail(rc, "checkpoint_save");
        if (st != TG_OK) return st;
    }
    return TG_OK;
}

/* ---- saving ----------------------------------------------------------------------------------- */
tg_status tg_dist_checkpoint_save(tg_dist *d, const char *path, const tg_params *p,
                                  const tg_optim *o, const tg_sched *s, const tg_train_state *ts,
                                  const tg_dist_carry *c) {
    if (!d || !path || !p)
        return tg_set_last_error(TG_ERR_ARG, "checkpoint_save: dist, path and params are required");
    const tg_dist_carry none = {0};
    c = c ? c : &none;
    tg_status st = tg_dist_check_params(d, p);   /* agreed by every rank */
    if (st == TG_OK) st = check_carry_layouts(d, c, "checkpoint_save");
    if (st != TG_OK) return st;
    tg_params *all = NULL;
    if (d->rank == 0 && !(all = whole_carries(d, c, "checkpoint_save"))) st = tg_last_status();
    st = tgd_agree(d, d->comm, st, "checkpoint_save");
    if (st == TG_OK && (st = gather_rows(d, c, all)) == TG_OK) {
        if (d->rank == 0) {
            tg_checkpoint_extra x = {.carry = all};
            st = tg_checkpoint_save_ex(path, p, o, s, ts, &x);
        }
        st = tgd_agree(d, d->comm, st, "checkpoint_save");
    }
    tg_params_free(all);
    return st;
}

/* ---- loading ---------------------------------------------------------------------------------- */
/* The whole file into memory, on rank 0. */
static void *read_whole(const char *path, size_t *len) {
    int fd = tg_file_open(path, "checkpoint");
    if (fd < 0) return NULL;
    struct stat sb;
    char *buf = NULL;
    if (fstat(fd, &sb) != 0 || sb.st_size < 0) {
        tg_set_last_error(TG_ERR_IO, "checkpoint: %s: %s", path, strerror(errno));
    } else if (!(buf = malloc((size_t)sb.st_size + 1))) {
        tg_set_last_error(TG_ERR_NOMEM, "checkpoint: %s: out of memory (%lld bytes)", path,
                          (long long)sb.st_size);
    } else {
        size_t at = 0, want = (size_t)sb.st_size;
        while (at < want) {
            ssize_t got = read(fd, buf + at, want - at);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) break;
            at += (size_t)got;
        }
        if (at != want) {
            tg_set_last_error(TG_ERR_IO, "checkpoint: %s: read %zu of %zu bytes", path, at, want);
            free(buf);
            buf = NULL;
        }
        if (buf) *len = want;
    }
    close(fd);
    return buf;
}

tg_safetensors *tg_dist_safetensors_open(tg_dist *d, const char *path) {
    if (!d) {
        tg_set_last_error(TG_ERR_ARG, "safetensors_open: dist is NULL");
        return NULL;
    }
    const char *what = "safetensors_open";
    size_t n = 0;
    void *bytes = NULL;
    tg_safetensors *f = NULL;
    tg_status st = TG_OK;
    if (d->rank == 0 && !(bytes = read_whole(path, &n))) st = tg_last_status();
    if (tgd_agree(d, d->comm, st, what) != TG_OK) return NULL;
    uint64_t len = n;
    if (tgd_bcast_bytes(d, &len, sizeof len, what) != TG_OK) goto fail;
    if (d->rank != 0 && !(bytes = malloc((size_t)len + 1)))
        st = tg_set_last_error(TG_ERR_NOMEM, "out of memory (%llu bytes)", (unsigned long long)len);
    if (tgd_agree(d, d->comm, st, what) != TG_OK) goto fail;
    if (tgd_bcast_bytes(d, bytes, (size_t)len, what) != TG_OK) goto fail;
    f = tg_safetensors_parse(bytes, (size_t)len);
    if (tgd_agree(d, d->comm, f ? TG_OK : tg_last_status(), what) != TG_OK) goto fail;
    free(bytes);
    return f;
fail:   /* the error is in tg_last_error() */
    free(bytes);
    tg_safetensors_close(f);
    return NULL;
}

/* Each rank's rows of the whole tensors into its row-split carries. */
static void take_rows(const tg_dist *d, const tg_dist_carry *c, const tg_params *all) {
    for (int i = 0; i < tg_params_count(c->rows); i++) {
        tg_tensor *mine = tg_params_at(c->rows, i);
        size_t n = bytes_of(mine);
        memcpy(tg_tensor_data(mine),
               (const char *)tg_tensor_cdata(whole_of(all, c, i)) + (size_t)d->rank * n, n);
    }
}

tg_status tg_dist_checkpoint_load_from(tg_dist *d, const tg_safetensors *f, tg_params *p,
                                       tg_optim *o, tg_sched *s, tg_train_state *ts,
                                       const tg_dist_carry *c) {
    if (!d) return tg_set_last_error(TG_ERR_ARG, "checkpoint_load: dist is NULL");
    const tg_dist_carry none = {0};
    c = c ? c : &none;
    tg_status st = check_carry_layouts(d, c, "checkpoint_load");
    if (st != TG_OK) return st;
    tg_params *all = whole_carries(d, c, "checkpoint_load");
    if (!all) st = tg_last_status();
    tg_checkpoint_extra x = {.carry = all};
    if (st == TG_OK) st = tg_checkpoint_load_from_ex(f, p, o, s, ts, &x);
    if (st == TG_OK) take_rows(d, c, all);
    tg_params_free(all);
    return tgd_agree(d, d->comm, st, "checkpoint_load");
}

tg_status tg_dist_checkpoint_load(tg_dist *d, const char *path, tg_params *p, tg_optim *o,
                                  tg_sched *s, tg_train_state *ts, const tg_dist_carry *c) {
    tg_safetensors *f = tg_dist_safetensors_open(d, path);
    if (!f) return tg_last_status();
    tg_status st = tg_dist_checkpoint_load_from(d, f, p, o, s, ts, c);
    tg_safetensors_close(f);
    return st;
}
