#!/bin/sh
# temporal-bound.sh - the long-run bound of issue 4, shortened: nf-eval
# streams the default model over 100 frames of vtest.avi at 160x120, looped
# to 3000 frames, with its drift correction on, and --check asserts the
# bounds of docs/TEMPORAL.md: the mean drift of the last window (300 frames,
# three loops) at most 1.10 times that of the first, no NaN or infinite
# value, and flicker on static pixels at most half the anchor's. The window
# is a whole number of loops so that both windows see the same pictures.
# The reference backend keeps the run deterministic on any machine. Then
# the same for the served default model, toon, on the best CPU backend
# (oneDNN when built).
. "$(dirname "$0")/../lib.sh"

[ -x "$BUILD/nf-eval" ] || fail "$BUILD/nf-eval is missing (make)"
IN=$(clip vtest-100-160x120 100 160x120)
"$BUILD/nf-eval" --model models/default.safetensors --input "$IN" \
    --frames 3000 --loop --window 300 --backend ref --quiet --check \
    --csv "$NF_TMP/run.csv" --plot "$NF_TMP/run.svg" >"$NF_TMP/summary.txt"
rc=$?
cat "$NF_TMP/summary.txt"
[ $rc -eq 0 ] || fail "nf-eval --check: the bounds do not hold (status $rc)"
[ "$(wc -l <"$NF_TMP/run.csv")" -eq 3001 ] || fail "CSV does not have 3000 rows"
grep -q '</svg>' "$NF_TMP/run.svg" || fail "SVG plot is incomplete"

"$BUILD/nf-eval" --model models/toon.safetensors --input "$IN" \
    --frames 3000 --loop --window 300 --quiet --check \
    --csv "$NF_TMP/toon.csv" --plot "$NF_TMP/toon.svg" >"$NF_TMP/toon.txt"
rc=$?
cat "$NF_TMP/toon.txt"
[ $rc -eq 0 ] || fail "nf-eval --check, toon: the bounds do not hold (status $rc)"
exit 0
