#!/bin/sh
# docs/custom-cells.md and tests/nn/custom_cell_guide.c hold the same code: the
# guide's ```c blocks, joined by one blank line, must equal the file the tests
# compile and run. Edit both together.
root=${1:-.}
awk '/^```c$/ { if (n++) print ""; inside = 1; next }
     /^```$/  { inside = 0 }
     inside' "$root/docs/custom-cells.md" |
    diff -u - "$root/tests/nn/custom_cell_guide.c" &&
    echo "docs/custom-cells.md code matches tests/nn/custom_cell_guide.c"
