/*
 * temporal.c - drift correction and temporal stabilization of one stream
 * (temporal.h; docs/TEMPORAL.md is the specification).
 *
 * The backend does the per-element work on the model's floats (correct.h:
 * offset field and cache decay). Everything here works on the 8-bit frames
 * and on grids of cells a few pixels wide, so it is the same for every
 * backend and costs a few operations per pixel.
 */
#include "temporal.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "correct.h"
#include "error.h"
#include "quality.h"

/* The per-pixel passes have AVX2 versions, chosen at run time. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NF_TEMPORAL_AVX2 1
#endif

/* State of one stream. Every field: the thread that drives t. */
struct nf_temporal {
    struct nf_backend *b;
    struct nf_temporal_params p;
    struct nf_slot *slot;        /* The stream's cache. */
    struct nf_slot *anchor_slot; /* Cold for every anchor; lazily opened. */
    struct nf_correction corr;   /* Handed to the backend in items[0]. */

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
    int next_ready; /* The motion pass copied this input to next_in. */
    int have_disp;  /* disp holds the previous output. */
    int regrid;     /* grid_cell changed: resize the grids. */
    int reset_pending, reset_client;
    int anchor_now;     /* This frame has an anchor item. */
    int ramp_left;      /* Frames offset still moves by step. */
    int anchor_done;    /* The last finished frame's anchor is valid. */
    int anchor_pending; /* end_frame ran; end_anchor has not. */
    uint64_t n;         /* Frames since the last reset: the anchor schedule. */
    struct nf_temporal_stats st;
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

/* Makes *p hold n elements of size sz; contents are lost on growth. */
static int grow(void **p, size_t n, size_t sz)
{
    void *q = calloc(n ? n : 1, sz);
    if (q == NULL)
        return NF_ENOMEM;
    free(*p);
    *p = q;
    return 0;
}

/* The same for what predict reads or writes (the decay map, the anchor's
 * output): the backend's host memory, which a GPU backend moves fastest. */
static int grow_host(const struct nf_temporal *t, void **p, size_t bytes)
{
    void *q = nf_backend_host_alloc(t->b, bytes ? bytes : 1);
    if (q == NULL)
        return NF_ENOMEM;
    nf_backend_host_free(*p);
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
        rc = grow((void **)&t->prev_in, 3 * px, 1);
        if (rc == 0)
            rc = grow((void **)&t->next_in, 3 * px, 1);
        if (rc == 0)
            rc = grow((void **)&t->disp, 3 * px, sizeof(float));
        if (rc == 0)
            rc = grow_host(t, (void **)&t->anchor_px, 3 * px);
        if (rc == 0)
            rc = grow((void **)&t->shown, 3 * px, 1);
        if (rc == 0)
            rc = grow_host(t, (void **)&t->beta, px * sizeof(float));
        if (rc == 0)
            rc = grow((void **)&t->motion, px, sizeof(float));
        if (rc == 0)
            t->cap_px = px;
    }
    if (rc == 0 && gr > t->cap_gr) {
        t->cap_gr = 0;
        float **g3[] = {&t->offset,  &t->target, &t->step, &t->lp_in,
                        &t->lp_prev, &t->lp_a,   &t->lp_b};
        for (size_t i = 0; rc == 0 && i < sizeof g3 / sizeof g3[0]; i++)
            rc = grow((void **)g3[i], 3 * gr, sizeof(float));
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

/* 0 at or below thr, 1 at or above 2 * thr, linear between. */
static float ramp(float m, float thr)
{
    if (thr <= 0.0f)
        return m > 0.0f ? 1.0f : 0.0f;
    float r = (m - thr) / thr;
    return r < 0.0f ? 0.0f : r > 1.0f ? 1.0f : r;
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

/*
 * How much each pixel moves, 0 (still) to 1: ramp() of its input's largest
 * channel change since the previous input. Computed once per frame for the
 * cache decay (begin) and the stabilizer (end), in the same pass as the
 * per-pixel cache decay (refresh_beta) when that is on and the copy of the
 * input that the next frame compares with.
 */
struct motion_row {
    const uint8_t *a, *b; /* The previous and current input. */
    uint8_t *copy;        /* Where b is copied (the next frame's a). */
    float *s;             /* Motion of each pixel. */
    float *beta;          /* Its cache decay, or NULL. */
    float thr, refresh, decay;
};

/*
 * The per-pixel cache decay: decay, raised to refresh where the input
 * moves, so that the cache forgets what the camera no longer shows instead
 * of trailing it as a ghost.
 */
static float refresh_beta(float s, float refresh, float decay)
{
    float r = refresh * s;
    return r > decay ? r : decay;
}

/* Pixels [x0, x1) of one row. */
static void motion_px(const struct motion_row *r, int x0, int x1)
{
    for (int x = x0; x < x1; x++) {
        int m = 0;
        for (int c = 0; c < 3; c++) {
            int e = abs(r->a[3 * x + c] - r->b[3 * x + c]);
            m = e > m ? e : m;
            r->copy[3 * x + c] = r->b[3 * x + c];
        }
        r->s[x] = ramp((float)m, r->thr);
        if (r->beta != NULL)
            r->beta[x] = refresh_beta(r->s[x], r->refresh, r->decay);
    }
}

#ifdef NF_TEMPORAL_AVX2
/* Channel c of 8 interleaved RGB pixels held as 3 x 8 int32 lanes. */
__attribute__((target("avx2"))) static __m256i channel(const __m256i v[3],
                                                       int c)
{
    /* Element 3p + c of the 24 is lane (3p + c) % 8 of v[(3p + c) / 8]. */
    __m256i idx =
        _mm256_setr_epi32(c, 3 + c, 6 + c, 1 + c, 4 + c, 7 + c, 2 + c, 5 + c);
    idx = _mm256_and_si256(idx, _mm256_set1_epi32(7));
    __m256i p0 = _mm256_permutevar8x32_epi32(v[0], idx);
    __m256i p1 = _mm256_permutevar8x32_epi32(v[1], idx);
    __m256i p2 = _mm256_permutevar8x32_epi32(v[2], idx);
    /* Lanes from v[1] and v[2]: c 0: 3-5 and 6-7; 1: 3-4 and 5-7; 2: 2-4
     * and 5-7. */
    if (c == 0)
        return _mm256_blend_epi32(_mm256_blend_epi32(p0, p1, 0x38), p2, 0xC0);
    if (c == 1)
        return _mm256_blend_epi32(_mm256_blend_epi32(p0, p1, 0x18), p2, 0xE0);
    return _mm256_blend_epi32(_mm256_blend_epi32(p0, p1, 0x1C), p2, 0xE0);
}

/* motion_px for pixels [0, n8), n8 a multiple of 8, thr > 0; returns n8.
 * The same arithmetic: integer maximum, then (m - thr) / thr clamped; the
 * decay's maximum as max_ps (which returns decay where r is not above it,
 * as refresh_beta does). */
__attribute__((target("avx2"))) static int
motion_avx2(const struct motion_row *r, int n8)
{
    const uint8_t *a = r->a, *b = r->b;
    const __m256 t = _mm256_set1_ps(r->thr), zero = _mm256_setzero_ps();
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 refresh = _mm256_set1_ps(r->refresh);
    const __m256 decay = _mm256_set1_ps(r->decay);
    for (int x = 0; x < n8; x += 8) {
        __m256i d[3];
        for (int k = 0; k < 3; k++) {
            int e = 3 * x + 8 * k;
            __m256i va = _mm256_cvtepu8_epi32(
                _mm_loadl_epi64((const __m128i *)(const void *)(a + e)));
            __m128i bytes =
                _mm_loadl_epi64((const __m128i *)(const void *)(b + e));
            _mm_storel_epi64((__m128i *)(void *)(r->copy + e), bytes);
            __m256i vb = _mm256_cvtepu8_epi32(bytes);
            d[k] = _mm256_abs_epi32(_mm256_sub_epi32(va, vb));
        }
        __m256i m = _mm256_max_epi32(
            _mm256_max_epi32(channel(d, 0), channel(d, 1)), channel(d, 2));
        __m256 v = _mm256_div_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(m), t), t);
        v = _mm256_min_ps(_mm256_max_ps(v, zero), one);
        _mm256_storeu_ps(r->s + x, v);
        if (r->beta != NULL)
            _mm256_storeu_ps(r->beta + x,
                             _mm256_max_ps(_mm256_mul_ps(refresh, v), decay));
    }
    return n8;
}
#endif

/*
 * The motion map, and with beta the per-pixel cache decay (refresh_beta);
 * the input is copied to next_in on the way, so that end_frame keeps it
 * by swapping buffers instead of a pass of its own.
 */
static void motion_map(struct nf_temporal *t, const struct nf_image *in,
                       float *beta)
{
    struct motion_row r = {.thr = t->p.still_threshold,
                           .refresh = t->p.refresh,
                           .decay = t->p.decay};
#ifdef NF_TEMPORAL_AVX2
    int avx2 = r.thr > 0.0f && __builtin_cpu_supports("avx2");
#endif
    for (int y = 0; y < in->height; y++) {
        size_t px = (size_t)y * t->width;
        r.a = t->prev_in + 3 * px;
        r.b = in->data + (size_t)y * in->stride;
        r.copy = t->next_in + 3 * px;
        r.s = t->motion + px;
        r.beta = beta != NULL ? beta + px : NULL;
        int x = 0;
#ifdef NF_TEMPORAL_AVX2
        if (avx2)
            x = motion_avx2(&r, in->width / 8 * 8);
#endif
        motion_px(&r, x, in->width);
    }
    t->next_ready = 1;
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
    t->corr = (struct nf_correction){NULL, t->gw, t->gh, 0.0f, NULL};
    if (t->p.correct) {
        ramp_offset(t);
        t->corr.offset = t->p.reanchor > 0 ? t->offset : NULL;
        t->corr.decay = t->p.decay;
        if (t->have_prev) {
            int refresh = t->p.refresh > 0;
            motion_map(t, in, refresh ? t->beta : NULL);
            if (refresh)
                t->corr.decay_map = t->beta;
        }
    }
    items[0] = (struct nf_predict_item){t->slot, in, out, 0,
                                        t->p.correct ? &t->corr : NULL};
    int every = t->p.anchor_every;
    t->anchor_now = every > 0 && t->n % (uint64_t)every == (uint64_t)every - 1;
    if (t->anchor_now && t->anchor_slot == NULL &&
        nf_backend_slot_new(t->b, &t->anchor_slot) < 0)
        t->anchor_now = 0; /* No memory for an anchor: skip this one. */
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

/*
 * Still pixels follow the model's output through an exponential average,
 * shown with a dead band: with s the pixel's motion (motion_map), g =
 * still_blend + (1 - still_blend) * s, v += g * (model - v), and the shown
 * 8-bit value changes (to v rounded) only when v is at least
 * still_deadband * (1 - s) + 0.5 * s levels away from it (0.5: plain
 * rounding), which stops the small steps that input noise causes. Moving
 * pixels (s = 1) pass unchanged.
 *
 * stabilize_px() does pixels [x0, x1) of one row; stabilize_avx2() does 8
 * pixels at a time with the same operations in the same order (separate
 * multiply and add, truncating conversion), so both give the same bytes.
 */
struct stab_row {
    const float *s; /* Motion of each pixel of the row. */
    uint8_t *o, *q; /* Model output (becomes the shown value), shown. */
    float *d;       /* The running average, per element. */
    float gmin, dead;
};

static void stabilize_px(const struct stab_row *r, int x0, int x1)
{
    for (int x = x0; x < x1; x++) {
        float g = r->gmin + (1.0f - r->gmin) * r->s[x];
        float band = r->dead * (1.0f - r->s[x]) + 0.5f * r->s[x];
        for (int c = 3 * x; c < 3 * x + 3; c++) {
            float v = r->d[c] + g * ((float)r->o[c] - r->d[c]);
            float shown = (float)r->q[c];
            uint8_t b = (uint8_t)(v + 0.5f);
            r->d[c] = v;
            r->q[c] = fabsf(v - shown) >= band ? b : r->q[c];
            r->o[c] = r->q[c];
        }
    }
}

#ifdef NF_TEMPORAL_AVX2
/* 8 bytes as 8 floats. */
__attribute__((target("avx2"))) static __m256 bytes8(const uint8_t *p)
{
    __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)p);
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
}

/* Pixels [0, n8) of the row, n8 a multiple of 8; returns n8. */
__attribute__((target("avx2"))) static int
stabilize_avx2(const struct stab_row *r, int n8)
{
    const __m256i spread[3] = {_mm256_setr_epi32(0, 0, 0, 1, 1, 1, 2, 2),
                               _mm256_setr_epi32(2, 3, 3, 3, 4, 4, 4, 5),
                               _mm256_setr_epi32(5, 5, 6, 6, 6, 7, 7, 7)};
    const __m256 gmin = _mm256_set1_ps(r->gmin), one = _mm256_set1_ps(1.0f);
    const __m256 gk = _mm256_set1_ps(1.0f - r->gmin);
    const __m256 dead = _mm256_set1_ps(r->dead), half = _mm256_set1_ps(0.5f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int x = 0; x < n8; x += 8) {
        __m256 s = _mm256_loadu_ps(r->s + x);
        __m256 g8 = _mm256_add_ps(gmin, _mm256_mul_ps(gk, s));
        __m256 band8 = _mm256_add_ps(_mm256_mul_ps(dead, _mm256_sub_ps(one, s)),
                                     _mm256_mul_ps(half, s));
        for (int k = 0; k < 3; k++) {
            int e = 3 * x + 8 * k;
            __m256 g = _mm256_permutevar8x32_ps(g8, spread[k]);
            __m256 band = _mm256_permutevar8x32_ps(band8, spread[k]);
            __m256 d = _mm256_loadu_ps(r->d + e);
            __m256 v = _mm256_add_ps(
                d, _mm256_mul_ps(g, _mm256_sub_ps(bytes8(r->o + e), d)));
            __m256 shown = bytes8(r->q + e);
            __m256 far =
                _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(v, shown)),
                              band, _CMP_GE_OQ);
            __m256i b = _mm256_cvttps_epi32(_mm256_add_ps(v, half));
            __m256i q = _mm256_castps_si256(_mm256_blendv_ps(
                _mm256_castsi256_ps(_mm256_cvttps_epi32(shown)),
                _mm256_castsi256_ps(b), far));
            __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q),
                                         _mm256_extracti128_si256(q, 1));
            __m128i bytes = _mm_packus_epi16(w, w);
            _mm256_storeu_ps(r->d + e, v);
            _mm_storel_epi64((__m128i *)(void *)(r->q + e), bytes);
            _mm_storel_epi64((__m128i *)(void *)(r->o + e), bytes);
        }
    }
    return n8;
}
#endif

static void stabilize(struct nf_temporal *t, struct nf_image *out)
{
#ifdef NF_TEMPORAL_AVX2
    int avx2 = __builtin_cpu_supports("avx2");
#endif
    for (int y = 0; y < out->height; y++) {
        size_t row = (size_t)y * 3 * t->width;
        struct stab_row r = {t->motion + (size_t)y * t->width,
                             out->data + (size_t)y * out->stride,
                             t->shown + row,
                             t->disp + row,
                             t->p.still_blend,
                             t->p.still_deadband};
        int x = 0;
#ifdef NF_TEMPORAL_AVX2
        if (avx2)
            x = stabilize_avx2(&r, out->width / 8 * 8);
#endif
        stabilize_px(&r, x, out->width);
    }
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
    if (t->p.correct &&
        (t->p.still_blend < 1.0f || t->p.still_deadband > 0.5f) &&
        t->have_prev && t->have_disp) {
        stabilize(t, out);
    } else {
        remember_output(t, out);
    }
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
    if (n < 2 || items[1].status < 0)
        return 0; /* A failed anchor only skips this measurement. */
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
