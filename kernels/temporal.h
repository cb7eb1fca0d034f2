/*
 * temporal.h - drift correction and temporal stabilization of one stream.
 *
 * A stream whose model reads its own past outputs drifts. An nf_temporal
 * owns a stream's backend slot and runs, on top of the backend API, the
 * mechanisms of docs/TEMPORAL.md (which defines every parameter and
 * measure exactly):
 *
 *   - anchors: every anchor_every frames the same input also runs through
 *     the model with a cold cache on a second slot; the distance between
 *     the stream's output and this anchor is the stream's drift;
 *   - re-anchoring: the low frequencies (cell means of a grid) of the
 *     output are pulled toward the anchor's by an offset field that the
 *     backend adds before the output enters the cache (backend.h, struct
 *     nf_correction);
 *   - cache decay toward the current input, every frame (also in the
 *     backend);
 *   - cache resets when the drift passes a threshold or the input cuts to
 *     another scene;
 *   - stabilization: where the input did not change, the output follows
 *     the model's through a slow exponential average, which removes most
 *     flicker.
 *
 * It knows nothing of sockets or threads: the server's pipeline threads and
 * tools/nf-eval drive it the same way. All calls on one nf_temporal must
 * come from one thread at a time; different nf_temporals of one backend
 * follow backend.h's rules (one predict call at a time per backend).
 *
 * Per frame, either nf_temporal_step(), or, to batch several streams in one
 * predict call: nf_temporal_begin() fills 1 or 2 predict items, the caller
 * runs them with nf_backend_predict() (with other streams' items), then
 * nf_temporal_end() finishes the frame.
 */
#ifndef NF_TEMPORAL_H
#define NF_TEMPORAL_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/*
 * Every parameter: XX(name, type, default, min, max, unit, what). type is
 * int or float; a value outside [min, max] (or NaN, or an int parameter
 * given a fraction) is refused. The defaults are the ones docs/TEMPORAL.md
 * measures.
 */
#define NF_TEMPORAL_PARAM_MAP(XX)                                              \
    XX(correct, int, 1, 0, 1, "",                                              \
       "1 applies every correction below; 0 only measures drift")              \
    XX(anchor_every, int, 8, 0, 100000, "frames",                              \
       "frames between anchor runs (0: no anchors, no drift value, no "        \
       "re-anchoring)")                                                        \
    XX(anchor_skip, int, 4, 0, 1000, "anchors",                                \
       "anchors in a row a busy session may skip: one whose next frame "       \
       "already waits when its anchor would run (0: never)")                   \
    XX(grid_cell, int, 16, 4, 4096, "pixels",                                  \
       "side of a low-pass cell (re-anchoring and scene cuts)")                \
    XX(reanchor, float, 0.5, 0, 1, "",                                         \
       "share of the low-frequency difference to the anchor removed at each "  \
       "anchor (0: off)")                                                      \
    XX(max_offset, float, 32, 0, 255, "levels",                                \
       "largest correction the offset field applies to a cell")                \
    XX(decay, float, 0.3, 0, 1, "",                                            \
       "per frame, cache = (1 - decay) * cache + decay * input (0: off)")      \
    XX(refresh, float, 1, 0, 1, "",                                            \
       "decay of the cache where the input moves, replacing stale "            \
       "entries (0: off)")                                                     \
    XX(reset_drift, float, 24, 0, 255, "levels",                               \
       "reset the cache when the drift exceeds this (0: off)")                 \
    XX(scene_cut, float, 24, 0, 255, "levels",                                 \
       "reset the cache when the low-passed input changes by more (0: off)")   \
    XX(still_blend, float, 0.1, 0.01, 1, "",                                   \
       "on still pixels the output moves this share of the way to the "        \
       "model's (1: off)")                                                     \
    XX(still_threshold, float, 3, 0, 255, "levels",                            \
       "input change below which a pixel is still (fully still below, "        \
       "moving above twice this)")                                             \
    XX(still_deadband, float, 2, 0.5, 16, "levels",                            \
       "on still pixels, the shown value changes only when the average "       \
       "moved this far (0.5: plain rounding)")

struct nf_temporal_params {
#define NF_TEMPORAL_FIELD(name, type, def, min, max, unit, what) type name;
    NF_TEMPORAL_PARAM_MAP(NF_TEMPORAL_FIELD)
#undef NF_TEMPORAL_FIELD
};

/* What an nf_temporal has done so far; all counts since nf_temporal_new. */
struct nf_temporal_stats {
    float drift;      /* Drift at the last anchor, levels (0 before one). */
    float lf_drift;   /* Its low-frequency part, before re-anchoring. */
    float offset_abs; /* Mean |offset field|, levels. */
    float cut_score;  /* Last low-passed input change, levels. */
    uint64_t frames;  /* Frames finished. */
    uint64_t anchors; /* Anchor runs. */
    uint64_t anchors_skipped; /* Anchors skipped, the session busy. */
    uint64_t resets_drift, resets_scene, resets_client;
};

/* At most this many items per frame (the stream's and the anchor's). */
#define NF_TEMPORAL_MAX_ITEMS 2

struct nf_temporal;

/* Fills p with the defaults of NF_TEMPORAL_PARAM_MAP. */
void nf_temporal_params_default(struct nf_temporal_params *p);

/* 0 if every field of p is within its range, else NF_ERANGE. */
int nf_temporal_params_check(const struct nf_temporal_params *p);

/*
 * Sets parameter `name` of p to v (for the protocol and command lines).
 * Returns 0, NF_EINVAL for an unknown name, or NF_ERANGE for a value
 * outside the range (or a fraction for an int parameter); p is unchanged
 * on failure.
 */
int nf_temporal_param_set(struct nf_temporal_params *p, const char *name,
                          double v);

/* Reads parameter `name` into *v. Returns 0 or NF_EINVAL. */
int nf_temporal_param_get(const struct nf_temporal_params *p, const char *name,
                          double *v);

/* Name of parameter i (0, 1, ...), NULL past the last: for listings. */
const char *nf_temporal_param_name(int i);

/*
 * Creates the temporal state of one stream on backend b with parameters
 * p (copied; NULL: the defaults). It opens the stream's slot now and the
 * anchor slot at the first anchor. Returns 0, NF_EINVAL, NF_ERANGE (bad
 * params) or NF_ENOMEM. Buffers are sized by the first frame and again
 * only when the frame size changes.
 */
int nf_temporal_new(struct nf_backend *b, const struct nf_temporal_params *p,
                    struct nf_temporal **out);

/* Frees t and its slots; accepts NULL. */
void nf_temporal_free(struct nf_temporal *t);

/*
 * Replaces the parameters (checked: 0 or NF_ERANGE; t unchanged on error);
 * they apply from the next frame on. Turning correction off keeps the
 * cache as it is and drops the offset field; a new grid_cell drops it too.
 */
int nf_temporal_set_params(struct nf_temporal *t,
                           const struct nf_temporal_params *p);

/* The parameters in force. */
const struct nf_temporal_params *
nf_temporal_params(const struct nf_temporal *t);

/*
 * Starts the stream afresh at the next frame (a client's reset): cold
 * cache, no offset, no stabilization history; the drift value stays until
 * the next anchor.
 */
void nf_temporal_reset(struct nf_temporal *t);

/*
 * Prepares one frame: applies pending resets, detects a scene cut, and
 * fills items[0] (the stream: in -> out, with the correction) and, on an
 * anchor frame, items[1] (the anchor: in -> an image of t's). Returns the
 * number of items (1 or 2) or a negative NF_E* code (NF_EINVAL for a bad
 * image, NF_ERANGE for a side over NF_BACKEND_MAX_SIDE, NF_ENOMEM). in and
 * out must stay valid, and items unmoved in content, until
 * nf_temporal_end(); the items may be copied into a larger batch.
 */
int nf_temporal_begin(struct nf_temporal *t, const struct nf_image *in,
                      struct nf_image *out,
                      struct nf_predict_item items[NF_TEMPORAL_MAX_ITEMS]);

/*
 * Finishes the frame after the items have been predicted (n and the
 * statuses as predict left them): stabilizes out in place (where the
 * backend stabilizes, nf_backend_predict already did, but on an anchor
 * frame; docs/TEMPORAL.md section 4), measures the drift on an anchor
 * frame and updates the offset field and the reset decisions. Returns 0,
 * or the stream item's error (the frame is then lost and t unchanged but
 * for its frame count). An anchor that failed only skips this frame's
 * measurement.
 */
int nf_temporal_end(struct nf_temporal *t, const struct nf_predict_item *items,
                    int n);

/*
 * nf_temporal_end() in two halves, for a caller that sends the frame before
 * the anchor is predicted (the server): end_frame needs only items[0]
 * predicted and leaves out stabilized and final; end_anchor then needs
 * items[1] (when n is 2) and out unchanged since end_frame. Both must run,
 * in this order, before the next nf_temporal_begin(); together they do
 * exactly what nf_temporal_end() does.
 */
int nf_temporal_end_frame(struct nf_temporal *t,
                          const struct nf_predict_item *items, int n);
int nf_temporal_end_anchor(struct nf_temporal *t,
                           const struct nf_predict_item *items, int n);

/*
 * Whether the anchor of the frame in progress may be skipped because the
 * session is busy (its next frame already waits): fewer than anchor_skip
 * anchors in a row were skipped. A caller that skips it sets the anchor
 * item's status to NF_EAGAIN before nf_temporal_end_anchor(), which then
 * counts it (anchors_skipped) and measures nothing, as for a failed one.
 * The thread that drives t.
 */
int nf_temporal_anchor_skippable(const struct nf_temporal *t);

/* begin, nf_backend_predict, end: one frame of one stream. */
int nf_temporal_step(struct nf_temporal *t, const struct nf_image *in,
                     struct nf_image *out);

/*
 * The session's drift value for replies and metrics: the drift at the last
 * anchor frame, in 8-bit levels (mean absolute difference between the
 * output and the anchor), 0 before the first anchor.
 */
float nf_temporal_drift(const struct nf_temporal *t);

/* Copies the counters and last measurements into *s. */
void nf_temporal_get_stats(const struct nf_temporal *t,
                           struct nf_temporal_stats *s);

/*
 * The anchor computed for the last finished frame, or NULL if that frame
 * was not an anchor frame (or its anchor failed). Valid until the next
 * nf_temporal_begin(). For tools that also measure every frame.
 */
const struct nf_image *nf_temporal_anchor(const struct nf_temporal *t);

#endif /* NF_TEMPORAL_H */
