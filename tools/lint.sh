#!/bin/sh
# lint.sh - `make lint`: clang-format check and cppcheck over the C code.
# The CUDA sources (kernels/cuda/*.cu, *.cuh) get the clang-format check
# only: cppcheck does not parse CUDA (nvcc's -Werror all-warnings with
# -Wall -Wextra -Werror for the host side is their static check).
set -eu
files=$(git ls-files -co --exclude-standard '*.c' '*.h')
cuda=$(git ls-files -co --exclude-standard '*.cu' '*.cuh')
[ -n "$files" ] || { echo "lint: no C files"; exit 0; }
echo "lint: clang-format ($(echo "$files" "$cuda" | grep -c .) files)"
# shellcheck disable=SC2086
clang-format --dry-run -Werror $files $cuda
echo "lint: cppcheck"
# shellcheck disable=SC2086
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,style,performance,portability \
    --inline-suppr --suppress=missingIncludeSystem -D__GNUC__ \
    -Icommon -Iprotocol -Ikernels -Iserver -Iclients/common $files
echo "lint: clean"
