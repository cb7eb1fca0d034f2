/*
 * test-backend.c - the backend interface on the CPU reference backend:
 * cache semantics (cold start, ring order, reset, resize), padding and
 * cropping of odd sizes, batches equal to single calls, item validation,
 * and the default model producing a stylized but recognizable frame.
 *
 * Small models are assembled in memory as in test-model-load.c: templates
 * use ' for JSON quotes and ` for quotes inside the nf.graph string.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "error.h"
#include "model.h"
#include "nf-test.h"

#include "model-template.h"

/* An RGB image with `pad` spare bytes per row (set to 0xAA). */
static struct nf_image image_new(int w, int h, int pad)
{
    struct nf_image im = {NULL, w, h, 3 * w + pad};
    im.data = malloc((size_t)im.stride * h);
    if (im.data != NULL)
        memset(im.data, 0xAA, (size_t)im.stride * h);
    return im;
}

static void image_fill(const struct nf_image *im, int r, int g, int b)
{
    for (int y = 0; y < im->height; y++)
        for (int x = 0; x < im->width; x++) {
            uint8_t *p = im->data + (size_t)y * im->stride + 3 * x;
            p[0] = (uint8_t)r;
            p[1] = (uint8_t)g;
            p[2] = (uint8_t)b;
        }
}

/* 1 if every pixel of im is (r, g, b). */
static int image_is(const struct nf_image *im, int r, int g, int b)
{
    for (int y = 0; y < im->height; y++)
        for (int x = 0; x < im->width; x++) {
            const uint8_t *p = im->data + (size_t)y * im->stride + 3 * x;
            if (p[0] != r || p[1] != g || p[2] != b) {
                printf("  pixel (%d, %d) is (%d, %d, %d), expected (%d, %d, "
                       "%d)\n",
                       x, y, p[0], p[1], p[2], r, g, b);
                return 0;
            }
        }
    return 1;
}

/* A synthetic scene: a gradient, a dark rectangle and a bright disc that
 * move with t. */
static void scene(const struct nf_image *im, int t)
{
    for (int y = 0; y < im->height; y++)
        for (int x = 0; x < im->width; x++) {
            uint8_t *p = im->data + (size_t)y * im->stride + 3 * x;
            int r = 60 + 2 * x, g = 80 + 2 * y, b = 140 - x;
            if (x >= 8 + t && x < 24 + t && y >= 10 && y < 30)
                r = 30, g = 20, b = 60;
            int dx = x - 44 + t, dy = y - 24;
            if (dx * dx + dy * dy < 100)
                r = 240, g = 220, b = 90;
            p[0] = (uint8_t)r;
            p[1] = (uint8_t)g;
            p[2] = (uint8_t)b;
        }
}

static int predict1(struct nf_backend *b, struct nf_slot *s,
                    const struct nf_image *in, struct nf_image *out)
{
    struct nf_predict_item it = {.slot = s, .in = in, .out = out, .status = 1};
    int rc = nf_backend_predict(b, &it, 1);
    return rc == it.status ? rc : -999;
}

/*
 * K = 2; out.R = frame.R, out.G = cache.0.R, out.B = cache.1.G (a 1x1 conv
 * selecting from concat(frame, cache.0, cache.1)).
 */
static struct nf_model *ring_model(void)
{
    float w[27] = {0};
    w[0 * 9 + 0] = 1; /* frame R */
    w[1 * 9 + 3] = 1; /* cache.0 R */
    w[2 * 9 + 7] = 1; /* cache.1 G */
    return load_model(
        "{'w':{'dtype':'F32','shape':[3,9,1,1],'data_offsets':[0,108]},"
        "'__metadata__':{'nf.format':'1','nf.name':'ring',"
        "'nf.cache_frames':'2','nf.graph':'{`nodes`:["
        "{`name`:`k`,`op`:`concat`,`inputs`:[`frame`,`cache.0`,`cache.1`]},"
        "{`name`:`o`,`op`:`conv2d`,`inputs`:[`k`],`weight`:`w`}],"
        "`output`:`o`}'}}",
        w, 27);
}

NF_TEST(backend_list_and_auto)
{
    const char *const *names = nf_backend_list();
    int has_ref = 0;
    for (int i = 0; names[i]; i++)
        has_ref |= strcmp(names[i], "ref") == 0;
    NF_CHECK(has_ref); /* The reference backend is always built. */
    struct nf_model *m = ring_model();
    NF_CHECK(m != NULL);
    struct nf_backend *b = NULL;
    /* "auto" and "cpu" pick a concrete backend from the list; "ref" is
     * always the reference. */
    NF_CHECK_INT_EQ(nf_backend_init("auto", m, 0, &b), 0);
    NF_CHECK(strcmp(nf_backend_name(b), names[0]) == 0 ||
             strcmp(nf_backend_name(b), "ref") == 0);
    NF_CHECK(nf_backend_model(b) == m);
    nf_backend_free(b);
    NF_CHECK_INT_EQ(nf_backend_init("ref", m, 0, &b), 0);
    NF_CHECK(strcmp(nf_backend_name(b), "ref") == 0);
    nf_backend_free(b);
    NF_CHECK_INT_EQ(nf_backend_init("tpu", m, 0, &b), NF_ENO_BACKEND);
    NF_CHECK(b == NULL);
    nf_model_free(m);
}

NF_TEST(backend_cache_cold_start_ring_order_reset_resize)
{
    struct nf_model *m = ring_model();
    struct nf_backend *b = NULL;
    struct nf_slot *s = NULL;
    NF_CHECK(m != NULL);
    NF_CHECK_INT_EQ(nf_backend_init("cpu", m, 0, &b), 0);
    NF_CHECK_INT_EQ(nf_backend_slot_new(b, &s), 0);
    struct nf_image in = image_new(4, 2, 0), out = image_new(4, 2, 0);
    NF_CHECK(in.data != NULL && out.data != NULL);

    /* Frame t has R = 10 (t + 1) and G = 200. Cold start fills both cache
     * frames with frame 0, so out0 = (10, 10, 200), out1 = (20, out0.R,
     * frame0.G). From then on the ring holds outputs, newest first:
     * out2 = (30, out1.R, out0.G) = (30, 20, 10), and so on. */
    const int want[5][3] = {
        {10, 10, 200}, {20, 10, 200}, {30, 20, 10}, {40, 30, 10}, {50, 40, 20}};
    for (int t = 0; t < 5; t++) {
        image_fill(&in, 10 * (t + 1), 200, 7);
        NF_CHECK_INT_EQ(predict1(b, s, &in, &out), 0);
        NF_CHECK(image_is(&out, want[t][0], want[t][1], want[t][2]));
    }

    /* Reset: cold again, the cache is two copies of the next input. */
    nf_backend_slot_reset(b, s);
    image_fill(&in, 60, 250, 7);
    NF_CHECK_INT_EQ(predict1(b, s, &in, &out), 0);
    NF_CHECK(image_is(&out, 60, 60, 250));
    image_fill(&in, 70, 0, 7);
    NF_CHECK_INT_EQ(predict1(b, s, &in, &out), 0);
    NF_CHECK(image_is(&out, 70, 60, 250));

    /* A new size resets the cache too. */
    struct nf_image in2 = image_new(5, 3, 0), out2 = image_new(5, 3, 0);
    NF_CHECK(in2.data != NULL && out2.data != NULL);
    image_fill(&in2, 80, 100, 7);
    NF_CHECK_INT_EQ(predict1(b, s, &in2, &out2), 0);
    NF_CHECK(image_is(&out2, 80, 80, 100));

    free(in.data);
    free(out.data);
    free(in2.data);
    free(out2.data);
    nf_backend_free(b); /* Also frees the open slot. */
    nf_model_free(m);
}

NF_TEST(backend_pads_and_crops_odd_sizes)
{
    /* avgpool2x2 then nearest upsampling: each output pixel is the mean of
     * its 2x2 block in the edge-padded frame. Red = 20 y + 4 x on 3x3; the
     * padded column 3 repeats column 2 and row 3 repeats row 2, so the
     * blocks average to 12 (top left), 18 (x = 2), 42 (y = 2), 48. */
    struct nf_model *m =
        load_model("{'__metadata__':{'nf.format':'1','nf.name':'pool',"
                   "'nf.size_multiple':'2','nf.graph':'{`nodes`:["
                   "{`name`:`p`,`op`:`avgpool2x2`,`inputs`:[`frame`]},"
                   "{`name`:`u`,`op`:`upsample2x_nearest`,`inputs`:[`p`]}],"
                   "`output`:`u`}'}}",
                   NULL, 0);
    struct nf_backend *b = NULL;
    struct nf_slot *s = NULL;
    NF_CHECK(m != NULL);
    NF_CHECK_INT_EQ(nf_backend_init("cpu", m, 0, &b), 0);
    NF_CHECK_INT_EQ(nf_backend_slot_new(b, &s), 0);
    struct nf_image in = image_new(3, 3, 0), out = image_new(3, 3, 5);
    NF_CHECK(in.data != NULL && out.data != NULL);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++) {
            uint8_t *p = in.data + y * in.stride + 3 * x;
            p[0] = (uint8_t)(20 * y + 4 * x);
            p[1] = p[2] = 100;
        }
    NF_CHECK_INT_EQ(predict1(b, s, &in, &out), 0);
    const int want[3][3] = {{12, 12, 18}, {12, 12, 18}, {42, 42, 48}};
    for (int y = 0; y < 3; y++) {
        for (int x = 0; x < 3; x++) {
            NF_CHECK_INT_EQ(out.data[y * out.stride + 3 * x], want[y][x]);
            NF_CHECK_INT_EQ(out.data[y * out.stride + 3 * x + 1], 100);
        }
        /* The spare bytes after each row are left alone. */
        for (int k = 9; k < out.stride; k++)
            NF_CHECK_INT_EQ(out.data[y * out.stride + k], 0xAA);
    }
    free(in.data);
    free(out.data);
    nf_backend_slot_free(b, s);
    nf_backend_free(b);
    nf_model_free(m);
}

NF_TEST(backend_identity_model_round_trips_any_size)
{
    /* No nodes: the output is the (padded, then cropped) frame itself. */
    struct nf_model *m = load_model(
        "{'__metadata__':{'nf.format':'1','nf.name':'id',"
        "'nf.size_multiple':'16','nf.graph':'{`nodes`:[],`output`:`frame`}'}}",
        NULL, 0);
    struct nf_backend *b = NULL;
    struct nf_slot *s = NULL;
    NF_CHECK(m != NULL);
    NF_CHECK_INT_EQ(nf_backend_init("cpu", m, 0, &b), 0);
    NF_CHECK_INT_EQ(nf_backend_slot_new(b, &s), 0);
    const int sizes[3][2] = {{1, 1}, {17, 5}, {64, 48}};
    for (int k = 0; k < 3; k++) {
        struct nf_image in = image_new(sizes[k][0], sizes[k][1], 1);
        struct nf_image out = image_new(sizes[k][0], sizes[k][1], 0);
        NF_CHECK(in.data != NULL && out.data != NULL);
        scene(&in, k);
        int rc = predict1(b, s, &in, &out);
        int same = 1;
        for (int y = 0; y < in.height; y++)
            same &= memcmp(in.data + y * in.stride, out.data + y * out.stride,
                           3 * (size_t)in.width) == 0;
        free(in.data);
        free(out.data);
        NF_CHECK_INT_EQ(rc, 0);
        NF_CHECK(same);
    }
    nf_backend_free(b);
    nf_model_free(m);
}

NF_TEST(backend_rejects_bad_items)
{
    struct nf_model *m = ring_model();
    struct nf_backend *b = NULL, *other = NULL;
    struct nf_slot *s = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL;
    struct nf_slot *foreign = NULL;
    NF_CHECK(m != NULL);
    NF_CHECK_INT_EQ(nf_backend_init("cpu", m, 0, &b), 0);
    NF_CHECK_INT_EQ(nf_backend_init("cpu", m, 0, &other), 0);
    NF_CHECK_INT_EQ(nf_backend_slot_new(b, &s), 0);
    NF_CHECK_INT_EQ(nf_backend_slot_new(b, &s2), 0);
    NF_CHECK_INT_EQ(nf_backend_slot_new(b, &s3), 0);
    NF_CHECK_INT_EQ(nf_backend_slot_new(b, &s4), 0);
    NF_CHECK_INT_EQ(nf_backend_slot_new(other, &foreign), 0);
    struct nf_image in = image_new(4, 2, 0), out = image_new(4, 2, 0);
    struct nf_image small = image_new(2, 2, 0);
    NF_CHECK(in.data != NULL && out.data != NULL && small.data != NULL);
    image_fill(&in, 1, 2, 3);
    struct nf_image narrow = in, huge = in;
    narrow.stride = 11;
    huge.width = NF_BACKEND_MAX_SIDE + 1;
    struct nf_predict_item items[7] = {
        {.slot = NULL, .in = &in, .out = &out, .status = 0}, /* no slot */
        {.slot = s, .in = &in, .out = &small, .status = 0},  /* size mismatch */
        {.slot = s3,
         .in = &narrow,
         .out = &out,
         .status = 0}, /* stride below 3 * width */
        {.slot = foreign,
         .in = &in,
         .out = &out,
         .status = 0}, /* another backend's slot */
        {.slot = s2, .in = &in, .out = &out, .status = 0}, /* valid */
        {.slot = s2, .in = &in, .out = &out, .status = 0}, /* same slot twice */
        {.slot = s4, .in = &huge, .out = &out, .status = 0}, /* too wide */
    };
    NF_CHECK_INT_EQ(nf_backend_predict(b, items, 7), NF_EINVAL);
    const int want[7] = {NF_EINVAL, NF_EINVAL, NF_EINVAL, NF_EINVAL,
                         0,         NF_EINVAL, NF_ERANGE};
    for (int i = 0; i < 7; i++)
        NF_CHECK_INT_EQ(items[i].status, want[i]);
    NF_CHECK(image_is(&out, 1, 1, 2));
    NF_CHECK_INT_EQ(nf_backend_predict(b, NULL, 0), 0);
    free(in.data);
    free(out.data);
    free(small.data);
    nf_backend_free(other);
    nf_backend_free(b);
    nf_model_free(m);
}

static struct nf_model *default_model(void)
{
    char err[256];
    struct nf_model *m = NULL;
    if (nf_model_load("models/default.safetensors", &m, err, sizeof err) < 0)
        printf("  %s\n", err);
    return m;
}

NF_TEST(backend_batch_matches_one_at_a_time)
{
    /* Three streams (two sizes, one odd), four frames each: a batch per
     * step on one backend equals single calls on another. */
    enum { STREAMS = 3, FRAMES = 4 };
    const int size[STREAMS][2] = {{64, 48}, {33, 17}, {64, 48}};
    struct nf_model *m = default_model();
    struct nf_backend *single = NULL, *batch = NULL;
    struct nf_slot *ss[STREAMS] = {0}, *bs[STREAMS] = {0};
    struct nf_image in[STREAMS], o1[STREAMS], o2[STREAMS];
    NF_CHECK(m != NULL);
    NF_CHECK_INT_EQ(nf_backend_init("cpu", m, 0, &single), 0);
    NF_CHECK_INT_EQ(nf_backend_init("cpu", m, 0, &batch), 0);
    for (int i = 0; i < STREAMS; i++) {
        NF_CHECK_INT_EQ(nf_backend_slot_new(single, &ss[i]), 0);
        NF_CHECK_INT_EQ(nf_backend_slot_new(batch, &bs[i]), 0);
        in[i] = image_new(size[i][0], size[i][1], 0);
        o1[i] = image_new(size[i][0], size[i][1], 0);
        o2[i] = image_new(size[i][0], size[i][1], 0);
    }
    int same = 1, rc = 0;
    for (int t = 0; t < FRAMES && rc == 0; t++) {
        struct nf_predict_item items[STREAMS];
        for (int i = 0; i < STREAMS; i++) {
            scene(&in[i], 2 * t + 5 * i);
            rc |= predict1(single, ss[i], &in[i], &o1[i]);
            items[i] = (struct nf_predict_item){
                .slot = bs[i], .in = &in[i], .out = &o2[i], .status = 1};
        }
        rc |= nf_backend_predict(batch, items, STREAMS);
        for (int i = 0; i < STREAMS; i++)
            same &= memcmp(o1[i].data, o2[i].data,
                           (size_t)o1[i].stride * o1[i].height) == 0;
    }
    for (int i = 0; i < STREAMS; i++) {
        free(in[i].data);
        free(o1[i].data);
        free(o2[i].data);
    }
    nf_backend_free(single);
    nf_backend_free(batch);
    nf_model_free(m);
    NF_CHECK_INT_EQ(rc, 0);
    NF_CHECK(same);
}

/* Pearson correlation of the luminance of two images. */
static double luma_correlation(const struct nf_image *a,
                               const struct nf_image *b)
{
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    int n = a->width * a->height;
    for (int y = 0; y < a->height; y++)
        for (int x = 0; x < a->width; x++) {
            const uint8_t *p = a->data + y * a->stride + 3 * x;
            const uint8_t *q = b->data + y * b->stride + 3 * x;
            double la = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
            double lb = 0.299 * q[0] + 0.587 * q[1] + 0.114 * q[2];
            sa += la;
            sb += lb;
            saa += la * la;
            sbb += lb * lb;
            sab += la * lb;
        }
    double cov = sab / n - sa / n * sb / n;
    double va = saa / n - sa / n * sa / n, vb = sbb / n - sb / n * sb / n;
    return cov / sqrt(va * vb);
}

static double mean_abs_diff(const struct nf_image *a, const struct nf_image *b)
{
    double sum = 0;
    for (int y = 0; y < a->height; y++)
        for (int k = 0; k < 3 * a->width; k++)
            sum += fabs((double)a->data[y * a->stride + k] -
                        b->data[y * b->stride + k]);
    return sum / (3.0 * a->width * a->height);
}

NF_TEST(backend_default_model_stylizes)
{
    struct nf_model *m = default_model();
    struct nf_backend *b = NULL;
    struct nf_slot *s = NULL, *fresh = NULL;
    NF_CHECK(m != NULL);
    NF_CHECK_INT_EQ(nf_backend_init("cpu", m, 0, &b), 0);
    NF_CHECK_INT_EQ(nf_backend_slot_new(b, &s), 0);
    NF_CHECK_INT_EQ(nf_backend_slot_new(b, &fresh), 0);
    struct nf_image in = image_new(64, 48, 0), out = image_new(64, 48, 0);
    struct nf_image out2 = image_new(64, 48, 0);
    NF_CHECK(in.data != NULL && out.data != NULL && out2.data != NULL);
    scene(&in, 0);
    NF_CHECK_INT_EQ(predict1(b, s, &in, &out), 0);
    double diff = mean_abs_diff(&in, &out), corr = luma_correlation(&in, &out);
    printf("  64x48: mean |out - in| = %.2f levels, luma correlation %.3f\n",
           diff, corr);
    NF_CHECK(diff > 3);
    NF_CHECK(corr > 0.6);

    /* The cache matters: the next frame differs from the same frame run
     * on a cold slot. */
    scene(&in, 3);
    NF_CHECK_INT_EQ(predict1(b, s, &in, &out), 0);
    NF_CHECK_INT_EQ(predict1(b, fresh, &in, &out2), 0);
    NF_CHECK(mean_abs_diff(&out, &out2) > 0.1);
    free(in.data);
    free(out.data);
    free(out2.data);
    nf_backend_free(b);
    nf_model_free(m);
}

/* Host buffers: zeroed, aligned, writable, freed without the backend,
 * with or without one; an impossible size is refused. */
NF_TEST(backend_host_alloc_zeroed_aligned_and_freed)
{
    struct nf_model *m = ring_model();
    struct nf_backend *b = NULL;
    NF_CHECK(m != NULL);
    NF_CHECK_INT_EQ(nf_backend_init("ref", m, 1, &b), 0);
    const struct nf_backend *owners[] = {b, NULL};
    for (int k = 0; k < 2; k++) {
        size_t sizes[] = {1, 63, 64, 1000003};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            uint8_t *p = nf_backend_host_alloc(owners[k], sizes[i]);
            if (p == NULL) {
                NF_CHECK(!"nf_backend_host_alloc returned NULL");
                continue;
            }
            NF_CHECK_INT_EQ((uintptr_t)p % 64, 0);
            size_t nonzero = 0;
            for (size_t j = 0; j < sizes[i]; j++)
                nonzero += p[j] != 0;
            NF_CHECK_INT_EQ(nonzero, 0);
            memset(p, 0x5A, sizes[i]);
            nf_backend_host_free(p);
        }
    }
    NF_CHECK(nf_backend_host_alloc(b, SIZE_MAX - 8) == NULL);
    nf_backend_free(b); /* Buffers may outlive it: */
    void *late = nf_backend_host_alloc(NULL, 16);
    nf_backend_host_free(late);
    nf_backend_host_free(NULL);
    nf_model_free(m);
}

NF_TEST_MAIN(
    NF_TEST_ENTRY(backend_list_and_auto)
        NF_TEST_ENTRY(backend_cache_cold_start_ring_order_reset_resize)
            NF_TEST_ENTRY(backend_pads_and_crops_odd_sizes)
                NF_TEST_ENTRY(backend_identity_model_round_trips_any_size)
                    NF_TEST_ENTRY(backend_rejects_bad_items) NF_TEST_ENTRY(
                        backend_batch_matches_one_at_a_time)
                        NF_TEST_ENTRY(backend_default_model_stylizes)
                            NF_TEST_ENTRY(
                                backend_host_alloc_zeroed_aligned_and_freed))
