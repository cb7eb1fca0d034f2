/*
 * backend.h - the predictor runtime's public interface.
 *
 * A backend runs a loaded model (model.h) on frames. Each stream owns a
 * slot: the backend-side state of that stream, chiefly its rolling cache of
 * the last K frames the model generated, kept in the backend's own memory
 * (host memory for the CPU backends, device memory for "cuda"). One predict
 * call takes
 * a batch of (slot, input, output) items so that a scheduler can run frames
 * of several streams together; a backend may process them one by one.
 *
 * Backends: "ref", the reference (kernels/cpu/: plain loops, the oracle the
 * others are tested against), "dnnl", the fast CPU backend on oneDNN
 * (kernels/dnnl/, when built with it) and "cuda" (kernels/cuda/, a shared
 * library loaded at run time when it and a device are present). Two names
 * choose: "cpu" the best CPU backend that supports the model (dnnl, else
 * ref), "auto" the best of all (cuda when available, then as "cpu").
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

#include <stddef.h>
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

/*
 * The motion map of a frame (correct.h, operation 3): how much each pixel
 * moved since the previous input. Buffers are packed, the frame's size
 * (width x height, no padding, no stride). Borrowed for the predict call.
 */
struct nf_corr_motion {
    const uint8_t *prev; /* (height, width, 3) the previous input. */
    uint8_t *copy;       /* (height, width, 3) receives this input. */
    float *motion;       /* (height, width) receives each pixel's motion. */
    /* (height, width) or NULL: receives each pixel's cache decay
     * (nf_corr_refresh_beta with the correction's decay); the item's
     * decay_map may point here, and is then read after it is written. */
    float *beta;
    float threshold; /* Levels, 0..255: a change up to it is still. */
    float refresh;   /* 0..1: beta where a pixel moves fully. */
};

/*
 * Temporal stabilization of the 8-bit output (correct.h, operation 4):
 * still pixels follow the model through a running average shown with a
 * dead band. Packed buffers of the frame's size; borrowed for the call.
 */
struct nf_corr_stab {
    const float *motion; /* (height, width): operation 3's map, 0..1. */
    float *avg;          /* (height, width, 3) the running average, levels. */
    uint8_t *shown;      /* (height, width, 3) the values shown last. */
    float blend;         /* 0..1: the average's gain on still pixels. */
    float deadband;      /* 0..255 levels: the change a still pixel shows. */
};

/*
 * Drift correction of one predict item (docs/TEMPORAL.md; kernels/temporal.h
 * decides the values, kernels/correct.h holds the per-element math every
 * backend uses). Borrowed for the predict call.
 */
struct nf_correction {
    /* (3, grid_h, grid_w) planar floats in the model's [0, 1] units, added
     * to the output, bilinearly upsampled; NULL: no offset. */
    const float *offset;
    int grid_w, grid_h; /* 1..NF_CORR_MAX_GRID (correct.h) with offset. */
    float decay;        /* beta in [0, 1]: cache decay toward the input. */
    /* (height, width) floats in [0, 1], the unpadded frame's size: a beta
     * per pixel that replaces decay (nf_corr_beta_at); NULL: none. */
    const float *decay_map;
    /* Optional (NULL: none), on backends where nf_backend_stabilizes():
     * operation 3 before everything else, operation 4 after the output's
     * 8-bit values are final. */
    const struct nf_corr_motion *motion;
    const struct nf_corr_stab *stab;
};

/* One frame of one stream in a batch. */
struct nf_predict_item {
    struct nf_slot *slot;             /* The stream's slot. */
    const struct nf_image *in;        /* Input frame. Borrowed. */
    struct nf_image *out;             /* Same size as in; caller-allocated. */
    int status;                       /* Out: 0 or a negative NF_E* code. */
    const struct nf_correction *corr; /* Optional (NULL: none). Borrowed. */
};

/*
 * Names of the concrete backends this build can run on this machine, best
 * first, e.g. {"cuda", "dnnl", "ref", NULL} on a GPU machine with
 * libnf-cuda.so beside the executable, {"dnnl", "ref", NULL} elsewhere.
 * nf_backend_init also accepts "cpu" and "auto". The first call may load
 * the CUDA library and probe for a device (kernels/backend-load.h).
 */
const char *const *nf_backend_list(void);

/*
 * Why backend `name` cannot run on this machine, as one line for a log
 * ("cuda: cannot load the library: .../libnf-cuda.so: cannot open shared
 * object file: No such file or directory", "cuda: no CUDA device (...)"),
 * or NULL when it can or name is not a backend of this build. Static
 * storage; any thread.
 */
const char *nf_backend_why_unavailable(const char *name);

/*
 * Creates backend `name` ("ref", "dnnl", "cuda"; "cpu" and "auto" pick the
 * best available that supports m) for model m, which must outlive it. threads:
 * worker threads the backend may use (0 = its default; for "dnnl" that is
 * an adaptive choice between one thread and all CPUs, kernels/dnnl/README.md).
 * Returns 0, NF_ENO_BACKEND, NF_ENOMEM or NF_EBACKEND.
 */
int nf_backend_init(const char *name, const struct nf_model *m, int threads,
                    struct nf_backend **out);

/* Frees a backend and every slot still open; accepts NULL. */
void nf_backend_free(struct nf_backend *b);

/* "ref", "dnnl", "cuda": the concrete backend chosen (never "cpu"/"auto"). */
const char *nf_backend_name(const struct nf_backend *b);

/*
 * 1 if b's predict applies a correction's motion map and stabilization
 * (struct nf_corr_motion, struct nf_corr_stab) inside its own pass ("ref",
 * "dnnl"); 0 if items that carry them are NF_EUNSUPPORTED ("cuda"), and
 * the caller runs them itself (kernels/stabilize.h). Any thread.
 */
int nf_backend_stabilizes(const struct nf_backend *b);

/* The model this backend runs. */
const struct nf_model *nf_backend_model(const struct nf_backend *b);

/*
 * Opens a slot with an empty (cold) cache. Returns 0 or NF_ENOMEM. The
 * cache is sized lazily by the first frame; a frame of a different size than
 * the cache holds resets the cache.
 */
int nf_backend_slot_new(struct nf_backend *b, struct nf_slot **out);

/*
 * Memory for the pixels (and correction maps) that callers hand to
 * nf_backend_predict with backend b: bytes long, zeroed, aligned to 64.
 * On "cuda" it is page-locked, and predict moves such images and maps
 * straight to and from the device instead of through its staging copy;
 * elsewhere (or with b NULL) plain heap memory. NULL when out of memory.
 * Free with nf_backend_host_free() only, which may run after b is freed.
 * Any thread.
 */
void *nf_backend_host_alloc(const struct nf_backend *b, size_t bytes);

/* Frees what nf_backend_host_alloc returned; accepts NULL. Any thread. */
void nf_backend_host_free(void *p);

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
 *
 * With item->corr set, two steps join the sequence above, in this order:
 * on a warm slot, before the graph runs, every cache entry becomes
 * (1 - beta) * entry + beta * frame (the padded input in [0, 1]), with beta
 * = decay, or decay_map's value at the pixel (nf_corr_beta_at); after
 * the graph, the offset field is added to the float output (channel c at
 * padded pixel (x, y) gets nf_corr_offset_at(offset, grid_w, grid_h, c, x,
 * y, in->width, in->height)) BEFORE the output is clamped, rounded and
 * pushed into the cache, so the cache holds corrected frames. An item whose
 * corr has decay outside [0, 1] (or NaN), or an offset with a grid side
 * outside 1..NF_CORR_MAX_GRID, is NF_EINVAL.
 *
 * corr->motion, when set, runs first of all: from the input and motion->prev
 * it writes motion->motion, motion->beta (if set) and motion->copy. And
 * corr->stab, when set, runs last: it rewrites the 8-bit output in place
 * (with its avg and shown) after everything above; the cache keeps the
 * model's values. An item whose motion or stab has a NULL buffer or a value
 * outside the ranges of backend.h's structs (or NaN) is NF_EINVAL; on a
 * backend that does not stabilize, NF_EUNSUPPORTED.
 */
int nf_backend_predict(struct nf_backend *b, struct nf_predict_item *items,
                       int n);

#endif /* NF_BACKEND_H */
