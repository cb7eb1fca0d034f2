/*
 * shuffle.cu - pixel_shuffle and pixel_unshuffle with factor r in PyTorch's
 * channel order (kernels/cpu/shuffle.c):
 *
 *   pixel_shuffle:   y[c][h * r + i][w * r + j] = x[c * r * r + i * r +
 * j][h][w] pixel_unshuffle: the inverse.
 *
 * Both gather: one thread per output element.
 */
#include "ops.cuh"

/* y (N, C, H * r, W * r) from x (N, C * r * r, H, W). */
static __global__ void shuffle_kernel(const float *x, float *y, int r, int c,
                                      int ih, int iw, size_t count)
{
    int oh = ih * r, ow = iw * r;
    NF_CUDA_FOR(o, count)
    {
        int ox = (int)(o % (size_t)ow), oy = (int)(o / ow % (size_t)oh);
        size_t p = o / ((size_t)ow * oh); /* n * C + ch */
        int ch = (int)(p % (size_t)c);
        size_t n = p / (size_t)c;
        int i = oy % r, j = ox % r;
        size_t src = (n * c * r * r + (size_t)ch * r * r + (size_t)i * r + j);
        y[o] = x[(src * ih + oy / r) * iw + ox / r];
    }
}

/* y (N, C * r * r, H, W) from x (N, C, H * r, W * r). */
static __global__ void unshuffle_kernel(const float *x, float *y, int r, int c,
                                        int oh, int ow, size_t count)
{
    int ih = oh * r, iw = ow * r, rr = r * r;
    NF_CUDA_FOR(o, count)
    {
        int ox = (int)(o % (size_t)ow), oy = (int)(o / ow % (size_t)oh);
        size_t p = o / ((size_t)ow * oh); /* n * C * r * r + k */
        int k = (int)(p % (size_t)(c * rr));
        size_t n = p / (size_t)(c * rr);
        int ch = k / rr, i = k % rr / r, j = k % r;
        size_t plane = n * c + ch;
        y[o] = x[(plane * ih + (size_t)oy * r + i) * iw + (size_t)ox * r + j];
    }
}

cudaError_t nf__cuda_pixel_shuffle(int r, const struct nf_cuda_tensor *x,
                                   const struct nf_cuda_tensor *y,
                                   cudaStream_t s)
{
    size_t count = nf__cuda_numel(y);
    shuffle_kernel<<<nf__cuda_blocks(count), NF_CUDA_THREADS, 0, s>>>(
        x->data, y->data, r, y->c, x->h, x->w, count);
    return cudaGetLastError();
}

cudaError_t nf__cuda_pixel_unshuffle(int r, const struct nf_cuda_tensor *x,
                                     const struct nf_cuda_tensor *y,
                                     cudaStream_t s)
{
    size_t count = nf__cuda_numel(y);
    unshuffle_kernel<<<nf__cuda_blocks(count), NF_CUDA_THREADS, 0, s>>>(
        x->data, y->data, r, x->c, y->h, y->w, count);
    return cudaGetLastError();
}
