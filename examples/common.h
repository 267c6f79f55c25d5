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
