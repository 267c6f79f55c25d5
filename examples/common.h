/* examples/common.h - what every example program shares: option parsing,
 * a progress display, data-file errors that say where to get the file, and
 * PNG plots through gnuplot (skipped, with a message, when it is absent). */
#ifndef TG_EXAMPLES_COMMON_H
#define TG_EXAMPLES_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <tapegrad.h>

/* ---- options ------------------------------------------------------------------
 * A table of "--name value" options; EX_FLAG takes no value.
 *   ex_opt opts[] = {
 *       {"steps", EX_INT, &steps, "training steps"},
 *       {"data", EX_STR, &path, "corpus file"},
 *       {"sample-only", EX_FLAG, &sample_only, "generate from --load"},
 *   };
 *   int rc = ex_parse(argc, argv, "Trains ... on ...", opts, EX_COUNT(opts));
 *   if (rc >= 0) return rc;          // --help printed (0) or a bad option (2)
 * --help lists every option with its current (default) value. */
typedef enum ex_opt_type { EX_INT, EX_DOUBLE, EX_STR, EX_FLAG } ex_opt_type;

typedef struct ex_opt {
    const char *name;     /* without the leading "--"                  */
    ex_opt_type type;
    void *dst;            /* int64_t*, double*, const char**, bool*    */
    const char *help;
} ex_opt;

#define EX_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Returns -1 to go on, 0 after --help, 2 after an error (message printed). */
int ex_parse(int argc, char **argv, const char *about, const ex_opt *opts, int n);

/* ---- one training update -------------------------------------------------------
 * Backpropagates loss (recorded on tp), clips the global gradient norm to clip
 * (skipping the update when the norm is not finite), steps the optimizer and the
 * schedule (sched may be NULL) and resets the tape. Returns the loss value, or
 * NaN after printing the tape's error. Gradients must have been zeroed. */
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
