/*
 * backend-cpu.c - the CPU reference backend.
 *
 * Runs the graph node by node with the plain kernels of ops.h, one frame at
 * a time on the calling thread (the threads hint is ignored). It is the
 * oracle for every other backend, not a fast path.
 *
 * Memory: node outputs live in a pool of equal-sized scratch buffers; which
 * node writes into which buffer is planned once at init from the graph's
 * last-use information, so a buffer is reused as soon as its value is dead.
 * The pool, the padded input frame and the convolution workspace grow to
 * the largest resolution seen and are then reused: at a fixed resolution no
 * frame allocates. Each slot owns a ring of K cache frames, (3, H, W) floats
 * at the padded size of the frames it has seen.
 *
 * nf__cpu_run_float() (backend-impl.h) runs the same kernels once on float
 * inputs, without the 8-bit frame pipeline, for the golden tests.
 */
#include <stdlib.h>
#include <string.h>

#include "backend-impl.h"
#include "correct.h"
#include "error.h"
#include "model-impl.h"
#include "ops.h"
#include "stabilize.h"

#define ALIGN 64

/*
 * b->context. Owned by the backend; only predict touches it after init, and
 * backend.h forbids concurrent predict calls on one backend.
 */
struct cpu_backend {
    const struct nf_graph *g;
    int multiple;   /* The model's nf.size_multiple. */
    int *buffer_of; /* (n_values) pool buffer of a node output, else -1. */
    int n_buffers;
    float *pool;   /* (n_buffers, stride) floats. */
    size_t stride; /* Floats per pool buffer, a multiple of ALIGN / 4. */
    size_t pool_cap;
    float *frame; /* (3, H, W): the padded input of the current frame. */
    size_t frame_cap;
    float *work; /* Convolution workspace. */
    size_t work_cap;
    float *fixed; /* (3, H, W): the output plus a correction's offset. */
    size_t fixed_cap;
    int h, w;     /* Padded size the pointers below are set up for; 0 = none. */
    float **vals; /* (n_values) data of each value for the current frame. */
};

/*
 * s->context. Owned by the slot; touched by predict and by slot_reset and
 * slot_free, which backend.h forbids while a predict call uses the slot.
 */
struct cpu_slot {
    int width, height; /* Input size the ring is sized for; 0 = none yet. */
    int warm;          /* 0: the next frame fills the cache with copies. */
    int head;          /* Ring index of cache.0, the newest frame. */
    float *ring;       /* (K, 3, H, W) at the padded size. */
    size_t plane;      /* 3 * H * W floats: one ring entry. */
};

/* 64-byte aligned floats, touched once; NULL if the size overflows. */
static float *alloc_floats(size_t n)
{
    if (n > (SIZE_MAX - ALIGN) / sizeof(float))
        return NULL;
    size_t bytes = (n * sizeof(float) + ALIGN - 1) / ALIGN * ALIGN;
    float *p = aligned_alloc(ALIGN, bytes ? bytes : ALIGN);
    if (p != NULL)
        memset(p, 0, bytes);
    return p;
}

/* Makes *p hold at least n floats (contents lost on growth). */
static int grow(float **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    float *q = alloc_floats(n);
    if (q == NULL)
        return NF_ENOMEM;
    free(*p);
    *p = q;
    *cap = n;
    return 0;
}

/* Assigns each node output a pool buffer, reusing those of dead values. */
static int plan_buffers(struct cpu_backend *cb)
{
    const struct nf_graph *g = cb->g;
    int *free_list = malloc(((size_t)g->n_nodes + 1) * sizeof *free_list);
    if (free_list == NULL)
        return NF_ENOMEM;
    int n_free = 0;
    for (int v = 0; v < g->n_values; v++)
        cb->buffer_of[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct nf_node *n = &g->nodes[i];
        cb->buffer_of[n->output] =
            n_free > 0 ? free_list[--n_free] : cb->n_buffers++;
        /* Release after allocating: an output never aliases its inputs. */
        for (int k = 0; k < n->n_inputs; k++) {
            int v = n->inputs[k], seen = 0;
            for (int j = 0; j < k; j++)
                seen |= n->inputs[j] == v;
            if (!seen && cb->buffer_of[v] >= 0 && g->values[v].last_use == i)
                free_list[n_free++] = cb->buffer_of[v];
        }
    }
    free(free_list);
    return 0;
}

static void cpu_free(struct nf_backend *b)
{
    struct cpu_backend *cb = b->context;
    if (cb == NULL)
        return;
    free(cb->buffer_of);
    free(cb->vals);
    free(cb->pool);
    free(cb->frame);
    free(cb->work);
    free(cb->fixed);
    free(cb);
    b->context = NULL;
}

static int cpu_init(struct nf_backend *b, int threads)
{
    (void)threads; /* The reference runs on the calling thread. */
    const struct nf_model *m = b->model;
    struct cpu_backend *cb = calloc(1, sizeof *cb);
    if (cb == NULL)
        return NF_ENOMEM;
    b->context = cb;
    cb->g = &m->graph;
    cb->multiple = m->size_multiple;
    cb->buffer_of = calloc((size_t)cb->g->n_values, sizeof *cb->buffer_of);
    cb->vals = calloc((size_t)cb->g->n_values, sizeof *cb->vals);
    if (cb->buffer_of == NULL || cb->vals == NULL || plan_buffers(cb) < 0) {
        cpu_free(b);
        return NF_ENOMEM;
    }
    return 0;
}

static struct nf_cpu_tensor view(const struct cpu_backend *cb, int v)
{
    struct nf_cpu_tensor t = {cb->vals[v], cb->g->values[v].channels, 0, 0};
    nf__graph_value_size(cb->g, v, cb->h, cb->w, &t.h, &t.w);
    return t;
}

/* Sizes the pool, frame and workspace for padded size h x w. */
static int prepare_scratch(struct cpu_backend *cb, int h, int w)
{
    const struct nf_graph *g = cb->g;
    if (h == cb->h && w == cb->w)
        return 0;
    cb->h = h;
    cb->w = w;
    size_t need = 0, work = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        struct nf_cpu_tensor y = view(cb, g->nodes[i].output);
        struct nf_cpu_tensor x = view(cb, g->nodes[i].inputs[0]);
        size_t ws = g->nodes[i].op == NF_OP_CONV2D
                        ? nf__cpu_conv2d_workspace(&g->nodes[i], &x)
                        : 0;
        need = nf__cpu_numel(&y) > need ? nf__cpu_numel(&y) : need;
        work = ws > work ? ws : work;
    }
    size_t stride = (need + ALIGN / 4 - 1) / (ALIGN / 4) * (ALIGN / 4);
    int rc = 0;
    if (cb->n_buffers > 0 && stride > SIZE_MAX / (size_t)cb->n_buffers)
        rc = NF_ENOMEM;
    if (rc == 0)
        rc = grow(&cb->pool, &cb->pool_cap, stride * (size_t)cb->n_buffers);
    if (rc == 0)
        rc = grow(&cb->frame, &cb->frame_cap, (size_t)3 * h * w);
    if (rc == 0)
        rc = grow(&cb->work, &cb->work_cap, work);
    if (rc < 0) {
        cb->h = cb->w = 0; /* Try again next frame. */
        return rc;
    }
    cb->stride = stride;
    for (int v = 0; v < g->n_values; v++)
        if (cb->buffer_of[v] >= 0)
            cb->vals[v] = cb->pool + (size_t)cb->buffer_of[v] * stride;
    cb->vals[NF_VALUE_FRAME] = cb->frame;
    return 0;
}

static int cpu_slot_new(struct nf_backend *b, struct nf_slot *s)
{
    (void)b;
    s->context = calloc(1, sizeof(struct cpu_slot));
    return s->context ? 0 : NF_ENOMEM;
}

static void cpu_slot_free(struct nf_backend *b, struct nf_slot *s)
{
    (void)b;
    struct cpu_slot *cs = s->context;
    if (cs != NULL)
        free(cs->ring);
    free(cs);
    s->context = NULL;
}

static void cpu_slot_reset(struct nf_backend *b, struct nf_slot *s)
{
    (void)b;
    struct cpu_slot *cs = s->context;
    cs->warm = 0;
}

/* Sizes the ring for a width x height input (padded h x w); a new size
 * empties the cache. */
static int prepare_slot(struct cpu_slot *cs, int k, int width, int height,
                        int h, int w)
{
    if (width == cs->width && height == cs->height)
        return 0;
    free(cs->ring);
    cs->ring = NULL;
    cs->width = cs->height = 0;
    cs->warm = 0;
    cs->plane = (size_t)3 * h * w;
    if (k > 0 && (cs->ring = alloc_floats(cs->plane * (size_t)k)) == NULL)
        return NF_ENOMEM;
    cs->width = width;
    cs->height = height;
    return 0;
}

static void run_node(struct cpu_backend *cb, const struct nf_node *n)
{
    struct nf_cpu_tensor xs[NF_NODE_MAX_INPUTS];
    for (int k = 0; k < n->n_inputs; k++)
        xs[k] = view(cb, n->inputs[k]);
    struct nf_cpu_tensor y = view(cb, n->output);
    switch (n->op) {
    case NF_OP_CONV2D:
        nf__cpu_conv2d(n, &xs[0], &y, cb->work);
        break;
    case NF_OP_ADD:
        nf__cpu_add(&xs[0], &xs[1], &y);
        break;
    case NF_OP_MUL:
        nf__cpu_mul(&xs[0], &xs[1], &y);
        break;
    case NF_OP_SCALE_SHIFT:
        nf__cpu_scale_shift(n, &xs[0], &y);
        break;
    case NF_OP_CONCAT:
        nf__cpu_concat(xs, n->n_inputs, &y);
        break;
    case NF_OP_UPSAMPLE2X_NEAREST:
        nf__cpu_upsample2x_nearest(&xs[0], &y);
        break;
    case NF_OP_UPSAMPLE2X_BILINEAR:
        nf__cpu_upsample2x_bilinear(&xs[0], &y);
        break;
    case NF_OP_AVGPOOL2X2:
        nf__cpu_avgpool2x2(&xs[0], &y);
        break;
    case NF_OP_INSTANCE_NORM:
        nf__cpu_instance_norm(n, &xs[0], &y);
        break;
    case NF_OP_PIXEL_SHUFFLE:
        nf__cpu_pixel_shuffle(n->factor, &xs[0], &y);
        break;
    case NF_OP_PIXEL_UNSHUFFLE:
        nf__cpu_pixel_unshuffle(n->factor, &xs[0], &y);
        break;
    default: /* relu, leaky_relu, sigmoid, tanh, clamp */
        nf__cpu_activation(n, &xs[0], &y);
        break;
    }
}

/* The output enters the ring in place of the oldest frame. */
static void push_cache(struct cpu_slot *cs, int k, const float *y)
{
    if (k == 0)
        return;
    int oldest = (cs->head + k - 1) % k;
    float *dst = cs->ring + (size_t)oldest * cs->plane;
    /* y may be dst itself when the output is cache.{K-1}. */
    for (size_t i = 0; i < cs->plane; i++)
        dst[i] = nf__cpu_clamp01(y[i]);
    cs->head = oldest;
}

/*
 * The output with corr's offset added (backend.h, correct.h), in cb->fixed
 * (grown by predict_one) so that the graph's own buffers, possibly a cache
 * entry, stay intact; y itself without an offset.
 */
static const float *apply_offset(struct cpu_backend *cb, const float *y,
                                 const struct nf_correction *corr,
                                 const struct nf_image *in)
{
    size_t plane = (size_t)3 * cb->h * cb->w;
    if (corr == NULL || corr->offset == NULL)
        return y;
    memcpy(cb->fixed, y, plane * sizeof(float));
    nf_corr_offset_planar(cb->fixed, cb->h, cb->w, corr->offset, corr->grid_w,
                          corr->grid_h, in->width, in->height);
    return cb->fixed;
}

static int predict_one(struct cpu_backend *cb, struct cpu_slot *cs,
                       const struct nf_image *in, const struct nf_image *out,
                       const struct nf_correction *corr)
{
    const struct nf_graph *g = cb->g;
    int k = g->cache_frames, m = cb->multiple;
    int h = (in->height + m - 1) / m * m, w = (in->width + m - 1) / m * m;
    int rc = prepare_scratch(cb, h, w);
    if (rc == 0)
        rc = prepare_slot(cs, k, in->width, in->height, h, w);
    if (rc == 0 && corr != NULL && corr->offset != NULL)
        rc = grow(&cb->fixed, &cb->fixed_cap, (size_t)3 * h * w);
    if (rc < 0)
        return rc;
    if (corr != NULL && corr->motion != NULL) /* Operation 3 (correct.h). */
        nf_stab_motion_rows(corr->motion, corr->decay, in, 0, in->height);
    nf__cpu_image_from_rgb(in, cb->frame, h, w);
    if (!cs->warm) {
        for (int j = 0; j < k; j++)
            memcpy(cs->ring + (size_t)j * cs->plane, cb->frame,
                   cs->plane * sizeof(float));
        cs->head = 0;
        cs->warm = 1;
    } else if (corr != NULL &&
               (corr->decay > 0.0f || corr->decay_map != NULL)) {
        for (int j = 0; j < k; j++)
            nf_corr_decay_planar(cs->ring + (size_t)j * cs->plane, cb->frame, h,
                                 w, corr->decay_map, corr->decay, in->width,
                                 in->height);
    }
    for (int j = 0; j < k; j++)
        cb->vals[NF_VALUE_CACHE(j)] =
            cs->ring + (size_t)((cs->head + j) % k) * cs->plane;
    for (int i = 0; i < g->n_nodes; i++)
        run_node(cb, &g->nodes[i]);
    const float *y = apply_offset(cb, cb->vals[g->output], corr, in);
    nf__cpu_image_to_rgb(y, h, w, out);
    push_cache(cs, k, y);
    if (corr != NULL && corr->stab != NULL) /* Operation 4. */
        nf_stab_rows(corr->stab, out, 0, out->height);
    return 0;
}

static int cpu_predict(struct nf_backend *b, struct nf_predict_item *items,
                       int n)
{
    struct cpu_backend *cb = b->context;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (items[i].status < 0)
            continue;
        items[i].status = predict_one(cb, items[i].slot->context, items[i].in,
                                      items[i].out, items[i].corr);
        if (items[i].status < 0 && rc == 0)
            rc = items[i].status;
    }
    return rc;
}

int nf__cpu_run_float(const struct nf_model *m, const float *frame,
                      const float *const *cache, int h, int w, float *out)
{
    int k = m->cache_frames, mult = m->size_multiple;
    if (frame == NULL || out == NULL || (k > 0 && cache == NULL) || h <= 0 ||
        w <= 0 || h % mult != 0 || w % mult != 0 || h > NF_BACKEND_MAX_SIDE ||
        w > NF_BACKEND_MAX_SIDE)
        return NF_EINVAL;
    struct nf_backend b = {.model = m};
    int rc = cpu_init(&b, 0);
    if (rc < 0)
        return rc;
    struct cpu_backend *cb = b.context;
    size_t plane = (size_t)3 * h * w;
    /* The cache is copied so that the kernels only see our own buffers. */
    float *ring = NULL;
    rc = prepare_scratch(cb, h, w);
    if (rc == 0 && k > 0 && (ring = alloc_floats(plane * k)) == NULL)
        rc = NF_ENOMEM;
    if (rc < 0)
        goto fail;
    memcpy(cb->frame, frame, plane * sizeof(float));
    for (int j = 0; j < k; j++) {
        memcpy(ring + j * plane, cache[j], plane * sizeof(float));
        cb->vals[NF_VALUE_CACHE(j)] = ring + j * plane;
    }
    for (int i = 0; i < cb->g->n_nodes; i++)
        run_node(cb, &cb->g->nodes[i]);
    memcpy(out, cb->vals[cb->g->output], plane * sizeof(float));
fail:
    free(ring);
    cpu_free(&b);
    return rc;
}

const struct nf_backend_i nf__backend_cpu = {
    .name = "ref",
    .corrections = 1,
    .stabilizes = 1,
    .available = NULL,
    .supports = NULL,
    .init = cpu_init,
    .free = cpu_free,
    .slot_new = cpu_slot_new,
    .slot_free = cpu_slot_free,
    .slot_reset = cpu_slot_reset,
    .predict = cpu_predict,
};
