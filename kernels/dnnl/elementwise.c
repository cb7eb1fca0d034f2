/*
 * elementwise.c - the point-wise kernel: y = tail(op(a, b)) for copy, add,
 * mul and scale_shift, with activations fused behind, over any two views
 * (dnnl-impl.h). Because a view can be a pixel_shuffle'd or unshuffled
 * layout or a concat slice, this one kernel also does the layout changes:
 * a copy from a plain view into an unshuffle's cell grid is the unshuffle.
 *
 * Work is cut into strided runs: `count` runs of `len` contiguous floats,
 * each view stepping by its own stride from one run to the next, one call
 * per row. Which runs a row has depends on the layouts:
 * - cell path, every view stores cells of the same r with each pixel's
 *   channels contiguous: a cell is c * r * r floats in every view, and a
 *   whole cell row is one run when no view is a slice;
 * - group path, views of r = 1 and of one larger R (a shuffle next to a
 *   plain value): R pixels of a row are contiguous in every view;
 * - pixel path otherwise: a run of c floats per pixel, or channel by
 *   channel when a view's channels are strided.
 * Runs go to an AVX-512 implementation (masked loads and stores make any
 * run length cheap) when the CPU has it, else to plain C.
 *
 * The step that computes the model output writes it clamped to [0, 1] into
 * a staging view (the cache entry it becomes) and converts the finished
 * rows to 8-bit RGB right away, while they are in cache (convert.c).
 */
#include <math.h>
#include <string.h>

#include "dnnl-impl.h"
#include "simd.h"

#define CHUNK 256 /* Channels per gathered piece on the strided path. */

float nf__dnnl_act1(const struct nf_dnnl_act *f, float v)
{
    switch (f->op) {
    case NF_OP_RELU:
        return v > 0 ? v : 0.0f;
    case NF_OP_LEAKY_RELU:
        return v > 0 ? v : f->a * v;
    case NF_OP_SIGMOID:
        return 1.0f / (1.0f + expf(-v));
    case NF_OP_TANH:
        return tanhf(v);
    default: /* clamp */
        return fminf(fmaxf(v, f->a), f->b);
    }
}

void nf__dnnl_tail_apply(const struct nf_dnnl_tail *t, float *x, int n)
{
    for (int k = 0; k < t->n; k++)
        for (int i = 0; i < n; i++)
            x[i] = nf__dnnl_act1(&t->f[k], x[i]);
}

/* The sink's clamp: [0, 1], NaN becomes 0 (MODEL.md section 6). */
static float clamp01(float v)
{
    return v > 0 ? (v < 1 ? v : 1.0f) : 0.0f;
}

/* count runs of len floats; run k of a view starts at base + k * stride. */
struct runs {
    int op;
    const float *a, *b;
    float *o; /* May alias a or b run for run (in place). */
    ptrdiff_t sa, sb, so;
    int len, count;
    const float *scale, *shift; /* AFFINE: per channel, or NULL. */
    int period;                 /* AFFINE: channels (runs_c only). */
    const struct nf_dnnl_tail *tail;
    int clamp01;
    /*
     * 8-bit output fused into the runs (cells of 3 channels, r <= 2): run k
     * < rgb_runs is a cell whose sub-row i < rgb_rows goes to rgb + i *
     * rgb_stride + k * 3 * rgb_r as 3 * rgb_r bytes. NULL: none.
     */
    uint8_t *rgb;
    ptrdiff_t rgb_stride;
    int rgb_r, rgb_runs, rgb_rows;
};

/* The tail and the sink's clamp on n floats (plain C). */
static void finish_c(const struct runs *r, float *o, int n)
{
    for (int t = 0; t < r->tail->n; t++)
        for (int i = 0; i < n; i++)
            o[i] = nf__dnnl_act1(&r->tail->f[t], o[i]);
    if (r->clamp01)
        for (int i = 0; i < n; i++)
            o[i] = clamp01(o[i]);
}

/* The fused 8-bit output of run k (values o, already clamped). */
static void rgb_c(const struct runs *r, int k, const float *o)
{
    int n = 3 * r->rgb_r;
    for (int i = 0; k < r->rgb_runs && i < r->rgb_rows; i++)
        for (int j = 0; j < n; j++)
            r->rgb[i * r->rgb_stride + (ptrdiff_t)k * n + j] =
                (uint8_t)(o[i * n + j] * 255.0f + 0.5f);
}

/* scale_shift over n floats, parameters repeating every r->period. */
static void affine_c(const struct runs *r, const float *a, float *o, int n)
{
    const float *s = r->scale, *t = r->shift;
    for (int i = 0, c = 0; i < n; i++) {
        /* The reference's a * w + b, with w = 1 and b = 0 when absent. */
        float v = a[i] * (s ? s[c] : 1.0f);
        o[i] = v + (t ? t[c] : 0.0f);
        c = c + 1 == r->period ? 0 : c + 1;
    }
}

/*
 * Plain C, also the fast path for short runs (a few channels per pixel,
 * where vector setup costs more than it saves). For AFFINE, parameters
 * repeat with the period `period` along a run.
 */
static void runs_c(const struct runs *r)
{
    for (int k = 0; k < r->count; k++) {
        const float *a = r->a + k * r->sa, *b = r->b + k * r->sb;
        float *o = r->o + k * r->so;
        int n = r->len;
        if (n == 3 && r->op != NF_DNNL_AFFINE) {
            /* Three channels: the common small case, unrolled. */
            float b0 = b[0], b1 = b[1], b2 = b[2];
            if (r->op == NF_DNNL_ADD) {
                o[0] = a[0] + b0, o[1] = a[1] + b1, o[2] = a[2] + b2;
            } else if (r->op == NF_DNNL_MUL) {
                o[0] = a[0] * b0, o[1] = a[1] * b1, o[2] = a[2] * b2;
            } else {
                o[0] = a[0], o[1] = a[1], o[2] = a[2];
            }
        } else if (r->op == NF_DNNL_COPY) {
            if (o != a)
                for (int i = 0; i < n; i++)
                    o[i] = a[i];
        } else if (r->op == NF_DNNL_ADD) {
            for (int i = 0; i < n; i++)
                o[i] = a[i] + b[i];
        } else if (r->op == NF_DNNL_MUL) {
            for (int i = 0; i < n; i++)
                o[i] = a[i] * b[i];
        } else {
            affine_c(r, a, o, n);
        }
        if (r->tail->n > 0 || r->clamp01)
            finish_c(r, o, n);
        if (r->rgb != NULL)
            rgb_c(r, k, o);
    }
}

#ifdef NF_DNNL_AVX512
/* The fused 8-bit output of run k, whose len <= 16 values are x. */
NF_DNNL_TARGET static void rgb16(const struct runs *r, int k, __m512 x)
{
    uint8_t b[16];
    _mm_storeu_si128((void *)b, nf__dnnl_bytes16(x));
    int n = 3 * r->rgb_r;
    for (int i = 0; i < r->rgb_rows; i++) {
        uint8_t *d = r->rgb + i * r->rgb_stride + (ptrdiff_t)k * n;
        if (n == 6) {
            memcpy(d, b + 6 * i, 4);
            memcpy(d + 4, b + 6 * i + 4, 2);
        } else {
            memcpy(d, b + n * i, (size_t)n);
        }
    }
}

/* AVX-512: 16 floats at a time, the last piece masked on load. */
NF_DNNL_TARGET static void runs_avx512(const struct runs *r)
{
    for (int k = 0; k < r->count; k++) {
        const float *a = r->a + k * r->sa, *b = r->b + k * r->sb;
        float *o = r->o + k * r->so;
        for (int i = 0; i < r->len; i += 16) {
            int n = r->len - i;
            __m512 x = nf__dnnl_load16(a + i, n);
            if (r->op == NF_DNNL_ADD) {
                x = _mm512_add_ps(x, nf__dnnl_load16(b + i, n));
            } else if (r->op == NF_DNNL_MUL) {
                x = _mm512_mul_ps(x, nf__dnnl_load16(b + i, n));
            } else if (r->op == NF_DNNL_AFFINE) {
                if (r->scale)
                    x = _mm512_mul_ps(x, nf__dnnl_load16(r->scale + i, n));
                if (r->shift)
                    x = _mm512_add_ps(x, nf__dnnl_load16(r->shift + i, n));
            }
            for (int t = 0; t < r->tail->n; t++)
                x = nf__dnnl_act16(&r->tail->f[t], x);
            if (r->clamp01)
                x = nf__dnnl_clamp01_16(x);
            nf__dnnl_store16(o + i, x, n);
            if (r->rgb != NULL && k < r->rgb_runs)
                rgb16(r, k, x);
        }
    }
}
#endif

static void do_runs(const struct runs *r)
{
#ifdef NF_DNNL_AVX512
    /* Short runs go to plain C. */
    if (r->len >= 8 && nf__dnnl_avx512()) {
        if (r->op != NF_DNNL_AFFINE || r->period == r->len) {
            runs_avx512(r);
            return;
        }
        if (r->len <= 64 && r->len % r->period == 0) {
            /* scale_shift over cells of several pixels: parameters
             * repeated along the run (1 and 0 where absent, as the
             * reference computes them). */
            float sc[64], sh[64];
            struct runs e = *r;
            for (int i = 0; i < r->len; i++) {
                sc[i] = r->scale ? r->scale[i % r->period] : 1.0f;
                sh[i] = r->shift ? r->shift[i % r->period] : 0.0f;
            }
            e.scale = sc;
            e.shift = sh;
            e.period = e.len;
            runs_avx512(&e);
            return;
        }
    }
#endif
    runs_c(r);
}

/* Whether the cell path applies: same r everywhere, pixels contiguous. */
static int cell_path(const struct nf_dnnl_pixel_args *a)
{
    const struct nf_dnnl_rt *o = &a->out;
    for (int k = 0; k <= a->n_in; k++) {
        const struct nf_dnnl_rt *v = k < a->n_in ? &a->in[k] : o;
        if (v->r != o->r || v->cstride != 1 || (v->r > 1 && v->sstride != v->c))
            return 0;
    }
    return 1;
}

/* The group size R of the group path, or 0 if it does not apply. */
static int group_size(const struct nf_dnnl_pixel_args *a)
{
    const struct nf_dnnl_rt *o = &a->out;
    int big = 1;
    for (int k = 0; k <= a->n_in; k++) {
        const struct nf_dnnl_rt *v = k < a->n_in ? &a->in[k] : o;
        big = v->r > big ? v->r : big;
    }
    for (int k = 0; k <= a->n_in; k++) {
        const struct nf_dnnl_rt *v = k < a->n_in ? &a->in[k] : o;
        int plain = v->r == 1 && v->pix == v->c;
        int spm = v->r == big && v->sstride == v->c;
        if (v->cstride != 1 || !(plain || spm) || a->op == NF_DNNL_AFFINE)
            return 0;
    }
    return big;
}

int nf__dnnl_pixel_units(const struct nf_dnnl_pixel_args *a)
{
    return cell_path(a) ? a->out.h / a->out.r : a->out.h;
}

/* Cell row y on the cell path. */
static void cell_row(const struct nf_dnnl_pixel_args *a, struct runs *r, int y)
{
    const struct nf_dnnl_rt *o = &a->out, *x = &a->in[0];
    const struct nf_dnnl_rt *z = a->n_in > 1 ? &a->in[1] : x;
    int c = o->c, sub = o->r * o->r, len = c * sub, cw = o->w / o->r;
    int dense = o->pix == len && x->pix == len && z->pix == len;
    r->a = x->p + y * x->row;
    r->b = z->p + y * z->row;
    r->o = o->p + y * o->row;
    if (a->op == NF_DNNL_AFFINE) {
        /* Channel parameters repeat every c floats along the run. */
        r->period = c;
        if (c >= 8) {
            /* One run per pixel: AVX-512 with the parameters aligned. */
            r->len = c;
            r->count = dense ? cw * sub : sub;
            r->sa = r->sb = r->so = c;
            for (int cx = 0; cx < (dense ? 1 : cw); cx++) {
                do_runs(r);
                r->a += x->pix;
                r->b += z->pix;
                r->o += o->pix;
            }
            return;
        }
    }
    r->len = dense ? cw * len : len;
    r->count = dense ? 1 : cw;
    r->sa = x->pix;
    r->sb = z->pix;
    r->so = o->pix;
    const struct nf_image *im = a->rgb;
    r->rgb = NULL;
    if (im != NULL && c == 3 && o->r <= 2 && !dense) {
        /* Whole cells inside the image go out with the runs; the rest of
         * the row (a cell cut by the crop) is converted afterwards. */
        r->rgb = im->data + (size_t)y * o->r * im->stride;
        r->rgb_stride = im->stride;
        r->rgb_r = o->r;
        r->rgb_runs = im->width / o->r;
        r->rgb_rows = im->height - y * o->r;
        r->rgb_rows = r->rgb_rows < o->r ? r->rgb_rows : o->r;
    }
    do_runs(r);
}

/* Row base and run stride of view v on the group path (R pixels a run). */
static const float *group_base(const struct nf_dnnl_rt *v, int y, int big,
                               ptrdiff_t *stride)
{
    if (v->r == 1) {
        *stride = (ptrdiff_t)big * v->c;
        return v->p + y * v->row;
    }
    *stride = v->pix;
    return v->p + (y >> v->lr) * v->row + (y & (v->r - 1)) * v->r * v->c;
}

/* One pixel whose views do not all have contiguous channels. */
static void gathered_pixel(const struct nf_dnnl_pixel_args *a, int y, int x)
{
    float ta[CHUNK], tb[CHUNK], to[CHUNK];
    const struct nf_dnnl_rt *o = &a->out;
    const float *pa = nf__dnnl_px(&a->in[0], y, x);
    const float *pb = a->n_in > 1 ? nf__dnnl_px(&a->in[1], y, x) : pa;
    float *po = nf__dnnl_px(o, y, x);
    int sa = a->in[0].cstride, sb = a->n_in > 1 ? a->in[1].cstride : sa;
    for (int c0 = 0; c0 < o->c; c0 += CHUNK) {
        int n = o->c - c0 < CHUNK ? o->c - c0 : CHUNK;
        for (int k = 0; k < n; k++) {
            ta[k] = pa[(ptrdiff_t)(c0 + k) * sa];
            tb[k] = pb[(ptrdiff_t)(c0 + k) * sb];
        }
        struct runs r = {.op = a->op,
                         .a = ta,
                         .b = tb,
                         .o = to,
                         .len = n,
                         .count = 1,
                         .scale = a->scale ? a->scale + c0 : NULL,
                         .shift = a->shift ? a->shift + c0 : NULL,
                         .period = n,
                         .tail = a->tail,
                         .clamp01 = a->clamp01};
        do_runs(&r);
        for (int k = 0; k < n; k++)
            po[(ptrdiff_t)(c0 + k) * o->cstride] = to[k];
    }
}

/* Logical row y on the group or pixel path. */
static void pixel_row(const struct nf_dnnl_pixel_args *a, struct runs *r, int y)
{
    const struct nf_dnnl_rt *o = &a->out, *x = &a->in[0];
    const struct nf_dnnl_rt *z = a->n_in > 1 ? &a->in[1] : x;
    int big = group_size(a);
    if (big > 0) {
        r->a = group_base(x, y, big, &r->sa);
        r->b = group_base(z, y, big, &r->sb);
        r->o = (float *)group_base(o, y, big, &r->so);
        r->len = big * o->c;
        r->count = o->w / big;
        do_runs(r);
        return;
    }
    int contiguous = o->cstride == 1 && x->cstride == 1 && z->cstride == 1;
    r->len = o->c;
    r->count = 1;
    for (int ox = 0; ox < o->w; ox++) {
        if (!contiguous) {
            gathered_pixel(a, y, ox);
            continue;
        }
        r->a = nf__dnnl_px(x, y, ox);
        r->b = nf__dnnl_px(z, y, ox);
        r->o = nf__dnnl_px(o, y, ox);
        do_runs(r);
    }
}

void nf__dnnl_pixel_rows(const struct nf_dnnl_pixel_args *a, int u0, int u1)
{
    struct runs r = {.op = a->op,
                     .scale = a->scale,
                     .shift = a->shift,
                     .period = a->out.c,
                     .tail = a->tail,
                     .clamp01 = a->clamp01};
    int cells = cell_path(a), rows = cells ? a->out.r : 1;
    for (int u = u0; u < u1; u++) {
        if (cells)
            cell_row(a, &r, u);
        else
            pixel_row(a, &r, u);
        int from = r.rgb != NULL ? r.rgb_runs * a->out.r : 0;
        for (int i = 0; a->rgb != NULL && i < rows; i++)
            nf__dnnl_to_rgb_cols(a->rgb, &a->out, u * rows + i, from);
        r.rgb = NULL;
    }
}
