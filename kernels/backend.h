/*
 * backend.h - the predictor runtime's public interface.
 *
 * A backend runs a loaded model (model.h) on frames. Each stream owns a
 * slot: the backend-side state of that stream, chiefly its rolling cache of
 * the last K frames the model generated, kept in the backend's own memory
 * (host memory for "cpu", device memory for "cuda"). One predict call takes
 * a batch of (slot, input, output) items so that a scheduler can run frames
 * of several streams together; a backend may process them one by one.
 *
 * Frames cross this interface as 8-bit interleaved RGB (what libjpeg-turbo
 * decodes to and encodes from). Internally the model sees floats in [0, 1].
 *
 * Threads: nf_backend_predict() must not be called concurrently on the same
 * backend. nf_backend_slot_new/_free/_reset may be called from any thread,
 * including while predict runs on OTHER slots, never on a slot that a
 * running predict call uses.
 */
#ifndef NF_BACKEND_H
#define NF_BACKEND_H

#include <stdint.h>

struct nf_model;
struct nf_backend;
struct nf_slot;

/* Largest width or height a backend accepts (NF_ERANGE beyond). */
#define NF_BACKEND_MAX_SIDE 32768

/* An 8-bit RGB image; pixel (x, y) starts at data + y * stride + 3 * x. */
struct nf_image {
    uint8_t *data;
    int width;
    int height;
    int stride; /* Bytes per row, >= 3 * width. */
};

/* One frame of one stream in a batch. */
struct nf_predict_item {
    struct nf_slot *slot;      /* The stream's slot. */
    const struct nf_image *in; /* Input frame. Borrowed. */
    struct nf_image *out;      /* Same size as in; caller-allocated. */
    int status;                /* Out: 0 or a negative NF_E* code. */
};

/* Names of backends compiled into this build, e.g. "cpu". */
const char *const *nf_backend_list(void);

/*
 * Creates backend `name` ("cpu"; "auto" picks the best available) for model
 * m, which must outlive it. threads: worker threads the backend may use
 * (0 = its default). Returns 0, NF_ENO_BACKEND, NF_ENOMEM or NF_EBACKEND.
 */
int nf_backend_init(const char *name, const struct nf_model *m, int threads,
                    struct nf_backend **out);

/* Frees a backend and every slot still open; accepts NULL. */
void nf_backend_free(struct nf_backend *b);

/* "cpu", "cuda": the backend actually chosen. */
const char *nf_backend_name(const struct nf_backend *b);

/* The model this backend runs. */
const struct nf_model *nf_backend_model(const struct nf_backend *b);

/*
 * Opens a slot with an empty (cold) cache. Returns 0 or NF_ENOMEM. The
 * cache is sized lazily by the first frame; a frame of a different size than
 * the cache holds resets the cache.
 */
int nf_backend_slot_new(struct nf_backend *b, struct nf_slot **out);

/* Closes a slot; accepts NULL. */
void nf_backend_slot_free(struct nf_backend *b, struct nf_slot *s);

/* Empties a slot's cache: its next frame starts cold. */
void nf_backend_slot_reset(struct nf_backend *b, struct nf_slot *s);

/*
 * Runs the model on n items. For each item: if its slot's cache is cold,
 * it is first filled with K copies of the input frame; the model reads the
 * input and the cache and writes the output; the output then enters the
 * cache as its newest frame (as floats clamped to [0, 1], before rounding
 * to 8 bits) and the oldest frame leaves. Sizes that are not
 * a multiple of nf_model_size_multiple() are edge-padded internally and the
 * output cropped back. Returns 0 when every item succeeded, else the first
 * item's error; each item's own result is in item->status. An item is
 * NF_EINVAL (and skipped) if its slot is NULL, belongs to another backend or
 * already appeared earlier in the batch, or if in/out are NULL, differ in
 * size or have a non-positive size or a stride below 3 * width; NF_ERANGE
 * if a side exceeds NF_BACKEND_MAX_SIDE.
 */
int nf_backend_predict(struct nf_backend *b, struct nf_predict_item *items,
                       int n);

#endif /* NF_BACKEND_H */
