/* examples/common.h - what every example program shares: option parsing,
 * a progress display, data-file errors that say where to get the file, and
 * PNG plots through gnuplot (skipped, with a message, when it is absent). */
#ifndef TG_EXAMPLES_COMMON_H
#define TG_EXAMPLES_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>

#include <tapegrad.h>

/* ---- options ------------------------------------------------------------------
 * A table of "--name value" options; EX_FLAG takes no value. Every number
 * comes with the range it must lie in, checked here for every program (one
 * place), so that no size, count or rate a user types reaches the model
 * unchecked:
 *   ex_opt opts[] = {
 *       {"steps", EX_INT, &steps, "training steps", EX_IN(1, 1e9)},
 *       {"lr", EX_DOUBLE, &lr, "learning rate", EX_ABOVE(0, INFINITY)},  // any lr > 0
 *       {"data", EX_STR, &path, "corpus file", EX_NONE},
 *       {"sample-only", EX_FLAG, &sample_only, "generate from --load", EX_NONE},
 *   };
 *   int rc = ex_parse(argc, argv, "Trains ... on ...", opts, EX_COUNT(opts));
 *   if (rc >= 0) return rc;          // --help printed (0) or a bad option (2)
 * --help lists every option with its range and current (default) value. A
 * value out of range is an error naming the option and the range:
 *   "custom_cell: --batch 999999999 is out of range: 1..65536". */
typedef enum ex_opt_type { EX_INT, EX_DOUBLE, EX_STR, EX_FLAG } ex_opt_type;

typedef struct ex_range {
    double lo, hi;        /* lo <= v <= hi, or lo < v <= hi when lo_open; hi may be INFINITY */
    bool lo_open;
    bool set;             /* numeric options must have one             */
} ex_range;
#define EX_IN(lo, hi) {(lo), (hi), false, true}
#define EX_ABOVE(lo, hi) {(lo), (hi), true, true}
#define EX_NONE {0, 0, false, false}   /* EX_STR and EX_FLAG */

typedef struct ex_opt {
    const char *name;     /* without the leading "--"                  */
    ex_opt_type type;
    void *dst;            /* int64_t*, double*, const char**, bool*    */
    const char *help;
    ex_range range;       /* EX_INT and EX_DOUBLE only                 */
} ex_opt;

/* Common bounds. Sizes (widths, batches) stop at 2^16 and counts at 10^9,
 * so products of a few of them stay far from overflowing int64; what they
 * would cost in memory is checked with ex_memory_fits. */
#define EX_MAX_SIZE 65536
#define EX_MAX_COUNT 1e9
#define EX_THREADS EX_IN(0, 256)     /* --threads: 0 means the default      */
/* The --threads row every program has: the BLIS threads of its tapes. */
#define EX_OPT_THREADS(dst) \
    {"threads", EX_INT, (dst), "BLIS threads (0: TG_NUM_THREADS or all cores)", EX_THREADS}
#define EX_LR EX_ABOVE(0, INFINITY)  /* --lr (too large a rate diverges: ex_loss_ok says so) */
#define EX_SEED EX_IN(0, 9007199254740992.0)   /* --seed: 0..2^53, exact in a double */

#define EX_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Returns -1 to go on, 0 after --help, 2 after an error (message printed). */
int ex_parse(int argc, char **argv, const char *about, const ex_opt *opts, int n);

/* ---- memory ------------------------------------------------------------------------
 * Before allocating anything, a program estimates what its options will cost
 * (bytes, as a double so no product overflows; each program states how its
 * estimate was measured) and asks whether that fits: at most three quarters of
 * this machine's memory. If not, prints e.g.
 *   "custom_cell: --batch 999999 --length 100 --hidden 128 need about 1.2 TB of
 *    memory, this machine has 23.4 GB: use smaller sizes"
 * and returns false. sizes names the options that drive the estimate. */
bool ex_memory_fits(const char *prog, double bytes, const char *sizes);

/* ---- one training update -------------------------------------------------------
 * Backpropagates loss (recorded on tp), clips the global gradient norm to clip
 * (skipping the update when the norm is not finite), steps the optimizer and the
 * schedule (sched may be NULL) and resets the tape. Returns the loss value, or
 * NaN leaving the error on tp (ex_loss_ok reports it). Gradients must have
 * been zeroed. */
double ex_update(tg_tape *tp, tg_tensor *loss, tg_params *p, tg_optim *opt, tg_sched *sched,
                 double clip);

/* ---- data-parallel runs (common_dist.c, over tapegrad/dist.h) ------------------
 * With --dist, or when launched by mpirun (automatic), a program is one rank
 * of N: rank r trains on its share of every batch (rows [r B/N, (r+1) B/N)),
 * the ranks average their gradients after each backward, and stay identical.
 * Only rank 0 prints (the other ranks' stdout goes to /dev/null; errors still
 * reach stderr), plots and writes files. Without MPI in the build (meson
 * found none), --dist and a launch by mpirun are refused with a message.
 * Alone (no --dist, no mpirun) every call here does what one process did
 * before: nothing, or the local operation. */
typedef struct ex_dist_opts {
    bool on;              /* --dist                                     */
    bool no_overlap;      /* --dist-no-overlap                          */
    int64_t bucket_kb;    /* --dist-bucket-kb (0: the library's 1 MiB)  */
    double timeout;       /* --dist-timeout seconds (0: the library's)  */
} ex_dist_opts;
/* The option rows, for a program's table. */
#define EX_OPTS_DIST(o)                                                                          \
    {"dist", EX_FLAG, &(o)->on, "data-parallel over MPI ranks (automatic under mpirun)",       \
     EX_NONE},                                                                                   \
    {"dist-bucket-kb", EX_INT, &(o)->bucket_kb, "gradient bucket per allreduce, KiB (0: 1024)", \
     EX_IN(0, 1 << 21)},                                                                         \
    {"dist-no-overlap", EX_FLAG, &(o)->no_overlap,                                             \
     "allreduce the gradients after backward, not during it", EX_NONE},                        \
    {"dist-timeout", EX_DOUBLE, &(o)->timeout,                                                 \
     "seconds to wait for the other ranks before failing (0: 300)", EX_IN(0, 1e6)}

typedef struct ex_dist {
    struct tg_dist *d;             /* NULL: one process alone */
    struct tg_dist_reducer *r;     /* between ex_dist_attach and ex_dist_detach */
    int rank, size;
    ex_dist_opts o;
} ex_dist;

/* Launched by mpirun (Open MPI), mpiexec (MPICH's Hydra) or a PMIx launcher. */
bool ex_under_mpi_launcher(void);
/* Joins the ranks when asked or launched by mpirun. 0, or an exit code after a message. */
int ex_dist_start(ex_dist *x, const ex_dist_opts *o, const char *prog, int *argc, char ***argv);
/* Leaves: returns rc. A non-zero rc on any rank ends every rank (MPI_Abort):
 * a rank that stopped alone would leave the others waiting. */
int ex_dist_end(ex_dist *x, int rc);
bool ex_dist_root(const ex_dist *x);
/* This rank's rows of a batch of B: [*first, *first + *n). 0, or 2 after a
 * message when the ranks do not divide B. */
int ex_dist_shard(const ex_dist *x, const char *prog, int64_t B, int64_t *first, int64_t *n);
/* Rank 0's weights to every rank, and a reducer averaging p's gradients
 * written by backwards on tp. 0, or 1 after a message. */
int ex_dist_attach(ex_dist *x, tg_params *p, tg_tape *tp);
void ex_dist_detach(ex_dist *x);
/* After the step's backward (call it also when this rank's step failed):
 * gradients averaged over the ranks. A failure (on any rank) is recorded on
 * tp, where ex_loss_ok finds it. */
tg_status ex_dist_sync(ex_dist *x, tg_tape *tp);
/* v[0..n-1] replaced by their mean over the ranks (losses, flags). */
void ex_dist_mean(ex_dist *x, double *v, int n);
/* The generator for this step's dropout: shared itself alone; across ranks a
 * stream of this rank's own, drawn from shared (tg_dist_rank_rng). */
tg_rng *ex_dist_step_rng(ex_dist *x, tg_rng *shared, tg_rng *own);
/* Checkpoints: rank 0 writes, every rank reads. The carries either are the same on
 * every rank (shared) or split by rows (rows: each rank's share of the
 * batch; saved whole). Either may be NULL. */
tg_status ex_dist_save(ex_dist *x, const char *path, const tg_params *p, const tg_optim *o,
                       const tg_sched *s, const tg_train_state *ts, tg_params *shared,
                       tg_params *rows);
tg_safetensors *ex_dist_open(ex_dist *x, const char *path);
tg_status ex_dist_load_from(ex_dist *x, const tg_safetensors *f, tg_params *p, tg_optim *o,
                            tg_sched *s, tg_train_state *ts, tg_params *shared, tg_params *rows);
/* One line about the gradient averaging (rank 0; nothing alone): buckets,
 * time per step in the sync and in backward, allreduces started in backward. */
void ex_dist_report(const ex_dist *x);

/* ---- progress ----------------------------------------------------------------
 * On a terminal: one line redrawn in place,
 *   [########......] step 120/1000  loss 1.234  12.3k tok/s  ETA 1:23
 * Otherwise: a plain line about every 5% of the run (and at the end). */
typedef struct ex_progress {
    const char *unit;      /* "tok", "samples", ...                        */
    int64_t total;         /* steps                                        */
    int64_t items;         /* items processed so far                       */
    double start, last_print;
    bool tty;
    int64_t next_plain;    /* step at which the next plain line is due     */
} ex_progress;

void ex_progress_start(ex_progress *p, int64_t total_steps, const char *unit);
/* step is 1-based (steps done); items: processed in this step. */
void ex_progress_update(ex_progress *p, int64_t step, double loss, int64_t items);
void ex_progress_done(ex_progress *p);       /* ends the terminal line */
/* Print a line without breaking the bar (samples, evaluation results). */
void ex_log(ex_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

double ex_now(void);   /* seconds, monotonic */

/* Whether a training step went well: its loss is a finite number. If not,
 * says what happened (after ending pg's progress line; pg may be NULL): the
 * error the step left on tp (may be NULL), or the divergence, e.g.
 *   "error: LSTM: training diverged at step 2: the loss is inf (--lr 1e+308);
 *    try a lower --lr"
 * what names the model. */
bool ex_loss_ok(ex_progress *pg, const tg_tape *tp, const char *what, int64_t step, double loss,
                double lr);

/* ---- data files -----------------------------------------------------------------
 * Default location of a data file: $TG_DATA/<file> when TG_DATA is set, else
 * ../shared/data/<file> (relative to the project root, where the README's
 * commands run). Returns buf. */
const char *ex_data_path(const char *file, char *buf, size_t size);

/* Opens a data file to read (a regular file only: a FIFO or a device is
 * refused, never waited on). On failure prints one clear message naming the
 * file, the reason and where to get it (hint, e.g. "see ../shared/data/README.md"),
 * and returns NULL. */
FILE *ex_open_data(const char *path, const char *hint);
/* Reads a whole data file, through ex_open_data; NULL after a message. The
 * caller frees the result. */
char *ex_read_file(const char *path, size_t *len, const char *hint);
/* Report a malformed data file in the same style; returns 1 (an exit code). */
int ex_bad_data(const char *path, long line, const char *what, const char *hint);

/* ---- plots (gnuplot, PNG) ---------------------------------------------------------
 * Line plot of n_series curves over x (x may be NULL: 0..n-1). Returns true
 * when the PNG was written; otherwise prints "plot skipped: ..." and returns
 * false (the program goes on). */
bool ex_plot_lines(const char *png, const char *title, const char *xlabel, const char *ylabel,
                   const double *x, int64_t n, int n_series, const char *const *names,
                   const double *const *ys);
/* Heatmap of a rows x cols matrix (row-major), e.g. attention weights. Row and
 * column labels may be NULL. */
bool ex_plot_heatmap(const char *png, const char *title, const double *m, int rows, int cols,
                     const char *const *row_labels, const char *const *col_labels);

#endif
