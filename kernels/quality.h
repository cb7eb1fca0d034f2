/*
 * quality.h - temporal quality measures on 8-bit RGB frames.
 *
 * docs/TEMPORAL.md defines each measure exactly; these functions are those
 * definitions. Images are struct nf_image (backend.h): 8-bit interleaved
 * RGB with a row stride. Every value is in 8-bit levels (0..255) unless
 * said otherwise. Pure computation: no allocation, no globals; any thread.
 * Two images passed together must have the same width and height (checked
 * by the callers, not here).
 */
#ifndef NF_QUALITY_H
#define NF_QUALITY_H

#include <stdint.h>

#include "backend.h"

/* PSNR of identical images (a mean squared error of 0). */
#define NF_QUALITY_PSNR_MAX 100.0

/* Mean absolute difference over every pixel and channel, in levels. */
double nf_quality_mae(const struct nf_image *a, const struct nf_image *b);

/*
 * Peak signal-to-noise ratio in dB: 10 * log10(255^2 / MSE), the MSE taken
 * over every pixel and channel; NF_QUALITY_PSNR_MAX when the images are
 * identical (and never more), so that the value is always finite.
 */
double nf_quality_psnr(const struct nf_image *a, const struct nf_image *b);

/*
 * Flicker of out between two consecutive frames on the static pixels of
 * the input: a pixel is static when no channel of in differs from in_prev
 * by more than tol levels (tol 0: the input did not change at all).
 * Returns the mean over static pixels and channels of |out - out_prev|, in
 * levels (0 when no pixel is static), and stores the number of static
 * pixels in *n_static (may be NULL).
 */
double nf_quality_flicker(const struct nf_image *in_prev,
                          const struct nf_image *in,
                          const struct nf_image *out_prev,
                          const struct nf_image *out, int tol,
                          uint64_t *n_static);

/*
 * Cell x of a grid of gw cells over a width-pixel row covers pixels
 * [x * width / gw, (x + 1) * width / gw) (integer division); the same for
 * rows. gw and gh must be in 1..width and 1..height so that no cell is
 * empty.
 */

/* Box average of each cell: grid is (3, gh, gw) planar, in levels. */
void nf_quality_grid_mean(const struct nf_image *im, int gw, int gh,
                          float *grid);

/*
 * Motion of each cell between two frames: the mean over the cell's pixels
 * of max over channels |cur - prev|, in levels. grid is (gh, gw).
 */
void nf_quality_grid_motion(const struct nf_image *prev,
                            const struct nf_image *cur, int gw, int gh,
                            float *grid);

#endif /* NF_QUALITY_H */
