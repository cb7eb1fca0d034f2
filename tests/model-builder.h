/*
 * model-builder.h - assembles nextframe model files (safetensors bytes) in
 * memory for tests: tensors with given or random values, graph nodes, and
 * the metadata, then loads them with nf_model_load_buffer().
 *
 * Header-only (static functions) so that any test can include it without a
 * change to the build. Node fields are written with ' for JSON quotes, which
 * keeps them readable in C strings:
 *
 *   struct nf_mb b;
 *   nf_mb_init(&b, 1);
 *   nf_mb_tensor(&b, "w", 4, (int64_t[]){3, 3, 1, 1}, NULL, 0.5f);
 *   nf_mb_node(&b, "'name':'c','op':'conv2d','inputs':['frame'],'weight':'w'");
 *   struct nf_model *m = nf_mb_load(&b, "tiny", 0, 1, "c");
 *   nf_mb_free(&b);
 *
 * nf_mb_expand() is the template helper of test-model-load.c and
 * test-backend.c (' for quotes, ` for quotes inside the nf.graph string).
 */
#ifndef NF_MODEL_BUILDER_H
#define NF_MODEL_BUILDER_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

struct nf_mb {
    char *tensors; /* JSON entries, comma separated. */
    size_t tensors_len, tensors_cap;
    char *nodes; /* Node objects (with ' quotes), comma separated. */
    size_t nodes_len, nodes_cap;
    uint8_t *data; /* The data section. */
    size_t data_len, data_cap;
    uint32_t rng;
    int failed; /* An allocation failed; nf_mb_load returns NULL. */
};

/* Expands a template: ' -> ", ` -> \". Returns the length. */
static inline size_t nf_mb_expand(const char *tmpl, char *out, size_t cap)
{
    size_t n = 0;
    for (; *tmpl && n + 2 < cap; tmpl++) {
        if (*tmpl == '`')
            out[n++] = '\\';
        out[n++] = *tmpl == '\'' || *tmpl == '`' ? '"' : *tmpl;
    }
    out[n] = '\0';
    return n;
}

static inline void nf_mb_init(struct nf_mb *b, uint32_t seed)
{
    memset(b, 0, sizeof *b);
    b->rng = seed ? seed : 1;
}

static inline void nf_mb_free(struct nf_mb *b)
{
    free(b->tensors);
    free(b->nodes);
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Uniform in [0, 1) from the builder's generator (xorshift32). */
static inline float nf_mb_randf(struct nf_mb *b)
{
    b->rng ^= b->rng << 13;
    b->rng ^= b->rng >> 17;
    b->rng ^= b->rng << 5;
    return (float)(b->rng >> 8) / 16777216.0f;
}

/* Appends n bytes to *buf, growing it. */
static inline void nf_mb_append(struct nf_mb *b, char **buf, size_t *len,
                                size_t *cap, const void *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = (*cap ? *cap * 2 : 4096) + n;
        char *q = realloc(*buf, c);
        if (q == NULL) {
            b->failed = 1;
            return;
        }
        *buf = q;
        *cap = c;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static inline void nf_mb_appendf(struct nf_mb *b, char **buf, size_t *len,
                                 size_t *cap, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->failed = 1;
        return;
    }
    nf_mb_append(b, buf, len, cap, tmp, (size_t)n);
}

/*
 * Adds an F32 tensor. values: the elements, or NULL for random ones
 * uniform in [-scale, scale). Returns name.
 */
static inline const char *nf_mb_tensor(struct nf_mb *b, const char *name,
                                       int ndim, const int64_t *shape,
                                       const float *values, float scale)
{
    size_t n = 1;
    char dims[256] = "";
    for (int i = 0; i < ndim; i++) {
        n *= (size_t)shape[i];
        snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%s%lld",
                 i ? "," : "", (long long)shape[i]);
    }
    nf_mb_appendf(b, &b->tensors, &b->tensors_len, &b->tensors_cap,
                  "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%s],"
                  "\"data_offsets\":[%zu,%zu]}",
                  b->tensors_len ? "," : "", name, dims, b->data_len,
                  b->data_len + 4 * n);
    for (size_t i = 0; i < n && !b->failed; i++) {
        float v = values ? values[i] : (2 * nf_mb_randf(b) - 1) * scale;
        uint32_t u;
        uint8_t le[4];
        memcpy(&u, &v, 4);
        for (int k = 0; k < 4; k++)
            le[k] = (uint8_t)(u >> (8 * k));
        char *d = (char *)b->data;
        nf_mb_append(b, &d, &b->data_len, &b->data_cap, le, 4);
        b->data = (uint8_t *)d;
    }
    return name;
}

/* Adds a node; fields is the inside of the node object, ' for quotes. */
static inline void nf_mb_node(struct nf_mb *b, const char *fields, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fields);
    int n = vsnprintf(tmp, sizeof tmp, fields, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->failed = 1;
        return;
    }
    nf_mb_appendf(b, &b->nodes, &b->nodes_len, &b->nodes_cap, "%s{%s}",
                  b->nodes_len ? "," : "", tmp);
}

/*
 * Assembles the file (name, K, size multiple, output value) and loads it.
 * Returns the model or NULL after printing the loader's message. The
 * builder may be freed or reused afterwards.
 */
static inline struct nf_model *nf_mb_load(struct nf_mb *b, const char *name,
                                          int k, int multiple,
                                          const char *output)
{
    char *h = NULL;
    size_t len = 0, cap = 0;
    nf_mb_appendf(b, &h, &len, &cap, "{%s%s\"__metadata__\":{",
                  b->tensors_len ? b->tensors : "", b->tensors_len ? "," : "");
    nf_mb_appendf(b, &h, &len, &cap,
                  "\"nf.format\":\"1\",\"nf.name\":\"%s\","
                  "\"nf.cache_frames\":\"%d\",\"nf.size_multiple\":\"%d\","
                  "\"nf.graph\":\"{\\\"nodes\\\":[",
                  name, k, multiple);
    /* Node JSON inside a JSON string: ' becomes \". */
    for (size_t i = 0; i < b->nodes_len && !b->failed; i++) {
        if (b->nodes[i] == '\'')
            nf_mb_append(b, &h, &len, &cap, "\\\"", 2);
        else
            nf_mb_append(b, &h, &len, &cap, &b->nodes[i], 1);
    }
    nf_mb_appendf(b, &h, &len, &cap, "],\\\"output\\\":\\\"%s\\\"}\"}}",
                  output);
    struct nf_model *m = NULL;
    size_t total = 8 + len + b->data_len;
    uint8_t *file = b->failed ? NULL : malloc(total);
    if (file != NULL) {
        for (int i = 0; i < 8; i++)
            file[i] = (uint8_t)((uint64_t)len >> (8 * i));
        memcpy(file + 8, h, len);
        if (b->data_len > 0)
            memcpy(file + 8 + len, b->data, b->data_len);
        char err[512];
        if (nf_model_load_buffer(file, total, name, &m, err, sizeof err) < 0)
            printf("  model-builder: %s\n", err);
    }
    free(file);
    free(h);
    return m;
}

#endif /* NF_MODEL_BUILDER_H */
