#!/bin/sh
# docs/custom-cells.md and tests/nn/custom_cell_guide.c hold the same code: the
# guide's ```c blocks, joined by one blank line, must equal the file the tests
# compile and run. Edit both together. examples/custom_cell.c, the guide as a
# program, carries the guide's cell word for word: the lines from
# "/* Parameters, in the order describe lists them */" to the end of the
# descriptor "static const tg_cell mgu = ..." must be the same in both files.
root=${1:-.}
awk '/^```c$/ { if (n++) print ""; inside = 1; next }
     /^```$/  { inside = 0 }
     inside' "$root/docs/custom-cells.md" |
    diff -u - "$root/tests/nn/custom_cell_guide.c" || exit 1
echo "docs/custom-cells.md code matches tests/nn/custom_cell_guide.c"

# the cell of a file: from the marker comment to the line ending the descriptor with "};"
cell() {
    awk '/^\/\* Parameters, in the order describe lists them \*\/$/ { inside = 1 }
         inside { print }
         inside && /^static const tg_cell mgu = / { descriptor = 1 }
         descriptor && /};$/ { exit }' "$1"
}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
cell "$root/tests/nn/custom_cell_guide.c" >"$tmp"
[ -s "$tmp" ] || { echo "no cell found in tests/nn/custom_cell_guide.c"; exit 1; }
cell "$root/examples/custom_cell.c" | diff -u "$tmp" - || exit 1
echo "examples/custom_cell.c carries the guide's cell ($(wc -l <"$tmp") lines)"
