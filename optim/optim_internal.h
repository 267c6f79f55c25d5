/* optim/optim_internal.h - struct layouts shared by the optim/ sources, and by
 * io/ whose checkpoints save and restore optimizer and schedule state.
 * Never installed. */
#ifndef TG_OPTIM_INTERNAL_H
#define TG_OPTIM_INTERNAL_H

#include "../autograd/internal.h"

#include "tapegrad/optim.h"

#define TG_OPTIM_SLOTS 3

/* Per-parameter state, indexed like the registry. A slot is NULL until the
 * update first needs it ("None" in PyTorch); it then holds numel elements in
 * the parameter's dtype. */
typedef struct tg_optim_pstate {
    int group;
    int64_t step;                       /* updates applied to this parameter */
    void *slot[TG_OPTIM_SLOTS];
    uint8_t fresh;                      /* bit k: slot k allocated, not yet used */
} tg_optim_pstate;

struct tg_optim {
    tg_optim_kind kind;
    tg_params *params;
    tg_optim_opts *groups;
    int n_groups, cap_groups;
    tg_optim_pstate *ps;
    int n_ps;
    int64_t steps;
};

typedef enum tg_sched_kind {
    TG_SCHED_STEP = 0,
    TG_SCHED_EXP,
    TG_SCHED_COSINE,
    TG_SCHED_PLATEAU
} tg_sched_kind;

struct tg_sched {
    tg_sched_kind kind;
    tg_optim *o;
    int n_groups;
    double *base;               /* each group's lr at creation                */
    int64_t epoch;
    int64_t step_size;          /* step                                       */
    double gamma;               /* step, exp                                  */
    int64_t warmup, total;      /* cosine                                     */
    double min_lr;              /* cosine                                     */
    tg_plateau_opts po;         /* plateau                                    */
    double best;
    int64_t num_bad, cooldown_counter;
};

/* Slot k's state name for a kind ("exp_avg", ...), NULL when unused. */
TG_HIDDEN const char *tg__optim_slot_name(tg_optim_kind kind, int k);
/* Grow the per-parameter state to the registry's current size. */
TG_HIDDEN tg_status tg__optim_sync(tg_optim *o);
/* Validate one group's hyperparameters; message prefixed by fn. */
TG_HIDDEN tg_status tg__optim_check_opts(const char *fn, tg_optim_kind k, const tg_optim_opts *g);
TG_HIDDEN const char *tg__sched_kind_name(tg_sched_kind k);
/* lr of a group at the schedule's current epoch (not plateau). */
TG_HIDDEN void tg__sched_apply(tg_sched *s);

#endif
