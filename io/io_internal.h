/* io/io_internal.h - what the io/ sources (safetensors reader and writer,
 * parameter files, training checkpoints) share. Never installed.
 *
 * io/ sits above optim/: a checkpoint saves and restores the optimizer's and
 * the schedule's private state, so it reads their struct layouts from
 * optim_internal.h. Nothing in optim/ includes this header (early stopping
 * saves its best parameters through the public io.h). */
#ifndef TG_IO_INTERNAL_H
#define TG_IO_INTERNAL_H

#include "../optim/optim_internal.h"

#include <cjson/cJSON.h>
#include "tapegrad/io.h"

/* ---- names (names.c) ------------------------------------------------------------ */
/* True when s is valid UTF-8; else *bad_at (may be NULL) is the first bad byte's offset. */
TG_HIDDEN bool tg__utf8_valid(const char *s, size_t *bad_at);

/* A 64-bit hash of a name (FNV-1a). */
TG_HIDDEN uint64_t tg__name_hash(const char *s);

/* A hash index from names to ids. It points at the names: they must outlive
 * it. Zero-initialised means empty. */
typedef struct tg__name_index {
    const char **key;
    int *id;
    size_t cap, n;
} tg__name_index;

enum { TG__NAME_ADDED = -1, TG__NAME_NOMEM = -2 };
/* The id of name, or -1. */
TG_HIDDEN int tg__name_index_find(const tg__name_index *x, const char *name);
/* Adds name -> id: TG__NAME_ADDED, the id already held by name, or TG__NAME_NOMEM. */
TG_HIDDEN int tg__name_index_add(tg__name_index *x, const char *name, int id);
TG_HIDDEN void tg__name_index_free(tg__name_index *x);
/* Index of a registry's names (ids: registry positions); TG_ERR_NOMEM or TG_OK. */
TG_HIDDEN tg_status tg__params_index(const tg_params *p, tg__name_index *x);

/* ---- safetensors (safetensors.c, st_writer.c) -------------------------------------- */
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
/* Every tensor of registry p from f, stored under prefix + its name ("" for
 * parameters), per o; staged[i] NULL when absent and allowed. */
TG_HIDDEN tg_status tg__stage_tensors(const char *fn, const tg_params *p, const tg_safetensors *f,
                                      const char *prefix, const tg_load_opts *o, void ***staged);
/* "tapegrad.carry.", where carried tensors live. */
TG_HIDDEN extern const char *const tg__carry_prefix;
TG_HIDDEN void tg__commit_tensors(tg_params *p, void **staged);
TG_HIDDEN void tg__free_staged(void **b, int n);
/* The all-zero xoshiro256** state, which only ever outputs zeros. */
TG_HIDDEN bool tg__rng_is_zero(const tg_rng *r);
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
