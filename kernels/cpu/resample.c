/*
 * resample.c - 2x nearest and bilinear upsampling and 2x2 average pooling.
 *
 * Bilinear follows PyTorch's upsample_bilinear2d with align_corners=False:
 * output index o maps to the source coordinate s = (o + 0.5) / 2 - 0.5,
 * clamped below at 0; with i0 = floor(s), i1 = min(i0 + 1, n - 1) and
 * l = s - i0, the value is (1 - l) * x[i0] + l * x[i1], first along the
 * width and then along the height, as PyTorch does:
 *
 *   y = (1 - ly) * ((1 - lx) * x00 + lx * x01) + ly * ((1 - lx) * x10 + lx *
 * x11)
 */
#include <assert.h>

#include "ops.h"

void nf__cpu_upsample2x_nearest(const struct nf_cpu_tensor *x,
                                const struct nf_cpu_tensor *y)
{
    assert(y->c == x->c && y->h == 2 * x->h && y->w == 2 * x->w);
    for (int c = 0; c < y->c; c++)
        for (int oy = 0; oy < y->h; oy++) {
            const float *src = x->data + ((size_t)c * x->h + oy / 2) * x->w;
            float *dst = y->data + ((size_t)c * y->h + oy) * y->w;
            for (int ox = 0; ox < y->w; ox++)
                dst[ox] = src[ox / 2];
        }
}

/* Source indices and weight of output index o for an input of n. */
static void linear_source(int o, int n, int *i0, int *i1, float *l)
{
    float s = ((float)o + 0.5f) * 0.5f - 0.5f;
    if (s < 0)
        s = 0;
    *i0 = (int)s;
    *i1 = *i0 < n - 1 ? *i0 + 1 : *i0;
    *l = s - (float)*i0;
}

void nf__cpu_upsample2x_bilinear(const struct nf_cpu_tensor *x,
                                 const struct nf_cpu_tensor *y)
{
    assert(y->c == x->c && y->h == 2 * x->h && y->w == 2 * x->w);
    for (int c = 0; c < y->c; c++) {
        const float *plane = x->data + (size_t)c * x->h * x->w;
        for (int oy = 0; oy < y->h; oy++) {
            int y0, y1, x0, x1;
            float ly, lx;
            linear_source(oy, x->h, &y0, &y1, &ly);
            const float *r0 = plane + (size_t)y0 * x->w;
            const float *r1 = plane + (size_t)y1 * x->w;
            float *dst = y->data + ((size_t)c * y->h + oy) * y->w;
            for (int ox = 0; ox < y->w; ox++) {
                linear_source(ox, x->w, &x0, &x1, &lx);
                float top = (1 - lx) * r0[x0] + lx * r0[x1];
                float bot = (1 - lx) * r1[x0] + lx * r1[x1];
                dst[ox] = (1 - ly) * top + ly * bot;
            }
        }
    }
}

void nf__cpu_avgpool2x2(const struct nf_cpu_tensor *x,
                        const struct nf_cpu_tensor *y)
{
    assert(y->c == x->c && x->h == 2 * y->h && x->w == 2 * y->w);
    for (int c = 0; c < y->c; c++)
        for (int oy = 0; oy < y->h; oy++) {
            const float *r0 = x->data + ((size_t)c * x->h + 2 * oy) * x->w;
            const float *r1 = r0 + x->w;
            float *dst = y->data + ((size_t)c * y->h + oy) * y->w;
            for (int ox = 0; ox < y->w; ox++)
                dst[ox] = (r0[2 * ox] + r0[2 * ox + 1] + r1[2 * ox] +
                           r1[2 * ox + 1]) /
                          4.0f;
        }
}
