/* bench/epilogue_bound.c - what a bias+relu epilogue on W4's feed-forward
 * GEMM could gain on this machine, before anyone builds one (issue 10 item 4).
 *
 * W4's first feed-forward product is x [2048, 128] W_1^T (W_1 [512, 128]) ->
 * c [2048, 512]; the fused group then reads c and writes y = relu(c + b_1).
 * An epilogue would run that pass on each row panel of c while the panel is
 * in cache (or on each micro-tile while it is in registers). Four ways, each
 * timed after a sweep over 32 MB that evicts the caches, as the other ops of
 * a step would:
 *   full     the GEMM over all rows, then the pass over all rows (today)
 *   panels   per row panel: the GEMM's rows (one BLIS call each), then the
 *            pass on them while they are in L2 (the epilogue through BLIS)
 *   pass-l3  the pass alone, c just written by the GEMM (in L3, 4 MB)
 *   pass-l2  the pass alone, panel by panel, each panel just touched (in L2):
 *            pass-l3 - pass-l2 is all that a packed-once panel GEMM could
 *            save; pass-l3 itself bounds a register-level epilogue
 * Median ms per call over --rounds rounds; the modes alternate within each
 * round. `panels` must equal `full` (checked: exit 1 when not).
 *   build-rel/bench/epilogue_bound [--threads N] [--panel ROWS] [--rounds N]
 *                                  [--f64] [--cpu-clock] */
#include "bench_util.h"

enum { ROWS = 2048, IN = 128, OUT = 512, REPS = 20, MODES = 4, MAX_ROUNDS = 64 };
enum { EVICT_BYTES = 32 << 20 };

typedef struct bound_opts {
    int threads, panel, rounds;
    bool f64, cpu_clock;
} bound_opts;

typedef struct bound_bufs {
    void *x, *w, *b, *c, *y, *c_ref, *y_ref;
    unsigned char *evict;
    size_t es;
} bound_bufs;

static double now(bool cpu) { return cpu ? bench_cpu_now() : bench_now(); }

/* y [rows, OUT] = relu(c + b), b [OUT] over the rows; one per dtype. */
#define BIAS_RELU(T)                                                                             \
    static void bias_relu_##T(T *restrict y, const T *restrict c, const T *restrict b,          \
                              int64_t rows) {                                                    \
        for (int64_t r = 0; r < rows; r++)                                                       \
            for (int64_t j = 0; j < OUT; j++) {                                                  \
                T v = c[r * OUT + j] + b[j];                                                     \
                y[r * OUT + j] = v > 0 ? v : 0;                                                  \
            }                                                                                    \
    }
BIAS_RELU(float)
BIAS_RELU(double)

static void bias_relu(const bound_opts *o, const bound_bufs *m, void *y, const void *c,
                      int64_t rows) {
    if (o->f64)
        bias_relu_double(y, c, m->b, rows);
    else
        bias_relu_float(y, c, m->b, rows);
}

/* c[r0 .. r0+rows) = x[r0 .. r0+rows) W^T */
static void gemm_rows(const bound_opts *o, const bound_bufs *m, void *c, int64_t r0, int64_t rows) {
    const char *x = (const char *)m->x + (size_t)(r0 * IN) * m->es;
    char *cr = (char *)c + (size_t)(r0 * OUT) * m->es;
    if (o->f64) {
        double one = 1, zero = 0;
        bli_dgemm(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, rows, OUT, IN, &one, (double *)x, IN, 1,
                  m->w, IN, 1, &zero, (double *)cr, OUT, 1);
    } else {
        float one = 1, zero = 0;
        bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, rows, OUT, IN, &one, (float *)x, IN, 1,
                  m->w, IN, 1, &zero, (float *)cr, OUT, 1);
    }
}

static unsigned touch(const void *p, size_t bytes) {
    const volatile unsigned char *s = p;
    unsigned acc = 0;
    for (size_t i = 0; i < bytes; i += 64) acc += s[i];
    return acc;
}

static void *at_row(const bound_bufs *m, void *base, int64_t r) {
    return (char *)base + (size_t)(r * OUT) * m->es;
}

/* One call of mode k; returns its seconds (pass-l2 counts only the passes). */
static double run_mode(const bound_opts *o, const bound_bufs *m, int k, void *c, void *y) {
    touch(m->evict, EVICT_BYTES);
    double t = 0, t0;
    switch (k) {
    case 0:
        t0 = now(o->cpu_clock);
        gemm_rows(o, m, c, 0, ROWS);
        bias_relu(o, m, y, c, ROWS);
        return now(o->cpu_clock) - t0;
    case 1:
        t0 = now(o->cpu_clock);
        for (int64_t r = 0; r < ROWS; r += o->panel) {
            int64_t n = ROWS - r < o->panel ? ROWS - r : o->panel;
            gemm_rows(o, m, c, r, n);
            bias_relu(o, m, at_row(m, y, r), at_row(m, c, r), n);
        }
        return now(o->cpu_clock) - t0;
    case 2:
        touch(c, (size_t)(ROWS * OUT) * m->es);
        t0 = now(o->cpu_clock);
        bias_relu(o, m, y, c, ROWS);
        return now(o->cpu_clock) - t0;
    default:
        for (int64_t r = 0; r < ROWS; r += o->panel) {
            int64_t n = ROWS - r < o->panel ? ROWS - r : o->panel;
            touch(at_row(m, c, r), (size_t)(n * OUT) * m->es);
            t0 = now(o->cpu_clock);
            bias_relu(o, m, at_row(m, y, r), at_row(m, c, r), n);
            t += now(o->cpu_clock) - t0;
        }
        return t;
    }
}

/* Worst |a - b| / (1 + |b|) over n elements; NaN when either holds one. */
static double worst_diff(const bound_opts *o, const void *a, const void *b, int64_t n) {
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = o->f64 ? ((const double *)a)[i] : ((const float *)a)[i];
        double r = o->f64 ? ((const double *)b)[i] : ((const float *)b)[i];
        double d = fabs(x - r) / (1 + fabs(r));
        if (!(d <= worst)) worst = d;   /* NaN sticks */
    }
    return worst;
}

static int parse(int argc, char **argv, bound_opts *o) {
    *o = (bound_opts){.threads = 1, .panel = 256, .rounds = 9};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--threads") && v) o->threads = atoi(argv[++i]);
        else if (!strcmp(a, "--panel") && v) o->panel = atoi(argv[++i]);
        else if (!strcmp(a, "--rounds") && v) o->rounds = atoi(argv[++i]);
        else if (!strcmp(a, "--f64")) o->f64 = true;
        else if (!strcmp(a, "--cpu-clock")) o->cpu_clock = true;
        else return -1;
    }
    bool ok = o->threads >= 1 && o->panel >= 1 && o->panel <= ROWS && o->rounds >= 1 &&
              o->rounds <= MAX_ROUNDS;
    return ok ? 0 : -1;
}

static void fill(const bound_opts *o, void *p, int64_t n, unsigned *seed, double scale) {
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        double v = scale * ((double)(*seed >> 8) / (double)(1u << 24) - 0.5);
        if (o->f64) ((double *)p)[i] = v;
        else ((float *)p)[i] = (float)v;
    }
}

static int alloc_bufs(const bound_opts *o, bound_bufs *m) {
    m->es = o->f64 ? sizeof(double) : sizeof(float);
    size_t out = (size_t)ROWS * OUT * m->es;
    m->x = malloc((size_t)ROWS * IN * m->es);
    m->w = malloc((size_t)OUT * IN * m->es);
    m->b = malloc((size_t)OUT * m->es);
    m->c = malloc(out), m->y = malloc(out), m->c_ref = malloc(out), m->y_ref = malloc(out);
    m->evict = calloc(EVICT_BYTES, 1);
    if (!m->x || !m->w || !m->b || !m->c || !m->y || !m->c_ref || !m->y_ref || !m->evict)
        return -1;
    unsigned seed = 7;
    fill(o, m->x, ROWS * IN, &seed, 2.0);
    fill(o, m->w, OUT * IN, &seed, 0.2);
    fill(o, m->b, OUT, &seed, 0.2);
    return 0;
}

static void free_bufs(bound_bufs *m) {
    void *p[] = {m->x, m->w, m->b, m->c, m->y, m->c_ref, m->y_ref, m->evict};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
}

int main(int argc, char **argv) {
    bound_opts o;
    if (parse(argc, argv, &o) < 0) {
        fprintf(stderr, "usage: %s [--threads N] [--panel ROWS (1..%d)] [--rounds N (1..%d)]"
                " [--f64] [--cpu-clock]\n", argv[0], ROWS, MAX_ROUNDS);
        return 2;
    }
    bli_thread_set_num_threads(o.threads);
    bound_bufs m = {0};
    if (alloc_bufs(&o, &m) < 0) {
        fprintf(stderr, "epilogue_bound: out of memory\n");
        free_bufs(&m);
        return 1;
    }
    static const char *names[MODES] = {"full", "panels", "pass-l3", "pass-l2"};
    static double samples[MODES][MAX_ROUNDS];
    run_mode(&o, &m, 0, m.c_ref, m.y_ref);   /* the reference and a warm-up */
    for (int round = 0; round < o.rounds; round++)
        for (int k = 0; k < MODES; k++) {
            double t[REPS];
            for (int i = 0; i < REPS; i++) t[i] = run_mode(&o, &m, k, m.c, m.y);
            samples[k][round] = bench_median(t, REPS);
        }
    run_mode(&o, &m, 1, m.c, m.y);
    double dc = worst_diff(&o, m.c, m.c_ref, (int64_t)ROWS * OUT);
    double dy = worst_diff(&o, m.y, m.y_ref, (int64_t)ROWS * OUT);
    printf("[%d, %d] x [%d, %d]^T + bias, relu; %s, %d thread(s), panel %d rows, %s clock\n", ROWS,
           IN, OUT, IN, o.f64 ? "float64" : "float32", o.threads, o.panel,
           o.cpu_clock ? "CPU" : "wall");
    for (int k = 0; k < MODES; k++)
        printf("  %-8s %7.3f ms  (median of %d rounds of %d)\n", names[k],
               1e3 * bench_median(samples[k], o.rounds), o.rounds, REPS);
    printf("  panels vs full: worst relative difference c %.3g, y %.3g\n", dc, dy);
    free_bufs(&m);
    bool same = dc <= (o.f64 ? 1e-12 : 1e-5) && dy <= (o.f64 ? 1e-12 : 1e-5);
    if (!same) fprintf(stderr, "epilogue_bound: panels differ from the full product\n");
    return same ? 0 : 1;
}
