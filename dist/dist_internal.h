/* dist/dist_internal.h - what the files of dist/ share; never installed.
 * dist/ is built on the public headers only (it is a separate library,
 * tapegrad-dist, linked against tapegrad). */
#ifndef TGD_INTERNAL_H
#define TGD_INTERNAL_H

#include "tapegrad/dist.h"
#include "tapegrad/op.h"

#define TGD_HIDDEN __attribute__((visibility("hidden")))
#define TGD_DEFAULT_TIMEOUT 300.0
#define TGD_MSG 512

struct tg_dist {
    MPI_Comm comm;        /* our duplicate of the caller's communicator          */
    int rank, size;
    double timeout;       /* seconds a wait may last; < 0: no limit             */
    bool finalize;        /* we initialised MPI: tg_dist_free finalises it       */
};

/* Sets the per-thread last error "<what>: MPI error: <MPI's text>"; returns TG_ERR_IO. */
TGD_HIDDEN tg_status tgd_mpi_fail(int mpi_rc, const char *what);
/* Waits for req, polling it against d's deadline (sleeping briefly between
 * polls, so a rank that waits leaves the core to one that computes). what
 * names the wait in the timeout message. */
TGD_HIDDEN tg_status tgd_wait(const tg_dist *d, MPI_Request *req, const char *what);
/* tg_dist_agree on a given communicator of d's ranks. */
TGD_HIDDEN tg_status tgd_agree(const tg_dist *d, MPI_Comm comm, tg_status mine,
                               const char *what);
/* p has the same names, dtypes and shapes on every rank (only those that
 * require grad when trainable_only), else an error saying so, on every rank. */
TGD_HIDDEN tg_status tgd_same_layout(const tg_dist *d, const tg_params *p, bool trainable_only,
                                     const char *what);
/* A hash of p's names, dtypes and shapes (only those that require grad when
 * trainable_only), and one of bytes. */
TGD_HIDDEN uint64_t tgd_layout_hash(const tg_params *p, bool trainable_only);
TGD_HIDDEN uint64_t tgd_bytes_hash(const void *data, size_t n);
/* Broadcast n bytes from rank 0 on d's communicator, in pieces MPI can count. */
TGD_HIDDEN tg_status tgd_bcast_bytes(const tg_dist *d, void *data, size_t n, const char *what);
TGD_HIDDEN double tgd_now(void);

#endif
