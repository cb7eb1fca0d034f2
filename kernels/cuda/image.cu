/*
 * image.cu - 8-bit interleaved RGB frames to and from the planar floats the
 * graph works on, with the edge padding and cropping of the size multiple
 * (kernels/cpu/image.c), and the clamp that turns an output into a cache
 * entry.
 *
 * v / 255 is an IEEE division on both sides (nvcc's default -prec-div=true)
 * and clamp01(v) * 255 + 0.5 is not contracted into an FMA (-fmad=false),
 * so both conversions are bit-identical to the reference's.
 */
#include "ops.cuh"

static __global__ void from_rgb_kernel(const uint8_t *rgb, int width,
                                       int height, float *dst, int h, int w)
{
    size_t plane = (size_t)h * w;
    NF_CUDA_FOR(i, plane)
    {
        int x = (int)(i % (size_t)w), y = (int)(i / (size_t)w);
        int sx = x < width ? x : width - 1, sy = y < height ? y : height - 1;
        const uint8_t *px = rgb + ((size_t)sy * width + sx) * 3;
        dst[i] = (float)px[0] / 255.0f;
        dst[plane + i] = (float)px[1] / 255.0f;
        dst[2 * plane + i] = (float)px[2] / 255.0f;
    }
}

static __global__ void to_rgb_kernel(const float *src, int h, int w,
                                     uint8_t *rgb, int width, int height)
{
    size_t plane = (size_t)h * w, count = (size_t)width * height;
    NF_CUDA_FOR(i, count)
    {
        int x = (int)(i % (size_t)width), y = (int)(i / (size_t)width);
        const float *r = src + (size_t)y * w + x;
        for (int c = 0; c < 3; c++)
            rgb[3 * i + c] =
                (uint8_t)(nf__cuda_clamp01(r[c * plane]) * 255.0f + 0.5f);
    }
}

static __global__ void clamp01_kernel(const float *src, float *dst,
                                      size_t count)
{
    NF_CUDA_FOR(i, count)
    {
        dst[i] = nf__cuda_clamp01(src[i]);
    }
}

cudaError_t nf__cuda_image_from_rgb(const uint8_t *rgb, int width, int height,
                                    float *dst, int h, int w, cudaStream_t s)
{
    size_t plane = (size_t)h * w;
    from_rgb_kernel<<<nf__cuda_blocks(plane), NF_CUDA_THREADS, 0, s>>>(
        rgb, width, height, dst, h, w);
    return cudaGetLastError();
}

cudaError_t nf__cuda_image_to_rgb(const float *src, int h, int w, uint8_t *rgb,
                                  int width, int height, cudaStream_t s)
{
    size_t count = (size_t)width * height;
    to_rgb_kernel<<<nf__cuda_blocks(count), NF_CUDA_THREADS, 0, s>>>(
        src, h, w, rgb, width, height);
    return cudaGetLastError();
}

cudaError_t nf__cuda_clamp01(const float *src, float *dst, size_t count,
                             cudaStream_t s)
{
    clamp01_kernel<<<nf__cuda_blocks(count), NF_CUDA_THREADS, 0, s>>>(src, dst,
                                                                      count);
    return cudaGetLastError();
}
