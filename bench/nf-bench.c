/*
 * nf-bench.c - latency and throughput benchmark of a nextframe server.
 *
 * Drives N concurrent streams from one process against a running server
 * that speaks protocol v1 (ours or a baseline), from a real clip, and
 * reports per-frame latency, throughput, drops and the server's stage
 * times (the FRAME_OUT timings, protocol/PROTOCOL.md section 3.2).
 *
 * The clip (a 4:2:0 .y4m) is JPEG-encoded once, up front, and looped, so
 * the client's own CPU cost during the run is a memcpy and a header per
 * frame. Each stream is one thread with its own struct nf_ws_client (one
 * lws context, its own poll loop) and starts at a different frame of the
 * clip. A stream keeps at most two frames unanswered (the demo page's
 * rule): with --fps 0 it sends whenever it has credit (closed loop); with
 * --fps F it has a frame due every 1/F s (open loop), and a frame due
 * while two are unanswered is skipped and counted, never sent late.
 *
 * Latency is the reply's arrival minus the frame's send, both on this
 * process's monotonic clock. Replies come in seq order, so a reply to seq
 * N means every older unanswered frame was dropped by the server (newest
 * wins, PROTOCOL.md 4.3). The first --warmup seconds are not measured;
 * frames sent in the following --seconds are, and their replies are
 * waited for after the window closes.
 *
 * It is an edge program: it prints a table on stdout, progress on stderr,
 * optionally JSON, and exits 0 (done), 1 (a connection failed or was
 * closed by the server, or no reply was measured) or 2 (bad usage or
 * input). It is not a load generator for many machines: every stream
 * shares this process's CPU.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "control.h"
#include "error.h"
#include "i420.h"
#include "jpeg.h"
#include "mono-clock.h"
#include "percentile.h"
#include "wire.h"
#include "ws-client.h"
#include "y4m.h"

#define PROG        "nf-bench"
#define MAX_STREAMS 256
#define INFLIGHT    2         /* Unanswered frames per stream, at most. */
#define TICK_US     20000     /* Timer period when nothing is due sooner. */
#define CONNECT_US  10000000u /* Connect and welcome, from the start. */
#define FORGET_US   5000000u  /* An unanswered frame is given up after. */
#define DRAIN_US    3000000u  /* After the window: wait for last replies. */
#define PROGRESS_US 1000000u

struct options {
    const char *url;
    const char *input;
    const char *json;
    const char *label;
    const char *style; /* Asked in hello; NULL: the server's default. */
    int streams;
    double fps; /* Per stream; 0: closed loop. */
    double seconds;
    double warmup;
    int quality;        /* JPEG quality of the frames sent. */
    int server_quality; /* Asked in hello; 0: the server's default. */
    int scale8;         /* Model scale asked in hello (eighths); 0: none. */
    int clip_frames;    /* Frames of the input used, at most. */
    int quiet;
    int verbose;
};

/* One JPEG of the clip. */
struct jpeg_frame {
    uint8_t *data; /* Owned by the clip. */
    size_t len;
};

/* The encoded clip. Written by main before the streams start, then
 * read-only and shared by every stream thread. */
struct clip {
    int width, height;
    int n;
    struct jpeg_frame *frames; /* n of them. */
    size_t max_len;
    double mean_len;
};

/* What one measured reply carried. */
enum field {
    F_LATENCY,
    F_QUEUE,
    F_DECODE,
    F_PREDICT,
    F_ENCODE,
    F_SERVER,
    F_OVERHEAD, /* Derived: server - decode - predict - encode. */
    F_COUNT,
};

static const char *const field_names[F_COUNT] = {
    "latency", "queue", "decode", "predict", "encode", "server", "overhead",
};

/* Microseconds; F_OVERHEAD is not stored but computed by field(). */
struct record {
    uint32_t us[F_SERVER + 1];
};

/* Frame counts of one stream or of all; "measured" frames only. */
struct counts {
    uint64_t sent;       /* Frames sent in the window. */
    uint64_t replies;    /* Replies to those. */
    uint64_t dropped;    /* Superseded (older than a reply) or unanswered. */
    uint64_t unanswered; /* Of dropped: given up (timeout, end, close). */
    uint64_t skipped;    /* Due but not sent: no credit (open loop). */
    uint64_t server_dropped; /* FRAME_OUT dropped counter, over the window. */
    uint64_t late;           /* Replies to frames already given up. */
    uint64_t bad_echo;       /* Replies whose capture_us was not ours. */
};

/* One unanswered frame, by seq % INFLIGHT. */
struct slot {
    uint64_t send_us;
    int measured; /* Sent inside the window. */
};

enum stream_state {
    ST_CONNECTING,
    ST_WELCOME, /* Open; waiting for the welcome. */
    ST_RUNNING,
    ST_DRAINING, /* Window over; waiting for the last replies. */
    ST_CLOSING,
    ST_DONE,
};

struct bench;

/*
 * One stream. Main sets the fields of the first group before the thread
 * starts; the thread owns everything else while it runs (its lws callbacks
 * run on it), and main reads the results only after pthread_join(). The
 * progress counters are the exception: the thread adds, main reads them
 * at any time (relaxed atomics; they are only for the progress line).
 */
struct stream {
    /* Set by main before the thread starts; read-only afterwards. */
    struct bench *b;
    int index;
    int start_frame;
    uint64_t phase_us; /* Open loop: first frame due this long after
                          the welcome, to spread the streams over a
                          period. */
    pthread_t thread;
    /* Stream thread only. */
    struct nf_ws_client *ws;
    enum stream_state state;
    uint8_t *tx; /* NF_WS_PRE + header + clip->max_len bytes. */
    char hello[NF_WS_PRE + 256];
    int hello_len; /* > 0 while the hello is unsent. */
    int next_frame;
    uint32_t next_seq, oldest_seq; /* oldest == next: none in flight. */
    struct slot slots[INFLIGHT];
    uint64_t next_due_us; /* Open loop. */
    int pending;          /* Open loop: a due frame waits for the socket. */
    uint64_t pending_due_us;
    uint32_t hdr_dropped_base; /* FRAME_OUT dropped before the window. */
    uint32_t hdr_dropped_last;
    struct counts c;
    struct record *rec; /* Measured replies, in order. */
    size_t n_rec, cap_rec;
    int out_width, out_height; /* Of the last reply. */
    /* Results; stream thread while it runs, main after the join. */
    int failed;
    int connected; /* The welcome arrived. */
    char error[320];
    int close_code;
    char close_reason[128];
    char backend[NF_CTRL_STYLE_MAX];
    char style[NF_CTRL_STYLE_MAX];
    char *welcome; /* Raw welcome JSON, owned. */
    /* Progress: the stream thread adds, main reads (relaxed). */
    _Atomic uint64_t prog_sent, prog_replies, prog_latency_us, prog_dropped,
        prog_skipped;
};

/* The run. main owns it; the fields are shared as their comments say. */
struct bench {
    struct options o; /* Read-only once the streams start. */
    struct clip clip; /* Read-only once the streams start. */
    int argc;         /* For the JSON's command line. */
    char **argv;
    uint64_t t0_us;           /* Streams started. Read-only. */
    uint64_t warm_end_us;     /* The window opens. Read-only. */
    uint64_t period_us;       /* 1/fps; 0: closed loop. Read-only. */
    _Atomic uint64_t stop_us; /* The window closes; main moves it earlier
                                 on Ctrl-C, streams read it. */
    atomic_int hurry;         /* Second Ctrl-C: close without draining. */
    atomic_int running;       /* Stream threads not finished. */
    /*
     * Guards nf_ws_client_init() and _free(): lws context creation and
     * destruction touch process-wide state (the log level, library
     * set-up), so two threads must not run them at once.
     */
    pthread_mutex_t lws_lock;
    struct stream *streams; /* o.streams of them. */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted++;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: " PROG " --input CLIP.y4m [--url URL] [--streams N] [--fps F]\n"
        "                [--seconds S] [--warmup S] [--quality Q] [--json "
        "OUT.json]\n"
        "                [--label TEXT] [--quiet]\n"
        "\n"
        "Benchmarks a nextframe server (or any protocol v1 server): N\n"
        "concurrent streams from this process, each a thread with its own\n"
        "connection, send the clip's frames (JPEG-encoded once, looped,\n"
        "each stream from a different frame) and measure every reply.\n"
        "\n"
        "options:\n"
        "  --url URL          ws://HOST:PORT/v1/stream\n"
        "                     (default ws://127.0.0.1:8080/v1/stream)\n"
        "  --input CLIP.y4m   8-bit 4:2:0 YUV4MPEG2 clip (required)\n"
        "  --streams N        concurrent streams, 1..%d (default 1)\n"
        "  --fps F            frames per second per stream; 0 = as fast as\n"
        "                     the server answers (default 0). Either way at\n"
        "                     most %d frames are unanswered per stream; with\n"
        "                     F > 0 a frame due while %d are unanswered is\n"
        "                     skipped (counted as skipped by the client)\n"
        "  --seconds S        measured time (default 10)\n"
        "  --warmup S         unmeasured time before it (default 2)\n"
        "  --quality Q        JPEG quality of the frames sent (default 85)\n"
        "  --server-quality Q ask the server for output JPEG quality Q\n"
        "  --style NAME       ask the server for style NAME\n"
        "  --scale S          ask the server to run the model at S of the\n"
        "                     frame size (1/8 ... 1; replies at that size)\n"
        "  --clip-frames N    use at most the first N frames of the clip\n"
        "                     (default 150)\n"
        "  --json OUT.json    write every figure, per stream too, and the\n"
        "                     sorted latencies (for bench/plot-bench.py)\n"
        "  --label TEXT       a name for this run in the JSON and plots\n"
        "  --quiet            no progress lines on stderr\n"
        "  -v, --verbose      log the server's control messages and lws\n"
        "                     warnings\n"
        "  -h, --help         this text\n"
        "\n"
        "Latency is reply received minus frame sent (this process's clock).\n"
        "Dropped frames are those the server never answered: older than an\n"
        "answered one (newest wins), or unanswered for %u s or at the end.\n"
        "Server overhead = server_us - decode_us - predict_us - encode_us.\n"
        "Ctrl-C ends the window early; a second one closes at once.\n"
        "\n"
        "Exit status: 0 done; 1 a connection failed or the server closed\n"
        "one (code and reason printed), or no reply was measured; 2 bad\n"
        "usage or input.\n",
        MAX_STREAMS, INFLIGHT, INFLIGHT, FORGET_US / 1000000u);
}

/* ---- Options ------------------------------------------------------------ */

/* Parses one numeric option; returns 0 or -1 (message printed). */
static int number(const char *opt, const char *s, double lo, double hi,
                  double *out)
{
    return nf_cli_number(PROG, opt, s, lo, hi, out) < 0 ? -1 : 0;
}

/* Stores a numeric option into o; returns 0 or -1 (message printed). */
static int set_number(struct options *o, int c, const char *name,
                      const char *arg)
{
    double v = 0;
    int rc = 0;

    switch (c) {
    case 'n':
        rc = number(name, arg, 1, MAX_STREAMS, &v);
        o->streams = (int)v;
        break;
    case 'f':
        rc = number(name, arg, 0, 1000, &v);
        o->fps = v;
        break;
    case 's':
        rc = number(name, arg, 0.1, 86400, &v);
        o->seconds = v;
        break;
    case 'w':
        rc = number(name, arg, 0, 3600, &v);
        o->warmup = v;
        break;
    case 'q':
        rc = number(name, arg, 1, 100, &v);
        o->quality = (int)v;
        break;
    case 'Q':
        rc = number(name, arg, 1, 100, &v);
        o->server_quality = (int)v;
        break;
    case 'c':
        rc = number(name, arg, 1, 100000, &v);
        o->clip_frames = (int)v;
        break;
    default:
        return -1;
    }
    if (rc == 0 && (c == 'n' || c == 'q' || c == 'Q' || c == 'c') &&
        v != (int)v) {
        fprintf(stderr, PROG ": --%s: '%s' is not a whole number\n", name, arg);
        return -1;
    }
    return rc;
}

/* Checks what getopt cannot. Returns 0 or -1 (message printed). */
static int check_options(const struct options *o)
{
    if (o->input == NULL) {
        fprintf(stderr, PROG ": --input CLIP.y4m is required (try --help)\n");
        return -1;
    }
    if (strncmp(o->url, "ws://", 5) != 0) {
        fprintf(stderr,
                PROG ": --url: '%s' must start with ws:// (for example "
                     "ws://127.0.0.1:8080/v1/stream)\n",
                o->url);
        return -1;
    }
    if (o->style != NULL && strlen(o->style) >= NF_CTRL_STYLE_MAX) {
        fprintf(stderr, PROG ": --style: name too long (at most %d bytes)\n",
                NF_CTRL_STYLE_MAX - 1);
        return -1;
    }
    return 0;
}

/* Parses argv into *o. Returns 0, 1 after --help, or -1 on bad usage. */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"url", required_argument, NULL, 'u'},
        {"input", required_argument, NULL, 'i'},
        {"streams", required_argument, NULL, 'n'},
        {"fps", required_argument, NULL, 'f'},
        {"seconds", required_argument, NULL, 's'},
        {"warmup", required_argument, NULL, 'w'},
        {"quality", required_argument, NULL, 'q'},
        {"server-quality", required_argument, NULL, 'Q'},
        {"style", required_argument, NULL, 'S'},
        {"scale", required_argument, NULL, 'x'},
        {"clip-frames", required_argument, NULL, 'c'},
        {"json", required_argument, NULL, 'j'},
        {"label", required_argument, NULL, 'l'},
        {"quiet", no_argument, NULL, 'z'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, idx;

    memset(o, 0, sizeof(*o));
    o->url = "ws://127.0.0.1:8080/v1/stream";
    o->streams = 1;
    o->seconds = 10;
    o->warmup = 2;
    o->quality = 85;
    o->clip_frames = 150;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "vh", longs, &idx)) != -1) {
        switch (c) {
        case 'u':
            o->url = optarg;
            break;
        case 'i':
            o->input = optarg;
            break;
        case 'S':
            o->style = optarg;
            break;
        case 'x':
            if (nf_cli_scale(PROG, optarg, &o->scale8) != 0)
                return -1;
            break;
        case 'j':
            o->json = optarg;
            break;
        case 'l':
            o->label = optarg;
            break;
        case 'z':
            o->quiet = 1;
            break;
        case 'v':
            o->verbose = 1;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case '?':
            fprintf(stderr, PROG ": bad option (try --help)\n");
            return -1;
        default:
            if (set_number(o, c, longs[idx].name, optarg) < 0)
                return -1;
            break;
        }
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s' (try --help)\n",
                argv[optind]);
        return -1;
    }
    return check_options(o);
}

/* ---- The clip ----------------------------------------------------------- */

/* Encodes one I420 frame (converted to full range if need be) into the
 * clip. Returns 0 or a negative NF_E* code. */
static int clip_add(struct clip *cl, struct nf_jpeg *j,
                    const uint8_t *const planes[3], int quality, uint8_t *buf,
                    size_t cap)
{
    struct jpeg_frame *f = &cl->frames[cl->n];
    int n = nf_jpeg_encode_i420(j, planes, cl->width, cl->height, quality, buf,
                                cap);

    if (n < 0)
        return n;
    f->data = malloc((size_t)n);
    if (f->data == NULL)
        return NF_ENOMEM;
    memcpy(f->data, buf, (size_t)n);
    f->len = (size_t)n;
    if (f->len > cl->max_len)
        cl->max_len = f->len;
    cl->mean_len += ((double)f->len - cl->mean_len) / (cl->n + 1);
    cl->n++;
    return 0;
}

/* Reads and encodes up to o->clip_frames frames of r into cl. Returns 0
 * or -1 (message printed). */
static int clip_encode(struct clip *cl, struct nf_y4m_reader *r,
                       const struct options *o, uint8_t *buf, size_t cap)
{
    const struct nf_y4m_info *info = nf_y4m_reader_info(r);
    uint8_t *full = NULL, *fp[3];
    struct nf_jpeg *j = NULL;
    int rc = -1;

    cl->frames = calloc((size_t)o->clip_frames, sizeof(*cl->frames));
    if (!info->full_range)
        full = malloc(nf_i420_size(info->width, info->height));
    if (cl->frames == NULL || (!info->full_range && full == NULL) ||
        nf_jpeg_init(&j) < 0) {
        fprintf(stderr, PROG ": out of memory\n");
        goto fail;
    }
    while (cl->n < o->clip_frames) {
        const uint8_t *planes[3];
        int n = nf_y4m_reader_read(r, planes);

        if (n == 0)
            break;
        if (n < 0) {
            fprintf(stderr, PROG ": %s: %s\n", o->input,
                    nf_y4m_reader_error(r));
            goto fail;
        }
        if (full != NULL) {
            /* JPEG means full range; y4m by default means limited. */
            nf_i420_planes(full, cl->width, cl->height, fp);
            nf_i420_limited_to_full(planes, cl->width, cl->height, fp);
            planes[0] = fp[0];
            planes[1] = fp[1];
            planes[2] = fp[2];
        }
        n = clip_add(cl, j, planes, o->quality, buf, cap);
        if (n < 0) {
            fprintf(stderr, PROG ": JPEG encode failed: %s\n", nf_strerror(n));
            goto fail;
        }
    }
    rc = 0;
fail:
    nf_jpeg_free(j);
    free(full);
    return rc;
}

/* Loads o->input into cl. Returns 0 or -1 (message printed). */
static int clip_load(struct clip *cl, const struct options *o)
{
    struct nf_y4m_reader *r = NULL;
    FILE *f = fopen(o->input, "rb");
    uint8_t *buf = NULL;
    size_t cap;
    char err[256];
    int rc = -1;

    if (f == NULL) {
        fprintf(stderr, PROG ": %s: %s\n", o->input, strerror(errno));
        return -1;
    }
    if (nf_y4m_reader_init(&r, f, err, sizeof(err)) < 0) {
        fprintf(stderr, PROG ": %s: %s\n", o->input, err);
        goto fail;
    }
    cl->width = nf_y4m_reader_info(r)->width;
    cl->height = nf_y4m_reader_info(r)->height;
    cap = nf_jpeg_bound(cl->width, cl->height);
    buf = malloc(cap);
    if (buf == NULL) {
        fprintf(stderr, PROG ": out of memory\n");
        goto fail;
    }
    if (clip_encode(cl, r, o, buf, cap) < 0)
        goto fail;
    if (cl->n == 0) {
        fprintf(stderr, PROG ": %s: the clip has no frames\n", o->input);
        goto fail;
    }
    rc = 0;
fail:
    free(buf);
    nf_y4m_reader_free(r);
    fclose(f);
    return rc;
}

static void clip_free(struct clip *cl)
{
    for (int i = 0; i < cl->n; i++)
        free(cl->frames[i].data);
    free(cl->frames);
}

/* ---- A stream: sending -------------------------------------------------- */

static uint32_t in_flight(const struct stream *s)
{
    return s->next_seq - s->oldest_seq;
}

static int in_window(const struct bench *b, uint64_t t)
{
    return t >= b->warm_end_us && t < atomic_load(&b->stop_us);
}

/* Records a stream failure: the first message wins; printed at once. */
static void stream_fail(struct stream *s, const char *fmt, ...)
{
    va_list ap;

    if (s->failed)
        return;
    s->failed = 1;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof(s->error), fmt, ap);
    va_end(ap);
    fprintf(stderr, PROG ": stream %d: %s\n", s->index, s->error);
}

static void stream_close(struct stream *s, int code, const char *reason)
{
    s->state = ST_CLOSING;
    nf_ws_client_close(s->ws, code, reason);
}

/* Gives up the oldest unanswered frame (superseded when a newer one was
 * answered, else given up); returns its credit. */
static void forget_oldest(struct stream *s, int unanswered)
{
    const struct slot *sl = &s->slots[s->oldest_seq % INFLIGHT];

    if (sl->measured) {
        s->c.dropped++;
        s->c.unanswered += (uint64_t)unanswered;
    }
    atomic_fetch_add_explicit(&s->prog_dropped, 1, memory_order_relaxed);
    s->oldest_seq++;
}

/* Sends the stream's next clip frame. Only from on_writable. */
static void send_frame(struct stream *s, uint64_t now)
{
    const struct clip *cl = &s->b->clip;
    const struct jpeg_frame *f = &cl->frames[s->next_frame];
    uint8_t *msg = s->tx + NF_WS_PRE;
    struct nf_frame_header h = {0};
    struct slot *sl = &s->slots[s->next_seq % INFLIGHT];

    h.type = NF_MSG_FRAME_IN;
    h.seq = s->next_seq;
    h.capture_us = now;
    h.width = (uint16_t)cl->width;
    h.height = (uint16_t)cl->height;
    h.format = NF_FORMAT_JPEG;
    h.payload_len = (uint32_t)f->len;
    /* A copy per send: lws masks the payload in place. */
    memcpy(msg + NF_WIRE_FRAME_IN_LEN, f->data, f->len);
    if (nf_wire_encode_header(&h, msg, NF_WIRE_FRAME_IN_LEN) !=
            NF_WIRE_FRAME_IN_LEN ||
        nf_ws_client_write(s->ws, msg, NF_WIRE_FRAME_IN_LEN + f->len,
                           NF_WS_BINARY) < 0) {
        /* lws closes the connection; on_end says how. */
        s->state = ST_CLOSING;
        return;
    }
    s->next_frame = (s->next_frame + 1) % cl->n;
    sl->send_us = now;
    sl->measured = in_window(s->b, now);
    s->c.sent += (uint64_t)sl->measured;
    s->next_seq++;
    atomic_fetch_add_explicit(&s->prog_sent, 1, memory_order_relaxed);
}

static void on_writable(struct nf_ws_client *ws, void *user)
{
    struct stream *s = user;
    uint64_t now = nf_mono_us();

    if (s->hello_len > 0) {
        if (nf_ws_client_write(ws, (uint8_t *)s->hello + NF_WS_PRE,
                               (size_t)s->hello_len, NF_WS_TEXT) < 0)
            s->state = ST_CLOSING;
        s->hello_len = 0;
        nf_ws_client_want_write(ws);
        return;
    }
    if (s->state != ST_RUNNING || now >= atomic_load(&s->b->stop_us))
        return;
    if (s->b->period_us != 0) {
        if (s->pending && in_flight(s) < INFLIGHT) {
            s->pending = 0;
            send_frame(s, now);
        }
        return;
    }
    if (in_flight(s) < INFLIGHT)
        send_frame(s, now);
    if (s->state == ST_RUNNING && in_flight(s) < INFLIGHT)
        nf_ws_client_want_write(ws);
}

static void count_skip(struct stream *s, uint64_t due_us)
{
    s->c.skipped += (uint64_t)in_window(s->b, due_us);
    atomic_fetch_add_explicit(&s->prog_skipped, 1, memory_order_relaxed);
}

/*
 * Open loop: handles every frame due by now. A due frame is sent when it
 * has credit; one due without credit, or still waiting for the socket
 * when the next one is due, is skipped. Late ticks are not made up for.
 */
static void tick_open_loop(struct stream *s, uint64_t now)
{
    while (s->next_due_us <= now) {
        uint64_t due = s->next_due_us;

        s->next_due_us += s->b->period_us;
        if (s->pending) {
            count_skip(s, s->pending_due_us);
            s->pending = 0;
        }
        if (in_flight(s) >= INFLIGHT) {
            count_skip(s, due);
            continue;
        }
        s->pending = 1;
        s->pending_due_us = due;
    }
    if (s->pending)
        nf_ws_client_want_write(s->ws);
}

/* ---- A stream: receiving ------------------------------------------------ */

static void add_record(struct stream *s, const struct nf_frame_header *h,
                       uint64_t latency_us)
{
    struct record *r;

    if (s->n_rec == s->cap_rec) {
        size_t cap = s->cap_rec ? s->cap_rec * 2 : 4096;
        struct record *p = realloc(s->rec, cap * sizeof(*p));

        if (p == NULL) {
            stream_fail(s, "out of memory for the measurements");
            stream_close(s, NF_CLOSE_NORMAL, "client out of memory");
            return;
        }
        s->rec = p;
        s->cap_rec = cap;
    }
    r = &s->rec[s->n_rec++];
    r->us[F_LATENCY] =
        latency_us > UINT32_MAX ? UINT32_MAX : (uint32_t)latency_us;
    r->us[F_QUEUE] = h->queue_us;
    r->us[F_DECODE] = h->decode_us;
    r->us[F_PREDICT] = h->predict_us;
    r->us[F_ENCODE] = h->encode_us;
    r->us[F_SERVER] = h->server_us;
}

/* Accounts one well-formed reply whose seq is in flight. */
static void record_reply(struct stream *s, const struct nf_frame_header *h,
                         uint64_t now)
{
    const struct slot *sl = &s->slots[h->seq % INFLIGHT];
    uint64_t latency = now - sl->send_us;

    /* Replies come in order: every older unanswered frame was dropped. */
    while (s->oldest_seq != h->seq)
        forget_oldest(s, 0);
    s->oldest_seq++;
    if (h->capture_us != sl->send_us)
        s->c.bad_echo++;
    s->out_width = h->width;
    s->out_height = h->height;
    s->hdr_dropped_last = h->dropped;
    if (sl->measured) {
        s->c.replies++;
        add_record(s, h, latency);
    } else {
        /* A warm-up frame's reply: the counter so far is not ours. */
        s->hdr_dropped_base = h->dropped;
    }
    atomic_fetch_add_explicit(&s->prog_replies, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->prog_latency_us, latency,
                              memory_order_relaxed);
}

static void on_frame(struct stream *s, const uint8_t *msg, size_t len)
{
    struct nf_frame_header h;
    uint64_t now = nf_mono_us();
    int hl = nf_wire_decode_header(msg, len, &h);

    if (hl <= 0 || h.type != NF_MSG_FRAME_OUT ||
        nf_wire_check_message(&h, (size_t)hl, len) < 0) {
        stream_fail(s, "malformed reply from the server (%s)",
                    hl < 0 ? nf_strerror(hl) : "bad type or length");
        stream_close(s, NF_CLOSE_BAD_MESSAGE, "malformed reply");
        return;
    }
    if ((int32_t)(h.seq - s->oldest_seq) < 0) {
        s->c.late++; /* Its frame was given up already. */
        return;
    }
    if (h.seq - s->oldest_seq >= in_flight(s)) {
        stream_fail(s, "reply to seq %u, which was never sent (next %u)",
                    (unsigned)h.seq, (unsigned)s->next_seq);
        stream_close(s, NF_CLOSE_BAD_MESSAGE, "unexpected seq");
        return;
    }
    record_reply(s, &h, now);
    if (s->state == ST_DRAINING && in_flight(s) == 0)
        stream_close(s, NF_CLOSE_NORMAL, "done");
    else if (s->state == ST_RUNNING && s->b->period_us == 0)
        nf_ws_client_want_write(s->ws);
}

/* The welcome: remember the server's words, start sending. */
static void on_welcome(struct stream *s, const struct nf_ctrl_msg *m,
                       const uint8_t *msg, size_t len)
{
    uint64_t now = nf_mono_us();

    snprintf(s->backend, sizeof(s->backend), "%s", m->backend);
    snprintf(s->style, sizeof(s->style), "%s", m->style);
    free(s->welcome);
    s->welcome = strndup((const char *)msg, len);
    s->connected = 1;
    s->state = ST_RUNNING;
    s->next_due_us = now + s->phase_us;
    nf_ws_client_want_write(s->ws);
}

/*
 * A welcome that nf_ctrl_parse() refuses (a baseline server with a backend
 * name outside the style-name characters, say) still starts the stream:
 * the benchmark needs only its arrival. Returns 1 when msg was one.
 */
static int lenient_welcome(struct stream *s, const uint8_t *msg, size_t len)
{
    json_t *j = json_loadb((const char *)msg, len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    const char *backend = json_string_value(json_object_get(j, "backend"));
    struct nf_ctrl_msg m = {0};
    int is = type != NULL && strcmp(type, "welcome") == 0;

    if (is && s->state == ST_WELCOME) {
        fprintf(stderr,
                PROG ": stream %d: the welcome is not quite protocol v1; "
                     "going on\n",
                s->index);
        snprintf(m.backend, sizeof(m.backend), "%s", backend ? backend : "?");
        on_welcome(s, &m, msg, len);
    }
    json_decref(j);
    return is;
}

static void on_control(struct stream *s, const uint8_t *msg, size_t len)
{
    struct nf_ctrl_msg m;
    int rc = nf_ctrl_parse((const char *)msg, len, &m);

    if (s->b->o.verbose)
        fprintf(stderr, PROG ": stream %d: < %.*s\n", s->index, (int)len,
                (const char *)msg);
    if (rc < 0) {
        if (!lenient_welcome(s, msg, len))
            fprintf(stderr,
                    PROG ": stream %d: ignoring a bad control message (%s)\n",
                    s->index, nf_strerror(rc));
        return;
    }
    if (m.type == NF_CTRL_ERROR)
        fprintf(stderr, PROG ": stream %d: server error %s: %s\n", s->index,
                m.code, m.message);
    else if (m.type == NF_CTRL_WELCOME && s->state == ST_WELCOME)
        on_welcome(s, &m, msg, len);
}

static void on_message(struct nf_ws_client *ws, void *user, const uint8_t *msg,
                       size_t len, int binary)
{
    struct stream *s = user;

    (void)ws;
    if (binary)
        on_frame(s, msg, len);
    else
        on_control(s, msg, len);
}

/* ---- A stream: connection events and time ------------------------------- */

static void on_open(struct nf_ws_client *ws, void *user)
{
    struct stream *s = user;

    s->state = ST_WELCOME;
    nf_ws_client_want_write(ws); /* The hello. */
}

static void on_end(struct nf_ws_client *ws, void *user,
                   const struct nf_ws_end *end)
{
    struct stream *s = user;
    const char *url = s->b->o.url;
    int clean = s->state == ST_CLOSING &&
                (end->how == NF_WS_LOCAL_CLOSED ||
                 (end->how == NF_WS_PEER_CLOSED && end->code == 1000));

    (void)ws;
    s->state = ST_DONE;
    s->close_code = end->code;
    snprintf(s->close_reason, sizeof(s->close_reason), "%s", end->reason);
    if (clean)
        return;
    switch (end->how) {
    case NF_WS_CONNECT_FAILED:
        stream_fail(s, "cannot connect to %s: %s (is the server running?)", url,
                    end->reason);
        break;
    case NF_WS_REFUSED:
        stream_fail(s,
                    "%s refused the WebSocket upgrade: %s (is the path "
                    "/v1/stream?)",
                    url, end->reason);
        break;
    case NF_WS_PEER_CLOSED:
        stream_fail(s, "server closed the connection with code %d (%s)",
                    end->code, end->reason[0] ? end->reason : "no reason");
        break;
    case NF_WS_DROPPED:
        stream_fail(s, "connection lost without a close frame (code 1006)");
        break;
    default:
        stream_fail(s, "connection closed with code %d (%s)", end->code,
                    end->reason);
        break;
    }
}

/* Gives up frames unanswered for FORGET_US (PROTOCOL.md 4.2). */
static void forget_stale(struct stream *s, uint64_t now)
{
    while (in_flight(s) > 0 &&
           now - s->slots[s->oldest_seq % INFLIGHT].send_us > FORGET_US)
        forget_oldest(s, 1);
}

/* Moves the stream on by the clock; returns the microseconds until it
 * next needs to look. */
static uint64_t step(struct stream *s, uint64_t now)
{
    const struct bench *b = s->b;
    uint64_t stop = atomic_load(&s->b->stop_us), wait = TICK_US;

    if (atomic_load(&b->hurry) && s->state < ST_CLOSING)
        stream_close(s, NF_CLOSE_NORMAL, "interrupted");
    switch (s->state) {
    case ST_CONNECTING:
    case ST_WELCOME:
        if (now > b->t0_us + CONNECT_US || now > stop + DRAIN_US) {
            stream_fail(s, "no %s from %s within %u s",
                        s->state == ST_WELCOME ? "welcome" : "connection",
                        b->o.url, (unsigned)((now - b->t0_us) / 1000000u));
            stream_close(s, NF_CLOSE_NORMAL, "timeout");
        }
        break;
    case ST_RUNNING:
        forget_stale(s, now);
        if (now >= stop) {
            s->state = ST_DRAINING;
            s->pending = 0;
        } else if (b->period_us != 0) {
            tick_open_loop(s, now);
            if (s->next_due_us - now < wait)
                wait = s->next_due_us - now;
        } else if (in_flight(s) < INFLIGHT) {
            nf_ws_client_want_write(s->ws);
        }
        if (s->state == ST_RUNNING && stop - now < wait)
            wait = stop - now;
        break;
    default:
        break;
    }
    if (s->state == ST_DRAINING) {
        forget_stale(s, now);
        if (in_flight(s) == 0 || now > stop + DRAIN_US)
            stream_close(s, NF_CLOSE_NORMAL, "done");
    }
    return wait > 0 ? wait : 1;
}

static void on_timer(struct nf_ws_client *ws, void *user)
{
    struct stream *s = user;
    uint64_t wait = step(s, nf_mono_us());

    if (s->state != ST_DONE)
        nf_ws_client_set_timer(ws, wait);
}

/* Prepares what the stream sends. Returns 0 or -1 (failure recorded). */
static int stream_prepare(struct stream *s)
{
    const struct options *o = &s->b->o;
    int n;

    s->tx = malloc(NF_WS_PRE + NF_WIRE_FRAME_IN_LEN + s->b->clip.max_len);
    if (s->tx == NULL) {
        stream_fail(s, "out of memory");
        return -1;
    }
    n = nf_ctrl_format_hello_scaled(s->hello + NF_WS_PRE,
                                    sizeof(s->hello) - NF_WS_PRE, o->style,
                                    o->server_quality, o->scale8);
    if (n < 0) {
        stream_fail(s, "cannot format the hello (bad --style?)");
        return -1;
    }
    s->hello_len = n;
    s->next_frame = s->start_frame;
    s->next_seq = s->oldest_seq = (uint32_t)s->index << 24;
    return 0;
}

/* The thread of one stream: connect, run the service loop, account. */
static void *stream_main(void *arg)
{
    static const struct nf_ws_client_ops ops = {
        .on_open = on_open,
        .on_message = on_message,
        .on_writable = on_writable,
        .on_timer = on_timer,
        .on_end = on_end,
    };
    struct stream *s = arg;
    struct bench *b = s->b;
    struct nf_ws_client_config cfg = {0};
    char err[256];
    int rc;

    cfg.url = b->o.url;
    cfg.subprotocol = NF_WIRE_SUBPROTOCOL;
    cfg.verbose = b->o.verbose;
    if (stream_prepare(s) < 0)
        goto out;
    pthread_mutex_lock(&b->lws_lock);
    rc = nf_ws_client_init(&s->ws, &cfg, &ops, s, err, sizeof(err));
    pthread_mutex_unlock(&b->lws_lock);
    if (rc < 0) {
        stream_fail(s, "%s", err);
        goto out;
    }
    nf_ws_client_set_timer(s->ws, TICK_US);
    while (nf_ws_client_end(s->ws)->how == NF_WS_OPEN) {
        if (nf_ws_client_service(s->ws) < 0) {
            stream_fail(s, "libwebsockets service failed");
            break;
        }
    }
    /* Frames still unanswered are lost. */
    while (in_flight(s) > 0)
        forget_oldest(s, 1);
    if (s->hdr_dropped_last > s->hdr_dropped_base)
        s->c.server_dropped = s->hdr_dropped_last - s->hdr_dropped_base;
    pthread_mutex_lock(&b->lws_lock);
    nf_ws_client_free(s->ws);
    pthread_mutex_unlock(&b->lws_lock);
    s->ws = NULL;
out:
    atomic_fetch_sub(&b->running, 1);
    return NULL;
}

/* ---- Statistics --------------------------------------------------------- */

struct dist {
    double p50, p95, p99, max, min, mean; /* Milliseconds. */
};

/* Figures of one stream or of all. */
struct stats {
    struct counts c;
    double drop_ratio; /* dropped / sent. */
    double fps;        /* Replies per second. */
    struct dist d[F_COUNT];
};

static double field(const struct record *r, int k)
{
    if (k == F_OVERHEAD)
        return (double)r->us[F_SERVER] - r->us[F_DECODE] - r->us[F_PREDICT] -
               r->us[F_ENCODE];
    return r->us[k];
}

/* Fills d from field k of n records, using tmp (n doubles) as scratch. */
static void dist_of(const struct record *rec, size_t n, int k, double *tmp,
                    struct dist *d)
{
    for (size_t i = 0; i < n; i++)
        tmp[i] = field(&rec[i], k) / 1e3;
    nf_percentile_sort(tmp, n);
    d->p50 = nf_percentile_of(tmp, n, 50);
    d->p95 = nf_percentile_of(tmp, n, 95);
    d->p99 = nf_percentile_of(tmp, n, 99);
    d->max = nf_percentile_of(tmp, n, 100);
    d->min = nf_percentile_of(tmp, n, 0);
    d->mean = nf_percentile_mean(tmp, n);
}

static void counts_add(struct counts *a, const struct counts *b)
{
    a->sent += b->sent;
    a->replies += b->replies;
    a->dropped += b->dropped;
    a->unanswered += b->unanswered;
    a->skipped += b->skipped;
    a->server_dropped += b->server_dropped;
    a->late += b->late;
    a->bad_echo += b->bad_echo;
}

/* Computes st from c and n records over secs measured seconds. Returns 0
 * or NF_ENOMEM. */
static int stats_of(const struct counts *c, const struct record *rec, size_t n,
                    double secs, struct stats *st)
{
    double *tmp = malloc((n ? n : 1) * sizeof(*tmp));

    if (tmp == NULL)
        return NF_ENOMEM;
    memset(st, 0, sizeof(*st));
    st->c = *c;
    st->drop_ratio = c->sent ? (double)c->dropped / (double)c->sent : 0.0;
    st->fps = secs > 0 ? (double)c->replies / secs : 0.0;
    for (int k = 0; k < F_COUNT; k++)
        dist_of(rec, n, k, tmp, &st->d[k]);
    free(tmp);
    return 0;
}

/* Everything computed after the run. Owned by main. */
struct results {
    double secs; /* The measured window. */
    struct stats all;
    struct stats *per;  /* One per stream. */
    struct record *rec; /* Every stream's records, concatenated. */
    size_t n_rec;
    int failures;
    const struct stream *first; /* The first stream that got a welcome. */
};

static int results_compute(const struct bench *b, struct results *r)
{
    uint64_t stop = atomic_load(&b->stop_us);
    struct counts total = {0};
    size_t n = 0;

    r->secs =
        stop > b->warm_end_us ? (double)(stop - b->warm_end_us) / 1e6 : 0.0;
    r->per = calloc((size_t)b->o.streams, sizeof(*r->per));
    for (int i = 0; i < b->o.streams; i++)
        n += b->streams[i].n_rec;
    r->rec = malloc((n ? n : 1) * sizeof(*r->rec));
    if (r->per == NULL || r->rec == NULL)
        return NF_ENOMEM;
    for (int i = 0; i < b->o.streams; i++) {
        const struct stream *s = &b->streams[i];

        if (stats_of(&s->c, s->rec, s->n_rec, r->secs, &r->per[i]) < 0)
            return NF_ENOMEM;
        if (s->n_rec > 0)
            memcpy(r->rec + r->n_rec, s->rec, s->n_rec * sizeof(*s->rec));
        r->n_rec += s->n_rec;
        counts_add(&total, &s->c);
        r->failures += s->failed;
        if (r->first == NULL && s->connected)
            r->first = s;
    }
    return stats_of(&total, r->rec, r->n_rec, r->secs, &r->all);
}

static void results_free(struct results *r)
{
    free(r->per);
    free(r->rec);
}

/* ---- Report ------------------------------------------------------------- */

static void print_row(const char *name, const struct stats *st)
{
    const struct dist *l = &st->d[F_LATENCY];

    printf("%6s %7llu %7llu %7llu %7llu %6.2f %8.2f %7.2f %7.2f %7.2f "
           "%7.2f\n",
           name, (unsigned long long)st->c.sent,
           (unsigned long long)st->c.replies, (unsigned long long)st->c.dropped,
           (unsigned long long)st->c.skipped, 100.0 * st->drop_ratio, st->fps,
           l->p50, l->p95, l->p99, l->max);
}

static void print_header(const struct bench *b, const struct results *r)
{
    const struct stream *f = r->first;

    printf(PROG ": %s%s%s\n", b->o.url, b->o.label ? ", label " : "",
           b->o.label ? b->o.label : "");
    printf("server: backend %s, style %s; replies %dx%d\n",
           f ? f->backend : "?", f ? f->style : "?", f ? f->out_width : 0,
           f ? f->out_height : 0);
    printf("clip: %s, %d frames of %dx%d, JPEG quality %d, %.1f KiB "
           "mean\n",
           b->o.input, b->clip.n, b->clip.width, b->clip.height, b->o.quality,
           b->clip.mean_len / 1024);
    if (b->period_us != 0)
        printf("run: %d streams at %g fps each (open loop, at most %d in "
               "flight), %.2f s measured after %g s warm-up\n",
               b->o.streams, b->o.fps, INFLIGHT, r->secs, b->o.warmup);
    else
        printf("run: %d streams, closed loop (at most %d in flight), %.2f s "
               "measured after %g s warm-up\n",
               b->o.streams, INFLIGHT, r->secs, b->o.warmup);
}

static void print_report(const struct bench *b, const struct results *r)
{
    const struct stats *a = &r->all;
    char name[16];

    print_header(b, r);
    printf("\nstream    sent replies dropped skipped  drop%% replies/s"
           "  p50 ms  p95 ms  p99 ms  max ms\n");
    for (int i = 0; i < b->o.streams; i++) {
        snprintf(name, sizeof(name), "%d", i);
        print_row(name, &r->per[i]);
    }
    print_row("all", a);
    printf("\nserver ms    p50     p95\n");
    for (int k = F_QUEUE; k < F_COUNT; k++)
        printf("%-9s %6.2f  %6.2f\n", field_names[k], a->d[k].p50, a->d[k].p95);
    printf("(server includes queue; overhead = server - decode - predict - "
           "encode)\n\n");
    printf("throughput: %.2f replies/s (%.2f per stream)\n", a->fps,
           a->fps / b->o.streams);
    printf("latency: p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms\n",
           a->d[F_LATENCY].p50, a->d[F_LATENCY].p95, a->d[F_LATENCY].p99,
           a->d[F_LATENCY].max);
    printf("dropped: %llu of %llu (%.2f %%; server's counter %llu; "
           "unanswered %llu)\n",
           (unsigned long long)a->c.dropped, (unsigned long long)a->c.sent,
           100.0 * a->drop_ratio, (unsigned long long)a->c.server_dropped,
           (unsigned long long)a->c.unanswered);
    printf("skipped by client: %llu\n", (unsigned long long)a->c.skipped);
    printf("connection errors: %d\n", r->failures);
    for (int i = 0; i < b->o.streams; i++) {
        if (b->streams[i].failed)
            printf("  stream %d: %s\n", i, b->streams[i].error);
    }
}

static json_t *dist_json(const struct dist *d, int full)
{
    json_t *o = json_object();

    json_object_set_new(o, "p50", json_real(d->p50));
    json_object_set_new(o, "p95", json_real(d->p95));
    if (full) {
        json_object_set_new(o, "p99", json_real(d->p99));
        json_object_set_new(o, "max", json_real(d->max));
        json_object_set_new(o, "min", json_real(d->min));
        json_object_set_new(o, "mean", json_real(d->mean));
    }
    return o;
}

static json_t *stats_json(const struct stats *st, int streams)
{
    json_t *o = json_object(), *stages = json_object();

    json_object_set_new(o, "frames_sent", json_integer((json_int_t)st->c.sent));
    json_object_set_new(o, "replies", json_integer((json_int_t)st->c.replies));
    json_object_set_new(o, "dropped", json_integer((json_int_t)st->c.dropped));
    json_object_set_new(o, "unanswered",
                        json_integer((json_int_t)st->c.unanswered));
    json_object_set_new(o, "server_dropped",
                        json_integer((json_int_t)st->c.server_dropped));
    json_object_set_new(o, "skipped_by_client",
                        json_integer((json_int_t)st->c.skipped));
    json_object_set_new(o, "late_replies",
                        json_integer((json_int_t)st->c.late));
    json_object_set_new(o, "bad_echo",
                        json_integer((json_int_t)st->c.bad_echo));
    json_object_set_new(o, "drop_ratio", json_real(st->drop_ratio));
    json_object_set_new(o, "throughput_fps", json_real(st->fps));
    if (streams > 0)
        json_object_set_new(o, "throughput_fps_per_stream",
                            json_real(st->fps / streams));
    json_object_set_new(o, "latency_ms", dist_json(&st->d[F_LATENCY], 1));
    for (int k = F_QUEUE; k < F_COUNT; k++)
        json_object_set_new(stages, field_names[k], dist_json(&st->d[k], 0));
    json_object_set_new(o, "stage_ms", stages);
    return o;
}

/* The command line as one string, arguments with odd bytes quoted. */
static json_t *command_json(int argc, char **argv)
{
    size_t cap = 1;
    char *s, *p;
    json_t *j;

    for (int i = 0; i < argc; i++)
        cap += 4 * strlen(argv[i]) + 3;
    s = p = malloc(cap);
    if (s == NULL)
        return json_null();
    for (int i = 0; i < argc; i++) {
        int quote = argv[i][0] == '\0' || strpbrk(argv[i], " \t'\"$\\") != NULL;

        if (i > 0)
            *p++ = ' ';
        if (quote)
            *p++ = '\'';
        for (const char *c = argv[i]; *c; c++) {
            if (*c == '\'' && quote) {
                memcpy(p, "'\\''", 4);
                p += 4;
            } else {
                *p++ = *c;
            }
        }
        if (quote)
            *p++ = '\'';
    }
    *p = '\0';
    j = json_string(s);
    free(s);
    return j;
}

static json_t *stream_json(const struct stream *s, const struct stats *st)
{
    json_t *o = json_object();

    json_object_set_new(o, "stream", json_integer(s->index));
    json_object_set_new(o, "start_frame", json_integer(s->start_frame));
    json_object_set_new(o, "connected", json_boolean(s->connected));
    json_object_set_new(o, "close_code", json_integer(s->close_code));
    json_object_set_new(o, "close_reason", json_string(s->close_reason));
    json_object_set_new(o, "error",
                        s->failed ? json_string(s->error) : json_null());
    json_object_update_new(o, stats_json(st, 0));
    return o;
}

/* The run's settings and what the server said. */
static json_t *setup_json(const struct bench *b, const struct results *r)
{
    const struct stream *f = r->first;
    json_t *o = json_object(), *w = NULL;

    json_object_set_new(o, "tool", json_string(PROG));
    json_object_set_new(o, "command", command_json(b->argc, b->argv));
    json_object_set_new(o, "label",
                        b->o.label ? json_string(b->o.label) : json_null());
    json_object_set_new(o, "url", json_string(b->o.url));
    json_object_set_new(o, "input", json_string(b->o.input));
    json_object_set_new(o, "streams", json_integer(b->o.streams));
    json_object_set_new(o, "fps", json_real(b->o.fps));
    json_object_set_new(
        o, "mode", json_string(b->period_us ? "open-loop" : "closed-loop"));
    json_object_set_new(o, "max_inflight", json_integer(INFLIGHT));
    json_object_set_new(o, "warmup_s", json_real(b->o.warmup));
    json_object_set_new(o, "seconds", json_real(b->o.seconds));
    json_object_set_new(o, "measured_s", json_real(r->secs));
    json_object_set_new(o, "jpeg_quality", json_integer(b->o.quality));
    /* The model scale asked in hello; null: the server's default. */
    json_object_set_new(
        o, "scale", b->o.scale8 ? json_real(b->o.scale8 / 8.0) : json_null());
    json_object_set_new(o, "frame",
                        json_pack("{si si si sf}", "width", b->clip.width,
                                  "height", b->clip.height, "clip_frames",
                                  b->clip.n, "jpeg_bytes_mean",
                                  b->clip.mean_len));
    json_object_set_new(o, "reply_frame",
                        json_pack("{si si}", "width", f ? f->out_width : 0,
                                  "height", f ? f->out_height : 0));
    json_object_set_new(o, "backend",
                        f ? json_string(f->backend) : json_null());
    json_object_set_new(o, "style", f ? json_string(f->style) : json_null());
    if (f != NULL && f->welcome != NULL)
        w = json_loads(f->welcome, 0, NULL);
    json_object_set_new(o, "welcome", w ? w : json_null());
    return o;
}

static int write_json(const struct bench *b, const struct results *r)
{
    json_t *root = setup_json(b, r), *per = json_array(), *lat = json_array();
    double *v = malloc((r->n_rec ? r->n_rec : 1) * sizeof(*v));
    int rc;

    if (v == NULL) {
        json_decref(root);
        return NF_ENOMEM;
    }
    json_object_set_new(root, "total", stats_json(&r->all, b->o.streams));
    for (int i = 0; i < b->o.streams; i++)
        json_array_append_new(per, stream_json(&b->streams[i], &r->per[i]));
    json_object_set_new(root, "per_stream", per);
    json_object_set_new(root, "connection_errors", json_integer(r->failures));
    for (size_t i = 0; i < r->n_rec; i++)
        v[i] = r->rec[i].us[F_LATENCY];
    nf_percentile_sort(v, r->n_rec);
    for (size_t i = 0; i < r->n_rec; i++)
        json_array_append_new(lat, json_integer((json_int_t)v[i]));
    free(v);
    /* Last, so that the figures above stay at the top of the file. */
    json_object_set_new(root, "latency_us_sorted", lat);
    rc = json_dump_file(root, b->o.json,
                        JSON_INDENT(1) | JSON_REAL_PRECISION(6));
    json_decref(root);
    if (rc != 0) {
        fprintf(stderr, PROG ": cannot write %s: %s\n", b->o.json,
                strerror(errno));
        return NF_EIO;
    }
    return 0;
}

/* ---- Main --------------------------------------------------------------- */

/* Progress counters summed over the streams. */
enum { P_SENT, P_REPLIES, P_LATENCY, P_DROPPED, P_SKIPPED, P_COUNT };

/* One progress line on stderr, with rates since the last one (last[],
 * updated, dt seconds ago). */
static void progress(const struct bench *b, uint64_t now, uint64_t last[],
                     double dt)
{
    uint64_t cur[P_COUNT] = {0}, stop = atomic_load(&b->stop_us);
    uint64_t replies;
    const char *phase = now < b->warm_end_us ? "warm-up"
                        : now < stop         ? "measuring"
                                             : "draining";

    for (int i = 0; i < b->o.streams; i++) {
        const struct stream *s = &b->streams[i];

        cur[P_SENT] +=
            atomic_load_explicit(&s->prog_sent, memory_order_relaxed);
        cur[P_REPLIES] +=
            atomic_load_explicit(&s->prog_replies, memory_order_relaxed);
        cur[P_LATENCY] +=
            atomic_load_explicit(&s->prog_latency_us, memory_order_relaxed);
        cur[P_DROPPED] +=
            atomic_load_explicit(&s->prog_dropped, memory_order_relaxed);
        cur[P_SKIPPED] +=
            atomic_load_explicit(&s->prog_skipped, memory_order_relaxed);
    }
    replies = cur[P_REPLIES] - last[P_REPLIES];
    fprintf(stderr,
            PROG ": %5.1f s %-9s sent %.1f/s, replies %.1f/s, latency mean "
                 "%.2f ms, dropped %llu, skipped %llu, %d streams running\n",
            (double)(now - b->t0_us) / 1e6, phase,
            (double)(cur[P_SENT] - last[P_SENT]) / dt, (double)replies / dt,
            replies ? (double)(cur[P_LATENCY] - last[P_LATENCY]) / 1e3 /
                          (double)replies
                    : 0.0,
            (unsigned long long)cur[P_DROPPED],
            (unsigned long long)cur[P_SKIPPED], atomic_load(&b->running));
    memcpy(last, cur, sizeof(cur));
}

/* Waits for the streams, printing progress and handling Ctrl-C. */
static void supervise(struct bench *b)
{
    uint64_t last[P_COUNT] = {0}, next = b->t0_us + PROGRESS_US;
    uint64_t prev = b->t0_us;
    int seen = 0;

    while (atomic_load(&b->running) > 0) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        uint64_t now;

        nanosleep(&ts, NULL);
        now = nf_mono_us();
        if (interrupted > seen) {
            seen = interrupted;
            if (seen == 1 && now < atomic_load(&b->stop_us))
                atomic_store(&b->stop_us,
                             now > b->warm_end_us ? now : b->warm_end_us);
            if (seen > 1)
                atomic_store(&b->hurry, 1);
        }
        if (now >= next && !b->o.quiet) {
            progress(b, now, last, (double)(now - prev) / 1e6);
            prev = now;
            while (next <= now)
                next += PROGRESS_US;
        }
    }
}

/* Starts every stream thread with SIGINT and SIGTERM blocked (main
 * handles them). Returns the number started. */
static int start_streams(struct bench *b)
{
    sigset_t block, old;
    int started = 0;

    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    b->t0_us = nf_mono_us();
    b->warm_end_us = b->t0_us + (uint64_t)(b->o.warmup * 1e6);
    atomic_store(&b->stop_us, b->warm_end_us + (uint64_t)(b->o.seconds * 1e6));
    for (int i = 0; i < b->o.streams; i++) {
        struct stream *s = &b->streams[i];
        int rc;

        s->b = b;
        s->index = i;
        s->start_frame = (int)((long long)i * b->clip.n / b->o.streams);
        s->phase_us = b->period_us * (uint64_t)i / (uint64_t)b->o.streams;
        atomic_fetch_add(&b->running, 1);
        rc = pthread_create(&s->thread, NULL, stream_main, s);
        if (rc != 0) {
            atomic_fetch_sub(&b->running, 1);
            fprintf(stderr,
                    PROG ": cannot start the thread of stream %d: %s (try "
                         "fewer --streams)\n",
                    i, strerror(rc));
            break;
        }
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return started;
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* No SA_RESTART: wake nanosleep(). */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Runs the streams and reports. Returns the exit status. */
static int run(struct bench *b)
{
    struct results r = {0};
    int started, rc = 0;

    b->streams = calloc((size_t)b->o.streams, sizeof(*b->streams));
    if (b->streams == NULL) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    pthread_mutex_init(&b->lws_lock, NULL);
    install_signals();
    started = start_streams(b);
    supervise(b);
    for (int i = 0; i < started; i++)
        pthread_join(b->streams[i].thread, NULL);
    if (started < b->o.streams)
        rc = 1;
    if (results_compute(b, &r) < 0) {
        fprintf(stderr, PROG ": out of memory\n");
        rc = 1;
        goto out;
    }
    print_report(b, &r);
    if (b->o.json != NULL && write_json(b, &r) < 0)
        rc = 1;
    if (r.failures > 0)
        rc = 1;
    if (r.all.c.replies == 0 && r.failures == 0) {
        fprintf(stderr, PROG ": no reply was measured: check the server and "
                             "--seconds\n");
        rc = 1;
    }
out:
    results_free(&r);
    for (int i = 0; i < b->o.streams; i++) {
        free(b->streams[i].tx);
        free(b->streams[i].rec);
        free(b->streams[i].welcome);
    }
    free(b->streams);
    pthread_mutex_destroy(&b->lws_lock);
    return rc;
}

int main(int argc, char **argv)
{
    static struct bench b; /* Large; static keeps it off the stack. */
    int rc;

    rc = parse_options(argc, argv, &b.o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    b.argc = argc;
    b.argv = argv;
    b.period_us = b.o.fps > 0 ? (uint64_t)(1e6 / b.o.fps + 0.5) : 0;
    if (!b.o.quiet)
        fprintf(stderr, PROG ": encoding up to %d frames of %s (quality %d)\n",
                b.o.clip_frames, b.o.input, b.o.quality);
    if (clip_load(&b.clip, &b.o) < 0) {
        clip_free(&b.clip);
        return 2;
    }
    rc = run(&b);
    clip_free(&b.clip);
    return rc;
}
