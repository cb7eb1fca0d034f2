/*
 * graph.c - parsing and validation of the nf.graph JSON (see MODEL.md).
 *
 * The graph is checked completely at load time so that backends never see a
 * malformed one: node names are unique, every input is defined before use,
 * every weight exists with exactly the shape the channel counts inferred
 * through the graph require, attributes are in range, shapes agree where
 * values meet (add, mul, concat), every node contributes to the output and
 * the output has 3 channels at the frame's size. Sizes are tracked as a
 * power-of-two shift relative to the padded frame; the largest shift gives
 * the size multiple the graph needs.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "graph.h"
#include "model-impl.h"

/* Node fields besides "name", "op" and "inputs"; each op allows a subset. */
#define FIELD_MAP(XX)                                                          \
    XX(WEIGHT, "weight")                                                       \
    XX(BIAS, "bias")                                                           \
    XX(STRIDE, "stride")                                                       \
    XX(PADDING, "padding")                                                     \
    XX(PAD_MODE, "pad_mode")                                                   \
    XX(GROUPS, "groups")                                                       \
    XX(ALPHA, "alpha")                                                         \
    XX(MIN, "min")                                                             \
    XX(MAX, "max")                                                             \
    XX(EPS, "eps")                                                             \
    XX(FACTOR, "factor")

/* clang-format off */
enum {
#define FIELD_BIT(name, str) FB_##name,
    FIELD_MAP(FIELD_BIT)
#undef FIELD_BIT
    FIELD_COUNT
};
/* clang-format on */
#define F(name) (1u << FB_##name)

static const char *const field_names[] = {
#define FIELD_STR(name, str) str,
    FIELD_MAP(FIELD_STR)
#undef FIELD_STR
};

static const char *const op_names[] = {
#define OP_STR(name, str) str,
    NF_OP_MAP(OP_STR)
#undef OP_STR
};

/* What each op accepts. */
static const struct {
    int min_inputs, max_inputs;
    unsigned fields;
} op_rules[NF_OP_COUNT] = {
    [NF_OP_CONV2D] = {1, 1,
                      F(WEIGHT) | F(BIAS) | F(STRIDE) | F(PADDING) |
                          F(PAD_MODE) | F(GROUPS)},
    [NF_OP_RELU] = {1, 1, 0},
    [NF_OP_LEAKY_RELU] = {1, 1, F(ALPHA)},
    [NF_OP_SIGMOID] = {1, 1, 0},
    [NF_OP_TANH] = {1, 1, 0},
    [NF_OP_CLAMP] = {1, 1, F(MIN) | F(MAX)},
    [NF_OP_ADD] = {2, 2, 0},
    [NF_OP_MUL] = {2, 2, 0},
    [NF_OP_SCALE_SHIFT] = {1, 1, F(WEIGHT) | F(BIAS)},
    [NF_OP_CONCAT] = {2, NF_NODE_MAX_INPUTS, 0},
    [NF_OP_UPSAMPLE2X_NEAREST] = {1, 1, 0},
    [NF_OP_UPSAMPLE2X_BILINEAR] = {1, 1, 0},
    [NF_OP_AVGPOOL2X2] = {1, 1, 0},
    [NF_OP_INSTANCE_NORM] = {1, 1, F(WEIGHT) | F(BIAS) | F(EPS)},
    [NF_OP_PIXEL_SHUFFLE] = {1, 1, F(FACTOR)},
    [NF_OP_PIXEL_UNSHUFFLE] = {1, 1, F(FACTOR)},
};

struct parser {
    struct nf_graph *g;
    const struct nf_model *m;
    const json_t *nodes; /* The JSON array, to name nodes defined later. */
    const char *src;
    char *err;
    size_t errlen;
};

const char *nf__op_name(enum nf_op op)
{
    return (unsigned)op < NF_OP_COUNT ? op_names[op] : "?";
}

static int graph_fail(const struct parser *p, const char *fmt, ...)
    NF_PRINTF(2, 3);
static int node_fail(const struct parser *p, const struct nf_node *n,
                     const char *fmt, ...) NF_PRINTF(3, 4);

/* "nf.graph: <fmt>". */
static int graph_fail(const struct parser *p, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nf__model_error(p->err, p->errlen, NF_EMODEL_GRAPH, p->src,
                           "nf.graph: %s", msg);
}

/* "node 'c3' (conv2d): <fmt>". */
static int node_fail(const struct parser *p, const struct nf_node *n,
                     const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nf__model_error(p->err, p->errlen, NF_EMODEL_GRAPH, p->src,
                           "node '%s' (%s): %s", n->name, nf__op_name(n->op),
                           msg);
}

/* "1", "1/2", "4": a value's size relative to the frame. */
static const char *scale_str(char *buf, size_t len, int shift)
{
    if (shift > 0)
        snprintf(buf, len, "1/%d", 1 << shift);
    else
        snprintf(buf, len, "%d", 1 << -shift);
    return buf;
}

static int ilog2(int v)
{
    int s = 0;
    while (v > 1) {
        v >>= 1;
        s++;
    }
    return s;
}

static int is_pow2(long long v)
{
    return v > 0 && (v & (v - 1)) == 0;
}

/* Index of the value called name among the first n_defined, or -1. */
static int find_value(const struct nf_graph *g, int n_defined, const char *name)
{
    for (int v = 0; v < n_defined; v++)
        if (strcmp(g->values[v].name, name) == 0)
            return v;
    return -1;
}

/* Integer field; absent means def. */
static int get_int(const struct parser *p, const struct nf_node *n,
                   const json_t *jn, const char *key, int def, int lo, int hi,
                   int *out)
{
    const json_t *v = json_object_get(jn, key);
    *out = def;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo ||
        json_integer_value(v) > hi)
        return node_fail(p, n, "field '%s' must be an integer from %d to %d",
                         key, lo, hi);
    *out = (int)json_integer_value(v);
    return 0;
}

/* Number field that must be finite as a float; absent means def. */
static int get_float(const struct parser *p, const struct nf_node *n,
                     const json_t *jn, const char *key, float def, float *out)
{
    const json_t *v = json_object_get(jn, key);
    *out = def;
    if (v == NULL)
        return 0;
    if (!json_is_number(v) || !isfinite((float)json_number_value(v)))
        return node_fail(p, n, "field '%s' must be a finite number", key);
    *out = (float)json_number_value(v);
    return 0;
}

/* Tensor field: the name of a tensor of the file. */
static int get_tensor(const struct parser *p, const struct nf_node *n,
                      const json_t *jn, const char *key, int required,
                      const struct nf_tensor **out)
{
    const json_t *v = json_object_get(jn, key);
    *out = NULL;
    if (v == NULL)
        return required ? node_fail(p, n, "missing field '%s'", key) : 0;
    if (!json_is_string(v))
        return node_fail(p, n, "field '%s' is not a string", key);
    *out = nf__model_tensor(p->m, json_string_value(v));
    if (*out == NULL)
        return node_fail(p, n, "%s '%.64s' is not a tensor in the file", key,
                         json_string_value(v));
    return 0;
}

/* Checks that tensor field key (if present) has exactly shape want. */
static int expect_shape(const struct parser *p, const struct nf_node *n,
                        const char *key, const struct nf_tensor *t,
                        const int64_t *want, int ndim)
{
    if (t == NULL)
        return 0;
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == want[i];
    if (same)
        return 0;
    char a[160], b[160];
    return node_fail(p, n, "%s '%s' has shape %s, expected %s", key, t->name,
                     nf__shape_str(a, sizeof a, t->shape, t->ndim),
                     nf__shape_str(b, sizeof b, want, ndim));
}

/* Per-channel weight and bias tensors, each (C) when present. */
static int expect_channel_vectors(const struct parser *p,
                                  const struct nf_node *n, int channels)
{
    const int64_t want[1] = {channels};
    int rc = expect_shape(p, n, "weight", n->weight, want, 1);
    if (rc == 0)
        rc = expect_shape(p, n, "bias", n->bias, want, 1);
    return rc;
}

static int infer_conv2d_attrs(const struct parser *p, struct nf_node *n,
                              const json_t *jn)
{
    int rc = get_tensor(p, n, jn, "weight", 1, &n->weight);
    if (rc == 0)
        rc = get_tensor(p, n, jn, "bias", 0, &n->bias);
    if (rc == 0)
        rc = get_int(p, n, jn, "stride", 1, 1, 1 << NF_GRAPH_MAX_SHIFT,
                     &n->stride);
    if (rc == 0 && !is_pow2(n->stride))
        rc = node_fail(p, n, "field 'stride' must be 1, 2, 4, 8 or 16");
    if (rc == 0)
        rc = get_int(p, n, jn, "padding", 0, 0, NF_GRAPH_MAX_KERNEL,
                     &n->padding);
    if (rc == 0)
        rc = get_int(p, n, jn, "groups", 1, 1, NF_GRAPH_MAX_CHAN, &n->groups);
    if (rc < 0)
        return rc;
    const json_t *mode = json_object_get(jn, "pad_mode");
    const char *s = mode ? json_string_value(mode) : "zeros";
    if (s != NULL && strcmp(s, "zeros") == 0)
        n->pad_mode = NF_PAD_ZEROS;
    else if (s != NULL && strcmp(s, "reflect") == 0)
        n->pad_mode = NF_PAD_REFLECT;
    else
        return node_fail(p, n,
                         "field 'pad_mode' must be \"zeros\" or "
                         "\"reflect\"");
    return 0;
}

/*
 * conv2d: the weight (Cout, Cin/groups, kh, kw) gives the kernel; padding
 * must make the output exactly input / stride for every size that is a
 * multiple of the stride: k - stride <= 2 * padding <= k - 1 per axis.
 */
static int infer_conv2d(const struct parser *p, struct nf_node *n,
                        const json_t *jn, struct nf_value *y)
{
    const struct nf_value *x = &p->g->values[n->inputs[0]];
    int rc = infer_conv2d_attrs(p, n, jn);
    if (rc < 0)
        return rc;
    const struct nf_tensor *w = n->weight;
    char s[160];
    if (w->ndim != 4)
        return node_fail(p, n,
                         "weight '%s' has shape %s, expected 4 dimensions "
                         "(Cout, Cin/groups, kh, kw)",
                         w->name,
                         nf__shape_str(s, sizeof s, w->shape, w->ndim));
    if (w->shape[0] < 1 || w->shape[0] > NF_GRAPH_MAX_CHAN || w->shape[2] < 1 ||
        w->shape[2] > NF_GRAPH_MAX_KERNEL || w->shape[3] < 1 ||
        w->shape[3] > NF_GRAPH_MAX_KERNEL)
        return node_fail(p, n,
                         "weight '%s' has shape %s: Cout must be 1 to %d and "
                         "the kernel 1 to %d wide and high",
                         w->name, nf__shape_str(s, sizeof s, w->shape, w->ndim),
                         NF_GRAPH_MAX_CHAN, NF_GRAPH_MAX_KERNEL);
    int cout = (int)w->shape[0];
    n->kh = (int)w->shape[2];
    n->kw = (int)w->shape[3];
    if (x->channels % n->groups != 0 || cout % n->groups != 0)
        return node_fail(p, n,
                         "groups %d does not divide both the %d input "
                         "channels and the %d output channels",
                         n->groups, x->channels, cout);
    const int64_t want[4] = {cout, x->channels / n->groups, n->kh, n->kw};
    rc = expect_shape(p, n, "weight", w, want, 4);
    if (rc == 0)
        rc = expect_shape(p, n, "bias", n->bias, want, 1);
    if (rc < 0)
        return rc;
    const int k[2] = {n->kh, n->kw};
    for (int a = 0; a < 2; a++)
        if (2 * n->padding < k[a] - n->stride || 2 * n->padding > k[a] - 1)
            return node_fail(p, n,
                             "padding %d with a %dx%d kernel and stride %d "
                             "does not give output = input / stride (needs "
                             "k - stride <= 2 * padding <= k - 1)",
                             n->padding, n->kh, n->kw, n->stride);
    y->channels = cout;
    y->shift = x->shift + ilog2(n->stride);
    return 0;
}

static int infer_same_shape(const struct parser *p, const struct nf_node *n,
                            struct nf_value *y)
{
    const struct nf_value *a = &p->g->values[n->inputs[0]];
    for (int i = 1; i < n->n_inputs; i++) {
        const struct nf_value *b = &p->g->values[n->inputs[i]];
        if (b->shift != a->shift ||
            (n->op != NF_OP_CONCAT && b->channels != a->channels)) {
            char sa[16], sb[16];
            return node_fail(p, n,
                             "input '%s' has %d channels at scale %s, but "
                             "input '%s' has %d channels at scale %s",
                             b->name, b->channels,
                             scale_str(sb, sizeof sb, b->shift), a->name,
                             a->channels, scale_str(sa, sizeof sa, a->shift));
        }
    }
    y->channels = a->channels;
    y->shift = a->shift;
    if (n->op != NF_OP_CONCAT)
        return 0;
    for (int i = 1; i < n->n_inputs; i++)
        y->channels += p->g->values[n->inputs[i]].channels;
    if (y->channels > NF_GRAPH_MAX_CHAN)
        return node_fail(p, n, "output has %d channels, at most %d",
                         y->channels, NF_GRAPH_MAX_CHAN);
    return 0;
}

static int infer_shuffle(const struct parser *p, struct nf_node *n,
                         const json_t *jn, struct nf_value *y)
{
    const struct nf_value *x = &p->g->values[n->inputs[0]];
    if (json_object_get(jn, "factor") == NULL)
        return node_fail(p, n, "missing field 'factor'");
    int rc =
        get_int(p, n, jn, "factor", 2, 2, 1 << NF_GRAPH_MAX_SHIFT, &n->factor);
    if (rc < 0)
        return rc;
    if (!is_pow2(n->factor))
        return node_fail(p, n, "field 'factor' must be 2, 4, 8 or 16");
    int f2 = n->factor * n->factor;
    if (n->op == NF_OP_PIXEL_SHUFFLE) {
        if (x->channels % f2 != 0)
            return node_fail(p, n,
                             "input '%s' has %d channels, not a multiple of "
                             "factor^2 = %d",
                             x->name, x->channels, f2);
        y->channels = x->channels / f2;
        y->shift = x->shift - ilog2(n->factor);
        return 0;
    }
    if (x->channels > NF_GRAPH_MAX_CHAN / f2)
        return node_fail(p, n, "output has %d channels, at most %d",
                         x->channels * f2, NF_GRAPH_MAX_CHAN);
    y->channels = x->channels * f2;
    y->shift = x->shift + ilog2(n->factor);
    return 0;
}

static int infer_scalar_attrs(const struct parser *p, struct nf_node *n,
                              const json_t *jn)
{
    int rc = 0;
    switch (n->op) {
    case NF_OP_LEAKY_RELU:
        return get_float(p, n, jn, "alpha", 0.01f, &n->alpha);
    case NF_OP_CLAMP:
        if (json_object_get(jn, "min") == NULL &&
            json_object_get(jn, "max") == NULL)
            return node_fail(p, n, "needs field 'min' or 'max'");
        rc = get_float(p, n, jn, "min", -INFINITY, &n->min);
        if (rc == 0)
            rc = get_float(p, n, jn, "max", INFINITY, &n->max);
        if (rc == 0 && !(n->min <= n->max))
            rc = node_fail(p, n, "field 'min' is greater than 'max'");
        return rc;
    default:
        return 0;
    }
}

/* Per-channel ops with optional (C) tensors: scale_shift, instance_norm. */
static int infer_channelwise(const struct parser *p, struct nf_node *n,
                             const json_t *jn, struct nf_value *y)
{
    const struct nf_value *x = &p->g->values[n->inputs[0]];
    int rc = get_tensor(p, n, jn, "weight", 0, &n->weight);
    if (rc == 0)
        rc = get_tensor(p, n, jn, "bias", 0, &n->bias);
    if (rc == 0)
        rc = expect_channel_vectors(p, n, x->channels);
    if (rc < 0)
        return rc;
    if (n->op == NF_OP_SCALE_SHIFT && n->weight == NULL && n->bias == NULL)
        return node_fail(p, n, "needs field 'weight' or 'bias'");
    if (n->op == NF_OP_INSTANCE_NORM) {
        rc = get_float(p, n, jn, "eps", 1e-5f, &n->eps);
        if (rc == 0 && !(n->eps > 0))
            rc = node_fail(p, n, "field 'eps' must be greater than 0");
    }
    y->channels = x->channels;
    y->shift = x->shift;
    return rc;
}

/* Attributes, weights, output channels and shift of node n. */
static int infer_node(const struct parser *p, struct nf_node *n,
                      const json_t *jn, struct nf_value *y)
{
    const struct nf_value *x = &p->g->values[n->inputs[0]];
    switch (n->op) {
    case NF_OP_CONV2D:
        return infer_conv2d(p, n, jn, y);
    case NF_OP_SCALE_SHIFT:
    case NF_OP_INSTANCE_NORM:
        return infer_channelwise(p, n, jn, y);
    case NF_OP_ADD:
    case NF_OP_MUL:
    case NF_OP_CONCAT:
        return infer_same_shape(p, n, y);
    case NF_OP_PIXEL_SHUFFLE:
    case NF_OP_PIXEL_UNSHUFFLE:
        return infer_shuffle(p, n, jn, y);
    case NF_OP_UPSAMPLE2X_NEAREST:
    case NF_OP_UPSAMPLE2X_BILINEAR:
        y->channels = x->channels;
        y->shift = x->shift - 1;
        return 0;
    case NF_OP_AVGPOOL2X2:
        y->channels = x->channels;
        y->shift = x->shift + 1;
        return 0;
    default: /* Activations: same shape. */
        y->channels = x->channels;
        y->shift = x->shift;
        return infer_scalar_attrs(p, n, jn);
    }
}

static int parse_name_op(const struct parser *p, int i, struct nf_node *n,
                         const json_t *jn)
{
    const char *name = json_string_value(json_object_get(jn, "name"));
    if (name == NULL)
        return graph_fail(p, "nodes[%d]: missing field 'name'", i);
    if (!nf__valid_name(name))
        return graph_fail(p,
                          "nodes[%d]: name '%.64s' must be 1 to %d characters "
                          "from [A-Za-z0-9_.-]",
                          i, name, NF_NAME_MAX - 1);
    if (strcmp(name, "frame") == 0 || strncmp(name, "cache.", 6) == 0)
        return graph_fail(p, "nodes[%d]: name '%s' is reserved", i, name);
    if (find_value(p->g, NF_VALUE_CACHE(p->g->cache_frames) + i, name) >= 0)
        return graph_fail(p, "nodes[%d]: duplicate node name '%s'", i, name);
    snprintf(n->name, sizeof n->name, "%s", name);
    const char *op = json_string_value(json_object_get(jn, "op"));
    if (op == NULL)
        return graph_fail(p, "node '%s': missing field 'op'", name);
    for (int o = 0; o < NF_OP_COUNT; o++)
        if (strcmp(op, op_names[o]) == 0) {
            n->op = (enum nf_op)o;
            return 0;
        }
    return graph_fail(p, "node '%s': unknown op '%.32s'", name, op);
}

/* Every field must be known and allowed for the op. */
static int check_fields(const struct parser *p, const struct nf_node *n,
                        const json_t *jn)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)jn, key, v)
    {
        if (strcmp(key, "name") == 0 || strcmp(key, "op") == 0 ||
            strcmp(key, "inputs") == 0)
            continue;
        int f = 0;
        while (f < FIELD_COUNT && strcmp(key, field_names[f]) != 0)
            f++;
        if (f == FIELD_COUNT || !(op_rules[n->op].fields & (1u << f)))
            return node_fail(p, n, "unknown field '%.32s'", key);
    }
    return 0;
}

/* Tells "defined by a later node" from "not defined at all". */
static int undefined_input(const struct parser *p, const struct nf_node *n,
                           const char *name)
{
    size_t count = json_array_size(p->nodes);
    for (size_t j = 0; j < count; j++) {
        const json_t *later = json_array_get(p->nodes, j);
        const char *s = json_string_value(json_object_get(later, "name"));
        if (s != NULL && strcmp(s, name) == 0)
            return node_fail(p, n,
                             "input '%s' is used before the node that "
                             "defines it",
                             name);
    }
    if (strncmp(name, "cache.", 6) == 0)
        return node_fail(p, n,
                         "input '%.64s' is not defined (nf.cache_frames "
                         "is %d)",
                         name, p->g->cache_frames);
    return node_fail(p, n, "input '%.64s' is not defined", name);
}

static int parse_inputs(const struct parser *p, int i, struct nf_node *n,
                        const json_t *jn)
{
    const json_t *in = json_object_get(jn, "inputs");
    int lo = op_rules[n->op].min_inputs, hi = op_rules[n->op].max_inputs;
    if (!json_is_array(in))
        return node_fail(p, n, "missing field 'inputs' (an array of names)");
    if (json_array_size(in) < (size_t)lo || json_array_size(in) > (size_t)hi)
        return lo == hi ? node_fail(p, n, "'inputs' must name %d value%s", lo,
                                    lo == 1 ? "" : "s")
                        : node_fail(p, n, "'inputs' must name %d to %d values",
                                    lo, hi);
    n->n_inputs = (int)json_array_size(in);
    for (int k = 0; k < n->n_inputs; k++) {
        const char *name = json_string_value(json_array_get(in, (size_t)k));
        if (name == NULL)
            return node_fail(p, n, "inputs[%d] is not a string", k);
        n->inputs[k] =
            find_value(p->g, NF_VALUE_CACHE(p->g->cache_frames) + i, name);
        if (n->inputs[k] < 0)
            return undefined_input(p, n, name);
    }
    return 0;
}

static int parse_node(const struct parser *p, int i, const json_t *jn)
{
    struct nf_graph *g = p->g;
    struct nf_node *n = &g->nodes[i];
    struct nf_value *y = &g->values[NF_VALUE_CACHE(g->cache_frames) + i];
    if (!json_is_object(jn))
        return graph_fail(p, "nodes[%d] is not an object", i);
    int rc = parse_name_op(p, i, n, jn);
    if (rc == 0)
        rc = check_fields(p, n, jn);
    if (rc == 0)
        rc = parse_inputs(p, i, n, jn);
    if (rc == 0)
        rc = infer_node(p, n, jn, y);
    if (rc < 0)
        return rc;
    n->output = NF_VALUE_CACHE(g->cache_frames) + i;
    memcpy(y->name, n->name, sizeof y->name);
    y->producer = i;
    if (y->shift > NF_GRAPH_MAX_SHIFT || y->shift < -NF_GRAPH_MAX_SHIFT) {
        char s[16];
        return node_fail(p, n,
                         "output is at scale %s of the frame; at most 16 "
                         "times smaller or larger is supported",
                         scale_str(s, sizeof s, y->shift));
    }
    return 0;
}

/* Every node must feed the output; records each value's last reader. */
static int check_liveness(const struct parser *p)
{
    struct nf_graph *g = p->g;
    int live_from = g->values[g->output].producer;
    char *live = calloc((size_t)g->n_nodes + 1, 1);
    if (live == NULL)
        return nf__model_error(p->err, p->errlen, NF_ENOMEM, p->src,
                               "out of memory");
    if (live_from >= 0)
        live[live_from] = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const struct nf_node *n = &g->nodes[i];
        for (int k = 0; live[i] && k < n->n_inputs; k++)
            if (g->values[n->inputs[k]].producer >= 0)
                live[g->values[n->inputs[k]].producer] = 1;
    }
    int rc = 0;
    for (int i = 0; i < g->n_nodes && rc == 0; i++)
        if (!live[i])
            rc = node_fail(p, &g->nodes[i],
                           "does not contribute to the output '%s'",
                           g->values[g->output].name);
    free(live);
    for (int v = 0; v < g->n_values; v++)
        g->values[v].last_use = -1;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            g->values[g->nodes[i].inputs[k]].last_use = i;
    g->values[g->output].last_use = g->n_nodes;
    return rc;
}

static int parse_output(const struct parser *p, const json_t *root)
{
    struct nf_graph *g = p->g;
    const char *name = json_string_value(json_object_get(root, "output"));
    if (name == NULL)
        return graph_fail(p, "missing field 'output' (a value name)");
    g->output = find_value(g, g->n_values, name);
    if (g->output < 0)
        return graph_fail(p, "output '%.64s' is not defined", name);
    const struct nf_value *y = &g->values[g->output];
    if (y->channels != 3)
        return graph_fail(p, "output '%s' has %d channels, expected 3", name,
                          y->channels);
    if (y->shift != 0) {
        char s[16];
        return graph_fail(p,
                          "output '%s' is at scale %s of the frame, expected "
                          "the frame's size",
                          name, scale_str(s, sizeof s, y->shift));
    }
    return 0;
}

static int alloc_graph(const struct parser *p, size_t n_nodes)
{
    struct nf_graph *g = p->g;
    g->n_nodes = (int)n_nodes;
    g->n_values = NF_VALUE_CACHE(g->cache_frames) + g->n_nodes;
    g->nodes = calloc(n_nodes ? n_nodes : 1, sizeof *g->nodes);
    g->values = calloc((size_t)g->n_values, sizeof *g->values);
    if (g->nodes == NULL || g->values == NULL)
        return nf__model_error(p->err, p->errlen, NF_ENOMEM, p->src,
                               "out of memory");
    snprintf(g->values[NF_VALUE_FRAME].name, NF_NAME_MAX, "frame");
    for (int k = 0; k < g->cache_frames; k++)
        snprintf(g->values[NF_VALUE_CACHE(k)].name, NF_NAME_MAX, "cache.%d", k);
    for (int v = 0; v < NF_VALUE_CACHE(g->cache_frames); v++) {
        g->values[v].channels = 3;
        g->values[v].producer = -1;
    }
    return 0;
}

static int parse_root(const struct parser *p, const json_t *root)
{
    const char *key;
    const json_t *v;
    if (!json_is_object(root))
        return graph_fail(p, "not a JSON object");
    json_object_foreach((json_t *)root, key, v)
    {
        if (strcmp(key, "nodes") != 0 && strcmp(key, "output") != 0)
            return graph_fail(p, "unknown field '%.32s'", key);
    }
    if (!json_is_array(p->nodes))
        return graph_fail(p, "missing field 'nodes' (an array)");
    if (json_array_size(p->nodes) > NF_GRAPH_MAX_NODES)
        return graph_fail(p, "%zu nodes, at most %d", json_array_size(p->nodes),
                          NF_GRAPH_MAX_NODES);
    int rc = alloc_graph(p, json_array_size(p->nodes));
    for (int i = 0; rc == 0 && i < p->g->n_nodes; i++)
        rc = parse_node(p, i, json_array_get(p->nodes, (size_t)i));
    if (rc == 0)
        rc = parse_output(p, root);
    if (rc == 0)
        rc = check_liveness(p);
    return rc;
}

int nf__graph_parse(struct nf_graph *g, const char *json,
                    const struct nf_model *m, int cache_frames, const char *src,
                    char *err, size_t errlen)
{
    struct parser p = {
        .g = g, .m = m, .src = src, .err = err, .errlen = errlen};
    json_error_t je;
    memset(g, 0, sizeof *g);
    g->cache_frames = cache_frames;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return graph_fail(&p, "invalid JSON: %s (line %d, column %d)", je.text,
                          je.line, je.column);
    p.nodes = json_object_get(root, "nodes");
    int rc = parse_root(&p, root);
    json_decref(root);
    if (rc < 0) {
        nf__graph_free(g);
        return rc;
    }
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].shift > g->max_shift)
            g->max_shift = g->values[v].shift;
    g->multiple = 1 << g->max_shift;
    return 0;
}

void nf__graph_free(struct nf_graph *g)
{
    free(g->nodes);
    free(g->values);
    memset(g, 0, sizeof *g);
}

void nf__graph_value_size(const struct nf_graph *g, int v, int frame_h,
                          int frame_w, int *h, int *w)
{
    int s = g->values[v].shift;
    *h = s >= 0 ? frame_h >> s : frame_h << -s;
    *w = s >= 0 ? frame_w >> s : frame_w << -s;
}

/* FLOPs per output element of the ops that are not convolutions. */
static double flops_per_element(enum nf_op op)
{
    switch (op) {
    case NF_OP_RELU:
    case NF_OP_LEAKY_RELU:
    case NF_OP_SIGMOID:
    case NF_OP_TANH:
    case NF_OP_CLAMP:
    case NF_OP_ADD:
    case NF_OP_MUL:
        return 1;
    case NF_OP_SCALE_SHIFT:
        return 2;
    case NF_OP_AVGPOOL2X2:
    case NF_OP_INSTANCE_NORM:
        return 4;
    case NF_OP_UPSAMPLE2X_BILINEAR:
        return 8;
    default: /* concat, shuffles, nearest: data movement only. */
        return 0;
    }
}

double nf__graph_flops(const struct nf_graph *g, int frame_h, int frame_w)
{
    double total = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct nf_node *n = &g->nodes[i];
        const struct nf_value *y = &g->values[n->output];
        int h, w;
        nf__graph_value_size(g, n->output, frame_h, frame_w, &h, &w);
        double out = (double)y->channels * h * w;
        if (n->op == NF_OP_CONV2D) {
            int cin = g->values[n->inputs[0]].channels / n->groups;
            total += 2.0 * out * cin * n->kh * n->kw;
            total += n->bias ? out : 0;
        } else {
            total += out * flops_per_element(n->op);
        }
    }
    return total;
}
