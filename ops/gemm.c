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

void tg_gemm(const tg_tape *tp, tg_dtype dt, bool trans_a, bool trans_b, int64_t m, int64_t n,
             int64_t k, double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
             double beta, void *c, int64_t ldc) {
    blis_gemm(tp, dt, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, true);
}

void tg__gemm_native(const tg_tape *tp, tg_dtype dt, bool trans_a, bool trans_b, int64_t m,
                     int64_t n, int64_t k, const void *a, int64_t lda, const void *b, int64_t ldb,
                     double beta, void *c, int64_t ldc) {
    blis_gemm(tp, dt, trans_a, trans_b, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc, false);
}
