/*
 * resample.c - 2x nearest and bilinear upsampling and 2x2 average pooling
 * over views, with activations fused behind. The arithmetic is the
 * reference's, operation for operation (kernels/cpu/resample.c and
 * MODEL.md): bilinear follows PyTorch's align_corners=False, width first,
 * then height; pooling sums the four pixels in reading order and divides
 * by 4. Plain layouts (and concat slices) take a direct row loop; other
 * layouts go pixel by pixel through the view arithmetic.
 */
#include "dnnl-impl.h"

#define CHUNK 256 /* Channels per piece of a pixel. */
#define COLS  256 /* Bilinear source columns computed at once. */

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

/* Channel k of pixel p of a view with channel stride s. */
#define AT(p, s, k) ((p)[(ptrdiff_t)(k) * (s)])

static inline void bilinear_px(const struct nf_dnnl_rt *x, int y0, int y1,
                               float ly, int x0, int x1, float lx,
                               float *restrict o, int c0, int n)
{
    const float *a = nf__dnnl_px(x, y0, x0), *b = nf__dnnl_px(x, y0, x1);
    const float *c = nf__dnnl_px(x, y1, x0), *d = nf__dnnl_px(x, y1, x1);
    int s = x->cstride;
    for (int k = c0; k < c0 + n; k++) {
        float top = (1 - lx) * AT(a, s, k) + lx * AT(b, s, k);
        float bot = (1 - lx) * AT(c, s, k) + lx * AT(d, s, k);
        o[k - c0] = (1 - ly) * top + ly * bot;
    }
}

static inline void pool_px(const struct nf_dnnl_rt *x, int oy, int ox,
                           float *restrict o, int c0, int n)
{
    const float *a = nf__dnnl_px(x, 2 * oy, 2 * ox);
    const float *b = nf__dnnl_px(x, 2 * oy, 2 * ox + 1);
    const float *c = nf__dnnl_px(x, 2 * oy + 1, 2 * ox);
    const float *d = nf__dnnl_px(x, 2 * oy + 1, 2 * ox + 1);
    int s = x->cstride;
    for (int k = c0; k < c0 + n; k++)
        o[k - c0] =
            (AT(a, s, k) + AT(b, s, k) + AT(c, s, k) + AT(d, s, k)) / 4.0f;
}

/* Output row oy when both views keep a pixel's channels contiguous in
 * cells of one pixel (plain tensors and concat slices): no per-pixel
 * address arithmetic beyond a multiply. */
static void plain_row(int op, const struct nf_dnnl_rt *x,
                      const struct nf_dnnl_rt *y, const struct nf_dnnl_tail *t,
                      int oy)
{
    int c = y->c, xp = x->pix, yp = y->pix;
    float *o = y->p + oy * y->row;
    if (op == NF_OP_UPSAMPLE2X_NEAREST) {
        const float *s = x->p + (oy / 2) * x->row;
        for (int ox = 0; ox < y->w; ox++)
            for (int k = 0; k < c; k++)
                o[(ptrdiff_t)ox * yp + k] = s[(ptrdiff_t)(ox / 2) * xp + k];
    } else if (op == NF_OP_AVGPOOL2X2) {
        const float *s0 = x->p + 2 * oy * x->row, *s1 = s0 + x->row;
        for (int ox = 0; ox < y->w; ox++) {
            const float *a = s0 + (ptrdiff_t)2 * ox * xp, *b = a + xp;
            const float *d = s1 + (ptrdiff_t)2 * ox * xp, *e = d + xp;
            for (int k = 0; k < c; k++)
                o[(ptrdiff_t)ox * yp + k] = (a[k] + b[k] + d[k] + e[k]) / 4.0f;
        }
    } else {
        /* Source columns in chunks, computed once for all the rows. */
        int y0, y1;
        float ly;
        linear_source(oy, x->h, &y0, &y1, &ly);
        const float *r0 = x->p + y0 * x->row, *r1 = x->p + y1 * x->row;
        for (int c0 = 0; c0 < y->w; c0 += COLS) {
            int x0[COLS], x1[COLS], n = y->w - c0 < COLS ? y->w - c0 : COLS;
            float lx[COLS];
            for (int i = 0; i < n; i++)
                linear_source(c0 + i, x->w, &x0[i], &x1[i], &lx[i]);
            for (int i = 0; i < n; i++) {
                const float *a = r0 + (ptrdiff_t)x0[i] * xp;
                const float *b = r0 + (ptrdiff_t)x1[i] * xp;
                const float *d = r1 + (ptrdiff_t)x0[i] * xp;
                const float *e = r1 + (ptrdiff_t)x1[i] * xp;
                float *q = o + (ptrdiff_t)(c0 + i) * yp, l = lx[i];
                for (int k = 0; k < c; k++) {
                    float top = (1 - l) * a[k] + l * b[k];
                    float bot = (1 - l) * d[k] + l * e[k];
                    q[k] = (1 - ly) * top + ly * bot;
                }
            }
        }
    }
    if (t->n > 0)
        for (int ox = 0; ox < y->w; ox++)
            nf__dnnl_tail_apply(t, o + (ptrdiff_t)ox * yp, c);
}

void nf__dnnl_resample_rows(int op, const struct nf_dnnl_rt *x,
                            const struct nf_dnnl_rt *y,
                            const struct nf_dnnl_tail *t, int y0, int y1)
{
    float tmp[CHUNK];
    if (x->r == 1 && y->r == 1 && x->cstride == 1 && y->cstride == 1) {
        for (int oy = y0; oy < y1; oy++)
            plain_row(op, x, y, t, oy);
        return;
    }
    for (int oy = y0; oy < y1; oy++) {
        int sy0 = 0, sy1 = 0;
        float ly = 0;
        if (op == NF_OP_UPSAMPLE2X_BILINEAR)
            linear_source(oy, x->h, &sy0, &sy1, &ly);
        for (int ox = 0; ox < y->w; ox++) {
            int sx0 = 0, sx1 = 0;
            float lx = 0;
            if (op == NF_OP_UPSAMPLE2X_BILINEAR)
                linear_source(ox, x->w, &sx0, &sx1, &lx);
            float *po = nf__dnnl_px(y, oy, ox);
            for (int c0 = 0; c0 < y->c; c0 += CHUNK) {
                int n = y->c - c0 < CHUNK ? y->c - c0 : CHUNK;
                if (op == NF_OP_UPSAMPLE2X_BILINEAR) {
                    bilinear_px(x, sy0, sy1, ly, sx0, sx1, lx, tmp, c0, n);
                } else if (op == NF_OP_AVGPOOL2X2) {
                    pool_px(x, oy, ox, tmp, c0, n);
                } else {
                    const float *pi = nf__dnnl_px(x, oy / 2, ox / 2);
                    for (int k = 0; k < n; k++)
                        tmp[k] = AT(pi, x->cstride, c0 + k);
                }
                nf__dnnl_tail_apply(t, tmp, n);
                for (int k = 0; k < n; k++)
                    AT(po, y->cstride, c0 + k) = tmp[k];
            }
        }
    }
}
