/*
 * conv.c - one program convolution as a oneDNN primitive at one resolution.
 *
 * Source and destination are whole dense NHWC buffers (the stored grids
 * with their halos, dnnl-impl.h), so oneDNN picks its JIT kernels; padding
 * is oneDNN's zero padding on the stored grid (plan.c chose it so that the
 * interior is exactly the node's output). Weights are rebuilt from the
 * model's (Cout, Cin/groups, kh, kw) tensor through the program's channel
 * maps (permuted inputs for pixel_unshuffle and the input block, permuted
 * outputs for pixel_shuffle, a folded scale_shift), then reordered once
 * into the layout the primitive prefers. Bias, activations and residual
 * adds are post-ops. The scratchpad is the caller's (user mode), so that
 * no oneDNN call allocates per frame.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnnl-impl.h"
#include "error.h"
#include "model-impl.h"

#define CHECK(call)                                                            \
    do {                                                                       \
        if ((call) != dnnl_success)                                            \
            goto fail;                                                         \
    } while (0)

static dnnl_alg_kind_t alg_of(enum nf_op op)
{
    switch (op) {
    case NF_OP_SIGMOID:
        return dnnl_eltwise_logistic;
    case NF_OP_TANH:
        return dnnl_eltwise_tanh;
    case NF_OP_CLAMP:
        return dnnl_eltwise_clip;
    default: /* relu, leaky_relu */
        return dnnl_eltwise_relu;
    }
}

static int make_attr(const struct nf_dnnl_conv *c, dnnl_primitive_attr_t *out)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    CHECK(dnnl_primitive_attr_create(&attr));
    CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr,
                                                  dnnl_scratchpad_mode_user));
    CHECK(dnnl_post_ops_create(&po));
    for (int i = 0; i < c->n_post; i++) {
        const struct nf_dnnl_post *p = &c->post[i];
        if (p->kind == NF_DNNL_POST_SUM)
            CHECK(dnnl_post_ops_append_sum(po, 1.0f));
        else
            CHECK(dnnl_post_ops_append_eltwise(po, 1.0f, alg_of(p->act.op),
                                               p->act.a, p->act.b));
    }
    CHECK(dnnl_primitive_attr_set_post_ops(attr, po));
    dnnl_post_ops_destroy(po);
    *out = attr;
    return 0;
fail:
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return NF_EBACKEND;
}

/* (cout, cin / groups, kh, kw) weights in oihw order through the maps of
 * variant v, with a folded scale_shift. */
static void build_weights(const struct nf_dnnl_conv *c, int v, float *w)
{
    const struct nf_node *n = c->node;
    int taps = n->kh * n->kw, cig = c->cin / c->groups;
    int lcig = (int)n->weight->shape[1], lco = (int)n->weight->shape[0];
    const int *im = c->in_map ? c->in_map + (size_t)v * c->cin : NULL;
    for (int po = 0; po < c->cout; po++) {
        int lo = c->out_map ? c->out_map[po] : po % lco;
        float s = c->folded && c->scale ? c->scale[lo] : 1.0f;
        for (int pi = 0; pi < cig; pi++) {
            int li = im ? im[pi] : pi % lcig;
            if (c->cell_r > 0 && po / lco != pi / lcig)
                li = -1; /* Another sub-pixel of the cell. */
            float *dst = w + ((size_t)po * cig + pi) * taps;
            const float *src = n->weight->data +
                               ((size_t)lo * lcig + (li < 0 ? 0 : li)) * taps;
            for (int t = 0; t < taps; t++)
                dst[t] = li < 0 ? 0.0f : src[t] * s;
        }
    }
}

static void build_bias(const struct nf_dnnl_conv *c, float *b)
{
    const struct nf_node *n = c->node;
    int lco = (int)n->weight->shape[0];
    for (int po = 0; po < c->cout; po++) {
        int lo = c->out_map ? c->out_map[po] : po % lco;
        float v = n->bias ? n->bias->data[lo] : 0.0f;
        if (c->folded) {
            v *= c->scale ? c->scale[lo] : 1.0f;
            v += c->shift ? c->shift[lo] : 0.0f;
        }
        b[po] = v;
    }
}

/* Reorders user-layout weights into a new memory of the primitive's. */
static int reorder_weights(dnnl_engine_t eng, dnnl_stream_t st,
                           const dnnl_memory_desc_t *user_md, float *data,
                           const dnnl_memory_desc_t *md, dnnl_memory_t *out)
{
    dnnl_memory_t from = NULL, to = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    CHECK(dnnl_memory_create(&from, user_md, eng, data));
    CHECK(dnnl_memory_create(&to, md, eng, DNNL_MEMORY_ALLOCATE));
    CHECK(
        dnnl_reorder_primitive_desc_create(&rpd, user_md, eng, md, eng, NULL));
    CHECK(dnnl_primitive_create(&r, rpd));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    CHECK(dnnl_primitive_execute(r, st, 2, args));
    CHECK(dnnl_stream_wait(st));
    dnnl_primitive_destroy(r);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(from);
    *out = to;
    return 0;
fail:
    dnnl_primitive_destroy(r);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(from);
    dnnl_memory_destroy(to);
    return NF_EBACKEND;
}

static int make_desc(const struct nf_dnnl_conv *c, const int in[2],
                     const int out[2], dnnl_convolution_desc_t *cd,
                     dnnl_memory_desc_t *wmd_user)
{
    const struct nf_node *n = c->node;
    dnnl_memory_desc_t src, wei, bia, dst;
    dnnl_dims_t sd = {1, c->cin, in[0], in[1]};
    dnnl_dims_t dd = {1, c->cout, out[0], out[1]};
    dnnl_dims_t bd = {c->cout};
    int g = c->groups;
    dnnl_dims_t wd = {g, c->cout / g, c->cin / g, n->kh, n->kw};
    int wnd = g > 1 ? 5 : 4;
    if (g == 1)
        memmove(wd, wd + 1, 4 * sizeof wd[0]);
    dnnl_dims_t strides = {n->stride, n->stride};
    dnnl_dims_t pl = {c->pl, c->pl}, pr = {c->pry, c->prx};
    int has_bias = n->bias != NULL || c->folded;
    CHECK(dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32, dnnl_nhwc));
    CHECK(dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, dnnl_nhwc));
    CHECK(dnnl_memory_desc_init_by_tag(&bia, 1, bd, dnnl_f32, dnnl_a));
    CHECK(dnnl_memory_desc_init_by_tag(&wei, wnd, wd, dnnl_f32,
                                       dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(wmd_user, wnd, wd, dnnl_f32,
                                       g > 1 ? dnnl_goihw : dnnl_oihw));
    CHECK(dnnl_convolution_forward_desc_init(
        cd, dnnl_forward_inference, dnnl_convolution_direct, &src, &wei,
        has_bias ? &bia : NULL, &dst, strides, pl, pr));
    return 0;
fail:
    return NF_EBACKEND;
}

int nf__dnnl_conv_create(const struct nf_dnnl_conv *c, const int in[2],
                         const int out[2], dnnl_engine_t eng, dnnl_stream_t st,
                         struct nf_dnnl_conv_rt *rt)
{
    const struct nf_node *n = c->node;
    dnnl_convolution_desc_t cd;
    dnnl_memory_desc_t wmd_user;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    size_t wn = (size_t)c->cout * (c->cin / c->groups) * n->kh * n->kw;
    float *w = malloc(wn * sizeof *w), *b = malloc(c->cout * sizeof *b);
    int rc = NF_ENOMEM;
    memset(rt, 0, sizeof *rt);
    if (w == NULL || b == NULL)
        goto out;
    rc = NF_EBACKEND;
    if (make_desc(c, in, out, &cd, &wmd_user) < 0 || make_attr(c, &attr) < 0)
        goto out;
    CHECK(dnnl_primitive_desc_create(&pd, &cd, attr, eng, NULL));
    const char *impl = NULL;
    CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    snprintf(rt->impl, sizeof rt->impl, "%s", impl ? impl : "?");
    CHECK(dnnl_primitive_create(&rt->prim, pd));
    const dnnl_memory_desc_t *wmd =
        dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *smd =
        dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *dmd =
        dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *pmd =
        dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    rt->n_variants = c->n_variants;
    for (int v = 0; v < c->n_variants; v++) {
        build_weights(c, v, w);
        if (reorder_weights(eng, st, &wmd_user, w, wmd, &rt->wei[v]) < 0)
            goto fail;
    }
    if (n->bias != NULL || c->folded) {
        const dnnl_memory_desc_t *bmd =
            dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1);
        build_bias(c, b);
        CHECK(dnnl_memory_create(&rt->bias, bmd, eng, DNNL_MEMORY_ALLOCATE));
        void *bp = NULL;
        CHECK(dnnl_memory_get_data_handle(rt->bias, &bp));
        memcpy(bp, b, c->cout * sizeof *b);
    }
    CHECK(dnnl_memory_create(&rt->src, smd, eng, DNNL_MEMORY_NONE));
    CHECK(dnnl_memory_create(&rt->dst, dmd, eng, DNNL_MEMORY_NONE));
    rt->scratch_bytes = pmd ? dnnl_memory_desc_get_size(pmd) : 0;
    if (rt->scratch_bytes > 0)
        CHECK(dnnl_memory_create(&rt->scratch, pmd, eng, DNNL_MEMORY_NONE));
    rt->flops = 2.0 * (c->cin / c->groups) * c->cout * n->kh * n->kw *
                (double)out[0] * out[1];
    rc = 0;
    goto out;
fail:
    rc = NF_EBACKEND;
    nf__dnnl_conv_destroy(rt);
out:
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    free(w);
    free(b);
    return rc;
}

void nf__dnnl_conv_destroy(struct nf_dnnl_conv_rt *rt)
{
    dnnl_primitive_destroy(rt->prim);
    for (int v = 0; v < rt->n_variants; v++)
        dnnl_memory_destroy(rt->wei[v]);
    dnnl_memory_destroy(rt->bias);
    dnnl_memory_destroy(rt->src);
    dnnl_memory_destroy(rt->dst);
    dnnl_memory_destroy(rt->scratch);
    memset(rt, 0, sizeof *rt);
}

int nf__dnnl_conv_run(const struct nf_dnnl_conv_rt *rt, dnnl_stream_t st,
                      void *src, void *dst, int variant, void *scratch)
{
    dnnl_exec_arg_t args[5];
    int n = 0;
    if (dnnl_memory_set_data_handle(rt->src, src) != dnnl_success ||
        dnnl_memory_set_data_handle(rt->dst, dst) != dnnl_success ||
        (rt->scratch != NULL &&
         dnnl_memory_set_data_handle(rt->scratch, scratch) != dnnl_success))
        return NF_EBACKEND;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, rt->src};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, rt->wei[variant]};
    if (rt->bias != NULL)
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, rt->bias};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, rt->dst};
    if (rt->scratch != NULL)
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, rt->scratch};
    if (dnnl_primitive_execute(rt->prim, st, n, args) != dnnl_success)
        return NF_EBACKEND;
    return 0;
}
