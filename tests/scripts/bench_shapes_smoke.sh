#!/usr/bin/env bash
# bench_shapes_smoke.sh SRC_DIR BUILD_DIR: runs bench/shapes.sh --quick on one
# plain and one TLS shape (1x0, 1000x20-tls) and checks that it exits 0 and
# prints a result row for each worker of each shape. It checks that the driver
# works, not any number: targets are the benchmark's business. Exit 77 (ctest
# SKIP_RETURN_CODE) when node, openssl or redis-server is missing, since then
# the comparison cannot be made at all.
set -euo pipefail

[ $# = 2 ] || { echo "usage: bench_shapes_smoke.sh SRC_DIR BUILD_DIR" >&2; exit 2; }
SRC=$1
BUILD=$2
for tool in node openssl redis-server redis-cli; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench_shapes_smoke: $tool not found: skipped" >&2; exit 77; }
done
for bin in hookq hq_sink hq_bench; do
    [ -x "$BUILD/bin/$bin" ] || { echo "bench_shapes_smoke: $BUILD/bin/$bin is not built" >&2; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hookq-shapes-smoke.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

rc=0
HQ_BUILD_DIR=$BUILD "$SRC/bench/shapes.sh" --quick --shapes 1x0,1000x20-tls --out "$TMP/results.tsv" \
    >"$TMP/stdout" 2>"$TMP/stderr" || rc=$?
fail() {
    echo "bench_shapes_smoke: $*" >&2
    echo "--- stdout" >&2; cat "$TMP/stdout" >&2
    echo "--- stderr" >&2; cat "$TMP/stderr" >&2
    exit 1
}
[ "$rc" = 0 ] || fail "shapes.sh exited $rc"
for shape in 1x0 1000x20-tls; do
    for worker in hookq baseline; do
        # results.tsv: shape, worker, round, ... one row per run.
        awk -F'\t' -v s="$shape" -v w="$worker" '$1 == s && $2 == w { found = 1 } END { exit !found }' \
            "$TMP/results.tsv" || fail "no $worker row for $shape in results.tsv"
        grep -q "^  $shape  *$worker  *round 1: [0-9]* deliveries/s" "$TMP/stdout" ||
            fail "no '$shape $worker round 1' line on stdout"
    done
    grep -q "^== $shape:" "$TMP/stdout" || fail "no table for $shape on stdout"
done
echo "bench_shapes_smoke: ok"
