/* ops/gemm.c - the one place that calls BLIS's GEMM API (tg_gemm).
 *
 * The thread count is chosen per call by gemm_guard.c (by size, and one
 * thread while another process holds the second core). The packed-operand
 * path of repeated matmuls (gemm_pack.c) calls BLIS's micro-kernel instead;
 * see gemm_internal.h for the layer as a whole. */
#include "gemm_internal.h"

#include <blis.h>

struct tg_gemm_state *tg__gemm_state(tg_tape *tp) {
    if (!tp->gemm) tp->gemm = tg__arena_alloc(tp, sizeof *tp->gemm, true);
    return tp->gemm;
}

/* tg_gemm, or with sup false without BLIS's small-matrix ("sup") kernels:
 * then every product goes through the native micro-kernel in KC-deep blocks,
 * rounding exactly as gemm_pack.c's packed products do. */
static void blis_gemm(const tg_tape *tp, tg_dtype dt, bool trans_a, bool trans_b, int64_t m,
                      int64_t n, int64_t k, double alpha, const void *a, int64_t lda,
                      const void *b, int64_t ldb, double beta, void *c, int64_t ldc, bool sup) {
    if (m <= 0 || n <= 0) return;
    tg_init();
    tg__gemm_timing tm;
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(tg__gemm_threads_begin(tp, dt, m, n, k, &tm), &rntm);
    if (!sup) bli_rntm_disable_l3_sup(&rntm);
    trans_t ta = trans_a ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;
    trans_t tb = trans_b ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE;
    /* Row-major storage: row stride = leading dimension, column stride 1;
     * BLIS applies the transpose flag to the stored matrix. */
    if (dt == TG_F32) {
        float al = (float)alpha, be = (float)beta;
        bli_sgemm_ex(ta, tb, m, n, k, &al, (float *)a, lda, 1, (float *)b, ldb, 1, &be,
                     (float *)c, ldc, 1, NULL, &rntm);
    } else {
        bli_dgemm_ex(ta, tb, m, n, k, &alpha, (double *)a, lda, 1, (double *)b, ldb, 1, &beta,
                     (double *)c, ldc, 1, NULL, &rntm);
    }
    tg__gemm_threads_end(&tm);
}

/* BLIS takes its small-matrix ("sup") path whenever one dimension is under a
 * threshold (zen: 512, 512, 440). Those kernels do not pack: they win with few
 * rows or columns, and lose up to 4x on large batched products with one short
 * dimension (2048 x 1024 x 65, the input projection of all steps: 19 against
 * 76 GFLOP/s on zen; the whole-sequence weight gradient 1024 x 256 x 2048:
 * 20 against 34). Measured over m 32..2048, n 65..1024, k 65..2048 in the
 * three layouts (docs/performance.md): the native path is as fast or faster
 * from m >= 128 with n >= 256, and from m >= 512 with n >= 128. With a long
 * inner dimension (k >= 512) it pays from m >= 256 with n >= 128 too: W4's
 * weight gradient 384 x 128 over k = 2048 rows (TN) ran at 55 GFLOP/s on sup
 * against 80 native alone, 69 against 79 inside W4's step; NN 1.2x, NT 1.8x
 * faster there. At 128 x 128 the native path won alone (1.0-1.7x) but lost
 * 6% inside W4's step (its operands warm in cache), so it stays on sup
 * (docs/performance.md, "W4: the feed-forward epilogue measured"). */
static bool sup_pays(int64_t m, int64_t n, int64_t k) {
    bool wide = (m >= 128 && n >= 256) || (m >= 512 && n >= 128);
    bool long_k = m >= 256 && n >= 128 && k >= 512;
    return !(wide || long_k);
}

void tg_gemm(const tg_tape *tp, tg_dtype dt, bool trans_a, bool trans_b, int64_t m, int64_t n,
             int64_t k, double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
             double beta, void *c, int64_t ldc) {
    blis_gemm(tp, dt, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
              sup_pays(m, n, k));
}

void tg__gemm_native(const tg_tape *tp, tg_dtype dt, bool trans_a, bool trans_b, int64_t m,
                     int64_t n, int64_t k, const void *a, int64_t lda, const void *b, int64_t ldb,
                     double beta, void *c, int64_t ldc) {
    blis_gemm(tp, dt, trans_a, trans_b, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc, false);
}
