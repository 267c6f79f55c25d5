/* dist/dist.c - the MPI context: start and end, waits with a deadline, ranks
 * agreeing on errors, parameter broadcast and comparison, averages, per-rank
 * random streams. Gradient averaging is in reducer.c, checkpoints in
 * checkpoint.c. */
#define _POSIX_C_SOURCE 200809L
#include "dist_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

/* A wait polls its request. For the first YIELD_SECONDS it gives the core
 * away between polls only if another thread wants it (sched_yield): a large
 * allreduce moves in many small pieces, each needing a poll on both sides,
 * so sleeping between polls would stretch it many times over (1 MB between
 * two ranks here: 6 ms with 100 us naps, under 1 ms polling). A longer wait
 * (a rank evaluating or writing a checkpoint while the others wait) naps,
 * from NAP_MIN_NS up to NAP_MAX_NS, so it leaves the core alone. */
#define YIELD_SECONDS 0.02
enum { NAP_MIN_NS = 50000, NAP_MAX_NS = 1000000 };
/* Largest piece of a broadcast: MPI counts are int. */
#define BCAST_PIECE ((size_t)1 << 30)

double tgd_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

tg_status tgd_mpi_fail(int mpi_rc, const char *what) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(mpi_rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", mpi_rc);
    return tg_set_last_error(TG_ERR_IO, "%s: MPI error: %s", what, text);
}

tg_status tgd_wait(const tg_dist *d, MPI_Request *req, const char *what) {
    double start = tgd_now();
    long nap = NAP_MIN_NS;
    for (;;) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return tgd_mpi_fail(rc, what);
        if (done) return TG_OK;
        double waited = tgd_now() - start;
        if (d->timeout >= 0 && waited > d->timeout)
            return tg_set_last_error(TG_ERR_STATE,
                                     "%s: no answer from the other ranks after %.0f s: a rank "
                                     "failed or stalls (end the job: tg_dist_abort)", what, waited);
        if (waited < YIELD_SECONDS) {
            sched_yield();
            continue;
        }
        nanosleep(&(struct timespec){0, nap}, NULL);
        nap = nap * 2 > NAP_MAX_NS ? NAP_MAX_NS : nap * 2;
    }
}

/* ---- start and end ------------------------------------------------------------------- */
tg_dist *tg_dist_new(MPI_Comm comm, const tg_dist_opts *o) {
    int ready = 0, ended = 0;
    MPI_Initialized(&ready);
    MPI_Finalized(&ended);
    if (!ready || ended) {
        tg_set_last_error(TG_ERR_STATE, "dist_new: MPI is %s (use tg_dist_init)",
                          ended ? "finalised already" : "not initialised");
        return NULL;
    }
    double timeout = o ? o->timeout_seconds : 0;
    if (isnan(timeout)) {
        tg_set_last_error(TG_ERR_ARG, "dist_new: timeout_seconds is NaN");
        return NULL;
    }
    tg_dist *d = calloc(1, sizeof *d);
    if (!d) {
        tg_set_last_error(TG_ERR_NOMEM, "dist_new: out of memory");
        return NULL;
    }
    d->timeout = timeout == 0 ? TGD_DEFAULT_TIMEOUT : timeout < 0 ? -1 : timeout;
    int rc = MPI_Comm_dup(comm, &d->comm);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(d->comm, &d->rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(d->comm, &d->size);
    if (rc != MPI_SUCCESS) {
        tgd_mpi_fail(rc, "dist_new");
        free(d);
        return NULL;
    }
    return d;
}

tg_dist *tg_dist_init(int *argc, char ***argv, const tg_dist_opts *o) {
    int ready = 0, ended = 0, provided = 0;
    MPI_Initialized(&ready);
    MPI_Finalized(&ended);
    if (!ready && !ended) {
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) {
            tgd_mpi_fail(rc, "dist_init");
            return NULL;
        }
    }
    tg_dist *d = tg_dist_new(MPI_COMM_WORLD, o);
    if (d) d->finalize = !ready;
    else if (!ready && !ended) MPI_Finalize();
    return d;
}

void tg_dist_free(tg_dist *d) {
    if (!d) return;
    MPI_Comm_free(&d->comm);
    if (d->finalize) MPI_Finalize();
    free(d);
}

int tg_dist_rank(const tg_dist *d) { return d ? d->rank : -1; }
int tg_dist_size(const tg_dist *d) { return d ? d->size : 0; }

void tg_dist_abort(tg_dist *d, int code) {
    fflush(NULL);
    MPI_Abort(d ? d->comm : MPI_COMM_WORLD, code);
}

/* ---- agreeing ---------------------------------------------------------------------------- */
tg_status tgd_agree(const tg_dist *d, MPI_Comm comm, tg_status mine, const char *what) {
    struct { int status; char msg[TGD_MSG]; } note = {(int)mine, ""};
    if (mine != TG_OK) snprintf(note.msg, sizeof note.msg, "%s", tg_last_error());
    int me = mine != TG_OK ? d->rank : d->size, lowest = d->size;
    MPI_Request req;
    int rc = MPI_Iallreduce(&me, &lowest, 1, MPI_INT, MPI_MIN, comm, &req);
    tg_status st = rc == MPI_SUCCESS ? tgd_wait(d, &req, what) : tgd_mpi_fail(rc, what);
    if (st != TG_OK || lowest == d->size) return st;
    rc = MPI_Ibcast(&note, (int)sizeof note, MPI_BYTE, lowest, comm, &req);
    st = rc == MPI_SUCCESS ? tgd_wait(d, &req, what) : tgd_mpi_fail(rc, what);
    if (st != TG_OK) return st;
    note.msg[sizeof note.msg - 1] = '\0';
    /* any status the core defines (TG_ERR_NUMERIC is its last) crosses ranks as is */
    st = note.status > TG_OK && note.status <= TG_ERR_NUMERIC ? (tg_status)note.status : TG_ERR_STATE;
    return tg_set_last_error(st, "%s: rank %d failed: %s", what, lowest, note.msg);
}

tg_status tg_dist_agree(tg_dist *d, tg_status mine, const char *what) {
    if (!d) return tg_set_last_error(TG_ERR_ARG, "dist_agree: dist is NULL");
    return tgd_agree(d, d->comm, mine, what ? what : "dist_agree");
}

/* Do the ranks agree on a 64-bit value? *same gets the answer, on every rank. */
static tg_status same_everywhere(const tg_dist *d, uint64_t v, const char *what, bool *same) {
    /* The largest v and the largest ~v (= ~ the smallest v) in one allreduce. */
    uint64_t mine[2] = {v, ~v}, most[2];
    MPI_Request req;
    int rc = MPI_Iallreduce(mine, most, 2, MPI_UINT64_T, MPI_MAX, d->comm, &req);
    tg_status st = rc == MPI_SUCCESS ? tgd_wait(d, &req, what) : tgd_mpi_fail(rc, what);
    *same = st == TG_OK && most[0] == ~most[1];
    return st;
}

/* ---- hashes (FNV-1a over 64-bit words) ------------------------------------------------------ */
static uint64_t mix(uint64_t h, uint64_t word) { return (h ^ word) * 0x100000001b3ULL; }

uint64_t tgd_bytes_hash(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = mix(h, w);
    }
    for (; i < n; i++) h = mix(h, p[i]);
    return mix(h, n);
}

uint64_t tgd_layout_hash(const tg_params *p, bool trainable_only) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < tg_params_count(p); i++) {
        const tg_tensor *t = tg_params_at(p, i);
        if (trainable_only && !tg_tensor_requires_grad(t)) continue;
        const char *name = tg_params_name(p, i);
        h = mix(h, tgd_bytes_hash(name, strlen(name)));
        h = mix(h, (uint64_t)tg_tensor_dtype(t));
        for (int k = 0; k < tg_tensor_ndim(t); k++) h = mix(h, (uint64_t)tg_tensor_dim(t, k));
        h = mix(h, (uint64_t)tg_tensor_ndim(t));
    }
    return h;
}

/* ---- parameters --------------------------------------------------------------------------------- */
tg_status tgd_bcast_bytes(const tg_dist *d, void *data, size_t n, const char *what) {
    for (size_t at = 0; at < n; at += BCAST_PIECE) {
        size_t piece = n - at < BCAST_PIECE ? n - at : BCAST_PIECE;
        MPI_Request req;
        int rc = MPI_Ibcast((char *)data + at, (int)piece, MPI_BYTE, 0, d->comm, &req);
        tg_status st = rc == MPI_SUCCESS ? tgd_wait(d, &req, what) : tgd_mpi_fail(rc, what);
        if (st != TG_OK) return st;
    }
    return TG_OK;
}

static size_t bytes_of(const tg_tensor *t) {
    return (size_t)tg_tensor_numel(t) * tg_dtype_size(tg_tensor_dtype(t));
}

tg_status tgd_same_layout(const tg_dist *d, const tg_params *p, bool trainable_only,
                          const char *what) {
    bool same;
    tg_status st = same_everywhere(d, tgd_layout_hash(p, trainable_only), what, &same);
    if (st != TG_OK || same) return st;
    return tg_set_last_error(TG_ERR_STATE,
                             "%s: the parameters differ between ranks (names, dtypes or shapes; "
                             "rank %d has %d of %lld elements): build the same model on every rank",
                             what, d->rank, tg_params_count(p), (long long)tg_params_numel(p));
}

tg_status tg_dist_broadcast_params(tg_dist *d, tg_params *p) {
    if (!d || !p) return tg_set_last_error(TG_ERR_ARG, "broadcast_params: dist and params are required");
    tg_status st = tgd_same_layout(d, p, false, "broadcast_params");
    for (int i = 0; i < tg_params_count(p) && st == TG_OK; i++) {
        tg_tensor *t = tg_params_at(p, i);
        st = tgd_bcast_bytes(d, tg_tensor_data(t), bytes_of(t), "broadcast_params");
    }
    return st;
}

tg_status tg_dist_check_params(tg_dist *d, const tg_params *p) {
    if (!d || !p) return tg_set_last_error(TG_ERR_ARG, "check_params: dist and params are required");
    tg_status st = tgd_same_layout(d, p, false, "check_params");
    int n = tg_params_count(p);
    if (st != TG_OK || n == 0) return st;
    uint64_t *mine = malloc(2 * (size_t)n * sizeof *mine), *most = malloc(2 * (size_t)n * sizeof *most);
    if (!mine || !most) {
        free(mine), free(most);
        return tg_set_last_error(TG_ERR_NOMEM, "check_params: out of memory");
    }
    for (int i = 0; i < n; i++) {
        const tg_tensor *t = tg_params_at(p, i);
        mine[2 * i] = tgd_bytes_hash(tg_tensor_cdata(t), bytes_of(t));
        mine[2 * i + 1] = ~mine[2 * i];
    }
    MPI_Request req;
    int rc = MPI_Iallreduce(mine, most, 2 * n, MPI_UINT64_T, MPI_MAX, d->comm, &req);
    st = rc == MPI_SUCCESS ? tgd_wait(d, &req, "check_params") : tgd_mpi_fail(rc, "check_params");
    for (int i = 0; i < n && st == TG_OK; i++)
        if (most[2 * i] != ~most[2 * i + 1])
            st = tg_set_last_error(TG_ERR_STATE, "check_params: '%s' differs between ranks",
                                   tg_params_name(p, i));
    free(mine), free(most);
    return st;
}

tg_status tg_dist_average(tg_dist *d, double *v, int n) {
    if (!d || (!v && n > 0) || n < 0)
        return tg_set_last_error(TG_ERR_ARG, "dist_average: dist and n >= 0 values are required");
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, d->comm, &req);
    tg_status st = rc == MPI_SUCCESS ? tgd_wait(d, &req, "dist_average") : tgd_mpi_fail(rc, "dist_average");
    for (int i = 0; i < n && st == TG_OK; i++) v[i] /= d->size;
    return st;
}

tg_rng tg_dist_rank_rng(const tg_dist *d, tg_rng *shared) {
    uint64_t draw = shared ? tg_rng_next(shared) : 0;
    uint64_t rank = d ? (uint64_t)d->rank : 0;
    return tg_rng_seeded(draw ^ (0x9e3779b97f4a7c15ULL * (rank + 1)));
}
