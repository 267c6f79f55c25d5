/* tapegrad/tensor.h - dense row-major tensors.
 *
 * Ownership is visible in the name:
 *   tg_tensor_new / tg_tensor_wrap   caller owns the tensor (free with tg_tensor_free);
 *                                    wrap leaves the data buffer with the caller.
 *   tg_tape_tensor (tape.h)          the tape's arena owns it until tg_tape_reset.
 * Every op result is arena-owned. A caller-owned tensor with requires_grad set
 * is a leaf: backward accumulates into its gradient until tg_tensor_zero_grad.
 *
 * Errors: every function here accepts NULL. A NULL tensor, an index out of
 * range, a value an int32 cannot hold (NaN, 1e30), or an arena tensor used
 * after its tape's tg_tape_reset set the per-thread tg_last_error() and give
 * the "no value" answer of the function: NULL (pointers), -1 (ndim, numel,
 * dim), an invalid dtype (tg_dtype_name says "unknown"), NaN (get, item,
 * grad_get) or the status (set, fill, copy). */
#ifndef TAPEGRAD_TENSOR_H
#define TAPEGRAD_TENSOR_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_tensor tg_tensor;

/* New zero-filled tensor; NULL and tg_last_error() on a bad shape/dtype. */
TG_API tg_tensor *tg_tensor_new(tg_dtype dt, int ndim, const int64_t *shape);
/* Tensor over caller memory (not copied, not freed). BLIS may read up to 64
 * bytes past the end of a matrix it writes; leave that much slack after data. */
TG_API tg_tensor *tg_tensor_wrap(tg_dtype dt, int ndim, const int64_t *shape, void *data);
/* New tensor holding values given as doubles (converted to dt). */
TG_API tg_tensor *tg_tensor_from(tg_dtype dt, int ndim, const int64_t *shape, const double *values);
/* Deep copy into a caller-owned tensor of another (or the same) dtype. */
TG_API tg_tensor *tg_tensor_clone(const tg_tensor *t, tg_dtype dt);
TG_API void tg_tensor_free(tg_tensor *t);   /* NULL is fine; arena tensors are ignored */

TG_API tg_dtype tg_tensor_dtype(const tg_tensor *t);
TG_API int tg_tensor_ndim(const tg_tensor *t);
TG_API int64_t tg_tensor_dim(const tg_tensor *t, int axis);   /* negative axis counts from the end */
TG_API const int64_t *tg_tensor_shape(const tg_tensor *t);
TG_API int64_t tg_tensor_numel(const tg_tensor *t);
TG_API void *tg_tensor_data(tg_tensor *t);
TG_API const void *tg_tensor_cdata(const tg_tensor *t);
/* Gradient buffer (same dtype and shape) or NULL if no gradient reached it. */
TG_API void *tg_tensor_grad(tg_tensor *t);

/* Element access by flat row-major index, converted through double. An int32
 * tensor takes values in its range, truncated toward zero (NaN is an error). */
TG_API double tg_tensor_get(const tg_tensor *t, int64_t flat);
TG_API tg_status tg_tensor_set(tg_tensor *t, int64_t flat, double v);
TG_API double tg_tensor_grad_get(const tg_tensor *t, int64_t flat);  /* 0 if no grad */
TG_API double tg_tensor_item(const tg_tensor *t);                    /* element 0 */
TG_API tg_status tg_tensor_fill(tg_tensor *t, double v);
/* Copy values between tensors of equal numel (dtypes may differ; into int32
 * every value must fit, checked before dst changes). */
TG_API tg_status tg_tensor_copy(tg_tensor *dst, const tg_tensor *src);

TG_API void tg_tensor_set_requires_grad(tg_tensor *t, bool on);
TG_API bool tg_tensor_requires_grad(const tg_tensor *t);
TG_API void tg_tensor_zero_grad(tg_tensor *t);

/* "[32,65]" into buf (always terminated); returns buf. */
TG_API char *tg_shape_str(const tg_tensor *t, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
