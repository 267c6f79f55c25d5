/* tests/io/fuzz_safetensors.c - libFuzzer target for the safetensors
 * loader: parse untrusted bytes, read every entry, load them into a model,
 * an optimizer, a schedule and a training state.
 *
 * Built three ways:
 *   - by tests/io/run_fuzz.sh with clang -fsanitize=fuzzer,address,undefined;
 *   - with -DTG_FUZZ_STANDALONE: `--write-seeds DIR` writes a seed corpus made
 *     by the real writer (parameter files, full checkpoints); `--self-test`
 *     runs the seeds and a few thousand deterministic mutations of them
 *     (meson registers this, so the target keeps compiling and runs under
 *     ASan and valgrind too); other arguments are files to replay. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "tapegrad/io.h"
#include "tapegrad/optim.h"

typedef struct fuzz_model {
    tg_params *p;
    tg_optim *o;
    tg_sched *s;
    tg_params *carry;   /* state carried between steps: h [2,3] float32 */
} fuzz_model;

/* The model the seeds describe: w [2,3] float32, b [3] float64. */
static fuzz_model model_new(tg_optim_kind kind, int sched_kind) {
    fuzz_model m = {tg_params_new(), NULL, NULL, tg_params_new()};
    tg_params_create(m.carry, "h.0", TG_F32, 2, (int64_t[]){2, 3});
    tg_params_create(m.p, "w", TG_F32, 2, (int64_t[]){2, 3});
    tg_params_create(m.p, "b", TG_F64, 1, (int64_t[]){3});
    m.o = tg_optim_new(kind, m.p, 0.1);
    tg_optim_add_group(m.o, "b", 0.05, 0.0);
    m.s =
        sched_kind == 0 ? tg_sched_new_cosine(m.o, 2, 10, 0.001) : tg_sched_new_plateau(m.o, NULL);
    return m;
}

static void model_free(fuzz_model *m) {
    tg_params_free(m->carry);
    tg_sched_free(m->s);
    tg_optim_free(m->o);
    tg_params_free(m->p);
}

static volatile uint64_t sink;   /* keeps the reads of every byte alive */
static int n_parsed, n_loaded;   /* for the self-test's summary */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tg_safetensors *f = tg_safetensors_parse(data, size);
    if (!f) return 0;
    n_parsed++;
    for (int i = 0; i < tg_safetensors_count(f); i++) {
        tg_st_info in;
        if (tg_safetensors_info(f, i, &in) != TG_OK) abort();
        const unsigned char *b = in.data;
        for (size_t k = 0; k < in.nbytes; k++) sink += b[k];
        for (int dt = TG_F32; dt <= TG_I32; dt++)
            tg_tensor_free(tg_safetensors_get(f, in.name, (tg_dtype)dt));
    }
    sink += tg_safetensors_meta(f, "format") != NULL;
    tg_load_opts lenient = {true, true};
    for (int kind = TG_OPTIM_SGD; kind <= TG_OPTIM_ADADELTA; kind += 2) {
        fuzz_model m = model_new((tg_optim_kind)kind, kind == TG_OPTIM_ADAM);
        tg_params_load_from(m.p, f, &lenient);
        tg_train_state ts;
        tg_checkpoint_extra x = {.carry = m.carry};
        if (tg_checkpoint_load_from_ex(f, m.p, m.o, m.s, &ts, &x) == TG_OK) {
            /* whatever loaded must be usable */
            n_loaded++;
            tg_optim_step(m.o);
            tg_sched_step_metric(m.s, 1.0);
        }
        model_free(&m);
    }
    tg_safetensors_close(f);
    return 0;
}

#ifdef TG_FUZZ_STANDALONE
static int read_file(const char *path, unsigned char **buf, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    *buf = malloc(len > 0 ? (size_t)len : 1);
    *n = *buf ? fread(*buf, 1, (size_t)(len > 0 ? len : 0), fp) : 0;
    fclose(fp);
    return *buf ? 0 : -1;
}

/* Seeds: a parameter file and full checkpoints of two optimizer kinds. */
static int write_seeds(const char *dir) {
    char path[1024];
    for (int kind = TG_OPTIM_SGD; kind <= TG_OPTIM_ADADELTA; kind += 2) {
        fuzz_model m = model_new((tg_optim_kind)kind, kind == TG_OPTIM_ADAM);
        tg_tape *tp = tg_tape_new();
        for (int i = 0; i < tg_params_count(m.p); i++) {
            tg_tensor *t = tg_params_at(m.p, i);
            for (int64_t k = 0; k < tg_tensor_numel(t); k++)
                tg_tensor_set(t, k, 0.25 * (double)(k + i));
            /* a gradient of ones through the identity, so the optimizer has state */
            tg_tensor *y = tg_scale(tp, t, 1.0);
            tg_tensor *dy = tg_tensor_clone(t, tg_tensor_dtype(t));
            tg_tensor_fill(dy, 1.0);
            tg_backward_ex(tp, y, dy);
            tg_tensor_free(dy);
            tg_tape_reset(tp);
        }
        tg_optim_step(m.o);
        tg_sched_step_metric(m.s, 0.5);
        tg_train_state ts = {tg_rng_seeded(1), 1, 2, 3};
        snprintf(path, sizeof path, "%s/checkpoint_%s.safetensors", dir,
                 tg_optim_kind_name((tg_optim_kind)kind));
        if (tg_checkpoint_save_ex(path, m.p, m.o, m.s, &ts,
                                  &(tg_checkpoint_extra){.carry = m.carry}) != TG_OK)
            return fprintf(stderr, "%s\n", tg_last_error()), 1;
        snprintf(path, sizeof path, "%s/params.safetensors", dir);
        if (tg_params_save(m.p, path) != TG_OK) return fprintf(stderr, "%s\n", tg_last_error()), 1;
        tg_tape_free(tp);
        model_free(&m);
    }
    return 0;
}

/* Deterministic mutations: flip, overwrite with an interesting byte, truncate, duplicate a span. */
static void mutate_run(const unsigned char *seed, size_t n, tg_rng *r) {
    static const unsigned char interesting[] = {0,   1,   0x7f, 0x80, 0xff, '"', '[',
                                                ']', '{', '}',  ',',  '-',  '9'};
    unsigned char *buf = malloc(2 * n + 16);
    memcpy(buf, seed, n);
    size_t len = n;
    int edits = 1 + (int)(tg_rng_next(r) % 4);
    for (int e = 0; e < edits && len > 0; e++) {
        size_t at = (size_t)(tg_rng_next(r) % len);
        switch (tg_rng_next(r) % 4) {
        case 0: buf[at] ^= (unsigned char)(1u << (tg_rng_next(r) % 8)); break;
        case 1: buf[at] = interesting[tg_rng_next(r) % sizeof interesting]; break;
        case 2: len = at; break;
        default: {
            size_t span = 1 + (size_t)(tg_rng_next(r) % 16);
            if (at + span > len) span = len - at;
            if (len + span <= 2 * n + 16) {
                memmove(buf + at + span, buf + at, len - at);
                len += span;
            }
        }
        }
    }
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
}

static int self_test(void) {
    char dir[] = "/tmp/tg_fuzz_self_XXXXXX";
    if (!mkdtemp(dir) || write_seeds(dir)) return 1;
    const char *names[] = {"params.safetensors", "checkpoint_sgd.safetensors",
                           "checkpoint_adam.safetensors", "checkpoint_adagrad.safetensors"};
    tg_rng r = tg_rng_seeded(12345);
    int runs = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1100];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unsigned char *buf;
        size_t n;
        if (read_file(path, &buf, &n)) return fprintf(stderr, "cannot read %s\n", path), 1;
        /* An unmodified seed must load completely. */
        tg_safetensors *f = tg_safetensors_parse(buf, n);
        if (!f) return fprintf(stderr, "seed %s rejected: %s\n", names[i], tg_last_error()), 1;
        tg_safetensors_close(f);
        LLVMFuzzerTestOneInput(buf, n);
        for (int k = 0; k < 400; k++, runs++) mutate_run(buf, n, &r);
        free(buf);
        remove(path);
    }
    remove(dir);
    printf("fuzz self-test: 4 seeds, %d mutated inputs (%d parsed, %d checkpoint loads), no crash\n",
           runs, n_parsed, n_loaded);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) return write_seeds(argv[2]);
    if (argc == 2 && strcmp(argv[1], "--self-test") == 0) return self_test();
    for (int i = 1; i < argc; i++) {
        unsigned char *buf;
        size_t n;
        if (read_file(argv[i], &buf, &n)) return fprintf(stderr, "cannot read %s\n", argv[i]), 1;
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
        printf("%s: ok\n", argv[i]);
    }
    return 0;
}
#endif
