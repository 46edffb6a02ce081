#!/usr/bin/env bash
# bench_noisy_smoke.sh SRC_DIR BUILD_DIR: runs bench/noisy.sh --quick and
# checks that it exits 0 and prints both phases and the ratio. It checks that
# the driver works, not any number. Exit 77 (ctest SKIP_RETURN_CODE) when
# redis-server or curl is missing.
set -euo pipefail

[ $# = 2 ] || { echo "usage: bench_noisy_smoke.sh SRC_DIR BUILD_DIR" >&2; exit 2; }
for tool in redis-server redis-cli curl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench_noisy_smoke: $tool not found: skipped" >&2; exit 77; }
done
out=$(HQ_BUILD_DIR=$2 "$1/bench/noisy.sh" --quick 2>&1) || { echo "$out" >&2; exit 1; }
for want in "healthy  round 1: healthy 4500 deliveries" "noisy    round 1: healthy 4500 deliveries" \
    "median noisy / healthy throughput"; do
    grep -qF "$want" <<<"$out" || { echo "bench_noisy_smoke: no '$want' in:" >&2; echo "$out" >&2; exit 1; }
done
