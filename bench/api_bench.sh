#!/usr/bin/env bash
# api_bench.sh: `hookq api` latency and memory for GET /v1/endpoints/{id}
# (bench/README.md). A private redis-server, one endpoint, a read key, then
# `hookq api --threads T` and wrk on loopback:
#   1. paced: C connections, each waiting DELAY ms between requests (wrk's
#      delay()), about RATE requests/s in all; the headline p99 (valid only
#      when the achieved rate is near RATE: printed beside it);
#   2. ceiling: wrk -t2 -c32 as fast as it goes (throughput, p99 under saturation).
# RSS: VmHWM of the api process after both phases.
#
#   bench/api_bench.sh [--threads T] [--duration S] [--rate R]
# Needs build/bin/hookq, redis-server, wrk. Exit 1 when a step fails.
set -euo pipefail

ME=api_bench.sh
die() { echo "$ME: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HOOKQ=${HQ_BUILD_DIR:-$ROOT/build}/bin/hookq
THREADS=2 DURATION=20 RATE=2000
while [ $# -gt 0 ]; do
  case $1 in
    --threads) THREADS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    *) die "unknown option $1 (--threads T --duration S --rate R)" ;;
  esac
done
command -v wrk >/dev/null || die "wrk is missing (./run deps installs it)"
[ -x "$HOOKQ" ] || die "$HOOKQ is missing (cmake --build build)"

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
DIR=$(mktemp -d)
RPORT=$(free_port) APORT=$(free_port)
RPID= APID=
cleanup() {
  [ -n "$APID" ] && kill "$APID" 2>/dev/null || true
  [ -n "$RPID" ] && kill "$RPID" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
redis-server --port "$RPORT" --save "" --appendonly no --dir "$DIR" >"$DIR/redis.log" 2>&1 &
RPID=$!
URL=redis://127.0.0.1:$RPORT/0
for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
ID=$("$HOOKQ" endpoint add --name bench --url https://example.com/hook --events 'invoice.*' \
      --header 'Authorization: Bearer t' --redis-url "$URL" | sed -n 's/^id: //p')
KEY=$("$HOOKQ" api-key create --name bench --scope read --redis-url "$URL" | sed -n 's/^key: //p')
[ -n "$ID" ] && [ -n "$KEY" ] || die "setup failed"
"$HOOKQ" api --listen "127.0.0.1:$APORT" --threads "$THREADS" --redis-url "$URL" \
  --shutdown-delay 0 --log-level warn 2>"$DIR/api.log" &
APID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$APORT/healthz" >/dev/null && break; sleep 0.05; done
curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$APORT/v1/endpoints/$ID" >/dev/null \
  || die "GET /v1/endpoints/$ID failed"

# 5 ms between requests per connection, and enough connections that with
# the answer's own time and wrk's timer granularity (~6 ms a cycle, measured) about
# RATE/s arrive.
DELAY=5
CONNS=$(( (RATE * 6 + 999) / 1000 ))
cat >"$DIR/paced.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $KEY"
function delay() return $DELAY end
LUA
cat >"$DIR/ceiling.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $KEY"
LUA
TARGET="http://127.0.0.1:$APORT/v1/endpoints/$ID"
echo "== paced: $CONNS connections, ${DELAY} ms between requests each (~$RATE/s), ${DURATION}s, --threads $THREADS"
wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$DIR/paced.lua" "$TARGET" | tee "$DIR/paced.txt"
echo "== ceiling: -t2 -c32, ${DURATION}s"
wrk -t2 -c32 -d"${DURATION}s" --latency -s "$DIR/ceiling.lua" "$TARGET" | tee "$DIR/ceiling.txt"
RSS=$(awk '/VmHWM/ {print $2}' "/proc/$APID/status")
p99() { awk '$1 == "99%" {print $2}' "$1"; }
rate() { awk '/Requests\/sec/ {print $2}' "$1"; }
echo "== summary"
echo "paced:   $(rate "$DIR/paced.txt") req/s achieved, p99 $(p99 "$DIR/paced.txt")"
echo "ceiling: $(rate "$DIR/ceiling.txt") req/s, p99 $(p99 "$DIR/ceiling.txt")"
echo "api VmHWM: $((RSS / 1024)) MiB ($RSS kB)"
grep -q ' 5[0-9][0-9] ' "$DIR/api.log" && die "the api logged 5xx answers" || true
