/*
 * fuzz-model.c - libFuzzer harness for the model file loader
 * (kernels/model.h, format in kernels/MODEL.md).
 *
 * The input is a whole model file: u64 header length, safetensors JSON
 * header with the nf.* metadata and the nf.graph JSON, data section.
 * nf_model_load_buffer() parses and validates all of it, the graph
 * included (kernels/graph.c), which is what the server does at start-up
 * with each --model. Nothing heavier runs: no backend, no forward pass.
 * Properties checked for every input:
 *
 *   - failure returns NF_EMODEL_FORMAT, NF_EMODEL_GRAPH or NF_ENOMEM,
 *     leaves the model NULL, and writes one line "<name>: ..." without
 *     control characters;
 *   - success returns a model whose accessors give documented values (a
 *     valid name, K in 0..NF_MAX_CACHE, a size multiple of 1..16 that is a
 *     power of two, finite FLOPs at a few frame sizes), and frees cleanly.
 *
 * Leaks are findings too: LeakSanitizer runs after every input.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "fuzz-check.h"
#include "model.h"

#define NAME "fuzz.safetensors"

static int is_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static void check_error(int rc, const struct nf_model *m, const char *err,
                        size_t errlen)
{
    NF_FUZZ_CHECK(rc == NF_EMODEL_FORMAT || rc == NF_EMODEL_GRAPH ||
                  rc == NF_ENOMEM);
    NF_FUZZ_CHECK(m == NULL);
    NF_FUZZ_CHECK(memchr(err, 0, errlen) != NULL);
    NF_FUZZ_CHECK(strncmp(err, NAME ": ", strlen(NAME ": ")) == 0);
    for (const char *p = err; *p; p++)
        NF_FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
}

static void check_model(const struct nf_model *m)
{
    static const int sizes[][2] = {
        {1, 1}, {640, 480}, {641, 479}, {3840, 2160}};
    int k = nf_model_size_multiple(m);

    NF_FUZZ_CHECK(is_name(nf_model_name(m)));
    NF_FUZZ_CHECK(strcmp(nf_model_meta(m, "nf.format"), "1") == 0);
    NF_FUZZ_CHECK(nf_model_meta(m, "nf.graph") != NULL);
    NF_FUZZ_CHECK(nf_model_cache_frames(m) >= 0 &&
                  nf_model_cache_frames(m) <= NF_MAX_CACHE);
    NF_FUZZ_CHECK(k >= 1 && k <= 16 && (k & (k - 1)) == 0);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        double f = nf_model_flops(m, sizes[i][0], sizes[i][1]);
        NF_FUZZ_CHECK(isfinite(f) && f >= 0);
    }
    (void)nf_model_params(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct nf_model *m = NULL;
    int rc = nf_model_load_buffer(data, size, NAME, &m, err, sizeof err);

    if (rc < 0) {
        check_error(rc, m, err, sizeof err);
        return 0;
    }
    NF_FUZZ_CHECK(rc == 0 && m != NULL);
    check_model(m);
    nf_model_free(m);
    return 0;
}
