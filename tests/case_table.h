/* tests/case_table.h - the one table of primitive cases.
 *
 * tests/cases.def lists every op's cases as rows
 *   TG_CASE(op, name, builder, inputs...)
 * where each input is T(kind, dims...) for a float tensor or
 * IX(range, dims...) for an int32 index tensor with values in [0, range).
 * The builders (tg_fn) live in tests/cases/<family>.c. The same rows feed
 * the GoogleTest gradchecks (both dtypes) and the coverage check that fails
 * when an op in ops/ has no row. */
#ifndef TG_TEST_CASE_TABLE_H
#define TG_TEST_CASE_TABLE_H

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tg_in_kind {
    IN_NONE = 0,
    IN_RAND,    /* uniform in [-1, 1]                              */
    IN_POS,     /* uniform in [0.5, 2]      (log, sqrt, pow, div)  */
    IN_UNIT,    /* uniform in [0.05, 0.95]  (probabilities)        */
    IN_AWAY,    /* +-[0.1, 1]: away from 0  (relu's kink)          */
    IN_WIDE,    /* uniform in [-4, 4]       (saturating functions) */
    IN_INDEX    /* int32 in [0, range)                             */
} tg_in_kind;

#define TG_CASE_MAX_IN 6

typedef struct tg_case_input {
    tg_in_kind kind;
    int32_t range;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
} tg_case_input;

typedef struct tg_case {
    const char *op;      /* the op's name as in its descriptor */
    const char *name;    /* what this row checks               */
    tg_fn build;
    tg_case_input in[TG_CASE_MAX_IN];
} tg_case;

extern const tg_case tg_cases[];
extern const int tg_n_cases;

int tg_case_n_inputs(const tg_case *c);
/* Fresh caller-owned inputs for case c in dtype dt (index inputs stay int32). */
int tg_case_make_inputs(const tg_case *c, tg_dtype dt, uint64_t seed, tg_tensor **out);
void tg_case_free_inputs(int n, tg_tensor **in);

#ifdef __cplusplus
}
#endif
#endif
