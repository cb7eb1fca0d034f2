/*
 * test-backend-cuda.c - the CUDA backend ("cuda", kernels/cuda/) and its
 * loader (kernels/backend-load.c).
 *
 * Everywhere: the loader fails cleanly where the library, its dependencies
 * or a device are missing (the reason names which), "cuda" is then
 * NF_ENO_BACKEND, and "auto" falls back to a CPU backend; where a device
 * exists, "auto" picks "cuda".
 *
 * Where a device exists, backend_cuda_matches_cpu compares "cuda" with the
 * reference "ref": every op of MODEL.md on small graphs built in memory and
 * every shipped model as floats (nf__cuda_run_float against
 * nf__cpu_run_float, ||a - b|| / ||b|| <= 1e-5), then every shipped model
 * through the public API in batches of 1 to 8 slots with resets,
 * resolution changes, odd sizes and drift corrections (8-bit outputs
 * within one level everywhere, 0.05 levels on average, as the dnnl test),
 * half the images and every other decay map in page-locked memory from
 * nf_backend_host_alloc (moved directly), the rest on the heap (staged).
 * Without a device it prints "SKIP backend_cuda_matches_cpu: no CUDA
 * device (...)" or the loader's other reason.
 *
 * The library is looked for as the server does, except that the test
 * points NF_CUDA_LIB at $BUILD/libnf-cuda.so (one directory above this
 * binary) when that file exists and the variable is unset.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend-compare.h"
#include "backend-impl.h"
#include "backend-load.h"
#include "backend.h"
#include "error.h"
#include "model-builder.h"
#include "model.h"
#include "nf-test.h"

#define FLOAT_TOL  1e-5 /* FP32: only the summation order differs. */
#define MEAN_LEVEL 0.05 /* 8-bit streams: mean absolute difference. */
/* The reduced-precision mode (NF_CUDA_HALF=1): the 1e-2 on floats;
 * on 8-bit streams the outputs may differ by a few levels where the
 * model's cache feeds rounding differences back. */
#define HALF_TOL        1e-2
#define HALF_MAX_LEVEL  16
#define HALF_MEAN_LEVEL 1.0
#define MAX_SLOTS       8

typedef nf_cmp_run_fn run_float_fn; /* backend-compare.h */

/* Points NF_CUDA_LIB at ../libnf-cuda.so beside this binary if unset. */
static void find_library(void)
{
    char exe[PATH_MAX], path[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (getenv("NF_CUDA_LIB") != NULL || n <= 0)
        return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return;
    *slash = '\0';
    snprintf(path, sizeof path, "%s/../%s", exe, NF_CUDA_LIB);
    if (access(path, R_OK) == 0)
        setenv("NF_CUDA_LIB", path, 0);
}

/* The library's float runner, or NULL with why set (no device, ...). */
static run_float_fn cuda_runner(const char **why)
{
    find_library();
    *why = nf__cuda_why();
    if (*why != NULL)
        return NULL;
    void *sym = nf__cuda_symbol("nf__cuda_run_float");
    run_float_fn f = NULL;
    if (sym == NULL)
        *why = "libnf-cuda.so lacks nf__cuda_run_float";
    else
        memcpy(&f, &sym, sizeof f); /* POSIX: data to function pointer. */
    return f;
}

/* Declares run, the library's float runner, or skips with the reason
 * ("no CUDA device (...)", "cannot load the library: ..."). */
#define NEED_CUDA(run)                                                         \
    const char *why_ = NULL;                                                   \
    run_float_fn run = cuda_runner(&why_);                                     \
    do {                                                                       \
        if (run == NULL)                                                       \
            NF_SKIP(strncmp(why_, "cuda: ", 6) == 0 ? why_ + 6 : why_);        \
    } while (0)

static struct nf_model *identity_model(void)
{
    struct nf_mb b;
    nf_mb_init(&b, 1);
    struct nf_model *m = nf_mb_load(&b, "t", 0, 1, "frame");
    nf_mb_free(&b);
    return m;
}

/* --- Loading (runs everywhere). --- */

/* In a child process (the loader runs once per process): a missing
 * library is reported by path. */
NF_TEST(backend_cuda_missing_library_is_named)
{
    pid_t pid = fork();
    NF_CHECK(pid >= 0);
    if (pid == 0) {
        setenv("NF_CUDA_LIB", "/nonexistent/libnf-cuda.so", 1);
        const char *why = nf_backend_why_unavailable("cuda");
        printf("  child: %s\n", why ? why : "(available)");
        fflush(stdout);
        _exit(why != NULL && strstr(why, "cannot load") != NULL &&
                      strstr(why, "/nonexistent/libnf-cuda.so") != NULL
                  ? 0
                  : 1);
    }
    int status = 0;
    NF_CHECK(waitpid(pid, &status, 0) == pid);
    NF_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Without a usable device "cuda" fails cleanly and "auto" takes the CPU;
 * with one, "auto" takes "cuda". */
NF_TEST(backend_cuda_loads_or_falls_back)
{
    find_library();
    const char *why = nf_backend_why_unavailable("cuda");
    const char *const *names = nf_backend_list();
    int listed = 0;
    for (int i = 0; names[i] != NULL; i++)
        listed |= strcmp(names[i], "cuda") == 0;
    printf("  %s\n", why ? why : "cuda: available");
    NF_CHECK(nf_backend_why_unavailable("ref") == NULL);
    NF_CHECK(nf_backend_why_unavailable("tpu") == NULL);
    struct nf_model *m = identity_model();
    NF_CHECK(m != NULL);
    struct nf_backend *b = NULL;
    int rc = nf_backend_init("cuda", m, 0, &b);
    if (why != NULL) {
        int cpu = 0;
        NF_CHECK(strncmp(why, "cuda: ", 6) == 0 && strlen(why) > 6);
        NF_CHECK(!listed);
        NF_CHECK(nf__cuda_why() != NULL);
        NF_CHECK_INT_EQ(rc, NF_ENO_BACKEND);
        NF_CHECK(b == NULL);
        NF_CHECK_INT_EQ(nf_backend_init("auto", m, 0, &b), 0);
        cpu = strcmp(nf_backend_name(b), "dnnl") == 0 ||
              strcmp(nf_backend_name(b), "ref") == 0;
        printf("  auto: %s\n", nf_backend_name(b));
        nf_backend_free(b);
        nf_model_free(m);
        NF_CHECK(cpu);
        return;
    }
    NF_CHECK(listed && strcmp(names[0], "cuda") == 0);
    NF_CHECK_INT_EQ(rc, 0);
    NF_CHECK(strcmp(nf_backend_name(b), "cuda") == 0);
    nf_backend_free(b);
    NF_CHECK_INT_EQ(nf_backend_init("auto", m, 0, &b), 0);
    NF_CHECK(strcmp(nf_backend_name(b), "cuda") == 0);
    nf_backend_free(b);
    NF_CHECK_INT_EQ(nf_backend_init("cpu", m, 0, &b), 0);
    NF_CHECK(strcmp(nf_backend_name(b), "cuda") != 0);
    nf_backend_free(b);
    nf_model_free(m);
}

/* --- Float comparisons. --- */

/* randf(), float_error() and the conv nodes: backend-compare.h. */

/* Float comparison of one built model; frees it. 1 if within FLOAT_TOL. */
static int model_ok(run_float_fn run, struct nf_model *m, const char *what)
{
    if (m == NULL)
        return 0;
    double e = float_error_sizes(&run, 1, m, what);
    nf_model_free(m);
    return e >= 0 && e <= FLOAT_TOL;
}

/* Convolutions: kernel sizes, strides, both paddings, groups, with the
 * bias+relu (cuDNN fused), other activations (epilogue) and none. */
static int convs_ok(run_float_fn run)
{
    static const char *const acts[] = {"relu", "sigmoid", NULL};
    static const char *const ups[2] = {"upsample2x_nearest",
                                       "upsample2x_nearest"};
    int ok = 1;
    for (size_t i = 0; i < NF_CMP_N_CONV_CASES; i++) {
        const char *act = acts[i % 3];
        char what[96], name[112];
        struct nf_model *m = nf_cmp_conv_model(i, act, ups, what, sizeof what);
        snprintf(name, sizeof name, "%s %s", what, act ? act : "-");
        ok &= model_ok(run, m, name);
    }
    /* A conv without bias, and an asymmetric 3x4 kernel. */
    struct nf_mb b;
    nf_mb_init(&b, 150);
    nf_mb_tensor(&b, "w", 4, (int64_t[]){8, 3, 3, 4}, NULL, 0.5f);
    nf_mb_node(&b, "'name':'c','op':'conv2d','inputs':['frame'],'weight':"
                   "'w','stride':2,'padding':1,'pad_mode':'reflect'");
    nf_mb_node(&b, "'name':'r','op':'relu','inputs':['c']");
    nf_mb_node(&b, "'name':'s','op':'pixel_shuffle','inputs':['r'],"
                   "'factor':2");
    conv_node(&b, "out", "s", 2, 3, 3, 1, 1, "reflect", 1);
    ok &= model_ok(run, finish(&b, 0, 2, "out"), "conv 3x4 s2, no bias");
    return ok;
}

/* Every activation folded into a conv, alone, on the frame and as the
 * output (backend-compare.h). */
static int activations_ok(run_float_fn run)
{
    int ok = 1;
    for (size_t i = 0; i < NF_CMP_N_ACTS; i++)
        ok &= model_ok(run, nf_cmp_activation_model(i), nf_cmp_acts[i]);
    return ok;
}

static int elementwise_ok(run_float_fn run)
{
    struct nf_mb b;
    nf_mb_init(&b, 300);
    nf_mb_tensor(&b, "s8", 1, (int64_t[]){8}, NULL, 1.5f);
    nf_mb_tensor(&b, "t8", 1, (int64_t[]){8}, NULL, 0.5f);
    conv_node(&b, "c", "frame", 3, 8, 3, 1, 1, "zeros", 1);
    nf_mb_node(&b, "'name':'ss','op':'scale_shift','inputs':['c'],"
                   "'weight':'s8','bias':'t8'");
    nf_mb_node(&b, "'name':'ws','op':'scale_shift','inputs':['ss'],"
                   "'weight':'s8'");
    nf_mb_node(&b, "'name':'bs','op':'scale_shift','inputs':['ss'],"
                   "'bias':'t8'");
    nf_mb_node(&b, "'name':'m','op':'mul','inputs':['ws','bs']");
    nf_mb_node(&b, "'name':'a','op':'add','inputs':['m','m']");
    nf_mb_node(&b, "'name':'k','op':'concat','inputs':['frame','a','m',"
                   "'frame']");
    conv_node(&b, "out", "k", 22, 3, 3, 1, 1, "reflect", 1);
    return model_ok(run, finish(&b, 0, 1, "out"), "elementwise+concat");
}

/* Resampling, instance norm, both shuffles. */
static int resample_ok(run_float_fn run)
{
    struct nf_mb b;
    int ok;
    nf_mb_init(&b, 500);
    nf_mb_tensor(&b, "nw", 1, (int64_t[]){8}, NULL, 1.0f);
    nf_mb_tensor(&b, "nb", 1, (int64_t[]){8}, NULL, 0.5f);
    conv_node(&b, "c", "frame", 3, 8, 3, 2, 1, "reflect", 1);
    nf_mb_node(&b, "'name':'n1','op':'instance_norm','inputs':['c'],"
                   "'weight':'nw','bias':'nb','eps':0.001");
    nf_mb_node(&b, "'name':'p','op':'avgpool2x2','inputs':['n1']");
    nf_mb_node(&b, "'name':'n2','op':'instance_norm','inputs':['p']");
    nf_mb_node(&b, "'name':'ub','op':'upsample2x_bilinear','inputs':['n2']");
    nf_mb_node(&b, "'name':'un','op':'upsample2x_nearest','inputs':['ub']");
    nf_mb_node(&b, "'name':'pf','op':'avgpool2x2','inputs':['frame']");
    nf_mb_node(&b, "'name':'uf','op':'upsample2x_bilinear','inputs':['pf']");
    conv_node(&b, "o", "un", 8, 3, 1, 1, 0, "zeros", 1);
    nf_mb_node(&b, "'name':'out','op':'add','inputs':['o','uf']");
    ok = model_ok(run, finish(&b, 0, 4, "out"), "resample+norm");
    for (int r = 2; r <= 4; r += 2) {
        nf_mb_init(&b, 600 + (uint32_t)r);
        nf_mb_node(&b,
                   "'name':'u','op':'pixel_unshuffle','inputs':['frame'],"
                   "'factor':%d",
                   r);
        conv_node(&b, "c", "u", 3 * r * r, 4 * r * r, 3, 1, 1, "reflect", 1);
        nf_mb_node(&b,
                   "'name':'s','op':'pixel_shuffle','inputs':['c'],"
                   "'factor':%d",
                   r);
        conv_node(&b, "d", "s", 4, 3, 3, 1, 1, "zeros", 1);
        nf_mb_node(&b, "'name':'e','op':'relu','inputs':['u']");
        nf_mb_node(&b,
                   "'name':'s3','op':'pixel_shuffle','inputs':['e'],"
                   "'factor':%d",
                   r);
        nf_mb_node(&b, "'name':'out','op':'add','inputs':['d','s3']");
        ok &= model_ok(run, finish(&b, 0, r, "out"),
                       r == 2 ? "shuffles r2" : "shuffles r4");
    }
    return ok;
}

/* Outputs that are predefined values or read the cache. */
static int outputs_ok(run_float_fn run)
{
    struct nf_mb b;
    int ok;
    nf_mb_init(&b, 900);
    ok = model_ok(run, finish(&b, 0, 1, "frame"), "identity");
    nf_mb_init(&b, 901);
    ok &= model_ok(run, finish(&b, 2, 1, "cache.1"), "cache.1");
    nf_mb_init(&b, 902);
    conv_node(&b, "a", "frame", 3, 1, 3, 1, 1, "reflect", 1);
    conv_node(&b, "c", "cache.0", 3, 2, 1, 1, 0, "zeros", 1);
    nf_mb_node(&b, "'name':'out','op':'concat','inputs':['a','c']");
    ok &= model_ok(run, finish(&b, 1, 1, "out"), "concat output");
    return ok;
}

/* --- Streams through the public API. --- */

/* The drift correction of frame t of slot s (none on some frames). */
static const struct nf_correction *correction(int t, int s,
                                              struct nf_correction *c,
                                              const float *grid,
                                              const float *map)
{
    if (t == 0 || (t + s) % 4 == 3)
        return NULL;
    *c = (struct nf_correction){.offset = (t + s) % 2 ? grid : NULL,
                                .grid_w = 4,
                                .grid_h = 3,
                                .decay = 0.05f * (float)((t + s) % 5),
                                .decay_map = (t + s) % 3 == 2 ? map : NULL};
    return c;
}

struct streams {
    struct nf_backend *ref, *cuda;
    struct nf_slot *sr[MAX_SLOTS], *sc[MAX_SLOTS];
    struct nf_image in[MAX_SLOTS], oa[MAX_SLOTS], ob[MAX_SLOTS];
    float grid[3 * 3 * 4], *map;
    int expect_fail; /* The next cuda call must fail (NF_CUDA_FAULT). */
    int map_pinned;  /* map came from nf_backend_host_alloc. */
    int calls;       /* stream_images calls. */
    int max;
    double sum;
    long n;
};

/* One batch of `slots` items on both backends; 0 or an error. */
static int stream_batch(struct streams *st, int slots, int t)
{
    struct nf_predict_item ia[MAX_SLOTS], ib[MAX_SLOTS];
    struct nf_correction cs[MAX_SLOTS];
    for (int s = 0; s < slots; s++) {
        const struct nf_correction *c =
            correction(t, s, &cs[s], st->grid, st->map);
        scene(&st->in[s], t, s);
        ia[s] = (struct nf_predict_item){
            .slot = st->sr[s], .in = &st->in[s], .out = &st->oa[s], .corr = c};
        ib[s] = (struct nf_predict_item){
            .slot = st->sc[s], .in = &st->in[s], .out = &st->ob[s], .corr = c};
    }
    int ra = nf_backend_predict(st->ref, ia, slots);
    int rb = nf_backend_predict(st->cuda, ib, slots);
    if (st->expect_fail) {
        /* Every item failed with NF_EBACKEND and its slot went cold: the
         * reference's slots restart cold too, to be compared again. */
        int all = rb == NF_EBACKEND;
        for (int s = 0; s < slots; s++) {
            all &= ib[s].status == NF_EBACKEND;
            nf_backend_slot_reset(st->ref, st->sr[s]);
        }
        st->expect_fail = 0;
        printf("  injected CUDA error: %s, every item %s\n", nf_strerror(rb),
               all ? "NF_EBACKEND" : "NOT failed");
        return all ? 0 : NF_EBACKEND;
    }
    if (ra != 0 || rb != 0) {
        printf("  predict: %s / %s\n", nf_strerror(ra), nf_strerror(rb));
        return ra ? ra : rb;
    }
    for (int s = 0; s < slots; s++)
        diff_images(&st->oa[s], &st->ob[s], &st->max, &st->sum, &st->n);
    return 0;
}

/* Slot s's images: even slots in the CUDA backend's page-locked memory
 * with dense rows (moved without the staging copy), odd ones on the heap
 * with padded rows (through it). */
static struct nf_image slot_image(const struct streams *st, int s, int w, int h)
{
    if (s % 2)
        return image_new(w, h);
    struct nf_image im = {nf_backend_host_alloc(st->cuda, (size_t)3 * w * h), w,
                          h, 3 * w};
    if (im.data != NULL)
        memset(im.data, 0xAA, (size_t)3 * w * h);
    return im;
}

static void slot_image_free(int s, struct nf_image *im)
{
    if (s % 2)
        free(im->data);
    else
        nf_backend_host_free(im->data);
    im->data = NULL;
}

static void map_free(struct streams *st)
{
    if (st->map_pinned)
        nf_backend_host_free(st->map);
    else
        free(st->map);
    st->map = NULL;
}

/* Images for every slot (freeing the previous ones): slot s gets size
 * sz[s % n_sz] ({height, width}). The decay map is page-locked every other
 * call. */
static int stream_images(struct streams *st, const int (*sz)[2], int n_sz)
{
    size_t map = 0;
    for (int s = 0; s < MAX_SLOTS; s++) {
        int h = sz[s % n_sz][0], w = sz[s % n_sz][1];
        slot_image_free(s, &st->in[s]);
        slot_image_free(s, &st->oa[s]);
        slot_image_free(s, &st->ob[s]);
        st->in[s] = slot_image(st, s, w, h);
        st->oa[s] = slot_image(st, s, w, h);
        st->ob[s] = slot_image(st, s, w, h);
        if (!st->in[s].data || !st->oa[s].data || !st->ob[s].data)
            return NF_ENOMEM;
        map = (size_t)w * h > map ? (size_t)w * h : map;
    }
    map_free(st);
    st->map_pinned = st->calls++ % 2;
    /* Read as each item's size. */
    st->map = st->map_pinned ? nf_backend_host_alloc(st->cuda, map * 4)
                             : malloc(map * sizeof *st->map);
    if (st->map == NULL)
        return NF_ENOMEM;
    for (size_t i = 0; i < map; i++)
        st->map[i] = randf();
    return 0;
}

static void streams_free(struct streams *st)
{
    for (int s = 0; s < MAX_SLOTS; s++) {
        nf_backend_slot_free(st->ref, st->sr[s]);
        nf_backend_slot_free(st->cuda, st->sc[s]);
        slot_image_free(s, &st->in[s]);
        slot_image_free(s, &st->oa[s]);
        slot_image_free(s, &st->ob[s]);
    }
    map_free(st);
    nf_backend_free(st->ref);
    nf_backend_free(st->cuda);
}

/*
 * Streams m through "ref" and "cuda" in batches of 1 to MAX_SLOTS slots:
 * several frames per size, odd sizes (padding and cropping), a size change
 * on the same slots, a reset halfway, drift corrections, and calls that
 * mix two padded sizes (two passes). 1 if the 8-bit outputs agree within
 * max_level everywhere and mean_level on average. The CUDA backend's
 * counters at the end go to *cs.
 */
static int streams_agree(const struct nf_model *m, int max_level,
                         double mean_level, struct nf_cuda_stats *cs)
{
    static const int sizes[][2] = {{37, 61}, {48, 64}, {17, 9}};
    struct streams st;
    int rc = 0;
    memset(&st, 0, sizeof st);
    memset(cs, 0, sizeof *cs);
    for (size_t i = 0; i < sizeof st.grid / sizeof st.grid[0]; i++)
        st.grid[i] = (randf() - 0.5f) * 0.4f;
    rc = nf_backend_init("ref", m, 0, &st.ref);
    if (rc == 0)
        rc = nf_backend_init("cuda", m, 0, &st.cuda);
    for (int s = 0; s < MAX_SLOTS && rc == 0; s++) {
        rc = nf_backend_slot_new(st.ref, &st.sr[s]);
        if (rc == 0)
            rc = nf_backend_slot_new(st.cuda, &st.sc[s]);
    }
    for (int slots = 1; slots <= MAX_SLOTS && rc == 0; slots++) {
        rc = stream_images(&st, &sizes[slots % 3], 1);
        for (int t = 0; t < 4 && rc == 0; t++) {
            if (t == 2) {
                nf_backend_slot_reset(st.ref, st.sr[0]);
                nf_backend_slot_reset(st.cuda, st.sc[0]);
            }
            rc = stream_batch(&st, slots, t);
        }
    }
    if (rc == 0)
        rc = stream_images(&st, sizes, 2);
    for (int t = 0; t < 3 && rc == 0; t++)
        rc = stream_batch(&st, MAX_SLOTS, t);
    int ok = rc == 0 && st.n > 0 && st.max <= max_level &&
             st.sum / st.n <= mean_level;
    printf("  %s 8-bit, batches 1..%d: %s, max diff %d, mean %.4f levels over "
           "%ld values\n",
           nf_model_name(m), MAX_SLOTS, nf_strerror(rc), st.max,
           st.n ? st.sum / st.n : 0.0, st.n);
    void *sym = st.cuda ? nf__cuda_symbol("nf__cuda_stats") : NULL;
    if (sym != NULL) {
        nf_cuda_stats_fn stats;
        memcpy(&stats, &sym, sizeof stats);
        stats(st.cuda, cs);
        printf("  %s passes %ld (mean batch %.2f), graphs captured %ld, "
               "replayed %ld; %d of %d convolutions on tensor cores; %ld "
               "frames uploaded from page-locked memory\n",
               nf_model_name(m), cs->passes,
               cs->passes ? (double)cs->items / cs->passes : 0.0, cs->captures,
               cs->replays, cs->tensor_ops, cs->convs, cs->direct);
    }
    streams_free(&st);
    return ok;
}

/* FP32 with graphs: floats within FLOAT_TOL, streams within one level, and
 * the graphs and batching really used. */
static int model_fp32_bad(const char *path, const struct nf_model *m, void *ctx)
{
    run_float_fn run = *(run_float_fn *)ctx;
    struct nf_cuda_stats cs;
    double fe = float_error_sizes(&run, 1, m, path);
    int bad =
        !(fe >= 0 && fe <= FLOAT_TOL) + !streams_agree(m, 1, MEAN_LEVEL, &cs);
    bad += !(cs.graphs == 1 && cs.captures > 0 && cs.replays > 0);
    bad += !(cs.items > cs.passes); /* Some passes carried several items. */
    bad += !(cs.direct > 0 && cs.direct < cs.items); /* Both paths ran. */
    return bad;
}

NF_TEST(backend_cuda_matches_cpu)
{
    NEED_CUDA(run);
    NF_CHECK(convs_ok(run));
    NF_CHECK(activations_ok(run));
    NF_CHECK(elementwise_ok(run));
    NF_CHECK(resample_ok(run));
    NF_CHECK(outputs_ok(run));
    NF_CHECK_INT_EQ(nf_cmp_each_shipped_model(model_fp32_bad, &run), 0);
}

/* NF_CUDA_GRAPHS=0: the same results, every pass run directly. */
static int model_no_graphs_bad(const char *path, const struct nf_model *m,
                               void *ctx)
{
    struct nf_cuda_stats cs;
    (void)path;
    (void)ctx;
    int bad = !streams_agree(m, 1, MEAN_LEVEL, &cs);
    return bad + !(cs.graphs == 0 && cs.captures == 0 && cs.replays == 0);
}

NF_TEST(backend_cuda_without_graphs_matches_cpu)
{
    NEED_CUDA(run);
    (void)run;
    setenv("NF_CUDA_GRAPHS", "0", 1);
    int bad = nf_cmp_each_shipped_model(model_no_graphs_bad, NULL);
    unsetenv("NF_CUDA_GRAPHS");
    NF_CHECK_INT_EQ(bad, 0);
}

/* NF_CUDA_HALF=1: floats within HALF_TOL, streams within HALF_MAX_LEVEL
 * and HALF_MEAN_LEVEL, and convolutions on tensor cores. */
static int model_half_bad(const char *path, const struct nf_model *m, void *ctx)
{
    run_float_fn run = *(run_float_fn *)ctx;
    struct nf_cuda_stats cs;
    double fe = float_error_sizes(&run, 1, m, path);
    int bad = !(fe >= 0 && fe <= HALF_TOL) +
              !streams_agree(m, HALF_MAX_LEVEL, HALF_MEAN_LEVEL, &cs);
    return bad + !(cs.half == 1 && cs.tensor_ops > 0);
}

NF_TEST(backend_cuda_half_matches_cpu)
{
    NEED_CUDA(run);
    setenv("NF_CUDA_HALF", "1", 1);
    int bad = nf_cmp_each_shipped_model(model_half_bad, &run);
    unsetenv("NF_CUDA_HALF");
    NF_CHECK_INT_EQ(bad, 0);
}

/*
 * A CUDA error in a pass (NF_CUDA_FAULT=3: every third pass gets a real
 * invalid-launch error) fails that batch's items with NF_EBACKEND, and the
 * backend goes on: the calls before and after it match the reference.
 */
NF_TEST(backend_cuda_error_fails_the_batch_and_recovers)
{
    static const int size[][2] = {{48, 64}};
    char err[512];
    struct nf_model *m = NULL;
    struct streams st;
    NEED_CUDA(run);
    (void)run;
    memset(&st, 0, sizeof st);
    NF_CHECK_INT_EQ(
        nf_model_load("models/toon.safetensors", &m, err, sizeof err), 0);
    if (m == NULL)
        return;
    setenv("NF_CUDA_FAULT", "3", 1);
    int rc = nf_backend_init("ref", m, 0, &st.ref);
    if (rc == 0)
        rc = nf_backend_init("cuda", m, 0, &st.cuda);
    unsetenv("NF_CUDA_FAULT");
    for (int s = 0; s < 2 && rc == 0; s++) {
        rc = nf_backend_slot_new(st.ref, &st.sr[s]);
        if (rc == 0)
            rc = nf_backend_slot_new(st.cuda, &st.sc[s]);
    }
    if (rc == 0)
        rc = stream_images(&st, size, 1);
    int failed = 0;
    for (int t = 0; t < 7 && rc == 0; t++) {
        st.expect_fail = t % 3 == 2; /* Passes 3 and 6. */
        failed += st.expect_fail;
        rc = stream_batch(&st, 2, t);
    }
    NF_CHECK_INT_EQ(rc, 0);
    NF_CHECK_INT_EQ(failed, 2);
    NF_CHECK(st.n > 0 && st.max <= 1 && st.sum / st.n <= MEAN_LEVEL);
    printf("  calls around the errors: max diff %d, mean %.4f levels\n", st.max,
           st.n ? st.sum / st.n : 0.0);
    streams_free(&st);
    nf_model_free(m);
}

NF_TEST_MAIN(NF_TEST_ENTRY(backend_cuda_missing_library_is_named) NF_TEST_ENTRY(
    backend_cuda_loads_or_falls_back) NF_TEST_ENTRY(backend_cuda_matches_cpu)
                 NF_TEST_ENTRY(backend_cuda_without_graphs_matches_cpu)
                     NF_TEST_ENTRY(backend_cuda_half_matches_cpu) NF_TEST_ENTRY(
                         backend_cuda_error_fails_the_batch_and_recovers))
