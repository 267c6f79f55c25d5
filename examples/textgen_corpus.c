/* examples/textgen_corpus.c - the text textgen learns from (see textgen_corpus.h). */
#define _POSIX_C_SOURCE 200809L
#include "textgen_corpus.h"

#include "common.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const DATA_HINT =
    "see ../shared/data/README.md for where to get it, or run without --data to use the "
    "fortunes corpus (apt-get install fortunes)";
static const char *const FORTUNE_HINT =
    "the default corpus comes from Debian's fortunes package: apt-get install fortunes "
    "(or pass --data FILE, see ../shared/data/README.md)";
static const uint64_t SPLIT_SEED = 20240229;   /* fixed: the split must not move with --seed */

static bool is_fortune_file(const char *dir, const char *name) {
    size_t n = strlen(name);
    if (name[0] == '.' || (n > 4 && !strcmp(name + n - 4, ".dat")) ||
        (n > 3 && !strcmp(name + n - 3, ".u8")))   /* index files; .u8 are symlinks to the text */
        return false;
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

typedef struct piece { const char *s; size_t n; } piece;

/* Split one fortune file at its "%" lines; appends to *v (grown as needed). */
static bool split_fortunes(const char *text, size_t len, piece **v, size_t *n, size_t *cap) {
    const char *p = text, *end = text + len, *start = text;
    while (p <= end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end + 1;
        bool sep = (eol ? eol : end) - p == 1 && *p == '%';
        if (sep || next > end) {
            size_t plen = (size_t)(p - start) + (sep ? 0 : (size_t)(end - p));
            if (plen > 0) {
                if (*n == *cap) {
                    piece *g = realloc(*v, (*cap = *cap ? 2 * *cap : 1024) * sizeof **v);
                    if (!g) return false;
                    *v = g;
                }
                (*v)[(*n)++] = (piece){start, plen};
            }
            start = next;
        }
        p = next;
    }
    return true;
}

/* Removes control bytes but tab and newline (a few fortunes ring the bell or
 * overstrike with backspaces, which samples should not replay); returns the new length. */
static size_t drop_controls(char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 32 || c == '\n' || c == '\t') s[k++] = s[i];
    }
    s[k] = '\0';
    return k;
}

/* Every fortune of every text file in FORTUNE_DIR, shuffled with a fixed seed
 * and joined by blank lines. NULL after a message. */
static char *read_fortunes(size_t *len) {
    struct dirent **names = NULL;
    int nf = scandir(FORTUNE_DIR, &names, NULL, alphasort);
    if (nf < 0) {
        fprintf(stderr, "error: cannot open the default corpus folder '%s/'\n  %s\n", FORTUNE_DIR,
                FORTUNE_HINT);
        return NULL;
    }
    char **files = calloc((size_t)nf + 1, sizeof *files);
    piece *v = NULL;
    size_t n = 0, cap = 0, total = 0;
    bool ok = files != NULL;
    for (int i = 0; ok && i < nf; i++) {
        if (!is_fortune_file(FORTUNE_DIR, names[i]->d_name)) continue;
        char path[4096];
        size_t flen = 0;
        snprintf(path, sizeof path, "%s/%s", FORTUNE_DIR, names[i]->d_name);
        ok = (files[i] = ex_read_file(path, &flen, FORTUNE_HINT)) != NULL;
        if (ok && !(ok = split_fortunes(files[i], flen, &v, &n, &cap)))
            fprintf(stderr, "error: out of memory reading %s\n", path);
    }
    tg_rng r = tg_rng_seeded(SPLIT_SEED);
    for (size_t i = n; ok && i > 1; i--) {   /* Fisher-Yates */
        size_t j = (size_t)(tg_rng_next(&r) % i);
        piece t = v[i - 1];
        v[i - 1] = v[j], v[j] = t;
    }
    for (size_t i = 0; i < n; i++) total += v[i].n + 1;
    char *out = ok && n > 0 ? malloc(total + 1) : NULL;
    if (ok && n == 0) fprintf(stderr, "error: no fortunes found in '%s/'\n  %s\n", FORTUNE_DIR, FORTUNE_HINT);
    size_t at = 0;
    for (size_t i = 0; out && i < n; i++) {
        memcpy(out + at, v[i].s, v[i].n);
        at += v[i].n;
        out[at++] = '\n';   /* each fortune ends in '\n': this makes a blank line */
    }
    if (out) out[at] = '\0', *len = drop_controls(out, at);
    for (int i = 0; i < nf; i++) free(names[i]), free(files ? files[i] : NULL);
    free(names), free(files), free(v);
    return out;
}

/* Text -> ids. With a fixed vocabulary (from a checkpoint) a byte outside it
 * is an error; otherwise the vocabulary is every byte present, in byte order. */
static int make_corpus(corpus *cp, const char *text, size_t len, bool fixed_vocab, const char *src) {
    if (!fixed_vocab) {
        bool seen[256] = {false};
        for (size_t i = 0; i < len; i++) seen[(uint8_t)text[i]] = true;
        cp->V = 0;
        for (int b = 0; b < 256; b++) {
            cp->id_of[b] = seen[b] ? (int16_t)cp->V : -1;
            if (seen[b]) cp->byte_of[cp->V++] = (uint8_t)b;
        }
    }
    cp->ids = malloc(len ? len : 1);
    if (!cp->ids) return fprintf(stderr, "error: out of memory for the corpus\n"), 1;
    for (size_t i = 0; i < len; i++) {
        int id = cp->id_of[(uint8_t)text[i]];
        if (id < 0) {
            char what[160];
            snprintf(what, sizeof what, "byte 0x%02x at offset %zu is not in the checkpoint's "
                     "vocabulary of %d characters", (uint8_t)text[i], i, cp->V);
            return ex_bad_data(src, 0, what, "train on a corpus with the same characters");
        }
        cp->ids[i] = (uint8_t)id;
    }
    cp->n = (int64_t)len;
    return 0;
}

/* A --data file must be text: not empty, no NUL byte. Returns 0 or an exit code. */
static int check_text(const char *path, const char *text, size_t len) {
    if (len == 0) return ex_bad_data(path, 0, "the file is empty", DATA_HINT);
    const char *nul = memchr(text, '\0', len);
    if (!nul) return 0;
    long line = 1;
    for (const char *p = text; p < nul; p++) line += *p == '\n';
    return ex_bad_data(path, line, "contains a NUL byte: not a text file", DATA_HINT);
}

int load_corpus(corpus *cp, const char *data, int64_t B, int64_t T, double val_frac,
                bool fixed_vocab) {
    size_t len = 0;
    const char *src = data ? data : FORTUNE_DIR "/";
    char *text = data ? ex_read_file(data, &len, DATA_HINT) : read_fortunes(&len);
    if (!text) return 1;
    int rc = data ? check_text(data, text, len) : 0;
    if (rc == 0) rc = make_corpus(cp, text, len, fixed_vocab, src);
    free(text);
    if (rc) return rc;
    int64_t need = B * T + 1;   /* one batch in each split */
    cp->n_train = (int64_t)((double)cp->n * (1 - val_frac));
    if (cp->n_train < need || cp->n - cp->n_train < need) {
        char what[200];
        snprintf(what, sizeof what, "only %lld characters: --batch %lld --seq %lld with --val-frac %g "
                 "needs at least %lld in each split", (long long)cp->n, (long long)B,
                 (long long)T, val_frac, (long long)need);
        return ex_bad_data(src, 0, what, DATA_HINT);
    }
    printf("corpus: %s, %lld characters, vocabulary %d; %lld for training, %lld for validation\n",
           src, (long long)cp->n, cp->V, (long long)cp->n_train, (long long)(cp->n - cp->n_train));
    return 0;
}

batcher make_batcher(const corpus *cp, bool val, int64_t B, int64_t T) {
    batcher b = {.ids = cp->ids, .start = val ? cp->n_train : 0,
                 .len = val ? cp->n - cp->n_train : cp->n_train, .B = B, .T = T};
    b.stream = (b.len - 1) / B;
    b.per_epoch = b.stream / T;
    return b;
}

/* Batch k of the epoch into x and y (targets: the next characters). */
void fill_batch(const batcher *b, int64_t k, tg_tensor *x, tg_tensor *y) {
    int32_t *xs = tg_tensor_data(x), *ys = tg_tensor_data(y);
    for (int64_t r = 0; r < b->B; r++) {
        const uint8_t *src = b->ids + b->start + r * b->stream + k * b->T;
        for (int64_t t = 0; t < b->T; t++) {
            xs[r * b->T + t] = src[t];
            ys[r * b->T + t] = src[t + 1];
        }
    }
}
