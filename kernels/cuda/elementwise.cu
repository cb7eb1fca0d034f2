/*
 * elementwise.cu - add and mul of two same-shaped values, scale_shift (the
 * per-channel affine map y[c] = x[c] * weight[c] + bias[c]) and concat
 * along channels (kernels/cpu/elementwise.c, concat.c).
 */
#include "ops.cuh"

static __global__ void add_kernel(const float *a, const float *b, float *y,
                                  size_t count)
{
    NF_CUDA_FOR(i, count)
    {
        y[i] = a[i] + b[i];
    }
}

static __global__ void mul_kernel(const float *a, const float *b, float *y,
                                  size_t count)
{
    NF_CUDA_FOR(i, count)
    {
        y[i] = a[i] * b[i];
    }
}

cudaError_t nf__cuda_add(const struct nf_cuda_tensor *a,
                         const struct nf_cuda_tensor *b,
                         const struct nf_cuda_tensor *y, cudaStream_t s)
{
    size_t count = nf__cuda_numel(y);
    add_kernel<<<nf__cuda_blocks(count), NF_CUDA_THREADS, 0, s>>>(
        a->data, b->data, y->data, count);
    return cudaGetLastError();
}

cudaError_t nf__cuda_mul(const struct nf_cuda_tensor *a,
                         const struct nf_cuda_tensor *b,
                         const struct nf_cuda_tensor *y, cudaStream_t s)
{
    size_t count = nf__cuda_numel(y);
    mul_kernel<<<nf__cuda_blocks(count), NF_CUDA_THREADS, 0, s>>>(
        a->data, b->data, y->data, count);
    return cudaGetLastError();
}

/* i runs over (N, C, plane); channel (i / plane) % c. */
static __global__ void scale_shift_kernel(const float *weight,
                                          const float *bias, const float *x,
                                          float *y, int c, size_t plane,
                                          size_t count)
{
    NF_CUDA_FOR(i, count)
    {
        int ch = (int)(i / plane % (size_t)c);
        float wv = weight ? weight[ch] : 1.0f;
        float bv = bias ? bias[ch] : 0.0f;
        y[i] = x[i] * wv + bv;
    }
}

cudaError_t nf__cuda_scale_shift(const float *weight, const float *bias,
                                 const struct nf_cuda_tensor *x,
                                 const struct nf_cuda_tensor *y, cudaStream_t s)
{
    size_t count = nf__cuda_numel(y), plane = (size_t)y->h * y->w;
    scale_shift_kernel<<<nf__cuda_blocks(count), NF_CUDA_THREADS, 0, s>>>(
        weight, bias, x->data, y->data, y->c, plane, count);
    return cudaGetLastError();
}

cudaError_t nf__cuda_concat(const struct nf_cuda_tensor *xs, int n,
                            const struct nf_cuda_tensor *y, cudaStream_t s)
{
    /* Per batch item the inputs lie end to end: one copy per input, a
     * 2-D one (a row per batch item) when there are several items; a
     * single item avoids the 2-D copy's limit on the pitch. */
    size_t plane = (size_t)y->h * y->w * sizeof(float), off = 0;
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)xs[i].c * plane;
        char *dst = (char *)y->data + off;
        cudaError_t e =
            y->n == 1 ? cudaMemcpyAsync(dst, xs[i].data, bytes,
                                        cudaMemcpyDeviceToDevice, s)
                      : cudaMemcpy2DAsync(dst, (size_t)y->c * plane, xs[i].data,
                                          bytes, bytes, (size_t)y->n,
                                          cudaMemcpyDeviceToDevice, s);
        if (e != cudaSuccess)
            return e;
        off += bytes;
    }
    return cudaSuccess;
}
