/* tests/io/st_tool.c - the C side of the Python interop test (interop.py).
 *   st_tool write PATH    save a fixed model with tg_params_save
 *   st_tool read PATH     print every tensor of a safetensors file:
 *                         "name<TAB>dtype<TAB>shape<TAB>v0 v1 ..." (values %.17g)
 *                         and each metadata key given after PATH as "meta<TAB>key<TAB>value" */
#include <stdio.h>
#include <string.h>

#include "tapegrad.h"
#include "tapegrad/io.h"

static int write_model(const char *path) {
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_params_create(p, "layer.weight", TG_F32, 2, (int64_t[]){2, 3});
    tg_tensor *b = tg_params_create(p, "layer.bias", TG_F64, 1, (int64_t[]){3});
    tg_tensor *ids = tg_params_create(p, "ids", TG_I32, 1, (int64_t[]){4});
    tg_tensor *s = tg_params_create(p, "scalar", TG_F32, 0, NULL);
    tg_params_create(p, "empty", TG_F64, 2, (int64_t[]){0, 3});
    for (int i = 0; i < 6; i++) tg_tensor_set(w, i, i * 0.5 - 1);
    const double bv[3] = {1e-300, -2.5, 3.25};
    for (int i = 0; i < 3; i++) tg_tensor_set(b, i, bv[i]);
    const double iv[4] = {-1, 0, 7, 2147483647};
    for (int i = 0; i < 4; i++) tg_tensor_set(ids, i, iv[i]);
    tg_tensor_set(s, 0, 1.5);
    tg_status st = tg_params_save(p, path);
    if (st != TG_OK) fprintf(stderr, "%s\n", tg_last_error());
    tg_params_free(p);
    return st == TG_OK ? 0 : 1;
}

static int read_file(const char *path, int n_keys, char **keys) {
    tg_safetensors *f = tg_safetensors_open(path);
    if (!f) {
        fprintf(stderr, "%s\n", tg_last_error());
        return 1;
    }
    for (int i = 0; i < tg_safetensors_count(f); i++) {
        tg_st_info in;
        tg_safetensors_info(f, i, &in);
        bool ints = strcmp(in.dtype, "I32") == 0 || strcmp(in.dtype, "I64") == 0;
        tg_tensor *t = tg_safetensors_get(f, in.name, ints ? TG_I32 : TG_F64);
        if (!t) {
            fprintf(stderr, "%s\n", tg_last_error());
            return 1;
        }
        printf("%s\t%s\t", in.name, in.dtype);
        for (int d = 0; d < in.ndim; d++) printf(d ? ",%lld" : "%lld", (long long)in.shape[d]);
        printf("\t");
        for (int64_t k = 0; k < in.numel; k++) printf(k ? " %.17g" : "%.17g", tg_tensor_get(t, k));
        printf("\n");
        tg_tensor_free(t);
    }
    for (int k = 0; k < n_keys; k++) {
        const char *v = tg_safetensors_meta(f, keys[k]);
        printf("meta\t%s\t%s\n", keys[k], v ? v : "(absent)");
    }
    tg_safetensors_close(f);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "write") == 0) return write_model(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "read") == 0) return read_file(argv[2], argc - 3, argv + 3);
    fprintf(stderr, "usage: st_tool write PATH | st_tool read PATH [META_KEY...]\n");
    return 2;
}
