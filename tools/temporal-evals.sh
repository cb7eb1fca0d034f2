#!/bin/sh
# temporal-evals.sh - the long-run evaluations of docs/TEMPORAL.md section 5:
# every given model over vtest.avi at 320x240, looped to N frames, with and
# without drift correction; CSVs, summaries and per-run plots go to DIR, the
# combined plot (with vs without) to docs/img/temporal-MODEL-320x240.svg.
#
#   sh tools/temporal-evals.sh [-n FRAMES] [-j JOBS] [-o DIR] MODEL...
#
# MODEL is a name in models/ (toon) or a path. FRAMES defaults to 100000,
# JOBS (runs at a time, each with one backend thread) to 2, DIR to
# build/temporal. Progress: each run's last progress line, every minute.
set -eu
cd "$(dirname "$0")/.."
FRAMES=100000 JOBS=2 DIR=build/temporal BUILD=${BUILD:-build}
usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit "$1"
}
while getopts n:j:o:h opt; do
    case $opt in
    n) FRAMES=$OPTARG ;;
    j) JOBS=$OPTARG ;;
    o) DIR=$OPTARG ;;
    h) usage 0 ;;
    *) usage 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || usage 2
[ -x "$BUILD/nf-eval" ] || { echo "temporal-evals: build $BUILD/nf-eval first (make)" >&2; exit 1; }
mkdir -p "$DIR" docs/img
IN=$DIR/vtest-320x240.y4m
if [ ! -s "$IN" ]; then
    ffmpeg -nostdin -loglevel error -y \
        -i /usr/share/doc/opencv-doc/examples/data/vtest.avi \
        -vf scale=320x240 -pix_fmt yuv420p -f yuv4mpegpipe "$IN.tmp"
    mv "$IN.tmp" "$IN"
fi

# One run: NAME MODEL on|off. Threads 1: JOBS runs share the cores.
run() {
    flag=""
    [ "$3" = off ] && flag=--no-correction
    "$BUILD/nf-eval" --model "$2" --input "$IN" --frames "$FRAMES" --loop \
        --threads 1 $flag --label "$1, correction $3" \
        --csv "$DIR/$1-$3.csv" --plot "$DIR/$1-$3.svg" \
        >"$DIR/$1-$3.txt" 2>"$DIR/$1-$3.log"
}

jobs_list=""
for m in "$@"; do
    case $m in */*) path=$m ;; *) path=models/$m.safetensors ;; esac
    name=$(basename "$path" .safetensors)
    [ -f "$path" ] || { echo "temporal-evals: no model $path" >&2; exit 1; }
    jobs_list="$jobs_list $name:$path:on $name:$path:off"
done

running=0
pids=""
for j in $jobs_list; do
    name=${j%%:*} rest=${j#*:}
    path=${rest%:*} mode=${rest##*:}
    echo "temporal-evals: $name, correction $mode, $FRAMES frames -> $DIR/$name-$mode.txt"
    run "$name" "$path" "$mode" &
    pids="$pids $!"
    running=$((running + 1))
    while [ "$running" -ge "$JOBS" ]; do
        sleep 60
        for f in "$DIR"/*.log; do
            [ -s "$f" ] && printf '  %s: %s\n' "$(basename "$f" .log)" "$(tr '\r' '\n' <"$f" | tail -n 1)"
        done
        running=0
        for p in $pids; do kill -0 "$p" 2>/dev/null && running=$((running + 1)); done
    done
done
failed=0
for p in $pids; do wait "$p" || failed=1; done

for m in "$@"; do
    case $m in */*) path=$m ;; *) path=models/$m.safetensors ;; esac
    name=$(basename "$path" .safetensors)
    "$BUILD/nf-eval" --from-csv "$DIR/$name-on.csv" --compare "$DIR/$name-off.csv" \
        --label "$name, with correction" --compare-label "without correction" \
        --plot "docs/img/temporal-$name-320x240.svg" >/dev/null
    for mode in on off; do
        echo "== $name, correction $mode"
        grep -E '^(drift_first_window|drift_last_window|drift_ratio|drift_max|psnr_mean|flicker_out|flicker_anchor|flicker_ratio|resets_total|nonfinite|bounds):' \
            "$DIR/$name-$mode.txt"
    done
done
[ "$failed" = 0 ] || echo "temporal-evals: a run failed (bounds missed exit non-zero too); see $DIR/*.txt" >&2
exit 0
