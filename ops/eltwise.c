/* ops/eltwise.c - elementwise ops run alone: broadcasting and blocks.
 *
 * An elementwise op (tg_op.eltwise) gives block kernels; this file runs them
 * over a whole output as tg_eltwise_forward / tg_eltwise_vjp. The fusion
 * engine (autograd/fuse_exec.c) runs the same kernels on the same kind of
 * blocks, so an op gives the same bits alone and fused.
 *
 * The walk: the output's dims are collapsed (size-1 dims dropped, neighbours
 * merged where every input broadcasts alike), so equal shapes are one flat
 * loop, [B,H] + [H] is B rows re-reading the bias, and anything else an
 * odometer over the outer dims with rows inside. Each row is cut into blocks
 * of at most TG_BLOCK elements; an input broadcast along the row is spread
 * into a register, and a row's last, short block is padded in registers to a
 * multiple of TG_VEC. The VJP of input k writes its gradient where it is as
 * large as the output (and fresh), accumulates where it is broadcast along
 * outer dims, and sums each block into it where it is broadcast along the row. */
#include "kernels.h"

#include <string.h>

/* ---- broadcasting --------------------------------------------------------------------------- */
bool tg__bcast_shape(int n_in, tg_tensor *const *in, int *nd, int64_t *shape) {
    int n = 0;
    for (int k = 0; k < n_in; k++) n = in[k]->ndim > n ? in[k]->ndim : n;
    for (int i = 0; i < n; i++) {
        shape[i] = 1;
        for (int k = 0; k < n_in; k++) {
            int ik = i - (n - in[k]->ndim);
            int64_t d = ik >= 0 ? in[k]->shape[ik] : 1;
            if (d != 1 && shape[i] != 1 && d != shape[i]) return false;
            if (d != 1) shape[i] = d;
        }
    }
    *nd = n;
    return true;
}

int tg_infer_broadcast(tg_tape *tp, int n_in, tg_tensor *const *in, const void *attr,
                       tg_desc *out) {
    (void)attr;
    const char *op = tp->current_op;
    for (int k = 1; k < n_in; k++)
        if (tg_check_float_pair(tp, op, in[0], in[k])) return -1;
    if (n_in == 1 && tg_check_float(tp, op, in[0])) return -1;
    if (!tg__bcast_shape(n_in, in, &out->ndim, out->shape)) {
        char sa[160], sb[160];
        int k = 1;
        while (k + 1 < n_in && tg__bcast_shape(k + 1, in, &out->ndim, out->shape)) k++;
        return tg_fail(tp, TG_ERR_SHAPE, op, "shapes do not broadcast: %s x %s (input %d)",
                       tg_shape_str(in[0], sa, sizeof sa), tg_shape_str(in[k], sb, sizeof sb), k);
    }
    out->dtype = in[0]->dtype;
    return 0;
}

/* ---- the plan --------------------------------------------------------------------------- */
typedef struct ew_plan {
    int nd, n_in;                                /* collapsed dims (>= 1), innermost last */
    int64_t shape[TG_MAX_DIMS];
    int64_t st[TG_EW_MAX_IN][TG_MAX_DIMS];       /* element strides; 0 = broadcast        */
    int64_t numel;
} ew_plan;

/* t's element strides on the n output dims: 0 where t is missing or size 1. */
static void bcast_strides(const tg_tensor *t, int n, const int64_t *out_shape, int64_t *st) {
    int64_t s = 1;
    for (int i = n - 1; i >= 0; i--) {
        int it = i - (n - t->ndim);
        int64_t d = it >= 0 ? t->shape[it] : 1;
        st[i] = d == out_shape[i] ? s : 0;
        s *= d;
    }
}

static bool alike(const ew_plan *p, int k, int64_t (*st)[TG_MAX_DIMS], int i) {
    for (int j = 0; j < p->n_in; j++)
        if ((p->st[j][k] == 0) != (st[j][i] == 0)) return false;
    return true;
}

/* Merging dims i and i+1 is safe when each input is either present in both
 * (then it is contiguous across them) or broadcast in both (stride 0). */
static void plan_of(int n_in, tg_tensor *const *in, const tg_tensor *y, ew_plan *p) {
    int64_t st[TG_EW_MAX_IN][TG_MAX_DIMS];
    for (int j = 0; j < n_in; j++) bcast_strides(in[j], y->ndim, y->shape, st[j]);
    p->nd = 0;
    p->n_in = n_in;
    p->numel = y->numel;
    for (int i = 0; i < y->ndim; i++) {
        if (y->shape[i] == 1) continue;
        int k = p->nd - 1;
        if (k >= 0 && alike(p, k, st, i)) {
            p->shape[k] *= y->shape[i];
        } else {
            k = p->nd++;
            p->shape[k] = y->shape[i];
        }
        for (int j = 0; j < n_in; j++) p->st[j][k] = st[j][i];
    }
    if (p->nd == 0) { /* one element: 0-dim or all dims 1 */
        p->nd = 1;
        p->shape[0] = 1;
        for (int j = 0; j < n_in; j++) p->st[j][0] = 1;
    }
}

/* Rows of the plan: an odometer over the outer dims keeps each input's offset. */
typedef struct ew_rows {
    int64_t idx[TG_MAX_DIMS];
    int64_t off[TG_EW_MAX_IN];   /* element offset of the row in each input */
    int64_t y;                   /* and in the output                       */
} ew_rows;

/* The first row (written out: "= {0}" is a slow `rep stos`). */
static void rows_start(const ew_plan *p, ew_rows *w) {
    for (int d = 0; d < p->nd; d++) w->idx[d] = 0;
    for (int j = 0; j < p->n_in; j++) w->off[j] = 0;
    w->y = 0;
}

static void rows_next(const ew_plan *p, ew_rows *w, int64_t inner) {
    w->y += inner;
    for (int d = p->nd - 2; d >= 0; d--) {
        for (int j = 0; j < p->n_in; j++) w->off[j] += p->st[j][d];
        if (++w->idx[d] < p->shape[d]) return;
        for (int j = 0; j < p->n_in; j++) w->off[j] -= p->st[j][d] * p->shape[d];
        w->idx[d] = 0;
    }
}

/* ---- blocks ----------------------------------------------------------------------------- */
typedef struct ew_regs {
    _Alignas(TG_ALIGN) unsigned char in[TG_EW_MAX_IN][TG_BLOCK * sizeof(double)];
    _Alignas(TG_ALIGN) unsigned char y[TG_BLOCK * sizeof(double)];
    _Alignas(TG_ALIGN) unsigned char dy[TG_BLOCK * sizeof(double)];
    _Alignas(TG_ALIGN) unsigned char out[TG_BLOCK * sizeof(double)];
} ew_regs;

/* What a kernel reads in place of an input it does not need. */
static const double zeros[TG_BLOCK];

/* nb elements at p (inner stride st: 1, or 0 = one element for the whole row)
 * as a block of npad: the memory itself when no padding is needed, else reg. */
static const void *fetch(tg_dtype dt, const void *p, int64_t st, int64_t nb, int64_t npad,
                         void *reg) {
    if (st == 0) {
        tg__ew_fill(dt, reg, dt == TG_F64 ? *(const double *)p : *(const float *)p, npad);
        return reg;
    }
    if (nb == npad) return p;
    tg__ew_copy(dt, reg, p, nb);
    memset(tg__at(dt, reg, nb), 0, (size_t)(npad - nb) * tg__fsize(dt));
    return reg;
}

/* The inputs of one block (the ones the kernel reads; zeros for the others). */
static void fetch_inputs(const tg_node *n, const ew_plan *p, const ew_rows *w, int64_t cb,
                         int64_t nb, int64_t npad, bool needed, ew_regs *r, const void **xs) {
    tg_dtype dt = n->out->dtype;
    int last = p->nd - 1;
    for (int j = 0; j < n->n_in; j++) {
        int64_t st = p->st[j][last];
        xs[j] = needed ? fetch(dt, tg__at(dt, n->in[j]->data, w->off[j] + cb * st), st, nb, npad,
                               r->in[j])
                       : zeros;
    }
}

/* Every input as large as the output: all share its flat layout. */
static bool all_full(const tg_node *n) {
    for (int j = 0; j < n->n_in; j++)
        if (n->in[j]->numel != n->out->numel) return false;
    return true;
}

static TG_NOINLINE void forward_block(const tg_node *n, const ew_plan *p, const ew_rows *w,
                                      int64_t cb, int64_t nb) {
    tg_dtype dt = n->out->dtype;
    ew_regs r;
    const void *xs[TG_EW_MAX_IN];
    int64_t npad = tg_vec_round(nb);
    fetch_inputs(n, p, w, cb, nb, npad, true, &r, xs);
    void *dst = tg__at(dt, n->out->data, w->y + cb);
    n->op->eltwise->fwd[dt == TG_F64](npad, xs, nb == npad ? dst : r.out, n->attr);
    if (nb != npad) tg__ew_copy(dt, dst, r.out, nb);
}

/* dx[0] += sum of nb contributions (an input broadcast along the row). */
static void add_sum(tg_dtype dt, void *dx, const void *c, int64_t nb) {
    double s = tg__ew_sum(dt, c, nb);
    if (dt == TG_F64)
        *(double *)dx += s;
    else
        *(float *)dx += (float)s;
}

/* One block of input k's gradient at dst: its inputs gathered (padded) into
 * registers, the contribution written (=) or added into dst, or summed into
 * dst[0] where input k is broadcast along the row. */
static TG_NOINLINE void vjp_block(const tg_node *n, int k, const ew_plan *p, const ew_rows *w,
                                  int64_t cb, int64_t nb, void *dst, bool acc) {
    tg_dtype dt = n->out->dtype;
    const tg_eltwise *ew = n->op->eltwise;
    int64_t npad = tg_vec_round(nb), sk = p->st[k][p->nd - 1];
    ew_regs r;
    const void *xs[TG_EW_MAX_IN];
    fetch_inputs(n, p, w, cb, nb, npad, ew->needs & TG_NEEDS_X, &r, xs);
    const void *yb = (ew->needs & TG_NEEDS_Y)
                         ? fetch(dt, tg__at(dt, n->out->data, w->y + cb), 1, nb, npad, r.y)
                         : zeros;
    const void *dyb = fetch(dt, tg__at(dt, n->out->grad, w->y + cb), 1, nb, npad, r.dy);
    bool direct = sk == 1 && nb == npad;
    ew->vjp[dt == TG_F64](k, npad, xs, yb, dyb, direct ? dst : r.out, direct && acc, n->attr);
    if (direct) return;
    if (sk == 0)
        add_sum(dt, dst, r.out, nb);
    else if (acc)
        tg__ew_add(dt, dst, r.out, nb);
    else
        tg__ew_copy(dt, dst, r.out, nb);
}

/* Equal shapes: one flat walk, whole blocks straight from memory, shared by
 * the threads, the padded tail through registers. The forward when dx is
 * NULL, else input k's VJP into dx. */
static void flat_walk(const tg_node *n, int k, ew_plan *p, void *dx, bool acc) {
    tg_dtype dt = n->out->dtype;
    const tg_eltwise *ew = n->op->eltwise;
    unsigned needs = dx ? ew->needs : TG_NEEDS_X;
    int64_t whole = tg_vec_body(n->out->numel);
    int f64 = dt == TG_F64, nt = tg_threads_for(n->tape, whole);
    (void)nt;
    TG_OMP_FOR_NT
    for (int64_t cb = 0; cb < whole; cb += TG_BLOCK) {
        int64_t nb = whole - cb < TG_BLOCK ? whole - cb : TG_BLOCK;
        const void *xs[TG_EW_MAX_IN];
        for (int j = 0; j < n->n_in; j++)
            xs[j] = (needs & TG_NEEDS_X) ? tg__at(dt, n->in[j]->data, cb) : zeros;
        const void *yb = (needs & TG_NEEDS_Y) ? tg__at(dt, n->out->data, cb) : zeros;
        if (dx)
            ew->vjp[f64](k, nb, xs, yb, tg__at(dt, n->out->grad, cb), tg__at(dt, dx, cb), acc,
                         n->attr);
        else
            ew->fwd[f64](nb, xs, tg__at(dt, n->out->data, cb), n->attr);
    }
    if (whole == n->out->numel) return;
    p->nd = 1;   /* the tail, padded */
    p->shape[0] = n->out->numel;
    for (int j = 0; j < n->n_in; j++) p->st[j][0] = 1;
    ew_rows w;
    rows_start(p, &w);
    int64_t tail = n->out->numel - whole;
    if (dx)
        vjp_block(n, k, p, &w, whole, tail, tg__at(dt, dx, whole), acc);
    else
        forward_block(n, p, &w, whole, tail);
}

/* One input as large as the output and one whole block: the kernel alone
 * (tiny chains run op by op are all tape overhead). */
static bool one_block(const tg_node *n) {
    int64_t numel = n->out->numel;
    return n->n_in == 1 && n->in[0]->numel == numel && numel > 0 && numel <= TG_BLOCK &&
           (numel & (TG_VEC - 1)) == 0;
}

int tg_eltwise_forward(tg_node *n) {
    tg_tensor *y = n->out;
    if (one_block(n)) {
        const void *x = n->in[0]->data;
        n->op->eltwise->fwd[y->dtype == TG_F64](y->numel, &x, y->data, n->attr);
        return 0;
    }
    if (y->numel == 0) return 0;
    ew_plan p;
    if (all_full(n)) {
        p.n_in = n->n_in;
        flat_walk(n, 0, &p, NULL, false);
        return 0;
    }
    plan_of(n->n_in, n->in, y, &p);
    int64_t inner = p.shape[p.nd - 1], rows = p.numel / inner;
    ew_rows w;
    rows_start(&p, &w);
    for (int64_t row = 0; row < rows; row++, rows_next(&p, &w, inner))
        for (int64_t cb = 0; cb < inner; cb += TG_BLOCK)
            forward_block(n, &p, &w, cb, inner - cb < TG_BLOCK ? inner - cb : TG_BLOCK);
    return 0;
}

/* The gradient of input k: written where it is fresh and as large as the
 * output, else accumulated (zeroed first when fresh). */
static void input_vjp(tg_node *n, int k, bool flat, ew_plan *p) {
    tg_tensor *y = n->out;
    tg_dtype dt = y->dtype;
    bool fresh;
    void *dx = tg_input_grad_fresh(n, k, &fresh);
    if (!dx) return;
    bool full = n->in[k]->numel == y->numel, acc = !(fresh && full);
    if (fresh && !full) memset(dx, 0, (size_t)n->in[k]->numel * tg__fsize(dt));
    if (y->numel == 0) return;
    if (flat) {
        flat_walk(n, k, p, dx, acc);
        return;
    }
    int64_t inner = p->shape[p->nd - 1], rows = p->numel / inner, sk = p->st[k][p->nd - 1];
    ew_rows w;
    rows_start(p, &w);
    for (int64_t row = 0; row < rows; row++, rows_next(p, &w, inner))
        for (int64_t cb = 0; cb < inner; cb += TG_BLOCK)
            vjp_block(n, k, p, &w, cb, inner - cb < TG_BLOCK ? inner - cb : TG_BLOCK,
                      tg__at(dt, dx, w.off[k] + cb * sk), acc);
}

/* Inputs in order, each gradient complete before the next is asked for: two
 * inputs may be one tensor. */
int tg_eltwise_vjp(tg_node *n) {
    tg_output_grad(n);   /* n->out->grad complete from here on */
    if (one_block(n)) {
        bool fresh;
        void *dx = tg_input_grad_fresh(n, 0, &fresh);
        const tg_eltwise *ew = n->op->eltwise;
        const void *x = (ew->needs & TG_NEEDS_X) ? n->in[0]->data : zeros;
        const void *y = (ew->needs & TG_NEEDS_Y) ? n->out->data : zeros;
        if (dx)
            ew->vjp[n->out->dtype == TG_F64](0, n->out->numel, &x, y, n->out->grad, dx, !fresh,
                                             n->attr);
        return 0;
    }
    ew_plan p;   /* not zeroed: a rep stos is a tenth of a tiny op's time */
    p.n_in = n->n_in;
    bool flat = all_full(n);
    if (!flat && n->out->numel > 0) plan_of(n->n_in, n->in, n->out, &p);
    for (int k = 0; k < n->n_in; k++) input_vjp(n, k, flat, &p);
    return 0;
}
