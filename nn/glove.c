/* nn/glove.c - pretrained word vectors from a GloVe text file.
 * Format: per line a word, then exactly C numbers, separated by blanks. */
#include "nn_private.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct glove_ctx {
    tg_embedding_layer *e;
    tg_vocab *vocab;
    const char *path;
    const tg_glove_opts *o;
    tg_glove_report *r;
    double *sum;           /* [C] running sum for the UNK row */
    double *vec;           /* [C] the line being parsed       */
    bool *filled;          /* [V] rows that received a vector */
} glove_ctx;

static tg_status report(tg_glove_report *r, tg_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static tg_status report(tg_glove_report *r, tg_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    return st;
}

static void set_row(tg_embedding_layer *e, int64_t row, const double *v) {
    void *w = tg_tensor_data(e->weight);
    for (int64_t j = 0; j < e->dim; j++) {
        if (tg_tensor_dtype(e->weight) == TG_F32)
            ((float *)w)[row * e->dim + j] = (float)v[j];
        else
            ((double *)w)[row * e->dim + j] = v[j];
    }
}

/* Parse "word x1 ... xC" in place into c->vec; returns the word or NULL
 * (with the report filled) for a malformed line. */
static const char *parse_line(glove_ctx *c, char *line, int64_t lineno) {
    const char *blank = " \t\r\n";
    char *save = NULL;
    char *word = strtok_r(line, blank, &save);
    int64_t found = 0;
    for (char *tok; (tok = strtok_r(NULL, blank, &save)) != NULL; found++) {
        if (found >= c->e->dim) continue;   /* count them all for the message */
        char *end;
        double x = strtod(tok, &end);
        if (*end != '\0' || !isfinite(x)) {
            report(c->r, TG_ERR_FORMAT, "glove: %s:%lld: value %lld after '%.40s' is not a number: '%.40s'",
                   c->path, (long long)lineno, (long long)found + 1, word, tok);
            return NULL;
        }
        /* 1e300 is a finite double but inf as a float32 weight. */
        if (tg_tensor_dtype(c->e->weight) == TG_F32 && !isfinite((float)x)) {
            report(c->r, TG_ERR_FORMAT,
                   "glove: %s:%lld: value %lld after '%.40s' is out of float32 range: '%.40s'",
                   c->path, (long long)lineno, (long long)found + 1, word, tok);
            return NULL;
        }
        c->vec[found] = x;
    }
    if (found != c->e->dim) {
        report(c->r, TG_ERR_FORMAT, "glove: %s:%lld: expected %lld numbers after '%.40s', found %lld",
               c->path, (long long)lineno, (long long)c->e->dim, word, (long long)found);
        return NULL;
    }
    return word;
}

/* Row for a word: its vocabulary id, added first when allowed and room is left. */
static int64_t row_of(glove_ctx *c, const char *word) {
    if (!tg_vocab_contains(c->vocab, word)) {
        if (!c->o->add_words || tg_vocab_size(c->vocab) >= c->e->num) return -1;
        if (tg_vocab_add(c->vocab, word) < 0) return -1;
    }
    int64_t id = tg_vocab_id(c->vocab, word);
    return (id >= c->e->num || id == c->e->padding_idx) ? -1 : id;
}

static tg_status read_lines(glove_ctx *c, FILE *f) {
    char *line = NULL;
    size_t cap = 0;
    tg_status st = TG_OK;
    for (int64_t lineno = 1; getline(&line, &cap, f) >= 0; lineno++) {
        c->r->lines++;
        if (strspn(line, " \t\r\n") == strlen(line)) continue;   /* blank line */
        const char *word = parse_line(c, line, lineno);
        if (!word) {
            c->r->error_line = lineno;
            st = TG_ERR_FORMAT;
            break;
        }
        for (int64_t j = 0; j < c->e->dim; j++) c->sum[j] += c->vec[j];
        int64_t row = row_of(c, word);
        if (row < 0) {
            c->r->skipped++;
            continue;
        }
        set_row(c->e, row, c->vec);
        c->filled[row] = true;
        c->r->loaded++;
    }
    free(line);
    if (st == TG_OK && ferror(f)) st = report(c->r, TG_ERR_IO, "glove: %s: read error", c->path);
    return st;
}

/* UNK row = mean of every vector read; count vocabulary words left without one. */
static void finish(glove_ctx *c) {
    int64_t vectors = c->r->loaded + c->r->skipped;
    if (vectors > 0 && TG_TOKEN_UNK < c->e->num && TG_TOKEN_UNK != c->e->padding_idx &&
        !c->filled[TG_TOKEN_UNK]) {
        for (int64_t j = 0; j < c->e->dim; j++) c->sum[j] /= (double)vectors;
        set_row(c->e, TG_TOKEN_UNK, c->sum);
    }
    int32_t n = tg_vocab_size(c->vocab);
    for (int32_t id = TG_TOKEN_EOS + 1; id < n && id < c->e->num; id++)
        c->r->missing += !c->filled[id] && id != c->e->padding_idx;
}

tg_status tg_embedding_layer_load_glove(tg_embedding_layer *e, tg_vocab *vocab, const char *path,
                                        const tg_glove_opts *o, tg_glove_report *rep) {
    tg_glove_opts def = {0};
    tg_glove_report scratch;
    tg_glove_report *r = rep ? rep : &scratch;
    memset(r, 0, sizeof *r);
    if (!e || !e->weight || !vocab || !path)
        return report(r, TG_ERR_ARG, "glove: needs an initialised embedding, a vocabulary and a path");
    FILE *f = tg_file_fopen(path, "glove");   /* never waits on a FIFO or device */
    if (!f) return report(r, TG_ERR_IO, "%s", tg_last_error());
    glove_ctx c = {e, vocab, path, o ? o : &def, r, calloc((size_t)e->dim, sizeof(double)),
                   calloc((size_t)e->dim, sizeof(double)), calloc((size_t)e->num, sizeof(bool))};
    tg_status st = (c.sum && c.vec && c.filled) ? read_lines(&c, f)
                                                : report(r, TG_ERR_NOMEM, "glove: out of memory");
    if (st == TG_OK) finish(&c);
    fclose(f);
    free(c.sum);
    free(c.vec);
    free(c.filled);
    return st;
}
