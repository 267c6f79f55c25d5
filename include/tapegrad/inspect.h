/* tapegrad/inspect.h - seeing inside a recorded tape: walk its nodes, draw it
 * with Graphviz, report where its arena memory goes.
 *
 * Everything here only reads the tape: no value is computed (a pending fused
 * value stays pending), no error is set on the tape, and nothing runs on the
 * recording path, so a program that never calls these pays nothing.
 *
 *   tg_tape_node_info n;
 *   for (int64_t i = 0; i < tg_tape_node_count(tp); i++)
 *       if (tg_tape_node_get(tp, i, &n) == TG_OK)
 *           printf("%lld %s group %lld\n", (long long)i, n.op, (long long)n.fused_group);
 *   tg_tape_write_dot(tp, "cell.dot");     // then: dot -Tpng cell.dot -o cell.png
 *   tg_tape_memory_report(tp, stderr);
 *
 * Errors (a NULL tape or output, an index out of range, a file that cannot be
 * written) return a status and set tg_last_error(), e.g.
 * "tape_node_get: node 12 out of range: the tape has 9 nodes". */
#ifndef TAPEGRAD_INSPECT_H
#define TAPEGRAD_INSPECT_H

#include "tape.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One tensor a node reads or makes. */
typedef struct tg_tape_value {
    const tg_tensor *tensor;   /* its identity (edges of the graph); do not free   */
    tg_dtype dtype;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    bool requires_grad;
    /* The node of this tape that made it, or -1: a leaf (a parameter, an
     * input, a tape tensor) or the result of an op that was not recorded. */
    int64_t producer;
} tg_tape_value;

/* One recorded op, in recording order (backward replays them in reverse). */
typedef struct tg_tape_node_info {
    int64_t index;
    const char *op;            /* the op's name, "matmul", "sigmoid", ...          */
    int n_inputs;              /* tg_tape_node_input for k < n_inputs              */
    tg_tape_value output;
    /* Backward calls this node's VJP (the op has one and its output wants a
     * gradient); which inputs receive one: their requires_grad. */
    bool needs_grad;
    /* Elementwise ops run lazily in fused groups (docs/ARCHITECTURE.md,
     * section 6): the index of the group's first node, the same for every
     * node of the group; -1 when the op ran alone (fusion off, a non-fusible
     * op, a group dissolved back into single ops). */
    int64_t fused_group;
} tg_tape_node_info;

/* Recorded nodes since the last reset; -1 (and tg_last_error) for NULL. */
TG_API int64_t tg_tape_node_count(const tg_tape *tp);
/* Node i, 0 <= i < tg_tape_node_count(tp). */
TG_API tg_status tg_tape_node_get(const tg_tape *tp, int64_t i, tg_tape_node_info *out);
/* Input k of node i, in the op's call order. */
TG_API tg_status tg_tape_node_input(const tg_tape *tp, int64_t i, int k, tg_tape_value *out);

/* The recorded tape as a Graphviz digraph: a box per op with its output's
 * shape and dtype, an edge per tensor read, leaves as ellipses (those that
 * require grad, the parameters, filled), the fused groups as dashed
 * clusters. The file is written beside path and renamed over it, so a
 * failed write leaves an existing file as it was. Render with
 *   dot -Tpng cell.dot -o cell.png */
TG_API tg_status tg_tape_write_dot(const tg_tape *tp, const char *path);
/* The same text to an open stream. */
TG_API tg_status tg_tape_print_dot(const tg_tape *tp, FILE *f);

/* Arena memory by owner, in bytes. Parameters and optimizer state are not
 * here: they never live in a tape's arena (the caller and the optimizer own
 * them; tapegrad/optim.h). */
typedef struct tg_tape_memory {
    uint64_t activations;   /* op results and tape tensors (kept for backward)       */
    uint64_t gradients;     /* gradients of intermediates                            */
    uint64_t scratch;       /* recorded inputs and attributes, op scratch, fusion    */
    uint64_t used;          /* all three, plus alignment padding                     */
    uint64_t peak;          /* most bytes in use at once since the tape was made     */
    uint64_t capacity;      /* what the arena holds                                  */
} tg_tape_memory;

TG_API tg_status tg_tape_memory_get(const tg_tape *tp, tg_tape_memory *out);
/* A table: the owners above, then the activation bytes of the recorded nodes'
 * outputs summed by op kind, largest first. */
TG_API tg_status tg_tape_memory_report(const tg_tape *tp, FILE *f);

/* ---- anomaly mode ------------------------------------------------------------
 * After every op's forward (a fused group: after the group ran, every value
 * of it checked in recorded order) and every VJP (a fused group's: every
 * gradient it wrote), the results are checked for NaN and Inf. The first one
 * stops the tape with TG_ERR_NUMERIC and a message naming the op, its shapes,
 * the direction and the line of the user's call (tapegrad/call_site.h), e.g.
 *   "log: anomaly in forward: -inf at element 0 of the output [4,8] (inputs
 *    [4,8]), called at cell.c:42"
 * Off by default; TG_ANOMALY=1 in the environment turns it on for new tapes.
 * In anomaly mode a fused group stores all its values (to check them) and a
 * matmul's deferred weight-gradient GEMMs run per step, as with fusion off. */
TG_API void tg_tape_set_anomaly(tg_tape *tp, bool on);
TG_API bool tg_tape_anomaly(const tg_tape *tp);

/* ---- per-op profiler -------------------------------------------------------------
 * While on, every op call (its whole tg_apply: checks, recording and
 * forward), every VJP, every fused group's forward and backward pass and
 * each backward's own walk are timed, exclusive of what they run inside
 * them (a group flushed by a matmul that reads its value counts as the
 * group's). Totals are kept per op kind and call site and direction, with
 * calls, bytes moved (inputs read and results written, from the shapes) and
 * FLOPs (matmul: 2 M N K forward, per input gradient in backward); the first
 * TG_PROFILE_MAX_EVENTS calls are kept as trace events as well.
 * TG_PROFILE=FILE in the environment profiles every new tape and, when the
 * tape is freed, writes FILE (Chrome trace JSON) and prints the table to
 * stderr. Totals accumulate across tg_tape_reset. */
enum { TG_PROFILE_MAX_EVENTS = 1 << 18 };

typedef struct tg_tape_profile_totals {
    double forward_s;     /* op calls and fused groups' forward passes          */
    double backward_s;    /* VJPs, fused groups' backward passes, the walks     */
    double total_s;       /* the two: the profile's total                       */
    /* Outermost timed calls only, summed: the time spent inside tapegrad
     * while profiling. total_s adds up to this (every moment of it belongs
     * to exactly one entry); tests compare them. */
    double span_s;
    uint64_t calls;       /* timed calls                                        */
    uint64_t events;      /* kept as trace events                               */
    uint64_t dropped;     /* not kept (past TG_PROFILE_MAX_EVENTS)              */
} tg_tape_profile_totals;

/* Start profiling (clears what was collected), or stop and drop it. */
TG_API tg_status tg_tape_profile_start(tg_tape *tp);
TG_API void tg_tape_profile_stop(tg_tape *tp);
TG_API tg_status tg_tape_profile_totals_get(const tg_tape *tp, tg_tape_profile_totals *out);
/* The table, largest total first: op (a fused group as "fused[mul,add,...]"),
 * call site, forward and VJP milliseconds and calls, MB moved, GFLOP, share;
 * then the totals and the memory report (tg_tape_memory_report). */
TG_API tg_status tg_tape_profile_report(const tg_tape *tp, FILE *f);
/* Chrome trace JSON ({"traceEvents": [...]}: open in Perfetto or
 * chrome://tracing), written beside path and renamed over it. */
TG_API tg_status tg_tape_profile_write(const tg_tape *tp, const char *path);

#ifdef __cplusplus
}
#endif

#endif
