/*
 * test-jpeg.c - common/jpeg.c: round trips, the admission check, and the
 * hostile inputs TurboJPEG 2.1.5 does not stop by itself (size bombs,
 * tables-only streams, truncated files, CMYK).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "error.h"
#include "i420.h"
#include "jpeg.h"
#include "nf-test.h"

#define W 160
#define H 120

/* A smooth RGB gradient with a soft diagonal pattern: JPEG-friendly. */
static void fill_gradient(uint8_t *rgb, int w, int h)
{
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;

            p[0] = (uint8_t)(x * 255 / (w - 1));
            p[1] = (uint8_t)(y * 255 / (h - 1));
            p[2] = (uint8_t)((x + y) * 255 / (w + h - 2));
        }
    }
}

static double psnr(const uint8_t *a, const uint8_t *b, size_t n)
{
    double se = 0.0;

    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        se += d * d;
    }
    if (se == 0.0)
        return 99.0;
    return 10.0 * log10(255.0 * 255.0 / (se / (double)n));
}

/* Encodes a w x h gradient at quality 90 into a malloc'd buffer. */
static int make_jpeg(struct nf_jpeg *j, int w, int h, uint8_t **out)
{
    size_t cap = nf_jpeg_bound(w, h);
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    uint8_t *dst = malloc(cap);
    int n = NF_ENOMEM;

    if (rgb != NULL && dst != NULL) {
        fill_gradient(rgb, w, h);
        n = nf_jpeg_encode_rgb(j, rgb, w, h, w * 3, 90, dst, cap);
    }
    free(rgb);
    if (n < 0) {
        free(dst);
        dst = NULL;
    }
    *out = dst;
    return n;
}

/* Offset of the SOF0 marker segment, or -1. Walks the marker segments. */
static long find_sof0(const uint8_t *p, size_t len)
{
    size_t i = 2;

    while (i + 4 <= len && p[i] == 0xff) {
        size_t seglen = ((size_t)p[i + 2] << 8) | p[i + 3];

        if (p[i + 1] == 0xc0)
            return (long)i;
        i += 2 + seglen;
    }
    return -1;
}

NF_TEST(jpeg_rgb_round_trip_psnr_over_30db)
{
    struct nf_jpeg *j = NULL;
    uint8_t *rgb = malloc(W * H * 3), *back = malloc(W * H * 3);
    size_t cap = nf_jpeg_bound(W, H);
    uint8_t *jpg = malloc(cap);
    int n, w, h;
    double db;

    NF_CHECK(rgb != NULL && back != NULL && jpg != NULL);
    NF_CHECK_INT_EQ(nf_jpeg_init(&j), 0);
    fill_gradient(rgb, W, H);
    n = nf_jpeg_encode_rgb(j, rgb, W, H, W * 3, 90, jpg, cap);
    NF_CHECK(n > 0);
    NF_CHECK_INT_EQ(nf_jpeg_probe(j, jpg, (size_t)n, NULL, &w, &h), 0);
    NF_CHECK_INT_EQ(w, W);
    NF_CHECK_INT_EQ(h, H);
    NF_CHECK_INT_EQ(nf_jpeg_decode_rgb(j, jpg, (size_t)n, back, W, H, W * 3),
                    0);
    db = psnr(rgb, back, W * H * 3);
    printf("  psnr %.2f dB, %d bytes\n", db, n);
    NF_CHECK(db > 30.0);
    nf_jpeg_free(j);
    free(rgb);
    free(back);
    free(jpg);
}

/*
 * Also proves nf_i420_from_rgb() matches JPEG's colour space. The size is
 * odd and each plane a separate exact-size allocation, so ASan catches
 * TurboJPEG reading its 4:2:0 padding past the Y plane.
 */
NF_TEST(jpeg_i420_round_trip_psnr_over_30db)
{
    enum { w = 161, h = 119, cw = 81, ch = 60 };
    struct nf_jpeg *j = NULL;
    uint8_t *rgb = malloc(w * h * 3), *back = malloc(w * h * 3);
    uint8_t *planes[3] = {malloc(w * h), malloc(cw * ch), malloc(cw * ch)};
    size_t cap = nf_jpeg_bound(w, h);
    uint8_t *jpg = malloc(cap);
    int n;
    double db;

    NF_CHECK(rgb != NULL && back != NULL && jpg != NULL);
    NF_CHECK(planes[0] != NULL && planes[1] != NULL && planes[2] != NULL);
    NF_CHECK_INT_EQ(nf_jpeg_init(&j), 0);
    fill_gradient(rgb, w, h);
    nf_i420_from_rgb(rgb, w * 3, w, h, planes);
    for (int pass = 0; pass < 2; pass++) { /* The second reuses buffers. */
        n = nf_jpeg_encode_i420(j, (const uint8_t *const *)planes, w, h, 90,
                                jpg, cap);
        NF_CHECK(n > 0);
    }
    NF_CHECK_INT_EQ(nf_jpeg_decode_rgb(j, jpg, (size_t)n, back, w, h, w * 3),
                    0);
    db = psnr(rgb, back, w * h * 3);
    printf("  psnr %.2f dB\n", db);
    NF_CHECK(db > 30.0);
    nf_jpeg_free(j);
    free(rgb);
    free(back);
    for (int i = 0; i < 3; i++)
        free(planes[i]);
    free(jpg);
}

NF_TEST(jpeg_probe_rejects_non_jpeg)
{
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                  0,    0,   0,   13,  'I',  'H',  'D',  'R'};
    uint8_t noise[512];
    struct nf_jpeg *j = NULL;
    int w = -1, h = -1;

    NF_CHECK_INT_EQ(nf_jpeg_init(&j), 0);
    srand(7);
    for (size_t i = 0; i < sizeof(noise); i++)
        noise[i] = (uint8_t)rand();
    noise[0] = 0x00; /* Not SOI. */
    NF_CHECK_INT_EQ(nf_jpeg_probe(j, png, sizeof(png), NULL, &w, &h), NF_EJPEG);
    NF_CHECK_INT_EQ(w, 0);
    NF_CHECK_INT_EQ(h, 0);
    NF_CHECK_INT_EQ(nf_jpeg_probe(j, noise, sizeof(noise), NULL, &w, &h),
                    NF_EJPEG);
    NF_CHECK_INT_EQ(nf_jpeg_probe(j, (const uint8_t *)"hello", 5, NULL, &w, &h),
                    NF_EJPEG);
    nf_jpeg_free(j);
}

NF_TEST(jpeg_probe_rejects_zero_size)
{
    static const uint8_t soi[] = {0xff, 0xd8};
    struct nf_jpeg *j = NULL;
    int w, h;

    NF_CHECK_INT_EQ(nf_jpeg_init(&j), 0);
    NF_CHECK_INT_EQ(nf_jpeg_probe(j, soi, 0, NULL, &w, &h), NF_EJPEG);
    NF_CHECK_INT_EQ(nf_jpeg_probe(j, NULL, 0, NULL, &w, &h), NF_EJPEG);
    NF_CHECK_INT_EQ(nf_jpeg_probe(j, soi, sizeof(soi), NULL, &w, &h), NF_EJPEG);
    nf_jpeg_free(j);
}

/* SOI + the tables before SOF0 + EOI: tjDecompressHeader3() "succeeds". */
NF_TEST(jpeg_probe_rejects_tables_only_stream)
{
    struct nf_jpeg *j = NULL;
    uint8_t *jpg = NULL;
    long sof;
    int n, w = -1, h = -1;

    NF_CHECK_INT_EQ(nf_jpeg_init(&j), 0);
    n = make_jpeg(j, 64, 48, &jpg);
    NF_CHECK(n > 0);
    sof = find_sof0(jpg, (size_t)n);
    NF_CHECK(sof > 2);
    jpg[sof] = 0xff;
    jpg[sof + 1] = 0xd9; /* EOI right after the tables. */
    NF_CHECK_INT_EQ(nf_jpeg_probe(j, jpg, (size_t)sof + 2, NULL, &w, &h),
                    NF_EJPEG);
    NF_CHECK_INT_EQ(w, 0);
    NF_CHECK_INT_EQ(h, 0);
    nf_jpeg_free(j);
    free(jpg);
}

/*
 * Fuzzing finding F1 (tests/fuzz/README.md): a JPEG whose header read fails
 * (here: SOF0 declares height 0) left TurboJPEG's handle mid-read, and every
 * later header read on it failed, valid JPEGs included. The same handle must
 * probe and decode a valid JPEG right after any failure.
 */
NF_TEST(jpeg_handle_works_after_a_failed_header)
{
    struct nf_jpeg *j = NULL;
    uint8_t *good = NULL, *bad = NULL, rgb[16 * 16 * 3];
    long sof;
    int n, w = -1, h = -1;

    NF_CHECK_INT_EQ(nf_jpeg_init(&j), 0);
    n = make_jpeg(j, 16, 16, &good);
    NF_CHECK(n > 0);
    bad = malloc((size_t)n);
    NF_CHECK(bad != NULL);
    memcpy(bad, good, (size_t)n);
    sof = find_sof0(bad, (size_t)n);
    NF_CHECK(sof > 0);
    bad[sof + 5] = 0; /* height 0 */
    bad[sof + 6] = 0;
    for (int round = 0; round < 3; round++) {
        NF_CHECK_INT_EQ(nf_jpeg_probe(j, bad, (size_t)n, NULL, &w, &h),
                        NF_EJPEG);
        NF_CHECK_INT_EQ(nf_jpeg_probe(j, good, (size_t)n, NULL, &w, &h), 0);
        NF_CHECK_INT_EQ(w, 16);
        NF_CHECK_INT_EQ(nf_jpeg_probe(j, bad, (size_t)n / 2, NULL, &w, &h),
                        NF_EJPEG);
        NF_CHECK_INT_EQ(
            nf_jpeg_decode_rgb(j, good, (size_t)n, rgb, 16, 16, 16 * 3), 0);
    }
    nf_jpeg_free(j);
    free(good);
    free(bad);
}

/* A small valid JPEG whose SOF0 claims 60000x60000 (10.8 GB of RGB). */
NF_TEST(jpeg_probe_rejects_60000x60000_bomb_before_allocating)
{
    const struct nf_jpeg_limits lim = {4096, 4096, 4096u * 2160u};
    const struct nf_jpeg_limits pixels_only = {65535, 65535, 4096u * 2160u};
    struct nf_jpeg *j = NULL;
    uint8_t *jpg = NULL;
    long sof;
    int n, w = -1, h = -1;

    NF_CHECK_INT_EQ(nf_jpeg_init(&j), 0);
    n = make_jpeg(j, 16, 16, &jpg);
    NF_CHECK(n > 0);
    sof = find_sof0(jpg, (size_t)n);
    NF_CHECK(sof > 0);
    /* SOF0: FF C0, length(2), precision(1), height(2), width(2). */
    jpg[sof + 5] = 0xea;
    jpg[sof + 6] = 0x60;
    jpg[sof + 7] = 0xea;
    jpg[sof + 8] = 0x60;
    NF_CHECK_INT_EQ(nf_jpeg_probe(j, jpg, (size_t)n, &lim, &w, &h),
                    NF_EJPEG_DIMS);
    NF_CHECK_INT_EQ(w, 0);
    /* Width and height pass alone; the 64-bit product must catch it. */
    NF_CHECK_INT_EQ(nf_jpeg_probe(j, jpg, (size_t)n, &pixels_only, &w, &h),
                    NF_EJPEG_DIMS);
    /* Without limits the header reads fine: the limit is what protects. */
    NF_CHECK_INT_EQ(nf_jpeg_probe(j, jpg, (size_t)n, NULL, &w, &h), 0);
    NF_CHECK_INT_EQ(w, 60000);
    NF_CHECK_INT_EQ(h, 60000);
    nf_jpeg_free(j);
    free(jpg);
}

NF_TEST(jpeg_decode_truncated_file_fails)
{
    struct nf_jpeg *j = NULL;
    uint8_t *jpg = NULL, *rgb = malloc(W * H * 3);
    int n, w, h;

    NF_CHECK(rgb != NULL);
    NF_CHECK_INT_EQ(nf_jpeg_init(&j), 0);
    n = make_jpeg(j, W, H, &jpg);
    NF_CHECK(n > 0);
    /* The header survives the cut, so admission passes... */
    NF_CHECK_INT_EQ(nf_jpeg_probe(j, jpg, (size_t)n / 2, NULL, &w, &h), 0);
    /* ...and the decode must fail instead of padding with grey. */
    NF_CHECK_INT_EQ(nf_jpeg_decode_rgb(j, jpg, (size_t)n / 2, rgb, W, H, W * 3),
                    NF_EJPEG);
    /* A cut inside the tables fails already at admission. */
    NF_CHECK_INT_EQ(nf_jpeg_probe(j, jpg, 100, NULL, &w, &h), NF_EJPEG);
    /* The handle is still good afterwards. */
    NF_CHECK_INT_EQ(nf_jpeg_decode_rgb(j, jpg, (size_t)n, rgb, W, H, W * 3), 0);
    nf_jpeg_free(j);
    free(jpg);
    free(rgb);
}

NF_TEST(jpeg_decode_rejects_wrong_size)
{
    struct nf_jpeg *j = NULL;
    uint8_t *jpg = NULL, *rgb = malloc(64 * 48 * 3);
    int n;

    NF_CHECK(rgb != NULL);
    NF_CHECK_INT_EQ(nf_jpeg_init(&j), 0);
    n = make_jpeg(j, 64, 48, &jpg);
    NF_CHECK(n > 0);
    NF_CHECK_INT_EQ(nf_jpeg_decode_rgb(j, jpg, (size_t)n, rgb, 32, 32, 32 * 3),
                    NF_EINVAL);
    NF_CHECK_INT_EQ(nf_jpeg_decode_rgb(j, jpg, (size_t)n, rgb, 64, 48, 10),
                    NF_EINVAL);
    nf_jpeg_free(j);
    free(jpg);
    free(rgb);
}

/*
 * Scaled decoding: every k/8 of an odd-sized JPEG decodes at the size
 * nf_jpeg_scaled_size() gives, and looks like the full decode shrunk by
 * averaging boxes of 8/k pixels (the smooth gradient: over 30 dB).
 */
NF_TEST(jpeg_scaled_decode_matches_a_box_downscale)
{
    enum { SW = 161, SH = 121 };
    struct nf_jpeg *j = NULL;
    uint8_t *jpg = NULL, *full = malloc(SW * SH * 3),
            *small = malloc(SW * SH * 3);
    uint8_t *ref = malloc(SW * SH * 3);
    int n, sw = 0, sh = 0;

    NF_CHECK(full != NULL && small != NULL && ref != NULL);
    NF_CHECK_INT_EQ(nf_jpeg_init(&j), 0);
    n = make_jpeg(j, SW, SH, &jpg);
    NF_CHECK(n > 0);
    NF_CHECK_INT_EQ(nf_jpeg_decode_rgb(j, jpg, (size_t)n, full, SW, SH, SW * 3),
                    0);
    for (int k = 1; k <= 8; k++) {
        NF_CHECK_INT_EQ(nf_jpeg_scaled_size(SW, SH, k, &sw, &sh), 0);
        NF_CHECK_INT_EQ(sw, (SW * k + 7) / 8);
        NF_CHECK_INT_EQ(sh, (SH * k + 7) / 8);
        NF_CHECK_INT_EQ(
            nf_jpeg_decode_rgb(j, jpg, (size_t)n, small, sw, sh, sw * 3), 0);
        for (int y = 0; y < sh; y++) {
            int y0 = y * 8 / k, y1 = (y + 1) * 8 / k;
            y1 = y1 > SH ? SH : y1 > y0 ? y1 : y0 + 1;
            for (int x = 0; x < sw; x++) {
                int x0 = x * 8 / k, x1 = (x + 1) * 8 / k;
                x1 = x1 > SW ? SW : x1 > x0 ? x1 : x0 + 1;
                for (int c = 0; c < 3; c++) {
                    long sum = 0;
                    for (int v = y0; v < y1; v++)
                        for (int u = x0; u < x1; u++)
                            sum += full[((size_t)v * SW + (size_t)u) * 3 + c];
                    ref[((size_t)y * sw + (size_t)x) * 3 + c] =
                        (uint8_t)((sum + (x1 - x0) * (y1 - y0) / 2) /
                                  ((x1 - x0) * (y1 - y0)));
                }
            }
        }
        double db = psnr(ref, small, (size_t)sw * sh * 3);
        printf("  %d/8: %dx%d, %.1f dB against a box downscale\n", k, sw, sh,
               db);
        NF_CHECK(db > 30.0);
    }
    NF_CHECK_INT_EQ(nf_jpeg_scaled_size(SW, SH, 0, &sw, &sh), NF_EINVAL);
    NF_CHECK_INT_EQ(nf_jpeg_scaled_size(SW, SH, 9, &sw, &sh), NF_EINVAL);
    NF_CHECK_INT_EQ(nf_jpeg_scaled_size(0, SH, 4, &sw, &sh), NF_EINVAL);
    /* One pixel off a scaled size is no size at all. */
    NF_CHECK_INT_EQ(
        nf_jpeg_decode_rgb(j, jpg, (size_t)n, small, 81, 60, 81 * 3),
        NF_EINVAL);
    nf_jpeg_free(j);
    free(jpg);
    free(full);
    free(small);
    free(ref);
}

NF_TEST(jpeg_probe_rejects_cmyk)
{
    enum { w = 32, h = 32 };
    uint8_t cmyk[w * h * 4];
    unsigned char *jpg = NULL;
    unsigned long size = 0;
    struct nf_jpeg *j = NULL;
    tjhandle tj = tjInitCompress();
    int pw, ph;

    NF_CHECK(tj != NULL);
    for (size_t i = 0; i < sizeof(cmyk); i++)
        cmyk[i] = (uint8_t)(i * 7);
    NF_CHECK_INT_EQ(tjCompress2(tj, cmyk, w, 0, h, TJPF_CMYK, &jpg, &size,
                                TJSAMP_444, 90, 0),
                    0);
    NF_CHECK_INT_EQ(nf_jpeg_init(&j), 0);
    NF_CHECK_INT_EQ(nf_jpeg_probe(j, jpg, size, NULL, &pw, &ph), NF_EJPEG);
    nf_jpeg_free(j);
    tjFree(jpg);
    tjDestroy(tj);
}

NF_TEST(jpeg_encode_small_buffer_is_erange)
{
    struct nf_jpeg *j = NULL;
    uint8_t *rgb = malloc(W * H * 3), *dst = malloc(nf_jpeg_bound(W, H));
    uint8_t *planes[3], *yuv = malloc(nf_i420_size(W, H));

    NF_CHECK(rgb != NULL && dst != NULL && yuv != NULL);
    NF_CHECK_INT_EQ(nf_jpeg_init(&j), 0);
    fill_gradient(rgb, W, H);
    nf_i420_planes(yuv, W, H, planes);
    nf_i420_from_rgb(rgb, W * 3, W, H, planes);
    NF_CHECK_INT_EQ(nf_jpeg_encode_rgb(j, rgb, W, H, W * 3, 90, dst, 100),
                    NF_ERANGE);
    NF_CHECK_INT_EQ(nf_jpeg_encode_rgb(j, rgb, W, H, W * 3, 90, dst,
                                       nf_jpeg_bound(W, H) - 1),
                    NF_ERANGE);
    NF_CHECK_INT_EQ(nf_jpeg_encode_i420(j, (const uint8_t *const *)planes, W, H,
                                        90, dst, 100),
                    NF_ERANGE);
    NF_CHECK_INT_EQ(
        nf_jpeg_encode_rgb(j, rgb, W, H, W * 3, 0, dst, nf_jpeg_bound(W, H)),
        NF_EINVAL);
    NF_CHECK_INT_EQ(nf_jpeg_bound(0, 10), 0);
    nf_jpeg_free(j);
    free(rgb);
    free(dst);
    free(yuv);
}

/* clang-format off */
NF_TEST_MAIN(
    NF_TEST_ENTRY(jpeg_rgb_round_trip_psnr_over_30db)
    NF_TEST_ENTRY(jpeg_i420_round_trip_psnr_over_30db)
    NF_TEST_ENTRY(jpeg_probe_rejects_non_jpeg)
    NF_TEST_ENTRY(jpeg_probe_rejects_zero_size)
    NF_TEST_ENTRY(jpeg_probe_rejects_tables_only_stream)
    NF_TEST_ENTRY(jpeg_handle_works_after_a_failed_header)
    NF_TEST_ENTRY(jpeg_probe_rejects_60000x60000_bomb_before_allocating)
    NF_TEST_ENTRY(jpeg_decode_truncated_file_fails)
    NF_TEST_ENTRY(jpeg_decode_rejects_wrong_size)
    NF_TEST_ENTRY(jpeg_scaled_decode_matches_a_box_downscale)
    NF_TEST_ENTRY(jpeg_probe_rejects_cmyk)
    NF_TEST_ENTRY(jpeg_encode_small_buffer_is_erange)
)
/* clang-format on */
