#!/bin/sh
# gpu-pack.sh - puts what tools/gpu-check.sh needs into .gpu/ (ignored by git):
# the binaries built here, the shared libraries they need beyond glibc and
# libstdc++, and a short real clip, so that a GPU machine with a driver and
# cuDNN but no build dependencies can run the CUDA checks.
#
#   tools/gpu-pack.sh [--help]
#
# Then copy the repository with .gpu/ to the GPU machine and run
# tools/gpu-check.sh there (kernels/cuda/README.md, "How to test on a GPU").
set -eu
case "${1:-}" in
-h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
cd "$(dirname "$0")/.."
echo "gpu-pack: building (make all)" >&2
make -s -j"$(nproc)" all build/tests/test-backend-cuda >&2
rm -rf .gpu
mkdir -p .gpu/build/tests .gpu/lib
cp build/nextframe build/nf-bench build/nf-cuda-bench build/libnf-cuda.so .gpu/build/
cp build/tests/test-backend-cuda .gpu/build/tests/
strip --strip-debug .gpu/build/* .gpu/build/tests/* 2>/dev/null || true
# Libraries the GPU machine may lack: everything ldd resolves outside the C
# runtime; cuDNN comes from the machine (tools/gpu-check.sh finds it).
for f in .gpu/build/nextframe .gpu/build/nf-bench .gpu/build/tests/test-backend-cuda; do
    ldd "$f" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
    case "$(basename "$lib")" in
    libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | libstdc++* | libgcc_s*) ;;
    *) cp -L "$lib" .gpu/lib/ ;;
    esac
done
# libwebsockets loads its libuv glue as a plugin from its own directory.
cp /usr/lib/x86_64-linux-gnu/libwebsockets-evlib_uv.so .gpu/lib/
echo "gpu-pack: clip (20 frames of vtest.avi at 640x480)" >&2
ffmpeg -loglevel error -y -i /usr/share/doc/opencv-doc/examples/data/vtest.avi \
    -vf scale=640:480 -frames:v 20 -pix_fmt yuv420p -f yuv4mpegpipe - | gzip -1 >.gpu/clip.y4m.gz
du -sh .gpu >&2
