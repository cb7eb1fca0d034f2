/*
 * fuzz-control.c - libFuzzer harness for the control-message parser and
 * formatters (protocol/control.h).
 *
 * The input is one WebSocket text message (the server reads at most 4096
 * bytes of one; run with -max_len=4096). The harness parses it with
 * nf_ctrl_parse() as the server and the clients do and checks:
 *
 *   - on failure the code is a documented one and *msg is all zero;
 *   - on success every field obeys its documented rule (type, style
 *     characters, quality 0..100, NUL-terminated strings, parameter names
 *     and finite values), and the message formats back with the matching
 *     nf_ctrl_format_*() into JSON that parses to the same values.
 *
 * It then uses the raw input as an error message text: nf_ctrl_format_error()
 * must produce JSON that nf_ctrl_parse() accepts (invalid UTF-8 and control
 * characters escaped) and, given a smaller buffer, must return NF_ERANGE and
 * never write past it (each buffer is a malloc of exactly its size, so
 * AddressSanitizer sees one byte too many).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "error.h"
#include "fuzz-check.h"

#define OUT_CAP 8192 /* Enough for any message a parsed one formats to. */

static int is_ctrl_error(int rc)
{
    return rc == NF_ECTRL_JSON || rc == NF_ECTRL_TYPE || rc == NF_ECTRL_FIELD ||
           rc == NF_ECTRL_VERSION;
}

static int is_zero(const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0)
            return 0;
    }
    return 1;
}

/* "" or 1..NF_CTRL_STYLE_MAX-1 of [A-Za-z0-9_.-]. */
static int is_style(const char *s)
{
    size_t n = strlen(s);

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return n < NF_CTRL_STYLE_MAX;
}

static int is_param_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_'))
            return 0;
    }
    return 1;
}

/* Every string field is NUL-terminated inside its array. */
static void check_strings(const struct nf_ctrl_msg *m)
{
    NF_FUZZ_CHECK(memchr(m->style, 0, sizeof m->style) != NULL);
    NF_FUZZ_CHECK(memchr(m->session, 0, sizeof m->session) != NULL);
    NF_FUZZ_CHECK(memchr(m->backend, 0, sizeof m->backend) != NULL);
    NF_FUZZ_CHECK(memchr(m->code, 0, sizeof m->code) != NULL);
    NF_FUZZ_CHECK(memchr(m->message, 0, sizeof m->message) != NULL);
    for (int i = 0; i < m->n_params; i++)
        NF_FUZZ_CHECK(memchr(m->params[i].name, 0, NF_CTRL_PARAM_NAME_MAX));
}

static void check_fields(const struct nf_ctrl_msg *m)
{
    NF_FUZZ_CHECK(m->type >= NF_CTRL_HELLO && m->type <= NF_CTRL_ERROR);
    NF_FUZZ_CHECK(m->quality >= 0 && m->quality <= 100);
    NF_FUZZ_CHECK(m->n_params >= 0 && m->n_params <= NF_CTRL_MAX_PARAMS);
    check_strings(m);
    NF_FUZZ_CHECK(is_style(m->style));
    for (int i = 0; i < m->n_params; i++) {
        NF_FUZZ_CHECK(is_param_name(m->params[i].name));
        NF_FUZZ_CHECK(isfinite(m->params[i].value));
    }
    if (m->type == NF_CTRL_HELLO)
        NF_FUZZ_CHECK(m->version == 1);
    if (m->type == NF_CTRL_WELCOME)
        NF_FUZZ_CHECK(m->version >= 1 && m->session[0] && m->backend[0] &&
                      m->style[0]);
    if (m->type == NF_CTRL_STATE)
        NF_FUZZ_CHECK(m->style[0] != '\0' && m->quality >= 1);
    if (m->type == NF_CTRL_ERROR)
        NF_FUZZ_CHECK(m->code[0] != '\0');
}

/* Formats m with the formatter of its type into out; returns the length. */
static int format_back(const struct nf_ctrl_msg *m, char *out, size_t cap)
{
    struct nf_ctrl_welcome w = {0};

    switch (m->type) {
    case NF_CTRL_HELLO:
        return nf_ctrl_format_hello(out, cap, m->style, m->quality);
    case NF_CTRL_SET:
        return nf_ctrl_format_set(out, cap, m->style, m->quality);
    case NF_CTRL_RESET:
        return nf_ctrl_format_reset(out, cap);
    case NF_CTRL_WELCOME:
        w.session = m->session;
        w.backend = m->backend;
        w.style = m->style;
        /* The formatter writes "quality" always; 0 would not parse. */
        w.quality = m->quality ? m->quality : 80;
        return nf_ctrl_format_welcome(out, cap, &w);
    case NF_CTRL_STATE:
        return nf_ctrl_format_state_with(out, cap, m->style, m->quality, 0.5f,
                                         m->scale8, m->params, m->n_params);
    default:
        return nf_ctrl_format_error(out, cap, m->code, m->message);
    }
}

/* The fields each type carries survive format + parse unchanged. */
static void check_round_trip(const struct nf_ctrl_msg *m)
{
    static char out[OUT_CAP];
    struct nf_ctrl_msg b;
    int n = format_back(m, out, sizeof out);

    NF_FUZZ_CHECK(n > 0 && (size_t)n < sizeof out);
    NF_FUZZ_CHECK(nf_ctrl_parse(out, (size_t)n, &b) == 0);
    NF_FUZZ_CHECK(b.type == m->type);
    NF_FUZZ_CHECK(strcmp(b.style, m->style) == 0);
    if (m->type == NF_CTRL_WELCOME) {
        NF_FUZZ_CHECK(strcmp(b.session, m->session) == 0);
        NF_FUZZ_CHECK(strcmp(b.backend, m->backend) == 0);
    } else if (m->type == NF_CTRL_ERROR) {
        NF_FUZZ_CHECK(strcmp(b.code, m->code) == 0);
        NF_FUZZ_CHECK(strcmp(b.message, m->message) == 0);
    } else if (m->type != NF_CTRL_RESET) {
        NF_FUZZ_CHECK(b.quality == m->quality);
    }
}

/* Formats into a malloc of exactly cap bytes and compares with full. */
static void check_format_cap(const char *text, size_t cap, const char *full,
                             int n)
{
    char *buf = malloc(cap);
    int rc;

    NF_FUZZ_CHECK(buf != NULL);
    rc = nf_ctrl_format_error(buf, cap, "fuzz", text);
    if (cap <= (size_t)n)
        NF_FUZZ_CHECK(rc == NF_ERANGE && buf[0] == '\0');
    else
        NF_FUZZ_CHECK(rc == n && memcmp(buf, full, (size_t)n + 1) == 0);
    free(buf);
}

/*
 * Formats text (any bytes, NUL-terminated) as an error message, then again
 * into buffers of sizes around the edges: the small ones, the middle, and
 * one byte short, exact and one byte more.
 */
static void check_format_error(const char *text)
{
    static char out[OUT_CAP * 8];
    struct nf_ctrl_msg m;
    int n = nf_ctrl_format_error(out, sizeof out, "fuzz", text);

    NF_FUZZ_CHECK(n > 0 && (size_t)n < sizeof out);
    NF_FUZZ_CHECK(strlen(out) == (size_t)n);
    NF_FUZZ_CHECK(nf_ctrl_parse(out, (size_t)n, &m) == 0);
    NF_FUZZ_CHECK(m.type == NF_CTRL_ERROR && strcmp(m.code, "fuzz") == 0);
    NF_FUZZ_CHECK(nf_ctrl_format_error(NULL, 0, "fuzz", text) == NF_ERANGE);
    for (size_t cap = 1; cap <= 8; cap++)
        check_format_cap(text, cap, out, n);
    check_format_cap(text, (size_t)n / 2 + 1, out, n);
    check_format_cap(text, (size_t)n, out, n);
    check_format_cap(text, (size_t)n + 1, out, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nf_ctrl_msg m;
    char *text;
    int rc = nf_ctrl_parse((const char *)data, size, &m);

    if (rc < 0) {
        NF_FUZZ_CHECK(is_ctrl_error(rc));
        NF_FUZZ_CHECK(is_zero(&m, sizeof m));
    } else {
        NF_FUZZ_CHECK(rc == 0);
        check_fields(&m);
        check_round_trip(&m);
    }

    /* Up to 6 output bytes per input byte must fit in check_format_error. */
    if (size > OUT_CAP)
        return 0;
    text = malloc(size + 1);
    NF_FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    check_format_error(text);
    free(text);
    return 0;
}
