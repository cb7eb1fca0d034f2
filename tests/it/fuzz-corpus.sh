# fuzz-corpus: the libFuzzer harnesses (tests/fuzz/) build with clang, and
# every committed seed runs through its harness once without a crash, a
# sanitizer report, a leak or a broken property. No fuzzing here (that is
# `make fuzz`, tests/fuzz/README.md). Skips without clang or its libFuzzer
# runtime.
. tests/lib.sh
command -v clang >/dev/null 2>&1 || skip "SKIP: clang not installed (the fuzz harnesses need it)"
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)\n{ return 0; }\n' >"$NF_TMP/probe.c"
clang -fsanitize=fuzzer "$NF_TMP/probe.c" -o "$NF_TMP/probe" >"$NF_TMP/probe.log" 2>&1 ||
    skip "SKIP: clang has no libFuzzer runtime ($(tail -n 1 "$NF_TMP/probe.log"))"

make --no-print-directory BUILD="$BUILD" fuzz-build >"$NF_TMP/build.log" 2>&1 || {
    cat "$NF_TMP/build.log"
    fail "make fuzz-build failed"
}
total=0
for t in wire control model jpeg; do
    n=$(find "tests/fuzz/corpus/$t" -type f | wc -l)
    [ "$n" -gt 0 ] || fail "no seeds in tests/fuzz/corpus/$t"
    # Given files rather than a folder, libFuzzer runs each once and stops.
    # The JPEG limits are those of make fuzz, so a seed that allocates too
    # much fails here too.
    # shellcheck disable=SC2046
    "$BUILD/fuzz/fuzz-$t" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=256 \
        $(find "tests/fuzz/corpus/$t" -type f | sort) >"$NF_TMP/$t.log" 2>&1 || {
        grep -a -E 'Running:|ERROR|SUMMARY|property violated|runtime error|    #[0-9]' \
            "$NF_TMP/$t.log" | tail -n 40
        fail "a seed of tests/fuzz/corpus/$t failed"
    }
    ran=$(grep -c '^Executed ' "$NF_TMP/$t.log")
    [ "$ran" -eq "$n" ] || fail "fuzz-$t ran $ran of $n seeds"
    echo "fuzz-$t: $n seeds replayed"
    total=$((total + n))
done
echo "fuzz-corpus: $total seeds, no findings"
exit 0
