/*
 * elementwise.c - add and mul of two same-shaped values, and scale_shift,
 * the per-channel affine map y[c] = x[c] * weight[c] + bias[c].
 */
#include <assert.h>

#include "model-impl.h"
#include "ops.h"

void nf__cpu_add(const struct nf_cpu_tensor *a, const struct nf_cpu_tensor *b,
                 const struct nf_cpu_tensor *y)
{
    size_t count = nf__cpu_numel(y);
    assert(nf__cpu_numel(a) == count && nf__cpu_numel(b) == count);
    for (size_t i = 0; i < count; i++)
        y->data[i] = a->data[i] + b->data[i];
}

void nf__cpu_mul(const struct nf_cpu_tensor *a, const struct nf_cpu_tensor *b,
                 const struct nf_cpu_tensor *y)
{
    size_t count = nf__cpu_numel(y);
    assert(nf__cpu_numel(a) == count && nf__cpu_numel(b) == count);
    for (size_t i = 0; i < count; i++)
        y->data[i] = a->data[i] * b->data[i];
}

void nf__cpu_scale_shift(const struct nf_node *n, const struct nf_cpu_tensor *x,
                         const struct nf_cpu_tensor *y)
{
    size_t plane = (size_t)x->h * x->w;
    assert(nf__cpu_numel(x) == nf__cpu_numel(y));
    for (int c = 0; c < x->c; c++) {
        float w = n->weight ? n->weight->data[c] : 1.0f;
        float b = n->bias ? n->bias->data[c] : 0.0f;
        const float *a = x->data + c * plane;
        float *o = y->data + c * plane;
        for (size_t i = 0; i < plane; i++)
            o[i] = a[i] * w + b;
    }
}
