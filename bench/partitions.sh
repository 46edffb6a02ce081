#!/usr/bin/env bash
# partitions.sh: what partitioning costs and what it spreads. In one run on
# one machine, for each layout
#   p1       one Redis, untagged (P = 1: today's layout)
#   p4       one Redis, P = 4
#   cluster  a 3-primary Redis Cluster (no replicas), P = 6
#   cluster1 a 1-node Redis Cluster owning every slot, P = 6: cluster mode
#            without three Redis processes sharing this machine's cores (so
#            cluster - cluster1 is what the one-machine setup adds)
# it pre-fills N events spread over the partitions, runs ONE `hookq worker`
# against one endpoint (hq_sink, answering 204 at once) and prints
# deliveries/s (and the ratio to p1), the worker's CPU per delivery, Redis
# CPU per delivery summed over every node, and for the cluster each
# primary's share of that CPU against the mean. Layouts alternate round by
# round (--rounds) so a drift of the machine's speed hits all of them; the
# summary gives medians. A benchmark, not a test: exit 0 when every phase ran,
# 1 when one could not, 2 for a bad option. Talks only to 127.0.0.1; stops
# everything it started.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/partitions.sh [--events N] [--rounds R] [--layouts p1,p4,cluster] [--breakdown] [--keep]
  --events N    events per measurement (default 100000)
  --rounds R    measurements per layout, alternating (default 3)
  --layouts L   which layouts, comma-separated: p1, p4, cluster, cluster1
                (default p1,p4,cluster)
  --breakdown   also print, per run, INFO commandstats per command summed over
                the nodes: calls and µs per delivery (a script's line includes
                the commands it calls, which have their own lines too)
  --keep        keep the temp dir (logs) for inspection
env: HQ_BUILD_DIR (default <repo>/build): bin/hookq, bin/hq_pbench, bin/hq_sink.
EOF
}

ME=partitions.sh
die() { echo "$ME: $*" >&2; exit 1; }
bad_opt() { echo "$ME: $*" >&2; usage >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${HQ_BUILD_DIR:-$ROOT/build}
HOOKQ=$BUILD/bin/hookq
PB=$BUILD/bin/hq_pbench
SINK=$BUILD/bin/hq_sink
EVENTS=100000
ROUNDS=3
LAYOUTS=p1,p4,cluster
KEEP=0
BREAKDOWN=0
while [ $# -gt 0 ]; do
    case "$1" in
    --events) [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]{0,7}$ ]] || bad_opt "--events: a positive integer"; EVENTS=$2; shift 2 ;;
    --rounds) [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]?$ ]] || bad_opt "--rounds: 1-99"; ROUNDS=$2; shift 2 ;;
    --layouts) [ $# -ge 2 ] && [[ $2 =~ ^(p1|p4|cluster1?)(,(p1|p4|cluster1?))*$ ]] || bad_opt "--layouts: p1, p4, cluster and/or cluster1"; LAYOUTS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --breakdown) BREAKDOWN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) bad_opt "unknown option '$1'" ;;
    esac
done
for b in "$HOOKQ" "$PB" "$SINK"; do [ -x "$b" ] || die "$b: not built (cmake --build build)"; done
command -v redis-server >/dev/null || die "redis-server is not installed"
command -v redis-cli >/dev/null || die "redis-cli is not installed"

TMP=$(mktemp -d /tmp/hq-partitions.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$KEEP" = 1 ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
kv() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2; exit }'; }
calc() { awk "BEGIN { printf $1 }"; }
proc_cpu() { # CPU seconds of pid from /proc (utime + stime)
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}
wait_ping() { # wait_ping PORT
    local i
    for i in $(seq 200); do
        redis-cli -p "$1" PING 2>/dev/null | grep -q PONG && return 0
        sleep 0.05
    done
    die "redis on port $1 did not answer PING"
}

# start_redis DIR PORT [cluster]: a throwaway redis-server (no persistence).
start_redis() {
    local dir=$1 port=$2 extra=()
    mkdir -p "$dir"
    if [ "${3:-}" = cluster ]; then
        extra=(--cluster-enabled yes --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 5000
            --cluster-port "$(free_port)")
    fi
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        --logfile "$dir/redis.log" "${extra[@]}" &
    PIDS+=($!)
    wait_ping "$port"
}

# setup LAYOUT DIR: starts Redis for the layout; sets URL and RPIDS.
setup() {
    local layout=$1 dir=$2
    RPIDS=()
    case "$layout" in
    p1 | p4)
        local port
        port=$(free_port)
        start_redis "$dir/r" "$port"
        RPIDS=("${PIDS[-1]}")
        URL=redis://127.0.0.1:$port
        if [ "$layout" = p4 ]; then "$PB" layout "$URL" hookq 4 >/dev/null; fi
        ;;
    cluster | cluster1)
        local ports=() p n=3
        [ "$layout" = cluster1 ] && n=1
        for i in $(seq "$n"); do
            p=$(free_port)
            start_redis "$dir/c$i" "$p" cluster
            RPIDS+=("${PIDS[-1]}")
            ports+=("127.0.0.1:$p")
        done
        if [ "$n" = 1 ]; then # redis-cli --cluster create wants 3 primaries
            redis-cli -p "${p##*:}" CLUSTER ADDSLOTSRANGE 0 16383 >"$dir/create.log" 2>&1 ||
                die "CLUSTER ADDSLOTSRANGE failed: $(tail -n 3 "$dir/create.log")"
        else
            redis-cli --cluster create "${ports[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 ||
                die "redis-cli --cluster create failed: $(tail -n 3 "$dir/create.log")"
        fi
        local ok=0
        for i in $(seq 200); do
            ok=1
            for p in "${ports[@]}"; do
                redis-cli -p "${p##*:}" CLUSTER INFO | grep -q 'cluster_state:ok' || ok=0
            done
            [ "$ok" = 1 ] && break
            sleep 0.05
        done
        [ "$ok" = 1 ] || die "the cluster did not converge"
        URL=redis-cluster://$(
            IFS=,
            echo "${ports[*]}"
        )
        "$PB" layout "$URL" hookq 6 >/dev/null
        ;;
    esac
}

# measure LAYOUT ROUND: one measurement; appends "layout rate w_us r_us spread" to RES.
RES=$TMP/results
measure() {
    local layout=$1 round=$2 dir=$TMP/$1.$2
    mkdir -p "$dir"
    setup "$layout" "$dir"
    local sport
    sport=$(free_port)
    "$SINK" --port-base "$sport" --ports 1 >"$dir/sink.out" 2>&1 &
    local spid=$!
    PIDS+=("$spid")
    for i in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$sport") 2>/dev/null && break
        sleep 0.05
    done
    "$PB" endpoint "$URL" hookq "http://127.0.0.1:$sport/" >/dev/null
    "$PB" produce "$URL" hookq "$EVENTS" >/dev/null
    local cpu0 cpu1 t0 out
    cpu0=$("$PB" cpu "$URL" hookq)
    t0=$(date +%s%N)
    HOOKQ_LOG_LEVEL=warn "$HOOKQ" worker --redis-url "$URL" --allow-private >"$dir/worker.log" 2>&1 &
    local wpid=$!
    PIDS+=("$wpid")
    out=$("$PB" drain "$URL" hookq $((120 + EVENTS / 1000)) "$t0") || {
        tail -n 20 "$dir/worker.log" >&2
        die "$layout: the worker did not drain"
    }
    local wcpu secs
    wcpu=$(proc_cpu "$wpid")
    cpu1=$("$PB" cpu "$URL" hookq)
    secs=$(kv "$out" secs)
    kill -TERM "$wpid" 2>/dev/null || true
    wait "$wpid" 2>/dev/null || true
    local rate r_us w_us spread
    rate=$(calc "\"%.0f\", $EVENTS / $secs")
    r_us=$(calc "\"%.2f\", ($(kv "$(grep "^total_cpu_s=" <<<"$cpu1")" total_cpu_s) - $(kv "$(grep "^total_cpu_s=" <<<"$cpu0")" total_cpu_s)) * 1e6 / $EVENTS")
    w_us=$(calc "\"%.2f\", $wcpu * 1e6 / $EVENTS")
    local calls batch
    calls=$(($(kv "$(grep "^total_cpu_s=" <<<"$cpu1")" script_calls) - $(kv "$(grep "^total_cpu_s=" <<<"$cpu0")" script_calls)))
    batch=$(calc "\"%.1f\", $EVENTS / ($calls > 0 ? $calls : 1)")
    # Each node's share of Redis CPU against the mean: the largest deviation, %.
    spread=$(paste <(grep '^node=' <<<"$cpu0") <(grep '^node=' <<<"$cpu1") |
        awk '{ split($2, a, "="); split($4, b, "="); d[NR] = b[2] - a[2]; s += d[NR] } END {
            m = s / NR; w = 0; for (i = 1; i <= NR; i++) { x = (d[i] - m) / m * 100; if (x < 0) x = -x; if (x > w) w = x }
            printf "%.0f", w }')
    printf '%s %s %s %s %s %s\n' "$layout" "$rate" "$w_us" "$r_us" "$spread" "$batch" >>"$RES"
    printf '%-8s round %d: %7s deliveries/s, worker %6s us, redis %5s us per delivery (all nodes), %5s entries per outcome call%s\n' \
        "$layout" "$round" "$rate" "$w_us" "$r_us" "$batch" \
        "$([ "$layout" = cluster ] && echo ", largest node deviation from the mean ${spread}%")"
    if [ "$BREAKDOWN" = 1 ]; then
        # Commands first seen in the run have no "before" line: they count from 0.
        { grep '^cmd=' <<<"$cpu0" | sed 's/^/0 /'; grep '^cmd=' <<<"$cpu1" | sed 's/^/1 /'; } |
            awk -v n="$EVENTS" '{ split($2, nm, "="); split($3, c, "="); split($4, u, "=")
                if ($1 == 0) { c0[nm[2]] = c[2]; u0[nm[2]] = u[2] } else { c1[nm[2]] = c[2]; u1[nm[2]] = u[2] } }
                END { for (k in u1) { d = u1[k] - u0[k]; if (d > 0) printf "  %-16s %8d calls %7.3f per delivery %6.2f us per delivery\n", k, c1[k] - c0[k], (c1[k] - c0[k]) / n, d / n } }' |
            sort -k7 -nr | head -n 12
    fi
    for p in "$wpid" "$spid" "${RPIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}

echo "hookq partitions benchmark: $(nproc) CPUs, $(redis-server --version | awk '{print $3}'), $EVENTS events of 1 KiB, one worker, one endpoint"
IFS=, read -r -a LS <<<"$LAYOUTS"
for r in $(seq "$ROUNDS"); do
    for l in "${LS[@]}"; do measure "$l" "$r"; done
done

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo
echo "medians of $ROUNDS rounds:"
base=""
for l in "${LS[@]}"; do
    rate=$(awk -v l="$l" '$1 == l { print $2 }' "$RES" | median)
    w=$(awk -v l="$l" '$1 == l { print $3 }' "$RES" | median)
    rc=$(awk -v l="$l" '$1 == l { print $4 }' "$RES" | median)
    sp=$(awk -v l="$l" '$1 == l { print $5 }' "$RES" | median)
    bt=$(awk -v l="$l" '$1 == l { print $6 }' "$RES" | median)
    if [ "$l" = p1 ]; then base=$rate; fi
    ratio=""
    if [ -n "$base" ]; then ratio=" ($(calc "\"%.2f\", $rate / $base")x p1)"; fi
    printf '%-8s %7s deliveries/s%s, worker %s us, redis %s us per delivery, %s entries per outcome call%s\n' "$l" "$rate" "$ratio" "$w" "$rc" "$bt" \
        "$([ "$l" = cluster ] && echo ", largest node deviation ${sp}%")"
done
exit 0
