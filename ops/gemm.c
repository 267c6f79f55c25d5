/* ops/gemm.c - the one place that calls BLIS for GEMM.
 *
 * Threads are chosen per call: below GEMM_PARALLEL_MIN_FLOPS a second BLIS
 * thread costs more in start-up and packing than it saves (measured with
 * bench/bench_core on skx: 32x64x256 runs at 91 GFLOP/s on one thread and
 * 53 on two; 32x320x1024 runs at 110 on one and 160 on two). */
#include "../autograd/internal.h"

#include <blis.h>

enum { GEMM_PARALLEL_MIN_FLOPS = 8 * 1000 * 1000 };

static int gemm_threads(const tg_tape *tp, int64_t m, int64_t n, int64_t k) {
    int nt = tg_tape_threads(tp);
    double flops = 2.0 * (double)m * (double)n * (double)k;
    return flops < GEMM_PARALLEL_MIN_FLOPS ? 1 : nt;
}

void tg_gemm(const tg_tape *tp, tg_dtype dt, bool trans_a, bool trans_b, int64_t m, int64_t n,
             int64_t k, double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
             double beta, void *c, int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    tg_init();
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(gemm_threads(tp, m, n, k), &rntm);
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
}
