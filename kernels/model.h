/*
 * model.h - loading a nextframe model file (safetensors + graph metadata).
 *
 * The file format is specified in kernels/MODEL.md. nf_model_load() reads
 * the whole file, validates every field (safetensors structure, dtypes,
 * offsets, shapes, and the graph in __metadata__["nf.graph"] against the
 * tensors) and returns an immutable model that any number of backends may
 * share. Errors name the file and the offending field.
 */
#ifndef NF_MODEL_H
#define NF_MODEL_H

#include <stddef.h>

struct nf_model;

/*
 * Loads and validates path. On success returns 0 and *out owns the model
 * (free with nf_model_free). On failure returns NF_EMODEL_IO,
 * NF_EMODEL_FORMAT, NF_EMODEL_GRAPH or NF_ENOMEM, leaves *out NULL and, if
 * err is not NULL, writes a one-line message such as
 * "models/x.safetensors: tensor 'enc.weight': data_offsets [0, 96) hold 96
 * bytes but shape [4, 3, 3, 3] of F32 needs 432" into err (errlen bytes).
 * Any thread.
 */
int nf_model_load(const char *path, struct nf_model **out, char *err,
                  size_t errlen);

/*
 * The same from a buffer already in memory (len bytes; copied). name is used
 * in error messages in place of a path. For tests and fuzzers.
 */
int nf_model_load_buffer(const void *buf, size_t len, const char *name,
                         struct nf_model **out, char *err, size_t errlen);

/* Frees a model; accepts NULL. No backend may still use it. */
void nf_model_free(struct nf_model *m);

/* Metadata value for key (e.g. "nf.name"), or NULL. Borrowed from m. */
const char *nf_model_meta(const struct nf_model *m, const char *key);

/* The model's name (metadata "nf.name"; never NULL). */
const char *nf_model_name(const struct nf_model *m);

/* K: how many of its own past outputs the model reads (0..NF_MAX_CACHE). */
int nf_model_cache_frames(const struct nf_model *m);

/* Input width and height must be multiples of this (1, 2, 4, ...). */
int nf_model_size_multiple(const struct nf_model *m);

/* Multiply-adds x 2 for one frame of width x height (FLOPs, approximate). */
double nf_model_flops(const struct nf_model *m, int width, int height);

/* Number of parameters (elements of all weight tensors). */
size_t nf_model_params(const struct nf_model *m);

#define NF_MAX_CACHE 8

#endif /* NF_MODEL_H */
