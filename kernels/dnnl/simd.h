/*
 * simd.h - AVX-512 helpers shared by this folder's kernels (static inline,
 * compiled per function for the avx512 target; callers check
 * nf__dnnl_avx512() at run time and keep a plain C path).
 *
 * Masked stores and loads are avoided where a cell's size allows: on this
 * project's AMD Zen CPU masked stores are several times slower than plain
 * stores (measured: 0.74 vs 0.23 ms for 77k stores of 12 floats) and
 * masked loads slower than plain ones, so a partial vector is stored in
 * 4-, 2- and 1-element pieces and loaded in 8- and 4-element ones.
 */
#ifndef NF_DNNL_SIMD_H
#define NF_DNNL_SIMD_H

#include <stdint.h>
#include <string.h>

#include "dnnl-impl.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define NF_DNNL_AVX512 1
#define NF_DNNL_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

/* 1 if the CPU runs the AVX-512 paths (F, BW and VL). */
static inline int nf__dnnl_avx512(void)
{
    return __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

/* The mask of the first n (1..16) lanes. */
static inline __mmask16 nf__dnnl_mask(int n)
{
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}

/*
 * The first n (1..16) floats at p, the other lanes zero, reading nothing
 * past p + n. Whole 4- and 8-float pieces where n allows, as masked loads
 * are slow on this AMD CPU too, even with every lane enabled (README.md,
 * "Masked loads": the toon model's fused tail and pixel passes took a
 * third less time without them).
 */
NF_DNNL_TARGET static inline __m512 nf__dnnl_load16(const float *p, int n)
{
    switch (n) {
    case 4:
        return _mm512_zextps128_ps512(_mm_loadu_ps(p));
    case 8:
        return _mm512_zextps256_ps512(_mm256_loadu_ps(p));
    case 12:
        return _mm512_insertf32x4(_mm512_zextps256_ps512(_mm256_loadu_ps(p)),
                                  _mm_loadu_ps(p + 8), 2);
    default:
        if (n >= 16)
            return _mm512_loadu_ps(p);
        return _mm512_maskz_loadu_ps(nf__dnnl_mask(n), p);
    }
}

/* Stores the first n (1..16) floats of x. */
NF_DNNL_TARGET static inline void nf__dnnl_store16(float *p, __m512 x, int n)
{
    if (n >= 16) {
        _mm512_storeu_ps(p, x);
        return;
    }
    __m128 q[4] = {_mm512_castps512_ps128(x), _mm512_extractf32x4_ps(x, 1),
                   _mm512_extractf32x4_ps(x, 2), _mm512_extractf32x4_ps(x, 3)};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(p + i, q[i / 4]);
    if (i == n)
        return;
    __m128 t = q[i / 4];
    if (n - i >= 2) {
        _mm_storel_pi((__m64 *)(void *)(p + i), t);
        t = _mm_movehl_ps(t, t);
        i += 2;
    }
    if (i < n)
        _mm_store_ss(p + i, t);
}

/* Stores the first n (1..16) bytes of b. */
NF_DNNL_TARGET static inline void nf__dnnl_store16b(uint8_t *p, __m128i b,
                                                    int n)
{
    if (n >= 16) {
        _mm_storeu_si128((void *)p, b);
        return;
    }
    uint64_t lo = (uint64_t)_mm_cvtsi128_si64(b);
    int i = 0;
    if (n >= 8) {
        memcpy(p, &lo, 8);
        lo = (uint64_t)_mm_extract_epi64(b, 1);
        i = 8;
    }
    if (n - i >= 4) {
        uint32_t w = (uint32_t)lo;
        memcpy(p + i, &w, 4);
        lo >>= 32;
        i += 4;
    }
    for (; i < n; i++, lo >>= 8)
        p[i] = (uint8_t)lo;
}

/* 8 bits of already clamped values: (uint8_t)(v * 255 + 0.5). */
NF_DNNL_TARGET static inline __m128i nf__dnnl_bytes16(__m512 v)
{
    v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(255.0f)),
                      _mm512_set1_ps(0.5f));
    return _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v));
}

/* [0, 1], NaN becomes 0 (max returns its second operand on NaN). */
NF_DNNL_TARGET static inline __m512 nf__dnnl_clamp01_16(__m512 x)
{
    return _mm512_min_ps(_mm512_max_ps(x, _mm512_setzero_ps()),
                         _mm512_set1_ps(1.0f));
}

/*
 * e^x for 16 floats: x = n ln2 + f, |f| <= ln2 / 2, e^f by its Taylor
 * polynomial to degree 7 (relative error below 2e-7 against expf), scaled
 * by 2^n. Inputs are clamped to where expf is finite and not denormal.
 */
NF_DNNL_TARGET static inline __m512 nf__dnnl_exp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)),
                      _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(
        _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    f = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), f);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/*
 * An activation on 16 floats. relu and the clamps give the reference's
 * results exactly: max/min return their second operand when the first is
 * NaN, as `x > 0 ? x : 0` and fmaxf do. sigmoid is 1 / (1 + e^-x) with
 * nf__dnnl_exp16 (within a few 1e-7 of the reference's expf, as oneDNN's
 * own sigmoid is); tanh goes through libm per element.
 */
NF_DNNL_TARGET static inline __m512 nf__dnnl_act16(const struct nf_dnnl_act *f,
                                                   __m512 x)
{
    __m512 zero = _mm512_setzero_ps();
    switch (f->op) {
    case NF_OP_RELU:
        return _mm512_max_ps(x, zero);
    case NF_OP_LEAKY_RELU: {
        __mmask16 pos = _mm512_cmp_ps_mask(x, zero, _CMP_GT_OQ);
        return _mm512_mask_blend_ps(pos, _mm512_mul_ps(x, _mm512_set1_ps(f->a)),
                                    x);
    }
    case NF_OP_CLAMP:
        return _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(f->a)),
                             _mm512_set1_ps(f->b));
    case NF_OP_SIGMOID: {
        __m512 one = _mm512_set1_ps(1.0f);
        __m512 e = nf__dnnl_exp16(_mm512_sub_ps(zero, x));
        return _mm512_div_ps(one, _mm512_add_ps(one, e));
    }
    default: {
        float t[16];
        _mm512_storeu_ps(t, x);
        for (int i = 0; i < 16; i++)
            t[i] = nf__dnnl_act1(f, t[i]);
        return _mm512_loadu_ps(t);
    }
    }
}
#endif

#endif /* NF_DNNL_SIMD_H */
