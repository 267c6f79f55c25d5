#!/bin/sh
# nn/ is composed from the public op API only: it includes only public headers
# (plus its own nn_private.h), and it holds no gradient code: no op
# descriptors, no tg_apply, no access to gradient buffers, and no function
# named backward / vjp / grad_fn. A missing gradient is a primitive in ops/.
root=${1:-.}
bad=0
for f in "$root"/nn/*.c "$root"/nn/*.h; do
    [ -e "$f" ] || continue
    inc=$(grep -n '^[[:space:]]*#[[:space:]]*include' "$f" |
        grep -v -e '"tapegrad.h"' -e '"tapegrad/[a-z0-9_]*\.h"' -e '<tapegrad/[a-z0-9_]*\.h>' \
                -e '"nn_private.h"' -e '<[a-z]*\.h>')
    if [ -n "$inc" ]; then echo "$f: include of a non-public header: $inc"; bad=1; fi
    grad=$(grep -n -E '\b(tg_op|tg_node|tg_apply|tg_input_grad|tg_output_grad|tg_node_scratch|tg_tensor_grad|tg_gemm)\b|internal\.h|[A-Za-z0-9_]*(backward|vjp|grad_fn)[A-Za-z0-9_]*[[:space:]]*\(' "$f" |
        grep -v -e 'tg_backward(' -e 'tg_backward_ex(')
    if [ -n "$grad" ]; then echo "$f: gradient machinery in nn/: $grad"; bad=1; fi
done
[ "$bad" -eq 0 ] && echo "nn/ uses only the public op API"
[ "$bad" -eq 0 ]
