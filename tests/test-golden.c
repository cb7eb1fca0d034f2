/*
 * test-golden.c - the CPU reference backend against PyTorch's outputs.
 *
 * For every shipped style model and for a converted, randomly initialised
 * fast-neural-style TransformerNet, tests/golden/ holds a committed input
 * frame, a filled cache (the model's own earlier outputs) and the output
 * PyTorch computed for them (tools/train/make-golden.py writes them). The
 * backend's float output (nf__cpu_run_float) must match with a normalized
 * error ||a - b|| / ||b|| of at most 1e-4.
 *
 * Fixture layout, <name>.f32: little-endian float32 planes of (3, H, W):
 * the frame, then cache.0 .. cache.{K-1}, then the expected output.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend-impl.h"
#include "error.h"
#include "model.h"
#include "nf-test.h"

#define GOLDEN_W   48
#define GOLDEN_H   32
#define GOLDEN_TOL 1e-4

/* Reads a whole file; returns its size or -1. *out is malloc'ed. */
static long read_file(const char *path, uint8_t **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (*out = malloc(n ? n : 1)) != NULL &&
        fread(*out, 1, n, f) != (size_t)n) {
        free(*out);
        *out = NULL;
        n = -1;
    }
    fclose(f);
    return *out ? n : -1;
}

/* Little-endian float32 at p. */
static float load_f32le(const uint8_t *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/*
 * Loads model and fixture, runs the backend, and returns the normalized
 * error (or -1 after printing why the case could not run).
 */
static double golden_error(const char *model_path, const char *fixture)
{
    char err[512];
    struct nf_model *m = NULL;
    uint8_t *raw = NULL;
    float *buf = NULL, *out = NULL;
    double e = -1;
    const size_t plane = (size_t)3 * GOLDEN_W * GOLDEN_H;
    if (nf_model_load(model_path, &m, err, sizeof err) < 0) {
        printf("  %s\n", err);
        goto fail;
    }
    int k = nf_model_cache_frames(m);
    size_t n = plane * (size_t)(k + 2);
    long len = read_file(fixture, &raw);
    if (len < 0 || (size_t)len != n * 4) {
        printf("  %s: %ld bytes, expected %zu (K = %d)\n", fixture, len, n * 4,
               k);
        goto fail;
    }
    buf = malloc(n * sizeof *buf);
    out = malloc(plane * sizeof *out);
    if (buf == NULL || out == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++)
        buf[i] = load_f32le(raw + 4 * i);
    const float *cache[NF_MAX_CACHE];
    for (int j = 0; j < k; j++)
        cache[j] = buf + plane * (size_t)(1 + j);
    int rc = nf__cpu_run_float(m, buf, cache, GOLDEN_H, GOLDEN_W, out);
    if (rc < 0) {
        printf("  nf__cpu_run_float: %s\n", nf_strerror(rc));
        goto fail;
    }
    e = nf_test_rel_error(out, buf + plane * (size_t)(1 + k), plane);
    printf("  %s: ||a-b||/||b|| = %.3g (%s, K = %d, %zu params)\n", model_path,
           e, nf_model_name(m), k, nf_model_params(m));
fail:
    free(out);
    free(buf);
    free(raw);
    nf_model_free(m);
    return e;
}

#define GOLDEN_CASE(test, model, fixture)                                      \
    NF_TEST(test)                                                              \
    {                                                                          \
        double e = golden_error(model, fixture);                               \
        NF_CHECK(e >= 0);                                                      \
        NF_CHECK(e <= GOLDEN_TOL);                                             \
    }

GOLDEN_CASE(golden_toon_matches_pytorch, "models/toon.safetensors",
            "tests/golden/toon.f32")
GOLDEN_CASE(golden_sketch_matches_pytorch, "models/sketch.safetensors",
            "tests/golden/sketch.f32")
GOLDEN_CASE(golden_oil_matches_pytorch, "models/oil.safetensors",
            "tests/golden/oil.f32")
GOLDEN_CASE(golden_transformernet_matches_pytorch,
            "tests/golden/transformernet-random.safetensors",
            "tests/golden/transformernet-random.f32")

/* The hook rejects sizes the model cannot run unpadded. */
NF_TEST(golden_run_float_rejects_bad_size)
{
    char err[512];
    struct nf_model *m = NULL;
    NF_CHECK(nf_model_load("models/toon.safetensors", &m, err, sizeof err) ==
             0);
    static float frame[3 * 6 * 6], out[3 * 6 * 6];
    const float *cache[NF_MAX_CACHE] = {frame, frame, frame, frame,
                                        frame, frame, frame, frame};
    int rc = nf__cpu_run_float(m, frame, cache, 6, 6, out);
    nf_model_free(m);
    NF_CHECK_INT_EQ(rc, NF_EINVAL);
}

NF_TEST_MAIN(NF_TEST_ENTRY(golden_toon_matches_pytorch)
                 NF_TEST_ENTRY(golden_sketch_matches_pytorch)
                     NF_TEST_ENTRY(golden_oil_matches_pytorch)
                         NF_TEST_ENTRY(golden_transformernet_matches_pytorch)
                             NF_TEST_ENTRY(golden_run_float_rejects_bad_size))
