#!/usr/bin/env bash
# ordered.sh: ordered endpoints' throughput (docs/ordering.md). One worker,
# one redis-server, one sink (bench/sink.c) answering after --delay ms; the
# stream is pre-filled, then the worker started and timed until the sink has
# every request. Three phases on the same machine and run:
#   unordered   N events to a plain endpoint;
#   ordered     N events over --keys keys (default 100) to an --ordered endpoint;
#   one key     M events of one key to an --ordered endpoint: one round trip
#               per event (park, send, record, next head), reported in ms.
# Prints deliveries/s of each and the ratio ordered / unordered (target >=
# 0.5); before each phase's line, per event: the worker's and redis' CPU (us)
# and the Redis commands >= 0.05 per event (calls, us; INFO commandstats after
# CONFIG RESETSTAT, so including the pre-fill's XADDs; scripts' commands are
# counted both alone and in their EVALSHA's time). Compare two builds in one
# session by alternating HQ_BUILD_DIR. A benchmark, not a test: the target is printed as met/missed. Exit 1
# when a run cannot be made, 2 for a bad option. Talks only to 127.0.0.1 and
# stops everything it started.
set -euo pipefail

usage() {
    cat <<EOF
usage: bench/ordered.sh [options]
  --events N     events of the unordered and ordered phases (default 20000)
  --keys K       ordering keys of the ordered phase (default 100)
  --one-key M    events of the one-key phase (default 500)
  --delay MS     the sink's answer delay (default 20)
  --keep         keep the temp dir (logs)
env: HQ_BUILD_DIR (default <repo>/build) holds bin/hookq, bin/hq_sink, bin/hq_bench.
EOF
}

ME=ordered.sh
die() { echo "$ME: $*" >&2; exit 1; }
bad_opt() { echo "$ME: $*" >&2; usage >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${HQ_BUILD_DIR:-$ROOT/build}
HOOKQ=$BUILD/bin/hookq
SINK=$BUILD/bin/hq_sink
HQB=$BUILD/bin/hq_bench
EVENTS=20000 KEYS=100 ONE=500 DELAY=20 KEEP=0
need() { [ "$1" -ge 2 ] || bad_opt "$2: missing value"; }
posint() { [[ $2 =~ ^[1-9][0-9]{0,8}$ ]] || bad_opt "$1: '$2' is not a positive integer"; }
while [ $# -gt 0 ]; do
    case "$1" in
    --events) need $# "$1"; posint "$1" "$2"; EVENTS=$2; shift 2 ;;
    --keys) need $# "$1"; posint "$1" "$2"; KEYS=$2; shift 2 ;;
    --one-key) need $# "$1"; posint "$1" "$2"; ONE=$2; shift 2 ;;
    --delay) need $# "$1"; [[ $2 =~ ^[0-9]{1,6}$ ]] || bad_opt "--delay: '$2' is not a number of ms"; DELAY=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) bad_opt "unknown option '$1'" ;;
    esac
done
for b in "$HOOKQ" "$SINK" "$HQB"; do
    [ -x "$b" ] || die "$b: not found; cmake --build build -j2 (targets hookq, hq_sink, hq_bench)"
done
command -v redis-server >/dev/null || die "redis-server: not found"

P=hookq
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hookq-ordered.XXXXXX")
PIDS=()
stop_pid() {
    local i
    kill -TERM "$1" 2>/dev/null || true
    for i in $(seq 200); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
    if [ "$KEEP" = 1 ]; then echo "$ME: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
val() {
    local pair
    for pair in $1; do [ "${pair%%=*}" = "$2" ] && { echo "${pair#*=}"; return 0; }; done
    echo 0
}
RPORT=$(val "$("$HQB" free-port)" port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no --dir "$TMP" \
    --logfile "$TMP/redis.log" >/dev/null 2>&1 &
PIDS+=("$!")
URL=redis://127.0.0.1:$RPORT/0
rcli() { redis-cli -u "$URL" "$@"; }
for i in $(seq 100); do [ "$(rcli ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
[ "$(rcli ping 2>/dev/null)" = PONG ] || die "redis-server did not start"

# fill N KEYS: XADDs N events of 1 KiB (keys k0..k(KEYS-1) round robin; 0 = none), pipelined.
fill() {
    awk -v n="$1" -v k="$2" 'BEGIN {
        pl = "{\"d\":\""; for (i = 0; i < 1000; i++) pl = pl "x"; pl = pl "\"}"
        for (i = 0; i < n; i++) {
            id = "e" i
            if (k > 0) { key = "k" (i % k); printf "*11\r\n" } else printf "*9\r\n"
            printf "$4\r\nXADD\r\n$12\r\nhookq:events\r\n$1\r\n*\r\n$4\r\ntype\r\n$5\r\nb.ord\r\n"
            printf "$7\r\npayload\r\n$%d\r\n%s\r\n$2\r\nid\r\n$%d\r\n%s\r\n", length(pl), pl, length(id), id
            if (k > 0) printf "$3\r\nkey\r\n$%d\r\n%s\r\n", length(key), key
        }
    }' | rcli --pipe >/dev/null
}

# redis_cpu: redis-server's CPU seconds so far (user + sys).
redis_cpu() { rcli INFO cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%.3f", s }'; }
# cpu_report N WPID: per event, the worker's and redis' CPU (us) and the Redis
# commands (calls, us) since the phase started (CONFIG RESETSTAT).
cpu_report() {
    local n=$1 t wcpu rc
    t=$(getconf CLK_TCK)
    wcpu=$(awk -v t="$t" -v n="$n" '{ printf "%.1f", ($14 + $15) / t * 1e6 / n }' "/proc/$2/stat")
    rc=$(awk -v a="$RCPU0" -v b="$(redis_cpu)" -v n="$n" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }')
    printf '  per event: worker %s us CPU, redis %s us CPU; commands per event:' "$wcpu" "$rc"
    rcli INFO commandstats | tr -d '\r' | awk -F'[:=,]' -v n="$n" '/^cmdstat_/ {
        c = $3 / n; if (c >= 0.05) printf " %s %.2f (%.1f us)", substr($1, 9), c, $5 / n }
        END { printf "\n" }'
}

# phase NAME N KEYS FLAGS: one timed drain; sets DPS and SECS.
phase() {
    local name=$1 n=$2 keys=$3 flags=$4 dir="$TMP/$1" port spid wpid t0 last i
    mkdir -p "$dir"
    rcli FLUSHDB >/dev/null
    rcli CONFIG RESETSTAT >/dev/null
    RCPU0=$(redis_cpu)
    port=$(val "$("$HQB" free-port)" port)
    "$SINK" --port-base "$port" --ports 1 --delay "$DELAY" --log "$dir/sink.log" \
        --status "$dir/sink.status" --ready "$dir/sink.ready" >"$dir/sink.out" 2>&1 &
    spid=$!
    PIDS+=("$spid")
    for i in $(seq 300); do [ -e "$dir/sink.ready" ] && break; sleep 0.1; done
    # shellcheck disable=SC2086 # flags is a word list
    "$HOOKQ" endpoint add --name "$name" --url "http://127.0.0.1:$port/hook" $flags \
        --redis-url "$URL" --prefix "$P" --allow-private >/dev/null || die "endpoint add"
    fill "$n" "$keys"
    t0=$(date +%s%6N)
    HOOKQ_LOG_LEVEL=warn "$HOOKQ" worker --redis-url "$URL" --prefix "$P" --allow-private \
        >"$dir/worker.log" 2>&1 &
    wpid=$!
    PIDS+=("$wpid")
    for ((i = 0; i < 6000; i++)); do
        [ "$(val "$(head -n1 "$dir/sink.status" 2>/dev/null || true)" requests)" -ge "$n" ] && break
        kill -0 "$wpid" 2>/dev/null || die "the worker exited (see $dir/worker.log; --keep)"
        sleep 0.05
    done
    [ "$(val "$(head -n1 "$dir/sink.status")" requests)" -ge "$n" ] || die "$name: not drained in 300 s"
    cpu_report "$n" "$wpid"
    stop_pid "$wpid"
    stop_pid "$spid" # writes its log
    PIDS=("${PIDS[0]}")
    last=$(awk '{ if ($1 > m) m = $1 } END { printf "%.0f\n", m }' "$dir/sink.log")
    SECS=$(awk -v a="$t0" -v b="$last" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
    DPS=$(awk -v n="$n" -v s="$SECS" 'BEGIN { printf "%.0f", n / s }')
    printf '%-10s %6d events in %7s s = %6s deliveries/s\n' "$name" "$n" "$SECS" "$DPS"
}

echo "hookq ordered-endpoint benchmark: $(nproc) CPUs, redis $(redis-server --version | awk '{print $3}'), 1 KiB events, sink answering in $DELAY ms, one worker (defaults: --concurrency 512, --endpoint-concurrency 32)"
phase unordered "$EVENTS" 0 ""
U=$DPS
phase ordered "$EVENTS" "$KEYS" "--ordered"
O=$DPS
phase one-key "$ONE" 1 "--ordered"
RT=$(awk -v s="$SECS" -v n="$ONE" 'BEGIN { printf "%.2f", s * 1000 / n }')
RATIO=$(awk -v a="$O" -v b="$U" 'BEGIN { printf "%.3f", a / b }')
if awk -v m="$RATIO" 'BEGIN { exit !(m >= 0.5) }'; then verdict=met; else verdict=missed; fi
echo "ordered ($KEYS keys) / unordered: $RATIO (target >= 0.5: $verdict)"
echo "one key: $RT ms per event (the sink's $DELAY ms + hookq's round trip)"
