/*
 * resample.cu - 2x nearest and bilinear upsampling and 2x2 average pooling
 * (kernels/cpu/resample.c). Bilinear is PyTorch's align_corners=False rule,
 * computed with the reference's exact expression order: along the width,
 * then the height.
 */
#include "ops.cuh"

/* One thread per output element of (N*C, oh, ow); planes of x are ih x iw. */
static __global__ void nearest_kernel(const float *x, float *y, int ih, int iw,
                                      int oh, int ow, size_t count)
{
    NF_CUDA_FOR(i, count)
    {
        int ox = (int)(i % (size_t)ow), oy = (int)(i / ow % (size_t)oh);
        size_t p = i / ((size_t)ow * oh);
        y[i] = x[(p * ih + oy / 2) * iw + ox / 2];
    }
}

/* Source indices and weight of output index o for an input of n. */
static __device__ __forceinline__ void linear_source(int o, int n, int *i0,
                                                     int *i1, float *l)
{
    float s = ((float)o + 0.5f) * 0.5f - 0.5f;
    if (s < 0)
        s = 0;
    *i0 = (int)s;
    *i1 = *i0 < n - 1 ? *i0 + 1 : *i0;
    *l = s - (float)*i0;
}

static __global__ void bilinear_kernel(const float *x, float *y, int ih, int iw,
                                       int oh, int ow, size_t count)
{
    NF_CUDA_FOR(i, count)
    {
        int ox = (int)(i % (size_t)ow), oy = (int)(i / ow % (size_t)oh);
        size_t p = i / ((size_t)ow * oh);
        int y0, y1, x0, x1;
        float ly, lx;
        linear_source(oy, ih, &y0, &y1, &ly);
        linear_source(ox, iw, &x0, &x1, &lx);
        const float *r0 = x + (p * ih + y0) * iw;
        const float *r1 = x + (p * ih + y1) * iw;
        float top = (1 - lx) * r0[x0] + lx * r0[x1];
        float bot = (1 - lx) * r1[x0] + lx * r1[x1];
        y[i] = (1 - ly) * top + ly * bot;
    }
}

static __global__ void avgpool_kernel(const float *x, float *y, int ih, int iw,
                                      int oh, int ow, size_t count)
{
    NF_CUDA_FOR(i, count)
    {
        int ox = (int)(i % (size_t)ow), oy = (int)(i / ow % (size_t)oh);
        size_t p = i / ((size_t)ow * oh);
        const float *r0 = x + (p * ih + 2 * oy) * iw;
        const float *r1 = r0 + iw;
        y[i] =
            (r0[2 * ox] + r0[2 * ox + 1] + r1[2 * ox] + r1[2 * ox + 1]) / 4.0f;
    }
}

typedef void (*resample_fn)(const float *, float *, int, int, int, int, size_t);

static cudaError_t launch(resample_fn fn, const struct nf_cuda_tensor *x,
                          const struct nf_cuda_tensor *y, cudaStream_t s)
{
    size_t count = nf__cuda_numel(y);
    fn<<<nf__cuda_blocks(count), NF_CUDA_THREADS, 0, s>>>(
        x->data, y->data, x->h, x->w, y->h, y->w, count);
    return cudaGetLastError();
}

cudaError_t nf__cuda_upsample2x_nearest(const struct nf_cuda_tensor *x,
                                        const struct nf_cuda_tensor *y,
                                        cudaStream_t s)
{
    return launch(nearest_kernel, x, y, s);
}

cudaError_t nf__cuda_upsample2x_bilinear(const struct nf_cuda_tensor *x,
                                         const struct nf_cuda_tensor *y,
                                         cudaStream_t s)
{
    return launch(bilinear_kernel, x, y, s);
}

cudaError_t nf__cuda_avgpool2x2(const struct nf_cuda_tensor *x,
                                const struct nf_cuda_tensor *y, cudaStream_t s)
{
    return launch(avgpool_kernel, x, y, s);
}
