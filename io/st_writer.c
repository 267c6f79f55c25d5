/* io/st_writer.c - building a safetensors file and saving it crash-safely:
 * temporary file in the target's folder, fsync, rename over the target,
 * fsync the folder. At every instant the target name holds either the old
 * complete file or the new complete file; temporary files of killed saves
 * are removed by the next save to the same target. */
#include "io_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct w_entry {
    char *name;
    char dtype[8];
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    const tg_tensor *t;     /* read at save time, or                 */
    void *raw;              /* owned bytes (raw entries)              */
    size_t nbytes;
} w_entry;

struct tg_safetensors_writer {
    w_entry *e;
    int n, cap;
    tg__name_index index;   /* name -> entry */
    char **mk, **mv;
    int n_meta, cap_meta;
};

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = tg__malloc(n);
    if (c) memcpy(c, s, n);
    return c;
}

static tg_status nomem(void) {
    tg__set_last_error(TG_ERR_NOMEM, "safetensors_writer: out of memory");
    return TG_ERR_NOMEM;
}

tg_safetensors_writer *tg_safetensors_writer_new(void) {
    tg_safetensors_writer *w = tg__calloc(1, sizeof *w);
    if (!w) nomem();
    return w;
}

void tg_safetensors_writer_free(tg_safetensors_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->e[i].name), free(w->e[i].raw);
    for (int i = 0; i < w->n_meta; i++) free(w->mk[i]), free(w->mv[i]);
    free(w->e);
    tg__name_index_free(&w->index);
    free(w->mk);
    free(w->mv);
    free(w);
}

/* Readers (ours and the reference one) refuse names that are not UTF-8. */
static tg_status check_utf8(const char *fn, const char *what, const char *s) {
    size_t at = 0;
    if (tg__utf8_valid(s, &at)) return TG_OK;
    tg__set_last_error(TG_ERR_ARG, "%s: %s is not valid UTF-8: byte 0x%02x at offset %zu", fn,
                       what, (unsigned char)s[at], at);
    return TG_ERR_ARG;
}

static tg_status check_name(const tg_safetensors_writer *w, const char *name) {
    if (!w || !name || !*name || strcmp(name, "__metadata__") == 0) {
        tg__set_last_error(TG_ERR_ARG, "safetensors_writer_add: bad tensor name '%s'",
                           name ? name : "(null)");
        return TG_ERR_ARG;
    }
    tg_status st = check_utf8("safetensors_writer_add", "the tensor name", name);
    if (st == TG_OK && tg__name_index_find(&w->index, name) >= 0) {
        tg__set_last_error(TG_ERR_ARG, "safetensors_writer_add: tensor '%s' added twice", name);
        st = TG_ERR_ARG;
    }
    return st;
}

static w_entry *push(tg_safetensors_writer *w, const char *name) {
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        w_entry *g = realloc(w->e, (size_t)cap * sizeof *g);
        if (!g) return NULL;
        tg__count_alloc();
        w->e = g;
        w->cap = cap;
    }
    w_entry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->name = dup_str(name);
    if (!e->name || tg__name_index_add(&w->index, e->name, w->n) == TG__NAME_NOMEM) {
        free(e->name);
        return NULL;
    }
    w->n++;
    return e;
}

tg_status tg_safetensors_writer_add(tg_safetensors_writer *w, const char *name,
                                    const tg_tensor *t) {
    tg_status st = check_name(w, name);
    if (st != TG_OK) return st;
    if (!t) {
        tg__set_last_error(TG_ERR_ARG, "safetensors_writer_add: tensor '%s' is NULL", name);
        return TG_ERR_ARG;
    }
    w_entry *e = push(w, name);
    if (!e) return nomem();
    snprintf(e->dtype, sizeof e->dtype, "%s",
             t->dtype == TG_F64   ? "F64"
             : t->dtype == TG_F32 ? "F32"
                                  : "I32");
    e->ndim = t->ndim;
    memcpy(e->shape, t->shape, sizeof e->shape);
    e->t = t;
    e->nbytes = (size_t)t->numel * tg_dtype_size(t->dtype);
    return TG_OK;
}

tg_status tg__st_writer_add_raw(tg_safetensors_writer *w, const char *name, const char *dtype,
                                int ndim, const int64_t *shape, const void *data, size_t nbytes) {
    tg_status st = check_name(w, name);
    if (st != TG_OK) return st;
    w_entry *e = push(w, name);
    if (!e) return nomem();
    snprintf(e->dtype, sizeof e->dtype, "%s", dtype);
    e->ndim = ndim;
    for (int d = 0; d < ndim; d++) e->shape[d] = shape[d];
    e->raw = tg__malloc(nbytes ? nbytes : 1);
    if (!e->raw) return nomem();
    memcpy(e->raw, data, nbytes);
    e->nbytes = nbytes;
    return TG_OK;
}

tg_status tg_safetensors_writer_meta(tg_safetensors_writer *w, const char *key, const char *value) {
    if (!w || !key || !value) {
        tg__set_last_error(TG_ERR_ARG,
                           "safetensors_writer_meta: writer, key and value are required");
        return TG_ERR_ARG;
    }
    tg_status st = check_utf8("safetensors_writer_meta", "the key", key);
    if (st == TG_OK) st = check_utf8("safetensors_writer_meta", "the value", value);
    if (st != TG_OK) return st;
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->mk[i], key) == 0) {
            char *v = dup_str(value);
            if (!v) return nomem();
            free(w->mv[i]);
            w->mv[i] = v;
            return TG_OK;
        }
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? 2 * w->cap_meta : 8;
        char **k = realloc(w->mk, (size_t)cap * sizeof *k);
        if (!k) return nomem();
        w->mk = k;
        char **v = realloc(w->mv, (size_t)cap * sizeof *v);
        if (!v) return nomem();
        w->mv = v;
        tg__count_alloc();
        w->cap_meta = cap;
    }
    w->mk[w->n_meta] = dup_str(key);
    w->mv[w->n_meta] = dup_str(value);
    w->n_meta++;
    return (w->mk[w->n_meta - 1] && w->mv[w->n_meta - 1]) ? TG_OK : nomem();
}

/* The JSON header, padded with spaces so the data starts 8-byte aligned. */
static char *build_header(const tg_safetensors_writer *w, size_t *len) {
    cJSON *root = cJSON_CreateObject(), *meta = NULL;
    bool ok = root != NULL;
    if (ok && w->n_meta) {
        meta = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; meta && i < w->n_meta; i++)
            ok &= cJSON_AddStringToObject(meta, w->mk[i], w->mv[i]) != NULL;
        ok &= meta != NULL;
    }
    uint64_t off = 0;
    for (int i = 0; ok && i < w->n; i++) {
        const w_entry *e = &w->e[i];
        cJSON *o = cJSON_AddObjectToObject(root, e->name);
        cJSON *shape = o ? cJSON_AddArrayToObject(o, "shape") : NULL;
        cJSON *offs = o ? cJSON_AddArrayToObject(o, "data_offsets") : NULL;
        ok = o && shape && offs && cJSON_AddStringToObject(o, "dtype", e->dtype);
        for (int d = 0; ok && d < e->ndim; d++)
            ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->shape[d]));
        ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off)) &&
             cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + e->nbytes)));
        off += e->nbytes;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json) return NULL;
    size_t n = strlen(json), padded = (n + 7) & ~(size_t)7;
    char *out = tg__malloc(padded + 1);
    if (out) {
        memcpy(out, json, n);
        memset(out + n, ' ', padded - n);
        out[padded] = '\0';
        *len = padded;
    }
    cJSON_free(json);
    return out;
}

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t r = write(fd, c, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_body(int fd, const tg_safetensors_writer *w, const char *hdr, size_t hlen) {
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    if (write_all(fd, len8, 8) || write_all(fd, hdr, hlen)) return -1;
    for (int i = 0; i < w->n; i++) {
        const w_entry *e = &w->e[i];
        const void *src = e->raw ? e->raw : tg_tensor_cdata(e->t);
        if (e->nbytes && write_all(fd, src, e->nbytes)) return -1;
    }
    return 0;
}

static tg_status io_fail(const char *path, const char *what, const char *tmp, int fd) {
    tg__set_last_error(TG_ERR_IO, "safetensors_save: %s: %s: %s", path, what, strerror(errno));
    if (fd >= 0) close(fd);
    if (tmp) unlink(tmp);
    return TG_ERR_IO;
}

/* ---- temporary files ----------------------------------------------------------------
 * A save writes "<dir>/.<stem>.tmp-XXXXXX" and renames it over the target.
 * The stem is the target's name; when that would make the temporary name
 * longer than a file name may be (targets of 244-255 bytes), it is the name's
 * first 226 bytes, '~' and 16 hex digits of a hash of the whole name. The
 * writer holds an flock on its temporary file until after the rename, so a
 * file of that pattern nobody holds was left by a save that was killed: the
 * next save to the same target removes it. */
enum { NAME_LIMIT = 255, TMP_SUFFIX = 11 /* ".tmp-XXXXXX" */, STEM_KEEP = 226 };

typedef struct temp_path {
    char *dir;       /* "<dir>"                        */
    char *prefix;    /* ".<stem>.tmp-"                 */
    char *tmp;       /* "<dir>/.<stem>.tmp-XXXXXX"     */
} temp_path;

static void temp_path_free(temp_path *t) {
    free(t->dir);
    free(t->prefix);
    free(t->tmp);
}

static tg_status temp_path_make(const char *path, temp_path *t) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base) {
        tg__set_last_error(TG_ERR_ARG, "safetensors_save: %s: path names a folder, not a file",
                           path);
        return TG_ERR_ARG;
    }
    size_t dlen = slash ? (size_t)(slash - path) : 1, blen = strlen(base);
    t->dir = tg__malloc(dlen + 2);
    t->prefix = tg__malloc(blen + 32);
    t->tmp = tg__malloc(dlen + blen + 40);
    if (!t->dir || !t->prefix || !t->tmp) return nomem();
    if (!slash) memcpy(t->dir, ".", 2);
    else if (dlen == 0) memcpy(t->dir, "/", 2);
    else memcpy(t->dir, path, dlen), t->dir[dlen] = '\0';
    if (1 + blen + TMP_SUFFIX <= NAME_LIMIT)
        sprintf(t->prefix, ".%s.tmp-", base);
    else
        sprintf(t->prefix, ".%.*s~%016llx.tmp-", STEM_KEEP, base,
                (unsigned long long)tg__name_hash(base));
    sprintf(t->tmp, "%s/%sXXXXXX", t->dir, t->prefix);
    return TG_OK;
}

/* Remove the temporary files of this target that no live save holds. */
static void remove_leftovers(const temp_path *t) {
    DIR *d = opendir(t->dir);
    if (!d) return;
    size_t plen = strlen(t->prefix);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, t->prefix, plen) != 0 || strlen(e->d_name) != plen + 6) continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        struct stat sb;
        if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_uid == geteuid() &&
            flock(fd, LOCK_EX | LOCK_NB) == 0)
            unlinkat(dirfd(d), e->d_name, 0);
        if (fd >= 0) close(fd);
    }
    closedir(d);
}

/* A new temporary file, locked. A cleaner may delete it between mkstemp and
 * flock (it looked abandoned): then it has no link left and we make another. */
static int temp_create(temp_path *t, const char *path) {
    size_t n = strlen(t->tmp);
    for (int attempt = 0; attempt < 8; attempt++) {
        memcpy(t->tmp + n - 6, "XXXXXX", 6);
        int fd = mkstemp(t->tmp);
        if (fd < 0) break;
        struct stat sb;
        if (flock(fd, LOCK_EX) == 0 && fstat(fd, &sb) == 0 && sb.st_nlink > 0) return fd;
        close(fd);
    }
    io_fail(path, "cannot create a temporary file beside it", NULL, -1);
    return -1;
}

static tg_status save_atomic(const tg_safetensors_writer *w, const char *path, const char *hdr,
                             size_t hlen) {
    temp_path t = {0};
    tg_status st = temp_path_make(path, &t);
    int fd = st == TG_OK ? temp_create(&t, path) : -1;
    if (fd < 0) {
        temp_path_free(&t);
        return st != TG_OK ? st : TG_ERR_IO;
    }
    remove_leftovers(&t);   /* ours is locked: it stays */
    struct stat old;
    fchmod(fd, stat(path, &old) == 0 ? (old.st_mode & 0777) : 0644);
    /* The lock is held (fd open) until the file has its final name. */
    if (write_body(fd, w, hdr, hlen)) st = io_fail(path, "write failed", t.tmp, fd);
    else if (fsync(fd)) st = io_fail(path, "fsync failed", t.tmp, fd);
    else if (rename(t.tmp, path)) st = io_fail(path, "rename failed", t.tmp, fd);
    else if (close(fd)) st = io_fail(path, "close failed", NULL, -1);
    if (st == TG_OK) {   /* the rename is durable only once the folder itself is synced */
        int dfd = open(t.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || (fsync(dfd) && errno != EINVAL))
            st = io_fail(path, "folder fsync failed", NULL, dfd);
        else close(dfd);
    }
    temp_path_free(&t);
    return st;
}

tg_status tg_safetensors_writer_save(const tg_safetensors_writer *w, const char *path) {
    if (!w || !path) {
        tg__set_last_error(TG_ERR_ARG, "safetensors_save: writer and path are required");
        return TG_ERR_ARG;
    }
    size_t hlen = 0;
    char *hdr = build_header(w, &hlen);
    if (!hdr) return nomem();
    tg_status st = save_atomic(w, path, hdr, hlen);
    free(hdr);
    return st;
}
