/*
 * backend-cuda.cu - the CUDA backend ("cuda"): the table libnf-cuda.so
 * exports, the per-size scratch, the slots and the frame loop.
 *
 * One backend owns one CUDA stream and one cuDNN handle on device 0, the
 * model's weights copied to the device once, the plan (plan.cu) and
 * scratch sized for the padded resolution of the frame at hand: the value
 * pool, the padded input, the reflect-padding buffer, the cuDNN workspace
 * and the corrected output; all grow to the largest resolution seen and are
 * then reused. Each slot owns its ring of K cache frames in device memory.
 *
 * A predict call packs every item's frame (and its correction's map and
 * grid) into one pinned host buffer, enqueues each item's whole pipeline on
 * the stream - upload, conversion, cold fill or decay, the graph, offset,
 * conversion back, download, cache update, exactly the reference's order
 * (kernels/cpu/backend-cpu.c) - and synchronizes once at the end. A CUDA
 * or cuDNN error fails the items it affects with NF_EBACKEND and makes
 * their slots cold; the backend stays usable unless the error is one that
 * poisons the CUDA context (README.md).
 *
 * Nothing here calls into libnf.a: the library is dlopen()ed by binaries
 * that do not export their symbols (kernels/backend-load.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda-impl.cuh"

#define NF_CUDA_EXPORT __attribute__((visibility("default")))

/* Staging areas are aligned to this many bytes. */
#define STAGE_ALIGN 256

/*
 * b->context. Owned by the backend; after init only predict touches it,
 * and backend.h forbids concurrent predict calls on one backend.
 */
struct cuda_backend {
    const struct nf_model *m;
    const struct nf_graph *g;
    int multiple; /* The model's nf.size_multiple. */
    int device;
    cudaStream_t stream;
    cudnnHandle_t dnn;
    float *weights; /* Device copy of the model's tensor arena. */
    struct nf_cuda_plan plan;
    int h, w;    /* Padded size the scratch is set up for; 0 = none. */
    float *pool; /* (n_buffers, stride) floats. */
    size_t pool_cap, stride;
    float *frame; /* (3, h, w): the padded input of the current item. */
    size_t frame_cap;
    float *pad; /* Reflect-padded conv input. */
    size_t pad_cap;
    void *ws; /* cuDNN workspace. */
    size_t ws_cap;
    float *fixed; /* (3, h, w): the output plus a correction's offset. */
    size_t fixed_cap;
    float **vals;  /* (n_values) device data of each value. */
    uint8_t *host; /* Pinned staging of one predict call. */
    size_t host_cap;
    uint8_t *dev; /* Its device mirror. */
    size_t dev_cap;
};

/*
 * s->context. Owned by the slot; touched by predict and by slot_reset and
 * slot_free, which backend.h forbids while a predict call uses the slot.
 */
struct cuda_slot {
    int width, height; /* Input size the ring is sized for; 0 = none yet. */
    int warm;          /* 0: the next frame fills the cache with copies. */
    int head;          /* Ring index of cache.0, the newest frame. */
    float *ring;       /* Device (K, 3, H, W) at the padded size. */
    size_t plane;      /* 3 * H * W floats: one ring entry. */
};

/* Where one item's data sits in the staging buffers (byte offsets). */
struct stage {
    size_t in, out;   /* The 8-bit frame in and out, 3 * width * height. */
    size_t map, grid; /* The correction's decay map and offset grid. */
    size_t end;       /* Where the item's area ends. */
};

void nf__cuda_log(const char *file, int line, const char *call,
                  const char *what)
{
    fprintf(stderr, "nf_cuda: %s:%d: %s: %s\n", file, line, call, what);
}

/* --- Availability. --- */

static char why[256] = "not probed";

static int cuda_available(void)
{
    int n = 0, major = 0, minor = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(why, sizeof why, "no CUDA device (cudaGetDeviceCount: %s)",
                 cudaGetErrorString(e));
        return 0;
    }
    if (n < 1) {
        snprintf(why, sizeof why, "no CUDA device (0 devices)");
        return 0;
    }
    e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
    if (e == cudaSuccess)
        e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor,
                                   0);
    if (e != cudaSuccess) {
        snprintf(why, sizeof why, "CUDA device 0 unusable (%s)",
                 cudaGetErrorString(e));
        return 0;
    }
    if (major < 8) {
        snprintf(why, sizeof why,
                 "CUDA device 0 is sm_%d%d; this build needs sm_80 or newer",
                 major, minor);
        return 0;
    }
    why[0] = '\0';
    return 1;
}

static const char *cuda_unavailable_reason(void)
{
    return why[0] ? why : NULL;
}

/* --- Memory helpers. --- */

/*
 * Makes the device buffer *p hold at least bytes (contents lost, zeroed on
 * stream s). Every copy and memset goes through the backend's stream: it
 * is a non-blocking stream, which the synchronous cudaMemset/cudaMemcpy
 * (legacy default stream) would not be ordered with.
 */
static int dgrow(void **p, size_t *cap, size_t bytes, cudaStream_t s)
{
    int rc = 0;
    if (bytes <= *cap)
        return 0;
    /* cudaFree waits for the work still using the old buffer. */
    if (*p != NULL)
        NF_CUDA_CHECK(cudaFree(*p));
    *p = NULL;
    *cap = 0;
    NF_CUDA_CHECK(cudaMalloc(p, bytes));
    NF_CUDA_CHECK(cudaMemsetAsync(*p, 0, bytes, s));
    *cap = bytes;
    return 0;
fail:
    return rc;
}

static int fgrow(float **p, size_t *cap_floats, size_t floats, cudaStream_t s)
{
    size_t cap = *cap_floats * sizeof(float);
    void *q = *p;
    int rc = dgrow(&q, &cap, floats * sizeof(float), s);
    *p = (float *)q;
    *cap_floats = cap / sizeof(float);
    return rc;
}

/* The same for the pinned host staging buffer. */
static int hgrow(uint8_t **p, size_t *cap, size_t bytes)
{
    int rc = 0;
    if (bytes <= *cap)
        return 0;
    if (*p != NULL)
        NF_CUDA_CHECK(cudaFreeHost(*p));
    *p = NULL;
    *cap = 0;
    NF_CUDA_CHECK(cudaHostAlloc((void **)p, bytes, cudaHostAllocDefault));
    *cap = bytes;
    return 0;
fail:
    return rc;
}

/* --- Init and free. --- */

/* The device copy of model tensor t (NULL for NULL). */
static const float *device_tensor(const void *ctx, const struct nf_tensor *t)
{
    const struct cuda_backend *cb = (const struct cuda_backend *)ctx;
    return t ? cb->weights + (t->data - cb->m->arena) : NULL;
}

/* Floats of the model's arena up to the end of its last tensor. */
static size_t arena_floats(const struct nf_model *m)
{
    size_t end = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        size_t e =
            (size_t)(m->tensors[i].data - m->arena) + m->tensors[i].numel;
        end = e > end ? e : end;
    }
    return end;
}

static void cuda_free(struct nf_backend *b)
{
    struct cuda_backend *cb = (struct cuda_backend *)b->context;
    if (cb == NULL)
        return;
    cudaSetDevice(cb->device);
    if (cb->stream != NULL)
        cudaStreamSynchronize(cb->stream);
    nf__cuda_plan_free(&cb->plan);
    if (cb->dnn != NULL)
        cudnnDestroy(cb->dnn);
    if (cb->stream != NULL)
        cudaStreamDestroy(cb->stream);
    cudaFree(cb->weights);
    cudaFree(cb->pool);
    cudaFree(cb->frame);
    cudaFree(cb->pad);
    cudaFree(cb->ws);
    cudaFree(cb->fixed);
    cudaFree(cb->dev);
    cudaFreeHost(cb->host);
    free(cb->vals);
    free(cb);
    b->context = NULL;
}

static int cuda_init(struct nf_backend *b, int threads)
{
    (void)threads; /* The device does the work; no host threads. */
    const struct nf_model *m = b->model;
    struct cuda_backend *cb =
        (struct cuda_backend *)calloc(1, sizeof(struct cuda_backend));
    size_t floats = arena_floats(m);
    int rc = 0;
    if (cb == NULL)
        return NF_ENOMEM;
    b->context = cb;
    cb->m = m;
    cb->g = &m->graph;
    cb->multiple = m->size_multiple;
    cb->device = 0;
    cb->vals = (float **)calloc((size_t)cb->g->n_values, sizeof(float *));
    if (cb->vals == NULL) {
        rc = NF_ENOMEM;
        goto fail;
    }
    NF_CUDA_CHECK(cudaSetDevice(cb->device));
    NF_CUDA_CHECK(
        cudaStreamCreateWithFlags(&cb->stream, cudaStreamNonBlocking));
    NF_CUDNN_CHECK(cudnnCreate(&cb->dnn));
    NF_CUDNN_CHECK(cudnnSetStream(cb->dnn, cb->stream));
    if (floats > 0) {
        NF_CUDA_CHECK(
            cudaMalloc((void **)&cb->weights, floats * sizeof(float)));
        NF_CUDA_CHECK(cudaMemcpyAsync(cb->weights, m->arena,
                                      floats * sizeof(float),
                                      cudaMemcpyHostToDevice, cb->stream));
        NF_CUDA_CHECK(cudaStreamSynchronize(cb->stream));
    }
    rc = nf__cuda_plan_init(&cb->plan, cb->g, device_tensor, cb);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    cuda_free(b);
    return rc;
}

static int cuda_supports(const struct nf_model *m)
{
    (void)m; /* Every op and attribute of MODEL.md. */
    return 1;
}

/* --- Scratch for one padded size. --- */

static struct nf_cuda_tensor view(const struct cuda_backend *cb, int v)
{
    struct nf_cuda_tensor t = {cb->vals[v], 1, cb->g->values[v].channels, 0, 0};
    nf__cuda_value_size(cb->g, v, cb->h, cb->w, &t.h, &t.w);
    return t;
}

/* Prepares every convolution for padded size h x w; the largest reflect
 * pad buffer (floats) and workspace (bytes) they need. */
static int prepare_convs(struct cuda_backend *cb, int h, int w, size_t *pad,
                         size_t *ws)
{
    const struct nf_graph *g = cb->g;
    *pad = *ws = 0;
    for (int s = 0; s < cb->plan.n_steps; s++) {
        struct nf_cuda_step *st = &cb->plan.steps[s];
        if (st->node->op != NF_OP_CONV2D)
            continue;
        int x = st->node->inputs[0], xh, xw, c = g->values[x].channels;
        nf__cuda_value_size(g, x, h, w, &xh, &xw);
        int rc = nf__cuda_conv_prepare(&st->conv, cb->dnn, 1, c, xh, xw);
        if (rc < 0)
            return rc;
        int p = st->conv.reflect ? st->node->padding : 0;
        size_t need = (size_t)c * (xh + 2 * p) * (xw + 2 * p);
        *pad = st->conv.reflect && need > *pad ? need : *pad;
        *ws = st->conv.ws > *ws ? st->conv.ws : *ws;
    }
    return 0;
}

/* Sizes the pool, frame and workspaces for padded size h x w. */
static int prepare_scratch(struct cuda_backend *cb, int h, int w)
{
    const struct nf_graph *g = cb->g;
    const struct nf_cuda_plan *p = &cb->plan;
    size_t need = 0, pad = 0, ws = 0, plane = (size_t)3 * h * w;
    cudaStream_t s = cb->stream;
    if (h == cb->h && w == cb->w)
        return 0;
    cb->h = cb->w = 0;
    /* Items enqueued before may still use the buffers about to move. */
    cudaError_t e = cudaStreamSynchronize(s);
    if (e != cudaSuccess) {
        nf__cuda_log(__FILE__, __LINE__, "cudaStreamSynchronize",
                     cudaGetErrorString(e));
        return NF_EBACKEND;
    }
    for (int i = 0; i < p->n_steps; i++) {
        int oh, ow, v = p->steps[i].out;
        nf__cuda_value_size(g, v, h, w, &oh, &ow);
        size_t n = (size_t)g->values[v].channels * oh * ow;
        need = n > need ? n : need;
    }
    size_t stride = (need + 63) / 64 * 64;
    int rc = prepare_convs(cb, h, w, &pad, &ws);
    if (rc == 0)
        rc = fgrow(&cb->pool, &cb->pool_cap, stride * p->n_buffers, s);
    if (rc == 0)
        rc = fgrow(&cb->frame, &cb->frame_cap, plane, s);
    if (rc == 0)
        rc = fgrow(&cb->fixed, &cb->fixed_cap, plane, s);
    if (rc == 0)
        rc = fgrow(&cb->pad, &cb->pad_cap, pad, s);
    if (rc == 0)
        rc = dgrow(&cb->ws, &cb->ws_cap, ws, s);
    if (rc < 0)
        return rc; /* cb->h stays 0: try again next frame. */
    cb->stride = stride;
    for (int v = 0; v < g->n_values; v++)
        if (p->buffer_of[v] >= 0)
            cb->vals[v] = cb->pool + (size_t)p->buffer_of[v] * stride;
    cb->vals[NF_VALUE_FRAME] = cb->frame;
    cb->h = h;
    cb->w = w;
    return 0;
}

/* --- The graph. --- */

static int run_step(struct cuda_backend *cb, struct nf_cuda_step *st)
{
    const struct nf_node *n = st->node;
    struct nf_cuda_tensor xs[NF_NODE_MAX_INPUTS];
    struct nf_cuda_tensor y = view(cb, st->out);
    cudaStream_t s = cb->stream;
    cudaError_t e = cudaSuccess;
    for (int k = 0; k < n->n_inputs; k++)
        xs[k] = view(cb, n->inputs[k]);
    switch (n->op) {
    case NF_OP_CONV2D:
        return nf__cuda_conv_run(&st->conv, cb->dnn, s, &xs[0], &y, cb->pad,
                                 cb->ws);
    case NF_OP_ADD:
        e = nf__cuda_add(&xs[0], &xs[1], &y, s);
        break;
    case NF_OP_MUL:
        e = nf__cuda_mul(&xs[0], &xs[1], &y, s);
        break;
    case NF_OP_SCALE_SHIFT:
        e = nf__cuda_scale_shift(device_tensor(cb, n->weight),
                                 device_tensor(cb, n->bias), &xs[0], &y, s);
        break;
    case NF_OP_CONCAT:
        e = nf__cuda_concat(xs, n->n_inputs, &y, s);
        break;
    case NF_OP_UPSAMPLE2X_NEAREST:
        e = nf__cuda_upsample2x_nearest(&xs[0], &y, s);
        break;
    case NF_OP_UPSAMPLE2X_BILINEAR:
        e = nf__cuda_upsample2x_bilinear(&xs[0], &y, s);
        break;
    case NF_OP_AVGPOOL2X2:
        e = nf__cuda_avgpool2x2(&xs[0], &y, s);
        break;
    case NF_OP_INSTANCE_NORM:
        e = nf__cuda_instance_norm(device_tensor(cb, n->weight),
                                   device_tensor(cb, n->bias), n->eps, &xs[0],
                                   &y, s);
        break;
    case NF_OP_PIXEL_SHUFFLE:
        e = nf__cuda_pixel_shuffle(n->factor, &xs[0], &y, s);
        break;
    case NF_OP_PIXEL_UNSHUFFLE:
        e = nf__cuda_pixel_unshuffle(n->factor, &xs[0], &y, s);
        break;
    default: /* relu, leaky_relu, sigmoid, tanh, clamp */
        e = nf__cuda_activation(nf__cuda_act_of(n), &xs[0], &y, s);
        break;
    }
    if (e != cudaSuccess) {
        nf__cuda_log(__FILE__, __LINE__, n->name, cudaGetErrorString(e));
        return NF_EBACKEND;
    }
    return 0;
}

static int run_graph(struct cuda_backend *cb)
{
    for (int s = 0; s < cb->plan.n_steps; s++) {
        int rc = run_step(cb, &cb->plan.steps[s]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* --- Slots. --- */

static int cuda_slot_new(struct nf_backend *b, struct nf_slot *s)
{
    (void)b;
    s->context = calloc(1, sizeof(struct cuda_slot));
    return s->context ? 0 : NF_ENOMEM;
}

static void cuda_slot_free(struct nf_backend *b, struct nf_slot *s)
{
    struct cuda_backend *cb = (struct cuda_backend *)b->context;
    struct cuda_slot *cs = (struct cuda_slot *)s->context;
    if (cs != NULL && cs->ring != NULL) {
        cudaSetDevice(cb->device);
        cudaFree(cs->ring); /* Waits for work that still uses it. */
    }
    free(cs);
    s->context = NULL;
}

static void cuda_slot_reset(struct nf_backend *b, struct nf_slot *s)
{
    (void)b;
    struct cuda_slot *cs = (struct cuda_slot *)s->context;
    cs->warm = 0;
}

/* Sizes the ring for a width x height input (padded h x w); a new size
 * empties the cache. */
static int prepare_slot(struct cuda_slot *cs, int k, int width, int height,
                        int h, int w)
{
    int rc = 0;
    if (width == cs->width && height == cs->height)
        return 0;
    if (cs->ring != NULL)
        NF_CUDA_CHECK(cudaFree(cs->ring));
    cs->ring = NULL;
    cs->width = cs->height = 0;
    cs->warm = 0;
    cs->plane = (size_t)3 * h * w;
    if (k > 0)
        NF_CUDA_CHECK(
            cudaMalloc((void **)&cs->ring, cs->plane * k * sizeof(float)));
    cs->width = width;
    cs->height = height;
    return 0;
fail:
    return rc;
}

/* --- The frame loop. --- */

static size_t align_up(size_t n)
{
    return (n + STAGE_ALIGN - 1) / STAGE_ALIGN * STAGE_ALIGN;
}

/* Lays out item it's staging from *off on, advancing *off. */
static void stage_layout(const struct nf_predict_item *it, size_t *off,
                         struct stage *st)
{
    size_t px = (size_t)it->in->width * it->in->height;
    const struct nf_correction *c = it->corr;
    st->in = *off;
    *off += align_up(3 * px);
    st->out = *off;
    *off += align_up(3 * px);
    st->map = *off;
    if (c != NULL && c->decay_map != NULL)
        *off += align_up(px * sizeof(float));
    st->grid = *off;
    if (c != NULL && c->offset != NULL)
        *off += align_up((size_t)3 * c->grid_w * c->grid_h * sizeof(float));
    st->end = *off;
}

/* Copies the item's frame and correction into the pinned staging. */
static void stage_pack(uint8_t *host, const struct nf_predict_item *it,
                       const struct stage *st)
{
    const struct nf_image *in = it->in;
    const struct nf_correction *c = it->corr;
    size_t row = (size_t)3 * in->width;
    for (int y = 0; y < in->height; y++)
        memcpy(host + st->in + y * row, in->data + (size_t)y * in->stride, row);
    if (c != NULL && c->decay_map != NULL)
        memcpy(host + st->map, c->decay_map,
               (size_t)in->width * in->height * sizeof(float));
    if (c != NULL && c->offset != NULL)
        memcpy(host + st->grid, c->offset,
               (size_t)3 * c->grid_w * c->grid_h * sizeof(float));
}

/* Copies the item's 8-bit output from the staging into its image. */
static void stage_unpack(const uint8_t *host, const struct nf_predict_item *it,
                         const struct stage *st)
{
    const struct nf_image *out = it->out;
    size_t row = (size_t)3 * out->width;
    for (int y = 0; y < out->height; y++)
        memcpy(out->data + (size_t)y * out->stride, host + st->out + y * row,
               row);
}

/* Cold fill, or the correction's decay of a warm cache (correct.h). */
static int cache_before(struct cuda_backend *cb, struct cuda_slot *cs, int k,
                        const struct nf_predict_item *it, const float *map)
{
    const struct nf_correction *c = it->corr;
    int rc = 0;
    if (!cs->warm) {
        for (int j = 0; j < k; j++)
            NF_CUDA_CHECK(cudaMemcpyAsync(
                cs->ring + j * cs->plane, cb->frame, cs->plane * sizeof(float),
                cudaMemcpyDeviceToDevice, cb->stream));
        cs->head = 0;
        cs->warm = 1;
    } else if (c != NULL && (c->decay > 0.0f || c->decay_map != NULL)) {
        NF_CUDA_CHECK(nf__cuda_corr_decay(cs->ring, k, cb->frame, cb->h, cb->w,
                                          map, c->decay, it->in->width,
                                          it->in->height, cb->stream));
    }
    return 0;
fail:
    return rc;
}

/* Offset, conversion to 8 bits, download, and the cache update. */
static int output_after(struct cuda_backend *cb, struct cuda_slot *cs, int k,
                        const struct nf_predict_item *it, const float *grid,
                        uint8_t *out_dev, uint8_t *out_host)
{
    const struct nf_correction *c = it->corr;
    const float *y = cb->vals[cb->g->output];
    int rc = 0, width = it->in->width, height = it->in->height;
    cudaStream_t s = cb->stream;
    if (c != NULL && c->offset != NULL) {
        NF_CUDA_CHECK(nf__cuda_corr_offset(y, cb->fixed, cb->h, cb->w, grid,
                                           c->grid_w, c->grid_h, width, height,
                                           s));
        y = cb->fixed;
    }
    NF_CUDA_CHECK(
        nf__cuda_image_to_rgb(y, cb->h, cb->w, out_dev, width, height, s));
    NF_CUDA_CHECK(cudaMemcpyAsync(out_host, out_dev, (size_t)3 * width * height,
                                  cudaMemcpyDeviceToHost, s));
    if (k > 0) {
        /* y may be the oldest entry itself (output "cache.{K-1}"). */
        int oldest = (cs->head + k - 1) % k;
        NF_CUDA_CHECK(
            nf__cuda_clamp01(y, cs->ring + oldest * cs->plane, cs->plane, s));
        cs->head = oldest;
    }
    return 0;
fail:
    return rc;
}

/* Enqueues one item's whole pipeline; nothing waits for the device. */
static int enqueue_item(struct cuda_backend *cb,
                        const struct nf_predict_item *it,
                        const struct stage *st)
{
    struct cuda_slot *cs = (struct cuda_slot *)it->slot->context;
    const struct nf_correction *c = it->corr;
    int k = cb->g->cache_frames, m = cb->multiple, rc = 0;
    int width = it->in->width, height = it->in->height;
    int h = (height + m - 1) / m * m, w = (width + m - 1) / m * m;
    const float *map = c && c->decay_map ? (float *)(cb->dev + st->map) : NULL;
    const float *grid = c && c->offset ? (float *)(cb->dev + st->grid) : NULL;
    rc = prepare_scratch(cb, h, w);
    if (rc == 0)
        rc = prepare_slot(cs, k, width, height, h, w);
    if (rc < 0)
        return rc;
    stage_pack(cb->host, it, st);
    /* Uploads: the frame, then the correction's map and grid if any. */
    NF_CUDA_CHECK(cudaMemcpyAsync(cb->dev + st->in, cb->host + st->in,
                                  st->out - st->in, cudaMemcpyHostToDevice,
                                  cb->stream));
    if (st->end > st->map)
        NF_CUDA_CHECK(cudaMemcpyAsync(cb->dev + st->map, cb->host + st->map,
                                      st->end - st->map, cudaMemcpyHostToDevice,
                                      cb->stream));
    NF_CUDA_CHECK(nf__cuda_image_from_rgb(cb->dev + st->in, width, height,
                                          cb->frame, h, w, cb->stream));
    rc = cache_before(cb, cs, k, it, map);
    if (rc < 0)
        return rc;
    for (int j = 0; j < k; j++)
        cb->vals[NF_VALUE_CACHE(j)] =
            cs->ring + (size_t)((cs->head + j) % k) * cs->plane;
    rc = run_graph(cb);
    if (rc == 0)
        rc = output_after(cb, cs, k, it, grid, cb->dev + st->out,
                          cb->host + st->out);
    return rc;
fail:
    return rc;
}

/* Marks an item failed: its slot restarts cold (its cache may be torn). */
static void fail_item(struct nf_predict_item *it, int rc)
{
    struct cuda_slot *cs = (struct cuda_slot *)it->slot->context;
    it->status = rc;
    cs->warm = 0;
}

/* Sizes the staging for the valid items; their layouts into st. */
static int stage_all(struct cuda_backend *cb,
                     const struct nf_predict_item *items, int n,
                     struct stage *st)
{
    size_t off = 0;
    int rc = 0;
    for (int i = 0; i < n; i++)
        if (items[i].status == 0)
            stage_layout(&items[i], &off, &st[i]);
    rc = hgrow(&cb->host, &cb->host_cap, off);
    if (rc == 0) {
        void *d = cb->dev;
        rc = dgrow(&d, &cb->dev_cap, off, cb->stream);
        cb->dev = (uint8_t *)d;
    }
    return rc;
}

/*
 * Items with status 0 are valid (backend.c checked them). Each is enqueued
 * and marked pending (status 1); one synchronization at the end settles
 * every pending item at once.
 */
static int cuda_predict(struct nf_backend *b, struct nf_predict_item *items,
                        int n)
{
    struct cuda_backend *cb = (struct cuda_backend *)b->context;
    struct stage *st = (struct stage *)calloc((size_t)n, sizeof *st);
    int rc = st == NULL ? NF_ENOMEM : 0, first = 0;
    cudaError_t e = cudaSuccess;
    if (rc == 0 && (e = cudaSetDevice(cb->device)) != cudaSuccess)
        rc = NF_EBACKEND;
    if (rc == 0)
        rc = stage_all(cb, items, n, st);
    for (int i = 0; i < n; i++) {
        if (items[i].status != 0)
            continue;
        int r = rc < 0 ? rc : enqueue_item(cb, &items[i], &st[i]);
        if (r < 0) {
            fail_item(&items[i], r);
            cudaGetLastError(); /* Clear a non-sticky error. */
        } else {
            items[i].status = 1;
        }
    }
    if (rc == 0 && (e = cudaStreamSynchronize(cb->stream)) != cudaSuccess) {
        nf__cuda_log(__FILE__, __LINE__, "cudaStreamSynchronize",
                     cudaGetErrorString(e));
        cudaGetLastError();
    }
    for (int i = 0; i < n; i++) {
        if (items[i].status == 1 && e != cudaSuccess)
            fail_item(&items[i], NF_EBACKEND);
        else if (items[i].status == 1) {
            stage_unpack(cb->host, &items[i], &st[i]);
            items[i].status = 0;
        }
        if (items[i].status < 0 && first == 0)
            first = items[i].status;
    }
    free(st);
    return first;
}

/* --- Test hook and the exported table. --- */

extern "C" {
/*
 * The same contract as nf__cpu_run_float (backend-impl.h): runs m's graph
 * once on float inputs, (3, h, w) planar host arrays, with no padding,
 * clamping, rounding or cache update. For tests (tests/test-backend-cuda.c
 * resolves it with dlsym). Returns 0, NF_EINVAL, NF_ENOMEM or NF_EBACKEND.
 */
NF_CUDA_EXPORT int nf__cuda_run_float(const struct nf_model *m,
                                      const float *frame,
                                      const float *const *cache, int h, int w,
                                      float *out);
NF_CUDA_EXPORT extern const struct nf_backend_i nf_cuda_backend;
}

/* Uploads frame and cache, runs the graph, downloads the output. */
static int run_float_on(struct cuda_backend *cb, const float *frame,
                        const float *const *cache, int h, int w, float *out,
                        float *ring)
{
    size_t plane = (size_t)3 * h * w;
    cudaStream_t s = cb->stream;
    int k = cb->g->cache_frames, rc = prepare_scratch(cb, h, w);
    if (rc < 0)
        return rc;
    /* Pageable copies, but on the stream, so ordered with the graph. */
    NF_CUDA_CHECK(cudaMemcpyAsync(cb->frame, frame, plane * sizeof(float),
                                  cudaMemcpyHostToDevice, s));
    for (int j = 0; j < k; j++) {
        NF_CUDA_CHECK(cudaMemcpyAsync(ring + j * plane, cache[j],
                                      plane * sizeof(float),
                                      cudaMemcpyHostToDevice, s));
        cb->vals[NF_VALUE_CACHE(j)] = ring + j * plane;
    }
    rc = run_graph(cb);
    if (rc < 0)
        return rc;
    NF_CUDA_CHECK(cudaMemcpyAsync(out, cb->vals[cb->g->output],
                                  plane * sizeof(float), cudaMemcpyDeviceToHost,
                                  s));
    NF_CUDA_CHECK(cudaStreamSynchronize(s));
    return 0;
fail:
    return rc;
}

int nf__cuda_run_float(const struct nf_model *m, const float *frame,
                       const float *const *cache, int h, int w, float *out)
{
    int k = m->cache_frames, mult = m->size_multiple, rc = 0;
    struct nf_backend b;
    float *ring = NULL;
    if (frame == NULL || out == NULL || (k > 0 && cache == NULL) || h <= 0 ||
        w <= 0 || h % mult != 0 || w % mult != 0 || h > NF_BACKEND_MAX_SIDE ||
        w > NF_BACKEND_MAX_SIDE)
        return NF_EINVAL;
    memset(&b, 0, sizeof b);
    b.model = m;
    rc = cuda_init(&b, 0);
    if (rc < 0)
        return rc;
    if (k > 0)
        NF_CUDA_CHECK(
            cudaMalloc((void **)&ring, (size_t)3 * h * w * k * sizeof(float)));
    rc = run_float_on((struct cuda_backend *)b.context, frame, cache, h, w, out,
                      ring);
fail:
    cudaFree(ring);
    cuda_free(&b);
    return rc;
}

const struct nf_backend_i nf_cuda_backend = {
    .name = "cuda",
    .corrections = 1,
    .available = cuda_available,
    .unavailable_reason = cuda_unavailable_reason,
    .supports = cuda_supports,
    .init = cuda_init,
    .free = cuda_free,
    .slot_new = cuda_slot_new,
    .slot_free = cuda_slot_free,
    .slot_reset = cuda_slot_reset,
    .predict = cuda_predict,
};
