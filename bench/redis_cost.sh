#!/usr/bin/env bash
# redis_cost.sh: Redis CPU per delivery of one `hookq worker`, for several
# builds side by side. This machine's speed moves between runs, so a number
# from one build is only worth comparing with another build's number from the
# same run: the builds alternate, round after round, against one redis-server
# and one nginx (answering 204, no access log), and the summary gives each
# build's median and its ratio to the first build's.
#
# Per run: FLUSHDB, one endpoint, N pre-filled 1 KiB events, CONFIG RESETSTAT,
# then the build's worker until the group is drained; Redis CPU (INFO cpu,
# user+sys) over that phase / N, and INFO commandstats per command: calls and
# µs per delivery (a script's line includes the commands it calls, which have
# their own lines too).
#
# --warm W: each run first delivers W other events with the same build (not
# measured), so Redis holds the dedupe claims and attempt records of W earlier
# events, as a running deployment does (a flushed keyspace flatters whatever
# inserts into big tables).
#
#   bench/redis_cost.sh [--events N] [--rounds R] [--warm W] [--keep] BUILD_DIR...
#   e.g. old=$(mktemp -d); git archive HEAD~1 | tar -x -C "$old"
#        (cd "$old" && cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build --target hookq)
#        bench/redis_cost.sh --rounds 3 "$old/build" build
# HQ_PERF_DIR=DIR: also `perf record -g` redis-server over each worker phase
# into DIR/perf.<round>.<build>.data. Each BUILD_DIR needs bin/hookq; hq_bench is taken from HQ_BUILD_DIR (default
# build/). Exit 1 when a run fails, 2 for a bad option.
set -euo pipefail

ME=redis_cost.sh
die() { echo "$ME: $*" >&2; exit 1; }
usage() { sed -n '/^#   bench/,/^# build/p' "$0" | sed 's/^# \{0,1\}//' >&2; }
bad_opt() { echo "$ME: $*" >&2; usage; exit 2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HQB=${HQ_BUILD_DIR:-$ROOT/build}/bin/hq_bench
PREFIX=hookq
EVENTS=100000
ROUNDS=3
WARM=0
KEEP=0
BUILDS=()
posint() { [[ $2 =~ ^[1-9][0-9]{0,8}$ ]] || bad_opt "$1: '$2' is not a positive integer"; }
while [ $# -gt 0 ]; do
    case "$1" in
    --events) [ $# -ge 2 ] || bad_opt "--events: missing value"; posint --events "$2"; EVENTS=$2; shift 2 ;;
    --rounds) [ $# -ge 2 ] || bad_opt "--rounds: missing value"; posint --rounds "$2"; ROUNDS=$2; shift 2 ;;
    --warm) [ $# -ge 2 ] || bad_opt "--warm: missing value"; posint --warm "$2"; WARM=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) bad_opt "unknown option '$1'" ;;
    *) BUILDS+=("$(cd "$1" && pwd)") || bad_opt "$1: not a directory"; shift ;;
    esac
done
[ ${#BUILDS[@]} -ge 1 ] || bad_opt "no BUILD_DIR"
for b in "${BUILDS[@]}"; do [ -x "$b/bin/hookq" ] || die "$b/bin/hookq: not found"; done
[ -x "$HQB" ] || die "$HQB: not found (cmake --build build --target hq_bench)"
for tool in redis-server redis-cli nginx awk sort; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool: not found (./run deps)"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hookq-rcost.XXXXXX")
PIDS=()
stop_pid() {
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
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}" TERM; done
    if [ "$KEEP" = 1 ]; then echo "$ME: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kv() {
    local pair
    for pair in $1; do
        [ "${pair%%=*}" = "$2" ] && { echo "${pair#*=}"; return 0; }
    done
    die "internal: no '$2' in '$1'"
}
calc() { awk "BEGIN { printf $1 }"; }
hqb() { "$HQB" "$@"; }

RPORT=$(kv "$(hqb free-port)" port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no --dir "$TMP" \
    --logfile "$TMP/redis.log" --protected-mode yes >/dev/null 2>&1 &
RPID=$!
PIDS+=("$RPID")
URL=redis://127.0.0.1:$RPORT/0
rcli() { redis-cli -h 127.0.0.1 -p "$RPORT" "$@"; }
for i in $(seq 100); do
    [ "$(rcli ping 2>/dev/null)" = PONG ] && break
    [ "$i" = 100 ] && die "redis-server did not answer PING in 10 s"
    sleep 0.1
done

NPORT=$(kv "$(hqb free-port)" port)
USER_LINE=""
[ "$(id -u)" = 0 ] && USER_LINE="user root;"
# No access log: this script reads only Redis.
sed -e "s|@DIR@|$TMP|g" -e "s|@PORT@|$NPORT|g" -e "s|@USER@|$USER_LINE|g" \
    -e "s|^\( *access_log\) .*|\1 off;|" "$ROOT/bench/nginx.conf.in" >"$TMP/nginx.conf"
nginx -p "$TMP/" -c "$TMP/nginx.conf" -e "$TMP/error.log" >/dev/null 2>&1 &
NPID=$!
PIDS+=("$NPID")
for i in $(seq 100); do
    status=""
    if { exec 3<>"/dev/tcp/127.0.0.1/$NPORT"; } 2>/dev/null; then
        printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
        read -r -t 2 _ status _ <&3 || true
        exec 3<&-
    fi
    [ "$status" = 204 ] && break
    [ "$i" = 100 ] && die "nginx on 127.0.0.1:$NPORT did not answer 204 in 10 s"
    sleep 0.1
done

redis_cpu() { rcli INFO cpu | awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.4f", s }'; }

echo "redis_cost: $(nproc) CPUs, redis $(redis-server --version | awk '{print $3}'), $EVENTS events a run, $ROUNDS rounds, $WARM warm-up events"
for b in "${!BUILDS[@]}"; do echo "build $b: ${BUILDS[$b]}"; done
: >"$TMP/runs.tsv"
for ((r = 1; r <= ROUNDS; r++)); do
    # Alternate the order each round so neither build always runs first.
    order=("${!BUILDS[@]}")
    if ((r % 2 == 0)); then
        order=()
        for ((b = ${#BUILDS[@]} - 1; b >= 0; b--)); do order+=("$b"); done
    fi
    for b in "${order[@]}"; do
        rcli FLUSHDB SYNC >/dev/null
        hqb endpoint "$URL" "$PREFIX" "http://127.0.0.1:$NPORT/" >/dev/null || die "creating the endpoint failed"
        if [ "$WARM" -gt 0 ]; then
            hqb produce "$URL" "$PREFIX" "$WARM" >/dev/null || die "pre-filling the warm-up failed"
            HOOKQ_LOG_LEVEL=warn "${BUILDS[$b]}/bin/hookq" worker --redis-url "$URL" --allow-private \
                >"$TMP/warm.$r.$b.log" 2>&1 &
            wpid=$!
            PIDS+=("$wpid")
            hqb wait-drain "$URL" "$PREFIX" "$wpid" $((120 + WARM / 1000)) "$(date +%s%N)" >/dev/null ||
                { tail -n 20 "$TMP/warm.$r.$b.log" >&2; die "build $b did not drain its warm-up"; }
            stop_pid "$wpid" TERM
        fi
        HQ_BENCH_ID_FROM=$WARM hqb produce "$URL" "$PREFIX" "$EVENTS" >/dev/null ||
            die "pre-filling the stream failed"
        rcli CONFIG RESETSTAT >/dev/null
        c0=$(redis_cpu)
        t0=$(date +%s%N)
        HOOKQ_LOG_LEVEL=warn "${BUILDS[$b]}/bin/hookq" worker --redis-url "$URL" --allow-private \
            >"$TMP/worker.$r.$b.log" 2>&1 &
        wpid=$!
        PIDS+=("$wpid")
        ppid=""
        if [ -n "${HQ_PERF_DIR:-}" ]; then
            perf record -q -g -p "$RPID" -o "$HQ_PERF_DIR/perf.$r.$b.data" >/dev/null 2>&1 &
            ppid=$!
        fi
        out=$(hqb wait-drain "$URL" "$PREFIX" "$wpid" $((120 + EVENTS / 1000)) "$t0") ||
            { tail -n 20 "$TMP/worker.$r.$b.log" >&2; die "build $b did not drain"; }
        c1=$(redis_cpu)
        [ -z "$ppid" ] || { kill -INT "$ppid"; wait "$ppid" || true; }
        [ "$(kv "$out" dead)" = 0 ] && [ "$(kv "$out" retry)" = 0 ] ||
            echo "warning: build $b round $r: $out" >&2
        stats=$(rcli INFO commandstats | tr -d '\r')
        stop_pid "$wpid" TERM
        us=$(calc "\"%.2f\", ($c1 - $c0) * 1e6 / $EVENTS")
        printf '%s\t%s\t%s\n' "$b" "$r" "$us" >>"$TMP/runs.tsv"
        echo
        echo "round $r build $b: redis $us us per delivery, drained in $(kv "$out" secs) s"
        # cmdstat_rpush:calls=N,usec=U,usec_per_call=X,... -> per delivery
        awk -F'[:=,]' -v n="$EVENTS" '/^cmdstat_/ {
                sub("cmdstat_", "", $1)
                printf "  %-12s %9d calls %6.3f per delivery %7.2f us/call %6.2f us per delivery\n",
                    $1, $3, $3 / n, $7, $5 / n
            }' <<<"$stats" | sort -k7 -n -r
    done
done

echo
echo "summary (redis CPU us per delivery, median of $ROUNDS; ratio to build 0):"
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
m0=$(awk -F'\t' '$1 == 0 { print $3 }' "$TMP/runs.tsv" | median)
for b in "${!BUILDS[@]}"; do
    runs=$(awk -F'\t' -v b="$b" '$1 == b { printf "%s ", $3 }' "$TMP/runs.tsv")
    m=$(awk -F'\t' -v b="$b" '$1 == b { print $3 }' "$TMP/runs.tsv" | median)
    # The ratio to build 0 in the same round, then the median: robust to the
    # machine's speed drifting between rounds.
    paired=$(awk -F'\t' -v b="$b" '$1 == 0 { z[$2] = $3 } $1 == b { r[$2] = $3 }
        END { for (k in r) print r[k] / z[k] }' "$TMP/runs.tsv" | median)
    echo "build $b: median $m us (runs: ${runs% }), ratio $(calc "\"%.2f\", $m / $m0"), same-round ratio median $(calc "\"%.2f\", $paired")  ${BUILDS[$b]}"
done
