#!/usr/bin/env bash
# Bounded libFuzzer run of the safetensors/checkpoint loader.
#   tests/io/run_fuzz.sh SECONDS        (default 60)
# Builds tests/io/fuzz_safetensors.c and the library sources it needs
# directly with clang (-fsanitize=fuzzer,address,undefined) in a temporary
# folder, writes a seed corpus with the real writer (parameter files and full
# checkpoints), then fuzzes for SECONDS. Exits non-zero on any crash, leak or
# UB report; the crashing input is kept in a folder printed at the end.
set -euo pipefail
secs=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
cc=${TG_FUZZ_CC:-clang-14}
command -v "$cc" >/dev/null || cc=clang
command -v "$cc" >/dev/null || { echo "run_fuzz: clang-14 not found (apt-get install clang)"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/tg_fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The loader needs the core (tensors, tape, params, runtime), optim/, io/ and
# ops/ (tg_scale for the seed writer's gradients; the core's checkpoint and
# double-backward code call into the GEMM layer and the other ops).
srcs=("$root"/autograd/*.c "$root"/optim/*.c "$root"/io/*.c "$root"/ops/*.c)
# The library sources are compiled as the library is (TG_BUILDING_LIBRARY:
# no call-site macros over their own definitions).
flags=(-std=c11 -D_POSIX_C_SOURCE=200809L -DTG_BUILDING_LIBRARY -I"$root/include" -g -O1 -w)
libs=(-lblis -lcjson -lm -lpthread)

echo "run_fuzz: building in $work"
"$cc" "${flags[@]}" -DTG_FUZZ_STANDALONE -o "$work/seedgen" \
    "$root/tests/io/fuzz_safetensors.c" "${srcs[@]}" "${libs[@]}"
"$cc" "${flags[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -o "$work/fuzz" "$root/tests/io/fuzz_safetensors.c" "${srcs[@]}" "${libs[@]}"

mkdir -p "$work/seeds" "$work/corpus" "$work/artifacts"
"$work/seedgen" --write-seeds "$work/seeds"
# A few hand-made edge cases beside the real files.
printf '\x02\x00\x00\x00\x00\x00\x00\x00{}' > "$work/seeds/empty.safetensors"
printf '\x38\x00\x00\x00\x00\x00\x00\x00{"__metadata__":{"format":"pt"},"x":{"dtype":"BF16",' \
    > "$work/seeds/cut.safetensors"
cat > "$work/dict" <<'DICT'
"dtype"
"shape"
"data_offsets"
"__metadata__"
"F32"
"F64"
"F16"
"BF16"
"I32"
"I64"
"U64"
"tapegrad.optim"
"tapegrad.sched"
"tapegrad.optim.step."
"tapegrad.optim.exp_avg."
"tapegrad.train.rng"
"tapegrad.train.position"
"tapegrad.carry."
"\"groups\""
"\"kind\""
"\"params\""
"inf"
"nan"
"-1"
"9007199254740993"
DICT

echo "run_fuzz: fuzzing for ${secs}s"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
set +e
"$work/fuzz" -max_total_time="$secs" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    -dict="$work/dict" -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
    "$work/corpus" "$work/seeds" 2>&1 | grep -v -e '^"' -e '^######' | tail -n 25
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ] || [ -n "$(ls -A "$work/artifacts")" ]; then
    keep=$(mktemp -d "${TMPDIR:-/tmp}/tg_fuzz_crash.XXXXXX")
    cp -r "$work/artifacts/." "$keep/"
    echo "run_fuzz: FAILED (exit $rc); inputs kept in $keep (replay: build with -DTG_FUZZ_STANDALONE and pass the file)"
    exit 1
fi
echo "run_fuzz: ${secs}s, no crash"
