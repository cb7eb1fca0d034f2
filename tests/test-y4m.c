/*
 * test-y4m.c - clients/common: the YUV4MPEG2 reader and writer, and the
 * small helpers the C clients share with it (I420 layout and RGB
 * conversion, percentiles).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "i420.h"
#include "nf-test.h"
#include "percentile.h"
#include "y4m.h"

/* A temporary file holding text followed by n bytes of value fill. */
static FILE *tmp_with(const char *text, size_t n, uint8_t fill)
{
    FILE *f = tmpfile();

    if (f == NULL)
        return NULL;
    fputs(text, f);
    for (size_t i = 0; i < n; i++)
        fputc(fill, f);
    rewind(f);
    return f;
}

/* Opens a reader on a stream consisting of header + one 4x2 frame. */
static int open_header(const char *header, struct nf_y4m_reader **r, FILE **f,
                       char *err, size_t errlen)
{
    char text[256];

    snprintf(text, sizeof(text), "%s\nFRAME\n", header);
    *f = tmp_with(text, nf_i420_size(4, 2), 0x80);
    if (*f == NULL)
        return NF_EIO;
    return nf_y4m_reader_init(r, *f, err, errlen);
}

NF_TEST(y4m_write_read_round_trip)
{
    enum { w = 33, h = 17, frames = 3 };
    size_t size = nf_i420_size(w, h);
    uint8_t *img = malloc(size), *planes[3];
    const uint8_t *got[3];
    struct nf_y4m_writer wr;
    struct nf_y4m_reader *r = NULL;
    const struct nf_y4m_info *info;
    FILE *f = tmpfile();
    char err[256];

    NF_CHECK(img != NULL && f != NULL);
    nf_i420_planes(img, w, h, planes);
    NF_CHECK_INT_EQ(nf_y4m_writer_init(&wr, f, w, h, 30000, 1001, 1), 0);
    for (int i = 0; i < frames; i++) {
        for (size_t k = 0; k < size; k++)
            img[k] = (uint8_t)(k * 31 + (size_t)i);
        NF_CHECK_INT_EQ(
            nf_y4m_writer_write(&wr, (const uint8_t *const *)planes), 0);
    }
    NF_CHECK_INT_EQ(wr.frames, frames);
    rewind(f);
    NF_CHECK_INT_EQ(nf_y4m_reader_init(&r, f, err, sizeof(err)), 0);
    info = nf_y4m_reader_info(r);
    NF_CHECK_INT_EQ(info->width, w);
    NF_CHECK_INT_EQ(info->height, h);
    NF_CHECK_INT_EQ(info->fps_num, 30000);
    NF_CHECK_INT_EQ(info->fps_den, 1001);
    NF_CHECK(strcmp(info->chroma, "420jpeg") == 0);
    NF_CHECK_INT_EQ(info->full_range, 1);
    for (int i = 0; i < frames; i++) {
        NF_CHECK_INT_EQ(nf_y4m_reader_read(r, got), 1);
        for (size_t k = 0; k < size; k++)
            img[k] = (uint8_t)(k * 31 + (size_t)i);
        NF_CHECK(memcmp(got[0], planes[0], (size_t)w * h) == 0);
        NF_CHECK(memcmp(got[1], planes[1], 17 * 9) == 0);
        NF_CHECK(memcmp(got[2], planes[2], 17 * 9) == 0);
    }
    NF_CHECK_INT_EQ(nf_y4m_reader_read(r, got), 0);
    NF_CHECK_INT_EQ(nf_y4m_reader_frames(r), frames);
    /* Looping a seekable file starts over at the first frame. */
    NF_CHECK_INT_EQ(nf_y4m_reader_rewind(r), 0);
    NF_CHECK_INT_EQ(nf_y4m_reader_read(r, got), 1);
    nf_y4m_reader_free(r);
    fclose(f);
    free(img);
}

NF_TEST(y4m_reads_header_variants)
{
    static const char *const headers[] = {
        "YUV4MPEG2 W4 H2 F30:1 Ip A1:1 C420jpeg",
        "YUV4MPEG2 W4 H2 F25:1 C420",
        "YUV4MPEG2 W4 H2 F25:1 C420paldv XYSCSS=420PALDV",
        "YUV4MPEG2 C420mpeg2 H2 W4 F30000:1001 It A0:0",
        "YUV4MPEG2 W4 H2", /* No C: 4:2:0; no F: unknown rate. */
        "YUV4MPEG2 W4  H2 F24:1 XCOLORRANGE=FULL",
    };
    struct nf_y4m_reader *r = NULL;
    const uint8_t *planes[3];
    char err[256];
    FILE *f = NULL;

    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        int rc = open_header(headers[i], &r, &f, err, sizeof(err));

        if (rc != 0)
            printf("  %s: %s\n", headers[i], err);
        NF_CHECK_INT_EQ(rc, 0);
        NF_CHECK_INT_EQ(nf_y4m_reader_info(r)->width, 4);
        NF_CHECK_INT_EQ(nf_y4m_reader_info(r)->height, 2);
        NF_CHECK_INT_EQ(nf_y4m_reader_read(r, planes), 1);
        NF_CHECK_INT_EQ(planes[1][0], 0x80);
        nf_y4m_reader_free(r);
        fclose(f);
    }
    NF_CHECK_INT_EQ(open_header("YUV4MPEG2 W4 H2", &r, &f, err, sizeof(err)),
                    0);
    NF_CHECK_INT_EQ(nf_y4m_reader_info(r)->fps_num, 0);
    NF_CHECK(strcmp(nf_y4m_reader_info(r)->chroma, "420") == 0);
    NF_CHECK_INT_EQ(nf_y4m_reader_info(r)->full_range, 0);
    nf_y4m_reader_free(r);
    fclose(f);
    NF_CHECK_INT_EQ(open_header("YUV4MPEG2 W4 H2 XCOLORRANGE=FULL", &r, &f, err,
                                sizeof(err)),
                    0);
    NF_CHECK_INT_EQ(nf_y4m_reader_info(r)->full_range, 1);
    nf_y4m_reader_free(r);
    fclose(f);
}

NF_TEST(y4m_frame_params_are_skipped)
{
    struct nf_y4m_reader *r = NULL;
    const uint8_t *planes[3];
    char err[256];
    FILE *f = tmp_with("YUV4MPEG2 W4 H2 F25:1\nFRAME Ip XFOO=1\n", 12, 7);

    NF_CHECK(f != NULL);
    NF_CHECK_INT_EQ(nf_y4m_reader_init(&r, f, err, sizeof(err)), 0);
    NF_CHECK_INT_EQ(nf_y4m_reader_read(r, planes), 1);
    NF_CHECK_INT_EQ(planes[2][1], 7);
    nf_y4m_reader_free(r);
    fclose(f);
}

NF_TEST(y4m_rejects_422_and_444_with_a_clear_error)
{
    static const char *const bad[] = {"C422", "C444", "C420p10", "Cmono",
                                      "C444alpha"};
    struct nf_y4m_reader *r = NULL;
    char header[64], err[256];
    FILE *f = NULL;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(header, sizeof(header), "YUV4MPEG2 W4 H2 F25:1 %s", bad[i]);
        NF_CHECK_INT_EQ(open_header(header, &r, &f, err, sizeof(err)),
                        NF_EUNSUPPORTED);
        NF_CHECK(r == NULL);
        NF_CHECK(strstr(err, bad[i]) != NULL);
        NF_CHECK(strstr(err, "4:2:0") != NULL);
        fclose(f);
    }
    printf("  %s\n", err);
}

NF_TEST(y4m_rejects_malformed_headers)
{
    static const char *const bad[] = {
        "YUV4MPEG W4 H2",      "YUV4MPEG2X W4 H2",
        "YUV4MPEG2 W0 H2",     "YUV4MPEG2 W4 H-2",
        "YUV4MPEG2 W4",        "YUV4MPEG2 W4 H2 F25",
        "YUV4MPEG2 W99999 H2", "RIFF",
        "YUV4MPEG2 W4x H2",    "YUV4MPEG2 W4 H2 F0:1",
    };
    struct nf_y4m_reader *r = NULL;
    char err[256];
    FILE *f = NULL;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = open_header(bad[i], &r, &f, err, sizeof(err));

        if (rc != NF_EINVAL)
            printf("  accepted or wrong error for: %s\n", bad[i]);
        NF_CHECK_INT_EQ(rc, NF_EINVAL);
        NF_CHECK(err[0] != '\0');
        fclose(f);
    }
    f = tmp_with("", 0, 0);
    NF_CHECK(f != NULL);
    NF_CHECK_INT_EQ(nf_y4m_reader_init(&r, f, err, sizeof(err)), NF_EIO);
    fclose(f);
}

NF_TEST(y4m_truncated_frame_is_an_error)
{
    struct nf_y4m_reader *r = NULL;
    const uint8_t *planes[3];
    char err[256];
    /* 4x2 needs 8 + 2 + 2 = 12 bytes; give 7. */
    FILE *f = tmp_with("YUV4MPEG2 W4 H2 F25:1\nFRAME\n", 7, 1);

    NF_CHECK(f != NULL);
    NF_CHECK_INT_EQ(nf_y4m_reader_init(&r, f, err, sizeof(err)), 0);
    NF_CHECK_INT_EQ(nf_y4m_reader_read(r, planes), NF_EIO);
    printf("  %s\n", nf_y4m_reader_error(r));
    NF_CHECK(strstr(nf_y4m_reader_error(r), "truncated") != NULL);
    nf_y4m_reader_free(r);
    fclose(f);

    /* A cut inside the FRAME line, and garbage where FRAME belongs. */
    f = tmp_with("YUV4MPEG2 W4 H2\nFRA", 0, 0);
    NF_CHECK(f != NULL);
    NF_CHECK_INT_EQ(nf_y4m_reader_init(&r, f, err, sizeof(err)), 0);
    NF_CHECK(nf_y4m_reader_read(r, planes) < 0);
    nf_y4m_reader_free(r);
    fclose(f);
    f = tmp_with("YUV4MPEG2 W4 H2\nFRAMEX\n", 12, 0);
    NF_CHECK(f != NULL);
    NF_CHECK_INT_EQ(nf_y4m_reader_init(&r, f, err, sizeof(err)), 0);
    NF_CHECK_INT_EQ(nf_y4m_reader_read(r, planes), NF_EINVAL);
    nf_y4m_reader_free(r);
    fclose(f);
}

/* RGB -> I420 -> RGB on a smooth image stays close (chroma is halved). */
NF_TEST(i420_rgb_round_trip_is_close)
{
    enum { w = 31, h = 21 };
    uint8_t rgb[w * h * 3], back[w * h * 3], yuv[w * h * 2], *planes[3];
    int worst = 0;

    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + (y * w + x) * 3;
            p[0] = (uint8_t)(x * 8);
            p[1] = (uint8_t)(y * 12);
            p[2] = (uint8_t)(255 - x * 4);
        }
    }
    NF_CHECK(nf_i420_size(w, h) == (size_t)(w * h + 2 * 16 * 11));
    nf_i420_planes(yuv, w, h, planes);
    nf_i420_from_rgb(rgb, w * 3, w, h, planes);
    nf_i420_to_rgb((const uint8_t *const *)planes, w, h, back, w * 3);
    for (int i = 0; i < w * h * 3; i++) {
        int d = abs((int)rgb[i] - (int)back[i]);
        worst = d > worst ? d : worst;
    }
    printf("  worst channel error %d\n", worst);
    NF_CHECK(worst <= 16);
}

/* Greys map to Y = grey, U = V = 128 exactly (full range, no headroom). */
NF_TEST(i420_is_bt601_full_range)
{
    uint8_t rgb[2 * 2 * 3], yuv[6], *planes[3];

    nf_i420_planes(yuv, 2, 2, planes);
    memset(rgb, 255, sizeof(rgb));
    nf_i420_from_rgb(rgb, 6, 2, 2, planes);
    NF_CHECK_INT_EQ(yuv[0], 255);
    NF_CHECK_INT_EQ(yuv[4], 128);
    NF_CHECK_INT_EQ(yuv[5], 128);
    memset(rgb, 0, sizeof(rgb));
    rgb[0] = 255; /* One red pixel of four. */
    nf_i420_from_rgb(rgb, 6, 2, 2, planes);
    NF_CHECK_INT_EQ(yuv[0], 76); /* 0.299 * 255 */
    NF_CHECK_INT_EQ(yuv[1], 0);
    NF_CHECK_INT_EQ(yuv[5], 128 + 32); /* 0.5 * 255 / 4 */
}

/* Limited range maps onto full range end to end, and back. */
NF_TEST(i420_range_conversion_round_trips)
{
    uint8_t y[4] = {16, 235, 0, 126}, u[1] = {16}, v[1] = {240};
    uint8_t *p[3] = {y, u, v};
    const uint8_t *cp[3] = {y, u, v};

    nf_i420_limited_to_full(cp, 2, 2, p);
    NF_CHECK_INT_EQ(y[0], 0);
    NF_CHECK_INT_EQ(y[1], 255);
    NF_CHECK_INT_EQ(y[2], 0);
    NF_CHECK_INT_EQ(u[0], 0);
    NF_CHECK_INT_EQ(v[0], 255);
    nf_i420_full_to_limited(cp, 2, 2, p);
    NF_CHECK_INT_EQ(y[0], 16);
    NF_CHECK_INT_EQ(y[1], 235);
    NF_CHECK_INT_EQ(y[3], 126);
    NF_CHECK_INT_EQ(u[0], 16);
    NF_CHECK_INT_EQ(v[0], 240);
}

NF_TEST(percentile_interpolates_between_ranks)
{
    double v[] = {5, 1, 4, 2, 3};

    nf_percentile_sort(v, 5);
    NF_CHECK_NEAR(v[0], 1, 0);
    NF_CHECK_NEAR(nf_percentile_of(v, 5, 50), 3, 1e-12);
    NF_CHECK_NEAR(nf_percentile_of(v, 5, 0), 1, 1e-12);
    NF_CHECK_NEAR(nf_percentile_of(v, 5, 100), 5, 1e-12);
    NF_CHECK_NEAR(nf_percentile_of(v, 5, 95), 4.8, 1e-12);
    NF_CHECK_NEAR(nf_percentile_of(v, 2, 50), 1.5, 1e-12);
    NF_CHECK_NEAR(nf_percentile_of(v, 0, 50), 0, 0);
    NF_CHECK_NEAR(nf_percentile_mean(v, 5), 3, 1e-12);
}

/* clang-format off */
NF_TEST_MAIN(
    NF_TEST_ENTRY(y4m_write_read_round_trip)
    NF_TEST_ENTRY(y4m_reads_header_variants)
    NF_TEST_ENTRY(y4m_frame_params_are_skipped)
    NF_TEST_ENTRY(y4m_rejects_422_and_444_with_a_clear_error)
    NF_TEST_ENTRY(y4m_rejects_malformed_headers)
    NF_TEST_ENTRY(y4m_truncated_frame_is_an_error)
    NF_TEST_ENTRY(i420_rgb_round_trip_is_close)
    NF_TEST_ENTRY(i420_is_bt601_full_range)
    NF_TEST_ENTRY(i420_range_conversion_round_trips)
    NF_TEST_ENTRY(percentile_interpolates_between_ranks)
)
/* clang-format on */
