#!/bin/sh
# Fails when an op descriptor in ops/ has no TG_CASE row in tests/cases/*.def.
# Op names come from `.name = "x"` in descriptors and from UNARY_OP(x, ...) / UNARY_OP_INFER(x, ...) rows.
root=${1:-.}
missing=0
names=$( (grep -ho '\.name = "[a-z0-9_]*"' "$root"/ops/*.c | sed 's/.*"\(.*\)"/\1/';
          grep -ho '^UNARY_OP[A-Z_]*([a-z0-9_]*' "$root"/ops/*.c | sed 's/.*(//') | sort -u)
for op in $names; do
    if ! grep -q "^TG_CASE($op," "$root"/tests/cases/*.def; then
        echo "op '$op' has no row in tests/cases/*.def"
        missing=$((missing + 1))
    fi
done
count=$(echo "$names" | wc -w)
echo "$count ops, $missing without a gradcheck row"
[ "$missing" -eq 0 ]
