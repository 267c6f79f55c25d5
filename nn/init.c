/* nn/init.c - parameter initialisers and parameter naming.
 *
 * Everything draws from a caller-owned tg_rng in row-major order, so a seed
 * reproduces a model exactly. These write values into leaves; they are not
 * recorded and carry no gradient. */
#include "nn_private.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tg_status nn_error(tg_status st, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tg_set_last_error(st, "%s", msg);
}

tg_status nn_last(void) {
    tg_status st = tg_last_status();
    return st != TG_OK ? st : TG_ERR_ARG;
}

tg_initializer nn_init_or(tg_initializer init, tg_initializer fallback) {
    return init.kind == TG_INIT_DEFAULT ? fallback : init;
}

char *tg_param_name(char *buf, size_t size, const char *prefix, const char *leaf) {
    if (!buf || size == 0 || !leaf) return NULL;
    int n = (prefix && *prefix) ? snprintf(buf, size, "%s.%s", prefix, leaf)
                                : snprintf(buf, size, "%s", leaf);
    return (n < 0 || (size_t)n >= size) ? NULL : buf;
}

static bool float_tensor(const tg_tensor *t) {
    return t && (tg_tensor_dtype(t) == TG_F32 || tg_tensor_dtype(t) == TG_F64);
}

/* fan_in / fan_out of [out, in, k...] (1-D: its length for both). */
static void fans(const tg_tensor *t, double *fan_in, double *fan_out) {
    int nd = tg_tensor_ndim(t);
    if (nd == 0) {
        *fan_in = *fan_out = 1;
        return;
    }
    if (nd == 1) {
        *fan_in = *fan_out = (double)tg_tensor_dim(t, 0);
        return;
    }
    double field = 1;
    for (int i = 2; i < nd; i++) field *= (double)tg_tensor_dim(t, i);
    *fan_in = (double)tg_tensor_dim(t, 1) * field;
    *fan_out = (double)tg_tensor_dim(t, 0) * field;
}

tg_status tg_init_zeros(tg_tensor *t) {
    if (!float_tensor(t)) return nn_error(TG_ERR_ARG, "init: needs a float tensor");
    tg_tensor_fill(t, 0);
    return TG_OK;
}

tg_status tg_init_ones(tg_tensor *t) {
    if (!float_tensor(t)) return nn_error(TG_ERR_ARG, "init: needs a float tensor");
    tg_tensor_fill(t, 1);
    return TG_OK;
}

tg_status tg_init_uniform(tg_tensor *t, double lo, double hi, tg_rng *rng) {
    if (!float_tensor(t) || !rng || !(lo <= hi))
        return nn_error(TG_ERR_ARG, "init_uniform: needs a float tensor, an rng and lo <= hi");
    for (int64_t i = 0, n = tg_tensor_numel(t); i < n; i++)
        tg_tensor_set(t, i, lo + (hi - lo) * tg_rng_uniform(rng));
    return TG_OK;
}

tg_status tg_init_normal(tg_tensor *t, double mean, double std, tg_rng *rng) {
    if (!float_tensor(t) || !rng || !(std >= 0))
        return nn_error(TG_ERR_ARG, "init_normal: needs a float tensor, an rng and std >= 0");
    for (int64_t i = 0, n = tg_tensor_numel(t); i < n; i++)
        tg_tensor_set(t, i, mean + std * tg_rng_normal(rng));
    return TG_OK;
}

static tg_status glorot(tg_tensor *t, double gain, bool normal, tg_rng *rng) {
    if (!float_tensor(t)) return nn_error(TG_ERR_ARG, "init_glorot: needs a float tensor");
    double fi, fo;
    fans(t, &fi, &fo);
    if (fi + fo <= 0) return TG_OK;   /* empty tensor: nothing to draw */
    if (normal) return tg_init_normal(t, 0, gain * sqrt(2.0 / (fi + fo)), rng);
    double limit = gain * sqrt(6.0 / (fi + fo));
    return tg_init_uniform(t, -limit, limit, rng);
}

tg_status tg_init_glorot_uniform(tg_tensor *t, tg_rng *rng) { return glorot(t, 1, false, rng); }

/* Modified Gram-Schmidt on the columns of a [rows, cols] matrix (rows >= cols),
 * column-major in q: afterwards the columns are orthonormal. */
static void gram_schmidt(double *q, int64_t rows, int64_t cols) {
    for (int64_t j = 0; j < cols; j++) {
        double *qj = q + j * rows;
        for (int64_t k = 0; k < j; k++) {
            const double *qk = q + k * rows;
            double dot = 0;
            for (int64_t i = 0; i < rows; i++) dot += qk[i] * qj[i];
            for (int64_t i = 0; i < rows; i++) qj[i] -= dot * qk[i];
        }
        double norm = 0;
        for (int64_t i = 0; i < rows; i++) norm += qj[i] * qj[i];
        norm = sqrt(norm);
        for (int64_t i = 0; i < rows; i++) qj[i] = norm > 0 ? qj[i] / norm : 0;
    }
}

/* A random Gaussian matrix made orthonormal: the distribution Keras and
 * PyTorch use (QR of a normal matrix). t is read as [dim 0, rest]. */
tg_status tg_init_orthogonal(tg_tensor *t, double gain, tg_rng *rng) {
    if (!float_tensor(t) || !rng || tg_tensor_ndim(t) < 2)
        return nn_error(TG_ERR_ARG, "init_orthogonal: needs a float tensor of >= 2 dims and an rng");
    if (gain == 0) gain = 1;
    int64_t r = tg_tensor_dim(t, 0), n = tg_tensor_numel(t);
    int64_t c = r ? n / r : 0;
    if (n == 0) return TG_OK;
    int64_t big = r >= c ? r : c, small = r >= c ? c : r;
    double *q = malloc((size_t)n * sizeof *q);
    if (!q) return nn_error(TG_ERR_NOMEM, "init_orthogonal: out of memory");
    for (int64_t i = 0; i < n; i++) q[i] = tg_rng_normal(rng);
    gram_schmidt(q, big, small);
    /* q column j, entry i. r >= c: W[i][j] = q; else W = q^T: W[j][i] = q. */
    for (int64_t j = 0; j < small; j++)
        for (int64_t i = 0; i < big; i++)
            tg_tensor_set(t, r >= c ? i * c + j : j * c + i, gain * q[j * big + i]);
    free(q);
    return TG_OK;
}

tg_status tg_init_apply(tg_tensor *t, tg_initializer init, tg_rng *rng) {
    switch (init.kind) {
    case TG_INIT_ZEROS: return tg_init_zeros(t);
    case TG_INIT_ONES: return tg_init_ones(t);
    case TG_INIT_CONSTANT:
        if (!float_tensor(t)) return nn_error(TG_ERR_ARG, "init: needs a float tensor");
        tg_tensor_fill(t, init.a);
        return TG_OK;
    case TG_INIT_UNIFORM: return tg_init_uniform(t, init.a, init.b, rng);
    case TG_INIT_NORMAL: return tg_init_normal(t, init.a, init.b, rng);
    case TG_INIT_GLOROT_UNIFORM: return glorot(t, init.a == 0 ? 1 : init.a, false, rng);
    case TG_INIT_GLOROT_NORMAL: return glorot(t, init.a == 0 ? 1 : init.a, true, rng);
    case TG_INIT_ORTHOGONAL: return tg_init_orthogonal(t, init.a, rng);
    case TG_INIT_DEFAULT: break;
    }
    return nn_error(TG_ERR_ARG, "init: unknown or default initialiser kind %d", (int)init.kind);
}

tg_tensor *nn_param(tg_params *p, const char *prefix, const char *leaf, tg_dtype dt, int ndim,
                    const int64_t *shape, tg_initializer init, tg_rng *rng) {
    char name[NN_NAME_MAX];
    tg_clear_last_error();   /* so nn_last() reports this call's failure */
    if (!tg_param_name(name, sizeof name, prefix, leaf)) {
        nn_error(TG_ERR_ARG, "parameter name too long: '%s.%s'", prefix, leaf);
        return NULL;
    }
    if (dt != TG_F32 && dt != TG_F64) {
        nn_error(TG_ERR_DTYPE, "parameter '%s': dtype must be float32 or float64", name);
        return NULL;
    }
    tg_tensor *t = tg_params_create(p, name, dt, ndim, shape);
    if (t && tg_init_apply(t, init, rng) != TG_OK) return NULL;   /* stays in p, freed with it */
    return t;
}
