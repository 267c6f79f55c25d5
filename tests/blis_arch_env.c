/* tests/blis_arch_env.c - BLIS_ARCH_TYPE as the README describes it.
 *   blis_arch_env WANT_ARCH WANT_ENV
 * run with BLIS_ARCH_TYPE set (or not) by meson. BLIS 0.9 reads the variable
 * as a number only: "haswell" read as 0 (skx), which dies with SIGILL on CPUs
 * without AVX-512. tapegrad translates names, leaves numbers to BLIS, ignores
 * unknown names, and leaves the variable as it found it (WANT_ENV, "-" for
 * unset). WANT_ARCH "any" accepts tapegrad's own choice. Exit 0 when all holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "tg_test.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s WANT_ARCH WANT_ENV\n", argv[0]);
        return 2;
    }
    __builtin_cpu_init();
    if (strcmp(argv[1], "haswell") == 0 &&
        !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
        printf("SKIP: this CPU cannot run BLIS's haswell kernels\n");
        return 77;
    }
    const char *arch = tg_blas_arch(), *env = getenv("BLIS_ARCH_TYPE");
    int bad = 0;
    if (strcmp(argv[1], "any") != 0 && strcmp(arch, argv[1]) != 0) {
        fprintf(stderr, "BLIS runs '%s', want '%s'\n", arch, argv[1]);
        bad = 1;
    }
    if (strcmp(argv[2], "-") == 0 ? env != NULL : (!env || strcmp(env, argv[2]) != 0)) {
        fprintf(stderr, "BLIS_ARCH_TYPE is '%s' after start-up, want '%s'\n", env ? env : "(unset)",
                argv[2]);
        bad = 1;
    }
    /* a GEMM on the chosen kernels: [[1,2],[3,4]] x [[5,6],[7,8]] = [[19,22],[43,50]] */
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tg_tensor_from(TG_F32, 2, TGT_SHAPE(2, 2), TGT_VALS(1, 2, 3, 4));
    tg_tensor *b = tg_tensor_from(TG_F32, 2, TGT_SHAPE(2, 2), TGT_VALS(5, 6, 7, 8));
    double d = tgt_max_diff_vals(tg_matmul(tp, a, b), TGT_VALS(19, 22, 43, 50), 4);
    if (!tgt_within(d, 0)) {
        fprintf(stderr, "matmul on '%s' is off by %g\n", arch, d);
        bad = 1;
    }
    printf("BLIS_ARCH_TYPE %s: BLIS runs %s\n", env ? env : "(unset)", arch);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
    return bad;
}
