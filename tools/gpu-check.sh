#!/bin/bash
# gpu-check.sh - the CUDA checks on a GPU machine, from what
# tools/gpu-pack.sh put in .gpu/. Steps, each with a time limit, logs in
# $OUT (default /tmp/gpu-check), a summary on stdout:
#   test       build/tests/test-backend-cuda (every CUDA test)
#   bench      nf-cuda-bench (arguments in $BENCH_ARGS, default
#              --seconds 0.5: every stream count, size and default mode)
#   profile    nf-cuda-bench --modes nograph,half, NF_CUDA_PROFILE=1: each
#              step's time, 1 and 8 streams at 640x480 and 1280x720
#   server     the server on --backend auto (default codec threads) under
#              nf-bench: 1, 8 and 32 streams at 30 fps and 32 as fast as it
#              answers; then 32 with NF_CUDA_PINNED=0 (images on the heap)
#              and 32 with --codec-threads 1
#   fault      the server with NF_CUDA_FAULT=50 (every 50th forward pass
#              fails with a real CUDA error) under 4 streams: it must keep
#              serving, the failed frames reported as errors
#   sanitizer  the test under compute-sanitizer (memcheck, leaks)
#
#   tools/gpu-check.sh [--help] [STEP ...]     (default: test bench server
#                                               sanitizer)
set -u
case "${1:-}" in
-h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
cd "$(dirname "$0")/.."
G=$PWD/.gpu
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
[ -x "$G/build/nextframe" ] || { echo "gpu-check: run tools/gpu-pack.sh first" >&2; exit 2; }
STEPS=${*:-test bench server sanitizer}

cudnn=$(find / -xdev \( -name 'libcudnn.so.9' -o -name 'libcudnn.so.9.*' \) 2>/dev/null | head -1)
[ -n "$cudnn" ] || cudnn=$(find / \( -name 'libcudnn.so.9' -o -name 'libcudnn.so.9.*' \) -not -path '/proc/*' 2>/dev/null | head -1)
export LD_LIBRARY_PATH="$G/lib${cudnn:+:$(dirname "$cudnn")}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NF_CUDA_LIB=$G/build/libnf-cuda.so
# libwebsockets looks for its libuv plugin in the directory it was built
# for (FACTS.md); a machine without the package gets the packed one.
plugin=/usr/lib/x86_64-linux-gnu/libwebsockets-evlib_uv.so
[ -e $plugin ] || { mkdir -p "$(dirname $plugin)" && cp "$G/lib/$(basename $plugin)" $plugin; } ||
    echo "gpu-check: cannot install $plugin: the server steps will fail"
date -u
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "cudnn: ${cudnn:-not found}; CPUs: $(nproc)"
ldd "$NF_CUDA_LIB" "$G/build/nextframe" | grep 'not found'

# step NAME SECONDS CMD...: runs CMD with a limit, output appended to
# $OUT/NAME.log.
step() {
    local name=$1 t=$2
    shift 2
    echo "=== $name (limit ${t}s): $*" | tee -a "$OUT/$name.log"
    local t0=$SECONDS
    timeout -k 5 "$t" "$@" >>"$OUT/$name.log" 2>&1
    local rc=$?
    echo "=== $name: rc $rc in $((SECONDS - t0)) s"
    return $rc
}

# serve LOG ARGS...: starts the server in the background ($srv).
serve() {
    local log=$1
    shift
    "$G/build/nextframe" --backend auto --port 18080 --max-sessions 64 \
        --max-sessions-per-addr 64 --model models/toon.safetensors "$@" >"$OUT/$log" 2>&1 &
    srv=$!
    for _ in $(seq 100); do grep -q 'listening on' "$OUT/$log" && break; sleep 0.1; done
}

bench_client() {
    step nfbench 40 "$G/build/nf-bench" --url ws://127.0.0.1:18080/v1/stream \
        --input /tmp/clip.y4m --clip-frames 20 --seconds 6 --warmup 2 --quiet "$@"
    tail -n 12 "$OUT/nfbench.log" | grep -v '^$'
}

for s in $STEPS; do
    case $s in
    test)
        step test 150 "$G/build/tests/test-backend-cuda"
        grep -E '^(PASS|FAIL|SKIP)|8-bit|passes|failed' "$OUT/test.log" | head -40
        ;;
    bench)
        # shellcheck disable=SC2086
        step cudabench 240 "$G/build/nf-cuda-bench" ${BENCH_ARGS:---seconds 0.5}
        grep '\.fps\|mean_batch' "$OUT/cudabench.log" | head -n 90
        ;;
    profile)
        NF_CUDA_PROFILE=1 step profile 120 "$G/build/nf-cuda-bench" --modes nograph,half \
            --streams 1,8 --seconds 0.5
        grep -E "nf_cuda profile|\\.fps" "$OUT/profile.log"
        ;;
    server)
        gunzip -c "$G/clip.y4m.gz" >/tmp/clip.y4m
        serve server.log
        python3 -c 'import urllib.request as u; print("readyz:", u.urlopen("http://127.0.0.1:18080/readyz").read().decode().split())' 2>&1 | tail -1
        for n in 1 8 32; do bench_client --streams $n --fps 30; done
        bench_client --streams 32 --fps 0
        kill -TERM $srv; wait $srv; echo "server exit $?"
        head -n 3 "$OUT/server.log"
        NF_CUDA_PINNED=0 serve server-heap.log
        bench_client --streams 32 --fps 30
        bench_client --streams 32 --fps 0
        kill -TERM $srv; wait $srv; echo "server (heap images) exit $?"
        serve server-c1.log --codec-threads 1
        bench_client --streams 32 --fps 0
        kill -TERM $srv; wait $srv; echo "server (1 codec thread) exit $?"
        head -n 3 "$OUT/server-c1.log"
        ;;
    fault)
        gunzip -c "$G/clip.y4m.gz" >/tmp/clip.y4m
        NF_CUDA_FAULT=50 serve server-fault.log
        bench_client --streams 4 --fps 30
        python3 -c 'import urllib.request as u; print("after:", u.urlopen("http://127.0.0.1:18080/readyz").read().decode().split())' 2>&1 | tail -1
        kill -TERM $srv; wait $srv; echo "server exit $?"
        grep -c 'NF_CUDA_FAULT' "$OUT/server-fault.log"
        head -n 4 "$OUT/server-fault.log"
        ;;
    sanitizer)
        command -v compute-sanitizer >/dev/null || { echo "no compute-sanitizer"; continue; }
        step sanitizer 120 compute-sanitizer --tool memcheck --leak-check full \
            "$G/build/tests/test-backend-cuda" backend_cuda_matches_cpu
        tail -n 3 "$OUT/sanitizer.log"
        ;;
    *) echo "gpu-check: unknown step $s (see --help)" >&2; exit 2 ;;
    esac
done
