#!/usr/bin/env bash
# Installs what the side-by-side benchmark (bench/compare.py) needs beyond
# scripts/deps.sh, only what is missing. Run as root (or with sudo). Safe to
# run again.
#
#   python3-torch          PyTorch 1.13, the reference side (/usr/bin/python3)
#   libopenblas0-pthread   OpenBLAS for PyTorch: it takes priority in Debian's
#                          libblas.so.3 alternative (over BLIS), which is the
#                          BLAS the reference figures were measured
#                          with. tapegrad links libblis.so directly and is
#                          unaffected (check: ldd build-h/bench/w1_char_lstm).
#   linux-perf, time       perf stat / perf record; /usr/bin/time -v
#   valgrind               callgrind instruction counts
set -euo pipefail
packages=(python3-torch libopenblas0-pthread linux-perf time valgrind)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Say which BLAS PyTorch will load.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
echo "libblas.so.3 -> ${blas:-missing} (PyTorch's BLAS)"
case "$blas" in
*openblas*) ;;
*) echo "warning: PyTorch will not use OpenBLAS; see update-alternatives --config libblas.so.3-x86_64-linux-gnu" >&2 ;;
esac
