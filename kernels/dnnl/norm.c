/*
 * norm.c - instance normalization over views (PyTorch's InstanceNorm2d,
 * batch 1), in two passes like the reference: the per-channel mean, then
 * the biased variance around it, both accumulated in double, then
 *
 *   y = (x - mean) * rstd * weight + bias     (in double, then float)
 *
 * with the activations fused behind. Each pass accumulates per row range
 * into its own slot of a stats array so that threads never share a sum;
 * the caller reduces the slots in a fixed order.
 */
#include "dnnl-impl.h"

/* Adds rows [y0, y1) into stats[0 .. c): x for pass 0, (x - mean)^2 for
 * pass 1. */
void nf__dnnl_norm_stats_rows(const struct nf_dnnl_rt *x, double *stats,
                              int pass, const double *mean, int y0, int y1)
{
    int s = x->cstride;
    for (int k = 0; k < x->c; k++)
        stats[k] = 0;
    for (int y = y0; y < y1; y++)
        for (int ox = 0; ox < x->w; ox++) {
            const float *p = nf__dnnl_px(x, y, ox);
            if (pass == 0) {
                for (int k = 0; k < x->c; k++)
                    stats[k] += p[(ptrdiff_t)k * s];
            } else {
                for (int k = 0; k < x->c; k++) {
                    double d = p[(ptrdiff_t)k * s] - mean[k];
                    stats[k] += d * d;
                }
            }
        }
}

void nf__dnnl_norm_apply_rows(const struct nf_dnnl_rt *x,
                              const struct nf_dnnl_rt *y, const double *mean,
                              const double *rstd, const float *weight,
                              const float *bias, const struct nf_dnnl_tail *t,
                              int y0, int y1)
{
    float tmp[256];
    for (int oy = y0; oy < y1; oy++)
        for (int ox = 0; ox < x->w; ox++) {
            const float *p = nf__dnnl_px(x, oy, ox);
            float *o = nf__dnnl_px(y, oy, ox);
            for (int c0 = 0; c0 < x->c; c0 += 256) {
                int n = x->c - c0 < 256 ? x->c - c0 : 256;
                for (int k = c0; k < c0 + n; k++) {
                    double w = weight ? weight[k] : 1.0;
                    double b = bias ? bias[k] : 0.0;
                    double a = p[(ptrdiff_t)k * x->cstride];
                    tmp[k - c0] = (float)((a - mean[k]) * rstd[k] * w + b);
                }
                nf__dnnl_tail_apply(t, tmp, n);
                for (int k = 0; k < n; k++)
                    o[(ptrdiff_t)(c0 + k) * y->cstride] = tmp[k];
            }
        }
}
