/* tests/case_table.c - builds tg_cases[] from cases.def. */
#include "case_table.h"

#define TG_NARG_(a, b, c, d, e, f, n, ...) n
#define TG_NARG(...) TG_NARG_(__VA_ARGS__, 6, 5, 4, 3, 2, 1, 0)
#define T(kind, ...) {IN_##kind, 0, TG_NARG(__VA_ARGS__), {__VA_ARGS__}}
#define IX(range, ...) {IN_INDEX, range, TG_NARG(__VA_ARGS__), {__VA_ARGS__}}

/* Declare every builder. */
#define TG_CASE(op, name, build, ...) tg_tensor *build(tg_tape *tp, tg_tensor *const *in, void *u);
#include "cases.def"
#undef TG_CASE

const tg_case tg_cases[] = {
#define TG_CASE(op, name, build, ...) {#op, #name, build, {__VA_ARGS__}},
#include "cases.def"
#undef TG_CASE
};
const int tg_n_cases = (int)(sizeof tg_cases / sizeof tg_cases[0]);

int tg_case_n_inputs(const tg_case *c) {
    int n = 0;
    while (n < TG_CASE_MAX_IN && c->in[n].kind != IN_NONE) n++;
    return n;
}

static double draw(tg_in_kind kind, tg_rng *r) {
    double u = tg_rng_uniform(r);
    switch (kind) {
    case IN_POS: return 0.5 + 1.5 * u;
    case IN_UNIT: return 0.05 + 0.9 * u;
    case IN_AWAY: return (u < 0.5 ? -1 : 1) * (0.1 + 0.9 * tg_rng_uniform(r));
    case IN_WIDE: return 8 * u - 4;
    default: return 2 * u - 1;
    }
}

int tg_case_make_inputs(const tg_case *c, tg_dtype dt, uint64_t seed, tg_tensor **out) {
    tg_rng r = tg_rng_seeded(seed);
    int n = tg_case_n_inputs(c);
    for (int i = 0; i < n; i++) {
        const tg_case_input *ci = &c->in[i];
        bool index = ci->kind == IN_INDEX;
        out[i] = tg_tensor_new(index ? TG_I32 : dt, ci->ndim, ci->shape);
        for (int64_t j = 0; out[i] && j < tg_tensor_numel(out[i]); j++)
            tg_tensor_set(out[i], j,
                          index ? (double)(tg_rng_next(&r) % (uint64_t)ci->range) : draw(ci->kind, &r));
    }
    return n;
}

void tg_case_free_inputs(int n, tg_tensor **in) {
    for (int i = 0; i < n; i++) tg_tensor_free(in[i]);
}
