#!/usr/bin/env bash
# recover_rss.sh: memory and time of `hookq recover` over a large window. A
# private redis-server gets one endpoint and N dead letters of it (1 KiB
# payloads) and, with --all, N retained deliveries too; then `hookq recover
# --endpoint E --since 1d [--all]` runs under /usr/bin/time. Its peak RSS must
# not grow with N (paged walk): run it at two sizes and compare.
#
#   bench/recover_rss.sh [--events N] [--all] [BUILD_DIR]     (default 100000, build/)
#
# Prints: events re-sent, seconds, peak RSS in KiB, and the events stream's
# length afterwards (= re-sent). Exit 1 when a step fails, 2 for a bad option.
set -euo pipefail

ME=recover_rss.sh
die() { echo "$ME: $*" >&2; exit 1; }
bad_opt() { echo "$ME: $*" >&2; sed -n '/^#   bench/p' "$0" | sed 's/^# *//' >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
EVENTS=100000
ALL=0
BUILD=$ROOT/build
while [ $# -gt 0 ]; do
    case "$1" in
    --events) [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]{0,7}$ ]] || bad_opt "--events: needs a positive integer"
        EVENTS=$2; shift 2 ;;
    --all) ALL=1; shift ;;
    -h | --help) sed -n '/^#   bench/p' "$0" | sed 's/^# *//'; exit 0 ;;
    -*) bad_opt "unknown option '$1'" ;;
    *) BUILD=$(cd "$1" && pwd) || bad_opt "$1: not a directory"; shift ;;
    esac
done
HQ=$BUILD/bin/hookq
HQB=$BUILD/bin/hq_bench
[ -x "$HQ" ] || die "$HQ: not found"
[ -x "$HQB" ] || die "$HQB: not found (cmake --build build --target hq_bench)"
for tool in redis-server redis-cli /usr/bin/time; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool: not found"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hookq-rrss.XXXXXX")
RPID=""
# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
    [ -z "$RPID" ] || { kill "$RPID" 2>/dev/null || true; wait "$RPID" 2>/dev/null || true; }
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RPORT=$("$HQB" free-port | sed -n 's/.*port=\([0-9]*\).*/\1/p')
redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no --dir "$TMP" \
    --logfile "$TMP/redis.log" >/dev/null 2>&1 &
RPID=$!
URL=redis://127.0.0.1:$RPORT/0
rcli() { redis-cli -h 127.0.0.1 -p "$RPORT" "$@"; }
for i in $(seq 100); do
    [ "$(rcli ping 2>/dev/null)" = PONG ] && break
    [ "$i" = 100 ] && die "redis-server did not answer PING in 10 s"
    sleep 0.1
done

EP=$("$HQ" endpoint add --redis-url "$URL" --name rss --url https://example.test/h --json |
    sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
[ -n "$EP" ] || die "creating the endpoint failed"
# Fill in chunks of 10,000 per script call (one call blocks Redis while it runs).
fill() { # KEY: dead letters or retained deliveries, the same fields that matter
    local key=$1 done=0 n
    while [ "$done" -lt "$EVENTS" ]; do
        n=$((EVENTS - done < 10000 ? EVENTS - done : 10000))
        rcli EVAL "local p = string.rep('x', 1024)
            for i = 1, tonumber(ARGV[2]) do
              redis.call('XADD', KEYS[1], '*', 'event_id', 'ev_' .. (ARGV[3] + i), 'type', 't.x',
                         'endpoint_id', ARGV[1], 'reason', 'exhausted', 'payload', p)
            end return 1" 1 "$key" "$EP" "$n" "$done" >/dev/null
        done=$((done + n))
    done
}
fill hookq:dead
[ "$ALL" = 0 ] || fill hookq:retained
ARGS=(recover --redis-url "$URL" --endpoint "$EP" --since 1d)
[ "$ALL" = 0 ] || ARGS+=(--all)
/usr/bin/time -f '%e %M' -o "$TMP/time" "$HQ" "${ARGS[@]}" >"$TMP/out" 2>"$TMP/err" ||
    { cat "$TMP/err" >&2; die "hookq recover failed"; }
read -r secs rss <"$TMP/time"
echo "recover: $(cat "$TMP/out") of $EVENTS dead$([ "$ALL" = 0 ] || echo " + $EVENTS retained") in ${secs} s, peak RSS ${rss} KiB, events stream now $(rcli XLEN hookq:events)"
