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
 * Grid means work on strips of whole cells at most STRIP_PX pixels wide
 * (a wider cell is a strip of its own, summed in pieces): each cell row's
 * bytes are summed down the columns first, row after row as they lie in
 * memory (a loop the compiler vectorizes), in 16-bit sums flushed every
 * BLOCK_ROWS rows (255 * 257 < 2^16) into 32-bit column sums (at most
 * NF_BACKEND_MAX_SIDE rows of 255: < 2^32); then each cell adds up its
 * columns per channel. Integer sums: any order gives the same result.
 */
#define STRIP_PX   512
#define BLOCK_ROWS 257

/* Column sums of bytes [b0, b0 + n) of rows [y0, y1) into col (n <=
 * 3 * STRIP_PX). */
static void column_sums(const struct nf_image *im, int b0, int n, int y0,
                        int y1, uint32_t *col)
{
    uint16_t acc[3 * STRIP_PX];
    for (int i = 0; i < n; i++)
        col[i] = 0;
    for (int y = y0; y < y1; y += BLOCK_ROWS) {
        int end = y + BLOCK_ROWS < y1 ? y + BLOCK_ROWS : y1;
        for (int i = 0; i < n; i++)
            acc[i] = 0;
        for (int r = y; r < end; r++) {
            const uint8_t *p = row_of(im, r) + b0;
            for (int i = 0; i < n; i++)
                acc[i] = (uint16_t)(acc[i] + p[i]);
        }
        for (int i = 0; i < n; i++)
            col[i] += acc[i];
    }
}

/* Adds columns [i0, i1) of col (i0 a multiple of 3) per channel to s. */
static void add_columns(const uint32_t *col, int i0, int i1, uint64_t s[3])
{
    for (int i = i0; i < i1; i += 3) {
        s[0] += col[i];
        s[1] += col[i + 1];
        s[2] += col[i + 2];
    }
}

void nf_quality_grid_mean(const struct nf_image *im, int gw, int gh,
                          float *grid)
{
    size_t plane = (size_t)gw * gh;
    uint32_t col[3 * STRIP_PX];
    for (int gy = 0; gy < gh; gy++) {
        int y0 = cell_start(gy, gh, im->height);
        int y1 = cell_start(gy + 1, gh, im->height);
        for (int g0 = 0, g1; g0 < gw; g0 = g1) {
            /* Cells [g0, g1): as many as fit a strip, at least one. */
            int x0 = cell_start(g0, gw, im->width);
            for (g1 = g0 + 1;
                 g1 < gw && cell_start(g1 + 1, gw, im->width) - x0 <= STRIP_PX;
                 g1++)
                ;
            int x1 = cell_start(g1, gw, im->width);
            for (int gx = g0; gx < g1; gx++) {
                int c0 = cell_start(gx, gw, im->width);
                int c1 = cell_start(gx + 1, gw, im->width);
                uint64_t s[3] = {0, 0, 0};
                if (x1 - x0 <= STRIP_PX) {
                    if (gx == g0)
                        column_sums(im, 3 * x0, 3 * (x1 - x0), y0, y1, col);
                    add_columns(col, 3 * (c0 - x0), 3 * (c1 - x0), s);
                } else {
                    /* One cell wider than a strip, in pieces. */
                    for (int a = c0; a < c1; a += STRIP_PX) {
                        int b = a + STRIP_PX < c1 ? a + STRIP_PX : c1;
                        column_sums(im, 3 * a, 3 * (b - a), y0, y1, col);
                        add_columns(col, 0, 3 * (b - a), s);
                    }
                }
                double n = (double)(y1 - y0) * (c1 - c0);
                for (int c = 0; c < 3; c++)
                    grid[c * plane + (size_t)gy * gw + gx] = (float)(s[c] / n);
            }
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
