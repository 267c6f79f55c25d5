#!/usr/bin/env bash
# The main job: install what is missing, build (release), then train a
# character-level LSTM language model (examples/textgen: embedding 64 ->
# 2 x LSTM 256 -> softmax) for 240 steps (at most 150 s) on the texts of Debian's
# `fortunes` package, showing the progress bar, the falling loss, the
# validation cross-entropy and generated text as it learns.
# Extra arguments go to textgen (see --help), e.g. `--cell gru` or `--steps 20`.
# Afterwards: ./build-release/examples/textgen --load build-release/textgen.safetensors --sample-only
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
[ -d build-release ] || meson setup build-release -Dbuildtype=release >/dev/null
ninja -C build-release >/dev/null
# an old build directory may predate examples/textgen.c: meson adds it on reconfigure
if [ ! -x build-release/examples/textgen ]; then
    meson setup --reconfigure build-release >/dev/null
    ninja -C build-release >/dev/null
fi
exec ./build-release/examples/textgen --cell lstm --layers 2 --hidden 256 --embed 64 \
    --batch 64 --seq 100 --steps 240 --max-seconds 150 --lr 3e-3 \
    --eval-every 40 --sample-every 80 --sample-len 240 \
    --save build-release/textgen.safetensors --plot build-release/textgen-loss.png "$@"
