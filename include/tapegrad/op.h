/* tapegrad/op.h - writing a primitive (built-in or user-defined).
 *
 * A primitive is one constant descriptor plus its functions, written in this
 * order in one place: attribute struct, infer, forward, vjp, descriptor,
 * public wrapper. There is no op table: tg_apply takes the descriptor.
 *
 *   infer    checks dtypes/shapes/attributes and fills the output description.
 *            It is the only place that reports shape errors, and runs before
 *            anything is allocated or recorded.
 *   forward  computes n->out from n->in (may keep scratch with tg_node_scratch).
 *   vjp      given the output gradient, ACCUMULATES (+=) into the gradient of
 *            each input that wants one (tg_input_grad returns NULL otherwise).
 *
 * Elementwise ops (output element i depends on element i of each input only)
 * give block kernels instead and use tg_eltwise_forward / tg_eltwise_vjp as
 * their forward and vjp: the engine then runs them alone or fused with the
 * elementwise ops around them into one pass over memory. Every built-in
 * unary and binary op is written this way. Example (y = x^3, both dtypes;
 * tests/op_example.sh compiles it, gradchecks it and runs it fused):
 *
 *   #define CUBE(T)                                                            \
 *       static void cube_fwd_##T(int64_t n, const void *const *x, void *y,     \
 *                                const void *attr) {                           \
 *           const T *a = x[0]; T *b = y; (void)attr;                           \
 *           for (int64_t i = 0; i < n; i++) b[i] = a[i] * a[i] * a[i];         \
 *       }                                                                      \
 *       static void cube_vjp_##T(int k, int64_t n, const void *const *x,       \
 *                                const void *y, const void *dy, void *dx,      \
 *                                bool acc, const void *attr) {                 \
 *           const T *a = x[0], *g = dy; T *d = dx; (void)k; (void)y; (void)attr; \
 *           for (int64_t i = 0; i < n; i++)                                    \
 *               d[i] = (acc ? d[i] : 0) + 3 * a[i] * a[i] * g[i];              \
 *       }
 *   CUBE(float)
 *   CUBE(double)
 *   static const tg_eltwise cube_kernels = {.fwd = {cube_fwd_float, cube_fwd_double},
 *       .vjp = {cube_vjp_float, cube_vjp_double}, .needs = TG_NEEDS_X};
 *   static const tg_op cube_op = {.name = "cube", .n_in = 1,
 *       .infer = tg_infer_same_as_input0, .forward = tg_eltwise_forward,
 *       .vjp = tg_eltwise_vjp, .eltwise = &cube_kernels};
 *   tg_tensor *cube(tg_tape *tp, tg_tensor *x) { return tg_apply(tp, &cube_op, 1, &x, NULL); }
 *
 * Grad of grad: an op may also give `vjp_graph`, its VJP written with ops
 * (tg_mul, tg_matmul, ...) on tensors. tg_grad (tapegrad/grad.h) replays the
 * tape through these instead of `vjp`, so with create_graph the backward pass
 * is itself recorded and can be differentiated again; an op without one makes
 * tg_grad fail naming the op. For the cube above:
 *   static int cube_vjp_graph(tg_node *n, tg_tensor *dy, const bool *want, tg_tensor **dx) {
 *       tg_tensor *x = n->in[0];
 *       if (want[0]) dx[0] = tg_mul(n->tape, dy, tg_scale(n->tape, tg_mul(n->tape, x, x), 3));
 *       return 0;
 *   }                                         (and .vjp_graph = cube_vjp_graph) */
#ifndef TAPEGRAD_OP_H
#define TAPEGRAD_OP_H

#include "tape.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TG_VARIADIC (-1)

typedef struct tg_desc {          /* what infer produces */
    tg_dtype dtype;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
} tg_desc;

typedef struct tg_op tg_op;

typedef struct tg_node {
    const tg_op *op;
    tg_tape *tape;
    int n_in;
    tg_tensor **in;      /* inputs, in call order                    */
    tg_tensor *out;      /* output                                   */
    const void *attr;    /* copy of the attribute struct (or NULL)   */
    void *scratch;       /* set by forward via tg_node_scratch       */
} tg_node;

enum {
    TG_OP_VIEW = 1u << 0   /* output shares input 0's data (reshape, detach) */
};

/* ---- elementwise block kernels ----------------------------------------------------
 * fwd: y[i] = f(x0[i], x1[i], ...) for i < n.
 * vjp: the contribution to input k: dx[i] = dy[i] * df/dx_k at (x..[i], y[i]);
 *      added to dx (+=) when acc, written (=) otherwise.
 * n is a multiple of 16 (at most a few hundred); x[j] holds n elements of input j
 * (a broadcast input comes repeated), y and dy n elements of the output and its
 * gradient. A kernel must compute each element the same way wherever it sits
 * (no special tail): the engine pads blocks instead. vjp reads only what `needs`
 * names (TG_NEEDS_X: the inputs, TG_NEEDS_Y: the output); the other pointers then
 * point at zeros. Kernels come in both dtypes: [0] float32, [1] float64.
 * Two hints let the fusion engine skip work: `passes` (bit k: input k's VJP is
 * dx = dy, as for both inputs of add: the gradient is handed on, not copied)
 * and `cheap` (computing the op twice costs less than storing its result and
 * reading it back: add, mul, scale...; a fused group then recomputes it). */
typedef void (*tg_block_fwd)(int64_t n, const void *const *x, void *y, const void *attr);
typedef void (*tg_block_vjp)(int k, int64_t n, const void *const *x, const void *y,
                             const void *dy, void *dx, bool acc, const void *attr);
enum { TG_NEEDS_X = 1u << 0, TG_NEEDS_Y = 1u << 1 };
#define TG_ELTWISE_MAX_IN 4

typedef struct tg_eltwise {
    tg_block_fwd fwd[2];
    tg_block_vjp vjp[2];
    unsigned needs;
    unsigned passes;
    bool cheap;
} tg_eltwise;

/* A movement op whose output is a window of input 0 says where: with both seen
 * as matrices [rows, last dim] (0-d and 1-d tensors are one row), output element
 * (r, c) is input element (row0 + r, col0 + c). It returns false for shapes where
 * the output is no such window; the op then runs its forward (a copy). */
typedef struct tg_window { int64_t row0, col0; } tg_window;

struct tg_op {
    const char *name;
    int n_in;                  /* exact number of inputs, or TG_VARIADIC (>= 1) */
    size_t attr_size;          /* bytes copied from the attr pointer            */
    unsigned flags;
    int (*infer)(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr, tg_desc *out);
    int (*forward)(tg_node *n);
    int (*vjp)(tg_node *n);    /* NULL: the op is not differentiable           */
    /* Elementwise ops: their kernels (forward/vjp are then tg_eltwise_forward/_vjp,
     * at most TG_ELTWISE_MAX_IN inputs). NULL for every other op. */
    const tg_eltwise *eltwise;
    /* Movement ops: the window (see tg_window). NULL for every other op. */
    bool (*window)(const tg_tensor *x, const void *attr, const tg_desc *out, tg_window *w);
    /* The VJP as ops, for tg_grad (NULL: no double backward). dy: the output's
     * gradient, a tensor of its shape. For each input i with want[i], set dx[i]
     * to its gradient (input i's shape and dtype), or leave it NULL for zero.
     * n is a copy of the node (the node array may grow while ops record).
     * Returns 0, or -1 with the error on the tape. */
    int (*vjp_graph)(tg_node *n, tg_tensor *dy, const bool *want, tg_tensor **dx);
};

/* Run op on inputs: validate (infer), allocate the output in the arena,
 * forward, and record if recording and any input requires grad.
 * NULL on error (message on the tape) or if any input is NULL; with a NULL
 * tape the message goes to tg_last_error(). The result must have at most 2^40
 * elements (checked here for every op, after infer); an empty result is not
 * computed: forward is not called, and its VJP is a zero gradient for every
 * input. */
TG_API tg_tensor *tg_apply(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                           const void *attr);

/* Record an error on the tape: message "<op>: <printf text>". Returns -1. */
TG_API int tg_fail(tg_tape *tp, tg_status st, const char *op, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* forward and vjp of an elementwise op (one with .eltwise): broadcasting, blocks. */
TG_API int tg_eltwise_forward(tg_node *n);
TG_API int tg_eltwise_vjp(tg_node *n);
/* For infer: all inputs float of one dtype, output shape = NumPy broadcast of them. */
TG_API int tg_infer_broadcast(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                              tg_desc *out);
/* For infer: output same dtype/shape as input 0 (float dtypes only). */
TG_API int tg_infer_same_as_input0(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                                   tg_desc *out);
/* Checks that t is float and of the same dtype as in[0]; reports op + shapes. */
TG_API int tg_check_float(tg_tape *tp, const char *op, const tg_tensor *t);
/* Both float and of one dtype, else "<op>: dtypes differ: float32 [2,3] x float64 [3]". */
TG_API int tg_check_float_pair(tg_tape *tp, const char *op, const tg_tensor *a,
                               const tg_tensor *b);

/* Inside forward/vjp: */
TG_API void *tg_node_scratch(tg_node *n, size_t bytes);   /* arena, zeroed, 64-byte aligned */
TG_API void *tg_input_grad(tg_node *n, int i);            /* NULL if input i needs none */
/* As tg_input_grad, but when input i has no gradient yet the buffer comes back
 * UNINITIALISED and *fresh is true: the VJP must then write (=) every element
 * instead of accumulating, which saves zeroing it and reading it back. Finish
 * writing input i's gradient before asking for the next input's: two inputs
 * may be the same tensor. */
TG_API void *tg_input_grad_fresh(tg_node *n, int i, bool *fresh);
TG_API const void *tg_output_grad(const tg_node *n);      /* never NULL inside vjp */
/* Arena scratch that lives until tape reset (for ops and layers). */
TG_API void *tg_tape_alloc(tg_tape *tp, size_t bytes);

/* Raw GEMM through BLIS with the tape's thread policy:
 * C = alpha * op(A) op(B) + beta * C, row-major with leading dimensions.
 * op(A) is m x k, op(B) is k x n. dtype TG_F32 or TG_F64. BLIS's
 * small-matrix kernels may read (never write) a few bytes past the last
 * element of C (valgrind saw 4 at TN 256 x 127 x 512): give a C of your own
 * 64 bytes to spare, as the buffers of tg_tape_alloc and tensors have. */
TG_API void tg_gemm(const tg_tape *tp, tg_dtype dt, bool trans_a, bool trans_b, int64_t m,
                    int64_t n, int64_t k, double alpha, const void *a, int64_t lda,
                    const void *b, int64_t ldb, double beta, void *c, int64_t ldc);

#ifdef __cplusplus
}
#endif
#include "call_site.h"   /* file:line of each call (anomaly mode, profiler) */
#endif
