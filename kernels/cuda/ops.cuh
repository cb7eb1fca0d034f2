/*
 * ops.cuh - the CUDA backend's kernels (implementer-only, kernels/cuda/).
 *
 * Every value is a dense NCHW float tensor (struct nf_cuda_tensor). The
 * launchers enqueue on the given stream and return the launch's
 * cudaError_t; they never synchronize. Shapes have been checked by the
 * graph validator (graph.c). The per-element math mirrors the reference
 * kernels of kernels/cpu/ operation by operation; with -fmad=false (the
 * Makefile) nvcc rounds exactly as gcc does, so everything but the
 * convolutions, instance norm's reductions and expf/tanhf matches the
 * reference bit for bit (README.md).
 */
#ifndef NF_CUDA_OPS_CUH
#define NF_CUDA_OPS_CUH

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>

extern "C" {
#include "graph.h"
}

/* A view of one value: N x C x H x W floats, dense, in device memory. */
struct nf_cuda_tensor {
    float *data; /* (N, C, H, W) */
    int n, c, h, w;
};

static inline size_t nf__cuda_numel(const struct nf_cuda_tensor *t)
{
    return (size_t)t->n * t->c * t->h * t->w;
}

/* Threads per block and the grid of a grid-stride loop over count items. */
#define NF_CUDA_THREADS 256
static inline unsigned nf__cuda_blocks(size_t count)
{
    size_t b = (count + NF_CUDA_THREADS - 1) / NF_CUDA_THREADS;
    return (unsigned)(b < 1 ? 1 : b > 65536 ? 65536 : b);
}

#define NF_CUDA_FOR(i, count)                                                  \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;             \
         i < (count); i += (size_t)gridDim.x * blockDim.x)

/* Clamps to [0, 1]; NaN becomes 0 (nf__cpu_clamp01). */
static __device__ __forceinline__ float nf__cuda_clamp01(float v)
{
    return v > 0 ? (v < 1 ? v : 1) : 0;
}

/* An activation (kernels/cpu/activation.c), selected at run time. */
struct nf_cuda_act {
    enum nf_op op; /* NF_OP_RELU .. NF_OP_CLAMP, or NF_OP_COUNT: none. */
    float alpha, min, max;
};

static __device__ __forceinline__ float nf__cuda_act_apply(struct nf_cuda_act a,
                                                           float x)
{
    switch (a.op) {
    case NF_OP_RELU:
        return x > 0 ? x : 0.0f;
    case NF_OP_LEAKY_RELU:
        return x > 0 ? x : a.alpha * x;
    case NF_OP_SIGMOID:
        return 1.0f / (1.0f + expf(-x));
    case NF_OP_TANH:
        return tanhf(x);
    case NF_OP_CLAMP:
        return fminf(fmaxf(x, a.min), a.max);
    default:
        return x;
    }
}

/* The activation of node n (NF_OP_COUNT if n is NULL). */
struct nf_cuda_act nf__cuda_act_of(const struct nf_node *n);

/* activation.cu: y = act(x), same shape. */
cudaError_t nf__cuda_activation(struct nf_cuda_act a,
                                const struct nf_cuda_tensor *x,
                                const struct nf_cuda_tensor *y, cudaStream_t s);

/* conv2d.cu helpers (the convolution itself is in the step runner). */

/* xp (N, C, H + 2p, W + 2p) = x with PyTorch's reflect padding p. */
cudaError_t nf__cuda_pad_reflect(const struct nf_cuda_tensor *x, int p,
                                 float *xp, cudaStream_t s);

/* y = act(y + bias[c]) in place; bias may be NULL (device, (C)). */
cudaError_t nf__cuda_bias_act(const struct nf_cuda_tensor *y, const float *bias,
                              struct nf_cuda_act a, cudaStream_t s);

/* elementwise.cu */
cudaError_t nf__cuda_add(const struct nf_cuda_tensor *a,
                         const struct nf_cuda_tensor *b,
                         const struct nf_cuda_tensor *y, cudaStream_t s);
cudaError_t nf__cuda_mul(const struct nf_cuda_tensor *a,
                         const struct nf_cuda_tensor *b,
                         const struct nf_cuda_tensor *y, cudaStream_t s);
/* y[c] = x[c] * weight[c] + bias[c]; weight, bias device (C) or NULL. */
cudaError_t nf__cuda_scale_shift(const float *weight, const float *bias,
                                 const struct nf_cuda_tensor *x,
                                 const struct nf_cuda_tensor *y,
                                 cudaStream_t s);
/* y = xs[0..n-1] stacked along channels, per batch item. */
cudaError_t nf__cuda_concat(const struct nf_cuda_tensor *xs, int n,
                            const struct nf_cuda_tensor *y, cudaStream_t s);

/* resample.cu */
cudaError_t nf__cuda_upsample2x_nearest(const struct nf_cuda_tensor *x,
                                        const struct nf_cuda_tensor *y,
                                        cudaStream_t s);
cudaError_t nf__cuda_upsample2x_bilinear(const struct nf_cuda_tensor *x,
                                         const struct nf_cuda_tensor *y,
                                         cudaStream_t s);
cudaError_t nf__cuda_avgpool2x2(const struct nf_cuda_tensor *x,
                                const struct nf_cuda_tensor *y, cudaStream_t s);

/* norm.cu: weight, bias device (C) or NULL; statistics in double. */
cudaError_t nf__cuda_instance_norm(const float *weight, const float *bias,
                                   float eps, const struct nf_cuda_tensor *x,
                                   const struct nf_cuda_tensor *y,
                                   cudaStream_t s);

/* shuffle.cu: factor r, PyTorch channel order c * r * r + i * r + j. */
cudaError_t nf__cuda_pixel_shuffle(int r, const struct nf_cuda_tensor *x,
                                   const struct nf_cuda_tensor *y,
                                   cudaStream_t s);
cudaError_t nf__cuda_pixel_unshuffle(int r, const struct nf_cuda_tensor *x,
                                     const struct nf_cuda_tensor *y,
                                     cudaStream_t s);

/* image.cu */

/*
 * rgb: width x height packed 8-bit RGB (stride 3 * width) -> dst (3, h, w)
 * floats v / 255, rows and columns past the image repeating its last row
 * and column (nf__cpu_image_from_rgb).
 */
cudaError_t nf__cuda_image_from_rgb(const uint8_t *rgb, int width, int height,
                                    float *dst, int h, int w, cudaStream_t s);

/*
 * src (3, h, w) -> rgb, the top-left width x height corner, packed: clamp
 * to [0, 1], times 255, rounded half up (nf__cpu_image_to_rgb).
 */
cudaError_t nf__cuda_image_to_rgb(const float *src, int h, int w, uint8_t *rgb,
                                  int width, int height, cudaStream_t s);

/* dst[i] = clamp01(src[i]) for i < count; src may equal dst. */
cudaError_t nf__cuda_clamp01(const float *src, float *dst, size_t count,
                             cudaStream_t s);

/* correct.cu (kernels/correct.h) */

/*
 * Each of the k entries of ring ((k, 3, h, w)) decays toward frame
 * ((3, h, w)) with beta = decay or map (height, width; device, may be NULL).
 */
cudaError_t nf__cuda_corr_decay(float *ring, int k, const float *frame, int h,
                                int w, const float *map, float decay, int width,
                                int height, cudaStream_t s);

/* dst = src + the offset field grid ((3, gh, gw), device), (3, h, w). */
cudaError_t nf__cuda_corr_offset(const float *src, float *dst, int h, int w,
                                 const float *grid, int gw, int gh, int width,
                                 int height, cudaStream_t s);

#endif /* NF_CUDA_OPS_CUH */
