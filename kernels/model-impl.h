/*
 * model-impl.h - the inside of struct nf_model (implementer-only).
 *
 * model.c fills it from a safetensors file; backends read the tensors and
 * the graph from it. A loaded model is immutable, so any number of threads
 * and backends may read it at once. Not part of the public API.
 */
#ifndef NF_MODEL_IMPL_H
#define NF_MODEL_IMPL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "graph.h"
#include "model.h"

#define NF_TENSOR_MAX_DIMS 8

/* Lets the compiler check printf-style arguments. */
#if defined(__GNUC__)
#define NF_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))
#else
#define NF_PRINTF(fmt, first)
#endif

/* One weight tensor of the file, converted to host floats. */
struct nf_tensor {
    char *name;
    int ndim;
    int64_t shape[NF_TENSOR_MAX_DIMS];
    size_t numel;      /* Product of the shape (1 for a scalar). */
    const float *data; /* (shape), 64-byte aligned, inside the model's arena. */
};

struct nf_meta {
    char *key;
    char *value;
};

struct nf_model {
    char *source;              /* File name used in error messages. Owned. */
    struct nf_tensor *tensors; /* Owned, n_tensors. */
    size_t n_tensors;
    struct nf_meta *meta; /* __metadata__, owned, n_meta. */
    size_t n_meta;
    float *arena;      /* Every tensor's data, each 64-byte aligned. Owned. */
    const char *name;  /* "nf.name", borrowed from meta. */
    int cache_frames;  /* "nf.cache_frames", 0..NF_MAX_CACHE. */
    int size_multiple; /* "nf.size_multiple": 1, 2, 4, 8 or 16. */
    struct nf_graph graph;
};

/* The tensor called name, or NULL. */
const struct nf_tensor *nf__model_tensor(const struct nf_model *m,
                                         const char *name);

/* Formats shape as "[4, 3, 3, 3]" into buf (len bytes); returns buf. */
const char *nf__shape_str(char *buf, size_t len, const int64_t *shape,
                          int ndim);

/* 1 if s is a valid model or node name: 1..63 of [A-Za-z0-9_.-]. */
int nf__valid_name(const char *s);

/*
 * Writes "src: <fmt...>" into err (if err is not NULL and errlen > 0),
 * turning control characters into '?' so that the message stays on one
 * line, and returns code. Shared by the model and graph parsers.
 */
int nf__model_error(char *err, size_t errlen, int code, const char *src,
                    const char *fmt, ...) NF_PRINTF(5, 6);

/* The same with a va_list. */
int nf__model_verror(char *err, size_t errlen, int code, const char *src,
                     const char *fmt, va_list ap);

#endif /* NF_MODEL_IMPL_H */
