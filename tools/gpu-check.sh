#!/bin/bash
# gpu-check.sh - the CUDA checks on a GPU machine, from what
# tools/gpu-pack.sh put in .gpu/: the device, backend_cuda_matches_cpu,
# nf-cuda-bench, the server on --backend auto with nf-bench over loopback,
# and the test under compute-sanitizer. Each step has a time limit; logs go
# to $OUT (default /tmp/gpu-check) and a summary to stdout.
#
#   tools/gpu-check.sh [--help] [--quick]
#
# --quick: the test and the benchmark only, with shorter points.
set -u
case "${1:-}" in
-h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
QUICK=0
[ "${1:-}" = --quick ] && QUICK=1
cd "$(dirname "$0")/.."
G=$PWD/.gpu
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
[ -x "$G/build/nextframe" ] || { echo "gpu-check: run tools/gpu-pack.sh first" >&2; exit 2; }

cudnn=$(find / -xdev \( -name 'libcudnn.so.9' -o -name 'libcudnn.so.9.*' \) 2>/dev/null | head -1)
[ -n "$cudnn" ] || cudnn=$(find / \( -name 'libcudnn.so.9' -o -name 'libcudnn.so.9.*' \) -not -path '/proc/*' 2>/dev/null | head -1)
export LD_LIBRARY_PATH="$G/lib${cudnn:+:$(dirname "$cudnn")}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NF_CUDA_LIB=$G/build/libnf-cuda.so
# libwebsockets looks for its libuv plugin in the directory it was built
# for (FACTS.md); a machine without the package gets the packed one.
plugin=/usr/lib/x86_64-linux-gnu/libwebsockets-evlib_uv.so
[ -e $plugin ] || { mkdir -p "$(dirname $plugin)" && cp "$G/lib/$(basename $plugin)" $plugin; } ||
    echo "gpu-check: cannot install $plugin: the server steps will fail"
{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    echo "cudnn: ${cudnn:-not found}"
    echo "unresolved:"; ldd "$NF_CUDA_LIB" "$G/build/nextframe" | grep 'not found'
    nproc
} >/tmp/gpu-env.log 2>&1
cat /tmp/gpu-env.log

# step NAME SECONDS CMD...: runs CMD with a limit, log in $OUT/NAME.log.
step() {
    local name=$1 t=$2
    shift 2
    echo "=== $name (limit ${t}s): $*"
    local t0=$SECONDS
    timeout -k 5 "$t" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    echo "=== $name: rc $rc in $((SECONDS - t0)) s"
    return $rc
}

step test 150 "$G/build/tests/test-backend-cuda"
grep -E '^(PASS|FAIL|SKIP)|worst|8-bit|cuda:|auto:|error|Error' "$OUT/test.log" | head -60

secs=0.5
[ $QUICK = 1 ] && secs=0.2
step cudabench 200 "$G/build/nf-cuda-bench" --seconds $secs
grep '\.fps\|mean_batch' "$OUT/cudabench.log" | head -n 90
[ $QUICK = 1 ] && exit 0

# The server, chosen by --backend auto, with nf-bench over loopback.
gunzip -c "$G/clip.y4m.gz" >/tmp/clip.y4m
"$G/build/nextframe" --backend auto --port 18080 --max-sessions 64 \
    --max-sessions-per-addr 64 --model models/toon.safetensors >"$OUT/server.log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -q 'listening on' "$OUT/server.log" && break; sleep 0.1; done
python3 -c 'import urllib.request as u; print("readyz:", u.urlopen("http://127.0.0.1:18080/readyz").read().decode())' 2>&1
for n in 1 8 32; do
    step "nfbench-$n" 40 "$G/build/nf-bench" --url ws://127.0.0.1:18080/v1/stream \
        --input /tmp/clip.y4m --clip-frames 20 --streams $n --fps 30 --seconds 6 --warmup 2 --quiet
    head -n 2 "$OUT/nfbench-$n.log"
    tail -n 12 "$OUT/nfbench-$n.log"
done
kill -TERM $srv
wait $srv
echo "server exit $?"
head -n 20 "$OUT/server.log"

if command -v compute-sanitizer >/dev/null; then
    step sanitizer 120 compute-sanitizer --tool memcheck --leak-check full \
        "$G/build/tests/test-backend-cuda" backend_cuda_matches_cpu
    tail -n 30 "$OUT/sanitizer.log"
fi
