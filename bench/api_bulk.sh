#!/usr/bin/env bash
# api_bulk.sh: `hookq api` over large sets (bench/README.md): lists N endpoints
# page by page (GET /v1/endpoints?limit=500 following the iterator) and
# replays N dead letters of one endpoint by filter (POST
# /v1/dead-letters/replay, slice after slice), timing each and reading the
# api process's peak RSS (VmHWM) before and after, so "bounded memory" is a
# number. A private redis-server; the endpoints are written by hq_bench, the
# dead letters by one EVAL.
#
#   bench/api_bulk.sh [--endpoints N] [--dead N]     (default 100000 each)
# Needs build/bin/hookq and build/bin/hq_bench, redis-server, curl, python3.
set -euo pipefail

ME=api_bulk.sh
die() { echo "$ME: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${HQ_BUILD_DIR:-$ROOT/build}/bin
NEP=100000 NDEAD=100000
while [ $# -gt 0 ]; do
  case $1 in
    --endpoints) NEP=$2; shift 2 ;;
    --dead) NDEAD=$2; shift 2 ;;
    *) die "unknown option $1 (--endpoints N --dead N)" ;;
  esac
done
[ -x "$BIN/hookq" ] && [ -x "$BIN/hq_bench" ] || die "build/bin/hookq or hq_bench is missing"

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

t0=$(date +%s.%N)
# hq_bench makes at most 65,534 at once (it numbers ports): in chunks.
left=$NEP k=0
while [ "$left" -gt 0 ]; do
  c=$(( left > 50000 ? 50000 : left ))
  "$BIN/hq_bench" endpoints "$URL" hookq "$c" 1 "http://127.0.0.1:9/e$k/{i}" "$DIR/ids$k" >/dev/null
  left=$(( left - c )) k=$(( k + 1 ))
done
cat "$DIR"/ids[0-9]* >"$DIR/ids"
EP=$(head -n 1 "$DIR/ids")
redis-cli -p "$RPORT" EVAL "for i = 1, tonumber(ARGV[1]) do redis.call('XADD', 'hookq:dead', '*', 'event_id', 'evt_bulk_' .. i, 'type', 'bulk.test', 'endpoint_id', ARGV[2], 'url', 'http://127.0.0.1:9/', 'reason', 'exhausted', 'payload', '{\"n\":' .. i .. '}') end return 1" 0 "$NDEAD" "$EP" >/dev/null
echo "setup: $NEP endpoints, $NDEAD dead letters of $EP in $(python3 -c "print(round($(date +%s.%N)-$t0,1))") s"
KEY=$("$BIN/hookq" api-key create --name bulk --scope write --redis-url "$URL" | sed -n 's/^key: //p')
HOOKQ_ALLOW_PRIVATE=1 "$BIN/hookq" api --listen "127.0.0.1:$APORT" --redis-url "$URL" \
  --shutdown-delay 0 --log-level warn 2>"$DIR/api.log" &
APID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$APORT/healthz" >/dev/null && break; sleep 0.05; done
hwm() { awk '/VmHWM/ {print $2}' "/proc/$APID/status"; }
echo "api VmHWM at start: $(hwm) KiB"

python3 - "$APORT" "$KEY" "$NEP" <<'PY'
import json, sys, time, urllib.request
port, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def call(method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + key,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)
t = time.time(); seen = set(); pages = 0; it = None
while True:
    q = "/v1/endpoints?limit=500" + (f"&iterator={urllib.parse.quote(it)}" if it else "")
    j = call("GET", q); pages += 1
    for e in j["data"]:
        seen.add(e["id"])
    if j["done"]:
        break
    it = j["iterator"]
dt = time.time() - t
print(f"list: {len(seen)} endpoints (of {n}) in {pages} pages, {dt:.1f} s ({len(seen)/dt:,.0f}/s)")
if len(seen) != n:
    sys.exit("list: endpoints missing or repeated")
PY
echo "api VmHWM after listing: $(hwm) KiB"

python3 - "$APORT" "$KEY" "$EP" "$NDEAD" "$RPORT" <<'PY'
import json, sys, time, urllib.request, subprocess
port, key, ep, n, rport = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
def call(body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/dead-letters/replay", method="POST",
                                 data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + key,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.load(r)
t = time.time(); done = 0; calls = 0; it = None
while True:
    body = {"filter": {"endpoint": ep}}
    if it:
        body["iterator"] = it
    j = call(body); calls += 1
    done += j["done_count"]
    if j["done"]:
        break
    it = j["iterator"]
dt = time.time() - t
xlen = int(subprocess.check_output(["redis-cli", "-p", rport, "XLEN", "hookq:events"]))
print(f"replay: {done} dead letters (of {n}) in {calls} calls, {dt:.1f} s ({done/dt:,.0f}/s); events stream now {xlen}")
if done != n or xlen != n:
    sys.exit("replay: not every dead letter was replayed")
PY
echo "api VmHWM after replay: $(hwm) KiB"
