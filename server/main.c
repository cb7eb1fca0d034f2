/*
 * main.c - the nextframe server's command line. The only place that prints
 * usage and exits.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cli.h"
#include "config.h"
#include "error.h"
#include "server.h"

static void usage(FILE *f, const struct nf_config *d)
{
    fprintf(
        f,
        "usage: nextframe [options]\n"
        "\n"
        "Real-time autoregressive frame-streaming server: clients stream\n"
        "JPEG frames over WebSocket (%s) and get one predicted\n"
        "frame back for each.\n"
        "\n"
        "  --host H               listen address (default %s)\n"
        "  --port P               port, 0 = any free port (default %d)\n"
        "  --model FILE           model file (.safetensors); repeat to\n"
        "                         offer several styles, the first is the\n"
        "                         default (default models/toon"
        ".safetensors)\n"
        "  --backend B            auto, cpu, ref, dnnl or cuda (default %s)\n"
        "  --threads N            backend threads, 0 = backend default\n"
        "  --web-root DIR         demo page files (default %s)\n"
        "  --quality Q            output JPEG quality 1..100 (default %d)\n"
        "  --scale S              run the model at S of each frame's size\n"
        "                         (1/8, 1/4, ... 7/8 or 1; JPEG scaled\n"
        "                         decoding; replies come at that size);\n"
        "                         the default of new sessions (default 1)\n"
        "  --max-sessions N       concurrent streams (default %d)\n"
        "  --max-message-bytes N  largest frame message (default %u)\n"
        "  --max-control-bytes N  largest control message (default %u)\n"
        "  --max-width N          widest frame, pixels (default %u)\n"
        "  --max-height N         tallest frame, pixels (default %u)\n"
        "  --idle-timeout S       close a session silent for S seconds,\n"
        "                         0 = never (default %u)\n"
        "  --max-batch N          frames per batched forward pass "
        "(default %d)\n"
        "  --codec-threads N      threads that decode, correct and encode\n"
        "                         frames, 0 = half the CPUs (default 0)\n"
        "  --no-correction        drift correction off for new sessions\n"
        "  --verbose              log every session's start and end\n"
        "  --help                 this text\n"
        "\n"
        "Access and transport (README.md, \"Access and limits\"):\n"
        "  --allow-origin O       a browser page from origin O (exact, e.g.\n"
        "                         https://example.com) may open streams;\n"
        "                         repeat for more, '*' allows any. Default:\n"
        "                         pages served by this host only\n"
        "  --token-file F         streams must offer the token in F (first\n"
        "                         line) as subprotocol nextframe.token.TOKEN\n"
        "  --view-token-file F    /view and /mjpeg need ?token=TOKEN from F\n"
        "  --max-sessions-per-addr N\n"
        "                         concurrent streams per client address\n"
        "                         (default %d)\n"
        "  --trusted-proxy A      a load balancer at address A: the client\n"
        "                         address is the last X-Forwarded-For entry\n"
        "                         it adds (repeatable)\n"
        "  --max-control-rate N   control messages per second per session,\n"
        "                         bursts of N (default %u)\n"
        "  --handshake-timeout S  connect to finished upgrade (default %u)\n"
        "  --stall-timeout S      cut off a client that reads no reply for S\n"
        "                         seconds, 0 = never (default %u)\n"
        "  --cert F --key F       serve TLS (https, wss) with this PEM\n"
        "                         certificate and key\n"
        "  --metrics-port P       serve /metrics only on 127.0.0.1:P\n"
        "\n"
        "Once it accepts connections it prints one line\n"
        "\"listening on http://HOST:PORT\" (https with --cert). SIGINT or\n"
        "SIGTERM closes every session with 1001 (going away) and exits 0.\n",
        "/v1/stream", d->host, d->port, d->backend, d->web_root, d->quality,
        d->max_sessions, d->max_message_bytes, d->max_control_bytes,
        d->max_width, d->max_height, d->idle_timeout_s, d->max_batch,
        d->max_sessions_per_addr, d->max_control_rate, d->handshake_timeout_s,
        d->stall_timeout_s);
}

/* Parses a whole number in [lo, hi] or exits with a message. */
static long parse_num(const char *opt, const char *s, long lo, long hi)
{
    double v;

    if (nf_cli_number("nextframe", opt, s, (double)lo, (double)hi, &v) != 0)
        exit(2);
    if (v != (double)(long)v) {
        fprintf(stderr, "nextframe: --%s wants a whole number, not '%s'\n", opt,
                s);
        exit(2);
    }
    return (long)v;
}

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_MODEL,
    OPT_BACKEND,
    OPT_THREADS,
    OPT_WEB_ROOT,
    OPT_QUALITY,
    OPT_SCALE,
    OPT_MAX_SESSIONS,
    OPT_MAX_MESSAGE,
    OPT_MAX_CONTROL,
    OPT_MAX_WIDTH,
    OPT_MAX_HEIGHT,
    OPT_IDLE,
    OPT_MAX_BATCH,
    OPT_CODEC_THREADS,
    OPT_NO_CORRECTION,
    OPT_VERBOSE,
    OPT_ALLOW_ORIGIN,
    OPT_TOKEN_FILE,
    OPT_VIEW_TOKEN_FILE,
    OPT_PER_ADDR,
    OPT_TRUSTED_PROXY,
    OPT_CONTROL_RATE,
    OPT_HANDSHAKE,
    OPT_STALL,
    OPT_CERT,
    OPT_KEY,
    OPT_METRICS_PORT,
    OPT_HELP,
};

static const struct option options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"model", required_argument, NULL, OPT_MODEL},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"web-root", required_argument, NULL, OPT_WEB_ROOT},
    {"quality", required_argument, NULL, OPT_QUALITY},
    {"scale", required_argument, NULL, OPT_SCALE},
    {"max-sessions", required_argument, NULL, OPT_MAX_SESSIONS},
    {"max-message-bytes", required_argument, NULL, OPT_MAX_MESSAGE},
    {"max-control-bytes", required_argument, NULL, OPT_MAX_CONTROL},
    {"max-width", required_argument, NULL, OPT_MAX_WIDTH},
    {"max-height", required_argument, NULL, OPT_MAX_HEIGHT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"max-batch", required_argument, NULL, OPT_MAX_BATCH},
    {"codec-threads", required_argument, NULL, OPT_CODEC_THREADS},
    {"no-correction", no_argument, NULL, OPT_NO_CORRECTION},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"allow-origin", required_argument, NULL, OPT_ALLOW_ORIGIN},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"view-token-file", required_argument, NULL, OPT_VIEW_TOKEN_FILE},
    {"max-sessions-per-addr", required_argument, NULL, OPT_PER_ADDR},
    {"trusted-proxy", required_argument, NULL, OPT_TRUSTED_PROXY},
    {"max-control-rate", required_argument, NULL, OPT_CONTROL_RATE},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE},
    {"stall-timeout", required_argument, NULL, OPT_STALL},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"metrics-port", required_argument, NULL, OPT_METRICS_PORT},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

int main(int argc, char **argv)
{
    struct nf_config cfg, defaults;
    int c, rc;

    nf_cli_omp_passive(argv);

    nf_config_defaults(&cfg);
    defaults = cfg;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
        case OPT_HOST:
            cfg.host = optarg;
            break;
        case OPT_PORT:
            cfg.port = (int)parse_num("port", optarg, 0, 65535);
            break;
        case OPT_MODEL:
            if (cfg.n_models == NF_MAX_MODELS) {
                fprintf(stderr, "nextframe: at most %d --model\n",
                        NF_MAX_MODELS);
                return 2;
            }
            cfg.models[cfg.n_models++] = optarg;
            break;
        case OPT_BACKEND:
            /* Checked against the backends of this build by the server. */
            cfg.backend = optarg;
            break;
        case OPT_THREADS:
            cfg.threads = (int)parse_num("threads", optarg, 0, 256);
            break;
        case OPT_WEB_ROOT:
            cfg.web_root = optarg;
            break;
        case OPT_QUALITY:
            cfg.quality = (int)parse_num("quality", optarg, 1, 100);
            break;
        case OPT_SCALE:
            if (nf_cli_scale("nextframe", optarg, &cfg.scale8) != 0)
                exit(2);
            break;
        case OPT_MAX_SESSIONS:
            cfg.max_sessions =
                (int)parse_num("max-sessions", optarg, 1, 100000);
            break;
        case OPT_MAX_MESSAGE:
            cfg.max_message_bytes = (uint32_t)parse_num("max-message-bytes",
                                                        optarg, 1024, 1L << 30);
            break;
        case OPT_MAX_CONTROL:
            cfg.max_control_bytes =
                (uint32_t)parse_num("max-control-bytes", optarg, 64, 1 << 20);
            break;
        case OPT_MAX_WIDTH:
            cfg.max_width = (uint32_t)parse_num("max-width", optarg, 16, 65535);
            break;
        case OPT_MAX_HEIGHT:
            cfg.max_height =
                (uint32_t)parse_num("max-height", optarg, 16, 65535);
            break;
        case OPT_IDLE:
            cfg.idle_timeout_s =
                (uint32_t)parse_num("idle-timeout", optarg, 0, 86400);
            break;
        case OPT_MAX_BATCH:
            cfg.max_batch = (int)parse_num("max-batch", optarg, 1, 64);
            break;
        case OPT_CODEC_THREADS:
            cfg.codec_threads = (int)parse_num("codec-threads", optarg, 0, 32);
            break;
        case OPT_NO_CORRECTION:
            cfg.correction = 0;
            break;
        case OPT_VERBOSE:
            cfg.verbose = 1;
            break;
        case OPT_ALLOW_ORIGIN:
            if (cfg.n_origins == NF_MAX_ORIGINS) {
                fprintf(stderr, "nextframe: at most %d --allow-origin\n",
                        NF_MAX_ORIGINS);
                return 2;
            }
            cfg.origins[cfg.n_origins++] = optarg;
            break;
        case OPT_TOKEN_FILE:
            cfg.token_file = optarg;
            break;
        case OPT_VIEW_TOKEN_FILE:
            cfg.view_token_file = optarg;
            break;
        case OPT_PER_ADDR:
            cfg.max_sessions_per_addr =
                (int)parse_num("max-sessions-per-addr", optarg, 1, 100000);
            break;
        case OPT_TRUSTED_PROXY:
            if (cfg.n_proxies == NF_MAX_ORIGINS) {
                fprintf(stderr, "nextframe: at most %d --trusted-proxy\n",
                        NF_MAX_ORIGINS);
                return 2;
            }
            cfg.proxies[cfg.n_proxies++] = optarg;
            break;
        case OPT_CONTROL_RATE:
            cfg.max_control_rate =
                (uint32_t)parse_num("max-control-rate", optarg, 1, 10000);
            break;
        case OPT_HANDSHAKE:
            cfg.handshake_timeout_s =
                (uint32_t)parse_num("handshake-timeout", optarg, 1, 3600);
            break;
        case OPT_STALL:
            cfg.stall_timeout_s =
                (uint32_t)parse_num("stall-timeout", optarg, 0, 3600);
            break;
        case OPT_CERT:
            cfg.cert = optarg;
            break;
        case OPT_KEY:
            cfg.key = optarg;
            break;
        case OPT_METRICS_PORT:
            cfg.metrics_port = (int)parse_num("metrics-port", optarg, 1, 65535);
            break;
        case OPT_HELP:
        case 'h':
            usage(stdout, &defaults);
            return 0;
        default:
            usage(stderr, &defaults);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nextframe: unexpected argument '%s' (see --help)\n",
                argv[optind]);
        return 2;
    }
    if (!cfg.cert != !cfg.key) {
        fprintf(stderr, "nextframe: --cert and --key go together (a PEM "
                        "certificate and its private key)\n");
        return 2;
    }
    if (cfg.n_models == 0)
        cfg.models[cfg.n_models++] = "models/toon.safetensors";
    rc = nf_server_run(&cfg);
    return rc == 0 ? 0 : 1;
}
