/* bench/onednn_rnn.h - the oneDNN side of bench/onednn_reference.c: one
 * fused RNN layer (LSTM or lbr_gru, forward_training + backward) and one
 * inner product (Linear), with every buffer the caller reads or writes in a
 * plain layout (tnc, ldnc, ldigo, ldgo, nc, oi). oneDNN 2.6 C API.
 *
 * The backward RNN primitive may want its weights in another layout (ldgoi):
 * they are reordered from the plain master copy before each backward, as any
 * oneDNN training loop must after its optimizer step. */
#ifndef TG_BENCH_ONEDNN_RNN_H
#define TG_BENCH_ONEDNN_RNN_H

#include <oneapi/dnnl/dnnl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DN_CHECK(call)                                                                        \
    do {                                                                                      \
        dnnl_status_t st_ = (call);                                                           \
        if (st_ != dnnl_success) {                                                            \
            fprintf(stderr, "onednn: %s failed (status %d) at %s:%d\n", #call, (int)st_,      \
                    __FILE__, __LINE__);                                                      \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

typedef struct dn_ctx {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
} dn_ctx;

/* A float buffer of ours, seen by oneDNN through a memory object. */
typedef struct dn_buf {
    float *p;
    size_t n;
    dnnl_memory_t mem;
} dn_buf;

static dnnl_memory_desc_t dn_md(int ndims, const dnnl_dim_t *dims, dnnl_format_tag_t tag) {
    dnnl_memory_desc_t md;
    DN_CHECK(dnnl_memory_desc_init_by_tag(&md, ndims, dims, dnnl_f32, tag));
    return md;
}

static dn_buf dn_buf_new(const dn_ctx *c, const dnnl_memory_desc_t *md) {
    dn_buf b = {.n = dnnl_memory_desc_get_size(md) / sizeof(float)};
    b.p = aligned_alloc(64, (b.n * sizeof(float) + 127) / 64 * 64);
    if (!b.p) exit(1);
    memset(b.p, 0, b.n * sizeof(float));
    DN_CHECK(dnnl_memory_create(&b.mem, md, c->engine, b.p));
    return b;
}

static void dn_buf_free(dn_buf *b) {
    if (b->mem) dnnl_memory_destroy(b->mem);
    free(b->p);
    *b = (dn_buf){0};
}

static const dnnl_memory_desc_t *dn_arg_md(const_dnnl_primitive_desc_t pd, int arg) {
    return dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
}

static dnnl_primitive_t dn_prim(const_dnnl_op_desc_t desc, const dn_ctx *c,
                                const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd) {
    dnnl_primitive_t p;
    DN_CHECK(dnnl_primitive_desc_create(pd, desc, NULL, c->engine, hint));
    DN_CHECK(dnnl_primitive_create(&p, *pd));
    return p;
}

typedef struct dn_arg { int arg; const dn_buf *b; } dn_arg;

static void dn_run(const dn_ctx *c, dnnl_primitive_t p, int n, const dn_arg *a) {
    dnnl_exec_arg_t args[24];
    for (int i = 0; i < n; i++) args[i] = (dnnl_exec_arg_t){a[i].arg, a[i].b->mem};
    DN_CHECK(dnnl_primitive_execute(p, c->stream, n, args));
    DN_CHECK(dnnl_stream_wait(c->stream));
}

/* A reorder from a plain buffer into one in the layout md (or none: same). */
typedef struct dn_relayout {
    dnnl_primitive_t prim;    /* NULL: the layouts agree, use the source */
    dn_buf to;
} dn_relayout;

static dn_relayout dn_relayout_new(const dn_ctx *c, const dn_buf *from,
                                   const dnnl_memory_desc_t *want) {
    dn_relayout r = {0};
    const dnnl_memory_desc_t *have;
    DN_CHECK(dnnl_memory_get_memory_desc(from->mem, &have));
    if (dnnl_memory_desc_equal(have, want)) return r;
    dnnl_primitive_desc_t pd;
    DN_CHECK(dnnl_reorder_primitive_desc_create(&pd, have, c->engine, want, c->engine, NULL));
    DN_CHECK(dnnl_primitive_create(&r.prim, pd));
    dnnl_primitive_desc_destroy(pd);
    r.to = dn_buf_new(c, want);
    return r;
}

/* The buffer in the wanted layout, reordered now. */
static const dn_buf *dn_relayout_run(const dn_ctx *c, dn_relayout *r, const dn_buf *from) {
    if (!r->prim) return from;
    dn_run(c, r->prim, 2, (dn_arg[]){{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, &r->to}});
    return &r->to;
}

/* ---- one RNN layer ----------------------------------------------------------------
 * x [T, B, I] -> y [T, B, H]; gates G (LSTM 4: i f g o; lbr_gru 3: u r o),
 * bias blocks G (LSTM) or 4 (lbr_gru: the 4th is the hidden candidate's). */
typedef struct dn_rnn {
    bool gru;
    int64_t T, B, I, H, G, Gb;
    dn_buf x, h0, c0, w_x, w_h, bias, y, hT, cT, ws;              /* forward */
    dn_buf dx, dh0, dc0, dw_x, dw_h, dbias, dy, dhT, dcT;         /* backward */
    dn_relayout bw_x, bw_h;                                       /* weights for backward */
    dnnl_primitive_t fwd, bwd;
} dn_rnn;

static void dn_rnn_descs(dn_rnn *r, dnnl_prop_kind_t prop, dnnl_rnn_desc_t *d, bool backward,
                         const dnnl_memory_desc_t *m) {
    /* m: x, h0, c0, w_x, w_h, bias, y, hT, cT, then (backward) the any-layout
     * weights and the plain diffs in the same order */
    const dnnl_memory_desc_t *w_x = backward ? &m[9] : &m[3], *w_h = backward ? &m[10] : &m[4];
    const dnnl_memory_desc_t *c0 = r->gru ? NULL : &m[2], *cT = r->gru ? NULL : &m[8];
    dnnl_rnn_direction_t dir = dnnl_unidirectional_left2right;
    if (!backward && !r->gru)
        DN_CHECK(dnnl_lstm_forward_desc_init(d, prop, dir, &m[0], &m[1], c0, w_x, w_h, &m[5],
                                             &m[6], &m[7], cT, 0));
    else if (!backward)
        DN_CHECK(dnnl_lbr_gru_forward_desc_init(d, prop, dir, &m[0], &m[1], w_x, w_h, &m[5],
                                                &m[6], &m[7], 0));
    else if (!r->gru)
        DN_CHECK(dnnl_lstm_backward_desc_init(d, prop, dir, &m[0], &m[1], c0, w_x, w_h, &m[5],
                                              &m[6], &m[7], cT, &m[0], &m[1], c0, &m[3],
                                              &m[4], &m[5], &m[6], &m[7], cT, 0));
    else
        DN_CHECK(dnnl_lbr_gru_backward_desc_init(d, prop, dir, &m[0], &m[1], w_x, w_h, &m[5],
                                                 &m[6], &m[7], &m[0], &m[1], &m[3], &m[4],
                                                 &m[5], &m[6], &m[7], 0));
}

static void dn_rnn_open(dn_rnn *r, const dn_ctx *c, bool gru, int64_t T, int64_t B, int64_t I,
                        int64_t H) {
    *r = (dn_rnn){.gru = gru, .T = T, .B = B, .I = I, .H = H, .G = gru ? 3 : 4, .Gb = 4};
    dnnl_memory_desc_t m[11];
    m[0] = dn_md(3, (dnnl_dim_t[]){T, B, I}, dnnl_tnc);
    m[1] = m[2] = m[7] = m[8] = dn_md(4, (dnnl_dim_t[]){1, 1, B, H}, dnnl_ldnc);
    m[3] = dn_md(5, (dnnl_dim_t[]){1, 1, I, r->G, H}, dnnl_ldigo);
    m[4] = dn_md(5, (dnnl_dim_t[]){1, 1, H, r->G, H}, dnnl_ldigo);
    m[5] = dn_md(4, (dnnl_dim_t[]){1, 1, r->Gb, H}, dnnl_ldgo);
    m[6] = dn_md(3, (dnnl_dim_t[]){T, B, H}, dnnl_tnc);
    m[9] = dn_md(5, (dnnl_dim_t[]){1, 1, I, r->G, H}, dnnl_format_tag_any);
    m[10] = dn_md(5, (dnnl_dim_t[]){1, 1, H, r->G, H}, dnnl_format_tag_any);
    dn_buf *fw[] = {&r->x, &r->h0, &r->c0, &r->w_x, &r->w_h, &r->bias, &r->y, &r->hT, &r->cT};
    dn_buf *bw[] = {&r->dx, &r->dh0, &r->dc0, &r->dw_x, &r->dw_h, &r->dbias, &r->dy, &r->dhT,
                    &r->dcT};
    for (int i = 0; i < 9; i++) {   /* zeros: the initial states stay zero (see the top) */
        *fw[i] = dn_buf_new(c, &m[i]);
        *bw[i] = dn_buf_new(c, &m[i]);
    }
    dnnl_rnn_desc_t d;
    dnnl_primitive_desc_t fpd, bpd;
    dn_rnn_descs(r, dnnl_forward_training, &d, false, m);
    r->fwd = dn_prim(&d, c, NULL, &fpd);
    r->ws = dn_buf_new(c, dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0));
    dn_rnn_descs(r, dnnl_backward, &d, true, m);
    r->bwd = dn_prim(&d, c, fpd, &bpd);
    r->bw_x = dn_relayout_new(c, &r->w_x, dn_arg_md(bpd, DNNL_ARG_WEIGHTS_LAYER));
    r->bw_h = dn_relayout_new(c, &r->w_h, dn_arg_md(bpd, DNNL_ARG_WEIGHTS_ITER));
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(bpd);
}

static void dn_rnn_forward(const dn_ctx *c, dn_rnn *r) {
    dn_arg a[] = {{DNNL_ARG_SRC_LAYER, &r->x},  {DNNL_ARG_SRC_ITER, &r->h0},
                  {DNNL_ARG_WEIGHTS_LAYER, &r->w_x}, {DNNL_ARG_WEIGHTS_ITER, &r->w_h},
                  {DNNL_ARG_BIAS, &r->bias}, {DNNL_ARG_DST_LAYER, &r->y},
                  {DNNL_ARG_DST_ITER, &r->hT}, {DNNL_ARG_WORKSPACE, &r->ws},
                  {DNNL_ARG_SRC_ITER_C, &r->c0}, {DNNL_ARG_DST_ITER_C, &r->cT}};
    dn_run(c, r->fwd, r->gru ? 8 : 10, a);
}

/* dy (and dhT, dcT) in; dx and the weight gradients out. oneDNN accumulates
 * into the weight gradients: they are zeroed first. */
static void dn_rnn_backward(const dn_ctx *c, dn_rnn *r) {
    memset(r->dw_x.p, 0, r->dw_x.n * sizeof(float));
    memset(r->dw_h.p, 0, r->dw_h.n * sizeof(float));
    memset(r->dbias.p, 0, r->dbias.n * sizeof(float));
    const dn_buf *w_x = dn_relayout_run(c, &r->bw_x, &r->w_x);
    const dn_buf *w_h = dn_relayout_run(c, &r->bw_h, &r->w_h);
    dn_arg a[] = {{DNNL_ARG_SRC_LAYER, &r->x},        {DNNL_ARG_SRC_ITER, &r->h0},
                  {DNNL_ARG_WEIGHTS_LAYER, w_x},      {DNNL_ARG_WEIGHTS_ITER, w_h},
                  {DNNL_ARG_BIAS, &r->bias},          {DNNL_ARG_DST_LAYER, &r->y},
                  {DNNL_ARG_DST_ITER, &r->hT},        {DNNL_ARG_WORKSPACE, &r->ws},
                  {DNNL_ARG_DIFF_SRC_LAYER, &r->dx},  {DNNL_ARG_DIFF_SRC_ITER, &r->dh0},
                  {DNNL_ARG_DIFF_WEIGHTS_LAYER, &r->dw_x},
                  {DNNL_ARG_DIFF_WEIGHTS_ITER, &r->dw_h},
                  {DNNL_ARG_DIFF_BIAS, &r->dbias},    {DNNL_ARG_DIFF_DST_LAYER, &r->dy},
                  {DNNL_ARG_DIFF_DST_ITER, &r->dhT},  {DNNL_ARG_SRC_ITER_C, &r->c0},
                  {DNNL_ARG_DST_ITER_C, &r->cT},      {DNNL_ARG_DIFF_SRC_ITER_C, &r->dc0},
                  {DNNL_ARG_DIFF_DST_ITER_C, &r->dcT}};
    dn_run(c, r->bwd, r->gru ? 15 : 19, a);
}

static void dn_rnn_close(dn_rnn *r) {
    dn_buf *all[] = {&r->x,  &r->h0,  &r->c0,   &r->w_x,  &r->w_h, &r->bias, &r->y,
                     &r->hT, &r->cT,  &r->ws,   &r->dx,   &r->dh0, &r->dc0,  &r->dw_x,
                     &r->dw_h, &r->dbias, &r->dy, &r->dhT, &r->dcT, &r->bw_x.to, &r->bw_h.to};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dn_buf_free(all[i]);
    if (r->bw_x.prim) dnnl_primitive_destroy(r->bw_x.prim);
    if (r->bw_h.prim) dnnl_primitive_destroy(r->bw_h.prim);
    dnnl_primitive_destroy(r->fwd);
    dnnl_primitive_destroy(r->bwd);
}

/* ---- Linear: y [N, O] = x [N, K] W^T + b, W [O, K] ------------------------------------ */
typedef struct dn_linear {
    int64_t N, K, O;
    dn_buf x, w, b, y, dx, dw, db, dy;   /* x is the caller's (a view of another buffer) */
    dnnl_primitive_t fwd, bwd_data, bwd_w;
} dn_linear;

/* x: a buffer holding [N, K] (its memory is reused, not copied). */
static void dn_linear_open(dn_linear *l, const dn_ctx *c, const dn_buf *x, int64_t N,
                           int64_t K, int64_t O) {
    *l = (dn_linear){.N = N, .K = K, .O = O};
    dnnl_memory_desc_t mx = dn_md(2, (dnnl_dim_t[]){N, K}, dnnl_nc);
    dnnl_memory_desc_t mw = dn_md(2, (dnnl_dim_t[]){O, K}, dnnl_oi);
    dnnl_memory_desc_t mb = dn_md(1, (dnnl_dim_t[]){O}, dnnl_x);
    dnnl_memory_desc_t my = dn_md(2, (dnnl_dim_t[]){N, O}, dnnl_nc);
    l->x = (dn_buf){.p = x->p, .n = (size_t)(N * K)};
    DN_CHECK(dnnl_memory_create(&l->x.mem, &mx, c->engine, x->p));
    l->w = dn_buf_new(c, &mw), l->b = dn_buf_new(c, &mb), l->y = dn_buf_new(c, &my);
    l->dx = dn_buf_new(c, &mx), l->dw = dn_buf_new(c, &mw), l->db = dn_buf_new(c, &mb);
    l->dy = dn_buf_new(c, &my);
    dnnl_inner_product_desc_t d;
    dnnl_primitive_desc_t fpd, pd;
    DN_CHECK(dnnl_inner_product_forward_desc_init(&d, dnnl_forward_training, &mx, &mw, &mb, &my));
    l->fwd = dn_prim(&d, c, NULL, &fpd);
    DN_CHECK(dnnl_inner_product_backward_data_desc_init(&d, &mx, &mw, &my));
    l->bwd_data = dn_prim(&d, c, fpd, &pd);
    dnnl_primitive_desc_destroy(pd);
    DN_CHECK(dnnl_inner_product_backward_weights_desc_init(&d, &mx, &mw, &mb, &my));
    l->bwd_w = dn_prim(&d, c, fpd, &pd);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_desc_destroy(fpd);
}

static void dn_linear_forward(const dn_ctx *c, dn_linear *l) {
    dn_run(c, l->fwd, 4, (dn_arg[]){{DNNL_ARG_SRC, &l->x}, {DNNL_ARG_WEIGHTS, &l->w},
                                    {DNNL_ARG_BIAS, &l->b}, {DNNL_ARG_DST, &l->y}});
}

static void dn_linear_backward(const dn_ctx *c, dn_linear *l) {
    dn_run(c, l->bwd_data, 3, (dn_arg[]){{DNNL_ARG_DIFF_DST, &l->dy}, {DNNL_ARG_WEIGHTS, &l->w},
                                         {DNNL_ARG_DIFF_SRC, &l->dx}});
    dn_run(c, l->bwd_w, 4, (dn_arg[]){{DNNL_ARG_SRC, &l->x}, {DNNL_ARG_DIFF_DST, &l->dy},
                                      {DNNL_ARG_DIFF_WEIGHTS, &l->dw},
                                      {DNNL_ARG_DIFF_BIAS, &l->db}});
}

static void dn_linear_close(dn_linear *l) {
    dnnl_memory_destroy(l->x.mem);
    dn_buf *all[] = {&l->w, &l->b, &l->y, &l->dx, &l->dw, &l->db, &l->dy};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dn_buf_free(all[i]);
    dnnl_primitive_destroy(l->fwd);
    dnnl_primitive_destroy(l->bwd_data);
    dnnl_primitive_destroy(l->bwd_w);
}

#endif
