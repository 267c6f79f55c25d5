/* autograd/inspect.c - the tape walk and the memory report (tapegrad/inspect.h).
 *
 * Read-only: nothing here computes a pending fused value, sets an error on
 * the tape, or is called while recording. Errors go to tg_last_error(). */
#include "fuse.h"
#include "tapegrad/inspect.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static tg_status fail_arg(const char *fn, const char *what) {
    return tg__set_last_error(TG_ERR_ARG, "%s: %s", fn, what);
}

/* Node i of tp, or NULL with the error set. */
static const tg_node *node_at(const tg_tape *tp, int64_t i, const char *fn) {
    if (!tp) {
        fail_arg(fn, "tape is NULL");
        return NULL;
    }
    if (i < 0 || i >= tp->n_nodes) {
        tg__set_last_error(TG_ERR_INDEX, "%s: node %" PRId64 " out of range: the tape has %" PRId64
                           " nodes", fn, i, tp->n_nodes);
        return NULL;
    }
    return &tp->nodes[i];
}

static void describe_value(const tg_tape *tp, const tg_tensor *t, tg_tape_value *v) {
    memset(v, 0, sizeof *v);
    v->tensor = t;
    v->dtype = t->dtype;
    v->ndim = t->ndim;
    memcpy(v->shape, t->shape, sizeof t->shape);
    v->requires_grad = t->requires_grad;
    v->producer = t->tape == tp && t->owner == TG_OWN_ARENA ? t->node : -1;
}

/* The fused group of t named by its first recorded node, or -1. A group's
 * values are recorded in order, so that is its lowest node index. */
static int64_t group_of(const tg_tape *tp, const tg_tensor *t) {
    const fz_group *g = t->fz;
    if (!g) return -1;
    int64_t first = -1;
    for (int i = 0; i < g->n_values; i++) {
        const tg_tensor *u = g->v[i].t;
        if (!u || u->tape != tp || u->node < 0) continue;   /* a clone, or not recorded */
        if (first < 0 || u->node < first) first = u->node;
    }
    return first;
}

int64_t tg_tape_node_count(const tg_tape *tp) {
    if (!tp) return fail_arg("tape_node_count", "tape is NULL"), -1;
    return tp->n_nodes;
}

tg_status tg_tape_node_get(const tg_tape *tp, int64_t i, tg_tape_node_info *out) {
    if (!out) return fail_arg("tape_node_get", "out is NULL");
    const tg_node *n = node_at(tp, i, "tape_node_get");
    if (!n) return tg_last_status();
    memset(out, 0, sizeof *out);
    out->index = i;
    out->op = n->op->name;
    out->n_inputs = n->n_in;
    describe_value(tp, n->out, &out->output);
    out->needs_grad = n->op->vjp != NULL && n->out->requires_grad;
    out->fused_group = group_of(tp, n->out);
    return TG_OK;
}

tg_status tg_tape_node_input(const tg_tape *tp, int64_t i, int k, tg_tape_value *out) {
    if (!out) return fail_arg("tape_node_input", "out is NULL");
    const tg_node *n = node_at(tp, i, "tape_node_input");
    if (!n) return tg_last_status();
    if (k < 0 || k >= n->n_in)
        return tg__set_last_error(TG_ERR_INDEX, "tape_node_input: input %d out of range: node %"
                                  PRId64 " (%s) has %d", k, i, n->op->name, n->n_in);
    describe_value(tp, n->in[k], out);
    return TG_OK;
}

/* ---- memory ---------------------------------------------------------------------------- */

tg_status tg_tape_memory_get(const tg_tape *tp, tg_tape_memory *out) {
    if (!out) return fail_arg("tape_memory_get", "out is NULL");
    memset(out, 0, sizeof *out);
    if (!tp) return fail_arg("tape_memory_get", "tape is NULL");
    tg_tape_stats s;
    tg_tape_stats_get(tp, &s);
    *out = (tg_tape_memory){.activations = s.arena_activations, .gradients = s.arena_gradients,
                            .scratch = s.arena_scratch, .used = s.arena_used,
                            .peak = s.arena_peak, .capacity = s.arena_capacity};
    return TG_OK;
}

/* Arena bytes (blocks are TG_ALIGN-rounded) that node n's output holds on
 * its own: none for a view
 * (it shares its input's data), a pending fused value (in registers only) or
 * a fused value stored as a view of an operand. */
static uint64_t own_bytes(const tg_node *n) {
    const tg_tensor *t = n->out;
    if (!t->data || t->owner != TG_OWN_ARENA || (n->op->flags & TG_OP_VIEW)) return 0;
    if (t->fz && t->fz->v[t->fz_index].aliased) return 0;
    uint64_t bytes = (uint64_t)t->numel * tg_dtype_size(t->dtype);
    return (bytes + TG_ALIGN - 1) / TG_ALIGN * TG_ALIGN;
}

typedef struct op_bytes {
    const char *op;
    uint64_t bytes, nodes;
} op_bytes;

static int by_bytes_desc(const void *a, const void *b) {
    const op_bytes *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return strcmp(x->op, y->op);
}

/* Output bytes summed by op name into rows (at most cap); the row count.
 * Ops are told apart by name: user ops may share a descriptor's name only if
 * they are the same op. */
static int sum_by_op(const tg_tape *tp, op_bytes *rows, int cap) {
    int n_rows = 0;
    for (int64_t i = 0; i < tp->n_nodes; i++) {
        const tg_node *n = &tp->nodes[i];
        int r = 0;
        while (r < n_rows && strcmp(rows[r].op, n->op->name) != 0) r++;
        if (r == n_rows) {
            if (n_rows == cap) continue;   /* more kinds than rows: the table says so */
            rows[n_rows++] = (op_bytes){.op = n->op->name};
        }
        rows[r].bytes += own_bytes(n);
        rows[r].nodes++;
    }
    qsort(rows, (size_t)n_rows, sizeof *rows, by_bytes_desc);
    return n_rows;
}

enum { REPORT_OPS = 64 };

tg_status tg_tape_memory_report(const tg_tape *tp, FILE *f) {
    tg_tape_memory m;
    if (!f) return fail_arg("tape_memory_report", "stream is NULL");
    if (tg_tape_memory_get(tp, &m) != TG_OK) return tg_last_status();
    op_bytes rows[REPORT_OPS];
    int n_rows = sum_by_op(tp, rows, REPORT_OPS);
    int w = fprintf(f, "tape arena (bytes)\n  activations %14" PRIu64 "\n  gradients   %14" PRIu64
                       "\n  scratch     %14" PRIu64 "\n  in use      %14" PRIu64
                       "\n  peak        %14" PRIu64 "\n  capacity    %14" PRIu64 "\n",
                    m.activations, m.gradients, m.scratch, m.used, m.peak, m.capacity);
    if (w >= 0) w = fprintf(f, "activations by op (%" PRId64 " nodes)\n", tp->n_nodes);
    for (int r = 0; r < n_rows && w >= 0; r++)
        w = fprintf(f, "  %-20s %14" PRIu64 "  %8" PRIu64 " nodes\n", rows[r].op, rows[r].bytes,
                    rows[r].nodes);
    if (w >= 0 && n_rows == REPORT_OPS) w = fprintf(f, "  (only the first %d op kinds)\n", REPORT_OPS);
    if (w < 0) return tg__set_last_error(TG_ERR_IO, "tape_memory_report: write failed");
    return TG_OK;
}
