/*
 * jpeg.h - JPEG admission, decode and encode on TurboJPEG 2.1.5.
 *
 * One struct nf_jpeg per thread (TurboJPEG handles are not thread-safe);
 * buffers are reused between calls, so the steady state allocates nothing.
 * nf_jpeg_probe() is the admission check: it reads only the header and
 * rejects what must not be decoded before any pixel memory is allocated.
 */
#ifndef NF_JPEG_H
#define NF_JPEG_H

#include <stddef.h>
#include <stdint.h>

struct nf_jpeg;

/* Why the last failed nf_jpeg_probe() failed, in a few words ("not a JPEG
 * (no start-of-image marker)"); "" after a success. For close reasons. */
const char *nf_jpeg_why(const struct nf_jpeg *j);

/* Limits checked by nf_jpeg_probe(). */
struct nf_jpeg_limits {
    uint32_t max_width;
    uint32_t max_height;
    uint64_t max_pixels; /* width * height */
};

/* Returns 0 and *out, or NF_ENOMEM. Free with nf_jpeg_free (accepts NULL). */
int nf_jpeg_init(struct nf_jpeg **out);
void nf_jpeg_free(struct nf_jpeg *j);

/*
 * Reads the JPEG header of buf (len bytes) and checks it against lim (NULL =
 * no limits). Returns 0 with *width and *height set, NF_EJPEG (not a JPEG,
 * a tables-only stream, size 0, unsupported colour space such as CMYK), or
 * NF_EJPEG_DIMS (over a limit; the product is computed in 64 bits).
 */
int nf_jpeg_probe(struct nf_jpeg *j, const uint8_t *buf, size_t len,
                  const struct nf_jpeg_limits *lim, int *width, int *height);

/*
 * The size TurboJPEG's scaled decoding gives for a width x height JPEG at
 * eighths/8 of its size (1..8; 8 is the full size): each side rounded up,
 * as TJSCALED() does. Returns 0, or NF_EINVAL for a size < 1 or eighths
 * outside 1..8. Any thread.
 */
int nf_jpeg_scaled_size(int width, int height, int eighths, int *sw, int *sh);

/*
 * Decodes buf into 8-bit RGB at dst (stride bytes per row). width x height
 * must be the size nf_jpeg_probe() returned or one of its scaled sizes
 * (nf_jpeg_scaled_size() with eighths 1..7): the scaled sizes come straight
 * from libjpeg-turbo's scaled inverse DCT, with no full-size image and no
 * resize pass. 1/2 (and 1/4, 1/8) decode faster than the full size; the
 * other eighths use its plain-C IDCTs and are slower (3/4 of a 1280x720
 * frame: 4.2-5.0 ms against 3.1 full, bench/RESULTS.md). Any other size is
 * NF_EINVAL. Uses TJFLAG_LIMITSCANS and TJFLAG_STOPONWARNING: a truncated
 * or damaged file is NF_EJPEG.
 */
int nf_jpeg_decode_rgb(struct nf_jpeg *j, const uint8_t *buf, size_t len,
                       uint8_t *dst, int width, int height, int stride);

/*
 * Encodes 8-bit RGB (4:2:0, quality 1..100) into dst (cap bytes; use
 * nf_jpeg_bound() to size it). Returns the JPEG size in bytes or a negative
 * NF_E* code (NF_ERANGE if cap is too small).
 */
int nf_jpeg_encode_rgb(struct nf_jpeg *j, const uint8_t *src, int width,
                       int height, int stride, int quality, uint8_t *dst,
                       size_t cap);

/* Encodes planar I420 (Y, U, V planes, tightly packed) the same way. */
int nf_jpeg_encode_i420(struct nf_jpeg *j, const uint8_t *const planes[3],
                        int width, int height, int quality, uint8_t *dst,
                        size_t cap);

/* Worst-case JPEG size for width x height (tjBufSize with 4:2:0). */
size_t nf_jpeg_bound(int width, int height);

#endif /* NF_JPEG_H */
