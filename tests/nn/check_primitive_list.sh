#!/bin/sh
# docs/custom-cells.md lists every public op of include/tapegrad/ops.h, one
# line each ("- `tg_name`: ..." under "## The primitives"), and nothing else:
# fails when an op is added, renamed or removed without the list following.
root=${1:-.}
header="$root/include/tapegrad/ops.h"
doc="$root/docs/custom-cells.md"
ops=$(grep -E '^(TG_API|static inline) ' "$header" | grep -o 'tg_[a-z0-9_]*(' | tr -d '(' | sort -u)
listed=$(awk '/^## The primitives/ {on = 1; next} /^## / {on = 0} on' "$doc" |
         grep -o '^- `tg_[a-z0-9_]*`' | grep -o 'tg_[a-z0-9_]*' | sort)
bad=0
for op in $ops; do
    echo "$listed" | grep -qx "$op" || { echo "ops.h declares $op, docs/custom-cells.md does not list it"; bad=1; }
done
for op in $listed; do
    echo "$ops" | grep -qx "$op" || { echo "docs/custom-cells.md lists $op, ops.h does not declare it"; bad=1; }
done
dups=$(echo "$listed" | uniq -d)
[ -z "$dups" ] || { echo "listed twice: $dups"; bad=1; }
[ "$bad" -eq 0 ] && echo "$(echo "$ops" | wc -w) primitives, each listed once in docs/custom-cells.md"
[ "$bad" -eq 0 ]
