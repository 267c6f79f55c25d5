/* tapegrad/gradcheck.h - compare tape gradients with central differences.
 *
 * You give a function that builds an output from input tensors on a tape
 * (composed from any ops, built-in or your own). gradcheck:
 *   1. runs it on the inputs in their own dtype, backpropagates a fixed random
 *      output weighting w (so non-scalar outputs are covered): L = sum(w * f(x));
 *   2. runs it again in float64 on copies of the inputs, moving each element
 *      by +-eps: dL/dx ~ (L(x+eps) - L(x-eps)) / (2 eps);
 *   3. passes when |analytic - numeric| <= atol + rtol * |numeric| everywhere.
 * The function must be deterministic (seed any tg_rng inside it) and must work
 * in float64 (ops do). TG_I32 inputs are passed through and not checked. */
#ifndef TAPEGRAD_GRADCHECK_H
#define TAPEGRAD_GRADCHECK_H

#include "params.h"
#include "tape.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef tg_tensor *(*tg_fn)(tg_tape *tp, tg_tensor *const *inputs, void *user);

typedef struct tg_gradcheck_opts {
    double eps;          /* 0: 1e-6                                          */
    double atol;         /* 0: 1e-6 for float64 inputs, 1e-4 for float32     */
    double rtol;         /* 0: 1e-4 for float64 inputs, 1e-3 for float32     */
    uint64_t seed;       /* output weighting seed (0 is a valid seed)        */
    const bool *skip;    /* optional: skip[i] true = do not check input i    */
} tg_gradcheck_opts;

typedef struct tg_gradcheck_report {
    bool passed;
    double max_abs_err;
    double max_rel_err;    /* over elements whose abs error exceeds atol (0 if none) */
    int worst_input;       /* input index of the worst element (-1 if none) */
    int64_t worst_index;   /* flat index inside that input                  */
    double worst_analytic;
    double worst_numeric;
    int64_t checked;       /* elements compared                             */
    char message[256];     /* error text when the function itself failed    */
} tg_gradcheck_report;

/* Returns TG_OK when the check ran (see report->passed), else the error
 * (function returned NULL, ...), with report->message set. opts may be NULL. */
TG_API tg_status tg_gradcheck(tg_fn fn, void *user, int n_inputs, tg_tensor *const *inputs,
                              const tg_gradcheck_opts *opts, tg_gradcheck_report *report);

/* ---- second order: gradients of gradients ------------------------------------
 * With L = sum(w * f(x)) as above and G = dL/dx, checks the derivative of
 * M = sum_i sum(v_i * G_i) (v_i fixed random) computed by double backward
 * (tg_grad with create_graph, then tg_backward: every op's vjp_graph and the
 * VJPs of what it records) against central differences of M in float64, where
 * G comes from the ordinary first-order tg_backward. It first checks that
 * tg_grad's G equals tg_backward's (report->message says where not). Same
 * options and report as tg_gradcheck; an op on the way without a vjp_graph
 * makes it return that op's error. */
TG_API tg_status tg_gradgradcheck(tg_fn fn, void *user, int n_inputs, tg_tensor *const *inputs,
                                  const tg_gradcheck_opts *opts, tg_gradcheck_report *report);

/* ---- a whole model: every parameter of a registry ----------------------------
 * fn builds the output from your model, whose layers point at p's tensors, and
 * from whatever else it reads through user. Every float parameter of p that
 * requires grad is checked (opts->skip, if given, is indexed like p), with no
 * input indices to pack by hand. For the float64 pass the parameters and the
 * float tensors in data[0..n_data) (inputs, targets, initial states: read,
 * not checked) are switched in place to float64 copies and switched back
 * afterwards, so fn must take dtypes from its tensors (layers do). The
 * parameters' gradients are left zeroed. When the check fails,
 * report->message names the worst element:
 *   "gradcheck: rnn.weight_hh_l0[7]: analytic 0.31 vs numeric 0.29 (max abs err 0.02)"
 * and report->worst_input is its registry index. */
typedef tg_tensor *(*tg_model_fn)(tg_tape *tp, void *user);
TG_API tg_status tg_gradcheck_params(tg_params *p, tg_model_fn fn, void *user, int n_data,
                                     tg_tensor *const *data, const tg_gradcheck_opts *opts,
                                     tg_gradcheck_report *report);

#ifdef __cplusplus
}
#endif
#endif
