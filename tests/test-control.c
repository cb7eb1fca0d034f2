/*
 * test-control.c - unit tests of the JSON control messages
 * (protocol/control.c).
 *
 * Parsed messages are read from exact-size heap copies without a NUL, so
 * ASan sees any read past len. Formatter output is compared with literal
 * expected JSON and re-read with jansson directly, an implementation
 * independent of the formatter.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "control.h"
#include "error.h"
#include "nf-test.h"

/* Parses s (without its NUL) from an exact-size heap copy. */
static int parse(const char *s, struct nf_ctrl_msg *msg)
{
    size_t len = strlen(s);
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    if (copy == NULL)
        abort();
    memcpy(copy, s, len);
    rc = nf_ctrl_parse(copy, len, msg);
    free(copy);
    return rc;
}

/* Returns the parse result of s, for tables of bad messages. */
static int parse_rc(const char *s)
{
    struct nf_ctrl_msg msg;
    int rc = parse(s, &msg);

    /* A failed parse leaves nothing to apply. */
    if (rc < 0 && (msg.type != 0 || msg.quality != 0 || msg.style[0] != 0))
        return 1;
    return rc;
}

/* Checks that parsing s returns want, and names s in the log if not. */
#define CHECK_PARSE_RC(s, want)                                                \
    do {                                                                       \
        int got_ = parse_rc(s);                                                \
        if (got_ != (want))                                                    \
            printf("  input: %s\n", (s));                                      \
        NF_CHECK_INT_EQ(got_, want);                                           \
    } while (0)

NF_TEST(ctrl_parse_hello)
{
    struct nf_ctrl_msg m;

    NF_CHECK_INT_EQ(
        parse("{\"type\":\"hello\",\"version\":1,\"style\":\"candy-2.0_x\","
              "\"quality\":80}",
              &m),
        0);
    NF_CHECK_INT_EQ(m.type, NF_CTRL_HELLO);
    NF_CHECK_INT_EQ(m.version, 1);
    NF_CHECK(strcmp(m.style, "candy-2.0_x") == 0);
    NF_CHECK_INT_EQ(m.quality, 80);

    /* Only the version is required. */
    NF_CHECK_INT_EQ(parse(" { \"version\" : 1 , \"type\" : \"hello\" } ", &m),
                    0);
    NF_CHECK_INT_EQ(m.type, NF_CTRL_HELLO);
    NF_CHECK(m.style[0] == '\0');
    NF_CHECK_INT_EQ(m.quality, 0);
}

NF_TEST(ctrl_parse_hello_options_quality)
{
    struct nf_ctrl_msg m;

    NF_CHECK_INT_EQ(
        parse("{\"type\":\"hello\",\"version\":1,\"options\":{\"quality\":42,"
              "\"future\":true}}",
              &m),
        0);
    NF_CHECK_INT_EQ(m.quality, 42);
    /* A top-level quality wins over options.quality. */
    NF_CHECK_INT_EQ(parse("{\"type\":\"hello\",\"version\":1,\"quality\":7,"
                          "\"options\":{\"quality\":42}}",
                          &m),
                    0);
    NF_CHECK_INT_EQ(m.quality, 7);
    NF_CHECK_INT_EQ(
        parse("{\"type\":\"hello\",\"version\":1,\"options\":{}}", &m), 0);
    NF_CHECK_INT_EQ(m.quality, 0);
}

NF_TEST(ctrl_parse_set_and_reset)
{
    struct nf_ctrl_msg m;

    NF_CHECK_INT_EQ(parse("{\"type\":\"set\",\"style\":\"mosaic\"}", &m), 0);
    NF_CHECK_INT_EQ(m.type, NF_CTRL_SET);
    NF_CHECK(strcmp(m.style, "mosaic") == 0);
    NF_CHECK_INT_EQ(m.quality, 0);
    NF_CHECK_INT_EQ(parse("{\"type\":\"set\",\"quality\":100}", &m), 0);
    NF_CHECK(m.style[0] == '\0');
    NF_CHECK_INT_EQ(m.quality, 100);
    NF_CHECK_INT_EQ(parse("{\"type\":\"set\",\"quality\":1}", &m), 0);
    NF_CHECK_INT_EQ(m.quality, 1);
    NF_CHECK_INT_EQ(parse("{\"type\":\"set\"}", &m), 0);
    NF_CHECK_INT_EQ(parse("{\"type\":\"reset\"}", &m), 0);
    NF_CHECK_INT_EQ(m.type, NF_CTRL_RESET);
}

NF_TEST(ctrl_parse_server_messages)
{
    struct nf_ctrl_msg m;

    NF_CHECK_INT_EQ(
        parse("{\"type\":\"welcome\",\"version\":1,\"session\":\"s-17\","
              "\"backend\":\"cuda\",\"style\":\"candy\",\"styles\":[\"candy\"],"
              "\"cache_frames\":2,\"quality\":85,\"limits\":{}}",
              &m),
        0);
    NF_CHECK_INT_EQ(m.type, NF_CTRL_WELCOME);
    NF_CHECK_INT_EQ(m.version, 1);
    NF_CHECK(strcmp(m.session, "s-17") == 0);
    NF_CHECK(strcmp(m.backend, "cuda") == 0);
    NF_CHECK(strcmp(m.style, "candy") == 0);
    NF_CHECK_INT_EQ(m.quality, 85);

    NF_CHECK_INT_EQ(
        parse("{\"type\":\"state\",\"style\":\"candy\",\"quality\":85}", &m),
        0);
    NF_CHECK_INT_EQ(m.type, NF_CTRL_STATE);
    NF_CHECK(strcmp(m.style, "candy") == 0);
    NF_CHECK_INT_EQ(m.quality, 85);

    NF_CHECK_INT_EQ(parse("{\"type\":\"error\",\"code\":\"bad_field\","
                          "\"message\":\"quality must be 1..100\"}",
                          &m),
                    0);
    NF_CHECK_INT_EQ(m.type, NF_CTRL_ERROR);
    NF_CHECK(strcmp(m.code, "bad_field") == 0);
    NF_CHECK(strcmp(m.message, "quality must be 1..100") == 0);
}

NF_TEST(ctrl_parse_ignores_unknown_fields)
{
    struct nf_ctrl_msg m;

    NF_CHECK_INT_EQ(parse("{\"x\":[1,{\"a\":null}],\"type\":\"set\","
                          "\"quality\":5,\"options\":\"only hello has it\","
                          "\"version\":\"not checked in set\",\"y\":1.5}",
                          &m),
                    0);
    NF_CHECK_INT_EQ(m.type, NF_CTRL_SET);
    NF_CHECK_INT_EQ(m.quality, 5);
    NF_CHECK_INT_EQ(parse("{\"type\":\"reset\",\"quality\":0,\"style\":7}", &m),
                    0);
    NF_CHECK_INT_EQ(
        parse("{\"type\":\"hello\",\"version\":1,\"session\":0}", &m), 0);
}

NF_TEST(ctrl_parse_rejects_bad_json)
{
    static const char *const bad[] = {
        "",
        " ",
        "{",
        "{\"type\":\"reset\"",
        "{\"type\":\"reset\"} x",
        "{\"type\":\"reset\"}{}",
        "{'type':'reset'}",
        "{\"type\":\"reset\",}",
        "null",
        "42",
        "\"hello\"",
        "[{\"type\":\"reset\"}]",
        "{\"type\":\"error\",\"code\":\"x\",\"message\":\"a\\u0000b\"}",
        "{\"type\":\"set\",\"style\":\"\xff\"}",
        "{\"type\":\"set\",\"quality\":99999999999999999999999}",
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_PARSE_RC(bad[i], NF_ECTRL_JSON);
    }
    /* A NUL inside the buffer is not valid JSON either. */
    {
        struct nf_ctrl_msg m;
        NF_CHECK_INT_EQ(nf_ctrl_parse("{\"type\":\"reset\"}\0", 17, &m),
                        NF_ECTRL_JSON);
    }
}

NF_TEST(ctrl_parse_rejects_duplicate_keys)
{
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"set\",\"type\":\"set\"}"),
                    NF_ECTRL_JSON);
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"set\",\"quality\":5,\"quality\":6}"),
                    NF_ECTRL_JSON);
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"hello\",\"version\":1,\"options\":{"
                             "\"quality\":5,\"quality\":5}}"),
                    NF_ECTRL_JSON);
}

NF_TEST(ctrl_parse_rejects_bad_type)
{
    static const char *const bad[] = {
        "{}",
        "{\"style\":\"candy\"}",
        "{\"type\":null}",
        "{\"type\":1}",
        "{\"type\":[\"set\"]}",
        "{\"type\":\"\"}",
        "{\"type\":\"bye\"}",
        "{\"type\":\"Hello\"}",
        "{\"type\":\"set \"}",
        "{\"options\":{\"type\":\"set\"}}",
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_PARSE_RC(bad[i], NF_ECTRL_TYPE);
    }
}

NF_TEST(ctrl_parse_rejects_bad_hello_version)
{
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"hello\",\"version\":2}"),
                    NF_ECTRL_VERSION);
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"hello\",\"version\":0}"),
                    NF_ECTRL_VERSION);
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"hello\",\"version\":-1}"),
                    NF_ECTRL_VERSION);
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"hello\",\"version\":4294967297}"),
                    NF_ECTRL_VERSION);
    /* The version is checked before fields whose rules may change. */
    NF_CHECK_INT_EQ(
        parse_rc("{\"type\":\"hello\",\"version\":2,\"quality\":1000}"),
        NF_ECTRL_VERSION);
    /* Missing or not an integer: a bad field. */
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"hello\"}"), NF_ECTRL_FIELD);
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"hello\",\"version\":\"1\"}"),
                    NF_ECTRL_FIELD);
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"hello\",\"version\":1.0}"),
                    NF_ECTRL_FIELD);
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"hello\",\"version\":null}"),
                    NF_ECTRL_FIELD);
}

NF_TEST(ctrl_parse_rejects_bad_quality)
{
    static const char *const bad[] = {"0",    "101",  "-1",   "\"x\"", "\"50\"",
                                      "50.0", "true", "null", "[50]",  "1e2"};
    char json[128];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(json, sizeof json, "{\"type\":\"set\",\"quality\":%s}",
                 bad[i]);
        CHECK_PARSE_RC(json, NF_ECTRL_FIELD);
        snprintf(json, sizeof json,
                 "{\"type\":\"hello\",\"version\":1,\"quality\":%s}", bad[i]);
        CHECK_PARSE_RC(json, NF_ECTRL_FIELD);
        snprintf(json, sizeof json,
                 "{\"type\":\"hello\",\"version\":1,\"options\":{\"quality\":"
                 "%s}}",
                 bad[i]);
        CHECK_PARSE_RC(json, NF_ECTRL_FIELD);
        snprintf(json, sizeof json,
                 "{\"type\":\"state\",\"style\":\"a\",\"quality\":%s}", bad[i]);
        CHECK_PARSE_RC(json, NF_ECTRL_FIELD);
    }
    NF_CHECK_INT_EQ(
        parse_rc("{\"type\":\"hello\",\"version\":1,\"options\":[]}"),
        NF_ECTRL_FIELD);
}

NF_TEST(ctrl_parse_rejects_bad_style)
{
    static const char *const bad[] = {
        "\"\"",           "\"a b\"",  "\"a/b\"",    "\"..\\\\x\"",
        "\"caf\\u00e9\"", "\"x\\n\"", "\"a\\\"b\"", "7",
        "null",           "[\"a\"]",  "{\"a\":1}",
    };
    char json[256], name[NF_CTRL_STYLE_MAX + 1];
    struct nf_ctrl_msg m;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(json, sizeof json, "{\"type\":\"set\",\"style\":%s}", bad[i]);
        CHECK_PARSE_RC(json, NF_ECTRL_FIELD);
        snprintf(json, sizeof json,
                 "{\"type\":\"hello\",\"version\":1,\"style\":%s}", bad[i]);
        CHECK_PARSE_RC(json, NF_ECTRL_FIELD);
    }
    /* NF_CTRL_STYLE_MAX - 1 bytes fit; one more does not. */
    memset(name, 'a', sizeof name);
    name[NF_CTRL_STYLE_MAX - 1] = '\0';
    snprintf(json, sizeof json, "{\"type\":\"set\",\"style\":\"%s\"}", name);
    NF_CHECK_INT_EQ(parse(json, &m), 0);
    NF_CHECK_INT_EQ(strlen(m.style), NF_CTRL_STYLE_MAX - 1);
    name[NF_CTRL_STYLE_MAX - 1] = 'a';
    name[NF_CTRL_STYLE_MAX] = '\0';
    snprintf(json, sizeof json, "{\"type\":\"set\",\"style\":\"%s\"}", name);
    CHECK_PARSE_RC(json, NF_ECTRL_FIELD);
}

NF_TEST(ctrl_parse_rejects_missing_server_fields)
{
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"welcome\",\"version\":1,"
                             "\"backend\":\"cpu\",\"style\":\"a\"}"),
                    NF_ECTRL_FIELD);
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"welcome\",\"session\":\"s\","
                             "\"backend\":\"cpu\",\"style\":\"a\"}"),
                    NF_ECTRL_FIELD);
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"welcome\",\"version\":0,"
                             "\"session\":\"s\",\"backend\":\"cpu\","
                             "\"style\":\"a\"}"),
                    NF_ECTRL_FIELD);
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"state\",\"style\":\"a\"}"),
                    NF_ECTRL_FIELD);
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"state\",\"quality\":5}"),
                    NF_ECTRL_FIELD);
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"error\",\"code\":\"x\"}"),
                    NF_ECTRL_FIELD);
    NF_CHECK_INT_EQ(parse_rc("{\"type\":\"error\",\"message\":\"x\"}"),
                    NF_ECTRL_FIELD);
    NF_CHECK_INT_EQ(
        parse_rc("{\"type\":\"error\",\"code\":\"x\",\"message\":5}"),
        NF_ECTRL_FIELD);
}

NF_TEST(ctrl_parse_truncates_long_error_message)
{
    char json[1024], text[600];
    struct nf_ctrl_msg m;

    memset(text, 'a', 300);
    text[300] = '\0';
    snprintf(json, sizeof json,
             "{\"type\":\"error\",\"code\":\"x\",\"message\":\"%s\"}", text);
    NF_CHECK_INT_EQ(parse(json, &m), 0);
    NF_CHECK_INT_EQ(strlen(m.message), NF_CTRL_TEXT_MAX - 1);

    /* A 2-byte character across the cut is dropped whole. */
    memset(text, 'a', NF_CTRL_TEXT_MAX - 2);
    strcpy(text + NF_CTRL_TEXT_MAX - 2, "\xc3\xa9tail");
    snprintf(json, sizeof json,
             "{\"type\":\"error\",\"code\":\"x\",\"message\":\"%s\"}", text);
    NF_CHECK_INT_EQ(parse(json, &m), 0);
    NF_CHECK_INT_EQ(strlen(m.message), NF_CTRL_TEXT_MAX - 2);

    /* A 4-byte character that ends exactly at the limit is kept. */
    memset(text, 'a', NF_CTRL_TEXT_MAX - 5);
    strcpy(text + NF_CTRL_TEXT_MAX - 5, "\xf0\x9f\x98\x80z");
    snprintf(json, sizeof json,
             "{\"type\":\"error\",\"code\":\"x\",\"message\":\"%s\"}", text);
    NF_CHECK_INT_EQ(parse(json, &m), 0);
    NF_CHECK_INT_EQ(strlen(m.message), NF_CTRL_TEXT_MAX - 1);
    NF_CHECK(strcmp(m.message + NF_CTRL_TEXT_MAX - 5, "\xf0\x9f\x98\x80") == 0);
}

NF_TEST(ctrl_parse_checks_arguments)
{
    struct nf_ctrl_msg m;

    NF_CHECK_INT_EQ(nf_ctrl_parse(NULL, 0, &m), NF_ECTRL_JSON);
    NF_CHECK_INT_EQ(nf_ctrl_parse(NULL, 5, &m), NF_EINVAL);
    NF_CHECK_INT_EQ(nf_ctrl_parse("{}", 2, NULL), NF_EINVAL);
    /* Only len bytes are read: the rest of the string is not JSON. */
    NF_CHECK_INT_EQ(nf_ctrl_parse("{\"type\":\"reset\"}garbage", 16, &m), 0);
    NF_CHECK_INT_EQ(m.type, NF_CTRL_RESET);
}

static const char *const test_styles[] = {"candy", "mosaic", "udnie"};

static struct nf_ctrl_welcome test_welcome(void)
{
    struct nf_ctrl_welcome w;

    memset(&w, 0, sizeof w);
    w.session = "7f3a-0001";
    w.backend = "cpu";
    w.style = "mosaic";
    for (int i = 0; i < 3; i++)
        w.styles[i] = test_styles[i];
    w.n_styles = 3;
    w.cache_frames = 2;
    w.quality = 85;
    w.max_message_bytes = 4194304;
    w.max_width = 1920;
    w.max_height = 1080;
    w.idle_timeout_s = 30;
    return w;
}

static const char welcome_json[] =
    "{\"type\":\"welcome\",\"version\":1,\"session\":\"7f3a-0001\","
    "\"backend\":\"cpu\",\"style\":\"mosaic\","
    "\"styles\":[\"candy\",\"mosaic\",\"udnie\"],\"cache_frames\":2,"
    "\"quality\":85,\"limits\":{\"max_message_bytes\":4194304,"
    "\"max_width\":1920,\"max_height\":1080,\"idle_timeout_s\":30}}";

NF_TEST(ctrl_format_exact_output)
{
    struct nf_ctrl_welcome w = test_welcome();
    char buf[1024];

    NF_CHECK_INT_EQ(nf_ctrl_format_welcome(buf, sizeof buf, &w),
                    strlen(welcome_json));
    NF_CHECK(strcmp(buf, welcome_json) == 0);
    w.n_styles = 0;
    NF_CHECK(nf_ctrl_format_welcome(buf, sizeof buf, &w) > 0);
    NF_CHECK(strstr(buf, "\"styles\":[],") != NULL);

    nf_ctrl_format_state(buf, sizeof buf, "candy", 85);
    NF_CHECK(strcmp(buf, "{\"type\":\"state\",\"style\":\"candy\","
                         "\"quality\":85}") == 0);
    nf_ctrl_format_error(buf, sizeof buf, "bad_field", "quality");
    NF_CHECK(strcmp(buf, "{\"type\":\"error\",\"code\":\"bad_field\","
                         "\"message\":\"quality\"}") == 0);
    nf_ctrl_format_error(buf, sizeof buf, "bad_json", NULL);
    NF_CHECK(strcmp(buf, "{\"type\":\"error\",\"code\":\"bad_json\","
                         "\"message\":\"\"}") == 0);
    nf_ctrl_format_hello(buf, sizeof buf, "candy", 90);
    NF_CHECK(strcmp(buf, "{\"type\":\"hello\",\"version\":1,"
                         "\"style\":\"candy\",\"quality\":90}") == 0);
    nf_ctrl_format_hello(buf, sizeof buf, NULL, 0);
    NF_CHECK(strcmp(buf, "{\"type\":\"hello\",\"version\":1}") == 0);
    nf_ctrl_format_set(buf, sizeof buf, "", 10);
    NF_CHECK(strcmp(buf, "{\"type\":\"set\",\"quality\":10}") == 0);
    nf_ctrl_format_set(buf, sizeof buf, "udnie", 0);
    NF_CHECK(strcmp(buf, "{\"type\":\"set\",\"style\":\"udnie\"}") == 0);
    NF_CHECK_INT_EQ(nf_ctrl_format_reset(buf, sizeof buf), 16);
    NF_CHECK(strcmp(buf, "{\"type\":\"reset\"}") == 0);
}

/* Reads an integer member of the limits object of a welcome with jansson. */
static long long limit_of(json_t *root, const char *key)
{
    return (long long)json_integer_value(
        json_object_get(json_object_get(root, "limits"), key));
}

NF_TEST(ctrl_format_welcome_reads_back)
{
    struct nf_ctrl_welcome w = test_welcome();
    struct nf_ctrl_msg m;
    char buf[1024];
    int n = nf_ctrl_format_welcome(buf, sizeof buf, &w);
    json_t *root, *styles;
    int ok;

    NF_CHECK(n > 0);
    NF_CHECK_INT_EQ(nf_ctrl_parse(buf, (size_t)n, &m), 0);
    NF_CHECK_INT_EQ(m.type, NF_CTRL_WELCOME);
    NF_CHECK_INT_EQ(m.version, 1);
    NF_CHECK(strcmp(m.session, w.session) == 0);
    NF_CHECK(strcmp(m.backend, w.backend) == 0);
    NF_CHECK(strcmp(m.style, w.style) == 0);
    NF_CHECK_INT_EQ(m.quality, 85);

    /* The fields struct nf_ctrl_msg does not carry, read with jansson. */
    root = json_loads(buf, JSON_REJECT_DUPLICATES, NULL);
    NF_CHECK(root != NULL);
    styles = json_object_get(root, "styles");
    ok = json_array_size(styles) == 3 &&
         strcmp(json_string_value(json_array_get(styles, 2)), "udnie") == 0 &&
         json_integer_value(json_object_get(root, "cache_frames")) == 2 &&
         limit_of(root, "max_message_bytes") == 4194304 &&
         limit_of(root, "max_width") == 1920 &&
         limit_of(root, "max_height") == 1080 &&
         limit_of(root, "idle_timeout_s") == 30;
    json_decref(root);
    NF_CHECK(ok);
}

NF_TEST(ctrl_format_round_trips_through_parser)
{
    struct nf_ctrl_msg m;
    char buf[512];
    int n;

    n = nf_ctrl_format_hello(buf, sizeof buf, "candy", 55);
    NF_CHECK_INT_EQ(nf_ctrl_parse(buf, (size_t)n, &m), 0);
    NF_CHECK(m.type == NF_CTRL_HELLO && m.version == 1 && m.quality == 55 &&
             strcmp(m.style, "candy") == 0);
    n = nf_ctrl_format_hello(buf, sizeof buf, NULL, 0);
    NF_CHECK_INT_EQ(nf_ctrl_parse(buf, (size_t)n, &m), 0);
    NF_CHECK(m.type == NF_CTRL_HELLO && m.quality == 0 && m.style[0] == 0);
    n = nf_ctrl_format_set(buf, sizeof buf, "a.b-c_D9", 100);
    NF_CHECK_INT_EQ(nf_ctrl_parse(buf, (size_t)n, &m), 0);
    NF_CHECK(m.type == NF_CTRL_SET && m.quality == 100 &&
             strcmp(m.style, "a.b-c_D9") == 0);
    n = nf_ctrl_format_reset(buf, sizeof buf);
    NF_CHECK_INT_EQ(nf_ctrl_parse(buf, (size_t)n, &m), 0);
    NF_CHECK_INT_EQ(m.type, NF_CTRL_RESET);
    n = nf_ctrl_format_state(buf, sizeof buf, "udnie", 1);
    NF_CHECK_INT_EQ(nf_ctrl_parse(buf, (size_t)n, &m), 0);
    NF_CHECK(m.type == NF_CTRL_STATE && m.quality == 1 &&
             strcmp(m.style, "udnie") == 0);
    n = nf_ctrl_format_error(buf, sizeof buf, "unknown_style", "no 'x'");
    NF_CHECK_INT_EQ(nf_ctrl_parse(buf, (size_t)n, &m), 0);
    NF_CHECK(m.type == NF_CTRL_ERROR && strcmp(m.code, "unknown_style") == 0 &&
             strcmp(m.message, "no 'x'") == 0);
}

NF_TEST(ctrl_format_escapes_strings)
{
    static const char text[] = "say \"hi\" \\ back\n\r\t\b\f\x01\x1f\x7f/ "
                               "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    static const char want[] =
        "{\"type\":\"error\",\"code\":\"c\\\"d\",\"message\":\"say \\\"hi\\\" "
        "\\\\ back\\n\\r\\t\\u0008\\u000c\\u0001\\u001f\x7f/ "
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}";
    struct nf_ctrl_msg m;
    char buf[512];
    int n = nf_ctrl_format_error(buf, sizeof buf, "c\"d", text);

    NF_CHECK_INT_EQ(n, strlen(want));
    NF_CHECK(strcmp(buf, want) == 0);
    /* The code is not a valid name on parse, so check the text alone. */
    n = nf_ctrl_format_error(buf, sizeof buf, "c", text);
    NF_CHECK_INT_EQ(nf_ctrl_parse(buf, (size_t)n, &m), 0);
    NF_CHECK(strcmp(m.message, text) == 0);
}

NF_TEST(ctrl_format_replaces_invalid_utf8)
{
    static const char *const bad[] = {
        "\xff",         "\x80",
        "\xc3",         "\xc3(",
        "\xc0\xaf",     "\xe0\x80\xaf",
        "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "\xf0\x9f\x98", "\xf8\x88\x80\x80\x80",
    };
    struct nf_ctrl_msg m;
    char buf[256];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int n = nf_ctrl_format_error(buf, sizeof buf, "c", bad[i]);

        NF_CHECK(n > 0);
        NF_CHECK(strstr(buf, "\\ufffd") != NULL);
        /* jansson accepts only valid UTF-8: the output must parse. */
        NF_CHECK_INT_EQ(nf_ctrl_parse(buf, (size_t)n, &m), 0);
    }
    nf_ctrl_format_error(buf, sizeof buf, "c", "a\xffz");
    NF_CHECK(strcmp(buf, "{\"type\":\"error\",\"code\":\"c\","
                         "\"message\":\"a\\ufffdz\"}") == 0);
}

enum { CANARY = 32 };

/* Calls formatter kind (0..5) with fixed arguments. */
static int format_kind(int kind, char *buf, size_t cap)
{
    static const char long_text[] = "a \"quoted\" line\nand \x01 more \xff";
    struct nf_ctrl_welcome w = test_welcome();

    switch (kind) {
    case 0:
        return nf_ctrl_format_welcome(buf, cap, &w);
    case 1:
        return nf_ctrl_format_state(buf, cap, "candy", 85);
    case 2:
        return nf_ctrl_format_error(buf, cap, "bad_field", long_text);
    case 3:
        return nf_ctrl_format_hello(buf, cap, "candy", 90);
    case 4:
        return nf_ctrl_format_set(buf, cap, "udnie", 10);
    default:
        return nf_ctrl_format_reset(buf, cap);
    }
}

/*
 * For every cap from 0 to the size needed, a formatter returns NF_ERANGE
 * and leaves the bytes from cap on untouched; at exactly length + 1 it
 * succeeds. Each buffer is a fresh heap block of cap + CANARY bytes.
 */
NF_TEST(ctrl_format_range_at_every_cap)
{
    for (int kind = 0; kind < 6; kind++) {
        char full[1024];
        int n = format_kind(kind, full, sizeof full);

        NF_CHECK(n > 0);
        for (size_t cap = 0; cap <= (size_t)n + 1; cap++) {
            char *buf = malloc(cap + CANARY);
            int rc, intact = 1;

            if (buf == NULL)
                abort();
            memset(buf, 0x5a, cap + CANARY);
            rc = format_kind(kind, buf, cap);
            for (size_t i = cap; i < cap + CANARY; i++)
                intact &= buf[i] == 0x5a;
            if (cap <= (size_t)n) {
                intact &= rc == NF_ERANGE && (cap == 0 || buf[0] == '\0');
            } else {
                intact &= rc == n && strcmp(buf, full) == 0;
            }
            free(buf);
            if (!intact)
                printf("  kind %d cap %zu rc %d\n", kind, cap, rc);
            NF_CHECK(intact);
        }
    }
}

NF_TEST(ctrl_format_checks_arguments)
{
    struct nf_ctrl_welcome w = test_welcome();
    char buf[1024];

    NF_CHECK_INT_EQ(nf_ctrl_format_welcome(buf, sizeof buf, NULL), NF_EINVAL);
    w.n_styles = NF_CTRL_MAX_STYLES + 1;
    NF_CHECK_INT_EQ(nf_ctrl_format_welcome(buf, sizeof buf, &w), NF_EINVAL);
    w = test_welcome();
    w.styles[1] = NULL;
    NF_CHECK_INT_EQ(nf_ctrl_format_welcome(buf, sizeof buf, &w), NF_EINVAL);
    w = test_welcome();
    w.session = NULL;
    NF_CHECK_INT_EQ(nf_ctrl_format_welcome(buf, sizeof buf, &w), NF_EINVAL);
    NF_CHECK_INT_EQ(nf_ctrl_format_state(buf, sizeof buf, NULL, 5), NF_EINVAL);
    NF_CHECK_INT_EQ(nf_ctrl_format_error(buf, sizeof buf, NULL, "m"),
                    NF_EINVAL);
    NF_CHECK_INT_EQ(nf_ctrl_format_reset(NULL, 10), NF_EINVAL);
    NF_CHECK_INT_EQ(nf_ctrl_format_reset(NULL, 0), NF_ERANGE);
}

NF_TEST(ctrl_parse_correction_params)
{
    struct nf_ctrl_msg m;

    NF_CHECK_INT_EQ(parse("{\"type\":\"set\",\"correction\":{\"decay\":0.25,"
                          "\"anchor_every\":4}}",
                          &m),
                    0);
    NF_CHECK_INT_EQ(m.n_params, 2);
    NF_CHECK(strcmp(m.params[0].name, "decay") == 0);
    NF_CHECK_NEAR(m.params[0].value, 0.25, 0);
    NF_CHECK(strcmp(m.params[1].name, "anchor_every") == 0);
    NF_CHECK_NEAR(m.params[1].value, 4, 0);
    NF_CHECK_INT_EQ(parse("{\"type\":\"hello\",\"version\":1,"
                          "\"correction\":{\"correct\":0}}",
                          &m),
                    0);
    NF_CHECK_INT_EQ(m.n_params, 1);
    /* Not an object, a non-number value, a bad name. */
    NF_CHECK_INT_EQ(parse("{\"type\":\"set\",\"correction\":3}", &m),
                    NF_ECTRL_FIELD);
    NF_CHECK_INT_EQ(
        parse("{\"type\":\"set\",\"correction\":{\"decay\":\"x\"}}", &m),
        NF_ECTRL_FIELD);
    NF_CHECK_INT_EQ(
        parse("{\"type\":\"set\",\"correction\":{\"De cay\":1}}", &m),
        NF_ECTRL_FIELD);
    NF_CHECK_INT_EQ(parse("{\"type\":\"set\",\"correction\":{\"\":1}}", &m),
                    NF_ECTRL_FIELD);
}

NF_TEST(ctrl_format_state_with_correction)
{
    struct nf_ctrl_param p[2] = {{"decay", 0.3}, {"anchor_every", 8}};
    char buf[256];
    int n =
        nf_ctrl_format_state_with(buf, sizeof buf, "toon", 80, 1.5f, 4, p, 2);

    NF_CHECK(n > 0);
    NF_CHECK(strcmp(buf,
                    "{\"type\":\"state\",\"style\":\"toon\",\"quality\":80,"
                    "\"drift\":1.5,\"scale\":0.5,\"correction\":{\"decay\":0.3,"
                    "\"anchor_every\":8}}") == 0);
    /* Every prefix that is too short is refused, never overflowed. */
    for (int cap = 0; cap <= n; cap++)
        NF_CHECK_INT_EQ(nf_ctrl_format_state_with(buf, (size_t)cap, "toon", 80,
                                                  1.5f, 4, p, 2),
                        NF_ERANGE);
}

/* "scale": k/8 for k in 1..8, in hello, set, welcome and state; anything
 * else is a bad field. */
NF_TEST(ctrl_parse_and_format_scale)
{
    struct nf_ctrl_msg m;
    char buf[128];
    static const char *bad[] = {"0",    "0.1", "1.5",    "-0.5",   "\"0.5\"",
                                "true", "2",   "0.0625", "1e-300", "null"};

    NF_CHECK_INT_EQ(
        parse("{\"type\":\"hello\",\"version\":1,\"scale\":0.5}", &m), 0);
    NF_CHECK_INT_EQ(m.scale8, 4);
    NF_CHECK_INT_EQ(parse("{\"type\":\"set\",\"scale\":1}", &m), 0);
    NF_CHECK_INT_EQ(m.scale8, 8);
    NF_CHECK_INT_EQ(parse("{\"type\":\"set\",\"scale\":0.125}", &m), 0);
    NF_CHECK_INT_EQ(m.scale8, 1);
    NF_CHECK_INT_EQ(parse("{\"type\":\"set\",\"scale\":0.875}", &m), 0);
    NF_CHECK_INT_EQ(m.scale8, 7);
    NF_CHECK_INT_EQ(parse("{\"type\":\"set\",\"quality\":5}", &m), 0);
    NF_CHECK_INT_EQ(m.scale8, 0);
    NF_CHECK_INT_EQ(
        parse(
            "{\"type\":\"state\",\"style\":\"a\",\"quality\":5,\"scale\":0.75}",
            &m),
        0);
    NF_CHECK_INT_EQ(m.scale8, 6);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char msg[96];
        snprintf(msg, sizeof msg, "{\"type\":\"set\",\"scale\":%s}", bad[i]);
        NF_CHECK_INT_EQ(parse(msg, &m), NF_ECTRL_FIELD);
    }
    struct nf_ctrl_welcome w = {.session = "1-a",
                                .backend = "dnnl",
                                .style = "toon",
                                .styles = {"toon"},
                                .n_styles = 1,
                                .cache_frames = 2,
                                .quality = 85,
                                .scale8 = 6};
    char big[512];
    NF_CHECK(nf_ctrl_format_welcome(big, sizeof big, &w) > 0);
    NF_CHECK(strstr(big, ",\"quality\":85,\"scale\":0.75,\"limits\"") != NULL);
    NF_CHECK_INT_EQ(parse(big, &m), 0);
    NF_CHECK_INT_EQ(m.scale8, 6);
    NF_CHECK(nf_ctrl_format_hello_scaled(buf, sizeof buf, NULL, 0, 6) > 0);
    NF_CHECK(strcmp(buf, "{\"type\":\"hello\",\"version\":1,\"scale\":0.75}") ==
             0);
    NF_CHECK_INT_EQ(parse(buf, &m), 0);
    NF_CHECK_INT_EQ(m.scale8, 6);
    NF_CHECK(nf_ctrl_format_hello_scaled(buf, sizeof buf, "toon", 0, 0) > 0);
    NF_CHECK(
        strcmp(buf, "{\"type\":\"hello\",\"version\":1,\"style\":\"toon\"}") ==
        0);
}

/* clang-format off */
NF_TEST_MAIN(
    NF_TEST_ENTRY(ctrl_parse_correction_params)
    NF_TEST_ENTRY(ctrl_format_state_with_correction)
    NF_TEST_ENTRY(ctrl_parse_and_format_scale)
    NF_TEST_ENTRY(ctrl_parse_hello)
    NF_TEST_ENTRY(ctrl_parse_hello_options_quality)
    NF_TEST_ENTRY(ctrl_parse_set_and_reset)
    NF_TEST_ENTRY(ctrl_parse_server_messages)
    NF_TEST_ENTRY(ctrl_parse_ignores_unknown_fields)
    NF_TEST_ENTRY(ctrl_parse_rejects_bad_json)
    NF_TEST_ENTRY(ctrl_parse_rejects_duplicate_keys)
    NF_TEST_ENTRY(ctrl_parse_rejects_bad_type)
    NF_TEST_ENTRY(ctrl_parse_rejects_bad_hello_version)
    NF_TEST_ENTRY(ctrl_parse_rejects_bad_quality)
    NF_TEST_ENTRY(ctrl_parse_rejects_bad_style)
    NF_TEST_ENTRY(ctrl_parse_rejects_missing_server_fields)
    NF_TEST_ENTRY(ctrl_parse_truncates_long_error_message)
    NF_TEST_ENTRY(ctrl_parse_checks_arguments)
    NF_TEST_ENTRY(ctrl_format_exact_output)
    NF_TEST_ENTRY(ctrl_format_welcome_reads_back)
    NF_TEST_ENTRY(ctrl_format_round_trips_through_parser)
    NF_TEST_ENTRY(ctrl_format_escapes_strings)
    NF_TEST_ENTRY(ctrl_format_replaces_invalid_utf8)
    NF_TEST_ENTRY(ctrl_format_range_at_every_cap)
    NF_TEST_ENTRY(ctrl_format_checks_arguments)
)
/* clang-format on */
