/*
 * backend-cuda.cu - the CUDA backend ("cuda"): the table libnf-cuda.so
 * exports, the per-size scratch, the slots and the frame loop.
 *
 * One backend owns one CUDA stream and one cuDNN handle on device 0, the
 * model's weights copied to the device once, the plan (plan.cu) and
 * scratch for one batched pass: the value pool, the batch's input frames
 * and cache entries, the reflect-padding buffer, the cuDNN workspace and
 * the corrected outputs; all grow to the largest size and batch seen and
 * are then reused, so their addresses stay put. Each slot owns its ring of
 * K cache frames in device memory.
 *
 * A predict call packs every item's frame (and its correction's map and
 * grid) into one pinned host buffer and uploads it at once. Items of the
 * same padded size, up to MAX_PASS of them, then share one forward pass of
 * batch N: each item's frame is converted into its place in the batch, its
 * ring is filled cold or decayed (correct.h) and gathered into the batch's
 * cache tensors, the graph runs once on (N, C, H, W) values - replayed
 * from a CUDA graph once that batch and size has been seen twice - and
 * each item's output gets its offset, is converted back, downloaded and
 * clamped into its ring: the reference's order per item
 * (kernels/cpu/backend-cpu.c). One synchronization at the end. A CUDA or
 * cuDNN error fails the items it affects with NF_EBACKEND and makes their
 * slots cold; the backend stays usable unless the error is one that
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

/* Items in one batched forward pass; more run as several passes. */
#define MAX_PASS 16

/* Captured forward passes kept, one per (batch, padded size). */
#define MAX_GRAPHS 16

/*
 * A forward pass for batch n at padded size h x w: seen once (exec NULL;
 * the next one is captured) or captured. Owned by the backend.
 */
struct pass_graph {
    int n, h, w;
    cudaGraphExec_t exec;
    long used; /* The pass counter when last used (least recent goes). */
};

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
    /* Capacities: items, floats per item of a pool buffer, of a frame
     * plane (3 * h * w), of the reflect-padding buffer. Only grow. */
    int cap_n;
    size_t stride, plane_cap, pad_item;
    float *pool;  /* (n_buffers, cap_n, stride) floats. */
    float *frame; /* (cap_n, plane_cap): the batch's padded inputs. */
    float *cache; /* (K, cap_n, plane_cap): the batch's cache entries. */
    float *fixed; /* (cap_n, plane_cap): outputs plus their offsets. */
    float *pad;   /* (cap_n, pad_item): reflect-padded conv input. */
    void *ws;     /* cuDNN workspace. */
    size_t ws_cap;
    int dn, dh, dw; /* Batch and size the conv descriptors are for. */
    float **vals;   /* (n_values) device data of each value. */
    /* CUDA graphs (NF_CUDA_GRAPHS=0: off), the conv math, timed algorithm
     * choice (NF_CUDA_FIND=1) and per-step timing (NF_CUDA_PROFILE=1). */
    int graphs, half, find, profile;
    long fault_every;  /* NF_CUDA_FAULT: every Nth pass fails; 0 never. */
    cudaEvent_t ev[2]; /* Profile: around each step. */
    double *prof_ms;   /* Profile: (n_steps) total time of each step. */
    long prof_passes, prof_items;
    struct pass_graph graph[MAX_GRAPHS];
    int n_graphs;
    struct nf_cuda_stats stats;
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
    /* The caller's own page-locked memory (nf_backend_host_alloc), moved
     * without the staging copy; NULL: through the staging. */
    const uint8_t *src_in;
    uint8_t *dst_out;
    const float *src_map;
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

/* Destroys every captured pass (their buffers moved, or the end). */
static void drop_graphs(struct cuda_backend *cb)
{
    for (int i = 0; i < cb->n_graphs; i++)
        if (cb->graph[i].exec != NULL)
            cudaGraphExecDestroy(cb->graph[i].exec);
    cb->n_graphs = 0;
}

/* NF_CUDA_PROFILE=1: each step's share of the passes, on stderr. */
static void print_profile(const struct cuda_backend *cb)
{
    double total = 0;
    if (cb->prof_ms == NULL || cb->prof_passes == 0)
        return;
    for (int s = 0; s < cb->plan.n_steps; s++)
        total += cb->prof_ms[s];
    fprintf(stderr,
            "nf_cuda profile: %ld passes, mean batch %.2f, %.3f ms a pass\n",
            cb->prof_passes, (double)cb->prof_items / cb->prof_passes,
            total / cb->prof_passes);
    for (int s = 0; s < cb->plan.n_steps; s++) {
        const struct nf_cuda_step *st = &cb->plan.steps[s];
        int conv = st->node->op == NF_OP_CONV2D;
        fprintf(stderr, "nf_cuda profile:   %-16s %8.1f us %5.1f %%%s%s%s\n",
                st->node->name, 1000.0 * cb->prof_ms[s] / cb->prof_passes,
                total > 0 ? 100.0 * cb->prof_ms[s] / total : 0.0,
                conv ? " conv" : "",
                conv && st->conv.tensor_op ? " tensor" : "",
                conv && st->conv.reflect ? " reflect" : "");
    }
}

/* Flag `name` of the environment: dflt if unset or empty, else 0 for "0"
 * and 1 for anything else. */
static int env_flag(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v == NULL || *v == '\0' ? dflt : strcmp(v, "0") != 0;
}

static void cuda_free(struct nf_backend *b)
{
    struct cuda_backend *cb = (struct cuda_backend *)b->context;
    if (cb == NULL)
        return;
    cudaSetDevice(cb->device);
    if (cb->stream != NULL)
        cudaStreamSynchronize(cb->stream);
    print_profile(cb); /* Names its steps: before the plan goes. */
    drop_graphs(cb);
    nf__cuda_plan_free(&cb->plan);
    if (cb->dnn != NULL)
        cudnnDestroy(cb->dnn);
    if (cb->stream != NULL)
        cudaStreamDestroy(cb->stream);
    for (int i = 0; i < 2; i++)
        if (cb->ev[i] != NULL)
            cudaEventDestroy(cb->ev[i]);
    free(cb->prof_ms);
    cudaFree(cb->weights);
    cudaFree(cb->pool);
    cudaFree(cb->frame);
    cudaFree(cb->cache);
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
    cb->graphs = env_flag("NF_CUDA_GRAPHS", 1);
    cb->half = env_flag("NF_CUDA_HALF", 0);
    cb->find = env_flag("NF_CUDA_FIND", 0);
    cb->profile = env_flag("NF_CUDA_PROFILE", 0);
    cb->fault_every =
        getenv("NF_CUDA_FAULT") ? strtol(getenv("NF_CUDA_FAULT"), NULL, 10) : 0;
    if (cb->profile)
        cb->graphs = 0; /* Steps are timed one by one. */
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
    rc = nf__cuda_plan_init(&cb->plan, cb->g, device_tensor, cb, cb->half);
    if (rc < 0)
        goto fail;
    if (cb->profile) {
        cb->prof_ms =
            (double *)calloc((size_t)cb->plan.n_steps, sizeof(double));
        if (cb->prof_ms == NULL) {
            rc = NF_ENOMEM;
            goto fail;
        }
        NF_CUDA_CHECK(cudaEventCreate(&cb->ev[0]));
        NF_CUDA_CHECK(cudaEventCreate(&cb->ev[1]));
    }
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

/* --- Scratch for one batched pass. --- */

/* Floats per item that the largest step output at padded h x w needs, and
 * the largest reflect-padded conv input. */
static void item_needs(const struct cuda_backend *cb, int h, int w,
                       size_t *stride, size_t *pad)
{
    const struct nf_graph *g = cb->g;
    *stride = *pad = 0;
    for (int i = 0; i < cb->plan.n_steps; i++) {
        const struct nf_cuda_step *st = &cb->plan.steps[i];
        int oh, ow, v = st->out;
        nf__cuda_value_size(g, v, h, w, &oh, &ow);
        size_t n = (size_t)g->values[v].channels * oh * ow;
        *stride = n > *stride ? n : *stride;
        if (st->node->op == NF_OP_CONV2D && st->conv.reflect) {
            int x = st->node->inputs[0], xh, xw, p = st->node->padding;
            nf__cuda_value_size(g, x, h, w, &xh, &xw);
            n = (size_t)g->values[x].channels * (xh + 2 * p) * (xw + 2 * p);
            *pad = n > *pad ? n : *pad;
        }
    }
    *stride = (*stride + 63) / 64 * 64;
}

/* The device data of every value for the buffers as they are now. */
static void bind_values(struct cuda_backend *cb)
{
    const struct nf_cuda_plan *p = &cb->plan;
    size_t buffer = (size_t)cb->cap_n * cb->stride;
    for (int v = 0; v < cb->g->n_values; v++)
        if (p->buffer_of[v] >= 0)
            cb->vals[v] = cb->pool + (size_t)p->buffer_of[v] * buffer;
    cb->vals[NF_VALUE_FRAME] = cb->frame;
    for (int j = 0; j < cb->g->cache_frames; j++)
        cb->vals[NF_VALUE_CACHE(j)] =
            cb->cache + (size_t)j * cb->cap_n * cb->plane_cap;
}

/*
 * Makes the buffers hold a pass of n items at padded h x w. They only
 * grow, to the largest of each dimension seen, so a pass of a size or
 * batch seen before finds them where it left them (and its captured graph
 * valid); growing drops every captured graph.
 */
static int prepare_buffers(struct cuda_backend *cb, int n, int h, int w)
{
    size_t stride, pad, plane = (size_t)3 * h * w;
    int k = cb->g->cache_frames, rc = 0;
    cudaStream_t s = cb->stream;
    item_needs(cb, h, w, &stride, &pad);
    if (n <= cb->cap_n && stride <= cb->stride && plane <= cb->plane_cap &&
        pad <= cb->pad_item)
        return 0;
    drop_graphs(cb);
    cb->cap_n = n > cb->cap_n ? n : cb->cap_n;
    cb->stride = stride > cb->stride ? stride : cb->stride;
    cb->plane_cap = plane > cb->plane_cap ? plane : cb->plane_cap;
    cb->pad_item = pad > cb->pad_item ? pad : cb->pad_item;
    size_t items = (size_t)cb->cap_n, pool = 0, frame = 0, cache = 0, fixed = 0,
           padf = 0;
    /* The frees in fgrow wait for work that still uses the old buffers. */
    rc = fgrow(&cb->pool, &pool,
               (size_t)cb->plan.n_buffers * items * cb->stride, s);
    if (rc == 0)
        rc = fgrow(&cb->frame, &frame, items * cb->plane_cap, s);
    if (rc == 0 && k > 0)
        rc = fgrow(&cb->cache, &cache, (size_t)k * items * cb->plane_cap, s);
    if (rc == 0)
        rc = fgrow(&cb->fixed, &fixed, items * cb->plane_cap, s);
    if (rc == 0)
        rc = fgrow(&cb->pad, &padf, items * cb->pad_item, s);
    if (rc < 0) {
        /* Nothing may point at half-grown buffers: start over next time. */
        cb->cap_n = 0;
        cb->stride = cb->plane_cap = cb->pad_item = 0;
        cb->dn = 0;
        return rc;
    }
    bind_values(cb);
    return 0;
}

/* Prepares every convolution's descriptors and algorithm for a pass of n
 * at padded h x w, and the workspace they need. */
static int prepare_convs(struct cuda_backend *cb, int n, int h, int w)
{
    const struct nf_graph *g = cb->g;
    size_t ws = 0;
    int rc = 0;
    if (n == cb->dn && h == cb->dh && w == cb->dw)
        return 0;
    cb->dn = 0;
    cb->stats.convs = cb->stats.tensor_ops = 0;
    for (int i = 0; i < cb->plan.n_steps && rc == 0; i++) {
        struct nf_cuda_step *st = &cb->plan.steps[i];
        if (st->node->op != NF_OP_CONV2D)
            continue;
        int x = st->node->inputs[0], xh, xw;
        nf__cuda_value_size(g, x, h, w, &xh, &xw);
        rc = nf__cuda_conv_prepare(&st->conv, cb->dnn, n, g->values[x].channels,
                                   xh, xw, cb->find);
        ws = st->conv.ws > ws ? st->conv.ws : ws;
        cb->stats.convs++;
        cb->stats.tensor_ops += st->conv.tensor_op;
    }
    if (rc == 0 && ws > cb->ws_cap) {
        drop_graphs(cb); /* They point at the old workspace. */
        rc = dgrow(&cb->ws, &cb->ws_cap, ws, cb->stream);
    }
    if (rc < 0)
        return rc;
    cb->dn = n;
    cb->dh = h;
    cb->dw = w;
    return 0;
}

/* --- The graph. --- */

/* Value v as a tensor of the pass at hand (n items at padded h x w). */
static struct nf_cuda_tensor view(const struct cuda_backend *cb, int v, int n,
                                  int h, int w)
{
    struct nf_cuda_tensor t = {cb->vals[v], n, cb->g->values[v].channels, 0, 0};
    nf__cuda_value_size(cb->g, v, h, w, &t.h, &t.w);
    return t;
}

static int run_step(struct cuda_backend *cb, struct nf_cuda_step *st, int nb,
                    int h, int w)
{
    const struct nf_node *n = st->node;
    struct nf_cuda_tensor xs[NF_NODE_MAX_INPUTS];
    struct nf_cuda_tensor y = view(cb, st->out, nb, h, w);
    cudaStream_t s = cb->stream;
    cudaError_t e = cudaSuccess;
    for (int k = 0; k < n->n_inputs; k++)
        xs[k] = view(cb, n->inputs[k], nb, h, w);
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

/* Enqueues the graph's steps for n items at padded h x w (the descriptors
 * must be prepared for it). */
static int run_steps(struct cuda_backend *cb, int n, int h, int w)
{
    float ms = 0;
    for (int s = 0; s < cb->plan.n_steps; s++) {
        if (cb->prof_ms != NULL)
            cudaEventRecord(cb->ev[0], cb->stream);
        int rc = run_step(cb, &cb->plan.steps[s], n, h, w);
        if (rc < 0)
            return rc;
        if (cb->prof_ms != NULL &&
            cudaEventRecord(cb->ev[1], cb->stream) == cudaSuccess &&
            cudaEventSynchronize(cb->ev[1]) == cudaSuccess &&
            cudaEventElapsedTime(&ms, cb->ev[0], cb->ev[1]) == cudaSuccess)
            cb->prof_ms[s] += ms;
    }
    if (cb->prof_ms != NULL) {
        cb->prof_passes++;
        cb->prof_items += n;
    }
    return 0;
}

static __global__ void fault_kernel(void)
{
}

/*
 * NF_CUDA_FAULT=N: every Nth pass fails with a genuine CUDA error - a
 * launch with no threads, which the runtime refuses (CUDA 13: "invalid
 * argument") without poisoning the context - handled like any other: logged,
 * the pass's items fail with NF_EBACKEND, their slots restart cold. For the
 * tests of that path.
 */
static int inject_fault(struct cuda_backend *cb)
{
    fault_kernel<<<1, 0, 0, cb->stream>>>();
    cudaError_t err = cudaGetLastError();
    nf__cuda_log(__FILE__, __LINE__, "NF_CUDA_FAULT pass",
                 cudaGetErrorString(err));
    return NF_EBACKEND;
}

/* The captured-pass entry for (n, h, w), or NULL. */
static struct pass_graph *find_graph(struct cuda_backend *cb, int n, int h,
                                     int w)
{
    for (int i = 0; i < cb->n_graphs; i++)
        if (cb->graph[i].n == n && cb->graph[i].h == h && cb->graph[i].w == w)
            return &cb->graph[i];
    return NULL;
}

/* A new entry for (n, h, w), evicting the least recently used if full. */
static struct pass_graph *add_graph(struct cuda_backend *cb, int n, int h,
                                    int w)
{
    struct pass_graph *e = &cb->graph[0];
    if (cb->n_graphs < MAX_GRAPHS) {
        e = &cb->graph[cb->n_graphs++];
    } else {
        for (int i = 1; i < MAX_GRAPHS; i++)
            if (cb->graph[i].used < e->used)
                e = &cb->graph[i];
        if (e->exec != NULL)
            cudaGraphExecDestroy(e->exec);
    }
    *e = (struct pass_graph){n, h, w, NULL, cb->stats.passes};
    return e;
}

/*
 * Captures the steps of (n, h, w) into e->exec; on any failure logs it,
 * turns graphs off for this backend and returns 1 (nothing was enqueued:
 * the caller runs the steps directly), else 0.
 */
static int capture(struct cuda_backend *cb, struct pass_graph *e, int n, int h,
                   int w)
{
    cudaGraph_t graph = NULL;
    cudaError_t err =
        cudaStreamBeginCapture(cb->stream, cudaStreamCaptureModeThreadLocal);
    int rc = err == cudaSuccess ? run_steps(cb, n, h, w) : NF_EBACKEND;
    if (err == cudaSuccess) {
        cudaError_t end = cudaStreamEndCapture(cb->stream, &graph);
        err = end != cudaSuccess ? end : rc < 0 ? cudaErrorUnknown : err;
    }
    if (err == cudaSuccess)
        err = cudaGraphInstantiate(&e->exec, graph, 0);
    if (graph != NULL)
        cudaGraphDestroy(graph);
    if (err == cudaSuccess) {
        cb->stats.captures++;
        return 0;
    }
    nf__cuda_log(__FILE__, __LINE__, "capturing the forward pass",
                 rc < 0 ? "a step failed; CUDA graphs off"
                        : cudaGetErrorString(err));
    cudaGetLastError(); /* Capture errors are not sticky. */
    e->exec = NULL;
    drop_graphs(cb);
    cb->graphs = 0;
    return 1;
}

/*
 * The forward pass of n items at padded h x w on the bound buffers: the
 * first time a (n, h, w) is seen its steps run directly (cuDNN settles
 * its choices), the second time they are captured as a CUDA graph, and
 * from then on the graph is replayed. Returns 0 or NF_EBACKEND.
 */
static int run_pass(struct cuda_backend *cb, int n, int h, int w)
{
    struct pass_graph *e = cb->graphs ? find_graph(cb, n, h, w) : NULL;
    int rc = 0;
    cb->stats.passes++;
    cb->stats.items += n;
    if (cb->fault_every > 0 && cb->stats.passes % cb->fault_every == 0)
        return inject_fault(cb);
    if (e == NULL || e->exec == NULL) {
        rc = prepare_convs(cb, n, h, w); /* May drop the graphs (and e). */
        e = cb->graphs ? find_graph(cb, n, h, w) : NULL;
        if (rc < 0)
            return rc;
        if (e == NULL) {
            if (cb->graphs)
                add_graph(cb, n, h, w);
            return run_steps(cb, n, h, w);
        }
        if (capture(cb, e, n, h, w) != 0)
            return run_steps(cb, n, h, w);
    } else {
        cb->stats.replays++;
    }
    e->used = cb->stats.passes;
    cudaError_t err = cudaGraphLaunch(e->exec, cb->stream);
    if (err != cudaSuccess) {
        nf__cuda_log(__FILE__, __LINE__, "cudaGraphLaunch",
                     cudaGetErrorString(err));
        return NF_EBACKEND;
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

/* 1 if host memory p is page-locked (nf_backend_host_alloc's, say). */
static int pinned(const void *p)
{
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError(); /* Not an error: just not ours. */
        return 0;
    }
    return a.type == cudaMemoryTypeHost;
}

/* Lays out item it's staging from *off on, advancing *off; notes what can
 * move straight from or to the caller's memory. */
static void stage_layout(const struct nf_predict_item *it, size_t *off,
                         struct stage *st)
{
    size_t px = (size_t)it->in->width * it->in->height;
    const struct nf_correction *c = it->corr;
    int dense_in = it->in->stride == 3 * it->in->width;
    int dense_out = it->out->stride == 3 * it->out->width;
    st->src_in = dense_in && pinned(it->in->data) ? it->in->data : NULL;
    st->dst_out = dense_out && pinned(it->out->data) ? it->out->data : NULL;
    st->src_map = c != NULL && c->decay_map != NULL && pinned(c->decay_map)
                      ? c->decay_map
                      : NULL;
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

/* Copies into the pinned staging what cannot move from the caller's
 * memory directly: the frame, the decay map, the offset grid. */
static void stage_pack(uint8_t *host, const struct nf_predict_item *it,
                       const struct stage *st)
{
    const struct nf_image *in = it->in;
    const struct nf_correction *c = it->corr;
    size_t row = (size_t)3 * in->width;
    for (int y = 0; st->src_in == NULL && y < in->height; y++)
        memcpy(host + st->in + y * row, in->data + (size_t)y * in->stride, row);
    if (c != NULL && c->decay_map != NULL && st->src_map == NULL)
        memcpy(host + st->map, c->decay_map,
               (size_t)in->width * in->height * sizeof(float));
    if (c != NULL && c->offset != NULL)
        memcpy(host + st->grid, c->offset,
               (size_t)3 * c->grid_w * c->grid_h * sizeof(float));
}

/* Enqueues the item's uploads, each from the caller's memory or from the
 * staging. */
static int stage_upload(struct cuda_backend *cb,
                        const struct nf_predict_item *it,
                        const struct stage *st)
{
    size_t px = (size_t)it->in->width * it->in->height;
    const struct nf_correction *c = it->corr;
    int rc = 0;
    cudaStream_t s = cb->stream;
    NF_CUDA_CHECK(cudaMemcpyAsync(cb->dev + st->in,
                                  st->src_in ? st->src_in : cb->host + st->in,
                                  3 * px, cudaMemcpyHostToDevice, s));
    cb->stats.direct += st->src_in != NULL;
    if (c != NULL && c->decay_map != NULL)
        NF_CUDA_CHECK(cudaMemcpyAsync(
            cb->dev + st->map,
            st->src_map ? (const void *)st->src_map : cb->host + st->map,
            px * sizeof(float), cudaMemcpyHostToDevice, s));
    if (c != NULL && c->offset != NULL)
        NF_CUDA_CHECK(
            cudaMemcpyAsync(cb->dev + st->grid, cb->host + st->grid,
                            (size_t)3 * c->grid_w * c->grid_h * sizeof(float),
                            cudaMemcpyHostToDevice, s));
    return 0;
fail:
    return rc;
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

/* The item's padded size. */
static void padded(const struct cuda_backend *cb,
                   const struct nf_predict_item *it, int *h, int *w)
{
    int m = cb->multiple;
    *h = (it->in->height + m - 1) / m * m;
    *w = (it->in->width + m - 1) / m * m;
}

/*
 * Before the pass, for the item at batch position i: its frame into the
 * batch, the cold fill or the correction's decay of its ring (correct.h),
 * and its cache entries gathered into the batch's cache tensors.
 */
static int item_before(struct cuda_backend *cb, struct nf_predict_item *it,
                       const struct stage *st, int i, int h, int w)
{
    struct cuda_slot *cs = (struct cuda_slot *)it->slot->context;
    const struct nf_correction *c = it->corr;
    int k = cb->g->cache_frames, rc = 0;
    size_t plane = (size_t)3 * h * w;
    float *frame = cb->frame + i * plane;
    cudaStream_t s = cb->stream;
    rc = prepare_slot(cs, k, it->in->width, it->in->height, h, w);
    if (rc < 0)
        return rc;
    NF_CUDA_CHECK(nf__cuda_image_from_rgb(cb->dev + st->in, it->in->width,
                                          it->in->height, frame, h, w, s));
    if (!cs->warm) {
        for (int j = 0; j < k; j++)
            NF_CUDA_CHECK(cudaMemcpyAsync(cs->ring + j * plane, frame,
                                          plane * sizeof(float),
                                          cudaMemcpyDeviceToDevice, s));
        cs->head = 0;
        cs->warm = 1;
    } else if (c != NULL && (c->decay > 0.0f || c->decay_map != NULL)) {
        const float *map = c->decay_map ? (float *)(cb->dev + st->map) : NULL;
        NF_CUDA_CHECK(nf__cuda_corr_decay(cs->ring, k, frame, h, w, map,
                                          c->decay, it->in->width,
                                          it->in->height, s));
    }
    for (int j = 0; j < k; j++)
        NF_CUDA_CHECK(cudaMemcpyAsync(
            cb->vals[NF_VALUE_CACHE(j)] + i * plane,
            cs->ring + (size_t)((cs->head + j) % k) * plane,
            plane * sizeof(float), cudaMemcpyDeviceToDevice, s));
    return 0;
fail:
    return rc;
}

/* After the pass: the item's offset, conversion to 8 bits, download, and
 * the cache update. */
static int item_after(struct cuda_backend *cb, struct nf_predict_item *it,
                      const struct stage *st, int i, int h, int w)
{
    struct cuda_slot *cs = (struct cuda_slot *)it->slot->context;
    const struct nf_correction *c = it->corr;
    size_t plane = (size_t)3 * h * w;
    const float *y = cb->vals[cb->g->output] + i * plane;
    int rc = 0, k = cb->g->cache_frames;
    int width = it->in->width, height = it->in->height;
    cudaStream_t s = cb->stream;
    if (c != NULL && c->offset != NULL) {
        float *fixed = cb->fixed + i * plane;
        NF_CUDA_CHECK(
            nf__cuda_corr_offset(y, fixed, h, w, (float *)(cb->dev + st->grid),
                                 c->grid_w, c->grid_h, width, height, s));
        y = fixed;
    }
    NF_CUDA_CHECK(
        nf__cuda_image_to_rgb(y, h, w, cb->dev + st->out, width, height, s));
    NF_CUDA_CHECK(cudaMemcpyAsync(
        st->dst_out ? st->dst_out : cb->host + st->out, cb->dev + st->out,
        (size_t)3 * width * height, cudaMemcpyDeviceToHost, s));
    if (k > 0) {
        int oldest = (cs->head + k - 1) % k;
        NF_CUDA_CHECK(nf__cuda_clamp01(y, cs->ring + oldest * plane, plane, s));
        cs->head = oldest;
    }
    return 0;
fail:
    return rc;
}

/* Marks an item failed: its slot restarts cold (its cache may be torn). */
static void fail_item(struct nf_predict_item *it, int rc)
{
    struct cuda_slot *cs = (struct cuda_slot *)it->slot->context;
    it->status = rc;
    cs->warm = 0;
    cudaGetLastError(); /* Clear a non-sticky error. */
}

/*
 * One batched pass over the n items of group (all of padded size h x w,
 * status 0): each marked pending (status 1) unless it fails.
 */
static void enqueue_pass(struct cuda_backend *cb, struct nf_predict_item *items,
                         const struct stage *st, const int *group, int n, int h,
                         int w)
{
    int rc = prepare_buffers(cb, n, h, w);
    for (int i = 0; i < n && rc == 0; i++) {
        struct nf_predict_item *it = &items[group[i]];
        int r = item_before(cb, it, &st[group[i]], i, h, w);
        if (r < 0)
            fail_item(it, r); /* Its batch position computes garbage. */
    }
    if (rc == 0)
        rc = run_pass(cb, n, h, w);
    for (int i = 0; i < n; i++) {
        struct nf_predict_item *it = &items[group[i]];
        int r = rc;
        if (it->status != 0)
            continue;
        if (r == 0)
            r = item_after(cb, it, &st[group[i]], i, h, w);
        if (r < 0)
            fail_item(it, r);
        else
            it->status = 1;
    }
}

/* Sizes the staging for the valid items, lays them out into st, packs what
 * must be packed and enqueues the uploads. */
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
    if (rc < 0)
        return rc;
    /* Item by item, so the first uploads run while later items pack. */
    for (int i = 0; i < n && rc == 0; i++)
        if (items[i].status == 0) {
            stage_pack(cb->host, &items[i], &st[i]);
            rc = stage_upload(cb, &items[i], &st[i]);
        }
    return rc;
}

/*
 * Items with status 0 are valid (backend.c checked them). They run in
 * batched passes of up to MAX_PASS items of the same padded size, in their
 * order; each is marked pending (status 1) once enqueued, and one
 * synchronization at the end settles every pending item at once.
 */
static int cuda_predict(struct nf_backend *b, struct nf_predict_item *items,
                        int n)
{
    struct cuda_backend *cb = (struct cuda_backend *)b->context;
    struct stage *st = (struct stage *)calloc((size_t)n, sizeof *st);
    int *group = (int *)malloc((size_t)n * sizeof *group);
    int rc = st && group ? 0 : NF_ENOMEM, first = 0;
    cudaError_t e = cudaSuccess;
    if (rc == 0 && (e = cudaSetDevice(cb->device)) != cudaSuccess)
        rc = NF_EBACKEND;
    if (rc == 0)
        rc = stage_all(cb, items, n, st);
    /* An item leaves status 0 once its pass is enqueued (pending or
     * failed), so status 0 marks those not yet in a pass. */
    for (int i = 0; i < n; i++) {
        if (items[i].status != 0)
            continue;
        if (rc < 0) {
            fail_item(&items[i], rc);
            continue;
        }
        /* Item i and the later valid items of its padded size. */
        int h, w, hj, wj, count = 0;
        padded(cb, &items[i], &h, &w);
        for (int j = i; j < n && count < MAX_PASS; j++) {
            if (items[j].status != 0)
                continue;
            padded(cb, &items[j], &hj, &wj);
            if (hj == h && wj == w)
                group[count++] = j;
        }
        enqueue_pass(cb, items, st, group, count, h, w);
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
            if (st[i].dst_out == NULL)
                stage_unpack(cb->host, &items[i], &st[i]);
            items[i].status = 0;
        }
        if (items[i].status < 0 && first == 0)
            first = items[i].status;
    }
    free(st);
    free(group);
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
/* What backend b did (backend-load.h): for tests and the benchmark. */
NF_CUDA_EXPORT void nf__cuda_stats(const struct nf_backend *b,
                                   struct nf_cuda_stats *out);
}

/* Uploads frame and cache as a pass of one, runs the steps, downloads the
 * output. */
static int run_float_on(struct cuda_backend *cb, const float *frame,
                        const float *const *cache, int h, int w, float *out)
{
    size_t plane = (size_t)3 * h * w;
    cudaStream_t s = cb->stream;
    int k = cb->g->cache_frames, rc = prepare_buffers(cb, 1, h, w);
    if (rc == 0)
        rc = prepare_convs(cb, 1, h, w);
    if (rc < 0)
        return rc;
    /* Pageable copies, but on the stream, so ordered with the steps. */
    NF_CUDA_CHECK(cudaMemcpyAsync(cb->frame, frame, plane * sizeof(float),
                                  cudaMemcpyHostToDevice, s));
    for (int j = 0; j < k; j++)
        NF_CUDA_CHECK(cudaMemcpyAsync(cb->vals[NF_VALUE_CACHE(j)], cache[j],
                                      plane * sizeof(float),
                                      cudaMemcpyHostToDevice, s));
    rc = run_steps(cb, 1, h, w);
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
    if (frame == NULL || out == NULL || (k > 0 && cache == NULL) || h <= 0 ||
        w <= 0 || h % mult != 0 || w % mult != 0 || h > NF_BACKEND_MAX_SIDE ||
        w > NF_BACKEND_MAX_SIDE)
        return NF_EINVAL;
    memset(&b, 0, sizeof b);
    b.model = m;
    rc = cuda_init(&b, 0);
    if (rc < 0)
        return rc;
    rc =
        run_float_on((struct cuda_backend *)b.context, frame, cache, h, w, out);
    cuda_free(&b);
    return rc;
}

void nf__cuda_stats(const struct nf_backend *b, struct nf_cuda_stats *out)
{
    const struct cuda_backend *cb = (const struct cuda_backend *)b->context;
    *out = cb->stats;
    out->graphs = cb->graphs;
    out->half = cb->half;
    out->find = cb->find;
}

/* Page-locked host memory, zeroed (backend.h: nf_backend_host_alloc). */
static void *cuda_host_alloc(size_t bytes)
{
    void *p = NULL;
    if (cudaHostAlloc(&p, bytes, cudaHostAllocPortable) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

static void cuda_host_free(void *p)
{
    cudaFreeHost(p);
}

const struct nf_backend_i nf_cuda_backend = {
    .name = "cuda",
    .corrections = 1,
    /* The motion map and stabilizer stay on the host, with the codec
     * threads (kernels/temporal.c), so that a batch's predict call does not
     * run them one stream after another. */
    .stabilizes = 0,
    .available = cuda_available,
    .unavailable_reason = cuda_unavailable_reason,
    .supports = cuda_supports,
    .init = cuda_init,
    .free = cuda_free,
    .slot_new = cuda_slot_new,
    .slot_free = cuda_slot_free,
    .slot_reset = cuda_slot_reset,
    .predict = cuda_predict,
    .host_alloc = cuda_host_alloc,
    .host_free = cuda_host_free,
};
