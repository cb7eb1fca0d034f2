/*
 * norm.c - instance normalization (PyTorch's InstanceNorm2d, batch 1):
 *
 *   y[c] = (x[c] - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]
 *
 * with the mean and the biased variance of x[c] over H x W, accumulated in
 * double (this is the reference), weight 1 and bias 0 where absent.
 */
#include <assert.h>
#include <math.h>

#include "model-impl.h"
#include "ops.h"

void nf__cpu_instance_norm(const struct nf_node *n,
                           const struct nf_cpu_tensor *x,
                           const struct nf_cpu_tensor *y)
{
    size_t plane = (size_t)x->h * x->w;
    assert(nf__cpu_numel(x) == nf__cpu_numel(y));
    for (int c = 0; c < x->c; c++) {
        const float *a = x->data + c * plane;
        float *o = y->data + c * plane;
        double sum = 0, sq = 0;
        for (size_t i = 0; i < plane; i++)
            sum += a[i];
        double mean = sum / (double)plane;
        for (size_t i = 0; i < plane; i++)
            sq += (a[i] - mean) * (a[i] - mean);
        double rstd = 1.0 / sqrt(sq / (double)plane + n->eps);
        double w = n->weight ? n->weight->data[c] : 1.0;
        double b = n->bias ? n->bias->data[c] : 0.0;
        for (size_t i = 0; i < plane; i++)
            o[i] = (float)((a[i] - mean) * rstd * w + b);
    }
}
