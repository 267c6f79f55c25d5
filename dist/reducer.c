/* dist/reducer.c - averaging gradients across ranks in buckets, overlapped
 * with backward (dist.h: tg_dist_reducer).
 *
 * Set-up: the parameters that require grad, in reverse registration order
 * (backward finishes the last-used layers first), are packed into buckets of
 * one dtype and about bucket_bytes each; each bucket is one flat buffer and
 * one allreduce.
 * A step: backward reports each gradient as final (tape.h); the reducer
 * copies it into its bucket, and once a bucket is full and every bucket
 * before it has started, starts its MPI_Iallreduce (sum). The sync packs
 * whatever was not reported, starts the rest, waits for all, lets the ranks
 * agree on whether the step went well, and writes sum / N back into each
 * gradient. Buckets start in index order on every rank whatever order
 * backward finished them in, because MPI needs collectives in one order. */
#include "dist_internal.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_BUCKET_BYTES ((size_t)1 << 20)
#define MAX_COUNT 2147483647   /* one MPI count */

typedef struct slot {          /* one parameter */
    tg_tensor *t;
    int bucket;
    int64_t offset;            /* elements into its bucket's buffer */
    bool packed;               /* this step */
} slot;

typedef struct bucket {
    tg_dtype dtype;
    int64_t numel;
    void *buf;
    int pending;               /* slots not packed yet this step */
    int n_slots;
} bucket;

typedef struct lookup { const tg_tensor *t; int slot; } lookup;

struct tg_dist_reducer {
    tg_dist *d;
    MPI_Comm comm;             /* its own duplicate: bucket collectives, started during
                                  backward, never interleave with the caller's other calls */
    tg_tape *tp;
    bool overlap, hooked;      /* hooked: tp's grad-ready callback is ours */
    slot *slots;               /* bucket order */
    lookup *by_tensor;         /* sorted by tensor address, for the callback */
    int n_slots;
    bucket *buckets;
    MPI_Request *reqs;         /* one per bucket */
    int n_buckets, next_start; /* buckets start in index order */
    tg_status step_status;     /* a misuse seen during this step's backward */
    char step_msg[TGD_MSG];
    tg_dist_reducer_stats stats;
};

/* ---- every parameter gets a gradient buffer ---------------------------------------------
 * The public API makes a leaf's gradient only through backward. A tiny op whose
 * VJP asks for every input's gradient (tg_input_grad allocates it zeroed),
 * run once on a private tape, gives every parameter one, so an average can be
 * written even where this rank's backward never reached a parameter. */
static int touch_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr, tg_desc *out) {
    (void)tp, (void)n_in, (void)in, (void)attr;
    *out = (tg_desc){.dtype = TG_F64, .ndim = 1, .shape = {1}};
    return 0;
}
static int touch_forward(tg_node *n) {
    *(double *)tg_tensor_data(n->out) = 0;
    return 0;
}
static int touch_vjp(tg_node *n) {
    for (int i = 0; i < n->n_in; i++) (void)tg_input_grad(n, i);
    return 0;
}
static const tg_op touch_op = {.name = "dist_grad_buffers", .n_in = TG_VARIADIC,
                               .infer = touch_infer, .forward = touch_forward, .vjp = touch_vjp};

static tg_status give_gradients(tg_dist_reducer *r) {
    tg_tensor **ts = malloc((size_t)r->n_slots * sizeof *ts);
    tg_tape *tp = tg_tape_new();
    tg_status st = ts && tp ? TG_OK : TG_ERR_NOMEM;
    for (int i = 0; i < r->n_slots && ts; i++) ts[i] = r->slots[i].t;
    tg_tensor *y = st == TG_OK ? tg_apply(tp, &touch_op, r->n_slots, ts, NULL) : NULL;
    if (st == TG_OK && (!y || tg_backward(tp, y) != TG_OK))
        st = tg_set_last_error(tg_tape_status(tp), "reducer: %s", tg_tape_error(tp));
    else if (st != TG_OK)
        tg_set_last_error(st, "reducer: out of memory");
    tg_tape_free(tp);
    free(ts);
    return st;
}

/* ---- set-up ------------------------------------------------------------------------------ */
static size_t esize(tg_dtype dt) { return tg_dtype_size(dt); }

static int count_trainable(const tg_params *p) {
    int n = 0;
    for (int i = 0; i < tg_params_count(p); i++) n += tg_tensor_requires_grad(tg_params_at(p, i));
    return n;
}

/* Slots in reverse registration order, each placed in a bucket. */
static tg_status plan_buckets(tg_dist_reducer *r, const tg_params *p, size_t cap) {
    int n = 0;
    for (int i = tg_params_count(p) - 1; i >= 0; i--) {
        tg_tensor *t = tg_params_at(p, i);
        if (!tg_tensor_requires_grad(t)) continue;
        if (tg_tensor_numel(t) > MAX_COUNT)
            return tg_set_last_error(TG_ERR_ARG, "reducer: parameter '%s' has %lld elements; "
                                     "an allreduce takes at most 2^31-1", tg_params_name(p, i),
                                     (long long)tg_tensor_numel(t));
        bucket *b = r->n_buckets ? &r->buckets[r->n_buckets - 1] : NULL;
        int64_t numel = tg_tensor_numel(t);
        tg_dtype dt = tg_tensor_dtype(t);
        bool fits = b && b->dtype == dt && b->numel + numel <= MAX_COUNT &&
                    (size_t)(b->numel + numel) * esize(dt) <= cap;
        if (!fits) {
            b = &r->buckets[r->n_buckets++];
            *b = (bucket){.dtype = dt};
        }
        r->slots[n++] = (slot){t, r->n_buckets - 1, b->numel, false};
        b->numel += numel;
        b->n_slots++;
    }
    for (int k = 0; k < r->n_buckets; k++) {
        bucket *b = &r->buckets[k];
        b->pending = b->n_slots;
        b->buf = malloc((size_t)b->numel * esize(b->dtype));
        if (!b->buf) return tg_set_last_error(TG_ERR_NOMEM, "reducer: out of memory for buckets");
        r->stats.bytes += (int64_t)((size_t)b->numel * esize(b->dtype));
        r->reqs[k] = MPI_REQUEST_NULL;
    }
    r->stats.buckets = r->n_buckets;
    return TG_OK;
}

static int by_address(const void *pa, const void *pb) {
    uintptr_t a = (uintptr_t)((const lookup *)pa)->t, b = (uintptr_t)((const lookup *)pb)->t;
    return (a > b) - (a < b);
}

static slot *find_slot(tg_dist_reducer *r, const tg_tensor *t) {
    lookup key = {t, 0};
    const lookup *hit = bsearch(&key, r->by_tensor, (size_t)r->n_slots, sizeof key, by_address);
    return hit ? &r->slots[hit->slot] : NULL;
}

static void on_grad_ready(tg_tensor *leaf, void *ctx);

static tg_status reducer_open(tg_dist_reducer *r, tg_params *p, const tg_dist_reducer_opts *o) {
    int n = count_trainable(p);
    r->slots = calloc((size_t)n + 1, sizeof *r->slots);
    r->by_tensor = calloc((size_t)n + 1, sizeof *r->by_tensor);
    r->buckets = calloc((size_t)n + 1, sizeof *r->buckets);
    r->reqs = calloc((size_t)n + 1, sizeof *r->reqs);
    if (!r->slots || !r->by_tensor || !r->buckets || !r->reqs)
        return tg_set_last_error(TG_ERR_NOMEM, "reducer: out of memory");
    size_t cap = o && o->bucket_bytes ? o->bucket_bytes : DEFAULT_BUCKET_BYTES;
    tg_status st = plan_buckets(r, p, cap);
    r->n_slots = n;
    for (int i = 0; i < n; i++) r->by_tensor[i] = (lookup){r->slots[i].t, i};
    qsort(r->by_tensor, (size_t)n, sizeof *r->by_tensor, by_address);
    if (st == TG_OK && n > 0) st = give_gradients(r);
    return st;
}

tg_dist_reducer *tg_dist_reducer_new(tg_dist *d, tg_params *p, tg_tape *tp,
                                     const tg_dist_reducer_opts *o) {
    if (!d || !p || !tp) {
        tg_set_last_error(TG_ERR_ARG, "reducer_new: dist, params and tape are required");
        return NULL;
    }
    tg_dist_reducer *r = calloc(1, sizeof *r);
    if (!r) {
        tg_set_last_error(TG_ERR_NOMEM, "reducer_new: out of memory");
        return NULL;
    }
    r->d = d, r->tp = tp, r->overlap = !(o && o->no_overlap), r->comm = MPI_COMM_NULL;
    tg_status st = reducer_open(r, p, o);
    int rc = MPI_Comm_dup(d->comm, &r->comm);   /* collective: every rank gets here */
    if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(r->comm, MPI_ERRORS_RETURN);
    if (rc != MPI_SUCCESS) {
        r->comm = MPI_COMM_NULL;
        st = tgd_mpi_fail(rc, "reducer_new");
    } else {   /* every rank must build the same buckets, and have succeeded */
        tg_status same = tgd_same_layout(d, p, true, "reducer_new");
        st = same != TG_OK ? same : tgd_agree(d, d->comm, st, "reducer_new");
    }
    if (st != TG_OK) {
        tg_dist_reducer_free(r);
        return NULL;
    }
    if (r->overlap) tg_tape_on_grad_ready(tp, on_grad_ready, r);
    r->hooked = r->overlap;
    return r;
}

void tg_dist_reducer_free(tg_dist_reducer *r) {
    if (!r) return;
    if (r->hooked) tg_tape_on_grad_ready(r->tp, NULL, NULL);
    for (int k = 0; k < r->n_buckets; k++) free(r->buckets[k].buf);
    if (r->comm != MPI_COMM_NULL) MPI_Comm_free(&r->comm);
    free(r->slots), free(r->by_tensor), free(r->buckets), free(r->reqs);
    free(r);
}

/* ---- a step ---------------------------------------------------------------------------------- */
static void step_fail(tg_dist_reducer *r, tg_status st, const char *msg) {
    if (r->step_status != TG_OK) return;
    r->step_status = st;
    snprintf(r->step_msg, sizeof r->step_msg, "%s", msg);
}

/* Copies a final gradient (zeros when it has none) into its bucket. */
static void pack(tg_dist_reducer *r, slot *s) {
    if (s->packed) {
        step_fail(r, TG_ERR_STATE, "a second backward before tg_dist_reducer_sync (one "
                  "backward per sync: gradients already sent would miss its part)");
        return;
    }
    bucket *b = &r->buckets[s->bucket];
    size_t bytes = (size_t)tg_tensor_numel(s->t) * esize(b->dtype);
    char *dst = (char *)b->buf + (size_t)s->offset * esize(b->dtype);
    const void *g = tg_tensor_grad(s->t);
    if (g) memcpy(dst, g, bytes);
    else memset(dst, 0, bytes);
    s->packed = true;
    b->pending--;
}

/* Starts every full bucket whose predecessors have all started. */
static void start_ready(tg_dist_reducer *r, bool in_backward) {
    while (r->next_start < r->n_buckets && r->buckets[r->next_start].pending == 0) {
        bucket *b = &r->buckets[r->next_start];
        MPI_Datatype type = b->dtype == TG_F64 ? MPI_DOUBLE : MPI_FLOAT;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, b->buf, (int)b->numel, type, MPI_SUM, r->comm,
                                &r->reqs[r->next_start]);
        if (rc != MPI_SUCCESS) {
            r->reqs[r->next_start] = MPI_REQUEST_NULL;
            step_fail(r, tgd_mpi_fail(rc, "reducer: starting an allreduce"), tg_last_error());
        }
        r->next_start++;
        r->stats.started_in_backward += in_backward;
    }
}

static void on_grad_ready(tg_tensor *leaf, void *ctx) {
    tg_dist_reducer *r = ctx;
    double start = tgd_now();
    slot *s = find_slot(r, leaf);
    if (!s) return;   /* a leaf that is not one of our parameters */
    pack(r, s);
    start_ready(r, true);
    /* MPI moves a non-blocking collective along only inside MPI calls: poke it. */
    int all_done;
    if (r->next_start > 0) MPI_Testall(r->next_start, r->reqs, &all_done, MPI_STATUSES_IGNORE);
    r->stats.backward_seconds += tgd_now() - start;
}

/* gradient = bucket slice / N */
static void unpack(tg_dist_reducer *r, const slot *s) {
    const bucket *b = &r->buckets[s->bucket];
    int64_t n = tg_tensor_numel(s->t);
    if (b->dtype == TG_F64) {
        const double *src = (const double *)b->buf + s->offset, inv = 1.0 / r->d->size;
        double *g = tg_tensor_grad(s->t);
        for (int64_t i = 0; i < n; i++) g[i] = src[i] * inv;
    } else {
        const float *src = (const float *)b->buf + s->offset, inv = 1.0f / (float)r->d->size;
        float *g = tg_tensor_grad(s->t);
        for (int64_t i = 0; i < n; i++) g[i] = src[i] * inv;
    }
}

static void step_reset(tg_dist_reducer *r) {
    for (int i = 0; i < r->n_slots; i++) r->slots[i].packed = false;
    for (int k = 0; k < r->n_buckets; k++) r->buckets[k].pending = r->buckets[k].n_slots;
    r->next_start = 0;
    r->step_status = TG_OK;
    r->step_msg[0] = '\0';
}

/* This rank's verdict on the step: the tape's error, or a misuse seen during it. */
static tg_status my_step_status(const tg_dist_reducer *r) {
    if (tg_tape_status(r->tp) != TG_OK)
        return tg_set_last_error(tg_tape_status(r->tp), "%s", tg_tape_error(r->tp));
    if (r->step_status != TG_OK) return tg_set_last_error(r->step_status, "%s", r->step_msg);
    return TG_OK;
}

static tg_status finish_step(tg_dist_reducer *r) {
    for (int i = 0; i < r->n_slots; i++)
        if (!r->slots[i].packed) pack(r, &r->slots[i]);
    start_ready(r, false);
    for (int k = 0; k < r->n_buckets; k++) {
        tg_status st = tgd_wait(r->d, &r->reqs[k], "reducer_sync (gradient allreduce)");
        if (st != TG_OK) return st;   /* the ranks cannot talk: nothing to agree on */
    }
    tg_status st = tgd_agree(r->d, r->comm, my_step_status(r), "reducer_sync");
    bool all_have = true;
    for (int i = 0; i < r->n_slots; i++) all_have = all_have && tg_tensor_grad(r->slots[i].t);
    if (st == TG_OK && !all_have) st = give_gradients(r);   /* freed or swapped since set-up */
    for (int i = 0; i < r->n_slots && st == TG_OK; i++) unpack(r, &r->slots[i]);
    return st;
}

tg_status tg_dist_reducer_sync(tg_dist_reducer *r) {
    if (!r) return tg_set_last_error(TG_ERR_ARG, "reducer_sync: reducer is NULL");
    double start = tgd_now();
    tg_status st = finish_step(r);
    step_reset(r);
    r->stats.syncs++;
    r->stats.sync_seconds += tgd_now() - start;
    return st;
}

void tg_dist_reducer_stats_get(const tg_dist_reducer *r, tg_dist_reducer_stats *out) {
    if (!out) return;
    *out = r ? r->stats : (tg_dist_reducer_stats){0};
}
