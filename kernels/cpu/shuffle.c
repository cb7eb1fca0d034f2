/*
 * shuffle.c - pixel_shuffle and pixel_unshuffle with factor r, in PyTorch's
 * channel order:
 *
 *   pixel_shuffle:   y[c][h * r + i][w * r + j] = x[c * r * r + i * r +
 * j][h][w] pixel_unshuffle: the inverse, (C, H * r, W * r) -> (C * r * r, H,
 * W).
 */
#include <assert.h>

#include "ops.h"

void nf__cpu_pixel_shuffle(int r, const struct nf_cpu_tensor *x,
                           const struct nf_cpu_tensor *y)
{
    assert(x->c == y->c * r * r && y->h == x->h * r && y->w == x->w * r);
    for (int c = 0; c < y->c; c++)
        for (int i = 0; i < r; i++)
            for (int j = 0; j < r; j++) {
                const float *src =
                    x->data + (size_t)(c * r * r + i * r + j) * x->h * x->w;
                for (int h = 0; h < x->h; h++) {
                    float *dst = y->data +
                                 ((size_t)c * y->h + (size_t)h * r + i) * y->w +
                                 j;
                    for (int w = 0; w < x->w; w++)
                        dst[(size_t)w * r] = src[(size_t)h * x->w + w];
                }
            }
}

void nf__cpu_pixel_unshuffle(int r, const struct nf_cpu_tensor *x,
                             const struct nf_cpu_tensor *y)
{
    assert(y->c == x->c * r * r && x->h == y->h * r && x->w == y->w * r);
    for (int c = 0; c < x->c; c++)
        for (int i = 0; i < r; i++)
            for (int j = 0; j < r; j++) {
                float *dst =
                    y->data + (size_t)(c * r * r + i * r + j) * y->h * y->w;
                for (int h = 0; h < y->h; h++) {
                    const float *src =
                        x->data +
                        ((size_t)c * x->h + (size_t)h * r + i) * x->w + j;
                    for (int w = 0; w < y->w; w++)
                        dst[(size_t)h * y->w + w] = src[(size_t)w * r];
                }
            }
}
