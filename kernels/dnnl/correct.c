/*
 * correct.c - drift correction of a predict item (backend.h) on views:
 * the cache decayed toward the input before the graph runs, and the offset
 * field added to the output before it is clamped, rounded and cached. The
 * per-element math is kernels/correct.h's, shared with every backend, so
 * that results match the reference exactly; this file only walks the
 * views. The offset's bilinear axis positions are computed once per column
 * (and per row) instead of per element.
 */
#include "correct.h"
#include "dnnl-impl.h"

void nf__dnnl_decay_rows(const struct nf_dnnl_rt *cache,
                         const struct nf_dnnl_rt *frame, const float *map,
                         float decay, int width, int height, int y0, int y1)
{
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < cache->w; x++) {
            float beta = nf_corr_beta_at(map, decay, x, y, width, height);
            float *c = nf__dnnl_px(cache, y, x);
            const float *f = nf__dnnl_px(frame, y, x);
            for (int k = 0; k < 3; k++)
                c[k * cache->cstride] = nf_corr_decay(
                    c[k * cache->cstride], f[k * frame->cstride], beta);
        }
}

void nf__dnnl_offset_axis(int n_out, int n_grid, int size,
                          struct nf_dnnl_axis *axis)
{
    for (int o = 0; o < n_out; o++)
        nf_corr_axis(o, size, n_grid, &axis[o].i0, &axis[o].i1, &axis[o].l);
}

void nf__dnnl_offset_rows(const struct nf_dnnl_rt *v,
                          const struct nf_dnnl_offset *off,
                          const struct nf_image *rgb, int y0, int y1)
{
    int gw = off->gw, gh = off->gh;
    for (int y = y0; y < y1; y++) {
        struct nf_dnnl_axis ay;
        nf_corr_axis(y, off->height, gh, &ay.i0, &ay.i1, &ay.l);
        for (int x = 0; x < v->w; x++) {
            const struct nf_dnnl_axis *ax = &off->x[x];
            float *p = nf__dnnl_px(v, y, x);
            for (int c = 0; c < 3; c++) {
                /* nf_corr_offset_at() with the axes looked up. */
                const float *g = off->grid + (size_t)c * gw * gh;
                float top = (1.0f - ax->l) * g[ay.i0 * gw + ax->i0] +
                            ax->l * g[ay.i0 * gw + ax->i1];
                float bot = (1.0f - ax->l) * g[ay.i1 * gw + ax->i0] +
                            ax->l * g[ay.i1 * gw + ax->i1];
                float o =
                    p[c * v->cstride] + ((1.0f - ay.l) * top + ay.l * bot);
                p[c * v->cstride] = o > 0 ? (o < 1 ? o : 1.0f) : 0.0f;
            }
        }
        if (rgb != NULL)
            nf__dnnl_to_rgb_cols(rgb, v, y, 0);
    }
}
