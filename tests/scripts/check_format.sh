#!/bin/sh
# check_format.sh SRC_DIR: every C source and header of the project is formatted
# as the repository's .clang-format says (clang-format --dry-run -Werror).
# In a git checkout the files are what git lists (tracked, plus new files it does
# not ignore), so a new folder or file is checked without editing this script;
# elsewhere (a source tarball) every *.c and *.h outside build*/ and dot folders.
# Exits 77 (ctest: skipped) with a message when clang-format is missing.
src=$1
cf=${CLANG_FORMAT:-clang-format}
if ! command -v "$cf" >/dev/null 2>&1; then
    echo "check_format: skipped: $cf not found (install clang-format; ./run deps does)"
    exit 77
fi
cd "$src" || exit 1
list=$(mktemp) || exit 1
trap 'rm -f "$list"' EXIT
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard -- '*.c' '*.h' >"$list" || exit 1
else
    find . \( -name 'build*' -o -name '.?*' \) -prune -o \
        -type f \( -name '*.c' -o -name '*.h' \) -print0 >"$list" || exit 1
fi
n=$(tr -cd '\0' <"$list" | wc -c)
if [ "$n" -eq 0 ]; then
    echo "check_format: no C files found under $src" >&2
    exit 1
fi
# Files listed by git but deleted in the work tree are not checked.
if xargs -0 sh -c 'for f; do [ -f "$f" ] && printf "%s\0" "$f"; done' sh <"$list" |
    xargs -0 "$cf" --dry-run -Werror --style=file; then
    echo "check_format: $n files formatted as .clang-format says ($("$cf" --version))"
else
    echo "check_format: the files above differ from .clang-format; run clang-format -i on them" >&2
    exit 1
fi
