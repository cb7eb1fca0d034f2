/*
 * i420.h - the I420 image layout and its conversion to and from RGB.
 *
 * I420 here is what YUV4MPEG2 "C420*" frames and TurboJPEG's 4:2:0 planes
 * hold: a full-size Y plane followed by U (Cb) and V (Cr) planes of
 * ceil(w/2) x ceil(h/2), every plane tightly packed, 8 bits per sample.
 * The conversion is BT.601 full range (JFIF, what JPEG uses): Y, Cb and Cr
 * span 0..255 with no studio headroom.
 */
#ifndef NF_I420_H
#define NF_I420_H

#include <stddef.h>
#include <stdint.h>

/* Width and height of the chroma planes for a width x height image. */
static inline int nf_i420_chroma_dim(int luma_dim)
{
    return (luma_dim + 1) / 2;
}

/* Bytes of one width x height I420 image (all three planes). */
size_t nf_i420_size(int width, int height);

/*
 * Points planes[0..2] at the Y, U and V planes of a contiguous I420 image
 * starting at base.
 */
void nf_i420_planes(uint8_t *base, int width, int height, uint8_t *planes[3]);

/*
 * Converts 8-bit RGB (stride bytes per row) to I420. Each chroma sample is
 * the average of its (up to) 2x2 RGB pixels. Any thread.
 */
void nf_i420_from_rgb(const uint8_t *rgb, int stride, int width, int height,
                      uint8_t *const planes[3]);

/*
 * Converts I420 to 8-bit RGB (stride bytes per row), nearest-neighbour
 * chroma upsampling. Any thread.
 */
void nf_i420_to_rgb(const uint8_t *const planes[3], int width, int height,
                    uint8_t *rgb, int stride);

/*
 * Range conversion between BT.601 limited ("TV": Y 16..235, chroma 16..240,
 * what YUV4MPEG2 means unless its header says XCOLORRANGE=FULL) and full
 * range (what JPEG means). src and dst may be the same planes. Any thread.
 */
void nf_i420_limited_to_full(const uint8_t *const src[3], int width, int height,
                             uint8_t *const dst[3]);
void nf_i420_full_to_limited(const uint8_t *const src[3], int width, int height,
                             uint8_t *const dst[3]);

#endif /* NF_I420_H */
