/* autograd/tensor.c - tensor creation, access and gradients.
 *
 * Accessors give fused values their data first (a pending tensor is computed
 * when read, autograd/fuse.c), and the ones that may write let the groups
 * that read the tensor finish before it changes (tg__fuse_before_write). */
#include "fuse.h"

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

/* Shape validation shared by every constructor: the only user-facing checks. */
static bool shape_ok(const char *fn, tg_dtype dt, int ndim, const int64_t *shape) {
    if (dt != TG_F32 && dt != TG_F64 && dt != TG_I32) {
        tg__set_last_error(TG_ERR_DTYPE, "%s: unknown dtype %d", fn, (int)dt);
        return false;
    }
    if (ndim < 0 || ndim > TG_MAX_DIMS || (ndim > 0 && !shape)) {
        tg__set_last_error(TG_ERR_SHAPE, "%s: ndim %d not in [0,%d]", fn, ndim, TG_MAX_DIMS);
        return false;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && n > INT64_MAX / 16 / shape[i])) {
            char s[160];
            tg__set_last_error(TG_ERR_SHAPE, "%s: bad shape %s", fn,
                               tg__shape_str(ndim, shape, s, sizeof s));
            return false;
        }
        n *= shape[i];
    }
    return true;
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
    if (!shape_ok("tensor_new", dt, ndim, shape)) return NULL;
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
    if (!shape_ok("tensor_wrap", dt, ndim, shape)) return NULL;
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

tg_tensor *tg_tensor_from(tg_dtype dt, int ndim, const int64_t *shape, const double *values) {
    tg_tensor *t = tg_tensor_new(dt, ndim, shape);
    if (t && values)
        for (int64_t i = 0; i < t->numel; i++) tg_tensor_set(t, i, values[i]);
    return t;
}

tg_tensor *tg_tensor_clone(const tg_tensor *src, tg_dtype dt) {
    if (!src || tg__concrete((tg_tensor *)src) != 0) {
        tg__set_last_error(TG_ERR_ARG, "tensor_clone: tensor is NULL");
        return NULL;
    }
    tg_tensor *t = tg_tensor_new(dt, src->ndim, src->shape);
    if (t) tg_tensor_copy(t, src);
    return t;
}

void tg_tensor_free(tg_tensor *t) {
    if (!t || t->owner == TG_OWN_ARENA) return;
    tg__fuse_before_write(t);
    if (t->grad_on_heap) free(t->grad);
    if (t->owner == TG_OWN_HEAP) free(t->data);
    free(t);
}

tg_dtype tg_tensor_dtype(const tg_tensor *t) { return t->dtype; }
int tg_tensor_ndim(const tg_tensor *t) { return t->ndim; }
const int64_t *tg_tensor_shape(const tg_tensor *t) { return t->shape; }
int64_t tg_tensor_numel(const tg_tensor *t) { return t->numel; }
/* The caller may write through the pointer: from here on, until the next
 * call, groups no longer read t. */
void *tg_tensor_data(tg_tensor *t) {
    if (!t || tg__concrete(t) != 0) return NULL;
    tg__fuse_before_write(t);
    return t->data;
}

const void *tg_tensor_cdata(const tg_tensor *t) {
    return t && tg__concrete((tg_tensor *)t) == 0 ? t->data : NULL;
}
void *tg_tensor_grad(tg_tensor *t) {
    if (!t) return NULL;
    tg__grad_complete(t);
    return t->grad;
}

int64_t tg_tensor_dim(const tg_tensor *t, int axis) {
    int a = tg__axis(axis, t->ndim);
    return a < 0 ? -1 : t->shape[a];
}

static double load(const void *p, tg_dtype dt, int64_t i) {
    switch (dt) {
    case TG_F32: return ((const float *)p)[i];
    case TG_F64: return ((const double *)p)[i];
    case TG_I32: return ((const int32_t *)p)[i];
    }
    return 0;
}

static void store(void *p, tg_dtype dt, int64_t i, double v) {
    switch (dt) {
    case TG_F32: ((float *)p)[i] = (float)v; break;
    case TG_F64: ((double *)p)[i] = v; break;
    case TG_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    }
}

double tg_tensor_get(const tg_tensor *t, int64_t i) {
    if (!t || i < 0 || i >= t->numel || tg__concrete((tg_tensor *)t) != 0) return 0.0;
    return load(t->data, t->dtype, i);
}

void tg_tensor_set(tg_tensor *t, int64_t i, double v) {
    if (!t || i < 0 || i >= t->numel || tg__concrete(t) != 0) return;
    tg__fuse_before_write(t);
    store(t->data, t->dtype, i, v);
}

double tg_tensor_grad_get(const tg_tensor *t, int64_t i) {
    if (t) tg__grad_complete((tg_tensor *)t);
    return (t && t->grad && i >= 0 && i < t->numel) ? load(t->grad, t->dtype, i) : 0.0;
}

double tg_tensor_item(const tg_tensor *t) { return tg_tensor_get(t, 0); }

void tg_tensor_fill(tg_tensor *t, double v) {
    if (!t || tg__concrete(t) != 0) return;
    tg__fuse_before_write(t);
    for (int64_t i = 0; i < t->numel; i++) store(t->data, t->dtype, i, v);
}

tg_status tg_tensor_copy(tg_tensor *dst, const tg_tensor *src) {
    if (!dst || !src) {
        tg__set_last_error(TG_ERR_ARG, "tensor_copy: tensor is NULL");
        return TG_ERR_ARG;
    }
    if (tg__concrete((tg_tensor *)src) != 0 || tg__concrete(dst) != 0) {
        tg__set_last_error(TG_ERR_NOMEM, "tensor_copy: out of memory");
        return TG_ERR_NOMEM;
    }
    tg__fuse_before_write(dst);
    if (dst->numel != src->numel) {
        char a[160], b[160];
        tg__set_last_error(TG_ERR_SHAPE, "tensor_copy: sizes differ: %s <- %s",
                           tg_shape_str(dst, a, sizeof a), tg_shape_str(src, b, sizeof b));
        return TG_ERR_SHAPE;
    }
    if (dst->dtype == src->dtype) {
        memmove(dst->data, src->data, (size_t)src->numel * tg_dtype_size(src->dtype));
    } else {
        for (int64_t i = 0; i < src->numel; i++)
            store(dst->data, dst->dtype, i, load(src->data, src->dtype, i));
    }
    return TG_OK;
}

void tg_tensor_set_requires_grad(tg_tensor *t, bool on) {
    if (t && tg__is_float(t->dtype)) t->requires_grad = on;
}

bool tg_tensor_requires_grad(const tg_tensor *t) { return t && t->requires_grad; }

void tg_tensor_zero_grad(tg_tensor *t) {
    if (t && t->grad) memset(t->grad, 0, (size_t)t->numel * tg_dtype_size(t->dtype));
    if (t) t->grad_lo = t->grad_hi = 0;
}
