/* tests/io/check_temps.c - the temporary files of crash-safe saves: targets
 * whose names leave no room for a longer temporary name still save, and the
 * temporary files a killed save left behind are removed by the next save to
 * the same target, while a save in progress (its file locked) is left alone. */
#include "io_tests.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* White-box: the hash that shortens long temporary names. */
uint64_t tg__name_hash(const char *s);

static tg_params *small_params(double v) {
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_params_create(p, "w", TG_F32, 1, TGT_SHAPE(3));
    for (int i = 0; i < 3; i++) tg_tensor_set(w, i, v + i);
    return p;
}

/* Names in dir that contain ".tmp-". */
static int count_temporaries(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) n += strstr(e->d_name, ".tmp-") != NULL;
    if (d) closedir(d);
    return n;
}

static void touch(const char *dir, const char *name) {
    FILE *f = fopen(ot_path(dir, name), "wb");
    ck_assert_ptr_nonnull(f);
    fputs("partial", f);
    fclose(f);
}

static bool exists(const char *dir, const char *name) {
    return access(ot_path(dir, name), F_OK) == 0;
}

/* The temporary-name prefix of a target, as st_writer.c makes it. */
static void temp_prefix(const char *base, char *out, size_t size) {
    if (1 + strlen(base) + 11 <= 255) snprintf(out, size, ".%s.tmp-", base);
    else snprintf(out, size, ".%.226s~%016llx.tmp-", base, (unsigned long long)tg__name_hash(base));
}

/* Leftovers of the target are removed; a locked one, another target's and a
 * name that only looks alike stay. */
static void leftovers_case(const char *base) {
    char *dir = ot_tmpdir();
    char prefix[300], stale[320], held[320], other[320], alike[320];
    temp_prefix(base, prefix, sizeof prefix);
    snprintf(stale, sizeof stale, "%sa1b2c3", prefix);
    snprintf(held, sizeof held, "%sheld00", prefix);
    snprintf(alike, sizeof alike, "%sa1b2c3d", prefix);
    snprintf(other, sizeof other, ".other.safetensors.tmp-a1b2c3");
    bool alike_fits = strlen(alike) <= 255;   /* one byte longer than a temporary name */
    touch(dir, stale), touch(dir, held), touch(dir, other);
    if (alike_fits) touch(dir, alike);
    int fd = open(ot_path(dir, held), O_RDONLY);   /* a save in progress holds its lock */
    ck_assert_int_eq(flock(fd, LOCK_EX), 0);

    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, base);
    tg_params *p = small_params(1), *q = small_params(0);
    ck_assert_msg(tg_params_save(p, path) == TG_OK, "%s", tg_last_error());
    ck_assert_msg(!exists(dir, stale), "the killed save's file is still there");
    ck_assert(exists(dir, held) && exists(dir, other) && exists(dir, alike) == alike_fits);
    ck_assert_int_eq(count_temporaries(dir), 2 + alike_fits);   /* none of our own left */
    close(fd);                                     /* the holder is gone: now it goes too */
    ck_assert_int_eq(tg_params_save(p, path), TG_OK);
    ck_assert(!exists(dir, held) && exists(dir, other) && exists(dir, alike) == alike_fits);
    ck_assert_int_eq(tg_params_load(q, path), TG_OK);
    ck_assert(tg_tensor_get(tg_params_find(q, "w"), 2) == 3);
    tg_params_free(p);
    tg_params_free(q);
    ot_rmdir(dir);
}

START_TEST(the_next_save_removes_what_a_killed_save_left) { leftovers_case("ckpt.safetensors"); }
END_TEST

START_TEST(long_target_names_save_and_clean_up) {
    /* 243 bytes: the temporary name just fits; 244..255: it is shortened. */
    const size_t lengths[] = {243, 244, 250, 255};
    char base[4][256];
    for (size_t k = 0; k < 4; k++) {
        memset(base[k], 'n', lengths[k]);
        memcpy(base[k] + lengths[k] - 12, ".safetensors", 12);
        base[k][lengths[k]] = '\0';
        char *dir = ot_tmpdir();
        tg_params *p = small_params(4);
        ck_assert_msg(tg_params_save(p, ot_path(dir, base[k])) == TG_OK, "%zu bytes: %s",
                      lengths[k], tg_last_error());
        ck_assert_int_eq(tg_params_load(p, ot_path(dir, base[k])), TG_OK);
        tg_params_free(p);
        ot_rmdir(dir);
    }
    for (size_t k = 0; k < 4; k++) leftovers_case(base[k]);
}
END_TEST

/* The real thing: kill savers until one dies inside a save, then save once. */
START_TEST(a_save_after_a_kill_inside_a_save_leaves_no_temporary_file) {
    char *dir = ot_tmpdir();
    const char *path = ot_path(dir, "k.safetensors");
    char target[1024];
    snprintf(target, sizeof target, "%s", path);
    tg_params *p = tg_params_new();
    tg_params_create(p, "big", TG_F32, 1, TGT_SHAPE(1 << 20));   /* 4 MiB: saves take a while */
    ck_assert_int_eq(tg_params_save(p, target), TG_OK);
    tg_rng rng = tg_rng_seeded(77);
    int kills = 0;
    while (count_temporaries(dir) == 0 && kills < 200) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            for (;;)
                if (tg_params_save(p, target) != TG_OK) _exit(3);
        struct timespec ts = {0, (long)(tg_rng_uniform(&rng) * 2e7)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        kills++;
    }
    ck_assert_msg(count_temporaries(dir) > 0, "no kill in %d landed inside a save", kills);
    ck_assert_int_eq(tg_params_save(p, target), TG_OK);
    ck_assert_int_eq(count_temporaries(dir), 0);
    tg_params_free(p);
    ot_rmdir(dir);
}
END_TEST

Suite *suite_temps(void) {
    Suite *s = suite_create("temps");
    TCase *tc = tcase_create("temps");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, the_next_save_removes_what_a_killed_save_left);
    tcase_add_test(tc, long_target_names_save_and_clean_up);
    tcase_add_test(tc, a_save_after_a_kill_inside_a_save_leaves_no_temporary_file);
    suite_add_tcase(s, tc);
    return s;
}
