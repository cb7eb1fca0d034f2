/*
 * i420.c - I420 layout and BT.601 full-range RGB <-> YCbCr conversion.
 *
 * Integer arithmetic with 16 fractional bits; the coefficients are JFIF's
 * (the same libjpeg uses), rounded to nearest.
 */
#include "i420.h"

#define FIX(x) ((int32_t)((x)*65536.0 + 0.5))
#define HALF   (1 << 15)

static uint8_t clamp_u8(int32_t v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

size_t nf_i420_size(int width, int height)
{
    size_t luma = (size_t)width * (size_t)height;
    size_t chroma =
        (size_t)nf_i420_chroma_dim(width) * (size_t)nf_i420_chroma_dim(height);

    return luma + 2 * chroma;
}

void nf_i420_planes(uint8_t *base, int width, int height, uint8_t *planes[3])
{
    size_t luma = (size_t)width * (size_t)height;
    size_t chroma =
        (size_t)nf_i420_chroma_dim(width) * (size_t)nf_i420_chroma_dim(height);

    planes[0] = base;
    planes[1] = base + luma;
    planes[2] = base + luma + chroma;
}

static uint8_t luma_of(const uint8_t *p)
{
    int32_t y = FIX(0.299) * p[0] + FIX(0.587) * p[1] + FIX(0.114) * p[2];

    return clamp_u8((y + HALF) >> 16);
}

/* Averages the 2x2 block at (x, y), clipped at the right and bottom edges. */
static void chroma_of(const uint8_t *rgb, int stride, int width, int height,
                      int x, int y, uint8_t *cb, uint8_t *cr)
{
    int32_t r = 0, g = 0, b = 0, n = 0, u, v;

    for (int dy = 0; dy < 2 && y + dy < height; dy++) {
        for (int dx = 0; dx < 2 && x + dx < width; dx++) {
            const uint8_t *p =
                rgb + (size_t)(y + dy) * (size_t)stride + (size_t)(x + dx) * 3;
            r += p[0];
            g += p[1];
            b += p[2];
            n++;
        }
    }
    u = -FIX(0.168736) * r - FIX(0.331264) * g + FIX(0.5) * b;
    v = FIX(0.5) * r - FIX(0.418688) * g - FIX(0.081312) * b;
    /* Divide by n with rounding; sums stay below 2^31 for n <= 4. */
    *cb = clamp_u8(128 + (u / n + (u >= 0 ? HALF : -HALF)) / 65536);
    *cr = clamp_u8(128 + (v / n + (v >= 0 ? HALF : -HALF)) / 65536);
}

void nf_i420_from_rgb(const uint8_t *rgb, int stride, int width, int height,
                      uint8_t *const planes[3])
{
    int cw = nf_i420_chroma_dim(width), ch = nf_i420_chroma_dim(height);

    for (int y = 0; y < height; y++) {
        const uint8_t *row = rgb + (size_t)y * (size_t)stride;
        uint8_t *out = planes[0] + (size_t)y * (size_t)width;

        for (int x = 0; x < width; x++)
            out[x] = luma_of(row + (size_t)x * 3);
    }
    for (int y = 0; y < ch; y++) {
        for (int x = 0; x < cw; x++) {
            size_t i = (size_t)y * (size_t)cw + (size_t)x;

            chroma_of(rgb, stride, width, height, 2 * x, 2 * y, &planes[1][i],
                      &planes[2][i]);
        }
    }
}

void nf_i420_to_rgb(const uint8_t *const planes[3], int width, int height,
                    uint8_t *rgb, int stride)
{
    int cw = nf_i420_chroma_dim(width);

    for (int y = 0; y < height; y++) {
        const uint8_t *py = planes[0] + (size_t)y * (size_t)width;
        const uint8_t *pu = planes[1] + (size_t)(y / 2) * (size_t)cw;
        const uint8_t *pv = planes[2] + (size_t)(y / 2) * (size_t)cw;
        uint8_t *out = rgb + (size_t)y * (size_t)stride;

        for (int x = 0; x < width; x++) {
            int32_t l = (int32_t)py[x] << 16;
            int32_t u = pu[x / 2] - 128, v = pv[x / 2] - 128;

            out[3 * x + 0] = clamp_u8((l + FIX(1.402) * v + HALF) >> 16);
            out[3 * x + 1] = clamp_u8(
                (l - FIX(0.344136) * u - FIX(0.714136) * v + HALF) >> 16);
            out[3 * x + 2] = clamp_u8((l + FIX(1.772) * u + HALF) >> 16);
        }
    }
}

/*
 * Maps n bytes through lut. The tables are rebuilt per call: 512 entries
 * cost nothing next to a frame and keep the module free of global state.
 */
static void map_plane(const uint8_t *src, uint8_t *dst, size_t n,
                      const uint8_t lut[256])
{
    for (size_t i = 0; i < n; i++)
        dst[i] = lut[src[i]];
}

/* Rounds half away from zero, so chroma maps symmetrically around 128. */
static int32_t round_away(double x)
{
    return (int32_t)(x < 0 ? x - 0.5 : x + 0.5);
}

/* Builds the luma and chroma tables; to_full selects the direction. */
static void range_luts(int to_full, uint8_t luma[256], uint8_t chroma[256])
{
    for (int v = 0; v < 256; v++) {
        if (to_full) {
            luma[v] = clamp_u8(round_away((v - 16) * 255.0 / 219.0));
            chroma[v] = clamp_u8(128 + round_away((v - 128) * 255.0 / 224.0));
        } else {
            luma[v] = clamp_u8(16 + round_away(v * 219.0 / 255.0));
            chroma[v] = clamp_u8(128 + round_away((v - 128) * 224.0 / 255.0));
        }
    }
}

static void convert_range(int to_full, const uint8_t *const src[3], int width,
                          int height, uint8_t *const dst[3])
{
    uint8_t luma[256], chroma[256];
    size_t nl = (size_t)width * (size_t)height;
    size_t nc =
        (size_t)nf_i420_chroma_dim(width) * (size_t)nf_i420_chroma_dim(height);

    range_luts(to_full, luma, chroma);
    map_plane(src[0], dst[0], nl, luma);
    map_plane(src[1], dst[1], nc, chroma);
    map_plane(src[2], dst[2], nc, chroma);
}

void nf_i420_limited_to_full(const uint8_t *const src[3], int width, int height,
                             uint8_t *const dst[3])
{
    convert_range(1, src, width, height, dst);
}

void nf_i420_full_to_limited(const uint8_t *const src[3], int width, int height,
                             uint8_t *const dst[3])
{
    convert_range(0, src, width, height, dst);
}
