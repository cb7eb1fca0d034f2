/*
 * test-backend-dnnl.c - the oneDNN backend ("dnnl") against the reference
 * ("ref"): every op of MODEL.md and every fusion path of kernels/dnnl/plan.c
 * on small graphs built in memory, random graphs, every shipped model (odd
 * sizes, batches of several slots, several frames so that the cache is
 * exercised), PyTorch's golden outputs, and the backend names.
 *
 * Float outputs are compared with nf__dnnl_run_float / nf__cpu_run_float
 * as ||a - b|| / ||b||; 8-bit streams through the public API must agree
 * within one level everywhere and 0.05 levels on average. Prints SKIP when
 * the build has no oneDNN (NF_HAVE_DNNL) or it cannot run here.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend-impl.h"
#include "backend.h"
#include "error.h"
#include "model-builder.h"
#include "model.h"
#include "nf-test.h"

#ifndef NF_HAVE_DNNL

NF_TEST(backend_dnnl_is_built)
{
    NF_SKIP("built without oneDNN (NF_HAVE_DNNL unset)");
}

NF_TEST_MAIN(NF_TEST_ENTRY(backend_dnnl_is_built))

#else

#include "backend-compare.h"
#include "dnnl/backend-dnnl.h"
#include "dnnl/dnnl-impl.h"
#include "stabilize.h"

#define FLOAT_TOL  1e-5 /* Single ops: only the summation order differs. */
#define GRAPH_TOL  1e-4 /* Deep random graphs and whole models. */
#define MEAN_LEVEL 0.05 /* 8-bit streams: mean absolute difference. */

/* 1 if "dnnl" can run here, else prints why the test skips. */
static int dnnl_here(void)
{
    const char *const *names = nf_backend_list();
    for (int i = 0; names[i] != NULL; i++)
        if (strcmp(names[i], "dnnl") == 0)
            return 1;
    return 0;
}

#define NEED_DNNL()                                                            \
    do {                                                                       \
        if (!dnnl_here())                                                      \
            NF_SKIP("oneDNN backend not available");                           \
    } while (0)

/* The oneDNN backend's float path on one thread and on two. */
static int run_t1(const struct nf_model *m, const float *frame,
                  const float *const *cache, int h, int w, float *out)
{
    return nf__dnnl_run_float(m, 1, frame, cache, h, w, out);
}

static int run_t2(const struct nf_model *m, const float *frame,
                  const float *const *cache, int h, int w, float *out)
{
    return nf__dnnl_run_float(m, 2, frame, cache, h, w, out);
}

static const nf_cmp_run_fn both_teams[] = {run_t1, run_t2};

#define MAX_SLOTS 3

/*
 * Streams `frames` frames of each size through `slots` slots of "ref" and
 * "dnnl" in batches (one item per slot), resetting one slot halfway.
 * Returns 1 if all outputs agree within one level and MEAN_LEVEL on
 * average.
 */
static int streams_agree(const struct nf_model *m, const int (*sizes)[2],
                         int n_sizes, int frames, int slots, int threads)
{
    struct nf_backend *ref = NULL, *fast = NULL;
    struct nf_slot *sr[MAX_SLOTS] = {0}, *sf[MAX_SLOTS] = {0};
    int ok = 0, max = 0;
    double sum = 0;
    long n = 0;
    if (nf_backend_init("ref", m, 0, &ref) < 0 ||
        nf_backend_init("dnnl", m, threads, &fast) < 0)
        goto out;
    for (int s = 0; s < slots; s++)
        if (nf_backend_slot_new(ref, &sr[s]) < 0 ||
            nf_backend_slot_new(fast, &sf[s]) < 0)
            goto out;
    for (int z = 0; z < n_sizes; z++) {
        int w = sizes[z][1], h = sizes[z][0];
        struct nf_image in[MAX_SLOTS], oa[MAX_SLOTS], ob[MAX_SLOTS];
        for (int s = 0; s < slots; s++) {
            in[s] = image_new(w, h);
            oa[s] = image_new(w, h);
            ob[s] = image_new(w, h);
        }
        for (int t = 0; t < frames; t++) {
            struct nf_predict_item ia[MAX_SLOTS], ib[MAX_SLOTS];
            if (t == frames / 2) {
                nf_backend_slot_reset(ref, sr[0]);
                nf_backend_slot_reset(fast, sf[0]);
            }
            for (int s = 0; s < slots; s++) {
                scene(&in[s], t, s);
                ia[s] = (struct nf_predict_item){
                    .slot = sr[s], .in = &in[s], .out = &oa[s], .status = 1};
                ib[s] = (struct nf_predict_item){
                    .slot = sf[s], .in = &in[s], .out = &ob[s], .status = 1};
            }
            int ra = nf_backend_predict(ref, ia, slots);
            int rb = nf_backend_predict(fast, ib, slots);
            if (ra != 0 || rb != 0) {
                printf("  predict: %s / %s\n", nf_strerror(ra),
                       nf_strerror(rb));
                max = 999;
            }
            for (int s = 0; s < slots; s++)
                diff_images(&oa[s], &ob[s], &max, &sum, &n);
        }
        for (int s = 0; s < slots; s++) {
            free(in[s].data);
            free(oa[s].data);
            free(ob[s].data);
        }
    }
    ok = max <= 1 && n > 0 && sum / n <= MEAN_LEVEL;
    printf("  8-bit: max diff %d, mean %.4f levels over %ld values\n", max,
           n ? sum / n : 0.0, n);
out:
    for (int s = 0; s < slots; s++) {
        nf_backend_slot_free(ref, sr[s]);
        nf_backend_slot_free(fast, sf[s]);
    }
    nf_backend_free(ref);
    nf_backend_free(fast);
    return ok;
}

/* --- Graphs built in memory. --- */

/* Float comparison of one built model over several sizes. */
static int model_ok(struct nf_model *m, const char *what, double tol)
{
    if (m == NULL)
        return 0;
    double e = float_error_sizes(both_teams, 2, m, what);
    nf_model_free(m);
    return e >= 0 && e <= tol;
}

NF_TEST(backend_dnnl_conv_variants_match_ref)
{
    static const char *const ups[2] = {"upsample2x_nearest",
                                       "upsample2x_bilinear"};
    NEED_DNNL();
    for (size_t i = 0; i < NF_CMP_N_CONV_CASES; i++) {
        char what[96];
        struct nf_model *m = nf_cmp_conv_model(i, NULL, ups, what, sizeof what);
        NF_CHECK(model_ok(m, what, FLOAT_TOL));
    }
}

NF_TEST(backend_dnnl_conv_asymmetric_kernel_matches_ref)
{
    NEED_DNNL();
    /* kh 3, kw 4, stride 2, padding 1: different right pads per axis. */
    struct nf_mb b;
    nf_mb_init(&b, 7);
    conv_tensors(&b, "w", 8, 3, 3, 4);
    nf_mb_node(&b, "'name':'c','op':'conv2d','inputs':['frame'],'weight':"
                   "'w','bias':'w.b','stride':2,'padding':1,"
                   "'pad_mode':'reflect'");
    nf_mb_node(&b, "'name':'s','op':'pixel_shuffle','inputs':['c'],"
                   "'factor':2");
    conv_node(&b, "out", "s", 2, 3, 3, 1, 1, "reflect", 1);
    NF_CHECK(model_ok(finish(&b, 0, 2, "out"), "conv 3x4 s2", FLOAT_TOL));
}

NF_TEST(backend_dnnl_activations_fused_and_not_match_ref)
{
    NEED_DNNL();
    for (size_t i = 0; i < NF_CMP_N_ACTS; i++)
        NF_CHECK(
            model_ok(nf_cmp_activation_model(i), nf_cmp_acts[i], FLOAT_TOL));
}

NF_TEST(backend_dnnl_elementwise_and_scale_shift_match_ref)
{
    NEED_DNNL();
    struct nf_mb b;
    nf_mb_init(&b, 300);
    nf_mb_tensor(&b, "s8", 1, (int64_t[]){8}, NULL, 1.5f);
    nf_mb_tensor(&b, "t8", 1, (int64_t[]){8}, NULL, 0.5f);
    nf_mb_tensor(&b, "s3", 1, (int64_t[]){3}, NULL, 1.5f);
    nf_mb_tensor(&b, "t3", 1, (int64_t[]){3}, NULL, 0.5f);
    /* Folded into the conv (only reader), then not (read twice). */
    conv_node(&b, "c", "frame", 3, 8, 3, 1, 1, "zeros", 1);
    nf_mb_node(&b, "'name':'ss','op':'scale_shift','inputs':['c'],"
                   "'weight':'s8','bias':'t8'");
    nf_mb_node(&b, "'name':'r','op':'relu','inputs':['ss']");
    conv_node(&b, "d", "r", 8, 8, 3, 1, 1, "reflect", 1);
    nf_mb_node(&b, "'name':'ws','op':'scale_shift','inputs':['d'],"
                   "'weight':'s8'");
    nf_mb_node(&b, "'name':'bs','op':'scale_shift','inputs':['d'],"
                   "'bias':'t8'");
    nf_mb_node(&b, "'name':'m','op':'mul','inputs':['ws','bs']");
    nf_mb_node(&b, "'name':'a','op':'add','inputs':['m','m']");
    conv_node(&b, "o", "a", 8, 3, 1, 1, 0, "zeros", 1);
    nf_mb_node(&b, "'name':'fs','op':'scale_shift','inputs':['frame'],"
                   "'weight':'s3','bias':'t3'");
    nf_mb_node(&b, "'name':'out','op':'add','inputs':['fs','o']");
    NF_CHECK(model_ok(finish(&b, 0, 1, "out"), "elementwise", FLOAT_TOL));
}

NF_TEST(backend_dnnl_concat_paths_match_ref)
{
    NEED_DNNL();
    struct nf_mb b;
    nf_mb_init(&b, 400);
    /* Inputs: a leaf, a conv output (copied), a kernel of ours (written in
     * place), the same value twice; read by a conv and by a kernel. */
    conv_node(&b, "c", "frame", 3, 5, 3, 1, 1, "reflect", 1);
    nf_mb_node(&b, "'name':'r','op':'relu','inputs':['c']");
    nf_mb_node(&b, "'name':'e','op':'add','inputs':['frame','frame']");
    nf_mb_node(&b, "'name':'k','op':'concat','inputs':['frame','r','e','r']");
    conv_node(&b, "d", "k", 16, 6, 3, 1, 1, "reflect", 1);
    nf_mb_node(&b, "'name':'t','op':'tanh','inputs':['d']");
    nf_mb_node(&b, "'name':'u','op':'sigmoid','inputs':['frame']");
    nf_mb_node(&b, "'name':'k2','op':'concat','inputs':['u','t']");
    nf_mb_node(&b, "'name':'k3','op':'concat','inputs':['k2','k2']");
    nf_mb_node(&b, "'name':'n','op':'relu','inputs':['k3']");
    conv_node(&b, "out", "n", 18, 3, 1, 1, 0, "zeros", 1);
    NF_CHECK(model_ok(finish(&b, 0, 1, "out"), "concat", FLOAT_TOL));
}

NF_TEST(backend_dnnl_resample_and_norm_match_ref)
{
    NEED_DNNL();
    struct nf_mb b;
    nf_mb_init(&b, 500);
    nf_mb_tensor(&b, "nw", 1, (int64_t[]){8}, NULL, 1.0f);
    nf_mb_tensor(&b, "nb", 1, (int64_t[]){8}, NULL, 0.5f);
    conv_node(&b, "c", "frame", 3, 8, 3, 2, 1, "reflect", 1);
    nf_mb_node(&b, "'name':'n1','op':'instance_norm','inputs':['c'],"
                   "'weight':'nw','bias':'nb','eps':0.001");
    nf_mb_node(&b, "'name':'r1','op':'relu','inputs':['n1']");
    nf_mb_node(&b, "'name':'p','op':'avgpool2x2','inputs':['r1']");
    nf_mb_node(&b, "'name':'n2','op':'instance_norm','inputs':['p']");
    nf_mb_node(&b, "'name':'ub','op':'upsample2x_bilinear','inputs':['n2']");
    nf_mb_node(&b, "'name':'lr','op':'leaky_relu','inputs':['ub'],"
                   "'alpha':0.1");
    nf_mb_node(&b, "'name':'un','op':'upsample2x_nearest','inputs':['lr']");
    nf_mb_node(&b, "'name':'pf','op':'avgpool2x2','inputs':['frame']");
    nf_mb_node(&b, "'name':'uf','op':'upsample2x_bilinear','inputs':['pf']");
    conv_node(&b, "o", "un", 8, 3, 1, 1, 0, "zeros", 1);
    nf_mb_node(&b, "'name':'out','op':'add','inputs':['o','uf']");
    NF_CHECK(model_ok(finish(&b, 0, 4, "out"), "resample+norm", FLOAT_TOL));
}

NF_TEST(backend_dnnl_shuffles_match_ref)
{
    NEED_DNNL();
    for (int r = 2; r <= 4; r += 2) {
        struct nf_mb b;
        nf_mb_init(&b, 600 + (uint32_t)r);
        int c = 3 * r * r;
        /* unshuffle -> conv (permuted weights), unshuffle -> add (PyTorch
         * order), conv -> shuffle (permuted outputs), add -> shuffle
         * (strided view), shuffle -> conv (copied). */
        nf_mb_node(&b,
                   "'name':'u','op':'pixel_unshuffle','inputs':['frame'],"
                   "'factor':%d",
                   r);
        conv_node(&b, "c", "u", c, 4 * r * r, 3, 1, 1, "reflect", 1);
        nf_mb_node(&b,
                   "'name':'s','op':'pixel_shuffle','inputs':['c'],"
                   "'factor':%d",
                   r);
        nf_mb_node(&b,
                   "'name':'u2','op':'pixel_unshuffle','inputs':['s'],"
                   "'factor':%d",
                   r);
        nf_mb_node(&b, "'name':'a','op':'add','inputs':['u2','c']");
        nf_mb_node(&b,
                   "'name':'s2','op':'pixel_shuffle','inputs':['a'],"
                   "'factor':%d",
                   r);
        conv_node(&b, "d", "s2", 4, 3, 3, 1, 1, "zeros", 1);
        nf_mb_node(&b, "'name':'e','op':'relu','inputs':['u']");
        nf_mb_node(&b,
                   "'name':'s3','op':'pixel_shuffle','inputs':['e'],"
                   "'factor':%d",
                   r);
        nf_mb_node(&b, "'name':'out','op':'add','inputs':['d','s3']");
        char what[32];
        snprintf(what, sizeof what, "shuffles r%d", r);
        NF_CHECK(model_ok(finish(&b, 0, r, "out"), what, FLOAT_TOL));
    }
}

NF_TEST(backend_dnnl_input_block_matches_ref)
{
    NEED_DNNL();
    /* Concats of the frame and the cache in various orders, unshuffled or
     * not, as the first layer reads them (plan.c's input block). */
    static const char *const orders[] = {
        "'frame','cache.0','cache.1'", "'cache.1','frame','cache.0'",
        "'cache.0','cache.1'", "'cache.1','cache.0','cache.2','frame'"};
    static const int ks[] = {2, 2, 2, 3}, inputs[] = {3, 3, 2, 4};
    for (int i = 0; i < 4; i++)
        for (int r = 1; r <= 2; r++) {
            struct nf_mb b;
            nf_mb_init(&b, 700 + (uint32_t)(i * 2 + r));
            int c = 3 * inputs[i] * r * r;
            nf_mb_node(&b, "'name':'x','op':'concat','inputs':[%s]", orders[i]);
            const char *in = "x";
            if (r == 2) {
                nf_mb_node(&b, "'name':'xu','op':'pixel_unshuffle',"
                               "'inputs':['x'],'factor':2");
                in = "xu";
            }
            conv_node(&b, "c", in, c, 12, 1, 1, 0, "zeros", 1);
            nf_mb_node(&b, "'name':'cr','op':'relu','inputs':['c']");
            conv_node(&b, "d", "cr", 12, 3 * r * r, 3, 1, 1, "reflect", 1);
            const char *y = "d";
            if (r == 2) {
                nf_mb_node(&b, "'name':'ds','op':'pixel_shuffle',"
                               "'inputs':['d'],'factor':2");
                y = "ds";
            }
            nf_mb_node(&b, "'name':'out','op':'add','inputs':['frame','%s']",
                       y);
            char what[96];
            snprintf(what, sizeof what, "block [%s] r%d", orders[i], r);
            struct nf_model *m = finish(&b, ks[i], r, "out");
            NF_CHECK(m != NULL);
            const int sizes[][2] = {{6, 10}, {13, 7}, {2, 2}};
            int ok = streams_agree(m, sizes, 3, 5, 2, 1);
            NF_CHECK(model_ok(m, what, FLOAT_TOL));
            NF_CHECK(ok);
        }
}

NF_TEST(backend_dnnl_residual_paths_match_ref)
{
    NEED_DNNL();
    struct nf_mb b;
    nf_mb_init(&b, 800);
    conv_node(&b, "a", "frame", 3, 8, 3, 1, 1, "reflect", 1);
    nf_mb_node(&b, "'name':'ar','op':'relu','inputs':['a']");
    /* Addend dies at the add: in place. */
    conv_node(&b, "b", "ar", 8, 8, 3, 1, 1, "reflect", 1);
    nf_mb_node(&b, "'name':'s1','op':'add','inputs':['b','ar']");
    nf_mb_node(&b, "'name':'s1r','op':'relu','inputs':['s1']");
    /* Addend still needed afterwards: copied. */
    conv_node(&b, "c", "s1r", 8, 8, 1, 1, 0, "zeros", 1);
    nf_mb_node(&b, "'name':'s2','op':'add','inputs':['s1r','c']");
    /* Addend computed after the conv: no fusion. */
    conv_node(&b, "d", "s2", 8, 8, 3, 1, 1, "zeros", 1);
    nf_mb_node(&b, "'name':'late','op':'sigmoid','inputs':['s1r']");
    nf_mb_node(&b, "'name':'s3','op':'add','inputs':['d','late']");
    nf_mb_node(&b, "'name':'s4','op':'add','inputs':['s3','s1r']");
    conv_node(&b, "out", "s4", 8, 3, 3, 1, 1, "reflect", 1);
    NF_CHECK(model_ok(finish(&b, 0, 1, "out"), "residuals", FLOAT_TOL));
}

NF_TEST(backend_dnnl_output_forms_match_ref)
{
    NEED_DNNL();
    const int sizes[][2] = {{5, 9}, {8, 8}};
    /* Identity; the newest cache frame; a conv; a resample. */
    struct nf_mb b;
    nf_mb_init(&b, 900);
    struct nf_model *m = finish(&b, 0, 1, "frame");
    NF_CHECK(m != NULL);
    NF_CHECK(streams_agree(m, sizes, 2, 3, 2, 2));
    NF_CHECK(model_ok(m, "identity", 0));
    nf_mb_init(&b, 901);
    m = finish(&b, 2, 1, "cache.1");
    NF_CHECK(m != NULL);
    NF_CHECK(streams_agree(m, sizes, 2, 4, 2, 2));
    NF_CHECK(model_ok(m, "cache.1", 0));
    nf_mb_init(&b, 902);
    conv_node(&b, "out", "frame", 3, 3, 3, 1, 1, "zeros", 1);
    m = finish(&b, 1, 1, "out");
    NF_CHECK(m != NULL);
    NF_CHECK(streams_agree(m, sizes, 2, 4, 2, 2));
    NF_CHECK(model_ok(m, "conv output", FLOAT_TOL));
    /* A concat; a shuffled conv; an instance norm. */
    nf_mb_init(&b, 904);
    conv_node(&b, "a", "frame", 3, 1, 3, 1, 1, "reflect", 1);
    conv_node(&b, "c", "cache.0", 3, 2, 1, 1, 0, "zeros", 1);
    nf_mb_node(&b, "'name':'out','op':'concat','inputs':['a','c']");
    m = finish(&b, 1, 1, "out");
    NF_CHECK(m != NULL);
    NF_CHECK(streams_agree(m, sizes, 2, 4, 2, 2));
    NF_CHECK(model_ok(m, "concat output", FLOAT_TOL));
    nf_mb_init(&b, 905);
    conv_node(&b, "c", "frame", 3, 12, 3, 2, 1, "reflect", 1);
    nf_mb_node(&b, "'name':'out','op':'pixel_shuffle','inputs':['c'],"
                   "'factor':2");
    m = finish(&b, 0, 2, "out");
    NF_CHECK(m != NULL);
    NF_CHECK(streams_agree(m, sizes, 2, 2, 2, 2));
    NF_CHECK(model_ok(m, "shuffle output", FLOAT_TOL));
    nf_mb_init(&b, 906);
    nf_mb_node(&b, "'name':'out','op':'instance_norm','inputs':['frame']");
    m = finish(&b, 0, 1, "out");
    NF_CHECK(m != NULL);
    NF_CHECK(streams_agree(m, sizes, 2, 2, 2, 2));
    NF_CHECK(model_ok(m, "norm output", GRAPH_TOL));
    nf_mb_init(&b, 903);
    nf_mb_node(&b, "'name':'p','op':'avgpool2x2','inputs':['cache.0']");
    nf_mb_node(&b, "'name':'out','op':'upsample2x_bilinear','inputs':['p']");
    m = finish(&b, 1, 2, "out");
    NF_CHECK(m != NULL);
    NF_CHECK(streams_agree(m, sizes, 2, 4, 2, 2));
    NF_CHECK(model_ok(m, "resample output", FLOAT_TOL));
}

/* --- Random graphs. --- */

struct rvalue {
    char name[16];
    int c, shift, used;
};

/* Appends ,'name' to list (cap bytes). */
static void list_add(char *list, size_t cap, const char *name)
{
    size_t l = strlen(list), n = strlen(name);
    if (l + n + 4 >= cap)
        return;
    list[l++] = ',';
    list[l++] = '\'';
    memcpy(list + l, name, n);
    l += n;
    list[l++] = '\'';
    list[l] = '\0';
}

/* A random valid graph of about n nodes whose every node reaches the
 * output; K cache frames, shifts -1..2. */
static struct nf_model *random_graph(uint32_t seed, int n, int k)
{
    struct nf_mb b;
    struct rvalue v[128];
    int nv = 0, id = 0;
    nf_mb_init(&b, seed);
    nf_cmp_rng = seed * 2654435761u + 1;
    v[nv++] = (struct rvalue){"frame", 3, 0, 0};
    for (int j = 0; j < k; j++) {
        snprintf(v[nv].name, sizeof v[nv].name, "cache.%d", j);
        v[nv].c = 3;
        v[nv].shift = 0;
        v[nv++].used = 0;
    }
    for (int step = 0; step < n && nv < 100; step++) {
        struct rvalue *x = &v[(int)(randf() * nv)];
        struct rvalue o = {"", x->c, x->shift, 0};
        snprintf(o.name, sizeof o.name, "n%d", id++);
        int op = (int)(randf() * 12);
        if (op <= 3) { /* conv */
            static const int cs[] = {3, 4, 8, 12, 16};
            int kk = 1 + 2 * (int)(randf() * 3), s = 1, pad = (kk - 1) / 2;
            if (x->shift < 2 && randf() < 0.3f) {
                s = 2;
                kk = randf() < 0.5f ? 3 : 2;
                pad = kk == 3;
            }
            o.c = cs[(int)(randf() * 5)];
            int g = (x->c % 2 == 0 && o.c % 2 == 0 && randf() < 0.2f) ? 2 : 1;
            o.shift = x->shift + (s == 2);
            conv_node(&b, o.name, x->name, x->c, o.c, kk, s, pad,
                      randf() < 0.5f ? "reflect" : "zeros", g);
        } else if (op == 4) {
            nf_mb_node(&b, "'name':'%s',%s,'inputs':['%s']", o.name,
                       nf_cmp_acts[(int)(randf() * NF_CMP_N_ACTS)], x->name);
        } else if (op == 5 || op == 6) { /* add/mul with a same-shape value */
            int p = (int)(x - v);        /* x itself if nothing else fits. */
            for (int t = 0; t < nv; t++)
                if (v[t].c == x->c && v[t].shift == x->shift &&
                    (p < 0 || randf() < 0.5f))
                    p = t;
            nf_mb_node(&b, "'name':'%s','op':'%s','inputs':['%s','%s']", o.name,
                       op == 5 ? "add" : "mul", x->name, v[p].name);
            v[p].used = 1;
        } else if (op == 7) { /* concat with same-size values */
            char list[256];
            snprintf(list, sizeof list, "'%s'", x->name);
            for (int t = 0; t < nv; t++)
                if (v[t].shift == x->shift && randf() < 0.3f &&
                    o.c + v[t].c <= 64) {
                    list_add(list, sizeof list, v[t].name);
                    o.c += v[t].c;
                    v[t].used = 1;
                }
            if (o.c == x->c) {
                list_add(list, sizeof list, x->name);
                o.c *= 2;
            }
            nf_mb_node(&b, "'name':'%s','op':'concat','inputs':[%s]", o.name,
                       list);
        } else if (op == 8 && x->shift > -1) {
            o.shift--;
            nf_mb_node(&b, "'name':'%s','op':'%s','inputs':['%s']", o.name,
                       randf() < 0.5f ? "upsample2x_nearest"
                                      : "upsample2x_bilinear",
                       x->name);
        } else if (op == 8) {
            o.shift++;
            nf_mb_node(&b, "'name':'%s','op':'avgpool2x2','inputs':['%s']",
                       o.name, x->name);
        } else if (op == 9) {
            nf_mb_node(&b, "'name':'%s','op':'instance_norm','inputs':['%s']",
                       o.name, x->name);
        } else if (op == 10 && x->c % 4 == 0 && x->shift > -1) {
            o.c /= 4;
            o.shift--;
            nf_mb_node(&b,
                       "'name':'%s','op':'pixel_shuffle','inputs':['%s'],"
                       "'factor':2",
                       o.name, x->name);
        } else if (x->shift < 2 && x->c <= 16) {
            o.c *= 4;
            o.shift++;
            nf_mb_node(&b,
                       "'name':'%s','op':'pixel_unshuffle','inputs':['%s'],"
                       "'factor':2",
                       o.name, x->name);
        } else {
            nf_mb_node(&b, "'name':'%s','op':'relu','inputs':['%s']", o.name,
                       x->name);
        }
        x->used = 1;
        v[nv++] = o;
    }
    /* Every unused node value: to full size, 3 channels, summed. */
    char acc[16] = "frame";
    for (int t = 1 + k; t < nv; t++) {
        if (v[t].used)
            continue;
        char cur[16];
        snprintf(cur, sizeof cur, "%s", v[t].name);
        for (int s = v[t].shift; s != 0; s += s > 0 ? -1 : 1) {
            char nx[16];
            snprintf(nx, sizeof nx, "z%d", id++);
            nf_mb_node(&b, "'name':'%s','op':'%s','inputs':['%s']", nx,
                       s > 0 ? "upsample2x_nearest" : "avgpool2x2", cur);
            snprintf(cur, sizeof cur, "%s", nx);
        }
        char cv[16], sum[16];
        snprintf(cv, sizeof cv, "z%d", id++);
        snprintf(sum, sizeof sum, "z%d", id++);
        conv_node(&b, cv, cur, v[t].c, 3, 1, 1, 0, "zeros", 1);
        nf_mb_node(&b, "'name':'%s','op':'add','inputs':['%s','%s']", sum, acc,
                   cv);
        snprintf(acc, sizeof acc, "%s", sum);
    }
    struct nf_model *m = nf_mb_load(&b, "random", k, 4, acc);
    nf_mb_free(&b);
    return m;
}

NF_TEST(backend_dnnl_random_graphs_match_ref)
{
    NEED_DNNL();
    int failures = 0;
    for (uint32_t seed = 1; seed <= 150; seed++) {
        struct nf_model *m =
            random_graph(seed, 4 + (int)(seed % 12), (int)(seed % 3));
        NF_CHECK(m != NULL);
        uint32_t saved = nf_cmp_rng;
        double e =
            float_error(both_teams[seed % 2], m, 4 * (1 + (int)(seed % 5)),
                        4 * (2 + (int)(seed % 7)));
        nf_cmp_rng = saved;
        if (e < 0 || e > GRAPH_TOL) {
            printf("  random graph %u: error %.3g\n", seed, e);
            failures++;
        }
        nf_model_free(m);
    }
    NF_CHECK_INT_EQ(failures, 0);
}

/* --- Shipped models, goldens, names, semantics. --- */

/* Calls fn(path) for every .safetensors file in models/; returns the
 * count, or minus the number of failures. */
static int shipped_model_bad(const char *path, const struct nf_model *m,
                             void *ctx)
{
    (void)ctx;
    printf("  %s\n", path);
    /* Odd sizes (padded and cropped), a batch of three slots, several
     * frames, a reset; team sizes 1 and 2. */
    const int sizes[][2] = {{37, 61}, {48, 64}, {17, 9}};
    int ok = streams_agree(m, sizes, 3, 4, 3, 2) &&
             streams_agree(m, sizes, 1, 3, 1, 1);
    double e = float_error_sizes(both_teams, 2, m, nf_model_name(m));
    return !(ok && e >= 0 && e <= GRAPH_TOL);
}

NF_TEST(backend_dnnl_shipped_models_match_ref)
{
    NEED_DNNL();
    NF_CHECK_INT_EQ(nf_cmp_each_shipped_model(shipped_model_bad, NULL), 0);
}

static float load_f32le(const uint8_t *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* The dnnl float output against a PyTorch fixture (test-golden.c's). */
static double golden(const char *model, const char *fixture)
{
    const int gh = 32, gw = 48;
    char err[512];
    struct nf_model *m = NULL;
    double e = -1;
    if (nf_model_load(model, &m, err, sizeof err) < 0) {
        printf("  %s\n", err);
        return -1;
    }
    int k = nf_model_cache_frames(m);
    size_t plane = (size_t)3 * gh * gw, n = plane * (size_t)(k + 2);
    float *buf = malloc((n + plane) * sizeof *buf);
    uint8_t *raw = malloc(4 * n);
    FILE *f = fopen(fixture, "rb");
    if (buf != NULL && raw != NULL && f != NULL && fread(raw, 4, n, f) == n) {
        const float *cache[NF_MAX_CACHE];
        for (size_t i = 0; i < n; i++)
            buf[i] = load_f32le(raw + 4 * i);
        for (int j = 0; j < k; j++)
            cache[j] = buf + plane * (size_t)(1 + j);
        if (nf__dnnl_run_float(m, 0, buf, cache, gh, gw, buf + n) == 0)
            e = nf_test_rel_error(buf + n, buf + plane * (size_t)(1 + k),
                                  plane);
    }
    if (f != NULL)
        fclose(f);
    printf("  %s: ||a-b||/||b|| = %.3g against PyTorch\n", model, e);
    free(raw);
    free(buf);
    nf_model_free(m);
    return e;
}

NF_TEST(backend_dnnl_matches_pytorch_goldens)
{
    NEED_DNNL();
    static const char *const cases[][2] = {
        {"models/toon.safetensors", "tests/golden/toon.f32"},
        {"models/sketch.safetensors", "tests/golden/sketch.f32"},
        {"models/oil.safetensors", "tests/golden/oil.f32"},
        {"tests/golden/transformernet-random.safetensors",
         "tests/golden/transformernet-random.f32"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double e = golden(cases[i][0], cases[i][1]);
        NF_CHECK(e >= 0 && e <= GRAPH_TOL);
    }
}

NF_TEST(backend_dnnl_transformernet_matches_ref)
{
    NEED_DNNL();
    char err[512];
    struct nf_model *m = NULL;
    NF_CHECK(nf_model_load("tests/golden/transformernet-random.safetensors", &m,
                           err, sizeof err) == 0);
    const int sizes[][2] = {{18, 26}, {12, 16}};
    int ok = streams_agree(m, sizes, 2, 2, 2, 2);
    nf_model_free(m);
    NF_CHECK(ok);
}

/* Names: "cpu" and "auto" pick dnnl, "ref" the reference. */
NF_TEST(backend_dnnl_names)
{
    NEED_DNNL();
    struct nf_mb b;
    nf_mb_init(&b, 1);
    struct nf_model *m = finish(&b, 0, 1, "frame");
    NF_CHECK(m != NULL);
    static const char *const asked[] = {"auto", "cpu", "dnnl", "ref"};
    static const char *const got[] = {"dnnl", "dnnl", "dnnl", "ref"};
    for (int i = 0; i < 4; i++) {
        struct nf_backend *be = NULL;
        int rc = nf_backend_init(asked[i], m, 0, &be);
        int same = rc == 0 && strcmp(nf_backend_name(be), got[i]) == 0;
        nf_backend_free(be);
        if (!same)
            nf_model_free(m);
        NF_CHECK(same);
    }
    nf_model_free(m);
}

/* Many resolutions on one backend (more than it keeps instantiated). */
NF_TEST(backend_dnnl_resolution_changes_match_ref)
{
    NEED_DNNL();
    char err[512];
    struct nf_model *m = NULL;
    NF_CHECK(nf_model_load("models/toon.safetensors", &m, err, sizeof err) ==
             0);
    const int sizes[][2] = {{8, 8},   {20, 36}, {9, 5}, {64, 40},
                            {12, 12}, {20, 36}, {8, 8}, {33, 47},
                            {4, 4},   {64, 40}, {9, 5}, {20, 36}};
    int ok = streams_agree(m, sizes, 12, 2, 2, 2);
    nf_model_free(m);
    NF_CHECK(ok);
}

/*
 * Streams two slots through "ref" and "dnnl" in one batch with drift
 * corrections (backend.h): decay, decay maps and offsets, changing per
 * frame. Returns 1 if the 8-bit outputs agree.
 */
static int corrected_streams(const struct nf_model *m)
{
    struct nf_backend *ref = NULL, *fast = NULL;
    struct nf_slot *sr[2] = {0}, *sf[2] = {0};
    int w = 45, h = 29, max = 0; /* Odd: cells cut by both edges. */
    double sum = 0;
    long n = 0;
    struct nf_image in = image_new(w, h),
                    oa[2] = {image_new(w, h), image_new(w, h)},
                    ob[2] = {image_new(w, h), image_new(w, h)};
    float grid[3 * 3 * 4], map[45 * 30];
    for (int i = 0; i < 36; i++)
        grid[i] = (randf() - 0.5f) * 0.4f;
    for (int i = 0; i < w * h; i++)
        map[i] = randf();
    int rc = nf_backend_init("ref", m, 0, &ref);
    if (rc == 0)
        rc = nf_backend_init("dnnl", m, 0, &fast);
    for (int k = 0; k < 2 && rc == 0; k++) {
        rc = nf_backend_slot_new(ref, &sr[k]);
        if (rc == 0)
            rc = nf_backend_slot_new(fast, &sf[k]);
    }
    for (int t = 0; t < 6 && rc == 0; t++) {
        struct nf_correction c[2] = {
            {.offset = t % 2 ? grid : NULL,
             .grid_w = 4,
             .grid_h = 3,
             .decay = 0.3f,
             .decay_map = t % 3 == 2 ? map : NULL},
            {.offset = grid, .grid_w = 2, .grid_h = 1, .decay = 0.05f * t}};
        struct nf_predict_item ia[2], ib[2];
        scene(&in, t, 0);
        for (int k = 0; k < 2; k++) {
            const struct nf_correction *ck = t > 0 ? &c[k] : NULL;
            ia[k] = (struct nf_predict_item){
                .slot = sr[k], .in = &in, .out = &oa[k], .corr = ck};
            ib[k] = (struct nf_predict_item){
                .slot = sf[k], .in = &in, .out = &ob[k], .corr = ck};
        }
        rc = nf_backend_predict(ref, ia, 2);
        if (rc == 0)
            rc = nf_backend_predict(fast, ib, 2);
        for (int k = 0; k < 2; k++)
            diff_images(&oa[k], &ob[k], &max, &sum, &n);
    }
    printf("  %s corrected: %s, max diff %d, mean %.4f\n", nf_model_name(m),
           nf_strerror(rc), max, n ? sum / n : 0.0);
    nf_backend_free(ref);
    nf_backend_free(fast);
    free(in.data);
    for (int k = 0; k < 2; k++) {
        free(oa[k].data);
        free(ob[k].data);
    }
    return rc == 0 && n > 0 && max <= 1 && sum / n <= MEAN_LEVEL;
}

/* Drift correction with the input block (toon), a ring (default), K = 0. */
NF_TEST(backend_dnnl_correction_matches_ref)
{
    NEED_DNNL();
    static const char *const paths[] = {
        "models/toon.safetensors", "models/default.safetensors",
        "tests/golden/transformernet-random.safetensors"};
    for (int i = 0; i < 3; i++) {
        char err[512];
        struct nf_model *m = NULL;
        NF_CHECK(nf_model_load(paths[i], &m, err, sizeof err) == 0);
        int ok = corrected_streams(m);
        nf_model_free(m);
        NF_CHECK(ok);
    }
}

/* One stream's stabilizer state (struct nf_corr_motion, nf_corr_stab). */
struct stab_side {
    struct nf_backend *b;
    struct nf_slot *slot;
    struct nf_image out;
    uint8_t *prev, *copy, *shown;
    float *motion, *beta, *avg;
};

static int stab_side_init(struct stab_side *sd, const struct nf_model *m, int w,
                          int h)
{
    size_t n = (size_t)w * h;
    memset(sd, 0, sizeof *sd);
    sd->out = image_new(w, h);
    sd->prev = malloc(3 * n);
    sd->copy = malloc(3 * n);
    sd->shown = malloc(3 * n);
    sd->motion = malloc(n * sizeof(float));
    sd->beta = malloc(n * sizeof(float));
    sd->avg = malloc(3 * n * sizeof(float));
    if (!sd->out.data || !sd->prev || !sd->copy || !sd->shown || !sd->motion ||
        !sd->beta || !sd->avg)
        return NF_ENOMEM;
    int rc = nf_backend_init("dnnl", m, 2, &sd->b);
    return rc == 0 ? nf_backend_slot_new(sd->b, &sd->slot) : rc;
}

static void stab_side_free(struct stab_side *sd)
{
    nf_backend_free(sd->b);
    free(sd->out.data);
    free(sd->prev);
    free(sd->copy);
    free(sd->shown);
    free(sd->motion);
    free(sd->beta);
    free(sd->avg);
}

/*
 * m on a w x h stream twice on "dnnl": side 0 hands the motion map and
 * the stabilizer to predict (its threads run them, after the offset), side
 * 1 runs them itself with stabilize.h around a plain corrected predict, as
 * temporal.c does for "cuda". Returns the number of differing output bytes
 * and state values over the frames, or -1 on an error.
 */
static long stabilized_streams(const struct nf_model *m, int w, int h)
{
    struct stab_side sd[2];
    struct nf_image in = image_new(w, h);
    float grid[3 * 3 * 4];
    size_t n = (size_t)w * h;
    long differ = 0;
    for (int i = 0; i < 36; i++)
        grid[i] = (randf() - 0.5f) * 0.2f;
    int rc = in.data ? 0 : NF_ENOMEM;
    for (int k = 0; k < 2; k++) {
        int r = stab_side_init(&sd[k], m, w, h);
        rc = rc < 0 ? rc : r;
    }
    for (int t = 0; t < 8 && rc == 0; t++) {
        scene(&in, t / 2, 0); /* Frames in pairs: still and moving pixels. */
        for (int k = 0; k < 2 && rc == 0; k++) {
            struct stab_side *d = &sd[k];
            struct nf_corr_motion mo = {d->prev, d->copy, d->motion,
                                        d->beta, 3.0f,    0.8f};
            struct nf_corr_stab st = {d->motion, d->avg, d->shown, 0.1f, 2.0f};
            struct nf_correction c = {.offset = t % 3 ? grid : NULL,
                                      .grid_w = 4,
                                      .grid_h = 3,
                                      .decay = 0.05f,
                                      .decay_map = d->beta};
            if (t > 0 && k == 0) {
                c.motion = &mo;
                c.stab = &st;
            } else if (t > 0) {
                nf_stab_motion_rows(&mo, c.decay, &in, 0, h);
            }
            struct nf_predict_item it = {
                .slot = d->slot, .in = &in, .out = &d->out, .corr = &c};
            if (t == 0)
                it.corr = NULL;
            rc = nf_backend_predict(d->b, &it, 1);
            if (rc == 0 && t > 0 && k == 1)
                nf_stab_rows(&st, &d->out, 0, h);
            if (t == 0) /* The stabilizer starts from the first output. */
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < 3 * w; x++) {
                        uint8_t v = d->out.data[(size_t)y * d->out.stride + x];
                        d->shown[(size_t)y * 3 * w + x] = v;
                        d->avg[(size_t)y * 3 * w + x] = v;
                    }
            for (int y = 0; y < h; y++) /* The next frame's previous input. */
                memcpy(d->prev + (size_t)y * 3 * w,
                       in.data + (size_t)y * in.stride, (size_t)3 * w);
        }
        int max = 0;
        double sum = 0;
        long cnt = 0;
        diff_images(&sd[0].out, &sd[1].out, &max, &sum, &cnt);
        differ += (long)(sum > 0);
        for (size_t i = 0; t > 0 && i < 3 * n; i++)
            differ += sd[0].shown[i] != sd[1].shown[i] ||
                      sd[0].avg[i] != sd[1].avg[i] ||
                      sd[0].copy[i] != sd[1].copy[i] ||
                      (i < n && (sd[0].motion[i] != sd[1].motion[i] ||
                                 sd[0].beta[i] != sd[1].beta[i]));
    }
    printf("  %s %dx%d stabilized in predict vs after it: %s, %ld differ\n",
           nf_model_name(m), w, h, nf_strerror(rc), differ);
    for (int k = 0; k < 2; k++)
        stab_side_free(&sd[k]);
    free(in.data);
    return rc < 0 ? -1 : differ;
}

/* The motion map and stabilizer run by "dnnl" (operations 3 and 4 of
 * kernels/correct.h, split over its threads) give exactly what stabilize.h
 * gives around a plain predict: odd sizes (rows not a multiple of 8
 * pixels, cells cut by the edges), frames with and without an offset. */
NF_TEST(backend_dnnl_stabilizer_matches_host)
{
    NEED_DNNL();
    char err[512];
    struct nf_model *m = NULL;
    NF_CHECK(nf_model_load("models/toon.safetensors", &m, err, sizeof err) ==
             0);
    NF_CHECK_INT_EQ(stabilized_streams(m, 45, 29), 0);
    NF_CHECK_INT_EQ(stabilized_streams(m, 64, 32), 0);
    nf_model_free(m);
}

/*
 * Runs the thread plan on synthetic frames: ms[0] per frame on one thread
 * and ms[1] on the team, for n frames; returns how many ran on the team.
 */
static int plan_frames(struct nf_dnnl_threads *t, double one, double team,
                       int n)
{
    int on_team = 0;
    for (int i = 0; i < n; i++) {
        int mode = nf__dnnl_threads_pick(t);
        on_team += mode;
        nf__dnnl_threads_account(t, mode, mode ? team : one, 640.0 * 480);
    }
    return on_team;
}

/* The adaptive plan keeps the faster team size, leaves a collapsed team
 * within a few frames and comes back when the collapse ends, but stays
 * with its choice over a lone slow frame, and judges a try by its faster
 * frame. */
NF_TEST(backend_dnnl_thread_plan_follows_frame_times)
{
    NEED_DNNL();
    struct nf_dnnl_threads t;
    nf__dnnl_threads_init(&t, 2, 1);
    t.cpus = 0; /* No /proc/stat: the test sees only its frame times. */
    NF_CHECK(plan_frames(&t, 12, 7, 200) >= 190);
    /* The other core gets busy: the team collapses to 60 ms a frame. */
    int slow = plan_frames(&t, 13, 60, 20);
    printf("  collapse: %d team frames in the next 20\n", slow);
    NF_CHECK(slow <= 4); /* Two to confirm it, one try of two frames. */
    NF_CHECK_INT_EQ(t.mode, 0);
    slow = plan_frames(&t, 13, 60, 2000);
    printf("  busy: %d team frames in 2000\n", slow);
    NF_CHECK(slow <= 24); /* Tries of two frames, ever rarer. */
    /* It is free again: back on the team within the longest interval. */
    int back = plan_frames(&t, 12, 7, 600);
    printf("  free again: %d of 600 frames on the team\n", back);
    NF_CHECK(back >= 600 - 512 - 16);
    NF_CHECK_INT_EQ(t.mode, 1);
    /* A lone slow team frame (the VM pausing a core for a moment) keeps
     * the team: no detour of several frames on one thread. */
    plan_frames(&t, 12, 7, 600);
    NF_CHECK_INT_EQ(t.mode, 1);
    NF_CHECK_INT_EQ(nf__dnnl_threads_pick(&t), 1);
    nf__dnnl_threads_account(&t, 1, 30, 640.0 * 480);
    int kept = plan_frames(&t, 12, 7, 8);
    printf("  a lone 30 ms team frame: %d of the next 8 frames on the team\n",
           kept);
    NF_CHECK_INT_EQ(kept, 8);
    /* Two in a row are a collapse: the next frame tries one thread. */
    for (int i = 0; i < 2; i++) {
        NF_CHECK_INT_EQ(nf__dnnl_threads_pick(&t), 1);
        nf__dnnl_threads_account(&t, 1, 30, 640.0 * 480);
    }
    NF_CHECK_INT_EQ(nf__dnnl_threads_pick(&t), 0);
    /* Back to 7 ms team frames; on one thread now, a try of the team whose
     * first frame wakes sleeping threads (30 ms) still wins on its second. */
    plan_frames(&t, 12, 7, 600);
    NF_CHECK_INT_EQ(t.mode, 1);
    nf__dnnl_threads_init(&t, 2, 1);
    t.cpus = 0;
    t.mode = 0;
    t.ns_px[0] = 12 / (640.0 * 480) * 1e6;
    t.ns_px[1] = 7 / (640.0 * 480) * 1e6;
    t.until_probe = 0;
    for (int i = 0; i < 2; i++) {
        NF_CHECK_INT_EQ(nf__dnnl_threads_pick(&t), 1);
        nf__dnnl_threads_account(&t, 1, i == 0 ? 30 : 7, 640.0 * 480);
    }
    NF_CHECK_INT_EQ(t.mode, 1);
    /* A fixed team size never changes. */
    nf__dnnl_threads_init(&t, 2, 0);
    NF_CHECK_INT_EQ(plan_frames(&t, 1, 100, 50), 50);
}

NF_TEST_MAIN(
    NF_TEST_ENTRY(backend_dnnl_names) NF_TEST_ENTRY(
        backend_dnnl_thread_plan_follows_frame_times)
        NF_TEST_ENTRY(backend_dnnl_conv_variants_match_ref) NF_TEST_ENTRY(
            backend_dnnl_conv_asymmetric_kernel_matches_ref)
            NF_TEST_ENTRY(backend_dnnl_activations_fused_and_not_match_ref) NF_TEST_ENTRY(
                backend_dnnl_elementwise_and_scale_shift_match_ref)
                NF_TEST_ENTRY(backend_dnnl_concat_paths_match_ref) NF_TEST_ENTRY(
                    backend_dnnl_resample_and_norm_match_ref)
                    NF_TEST_ENTRY(backend_dnnl_shuffles_match_ref) NF_TEST_ENTRY(
                        backend_dnnl_input_block_matches_ref)
                        NF_TEST_ENTRY(backend_dnnl_residual_paths_match_ref) NF_TEST_ENTRY(
                            backend_dnnl_output_forms_match_ref)
                            NF_TEST_ENTRY(backend_dnnl_random_graphs_match_ref) NF_TEST_ENTRY(
                                backend_dnnl_shipped_models_match_ref)
                                NF_TEST_ENTRY(
                                    backend_dnnl_matches_pytorch_goldens)
                                    NF_TEST_ENTRY(
                                        backend_dnnl_transformernet_matches_ref)
                                        NF_TEST_ENTRY(
                                            backend_dnnl_resolution_changes_match_ref)
                                            NF_TEST_ENTRY(
                                                backend_dnnl_correction_matches_ref)
                                                NF_TEST_ENTRY(
                                                    backend_dnnl_stabilizer_matches_host))

#endif /* NF_HAVE_DNNL */
