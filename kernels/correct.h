/*
 * correct.h - the per-element math of drift correction that every backend
 * applies (docs/TEMPORAL.md explains why; kernels/temporal.c decides the
 * values).
 *
 * A predict item may carry a struct nf_correction (backend.h). A backend
 * applies it with these operations, defined here once so that the CPU
 * backends (gcc) and a CUDA backend (nvcc, device code) compute the same
 * thing:
 *
 *   1. decay, before the graph runs, to every cache entry of a warm slot,
 *      element by element: cache = (1 - beta) * cache + beta * frame,
 *      where frame is the current (padded) input in [0, 1] and beta is
 *      either one number or a per-pixel map (nf_corr_beta_at);
 *   2. offset, after the graph, to the float output before it is clamped,
 *      rounded and pushed into the cache: y += offset(c, x, y), the
 *      bilinear upsampling of a (3, grid_h, grid_w) field to the frame;
 *   3. motion, first of all (struct nf_corr_motion): pixel p's motion s =
 *      nf_corr_motion(largest channel change of p since the previous
 *      input, threshold) and its cache decay nf_corr_refresh_beta(s,
 *      refresh, decay), which operation 1 then reads as its map;
 *   4. stabilization, last of all, on the 8-bit output (struct
 *      nf_corr_stab): each element through nf_corr_stab() with the gain
 *      and dead band nf_corr_stab_gain() gives its pixel.
 *
 * Operations 3 and 4 work on 8-bit frames; kernels/stabilize.h runs them
 * on rows of a frame, vectorized, for the backends and for callers whose
 * backend does not (nf_backend_stabilizes).
 *
 * Everything here is plain C99 with no library calls, so that nvcc accepts
 * it as host and device code (NF_HD). This header knows nothing of
 * backend.h; the host helpers at the end take raw pointers.
 */
#ifndef NF_CORRECT_H
#define NF_CORRECT_H

#include <stddef.h>

#ifdef __CUDACC__
#define NF_HD __host__ __device__
#else
#define NF_HD
#endif

/* Largest grid_w or grid_h of an offset field. */
#define NF_CORR_MAX_GRID 256

/* One cache element decayed toward the current input (operation 1). */
NF_HD static inline float nf_corr_decay(float cache, float input, float beta)
{
    return (1.0f - beta) * cache + beta * input;
}

/*
 * beta at pixel (x, y), x and y possibly in the padding: map (height,
 * width, row-major) read at the nearest pixel of the frame, or decay when
 * map is NULL.
 */
NF_HD static inline float nf_corr_beta_at(const float *map, float decay, int x,
                                          int y, int width, int height)
{
    if (map == NULL)
        return decay;
    x = x < width ? x : width - 1;
    y = y < height ? y : height - 1;
    return map[(size_t)y * width + x];
}

/*
 * Bilinear source position along one axis, PyTorch's align_corners=False
 * rule (kernels/MODEL.md, upsample2x_bilinear) for any ratio: output index
 * o of n_out reads grid coordinate s = (o + 0.5) * n_grid / n_out - 0.5,
 * clamped to [0, n_grid - 1]; i0 = floor(s), i1 = min(i0 + 1, n_grid - 1),
 * weight l = s - i0 on i1. Indices past n_out (the padding) clamp to the
 * last grid cell. n_out and n_grid are positive.
 */
NF_HD static inline void nf_corr_axis(int o, int n_out, int n_grid, int *i0,
                                      int *i1, float *l)
{
    float s = ((float)o + 0.5f) * (float)n_grid / (float)n_out - 0.5f;
    if (s < 0.0f)
        s = 0.0f;
    if (s > (float)(n_grid - 1))
        s = (float)(n_grid - 1);
    *i0 = (int)s;
    *i1 = *i0 + 1 < n_grid ? *i0 + 1 : n_grid - 1;
    *l = s - (float)*i0;
}

/*
 * The offset of channel c at pixel (x, y) of a width x height frame
 * (operation 2): grid is (3, gh, gw) planar, row-major, in the model's
 * [0, 1] units. x and y may lie in the padding past width and height.
 */
NF_HD static inline float nf_corr_offset_at(const float *grid, int gw, int gh,
                                            int c, int x, int y, int width,
                                            int height)
{
    int x0, x1, y0, y1;
    float lx, ly;
    nf_corr_axis(x, width, gw, &x0, &x1, &lx);
    nf_corr_axis(y, height, gh, &y0, &y1, &ly);
    const float *g = grid + (size_t)c * gw * gh;
    float top = (1.0f - lx) * g[y0 * gw + x0] + lx * g[y0 * gw + x1];
    float bot = (1.0f - lx) * g[y1 * gw + x0] + lx * g[y1 * gw + x1];
    return (1.0f - ly) * top + ly * bot;
}

/*
 * Operation 3: a pixel's motion, 0 (still) to 1, from its largest channel
 * change in levels: (change - thr) / thr clamped to [0, 1]; with thr 0,
 * any change is full motion.
 */
NF_HD static inline float nf_corr_motion(int change, float thr)
{
    if (thr <= 0.0f)
        return change > 0 ? 1.0f : 0.0f;
    float r = ((float)change - thr) / thr;
    return r < 0.0f ? 0.0f : r > 1.0f ? 1.0f : r;
}

/*
 * The cache decay of a pixel with motion s: decay, raised to refresh * s
 * where the input moves, so that the cache forgets what the camera no
 * longer shows instead of trailing it as a ghost.
 */
NF_HD static inline float nf_corr_refresh_beta(float s, float refresh,
                                               float decay)
{
    float r = refresh * s;
    return r > decay ? r : decay;
}

/*
 * Operation 4 for a pixel with motion s: the average's gain g = blend +
 * (1 - blend) * s and the dead band deadband * (1 - s) + 0.5 * s (0.5:
 * plain rounding), so that moving pixels (s = 1) pass unchanged.
 */
NF_HD static inline void nf_corr_stab_gain(float s, float blend, float deadband,
                                           float *g, float *band)
{
    *g = blend + (1.0f - blend) * s;
    *band = deadband * (1.0f - s) + 0.5f * s;
}

/*
 * Operation 4 on one element: the running average avg moves by g toward
 * the model's value; the shown value changes (to avg rounded) only when
 * avg is at least band away from it, which stops the small steps that
 * input noise causes. Returns the new shown value.
 */
NF_HD static inline unsigned char nf_corr_stab(float *avg, unsigned char *shown,
                                               unsigned char model, float g,
                                               float band)
{
    float v = *avg + g * ((float)model - *avg);
    float d = v - (float)*shown;
    *avg = v;
    if ((d < 0.0f ? -d : d) >= band)
        *shown = (unsigned char)(v + 0.5f);
    return *shown;
}

/*
 * Host helpers for the CPU backends. Planar: v is (3, h, w) floats, the
 * frame's padded size, for a width x height frame. Interleaved: v is
 * (h, w, 3) (NHWC with N = 1).
 */
static inline void nf_corr_offset_planar(float *v, int h, int w,
                                         const float *grid, int gw, int gh,
                                         int width, int height)
{
    size_t plane = (size_t)h * w;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                v[c * plane + (size_t)y * w + x] +=
                    nf_corr_offset_at(grid, gw, gh, c, x, y, width, height);
}

static inline void nf_corr_offset_interleaved(float *v, int h, int w,
                                              const float *grid, int gw, int gh,
                                              int width, int height)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                v[((size_t)y * w + x) * 3 + c] +=
                    nf_corr_offset_at(grid, gw, gh, c, x, y, width, height);
}

/* Decays one (3, h, w) planar cache entry toward the frame, same layout. */
static inline void nf_corr_decay_planar(float *cache, const float *frame, int h,
                                        int w, const float *map, float decay,
                                        int width, int height)
{
    size_t plane = (size_t)h * w;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float beta = nf_corr_beta_at(map, decay, x, y, width, height);
            for (int c = 0; c < 3; c++) {
                size_t i = c * plane + (size_t)y * w + x;
                cache[i] = nf_corr_decay(cache[i], frame[i], beta);
            }
        }
}

/* The same for an (h, w, 3) interleaved entry (NHWC with N = 1). */
static inline void nf_corr_decay_interleaved(float *cache, const float *frame,
                                             int h, int w, const float *map,
                                             float decay, int width, int height)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float beta = nf_corr_beta_at(map, decay, x, y, width, height);
            for (int c = 0; c < 3; c++) {
                size_t i = ((size_t)y * w + x) * 3 + c;
                cache[i] = nf_corr_decay(cache[i], frame[i], beta);
            }
        }
}

#endif /* NF_CORRECT_H */
