#!/bin/sh
# Scheduler throughput: N retries all due, moved by `hookq scheduler` onto the
# event stream; reports moves/s. A private redis-server on a Unix socket in a
# temporary directory (nothing else is touched); the retry entries are the
# contract's msgpack maps (docs/internals/redis-layout.md).
#
#   bench/sched_bench.sh [BUILD_DIR] [N] [BATCH] [SCHEDULERS]
#   defaults:  build     1000000 1000  1
set -eu
BUILD=${1:-build}
N=${2:-1000000}
BATCH=${3:-1000}
SCHEDS=${4:-1}
HOOKQ="$BUILD/bin/hookq"
[ -x "$HOOKQ" ] || { echo "sched_bench: $HOOKQ not found (build first)" >&2; exit 2; }

DIR=$(mktemp -d /tmp/hq_sched_bench.XXXXXX)
SOCK="$DIR/redis.sock"
redis-server --port 0 --unixsocket "$SOCK" --save "" --appendonly no --dir "$DIR" \
    --daemonize no >"$DIR/redis.log" 2>&1 &
RPID=$!
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    kill "$RPID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM
R="redis-cli -s $SOCK"
i=0
until $R PING >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 200 ] || { echo "sched_bench: redis did not start" >&2; exit 1; }
    sleep 0.05
done

$R HSET hookq:ep:ep_a enabled 1 url https://example.test/h name bench >/dev/null
# Fill in chunks so no single script blocks Redis for long.
FILL='local from, to = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = from, to do
  local m = "ep_a/ev" .. i .. "/1"
  redis.call("ZADD", KEYS[1], 1, m)
  redis.call("HSET", KEYS[2], m, cmsgpack.pack({type = "invoice.paid",
    payload = "{\"id\":" .. i .. ",\"amount\":1000}", id = "ev" .. i, endpoint = "ep_a",
    attempt = 1, first_ms = 1700000000000, last_ms = 1700000060000, last_status = 503,
    last_error = "http_status", url = "https://example.test/h"}))
end
return 1'
from=1
while [ $from -le "$N" ]; do
    to=$((from + 49999)); [ $to -le "$N" ] || to=$N
    $R EVAL "$FILL" 2 hookq:retry hookq:retry:data $from $to >/dev/null
    from=$((to + 1))
done
echo "sched_bench: $($R ZCARD hookq:retry) retries due; $SCHEDS scheduler(s), batch $BATCH"

start=$(date +%s%N)
s=0
while [ $s -lt "$SCHEDS" ]; do
    "$HOOKQ" scheduler --redis-url "unix://$SOCK" --batch "$BATCH" --log-level warn \
        2>>"$DIR/sched.log" &
    PIDS="$PIDS $!"
    s=$((s + 1))
done
while [ "$($R ZCARD hookq:retry)" -gt 0 ]; do sleep 0.02; done
end=$(date +%s%N)
moved=$($R XLEN hookq:events)
ms=$(( (end - start) / 1000000 ))
[ "$moved" -eq "$N" ] || { echo "sched_bench: moved $moved of $N" >&2; exit 1; }
echo "sched_bench: moved $moved in ${ms} ms = $(( moved * 1000 / (ms > 0 ? ms : 1) )) moves/s"
