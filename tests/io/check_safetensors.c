/* tests/io/check_safetensors.c - the safetensors reader and writer: round
 * trips, the byte layout, dtype conversion, and every kind of corrupt or
 * mismatched file giving an error that names the tensor. */
#include "io_tests.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <time.h>

/* A file image: 8-byte little-endian header length, header, data. */
typedef struct image {
    unsigned char b[4096];
    size_t n;
} image;

static image make_image_len(uint64_t hlen_field, const char *json, const void *data, size_t dlen) {
    image im = {{0}, 0};
    size_t hl = strlen(json);
    ck_assert(8 + hl + dlen <= sizeof im.b);
    for (int i = 0; i < 8; i++) im.b[i] = (unsigned char)(hlen_field >> (8 * i));
    memcpy(im.b + 8, json, hl);
    if (dlen) memcpy(im.b + 8 + hl, data, dlen);
    im.n = 8 + hl + dlen;
    return im;
}

static image make_image(const char *json, const void *data, size_t dlen) {
    return make_image_len(strlen(json), json, data, dlen);
}

static void write_image(const char *path, const image *im) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(im->b, 1, im->n, f), im->n);
    fclose(f);
}

/* ---- round trip -------------------------------------------------------------------- */
static tg_params *model(double seed_value) {
    tg_params *p = tg_params_new();
    tg_tensor *w = tg_params_create(p, "layer.0.weight", TG_F32, 2, (int64_t[]){3, 4});
    tg_tensor *b = tg_params_create(p, "layer.0.bias", TG_F64, 1, (int64_t[]){4});
    tg_tensor *s = tg_params_create(p, "scalar", TG_F64, 0, NULL);
    tg_tensor *ids = tg_params_create(p, "ids", TG_I32, 1, (int64_t[]){3});
    tg_params_create(p, "empty", TG_F32, 2, (int64_t[]){0, 5});
    tg_rng r = tg_rng_seeded((uint64_t)seed_value);
    for (int i = 0; i < 12; i++) tg_tensor_set(w, i, seed_value * tg_rng_normal(&r));
    for (int i = 0; i < 4; i++) tg_tensor_set(b, i, seed_value * tg_rng_normal(&r));
    tg_tensor_set(s, 0, seed_value / 3);
    for (int i = 0; i < 3; i++) tg_tensor_set(ids, i, -7 * i);
    return p;
}

static void assert_same_bits(tg_params *a, tg_params *b) {
    ck_assert_int_eq(tg_params_count(a), tg_params_count(b));
    for (int i = 0; i < tg_params_count(a); i++) {
        tg_tensor *x = tg_params_at(a, i), *y = tg_params_at(b, i);
        size_t n = (size_t)tg_tensor_numel(x) * tg_dtype_size(tg_tensor_dtype(x));
        ck_assert_msg(memcmp(tg_tensor_data(x), tg_tensor_data(y), n) == 0, "'%s' differs",
                      tg_params_name(a, i));
    }
}

/* tanh(x W) [2,4] from a model's weight. */
static tg_tensor *forward(tg_tape *tp, tg_params *p) {
    double xs[6] = {0.5, -1, 2, 0.25, 0.125, -3};
    tg_tensor *x = tg_tape_tensor(tp, TG_F32, 2, (int64_t[]){2, 3});
    for (int i = 0; i < 6; i++) tg_tensor_set(x, i, xs[i]);
    return tg_tanh(tp, tg_matmul(tp, x, tg_params_find(p, "layer.0.weight")));
}

START_TEST(saved_parameters_load_into_a_fresh_model_bit_for_bit) {
    char *dir = ot_tmpdir();
    tg_params *a = model(1.7), *b = model(0);
    ck_assert_int_eq(tg_params_save(a, ot_path(dir, "m.safetensors")), TG_OK);
    ck_assert_int_eq(tg_params_load(b, ot_path(dir, "m.safetensors")), TG_OK);
    assert_same_bits(a, b);
    tg_tape *tp = tg_tape_new();
    tg_tensor *ya = forward(tp, a), *yb = forward(tp, b);
    ck_assert_ptr_nonnull(ya);
    ck_assert(memcmp(tg_tensor_data(ya), tg_tensor_data(yb), 8 * sizeof(float)) == 0);
    tg_tape_free(tp);
    tg_params_free(a);
    tg_params_free(b);
    ot_rmdir(dir);
}
END_TEST

START_TEST(the_file_has_the_safetensors_layout) {
    char *dir = ot_tmpdir();
    tg_params *a = model(2.0);
    const char *path = ot_path(dir, "m.safetensors");
    ck_assert_int_eq(tg_params_save(a, path), TG_OK);
    FILE *f = fopen(path, "rb");
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
    ck_assert_uint_eq(hlen % 8, 0);   /* data starts 8-byte aligned */
    /* 12 F32 + 4 F64 + 1 F64 + 3 I32 + 0 */
    ck_assert_uint_eq(n, 8 + hlen + 48 + 32 + 8 + 12);
    cJSON *h = cJSON_ParseWithLength((const char *)buf + 8, hlen);
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(h, "__metadata__"), "format")->valuestring, "pt");
    cJSON *w = cJSON_GetObjectItem(h, "layer.0.weight");
    ck_assert_str_eq(cJSON_GetObjectItem(w, "dtype")->valuestring, "F32");
    ck_assert_int_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(w, "shape"), 1)->valueint, 4);
    cJSON *off = cJSON_GetObjectItem(w, "data_offsets");
    int begin = cJSON_GetArrayItem(off, 0)->valueint;
    ck_assert_int_eq(cJSON_GetArrayItem(off, 1)->valueint - begin, 48);
    float first;
    memcpy(&first, buf + 8 + hlen + begin, 4);
    ck_assert(first == (float)tg_tensor_get(tg_params_find(a, "layer.0.weight"), 0));
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(h, "ids"), "dtype")->valuestring,
                     "I32");
    cJSON_Delete(h);
    tg_params_free(a);
    ot_rmdir(dir);
}
END_TEST

START_TEST(half_precision_and_int64_convert_on_load) {
    /* F16 0x3C00 = 1, 0xC000 = -2, 0x0001 = 2^-24; BF16 0x3FC0 = 1.5; I64 5, -6. */
    const unsigned char data[] = {0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0xC0, 0x3F,
                                  5,    0,    0,    0,    0,    0,    0,    0,
                                  0xFA, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    image im = make_image("{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                          "\"bf\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[6,8]},"
                          "\"i\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[8,24]},"
                          "\"__metadata__\":{\"who\":\"test\"}}", data, sizeof data);
    tg_safetensors *f = tg_safetensors_parse(im.b, im.n);
    ck_assert_msg(f != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_safetensors_count(f), 3);
    ck_assert_str_eq(tg_safetensors_meta(f, "who"), "test");
    ck_assert_ptr_null(tg_safetensors_meta(f, "nobody"));
    tg_tensor *h = tg_safetensors_get(f, "h", TG_F64);
    ck_assert(tg_tensor_get(h, 0) == 1 && tg_tensor_get(h, 1) == -2 &&
              tg_tensor_get(h, 2) == ldexp(1, -24));
    tg_tensor *bf = tg_safetensors_get(f, "bf", TG_F32);
    ck_assert(tg_tensor_item(bf) == 1.5);
    tg_tensor *i = tg_safetensors_get(f, "i", TG_I32);
    ck_assert(tg_tensor_get(i, 0) == 5 && tg_tensor_get(i, 1) == -6);
    ck_assert_ptr_null(tg_safetensors_get(f, "i", TG_F32));
    ck_assert_last_error(
        TG_ERR_DTYPE, "safetensors_get: <memory>: tensor 'i': dtype I64 cannot load into float32");
    ck_assert_ptr_null(tg_safetensors_get(f, "nope", TG_F32));
    ck_assert_last_error(TG_ERR_ARG, "no tensor 'nope'");
    tg_st_info in;
    ck_assert_int_eq(tg_safetensors_info(f, tg_safetensors_find(f, "i"), &in), TG_OK);
    ck_assert_str_eq(in.dtype, "I64");
    ck_assert_int_eq(in.nbytes, 16);
    ck_assert_int_eq(tg_safetensors_info(f, 3, &in), TG_ERR_ARG);
    tg_tensor_free(h);
    tg_tensor_free(bf);
    tg_tensor_free(i);
    tg_safetensors_close(f);
}
END_TEST

START_TEST(int64_out_of_int32_range_is_an_error_naming_the_element) {
    int64_t big[2] = {1, (int64_t)1 << 40};
    image im =
        make_image("{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", big, 16);
    tg_safetensors *f = tg_safetensors_parse(im.b, im.n);
    ck_assert_ptr_null(tg_safetensors_get(f, "ids", TG_I32));
    ck_assert_last_error(TG_ERR_DTYPE,
                         "tensor 'ids': element 1 = 1099511627776 does not fit int32");
    tg_safetensors_close(f);
}
END_TEST

/* ---- corrupt files --------------------------------------------------------------- */
#define T32(name, shape, off)                                                                      \
    "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":" off "}"

static const struct corrupt {
    const char *what;
    const char *json;
    int64_t hlen;          /* header length field; -1: the JSON's length */
    size_t data_len;       /* zero bytes of data after the header       */
    const char *message;
    size_t json_len;       /* 0: strlen(json)                           */
} corrupt[] = {
    {"invalid JSON", "{\"a\":", -1, 0, "the header is not valid JSON", 0},
    {"JSON array", "[1,2]", -1, 0, "the header is not a JSON object", 0},
    {"trailing bytes", "{} x", -1, 0, "the header has bytes after its JSON object", 0},
    {"NUL in header", "{}\0  ", -1, 0, "the header has bytes after its JSON object", 5},
    {"header past the file", "{}", 1000, 0, "header length 1000 exceeds the file (2 bytes)", 0},
    {"header over the limit", "{}", 200000000, 0,
     "header length 200000000 exceeds the 100000000-byte limit", 0},
    {"entry not an object", "{\"w\":3}", -1, 0, "tensor 'w': entry is not a JSON object", 0},
    {"missing dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 4,
     "tensor 'w': dtype is missing", 0},
    {"unknown dtype", "{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 4,
     "tensor 'w': unknown dtype 'F33'", 0},
    {"shape not an array", "{\"w\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", -1, 4,
     "tensor 'w': shape is missing or not an array", 0},
    {"negative dimension", "{" T32("w", "[-1]", "[0,4]") "}", -1, 4,
     "tensor 'w': shape holds a value that is not a non-negative integer", 0},
    {"fractional dimension", "{" T32("w", "[1.5]", "[0,4]") "}", -1, 4,
     "tensor 'w': shape holds a value that is not a non-negative integer", 0},
    {"string dimension", "{" T32("w", "[\"1\"]", "[0,4]") "}", -1, 4,
     "tensor 'w': shape holds a value that is not a non-negative integer", 0},
    {"too many dimensions", "{" T32("w", "[1,1,1,1,1,1,1]", "[0,4]") "}", -1, 4,
     "tensor 'w': 7 dimensions, at most 6 are supported", 0},
    {"huge shape", "{" T32("w", "[1099511627776,1099511627776]", "[0,4]") "}", -1, 4,
     "tensor 'w': shape [1099511627776,1099511627776] is too large", 0},
    {"one offset", "{" T32("w", "[1]", "[0]") "}", -1, 4,
     "tensor 'w': data_offsets is not [begin, end]", 0},
    {"begin after end", "{" T32("w", "[0]", "[4,0]") "}", -1, 4,
     "tensor 'w': data_offsets is not [begin, end]", 0},
    {"range past the file", "{" T32("w", "[16]", "[0,64]") "}", -1, 8,
     "tensor 'w': data_offsets [0,64] run past the end of the data section (8 bytes)", 0},
    {"shape vs range", "{" T32("w", "[3]", "[0,8]") "}", -1, 8,
     "tensor 'w': shape [3] of F32 needs 12 bytes, data_offsets [0,8] hold 8", 0},
    {"overlap", "{" T32("a", "[2]", "[0,8]") "," T32("b", "[2]", "[4,12]") "}", -1, 12,
     "tensors 'a' and 'b' overlap: data_offsets [0,8] and [4,12]", 0},
    {"nested overlap",
     "{" T32("a", "[4]", "[0,16]") "," T32("b", "[1]", "[4,8]") "," T32("c", "[1]", "[8,12]") "}",
     -1, 16, "tensors 'a' and 'b' overlap", 0},
    {"duplicate name", "{" T32("a", "[1]", "[0,4]") "," T32("a", "[1]", "[4,8]") "}", -1, 8,
     "tensor 'a' appears twice in the header", 0},
    {"metadata not an object", "{\"__metadata__\":[1]}", -1, 0, "__metadata__ is not a JSON object",
     0},
    {"metadata value not a string", "{\"__metadata__\":{\"k\":1}}", -1, 0,
     "__metadata__ value of 'k' is not a string", 0},
    {"metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", -1, 0,
     "__metadata__ appears twice", 0},
    /* The reference implementation refuses headers that are not UTF-8. */
    {"name with a stray byte", "{" T32("w\xff", "[1]", "[0,4]") "}", -1, 4,
     "a tensor name is not valid UTF-8: byte 0xff at offset 1 (after 'w')", 0},
    {"name with an overlong '/'", "{" T32("a\xc0\xaf", "[1]", "[0,4]") "}", -1, 4,
     "a tensor name is not valid UTF-8: byte 0xc0 at offset 1", 0},
    {"name with a surrogate", "{" T32("\xed\xa0\x80", "[1]", "[0,4]") "}", -1, 4,
     "a tensor name is not valid UTF-8: byte 0xed at offset 0", 0},
    {"name above U+10FFFF", "{" T32("\xf4\x90\x80\x80", "[1]", "[0,4]") "}", -1, 4,
     "a tensor name is not valid UTF-8: byte 0xf4 at offset 0", 0},
    {"name with a cut sequence", "{" T32("\xe2\x82", "[1]", "[0,4]") "}", -1, 4,
     "a tensor name is not valid UTF-8: byte 0xe2 at offset 0", 0},
    {"metadata key not UTF-8", "{\"__metadata__\":{\"k\xfe\":\"v\"}}", -1, 0,
     "a __metadata__ key is not valid UTF-8: byte 0xfe at offset 1", 0},
    {"metadata value not UTF-8", "{\"__metadata__\":{\"k\":\"\x80\"}}", -1, 0,
     "a __metadata__ value is not valid UTF-8: byte 0x80 at offset 0", 0},
};

START_TEST(corrupt_headers_are_errors_naming_the_tensor) {
    const struct corrupt *c = &corrupt[_i];
    size_t jl = c->json_len ? c->json_len : strlen(c->json);
    uint64_t field = c->hlen >= 0 ? (uint64_t)c->hlen : jl;
    image im = {{0}, 8 + jl + c->data_len};   /* the data are zero bytes */
    for (int i = 0; i < 8; i++) im.b[i] = (unsigned char)(field >> (8 * i));
    memcpy(im.b + 8, c->json, jl);
    tg_safetensors *f = tg_safetensors_parse(im.b, im.n);
    ck_assert_msg(f == NULL, "%s: accepted", c->what);
    ck_assert_msg(tg_last_status() == TG_ERR_FORMAT, "%s: status %s", c->what,
                  tg_status_name(tg_last_status()));
    ck_assert_msg(strstr(tg_last_error(), c->message) != NULL, "%s: message '%s' lacks '%s'",
                  c->what, tg_last_error(), c->message);
}
END_TEST

START_TEST(short_files_and_deep_json_never_crash) {
    unsigned char b[8] = {0};
    for (size_t n = 0; n < 8; n++) {
        ck_assert_ptr_null(tg_safetensors_parse(b, n));
        ck_assert_last_error(TG_ERR_FORMAT, "too short for the 8-byte header length");
    }
    /* 3000 nested arrays: past cJSON's nesting limit, an error not a stack overflow. */
    static char deep[6001];
    memset(deep, '[', 3000);
    memset(deep + 3000, ']', 3000);
    size_t n = 8 + 6000;
    unsigned char *buf = malloc(n);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)6000 >> (8 * i));
    memcpy(buf + 8, deep, 6000);
    ck_assert_ptr_null(tg_safetensors_parse(buf, n));
    ck_assert_int_eq(tg_last_status(), TG_ERR_FORMAT);
    free(buf);
    /* Every prefix of a valid file is rejected cleanly. */
    float v[2] = {1, 2};
    image ok = make_image("{" T32("w", "[2]", "[0,8]") "}", v, 8);
    tg_safetensors *f = tg_safetensors_parse(ok.b, ok.n);
    ck_assert_ptr_nonnull(f);
    tg_safetensors_close(f);
    for (size_t k = 0; k < ok.n; k++) ck_assert_ptr_null(tg_safetensors_parse(ok.b, k));
}
END_TEST

START_TEST(errors_from_files_name_the_file) {
    char *dir = ot_tmpdir();
    image im = make_image("{" T32("w", "[3]", "[0,8]") "}", (float[]){1, 2}, 8);
    char path[1024];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    write_image(path, &im);
    ck_assert_ptr_null(tg_safetensors_open(path));
    char want[1100];
    snprintf(want, sizeof want, "safetensors: %s: tensor 'w': shape [3] of F32 needs 12 bytes",
             path);
    ck_assert_last_error(TG_ERR_FORMAT, want);
    ck_assert_ptr_null(tg_safetensors_open(ot_path(dir, "missing.safetensors")));
    ck_assert_last_error(TG_ERR_IO, "cannot open: No such file or directory");
    ck_assert_ptr_null(tg_safetensors_open(dir));
    ck_assert_last_error(TG_ERR_IO, "not a regular file");
    ot_rmdir(dir);
}
END_TEST

/* ---- mismatches with the model ------------------------------------------------------ */
START_TEST(model_mismatches_are_errors_and_leave_the_model_untouched) {
    char *dir = ot_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    tg_params *src = tg_params_new();
    tg_tensor *w = tg_params_create(src, "w", TG_F32, 2, (int64_t[]){3, 2});
    tg_params_create(src, "extra", TG_F32, 1, (int64_t[]){1});
    tg_params_create(src, "ids", TG_I32, 1, (int64_t[]){2});
    tg_tensor_fill(w, 5);
    ck_assert_int_eq(tg_params_save(src, path), TG_OK);

    tg_params *dst = tg_params_new();
    tg_tensor *dw = tg_params_create(dst, "w", TG_F64, 2, (int64_t[]){3, 2});
    tg_tensor_fill(dw, -1);
    tg_params_create(dst, "ids", TG_I32, 1, (int64_t[]){2});
    ck_assert_int_eq(tg_params_load(dst, path), TG_ERR_FORMAT);
    ck_assert_last_error(TG_ERR_FORMAT, "params_load: ");
    ck_assert_last_error(TG_ERR_FORMAT, "tensor 'extra' in the file is no parameter of the model");
    ck_assert(tg_tensor_get(dw, 0) == -1);
    tg_load_opts lenient = {.allow_unexpected = true};
    ck_assert_int_eq(tg_params_load_ex(dst, path, &lenient), TG_OK);
    ck_assert(tg_tensor_get(dw, 5) == 5);   /* float32 in the file, float64 here */

    tg_params_create(dst, "b", TG_F32, 1, (int64_t[]){2});
    ck_assert_int_eq(tg_params_load_ex(dst, path, &lenient), TG_ERR_FORMAT);
    ck_assert_last_error(TG_ERR_FORMAT, "tensor 'b' is missing from the file");
    lenient.allow_missing = true;
    ck_assert_int_eq(tg_params_load_ex(dst, path, &lenient), TG_OK);

    tg_params *wrong = tg_params_new();
    tg_tensor *ww = tg_params_create(wrong, "w", TG_F32, 2, (int64_t[]){2, 3});
    tg_params_create(wrong, "ids", TG_F32, 1, (int64_t[]){2});
    ck_assert_int_eq(tg_params_load_ex(wrong, path, &lenient), TG_ERR_SHAPE);
    ck_assert_last_error(TG_ERR_SHAPE, "tensor 'w': shape [3,2] in file, [2,3] in model");
    ck_assert(tg_tensor_get(ww, 0) == 0);
    tg_params *wrong2 = tg_params_new();
    tg_params_create(wrong2, "ids", TG_F32, 1, (int64_t[]){2});
    ck_assert_int_eq(tg_params_load_ex(wrong2, path, &lenient), TG_ERR_DTYPE);
    ck_assert_last_error(TG_ERR_DTYPE, "tensor 'ids': dtype I32 cannot load into float32");
    ck_assert_int_eq(tg_params_load(dst, ot_path(dir, "nothing.safetensors")), TG_ERR_IO);
    tg_params_free(src);
    tg_params_free(dst);
    tg_params_free(wrong);
    tg_params_free(wrong2);
    ot_rmdir(dir);
}
END_TEST

START_TEST(writer_rejects_bad_names_and_paths) {
    tg_safetensors_writer *w = tg_safetensors_writer_new();
    tg_tensor *t = tg_tensor_new(TG_F32, 1, (int64_t[]){2});
    ck_assert_int_eq(tg_safetensors_writer_add(w, "a", t), TG_OK);
    ck_assert_int_eq(tg_safetensors_writer_add(w, "a", t), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "tensor 'a' added twice");
    ck_assert_int_eq(tg_safetensors_writer_add(w, "__metadata__", t), TG_ERR_ARG);
    ck_assert_int_eq(tg_safetensors_writer_add(w, "", t), TG_ERR_ARG);
    ck_assert_int_eq(tg_safetensors_writer_add(w, "b", NULL), TG_ERR_ARG);
    ck_assert_int_eq(tg_safetensors_writer_meta(w, "k", "v1"), TG_OK);
    ck_assert_int_eq(tg_safetensors_writer_meta(w, "k", "v2"), TG_OK);   /* replaces */
    ck_assert_int_eq(tg_safetensors_writer_save(w, "/nonexistent-folder/x.safetensors"), TG_ERR_IO);
    ck_assert_last_error(TG_ERR_IO, "cannot create a temporary file beside it");
    ck_assert_int_eq(tg_safetensors_writer_save(w, "/tmp/"), TG_ERR_ARG);
    char *dir = ot_tmpdir();
    ck_assert_int_eq(tg_safetensors_writer_save(w, ot_path(dir, "w.safetensors")), TG_OK);
    tg_safetensors *f = tg_safetensors_open(ot_path(dir, "w.safetensors"));
    ck_assert_str_eq(tg_safetensors_meta(f, "k"), "v2");
    tg_safetensors_close(f);
    tg_params *p = tg_params_new();
    tg_params_create(p, "tapegrad.mine", TG_F32, 0, NULL);
    ck_assert_int_eq(tg_params_save(p, ot_path(dir, "p.safetensors")), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "parameter name 'tapegrad.mine' is reserved");
    tg_params_free(p);
    ot_rmdir(dir);
    tg_tensor_free(t);
    tg_safetensors_writer_free(w);
}
END_TEST

START_TEST(utf8_names_round_trip_and_the_writer_refuses_others) {
    /* e-acute, the euro sign, an emoji: 2, 3 and 4 bytes */
    const char *good[] = {"caf\xc3\xa9.weight", "\xe2\x82\xac", "\xf0\x9f\x98\x80.bias"};
    tg_safetensors_writer *w = tg_safetensors_writer_new();
    tg_tensor *t = tg_tensor_new(TG_F32, 1, (int64_t[]){2});
    for (int i = 0; i < 3; i++) ck_assert_int_eq(tg_safetensors_writer_add(w, good[i], t), TG_OK);
    ck_assert_int_eq(tg_safetensors_writer_meta(w, "\xc3\xa9t\xc3\xa9", "\xe2\x82\xac"), TG_OK);
    ck_assert_int_eq(tg_safetensors_writer_add(w, "bad\xff", t), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "the tensor name is not valid UTF-8: byte 0xff at offset 3");
    ck_assert_int_eq(tg_safetensors_writer_meta(w, "k\xc0\xaf", "v"), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "the key is not valid UTF-8");
    ck_assert_int_eq(tg_safetensors_writer_meta(w, "k", "\xed\xb0\x80"), TG_ERR_ARG);
    ck_assert_last_error(TG_ERR_ARG, "the value is not valid UTF-8");
    char *dir = ot_tmpdir();
    ck_assert_int_eq(tg_safetensors_writer_save(w, ot_path(dir, "u.safetensors")), TG_OK);
    tg_safetensors *f = tg_safetensors_open(ot_path(dir, "u.safetensors"));
    ck_assert_msg(f != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_safetensors_count(f), 3);
    for (int i = 0; i < 3; i++) ck_assert_int_ge(tg_safetensors_find(f, good[i]), 0);
    ck_assert_str_eq(tg_safetensors_meta(f, "\xc3\xa9t\xc3\xa9"), "\xe2\x82\xac");
    tg_safetensors_close(f);
    ot_rmdir(dir);
    tg_tensor_free(t);
    tg_safetensors_writer_free(w);
}
END_TEST

/* ---- many names ------------------------------------------------------------------------ */
static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { MANY = 10000 };

/* Looking names up must not scan the file's entries (nor the writer's) one by
 * one: with 100k entries that took 22.7 s. Timed against parsing the same file
 * in the same process, so the bound holds under ASan and valgrind: parsing is
 * linear in the entries, so finding every name and adding every name must each
 * cost less than it (a scan costs hundreds of parses at this size). */
START_TEST(finding_and_adding_many_names_costs_less_than_parsing_them) {
    char *dir = ot_tmpdir();
    const char *path = ot_path(dir, "many.safetensors");
    tg_tensor *t = tg_tensor_new(TG_F32, 0, NULL);
    static char names[MANY][24];
    for (int i = 0; i < MANY; i++) snprintf(names[i], sizeof names[i], "layer.%d.weight", i);
    double add = INFINITY, parse = INFINITY, find = INFINITY;
    for (int round = 0; round < 3; round++) {   /* the best of three: noise only adds time */
        /* no assertion inside the timed loops: each one costs a write to Check's pipe */
        int wrong = 0;
        tg_safetensors_writer *w = tg_safetensors_writer_new();
        double t0 = seconds();
        for (int i = 0; i < MANY; i++) wrong += tg_safetensors_writer_add(w, names[i], t) != TG_OK;
        double t1 = seconds();
        ck_assert_int_eq(tg_safetensors_writer_save(w, path), TG_OK);
        tg_safetensors_writer_free(w);
        double t2 = seconds();
        tg_safetensors *f = tg_safetensors_open(path);
        double t3 = seconds();
        ck_assert_ptr_nonnull(f);
        for (int i = MANY - 1; i >= 0; i--) wrong += tg_safetensors_find(f, names[i]) != i;
        double t4 = seconds();
        ck_assert_int_eq(wrong, 0);
        tg_safetensors_close(f);
        add = fmin(add, t1 - t0), parse = fmin(parse, t3 - t2), find = fmin(find, t4 - t3);
    }
    printf("%d names: add %.4f s, parse %.4f s, find all %.4f s\n", MANY, add, parse, find);
    ck_assert_msg(find < parse, "finding %d names took %.4f s, parsing them %.4f s", MANY, find,
                  parse);
    ck_assert_msg(add < 2 * parse, "adding %d names took %.4f s, parsing them %.4f s", MANY, add,
                  parse);
    tg_tensor_free(t);
    ot_rmdir(dir);
}
END_TEST

Suite *suite_safetensors(void) {
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("safetensors");
    tcase_add_test(tc, saved_parameters_load_into_a_fresh_model_bit_for_bit);
    tcase_add_test(tc, the_file_has_the_safetensors_layout);
    tcase_add_test(tc, half_precision_and_int64_convert_on_load);
    tcase_add_test(tc, int64_out_of_int32_range_is_an_error_naming_the_element);
    tcase_add_loop_test(tc, corrupt_headers_are_errors_naming_the_tensor, 0,
                        (int)(sizeof corrupt / sizeof corrupt[0]));
    tcase_add_test(tc, short_files_and_deep_json_never_crash);
    tcase_add_test(tc, errors_from_files_name_the_file);
    tcase_add_test(tc, model_mismatches_are_errors_and_leave_the_model_untouched);
    tcase_add_test(tc, writer_rejects_bad_names_and_paths);
    tcase_add_test(tc, utf8_names_round_trip_and_the_writer_refuses_others);
    tcase_add_test(tc, finding_and_adding_many_names_costs_less_than_parsing_them);
    suite_add_tcase(s, tc);
    return s;
}
