/*
 * test-temporal.c - drift correction and the temporal measures: the
 * per-element math of correct.h, the reference backend applying a
 * correction (offset before clamping and into the cache, decay before the
 * graph), the measures of quality.h on images with hand-computed values,
 * stabilize.h's row passes against correct.h's definitions, and
 * kernels/temporal.c's parameters, resets, re-anchoring and stabilization
 * on tiny models built in memory.
 *
 * Model templates use ' for JSON quotes and ` for quotes inside the
 * nf.graph string, as in test-backend.c.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend-impl.h"
#include "backend.h"
#include "correct.h"
#include "error.h"
#include "model.h"
#include "nf-test.h"
#include "quality.h"
#include "stabilize.h"
#include "temporal.h"

#include "model-template.h"

/* K = 1, out = cache.0: a model that only remembers. */
static struct nf_model *memory_model(void)
{
    return load_model("{'__metadata__':{'nf.format':'1','nf.name':'mem',"
                      "'nf.cache_frames':'1','nf.graph':'{`nodes`:[],"
                      "`output`:`cache.0`}'}}",
                      NULL, 0);
}

/* K = 1, out = cache.0 + 2/255: drifts up by 2 levels a frame. */
static struct nf_model *creep_model(void)
{
    float b[3] = {2.0f / 255, 2.0f / 255, 2.0f / 255};
    return load_model(
        "{'b':{'dtype':'F32','shape':[3],'data_offsets':[0,12]},"
        "'__metadata__':{'nf.format':'1','nf.name':'creep',"
        "'nf.cache_frames':'1','nf.graph':'{`nodes`:["
        "{`name`:`o`,`op`:`scale_shift`,`inputs`:[`cache.0`],`bias`:`b`}],"
        "`output`:`o`}'}}",
        b, 3);
}

/* K = 0, out = frame. */
static struct nf_model *identity_model(void)
{
    return load_model("{'__metadata__':{'nf.format':'1','nf.name':'id',"
                      "'nf.graph':'{`nodes`:[],`output`:`frame`}'}}",
                      NULL, 0);
}

static struct nf_image image_new(int w, int h)
{
    struct nf_image im = {calloc((size_t)w * h, 3), w, h, 3 * w};
    return im;
}

static void image_fill(const struct nf_image *im, int v)
{
    for (int y = 0; y < im->height; y++)
        memset(im->data + (size_t)y * im->stride, v, (size_t)3 * im->width);
}

static uint8_t *px(const struct nf_image *im, int x, int y)
{
    return im->data + (size_t)y * im->stride + 3 * x;
}

/* ---- correct.h ----------------------------------------------------- */

NF_TEST(corr_offset_bilinear_matches_hand_values)
{
    /* Two cells over 4 pixels: s = x / 2 - 0.25, clamped to [0, 1]. */
    const float g[6] = {0, 1, 0, 0, 10, 30}; /* (3, 1, 2) */
    const float want[6] = {0, 0.25f, 0.75f, 1, 1, 1};
    for (int x = 0; x < 6; x++) /* x 4 and 5 are padding. */
        NF_CHECK_NEAR(nf_corr_offset_at(g, 2, 1, 0, x, 0, 4, 1), want[x], 1e-6);
    NF_CHECK_NEAR(nf_corr_offset_at(g, 2, 1, 2, 1, 0, 4, 1), 15, 1e-5);
    NF_CHECK_NEAR(nf_corr_offset_at(g, 2, 1, 1, 3, 0, 4, 1), 0, 0);
    /* A 1 x 1 grid is a constant. */
    const float one[3] = {0.5f, -1, 2};
    for (int y = 0; y < 7; y++)
        NF_CHECK_NEAR(nf_corr_offset_at(one, 1, 1, 1, 3, y, 5, 7), -1, 0);
    /* Along y as along x: 2 rows over 4 pixels. */
    const float col[6] = {0, 1, 0, 0, 0, 0}; /* (3, 2, 1) */
    NF_CHECK_NEAR(nf_corr_offset_at(col, 1, 2, 0, 0, 2, 1, 4), 0.75f, 1e-6);
}

NF_TEST(corr_decay_and_beta)
{
    NF_CHECK_NEAR(nf_corr_decay(0.2f, 0.6f, 0), 0.2f, 0);
    NF_CHECK_NEAR(nf_corr_decay(0.2f, 0.6f, 1), 0.6f, 0);
    NF_CHECK_NEAR(nf_corr_decay(0.2f, 0.6f, 0.25f), 0.3f, 1e-7);
    const float map[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}; /* 3 x 2 */
    NF_CHECK_NEAR(nf_corr_beta_at(NULL, 0.7f, 5, 5, 3, 2), 0.7f, 0);
    NF_CHECK_NEAR(nf_corr_beta_at(map, 0.7f, 1, 1, 3, 2), 0.5f, 0);
    NF_CHECK_NEAR(nf_corr_beta_at(map, 0.7f, 4, 3, 3, 2), 0.6f, 0);
}

/* ---- The reference backend applying a correction ------------------- */

static int predict(struct nf_backend *b, struct nf_slot *s,
                   const struct nf_image *in, struct nf_image *out,
                   const struct nf_correction *c)
{
    struct nf_predict_item it = {s, in, out, 0, c};
    return nf_backend_predict(b, &it, 1);
}

NF_TEST(backend_offset_enters_the_cache)
{
    struct nf_model *m = memory_model();
    struct nf_backend *b = NULL;
    struct nf_slot *s = NULL;
    struct nf_image in = image_new(5, 3), out = image_new(5, 3);
    NF_CHECK(m != NULL);
    NF_CHECK(nf_backend_init("ref", m, 0, &b) == 0);
    NF_CHECK(nf_backend_slot_new(b, &s) == 0);
    float off[3] = {4.0f / 255, 0, -4.0f / 255};
    struct nf_correction c = {off, 1, 1, 0, NULL, NULL, NULL};
    image_fill(&in, 100);
    /* Each frame adds the offset to what the cache holds: +4, +8, +12. */
    for (int f = 1; f <= 3; f++) {
        NF_CHECK(predict(b, s, &in, &out, &c) == 0);
        NF_CHECK_INT_EQ(px(&out, 4, 2)[0], 100 + 4 * f);
        NF_CHECK_INT_EQ(px(&out, 0, 0)[1], 100);
        NF_CHECK_INT_EQ(px(&out, 2, 1)[2], 100 - 4 * f);
    }
    /* Without a correction the cache is what it was: 112. */
    NF_CHECK(predict(b, s, &in, &out, NULL) == 0);
    NF_CHECK_INT_EQ(px(&out, 1, 1)[0], 112);
    /* The offset is added before clamping: 112 + 200 clamps to 255 and the
     * cache holds 1.0, so -100 then gives 155. */
    float big[3] = {200.0f / 255, 0, 0}, back[3] = {-100.0f / 255, 0, 0};
    c.offset = big;
    NF_CHECK(predict(b, s, &in, &out, &c) == 0);
    NF_CHECK_INT_EQ(px(&out, 0, 0)[0], 255);
    c.offset = back;
    NF_CHECK(predict(b, s, &in, &out, &c) == 0);
    NF_CHECK_INT_EQ(px(&out, 0, 0)[0], 155);
    nf_backend_free(b);
    nf_model_free(m);
    free(in.data);
    free(out.data);
}

NF_TEST(backend_decay_pulls_the_cache_toward_the_input)
{
    struct nf_model *m = memory_model();
    struct nf_backend *b = NULL;
    struct nf_slot *s = NULL;
    struct nf_image in = image_new(4, 2), out = image_new(4, 2);
    NF_CHECK(m != NULL);
    NF_CHECK(nf_backend_init("ref", m, 0, &b) == 0);
    NF_CHECK(nf_backend_slot_new(b, &s) == 0);
    image_fill(&in, 40);
    NF_CHECK(predict(b, s, &in, &out, NULL) == 0); /* Cache: 40. */
    image_fill(&in, 200);
    struct nf_correction c = {NULL, 0, 0, 0.25f, NULL, NULL, NULL};
    NF_CHECK(predict(b, s, &in, &out, &c) == 0); /* 0.75 * 40 + 0.25 * 200 */
    NF_CHECK_INT_EQ(px(&out, 3, 1)[1], 80);
    /* A per-pixel map replaces decay: pixel (0, 0) refreshes fully. */
    float map[8] = {1, 0, 0, 0, 0, 0, 0, 0.5f};
    c.decay_map = map;
    NF_CHECK(predict(b, s, &in, &out, &c) == 0);
    NF_CHECK_INT_EQ(px(&out, 0, 0)[0], 200);
    NF_CHECK_INT_EQ(px(&out, 1, 0)[0], 80);
    NF_CHECK_INT_EQ(px(&out, 3, 1)[0], 140);
    nf_backend_free(b);
    nf_model_free(m);
    free(in.data);
    free(out.data);
}

NF_TEST(backend_rejects_bad_corrections)
{
    struct nf_model *m = identity_model();
    struct nf_backend *b = NULL;
    struct nf_slot *s = NULL;
    struct nf_image in = image_new(4, 2), out = image_new(4, 2);
    float off[3] = {0};
    NF_CHECK(m != NULL);
    NF_CHECK(nf_backend_init("ref", m, 0, &b) == 0);
    NF_CHECK(nf_backend_slot_new(b, &s) == 0);
    uint8_t pix[4 * 2 * 3] = {0}, copy[4 * 2 * 3];
    float motion[4 * 2] = {0}, avg[4 * 2 * 3] = {0};
    const struct nf_corr_motion mo_ok = {pix, copy, motion, NULL, 3, 1},
                                mo_bad[] = {{NULL, copy, motion, NULL, 3, 1},
                                            {pix, NULL, motion, NULL, 3, 1},
                                            {pix, copy, NULL, NULL, 3, 1},
                                            {pix, copy, motion, NULL, -1, 1},
                                            {pix, copy, motion, NULL, 3, NAN}};
    const struct nf_corr_stab st_ok = {motion, avg, pix, 0.1f, 2},
                              st_bad[] = {{NULL, avg, pix, 0.1f, 2},
                                          {motion, NULL, pix, 0.1f, 2},
                                          {motion, avg, NULL, 0.1f, 2},
                                          {motion, avg, pix, 1.5f, 2},
                                          {motion, avg, pix, 0.1f, NAN}};
    struct nf_correction bad[] = {
        {NULL, 0, 0, -0.1f, NULL, NULL, NULL},
        {NULL, 0, 0, 1.5f, NULL, NULL, NULL},
        {NULL, 0, 0, NAN, NULL, NULL, NULL},
        {off, 0, 1, 0, NULL, NULL, NULL},
        {off, 1, NF_CORR_MAX_GRID + 1, 0, NULL, NULL, NULL},
        {NULL, 0, 0, 0, NULL, &mo_bad[0], NULL},
        {NULL, 0, 0, 0, NULL, &mo_bad[1], NULL},
        {NULL, 0, 0, 0, NULL, &mo_bad[2], NULL},
        {NULL, 0, 0, 0, NULL, &mo_bad[3], NULL},
        {NULL, 0, 0, 0, NULL, &mo_bad[4], NULL},
        {NULL, 0, 0, 0, NULL, NULL, &st_bad[0]},
        {NULL, 0, 0, 0, NULL, NULL, &st_bad[1]},
        {NULL, 0, 0, 0, NULL, NULL, &st_bad[2]},
        {NULL, 0, 0, 0, NULL, NULL, &st_bad[3]},
        {NULL, 0, 0, 0, NULL, NULL, &st_bad[4]},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        NF_CHECK_INT_EQ(predict(b, s, &in, &out, &bad[i]), NF_EINVAL);
    struct nf_correction ok = {off, 1, 1, 1, NULL, &mo_ok, &st_ok};
    NF_CHECK_INT_EQ(predict(b, s, &in, &out, &ok), 0);
    NF_CHECK(nf_backend_stabilizes(b));
    nf_backend_free(b);
    nf_model_free(m);
    free(in.data);
    free(out.data);
}

/* ---- quality.h ----------------------------------------------------- */

NF_TEST(quality_mae_and_psnr)
{
    struct nf_image a = image_new(3, 2), b = image_new(3, 2);
    image_fill(&a, 10);
    image_fill(&b, 10);
    NF_CHECK_NEAR(nf_quality_mae(&a, &b), 0, 0);
    NF_CHECK_NEAR(nf_quality_psnr(&a, &b), NF_QUALITY_PSNR_MAX, 0);
    image_fill(&b, 13);
    NF_CHECK_NEAR(nf_quality_mae(&a, &b), 3, 1e-12);
    NF_CHECK_NEAR(nf_quality_psnr(&a, &b), 10 * log10(255.0 * 255 / 9), 1e-9);
    /* One channel of one pixel off by 18: MAE 18 / 18, MSE 324 / 18. */
    image_fill(&b, 10);
    px(&b, 2, 1)[1] = 28;
    NF_CHECK_NEAR(nf_quality_mae(&a, &b), 1, 1e-12);
    NF_CHECK_NEAR(nf_quality_psnr(&a, &b), 10 * log10(255.0 * 255 / 18), 1e-9);
    free(a.data);
    free(b.data);
}

NF_TEST(quality_flicker_counts_static_pixels_only)
{
    struct nf_image i0 = image_new(4, 1), i1 = image_new(4, 1);
    struct nf_image o0 = image_new(4, 1), o1 = image_new(4, 1);
    image_fill(&i0, 50);
    image_fill(&i1, 50);
    px(&i1, 0, 0)[2] = 60; /* Pixel 0 moves by 10, pixel 1 by 2. */
    px(&i1, 1, 0)[0] = 52;
    image_fill(&o0, 100);
    image_fill(&o1, 100);
    px(&o1, 0, 0)[0] = 0;   /* Ignored: its input moved. */
    px(&o1, 1, 0)[1] = 106; /* 6 */
    px(&o1, 3, 0)[0] = 97;  /* 3 */
    px(&o1, 3, 0)[2] = 103; /* 3 */
    uint64_t n = 0;
    /* tol 0: pixels 2 and 3 are static; (0 + 6) / (2 * 3) = 1. */
    NF_CHECK_NEAR(nf_quality_flicker(&i0, &i1, &o0, &o1, 0, &n), 1, 1e-12);
    NF_CHECK_INT_EQ(n, 2);
    /* tol 2: pixel 1 too; (6 + 6) / (3 * 3). */
    NF_CHECK_NEAR(nf_quality_flicker(&i0, &i1, &o0, &o1, 2, &n), 12.0 / 9,
                  1e-12);
    NF_CHECK_INT_EQ(n, 3);
    image_fill(&i1, 0);
    NF_CHECK_NEAR(nf_quality_flicker(&i0, &i1, &o0, &o1, 2, &n), 0, 0);
    NF_CHECK_INT_EQ(n, 0);
    free(i0.data);
    free(i1.data);
    free(o0.data);
    free(o1.data);
}

NF_TEST(quality_grids)
{
    /* 5 x 2 in 2 x 1 cells: columns [0, 2) and [2, 5). */
    /* cppcheck-suppress unreadVariable ; a is written through px(). */
    struct nf_image a = image_new(5, 2);
    struct nf_image b = image_new(5, 2);
    float g[6], mo[2];
    for (int x = 0; x < 5; x++)
        for (int y = 0; y < 2; y++) {
            px(&a, x, y)[0] = (uint8_t)(10 * x);
            px(&a, x, y)[1] = (uint8_t)(y);
            px(&a, x, y)[2] = 7;
        }
    nf_quality_grid_mean(&a, 2, 1, g);
    NF_CHECK_NEAR(g[0], 5, 1e-6);
    NF_CHECK_NEAR(g[1], 30, 1e-6);
    NF_CHECK_NEAR(g[2], 0.5, 1e-6);
    NF_CHECK_NEAR(g[5], 7, 1e-6);
    memcpy(b.data, a.data, 30);
    px(&b, 4, 1)[2] = 31; /* max-channel change 24 in the right cell */
    px(&b, 0, 0)[0] = 3;  /* 3 in the left cell */
    nf_quality_grid_motion(&a, &b, 2, 1, mo);
    NF_CHECK_NEAR(mo[0], 3.0 / 4, 1e-6);
    NF_CHECK_NEAR(mo[1], 24.0 / 6, 1e-6);
    free(a.data);
    free(b.data);
}

/* The grid means as a plain per-pixel sum (the definition). */
static void grid_mean_naive(const struct nf_image *im, int gw, int gh,
                            float *grid)
{
    for (int gy = 0; gy < gh; gy++)
        for (int gx = 0; gx < gw; gx++) {
            int y0 = (int)((int64_t)gy * im->height / gh);
            int y1 = (int)((int64_t)(gy + 1) * im->height / gh);
            int x0 = (int)((int64_t)gx * im->width / gw);
            int x1 = (int)((int64_t)(gx + 1) * im->width / gw);
            uint64_t s[3] = {0, 0, 0};
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++)
                    for (int c = 0; c < 3; c++)
                        s[c] += px(im, x, y)[c];
            double n = (double)(y1 - y0) * (x1 - x0);
            for (int c = 0; c < 3; c++)
                grid[(c * gh + gy) * gw + gx] = (float)(s[c] / n);
        }
}

/* The column sums (strips of whole cells, 16-bit sums flushed every 257
 * rows) give exactly the definition's means: cells of 16 pixels and of
 * odd widths, one cell over 300 rows and cells wider than a strip (600
 * pixels over 600 rows), bytes near 255 in those. */
NF_TEST(quality_grid_mean_matches_definition)
{
    static const int sizes[][4] = {{640, 480, 40, 30},
                                   {333, 97, 7, 5},
                                   {100, 300, 1, 1},
                                   {50, 20, 3, 2},
                                   {1200, 600, 2, 1}};
    for (int t = 0; t < 5; t++) {
        int w = sizes[t][0], h = sizes[t][1], gw = sizes[t][2],
            gh = sizes[t][3];
        struct nf_image a = image_new(w, h);
        float *g = malloc(sizeof(float) * 3 * gw * gh);
        float *want = malloc(sizeof(float) * 3 * gw * gh);
        NF_CHECK(g != NULL && want != NULL);
        uint32_t seed = 12345u + (uint32_t)t;
        for (int i = 0; i < w * h * 3; i++) {
            seed = seed * 1664525u + 1013904223u;
            a.data[i] =
                (uint8_t)(t == 2 || t == 4 ? 250 + (seed >> 29) : seed >> 24);
        }
        nf_quality_grid_mean(&a, gw, gh, g);
        grid_mean_naive(&a, gw, gh, want);
        NF_CHECK(memcmp(g, want, sizeof(float) * 3 * gw * gh) == 0);
        free(g);
        free(want);
        free(a.data);
    }
}

/* ---- temporal.h: parameters ---------------------------------------- */

NF_TEST(temporal_params_validation)
{
    struct nf_temporal_params p;
    double v;
    nf_temporal_params_default(&p);
    NF_CHECK_INT_EQ(nf_temporal_params_check(&p), 0);
    NF_CHECK_INT_EQ(p.correct, 1);
    NF_CHECK_INT_EQ(p.anchor_every, 8);
    NF_CHECK_INT_EQ(nf_temporal_param_set(&p, "anchor_every", 4), 0);
    NF_CHECK_INT_EQ(p.anchor_every, 4);
    NF_CHECK_INT_EQ(nf_temporal_param_set(&p, "anchor_every", 2.5), NF_ERANGE);
    NF_CHECK_INT_EQ(nf_temporal_param_set(&p, "decay", 1.01), NF_ERANGE);
    NF_CHECK_INT_EQ(nf_temporal_param_set(&p, "decay", NAN), NF_ERANGE);
    NF_CHECK_INT_EQ(nf_temporal_param_set(&p, "still_blend", 0), NF_ERANGE);
    NF_CHECK_INT_EQ(nf_temporal_param_set(&p, "decai", 0.1), NF_EINVAL);
    NF_CHECK_INT_EQ(nf_temporal_param_set(&p, "reanchor", 0.25), 0);
    NF_CHECK_INT_EQ(nf_temporal_param_get(&p, "reanchor", &v), 0);
    NF_CHECK_NEAR(v, 0.25, 0);
    NF_CHECK_INT_EQ(nf_temporal_param_get(&p, "nope", &v), NF_EINVAL);
    int n = 0;
    while (nf_temporal_param_name(n) != NULL)
        NF_CHECK_INT_EQ(
            nf_temporal_param_get(&p, nf_temporal_param_name(n++), &v), 0);
    NF_CHECK(n >= 10);
    p.grid_cell = 2;
    NF_CHECK_INT_EQ(nf_temporal_params_check(&p), NF_ERANGE);
    struct nf_model *m = identity_model();
    struct nf_backend *b = NULL;
    struct nf_temporal *t = (struct nf_temporal *)&p;
    NF_CHECK(m != NULL && nf_backend_init("ref", m, 0, &b) == 0);
    NF_CHECK_INT_EQ(nf_temporal_new(b, &p, &t), NF_ERANGE);
    NF_CHECK(t == NULL);
    NF_CHECK_INT_EQ(nf_temporal_new(b, NULL, &t), 0);
    NF_CHECK_INT_EQ(nf_temporal_set_params(t, &p), NF_ERANGE);
    NF_CHECK_INT_EQ(nf_temporal_params(t)->grid_cell, 16);
    nf_temporal_free(t);
    nf_backend_free(b);
    nf_model_free(m);
}

/* ---- stabilize.h --------------------------------------------------- */

/* A byte of a small xorshift sequence. */
static uint8_t noise(uint32_t *st)
{
    *st ^= *st << 13;
    *st ^= *st >> 17;
    *st ^= *st << 5;
    return (uint8_t)(*st >> 11);
}

/*
 * The row passes (AVX2 where the CPU has it) give exactly what correct.h's
 * per-element definitions give: widths with and without a remainder past
 * the 8-pixel blocks, a padded stride, threshold 0 and 3, with and without
 * the decay map; the stabilizer over frames of small and large changes,
 * so that both sides of the dead band and of the motion ramp are taken.
 */
NF_TEST(stab_rows_match_the_definition)
{
    static const int widths[] = {64, 37, 5};
    uint32_t st = 99;
    for (int wi = 0; wi < 3; wi++)
        for (int variant = 0; variant < 2; variant++) {
            int w = widths[wi], h = 6, n = w * h;
            struct nf_image in = {malloc((size_t)(3 * w + 5) * h), w, h,
                                  3 * w + 5};
            struct nf_image out = image_new(w, h), ref = image_new(w, h);
            uint8_t *prev = malloc((size_t)3 * n), *copy = malloc(3 * n);
            uint8_t *shown = malloc((size_t)3 * n), *shown_ref = malloc(3 * n);
            float *mot = malloc(sizeof(float) * n), *beta = malloc(4 * n);
            float *avg = malloc(sizeof(float) * 3 * n),
                  *avg_ref = malloc(12 * n);
            NF_CHECK(in.data && out.data && ref.data && prev && copy && shown &&
                     shown_ref && mot && beta && avg && avg_ref);
            for (int i = 0; i < 3 * n; i++) {
                shown[i] = shown_ref[i] = noise(&st);
                avg[i] = avg_ref[i] = shown[i] + (noise(&st) % 7) * 0.5f - 1.5f;
            }
            const float decay = 0.05f;
            struct nf_corr_motion m = {
                prev, copy, mot, variant ? beta : NULL, variant ? 0.0f : 3.0f,
                0.8f};
            struct nf_corr_stab sb = {mot, avg, shown, 0.1f, 2.0f};
            int bad = 0;
            for (int f = 0; f < 6; f++) {
                for (int i = 0; i < 3 * n; i++) {
                    prev[i] = noise(&st);
                    int step = f % 2 ? noise(&st) % 5 : noise(&st) % 40;
                    ref.data[i] = (uint8_t)(shown_ref[i] + step - 2);
                }
                memcpy(out.data, ref.data, (size_t)3 * n);
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < 3 * w; x++)
                        in.data[y * in.stride + x] =
                            (uint8_t)(prev[3 * y * w + x] +
                                      (f % 2 ? 1 : noise(&st) % 9));
                nf_stab_motion_rows(&m, decay, &in, 0, h);
                nf_stab_rows(&sb, &out, 0, h);
                for (int p = 0; p < n; p++) {
                    int y = p / w, x = p % w, change = 0;
                    for (int c = 0; c < 3; c++) {
                        int a = prev[3 * p + c], b = px(&in, x, y)[c];
                        change = abs(a - b) > change ? abs(a - b) : change;
                        bad += copy[3 * p + c] != b;
                    }
                    float s = nf_corr_motion(change, m.threshold);
                    bad += mot[p] != s;
                    bad += variant &&
                           beta[p] != nf_corr_refresh_beta(s, m.refresh, decay);
                    float g, band;
                    nf_corr_stab_gain(s, sb.blend, sb.deadband, &g, &band);
                    for (int c = 0; c < 3; c++) {
                        int i = 3 * p + c;
                        uint8_t o = nf_corr_stab(&avg_ref[i], &shown_ref[i],
                                                 ref.data[i], g, band);
                        bad += out.data[i] != o || shown[i] != o ||
                               avg[i] != avg_ref[i];
                    }
                }
            }
            if (bad)
                printf("  width %d variant %d: %d values differ\n", w, variant,
                       bad);
            NF_CHECK_INT_EQ(bad, 0);
            free(in.data);
            free(out.data);
            free(ref.data);
            free(prev);
            free(copy);
            free(shown);
            free(shown_ref);
            free(mot);
            free(beta);
            free(avg);
            free(avg_ref);
        }
}

/* ---- temporal.h: per frame ----------------------------------------- */

struct rig {
    struct nf_model *m;
    struct nf_backend *b;
    struct nf_temporal *t;
    struct nf_image in, out;
};

/* A rig on model m (owned) with the defaults changed by pairs of
 * (name, value), ending at "". */
static int rig_init(struct rig *r, struct nf_model *m, int w, int h, ...)
{
    struct nf_temporal_params p;
    va_list ap;
    memset(r, 0, sizeof *r);
    r->m = m;
    r->in = image_new(w, h);
    r->out = image_new(w, h);
    nf_temporal_params_default(&p);
    va_start(ap, h);
    for (const char *k; *(k = va_arg(ap, const char *)) != '\0';)
        if (nf_temporal_param_set(&p, k, va_arg(ap, double)) < 0) {
            va_end(ap);
            return -1;
        }
    va_end(ap);
    if (m == NULL || nf_backend_init("ref", m, 0, &r->b) < 0)
        return -1;
    return nf_temporal_new(r->b, &p, &r->t);
}

static void rig_free(struct rig *r)
{
    nf_temporal_free(r->t);
    nf_backend_free(r->b);
    nf_model_free(r->m);
    free(r->in.data);
    free(r->out.data);
}

NF_TEST(temporal_scene_cut_resets_the_cache)
{
    /* A model that only remembers keeps showing the first scene unless
     * the cut resets it. Refresh and decay are off to isolate the cut. */
    for (int cut = 0; cut <= 1; cut++) {
        struct rig r;
        struct nf_temporal_stats st;
        NF_CHECK(rig_init(&r, memory_model(), 32, 16, "refresh", 0.0, "decay",
                          0.0, "scene_cut", cut ? 24.0 : 0.0, "") == 0);
        image_fill(&r.in, 50);
        for (int i = 0; i < 3; i++)
            NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
        image_fill(&r.in, 200);
        NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
        NF_CHECK_INT_EQ(px(&r.out, 7, 9)[1], cut ? 200 : 50);
        nf_temporal_get_stats(r.t, &st);
        NF_CHECK_INT_EQ(st.resets_scene, cut);
        NF_CHECK_NEAR(st.cut_score, 150, 1e-3);
        rig_free(&r);
    }
}

NF_TEST(temporal_refresh_forgets_what_moved)
{
    /* The same cut with the defaults but no scene detection: the pixels
     * whose input moved refresh their cache. */
    struct rig r;
    NF_CHECK(rig_init(&r, memory_model(), 32, 16, "scene_cut", 0.0, "") == 0);
    image_fill(&r.in, 50);
    for (int i = 0; i < 3; i++)
        NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
    image_fill(&r.in, 200);
    NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
    NF_CHECK_INT_EQ(px(&r.out, 31, 15)[2], 200);
    rig_free(&r);
}

NF_TEST(temporal_drift_threshold_resets)
{
    /* A model that only remembers, and an input that brightens by 2 levels
     * a frame (below still_threshold, so nothing refreshes): the drift
     * against the anchor (the input itself) grows by 2 a frame until it
     * passes reset_drift 24 at the anchor of frame 15, and frame 16 starts
     * cold. */
    struct rig r;
    struct nf_temporal_stats st;
    NF_CHECK(rig_init(&r, memory_model(), 16, 16, "reanchor", 0.0, "decay", 0.0,
                      "") == 0);
    for (int i = 0; i <= 16; i++) {
        image_fill(&r.in, 60 + 2 * i);
        NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
        nf_temporal_get_stats(r.t, &st);
        if (i == 7)
            NF_CHECK_NEAR(nf_temporal_drift(r.t), 14, 1e-4);
        if (i == 15) {
            NF_CHECK_NEAR(st.drift, 30, 1e-4);
            NF_CHECK_INT_EQ(st.resets_drift, 1);
            NF_CHECK_INT_EQ(px(&r.out, 3, 3)[0], 60);
        }
    }
    NF_CHECK_INT_EQ(st.anchors, 2);
    /* Frame 16 is cold, so the model's output is its input, 92; the input
     * is still (2 levels), so the stabilizer shows the jump from 60 gently:
     * 60 + 0.1 * 32, then converges while the input stays. */
    NF_CHECK_INT_EQ(px(&r.out, 3, 3)[0], 63);
    for (int i = 0; i < 60; i++)
        NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
    NF_CHECK(abs(px(&r.out, 3, 3)[0] - 92) <= 2);
    nf_temporal_get_stats(r.t, &st);
    NF_CHECK_INT_EQ(st.resets_drift, 1);
    rig_free(&r);
}

NF_TEST(temporal_reanchor_cancels_creep)
{
    /* out = cache.0 + 2 levels. Without correction the output creeps to
     * white. The cache decay alone (0.3) bounds it at 2 / 0.3 levels above
     * the anchor; re-anchoring then removes what is left. (Re-anchoring
     * alone on a model that integrates its cache, decay 0, oscillates:
     * docs/TEMPORAL.md says why the decay is on by default.) */
    const double reanchor[3] = {0.5, 0.0, 0.5};
    const int correct[3] = {0, 1, 1};
    const double lo[3] = {153, 4, 0}, hi[3] = {153, 8, 1};
    for (int k = 0; k < 3; k++) {
        struct rig r;
        struct nf_temporal_stats st;
        NF_CHECK(rig_init(&r, creep_model(), 32, 24, "correct",
                          (double)correct[k], "reanchor", reanchor[k],
                          "reset_drift", 0.0, "refresh", 0.0, "still_blend",
                          1.0, "still_deadband", 0.5, "") == 0);
        image_fill(&r.in, 100);
        for (int i = 0; i < 400; i++)
            NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
        nf_temporal_get_stats(r.t, &st);
        printf("  correct %d reanchor %.1f: drift %.2f levels\n", correct[k],
               reanchor[k], st.drift);
        NF_CHECK(st.drift >= lo[k] && st.drift <= hi[k]);
        NF_CHECK_INT_EQ(st.resets_drift + st.resets_scene, 0);
        rig_free(&r);
    }
}

NF_TEST(temporal_stabilizer_holds_noise_and_passes_motion)
{

    /* Identity model: pixel (1, 1) jitters by 1 level (still), pixel (5, 2)
     * jumps by 60 (moving). The shown jitter is held by the dead band, the
     * jump passes at once. */
    struct rig r;
    NF_CHECK(rig_init(&r, identity_model(), 8, 4, "") == 0);
    image_fill(&r.in, 100);
    NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
    for (int i = 0; i < 20; i++) {
        px(&r.in, 1, 1)[0] = (uint8_t)(100 + (i & 1));
        NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
        NF_CHECK_INT_EQ(px(&r.out, 1, 1)[0], 100);
    }
    px(&r.in, 5, 2)[1] = 160;
    NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
    NF_CHECK_INT_EQ(px(&r.out, 5, 2)[1], 160);
    rig_free(&r);
}

/*
 * The stabilizer and motion map give the same frames whether the backend
 * runs them in its pass ("ref" does) or temporal.c runs them itself (as
 * for "cuda"): two rigs on the same noisy stream, one whose backend table
 * is a copy of "ref" that does not stabilize. The model keeps a decayed
 * cache (per-pixel decay from the motion map), a block moves, anchors
 * come every 4 frames (their stabilizer stays with temporal.c).
 */
NF_TEST(temporal_backend_and_host_stabilizer_agree)
{
    struct rig r[2];
    static struct nf_backend_i host_iface;
    NF_CHECK(rig_init(&r[0], memory_model(), 21, 9, "anchor_every", 4.0, "") ==
             0);
    NF_CHECK(nf_backend_init("ref", r[1].m = memory_model(), 0, &r[1].b) == 0);
    host_iface = *r[1].b->iface;
    host_iface.stabilizes = 0;
    r[1].b->iface = &host_iface;
    struct nf_temporal_params p = *nf_temporal_params(r[0].t);
    NF_CHECK(nf_temporal_new(r[1].b, &p, &r[1].t) == 0);
    r[1].in = image_new(21, 9);
    r[1].out = image_new(21, 9);
    NF_CHECK(nf_backend_stabilizes(r[0].b) && !nf_backend_stabilizes(r[1].b));
    uint32_t st = 7;
    int differ = 0;
    for (int f = 0; f < 40; f++) {
        for (int y = 0; y < 9; y++)
            for (int x = 0; x < 21; x++)
                for (int c = 0; c < 3; c++)
                    px(&r[0].in, x, y)[c] =
                        (uint8_t)(90 + 3 * x + noise(&st) % 3 +
                                  (x >= f % 21 && x < f % 21 + 4 ? 80 : 0));
        memcpy(r[1].in.data, r[0].in.data, (size_t)3 * 21 * 9);
        for (int k = 0; k < 2; k++)
            NF_CHECK(nf_temporal_step(r[k].t, &r[k].in, &r[k].out) == 0);
        differ += memcmp(r[0].out.data, r[1].out.data, (size_t)3 * 21 * 9) != 0;
    }
    struct nf_temporal_stats s0, s1;
    nf_temporal_get_stats(r[0].t, &s0);
    nf_temporal_get_stats(r[1].t, &s1);
    printf("  %d of 40 frames differ; %llu anchors\n", differ,
           (unsigned long long)s0.anchors);
    NF_CHECK_INT_EQ(differ, 0);
    NF_CHECK(s0.anchors == s1.anchors && s0.anchors >= 9);
    for (int k = 0; k < 2; k++)
        rig_free(&r[k]);
}

/*
 * A busy session may skip its anchors, at most anchor_skip in a row: the
 * caller marks the anchor item NF_EAGAIN instead of predicting it; then an
 * anchor must run, which starts the count again. Skipped anchors measure
 * nothing and are counted apart.
 */
NF_TEST(temporal_busy_session_skips_bounded_anchors)
{
    struct rig r;
    struct nf_predict_item items[NF_TEMPORAL_MAX_ITEMS];
    NF_CHECK(rig_init(&r, creep_model(), 16, 8, "anchor_every", 2.0,
                      "anchor_skip", 2.0, "") == 0);
    image_fill(&r.in, 100);
    int ran = 0, skipped = 0, pattern[8], k = 0;
    for (int f = 0; f < 16; f++) {
        int n = nf_temporal_begin(r.t, &r.in, &r.out, items);
        NF_CHECK(n >= 1);
        NF_CHECK_INT_EQ(nf_backend_predict(r.b, items, 1), 0);
        if (n == 2) {
            int skip = nf_temporal_anchor_skippable(r.t);
            if (skip)
                items[1].status = NF_EAGAIN;
            else
                NF_CHECK_INT_EQ(nf_backend_predict(r.b, items + 1, 1), 0);
            pattern[k++] = skip;
            skipped += skip;
            ran += !skip;
        }
        NF_CHECK_INT_EQ(nf_temporal_end(r.t, items, n), 0);
    }
    struct nf_temporal_stats st;
    nf_temporal_get_stats(r.t, &st);
    /* Anchors at frames 1, 3, ..., 15: skip, skip, run, skip, skip, run,
     * skip, skip. */
    static const int want[8] = {1, 1, 0, 1, 1, 0, 1, 1};
    NF_CHECK_INT_EQ(k, 8);
    for (int i = 0; i < 8; i++)
        NF_CHECK_INT_EQ(pattern[i], want[i]);
    NF_CHECK_INT_EQ(ran, 2);
    NF_CHECK_INT_EQ(st.anchors, (uint64_t)ran); /* Measured: only these. */
    NF_CHECK_INT_EQ(st.anchors_skipped, (uint64_t)skipped);
    rig_free(&r);
    /* anchor_skip 0: never. */
    NF_CHECK(rig_init(&r, creep_model(), 16, 8, "anchor_skip", 0.0, "") == 0);
    NF_CHECK(!nf_temporal_anchor_skippable(r.t));
    rig_free(&r);
}

NF_TEST(temporal_failed_frame_keeps_the_previous_input)
{
    /* Motion is measured against the last finished frame's input: a frame
     * whose predict failed leaves it as it was. Pixel (5, 2) shows 160;
     * a failed frame brings 100 there; the next frame's 161 is then a
     * still pixel (1 level from 160), held at 160 by the dead band, where
     * a comparison with the failed frame's 100 would let it through. */
    struct rig r;
    struct nf_predict_item items[NF_TEMPORAL_MAX_ITEMS];
    NF_CHECK(rig_init(&r, identity_model(), 8, 4, "anchor_every", 0.0, "") ==
             0);
    image_fill(&r.in, 100);
    NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
    px(&r.in, 5, 2)[1] = 160;
    NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
    NF_CHECK_INT_EQ(px(&r.out, 5, 2)[1], 160);
    px(&r.in, 5, 2)[1] = 100;
    int n = nf_temporal_begin(r.t, &r.in, &r.out, items);
    NF_CHECK_INT_EQ(n, 1);
    items[0].status = NF_EBACKEND; /* As a failed predict leaves it. */
    NF_CHECK_INT_EQ(nf_temporal_end_frame(r.t, items, n), NF_EBACKEND);
    px(&r.in, 5, 2)[1] = 161;
    NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
    NF_CHECK_INT_EQ(px(&r.out, 5, 2)[1], 160);
    rig_free(&r);
}

NF_TEST(temporal_client_reset_and_bad_frames)
{
    struct rig r;
    struct nf_temporal_stats st;
    struct nf_predict_item items[NF_TEMPORAL_MAX_ITEMS];
    NF_CHECK(rig_init(&r, memory_model(), 8, 8, "scene_cut", 0.0, "refresh",
                      0.0, "") == 0);
    image_fill(&r.in, 10);
    NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
    image_fill(&r.in, 90);
    NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
    NF_CHECK(px(&r.out, 0, 0)[0] < 90);
    nf_temporal_reset(r.t);
    NF_CHECK(nf_temporal_step(r.t, &r.in, &r.out) == 0);
    NF_CHECK_INT_EQ(px(&r.out, 0, 0)[0], 90);
    nf_temporal_get_stats(r.t, &st);
    NF_CHECK_INT_EQ(st.resets_client, 1);
    /* A new size starts afresh too. */
    struct nf_image in2 = image_new(6, 4), out2 = image_new(6, 4);
    image_fill(&in2, 33);
    NF_CHECK(nf_temporal_step(r.t, &in2, &out2) == 0);
    NF_CHECK_INT_EQ(px(&out2, 5, 3)[2], 33);
    /* Bad frames are refused before anything runs. */
    NF_CHECK_INT_EQ(nf_temporal_begin(r.t, &in2, &r.out, items), NF_EINVAL);
    in2.stride = 2;
    NF_CHECK_INT_EQ(nf_temporal_begin(r.t, &in2, &out2, items), NF_EINVAL);
    NF_CHECK_INT_EQ(nf_temporal_begin(r.t, NULL, &out2, items), NF_EINVAL);
    free(in2.data);
    free(out2.data);
    rig_free(&r);
}

NF_TEST(temporal_anchor_items_follow_the_schedule)
{
    struct rig r;
    struct nf_predict_item items[NF_TEMPORAL_MAX_ITEMS];
    NF_CHECK(rig_init(&r, identity_model(), 8, 8, "anchor_every", 3.0, "") ==
             0);
    image_fill(&r.in, 70);
    for (int i = 0; i < 9; i++) {
        int n = nf_temporal_begin(r.t, &r.in, &r.out, items);
        NF_CHECK_INT_EQ(n, i % 3 == 2 ? 2 : 1);
        NF_CHECK(items[0].corr != NULL);
        NF_CHECK(nf_backend_predict(r.b, items, n) == 0);
        NF_CHECK(nf_temporal_end(r.t, items, n) == 0);
        NF_CHECK((nf_temporal_anchor(r.t) != NULL) == (n == 2));
    }
    /* Identity: the stream is its own anchor. */
    NF_CHECK_NEAR(nf_temporal_drift(r.t), 0, 0);
    rig_free(&r);
}

/* clang-format off */
NF_TEST_MAIN(
    NF_TEST_ENTRY(corr_offset_bilinear_matches_hand_values)
    NF_TEST_ENTRY(corr_decay_and_beta)
    NF_TEST_ENTRY(backend_offset_enters_the_cache)
    NF_TEST_ENTRY(backend_decay_pulls_the_cache_toward_the_input)
    NF_TEST_ENTRY(backend_rejects_bad_corrections)
    NF_TEST_ENTRY(quality_mae_and_psnr)
    NF_TEST_ENTRY(quality_flicker_counts_static_pixels_only)
    NF_TEST_ENTRY(quality_grids)
    NF_TEST_ENTRY(quality_grid_mean_matches_definition)
    NF_TEST_ENTRY(stab_rows_match_the_definition)
    NF_TEST_ENTRY(temporal_params_validation)
    NF_TEST_ENTRY(temporal_scene_cut_resets_the_cache)
    NF_TEST_ENTRY(temporal_refresh_forgets_what_moved)
    NF_TEST_ENTRY(temporal_drift_threshold_resets)
    NF_TEST_ENTRY(temporal_reanchor_cancels_creep)
    NF_TEST_ENTRY(temporal_stabilizer_holds_noise_and_passes_motion)
    NF_TEST_ENTRY(temporal_backend_and_host_stabilizer_agree)
    NF_TEST_ENTRY(temporal_busy_session_skips_bounded_anchors)
    NF_TEST_ENTRY(temporal_failed_frame_keeps_the_previous_input)
    NF_TEST_ENTRY(temporal_client_reset_and_bad_frames)
    NF_TEST_ENTRY(temporal_anchor_items_follow_the_schedule)
)
/* clang-format on */
