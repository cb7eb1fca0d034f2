/*
 * plan.cu - the graph turned into steps and a buffer plan, once at init.
 *
 * A convolution whose output is read only by the node right after it, an
 * activation, absorbs that node: the pair is one step (cuDNN's fused bias
 * plus relu, or the epilogue kernel for the other activations; conv2d.cu)
 * and the convolution's own output never exists. Every other node is a
 * step of its own. Step outputs live in a pool of equal buffers, assigned
 * in step order and reused as soon as a value's last reader has run, as in
 * the CPU reference (kernels/cpu/backend-cpu.c). "frame" and the cache
 * live elsewhere (the backend and the slots).
 */
#include <stdlib.h>
#include <string.h>

#include "cuda-impl.cuh"

void nf__cuda_value_size(const struct nf_graph *g, int v, int fh, int fw,
                         int *h, int *w)
{
    int s = g->values[v].shift;
    *h = s >= 0 ? fh >> s : fh << -s;
    *w = s >= 0 ? fw >> s : fw << -s;
}

static int is_activation(enum nf_op op)
{
    return op == NF_OP_RELU || op == NF_OP_LEAKY_RELU || op == NF_OP_SIGMOID ||
           op == NF_OP_TANH || op == NF_OP_CLAMP;
}

/* Number of nodes that read value v (a node reading it twice counts once). */
static int readers(const struct nf_graph *g, int v)
{
    int count = 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] == v) {
                count++;
                break;
            }
    return count;
}

/* The activation node folded into conv node i, or NULL. */
static const struct nf_node *folded(const struct nf_graph *g, int i)
{
    const struct nf_node *c = &g->nodes[i];
    if (c->op != NF_OP_CONV2D || i + 1 >= g->n_nodes)
        return NULL;
    const struct nf_node *a = &g->nodes[i + 1];
    if (!is_activation(a->op) || a->inputs[0] != c->output ||
        c->output == g->output || readers(g, c->output) != 1)
        return NULL;
    return a;
}

/* Assigns each step output a pool buffer, reusing those of dead values. */
static int plan_buffers(struct nf_cuda_plan *p, const struct nf_graph *g)
{
    int *free_list = (int *)malloc(((size_t)p->n_steps + 1) * sizeof(int));
    if (free_list == NULL)
        return NF_ENOMEM;
    int n_free = 0;
    for (int v = 0; v < g->n_values; v++)
        p->buffer_of[v] = -1;
    for (int s = 0; s < p->n_steps; s++) {
        const struct nf_cuda_step *st = &p->steps[s];
        const struct nf_node *n = st->node;
        p->buffer_of[st->out] =
            n_free > 0 ? free_list[--n_free] : p->n_buffers++;
        /* Release after allocating: an output never aliases its inputs. */
        for (int k = 0; k < n->n_inputs; k++) {
            int v = n->inputs[k], seen = 0;
            for (int j = 0; j < k; j++)
                seen |= n->inputs[j] == v;
            if (!seen && p->buffer_of[v] >= 0 &&
                g->values[v].last_use <= st->last)
                free_list[n_free++] = p->buffer_of[v];
        }
    }
    free(free_list);
    return 0;
}

int nf__cuda_plan_init(struct nf_cuda_plan *p, const struct nf_graph *g,
                       const float *(*weights)(const void *ctx,
                                               const struct nf_tensor *t),
                       const void *ctx, int half)
{
    int rc = 0;
    memset(p, 0, sizeof *p);
    p->steps =
        (struct nf_cuda_step *)calloc((size_t)g->n_nodes + 1, sizeof *p->steps);
    p->buffer_of = (int *)calloc((size_t)g->n_values, sizeof(int));
    if (p->steps == NULL || p->buffer_of == NULL) {
        rc = NF_ENOMEM;
        goto fail;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const struct nf_node *n = &g->nodes[i];
        const struct nf_node *act = folded(g, i);
        struct nf_cuda_step *st = &p->steps[p->n_steps++];
        st->node = n;
        st->out = act ? act->output : n->output;
        st->last = act ? i + 1 : i;
        if (n->op == NF_OP_CONV2D) {
            int cin = g->values[n->inputs[0]].channels;
            rc = nf__cuda_conv_init(&st->conv, n, act, cin,
                                    weights(ctx, n->weight),
                                    weights(ctx, n->bias), half);
            if (rc < 0)
                goto fail;
        }
        i += act != NULL;
    }
    rc = plan_buffers(p, g);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    nf__cuda_plan_free(p);
    return rc;
}

void nf__cuda_plan_free(struct nf_cuda_plan *p)
{
    for (int s = 0; p->steps != NULL && s < p->n_steps; s++)
        if (p->steps[s].node->op == NF_OP_CONV2D)
            nf__cuda_conv_free(&p->steps[s].conv);
    free(p->steps);
    free(p->buffer_of);
    memset(p, 0, sizeof *p);
}
