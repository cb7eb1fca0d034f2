/*
 * jpeg.c - JPEG admission, decode and encode on TurboJPEG 2.1.5.
 *
 * This is the only file that talks to TurboJPEG. It uses the tj* API of
 * 2.1.5 (there is no tj3 API on Debian 12). What it guards against, all
 * found in 2.1.5 itself (see /work/shared/FACTS.md):
 *
 *   - A few hundred bytes can declare 65500x65500 pixels: nf_jpeg_probe()
 *     checks the 64-bit product against the caller's limits before anyone
 *     allocates pixel memory.
 *   - tjDecompressHeader3() succeeds on a tables-only stream and leaves the
 *     size untouched: the size is zeroed first and 0 is rejected.
 *   - Progressive scan bombs and truncated files: decoding always passes
 *     TJFLAG_LIMITSCANS and TJFLAG_STOPONWARNING.
 *   - With TJFLAG_NOREALLOC TurboJPEG assumes the destination holds
 *     tjBufSize() bytes whatever size the caller passes, so an encode into a
 *     smaller buffer is refused up front instead of risking an overflow.
 *
 * It is not a general JPEG library: output is always 8-bit RGB or 4:2:0.
 */
#include "jpeg.h"

#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "error.h"

/*
 * One per thread: TurboJPEG handles are not thread-safe. Both handles are
 * created by nf_jpeg_init() and reused for every call, so the steady state
 * allocates nothing beyond what libjpeg-turbo keeps inside the handles.
 */
struct nf_jpeg {
    tjhandle dec; /* Owned; touched only by the thread that owns *this. */
    tjhandle enc; /* Owned; touched only by the thread that owns *this. */
    /*
     * Owned, same thread: an even-sized copy of the Y plane for odd-sized
     * I420 encodes (see pad_luma()). Grown once, reused.
     */
    uint8_t *luma;
    size_t luma_cap;
    const char *why; /* Why the last call failed (static text), or "". */
};

int nf_jpeg_init(struct nf_jpeg **out)
{
    struct nf_jpeg *j;

    *out = NULL;
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NF_ENOMEM;
    j->dec = tjInitDecompress();
    if (j->dec == NULL)
        goto fail;
    j->enc = tjInitCompress();
    if (j->enc == NULL)
        goto fail;
    *out = j;
    return 0;

fail:
    nf_jpeg_free(j);
    return NF_ENOMEM;
}

void nf_jpeg_free(struct nf_jpeg *j)
{
    if (j == NULL)
        return;
    if (j->enc != NULL)
        tjDestroy(j->enc);
    if (j->dec != NULL)
        tjDestroy(j->dec);
    free(j->luma);
    free(j);
}

/*
 * Reads the header only. Fills *w, *h and *cs; returns 0 or NF_EJPEG.
 * The size is zeroed first because a tables-only stream "succeeds" without
 * touching it.
 */
static int read_header(struct nf_jpeg *j, const uint8_t *buf, size_t len,
                       int *w, int *h, int *cs)
{
    int subsamp = -1;

    *w = 0;
    *h = 0;
    *cs = -1;
    if (j->dec == NULL && (j->dec = tjInitDecompress()) == NULL) {
        j->why = "out of memory";
        return NF_ENOMEM;
    }
    if (buf == NULL || len == 0 || len > (size_t)0xffffffffu) {
        j->why = "empty or oversized payload";
        return NF_EJPEG;
    }
    if (tjDecompressHeader3(j->dec, buf, (unsigned long)len, w, h, &subsamp,
                            cs) != 0) {
        j->why = len < 2 || buf[0] != 0xff || buf[1] != 0xd8
                     ? "not a JPEG (no start-of-image marker)"
                     : "unreadable JPEG header";
        /* TurboJPEG 2.1's tjDecompressHeader3() leaves the handle mid-read
         * when it fails (no jpeg_abort_decompress), and every later header
         * read on it then fails, valid ones included (fuzzing finding F1,
         * tests/fuzz/README.md): start a fresh handle. */
        tjDestroy(j->dec);
        j->dec = tjInitDecompress();
        return NF_EJPEG;
    }
    if (*w <= 0 || *h <= 0) {
        j->why = "no image in the JPEG (tables only?)";
        return NF_EJPEG;
    }
    /* CMYK and YCCK cannot be decoded to RGB by TurboJPEG; refuse early. */
    if (*cs == TJCS_CMYK || *cs == TJCS_YCCK) {
        j->why = "CMYK or YCCK colour space (send YCbCr or grayscale)";
        return NF_EJPEG;
    }
    return 0;
}

/* A zero field in lim means "no limit" for that field. */
static int check_limits(struct nf_jpeg *j, const struct nf_jpeg_limits *lim,
                        int w, int h)
{
    uint64_t pixels = (uint64_t)(uint32_t)w * (uint64_t)(uint32_t)h;

    if (lim == NULL)
        return 0;
    j->why = "JPEG dimensions over the limit";
    if (lim->max_width != 0 && (uint32_t)w > lim->max_width)
        return NF_EJPEG_DIMS;
    if (lim->max_height != 0 && (uint32_t)h > lim->max_height)
        return NF_EJPEG_DIMS;
    if (lim->max_pixels != 0 && pixels > lim->max_pixels)
        return NF_EJPEG_DIMS;
    j->why = "";
    return 0;
}

const char *nf_jpeg_why(const struct nf_jpeg *j)
{
    return j->why ? j->why : "";
}

int nf_jpeg_probe(struct nf_jpeg *j, const uint8_t *buf, size_t len,
                  const struct nf_jpeg_limits *lim, int *width, int *height)
{
    int w, h, cs, rc;

    *width = 0;
    *height = 0;
    rc = read_header(j, buf, len, &w, &h, &cs);
    if (rc < 0)
        return rc;
    rc = check_limits(j, lim, w, h);
    if (rc < 0)
        return rc;
    *width = w;
    *height = h;
    return 0;
}

int nf_jpeg_scaled_size(int width, int height, int eighths, int *sw, int *sh)
{
    if (width < 1 || height < 1 || eighths < 1 || eighths > 8 || sw == NULL ||
        sh == NULL)
        return NF_EINVAL;
    *sw = (int)(((int64_t)width * eighths + 7) / 8);
    *sh = (int)(((int64_t)height * eighths + 7) / 8);
    return 0;
}

int nf_jpeg_decode_rgb(struct nf_jpeg *j, const uint8_t *buf, size_t len,
                       uint8_t *dst, int width, int height, int stride)
{
    int w, h, cs, rc;

    if (dst == NULL || width <= 0 || height <= 0 ||
        (int64_t)stride < (int64_t)width * 3)
        return NF_EINVAL;
    /*
     * tjDecompress2() treats width x height as a box to fit into and would
     * silently pick a smaller scale; insist on the full size or exactly
     * one of the scaled sizes instead. TurboJPEG offers every k/8, and for
     * a box of exactly k/8's size it picks k/8 (or a larger factor that
     * rounds to the same size, which decodes to the same pixel count).
     */
    rc = read_header(j, buf, len, &w, &h, &cs);
    if (rc < 0)
        return rc;
    int k = 8;
    for (; k >= 1; k--) {
        int sw = 0, sh = 0;
        nf_jpeg_scaled_size(w, h, k, &sw, &sh);
        if (sw == width && sh == height)
            break;
    }
    if (k < 1)
        return NF_EINVAL;
    if (tjDecompress2(j->dec, buf, (unsigned long)len, dst, width, stride,
                      height, TJPF_RGB,
                      TJFLAG_LIMITSCANS | TJFLAG_STOPONWARNING) != 0)
        return NF_EJPEG;
    return 0;
}

/*
 * Checks the common encode arguments. Returns 0, NF_EINVAL, or NF_ERANGE
 * when cap is below tjBufSize() (see the file comment for why).
 */
static int check_encode_args(int width, int height, int quality,
                             const uint8_t *dst, size_t cap)
{
    size_t bound;

    if (dst == NULL || width <= 0 || height <= 0 || quality < 1 ||
        quality > 100)
        return NF_EINVAL;
    bound = nf_jpeg_bound(width, height);
    if (bound == 0)
        return NF_EINVAL;
    if (cap < bound)
        return NF_ERANGE;
    return 0;
}

int nf_jpeg_encode_rgb(struct nf_jpeg *j, const uint8_t *src, int width,
                       int height, int stride, int quality, uint8_t *dst,
                       size_t cap)
{
    unsigned long size = 0;
    int rc;

    if (src == NULL || (int64_t)stride < (int64_t)width * 3)
        return NF_EINVAL;
    rc = check_encode_args(width, height, quality, dst, cap);
    if (rc < 0)
        return rc;
    if (tjCompress2(j->enc, src, width, stride, height, TJPF_RGB, &dst, &size,
                    TJSAMP_420, quality, TJFLAG_NOREALLOC) != 0)
        return NF_EJPEG;
    if (size > (unsigned long)cap || size > 0x7fffffffu)
        return NF_ERANGE;
    return (int)size;
}

/*
 * tjCompressFromYUVPlanes() reads the Y plane as PAD(w, 2) x PAD(h, 2)
 * samples (turbojpeg.c computes each plane's size from the 4:2:0 MCU), so
 * for an odd width or height it reads past a tightly packed w x h plane.
 * Copy such a plane into j->luma with its last column and row repeated.
 * Returns the plane to use, or NULL when out of memory.
 */
static const uint8_t *pad_luma(struct nf_jpeg *j, const uint8_t *y, int w,
                               int h)
{
    size_t pw = (size_t)w + (w & 1), ph = (size_t)h + (h & 1);
    uint8_t *dst;

    if (pw * ph > j->luma_cap) {
        uint8_t *p = realloc(j->luma, pw * ph);

        if (p == NULL)
            return NULL;
        j->luma = p;
        j->luma_cap = pw * ph;
    }
    dst = j->luma;
    for (size_t r = 0; r < ph; r++) {
        size_t src_row = r < (size_t)h ? r : (size_t)h - 1;
        uint8_t *row = dst + r * pw;

        memcpy(row, y + src_row * (size_t)w, (size_t)w);
        if (pw != (size_t)w)
            row[w] = row[w - 1];
    }
    return dst;
}

int nf_jpeg_encode_i420(struct nf_jpeg *j, const uint8_t *const planes[3],
                        int width, int height, int quality, uint8_t *dst,
                        size_t cap)
{
    const unsigned char *src[3];
    int strides[3];
    unsigned long size = 0;
    int rc;

    if (planes == NULL || planes[0] == NULL || planes[1] == NULL ||
        planes[2] == NULL)
        return NF_EINVAL;
    rc = check_encode_args(width, height, quality, dst, cap);
    if (rc < 0)
        return rc;
    src[0] = planes[0];
    strides[0] = width;
    if ((width | height) & 1) {
        src[0] = pad_luma(j, planes[0], width, height);
        if (src[0] == NULL)
            return NF_ENOMEM;
        strides[0] = width + (width & 1);
    }
    src[1] = planes[1];
    src[2] = planes[2];
    strides[1] = strides[2] = (width + 1) / 2;
    if (tjCompressFromYUVPlanes(j->enc, src, width, strides, height, TJSAMP_420,
                                &dst, &size, quality, TJFLAG_NOREALLOC) != 0)
        return NF_EJPEG;
    if (size > (unsigned long)cap || size > 0x7fffffffu)
        return NF_ERANGE;
    return (int)size;
}

size_t nf_jpeg_bound(int width, int height)
{
    unsigned long n;

    if (width <= 0 || height <= 0)
        return 0;
    n = tjBufSize(width, height, TJSAMP_420);
    if (n == (unsigned long)-1)
        return 0;
    return (size_t)n;
}
