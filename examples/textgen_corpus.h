/* examples/textgen_corpus.h - the text textgen learns from: --data FILE, or
 * every fortune of Debian's `fortunes` package (shuffled with a fixed seed, so
 * the validation split, the last --val-frac of the text, samples all files),
 * as byte ids; and its two splits read as B streams of T-character batches
 * (batch k holds characters [kT, kT+T) of every stream). */
#ifndef TG_EXAMPLES_TEXTGEN_CORPUS_H
#define TG_EXAMPLES_TEXTGEN_CORPUS_H

#include <stdbool.h>
#include <stdint.h>

#include <tapegrad.h>

#ifndef FORTUNE_DIR   /* overridable at build time, e.g. to test a machine without it */
#define FORTUNE_DIR "/usr/share/games/fortunes"
#endif

typedef struct corpus {
    uint8_t *ids;             /* the text as vocabulary ids       */
    int64_t n, n_train;       /* characters; the first n_train train */
    int V;
    uint8_t byte_of[256];     /* id -> byte                       */
    int16_t id_of[256];       /* byte -> id, -1 when absent       */
} corpus;

/* One split read as B streams of T-character batches. */
typedef struct batcher {
    const uint8_t *ids;
    int64_t start, len, B, T, stream, per_epoch;   /* stream: characters per stream */
} batcher;

/* Reads data (NULL: the fortunes) into cp and splits it; with fixed_vocab,
 * cp's vocabulary (from a checkpoint) must cover the text. Each split must
 * hold one B x T batch. 0, or an exit code after a message. */
int load_corpus(corpus *cp, const char *data, int64_t B, int64_t T, double val_frac,
                bool fixed_vocab);
batcher make_batcher(const corpus *cp, bool val, int64_t B, int64_t T);
/* Batch k of the epoch into x and y [B, T] (targets: the next characters). */
void fill_batch(const batcher *b, int64_t k, tg_tensor *x, tg_tensor *y);

#endif
