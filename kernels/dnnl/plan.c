/*
 * plan.c - turns a model graph into the oneDNN backend's program.
 *
 * The program (struct nf_dnnl_prog in dnnl-impl.h) is built once per
 * backend and is valid for every resolution: steps name their tensors by
 * views (arena buffer, slot block, ring entry) whose sizes follow from the
 * padded frame size, and backend-dnnl.c instantiates them per resolution.
 *
 * Nodes are visited in file order. What the planner fuses, and why:
 *
 * - conv2d followed by single-use activations, one residual add and more
 *   activations becomes one oneDNN convolution with eltwise and sum
 *   post-ops. The sum reads the addend from the destination, so the
 *   destination is the addend's own buffer when the addend dies at the add
 *   (in place), else the addend is copied there first. A scale_shift right
 *   after a convolution is folded into its weights.
 * - Reflect padding: oneDNN only pads with zeros, so every tensor a padded
 *   convolution reads is stored with a halo of cells around it, filled by a
 *   cheap ring copy (pad.c); the convolution then runs with zero padding on
 *   the stored grid and produces its own output halo, which is garbage but
 *   finite and only ever overwritten or ignored. Halos also propagate
 *   backwards where that saves work: into the input of a 1x1 convolution
 *   (which then needs no padding, oneDNN's fastest path) and into a value
 *   dying at a point-wise node (which can then write in place).
 * - pixel_shuffle is a view: when a convolution's only consumer is a
 *   shuffle, its output channels are permuted ("sub-pixel major", see the
 *   view comment) so that each output pixel's channels are contiguous;
 *   otherwise the shuffle reads PyTorch's channel order with a stride.
 * - pixel_unshuffle copies into a cell grid, permuted as its consuming
 *   convolutions' weights expect when only convolutions read it.
 * - concat: producers run by this backend's own kernels write straight into
 *   their slice of the concat buffer; others are copied there. A concat of
 *   the frame and all cache frames that only convolutions read (after an
 *   optional unshuffle) becomes the slot's input block (dnnl-impl.h).
 * - Point-wise ops (add, mul, scale_shift, activations) are one pass each,
 *   with following single-use activations fused, in place when an input
 *   dies there; the node computing the model output writes the 8-bit frame
 *   and the cache directly (the "sink").
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dnnl-impl.h"
#include "error.h"
#include "model-impl.h"

/* The planner's view of one graph value. */
struct vstate {
    int defined;
    struct nf_dnnl_view v;
    int *perm;     /* (pix) node channel of each physical one, or NULL. */
    int spm_r;     /* Conv output permuted for a shuffle by spm_r, else 0. */
    int block;     /* The value is the slot's input block. */
    int halo_mode; /* Pad mode the halo ring holds now, or -1. */
    int halo_width;
};

struct planner {
    struct nf_dnnl_prog *p;
    const struct nf_graph *g;
    struct vstate *vs;  /* (n_values) */
    int *uses;          /* (n_values) reads, plus one for the output. */
    int *first_reader;  /* (n_values) first node reading the value, or -1. */
    int *need_halo;     /* (n_values) largest padding of a conv reading it. */
    int *concat_buf;    /* (n_values) arena buffer of a concat, or -1. */
    int *buf_last_node; /* (cap_bufs) last node reading a buffer. */
    char *fused;        /* (n_nodes) node already covered by a step. */
    /*
     * The point-wise group being collected (fused.c): its nodes, the cell
     * layout all its views share, its inputs from outside, and their
     * buffers' last reads, held back while the group is pending so that no
     * node emitted in between overwrites them.
     */
    struct {
        int n, nodes[NF_DNNL_EXPR_OPS];
        int r, c, shift; /* Cells and logical size of every view. */
        int n_in, in[NF_DNNL_EXPR_IN];
        int held[NF_DNNL_EXPR_IN], held_last[NF_DNNL_EXPR_IN], n_held;
    } grp;
};

static int log2i(int v)
{
    int s = 0;
    while ((1 << s) < v)
        s++;
    return s;
}

void nf__dnnl_grid(int shift, int r, int h, int w, int *ch, int *cw)
{
    int sh = shift + log2i(r);
    *ch = sh >= 0 ? h >> sh : h << -sh;
    *cw = sh >= 0 ? w >> sh : w << -sh;
}

size_t nf__dnnl_buf_floats(const struct nf_dnnl_buf *b, int h, int w)
{
    int ch, cw;
    nf__dnnl_grid(b->shift, b->r, h, w, &ch, &cw);
    return (size_t)(ch + 2 * b->halo) * (size_t)(cw + 2 * b->halo) *
           (size_t)b->pix;
}

static int is_activation(enum nf_op op)
{
    return op == NF_OP_RELU || op == NF_OP_LEAKY_RELU || op == NF_OP_SIGMOID ||
           op == NF_OP_TANH || op == NF_OP_CLAMP;
}

static struct nf_dnnl_act act_of(const struct nf_node *n)
{
    struct nf_dnnl_act a = {n->op, 0, 0};
    if (n->op == NF_OP_LEAKY_RELU)
        a.a = n->alpha;
    if (n->op == NF_OP_CLAMP) {
        a.a = n->min;
        a.b = n->max;
    }
    return a;
}

/* The only node reading v (v read exactly once and not the output). */
static int single_reader(const struct planner *P, int v)
{
    return P->uses[v] == 1 && v != P->g->output ? P->first_reader[v] : -1;
}

static int value_shift(const struct planner *P, int v)
{
    return P->g->values[v].shift;
}

static int new_buf(struct planner *P, int shift, int r, int halo, int pix)
{
    struct nf_dnnl_prog *p = P->p;
    if (p->n_bufs == p->cap_bufs) {
        int cap = p->cap_bufs ? 2 * p->cap_bufs : 16;
        struct nf_dnnl_buf *b = realloc(p->bufs, (size_t)cap * sizeof *b);
        int *l = realloc(P->buf_last_node, (size_t)cap * sizeof *l);
        if (b != NULL)
            p->bufs = b;
        if (l != NULL)
            P->buf_last_node = l;
        if (b == NULL || l == NULL)
            return NF_ENOMEM;
        p->cap_bufs = cap;
    }
    p->bufs[p->n_bufs] = (struct nf_dnnl_buf){shift, r, halo, pix};
    P->buf_last_node[p->n_bufs] = -1;
    return p->n_bufs++;
}

static struct nf_dnnl_step *new_step(struct planner *P,
                                     enum nf_dnnl_step_kind k, int node)
{
    struct nf_dnnl_prog *p = P->p;
    if (p->n_steps == p->cap_steps) {
        int cap = p->cap_steps ? 2 * p->cap_steps : 32;
        struct nf_dnnl_step *s = realloc(p->steps, (size_t)cap * sizeof *s);
        if (s == NULL)
            return NULL;
        p->steps = s;
        p->cap_steps = cap;
    }
    struct nf_dnnl_step *s = &p->steps[p->n_steps++];
    memset(s, 0, sizeof *s);
    s->kind = k;
    s->node = node;
    return s;
}

/* Records that value v (stored in view) stays readable until its last use. */
static void define(struct planner *P, int v, struct nf_dnnl_view view)
{
    struct vstate *s = &P->vs[v];
    memset(s, 0, sizeof *s);
    s->defined = 1;
    s->v = view;
    s->halo_mode = -1;
    if (view.loc == NF_DNNL_LOC_ARENA) {
        int last = P->g->values[v].last_use;
        if (last > P->buf_last_node[view.id])
            P->buf_last_node[view.id] = last;
    }
}

static struct nf_dnnl_view plain_view(int buf, int c, int shift, int halo)
{
    return (struct nf_dnnl_view){
        NF_DNNL_LOC_ARENA, buf, c, shift, 1, 1, c, 0, c, halo};
}

/* A new plain buffer for value v. */
static int plain_buf(struct planner *P, int v, int halo,
                     struct nf_dnnl_view *out)
{
    int c = P->g->values[v].channels, shift = value_shift(P, v);
    int b = new_buf(P, shift, 1, halo, c);
    if (b < 0)
        return b;
    *out = plain_view(b, c, shift, halo);
    return 0;
}

/* A view that oneDNN can read as one dense tensor: the whole buffer. */
static int conv_ready(const struct vstate *s)
{
    const struct nf_dnnl_view *v = &s->v;
    if (s->block)
        return 1;
    return (v->loc == NF_DNNL_LOC_ARENA || v->loc == NF_DNNL_LOC_RING) &&
           v->r == 1 && v->cstride == 1 && v->off == 0 && v->pix == v->c;
}

/*
 * The r of a view that keeps each pixel's channels contiguous and fills
 * its whole buffer: plain (1) or cells of r x r sub-pixel major pixels;
 * 0 for anything else (slices, PyTorch channel order, permuted values).
 */
static int whole_cells(const struct vstate *s)
{
    const struct nf_dnnl_view *v = &s->v;
    if (v->loc != NF_DNNL_LOC_ARENA || s->perm != NULL || s->block ||
        s->spm_r != 0 || v->cstride != 1 || v->off != 0 ||
        v->pix != v->c * v->r * v->r || (v->r > 1 && v->sstride != v->c))
        return 0;
    return v->r;
}

/*
 * Whether value v may be stored in cells of r > 1 (as the views it is
 * computed from): every reader is point-wise or a 1x1 convolution, which
 * runs on the cells directly (emit_conv). A conv with padding, a resample
 * or a shuffle would need it plain.
 */
static int cells_ok(const struct planner *P, int v)
{
    const struct nf_graph *g = P->g;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct nf_node *n = &g->nodes[i];
        int reads = 0;
        for (int k = 0; k < n->n_inputs; k++)
            reads |= n->inputs[k] == v;
        int pointwise = n->op == NF_OP_ADD || n->op == NF_OP_MUL ||
                        n->op == NF_OP_SCALE_SHIFT || is_activation(n->op);
        int one = n->op == NF_OP_CONV2D && n->kh == 1 && n->kw == 1 &&
                  n->stride == 1 && n->padding == 0 && n->groups == 1;
        if (reads && !pointwise && !one)
            return 0;
    }
    return 1;
}

/* A whole-buffer arena view that the output value v may overwrite (same
 * layout, dead after node `last_node`). */
static int reusable(const struct planner *P, const struct vstate *s, int v,
                    int halo, int last_node)
{
    const struct nf_dnnl_view *x = &s->v;
    int r = whole_cells(s), c = P->g->values[v].channels;
    if (r == 0 || x->c != c || x->shift != P->g->values[v].shift ||
        P->buf_last_node[x->id] > last_node)
        return 0;
    return r == 1 ? x->halo >= halo : cells_ok(P, v);
}

/* A new buffer for value v in cells of r x r pixels, sub-pixel major. */
static int cell_buf(struct planner *P, int v, int r, int halo,
                    struct nf_dnnl_view *out)
{
    int c = P->g->values[v].channels, shift = value_shift(P, v);
    int b = new_buf(P, shift, r, halo, c * r * r);
    if (b < 0)
        return b;
    *out = (struct nf_dnnl_view){NF_DNNL_LOC_ARENA, b,   c, shift, r, 1, c, 0,
                                 c * r * r,         halo};
    return 0;
}

static int emit_copy(struct planner *P, int node, struct nf_dnnl_view from,
                     struct nf_dnnl_view to)
{
    struct nf_dnnl_step *s = new_step(P, NF_DNNL_STEP_PIXEL, node);
    if (s == NULL)
        return NF_ENOMEM;
    s->op = NF_DNNL_COPY;
    s->n_in = 1;
    s->in[0] = from;
    s->out = to;
    return 0;
}

/* Copies value v into a new plain buffer with at least `halo`, for oneDNN. */
static int materialize(struct planner *P, int v, int halo, int node)
{
    struct nf_dnnl_view to;
    if (P->need_halo[v] > halo)
        halo = P->need_halo[v];
    int rc = plain_buf(P, v, halo, &to);
    if (rc == 0)
        rc = emit_copy(P, node, P->vs[v].v, to);
    if (rc == 0)
        define(P, v, to);
    return rc;
}

/* Appends the activations that alone read *v to t, marking them fused. */
static void fuse_tail(struct planner *P, struct nf_dnnl_tail *t, int *v,
                      int *last)
{
    for (;;) {
        int r = single_reader(P, *v);
        if (r < 0 || !is_activation(P->g->nodes[r].op) ||
            t->n == NF_DNNL_MAX_TAIL)
            return;
        t->f[t->n++] = act_of(&P->g->nodes[r]);
        P->fused[r] = 1;
        *v = P->g->nodes[r].output;
        *last = r;
    }
}

/*
 * Where a kernel of ours writes value v, computed by a step whose first node
 * is `first`: the sink (for the model output, PIXEL steps only), a slice of
 * the concat that alone reads it, one of the step's inputs that dies at
 * `first` (later nodes of the step only read the step's own values), or a
 * new buffer.
 */
static int place(struct planner *P, int v, int first, int sink_ok,
                 const int *inputs, int n_inputs, struct nf_dnnl_view *out)
{
    const struct nf_graph *g = P->g;
    int c = g->values[v].channels, shift = value_shift(P, v);
    if (sink_ok && v == g->output && P->uses[v] == 1) {
        memset(out, 0, sizeof *out);
        out->loc = NF_DNNL_LOC_SINK;
        out->c = c;
        out->shift = shift;
        out->r = 1;
        return 0;
    }
    int r = single_reader(P, v);
    if (r >= 0 && g->nodes[r].op == NF_OP_CONCAT && P->vs[v].defined == 0) {
        const struct nf_node *cn = &g->nodes[r];
        int cv = cn->output, off = 0, k = 0;
        if (P->concat_buf[cv] < 0) {
            struct nf_dnnl_view whole;
            int rc = plain_buf(P, cv, P->need_halo[cv], &whole);
            if (rc < 0)
                return rc;
            P->concat_buf[cv] = whole.id;
        }
        while (cn->inputs[k] != v)
            off += g->values[cn->inputs[k++]].channels;
        int b = P->concat_buf[cv], cc = g->values[cv].channels;
        *out = (struct nf_dnnl_view){
            NF_DNNL_LOC_ARENA, b, c, shift, 1, 1, c, off, cc,
            P->p->bufs[b].halo};
        return 0;
    }
    int cr = 1;
    for (int i = 0; i < n_inputs; i++) {
        const struct vstate *s = &P->vs[inputs[i]];
        if (reusable(P, s, v, P->need_halo[v], first)) {
            *out = s->v;
            return 0;
        }
        /* Inputs in sub-pixel major cells (a shuffle, the input block):
         * keep their layout, so that the kernel runs over whole cells. */
        const struct nf_dnnl_view *x = &s->v;
        if (x->cstride == 1 && x->r > cr && x->sstride == x->c)
            cr = x->r;
    }
    if (cr > 1 && cells_ok(P, v))
        return cell_buf(P, v, cr, 0, out);
    return plain_buf(P, v, P->need_halo[v], out);
}

/* Activations, add, mul and scale_shift: one PIXEL step. */
static int emit_pixel(struct planner *P, int i)
{
    const struct nf_node *n = &P->g->nodes[i];
    struct nf_dnnl_step tmp = {0};
    int v = n->output, last = i;
    tmp.kind = NF_DNNL_STEP_PIXEL;
    tmp.n_in = n->n_inputs;
    for (int k = 0; k < n->n_inputs; k++)
        tmp.in[k] = P->vs[n->inputs[k]].v;
    if (is_activation(n->op)) {
        tmp.op = NF_DNNL_COPY;
        tmp.tail.f[tmp.tail.n++] = act_of(n);
    } else if (n->op == NF_OP_ADD) {
        tmp.op = NF_DNNL_ADD;
    } else if (n->op == NF_OP_MUL) {
        tmp.op = NF_DNNL_MUL;
    } else {
        tmp.op = NF_DNNL_AFFINE;
        tmp.scale = n->weight ? n->weight->data : NULL;
        tmp.shift = n->bias ? n->bias->data : NULL;
    }
    fuse_tail(P, &tmp.tail, &v, &last);
    int rc = place(P, v, i, 1, n->inputs, n->n_inputs, &tmp.out);
    if (rc < 0)
        return rc;
    struct nf_dnnl_step *s = new_step(P, NF_DNNL_STEP_PIXEL, last);
    if (s == NULL)
        return NF_ENOMEM;
    *s = tmp;
    s->node = last;
    if (tmp.out.loc != NF_DNNL_LOC_SINK)
        define(P, v, tmp.out);
    return 0;
}

static int emit_resample(struct planner *P, int i)
{
    const struct nf_node *n = &P->g->nodes[i];
    int v = n->output, last = i;
    struct nf_dnnl_tail tail = {0};
    fuse_tail(P, &tail, &v, &last);
    struct nf_dnnl_view out;
    int rc = place(P, v, i, 0, NULL, 0, &out);
    if (rc < 0)
        return rc;
    struct nf_dnnl_step *s = new_step(P, NF_DNNL_STEP_RESAMPLE, last);
    if (s == NULL)
        return NF_ENOMEM;
    s->op = n->op;
    s->n_in = 1;
    s->in[0] = P->vs[n->inputs[0]].v;
    s->out = out;
    s->tail = tail;
    define(P, v, out);
    return 0;
}

static int emit_norm(struct planner *P, int i)
{
    const struct nf_node *n = &P->g->nodes[i];
    int v = n->output, last = i;
    struct nf_dnnl_tail tail = {0};
    fuse_tail(P, &tail, &v, &last);
    struct nf_dnnl_view out;
    int rc = place(P, v, i, 0, n->inputs, 1, &out);
    if (rc < 0)
        return rc;
    struct nf_dnnl_step *s = new_step(P, NF_DNNL_STEP_NORM, last);
    if (s == NULL)
        return NF_ENOMEM;
    s->n_in = 1;
    s->in[0] = P->vs[n->inputs[0]].v;
    s->out = out;
    s->scale = n->weight ? n->weight->data : NULL;
    s->shift = n->bias ? n->bias->data : NULL;
    s->eps = n->eps;
    s->tail = tail;
    define(P, v, out);
    return 0;
}

static int emit_concat(struct planner *P, int i)
{
    const struct nf_graph *g = P->g;
    const struct nf_node *n = &g->nodes[i];
    int cv = n->output, off = 0, rc = 0;
    if (P->concat_buf[cv] < 0) {
        struct nf_dnnl_view whole;
        rc = plain_buf(P, cv, P->need_halo[cv], &whole);
        if (rc < 0)
            return rc;
        P->concat_buf[cv] = whole.id;
    }
    int b = P->concat_buf[cv], cc = g->values[cv].channels;
    int halo = P->p->bufs[b].halo, shift = value_shift(P, cv);
    for (int k = 0; k < n->n_inputs && rc == 0; k++) {
        int x = n->inputs[k], c = g->values[x].channels;
        struct nf_dnnl_view slice = {
            NF_DNNL_LOC_ARENA, b, c, shift, 1, 1, c, off, cc, halo};
        if (memcmp(&P->vs[x].v, &slice, sizeof slice) != 0)
            rc = emit_copy(P, i, P->vs[x].v, slice);
        off += c;
    }
    if (rc == 0)
        define(P, cv, plain_view(b, cc, shift, halo));
    return rc;
}

static int emit_shuffle(struct planner *P, int i)
{
    const struct nf_node *n = &P->g->nodes[i];
    int x = n->inputs[0], r = n->factor, rc = 0;
    const struct vstate *s = &P->vs[x];
    int c = P->g->values[n->output].channels;
    if (s->spm_r != r &&
        !(s->v.r == 1 && s->v.cstride == 1 && s->perm == NULL && !s->block))
        rc = materialize(P, x, 0, i);
    if (rc < 0)
        return rc;
    struct nf_dnnl_view v = s->v;
    v.c = c;
    v.shift = value_shift(P, n->output);
    v.r = r;
    if (s->spm_r == r) {
        v.cstride = 1;
        v.sstride = c;
    } else {
        v.cstride = r * r;
        v.sstride = 1;
    }
    define(P, n->output, v);
    return 0;
}

/* 1 if only convolutions without groups read value v. */
static int only_convs_read(const struct planner *P, int v)
{
    const struct nf_graph *g = P->g;
    if (v == g->output)
        return 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] == v &&
                (g->nodes[i].op != NF_OP_CONV2D || g->nodes[i].groups != 1))
                return 0;
    return 1;
}

static int emit_unshuffle(struct planner *P, int i)
{
    const struct nf_node *n = &P->g->nodes[i];
    int x = n->inputs[0], u = n->output, r = n->factor;
    int cx = P->g->values[x].channels, cu = cx * r * r;
    int spm = only_convs_read(P, u);
    struct nf_dnnl_view to;
    int rc = plain_buf(P, u, P->need_halo[u], &to);
    if (rc < 0)
        return rc;
    struct nf_dnnl_view as_x = to;
    as_x.c = cx;
    as_x.shift = value_shift(P, x);
    as_x.r = r;
    as_x.cstride = spm ? 1 : r * r;
    as_x.sstride = spm ? cx : 1;
    rc = emit_copy(P, i, P->vs[x].v, as_x);
    if (rc < 0)
        return rc;
    define(P, u, to);
    if (spm) {
        int *perm = malloc((size_t)cu * sizeof *perm);
        if (perm == NULL)
            return NF_ENOMEM;
        for (int sp = 0; sp < r * r; sp++)
            for (int c = 0; c < cx; c++)
                perm[sp * cx + c] = c * r * r + sp;
        P->vs[u].perm = perm;
    }
    return 0;
}

/* Whether addend u of a residual add at node `add` may be overwritten by
 * the convolution at node `conv`, which reads `in`: it dies at the add,
 * nobody in between reads its buffer, and it is not the source. */
static int addend_in_place(const struct planner *P, int u, int conv, int add,
                           const struct nf_dnnl_view *in)
{
    const struct vstate *s = &P->vs[u];
    if (s->v.loc != NF_DNNL_LOC_ARENA || P->buf_last_node[s->v.id] > add ||
        (in->loc == NF_DNNL_LOC_ARENA && in->id == s->v.id))
        return 0;
    for (int j = conv + 1; j < add; j++)
        for (int k = 0; k < P->g->nodes[j].n_inputs; k++) {
            const struct vstate *t = &P->vs[P->g->nodes[j].inputs[k]];
            if (t->defined && t->v.loc == NF_DNNL_LOC_ARENA &&
                t->v.id == s->v.id)
                return 0;
        }
    return 1;
}

/* Left and right oneDNN padding for output halo ho; 0 if both >= 0. */
static int conv_pads(const struct nf_node *n, int hi, int ho, int *pl, int *pry,
                     int *prx)
{
    int s = n->stride, p = n->padding;
    *pl = ho * s - hi + p;
    *pry = *pl + n->kh - s - 2 * p;
    *prx = *pl + n->kw - s - 2 * p;
    return *pl >= 0 && *pry >= 0 && *prx >= 0 ? 0 : -1;
}

/* Copies a channel map (n ints) or returns NF_ENOMEM. */
static int *dup_map(const int *map, size_t n)
{
    int *m = malloc(n * sizeof *m);
    if (m != NULL)
        memcpy(m, map, n * sizeof *m);
    return m;
}

/* oneDNN's eltwise algorithm family of an activation. */
static int alg_key(enum nf_op op)
{
    return op == NF_OP_LEAKY_RELU ? NF_OP_RELU : op;
}

/*
 * Appends activation f to c's post-ops. oneDNN 2.6 computes wrong results
 * when one primitive has two eltwise post-ops of the same algorithm with
 * different parameters (measured: clamp then clamp, leaky_relu then
 * leaky_relu), so a clamp right after a clamp is merged into it (clamps
 * compose exactly) and any other such pair is refused (returns -1; the
 * activation then runs in our kernel).
 */
static int append_act(struct nf_dnnl_conv *c, struct nf_dnnl_act f)
{
    struct nf_dnnl_post *last = c->n_post ? &c->post[c->n_post - 1] : NULL;
    if (last != NULL && last->kind == NF_DNNL_POST_ELTWISE &&
        last->act.op == NF_OP_CLAMP && f.op == NF_OP_CLAMP) {
        float lo = fminf(fmaxf(last->act.a, f.a), f.b);
        last->act.b = fmaxf(fminf(last->act.b, f.b), lo);
        last->act.a = lo;
        return 0;
    }
    for (int i = 0; i < c->n_post; i++) {
        const struct nf_dnnl_act *g = &c->post[i].act;
        if (c->post[i].kind == NF_DNNL_POST_ELTWISE &&
            alg_key(g->op) == alg_key(f.op) && (g->a != f.a || g->b != f.b))
            return -1;
    }
    c->post[c->n_post].kind = NF_DNNL_POST_ELTWISE;
    c->post[c->n_post++].act = f;
    return 0;
}

/* The fusion chain after a convolution: activations, one residual add,
 * a scale_shift right after the convolution. Returns the fused value. */
static int conv_chain(struct planner *P, int i, struct nf_dnnl_conv *c,
                      int *last, int *sum_u, int *sum_node)
{
    const struct nf_graph *g = P->g;
    int f = g->nodes[i].output;
    *last = i;
    *sum_u = *sum_node = -1;
    for (;;) {
        int r = single_reader(P, f);
        if (r < 0 || c->n_post == NF_DNNL_MAX_POST)
            break;
        const struct nf_node *m = &g->nodes[r];
        if (is_activation(m->op)) {
            if (append_act(c, act_of(m)) < 0)
                break;
        } else if (m->op == NF_OP_ADD && *sum_u < 0 &&
                   m->inputs[0] != m->inputs[1]) {
            int u = m->inputs[0] == f ? m->inputs[1] : m->inputs[0];
            const struct vstate *s = &P->vs[u];
            if (!s->defined || s->perm != NULL || s->block)
                break;
            *sum_u = u;
            *sum_node = r;
            c->post[c->n_post++].kind = NF_DNNL_POST_SUM;
        } else if (m->op == NF_OP_SCALE_SHIFT && c->n_post == 0 &&
                   c->scale == NULL && c->shift == NULL &&
                   g->nodes[i].groups == 1) {
            c->scale = m->weight ? m->weight->data : NULL;
            c->shift = m->bias ? m->bias->data : NULL;
            c->folded = 1;
        } else {
            break;
        }
        P->fused[r] = 1;
        f = m->output;
        *last = r;
    }
    return f;
}

/* The r of the cells a 1x1 convolution at node i can run on directly
 * (block-diagonal weights, conv.c), or 0. */
static int conv_cells(const struct planner *P, int i)
{
    const struct nf_node *n = &P->g->nodes[i];
    int r = whole_cells(&P->vs[n->inputs[0]]);
    int one = n->kh == 1 && n->kw == 1 && n->stride == 1 && n->padding == 0 &&
              n->groups == 1;
    return one && r > 1 ? r : 0;
}

/* The convolution's input: materialized, halo filled; sets in_map. */
static int conv_input(struct planner *P, int i, struct nf_dnnl_conv *c)
{
    const struct nf_node *n = &P->g->nodes[i];
    int x = n->inputs[0], rc = 0;
    struct vstate *s = &P->vs[x];
    if ((c->cell_r = conv_cells(P, i)) > 0) {
        c->cin = s->v.pix;
        c->n_variants = 1;
        return 0;
    }
    int grouped = n->groups != 1 && (s->perm != NULL || s->block);
    if (!conv_ready(s) || grouped || s->v.halo < n->padding)
        rc = materialize(P, x, n->padding, i);
    if (rc == 0 && n->padding > 0 &&
        (s->halo_mode != (int)n->pad_mode || s->halo_width < n->padding)) {
        struct nf_dnnl_step *h = new_step(P, NF_DNNL_STEP_HALO, i);
        if (h == NULL)
            return NF_ENOMEM;
        h->n_in = 1;
        h->in[0] = s->v;
        h->pad_mode = n->pad_mode;
        h->width = n->padding;
        s->halo_mode = n->pad_mode;
        s->halo_width = n->padding;
    }
    if (rc < 0)
        return rc;
    c->cin = s->v.pix;
    c->n_variants = 1;
    if (s->block) {
        c->n_variants = P->p->k;
        c->in_map = dup_map(P->p->block_map, (size_t)P->p->k * c->cin);
    } else if (s->perm != NULL) {
        c->in_map = dup_map(s->perm, (size_t)c->cin);
    }
    if ((s->block || s->perm != NULL) && c->in_map == NULL)
        return NF_ENOMEM;
    return 0;
}

static int emit_conv(struct planner *P, int i)
{
    const struct nf_graph *g = P->g;
    const struct nf_node *n = &g->nodes[i];
    struct nf_dnnl_conv c = {0};
    c.node = n;
    c.groups = n->groups;
    c.cout = n->weight->shape[0];
    int rc = conv_input(P, i, &c);
    if (rc < 0)
        goto fail;
    struct nf_dnnl_view in = P->vs[n->inputs[0]].v;
    int last, u, add;
    int f = conv_chain(P, i, &c, &last, &u, &add);
    int hmin = 0;
    while (hmin * n->stride < in.halo - n->padding)
        hmin++;
    int ho = P->need_halo[f] > hmin ? P->need_halo[f] : hmin;
    int pl, pry, prx;
    while (conv_pads(n, in.halo, ho, &pl, &pry, &prx) < 0)
        ho++;
    struct nf_dnnl_view out;
    int cr = c.cell_r;
    if (cr > 0) {
        /* On cells: the output keeps the input's grid and halo, or takes
         * the addend's larger halo so that the sum can run in place. */
        ho = in.halo;
        if (u >= 0 && whole_cells(&P->vs[u]) == cr && P->vs[u].v.halo > ho)
            ho = P->vs[u].v.halo;
    }
    int in_place = u >= 0 && addend_in_place(P, u, i, add, &in) &&
                   reusable(P, &P->vs[u], f, ho, add) &&
                   P->vs[u].v.r == (cr > 0 ? cr : 1) &&
                   (cr == 0 || P->vs[u].v.halo == ho) &&
                   conv_pads(n, in.halo, P->vs[u].v.halo, &pl, &pry, &prx) == 0;
    if (in_place) {
        out = P->vs[u].v;
    } else {
        conv_pads(n, in.halo, ho, &pl, &pry, &prx);
        rc = cr > 0 ? cell_buf(P, f, cr, ho, &out) : plain_buf(P, f, ho, &out);
        if (rc < 0)
            goto fail;
        /* The sum post-op adds what the destination holds: the addend. */
        if (u >= 0 && (rc = emit_copy(P, add, P->vs[u].v, out)) < 0)
            goto fail;
    }
    c.pl = pl;
    c.pry = pry;
    c.prx = prx;
    c.cout *= cr > 0 ? cr * cr : 1;
    int r = single_reader(P, f);
    if (u < 0 && c.groups == 1 && cr == 0 && r >= 0 &&
        g->nodes[r].op == NF_OP_PIXEL_SHUFFLE) {
        int fr = g->nodes[r].factor, cy = c.cout / (fr * fr);
        if ((c.out_map = malloc((size_t)c.cout * sizeof *c.out_map)) == NULL) {
            rc = NF_ENOMEM;
            goto fail;
        }
        for (int sp = 0; sp < fr * fr; sp++)
            for (int k = 0; k < cy; k++)
                c.out_map[sp * cy + k] = k * fr * fr + sp;
    }
    struct nf_dnnl_step *s = new_step(P, NF_DNNL_STEP_CONV, last);
    if (s == NULL) {
        rc = NF_ENOMEM;
        goto fail;
    }
    s->n_in = 1;
    s->in[0] = in;
    s->out = out;
    s->conv = c;
    define(P, f, out);
    if (c.out_map != NULL)
        P->vs[f].spm_r = g->nodes[r].factor;
    return 0;
fail:
    free(c.in_map);
    free(c.out_map);
    return rc;
}

/* A concat of the frame and every cache frame (each once) that only
 * convolutions read, maybe through one pixel_unshuffle; sets *unshuffle. */
static int find_block(const struct planner *P, int *unshuffle)
{
    const struct nf_graph *g = P->g;
    int k = g->cache_frames;
    for (int i = 0; i < g->n_nodes && k > 0; i++) {
        const struct nf_node *n = &g->nodes[i];
        if (n->op != NF_OP_CONCAT)
            continue;
        int ok = 1, seen = 0;
        for (int q = 0; q < n->n_inputs; q++) {
            int x = n->inputs[q];
            int bit = x < NF_VALUE_CACHE(k) ? 1 << x : 0;
            ok &= bit != 0 && (seen & bit) == 0;
            seen |= bit;
        }
        if (!ok || (seen | 1) != (1 << NF_VALUE_CACHE(k)) - 1)
            continue;
        int v = n->output, r = single_reader(P, v);
        *unshuffle = -1;
        if (r >= 0 && g->nodes[r].op == NF_OP_PIXEL_UNSHUFFLE) {
            *unshuffle = r;
            v = g->nodes[r].output;
        }
        if (!only_convs_read(P, v))
            continue;
        for (int j = 0; j < g->n_nodes; j++)
            for (int q = 0; q < g->nodes[j].n_inputs; q++)
                if (j != i && g->nodes[j].inputs[q] < NF_VALUE_CACHE(k) &&
                    g->nodes[j].op == NF_OP_CONV2D)
                    ok = 0;
        if (ok)
            return i;
    }
    return -1;
}

/* Lays out the input block for concat node bi (see dnnl-impl.h). */
static int setup_block(struct planner *P, int bi, int un)
{
    struct nf_dnnl_prog *p = P->p;
    const struct nf_node *n = &P->g->nodes[bi];
    int k = p->k, r = un >= 0 ? P->g->nodes[un].factor : 1, per = 3 * r * r;
    int v = un >= 0 ? P->g->nodes[un].output : n->output;
    int pix = n->n_inputs * per, halo = P->need_halo[v];
    int pos[NF_MAX_CACHE] = {0};
    int frame_q = -1;
    for (int q = 0; q < n->n_inputs; q++) {
        int x = n->inputs[q];
        struct nf_dnnl_view leaf = {NF_DNNL_LOC_BLOCK, x - 1, 3,   0, r, 1, 3,
                                    q * per,           pix,   halo};
        if (x == NF_VALUE_FRAME)
            frame_q = q;
        else
            pos[x - 1] = q;
        define(P, x, leaf);
    }
    for (int e = 0; e < k; e++)
        p->block_entry_off[e] = pos[e] * per;
    p->block_view = (struct nf_dnnl_view){
        NF_DNNL_LOC_BLOCK, -1, pix, value_shift(P, v), 1, 1, pix, 0, pix, halo};
    p->block_map = malloc((size_t)k * pix * sizeof *p->block_map);
    if (p->block_map == NULL)
        return NF_ENOMEM;
    for (int h = 0; h < k; h++)
        for (int ph = 0; ph < pix; ph++) {
            int s = ph / per, sub = ph % per / 3, c = ph % 3, q = s;
            if (s != frame_q) {
                int e = 0;
                while (pos[e] != s)
                    e++;
                q = pos[(e - h + k) % k]; /* Slot s holds cache.(e - h). */
            }
            p->block_map[h * pix + ph] = (q * 3 + c) * r * r + sub;
        }
    define(P, v, p->block_view);
    P->vs[v].block = 1;
    P->fused[bi] = 1;
    if (un >= 0)
        P->fused[un] = 1;
    p->block = 1;
    return 0;
}

/* Where the frame and the cache live. */
static int setup_leaves(struct planner *P)
{
    struct nf_dnnl_prog *p = P->p;
    int un, bi = find_block(P, &un), rc = 0;
    if (bi >= 0)
        rc = setup_block(P, bi, un);
    if (rc == 0 && !P->vs[NF_VALUE_FRAME].defined) {
        struct nf_dnnl_view v;
        rc = place(P, NF_VALUE_FRAME, -1, 0, NULL, 0, &v);
        if (rc == 0)
            define(P, NF_VALUE_FRAME, v);
    }
    for (int j = 0; j < p->k && !p->block; j++)
        if (P->need_halo[NF_VALUE_CACHE(j)] > p->ring_halo)
            p->ring_halo = P->need_halo[NF_VALUE_CACHE(j)];
    for (int j = 0; j < p->k && !p->block; j++)
        define(P, NF_VALUE_CACHE(j),
               (struct nf_dnnl_view){NF_DNNL_LOC_RING, j, 3, 0, 1, 1, 3, 0, 3,
                                     p->ring_halo});
    p->frame = P->vs[NF_VALUE_FRAME].v;
    for (int j = 0; j < p->k; j++)
        p->cache[j] = P->vs[NF_VALUE_CACHE(j)].v;
    return rc;
}

static int emit_node(struct planner *P, int i);

/* --- Point-wise groups (EXPR steps). --- */

static int is_pointwise(enum nf_op op)
{
    return op == NF_OP_ADD || op == NF_OP_MUL || op == NF_OP_SCALE_SHIFT ||
           is_activation(op);
}

/*
 * A 1x1 convolution with as many outputs as inputs (3 -> 3 on a full
 * resolution image, say): a per-pixel matrix that a group computes in
 * registers (fused.c) instead of a oneDNN call on few channels. Its pixels
 * must not straddle vectors: cells of at most 16 floats, or c divides 16.
 */
static int group_conv(const struct planner *P, const struct nf_node *n, int r)
{
    if (n->op != NF_OP_CONV2D)
        return 0;
    int c = P->g->values[n->output].channels;
    return n->kh == 1 && n->kw == 1 && n->stride == 1 && n->padding == 0 &&
           n->groups == 1 && P->g->values[n->inputs[0]].channels == c &&
           c <= 16 && (c * r * r <= 16 || 16 % c == 0);
}

/* Whether view v stores its pixels in cells of r with c contiguous
 * channels each (a slice is fine). */
static int fits_cells(const struct nf_dnnl_view *v, int r, int c, int shift)
{
    return v->loc != NF_DNNL_LOC_SINK && v->c == c && v->shift == shift &&
           v->cstride == 1 && v->r == r && (r == 1 || v->sstride == c);
}

static int in_group(const struct planner *P, int v)
{
    for (int k = 0; k < P->grp.n; k++)
        if (P->g->nodes[P->grp.nodes[k]].output == v)
            return 1;
    return 0;
}

/* Adds point-wise node i to the pending group if its layouts fit. */
static int group_add(struct planner *P, int i)
{
    const struct nf_node *n = &P->g->nodes[i];
    int r = P->grp.r, c = P->g->values[n->output].channels;
    int shift = value_shift(P, n->output);
    int news[NF_NODE_MAX_INPUTS], n_new = 0;
    if (P->grp.n == NF_DNNL_EXPR_OPS ||
        (P->grp.n > 0 && (c != P->grp.c || shift != P->grp.shift)))
        return 0;
    for (int k = 0; k < n->n_inputs; k++) {
        int x = n->inputs[k];
        if (in_group(P, x))
            continue;
        const struct vstate *s = &P->vs[x];
        if (P->grp.n == 0 && n_new == 0)
            r = s->v.r;
        if (!s->defined || s->perm != NULL || s->block ||
            !fits_cells(&s->v, r, c, shift))
            return 0;
        int seen = 0;
        for (int j = 0; j < P->grp.n_in; j++)
            seen |= P->grp.in[j] == x;
        for (int j = 0; j < n_new; j++)
            seen |= news[j] == x;
        if (!seen)
            news[n_new++] = x;
    }
    if ((P->grp.n == 0 && n_new == 0) ||
        P->grp.n_in + n_new > NF_DNNL_EXPR_IN ||
        (n->op == NF_OP_CONV2D && !group_conv(P, n, r)))
        return 0;
    for (int j = 0; j < n_new; j++) {
        int x = news[j];
        P->grp.in[P->grp.n_in++] = x;
        if (P->vs[x].v.loc == NF_DNNL_LOC_ARENA) {
            int b = P->vs[x].v.id;
            P->grp.held[P->grp.n_held] = b;
            P->grp.held_last[P->grp.n_held++] = P->buf_last_node[b];
            P->buf_last_node[b] = P->g->n_nodes + 1;
        }
    }
    P->grp.r = r;
    P->grp.c = c;
    P->grp.shift = shift;
    P->grp.nodes[P->grp.n++] = i;
    return 1;
}

/* Whether group value v is read after the group (or is the output). */
static int group_out_needed(const struct planner *P, int v)
{
    const struct nf_graph *g = P->g;
    if (v == g->output)
        return 1;
    for (int i = 0; i < g->n_nodes; i++) {
        int member = 0;
        for (int k = 0; k < P->grp.n; k++)
            member |= P->grp.nodes[k] == i;
        for (int k = 0; k < g->nodes[i].n_inputs && !member; k++)
            if (g->nodes[i].inputs[k] == v)
                return 1;
    }
    return 0;
}

/* The staging view the sink writes (backend-dnnl.c resolve()). */
static struct nf_dnnl_view sink_staging(const struct planner *P)
{
    if (P->p->k > 0)
        return P->vs[NF_VALUE_CACHE(P->p->k - 1)].v;
    return (struct nf_dnnl_view){NF_DNNL_LOC_ARENA, 0, 3, 0, 1, 1, 3, 0, 3, 0};
}

/* Register of value v in the expression (input or node result). */
static int group_reg(const struct planner *P, const struct nf_dnnl_expr *e,
                     int v)
{
    for (int j = 0; j < e->n_in; j++)
        if (P->grp.in[j] == v)
            return j;
    for (int k = 0; k < P->grp.n; k++)
        if (P->g->nodes[P->grp.nodes[k]].output == v)
            return e->n_in + k;
    return -1;
}

/*
 * The group's nodes as expression ops, with their parameters laid out per
 * lane of a (padded) cell: AFFINE scale and shift, CONV bias and weights.
 */
static int group_ops(struct planner *P, struct nf_dnnl_expr *e)
{
    int len = nf__dnnl_expr_period(e->len), n_arrays = 0, c = P->grp.c;
    for (int k = 0; k < P->grp.n; k++) {
        enum nf_op op = P->g->nodes[P->grp.nodes[k]].op;
        n_arrays += op == NF_OP_SCALE_SHIFT ? 2
                    : op == NF_OP_CONV2D    ? 1 + c
                                            : 0;
    }
    if (n_arrays > 0 &&
        (e->params = calloc((size_t)n_arrays * len, sizeof(float))) == NULL)
        return NF_ENOMEM;
    float *p = e->params;
    for (int k = 0; k < P->grp.n; k++) {
        const struct nf_node *n = &P->g->nodes[P->grp.nodes[k]];
        struct nf_dnnl_expr_op *o = &e->ops[e->n_ops++];
        o->a = group_reg(P, e, n->inputs[0]);
        o->b = n->n_inputs > 1 ? group_reg(P, e, n->inputs[1]) : -1;
        o->params = p != NULL ? (int)(p - e->params) : 0;
        if (is_activation(n->op)) {
            o->op = -1;
            o->act = act_of(n);
        } else if (n->op == NF_OP_CONV2D) {
            /* Lane i is channel i % c of its pixel; padding lanes stay 0. */
            o->op = NF_DNNL_EXPR_CONV;
            for (int i = 0; i < e->len; i++) {
                int co = i % c;
                p[i] = n->bias ? n->bias->data[co] : 0.0f;
                for (int ci = 0; ci < c; ci++)
                    p[(1 + ci) * len + i] = n->weight->data[co * c + ci];
            }
            p += (size_t)(1 + c) * len;
        } else if (n->op == NF_OP_SCALE_SHIFT) {
            o->op = NF_DNNL_AFFINE;
            for (int i = 0; i < len; i++) {
                int ch = i % c;
                p[i] = n->weight ? n->weight->data[ch] : 1.0f;
                p[len + i] = n->bias ? n->bias->data[ch] : 0.0f;
            }
            p += (size_t)2 * len;
        } else {
            o->op = n->op == NF_OP_ADD ? NF_DNNL_ADD : NF_DNNL_MUL;
        }
    }
    return 0;
}

/* Where the group stores value v: as place() would, in the group's
 * cells, never in an input buffer another output already took. */
static int group_place(struct planner *P, int v, int last, const int *taken,
                       int n_taken, struct nf_dnnl_view *out)
{
    int ins[NF_DNNL_EXPR_IN], n = 0, r = P->grp.r;
    for (int j = 0; j < P->grp.n_in; j++) {
        const struct vstate *s = &P->vs[P->grp.in[j]];
        int used = 0;
        for (int t = 0; t < n_taken; t++)
            used |= s->v.loc == NF_DNNL_LOC_ARENA && s->v.id == taken[t];
        if (!used)
            ins[n++] = P->grp.in[j];
    }
    int rc = place(P, v, last, 1, ins, n, out);
    if (rc < 0)
        return rc;
    if (out->loc == NF_DNNL_LOC_SINK) {
        struct nf_dnnl_view st = sink_staging(P);
        if (fits_cells(&st, r, P->grp.c, P->grp.shift))
            return 0;
    } else if (fits_cells(out, r, P->grp.c, P->grp.shift)) {
        return 0;
    }
    /* Not the group's cells: a buffer that is (readers copy if needed). */
    return r > 1 ? cell_buf(P, v, r, 0, out)
                 : plain_buf(P, v, P->need_halo[v], out);
}

static int emit_pixel(struct planner *P, int i);

/* Emits the pending group as one EXPR step (a single node as PIXEL). */
static int group_flush(struct planner *P)
{
    int n = P->grp.n, n_in = P->grp.n_in;
    for (int j = 0; j < P->grp.n_held; j++)
        P->buf_last_node[P->grp.held[j]] = P->grp.held_last[j];
    P->grp.n_held = 0;
    if (n <= 1) {
        /* A single node runs as its own step (PIXEL keeps dense rows). */
        P->grp.n = P->grp.n_in = 0;
        if (n == 0)
            return 0;
        int i = P->grp.nodes[0];
        return P->g->nodes[i].op == NF_OP_CONV2D ? emit_node(P, i)
                                                 : emit_pixel(P, i);
    }
    struct nf_dnnl_expr *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NF_ENOMEM;
    e->len = P->grp.c * P->grp.r * P->grp.r;
    e->c = P->grp.c;
    for (int ci = 0; ci < e->c && ci < 16; ci++)
        for (int j = 0; j < 16; j++)
            e->lane[ci][j] = j - j % e->c + ci < 16 ? j - j % e->c + ci : 15;
    e->n_in = n_in;
    for (int j = 0; j < n_in; j++)
        e->in[j] = P->vs[P->grp.in[j]].v;
    int last = P->grp.nodes[n - 1], taken[NF_DNNL_EXPR_OUT];
    int rc = group_ops(P, e);
    for (int k = 0; k < n && rc == 0; k++) {
        int v = P->g->nodes[P->grp.nodes[k]].output;
        if (!group_out_needed(P, v))
            continue;
        if (e->n_out == NF_DNNL_EXPR_OUT) {
            rc = NF_ENOMEM; /* group_add keeps groups smaller. */
            break;
        }
        struct nf_dnnl_view *o = &e->out[e->n_out];
        if ((rc = group_place(P, v, last, taken, e->n_out, o)) < 0)
            break;
        taken[e->n_out] = o->loc == NF_DNNL_LOC_ARENA ? o->id : -1;
        e->out_reg[e->n_out++] = e->n_in + k;
        if (o->loc != NF_DNNL_LOC_SINK)
            define(P, v, *o);
    }
    P->grp.n = P->grp.n_in = 0;
    struct nf_dnnl_step *s =
        rc == 0 ? new_step(P, NF_DNNL_STEP_EXPR, last) : NULL;
    if (s == NULL) {
        free(e->params);
        free(e);
        return rc < 0 ? rc : NF_ENOMEM;
    }
    s->expr = e;
    return 0;
}

/* Whether node n reads a value of the pending group. */
static int reads_group(const struct planner *P, const struct nf_node *n)
{
    for (int k = 0; k < n->n_inputs; k++)
        if (in_group(P, n->inputs[k]))
            return 1;
    return 0;
}

/*
 * Visits node i: point-wise nodes join the pending group; any other node
 * first flushes the group if it reads one of its values.
 */
static int visit_node(struct planner *P, int i)
{
    const struct nf_node *n = &P->g->nodes[i];
    int rc = 0, conv = group_conv(P, n, 1);
    if (is_pointwise(n->op) || conv) {
        if (group_add(P, i))
            return 0;
        if ((rc = group_flush(P)) < 0)
            return rc;
        if (P->fused[i] || group_add(P, i))
            return 0;
        return conv ? emit_node(P, i) : emit_pixel(P, i);
    }
    if (reads_group(P, n) && (rc = group_flush(P)) < 0)
        return rc;
    if (P->fused[i])
        return 0;
    return emit_node(P, i);
}

static int emit_node(struct planner *P, int i)
{
    switch (P->g->nodes[i].op) {
    case NF_OP_CONV2D:
        return emit_conv(P, i);
    case NF_OP_CONCAT:
        return emit_concat(P, i);
    case NF_OP_PIXEL_SHUFFLE:
        return emit_shuffle(P, i);
    case NF_OP_PIXEL_UNSHUFFLE:
        return emit_unshuffle(P, i);
    case NF_OP_UPSAMPLE2X_NEAREST:
    case NF_OP_UPSAMPLE2X_BILINEAR:
    case NF_OP_AVGPOOL2X2:
        return emit_resample(P, i);
    case NF_OP_INSTANCE_NORM:
        return emit_norm(P, i);
    default:
        return emit_pixel(P, i);
    }
}

/* Counts reads, first readers and the halo each value needs. */
static void scan_graph(struct planner *P)
{
    const struct nf_graph *g = P->g;
    for (int v = 0; v < g->n_values; v++) {
        P->first_reader[v] = -1;
        P->concat_buf[v] = -1;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const struct nf_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            int v = n->inputs[k];
            P->uses[v]++;
            if (P->first_reader[v] < 0)
                P->first_reader[v] = i;
            if (n->op == NF_OP_CONV2D && n->padding > P->need_halo[v])
                P->need_halo[v] = n->padding;
        }
    }
    P->uses[g->output]++;
    /*
     * Backwards, a node value gets the halo of the node reading it when
     * that node is point-wise and the value dies there (so the node can
     * write in place, place()), or when it is a 1x1 convolution (which then
     * runs over the halo without padding, oneDNN's fastest 1x1 path).
     */
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const struct nf_node *n = &g->nodes[i];
        int pointwise = n->op == NF_OP_ADD || n->op == NF_OP_MUL ||
                        n->op == NF_OP_SCALE_SHIFT || is_activation(n->op);
        int one =
            n->op == NF_OP_CONV2D && n->kh == 1 && n->kw == 1 && n->stride == 1;
        for (int k = 0; (pointwise || one) && k < n->n_inputs; k++) {
            int u = n->inputs[k];
            if (g->values[u].producer >= 0 &&
                (one || g->values[u].last_use == i) &&
                P->need_halo[n->output] > P->need_halo[u])
                P->need_halo[u] = P->need_halo[n->output];
        }
    }
}

/* First and last step touching each arena buffer. */
static int buffer_lifetimes(struct nf_dnnl_prog *p)
{
    p->buf_first = malloc(((size_t)p->n_bufs + 1) * sizeof *p->buf_first);
    p->buf_last = malloc(((size_t)p->n_bufs + 1) * sizeof *p->buf_last);
    if (p->buf_first == NULL || p->buf_last == NULL)
        return NF_ENOMEM;
    for (int b = 0; b < p->n_bufs; b++) {
        p->buf_first[b] = p->n_steps;
        p->buf_last[b] = -1;
    }
    for (int i = 0; i < p->n_steps; i++) {
        const struct nf_dnnl_step *s = &p->steps[i];
        const struct nf_dnnl_expr *e = s->expr;
        for (int k = 0; e != NULL && k < e->n_in + e->n_out; k++) {
            const struct nf_dnnl_view *v =
                k < e->n_in ? &e->in[k] : &e->out[k - e->n_in];
            int b = v->loc == NF_DNNL_LOC_ARENA  ? v->id
                    : v->loc == NF_DNNL_LOC_SINK ? p->staging
                                                 : -1;
            if (b < 0)
                continue;
            if (i < p->buf_first[b])
                p->buf_first[b] = i;
            if (i > p->buf_last[b])
                p->buf_last[b] = i;
        }
        for (int k = 0; e == NULL && k <= s->n_in; k++) {
            const struct nf_dnnl_view *v = k < s->n_in ? &s->in[k] : &s->out;
            int b = v->loc == NF_DNNL_LOC_ARENA  ? v->id
                    : v->loc == NF_DNNL_LOC_SINK ? p->staging
                                                 : -1;
            if (b < 0 || (k == s->n_in && s->kind == NF_DNNL_STEP_HALO))
                continue;
            if (i < p->buf_first[b])
                p->buf_first[b] = i;
            if (i > p->buf_last[b])
                p->buf_last[b] = i;
        }
    }
    /* The input conversion writes the frame before the first step (and a
     * cold slot's cache is filled from it). */
    if (p->frame.loc == NF_DNNL_LOC_ARENA) {
        p->buf_first[p->frame.id] = 0;
        if (p->buf_last[p->frame.id] < 0)
            p->buf_last[p->frame.id] = 0;
    }
    return 0;
}

static void planner_free(struct planner *P)
{
    if (P->vs != NULL)
        for (int v = 0; v < P->g->n_values; v++)
            free(P->vs[v].perm);
    free(P->vs);
    free(P->uses);
    free(P->first_reader);
    free(P->need_halo);
    free(P->concat_buf);
    free(P->buf_last_node);
    free(P->fused);
}

int nf__dnnl_plan(struct nf_dnnl_prog *p, const struct nf_graph *g,
                  int multiple)
{
    memset(p, 0, sizeof *p);
    p->g = g;
    p->k = g->cache_frames;
    p->multiple = multiple;
    struct planner P = {.p = p, .g = g};
    size_t nv = (size_t)g->n_values;
    P.vs = calloc(nv, sizeof *P.vs);
    P.uses = calloc(nv, sizeof *P.uses);
    P.first_reader = calloc(nv, sizeof *P.first_reader);
    P.need_halo = calloc(nv, sizeof *P.need_halo);
    P.concat_buf = calloc(nv, sizeof *P.concat_buf);
    P.fused = calloc((size_t)g->n_nodes + 1, 1);
    int rc = NF_ENOMEM;
    if (P.vs == NULL || P.uses == NULL || P.first_reader == NULL ||
        P.need_halo == NULL || P.concat_buf == NULL || P.fused == NULL)
        goto fail;
    scan_graph(&P);
    if ((rc = setup_leaves(&P)) < 0)
        goto fail;
    for (int i = 0; i < g->n_nodes && rc == 0; i++)
        if (!P.fused[i])
            rc = visit_node(&P, i);
    if (rc == 0)
        rc = group_flush(&P);
    if (rc < 0)
        goto fail;
    int sunk = 0;
    for (int i = 0; i < p->n_steps; i++) {
        const struct nf_dnnl_step *st = &p->steps[i];
        sunk |=
            st->kind != NF_DNNL_STEP_HALO && st->out.loc == NF_DNNL_LOC_SINK;
        for (int k = 0; st->expr != NULL && k < st->expr->n_out; k++)
            sunk |= st->expr->out[k].loc == NF_DNNL_LOC_SINK;
    }
    struct nf_dnnl_view sink = {NF_DNNL_LOC_SINK, 0, 3, 0, 1, 1, 3, 0, 3, 0};
    if (!sunk && (rc = emit_copy(&P, g->n_nodes, P.vs[g->output].v, sink)) < 0)
        goto fail;
    p->output = sink;
    p->staging = -1;
    if (p->k == 0 && (p->staging = new_buf(&P, 0, 1, 0, 3)) < 0) {
        rc = p->staging;
        goto fail;
    }
    rc = buffer_lifetimes(p);
fail:
    planner_free(&P);
    if (rc < 0)
        nf__dnnl_plan_free(p);
    return rc;
}

void nf__dnnl_plan_free(struct nf_dnnl_prog *p)
{
    for (int i = 0; i < p->n_steps; i++) {
        free(p->steps[i].conv.in_map);
        free(p->steps[i].conv.out_map);
        if (p->steps[i].expr != NULL)
            free(p->steps[i].expr->params);
        free(p->steps[i].expr);
    }
    free(p->steps);
    free(p->bufs);
    free(p->buf_first);
    free(p->buf_last);
    free(p->block_map);
    memset(p, 0, sizeof *p);
}
