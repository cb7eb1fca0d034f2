/*
 * stabilize.c - the motion map and temporal stabilization on rows of 8-bit
 * frames (stabilize.h; the per-element math is correct.h's). Each has a
 * plain version and an AVX2 version of 8 pixels at a time, chosen at run
 * time, with the same operations in the same order (separate multiply and
 * add, truncating conversion), so both give the same bytes.
 */
#include "stabilize.h"

#include <stddef.h>
#include <stdlib.h>

#include "correct.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NF_STAB_AVX2 1
#endif

/* One row of operation 3. */
struct motion_row {
    const uint8_t *a, *b; /* The previous and current input. */
    uint8_t *copy;        /* Where b is copied (the next frame's a). */
    float *s;             /* Motion of each pixel. */
    float *beta;          /* Its cache decay, or NULL. */
    float thr, refresh, decay;
};

/* Pixels [x0, x1) of one row. */
static void motion_px(const struct motion_row *r, int x0, int x1)
{
    for (int x = x0; x < x1; x++) {
        int m = 0;
        for (int c = 0; c < 3; c++) {
            int e = abs(r->a[3 * x + c] - r->b[3 * x + c]);
            m = e > m ? e : m;
            r->copy[3 * x + c] = r->b[3 * x + c];
        }
        r->s[x] = nf_corr_motion(m, r->thr);
        if (r->beta != NULL)
            r->beta[x] = nf_corr_refresh_beta(r->s[x], r->refresh, r->decay);
    }
}

#ifdef NF_STAB_AVX2
/* Channel c of 8 interleaved RGB pixels held as 3 x 8 int32 lanes. */
__attribute__((target("avx2"))) static __m256i channel(const __m256i v[3],
                                                       int c)
{
    /* Element 3p + c of the 24 is lane (3p + c) % 8 of v[(3p + c) / 8]. */
    __m256i idx =
        _mm256_setr_epi32(c, 3 + c, 6 + c, 1 + c, 4 + c, 7 + c, 2 + c, 5 + c);
    idx = _mm256_and_si256(idx, _mm256_set1_epi32(7));
    __m256i p0 = _mm256_permutevar8x32_epi32(v[0], idx);
    __m256i p1 = _mm256_permutevar8x32_epi32(v[1], idx);
    __m256i p2 = _mm256_permutevar8x32_epi32(v[2], idx);
    /* Lanes from v[1] and v[2]: c 0: 3-5 and 6-7; 1: 3-4 and 5-7; 2: 2-4
     * and 5-7. */
    if (c == 0)
        return _mm256_blend_epi32(_mm256_blend_epi32(p0, p1, 0x38), p2, 0xC0);
    if (c == 1)
        return _mm256_blend_epi32(_mm256_blend_epi32(p0, p1, 0x18), p2, 0xE0);
    return _mm256_blend_epi32(_mm256_blend_epi32(p0, p1, 0x1C), p2, 0xE0);
}

/* motion_px for pixels [0, n8), n8 a multiple of 8, thr > 0; returns n8.
 * The same arithmetic: integer maximum, then (m - thr) / thr clamped; the
 * decay's maximum as max_ps (which returns decay where r is not above it,
 * as nf_corr_refresh_beta does). */
__attribute__((target("avx2"))) static int
motion_avx2(const struct motion_row *r, int n8)
{
    const uint8_t *a = r->a, *b = r->b;
    const __m256 t = _mm256_set1_ps(r->thr), zero = _mm256_setzero_ps();
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 refresh = _mm256_set1_ps(r->refresh);
    const __m256 decay = _mm256_set1_ps(r->decay);
    for (int x = 0; x < n8; x += 8) {
        __m256i d[3];
        for (int k = 0; k < 3; k++) {
            int e = 3 * x + 8 * k;
            __m256i va = _mm256_cvtepu8_epi32(
                _mm_loadl_epi64((const __m128i *)(const void *)(a + e)));
            __m128i bytes =
                _mm_loadl_epi64((const __m128i *)(const void *)(b + e));
            _mm_storel_epi64((__m128i *)(void *)(r->copy + e), bytes);
            __m256i vb = _mm256_cvtepu8_epi32(bytes);
            d[k] = _mm256_abs_epi32(_mm256_sub_epi32(va, vb));
        }
        __m256i m = _mm256_max_epi32(
            _mm256_max_epi32(channel(d, 0), channel(d, 1)), channel(d, 2));
        __m256 v = _mm256_div_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(m), t), t);
        v = _mm256_min_ps(_mm256_max_ps(v, zero), one);
        _mm256_storeu_ps(r->s + x, v);
        if (r->beta != NULL)
            _mm256_storeu_ps(r->beta + x,
                             _mm256_max_ps(_mm256_mul_ps(refresh, v), decay));
    }
    return n8;
}
#endif

void nf_stab_motion_rows(const struct nf_corr_motion *m, float decay,
                         const struct nf_image *in, int y0, int y1)
{
    struct motion_row r = {
        .thr = m->threshold, .refresh = m->refresh, .decay = decay};
#ifdef NF_STAB_AVX2
    int avx2 = r.thr > 0.0f && __builtin_cpu_supports("avx2");
#endif
    for (int y = y0; y < y1; y++) {
        size_t px = (size_t)y * in->width;
        r.a = m->prev + 3 * px;
        r.b = in->data + (size_t)y * in->stride;
        r.copy = m->copy + 3 * px;
        r.s = m->motion + px;
        r.beta = m->beta != NULL ? m->beta + px : NULL;
        int x = 0;
#ifdef NF_STAB_AVX2
        if (avx2)
            x = motion_avx2(&r, in->width / 8 * 8);
#endif
        motion_px(&r, x, in->width);
    }
}

/* One row of operation 4. */
struct stab_row {
    const float *s; /* Motion of each pixel of the row. */
    uint8_t *o, *q; /* Model output (becomes the shown value), shown. */
    float *d;       /* The running average, per element. */
    float gmin, dead;
};

static void stabilize_px(const struct stab_row *r, int x0, int x1)
{
    for (int x = x0; x < x1; x++) {
        float g, band;
        nf_corr_stab_gain(r->s[x], r->gmin, r->dead, &g, &band);
        for (int c = 3 * x; c < 3 * x + 3; c++)
            r->o[c] = nf_corr_stab(&r->d[c], &r->q[c], r->o[c], g, band);
    }
}

#ifdef NF_STAB_AVX2
/* 8 bytes as 8 floats. */
__attribute__((target("avx2"))) static __m256 bytes8(const uint8_t *p)
{
    __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)p);
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
}

/* Pixels [0, n8) of the row, n8 a multiple of 8; returns n8. */
__attribute__((target("avx2"))) static int
stabilize_avx2(const struct stab_row *r, int n8)
{
    const __m256i spread[3] = {_mm256_setr_epi32(0, 0, 0, 1, 1, 1, 2, 2),
                               _mm256_setr_epi32(2, 3, 3, 3, 4, 4, 4, 5),
                               _mm256_setr_epi32(5, 5, 6, 6, 6, 7, 7, 7)};
    const __m256 gmin = _mm256_set1_ps(r->gmin), one = _mm256_set1_ps(1.0f);
    const __m256 gk = _mm256_set1_ps(1.0f - r->gmin);
    const __m256 dead = _mm256_set1_ps(r->dead), half = _mm256_set1_ps(0.5f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int x = 0; x < n8; x += 8) {
        __m256 s = _mm256_loadu_ps(r->s + x);
        __m256 g8 = _mm256_add_ps(gmin, _mm256_mul_ps(gk, s));
        __m256 band8 = _mm256_add_ps(_mm256_mul_ps(dead, _mm256_sub_ps(one, s)),
                                     _mm256_mul_ps(half, s));
        for (int k = 0; k < 3; k++) {
            int e = 3 * x + 8 * k;
            __m256 g = _mm256_permutevar8x32_ps(g8, spread[k]);
            __m256 band = _mm256_permutevar8x32_ps(band8, spread[k]);
            __m256 d = _mm256_loadu_ps(r->d + e);
            __m256 v = _mm256_add_ps(
                d, _mm256_mul_ps(g, _mm256_sub_ps(bytes8(r->o + e), d)));
            __m256 shown = bytes8(r->q + e);
            __m256 far =
                _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(v, shown)),
                              band, _CMP_GE_OQ);
            __m256i b = _mm256_cvttps_epi32(_mm256_add_ps(v, half));
            __m256i q = _mm256_castps_si256(_mm256_blendv_ps(
                _mm256_castsi256_ps(_mm256_cvttps_epi32(shown)),
                _mm256_castsi256_ps(b), far));
            __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q),
                                         _mm256_extracti128_si256(q, 1));
            __m128i bytes = _mm_packus_epi16(w, w);
            _mm256_storeu_ps(r->d + e, v);
            _mm_storel_epi64((__m128i *)(void *)(r->q + e), bytes);
            _mm_storel_epi64((__m128i *)(void *)(r->o + e), bytes);
        }
    }
    return n8;
}
#endif

void nf_stab_rows(const struct nf_corr_stab *s, const struct nf_image *out,
                  int y0, int y1)
{
#ifdef NF_STAB_AVX2
    int avx2 = __builtin_cpu_supports("avx2");
#endif
    for (int y = y0; y < y1; y++) {
        size_t row = (size_t)y * 3 * out->width;
        struct stab_row r = {s->motion + (size_t)y * out->width,
                             out->data + (size_t)y * out->stride,
                             s->shown + row,
                             s->avg + row,
                             s->blend,
                             s->deadband};
        int x = 0;
#ifdef NF_STAB_AVX2
        if (avx2)
            x = stabilize_avx2(&r, out->width / 8 * 8);
#endif
        stabilize_px(&r, x, out->width);
    }
}
