/*
 * nf-probe.c - sends a nextframe server one chosen bad input and reports
 * how the server closed the connection.
 *
 * The integration tests use it to prove that each kind of abuse ends that
 * session with its documented close code (NF_CLOSE_MAP in protocol/wire.h)
 * while the server keeps serving everyone else. It prints exactly one line
 * on stdout, "close CODE REASON", when the server closes (1006 when the
 * connection drops without a close frame or the upgrade is refused), and
 * exits 0; when nothing closes within --timeout it prints "timeout ..." and
 * exits 2, as it does for every other failure. Diagnostics go to stderr.
 *
 * Every input is built from a real 64x48 JPEG encoded here with TurboJPEG
 * and a FRAME_IN header from nf_wire_encode_header(), then damaged in one
 * precise way, so each mode trips exactly one check of the server.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "cli.h"
#include "error.h"
#include "jpeg.h"
#include "mono-clock.h"
#include "wire.h"
#include "ws-client.h"

#define BASE_W           64
#define BASE_H           48
#define CHUNK            (64u << 10) /* Fragment size for big messages. */
#define DEFAULT_OVERSIZE (64u << 20) /* --send oversize default. */
#define DEFAULT_GARBAGE  1024u
#define TICK_US          50000

/* The modes; "file" takes the path as the second positional argument. */
#define MODE_MAP(XX)                                                           \
    XX(GARBAGE, "garbage",                                                     \
       "random bytes as a binary message (--bytes, "                           \
       "default 1024)")                                                        \
    XX(TEXT, "text", "the text message \"hello there\" (not JSON)")            \
    XX(BADJSON, "badjson", "a text message of broken JSON")                    \
    XX(MAGIC, "magic", "a frame whose header has the wrong magic")             \
    XX(VERSION, "version", "a frame of protocol version 9")                    \
    XX(HEADERLEN, "headerlen", "a frame whose header_len lies (48)")           \
    XX(SHORT, "short", "payload 100 bytes shorter than payload_len says")      \
    XX(LONG, "long", "payload 100 bytes longer than payload_len says")         \
    XX(FORMAT, "format", "a frame of payload format 7")                        \
    XX(OVERSIZE, "oversize",                                                   \
       "one binary message of --bytes bytes (default "                         \
       "64 MiB), in 64 KiB fragments")                                         \
    XX(BOMB, "bomb", "a small valid JPEG whose SOF0 declares 60000x60000")     \
    XX(TRUNCATED, "truncated", "a 64x48 JPEG cut in half")                     \
    XX(DIMS_MISMATCH, "dims-mismatch", "header says 32x32, JPEG is 64x48")     \
    XX(FILE, "file", "FILE's bytes as the JPEG, header from its real size")    \
    XX(NONE, "none", "nothing: wait for the server to close")

enum mode {
#define MODE_ENUM(name, str, help) MODE_##name,
    MODE_MAP(MODE_ENUM)
#undef MODE_ENUM
        MODE_COUNT
};

static const char *const mode_names[] = {
#define MODE_NAME(name, str, help) str,
    MODE_MAP(MODE_NAME)
#undef MODE_NAME
};

enum phase {
    PHASE_CONNECTING,
    PHASE_WELCOME,
    PHASE_FIRST_FRAMES, /* --frames-first: one valid frame at a time. */
    PHASE_ABUSE,        /* Sending the bad input (maybe in fragments). */
    PHASE_WAITING,      /* Sent; waiting for the close. */
    PHASE_DONE,
};

/* The probe; used only by the service loop's thread. */
struct probe {
    /* Options. */
    const char *url;
    const char *file;
    const char *subprotocol;
    const char *origin;
    enum mode mode;
    uint64_t bytes;
    int frames_first;
    int wait_welcome;
    double timeout_s;
    int verbose;
    /* State. */
    struct nf_ws_client *ws;
    enum phase phase;
    uint64_t deadline_us;
    int timed_out;
    int replies;
    int awaiting_reply;
    /*
     * The valid frame for --frames-first: NF_WS_PRE + header + JPEG, rebuilt
     * from base before each send because lws masks what it sends in place.
     */
    uint8_t *frame;
    uint8_t *base; /* The 64x48 JPEG. */
    size_t frame_len;
    /* The bad message: NF_WS_PRE + msg_len bytes (first chunk only for
     * oversize, whose remaining bytes are zeros sent from the same). */
    uint8_t *msg;
    size_t msg_len;  /* Bytes of the whole message. */
    size_t msg_sent; /* Bytes sent so far. */
    int msg_text;
    struct nf_ws_end end;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nf-probe URL --send MODE [FILE] [options]\n"
            "\n"
            "Connects to a nextframe server (ws://HOST:PORT/v1/stream), sends\n"
            "one bad input and prints how the server closed the connection:\n"
            "one line \"close CODE REASON\" on stdout, exit status 0. CODE is\n"
            "1006 when the connection dropped without a close frame or the\n"
            "upgrade was refused. When nothing closes within --timeout it\n"
            "prints \"timeout ...\" and exits 2 (so does any other failure).\n"
            "\n"
            "modes:\n");
    for (int m = 0; m < MODE_COUNT; m++) {
        static const char *const help[] = {
#define MODE_HELP(name, str, h) h,
            MODE_MAP(MODE_HELP)
#undef MODE_HELP
        };
        fprintf(f, "  %-14s %s\n", mode_names[m], help[m]);
    }
    fprintf(f,
            "\n"
            "options:\n"
            "  --send MODE        what to send (default none)\n"
            "  --bytes N          size for garbage and oversize\n"
            "  --frames-first N   first send N valid 64x48 frames, one at a\n"
            "                     time, each waiting for its reply\n"
            "  --timeout S        seconds to wait for the close (default 10)\n"
            "  --no-welcome       do not wait for the welcome before sending\n"
            "  --subprotocol X    offer subprotocol X (default nextframe.v1)\n"
            "  --no-subprotocol   offer no subprotocol\n"
            "  --origin O         send an Origin header\n"
            "  -v, --verbose      log what is sent and received to stderr\n"
            "  -h, --help         this text\n");
}

static void logv(const struct probe *p, const char *fmt, ...)
{
    va_list ap;

    if (!p->verbose)
        return;
    fputs("nf-probe: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- Building the inputs ------------------------------------------------ */

/*
 * Encodes the base image: a gradient with a fixed pseudo-random texture, so
 * that most of the JPEG is scan data and half of it still has whole
 * headers. Returns the JPEG size or a negative NF_E* code.
 */
static int base_jpeg(struct nf_jpeg *j, int w, int h, uint8_t *dst, size_t cap)
{
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    uint32_t seed = 12345;
    int n;

    if (rgb == NULL)
        return NF_ENOMEM;
    for (int i = 0; i < w * h * 3; i++) {
        int x = (i / 3) % w, y = (i / 3) / w;

        seed = seed * 1103515245u + 12345u;
        rgb[i] = (uint8_t)((x * 4 + y * 2 + (i % 3) * 40) / 2 +
                           (int)((seed >> 16) & 63));
    }
    n = nf_jpeg_encode_rgb(j, rgb, w, h, w * 3, 90, dst, cap);
    free(rgb);
    return n;
}

/* Offset of the SOF0 segment in a JPEG, or -1. */
static long find_sof0(const uint8_t *p, size_t len)
{
    size_t i = 2;

    while (i + 4 <= len && p[i] == 0xff) {
        if (p[i + 1] == 0xc0)
            return (long)i;
        i += 2 + (((size_t)p[i + 2] << 8) | p[i + 3]);
    }
    return -1;
}

/*
 * Writes a FRAME_IN header for a w x h JPEG of payload_len bytes at dst.
 */
static void put_header(uint8_t *dst, uint32_t seq, int w, int h,
                       uint32_t payload_len)
{
    struct nf_frame_header hd = {0};

    hd.type = NF_MSG_FRAME_IN;
    hd.seq = seq;
    hd.capture_us = nf_mono_us();
    hd.width = (uint16_t)w;
    hd.height = (uint16_t)h;
    hd.format = NF_FORMAT_JPEG;
    hd.payload_len = payload_len;
    nf_wire_encode_header(&hd, dst, NF_WIRE_FRAME_IN_LEN);
}

/* Reads a whole file into a malloc'd buffer. */
static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;

    if (f == NULL)
        return NF_EIO;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0)
        goto fail;
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
        goto fail;
    fclose(f);
    *out = buf;
    *len = (size_t)n;
    return 0;

fail:
    free(buf);
    fclose(f);
    return NF_EIO;
}

/* Reads a JPEG's size with TurboJPEG directly (CMYK included). */
static void jpeg_size(const uint8_t *buf, size_t len, int *w, int *h)
{
    tjhandle tj = tjInitDecompress();
    int sub, cs;

    *w = *h = 0;
    if (tj != NULL) {
        if (tjDecompressHeader3(tj, buf, (unsigned long)len, w, h, &sub, &cs) !=
            0)
            *w = *h = 0;
        tjDestroy(tj);
    }
}

/* Allocates p->msg for a message of len bytes (with NF_WS_PRE). */
static uint8_t *alloc_msg(struct probe *p, size_t len)
{
    p->msg = calloc(1, NF_WS_PRE + len);
    p->msg_len = len;
    return p->msg != NULL ? p->msg + NF_WS_PRE : NULL;
}

/* The message of the modes that damage a valid frame. n >= 100. */
static int build_frame_abuse(struct probe *p, const uint8_t *jpg, int n,
                             uint32_t seq)
{
    uint8_t *m = alloc_msg(p, NF_WIRE_FRAME_IN_LEN + (size_t)n);

    if (m == NULL)
        return NF_ENOMEM;
    memcpy(m + NF_WIRE_FRAME_IN_LEN, jpg, (size_t)n);
    put_header(m, seq, BASE_W, BASE_H, (uint32_t)n);
    switch (p->mode) {
    case MODE_MAGIC:
        m[3] = 'X';
        break;
    case MODE_VERSION:
        m[4] = 9;
        break;
    case MODE_HEADERLEN:
        m[6] = 48; /* header_len, little-endian u16 at offset 6. */
        break;
    case MODE_SHORT:
        put_header(m, seq, BASE_W, BASE_H, (uint32_t)n + 100);
        break;
    case MODE_LONG:
        put_header(m, seq, BASE_W, BASE_H, (uint32_t)n - 100);
        break;
    case MODE_FORMAT:
        m[28] = 7;
        break;
    case MODE_TRUNCATED:
        p->msg_len = NF_WIRE_FRAME_IN_LEN + (size_t)n / 2;
        put_header(m, seq, BASE_W, BASE_H, (uint32_t)n / 2);
        break;
    case MODE_DIMS_MISMATCH:
        put_header(m, seq, 32, 32, (uint32_t)n);
        break;
    default:
        break;
    }
    return 0;
}

static int build_bomb(struct probe *p, struct nf_jpeg *j, uint32_t seq)
{
    uint8_t small[8192];
    uint8_t *m;
    int n = base_jpeg(j, 16, 16, small, sizeof(small));
    long sof;

    if (n < 0)
        return n;
    sof = find_sof0(small, (size_t)n);
    if (sof < 0)
        return NF_EJPEG;
    /* SOF0: FF C0, length(2), precision(1), height(2), width(2). */
    small[sof + 5] = small[sof + 7] = 60000 >> 8;
    small[sof + 6] = small[sof + 8] = 60000 & 0xff;
    m = alloc_msg(p, NF_WIRE_FRAME_IN_LEN + (size_t)n);
    if (m == NULL)
        return NF_ENOMEM;
    put_header(m, seq, 60000, 60000, (uint32_t)n);
    memcpy(m + NF_WIRE_FRAME_IN_LEN, small, (size_t)n);
    return 0;
}

static int build_file(struct probe *p, uint32_t seq)
{
    uint8_t *data = NULL, *m;
    size_t len = 0;
    int w, h;

    if (read_file(p->file, &data, &len) < 0) {
        fprintf(stderr, "nf-probe: %s: %s\n", p->file, strerror(errno));
        return NF_EIO;
    }
    jpeg_size(data, len, &w, &h);
    if (w <= 0 || h <= 0 || w > 65535 || h > 65535) {
        fprintf(stderr, "nf-probe: %s: size unreadable, header says 1x1\n",
                p->file);
        w = h = 1;
    }
    m = alloc_msg(p, NF_WIRE_FRAME_IN_LEN + len);
    if (m != NULL) {
        put_header(m, seq, w, h, (uint32_t)len);
        memcpy(m + NF_WIRE_FRAME_IN_LEN, data, len);
    }
    free(data);
    return m != NULL ? 0 : NF_ENOMEM;
}

/* Only the first fragment is stored; the rest of the message is zeros. */
static int build_oversize(struct probe *p, uint32_t seq)
{
    uint64_t total = p->bytes ? p->bytes : DEFAULT_OVERSIZE;
    uint64_t payload =
        total > NF_WIRE_FRAME_IN_LEN ? total - NF_WIRE_FRAME_IN_LEN : 0;
    uint8_t *m;

    if (total < NF_WIRE_FRAME_IN_LEN || total > (uint64_t)SIZE_MAX / 2)
        return NF_ERANGE;
    p->msg = calloc(1, NF_WS_PRE + CHUNK);
    if (p->msg == NULL)
        return NF_ENOMEM;
    m = p->msg + NF_WS_PRE;
    put_header(m, seq, BASE_W, BASE_H,
               payload > 0xffffffffu ? 0xffffffffu : (uint32_t)payload);
    p->msg_len = (size_t)total;
    return 0;
}

static int build_garbage(struct probe *p)
{
    size_t len = p->bytes ? (size_t)p->bytes : DEFAULT_GARBAGE;
    uint32_t seed = (uint32_t)nf_mono_us();
    uint8_t *m;

    if (p->bytes > CHUNK * 256u)
        return NF_ERANGE; /* Use oversize for big messages. */
    m = alloc_msg(p, len);
    if (m == NULL)
        return NF_ENOMEM;
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        m[i] = (uint8_t)(seed >> 16);
    }
    if (len > 0 && m[0] == NF_WIRE_MAGIC0)
        m[0] = 0; /* Never a valid magic by chance. */
    return 0;
}

static int build_text(struct probe *p, const char *s)
{
    uint8_t *m = alloc_msg(p, strlen(s));

    if (m == NULL)
        return NF_ENOMEM;
    memcpy(m, s, strlen(s));
    p->msg_text = 1;
    return 0;
}

/* Builds the valid frame (for --frames-first) and the bad message. */
static int build_inputs(struct probe *p)
{
    size_t cap = nf_jpeg_bound(BASE_W, BASE_H);
    uint8_t *jpg = malloc(cap);
    uint32_t seq = (uint32_t)p->frames_first;
    struct nf_jpeg *j = NULL;
    int n, rc = NF_ENOMEM;

    if (jpg == NULL || nf_jpeg_init(&j) < 0)
        goto out;
    rc = n = base_jpeg(j, BASE_W, BASE_H, jpg, cap);
    if (n < 0)
        goto out;
    p->frame_len = NF_WIRE_FRAME_IN_LEN + (size_t)n;
    p->frame = malloc(NF_WS_PRE + p->frame_len);
    rc = NF_ENOMEM;
    if (p->frame == NULL)
        goto out;
    p->base = malloc((size_t)n);
    if (p->base == NULL)
        goto out;
    memcpy(p->base, jpg, (size_t)n);
    switch (p->mode) {
    case MODE_GARBAGE:
        rc = build_garbage(p);
        break;
    case MODE_TEXT:
        rc = build_text(p, "hello there");
        break;
    case MODE_BADJSON:
        rc = build_text(p, "{\"type\":\"hello\",\"version\":1,");
        break;
    case MODE_OVERSIZE:
        rc = build_oversize(p, seq);
        break;
    case MODE_BOMB:
        rc = build_bomb(p, j, seq);
        break;
    case MODE_FILE:
        rc = build_file(p, seq);
        break;
    case MODE_NONE:
        rc = 0;
        break;
    default:
        rc = build_frame_abuse(p, jpg, n, seq);
        break;
    }
out:
    nf_jpeg_free(j);
    free(jpg);
    return rc;
}

/* ---- The connection ----------------------------------------------------- */

static void start_abuse(struct probe *p)
{
    if (p->frames_first > p->replies) {
        p->phase = PHASE_FIRST_FRAMES;
    } else if (p->mode == MODE_NONE) {
        p->phase = PHASE_WAITING;
        return;
    } else {
        p->phase = PHASE_ABUSE;
    }
    nf_ws_client_want_write(p->ws);
}

/* Sends the next piece of the bad message. */
static void send_abuse(struct probe *p)
{
    size_t left = p->msg_len - p->msg_sent, n = left;
    int kind = p->msg_text ? NF_WS_TEXT : NF_WS_BINARY;

    if (n > CHUNK)
        n = CHUNK;
    if (p->msg_sent > 0)
        kind = NF_WS_CONTINUATION;
    if (n < left)
        kind |= NF_WS_NO_FIN;
    /*
     * Oversize sends its one stored chunk again and again: after the header
     * only the size matters (and lws has masked the chunk in place anyway).
     */
    if (nf_ws_client_write(p->ws,
                           p->msg + NF_WS_PRE +
                               (p->mode == MODE_OVERSIZE ? 0 : p->msg_sent),
                           n, kind) < 0) {
        logv(p, "write failed after %zu bytes", p->msg_sent);
        p->phase = PHASE_WAITING;
        return;
    }
    p->msg_sent += n;
    if (p->msg_sent < p->msg_len) {
        nf_ws_client_want_write(p->ws);
        return;
    }
    logv(p, "sent %s (%zu bytes)", mode_names[p->mode], p->msg_len);
    p->phase = PHASE_WAITING;
}

static void on_writable(struct nf_ws_client *ws, void *user)
{
    struct probe *p = user;

    if (p->phase == PHASE_FIRST_FRAMES && !p->awaiting_reply) {
        size_t n = p->frame_len - NF_WIRE_FRAME_IN_LEN;

        put_header(p->frame + NF_WS_PRE, (uint32_t)p->replies, BASE_W, BASE_H,
                   (uint32_t)n);
        memcpy(p->frame + NF_WS_PRE + NF_WIRE_FRAME_IN_LEN, p->base, n);
        if (nf_ws_client_write(ws, p->frame + NF_WS_PRE, p->frame_len,
                               NF_WS_BINARY) == 0)
            p->awaiting_reply = 1;
    } else if (p->phase == PHASE_ABUSE) {
        send_abuse(p);
    }
}

static void on_message(struct nf_ws_client *ws, void *user, const uint8_t *msg,
                       size_t len, int binary)
{
    struct probe *p = user;
    struct nf_frame_header h;
    int hl;

    (void)ws;
    if (!binary) {
        logv(p, "< %.*s", (int)(len > 300 ? 300 : len), (const char *)msg);
        if (p->phase == PHASE_WELCOME && len > 0 &&
            memmem(msg, len, "\"welcome\"", 9) != NULL)
            start_abuse(p);
        return;
    }
    hl = nf_wire_decode_header(msg, len, &h);
    if (hl <= 0) {
        fprintf(stderr, "nf-probe: bad binary reply (%s)\n",
                hl < 0 ? nf_strerror(hl) : "short");
        return;
    }
    logv(p, "< reply seq %u %ux%u, %u bytes", (unsigned)h.seq,
         (unsigned)h.width, (unsigned)h.height, (unsigned)h.payload_len);
    if (p->phase == PHASE_FIRST_FRAMES && p->awaiting_reply) {
        p->awaiting_reply = 0;
        p->replies++;
        if (p->replies == p->frames_first)
            fprintf(stderr, "nf-probe: %d valid frames answered\n", p->replies);
        start_abuse(p);
    }
}

static void on_open(struct nf_ws_client *ws, void *user)
{
    struct probe *p = user;

    (void)ws;
    logv(p, "connected");
    if (p->wait_welcome)
        p->phase = PHASE_WELCOME;
    else
        start_abuse(p);
}

static void on_end(struct nf_ws_client *ws, void *user,
                   const struct nf_ws_end *end)
{
    struct probe *p = user;

    (void)ws;
    p->end = *end;
    p->phase = PHASE_DONE;
}

static void on_timer(struct nf_ws_client *ws, void *user)
{
    struct probe *p = user;

    if (p->phase == PHASE_DONE)
        return;
    if (interrupted || nf_mono_us() > p->deadline_us) {
        p->timed_out = 1;
        nf_ws_client_close(ws, NF_CLOSE_NORMAL, "probe timeout");
        return;
    }
    nf_ws_client_set_timer(ws, TICK_US);
}

/* ---- Main --------------------------------------------------------------- */

static int parse_mode(const char *s, enum mode *m)
{
    for (int i = 0; i < MODE_COUNT; i++) {
        if (strcmp(s, mode_names[i]) == 0) {
            *m = (enum mode)i;
            return 0;
        }
    }
    fprintf(stderr, "nf-probe: unknown mode '%s' (see --help)\n", s);
    return -1;
}

/* Returns 0, 1 after --help, -1 on bad usage. */
static int parse_options(int argc, char **argv, struct probe *p)
{
    static const struct option longs[] = {
        {"send", required_argument, NULL, 's'},
        {"bytes", required_argument, NULL, 'b'},
        {"frames-first", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},
        {"no-welcome", no_argument, NULL, 'W'},
        {"subprotocol", required_argument, NULL, 'p'},
        {"no-subprotocol", no_argument, NULL, 'P'},
        {"origin", required_argument, NULL, 'o'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    double v;
    int c;

    p->mode = MODE_NONE;
    p->wait_welcome = 1;
    p->timeout_s = 10;
    p->subprotocol = NF_WIRE_SUBPROTOCOL;
    while ((c = getopt_long(argc, argv, "vh", longs, NULL)) != -1) {
        switch (c) {
        case 's':
            if (parse_mode(optarg, &p->mode) < 0)
                return -1;
            break;
        case 'b':
            if (nf_cli_number("nf-probe", "bytes", optarg, 0, 1e12, &v) < 0)
                return -1;
            p->bytes = (uint64_t)v;
            break;
        case 'n':
            if (nf_cli_number("nf-probe", "frames-first", optarg, 0, 1e6, &v) <
                0)
                return -1;
            p->frames_first = (int)v;
            break;
        case 't':
            if (nf_cli_number("nf-probe", "timeout", optarg, 0, 86400, &v) <
                    0 ||
                v <= 0)
                return -1;
            p->timeout_s = v;
            break;
        case 'W':
            p->wait_welcome = 0;
            break;
        case 'p':
            p->subprotocol = optarg;
            break;
        case 'P':
            p->subprotocol = NULL;
            break;
        case 'o':
            p->origin = optarg;
            break;
        case 'v':
            p->verbose = 1;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (argc - optind != (p->mode == MODE_FILE ? 2 : 1)) {
        fprintf(stderr, "nf-probe: expected URL%s (try --help)\n",
                p->mode == MODE_FILE ? " and FILE" : "");
        return -1;
    }
    p->url = argv[optind];
    if (p->mode == MODE_FILE)
        p->file = argv[optind + 1];
    return 0;
}

/* Prints the one result line; returns the exit status. */
static int report(const struct probe *p)
{
    switch (p->end.how) {
    case NF_WS_PEER_CLOSED:
    case NF_WS_DROPPED:
    case NF_WS_REFUSED:
        if (p->timed_out)
            break;
        printf("close %d %s\n", p->end.code, p->end.reason);
        return 0;
    case NF_WS_CONNECT_FAILED:
        printf("error cannot connect: %s\n", p->end.reason);
        return 2;
    default:
        break;
    }
    printf("timeout no close within %g s (sent %s: %zu of %zu bytes)\n",
           p->timeout_s, mode_names[p->mode], p->msg_sent, p->msg_len);
    return 2;
}

int main(int argc, char **argv)
{
    static const struct nf_ws_client_ops ops = {
        .on_open = on_open,
        .on_message = on_message,
        .on_writable = on_writable,
        .on_timer = on_timer,
        .on_end = on_end,
    };
    static struct probe p;
    struct nf_ws_client_config cfg = {0};
    struct sigaction sa;
    char err[256];
    int rc;

    rc = parse_options(argc, argv, &p);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    rc = build_inputs(&p);
    if (rc < 0) {
        fprintf(stderr, "nf-probe: cannot build the input: %s\n",
                nf_strerror(rc));
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    cfg.url = p.url;
    cfg.subprotocol = p.subprotocol;
    cfg.origin = p.origin;
    cfg.verbose = p.verbose;
    p.deadline_us = nf_mono_us() + (uint64_t)(p.timeout_s * 1e6);
    if (nf_ws_client_init(&p.ws, &cfg, &ops, &p, err, sizeof(err)) < 0) {
        fprintf(stderr, "nf-probe: %s\n", err);
        rc = 2;
        goto out;
    }
    nf_ws_client_set_timer(p.ws, TICK_US);
    while (nf_ws_client_end(p.ws)->how == NF_WS_OPEN &&
           nf_ws_client_service(p.ws) == 0)
        ;
    rc = report(&p);
out:
    nf_ws_client_free(p.ws);
    free(p.frame);
    free(p.base);
    free(p.msg);
    return rc;
}
