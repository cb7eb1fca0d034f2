/*
 * conv2d.c - the reference 2-D convolution (cross-correlation, as PyTorch).
 *
 * The input is first copied into a padded workspace (zeros or reflect), so
 * that the convolution itself is a branch-free sum over taps:
 *
 *   y[co][oy][ox] = bias[co] + sum over ci in the group, ky, kx of
 *       w[co][ci][ky][kx] * xpad[g * Cin/groups + ci][oy*s + ky][ox*s + kx]
 *
 * summed in exactly that order (ci, then ky, then kx) in float.
 */
#include <assert.h>
#include <string.h>

#include "model-impl.h"
#include "ops.h"
#include "pad.h"

size_t nf__cpu_conv2d_workspace(const struct nf_node *n,
                                const struct nf_cpu_tensor *x)
{
    if (n->padding == 0)
        return 0;
    return (size_t)x->c * (size_t)(x->h + 2 * n->padding) *
           (size_t)(x->w + 2 * n->padding);
}

/* Copies x into xp, (C, H + 2p, W + 2p), filling the border. */
static void pad_input(const struct nf_node *n, const struct nf_cpu_tensor *x,
                      float *xp)
{
    int p = n->padding, hp = x->h + 2 * p, wp = x->w + 2 * p;
    int reflect = n->pad_mode == NF_PAD_REFLECT;
    for (int c = 0; c < x->c; c++) {
        for (int yy = 0; yy < hp; yy++) {
            float *dst = xp + ((size_t)c * hp + yy) * wp;
            int sy = yy - p;
            if (reflect)
                sy = nf_reflect_index(sy, x->h);
            else if (sy < 0 || sy >= x->h) {
                memset(dst, 0, (size_t)wp * sizeof *dst);
                continue;
            }
            const float *src = x->data + ((size_t)c * x->h + sy) * x->w;
            memcpy(dst + p, src, (size_t)x->w * sizeof *dst);
            for (int k = 0; k < p; k++) {
                dst[p - 1 - k] =
                    reflect ? src[nf_reflect_index(-1 - k, x->w)] : 0;
                dst[p + x->w + k] =
                    reflect ? src[nf_reflect_index(x->w + k, x->w)] : 0;
            }
        }
    }
}

/* out (oh, ow) += wv * x[oy * s][ox * s], x a padded plane wp wide. */
static void add_tap(float *restrict out, int oh, int ow,
                    const float *restrict x, int wp, int s, float wv)
{
    for (int oy = 0; oy < oh; oy++) {
        const float *row = x + (size_t)oy * s * wp;
        float *o = out + (size_t)oy * ow;
        if (s == 1) {
            for (int ox = 0; ox < ow; ox++)
                o[ox] += wv * row[ox];
        } else {
            for (int ox = 0; ox < ow; ox++)
                o[ox] += wv * row[(size_t)ox * s];
        }
    }
}

void nf__cpu_conv2d(const struct nf_node *n, const struct nf_cpu_tensor *x,
                    const struct nf_cpu_tensor *y, float *work)
{
    int p = n->padding, s = n->stride, kh = n->kh, kw = n->kw;
    int hp = x->h + 2 * p, wp = x->w + 2 * p;
    int cin_g = x->c / n->groups, cout_g = y->c / n->groups;
    assert(y->h == x->h / s && y->w == x->w / s);
    assert((y->h - 1) * s + kh <= hp && (y->w - 1) * s + kw <= wp);
    const float *xp = x->data;
    if (p > 0) {
        pad_input(n, x, work);
        xp = work;
    }
    size_t plane = (size_t)y->h * y->w;
    for (int co = 0; co < y->c; co++) {
        float *yo = y->data + co * plane;
        float b = n->bias ? n->bias->data[co] : 0.0f;
        for (size_t k = 0; k < plane; k++)
            yo[k] = b;
        int g = co / cout_g;
        for (int ci = 0; ci < cin_g; ci++) {
            const float *xi = xp + (size_t)(g * cin_g + ci) * hp * wp;
            const float *wk =
                n->weight->data + ((size_t)co * cin_g + ci) * kh * kw;
            for (int ky = 0; ky < kh; ky++)
                for (int kx = 0; kx < kw; kx++)
                    add_tap(yo, y->h, y->w, xi + (size_t)ky * wp + kx, wp, s,
                            wk[ky * kw + kx]);
        }
    }
}
