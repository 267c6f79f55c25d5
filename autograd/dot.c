/* autograd/dot.c - a recorded tape as a Graphviz digraph (tapegrad/inspect.h).
 *
 * Nodes are ops (a box: index, name, output shape and dtype) and leaves (an
 * ellipse: shape and dtype; filled when it requires grad, i.e. a parameter);
 * an edge runs from what made a tensor to each op that reads it. The nodes
 * of a fused group sit in a dashed cluster. Built on the tape walk only. */
#define _POSIX_C_SOURCE 200809L
#include "fuse.h"
#include "tapegrad/inspect.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "[4,8] float32" */
static void value_label(const tg_tape_value *v, char *buf, size_t size) {
    char shape[256];
    tg__shape_str(v->ndim, v->shape, shape, sizeof shape);
    snprintf(buf, size, "%s %s", shape, tg_dtype_name(v->dtype));
}

/* s inside a DOT string: quotes and backslashes escaped, control characters dropped. */
static void put_escaped(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if ((unsigned char)*s >= 0x20) fputc(*s, f);
    }
}

static void put_op(FILE *f, const tg_tape *tp, int64_t i, const char *indent) {
    tg_tape_node_info n;
    if (tg_tape_node_get(tp, i, &n) != TG_OK) return;
    char label[320];
    value_label(&n.output, label, sizeof label);
    fprintf(f, "%sn%lld [shape=box, label=\"%lld ", indent, (long long)i, (long long)i);
    put_escaped(f, n.op);
    fprintf(f, "\\n%s\"%s];\n", label, n.needs_grad ? "" : ", style=dotted");
}

/* The nodes of the fused group whose first node is `first`, in a cluster. */
static void put_group(FILE *f, const tg_tape *tp, int64_t first) {
    const fz_group *g = tp->nodes[first].out->fz;
    fprintf(f, "  subgraph cluster_g%lld {\n    style=dashed; label=\"fused group\";\n",
            (long long)first);
    for (int v = 0; v < g->n_values; v++) {
        const tg_tensor *t = g->v[v].t;
        if (t && t->tape == tp && t->node >= 0) put_op(f, tp, t->node, "    ");
    }
    fputs("  }\n", f);
}

static int by_address(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)*(const tg_tensor *const *)a, y = (uintptr_t)*(const tg_tensor *const *)b;
    return (x > y) - (x < y);
}

/* Each leaf once: an ellipse named by its address. -1 when out of memory. */
static int put_leaves(FILE *f, const tg_tape *tp) {
    size_t n_in = 0;
    for (int64_t i = 0; i < tp->n_nodes; i++) n_in += (size_t)tp->nodes[i].n_in;
    const tg_tensor **leaf = malloc((n_in ? n_in : 1) * sizeof *leaf);
    if (!leaf) return -1;
    size_t n = 0;
    tg_tape_value v;
    for (int64_t i = 0; i < tp->n_nodes; i++)
        for (int k = 0; k < tp->nodes[i].n_in; k++)
            if (tg_tape_node_input(tp, i, k, &v) == TG_OK && v.producer < 0) leaf[n++] = v.tensor;
    qsort(leaf, n, sizeof *leaf, by_address);
    for (size_t j = 0; j < n; j++) {
        if (j > 0 && leaf[j] == leaf[j - 1]) continue;
        char label[320];
        tg_tape_value lv = {.dtype = leaf[j]->dtype, .ndim = leaf[j]->ndim};
        memcpy(lv.shape, leaf[j]->shape, sizeof lv.shape);
        value_label(&lv, label, sizeof label);
        fprintf(f, "  \"L%p\" [shape=ellipse, label=\"%s\"%s];\n", (const void *)leaf[j], label,
                leaf[j]->requires_grad ? ", style=filled, fillcolor=lightblue" : "");
    }
    free(leaf);
    return 0;
}

static void put_edges(FILE *f, const tg_tape *tp) {
    tg_tape_value v;
    for (int64_t i = 0; i < tp->n_nodes; i++)
        for (int k = 0; k < tp->nodes[i].n_in; k++) {
            if (tg_tape_node_input(tp, i, k, &v) != TG_OK) continue;
            if (v.producer >= 0) fprintf(f, "  n%lld -> n%lld;\n", (long long)v.producer, (long long)i);
            else fprintf(f, "  \"L%p\" -> n%lld;\n", (const void *)v.tensor, (long long)i);
        }
}

tg_status tg_tape_print_dot(const tg_tape *tp, FILE *f) {
    if (!tp) return tg__set_last_error(TG_ERR_ARG, "tape_print_dot: tape is NULL");
    if (!f) return tg__set_last_error(TG_ERR_ARG, "tape_print_dot: stream is NULL");
    fputs("digraph tape {\n  graph [fontname=\"Helvetica\", fontsize=10];\n"
          "  node [fontname=\"Helvetica\", fontsize=10];\n", f);
    for (int64_t i = 0; i < tp->n_nodes; i++) {
        tg_tape_node_info n;
        if (tg_tape_node_get(tp, i, &n) != TG_OK) continue;
        if (n.fused_group < 0) put_op(f, tp, i, "  ");
        else if (n.fused_group == i) put_group(f, tp, i);
    }
    if (put_leaves(f, tp) != 0)
        return tg__set_last_error(TG_ERR_NOMEM, "tape_print_dot: out of memory");
    put_edges(f, tp);
    fputs("}\n", f);
    if (ferror(f)) return tg__set_last_error(TG_ERR_IO, "tape_print_dot: write failed");
    return TG_OK;
}

/* ---- the file: written beside path, then renamed over it --------------------------------- */

static tg_status file_fail(const char *who, const char *path, const char *what, int err) {
    return tg__set_last_error(TG_ERR_IO, "%s: %s: %s%s%s", who, path, what, err ? ": " : "",
                              err ? strerror(err) : "");
}

tg_status tg__write_file_atomic(const char *who, const char *path,
                                tg_status (*put)(const void *ctx, FILE *f), const void *ctx) {
    if (!path || !*path) return tg__set_last_error(TG_ERR_ARG, "%s: the path is empty", who);
    size_t len = strlen(path);
    char *tmp = malloc(len + sizeof ".tmp-XXXXXX");
    if (!tmp) return tg__set_last_error(TG_ERR_NOMEM, "%s: out of memory", who);
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp-XXXXXX", sizeof ".tmp-XXXXXX");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        tg_status st = file_fail(who, path, "cannot create a file beside it", errno);
        free(tmp);
        return st;
    }
    fchmod(fd, 0644);   /* mkstemp makes it 0600: a graph is not a secret */
    FILE *f = fdopen(fd, "w");
    tg_status st = f ? put(ctx, f) : file_fail(who, path, "cannot open", errno);
    if (!f) close(fd);
    else {
        if (st == TG_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0))
            st = file_fail(who, path, "write failed", errno);
        if (fclose(f) != 0 && st == TG_OK) st = file_fail(who, path, "write failed", errno);
    }
    if (st == TG_OK && rename(tmp, path) != 0) st = file_fail(who, path, "cannot replace it", errno);
    if (st != TG_OK) unlink(tmp);
    free(tmp);
    return st;
}

static tg_status put_dot(const void *tp, FILE *f) { return tg_tape_print_dot(tp, f); }

tg_status tg_tape_write_dot(const tg_tape *tp, const char *path) {
    if (!tp) return tg__set_last_error(TG_ERR_ARG, "tape_write_dot: tape is NULL");
    return tg__write_file_atomic("tape_write_dot", path, put_dot, tp);
}
