/* tests/io/check_checkpoint.c - training checkpoints: a save killed at
 * random moments always leaves a loadable file; a run stopped, saved, loaded
 * into fresh objects and resumed gives the uninterrupted run's losses bit
 * for bit; bad checkpoints are errors that change nothing. */
#include "io_tests.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* White-box: raw entries (I64 step counts) for hand-made bad checkpoints. */
tg_status tg__st_writer_add_raw(tg_safetensors_writer *w, const char *name, const char *dtype,
                                int ndim, const int64_t *shape, const void *data, size_t nbytes);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- crash safety -------------------------------------------------------------------- */
#define CRASH_N (128 * 1024)   /* two 512 KiB tensors: a save takes a while */

/* Generation g: a[i] = g + i%7, b[i] = -g - i%5 (exact in float32). */
static void fill_gen(tg_params *p, int g) {
    float *a = tg_tensor_data(tg_params_at(p, 0)), *b = tg_tensor_data(tg_params_at(p, 1));
    for (int i = 0; i < CRASH_N; i++) a[i] = (float)(g + i % 7), b[i] = (float)(-g - i % 5);
}

static int check_gen(tg_params *p) {
    const float *a = tg_tensor_data(tg_params_at(p, 0)), *b = tg_tensor_data(tg_params_at(p, 1));
    int g = (int)a[0];
    for (int i = 0; i < CRASH_N; i++)
        if (a[i] != (float)(g + i % 7) || b[i] != (float)(-g - i % 5)) return -1;
    return g;
}

static tg_params *crash_params(void) {
    tg_params *p = tg_params_new();
    tg_params_create(p, "a", TG_F32, 1, (int64_t[]){CRASH_N});
    tg_params_create(p, "b", TG_F32, 1, (int64_t[]){CRASH_N});
    return p;
}

/* Remove the temporary files of saves that were killed; returns how many
 * there were (each one is a kill that landed inside a save). */
static int remove_temporaries(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp-") != NULL) {
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            n += unlink(p) == 0;
        }
    if (d) closedir(d);
    return n;
}

static void sleep_us(double us) {
    struct timespec ts = {(time_t)(us / 1e6), (long)(fmod(us, 1e6) * 1000)};
    nanosleep(&ts, NULL);
}

START_TEST(a_save_killed_at_any_moment_leaves_a_complete_file) {
    char *dir = ot_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    tg_params *p = crash_params(), *q = crash_params();
    fill_gen(p, 0);
    double t0 = now_s();
    ck_assert_int_eq(tg_params_save(p, path), TG_OK);
    /* Kill within about two saves' time: some kills land inside a save and some
     * saves complete, however slow the machine (valgrind, load) makes them. The
     * child also refills its tensors before each save, which the parent's timing
     * above does not see: while no save has completed, the window grows. */
    double window_us = 2e6 * (now_s() - t0);
    if (window_us < 20000) window_us = 20000;
    tg_rng rng = tg_rng_seeded(2024);
    int kills = 0, last = 0, changes = 0, inside = 0;
    double end = now_s() + 3.0, give_up = now_s() + 120.0;
    while (kills < 300 && now_s() < give_up &&
           (now_s() < end || kills < 10 || changes == 0 || inside == 0)) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {   /* child: save new generations until killed */
            for (int g = 1;; g++) {
                fill_gen(p, (kills + 1) * 1000 + g);
                if (tg_params_save(p, path) != TG_OK) _exit(3);
            }
        }
        sleep_us(tg_rng_uniform(&rng) * window_us);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        ck_assert_msg(WIFSIGNALED(status), "child exited (%d): save failed", WEXITSTATUS(status));
        kills++;
        inside += remove_temporaries(dir);
        /* Whatever the moment of death, the file is the old or a new complete one. */
        ck_assert_msg(tg_params_load(q, path) == TG_OK, "after kill %d: %s", kills,
                      tg_last_error());
        int g = check_gen(q);
        ck_assert_msg(g >= 0, "after kill %d: the file mixes generations", kills);
        changes += g != last;
        last = g;
        if (changes == 0 && kills >= 3) window_us *= 1.5;
    }
    printf("crash safety: %d kills, %d inside a save, the file changed %d times\n", kills, inside,
           changes);
    ck_assert_int_gt(changes, 0);   /* saves did complete between kills */
    ck_assert_int_gt(inside, 0);    /* and kills did interrupt saves    */
    tg_params_free(p);
    tg_params_free(q);
    ot_rmdir(dir);
}
END_TEST

/* ---- bit-exact resume ------------------------------------------------------------------ */
#define N_DATA 40
#define BATCH 8
#define HID 8

typedef struct trainer {
    tg_params *p;
    tg_optim *o;
    tg_sched *s;
    tg_train_state ts;
    tg_tape *tp;
    double x[N_DATA * 2], y[N_DATA];
} trainer;

/* Different init_seed values give different starting weights and RNG, so a
 * resumed run only matches if the checkpoint restored everything. */
static trainer *trainer_new(uint64_t init_seed) {
    trainer *t = calloc(1, sizeof *t);
    tg_rng data = tg_rng_seeded(5), init = tg_rng_seeded(init_seed);
    for (int i = 0; i < N_DATA; i++) {
        t->x[2 * i] = 2 * tg_rng_uniform(&data) - 1;
        t->x[2 * i + 1] = 2 * tg_rng_uniform(&data) - 1;
        t->y[i] = sin(3 * t->x[2 * i]) * t->x[2 * i + 1];
    }
    t->p = tg_params_new();
    tg_tensor *w[4] = {
        tg_params_create(t->p, "l1.weight", TG_F32, 2, (int64_t[]){2, HID}),
        tg_params_create(t->p, "l1.bias", TG_F32, 2, (int64_t[]){1, HID}),
        tg_params_create(t->p, "l2.weight", TG_F32, 2, (int64_t[]){HID, 1}),
        tg_params_create(t->p, "l2.bias", TG_F32, 2, (int64_t[]){1, 1}),
    };
    for (int k = 0; k < 4; k++)
        for (int64_t i = 0; i < tg_tensor_numel(w[k]); i++)
            tg_tensor_set(w[k], i, 0.5 * tg_rng_normal(&init));
    tg_optim_opts g = tg_optim_defaults(TG_OPTIM_ADAM);
    g.lr = 0.05, g.amsgrad = true, g.weight_decay = 1e-3;
    t->o = tg_optim_new_ex(TG_OPTIM_ADAM, t->p, &g);
    tg_optim_add_group(t->o, "*.bias", 0.02, 0.0);
    t->s = tg_sched_new_cosine(t->o, 3, 30, 1e-3);
    t->ts.rng = tg_rng_seeded(init_seed * 7 + 1);
    t->tp = tg_tape_new();
    return t;
}

static void trainer_free(trainer *t) {
    tg_tape_free(t->tp);
    tg_sched_free(t->s);
    tg_optim_free(t->o);
    tg_params_free(t->p);
    free(t);
}

/* One step on the next batch (wrapping into a new epoch), inputs jittered
 * with noise from the training RNG. */
static double train_step(trainer *t) {
    tg_tape *tp = t->tp;
    tg_tensor *x = tg_tape_tensor(tp, TG_F32, 2, (int64_t[]){BATCH, 2});
    tg_tensor *y = tg_tape_tensor(tp, TG_F32, 2, (int64_t[]){BATCH, 1});
    for (int r = 0; r < BATCH; r++) {
        if (t->ts.data_pos == N_DATA) t->ts.data_pos = 0, t->ts.epoch++;
        int64_t i = t->ts.data_pos++;
        for (int c = 0; c < 2; c++)
            tg_tensor_set(x, r * 2 + c, t->x[2 * i + c] + 0.01 * tg_rng_normal(&t->ts.rng));
        tg_tensor_set(y, r, t->y[i]);
    }
    tg_params *p = t->p;
    tg_tensor *h = tg_tanh(tp, tg_add(tp, tg_matmul(tp, x, tg_params_find(p, "l1.weight")),
                                      tg_params_find(p, "l1.bias")));
    tg_tensor *out = tg_add(tp, tg_matmul(tp, h, tg_params_find(p, "l2.weight")),
                            tg_params_find(p, "l2.bias"));
    tg_tensor *loss = tg_mse(tp, out, y);
    ck_assert_msg(loss != NULL, "%s", tg_tape_error(tp));
    double l = tg_tensor_item(loss);
    tg_params_zero_grad(p);
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    tg_clip_grad_norm(p, 1.0);
    ck_assert_int_eq(tg_optim_step(t->o), TG_OK);
    tg_sched_step(t->s);
    t->ts.step++;
    tg_tape_reset(tp);
    return l;
}

START_TEST(a_resumed_run_repeats_the_uninterrupted_losses_bit_for_bit) {
    enum { N = 24, K = 11 };
    double straight[N], resumed[N];
    trainer *a = trainer_new(1);
    for (int i = 0; i < N; i++) straight[i] = train_step(a);

    char *dir = ot_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/train.safetensors", dir);
    trainer *b = trainer_new(1);
    for (int i = 0; i < K; i++) resumed[i] = train_step(b);
    ck_assert_int_eq(tg_checkpoint_save(path, b->p, b->o, b->s, &b->ts), TG_OK);
    trainer_free(b);

    trainer *c = trainer_new(77);   /* other weights, other RNG */
    ck_assert_msg(tg_checkpoint_load(path, c->p, c->o, c->s, &c->ts) == TG_OK, "%s",
                  tg_last_error());
    ck_assert_int_eq(c->ts.step, K);
    ck_assert_int_eq(tg_optim_steps(c->o), K);
    ck_assert_int_eq(tg_sched_epoch(c->s), K);
    for (int i = K; i < N; i++) resumed[i] = train_step(c);

    for (int i = 0; i < N; i++)
        ck_assert_msg(memcmp(&straight[i], &resumed[i], sizeof(double)) == 0,
                      "step %d: loss %.17g uninterrupted, %.17g resumed", i, straight[i],
                      resumed[i]);
    for (int k = 0; k < tg_params_count(a->p); k++) {
        tg_tensor *u = tg_params_at(a->p, k), *v = tg_params_at(c->p, k);
        ck_assert(memcmp(tg_tensor_data(u), tg_tensor_data(v),
                         (size_t)tg_tensor_numel(u) * tg_dtype_size(tg_tensor_dtype(u))) == 0);
    }
    ck_assert_msg(straight[N - 1] < straight[0], "training did not reduce the loss");
    printf("resume: loss %.6g -> %.6g, steps %d..%d replayed bit for bit\n", straight[0],
           straight[N - 1], K, N - 1);
    trainer_free(a);
    trainer_free(c);
    ot_rmdir(dir);
}
END_TEST

/* ---- bad checkpoints ------------------------------------------------------------------ */
/* Copy src to dst, dropping the entry `drop`, renaming `from` to `to`,
 * zeroing the bytes of `zero` and setting metadata `key` to `val` (each NULL
 * to skip). */
static void rewrite(const char *src, const char *dst, const char *drop, const char *from,
                    const char *to, const char *zero, const char *key, const char *val) {
    tg_safetensors *f = tg_safetensors_open(src);
    ck_assert_ptr_nonnull(f);
    tg_safetensors_writer *w = tg_safetensors_writer_new();
    for (int i = 0; i < tg_safetensors_count(f); i++) {
        tg_st_info in;
        tg_safetensors_info(f, i, &in);
        if (drop && strcmp(in.name, drop) == 0) continue;
        const char *name = from && strcmp(in.name, from) == 0 ? to : in.name;
        static const unsigned char zeros[64];
        const void *data = zero && strcmp(in.name, zero) == 0 ? zeros : in.data;
        ck_assert(data != zeros || in.nbytes <= sizeof zeros);
        ck_assert_int_eq(
            tg__st_writer_add_raw(w, name, in.dtype, in.ndim, in.shape, data, in.nbytes), TG_OK);
    }
    const char *keys[] = {"format", "tapegrad.optim", "tapegrad.sched"};
    for (int k = 0; k < 3; k++) {
        const char *v = key && strcmp(key, keys[k]) == 0 ? val : tg_safetensors_meta(f, keys[k]);
        if (v) tg_safetensors_writer_meta(w, keys[k], v);
    }
    ck_assert_int_eq(tg_safetensors_writer_save(w, dst), TG_OK);
    tg_safetensors_writer_free(w);
    tg_safetensors_close(f);
}

typedef struct small {
    tg_params *p;
    tg_optim *o;
    tg_sched *s;
} small;

static small small_new(tg_optim_kind kind) {
    small m = {tg_params_new(), NULL, NULL};
    tg_tensor *w = tg_params_create(m.p, "w", TG_F64, 1, (int64_t[]){3});
    m.o = tg_optim_new(kind, m.p, 0.1);
    m.s = tg_sched_new_step(m.o, 2, 0.5);
    ot_set_grad(w, (double[]){1, 2, 3});
    tg_optim_step(m.o);
    tg_sched_step(m.s);
    return m;
}

static void small_free(small *m) {
    tg_sched_free(m->s);
    tg_optim_free(m->o);
    tg_params_free(m->p);
}

static const struct bad_ckpt {
    const char *what, *drop, *from, *to, *zero, *key, *val;
    tg_status status;
    const char *message;
} bad_ckpts[] = {
    {"no optimizer metadata", NULL, NULL, NULL, NULL, "tapegrad.optim", NULL, TG_ERR_FORMAT,
     "the file holds no optimizer state"},
    {"optimizer metadata not JSON", NULL, NULL, NULL, NULL, "tapegrad.optim", "{oops",
     TG_ERR_FORMAT, "optimizer metadata 'tapegrad.optim' is not a JSON object"},
    {"another optimizer kind", NULL, NULL, NULL, NULL, "tapegrad.optim",
     "{\"kind\":\"sgd\",\"steps\":\"1\",\"groups\":[{}]}", TG_ERR_FORMAT,
     "optimizer kind 'sgd' in the file, 'adam' here"},
    {"group without hyperparameters", NULL, NULL, NULL, NULL, "tapegrad.optim",
     "{\"kind\":\"adam\",\"steps\":\"1\",\"groups\":[{\"params\":[\"w\"]}]}", TG_ERR_FORMAT,
     "optimizer group 0 is malformed"},
    {"missing step count", "tapegrad.optim.step.w", NULL, NULL, NULL, NULL, NULL, TG_ERR_FORMAT,
     "tensor 'tapegrad.optim.step.w' is missing from the file"},
    {"unknown state tensor", NULL, "tapegrad.optim.exp_avg.w", "tapegrad.optim.momentum.w", NULL,
     NULL, NULL, TG_ERR_FORMAT,
     "tensor 'tapegrad.optim.momentum.w' is no state of a adam optimizer"},
    {"state of an unknown parameter", NULL, "tapegrad.optim.exp_avg.w",
     "tapegrad.optim.exp_avg.v", NULL, NULL, NULL, TG_ERR_FORMAT,
     "tensor 'tapegrad.optim.exp_avg.v' is no state"},
    {"no schedule metadata", NULL, NULL, NULL, NULL, "tapegrad.sched", NULL, TG_ERR_FORMAT,
     "the file holds no schedule state"},
    {"incomplete schedule metadata", NULL, NULL, NULL, NULL, "tapegrad.sched",
     "{\"kind\":\"step\"}", TG_ERR_FORMAT, "schedule metadata 'tapegrad.sched' is malformed"},
    {"missing parameter", "w", NULL, NULL, NULL, NULL, NULL, TG_ERR_FORMAT,
     "tensor 'w' is missing from the file"},
    {"missing rng", "tapegrad.train.rng", NULL, NULL, NULL, NULL, NULL, TG_ERR_FORMAT,
     "tensor 'tapegrad.train.rng' is missing from the file"},
    {"all-zero rng", NULL, NULL, NULL, "tapegrad.train.rng", NULL, NULL, TG_ERR_FORMAT,
     "tensor 'tapegrad.train.rng' holds the all-zero state"},
};

START_TEST(bad_checkpoints_are_errors_that_change_nothing) {
    const struct bad_ckpt *c = &bad_ckpts[_i];
    char *dir = ot_tmpdir();
    char good[1024], bad[1024];
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    small m = small_new(TG_OPTIM_ADAM);
    tg_train_state ts = {tg_rng_seeded(3), 1, 2, 3};
    ck_assert_int_eq(tg_checkpoint_save(good, m.p, m.o, m.s, &ts), TG_OK);
    rewrite(good, bad, c->drop, c->from, c->to, c->zero, c->key, c->val);

    small n = small_new(TG_OPTIM_ADAM);
    tg_tensor *w = tg_params_find(n.p, "w");
    tg_tensor_fill(w, 42);
    tg_optim_set_lr(n.o, 0, 0.123);
    tg_train_state nts = {tg_rng_seeded(9), 7, 7, 7};
    tg_status st = tg_checkpoint_load(bad, n.p, n.o, n.s, &nts);
    ck_assert_msg(st == c->status, "%s: status %s (%s)", c->what, tg_status_name(st),
                  tg_last_error());
    ck_assert_msg(strstr(tg_last_error(), c->message) != NULL, "%s: '%s' lacks '%s'", c->what,
                  tg_last_error(), c->message);
    ck_assert(strstr(tg_last_error(), "checkpoint_load: ") != NULL);
    ck_assert(tg_tensor_get(w, 0) == 42 && tg_optim_lr(n.o, 0) == 0.123 && nts.step == 7);
    ck_assert_int_eq(tg_sched_epoch(n.s), 1);
    /* The good file loads into the same objects. */
    ck_assert_int_eq(tg_checkpoint_load(good, n.p, n.o, n.s, &nts), TG_OK);
    ck_assert(nts.data_pos == 3 && nts.rng.s[0] == ts.rng.s[0]);
    small_free(&m);
    small_free(&n);
    ot_rmdir(dir);
}
END_TEST

START_TEST(checkpoint_parts_are_optional_and_checked) {
    char *dir = ot_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    small m = small_new(TG_OPTIM_SGD);
    ck_assert_int_eq(tg_checkpoint_save(path, m.p, m.o, NULL, NULL), TG_OK);
    /* A training checkpoint is still a parameter file. */
    ck_assert_int_eq(tg_params_load(m.p, path), TG_OK);
    small n = small_new(TG_OPTIM_ADAM);
    ck_assert_int_eq(tg_checkpoint_load(path, n.p, n.o, NULL, NULL), TG_ERR_FORMAT);
    ck_assert_last_error(TG_ERR_FORMAT, "optimizer kind 'sgd' in the file, 'adam' here");
    tg_train_state ts;
    ck_assert_int_eq(tg_checkpoint_load(path, m.p, NULL, NULL, &ts), TG_ERR_FORMAT);
    ck_assert_last_error(TG_ERR_FORMAT, "tensor 'tapegrad.train.rng' is missing");
    ck_assert_int_eq(tg_checkpoint_save(path, m.p, n.o, NULL, NULL), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "the optimizer must use that registry");
    tg_train_state unseeded = {0};   /* its generator would only ever output zeros */
    ck_assert_int_eq(tg_checkpoint_save(path, m.p, NULL, NULL, &unseeded), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "the training state's rng is all zero");
    ck_assert_int_eq(tg_checkpoint_load(path, n.p, m.o, NULL, NULL), TG_ERR_ARG);
    ck_assert_int_eq(tg_checkpoint_save(path, m.p, m.o, m.s, NULL), TG_OK);
    tg_sched *other = tg_sched_new_exp(m.o, 0.5);
    ck_assert_int_eq(tg_checkpoint_load(path, m.p, m.o, other, NULL), TG_ERR_FORMAT);
    ck_assert_last_error(TG_ERR_FORMAT, "schedule kind 'step' in the file, 'exp' here");
    tg_sched_free(other);
    small_free(&m);
    small_free(&n);
    ot_rmdir(dir);
}
END_TEST

START_TEST(optimizer_state_round_trips_through_a_checkpoint) {
    /* Every kind with every slot in use: momentum, centered, amsgrad. */
    for (int k = TG_OPTIM_SGD; k <= TG_OPTIM_ADADELTA; k++) {
        char *dir = ot_tmpdir();
        char path[1024];
        snprintf(path, sizeof path, "%s/o.safetensors", dir);
        tg_optim_opts g = tg_optim_defaults((tg_optim_kind)k);
        g.momentum = 0.9, g.centered = true, g.amsgrad = true;
        tg_params *p[2];
        tg_optim *o[2];
        for (int r = 0; r < 2; r++) {
            p[r] = tg_params_new();
            tg_params_create(p[r], "w", TG_F32, 1, (int64_t[]){4});
            o[r] = tg_optim_new_ex((tg_optim_kind)k, p[r], &g);
        }
        tg_tensor *w0 = tg_params_find(p[0], "w"), *w1 = tg_params_find(p[1], "w");
        for (int s = 0; s < 3; s++) {
            ot_set_grad(w0, (double[]){1, -2, 0.5, s});
            tg_optim_step(o[0]);
        }
        ck_assert_int_eq(tg_checkpoint_save(path, p[0], o[0], NULL, NULL), TG_OK);
        ck_assert_int_eq(tg_checkpoint_load(path, p[1], o[1], NULL, NULL), TG_OK);
        ot_set_grad(w0, (double[]){0.3, 0.1, -1, 2});
        ot_set_grad(w1, (double[]){0.3, 0.1, -1, 2});
        tg_optim_step(o[0]);
        tg_optim_step(o[1]);
        ck_assert_msg(memcmp(tg_tensor_data(w0), tg_tensor_data(w1), 16) == 0, "%s differs",
                      tg_optim_kind_name((tg_optim_kind)k));
        for (int r = 0; r < 2; r++) tg_optim_free(o[r]), tg_params_free(p[r]);
        ot_rmdir(dir);
    }
}
END_TEST

/* ---- carried tensors ------------------------------------------------------------------ */
/* A registry of carried state: h [2,3] float32 and c [2,3] float64, filled with v + i. */
static tg_params *carry_new(double v, int64_t rows) {
    tg_params *c = tg_params_new();
    tg_tensor *h = tg_params_create(c, "h.0", TG_F32, 2, TGT_SHAPE(rows, 3));
    tg_tensor *s = tg_params_create(c, "c.0", TG_F64, 2, TGT_SHAPE(rows, 3));
    for (int64_t i = 0; i < rows * 3; i++) {
        tg_tensor_set(h, i, v + (double)i / 8);
        tg_tensor_set(s, i, -v - (double)i / 3);
    }
    return c;
}

START_TEST(carried_tensors_round_trip_and_are_checked) {
    char *dir = ot_tmpdir();
    char path[1024], other[1024];
    snprintf(path, sizeof path, "%s/carry.safetensors", dir);
    snprintf(other, sizeof other, "%s/plain.safetensors", dir);
    small m = small_new(TG_OPTIM_ADAM);
    tg_train_state ts = {tg_rng_seeded(4), 0, 5, 5};
    tg_params *saved = carry_new(1.5, 2);
    ck_assert_int_eq(tg_checkpoint_save_ex(path, m.p, m.o, m.s, &ts,
                                           &(tg_checkpoint_extra){.carry = saved}), TG_OK);
    ck_assert_int_eq(tg_checkpoint_save(other, m.p, m.o, m.s, &ts), TG_OK);

    tg_params *back = carry_new(0, 2);
    tg_checkpoint_extra x = {.carry = back};
    ck_assert_int_eq(tg_checkpoint_load_ex(path, m.p, m.o, m.s, &ts, &x), TG_OK);
    for (int i = 0; i < 2; i++) {
        tg_tensor *a = tg_params_at(saved, i), *b = tg_params_at(back, i);
        size_t n = (size_t)tg_tensor_numel(a) * tg_dtype_size(tg_tensor_dtype(a));
        ck_assert_msg(memcmp(tg_tensor_data(a), tg_tensor_data(b), n) == 0, "'%s' differs",
                      tg_params_name(saved, i));
    }
    /* Without extra the carried tensors are ignored; a parameter load skips them too. */
    ck_assert_int_eq(tg_checkpoint_load(path, m.p, m.o, m.s, &ts), TG_OK);
    ck_assert_int_eq(tg_params_load(m.p, path), TG_OK);

    /* Asked for but absent, another shape, or one the registry lacks: errors that change nothing. */
    tg_params *wide = carry_new(7, 4), *fewer = tg_params_new();
    tg_params_create(fewer, "h.0", TG_F32, 2, TGT_SHAPE(2, 3));
    tg_tensor_fill(tg_params_at(fewer, 0), 7);
    ck_assert_int_eq(tg_checkpoint_load_ex(other, m.p, m.o, m.s, &ts, &x), TG_ERR_FORMAT);
    ck_assert_last_error(TG_ERR_FORMAT, "tensor 'tapegrad.carry.h.0' is missing from the file");
    ck_assert_int_eq(tg_checkpoint_load_ex(path, m.p, m.o, m.s, &ts,
                                           &(tg_checkpoint_extra){.carry = wide}), TG_ERR_SHAPE);
    ck_assert_last_error(TG_ERR_SHAPE, "tensor 'tapegrad.carry.h.0': shape [2,3] in file, [4,3]");
    ck_assert_int_eq(tg_checkpoint_load_ex(path, m.p, m.o, m.s, &ts,
                                           &(tg_checkpoint_extra){.carry = fewer}), TG_ERR_FORMAT);
    ck_assert_last_error(TG_ERR_FORMAT, "tensor 'tapegrad.carry.c.0' in the file is no carried "
                         "tensor of the model");
    ck_assert(tg_tensor_get(tg_params_at(wide, 0), 0) == 7);
    ck_assert(tg_tensor_get(tg_params_at(fewer, 0), 0) == 7);
    tg_params_free(wide);
    tg_params_free(fewer);
    tg_params_free(saved);
    tg_params_free(back);
    small_free(&m);
    ot_rmdir(dir);
}
END_TEST

Suite *suite_checkpoint(void) {
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_add_test(tc, a_save_killed_at_any_moment_leaves_a_complete_file);
    tcase_add_test(tc, a_resumed_run_repeats_the_uninterrupted_losses_bit_for_bit);
    tcase_add_loop_test(tc, bad_checkpoints_are_errors_that_change_nothing, 0,
                        (int)(sizeof bad_ckpts / sizeof bad_ckpts[0]));
    tcase_add_test(tc, checkpoint_parts_are_optional_and_checked);
    tcase_add_test(tc, optimizer_state_round_trips_through_a_checkpoint);
    tcase_add_test(tc, carried_tensors_round_trip_and_are_checked);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}
