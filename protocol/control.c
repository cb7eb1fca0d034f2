/*
 * control.c - parse and format protocol v1 control messages (JSON text).
 *
 * Parsing uses jansson, which allocates while it parses; every document is
 * freed before nf_ctrl_parse() returns, so nothing outlives the call.
 * Formatting is hand-written into the caller's buffer: no allocation, exact
 * key order, and a bounds check on every byte. The messages and their fields
 * are specified in PROTOCOL.md; the rules per field are in the parse_*
 * functions below.
 */
#include "control.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <math.h>

#include "error.h"
#include "wire.h"

/* ---- Parsing ------------------------------------------------------------ */

static const struct {
    const char *name;
    int type;
} ctrl_types[] = {
    {"hello", NF_CTRL_HELLO}, {"set", NF_CTRL_SET},
    {"reset", NF_CTRL_RESET}, {"welcome", NF_CTRL_WELCOME},
    {"state", NF_CTRL_STATE}, {"error", NF_CTRL_ERROR},
};

/* Returns the enum nf_ctrl_type for a "type" value, or 0 if unknown. */
static int type_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof ctrl_types / sizeof ctrl_types[0]; i++) {
        if (strcmp(name, ctrl_types[i].name) == 0)
            return ctrl_types[i].type;
    }
    return 0;
}

/* A style name is 1..NF_CTRL_STYLE_MAX-1 bytes of [A-Za-z0-9_.-]. */
static int is_style_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static int is_style_name(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_style_char(s[i]))
            return 0;
    }
    return 1;
}

/*
 * Copies the string member key of obj into dst (cap bytes). An absent member
 * leaves dst "" and is an error only when required. The value must be a
 * non-empty string shorter than cap, and a style name when style is set.
 * Returns 0 or NF_ECTRL_FIELD.
 */
static int get_name(const json_t *obj, const char *key, char *dst, size_t cap,
                    int required, int style)
{
    const json_t *v = json_object_get(obj, key);
    const char *s;
    size_t len;

    if (v == NULL)
        return required ? NF_ECTRL_FIELD : 0;
    if (!json_is_string(v))
        return NF_ECTRL_FIELD;
    s = json_string_value(v);
    len = json_string_length(v);
    if (len == 0 || len >= cap || (style && !is_style_name(s, len)))
        return NF_ECTRL_FIELD;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

/*
 * Copies the string member key of obj into dst (cap > 0 bytes), truncated
 * to cap-1 bytes at a UTF-8 character boundary (jansson has already checked
 * that the string is valid UTF-8 without NUL bytes). Returns 0 or
 * NF_ECTRL_FIELD when the member is missing or not a string.
 */
static int get_text(const json_t *obj, const char *key, char *dst, size_t cap)
{
    const json_t *v = json_object_get(obj, key);
    const char *s;
    size_t len;

    if (!json_is_string(v))
        return NF_ECTRL_FIELD;
    s = json_string_value(v);
    len = json_string_length(v);
    if (len >= cap) {
        /* Back up over continuation bytes of a character cut in two. */
        len = cap - 1;
        while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
            len--;
    }
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

/* Reads an optional "quality": an integer 1..100. Absent leaves *q as is. */
static int get_quality(const json_t *obj, int *q)
{
    const json_t *v = json_object_get(obj, "quality");
    json_int_t n;

    if (v == NULL)
        return 0;
    if (!json_is_integer(v))
        return NF_ECTRL_FIELD;
    n = json_integer_value(v);
    if (n < 1 || n > 100)
        return NF_ECTRL_FIELD;
    *q = (int)n;
    return 0;
}

/*
 * Reads an optional "scale": a number k/8 with k in 1..8 (0.5, 0.75, 1;
 * binary fractions, so the JSON text reads back exactly). Absent leaves
 * *scale8 as is.
 */
static int get_scale(const json_t *obj, int *scale8)
{
    const json_t *v = json_object_get(obj, "scale");
    double e;

    if (v == NULL)
        return 0;
    if (!json_is_number(v))
        return NF_ECTRL_FIELD;
    e = json_number_value(v) * 8.0;
    if (!(e >= 1.0 && e <= 8.0) || e != floor(e))
        return NF_ECTRL_FIELD;
    *scale8 = (int)e;
    return 0;
}

/*
 * Reads the required "version": an integer. Returns its value (clamped to
 * 0 when it does not fit a positive int, which no version can equal) or
 * NF_ECTRL_FIELD when it is missing or not an integer.
 */
static int get_version(const json_t *obj)
{
    const json_t *v = json_object_get(obj, "version");
    json_int_t n;

    if (!json_is_integer(v))
        return NF_ECTRL_FIELD;
    n = json_integer_value(v);
    return n >= 1 && n <= INT_MAX ? (int)n : 0;
}

/*
 * Reads an optional "correction": an object of at most NF_CTRL_MAX_PARAMS
 * finite numbers whose names are [a-z0-9_] and shorter than
 * NF_CTRL_PARAM_NAME_MAX.
 */
static int get_params(const json_t *obj, struct nf_ctrl_msg *msg)
{
    const json_t *c = json_object_get(obj, "correction");
    const char *key;
    json_t *v;

    if (c == NULL)
        return 0;
    if (!json_is_object(c) || json_object_size(c) > NF_CTRL_MAX_PARAMS)
        return NF_ECTRL_FIELD;
    json_object_foreach((json_t *)c, key, v)
    {
        struct nf_ctrl_param *p = &msg->params[msg->n_params];
        size_t n = strlen(key);
        double d;
        if (n == 0 || n >= sizeof p->name || !json_is_number(v))
            return NF_ECTRL_FIELD;
        for (size_t i = 0; i < n; i++)
            if (!((key[i] >= 'a' && key[i] <= 'z') ||
                  (key[i] >= '0' && key[i] <= '9') || key[i] == '_'))
                return NF_ECTRL_FIELD;
        d = json_number_value(v);
        if (!isfinite(d))
            return NF_ECTRL_FIELD;
        memcpy(p->name, key, n + 1);
        p->value = d;
        msg->n_params++;
    }
    return 0;
}

/*
 * hello: "version" (required, must be 1), optional "style" and "quality",
 * and optional "options", an object whose "quality" is accepted as an
 * alternative spelling. The version is checked first, so that a client of
 * another version hears "bad_version" even if its other fields follow other
 * rules. A top-level "quality" wins over options.quality.
 */
static int parse_hello(const json_t *root, struct nf_ctrl_msg *msg)
{
    const json_t *opt = json_object_get(root, "options");
    int rc = get_version(root);

    if (rc < 0)
        return rc;
    if (rc != NF_WIRE_VERSION)
        return NF_ECTRL_VERSION;
    msg->version = rc;
    if (opt != NULL) {
        if (!json_is_object(opt))
            return NF_ECTRL_FIELD;
        rc = get_quality(opt, &msg->quality);
        if (rc < 0)
            return rc;
    }
    rc = get_name(root, "style", msg->style, sizeof msg->style, 0, 1);
    if (rc == 0)
        rc = get_quality(root, &msg->quality);
    if (rc == 0)
        rc = get_scale(root, &msg->scale8);
    if (rc == 0)
        rc = get_params(root, msg);
    return rc;
}

/*
 * set: optional "style", "quality" and "correction"; a set with none is
 * valid.
 */
static int parse_set(const json_t *root, struct nf_ctrl_msg *msg)
{
    int rc = get_name(root, "style", msg->style, sizeof msg->style, 0, 1);

    if (rc == 0)
        rc = get_quality(root, &msg->quality);
    if (rc == 0)
        rc = get_scale(root, &msg->scale8);
    if (rc == 0)
        rc = get_params(root, msg);
    return rc;
}

/*
 * welcome: required "version" (any positive integer; the client decides
 * what to do with a version it does not speak), "session", "backend" and
 * "style", optional "quality" and "scale". Styles, cache_frames and limits are
 * not stored in struct nf_ctrl_msg and are ignored here.
 */
static int parse_welcome(const json_t *root, struct nf_ctrl_msg *msg)
{
    int rc = get_version(root);

    if (rc < 0)
        return rc;
    if (rc == 0)
        return NF_ECTRL_FIELD;
    msg->version = rc;
    rc = get_name(root, "session", msg->session, sizeof msg->session, 1, 0);
    if (rc == 0)
        rc = get_name(root, "backend", msg->backend, sizeof msg->backend, 1, 0);
    if (rc == 0)
        rc = get_name(root, "style", msg->style, sizeof msg->style, 1, 1);
    if (rc == 0)
        rc = get_quality(root, &msg->quality);
    if (rc == 0)
        rc = get_scale(root, &msg->scale8);
    return rc;
}

/* state: required "style" and "quality", optional "scale". */
static int parse_state(const json_t *root, struct nf_ctrl_msg *msg)
{
    int rc = get_name(root, "style", msg->style, sizeof msg->style, 1, 1);

    if (rc == 0)
        rc = get_quality(root, &msg->quality);
    if (rc == 0)
        rc = get_scale(root, &msg->scale8);
    if (rc == 0 && msg->quality == 0)
        rc = NF_ECTRL_FIELD;
    return rc;
}

/* error: required "code" (a short name) and "message" (truncated text). */
static int parse_error(const json_t *root, struct nf_ctrl_msg *msg)
{
    int rc = get_name(root, "code", msg->code, sizeof msg->code, 1, 0);

    if (rc == 0)
        rc = get_text(root, "message", msg->message, sizeof msg->message);
    return rc;
}

static int parse_object(const json_t *root, struct nf_ctrl_msg *msg)
{
    const json_t *type = json_object_get(root, "type");

    if (!json_is_string(type))
        return NF_ECTRL_TYPE;
    msg->type = type_from_name(json_string_value(type));
    switch (msg->type) {
    case NF_CTRL_HELLO:
        return parse_hello(root, msg);
    case NF_CTRL_SET:
        return parse_set(root, msg);
    case NF_CTRL_RESET:
        return 0;
    case NF_CTRL_WELCOME:
        return parse_welcome(root, msg);
    case NF_CTRL_STATE:
        return parse_state(root, msg);
    case NF_CTRL_ERROR:
        return parse_error(root, msg);
    default:
        return NF_ECTRL_TYPE;
    }
}

/*
 * On failure *msg is left all zero (type 0, every field absent), so that a
 * caller that ignores the return value still sees nothing to apply.
 */
int nf_ctrl_parse(const char *buf, size_t len, struct nf_ctrl_msg *msg)
{
    json_error_t jerr;
    json_t *root;
    int rc;

    if (msg == NULL || (buf == NULL && len > 0))
        return NF_EINVAL;
    memset(msg, 0, sizeof *msg);
    if (len == 0)
        return NF_ECTRL_JSON;
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return NF_ECTRL_JSON;
    rc = json_is_object(root) ? parse_object(root, msg) : NF_ECTRL_JSON;
    json_decref(root);
    if (rc < 0)
        memset(msg, 0, sizeof *msg);
    return rc;
}

/* ---- Formatting --------------------------------------------------------- */

/*
 * A bounded output buffer. len counts every byte the message needs, even
 * past cap, so that finish() can tell that it did not fit; bytes are stored
 * only while they fit in cap, and finish() needs one more for the NUL.
 */
struct out {
    char *buf;
    size_t cap;
    size_t len;
};

static void put_mem(struct out *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t room = o->cap - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len = n > SIZE_MAX - o->len ? SIZE_MAX : o->len + n;
}

static void put_lit(struct out *o, const char *s)
{
    put_mem(o, s, strlen(s));
}

static void put_int(struct out *o, long long v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", v);

    put_mem(o, tmp, (size_t)n);
}

/*
 * Returns the length of the valid UTF-8 character at s (NUL-terminated), or
 * 0 if s starts an invalid sequence: a stray continuation byte, an overlong
 * form, a surrogate, a code point above U+10FFFF or a truncated sequence.
 * It stops at the first bad byte, so it never reads past the NUL.
 */
static size_t utf8_char_len(const unsigned char *s)
{
    unsigned lo = 0x80, hi = 0xbf;
    size_t n;

    if (s[0] < 0x80)
        return 1;
    if (s[0] < 0xc2)
        return 0;
    if (s[0] < 0xe0) {
        n = 2;
    } else if (s[0] < 0xf0) {
        n = 3;
        lo = s[0] == 0xe0 ? 0xa0 : lo;
        hi = s[0] == 0xed ? 0x9f : hi;
    } else if (s[0] < 0xf5) {
        n = 4;
        lo = s[0] == 0xf0 ? 0x90 : lo;
        hi = s[0] == 0xf4 ? 0x8f : hi;
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    }
    return n;
}

/*
 * Writes s as a JSON string: quotes, backslashes and control characters
 * escaped, valid UTF-8 copied as is, and each byte of invalid UTF-8 replaced
 * by U+FFFD so that the message is always a valid WebSocket text frame.
 */
static void put_str(struct out *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;

    put_mem(o, "\"", 1);
    while (*p != '\0') {
        size_t n = utf8_char_len(p);
        char esc[6] = {'\\', 'u', '0', '0', 0, 0};

        if (n == 0) {
            put_lit(o, "\\ufffd");
            p++;
            continue;
        }
        if (*p == '"' || *p == '\\') {
            esc[1] = (char)*p;
            put_mem(o, esc, 2);
        } else if (*p == '\n' || *p == '\r' || *p == '\t') {
            esc[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
            put_mem(o, esc, 2);
        } else if (*p < 0x20) {
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 0xf];
            put_mem(o, esc, 6);
        } else {
            put_mem(o, (const char *)p, n);
        }
        p += n;
    }
    put_mem(o, "\"", 1);
}

/* NUL-terminates the message; returns its length or NF_ERANGE. */
static int finish(struct out *o)
{
    if (o->len >= o->cap || o->len > INT_MAX) {
        if (o->cap > 0)
            o->buf[0] = '\0';
        return NF_ERANGE;
    }
    o->buf[o->len] = '\0';
    return (int)o->len;
}

/*
 * Starts a message of the given type. Returns 0, or NF_EINVAL when buf is
 * NULL but cap claims room.
 */
static int start(struct out *o, char *buf, size_t cap, const char *type)
{
    if (buf == NULL && cap > 0)
        return NF_EINVAL;
    o->buf = buf;
    o->cap = cap;
    o->len = 0;
    put_lit(o, "{\"type\":\"");
    put_lit(o, type);
    put_lit(o, "\"");
    return 0;
}

/* Writes ,"style":... and ,"quality":... where present (hello, set). */
static void put_settings(struct out *o, const char *style, int quality)
{
    if (style != NULL && style[0] != '\0') {
        put_lit(o, ",\"style\":");
        put_str(o, style);
    }
    if (quality != 0) {
        put_lit(o, ",\"quality\":");
        put_int(o, quality);
    }
}

/* Writes a finite double in the shortest form that reads back the same. */
static void put_double(struct out *o, double v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%.9g", isfinite(v) ? v : 0.0);

    put_mem(o, tmp, (size_t)n);
}

static int welcome_valid(const struct nf_ctrl_welcome *w)
{
    if (w == NULL || w->session == NULL || w->backend == NULL ||
        w->style == NULL || w->n_styles < 0 || w->n_styles > NF_CTRL_MAX_STYLES)
        return 0;
    for (int i = 0; i < w->n_styles; i++) {
        if (w->styles[i] == NULL)
            return 0;
    }
    return 1;
}

int nf_ctrl_format_welcome(char *buf, size_t cap,
                           const struct nf_ctrl_welcome *w)
{
    struct out o;

    if (!welcome_valid(w) || start(&o, buf, cap, "welcome") < 0)
        return NF_EINVAL;
    put_lit(&o, ",\"version\":");
    put_int(&o, NF_WIRE_VERSION);
    put_lit(&o, ",\"session\":");
    put_str(&o, w->session);
    put_lit(&o, ",\"backend\":");
    put_str(&o, w->backend);
    put_lit(&o, ",\"style\":");
    put_str(&o, w->style);
    put_lit(&o, ",\"styles\":[");
    for (int i = 0; i < w->n_styles; i++) {
        put_lit(&o, i > 0 ? "," : "");
        put_str(&o, w->styles[i]);
    }
    put_lit(&o, "],\"cache_frames\":");
    put_int(&o, w->cache_frames);
    put_lit(&o, ",\"quality\":");
    put_int(&o, w->quality);
    if (w->scale8 != 0) {
        put_lit(&o, ",\"scale\":");
        put_double(&o, w->scale8 / 8.0);
    }
    put_lit(&o, ",\"limits\":{\"max_message_bytes\":");
    put_int(&o, w->max_message_bytes);
    put_lit(&o, ",\"max_width\":");
    put_int(&o, w->max_width);
    put_lit(&o, ",\"max_height\":");
    put_int(&o, w->max_height);
    put_lit(&o, ",\"idle_timeout_s\":");
    put_int(&o, w->idle_timeout_s);
    put_lit(&o, "}}");
    return finish(&o);
}

int nf_ctrl_format_state(char *buf, size_t cap, const char *style, int quality)
{
    return nf_ctrl_format_state_with(buf, cap, style, quality, 0.0f, 0, NULL,
                                     -1);
}

/* n_params < 0 leaves out "drift", "scale" and "correction" (the short
 * state); scale8 0 leaves out "scale". */
int nf_ctrl_format_state_with(char *buf, size_t cap, const char *style,
                              int quality, float drift, int scale8,
                              const struct nf_ctrl_param *params, int n_params)
{
    struct out o;

    if (style == NULL || (n_params > 0 && params == NULL) ||
        start(&o, buf, cap, "state") < 0)
        return NF_EINVAL;
    put_lit(&o, ",\"style\":");
    put_str(&o, style);
    put_lit(&o, ",\"quality\":");
    put_int(&o, quality);
    if (n_params >= 0) {
        put_lit(&o, ",\"drift\":");
        put_double(&o, drift);
        if (scale8 != 0) {
            put_lit(&o, ",\"scale\":");
            put_double(&o, scale8 / 8.0);
        }
        put_lit(&o, ",\"correction\":{");
        for (int i = 0; i < n_params; i++) {
            if (i)
                put_lit(&o, ",");
            put_str(&o, params[i].name);
            put_lit(&o, ":");
            put_double(&o, params[i].value);
        }
        put_lit(&o, "}");
    }
    put_lit(&o, "}");
    return finish(&o);
}

int nf_ctrl_format_error(char *buf, size_t cap, const char *code,
                         const char *message)
{
    struct out o;

    if (code == NULL || start(&o, buf, cap, "error") < 0)
        return NF_EINVAL;
    put_lit(&o, ",\"code\":");
    put_str(&o, code);
    put_lit(&o, ",\"message\":");
    put_str(&o, message != NULL ? message : "");
    put_lit(&o, "}");
    return finish(&o);
}

int nf_ctrl_format_hello(char *buf, size_t cap, const char *style, int quality)
{
    return nf_ctrl_format_hello_scaled(buf, cap, style, quality, 0);
}

int nf_ctrl_format_hello_scaled(char *buf, size_t cap, const char *style,
                                int quality, int scale8)
{
    struct out o;

    if (start(&o, buf, cap, "hello") < 0)
        return NF_EINVAL;
    put_lit(&o, ",\"version\":");
    put_int(&o, NF_WIRE_VERSION);
    put_settings(&o, style, quality);
    if (scale8 != 0) {
        put_lit(&o, ",\"scale\":");
        put_double(&o, scale8 / 8.0);
    }
    put_lit(&o, "}");
    return finish(&o);
}

int nf_ctrl_format_set(char *buf, size_t cap, const char *style, int quality)
{
    struct out o;

    if (start(&o, buf, cap, "set") < 0)
        return NF_EINVAL;
    put_settings(&o, style, quality);
    put_lit(&o, "}");
    return finish(&o);
}

int nf_ctrl_format_reset(char *buf, size_t cap)
{
    struct out o;

    if (start(&o, buf, cap, "reset") < 0)
        return NF_EINVAL;
    put_lit(&o, "}");
    return finish(&o);
}
