#!/usr/bin/env bash
# The main job: install what is missing, build (release), run the flagship
# demo. Extra arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
[ -d build-release ] || meson setup build-release -Dbuildtype=release >/dev/null
ninja -C build-release >/dev/null
exec ./build-release/examples/demo_xor "$@"
