/*
 * control.h - protocol v1 control messages: small JSON text messages.
 *
 * Client -> server: hello, set, reset. Server -> client: welcome, state,
 * error. Unknown fields are ignored; an unknown "type" or a bad value is an
 * error. Parsing uses jansson (it allocates internally and frees before
 * returning); formatting writes into a caller's buffer. See PROTOCOL.md.
 */
#ifndef NF_CONTROL_H
#define NF_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#define NF_CTRL_STYLE_MAX  64  /* Bytes, including the terminating NUL. */
#define NF_CTRL_TEXT_MAX   256 /* Bytes, including the terminating NUL. */
#define NF_CTRL_MAX_STYLES 16

enum nf_ctrl_type {
    NF_CTRL_HELLO = 1, /* client: {"type":"hello","version":1,...} */
    NF_CTRL_SET,       /* client: {"type":"set","style":..,"quality":..} */
    NF_CTRL_RESET,     /* client: {"type":"reset"} */
    NF_CTRL_WELCOME,   /* server */
    NF_CTRL_STATE,     /* server: current settings after hello/set/reset */
    NF_CTRL_ERROR,     /* server */
};

#define NF_CTRL_MAX_PARAMS     16
#define NF_CTRL_PARAM_NAME_MAX 32 /* Bytes, including the NUL. */

/* One drift-correction parameter: "correction": {"name": value, ...}. */
struct nf_ctrl_param {
    char name[NF_CTRL_PARAM_NAME_MAX]; /* [a-z0-9_], not empty. */
    double value;                      /* Finite. */
};

/* A parsed control message. Fields not present are left as "absent". */
struct nf_ctrl_msg {
    int type;                      /* enum nf_ctrl_type */
    int version;                   /* hello, welcome: protocol version */
    char style[NF_CTRL_STYLE_MAX]; /* hello, set, state: "" when absent */
    int quality;                   /* hello, set, state: 1..100, 0 absent */
    int scale8;                    /* hello, set, welcome, state: 8*scale */
    /* hello, set: the "correction" object, in message order. The names are
     * not checked here: the server knows which exist (kernels/temporal.h). */
    struct nf_ctrl_param params[NF_CTRL_MAX_PARAMS];
    int n_params;
    /* welcome only: */
    char session[NF_CTRL_STYLE_MAX];
    char backend[NF_CTRL_STYLE_MAX];
    /* error only: */
    char code[NF_CTRL_STYLE_MAX];
    char message[NF_CTRL_TEXT_MAX];
};

/*
 * Parses one control message of len bytes (not NUL-terminated). Returns 0
 * and fills *msg, or NF_ECTRL_JSON (not a JSON object, or a duplicate key),
 * NF_ECTRL_TYPE (missing or unknown "type"), NF_ECTRL_FIELD (a known field
 * with a bad type or value, e.g. quality 0 or 101, a style longer than
 * NF_CTRL_STYLE_MAX-1 or outside [A-Za-z0-9_.-], a "scale" that is not one
 * of 0.125, 0.25, ... 1 (k/8), a required field missing),
 * NF_ECTRL_VERSION (hello whose version is not 1), NF_EINVAL (msg NULL, or
 * buf NULL with len > 0). On failure *msg is all zero. Accepts both client
 * and server message types. A hello may also carry its quality as
 * "options":{"quality":N}; a top-level "quality" wins. An error's message
 * is truncated to NF_CTRL_TEXT_MAX-1 bytes at a UTF-8 character boundary.
 * Any thread.
 */
int nf_ctrl_parse(const char *buf, size_t len, struct nf_ctrl_msg *msg);

/* What the server tells a new session. */
struct nf_ctrl_welcome {
    const char *session;                    /* Session id. */
    const char *backend;                    /* "cpu", "cuda". */
    const char *style;                      /* Current style. */
    const char *styles[NF_CTRL_MAX_STYLES]; /* Available styles. */
    int n_styles;
    int cache_frames; /* K of the current model. */
    int quality;      /* Output JPEG quality. */
    int scale8;       /* Model scale in eighths; 0 leaves "scale" out. */
    /* Limits. */
    uint32_t max_message_bytes;
    uint32_t max_width;
    uint32_t max_height;
    uint32_t idle_timeout_s;
};

/*
 * Formatters: write one NUL-terminated JSON message into buf (cap bytes).
 * Return its length without the NUL, NF_ERANGE if it does not fit (buf is
 * then "" when cap > 0; nothing is written past cap), or NF_EINVAL for a
 * NULL argument that is required (welcome's strings, state's style, error's
 * code; error's message may be NULL). Strings are JSON-escaped, and invalid
 * UTF-8 is replaced by U+FFFD. Values are not otherwise validated. No
 * allocation. Any thread.
 */
int nf_ctrl_format_welcome(char *buf, size_t cap,
                           const struct nf_ctrl_welcome *w);
int nf_ctrl_format_state(char *buf, size_t cap, const char *style, int quality);
/*
 * The full state: as nf_ctrl_format_state() plus "drift" (levels), "scale"
 * (scale8 / 8) and the session's "correction" parameters as an object of
 * numbers.
 */
int nf_ctrl_format_state_with(char *buf, size_t cap, const char *style,
                              int quality, float drift, int scale8,
                              const struct nf_ctrl_param *params, int n_params);
int nf_ctrl_format_error(char *buf, size_t cap, const char *code,
                         const char *message);
/*
 * Client side: hello/set/reset. style NULL or "" and quality 0 are absent
 * (left out of the message).
 */
int nf_ctrl_format_hello(char *buf, size_t cap, const char *style, int quality);
int nf_ctrl_format_set(char *buf, size_t cap, const char *style, int quality);
/* A hello that also asks for a model scale of scale8 / 8 (0: absent). */
int nf_ctrl_format_hello_scaled(char *buf, size_t cap, const char *style,
                                int quality, int scale8);
int nf_ctrl_format_reset(char *buf, size_t cap);

#endif /* NF_CONTROL_H */
