#!/bin/sh
# run.sh - nextframe's benchmarks (`make bench`): the compute kernels, the
# server under load against the Python baseline in the same run, memory
# per session, and the CUDA backend where a device exists. Results (JSON, text, SVG plots) go to $OUT
# (default build/bench); bench/RESULTS.md records them by hand, with the
# commands printed here.
#
#   sh bench/run.sh [--quick] [--long]
#
# --quick: 4-second runs instead of 10 (a smoke run; do not record it).
# --long:  also the 10-minute memory run (one stream at 30 fps, RSS every
#          10 s).
# Environment: BUILD (build), OUT (build/bench), MODEL
# (models/toon.safetensors: the server's default model), NF_BENCH_SECONDS.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-build/bench}
MODEL=${MODEL:-models/toon.safetensors}
SECS=${NF_BENCH_SECONDS:-10}
LONG=0
for a in "$@"; do
    case $a in
    --quick) SECS=4 ;;
    --long) LONG=1 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $a (see --help)" >&2; exit 2 ;;
    esac
done
PY=/usr/bin/python3
VTEST=/usr/share/doc/opencv-doc/examples/data/vtest.avi
mkdir -p "$OUT"
for p in nextframe nf-bench; do
    [ -x "$BUILD/$p" ] || { echo "run.sh: $BUILD/$p missing: run make first" >&2; exit 1; }
done
. bench/lib.sh
say() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "model: $MODEL"
} | tee "$OUT/machine.txt"

clip() { # NAME WxH FRAMES
    f=$OUT/$1.y4m
    [ -s "$f" ] || ffmpeg -nostdin -loglevel error -y -i "$VTEST" -frames:v "$3" \
        -vf "scale=$2" -pix_fmt yuv420p -f yuv4mpegpipe "$f"
    echo "$f"
}
VGA=$(clip vtest-640x480 640:480 150)
HD=$(clip vtest-1280x720 1280:720 150)

SRV=""
stop_srv() {
    [ -n "$SRV" ] && kill -TERM "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null || true
    SRV=""
}
trap stop_srv EXIT
# bench NAME LABEL CLIP STREAMS FPS [more nf-bench options]: one nf-bench
# run against $URL.
bench() {
    b_name=$1 b_label=$2 b_in=$3 b_n=$4 b_fps=$5
    shift 5
    echo "-- $b_name: $b_n stream(s), fps $b_fps ($(basename "$b_in"))${*:+, $*}"
    echo "   $BUILD/nf-bench --url URL --input $b_in --streams $b_n --fps $b_fps --seconds $SECS --label '$b_label' --json $OUT/$b_name.json${*:+ $*}"
    "$BUILD/nf-bench" --url "$URL" --input "$b_in" --streams "$b_n" --fps "$b_fps" \
        --seconds "$SECS" --label "$b_label" --json "$OUT/$b_name.json" --quiet "$@" \
        >"$OUT/$b_name.txt" 2>&1 || echo "   (nf-bench exited $?: see $OUT/$b_name.txt)"
    grep -E '^(server|throughput|latency|dropped):' "$OUT/$b_name.txt" | sed 's/^/   /'
}

say "compute: the model alone (nf-kernel-bench, oneDNN backend vs reference)"
if [ -x "$BUILD/nf-kernel-bench" ]; then
    # The reference backend only at 320x240 (it takes 1.2 s a frame at 720p).
    echo "   $BUILD/nf-kernel-bench --frames 30 --threads 1,2,0 --sizes 640x480,1280x720 --no-ref --layers $MODEL"
    "$BUILD/nf-kernel-bench" --frames 30 --threads 1,2,0 \
        --sizes 640x480,1280x720 --no-ref --layers "$MODEL" | tee "$OUT/kernel.txt"
    echo "   $BUILD/nf-kernel-bench --frames 10 --threads 2 --sizes 320x240 $MODEL"
    "$BUILD/nf-kernel-bench" --frames 10 --threads 2 --sizes 320x240 "$MODEL" | tee -a "$OUT/kernel.txt"
else
    echo "   skipped: no nf-kernel-bench (built only with oneDNN)"
fi

say "compute: PyTorch alone on the same model (bench/baselines/torch-compute.py)"
echo "   $PY bench/baselines/torch-compute.py $VGA --model $MODEL --sizes 640x480,320x240,1280x720 --json $OUT/torch-compute.json"
$PY bench/baselines/torch-compute.py "$VGA" --model "$MODEL" \
    --sizes 640x480,320x240,1280x720 --json "$OUT/torch-compute.json" 2>&1 |
    tee "$OUT/torch-compute.txt" || echo "   (torch-compute.py failed: is python3-torch installed?)"

for server in nextframe baseline; do
    say "server under load: $server"
    if [ $server = nextframe ]; then
        start_srv 300 "$OUT/srv-$server.log" "$BUILD/nextframe" --port 0 --model "$MODEL" ||
            { echo "run.sh: $server did not start" >&2; exit 1; }
    else
        start_srv 300 "$OUT/srv-$server.log" $PY bench/baselines/py-server.py --port 0 --model "$MODEL" ||
            { echo "run.sh: $server did not start" >&2; exit 1; }
    fi
    bench "$server-1x30-vga" "$server" "$VGA" 1 30
    bench "$server-3x30-vga" "$server" "$VGA" 3 30
    bench "$server-1x30-720p" "$server" "$HD" 1 30
    if [ $server = nextframe ]; then
        # The model at a smaller size than the camera's (PROTOCOL.md 5,
        # "scale"): what a machine too slow for the full size can serve.
        bench "$server-1x30-720p-scale-1_2" "$server at scale 1/2" "$HD" 1 30 --scale 1/2
        bench "$server-3x30-vga-scale-3_4" "$server at scale 3/4" "$VGA" 3 30 --scale 3/4
    fi
    for n in 1 2 3 4; do
        bench "$server-${n}xmax-vga" "$server" "$VGA" "$n" 0
    done
    if [ $server = nextframe ]; then
        say "memory per session (nextframe, 640x480 at 30 fps each)"
        echo "sessions rss_kib" >"$OUT/memory.txt"
        echo "0 $(rss_kb "$SRV")" | tee -a "$OUT/memory.txt"
        for n in 1 2 4 8; do
            "$BUILD/nf-bench" --url "$URL" --input "$VGA" --streams "$n" --fps 30 \
                --seconds 4 --warmup 2 --quiet >/dev/null 2>&1 &
            b=$!
            sleep 4
            echo "$n $(rss_kb "$SRV")" | tee -a "$OUT/memory.txt"
            wait $b || true
        done
        if [ $LONG = 1 ]; then
            say "memory over 10 minutes (one stream, 640x480 at 30 fps)"
            "$BUILD/nf-bench" --url "$URL" --input "$VGA" --streams 1 --fps 30 \
                --seconds 600 --quiet --json "$OUT/long.json" >"$OUT/long.txt" 2>&1 &
            b=$!
            echo "seconds rss_kib" >"$OUT/memory-long.txt"
            t=0
            while kill -0 $b 2>/dev/null; do
                r=$(rss_kb "$SRV")
                echo "$t $r" >>"$OUT/memory-long.txt"
                [ $((t % 60)) -eq 0 ] && echo "   $t of 600 s: RSS $r KiB"
                sleep 10
                t=$((t + 10))
            done
            wait $b || true
            tail -n 3 "$OUT/memory-long.txt"
            $PY bench/plot-rss.py "$OUT/memory-long.txt" -o "$OUT/memory-long.svg" \
                --title "nextframe RSS: one 640x480 stream at 30 fps, 10 minutes"
        fi
    fi
    stop_srv
done

say "the CUDA backend (build/nf-cuda-bench; SKIP without a device)"
echo "   $BUILD/nf-cuda-bench --seconds 1"
"$BUILD/nf-cuda-bench" --seconds 1 >"$OUT/cuda.txt" 2>&1 || echo "   nf-cuda-bench failed: $OUT/cuda.txt"
head -n 1 "$OUT/cuda.txt"
if grep -q '\.fps:' "$OUT/cuda.txt"; then
    $PY bench/plot-gpu.py "$OUT/cuda.txt" -o "$OUT/gpu-throughput.svg"
fi

say "plots"
$PY bench/plot-bench.py "$OUT"/nextframe-*xmax-vga.json "$OUT"/baseline-*xmax-vga.json \
    -o "$OUT/throughput-vga.svg"
$PY bench/plot-bench.py "$OUT/nextframe-1x30-vga.json" "$OUT/baseline-1x30-vga.json" \
    "$OUT/nextframe-3x30-vga.json" "$OUT/baseline-3x30-vga.json" -o "$OUT/latency-30fps-vga.svg"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
echo "run.sh: results in $OUT"
