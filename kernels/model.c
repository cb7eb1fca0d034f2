/*
 * model.c - the model file loader: safetensors structure and nf.* metadata.
 *
 * The byte layout and every rule checked here are in kernels/MODEL.md. The
 * parser is at least as strict as the reference safetensors parser: the
 * header length is capped and checked against the file, the JSON may hold
 * no duplicate keys, every tensor's byte range must match its shape (with
 * overflow checks) and the ranges must tile the data section exactly. The
 * graph itself is validated by graph.c. Nothing here keeps a pointer into
 * the caller's buffer: tensor data is copied into one 64-byte aligned arena.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "model-impl.h"

#define HEADER_MAX   100000000u /* The reference parser's cap on N. */
#define TENSOR_ALIGN 64
#define MAX_TENSORS  65536 /* Keeps name look-ups cheap. */

/* Scratch of one load; everything here is freed or moved into the model. */
struct loader {
    struct nf_model *m;
    const char *src;
    char *err;
    size_t errlen;
    const uint8_t *data; /* The data section of the caller's buffer. */
    uint64_t data_len;
    uint64_t *begin; /* Per tensor, parallel to m->tensors. */
    uint64_t *end;
};

int nf__model_verror(char *err, size_t errlen, int code, const char *src,
                     const char *fmt, va_list ap)
{
    if (err == NULL || errlen == 0)
        return code;
    int n = snprintf(err, errlen, "%s: ", src);
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    for (char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return code;
}

int nf__model_error(char *err, size_t errlen, int code, const char *src,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nf__model_verror(err, errlen, code, src, fmt, ap);
    va_end(ap);
    return code;
}

/* Formats an error of this load (always "src: ..."). */
static int fail(const struct loader *l, int code, const char *fmt, ...)
    NF_PRINTF(3, 4);

static int fail(const struct loader *l, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nf__model_verror(l->err, l->errlen, code, l->src, fmt, ap);
    va_end(ap);
    return code;
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static float load_le_f32(const uint8_t *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The safetensors dtypes we know of but cannot run yet. */
static int dtype_known(const char *s)
{
    static const char *const known[] = {
        "BOOL", "U8",      "I8",      "I16",     "U16", "F16",     "BF16",
        "I32",  "U32",     "F64",     "I64",     "U64", "F8_E4M3", "F8_E5M2",
        "F4",   "F6_E2M3", "F6_E3M2", "F8_E8M0", "C64",
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(s, known[i]) == 0)
            return 1;
    return 0;
}

static int parse_dtype(const struct loader *l, const char *name,
                       const json_t *v)
{
    const char *s = json_string_value(v);
    if (s == NULL)
        return fail(l, NF_EMODEL_FORMAT, "tensor '%s': dtype is not a string",
                    name);
    if (strcmp(s, "F32") == 0)
        return 0;
    if (dtype_known(s))
        return fail(l, NF_EMODEL_FORMAT,
                    "tensor '%s': dtype '%s' is not supported (only F32)", name,
                    s);
    return fail(l, NF_EMODEL_FORMAT, "tensor '%s': unknown dtype '%.32s'", name,
                s);
}

/* Reads "shape": non-negative integers whose product fits in 64 bits. */
static int parse_shape(const struct loader *l, struct nf_tensor *t,
                       const json_t *v)
{
    if (!json_is_array(v))
        return fail(l, NF_EMODEL_FORMAT, "tensor '%s': shape is not an array",
                    t->name);
    size_t n = json_array_size(v);
    if (n > NF_TENSOR_MAX_DIMS)
        return fail(l, NF_EMODEL_FORMAT,
                    "tensor '%s': shape has %zu dimensions, at most %d",
                    t->name, n, NF_TENSOR_MAX_DIMS);
    uint64_t numel = 1;
    for (size_t i = 0; i < n; i++) {
        const json_t *d = json_array_get(v, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return fail(l, NF_EMODEL_FORMAT,
                        "tensor '%s': shape[%zu] is not a non-negative integer",
                        t->name, i);
        uint64_t dim = (uint64_t)json_integer_value(d);
        if (dim != 0 && numel > UINT64_MAX / dim)
            return fail(l, NF_EMODEL_FORMAT,
                        "tensor '%s': shape has more elements than fit in 64 "
                        "bits",
                        t->name);
        numel *= dim;
        t->shape[i] = (int64_t)dim;
    }
    /* Four bytes per element, and the count must fit in memory. */
    if (numel > SIZE_MAX / 4 || numel > UINT64_MAX / 4)
        return fail(l, NF_EMODEL_FORMAT,
                    "tensor '%s': shape has too many elements", t->name);
    t->ndim = (int)n;
    t->numel = (size_t)numel;
    return 0;
}

/* Reads "data_offsets": [begin, end) within the data section. */
static int parse_offsets(const struct loader *l, size_t i, const json_t *v)
{
    const struct nf_tensor *t = &l->m->tensors[i];
    const json_t *b = json_array_get(v, 0), *e = json_array_get(v, 1);
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(b) ||
        !json_is_integer(e) || json_integer_value(b) < 0 ||
        json_integer_value(e) < 0)
        return fail(l, NF_EMODEL_FORMAT,
                    "tensor '%s': data_offsets is not a pair of non-negative "
                    "integers",
                    t->name);
    uint64_t begin = (uint64_t)json_integer_value(b);
    uint64_t end = (uint64_t)json_integer_value(e);
    if (begin > end || end > l->data_len)
        return fail(l, NF_EMODEL_FORMAT,
                    "tensor '%s': data_offsets [%llu, %llu) is not a range "
                    "inside the %llu-byte data section",
                    t->name, (unsigned long long)begin, (unsigned long long)end,
                    (unsigned long long)l->data_len);
    if (end - begin != (uint64_t)t->numel * 4) {
        char s[160];
        return fail(l, NF_EMODEL_FORMAT,
                    "tensor '%s': data_offsets [%llu, %llu) hold %llu bytes "
                    "but shape %s of F32 needs %llu",
                    t->name, (unsigned long long)begin, (unsigned long long)end,
                    (unsigned long long)(end - begin),
                    nf__shape_str(s, sizeof s, t->shape, t->ndim),
                    (unsigned long long)t->numel * 4);
    }
    l->begin[i] = begin;
    l->end[i] = end;
    return 0;
}

static int parse_tensor(struct loader *l, size_t i, const char *name,
                        json_t *info)
{
    struct nf_tensor *t = &l->m->tensors[i];
    t->name = strdup(name);
    if (t->name == NULL)
        return fail(l, NF_ENOMEM, "out of memory");
    if (!json_is_object(info))
        return fail(l, NF_EMODEL_FORMAT, "tensor '%s' is not an object", name);
    const char *key;
    json_t *v;
    json_object_foreach(info, key, v)
    {
        if (strcmp(key, "dtype") != 0 && strcmp(key, "shape") != 0 &&
            strcmp(key, "data_offsets") != 0)
            return fail(l, NF_EMODEL_FORMAT, "tensor '%s': unknown field '%s'",
                        name, key);
    }
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    for (int f = 0; f < 3; f++)
        if (json_object_get(info, fields[f]) == NULL)
            return fail(l, NF_EMODEL_FORMAT, "tensor '%s': missing %s", name,
                        fields[f]);
    int rc = parse_dtype(l, name, json_object_get(info, "dtype"));
    if (rc == 0)
        rc = parse_shape(l, t, json_object_get(info, "shape"));
    if (rc == 0)
        rc = parse_offsets(l, i, json_object_get(info, "data_offsets"));
    return rc;
}

/* A tensor's byte range, for sorting as the reference parser does. */
struct range {
    uint64_t begin, end;
    size_t index;
};

static int cmp_range(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* The ranges, sorted, must tile [0, data_len): no gap, overlap or tail. */
static int check_tiling(const struct loader *l)
{
    size_t n = l->m->n_tensors;
    struct range *order = malloc((n ? n : 1) * sizeof *order);
    if (order == NULL)
        return fail(l, NF_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        order[i] = (struct range){l->begin[i], l->end[i], i};
    qsort(order, n, sizeof *order, cmp_range);
    uint64_t pos = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t k = order[i].index;
        const char *name = l->m->tensors[k].name;
        if (l->begin[k] > pos)
            rc = fail(l, NF_EMODEL_FORMAT,
                      "tensor '%s': data_offsets begin at %llu, leaving a gap "
                      "after byte %llu of the data section",
                      name, (unsigned long long)l->begin[k],
                      (unsigned long long)pos);
        else if (l->begin[k] < pos)
            rc = fail(l, NF_EMODEL_FORMAT,
                      "tensor '%s': data_offsets begin at %llu, overlapping "
                      "the previous tensor, which ends at %llu",
                      name, (unsigned long long)l->begin[k],
                      (unsigned long long)pos);
        pos = l->end[k];
    }
    if (rc == 0 && pos != l->data_len)
        rc = fail(l, NF_EMODEL_FORMAT,
                  "data section has %llu trailing bytes after the last "
                  "tensor's data_offsets",
                  (unsigned long long)(l->data_len - pos));
    free(order);
    return rc;
}

/* Copies every tensor into the 64-byte aligned arena, as host floats. */
static int copy_tensors(struct loader *l)
{
    struct nf_model *m = l->m;
    size_t total = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        size_t bytes = m->tensors[i].numel * 4;
        size_t padded = (bytes + TENSOR_ALIGN - 1) / TENSOR_ALIGN;
        /* The sizes tile the data section, so this sum cannot wrap unless
         * there are absurdly many empty tensors; check anyway. */
        if (padded > (SIZE_MAX - total) / TENSOR_ALIGN - 1)
            return fail(l, NF_ENOMEM, "tensors too large for memory");
        total += padded * TENSOR_ALIGN;
    }
    m->arena = aligned_alloc(TENSOR_ALIGN, total ? total : TENSOR_ALIGN);
    if (m->arena == NULL)
        return fail(l, NF_ENOMEM, "out of memory for %zu bytes of tensors",
                    total);
    size_t off = 0; /* In floats. */
    for (size_t i = 0; i < m->n_tensors; i++) {
        struct nf_tensor *t = &m->tensors[i];
        float *dst = m->arena + off;
        const uint8_t *src = l->data + l->begin[i];
        for (size_t k = 0; k < t->numel; k++) {
            dst[k] = load_le_f32(src + 4 * k);
            if (!isfinite(dst[k]))
                return fail(l, NF_EMODEL_FORMAT,
                            "tensor '%s': element %zu is not finite", t->name,
                            k);
        }
        t->data = dst;
        off += (t->numel + TENSOR_ALIGN / 4 - 1) / (TENSOR_ALIGN / 4) *
               (TENSOR_ALIGN / 4);
    }
    return 0;
}

static int parse_tensors(struct loader *l, json_t *root)
{
    struct nf_model *m = l->m;
    size_t n = json_object_size(root);
    m->tensors = calloc(n ? n : 1, sizeof *m->tensors);
    l->begin = calloc(n ? n : 1, sizeof *l->begin);
    l->end = calloc(n ? n : 1, sizeof *l->end);
    if (m->tensors == NULL || l->begin == NULL || l->end == NULL)
        return fail(l, NF_ENOMEM, "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        if (m->n_tensors == MAX_TENSORS)
            return fail(l, NF_EMODEL_FORMAT,
                        "header lists more than %d tensors", MAX_TENSORS);
        int rc = parse_tensor(l, m->n_tensors++, key, v);
        if (rc < 0)
            return rc;
    }
    int rc = check_tiling(l);
    if (rc == 0)
        rc = copy_tensors(l);
    return rc;
}

/* Copies __metadata__, which must map strings to strings. */
static int parse_meta_object(struct loader *l, json_t *meta)
{
    struct nf_model *m = l->m;
    if (meta == NULL)
        return fail(l, NF_EMODEL_FORMAT,
                    "__metadata__ is missing (nf.format is required)");
    if (!json_is_object(meta))
        return fail(l, NF_EMODEL_FORMAT, "__metadata__ is not an object");
    m->meta = calloc(json_object_size(meta) + 1, sizeof *m->meta);
    if (m->meta == NULL)
        return fail(l, NF_ENOMEM, "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v)
    {
        if (!json_is_string(v))
            return fail(l, NF_EMODEL_FORMAT,
                        "__metadata__: '%s' is not a string", key);
        struct nf_meta *e = &m->meta[m->n_meta++];
        e->key = strdup(key);
        e->value = strdup(json_string_value(v));
        if (e->key == NULL || e->value == NULL)
            return fail(l, NF_ENOMEM, "out of memory");
    }
    return 0;
}

/* Parses a small decimal number: digits only, value <= max. */
static int parse_small_uint(const char *s, int max, int *out)
{
    int v = 0;
    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > max)
            return -1;
    }
    *out = v;
    return 0;
}

/* Checks the nf.* keys; other namespaces are kept but not interpreted. */
static int check_meta_keys(const struct loader *l)
{
    static const char *const keys[] = {
        "nf.format",       "nf.name",          "nf.description",
        "nf.cache_frames", "nf.size_multiple", "nf.graph",
    };
    for (size_t i = 0; i < l->m->n_meta; i++) {
        const char *k = l->m->meta[i].key;
        if (strncmp(k, "nf.", 3) != 0)
            continue;
        size_t j = 0;
        while (j < sizeof keys / sizeof keys[0] && strcmp(k, keys[j]) != 0)
            j++;
        if (j == sizeof keys / sizeof keys[0])
            return fail(l, NF_EMODEL_FORMAT,
                        "__metadata__: unknown key '%s' (nf.format 1)", k);
    }
    return 0;
}

static int parse_meta(struct loader *l, json_t *root)
{
    struct nf_model *m = l->m;
    int rc = parse_meta_object(l, json_object_get(root, "__metadata__"));
    if (rc == 0)
        rc = check_meta_keys(l);
    if (rc < 0)
        return rc;
    const char *format = nf_model_meta(m, "nf.format");
    if (format == NULL)
        return fail(l, NF_EMODEL_FORMAT,
                    "__metadata__: 'nf.format' is missing");
    if (strcmp(format, "1") != 0)
        return fail(l, NF_EMODEL_FORMAT,
                    "__metadata__: nf.format '%.16s' is not supported (this "
                    "build reads 1)",
                    format);
    m->name = nf_model_meta(m, "nf.name");
    if (m->name == NULL)
        return fail(l, NF_EMODEL_FORMAT, "__metadata__: 'nf.name' is missing");
    if (!nf__valid_name(m->name))
        return fail(l, NF_EMODEL_FORMAT,
                    "__metadata__: nf.name '%.80s' must be 1 to %d characters "
                    "from [A-Za-z0-9_.-]",
                    m->name, NF_NAME_MAX - 1);
    const char *s = nf_model_meta(m, "nf.cache_frames");
    if (s != NULL && parse_small_uint(s, NF_MAX_CACHE, &m->cache_frames) < 0)
        return fail(l, NF_EMODEL_FORMAT,
                    "__metadata__: nf.cache_frames '%.16s' is not a number "
                    "from 0 to %d",
                    s, NF_MAX_CACHE);
    m->size_multiple = 1;
    s = nf_model_meta(m, "nf.size_multiple");
    if (s != NULL && (parse_small_uint(s, 16, &m->size_multiple) < 0 ||
                      m->size_multiple == 0 ||
                      (m->size_multiple & (m->size_multiple - 1)) != 0))
        return fail(l, NF_EMODEL_FORMAT,
                    "__metadata__: nf.size_multiple '%.16s' is not 1, 2, 4, "
                    "8 or 16",
                    s);
    if (nf_model_meta(m, "nf.graph") == NULL)
        return fail(l, NF_EMODEL_FORMAT, "__metadata__: 'nf.graph' is missing");
    return 0;
}

/* Checks the 8-byte length and parses the JSON header into *root. */
static int parse_header(struct loader *l, const uint8_t *buf, size_t len,
                        json_t **root)
{
    if (len < 8)
        return fail(l, NF_EMODEL_FORMAT,
                    "file is %zu bytes, too short for the 8-byte header length",
                    len);
    uint64_t n = load_le64(buf);
    if (n > HEADER_MAX)
        return fail(l, NF_EMODEL_FORMAT,
                    "header length %llu exceeds the limit of %u bytes",
                    (unsigned long long)n, HEADER_MAX);
    if (n > len - 8)
        return fail(l, NF_EMODEL_FORMAT,
                    "header length %llu exceeds the %zu bytes after it",
                    (unsigned long long)n, len - 8);
    if (n == 0 || buf[8] != '{')
        return fail(l, NF_EMODEL_FORMAT, "header JSON does not start with '{'");
    json_error_t je;
    *root = json_loadb((const char *)buf + 8, (size_t)n, JSON_REJECT_DUPLICATES,
                       &je);
    if (*root == NULL)
        return fail(l, NF_EMODEL_FORMAT, "header JSON: %s (line %d, column %d)",
                    je.text, je.line, je.column);
    if (!json_is_object(*root))
        return fail(l, NF_EMODEL_FORMAT, "header JSON is not an object");
    l->data = buf + 8 + n;
    l->data_len = (uint64_t)(len - 8 - n);
    return 0;
}

static int check_multiple(const struct loader *l)
{
    const struct nf_model *m = l->m;
    if (m->size_multiple % m->graph.multiple == 0)
        return 0;
    return fail(l, NF_EMODEL_GRAPH,
                "__metadata__: nf.size_multiple is %d but the graph scales "
                "values down by %d; it must be a multiple of %d",
                m->size_multiple, m->graph.multiple, m->graph.multiple);
}

int nf_model_load_buffer(const void *buf, size_t len, const char *name,
                         struct nf_model **out, char *err, size_t errlen)
{
    struct loader l = {
        .src = name ? name : "<buffer>", .err = err, .errlen = errlen};
    json_t *root = NULL;
    int rc;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL)
        return NF_EINVAL;
    *out = NULL;
    if (buf == NULL && len > 0)
        return fail(&l, NF_EINVAL, "no buffer");
    l.m = calloc(1, sizeof *l.m);
    if (l.m == NULL || (l.m->source = strdup(l.src)) == NULL) {
        rc = fail(&l, NF_ENOMEM, "out of memory");
        goto fail;
    }
    rc = parse_header(&l, buf, len, &root);
    if (rc == 0)
        rc = parse_tensors(&l, root);
    if (rc == 0)
        rc = parse_meta(&l, root);
    if (rc == 0)
        rc = nf__graph_parse(&l.m->graph, nf_model_meta(l.m, "nf.graph"), l.m,
                             l.m->cache_frames, l.src, err, errlen);
    if (rc == 0)
        rc = check_multiple(&l);
    if (rc < 0)
        goto fail;
    json_decref(root);
    free(l.begin);
    free(l.end);
    *out = l.m;
    return 0;

fail:
    json_decref(root);
    free(l.begin);
    free(l.end);
    nf_model_free(l.m);
    return rc;
}

/* Reads the whole file into *buf (*len bytes). */
static int read_file(const char *path, uint8_t **buf, size_t *len, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p = NULL;
    if (f == NULL)
        return nf__model_error(err, errlen, NF_EMODEL_IO, path,
                               "cannot open: %s", strerror(errno));
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return nf__model_error(err, errlen, NF_EMODEL_IO, path,
                               "cannot determine the file size");
    }
    p = malloc(size ? (size_t)size : 1);
    if (p == NULL) {
        fclose(f);
        return nf__model_error(err, errlen, NF_ENOMEM, path,
                               "out of memory for %ld bytes", size);
    }
    if (fread(p, 1, (size_t)size, f) != (size_t)size) {
        free(p);
        fclose(f);
        return nf__model_error(err, errlen, NF_EMODEL_IO, path, "read error");
    }
    fclose(f);
    *buf = p;
    *len = (size_t)size;
    return 0;
}

int nf_model_load(const char *path, struct nf_model **out, char *err,
                  size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (out == NULL || path == NULL)
        return NF_EINVAL;
    *out = NULL;
    int rc = read_file(path, &buf, &len, err, errlen);
    if (rc < 0)
        return rc;
    rc = nf_model_load_buffer(buf, len, path, out, err, errlen);
    free(buf);
    return rc;
}

void nf_model_free(struct nf_model *m)
{
    if (m == NULL)
        return;
    nf__graph_free(&m->graph);
    for (size_t i = 0; i < m->n_tensors; i++)
        free(m->tensors[i].name);
    free(m->tensors);
    for (size_t i = 0; i < m->n_meta; i++) {
        free(m->meta[i].key);
        free(m->meta[i].value);
    }
    free(m->meta);
    free(m->arena);
    free(m->source);
    free(m);
}

const char *nf__shape_str(char *buf, size_t len, const int64_t *shape, int ndim)
{
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? ", " : "",
                              (long long)shape[i]);
    if (n < len)
        snprintf(buf + n, len - n, "]");
    return buf;
}

int nf__valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= NF_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
            return 0;
    return 1;
}

const struct nf_tensor *nf__model_tensor(const struct nf_model *m,
                                         const char *name)
{
    for (size_t i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0)
            return &m->tensors[i];
    return NULL;
}

const char *nf_model_meta(const struct nf_model *m, const char *key)
{
    for (size_t i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta[i].key, key) == 0)
            return m->meta[i].value;
    return NULL;
}

const char *nf_model_name(const struct nf_model *m)
{
    return m->name;
}

int nf_model_cache_frames(const struct nf_model *m)
{
    return m->cache_frames;
}

int nf_model_size_multiple(const struct nf_model *m)
{
    return m->size_multiple;
}

double nf_model_flops(const struct nf_model *m, int width, int height)
{
    if (width <= 0 || height <= 0)
        return 0;
    int k = m->size_multiple;
    int h = (int)(((long long)height + k - 1) / k * k);
    int w = (int)(((long long)width + k - 1) / k * k);
    return nf__graph_flops(&m->graph, h, w);
}

size_t nf_model_params(const struct nf_model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_tensors; i++)
        n += m->tensors[i].numel;
    return n;
}
