#!/usr/bin/env bash
# noisy.sh: noisy neighbours. 1,000 endpoints across 100 tenants; a tenth of
# them are bad: 34 throttled (--rate-limit), 33 answering 500, 33 hanging past
# the worker's --timeout. The same number of events for the 900 healthy
# endpoints is delivered twice in one run, against one redis-server and the
# same sinks (bench/sink.c): once alone ("healthy" phase) and once with the
# bad endpoints' share of the traffic mixed in, round-robin, a tenth of the
# events ("noisy" phase). Prints the healthy endpoints' deliveries/s in each
# phase and their ratio (the target: noisy >= 0.8 x healthy). A benchmark, not
# a test: the target is printed as met/missed and never fails it. Exit 1 when a
# run cannot be made, 2 for a bad option. Everything it starts is stopped on
# exit; it talks only to 127.0.0.1. docs/performance.md has the measurements.
set -euo pipefail

usage() {
    cat <<EOF
usage: bench/noisy.sh [options]
  --events N        events for the healthy endpoints per phase, a multiple of 900 (default 45000)
  --rounds R        rounds, alternating which phase goes first; the median ratio is reported (default 1)
  --delay MS        the healthy endpoints' answer delay (default 20)
  --rate-limit R    the throttled endpoints' limit (default 5/s)
  --timeout DUR     the worker's --timeout: the hanging endpoints never answer within it (default 1s)
  --quick           smoke run: --events 4500
  --keep            keep the temp dir (worker, scheduler and sink logs)
env: HQ_BUILD_DIR (default <repo>/build) is where bin/hookq, bin/hq_sink and bin/hq_bench are.
EOF
}

ME=noisy.sh
die() { echo "$ME: $*" >&2; exit 1; }
bad_opt() { echo "$ME: $*" >&2; usage >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${HQ_BUILD_DIR:-$ROOT/build}
HOOKQ=$BUILD/bin/hookq
SINK=$BUILD/bin/hq_sink
HQB=$BUILD/bin/hq_bench
EVENTS=45000
ROUNDS=1
DELAY=20
RATE_LIMIT=5/s
TIMEOUT=1s
KEEP=0
need() { [ "$1" -ge 2 ] || bad_opt "$2: missing value"; }
posint() { [[ $2 =~ ^[1-9][0-9]{0,8}$ ]] || bad_opt "$1: '$2' is not a positive integer"; }
while [ $# -gt 0 ]; do
    case "$1" in
    --events) need $# "$1"; posint "$1" "$2"; EVENTS=$2; shift 2 ;;
    --rounds) need $# "$1"; posint "$1" "$2"; ROUNDS=$2; shift 2 ;;
    --delay) need $# "$1"; [[ $2 =~ ^[0-9]{1,6}$ ]] || bad_opt "--delay: '$2' is not a number of ms"; DELAY=$2; shift 2 ;;
    --rate-limit) need $# "$1"; RATE_LIMIT=$2; shift 2 ;;
    --timeout) need $# "$1"; TIMEOUT=$2; shift 2 ;;
    --quick) EVENTS=4500; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) bad_opt "unknown option '$1'" ;;
    esac
done
[ $((EVENTS % 900)) = 0 ] || bad_opt "--events: $EVENTS is not a multiple of 900"
for b in "$HOOKQ" "$SINK" "$HQB"; do
    [ -x "$b" ] || die "$b: not found; cmake --build build -j2 (targets hookq, hq_sink, hq_bench)"
done
command -v redis-server >/dev/null || die "redis-server: not found"

K=1000         # endpoints: 0-899 healthy, 900-933 throttled, 934-966 failing, 967-999 hanging
HEALTHY=900
NOISY_EVENTS=$((EVENTS * K / HEALTHY)) # round-robin over all K: the healthy still get EVENTS
P=hookq
ulimit -n "$(ulimit -Hn)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hookq-noisy.XXXXXX")
PIDS=()
stop_pid() { # stop_pid PID: SIGTERM, up to 20 s, then SIGKILL
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
stop_all() { # stops every process a phase started (redis, PIDS[0], stays)
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 1; i--)); do stop_pid "${PIDS[$i]}"; done
    PIDS=("${PIDS[0]}")
}
val() { # val "k1=v1 k2=v2" KEY
    local pair
    for pair in $1; do [ "${pair%%=*}" = "$2" ] && { echo "${pair#*=}"; return 0; }; done
    echo 0
}

RPORT=$(val "$("$HQB" free-port)" port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no --dir "$TMP" \
    --logfile "$TMP/redis.log" --maxclients 4000 >/dev/null 2>&1 &
PIDS+=("$!")
URL=redis://127.0.0.1:$RPORT/0
rcli() { redis-cli -u "$URL" "$@"; }
for i in $(seq 100); do [ "$(rcli ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
[ "$(rcli ping 2>/dev/null)" = PONG ] || die "redis-server did not start (see $TMP/redis.log; --keep)"

# sinks DIR BASE: the four sinks on BASE..BASE+999; 1 when one cannot listen.
sinks() {
    local dir=$1 base=$2 name first n extra pid i
    for spec in "healthy 0 900 --delay $DELAY" "throttled 900 34 --delay $DELAY" \
        "failing 934 33 --fail" "hanging 967 33 --delay 3600000"; do
        read -r name first n extra <<<"$spec"
        # shellcheck disable=SC2086 # extra is a word list
        "$SINK" --port-base $((base + first)) --ports "$n" $extra --log "$dir/$name.log" \
            --status "$dir/$name.status" --ready "$dir/$name.ready" >"$dir/$name.out" 2>&1 &
        pid=$!
        PIDS+=("$pid")
        for i in $(seq 300); do
            [ -e "$dir/$name.ready" ] && break
            kill -0 "$pid" 2>/dev/null || return 1
            sleep 0.1
        done
        [ -e "$dir/$name.ready" ] || die "sink $name not ready in 30 s"
    done
}
stat() { val "$(head -n1 "$1" 2>/dev/null || true)" "$2"; } # stat STATUS_FILE KEY: a sink counter
requests() { stat "$1" requests; }
metric() { # metric PORT NAME: one value from the worker's /metrics (0 when absent)
    curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}

# phase NAME ROUND: one phase; prints its line and sets DPS.
phase() {
    local name=$1 round=$2 dir="$TMP/$1.$2" base tries=0 t0 mport wpid spid n_ev ids
    mkdir -p "$dir"
    rcli FLUSHDB >/dev/null
    while :; do # a random base below the ephemeral range; again when a port is taken
        base=$((10000 + RANDOM % 20000))
        sinks "$dir" "$base" && break
        stop_all
        rm -f "$dir"/*.ready
        tries=$((tries + 1))
        [ "$tries" -lt 5 ] || die "no free range of $K ports found in 5 tries"
    done
    HQ_BENCH_TENANTS=100 "$HQB" endpoints "$URL" "$P" "$K" "$base" \
        "http://127.0.0.1:{port}/hook/{i}" "$dir/ids.all" >/dev/null || die "creating the endpoints failed"
    sed -n '901,934p' "$dir/ids.all" | while read -r id; do
        "$HOOKQ" endpoint update "$id" --rate-limit "$RATE_LIMIT" --redis-url "$URL" --prefix "$P" \
            >/dev/null || die "rate limit of $id"
    done
    head -n "$HEALTHY" "$dir/ids.all" >"$dir/ids.healthy"
    if [ "$name" = healthy ]; then n_ev=$EVENTS ids=$dir/ids.healthy; else n_ev=$NOISY_EVENTS ids=$dir/ids.all; fi
    "$HQB" produce "$URL" "$P" "$n_ev" "$ids" >/dev/null || die "pre-filling the stream failed"
    mport=$(val "$("$HQB" free-port)" port)
    t0=$(date +%s%6N)
    HOOKQ_LOG_LEVEL=warn "$HOOKQ" worker --redis-url "$URL" --prefix "$P" --allow-private \
        --timeout "$TIMEOUT" --metrics "127.0.0.1:$mport" >"$dir/worker.log" 2>&1 &
    wpid=$!
    PIDS+=("$wpid")
    HOOKQ_LOG_LEVEL=warn "$HOOKQ" scheduler --redis-url "$URL" --prefix "$P" >"$dir/scheduler.log" 2>&1 &
    spid=$!
    PIDS+=("$spid")
    local i
    for ((i = 0; i < 6000; i++)); do
        [ "$(requests "$dir/healthy.status")" -ge "$EVENTS" ] && break
        kill -0 "$wpid" 2>/dev/null || die "the worker exited (see $dir/worker.log; --keep)"
        sleep 0.1
    done
    [ "$(requests "$dir/healthy.status")" -ge "$EVENTS" ] || die "$name: the healthy endpoints did not get $EVENTS in 600 s"
    local deferred opened
    deferred=$(metric "$mport" 'hookq_deliveries_total{outcome="deferred"}')
    opened=$(metric "$mport" hookq_endpoints_circuit_open)
    stop_all # the sinks write their logs at SIGTERM
    local last n secs
    read -r n last < <(awk '{ n++; if ($1 > m) m = $1 } END { printf "%d %.0f\n", n, m }' "$dir/healthy.log")
    secs=$(awk -v a="$t0" -v b="$last" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
    DPS=$(awk -v n="$EVENTS" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
    printf '%-8s round %d: healthy %d deliveries in %s s = %s/s; throttled %s, failing %s requests answered, hanging %s connections; deferred %s; circuits open %s\n' \
        "$name" "$round" "$n" "$secs" "$DPS" "$(requests "$dir/throttled.status")" \
        "$(requests "$dir/failing.status")" "$(stat "$dir/hanging.status" accepted)" "$deferred" "$opened"
}

echo "hookq noisy-neighbour benchmark: $(nproc) CPUs, $(redis-server --version | awk '{print $3}'), $K endpoints in 100 tenants (900 healthy answering in $DELAY ms, 34 throttled $RATE_LIMIT, 33 answering 500, 33 hanging past --timeout $TIMEOUT)"
echo "healthy phase: $EVENTS events to the healthy; noisy phase: $NOISY_EVENTS round-robin over all $K (the healthy get $EVENTS)"
RATIOS=()
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order="healthy noisy"; else order="noisy healthy"; fi
    for ph in $order; do
        phase "$ph" "$r"
        if [ "$ph" = healthy ]; then H=$DPS; else N=$DPS; fi
    done
    RATIOS+=("$(awk -v a="$N" -v b="$H" 'BEGIN { printf "%.3f", a / b }')")
    echo "round $r: noisy / healthy = ${RATIOS[-1]}"
done
MED=$(printf '%s\n' "${RATIOS[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
if awk -v m="$MED" 'BEGIN { exit !(m >= 0.8) }'; then verdict=met; else verdict=missed; fi
echo "median noisy / healthy throughput of the healthy endpoints: $MED (target >= 0.80: $verdict)"
