#!/bin/sh
# Compiles and runs the README's "A cell in fifteen lines" block, so it cannot rot.
# Usage: readme_example.sh SOURCE_ROOT BUILD_ROOT CC [SANITIZE_FLAGS]
set -eu
src=$1 build=$2 cc=$3 san=${4:-}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
awk '/^## A cell in fifteen lines/ {on=1} on && /^```c$/ {code=1; next} code && /^```$/ {exit}
     code && !/^#include/ {print}' "$src/README.md" > "$dir/snippet.inc"
[ -s "$dir/snippet.inc" ] || { echo "README code block not found"; exit 1; }
cat > "$dir/main.c" <<'C'
#include <stdio.h>
#include <tapegrad.h>

static int cell(tg_tensor *x, tg_tensor *h_prev, tg_tensor *W, tg_tensor *b, tg_tensor *target) {
#include "snippet.inc"
    tg_tape_free(tp);
    return 0;
}

int main(void) {
    int64_t sx[] = {4, 3}, sh[] = {4, 5}, sw[] = {8, 5}, sb[] = {5};
    tg_tensor *x = tg_tensor_new(TG_F32, 2, sx), *h = tg_tensor_new(TG_F32, 2, sh);
    tg_tensor *W = tg_tensor_new(TG_F32, 2, sw), *b = tg_tensor_new(TG_F32, 1, sb);
    tg_tensor *t = tg_tensor_new(TG_F32, 2, sh);
    tg_tensor_fill(x, 0.5); tg_tensor_fill(W, 0.1); tg_tensor_fill(t, 0.3);
    tg_tensor_set_requires_grad(W, true);
    tg_tensor_set_requires_grad(b, true);
    int rc = cell(x, h, W, b, t);
    if (rc == 0 && (!tg_tensor_grad(W) || !tg_tensor_grad(b))) { puts("no gradient reached W, b"); rc = 1; }
    tg_tensor *all[] = {x, h, W, b, t};
    for (int i = 0; i < 5; i++) tg_tensor_free(all[i]);
    return rc;
}
C
"$cc" $san -std=c11 -Wall -Wextra -Werror -I"$src/include" -I"$dir" "$dir/main.c" -o "$dir/example" \
    "$build/libtapegrad.a" -lblis -lcjson -lm -lgomp -lpthread
"$dir/example"
echo "README example compiled and ran"
