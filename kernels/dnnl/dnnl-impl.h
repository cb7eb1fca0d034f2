/*
 * dnnl-impl.h - the oneDNN CPU backend's internals (kernels/dnnl/ only).
 *
 * The backend runs a model in two stages (README.md in this folder has the
 * whole design and the measured numbers):
 *
 * 1. plan.c turns the graph, once per backend, into a program: a list of
 *    steps (oneDNN convolutions with fused post-ops, and this folder's own
 *    kernels for everything else) plus a description of where every value
 *    lives. Values are NHWC floats in "cells": a value with storage factor
 *    r keeps each r x r block of its pixels in one cell (pixel_unshuffle
 *    and pixel_shuffle become changes of view instead of copies), a cell
 *    holds `pix` floats of which the value may use a slice (concat writes
 *    its inputs in place), and every stored grid carries a halo of cells on
 *    each side so that reflect-padded convolutions read a dense tensor.
 * 2. backend-dnnl.c instantiates the program per padded resolution (arena
 *    offsets, oneDNN primitives and reordered weights; conv.c) the first
 *    time the resolution is seen, and then runs the steps per frame with
 *    no allocation.
 *
 * Every tensor handed to oneDNN is a whole dense NHWC buffer, never a
 * strided view (oneDNN 2.6 would fall back to a slow reference kernel).
 */
#ifndef NF_DNNL_IMPL_H
#define NF_DNNL_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <oneapi/dnnl/dnnl.h>

#include "backend.h"
#include "graph.h"
#include "model.h"

#define NF_DNNL_ALIGN    64 /* Bytes; every buffer starts on a cache line. */
#define NF_DNNL_MAX_TAIL 8  /* Activations fused after one kernel. */
#define NF_DNNL_MAX_POST 8  /* oneDNN post-ops of one convolution. */

/* Where a view's floats live; resolved per frame (struct nf_dnnl_rt). */
enum nf_dnnl_loc {
    NF_DNNL_LOC_ARENA, /* The backend's arena: buffer `id`. */
    NF_DNNL_LOC_BLOCK, /* The slot's input block (see plan.c). */
    NF_DNNL_LOC_RING,  /* The slot's ring entry of cache.`id`. */
    NF_DNNL_LOC_SINK,  /* Nowhere: the model output, written out. */
};

/*
 * How one value of c channels is stored. Its logical size is the padded
 * frame size scaled by `shift` (as graph.h); cells form a grid r times
 * smaller, plus `halo` cells on each side, `pix` floats per cell. Channel
 * k of logical pixel (y, x) is at float
 *
 *   cell (y / r, x / r) * pix + off + k * cstride + ((y % r) * r + x % r) *
 *   sstride
 *
 * Plain NHWC is r = 1, cstride = 1, off = 0, pix = c. A value stored by
 * pixel_unshuffle's or pixel_shuffle's rule has r > 1: "sub-pixel major"
 * (cstride 1, sstride c: every pixel's channels are contiguous) or
 * "channel major" (cstride r * r, sstride 1: PyTorch's channel order).
 */
struct nf_dnnl_view {
    enum nf_dnnl_loc loc;
    int id; /* Arena buffer; cache index for BLOCK (-1: frame) and RING. */
    int c, shift, r, cstride, sstride, off, pix, halo;
};

/* A view resolved for one frame. */
struct nf_dnnl_rt {
    float *p;      /* Channel `off` of cell (0, 0) inside the halo. */
    ptrdiff_t row; /* Floats from one cell row to the next. */
    int pix, r, c; /* As the view. */
    int lr;        /* log2(r): r is a power of two. */
    int cstride, sstride;
    int h, w; /* Logical size. */
};

/* Floats of logical pixel (y, x) of v; channel k is at [k * cstride]. */
static inline float *nf__dnnl_px(const struct nf_dnnl_rt *v, int y, int x)
{
    int m = v->r - 1;
    return v->p + (y >> v->lr) * v->row + (ptrdiff_t)(x >> v->lr) * v->pix +
           (((y & m) << v->lr) + (x & m)) * v->sstride;
}

/* An activation applied by our kernels or as a oneDNN eltwise post-op. */
struct nf_dnnl_act {
    enum nf_op op; /* RELU, LEAKY_RELU, SIGMOID, TANH or CLAMP. */
    float a, b;    /* alpha; or min and max for clamp. */
};

struct nf_dnnl_tail {
    int n;
    struct nf_dnnl_act f[NF_DNNL_MAX_TAIL];
};

enum nf_dnnl_step_kind {
    NF_DNNL_STEP_CONV,     /* oneDNN convolution, conv.c. */
    NF_DNNL_STEP_PIXEL,    /* Point-wise kernel, elementwise.c. */
    NF_DNNL_STEP_RESAMPLE, /* Upsampling and pooling, resample.c. */
    NF_DNNL_STEP_NORM,     /* Instance norm, norm.c. */
    NF_DNNL_STEP_HALO,     /* Fill a halo ring, pad.c. */
    NF_DNNL_STEP_EXPR,     /* Fused point-wise nodes, fused.c. */
};

/* PIXEL: y = tail(op(in[0], in[1])). */
enum nf_dnnl_pixel_op {
    NF_DNNL_COPY,
    NF_DNNL_ADD,
    NF_DNNL_MUL,
    NF_DNNL_AFFINE, /* in[0] * scale[c] + shift[c] (scale_shift). */
};

enum nf_dnnl_post_kind { NF_DNNL_POST_SUM, NF_DNNL_POST_ELTWISE };

struct nf_dnnl_post {
    enum nf_dnnl_post_kind kind;
    struct nf_dnnl_act act; /* ELTWISE. */
};

#define NF_DNNL_EXPR_IN  8  /* Views a fused point-wise group reads, */
#define NF_DNNL_EXPR_OPS 24 /* nodes it computes, */
#define NF_DNNL_EXPR_OUT 6  /* and values it stores. */

/* A 1x1 convolution inside a fused group (c channels in and out). */
#define NF_DNNL_EXPR_CONV 16

/* One node of a fused group: reg[dst] = op(reg[a], reg[b]). */
struct nf_dnnl_expr_op {
    /* nf_dnnl_pixel_op, NF_DNNL_EXPR_CONV, or -1: the activation act. */
    int op;
    int a, b; /* Registers read: inputs first, then op results. */
    /*
     * Offset in params, each array nf__dnnl_expr_period(len) floats (the
     * cell pattern, padded): AFFINE scale then shift; CONV the bias, then
     * for each input channel ci the weights w[co][ci] of every lane.
     */
    int params;
    struct nf_dnnl_act act;
};

/*
 * A group of point-wise nodes run as one pass (fused.c): every view has
 * the same cells (same r, each pixel's c channels contiguous), so a cell
 * is `len` floats at the same offsets in every view; per cell the inputs
 * are loaded, the ops run in registers, and the values read outside the
 * group are stored. Register i < n_in is input i, n_in + k op k's result.
 */
struct nf_dnnl_expr {
    int len; /* Floats per cell, c * r * r. */
    int c;   /* Channels of every value (pixels in a cell: len / c). */
    int n_in, n_ops, n_out;
    struct nf_dnnl_view in[NF_DNNL_EXPR_IN];
    struct nf_dnnl_expr_op ops[NF_DNNL_EXPR_OPS];
    struct nf_dnnl_view out[NF_DNNL_EXPR_OUT]; /* loc SINK: the output. */
    int out_reg[NF_DNNL_EXPR_OUT];
    float *params; /* Per-lane parameters of the ops (see above). Owned. */
    /* CONV: lane j of a vector reads lane lane[ci][j] for input channel ci
     * (the same pixel's channel ci). */
    int lane[16][16];
};

/* A convolution as the program describes it (no oneDNN objects yet). */
struct nf_dnnl_conv {
    const struct nf_node *node;
    int cin, cout; /* Physical channels of source and destination. */
    int groups;
    int pl;         /* oneDNN padding, top and left, on the stored grids. */
    int pry, prx;   /* Bottom and right. */
    int n_variants; /* Weight variants: K for an input block, else 1. */
    /*
     * (n_variants, cin): the node's input channel that physical source
     * channel reads, -1 for none (zero weights); NULL for the identity.
     */
    int *in_map;
    int *out_map; /* (cout): the node's output channel; NULL = identity. */
    /*
     * > 0: the source is a value in cells of cell_r x cell_r pixels
     * (sub-pixel major) and this 1x1 convolution runs on the cells: each
     * sub-pixel's channels map through the node's weights, the others get
     * zeros (block-diagonal weights), cin and cout count all of them.
     */
    int cell_r;
    int folded; /* A scale_shift is folded in (scale, shift may be NULL). */
    const float *scale, *shift; /* (cout) of the folded scale_shift. */
    int n_post;
    struct nf_dnnl_post post[NF_DNNL_MAX_POST];
};

struct nf_dnnl_step {
    enum nf_dnnl_step_kind kind;
    int node; /* Last graph node the step computes (for messages). */
    int n_in;
    struct nf_dnnl_view in[2];
    struct nf_dnnl_view out; /* loc SINK: the model output. */
    int op;                  /* PIXEL: nf_dnnl_pixel_op; RESAMPLE: the nf_op. */
    int pad_mode;            /* HALO: NF_PAD_REFLECT or NF_PAD_ZEROS. */
    int width;               /* HALO: ring width in cells. */
    const float *scale, *shift; /* AFFINE and NORM (NULL: 1 and 0). */
    float eps;                  /* NORM. */
    struct nf_dnnl_tail tail;
    struct nf_dnnl_conv conv;  /* CONV. */
    struct nf_dnnl_expr *expr; /* EXPR; owned. */
};

/* A buffer of the arena: its grid (as a view's) and floats per cell. */
struct nf_dnnl_buf {
    int shift, r, halo, pix;
};

/* The program: everything that does not depend on the resolution. */
struct nf_dnnl_prog {
    const struct nf_graph *g;
    int k;        /* Cache frames. */
    int multiple; /* Size multiple. */
    struct nf_dnnl_step *steps;
    int n_steps, cap_steps;
    struct nf_dnnl_buf *bufs;
    int n_bufs, cap_bufs;
    int *buf_last;             /* (n_bufs) last step that uses the buffer. */
    int *buf_first;            /* (n_bufs) first step that uses the buffer. */
    struct nf_dnnl_view frame; /* Where the input goes. */
    struct nf_dnnl_view cache[NF_MAX_CACHE]; /* cache.j. */
    struct nf_dnnl_view output;              /* The model output. */
    /*
     * Input block: a concat of the frame and the whole cache (optionally
     * pixel-unshuffled) that only convolutions read lives in each slot, so
     * that the input conversion and the cache update write straight into
     * the tensor the first convolution reads; the ring's rotation is a
     * choice among K weight variants instead of a copy.
     */
    int block;
    struct nf_dnnl_view block_view;    /* r = 1 cells; loc BLOCK, id -1. */
    int block_entry_off[NF_MAX_CACHE]; /* Channel offset of ring entry e. */
    int *block_map; /* (k, block pix): conv in_map per cache head. */
    int ring_halo;  /* Ring entries without a block. */
    int staging;    /* Arena buffer for the output when K = 0, else -1. */
};

/*
 * plan.c: builds p for graph g (which must outlive p) and the model's size
 * multiple. Returns 0 or NF_ENOMEM; on failure p holds nothing.
 */
int nf__dnnl_plan(struct nf_dnnl_prog *p, const struct nf_graph *g,
                  int multiple);
/* Frees what nf__dnnl_plan allocated; p may be zeroed. */
void nf__dnnl_plan_free(struct nf_dnnl_prog *p);

/* Cell grid (logical size / r, halo excluded) of a view or buffer with
 * this shift and r, for padded frame size h x w. */
void nf__dnnl_grid(int shift, int r, int h, int w, int *ch, int *cw);

/* Floats a buffer or view needs at padded frame size h x w. */
size_t nf__dnnl_buf_floats(const struct nf_dnnl_buf *b, int h, int w);

/* threads.c: the adaptive thread plan (one thread or the whole team). */
struct nf_dnnl_threads {
    int team;        /* Threads of the team, >= 1. */
    int adaptive;    /* Choose per frame; else always `mode`. */
    int mode;        /* The current choice: 0 one thread, 1 the team. */
    double ns_px[2]; /* Smoothed ns per padded pixel per mode; 0: unknown. */
    int until_probe; /* Frames before the other mode is tried. */
    int interval;    /* The next value of until_probe. */
    int busy;        /* The last /proc/stat sample had no room for the team. */
    int far;         /* The last frame of `mode` was far off its estimate. */
    int tries;       /* Frames of the try under way. */
    double try_best; /* Its fastest, ns per padded pixel. */
    int cpus;        /* Online CPUs; 0 turns /proc/stat sampling off. */
    double sampled_ms, idle_cores;
    unsigned long long total, idle; /* The last /proc/stat sample. */
};

void nf__dnnl_threads_init(struct nf_dnnl_threads *t, int team, int adaptive);
/* The mode of the next frame (0: one thread, 1: the team). */
int nf__dnnl_threads_pick(struct nf_dnnl_threads *t);
/* Records that a frame of `pixels` padded pixels took ms in mode. */
void nf__dnnl_threads_account(struct nf_dnnl_threads *t, int mode, double ms,
                              double pixels);

/* conv.c: a program convolution as a oneDNN primitive at one resolution. */
struct nf_dnnl_conv_rt {
    dnnl_primitive_t prim;
    dnnl_memory_t src, dst, bias, scratch; /* Handles set per run. */
    dnnl_memory_t wei[NF_MAX_CACHE];       /* Per weight variant. */
    int n_variants;
    size_t scratch_bytes;
    double flops;  /* On the stored grid, multiply-adds x 2. */
    char impl[48]; /* oneDNN's implementation name, e.g. "brgconv:avx512_core".
                    */
};

/*
 * Creates rt for stored source grid in[0] x in[1] and destination out[0] x
 * out[1], with as many threads as omp_get_max_threads() says now. Returns
 * 0, NF_ENOMEM or NF_EBACKEND (leaving rt empty).
 */
int nf__dnnl_conv_create(const struct nf_dnnl_conv *c, const int in[2],
                         const int out[2], dnnl_engine_t eng, dnnl_stream_t st,
                         struct nf_dnnl_conv_rt *rt);
void nf__dnnl_conv_destroy(struct nf_dnnl_conv_rt *rt);
int nf__dnnl_conv_run(const struct nf_dnnl_conv_rt *rt, dnnl_stream_t st,
                      void *src, void *dst, int variant, void *scratch);

/* --- Kernels. Each runs on a range of "units" (rows) of its output, so
 * that backend-dnnl.c can split the units among threads. --- */

/*
 * A PIXEL step resolved for one frame. The step computing the model output
 * writes into a staging view (the cache entry it becomes, or an arena
 * buffer when K = 0) with clamp01 set, and converts each finished row to
 * 8-bit RGB into rgb (NULL: not now, e.g. for the float test hook).
 */
struct nf_dnnl_pixel_args {
    int op;
    int n_in;
    struct nf_dnnl_rt in[2];
    struct nf_dnnl_rt out;
    const float *scale, *shift; /* AFFINE; NULL: 1 and 0. */
    const struct nf_dnnl_tail *tail;
    int clamp01;                /* Clamp to [0, 1] after the tail. */
    const struct nf_image *rgb; /* Also write these rows as 8 bits. */
};

/* elementwise.c */
int nf__dnnl_pixel_units(const struct nf_dnnl_pixel_args *a);
void nf__dnnl_pixel_rows(const struct nf_dnnl_pixel_args *a, int u0, int u1);
void nf__dnnl_tail_apply(const struct nf_dnnl_tail *t, float *x, int n);
float nf__dnnl_act1(const struct nf_dnnl_act *f, float v);

/* fused.c: an EXPR step resolved for one frame; units are cell rows. */
struct nf_dnnl_expr_args {
    const struct nf_dnnl_expr *e;
    struct nf_dnnl_rt in[NF_DNNL_EXPR_IN];
    struct nf_dnnl_rt out[NF_DNNL_EXPR_OUT];
    int sink;                   /* Output index of the model output, or -1. */
    int clamp01;                /* Clamp the sink (see pixel args). */
    const struct nf_image *rgb; /* Also write the sink as 8 bits. */
};

int nf__dnnl_expr_units(const struct nf_dnnl_expr_args *a);
/* Floats of each AFFINE parameter array: the cell pattern repeated over
 * the kernel's chunk (struct nf_dnnl_expr_op.params). */
int nf__dnnl_expr_period(int len);
void nf__dnnl_expr_rows(const struct nf_dnnl_expr_args *a, int u0, int u1);

/* resample.c: op is UPSAMPLE2X_NEAREST, UPSAMPLE2X_BILINEAR or AVGPOOL2X2;
 * units are the output's rows. */
void nf__dnnl_resample_rows(int op, const struct nf_dnnl_rt *x,
                            const struct nf_dnnl_rt *y,
                            const struct nf_dnnl_tail *t, int y0, int y1);

/*
 * norm.c: instance norm of x into y (which may be x). Statistics are
 * accumulated per unit (row) in double into stats, (units, 2 * c); then
 * nf__dnnl_norm_apply_rows uses the sums, reduced into stats[0 .. 2c).
 */
void nf__dnnl_norm_stats_rows(const struct nf_dnnl_rt *x, double *stats,
                              int pass, const double *mean, int y0, int y1);
void nf__dnnl_norm_apply_rows(const struct nf_dnnl_rt *x,
                              const struct nf_dnnl_rt *y, const double *mean,
                              const double *rstd, const float *weight,
                              const float *bias, const struct nf_dnnl_tail *t,
                              int y0, int y1);

/* pad.c: fills a ring of `width` cells around the interior of v, whose
 * cells are its pixels (r = 1), copying whole cells. */
void nf__dnnl_halo(const struct nf_dnnl_rt *v, int width, int pad_mode);

/* convert.c */

/* Rows [y0, y1) of the padded frame v from an 8-bit RGB image, v / 255,
 * repeating the last row and column beyond the image. */
void nf__dnnl_from_rgb_rows(const struct nf_image *im,
                            const struct nf_dnnl_rt *v, int y0, int y1);
/* Row y of v (already clamped to [0, 1]) from column x0 on into im, if y <
 * im->height. */
void nf__dnnl_to_rgb_cols(const struct nf_image *im, const struct nf_dnnl_rt *v,
                          int y, int x0);
/* (3, h, w) planar floats to and from a view of 3 channels. */
void nf__dnnl_from_planar(const float *src, const struct nf_dnnl_rt *v);
void nf__dnnl_to_planar(const struct nf_dnnl_rt *v, float *dst);

/* correct.c: drift correction (backend.h, kernels/correct.h). */

/* Cell rows of v: the units the decay and offset passes split. */
int nf__dnnl_cell_rows(const struct nf_dnnl_rt *v);

/* Pixel rows [y0, y1) of the cell rows [cy0, cy1) of v. */
void nf__dnnl_cell_span(const struct nf_dnnl_rt *v, int cy0, int cy1, int *y0,
                        int *y1);

/* Cell rows [cy0, cy1) of the k cache views cache[] decayed toward the
 * frame view (of the same size). */
void nf__dnnl_decay_cells(const struct nf_dnnl_rt *cache, int k,
                          const struct nf_dnnl_rt *frame, const float *map,
                          float decay, int width, int height, int cy0, int cy1);

/* One bilinear axis position of the offset field. */
struct nf_dnnl_axis {
    int i0, i1;
    float l;
};

/* The offset field of a correction, with its column positions. */
struct nf_dnnl_offset {
    const float *grid; /* (3, gh, gw). */
    int gw, gh;
    int width, height;            /* The unpadded frame. */
    const struct nf_dnnl_axis *x; /* One per padded column. */
    float *scratch; /* nf__dnnl_offset_scratch(padded width) per thread. */
};

/* axis[o] for o < n_out: position of output index o of `size` on a grid of
 * n_grid (nf_corr_axis). */
void nf__dnnl_offset_axis(int n_out, int n_grid, int size,
                          struct nf_dnnl_axis *axis);

/* Floats in front of each row buffer of the offset's scratch. */
#define NF_DNNL_HROW_MARGIN 16

/* Floats of one thread's scratch for the offset of a padded width w. */
size_t nf__dnnl_offset_scratch(int w);

/* Cell rows [cy0, cy1) of the unclamped output v: adds the offset,
 * clamps, and writes the 8-bit rows into rgb (if not NULL). scratch:
 * nf__dnnl_offset_scratch(v->w) floats of the calling thread's own. */
void nf__dnnl_offset_cells(const struct nf_dnnl_rt *v,
                           const struct nf_dnnl_offset *off,
                           const struct nf_image *rgb, float *scratch, int cy0,
                           int cy1);

#endif /* NF_DNNL_IMPL_H */
