/*
 * correct.c - drift correction of a predict item (backend.h) on views:
 * the cache decayed toward the input before the graph runs, and the offset
 * field added to the output before it is clamped, rounded and cached. The
 * per-element math is kernels/correct.h's, shared with every backend, so
 * that results match the reference exactly; this file only walks the
 * views. The offset's bilinear axis positions are computed once per column
 * (and per row) instead of per element.
 *
 * Both passes work on cell rows (a thread owns whole cells). Where the
 * views are the shipped models' layout, cells of 2 x 2 pixels whose 12
 * floats are contiguous (channels, then pixels: cstride 1, sstride 3), a
 * cell is one AVX-512 vector: the decay does every cache entry of a cell
 * with one beta vector and one read of the frame; the offset blends two
 * precomputed rows (below). The operations are the scalar code's, in the
 * same order (separate multiply and add), so results are bit-identical.
 */
#include <string.h>

#include "correct.h"
#include "dnnl-impl.h"
#include "simd.h"

int nf__dnnl_cell_rows(const struct nf_dnnl_rt *v)
{
    return (v->h + v->r - 1) / v->r;
}

void nf__dnnl_cell_span(const struct nf_dnnl_rt *v, int cy0, int cy1, int *y0,
                        int *y1)
{
    *y0 = cy0 * v->r;
    *y1 = cy1 * v->r < v->h ? cy1 * v->r : v->h;
}

/* Views whose cells are one vector of 2 x 2 RGB pixels (see above). */
static int cell_vector(const struct nf_dnnl_rt *v)
{
    return v->r == 2 && v->c == 3 && v->cstride == 1 && v->sstride == 3 &&
           v->h % 2 == 0 && v->w % 2 == 0;
}

static void decay_rows_c(const struct nf_dnnl_rt *cache, int k,
                         const struct nf_dnnl_rt *frame, const float *map,
                         float decay, int width, int height, int y0, int y1)
{
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < frame->w; x++) {
            float beta = nf_corr_beta_at(map, decay, x, y, width, height);
            const float *f = nf__dnnl_px(frame, y, x);
            for (int j = 0; j < k; j++) {
                float *c = nf__dnnl_px(&cache[j], y, x);
                for (int ch = 0; ch < 3; ch++)
                    c[ch * cache[j].cstride] = nf_corr_decay(
                        c[ch * cache[j].cstride], f[ch * frame->cstride], beta);
            }
        }
}

#ifdef NF_DNNL_AVX512
/* Lane L of a cell holds pixel L / 3 (0, 1 top; 2, 3 bottom), channel
 * L % 3; lanes 12-15 are unused (loaded as zeros, never stored). */

/* The four pixels' betas of the cell at (x, y) (top left), as lanes. */
NF_DNNL_TARGET static __m512 cell_beta(const float *map, float decay, int x,
                                       int y, int width, int height)
{
    if (map == NULL)
        return _mm512_set1_ps(decay);
    const __m512i spread =
        _mm512_setr_epi32(0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3);
    if (x + 1 < width && y + 1 < height) {
        /* Inside the frame: two pairs of neighbours, no clamping. */
        const float *m = map + (size_t)y * width + x;
        double t2, b2; /* Two floats each (memcpy: no alignment needed). */
        memcpy(&t2, m, sizeof t2);
        memcpy(&b2, m + width, sizeof b2);
        __m128 top = _mm_castpd_ps(_mm_set_sd(t2));
        __m128 bot = _mm_castpd_ps(_mm_set_sd(b2));
        return _mm512_permutexvar_ps(
            spread, _mm512_castps128_ps512(_mm_movelh_ps(top, bot)));
    }
    __m128 b =
        _mm_setr_ps(nf_corr_beta_at(map, decay, x, y, width, height),
                    nf_corr_beta_at(map, decay, x + 1, y, width, height),
                    nf_corr_beta_at(map, decay, x, y + 1, width, height),
                    nf_corr_beta_at(map, decay, x + 1, y + 1, width, height));
    return _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(b));
}

NF_DNNL_TARGET static void
decay_cells_avx512(const struct nf_dnnl_rt *cache, int k,
                   const struct nf_dnnl_rt *frame, const float *map,
                   float decay, int width, int height, int cy0, int cy1)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int cy = cy0; cy < cy1; cy++) {
        const float *f = frame->p + cy * frame->row;
        for (int cx = 0; cx < frame->w / 2; cx++, f += frame->pix) {
            __m512 beta = cell_beta(map, decay, 2 * cx, 2 * cy, width, height);
            __m512 keep = _mm512_sub_ps(one, beta);
            __m512 in = nf__dnnl_load16(f, 12);
            for (int j = 0; j < k; j++) {
                float *c = cache[j].p + cy * cache[j].row +
                           (ptrdiff_t)cx * cache[j].pix;
                __m512 v = nf__dnnl_load16(c, 12);
                v = _mm512_add_ps(_mm512_mul_ps(keep, v),
                                  _mm512_mul_ps(beta, in));
                nf__dnnl_store16(c, v, 12);
            }
        }
    }
}
#endif

void nf__dnnl_decay_cells(const struct nf_dnnl_rt *cache, int k,
                          const struct nf_dnnl_rt *frame, const float *map,
                          float decay, int width, int height, int cy0, int cy1)
{
#ifdef NF_DNNL_AVX512
    int simd = nf__dnnl_avx512() && cell_vector(frame);
    for (int j = 0; j < k; j++)
        simd = simd && cell_vector(&cache[j]) && cache[j].w == frame->w;
    if (simd) {
        decay_cells_avx512(cache, k, frame, map, decay, width, height, cy0,
                           cy1);
        return;
    }
#endif
    int y0, y1;
    nf__dnnl_cell_span(frame, cy0, cy1, &y0, &y1);
    decay_rows_c(cache, k, frame, map, decay, width, height, y0, y1);
}

void nf__dnnl_offset_axis(int n_out, int n_grid, int size,
                          struct nf_dnnl_axis *axis)
{
    for (int o = 0; o < n_out; o++)
        nf_corr_axis(o, size, n_grid, &axis[o].i0, &axis[o].i1, &axis[o].l);
}

/*
 * The offset is separable: a pixel row blends two grid rows, each first
 * interpolated along x ("top" and "bot" of nf_corr_offset_at). Those
 * x-interpolated grid rows change only every few pixel rows, so each is
 * computed once into the thread's scratch (3 floats per padded column,
 * pixel-major like the cells) and reused; a pixel then costs one blend.
 * A cell row needs at most three grid rows (two per pixel row, and the
 * two pixel rows' pairs overlap); four buffers hold them.
 */
#define HROWS 4

struct hrows {
    float *buf[HROWS];
    int gy[HROWS]; /* Grid row each buffer holds, -1 for none. */
};

/* Grid row gy interpolated along x, for every padded column: out[3x + c]. */
static void grid_row_x(const struct nf_dnnl_offset *off, int w, int gy,
                       float *out)
{
    int gw = off->gw;
    for (int x = 0; x < w; x++) {
        const struct nf_dnnl_axis *ax = &off->x[x];
        for (int c = 0; c < 3; c++) {
            const float *g = off->grid + ((size_t)c * off->gh + gy) * gw;
            out[3 * x + c] = (1.0f - ax->l) * g[ax->i0] + ax->l * g[ax->i1];
        }
    }
}

/* The x-interpolated grid row gy; a row not held yet goes into a buffer
 * that holds none of the n rows in need[] (those still to be read). */
static const float *hrow(struct hrows *h, const struct nf_dnnl_offset *off,
                         int w, int gy, const int *need, int n)
{
    int free_i = -1;
    for (int i = 0; i < HROWS; i++) {
        if (h->gy[i] == gy)
            return h->buf[i];
        int needed = 0;
        for (int k = 0; k < n; k++)
            needed |= h->gy[i] == need[k];
        if (!needed && free_i < 0)
            free_i = i;
    }
    grid_row_x(off, w, gy, h->buf[free_i]);
    h->gy[free_i] = gy;
    return h->buf[free_i];
}

/* Pixel row y's top and bot rows (need: the rows still to be read). */
static void row_pair(struct hrows *h, const struct nf_dnnl_offset *off, int w,
                     const struct nf_dnnl_axis *ay, const int *need, int n,
                     const float **top, const float **bot)
{
    *top = hrow(h, off, w, ay->i0, need, n);
    *bot = hrow(h, off, w, ay->i1, need, n);
}

static void offset_row_c(const struct nf_dnnl_rt *v,
                         const struct nf_dnnl_offset *off, struct hrows *h,
                         int y)
{
    struct nf_dnnl_axis ay;
    nf_corr_axis(y, off->height, off->gh, &ay.i0, &ay.i1, &ay.l);
    const float *top, *bot;
    int need[2] = {ay.i0, ay.i1};
    row_pair(h, off, v->w, &ay, need, 2, &top, &bot);
    for (int x = 0; x < v->w; x++) {
        float *p = nf__dnnl_px(v, y, x);
        for (int c = 0; c < 3; c++) {
            /* nf_corr_offset_at() with top and bot looked up. */
            float o = p[c * v->cstride] +
                      ((1.0f - ay.l) * top[3 * x + c] + ay.l * bot[3 * x + c]);
            p[c * v->cstride] = o > 0 ? (o < 1 ? o : 1.0f) : 0.0f;
        }
    }
}

#ifdef NF_DNNL_AVX512
/* Cell row cy: lanes 0-5 are pixel row 2 cy (two pixels), 6-11 the next;
 * each lane blends its own row's top and bot. The bottom lanes load from
 * 6 floats before the cell's offset (buffers have a margin in front). */
NF_DNNL_TARGET static int offset_cells_avx512(const struct nf_dnnl_rt *v,
                                              const struct nf_dnnl_offset *off,
                                              const struct nf_image *rgb,
                                              struct hrows *h, int cy)
{
    struct nf_dnnl_axis a[2];
    for (int i = 0; i < 2; i++)
        nf_corr_axis(2 * cy + i, off->height, off->gh, &a[i].i0, &a[i].i1,
                     &a[i].l);
    int need[4] = {a[0].i0, a[0].i1, a[1].i0, a[1].i1};
    const float *t0, *b0, *t1, *b1;
    row_pair(h, off, v->w, &a[0], need, 4, &t0, &b0);
    row_pair(h, off, v->w, &a[1], need, 4, &t1, &b1);
    const __mmask16 top = 0x003f, bottom = 0x0fc0;
    __m512 ly = _mm512_mask_blend_ps(top, _mm512_set1_ps(a[1].l),
                                     _mm512_set1_ps(a[0].l));
    __m512 ky = _mm512_sub_ps(_mm512_set1_ps(1.0f), ly);
    /* The 8-bit output of the cells wholly inside the image, written
     * here while the values are in registers; the caller does the rest. */
    int bytes_cells = 0;
    uint8_t *row0 = NULL, *row1 = NULL;
    if (rgb != NULL && 2 * cy + 1 < rgb->height) {
        bytes_cells = rgb->width / 2 < v->w / 2 ? rgb->width / 2 : v->w / 2;
        row0 = rgb->data + (size_t)(2 * cy) * rgb->stride;
        row1 = row0 + rgb->stride;
    }
    float *p = v->p + cy * v->row;
    for (int cx = 0; cx < v->w / 2; cx++, p += v->pix) {
        __m512 t = _mm512_maskz_loadu_ps(top, t0 + 6 * cx);
        t = _mm512_mask_loadu_ps(t, bottom, t1 + 6 * cx - 6);
        __m512 b = _mm512_maskz_loadu_ps(top, b0 + 6 * cx);
        b = _mm512_mask_loadu_ps(b, bottom, b1 + 6 * cx - 6);
        __m512 o = _mm512_add_ps(_mm512_mul_ps(ky, t), _mm512_mul_ps(ly, b));
        o = nf__dnnl_clamp01_16(_mm512_add_ps(nf__dnnl_load16(p, 12), o));
        nf__dnnl_store16(p, o, 12);
        if (cx < bytes_cells) {
            /* Both pixel rows of the cell, 6 bytes each. */
            uint8_t px[16];
            _mm_storeu_si128((__m128i *)px, nf__dnnl_bytes16(o));
            memcpy(row0 + 6 * cx, px, 6);
            memcpy(row1 + 6 * cx, px + 6, 6);
        }
    }
    return 2 * bytes_cells;
}
#endif

size_t nf__dnnl_offset_scratch(int w)
{
    return (size_t)HROWS * (3 * (size_t)w + NF_DNNL_HROW_MARGIN);
}

void nf__dnnl_offset_cells(const struct nf_dnnl_rt *v,
                           const struct nf_dnnl_offset *off,
                           const struct nf_image *rgb, float *scratch, int cy0,
                           int cy1)
{
    struct hrows h;
    for (int i = 0; i < HROWS; i++) {
        h.buf[i] = scratch + NF_DNNL_HROW_MARGIN +
                   (size_t)i * (3 * (size_t)v->w + NF_DNNL_HROW_MARGIN);
        h.gy[i] = -1;
    }
#ifdef NF_DNNL_AVX512
    int simd = nf__dnnl_avx512() && cell_vector(v);
#endif
    for (int cy = cy0; cy < cy1; cy++) {
        int y0, y1, done = 0; /* Columns whose bytes are written. */
        nf__dnnl_cell_span(v, cy, cy + 1, &y0, &y1);
#ifdef NF_DNNL_AVX512
        if (simd)
            done = offset_cells_avx512(v, off, rgb, &h, cy);
        else
#endif
            for (int y = y0; y < y1; y++)
                offset_row_c(v, off, &h, y);
        for (int y = y0; rgb != NULL && y < y1; y++)
            nf__dnnl_to_rgb_cols(rgb, v, y, done);
    }
}
