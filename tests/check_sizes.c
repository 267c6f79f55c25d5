/* tests/check_sizes.c - sizes from users are hostile (issue 9, item 1-2).
 *
 * Every case here once crashed, hung or computed on a wrapped size: shapes
 * whose product passes 2^40 elements (zero dims included), results of ops that
 * would, arena requests near SIZE_MAX, empty tensors whose other dims are huge,
 * and conv1d/max_pool1d attributes near INT64_MAX. Each must return at once
 * with an error naming the op and the shape. */
#include "check_suites.h"

#define G31 ((int64_t)1 << 31)
#define G40 ((int64_t)1 << 40)

/* The 136-byte safetensors file of the issue: a [2^31,0] and b [0,2^31] are
 * empty, but a x b would be [2^31,2^31] (2^62 elements, whose byte size wrapped
 * to 0, and BLIS then wrote 8 GiB). */
START_TEST(matmul_of_two_empty_giants_is_refused) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = tg_tensor_new(TG_F32, 2, TGT_SHAPE(G31, 0));
    tg_tensor *b = tg_tensor_new(TG_F32, 2, TGT_SHAPE(0, G31));
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(tg_matmul(tp, a, b));
    ck_assert_tape_error(tp, TG_ERR_SHAPE,
                         "matmul: result [2147483648,2147483648] (dtype 0, ndim 2): more than 2^40 "
                         "elements; inputs [2147483648,0], [0,2147483648]");
    /* [2^40,0] x [0,2^40]: the result's 2^80 elements overflowed int64 in
     * matmul's own size arithmetic before the result was checked (found by the
     * API fuzzer, seed 1795966795) */
    tg_tensor *a40 = tg_tensor_new(TG_F32, 2, TGT_SHAPE(G40, 0));
    tg_tensor *b40 = tg_tensor_new(TG_F32, 2, TGT_SHAPE(0, G40));
    ck_assert_ptr_nonnull(a40);
    ck_assert_ptr_nonnull(b40);
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_matmul(tp, a40, b40));
    ck_assert_tape_error(tp, TG_ERR_SHAPE,
                         "matmul: result [1099511627776,1099511627776] (dtype 0, ndim 2): more "
                         "than 2^40 elements; inputs [1099511627776,0], [0,1099511627776]");
    tg_tensor_free(a40);
    tg_tensor_free(b40);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

START_TEST(tensors_past_2_40_elements_are_refused_at_once) {
    tg_tape *tp = tg_tape_new();
    /* [2^31,2^31]: the tape tensor's bytes wrapped, and a fill overflowed the heap */
    ck_assert_ptr_null(tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(G31, G31)));
    ck_assert_tape_error(tp, TG_ERR_SHAPE,
                         "tape_tensor: bad shape [2147483648,2147483648]: more than 2^40 elements");
    tg_tensor_fill(NULL, 1.0); /* what a caller that did not check would do next */
    /* [3,2^40,2^20]: the arena doubled its chunk size to 0 and never returned */
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_tape_tensor(tp, TG_F64, 3, TGT_SHAPE(3, G40, 1 << 20)));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "more than 2^40 elements");
    const int64_t *giant = TGT_SHAPE(3, G40, 1 << 20);
    char buf[64];
    ck_assert_ptr_null(tg_tensor_new(TG_F32, 3, giant));
    ck_assert_last_error(TG_ERR_SHAPE,
                         "tensor_new: bad shape [3,1099511627776,1048576]: more than 2^40 elements");
    ck_assert_ptr_null(tg_tensor_wrap(TG_F32, 3, giant, buf));
    ck_assert_last_error(TG_ERR_SHAPE, "tensor_wrap: bad shape");
    ck_assert_ptr_null(tg_tensor_from(TG_F32, 3, giant, NULL));
    /* a zero dim does not end the check: [0,2^62] and [0,2^62,2^62] (whose
     * strides overflowed in the broadcast plan) cannot be made */
    ck_assert_ptr_null(tg_tensor_new(TG_F32, 2, TGT_SHAPE(0, (int64_t)1 << 62)));
    ck_assert_ptr_null(tg_tensor_new(TG_F32, 3, TGT_SHAPE(0, (int64_t)1 << 62, (int64_t)1 << 62)));
    ck_assert_ptr_null(tg_tensor_new(TG_F32, 2, TGT_SHAPE(INT64_MAX, 0)));
    ck_assert_str_eq(tg_last_error(),
                     "tensor_new: bad shape [9223372036854775807,0]: more than 2^40 elements");
    ck_assert_ptr_null(tg_tensor_new(TG_F32, 2, TGT_SHAPE(0, -1)));
    ck_assert_str_eq(tg_last_error(), "tensor_new: bad shape [0,-1]: negative dimension");
    /* exactly at the cap is a shape (empty here, so nothing is allocated) */
    tg_tensor *edge = tg_tensor_new(TG_F32, 3, TGT_SHAPE(G40, 0, 1));
    ck_assert_ptr_nonnull(edge);
    tg_tensor_free(edge);
    tg_tape_free(tp);
}
END_TEST

START_TEST(tape_alloc_refuses_sizes_that_would_wrap) {
    tg_tape *tp = tg_tape_new();
    ck_assert_ptr_null(tg_tape_alloc(tp, SIZE_MAX - 15)); /* rounded up to 64: wrapped to 0 */
    ck_assert_tape_error(tp, TG_ERR_ARG,
                         "tape_alloc: 18446744073709551600 bytes is more than the arena's limit");
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_tape_alloc(tp, SIZE_MAX));
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_tape_alloc(tp, ((size_t)1 << 43) + 1));
    tg_tape_clear_error(tp);
    unsigned char *p = tg_tape_alloc(tp, 100); /* the tape is still fine */
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p[99], 0);
    ck_assert_ptr_null(tg_tape_alloc(NULL, 8));
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
    tg_tape_free(tp);
}
END_TEST

/* [0, 2^40] is a valid (empty) shape, but kernels that loop over its other
 * dims ran 2^34 iterations: an empty result is now not computed at all. */
START_TEST(ops_on_an_empty_giant_return_at_once) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_new(TG_F32, 2, TGT_SHAPE(0, G40));
    tg_tensor_set_requires_grad(x, true);
    tg_tensor *y = tg_softmax(tp, x, 0);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_tensor_numel(y), 0);
    ck_assert_int_eq(tg_tensor_dim(y, 1), G40);
    tg_tensor *parts[2] = {tg_log_softmax(tp, y, 1), x};
    tg_tensor *z = tg_transpose(tp, tg_concat(tp, 2, parts, 0), 0, 1); /* [2^40, 0] */
    ck_assert_msg(z != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_tensor_dim(z, 0), G40);
    tg_tensor *s = tg_sum_axis(tp, z, 0, false); /* [0] */
    ck_assert_msg(s != NULL, "%s", tg_tape_error(tp));
    tg_tensor *dy = tg_tensor_new(TG_F32, 1, TGT_SHAPE(0));
    ck_assert_int_eq(tg_backward_ex(tp, s, dy), TG_OK);
    ck_assert_ptr_nonnull(tg_tensor_grad(x)); /* a zero (empty) gradient reached x */
    tg_tensor_free(dy);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(results_past_the_cap_are_refused_with_op_and_shapes) {
    tg_tape *tp = tg_tape_new();
    /* concat of three [0,2^62] gave [0,-2^62]: such inputs cannot exist now,
     * and three [0,2^40] along axis 1 are too long together */
    tg_tensor *e = tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(0, G40));
    tg_tensor *three[3] = {e, e, e};
    ck_assert_ptr_null(tg_concat(tp, 3, three, 1));
    ck_assert_tape_error(tp, TG_ERR_SHAPE,
                         "concat: result [0,3298534883328] (dtype 0, ndim 2): more than 2^40 "
                         "elements; inputs [0,1099511627776], [0,1099511627776], [0,1099511627776]");
    /* a broadcast of empty and long dims */
    tg_tape_clear_error(tp);
    tg_tensor *a = tg_tape_tensor(tp, TG_F32, 3, TGT_SHAPE(G40, 0, 1));
    tg_tensor *b = tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(1, 1 << 20));
    ck_assert_ptr_null(tg_add(tp, a, b));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "add: result [1099511627776,0,1048576]");
    /* reshape of an empty tensor to an empty giant */
    tg_tape_clear_error(tp);
    tg_tensor *z = tg_tape_tensor(tp, TG_F32, 1, TGT_SHAPE(0));
    ck_assert_ptr_null(tg_reshape(tp, z, 2, TGT_SHAPE(0, (int64_t)1 << 62)));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "reshape: result [0,4611686018427387904]");
    /* embedding: [2^21] ids into 2^20 columns */
    tg_tape_clear_error(tp);
    tg_tensor *w = tg_tape_tensor(tp, TG_F32, 2, TGT_SHAPE(1, 1 << 20));
    tg_tensor *idx = tg_tape_tensor(tp, TG_I32, 1, TGT_SHAPE(1 << 21));
    ck_assert_ptr_null(tg_embedding(tp, w, idx));
    ck_assert_tape_error(tp, TG_ERR_SHAPE, "embedding: result [2097152,1048576]");
    tg_tape_free(tp);
}
END_TEST

/* stride = INT64_MAX with padding 3 was accepted, and im2col's first valid
 * position (-off + S - 1) / S overflowed: it wrote outside col. */
START_TEST(conv1d_attributes_near_int64_max_are_refused) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tape_tensor(tp, TG_F64, 3, TGT_SHAPE(1, 1, 8));
    tg_tensor *w = tg_tape_tensor(tp, TG_F64, 3, TGT_SHAPE(1, 1, 1));
    tg_tensor_fill(x, 1.0);
    tg_tensor_fill(w, 2.0);
    tg_conv1d_opts o = {.stride = INT64_MAX, .padding = 3};
    ck_assert_ptr_null(tg_conv1d(tp, x, w, NULL, &o));
    ck_assert_tape_error(tp, TG_ERR_ARG, "conv1d: stride must be in [1,2^40], got 9223372036854775807");
    ck_assert_ptr_null(tg_max_pool1d(tp, x, 2, INT64_MAX));
    /* the largest stride: one output position, at -3, in the padding: y = 0,
     * and every gradient of x and w is 0 (checked inside bounds under ASan) */
    tg_tape_clear_error(tp);
    tg_tensor_set_requires_grad(x, true);
    tg_tensor_set_requires_grad(w, true);
    o.stride = G40;
    tg_tensor *y = tg_conv1d(tp, x, w, NULL, &o);
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_tensor_numel(y), 1);
    ck_assert_near(tg_tensor_item(y), 0.0, 0);
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);
    ck_assert_grad_near(x, TGT_VALS(0, 0, 0, 0, 0, 0, 0, 0), 8, 0);
    ck_assert_grad_near(w, TGT_VALS(0), 1, 0);
    /* im2col's [Cin*K, Lout] buffer is sized too: x [1,1024,1] padded by 2^20
     * with w [1,1024,1024] gives an output of 2096130 positions (fine) but a
     * [1048576, 2096130] column buffer (2^41 elements) */
    tg_tensor *cx = tg_tape_tensor(tp, TG_F64, 3, TGT_SHAPE(1, 1024, 1));
    tg_tensor *cw = tg_tape_tensor(tp, TG_F64, 3, TGT_SHAPE(1, 1024, 1024));
    tg_tape_clear_error(tp);
    tg_conv1d_opts wide = {.padding = 1 << 20};
    ck_assert_ptr_null(tg_conv1d(tp, cx, cw, NULL, &wide));
    ck_assert_tape_error(tp, TG_ERR_SHAPE,
                         "conv1d: im2col buffer [1048576,2096130] has more than 2^40 elements");
    /* without padding the one position reads x[0] = 1: y = 2 */
    o.padding = 0;
    tg_tensor *y7 = tg_conv1d(tp, x, w, NULL, &o);
    ck_assert_msg(y7 != NULL, "%s", tg_tape_error(tp));
    ck_assert_near(tg_tensor_item(y7), 2.0, 0);
    tg_tape_free(tp);
}
END_TEST

/* ---- conv1d and max_pool1d over every hostile setting ------------------------------------
 * The conv2d review found ops/conv.c overflowing under UBSan with stride
 * 2^63-1 and padding > 0. Rather than that one case, every combination of
 * settings at the edges infer and the index arithmetic have: 0 (the default),
 * small values, the 2^40 cap and its neighbours, and values whose sums and
 * products pass INT64_MAX. Each call must either fail with an error naming the
 * op, exactly when the definition says the settings are invalid or the result
 * too large, or give the definition's values and gradients. Under UBSan (the
 * asan setup halts on the first report) an overflow anywhere fails it. */
static const int64_t HOSTILE[] = {INT64_MIN, -1, 0, 1, 2, 3, 7, G40 - 1, G40, G40 + 1,
                                  (int64_t)1 << 62, INT64_MAX};
enum { N_HOSTILE = sizeof HOSTILE / sizeof HOSTILE[0], CIN = 2, COUT = 2 };

/* The definition's numbers, in 128 bits so that the test itself cannot overflow. */
typedef struct conv_def { __int128 S, P, D, L, K, Lout; } conv_def;

/* True when conv1d must accept the settings: each in range (stride and
 * dilation in [1, 2^40], 0 meaning 1; padding in [0, 2^40]), the dilated kernel
 * inside the padded input, and the im2col buffer [Cin*K, Lout] within 2^40. */
static bool conv_def_valid(conv_def *d, int64_t L, int64_t K, const tg_conv1d_opts *o) {
    d->S = o->stride ? o->stride : 1;
    d->D = o->dilation ? o->dilation : 1;
    d->P = o->padding, d->L = L, d->K = K;
    if (d->S < 1 || d->S > G40 || d->D < 1 || d->D > G40 || d->P < 0 || d->P > G40) return false;
    __int128 span = L + 2 * d->P - d->D * (K - 1) - 1;
    if (span < 0) return false;
    d->Lout = span / d->S + 1;
    return d->Lout * CIN * K <= G40;
}

/* x position read by output t and kernel tap k: t*S - P + k*D (maybe outside [0, L)) */
static __int128 conv_def_at(const conv_def *d, int64_t t, int64_t k) {
    return t * d->S - d->P + k * d->D;
}

/* y = conv1d(x, w, bias) and the gradients of sum(y) against the definition
 * (x, w, bias hold x_i = i + 1, w_i = 0.5 - i / 8, bias_o = o). */
static void conv_matches_definition(tg_tape *tp, tg_tensor *y, tg_tensor *x, tg_tensor *w,
                                    tg_tensor *bias, const conv_def *d) {
    int64_t L = (int64_t)d->L, K = (int64_t)d->K, Lout = (int64_t)d->Lout;
    ck_assert_int_eq(tg_tensor_dim(y, 2), Lout);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, y)), TG_OK);
    double dx[CIN * 8] = {0}, dw[COUT * CIN * 3] = {0};
    for (int64_t o = 0; o < COUT; o++)
        for (int64_t t = 0; t < Lout; t++) {
            double want = (double)o;
            for (int64_t c = 0; c < CIN; c++)
                for (int64_t k = 0; k < K; k++) {
                    __int128 at = conv_def_at(d, t, k);
                    if (at < 0 || at >= L) continue;   /* padding */
                    want += tg_tensor_get(w, (o * CIN + c) * K + k) * tg_tensor_get(x, c * L + (int64_t)at);
                    dx[c * L + (int64_t)at] += tg_tensor_get(w, (o * CIN + c) * K + k);
                    dw[(o * CIN + c) * K + k] += tg_tensor_get(x, c * L + (int64_t)at);
                }
            ck_assert_near(tg_tensor_get(y, o * Lout + t), want, 1e-12);
        }
    ck_assert_grad_near(x, dx, CIN * L, 1e-12);
    ck_assert_grad_near(w, dw, COUT * CIN * K, 1e-12);
    ck_assert_grad_near(bias, TGT_VALS((double)Lout, (double)Lout), COUT, 0);
}

/* One call: refused exactly when the definition says so, else the definition.
 * The tape is reset afterwards (one tape for the sweep: a new one per case
 * made it slow under ASan). */
static void conv_hostile_case(tg_tape *tp, int64_t L, int64_t K, const tg_conv1d_opts *o) {
    tg_tensor *x = tg_tape_tensor(tp, TG_F64, 3, TGT_SHAPE(1, CIN, L));
    tg_tensor *w = tg_tape_tensor(tp, TG_F64, 3, TGT_SHAPE(COUT, CIN, K));
    tg_tensor *bias = tg_tape_tensor(tp, TG_F64, 1, TGT_SHAPE(COUT));
    for (int64_t i = 0; i < CIN * L; i++) tg_tensor_set(x, i, (double)i + 1);
    for (int64_t i = 0; i < COUT * CIN * K; i++) tg_tensor_set(w, i, 0.5 - (double)i / 8);
    for (int64_t i = 0; i < COUT; i++) tg_tensor_set(bias, i, (double)i);
    tg_tensor *in[3] = {x, w, bias};
    for (int i = 0; i < 3; i++) tg_tensor_set_requires_grad(in[i], true);
    conv_def d;
    bool valid = conv_def_valid(&d, L, K, o);
    /* valid but large (2^40 / 4 positions at most): nothing hostile left to run */
    if (valid && d.Lout * CIN * K > 4096) {
        tg_tape_reset(tp);
        return;
    }
    tg_tensor *y = tg_conv1d(tp, x, w, bias, o);
    ck_assert_msg((y != NULL) == valid, "L %lld K %lld stride %lld padding %lld dilation %lld: %s",
                  (long long)L, (long long)K, (long long)o->stride, (long long)o->padding,
                  (long long)o->dilation, y ? "accepted" : tg_tape_error(tp));
    if (y) conv_matches_definition(tp, y, x, w, bias, &d);
    else ck_assert_msg(strncmp(tg_tape_error(tp), "conv1d", 6) == 0, "%s", tg_tape_error(tp));
    tg_tape_reset(tp);
}

START_TEST(conv1d_hostile_settings_fail_cleanly_or_match_the_definition) {
    static const int64_t lengths[] = {1, 5}, kernels[] = {1, 3};
    tg_tape *tp = tg_tape_new();
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int s = 0; s < N_HOSTILE; s++)
                for (int p = 0; p < N_HOSTILE; p++)
                    for (int q = 0; q < N_HOSTILE; q++)
                        conv_hostile_case(tp, lengths[a], kernels[b],
                                          &(tg_conv1d_opts){HOSTILE[s], HOSTILE[p], HOSTILE[q]});
    tg_tape_free(tp);
}
END_TEST

/* max_pool1d: y[c,t] = max_k x[c, t*S + k] (S = kernel when stride is 0), the
 * gradient of sum(y) one per window at its maximum (x increasing: the last tap). */
START_TEST(max_pool1d_hostile_settings_fail_cleanly_or_match_the_definition) {
    enum { L = 5 };
    static const int64_t kernels[] = {INT64_MIN, -1, 0, 1, 2, L, L + 1, G40, INT64_MAX};
    tg_tape *tp = tg_tape_new();
    for (size_t a = 0; a < sizeof kernels / sizeof kernels[0]; a++)
        for (int s = 0; s < N_HOSTILE; s++) {
            int64_t kernel = kernels[a], stride = HOSTILE[s], S = stride ? stride : kernel;
            bool valid = kernel >= 1 && kernel <= L && S >= 1 && S <= G40;
            tg_tensor *x = tg_tape_tensor(tp, TG_F64, 3, TGT_SHAPE(1, 1, L));
            for (int i = 0; i < L; i++) tg_tensor_set(x, i, i + 1);
            tg_tensor_set_requires_grad(x, true);
            tg_tensor *y = tg_max_pool1d(tp, x, kernel, stride);
            ck_assert_msg((y != NULL) == valid, "kernel %lld stride %lld: %s", (long long)kernel,
                          (long long)stride, y ? "accepted" : tg_tape_error(tp));
            if (y) {
                int64_t Lout = (L - kernel) / S + 1;
                double dx[L] = {0};
                ck_assert_int_eq(tg_tensor_numel(y), Lout);
                for (int64_t t = 0; t < Lout; t++) {
                    ck_assert_near(tg_tensor_get(y, t), (double)(t * S + kernel), 0);
                    dx[t * S + kernel - 1] += 1;
                }
                ck_assert_int_eq(tg_backward(tp, tg_sum(tp, y)), TG_OK);
                ck_assert_grad_near(x, dx, L, 0);
            } else {
                ck_assert_msg(strncmp(tg_tape_error(tp), "max_pool1d", 10) == 0, "%s",
                              tg_tape_error(tp));
            }
            tg_tape_reset(tp);
        }
    tg_tape_free(tp);
}
END_TEST

/* A user op's infer may describe anything: tg_apply checks it. */
static int wild_infer(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                      tg_desc *out) {
    (void)tp;
    (void)n_in;
    (void)in;
    const int *kind = attr;
    out->dtype = TG_F32;
    out->ndim = *kind == 0 ? TG_MAX_DIMS + 1 : 2;
    out->shape[0] = *kind == 1 ? -5 : G31;
    out->shape[1] = G31;
    return 0;
}
static int never_forward(tg_node *n) {
    (void)n;
    ck_abort_msg("forward ran for a refused result");
    return -1;
}
static const tg_op wild_op = {.name = "wild", .n_in = 1, .attr_size = sizeof(int),
                              .infer = wild_infer, .forward = never_forward};

START_TEST(a_user_infer_cannot_describe_an_impossible_result) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tape_tensor(tp, TG_F32, 1, TGT_SHAPE(2));
    static const char *const want[3] = {"wild: result [?] (dtype 0, ndim 7): ndim out of range",
                                        "wild: result [-5,2147483648] (dtype 0, ndim 2): negative",
                                        "wild: result [2147483648,2147483648] (dtype 0, ndim 2): "
                                        "more than 2^40 elements; inputs [2]"};
    for (int kind = 0; kind < 3; kind++) {
        tg_tape_clear_error(tp);
        ck_assert_ptr_null(tg_apply(tp, &wild_op, 1, &x, &kind));
        ck_assert_tape_error(tp, TG_ERR_SHAPE, want[kind]);
    }
    tg_tape_free(tp);
}
END_TEST

Suite *suite_sizes(void) {
    Suite *s = suite_create("sizes");
    TCase *tc = tcase_create("sizes");
    tcase_set_timeout(tc, 20); /* a hang is a failure, not a stuck run */
    tcase_add_test(tc, matmul_of_two_empty_giants_is_refused);
    tcase_add_test(tc, tensors_past_2_40_elements_are_refused_at_once);
    tcase_add_test(tc, tape_alloc_refuses_sizes_that_would_wrap);
    tcase_add_test(tc, ops_on_an_empty_giant_return_at_once);
    tcase_add_test(tc, results_past_the_cap_are_refused_with_op_and_shapes);
    tcase_add_test(tc, conv1d_attributes_near_int64_max_are_refused);
    tcase_add_test(tc, conv1d_hostile_settings_fail_cleanly_or_match_the_definition);
    tcase_add_test(tc, max_pool1d_hostile_settings_fail_cleanly_or_match_the_definition);
    tcase_add_test(tc, a_user_infer_cannot_describe_an_impossible_result);
    suite_add_tcase(s, tc);
    return s;
}
