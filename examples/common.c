/* examples/common.c - see common.h. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- options ------------------------------------------------------------------ */
/* "1..65536", "> 0", ">= 0", "> 0, <= 10" */
static void range_str(const ex_range *r, char *buf, size_t size) {
    const char *lo = r->lo_open ? ">" : ">=";
    if (isinf(r->hi)) snprintf(buf, size, "%s %g", lo, r->lo);
    else if (r->lo_open) snprintf(buf, size, "> %g, <= %g", r->lo, r->hi);
    else snprintf(buf, size, "%.15g..%.15g", r->lo, r->hi);
}

static void print_default(const ex_opt *o) {
    char r[64];
    range_str(&o->range, r, sizeof r);
    switch (o->type) {
    case EX_INT: printf(" (%s, default %lld)", r, (long long)*(int64_t *)o->dst); break;
    case EX_DOUBLE: printf(" (%s, default %g)", r, *(double *)o->dst); break;
    case EX_STR:
        if (*(const char **)o->dst) printf(" (default %s)", *(const char **)o->dst);
        break;
    case EX_FLAG: break;
    }
}

static void usage(const char *prog, const char *about, const ex_opt *opts, int n) {
    printf("usage: %s [options]\n%s\n\noptions:\n", prog, about);
    for (int i = 0; i < n; i++) {
        printf("  --%-16s %s", opts[i].name, opts[i].help);
        print_default(&opts[i]);
        printf("\n");
    }
    printf("  --%-16s %s\n", "help", "show this text");
}

static bool set_value(const ex_opt *o, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case EX_INT: {
        long long x = strtoll(v, &end, 10);
        if (errno || !*v || *end) return false;
        *(int64_t *)o->dst = x;
        return true;
    }
    case EX_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || !*v || *end || !isfinite(x)) return false;
        *(double *)o->dst = x;
        return true;
    }
    case EX_STR: *(const char **)o->dst = v; return true;
    case EX_FLAG: *(bool *)o->dst = true; return true;
    }
    return false;
}

static bool in_range(const ex_opt *o) {
    double v = o->type == EX_INT ? (double)*(int64_t *)o->dst : *(double *)o->dst;
    const ex_range *r = &o->range;
    return (r->lo_open ? v > r->lo : v >= r->lo) && v <= r->hi;
}

static bool numeric(const ex_opt *o) { return o->type == EX_INT || o->type == EX_DOUBLE; }

int ex_parse(int argc, char **argv, const char *about, const ex_opt *opts, int n) {
    for (int i = 0; i < n; i++)
        if (numeric(&opts[i]) && !opts[i].range.set) {   /* a programming error, said loudly */
            fprintf(stderr, "%s: option --%s has no range (EX_IN or EX_ABOVE)\n", argv[0],
                    opts[i].name);
            return 2;
        }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(argv[0], about, opts, n);
            return 0;
        }
        const ex_opt *o = NULL;
        for (int i = 0; i < n && !o; i++)
            if (!strncmp(arg, "--", 2) && !strcmp(arg + 2, opts[i].name)) o = &opts[i];
        if (!o) {
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", argv[0], arg);
            return 2;
        }
        const char *v = "1";
        if (o->type != EX_FLAG) {
            if (a + 1 >= argc) {
                fprintf(stderr, "%s: option --%s needs a value\n", argv[0], o->name);
                return 2;
            }
            v = argv[++a];
        }
        if (!set_value(o, v)) {
            fprintf(stderr, "%s: bad value '%s' for --%s\n", argv[0], v, o->name);
            return 2;
        }
        if (numeric(o) && !in_range(o)) {
            char r[64];
            range_str(&o->range, r, sizeof r);
            fprintf(stderr, "%s: --%s %s is out of range: %s\n", argv[0], o->name, v, r);
            return 2;
        }
    }
    return -1;
}

/* ---- memory ------------------------------------------------------------------- */
static void human_bytes(double b, char *buf, size_t size) {
    static const char *const unit[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
    int u = 0;
    while (b >= 1000 && u < 6) b /= 1000, u++;
    snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

bool ex_memory_fits(const char *prog, double bytes, const char *sizes) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double have = pages > 0 && page > 0 ? (double)pages * (double)page : 0;
    if (have <= 0 || bytes <= 0.75 * have) return true;   /* unknown: let the allocator say */
    char need[32], total[32];
    human_bytes(bytes, need, sizeof need);
    human_bytes(have, total, sizeof total);
    fprintf(stderr, "%s: %s need about %s of memory, this machine has %s: use smaller sizes\n",
            prog, sizes, need, total);
    return false;
}

/* ---- one training update ------------------------------------------------------ */
double ex_update(tg_tape *tp, tg_tensor *loss, tg_params *p, tg_optim *opt, tg_sched *sched,
                 double clip) {
    double value = loss ? tg_tensor_item(loss) : NAN;
    if (!loss || tg_backward(tp, loss) != TG_OK) return NAN;   /* the error stays on tp */
    if (isfinite(tg_clip_grad_norm(p, clip))) tg_optim_step(opt);
    if (sched) tg_sched_step(sched);
    tg_tape_reset(tp);
    return value;
}

bool ex_loss_ok(ex_progress *pg, const tg_tape *tp, const char *what, int64_t step, double loss,
                double lr) {
    if (isfinite(loss)) return true;
    if (pg) ex_progress_done(pg);
    if (isnan(loss) && tp && tg_tape_status(tp) != TG_OK) {
        fprintf(stderr, "error: %s: training step %lld: %s\n", what, (long long)step,
                tg_tape_error(tp));
        return false;
    }
    fprintf(stderr, "error: %s: training diverged at step %lld: the loss is %s (--lr %g); try a "
            "lower --lr\n", what, (long long)step, isnan(loss) ? "nan" : loss > 0 ? "inf" : "-inf",
            lr);
    return false;
}

/* ---- progress ----------------------------------------------------------------- */
double ex_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

bool ex_under_mpi_launcher(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

void ex_progress_start(ex_progress *p, int64_t total_steps, const char *unit) {
    memset(p, 0, sizeof *p);
    p->unit = unit ? unit : "items";
    p->total = total_steps > 0 ? total_steps : 1;
    p->start = p->last_print = ex_now();
    /* Under mpirun a rank's stdout is a terminal of the launcher's (Open MPI
     * makes one) whatever the job's output goes to: plain lines, which read
     * well on a terminal and in a log alike. */
    p->tty = isatty(STDOUT_FILENO) && !ex_under_mpi_launcher();
    p->next_plain = 1;
}

static void human(double v, char *buf, size_t size) {
    if (v >= 1e6) snprintf(buf, size, "%.1fM", v / 1e6);
    else if (v >= 1e3) snprintf(buf, size, "%.1fk", v / 1e3);
    else snprintf(buf, size, "%.1f", v);
}

void ex_progress_update(ex_progress *p, int64_t step, double loss, int64_t items) {
    p->items += items;
    double now = ex_now(), elapsed = now - p->start;
    bool last = step >= p->total;
    if (p->tty ? (now - p->last_print < 0.1 && !last) : (step < p->next_plain && !last)) return;
    p->last_print = now;
    char rate[32];
    human(elapsed > 0 ? (double)p->items / elapsed : 0, rate, sizeof rate);
    double eta = step > 0 ? elapsed * (double)(p->total - step) / (double)step : 0;
    if (p->tty) {
        int width = 24, filled = (int)(width * step / p->total);
        printf("\r[%.*s%.*s] step %lld/%lld  loss %.4f  %s %s/s  ETA %d:%02d ", filled,
               "########################", width - filled, "........................",
               (long long)step, (long long)p->total, loss, rate, p->unit, (int)eta / 60,
               (int)eta % 60);
    } else {
        printf("step %lld/%lld  loss %.4f  %s %s/s  elapsed %.1fs  ETA %.0fs\n", (long long)step,
               (long long)p->total, loss, rate, p->unit, elapsed, eta);
        int64_t every = p->total / 20 > 0 ? p->total / 20 : 1;
        p->next_plain = step + every;
    }
    fflush(stdout);
}

void ex_progress_done(ex_progress *p) {
    if (p->tty) printf("\n");
    fflush(stdout);
}

void ex_log(ex_progress *p, const char *fmt, ...) {
    if (p && p->tty) printf("\r\033[K");
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* ---- data files ------------------------------------------------------------------ */
const char *ex_data_path(const char *file, char *buf, size_t size) {
    const char *dir = getenv("TG_DATA");
    snprintf(buf, size, "%s/%s", dir && *dir ? dir : "../shared/data", file);
    return buf;
}

FILE *ex_open_data(const char *path, const char *hint) {
    FILE *f = tg_file_fopen(path, "data file");   /* a FIFO or device is refused, never read */
    if (!f) fprintf(stderr, "error: %s\n  %s\n", tg_last_error(), hint ? hint : "");
    return f;
}

char *ex_read_file(const char *path, size_t *len, const char *hint) {
    FILE *f = ex_open_data(path, hint);
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *grown = cap <= SIZE_MAX / 4 ? realloc(buf, 2 * cap + 1) : NULL;
            if (!grown) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
    }
    bool failed = !buf || ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        fprintf(stderr, "error: cannot read data file '%s'\n  %s\n", path, hint ? hint : "");
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

int ex_bad_data(const char *path, long line, const char *what, const char *hint) {
    fprintf(stderr, "error: malformed data file '%s'", path);
    if (line > 0) fprintf(stderr, " at line %ld", line);
    fprintf(stderr, ": %s\n  %s\n", what, hint ? hint : "");
    return 1;
}

/* ---- plots ------------------------------------------------------------------------- */
static bool have_gnuplot(void) { return system("command -v gnuplot >/dev/null 2>&1") == 0; }

/* Runs a gnuplot script; data lives in the script as inline data blocks. */
static bool run_gnuplot(FILE *script_tmp, const char *png) {
    rewind(script_tmp);
    FILE *g = popen("gnuplot 2>&1", "w");
    if (!g) return false;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, script_tmp)) > 0) fwrite(buf, 1, n, g);
    int rc = pclose(g);
    if (rc != 0) printf("plot skipped: gnuplot failed writing %s\n", png);
    return rc == 0;
}

bool ex_plot_lines(const char *png, const char *title, const char *xlabel, const char *ylabel,
                   const double *x, int64_t n, int n_series, const char *const *names,
                   const double *const *ys) {
    if (!have_gnuplot()) {
        printf("plot skipped: gnuplot not found (apt-get install gnuplot-nox)\n");
        return false;
    }
    FILE *s = tmpfile();
    if (!s) return false;
    fprintf(s, "set terminal pngcairo size 1000,600\nset output '%s'\nset title '%s'\n", png, title);
    fprintf(s, "set xlabel '%s'\nset ylabel '%s'\nset grid\nset key below\n",
            xlabel, ylabel);
    fprintf(s, "$d << EOD\n");
    for (int64_t i = 0; i < n; i++) {
        fprintf(s, "%.9g", x ? x[i] : (double)i);
        for (int k = 0; k < n_series; k++) {
            if (isfinite(ys[k][i])) fprintf(s, " %.9g", ys[k][i]);
            else fprintf(s, " NaN");
        }
        fprintf(s, "\n");
    }
    fprintf(s, "EOD\nplot ");
    for (int k = 0; k < n_series; k++)
        fprintf(s, "%s$d using 1:%d with lines lw 2 title '%s'", k ? ", " : "", k + 2, names[k]);
    fprintf(s, "\n");
    bool ok = run_gnuplot(s, png);
    fclose(s);
    if (ok) printf("wrote %s\n", png);
    return ok;
}

bool ex_plot_heatmap(const char *png, const char *title, const double *m, int rows, int cols,
                     const char *const *row_labels, const char *const *col_labels) {
    if (!have_gnuplot()) {
        printf("plot skipped: gnuplot not found (apt-get install gnuplot-nox)\n");
        return false;
    }
    FILE *s = tmpfile();
    if (!s) return false;
    fprintf(s, "set terminal pngcairo size 800,700\nset output '%s'\nset title '%s'\n", png, title);
    fprintf(s, "set yrange [%d.5:-0.5]\nset xrange [-0.5:%d.5]\nset palette grey negative\n",
            rows - 1, cols - 1);
    if (col_labels) {
        fprintf(s, "set xtics (");
        for (int j = 0; j < cols; j++) fprintf(s, "%s\"%s\" %d", j ? ", " : "", col_labels[j], j);
        fprintf(s, ")\n");
    }
    if (row_labels) {
        fprintf(s, "set ytics (");
        for (int i = 0; i < rows; i++) fprintf(s, "%s\"%s\" %d", i ? ", " : "", row_labels[i], i);
        fprintf(s, ")\n");
    }
    fprintf(s, "$m << EOD\n");
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < cols; j++) fprintf(s, "%s%.6g", j ? " " : "", m[(size_t)i * cols + j]);
        fprintf(s, "\n");
    }
    fprintf(s, "EOD\nplot $m matrix with image notitle\n");
    bool ok = run_gnuplot(s, png);
    fclose(s);
    if (ok) printf("wrote %s\n", png);
    return ok;
}
