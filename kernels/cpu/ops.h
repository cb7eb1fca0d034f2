/*
 * ops.h - the CPU reference kernels (implementer-only, kernels/cpu/).
 *
 * Plain, obviously correct loops over dense NCHW floats with batch 1: this
 * backend is the oracle every faster backend is tested against, so clarity
 * wins over speed here. One op family per file. Every kernel writes a whole
 * output tensor that must not overlap its inputs; shapes have been checked
 * by the graph validator (graph.c) and are only asserted here. MODEL.md has
 * the exact semantics of each op.
 */
#ifndef NF_CPU_OPS_H
#define NF_CPU_OPS_H

#include <stddef.h>

#include "backend.h"
#include "graph.h"

/* A view of one value: C x H x W floats, dense. */
struct nf_cpu_tensor {
    float *data; /* (1, C, H, W) */
    int c, h, w;
};

static inline size_t nf__cpu_numel(const struct nf_cpu_tensor *t)
{
    return (size_t)t->c * (size_t)t->h * (size_t)t->w;
}

/* conv2d.c (reflect padding: pad.h) */

/* Floats of workspace nf__cpu_conv2d needs for input x (0 if none). */
size_t nf__cpu_conv2d_workspace(const struct nf_node *n,
                                const struct nf_cpu_tensor *x);

/* y = conv2d(x); work holds nf__cpu_conv2d_workspace() floats. */
void nf__cpu_conv2d(const struct nf_node *n, const struct nf_cpu_tensor *x,
                    const struct nf_cpu_tensor *y, float *work);

/* activation.c: relu, leaky_relu, sigmoid, tanh, clamp (by n->op). */
void nf__cpu_activation(const struct nf_node *n, const struct nf_cpu_tensor *x,
                        const struct nf_cpu_tensor *y);

/* elementwise.c */
void nf__cpu_add(const struct nf_cpu_tensor *a, const struct nf_cpu_tensor *b,
                 const struct nf_cpu_tensor *y);
void nf__cpu_mul(const struct nf_cpu_tensor *a, const struct nf_cpu_tensor *b,
                 const struct nf_cpu_tensor *y);
/* y[c] = x[c] * weight[c] + bias[c] (weight 1, bias 0 where absent). */
void nf__cpu_scale_shift(const struct nf_node *n, const struct nf_cpu_tensor *x,
                         const struct nf_cpu_tensor *y);

/* concat.c: y = the inputs stacked along channels, in order. */
void nf__cpu_concat(const struct nf_cpu_tensor *xs, int n,
                    const struct nf_cpu_tensor *y);

/* resample.c */
void nf__cpu_upsample2x_nearest(const struct nf_cpu_tensor *x,
                                const struct nf_cpu_tensor *y);
void nf__cpu_upsample2x_bilinear(const struct nf_cpu_tensor *x,
                                 const struct nf_cpu_tensor *y);
void nf__cpu_avgpool2x2(const struct nf_cpu_tensor *x,
                        const struct nf_cpu_tensor *y);

/* norm.c */
void nf__cpu_instance_norm(const struct nf_node *n,
                           const struct nf_cpu_tensor *x,
                           const struct nf_cpu_tensor *y);

/* shuffle.c: factor r, PyTorch channel order c * r * r + i * r + j. */
void nf__cpu_pixel_shuffle(int r, const struct nf_cpu_tensor *x,
                           const struct nf_cpu_tensor *y);
void nf__cpu_pixel_unshuffle(int r, const struct nf_cpu_tensor *x,
                             const struct nf_cpu_tensor *y);

/* image.c */

/* Clamps to [0, 1]; NaN becomes 0. */
static inline float nf__cpu_clamp01(float v)
{
    return v > 0 ? (v < 1 ? v : 1) : 0;
}

/*
 * 8-bit RGB -> (3, h, w) floats v / 255, h >= im->height, w >= im->width;
 * rows and columns past the image repeat its last row and column.
 */
void nf__cpu_image_from_rgb(const struct nf_image *im, float *dst, int h,
                            int w);

/*
 * (3, h, w) floats -> the top-left im->width x im->height corner as 8-bit
 * RGB: clamp to [0, 1], times 255, rounded half up.
 */
void nf__cpu_image_to_rgb(const float *src, int h, int w,
                          const struct nf_image *im);

#endif /* NF_CPU_OPS_H */
