/* autograd/fuse.c - fused groups: recording, flushing, demands, hazards.
 *
 * tg_apply hands an elementwise or window op to tg__fuse_apply. If every
 * input maps onto the output as a 2-D affine window (fz_map: equal shapes,
 * a [H] bias over [B,H] rows, a [B,1] column, a slice along the last axis or
 * of whole rows, a reshape that keeps the last dim) the op becomes a pending
 * value of the tape's open group and its node is recorded as usual; else it
 * runs unfused. Inputs that are values of the open group are read through
 * registers; concrete inputs become the group's operands (windows of their
 * memory); pending values of closed groups are computed first (a demand).
 *
 * The open group runs (is flushed) when a value of it is demanded (a
 * non-fusible op or the user reads it), when it is full, when another dtype
 * comes, or when backward starts. It then stores the demanded values and
 * the ones its signature learned to store (values demanded after an earlier
 * group of the same signature had closed, fuse_compile.c); everything else
 * stays in registers and is recomputed when needed. A tape reset drops the
 * groups, without running the open one.
 *
 * Hazards. A group recomputes from its operands until the tape is reset, so
 * an operand must not change under it: every operand counts a hold
 * (tensor.fz_holds), and before the caller writes or frees a held tensor
 * (tensor.c's mutable accessors, tg_tensor_free) the groups holding it run
 * to the end unfused ("dissolve": every value computed by the op alone, in
 * recorded order, the nodes then replayed one by one by backward) - exactly
 * what eager mode would have computed. Groups are found through a registry
 * of the tapes with live groups, scanning those recorded on the writing
 * thread (a tape is used by one thread at a time). */
#include "tools.h"

#include "../ops/kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- the switch -------------------------------------------------------------------------- */
void tg_tape_set_fusion(tg_tape *tp, bool on) {
    if (!tp) return;
    if (!on) tg__fuse_close(tp);
    tp->fusion = on;
}

bool tg_tape_fusion(const tg_tape *tp) { return tg__fusion_enabled(tp); }

/* ---- the registry of tapes with live groups ------------------------------------------------ */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static tg_fuse *registry;

static void registry_add(tg_fuse *f) {
    f->owner = (unsigned long)pthread_self();
    if (f->registered) return;
    pthread_mutex_lock(&registry_lock);
    f->next = registry;
    f->prev = NULL;
    if (registry) registry->prev = f;
    registry = f;
    f->registered = true;
    pthread_mutex_unlock(&registry_lock);
}

static void registry_remove(tg_fuse *f) {
    if (!f->registered) return;
    pthread_mutex_lock(&registry_lock);
    if (f->prev) f->prev->next = f->next;
    else registry = f->next;
    if (f->next) f->next->prev = f->prev;
    f->registered = false;
    pthread_mutex_unlock(&registry_lock);
}

/* ---- 2-D views ------------------------------------------------------------------------------ */
static int64_t cols_of(int ndim, const int64_t *shape) { return ndim ? shape[ndim - 1] : 1; }
static int64_t rows_of(int ndim, const int64_t *shape, int64_t numel) {
    int64_t c = cols_of(ndim, shape);
    return c ? numel / c : 0;
}

/* a, then b: (r, c) -> a -> b. */
static fz_map compose(fz_map a, fz_map b) {
    fz_map m = {b.row0 + b.ar * a.row0, b.col0 + b.ac * a.col0, (uint8_t)(a.ar & b.ar),
                (uint8_t)(a.ac & b.ac)};
    return m;
}

static const fz_map identity = {0, 0, 1, 1};

/* How x is read by an elementwise output of rows x cols under NumPy
 * broadcasting; false when that is no 2-D map ([T,B,H] * [B,H], ...). */
static bool bcast_map(const tg_tensor *x, int64_t rows, int64_t cols, fz_map *m) {
    int64_t xc = cols_of(x->ndim, x->shape), xr = rows_of(x->ndim, x->shape, x->numel);
    *m = identity;
    if (xc != cols) m->ac = 0;
    if (xr != rows) m->ar = 0;
    return (xc == cols || xc == 1) && (xr == rows || xr == 1);
}

/* ---- the open group ---------------------------------------------------------------------- */
static tg_fuse *fuse_state(tg_tape *tp) {
    if (tp->fuse) return tp->fuse;
    tp->fuse = tg__calloc(1, sizeof *tp->fuse);
    if (!tp->fuse) return NULL;
    tp->heap_allocs++;
    tp->fuse->tp = tp;
    return tp->fuse;
}

static fz_group *open_group(tg_tape *tp, tg_fuse *f, tg_dtype dt) {
    fz_group *g = tg__arena_alloc(tp, sizeof *g, true);
    if (!g) return NULL;
    g->v = f->stage_v;
    g->o = f->stage_o;
    g->dt = dt;
    g->open = true;
    g->prev = f->live;
    f->live = g;
    f->open = g;
    registry_add(f);
    return g;
}

/* The group keeps its values and operands in the arena from now on. */
static int seal(tg_tape *tp, fz_group *g) {
    tg_fuse *f = tp->fuse;
    fz_value *v = tg__arena_alloc(tp, (size_t)g->n_values * sizeof *v, false);
    fz_operand *o = tg__arena_alloc(tp, (size_t)(g->n_operands + 1) * sizeof *o, false);
    if (!v || !o) return tg_fail(tp, TG_ERR_NOMEM, "fusion", "out of memory");
    memcpy(v, g->v, (size_t)g->n_values * sizeof *v);
    memcpy(o, g->o, (size_t)g->n_operands * sizeof *o);
    g->v = v;
    g->o = o;
    g->open = false;
    f->open = NULL;
    return 0;
}

/* An operand for the window (off, rows x cols at ld) of concrete t, shared
 * when the group already reads that window. Its id, or 0 when full. */
static int32_t operand_of(fz_group *g, tg_tensor *t, int64_t off, int64_t rows, int64_t cols,
                          int64_t ld) {
    for (int i = 0; i < g->n_operands; i++) {
        const fz_operand *o = &g->o[i];
        if (o->t == t && o->off == off && o->rows == rows && o->cols == cols && o->ld == ld)
            return ~i;
    }
    if (g->n_operands == FZ_MAX_OPERANDS) return 0;
    g->o[g->n_operands] = (fz_operand){t, off, rows, cols, ld};
    atomic_fetch_add_explicit(&t->fz_holds, 1, memory_order_relaxed);
    return ~g->n_operands++;
}

enum { CLONE_BUDGET = 8 };   /* values one read of a closed group may clone */

/* Operand t's window (off, rows x cols at ld) as read through map m by a
 * consumer of shape rows x cols: the map's offsets move into the window, so
 * an LSTM's step t and step t+1 read "rows 0.. of their window" and share a
 * signature. */
static fz_ref window_ref(fz_group *g, tg_tensor *t, int64_t off, int64_t ld, fz_map m,
                         int64_t rows, int64_t cols) {
    off += m.row0 * ld + m.col0;
    fz_map rest = {0, 0, m.ar, m.ac};
    return (fz_ref){operand_of(g, t, off, m.ar ? rows : 1, m.ac ? cols : 1, ld), rest};
}

/* In open group g, what closed group G's reference in reads, for a consumer
 * of shape rows x cols: G's operands become g's, stored values are read as
 * operands, views are seen through, and cheap values are cloned (recomputed
 * in g, as XLA duplicates cheap producers) instead of being stored in G and
 * read back - an RNN's input projection plus bias is then never stored:
 * each step adds its rows. A clone is made in the consumer's coordinates
 * (the map pushed down to the operand windows), so every step's group has
 * the same signature. 0, or 1 when that is not possible (no room, a costly
 * value, no budget). */
static int resolve(fz_group *g, const fz_group *G, fz_ref in, int64_t rows, int64_t cols,
                   fz_ref *out, int *budget) {
    if (in.id < 0) {
        const fz_operand *o = &G->o[~in.id];
        *out = window_ref(g, o->t, o->off, o->ld, in.map, rows, cols);
        return out->id == 0;
    }
    const fz_value *v = &G->v[in.id];
    if (v->t && v->t->data) {
        *out = window_ref(g, v->t, 0, v->cols, in.map, rows, cols);
        return out->id == 0;
    }
    if (v->view)
        return resolve(g, G, (fz_ref){v->arg[0].id, compose(in.map, v->arg[0].map)}, rows, cols,
                       out, budget);
    if ((!in.map.ar || !in.map.ac) && v->t) {
        /* read broadcast, v is smaller than its reader: storing it costs less than
         * recomputing it for every row (an RNN's b_ih + b_hh), and its gradient is
         * then summed once, not once per input of v */
        if (tg__concrete(v->t) != 0) return 1;
        *out = window_ref(g, v->t, 0, v->cols, in.map, rows, cols);
        return out->id == 0;
    }
    /* the clone is v at (row0 + r, col0 + c), r and c over its own shape */
    fz_map at = {in.map.row0, in.map.col0, 1, 1};
    fz_ref self = {0, {0, 0, in.map.ar, in.map.ac}};
    int64_t crows = in.map.ar ? rows : 1, ccols = in.map.ac ? cols : 1;
    for (int i = 0; i < g->n_values; i++) {   /* cloned already */
        const fz_value *c = &g->v[i];
        if (c->clone_of == G && c->clone_index == in.id && c->rows == crows &&
            c->cols == ccols && c->clone_at.row0 == at.row0 && c->clone_at.col0 == at.col0) {
            self.id = i;
            *out = self;
            return 0;
        }
    }
    if (!v->op->eltwise->cheap || (*budget)-- <= 0 || g->n_values + 1 >= FZ_MAX_VALUES) return 1;
    fz_value c = *v;
    c.t = NULL;
    c.clone_of = G;
    c.clone_index = in.id;
    c.clone_at = at;
    c.rows = crows;
    c.cols = ccols;
    for (int k = 0; k < v->n_in; k++)
        if (resolve(g, G, (fz_ref){v->arg[k].id, compose(at, v->arg[k].map)}, crows, ccols,
                    &c.arg[k], budget) != 0)
            return 1;
    g->v[g->n_values] = c;
    self.id = g->n_values++;
    *out = self;
    return 0;
}

/* The reference by which the open group g reads x through map m: a value of
 * g (views seen through to their source), a clone of a cheap pending value
 * of a closed group, else x as an operand (a pending value computed first).
 * 0, 1 when g is full, -1 on error. */
static int ref_of(fz_group *g, tg_tensor *x, fz_map m, int64_t rows, int64_t cols, fz_ref *r) {
    if (x->fz == g) {
        const fz_value *v = &g->v[x->fz_index];
        *r = v->view ? (fz_ref){v->arg[0].id, compose(m, v->arg[0].map)}
                     : (fz_ref){x->fz_index, m};
        return 0;
    }
    int budget = CLONE_BUDGET;
    if (tg__pending(x) &&
        resolve(g, x->fz, (fz_ref){x->fz_index, m}, rows, cols, r, &budget) == 0)
        return 0;
    if (tg__concrete(x) != 0) return -1;
    int64_t xc = cols_of(x->ndim, x->shape);
    int32_t id = operand_of(g, x, 0, rows_of(x->ndim, x->shape, x->numel), xc, xc);
    *r = (fz_ref){id, m};
    return id == 0 ? 1 : 0;
}

/* The tensor the new value will be: in the arena, no data yet. */
static tg_tensor *pending_tensor(tg_tape *tp, fz_group *g, const tg_desc *d) {
    tg_tensor *t = tg__arena_struct(tp, d->dtype, d->ndim, d->shape);
    if (!t) return NULL;
    t->fz = g;
    t->fz_index = g->n_values;
    return t;
}

/* Append the value (its args already in v) and record its node. */
static tg_tensor *append(tg_tape *tp, fz_group *g, fz_value *v, const tg_desc *d,
                         tg_tensor *const *in, const void *attr) {
    tg_tensor *t = pending_tensor(tp, g, d);
    tg_node *n;
    if (!t) tg_fail(tp, TG_ERR_NOMEM, v->op->name, "out of memory");
    if (!t || tg__record(tp, v->op, v->n_in, in, attr, t, &n) != 0) return NULL;
    if (n) {
        v->in = n->in;
        v->attr = n->attr;
    } else {   /* not recorded: the value still needs its own copies */
        v->in = tg__arena_alloc(tp, (size_t)v->n_in * sizeof *v->in, false);
        void *a = v->op->attr_size ? tg__arena_alloc(tp, v->op->attr_size, false) : NULL;
        if (!v->in || (v->op->attr_size && !a)) {
            tg_fail(tp, TG_ERR_NOMEM, v->op->name, "out of memory");
            return NULL;
        }
        memcpy(v->in, in, (size_t)v->n_in * sizeof *in);
        if (a) memcpy(a, attr, v->op->attr_size);
        v->attr = a;
    }
    v->t = t;
    v->recorded = t->node >= 0;
    v->rows = rows_of(d->ndim, d->shape, t->numel);
    v->cols = cols_of(d->ndim, d->shape);
    g->v[g->n_values++] = *v;
    return t;
}

static int flush(tg_tape *tp, fz_group *g, uint64_t demand);

/* The open group of dtype dt with room for n_in more operands and one more
 * value, flushing the current one if it has none. */
static fz_group *group_for(tg_tape *tp, tg_fuse *f, tg_dtype dt, int n_in) {
    fz_group *g = f->open;
    if (g && (g->dt != dt || g->n_values == FZ_MAX_VALUES ||
              g->n_operands + n_in > FZ_MAX_OPERANDS)) {
        if (flush(tp, g, 0) != 0) return NULL;
        g = NULL;
    }
    return g ? g : open_group(tp, f, dt);
}

/* A window op: its one arg is x seen through the window (x concrete: an
 * operand that is the window itself). */
static int window_args(fz_group *g, const tg_op *op, tg_tensor *x, const void *attr,
                       const tg_desc *d, fz_value *v) {
    tg_window w;
    if (!op->window(x, attr, d, &w)) return 1;
    fz_map m = {w.row0, w.col0, 1, 1};
    v->view = true;
    if (x->fz == g) return ref_of(g, x, m, v->rows, v->cols, &v->arg[0]);
    int budget = CLONE_BUDGET;
    if (tg__pending(x) &&
        resolve(g, x->fz, (fz_ref){x->fz_index, m}, v->rows, v->cols, &v->arg[0], &budget) == 0)
        return 0;
    if (tg__concrete(x) != 0) return -1;
    int64_t ld = cols_of(x->ndim, x->shape);
    int32_t id = operand_of(g, x, w.row0 * ld + w.col0, v->rows, v->cols, ld);
    v->arg[0] = (fz_ref){id, identity};
    return id == 0 ? 1 : 0;
}

static bool other_tape(const tg_tape *tp, const tg_tensor *x) {
    return x->owner == TG_OWN_ARENA && x->tape != tp;
}

int tg__fuse_apply(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                   const void *attr, const tg_desc *d, tg_tensor **out) {
    int64_t numel = tg__numel(d->ndim, d->shape);
    if (!tg__is_float(d->dtype) || numel < tp->fuse_min || n_in > TG_ELTWISE_MAX_IN) return 0;
    fz_value v = {.op = op, .n_in = n_in, .rows = rows_of(d->ndim, d->shape, numel),
                  .cols = cols_of(d->ndim, d->shape)};
    fz_map maps[TG_ELTWISE_MAX_IN];
    for (int i = 0; i < n_in; i++) {
        if (in[i]->dtype != d->dtype || other_tape(tp, in[i])) return 0;
        if (op->eltwise && !bcast_map(in[i], v.rows, v.cols, &maps[i])) return 0;
    }
    *out = NULL;
    tg_fuse *f = fuse_state(tp);
    fz_group *g = f ? group_for(tp, f, d->dtype, n_in) : NULL;
    if (!g) {
        if (tp->status == TG_OK) tg_fail(tp, TG_ERR_NOMEM, op->name, "out of memory (fusion)");
        return 1;
    }
    int rc = 0;
    if (!op->eltwise) rc = window_args(g, op, in[0], attr, d, &v);
    for (int i = 0; op->eltwise && rc == 0 && i < n_in; i++)
        rc = ref_of(g, in[i], maps[i], v.rows, v.cols, &v.arg[i]);
    if (rc != 0) return rc < 0 ? 1 : 0;   /* an error, or no room: run unfused */
    *out = append(tp, g, &v, d, in, attr);
    return 1;
}

/* ---- running groups ---------------------------------------------------------------------- */
/* A view of a contiguous window of an operand needs no pass: its data is
 * the operand's memory (copied if the group is dissolved later). */
static bool alias_view(fz_group *g, int i) {
    fz_value *v = &g->v[i];
    if (!v->view || v->arg[0].id >= 0) return false;
    const fz_operand *o = &g->o[~v->arg[0].id];
    fz_map m = v->arg[0].map;
    bool contiguous = o->ld == v->cols || v->rows == 1;
    if (!contiguous || m.ar != 1 || m.ac != 1 || !o->t->data) return false;
    v->t->data = tg__at(g->dt, o->t->data, o->off + m.row0 * o->ld + m.col0);
    v->aliased = true;
    return true;
}

static void dissolve(tg_tape *tp, fz_group *g);

static int run_group(tg_tape *tp, fz_group *g, uint64_t mask) {
    for (int i = 0; i < g->n_values; i++)
        if ((mask >> i & 1) && alias_view(g, i)) {
            g->stored |= (uint64_t)1 << i;
            mask &= ~((uint64_t)1 << i);
        }
    if (!mask) return 0;
    const fz_prog *p = tg__fz_forward_prog(tp, g, mask);
    if (!p) {
        if (tp->status != TG_OK) return -1;
        dissolve(tp, g);   /* too large to compile: run it op by op */
        return tp->status == TG_OK ? 0 : -1;
    }
    if (tg__fz_run_forward(tp, g, p) != 0) return -1;
    g->stored |= mask;
    return 0;
}

/* run_group with the tools' hook: timed, every value checked in anomaly mode. */
static int run_forward(tg_tape *tp, fz_group *g, uint64_t mask) {
    tg__span s = tg__tools_begin(tp);
    return tg__tools_after_group(tp, g, s, mask, 0, false, run_group(tp, g, mask));
}

/* Close g: store what is demanded and what its signature learned to store. */
static int flush(tg_tape *tp, fz_group *g, uint64_t demand) {
    if (seal(tp, g) != 0) return -1;
    g->entry = tg__fz_lookup(tp, g);
    if (g->entry && demand) tg__fz_learn(g->entry, demand);
    uint64_t mask = (demand | (g->entry ? tg__fz_learned(g->entry) : 0) |
                     tg__tools_store_all(tp, g)) & ~g->stored;
    return mask ? run_forward(tp, g, mask) : 0;
}

int tg__fuse_demand(tg_tensor *t) {
    fz_group *g = t->fz;
    tg_tape *tp = t->tape;
    uint64_t bit = (uint64_t)1 << t->fz_index;
    if (g->open) return flush(tp, g, bit);
    if (g->entry) tg__fz_learn(g->entry, bit);
    return run_forward(tp, g, bit);
}

void tg__fuse_close(tg_tape *tp) {
    if (tp && tp->fuse && tp->fuse->open) flush(tp, tp->fuse->open, 0);
}

static void release_holds(fz_group *g) {
    for (int i = 0; i < g->n_operands; i++)
        atomic_fetch_sub_explicit(&g->o[i].t->fz_holds, 1, memory_order_relaxed);
    g->n_operands = 0;
}

/* Every value computed by its op alone, in recorded order; from then on the
 * values are ordinary tensors and backward replays their nodes one by one. */
static void dissolve(tg_tape *tp, fz_group *g) {
    if (g->open && seal(tp, g) != 0) return;
    for (int i = 0; i < g->n_values; i++) {
        fz_value *v = &g->v[i];
        tg_tensor *t = v->t;
        if (!t) continue;   /* a clone: its consumers read the original */
        for (int k = 0; k < v->n_in; k++)
            if (tg__concrete(v->in[k]) != 0) return;
        size_t bytes = (size_t)t->numel * tg_dtype_size(t->dtype);
        const void *shared = v->aliased ? t->data : NULL;
        bool stored = (g->stored >> i & 1) && !v->aliased;
        t->fz = NULL;   /* from here on an ordinary tensor */
        if (stored) continue;
        if (v->op->flags & TG_OP_VIEW) {
            t->data = v->in[0]->data;
            continue;
        }
        t->data = tg__arena_data(tp, bytes, false, TG_ARENA_ACTIVATION);
        if (!t->data) {
            tg_fail(tp, TG_ERR_NOMEM, v->op->name, "out of memory");
            continue;
        }
        if (shared) {
            memcpy(t->data, shared, bytes);
            continue;
        }
        tg_node n = {.op = v->op, .tape = tp, .n_in = v->n_in, .in = v->in, .out = t,
                     .attr = v->attr};
        v->op->forward(&n);
    }
    g->dissolved = true;
    release_holds(g);
}

static bool holds(const fz_group *g, const tg_tensor *t) {
    for (int i = 0; i < g->n_operands; i++)
        if (g->o[i].t == t) return true;
    return false;
}

/* One group of this thread's tapes that reads t, or NULL. */
static fz_group *holder_of(const tg_tensor *t, tg_tape **tp) {
    unsigned long self = (unsigned long)pthread_self();
    fz_group *found = NULL;
    pthread_mutex_lock(&registry_lock);
    for (tg_fuse *f = registry; f && !found; f = f->next) {
        if (f->owner != self) continue;
        for (fz_group *g = f->live; g && !found; g = g->prev)
            if (!g->dissolved && holds(g, t)) {
                found = g;
                *tp = f->tp;
            }
    }
    pthread_mutex_unlock(&registry_lock);
    return found;
}

void tg__fuse_before_write(tg_tensor *t) {
    if (!t || atomic_load_explicit(&t->fz_holds, memory_order_relaxed) == 0) return;
    tg_tape *tp;
    for (fz_group *g; (g = holder_of(t, &tp)) != NULL;) dissolve(tp, g);
}

void tg__fuse_release(tg_tape *tp) {
    tg_fuse *f = tp->fuse;
    if (!f) return;
    for (fz_group *g = f->live; g; g = g->prev)
        if (!g->dissolved) release_holds(g);
    f->live = NULL;
    f->open = NULL;
    registry_remove(f);
}

void tg__fuse_free(tg_tape *tp) {
    if (!tp->fuse) return;
    tg__fuse_release(tp);
    tg__fz_cache_free(tp);
    free(tp->fuse->regs);
    free(tp->fuse->compile);
    free(tp->fuse);
    tp->fuse = NULL;
}

/* ---- backward ----------------------------------------------------------------------------- */
/* Seeds: values that received a gradient from outside, recorded up to limit;
 * wants: operands that want a gradient. */
int tg__fuse_backward(tg_tape *tp, fz_group *g, int64_t limit) {
    tg_fuse *f = tp->fuse;
    if (g->bwd_stamp == f->bwd_stamp) return 0;
    g->bwd_stamp = f->bwd_stamp;
    if (tg__tools_anomaly(tp)) {   /* each member's VJP checked alone: replay them one by one */
        dissolve(tp, g);
        return tp->status == TG_OK ? 1 : -1;
    }
    uint64_t seeds = 0;
    uint32_t wants = 0;
    for (int i = 0; i < g->n_values; i++) {
        const tg_tensor *t = g->v[i].t;
        if (t && t->grad && t->node >= 0 && t->node <= limit) {
            seeds |= (uint64_t)1 << i;
            tg__grad_complete(g->v[i].t);   /* read whole by the program */
            /* a matmul VJP may have deferred its part of it (ops/gemm_defer.c) */
            tg__flush_deferred(tp, t->grad);
        }
    }
    for (int i = 0; i < g->n_operands; i++)
        if (g->o[i].t->requires_grad) wants |= (uint32_t)1 << i;
    if (!seeds || !wants) return 0;
    const fz_prog *p = tg__fz_backward_prog(tp, g, seeds, wants);
    if (!p && tp->status != TG_OK) return -1;
    if (!p) {
        dissolve(tp, g);
        return tp->status == TG_OK ? 1 : -1;
    }
    return tg__fz_run_backward(tp, g, p, wants);
}

void tg__fuse_backward_begin(tg_tape *tp) {
    tg__fuse_close(tp);
    if (tp->fuse) tp->fuse->bwd_stamp++;
}
