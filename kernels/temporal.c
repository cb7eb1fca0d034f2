/*
 * temporal.c - drift correction and temporal stabilization of one stream
 * (temporal.h; docs/TEMPORAL.md is the specification).
 *
 * The backend does the per-element work (correct.h): the offset field and
 * cache decay on the model's floats, and where it can (nf_backend_
 * stabilizes) the motion map and the stabilizer on the 8-bit frames, split
 * over its threads; elsewhere this file runs those two (stabilize.h).
 * Everything else here works on grids of cells a few pixels wide, so it is
 * the same for every backend and costs a few operations per cell.
 */
#include "temporal.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "correct.h"
#include "error.h"
#include "quality.h"
#include "stabilize.h"

/* State of one stream. Every field: the thread that drives t. */
struct nf_temporal {
    struct nf_backend *b;
    struct nf_temporal_params p;
    struct nf_slot *slot;        /* The stream's cache. */
    struct nf_slot *anchor_slot; /* Cold for every anchor; lazily opened. */
    struct nf_correction corr;   /* Handed to the backend in items[0]. */
    struct nf_corr_motion mo;    /* This frame's motion map (operation 3). */
    struct nf_corr_stab stab;    /* Its stabilization (operation 4). */

    /* Sized for width x height (0: nothing yet) and grid gw x gh. */
    int width, height, gw, gh;
    size_t cap_px;  /* Pixels the per-pixel buffers hold. */
    size_t cap_gr;  /* Cells the grids hold. */
    float *offset;  /* (3, gh, gw) in [0, 1] units: the correction applied. */
    float *target;  /* (3, gh, gw) where the integral control wants it. */
    float *step;    /* (3, gh, gw) per-frame move of offset toward target. */
    float *lp_in;   /* (3, gh, gw) cell means of this frame's input. */
    float *lp_prev; /* (3, gh, gw) the same of the previous input. */
    float *lp_a, *lp_b; /* (3, gh, gw) scratch: output and anchor means. */
    uint8_t *prev_in;   /* (h, w, 3) previous input, packed. */
    uint8_t *next_in;   /* (h, w, 3) this input, when next_ready. */
    float *disp;        /* (h, w, 3) the stabilized output, levels. */
    uint8_t *shown;     /* (h, w, 3) the output shown last frame. */
    float *beta;        /* (h, w) the cache decay of each pixel. */
    float *motion;      /* (h, w) how much each pixel moved, 0 to 1. */
    uint8_t *anchor_px; /* (h, w, 3) the anchor's pixels. */
    struct nf_image anchor;

    int have_prev;  /* prev_in and lp_prev hold the previous frame. */
    int next_ready; /* The motion map copies this input to next_in. */
    int stab_mode;  /* This frame's output: STAB_*. */
    int have_disp;  /* disp holds the previous output. */
    int regrid;     /* grid_cell changed: resize the grids. */
    int reset_pending, reset_client;
    int anchor_now;     /* This frame has an anchor item. */
    int ramp_left;      /* Frames offset still moves by step. */
    int anchor_done;    /* The last finished frame's anchor is valid. */
    int anchor_pending; /* end_frame ran; end_anchor has not. */
    int skipped_row;    /* Anchors skipped in a row (anchor_skip). */
    uint64_t n;         /* Frames since the last reset: the anchor schedule. */
    struct nf_temporal_stats st;
};

/* What end_frame does with the output (stab_mode). */
enum {
    STAB_REMEMBER, /* Keeps it as the stabilizer's start (no history yet). */
    STAB_HOST,     /* Stabilizes it here. */
    STAB_BACKEND,  /* Nothing: predict stabilized it (corr.stab). */
};

/* ---- Parameters ---------------------------------------------------- */

struct param_info {
    const char *name;
    size_t offset;
    int is_int;
    double min, max;
};

#define PARAM_IS_INT_int   1
#define PARAM_IS_INT_float 0
static const struct param_info params[] = {
#define NF_TEMPORAL_INFO(name, type, def, min, max, unit, what)                \
    {#name, offsetof(struct nf_temporal_params, name), PARAM_IS_INT_##type,    \
     min, max},
    NF_TEMPORAL_PARAM_MAP(NF_TEMPORAL_INFO)
#undef NF_TEMPORAL_INFO
};
#define N_PARAMS ((int)(sizeof params / sizeof params[0]))

static double param_read(const struct nf_temporal_params *p,
                         const struct param_info *pi)
{
    const char *base = (const char *)p + pi->offset;
    if (pi->is_int) {
        int v;
        memcpy(&v, base, sizeof v);
        return v;
    }
    float f;
    memcpy(&f, base, sizeof f);
    return f;
}

static int param_ok(const struct param_info *pi, double v)
{
    return v >= pi->min && v <= pi->max && (!pi->is_int || v == floor(v));
}

void nf_temporal_params_default(struct nf_temporal_params *p)
{
#define NF_TEMPORAL_DEF(name, type, def, min, max, unit, what)                 \
    p->name = (type)(def);
    NF_TEMPORAL_PARAM_MAP(NF_TEMPORAL_DEF)
#undef NF_TEMPORAL_DEF
}

int nf_temporal_params_check(const struct nf_temporal_params *p)
{
    if (p == NULL)
        return NF_EINVAL;
    for (int i = 0; i < N_PARAMS; i++)
        if (!param_ok(&params[i], param_read(p, &params[i])))
            return NF_ERANGE;
    return 0;
}

static const struct param_info *param_find(const char *name)
{
    for (int i = 0; name != NULL && i < N_PARAMS; i++)
        if (strcmp(params[i].name, name) == 0)
            return &params[i];
    return NULL;
}

int nf_temporal_param_set(struct nf_temporal_params *p, const char *name,
                          double v)
{
    const struct param_info *pi = param_find(name);
    if (p == NULL || pi == NULL)
        return NF_EINVAL;
    if (!param_ok(pi, v))
        return NF_ERANGE;
    char *base = (char *)p + pi->offset;
    if (pi->is_int) {
        int iv = (int)v;
        memcpy(base, &iv, sizeof iv);
    } else {
        float f = (float)v;
        memcpy(base, &f, sizeof f);
    }
    return 0;
}

int nf_temporal_param_get(const struct nf_temporal_params *p, const char *name,
                          double *v)
{
    const struct param_info *pi = param_find(name);
    if (p == NULL || pi == NULL || v == NULL)
        return NF_EINVAL;
    *v = param_read(p, pi);
    return 0;
}

const char *nf_temporal_param_name(int i)
{
    return i >= 0 && i < N_PARAMS ? params[i].name : NULL;
}

/* ---- Lifetime ------------------------------------------------------ */

static void free_buffers(struct nf_temporal *t)
{
    free(t->offset);
    free(t->target);
    free(t->step);
    free(t->shown);
    nf_backend_host_free(t->beta);
    free(t->motion);
    free(t->lp_in);
    free(t->lp_prev);
    free(t->lp_a);
    free(t->lp_b);
    free(t->prev_in);
    free(t->next_in);
    free(t->disp);
    nf_backend_host_free(t->anchor_px);
    t->offset = t->target = t->step = NULL;
    t->lp_in = t->lp_prev = t->lp_a = t->lp_b = NULL;
    t->disp = t->beta = t->motion = NULL;
    t->prev_in = t->next_in = t->anchor_px = t->shown = NULL;
    t->cap_px = t->cap_gr = 0;
    t->width = t->height = 0;
}

int nf_temporal_new(struct nf_backend *b, const struct nf_temporal_params *p,
                    struct nf_temporal **out)
{
    if (out == NULL)
        return NF_EINVAL;
    *out = NULL;
    if (b == NULL)
        return NF_EINVAL;
    if (p != NULL && nf_temporal_params_check(p) < 0)
        return NF_ERANGE;
    struct nf_temporal *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NF_ENOMEM;
    t->b = b;
    if (p != NULL)
        t->p = *p;
    else
        nf_temporal_params_default(&t->p);
    int rc = nf_backend_slot_new(b, &t->slot);
    if (rc < 0) {
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void nf_temporal_free(struct nf_temporal *t)
{
    if (t == NULL)
        return;
    nf_backend_slot_free(t->b, t->slot);
    nf_backend_slot_free(t->b, t->anchor_slot);
    free_buffers(t);
    free(t);
}

static void clear_offset(struct nf_temporal *t)
{
    size_t bytes = (size_t)3 * t->gw * t->gh * sizeof(float);
    if (t->offset != NULL) {
        memset(t->offset, 0, bytes);
        memset(t->target, 0, bytes);
        memset(t->step, 0, bytes);
    }
    t->ramp_left = 0;
}

int nf_temporal_set_params(struct nf_temporal *t,
                           const struct nf_temporal_params *p)
{
    if (t == NULL || p == NULL)
        return NF_EINVAL;
    if (nf_temporal_params_check(p) < 0)
        return NF_ERANGE;
    if (p->grid_cell != t->p.grid_cell)
        t->regrid = 1;
    if (!p->correct)
        clear_offset(t);
    t->p = *p;
    return 0;
}

const struct nf_temporal_params *nf_temporal_params(const struct nf_temporal *t)
{
    return &t->p;
}

void nf_temporal_reset(struct nf_temporal *t)
{
    t->reset_client = 1;
}

float nf_temporal_drift(const struct nf_temporal *t)
{
    return t->st.drift;
}

void nf_temporal_get_stats(const struct nf_temporal *t,
                           struct nf_temporal_stats *s)
{
    *s = t->st;
}

const struct nf_image *nf_temporal_anchor(const struct nf_temporal *t)
{
    return t->anchor_done ? &t->anchor : NULL;
}

/* ---- Per frame ----------------------------------------------------- */

/* Cells along a side: ceil(size / cell), within 1..min(size, max grid). */
static int grid_side(int size, int cell)
{
    int n = (size + cell - 1) / cell;
    if (n > NF_CORR_MAX_GRID)
        n = NF_CORR_MAX_GRID;
    return n < 1 ? 1 : n > size ? size : n;
}

/*
 * Makes *p hold `bytes` zeroed bytes; contents are lost. With host, from
 * the backend's host memory, for what a GPU backend moves to and from the
 * device (the decay map, the anchor's output), which it moves fastest;
 * else from the heap.
 */
static int grow(const struct nf_temporal *t, void **p, size_t bytes, int host)
{
    bytes = bytes ? bytes : 1;
    void *q = host ? nf_backend_host_alloc(t->b, bytes) : calloc(1, bytes);
    if (q == NULL)
        return NF_ENOMEM;
    if (host)
        nf_backend_host_free(*p);
    else
        free(*p);
    *p = q;
    return 0;
}

/*
 * Sizes the buffers for a width x height frame and the current grid_cell.
 * A change of either forgets the stream's history (the caller resets).
 */
static int prepare(struct nf_temporal *t, int width, int height)
{
    int gw = grid_side(width, t->p.grid_cell);
    int gh = grid_side(height, t->p.grid_cell);
    size_t px = (size_t)width * height, gr = (size_t)gw * gh;
    int rc = 0;
    if (px > t->cap_px) {
        t->cap_px = 0;
        rc = grow(t, (void **)&t->prev_in, 3 * px, 0);
        if (rc == 0)
            rc = grow(t, (void **)&t->next_in, 3 * px, 0);
        if (rc == 0)
            rc = grow(t, (void **)&t->disp, 3 * px * sizeof(float), 0);
        if (rc == 0)
            rc = grow(t, (void **)&t->anchor_px, 3 * px, 1);
        if (rc == 0)
            rc = grow(t, (void **)&t->shown, 3 * px, 0);
        if (rc == 0)
            rc = grow(t, (void **)&t->beta, px * sizeof(float), 1);
        if (rc == 0)
            rc = grow(t, (void **)&t->motion, px * sizeof(float), 0);
        if (rc == 0)
            t->cap_px = px;
    }
    if (rc == 0 && gr > t->cap_gr) {
        t->cap_gr = 0;
        float **g3[] = {&t->offset,  &t->target, &t->step, &t->lp_in,
                        &t->lp_prev, &t->lp_a,   &t->lp_b};
        for (size_t i = 0; rc == 0 && i < sizeof g3 / sizeof g3[0]; i++)
            rc = grow(t, (void **)g3[i], 3 * gr * sizeof(float), 0);
        if (rc == 0)
            t->cap_gr = gr;
    }
    if (rc < 0) {
        free_buffers(t);
        return rc;
    }
    t->width = width;
    t->height = height;
    t->gw = gw;
    t->gh = gh;
    t->anchor = (struct nf_image){t->anchor_px, width, height, 3 * width};
    t->regrid = 0;
    return 0;
}

/* Forgets everything about the stream's past: a fresh start. */
static void forget(struct nf_temporal *t)
{
    nf_backend_slot_reset(t->b, t->slot);
    clear_offset(t);
    t->have_prev = t->have_disp = 0;
    t->n = 0;
}

/* A cache reset that keeps the stabilization history (drift, scene cut). */
static void restart(struct nf_temporal *t)
{
    nf_backend_slot_reset(t->b, t->slot);
    clear_offset(t);
    t->n = 0;
}

/* Mean over cells and channels of |a - b|, grids of (3, gh, gw). */
static float grid_distance(const struct nf_temporal *t, const float *a,
                           const float *b)
{
    size_t n = (size_t)3 * t->gw * t->gh;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += fabsf(a[i] - b[i]);
    return (float)(s / (double)n);
}

static int check_image(const struct nf_image *im)
{
    if (im == NULL || im->data == NULL || im->width <= 0 || im->height <= 0 ||
        im->stride < 3 * im->width)
        return NF_EINVAL;
    if (im->width > NF_BACKEND_MAX_SIDE || im->height > NF_BACKEND_MAX_SIDE)
        return NF_ERANGE;
    return 0;
}

/* One frame's move of the applied offset toward the target. */
static void ramp_offset(struct nf_temporal *t)
{
    size_t n = (size_t)3 * t->gw * t->gh;
    if (t->ramp_left <= 0)
        return;
    if (--t->ramp_left == 0)
        memcpy(t->offset, t->target, n * sizeof(float));
    else
        for (size_t i = 0; i < n; i++)
            t->offset[i] += t->step[i];
}

/* Resets decided before the frame runs; returns 0 or NF_ENOMEM. */
static int begin_resets(struct nf_temporal *t, const struct nf_image *in)
{
    if (in->width != t->width || in->height != t->height || t->regrid) {
        int rc = prepare(t, in->width, in->height);
        if (rc < 0)
            return rc;
        forget(t);
    }
    if (t->reset_client) {
        t->reset_client = 0;
        t->reset_pending = 0;
        t->st.resets_client++;
        forget(t);
    }
    nf_quality_grid_mean(in, t->gw, t->gh, t->lp_in);
    if (t->have_prev) {
        t->st.cut_score = grid_distance(t, t->lp_in, t->lp_prev);
        if (t->p.correct && t->p.scene_cut > 0 &&
            t->st.cut_score > t->p.scene_cut) {
            t->st.resets_scene++;
            t->reset_pending = 1;
        }
    }
    if (t->reset_pending) {
        t->reset_pending = 0;
        restart(t);
    }
    return 0;
}

/*
 * The frame's correction: the offset and decay, and with a previous input
 * the motion map (which the per-pixel decay and the stabilizer read) and
 * the stabilizer's mode. The backend runs the map and the stabilizer in
 * its own pass where it can; an anchor frame's stabilizer stays here,
 * since the anchor compares with the output before it (end_frame).
 */
static void begin_correction(struct nf_temporal *t, const struct nf_image *in)
{
    t->corr = (struct nf_correction){.grid_w = t->gw, .grid_h = t->gh};
    t->stab_mode = STAB_REMEMBER;
    if (!t->p.correct)
        return;
    ramp_offset(t);
    t->corr.offset = t->p.reanchor > 0 ? t->offset : NULL;
    t->corr.decay = t->p.decay;
    if (!t->have_prev)
        return;
    int refresh = t->p.refresh > 0;
    t->mo = (struct nf_corr_motion){
        t->prev_in,           t->next_in,  t->motion, refresh ? t->beta : NULL,
        t->p.still_threshold, t->p.refresh};
    int fused = nf_backend_stabilizes(t->b);
    if (fused)
        t->corr.motion = &t->mo;
    else
        nf_stab_motion_rows(&t->mo, t->p.decay, in, 0, in->height);
    t->next_ready = 1; /* The input's copy is in next_in after predict. */
    if (refresh)
        t->corr.decay_map = t->beta;
    if ((t->p.still_blend < 1.0f || t->p.still_deadband > 0.5f) &&
        t->have_disp) {
        t->stab = (struct nf_corr_stab){t->motion, t->disp, t->shown,
                                        t->p.still_blend, t->p.still_deadband};
        t->stab_mode = fused && !t->anchor_now ? STAB_BACKEND : STAB_HOST;
        if (t->stab_mode == STAB_BACKEND)
            t->corr.stab = &t->stab;
    }
}

int nf_temporal_begin(struct nf_temporal *t, const struct nf_image *in,
                      struct nf_image *out,
                      struct nf_predict_item items[NF_TEMPORAL_MAX_ITEMS])
{
    if (t == NULL || items == NULL)
        return NF_EINVAL;
    t->next_ready = 0; /* Whatever an unfinished frame left there. */
    int rc = check_image(in);
    if (rc == 0)
        rc = check_image(out);
    if (rc == 0 && (in->width != out->width || in->height != out->height))
        rc = NF_EINVAL;
    if (rc == 0)
        rc = begin_resets(t, in);
    if (rc < 0)
        return rc;
    t->anchor_done = 0;
    int every = t->p.anchor_every;
    t->anchor_now = every > 0 && t->n % (uint64_t)every == (uint64_t)every - 1;
    if (t->anchor_now && t->anchor_slot == NULL &&
        nf_backend_slot_new(t->b, &t->anchor_slot) < 0)
        t->anchor_now = 0; /* No memory for an anchor: skip this one. */
    begin_correction(t, in);
    items[0] = (struct nf_predict_item){t->slot, in, out, 0,
                                        t->p.correct ? &t->corr : NULL};
    if (!t->anchor_now)
        return 1;
    nf_backend_slot_reset(t->b, t->anchor_slot);
    items[1] =
        (struct nf_predict_item){t->anchor_slot, in, &t->anchor, 0, NULL};
    return 2;
}

/*
 * Integral control of the low frequencies: each anchor moves the target
 * field by reanchor times the remaining cell difference, within
 * max_offset, and the applied offset walks to it in equal steps over the
 * next anchor_every frames (a jump would flicker). lp_a holds the output's
 * cell means, lp_b the anchor's.
 */
static void reanchor(struct nf_temporal *t)
{
    size_t n = (size_t)3 * t->gw * t->gh;
    float lim = t->p.max_offset / 255.0f, k = t->p.reanchor / 255.0f;
    float frames = (float)t->p.anchor_every;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        float o = t->target[i] - k * (t->lp_a[i] - t->lp_b[i]);
        o = o < -lim ? -lim : o > lim ? lim : o;
        t->target[i] = o;
        t->step[i] = (o - t->offset[i]) / frames;
        s += fabsf(o);
    }
    t->ramp_left = t->p.anchor_every;
    t->st.offset_abs = (float)(s / (double)n * 255.0);
}

static void remember_output(struct nf_temporal *t, const struct nf_image *out)
{
    for (int y = 0; y < out->height; y++) {
        const uint8_t *o = out->data + (size_t)y * out->stride;
        size_t row = (size_t)y * 3 * t->width;
        memcpy(t->shown + row, o, (size_t)3 * out->width);
        for (int i = 0; i < 3 * out->width; i++)
            t->disp[row + i] = o[i];
    }
    t->have_disp = 1;
}

static void remember_input(struct nf_temporal *t, const struct nf_image *in)
{
    if (t->next_ready) {
        uint8_t *p = t->prev_in;
        t->prev_in = t->next_in;
        t->next_in = p;
    } else {
        for (int y = 0; y < in->height; y++)
            memcpy(t->prev_in + (size_t)y * 3 * t->width,
                   in->data + (size_t)y * in->stride, (size_t)3 * in->width);
    }
    t->next_ready = 0;
    float *swap = t->lp_prev;
    t->lp_prev = t->lp_in;
    t->lp_in = swap;
    t->have_prev = 1;
}

int nf_temporal_end_frame(struct nf_temporal *t,
                          const struct nf_predict_item *items, int n)
{
    if (t == NULL || items == NULL || n < 1)
        return NF_EINVAL;
    t->st.frames++;
    t->n++;
    t->anchor_pending = 0;
    if (items[0].status < 0)
        return items[0].status;
    const struct nf_image *in = items[0].in;
    struct nf_image *out = items[0].out;
    if (t->anchor_now && n >= 2) {
        /* The anchor compares with the model's output as predicted. */
        nf_quality_grid_mean(out, t->gw, t->gh, t->lp_a);
        t->anchor_pending = 1;
    }
    if (t->stab_mode == STAB_HOST)
        nf_stab_rows(&t->stab, out, 0, out->height);
    else if (t->stab_mode == STAB_REMEMBER)
        remember_output(t, out);
    remember_input(t, in);
    return 0;
}

int nf_temporal_end_anchor(struct nf_temporal *t,
                           const struct nf_predict_item *items, int n)
{
    if (t == NULL || items == NULL || n < 1)
        return NF_EINVAL;
    if (!t->anchor_pending)
        return 0;
    t->anchor_pending = 0;
    if (n >= 2 && items[1].status == NF_EAGAIN) {
        t->skipped_row++; /* The caller skipped it: the session was busy. */
        t->st.anchors_skipped++;
        return 0;
    }
    if (n < 2 || items[1].status < 0)
        return 0; /* A failed anchor only skips this measurement. */
    t->skipped_row = 0;
    nf_quality_grid_mean(&t->anchor, t->gw, t->gh, t->lp_b);
    t->st.lf_drift = grid_distance(t, t->lp_a, t->lp_b);
    if (t->p.correct && t->p.reanchor > 0)
        reanchor(t);
    t->st.anchors++;
    t->st.drift = (float)nf_quality_mae(items[0].out, &t->anchor);
    t->anchor_done = 1;
    if (t->p.correct && t->p.reset_drift > 0 &&
        t->st.drift > t->p.reset_drift) {
        t->st.resets_drift++;
        t->reset_pending = 1;
    }
    return 0;
}

int nf_temporal_end(struct nf_temporal *t, const struct nf_predict_item *items,
                    int n)
{
    int rc = nf_temporal_end_frame(t, items, n);
    if (rc == 0)
        rc = nf_temporal_end_anchor(t, items, n);
    return rc;
}

int nf_temporal_anchor_skippable(const struct nf_temporal *t)
{
    return t != NULL && t->skipped_row < t->p.anchor_skip;
}

int nf_temporal_step(struct nf_temporal *t, const struct nf_image *in,
                     struct nf_image *out)
{
    struct nf_predict_item items[NF_TEMPORAL_MAX_ITEMS];
    int n = nf_temporal_begin(t, in, out, items);
    if (n < 0)
        return n;
    nf_backend_predict(t->b, items, n);
    return nf_temporal_end(t, items, n);
}
