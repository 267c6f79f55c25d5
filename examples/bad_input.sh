#!/bin/sh
# Runs an example with bad input, case by case: each run must exit non-zero
# within a few seconds (nothing may start training on absurd sizes, wait on a
# FIFO, or end silently) and print the expected message.
#   bad_input.sh PROGRAM        (TG_DATA: the data folder, for cases that need it)
prog=$1
name=$(basename "$prog")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tg_bad_input.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkfifo "$tmp/fifo"
mkdir "$tmp/mnist" && mkfifo "$tmp/mnist/train-images-idx3-ubyte.gz"
data=${TG_DATA:-../shared/data}
fails=0 runs=0

# expect CODE REGEX ARGS...: exit status CODE and a line matching REGEX.
expect() {
    code=$1 want=$2
    shift 2
    runs=$((runs + 1))
    out=$(timeout 60 "$prog" "$@" 2>&1 </dev/null)
    rc=$?
    if [ "$rc" -ne "$code" ] || ! printf '%s\n' "$out" | grep -qE -- "$want"; then
        echo "FAIL: $name $* -> exit $rc (want $code), output:"
        printf '%s\n' "$out" | tail -n 5 | sed 's/^/    /'
        echo "    (wanted a line matching: $want)"
        fails=$((fails + 1))
    else
        echo "ok: $name $* -> exit $rc: $(printf '%s\n' "$out" | grep -E -- "$want" | head -n 1)"
    fi
}
range() { expect 2 "--$1 .* is out of range" "--$1" "$2"; }
too_big() { expect 2 "need about .* of memory, this machine has" "$@"; }
diverges() {
    expect 1 "training diverged at step [0-9]+: the loss is (nan|inf).*try a lower --lr" "$@"
}
fifo() { f=$1; shift; expect 1 "$f: cannot open: not a regular file \(a FIFO\)" "$@"; }
have_data() { [ -f "$data/$1" ]; }

case $name in
textgen)
    range threads -1; range temperature -0.5; range hidden 99999999; range batch 0
    too_big --hidden 65536 --batch 65536
    too_big --batch 65536 --seq 65536
    fifo "$tmp/fifo" --data "$tmp/fifo"
    fifo "$tmp/fifo" --load "$tmp/fifo" --sample-only
    diverges --data README.md --val-frac 0.3 --lr 1e308 --steps 6 --layers 1 --hidden 32 \
        --embed 16 --batch 4 --seq 16 --save '' --plot '' ;;
mlp)
    range threads -1; range hidden 99999999; range batch 999999999
    too_big --hidden 65536 --batch 65536
    fifo "$tmp/mnist/train-images-idx3-ubyte.gz" --data "$tmp/mnist"
    if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
        diverges --lr 1e308 --epochs 1 --steps 20 --plot ''
    fi ;;
cnn)
    range threads -1; range batch 0; range filters1 99999; range dropout 1.5
    too_big --batch 60000 --filters1 4096
    fifo "$tmp/mnist/train-images-idx3-ubyte.gz" --data "$tmp/mnist"
    if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
        diverges --lr 1e308 --epochs 1 --steps 3 --limit 512 --plot-filters '' --plot-confusion ''
    fi ;;
autoencoder)
    range threads -1; range k 0; range width 99999999; range batch 0
    too_big --width 65536 --batch 65536
    fifo "$tmp/mnist/train-images-idx3-ubyte.gz" --data "$tmp/mnist"
    if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
        diverges --lr 1e308 --models linear --epochs 1 --steps 3 --limit 512 --plot ''
    fi ;;
timeseries)
    range threads -1; range hidden 99999999; range window 0
    too_big --hidden 65536 --window 40
    fifo "$tmp/fifo" --data "$tmp/fifo"
    diverges --lr 1e308 --plot '' ;;
sentiment)
    range threads -1; range hidden 99999999; range embed 0
    fifo "$tmp/fifo" --data "$tmp/fifo"
    if have_data umich-sentiment-train.tsv; then
        too_big --hidden 65536 --maxlen 65536
        fifo "$tmp/fifo" --glove "$tmp/fifo"
        diverges --lr 1e308 --epochs 1 --steps 10 --plot ''
    fi ;;
seq2seq)
    range threads -1; range hidden 99999999; range beam 65
    too_big --hidden 65536 --batch 65536
    too_big --batch 65536 --hidden 4096 --attention
    diverges --lr 1e308 --steps 20 --batch 32 --val 50 --test 100 --plot '' ;;
transformer)
    range threads -1; range dim 99999999; range length 19
    too_big --dim 65536 --heads 1 --ffn 65536
    too_big --batch 65536 --length 18 --dim 4096
    diverges --lr 1e308 --steps 20 --batch 16 --val 50 --test 100 --plot '' ;;
custom_cell)
    range threads -1; range batch 999999999; range hidden 99999999
    too_big --batch 65536 --length 1000 --hidden 4096
    diverges --lr 1e308 --steps 20 --length 10 ;;
*)
    echo "bad_input: no cases for $name"; exit 1 ;;
esac
echo "bad_input: $name: $runs runs, $fails failed"
[ "$fails" -eq 0 ]
