/*
 * cuda-impl.cuh - internals shared by the files of the CUDA backend
 * (implementer-only; README.md describes the design).
 *
 * Host code here is C++ compiled by nvcc; the project's C headers are
 * included inside extern "C". The library must not call anything of
 * libnf.a (it is dlopen()ed by binaries that do not export their symbols),
 * so it only reads the model's structures and uses no nf_ function.
 */
#ifndef NF_CUDA_IMPL_CUH
#define NF_CUDA_IMPL_CUH

#include <cudnn.h>

#include "ops.cuh"

extern "C" {
#include "backend-impl.h"
#include "backend-load.h"
#include "error.h"
#include "model-impl.h"
}

/* Logs "nf_cuda: file:line: call: what" to stderr (one line). */
void nf__cuda_log(const char *file, int line, const char *call,
                  const char *what);

/*
 * Checks a CUDA runtime or cuDNN call: on failure logs it, sets rc to
 * NF_EBACKEND and jumps to fail (STYLE.md). The function needs `int rc`
 * and a `fail:` label.
 */
#define NF_CUDA_CHECK(call)                                                    \
    do {                                                                       \
        cudaError_t nf__e = (call);                                            \
        if (nf__e != cudaSuccess) {                                            \
            nf__cuda_log(__FILE__, __LINE__, #call,                            \
                         cudaGetErrorString(nf__e));                           \
            rc = NF_EBACKEND;                                                  \
            goto fail;                                                         \
        }                                                                      \
    } while (0)

#define NF_CUDNN_CHECK(call)                                                   \
    do {                                                                       \
        cudnnStatus_t nf__s = (call);                                          \
        if (nf__s != CUDNN_STATUS_SUCCESS) {                                   \
            nf__cuda_log(__FILE__, __LINE__, #call,                            \
                         cudnnGetErrorString(nf__s));                          \
            rc = NF_EBACKEND;                                                  \
            goto fail;                                                         \
        }                                                                      \
    } while (0)

/*
 * One convolution step (conv2d.cu): the node, its device weights, an
 * activation folded into it, and its cuDNN descriptors. Owned by the
 * backend's plan; touched only by predict (one thread at a time).
 */
struct nf_cuda_conv {
    const struct nf_node *node;
    const float *w;         /* Device (Cout, Cin/groups, kh, kw). */
    const float *b;         /* Device (Cout), or NULL. */
    struct nf_cuda_act act; /* Folded activation; NF_OP_COUNT: none. */
    int reflect;            /* Reflect padding: padded by our kernel. */
    /* Bias + relu through cudnnConvolutionBiasActivationForward; cleared
     * for good if cuDNN refuses it (the epilogue kernel then does it). */
    int fused;
    cudnnFilterDescriptor_t wdesc;
    cudnnConvolutionDescriptor_t cdesc;
    cudnnTensorDescriptor_t xdesc, ydesc, bdesc;
    cudnnActivationDescriptor_t adesc;
    cudnnConvolutionFwdAlgo_t algo; /* For the prepared size. */
    size_t ws;                      /* Workspace bytes algo needs. */
    int half;      /* Reduced precision: tensor-core math allowed. */
    int tensor_op; /* The prepared algorithm runs on tensor cores. */
};

/*
 * Creates cv's descriptors for node n with input channels cin; act is the
 * activation node folded in (NULL: none). half: the reduced-precision
 * mode (README.md): cuDNN may convert the FP32 operands down and use
 * tensor cores. Returns 0 or NF_EBACKEND (cv then holds nothing;
 * nf__cuda_conv_free accepts it anyway).
 */
int nf__cuda_conv_init(struct nf_cuda_conv *cv, const struct nf_node *n,
                       const struct nf_node *act, int cin, const float *w,
                       const float *b, int half);

/* Destroys cv's descriptors; accepts a zeroed or half-built cv. */
void nf__cuda_conv_free(struct nf_cuda_conv *cv);

/*
 * Sets the tensor descriptors for an (n, c, h, w) input and picks the
 * algorithm: a GEMM-family one (no FFT or Winograd; README.md says why),
 * in plain FP32 math (no TF32), or preferably on tensor cores in the
 * reduced-precision mode; the heuristics' best, or with find set the
 * fastest cuDNN measures (cudnnFindConvolutionForwardAlgorithm: it runs
 * each candidate, synchronously). cv->ws is its workspace. Returns 0 or
 * NF_EBACKEND.
 */
int nf__cuda_conv_prepare(struct nf_cuda_conv *cv, cudnnHandle_t dnn, int n,
                          int c, int h, int w, int find);

/*
 * y = act(conv(x) + bias) on stream s (dnn is bound to it). pad: scratch
 * of at least (N, C, H + 2p, W + 2p) floats for reflect padding; ws:
 * cv->ws bytes. Returns 0 or NF_EBACKEND.
 */
int nf__cuda_conv_run(struct nf_cuda_conv *cv, cudnnHandle_t dnn,
                      cudaStream_t s, const struct nf_cuda_tensor *x,
                      const struct nf_cuda_tensor *y, float *pad, void *ws);

/*
 * One step of the program: a node, or a convolution with the activation
 * node right after it folded in (plan.cu).
 */
struct nf_cuda_step {
    const struct nf_node *node; /* The node run (the conv of a pair). */
    int out;                    /* Value written (the activation's). */
    int last;                   /* Index of the last graph node covered. */
    struct nf_cuda_conv conv;   /* conv2d steps only. */
};

/*
 * The graph as steps plus a buffer plan: each step output gets one of
 * n_buffers equal pool buffers, reused once its value is dead (the CPU
 * backend's plan, over steps). Built once at init; immutable afterwards
 * except the steps' per-size conv fields, which only predict touches.
 */
struct nf_cuda_plan {
    struct nf_cuda_step *steps;
    int n_steps;
    int *buffer_of; /* (n_values) pool buffer of a value, else -1. */
    int n_buffers;
};

/*
 * Builds the plan of graph g; weights maps a model tensor to its device
 * copy (NULL for NULL); half as for nf__cuda_conv_init. Returns 0,
 * NF_ENOMEM or NF_EBACKEND; on failure p holds nothing.
 */
int nf__cuda_plan_init(struct nf_cuda_plan *p, const struct nf_graph *g,
                       const float *(*weights)(const void *ctx,
                                               const struct nf_tensor *t),
                       const void *ctx, int half);

/* Frees what nf__cuda_plan_init allocated; accepts a zeroed plan. */
void nf__cuda_plan_free(struct nf_cuda_plan *p);

/* Height and width of value v for a padded frame of fh x fw. */
void nf__cuda_value_size(const struct nf_graph *g, int v, int fh, int fw,
                         int *h, int *w);

#endif /* NF_CUDA_IMPL_CUH */
