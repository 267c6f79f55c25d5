#!/usr/bin/env bash
# Runs every example at full size, one after another, and writes docs/results.md:
# each program's headline figure against its target (issue 5), its run time, and
# the machine. Not for CI: the whole set takes the better part of an hour on 2 cores.
#
#   bash examples/run_all.sh                  # every example
#   bash examples/run_all.sh textgen mlp      # only these; other rows keep their last result
#   bash examples/run_all.sh sentiment-seeds  # only the sentiment table over five split seeds (with PyTorch)
#   DOC_ONLY=1 bash examples/run_all.sh       # rewrite docs/results.md from the results present
#
# Builds a release build in $BUILD (default build-release) first. Logs, plots and
# checkpoints go to $BUILD/results/; each finished run leaves a table row there,
# with the machine it ran on (<name>.machine), and docs/results.md is rewritten
# from all rows present, each naming its machine. On a machine shared with
# others, hold the CPU lock so that timings mean something:
#   flock /work/notes/cpu.lock bash examples/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build-release}
out=$build/results
doc=docs/results.md

# name | full-size arguments | label | check | target | wall-time limit in s (optional) | program
# label: the text printed just before the headline figure (the last such line counts);
# check: how the first number after it meets the target. {out} in the arguments
# stands for the results folder. program: the example to run when it is not the
# row's name (one program measured two ways), or log:NAME to read a second figure
# from row NAME's run (listed before it) without running anything. The PNGs a
# row's command writes to {out} are copied to docs/img/ and shown in its section.
table=$(cat <<'EOF'
mlp | --epochs 15 --batch 128 --hidden 256 --dropout 0.2 --lr 1e-3 --seed 1 --threads 1 --plot {out}/mlp.png | test accuracy (MLP): | >= 0.87 | test accuracy of the MLP >= 0.87 (Fashion-MNIST) | 300
timeseries | --data ../shared/data/airline-passengers.csv --window 12 --hidden 8 --epochs 400 --lr 0.01 --seed 1 --threads 1 --plot {out}/timeseries.png | LSTM RMSE / persistence RMSE: | < 1 | LSTM test RMSE below persistence (airline passengers) | 120
textgen | --data ../shared/data/tinyshakespeare.txt --cell lstm --layers 2 --hidden 256 --batch 64 --seq 100 --steps 1400 --lr 2e-3 --lr-min 1e-4 --threads 1 --eval-every 100 --sample-every 700 --save {out}/textgen.safetensors --plot {out}/textgen-loss.png | validation cross-entropy: | <= 1.60 | validation cross-entropy <= 1.60 nats/char (2 x 256 LSTM, tinyshakespeare) within 15 minutes | 900
sentiment | --data ../shared/data/umich-sentiment-train.tsv --model lstm --epochs 10 --batch 32 --seed 1 --split-seed 42 --threads 1 --plot {out}/sentiment.png | validation accuracy (lstm): | >= 0.97 | validation accuracy >= 0.97 (default LSTM model) | 300
seq2seq | --beam 3 --threads 1 --seed 1 | test exact-match accuracy (greedy): | >= 0.99 | exact-match accuracy >= 0.99 on 2000 held-out addition questions, 3-digit operands (LSTM encoder-decoder, reversed input, greedy; beam k=3 printed too) | 300
seq2seq-attention | --attention --beam 3 --threads 1 --seed 1 --plot {out}/seq2seq-attention.png | test exact-match accuracy (greedy): | >= 0.99 | the same with attention (greedy; beam k=3 printed too) | 600 | seq2seq
transformer | --task sort --threads 1 --seed 1 --plot {out}/transformer-attention.png | test exact-match accuracy: | >= 0.99 | exact-match accuracy >= 0.99 on 2000 held-out digit strings of length 10 (sorting; 2 layers, d_model 64, 4 heads) + attention heatmap PNG | 180
custom_cell | --compare --threads 1 --seed 1 | new cell (MGU) test accuracy on the adding problem, T = 50: | >= 0.95 | new cell (MGU) from primitives passes tg_gradcheck and learns the adding problem (T = 50; GRU and LSTM alongside) | 180
cnn | --epochs 12 --batch 128 --seed 1 --threads 1 --plot-filters {out}/cnn-filters.png --plot-confusion {out}/cnn-confusion.png | test accuracy (CNN): | >= 0.91 | test accuracy of a 2-block CNN >= 0.91 (Fashion-MNIST; per class, confusion matrix and first-layer filters as PNGs) |
autoencoder | --k 18 --epochs 10 --seed 1 --threads 1 --plot {out}/autoencoder.png | test error / PCA's, linear autoencoder: | <= 1.01 | linear autoencoder (k = 18) within 1% of the test reconstruction error of PCA with 18 components (LAPACK); principal angles to the PCA subspace printed; reconstructions PNG |
autoencoder-nonlinear | | test error / PCA's, non-linear autoencoder: | < 1 | non-linear autoencoder (784-256-18-256-784, ReLU) below PCA's error at k = 18 | | log:autoencoder
EOF
)

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; printf '%s' "${s%"${s##*[![:space:]]}"}"; }

# field <line> <n>: the n-th " | "-separated field, trimmed
field() { trim "$(printf '%s\n' "$1" | awk -F'|' -v n="$2" '{print $n}')"; }

# First number after the label on the last output line that holds it.
figure_of() {
    local log=$1 label=$2 line
    line=$(grep -F -- "$label" "$log" | tail -n 1) || return 0
    printf '%s\n' "${line#*"$label"}" | grep -oE '[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?' |
        head -n 1
}

# A row whose figure comes from another row's log (the same run measures two things).
figure_row() {
    local name=$1 label=$2 check=$3 target=$4 from=$5 value met=no
    [ -f "$out/$from.log" ] || { echo "$name: skipped ($from has not run)"; return 0; }
    value=$(figure_of "$out/$from.log" "$label")
    if [ -n "$value" ] && awk "BEGIN { exit !($value $check) }"; then met=yes; fi
    echo "$name: ${label} ${value:-?} (target: $check): $met"
    cp "$out/$from.machine" "$out/$name.machine"
    printf '| %s | %s %s | %s | %s | (the %s run) | %s |\n' "$name" "$label" "${value:-?}" \
        "$target" "$met" "$from" "$(cpu_name)" >"$out/$name.row"
}

run_one() {
    local row=$1 name args label check target limit prog exe log start secs rc value met
    name=$(field "$row" 1); args=$(field "$row" 2 | sed "s|{out}|$out|g"); label=$(field "$row" 3)
    check=$(field "$row" 4); target=$(field "$row" 5); limit=$(field "$row" 6)
    prog=$(field "$row" 7); prog=${prog:-$name}
    exe=$build/examples/$prog
    log=$out/$name.log
    if [ "${prog#log:}" != "$prog" ]; then figure_row "$name" "$label" "$check" "$target" "${prog#log:}"; return 0; fi
    if [ -z "$label" ] || ! ninja -C "$build" "examples/$prog" >/dev/null 2>&1; then
        echo "$name: skipped (not built, or no full-size settings yet)"
        printf '| %s | not run | %s | - | - | - |\n' "$name" "$target" >"$out/$name.row"
        return 0
    fi
    echo "$name: running $exe $args"
    start=$(date +%s.%N)
    set +e
    # shellcheck disable=SC2086  # the arguments are word-split on purpose
    "$exe" $args >"$log" 2>&1
    rc=$?
    set -e
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
    value=$(figure_of "$log" "$label")
    met=no
    if [ "$rc" -eq 0 ] && [ -n "$value" ] && awk "BEGIN { exit !($value $check) }" &&
        { [ -z "$limit" ] || [ "$secs" -le "$limit" ]; }; then met=yes; fi
    [ "$rc" -eq 0 ] || met="no (exit status $rc)"
    echo "$name: ${label} ${value:-?} (target: $check) in ${secs}s: $met"
    machine >"$out/$name.machine"
    printf '| %s | %s %s | %s | %s | %d min %02d s | %s |\n' "$name" "$label" "${value:-?}" "$target" \
        "$met" $((secs / 60)) $((secs % 60)) "$(cpu_name)" >"$out/$name.row"
    printf '%s\n' "$exe $args" | sed "s|^$build/|./$build/|" >"$out/$name.cmd"
}

cpu_name() { lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1 | sed 's/([RTMrtm]*)//g'; }

machine() {
    local cpu mem os blis
    cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
    mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    os=$(. /etc/os-release 2>/dev/null && printf '%s' "${PRETTY_NAME:-unknown}")
    blis=$(dpkg-query -W -f '${Package} ${Version}\n' 'libblis4*' 2>/dev/null | head -n 1)
    echo "- CPU: ${cpu:-unknown}, $(nproc) cores online"
    echo "- Memory: $mem"
    echo "- OS: $os, kernel $(uname -r)"
    echo "- Compiler: $(cc --version | head -n 1); meson buildtype release"
    echo "- BLIS: ${blis:-unknown}"
}

# Why each full-size run uses the settings it does.
notes_for() {
    case $1 in
    textgen) cat <<'EOF'
Adam (lr 2e-3, cosine-decayed to 1e-4 over the run), the usual choice for character
LSTMs; the lecture's RMSprop is `--optim rmsprop` and was not measured at full size.
Gradient norm clipped at 5; truncated BPTT over 100 characters with the state carried
across batches; embedding 64; no dropout. One BLIS thread: on this 2-core machine shared
with other jobs, short runs of this model gave about 12.5k characters/s on one thread
every time, and on two threads 17k with the second core idle but 5k-6k while another job
ran (BLIS' OpenMP threads spin-wait for each other), so one thread gave the steady time.
EOF
    ;;
    sentiment) cat <<'EOF'
**Target missed: 0.933 against 0.97.** The data file holds 7086 lines but only 1348
distinct sentences (after lower-casing); we merge duplicates before the 80/20 split, as
`../shared/data/README.md` asks, so no validation sentence was seen in training. The
Keras figure of 0.980 comes from a split where duplicates leak into validation. PyTorch
1.13 trained on exactly this split and these ids reaches 0.93-0.95, so the LSTM is not
at fault; across split seeds 1-6 ours gets 0.933-0.970. Dropout 0 / 0.5, lr 3e-3,
masking, max-pooling over time did not lift it. The conv1d + global max pooling model
(`--model cnn`) reaches 0.978 on the same split; cnn-lstm 0.959, bilstm 0.948,
stacked 0.919. Every model beside PyTorch over five split seeds: the section
"Sentiment over five split seeds" below (measured later, on another machine).
EOF
    ;;
    cnn) cat <<'EOF2'
Two 3x3 convolutions (32 and 64 filters, padding 1) each followed by ReLU and 2x2 max
pooling, dropout 0.3 on the flattened features and after the dense layer of 128; Adam,
lr 1e-3 cosine-decayed to 5e-5 over 12 epochs, batch 128, PyTorch's default
initialisation for the convolutions (Glorot for the dense layers). One BLIS thread. The
machine was shared with other developers' builds and tests throughout (load average
8-11 on its 2 cores), so the run time is several times what the model needs alone: the
training step itself takes about 100 ms per batch of 128 here (docs/performance.md).
Shirt is the weak class, mostly taken for T-shirt/top, pullover or coat, as for every
model on this data set.
EOF2
    ;;
    autoencoder | autoencoder-nonlinear) cat <<'EOF2'
k = 18 because the principal angles are only determined where the k-th eigenvalue of
the covariance stands clear of the (k+1)-th: at k = 18 the gap is 14.5%, at k = 32 (a
rounder number) it is 0.5%, and there a linear autoencoder trained the same way matched
PCA's error within 0.05% while its last principal angle was 74 degrees, an equally good
mix of components 32 and 33 (measured with a prototype of the same model in PyTorch).
Images are centred by the training mean for PCA and both autoencoders; the linear model
trains with Adam at lr 1e-2, the non-linear one at 1e-3, both cosine-decayed to lr/100
over 10 epochs of batches of 128, Glorot initialisation, one BLIS thread.
EOF2
    ;;
    seq2seq-attention) cat <<'EOF2'
The same program and seed as the plain row with `--attention` (Luong's attention over
the encoder outputs at every decoder step). Training stops when the validation exact
match reaches 0.995; with attention that took longer on this (shared, slower) machine
than the plain model on the Xeon. The plain row's 0.997 was measured without attention.
EOF2
    ;;
    sentiment-seeds) cat <<'EOF2'
`examples/sentiment_seeds.sh` trains every model of `examples/sentiment` on the
deduplicated 80/20 split for split seeds 1-5 (model seed 1, the program's defaults:
embedding 128, LSTM 64 with Keras-style dropout 0.2 and recurrent dropout 0.2, conv1d
256 filters of 3 for cnn, 64 of 5 with max-pool 4 for cnn-lstm, Adam lr 1e-3, batch 32,
10 epochs), and `examples/sentiment_torch.py` trains the same models in PyTorch 1.13 on
the same split (rebuilt with tapegrad's generator, same vocabulary and padding), with the
same initialisers and dropout scheme; only the training randomness differs. Validation
accuracy after the last epoch, 270 sentences per split (one sentence is 0.0037).
EOF2
    ;;
    esac
}

# A section per run: the notes above and the end of its log (final figures, a sample).
details() {
    echo
    echo "## $1"
    echo
    notes_for "$1"
    echo
    echo "End of the run's output (progress lines left out):"
    echo
    echo '```'
    grep -vE '^step [0-9]+/[0-9]+ ' "$out/$1.log" | tail -n 30
    echo '```'
    pictures "$1"
}

# The PNGs the run's command wrote, copied beside this document (docs/img/) and shown.
pictures() {
    local png base
    for png in $(grep -oE "$out/[^ ]+\.png" "$out/$1.cmd"); do
        [ -f "$png" ] || continue
        base=$(basename "$png")
        mkdir -p docs/img
        cp "$png" "docs/img/$base"
        printf '\n![%s](img/%s)\n' "$base" "$base"
    done
}

# Each machine the rows ran on, with the rows it ran.
machine_key() { md5sum <"$out/$1.machine" | cut -c1-12; }
machines() {
    local seen="" name key names other
    while IFS= read -r row; do
        name=$(field "$row" 1)
        [ -f "$out/$name.machine" ] || continue
        key=$(machine_key "$name")
        case " $seen " in *" $key "*) continue ;; esac
        seen="$seen $key"
        names=""
        while IFS= read -r other; do
            other=$(field "$other" 1)
            if [ -f "$out/$other.machine" ] && [ "$(machine_key "$other")" = "$key" ]; then
                names="$names${names:+, }$other"
            fi
        done <<<"$table"
        echo "$names:"
        echo
        cat "$out/$name.machine"
        echo
    done <<<"$table"
}

# The tapegrad / PyTorch table of examples/sentiment_seeds.sh, when it has run.
seeds_section() {
    [ -f "$out/sentiment-seeds.md" ] || return 0
    echo "## Sentiment over five split seeds, beside PyTorch"
    echo
    notes_for sentiment-seeds
    echo
    echo "Command: \`bash examples/sentiment_seeds.sh $build\` (the full log: \`$out/sentiment-seeds.log\`)."
    echo
    cat "$out/sentiment-seeds.md"
    echo
}

write_doc() {
    local name commit
    commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    [ -z "$(git status --porcelain 2>/dev/null)" ] || commit="$commit + uncommitted changes"
    {
        echo "# Full-size results"
        echo
        echo "Written by \`examples/run_all.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') from commit $commit."
        echo "The examples ran one after another; the run time is the wall time of the whole"
        echo "program (data loading, training, evaluation, plots)."
        echo
        echo "| example | figure | target | met | run time | machine |"
        echo "|---|---|---|---|---|---|"
        while IFS= read -r row; do
            name=$(field "$row" 1)
            if [ -f "$out/$name.row" ]; then cat "$out/$name.row"
            else printf '| %s | not run | %s | - | - | - |\n' "$name" "$(field "$row" 5)"; fi
        done <<<"$table"
        echo
        echo "## Machines"
        echo
        machines
        seeds_section
        echo "## Commands"
        echo
        echo "Run from the repository root after \`meson setup $build -Dbuildtype=release && ninja -C $build\`:"
        echo
        echo '```sh'
        while IFS= read -r row; do
            name=$(field "$row" 1)
            if [ -f "$out/$name.cmd" ]; then cat "$out/$name.cmd"; fi
        done <<<"$table"
        echo '```'
        while IFS= read -r row; do
            name=$(field "$row" 1)
            if [ -f "$out/$name.log" ] && [ -f "$out/$name.cmd" ]; then details "$name"; fi
        done <<<"$table"
    } >"$doc"
    echo "wrote $doc"
}

# reconfigure: meson picks up example sources added since the last setup
if [ -d "$build" ]; then meson setup --reconfigure -Dbuildtype=release "$build" >/dev/null
else meson setup "$build" -Dbuildtype=release >/dev/null; fi
mkdir -p "$out"
for want in "${@:-}"; do
    [ "$want" = sentiment-seeds ] && continue
    if [ -n "$want" ] && ! printf '%s\n' "$table" | awk -F'|' '{print $1}' | grep -qx "$want *"; then
        echo "run_all.sh: no example named '$want'" >&2
        exit 2
    fi
done
# DOC_ONLY=1: rewrite docs/results.md from the results present, running nothing
while IFS= read -r row; do
    name=$(field "$row" 1)
    [ -z "${DOC_ONLY:-}" ] || break
    if [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qx "$name"; then run_one "$row"; fi
done <<<"$table"
# tapegrad and PyTorch over five split seeds (a table of its own, not a row)
if [ -z "${DOC_ONLY:-}" ] && { [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qx sentiment-seeds; }; then
    ninja -C "$build" examples/sentiment >/dev/null && bash examples/sentiment_seeds.sh "$build" "$out"
fi
write_doc
