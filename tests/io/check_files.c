/* tests/io/check_files.c - every loader refuses what is not a regular file
 * (a FIFO used to block open() forever), and the GloVe loader refuses values
 * that overflow its weights' dtype. An alarm turns a hang into a failure even
 * where Check does not fork (valgrind runs use CK_FORK=no). */
#include "io_tests.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

enum { HANG_SECONDS = 20 };

/* A scratch folder holding a FIFO (nobody ever writes to it); its path into pipe. */
static char *fifo_dir(char pipe[1024]) {
    char *dir = ot_tmpdir();
    snprintf(pipe, 1024, "%s", ot_path(dir, "pipe"));
    ck_assert_int_eq(mkfifo(pipe, 0600), 0);
    alarm(HANG_SECONDS);
    return dir;
}

static void fifo_done(char *dir) {
    alarm(0);
    ot_rmdir(dir);
}

/* The message names the path and says what it is. */
static void expect_refused(const char *who, const char *path, const char *kind) {
    char want[1200];
    snprintf(want, sizeof want, "%s: %s: cannot open: not a regular file (%s)", who, path, kind);
    ck_assert_last_error(TG_ERR_IO, want);
}

START_TEST(file_open_refuses_fifos_devices_and_folders) {
    char pipe[1024];
    char *dir = fifo_dir(pipe);
    ck_assert_int_eq(tg_file_open(pipe, "load"), -1);
    expect_refused("load", pipe, "a FIFO");
    ck_assert_ptr_null(tg_file_fopen(pipe, NULL));
    expect_refused("open", pipe, "a FIFO");
    ck_assert_int_eq(tg_file_open("/dev/null", "load"), -1);
    expect_refused("load", "/dev/null", "a character device");
    ck_assert_int_eq(tg_file_open(dir, "load"), -1);
    expect_refused("load", dir, "a folder");
    ck_assert_int_eq(tg_file_open(ot_path(dir, "missing"), "load"), -1);
    ck_assert_last_error(TG_ERR_IO, "cannot open: No such file or directory");
    ck_assert_int_eq(tg_file_open("", "load"), -1);
    ck_assert_int_eq(tg_file_open(NULL, "load"), -1);
    fifo_done(dir);
}
END_TEST

START_TEST(file_open_gives_a_blocking_descriptor_of_a_regular_file) {
    char *dir = ot_tmpdir();
    const char *path = ot_path(dir, "f.txt");
    FILE *w = fopen(path, "wb");
    ck_assert_ptr_nonnull(w);
    fputs("hello\n", w);
    fclose(w);
    int fd = tg_file_open(path, "load");
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    close(fd);
    FILE *f = tg_file_fopen(path, "load");
    ck_assert_ptr_nonnull(f);
    char line[16] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "hello\n");
    fclose(f);
    ot_rmdir(dir);
}
END_TEST

START_TEST(every_safetensors_loader_refuses_a_fifo) {
    char pipe[1024];
    char *dir = fifo_dir(pipe);
    tg_params *p = tg_params_new();
    tg_params_create(p, "w", TG_F32, 1, TGT_SHAPE(3));
    tg_optim *o = tg_optim_new(TG_OPTIM_ADAM, p, 0.1);
    tg_train_state ts = {.rng = tg_rng_seeded(1)};

    ck_assert_ptr_null(tg_safetensors_open(pipe));
    expect_refused("safetensors", pipe, "a FIFO");
    ck_assert_int_eq(tg_params_load(p, pipe), TG_ERR_IO);
    expect_refused("safetensors", pipe, "a FIFO");
    ck_assert_int_eq(tg_params_load_ex(p, pipe, &(tg_load_opts){.allow_missing = true}),
                     TG_ERR_IO);
    ck_assert_int_eq(tg_checkpoint_load(pipe, p, o, NULL, &ts), TG_ERR_IO);
    expect_refused("safetensors", pipe, "a FIFO");

    tg_optim_free(o);
    tg_params_free(p);
    fifo_done(dir);
}
END_TEST

/* ---- GloVe (nn/glove.c) ---------------------------------------------------------------- */
typedef struct glove_case {
    tg_params *p;
    tg_embedding_layer e;
    tg_vocab *v;
} glove_case;

static glove_case glove_new(tg_dtype dt) {
    glove_case g = {tg_params_new(), {0}, tg_vocab_new()};
    tg_rng rng = tg_rng_seeded(3);
    ck_assert_int_eq(tg_embedding_layer_init(&g.e, g.p, "emb", 6, 2, dt, &rng, NULL), TG_OK);
    ck_assert_int_eq(tg_vocab_add(g.v, "cat"), 4);
    return g;
}

static void glove_free(glove_case *g) {
    tg_vocab_free(g->v);
    tg_params_free(g->p);
}

START_TEST(glove_refuses_a_fifo) {
    char pipe[1024];
    char *dir = fifo_dir(pipe);
    glove_case g = glove_new(TG_F32);
    tg_glove_report r;
    ck_assert_int_eq(tg_embedding_layer_load_glove(&g.e, g.v, pipe, NULL, &r), TG_ERR_IO);
    char want[1200];
    snprintf(want, sizeof want, "glove: %s: cannot open: not a regular file (a FIFO)", pipe);
    ck_assert_str_eq(r.message, want);
    glove_free(&g);
    fifo_done(dir);
}
END_TEST

/* 1e300 is a finite double: a float64 table takes it, a float32 table would
 * hold inf, so the float32 load stops at that line, naming file and line. */
START_TEST(glove_refuses_values_its_dtype_cannot_hold) {
    char *dir = ot_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s", ot_path(dir, "vec.txt"));
    FILE *w = fopen(path, "wb");
    ck_assert_ptr_nonnull(w);
    fputs("dog 1 2\ncat 0.5 1e300\n", w);
    fclose(w);

    glove_case g = glove_new(TG_F32);
    tg_glove_report r;
    ck_assert_int_eq(tg_embedding_layer_load_glove(&g.e, g.v, path, NULL, &r), TG_ERR_FORMAT);
    char want[1200];
    snprintf(want, sizeof want, "glove: %s:2: value 2 after 'cat' is out of float32 range: "
             "'1e300'", path);
    ck_assert_str_eq(r.message, want);
    ck_assert_int_eq(r.error_line, 2);
    for (int64_t i = 0; i < tg_tensor_numel(g.e.weight); i++)
        ck_assert(isfinite(tg_tensor_get(g.e.weight, i)));
    glove_free(&g);

    g = glove_new(TG_F64);
    ck_assert_int_eq(tg_embedding_layer_load_glove(&g.e, g.v, path, NULL, &r), TG_OK);
    ck_assert(tg_tensor_get(g.e.weight, 4 * 2 + 1) == 1e300);
    glove_free(&g);
    ot_rmdir(dir);
}
END_TEST

Suite *suite_files(void) {
    Suite *s = suite_create("files");
    TCase *tc = tcase_create("files");
    tcase_set_timeout(tc, 2 * HANG_SECONDS);
    tcase_add_test(tc, file_open_refuses_fifos_devices_and_folders);
    tcase_add_test(tc, file_open_gives_a_blocking_descriptor_of_a_regular_file);
    tcase_add_test(tc, every_safetensors_loader_refuses_a_fifo);
    tcase_add_test(tc, glove_refuses_a_fifo);
    tcase_add_test(tc, glove_refuses_values_its_dtype_cannot_hold);
    suite_add_tcase(s, tc);
    return s;
}
