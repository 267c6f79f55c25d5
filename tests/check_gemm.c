/* tests/check_gemm.c - the GEMM engine behind matmul: a right operand packed
 * once per recording (edge tiles, deep k, both dtypes, both orientations),
 * its life cycle, and weight gradients of successive steps merged into few
 * GEMMs (contiguous steps in place, steps elsewhere gathered in chunks),
 * and tg_gemm's two BLIS paths at the edges between them.
 * Expected values are plain triple loops in double. */
#include "../ops/gemm_internal.h"
#include "check_suites.h"
#include "tg_test.h"

#include <stdlib.h>
#include <string.h>

/* Uniform [-1, 1) values into t. */
static void fill_rand(tg_tensor *t, tg_rng *rng) {
    for (int64_t i = 0; i < tg_tensor_numel(t); i++)
        tg_tensor_set(t, i, 2 * tg_rng_uniform(rng) - 1);
}

static tg_tensor *rand_tensor(tg_dtype dt, int64_t r, int64_t c, tg_rng *rng) {
    tg_tensor *t = tg_tensor_new(dt, 2, TGT_SHAPE(r, c));
    fill_rand(t, rng);
    return t;
}

/* Element (i, j) of op(X) for a stored 2-D X. */
static double op_at(const tg_tensor *x, bool trans, int64_t i, int64_t j) {
    int64_t cols = tg_tensor_dim(x, 1);
    return trans ? tg_tensor_get(x, j * cols + i) : tg_tensor_get(x, i * cols + j);
}

/* Worst |c - op(A) op(B)| over c [m, n]. */
static double product_error(const tg_tensor *c, const tg_tensor *a, bool ta, const tg_tensor *b,
                            bool tb, int64_t m, int64_t n, int64_t k) {
    double worst = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) s += op_at(a, ta, i, p) * op_at(b, tb, p, j);
            tgt_diff_update(&worst, tg_tensor_get(c, i * n + j), s);
        }
    return worst;
}

static double tolerance(tg_dtype dt, int64_t k) {
    return (dt == TG_F32 ? 2e-6 : 1e-14) * (double)(k + 8);
}

typedef struct mm_shape { int64_t m, n, k; bool tb; } mm_shape;

/* Edge tiles in m and n (kernels are 6x16, 6x8, 32x12, 8x8, ...), k below,
 * at and above a KC block (256-384), and beyond two blocks. */
static const mm_shape shapes[] = {
    {1, 1, 1, false},   {5, 17, 7, true},    {6, 16, 256, false}, {7, 33, 300, true},
    {13, 100, 600, false}, {32, 64, 257, true}, {40, 15, 513, true}, {3, 2, 1000, false},
    {35, 17, 1100, false}, {64, 40, 100, true},
};

/* c1 = A W, again A W, then A2 W: the second and third run on W packed once;
 * all three agree with the plain product, the repeat bit for bit. */
static void check_forward(tg_dtype dt, const mm_shape *s, tg_rng *rng) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *w = s->tb ? rand_tensor(dt, s->n, s->k, rng) : rand_tensor(dt, s->k, s->n, rng);
    tg_tensor *a = rand_tensor(dt, s->m, s->k, rng), *a2 = rand_tensor(dt, s->m, s->k, rng);
    tg_tensor_set_requires_grad(w, true);
    tg_matmul_opts o = {.trans_b = s->tb};
    tg_tensor *c1 = tg_matmul_ex(tp, a, w, &o), *c1b = tg_matmul_ex(tp, a, w, &o);
    tg_tensor *c2 = tg_matmul_ex(tp, a2, w, &o);
    ck_assert_msg(c1 && c1b && c2, "%s", tg_tape_error(tp));
    tg_tape_stats st;
    tg_tape_stats_get(tp, &st);
    /* fewer rows than the kernel's tile (MR 6 to 32): BLIS's own small kernels */
    ck_assert_msg(s->m < 32 || st.gemm_packed == 2, "m %lld n %lld k %lld: %llu packed products, "
                  "want 2", (long long)s->m, (long long)s->n, (long long)s->k,
                  (unsigned long long)st.gemm_packed);
    size_t bytes = (size_t)(s->m * s->n) * tg_dtype_size(dt);
    ck_assert_msg(memcmp(tg_tensor_data(c1), tg_tensor_data(c1b), bytes) == 0,
                  "the packed repeat rounds differently from the first product");
    double e1 = product_error(c1, a, false, w, s->tb, s->m, s->n, s->k);
    double e2 = product_error(c2, a2, false, w, s->tb, s->m, s->n, s->k);
    ck_assert_msg(tgt_within(e1, tolerance(dt, s->k)) && tgt_within(e2, tolerance(dt, s->k)),
                  "%s m %lld n %lld k %lld%s: worst error %g, %g", tg_dtype_name(dt),
                  (long long)s->m, (long long)s->n, (long long)s->k, s->tb ? " (W^T)" : "", e1,
                  e2);
    tg_tensor *all[] = {w, a, a2};
    for (int i = 0; i < 3; i++) tg_tensor_free(all[i]);
    tg_tape_free(tp);
}

typedef void (*shape_check)(tg_dtype dt, const mm_shape *s, tg_rng *rng);

/* check at every shape, in both dtypes */
static void each_shape(shape_check check, uint64_t seed) {
    tg_rng rng = tg_rng_seeded(seed);
    for (int d = 0; d < 2; d++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            check(d ? TG_F64 : TG_F32, &shapes[i], &rng);
}

/* tg_gemm chooses BLIS's small-matrix or native path by shape (gemm.c,
 * sup_pays): on either side of each edge (m 256, n 128, k 512 for a long
 * inner dimension; m 128 with n 256), in the three layouts the engine uses
 * and both dtypes, C = 0.5 op(A) op(B) + C agrees with a double loop. */
typedef struct path_shape { int64_t m, n, k; } path_shape;

static const path_shape path_edges[] = {
    {256, 128, 512}, {255, 128, 512}, {256, 127, 512}, {256, 128, 511}, {300, 130, 520},
    {128, 256, 64},  {127, 256, 64},
};

static void rand_raw(tg_dtype dt, void *p, int64_t n, tg_rng *rng) {
    for (int64_t i = 0; i < n; i++) {
        double v = 2 * tg_rng_uniform(rng) - 1;
        if (dt == TG_F64) ((double *)p)[i] = v;
        else ((float *)p)[i] = (float)v;
    }
}

static double raw_at(tg_dtype dt, const void *p, int64_t i) {
    return dt == TG_F64 ? ((const double *)p)[i] : ((const float *)p)[i];
}

/* Rows (or columns) of C checked: the first and last 16, where the kernels'
 * edge tiles are, and one in 16 between (the full loop is too slow under the
 * sanitizers: these products are up to 20M multiply-adds each). */
static bool checked(int64_t i, int64_t len) { return i < 16 || i >= len - 16 || i % 16 == 7; }

/* Worst |c - (0.5 op(A) op(B) + c0)| over the checked elements of c [m, n];
 * A stored [m, k] or [k, m]. */
static double raw_product_error(tg_dtype dt, const path_shape *s, bool ta, bool tb, const void *a,
                                const void *b, const void *c0, const void *c) {
    double worst = 0;
    for (int64_t i = 0; i < s->m; i++)
        for (int64_t j = 0; j < s->n; j++) {
            if (!checked(i, s->m) || !checked(j, s->n)) continue;
            double acc = 0;
            for (int64_t p = 0; p < s->k; p++)
                acc += raw_at(dt, a, ta ? p * s->m + i : i * s->k + p) *
                       raw_at(dt, b, tb ? j * s->k + p : p * s->n + j);
            tgt_diff_update(&worst, raw_at(dt, c, i * s->n + j),
                            0.5 * acc + raw_at(dt, c0, i * s->n + j));
        }
    return worst;
}

static void check_path_edge(tg_dtype dt, const path_shape *s, bool ta, bool tb, tg_rng *rng) {
    size_t es = tg_dtype_size(dt);
    void *a = malloc((size_t)(s->m * s->k) * es), *b = malloc((size_t)(s->k * s->n) * es);
    /* C with the slack every buffer of ours has (TG_SLACK: BLIS's small-matrix
     * kernels read a few bytes past C's end, e.g. TN 256 x 127 x 512) */
    void *c0 = malloc((size_t)(s->m * s->n) * es);
    void *c = malloc((size_t)(s->m * s->n) * es + TG_SLACK);
    ck_assert(a && b && c0 && c);
    rand_raw(dt, a, s->m * s->k, rng);
    rand_raw(dt, b, s->k * s->n, rng);
    rand_raw(dt, c0, s->m * s->n, rng);
    memcpy(c, c0, (size_t)(s->m * s->n) * es);
    tg_tape *tp = tg_tape_new();
    tg_gemm(tp, dt, ta, tb, s->m, s->n, s->k, 0.5, a, ta ? s->m : s->k, b, tb ? s->k : s->n, 1.0,
            c, s->n);
    double worst = raw_product_error(dt, s, ta, tb, a, b, c0, c);
    ck_assert_msg(tgt_within(worst, tolerance(dt, s->k)), "%s %c%c m %lld n %lld k %lld: worst "
                  "error %g", tg_dtype_name(dt), ta ? 'T' : 'N', tb ? 'T' : 'N', (long long)s->m,
                  (long long)s->n, (long long)s->k, worst);
    tg_tape_free(tp);
    free(a), free(b), free(c0), free(c);
}

START_TEST(both_blis_paths_agree_with_the_plain_product_at_their_edges) {
    tg_rng rng = tg_rng_seeded(23);
    static const bool layouts[3][2] = {{true, false}, {false, false}, {false, true}};
    for (int d = 0; d < 2; d++)
        for (size_t i = 0; i < sizeof path_edges / sizeof path_edges[0]; i++)
            for (int l = 0; l < 3; l++)
                check_path_edge(d ? TG_F64 : TG_F32, &path_edges[i], layouts[l][0],
                                layouts[l][1], &rng);
}
END_TEST

START_TEST(a_repeated_right_operand_is_packed_once_and_rounds_like_blis) {
    each_shape(check_forward, 11);
}
END_TEST

/* Backward of the third product: dA2 = dy op(W)^T runs on W packed in its
 * other orientation, dW = op-dependent A2^T dy. */
static void check_backward(tg_dtype dt, const mm_shape *s, tg_rng *rng) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *w = s->tb ? rand_tensor(dt, s->n, s->k, rng) : rand_tensor(dt, s->k, s->n, rng);
    tg_tensor *a = rand_tensor(dt, s->m, s->k, rng), *a2 = rand_tensor(dt, s->m, s->k, rng);
    tg_tensor *dy = rand_tensor(dt, s->m, s->n, rng);
    tg_tensor_set_requires_grad(w, true);
    tg_tensor_set_requires_grad(a2, true);
    tg_matmul_opts o = {.trans_b = s->tb};
    tg_matmul_ex(tp, a, w, &o);
    tg_matmul_ex(tp, a, w, &o);
    tg_tensor *c2 = tg_matmul_ex(tp, a2, w, &o);
    ck_assert_int_eq(tg_backward_ex(tp, c2, dy), TG_OK);
    /* dA2 [m, k] = dy [m, n] op(W)^T; dW = A2^T dy, stored transposed for W^T */
    double worst_a = 0, worst_w = 0;
    for (int64_t i = 0; i < s->m; i++)
        for (int64_t p = 0; p < s->k; p++) {
            double v = 0;
            for (int64_t j = 0; j < s->n; j++) v += tg_tensor_get(dy, i * s->n + j) * op_at(w, s->tb, p, j);
            tgt_diff_update(&worst_a, tg_tensor_grad_get(a2, i * s->k + p), v);
        }
    for (int64_t p = 0; p < s->k; p++)
        for (int64_t j = 0; j < s->n; j++) {
            double v = 0;
            for (int64_t i = 0; i < s->m; i++) v += tg_tensor_get(a2, i * s->k + p) * tg_tensor_get(dy, i * s->n + j);
            tgt_diff_update(&worst_w, tg_tensor_grad_get(w, s->tb ? j * s->k + p : p * s->n + j), v);
        }
    double tol = tolerance(dt, s->k > s->n ? (s->k > s->m ? s->k : s->m) : (s->n > s->m ? s->n : s->m));
    ck_assert_msg(tgt_within(worst_a, tol) && tgt_within(worst_w, tol),
                  "%s m %lld n %lld k %lld%s: dA worst %g, dW worst %g", tg_dtype_name(dt),
                  (long long)s->m, (long long)s->n, (long long)s->k, s->tb ? " (W^T)" : "",
                  worst_a, worst_w);
    tg_tape_stats st;
    tg_tape_stats_get(tp, &st);
    ck_assert(s->m < 32 || st.gemm_packed == 3);   /* two forward, dA2 */
    tg_tensor *all[] = {w, a, a2, dy};
    for (int i = 0; i < 4; i++) tg_tensor_free(all[i]);
    tg_tape_free(tp);
}

START_TEST(the_backward_product_uses_the_other_packed_orientation) {
    each_shape(check_backward, 12);
}
END_TEST

/* The recurrent products at W1-W3's shapes, and edge tiles in m and n. */
static const mm_shape split_shapes[] = {
    {32, 1024, 256, true}, {32, 256, 1024, false}, {32, 768, 256, true}, {32, 256, 768, false},
    {32, 256, 64, true},   {32, 64, 256, false},   {13, 100, 600, false}, {40, 15, 513, true},
    {7, 33, 300, true},    {64, 40, 100, true},
};

/* A W three times on a tape (the first through BLIS on one thread, the others
 * on W packed once, on `threads` threads); c [3, m, n] gets the products. */
static void products_on(tg_dtype dt, const mm_shape *s, const tg_tensor *a, const tg_tensor *w,
                        int threads, char *c) {
    tg_tape *tp = tg_tape_new();
    tg_matmul_opts o = {.trans_b = s->tb};
    size_t bytes = (size_t)(s->m * s->n) * tg_dtype_size(dt);
    for (int i = 0; i < 3; i++) {
        /* the packed ones: a busy machine makes each wait for its second thread */
        tg__gemm_force_threads(i > 0 ? threads : 1);
        tg_tensor *y = tg_matmul_ex(tp, (tg_tensor *)a, (tg_tensor *)w, &o);
        ck_assert_msg(y, "%s", tg_tape_error(tp));
        memcpy(c + (size_t)i * bytes, tg_tensor_data(y), bytes);
    }
    tg_tape_stats st;
    tg_tape_stats_get(tp, &st);
    ck_assert(s->m < 32 || st.gemm_packed == 2);
    tg_tape_free(tp);
    tg__gemm_force_threads(0);
}

/* The threads split the packed products (and the packing of A) without
 * changing any sum: one and two threads agree bit for bit, and with BLIS. */
static void check_split(tg_dtype dt, const mm_shape *s, tg_rng *rng) {
    tg_tensor *w = s->tb ? rand_tensor(dt, s->n, s->k, rng) : rand_tensor(dt, s->k, s->n, rng);
    tg_tensor *a = rand_tensor(dt, s->m, s->k, rng);
    tg_tensor_set_requires_grad(w, true);
    size_t bytes = (size_t)(s->m * s->n) * tg_dtype_size(dt);
    char *one = malloc(3 * bytes), *two = malloc(3 * bytes);
    ck_assert(one && two);
    products_on(dt, s, a, w, 1, one);
    products_on(dt, s, a, w, 2, two);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(memcmp(one + (size_t)i * bytes, two + (size_t)i * bytes, bytes) == 0 &&
                          memcmp(one, two + (size_t)i * bytes, bytes) == 0,
                      "%s m %lld n %lld k %lld%s: product %d differs between 1 and 2 threads",
                      tg_dtype_name(dt), (long long)s->m, (long long)s->n, (long long)s->k,
                      s->tb ? " (W^T)" : "", i);
    if (s->m * s->n * s->k <= (1 << 20)) {   /* the large ones: agreeing with 1 thread suffices */
        tg_tensor *c = tg_tensor_new(dt, 2, TGT_SHAPE(s->m, s->n));
        memcpy(tg_tensor_data(c), two + 2 * bytes, bytes);
        double e = product_error(c, a, false, w, s->tb, s->m, s->n, s->k);
        ck_assert_msg(tgt_within(e, tolerance(dt, s->k)),
                      "%s m %lld n %lld k %lld: worst error %g", tg_dtype_name(dt),
                      (long long)s->m, (long long)s->n, (long long)s->k, e);
        tg_tensor_free(c);
    }
    free(one);
    free(two);
    tg_tensor_free(a);
    tg_tensor_free(w);
}

/* check(dtype, shape) for every split shape in both dtypes, from one seed. */
static void each_split_shape(void (*check)(tg_dtype, const mm_shape *, tg_rng *), uint64_t seed) {
    tg_rng rng = tg_rng_seeded(seed);
    for (int d = 0; d < 2; d++)
        for (size_t i = 0; i < sizeof split_shapes / sizeof split_shapes[0]; i++)
            check(d ? TG_F64 : TG_F32, &split_shapes[i], &rng);
}

START_TEST(packed_products_are_bit_identical_on_one_and_two_threads) {
    each_split_shape(check_split, 14);
}
END_TEST

/* A packed product runs as stored or transposed, whichever measured faster
 * for its shape (gemm_pack.c, "which way round"): as stored, turned, and
 * turned on two threads, the products agree bit for bit with each other and
 * with the first (BLIS) one, at W1-W3's recurrent shapes (k over two KC
 * blocks) and edge tiles, both dtypes. */
static void check_turn(tg_dtype dt, const mm_shape *s, tg_rng *rng) {
    tg_tensor *w = s->tb ? rand_tensor(dt, s->n, s->k, rng) : rand_tensor(dt, s->k, s->n, rng);
    tg_tensor *a = rand_tensor(dt, s->m, s->k, rng);
    tg_tensor_set_requires_grad(w, true);
    size_t bytes = (size_t)(s->m * s->n) * tg_dtype_size(dt);
    char *c = malloc(3 * bytes), *first = malloc(bytes);
    ck_assert(c && first);
    for (int way = 0; way < 3; way++) {   /* as stored, turned, turned on 2 threads */
        tg__gemm_force_turn(way > 0);
        products_on(dt, s, a, w, way == 2 ? 2 : 1, c);
        if (way == 0) memcpy(first, c, bytes);
        for (int i = 0; i < 3; i++)
            ck_assert_msg(memcmp(first, c + (size_t)i * bytes, bytes) == 0,
                          "%s m %lld n %lld k %lld%s, %s, %d threads: product %d differs",
                          tg_dtype_name(dt), (long long)s->m, (long long)s->n, (long long)s->k,
                          s->tb ? " (W^T)" : "", way > 0 ? "turned" : "as stored",
                          way == 2 ? 2 : 1, i);
    }
    tg__gemm_force_turn(-1);
    free(c);
    free(first);
    tg_tensor_free(a);
    tg_tensor_free(w);
}

START_TEST(packed_products_are_bit_identical_turned_or_not) {
    each_split_shape(check_turn, 15);
}
END_TEST

/* The packed copy belongs to one recording: after tg_tape_reset a changed
 * W is seen (the documented rule is only: no change while recording). */
START_TEST(a_packed_operand_lives_until_tape_reset) {
    tg_rng rng = tg_rng_seeded(13);
    tg_tape *tp = tg_tape_new();
    tg_tensor *w = rand_tensor(TG_F32, 64, 48, &rng), *a = rand_tensor(TG_F32, 32, 64, &rng);
    tg_tensor_set_requires_grad(w, true);
    for (int round = 0; round < 2; round++) {
        tg_tensor *c = NULL;
        for (int i = 0; i < 3; i++) c = tg_matmul(tp, a, w);
        double e = product_error(c, a, false, w, false, 32, 48, 64);
        ck_assert_msg(tgt_within(e, tolerance(TG_F32, 64)), "round %d: error %g", round, e);
        tg_tape_stats st;
        tg_tape_stats_get(tp, &st);
        ck_assert_uint_eq(st.gemm_packed, 2);
        tg_tape_reset(tp);
        fill_rand(w, &rng);   /* between recordings: allowed */
    }
    tg_tensor_free(w);
    tg_tensor_free(a);
    tg_tape_free(tp);
}
END_TEST

/* ---- weight gradients of successive steps ------------------------------------------- */
enum { ST = 5, SB = 4, SH = 3, SG = 8 };   /* SB * SG elements: whole 64-byte lines */

typedef struct steps {
    tg_tensor *h[ST];      /* [SB, SH] each */
    tg_tensor *w;          /* [SG, SH], requires grad */
    tg_tensor *dy;         /* [ST*SB, SG] */
    double *hbuf;          /* NULL: each h its own tensor */
} steps;

/* h_t rows of one [ST*SB, SH] buffer (contiguous) or separate tensors. */
static steps steps_new(tg_dtype dt, bool contiguous, tg_rng *rng) {
    steps s = {0};
    size_t es = tg_dtype_size(dt), step_bytes = (size_t)(SB * SH) * es;
    char *buf = contiguous ? calloc(1, (size_t)ST * step_bytes + 64) : NULL;
    for (int t = 0; t < ST; t++) {
        s.h[t] = contiguous ? tg_tensor_wrap(dt, 2, TGT_SHAPE(SB, SH), buf + (size_t)t * step_bytes)
                            : tg_tensor_new(dt, 2, TGT_SHAPE(SB, SH));
        fill_rand(s.h[t], rng);
    }
    s.hbuf = (double *)buf;
    s.w = rand_tensor(dt, SG, SH, rng);
    tg_tensor_set_requires_grad(s.w, true);
    s.dy = rand_tensor(dt, ST * SB, SG, rng);
    return s;
}

static void steps_free(steps *s) {
    for (int t = 0; t < ST; t++) tg_tensor_free(s->h[t]);
    free(s->hbuf);
    tg_tensor_free(s->w);
    tg_tensor_free(s->dy);
}

/* z_t = h_t W'^T for every step, Z = concat over steps [ST*SB, SG], backward
 * with dy. W' is W itself or, with via_op, 2 W (an op whose VJP reads W''s
 * gradient: it must be complete by then). Returns the worst error of dW. */
static double steps_backward(tg_tape *tp, steps *s, bool via_op) {
    tg_tensor *wp = via_op ? tg_scale(tp, s->w, 2.0) : s->w;
    tg_tensor *z[ST];
    tg_matmul_opts tb = {.trans_b = true};
    for (int t = 0; t < ST; t++) z[t] = tg_matmul_ex(tp, s->h[t], wp, &tb);
    tg_tensor *zall = tg_concat(tp, ST, z, 0);
    ck_assert_msg(zall != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_backward_ex(tp, zall, s->dy), TG_OK);
    double worst = 0, scale = via_op ? 2.0 : 1.0;
    for (int64_t g = 0; g < SG; g++)
        for (int64_t j = 0; j < SH; j++) {
            double v = 0;   /* dW[g, j] = sum over all rows r of dy[r, g] h[r, j] */
            for (int t = 0; t < ST; t++)
                for (int64_t b = 0; b < SB; b++)
                    v += tg_tensor_get(s->dy, (t * SB + b) * SG + g) *
                         tg_tensor_get(s->h[t], b * SH + j);
            tgt_diff_update(&worst, tg_tensor_grad_get(s->w, g * SH + j), scale * v);
        }
    return worst;
}

static void check_merge(tg_dtype dt, bool contiguous, bool fusion, bool via_op, uint64_t merged) {
    tg_rng rng = tg_rng_seeded(14);
    steps s = steps_new(dt, contiguous, &rng);
    tg_tape *tp = tg_tape_new();
    tg_tape_set_fusion(tp, fusion);
    double worst = steps_backward(tp, &s, via_op);
    tg_tape_stats st;
    tg_tape_stats_get(tp, &st);
    ck_assert_msg(tgt_within(worst, tolerance(dt, ST * SB)), "%s%s%s: dW worst error %g",
                  tg_dtype_name(dt), contiguous ? " contiguous" : "", via_op ? " via an op" : "",
                  worst);
    ck_assert_uint_eq(st.gemm_deferred, fusion ? ST : 0);
    ck_assert_msg(st.gemm_merged == merged, "%s%s: %llu GEMMs, want %llu", tg_dtype_name(dt),
                  contiguous ? " contiguous" : "", (unsigned long long)st.gemm_merged,
                  (unsigned long long)merged);
    tg_tape_free(tp);
    steps_free(&s);
}

START_TEST(weight_gradients_of_successive_steps_run_as_one_gemm) {
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        check_merge(dt, true, true, false, 1);
        check_merge(dt, false, true, false, 1);    /* rows elsewhere: gathered, one GEMM */
        check_merge(dt, true, false, false, 0);    /* switched off: per step, not deferred */
        check_merge(dt, false, false, false, 0);
    }
}
END_TEST

START_TEST(a_deferred_gradient_is_complete_before_its_producer_reads_it) {
    for (int d = 0; d < 2; d++) {
        check_merge(d ? TG_F64 : TG_F32, true, true, true, 1);
        check_merge(d ? TG_F64 : TG_F32, false, true, true, 1);
    }
}
END_TEST

/* A second backward over the same recording adds the gradient again (leaves
 * accumulate): the first one's merged run was computed, none is left over. */
START_TEST(backward_twice_accumulates_merged_gradients_twice) {
    tg_rng rng = tg_rng_seeded(15);
    steps s = steps_new(TG_F64, true, &rng);
    tg_tape *tp = tg_tape_new();
    tg_tape_set_fusion(tp, true);   /* the merge follows the switch; the suite also runs with TG_FUSE=0 */
    tg_tensor *z[ST];
    tg_matmul_opts tb = {.trans_b = true};
    for (int t = 0; t < ST; t++) z[t] = tg_matmul_ex(tp, s.h[t], s.w, &tb);
    tg_tensor *zall = tg_concat(tp, ST, z, 0);
    ck_assert_int_eq(tg_backward_ex(tp, zall, s.dy), TG_OK);
    tg_tensor *once = tg_tensor_new(TG_F64, 2, TGT_SHAPE(SG, SH));
    for (int64_t i = 0; i < SG * SH; i++) tg_tensor_set(once, i, tg_tensor_grad_get(s.w, i));
    ck_assert_int_eq(tg_backward_ex(tp, zall, s.dy), TG_OK);
    double worst = 0;
    for (int64_t i = 0; i < SG * SH; i++)
        tgt_diff_update(&worst, tg_tensor_grad_get(s.w, i), 2 * tg_tensor_get(once, i));
    ck_assert_msg(tgt_within(worst, 1e-12), "worst %g", worst);
    tg_tape_stats st;
    tg_tape_stats_get(tp, &st);
    ck_assert_uint_eq(st.gemm_merged, 2);
    tg_tensor_free(once);
    tg_tape_free(tp);
    steps_free(&s);
}
END_TEST

/* ---- steps elsewhere, gathered ------------------------------------------------------- */

/* T steps of B rows, each h_t [B, H] a tensor of its own (as tg_rnn's steps
 * are): z_t = h_t W^T, W [G, H], backward of concat(z) with dy [T*B, G].
 * dW goes to dw [G*H]; with ref, the double-loop sum too. Returns the stats. */
static tg_tape_stats separate_steps_dw(tg_dtype dt, int T, int64_t B, int64_t H, int64_t G,
                                       bool fusion, double *dw, double *ref) {
    tg_rng rng = tg_rng_seeded(21);
    tg_tensor **h = calloc((size_t)T, sizeof *h), **z = calloc((size_t)T, sizeof *z);
    for (int t = 0; t < T; t++) h[t] = rand_tensor(dt, B, H, &rng);
    tg_tensor *w = rand_tensor(dt, G, H, &rng), *dy = rand_tensor(dt, T * B, G, &rng);
    tg_tensor_set_requires_grad(w, true);
    tg_tape *tp = tg_tape_new();
    tg_tape_set_fusion(tp, fusion);
    tg_matmul_opts tb = {.trans_b = true};
    for (int t = 0; t < T; t++) z[t] = tg_matmul_ex(tp, h[t], w, &tb);
    tg_tensor *zall = tg_concat(tp, T, z, 0);
    ck_assert_msg(zall != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_backward_ex(tp, zall, dy), TG_OK);
    for (int64_t i = 0; i < G * H; i++) dw[i] = tg_tensor_grad_get(w, i);
    for (int64_t g = 0; ref && g < G; g++)
        for (int64_t j = 0; j < H; j++) {
            double v = 0;
            for (int t = 0; t < T; t++)
                for (int64_t b = 0; b < B; b++)
                    v += tg_tensor_get(dy, (t * B + b) * G + g) * tg_tensor_get(h[t], b * H + j);
            ref[g * H + j] = v;
        }
    tg_tape_stats st;
    tg_tape_stats_get(tp, &st);
    tg_tape_free(tp);
    for (int t = 0; t < T; t++) tg_tensor_free(h[t]);
    tg_tensor_free(w);
    tg_tensor_free(dy);
    free(h);
    free(z);
    return st;
}

/* 20 steps of 32 rows: gathered 256 rows at a time (gemm_defer.c), three
 * GEMMs of 8, 8 and 4 steps; the sum equals the loops' and the per-step
 * GEMMs' (fusion off) within rounding, so a dropped or repeated chunk fails. */
START_TEST(steps_elsewhere_are_gathered_in_chunks_that_sum_like_per_step_gemms) {
    enum { T = 20, B = 32, H = 16, G = 24 };
    static double merged[G * H], per_step[G * H], ref[G * H];
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        tg_tape_stats on = separate_steps_dw(dt, T, B, H, G, true, merged, ref);
        tg_tape_stats off = separate_steps_dw(dt, T, B, H, G, false, per_step, NULL);
        double worst_ref = 0, worst_off = 0;
        for (int i = 0; i < G * H; i++) {
            tgt_diff_update(&worst_ref, merged[i], ref[i]);
            tgt_diff_update(&worst_off, merged[i], per_step[i]);
        }
        ck_assert_msg(tgt_within(worst_ref, tolerance(dt, T * B)) &&
                          tgt_within(worst_off, tolerance(dt, T * B)),
                      "%s: merged dW against the loops %g, against per-step GEMMs %g",
                      tg_dtype_name(dt), worst_ref, worst_off);
        ck_assert_uint_eq(on.gemm_deferred, T);
        ck_assert_uint_eq(on.gemm_merged, 3);
        ck_assert_uint_eq(off.gemm_deferred, 0);
    }
}
END_TEST

/* Steps of more than half a staging buffer (200 rows of 256) are long GEMMs
 * already: each runs on its own rows, uncopied, and the sum is still right. */
START_TEST(wide_steps_are_not_gathered) {
    enum { T = 3, B = 200, H = 4, G = 8 };
    double dw[G * H], ref[G * H], worst = 0;
    tg_tape_stats st = separate_steps_dw(TG_F64, T, B, H, G, true, dw, ref);
    for (int i = 0; i < G * H; i++) tgt_diff_update(&worst, dw[i], ref[i]);
    ck_assert_msg(tgt_within(worst, tolerance(TG_F64, T * B)), "dW worst error %g", worst);
    ck_assert_uint_eq(st.gemm_merged, T);
}
END_TEST

/* The engine's own contract (gemm_internal.h): gathered rows are copied when
 * they arrive, so buffers overwritten before the flush do not change the sum
 * (here with X rows in a wider buffer, leading dimension 5 for 3 columns; a
 * gap after each contribution, so that no two continue each other). */
START_TEST(gathered_rows_are_copied_when_they_arrive) {
    enum { N = 3, R = 4, P = 3, LDX = 5, Q = 2 };
    double x[N][R * LDX + 1], y[N][R * Q + 1], dst[P * Q] = {0}, want[P * Q] = {0};
    tg_rng rng = tg_rng_seeded(22);
    for (int c = 0; c < N; c++) {
        for (int i = 0; i < R * LDX; i++) x[c][i] = 2 * tg_rng_uniform(&rng) - 1;
        for (int i = 0; i < R * Q; i++) y[c][i] = 2 * tg_rng_uniform(&rng) - 1;
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++)
                for (int r = 0; r < R; r++) want[p * Q + q] += x[c][r * LDX + p] * y[c][r * Q + q];
    }
    tg_tape *tp = tg_tape_new();
    tg_tape_set_fusion(tp, true);
    for (int c = 0; c < N; c++)
        ck_assert(tg__gemm_defer_xty(tp, TG_F64, P, Q, R, x[c], LDX, y[c], Q, dst));
    for (int c = 0; c < N; c++) {
        for (int i = 0; i < R * LDX; i++) x[c][i] = NAN;
        for (int i = 0; i < R * Q; i++) y[c][i] = NAN;
    }
    tg__flush_deferred(tp, NULL);
    double worst = 0;
    for (int i = 0; i < P * Q; i++) tgt_diff_update(&worst, dst[i], want[i]);
    ck_assert_msg(tgt_within(worst, 1e-14), "worst %g", worst);
    tg_tape_stats st;
    tg_tape_stats_get(tp, &st);
    ck_assert_uint_eq(st.gemm_merged, 1);
    tg_tape_free(tp);
}
END_TEST

/* A gradient with few columns and many rows (W1's 1024 x 65 over 2048 rows)
 * is computed transposed into scratch and added back transposed
 * (gemm_defer.c, transpose_pays: from 512 gradient rows, 64-127 columns, 512
 * rows). Odd sizes, both dtypes, rows in wider buffers (leading dimensions
 * above P and Q), dst holding values to accumulate into: against a plain sum. */
static void check_turned(tg_dtype dt, int64_t P, int64_t Q, int64_t rows) {
    int64_t ldx = P + 3, ldy = Q + 2;
    tg_rng rng = tg_rng_seeded(31);
    tg_tensor *x = rand_tensor(dt, rows, ldx, &rng), *y = rand_tensor(dt, rows, ldy, &rng);
    tg_tensor *dst = rand_tensor(dt, P, Q, &rng);
    /* want = dst + X^T Y in double, over copies of X^T and Y^T (rows contiguous) */
    double *want = malloc(sizeof(double) * (size_t)(P * Q));
    double *xt = malloc(sizeof(double) * (size_t)(P * rows));
    double *yt = malloc(sizeof(double) * (size_t)(Q * rows));
    ck_assert(want && xt && yt);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t p = 0; p < P; p++) xt[p * rows + r] = tg_tensor_get(x, r * ldx + p);
        for (int64_t q = 0; q < Q; q++) yt[q * rows + r] = tg_tensor_get(y, r * ldy + q);
    }
    for (int64_t p = 0; p < P; p++)
        for (int64_t q = 0; q < Q; q++) {
            double v = tg_tensor_get(dst, p * Q + q);
            for (int64_t r = 0; r < rows; r++) v += xt[p * rows + r] * yt[q * rows + r];
            want[p * Q + q] = v;
        }
    free(xt);
    free(yt);
    tg_tape *tp = tg_tape_new();
    tg_tape_set_fusion(tp, true);
    ck_assert(tg__gemm_defer_xty(tp, dt, P, Q, rows, tg_tensor_data(x), ldx, tg_tensor_data(y),
                                 ldy, tg_tensor_data(dst)));
    tg__flush_deferred(tp, NULL);
    double worst = 0;
    for (int64_t i = 0; i < P * Q; i++) tgt_diff_update(&worst, tg_tensor_get(dst, i), want[i]);
    ck_assert_msg(tgt_within(worst, tolerance(dt, rows)), "%s [%lld, %lld] over %lld rows: worst %g",
                  tg_dtype_name(dt), (long long)P, (long long)Q, (long long)rows, worst);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tensor_free(dst);
    free(want);
}

START_TEST(a_gradient_with_few_columns_computed_transposed_sums_right) {
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        check_turned(dt, 517, 67, 515);
        check_turned(dt, 512, 64, 512);    /* the rule's edges */
        check_turned(dt, 515, 63, 520);    /* just outside: the plain path */
    }
}
END_TEST

/* tanh(h_t W^T) for every step, concatenated: 20 steps of 16 rows, two chunks. */
typedef struct chain_ctx {
    tg_tensor *h[20];
    bool fusion;
} chain_ctx;

static tg_tensor *tanh_steps(tg_tape *tp, tg_tensor *const *in, void *user) {
    chain_ctx *c = user;
    tg_tape_set_fusion(tp, c->fusion);
    tg_tensor *z[20];
    tg_matmul_opts tb = {.trans_b = true};
    for (int t = 0; t < 20; t++) z[t] = tg_tanh(tp, tg_matmul_ex(tp, c->h[t], in[0], &tb));
    return tg_concat(tp, 20, z, 0);
}

START_TEST(gathered_weight_gradients_pass_gradcheck_with_the_merge_on_and_off) {
    tg_rng rng = tg_rng_seeded(23);
    chain_ctx c = {.fusion = true};
    for (int t = 0; t < 20; t++) c.h[t] = rand_tensor(TG_F64, 16, 2, &rng);
    tg_tensor *w = rand_tensor(TG_F64, 3, 2, &rng);
    tg_tensor_set_requires_grad(w, true);
    for (int on = 0; on < 2; on++) {
        c.fusion = on;
        tg_gradcheck_report r;
        ck_assert_int_eq(tg_gradcheck(tanh_steps, &c, 1, &w, NULL, &r), TG_OK);
        ck_assert_msg(r.passed, "merge %s: max abs err %g", on ? "on" : "off", r.max_abs_err);
    }
    for (int t = 0; t < 20; t++) tg_tensor_free(c.h[t]);
    tg_tensor_free(w);
}
END_TEST

/* ---- a whole layer ---------------------------------------------------------------------- */
enum { LB = 16, LT = 20, LC = 5, LH = 8, MAX_GRADS = 4096 };

/* A 2-layer bidirectional LSTM over [LB, LT, LC], every step's output against
 * a target (MSE): each parameter's gradient, in registry order, into g. */
static tg_tape_stats lstm_grads(tg_dtype dt, bool fusion, double *g, int64_t *n) {
    tg_rng rng = tg_rng_seeded(24);
    tg_params *p = tg_params_new();
    tg_rnn_opts o = tg_rnn_opts_default(&tg_cell_lstm, LC, LH);
    o.num_layers = 2;
    o.bidirectional = true;
    o.return_sequences = true;
    tg_rnn rnn;
    ck_assert_int_eq(tg_rnn_init(&rnn, p, "rnn", &o, dt, &rng), TG_OK);
    tg_tensor *x = tg_tensor_new(dt, 3, TGT_SHAPE(LB, LT, LC));
    tg_tensor *target = tg_tensor_new(dt, 3, TGT_SHAPE(LB, LT, 2 * LH));
    fill_rand(x, &rng);
    fill_rand(target, &rng);
    tg_tape *tp = tg_tape_new();
    tg_tape_set_fusion(tp, fusion);
    tg_tensor *loss = tg_mse(tp, tg_rnn_forward(tp, &rnn, x, NULL, NULL, 0), target);
    ck_assert_msg(loss != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    *n = 0;
    for (int i = 0; i < tg_params_count(p); i++) {
        tg_tensor *t = tg_params_at(p, i);
        for (int64_t j = 0; j < tg_tensor_numel(t); j++) {
            ck_assert_int_lt(*n, MAX_GRADS);
            g[(*n)++] = tg_tensor_grad_get(t, j);
        }
    }
    tg_tape_stats st;
    tg_tape_stats_get(tp, &st);
    tg_tape_free(tp);
    tg_rnn_free(&rnn);
    tg_params_free(p);
    tg_tensor_free(x);
    tg_tensor_free(target);
    return st;
}

/* Each W_hh gets 20 contributions of 16 rows: gathered, two GEMMs each. The
 * gradients of every parameter agree with the unmerged ones within rounding. */
START_TEST(an_lstm_layer_merges_its_weight_gradients_and_agrees_with_per_step_gemms) {
    static double on_g[MAX_GRADS], off_g[MAX_GRADS];
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        int64_t n_on, n_off;
        tg_tape_stats on = lstm_grads(dt, true, on_g, &n_on);
        lstm_grads(dt, false, off_g, &n_off);
        ck_assert_int_eq(n_on, n_off);
        double worst = 0, largest = 0;
        for (int64_t i = 0; i < n_on; i++) {
            tgt_diff_update(&worst, on_g[i], off_g[i]);
            tgt_diff_update(&largest, off_g[i], 0);
        }
        double tol = (dt == TG_F32 ? 1e-5 : 1e-13) * (largest + 1);
        ck_assert_msg(tgt_within(worst, tol), "%s: worst difference %g (largest gradient %g)",
                      tg_dtype_name(dt), worst, largest);
        ck_assert_msg(on.gemm_merged * 4 < on.gemm_deferred,
                      "%s: %llu contributions deferred, run as %llu GEMMs", tg_dtype_name(dt),
                      (unsigned long long)on.gemm_deferred, (unsigned long long)on.gemm_merged);
    }
}
END_TEST

Suite *suite_gemm(void) {
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("gemm");
    tcase_set_timeout(tc, 120);   /* wall time: forced 2-thread products wait on a shared machine */
    tcase_add_test(tc, both_blis_paths_agree_with_the_plain_product_at_their_edges);
    tcase_add_test(tc, a_repeated_right_operand_is_packed_once_and_rounds_like_blis);
    tcase_add_test(tc, the_backward_product_uses_the_other_packed_orientation);
    tcase_add_test(tc, a_packed_operand_lives_until_tape_reset);
    tcase_add_test(tc, packed_products_are_bit_identical_on_one_and_two_threads);
    tcase_add_test(tc, packed_products_are_bit_identical_turned_or_not);
    tcase_add_test(tc, weight_gradients_of_successive_steps_run_as_one_gemm);
    tcase_add_test(tc, a_deferred_gradient_is_complete_before_its_producer_reads_it);
    tcase_add_test(tc, backward_twice_accumulates_merged_gradients_twice);
    tcase_add_test(tc, steps_elsewhere_are_gathered_in_chunks_that_sum_like_per_step_gemms);
    tcase_add_test(tc, wide_steps_are_not_gathered);
    tcase_add_test(tc, gathered_rows_are_copied_when_they_arrive);
    tcase_add_test(tc, gathered_weight_gradients_pass_gradcheck_with_the_merge_on_and_off);
    tcase_add_test(tc, a_gradient_with_few_columns_computed_transposed_sums_right);
    tcase_add_test(tc, an_lstm_layer_merges_its_weight_gradients_and_agrees_with_per_step_gemms);
    suite_add_tcase(s, tc);
    return s;
}
