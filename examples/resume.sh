#!/bin/sh
# textgen resumes bit for bit: 40 steps straight, and 20 steps + save + --load
# + 20 steps, write identical checkpoints (weights, Adam moments, schedule,
# RNG, data position, carried LSTM states), byte for byte, and print the same
# validation losses and samples after the split. Split at step 20 (mid-epoch:
# 30 steps per epoch here) and at step 30 (the epoch boundary); with dropout
# and a cosine --lr-min schedule over the 40 steps.
#   resume.sh TEXTGEN
prog=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tg_resume.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
seq 1 1200 | tr '\n' ' ' > "$tmp/corpus.txt"   # 4893 characters, 11 distinct

run() { # name, args...: runs textgen, output in $tmp/name.log
    log=$tmp/$1.log
    shift
    "$prog" --data "$tmp/corpus.txt" --layers 2 --hidden 24 --embed 8 --batch 8 --seq 16 \
        --val-frac 0.2 --dropout 0.1 --eval-every 5 --eval-chars 0 --sample-every 7 \
        --sample-len 20 --plot '' --threads 1 --seed 3 "$@" > "$log" 2>&1 ||
        { echo "resume: textgen $* failed:"; tail -n 5 "$log"; exit 1; }
}
# What a run printed after step $1: validation losses and samples.
after() {
    awk -v k="$1" '/^step [0-9]+  epoch/ && $2 > k { p = 1 }
                   p && (/val loss|sample at/ || s) { print }
                   { s = /sample at/ }' "$2"
}

run straight --steps 40 --lr-min 1e-4 --save "$tmp/straight.st"
grep -q "40 steps (30 per epoch)" "$tmp/straight.log" ||
    { echo "resume: the corpus no longer gives 30 steps per epoch"; exit 1; }
fails=0
for split in 20 30; do
    run first --steps "$split" --lr-min 1e-4 --decay-steps 40 --save "$tmp/first.st"
    run second --load "$tmp/first.st" --steps $((40 - split)) --save "$tmp/second.st"
    if ! cmp -s "$tmp/straight.st" "$tmp/second.st"; then
        echo "FAIL: split at step $split: the checkpoints differ ($(cmp "$tmp/straight.st" "$tmp/second.st"))"
        fails=$((fails + 1))
    elif [ "$(after "$split" "$tmp/straight.log")" != "$(after "$split" "$tmp/second.log")" ] ||
         [ -z "$(after "$split" "$tmp/second.log")" ]; then
        echo "FAIL: split at step $split: validation losses or samples after the split differ"
        fails=$((fails + 1))
    else
        echo "ok: 40 steps straight == $split + save + --load + $((40 - split)), bit for bit"
    fi
done
[ "$fails" -eq 0 ]
