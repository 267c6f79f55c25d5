/* autograd/fuse_compile.c - a group's signature, the program cache, and
 * compiling a group into register programs.
 *
 * Signature. A group is keyed by what its programs depend on: per value the
 * op, its attributes (not a view's: its window is in its map), how it reads
 * its args (value or operand, map), its 2-D shape and whether it was
 * recorded; per operand its window's shape and stride, and which operands
 * are one tensor. Not by addresses or window offsets: an LSTM's step t reads
 * rows t*B.. of the input projection, and every step has one signature.
 * The per-tape cache maps a signature to what was learned about it (values
 * to store) and its compiled programs.
 *
 * Programs. A program is a list of register instructions per *space*: the
 * [rows, cols] iteration space of one output shape. Evaluating a value in a
 * space at a map (tinygrad's index maps) pushes the map through views and
 * broadcasts down to operand loads, so an LSTM's gate blocks [B, H] read
 * their columns of z [B, 4H] directly and no [B, 4H] value is ever formed;
 * equal (value, map) pairs share a register. Backward recomputes the values
 * its VJPs read (from the operands), seeds each value's gradient from its
 * buffer, walks the nodes in reverse adding contributions into adjoint
 * registers, and scatters each operand's adjoint into its gradient: written
 * where one scatter covers the whole of a fresh gradient, else accumulated,
 * summed where the operand was broadcast. */
#include "fuse_prog.h"

#include "../ops/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- signatures and the cache ------------------------------------------------------------ */
enum { CACHE_SLOTS = 1024, CACHE_MAX = 768, VARIANTS = 4 };

/* Groups of one signature differ in what they store and which gradients
 * arrive (an LSTM's last step: no gradient into its cell state), so a few
 * programs of each kind are kept, the oldest replaced. */
typedef struct fz_variant {
    fz_prog *prog;
    uint64_t mask;              /* values stored, or seeds                */
    uint32_t wants;             /* backward: operands that want gradients */
} fz_variant;

struct fz_entry {
    uint64_t hash;
    size_t key_len;
    unsigned char *key;
    uint64_t learned;           /* values to store when the group closes  */
    fz_variant fwd[VARIANTS], bwd[VARIANTS];
    int next_fwd, next_bwd;     /* the slot to replace next               */
};

struct fz_cache {
    fz_entry *slot[CACHE_SLOTS];
    int n;
    unsigned char *key;         /* key of the group being looked up      */
    size_t key_cap, key_len;
};

static void key_put(fz_cache *c, const void *p, size_t n) {
    if (c->key_len + n > c->key_cap) {
        size_t cap = c->key_cap ? c->key_cap * 2 : 4096;
        while (cap < c->key_len + n) cap *= 2;
        unsigned char *k = realloc(c->key, cap);
        if (!k) {
            c->key_len = SIZE_MAX; /* poisoned: the lookup fails */
            return;
        }
        tg__count_alloc();
        c->key = k;
        c->key_cap = cap;
    }
    if (c->key_len == SIZE_MAX) return;
    memcpy(c->key + c->key_len, p, n);
    c->key_len += n;
}

/* Keys are compared as bytes: plain int64_t fields, no padding. */
typedef struct key_value {
    const tg_op *op;
    int64_t arg[TG_ELTWISE_MAX_IN][5];   /* id, row0, col0, ar, ac */
    int64_t rows, cols, n_args, view, recorded;
} key_value;

typedef struct key_operand {
    int64_t rows, cols, ld;
    int64_t same_as;            /* first operand with the same tensor */
} key_operand;

static void build_key(fz_cache *c, const fz_group *g) {
    c->key_len = 0;
    int64_t head[3] = {g->dt, g->n_values, g->n_operands};
    key_put(c, head, sizeof head);
    for (int i = 0; i < g->n_values; i++) {
        const fz_value *v = &g->v[i];
        key_value k;
        memset(&k, 0, sizeof k);   /* padding bytes are hashed too */
        k.op = v->op;
        k.n_args = v->view ? 1 : v->n_in;
        for (int a = 0; a < k.n_args; a++) {
            const fz_ref *r = &v->arg[a];
            int64_t f[5] = {r->id, r->map.row0, r->map.col0, r->map.ar, r->map.ac};
            memcpy(k.arg[a], f, sizeof f);
        }
        k.rows = v->rows;
        k.cols = v->cols;
        k.view = v->view;
        k.recorded = v->recorded;
        key_put(c, &k, sizeof k);
        if (!v->view && v->op->attr_size) key_put(c, v->attr, v->op->attr_size);
    }
    for (int i = 0; i < g->n_operands; i++) {
        const fz_operand *o = &g->o[i];
        key_operand k;
        memset(&k, 0, sizeof k);
        k.rows = o->rows;
        k.cols = o->cols;
        k.ld = o->ld;
        k.same_as = 0;
        while (g->o[k.same_as].t != o->t) k.same_as++;
        key_put(c, &k, sizeof k);
    }
}

/* FNV-1a on 8-byte words (a byte at a time cost W3 2% of its step: a key is
 * about 3 KB and every group flush hashes one), the high bits folded back in
 * after each multiply; collisions are settled by comparing the keys. */
static uint64_t hash_bytes(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 1099511628211ull;
        h ^= h >> 32;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

fz_entry *tg__fz_lookup(tg_tape *tp, fz_group *g) {
    tg_fuse *f = tp->fuse;
    if (!f->cache) {
        f->cache = tg__calloc(1, sizeof *f->cache);
        if (!f->cache) return NULL;
        tp->heap_allocs++;
    }
    fz_cache *c = f->cache;
    build_key(c, g);
    if (c->key_len == SIZE_MAX) return NULL;
    uint64_t h = hash_bytes(c->key, c->key_len);
    size_t i = (size_t)(h % CACHE_SLOTS);
    for (; c->slot[i]; i = (i + 1) % CACHE_SLOTS) {
        fz_entry *e = c->slot[i];
        if (e->hash == h && e->key_len == c->key_len && !memcmp(e->key, c->key, c->key_len))
            return e;
    }
    if (c->n >= CACHE_MAX) return NULL;   /* full: this signature stays uncached */
    fz_entry *e = tg__calloc(1, sizeof *e);
    unsigned char *key = tg__malloc(c->key_len);
    if (!e || !key) {
        free(e);
        free(key);
        return NULL;
    }
    tp->heap_allocs += 2;
    memcpy(key, c->key, c->key_len);
    *e = (fz_entry){.hash = h, .key_len = c->key_len, .key = key};
    c->slot[i] = e;
    c->n++;
    return e;
}

uint64_t tg__fz_learned(const fz_entry *e) { return e->learned; }
void tg__fz_learn(fz_entry *e, uint64_t mask) { e->learned |= mask; }

void tg__fz_cache_free(tg_tape *tp) {
    fz_cache *c = tp->fuse ? tp->fuse->cache : NULL;
    if (!c) return;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        fz_entry *e = c->slot[i];
        if (!e) continue;
        free(e->key);
        for (int v = 0; v < VARIANTS; v++) {
            free(e->fwd[v].prog);
            free(e->bwd[v].prog);
        }
        free(e);
    }
    free(c->key);
    free(c);
    tp->fuse->cache = NULL;
}

/* ---- compiling ----------------------------------------------------------------------------- */
enum { MAX_NODES = 512, MAX_INST = 2048 };

/* A (value or operand, map) pair evaluated in the current space. */
typedef struct cnode {
    int32_t id;
    fz_map map;
    int16_t arg[TG_ELTWISE_MAX_IN];   /* node indices of an op node's args */
    int16_t reg, adj;                 /* registers, -1: none               */
    int16_t wide;                     /* a row-constant node: its value along whole rows */
    uint8_t grad_path, need_val;      /* backward: leads to a wanted operand; value read */
    uint16_t contrib;                 /* backward: contributions still to come */
} cnode;

typedef struct cctx {
    const fz_group *g;
    cnode node[MAX_NODES];
    int n_nodes, n_regs;
    fz_inst inst[MAX_INST];
    int n_inst;
    fz_space space[FZ_MAX_SPACES];
    int n_spaces;
    bool overflow;
    int16_t last[MAX_INST], phys[MAX_INST], free_list[MAX_INST];   /* allocate_registers */
} cctx;

static bool map_eq(fz_map a, fz_map b) {
    return a.row0 == b.row0 && a.col0 == b.col0 && a.ar == b.ar && a.ac == b.ac;
}

static fz_map compose(fz_map a, fz_map b) {
    fz_map m = {b.row0 + b.ar * a.row0, b.col0 + b.ac * a.col0, (uint8_t)(a.ar & b.ar),
                (uint8_t)(a.ac & b.ac)};
    return m;
}

static const fz_map identity = {0, 0, 1, 1};

static int16_t new_reg(cctx *c) { return (int16_t)c->n_regs++; }

static fz_inst *emit(cctx *c, uint8_t kind) {
    if (c->n_inst == MAX_INST) {
        c->overflow = true;
        return &c->inst[MAX_INST - 1];
    }
    fz_inst *in = &c->inst[c->n_inst++];
    memset(in, 0, sizeof *in);
    in->kind = kind;
    in->dst = in->y = in->dy = -1;
    for (int k = 0; k < TG_ELTWISE_MAX_IN; k++) in->src[k] = -1;
    return in;
}

/* The node of (id, m) in the current space, built with its args first (so
 * node order is a topological order). Views are seen through. */
static int node_of(cctx *c, int32_t id, fz_map m) {
    while (id >= 0 && c->g->v[id].view) {
        const fz_ref *a = &c->g->v[id].arg[0];
        m = compose(m, a->map);
        id = a->id;
    }
    for (int i = c->space[c->n_spaces - 1].first_node; i < c->n_nodes; i++)
        if (c->node[i].id == id && map_eq(c->node[i].map, m)) return i;
    int16_t args[TG_ELTWISE_MAX_IN] = {-1, -1, -1, -1};
    if (id >= 0) {
        const fz_value *v = &c->g->v[id];
        for (int k = 0; k < v->n_in; k++) {
            int a = node_of(c, v->arg[k].id, compose(m, v->arg[k].map));
            if (a < 0) return -1;
            args[k] = (int16_t)a;
        }
    }
    if (c->n_nodes == MAX_NODES) {
        c->overflow = true;
        return -1;
    }
    cnode *n = &c->node[c->n_nodes];
    memset(n, 0, sizeof *n);
    n->id = id;
    n->map = m;
    memcpy(n->arg, args, sizeof args);
    n->reg = n->adj = n->wide = -1;
    return c->n_nodes++;
}

/* A node read through a column broadcast (map.ac = 0: layer norm's
 * rsqrt(var + eps) under a [rows, 1] -> [rows, cols] broadcast) is constant
 * along each row: its ops run narrow, on TG_VEC lanes per row, and it is
 * expanded to whole rows where a whole-row op or a VJP reads it. */
static bool row_constant(const cnode *n) { return !n->map.ac; }

static int16_t emit_wide(cctx *c, int i);

/* Emit the value of node i (and of its args): narrow when row-constant. */
static int16_t emit_value(cctx *c, int i) {
    cnode *n = &c->node[i];
    if (n->reg >= 0) return n->reg;
    if (n->id < 0) {
        fz_inst *in = emit(c, FZ_LOAD);
        in->ref = ~n->id;
        in->map = n->map;
        in->narrow = row_constant(n);
        return n->reg = in->dst = new_reg(c);
    }
    const fz_value *v = &c->g->v[n->id];
    int16_t src[TG_ELTWISE_MAX_IN];
    for (int k = 0; k < v->n_in; k++)
        src[k] = row_constant(n) ? emit_value(c, n->arg[k]) : emit_wide(c, n->arg[k]);
    fz_inst *in = emit(c, FZ_OP);
    in->ref = n->id;
    in->narrow = row_constant(n);
    for (int k = 0; k < v->n_in; k++) in->src[k] = src[k];
    return n->reg = in->dst = new_reg(c);
}

/* The value of node i along whole rows: a row-constant load is loaded whole
 * (as cheap as expanding it), a row-constant op's result expanded. */
static int16_t emit_wide(cctx *c, int i) {
    cnode *n = &c->node[i];
    if (!row_constant(n)) return emit_value(c, i);
    if (n->wide >= 0) return n->wide;
    fz_inst *in;
    if (n->id < 0) {
        in = emit(c, FZ_LOAD);
        in->ref = ~n->id;
        in->map = n->map;
    } else {
        int16_t narrow = emit_value(c, i);
        in = emit(c, FZ_EXPAND);
        in->src[0] = narrow;
    }
    return n->wide = in->dst = new_reg(c);
}

/* The space of shape rows x cols, opened if new. */
static bool enter_space(cctx *c, int64_t rows, int64_t cols) {
    if (c->n_spaces == FZ_MAX_SPACES) return false;
    fz_space *s = &c->space[c->n_spaces++];
    *s = (fz_space){.rows = rows, .cols = cols, .first = c->n_inst, .first_node = c->n_nodes};
    return true;
}

static void leave_space(cctx *c) {
    fz_space *s = &c->space[c->n_spaces - 1];
    s->count = c->n_inst - s->first;
}

/* Registers an instruction reads (dst too when it adds into it or stores it). */
static int reads(const fz_inst *in, int16_t *r) {
    int n = 0;
    for (int k = 0; k < TG_ELTWISE_MAX_IN; k++)
        if (in->src[k] >= 0) r[n++] = in->src[k];
    if (in->y >= 0) r[n++] = in->y;
    if (in->dy >= 0) r[n++] = in->dy;
    bool reads_dst = in->kind == FZ_STORE || in->kind == FZ_SCATTER ||
                     ((in->kind == FZ_VJP || in->kind == FZ_LOADG) && in->acc);
    if (reads_dst) r[n++] = in->dst;
    return n;
}

/* Give the registers back as soon as they are dead, so a program needs a
 * few L1-sized blocks, not one per node: a linear scan over each space
 * (a register never lives across spaces). */
static void allocate_registers(cctx *c) {
    int16_t *last = c->last, *phys = c->phys, *free_list = c->free_list;
    int n_phys = 0;
    for (int s = 0; s < c->n_spaces; s++) {
        int first = c->space[s].first, end = first + c->space[s].count, n_free = 0, used = 0;
        int16_t r[TG_ELTWISE_MAX_IN + 4];
        for (int v = 0; v < c->n_regs; v++) last[v] = phys[v] = -1;
        for (int i = first; i < end; i++)
            for (int k = 0, n = reads(&c->inst[i], r); k < n; k++) last[r[k]] = (int16_t)i;
        for (int i = first; i < end; i++) {
            fz_inst *in = &c->inst[i];
            int n = reads(in, r);
            r[n++] = in->dst;
            if (phys[in->dst] < 0) { /* a new value: a free register or a new one */
                /* a load broadcast along the rows is the same in every block of
                 * short rows: its register is its own through the space (new, never
                 * freed), so the blocks after the first need not load it again */
                in->keep = in->kind == FZ_LOAD && !in->map.ar;
                phys[in->dst] = n_free && !in->keep ? free_list[--n_free] : (int16_t)used++;
                if (last[in->dst] < 0 || in->keep) last[in->dst] = in->keep ? -2 : (int16_t)i;
            }
            for (int k = 0; k < TG_ELTWISE_MAX_IN; k++)
                if (in->src[k] >= 0) in->src[k] = phys[in->src[k]];
            if (in->y >= 0) in->y = phys[in->y];
            if (in->dy >= 0) in->dy = phys[in->dy];
            in->dst = phys[in->dst];
            for (int k = 0; k < n; k++) /* dead after this instruction */
                if (last[r[k]] == i) {
                    free_list[n_free++] = phys[r[k]];
                    last[r[k]] = -2;
                }
        }
        if (used > n_phys) n_phys = used;
    }
    c->n_regs = n_phys;
}

/* The program, copied out of the context: to the heap when it is cached
 * (replacing *slot), else to the arena. NULL on overflow or out of memory. */
static fz_prog *finish(tg_tape *tp, cctx *c, fz_prog **slot) {
    if (c->overflow) return NULL;
    allocate_registers(c);
    size_t bytes = sizeof(fz_prog) + (size_t)c->n_inst * sizeof(fz_inst);
    fz_prog *p = slot ? tg__malloc(bytes) : tg__arena_alloc(tp, bytes, false);
    if (!p) {
        tg_fail(tp, TG_ERR_NOMEM, "fusion", "out of memory (program)");
        return NULL;
    }
    if (slot) {
        tp->heap_allocs++;
        free(*slot);
        *slot = p;
    }
    memset(p, 0, sizeof *p);
    p->n_regs = c->n_regs;
    p->n_spaces = c->n_spaces;
    p->n_inst = c->n_inst;
    memcpy(p->space, c->space, sizeof c->space);
    memcpy(p->inst, c->inst, (size_t)c->n_inst * sizeof(fz_inst));
    return p;
}

/* TG_FUSE_DUMP=1: every program compiled, to stderr (for looking at what
 * a cell compiles to). */
static void dump(const fz_group *g, const fz_prog *p, const char *what) {
    static const char *const kind[] = {"load", "op", "store", "loadg", "vjp", "scatter", "expand"};
    fprintf(stderr, "fusion: %s program, %d values, %d operands, %d registers\n", what,
            g->n_values, g->n_operands, p->n_regs);
    for (int s = 0; s < p->n_spaces; s++) {
        fprintf(stderr, "  space [%lld, %lld]\n", (long long)p->space[s].rows,
                (long long)p->space[s].cols);
        for (int i = p->space[s].first; i < p->space[s].first + p->space[s].count; i++) {
            const fz_inst *in = &p->inst[i];
            bool value = in->kind == FZ_OP || in->kind == FZ_STORE || in->kind == FZ_LOADG ||
                         in->kind == FZ_VJP;
            fprintf(stderr, "    r%-3d %-7s %s%d", in->dst, kind[in->kind], value ? "v" : "o",
                    in->ref);
            if (value) fprintf(stderr, " (%s)", g->v[in->ref].op->name);
            if (in->kind == FZ_LOAD || in->kind == FZ_SCATTER)
                fprintf(stderr, " at (%lld + %d r, %lld + %d c)", (long long)in->map.row0,
                        in->map.ar, (long long)in->map.col0, in->map.ac);
            if (in->kind == FZ_OP || in->kind == FZ_VJP || in->kind == FZ_EXPAND)
                fprintf(stderr, " src r%d r%d y r%d dy r%d k %d%s", in->src[0], in->src[1], in->y,
                        in->dy, in->k, in->acc ? " +=" : "");
            fprintf(stderr, "%s%s%s\n", in->kind == FZ_LOADG && in->copy ? " (copy)" : "",
                    in->keep ? " (kept)" : "", in->narrow ? " (narrow)" : "");
        }
    }
}

static cctx *context(tg_tape *tp, const fz_group *g) {
    tg_fuse *f = tp->fuse;
    if (!f->compile) {
        f->compile = tg__malloc(sizeof(cctx));
        if (!f->compile) return NULL;
        tp->heap_allocs++;
    }
    cctx *c = f->compile;
    c->g = g;
    c->n_nodes = c->n_regs = c->n_inst = c->n_spaces = 0;
    c->overflow = false;
    return c;
}

/* Values of mask grouped by shape, in value order within each space. */
static void forward_space(cctx *c, uint64_t *left) {
    const fz_group *g = c->g;
    int first = __builtin_ctzll(*left);
    int64_t rows = g->v[first].rows, cols = g->v[first].cols;
    if (!enter_space(c, rows, cols)) {
        c->overflow = true;
        *left = 0;
        return;
    }
    for (int i = first; i < g->n_values; i++) {
        if (!(*left >> i & 1) || g->v[i].rows != rows || g->v[i].cols != cols) continue;
        *left &= ~((uint64_t)1 << i);
        int n = node_of(c, i, identity);
        if (n < 0) return;
        int16_t r = emit_wide(c, n);
        fz_inst *in = emit(c, FZ_STORE);
        in->ref = i;
        in->dst = r;
    }
    leave_space(c);
}

/* The cached variant for (mask, wants), or NULL; *slot: where to keep a new one. */
static fz_prog *variant(fz_variant *vs, int *next, uint64_t mask, uint32_t wants,
                        fz_variant **slot) {
    for (int i = 0; i < VARIANTS; i++)
        if (vs[i].prog && vs[i].mask == mask && vs[i].wants == wants) return vs[i].prog;
    *slot = &vs[*next];
    *next = (*next + 1) % VARIANTS;
    return NULL;
}

const fz_prog *tg__fz_forward_prog(tg_tape *tp, fz_group *g, uint64_t mask) {
    fz_entry *e = g->entry;
    fz_variant *slot = NULL;
    fz_prog *p = e ? variant(e->fwd, &e->next_fwd, mask, 0, &slot) : NULL;
    if (p) return p;
    cctx *c = context(tp, g);
    if (!c) return NULL;
    for (uint64_t left = mask; left && !c->overflow;) forward_space(c, &left);
    p = finish(tp, c, slot ? &slot->prog : NULL);
    if (p && slot) *slot = (fz_variant){p, mask, 0};
    if (p && getenv("TG_FUSE_DUMP")) dump(g, p, "forward");
    return p;
}

/* ---- backward -------------------------------------------------------------------------------- */
/* Which nodes of the current space lead to a wanted operand, get an
 * adjoint, and have their value read by a VJP; counts contributions. */
static void mark_backward(cctx *c, int first, const int *seed_node, int n_seeds, uint32_t wants) {
    const fz_group *g = c->g;
    for (int i = first; i < c->n_nodes; i++) {
        cnode *n = &c->node[i];
        if (n->id < 0) {
            n->grad_path = wants >> ~n->id & 1;
            continue;
        }
        const fz_value *v = &g->v[n->id];
        for (int k = 0; k < v->n_in && v->recorded; k++) n->grad_path |= c->node[n->arg[k]].grad_path;
    }
    bool *adj = (bool[MAX_NODES]){false};
    for (int s = 0; s < n_seeds; s++) {
        cnode *n = &c->node[seed_node[s]];
        adj[seed_node[s]] = n->grad_path;
        n->contrib += n->grad_path;
    }
    for (int i = c->n_nodes - 1; i >= first; i--) {
        cnode *n = &c->node[i];
        if (!adj[i] || n->id < 0) continue;
        const fz_value *v = &g->v[n->id];
        unsigned needs = v->op->eltwise->needs;
        for (int k = 0; k < v->n_in; k++) {
            cnode *a = &c->node[n->arg[k]];
            if (!a->grad_path) continue;
            adj[n->arg[k]] = true;
            a->contrib++;
            if (needs & TG_NEEDS_Y) n->need_val = 1;
            for (int j = 0; (needs & TG_NEEDS_X) && j < v->n_in; j++)
                c->node[n->arg[j]].need_val = 1;
        }
    }
}

/* Add a contribution into node a's adjoint: a new register for the first,
 * accumulated after. Returns the instruction's dst and sets *acc. */
static int16_t adjoint_for(cctx *c, cnode *a, uint8_t *acc) {
    a->contrib--;
    *acc = a->adj >= 0;
    if (a->adj < 0) a->adj = new_reg(c);
    return a->adj;
}

static int16_t wide_reg(const cnode *n) { return row_constant(n) ? n->wide : n->reg; }

static void emit_vjps(cctx *c, int i) {
    cnode *n = &c->node[i];
    const fz_value *v = &c->g->v[n->id];
    unsigned needs = v->op->eltwise->needs;
    for (int k = 0; k < v->n_in; k++) {
        cnode *a = &c->node[n->arg[k]];
        if (!a->grad_path) continue;
        if ((v->op->eltwise->passes >> k & 1) && a->adj < 0 && a->contrib == 1) {
            a->adj = n->adj;   /* dx = dy and nothing else adds to dx: the same register */
            a->contrib--;
            continue;
        }
        uint8_t acc;
        int16_t dst = adjoint_for(c, a, &acc);
        fz_inst *in = emit(c, FZ_VJP);
        in->ref = n->id;
        in->k = (uint8_t)k;
        in->acc = acc;
        in->dst = dst;
        in->dy = n->adj;
        in->y = (needs & TG_NEEDS_Y) ? wide_reg(n) : -1;   /* VJPs run on whole rows */
        for (int j = 0; (needs & TG_NEEDS_X) && j < v->n_in; j++)
            in->src[j] = wide_reg(&c->node[n->arg[j]]);
    }
}

/* Seeds of one shape: recompute what the VJPs read, seed the adjoints from
 * the gradient buffers (first, so sums run in eager mode's order), then the
 * VJPs in reverse node order and the operands' scatters. */
static void backward_space(cctx *c, uint64_t *left, uint32_t wants) {
    const fz_group *g = c->g;
    int first_seed = __builtin_ctzll(*left), seed_node[FZ_MAX_VALUES], seed_value[FZ_MAX_VALUES];
    int n_seeds = 0;
    int64_t rows = g->v[first_seed].rows, cols = g->v[first_seed].cols;
    if (!enter_space(c, rows, cols)) {
        c->overflow = true;
        *left = 0;
        return;
    }
    int first = c->n_nodes;
    for (int i = first_seed; i < g->n_values; i++) {
        if (!(*left >> i & 1) || g->v[i].rows != rows || g->v[i].cols != cols) continue;
        *left &= ~((uint64_t)1 << i);
        int n = node_of(c, i, identity);
        if (n < 0) return;
        seed_value[n_seeds] = i;
        seed_node[n_seeds++] = n;
    }
    mark_backward(c, first, seed_node, n_seeds, wants);
    for (int i = first; i < c->n_nodes; i++)
        if (c->node[i].need_val) emit_wide(c, i);
    for (int s = 0; s < n_seeds; s++) {
        cnode *n = &c->node[seed_node[s]];
        if (!n->grad_path) continue;
        fz_inst *in = emit(c, FZ_LOADG);
        in->ref = seed_value[s];
        in->dst = adjoint_for(c, n, &in->acc);
        in->copy = n->contrib > 0;   /* more to add: not the gradient's memory */
    }
    for (int i = c->n_nodes - 1; i >= first; i--) {
        cnode *n = &c->node[i];
        if (n->adj < 0) continue;
        if (n->id >= 0) {
            emit_vjps(c, i);
            continue;
        }
        fz_inst *in = emit(c, FZ_SCATTER);
        in->ref = ~n->id;
        in->map = n->map;
        in->dst = n->adj;
    }
    leave_space(c);
}

/* A scatter's rectangle in its operand's window: rows x cols at (r0, c0). */
typedef struct rect { int64_t r0, c0, rows, cols; } rect;

static bool overlap(rect a, rect b) {
    return a.r0 < b.r0 + b.rows && b.r0 < a.r0 + a.rows && a.c0 < b.c0 + b.cols &&
           b.c0 < a.c0 + a.cols;
}

/* Operands whose window the scatters write whole, each element once (an
 * LSTM's four gate blocks of z tile [B, 4H]): no broadcast, disjoint
 * rectangles summing to the window, the window whole rows of its tensor (all
 * of it, or the rows of one time step), and no other window of that tensor
 * written by the group. Their rows not yet written are written, not zeroed and
 * added to (tg__grad_rows). Also which operands get a gradient at all. */
static uint32_t write_ok(const cctx *c, uint32_t *scattered) {
    const fz_group *g = c->g;
    enum { MAX_RECTS = 16 };
    rect r[FZ_MAX_OPERANDS][MAX_RECTS];
    int n[FZ_MAX_OPERANDS] = {0};
    uint32_t ok = 0;
    *scattered = 0;
    for (int s = 0; s < c->n_spaces; s++)
        for (int i = c->space[s].first; i < c->space[s].first + c->space[s].count; i++) {
            const fz_inst *in = &c->inst[i];
            if (in->kind != FZ_SCATTER) continue;
            int o = in->ref;
            bool plain = in->map.ar && in->map.ac && n[o] < MAX_RECTS;
            if (!(*scattered >> o & 1) && plain) ok |= (uint32_t)1 << o;
            if (!plain) ok &= ~((uint32_t)1 << o);
            *scattered |= (uint32_t)1 << o;
            if (plain)
                r[o][n[o]++] = (rect){in->map.row0, in->map.col0, c->space[s].rows,
                                      c->space[s].cols};
        }
    for (int o = 0; o < g->n_operands; o++) {
        const fz_operand *w = &g->o[o];
        int64_t area = 0;
        int64_t tcols = w->t->ndim ? w->t->shape[w->t->ndim - 1] : 1;
        bool tiles = w->ld == w->cols && w->cols == tcols && w->off % tcols == 0;
        for (int i = 0; tiles && i < n[o]; i++) {
            area += r[o][i].rows * r[o][i].cols;
            tiles = r[o][i].r0 >= 0 && r[o][i].c0 >= 0 && r[o][i].r0 + r[o][i].rows <= w->rows &&
                    r[o][i].c0 + r[o][i].cols <= w->cols;
            for (int j = 0; tiles && j < i; j++) tiles = !overlap(r[o][i], r[o][j]);
        }
        for (int j = 0; j < g->n_operands; j++) /* another window of it also written */
            tiles = tiles && (j == o || g->o[j].t != w->t || !(*scattered >> j & 1));
        if (!tiles || area != w->rows * w->cols) ok &= ~((uint32_t)1 << o);
    }
    return ok;
}

/* Scatters into an operand broadcast along the rows (a bias) add every row
 * into one place; run on several threads, each thread sums its rows into
 * its own partial sums first. Their places; the elements per thread. */
static int64_t partial_slots(fz_prog *p) {
    int64_t n = 0;
    for (int s = 0; s < p->n_spaces; s++)
        for (int i = p->space[s].first; i < p->space[s].first + p->space[s].count; i++) {
            fz_inst *in = &p->inst[i];
            if (in->kind != FZ_SCATTER || in->map.ar) continue;
            in->slot = (int32_t)n;
            n += in->map.ac ? tg_vec_round(p->space[s].cols) : TG_VEC;
        }
    return n;
}

const fz_prog *tg__fz_backward_prog(tg_tape *tp, fz_group *g, uint64_t seeds, uint32_t wants) {
    fz_entry *e = g->entry;
    fz_variant *slot = NULL;
    fz_prog *p = e ? variant(e->bwd, &e->next_bwd, seeds, wants, &slot) : NULL;
    if (p) return p;
    cctx *c = context(tp, g);
    if (!c) return NULL;
    for (uint64_t left = seeds; left && !c->overflow;) backward_space(c, &left, wants);
    p = finish(tp, c, slot ? &slot->prog : NULL);
    if (!p) return NULL;
    p->write_ok = write_ok(c, &p->scattered);
    p->partials = partial_slots(p);
    if (slot) *slot = (fz_variant){p, seeds, wants};
    if (getenv("TG_FUSE_DUMP")) dump(g, p, "backward");
    return p;
}
