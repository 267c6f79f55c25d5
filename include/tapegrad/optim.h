/* tapegrad/optim.h - optimizers, gradient clipping, learning-rate schedules,
 * early stopping.
 *
 *   tg_optim *opt = tg_optim_new(TG_OPTIM_ADAM, params, 1e-3);
 *   tg_optim_add_group(opt, "*.bias", 1e-3, 0.0);    // biases: no weight decay
 *   for (...) {
 *       tg_params_zero_grad(params);
 *       tg_backward(tp, loss);
 *       tg_clip_grad_norm(params, 1.0);
 *       tg_optim_step(opt);                           // every parameter, one call
 *       tg_tape_reset(tp);
 *   }
 *
 * An optimizer walks the parameter registry (params.h) and owns its state
 * (moments, step counts). A parameter whose gradient never arrived
 * (tg_tensor_grad == NULL) is skipped, as PyTorch skips grad None; after
 * tg_params_zero_grad its gradient is zeros and the step does apply
 * (momentum, weight decay), as PyTorch 1.13's zero_grad(set_to_none=False).
 * Parameters added to the registry after the optimizer join group 0.
 * State is kept in the parameter's dtype, and so is the arithmetic (float32
 * parameters are updated in float32, as PyTorch does).
 *
 * ---- update formulas (PyTorch 1.13, per element) -------------------------
 * g is the gradient, p the parameter, t the step count of p after increment,
 * wd the weight decay, and every state starts at 0 unless noted.
 *
 * SGD        g += wd*p
 *            if momentum != 0:
 *                b = g                             (first step of p)
 *                b = momentum*b + (1-dampening)*g  (later steps)
 *                g = nesterov ? g + momentum*b : b
 *            p -= lr*g
 * RMSprop    g += wd*p
 *            v = alpha*v + (1-alpha)*g^2
 *            centered: a = alpha*a + (1-alpha)*g;  d = sqrt(v - a^2) + eps
 *            else:                                 d = sqrt(v) + eps
 *            momentum > 0: b = momentum*b + g/d;  p -= lr*b
 *            else:                                 p -= lr*g/d
 * Adam       g += wd*p                             (L2, coupled)
 *            m = beta1*m + (1-beta1)*g
 *            v = beta2*v + (1-beta2)*g^2
 *            amsgrad: vmax = max(vmax, v), used for v below
 *            p -= (lr/(1-beta1^t)) * m / (sqrt(v)/sqrt(1-beta2^t) + eps)
 *            (eps is added after the bias correction of sqrt(v))
 * AdamW      p *= 1 - lr*wd                        (decoupled, before the Adam step)
 *            then Adam with wd = 0
 * Adagrad    g += wd*p
 *            s = s + g^2                           (s starts at initial_accumulator_value)
 *            p -= lr/(1 + (t-1)*lr_decay) * g / (sqrt(s) + eps)
 * Adadelta   g += wd*p
 *            v = rho*v + (1-rho)*g^2
 *            delta = sqrt(u + eps) / sqrt(v + eps) * g
 *            u = rho*u + (1-rho)*delta^2
 *            p -= lr*delta
 *
 * ---- defaults (tg_optim_defaults: PyTorch 1.13) ----------------------------
 *            lr      other                                  Keras 2, where it differs
 * SGD        0.01*   momentum 0, dampening 0, nesterov off   --
 * RMSprop    0.01    alpha 0.99, eps 1e-8, momentum 0,       lr 0.001, rho (alpha) 0.9,
 *                    not centered                            eps 1e-7
 * Adam       0.001   betas (0.9, 0.999), eps 1e-8,           eps 1e-7 (and Keras puts eps
 *                    amsgrad off                             on the uncorrected sqrt(v))
 * AdamW      0.001   as Adam, weight_decay 0.01              tf.keras: weight_decay 0.004
 * Adagrad    0.01    lr_decay 0, initial_accumulator 0,      eps 1e-7 (tf.keras: lr 0.001,
 *                    eps 1e-10                               initial accumulator 0.1)
 * Adadelta   1.0     rho 0.9, eps 1e-6                       rho 0.95, eps 1e-7
 *                                                            (tf.keras: lr 0.001)
 * weight_decay is 0 except for AdamW. (*) PyTorch's SGD has no default lr.
 * tg_optim_keras_defaults returns the Keras 2 numbers, applied with the
 * PyTorch formulas above. */
#ifndef TAPEGRAD_OPTIM_H
#define TAPEGRAD_OPTIM_H

#include "params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tg_optim_kind {
    TG_OPTIM_SGD = 0,
    TG_OPTIM_RMSPROP,
    TG_OPTIM_ADAM,
    TG_OPTIM_ADAMW,
    TG_OPTIM_ADAGRAD,
    TG_OPTIM_ADADELTA
} tg_optim_kind;

/* Hyperparameters of one parameter group; each optimizer reads its own fields. */
typedef struct tg_optim_opts {
    double lr;
    double weight_decay;   /* all; AdamW applies it decoupled                  */
    double momentum;       /* SGD, RMSprop                                     */
    double dampening;      /* SGD                                              */
    bool nesterov;         /* SGD: needs momentum > 0 and dampening 0          */
    double alpha;          /* RMSprop smoothing constant                       */
    bool centered;         /* RMSprop                                          */
    double beta1, beta2;   /* Adam, AdamW: each in [0, 1)                      */
    bool amsgrad;          /* Adam, AdamW                                      */
    double eps;
    double lr_decay;       /* Adagrad                                          */
    double initial_accumulator_value; /* Adagrad                               */
    double rho;            /* Adadelta, in [0, 1]                              */
} tg_optim_opts;

typedef struct tg_optim tg_optim;

TG_API const char *tg_optim_kind_name(tg_optim_kind k);   /* "sgd", "adam", ... */
TG_API tg_optim_opts tg_optim_defaults(tg_optim_kind k);
TG_API tg_optim_opts tg_optim_keras_defaults(tg_optim_kind k);

/* One group holding every parameter of p, PyTorch defaults but lr. NULL and
 * tg_last_error() on a bad kind or hyperparameter. p must outlive the optimizer. */
TG_API tg_optim *tg_optim_new(tg_optim_kind k, tg_params *p, double lr);
/* Same with every hyperparameter given; o NULL means tg_optim_defaults(k). */
TG_API tg_optim *tg_optim_new_ex(tg_optim_kind k, tg_params *p, const tg_optim_opts *o);
TG_API void tg_optim_free(tg_optim *o);

/* Move every parameter whose name matches a shell pattern (fnmatch: "*.bias",
 * "encoder.*") into a new group with its own lr and weight decay; the other
 * hyperparameters are copied from group 0. Returns the group index (>= 1), or
 * -1 and tg_last_error() when nothing matches or a value is bad. A parameter
 * keeps its state when it changes group. */
TG_API int tg_optim_add_group(tg_optim *o, const char *pattern, double lr, double weight_decay);
TG_API int tg_optim_add_group_ex(tg_optim *o, const char *pattern, const tg_optim_opts *g);

TG_API tg_optim_kind tg_optim_kind_of(const tg_optim *o);
TG_API int tg_optim_group_count(const tg_optim *o);
TG_API int tg_optim_param_group(const tg_optim *o, int param_index);  /* -1 if out of range */
TG_API tg_optim_opts tg_optim_group_opts(const tg_optim *o, int group);
TG_API double tg_optim_lr(const tg_optim *o, int group);
TG_API tg_status tg_optim_set_lr(tg_optim *o, int group, double lr);   /* group -1: all */
TG_API tg_params *tg_optim_params(const tg_optim *o);
/* Number of tg_optim_step calls so far. */
TG_API int64_t tg_optim_steps(const tg_optim *o);

/* One update of every parameter that has a gradient (formulas above). */
TG_API tg_status tg_optim_step(tg_optim *o);
TG_API void tg_optim_zero_grad(tg_optim *o);   /* tg_params_zero_grad of its registry */

/* ---- gradient clipping (over every gradient in the registry) -------------
 * By global norm, as torch.nn.utils.clip_grad_norm_: n = sqrt(sum of g^2 over
 * all gradients); every gradient is multiplied by min(1, max_norm/(n + 1e-6)).
 * Returns n, the norm before clipping, or -1 with tg_last_error() when
 * max_norm < 0 or is NaN. A NaN or infinite n is returned and the gradients
 * are left unchanged (PyTorch would multiply them by NaN or 0), so the caller
 * can test the norm and skip the step. */
TG_API double tg_clip_grad_norm(tg_params *p, double max_norm);
/* Clamp every gradient element to [-clip, clip] (clip_grad_value_). */
TG_API tg_status tg_clip_grad_value(tg_params *p, double clip);

/* ---- learning-rate schedules ----------------------------------------------
 * A schedule drives the lr of every group of an optimizer, from each group's
 * lr at creation (its base lr). Creating it sets the epoch-0 lr; each
 * tg_sched_step advances the epoch t by one and sets the new lr, as
 * PyTorch's scheduler.step() once per epoch (or per update for warm-up).
 * Create it after the groups; the optimizer must outlive it.
 *   step       lr = base * gamma^floor(t / step_size)                (StepLR)
 *   exp        lr = base * gamma^t                                   (ExponentialLR)
 *   cosine     t <  warmup:  lr = base * (t+1)/warmup                (linear warm-up)
 *              t <  total:   lr = min_lr + (base - min_lr)
 *                                 * (1 + cos(pi*(t-warmup)/(total-warmup))) / 2
 *              t >= total:   lr = min_lr
 *   plateau    ReduceLROnPlateau: after each tg_sched_step_metric, if the metric
 *              did not improve on the best for more than `patience` calls,
 *              lr = max(lr*factor, min_lr) (changes smaller than eps are
 *              skipped), then `cooldown` calls are not counted. Improvement
 *              when minimising: rel: m < best*(1-threshold), abs: m < best -
 *              threshold; maximising mirrors it. */
typedef struct tg_sched tg_sched;

typedef struct tg_plateau_opts {
    bool maximize;          /* false: the metric is a loss                    */
    double factor;          /* 0.1, in [0, 1)                                 */
    int64_t patience;       /* 10                                             */
    double threshold;       /* 1e-4                                           */
    bool threshold_abs;     /* false: relative threshold                      */
    int64_t cooldown;       /* 0                                              */
    double min_lr;          /* 0 (every group)                                */
    double eps;             /* 1e-8                                           */
} tg_plateau_opts;

TG_API tg_plateau_opts tg_plateau_defaults(void);   /* PyTorch's, as above */

TG_API tg_sched *tg_sched_new_step(tg_optim *o, int64_t step_size, double gamma);
TG_API tg_sched *tg_sched_new_exp(tg_optim *o, double gamma);
TG_API tg_sched *tg_sched_new_cosine(tg_optim *o, int64_t warmup, int64_t total, double min_lr);
TG_API tg_sched *tg_sched_new_plateau(tg_optim *o, const tg_plateau_opts *po); /* NULL: defaults */
TG_API void tg_sched_free(tg_sched *s);

/* Advance one epoch. The plateau schedule needs a metric: TG_ERR_STATE here. */
TG_API tg_status tg_sched_step(tg_sched *s);
/* Advance one epoch with a validation metric (other schedules ignore it). */
TG_API tg_status tg_sched_step_metric(tg_sched *s, double metric);
TG_API int64_t tg_sched_epoch(const tg_sched *s);

/* ---- early stopping --------------------------------------------------------
 * Keras' EarlyStopping with restore_best_weights: each update compares the
 * metric with the best so far; an improvement (minimising: m < best - min_delta)
 * snapshots every parameter (in memory, or crash-safely to a safetensors file
 * when path is set) and resets the wait; otherwise wait += 1 and *stop turns
 * true once wait >= patience. NaN never improves. tg_early_stop_restore copies
 * the best parameters back into the registry. */
typedef struct tg_early_stop_opts {
    bool maximize;        /* watch accuracy-like metrics                    */
    double min_delta;     /* >= 0                                           */
    int64_t patience;     /* >= 0                                           */
    const char *path;     /* NULL: keep the best in memory; else this file  */
} tg_early_stop_opts;

typedef struct tg_early_stop tg_early_stop;

/* o NULL: minimise, min_delta 0, patience 0, in memory (Keras' defaults). */
TG_API tg_early_stop *tg_early_stop_new(tg_params *p, const tg_early_stop_opts *o);
TG_API void tg_early_stop_free(tg_early_stop *e);
TG_API tg_status tg_early_stop_update(tg_early_stop *e, double metric, bool *stop);
TG_API tg_status tg_early_stop_restore(tg_early_stop *e);   /* TG_ERR_STATE before any best */
TG_API double tg_early_stop_best(const tg_early_stop *e);
TG_API int64_t tg_early_stop_best_epoch(const tg_early_stop *e); /* 0-based update index, -1 none */

#ifdef __cplusplus
}
#endif
#endif
