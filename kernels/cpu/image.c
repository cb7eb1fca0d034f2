/*
 * image.c - conversion between 8-bit interleaved RGB frames and the planar
 * float values the graph works on, with the edge padding and cropping that
 * make any frame size fit the model's size multiple.
 */
#include <assert.h>

#include "ops.h"

void nf__cpu_image_from_rgb(const struct nf_image *im, float *dst, int h, int w)
{
    float lut[256];
    size_t plane = (size_t)h * w;
    assert(h >= im->height && w >= im->width);
    for (int i = 0; i < 256; i++)
        lut[i] = (float)i / 255.0f;
    for (int y = 0; y < h; y++) {
        int sy = y < im->height ? y : im->height - 1;
        const uint8_t *row = im->data + (size_t)sy * im->stride;
        float *r = dst + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            const uint8_t *px =
                row + 3 * (size_t)(x < im->width ? x : im->width - 1);
            r[x] = lut[px[0]];
            r[plane + x] = lut[px[1]];
            r[2 * plane + x] = lut[px[2]];
        }
    }
}

void nf__cpu_image_to_rgb(const float *src, int h, int w,
                          const struct nf_image *im)
{
    size_t plane = (size_t)h * w;
    assert(h >= im->height && w >= im->width);
    for (int y = 0; y < im->height; y++) {
        const float *r = src + (size_t)y * w;
        uint8_t *row = im->data + (size_t)y * im->stride;
        for (int x = 0; x < im->width; x++)
            for (int c = 0; c < 3; c++)
                row[3 * x + c] =
                    (uint8_t)(nf__cpu_clamp01(r[c * plane + x]) * 255.0f +
                              0.5f);
    }
}
