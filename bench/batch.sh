#!/usr/bin/env bash
# batch.sh: batched against unbatched delivery (docs/batching.md), same
# machine, same run. Starts its own redis-server and nginx sink (204 to
# everything) on free 127.0.0.1 ports in a mktemp dir, creates one endpoint,
# then for each mode pre-fills the stream with N 1 KiB JSON events, starts one
# `hookq worker` and times the drain: first unbatched, then with
# `--batch max=100,wait=50ms`. Prints deliveries/s of each (an event counts as
# one delivery, batched or not), the requests nginx saw and the ratio; the
# target is a ratio >= 5. Both phases use ids t0..: the first phase's dedupe
# claims are dropped before the second, so each event costs one claim and
# none is a duplicate. A benchmark, not a test: exits 0 either way, 1 when
# a phase cannot run, 2 for a bad option. Everything it starts is stopped.
set -euo pipefail

ME=batch.sh
die() { echo "$ME: $*" >&2; exit 1; }
N_PLAIN=30000
N_BATCH=200000
BATCH=max=100,wait=50ms
while [ $# -gt 0 ]; do
    case "$1" in
    --events) [[ ${2:-} =~ ^[1-9][0-9]{0,7}$ ]] || { echo "$ME: --events: '${2:-}' is not a positive integer" >&2; exit 2; }
        N_PLAIN=$2; shift 2 ;;
    --batch-events) [[ ${2:-} =~ ^[1-9][0-9]{0,7}$ ]] || { echo "$ME: --batch-events: '${2:-}' is not a positive integer" >&2; exit 2; }
        N_BATCH=$2; shift 2 ;;
    --batch) [ -n "${2:-}" ] || { echo "$ME: --batch: missing value" >&2; exit 2; }; BATCH=$2; shift 2 ;;
    -h | --help)
        echo "usage: bench/batch.sh [--events N (unbatched, default 30000)] [--batch-events N (default 200000)] [--batch SPEC (default max=100,wait=50ms)]"
        echo "env: HQ_BUILD_DIR (default <repo>/build): where bin/hookq and bin/hq_bench are;"
        echo "     HQ_WORKER_ARGS: added to each worker's command line; HQ_WORKER_WRAP: put before it (e.g. callgrind,"
        echo "     then bench/ir_per_delivery.sh); HQ_BENCH_CMDSTATS=1: Redis' commandstats per event of each phase (stderr)"
        exit 0 ;;
    *) echo "$ME: unknown option '$1'" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${HQ_BUILD_DIR:-$ROOT/build}
HOOKQ=$BUILD/bin/hookq
HQB=$BUILD/bin/hq_bench
[ -x "$HOOKQ" ] && [ -x "$HQB" ] || die "$HOOKQ or $HQB: not built (./run build)"
for tool in redis-server redis-cli nginx awk; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool: not found"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hookq-batch.XXXXXX")
STARTED=()
cleanup() {
    local i
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        kill -TERM "${STARTED[$i]}" 2>/dev/null || true
        wait "${STARTED[$i]}" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

RPORT=$(field "$("$HQB" free-port)" port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no --dir "$TMP" \
    --logfile "$TMP/redis.log" >/dev/null 2>&1 &
STARTED+=("$!")
URL=redis://127.0.0.1:$RPORT/0
NPORT=$(field "$("$HQB" free-port)" port)
sed -e "s|@DIR@|$TMP|g" -e "s|@PORT@|$NPORT|g" -e "s|@USER@|$([ "$(id -u)" = 0 ] && echo 'user root;')|g" \
    "$ROOT/bench/nginx.conf.in" >"$TMP/nginx.conf"
nginx -p "$TMP/" -c "$TMP/nginx.conf" -e "$TMP/error.log" >/dev/null 2>&1 &
NPID=$!
STARTED+=("$NPID")
for _ in $(seq 100); do
    redis-cli -p "$RPORT" ping >/dev/null 2>&1 && [ -s "$TMP/nginx.pid" ] && break
    sleep 0.1
done
redis-cli -p "$RPORT" ping >/dev/null 2>&1 || die "redis-server did not start ($TMP/redis.log)"

EP=$("$HOOKQ" endpoint add --redis-url "$URL" --name bench --url "http://127.0.0.1:$NPORT/hook" \
    --allow-private | sed -n 's/^id: *//p' | head -n 1)
[ -n "$EP" ] || die "hookq endpoint add gave no id"
requests() { if [ -f "$TMP/access.log" ]; then wc -l <"$TMP/access.log"; else echo 0; fi; }

redis_cpu() { redis-cli -p "$RPORT" INFO cpu | awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.4f", s }'; }

# run MODE N: pre-fills N events, drains them with one worker; prints "rate
# requests worker-us redis-us" (CPU microseconds per event of each).
run() {
    local n=$2 t0 out secs wpid r0 rc0 wcpu
    # Both phases produce ids t0..: the first phase's dedupe claims go (the
    # generation index hookq:dd and its generations hookq:dd:<start ms>), so
    # neither phase meets duplicates (each event still costs its claim).
    redis-cli -p "$RPORT" --scan --pattern 'hookq:dd*' | xargs -r -n 1000 redis-cli -p "$RPORT" UNLINK >/dev/null
    "$HQB" produce "$URL" hookq "$n" >/dev/null || die "pre-filling the stream failed"
    redis-cli -p "$RPORT" CONFIG RESETSTAT >/dev/null
    r0=$(requests)
    rc0=$(redis_cpu)
    t0=$(date +%s%N)
    # shellcheck disable=SC2086 # HQ_WORKER_WRAP and HQ_WORKER_ARGS are word lists on purpose
    HOOKQ_LOG_LEVEL=warn ${HQ_WORKER_WRAP:-} "$HOOKQ" worker --redis-url "$URL" --allow-private ${HQ_WORKER_ARGS:-} >"$TMP/worker-$1.log" 2>&1 &
    wpid=$!
    STARTED+=("$wpid")
    out=$("$HQB" wait-drain "$URL" hookq "$wpid" $((120 + n / 1000)) "$t0") ||
        { tail -n 5 "$TMP/worker-$1.log" >&2; die "$1: the stream did not drain"; }
    wcpu=$(field "$("$HQB" proc "$wpid")" cpu_s)
    rc0=$(awk "BEGIN { printf \"%.1f\", ($(redis_cpu) - $rc0) * 1e6 / $n }")
    kill -TERM "$wpid"; wait "$wpid" 2>/dev/null || true
    secs=$(field "$out" secs)
    # HQ_BENCH_CMDSTATS=1: Redis' INFO commandstats of the phase, us per event.
    [ -z "${HQ_BENCH_CMDSTATS:-}" ] || redis-cli -p "$RPORT" INFO commandstats | tr -d '\r' |
        awk -F'[:=,]' -v n="$n" -v m="$1" '/^cmdstat_/ { sub(/^cmdstat_/, "", $1); if ($5 / n >= 0.05) printf "  %s %-14s %6.2f us/event %8.3f calls/event\n", m, $1, $5 / n, $3 / n }' >&2
    [ "$(field "$out" dead)" = 0 ] || die "$1: dead letters ($out)"
    kill -USR1 "$NPID"; sleep 0.5 # nginx flushes its buffered access log on reopen
    echo "$(awk "BEGIN { printf \"%.0f\", $n / $secs }") $(($(requests) - r0)) $(awk "BEGIN { printf \"%.1f\", $wcpu * 1e6 / $n }") $rc0"
}

echo "batch benchmark: $(nproc) CPUs, 1 KiB JSON events, one endpoint (nginx 204), one worker"
read -r PLAIN PLAIN_REQ PW PR <<<"$(run plain "$N_PLAIN")"
echo "unbatched: $PLAIN deliveries/s ($N_PLAIN events, $PLAIN_REQ requests; CPU per event: worker $PW us, redis $PR us)"
"$HOOKQ" endpoint update "$EP" --redis-url "$URL" --batch "$BATCH" >/dev/null
read -r BAT BAT_REQ BW BR <<<"$(run batched "$N_BATCH")"
echo "batched ($BATCH): $BAT deliveries/s ($N_BATCH events, $BAT_REQ requests; CPU per event: worker $BW us, redis $BR us)"
RATIO=$(awk "BEGIN { printf \"%.1f\", $BAT / $PLAIN }")
VERDICT=$(awk "BEGIN { print ($RATIO >= 5) ? \"target met\" : \"target missed\" }")
echo "ratio: ${RATIO}x   [>= 5x: $VERDICT]"
