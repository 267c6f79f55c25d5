/* autograd/tools.c - what anomaly mode and the profiler share: the call site
 * of each node, the per-tape state behind tp->tools, and the hooks that
 * tg_apply, backward and the fused groups call when it is set (tools.h). */
#include "tools.h"
#include "tapegrad/inspect.h"

#include <stdlib.h>
#include <string.h>

/* ---- call sites ------------------------------------------------------------------------
 * Set by the public macros (tapegrad/call_site.h) before every op and layer
 * call of user code; the library is built without them, so ops recorded
 * inside a layer keep the site of the user's layer call. */
/* initial-exec: the library is linked, not dlopen'd late; the default model
 * for PIC code calls __tls_get_addr, 12 instructions an op in W5 */
static _Thread_local __attribute__((tls_model("initial-exec"))) tg__site current_site;

void tg_call_site(const char *file, int line) {
    current_site.file = file;
    current_site.line = line;
}

tg__site tg__site_now(void) { return current_site; }

tg__site tg__node_site(const tg_tape *tp, int64_t node) {
    const struct tg__tools *t = tp->tools;
    if (!t || node < 0 || node >= t->cap_sites || node >= tp->n_nodes) return (tg__site){0};
    return t->sites[node];
}

/* Remember the site of the node just recorded (sites grow like the nodes). */
static void note_site(tg_tape *tp, int64_t node, tg__site site) {
    struct tg__tools *t = tp->tools;
    if (node >= t->cap_sites) {
        int64_t cap = t->cap_sites ? t->cap_sites : 1024;
        while (cap <= node) cap *= 2;
        tg__site *grown = realloc(t->sites, (size_t)cap * sizeof *grown);
        if (!grown) return;   /* the node goes without a site: "unknown" */
        tg__count_alloc();
        tp->heap_allocs++;
        memset(grown + t->cap_sites, 0, (size_t)(cap - t->cap_sites) * sizeof *grown);
        t->sites = grown;
        t->cap_sites = cap;
    }
    t->sites[node] = site;
}

/* ---- the per-tape state ---------------------------------------------------------------- */
struct tg__tools *tg__tools_of(tg_tape *tp, const char *who) {
    if (!tp->tools) {
        tp->tools = tg__calloc(1, sizeof *tp->tools);
        if (!tp->tools) tg_fail(tp, TG_ERR_NOMEM, who, "out of memory");
        else tp->heap_allocs++;
    }
    return tp->tools;
}

void tg__tools_maybe_drop(tg_tape *tp) {
    struct tg__tools *t = tp->tools;
    if (!t || t->anomaly || t->prof) return;
    free(t->sites);
    free(t);
    tp->tools = NULL;
}

void tg_tape_set_anomaly(tg_tape *tp, bool on) {
    if (!tp) return;
    if (on) {
        struct tg__tools *t = tg__tools_of(tp, "tape_set_anomaly");
        if (t) t->anomaly = true;
    } else if (tp->tools) {
        tp->tools->anomaly = false;
        tg__tools_maybe_drop(tp);
    }
}

bool tg_tape_anomaly(const tg_tape *tp) { return tp && tp->tools && tp->tools->anomaly; }

void tg__tools_from_env(tg_tape *tp) {
    const char *anomaly = getenv("TG_ANOMALY");
    if (anomaly && anomaly[0] && strcmp(anomaly, "0") != 0) tg_tape_set_anomaly(tp, true);
    const char *path = getenv("TG_PROFILE");
    if (path && path[0] && tg_tape_profile_start(tp) == TG_OK) tp->tools->profile_path = path;
}

void tg__tools_free(tg_tape *tp) {
    struct tg__tools *t = tp->tools;
    if (!t) return;
    if (t->prof && t->profile_path) {
        if (tg_tape_profile_write(tp, t->profile_path) != TG_OK)
            fprintf(stderr, "TG_PROFILE: %s\n", tg_last_error());
        tg_tape_profile_report(tp, stderr);
    }
    t->anomaly = false;
    tg_tape_profile_stop(tp);   /* frees tp->tools: neither tool is on now */
}

/* ---- the hooks -------------------------------------------------------------------------- */
tg_tensor *tg__tools_apply(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                           const void *attr) {
    tg__site site = current_site;
    tg__span s = tg__tools_begin(tp);
    int64_t recorded = tp->n_nodes;
    tg_tensor *out = tg__apply_plain(tp, op, n_in, in, attr);
    if (out && tp->n_nodes > recorded && out->node == tp->n_nodes - 1)
        note_site(tp, out->node, site);
    struct tg__tools *t = tp->tools;
    if (t->prof) tg__prof_op(tp, s, op, n_in, in, out, false, site);
    /* a pending fused value is checked when its group runs */
    if (out && t->anomaly && out->data && tg__anomaly_forward(tp, op, n_in, in, out) != 0)
        return NULL;
    return out;
}

tg_status tg__tools_vjp_done(tg_tape *tp, tg_node *n, tg__span s, tg_status st) {
    struct tg__tools *t = tp->tools;
    bool ran = n->out->grad != NULL;   /* else no gradient reached the node */
    if (t->prof) {
        if (ran) tg__prof_op(tp, s, n->op, n->n_in, n->in, n->out, true,
                             tg__node_site(tp, n->out->node));
        else tg__prof_end_quiet(t->prof, s);
    }
    if (st == TG_OK && ran && t->anomaly && tg__anomaly_vjp(tp, n) != 0) return tp->status;
    return st;
}

int tg__tools_group_done(tg_tape *tp, const fz_group *g, tg__span s, uint64_t values,
                         uint32_t written, bool backward, int rc) {
    struct tg__tools *t = tp->tools;
    if (t->prof) tg__prof_group(tp, s, g, backward ? 0 : values, written, backward);
    /* in anomaly mode groups run no backward pass: they dissolve (fuse.c) */
    if (rc != 0 || !t->anomaly || backward) return rc;
    return tg__anomaly_group_forward(tp, g);
}
