/*
 * backend-compare.h - what the tests of a backend against the reference
 * share (test-backend-dnnl.c, test-backend-cuda.c): random inputs, the
 * float comparison of one model run both ways, conv nodes and the models
 * both build with model-builder.h, the walk over the shipped models, and
 * 8-bit test scenes and their differences.
 * Header-only, for test files.
 */
#ifndef NF_BACKEND_COMPARE_H
#define NF_BACKEND_COMPARE_H

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend-impl.h"
#include "backend.h"
#include "error.h"
#include "model-builder.h"
#include "model.h"
#include "nf-test.h"

/* A backend's float path: m's graph on (3, h, w) planar floats. */
typedef int (*nf_cmp_run_fn)(const struct nf_model *m, const float *frame,
                             const float *const *cache, int h, int w,
                             float *out);

/* The xorshift state of randf(); a test file may reseed it. */
static uint32_t nf_cmp_rng = 12345;

/* Uniform in [0, 1). */
static float randf(void)
{
    nf_cmp_rng ^= nf_cmp_rng << 13;
    nf_cmp_rng ^= nf_cmp_rng >> 17;
    nf_cmp_rng ^= nf_cmp_rng << 5;
    return (float)(nf_cmp_rng >> 8) / 16777216.0f;
}

/*
 * run's and the reference's float output of m at h x w from random
 * inputs; the normalized error, or -1 after printing why.
 */
static double float_error(nf_cmp_run_fn run, const struct nf_model *m, int h,
                          int w)
{
    int k = nf_model_cache_frames(m);
    size_t plane = (size_t)3 * h * w;
    float *buf = malloc((size_t)(k + 3) * plane * sizeof *buf);
    if (buf == NULL)
        return -1;
    const float *cache[NF_MAX_CACHE];
    for (size_t i = 0; i < (size_t)(k + 1) * plane; i++)
        buf[i] = randf();
    for (int j = 0; j < k; j++)
        cache[j] = buf + (size_t)(1 + j) * plane;
    float *ref = buf + (size_t)(k + 1) * plane, *out = ref + plane;
    double e = -1;
    int rc = nf__cpu_run_float(m, buf, cache, h, w, ref);
    if (rc == 0)
        rc = run(m, buf, cache, h, w, out);
    if (rc < 0)
        printf("  run_float %dx%d: %s\n", w, h, nf_strerror(rc));
    else
        e = nf_test_rel_error(out, ref, plane);
    free(buf);
    return e;
}

/* The worst float_error of each runner over a few sizes (multiples of the
 * model's), printed with what; -1 on a failure. */
static double float_error_sizes(const nf_cmp_run_fn *runs, int n_runs,
                                const struct nf_model *m, const char *what)
{
    int mult = nf_model_size_multiple(m);
    const int sizes[][2] = {{1, 1}, {2, 3}, {5, 7}, {12, 20}, {31, 17}};
    double worst = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int r = 0; r < n_runs; r++) {
            double e =
                float_error(runs[r], m, sizes[i][0] * mult, sizes[i][1] * mult);
            if (e < 0)
                return e;
            worst = e > worst ? e : worst;
        }
    printf("  %s: worst ||a-b||/||b|| = %.3g\n", what, worst);
    return worst;
}

/* Random weights of a conv, bias "<name>.b". */
static void conv_tensors(struct nf_mb *b, const char *name, int cout, int cin,
                         int kh, int kw)
{
    char bias[80];
    float a = sqrtf(3.0f / (float)(cin * kh * kw));
    nf_mb_tensor(b, name, 4, (int64_t[]){cout, cin, kh, kw}, NULL, a);
    snprintf(bias, sizeof bias, "%s.b", name);
    nf_mb_tensor(b, bias, 1, (int64_t[]){cout}, NULL, 0.2f);
}

/* Adds node `name` = conv(input) with fresh weights and a bias. */
static void conv_node(struct nf_mb *b, const char *name, const char *input,
                      int cin, int cout, int k, int stride, int pad,
                      const char *mode, int groups)
{
    char w[64];
    snprintf(w, sizeof w, "%s.w", name);
    conv_tensors(b, w, cout, cin / groups, k, k);
    nf_mb_node(b,
               "'name':'%s','op':'conv2d','inputs':['%s'],'weight':'%s',"
               "'bias':'%s.b','stride':%d,'padding':%d,'pad_mode':'%s',"
               "'groups':%d",
               name, input, w, w, stride, pad, mode, groups);
}

/* Loads b (K cache frames, size multiple mult, output out) and frees b. */
static struct nf_model *finish(struct nf_mb *b, int k, int mult,
                               const char *out)
{
    struct nf_model *m = nf_mb_load(b, "t", k, mult, out);
    nf_mb_free(b);
    return m;
}

/* Every activation, as node fields. */
static const char *const nf_cmp_acts[] = {
    "'op':'relu'",
    "'op':'leaky_relu','alpha':0.2",
    "'op':'sigmoid'",
    "'op':'tanh'",
    "'op':'clamp','min':-0.1,'max':0.3",
    "'op':'clamp','min':0.05",
    "'op':'clamp','max':0.2",
};
#define NF_CMP_N_ACTS (sizeof nf_cmp_acts / sizeof nf_cmp_acts[0])

/*
 * A model around activation i (of nf_cmp_acts): folded into a conv, twice
 * in a row; after an add and on a conv output read twice; on the frame
 * itself and on the output. NULL if it does not load.
 */
static struct nf_model *nf_cmp_activation_model(size_t i)
{
    const char *a = nf_cmp_acts[i],
               *next = nf_cmp_acts[(i + 1) % NF_CMP_N_ACTS];
    struct nf_mb b;
    nf_mb_init(&b, 200 + (uint32_t)i);
    conv_node(&b, "c", "frame", 3, 8, 3, 1, 1, "reflect", 1);
    nf_mb_node(&b, "'name':'a1',%s,'inputs':['c']", a);
    nf_mb_node(&b, "'name':'a2',%s,'inputs':['a1']", next);
    conv_node(&b, "d", "a2", 8, 8, 1, 1, 0, "zeros", 1);
    nf_mb_node(&b, "'name':'e','op':'add','inputs':['d','a2']");
    nf_mb_node(&b, "'name':'a3',%s,'inputs':['e']", a);
    nf_mb_node(&b, "'name':'a4',%s,'inputs':['d']", a);
    nf_mb_node(&b, "'name':'f','op':'mul','inputs':['a3','a4']");
    conv_node(&b, "o", "f", 8, 3, 1, 1, 0, "zeros", 1);
    nf_mb_node(&b, "'name':'a5',%s,'inputs':['frame']", a);
    nf_mb_node(&b, "'name':'g','op':'add','inputs':['o','a5']");
    nf_mb_node(&b, "'name':'out',%s,'inputs':['g']", a);
    return finish(&b, 0, 1, "out");
}

/* The convolution variants both backend tests check: kernel, stride,
 * padding, reflect (else zeros), groups, input and output channels. */
static const int nf_cmp_conv_cases[][7] = {
    {1, 1, 0, 0, 1, 8, 8},  {3, 1, 1, 0, 1, 8, 16},  {3, 1, 1, 1, 1, 16, 8},
    {5, 1, 2, 1, 1, 4, 12}, {7, 1, 3, 1, 1, 3, 5},   {3, 2, 1, 1, 1, 8, 8},
    {3, 2, 1, 0, 1, 8, 4},  {2, 2, 0, 0, 1, 6, 8},   {1, 2, 0, 0, 1, 8, 8},
    {4, 4, 1, 1, 1, 4, 8},  {3, 1, 1, 1, 2, 8, 8},   {3, 1, 1, 1, 8, 8, 8},
    {3, 2, 1, 0, 4, 8, 16}, {1, 1, 0, 0, 1, 36, 16},
};
#define NF_CMP_N_CONV_CASES                                                    \
    (sizeof nf_cmp_conv_cases / sizeof nf_cmp_conv_cases[0])

/*
 * Conv case i (of nf_cmp_conv_cases) as a model: a 1x1 conv from the frame
 * to its input channels, the conv itself, then activation act (an op name;
 * NULL: none), one upsampling per halving of its stride (ups[0], ups[1]:
 * upsample2x_* op names), and a 1x1 conv back to 3 channels. Its
 * description goes to what. NULL if it does not load.
 */
static struct nf_model *nf_cmp_conv_model(size_t i, const char *act,
                                          const char *const ups[2], char *what,
                                          size_t cap)
{
    static const char *const up_names[] = {"u0", "u1"};
    const int *c = nf_cmp_conv_cases[i];
    const char *x = "c";
    struct nf_mb b;
    nf_mb_init(&b, 100 + (uint32_t)i);
    conv_node(&b, "pre", "frame", 3, c[5], 1, 1, 0, "zeros", 1);
    conv_node(&b, "c", "pre", c[5], c[6], c[0], c[1], c[2],
              c[3] ? "reflect" : "zeros", c[4]);
    if (act != NULL) {
        nf_mb_node(&b, "'name':'a','op':'%s','inputs':['c']", act);
        x = "a";
    }
    for (int s = c[1], u = 0; s > 1; s /= 2, u++) {
        nf_mb_node(&b, "'name':'%s','op':'%s','inputs':['%s']", up_names[u],
                   ups[u], x);
        x = up_names[u];
    }
    conv_node(&b, "out", x, c[6], 3, 1, 1, 0, "zeros", 1);
    snprintf(what, cap, "conv k%d s%d p%d %s g%d %d->%d", c[0], c[1], c[2],
             c[3] ? "reflect" : "zeros", c[4], c[5], c[6]);
    return finish(&b, 0, c[1], "out");
}

/* Calls fn(path, model, ctx) for every shipped model; fn returns its
 * failures. Returns their sum (1 if no model loads or none is found). */
static int nf_cmp_each_shipped_model(int (*fn)(const char *,
                                               const struct nf_model *, void *),
                                     void *ctx)
{
    DIR *d = opendir("models");
    struct dirent *e;
    int bad = 0, n = 0;
    while (d != NULL && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char path[512], err[512];
        struct nf_model *m = NULL;
        if (len < 12 || strcmp(e->d_name + len - 12, ".safetensors") != 0)
            continue;
        snprintf(path, sizeof path, "models/%s", e->d_name);
        n++;
        if (nf_model_load(path, &m, err, sizeof err) < 0) {
            printf("  %s\n", err);
            bad++;
            continue;
        }
        bad += fn(path, m, ctx);
        nf_model_free(m);
    }
    if (d != NULL)
        closedir(d);
    return n > 0 ? bad : 1;
}

/* A test scene for frame t of slot s: gradients, moving shapes, noise. */
static void scene(const struct nf_image *im, int t, int s)
{
    for (int y = 0; y < im->height; y++)
        for (int x = 0; x < im->width; x++) {
            uint8_t *p = im->data + (size_t)y * im->stride + 3 * x;
            int r = (40 + 3 * x + 7 * s) & 255, g = (70 + 2 * y) & 255;
            int b = (200 - x - y + 11 * t) & 255;
            if (((x + 2 * t) / 5 + y / 4 + s) % 3 == 0)
                r = 250 - r / 4, g = 30, b = 60;
            p[0] = (uint8_t)(r ^ (int)(randf() * 8));
            p[1] = (uint8_t)g;
            p[2] = (uint8_t)b;
        }
}

/* A w x h image with padded rows, filled with 0xAA; data NULL if out of
 * memory. */
static struct nf_image image_new(int w, int h)
{
    struct nf_image im = {NULL, w, h, 3 * w + 5};
    im.data = malloc((size_t)im.stride * h);
    if (im.data != NULL)
        memset(im.data, 0xAA, (size_t)im.stride * h);
    return im;
}

/* Accumulates the absolute differences of two 8-bit images. */
static void diff_images(const struct nf_image *a, const struct nf_image *b,
                        int *max, double *sum, long *n)
{
    for (int y = 0; y < a->height; y++)
        for (int x = 0; x < 3 * a->width; x++) {
            int d = abs(a->data[(size_t)y * a->stride + x] -
                        b->data[(size_t)y * b->stride + x]);
            *max = d > *max ? d : *max;
            *sum += d;
            (*n)++;
        }
}

#endif /* NF_BACKEND_COMPARE_H */
