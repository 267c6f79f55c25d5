/* autograd/tools.h - the hooks of anomaly mode (anomaly.c) and the per-op
 * profiler (profile.c) in tg_apply, backward and the fused groups.
 *
 * Both are per tape and live behind tp->tools, NULL while neither is on: every
 * hook is an inline test of that pointer, so a tape without them pays one
 * predictable branch per op and per VJP (W5, docs/performance.md). */
#ifndef TG_TOOLS_H
#define TG_TOOLS_H

#include "fuse.h"

#include <stdio.h>

/* The line of user code that made a node (tapegrad/call_site.h). */
typedef struct tg__site {
    const char *file;
    int line;
} tg__site;

typedef struct tg__profile tg__profile;

struct tg__tools {
    bool anomaly;              /* tg_tape_set_anomaly / TG_ANOMALY=1              */
    tg__profile *prof;         /* tg_tape_profile_start / TG_PROFILE, else NULL   */
    const char *profile_path;  /* TG_PROFILE: written when the tape is freed      */
    tg__site *sites;           /* per node index, recorded by tg_apply            */
    int64_t cap_sites;
};

/* A timed region: its start and the time of regions timed inside the one
 * around it so far (restored at the end: exclusive times add up). */
typedef struct tg__span {
    double t0, outer_inner;
} tg__span;

/* ---- tape.c ---------------------------------------------------------------------------- */
/* tg_apply without the tools (the whole of it, after the NULL checks). */
TG_HIDDEN tg_tensor *tg__apply_plain(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                                     const void *attr);
/* tg_apply with the tools: site, timing, the anomaly check of the result. */
TG_HIDDEN tg_tensor *tg__tools_apply(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                                     const void *attr);
/* The tools of a new tape from the environment (TG_ANOMALY, TG_PROFILE); when
 * freed: TG_PROFILE's file written, the table printed, all freed. */
TG_HIDDEN void tg__tools_from_env(tg_tape *tp);
TG_HIDDEN void tg__tools_free(tg_tape *tp);
/* tp->tools, made when NULL; NULL when out of memory (error set on tp). */
TG_HIDDEN struct tg__tools *tg__tools_of(tg_tape *tp, const char *who);
/* Frees tp->tools when neither tool is on any more: the hooks are off again. */
TG_HIDDEN void tg__tools_maybe_drop(tg_tape *tp);

/* ---- the site of a node ------------------------------------------------------------------ */
TG_HIDDEN tg__site tg__site_now(void);
TG_HIDDEN tg__site tg__node_site(const tg_tape *tp, int64_t node);

/* ---- timing (profile.c) ---------------------------------------------------------------- */
TG_HIDDEN tg__span tg__prof_begin(tg__profile *p);
/* A forward op call (node NULL: not recorded), a VJP, a group, a walk. */
TG_HIDDEN void tg__prof_op(tg_tape *tp, tg__span s, const tg_op *op, int n_in,
                           tg_tensor *const *in, const tg_tensor *out, bool backward,
                           tg__site site);
TG_HIDDEN void tg__prof_group(tg_tape *tp, tg__span s, const fz_group *g, uint64_t values,
                              uint32_t written, bool backward);
TG_HIDDEN void tg__prof_walk(tg_tape *tp, tg__span s);

static inline tg__span tg__tools_begin(tg_tape *tp) {
    if (__builtin_expect(tp->tools == NULL, 1) || !tp->tools->prof) return (tg__span){0, 0};
    return tg__prof_begin(tp->tools->prof);
}

/* ---- anomaly checks (anomaly.c): 0, or -1 with TG_ERR_NUMERIC on the tape ---------------- */
TG_HIDDEN int tg__anomaly_forward(tg_tape *tp, const tg_op *op, int n_in, tg_tensor *const *in,
                                  const tg_tensor *out);
TG_HIDDEN int tg__anomaly_vjp(tg_tape *tp, const tg_node *n);
/* After a group's forward: its values with data, in recorded order. */
TG_HIDDEN int tg__anomaly_group_forward(tg_tape *tp, const fz_group *g);

/* ---- the hooks ------------------------------------------------------------------------ */
/* backward.c, after node n's VJP ran (or was skipped: no gradient reached it). */
TG_HIDDEN tg_status tg__tools_vjp_done(tg_tape *tp, tg_node *n, tg__span s, tg_status st);
static inline tg_status tg__tools_after_vjp(tg_tape *tp, tg_node *n, tg__span s, tg_status st) {
    return __builtin_expect(tp->tools == NULL, 1) ? st : tg__tools_vjp_done(tp, n, s, st);
}
/* fuse.c, fuse_exec.c: a group ran forward (values: the bits it stored now)
 * or backward (written: the operands whose gradients it wrote), rc its
 * result. rc, or -1 when the check failed. */
TG_HIDDEN int tg__tools_group_done(tg_tape *tp, const fz_group *g, tg__span s, uint64_t values,
                                   uint32_t written, bool backward, int rc);
static inline int tg__tools_after_group(tg_tape *tp, const fz_group *g, tg__span s,
                                        uint64_t values, uint32_t written, bool backward, int rc) {
    if (__builtin_expect(tp->tools == NULL, 1)) return rc;
    return tg__tools_group_done(tp, g, s, values, written, backward, rc);
}
/* fuse.c: in anomaly mode a group stores every value, so each can be checked. */
static inline uint64_t tg__tools_store_all(const tg_tape *tp, const fz_group *g) {
    if (__builtin_expect(tp->tools == NULL, 1) || !tp->tools->anomaly) return 0;
    uint64_t all = 0;
    for (int i = 0; i < g->n_values; i++)
        if (g->v[i].t) all |= (uint64_t)1 << i;
    return all;
}
/* fuse.c: in anomaly mode a group's backward runs its members one by one
 * (dissolved: its values were all stored), so each VJP is checked alone. */
static inline bool tg__tools_anomaly(const tg_tape *tp) {
    return __builtin_expect(tp->tools != NULL, 0) && tp->tools->anomaly;
}
/* backward.c, the end of tg_backward_ex: the walk's own time. */
static inline void tg__tools_after_walk(tg_tape *tp, tg__span s) {
    if (__builtin_expect(tp->tools != NULL, 0) && tp->tools->prof) tg__prof_walk(tp, s);
}
/* Every begin is ended exactly once (by one of the calls above), so the
 * exclusive times of nested regions add up: this one ends without a record. */
TG_HIDDEN void tg__prof_end_quiet(tg__profile *p, tg__span s);

/* dot.c: path written through a temporary file beside it and renamed. */
TG_HIDDEN tg_status tg__write_file_atomic(const char *who, const char *path,
                                          tg_status (*put)(const void *ctx, FILE *f),
                                          const void *ctx);

#endif
