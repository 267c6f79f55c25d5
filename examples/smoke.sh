#!/bin/sh
# Runs an example briefly: it must exit 0, print at least one loss, and every
# loss it prints must be a finite number.
prog=$1; shift
out=$("$prog" "$@" 2>&1)
rc=$?
printf '%s\n' "$out" | tail -n 15
if [ $rc -ne 0 ] && [ -n "${TG_DATA:-}" ] && [ ! -d "$TG_DATA" ] &&
   printf '%s\n' "$out" | grep -q "data file: .*: cannot open"; then
    echo "smoke: skipped, $TG_DATA is missing (CI puts ../shared beside the clone)"
    exit 77
fi
[ $rc -eq 0 ] || { echo "smoke: exit status $rc"; exit 1; }
losses=$(printf '%s\n' "$out" | grep -oiE 'loss[ =:]+[-+0-9.eEnaif]+' | awk '{print $NF}')
[ -n "$losses" ] || { echo "smoke: no loss printed"; exit 1; }
for v in $losses; do
    case $v in *[nN][aA][nN]*|*[iI][nN][fF]*) echo "smoke: non-finite loss $v"; exit 1 ;; esac
done
echo "smoke: ok ($(printf '%s\n' "$losses" | wc -l) finite losses)"
