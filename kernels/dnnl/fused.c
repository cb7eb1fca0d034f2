/*
 * fused.c - a group of point-wise nodes (add, mul, scale_shift and the
 * activations) run as one pass over memory (EXPR steps, planned in
 * plan.c). All views of a group share their cells (the same r, each
 * pixel's c channels contiguous), so a cell is `len` floats at the same
 * offsets in every view. A chain of k point-wise nodes then costs one pass
 * instead of k, which matters for the full-resolution tails of the shipped
 * models (blends of the frame, the cache and the network's proposal): the
 * input block is read once instead of once per node.
 *
 * The program is interpreted per chunk of cells: each register holds up to
 * CHUNK floats, L1-resident, a cell padded to whole vectors of 16; inputs
 * are gathered into registers, each op is one vector loop over the chunk,
 * and outputs are scattered back (so in-place outputs are safe).
 * The arithmetic is the reference's, operation for operation (separate
 * multiply and add; the sink's clamp and rounding as elementwise.c's).
 */
#include <math.h>
#include <string.h>

#include "dnnl-impl.h"
#include "simd.h"

/* Floats per register: 12 cells of 12 padded to 16, so that an op's loop
 * pays its call and dispatch once per 12 cells (96 floats: 0.2-0.3 ms
 * more per 640x480 tail on one thread); the registers a shipped model
 * uses (17) stay well inside L1. */
#define CHUNK 192
#define REGS  (NF_DNNL_EXPR_IN + NF_DNNL_EXPR_OPS)

int nf__dnnl_expr_units(const struct nf_dnnl_expr_args *a)
{
    const struct nf_dnnl_rt *v = &a->in[0];
    return v->h / v->r;
}

/* A cell in the registers: len rounded up to whole vectors of 16. */
int nf__dnnl_expr_period(int len)
{
    return (len + 15) / 16 * 16;
}

/* One chunk: `cells` cells from cell cx, floats [k0, k0 + sub) of each;
 * in the registers a cell takes `pad` floats (sub rounded up to 16). */
struct chunk {
    int cx, cells, k0, sub, pad;
};

/* n floats (a multiple of 16) of z = op(x, y); AFFINE parameters repeat
 * every `period` floats from sc and sh. */
static void op_c(const struct nf_dnnl_expr_op *o, const float *x,
                 const float *y, float *z, int n, const float *sc,
                 const float *sh, int period, int c)
{
    for (int i = 0; i < n; i++) {
        float v = x[i];
        switch (o->op) {
        case NF_DNNL_ADD:
            v = v + y[i];
            break;
        case NF_DNNL_MUL:
            v = v * y[i];
            break;
        case NF_DNNL_AFFINE:
            v = v * sc[i % period];
            v = v + sh[i % period];
            break;
        case NF_DNNL_COPY:
            break;
        case NF_DNNL_EXPR_CONV: {
            /* The reference's order: bias, then channel by channel. */
            int p = i % period, first = i - p % c;
            v = sc[p];
            for (int ci = 0; ci < c; ci++)
                v = v + sc[(1 + ci) * period + p] * x[first + ci];
            break;
        }
        default:
            v = nf__dnnl_act1(&o->act, v);
            break;
        }
        z[i] = v;
    }
}

#ifdef NF_DNNL_AVX512
/* The same 16 floats at a time; registers are whole vectors, so every
 * load here reads exactly what one earlier store wrote (no store-forwarding
 * stalls, which straddling loads cause). */
NF_DNNL_TARGET static void op_avx512(const struct nf_dnnl_expr *e,
                                     const struct nf_dnnl_expr_op *o,
                                     const float *x, const float *y, float *z,
                                     int n, const float *sc, const float *sh,
                                     int period)
{
    if (o->op == NF_DNNL_EXPR_CONV) {
        /* Lane j holds channel j % c of a pixel whose channels start at
         * lane j - j % c (pixels never straddle vectors); e->lane[ci]
         * picks that pixel's channel ci. */
        __m512i idx[16];
        for (int ci = 0; ci < e->c; ci++)
            idx[ci] = _mm512_loadu_si512((const void *)e->lane[ci]);
        for (int i = 0, p = 0; i < n;
             i += 16, p = p + 16 == period ? 0 : p + 16) {
            __m512 v = _mm512_loadu_ps(x + i);
            __m512 acc = _mm512_loadu_ps(sc + p);
            for (int ci = 0; ci < e->c; ci++) {
                __m512 w = _mm512_loadu_ps(sc + (1 + ci) * period + p);
                acc = _mm512_add_ps(
                    acc, _mm512_mul_ps(w, _mm512_permutexvar_ps(idx[ci], v)));
            }
            _mm512_storeu_ps(z + i, acc);
        }
        return;
    }
    /* One loop per kind of op: no branch per vector. */
    switch (o->op) {
    case NF_DNNL_ADD:
        for (int i = 0; i < n; i += 16)
            _mm512_storeu_ps(z + i, _mm512_add_ps(_mm512_loadu_ps(x + i),
                                                  _mm512_loadu_ps(y + i)));
        break;
    case NF_DNNL_MUL:
        for (int i = 0; i < n; i += 16)
            _mm512_storeu_ps(z + i, _mm512_mul_ps(_mm512_loadu_ps(x + i),
                                                  _mm512_loadu_ps(y + i)));
        break;
    case NF_DNNL_AFFINE:
        for (int i = 0, p = 0; i < n;
             i += 16, p = p + 16 == period ? 0 : p + 16) {
            __m512 v =
                _mm512_mul_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(sc + p));
            _mm512_storeu_ps(z + i, _mm512_add_ps(v, _mm512_loadu_ps(sh + p)));
        }
        break;
    case NF_DNNL_COPY:
        for (int i = 0; i < n; i += 16)
            _mm512_storeu_ps(z + i, _mm512_loadu_ps(x + i));
        break;
    default:
        for (int i = 0; i < n; i += 16)
            _mm512_storeu_ps(z + i,
                             nf__dnnl_act16(&o->act, _mm512_loadu_ps(x + i)));
        break;
    }
}

/* Cells of a view into padded registers: count runs of n floats. */
NF_DNNL_TARGET static void gather_avx512(const float *src, ptrdiff_t ss,
                                         float *dst, int pad, int n, int count)
{
    for (int k = 0; k < count; k++)
        for (int i = 0; i < n; i += 16)
            _mm512_storeu_ps(dst + k * pad + i,
                             nf__dnnl_load16(src + k * ss + i, n - i));
}

/* And back, clamped to [0, 1] for the sink. */
NF_DNNL_TARGET static void scatter_avx512(const float *src, int pad, float *dst,
                                          ptrdiff_t ds, int n, int count,
                                          int clamp)
{
    for (int k = 0; k < count; k++)
        for (int i = 0; i < n; i += 16) {
            __m512 v = _mm512_loadu_ps(src + k * pad + i);
            if (clamp)
                v = nf__dnnl_clamp01_16(v);
            nf__dnnl_store16(dst + k * ds + i, v, n - i);
        }
}

/* A padded sink register as bytes, cell by cell (clamped first). */
NF_DNNL_TARGET static void bytes_avx512(const float *src, int pad, uint8_t *dst,
                                        int n, int count)
{
    for (int k = 0; k < count; k++)
        for (int i = 0; i < n; i += 16) {
            __m512 v = nf__dnnl_clamp01_16(_mm512_loadu_ps(src + k * pad + i));
            _mm_storeu_si128((void *)(dst + k * pad + i), nf__dnnl_bytes16(v));
        }
}
#endif

static void gather_c(const float *src, ptrdiff_t ss, float *dst, int pad, int n,
                     int count)
{
    for (int k = 0; k < count; k++) {
        memcpy(dst + k * pad, src + k * ss, (size_t)n * sizeof *dst);
        memset(dst + k * pad + n, 0, (size_t)(pad - n) * sizeof *dst);
    }
}

static float clamp01(float v)
{
    return v > 0 ? (v < 1 ? v : 1.0f) : 0.0f;
}

static void scatter_c(const float *src, int pad, float *dst, ptrdiff_t ds,
                      int n, int count, int clamp)
{
    for (int k = 0; k < count; k++)
        for (int i = 0; i < n; i++)
            dst[k * ds + i] =
                clamp ? clamp01(src[k * pad + i]) : src[k * pad + i];
}

static void bytes_c(const float *src, int pad, uint8_t *dst, int n, int count)
{
    for (int k = 0; k < count; k++)
        for (int i = 0; i < n; i++)
            dst[k * pad + i] =
                (uint8_t)(clamp01(src[k * pad + i]) * 255.0f + 0.5f);
}

/* What one call works with: the row's view starts and the kernels. */
struct ctx {
    const struct nf_dnnl_expr_args *a;
    const float *in[NF_DNNL_EXPR_IN];
    float *out[NF_DNNL_EXPR_OUT];
#ifdef NF_DNNL_AVX512
    int simd; /* The CPU runs the AVX-512 paths. */
#endif
    float (*reg)[CHUNK];
};

/* The sink's cells of this chunk as 8-bit pixels, from register z. */
static void chunk_rgb(const struct ctx *c, const struct chunk *ch, int y,
                      const float *z)
{
    const struct nf_dnnl_expr_args *a = c->a;
    const struct nf_image *im = a->rgb;
    int r = a->in[0].r, n = 3 * r;
    uint8_t b[CHUNK];
#ifdef NF_DNNL_AVX512
    if (c->simd)
        bytes_avx512(z, ch->pad, b, ch->sub, ch->cells);
    else
        bytes_c(z, ch->pad, b, ch->sub, ch->cells);
#else
    bytes_c(z, ch->pad, b, ch->sub, ch->cells);
#endif
    /* Cells wholly inside the frame; the shipped models' r = 2 as a
     * constant size (a call to memcpy per 6 bytes costs more than the
     * copy). */
    int whole = im->width / r - ch->cx;
    whole = whole < 0 ? 0 : whole < ch->cells ? whole : ch->cells;
    for (int i = 0; i < r && y * r + i < im->height; i++) {
        uint8_t *row = im->data + (size_t)(y * r + i) * im->stride;
        const uint8_t *s = b + i * n;
        int k = 0;
        if (r == 2)
            for (; k < whole; k++)
                memcpy(row + 6 * (ch->cx + k), s + k * ch->pad, 6);
        for (; k < ch->cells; k++) {
            int x0 = (ch->cx + k) * r;
            int m = im->width - x0 < r ? im->width - x0 : r;
            if (m > 0)
                memcpy(row + 3 * x0, s + k * ch->pad, (size_t)(3 * m));
        }
    }
}

/* Runs the program on one chunk of cell row y. */
static void run_chunk(const struct ctx *c, const struct chunk *ch, int y)
{
    const struct nf_dnnl_expr_args *a = c->a;
    const struct nf_dnnl_expr *e = a->e;
    int n = ch->cells * ch->pad, period = nf__dnnl_expr_period(e->len);
    for (int i = 0; i < e->n_in; i++) {
        const float *src = c->in[i] + (ptrdiff_t)ch->cx * a->in[i].pix + ch->k0;
#ifdef NF_DNNL_AVX512
        if (c->simd) {
            gather_avx512(src, a->in[i].pix, c->reg[i], ch->pad, ch->sub,
                          ch->cells);
            continue;
        }
#endif
        gather_c(src, a->in[i].pix, c->reg[i], ch->pad, ch->sub, ch->cells);
    }
    for (int j = 0; j < e->n_ops; j++) {
        const struct nf_dnnl_expr_op *o = &e->ops[j];
        const float *sc = e->params ? e->params + o->params + ch->k0 : NULL;
        const float *sh = sc ? sc + period : NULL;
        const float *x = c->reg[o->a], *yy = c->reg[o->b >= 0 ? o->b : o->a];
        float *z = c->reg[e->n_in + j];
#ifdef NF_DNNL_AVX512
        if (c->simd) {
            op_avx512(e, o, x, yy, z, n, sc, sh, period);
            continue;
        }
#endif
        op_c(o, x, yy, z, n, sc, sh, period, e->c);
    }
    for (int o = 0; o < e->n_out; o++) {
        const float *z = c->reg[e->out_reg[o]];
        int clamp = o == a->sink && a->clamp01;
        float *dst = c->out[o] + (ptrdiff_t)ch->cx * a->out[o].pix + ch->k0;
#ifdef NF_DNNL_AVX512
        if (c->simd)
            scatter_avx512(z, ch->pad, dst, a->out[o].pix, ch->sub, ch->cells,
                           clamp);
        else
            scatter_c(z, ch->pad, dst, a->out[o].pix, ch->sub, ch->cells,
                      clamp);
#else
        scatter_c(z, ch->pad, dst, a->out[o].pix, ch->sub, ch->cells, clamp);
#endif
        if (o == a->sink && a->rgb != NULL && ch->sub == e->len)
            chunk_rgb(c, ch, y, z);
    }
}

void nf__dnnl_expr_rows(const struct nf_dnnl_expr_args *a, int u0, int u1)
{
    const struct nf_dnnl_expr *e = a->e;
    const struct nf_dnnl_rt *v = &a->in[0];
    float reg[REGS][CHUNK];
    struct ctx c = {.a = a, .reg = reg};
#ifdef NF_DNNL_AVX512
    c.simd = nf__dnnl_avx512();
#endif
    /* A cell fits the registers whole (padded to 16), or in pieces. */
    int pad = nf__dnnl_expr_period(e->len);
    int sub = pad <= CHUNK ? e->len : CHUNK;
    int per = pad <= CHUNK ? CHUNK / pad : 1, cells = v->w / v->r;
    pad = pad <= CHUNK ? pad : CHUNK;
    for (int y = u0; y < u1; y++) {
        for (int i = 0; i < e->n_in; i++)
            c.in[i] = a->in[i].p + y * a->in[i].row;
        for (int o = 0; o < e->n_out; o++)
            c.out[o] = a->out[o].p + y * a->out[o].row;
        for (int cx = 0; cx < cells; cx += per)
            for (int k0 = 0; k0 < e->len; k0 += sub) {
                struct chunk ch = {cx, cells - cx < per ? cells - cx : per, k0,
                                   e->len - k0 < sub ? e->len - k0 : sub, pad};
                run_chunk(&c, &ch, y);
            }
        /* Cells larger than the registers: the sink's rows afterwards. */
        for (int i = 0; a->rgb && a->sink >= 0 && sub < e->len && i < v->r; i++)
            nf__dnnl_to_rgb_cols(a->rgb, &a->out[a->sink], y * v->r + i, 0);
    }
}
