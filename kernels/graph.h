/*
 * graph.h - the parsed and validated model graph (implementer-only).
 *
 * nf_model_load() turns the JSON string in __metadata__["nf.graph"] into
 * this form once, after checking every node against the tensors of the file
 * (kernels/MODEL.md has the schema and the rules). Every backend walks the
 * same structure: nodes in file order, each reading values computed earlier.
 * Not part of the public API: only kernels/ and its backends include it.
 *
 * Values are numbered: 0 is "frame", 1 .. K are "cache.0" .. "cache.{K-1}",
 * K + 1 + i is the output of node i. Every value is a (1, C, H, W) float
 * tensor whose size is the padded frame size scaled by a power of two (the
 * value's shift), so one graph serves every resolution.
 */
#ifndef NF_GRAPH_H
#define NF_GRAPH_H

#include <stddef.h>

struct nf_model;
struct nf_tensor;

/* Every op: enum suffix and the name used in the graph JSON. */
#define NF_OP_MAP(XX)                                                          \
    XX(CONV2D, "conv2d")                                                       \
    XX(RELU, "relu")                                                           \
    XX(LEAKY_RELU, "leaky_relu")                                               \
    XX(SIGMOID, "sigmoid")                                                     \
    XX(TANH, "tanh")                                                           \
    XX(CLAMP, "clamp")                                                         \
    XX(ADD, "add")                                                             \
    XX(MUL, "mul")                                                             \
    XX(SCALE_SHIFT, "scale_shift")                                             \
    XX(CONCAT, "concat")                                                       \
    XX(UPSAMPLE2X_NEAREST, "upsample2x_nearest")                               \
    XX(UPSAMPLE2X_BILINEAR, "upsample2x_bilinear")                             \
    XX(AVGPOOL2X2, "avgpool2x2")                                               \
    XX(INSTANCE_NORM, "instance_norm")                                         \
    XX(PIXEL_SHUFFLE, "pixel_shuffle")                                         \
    XX(PIXEL_UNSHUFFLE, "pixel_unshuffle")

/* clang-format off */
enum nf_op {
#define NF_OP_ENUM(name, str) NF_OP_##name,
    NF_OP_MAP(NF_OP_ENUM)
#undef NF_OP_ENUM
    NF_OP_COUNT
};
/* clang-format on */

enum nf_pad_mode {
    NF_PAD_ZEROS,
    NF_PAD_REFLECT,
};

#define NF_NAME_MAX         64   /* Names are shorter than this. */
#define NF_GRAPH_MAX_NODES  1024 /* Nodes per graph. */
#define NF_NODE_MAX_INPUTS  16   /* Inputs of one concat. */
#define NF_GRAPH_MAX_CHAN   4096 /* Channels of any value. */
#define NF_GRAPH_MAX_KERNEL 31   /* Conv kernel height and width. */
#define NF_GRAPH_MAX_SHIFT  4    /* Values are at most 16x smaller or larger. */

#define NF_VALUE_FRAME    0
#define NF_VALUE_CACHE(i) (1 + (i))

/* One value: the input frame, a cache frame or the output of a node. */
struct nf_value {
    char name[NF_NAME_MAX];
    int channels;
    /*
     * Size relative to the padded frame: height >> shift when shift >= 0,
     * height << -shift when negative; the same for width.
     */
    int shift;
    int producer; /* Node index, or -1 for "frame" and the cache. */
    /*
     * Index of the last node that reads the value, or -1 if none does; the
     * graph output reads as n_nodes (it is read after the last node). A
     * backend may reuse the value's memory after that node.
     */
    int last_use;
};

/*
 * One node. Fields that the op does not use are 0 or NULL. Tensors are
 * borrowed from the model and 64-byte aligned.
 */
struct nf_node {
    char name[NF_NAME_MAX];
    enum nf_op op;
    int inputs[NF_NODE_MAX_INPUTS]; /* Value indices, each < output. */
    int n_inputs;
    int output; /* Value index: K + 1 + node index. */

    /* conv2d: (Cout, Cin/groups, kh, kw); instance_norm, scale_shift: (C). */
    const struct nf_tensor *weight;
    const struct nf_tensor *bias; /* (Cout) or (C); NULL if absent. */

    int kh, kw;  /* conv2d: kernel size, from the weight's shape. */
    int stride;  /* conv2d: 1, 2, 4, 8 or 16. */
    int padding; /* conv2d: on all four sides. */
    int groups;  /* conv2d: divides Cin and Cout. */
    enum nf_pad_mode pad_mode; /* conv2d. */
    float alpha;               /* leaky_relu: slope for x < 0. */
    float min;                 /* clamp: lower bound (-INFINITY if absent). */
    float max;                 /* clamp: upper bound (INFINITY if absent). */
    float eps;                 /* instance_norm: added to the variance, > 0. */
    int factor; /* pixel_shuffle, pixel_unshuffle: 2, 4, 8 or 16. */
};

struct nf_graph {
    struct nf_value *values; /* n_values = 1 + cache_frames + n_nodes. */
    int n_values;
    struct nf_node *nodes;
    int n_nodes;
    int output;       /* Value index of the model output (3 channels). */
    int cache_frames; /* K. */
    int multiple;     /* The least size multiple the graph needs. */
    int max_shift;    /* log2(multiple). */
};

/* The op's JSON name ("conv2d"). */
const char *nf__op_name(enum nf_op op);

/*
 * Parses and validates the graph JSON for model m, whose tensors are already
 * loaded; K is cache_frames. src names the file in error messages. Returns 0
 * or NF_EMODEL_GRAPH / NF_ENOMEM with a message in err. On failure g holds
 * nothing (free it anyway: nf__graph_free accepts an empty graph).
 */
int nf__graph_parse(struct nf_graph *g, const char *json,
                    const struct nf_model *m, int cache_frames, const char *src,
                    char *err, size_t errlen);

/* Frees what nf__graph_parse allocated; g may be zeroed. */
void nf__graph_free(struct nf_graph *g);

/*
 * Height and width of value v when the padded frame is frame_h x frame_w
 * (both multiples of g->multiple).
 */
void nf__graph_value_size(const struct nf_graph *g, int v, int frame_h,
                          int frame_w, int *h, int *w);

/* FLOPs of one pass at the padded frame size (conv MACs x 2 + small terms). */
double nf__graph_flops(const struct nf_graph *g, int frame_h, int frame_w);

#endif /* NF_GRAPH_H */
