#!/usr/bin/env bash
# shapes.sh: hookq against a plain Node.js worker (bench/baseline/worker.mjs)
# on traffic shaped like production's: one fast endpoint, 1,000 endpoints at
# 20 ms, 10,000 endpoints at 50 ms with every 10th at 2 s, each over HTTP and
# over TLS. Both workers get the same in-flight bound and per-endpoint cap and
# the same pre-filled stream, in the same run, against the same redis-server
# and hq_sink (bench/sink.c), so each hookq figure is printed as a ratio to the
# baseline's. Per run: deliveries/s, worker CPU and cores, Redis CPU per
# delivery, sockets, peak RSS and enqueue->receipt percentiles at a steady
# rate. A benchmark, not a test: targets are printed as met/missed and never
# fail it. Exit 1 when a run cannot be made (a missing binary, a worker that
# dies or never drains), 2 for a bad option. Everything it starts is stopped
# on exit; it talks only to 127.0.0.1. bench/README.md explains each column.
set -euo pipefail

ALL_SHAPES=1x0,1000x20,10000x50,1x0-tls,1000x20-tls,10000x50-tls

usage() {
    cat <<EOF
usage: bench/shapes.sh [options]
  --shapes LIST     comma-separated shapes (default $ALL_SHAPES)
  --events N        pre-filled events per run, the throughput phase (default 100000)
  --rounds R        runs per worker and shape, alternating which goes first; medians reported (default 1)
  --rate R          events/s in the latency phase (default 2000)
  --rate-secs S     length of the latency phase in seconds (default 10)
  --inflight N      in-flight bound of both workers for every shape (default: the shape's own)
  --quick           smoke run: --events 5000 --rate-secs 2
  --out FILE        copy results.tsv (one row per shape, worker and round) to FILE
  --keep            keep the temp dir (logs, sink logs, results.tsv) for inspection
env: HQ_BUILD_DIR (default <repo>/build) is where bin/hookq, bin/hq_sink and bin/hq_bench are;
     HQ_SINK, when set, is the sink binary to run instead of \$HQ_BUILD_DIR/bin/hq_sink.
shapes (endpoints x sink delay; N = in-flight bound, C = per-endpoint cap, both workers):
  1x0        1 endpoint, 0 ms                                     N=256  C=256
  1000x20    1,000 endpoints, 20 ms                               N=2000 C=32
  10000x50   10,000 endpoints, 50 ms, every 10th at 2 s (2 sinks) N=8000 C=32
  <shape>-tls  the same over https, both workers verifying with --ca-file
EOF
}

ME=shapes.sh
die() { echo "$ME: $*" >&2; exit 1; }
bad_opt() { echo "$ME: $*" >&2; usage >&2; exit 2; }
warn() { echo "warning: $*" >&2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${HQ_BUILD_DIR:-$ROOT/build}
HOOKQ=$BUILD/bin/hookq
SINK=${HQ_SINK:-$BUILD/bin/hq_sink}
BASELINE=$ROOT/bench/baseline/worker.mjs
SHAPES=$ALL_SHAPES
EVENTS=100000
ROUNDS=1
RATE=2000
RATE_SECS=10
INFLIGHT=""
OUT=""
KEEP=0

posint() { # posint NAME VALUE: a positive decimal integer or exit 2
    [[ $2 =~ ^[1-9][0-9]{0,8}$ ]] || bad_opt "$1: '$2' is not a positive integer"
}
need() { [ "$1" -ge 2 ] || bad_opt "$2: missing value"; }
while [ $# -gt 0 ]; do
    case "$1" in
    --shapes) need $# "$1"; SHAPES=$2; shift 2 ;;
    --events) need $# "$1"; posint "$1" "$2"; EVENTS=$2; shift 2 ;;
    --rounds) need $# "$1"; posint "$1" "$2"; ROUNDS=$2; shift 2 ;;
    --rate) need $# "$1"; posint "$1" "$2"; RATE=$2; shift 2 ;;
    --rate-secs) need $# "$1"; posint "$1" "$2"; RATE_SECS=$2; shift 2 ;;
    --inflight) need $# "$1"; posint "$1" "$2"; INFLIGHT=$2; shift 2 ;;
    --quick) EVENTS=5000; RATE_SECS=2; shift ;;
    --out) need $# "$1"; OUT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) bad_opt "unknown option '$1'" ;;
    esac
done

# shape NAME: sets K (endpoints), DELAY (ms), SLOW (sink flags for the slow
# tenth), N, C, PROCS (sink processes) and TLS (0/1), or returns 1.
shape() {
    TLS=0
    local base=$1
    if [[ $base == *-tls ]]; then TLS=1; base=${base%-tls}; fi
    SLOW=()
    PROCS=1
    case "$base" in
    1x0) K=1; DELAY=0; N=256; C=256 ;;
    1000x20) K=1000; DELAY=20; N=2000; C=32 ;;
    10000x50)
        K=10000; DELAY=50; N=8000; C=32; PROCS=2 # 20,000 fds per process: 10,000 ports need 2
        SLOW=(--slow-every 10 --slow-delay 2000) ;;
    *) return 1 ;;
    esac
    [ -z "$INFLIGHT" ] || N=$INFLIGHT
    FAMILY=$base
}
IFS=, read -r -a SHAPE_LIST <<<"$SHAPES"
[ ${#SHAPE_LIST[@]} -gt 0 ] || bad_opt "--shapes: empty list"
ANY_TLS=0
for s in "${SHAPE_LIST[@]}"; do
    shape "$s" || bad_opt "--shapes: unknown shape '$s' (known: $ALL_SHAPES)"
    [ "$TLS" = 0 ] || ANY_TLS=1
done

for tool in redis-server redis-cli cc pkg-config awk sort; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool: not found (./run deps installs redis-server)"
done
[ "$ANY_TLS" = 0 ] || command -v openssl >/dev/null 2>&1 || die "openssl: not found (needed for the -tls shapes)"
[ -x "$HOOKQ" ] || die "$HOOKQ: not found; run ./run build"
[ -x "$SINK" ] || die "$SINK: not found; build the hq_sink target (bench/sink.c)"
WORKERS=(baseline hookq)
if ! command -v node >/dev/null 2>&1; then
    warn "node not found: the baseline is skipped, ratios are printed as '-'"
    WORKERS=(hookq)
elif [ ! -f "$BASELINE" ]; then
    warn "$BASELINE not found: the baseline is skipped, ratios are printed as '-'"
    WORKERS=(hookq)
fi

# The 10000x50 shape holds 10,000 connections in the worker and as many in the
# sinks: every process started below inherits the hard limit.
ulimit -n "$(ulimit -Hn)"

# ---- Processes and cleanup ---------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hookq-shapes.XXXXXX")
PIDS=() # every long-lived process this script started, stopped in reverse order on exit

stop_pid() { # stop_pid PID SIGNAL: signal, wait up to 20 s, then SIGKILL
    local pid=$1 sig=$2 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill "-$sig" "$pid" 2>/dev/null || true
    for i in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && { warn "pid $pid ignored SIG$sig for 20 s: killed"; kill -KILL "$pid" 2>/dev/null; }
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
forget_pid() { # drops a stopped process from PIDS
    local i
    for i in "${!PIDS[@]}"; do [ "${PIDS[$i]}" != "$1" ] || unset 'PIDS[i]'; done
    PIDS=("${PIDS[@]}")
}

kv() { # kv "k1=v1 k2=v2" KEY: prints the value of KEY
    local pair
    for pair in $1; do
        [ "${pair%%=*}" = "$2" ] && { echo "${pair#*=}"; return 0; }
    done
    die "internal: no '$2' in '$1'"
}
calc() { awk "BEGIN { printf $1 }"; }
wait_for() { # wait_for SECS CMD...: polls CMD every 0.1 s until it succeeds; 1 at the timeout
    local secs=$1 i
    shift
    for ((i = 0; i < secs * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

# ---- hq_bench: the built target, or a direct cc line against hq_common --------
HQB=$BUILD/bin/hq_bench
if [ ! -x "$HQB" ] || [ "$ROOT/bench/hq_bench.c" -nt "$HQB" ]; then
    [ -f "$BUILD/lib/libhq_common.a" ] || die "$BUILD/lib/libhq_common.a: not found; run ./run build first"
    HQB=$TMP/hq_bench
    # shellcheck disable=SC2046 # pkg-config output is a word list
    cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$ROOT" -I"$ROOT/include" \
        "$ROOT/bench/hq_bench.c" "$BUILD/lib/libhq_common.a" \
        $(pkg-config --libs hiredis libuv libcurl msgpack libcrypto) -o "$HQB" ||
        die "building hq_bench failed"
fi
hqb() { "$HQB" "$@"; }
# long_hqb OUT ARGS...: hqb ARGS with its stdout line in OUT, run as a job
# and waited for, because bash runs a trap only once the foreground command
# ends: a SIGTERM during a drain of up to 20 min would otherwise wait for it.
long_hqb() {
    local out=$1 pid rc=0
    shift
    "$HQB" "$@" >"$out" &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget_pid "$pid"
    return "$rc"
}

# ---- redis-server (one for the whole run) -----------------------------------------
RPORT=$(kv "$(hqb free-port)" port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no --dir "$TMP" \
    --logfile "$TMP/redis.log" --protected-mode yes --maxclients 1000 >/dev/null 2>&1 &
PIDS+=("$!")
URL=redis://127.0.0.1:$RPORT/0
rcli() { redis-cli -u "$URL" "$@"; }
# shellcheck disable=SC2317 # called through wait_for
redis_up() { [ "$(rcli ping 2>/dev/null)" = PONG ]; }
wait_for 10 redis_up || die "redis-server on 127.0.0.1:$RPORT did not answer PING in 10 s (see $TMP/redis.log; --keep)"
redis_cpu() { rcli INFO cpu | awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.4f", s }'; }

if [ "$ANY_TLS" = 1 ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >"$TMP/openssl.log" 2>&1 ||
        die "openssl req failed: $(tail -n 3 "$TMP/openssl.log")"
fi

echo "hookq shapes benchmark: $(nproc) CPUs, $(redis-server --version | awk '{print $3}'), node $(node --version 2>/dev/null || echo none), 1 KiB JSON payloads"
echo "events $EVENTS per run, latency phase $RATE/s for $RATE_SECS s, rounds $ROUNDS, redis 127.0.0.1:$RPORT, temp $TMP"

# ---- Ports for the sink ----------------------------------------------------------------
# K consecutive ports between 1024 and the ephemeral range, so that none of the
# workers' own outgoing connections can take one of them between runs.
EPH_LOW=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
# free_base K: a random base B such that no TCP socket listens on B..B+K-1
# (/proc/net/tcp{,6}, state 0A). Listeners only: connections in TIME_WAIT from
# an earlier run do not stop the sink from binding (libuv sets SO_REUSEADDR).
free_base() {
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v k="$1" -v lo=1024 -v hi="$EPH_LOW" -v seed="$RANDOM" '
        function hex(s, i, v) {
            v = 0
            for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789ABCDEF", toupper(substr(s, i, 1))) - 1
            return v
        }
        $4 == "0A" { n = split($2, a, ":"); used[hex(a[n])] = 1 }
        END {
            run = 0; starts = 0
            for (p = lo; p < hi; p++) {
                run = (p in used) ? 0 : run + 1
                if (run >= k) start[starts++] = p - k + 1
            }
            if (!starts) exit 1
            print start[seed % starts]
        }'
}

# ---- One run -------------------------------------------------------------------------------
RESULTS=$TMP/results.tsv
COLS="shape worker round events secs dps cpu_per_1k cores redis_us sockets sink_conns rss_mib sink_accepted sink_tls p50 p99 p999 lat_n deferred retried dead ids_ok shape_secs"
tr ' ' '\t' <<<"$COLS" >"$RESULTS"

# sink_start DIR BASE: starts hq_sink for the current shape on BASE..BASE+K-1;
# returns 1 when it exits before every port listens (a port was taken).
SINK_PID=""
sink_files() { # sink_files DIR KIND: the per-process file names of the sink
    if [ "$PROCS" = 1 ]; then echo "$1/sink.$2"; else
        local i; for ((i = 0; i < PROCS; i++)); do echo "$1/sink.$2.$i"; done
    fi
}
sink_ready() {
    local f
    for f in $(sink_files "$1" ready); do [ -e "$f" ] || return 1; done
}
sink_start() {
    local dir=$1 base=$2 tls=() i
    [ "$TLS" = 0 ] || tls=(--tls "$TMP/cert.pem,$TMP/key.pem")
    "$SINK" --port-base "$base" --ports "$K" --procs "$PROCS" "${tls[@]}" --delay "$DELAY" "${SLOW[@]}" \
        --log "$dir/sink.log" --status "$dir/sink.status" --ready "$dir/sink.ready" \
        >"$dir/sink.out" 2>&1 &
    SINK_PID=$!
    PIDS+=("$SINK_PID")
    for i in $(seq 600); do
        sink_ready "$dir" && return 0
        if ! kill -0 "$SINK_PID" 2>/dev/null; then
            wait "$SINK_PID" 2>/dev/null || true
            forget_pid "$SINK_PID"
            return 1
        fi
        sleep 0.1
    done
    die "hq_sink on ports $base+$K did not become ready in 60 s: $(tail -n 3 "$dir/sink.out")"
}
sink_stat() { # sink_stat DIR KEY: a counter of the sinks' status lines, summed over processes
    local f s=0 line
    for f in $(sink_files "$1" status); do
        [ -f "$f" ] || continue
        line=$(head -n1 "$f")
        s=$((s + $(kv "$line" "$2")))
    done
    echo "$s"
}
metric() { # metric PORT NAME_AND_LABELS: one value from the worker's /metrics, "-" when unreachable
    local line v=0
    { exec 4<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || { echo -; return 0; }
    printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&4
    while IFS= read -r -t 5 line <&4; do
        line=${line%$'\r'}
        [ "${line% *}" = "$2" ] && v=${line##* }
    done
    exec 4<&-
    echo "$v"
}

# run_one SHAPE WORKER ROUND: one run; appends a row to results.tsv.
run_one() {
    local name=$1 who=$2 round=$3 dir="$TMP/$1.$2.$3" t_run p
    t_run=$(date +%s%N)
    mkdir -p "$dir"
    # Fresh queue state, endpoints kept: the stream (and so the group), the
    # retry set and the dead letters go.
    rcli DEL "$P:events" "$P:retry" "$P:dead" >/dev/null
    sink_start "$dir" "$BASE" || die "hq_sink could not listen on ports $BASE..$((BASE + K - 1)) again: $(tail -n 3 "$dir/sink.out")"
    hqb produce "$URL" "$P" "$EVENTS" "$IDS" >/dev/null || die "pre-filling $P:events failed"

    local ca=() wpid spid="" mport=""
    [ "$TLS" = 0 ] || ca=(--ca-file "$TMP/cert.pem")
    local r_cpu0 t0
    r_cpu0=$(redis_cpu)
    t0=$(date +%s%N)
    if [ "$who" = hookq ]; then
        mport=$(kv "$(hqb free-port)" port)
        HOOKQ_LOG_LEVEL=warn "$HOOKQ" worker --redis-url "$URL" --prefix "$P" --concurrency "$N" \
            --endpoint-concurrency "$C" --allow-private "${ca[@]}" --metrics "127.0.0.1:$mport" \
            >"$dir/worker.log" 2>&1 &
        wpid=$!
        PIDS+=("$wpid")
        # Deferred deliveries wait in <p>:retry until the scheduler brings them back.
        HOOKQ_LOG_LEVEL=warn "$HOOKQ" scheduler --redis-url "$URL" --prefix "$P" >"$dir/scheduler.log" 2>&1 &
        spid=$!
        PIDS+=("$spid")
    else
        node "$BASELINE" --redis "127.0.0.1:$RPORT" --prefix "$P" --inflight "$N" \
            --endpoint-concurrency "$C" "${ca[@]}" --consumer bench >"$dir/worker.log" 2>&1 &
        wpid=$!
        PIDS+=("$wpid")
    fi
    local cpu0 cpu1 out secs socks retry_max
    cpu0=$(kv "$(hqb proc "$wpid" 2>/dev/null || echo cpu_s=0)" cpu_s)
    if ! long_hqb "$dir/drain1.out" drain "$URL" "$P" "$wpid" $((120 + EVENTS / 100)) "$t0"; then
        tail -n 20 "$dir/worker.log" >&2
        die "$name/$who: the throughput phase did not drain (worker log above; --keep keeps $dir)"
    fi
    out=$(cat "$dir/drain1.out")
    secs=$(kv "$out" secs)
    socks=$(kv "$out" sock_max)
    retry_max=$(kv "$out" retry_max)
    p=$(hqb proc "$wpid") || die "$name/$who: the worker exited after the throughput phase"
    cpu1=$(kv "$p" cpu_s)
    local r_cpu1
    r_cpu1=$(redis_cpu)

    long_hqb "$dir/rate.out" produce-rate "$URL" "$P" "$RATE" "$RATE_SECS" "$IDS" || die "$name/$who: produce-rate failed"
    out=$(cat "$dir/rate.out")
    local sent late
    sent=$(kv "$out" sent)
    late=$(kv "$out" max_late_ms)
    awk "BEGIN { exit !($late > 10) }" && warn "$name/$who: the producer fell up to $late ms behind its schedule"
    if ! long_hqb "$dir/drain2.out" drain "$URL" "$P" "$wpid" $((120 + sent / 100)) 0; then
        tail -n 20 "$dir/worker.log" >&2
        die "$name/$who: the latency phase did not drain"
    fi
    out=$(cat "$dir/drain2.out")
    [ "$(kv "$out" sock_max)" -le "$socks" ] || socks=$(kv "$out" sock_max)
    [ "$(kv "$out" retry_max)" -le "$retry_max" ] || retry_max=$(kv "$out" retry_max)
    p=$(hqb proc "$wpid") || die "$name/$who: the worker exited after the latency phase"
    local rss deferred=0 retried=0 conns accepted handshakes
    rss=$(calc "\"%.1f\", $(kv "$p" hwm_kib) / 1024")
    if [ "$who" = hookq ]; then
        deferred=$(metric "$mport" 'hookq_deliveries_total{outcome="deferred"}')
        retried=$(metric "$mport" 'hookq_deliveries_total{outcome="retry"}')
        if [ "$deferred" = - ]; then
            warn "$name/hookq: /metrics on 127.0.0.1:$mport unreachable: deferred = the largest <p>:retry seen"
            deferred=$retry_max
        fi
    fi
    # The status files are rewritten every 500 ms and everything has drained:
    # the counters read here are final but for the last requests' 500 ms.
    conns=$(sink_stat "$dir" conns_max)
    accepted=$(sink_stat "$dir" accepted)
    handshakes=$(sink_stat "$dir" tls_handshakes)
    stop_pid "$wpid" TERM
    forget_pid "$wpid"
    if [ -n "$spid" ]; then stop_pid "$spid" TERM; forget_pid "$spid"; fi
    if [ "$who" = baseline ]; then
        grep -q '^baseline: delivered=' "$dir/worker.log" ||
            warn "$name/baseline: no 'baseline: delivered=' line on exit"
        out=$(grep '^baseline: ' "$dir/worker.log" | tail -n1 | sed 's/^baseline: //')
        retried=$(kv "${out:-failed=0}" failed) # the baseline does not retry: failures are lost
    fi
    # SIGTERM makes the sink write out its log.
    stop_pid "$SINK_PID" TERM
    forget_pid "$SINK_PID"
    local dead logs
    dead=$(rcli XLEN "$P:dead")
    mapfile -t logs < <(sink_files "$dir" log)
    out=$(hqb latency-us "${logs[@]}") || die "$name/$who: reading the sink logs failed"
    local tc bc ok=1
    tc=$(kv "$out" t_count)
    bc=$(kv "$out" b_count)
    [ "$tc" = "$EVENTS" ] || { warn "$name/$who: the sink logged $tc throughput-phase requests for $EVENTS events"; ok=0; }
    [ "$bc" = "$sent" ] || { warn "$name/$who: the sink logged $bc latency-phase requests for $sent events"; ok=0; }
    [ "$dead" = 0 ] || warn "$name/$who: $dead deliveries dead-lettered"
    local p50=- p99=- p999=-
    if [ "$bc" != 0 ]; then p50=$(kv "$out" p50); p99=$(kv "$out" p99); p999=$(kv "$out" p999); fi
    local row
    row=$(printf '%s\t' "$name" "$who" "$round" "$EVENTS" "$secs" \
        "$(calc "\"%.0f\", $EVENTS / $secs")" \
        "$(calc "\"%.4f\", ($cpu1 - $cpu0) / ($EVENTS / 1000)")" \
        "$(calc "\"%.2f\", ($cpu1 - $cpu0) / $secs")" \
        "$(calc "\"%.1f\", ($r_cpu1 - $r_cpu0) * 1e6 / $EVENTS")" \
        "$socks" "$conns" "$rss" "$accepted" "$handshakes" "$p50" "$p99" "$p999" "$bc" "$deferred" "$retried" "$dead" "$ok" \
        "$(calc "\"%.1f\", ($(date +%s%N) - $t_run) / 1e9")")
    printf '%s\n' "${row%$'\t'}" >>"$RESULTS"
    printf '  %-12s %-8s round %s: %s deliveries/s, %s s, p99 %s ms\n' "$name" "$who" "$round" \
        "$(calc "\"%.0f\", $EVENTS / $secs")" "$secs" "$p99"
}

# ---- Report helpers ------------------------------------------------------------------
# med SHAPE WORKER COLUMN: the median over rounds ("-" when there is none).
med() {
    awk -F'\t' -v s="$1" -v w="$2" -v col="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        $1 == s && $2 == w && $c != "-" && $c ~ /^[0-9.]+$/ { v[n++] = $c }
        END {
            if (!n) { print "-"; exit }
            for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            if (n % 2) print v[int(n / 2)]; else print (v[n / 2 - 1] + v[n / 2]) / 2
        }' "$RESULTS"
}
scaled() { # scaled FACTOR X: FACTOR * X, "-" when X is missing
    if [ "$2" = - ]; then echo -; else calc "\"%f\", $1 * $2"; fi
}
ratio() { # ratio A B: A / B to 2 decimals, "-" when either is missing or B is 0
    if [ "$1" = - ] || [ "$2" = - ] || awk "BEGIN { exit !($2 == 0) }"; then echo -; else calc "\"%.2f\", $1 / $2"; fi
}
verdict() { # verdict A OP B: "met"/"missed", "not measured" when a side is missing
    if [ "$1" = - ] || [ "$3" = - ]; then echo "not measured"
    elif awk "BEGIN { exit !($1 $2 $3) }"; then echo met; else echo missed; fi
}
sum_col() { # sum_col SHAPE WORKER COLUMN: the sum over rounds (counts)
    awk -F'\t' -v s="$1" -v w="$2" -v col="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        $1 == s && $2 == w { x += $c + 0; seen = 1 }
        END { print seen ? x : "-" }' "$RESULTS"
}

report_shape() {
    local name=$1 col label h b
    echo
    echo "== $name: $K endpoint(s), $DELAY ms${SLOW[*]:+, every 10th at 2 s}, N=$N C=$C$([ "$TLS" = 1 ] && echo ", TLS") (medians of $ROUNDS round(s)) =="
    printf '%-34s %12s %12s %8s\n' metric hookq baseline ratio
    while IFS='|' read -r col label; do
        h=$(med "$name" hookq "$col")
        b=$(med "$name" baseline "$col")
        printf '%-34s %12s %12s %8s\n' "$label" "$h" "$b" "$(ratio "$h" "$b")"
    done <<'EOF'
dps|deliveries/s
cpu_per_1k|worker CPU-s per 1k deliveries
cores|worker cores used
redis_us|redis CPU us per delivery
sockets|worker sockets (max)
sink_conns|sink conns_max
rss_mib|worker peak RSS MiB
sink_accepted|sink connections accepted
sink_tls|sink TLS handshakes
p50|latency p50 ms
p99|latency p99 ms
p999|latency p999 ms
EOF
    printf '%-34s %12s %12s\n' "deferred (hookq) / failed (baseline)" "$(sum_col "$name" hookq deferred)" "$(sum_col "$name" baseline retried)"
    printf '%-34s %12s %12s\n' "retries scheduled" "$(sum_col "$name" hookq retried)" "-"
    printf '%-34s %12s %12s\n' "dead-lettered" "$(sum_col "$name" hookq dead)" "$(sum_col "$name" baseline dead)"
    local hd bd
    hd=$(med "$name" hookq dps)
    bd=$(med "$name" baseline dps)
    case "$FAMILY" in
    1x0)
        echo "target: deliveries/s >= 1.5x baseline: $(verdict "$hd" ">=" "$(scaled 1.5 "$bd")")"
        b=$(med "$name" baseline cpu_per_1k)
        echo "target: CPU per delivery <= 0.5x baseline: $(verdict "$(med "$name" hookq cpu_per_1k)" "<=" "$(scaled 0.5 "$b")")"
        echo "target: p50 <= baseline: $(verdict "$(med "$name" hookq p50)" "<=" "$(med "$name" baseline p50)"); p99 <= baseline: $(verdict "$(med "$name" hookq p99)" "<=" "$(med "$name" baseline p99)")"
        ;;
    *)
        echo "target: deliveries/s >= 2x baseline: $(verdict "$hd" ">=" "$(scaled 2 "$bd")")"
        if [ "$FAMILY" = 10000x50 ]; then
            echo "target: hookq peak RSS <= 64 MiB at $(med "$name" hookq sockets) sockets: $(verdict "$(med "$name" hookq rss_mib)" "<=" 64)"
        fi
        ;;
    esac
}

# ---- The runs ---------------------------------------------------------------------------
T_ALL=$(date +%s)
si=0
for name in "${SHAPE_LIST[@]}"; do
    shape "$name"
    si=$((si + 1))
    P="hqs${si}" # a prefix per shape: its endpoints stay apart from the other shapes'
    IDS=$TMP/$name.ids
    t_shape=$(date +%s)
    echo
    echo "shape $name: $K endpoint(s) ..."
    # A port base whose K ports are free, below the ephemeral range; the sink
    # confirms it by listening on all of them (5 tries).
    BASE=""
    for _ in 1 2 3 4 5; do
        cand=$(free_base "$K") || break
        mkdir -p "$TMP/$name.probe"
        if sink_start "$TMP/$name.probe" "$cand"; then
            stop_pid "$SINK_PID" TERM
            forget_pid "$SINK_PID"
            BASE=$cand
            break
        fi
    done
    [ -n "$BASE" ] || die "no $K free consecutive ports found in 1024..$EPH_LOW for hq_sink (see $TMP/$name.probe/sink.out; --keep)"
    scheme=http
    [ "$TLS" = 0 ] || scheme=https
    out=$(hqb endpoints "$URL" "$P" "$K" "$BASE" "$scheme://127.0.0.1:{port}/hook/{i}" "$IDS") ||
        die "creating $K endpoints failed"
    echo "  $K endpoints on ports $BASE..$((BASE + K - 1)) created in $(kv "$out" secs) s"
    for ((round = 1; round <= ROUNDS; round++)); do
        # Alternate who goes first, so neither always meets a warmer machine.
        order=("${WORKERS[@]}")
        if [ $((round % 2)) = 0 ] && [ ${#WORKERS[@]} = 2 ]; then order=(hookq baseline); fi
        for who in "${order[@]}"; do run_one "$name" "$who" "$round"; done
    done
    report_shape "$name"
    echo "(shape $name took $(($(date +%s) - t_shape)) s)"
done

# ---- TLS cost per delivery ------------------------------------------------------------------
tls_lines=()
for name in "${SHAPE_LIST[@]}"; do
    [[ $name == *-tls ]] || continue
    plain=${name%-tls}
    grep -q "^$plain	" "$RESULTS" || continue
    line="TLS cost per delivery, $plain:"
    for who in hookq baseline; do
        a=$(med "$name" "$who" cpu_per_1k)
        b=$(med "$plain" "$who" cpu_per_1k)
        if [ "$a" = - ] || [ "$b" = - ]; then line="$line $who -"; else
            line="$line $who $(calc "\"%.1f\", ($a - $b) * 1000") us"
        fi
    done
    tls_lines+=("$line")
done
if [ ${#tls_lines[@]} -gt 0 ]; then
    echo
    printf '%s (worker CPU, TLS minus plain)\n' "${tls_lines[@]}"
fi

echo
echo "all shapes took $(($(date +%s) - T_ALL)) s; results: $RESULTS$([ "$KEEP" = 1 ] || echo ' (removed on exit: --keep or --out)')"
if [ -n "$OUT" ]; then
    cp "$RESULTS" "$OUT" || die "cannot write $OUT"
    echo "results copied to $OUT"
fi
exit 0
