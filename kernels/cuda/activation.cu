/*
 * activation.cu - relu, leaky_relu, sigmoid, tanh and clamp, element-wise
 * (kernels/cpu/activation.c has the definitions). The same device function
 * serves the convolution epilogue (conv2d.cu).
 */
#include "ops.cuh"

struct nf_cuda_act nf__cuda_act_of(const struct nf_node *n)
{
    struct nf_cuda_act a = {NF_OP_COUNT, 0.0f, 0.0f, 0.0f};
    if (n != NULL) {
        a.op = n->op;
        a.alpha = n->alpha;
        a.min = n->min;
        a.max = n->max;
    }
    return a;
}

static __global__ void activation_kernel(struct nf_cuda_act a, const float *x,
                                         float *y, size_t count)
{
    NF_CUDA_FOR(i, count)
    {
        y[i] = nf__cuda_act_apply(a, x[i]);
    }
}

cudaError_t nf__cuda_activation(struct nf_cuda_act a,
                                const struct nf_cuda_tensor *x,
                                const struct nf_cuda_tensor *y, cudaStream_t s)
{
    size_t count = nf__cuda_numel(y);
    activation_kernel<<<nf__cuda_blocks(count), NF_CUDA_THREADS, 0, s>>>(
        a, x->data, y->data, count);
    return cudaGetLastError();
}
