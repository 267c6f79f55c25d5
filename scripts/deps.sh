#!/usr/bin/env bash
# Installs the Debian 12 packages tapegrad needs, only those missing.
# Run as root (or with sudo available). Safe to run again.
set -euo pipefail
packages=(build-essential meson ninja-build pkg-config libblis-dev check libgtest-dev googletest
          libcjson-dev zlib1g-dev valgrind clang libclang-rt-14-dev libomp-14-dev gnuplot-nox fortunes
          dataset-fashion-mnist python3-torch liblapacke-dev
          graphviz   # dot: renders tg_tape_write_dot graphs (its test is skipped without it)
          libopenmpi-dev openmpi-bin)   # MPI: data-parallel training (dist/), optional to build
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
