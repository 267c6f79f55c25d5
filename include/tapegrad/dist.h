/* tapegrad/dist.h - data-parallel training over MPI (library tapegrad-dist).
 *
 * N processes (ranks), one per core or machine, each hold a full copy of the
 * model and train on their own shard of every batch. Rank 0's parameters are
 * broadcast once; after each backward the gradients are averaged across
 * ranks with MPI allreduces, so every rank takes the same optimizer step and
 * the copies stay identical. With a batch of B/N rows per rank and a loss that
 * is a mean over rows, the average of the ranks' gradients is the gradient of
 * the whole batch of B: N ranks follow the same trajectory as one process
 * with batch B, up to the rounding of the sums.
 *
 *   tg_dist *d = tg_dist_init(&argc, &argv, NULL);          // MPI_COMM_WORLD
 *   ... build the model on every rank ...
 *   tg_dist_broadcast_params(d, params);                    // rank 0's weights
 *   tg_dist_reducer *r = tg_dist_reducer_new(d, params, tp, NULL);
 *   for (step ...) {
 *       tg_params_zero_grad(params);
 *       tg_tensor *loss = forward(tp, my_shard);           // mean over my rows
 *       if (loss) tg_backward(tp, loss);                   // allreduces start here
 *       if (tg_dist_reducer_sync(r) != TG_OK) break;       // on every rank alike
 *       tg_clip_grad_norm(params, 5);                      // same on every rank
 *       tg_optim_step(opt);
 *       tg_tape_reset(tp);
 *   }
 *   tg_dist_reducer_free(r);
 *   tg_dist_free(d);                                        // MPI_Finalize if we initialised
 *
 * Overlap: the reducer packs the gradients into buckets (about bucket_bytes
 * each, parameters in reverse registration order, the order in which backward
 * usually finishes them) and starts a bucket's non-blocking MPI_Iallreduce as
 * soon as backward reports all its gradients final (tape.h:
 * tg_tape_on_grad_ready), while the rest of backward runs, as PyTorch's
 * DistributedDataParallel does. Buckets start in index order on every rank
 * (MPI wants collectives in the same order everywhere). tg_dist_reducer_sync
 * starts whatever is left, waits, and writes the averages into the
 * gradients. With overlap off, everything happens in sync.
 *
 * What stays per rank: the optimizer (its state is identical on every rank,
 * since the averaged gradients and the steps are), the tape, and random
 * numbers. Dropout draws should differ between ranks (the same masks on
 * every shard would correlate them): tg_dist_rank_rng gives each rank its own
 * stream, derived from a generator shared by all (the one a checkpoint saves).
 *
 * Errors: every call here is collective (all ranks call it, in the same
 * order) and returns the same status on every rank: when one rank fails, the
 * others return an error too, whose message (tg_last_error()) names the rank
 * and its reason, e.g.
 *   "reducer_sync: rank 1 failed: cross_entropy: target 70 out of range [0, 65)".
 * A rank that dies or stalls does not hang the others forever: every wait
 * polls its request against a deadline (timeout_seconds), then fails with a
 * message saying what it waited for; after that the communicator cannot be
 * trusted and the job should end with tg_dist_abort. (mpirun itself also
 * ends the job when a rank exits abnormally.) MPI errors are returned, not
 * fatal (MPI_ERRORS_RETURN on our communicator).
 *
 * Threads: MPI is initialised with MPI_THREAD_FUNNELED: only the thread that
 * called tg_dist_init calls into MPI (BLIS's threads never do). */
#ifndef TAPEGRAD_DIST_H
#define TAPEGRAD_DIST_H

/* Only MPI's C API is used: keep Open MPI's and MPICH's deprecated C++
 * bindings (which need their own library, libmpi_cxx) out of C++ programs. */
#if defined(__cplusplus) && !defined(OMPI_SKIP_MPICXX)
#define OMPI_SKIP_MPICXX 1
#endif
#if defined(__cplusplus) && !defined(MPICH_SKIP_MPICXX)
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include "io.h"
#include "tape.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_dist tg_dist;

typedef struct tg_dist_opts {
    double timeout_seconds;   /* longest wait for other ranks (0: 300 s; < 0: forever) */
} tg_dist_opts;

/* Over MPI_COMM_WORLD, initialising MPI first when nobody has (then
 * tg_dist_free finalises it). NULL and tg_last_error() on failure. */
TG_API tg_dist *tg_dist_init(int *argc, char ***argv, const tg_dist_opts *o);
/* Over a communicator of the caller's (MPI initialised already); it is
 * duplicated, so our messages never meet the caller's. */
TG_API tg_dist *tg_dist_new(MPI_Comm comm, const tg_dist_opts *o);
TG_API void tg_dist_free(tg_dist *d);
TG_API int tg_dist_rank(const tg_dist *d);   /* 0..size-1; -1 for NULL */
TG_API int tg_dist_size(const tg_dist *d);   /* ranks; 0 for NULL      */
/* End every rank of the job now, with this exit code (MPI_Abort). */
TG_API void tg_dist_abort(tg_dist *d, int code);

/* Did every rank succeed? Each rank passes its own status (on failure with its
 * message in tg_last_error()); every rank gets TG_OK, or the status of the
 * lowest failing rank with "<what>: rank R failed: <its message>". */
TG_API tg_status tg_dist_agree(tg_dist *d, tg_status mine, const char *what);

/* ---- parameters ------------------------------------------------------------- */
/* Rank 0's values into every rank's parameters (all of them, with or without
 * requires_grad). The registries must match: same names, dtypes and shapes in
 * the same order (checked first; an error names the counts if not). */
TG_API tg_status tg_dist_broadcast_params(tg_dist *d, tg_params *p);
/* TG_OK when every parameter is bit for bit the same on every rank; else
 * TG_ERR_STATE naming the first that differs. For tests and checkpoints. */
TG_API tg_status tg_dist_check_params(tg_dist *d, const tg_params *p);
/* v[0..n-1] replaced by their mean over the ranks (losses, metrics). */
TG_API tg_status tg_dist_average(tg_dist *d, double *v, int n);

/* A generator of this rank's own: seeded from one draw of shared (which every
 * rank holds identically and which advances by that one draw on every rank)
 * and the rank. Call it once per step for that step's dropout masks: the
 * streams differ between ranks, and shared is all a checkpoint needs to save
 * to resume them exactly. */
TG_API tg_rng tg_dist_rank_rng(const tg_dist *d, tg_rng *shared);

/* ---- gradient averaging -------------------------------------------------------- */
typedef struct tg_dist_reducer tg_dist_reducer;

typedef struct tg_dist_reducer_opts {
    size_t bucket_bytes;      /* gradient bytes per allreduce (0: 1 MiB)                 */
    bool no_overlap;          /* allreduce everything in sync, after backward           */
} tg_dist_reducer_opts;

/* Averages the gradients of p's parameters that require grad, written by
 * backwards on tp. With overlap (the default) it sets tp's grad-ready
 * callback (tape.h), which must stay its own until tg_dist_reducer_free.
 * Every such parameter gets a gradient buffer (zeros) now, so after a sync
 * each has one on every rank, as with DDP. A parameter may have at most
 * 2^31-1 elements (one MPI count). The registry must not change while the
 * reducer lives. Collective: the registries must match across ranks. */
TG_API tg_dist_reducer *tg_dist_reducer_new(tg_dist *d, tg_params *p, tg_tape *tp,
                                            const tg_dist_reducer_opts *o);
TG_API void tg_dist_reducer_free(tg_dist_reducer *r);
/* After the step's backward (exactly one per sync): finishes the allreduces
 * and replaces each gradient by its mean over the ranks. Call it on every
 * rank every step, also when this rank's forward or backward failed (tp's
 * error): then every rank returns that error, and the gradients are not
 * usable. Collective. */
TG_API tg_status tg_dist_reducer_sync(tg_dist_reducer *r);

typedef struct tg_dist_reducer_stats {
    int buckets;              /* allreduces per step                                    */
    int64_t bytes;            /* gradient bytes per step                                */
    int64_t syncs;            /* steps so far                                           */
    int64_t started_in_backward; /* allreduces started while backward ran (overlapped) */
    double backward_seconds;  /* time in the grad-ready callbacks (packing, starting)  */
    double sync_seconds;      /* time in tg_dist_reducer_sync: communication not hidden */
} tg_dist_reducer_stats;
TG_API void tg_dist_reducer_stats_get(const tg_dist_reducer *r, tg_dist_reducer_stats *out);

/* ---- checkpoints -----------------------------------------------------------------
 * One file, in io.h's crash-safe format, written by rank 0; every rank resumes
 * from it. Tensors a loop carries between steps come in two kinds: */
typedef struct tg_dist_carry {
    /* The same on every rank: saved from rank 0's copy. */
    tg_params *shared;
    /* Split by rows: rank r holds rows [r n, (r + 1) n) of each tensor (n the
     * same on every rank), e.g. the recurrent state of its shard of the
     * batch. Saved whole, [N n, ...], in rank order, so the file is what one
     * process with the whole batch would save; loading gives each rank its
     * rows back. */
    tg_params *rows;
} tg_dist_carry;

/* Rank 0 saves p, o, s, ts (each may be NULL, as in tg_checkpoint_save_ex)
 * and the carries (c may be NULL). Refused, on every rank, when the
 * parameters differ between ranks (tg_dist_check_params). Collective. */
TG_API tg_status tg_dist_checkpoint_save(tg_dist *d, const char *path, const tg_params *p,
                                         const tg_optim *o, const tg_sched *s,
                                         const tg_train_state *ts, const tg_dist_carry *c);
/* Rank 0 reads the file and sends its bytes to every rank, which parses them
 * (no shared file system needed; each rank holds the file twice while it
 * parses). NULL on every rank when any fails. Collective. */
TG_API tg_safetensors *tg_dist_safetensors_open(tg_dist *d, const char *path);
/* Every rank restores from f (as tg_checkpoint_load_from_ex) and takes its
 * rows of the row-split carries. On an error (on any rank) the ranks may hold
 * different states: end the run. Collective. */
TG_API tg_status tg_dist_checkpoint_load_from(tg_dist *d, const tg_safetensors *f, tg_params *p,
                                              tg_optim *o, tg_sched *s, tg_train_state *ts,
                                              const tg_dist_carry *c);
/* Open + load_from + close. */
TG_API tg_status tg_dist_checkpoint_load(tg_dist *d, const char *path, tg_params *p, tg_optim *o,
                                         tg_sched *s, tg_train_state *ts, const tg_dist_carry *c);

#ifdef __cplusplus
}
#endif
#endif
