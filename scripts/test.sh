#!/usr/bin/env bash
# Builds tapegrad and runs the whole test suite five ways:
#   1. a normal build (-Wall -Wextra, warnings are errors);
#   2. the same with fusion off (TG_FUSE=0) and with every tensor fused
#      (TG_FUSE_MIN=1): results must not depend on it;
#   3. AddressSanitizer + UBSan;
#   4. valgrind memcheck (leaks are errors);
#   5. ThreadSanitizer on the tests that run threads of their own (suite 'threads');
# then the API-misuse fuzzer (tests/fuzz_api.c) under ASan+UBSan with a fresh
# seed, and a bounded libFuzzer run of the checkpoint loader when its script
# exists, each for TG_FUZZ_SECONDS (default 60).
# Ends with one line "N passed, N failed" counting individual test cases.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh || { echo "dependency install failed"; exit 1; }

fuzz_seconds=${TG_FUZZ_SECONDS:-60}
status=0
logs=()

phase() { # name, build dir, setup args..., -- test args...
    local name=$1 dir=$2; shift 2
    local setup=() testargs=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do setup+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    testargs=("$@")
    echo "=== $name"
    if [ ! -d "$dir" ]; then
        meson setup "$dir" "${setup[@]}" >/dev/null || { echo "$name: meson setup failed"; status=1; return; }
    fi
    ninja -C "$dir" >"$dir.build.log" 2>&1 || { cat "$dir.build.log"; echo "$name: build failed"; status=1; return; }
    meson test -C "$dir" --print-errorlogs "${testargs[@]}" | tail -n 12 || status=1
    local log="$dir/meson-logs/testlog.txt" a
    for a in "${testargs[@]}"; do
        case $a in --setup=*) log="$dir/meson-logs/testlog-${a#--setup=}.txt" ;; esac
    done
    logs+=("$log")
}

phase "build + tests (warnings are errors)" build-ci -Dwerror=true
phase "the same, fusion off (TG_FUSE=0)" build-ci -- --setup=nofuse
phase "the same, every tensor fused (TG_FUSE_MIN=1)" build-ci -- --setup=fuseall
phase "AddressSanitizer + UBSan" build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
    -- --setup=asan
phase "valgrind memcheck" build-ci -- --setup=valgrind --timeout-multiplier=10
phase "ThreadSanitizer (tests with threads of their own)" build-tsan -Db_sanitize=thread \
    -Db_lundef=false -- --setup=tsan --suite threads --timeout-multiplier=4

# The API-misuse fuzzer: random sequences of public calls, time-bounded, with a
# fresh seed each run (printed; TG_FUZZ_API_SEED repeats one). Any sanitizer
# report, crash, hang or broken API promise fails it and prints how to replay.
api_seed=${TG_FUZZ_API_SEED:-$(( $(date +%s) ^ $$ ))}
echo "=== API-misuse fuzzer (ASan+UBSan), ${fuzz_seconds}s, seed $api_seed"
if [ -x build-asan/tests/fuzz_api ] &&
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build-asan/tests/fuzz_api \
        --seed "$api_seed" --seconds "$fuzz_seconds" > build-asan.fuzz_api.log 2>&1; then
    tail -n 1 build-asan.fuzz_api.log; echo "api fuzz: 1 passed"
    api_pass=1; api_fail=0
else
    grep -v "failed to allocate" build-asan.fuzz_api.log | tail -n 60
    api_pass=0; api_fail=1; status=1
fi

if [ -f tests/io/run_fuzz.sh ]; then
    echo "=== libFuzzer: safetensors loader, ${fuzz_seconds}s"
    if bash tests/io/run_fuzz.sh "$fuzz_seconds" > build-ci.fuzz.log 2>&1; then
        tail -n 3 build-ci.fuzz.log; echo "fuzz: 1 passed"
        fuzz_pass=1; fuzz_fail=0
    else
        tail -n 40 build-ci.fuzz.log; fuzz_pass=0; fuzz_fail=1; status=1
    fi
else
    fuzz_pass=0; fuzz_fail=0
fi

# Count individual cases: Check prints "Checks: N, Failures: F, Errors: E",
# GoogleTest "[  PASSED  ] N tests" and "[  FAILED  ] N tests"; any other
# meson test counts as one case, passed when it exited 0 (77: skipped).
awk -v fp="$((fuzz_pass + api_pass))" -v ff="$((fuzz_fail + api_fail))" '
    function close_block() {
        if (inblock && !framework) { if (skip) skipped++; else if (ok) pass++; else fail++ }
        inblock=0
    }
    /^=+ [0-9]+\/[0-9]+ =+$/ { close_block(); inblock=1; framework=0; ok=0; skip=0; next }
    /^result: +exit status 0$/ { ok=1 }
    /^result: +exit status 77$/ { skip=1 }
    /^[0-9]+%: Checks: / { gsub(",", ""); framework=1; f=$5+$7; pass+=$3-f; fail+=f; next }
    /^\[  PASSED  \] [0-9]+ test/ { framework=1; pass+=$4; next }
    /^\[  FAILED  \] [0-9]+ test/ { framework=1; fail+=$4; next }
    END { close_block(); printf "%d passed, %d failed, %d skipped\n", pass+fp, fail+ff, skipped }
' "${logs[@]}"
exit $status
