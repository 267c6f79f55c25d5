#!/bin/sh
# A rank that dies or stalls must end the whole job with an error, soon, not
# leave the others waiting forever.
#   failing_rank.sh MPIRUN DIST_TRAIN kill|stall
#   kill:  rank 1 kills itself (SIGKILL) at step 5; mpirun notices and ends
#          the job (its message names the rank and the signal).
#   stall: rank 1 sleeps at step 5; rank 0's wait for the allreduce times out
#          after 5 s (tg_dist_opts.timeout_seconds), says so, and ends the job
#          with tg_dist_abort.
# Either must take well under the 120 s guard (timeout exits 124: a hang).
mpirun=$1 prog=$2 mode=$3
log=$(mktemp "${TMPDIR:-/tmp}/tg_failing_rank.XXXXXX")
trap 'rm -f "$log"' EXIT
start=$(date +%s)
timeout 120 "$mpirun" -np 2 --oversubscribe "$prog" "$mode" --timeout 5 > "$log" 2>&1
rc=$?
took=$(( $(date +%s) - start ))
case $mode in
    kill) want='exited on signal 9' ;;
    stall) want='no answer from the other ranks after' ;;
    *) echo "failing_rank.sh: mode kill or stall"; exit 2 ;;
esac
if [ "$rc" -eq 124 ]; then
    echo "FAIL: $mode: the job still ran after 120 s"; cat "$log"; exit 1
elif [ "$rc" -eq 0 ]; then
    echo "FAIL: $mode: the job exited 0"; cat "$log"; exit 1
elif ! grep -q "$want" "$log"; then
    echo "FAIL: $mode: no '$want' in the output:"; cat "$log"; exit 1
fi
echo "ok: $mode: the job ended with exit status $rc after ${took} s, saying:"
grep -m 2 -e "$want" -e "rank 0, step" "$log"
