/*
 * config.h - the server's settings, filled from the command line by main.c.
 *
 * Every limit the server enforces is here, with its default in
 * nf_config_defaults() and its flag in main.c's usage text.
 */
#ifndef NF_CONFIG_H
#define NF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define NF_MAX_MODELS  16
#define NF_MAX_ORIGINS 16

struct nf_config {
    const char *host;                  /* Listen address. */
    int port;                          /* 0 = any free port. */
    const char *models[NF_MAX_MODELS]; /* Model files; models[0] default. */
    int n_models;
    const char *backend;        /* "auto", "cpu", "cuda". */
    const char *web_root;       /* Static files of the demo page. */
    int threads;                /* Backend threads, 0 = default. */
    int quality;                /* Default output JPEG quality. */
    int scale8;                 /* New sessions' model scale, 1/8ths. */
    int max_sessions;           /* Concurrent streams. */
    uint32_t max_message_bytes; /* One binary message. */
    uint32_t max_control_bytes; /* One text (control) message. */
    uint32_t max_width;         /* Frame width, pixels. */
    uint32_t max_height;        /* Frame height, pixels. */
    uint32_t idle_timeout_s;    /* No message for this long: close. */
    int max_batch;              /* Frames per batched forward pass. */
    int codec_threads;          /* Decode/encode threads; 0: auto. */
    int correction;             /* Drift correction on for new sessions. */
    int verbose;                /* Log per-session events. */

    /* Access (access.h) and transport. */
    const char *origins[NF_MAX_ORIGINS]; /* Allowed Origins; "*": any. */
    int n_origins;                       /* 0: same host only. */
    const char *token_file;              /* Stream token, or NULL: none. */
    const char *view_token_file;         /* Viewer token, or NULL: none. */
    int max_sessions_per_addr; /* Concurrent streams per client address. */
    const char *proxies[NF_MAX_ORIGINS]; /* Trusted for X-Forwarded-For. */
    int n_proxies;
    uint32_t handshake_timeout_s; /* Connect to finished upgrade. */
    uint32_t stall_timeout_s;     /* Replies unread this long: cut off. */
    uint32_t max_control_rate;    /* Control messages per second (burst). */
    const char *cert, *key;       /* TLS (PEM files), or NULL: plain. */
    int metrics_port; /* /metrics only on 127.0.0.1:port; 0: main port. */
};

static inline void nf_config_defaults(struct nf_config *c)
{
    c->host = "127.0.0.1";
    c->port = 8080;
    c->n_models = 0;
    c->backend = "auto";
    c->web_root = "clients/web";
    c->threads = 0;
    c->quality = 85;
    c->scale8 = 8;
    c->max_sessions = 16;
    c->max_message_bytes = 8u << 20;
    c->max_control_bytes = 4096;
    c->max_width = 3840;
    c->max_height = 2160;
    c->idle_timeout_s = 30;
    c->max_batch = 8;
    c->codec_threads = 0;
    c->correction = 1;
    c->verbose = 0;
    c->n_origins = 0;
    c->token_file = NULL;
    c->view_token_file = NULL;
    c->max_sessions_per_addr = 8;
    c->n_proxies = 0;
    c->handshake_timeout_s = 10;
    c->stall_timeout_s = 10;
    c->max_control_rate = 20;
    c->cert = c->key = NULL;
    c->metrics_port = 0;
}

#endif /* NF_CONFIG_H */
