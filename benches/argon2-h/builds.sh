#!/usr/bin/env bash
# H in three builds, one run: builds argon2-h for the target's baseline (the default),
# for x86-64-v3 (AVX2) and for this CPU (`native`), each in a target directory of its own,
# then times them interleaved (ROUNDS rounds of 20 verifications each, default 7) and prints
# the median of each and their ratios. benches/README.md, "The hashing core", quotes it.
#
# Usage: benches/argon2-h/builds.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-7}"
declare -A binary=(
  [default]=target/release/argon2-h
  [x86-64-v3]=target/argon2-v3/release/argon2-h
  [native]=target/argon2-native/release/argon2-h
)
cargo build --release --quiet -p argon2-h
RUSTFLAGS="-C target-cpu=x86-64-v3" cargo build --release --quiet --target-dir target/argon2-v3 -p argon2-h
RUSTFLAGS="-C target-cpu=native" cargo build --release --quiet --target-dir target/argon2-native -p argon2-h
samples=$(mktemp)
for _ in $(seq "$rounds"); do
  for build in default x86-64-v3 native; do
    ms=$("${binary[$build]}" 20 pool | awk '{print $NF}')
    echo "$build $ms" >> "$samples"
  done
done
median() { grep "^$1 " "$samples" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
default=$(median default)
echo "| build (RUSTFLAGS) | H ms (median of $rounds interleaved rounds of 20) | ÷ default |"
echo "|---|---|---|"
for build in default x86-64-v3 native; do
  h=$(median "$build")
  echo "| $build | $h | $(awk -v h="$h" -v d="$default" 'BEGIN {printf "%.3f", h / d}') |"
done
rm -f "$samples"
