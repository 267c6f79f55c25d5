/* ops/binary.c - elementwise y = a (op) b with NumPy broadcasting.
 *
 * Shapes align from the right; a missing dim or a dim of 1 broadcasts:
 * [B,H] + [H] -> [B,H], [3,1] * [1,4] -> [3,4], [2,3,4] / [3,4] -> [2,3,4].
 * Each op is a line in the table below: its forward in a and b, the partials
 * dy/da, dy/db in a, b and the output y, what those partials read and the
 * fusion engine's hints (op.h: which gradients are handed on, cheap). The
 * VJP multiplies the output gradient by them and sums it over each input's
 * broadcast axes:  da += reduce(dy * dy/da),  db += reduce(dy * dy/db).
 * BINARY_OP stamps out the block kernels (ops/kernels.h); the walk over the
 * broadcast shapes (flat loop, bias rows, odometer) is ops/eltwise.c's, and
 * the fusion engine runs the same kernels inside fused groups. */
#include "kernels.h"

#include <string.h>

/* ---- kernels from the table ------------------------------------------------------------------ */
#define NEEDS_0 0
#define NEEDS_AB TG_NEEDS_X
#define NEEDS_ABY (TG_NEEDS_X | TG_NEEDS_Y)

/* DX (= or +=) DY * EXPR(a, b, y) over a block. */
#define GRAD_LOOP(T, OPER, EXPR)                                                                 \
    TG_EW_FOR(i, n) {                                                                            \
        T a = A[i], b = B[i], y = Y[i], d = (EXPR);                                              \
        (void)a;                                                                                 \
        (void)b;                                                                                 \
        (void)y;                                                                                 \
        DX[i] OPER DY[i] * d;                                                                    \
    }

/* vjp of input k: DX (=|+=) DY * (k ? DYDB : DYDA). Unread inputs point at zeros. */
#define BINARY_KERNELS(NAME, FWD, DYDA, DYDB, T)                                                 \
    TG_SIMD_CLONES static TG_EW_FWD_KERNEL(NAME##_fwd_##T) {                                     \
        const T *A = xs[0], *B = xs[1];                                                          \
        T *restrict Y = ys;                                                                      \
        (void)attr;                                                                              \
        TG_EW_FOR(i, n) {                                                                        \
            T a = A[i], b = B[i];                                                                \
            Y[i] = (FWD);                                                                        \
        }                                                                                        \
    }                                                                                            \
    TG_SIMD_CLONES static TG_EW_VJP_KERNEL(NAME##_vjp_##T) {                                     \
        const T *A = xs[0], *B = xs[1], *Y = ys, *DY = dys;                                      \
        T *restrict DX = dxs;                                                                    \
        (void)attr;                                                                              \
        if (k == 0 && acc) GRAD_LOOP(T, +=, DYDA)                                                \
        if (k == 0 && !acc) GRAD_LOOP(T, =, DYDA)                                                \
        if (k == 1 && acc) GRAD_LOOP(T, +=, DYDB)                                                \
        if (k == 1 && !acc) GRAD_LOOP(T, =, DYDB)                                                \
    }

/* HINTS (op.h): which inputs' VJPs hand dy on, and whether it is cheap to recompute */
#define PASS_AB 3, true
#define PASS_A 1, true
#define CHEAP 0, true
#define COSTLY 0, false

#define BINARY_OP(NAME, FWD, DYDA, DYDB, NEEDS, HINTS)                                           \
    static int NAME##_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx);    \
    BINARY_KERNELS(NAME, FWD, DYDA, DYDB, float)                                                 \
    BINARY_KERNELS(NAME, FWD, DYDA, DYDB, double)                                                \
    static const tg_eltwise NAME##_kernels = {                                                   \
        {NAME##_fwd_float, NAME##_fwd_double}, {NAME##_vjp_float, NAME##_vjp_double}, NEEDS,    \
        HINTS};                                                                                  \
    static const tg_op NAME##_op = {.name = #NAME, .n_in = 2, .infer = binary_infer,             \
                                    .forward = tg_eltwise_forward, .vjp = tg_eltwise_vjp,        \
                                    .eltwise = &NAME##_kernels, .vjp_graph = NAME##_vjp_graph};

/* ---- infer ------------------------------------------------------------------------------- */
static int binary_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                        tg_desc *out) {
    (void)n_in;
    (void)attr;
    const char *op = tp->current_op;
    const tg_tensor *a = in[0], *b = in[1];
    if (tg_check_float_pair(tp, op, a, b)) return -1;
    if (!tg__bcast_shape(2, in, &out->ndim, out->shape)) {
        char sa[160], sb[160];
        return tg_fail(tp, TG_ERR_SHAPE, op, "shapes do not broadcast: %s x %s",
                       tg_shape_str(a, sa, sizeof sa), tg_shape_str(b, sb, sizeof sb));
    }
    out->dtype = a->dtype;
    return 0;
}

/* ---- the table ------------------------------------------------------------------------------- */
/*         name  forward  dy/da   dy/db    reads      hints                            */
BINARY_OP(add,   a + b,   1,      1,       NEEDS_0,   PASS_AB)
BINARY_OP(sub,   a - b,   1,      -1,      NEEDS_0,   PASS_A)
BINARY_OP(mul,   a * b,   b,      a,       NEEDS_AB,  CHEAP)
/* -a/b^2 written as -y/b: one division, and b^2 cannot overflow or underflow */
BINARY_OP(div,   a / b,   1 / b,  -y / b,  NEEDS_ABY, COSTLY)

/* ---- the same partials as ops, for tg_grad (op.h's vjp_graph) ------------------------------
 * da = sum_to(dy * dy/da, a), db likewise, with recorded ops (A, B the inputs,
 * Y the output) so that the gradients can be differentiated again. */
#define BINARY_GRAPH(NAME, DA, DB)                                                                \
    static int NAME##_vjp_graph(tg_node *n, tg_tensor *g, const bool *want, tg_tensor **dx) {    \
        tg_tape *tp = n->tape;                                                                    \
        tg_tensor *A = n->in[0], *B = n->in[1], *Y = n->out;                                      \
        (void)A;                                                                                  \
        (void)B;                                                                                  \
        (void)Y;                                                                                  \
        if (want[0]) dx[0] = tg__gg_sum_to(tp, (DA), A);                                          \
        if (want[1]) dx[1] = tg__gg_sum_to(tp, (DB), B);                                          \
        return 0;                                                                                 \
    }

/*           name  dy * dy/da          dy * dy/db                                  */
BINARY_GRAPH(add,  g,                  g)
BINARY_GRAPH(sub,  g,                  tg_neg(tp, g))
BINARY_GRAPH(mul,  tg_mul(tp, g, B),   tg_mul(tp, g, A))
BINARY_GRAPH(div,  tg_div(tp, g, B),   tg_neg(tp, tg_mul(tp, g, tg_div(tp, Y, B))))

/* ---- public wrappers ---------------------------------------------------------------------- */
static tg_tensor *binary(tg_tape *tp, const tg_op *op, tg_tensor *a, tg_tensor *b) {
    tg_tensor *in[2] = {a, b};
    return tg_apply(tp, op, 2, in, NULL);
}

tg_tensor *tg_add(tg_tape *tp, tg_tensor *a, tg_tensor *b) { return binary(tp, &add_op, a, b); }
tg_tensor *tg_sub(tg_tape *tp, tg_tensor *a, tg_tensor *b) { return binary(tp, &sub_op, a, b); }
tg_tensor *tg_mul(tg_tape *tp, tg_tensor *a, tg_tensor *b) { return binary(tp, &mul_op, a, b); }
tg_tensor *tg_div(tg_tape *tp, tg_tensor *a, tg_tensor *b) { return binary(tp, &div_op, a, b); }
