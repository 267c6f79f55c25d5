#!/usr/bin/env bash
# Sentiment on the deduplicated split, tapegrad against PyTorch 1.13: every model of
# examples/sentiment (lstm, bilstm, stacked, cnn, cnn-lstm) over five split seeds,
# same hyper-parameters (the programs' defaults), one thread. Writes a markdown table
# of the mean, standard deviation, range and every value of the validation accuracy.
#
#   bash examples/sentiment_seeds.sh [BUILD_DIR [OUT_DIR]]    # default build-release, BUILD/results
#
# Called by examples/run_all.sh (section "sentiment over five split seeds"). Runs one
# training at a time; about ten minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-release}
out=${2:-$build/results}
seeds=(1 2 3 4 5)
models=(lstm bilstm stacked cnn cnn-lstm)
data=${TG_DATA:-../shared/data}/umich-sentiment-train.tsv
mkdir -p "$out"
log=$out/sentiment-seeds.log
: >"$log"

# "mean ± sd (min-max)" of the numbers on stdin (sample standard deviation).
stats() {
    awk '{ v[NR] = $1; s += $1 } END {
        m = s / NR; for (i = 1; i <= NR; i++) q += (v[i] - m) ^ 2
        sd = NR > 1 ? sqrt(q / (NR - 1)) : 0; lo = hi = v[1]
        for (i = 2; i <= NR; i++) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i] }
        printf "%.3f ± %.3f (%.3f-%.3f)", m, sd, lo, hi }'
}

rows=()
for m in "${models[@]}"; do
    ours=() theirs=()
    for s in "${seeds[@]}"; do
        a=$("$build/examples/sentiment" --data "$data" --model "$m" --split-seed "$s" --seed 1 \
            --threads 1 --show 0 --plot '' 2>&1 | tee -a "$log" |
            sed -n "s/^validation accuracy ($m): \([0-9.]*\).*/\1/p")
        ours+=("${a:?sentiment --model $m --split-seed $s printed no accuracy (see $log)}")
    done
    while read -r a; do theirs+=("$a"); done < <(
        /usr/bin/python3 examples/sentiment_torch.py --data "$data" --model "$m" --seed 1 \
            --split-seeds "${seeds[@]}" 2>&1 | tee -a "$log" |
            sed -n "s/^validation accuracy ($m) split [0-9]*: \([0-9.]*\)$/\1/p")
    [ ${#theirs[@]} -eq ${#seeds[@]} ] || { echo "sentiment_torch.py failed for $m (see $log)" >&2; exit 1; }
    rows+=("| $m | $(printf '%s\n' "${ours[@]}" | stats) | $(printf '%s\n' "${theirs[@]}" | stats) | ${ours[*]} | ${theirs[*]} |")
    echo "$m: tapegrad ${ours[*]}; PyTorch ${theirs[*]}"
done
{
    echo "| model | tapegrad: mean ± sd (range) | PyTorch 1.13: mean ± sd (range) | tapegrad, split seeds ${seeds[*]} | PyTorch, split seeds ${seeds[*]} |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
} >"$out/sentiment-seeds.md"
echo "wrote $out/sentiment-seeds.md"
