#!/bin/sh
# Every op and layer function that returns a tensor (TG_API tg_tensor *tg_...
# in the headers that include call_site.h) has its call-site macro in
# include/tapegrad/call_site.h: without one, anomaly mode and the profiler
# would name the line of the previous wrapped call instead of its own.
root=${1:-.}
dir="$root/include/tapegrad"
bad=0
n=0
for h in $(grep -l '#include "call_site.h"' "$dir"/*.h); do
    for f in $(sed -n 's/^TG_API tg_tensor \*\(tg_[a-z0-9_]*\)(.*/\1/p' "$h"); do
        n=$((n + 1))
        grep -q "^#define $f(\.\.\.)" "$dir/call_site.h" ||
            { echo "$(basename "$h") declares $f, call_site.h has no macro for it"; bad=1; }
    done
done
[ "$bad" -eq 0 ] && echo "$n functions, each with its call-site macro"
exit $bad
