/* ops/gemm_internal.h - the GEMM layer behind tg_gemm and tg_matmul (private).
 *
 *   gemm.c         tg_gemm: one BLIS call, threads chosen per call
 *   gemm_guard.c   the thread count: by size, and one thread while a second
 *                  core is not to be had (contention is timed, not guessed)
 *   gemm_pack.c    a right operand packed once per recording, BLIS's own
 *                  micro-kernel driven over it (an RNN's h_{t-1} W_hh^T)
 *   gemm_defer.c   weight-gradient GEMMs of successive steps merged into few
 *
 * All matrices are row-major with a leading dimension; "op(B)" is the stored
 * matrix or its transpose, as the trans flag says. Shapes: op(A) [m, k],
 * op(B) [k, n], C [m, n]. */
#ifndef TG_GEMM_INTERNAL_H
#define TG_GEMM_INTERNAL_H

#include "../autograd/internal.h"

/* Per-recording state, in the tape's arena (tg_tape_reset drops it); each
 * file keeps its own part, made on first use. */
struct tg_gemm_state {
    struct pack_cache *pack;     /* gemm_pack.c  */
    struct defer_list *defer;    /* gemm_defer.c */
};
/* tp's state, made on first use; NULL when out of memory. */
TG_HIDDEN struct tg_gemm_state *tg__gemm_state(tg_tape *tp);

/* ---- threads (gemm_guard.c) --------------------------------------------------------
 * Calls are timed: a shape runs on one thread while that is faster for it;
 * multi-threaded calls are weighed against the same shapes on one thread, and when threads waiting for a core someone else holds make two
 * threads lose, GEMMs run on one thread for a while (doubling while it
 * persists) before two are tried again. */
typedef struct tg__gemm_timing {
    int threads;        /* what the call should use                       */
    int slot;           /* shape's slot in the history, -1: not timed      */
    uint64_t key;       /* shape, dtype and thread count                   */
    uint64_t t0;        /* ns                                              */
} tg__gemm_timing;

/* Threads for a GEMM of op(A) [m, k] x op(B) [k, n] on tp; starts its timing. */
TG_HIDDEN int tg__gemm_threads_begin(const tg_tape *tp, tg_dtype dt, int64_t m, int64_t n,
                                     int64_t k, tg__gemm_timing *tm);
TG_HIDDEN void tg__gemm_threads_end(const tg__gemm_timing *tm);
/* CLOCK_MONOTONIC in ns. */
TG_HIDDEN uint64_t tg__gemm_now_ns(void);
/* Below this many flops a second thread is not tried; above it, each shape
 * keeps to one thread while that measures faster (gemm_guard.c). */
TG_HIDDEN double tg__gemm_parallel_min_flops(void);
/* Tests only: every GEMM runs on `threads` threads, whatever its size or the
 * tape's setting (0: chosen as above again). */
TG_HIDDEN void tg__gemm_force_threads(int threads);

/* Tests only: packed products run as stored (0) or transposed (1) whatever
 * was measured for their shape (-1: by measurement again; gemm_pack.c). */
TG_HIDDEN void tg__gemm_force_turn(int turn);

/* c = op(A) op(B) + beta c through BLIS's native micro-kernel path only (no
 * small-matrix kernels): rounds exactly as the packed path below does. */
TG_HIDDEN void tg__gemm_native(const tg_tape *tp, tg_dtype dt, bool trans_a, bool trans_b,
                               int64_t m, int64_t n, int64_t k, const void *a, int64_t lda,
                               const void *b, int64_t ldb, double beta, void *c, int64_t ldc);

/* ---- packed right operands (gemm_pack.c) -------------------------------------------
 * c = op(A) op(B) + beta c, where b is the data of a tensor that stays
 * unmodified until tg_tape_reset (a matmul operand of a recorded node:
 * backward reads it too). With few rows (MR <= m <= MC of the kernel) it runs on
 * BLIS's micro-kernel: on op(B) packed once per recording when b has been
 * the right operand of at least two forward products (`forward` true for
 * those), else through tg__gemm_native; both round the same, so a product
 * does not change with how often its operand has been seen. Returns false
 * (nothing done) for other shapes: the caller then calls tg_gemm. */
TG_HIDDEN bool tg__gemm_packed(tg_tape *tp, bool forward, tg_dtype dt, bool trans_a,
                               bool trans_b, int64_t m, int64_t n, int64_t k, const void *a,
                               int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                               int64_t ldc);

/* ---- batches of small products (gemm_pack.c) ----------------------------------------
 * Where matrix i of a batch starts, in elements: (i / heads) * outer +
 * (i % heads) * inner; its rows are ld apart. A plain [..., R, C] batch:
 * heads 1, outer R*C, ld C; the heads of a [B, T, h*d] read as [B, h, T, d]:
 * heads h, outer T*h*d, inner d, ld h*d; one matrix for all: outer 0. */
typedef struct tg__mat_view { int64_t heads, outer, inner, ld; } tg__mat_view;

static inline int64_t tg__mat_at(const tg__mat_view *v, int64_t i) {
    return i / v->heads * v->outer + i % v->heads * v->inner;
}

/* C_i = op(A_i) op(B_i) + beta C_i for i < count, with distinct C_i. Products
 * this small (attention's per-head 64x64x32) spend most of a BLIS call in its
 * set-up: here both operands are packed per product into scratch and BLIS's
 * micro-kernel runs over them (rounding as the native path), the products split
 * across threads. Returns false (nothing done) when the shapes are not small:
 * the caller then calls tg_gemm per product. */
TG_HIDDEN bool tg__gemm_batch_small(tg_tape *tp, tg_dtype dt, bool trans_a, bool trans_b,
                                    int64_t m, int64_t n, int64_t k, int64_t count,
                                    const void *a, const tg__mat_view *va, const void *b,
                                    const tg__mat_view *vb, double beta, void *c,
                                    const tg__mat_view *vc);

/* ---- deferred weight gradients (gemm_defer.c) --------------------------------------
 * dst [P, Q] += X^T Y, with X [rows, P] and Y [rows, Q] row blocks (leading
 * dimensions ldx, ldy), to be run later: contributions to the same dst whose
 * X and Y rows continue each other in memory become one GEMM over all their
 * rows; others are copied into a staging buffer and summed up to 256 rows per
 * GEMM. dst must already hold valid values (it is accumulated into, never
 * overwritten); X and Y must stay unmodified until the flush (rows that are
 * gathered are copied sooner, but which ones is the engine's choice). backward
 * flushes a gradient before the VJP that reads it and everything at its end.
 * Returns false (nothing deferred) when deferral is off for tp. */
TG_HIDDEN bool tg__gemm_defer_xty(tg_tape *tp, tg_dtype dt, int64_t P, int64_t Q, int64_t rows,
                                  const void *x, int64_t ldx, const void *y, int64_t ldy,
                                  void *dst);
/* On a checkpointed span's sub-tape, contributions to gradients outside its
 * arena go to the outermost tape's list (chunks as on the plain tape). Before
 * the sub-tape resets, call this on the outermost tape: runs reading rows of
 * the span are copied into staging (or computed), so none reads freed memory. */
TG_HIDDEN void tg__gemm_defer_settle(tg_tape *tp);

#endif
