/* autograd/profile.c - the per-op profiler (tapegrad/inspect.h).
 *
 * Every timed region (an op call, a VJP, a fused group's pass, a backward's
 * walk) is a span; spans nest (a matmul that reads a pending value runs the
 * value's group inside its call), and each is charged only its exclusive
 * time: a span's time minus the spans inside it. So the entries add up to
 * the time of the outermost spans, with nothing counted twice.
 *
 * Totals live in a small hash table keyed by (label, call site, direction);
 * the label is the op's name or, for a fused group, "fused[mul,add,...]"
 * interned here. The first TG_PROFILE_MAX_EVENTS spans are kept as events
 * for the Chrome trace. */
#include "tools.h"
#include "tapegrad/inspect.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

typedef struct prof_entry {
    const char *label;          /* NULL: free slot                                 */
    tg__site site;
    bool backward;
    double self_s, bytes, flops;
    uint64_t calls;
} prof_entry;

typedef struct prof_event {
    double ts, dur;             /* seconds since the profile started; inclusive   */
    uint32_t entry;
} prof_event;

struct tg__profile {
    double inner;               /* exclusive time of spans inside the open one     */
    int depth;
    double start, span_s, fwd_s, bwd_s;
    uint64_t calls, dropped;
    prof_entry *tab;            /* open addressing, power-of-two size              */
    uint32_t cap, n;
    prof_event *ev;
    size_t n_ev, cap_ev;
    char **labels;              /* fused-group labels (heap), interned             */
    size_t n_labels, cap_labels;
};

/* ---- spans -------------------------------------------------------------------------------- */
tg__span tg__prof_begin(tg__profile *p) {
    tg__span s = {tg__seconds(), p->inner};
    p->inner = 0;
    p->depth++;
    return s;
}

/* Ends s: its inclusive time in *dur, exclusive time returned. */
static double span_end(tg__profile *p, tg__span s, double *dur) {
    *dur = tg__seconds() - s.t0;
    double self = *dur - p->inner;
    p->inner = s.outer_inner + *dur;
    if (--p->depth == 0) p->span_s += *dur;
    return self;
}

void tg__prof_end_quiet(tg__profile *p, tg__span s) {
    double dur;
    double self = span_end(p, s, &dur);
    p->inner -= self;   /* nothing charged: the outer span keeps this time as its own */
}

/* ---- the table ------------------------------------------------------------------------------ */
static uint64_t mix(uint64_t h, uint64_t x) { return (h ^ x) * 0x100000001b3ull; }

/* FNV-1a over the key's words: label and file are interned pointers. */
static uint64_t key_hash(const char *label, tg__site site, bool backward) {
    uint64_t h = mix(14695981039346656037ull, (uintptr_t)label);
    return mix(mix(h, (uintptr_t)site.file), (uint64_t)site.line * 2 + backward);
}

static prof_entry *entry_of(tg__profile *p, const char *label, tg__site site, bool backward) {
    if (2 * (p->n + 1) > p->cap) {
        uint32_t cap = p->cap ? 2 * p->cap : 256;
        prof_entry *tab = tg__calloc(cap, sizeof *tab);
        if (!tab) return NULL;
        for (uint32_t i = 0; i < p->cap; i++) {
            if (!p->tab[i].label) continue;
            const prof_entry *e = &p->tab[i];
            uint32_t j = (uint32_t)key_hash(e->label, e->site, e->backward) & (cap - 1);
            while (tab[j].label) j = (j + 1) & (cap - 1);
            tab[j] = *e;
        }
        free(p->tab);
        p->tab = tab;
        p->cap = cap;
    }
    uint32_t j = (uint32_t)key_hash(label, site, backward) & (p->cap - 1);
    for (;; j = (j + 1) & (p->cap - 1)) {
        prof_entry *e = &p->tab[j];
        if (!e->label) {
            *e = (prof_entry){.label = label, .site = site, .backward = backward};
            p->n++;
            return e;
        }
        if (e->label == label && e->site.file == site.file && e->site.line == site.line &&
            e->backward == backward)
            return e;
    }
}

static void add_event(tg__profile *p, double t0, double dur, const prof_entry *e) {
    if (p->n_ev == p->cap_ev) {
        size_t cap = p->cap_ev ? 2 * p->cap_ev : 4096;
        prof_event *grown =
            cap <= TG_PROFILE_MAX_EVENTS ? realloc(p->ev, cap * sizeof *grown) : NULL;
        if (!grown) {
            p->dropped++;
            return;
        }
        tg__count_alloc();
        p->ev = grown;
        p->cap_ev = cap;
    }
    p->ev[p->n_ev++] = (prof_event){t0 - p->start, dur, (uint32_t)(e - p->tab)};
}

/* Charge a span that ended to (label, site, direction). */
static void charge(tg__profile *p, tg__span s, const char *label, tg__site site, bool backward,
                   double bytes, double flops) {
    double dur, self = span_end(p, s, &dur);
    prof_entry *e = entry_of(p, label, site, backward);
    if (!e) {   /* out of memory: the time still counts in the totals */
        p->dropped++;
    } else {
        e->self_s += self;
        e->calls++;
        e->bytes += bytes;
        e->flops += flops;
        add_event(p, s.t0, dur, e);
    }
    *(backward ? &p->bwd_s : &p->fwd_s) += self;
    p->calls++;
}

/* ---- what is charged ------------------------------------------------------------------------ */
static double bytes_of(const tg_tensor *t) {
    return t ? (double)t->numel * (double)tg_dtype_size(t->dtype) : 0;
}

/* matmul: 2 M N K, K from the left operand (2-D or batched, either orientation). */
static double gemm_flops(const tg_op *op, tg_tensor *const *in, const tg_tensor *out) {
    if (!out || strcmp(op->name, "matmul") != 0 || out->ndim < 1 || out->numel == 0) return 0;
    double n = (double)out->shape[out->ndim - 1];
    double k = (double)in[0]->numel * n / (double)out->numel;
    return 2.0 * (double)out->numel * k;
}

void tg__prof_op(tg_tape *tp, tg__span s, const tg_op *op, int n_in, tg_tensor *const *in,
                 const tg_tensor *out, bool backward, tg__site site) {
    double bytes = bytes_of(out), flops = gemm_flops(op, in, out), wants = 0;
    for (int i = 0; i < n_in; i++) {
        bytes += bytes_of(in[i]);
        if (backward && in[i]->requires_grad) bytes += bytes_of(in[i]), wants++;
    }
    charge(tp->tools->prof, s, op->name, site, backward, bytes, backward ? flops * wants : flops);
}

/* "fused[mul,add,sigmoid]": g's member ops in recorded order, interned. */
static const char *group_label(tg__profile *p, const fz_group *g) {
    char buf[256];
    size_t at = (size_t)snprintf(buf, sizeof buf, "fused[");
    for (int i = 0; i < g->n_values && at < sizeof buf - 8; i++)
        at += (size_t)snprintf(buf + at, sizeof buf - 8 - at, "%s%s", i ? "," : "",
                               g->v[i].op->name);
    if (at >= sizeof buf - 8) at = sizeof buf - 8, memcpy(buf + at - 3, "...", 3);
    snprintf(buf + at, sizeof buf - at, "]");
    for (size_t i = 0; i < p->n_labels; i++)
        if (strcmp(p->labels[i], buf) == 0) return p->labels[i];
    if (p->n_labels == p->cap_labels) {
        size_t cap = p->cap_labels ? 2 * p->cap_labels : 32;
        char **grown = realloc(p->labels, cap * sizeof *grown);
        if (!grown) return "fused[...]";
        tg__count_alloc();
        p->labels = grown;
        p->cap_labels = cap;
    }
    char *copy = tg__malloc(strlen(buf) + 1);
    if (!copy) return "fused[...]";
    strcpy(copy, buf);
    return p->labels[p->n_labels++] = copy;
}

void tg__prof_group(tg_tape *tp, tg__span s, const fz_group *g, uint64_t values, uint32_t written,
                    bool backward) {
    tg__profile *p = tp->tools->prof;
    double bytes = 0;
    tg__site site = {0};
    for (int i = 0; i < g->n_values; i++) {
        const tg_tensor *t = g->v[i].t;
        if (!site.file && t && g->v[i].recorded) site = tg__node_site(tp, t->node);
        if (t && (values >> i & 1)) bytes += bytes_of(t);
        if (t && backward && t->grad) bytes += bytes_of(t);   /* a seed */
    }
    for (int i = 0; i < g->n_operands; i++) {
        double window = (double)(g->o[i].rows * g->o[i].cols) * (double)tg_dtype_size(g->dt);
        bytes += (written >> i & 1) ? 2 * window : window;
    }
    charge(p, s, group_label(p, g), site, backward, bytes, 0);
}

void tg__prof_walk(tg_tape *tp, tg__span s) {
    charge(tp->tools->prof, s, "backward (walk)", (tg__site){0}, true, 0, 0);
}

/* ---- start, stop, totals --------------------------------------------------------------------- */
static void profile_free(tg__profile *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_labels; i++) free(p->labels[i]);
    free(p->labels);
    free(p->tab);
    free(p->ev);
    free(p);
}

tg_status tg_tape_profile_start(tg_tape *tp) {
    if (!tp) return tg__set_last_error(TG_ERR_ARG, "tape_profile_start: tape is NULL");
    struct tg__tools *t = tg__tools_of(tp, "tape_profile_start");
    tg__profile *p = t ? tg__calloc(1, sizeof *p) : NULL;
    if (!p) {
        tg__tools_maybe_drop(tp);
        return tg__set_last_error(TG_ERR_NOMEM, "tape_profile_start: out of memory");
    }
    profile_free(t->prof);
    p->start = tg__seconds();
    t->prof = p;
    return TG_OK;
}

void tg_tape_profile_stop(tg_tape *tp) {
    if (!tp || !tp->tools) return;
    profile_free(tp->tools->prof);
    tp->tools->prof = NULL;
    tg__tools_maybe_drop(tp);
}

static const tg__profile *profile_of(const tg_tape *tp, const char *who) {
    if (!tp) {
        tg__set_last_error(TG_ERR_ARG, "%s: tape is NULL", who);
        return NULL;
    }
    if (!tp->tools || !tp->tools->prof)
        tg__set_last_error(TG_ERR_STATE, "%s: the tape is not profiling (tg_tape_profile_start)",
                           who);
    return tp->tools ? tp->tools->prof : NULL;
}

tg_status tg_tape_profile_totals_get(const tg_tape *tp, tg_tape_profile_totals *out) {
    const tg__profile *p = profile_of(tp, "tape_profile_totals_get");
    if (!out) return tg__set_last_error(TG_ERR_ARG, "tape_profile_totals_get: out is NULL");
    memset(out, 0, sizeof *out);
    if (!p) return tg_last_status();
    *out = (tg_tape_profile_totals){.forward_s = p->fwd_s, .backward_s = p->bwd_s,
                                    .total_s = p->fwd_s + p->bwd_s, .span_s = p->span_s,
                                    .calls = p->calls, .events = p->n_ev, .dropped = p->dropped};
    return TG_OK;
}

/* ---- the table ------------------------------------------------------------------------------ */
typedef struct prof_row {
    const char *label;
    tg__site site;
    double fwd_s, bwd_s, bytes, flops;
    uint64_t fwd_calls, bwd_calls;
} prof_row;

static int by_total(const void *a, const void *b) {
    const prof_row *x = a, *y = b;
    double tx = x->fwd_s + x->bwd_s, ty = y->fwd_s + y->bwd_s;
    return (tx < ty) - (tx > ty);
}

/* One row per (label, site): forward and backward side by side. */
static size_t rows_of(const tg__profile *p, prof_row *rows) {
    size_t n = 0;
    for (uint32_t i = 0; i < p->cap; i++) {
        const prof_entry *e = &p->tab[i];
        if (!e->label) continue;
        size_t r = 0;
        while (r < n && !(rows[r].label == e->label && rows[r].site.file == e->site.file &&
                          rows[r].site.line == e->site.line))
            r++;
        if (r == n) rows[n++] = (prof_row){.label = e->label, .site = e->site};
        *(e->backward ? &rows[r].bwd_s : &rows[r].fwd_s) += e->self_s;
        *(e->backward ? &rows[r].bwd_calls : &rows[r].fwd_calls) += e->calls;
        rows[r].bytes += e->bytes;
        rows[r].flops += e->flops;
    }
    qsort(rows, n, sizeof *rows, by_total);
    return n;
}

static const char *site_text(tg__site s, char *buf, size_t size) {
    if (!s.file) return "-";
    const char *base = strrchr(s.file, '/');
    snprintf(buf, size, "%s:%d", base ? base + 1 : s.file, s.line);
    return buf;
}

tg_status tg_tape_profile_report(const tg_tape *tp, FILE *f) {
    const tg__profile *p = profile_of(tp, "tape_profile_report");
    if (!p) return tg_last_status();
    if (!f) return tg__set_last_error(TG_ERR_ARG, "tape_profile_report: stream is NULL");
    prof_row *rows = tg__calloc(p->n ? p->n : 1, sizeof *rows);
    if (!rows) return tg__set_last_error(TG_ERR_NOMEM, "tape_profile_report: out of memory");
    size_t n = rows_of(p, rows);
    double total = p->fwd_s + p->bwd_s;
    fprintf(f, "profile: %llu timed calls, forward %.3f ms, backward %.3f ms, total %.3f ms "
               "(outermost calls %.3f ms)\n",
            (unsigned long long)p->calls, 1e3 * p->fwd_s, 1e3 * p->bwd_s, 1e3 * total,
            1e3 * p->span_s);
    fprintf(f, "%-40s %-24s %10s %8s %10s %8s %9s %8s %6s\n", "op", "site", "fwd ms", "calls",
            "vjp ms", "calls", "MB", "GFLOP", "share");
    for (size_t i = 0; i < n; i++) {
        const prof_row *r = &rows[i];
        char at[200];
        fprintf(f, "%-40.40s %-24.24s %10.3f %8llu %10.3f %8llu %9.1f %8.3f %5.1f%%\n", r->label,
                site_text(r->site, at, sizeof at), 1e3 * r->fwd_s,
                (unsigned long long)r->fwd_calls, 1e3 * r->bwd_s,
                (unsigned long long)r->bwd_calls, r->bytes / 1e6, r->flops / 1e9,
                total > 0 ? 100 * (r->fwd_s + r->bwd_s) / total : 0);
    }
    free(rows);
    if (p->dropped) fprintf(f, "(%llu calls not kept as trace events)\n",
                            (unsigned long long)p->dropped);
    return tg_tape_memory_report(tp, f);
}

/* ---- Chrome trace -----------------------------------------------------------------------------
 * {"traceEvents": [{"name", "cat", "ph": "X", "ts", "dur", "pid", "tid",
 * "args": {"site"}}, ...], "displayTimeUnit": "ms"}. Each event is a cJSON
 * object printed and freed in turn: a million events held as one cJSON tree
 * would take gigabytes. */
static tg_status put_event(FILE *f, const tg__profile *p, const prof_event *ev, bool first) {
    const prof_entry *e = &p->tab[ev->entry];
    cJSON *o = cJSON_CreateObject();
    cJSON *args = o ? cJSON_AddObjectToObject(o, "args") : NULL;
    char at[600];
    bool ok = args && cJSON_AddStringToObject(o, "name", e->label) &&
              cJSON_AddStringToObject(o, "cat", e->backward ? "backward" : "forward") &&
              cJSON_AddStringToObject(o, "ph", "X") &&
              cJSON_AddNumberToObject(o, "ts", 1e6 * ev->ts) &&
              cJSON_AddNumberToObject(o, "dur", 1e6 * ev->dur) &&
              cJSON_AddNumberToObject(o, "pid", 1) && cJSON_AddNumberToObject(o, "tid", 1) &&
              cJSON_AddStringToObject(args, "site", site_text(e->site, at, sizeof at));
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text) return tg__set_last_error(TG_ERR_NOMEM, "tape_profile_write: out of memory");
    bool written = fputs(first ? "\n" : ",\n", f) >= 0 && fputs(text, f) >= 0;
    free(text);
    return written ? TG_OK : tg__set_last_error(TG_ERR_IO, "tape_profile_write: write failed");
}

static tg_status put_trace(const void *ctx, FILE *f) {
    const tg__profile *p = ctx;
    if (fputs("{\"displayTimeUnit\": \"ms\", \"traceEvents\": [", f) < 0)
        return tg__set_last_error(TG_ERR_IO, "tape_profile_write: write failed");
    for (size_t i = 0; i < p->n_ev; i++) {
        tg_status st = put_event(f, p, &p->ev[i], i == 0);
        if (st != TG_OK) return st;
    }
    if (fputs("\n]}\n", f) < 0)
        return tg__set_last_error(TG_ERR_IO, "tape_profile_write: write failed");
    return TG_OK;
}

tg_status tg_tape_profile_write(const tg_tape *tp, const char *path) {
    const tg__profile *p = profile_of(tp, "tape_profile_write");
    if (!p) return tg_last_status();
    return tg__write_file_atomic("tape_profile_write", path, put_trace, p);
}
