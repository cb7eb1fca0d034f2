/*
 * backend-dnnl.c - the oneDNN CPU backend ("dnnl"): backend-impl.h's table,
 * the per-resolution instances, the slots and the frame loop.
 *
 * At init the graph becomes a program (plan.c). The first frame of a padded
 * resolution instantiates it: arena offsets for every buffer (buffers whose
 * lifetimes do not overlap share memory), the oneDNN primitives with their
 * reordered weights, and a touched arena and scratchpad; up to MAX_INST
 * resolutions stay cached, least recently used evicted. A slot owns its
 * cache: either the input block (the frame and the K cache frames in the
 * layout the first convolution reads) or K ring entries. From then on a
 * frame allocates nothing: convert the input, run the steps, write the
 * output and the cache entry, rotate the ring.
 *
 * Threads: oneDNN and this folder's kernels share one OpenMP team on the
 * calling thread. Its size is the `threads` hint, or by default the
 * adaptive plan of README.md ("Thread plan"): OpenMP teams collapse when
 * another process takes one of their cores, so the backend watches the
 * frame times of both team sizes and uses the faster one.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend-dnnl.h"
#include "backend-impl.h"
#include "dnnl-impl.h"
#include "error.h"
#include "model-impl.h"
#include "stabilize.h"

#define MAX_INST  4 /* Resolutions kept instantiated. */
#define WARM_RUNS 2 /* Frames of a mode not timed for the thread plan. */

/* One padded resolution of the program. Owned by the backend context. */
struct inst {
    int h, w;
    size_t *off;   /* (n_bufs) float offset of each buffer in the arena. */
    size_t floats; /* Arena floats this resolution needs. */
    size_t hrows;  /* Arena offset of the offset's per-thread scratch. */
    /* (n_steps) per thread mode (0: one thread, 1: the team); NULL until
     * that mode first runs here. Only CONV steps have primitives. */
    struct nf_dnnl_conv_rt *conv[2];
    long runs[2];  /* Frames run per thread mode. */
    uint64_t used; /* Clock of the last frame; for eviction. */
};

/*
 * b->context. Owned by the backend; after init only predict touches it,
 * and backend.h forbids concurrent predict calls on one backend.
 */
struct dnnl_ctx {
    struct nf_dnnl_prog prog;
    dnnl_engine_t eng;
    dnnl_stream_t st;
    int team; /* Threads of the large team, >= 1. */
    int mode; /* Of the current frame: 0 one thread; 1 the team. */
    struct nf_dnnl_threads plan; /* Chooses the mode (threads.c). */
    struct inst *inst[MAX_INST];
    uint64_t clock;
    float *arena; /* Shared by all instances: one frame runs at a time. */
    size_t arena_cap;
    void *scratch; /* oneDNN scratchpad, user mode. */
    size_t scratch_cap;
    double *stats; /* Instance norm partial sums, (team, max channels). */
    size_t stats_cap;
    struct nf_dnnl_axis *axis; /* Offset columns, (max padded width). */
    size_t axis_cap;
    int last_h, last_w; /* Padded size of the last frame. */
    /* Profiling for nf-kernel-bench (nf__dnnl_profile). */
    int profile;
    double *step_ms; /* (n_steps) accumulated. */
    long profiled_frames;
};

/* s->context. Owned by the slot (see backend-impl.h for the threads). */
struct dnnl_slot {
    int width, height; /* Input size the memory is for; 0 = none yet. */
    int h, w;          /* Padded. */
    int warm;          /* 0: the next frame fills the cache with copies. */
    int head;          /* Ring entry of cache.0. */
    float *mem;        /* The input block, or K ring entries. */
    size_t entry;      /* Floats per ring entry (no block). */
};

/* What one frame reads and writes. */
struct frame_io {
    const struct nf_image *in;  /* 8-bit input, or NULL: planar_frame. */
    const struct nf_image *out; /* 8-bit output, or NULL: planar_out. */
    const float *planar_frame;
    const float *const *planar_cache;
    float *planar_out;
    const struct nf_correction *corr; /* Or NULL. */
};

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static void set_threads(int n)
{
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

/* 64-byte aligned, zeroed (first touch now, not during a frame). */
static void *alloc_touched(size_t bytes)
{
    bytes = (bytes + NF_DNNL_ALIGN - 1) / NF_DNNL_ALIGN * NF_DNNL_ALIGN;
    void *p = aligned_alloc(NF_DNNL_ALIGN, bytes ? bytes : NF_DNNL_ALIGN);
    if (p != NULL)
        memset(p, 0, bytes);
    return p;
}

static int grow(void **p, size_t *cap, size_t bytes)
{
    if (bytes <= *cap)
        return 0;
    void *q = alloc_touched(bytes);
    if (q == NULL)
        return NF_ENOMEM;
    free(*p);
    *p = q;
    *cap = bytes;
    return 0;
}

/* --- Views. --- */

static float *view_base(const struct dnnl_ctx *d, const struct inst *in,
                        const struct dnnl_slot *s, const struct nf_dnnl_view *v)
{
    const struct nf_dnnl_prog *p = &d->prog;
    switch (v->loc) {
    case NF_DNNL_LOC_ARENA:
        return d->arena + in->off[v->id];
    case NF_DNNL_LOC_BLOCK:
        return s->mem;
    case NF_DNNL_LOC_RING:
        return s->mem + (size_t)((s->head + v->id) % p->k) * s->entry;
    default: /* SINK: the staging buffer. */
        return d->arena + in->off[p->staging];
    }
}

static struct nf_dnnl_rt resolve(const struct dnnl_ctx *d,
                                 const struct inst *in,
                                 const struct dnnl_slot *s,
                                 const struct nf_dnnl_view *view)
{
    const struct nf_dnnl_prog *p = &d->prog;
    struct nf_dnnl_view v = *view;
    if (v.loc == NF_DNNL_LOC_SINK && p->k > 0)
        v = p->cache[p->k - 1]; /* The oldest entry becomes cache.0. */
    else if (v.loc == NF_DNNL_LOC_SINK)
        v = (struct nf_dnnl_view){NF_DNNL_LOC_SINK, 0, 3, 0, 1, 1, 3, 0, 3, 0};
    int off = v.off;
    if (v.loc == NF_DNNL_LOC_BLOCK && v.id >= 0)
        off = p->block_entry_off[(s->head + v.id) % p->k];
    int ch, cw;
    nf__dnnl_grid(v.shift, v.r, in->h, in->w, &ch, &cw);
    struct nf_dnnl_rt rt;
    rt.row = (ptrdiff_t)(cw + 2 * v.halo) * v.pix;
    rt.p = view_base(d, in, s, &v) + v.halo * rt.row +
           (ptrdiff_t)v.halo * v.pix + off;
    rt.pix = v.pix;
    rt.r = v.r;
    rt.lr = 0;
    while ((1 << rt.lr) < v.r)
        rt.lr++;
    rt.c = v.c;
    rt.cstride = v.cstride;
    rt.sstride = v.sstride;
    rt.h = ch * v.r;
    rt.w = cw * v.r;
    return rt;
}

/* Stored grid (halo included) of a view: rows and columns of cells. */
static void stored_grid(const struct nf_dnnl_view *v, int h, int w, int g[2])
{
    nf__dnnl_grid(v->shift, v->r, h, w, &g[0], &g[1]);
    g[0] += 2 * v->halo;
    g[1] += 2 * v->halo;
}

/* --- Instances. --- */

static void inst_free(const struct dnnl_ctx *d, struct inst *in)
{
    if (in == NULL)
        return;
    for (int m = 0; m < 2; m++) {
        if (in->conv[m] == NULL)
            continue;
        for (int i = 0; i < d->prog.n_steps; i++)
            nf__dnnl_conv_destroy(&in->conv[m][i]);
        free(in->conv[m]);
    }
    free(in->off);
    free(in);
}

/*
 * Gives every buffer an arena offset: buffers are taken in order of first
 * use and share a region with buffers that died before they are born.
 */
static int layout_arena(const struct nf_dnnl_prog *p, struct inst *in)
{
    int n = p->n_bufs;
    size_t *size = calloc((size_t)n + 1, sizeof *size);
    int *busy = calloc((size_t)n + 1, sizeof *busy);
    int *region = calloc((size_t)n + 1, sizeof *region);
    size_t *base = calloc((size_t)n + 1, sizeof *base);
    in->off = calloc((size_t)n + 1, sizeof *in->off);
    int rc = NF_ENOMEM, regions = 0;
    if (size == NULL || busy == NULL || region == NULL || base == NULL ||
        in->off == NULL)
        goto fail;
    for (int first = 0; first <= p->n_steps; first++)
        for (int b = 0; b < n; b++) {
            if (p->buf_first[b] != first || p->buf_last[b] < 0)
                continue;
            size_t need = nf__dnnl_buf_floats(&p->bufs[b], in->h, in->w);
            need = (need + 15) / 16 * 16;
            int best = -1;
            for (int r = 0; r < regions; r++) {
                if (busy[r] >= first)
                    continue;
                /* The smallest region that fits, else the largest. */
                if (best < 0 ||
                    (size[r] >= need
                         ? size[best] < need || size[r] < size[best]
                         : size[best] < need && size[r] > size[best]))
                    best = r;
            }
            if (best < 0)
                best = regions++;
            if (size[best] < need)
                size[best] = need;
            busy[best] = p->buf_last[b];
            region[b] = best;
        }
    size_t total = 0;
    for (int r = 0; r < regions; r++) {
        base[r] = total;
        total += size[r];
    }
    for (int b = 0; b < n; b++)
        in->off[b] = base[region[b]];
    in->floats = total;
    rc = 0;
fail:
    free(size);
    free(busy);
    free(region);
    free(base);
    return rc;
}

/* Creates the primitives of thread mode m for instance in. */
static int inst_mode(struct dnnl_ctx *d, struct inst *in, int m)
{
    const struct nf_dnnl_prog *p = &d->prog;
    if (in->conv[m] != NULL)
        return 0;
    struct nf_dnnl_conv_rt *rt = calloc((size_t)p->n_steps + 1, sizeof *rt);
    if (rt == NULL)
        return NF_ENOMEM;
    int rc = 0;
    set_threads(m ? d->team : 1);
    for (int i = 0; i < p->n_steps && rc == 0; i++) {
        const struct nf_dnnl_step *s = &p->steps[i];
        if (s->kind != NF_DNNL_STEP_CONV)
            continue;
        int gi[2], go[2];
        stored_grid(&s->in[0], in->h, in->w, gi);
        stored_grid(&s->out, in->h, in->w, go);
        rc = nf__dnnl_conv_create(&s->conv, gi, go, d->eng, d->st, &rt[i]);
        if (rc == 0)
            rc = grow(&d->scratch, &d->scratch_cap, rt[i].scratch_bytes);
    }
    if (rc < 0) {
        /* Nothing half built stays behind: a later frame tries again. */
        for (int i = 0; i < p->n_steps; i++)
            nf__dnnl_conv_destroy(&rt[i]);
        free(rt);
        return rc;
    }
    in->conv[m] = rt;
    return 0;
}

static int inst_new(struct dnnl_ctx *d, int h, int w, struct inst **out)
{
    const struct nf_dnnl_prog *p = &d->prog;
    struct inst *in = calloc(1, sizeof *in);
    if (in == NULL)
        return NF_ENOMEM;
    in->h = h;
    in->w = w;
    int rc = layout_arena(p, in);
    /* After the buffers: the drift offset's scratch, one per thread (in
     * the arena rather than an allocation of its own, which would sit in
     * the predict thread's malloc arena and keep it from shrinking). */
    in->hrows = in->floats;
    in->floats += (size_t)d->team * nf__dnnl_offset_scratch(w);
    if (rc == 0)
        rc =
            grow((void **)&d->arena, &d->arena_cap, in->floats * sizeof(float));
    size_t stats = 0;
    for (int i = 0; i < p->n_steps; i++)
        if (p->steps[i].kind == NF_DNNL_STEP_NORM &&
            (size_t)p->steps[i].in[0].c > stats)
            stats = p->steps[i].in[0].c;
    if (rc == 0)
        rc = grow((void **)&d->stats, &d->stats_cap,
                  (stats * (d->team + 1) * 2 + 1) * sizeof(double));
    if (rc == 0)
        rc = grow((void **)&d->axis, &d->axis_cap,
                  (size_t)w * sizeof(struct nf_dnnl_axis));
    if (rc == 0)
        rc = inst_mode(d, in, d->mode);
    if (rc < 0) {
        inst_free(d, in);
        return rc;
    }
    *out = in;
    return 0;
}

/* The instance for padded size h x w, created on first use. */
static int get_inst(struct dnnl_ctx *d, int h, int w, struct inst **out)
{
    int lru = 0;
    for (int i = 0; i < MAX_INST; i++) {
        struct inst *in = d->inst[i];
        if (in != NULL && in->h == h && in->w == w) {
            in->used = ++d->clock;
            *out = in;
            return inst_mode(d, in, d->mode);
        }
        if (in == NULL ||
            (d->inst[lru] != NULL && in->used < d->inst[lru]->used))
            lru = i;
    }
    inst_free(d, d->inst[lru]);
    d->inst[lru] = NULL;
    int rc = inst_new(d, h, w, &d->inst[lru]);
    if (rc == 0) {
        d->inst[lru]->used = ++d->clock;
        *out = d->inst[lru];
    }
    return rc;
}

/* --- Running steps. --- */

#define TASK_INPUT       (-1) /* task.kind of the input conversion, */
#define TASK_DECAY       (-2) /* of the cache decay, */
#define TASK_OFFSET      (-3) /* of the output offset, */
#define TASK_INPUT_DECAY (-4) /* of the conversion and decay at once, */
#define TASK_MOTION      (-5) /* of the motion map (pixel rows), */
#define TASK_STAB        (-6) /* and of the stabilizer (pixel rows). */

/* A range of units of one kernel call, for the thread team. */
struct task {
    int kind; /* enum nf_dnnl_step_kind or TASK_INPUT. */
    const struct nf_dnnl_pixel_args *px;
    const struct nf_dnnl_expr_args *ex;
    const struct nf_dnnl_step *step;
    struct nf_dnnl_rt x, y;
    const struct nf_image *rgb;
    /* NORM. */
    int pass;
    double *stats;
    const double *mean, *rstd;
    /* Corrections. */
    const struct nf_correction *corr;
    const struct nf_dnnl_rt *caches; /* DECAY: the entries (x: the frame). */
    int n_caches;
    const struct nf_dnnl_offset *offset;
};

static void task_rows(const struct task *t, int u0, int u1, int thread)
{
    switch (t->kind) {
    case NF_DNNL_STEP_PIXEL:
        nf__dnnl_pixel_rows(t->px, u0, u1);
        break;
    case NF_DNNL_STEP_EXPR:
        nf__dnnl_expr_rows(t->ex, u0, u1);
        break;
    case NF_DNNL_STEP_RESAMPLE:
        nf__dnnl_resample_rows(t->step->op, &t->x, &t->y, &t->step->tail, u0,
                               u1);
        break;
    case NF_DNNL_STEP_NORM:
        if (t->pass < 2)
            nf__dnnl_norm_stats_rows(&t->x, t->stats + (size_t)thread * t->x.c,
                                     t->pass, t->mean, u0, u1);
        else
            nf__dnnl_norm_apply_rows(&t->x, &t->y, t->mean, t->rstd,
                                     t->step->scale, t->step->shift,
                                     &t->step->tail, u0, u1);
        break;
    case TASK_DECAY:
        nf__dnnl_decay_cells(t->caches, t->n_caches, &t->x, t->corr->decay_map,
                             t->corr->decay, t->rgb->width, t->rgb->height, u0,
                             u1);
        break;
    case TASK_INPUT_DECAY:
        for (int cy = u0; cy < u1; cy++) {
            int y0, y1;
            nf__dnnl_cell_span(&t->y, cy, cy + 1, &y0, &y1);
            nf__dnnl_from_rgb_rows(t->rgb, &t->y, y0, y1);
            nf__dnnl_decay_cells(t->caches, t->n_caches, &t->x,
                                 t->corr->decay_map, t->corr->decay,
                                 t->rgb->width, t->rgb->height, cy, cy + 1);
        }
        break;
    case TASK_MOTION:
        nf_stab_motion_rows(t->corr->motion, t->corr->decay, t->rgb, u0, u1);
        break;
    case TASK_STAB:
        nf_stab_rows(t->corr->stab, t->rgb, u0, u1);
        break;
    case TASK_OFFSET:
        nf__dnnl_offset_cells(&t->y, t->offset, t->rgb,
                              t->offset->scratch +
                                  (size_t)thread *
                                      nf__dnnl_offset_scratch(t->y.w),
                              u0, u1);
        if (t->rgb != NULL && t->corr != NULL && t->corr->stab != NULL) {
            /* The stabilizer on the rows whose bytes were just written. */
            int y0, y1;
            nf__dnnl_cell_span(&t->y, u0, u1, &y0, &y1);
            nf_stab_rows(t->corr->stab, t->rgb, y0,
                         y1 < t->rgb->height ? y1 : t->rgb->height);
        }
        break;
    default: /* The input conversion. */
        nf__dnnl_from_rgb_rows(t->rgb, &t->y, u0, u1);
        break;
    }
}

/* Splits units [0, n) evenly over the team (static: no shared counters). */
static void parallel(int threads, int n, const struct task *t)
{
#ifdef _OPENMP
    if (threads > 1 && n > 1) {
#pragma omp parallel num_threads(threads)
        {
            long i = omp_get_thread_num(), k = omp_get_num_threads();
            task_rows(t, (int)(n * i / k), (int)(n * (i + 1) / k), (int)i);
        }
        return;
    }
#endif
    task_rows(t, 0, n, 0);
}

/* Units [0, na) of a, then, once every thread is done with a, units
 * [0, nb) of b: one team for both. */
static void parallel_then(int threads, int na, const struct task *a, int nb,
                          const struct task *b)
{
#ifdef _OPENMP
    if (threads > 1) {
#pragma omp parallel num_threads(threads)
        {
            long i = omp_get_thread_num(), k = omp_get_num_threads();
            task_rows(a, (int)(na * i / k), (int)(na * (i + 1) / k), (int)i);
#pragma omp barrier
            task_rows(b, (int)(nb * i / k), (int)(nb * (i + 1) / k), (int)i);
        }
        return;
    }
#endif
    task_rows(a, 0, na, 0);
    task_rows(b, 0, nb, 0);
}

static void run_norm(struct dnnl_ctx *d, int threads, struct task *t)
{
    int c = t->x.c;
    double *mean = d->stats + (size_t)threads * c, *rstd = mean + c;
    t->stats = d->stats;
    for (t->pass = 0; t->pass < 2; t->pass++) {
        memset(d->stats, 0, (size_t)threads * c * sizeof(double));
        t->mean = mean;
        parallel(threads, t->x.h, t);
        double *acc = t->pass == 0 ? mean : rstd;
        for (int k = 0; k < c; k++) {
            double sum = 0;
            for (int i = 0; i < threads; i++)
                sum += d->stats[(size_t)i * c + k];
            acc[k] = sum / ((double)t->x.h * t->x.w);
        }
    }
    for (int k = 0; k < c; k++)
        rstd[k] = 1.0 / sqrt(rstd[k] + t->step->eps);
    t->rstd = rstd;
    parallel(threads, t->y.h, t);
}

/* Whether the frame adds a correction's offset to the output. */
static int offset_of(const struct frame_io *io)
{
    return io->corr != NULL && io->corr->offset != NULL;
}

/* A fused point-wise group (fused.c). */
static void run_expr(const struct dnnl_ctx *d, const struct inst *in,
                     const struct dnnl_slot *s, const struct nf_dnnl_expr *e,
                     const struct frame_io *io, int threads)
{
    struct nf_dnnl_expr_args a = {.e = e, .sink = -1};
    for (int i = 0; i < e->n_in; i++)
        a.in[i] = resolve(d, in, s, &e->in[i]);
    for (int o = 0; o < e->n_out; o++) {
        a.out[o] = resolve(d, in, s, &e->out[o]);
        if (e->out[o].loc == NF_DNNL_LOC_SINK) {
            a.sink = o;
            a.clamp01 = io->out != NULL && !offset_of(io);
            a.rgb = offset_of(io) ? NULL : io->out;
        }
    }
    struct task t = {.kind = NF_DNNL_STEP_EXPR, .ex = &a};
    parallel(threads, nf__dnnl_expr_units(&a), &t);
}

static int run_step(struct dnnl_ctx *d, const struct inst *in,
                    const struct dnnl_slot *s, int i, const struct frame_io *io)
{
    const struct nf_dnnl_step *st = &d->prog.steps[i];
    int threads = d->mode ? d->team : 1;
    struct task t = {.kind = st->kind, .step = st};
    if (st->kind == NF_DNNL_STEP_CONV) {
        const struct nf_dnnl_conv_rt *rt = &in->conv[d->mode][i];
        return nf__dnnl_conv_run(rt, d->st, view_base(d, in, s, &st->in[0]),
                                 view_base(d, in, s, &st->out),
                                 rt->n_variants > 1 ? s->head : 0, d->scratch);
    }
    if (st->kind == NF_DNNL_STEP_EXPR) {
        run_expr(d, in, s, st->expr, io, threads);
        return 0;
    }
    t.x = resolve(d, in, s, &st->in[0]);
    if (st->kind == NF_DNNL_STEP_HALO) {
        nf__dnnl_halo(&t.x, st->width, st->pad_mode);
        return 0;
    }
    t.y = resolve(d, in, s, &st->out);
    if (st->kind == NF_DNNL_STEP_PIXEL) {
        struct nf_dnnl_pixel_args a = {st->op,    st->n_in,  {t.x, t.x},
                                       t.y,       st->scale, st->shift,
                                       &st->tail, 0,         NULL};
        if (st->n_in > 1)
            a.in[1] = resolve(d, in, s, &st->in[1]);
        if (st->out.loc == NF_DNNL_LOC_SINK && !offset_of(io)) {
            a.clamp01 = io->out != NULL;
            a.rgb = io->out;
        }
        t.px = &a;
        parallel(threads, nf__dnnl_pixel_units(&a), &t);
    } else if (st->kind == NF_DNNL_STEP_RESAMPLE) {
        parallel(threads, t.y.h, &t);
    } else {
        run_norm(d, threads, &t);
    }
    return 0;
}

/* Copies view `from` into `to` (both resolved) with the pixel kernel. */
static void copy_rt(int threads, const struct nf_dnnl_rt *from,
                    const struct nf_dnnl_rt *to)
{
    static const struct nf_dnnl_tail none;
    struct nf_dnnl_pixel_args a = {
        NF_DNNL_COPY, 1, {*from, *from}, *to, NULL, NULL, &none, 0, NULL};
    struct task t = {.kind = NF_DNNL_STEP_PIXEL, .px = &a};
    parallel(threads, nf__dnnl_pixel_units(&a), &t);
}

/* The frame and, on a cold slot, the cache filled with it. */
static void load_inputs(struct dnnl_ctx *d, const struct inst *in,
                        struct dnnl_slot *s, const struct frame_io *io)
{
    const struct nf_dnnl_prog *p = &d->prog;
    int threads = d->mode ? d->team : 1;
    struct nf_dnnl_rt frame = resolve(d, in, s, &p->frame);
    /* First of all the motion map, which the decay may read as its map. */
    int motion = io->in != NULL && io->corr != NULL && io->corr->motion != NULL;
    struct task m = {.kind = TASK_MOTION, .rgb = io->in, .corr = io->corr};
    /* A warm slot's cache decays toward the frame (correction). */
    int decay = io->corr != NULL && io->planar_cache == NULL && s->warm &&
                (io->corr->decay > 0.0f || io->corr->decay_map != NULL);
    struct nf_dnnl_rt caches[NF_MAX_CACHE];
    for (int j = 0; decay && j < p->k; j++)
        caches[j] = resolve(d, in, s, &p->cache[j]);
    struct task t = {.kind = TASK_DECAY,
                     .x = frame,
                     .y = frame,
                     .rgb = io->in,
                     .corr = io->corr,
                     .caches = caches,
                     .n_caches = p->k};
    if (io->in != NULL && decay) {
        /* One pass: each cell row converted, then decayed while the
         * frame's cells (and the cache lines they share with the entries)
         * are still in the core's caches. */
        t.kind = TASK_INPUT_DECAY;
        if (motion)
            parallel_then(threads, io->in->height, &m,
                          nf__dnnl_cell_rows(&frame), &t);
        else
            parallel(threads, nf__dnnl_cell_rows(&frame), &t);
        return;
    }
    if (motion)
        parallel(threads, io->in->height, &m);
    if (io->in != NULL) {
        t.kind = TASK_INPUT;
        parallel(threads, frame.h, &t);
    } else {
        nf__dnnl_from_planar(io->planar_frame, &frame);
    }
    if (io->planar_cache != NULL) {
        s->head = 0;
        for (int j = 0; j < p->k; j++) {
            struct nf_dnnl_rt c = resolve(d, in, s, &p->cache[j]);
            nf__dnnl_from_planar(io->planar_cache[j], &c);
        }
        s->warm = 1;
    }
    if (!s->warm) {
        s->head = 0;
        for (int j = 0; j < p->k; j++) {
            struct nf_dnnl_rt c = resolve(d, in, s, &p->cache[j]);
            copy_rt(threads, &frame, &c);
        }
        s->warm = 1;
    } else if (decay) {
        /* Every entry in one pass: the frame and beta read once a cell. */
        t.kind = TASK_DECAY;
        parallel(threads, nf__dnnl_cell_rows(&frame), &t);
    }
}

/* Adds the correction's offset to the unclamped output, then clamps it and
 * writes the 8-bit frame. */
static void apply_offset(struct dnnl_ctx *d, const struct inst *in,
                         const struct dnnl_slot *s, const struct frame_io *io)
{
    const struct nf_correction *c = io->corr;
    struct nf_dnnl_offset off = {c->offset,           c->grid_w,      c->grid_h,
                                 io->in->width,       io->in->height, d->axis,
                                 d->arena + in->hrows};
    nf__dnnl_offset_axis(in->w, c->grid_w, io->in->width, d->axis);
    struct task t = {
        .kind = TASK_OFFSET, .rgb = io->out, .corr = c, .offset = &off};
    t.y = resolve(d, in, s, &d->prog.output);
    parallel(d->mode ? d->team : 1, nf__dnnl_cell_rows(&t.y), &t);
}

static int run_frame(struct dnnl_ctx *d, const struct inst *in,
                     struct dnnl_slot *s, const struct frame_io *io)
{
    const struct nf_dnnl_prog *p = &d->prog;
    set_threads(d->mode ? d->team : 1);
    load_inputs(d, in, s, io);
    for (int i = 0; i < p->n_steps; i++) {
        double t0 = d->profile ? now_ms() : 0;
        int rc = run_step(d, in, s, i, io);
        if (rc < 0)
            return rc;
        if (d->profile) {
            if (p->steps[i].kind == NF_DNNL_STEP_CONV)
                dnnl_stream_wait(d->st);
            d->step_ms[i] += now_ms() - t0;
        }
    }
    if (dnnl_stream_wait(d->st) != dnnl_success)
        return NF_EBACKEND;
    if (offset_of(io))
        apply_offset(d, in, s, io);
    if (!offset_of(io) && io->out != NULL && io->corr != NULL &&
        io->corr->stab != NULL) {
        /* Last, on the final 8-bit output (the cache keeps the model's);
         * with an offset, the offset's pass did it row by row. */
        struct task t = {.kind = TASK_STAB, .rgb = io->out, .corr = io->corr};
        parallel(d->mode ? d->team : 1, io->out->height, &t);
    }
    d->profiled_frames += d->profile != 0;
    if (io->planar_out != NULL) {
        struct nf_dnnl_rt o = resolve(d, in, s, &p->output);
        nf__dnnl_to_planar(&o, io->planar_out);
    }
    if (p->k > 0)
        s->head = (s->head + p->k - 1) % p->k;
    return 0;
}

/* --- Slots. --- */

static int dnnl_slot_new(struct nf_backend *b, struct nf_slot *s)
{
    (void)b;
    s->context = calloc(1, sizeof(struct dnnl_slot));
    return s->context ? 0 : NF_ENOMEM;
}

static void dnnl_slot_free(struct nf_backend *b, struct nf_slot *s)
{
    (void)b;
    struct dnnl_slot *ds = s->context;
    if (ds != NULL)
        free(ds->mem);
    free(ds);
    s->context = NULL;
}

static void dnnl_slot_reset(struct nf_backend *b, struct nf_slot *s)
{
    (void)b;
    struct dnnl_slot *ds = s->context;
    ds->warm = 0;
}

/* Sizes the slot's memory for a width x height input (padded h x w); a new
 * size empties the cache. */
static int prepare_slot(const struct nf_dnnl_prog *p, struct dnnl_slot *s,
                        int width, int height, int h, int w)
{
    if (width == s->width && height == s->height)
        return 0;
    free(s->mem);
    s->mem = NULL;
    s->width = s->height = s->warm = s->head = 0;
    size_t floats = 0;
    if (p->block) {
        struct nf_dnnl_buf g = {p->block_view.shift, 1, p->block_view.halo,
                                p->block_view.pix};
        floats = nf__dnnl_buf_floats(&g, h, w);
    } else {
        struct nf_dnnl_buf g = {0, 1, p->ring_halo, 3};
        s->entry = nf__dnnl_buf_floats(&g, h, w);
        floats = s->entry * (size_t)p->k;
    }
    if (floats > 0 && (s->mem = alloc_touched(floats * sizeof(float))) == NULL)
        return NF_ENOMEM;
    s->width = width;
    s->height = height;
    s->h = h;
    s->w = w;
    return 0;
}

/* --- The backend table. --- */

static int predict_one(struct dnnl_ctx *d, struct dnnl_slot *s,
                       const struct nf_image *in, struct nf_image *out,
                       const struct nf_correction *corr)
{
    int m = d->prog.multiple;
    int h = (in->height + m - 1) / m * m, w = (in->width + m - 1) / m * m;
    struct inst *inst = NULL;
    d->mode = nf__dnnl_threads_pick(&d->plan);
    d->last_h = h;
    d->last_w = w;
    int rc = get_inst(d, h, w, &inst);
    if (rc == 0)
        rc = prepare_slot(&d->prog, s, in->width, in->height, h, w);
    if (rc < 0)
        return rc;
    struct frame_io io = {in, out, NULL, NULL, NULL, corr};
    double t0 = now_ms();
    rc = run_frame(d, inst, s, &io);
    /* The first frames of a mode at a resolution (its primitives made,
     * threads started, memory first read) say little of its speed: 36-88
     * ms against 9-12 for the team's second frame here, which then lost to
     * a one-thread try and sent the first 8 frames to one thread. */
    if (++inst->runs[d->mode] > WARM_RUNS)
        nf__dnnl_threads_account(&d->plan, d->mode, now_ms() - t0,
                                 (double)h * w);
    return rc;
}

static int dnnl_predict(struct nf_backend *b, struct nf_predict_item *items,
                        int n)
{
    struct dnnl_ctx *d = b->context;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (items[i].status < 0)
            continue;
        items[i].status = predict_one(d, items[i].slot->context, items[i].in,
                                      items[i].out, items[i].corr);
        if (items[i].status < 0 && rc == 0)
            rc = items[i].status;
    }
    return rc;
}

static void dnnl_free(struct nf_backend *b)
{
    struct dnnl_ctx *d = b->context;
    if (d == NULL)
        return;
    for (int i = 0; i < MAX_INST; i++)
        inst_free(d, d->inst[i]);
    nf__dnnl_plan_free(&d->prog);
    if (d->st != NULL)
        dnnl_stream_destroy(d->st);
    if (d->eng != NULL)
        dnnl_engine_destroy(d->eng);
    free(d->arena);
    free(d->scratch);
    free(d->stats);
    free(d->axis);
    free(d->step_ms);
    free(d);
    b->context = NULL;
}

static int default_team(void)
{
#ifdef _OPENMP
    int n = omp_get_num_procs();
    return n < 1 ? 1 : n;
#else
    return 1;
#endif
}

static int dnnl_init(struct nf_backend *b, int threads)
{
    struct dnnl_ctx *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NF_ENOMEM;
    b->context = d;
    int rc = nf__dnnl_plan(&d->prog, &b->model->graph, b->model->size_multiple);
    if (rc < 0)
        goto fail;
    rc = NF_EBACKEND;
    if (dnnl_engine_create(&d->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&d->st, d->eng, dnnl_stream_default_flags) !=
            dnnl_success)
        goto fail;
    d->team = threads > 0 ? threads : default_team();
    nf__dnnl_threads_init(&d->plan, d->team, threads == 0);
    d->mode = d->plan.mode;
    d->step_ms = calloc((size_t)d->prog.n_steps + 1, sizeof *d->step_ms);
    if (d->step_ms == NULL) {
        rc = NF_ENOMEM;
        goto fail;
    }
    return 0;
fail:
    dnnl_free(b);
    return rc;
}

static int dnnl_available(void)
{
    dnnl_engine_t e = NULL;
    if (dnnl_engine_create(&e, dnnl_cpu, 0) != dnnl_success)
        return 0;
    dnnl_engine_destroy(e);
    return 1;
}

/* Every op and attribute of MODEL.md; an op added later is refused until
 * this backend implements it, so that "cpu" and "auto" fall back. */
static int dnnl_supports(const struct nf_model *m)
{
    const struct nf_graph *g = &m->graph;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct nf_node *n = &g->nodes[i];
        switch (n->op) {
        case NF_OP_CONV2D:
            if (n->pad_mode != NF_PAD_ZEROS && n->pad_mode != NF_PAD_REFLECT)
                return 0;
            break;
        case NF_OP_RELU:
        case NF_OP_LEAKY_RELU:
        case NF_OP_SIGMOID:
        case NF_OP_TANH:
        case NF_OP_CLAMP:
        case NF_OP_ADD:
        case NF_OP_MUL:
        case NF_OP_SCALE_SHIFT:
        case NF_OP_CONCAT:
        case NF_OP_UPSAMPLE2X_NEAREST:
        case NF_OP_UPSAMPLE2X_BILINEAR:
        case NF_OP_AVGPOOL2X2:
        case NF_OP_INSTANCE_NORM:
        case NF_OP_PIXEL_SHUFFLE:
        case NF_OP_PIXEL_UNSHUFFLE:
            break;
        default:
            return 0;
        }
    }
    return 1;
}

const struct nf_backend_i nf__backend_dnnl = {
    .name = "dnnl",
    .corrections = 1,
    .stabilizes = 1,
    .available = dnnl_available,
    .supports = dnnl_supports,
    .init = dnnl_init,
    .free = dnnl_free,
    .slot_new = dnnl_slot_new,
    .slot_free = dnnl_slot_free,
    .slot_reset = dnnl_slot_reset,
    .predict = dnnl_predict,
};

/* --- Hooks for tests and nf-kernel-bench (backend-dnnl.h). --- */

int nf__dnnl_run_float(const struct nf_model *m, int threads,
                       const float *frame, const float *const *cache, int h,
                       int w, float *out)
{
    int k = m->cache_frames, mult = m->size_multiple;
    if (frame == NULL || out == NULL || (k > 0 && cache == NULL) || h <= 0 ||
        w <= 0 || h % mult != 0 || w % mult != 0 || h > NF_BACKEND_MAX_SIDE ||
        w > NF_BACKEND_MAX_SIDE || threads < 0)
        return NF_EINVAL;
    struct nf_backend b = {.model = m};
    struct dnnl_slot s = {0};
    int rc = dnnl_init(&b, threads);
    if (rc < 0)
        return rc;
    struct dnnl_ctx *d = b.context;
    struct inst *inst = NULL;
    rc = get_inst(d, h, w, &inst);
    if (rc == 0)
        rc = prepare_slot(&d->prog, &s, w, h, h, w);
    if (rc == 0) {
        struct frame_io io = {NULL, NULL, frame, cache, out, NULL};
        rc = run_frame(d, inst, &s, &io);
    }
    free(s.mem);
    dnnl_free(&b);
    return rc;
}

void nf__dnnl_profile(struct nf_backend *b, int on)
{
    struct dnnl_ctx *d = b->context;
    d->profile = on;
    d->profiled_frames = 0;
    memset(d->step_ms, 0, (size_t)d->prog.n_steps * sizeof *d->step_ms);
}

static const char *step_kind_name(const struct nf_dnnl_step *s)
{
    static const char *const names[] = {"conv", "pixel", "resample",
                                        "norm", "halo",  "expr"};
    return names[s->kind];
}

int nf__dnnl_profile_report(const struct nf_backend *b, int i,
                            struct nf_dnnl_profile_line *line)
{
    const struct dnnl_ctx *d = b->context;
    const struct nf_dnnl_prog *p = &d->prog;
    if (i < 0 || i >= p->n_steps)
        return 0;
    const struct nf_dnnl_step *s = &p->steps[i];
    memset(line, 0, sizeof *line);
    line->kind = step_kind_name(s);
    line->node = s->node < p->g->n_nodes ? p->g->nodes[s->node].name : "output";
    line->ms = d->profiled_frames ? d->step_ms[i] / d->profiled_frames : 0;
    for (int k = 0; k < MAX_INST; k++) {
        const struct inst *in = d->inst[k];
        if (s->kind == NF_DNNL_STEP_CONV && in != NULL && in->h == d->last_h &&
            in->w == d->last_w && in->conv[d->mode] != NULL) {
            line->impl = in->conv[d->mode][i].impl;
            line->flops = in->conv[d->mode][i].flops;
        }
    }
    line->mode_threads = d->mode ? d->team : 1;
    return 1;
}
