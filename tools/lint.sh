#!/bin/sh
# lint.sh - `make lint`: clang-format check and cppcheck over the C code.
set -eu
files=$(git ls-files -co --exclude-standard '*.c' '*.h')
[ -n "$files" ] || { echo "lint: no C files"; exit 0; }
echo "lint: clang-format ($(echo "$files" | wc -l) files)"
# shellcheck disable=SC2086
clang-format --dry-run -Werror $files
echo "lint: cppcheck"
# shellcheck disable=SC2086
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,style,performance,portability \
    --inline-suppr --suppress=missingIncludeSystem -D__GNUC__ \
    -Icommon -Iprotocol -Ikernels -Iserver -Iclients/common $files
echo "lint: clean"
