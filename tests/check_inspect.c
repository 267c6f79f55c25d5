/* tests/check_inspect.c - the tape walk, the DOT export and the memory report
 * (tapegrad/inspect.h), with fusion off and on.
 *
 *   check_inspect           the Check suite (each test forked)
 *   check_inspect render    writes a tape's DOT file and renders it with
 *                           `dot -Tpng`; exit 77 (skipped) when dot is missing */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tapegrad.h"
#include "tg_test.h"

/* A leaf from values, requiring grad as asked (caller-owned). */
static tg_tensor *leaf(tg_dtype dt, int64_t r, int64_t c, bool grad) {
    tg_tensor *t = tg_tensor_new(dt, 2, TGT_SHAPE(r, c));
    ck_assert_ptr_nonnull(t);
    for (int64_t i = 0; i < r * c; i++) tg_tensor_set(t, i, 0.01 * (double)(i % 97) - 0.3);
    tg_tensor_set_requires_grad(t, grad);
    return t;
}

static void assert_shape(const tg_tape_value *v, tg_dtype dt, int ndim, const int64_t *shape) {
    ck_assert_int_eq(v->dtype, dt);
    ck_assert_int_eq(v->ndim, ndim);
    for (int i = 0; i < ndim; i++) ck_assert_int_eq(v->shape[i], shape[i]);
}

/* y = sum(sigmoid(x W)), x [2,3] an input, W [3,4] a parameter, unfused:
 * three nodes, each reading the one before. */
START_TEST(walk_names_shapes_and_links) {
    tg_tape *tp = tg_tape_new();
    tg_tape_set_fusion(tp, false);
    tg_tensor *x = leaf(TG_F32, 2, 3, false), *w = leaf(TG_F32, 3, 4, true);
    tg_tensor *loss = tg_sum(tp, tg_sigmoid(tp, tg_matmul(tp, x, w)));
    ck_assert_msg(loss != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_tape_node_count(tp), 3);
    const char *ops[] = {"matmul", "sigmoid", "sum"};
    tg_tape_node_info n;
    for (int64_t i = 0; i < 3; i++) {
        ck_assert_int_eq(tg_tape_node_get(tp, i, &n), TG_OK);
        ck_assert_int_eq(n.index, i);
        ck_assert_str_eq(n.op, ops[i]);
        ck_assert(n.needs_grad);
        ck_assert_int_eq(n.fused_group, -1);
        ck_assert_int_eq(n.output.producer, i);
    }
    tg_tape_value v;
    ck_assert_int_eq(tg_tape_node_get(tp, 0, &n), TG_OK);
    ck_assert_int_eq(n.n_inputs, 2);
    assert_shape(&n.output, TG_F32, 2, TGT_SHAPE(2, 4));
    ck_assert_int_eq(tg_tape_node_input(tp, 0, 0, &v), TG_OK);
    ck_assert(v.tensor == x && v.producer == -1 && !v.requires_grad);
    assert_shape(&v, TG_F32, 2, TGT_SHAPE(2, 3));
    ck_assert_int_eq(tg_tape_node_input(tp, 0, 1, &v), TG_OK);
    ck_assert(v.tensor == w && v.producer == -1 && v.requires_grad);
    ck_assert_int_eq(tg_tape_node_input(tp, 2, 0, &v), TG_OK);
    ck_assert_int_eq(v.producer, 1);
    ck_assert_int_eq(tg_tape_node_get(tp, 2, &n), TG_OK);
    ck_assert_int_eq(n.output.ndim, 0);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tape_free(tp);
}
END_TEST

/* Errors name the call and the range; the tape's own error stays clear. */
START_TEST(walk_errors_do_not_crash) {
    tg_tape_node_info n;
    tg_tape_value v;
    ck_assert_int_eq(tg_tape_node_count(NULL), -1);
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
    ck_assert_int_eq(tg_tape_node_get(NULL, 0, &n), TG_ERR_ARG);
    ck_assert_int_eq(tg_tape_node_input(NULL, 0, 0, &v), TG_ERR_ARG);
    tg_tape *tp = tg_tape_new();
    ck_assert_int_eq(tg_tape_node_count(tp), 0);
    ck_assert_int_eq(tg_tape_node_get(tp, 0, &n), TG_ERR_INDEX);
    ck_assert_str_eq(tg_last_error(), "tape_node_get: node 0 out of range: the tape has 0 nodes");
    tg_tensor *x = leaf(TG_F64, 2, 2, true);
    ck_assert_ptr_nonnull(tg_tanh(tp, x));
    ck_assert_int_eq(tg_tape_node_get(tp, -1, &n), TG_ERR_INDEX);
    ck_assert_int_eq(tg_tape_node_get(tp, 1, &n), TG_ERR_INDEX);
    ck_assert_int_eq(tg_tape_node_get(tp, INT64_MAX, &n), TG_ERR_INDEX);
    ck_assert_int_eq(tg_tape_node_get(tp, 0, NULL), TG_ERR_ARG);
    ck_assert_int_eq(tg_tape_node_input(tp, 0, 1, &v), TG_ERR_INDEX);
    ck_assert_str_eq(tg_last_error(), "tape_node_input: input 1 out of range: node 0 (tanh) has 1");
    ck_assert_int_eq(tg_tape_node_input(tp, 0, -1, &v), TG_ERR_INDEX);
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    tg_tape_reset(tp);   /* a reset tape has no nodes: the old index is out of range */
    ck_assert_int_eq(tg_tape_node_get(tp, 0, &n), TG_ERR_INDEX);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* An elementwise chain on [16,32] (512 elements: fusible) then a sum:
 * with fusion on, the chain's nodes share one group named by its first node
 * and walking does not compute the pending values (no arena bytes move);
 * with fusion off every node runs alone. */
static tg_tensor *chain(tg_tape *tp, tg_tensor *x) {
    tg_tensor *a = tg_tanh(tp, x);
    tg_tensor *b = tg_mul(tp, a, x);
    return tg_add(tp, b, x);
}

START_TEST(walk_fused_groups) {
    for (int fused = 0; fused < 2; fused++) {
        tg_tape *tp = tg_tape_new();
        tg_tape_set_fusion(tp, fused);
        tg_tensor *x = leaf(TG_F32, 16, 32, true);
        ck_assert_ptr_nonnull(chain(tp, x));
        tg_tape_stats before, after;
        tg_tape_stats_get(tp, &before);
        tg_tape_node_info n;
        ck_assert_int_eq(tg_tape_node_count(tp), 3);
        for (int64_t i = 0; i < 3; i++) {
            ck_assert_int_eq(tg_tape_node_get(tp, i, &n), TG_OK);
            ck_assert_int_eq(n.fused_group, fused ? 0 : -1);
            assert_shape(&n.output, TG_F32, 2, TGT_SHAPE(16, 32));
        }
        FILE *f = tmpfile();
        ck_assert_int_eq(tg_tape_print_dot(tp, f), TG_OK);
        fclose(f);
        tg_tape_stats_get(tp, &after);
        ck_assert_int_eq(after.arena_activations, before.arena_activations);
        ck_assert_int_eq(after.arena_used, before.arena_used);
        /* the open group takes a second chain too; the sum reads it: the
         * group runs, its nodes keep their group */
        tg_tensor *s = tg_sum(tp, chain(tp, x));
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(tg_tape_node_get(tp, 6, &n), TG_OK);
        ck_assert_str_eq(n.op, "sum");
        ck_assert_int_eq(n.fused_group, -1);
        ck_assert_int_eq(tg_tape_node_get(tp, 4, &n), TG_OK);
        ck_assert_int_eq(n.fused_group, fused ? 0 : -1);
        ck_assert_int_eq(tg_backward(tp, s), TG_OK);
        tg_tensor_free(x);
        tg_tape_free(tp);
    }
}
END_TEST

/* The DOT text of one fixed tape, as a malloc'd string. */
static char *dot_text(const tg_tape *tp) {
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(tg_tape_print_dot(tp, f), TG_OK);
    long len = ftell(f);
    ck_assert_int_gt(len, 0);
    char *s = calloc((size_t)len + 1, 1);
    rewind(f);
    ck_assert_int_eq(fread(s, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return s;
}

START_TEST(dot_names_ops_shapes_params_and_groups) {
    tg_tape *tp = tg_tape_new();
    tg_tape_set_fusion(tp, true);
    tg_tensor *x = leaf(TG_F32, 16, 24, false), *w = leaf(TG_F32, 24, 32, true);
    tg_tensor *h = tg_matmul(tp, x, w);                                   /* [16,32] */
    tg_tensor *loss = tg_sum(tp, chain(tp, h));
    ck_assert_msg(loss != NULL, "%s", tg_tape_error(tp));
    char *s = dot_text(tp);
    ck_assert_msg(strncmp(s, "digraph tape {", 14) == 0, "%s", s);
    ck_assert_ptr_nonnull(strstr(s, "0 matmul\\n[16,32] float32"));
    ck_assert_ptr_nonnull(strstr(s, "2 mul\\n[16,32] float32"));
    ck_assert_ptr_nonnull(strstr(s, "4 sum\\n[] float32"));
    ck_assert_ptr_nonnull(strstr(s, "subgraph cluster_g1 {"));
    ck_assert_ptr_nonnull(strstr(s, "label=\"[24,32] float32\", style=filled"));   /* W */
    ck_assert_ptr_nonnull(strstr(s, "label=\"[16,24] float32\"];"));               /* x */
    ck_assert_ptr_nonnull(strstr(s, "n0 -> n1;"));
    ck_assert_ptr_nonnull(strstr(s, "n3 -> n4;"));
    ck_assert_msg(strrchr(s, '}') && strcmp(strrchr(s, '}'), "}\n") == 0, "unterminated: %s", s);
    free(s);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tape_free(tp);
}
END_TEST

static bool file_is(const char *path, const char *want) {
    char buf[64] = {0};
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return n == strlen(want) && strcmp(buf, want) == 0;
}

/* A failed write leaves what was there; a good one replaces it whole; no
 * temporary file is left either way. */
START_TEST(dot_file_replaced_or_left_alone) {
    char dir[] = "/tmp/tg_inspect_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128], sub[128], cmd[256];
    snprintf(path, sizeof path, "%s/cell.dot", dir);
    snprintf(sub, sizeof sub, "%s/folder", dir);
    FILE *f = fopen(path, "w");
    fputs("keep", f);
    fclose(f);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = leaf(TG_F64, 2, 2, true);
    ck_assert_ptr_nonnull(tg_exp(tp, x));
    ck_assert_int_eq(tg_tape_write_dot(NULL, path), TG_ERR_ARG);
    ck_assert_int_eq(tg_tape_write_dot(tp, NULL), TG_ERR_ARG);
    ck_assert_int_eq(tg_tape_write_dot(tp, ""), TG_ERR_ARG);
    ck_assert(file_is(path, "keep"));
    ck_assert_int_eq(tg_tape_write_dot(tp, sub), TG_ERR_IO);   /* a folder is not replaced */
    ck_assert_msg(strstr(tg_last_error(), "tape_write_dot: ") != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_tape_write_dot(tp, "/nonexistent-folder/cell.dot"), TG_ERR_IO);
    ck_assert_int_eq(tg_tape_write_dot(tp, path), TG_OK);
    ck_assert(!file_is(path, "keep"));
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 2 && grep -q '0 exp' %s", dir, path);
    ck_assert_msg(system(cmd) == 0, "a temporary file was left, or the graph is missing");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* Worked numbers: arena blocks are rounded up to 64 bytes. tanh of a [8,16]
 * float32 input is 512 bytes of activations, its sum a scalar (4 bytes ->
 * 64); a tape tensor [3,5] float64 is 120 -> 128. Backward adds the
 * gradients of the two intermediates: 512 + 64. */
START_TEST(memory_worked_numbers) {
    tg_tape *tp = tg_tape_new();
    tg_tape_set_fusion(tp, false);
    tg_tensor *x = leaf(TG_F32, 8, 16, true);
    tg_tape_memory m;
    ck_assert_int_eq(tg_tape_memory_get(tp, &m), TG_OK);
    ck_assert_int_eq(m.activations + m.gradients, 0);
    tg_tensor *loss = tg_sum(tp, tg_tanh(tp, x));
    ck_assert_ptr_nonnull(loss);
    ck_assert_int_eq(tg_tape_memory_get(tp, &m), TG_OK);
    ck_assert_int_eq(m.activations, 512 + 64);
    ck_assert_int_eq(m.gradients, 0);
    ck_assert_ptr_nonnull(tg_tape_tensor(tp, TG_F64, 2, TGT_SHAPE(3, 5)));
    ck_assert_int_eq(tg_tape_memory_get(tp, &m), TG_OK);
    ck_assert_int_eq(m.activations, 512 + 64 + 128);
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    ck_assert_int_eq(tg_tape_memory_get(tp, &m), TG_OK);
    ck_assert_int_eq(m.gradients, 512 + 64);
    ck_assert_uint_ge(m.used, m.activations + m.gradients + m.scratch);
    ck_assert_uint_ge(m.peak, m.used);
    ck_assert_uint_ge(m.capacity, m.used);

    FILE *f = tmpfile();
    ck_assert_int_eq(tg_tape_memory_report(tp, f), TG_OK);
    char text[2048] = {0};
    rewind(f);
    ck_assert_uint_gt(fread(text, 1, sizeof text - 1, f), 0);
    fclose(f);
    ck_assert_msg(strstr(text, "activations            704\n"), "%s", text);
    ck_assert_msg(strstr(text, "gradients              576\n"), "%s", text);
    ck_assert_msg(strstr(text, "tanh                            512         1 nodes\n"), "%s", text);
    ck_assert_msg(strstr(text, "sum                              64         1 nodes\n"), "%s", text);
    ck_assert_msg(strstr(text, "tanh") < strstr(text, "  sum"), "largest first: %s", text);

    ck_assert_int_eq(tg_tape_memory_get(NULL, &m), TG_ERR_ARG);
    ck_assert_int_eq(tg_tape_memory_get(tp, NULL), TG_ERR_ARG);
    ck_assert_int_eq(tg_tape_memory_report(tp, NULL), TG_ERR_ARG);
    ck_assert_int_eq(tg_tape_memory_report(NULL, stderr), TG_ERR_ARG);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* check_inspect render: a fused tape written to a file and drawn by dot. */
static int render(void) {
    if (system("command -v dot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "dot (graphviz) is not installed: skipped\n");
        return 77;
    }
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_new(TG_F32, 2, TGT_SHAPE(16, 32)), *w = tg_tensor_new(TG_F32, 2, TGT_SHAPE(32, 32));
    tg_tensor_set_requires_grad(w, true);
    tg_tensor *loss = tg_sum(tp, chain(tp, tg_matmul(tp, x, w)));
    char dir[] = "/tmp/tg_render_XXXXXX", cmd[256];
    int rc = 1;
    if (loss && mkdtemp(dir)) {
        snprintf(cmd, sizeof cmd, "%s/t.dot", dir);
        if (tg_tape_write_dot(tp, cmd) == TG_OK) {
            snprintf(cmd, sizeof cmd,
                     "cd %s && dot -Tpng t.dot -o t.png && head -c 8 t.png | od -An -tx1 | "
                     "tr -d ' \\n' | grep -qx 89504e470d0a1a0a",
                     dir);
            rc = system(cmd) == 0 ? 0 : 1;
        }
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) rc = 1;
    }
    if (rc) fprintf(stderr, "render failed: %s\n", tg_last_error());
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tape_free(tp);
    return rc;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "render") == 0) return render();
    Suite *s = suite_create("inspect");
    TCase *tc = tcase_create("inspect");
    tcase_add_test(tc, walk_names_shapes_and_links);
    tcase_add_test(tc, walk_errors_do_not_crash);
    tcase_add_test(tc, walk_fused_groups);
    tcase_add_test(tc, dot_names_ops_shapes_params_and_groups);
    tcase_add_test(tc, dot_file_replaced_or_left_alone);
    tcase_add_test(tc, memory_worked_numbers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
