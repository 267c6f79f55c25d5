/* tapegrad/tape.h - the dynamic tape: recording, arena, backward, errors.
 *
 * Every op call runs its forward at once. If recording is on and any input
 * requires grad, the call is also appended to the tape. tg_backward replays
 * the tape in reverse, calling each op's VJP, and accumulates into leaves.
 *
 * Memory model: each intermediate lives in the tape's arena. tg_tape_reset
 * drops them all at once but keeps the arena's memory, so a loop that
 * records the same computation every step allocates nothing once warm.
 *
 * A recording is open from one tg_tape_reset to the next. While it is open,
 * do not modify in place (nor free) a tensor an op of it has read: backward
 * reads the inputs again, and a matmul's right operand that recurs (an RNN's
 * W_hh at every step) is packed once per recording and reused. Update
 * parameters (tg_optim_step) after backward, then reset: the usual loop.
 *
 * Threads: one tape per thread. Leaves (tensors no node of the tape made) may
 * be shared between threads for reading, but their gradients may not be
 * written by two backwards at once: a backward that finds a leaf held by
 * another tape's running backward fails with TG_ERR_STATE (instead of losing
 * updates). Give each thread its own leaves and sum their gradients after.
 *
 * Errors: the first error sticks on the tape (code + message such as
 * "matmul: inner dimensions differ: [32,65] x [128,1024]"); an op given a
 * NULL input returns NULL, so a whole cell can be written and checked once. */
#ifndef TAPEGRAD_TAPE_H
#define TAPEGRAD_TAPE_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_tape tg_tape;

typedef struct tg_tape_stats {
    uint64_t nodes;           /* ops recorded since last reset          */
    uint64_t arena_used;      /* bytes in use in the arena              */
    uint64_t arena_capacity;  /* bytes the arena holds                  */
    uint64_t heap_allocs;     /* heap allocations made by this tape, ever */
    /* GEMM engine, since reset: products run on a right operand packed once
     * per recording (an RNN's h W_hh^T, forward and backward); weight-gradient
     * contributions deferred by matmul VJPs, and the GEMMs they ran as (fewer
     * when successive steps' rows lie next to each other in memory). */
    uint64_t gemm_packed, gemm_deferred, gemm_merged;
    uint64_t arena_peak;      /* most bytes in use at once, ever        */
    /* arena_used by owner: op results and tape tensors, gradients of
     * intermediates, and the rest (recorded inputs and attributes, op
     * scratch, fusion groups) */
    uint64_t arena_activations, arena_gradients, arena_scratch;
} tg_tape_stats;

TG_API tg_tape *tg_tape_new(void);
TG_API void tg_tape_free(tg_tape *tp);
/* Forget all recorded ops and intermediates (keeps memory); clears the error.
 * Every arena tensor of the tape is dead from here: using one afterwards (as an
 * op input, with an accessor, in backward) is reported as an error while its
 * memory has not been handed out again (a generation check); keep what must
 * outlive a step in caller-owned tensors (tg_tensor_clone). */
TG_API void tg_tape_reset(tg_tape *tp);
TG_API void tg_tape_stats_get(const tg_tape *tp, tg_tape_stats *out);

/* Arena tensor, zero-filled, owned by the tape until reset. */
TG_API tg_tensor *tg_tape_tensor(tg_tape *tp, tg_dtype dt, int ndim, const int64_t *shape);

/* Errors */
TG_API tg_status tg_tape_status(const tg_tape *tp);
TG_API const char *tg_tape_error(const tg_tape *tp);  /* "" when fine */
TG_API void tg_tape_clear_error(tg_tape *tp);
/* Name what is running, for error messages: an error recorded while a scope
 * is set ends with " (in <scope>)", e.g.
 *   "matmul: inner dimensions differ: [4,9] x [8,8] (in rnn 'enc': cell mgu, layer 1 reverse, step 3)".
 * The tape keeps the pointer: the text must stay valid while it is the scope.
 * NULL clears it. Returns the previous scope, to restore when done. */
TG_API const char *tg_tape_set_scope(tg_tape *tp, const char *scope);

/* Recording control. No-grad scopes nest. */
TG_API void tg_no_grad_begin(tg_tape *tp);
TG_API void tg_no_grad_end(tg_tape *tp);
TG_API bool tg_tape_is_recording(const tg_tape *tp);
/* Training mode switches dropout on (default: training). */
TG_API void tg_tape_set_training(tg_tape *tp, bool training);
TG_API bool tg_tape_training(const tg_tape *tp);
/* BLIS threads for this tape's GEMMs (< 1: the default; clamped to 4 per
 * online core). Small GEMMs use fewer threads where that is measured to be
 * faster. */
TG_API void tg_tape_set_threads(tg_tape *tp, int n);
TG_API int tg_tape_threads(const tg_tape *tp);
/* Fusion (on by default; TG_FUSE=0 in the environment turns it off for new
 * tapes): chains of elementwise ops run as one pass over memory, forward and
 * backward, with the same results either way; and the weight-gradient GEMMs
 * of successive recurrent steps merge into one (ops/gemm_defer.c), which
 * reorders a sum: those gradients move within rounding. */
TG_API void tg_tape_set_fusion(tg_tape *tp, bool on);
TG_API bool tg_tape_fusion(const tg_tape *tp);

/* Same data, no gradient flows back through the result. */
TG_API tg_tensor *tg_detach(tg_tape *tp, tg_tensor *x);

/* Backward from a scalar (numel 1) loss: d loss = 1.
 * Calling it again on the same tape (before tg_tape_reset) replays the tape
 * again: intermediate gradients start fresh, and leaves accumulate a second
 * time, as PyTorch does with retain_graph=True (here everything a VJP needs
 * stays in the arena until reset, so there is nothing to retain). */
TG_API tg_status tg_backward(tg_tape *tp, tg_tensor *loss);
/* Backward from any recorded tensor with a given output gradient
 * (same shape; dtype of y). */
TG_API tg_status tg_backward_ex(tg_tape *tp, tg_tensor *y, const tg_tensor *dy);

/* Leaf gradient ready: a callback told, during each backward of this tape,
 * when a leaf's gradient is final, so work on it (an allreduce across
 * processes, tapegrad/dist.h) can start while the rest of the backward runs.
 *
 * Contract: a gradient is final when nothing later in the replay will add to
 * it. The replay runs from the output's node down to node 0, so that is after
 * the leaf's last consumer in the replay: the lowest-numbered node, among
 * those replayed, that takes the leaf as an input. fn is called once per
 * backward for every leaf that requires grad and is an input of a replayed
 * node (whether or not a gradient flowed into it: its gradient may be NULL
 * when none ever did), right after that node's VJP ran or was skipped;
 * leaves of one node in the order of its inputs, leaves of different nodes
 * in replay order. Leaves used only by nodes after the output, and tensors
 * that do not require grad, are not reported. After an error the backward
 * stops and the leaves not yet reported are not reported.
 * fn may read the gradient and data of the leaf it is given, and must not
 * record on, reset or run backward on this tape. fn NULL removes it; the
 * callback stays set across tg_tape_reset. Without one, backward does no
 * extra work. */
typedef void (*tg_grad_ready_fn)(tg_tensor *leaf, void *ctx);
TG_API void tg_tape_on_grad_ready(tg_tape *tp, tg_grad_ready_fn fn, void *ctx);


/* Activation checkpointing (torch.utils.checkpoint): run a span of ops and
 * keep only its outputs. fn computes outputs out[0..m-1] from in[0..n-1] on
 * the tape it is given (a sub-tape: the span's intermediates live there and
 * are dropped as soon as fn returns). During backward, when the replay
 * reaches the span, fn runs again on the sub-tape, recording, and the
 * outputs' gradients are backpropagated through that recording into the
 * inputs and into any leaf fn reads (parameters through ctx). The result is
 * bit for bit the gradient of running fn on this tape directly.
 *
 * fn must compute the same thing both times: the same ops on the same data
 * (ctx, and what it points at, valid and unchanged until backward: keep it in
 * the caller's memory or tg_tape_alloc). rng, if not NULL, is the
 * generator fn draws from (dropout): checkpoint saves its state before the
 * forward run and replays from it, then puts the caller's stream back.
 * Outputs are float tensors fn made on the tape it was given (or its
 * inputs); each becomes a new tensor of this tape (a copy; an output given
 * twice is one tensor). fn returns 0, or -1 with an error on the tape it was
 * given (copied to this one, naming "checkpoint"). Returns TG_OK or the error.
 * Inside tg_no_grad_begin fn simply runs once on this tape. A grad-ready
 * callback (tg_tape_on_grad_ready) is not told about leaves only fn reads.
 * tg_grad (grad.h) cannot go through a span: it fails naming
 * "checkpoint_output" (the span keeps no graph of its backward). */
typedef int (*tg_checkpoint_fn)(tg_tape *tp, void *ctx, tg_tensor *const *in, int n,
                                tg_tensor **out, int m);
TG_API tg_status tg_checkpoint(tg_tape *tp, tg_checkpoint_fn fn, void *ctx, tg_rng *rng,
                               tg_tensor *const *in, int n, tg_tensor **out, int m);
/* Most arena bytes the sub-tape of tp's checkpoints held at once (0 if none
 * ran): add it to tg_tape_stats' arena_peak for the memory checkpoints use. */
TG_API uint64_t tg_tape_checkpoint_peak(const tg_tape *tp);

#ifdef __cplusplus
}
#endif
#endif
