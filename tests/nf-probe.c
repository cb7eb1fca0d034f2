/*
 * nf-probe.c - sends a nextframe server one chosen bad input (or one
 * chosen kind of abuse) and reports how the server answered.
 *
 * The integration tests use it to prove that each kind of abuse ends that
 * session with its documented close code (NF_CLOSE_MAP in protocol/wire.h)
 * while the server keeps serving everyone else. Its last line on stdout is
 * the result, and the exit status goes with it:
 *
 *   close CODE REASON  the server closed (1006 when the connection dropped
 *                      without a close frame or the upgrade was refused);
 *                      exit 0
 *   ok DETAILS         the mode ran to its end without the server closing
 *                      (a progressive JPEG was served, a flood was
 *                      answered, 1,000 handshakes went through); exit 0
 *   fail DETAILS       the mode ran but a check on the replies failed
 *                      (replies out of order, wrong size, frames neither
 *                      answered nor counted as dropped); exit 1
 *   timeout ...        nothing ended within --timeout; exit 2, as for
 *                      every other failure
 *
 * Modes that count things also print one "stats ..." line on stderr.
 *
 * Every input is built from a real JPEG encoded here with TurboJPEG (64x48
 * unless --size says otherwise) and a FRAME_IN header from
 * nf_wire_encode_header(), then damaged in one precise way, so each mode
 * trips exactly one check of the server. Most modes talk through
 * clients/common/ws-client.h; the three that must misbehave below the
 * WebSocket layer (midframe, noread, cycles) use a plain socket and a
 * minimal RFC 6455 client written here, because lws always reads and
 * always finishes what it starts writing.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "cli.h"
#include "error.h"
#include "mono-clock.h"
#include "wire.h"
#include "ws-client.h"

#define BASE_W           64
#define BASE_H           48
#define MAX_SIZES        8
#define CHUNK            (64u << 10) /* Fragment size for big messages. */
#define DEFAULT_OVERSIZE (64u << 20) /* --send oversize default. */
#define DEFAULT_GARBAGE  1024u
#define DEFAULT_CONTROL  4097u /* --send bigcontrol: the default limit + 1. */
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
    XX(TRUNCATED, "truncated", "a JPEG cut in half")                           \
    XX(NOT_JPEG, "not-jpeg",                                                   \
       "a format-1 frame whose payload is a PNG signature and random bytes")   \
    XX(DIMS_MISMATCH, "dims-mismatch", "header says 32x32, JPEG is --size")    \
    XX(TYPE, "type", "a FRAME_OUT (type 2, 72-byte header) from the client")   \
    XX(RESERVED, "reserved", "a frame with flag bit 1 (reserved) set")         \
    XX(ZERO_DIMS, "zero-dims", "a frame whose header says width 0")            \
    XX(JPEG_BOMB, "jpeg-bomb",                                                 \
       "header says 16x16, the JPEG's SOF0 says 60000x60000")                  \
    XX(PROGRESSIVE, "progressive",                                             \
       "a valid progressive JPEG (served: prints ok)")                         \
    XX(CMYK, "cmyk", "a CMYK JPEG (Adobe marker, no colour transform)")        \
    XX(YCCK, "ycck", "a YCCK JPEG (TurboJPEG's way of storing CMYK)")          \
    XX(BIGCONTROL, "bigcontrol",                                               \
       "a valid set message padded to --bytes (default 4097); ok when "        \
       "answered")                                                             \
    XX(RESIZE, "resize",                                                       \
       "--count frames (default 2) at each size of --sizes, one at a time, "   \
       "checking each reply's size; frame k of each size shows the same "      \
       "picture k")                                                            \
    XX(FLOOD, "flood",                                                         \
       "--count frames (default 200) as fast as the socket takes them, "       \
       "reading replies; checks order and replied + dropped = sent")           \
    XX(CTRLFLOOD, "ctrlflood",                                                 \
       "--count {\"type\":\"set\"} messages (default 10000) as fast as the "   \
       "socket takes them, reading the answers")                               \
    XX(CTRLBURST, "ctrlburst",                                                 \
       "--count set messages (default 10) in one TCP write, the last "         \
       "asking for another quality; ok once a state shows it (plain socket)")  \
    XX(MIDFRAME, "midframe",                                                   \
       "--count times (default 1): connect, send half a frame, drop the TCP "  \
       "connection (plain socket)")                                            \
    XX(NOREAD, "noread",                                                       \
       "frames at full speed for --seconds (default 5), never reading a "      \
       "byte (plain socket)")                                                  \
    XX(CYCLES, "cycles",                                                       \
       "--count handshakes (default 1000), each closed at once: even ones "    \
       "with a close frame, odd ones by dropping TCP (plain socket)")          \
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
    PHASE_WAITING,      /* Sent; waiting for the close or the replies. */
    PHASE_DONE,
};

struct size {
    int w, h;
};

/* The probe; used only by the service loop's thread. */
struct probe {
    /* Options. */
    const char *url;
    const char *file;
    const char *subprotocol;
    const char *origin;
    const char *save_dir; /* --save: each reply's JPEG goes here. */
    enum mode mode;
    uint64_t bytes;
    int frames_first;
    int wait_welcome;
    double timeout_s;
    double seconds;
    int count;
    struct size size;             /* --size */
    struct size sizes[MAX_SIZES]; /* --sizes */
    int n_sizes;
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
    uint8_t *base; /* The JPEG of --size. */
    size_t base_len;
    size_t frame_len;
    /* The bad message: NF_WS_PRE + msg_len bytes (first chunk only for
     * oversize, whose remaining bytes are zeros sent from the same). */
    uint8_t *msg;
    size_t msg_len;  /* Bytes of the whole message. */
    size_t msg_sent; /* Bytes sent so far. */
    int msg_text;
    /* What the mode sent and got (after --frames-first). */
    int sent;      /* Frames or control messages sent by the mode. */
    uint32_t seq0; /* seq of the mode's first frame. */
    int got;       /* FRAME_OUT replies. */
    int states;    /* state messages. */
    int errors;    /* error messages. */
    uint32_t last_seq;
    uint32_t last_dropped; /* The dropped field of the last reply. */
    int out_of_order;
    int wrong_size;
    int finished;     /* The mode reached its end; we closed. */
    int check_failed; /* ... and a check failed. */
    char result[256];
    struct nf_ws_end end;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Prints text from column indent, wrapped at width, words kept whole. */
static void print_wrapped(FILE *f, const char *text, int indent, int width)
{
    int col = indent;

    while (*text != '\0') {
        int n = (int)strcspn(text, " ");

        if (col > indent && col + 1 + n > width) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%.*s", n, text);
        col += n;
        text += n;
        text += strspn(text, " ");
    }
    fputc('\n', f);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nf-probe URL --send MODE [FILE] [options]\n"
            "\n"
            "Connects to a nextframe server (ws://HOST:PORT/v1/stream), sends\n"
            "one bad input (or one kind of abuse) and prints the outcome as\n"
            "its last line on stdout:\n"
            "  close CODE REASON  the server closed (1006: dropped without a\n"
            "                     close frame, or upgrade refused); exit 0\n"
            "  ok DETAILS         the mode ran to its end, no close; exit 0\n"
            "  fail DETAILS       a check on the replies failed; exit 1\n"
            "  timeout ...        nothing ended within --timeout; exit 2\n"
            "Counting modes also print a \"stats ...\" line on stderr.\n"
            "\n"
            "modes:\n");
    for (int m = 0; m < MODE_COUNT; m++) {
        static const char *const help[] = {
#define MODE_HELP(name, str, h) h,
            MODE_MAP(MODE_HELP)
#undef MODE_HELP
        };
        fprintf(f, "  %-14s ", mode_names[m]);
        print_wrapped(f, help[m], 17, 78);
    }
    fprintf(f,
            "\n"
            "options:\n"
            "  --send MODE        what to send (default none)\n"
            "  --bytes N          size for garbage, oversize and bigcontrol\n"
            "  --size WxH         size of the valid JPEG every frame mode\n"
            "                     starts from (default 64x48)\n"
            "  --sizes WxH,...    sizes for resize (default 64x48,128x96)\n"
            "  --count N          repetitions for resize, flood, ctrlflood,\n"
            "                     midframe and cycles\n"
            "  --seconds S        how long noread sends (default 5)\n"
            "  --save DIR         write each reply's JPEG (after\n"
            "                     --frames-first) to DIR/SEQ.jpg\n"
            "  --frames-first N   first send N valid frames, one at a\n"
            "                     time, each waiting for its reply\n"
            "  --timeout S        seconds to wait for the end (default 10)\n"
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

/* Ends the mode with an "ok" or "fail" result line and a clean close. */
static void finish(struct probe *p, int failed, const char *fmt, ...)
{
    va_list ap;

    if (p->finished)
        return;
    va_start(ap, fmt);
    vsnprintf(p->result, sizeof(p->result), fmt, ap);
    va_end(ap);
    p->finished = 1;
    p->check_failed = failed;
    p->phase = PHASE_DONE;
    if (p->ws != NULL)
        nf_ws_client_close(p->ws, NF_CLOSE_NORMAL, "probe done");
}

/* ---- Building the inputs ------------------------------------------------ */

/*
 * Encodes a w x h test image straight with TurboJPEG: a gradient with a
 * fixed pseudo-random texture, so that most of the JPEG is scan data and
 * half of it still has whole headers; image 1, 2, ... shift the gradient
 * and change the texture, for frames that differ. pf is TJPF_RGB or
 * TJPF_CMYK (which TurboJPEG stores as YCCK), flags 0 or
 * TJFLAG_PROGRESSIVE. Returns 0 with a malloc'd JPEG in *out, or a
 * negative NF_E* code.
 */
static int make_jpeg(int w, int h, int pf, int subsamp, int flags, int image,
                     uint8_t **out, size_t *len)
{
    int ps = tjPixelSize[pf];
    uint8_t *px = malloc((size_t)w * (size_t)h * (size_t)ps);
    unsigned char *jpg = NULL;
    unsigned long n = 0;
    uint32_t seed = 12345u + 7919u * (uint32_t)image;
    tjhandle tj = NULL;
    int rc = NF_EJPEG;

    *out = NULL;
    if (px == NULL)
        return NF_ENOMEM;
    for (size_t i = 0; i < (size_t)w * (size_t)h * (size_t)ps; i++) {
        int x = (int)(i / ps) % w, y = (int)(i / ps) / w;

        seed = seed * 1103515245u + 12345u;
        px[i] =
            (uint8_t)(((x + 16 * image) * 4 + y * 2 + (int)(i % ps) * 40) / 2 +
                      (int)((seed >> 16) & 63));
    }
    tj = tjInitCompress();
    if (tj == NULL ||
        tjCompress2(tj, px, w, 0, h, pf, &jpg, &n, subsamp, 90, flags) != 0)
        goto out;
    *out = malloc(n);
    if (*out == NULL) {
        rc = NF_ENOMEM;
        goto out;
    }
    memcpy(*out, jpg, n);
    *len = n;
    rc = 0;
out:
    if (jpg != NULL)
        tjFree(jpg);
    if (tj != NULL)
        tjDestroy(tj);
    free(px);
    return rc;
}

/* Offset of the first segment with marker m (0xc0 = SOF0), or -1. */
static long find_marker(const uint8_t *p, size_t len, uint8_t m)
{
    size_t i = 2;

    while (i + 4 <= len && p[i] == 0xff) {
        if (p[i + 1] == m)
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

/* A whole frame message: header and a w x h JPEG. */
static int build_jpeg_frame(struct probe *p, const uint8_t *jpg, size_t n,
                            int w, int h, uint32_t seq)
{
    uint8_t *m = alloc_msg(p, NF_WIRE_FRAME_IN_LEN + n);

    if (m == NULL)
        return NF_ENOMEM;
    put_header(m, seq, w, h, (uint32_t)n);
    memcpy(m + NF_WIRE_FRAME_IN_LEN, jpg, n);
    return 0;
}

/* The message of the modes that damage a valid frame. n >= 100. */
static int build_frame_abuse(struct probe *p, uint32_t seq)
{
    size_t n = p->base_len;
    int w = p->size.w, h = p->size.h, rc;
    uint8_t *m;

    rc = build_jpeg_frame(p, p->base, n, w, h, seq);
    if (rc < 0)
        return rc;
    m = p->msg + NF_WS_PRE;
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
        put_header(m, seq, w, h, (uint32_t)n + 100);
        break;
    case MODE_LONG:
        put_header(m, seq, w, h, (uint32_t)n - 100);
        break;
    case MODE_FORMAT:
        m[28] = 7;
        break;
    case MODE_TRUNCATED:
        p->msg_len = NF_WIRE_FRAME_IN_LEN + n / 2;
        put_header(m, seq, w, h, (uint32_t)(n / 2));
        break;
    case MODE_DIMS_MISMATCH:
        put_header(m, seq, 32, 32, (uint32_t)n);
        break;
    case MODE_RESERVED:
        m[8] = 2; /* flags, little-endian u32 at offset 8: bit 1. */
        break;
    case MODE_ZERO_DIMS:
        m[24] = m[25] = 0; /* width, little-endian u16 at offset 24. */
        break;
    case MODE_NOT_JPEG: {
        static const uint8_t png[8] = {0x89, 'P',  'N',  'G',
                                       '\r', '\n', 0x1a, '\n'};
        uint32_t seed = 4242;

        memcpy(m + NF_WIRE_FRAME_IN_LEN, png, sizeof(png));
        for (size_t i = sizeof(png); i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            m[NF_WIRE_FRAME_IN_LEN + i] = (uint8_t)(seed >> 16);
        }
        break;
    }
    default:
        break;
    }
    return 0;
}

/* A well-formed FRAME_OUT header (72 bytes) and the base JPEG. */
static int build_frame_out(struct probe *p, uint32_t seq)
{
    struct nf_frame_header hd = {0};
    uint8_t *m = alloc_msg(p, NF_WIRE_FRAME_OUT_LEN + p->base_len);

    if (m == NULL)
        return NF_ENOMEM;
    hd.type = NF_MSG_FRAME_OUT;
    hd.seq = seq;
    hd.width = (uint16_t)p->size.w;
    hd.height = (uint16_t)p->size.h;
    hd.format = NF_FORMAT_JPEG;
    hd.payload_len = (uint32_t)p->base_len;
    if (nf_wire_encode_header(&hd, m, NF_WIRE_FRAME_OUT_LEN) < 0)
        return NF_EINVAL;
    memcpy(m + NF_WIRE_FRAME_OUT_LEN, p->base, p->base_len);
    return 0;
}

static int build_bomb(struct probe *p, uint32_t seq)
{
    uint8_t *small = NULL;
    size_t n = 0;
    long sof;
    int rc = make_jpeg(16, 16, TJPF_RGB, TJSAMP_420, 0, 0, &small, &n);

    if (rc < 0)
        return rc;
    sof = find_marker(small, n, 0xc0);
    if (sof < 0) {
        free(small);
        return NF_EJPEG;
    }
    /* SOF0: FF C0, length(2), precision(1), height(2), width(2). */
    small[sof + 5] = small[sof + 7] = 60000 >> 8;
    small[sof + 6] = small[sof + 8] = 60000 & 0xff;
    /* jpeg-bomb: the header keeps the real 16x16; only the JPEG lies. */
    if (p->mode == MODE_JPEG_BOMB)
        rc = build_jpeg_frame(p, small, n, 16, 16, seq);
    else
        rc = build_jpeg_frame(p, small, n, 60000, 60000, seq);
    free(small);
    return rc;
}

/*
 * A progressive, CMYK or YCCK JPEG of --size. TurboJPEG writes TJPF_CMYK
 * as YCCK (Adobe APP14 transform 2); setting the transform byte to 0 makes
 * the same scans a plain CMYK JPEG, which is all the server's header check
 * looks at.
 */
static int build_variant(struct probe *p, uint32_t seq)
{
    int w = p->size.w, h = p->size.h, rc;
    uint8_t *jpg = NULL;
    size_t n = 0;

    if (p->mode == MODE_PROGRESSIVE)
        rc = make_jpeg(w, h, TJPF_RGB, TJSAMP_420, TJFLAG_PROGRESSIVE, 0, &jpg,
                       &n);
    else
        rc = make_jpeg(w, h, TJPF_CMYK, TJSAMP_444, 0, 0, &jpg, &n);
    if (rc < 0)
        return rc;
    if (p->mode == MODE_CMYK) {
        /* APP14: FF EE, length(2), "Adobe"(5), version(2), flags0(2),
         * flags1(2), transform(1). */
        long app14 = find_marker(jpg, n, 0xee);

        if (app14 < 0 || (size_t)app14 + 16 > n ||
            memcmp(jpg + app14 + 4, "Adobe", 5) != 0) {
            free(jpg);
            return NF_EJPEG;
        }
        jpg[app14 + 15] = 0;
    }
    rc = build_jpeg_frame(p, jpg, n, w, h, seq);
    free(jpg);
    return rc;
}

static int build_file(struct probe *p, uint32_t seq)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int w, h, rc;

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
    rc = build_jpeg_frame(p, data, len, w, h, seq);
    free(data);
    return rc;
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
    put_header(m, seq, p->size.w, p->size.h,
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

/* {"type":"set","pad":"xxx..."}: valid (unknown fields are ignored),
 * exactly --bytes long. */
static int build_bigcontrol(struct probe *p)
{
    static const char head[] = "{\"type\":\"set\",\"pad\":\"", tail[] = "\"}";
    size_t len = p->bytes ? (size_t)p->bytes : DEFAULT_CONTROL;
    size_t fixed = sizeof(head) - 1 + sizeof(tail) - 1;
    uint8_t *m;

    if (len < fixed || len > CHUNK * 256u)
        return NF_ERANGE;
    m = alloc_msg(p, len);
    if (m == NULL)
        return NF_ENOMEM;
    memcpy(m, head, sizeof(head) - 1);
    memset(m + sizeof(head) - 1, 'x', len - fixed);
    memcpy(m + len - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
    p->msg_text = 1;
    return 0;
}

/* Builds the valid frame (for --frames-first) and the bad message. */
static int build_inputs(struct probe *p)
{
    uint32_t seq = (uint32_t)p->frames_first;
    int rc = make_jpeg(p->size.w, p->size.h, TJPF_RGB, TJSAMP_420, 0, 0,
                       &p->base, &p->base_len);
    size_t cap;

    if (rc < 0)
        return rc;
    p->seq0 = seq;
    p->frame_len = NF_WIRE_FRAME_IN_LEN + p->base_len;
    /* p->frame holds any valid frame this mode sends. */
    cap = p->frame_len;
    for (int i = 0; p->mode == MODE_RESIZE && i < p->n_sizes; i++)
        if (NF_WIRE_FRAME_IN_LEN +
                tjBufSize(p->sizes[i].w, p->sizes[i].h, TJSAMP_420) >
            cap)
            cap = NF_WIRE_FRAME_IN_LEN +
                  tjBufSize(p->sizes[i].w, p->sizes[i].h, TJSAMP_420);
    p->frame = malloc(NF_WS_PRE + cap);
    if (p->frame == NULL)
        return NF_ENOMEM;
    switch (p->mode) {
    case MODE_GARBAGE:
        return build_garbage(p);
    case MODE_TEXT:
        return build_text(p, "hello there");
    case MODE_BADJSON:
        return build_text(p, "{\"type\":\"hello\",\"version\":1,");
    case MODE_BIGCONTROL:
        return build_bigcontrol(p);
    case MODE_OVERSIZE:
        return build_oversize(p, seq);
    case MODE_BOMB:
    case MODE_JPEG_BOMB:
        return build_bomb(p, seq);
    case MODE_TYPE:
        return build_frame_out(p, seq);
    case MODE_PROGRESSIVE:
    case MODE_CMYK:
    case MODE_YCCK:
        return build_variant(p, seq);
    case MODE_FILE:
        return build_file(p, seq);
    case MODE_NONE:
    case MODE_RESIZE:
    case MODE_FLOOD:
    case MODE_CTRLFLOOD:
        return 0;
    default: /* Damaged frames; the raw modes send the whole base frame. */
        return build_frame_abuse(p, seq);
    }
}

/* ---- The connection (libwebsockets) ------------------------------------- */

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

/* Sends one valid frame (jpg, w x h) with seq; 0 or NF_EIO. */
static int send_frame(struct probe *p, const uint8_t *jpg, size_t n, int w,
                      int h, uint32_t seq)
{
    uint8_t *f = p->frame + NF_WS_PRE;

    put_header(f, seq, w, h, (uint32_t)n);
    memcpy(f + NF_WIRE_FRAME_IN_LEN, jpg, n);
    return nf_ws_client_write(p->ws, f, NF_WIRE_FRAME_IN_LEN + n, NF_WS_BINARY);
}

/* resize: the index in --sizes of the mode's frame number i. */
static int resize_index(const struct probe *p, int i)
{
    return i / p->count;
}

/* The modes that send many messages, one per writeable callback. */
static void send_script(struct probe *p)
{
    if (p->mode == MODE_FLOOD) {
        if (send_frame(p, p->base, p->base_len, p->size.w, p->size.h,
                       p->seq0 + (uint32_t)p->sent) == 0)
            p->sent++;
        if (p->sent < p->count)
            nf_ws_client_want_write(p->ws);
        else
            p->phase = PHASE_WAITING;
    } else if (p->mode == MODE_CTRLFLOOD) {
        static const char set[] = "{\"type\":\"set\"}";
        uint8_t buf[NF_WS_PRE + sizeof(set)];

        memcpy(buf + NF_WS_PRE, set, sizeof(set) - 1);
        if (nf_ws_client_write(p->ws, buf + NF_WS_PRE, sizeof(set) - 1,
                               NF_WS_TEXT) == 0)
            p->sent++;
        if (p->sent < p->count)
            nf_ws_client_want_write(p->ws);
        else
            p->phase = PHASE_WAITING;
    } else if (p->mode == MODE_RESIZE && !p->awaiting_reply) {
        /* Image k of each size is the same picture at that size. */
        int i = resize_index(p, p->sent), k = p->sent % p->count;
        struct size sz = p->sizes[i];
        uint8_t *jpg = NULL;
        size_t n = 0;

        if (make_jpeg(sz.w, sz.h, TJPF_RGB, TJSAMP_420, 0, k, &jpg, &n) < 0) {
            finish(p, 1, "cannot encode a %dx%d JPEG", sz.w, sz.h);
            return;
        }
        if (send_frame(p, jpg, n, sz.w, sz.h, p->seq0 + (uint32_t)p->sent) ==
            0) {
            p->sent++;
            p->awaiting_reply = 1;
        }
        free(jpg);
    }
}

static int scripted(const struct probe *p)
{
    return p->mode == MODE_FLOOD || p->mode == MODE_CTRLFLOOD ||
           p->mode == MODE_RESIZE;
}

static void on_writable(struct nf_ws_client *ws, void *user)
{
    struct probe *p = user;

    if (p->phase == PHASE_FIRST_FRAMES && !p->awaiting_reply) {
        if (send_frame(p, p->base, p->base_len, p->size.w, p->size.h,
                       (uint32_t)p->replies) == 0)
            p->awaiting_reply = 1;
    } else if (p->phase == PHASE_ABUSE && scripted(p)) {
        send_script(p);
    } else if (p->phase == PHASE_ABUSE) {
        send_abuse(p);
    }
    (void)ws;
}

static void print_stats(const struct probe *p)
{
    fprintf(stderr,
            "stats sent=%d replies=%d dropped=%u states=%d errors=%d "
            "out_of_order=%d wrong_size=%d\n",
            p->sent, p->got, (unsigned)p->last_dropped, p->states, p->errors,
            p->out_of_order, p->wrong_size);
}

/* Writes a reply's JPEG to DIR/SEQ.jpg (--save). */
static void save_reply(const struct probe *p, const struct nf_frame_header *h,
                       const uint8_t *jpg, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%u.jpg", p->save_dir, (unsigned)h->seq);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(jpg, 1, len, f) != len)
        fprintf(stderr, "nf-probe: cannot write %s\n", path);
    if (f != NULL)
        fclose(f);
}

/* A reply to one of the mode's frames (after --frames-first). */
static void on_mode_reply(struct probe *p, const struct nf_frame_header *h)
{
    uint32_t last = p->seq0 + (uint32_t)p->sent - 1;

    if (p->got > 0 && (int32_t)(h->seq - p->last_seq) <= 0)
        p->out_of_order++;
    p->got++;
    p->last_seq = h->seq;
    p->last_dropped = h->dropped;
    switch (p->mode) {
    case MODE_RESIZE: {
        int i = resize_index(p, (int)(h->seq - p->seq0));

        if (i < 0 || i >= p->n_sizes || h->width != p->sizes[i].w ||
            h->height != p->sizes[i].h) {
            p->wrong_size++;
            fprintf(stderr, "nf-probe: reply %u is %ux%u\n", (unsigned)h->seq,
                    (unsigned)h->width, (unsigned)h->height);
        }
        p->awaiting_reply = 0;
        if (p->sent < p->count * p->n_sizes) {
            nf_ws_client_want_write(p->ws);
            return;
        }
        finish(p, p->wrong_size || p->out_of_order || p->got != p->sent,
               "%d replies to %d frames at %d sizes, %d of the wrong size",
               p->got, p->sent, p->n_sizes, p->wrong_size);
        return;
    }
    case MODE_FLOOD:
        if (p->sent < p->count || h->seq != last)
            return;
        /* Every frame before the newest is answered or counted dropped. */
        finish(p,
               p->out_of_order ||
                   (uint64_t)p->got + h->dropped != (uint64_t)p->sent,
               "%d frames sent, %d replies, %u dropped (the newest answered)%s",
               p->sent, p->got, (unsigned)h->dropped,
               p->out_of_order ? ", replies out of order" : "");
        return;
    default:
        /* A single frame (progressive, file) was served. */
        finish(p, 0, "served %ux%u", (unsigned)h->width, (unsigned)h->height);
        return;
    }
}

static void on_text(struct probe *p, const uint8_t *msg, size_t len)
{
    logv(p, "< %.*s", (int)(len > 300 ? 300 : len), (const char *)msg);
    if (p->phase == PHASE_WELCOME && len > 0 &&
        memmem(msg, len, "\"welcome\"", 9) != NULL) {
        start_abuse(p);
        return;
    }
    if (memmem(msg, len, "\"type\":\"state\"", 14) != NULL)
        p->states++;
    else if (memmem(msg, len, "\"type\":\"error\"", 14) != NULL)
        p->errors++;
    if (p->mode == MODE_BIGCONTROL && p->phase == PHASE_WAITING)
        finish(p, p->errors > 0, "answered with %s",
               p->errors ? "an error" : "state");
    if (p->mode == MODE_CTRLFLOOD && p->sent == p->count &&
        p->states + p->errors >= p->count)
        finish(p, p->errors > 0, "%d control messages sent, %d state, %d error",
               p->sent, p->states, p->errors);
}

static void on_message(struct nf_ws_client *ws, void *user, const uint8_t *msg,
                       size_t len, int binary)
{
    struct probe *p = user;
    struct nf_frame_header h;
    int hl;

    (void)ws;
    if (!binary) {
        on_text(p, msg, len);
        return;
    }
    hl = nf_wire_decode_header(msg, len, &h);
    if (hl <= 0) {
        fprintf(stderr, "nf-probe: bad binary reply (%s)\n",
                hl < 0 ? nf_strerror(hl) : "short");
        return;
    }
    logv(p, "< reply seq %u %ux%u, %u bytes, dropped %u", (unsigned)h.seq,
         (unsigned)h.width, (unsigned)h.height, (unsigned)h.payload_len,
         (unsigned)h.dropped);
    if (p->phase == PHASE_FIRST_FRAMES && p->awaiting_reply) {
        p->awaiting_reply = 0;
        p->replies++;
        if (p->replies == p->frames_first)
            fprintf(stderr, "nf-probe: %d valid frames answered\n", p->replies);
        start_abuse(p);
    } else if (p->phase == PHASE_ABUSE || p->phase == PHASE_WAITING) {
        if (p->save_dir != NULL && (size_t)hl + h.payload_len <= len)
            save_reply(p, &h, msg + hl, h.payload_len);
        on_mode_reply(p, &h);
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

/* ---- Plain-socket modes: a minimal RFC 6455 client ---------------------- */

/* One connection: the socket and what has been read but not parsed. */
struct raw {
    int fd;
    uint8_t buf[1 << 16];
    size_t have;
};

/* Splits ws://HOST:PORT/PATH; IPv4 or a name, no brackets. */
static int raw_parse_url(const char *url, char *host, size_t hostlen,
                         char *port, size_t portlen, const char **path)
{
    const char *h = url + 5, *colon, *slash;

    if (strncmp(url, "ws://", 5) != 0)
        return -1;
    slash = strchr(h, '/');
    *path = slash ? slash : "/";
    if (slash == NULL)
        slash = h + strlen(h);
    colon = memchr(h, ':', (size_t)(slash - h));
    if (colon == NULL || (size_t)(colon - h) >= hostlen ||
        (size_t)(slash - colon - 1) >= portlen || colon == h)
        return -1;
    memcpy(host, h, (size_t)(colon - h));
    host[colon - h] = '\0';
    memcpy(port, colon + 1, (size_t)(slash - colon - 1));
    port[slash - colon - 1] = '\0';
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR && !interrupted)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads more into r->buf: bytes read, 0 at EOF, -1 on error or timeout. */
static int raw_fill(struct raw *r)
{
    ssize_t n;

    if (r->have == sizeof(r->buf))
        return -1;
    do {
        n = recv(r->fd, r->buf + r->have, sizeof(r->buf) - r->have, 0);
    } while (n < 0 && errno == EINTR && !interrupted);
    if (n > 0)
        r->have += (size_t)n;
    return n < 0 ? -1 : (int)n;
}

static void raw_consume(struct raw *r, size_t n)
{
    memmove(r->buf, r->buf + n, r->have - n);
    r->have -= n;
}

/*
 * Connects and upgrades to the WebSocket protocol. Returns 0, or -1 with
 * why filled in. Reads and receives time out after timeout_s.
 */
static int raw_open(const struct probe *p, struct raw *r, char *why,
                    size_t whylen)
{
    char host[256], port[16], req[1024];
    const char *path;
    struct addrinfo hints = {0}, *ai = NULL;
    struct timeval tv = {
        (time_t)p->timeout_s,
        (suseconds_t)((p->timeout_s - (time_t)p->timeout_s) * 1e6)};
    int one = 1, n;

    r->fd = -1;
    r->have = 0;
    if (raw_parse_url(p->url, host, sizeof(host), port, sizeof(port), &path)) {
        snprintf(why, whylen, "bad URL (expected ws://HOST:PORT/PATH)");
        return -1;
    }
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
        snprintf(why, whylen, "cannot resolve %.100s", host);
        return -1;
    }
    r->fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (r->fd < 0 || connect(r->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(why, whylen, "cannot connect: %s", strerror(errno));
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    n = snprintf(
        req, sizeof(req),
        "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
        path, host, port, p->subprotocol ? "Sec-WebSocket-Protocol: " : "",
        p->subprotocol ? p->subprotocol : "", p->subprotocol ? "\r\n" : "");
    if (write_all(r->fd, (const uint8_t *)req, (size_t)n) < 0) {
        snprintf(why, whylen, "cannot send the upgrade: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        uint8_t *end = memmem(r->buf, r->have, "\r\n\r\n", 4);

        if (end != NULL) {
            if (r->have < 12 || memcmp(r->buf + 9, "101", 3) != 0) {
                snprintf(why, whylen, "upgrade refused: %.40s", r->buf);
                return -1;
            }
            raw_consume(r, (size_t)(end + 4 - r->buf));
            return 0;
        }
        if (raw_fill(r) <= 0) {
            snprintf(why, whylen, "no upgrade answer");
            return -1;
        }
    }
}

static void raw_close(struct raw *r, int reset)
{
    if (r->fd < 0)
        return;
    if (reset) {
        /* Linger 0: close() sends RST, no FIN. */
        struct linger lg = {1, 0};
        setsockopt(r->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(r->fd);
    r->fd = -1;
}

/*
 * Writes one masked WebSocket frame of len payload bytes at dst (room for
 * len + 14 bytes). b0 is FIN | opcode. Returns the frame's length.
 */
static size_t ws_frame(uint8_t *dst, int b0, const uint8_t *data, size_t len)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t hl = 2;

    dst[0] = (uint8_t)b0;
    if (len < 126) {
        dst[1] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        dst[1] = 0x80 | 126;
        dst[2] = (uint8_t)(len >> 8);
        dst[3] = (uint8_t)len;
        hl = 4;
    } else {
        dst[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            dst[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    memcpy(dst + hl, key, 4);
    hl += 4;
    for (size_t i = 0; i < len; i++)
        dst[hl + i] = data[i] ^ key[i & 3];
    return hl + len;
}

/*
 * Reads the next whole server frame. Returns its opcode (payload at
 * r->buf, *len bytes; consume with raw_consume(r, *hl + *len)), or -1 at
 * EOF, on error or for a frame too big to hold.
 */
static int raw_frame(struct raw *r, size_t *hl, size_t *len)
{
    for (;;) {
        if (r->have >= 2) {
            uint64_t n = r->buf[1] & 0x7f;
            size_t h = 2;

            if (n == 126 && r->have >= 4) {
                n = ((uint64_t)r->buf[2] << 8) | r->buf[3];
                h = 4;
            } else if (n == 127 && r->have >= 10) {
                n = 0;
                for (int i = 0; i < 8; i++)
                    n = (n << 8) | r->buf[2 + i];
                h = 10;
            } else if (n >= 126) {
                h = 0; /* Length bytes not all here yet. */
            }
            if (h > 0 && h + n > sizeof(r->buf))
                return -1;
            if (h > 0 && r->have >= h + n) {
                *hl = h;
                *len = (size_t)n;
                return r->buf[0] & 0x0f;
            }
        }
        if (raw_fill(r) <= 0)
            return -1;
    }
}

/*
 * Waits for the welcome. Returns 0; or the close code (> 0) when the
 * server closed instead (reason copied), or -1 (EOF, error, timeout).
 */
static int raw_welcome(struct raw *r, char *reason, size_t reasonlen)
{
    size_t hl, len;
    int op;

    while ((op = raw_frame(r, &hl, &len)) >= 0) {
        const uint8_t *pl = r->buf + hl;

        if (op == 0x8) {
            int code = len >= 2 ? (pl[0] << 8) | pl[1] : 1005;
            snprintf(reason, reasonlen, "%.*s", len > 2 ? (int)len - 2 : 0,
                     (const char *)pl + 2);
            return code;
        }
        if (op == 0x1 && memmem(pl, len, "\"welcome\"", 9) != NULL) {
            raw_consume(r, hl + len);
            return 0;
        }
        raw_consume(r, hl + len);
    }
    snprintf(reason, reasonlen, "connection ended before the welcome");
    return -1;
}

/* Sends a close frame (1000) and waits for the server's close or EOF. */
static void raw_close_clean(struct raw *r)
{
    static const uint8_t code[2] = {0x03, 0xe8};
    uint8_t f[16];
    size_t hl, len;

    if (write_all(r->fd, f, ws_frame(f, 0x88, code, 2)) == 0)
        while (raw_frame(r, &hl, &len) >= 0 && len + hl > 0) {
            if ((r->buf[0] & 0x0f) == 0x8)
                break;
            raw_consume(r, hl + len);
        }
    raw_close(r, 0);
}

/* The whole base frame message, as one masked WebSocket frame. */
static uint8_t *raw_base_frame(const struct probe *p, size_t *flen,
                               size_t *msg_len)
{
    uint8_t *m = malloc(p->frame_len), *f = malloc(p->frame_len + 14);

    if (m == NULL || f == NULL) {
        free(m);
        free(f);
        return NULL;
    }
    put_header(m, 0, p->size.w, p->size.h, (uint32_t)p->base_len);
    memcpy(m + NF_WIRE_FRAME_IN_LEN, p->base, p->base_len);
    *flen = ws_frame(f, 0x82, m, p->frame_len);
    *msg_len = p->frame_len;
    free(m);
    return f;
}

/*
 * cycles: connect, handshake, welcome, close; --count times. Even cycles
 * close with a close frame and wait for the server's, odd ones just drop
 * the TCP connection after the welcome.
 */
static int run_cycles(struct probe *p)
{
    char why[160];
    int refused = 0, last_code = 0;
    struct raw *r = malloc(sizeof(*r));

    if (r == NULL)
        return 2;
    for (int i = 0; i < p->count && !interrupted; i++) {
        int rc;

        if (raw_open(p, r, why, sizeof(why)) < 0) {
            raw_close(r, 0);
            printf("fail cycle %d: %s\n", i, why);
            free(r);
            return 1;
        }
        rc = raw_welcome(r, why, sizeof(why));
        if (rc < 0) {
            raw_close(r, 0);
            printf("fail cycle %d: %s\n", i, why);
            free(r);
            return 1;
        }
        if (rc > 0) {
            refused++;
            last_code = rc;
            raw_close(r, 0);
            continue;
        }
        if (i % 2 == 0)
            raw_close_clean(r);
        else
            raw_close(r, 0);
    }
    fprintf(stderr, "stats cycles=%d refused=%d\n", p->count, refused);
    if (refused > 0)
        printf("fail %d cycles, %d refused (last close %d)\n", p->count,
               refused, last_code);
    else
        printf("ok %d cycles\n", p->count);
    free(r);
    return refused > 0 ? 1 : 0;
}

/*
 * midframe: --count times, connect, wait for the welcome, send half of a
 * valid frame message and drop the connection. Three ways, in turn: half
 * of one WebSocket frame then FIN; one whole first fragment (FIN bit 0)
 * holding half the message then FIN; half of one frame then RST.
 */
static int run_midframe(struct probe *p)
{
    size_t flen, mlen;
    uint8_t *f = raw_base_frame(p, &flen, &mlen), *frag = NULL;
    struct raw *r = malloc(sizeof(*r));
    char why[160];
    int rc = 1;

    frag = malloc(mlen + 14);
    if (f == NULL || r == NULL || frag == NULL) {
        rc = 2;
        goto out;
    }
    for (int i = 0; i < p->count && !interrupted; i++) {
        int how = i % 3, w;
        size_t hl = flen - mlen;

        if (raw_open(p, r, why, sizeof(why)) < 0 ||
            (w = raw_welcome(r, why, sizeof(why))) != 0) {
            raw_close(r, 0);
            printf("fail disconnect %d: %s\n", i, why);
            goto out;
        }
        if (how == 1) {
            uint8_t *m = malloc(mlen);

            if (m == NULL)
                goto out;
            put_header(m, 0, p->size.w, p->size.h, (uint32_t)p->base_len);
            memcpy(m + NF_WIRE_FRAME_IN_LEN, p->base, p->base_len);
            w = write_all(r->fd, frag, ws_frame(frag, 0x02, m, mlen / 2));
            free(m);
        } else {
            w = write_all(r->fd, f, hl + mlen / 2);
        }
        if (w < 0) {
            raw_close(r, 0);
            printf("fail disconnect %d: write: %s\n", i, strerror(errno));
            goto out;
        }
        raw_close(r, how == 2);
    }
    fprintf(stderr, "stats disconnects=%d bytes_each=%zu of %zu\n", p->count,
            mlen / 2, mlen);
    printf("ok %d mid-frame disconnects\n", p->count);
    rc = 0;
out:
    free(f);
    free(frag);
    free(r);
    return rc;
}

/*
 * Looks for the server's close frame among the bytes it sent (replies
 * included, skipped). Returns the code or 1006.
 */
static int raw_find_close(struct raw *r, char *reason, size_t reasonlen)
{
    for (;;) {
        size_t hl = 0;
        uint64_t n;

        while (r->have < 14 && raw_fill(r) > 0)
            ;
        if (r->have < 2)
            break;
        n = r->buf[1] & 0x7f;
        hl = 2;
        if (n == 126) {
            n = ((uint64_t)r->buf[2] << 8) | r->buf[3];
            hl = 4;
        } else if (n == 127) {
            n = 0;
            for (int i = 0; i < 8; i++)
                n = (n << 8) | r->buf[2 + i];
            hl = 10;
        }
        if ((r->buf[0] & 0x0f) == 0x8) {
            while (r->have < hl + n && raw_fill(r) > 0)
                ;
            if (r->have < hl + n || n < 2)
                break;
            snprintf(reason, reasonlen, "%.*s", (int)n - 2,
                     (const char *)r->buf + hl + 2);
            return (r->buf[hl] << 8) | r->buf[hl + 1];
        }
        /* Skip this frame, refilling as needed. */
        n += hl;
        while (n > 0) {
            size_t k = n < r->have ? (size_t)n : r->have;

            raw_consume(r, k);
            n -= k;
            if (n > 0 && raw_fill(r) <= 0)
                goto dropped;
        }
    }
dropped:
    snprintf(reason, reasonlen, "connection lost without a close frame");
    return 1006;
}

/*
 * noread: frames as fast as the socket takes them for --seconds, never
 * reading. If the server ends the connection meanwhile, reads what it
 * sent to find its close code. Otherwise drops the connection.
 */
static int run_noread(struct probe *p)
{
    size_t flen, mlen;
    uint8_t *f = raw_base_frame(p, &flen, &mlen);
    struct raw *r = malloc(sizeof(*r));
    uint64_t t0 = nf_mono_us(), stop = t0 + (uint64_t)(p->seconds * 1e6);
    uint64_t frames = 0;
    char why[160];
    int rc = 2, err = 0;

    if (f == NULL || r == NULL)
        goto out;
    if (raw_open(p, r, why, sizeof(why)) < 0) {
        raw_close(r, 0);
        printf("error %s\n", why);
        goto out;
    }
    while (nf_mono_us() < stop && !interrupted) {
        if (write_all(r->fd, f, flen) < 0) {
            err = errno;
            break;
        }
        frames++;
    }
    fprintf(stderr, "stats sent=%llu bytes=%llu seconds=%.1f\n",
            (unsigned long long)frames, (unsigned long long)(frames * flen),
            (double)(nf_mono_us() - t0) / 1e6);
    if (err == EAGAIN || err == EWOULDBLOCK) {
        printf("fail the server stopped reading: a write blocked %g s after "
               "%llu frames\n",
               p->timeout_s, (unsigned long long)frames);
        rc = 1;
    } else if (err != 0) {
        int code = raw_find_close(r, why, sizeof(why));
        printf("close %d %s\n", code, why);
        rc = 0;
    } else {
        printf("ok sent %llu frames in %g s without reading\n",
               (unsigned long long)frames, p->seconds);
        rc = 0;
    }
    raw_close(r, 0);
out:
    free(f);
    free(r);
    return rc;
}

/*
 * ctrlburst: --count set messages written at once (so they reach the
 * server in one read), the last one asking for a different quality, then
 * reads until a state shows that quality (the server answers a burst with
 * at least one state, the newest replacing any not yet written:
 * PROTOCOL.md 6.5) or the server closes.
 */
static int run_ctrlburst(struct probe *p)
{
    static const char set[] = "{\"type\":\"set\",\"quality\":50}";
    static const char last[] = "{\"type\":\"set\",\"quality\":51}";
    size_t one = sizeof(set) - 1 + 6, hl, len;
    uint8_t *burst = malloc(one * (size_t)p->count);
    struct raw *r = malloc(sizeof(*r));
    int answers = 0, states = 0, op, rc = 2;
    char why[160];

    if (burst == NULL || r == NULL)
        goto out;
    for (int i = 0; i < p->count; i++)
        ws_frame(burst + one * (size_t)i, 0x81,
                 (const uint8_t *)(i == p->count - 1 ? last : set),
                 sizeof(set) - 1);
    if (raw_open(p, r, why, sizeof(why)) < 0 ||
        (op = raw_welcome(r, why, sizeof(why))) != 0) {
        raw_close(r, 0);
        printf("error %s\n", why);
        goto out;
    }
    if (write_all(r->fd, burst, one * (size_t)p->count) < 0) {
        printf("close %d %s\n", raw_find_close(r, why, sizeof(why)), why);
        rc = 0;
        goto done;
    }
    int done = 0;
    while (!done && (op = raw_frame(r, &hl, &len)) >= 0) {
        const uint8_t *pl = r->buf + hl;

        if (op == 0x8) {
            snprintf(why, sizeof(why), "%.*s", len > 2 ? (int)len - 2 : 0,
                     (const char *)pl + 2);
            fprintf(stderr, "stats sent=%d answers=%d states=%d\n", p->count,
                    answers, states);
            printf("close %d %s\n", len >= 2 ? (pl[0] << 8) | pl[1] : 1005,
                   why);
            rc = 0;
            goto done;
        }
        if (op == 0x1 && memmem(pl, len, "\"type\":\"state\"", 14)) {
            answers++;
            states++;
            done = memmem(pl, len, "\"quality\":51", 12) != NULL;
        } else if (op == 0x1 && memmem(pl, len, "\"type\":\"error\"", 14)) {
            answers++;
        }
        raw_consume(r, hl + len);
    }
    fprintf(stderr, "stats sent=%d answers=%d states=%d\n", p->count, answers,
            states);
    if (!done) {
        printf("close 1006 connection lost after %d answers\n", answers);
        rc = 0;
    } else {
        printf("ok %d control messages in one write, %d state, %d error\n",
               p->count, states, answers - states);
        rc = 0;
    }
done:
    raw_close_clean(r);
out:
    free(burst);
    free(r);
    return rc;
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

/* "WxH", each 1..65535. Returns 0 or -1. */
static int parse_size(const char *s, struct size *sz)
{
    int n = 0;

    if (sscanf(s, "%dx%d%n", &sz->w, &sz->h, &n) != 2 ||
        (s[n] != '\0' && s[n] != ',') || sz->w < 1 || sz->h < 1 ||
        sz->w > 65535 || sz->h > 65535)
        return -1;
    return n;
}

static int parse_sizes(const char *s, struct probe *p)
{
    p->n_sizes = 0;
    for (;;) {
        int n;

        if (p->n_sizes == MAX_SIZES ||
            (n = parse_size(s, &p->sizes[p->n_sizes])) < 0) {
            fprintf(stderr,
                    "nf-probe: --sizes: expected up to %d WxH, "
                    "comma-separated\n",
                    MAX_SIZES);
            return -1;
        }
        p->n_sizes++;
        if (s[n] == '\0')
            return 0;
        s += n + 1;
    }
}

/* Default --count for the mode. */
static int default_count(enum mode m)
{
    switch (m) {
    case MODE_RESIZE:
        return 2;
    case MODE_FLOOD:
        return 200;
    case MODE_CTRLFLOOD:
        return 10000;
    case MODE_CYCLES:
        return 1000;
    case MODE_CTRLBURST:
        return 10;
    default:
        return 1;
    }
}

/* Returns 0, 1 after --help, -1 on bad usage. */
static int parse_options(int argc, char **argv, struct probe *p)
{
    static const struct option longs[] = {
        {"send", required_argument, NULL, 's'},
        {"bytes", required_argument, NULL, 'b'},
        {"size", required_argument, NULL, 'z'},
        {"sizes", required_argument, NULL, 'Z'},
        {"count", required_argument, NULL, 'c'},
        {"seconds", required_argument, NULL, 'S'},
        {"save", required_argument, NULL, 'D'},
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
    p->seconds = 5;
    p->subprotocol = NF_WIRE_SUBPROTOCOL;
    p->size = (struct size){BASE_W, BASE_H};
    p->sizes[0] = (struct size){BASE_W, BASE_H};
    p->sizes[1] = (struct size){BASE_W * 2, BASE_H * 2};
    p->n_sizes = 2;
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
        case 'z':
            if (parse_size(optarg, &p->size) < 0 || strchr(optarg, ',')) {
                fprintf(stderr, "nf-probe: --size: expected WxH\n");
                return -1;
            }
            break;
        case 'Z':
            if (parse_sizes(optarg, p) < 0)
                return -1;
            break;
        case 'c':
            if (nf_cli_number("nf-probe", "count", optarg, 1, 1e7, &v) < 0)
                return -1;
            p->count = (int)v;
            break;
        case 'S':
            if (nf_cli_number("nf-probe", "seconds", optarg, 0, 86400, &v) < 0)
                return -1;
            p->seconds = v;
            break;
        case 'D':
            p->save_dir = optarg;
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
    if (p->count == 0)
        p->count = default_count(p->mode);
    p->url = argv[optind];
    if (p->mode == MODE_FILE)
        p->file = argv[optind + 1];
    return 0;
}

/* Prints the one result line; returns the exit status. */
static int report(const struct probe *p)
{
    if (scripted(p))
        print_stats(p);
    if (p->finished && !p->timed_out) {
        printf("%s %s\n", p->check_failed ? "fail" : "ok", p->result);
        return p->check_failed ? 1 : 0;
    }
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
    printf("timeout no close within %g s (sent %s: %zu of %zu bytes, "
           "%d messages)\n",
           p->timeout_s, mode_names[p->mode], p->msg_sent, p->msg_len, p->sent);
    return 2;
}

/* Runs the modes that go through ws-client.h. */
static int run_lws(struct probe *p)
{
    static const struct nf_ws_client_ops ops = {
        .on_open = on_open,
        .on_message = on_message,
        .on_writable = on_writable,
        .on_timer = on_timer,
        .on_end = on_end,
    };
    struct nf_ws_client_config cfg = {0};
    char err[256];

    cfg.url = p->url;
    cfg.subprotocol = p->subprotocol;
    cfg.origin = p->origin;
    cfg.verbose = p->verbose;
    if (nf_ws_client_init(&p->ws, &cfg, &ops, p, err, sizeof(err)) < 0) {
        fprintf(stderr, "nf-probe: %s\n", err);
        return 2;
    }
    nf_ws_client_set_timer(p->ws, TICK_US);
    while (nf_ws_client_end(p->ws)->how == NF_WS_OPEN &&
           nf_ws_client_service(p->ws) == 0)
        ;
    return report(p);
}

int main(int argc, char **argv)
{
    static struct probe p;
    struct sigaction sa;
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
    p.deadline_us = nf_mono_us() + (uint64_t)(p.timeout_s * 1e6);
    if (p.mode == MODE_MIDFRAME)
        rc = run_midframe(&p);
    else if (p.mode == MODE_NOREAD)
        rc = run_noread(&p);
    else if (p.mode == MODE_CYCLES)
        rc = run_cycles(&p);
    else if (p.mode == MODE_CTRLBURST)
        rc = run_ctrlburst(&p);
    else
        rc = run_lws(&p);
    nf_ws_client_free(p.ws);
    free(p.frame);
    free(p.base);
    free(p.msg);
    return rc;
}
