/*
 * pad.c - fills the halo ring that a padded convolution reads, so that
 * oneDNN (which pads with zeros only) sees PyTorch's padding: "reflect"
 * mirrors without repeating the edge (index -1 reads 1, index n reads
 * n - 2; beyond the size it keeps folding with period 2n - 2, and a size of
 * 1 repeats its only pixel), "zeros" writes zeros. Columns of the interior
 * rows first, then whole rows (their ring columns included), which makes
 * the corners right. Whole cells are copied, so a block of several values
 * is padded at once. O(perimeter): no threads.
 */
#include <string.h>

#include "dnnl-impl.h"
#include "pad.h"

void nf__dnnl_halo(const struct nf_dnnl_rt *v, int width, int pad_mode)
{
    size_t bytes = (size_t)v->pix * sizeof(float);
    int zero = pad_mode != NF_PAD_REFLECT;
    for (int y = 0; y < v->h; y++) {
        float *row = v->p + y * v->row;
        for (int k = 1; k <= width; k++) {
            float *l = row - (ptrdiff_t)k * v->pix;
            float *r = row + (ptrdiff_t)(v->w - 1 + k) * v->pix;
            if (zero) {
                memset(l, 0, bytes);
                memset(r, 0, bytes);
            } else {
                memcpy(l, row + (ptrdiff_t)nf_reflect_index(-k, v->w) * v->pix,
                       bytes);
                memcpy(r,
                       row + (ptrdiff_t)nf_reflect_index(v->w - 1 + k, v->w) *
                                 v->pix,
                       bytes);
            }
        }
    }
    size_t row_bytes = (size_t)(v->w + 2 * width) * bytes;
    for (int k = 1; k <= width; k++) {
        float *t = v->p - k * v->row - (ptrdiff_t)width * v->pix;
        float *b = v->p + (v->h - 1 + k) * v->row - (ptrdiff_t)width * v->pix;
        if (zero) {
            memset(t, 0, row_bytes);
            memset(b, 0, row_bytes);
        } else {
            const float *st = v->p + nf_reflect_index(-k, v->h) * v->row;
            const float *sb =
                v->p + nf_reflect_index(v->h - 1 + k, v->h) * v->row;
            memcpy(t, st - (ptrdiff_t)width * v->pix, row_bytes);
            memcpy(b, sb - (ptrdiff_t)width * v->pix, row_bytes);
        }
    }
}
