#!/usr/bin/env bash
# ordered_batch.sh: an ordered endpoint with and without --batch
# (docs/batching.md "On an ordered endpoint"). One worker (its defaults), one
# redis-server, one sink (bench/sink.c) answering at once; the stream is
# pre-filled with N 1 KiB events over KEYS keys, then the worker started and
# timed until the lines are gone (every event delivered or dead: lines are
# removed only then), polled every 20 ms. Phases "ordered" (--ordered) and
# "ordbat" (--ordered --batch max=MAX), alternated ROUNDS times in one run.
# Prints deliveries/s and CPU per event of the worker and of redis-server
# (utime + stime from /proc). A benchmark, not a test. Talks only to 127.0.0.1.
# env: HQ_BUILD_DIR (default <repo>/build), N (20000), KEYS (100), MAX (100), ROUNDS (2).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${HQ_BUILD_DIR:-$ROOT/build}
HOOKQ=$BUILD/bin/hookq SINK=$BUILD/bin/hq_sink HQB=$BUILD/bin/hq_bench
N=${N:-20000} KEYS=${KEYS:-100} MAX=${MAX:-100} ROUNDS=${ROUNDS:-2}
TMP=$(mktemp -d /tmp/obb.XXXXXX)
val() { local pair; for pair in $1; do [ "${pair%%=*}" = "$2" ] && { echo "${pair#*=}"; return 0; }; done; echo 0; }
RPORT=$(val "$("$HQB" free-port)" port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no --dir "$TMP" --logfile "$TMP/redis.log" >/dev/null 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null; rm -rf $TMP' EXIT
URL=redis://127.0.0.1:$RPORT/0
rcli() { redis-cli -u "$URL" "$@"; }
for i in $(seq 100); do [ "$(rcli ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
fill() {
    awk -v n="$1" -v k="$2" 'BEGIN {
        pl = "{\"d\":\""; for (i = 0; i < 1000; i++) pl = pl "x"; pl = pl "\"}"
        for (i = 0; i < n; i++) {
            id = "e" i; key = "k" (i % k); printf "*11\r\n"
            printf "$4\r\nXADD\r\n$12\r\nhookq:events\r\n$1\r\n*\r\n$4\r\ntype\r\n$5\r\nb.ord\r\n"
            printf "$7\r\npayload\r\n$%d\r\n%s\r\n$2\r\nid\r\n$%d\r\n%s\r\n", length(pl), pl, length(id), id
            printf "$3\r\nkey\r\n$%d\r\n%s\r\n", length(key), key
        }
    }' | rcli --pipe >/dev/null
}
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
phase() {
    local name=$1 flags=$2 port spid wpid t0 t1 r0 r1 w1
    rcli FLUSHDB >/dev/null
    port=$(val "$("$HQB" free-port)" port)
    "$SINK" --port-base "$port" --ports 1 --delay 0 --log "$TMP/sink.log" --status "$TMP/sink.status" --ready "$TMP/sink.ready.$name" >/dev/null 2>&1 &
    spid=$!
    for i in $(seq 300); do [ -e "$TMP/sink.ready.$name" ] && break; sleep 0.1; done
    "$HOOKQ" endpoint add --name "$name" --url "http://127.0.0.1:$port/hook" $flags --redis-url "$URL" --allow-private >/dev/null
    fill "$N" "$KEYS"
    r0=$(cpu $RPID)
    t0=$(date +%s%6N)
    HOOKQ_LOG_LEVEL=warn "$HOOKQ" worker --redis-url "$URL" --allow-private >"$TMP/worker.log" 2>&1 &
    wpid=$!
    sleep 0.2
    for ((i = 0; i < 6000; i++)); do
        [ "$(rcli XLEN hookq:events)" = 0 ] && [ "$(rcli EXISTS hookq:lines)" = 0 ] && break
        sleep 0.02
    done
    t1=$(date +%s%6N)
    w1=$(cpu $wpid); r1=$(cpu $RPID)
    sleep 0.5 # the sink writes its status file every so often
    local reqs; reqs=$(val "$(head -n1 "$TMP/sink.status" 2>/dev/null || true)" requests)
    kill $wpid; wait $wpid 2>/dev/null || true
    kill $spid; wait $spid 2>/dev/null || true
    awk -v n="$N" -v a="$t0" -v b="$t1" -v w="$w1" -v r0="$r0" -v r1="$r1" -v hz="$(getconf CLK_TCK)" -v name="$name" -v reqs="$reqs" 'BEGIN {
        s = (b - a) / 1e6; printf "%-8s %d events in %.2f s = %6.0f deliveries/s (%s requests; CPU per event: worker %.1f us, redis %.1f us)\n",
        name, n, s, n / s, reqs, w / hz / n * 1e6, (r1 - r0) / hz / n * 1e6 }'
}
for ((round = 0; round < ROUNDS; round++)); do
    phase ordered "--ordered"
    phase ordbat "--ordered --batch max=$MAX"
done
