/* tapegrad/params.h - a named parameter registry.
 *
 * Layers create their parameters here; optimizers and checkpoints walk it.
 * Names are dotted paths such as "encoder.lstm.0.weight_ih". Tensors made by
 * tg_params_create belong to the registry (freed by tg_params_free); tensors
 * given to tg_params_add stay the caller's. */
#ifndef TAPEGRAD_PARAMS_H
#define TAPEGRAD_PARAMS_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_params tg_params;

TG_API tg_params *tg_params_new(void);
TG_API void tg_params_free(tg_params *p);

/* New zero-filled parameter with requires_grad set; NULL on a duplicate name
 * or bad shape (tg_last_error()). */
TG_API tg_tensor *tg_params_create(tg_params *p, const char *name, tg_dtype dt, int ndim,
                                   const int64_t *shape);
/* Register a caller-owned tensor under a name (a tape's tensor is refused:
 * it dies at the next tg_tape_reset). */
TG_API tg_status tg_params_add(tg_params *p, const char *name, tg_tensor *t);

TG_API int tg_params_count(const tg_params *p);
TG_API tg_tensor *tg_params_at(const tg_params *p, int i);
TG_API const char *tg_params_name(const tg_params *p, int i);
TG_API tg_tensor *tg_params_find(const tg_params *p, const char *name);   /* NULL if absent */
TG_API int64_t tg_params_numel(const tg_params *p);                       /* total elements */
TG_API void tg_params_zero_grad(tg_params *p);

#ifdef __cplusplus
}
#endif
#endif
