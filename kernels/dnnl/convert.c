/*
 * convert.c - 8-bit interleaved RGB frames to and from the model's float
 * views (MODEL.md section 6): v / 255 on the way in, edge-padded to the
 * size multiple by repeating the last row and column; on the way out the
 * already clamped value times 255, rounded half up, cropped to the image.
 *
 * A row of pixels is contiguous in the image and, per cell, in the view
 * (3 floats per pixel; r pixels of a row side by side in a sub-pixel major
 * cell), so both directions are strided runs like elementwise.c's, with an
 * AVX-512 implementation when the CPU has it. Pixels past the image (the
 * padding) and other layouts go one by one.
 */
#include <string.h>

#include "dnnl-impl.h"
#include "simd.h"

/* count runs of len: bytes s (step ss) to floats d (step ds), v / 255. */
static void floats_c(const uint8_t *s, ptrdiff_t ss, float *d, ptrdiff_t ds,
                     int len, int count)
{
    for (int k = 0; k < count; k++)
        for (int i = 0; i < len; i++)
            d[k * ds + i] = (float)s[k * ss + i] / 255.0f;
}

/* count runs of len: floats s (step ss), clamped, to bytes d (step ds). */
static void bytes_c(const float *s, ptrdiff_t ss, uint8_t *d, ptrdiff_t ds,
                    int len, int count)
{
    for (int k = 0; k < count; k++)
        for (int i = 0; i < len; i++)
            d[k * ds + i] = (uint8_t)(s[k * ss + i] * 255.0f + 0.5f);
}

#ifdef NF_DNNL_AVX512
NF_DNNL_TARGET static void floats_avx512(const uint8_t *s, ptrdiff_t ss,
                                         float *d, ptrdiff_t ds, int len,
                                         int count)
{
    __m512 k255 = _mm512_set1_ps(255.0f);
    for (int k = 0; k < count; k++)
        for (int i = 0; i < len; i += 16) {
            int n = len - i;
            /* A masked load never reads past the caller's image. */
            __m128i b = _mm_maskz_loadu_epi8(nf__dnnl_mask(n), s + k * ss + i);
            __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b));
            nf__dnnl_store16(d + k * ds + i, _mm512_div_ps(v, k255), n);
        }
}

NF_DNNL_TARGET static void bytes_avx512(const float *s, ptrdiff_t ss,
                                        uint8_t *d, ptrdiff_t ds, int len,
                                        int count)
{
    for (int k = 0; k < count; k++)
        for (int i = 0; i < len; i += 16) {
            int n = len - i;
            __m512 v = nf__dnnl_load16(s + k * ss + i, n);
            nf__dnnl_store16b(d + k * ds + i, nf__dnnl_bytes16(v), n);
        }
}
#endif

static void floats_runs(const uint8_t *s, ptrdiff_t ss, float *d, ptrdiff_t ds,
                        int len, int count)
{
#ifdef NF_DNNL_AVX512
    if (nf__dnnl_avx512()) {
        floats_avx512(s, ss, d, ds, len, count);
        return;
    }
#endif
    floats_c(s, ss, d, ds, len, count);
}

static void bytes_runs(const float *s, ptrdiff_t ss, uint8_t *d, ptrdiff_t ds,
                       int len, int count)
{
#ifdef NF_DNNL_AVX512
    if (nf__dnnl_avx512()) {
        bytes_avx512(s, ss, d, ds, len, count);
        return;
    }
#endif
    bytes_c(s, ss, d, ds, len, count);
}

/* Whether view v keeps a row's pixels in runs of r * 3 contiguous floats. */
static int row_runs(const struct nf_dnnl_rt *v)
{
    return v->cstride == 1 && (v->r == 1 ? v->pix == 3 : v->sstride == 3);
}

void nf__dnnl_from_rgb_rows(const struct nf_image *im,
                            const struct nf_dnnl_rt *v, int y0, int y1)
{
    int r = v->r, full = row_runs(v) ? im->width / r : 0;
    for (int y = y0; y < y1; y++) {
        int sy = y < im->height ? y : im->height - 1;
        const uint8_t *src = im->data + (size_t)sy * im->stride;
        if (full > 0 && r == 1) /* The whole row is one run. */
            floats_runs(src, 0, nf__dnnl_px(v, y, 0), 0, 3 * full, 1);
        else if (full > 0)
            floats_runs(src, 3 * r, nf__dnnl_px(v, y, 0), v->pix, 3 * r, full);
        for (int x = full * r; x < v->w; x++) {
            const uint8_t *s = src + 3 * (x < im->width ? x : im->width - 1);
            float *d = nf__dnnl_px(v, y, x);
            for (int c = 0; c < 3; c++)
                d[c * v->cstride] = (float)s[c] / 255.0f;
        }
    }
}

void nf__dnnl_to_rgb_cols(const struct nf_image *im, const struct nf_dnnl_rt *v,
                          int y, int x0)
{
    if (y >= im->height || x0 >= im->width)
        return;
    uint8_t *d = im->data + (size_t)y * im->stride;
    int r = v->r, full = row_runs(v) && x0 % r == 0 ? im->width / r : 0;
    int first = x0 / r, n = full - first;
    if (n > 0 && r == 1)
        bytes_runs(nf__dnnl_px(v, y, x0), 0, d + 3 * x0, 0, 3 * n, 1);
    else if (n > 0)
        bytes_runs(nf__dnnl_px(v, y, x0), v->pix, d + 3 * x0, 3 * r, 3 * r, n);
    for (int x = n > 0 ? full * r : x0; x < im->width; x++) {
        const float *s = nf__dnnl_px(v, y, x);
        for (int c = 0; c < 3; c++)
            d[3 * x + c] = (uint8_t)(s[c * v->cstride] * 255.0f + 0.5f);
    }
}

void nf__dnnl_from_planar(const float *src, const struct nf_dnnl_rt *v)
{
    size_t plane = (size_t)v->h * v->w;
    for (int y = 0; y < v->h; y++)
        for (int x = 0; x < v->w; x++) {
            float *d = nf__dnnl_px(v, y, x);
            for (int c = 0; c < 3; c++)
                d[c * v->cstride] = src[c * plane + (size_t)y * v->w + x];
        }
}

void nf__dnnl_to_planar(const struct nf_dnnl_rt *v, float *dst)
{
    size_t plane = (size_t)v->h * v->w;
    for (int y = 0; y < v->h; y++)
        for (int x = 0; x < v->w; x++) {
            const float *s = nf__dnnl_px(v, y, x);
            for (int c = 0; c < 3; c++)
                dst[c * plane + (size_t)y * v->w + x] = s[c * v->cstride];
        }
}
