#!/usr/bin/env bash
# ir_per_delivery.sh: instructions per delivery from a callgrind profile of
# the worker, split by shared object, libcrypto left out (valgrind hides
# SHA-NI, so its count there is not the real cost). Instruction counts do not
# depend on the machine's speed or load, so two builds compare within one
# percent where wall-clock runs on this VM vary by 15 %.
#   HQ_WORKER_WRAP="valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out" \
#     bench/worker_bench.sh --events 20000 --rate 200 --rate-secs 2 --wrk-secs 2
#   bench/ir_per_delivery.sh /tmp/cg.out 20400     # 20,000 + 200/s x 2 s
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: bench/ir_per_delivery.sh CALLGRIND_OUT DELIVERIES" >&2; exit 2; }
[[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "ir_per_delivery.sh: DELIVERIES: '$2' is not a positive integer" >&2; exit 2; }
command -v callgrind_annotate >/dev/null || { echo "ir_per_delivery.sh: callgrind_annotate not found (valgrind)" >&2; exit 1; }
callgrind_annotate --auto=no --threshold=100 "$1" | awk -v n="$2" '
    /^ *[0-9,]+ +\(/ && /\[/ {
        ir = $1; gsub(",", "", ir)
        obj = $NF; gsub(/[\[\]]/, "", obj); sub(/.*\//, "", obj); sub(/\.so.*/, "", obj)
        if (obj == "hookq") obj = "hookq"
        by[obj] += ir
    }
    END {
        for (o in by) if (o != "libcrypto") { total += by[o] }
        printf "total without libcrypto: %.0f Ir per delivery\n", total / n
        for (o in by) if (by[o] / n >= 1) printf "  %-16s %10.0f\n", o, by[o] / n | "sort -k2 -nr"
    }'
