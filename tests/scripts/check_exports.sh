#!/bin/sh
# check_exports.sh LIB: libhookq exports only its API (hookq_*), is
# self-contained (no undefined hq_* symbol) and never aborts:
# no call to abort() and none to the hq_malloc family, which
# aborts on OOM. bookworm's nm prints versioned names ("U abort@GLIBC_2.2.5"),
# so a name matches with or without its "@version".
lib=$1
if ! command -v nm >/dev/null 2>&1; then
    echo "check_exports: nm not found (binutils); cannot check $lib" >&2
    exit 1
fi
if [ ! -f "$lib" ]; then
    echo "check_exports: $lib: no such file" >&2
    exit 1
fi
defined=$(nm -D --defined-only "$lib") || exit 1
undefined=$(nm -D --undefined-only "$lib") || exit 1
rc=0
extra=$(printf '%s\n' "$defined" | awk '$2 == "T" { print $3 }' | grep -v '^hookq_')
if [ -n "$extra" ]; then
    echo "check_exports: $lib exports more than hookq_*:" >&2
    printf '%s\n' "$extra" >&2
    rc=1
fi
aborts=$(printf '%s\n' "$undefined" | awk '{ print $NF }' |
         grep -E '^(abort|hq_malloc|hq_calloc|hq_realloc|hq_strdup)(@|$)')
if [ -n "$aborts" ]; then
    echo "check_exports: $lib may abort; it calls:" >&2
    printf '%s\n' "$aborts" >&2
    rc=1
fi
# Every hookq function it calls must be compiled in (HQ_LIBHOOKQ_SRC in
# CMakeLists.txt): an undefined hq_* symbol would fail only when loaded.
missing=$(printf '%s\n' "$undefined" | awk '{ print $NF }' | grep -E '^hq_')
if [ -n "$missing" ]; then
    echo "check_exports: $lib needs hookq symbols it does not contain (add their files to HQ_LIBHOOKQ_SRC):" >&2
    printf '%s\n' "$missing" >&2
    rc=1
fi
[ "$rc" = 0 ] && echo "check_exports: $lib exports only hookq_* and calls no abort"
exit $rc
