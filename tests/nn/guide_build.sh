#!/bin/sh
# Builds docs/custom-cells.md's program the ways the guide says a user's
# program is built, and runs it: against the uninstalled tree through meson's
# uninstalled pkg-config file, and against an installed copy (meson install
# into a temporary folder) through the installed tapegrad.pc.
# Usage: guide_build.sh SOURCE_ROOT BUILD_ROOT CC [SANITIZE_FLAGS]
set -eu
src=$1 build=$2 cc=$3 san=${4:-}
command -v pkg-config >/dev/null || { echo "SKIP: pkg-config is not installed"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
prog="$src/tests/nn/custom_cell_guide.c"

# 1. the uninstalled tree
flags=$(PKG_CONFIG_PATH="$build/meson-uninstalled" pkg-config --cflags --libs tapegrad)
"$cc" $san -std=c11 -Wall -Wextra -Werror "$prog" -o "$dir/uninstalled" $flags -Wl,-rpath,"$build"
"$dir/uninstalled" > "$dir/out1"
echo "uninstalled tree: $(tail -n 1 "$dir/out1")"

# 2. an installed copy
meson install -C "$build" --no-rebuild --quiet --destdir "$dir/root" >/dev/null
pc=$(find "$dir/root" -name tapegrad.pc | head -n 1)
[ -n "$pc" ] || { echo "meson install wrote no tapegrad.pc"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
flags=$(PKG_CONFIG_SYSROOT_DIR="$dir/root" PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs tapegrad)
"$cc" $san -std=c11 -Wall -Wextra -Werror "$prog" -o "$dir/installed" $flags
LD_LIBRARY_PATH="$libdir" "$dir/installed" > "$dir/out2"
echo "installed copy: $(tail -n 1 "$dir/out2")"
