/*
 * correct.cu - drift correction on the device: the decay of the cache
 * toward the input before the graph, and the offset field added to the
 * output after it. The per-element math is kernels/correct.h's NF_HD
 * functions, the very code the CPU backends run (compiled here as device
 * code; -fmad=false keeps nvcc from fusing its multiply-adds, so the
 * results are bit-identical).
 */
#include "ops.cuh"

extern "C" {
#include "correct.h"
}

/* One thread per pixel of one ring entry; entries along blockIdx.y. */
static __global__ void decay_kernel(float *ring, const float *frame, int h,
                                    int w, const float *map, float decay,
                                    int width, int height)
{
    size_t plane = (size_t)h * w;
    float *cache = ring + (size_t)blockIdx.y * 3 * plane;
    NF_CUDA_FOR(i, plane)
    {
        int x = (int)(i % (size_t)w), y = (int)(i / (size_t)w);
        float beta = nf_corr_beta_at(map, decay, x, y, width, height);
        for (int c = 0; c < 3; c++) {
            size_t k = c * plane + i;
            cache[k] = nf_corr_decay(cache[k], frame[k], beta);
        }
    }
}

static __global__ void offset_kernel(const float *src, float *dst, int h, int w,
                                     const float *grid, int gw, int gh,
                                     int width, int height)
{
    size_t plane = (size_t)h * w;
    NF_CUDA_FOR(i, plane)
    {
        int x = (int)(i % (size_t)w), y = (int)(i / (size_t)w);
        for (int c = 0; c < 3; c++)
            dst[c * plane + i] =
                src[c * plane + i] +
                nf_corr_offset_at(grid, gw, gh, c, x, y, width, height);
    }
}

cudaError_t nf__cuda_corr_decay(float *ring, int k, const float *frame, int h,
                                int w, const float *map, float decay, int width,
                                int height, cudaStream_t s)
{
    if (k == 0)
        return cudaSuccess;
    dim3 grid(nf__cuda_blocks((size_t)h * w), (unsigned)k);
    decay_kernel<<<grid, NF_CUDA_THREADS, 0, s>>>(ring, frame, h, w, map, decay,
                                                  width, height);
    return cudaGetLastError();
}

cudaError_t nf__cuda_corr_offset(const float *src, float *dst, int h, int w,
                                 const float *grid, int gw, int gh, int width,
                                 int height, cudaStream_t s)
{
    offset_kernel<<<nf__cuda_blocks((size_t)h * w), NF_CUDA_THREADS, 0, s>>>(
        src, dst, h, w, grid, gw, gh, width, height);
    return cudaGetLastError();
}
