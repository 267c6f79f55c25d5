#!/bin/sh
# Compiles the elementwise user-op example of include/tapegrad/op.h (y = x^3),
# gradchecks it in float32 and float64, and runs it fused in a chain with
# built-in ops (fused and unfused must agree), so the example cannot rot.
# Usage: op_example.sh SOURCE_ROOT BUILD_ROOT CC [SANITIZE_FLAGS]
set -eu
src=$1 build=$2 cc=$3 san=${4:-}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
awk '/Example \(y = x\^3/ {on=1; next} on && /^ \*$/ {if (code) exit; next}
     on && /^ \*   / {code=1; print substr($0, 6)}' "$src/include/tapegrad/op.h" > "$dir/cube.inc"
[ -s "$dir/cube.inc" ] || { echo "op.h example not found"; exit 1; }
cat > "$dir/main.c" <<'C'
#include <math.h>
#include <stdio.h>
#include <tapegrad.h>

#include "cube.inc"

static tg_tensor *chain(tg_tape *tp, tg_tensor *const *in, void *user) {
    (void)user;
    return tg_tanh(tp, tg_mul(tp, cube(tp, in[0]), in[1]));   /* fuses with the built-ins */
}

int main(void) {
    int rc = 0;
    for (int f32 = 0; f32 < 2; f32++) {
        tg_dtype dt = f32 ? TG_F32 : TG_F64;
        int64_t shape[] = {3, 100};  /* 300 elements: large enough to fuse */
        tg_tensor *x = tg_tensor_new(dt, 2, shape), *w = tg_tensor_new(dt, 2, shape);
        for (int64_t i = 0; i < 300; i++) {
            tg_tensor_set(x, i, 0.01 * (double)(i % 97) - 0.5);
            tg_tensor_set(w, i, 0.5 + 0.001 * (double)i);
        }
        tg_gradcheck_report r;
        tg_status st = tg_gradcheck(chain, NULL, 2, (tg_tensor *[]){x, w}, NULL, &r);
        if (st != TG_OK || !r.passed) {
            printf("cube %s: gradcheck failed: %s %g\n", tg_dtype_name(dt), r.message, r.max_abs_err);
            rc = 1;
        }
        double v[2];
        for (int fused = 0; fused < 2; fused++) {
            tg_tape *tp = tg_tape_new();
            tg_tape_set_fusion(tp, fused);
            v[fused] = tg_tensor_get(chain(tp, (tg_tensor *[]){x, w}, NULL), 123);
            tg_tape_free(tp);
        }
        double want = tanh(pow(0.01 * 26 - 0.5, 3) * (0.5 + 0.123));
        if (v[0] != v[1] || fabs(v[1] - want) > (f32 ? 1e-6 : 1e-15)) {
            printf("cube %s: %.17g unfused, %.17g fused, want %.17g\n", tg_dtype_name(dt), v[0],
                   v[1], want);
            rc = 1;
        }
        tg_tensor_free(x);
        tg_tensor_free(w);
    }
    return rc;
}
C
"$cc" $san -std=c11 -Wall -Wextra -Werror -I"$src/include" -I"$dir" "$dir/main.c" -o "$dir/example" \
    "$build/libtapegrad.a" -lblis -lcjson -lm -lgomp -lpthread
"$dir/example"
echo "op.h example compiled, gradchecked and ran fused"
