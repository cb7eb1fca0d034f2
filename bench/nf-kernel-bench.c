/*
 * nf-kernel-bench.c - CPU inference benchmark of the backends.
 *
 * For every model and resolution it measures one frame of the whole model
 * (8-bit RGB in and out, cache update included) on "ref" and on "dnnl" with
 * each team size, and every conv2d layer of the graph alone as a plain
 * oneDNN convolution (dense NHWC, zero padding, bias, a ReLU post-op where
 * the graph has one): the GFLOP/s those reach is the baseline the whole
 * model is compared with. Times are medians over a fixed number of frames
 * after warm-up (the minimum is printed too: the machine may be shared).
 * Output is one figure per line, `name: value unit`.
 *
 *   nf-kernel-bench [--frames N] [--threads 1,2,0] [--sizes 320x240,...]
 *                   [--no-ref] [--layers] [--profile] [--busy]
 *                   [model.safetensors ...]
 *
 * --threads lists dnnl team sizes (0: the backend's adaptive default);
 * --layers adds one line per conv layer; --profile one per program step;
 * --busy repeats the dnnl runs while a `yes` process spins on one core.
 * Without models it runs every .safetensors file in models/.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <oneapi/dnnl/dnnl.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend.h"
#include "dnnl/backend-dnnl.h"
#include "error.h"
#include "model-impl.h"
#include "model.h"

#define MAX_ITEMS 64

struct opts {
    int frames;
    int threads[8], n_threads;
    int sizes[8][2], n_sizes;
    int ref, layers, profile, busy;
};

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median, minimum, 90th percentile and maximum of n samples (sorted in
 * place). */
struct stats {
    double med, min, p90, max;
};

static double median(double *t, int n, double *min)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    *min = t[0];
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static struct stats stats_of(double *t, int n)
{
    struct stats s;
    s.med = median(t, n, &s.min);
    s.p90 = t[(int)(0.9 * (n - 1))];
    s.max = t[n - 1];
    return s;
}

static void set_threads(int n)
{
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

/* A frame with some structure, so that no branch sees constant data. */
static void fill_frame(const struct nf_image *im, int t)
{
    for (int y = 0; y < im->height; y++)
        for (int x = 0; x < im->width; x++) {
            uint8_t *p = im->data + (size_t)y * im->stride + 3 * x;
            p[0] = (uint8_t)(x * 3 + t);
            p[1] = (uint8_t)(y * 5 - t);
            p[2] = (uint8_t)((x ^ y) + 7 * t);
        }
}

/*
 * Runs `frames` frames (after warm-up) through backend `name` and returns
 * the median ms per frame (*min the fastest), or -1.
 */
static double run_backend(const struct nf_model *m, const char *name,
                          int threads, int w, int h, int frames, int profile,
                          struct stats *st, const char *label)
{
    struct nf_backend *b = NULL;
    struct nf_slot *s = NULL;
    struct nf_image in = {malloc((size_t)w * h * 3), w, h, 3 * w};
    struct nf_image out = {malloc((size_t)w * h * 3), w, h, 3 * w};
    double *t = calloc((size_t)frames, sizeof *t), med = -1;
    int rc = in.data && out.data && t ? 0 : NF_ENOMEM;
    if (rc == 0)
        rc = nf_backend_init(name, m, threads, &b);
    if (rc == 0)
        rc = nf_backend_slot_new(b, &s);
    int warm = strcmp(name, "ref") == 0 ? 1 : 5;
    for (int i = 0; i < warm + frames && rc == 0; i++) {
        fill_frame(&in, i);
        if (profile && i == warm && strcmp(name, "dnnl") == 0)
            nf__dnnl_profile(b, 1);
        struct nf_predict_item it = {.slot = s, .in = &in, .out = &out};
        double t0 = now_ms();
        rc = nf_backend_predict(b, &it, 1);
        if (i >= warm)
            t[i - warm] = now_ms() - t0;
    }
    if (rc == 0) {
        *st = stats_of(t, frames);
        med = st->med;
        struct nf_dnnl_profile_line l;
        for (int i = 0; profile && strcmp(name, "dnnl") == 0 &&
                        nf__dnnl_profile_report(b, i, &l);
             i++)
            printf("%s.step%02d.%s.%s: %.3f ms%s%s\n", label, i, l.kind, l.node,
                   l.ms, l.impl ? " " : "", l.impl ? l.impl : "");
    } else {
        fprintf(stderr, "nf-kernel-bench: %s: %s\n", name, nf_strerror(rc));
    }
    nf_backend_free(b);
    free(in.data);
    free(out.data);
    free(t);
    return med;
}

/* --- One conv layer alone in oneDNN. --- */

#define DNNL_OK(call)                                                          \
    do {                                                                       \
        if ((call) != dnnl_success)                                            \
            goto out;                                                          \
    } while (0)

/*
 * Times conv node n of g at padded frame size h x w as a plain oneDNN
 * convolution on `threads` threads; returns median ms (or -1) and sets
 * *flops.
 */
static double run_layer(const struct nf_graph *g, int i, int h, int w,
                        int threads, int reps, double *flops)
{
    const struct nf_node *n = &g->nodes[i];
    int ih, iw, oh, ow, cin = g->values[n->inputs[0]].channels;
    int cout = (int)n->weight->shape[0], gr = n->groups;
    nf__graph_value_size(g, n->inputs[0], h, w, &ih, &iw);
    nf__graph_value_size(g, n->output, h, w, &oh, &ow);
    *flops = 2.0 * cout * (cin / gr) * n->kh * n->kw * (double)oh * ow;
    dnnl_engine_t eng = NULL;
    dnnl_stream_t st = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_memory_t mem[4] = {NULL};
    double *t = calloc((size_t)reps, sizeof *t), med = -1, min;
    set_threads(threads);
    DNNL_OK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    DNNL_OK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
    dnnl_memory_desc_t src, wei, bia, dst;
    dnnl_dims_t sd = {1, cin, ih, iw}, dd = {1, cout, oh, ow}, bd = {cout};
    dnnl_dims_t wd = {gr, cout / gr, cin / gr, n->kh, n->kw};
    dnnl_dims_t strides = {n->stride, n->stride};
    dnnl_dims_t pl = {n->padding, n->padding};
    dnnl_dims_t pr = {(oh - 1) * n->stride + n->kh - ih - n->padding,
                      (ow - 1) * n->stride + n->kw - iw - n->padding};
    DNNL_OK(dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32, dnnl_nhwc));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, dnnl_nhwc));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&bia, 1, bd, dnnl_f32, dnnl_a));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&wei, gr > 1 ? 5 : 4,
                                         gr > 1 ? wd : wd + 1, dnnl_f32,
                                         dnnl_format_tag_any));
    dnnl_convolution_desc_t cd;
    DNNL_OK(dnnl_convolution_forward_desc_init(
        &cd, dnnl_forward_inference, dnnl_convolution_direct, &src, &wei,
        n->bias ? &bia : NULL, &dst, strides, pl, pr));
    DNNL_OK(dnnl_primitive_attr_create(&attr));
    DNNL_OK(dnnl_post_ops_create(&po));
    if (i + 1 < g->n_nodes && g->nodes[i + 1].op == NF_OP_RELU &&
        g->nodes[i + 1].inputs[0] == n->output)
        DNNL_OK(
            dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0, 0));
    DNNL_OK(dnnl_primitive_attr_set_post_ops(attr, po));
    DNNL_OK(dnnl_primitive_desc_create(&pd, &cd, attr, eng, NULL));
    DNNL_OK(dnnl_primitive_create(&prim, pd));
    const dnnl_memory_desc_t *mds[4] = {
        dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
        dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0),
        n->bias ? dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1)
                : &bia,
        dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0)};
    for (int k = 0; k < 4; k++) {
        void *p = NULL;
        DNNL_OK(dnnl_memory_create(&mem[k], mds[k], eng, DNNL_MEMORY_ALLOCATE));
        DNNL_OK(dnnl_memory_get_data_handle(mem[k], &p));
        memset(p, 0, dnnl_memory_desc_get_size(mds[k]));
    }
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, mem[0]},
                               {DNNL_ARG_WEIGHTS, mem[1]},
                               {DNNL_ARG_DST, mem[3]},
                               {DNNL_ARG_BIAS, mem[2]}};
    for (int r = -3; r < reps; r++) {
        double t0 = now_ms();
        DNNL_OK(dnnl_primitive_execute(prim, st, n->bias ? 4 : 3, args));
        DNNL_OK(dnnl_stream_wait(st));
        if (r >= 0)
            t[r] = now_ms() - t0;
    }
    med = median(t, reps, &min);
out:
    for (int k = 0; k < 4; k++)
        dnnl_memory_destroy(mem[k]);
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    if (st != NULL)
        dnnl_stream_destroy(st);
    if (eng != NULL)
        dnnl_engine_destroy(eng);
    free(t);
    return med;
}

/* Sum of the conv layers alone; returns their GFLOP/s (or -1). Prints
 * the sums (and with --layers each layer) when `print` is set. */
static double run_layers(const struct nf_model *m, const char *label, int w,
                         int h, int threads, const struct opts *o, int print)
{
    const struct nf_graph *g = &m->graph;
    double ms = 0, flops = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != NF_OP_CONV2D)
            continue;
        double f, t = run_layer(g, i, h, w, threads, 3 * o->frames, &f);
        if (t < 0)
            return -1;
        if (o->layers && print)
            printf("%s.layer.%s: %.3f ms %.1f GFLOP/s\n", label,
                   g->nodes[i].name, t, f / t * 1e-6);
        ms += t;
        flops += f;
    }
    if (print) {
        printf("%s.convs_alone: %.3f ms\n", label, ms);
        printf("%s.convs_alone_gflops: %.1f GFLOP/s\n", label,
               flops / ms * 1e-6);
    }
    return flops / ms * 1e-6;
}

/* Rounds of (model, convolutions alone) for the ratio: the VM's speed
 * drifts between two measurements taken one after the other, so the ratio
 * is each round's own, and the median of the rounds is reported. */
#define RATIO_ROUNDS 3

/* --- Driver. --- */

static pid_t start_hog(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen("/dev/null", "w", stdout);
        (void)f;
        execlp("yes", "yes", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop_hog(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

static void bench_dnnl(const struct nf_model *m, const char *base, int w, int h,
                       const struct opts *o, const char *tag)
{
    for (int k = 0; k < o->n_threads; k++) {
        char label[256];
        struct stats st;
        snprintf(label, sizeof label, "%s.dnnl%s.t%d", base, tag,
                 o->threads[k]);
        double ms = run_backend(m, "dnnl", o->threads[k], w, h, o->frames,
                                o->profile && *tag == '\0', &st, label);
        if (ms < 0)
            continue;
        double gf = nf_model_flops(m, w, h) / ms * 1e-6;
        printf("%s.ms: %.3f ms\n%s.min_ms: %.3f ms\n%s.p90_ms: %.3f ms\n"
               "%s.max_ms: %.3f ms\n%s.gflops: %.1f GFLOP/s\n",
               label, ms, label, st.min, label, st.p90, label, st.max, label,
               gf);
        if (*tag != '\0' || o->threads[k] == 0)
            continue;
        double ratio[RATIO_ROUNDS];
        int n = 0;
        for (int r = 0; r < RATIO_ROUNDS; r++) {
            struct stats again;
            double ms_r = r == 0 ? ms
                                 : run_backend(m, "dnnl", o->threads[k], w, h,
                                               o->frames, 0, &again, label);
            double conv = run_layers(m, label, w, h, o->threads[k], o, r == 0);
            if (ms_r > 0 && conv > 0)
                ratio[n++] =
                    100 * (nf_model_flops(m, w, h) / ms_r * 1e-6) / conv;
        }
        if (n > 0) {
            printf("%s.of_conv_rounds:", label);
            for (int r = 0; r < n; r++)
                printf(" %.0f%%", ratio[r]);
            double lo;
            printf("\n%s.of_conv_gflops: %.0f %%\n", label,
                   median(ratio, n, &lo));
        }
    }
}

static void bench_model(const char *path, const struct opts *o)
{
    char err[512];
    struct nf_model *m = NULL;
    if (nf_model_load(path, &m, err, sizeof err) < 0) {
        fprintf(stderr, "nf-kernel-bench: %s\n", err);
        return;
    }
    for (int z = 0; z < o->n_sizes; z++) {
        int w = o->sizes[z][0], h = o->sizes[z][1];
        char base[128];
        snprintf(base, sizeof base, "%s.%dx%d", nf_model_name(m), w, h);
        printf("%s.gflop: %.3f GFLOP\n", base, nf_model_flops(m, w, h) * 1e-9);
        if (o->ref) {
            struct stats st;
            int n = o->frames < 3 ? o->frames : 3;
            double ms = run_backend(m, "ref", 1, w, h, n, 0, &st, base);
            printf("%s.ref.ms: %.1f ms\n", base, ms);
        }
        bench_dnnl(m, base, w, h, o, "");
        if (o->busy) {
            pid_t hog = start_hog();
            bench_dnnl(m, base, w, h, o, ".busy");
            stop_hog(hog);
        }
    }
    nf_model_free(m);
}

static int parse_list(const char *s, int *v, int cap)
{
    int n = 0;
    while (*s && n < cap) {
        v[n++] = atoi(s);
        s = strchr(s, ',');
        if (s == NULL)
            break;
        s++;
    }
    return n;
}

int main(int argc, char **argv)
{
    struct opts o = {.frames = 30,
                     .threads = {1, 2, 0},
                     .n_threads = 3,
                     .sizes = {{320, 240}, {640, 480}, {1280, 720}},
                     .n_sizes = 3,
                     .ref = 1};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc) {
            o.frames = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            o.n_threads = parse_list(argv[++i], o.threads, 8);
        } else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
            const char *s = argv[++i];
            for (o.n_sizes = 0; *s && o.n_sizes < 8; o.n_sizes++) {
                if (sscanf(s, "%dx%d", &o.sizes[o.n_sizes][0],
                           &o.sizes[o.n_sizes][1]) != 2)
                    break;
                s = strchr(s, ',');
                if (s == NULL) {
                    o.n_sizes++;
                    break;
                }
                s++;
            }
        } else if (strcmp(argv[i], "--no-ref") == 0) {
            o.ref = 0;
        } else if (strcmp(argv[i], "--layers") == 0) {
            o.layers = 1;
        } else if (strcmp(argv[i], "--profile") == 0) {
            o.profile = 1;
        } else if (strcmp(argv[i], "--busy") == 0) {
            o.busy = 1;
        } else {
            fprintf(stderr,
                    "usage: nf-kernel-bench [--frames N] [--threads 1,2,0] "
                    "[--sizes WxH,...] [--no-ref] [--layers] [--profile] "
                    "[--busy] [model.safetensors ...]\n");
            return 2;
        }
    }
    if (o.frames < 1 || o.n_threads < 1 || o.n_sizes < 1) {
        fprintf(stderr, "nf-kernel-bench: bad options\n");
        return 2;
    }
    const char *const *names = nf_backend_list();
    int have = 0;
    for (int k = 0; names[k] != NULL; k++)
        have |= strcmp(names[k], "dnnl") == 0;
    if (!have) {
        fprintf(stderr, "nf-kernel-bench: built without the dnnl backend\n");
        return 1;
    }
    if (i < argc) {
        for (; i < argc; i++)
            bench_model(argv[i], &o);
        return 0;
    }
    DIR *d = opendir("models");
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char path[512];
        if (len < 12 || strcmp(e->d_name + len - 12, ".safetensors") != 0)
            continue;
        snprintf(path, sizeof path, "models/%s", e->d_name);
        bench_model(path, &o);
    }
    if (d != NULL)
        closedir(d);
    return 0;
}
