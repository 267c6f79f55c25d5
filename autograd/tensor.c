/* autograd/tensor.c - tensor creation, access and gradients.
 *
 * Accessors give fused values their data first (a pending tensor is computed
 * when read, autograd/fuse.c), and the ones that may write let the groups
 * that read the tensor finish before it changes (tg__fuse_before_write). */
#include "fuse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tg_dtype_name(tg_dtype dt) {
    switch (dt) {
    case TG_F32: return "float32";
    case TG_F64: return "float64";
    case TG_I32: return "int32";
    }
    return "unknown";
}

size_t tg_dtype_size(tg_dtype dt) {
    switch (dt) {
    case TG_F32: return sizeof(float);
    case TG_F64: return sizeof(double);
    case TG_I32: return sizeof(int32_t);
    }
    return 0;
}

bool tg__is_float(tg_dtype dt) { return dt == TG_F32 || dt == TG_F64; }

int tg__axis(int axis, int ndim) {
    if (axis < 0) axis += ndim;
    return (axis < 0 || axis >= ndim) ? -1 : axis;
}

char *tg__shape_str(int ndim, const int64_t *shape, char *buf, size_t size) {
    size_t at = 0;
    if (size == 0) return buf;
    buf[0] = '\0';
    at += (size_t)snprintf(buf + at, size - at, "[");
    for (int i = 0; i < ndim && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (at < size) snprintf(buf + at, size - at, "]");
    return buf;
}

char *tg_shape_str(const tg_tensor *t, char *buf, size_t size) {
    if (!t) {
        snprintf(buf, size, "(null)");
        return buf;
    }
    return tg__shape_str(t->ndim, t->shape, buf, size);
}

int64_t tg__checked_numel(int ndim, const int64_t *shape, const char **why) {
    int64_t bounded = 1; /* product of the dims, zeros counted as 1 */
    bool empty = false;
    for (int i = 0; i < ndim; i++) {
        int64_t d = shape[i];
        if (d < 0) {
            *why = "negative dimension";
            return -1;
        }
        empty |= d == 0;
        /* no division on this path: it runs for every op result */
        if (d > 1 && (__builtin_mul_overflow(bounded, d, &bounded) || bounded > TG_MAX_NUMEL)) {
            *why = "more than 2^40 elements";
            return -1;
        }
    }
    return empty ? 0 : bounded;
}

int tg__check_new_shape(tg_tape *tp, const char *op, tg_dtype dt, int ndim,
                        const int64_t *shape) {
    if (dt != TG_F32 && dt != TG_F64 && dt != TG_I32)
        return tg_fail(tp, TG_ERR_DTYPE, op, "unknown dtype %d", (int)dt);
    if (ndim < 0 || ndim > TG_MAX_DIMS)
        return tg_fail(tp, TG_ERR_SHAPE, op, "ndim %d not in [0,%d]", ndim, TG_MAX_DIMS);
    if (ndim > 0 && !shape) return tg_fail(tp, TG_ERR_SHAPE, op, "shape is NULL for ndim %d", ndim);
    const char *why = "";
    if (tg__checked_numel(ndim, shape, &why) < 0) {
        char s[160];
        return tg_fail(tp, TG_ERR_SHAPE, op, "bad shape %s: %s",
                       tg__shape_str(ndim, shape, s, sizeof s), why);
    }
    return 0;
}

static tg_tensor *tensor_struct(tg_dtype dt, int ndim, const int64_t *shape) {
    tg_tensor *t = tg__calloc(1, sizeof *t);
    if (!t) return NULL;
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = tg__numel(ndim, shape);
    t->node = -1;
    return t;
}

tg_tensor *tg_tensor_new(tg_dtype dt, int ndim, const int64_t *shape) {
    if (tg__check_new_shape(NULL, "tensor_new", dt, ndim, shape)) return NULL;
    tg_tensor *t = tensor_struct(dt, ndim, shape);
    if (t) t->data = tg__calloc(1, (size_t)t->numel * tg_dtype_size(dt) + TG_SLACK);
    if (!t || !t->data) {
        free(t);
        tg__set_last_error(TG_ERR_NOMEM, "tensor_new: out of memory");
        return NULL;
    }
    t->owner = TG_OWN_HEAP;
    return t;
}

tg_tensor *tg_tensor_wrap(tg_dtype dt, int ndim, const int64_t *shape, void *data) {
    if (tg__check_new_shape(NULL, "tensor_wrap", dt, ndim, shape)) return NULL;
    if (!data) {
        tg__set_last_error(TG_ERR_ARG, "tensor_wrap: data is NULL");
        return NULL;
    }
    tg_tensor *t = tensor_struct(dt, ndim, shape);
    if (!t) {
        tg__set_last_error(TG_ERR_NOMEM, "tensor_wrap: out of memory");
        return NULL;
    }
    t->owner = TG_OWN_WRAP;
    t->data = data;
    return t;
}

/* ---- the handle a caller gives us ---------------------------------------------
 * NULL, or an arena tensor whose tape was reset since it was made (its memory
 * is being reused: the tape's generation moved on), is reported in the
 * per-thread last error as "<fn>: ..." and refused. The generation check is
 * cheap and catches the usual mistake, a tensor kept from the previous step;
 * once the struct's own memory has been handed out again it can no longer be
 * told apart from a live tensor. */
static bool usable(const tg_tensor *t, const char *fn) {
    if (!t) {
        tg__set_last_error(TG_ERR_ARG, "%s: tensor is NULL", fn);
        return false;
    }
    if (tg__tensor_stale(t)) {
        tg__set_last_error(TG_ERR_STATE, "%s: %s", fn, TG_STALE_TEXT);
        return false;
    }
    return true;
}

/* usable, with data: a pending fused value is computed first. */
static bool readable(const tg_tensor *t, const char *fn) {
    if (!usable(t, fn)) return false;
    if (tg__concrete((tg_tensor *)t) == 0) return true;
    tg__set_last_error(TG_ERR_NOMEM, "%s: out of memory (computing a fused value)", fn);
    return false;
}

/* readable and about to change: the groups that read t finish first. */
static bool writable(tg_tensor *t, const char *fn) {
    if (!readable(t, fn)) return false;
    tg__fuse_before_write(t);
    return true;
}

/* Element i of t, else the index error. */
static bool in_range(const tg_tensor *t, int64_t i, const char *fn) {
    if (i >= 0 && i < t->numel) return true;
    char s[160];
    tg__set_last_error(TG_ERR_INDEX, "%s: index %lld out of range [0,%lld) for %s", fn,
                       (long long)i, (long long)t->numel, tg_shape_str(t, s, sizeof s));
    return false;
}

static double load(const void *p, tg_dtype dt, int64_t i) {
    switch (dt) {
    case TG_F32: return ((const float *)p)[i];
    case TG_F64: return ((const double *)p)[i];
    case TG_I32: return ((const int32_t *)p)[i];
    }
    return 0;
}

/* v can be stored in dt: an int32 takes a finite value inside its range
 * (truncated toward zero, as a C cast); converting NaN or 1e30 is UB. */
static bool storable(tg_dtype dt, double v) {
    return dt != TG_I32 || (v > (double)INT32_MIN - 1 && v < (double)INT32_MAX + 1);
}

static bool check_storable(const tg_tensor *t, double v, const char *fn) {
    if (storable(t->dtype, v)) return true;
    tg__set_last_error(TG_ERR_ARG, "%s: %g does not fit an int32 tensor", fn, v);
    return false;
}

/* Only after storable(dt, v). */
static void store(void *p, tg_dtype dt, int64_t i, double v) {
    switch (dt) {
    case TG_F32: ((float *)p)[i] = (float)v; break;
    case TG_F64: ((double *)p)[i] = v; break;
    case TG_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    }
}

/* ---- creation from values, copies -------------------------------------------- */
tg_tensor *tg_tensor_from(tg_dtype dt, int ndim, const int64_t *shape, const double *values) {
    tg_tensor *t = tg_tensor_new(dt, ndim, shape);
    for (int64_t i = 0; t && values && i < t->numel; i++) {
        if (!check_storable(t, values[i], "tensor_from")) {
            tg_tensor_free(t);
            return NULL;
        }
        store(t->data, dt, i, values[i]);
    }
    return t;
}

tg_tensor *tg_tensor_clone(const tg_tensor *src, tg_dtype dt) {
    if (!readable(src, "tensor_clone")) return NULL;
    tg_tensor *t = tg_tensor_new(dt, src->ndim, src->shape);
    if (t && tg_tensor_copy(t, src) != TG_OK) {
        tg_tensor_free(t);
        return NULL;
    }
    return t;
}

void tg_tensor_free(tg_tensor *t) {
    if (!t || t->owner == TG_OWN_ARENA) return;
    tg__fuse_before_write(t);
    if (t->grad_on_heap) free(t->grad);
    if (t->owner == TG_OWN_HEAP) free(t->data);
    free(t);
}

tg_status tg_tensor_copy(tg_tensor *dst, const tg_tensor *src) {
    if (!readable(src, "tensor_copy") || !writable(dst, "tensor_copy")) return tg_last_status();
    if (dst->numel != src->numel) {
        char a[160], b[160];
        return tg__set_last_error(TG_ERR_SHAPE, "tensor_copy: sizes differ: %s <- %s",
                                  tg_shape_str(dst, a, sizeof a), tg_shape_str(src, b, sizeof b));
    }
    if (dst->dtype == src->dtype) {
        memmove(dst->data, src->data, (size_t)src->numel * tg_dtype_size(src->dtype));
        return TG_OK;
    }
    /* float to int32: every value must fit, checked before dst changes */
    for (int64_t i = 0; dst->dtype == TG_I32 && i < src->numel; i++)
        if (!check_storable(dst, load(src->data, src->dtype, i), "tensor_copy"))
            return TG_ERR_ARG;
    for (int64_t i = 0; i < src->numel; i++)
        store(dst->data, dst->dtype, i, load(src->data, src->dtype, i));
    return TG_OK;
}

/* ---- accessors ----------------------------------------------------------------- */
tg_dtype tg_tensor_dtype(const tg_tensor *t) {
    return usable(t, "tensor_dtype") ? t->dtype : (tg_dtype)-1;
}
int tg_tensor_ndim(const tg_tensor *t) { return usable(t, "tensor_ndim") ? t->ndim : -1; }
const int64_t *tg_tensor_shape(const tg_tensor *t) {
    return usable(t, "tensor_shape") ? t->shape : NULL;
}
int64_t tg_tensor_numel(const tg_tensor *t) { return usable(t, "tensor_numel") ? t->numel : -1; }
/* The caller may write through the pointer: from here on, until the next
 * call, groups no longer read t. */
void *tg_tensor_data(tg_tensor *t) { return writable(t, "tensor_data") ? t->data : NULL; }
const void *tg_tensor_cdata(const tg_tensor *t) {
    return readable(t, "tensor_cdata") ? t->data : NULL;
}
void *tg_tensor_grad(tg_tensor *t) {
    if (!usable(t, "tensor_grad")) return NULL;
    tg__grad_complete(t);
    return t->grad;
}

int64_t tg_tensor_dim(const tg_tensor *t, int axis) {
    if (!usable(t, "tensor_dim")) return -1;
    int a = tg__axis(axis, t->ndim);
    if (a >= 0) return t->shape[a];
    char s[160];
    tg__set_last_error(TG_ERR_AXIS, "tensor_dim: axis %d out of range for %s", axis,
                       tg_shape_str(t, s, sizeof s));
    return -1;
}

double tg_tensor_get(const tg_tensor *t, int64_t i) {
    if (!readable(t, "tensor_get") || !in_range(t, i, "tensor_get")) return NAN;
    return load(t->data, t->dtype, i);
}

tg_status tg_tensor_set(tg_tensor *t, int64_t i, double v) {
    if (!usable(t, "tensor_set") || !in_range(t, i, "tensor_set") ||
        !check_storable(t, v, "tensor_set") || !writable(t, "tensor_set"))
        return tg_last_status();
    store(t->data, t->dtype, i, v);
    return TG_OK;
}

double tg_tensor_grad_get(const tg_tensor *t, int64_t i) {
    if (!usable(t, "tensor_grad_get") || !in_range(t, i, "tensor_grad_get")) return NAN;
    tg__grad_complete((tg_tensor *)t);
    return t->grad ? load(t->grad, t->dtype, i) : 0.0;
}

double tg_tensor_item(const tg_tensor *t) {
    if (!readable(t, "tensor_item") || !in_range(t, 0, "tensor_item")) return NAN;
    return load(t->data, t->dtype, 0);
}

tg_status tg_tensor_fill(tg_tensor *t, double v) {
    if (!usable(t, "tensor_fill") || !check_storable(t, v, "tensor_fill") ||
        !writable(t, "tensor_fill"))
        return tg_last_status();
    for (int64_t i = 0; i < t->numel; i++) store(t->data, t->dtype, i, v);
    return TG_OK;
}

/* ---- gradients ------------------------------------------------------------------- */
void tg_tensor_set_requires_grad(tg_tensor *t, bool on) {
    if (usable(t, "tensor_set_requires_grad") && tg__is_float(t->dtype)) t->requires_grad = on;
}

bool tg_tensor_requires_grad(const tg_tensor *t) {
    return t && !tg__tensor_stale(t) && t->requires_grad;
}

void tg_tensor_zero_grad(tg_tensor *t) {
    if (!usable(t, "tensor_zero_grad")) return;
    if (t->grad) memset(t->grad, 0, (size_t)t->numel * tg_dtype_size(t->dtype));
    t->grad_lo = t->grad_hi = 0;
}
