/* autograd/fuse_exec.c - running a group's program, block by block.
 *
 * A space [rows, cols] is cut into blocks: each row into runs of at most
 * TG_BLOCK columns, or, when every operand window has the space's row
 * stride, the whole space as one flat run (equal shapes). For each block
 * the program's instructions run in order on registers of TG_BLOCK
 * elements (L1-resident); a block at the end of a row is padded to a
 * multiple of TG_VEC so the kernels see the same lengths as when an op runs
 * alone (ops/eltwise.c). An operand read whole and unpadded is read in
 * place, not copied; so is a seed gradient that nothing adds to.
 *
 * Threads. A space with enough work (element-instructions: tg__split,
 * autograd/internal.h says how much and why)
 * is split into row ranges (flat: block ranges) across the tape's threads,
 * each with its own registers. Rows write their own elements, except
 * scatters into an operand broadcast along the rows (a bias gradient): each
 * thread sums its rows into partial sums, added in thread order after. A
 * space that would have two threads touch one element otherwise (two
 * windows of one tensor at different rows) runs on one thread. */
#include "fuse_prog.h"
#include "tools.h"

#include "../ops/kernels.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { FZ_MAX_THREADS = 16 };

static const double zeros[TG_BLOCK];

enum { REG_BYTES = TG_BLOCK * sizeof(double) };

typedef struct fz_run {
    tg_tape *tp;
    const fz_group *g;
    const fz_prog *p;
    tg_dtype dt;
    size_t es;
    unsigned char *regs;                      /* n_regs buffers of REG_BYTES */
    const void **rp;                          /* where each register's block is now */
    bool assign[FZ_MAX_OPERANDS];             /* scatters write (=) this gradient */
    void *partial;                            /* this thread's partial sums, or NULL */
} fz_run;

static void *reg(const fz_run *r, int i) { return r->regs + (size_t)i * REG_BYTES; }

static const void *rd(const fz_run *r, int i) { return i >= 0 ? r->rp[i] : zeros; }

/* Each thread's area: registers, their pointers, partial sums. */
static size_t thread_bytes(const fz_prog *p) {
    size_t b = (size_t)p->n_regs * (REG_BYTES + sizeof(void *)) + (size_t)p->partials * 8;
    return (b + TG_ALIGN - 1) & ~(size_t)(TG_ALIGN - 1);
}

/* Areas for nt threads running p: one heap block per tape, grown when a
 * program needs more. */
static int registers(tg_tape *tp, const fz_prog *p, int nt) {
    tg_fuse *f = tp->fuse;
    size_t need = (size_t)nt * thread_bytes(p) + TG_ALIGN;
    if (need > f->regs_bytes) {
        free(f->regs);
        f->regs = tg__malloc(need);
        f->regs_bytes = f->regs ? need : 0;
        if (!f->regs) return tg_fail(tp, TG_ERR_NOMEM, "fusion", "out of memory (registers)");
        tp->heap_allocs++;
    }
    return 0;
}

/* Thread tid's view of the run: its registers and partial sums. */
static void thread_run(const fz_run *r, int tid, fz_run *mine) {
    *mine = *r;
    uintptr_t base = ((uintptr_t)r->tp->fuse->regs + TG_ALIGN - 1) & ~(uintptr_t)(TG_ALIGN - 1);
    unsigned char *area = (unsigned char *)base + (size_t)tid * thread_bytes(r->p);
    mine->regs = area;
    mine->rp = (const void **)(area + (size_t)r->p->n_regs * REG_BYTES);
    mine->partial = r->p->partials ? (void *)(mine->rp + r->p->n_regs) : NULL;
}

/* nb elements at src (column stride ac: 1, or 0 = one element repeated) as a
 * block of npad: the memory itself when it needs no padding, else reg i. */
static const void *fetch(const fz_run *r, int i, const void *src, int ac, int64_t nb,
                         int64_t npad) {
    void *dst = reg(r, i);
    if (!ac) {
        tg__ew_fill(r->dt, dst, r->dt == TG_F64 ? *(const double *)src : *(const float *)src,
                    npad);
        return dst;
    }
    if (nb == npad) return src;
    tg__ew_copy(r->dt, dst, src, nb);
    memset((char *)dst + (size_t)nb * r->es, 0, (size_t)(npad - nb) * r->es);
    return dst;
}

/* Element (row, col) of operand o through map m, in its data or gradient. */
static char *operand_at(const fz_run *r, const fz_operand *o, const void *base, fz_map m,
                        int64_t row, int64_t col) {
    int64_t i = o->off + (m.row0 + m.ar * row) * o->ld + m.col0 + m.ac * col;
    return (char *)base + (size_t)i * r->es;
}

static void scatter(const fz_run *r, const fz_inst *in, int64_t row, int64_t cb, int64_t nb) {
    const fz_operand *o = &r->g->o[in->ref];
    char *dst = operand_at(r, o, o->t->grad, in->map, row, cb);
    if (r->partial && !in->map.ar) /* threads: this thread's sums */
        dst = tg__at(r->dt, r->partial, in->slot + (in->map.ac ? cb : 0));
    const void *src = r->rp[in->dst];
    if (!in->map.ac) {   /* broadcast along the row: one element gets the block's sum */
        double s = tg__ew_sum(r->dt, src, nb);
        if (r->dt == TG_F64)
            *(double *)dst += s;
        else
            *(float *)dst += (float)s;
    } else if (r->assign[in->ref]) {
        tg__ew_copy(r->dt, dst, src, nb);
    } else {
        tg__ew_add(r->dt, dst, src, nb);
    }
}

/* The seed gradient of a value into register dst: read in place when
 * nothing is added to it, else copied (or added). */
static void load_grad(const fz_run *r, const fz_inst *in, int64_t row, int64_t cb, int64_t nb,
                      int64_t npad) {
    const fz_value *v = &r->g->v[in->ref];
    const char *src = (const char *)v->t->grad + (size_t)(row * v->cols + cb) * r->es;
    if (in->acc) {
        tg__ew_add(r->dt, reg(r, in->dst), src, nb);
        r->rp[in->dst] = reg(r, in->dst);
    } else if (in->copy) {
        void *d = reg(r, in->dst);
        tg__ew_copy(r->dt, d, src, nb);
        memset((char *)d + (size_t)nb * r->es, 0, (size_t)(npad - nb) * r->es);
        r->rp[in->dst] = d;
    } else {
        r->rp[in->dst] = fetch(r, in->dst, src, 1, nb, npad);
    }
}

/* Where the instruction after in will put in's result, when in can write
 * it there itself (a whole block stored, or scattered into a gradient that
 * is written): saves a copy. NULL when not. */
static void *direct_target(const fz_run *r, const fz_inst *in, const fz_inst *next, int64_t row,
                           int64_t cb, int64_t nb, int64_t npad) {
    if (!next || next->dst != in->dst || nb != npad || in->acc) return NULL;
    if (next->kind == FZ_STORE) {
        const fz_value *v = &r->g->v[next->ref];
        return tg__at(r->dt, v->t->data, row * v->cols + cb);
    }
    if (next->kind == FZ_SCATTER && next->map.ar && next->map.ac && r->assign[next->ref]) {
        const fz_operand *o = &r->g->o[next->ref];
        return operand_at(r, o, o->t->grad, next->map, row, cb);
    }
    return NULL;
}

static void run_op(const fz_run *r, const fz_inst *in, void *direct, int64_t npad) {
    const fz_value *v = &r->g->v[in->ref];
    const tg_eltwise *ew = v->op->eltwise;
    const void *xs[TG_ELTWISE_MAX_IN];
    for (int k = 0; k < v->n_in; k++) xs[k] = rd(r, in->src[k]);
    void *d = direct ? direct : reg(r, in->dst);
    int f64 = r->dt == TG_F64;
    if (in->kind == FZ_OP)
        ew->fwd[f64](npad, xs, d, v->attr);
    else
        ew->vjp[f64](in->k, npad, xs, rd(r, in->y), r->rp[in->dy], d, in->acc, v->attr);
    r->rp[in->dst] = d;
}

static void run_block(const fz_run *r, const fz_space *s, int64_t row, int64_t cb, int64_t nb) {
    int64_t npad = tg_vec_round(nb);
    int end = s->first + s->count;
    for (int i = s->first; i < end; i++) {
        const fz_inst *in = &r->p->inst[i], *next = i + 1 < end ? in + 1 : NULL;
        switch (in->kind) {
        case FZ_LOAD: {
            const fz_operand *o = &r->g->o[in->ref];
            r->rp[in->dst] = fetch(r, in->dst, operand_at(r, o, o->t->data, in->map, row, cb),
                                   in->map.ac, nb, npad);
            break;
        }
        case FZ_OP:
        case FZ_VJP: run_op(r, in, direct_target(r, in, next, row, cb, nb, npad), npad); break;
        case FZ_STORE: {
            const fz_value *v = &r->g->v[in->ref];
            tg__ew_copy(r->dt, tg__at(r->dt, v->t->data, row * v->cols + cb), r->rp[in->dst], nb);
            break;
        }
        case FZ_LOADG: load_grad(r, in, row, cb, nb, npad); break;
        case FZ_SCATTER: scatter(r, in, row, cb, nb); break;
        }
    }
}

/* One flat run when every operand window is as wide as its stride and the
 * space (or read as one element): then consecutive rows are consecutive. */
static bool flat(const fz_run *r, const fz_space *s) {
    for (int i = s->first; i < s->first + s->count; i++) {
        const fz_inst *in = &r->p->inst[i];
        if (in->kind != FZ_LOAD && in->kind != FZ_SCATTER) continue;
        const fz_operand *o = &r->g->o[in->ref];
        bool whole = in->map.ar && in->map.ac && o->ld == s->cols;
        bool scalar = !in->map.ar && !in->map.ac;
        if (!whole && !scalar) return false;
    }
    return true;
}

/* Blocks [b0, b1) of a space: rows of blocks, or runs of the flat space. */
static void run_blocks(const fz_run *r, const fz_space *s, bool is_flat, int64_t b0, int64_t b1) {
    int64_t per_row = (s->cols + TG_BLOCK - 1) / TG_BLOCK, n = s->rows * s->cols;
    for (int64_t b = b0; b < b1; b++) {
        int64_t row = is_flat ? 0 : b / per_row;
        int64_t cb = is_flat ? b * TG_BLOCK : (b % per_row) * TG_BLOCK;
        int64_t end = is_flat ? n : s->cols;
        run_block(r, s, row, cb, end - cb < TG_BLOCK ? end - cb : TG_BLOCK);
    }
}

/* Threads for a space: one unless there is enough work and no element can
 * be written by two threads (windows of one tensor scattered at different
 * rows: rows of different threads could meet). */
static int threads_for(const fz_run *r, const fz_space *s, int64_t blocks) {
    int nt = tg_tape_threads(r->tp);
    if (nt > FZ_MAX_THREADS) nt = FZ_MAX_THREADS;
    if (nt < 2 || blocks < 2 || !tg__split(r->tp, s->rows * s->cols * s->count)) return 1;
    const fz_inst *in = r->p->inst;
    for (int i = s->first; i < s->first + s->count; i++)
        for (int j = s->first; j < i; j++) {
            bool rows_i = in[i].kind == FZ_SCATTER && in[i].map.ar;
            bool rows_j = in[j].kind == FZ_SCATTER && in[j].map.ar;
            if (rows_i && rows_j && r->g->o[in[i].ref].t == r->g->o[in[j].ref].t &&
                (in[i].ref != in[j].ref || in[i].map.row0 != in[j].map.row0))
                return 1;
        }
    return nt < blocks ? nt : (int)blocks;
}

/* The threads' partial sums, added into the operands in thread order. */
static void add_partials(const fz_run *r, const fz_space *s, const fz_run *th, int nt) {
    for (int i = s->first; i < s->first + s->count; i++) {
        const fz_inst *in = &r->p->inst[i];
        if (in->kind != FZ_SCATTER || in->map.ar) continue;
        const fz_operand *o = &r->g->o[in->ref];
        char *dst = operand_at(r, o, o->t->grad, in->map, 0, 0);
        int64_t n = in->map.ac ? s->cols : 1;
        for (int t = 0; t < nt; t++)
            tg__ew_add(r->dt, dst, tg__at(r->dt, th[t].partial, in->slot), n);
    }
}

static void run_space(const fz_run *r, const fz_space *s) {
    if (s->rows == 0 || s->cols == 0) return;
    bool is_flat = flat(r, s);
    int64_t blocks = is_flat ? (s->rows * s->cols + TG_BLOCK - 1) / TG_BLOCK
                             : s->rows * ((s->cols + TG_BLOCK - 1) / TG_BLOCK);
    int nt = threads_for(r, s, blocks);
    if (nt == 1) {
        run_blocks(r, s, is_flat, 0, blocks);
        return;
    }
    fz_run th[FZ_MAX_THREADS];
    for (int t = 0; t < nt; t++) {
        thread_run(r, t, &th[t]);
        if (th[t].partial) memset(th[t].partial, 0, (size_t)r->p->partials * r->es);
    }
    int64_t per_row = is_flat ? 1 : (s->cols + TG_BLOCK - 1) / TG_BLOCK;
    double own[FZ_MAX_THREADS], t0 = tg__seconds();
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static, 1)
#endif
    for (int t = 0; t < nt; t++) {   /* whole rows to each thread, in order */
        double start = tg__seconds();
        int64_t units = blocks / per_row;
        int64_t u0 = units * t / nt, u1 = units * (t + 1) / nt;
        run_blocks(&th[t], s, is_flat, u0 * per_row, u1 * per_row);
        own[t] = tg__seconds() - start;
    }
    double slowest = 0;
    for (int t = 0; t < nt; t++) slowest = own[t] > slowest ? own[t] : slowest;
    tg__split_timed(r->tp, tg__seconds() - t0, slowest);
    add_partials(r, s, th, nt);
}

static int start(tg_tape *tp, const fz_group *g, const fz_prog *p, fz_run *r) {
    r->tp = tp; /* field by field: "= {...}" zeroes assign[] with a slow `rep stos` */
    r->g = g;
    r->p = p;
    r->dt = g->dt;
    r->es = tg_dtype_size(g->dt);
    r->partial = NULL;
    for (int i = 0; i < g->n_operands; i++) r->assign[i] = false;
    int nt = tg_tape_threads(tp);
    if (registers(tp, p, nt < FZ_MAX_THREADS ? nt : FZ_MAX_THREADS) != 0) return -1;
    fz_run one;
    thread_run(r, 0, &one);
    r->regs = one.regs;
    r->rp = one.rp;
    return 0;
}

int tg__fz_run_forward(tg_tape *tp, fz_group *g, const fz_prog *p) {
    fz_run r;
    if (start(tp, g, p, &r) != 0) return -1;
    for (int i = 0; i < p->n_inst; i++) {   /* buffers for the values stored */
        const fz_inst *in = &p->inst[i];
        tg_tensor *t = g->v[in->ref].t;
        if (in->kind != FZ_STORE || t->data) continue;
        t->data = tg__arena_data(tp, (size_t)t->numel * r.es, false, TG_ARENA_ACTIVATION);
        if (!t->data) return tg_fail(tp, TG_ERR_NOMEM, "fusion", "out of memory");
    }
    for (int s = 0; s < p->n_spaces; s++) run_space(&r, &p->space[s]);
    return 0;
}

/* The name of the first op of g that reads t, for messages ("scale: leaf [4] ..."). */
static const char *reader_name(const fz_group *g, const tg_tensor *t) {
    for (int v = 0; v < g->n_values; v++)
        for (int j = 0; g->v[v].in && j < g->v[v].n_in; j++)
            if (g->v[v].in[j] == t) return g->v[v].op->name;
    return "fusion";
}

/* Gradient buffers of the operands the program scatters into: rows that the
 * scatters tile and nobody wrote yet are written, a fresh buffer otherwise
 * zeroed and added to. */
static int operand_grads(fz_run *r, uint32_t wants) {
    const fz_group *g = r->g;
    for (int i = 0; i < g->n_operands; i++) {
        if (!(wants >> i & 1) || !(r->p->scattered >> i & 1)) continue;
        const fz_operand *o = &g->o[i];
        bool fresh;
        if (r->p->write_ok >> i & 1) {
            if (!tg__grad_rows(r->tp, o->t, o->off / o->cols, o->rows, reader_name(g, o->t),
                               &r->assign[i]))
                return -1;
            continue;
        }
        void *grad = tg__grad_buffer(r->tp, o->t, reader_name(g, o->t), &fresh);
        if (!grad) return -1;
        if (fresh) memset(grad, 0, (size_t)o->t->numel * r->es);
    }
    return 0;
}

static int run_backward(tg_tape *tp, fz_group *g, const fz_prog *p, uint32_t wants) {
    fz_run r;
    if (start(tp, g, p, &r) != 0 || operand_grads(&r, wants) != 0) return -1;
    for (int s = 0; s < p->n_spaces; s++) run_space(&r, &p->space[s]);
    return 0;
}

/* With the tools' hook: timed (in anomaly mode groups dissolve instead: fuse.c). */
int tg__fz_run_backward(tg_tape *tp, fz_group *g, const fz_prog *p, uint32_t wants) {
    tg__span s = tg__tools_begin(tp);
    return tg__tools_after_group(tp, g, s, 0, wants & p->scattered, true,
                                 run_backward(tp, g, p, wants));
}
