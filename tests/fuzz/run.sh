#!/bin/sh
# run.sh - `make fuzz`: runs each libFuzzer harness for a fixed time and
# prints one summary line per target. See tests/fuzz/README.md.
#
#   sh tests/fuzz/run.sh [TARGET...]      (default: wire control model jpeg)
#
# Environment:
#   FUZZ_SECONDS  seconds per target (default 60), libFuzzer -max_total_time
#   FUZZ_BUILD    where `make fuzz-build` put the harnesses (build/fuzz)
#   FUZZ_FORK     N > 0: libFuzzer's fork mode with N jobs, which keeps
#                 going after a crash, timeout or out-of-memory (each is
#                 saved); without it the first finding stops that target
#   FUZZ_ARGS     more libFuzzer flags, for every target
#
# Each target fuzzes into $FUZZ_BUILD/corpus/TARGET (new inputs), reading
# the committed seeds of tests/fuzz/corpus/TARGET too; findings go to
# $FUZZ_BUILD/artifacts/TARGET/ and the full log and summary line to
# $FUZZ_BUILD/logs/. The exit status is 1 if any target found something or
# did not run.
set -u
SECONDS_PER=${FUZZ_SECONDS:-60}
B=${FUZZ_BUILD:-build/fuzz}
FORK=${FUZZ_FORK:-0}
HERE=tests/fuzz
[ $# -gt 0 ] || set -- wire control model jpeg
mkdir -p "$B/logs"
status=0
# A progress line about six times per target, at most every 30 s.
every=$((SECONDS_PER / 6))
[ "$every" -ge 1 ] || every=1
[ "$every" -le 30 ] || every=30

# The flags of each target. The control parser is fed at most what the
# server accepts (4096 bytes); the model files may be larger than the
# biggest seed; the JPEG probe runs with a malloc limit so that a frame that
# makes TurboJPEG allocate 256 MiB is reported as a finding.
target_flags() {
    case "$1" in
    wire) echo "-max_len=4096" ;;
    control) echo "-max_len=4096" ;;
    model) echo "-max_len=32768" ;;
    jpeg) echo "-max_len=32768 -malloc_limit_mb=256 -rss_limit_mb=1024" ;;
    *) echo "" ;;
    esac
}

# stat NAME LOG: a value of libFuzzer's -print_final_stats, or "".
stat() {
    sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

# last_status LOG: libFuzzer's last "#N ..." status line.
last_status() {
    grep -a '^#[0-9]' "$1" | tail -n 1
}

for t in "$@"; do
    bin="$B/fuzz-$t"
    seeds="$HERE/corpus/$t"
    work="$B/corpus/$t"
    art="$B/artifacts/$t"
    log="$B/logs/$t.log"
    if [ ! -x "$bin" ]; then
        echo "fuzz: $t: $bin missing (make fuzz-build)"
        echo "fuzz summary: $t: not built" >"$B/logs/$t.summary"
        status=1
        continue
    fi
    mkdir -p "$work" "$art"
    dict=""
    [ -f "$HERE/dict/$t.dict" ] && dict="-dict=$HERE/dict/$t.dict"
    fork=""
    [ "$FORK" -gt 0 ] &&
        fork="-fork=$FORK -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1"
    stamp="$B/logs/.start-$t"
    touch "$stamp"
    echo "fuzz: $t: ${SECONDS_PER}s, log $log"
    # shellcheck disable=SC2046,SC2086
    "$bin" -max_total_time="$SECONDS_PER" -print_final_stats=1 -timeout=10 \
        -artifact_prefix="$art/" $dict $(target_flags "$t") $fork \
        ${FUZZ_ARGS:-} "$work" "$seeds" >"$log" 2>&1 &
    pid=$!
    start=$(date +%s)
    ticks=0
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        ticks=$((ticks + 1))
        if [ $((ticks % every)) -eq 0 ]; then
            echo "fuzz: $t: $(($(date +%s) - start))s: $(last_status "$log")"
        fi
    done
    wait "$pid"
    rc=$?
    elapsed=$(($(date +%s) - start))

    execs=$(stat number_of_executed_units "$log")
    rate=$(stat average_exec_per_sec "$log")
    rss=$(stat peak_rss_mb "$log")
    line=$(last_status "$log")
    # Fork mode prints no final stats: take them from its last status line.
    [ -n "$execs" ] || execs=$(echo "$line" | sed -n 's/^#\([0-9]*\).*/\1/p')
    [ -n "$rate" ] ||
        rate=$(echo "$line" | sed -n 's/.*exec\/s:* \([0-9]*\).*/\1/p')
    corpus=$(echo "$line" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
    find "$art" -type f -newer "$stamp" >"$B/logs/$t.findings"
    found=$(wc -l <"$B/logs/$t.findings")
    rm -f "$stamp"
    result="fuzz summary: $t: ${elapsed} s, ${execs:-?} executions,"
    result="$result ${rate:-?} exec/s, corpus ${corpus:-?} inputs,"
    result="$result peak RSS ${rss:-?} MB, findings $found"
    if [ "$found" -gt 0 ] || { [ "$rc" -ne 0 ] && [ "$FORK" -eq 0 ]; }; then
        status=1
        result="$result (exit $rc; see $log)"
        echo "fuzz: $t: finding; the end of $log:"
        grep -a -E '^(==[0-9]+==ERROR|SUMMARY|    #[0-9]|.*property violated|.*runtime error|Test unit written)' \
            "$log" |
            grep -v -E '\+0x[0-9a-f]+\)|sysdeps/|nptl/|stdlib/|csu/' |
            head -n 30 | sed 's/^/    /'
        head -n 10 "$B/logs/$t.findings" | sed 's/^/    artifact: /'
        [ "$found" -le 10 ] || echo "    ... and $((found - 10)) more"
    fi
    echo "$result" >"$B/logs/$t.summary"
done

# One line per target, together at the end (also in $B/logs/TARGET.summary).
for t in "$@"; do
    cat "$B/logs/$t.summary"
done
exit $status
