/*
 * conv2d.cu - 2-D convolution (cross-correlation, kernels/cpu/conv2d.c)
 * through cuDNN's legacy convolution API, NCHW FP32.
 *
 * Zero padding is cuDNN's own. Reflect padding, which cuDNN lacks, is
 * written by pad_reflect_kernel into a scratch tensor that the convolution
 * then reads without padding. Bias plus relu go through
 * cudnnConvolutionBiasActivationForward in one call; any other bias or
 * folded activation is applied by one epilogue kernel after
 * cudnnConvolutionForward. The math mode is CUDNN_FMA_MATH (never TF32) and
 * the algorithm a GEMM-family one, so that FP32 results stay within float
 * rounding of the reference (README.md); the reduced-precision mode lets
 * cuDNN convert the operands down and run on tensor cores instead
 * (CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION).
 */
#include <string.h>

#include "cuda-impl.cuh"
#include "pad.h"

static __global__ void pad_reflect_kernel(const float *x, float *xp, int h,
                                          int w, int p, size_t count)
{
    int hp = h + 2 * p, wp = w + 2 * p;
    NF_CUDA_FOR(i, count)
    {
        int ox = (int)(i % (size_t)wp), oy = (int)(i / wp % (size_t)hp);
        size_t plane = i / ((size_t)wp * hp);
        xp[i] = x[(plane * h + nf_reflect_index(oy - p, h)) * w +
                  nf_reflect_index(ox - p, w)];
    }
}

static __global__ void bias_act_kernel(float *y, const float *bias,
                                       struct nf_cuda_act a, int c,
                                       size_t plane, size_t count)
{
    NF_CUDA_FOR(i, count)
    {
        float v = y[i];
        if (bias != NULL)
            v += bias[i / plane % (size_t)c];
        y[i] = nf__cuda_act_apply(a, v);
    }
}

cudaError_t nf__cuda_pad_reflect(const struct nf_cuda_tensor *x, int p,
                                 float *xp, cudaStream_t s)
{
    size_t count = (size_t)x->n * x->c * (x->h + 2 * p) * (x->w + 2 * p);
    pad_reflect_kernel<<<nf__cuda_blocks(count), NF_CUDA_THREADS, 0, s>>>(
        x->data, xp, x->h, x->w, p, count);
    return cudaGetLastError();
}

cudaError_t nf__cuda_bias_act(const struct nf_cuda_tensor *y, const float *bias,
                              struct nf_cuda_act a, cudaStream_t s)
{
    size_t count = nf__cuda_numel(y), plane = (size_t)y->h * y->w;
    bias_act_kernel<<<nf__cuda_blocks(count), NF_CUDA_THREADS, 0, s>>>(
        y->data, bias, a, y->c, plane, count);
    return cudaGetLastError();
}

int nf__cuda_conv_init(struct nf_cuda_conv *cv, const struct nf_node *n,
                       const struct nf_node *act, int cin, const float *w,
                       const float *b, int half)
{
    int rc = 0, cout = (int)n->weight->shape[0];
    int p = n->pad_mode == NF_PAD_REFLECT ? 0 : n->padding;
    memset(cv, 0, sizeof *cv);
    cv->node = n;
    cv->w = w;
    cv->b = b;
    cv->half = half;
    cv->act = nf__cuda_act_of(act);
    cv->reflect = n->pad_mode == NF_PAD_REFLECT && n->padding > 0;
    cv->fused = b != NULL && cv->act.op == NF_OP_RELU;
    NF_CUDNN_CHECK(cudnnCreateFilterDescriptor(&cv->wdesc));
    NF_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&cv->cdesc));
    NF_CUDNN_CHECK(cudnnCreateTensorDescriptor(&cv->xdesc));
    NF_CUDNN_CHECK(cudnnCreateTensorDescriptor(&cv->ydesc));
    NF_CUDNN_CHECK(cudnnCreateTensorDescriptor(&cv->bdesc));
    NF_CUDNN_CHECK(cudnnCreateActivationDescriptor(&cv->adesc));
    NF_CUDNN_CHECK(cudnnSetFilter4dDescriptor(cv->wdesc, CUDNN_DATA_FLOAT,
                                              CUDNN_TENSOR_NCHW, cout,
                                              cin / n->groups, n->kh, n->kw));
    NF_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        cv->cdesc, p, p, n->stride, n->stride, 1, 1, CUDNN_CROSS_CORRELATION,
        CUDNN_DATA_FLOAT));
    NF_CUDNN_CHECK(cudnnSetConvolutionGroupCount(cv->cdesc, n->groups));
    NF_CUDNN_CHECK(cudnnSetConvolutionMathType(
        cv->cdesc,
        half ? CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION : CUDNN_FMA_MATH));
    NF_CUDNN_CHECK(cudnnSetTensor4dDescriptor(cv->bdesc, CUDNN_TENSOR_NCHW,
                                              CUDNN_DATA_FLOAT, 1, cout, 1, 1));
    NF_CUDNN_CHECK(cudnnSetActivationDescriptor(
        cv->adesc, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
    return 0;
fail:
    nf__cuda_conv_free(cv);
    return rc;
}

void nf__cuda_conv_free(struct nf_cuda_conv *cv)
{
    if (cv->adesc != NULL)
        cudnnDestroyActivationDescriptor(cv->adesc);
    if (cv->bdesc != NULL)
        cudnnDestroyTensorDescriptor(cv->bdesc);
    if (cv->ydesc != NULL)
        cudnnDestroyTensorDescriptor(cv->ydesc);
    if (cv->xdesc != NULL)
        cudnnDestroyTensorDescriptor(cv->xdesc);
    if (cv->cdesc != NULL)
        cudnnDestroyConvolutionDescriptor(cv->cdesc);
    if (cv->wdesc != NULL)
        cudnnDestroyFilterDescriptor(cv->wdesc);
    memset(cv, 0, sizeof *cv);
}

/* The algorithms kept: plain GEMM lowerings, no FFT or Winograd. */
static int gemm_family(cudnnConvolutionFwdAlgo_t a)
{
    return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
           a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
           a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM;
}

static int tensor_math(cudnnMathType_t t)
{
    return t == CUDNN_TENSOR_OP_MATH ||
           t == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

/* The first usable GEMM-family result of the heuristics (best first) on
 * tensor-core math (tensor 1) or not (0); -1 if none. */
static int pick(const cudnnConvolutionFwdAlgoPerf_t *perf, int n, int tensor)
{
    for (int i = 0; i < n; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS &&
            gemm_family(perf[i].algo) &&
            tensor_math(perf[i].mathType) == tensor)
            return i;
    return -1;
}

int nf__cuda_conv_prepare(struct nf_cuda_conv *cv, cudnnHandle_t dnn, int n,
                          int c, int h, int w, int find)
{
    const struct nf_node *nd = cv->node;
    int rc = 0, returned = 0, p = cv->reflect ? nd->padding : 0, i = -1;
    int cout = (int)nd->weight->shape[0];
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    NF_CUDNN_CHECK(cudnnSetTensor4dDescriptor(cv->xdesc, CUDNN_TENSOR_NCHW,
                                              CUDNN_DATA_FLOAT, n, c, h + 2 * p,
                                              w + 2 * p));
    NF_CUDNN_CHECK(cudnnSetTensor4dDescriptor(cv->ydesc, CUDNN_TENSOR_NCHW,
                                              CUDNN_DATA_FLOAT, n, cout,
                                              h / nd->stride, w / nd->stride));
    if (cv->half) /* A previous prepare may have narrowed it. */
        NF_CUDNN_CHECK(cudnnSetConvolutionMathType(
            cv->cdesc, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION));
    if (find) /* Timed on the device, fastest first. */
        NF_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(
            dnn, cv->xdesc, cv->wdesc, cv->cdesc, cv->ydesc,
            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf));
    else
        NF_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(
            dnn, cv->xdesc, cv->wdesc, cv->cdesc, cv->ydesc,
            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf));
    /* Implicit GEMM needs no workspace and supports every shape: the
     * fallback if the heuristics offer nothing we keep. In FP32 the
     * descriptor's math type forbids tensor cores for whatever runs. */
    if (cv->half)
        i = pick(perf, returned, 1);
    if (i < 0)
        i = pick(perf, returned, 0);
    cv->algo = i >= 0 ? perf[i].algo : CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    cv->tensor_op = i >= 0 && tensor_math(perf[i].mathType);
    if (cv->half) /* Run as the heuristics measured it. */
        NF_CUDNN_CHECK(cudnnSetConvolutionMathType(
            cv->cdesc, i >= 0 ? perf[i].mathType : CUDNN_FMA_MATH));
    NF_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(
        dnn, cv->xdesc, cv->wdesc, cv->cdesc, cv->ydesc, cv->algo, &cv->ws));
    return 0;
fail:
    return rc;
}

/* cudnnConvolutionBiasActivationForward; 1 if cuDNN refuses it here (the
 * caller falls back to the unfused path for good), 0 or NF_EBACKEND. */
static int run_fused(struct nf_cuda_conv *cv, cudnnHandle_t dnn, cudaStream_t s,
                     const float *x, const struct nf_cuda_tensor *y, void *ws)
{
    const float one = 1.0f, zero = 0.0f;
    int rc = 0;
    /* z is y with alpha2 = 0: cleared first so that whatever an earlier
     * value left there (even a NaN) cannot leak in. */
    NF_CUDA_CHECK(cudaMemsetAsync(y->data, 0, nf__cuda_numel(y) * 4, s));
    {
        cudnnStatus_t st = cudnnConvolutionBiasActivationForward(
            dnn, &one, cv->xdesc, x, cv->wdesc, cv->w, cv->cdesc, cv->algo, ws,
            cv->ws, &zero, cv->ydesc, y->data, cv->bdesc, cv->b, cv->adesc,
            cv->ydesc, y->data);
        /* Any refusal (NOT_SUPPORTED, or BAD_PARAM for a shape the
         * fused kernels lack) is not an error of the frame: log it once
         * and let the plain convolution plus epilogue do the work. */
        if (st != CUDNN_STATUS_SUCCESS) {
            nf__cuda_log(__FILE__, __LINE__, cv->node->name,
                         cudnnGetErrorString(st));
            return 1;
        }
    }
    return 0;
fail:
    return rc;
}

int nf__cuda_conv_run(struct nf_cuda_conv *cv, cudnnHandle_t dnn,
                      cudaStream_t s, const struct nf_cuda_tensor *x,
                      const struct nf_cuda_tensor *y, float *pad, void *ws)
{
    const float one = 1.0f, zero = 0.0f;
    const float *in = x->data;
    int rc = 0;
    if (cv->reflect) {
        NF_CUDA_CHECK(nf__cuda_pad_reflect(x, cv->node->padding, pad, s));
        in = pad;
    }
    if (cv->fused) {
        rc = run_fused(cv, dnn, s, in, y, ws);
        if (rc <= 0)
            return rc;
        cv->fused = 0; /* Not supported here: the epilogue from now on. */
        rc = 0;
    }
    NF_CUDNN_CHECK(cudnnConvolutionForward(dnn, &one, cv->xdesc, in, cv->wdesc,
                                           cv->w, cv->cdesc, cv->algo, ws,
                                           cv->ws, &zero, cv->ydesc, y->data));
    if (cv->b != NULL || cv->act.op != NF_OP_COUNT)
        NF_CUDA_CHECK(nf__cuda_bias_act(y, cv->b, cv->act, s));
    return 0;
fail:
    return rc;
}
