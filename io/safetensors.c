/* io/safetensors.c - a validating safetensors reader (format and guarantees
 * in io.h; the writer is st_writer.c).
 *
 * The reader never trusts the file: every length, offset and shape is
 * checked against the bytes actually read before any tensor is touched,
 * and every message names the tensor at fault. */
#include "io_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tapegrad's safetensors I/O assumes a little-endian host"
#endif

#define MAX_HEADER 100000000u   /* the limit the reference implementation uses */

typedef struct st_entry {
    char *name;
    char dtype[12];
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end;        /* offsets into the data section */
} st_entry;

struct tg_safetensors {
    unsigned char *buf;         /* the whole file                 */
    size_t len;
    const unsigned char *data;  /* after the header               */
    size_t data_len;
    st_entry *e;
    int n;
    tg__name_index index;       /* name -> entry                  */
    char **meta_key, **meta_val;
    int n_meta;
    char label[200];
};

static const struct { const char *name; size_t size; } dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"I64", 8}, {"U64", 8},     {"F64", 8},
};

size_t tg__st_dtype_size(const char *dt) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dt, dtypes[i].name) == 0) return dtypes[i].size;
    return 0;
}

const char *tg__st_label(const tg_safetensors *f) { return f->label; }

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = tg__malloc(n);
    if (c) memcpy(c, s, n);
    return c;
}

void tg_safetensors_close(tg_safetensors *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->e[i].name);
    for (int i = 0; i < f->n_meta; i++) free(f->meta_key[i]), free(f->meta_val[i]);
    free(f->e);
    tg__name_index_free(&f->index);
    free(f->meta_key);
    free(f->meta_val);
    free(f->buf);
    free(f);
}

/* Record a format error "safetensors: <label>: <what>"; returns NULL-able status. */
static tg_status ferr(const tg_safetensors *f, tg_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static tg_status ferr(const tg_safetensors *f, tg_status st, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    tg__set_last_error(st, "safetensors: %s: %s", f->label, what);
    return st;
}

/* ---- header validation ---------------------------------------------------- */
/* A JSON number that is an exact integer in [0, 2^53]. */
static bool json_uint(const cJSON *x, uint64_t *out) {
    if (!cJSON_IsNumber(x)) return false;
    double v = x->valuedouble;
    if (!isfinite(v) || v < 0 || v > 9007199254740992.0 || floor(v) != v) return false;
    *out = (uint64_t)v;
    return true;
}

static tg_status parse_shape(tg_safetensors *f, st_entry *e, const cJSON *shape) {
    if (!cJSON_IsArray(shape))
        return ferr(f, TG_ERR_FORMAT, "tensor '%s': shape is missing or not an array", e->name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > TG_MAX_DIMS)
        return ferr(f, TG_ERR_FORMAT, "tensor '%s': %d dimensions, at most %d are supported",
                    e->name, nd, TG_MAX_DIMS);
    e->ndim = 0;
    bool zero = false;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        uint64_t v;
        if (!json_uint(d, &v))
            return ferr(f, TG_ERR_FORMAT, "tensor '%s': shape holds a value that is not a "
                        "non-negative integer", e->name);
        e->shape[e->ndim++] = (int64_t)v;
        zero |= v == 0;
    }
    /* numel bounded by the data section: anything larger cannot match its bytes. */
    uint64_t n = 1;
    for (int i = 0; i < e->ndim && !zero; i++) {
        if ((uint64_t)e->shape[i] > (uint64_t)INT64_MAX / 16 / n) {
            char s[160];
            return ferr(f, TG_ERR_FORMAT, "tensor '%s': shape %s is too large", e->name,
                        tg__shape_str(e->ndim, e->shape, s, sizeof s));
        }
        n *= (uint64_t)e->shape[i];
    }
    e->numel = zero ? 0 : (int64_t)n;
    return TG_OK;
}

static tg_status parse_entry(tg_safetensors *f, st_entry *e, const cJSON *obj) {
    if (!cJSON_IsObject(obj))
        return ferr(f, TG_ERR_FORMAT, "tensor '%s': entry is not a JSON object", e->name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(obj, "dtype");
    if (!cJSON_IsString(dt))
        return ferr(f, TG_ERR_FORMAT, "tensor '%s': dtype is missing or not a string", e->name);
    size_t isz = tg__st_dtype_size(dt->valuestring);
    if (!isz)
        return ferr(f, TG_ERR_FORMAT, "tensor '%s': unknown dtype '%.20s'", e->name,
                    dt->valuestring);
    snprintf(e->dtype, sizeof e->dtype, "%s", dt->valuestring);
    tg_status st = parse_shape(f, e, cJSON_GetObjectItemCaseSensitive(obj, "shape"));
    if (st != TG_OK) return st;
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(obj, "data_offsets");
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_uint(off->child, &e->begin) ||
        !json_uint(off->child->next, &e->end) || e->begin > e->end)
        return ferr(f, TG_ERR_FORMAT, "tensor '%s': data_offsets is not [begin, end] with "
                    "0 <= begin <= end", e->name);
    if (e->end > f->data_len)
        return ferr(f, TG_ERR_FORMAT, "tensor '%s': data_offsets [%llu,%llu] run past the end of "
                    "the data section (%zu bytes)", e->name, (unsigned long long)e->begin,
                    (unsigned long long)e->end, f->data_len);
    uint64_t need = (uint64_t)e->numel * isz;
    if (need != e->end - e->begin) {
        char s[160];
        return ferr(f, TG_ERR_FORMAT, "tensor '%s': shape %s of %s needs %llu bytes, data_offsets "
                    "[%llu,%llu] hold %llu", e->name, tg__shape_str(e->ndim, e->shape, s, sizeof s),
                    e->dtype, (unsigned long long)need, (unsigned long long)e->begin,
                    (unsigned long long)e->end, (unsigned long long)(e->end - e->begin));
    }
    return TG_OK;
}

/* The reference implementation refuses headers that are not UTF-8. */
static tg_status check_utf8(tg_safetensors *f, const char *what, const char *s) {
    size_t at = 0;
    if (tg__utf8_valid(s, &at)) return TG_OK;
    size_t shown = at > 60 ? 60 : at;   /* the valid bytes just before the bad one */
    return ferr(f, TG_ERR_FORMAT, "%s is not valid UTF-8: byte 0x%02x at offset %zu "
                "(after '%.*s')", what, (unsigned char)s[at], at, (int)shown, s + at - shown);
}

static tg_status parse_metadata(tg_safetensors *f, const cJSON *m) {
    if (f->meta_key)
        return ferr(f, TG_ERR_FORMAT, "__metadata__ appears twice");
    if (!cJSON_IsObject(m))
        return ferr(f, TG_ERR_FORMAT, "__metadata__ is not a JSON object");
    int n = cJSON_GetArraySize(m);
    f->meta_key = tg__calloc((size_t)n + 1, sizeof *f->meta_key);
    f->meta_val = tg__calloc((size_t)n + 1, sizeof *f->meta_val);
    if (!f->meta_key || !f->meta_val) return ferr(f, TG_ERR_NOMEM, "out of memory");
    const cJSON *kv;
    cJSON_ArrayForEach(kv, m) {
        tg_status st = check_utf8(f, "a __metadata__ key", kv->string);
        if (st != TG_OK) return st;
        if (!cJSON_IsString(kv))
            return ferr(f, TG_ERR_FORMAT, "__metadata__ value of '%s' is not a string", kv->string);
        if ((st = check_utf8(f, "a __metadata__ value", kv->valuestring)) != TG_OK) return st;
        f->meta_key[f->n_meta] = dup_str(kv->string);
        f->meta_val[f->n_meta] = dup_str(kv->valuestring);
        f->n_meta++;
        if (!f->meta_key[f->n_meta - 1] || !f->meta_val[f->n_meta - 1])
            return ferr(f, TG_ERR_NOMEM, "out of memory");
    }
    return TG_OK;
}

static int by_range(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Overlapping byte ranges, found by one sort. */
static tg_status check_layout(tg_safetensors *f) {
    if (f->n == 0) return TG_OK;
    st_entry *tmp = tg__malloc((size_t)f->n * sizeof *tmp);
    if (!tmp) return ferr(f, TG_ERR_NOMEM, "out of memory");
    memcpy(tmp, f->e, (size_t)f->n * sizeof *tmp);
    tg_status st = TG_OK;
    qsort(tmp, (size_t)f->n, sizeof *tmp, by_range);
    const st_entry *last = NULL;   /* the non-empty range reaching furthest so far */
    for (int i = 0; i < f->n && st == TG_OK; i++) {
        if (tmp[i].begin == tmp[i].end) continue;
        if (last && tmp[i].begin < last->end)
            st = ferr(f, TG_ERR_FORMAT, "tensors '%s' and '%s' overlap: data_offsets [%llu,%llu] "
                      "and [%llu,%llu]", last->name, tmp[i].name, (unsigned long long)last->begin,
                      (unsigned long long)last->end, (unsigned long long)tmp[i].begin,
                      (unsigned long long)tmp[i].end);
        if (!last || tmp[i].end > last->end) last = &tmp[i];
    }
    free(tmp);
    return st;
}

/* A tensor entry: its name (UTF-8, unique) into the index, then its fields. */
static tg_status add_entry(tg_safetensors *f, const cJSON *item) {
    tg_status st = check_utf8(f, "a tensor name", item->string);
    if (st != TG_OK) return st;
    st_entry *e = &f->e[f->n];
    e->name = dup_str(item->string);
    if (!e->name) return ferr(f, TG_ERR_NOMEM, "out of memory");
    f->n++;
    int had = tg__name_index_add(&f->index, e->name, f->n - 1);
    if (had == TG__NAME_NOMEM) return ferr(f, TG_ERR_NOMEM, "out of memory");
    if (had != TG__NAME_ADDED)
        return ferr(f, TG_ERR_FORMAT, "tensor '%s' appears twice in the header", e->name);
    return parse_entry(f, e, item);
}

static tg_status parse_header(tg_safetensors *f, const cJSON *root) {
    if (!cJSON_IsObject(root)) return ferr(f, TG_ERR_FORMAT, "the header is not a JSON object");
    int n = cJSON_GetArraySize(root);
    f->e = tg__calloc((size_t)n + 1, sizeof *f->e);
    if (!f->e) return ferr(f, TG_ERR_NOMEM, "out of memory");
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        tg_status st;
        if (strcmp(item->string, "__metadata__") == 0) {
            st = parse_metadata(f, item);
        } else {
            st = add_entry(f, item);
        }
        if (st != TG_OK) return st;
    }
    return check_layout(f);
}

static bool only_spaces(const char *p, const char *end) {
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') return false;
    return true;
}

/* Takes ownership of buf (len bytes). */
static tg_safetensors *parse_owned(unsigned char *buf, size_t len, const char *label) {
    tg_safetensors *f = tg__calloc(1, sizeof *f);
    if (!f) {
        free(buf);
        tg__set_last_error(TG_ERR_NOMEM, "safetensors: out of memory");
        return NULL;
    }
    f->buf = buf;
    f->len = len;
    snprintf(f->label, sizeof f->label, "%s", label);
    if (len < 8) {
        ferr(f, TG_ERR_FORMAT, "file is %zu bytes, too short for the 8-byte header length", len);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
    if (hlen > MAX_HEADER || hlen > len - 8) {
        ferr(f, TG_ERR_FORMAT, "header length %llu exceeds the %s (%zu bytes)",
             (unsigned long long)hlen, hlen > MAX_HEADER ? "100000000-byte limit" : "file",
             hlen > MAX_HEADER ? (size_t)MAX_HEADER : len - 8);
        goto fail;
    }
    f->data = buf + 8 + hlen;
    f->data_len = len - 8 - (size_t)hlen;
    const char *hdr = (const char *)buf + 8, *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, false);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t pos = (at && at >= hdr && at <= hdr + hlen) ? (size_t)(at - hdr) : 0;
        ferr(f, TG_ERR_FORMAT, "the header is not valid JSON (near byte %zu of %llu)", pos,
             (unsigned long long)hlen);
        goto fail;
    }
    tg_status st = TG_OK;
    if (!end || end < hdr || end > hdr + hlen || !only_spaces(end, hdr + hlen))
        st = ferr(f, TG_ERR_FORMAT, "the header has bytes after its JSON object");
    if (st == TG_OK) st = parse_header(f, root);
    cJSON_Delete(root);
    if (st != TG_OK) goto fail;
    return f;
fail:
    tg_safetensors_close(f);
    return NULL;
}

tg_safetensors *tg_safetensors_parse(const void *bytes, size_t len) {
    if (!bytes && len) {
        tg__set_last_error(TG_ERR_ARG, "safetensors_parse: bytes is NULL");
        return NULL;
    }
    unsigned char *buf = tg__malloc(len ? len : 1);
    if (!buf) {
        tg__set_last_error(TG_ERR_NOMEM, "safetensors_parse: out of memory");
        return NULL;
    }
    if (len) memcpy(buf, bytes, len);
    return parse_owned(buf, len, "<memory>");
}

tg_safetensors *tg_safetensors_open(const char *path) {
    if (!path) {
        tg__set_last_error(TG_ERR_ARG, "safetensors_open: path is NULL");
        return NULL;
    }
    int fd = tg_file_open(path, "safetensors");   /* a regular file, or an error */
    if (fd < 0) return NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        tg__set_last_error(TG_ERR_IO, "safetensors: %s: cannot read: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    size_t want = (size_t)sb.st_size, got = 0;
    unsigned char *buf = tg__malloc(want ? want : 1);
    while (buf && got < want) {
        ssize_t r = read(fd, buf + got, want - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;   /* shrank while we read: parse what is there */
        got += (size_t)r;
    }
    close(fd);
    if (!buf) {
        tg__set_last_error(TG_ERR_NOMEM, "safetensors: %s: out of memory (%zu bytes)", path, want);
        return NULL;
    }
    return parse_owned(buf, got, path);
}

int tg_safetensors_count(const tg_safetensors *f) { return f ? f->n : 0; }

int tg_safetensors_find(const tg_safetensors *f, const char *name) {
    return f ? tg__name_index_find(&f->index, name) : -1;
}

tg_status tg_safetensors_info(const tg_safetensors *f, int i, tg_st_info *out) {
    if (!f || !out || i < 0 || i >= f->n) {
        tg__set_last_error(TG_ERR_ARG, "safetensors_info: no entry %d", i);
        return TG_ERR_ARG;
    }
    const st_entry *e = &f->e[i];
    out->name = e->name;
    out->dtype = e->dtype;
    out->ndim = e->ndim;
    for (int d = 0; d < TG_MAX_DIMS; d++) out->shape[d] = d < e->ndim ? e->shape[d] : 0;
    out->numel = e->numel;
    out->nbytes = (size_t)(e->end - e->begin);
    out->data = f->data + e->begin;
    return TG_OK;
}

const char *tg_safetensors_meta(const tg_safetensors *f, const char *key) {
    for (int i = 0; f && key && i < f->n_meta; i++)
        if (strcmp(f->meta_key[i], key) == 0) return f->meta_val[i];
    return NULL;
}

/* ---- conversion into tensors ---------------------------------------------- */
static double half_to_double(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
    return (h >> 15) ? -v : v;
}

static double load_float(const unsigned char *p, const char *dt, int64_t i) {
    if (strcmp(dt, "F64") == 0) {
        double v;
        memcpy(&v, p + 8 * i, 8);
        return v;
    }
    if (strcmp(dt, "F32") == 0) {
        float v;
        memcpy(&v, p + 4 * i, 4);
        return v;
    }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    if (strcmp(dt, "F16") == 0) return half_to_double(h);
    uint32_t bits = (uint32_t)h << 16;   /* BF16: the top half of a float */
    float v;
    memcpy(&v, &bits, 4);
    return v;
}

static bool is_float_dtype(const char *dt) {
    return !strcmp(dt, "F64") || !strcmp(dt, "F32") || !strcmp(dt, "F16") || !strcmp(dt, "BF16");
}

/* Convert entry i into dst (numel elements of dt). Fails, naming the tensor,
 * when the dtypes do not convert or an integer is out of int32 range. */
static tg_status convert(const tg_safetensors *f, int i, tg_dtype dt, void *dst, const char *fn) {
    const st_entry *e = &f->e[i];
    const unsigned char *src = f->data + e->begin;
    bool ints = !strcmp(e->dtype, "I32") || !strcmp(e->dtype, "I64");
    if (tg__is_float(dt) ? !is_float_dtype(e->dtype) : (dt != TG_I32 || !ints)) {
        tg__set_last_error(TG_ERR_DTYPE, "%s: %s: tensor '%s': dtype %s cannot load into %s", fn,
                           f->label, e->name, e->dtype, tg_dtype_name(dt));
        return TG_ERR_DTYPE;
    }
    for (int64_t k = 0; k < e->numel; k++) {
        if (dt == TG_F64) {
            ((double *)dst)[k] = load_float(src, e->dtype, k);
        } else if (dt == TG_F32) {
            ((float *)dst)[k] = (float)load_float(src, e->dtype, k);
        } else if (!strcmp(e->dtype, "I32")) {
            memcpy((int32_t *)dst + k, src + 4 * k, 4);
        } else {
            int64_t v;
            memcpy(&v, src + 8 * k, 8);
            if (v < INT32_MIN || v > INT32_MAX) {
                tg__set_last_error(TG_ERR_DTYPE,
                                   "%s: %s: tensor '%s': element %lld = %lld does "
                                   "not fit int32",
                                   fn, f->label, e->name, (long long)k, (long long)v);
                return TG_ERR_DTYPE;
            }
            ((int32_t *)dst)[k] = (int32_t)v;
        }
    }
    return TG_OK;
}

tg_tensor *tg_safetensors_get(const tg_safetensors *f, const char *name, tg_dtype dt) {
    int i = tg_safetensors_find(f, name);
    if (i < 0) {
        tg__set_last_error(TG_ERR_ARG, "safetensors_get: %s: no tensor '%s'",
                           f ? f->label : "(null)", name ? name : "(null)");
        return NULL;
    }
    tg_tensor *t = tg_tensor_new(dt, f->e[i].ndim, f->e[i].shape);
    if (t && convert(f, i, dt, t->data, "safetensors_get") != TG_OK) {
        tg_tensor_free(t);
        return NULL;
    }
    return t;
}

tg_status tg__st_convert(const tg_safetensors *f, int i, tg_dtype dt, void *dst, const char *fn) {
    return convert(f, i, dt, dst, fn);
}
