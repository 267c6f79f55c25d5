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
 * Example (y = x^3):
 *   static int cube_forward(tg_node *n) { ... y[i] = x[i]*x[i]*x[i] ... }
 *   static int cube_vjp(tg_node *n) { double *dx = tg_input_grad(n, 0); ...
 *                                     dx[i] += 3*x[i]*x[i]*dy[i]; }
 *   static const tg_op cube_op = { .name = "cube", .n_in = 1,
 *       .infer = tg_infer_same_as_input0, .forward = cube_forward, .vjp = cube_vjp };
 *   tg_tensor *cube(tg_tape *tp, tg_tensor *x) { return tg_apply(tp, &cube_op, 1, &x, NULL); }
 *
 * Grad of grad, later: VJPs receive whole nodes (tensors, not raw pointers),
 * so a second-order mode can give an op a `vjp_graph` that records its VJP with
 * ops on the tape, op by op, without touching the others. */
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

struct tg_op {
    const char *name;
    int n_in;                  /* exact number of inputs, or TG_VARIADIC (>= 1) */
    size_t attr_size;          /* bytes copied from the attr pointer            */
    unsigned flags;
    int (*infer)(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr, tg_desc *out);
    int (*forward)(tg_node *n);
    int (*vjp)(tg_node *n);    /* NULL: the op is not differentiable           */
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
 * op(A) is m x k, op(B) is k x n. dtype TG_F32 or TG_F64. */
TG_API void tg_gemm(const tg_tape *tp, tg_dtype dt, bool trans_a, bool trans_b, int64_t m,
                    int64_t n, int64_t k, double alpha, const void *a, int64_t lda,
                    const void *b, int64_t ldb, double beta, void *c, int64_t ldc);

#ifdef __cplusplus
}
#endif
#endif
