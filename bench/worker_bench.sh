#!/usr/bin/env bash
# worker_bench.sh: hookq's delivery benchmark. Starts its own
# redis-server and nginx sink on free 127.0.0.1 ports in a mktemp dir, measures
# the floor in the same run (Redis: XREADGROUP COUNT 100 + batched XACK via
# hq_bench; HTTP: wrk POSTing 1 KiB to the same nginx; CPU: libcurl alone,
# bench/curl_floor.c, through the worker's own binding), then runs ONE
# `hookq worker` against one endpoint and prints deliveries/s, the ratio to the
# floor, worker CPU per 1,000 deliveries, peak RSS and enqueue->receipt latency
# percentiles at a steady rate. A benchmark, not a test: it reports
# "target met"/"target missed" and exits 0 either way; it exits 1 when a phase
# cannot run (e.g. the worker is not built) and 2 for a bad option.
# Everything it starts is stopped on exit; it talks only to 127.0.0.1.
# docs/performance.md explains each number.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/worker_bench.sh [options]
  --events N       events in the throughput phase and the Redis floor (default 200000)
  --rate R         events/s in the latency phase (default 2000)
  --rate-secs S    length of the latency phase in seconds (default 10)
  --wrk-secs S     length of the wrk floor run in seconds (default 10)
  --floor-only     measure the floor only and exit 0
  --keep           keep the temp dir (logs, nginx.conf, access.log) for inspection
env: HQ_BUILD_DIR (default <repo>/build) is where bin/hookq and lib/libhq_common.a are.
     HQ_WORKER_WRAP, when set, is a command the worker runs under, for instruction counts:
       HQ_WORKER_WRAP="valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out" \
         bench/worker_bench.sh --events 20000 --rate 200 --rate-secs 2 --wrk-secs 2
EOF
}

ME=worker_bench.sh
die() { echo "$ME: $*" >&2; exit 1; }
bad_opt() { echo "$ME: $*" >&2; usage >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${HQ_BUILD_DIR:-$ROOT/build}
HOOKQ=$BUILD/bin/hookq
PREFIX=hookq
EVENTS=200000
RATE=2000
RATE_SECS=10
WRK_SECS=10
FLOOR_ONLY=0
KEEP=0

# The delivery targets (docs/performance.md).
T_RATE=30000  # deliveries/s, end to end
T_CPU=0.025   # worker CPU-seconds per 1,000 deliveries
T_P99=5       # ms, enqueue -> receipt at a steady 2,000 events/s
T_RSS=24      # MiB, worker peak RSS

posint() { # posint NAME VALUE: a positive decimal integer or exit 2
    [[ $2 =~ ^[1-9][0-9]{0,8}$ ]] || bad_opt "$1: '$2' is not a positive integer"
}
while [ $# -gt 0 ]; do
    case "$1" in
    --events) [ $# -ge 2 ] || bad_opt "--events: missing value"; posint --events "$2"; EVENTS=$2; shift 2 ;;
    --rate) [ $# -ge 2 ] || bad_opt "--rate: missing value"; posint --rate "$2"; RATE=$2; shift 2 ;;
    --rate-secs) [ $# -ge 2 ] || bad_opt "--rate-secs: missing value"; posint --rate-secs "$2"; RATE_SECS=$2; shift 2 ;;
    --wrk-secs) [ $# -ge 2 ] || bad_opt "--wrk-secs: missing value"; posint --wrk-secs "$2"; WRK_SECS=$2; shift 2 ;;
    --floor-only) FLOOR_ONLY=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) bad_opt "unknown option '$1'" ;;
    esac
done

for tool in redis-server redis-cli nginx wrk cc pkg-config awk sed; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool: not found (./run deps installs redis-server, nginx-light, wrk)"
done
NGINX=$(command -v nginx)

# ---- Processes and cleanup ---------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hookq-bench.XXXXXX")
PIDS=() # every process this script started, stopped in reverse order on exit

stop_pid() { # stop_pid PID SIGNAL: signal, wait up to 10 s, then SIGKILL
    local pid=$1 sig=$2 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[$i]}" TERM
    done
    if [ "$KEEP" = 1 ]; then echo "$ME: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kv() { # kv "k1=v1 k2=v2" KEY: prints the value of KEY
    local pair
    for pair in $1; do
        [ "${pair%%=*}" = "$2" ] && { echo "${pair#*=}"; return 0; }
    done
    die "internal: no '$2' in '$1'"
}
calc() { awk "BEGIN { printf $1 }"; }
verdict() { # verdict EXPR: "target met" when the awk expression is true
    if awk "BEGIN { exit !($1) }"; then echo "target met"; else echo "target missed"; fi
}

# ---- hq_bench: the built target, or a direct cc line against hq_common --------
HQB=$BUILD/bin/hq_bench
if [ ! -x "$HQB" ] || [ "$ROOT/bench/hq_bench.c" -nt "$HQB" ]; then
    [ -f "$BUILD/lib/libhq_common.a" ] || die "$BUILD/lib/libhq_common.a: not found; run ./run build first"
    HQB=$TMP/hq_bench
    # shellcheck disable=SC2046 # pkg-config output is a word list
    cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wno-format-nonliteral -Werror -I"$ROOT" -I"$ROOT/include" \
        "$ROOT/bench/hq_bench.c" "$BUILD/lib/libhq_common.a" \
        $(pkg-config --libs hiredis libuv libcurl msgpack libcrypto) -o "$HQB" ||
        die "building hq_bench failed"
fi
hqb() { "$HQB" "$@"; }

# ---- redis-server --------------------------------------------------------------
RPORT=$(kv "$(hqb free-port)" port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no --dir "$TMP" \
    --logfile "$TMP/redis.log" --protected-mode yes >/dev/null 2>&1 &
PIDS+=("$!")
URL=redis://127.0.0.1:$RPORT/0
for i in $(seq 100); do
    [ "$(redis-cli -h 127.0.0.1 -p "$RPORT" ping 2>/dev/null)" = PONG ] && break
    [ "$i" = 100 ] && die "redis-server on 127.0.0.1:$RPORT did not answer PING in 10 s (see $TMP/redis.log; --keep)"
    sleep 0.1
done

# ---- nginx sink ------------------------------------------------------------------
NPORT=$(kv "$(hqb free-port)" port)
USER_LINE=""
[ "$(id -u)" = 0 ] && USER_LINE="user root;" # workers as root only reach the 0700 temp dir
sed -e "s|@DIR@|$TMP|g" -e "s|@PORT@|$NPORT|g" -e "s|@USER@|$USER_LINE|g" \
    "$ROOT/bench/nginx.conf.in" >"$TMP/nginx.conf"
"$NGINX" -p "$TMP/" -c "$TMP/nginx.conf" -e "$TMP/error.log" >/dev/null 2>&1 &
NPID=$!
PIDS+=("$NPID")
sink_ok() { # one HTTP request over bash's /dev/tcp: no curl needed
    local status=""
    # Braces: a bare `exec ... 2>/dev/null` would silence this shell's stderr for good.
    { exec 3<>"/dev/tcp/127.0.0.1/$NPORT"; } 2>/dev/null || return 1
    printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    read -r -t 2 _ status _ <&3 || true
    exec 3<&-
    [ "$status" = 204 ]
}
for i in $(seq 100); do
    sink_ok && break
    kill -0 "$NPID" 2>/dev/null || die "nginx exited: $(tail -n 3 "$TMP/error.log" 2>/dev/null)"
    [ "$i" = 100 ] && die "nginx on 127.0.0.1:$NPORT did not answer 204 in 10 s (see $TMP/error.log; --keep)"
    sleep 0.1
done

echo "hookq delivery benchmark: $(nproc) CPUs, $(redis-server --version | awk '{print $3}'), nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'), 1 KiB JSON payloads"
echo "redis 127.0.0.1:$RPORT, nginx 127.0.0.1:$NPORT, temp $TMP"

# ---- Floor ---------------------------------------------------------------------
echo "floor: redis XREADGROUP COUNT 100 + XACK over $EVENTS entries ..."
out=$(hqb floor-redis "$URL" "$EVENTS") || die "floor-redis failed"
F_REDIS=$(kv "$out" rate)

cat >"$TMP/post.lua" <<'EOF'
-- wrk script: POST a 1 KiB JSON body, as the worker does.
local head = '{"type":"bench.event","seq":0,"data":"'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = head .. string.rep("x", 1024 - #head - 2) .. '"}'
EOF
echo "floor: wrk -t2 -c100 -d${WRK_SECS}s POST 1 KiB to nginx ..."
wrk -t2 -c100 -d"${WRK_SECS}s" -s "$TMP/post.lua" "http://127.0.0.1:$NPORT/" >"$TMP/wrk.txt" 2>&1 ||
    die "wrk failed: $(tail -n 3 "$TMP/wrk.txt")"
F_HTTP=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$TMP/wrk.txt")
[ -n "$F_HTTP" ] || die "wrk: no Requests/sec in its output: $(tail -n 3 "$TMP/wrk.txt")"
if grep -q -e "Socket errors" -e "Non-2xx" "$TMP/wrk.txt"; then
    echo "warning: wrk saw errors: $(grep -e "Socket errors" -e "Non-2xx" "$TMP/wrk.txt" | tr -s ' ')" >&2
fi
F_COMB=$(calc "\"%.0f\", 1 / (1 / $F_REDIS + 1 / $F_HTTP)")
FLOOR_LINE="floor: redis ${F_REDIS}/s, nginx ${F_HTTP}/s, combined ${F_COMB}/s"
echo "$FLOOR_LINE"

# The CPU floor: libcurl alone, through the worker's own libuv binding with its
# options and headers, 32 connections (the per-endpoint default), no Redis and
# no signing (bench/curl_floor.c). What no libcurl-based worker can spend less
# than per delivery on this machine.
CF=$BUILD/bin/curl_floor
CF_N=$((EVENTS < 100000 ? EVENTS : 100000))
F_CURL_US=""
if [ -x "$CF" ]; then
    echo "floor: libcurl alone, $CF_N POSTs of 1 KiB, 32 at a time ..."
    out=$("$CF" "http://127.0.0.1:$NPORT/" "$CF_N" 32) || die "curl_floor failed: $out"
    F_CURL_US=$(kv "$out" cpu_us)
    CURL_LINE="floor: libcurl alone $(kv "$out" rate)/s at $F_CURL_US us CPU per request (the worker's binding, options and headers; no Redis, no signing)"
else
    CURL_LINE="floor: libcurl alone not measured ($CF is not built)"
fi
echo "$CURL_LINE"

if [ "$FLOOR_ONLY" = 1 ]; then
    echo
    echo "$FLOOR_LINE"
    echo "$CURL_LINE"
    exit 0
fi

# ---- Endpoint and pre-filled stream ----------------------------------------------------
EP_URL=http://127.0.0.1:$NPORT/
# The CLI's output includes the endpoint's new signing keys: only the id is kept.
EP_ID=""
ep_out="$HOOKQ: not found"
if [ -x "$HOOKQ" ] &&
    ep_out=$("$HOOKQ" endpoint add --redis-url "$URL" --name bench --url "$EP_URL" --allow-private 2>&1); then
    EP_ID=$(grep -o -m1 'ep_[A-Za-z0-9_-]*' <<<"$ep_out" | head -n1 || true)
fi
if [ -z "$EP_ID" ]; then
    why=$(head -n1 <<<"$ep_out" | grep -v -i whsec || true)
    echo "endpoint: hookq endpoint add unavailable (${why:-no id in its output}); creating it with hq_bench (hq_endpoint_create)"
    EP_ID=$(kv "$(hqb endpoint "$URL" "$PREFIX" "$EP_URL")" id) || die "creating the endpoint failed"
fi
unset ep_out
echo "endpoint: $EP_ID -> $EP_URL"

echo "throughput: pre-filling $PREFIX:events with $EVENTS events ..."
out=$(hqb produce "$URL" "$PREFIX" "$EVENTS") || die "pre-filling the stream failed"
echo "throughput: pre-filled in $(kv "$out" secs) s"

# ---- Worker: throughput phase ----------------------------------------------------------
[ -x "$HOOKQ" ] || die "$HOOKQ: not found; run ./run build (floor above is valid)"
help=$("$HOOKQ" worker --help 2>&1 || true)
if grep -q "not built yet" <<<"$help"; then
    die "hookq worker is not built yet ('$HOOKQ worker --help' says so); only the floor was measured: $FLOOR_LINE"
fi

# What Redis and the nginx worker spend per delivery in this phase (they share
# the 2 cores with the worker, so their cost bounds the throughput too).
rcli() { redis-cli -u "$URL" "$@"; }
redis_cpu() { rcli INFO cpu | awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.4f", s }'; }
redis_calls() { rcli INFO commandstats | tr -d '\r' | awk -F'[:=,]' -v c="cmdstat_$1" '$1 == c { print $3 }'; }
nginx_cpu() { local s=0 p; for p in $(pgrep -P "$NPID"); do s=$(calc "\"%.4f\", $s + $(kv "$(hqb proc "$p")" cpu_s)"); done; echo "$s"; }
rcli CONFIG RESETSTAT >/dev/null
R_CPU0=$(redis_cpu)
N_CPU0=$(nginx_cpu)
T0=$(date +%s%N)
# shellcheck disable=SC2086 # HQ_WORKER_WRAP is a command line, split on purpose
HOOKQ_LOG_LEVEL=warn ${HQ_WORKER_WRAP:-} "$HOOKQ" worker --redis-url "$URL" --allow-private >"$TMP/worker.log" 2>&1 &
WPID=$!
PIDS+=("$WPID")
CPU0=$(kv "$(hqb proc "$WPID" 2>/dev/null || echo cpu_s=0)" cpu_s)
TIMEOUT=$((120 + EVENTS / 1000))
if ! out=$(hqb wait-drain "$URL" "$PREFIX" "$WPID" "$TIMEOUT" "$T0"); then
    echo "worker log (last lines):" >&2
    tail -n 20 "$TMP/worker.log" >&2
    die "throughput phase failed (see above)"
fi
SECS=$(kv "$out" secs)
DEAD=$(kv "$out" dead)
RETRY=$(kv "$out" retry)
p=$(hqb proc "$WPID") || die "worker exited after the throughput phase"
CPU1=$(kv "$p" cpu_s)
W_RATE=$(calc "\"%.0f\", $EVENTS / $SECS")
W_RATIO=$(calc "\"%.2f\", $W_RATE / $F_COMB")
W_CPU=$(calc "\"%.4f\", ($CPU1 - $CPU0) / ($EVENTS / 1000)")
R_US=$(calc "\"%.1f\", ($(redis_cpu) - $R_CPU0) * 1e6 / $EVENTS")
N_US=$(calc "\"%.1f\", ($(nginx_cpu) - $N_CPU0) * 1e6 / $EVENTS")
W_US=$(calc "\"%.1f\", ($CPU1 - $CPU0) * 1e6 / $EVENTS")
R_READS=$(redis_calls xreadgroup); R_EVALS=$(redis_calls evalsha)
SIDE_LINE="cost per delivery: worker $W_US us, redis $R_US us, nginx $N_US us CPU; redis calls: ${R_READS:-0} XREADGROUP, ${R_EVALS:-0} EVALSHA for $EVENTS deliveries"
if [ -n "$F_CURL_US" ]; then
    SIDE_LINE="$SIDE_LINE; worker = libcurl floor $F_CURL_US us + $(calc "\"%.1f\", $W_US - $F_CURL_US") us"
fi
if [ "$DEAD" != 0 ] || [ "$RETRY" != 0 ]; then
    echo "warning: $RETRY deliveries waiting for retry and $DEAD dead-lettered: not every event was delivered" >&2
fi

# ---- Worker: latency phase ---------------------------------------------------------------
echo "latency: $RATE events/s for $RATE_SECS s ..."
out=$(hqb produce-rate "$URL" "$PREFIX" "$RATE" "$RATE_SECS") || die "produce-rate failed"
SENT=$(kv "$out" sent)
LATE=$(kv "$out" max_late_ms)
if awk "BEGIN { exit !($LATE > 10) }"; then
    echo "warning: the producer fell up to $LATE ms behind its schedule" >&2
fi
out=$(hqb wait-drain "$URL" "$PREFIX" "$WPID" 60 0) || die "latency phase did not drain"
p=$(hqb proc "$WPID") || die "worker exited after the latency phase"
HWM_KIB=$(kv "$p" hwm_kib)
RSS_MIB=$(calc "\"%.1f\", $HWM_KIB / 1024")

# Stop the worker, then nginx (SIGQUIT: graceful, flushes the buffered access log).
stop_pid "$WPID" TERM
stop_pid "$NPID" QUIT
out=$(hqb latency "$TMP/access.log") || die "reading the access log failed"
L_N=$(kv "$out" n)
T_COUNT=$(kv "$out" t_count)
[ "$T_COUNT" = "$EVENTS" ] || echo "warning: nginx logged $T_COUNT throughput-phase requests for $EVENTS events" >&2
[ "$L_N" = "$SENT" ] || echo "warning: nginx logged $L_N latency-phase requests for $SENT events" >&2
[ "$L_N" != 0 ] || die "no latency-phase requests in the access log"

echo
echo "$FLOOR_LINE"
echo "$CURL_LINE"
echo "worker: $EVENTS deliveries in $SECS s = ${W_RATE}/s ($W_RATIO of floor)   [>= ${T_RATE}/s: $(verdict "$W_RATE >= $T_RATE")]"
echo "cpu: $W_CPU s per 1k deliveries   [<= $T_CPU: $(verdict "$W_CPU <= $T_CPU")]; peak RSS $RSS_MIB MiB   [<= $T_RSS MiB: $(verdict "$RSS_MIB <= $T_RSS")]"
echo "$SIDE_LINE"
echo "latency @${RATE}/s: p50 $(kv "$out" p50) ms p90 $(kv "$out" p90) ms p99 $(kv "$out" p99) ms max $(kv "$out" max) ms   [p99 <= $T_P99 ms: $(verdict "$(kv "$out" p99) <= $T_P99")] (n=$L_N, +-0.5 ms: nginx \$msec)"
exit 0
