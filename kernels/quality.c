/*
 * quality.c - temporal quality measures on 8-bit RGB frames (quality.h).
 *
 * Sums are accumulated in 64-bit integers where the terms are integers, so
 * that the results do not depend on the summation order and stay exact at
 * any frame size up to NF_BACKEND_MAX_SIDE.
 */
#include "quality.h"

#include <math.h>
#include <stdlib.h>

static const uint8_t *row_of(const struct nf_image *im, int y)
{
    return im->data + (size_t)y * im->stride;
}

double nf_quality_mae(const struct nf_image *a, const struct nf_image *b)
{
    uint64_t sum = 0;
    for (int y = 0; y < a->height; y++) {
        const uint8_t *p = row_of(a, y), *q = row_of(b, y);
        for (int i = 0; i < 3 * a->width; i++)
            sum += (uint64_t)abs(p[i] - q[i]);
    }
    return (double)sum / (3.0 * a->width * a->height);
}

double nf_quality_psnr(const struct nf_image *a, const struct nf_image *b)
{
    uint64_t sum = 0;
    for (int y = 0; y < a->height; y++) {
        const uint8_t *p = row_of(a, y), *q = row_of(b, y);
        for (int i = 0; i < 3 * a->width; i++) {
            int d = p[i] - q[i];
            sum += (uint64_t)(d * d);
        }
    }
    if (sum == 0)
        return NF_QUALITY_PSNR_MAX;
    double mse = (double)sum / (3.0 * a->width * a->height);
    double psnr = 10.0 * log10(255.0 * 255.0 / mse);
    return psnr < NF_QUALITY_PSNR_MAX ? psnr : NF_QUALITY_PSNR_MAX;
}

static int max3(const uint8_t *p, const uint8_t *q)
{
    int d0 = abs(p[0] - q[0]), d1 = abs(p[1] - q[1]), d2 = abs(p[2] - q[2]);
    int m = d0 > d1 ? d0 : d1;
    return m > d2 ? m : d2;
}

double nf_quality_flicker(const struct nf_image *in_prev,
                          const struct nf_image *in,
                          const struct nf_image *out_prev,
                          const struct nf_image *out, int tol,
                          uint64_t *n_static)
{
    uint64_t sum = 0, n = 0;
    for (int y = 0; y < in->height; y++) {
        const uint8_t *a = row_of(in_prev, y), *b = row_of(in, y);
        const uint8_t *p = row_of(out_prev, y), *q = row_of(out, y);
        for (int x = 0; x < 3 * in->width; x += 3) {
            if (max3(a + x, b + x) > tol)
                continue;
            n++;
            sum += (uint64_t)(abs(p[x] - q[x]) + abs(p[x + 1] - q[x + 1]) +
                              abs(p[x + 2] - q[x + 2]));
        }
    }
    if (n_static != NULL)
        *n_static = n;
    return n ? (double)sum / (3.0 * (double)n) : 0.0;
}

/* First pixel of cell j of n cells over size pixels. */
static int cell_start(int j, int n, int size)
{
    return (int)((int64_t)j * size / n);
}

/*
 * Sums the bytes of one cell's rows per channel into s. The bytes of a row
 * run in chunks of 48 (16 pixels) into 48 lane sums that the compiler
 * vectorizes (integer sums: any order gives the same result); lane k holds
 * channel k % 3. Lanes are flushed into s every 64 rows, long before 32
 * bits could overflow (64 * ceil(3 * 65535 / 48) * 255 < 2^32).
 */
static void cell_sums(const struct nf_image *im, int x0, int x1, int y0, int y1,
                      uint64_t s[3])
{
    int n = 3 * (x1 - x0), whole = n / 48 * 48;
    uint32_t lane[48] = {0};
    for (int y = y0; y < y1; y++) {
        const uint8_t *r = row_of(im, y) + 3 * x0;
        for (int i = 0; i < whole; i += 48)
            for (int k = 0; k < 48; k++)
                lane[k] += r[i + k];
        for (int i = whole; i < n; i++)
            s[i % 3] += r[i];
        if ((y - y0) % 64 == 63 || y == y1 - 1)
            for (int k = 0; k < 48; k++) {
                s[k % 3] += lane[k];
                lane[k] = 0;
            }
    }
}

void nf_quality_grid_mean(const struct nf_image *im, int gw, int gh,
                          float *grid)
{
    size_t plane = (size_t)gw * gh;
    for (int gy = 0; gy < gh; gy++) {
        int y0 = cell_start(gy, gh, im->height);
        int y1 = cell_start(gy + 1, gh, im->height);
        for (int gx = 0; gx < gw; gx++) {
            int x0 = cell_start(gx, gw, im->width);
            int x1 = cell_start(gx + 1, gw, im->width);
            uint64_t s[3] = {0, 0, 0};
            cell_sums(im, x0, x1, y0, y1, s);
            double n = (double)(y1 - y0) * (x1 - x0);
            for (int c = 0; c < 3; c++)
                grid[c * plane + (size_t)gy * gw + gx] = (float)(s[c] / n);
        }
    }
}

void nf_quality_grid_motion(const struct nf_image *prev,
                            const struct nf_image *cur, int gw, int gh,
                            float *grid)
{
    for (int gy = 0; gy < gh; gy++) {
        int y0 = cell_start(gy, gh, cur->height);
        int y1 = cell_start(gy + 1, gh, cur->height);
        for (int gx = 0; gx < gw; gx++) {
            int x0 = cell_start(gx, gw, cur->width);
            int x1 = cell_start(gx + 1, gw, cur->width);
            uint64_t s = 0;
            for (int y = y0; y < y1; y++) {
                const uint8_t *a = row_of(prev, y), *b = row_of(cur, y);
                for (int x = x0; x < x1; x++)
                    s += (uint64_t)max3(a + 3 * x, b + 3 * x);
            }
            grid[(size_t)gy * gw + gx] =
                (float)((double)s / ((double)(y1 - y0) * (x1 - x0)));
        }
    }
}
