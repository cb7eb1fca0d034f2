/*
 * nf-client.c - streams a .y4m video through a nextframe server and
 * measures what comes back.
 *
 * Each input frame is encoded straight from its I420 planes to JPEG, sent as
 * one FRAME_IN message, and at most --inflight frames are unanswered at any
 * time (credit returns with each reply). The server may drop frames, newest
 * wins, and replies come in seq order: a reply to seq N means every
 * unanswered seq below N was dropped. Latency is now minus the capture_us
 * the reply echoes, both on this process's monotonic clock.
 *
 * It is an edge program: it prints, and exits with 0 (done), 1 (runtime
 * failure: connection, server close, protocol error) or 2 (bad usage or
 * input file). Single-threaded: everything runs in the lws service loop.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "cli.h"
#include "error.h"
#include "i420.h"
#include "jpeg.h"
#include "mono-clock.h"
#include "percentile.h"
#include "token.h"
#include "wire.h"
#include "ws-client.h"
#include "y4m.h"

#define MAX_INFLIGHT 64
#define TICK_US      50000 /* Deadline checks; also wakes lws (FACTS.md). */

struct options {
    const char *url;
    const char *input;
    const char *output;
    const char *style;
    const char *json;
    long long frames; /* 0: until the input ends. */
    double fps;       /* 0: as fast as credit allows. */
    int inflight;
    int quality;      /* Output quality asked of the server; 0: default. */
    int scale8;       /* Model scale asked of the server (eighths); 0: none. */
    int jpeg_quality; /* Quality of the JPEGs we send. */
    int loop;
    double timeout_s;
    int verbose;
    const char *token_file; /* Stream token (common/token.h), or NULL. */
};

/* A growable array of samples (milliseconds). */
struct samples {
    double *v;
    size_t n, cap;
};

enum phase {
    PHASE_CONNECTING,
    PHASE_WELCOME, /* Open; waiting for the server's welcome. */
    PHASE_STREAMING,
    PHASE_DRAINING, /* All sent; waiting for the outstanding replies. */
    PHASE_CLOSING,
    PHASE_DONE,
};

/* The whole client; one instance, used only by the service loop's thread. */
struct client {
    struct options o;
    struct nf_ws_client *ws;
    struct nf_y4m_reader *in;
    FILE *in_f;
    struct nf_jpeg *jpeg;
    enum phase phase;
    int failed; /* A runtime error was reported; exit 1. */
    int opened; /* The WebSocket handshake completed. */
    /* Sending. */
    uint8_t *tx;   /* NF_WS_PRE + header + nf_jpeg_bound() bytes. */
    uint8_t *full; /* The input frame in full range, for limited input. */
    size_t tx_cap;
    char hello[512];
    int hello_len; /* > 0 while the hello is unsent. */
    int input_done;
    uint32_t next_seq;   /* Seq of the next frame to send. */
    uint32_t oldest_seq; /* Oldest unanswered seq (== next_seq: none). */
    uint64_t capture_us[MAX_INFLIGHT]; /* By seq % inflight, to check echoes. */
    uint64_t next_send_us;             /* Pacing with --fps. */
    uint64_t period_us;
    /* Counters and samples. */
    uint64_t sent, received, dropped, bad_replies;
    uint64_t first_send_us, last_reply_us, deadline_us;
    uint64_t progress_us; /* Last reply, or the send that ended an idle. */
    struct samples latency, decode, predict, encode, server;
    float drift_last, drift_max; /* The FRAME_OUT drift field (levels). */
    /* Output. */
    FILE *out_f;
    struct nf_y4m_writer out;
    int out_open, out_size_warned;
    uint8_t *rgb, *yuv;
    /* The end. */
    char *welcome; /* Raw welcome JSON, NUL-terminated. */
    int close_code;
    char close_reason[128];
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
        "usage: nf-client URL INPUT [options]\n"
        "\n"
        "Streams a YUV4MPEG2 video through a nextframe server and reports\n"
        "latency, throughput and drops.\n"
        "\n"
        "  URL     ws://HOST:PORT/v1/stream\n"
        "  INPUT   a .y4m file (8-bit 4:2:0), or - for stdin, e.g.\n"
        "          ffmpeg -i x.mp4 -f yuv4mpegpipe - | nf-client URL -\n"
        "          Limited-range input (the y4m default) is expanded to\n"
        "          full range for JPEG, and --output gets the input's range.\n"
        "\n"
        "options:\n"
        "  --output OUT.y4m  write the frames the server returns (C420jpeg)\n"
        "  --frames N        stop after sending N frames (default: the "
        "input's end)\n"
        "  --fps F           send at most F frames per second (default 0: as\n"
        "                    fast as credit allows)\n"
        "  --inflight K      at most K frames unanswered at a time (1..%d, "
        "default 2)\n"
        "  --quality Q       ask the server for output JPEG quality Q "
        "(1..100)\n"
        "  --style NAME      ask the server for style NAME\n"
        "  --scale S         ask the server to run the model at S of the\n"
        "                    frame size (1/8 ... 1; replies at that size)\n"
        "  --jpeg-quality Q  quality of the JPEGs sent (default 85)\n"
        "  --json FILE       write the statistics as JSON to FILE\n"
        "  --token-file F    offer the server's stream token, the first\n"
        "                    line of F (servers run with --token-file)\n"
        "  --loop            restart the input at its end (not with stdin)\n"
        "  --timeout S       seconds to wait for connect and welcome, for a\n"
        "                    reply while frames are in flight, and for the\n"
        "                    last replies at the end (default 10)\n"
        "  -v, --verbose     log control messages and lws warnings\n"
        "  -h, --help        this text\n"
        "\n"
        "A reply to seq N means every unanswered frame below N was dropped\n"
        "by the server (newest wins). frames_dropped counts those plus the\n"
        "frames still unanswered at the end, so sent = received + dropped.\n"
        "Ctrl-C stops sending, waits for the outstanding replies and prints\n"
        "the summary; a second Ctrl-C closes at once.\n"
        "\n"
        "Exit status: 0 done, 1 connection or server failure (the server's\n"
        "close code and reason are printed), 2 bad usage or input file.\n",
        MAX_INFLIGHT);
}

static void fail(struct client *cl, const char *fmt, ...)
{
    va_list ap;

    fputs("nf-client: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cl->failed = 1;
}

static int samples_push(struct samples *s, double v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        double *p = realloc(s->v, cap * sizeof(*p));

        if (p == NULL)
            return NF_ENOMEM;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = v;
    return 0;
}

static double samples_p(struct samples *s, double p)
{
    nf_percentile_sort(s->v, s->n);
    return nf_percentile_of(s->v, s->n, p);
}

/* ---- Options ------------------------------------------------------------ */

/* Parses argv into *o. Returns 0, 1 after --help, or -1 on bad usage. */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        {"output", required_argument, NULL, 'o'},
        {"frames", required_argument, NULL, 'n'},
        {"fps", required_argument, NULL, 'f'},
        {"inflight", required_argument, NULL, 'k'},
        {"quality", required_argument, NULL, 'q'},
        {"jpeg-quality", required_argument, NULL, 'Q'},
        {"style", required_argument, NULL, 's'},
        {"scale", required_argument, NULL, 'x'},
        {"json", required_argument, NULL, 'j'},
        {"loop", no_argument, NULL, 'l'},
        {"timeout", required_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'},
        {"token-file", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    double v;
    int c;

    memset(o, 0, sizeof(*o));
    o->inflight = 2;
    o->jpeg_quality = 85;
    o->timeout_s = 10;
    while ((c = getopt_long(argc, argv, "vh", longs, NULL)) != -1) {
        const char *name = "";

        for (size_t i = 0; longs[i].name != NULL; i++) {
            if (longs[i].val == c)
                name = longs[i].name;
        }
        switch (c) {
        case 'o':
            o->output = optarg;
            break;
        case 's':
            o->style = optarg;
            break;
        case 'j':
            o->json = optarg;
            break;
        case 'l':
            o->loop = 1;
            break;
        case 'v':
            o->verbose = 1;
            break;
        case 'T':
            o->token_file = optarg;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case 'n':
            if (nf_cli_number("nf-client", name, optarg, 1, 1e15, &v) < 0)
                return -1;
            o->frames = (long long)v;
            break;
        case 'f':
            if (nf_cli_number("nf-client", name, optarg, 0, 1e6, &v) < 0)
                return -1;
            o->fps = v;
            break;
        case 'k':
            if (nf_cli_number("nf-client", name, optarg, 1, MAX_INFLIGHT, &v) <
                0)
                return -1;
            o->inflight = (int)v;
            break;
        case 'q':
            if (nf_cli_number("nf-client", name, optarg, 1, 100, &v) < 0)
                return -1;
            o->quality = (int)v;
            break;
        case 'Q':
            if (nf_cli_number("nf-client", name, optarg, 1, 100, &v) < 0)
                return -1;
            o->jpeg_quality = (int)v;
            break;
        case 'x':
            if (nf_cli_scale("nf-client", optarg, &o->scale8) < 0)
                return -1;
            break;
        case 't':
            if (nf_cli_number("nf-client", name, optarg, 0.1, 86400, &v) < 0)
                return -1;
            o->timeout_s = v;
            break;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "nf-client: expected URL and INPUT (try --help)\n");
        return -1;
    }
    o->url = argv[optind];
    o->input = argv[optind + 1];
    if (o->loop && strcmp(o->input, "-") == 0) {
        fprintf(stderr, "nf-client: --loop needs a file, not stdin\n");
        return -1;
    }
    if (o->style != NULL && strlen(o->style) >= NF_CTRL_STYLE_MAX) {
        fprintf(stderr, "nf-client: --style: name too long\n");
        return -1;
    }
    return 0;
}

/* ---- Sending ------------------------------------------------------------ */

static uint32_t in_flight(const struct client *cl)
{
    return cl->next_seq - cl->oldest_seq;
}

/* True when a frame may be sent now (credit, pacing, input left). */
static int may_send(const struct client *cl, uint64_t now)
{
    return cl->phase == PHASE_STREAMING && !cl->input_done &&
           in_flight(cl) < (uint32_t)cl->o.inflight &&
           (cl->period_us == 0 || now >= cl->next_send_us);
}

/* Called when no more frames will be sent: drain, then close. */
static void stop_sending(struct client *cl)
{
    cl->input_done = 1;
    if (cl->phase != PHASE_STREAMING)
        return;
    cl->phase = PHASE_DRAINING;
    cl->deadline_us = nf_mono_us() + (uint64_t)(cl->o.timeout_s * 1e6);
    if (in_flight(cl) == 0) {
        cl->phase = PHASE_CLOSING;
        nf_ws_client_close(cl->ws, NF_CLOSE_NORMAL, "done");
    }
}

/*
 * Reads the next input frame into planes, looping if asked. Returns 1, or
 * 0 when the input is over (or broken: then cl->failed is set).
 */
static int next_frame(struct client *cl, const uint8_t *planes[3])
{
    int rc;

    if (cl->o.frames > 0 && (long long)cl->sent >= cl->o.frames)
        return 0;
    rc = nf_y4m_reader_read(cl->in, planes);
    if (rc == 0 && cl->o.loop && nf_y4m_reader_frames(cl->in) > 0) {
        if (nf_y4m_reader_rewind(cl->in) < 0) {
            fail(cl, "--loop: %s", nf_y4m_reader_error(cl->in));
            return 0;
        }
        rc = nf_y4m_reader_read(cl->in, planes);
    }
    if (rc < 0) {
        fail(cl, "%s: %s", cl->o.input, nf_y4m_reader_error(cl->in));
        return 0;
    }
    return rc;
}

/* Encodes and sends one frame. Called from on_writable. */
static void send_frame(struct client *cl, uint64_t now)
{
    const struct nf_y4m_info *info = nf_y4m_reader_info(cl->in);
    uint8_t *msg = cl->tx + NF_WS_PRE;
    struct nf_frame_header h = {0};
    const uint8_t *planes[3];
    int n, hl;

    if (!next_frame(cl, planes)) {
        stop_sending(cl);
        return;
    }
    h.capture_us = nf_mono_us();
    if (cl->full != NULL) {
        /* JPEG means full range; y4m by default means limited. */
        uint8_t *p[3];

        nf_i420_planes(cl->full, info->width, info->height, p);
        nf_i420_limited_to_full(planes, info->width, info->height, p);
        planes[0] = p[0];
        planes[1] = p[1];
        planes[2] = p[2];
    }
    h.type = NF_MSG_FRAME_IN;
    h.seq = cl->next_seq;
    h.width = (uint16_t)info->width;
    h.height = (uint16_t)info->height;
    h.format = NF_FORMAT_JPEG;
    n = nf_jpeg_encode_i420(cl->jpeg, planes, info->width, info->height,
                            cl->o.jpeg_quality, msg + NF_WIRE_FRAME_IN_LEN,
                            cl->tx_cap - NF_WS_PRE - NF_WIRE_FRAME_IN_LEN);
    if (n < 0) {
        fail(cl, "JPEG encode failed: %s", nf_strerror(n));
        stop_sending(cl);
        return;
    }
    h.payload_len = (uint32_t)n;
    hl = nf_wire_encode_header(&h, msg, NF_WIRE_FRAME_IN_LEN);
    if (hl != NF_WIRE_FRAME_IN_LEN ||
        nf_ws_client_write(cl->ws, msg, (size_t)hl + (size_t)n, NF_WS_BINARY) <
            0) {
        fail(cl, "sending frame %u failed", (unsigned)h.seq);
        stop_sending(cl);
        return;
    }
    cl->capture_us[h.seq % (uint32_t)cl->o.inflight] = h.capture_us;
    if (in_flight(cl) == 0)
        cl->progress_us = h.capture_us;
    if (cl->sent++ == 0)
        cl->first_send_us = h.capture_us;
    cl->next_seq++;
    if (cl->period_us != 0) {
        cl->next_send_us += cl->period_us;
        /* Behind by more than a period (credit-bound): do not burst. */
        if (cl->next_send_us + cl->period_us < now)
            cl->next_send_us = now;
    }
}

static void on_writable(struct nf_ws_client *ws, void *user)
{
    struct client *cl = user;
    uint64_t now = nf_mono_us();

    if (cl->hello_len > 0) {
        if (nf_ws_client_write(ws, (uint8_t *)cl->hello + NF_WS_PRE,
                               (size_t)cl->hello_len - NF_WS_PRE,
                               NF_WS_TEXT) < 0)
            fail(cl, "sending hello failed");
        cl->hello_len = 0;
        nf_ws_client_want_write(ws);
        return;
    }
    if (!may_send(cl, now))
        return;
    if (cl->next_send_us == 0)
        cl->next_send_us = now;
    send_frame(cl, now);
    if (may_send(cl, nf_mono_us()))
        nf_ws_client_want_write(ws);
}

/* ---- Receiving ---------------------------------------------------------- */

/*
 * Opens --output for w x h frames at the input's rate (or --fps) and range.
 * Returns 0, or -1 after reporting the failure.
 */
static int open_output(struct client *cl, int w, int h)
{
    const struct nf_y4m_info *info = nf_y4m_reader_info(cl->in);
    int fn = cl->o.fps > 0 ? (int)(cl->o.fps * 1000 + 0.5) : info->fps_num;
    int fd = cl->o.fps > 0 ? 1000 : info->fps_den;

    cl->rgb = malloc((size_t)w * (size_t)h * 3);
    cl->yuv = malloc(nf_i420_size(w, h));
    if (cl->rgb == NULL || cl->yuv == NULL ||
        nf_y4m_writer_init(&cl->out, cl->out_f, w, h, fn, fd,
                           info->full_range) < 0) {
        fail(cl, "%s: cannot write output", cl->o.output);
        return -1;
    }
    cl->out_open = 1;
    return 0;
}

/* Decodes a reply's JPEG and appends it to --output. */
static void write_output(struct client *cl, const uint8_t *jpg, size_t len)
{
    uint8_t *planes[3];
    int w, h;

    if (nf_jpeg_probe(cl->jpeg, jpg, len, NULL, &w, &h) < 0) {
        cl->bad_replies++;
        return;
    }
    if (!cl->out_open && open_output(cl, w, h) < 0)
        return;
    if (w != cl->out.width || h != cl->out.height) {
        if (!cl->out_size_warned++)
            fprintf(stderr,
                    "nf-client: reply is %dx%d, output is %dx%d: skipped\n", w,
                    h, cl->out.width, cl->out.height);
        return;
    }
    if (nf_jpeg_decode_rgb(cl->jpeg, jpg, len, cl->rgb, w, h, w * 3) < 0) {
        cl->bad_replies++;
        return;
    }
    nf_i420_planes(cl->yuv, w, h, planes);
    nf_i420_from_rgb(cl->rgb, w * 3, w, h, planes);
    /* Give the output the input's range, so the two compare directly. */
    if (cl->full != NULL)
        nf_i420_full_to_limited((const uint8_t *const *)planes, w, h, planes);
    if (nf_y4m_writer_write(&cl->out, (const uint8_t *const *)planes) < 0)
        fail(cl, "%s: write failed", cl->o.output);
}

static void record_reply(struct client *cl, const struct nf_frame_header *h,
                         uint64_t now)
{
    int bad = 0;

    cl->dropped += h->seq - cl->oldest_seq;
    cl->oldest_seq = h->seq + 1;
    cl->received++;
    cl->last_reply_us = now;
    cl->progress_us = now;
    if (h->capture_us != cl->capture_us[h->seq % (uint32_t)cl->o.inflight]) {
        if (!cl->bad_replies)
            fprintf(stderr, "nf-client: reply %u echoes the wrong capture_us\n",
                    (unsigned)h->seq);
        cl->bad_replies++;
    }
    bad |= samples_push(&cl->latency, (double)(now - h->capture_us) / 1e3);
    bad |= samples_push(&cl->decode, h->decode_us / 1e3);
    bad |= samples_push(&cl->predict, h->predict_us / 1e3);
    bad |= samples_push(&cl->encode, h->encode_us / 1e3);
    bad |= samples_push(&cl->server, h->server_us / 1e3);
    cl->drift_last = h->drift;
    if (h->drift > cl->drift_max)
        cl->drift_max = h->drift;
    if (bad)
        fail(cl, "out of memory");
}

static void on_frame(struct client *cl, const uint8_t *msg, size_t len)
{
    struct nf_frame_header h;
    uint64_t now = nf_mono_us();
    int hl = nf_wire_decode_header(msg, len, &h);

    if (hl <= 0 || h.type != NF_MSG_FRAME_OUT ||
        nf_wire_check_message(&h, (size_t)hl, len) < 0) {
        fail(cl, "malformed reply from the server (%s)",
             hl < 0 ? nf_strerror(hl) : "bad type or length");
        nf_ws_client_close(cl->ws, NF_CLOSE_BAD_MESSAGE, "malformed reply");
        return;
    }
    if ((uint32_t)(h.seq - cl->oldest_seq) >= in_flight(cl)) {
        fail(cl, "reply with unexpected seq %u (expected %u..%u)",
             (unsigned)h.seq, (unsigned)cl->oldest_seq,
             (unsigned)(cl->next_seq - 1));
        nf_ws_client_close(cl->ws, NF_CLOSE_BAD_MESSAGE, "unexpected seq");
        return;
    }
    record_reply(cl, &h, now);
    if (cl->out_f != NULL && !cl->failed)
        write_output(cl, msg + hl, h.payload_len);
    if (cl->phase == PHASE_DRAINING && in_flight(cl) == 0) {
        cl->phase = PHASE_CLOSING;
        nf_ws_client_close(cl->ws, NF_CLOSE_NORMAL, "done");
    } else if (cl->phase == PHASE_STREAMING) {
        nf_ws_client_want_write(cl->ws);
    }
}

static void on_control(struct client *cl, const uint8_t *msg, size_t len)
{
    struct nf_ctrl_msg m;
    int rc = nf_ctrl_parse((const char *)msg, len, &m);

    if (cl->o.verbose)
        fprintf(stderr, "nf-client: < %.*s\n", (int)len, (const char *)msg);
    if (rc < 0) {
        fprintf(stderr, "nf-client: ignoring a bad control message (%s)\n",
                nf_strerror(rc));
        return;
    }
    if (m.type == NF_CTRL_ERROR) {
        fprintf(stderr, "nf-client: server error %s: %s\n", m.code, m.message);
    } else if (m.type == NF_CTRL_WELCOME && cl->phase == PHASE_WELCOME) {
        free(cl->welcome);
        cl->welcome = strndup((const char *)msg, len);
        cl->phase = PHASE_STREAMING;
        nf_ws_client_want_write(cl->ws);
    }
}

static void on_message(struct nf_ws_client *ws, void *user, const uint8_t *msg,
                       size_t len, int binary)
{
    struct client *cl = user;

    (void)ws;
    if (binary)
        on_frame(cl, msg, len);
    else
        on_control(cl, msg, len);
}

/* ---- Connection events and deadlines ------------------------------------ */

static void on_open(struct nf_ws_client *ws, void *user)
{
    struct client *cl = user;

    cl->phase = PHASE_WELCOME;
    cl->opened = 1;
    cl->deadline_us = nf_mono_us() + (uint64_t)(cl->o.timeout_s * 1e6);
    nf_ws_client_want_write(ws);
}

static void on_end(struct nf_ws_client *ws, void *user,
                   const struct nf_ws_end *end)
{
    struct client *cl = user;
    enum phase was = cl->phase;

    (void)ws;
    cl->phase = PHASE_DONE;
    cl->close_code = end->code;
    snprintf(cl->close_reason, sizeof(cl->close_reason), "%s", end->reason);
    switch (end->how) {
    case NF_WS_CONNECT_FAILED:
        fail(cl, "cannot connect to %s: %s", cl->o.url, end->reason);
        break;
    case NF_WS_REFUSED:
        fail(cl, "%s refused the WebSocket upgrade: %s", cl->o.url,
             end->reason);
        break;
    case NF_WS_PEER_CLOSED:
        if (was != PHASE_CLOSING || end->code != NF_CLOSE_NORMAL)
            fail(cl, "server closed the connection with code %d (%s)",
                 end->code, end->reason[0] ? end->reason : "no reason");
        break;
    case NF_WS_DROPPED:
        fail(cl, "connection lost (no close frame)");
        break;
    default:
        break;
    }
}

/* Checks the deadline of the current phase and Ctrl-C; re-arms itself. */
static void on_timer(struct nf_ws_client *ws, void *user)
{
    struct client *cl = user;
    uint64_t now = nf_mono_us(), wait = TICK_US;

    if (interrupted > 1 && cl->phase != PHASE_DONE) {
        nf_ws_client_close(ws, NF_CLOSE_NORMAL, "interrupted");
        cl->phase = PHASE_CLOSING;
    } else if (interrupted && cl->phase <= PHASE_STREAMING) {
        if (cl->phase == PHASE_STREAMING)
            stop_sending(cl);
        else
            nf_ws_client_close(ws, NF_CLOSE_NORMAL, "interrupted");
    }
    if (cl->phase == PHASE_CONNECTING || cl->phase == PHASE_WELCOME ||
        cl->phase == PHASE_DRAINING) {
        if (now > cl->deadline_us) {
            if (cl->phase != PHASE_DRAINING)
                fail(cl, "no %s within %g s",
                     cl->phase == PHASE_WELCOME ? "welcome" : "connection",
                     cl->o.timeout_s);
            cl->phase = PHASE_CLOSING;
            nf_ws_client_close(ws, NF_CLOSE_NORMAL, "timeout");
        }
    } else if (cl->phase == PHASE_STREAMING) {
        uint64_t stalled = now - cl->progress_us;

        if (in_flight(cl) > 0 && stalled > (uint64_t)(cl->o.timeout_s * 1e6)) {
            fail(cl, "no reply for %g s with %u frames in flight",
                 cl->o.timeout_s, (unsigned)in_flight(cl));
            cl->phase = PHASE_CLOSING;
            nf_ws_client_close(ws, NF_CLOSE_NORMAL, "timeout");
        } else if (may_send(cl, now)) {
            nf_ws_client_want_write(ws);
        } else if (cl->period_us != 0 && cl->next_send_us > now &&
                   cl->next_send_us - now < wait) {
            wait = cl->next_send_us - now;
        }
    }
    if (cl->phase != PHASE_DONE)
        nf_ws_client_set_timer(ws, wait > 0 ? wait : 1);
}

/* ---- Report ------------------------------------------------------------- */

static json_t *welcome_json(const struct client *cl)
{
    json_t *w = NULL;

    if (cl->welcome != NULL)
        w = json_loads(cl->welcome, 0, NULL);
    return w != NULL ? w : json_object();
}

static double fps_received(const struct client *cl)
{
    if (cl->received < 2 || cl->last_reply_us <= cl->first_send_us)
        return 0.0;
    return (double)cl->received * 1e6 /
           (double)(cl->last_reply_us - cl->first_send_us);
}

static int write_json(struct client *cl)
{
    json_t *root;
    int rc;

    root = json_pack(
        "{sI sI sI sI sI s{sf sf sf sf sf} sf s{sf sf sf sf} s{sf sf} si ss "
        "so}",
        "frames_sent", (json_int_t)cl->sent, "frames_received",
        (json_int_t)cl->received, "frames_dropped", (json_int_t)cl->dropped,
        "frames_unanswered", (json_int_t)in_flight(cl), "bad_replies",
        (json_int_t)cl->bad_replies, "latency_ms", "p50",
        samples_p(&cl->latency, 50), "p95", samples_p(&cl->latency, 95), "p99",
        samples_p(&cl->latency, 99), "max", samples_p(&cl->latency, 100),
        "mean", nf_percentile_mean(cl->latency.v, cl->latency.n), "fps",
        fps_received(cl), "server_ms", "decode_p50", samples_p(&cl->decode, 50),
        "predict_p50", samples_p(&cl->predict, 50), "encode_p50",
        samples_p(&cl->encode, 50), "server_p50", samples_p(&cl->server, 50),
        "drift", "last", (double)cl->drift_last, "max", (double)cl->drift_max,
        "close_code", cl->close_code, "close_reason", cl->close_reason,
        "welcome", welcome_json(cl));
    if (root == NULL)
        return NF_ENOMEM;
    rc = json_dump_file(root, cl->o.json,
                        JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(root);
    if (rc != 0) {
        fprintf(stderr, "nf-client: cannot write %s\n", cl->o.json);
        return NF_EIO;
    }
    return 0;
}

static void print_summary(struct client *cl)
{
    const struct nf_y4m_info *info = nf_y4m_reader_info(cl->in);
    double secs = cl->last_reply_us > cl->first_send_us
                      ? (double)(cl->last_reply_us - cl->first_send_us) / 1e6
                      : 0.0;

    printf("nf-client: %s, %dx%d, inflight %d\n", cl->o.url, info->width,
           info->height, cl->o.inflight);
    printf("frames: sent %llu, received %llu, dropped %llu (unanswered %u)\n",
           (unsigned long long)cl->sent, (unsigned long long)cl->received,
           (unsigned long long)cl->dropped, (unsigned)in_flight(cl));
    printf("latency ms: p50 %.2f  p95 %.2f  p99 %.2f  max %.2f  mean %.2f\n",
           samples_p(&cl->latency, 50), samples_p(&cl->latency, 95),
           samples_p(&cl->latency, 99), samples_p(&cl->latency, 100),
           nf_percentile_mean(cl->latency.v, cl->latency.n));
    printf("throughput: %.2f fps received over %.2f s\n", fps_received(cl),
           secs);
    printf("server ms p50: decode %.2f  predict %.2f  encode %.2f  total "
           "%.2f\n",
           samples_p(&cl->decode, 50), samples_p(&cl->predict, 50),
           samples_p(&cl->encode, 50), samples_p(&cl->server, 50));
    printf("close: %d %s\n", cl->close_code, cl->close_reason);
    if (cl->bad_replies)
        printf("bad replies: %llu\n", (unsigned long long)cl->bad_replies);
}

/* ---- Main --------------------------------------------------------------- */

static int open_input(struct client *cl)
{
    const struct nf_y4m_info *info;
    char err[256];
    int rc;

    cl->in_f = strcmp(cl->o.input, "-") == 0 ? stdin : fopen(cl->o.input, "rb");
    if (cl->in_f == NULL) {
        fprintf(stderr, "nf-client: %s: %s\n", cl->o.input, strerror(errno));
        return NF_EIO;
    }
    rc = nf_y4m_reader_init(&cl->in, cl->in_f, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "nf-client: %s: %s\n", cl->o.input, err);
        return rc;
    }
    info = nf_y4m_reader_info(cl->in);
    cl->tx_cap = NF_WS_PRE + NF_WIRE_FRAME_IN_LEN +
                 nf_jpeg_bound(info->width, info->height);
    cl->tx = malloc(cl->tx_cap);
    if (cl->tx == NULL)
        return NF_ENOMEM;
    if (!info->full_range) {
        cl->full = malloc(nf_i420_size(info->width, info->height));
        if (cl->full == NULL)
            return NF_ENOMEM;
    }
    if (cl->o.fps > 0)
        cl->period_us = (uint64_t)(1e6 / cl->o.fps);
    return 0;
}

static int prepare(struct client *cl)
{
    int n;

    if (open_input(cl) < 0)
        return 2;
    if (cl->o.output != NULL) {
        cl->out_f = fopen(cl->o.output, "wb");
        if (cl->out_f == NULL) {
            fprintf(stderr, "nf-client: %s: %s\n", cl->o.output,
                    strerror(errno));
            return 2;
        }
    }
    if (nf_jpeg_init(&cl->jpeg) < 0)
        return 1;
    n = nf_ctrl_format_hello_scaled(cl->hello + NF_WS_PRE,
                                    sizeof(cl->hello) - NF_WS_PRE, cl->o.style,
                                    cl->o.quality, cl->o.scale8);
    if (n < 0) {
        fprintf(stderr, "nf-client: bad --style or --quality\n");
        return 2;
    }
    cl->hello_len = NF_WS_PRE + n;
    return 0;
}

static void cleanup(struct client *cl)
{
    nf_ws_client_free(cl->ws);
    nf_jpeg_free(cl->jpeg);
    nf_y4m_reader_free(cl->in);
    if (cl->in_f != NULL && cl->in_f != stdin)
        fclose(cl->in_f);
    if (cl->out_f != NULL && fclose(cl->out_f) != 0)
        fprintf(stderr, "nf-client: %s: write failed\n", cl->o.output);
    free(cl->tx);
    free(cl->full);
    free(cl->rgb);
    free(cl->yuv);
    free(cl->latency.v);
    free(cl->decode.v);
    free(cl->predict.v);
    free(cl->encode.v);
    free(cl->server.v);
    free(cl->welcome);
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
    static struct client cl; /* Large; static keeps it off the stack. */
    struct nf_ws_client_config cfg = {0};
    struct sigaction sa;
    char err[256];
    char offer[sizeof NF_WIRE_SUBPROTOCOL + sizeof NF_TOKEN_SUBPROTOCOL_PREFIX +
               NF_TOKEN_MAX + 1];
    int rc;

    rc = parse_options(argc, argv, &cl.o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    rc = prepare(&cl);
    if (rc != 0)
        goto out;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* No SA_RESTART: interrupt poll(). */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    cfg.url = cl.o.url;
    cfg.subprotocol = NF_WIRE_SUBPROTOCOL;
    if (cl.o.token_file) {
        char token[NF_TOKEN_MAX + 1];
        if (nf_token_read(cl.o.token_file, token, err, sizeof err) < 0) {
            fprintf(stderr, "nf-client: %s\n", err);
            rc = 2;
            goto out;
        }
        snprintf(offer, sizeof offer,
                 NF_WIRE_SUBPROTOCOL "," NF_TOKEN_SUBPROTOCOL_PREFIX "%s",
                 token);
        cfg.subprotocol = offer;
    }
    cfg.verbose = cl.o.verbose;
    cl.deadline_us = nf_mono_us() + (uint64_t)(cl.o.timeout_s * 1e6);
    if (nf_ws_client_init(&cl.ws, &cfg, &ops, &cl, err, sizeof(err)) < 0) {
        fprintf(stderr, "nf-client: %s\n", err);
        rc = 2;
        goto out;
    }
    nf_ws_client_set_timer(cl.ws, TICK_US);
    while (nf_ws_client_end(cl.ws)->how == NF_WS_OPEN) {
        if (nf_ws_client_service(cl.ws) < 0) {
            fail(&cl, "libwebsockets service failed");
            break;
        }
    }
    /* Frames still unanswered at the end count as dropped. */
    cl.dropped += in_flight(&cl);
    if (cl.o.json != NULL && write_json(&cl) < 0)
        cl.failed = 1;
    if (cl.opened)
        print_summary(&cl);
    rc = cl.failed ? 1 : 0;
out:
    cleanup(&cl);
    return rc;
}
