/*
 * test-model-load.c - the model loader accepts valid files and rejects each
 * kind of corruption with the right code and a message naming the field.
 *
 * Files are assembled in memory from a header template and a data section.
 * Templates use ' for JSON quotes and ` for quotes inside the nf.graph
 * string (written as \" in the file), which keeps them readable.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "model.h"
#include "nf-test.h"

#define NAME "t.safetensors"

static uint8_t file_buf[1 << 16];

/* Writes v as u64 little-endian. */
static void store_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Expands a template: ' -> ", ` -> \". Returns the length. */
static size_t expand(const char *tmpl, char *out, size_t cap)
{
    size_t n = 0;
    for (; *tmpl && n + 2 < cap; tmpl++) {
        if (*tmpl == '`')
            out[n++] = '\\';
        out[n++] = *tmpl == '\'' || *tmpl == '`' ? '"' : *tmpl;
    }
    out[n] = '\0';
    return n;
}

/*
 * Builds "u64 length | header | data" in file_buf with header_len as the
 * length field; the data section is data_len bytes of 0.1f floats
 * (little-endian; a trailing partial float is zero bytes). Returns the file
 * length.
 */
static size_t build_raw(uint64_t header_len, const char *tmpl, size_t data_len)
{
    char header[1 << 14];
    size_t n = expand(tmpl, header, sizeof header);
    store_le64(file_buf, header_len);
    memcpy(file_buf + 8, header, n);
    uint8_t *d = file_buf + 8 + n;
    memset(d, 0, data_len);
    for (size_t i = 0; i + 4 <= data_len; i += 4) {
        const uint8_t one_tenth[4] = {0xcd, 0xcc, 0xcc, 0x3d}; /* 0.1f */
        memcpy(d + i, one_tenth, 4);
    }
    return 8 + n + data_len;
}

/* The same with the correct header length. */
static size_t build(const char *tmpl, size_t data_len)
{
    char header[1 << 14];
    return build_raw(expand(tmpl, header, sizeof header), tmpl, data_len);
}

/* Loading must fail with code, a NULL model and a message with needle. */
static int rejects(size_t len, int code, const char *needle)
{
    char err[512] = "";
    struct nf_model *m = NULL;
    int rc = nf_model_load_buffer(file_buf, len, NAME, &m, err, sizeof err);
    int ok = rc == code && m == NULL && strstr(err, needle) != NULL &&
             strncmp(err, NAME ": ", strlen(NAME ": ")) == 0;
    if (!ok)
        printf("  got %s \"%s\", expected %s with \"%s\"\n", nf_errname(rc),
               err, nf_errname(code), needle);
    nf_model_free(m);
    return ok;
}

/* Loading must succeed; *out receives the model. */
static int loads(size_t len, struct nf_model **out)
{
    char err[512] = "";
    int rc = nf_model_load_buffer(file_buf, len, NAME, out, err, sizeof err);
    if (rc != 0)
        printf("  unexpected failure %s: %s\n", nf_errname(rc), err);
    return rc == 0 && *out != NULL;
}

/* A valid tiny model: out = conv1x1(frame, w) + b. */
#define TINY_TENSORS                                                           \
    "'w':{'dtype':'F32','shape':[3,3,1,1],'data_offsets':[0,36]},"             \
    "'b':{'dtype':'F32','shape':[3],'data_offsets':[36,48]}"
#define TINY_GRAPH                                                             \
    "{`nodes`:[{`name`:`c`,`op`:`conv2d`,`inputs`:[`frame`],"                  \
    "`weight`:`w`,`bias`:`b`}],`output`:`c`}"
#define TINY_META                                                              \
    "'__metadata__':{'nf.format':'1','nf.name':'tiny','nf.graph':'" TINY_GRAPH \
    "'}"
#define TINY "{" TINY_TENSORS "," TINY_META "}"

/* Tensors every graph test may use (2244 bytes of data). */
#define GRAPH_TENSORS                                                          \
    "'w3':{'dtype':'F32','shape':[3,3,1,1],'data_offsets':[0,36]},"            \
    "'b3':{'dtype':'F32','shape':[3],'data_offsets':[36,48]},"                 \
    "'w33':{'dtype':'F32','shape':[3,3,3,3],'data_offsets':[48,372]},"         \
    "'w6':{'dtype':'F32','shape':[3,6,1,1],'data_offsets':[372,444]},"         \
    "'w36':{'dtype':'F32','shape':[6,3,3,3],'data_offsets':[444,1092]},"       \
    "'dec.weight':{'dtype':'F32','shape':[8,4,3,3],"                           \
    "'data_offsets':[1092,2244]}"
#define GRAPH_BYTES 2244

/* A model with GRAPH_TENSORS, the graph and extra metadata entries. */
static size_t build_graph(const char *graph, const char *extra_meta)
{
    char tmpl[8192];
    snprintf(tmpl, sizeof tmpl,
             "{" GRAPH_TENSORS ",'__metadata__':{'nf.format':'1',"
             "'nf.name':'g',%s'nf.graph':'%s'}}",
             extra_meta, graph);
    return build(tmpl, GRAPH_BYTES);
}

static int graph_rejects(const char *graph, const char *extra_meta, int code,
                         const char *needle)
{
    return rejects(build_graph(graph, extra_meta), code, needle);
}

/* One node "c" = conv2d(frame) with these attributes, output "c". */
#define CONV(attrs)                                                            \
    "{`nodes`:[{`name`:`c`,`op`:`conv2d`,`inputs`:[`frame`]," attrs            \
    "}],`output`:`c`}"

NF_TEST(model_load_accepts_tiny_model)
{
    struct nf_model *m = NULL;
    NF_CHECK(loads(build(TINY, 48), &m));
    NF_CHECK(strcmp(nf_model_name(m), "tiny") == 0);
    NF_CHECK(strcmp(nf_model_meta(m, "nf.format"), "1") == 0);
    NF_CHECK(nf_model_meta(m, "nf.description") == NULL);
    NF_CHECK_INT_EQ(nf_model_cache_frames(m), 0);
    NF_CHECK_INT_EQ(nf_model_size_multiple(m), 1);
    NF_CHECK_INT_EQ(nf_model_params(m), 12);
    /* 1x1 conv 3 -> 3 with bias on 4x2: 2 * 9 MACs + 3 adds per pixel. */
    NF_CHECK_NEAR(nf_model_flops(m, 4, 2), (2 * 9 + 3) * 8, 0);
    nf_model_free(m);
}

NF_TEST(model_load_rejects_short_file)
{
    NF_CHECK(rejects(5, NF_EMODEL_FORMAT, "header length"));
}

NF_TEST(model_load_rejects_header_length_past_file)
{
    char header[1 << 14];
    size_t n = expand(TINY, header, sizeof header);
    NF_CHECK(rejects(build_raw(n + 49, TINY, 48), NF_EMODEL_FORMAT,
                     "header length"));
}

NF_TEST(model_load_rejects_header_length_that_wraps)
{
    /* 8 + N wraps to 0 in 64 bits; and a length above the 100 MB cap. */
    NF_CHECK(rejects(build_raw(UINT64_MAX - 7, TINY, 48), NF_EMODEL_FORMAT,
                     "header length"));
    NF_CHECK(
        rejects(build_raw(100000001, TINY, 48), NF_EMODEL_FORMAT, "limit"));
}

NF_TEST(model_load_rejects_header_not_starting_with_brace)
{
    NF_CHECK(rejects(build(" " TINY, 48), NF_EMODEL_FORMAT, "'{'"));
    NF_CHECK(rejects(build("[1]", 0), NF_EMODEL_FORMAT, "'{'"));
}

NF_TEST(model_load_rejects_invalid_json)
{
    NF_CHECK(rejects(build("{'w':{'dtype':'F32',", 48), NF_EMODEL_FORMAT,
                     "header JSON"));
}

NF_TEST(model_load_rejects_duplicate_tensor_key)
{
    NF_CHECK(rejects(
        build(
            "{" TINY_TENSORS
            ",'w':{'dtype':'F32','shape':[3],'data_offsets':[48,60]}," TINY_META
            "}",
            60),
        NF_EMODEL_FORMAT, "duplicate"));
}

NF_TEST(model_load_rejects_unknown_dtype)
{
    NF_CHECK(rejects(
        build(
            "{'w':{'dtype':'F32','shape':[3,3,1,1],'data_offsets':[0,36]},"
            "'b':{'dtype':'F33','shape':[3],'data_offsets':[36,48]}," TINY_META
            "}",
            48),
        NF_EMODEL_FORMAT, "tensor 'b': unknown dtype 'F33'"));
    NF_CHECK(rejects(
        build(
            "{'w':{'dtype':'F32','shape':[3,3,1,1],'data_offsets':[0,36]},"
            "'b':{'dtype':'F16','shape':[3],'data_offsets':[36,42]}," TINY_META
            "}",
            42),
        NF_EMODEL_FORMAT, "tensor 'b': dtype 'F16' is not supported"));
}

NF_TEST(model_load_rejects_negative_or_float_offsets)
{
    NF_CHECK(rejects(
        build(
            "{'w':{'dtype':'F32','shape':[3,3,1,1],'data_offsets':[0,36]},"
            "'b':{'dtype':'F32','shape':[3],'data_offsets':[-12,0]}," TINY_META
            "}",
            48),
        NF_EMODEL_FORMAT, "tensor 'b': data_offsets"));
    NF_CHECK(rejects(
        build("{'w':{'dtype':'F32','shape':[3,3,1,1],'data_offsets':[0,36]},"
              "'b':{'dtype':'F32','shape':[3],'data_offsets':[36.0,48]}"
              "," TINY_META "}",
              48),
        NF_EMODEL_FORMAT, "tensor 'b': data_offsets"));
    NF_CHECK(rejects(
        build(
            "{'w':{'dtype':'F32','shape':[3,3,1,1],'data_offsets':[0,36]},"
            "'b':{'dtype':'F32','shape':[-3],'data_offsets':[36,48]}," TINY_META
            "}",
            48),
        NF_EMODEL_FORMAT, "tensor 'b': shape"));
}

NF_TEST(model_load_rejects_offsets_beyond_data)
{
    NF_CHECK(rejects(
        build(
            "{'w':{'dtype':'F32','shape':[3,3,1,1],'data_offsets':[0,36]},"
            "'b':{'dtype':'F32','shape':[3],'data_offsets':[48,60]}," TINY_META
            "}",
            48),
        NF_EMODEL_FORMAT, "tensor 'b': data_offsets [48, 60)"));
}

NF_TEST(model_load_rejects_gap)
{
    NF_CHECK(rejects(
        build(
            "{'w':{'dtype':'F32','shape':[3,3,1,1],'data_offsets':[0,36]},"
            "'b':{'dtype':'F32','shape':[3],'data_offsets':[40,52]}," TINY_META
            "}",
            52),
        NF_EMODEL_FORMAT,
        "tensor 'b': data_offsets begin at 40, leaving a gap"));
}

NF_TEST(model_load_rejects_overlap)
{
    NF_CHECK(rejects(
        build(
            "{'w':{'dtype':'F32','shape':[3,3,1,1],'data_offsets':[0,36]},"
            "'b':{'dtype':'F32','shape':[3],'data_offsets':[32,44]}," TINY_META
            "}",
            44),
        NF_EMODEL_FORMAT, "tensor 'b': data_offsets begin at 32, overlapping"));
}

NF_TEST(model_load_rejects_trailing_bytes)
{
    NF_CHECK(rejects(build(TINY, 52), NF_EMODEL_FORMAT, "4 trailing bytes"));
}

NF_TEST(model_load_rejects_shape_product_that_wraps)
{
    /* 2^32 * 2^32 wraps to 0 in 64 bits, which would match [48, 48). */
    NF_CHECK(rejects(build("{" TINY_TENSORS
                           ",'z':{'dtype':'F32','shape':[4294967296,"
                           "4294967296],'data_offsets':[48,48]}," TINY_META "}",
                           48),
                     NF_EMODEL_FORMAT, "tensor 'z': shape"));
    /* 2^62 elements of 4 bytes wrap to 0 bytes. */
    NF_CHECK(rejects(build("{" TINY_TENSORS
                           ",'z':{'dtype':'F32','shape':[4611686018427387904],"
                           "'data_offsets':[48,48]}," TINY_META "}",
                           48),
                     NF_EMODEL_FORMAT, "tensor 'z': shape"));
}

NF_TEST(model_load_rejects_shape_offset_mismatch)
{
    NF_CHECK(rejects(
        build(
            "{'w':{'dtype':'F32','shape':[3,3,1,1],'data_offsets':[0,36]},"
            "'b':{'dtype':'F32','shape':[4],'data_offsets':[36,48]}," TINY_META
            "}",
            48),
        NF_EMODEL_FORMAT,
        "tensor 'b': data_offsets [36, 48) hold 12 bytes but shape [4] of "
        "F32 needs 16"));
}

NF_TEST(model_load_rejects_unknown_tensor_field)
{
    NF_CHECK(rejects(
        build("{'w':{'dtype':'F32','shape':[3,3,1,1],'data_offsets':[0,36]},"
              "'b':{'dtype':'F32','shape':[3],'data_offsets':[36,48],'x':1}"
              "," TINY_META "}",
              48),
        NF_EMODEL_FORMAT, "tensor 'b': unknown field 'x'"));
}

NF_TEST(model_load_rejects_nonfinite_weight)
{
    size_t len = build(TINY, 48);
    const uint8_t inf[4] = {0x00, 0x00, 0x80, 0x7f};
    memcpy(file_buf + len - 8, inf, 4);
    NF_CHECK(rejects(len, NF_EMODEL_FORMAT, "tensor 'b': element 1"));
}

NF_TEST(model_load_rejects_metadata_non_string)
{
    NF_CHECK(rejects(
        build("{" TINY_TENSORS ",'__metadata__':{'nf.format':'1',"
              "'nf.name':'tiny','nf.cache_frames':1,'nf.graph':'" TINY_GRAPH
              "'}}",
              48),
        NF_EMODEL_FORMAT, "__metadata__: 'nf.cache_frames'"));
    NF_CHECK(rejects(build("{" TINY_TENSORS ",'__metadata__':[1]}", 48),
                     NF_EMODEL_FORMAT, "__metadata__"));
}

NF_TEST(model_load_rejects_missing_format)
{
    NF_CHECK(rejects(build("{" TINY_TENSORS ",'__metadata__':{"
                           "'nf.name':'tiny','nf.graph':'" TINY_GRAPH "'}}",
                           48),
                     NF_EMODEL_FORMAT, "nf.format"));
    NF_CHECK(rejects(build("{" TINY_TENSORS "}", 48), NF_EMODEL_FORMAT,
                     "nf.format"));
    NF_CHECK(rejects(build("{" TINY_TENSORS ",'__metadata__':{'nf.format':'2',"
                           "'nf.name':'tiny','nf.graph':'" TINY_GRAPH "'}}",
                           48),
                     NF_EMODEL_FORMAT, "nf.format '2'"));
}

NF_TEST(model_load_rejects_bad_name)
{
    NF_CHECK(
        rejects(build("{" TINY_TENSORS ",'__metadata__':{'nf.format':'1',"
                      "'nf.name':'no spaces','nf.graph':'" TINY_GRAPH "'}}",
                      48),
                NF_EMODEL_FORMAT, "nf.name"));
    NF_CHECK(rejects(build("{" TINY_TENSORS ",'__metadata__':{'nf.format':'1',"
                           "'nf.name':'','nf.graph':'" TINY_GRAPH "'}}",
                           48),
                     NF_EMODEL_FORMAT, "nf.name"));
    NF_CHECK(rejects(build("{" TINY_TENSORS ",'__metadata__':{'nf.format':'1',"
                           "'nf.graph':'" TINY_GRAPH "'}}",
                           48),
                     NF_EMODEL_FORMAT, "nf.name"));
}

NF_TEST(model_load_rejects_bad_numbers_in_metadata)
{
    NF_CHECK(graph_rejects(CONV("`weight`:`w3`"), "'nf.cache_frames':'9',",
                           NF_EMODEL_FORMAT, "nf.cache_frames"));
    NF_CHECK(graph_rejects(CONV("`weight`:`w3`"), "'nf.size_multiple':'3',",
                           NF_EMODEL_FORMAT, "nf.size_multiple"));
    NF_CHECK(graph_rejects(CONV("`weight`:`w3`"), "'nf.size_multiple':' 2',",
                           NF_EMODEL_FORMAT, "nf.size_multiple"));
    NF_CHECK(graph_rejects(CONV("`weight`:`w3`"), "'nf.cache_frame':'1',",
                           NF_EMODEL_FORMAT, "unknown key 'nf.cache_frame'"));
}

NF_TEST(model_load_accepts_graph_of_every_kind)
{
    struct nf_model *m = NULL;
    const char *graph =
        "{`nodes`:["
        "{`name`:`p`,`op`:`avgpool2x2`,`inputs`:[`frame`]},"
        "{`name`:`u`,`op`:`upsample2x_nearest`,`inputs`:[`p`]},"
        "{`name`:`c`,`op`:`conv2d`,`inputs`:[`u`],`weight`:`w33`,"
        "`padding`:1,`pad_mode`:`reflect`,`stride`:2},"
        "{`name`:`b`,`op`:`upsample2x_bilinear`,`inputs`:[`c`]},"
        "{`name`:`s`,`op`:`pixel_unshuffle`,`inputs`:[`b`],`factor`:2},"
        "{`name`:`t`,`op`:`pixel_shuffle`,`inputs`:[`s`],`factor`:2},"
        "{`name`:`n`,`op`:`instance_norm`,`inputs`:[`t`],`bias`:`b3`},"
        "{`name`:`a`,`op`:`add`,`inputs`:[`n`,`cache.1`]},"
        "{`name`:`k`,`op`:`concat`,`inputs`:[`a`,`cache.0`]},"
        "{`name`:`o`,`op`:`conv2d`,`inputs`:[`k`],`weight`:`w6`,`bias`:`b3`},"
        "{`name`:`y`,`op`:`leaky_relu`,`inputs`:[`o`],`alpha`:0.2}"
        "],`output`:`y`}";
    NF_CHECK(loads(build_graph(graph, "'nf.cache_frames':'2',"
                                      "'nf.size_multiple':'4',"),
                   &m));
    NF_CHECK_INT_EQ(nf_model_cache_frames(m), 2);
    NF_CHECK_INT_EQ(nf_model_size_multiple(m), 4);
    NF_CHECK_INT_EQ(nf_model_params(m), GRAPH_BYTES / 4);
    NF_CHECK(nf_model_flops(m, 640, 480) > 0);
    nf_model_free(m);
}

NF_TEST(model_load_rejects_unknown_op)
{
    NF_CHECK(graph_rejects("{`nodes`:[{`name`:`x`,`op`:`softmax`,`inputs`:"
                           "[`frame`]}],`output`:`x`}",
                           "", NF_EMODEL_GRAPH,
                           "node 'x': unknown op 'softmax'"));
}

NF_TEST(model_load_rejects_missing_weight)
{
    NF_CHECK(graph_rejects(CONV("`weight`:`nope`"), "", NF_EMODEL_GRAPH,
                           "node 'c' (conv2d): weight 'nope' is not a tensor"));
    NF_CHECK(graph_rejects(CONV("`bias`:`b3`"), "", NF_EMODEL_GRAPH,
                           "node 'c' (conv2d): missing field 'weight'"));
}

NF_TEST(model_load_rejects_wrong_weight_shape)
{
    NF_CHECK(graph_rejects(CONV("`weight`:`dec.weight`,`padding`:1"), "",
                           NF_EMODEL_GRAPH,
                           NAME ": node 'c' (conv2d): weight 'dec.weight' has "
                                "shape [8, 4, 3, 3], expected [8, 3, 3, 3]"));
    NF_CHECK(graph_rejects(CONV("`weight`:`w3`,`bias`:`w3`"), "",
                           NF_EMODEL_GRAPH,
                           "bias 'w3' has shape [3, 3, 1, 1], expected [3]"));
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`s`,`op`:`scale_shift`,`inputs`:[`frame`],"
        "`weight`:`w3`}],`output`:`s`}",
        "", NF_EMODEL_GRAPH, "node 's' (scale_shift): weight 'w3' has shape"));
}

NF_TEST(model_load_rejects_input_used_before_defined)
{
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`a`,`op`:`relu`,`inputs`:[`b`]},"
        "{`name`:`b`,`op`:`relu`,`inputs`:[`frame`]}],`output`:`a`}",
        "", NF_EMODEL_GRAPH, "node 'a' (relu): input 'b' is used before"));
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`a`,`op`:`relu`,`inputs`:[`zz`]}],`output`:`a`}", "",
        NF_EMODEL_GRAPH, "input 'zz' is not defined"));
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`a`,`op`:`relu`,`inputs`:[`cache.1`]}],"
        "`output`:`a`}",
        "'nf.cache_frames':'1',", NF_EMODEL_GRAPH,
        "input 'cache.1' is not defined (nf.cache_frames is 1)"));
}

NF_TEST(model_load_rejects_duplicate_node_name)
{
    NF_CHECK(
        graph_rejects("{`nodes`:[{`name`:`a`,`op`:`relu`,`inputs`:[`frame`]},"
                      "{`name`:`a`,`op`:`relu`,`inputs`:[`a`]}],`output`:`a`}",
                      "", NF_EMODEL_GRAPH, "duplicate node name 'a'"));
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`frame`,`op`:`relu`,`inputs`:[`frame`]}],"
        "`output`:`frame`}",
        "", NF_EMODEL_GRAPH, "name 'frame' is reserved"));
    /* The JSON parser itself rejects a key given twice in one node. */
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`a`,`name`:`b`,`op`:`relu`,`inputs`:[`frame`]}],"
        "`output`:`a`}",
        "", NF_EMODEL_GRAPH, "duplicate"));
}

NF_TEST(model_load_rejects_bad_output)
{
    NF_CHECK(
        graph_rejects("{`nodes`:[{`name`:`a`,`op`:`relu`,`inputs`:[`frame`]}]}",
                      "", NF_EMODEL_GRAPH, "missing field 'output'"));
    NF_CHECK(
        graph_rejects("{`nodes`:[{`name`:`a`,`op`:`relu`,`inputs`:[`frame`]}],"
                      "`output`:`b`}",
                      "", NF_EMODEL_GRAPH, "output 'b' is not defined"));
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`a`,`op`:`conv2d`,`inputs`:[`frame`],"
        "`weight`:`w36`,`padding`:1}],`output`:`a`}",
        "", NF_EMODEL_GRAPH, "output 'a' has 6 channels, expected 3"));
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`a`,`op`:`avgpool2x2`,`inputs`:[`frame`]}],"
        "`output`:`a`}",
        "'nf.size_multiple':'2',", NF_EMODEL_GRAPH,
        "output 'a' is at scale 1/2"));
}

NF_TEST(model_load_rejects_dead_node)
{
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`a`,`op`:`relu`,`inputs`:[`frame`]},"
        "{`name`:`b`,`op`:`tanh`,`inputs`:[`frame`]}],`output`:`b`}",
        "", NF_EMODEL_GRAPH, "node 'a' (relu): does not contribute"));
}

NF_TEST(model_load_rejects_bad_conv_attributes)
{
    NF_CHECK(graph_rejects(CONV("`weight`:`w33`,`padding`:1,`stride`:3"), "",
                           NF_EMODEL_GRAPH, "field 'stride'"));
    NF_CHECK(graph_rejects(CONV("`weight`:`w33`,`padding`:1,`stride`:0"), "",
                           NF_EMODEL_GRAPH, "field 'stride'"));
    NF_CHECK(graph_rejects(CONV("`weight`:`w33`,`padding`:1,`groups`:2"), "",
                           NF_EMODEL_GRAPH, "groups 2 does not divide"));
    NF_CHECK(graph_rejects(CONV("`weight`:`w33`,`padding`:1,`groups`:0"), "",
                           NF_EMODEL_GRAPH, "field 'groups'"));
    NF_CHECK(graph_rejects(CONV("`weight`:`w33`,`padding`:0"), "",
                           NF_EMODEL_GRAPH, "padding 0 with a 3x3 kernel"));
    NF_CHECK(graph_rejects(CONV("`weight`:`w33`,`padding`:1,`pad_mode`:`edge`"),
                           "", NF_EMODEL_GRAPH, "field 'pad_mode'"));
    NF_CHECK(graph_rejects(CONV("`weight`:`w3`,`alpha`:1"), "", NF_EMODEL_GRAPH,
                           "unknown field 'alpha'"));
}

NF_TEST(model_load_rejects_bad_attributes)
{
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`n`,`op`:`instance_norm`,`inputs`:[`frame`],"
        "`eps`:0}],`output`:`n`}",
        "", NF_EMODEL_GRAPH, "node 'n' (instance_norm): field 'eps'"));
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`n`,`op`:`clamp`,`inputs`:[`frame`],"
        "`min`:1,`max`:0}],`output`:`n`}",
        "", NF_EMODEL_GRAPH, "field 'min' is greater than 'max'"));
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`n`,`op`:`pixel_unshuffle`,`inputs`:[`frame`],"
        "`factor`:3}],`output`:`n`}",
        "", NF_EMODEL_GRAPH, "field 'factor'"));
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`n`,`op`:`pixel_shuffle`,`inputs`:[`frame`],"
        "`factor`:2}],`output`:`n`}",
        "", NF_EMODEL_GRAPH, "not a multiple of factor^2"));
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`n`,`op`:`add`,`inputs`:[`frame`]}],`output`:`n`}",
        "", NF_EMODEL_GRAPH, "'inputs' must name 2 values"));
}

NF_TEST(model_load_rejects_concat_mismatch)
{
    /* Different scales cannot be concatenated. */
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`p`,`op`:`avgpool2x2`,`inputs`:[`frame`]},"
        "{`name`:`k`,`op`:`concat`,`inputs`:[`frame`,`p`]},"
        "{`name`:`o`,`op`:`conv2d`,`inputs`:[`k`],`weight`:`w6`}],"
        "`output`:`o`}",
        "'nf.size_multiple':'2',", NF_EMODEL_GRAPH,
        "node 'k' (concat): input 'p' has 3 channels at scale 1/2"));
    /* The concat's 6 channels do not fit a 3-channel weight. */
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`k`,`op`:`concat`,`inputs`:[`frame`,`frame`]},"
        "{`name`:`o`,`op`:`conv2d`,`inputs`:[`k`],`weight`:`w3`}],"
        "`output`:`o`}",
        "", NF_EMODEL_GRAPH,
        "weight 'w3' has shape [3, 3, 1, 1], expected [3, 6, 1, 1]"));
    /* add needs equal channel counts. */
    NF_CHECK(graph_rejects(
        "{`nodes`:[{`name`:`k`,`op`:`concat`,`inputs`:[`frame`,`frame`]},"
        "{`name`:`a`,`op`:`add`,`inputs`:[`frame`,`k`]},"
        "{`name`:`o`,`op`:`conv2d`,`inputs`:[`a`],`weight`:`w6`}],"
        "`output`:`o`}",
        "", NF_EMODEL_GRAPH, "node 'a' (add): input 'k' has 6 channels"));
}

NF_TEST(model_load_rejects_inconsistent_size_multiple)
{
    const char *graph =
        "{`nodes`:[{`name`:`p`,`op`:`avgpool2x2`,`inputs`:[`frame`]},"
        "{`name`:`q`,`op`:`avgpool2x2`,`inputs`:[`p`]},"
        "{`name`:`u`,`op`:`upsample2x_nearest`,`inputs`:[`q`]},"
        "{`name`:`v`,`op`:`upsample2x_bilinear`,`inputs`:[`u`]}],"
        "`output`:`v`}";
    NF_CHECK(graph_rejects(graph, "'nf.size_multiple':'2',", NF_EMODEL_GRAPH,
                           "nf.size_multiple is 2"));
    NF_CHECK(graph_rejects(graph, "", NF_EMODEL_GRAPH, "nf.size_multiple"));
    struct nf_model *m = NULL;
    NF_CHECK(loads(build_graph(graph, "'nf.size_multiple':'8',"), &m));
    nf_model_free(m);
}

NF_TEST(model_load_rejects_graph_json)
{
    NF_CHECK(graph_rejects("{`nodes`:[", "", NF_EMODEL_GRAPH,
                           "nf.graph: invalid JSON"));
    NF_CHECK(graph_rejects("{`nodes`:[],`output`:`frame`,`extra`:1}", "",
                           NF_EMODEL_GRAPH, "nf.graph: unknown field 'extra'"));
}

NF_TEST(model_load_reports_io_error)
{
    char err[256] = "";
    struct nf_model *m = NULL;
    NF_CHECK_INT_EQ(
        nf_model_load("models/does-not-exist.safetensors", &m, err, sizeof err),
        NF_EMODEL_IO);
    NF_CHECK(m == NULL);
    NF_CHECK(strstr(err, "models/does-not-exist.safetensors: ") == err);
}

NF_TEST(model_load_reads_default_model)
{
    char err[256] = "";
    struct nf_model *m = NULL;
    int rc = nf_model_load("models/default.safetensors", &m, err, sizeof err);
    if (rc != 0)
        printf("  %s\n", err);
    NF_CHECK_INT_EQ(rc, 0);
    NF_CHECK(strcmp(nf_model_name(m), "default") == 0);
    NF_CHECK(strcmp(nf_model_meta(m, "nf.format"), "1") == 0);
    NF_CHECK(strstr(nf_model_meta(m, "nf.description"), "trained") != NULL);
    NF_CHECK_INT_EQ(nf_model_cache_frames(m), 1);
    NF_CHECK_INT_EQ(nf_model_size_multiple(m), 2);
    NF_CHECK(nf_model_params(m) > 0 && nf_model_params(m) < 25000);
    double flops = nf_model_flops(m, 640, 480);
    NF_CHECK(flops > 1e7 && flops < 1e10);
    nf_model_free(m);
}

NF_TEST_MAIN(
    NF_TEST_ENTRY(model_load_accepts_tiny_model) NF_TEST_ENTRY(
        model_load_rejects_short_file) NF_TEST_ENTRY(model_load_rejects_header_length_past_file)
        NF_TEST_ENTRY(model_load_rejects_header_length_that_wraps) NF_TEST_ENTRY(
            model_load_rejects_header_not_starting_with_brace) NF_TEST_ENTRY(model_load_rejects_invalid_json)
            NF_TEST_ENTRY(model_load_rejects_duplicate_tensor_key) NF_TEST_ENTRY(
                model_load_rejects_unknown_dtype) NF_TEST_ENTRY(model_load_rejects_negative_or_float_offsets)
                NF_TEST_ENTRY(model_load_rejects_offsets_beyond_data) NF_TEST_ENTRY(
                    model_load_rejects_gap) NF_TEST_ENTRY(model_load_rejects_overlap)
                    NF_TEST_ENTRY(model_load_rejects_trailing_bytes) NF_TEST_ENTRY(
                        model_load_rejects_shape_product_that_wraps) NF_TEST_ENTRY(model_load_rejects_shape_offset_mismatch)
                        NF_TEST_ENTRY(model_load_rejects_unknown_tensor_field) NF_TEST_ENTRY(
                            model_load_rejects_nonfinite_weight) NF_TEST_ENTRY(model_load_rejects_metadata_non_string)
                            NF_TEST_ENTRY(model_load_rejects_missing_format) NF_TEST_ENTRY(
                                model_load_rejects_bad_name) NF_TEST_ENTRY(model_load_rejects_bad_numbers_in_metadata)
                                NF_TEST_ENTRY(model_load_accepts_graph_of_every_kind) NF_TEST_ENTRY(
                                    model_load_rejects_unknown_op) NF_TEST_ENTRY(model_load_rejects_missing_weight)
                                    NF_TEST_ENTRY(model_load_rejects_wrong_weight_shape) NF_TEST_ENTRY(
                                        model_load_rejects_input_used_before_defined)
                                        NF_TEST_ENTRY(model_load_rejects_duplicate_node_name) NF_TEST_ENTRY(
                                            model_load_rejects_bad_output)
                                            NF_TEST_ENTRY(model_load_rejects_dead_node) NF_TEST_ENTRY(
                                                model_load_rejects_bad_conv_attributes)
                                                NF_TEST_ENTRY(
                                                    model_load_rejects_bad_attributes)
                                                    NF_TEST_ENTRY(
                                                        model_load_rejects_concat_mismatch)
                                                        NF_TEST_ENTRY(
                                                            model_load_rejects_inconsistent_size_multiple)
                                                            NF_TEST_ENTRY(
                                                                model_load_rejects_graph_json)
                                                                NF_TEST_ENTRY(
                                                                    model_load_reports_io_error)
                                                                    NF_TEST_ENTRY(
                                                                        model_load_reads_default_model))
