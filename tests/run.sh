#!/bin/sh
# run.sh - runs every test of nextframe and prints one closing line
# "N passed, N failed, N skipped". Exits non-zero if any test failed.
#
# Unit tests: every build/tests/test-* binary; each prints PASS/FAIL/SKIP
# lines (tests/nf-test.h). Integration tests: every tests/it/*.sh script,
# one test each: exit 0 passes, 77 skips, anything else fails.
#
#   sh tests/run.sh [FILTER]   runs only tests whose name contains FILTER
# Environment: BUILD (default build), NF_TEST_TIMEOUT (seconds per test
# binary or script, default 300).
set -u
BUILD=${BUILD:-build}
FILTER=${1:-}
TIMEOUT=${NF_TEST_TIMEOUT:-300}
LOGDIR=$BUILD/test-logs
mkdir -p "$LOGDIR"
passed=0 failed=0 skipped=0
failures=""

for t in "$BUILD"/tests/test-*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    case "$name" in *"$FILTER"*) ;; *) [ -n "$FILTER" ] && continue ;; esac
    log="$LOGDIR/$name.log"
    timeout "$TIMEOUT" "$t" >"$log" 2>&1
    rc=$?
    p=$(grep -c '^PASS ' "$log")
    f=$(grep -c '^FAIL ' "$log")
    s=$(grep -c '^SKIP ' "$log")
    grep -E '^(PASS|FAIL|SKIP) ' "$log" | sed "s|^|$name: |"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        # Crashed or timed out outside a test: count it as one failure.
        echo "FAIL $name: exited with status $rc (see $log)"
        f=1
    fi
    [ "$f" -gt 0 ] && { failures="$failures $name"; sed -n '1,200p' "$log" | grep -v '^PASS ' | sed 's/^/    /'; }
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
done

for t in tests/it/*.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    case "$name" in *"$FILTER"*) ;; *) [ -n "$FILTER" ] && continue ;; esac
    log="$LOGDIR/it-$name.log"
    start=$(date +%s)
    BUILD="$BUILD" timeout "$TIMEOUT" sh "$t" >"$log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    if [ "$rc" -eq 0 ]; then
        echo "PASS $name (${secs}s)"
        passed=$((passed + 1))
    elif [ "$rc" -eq 77 ]; then
        echo "SKIP $name: $(tail -n 1 "$log")"
        skipped=$((skipped + 1))
    else
        echo "FAIL $name: exit $rc after ${secs}s; last lines of $log:"
        tail -n 25 "$log" | sed 's/^/    /'
        failed=$((failed + 1))
        failures="$failures $name"
    fi
done

[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
