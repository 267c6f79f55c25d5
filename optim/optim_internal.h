/* optim/optim_internal.h - struct layouts shared by the optim/ sources (checkpoints
 * read and restore optimizer and schedule state). Never installed. */
#ifndef TG_OPTIM_INTERNAL_H
#define TG_OPTIM_INTERNAL_H

#include "../autograd/internal.h"

#include <cjson/cJSON.h>
#include "tapegrad/io.h"
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

/* Writer entry with raw bytes (copied), for dtypes tensors do not have
 * ("I64", "U64"). */
TG_HIDDEN tg_status tg__st_writer_add_raw(tg_safetensors_writer *w, const char *name,
                                          const char *dtype, int ndim, const int64_t *shape,
                                          const void *data, size_t nbytes);
/* The label used in messages ("ckpt.safetensors" or "<memory>"). */
TG_HIDDEN const char *tg__st_label(const tg_safetensors *f);
/* Convert file entry i into dst (its numel elements of dt); errors name
 * fn, the file and the tensor. */
TG_HIDDEN tg_status tg__st_convert(const tg_safetensors *f, int i, tg_dtype dt, void *dst,
                                   const char *fn);
/* Bytes per element of a safetensors dtype name, 0 if unknown. */
TG_HIDDEN size_t tg__st_dtype_size(const char *dtype);

/* ---- checkpoints (checkpoint.c, ckpt_json.c) ---------------------------------- */
/* Names under "tapegrad." and "__metadata__" are not parameters. */
TG_HIDDEN bool tg__reserved_name(const char *name);
/* Record "<fn>: <file label>: <what>" as the last error; returns st. */
TG_HIDDEN tg_status tg__lerr(const char *fn, const tg_safetensors *f, tg_status st,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Convert file entry `name` into a new malloc'd buffer shaped and typed like t;
 * a missing entry or another shape is an error naming it. */
TG_HIDDEN tg_status tg__stage_like(const char *fn, const tg_safetensors *f, const char *name,
                                   const tg_tensor *t, void **out);
/* Every parameter's data from f (per o), staged[i] NULL when absent and allowed. */
TG_HIDDEN tg_status tg__stage_params(const char *fn, const tg_params *p, const tg_safetensors *f,
                                     const tg_load_opts *o, void ***staged);
TG_HIDDEN void tg__commit_params(tg_params *p, void **staged);
TG_HIDDEN void tg__free_staged(void **b, int n);
/* malloc'd a + b + c. */
TG_HIDDEN char *tg__join3(const char *a, const char *b, const char *c);

/* JSON values are strings holding exact numbers ("%.17g", "%lld"). */
TG_HIDDEN bool tg__json_put_num(cJSON *o, const char *key, double v);
TG_HIDDEN bool tg__json_put_int(cJSON *o, const char *key, int64_t v);
TG_HIDDEN bool tg__json_num(const cJSON *x, double *v);
TG_HIDDEN bool tg__json_get_num(const cJSON *o, const char *key, double *v);
TG_HIDDEN bool tg__json_get_int(const cJSON *o, const char *key, int64_t *v);
TG_HIDDEN bool tg__opts_to_json(cJSON *o, const tg_optim_opts *g);
TG_HIDDEN bool tg__opts_from_json(const cJSON *o, tg_optim_opts *g);
TG_HIDDEN bool tg__sched_to_json(cJSON *o, const tg_sched *s);
TG_HIDDEN bool tg__sched_from_json(const cJSON *o, tg_sched *s);

#endif
