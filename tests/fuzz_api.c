/* tests/fuzz_api.c - bounded API-misuse fuzzer (issue 9, "Done when").
 *
 * Random sequences of public calls, the way a careless or hostile caller would
 * make them: tensors with random dtypes (some invalid), ndims (some out of
 * range), shapes mixing small, zero, huge and negative dims and NULL; every
 * op with random inputs (NULL, int32, mismatched), axes and attributes near
 * INT64_MAX; backward from anything; resets, accessors with wild indices,
 * gradcheck with up to 100 inputs, tape allocations, thread counts, the
 * parameter registry, and a user op whose infer describes anything.
 *
 * A finding is anything a sanitizer reports (build it with ASan+UBSan), a
 * crash, a hang (a watchdog), or a broken promise of the API: a failed call
 * that leaves no error, a result that is not a valid tensor.
 *
 * The calls keep the documented contracts (one tape; arena tensors are not
 * used after tg_tape_reset except once, right after it, to exercise the
 * generation check; caller tensors are freed only when no tape node refers to
 * them; arrays hold as many entries as the count says), since breaking those
 * is undefined by the API's own terms.
 *
 *   fuzz_api [--seed N] [--seconds S | --sequences N] [--first K] [--verbose]
 * Sequence k draws from its own generator (seed, k): a finding prints the
 * seed and k, and `--seed N --first k --sequences 1 --verbose` replays it. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "tapegrad.h"
#include "tg_test.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
/* Results that are valid but large (a [2^31,0] x [0,5] matmul is 10^10
 * elements) must fail as out of memory, not take the machine's memory. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
    return "allocator_may_return_null=1:max_allocation_size_mb=1024:detect_leaks=1";
}
#endif

/* ---- the run's state -------------------------------------------------------------------- */
enum { POOL = 16, SMALL_NUMEL = 1024, BUF = 4096, SEQ_CALLS = 60, WATCHDOG_S = 30 };

typedef struct slot {
    tg_tensor *t;
    bool caller_owned; /* tg_tensor_new/_from/_wrap/_clone: ours to free */
} slot;

typedef struct fuzz {
    tg_rng r;
    tg_tape *tp;
    tg_params *params;
    slot pool[POOL];
    tg_rng dropout_rng;
    double values[BUF];
    double wrap_buf[BUF + 8]; /* + the slack tensor.h asks for */
    bool verbose;
    uint64_t calls, ops_ran, ops_refused, backwards_ran;
    tg_tensor *last; /* the latest op result (arena), the usual thing to backpropagate from */
} fuzz;

static volatile sig_atomic_t current_seq = -1;
static uint64_t run_seed;
static char last_call[160];

static void say(fuzz *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_call, sizeof last_call, fmt, ap);
    va_end(ap);
    f->calls++;
    if (f->verbose) printf("  %s\n", last_call);
}

static void report_finding(const char *what) {
    char msg[512];
    int n = snprintf(msg, sizeof msg,
                     "fuzz_api: FINDING (%s) in sequence %ld of seed %llu, last call: %s\n"
                     "replay: fuzz_api --seed %llu --first %ld --sequences 1 --verbose\n",
                     what, (long)current_seq, (unsigned long long)run_seed, last_call,
                     (unsigned long long)run_seed, (long)current_seq);
    if (n > 0) (void)!write(2, msg, (size_t)(n < (int)sizeof msg ? n : (int)sizeof msg - 1));
}

static void on_signal(int sig) {
    report_finding(sig == SIGALRM ? "hang: watchdog" : "signal");
    signal(sig, SIG_DFL);
    if (sig == SIGALRM) _exit(1);
    raise(sig);
}

#ifdef __SANITIZE_ADDRESS__
static void on_sanitizer_report(void) { report_finding("sanitizer report above"); }
#endif

/* A broken promise of the API: report and stop. */
static void finding(fuzz *f, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    (void)f;
    report_finding(what);
    abort();
}

/* ---- random choices ----------------------------------------------------------------------- */
static uint64_t below(fuzz *f, uint64_t n) { return n ? tg_rng_next(&f->r) % n : 0; }
static bool chance(fuzz *f, int percent) { return (int)below(f, 100) < percent; }

/* Sizes, offsets, strides: mostly small, sometimes at the edges. */
static int64_t wild_i64(fuzz *f) {
    static const int64_t edge[] = {0,  1,  2,  3,  -1,         -2,         7,
                                   64, 65, ((int64_t)1 << 31), ((int64_t)1 << 40), ((int64_t)1 << 62),
                                   INT64_MAX, INT64_MIN, INT64_MAX / 2};
    return chance(f, 70) ? (int64_t)below(f, 6) : edge[below(f, sizeof edge / sizeof edge[0])];
}

static int wild_axis(fuzz *f) {
    static const int edge[] = {-1, -2, 0, 1, 2, 3, 5, 6, 7, -7, 100, -100, 2147483647, -2147483647 - 1};
    return chance(f, 60) ? (int)below(f, 4) - 1 : edge[below(f, sizeof edge / sizeof edge[0])];
}

static double wild_value(fuzz *f) {
    static const double edge[] = {0.0, -0.0, 1.0, -1.0, 1e30, -1e30, 1e300, NAN, INFINITY,
                                  -INFINITY, 2147483648.0, -2147483649.0, 0.5, 1e-310};
    return chance(f, 80) ? tg_rng_uniform(&f->r) * 4 - 2 : edge[below(f, sizeof edge / sizeof edge[0])];
}

static tg_dtype wild_dtype(fuzz *f) {
    return chance(f, 95) ? (tg_dtype)below(f, 3) : (tg_dtype)(chance(f, 50) ? 7 : -1);
}

/* A shape: small (at most SMALL_NUMEL elements, so it may really be made),
 * empty with huge other dims, or past every cap. ndim may be out of range. */
static int wild_shape(fuzz *f, int64_t *shape) {
    int ndim = chance(f, 95) ? (int)below(f, 4) + (chance(f, 20) ? 2 : 0)
                             : (chance(f, 50) ? -1 : TG_MAX_DIMS + 1 + (int)below(f, 3));
    int kind = (int)below(f, 10); /* 0-6 small, 7-8 empty giant, 9 anything */
    int64_t budget = SMALL_NUMEL;
    for (int i = 0; i < TG_MAX_DIMS + 4 && i < 10; i++) {
        if (kind <= 6) {
            int64_t d = (int64_t)below(f, 6);
            if (d > budget) d = budget;
            budget = d ? budget / d : budget;
            shape[i] = d;
        } else if (kind <= 8) {
            shape[i] = i == 0 ? 0 : wild_i64(f);
            if (shape[i] < 0) shape[i] = 0;
        } else {
            shape[i] = wild_i64(f);
        }
    }
    return ndim;
}

/* Elements of a shape if it is one a tensor may have, else -1. */
static int64_t numel_of(int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > TG_MAX_DIMS) return -1;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || (shape[i] > 0 && __builtin_mul_overflow(n, shape[i], &n))) return -1;
    return n;
}

static slot *pick_slot(fuzz *f) { return &f->pool[below(f, POOL)]; }

/* A tensor from the pool, sometimes NULL. */
static tg_tensor *any(fuzz *f) { return chance(f, 5) ? NULL : pick_slot(f)->t; }

/* ---- checks of the API's promises ------------------------------------------------------------- */
static void check_tensor(fuzz *f, const tg_tensor *t, const char *what) {
    if (!t) return;
    int nd = tg_tensor_ndim(t);
    int64_t n = tg_tensor_numel(t), prod = 1;
    if (nd < 0 || nd > TG_MAX_DIMS) finding(f, "%s: ndim %d", what, nd);
    for (int i = 0; i < nd; i++) {
        int64_t d = tg_tensor_shape(t)[i];
        if (d < 0 || d > ((int64_t)1 << 40)) finding(f, "%s: dim %d is %lld", what, i, (long long)d);
        prod = d == 0 || prod == 0 ? 0 : prod * d;
        if (prod > ((int64_t)1 << 40)) finding(f, "%s: more than 2^40 elements", what);
    }
    if (n != prod) finding(f, "%s: numel %lld for a shape of %lld", what, (long long)n, (long long)prod);
    if (tg_tensor_dtype(t) > TG_I32) finding(f, "%s: dtype %d", what, (int)tg_tensor_dtype(t));
}

/* An op's result: a valid tensor, or NULL with the tape's error set. */
static tg_tensor *op_result(fuzz *f, tg_tensor *y) {
    if (!y && tg_tape_status(f->tp) == TG_OK) finding(f, "NULL without an error on the tape");
    if (!y && !tg_tape_error(f->tp)[0]) finding(f, "an error without a message");
    check_tensor(f, y, "op result");
    if (y) f->last = y;
    if (y)
        f->ops_ran++;
    else
        f->ops_refused++;
    if (f->verbose) printf("    -> %s\n", y ? "ok" : tg_tape_error(f->tp));
    return y;
}

/* A call without a tape: a NULL (or a status) comes with the last error. */
static void last_error_set(fuzz *f, bool failed) {
    if (failed && (tg_last_status() == TG_OK || !tg_last_error()[0]))
        finding(f, "failed without a last error");
}

/* Keep a new caller tensor in a slot that does not hold one (those leave the
 * pool only at resets, when no node refers to them); else free it now. */
static void keep_caller(fuzz *f, tg_tensor *t) {
    slot *s = pick_slot(f);
    if (s->caller_owned) {
        tg_tensor_free(t);
        return;
    }
    *s = (slot){t, true};
}

/* Keep an arena result in the pool. */
static void keep(fuzz *f, tg_tensor *y) {
    if (!y) return;
    slot *s = pick_slot(f);
    if (s->caller_owned) return; /* caller tensors leave the pool only at resets */
    s->t = y;
}

/* ---- actions: tensors ------------------------------------------------------------------------ */
static void make_tensor(fuzz *f) {
    int64_t shape[10];
    int ndim = wild_shape(f, shape);
    tg_dtype dt = wild_dtype(f);
    const int64_t *sp = chance(f, 3) ? NULL : shape;
    int how = (int)below(f, 4);
    tg_tensor *t = NULL;
    tg_clear_last_error();
    if (how == 3) { /* an arena tensor */
        say(f, "tape_tensor(dtype %d, ndim %d)", (int)dt, ndim);
        t = tg_tape_tensor(f->tp, dt, ndim, sp);
        op_result(f, t);
        keep(f, t);
        return;
    }
    if (how == 0) {
        say(f, "tensor_new(dtype %d, ndim %d)", (int)dt, ndim);
        t = tg_tensor_new(dt, ndim, sp);
    } else if (how == 1) {
        for (int i = 0; i < BUF; i++) f->values[i] = wild_value(f);
        say(f, "tensor_from(dtype %d, ndim %d)", (int)dt, ndim);
        /* the caller promises numel values: only given when they fit (or the shape is refused) */
        int64_t n = numel_of(ndim, shape);
        bool fits = n <= BUF || n > ((int64_t)1 << 40);
        t = tg_tensor_from(dt, ndim, sp, chance(f, 10) || !fits ? NULL : f->values);
    } else {
        say(f, "tensor_wrap(dtype %d, ndim %d)", (int)dt, ndim);
        t = tg_tensor_wrap(dt, ndim, sp, chance(f, 5) ? NULL : f->wrap_buf);
        /* the caller promises the buffer holds the shape: only small ones stay */
        if (t && (size_t)tg_tensor_numel(t) * tg_dtype_size(dt) > sizeof f->values) {
            tg_tensor_free(t);
            t = NULL;
            return;
        }
    }
    last_error_set(f, !t);
    check_tensor(f, t, "new tensor");
    if (!t) return;
    if (chance(f, 60)) tg_tensor_set_requires_grad(t, true);
    keep_caller(f, t);
}

static void poke_tensor(fuzz *f) {
    tg_tensor *t = any(f);
    int64_t i = chance(f, 70) ? (int64_t)below(f, 8) : wild_i64(f);
    double v = wild_value(f);
    char s[64];
    tg_clear_last_error();
    switch (below(f, 9)) {
    case 0: say(f, "tensor_get(%lld)", (long long)i); (void)tg_tensor_get(t, i); break;
    case 1: say(f, "tensor_set(%lld, %g)", (long long)i, v); last_error_set(f, tg_tensor_set(t, i, v) != TG_OK); break;
    case 2: say(f, "tensor_fill(%g)", v); last_error_set(f, tg_tensor_fill(t, v) != TG_OK); break;
    case 3: say(f, "tensor_grad_get(%lld)", (long long)i); (void)tg_tensor_grad_get(t, i); break;
    case 4: say(f, "tensor_dim(%d)", (int)i); (void)tg_tensor_dim(t, (int)i); break;
    case 5: say(f, "tensor_copy"); last_error_set(f, tg_tensor_copy(t, any(f)) != TG_OK); break;
    case 6: say(f, "tensor_zero_grad"); tg_tensor_zero_grad(t); break;
    case 7: say(f, "shape_str"); tg_shape_str(t, s, chance(f, 20) ? 3 : sizeof s); break;
    default:
        say(f, "accessors");
        (void)tg_tensor_dtype(t);
        (void)tg_tensor_ndim(t);
        (void)tg_tensor_shape(t);
        (void)tg_tensor_numel(t);
        (void)tg_tensor_data(t);
        (void)tg_tensor_cdata(t);
        (void)tg_tensor_grad(t);
        (void)tg_tensor_item(t);
        (void)tg_tensor_requires_grad(t);
        check_tensor(f, t, "pool tensor");
    }
}

static void clone_tensor(fuzz *f) {
    tg_tensor *src = any(f);
    tg_dtype dt = wild_dtype(f);
    say(f, "tensor_clone(dtype %d)", (int)dt);
    tg_clear_last_error();
    tg_tensor *t = tg_tensor_clone(src, dt);
    last_error_set(f, !t);
    if (!t) return;
    if (tg_tensor_numel(t) > SMALL_NUMEL) { /* a clone of an empty giant is empty: fine */
        tg_tensor_free(t);
        return;
    }
    keep_caller(f, t);
}

/* ---- actions: ops ------------------------------------------------------------------------------ */
static tg_tensor *unary_op(fuzz *f, tg_tensor *x) {
    double a = wild_value(f), b = wild_value(f);
    switch (below(f, 14)) {
    case 0: say(f, "neg"); return tg_neg(f->tp, x);
    case 1: say(f, "scale(%g)", a); return tg_scale(f->tp, x, a);
    case 2: say(f, "shift(%g)", a); return tg_shift(f->tp, x, a);
    case 3: say(f, "sigmoid"); return tg_sigmoid(f->tp, x);
    case 4: say(f, "tanh"); return tg_tanh(f->tp, x);
    case 5: say(f, "relu"); return tg_relu(f->tp, x);
    case 6: say(f, "exp"); return tg_exp(f->tp, x);
    case 7: say(f, "log"); return tg_log(f->tp, x);
    case 8: say(f, "sqrt"); return tg_sqrt(f->tp, x);
    case 9: say(f, "pow(%g)", a); return tg_pow(f->tp, x, a);
    case 10: say(f, "hard_sigmoid"); return tg_hard_sigmoid(f->tp, x);
    case 11: say(f, "hard_sigmoid_ex(%g, %g)", a, b); return tg_hard_sigmoid_ex(f->tp, x, a, b);
    case 12: say(f, "detach"); return tg_detach(f->tp, x);
    default: say(f, "dropout(%g)", a / 4);
        return tg_dropout(f->tp, x, chance(f, 80) ? fabs(a) / 4 : a, chance(f, 10) ? NULL : &f->dropout_rng);
    }
}

static tg_tensor *binary_op(fuzz *f, tg_tensor *a, tg_tensor *b) {
    tg_matmul_opts o = {.trans_a = chance(f, 30), .trans_b = chance(f, 30),
                        .heads = chance(f, 15) ? (int64_t)below(f, 5) - 1 : 0,
                        .merge_heads = chance(f, 30)};
    switch (below(f, 10)) {
    case 0: say(f, "add"); return tg_add(f->tp, a, b);
    case 1: say(f, "sub"); return tg_sub(f->tp, a, b);
    case 2: say(f, "mul"); return tg_mul(f->tp, a, b);
    case 3: say(f, "div"); return tg_div(f->tp, a, b);
    case 4: say(f, "matmul_ex(%d, %d, heads %lld%s)", o.trans_a, o.trans_b, (long long)o.heads,
            o.merge_heads ? ", merged" : "");
        return tg_matmul_ex(f->tp, a, b, chance(f, 20) ? NULL : &o);
    case 5: say(f, "mse"); return tg_mse(f->tp, a, b);
    case 6: say(f, "bce_with_logits"); return tg_bce_with_logits(f->tp, a, b);
    case 7: say(f, "embedding"); return tg_embedding(f->tp, a, b);
    case 8: say(f, "cross_entropy"); return tg_cross_entropy(f->tp, a, b);
    default: {
        int32_t ign = chance(f, 50) ? -100 : (int32_t)wild_i64(f);
        say(f, "cross_entropy_ex(%d)", (int)ign);
        return tg_cross_entropy_ex(f->tp, a, b, ign);
    }
    }
}

static tg_tensor *axis_op(fuzz *f, tg_tensor *x) {
    int axis = wild_axis(f), axis1 = wild_axis(f);
    bool keepdim = chance(f, 50);
    int64_t s0 = wild_i64(f), s1 = chance(f, 50) ? wild_i64(f) : -(int64_t)below(f, 3);
    switch (below(f, 11)) {
    case 0: say(f, "softmax(%d)", axis); return tg_softmax(f->tp, x, axis);
    case 1: say(f, "log_softmax(%d)", axis); return tg_log_softmax(f->tp, x, axis);
    case 2: say(f, "sum"); return tg_sum(f->tp, x);
    case 3: say(f, "mean"); return tg_mean(f->tp, x);
    case 4: say(f, "sum_axis(%d)", axis); return tg_sum_axis(f->tp, x, axis, keepdim);
    case 5: say(f, "mean_axis(%d)", axis); return tg_mean_axis(f->tp, x, axis, keepdim);
    case 6: say(f, "max_axis(%d)", axis); return tg_max_axis(f->tp, x, axis, keepdim);
    case 7: say(f, "slice(%d, %lld, %lld)", axis, (long long)s0, (long long)s1);
        return tg_slice(f->tp, x, axis, s0, s1);
    case 8: say(f, "transpose(%d, %d)", axis, axis1); return tg_transpose(f->tp, x, axis, axis1);
    case 9: say(f, "max_pool1d(%lld, %lld)", (long long)s0, (long long)s1);
        return tg_max_pool1d(f->tp, x, s0, s1);
    default: {
        int perm[8];
        for (int i = 0; i < 8; i++) perm[i] = chance(f, 80) ? (int)below(f, 4) : wild_axis(f);
        say(f, "permute");
        return tg_permute(f->tp, x, chance(f, 5) ? NULL : perm);
    }
    }
}

static tg_tensor *shape_op(fuzz *f) {
    tg_tensor *xs[8];
    int64_t shape[10], sizes[64];
    for (int i = 0; i < 8; i++) xs[i] = any(f);
    switch (below(f, 4)) {
    case 0: {
        int n = (int)below(f, 9) - (chance(f, 5) ? 1 : 0), axis = wild_axis(f);
        say(f, "concat(%d, axis %d)", n, axis);
        return tg_concat(f->tp, n, chance(f, 3) ? NULL : xs, axis);
    }
    case 1: {
        int ndim = wild_shape(f, shape);
        if (chance(f, 30)) shape[below(f, 4)] = -1;
        say(f, "reshape(ndim %d)", ndim);
        return tg_reshape(f->tp, xs[0], ndim, chance(f, 3) ? NULL : shape);
    }
    case 2: {
        tg_conv1d_opts o = {wild_i64(f), wild_i64(f), wild_i64(f)};
        say(f, "conv1d(stride %lld, padding %lld, dilation %lld)", (long long)o.stride,
            (long long)o.padding, (long long)o.dilation);
        return tg_conv1d(f->tp, xs[0], xs[1], chance(f, 50) ? xs[2] : NULL, chance(f, 10) ? NULL : &o);
    }
    default: {
        tg_tensor *outs[64];
        int n = chance(f, 90) ? (int)below(f, 5) : (int)wild_i64(f) % 65;
        for (int i = 0; i < 64; i++) sizes[i] = chance(f, 80) ? (int64_t)below(f, 4) : wild_i64(f);
        say(f, "split(%d)", n);
        tg_status st = tg_split(f->tp, xs[0], wild_axis(f), n, chance(f, 3) ? NULL : sizes,
                                n < 1 || n > 64 || chance(f, 3) ? NULL : outs);
        if (st == TG_OK) return outs[below(f, (uint64_t)n)];
        if (tg_tape_status(f->tp) == TG_OK) finding(f, "split failed without an error");
        return NULL;
    }
    }
}

/* A user op whose infer describes whatever its attribute says. */
typedef struct wild_attr { tg_desc d; size_t scratch; } wild_attr;

static int wild_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr, tg_desc *out) {
    (void)tp;
    (void)n_in;
    (void)in;
    *out = ((const wild_attr *)attr)->d;
    return 0;
}
static int wild_forward(tg_node *n) {
    const wild_attr *at = n->attr;
    if (at->scratch && !tg_node_scratch(n, at->scratch)) return -1;
    memset(tg_tensor_data(n->out), 0, (size_t)tg_tensor_numel(n->out) * tg_dtype_size(tg_tensor_dtype(n->out)));
    return 0;
}
static int wild_vjp(tg_node *n) {
    (void)tg_input_grad(n, 0);
    return 0;
}
static const tg_op wild_op = {.name = "wild", .n_in = 1, .attr_size = sizeof(wild_attr),
                              .infer = wild_infer, .forward = wild_forward, .vjp = wild_vjp};

static tg_tensor *user_op(fuzz *f) {
    wild_attr at = {{0}, 0};
    int64_t shape[10];
    at.d.dtype = wild_dtype(f);
    at.d.ndim = wild_shape(f, shape);
    memcpy(at.d.shape, shape, sizeof at.d.shape);
    at.scratch = chance(f, 80) ? below(f, 4096) : (size_t)wild_i64(f);
    tg_tensor *x = any(f);
    say(f, "user op (dtype %d, ndim %d, scratch %zu)", (int)at.d.dtype, at.d.ndim, at.scratch);
    return tg_apply(f->tp, &wild_op, 1, &x, &at);
}

static void run_op(fuzz *f) {
    tg_tensor *y;
    switch (below(f, 5)) {
    case 0: y = unary_op(f, any(f)); break;
    case 1: { /* one tensor twice half the time: shapes and dtypes then agree */
        tg_tensor *a = any(f);
        y = binary_op(f, a, chance(f, 50) ? a : any(f));
        break;
    }
    case 2: y = axis_op(f, any(f)); break;
    case 3: y = shape_op(f); break;
    default: y = user_op(f); break;
    }
    keep(f, op_result(f, y));
}

/* ---- actions: tape, backward, gradcheck, params, runtime ------------------------------------------ */
static void backward(fuzz *f) {
    tg_tensor *y = chance(f, 70) ? f->last : any(f), *dy = any(f);
    tg_status st;
    if (chance(f, 60)) tg_tape_clear_error(f->tp); /* the first error sticks: backward refuses */
    if (chance(f, 50)) {
        if (y && chance(f, 70) && tg_tensor_numel(y) != 1) y = tg_sum(f->tp, y);
        say(f, "backward");
        st = tg_backward(f->tp, y);
    } else {
        if (y && chance(f, 70)) {
            dy = tg_tape_tensor(f->tp, tg_tensor_dtype(y), tg_tensor_ndim(y), tg_tensor_shape(y));
            tg_tensor_fill(dy, wild_value(f));
        }
        say(f, "backward_ex");
        st = tg_backward_ex(f->tp, y, dy);
    }
    if (f->verbose) printf("    -> %s\n", st == TG_OK ? "ok" : tg_tape_error(f->tp));
    if (st != TG_OK && tg_tape_status(f->tp) == TG_OK) finding(f, "backward failed without an error");
    f->backwards_ran += st == TG_OK;
}

/* After a reset every arena tensor is dead: one use right away (the
 * generation check must refuse it), then they leave the pool, and caller
 * tensors may now be freed (no node refers to them any more). */
static void reset_tape(fuzz *f) {
    say(f, "tape_reset");
    tg_tape_reset(f->tp);
    slot *s = pick_slot(f);
    if (s->t && !s->caller_owned) {
        say(f, "stale use");
        tg_clear_last_error();
        if (!isnan(tg_tensor_get(s->t, 0))) finding(f, "a stale tensor was read");
        if (tg_tanh(f->tp, s->t) || tg_tape_status(f->tp) == TG_OK) finding(f, "a stale input ran");
    }
    f->last = NULL;
    for (int i = 0; i < POOL; i++) {
        if (!f->pool[i].caller_owned) f->pool[i].t = NULL;
        if (f->pool[i].caller_owned && chance(f, 20)) {
            tg_tensor_free(f->pool[i].t);
            f->pool[i] = (slot){NULL, false};
        }
    }
}

static tg_tensor *gc_tanh(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_tanh(tp, in[0]);
}
static tg_tensor *gc_second_input(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_mul(tp, in[0], in[1]); /* reads past n when n is 1: must be NULL, not garbage */
}
static tg_tensor *gc_softmax(tg_tape *tp, tg_tensor *const *in, void *u) {
    (void)u;
    return tg_softmax(tp, in[0], -1);
}

static void gradcheck(fuzz *f) {
    static const int counts[] = {-1, 0, 1, 2, 3, 64, 65, 100};
    tg_tensor *in[100];
    int n = counts[below(f, sizeof counts / sizeof counts[0])];
    for (int i = 0; i < 100; i++) {
        in[i] = any(f);
        if (in[i] && tg_tensor_numel(in[i]) > 16) in[i] = NULL; /* 2 calls per element */
    }
    tg_fn fns[] = {gc_tanh, gc_second_input, gc_softmax, NULL};
    tg_gradcheck_opts o = {.eps = chance(f, 80) ? 0 : wild_value(f)};
    tg_gradcheck_report rep;
    say(f, "gradcheck(n %d)", n);
    tg_status st = tg_gradcheck(fns[below(f, 4)], NULL, n, chance(f, 3) ? NULL : in,
                                chance(f, 50) ? NULL : &o, chance(f, 10) ? NULL : &rep);
    (void)st;
}

static void misc(fuzz *f) {
    tg_clear_last_error();
    switch (below(f, 6)) {
    case 0: {
        size_t bytes = chance(f, 70) ? below(f, 1 << 16) : (size_t)wild_i64(f);
        say(f, "tape_alloc(%zu)", bytes);
        if (!tg_tape_alloc(f->tp, bytes) && tg_tape_status(f->tp) == TG_OK)
            finding(f, "tape_alloc failed without an error");
        break;
    }
    case 1: {
        int n = chance(f, 50) ? (int)below(f, 4) : (int)wild_i64(f);
        say(f, "tape_set_threads(%d)", n);
        tg_tape_set_threads(f->tp, n);
        if (tg_tape_threads(f->tp) < 1 || tg_tape_threads(f->tp) > 4096) finding(f, "thread count");
        break;
    }
    case 2: {
        int64_t shape[10];
        int ndim = wild_shape(f, shape);
        char name[8] = {'p', (char)('a' + below(f, 4)), 0};
        say(f, "params_create(%s, ndim %d)", name, ndim);
        tg_tensor *t = tg_params_create(f->params, name, wild_dtype(f), ndim, shape);
        last_error_set(f, !t);
        break;
    }
    case 3: {
        /* a caller tensor could be freed at a reset while registered: only
         * tape tensors (refused) and NULL */
        slot *s = pick_slot(f);
        say(f, "params_add");
        last_error_set(f, tg_params_add(f->params, "x", s->caller_owned ? NULL : s->t) != TG_OK);
        break;
    }
    case 4: say(f, "params_zero_grad"); tg_params_zero_grad(f->params); break;
    default:
        say(f, "no_grad / training / clear_error");
        if (chance(f, 50)) {
            tg_no_grad_begin(f->tp);
            run_op(f);
            tg_no_grad_end(f->tp);
        }
        tg_tape_set_training(f->tp, chance(f, 70));
        tg_tape_clear_error(f->tp);
    }
}

/* ---- one sequence ----------------------------------------------------------------------------- */
static void run_sequence(fuzz *f, uint64_t k) {
    uint64_t mix = run_seed ^ (k * 0x9e3779b97f4a7c15ULL);
    f->r = tg_rng_seeded(mix);
    f->dropout_rng = tg_rng_seeded(k);
    f->tp = tg_tape_new();
    f->params = tg_params_new();
    memset(f->pool, 0, sizeof f->pool);
    f->last = NULL;
    for (int i = 0; i < BUF + 8; i++) f->wrap_buf[i] = 0.5;
    for (int c = 0; c < SEQ_CALLS; c++) {
        uint64_t pick = below(f, 100);
        if (pick < 25)
            make_tensor(f);
        else if (pick < 35)
            poke_tensor(f);
        else if (pick < 40)
            clone_tensor(f);
        else if (pick < 75)
            run_op(f);
        else if (pick < 83)
            backward(f);
        else if (pick < 88)
            reset_tape(f);
        else if (pick < 90)
            gradcheck(f);
        else
            misc(f);
        if (chance(f, 30)) tg_tape_clear_error(f->tp);
    }
    tg_params_free(f->params); /* before the tape goes: it holds no tape tensors */
    tg_tape_free(f->tp);
    for (int i = 0; i < POOL; i++)
        if (f->pool[i].caller_owned) tg_tensor_free(f->pool[i].t);
    tg_set_default_threads(0);
}

int main(int argc, char **argv) {
    uint64_t first = 0, sequences = 0;
    double seconds = 0;
    static fuzz f;
    run_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--verbose")) {
            f.verbose = true;
        } else if (v && !strcmp(a, "--seed")) {
            run_seed = strtoull(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--seconds")) {
            seconds = atof(v), i++;
        } else if (v && !strcmp(a, "--sequences")) {
            sequences = strtoull(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--first")) {
            first = strtoull(v, NULL, 10), i++;
        } else {
            fprintf(stderr, "usage: %s [--seed N] [--seconds S | --sequences N] [--first K] [--verbose]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!seconds && !sequences) sequences = 200;
#ifndef __SANITIZE_ADDRESS__
    /* Valid but large results must fail as out of memory here too. */
    struct rlimit lim = {(rlim_t)2 << 30, (rlim_t)2 << 30};
    if (!getenv("TG_FUZZ_NO_RLIMIT")) setrlimit(RLIMIT_AS, &lim);
#endif
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_set_death_callback(on_sanitizer_report);
#endif
    static const int caught[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGALRM};
    for (size_t i = 0; i < sizeof caught / sizeof caught[0]; i++) signal(caught[i], on_signal);
    printf("fuzz_api: seed %llu%s\n", (unsigned long long)run_seed,
           seconds ? "" : " (fixed number of sequences)");
    fflush(stdout);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t k = first;
    for (;; k++) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        double el = (double)(t.tv_sec - t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - t0.tv_nsec);
        if (sequences ? k - first >= sequences : el >= seconds) break;
        current_seq = (sig_atomic_t)k;
        if (f.verbose) printf("sequence %llu\n", (unsigned long long)k);
        alarm(WATCHDOG_S);
        run_sequence(&f, k);
    }
    alarm(0);
    printf("fuzz_api: %llu sequences, %llu calls (ops: %llu ran, %llu refused; %llu backwards "
           "ran), no finding\n",
           (unsigned long long)(k - first), (unsigned long long)f.calls,
           (unsigned long long)f.ops_ran, (unsigned long long)f.ops_refused,
           (unsigned long long)f.backwards_ran);
    return 0;
}
