/*
 * nf-cuda-bench.c - throughput and latency of the CUDA backend ("cuda")
 * through the public backend API, per stream count and resolution.
 *
 * For every model, size, mode and stream count S it opens S slots, feeds
 * each a moving synthetic scene, and calls nf_backend_predict() with all S
 * items at once, as the scheduler does when S streams wait at the same
 * moment, for a fixed time after a one-second warm-up. It prints frames/s
 * (S frames per call), the call latency (median, p99) and the backend's
 * mean batch per forward pass, one figure per line, `name: value unit`.
 * Modes: "fp32" (CUDA graphs on, the default), "nograph" (NF_CUDA_GRAPHS=0),
 * "half" (NF_CUDA_HALF=1, tensor-core convolutions), "find"
 * (NF_CUDA_FIND=1: convolution algorithms chosen by timing them) and
 * "heap" (fp32 with the images on the heap instead of the backend's
 * page-locked nf_backend_host_alloc memory, which every other mode uses). The
 * baseline, measured in the same run, is the best CPU backend ("cpu") at one
 * stream. Where "cuda" cannot run it prints one line "SKIP nf-cuda-bench:
 * <why>" and exits 0.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend-load.h"
#include "backend.h"
#include "error.h"
#include "model.h"
#include "mono-clock.h"
#include "percentile.h"

#define MAX_LIST 16

static const char usage[] =
    "usage: nf-cuda-bench [--seconds S] [--streams 1,2,...] [--sizes WxH,...]\n"
    "                     [--modes fp32,nograph,half,find,heap] [model ...]\n"
    "\n"
    "Throughput and latency of the CUDA backend per stream count, size and\n"
    "mode: all S streams' frames in one predict call, as the scheduler\n"
    "batches them. Defaults: 3 s per point after 1 s of warm-up, streams\n"
    "1,2,4,8,16,32,64, sizes 640x480,1280x720, modes fp32,nograph,half,\n"
    "models/toon.safetensors. fp32: CUDA graphs on; nograph: every pass\n"
    "launched op by op (NF_CUDA_GRAPHS=0); half: tensor-core convolutions\n"
    "(NF_CUDA_HALF=1); find: algorithms chosen by timing (NF_CUDA_FIND=1);\n"
    "heap: images from malloc, through the backend's staging copy (the\n"
    "others use nf_backend_host_alloc, as the server does); find and heap\n"
    "are not in the default list. NF_CUDA_PROFILE=1 prints each step's time\n"
    "per point. Prints SKIP and exits 0 where \"cuda\" cannot run.\n";

/* A backend configuration: the environment it is created under. */
struct mode {
    const char *name, *graphs, *half, *find;
    int heap; /* Images on the heap: through the backend's staging copy. */
};

static const struct mode modes_all[] = {{"fp32", "1", "0", "0", 0},
                                        {"nograph", "0", "0", "0", 0},
                                        {"half", "1", "1", "0", 0},
                                        {"find", "1", "0", "1", 0},
                                        {"heap", "1", "0", "0", 1}};
#define N_MODES 5

struct opts {
    double seconds;
    int streams[MAX_LIST], n_streams;
    int sizes[MAX_LIST][2], n_sizes;
    int modes[N_MODES], n_modes; /* Indexes into modes_all. */
};

/* A moving gradient with a bright square, different per slot. */
static void scene(const struct nf_image *im, int t, int s)
{
    for (int y = 0; y < im->height; y++) {
        uint8_t *row = im->data + (size_t)y * im->stride;
        for (int x = 0; x < im->width; x++) {
            int on = ((x + 3 * t + 17 * s) / 40 + y / 40) % 5 == 0;
            row[3 * x] = (uint8_t)(on ? 240 : (x + t) & 255);
            row[3 * x + 1] = (uint8_t)(on ? 220 : (y + 2 * s) & 255);
            row[3 * x + 2] = (uint8_t)(on ? 60 : (x + y) & 255);
        }
    }
}

struct run {
    int heap; /* Images from malloc rather than nf_backend_host_alloc. */
    struct nf_backend *b;
    struct nf_slot **slots;
    struct nf_image *in, *out;
    struct nf_predict_item *items;
    int n;
};

/* An image's pixels: page-locked from the backend (what the server does)
 * unless the mode asks for plain heap memory. */
static uint8_t *image_alloc(const struct run *r, size_t bytes)
{
    return r->heap ? malloc(bytes) : nf_backend_host_alloc(r->b, bytes);
}

static void image_free(const struct run *r, uint8_t *p)
{
    if (r->heap)
        free(p);
    else
        nf_backend_host_free(p);
}

static void run_free(struct run *r)
{
    for (int i = 0; i < r->n; i++) {
        if (r->slots != NULL)
            nf_backend_slot_free(r->b, r->slots[i]);
        if (r->in != NULL)
            image_free(r, r->in[i].data);
        if (r->out != NULL)
            image_free(r, r->out[i].data);
    }
    free(r->slots);
    free(r->in);
    free(r->out);
    free(r->items);
    nf_backend_free(r->b);
    memset(r, 0, sizeof *r);
}

static int run_init(struct run *r, const char *backend,
                    const struct nf_model *m, int n, int w, int h, int heap)
{
    memset(r, 0, sizeof *r);
    r->heap = heap;
    int rc = nf_backend_init(backend, m, 0, &r->b);
    if (rc < 0)
        return rc;
    r->n = n;
    r->slots = calloc((size_t)n, sizeof *r->slots);
    r->in = calloc((size_t)n, sizeof *r->in);
    r->out = calloc((size_t)n, sizeof *r->out);
    r->items = calloc((size_t)n, sizeof *r->items);
    if (!r->slots || !r->in || !r->out || !r->items)
        return NF_ENOMEM;
    for (int i = 0; i < n; i++) {
        struct nf_image im = {NULL, w, h, 3 * w};
        r->in[i] = r->out[i] = im;
        r->in[i].data = image_alloc(r, (size_t)3 * w * h);
        r->out[i].data = image_alloc(r, (size_t)3 * w * h);
        if (r->in[i].data == NULL || r->out[i].data == NULL)
            return NF_ENOMEM;
        if ((rc = nf_backend_slot_new(r->b, &r->slots[i])) < 0)
            return rc;
        scene(&r->in[i], 0, i);
    }
    return 0;
}

/* One predict call with every slot; its latency in ms, or < 0. */
static double call(struct run *r, int t)
{
    for (int i = 0; i < r->n; i++) {
        if (t % 4 == 0)
            scene(&r->in[i], t, i);
        r->items[i] = (struct nf_predict_item){
            .slot = r->slots[i], .in = &r->in[i], .out = &r->out[i]};
    }
    uint64_t t0 = nf_mono_us();
    int rc = nf_backend_predict(r->b, r->items, r->n);
    if (rc < 0) {
        fprintf(stderr, "nf-cuda-bench: predict: %s\n", nf_strerror(rc));
        return -1;
    }
    return (double)(nf_mono_us() - t0) / 1000.0;
}

/* The CUDA backend's own counters for the point (nothing for "cpu"). */
static void print_stats(const char *name, const struct nf_backend *b)
{
    void *sym = nf__cuda_symbol("nf__cuda_stats");
    struct nf_cuda_stats st;
    nf_cuda_stats_fn fn;
    if (sym == NULL || strcmp(nf_backend_name(b), "cuda") != 0)
        return;
    memcpy(&fn, &sym, sizeof fn); /* POSIX: data to function pointer. */
    fn(b, &st);
    printf("%s.mean_batch: %.2f items/pass\n", name,
           st.passes ? (double)st.items / st.passes : 0.0);
    printf("%s.graph_replays: %.1f %%\n", name,
           st.passes ? 100.0 * st.replays / st.passes : 0.0);
    printf("%s.tensor_core_convs: %d of %d\n", name, st.tensor_ops, st.convs);
}

/* Runs one point and prints its figures under name; 0 or an error. */
static int point(const char *name, const char *backend,
                 const struct nf_model *m, int streams, int w, int h,
                 double seconds, int heap)
{
    struct run r = {0};
    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    int rc = lat ? run_init(&r, backend, m, streams, w, h, heap) : NF_ENOMEM;
    uint64_t start = nf_mono_us(), warm = start + 1000000;
    uint64_t end = warm + (uint64_t)(seconds * 1e6), t_begin = 0;
    for (int t = 0; rc == 0; t++) {
        double ms = call(&r, t);
        uint64_t now = nf_mono_us();
        if (ms < 0)
            rc = NF_EBACKEND;
        else if (now >= warm && n < cap) {
            if (n == 0)
                t_begin = now - (uint64_t)(ms * 1000);
            lat[n++] = ms;
        }
        if (now >= end)
            break;
    }
    if (rc == 0 && n > 0) {
        double secs = (double)(nf_mono_us() - t_begin) / 1e6;
        nf_percentile_sort(lat, n);
        printf("%s.fps: %.1f frames/s\n", name, (double)n * streams / secs);
        printf("%s.latency_p50: %.3f ms\n", name, nf_percentile_of(lat, n, 50));
        printf("%s.latency_p99: %.3f ms\n", name, nf_percentile_of(lat, n, 99));
        print_stats(name, r.b);
        fflush(stdout);
    }
    run_free(&r);
    free(lat);
    return rc;
}

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    while (*s != '\0' && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 4096)
            return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0')
            return -1;
    }
    return n;
}

static int parse_sizes(const char *s, int (*out)[2], int max)
{
    int n = 0;
    while (*s != '\0' && n < max) {
        int w, h, used = 0;
        if (sscanf(s, "%dx%d%n", &w, &h, &used) != 2 || w < 1 || h < 1 ||
            w > NF_BACKEND_MAX_SIDE || h > NF_BACKEND_MAX_SIDE)
            return -1;
        out[n][0] = w;
        out[n++][1] = h;
        s += used;
        if (*s == ',')
            s++;
        else if (*s != '\0')
            return -1;
    }
    return n;
}

static int parse_modes(const char *s, int *out)
{
    int n = 0;
    while (*s != '\0' && n < N_MODES) {
        size_t len = strcspn(s, ",");
        int k = 0;
        while (k < N_MODES && (strlen(modes_all[k].name) != len ||
                               strncmp(s, modes_all[k].name, len) != 0))
            k++;
        if (k == N_MODES)
            return -1;
        out[n++] = k;
        s += len + (s[len] == ',');
    }
    return *s == '\0' ? n : -1;
}

static int bench_model(const char *path, const struct opts *o)
{
    char err[512];
    struct nf_model *m = NULL;
    if (nf_model_load(path, &m, err, sizeof err) < 0) {
        fprintf(stderr, "nf-cuda-bench: %s\n", err);
        return 1;
    }
    const char *model = nf_model_name(m);
    int rc = 0;
    for (int z = 0; z < o->n_sizes && rc == 0; z++) {
        int w = o->sizes[z][0], h = o->sizes[z][1];
        char name[160];
        snprintf(name, sizeof name, "cpu.%s.%dx%d.streams1", model, w, h);
        rc = point(name, "cpu", m, 1, w, h, o->seconds, 0);
        for (int k = 0; k < o->n_modes && rc == 0; k++) {
            const struct mode *md = &modes_all[o->modes[k]];
            setenv("NF_CUDA_GRAPHS", md->graphs, 1);
            setenv("NF_CUDA_HALF", md->half, 1);
            setenv("NF_CUDA_FIND", md->find, 1);
            for (int i = 0; i < o->n_streams && rc == 0; i++) {
                snprintf(name, sizeof name, "cuda-%s.%s.%dx%d.streams%d",
                         md->name, model, w, h, o->streams[i]);
                rc = point(name, "cuda", m, o->streams[i], w, h, o->seconds,
                           md->heap);
            }
        }
    }
    if (rc < 0)
        fprintf(stderr, "nf-cuda-bench: %s: %s\n", path, nf_strerror(rc));
    nf_model_free(m);
    return rc < 0;
}

int main(int argc, char **argv)
{
    struct opts o = {3.0, {1, 2, 4, 8, 16, 32, 64},
                     7,   {{640, 480}, {1280, 720}},
                     2,   {0, 1, 2},
                     3};
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--modes") == 0 && i + 1 < argc)
            o.n_modes = parse_modes(argv[++i], o.modes);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            o.seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--streams") == 0 && i + 1 < argc)
            o.n_streams = parse_list(argv[++i], o.streams, MAX_LIST);
        else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc)
            o.n_sizes = parse_sizes(argv[++i], o.sizes, MAX_LIST);
        else if (argv[i][0] == '-') {
            fputs(usage, stderr);
            return 2;
        } else
            break;
    }
    if (!(o.seconds > 0) || o.n_streams < 1 || o.n_sizes < 1 || o.n_modes < 1) {
        fprintf(stderr, "nf-cuda-bench: bad options\n");
        return 2;
    }
    const char *why = nf_backend_why_unavailable("cuda");
    if (why != NULL) {
        printf("SKIP nf-cuda-bench: %s\n", why);
        return 0;
    }
    int bad = 0;
    if (i == argc)
        bad = bench_model("models/toon.safetensors", &o);
    for (; i < argc; i++)
        bad += bench_model(argv[i], &o);
    return bad ? 1 : 0;
}
