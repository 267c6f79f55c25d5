/* tests/dist/allreduce_bench.c - time of one allreduce (sum of doubles) between
 * the ranks, by message size: MPI_Allreduce as Open MPI waits for it, and
 * tg_dist_average (MPI_Iallreduce and tapegrad's polling wait with its
 * deadline). The figures behind the alpha-beta model in docs/performance.md.
 * Not a test (no pass/fail):
 *   mpirun -np 2 build/tests/dist/allreduce_bench [reps]
 * Each size: reps rounds after a barrier, median of 5 batches; rank 0 prints
 * one line per size: bytes, microseconds per allreduce both ways. */
#define _POSIX_C_SOURCE 200809L
#include <tapegrad.h>
#include <tapegrad/dist.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median over 5 batches of reps allreduces of n doubles, in microseconds each. */
static double time_one(tg_dist *d, double *v, int n, int reps, bool ours) {
    double batch[5];
    for (int b = 0; b < 5; b++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double start = now();
        for (int r = 0; r < reps; r++) {
            if (ours) tg_dist_average(d, v, n);
            else MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        }
        batch[b] = 1e6 * (now() - start) / reps;
    }
    qsort(batch, 5, sizeof batch[0], by_value);
    return batch[2];
}

int main(int argc, char **argv) {
    tg_dist *d = tg_dist_init(&argc, &argv, NULL);
    if (!d) return fprintf(stderr, "allreduce_bench: %s\n", tg_last_error()), 1;
    int reps = argc > 1 ? atoi(argv[1]) : 50;
    enum { MAX_N = 1 << 21 };   /* 16 MB of doubles */
    double *v = calloc(MAX_N, sizeof *v);
    if (!v || reps < 1) return fprintf(stderr, "allreduce_bench: out of memory or reps < 1\n"), 1;
    if (tg_dist_rank(d) == 0)
        printf("%d ranks; bytes, us per MPI_Allreduce, us per tg_dist_average\n", tg_dist_size(d));
    for (int n = 1; n <= MAX_N; n *= 4) {
        int r = n >= (1 << 17) ? (reps + 9) / 10 : reps;
        double mpi = time_one(d, v, n, r, false), ours = time_one(d, v, n, r, true);
        if (tg_dist_rank(d) == 0) printf("%10zu %10.1f %10.1f\n", n * sizeof(double), mpi, ours);
    }
    free(v);
    tg_dist_free(d);
    return 0;
}
