/*
 * activation.c - element-wise activations: relu, leaky_relu, sigmoid, tanh
 * and clamp, with PyTorch's definitions:
 *
 *   relu(x)       = x > 0 ? x : 0
 *   leaky_relu(x) = x > 0 ? x : alpha * x
 *   sigmoid(x)    = 1 / (1 + exp(-x))
 *   tanh(x)       = tanh(x)
 *   clamp(x)      = min(max(x, min), max)
 */
#include <assert.h>
#include <math.h>

#include "ops.h"

void nf__cpu_activation(const struct nf_node *n, const struct nf_cpu_tensor *x,
                        const struct nf_cpu_tensor *y)
{
    size_t count = nf__cpu_numel(x);
    const float *a = x->data;
    float *o = y->data;
    assert(nf__cpu_numel(y) == count);
    switch (n->op) {
    case NF_OP_RELU:
        for (size_t i = 0; i < count; i++)
            o[i] = a[i] > 0 ? a[i] : 0.0f;
        break;
    case NF_OP_LEAKY_RELU:
        for (size_t i = 0; i < count; i++)
            o[i] = a[i] > 0 ? a[i] : n->alpha * a[i];
        break;
    case NF_OP_SIGMOID:
        for (size_t i = 0; i < count; i++)
            o[i] = 1.0f / (1.0f + expf(-a[i]));
        break;
    case NF_OP_TANH:
        for (size_t i = 0; i < count; i++)
            o[i] = tanhf(a[i]);
        break;
    case NF_OP_CLAMP:
        for (size_t i = 0; i < count; i++)
            o[i] = fminf(fmaxf(a[i], n->min), n->max);
        break;
    default:
        assert(0 && "not an activation");
    }
}
