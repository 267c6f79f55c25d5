/* autograd/fuse_exec.c - running a group's program, block by block.
 *
 * A space [rows, cols] is cut into blocks (cut_space): when every operand
 * window has the space's row stride, the whole space as one flat run cut
 * every TG_BLOCK elements (equal shapes); else rows of at most TG_BLOCK / 4
 * columns several to a block (an LSTM's [B, 64] gate blocks: four rows, so
 * a quarter of the instructions to dispatch); else each row cut into runs
 * of at most TG_BLOCK columns. For each block the program's instructions
 * run in order on registers of TG_BLOCK elements (L1-resident). In a
 * register each row of a block starts at a multiple of TG_VEC, its tail
 * padded with zeros, so the kernels see lengths that are multiples of
 * TG_VEC and every element goes through the same vector code as when an op
 * runs alone (ops/eltwise.c). An operand read whole and laid out as the
 * register is (contiguous rows, no padding) is read in place, not copied;
 * so is a seed gradient that nothing adds to. Other windows are gathered
 * with one strided copy per block. A load broadcast along the rows (a
 * bias) is loaded by a thread's first block only (its register is kept:
 * fz_inst.keep); a row-constant value runs on TG_VEC lanes per row
 * (fz_inst.narrow) until an FZ_EXPAND repeats it along its rows.
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

/* A block: nr rows of nb columns from (row, cb). In a register, row j of the
 * block starts at element j * pitch (nb rounded up to TG_VEC, the padding
 * zeros), so kernels run on n = nr * pitch elements and every element goes
 * through the same vector code as when the op runs alone. */
typedef struct fz_blk {
    int64_t row, cb, nr, nb, pitch, n;
    bool short_rows;   /* the space's rows run several to a block (all at column 0) */
    bool again;        /* not the first block this thread runs in the space */
} fz_blk;

/* Memory with row stride ld (elements) holds the block exactly as a register
 * does: it can be read or written in one piece. */
static bool packed(const fz_blk *b, int64_t ld) {
    return b->nb == b->pitch && (b->nr == 1 || ld == b->nb);
}

static double element(const fz_run *r, const void *p) {
    return r->dt == TG_F64 ? *(const double *)p : *(const float *)p;
}

/* The block's rows at src (row stride ld elements; 0: one row repeated) into
 * register memory dst, each row padded with zeros to the pitch. */
static void gather(const fz_run *r, char *dst, const char *src, int64_t ld, const fz_blk *b) {
    tg__ew_copy_rows(r->dt, dst, b->pitch, src, ld, b->nr, b->nb);
    for (int64_t j = 0; b->pitch > b->nb && j < b->nr; j++)
        memset(dst + (size_t)(j * b->pitch + b->nb) * r->es, 0, (size_t)(b->pitch - b->nb) * r->es);
}

/* Register block src into memory dst (row stride ld; 0: every row into one
 * row, added in row order): copied, or added when add. */
static void put(const fz_run *r, char *dst, int64_t ld, const void *src, const fz_blk *b,
                bool add) {
    if (packed(b, ld) && add)
        tg__ew_add(r->dt, dst, src, b->n);
    else if (packed(b, ld))
        tg__ew_copy(r->dt, dst, src, b->n);   /* nothing when src is dst (written directly) */
    else if (add)
        tg__ew_add_rows(r->dt, dst, ld, src, b->pitch, b->nr, b->nb);
    else
        tg__ew_copy_rows(r->dt, dst, ld, src, b->pitch, b->nr, b->nb);
}

/* A row-constant value's block (compiler: row_constant): TG_VEC lanes per row. */
static const void *fetch_narrow(const fz_run *r, int i, const char *src, int64_t ld,
                                const fz_blk *b) {
    char *dst = reg(r, i);
    for (int64_t j = 0; j < b->nr; j++)
        tg__ew_fill(r->dt, dst + (size_t)(j * TG_VEC) * r->es,
                    element(r, src + (size_t)(j * ld) * r->es), TG_VEC);
    return dst;
}

/* Register dst = the narrow block src repeated along each row. */
static void expand(const fz_run *r, const fz_inst *in, const fz_blk *b) {
    char *dst = reg(r, in->dst);
    const char *src = r->rp[in->src[0]];
    for (int64_t j = 0; j < b->nr; j++)
        tg__ew_fill(r->dt, dst + (size_t)(j * b->pitch) * r->es,
                    element(r, src + (size_t)(j * TG_VEC) * r->es), b->pitch);
    r->rp[in->dst] = dst;
}

/* The block at src (row stride ld, 0: one row repeated; column stride ac: 1,
 * or 0 = each row's one element repeated): the memory itself when it is laid
 * out as a register, else register i filled. */
static const void *fetch(const fz_run *r, int i, const char *src, int64_t ld, int ac,
                         const fz_blk *b) {
    char *dst = reg(r, i);
    if (!ac && !ld) {
        tg__ew_fill(r->dt, dst, element(r, src), b->n);
    } else if (!ac) {
        for (int64_t j = 0; j < b->nr; j++)
            tg__ew_fill(r->dt, dst + (size_t)(j * b->pitch) * r->es,
                        element(r, src + (size_t)(j * ld) * r->es), b->pitch);
    } else if (packed(b, ld)) {
        return src;
    } else {
        gather(r, dst, src, ld, b);
    }
    return dst;
}

/* Element (row, col) of operand o through map m, in its data or gradient. */
static char *operand_at(const fz_run *r, const fz_operand *o, const void *base, fz_map m,
                        int64_t row, int64_t col) {
    int64_t i = o->off + (m.row0 + m.ar * row) * o->ld + m.col0 + m.ac * col;
    return (char *)base + (size_t)i * r->es;
}

static void scatter(const fz_run *r, const fz_inst *in, const fz_blk *b) {
    const fz_operand *o = &r->g->o[in->ref];
    char *dst = operand_at(r, o, o->t->grad, in->map, b->row, b->cb);
    int64_t ld = in->map.ar ? o->ld : 0;
    if (r->partial && !in->map.ar) /* threads: this thread's sums */
        dst = tg__at(r->dt, r->partial, in->slot + (in->map.ac ? b->cb : 0));
    const char *src = r->rp[in->dst];
    if (in->map.ac) {
        put(r, dst, ld, src, b, !r->assign[in->ref]);
        return;
    }
    for (int64_t j = 0; j < b->nr; j++) { /* broadcast along the row: one element gets its sum */
        double s = tg__ew_sum(r->dt, src + (size_t)(j * b->pitch) * r->es, b->nb);
        char *d = dst + (size_t)(j * ld) * r->es;
        if (r->dt == TG_F64)
            *(double *)d += s;
        else
            *(float *)d += (float)s;
    }
}

/* The seed gradient of a value into register dst: read in place when
 * nothing is added to it, else copied (or added). */
static void load_grad(const fz_run *r, const fz_inst *in, const fz_blk *b) {
    const fz_value *v = &r->g->v[in->ref];
    const char *src = (const char *)v->t->grad + (size_t)(b->row * v->cols + b->cb) * r->es;
    char *d = reg(r, in->dst);
    if (in->acc) {
        tg__ew_add_rows(r->dt, d, b->pitch, src, v->cols, b->nr, b->nb);
        r->rp[in->dst] = d;
    } else if (in->copy) {
        gather(r, d, src, v->cols, b);
        r->rp[in->dst] = d;
    } else {
        r->rp[in->dst] = fetch(r, in->dst, src, v->cols, 1, b);
    }
}

/* Where the instruction after in will put in's result, when in can write
 * it there itself (a whole block stored, or scattered into a gradient that
 * is written): saves a copy. NULL when not. */
static void *direct_target(const fz_run *r, const fz_inst *in, const fz_inst *next,
                           const fz_blk *b) {
    if (!next || next->dst != in->dst || in->acc) return NULL;
    if (next->kind == FZ_STORE) {
        const fz_value *v = &r->g->v[next->ref];
        return packed(b, v->cols) ? tg__at(r->dt, v->t->data, b->row * v->cols + b->cb) : NULL;
    }
    if (next->kind == FZ_SCATTER && next->map.ar && next->map.ac && r->assign[next->ref]) {
        const fz_operand *o = &r->g->o[next->ref];
        return packed(b, o->ld) ? operand_at(r, o, o->t->grad, next->map, b->row, b->cb) : NULL;
    }
    return NULL;
}

static void run_op(const fz_run *r, const fz_inst *in, void *direct, int64_t n) {
    const fz_value *v = &r->g->v[in->ref];
    const tg_eltwise *ew = v->op->eltwise;
    const void *xs[TG_ELTWISE_MAX_IN];
    for (int k = 0; k < v->n_in; k++) xs[k] = rd(r, in->src[k]);
    void *d = direct ? direct : reg(r, in->dst);
    int f64 = r->dt == TG_F64;
    if (in->kind == FZ_OP)
        ew->fwd[f64](n, xs, d, v->attr);
    else
        ew->vjp[f64](in->k, n, xs, rd(r, in->y), r->rp[in->dy], d, in->acc, v->attr);
    r->rp[in->dst] = d;
}

static void run_block(const fz_run *r, const fz_space *s, const fz_blk *b) {
    int end = s->first + s->count;
    for (int i = s->first; i < end; i++) {
        const fz_inst *in = &r->p->inst[i], *next = i + 1 < end ? in + 1 : NULL;
        switch (in->kind) {
        case FZ_LOAD: {
            if (in->keep && b->again && (b->short_rows || !in->map.ac))
                break;   /* the same rows as the block before: still in its register */
            const fz_operand *o = &r->g->o[in->ref];
            const char *src = operand_at(r, o, o->t->data, in->map, b->row, b->cb);
            int64_t ld = in->map.ar ? o->ld : 0;
            r->rp[in->dst] = in->narrow ? fetch_narrow(r, in->dst, src, ld, b)
                                        : fetch(r, in->dst, src, ld, in->map.ac, b);
            break;
        }
        case FZ_OP:
        case FZ_VJP: /* one call site: inlined (W4 runs 50K of these a step) */
            run_op(r, in, in->narrow ? NULL : direct_target(r, in, next, b),
                   in->narrow ? b->nr * TG_VEC : b->n);
            break;
        case FZ_EXPAND: expand(r, in, b); break;
        case FZ_STORE: {
            const fz_value *v = &r->g->v[in->ref];
            put(r, tg__at(r->dt, v->t->data, b->row * v->cols + b->cb), v->cols, r->rp[in->dst], b,
                false);
            break;
        }
        case FZ_LOADG: load_grad(r, in, b); break;
        case FZ_SCATTER: scatter(r, in, b); break;
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

/* How a space is cut into blocks: one flat run cut every TG_BLOCK elements;
 * rows of at most TG_BLOCK / 4 columns several to a block (W3's [32, 64]
 * gate blocks: 4 rows, a quarter of the instructions dispatched); or each
 * row cut every TG_BLOCK columns. Two rows of 128 to a block measured no
 * faster on W4 than one (the strided windows then gathered, where one row
 * is read in place, cost what half the dispatches save), so from 4 rows. A unit is what threads share: a block
 * (flat, short rows) or a row's blocks. */
typedef struct fz_cut {
    bool flat;
    int64_t rows_per_block, blocks_per_unit, blocks;
} fz_cut;

static fz_cut cut_space(const fz_run *r, const fz_space *s) {
    fz_cut c = {.flat = flat(r, s), .rows_per_block = 1, .blocks_per_unit = 1};
    if (c.flat) {
        c.blocks = (s->rows * s->cols + TG_BLOCK - 1) / TG_BLOCK;
    } else if (s->cols <= TG_BLOCK / 4) {
        c.rows_per_block = TG_BLOCK / tg_vec_round(s->cols);
        c.blocks = (s->rows + c.rows_per_block - 1) / c.rows_per_block;
    } else {
        c.blocks_per_unit = (s->cols + TG_BLOCK - 1) / TG_BLOCK;
        c.blocks = s->rows * c.blocks_per_unit;
    }
    return c;
}

/* Block k of a cut space. */
static fz_blk block_at(const fz_space *s, const fz_cut *c, int64_t k) {
    fz_blk b = {.nr = 1};
    int64_t end = s->cols;
    if (c->flat) {
        b.cb = k * TG_BLOCK;
        end = s->rows * s->cols;
    } else if (c->rows_per_block > 1) {
        b.row = k * c->rows_per_block;
        b.nr = s->rows - b.row < c->rows_per_block ? s->rows - b.row : c->rows_per_block;
    } else {
        b.row = k / c->blocks_per_unit;
        b.cb = (k % c->blocks_per_unit) * TG_BLOCK;
    }
    b.nb = end - b.cb < TG_BLOCK ? end - b.cb : TG_BLOCK;
    b.pitch = tg_vec_round(b.nb);
    b.n = b.nr * b.pitch;
    b.short_rows = c->rows_per_block > 1;
    return b;
}

/* Blocks [k0, k1) of a space. */
static void run_blocks(const fz_run *r, const fz_space *s, const fz_cut *c, int64_t k0,
                       int64_t k1) {
    for (int64_t k = k0; k < k1; k++) {
        fz_blk b = block_at(s, c, k);
        b.again = k > k0;   /* the first block is the largest: a kept register covers the rest */
        run_block(r, s, &b);
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
    fz_cut c = cut_space(r, s);
    int nt = threads_for(r, s, c.blocks);
    if (nt == 1) {
        run_blocks(r, s, &c, 0, c.blocks);
        return;
    }
    fz_run th[FZ_MAX_THREADS];
    for (int t = 0; t < nt; t++) {
        thread_run(r, t, &th[t]);
        if (th[t].partial) memset(th[t].partial, 0, (size_t)r->p->partials * r->es);
    }
    double own[FZ_MAX_THREADS], t0 = tg__seconds();
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static, 1)
#endif
    for (int t = 0; t < nt; t++) {   /* whole units (rows) to each thread, in order */
        double start = tg__seconds();
        int64_t units = c.blocks / c.blocks_per_unit;
        int64_t u0 = units * t / nt, u1 = units * (t + 1) / nt;
        run_blocks(&th[t], s, &c, u0 * c.blocks_per_unit, u1 * c.blocks_per_unit);
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
