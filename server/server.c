/*
 * server.c - the server's life: models and backends, the libuv loop, the
 * libwebsockets context on it, signals, the periodic tick, and an orderly
 * shutdown in which uv_loop_close() returns 0.
 */
#include "server.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "error.h"
#include "model.h"
#include "server-impl.h"
#include "timeutil.h"

#define NF_TICK_MS           100
#define NF_SHUTDOWN_GRACE_US 800000u

static const struct lws_protocols protocols[] = {
    /* First, so that a client naming no subprotocol gets the stream. */
    {NF_WIRE_SUBPROTOCOL, nf__session_callback, sizeof(struct nf_session_pss),
     0, 0, NULL, 0},
    {"nf-http", nf__http_callback, sizeof(struct nf_http_pss), 0, 0, NULL, 0},
    {"nf-mjpeg", nf__mjpeg_callback, sizeof(struct nf_viewer), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}};

/*
 * Headers on every HTTP answer. The demo page has no inline script or
 * style, so a strict Content-Security-Policy holds.
 */
static const struct lws_protocol_vhost_options hdr_nosniff = {
    NULL, NULL, "x-content-type-options:", "nosniff"};
static const struct lws_protocol_vhost_options hdr_csp = {
    &hdr_nosniff, NULL, "content-security-policy:",
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
    "connect-src 'self' ws: wss:; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'self'"};

static void log_line(int level, const char *line)
{
    /* lws lines already end with a newline. */
    fprintf(stderr, "%s", line);
}

/* Loads every model and opens a backend for each. */
static int load_styles(struct nf_server *srv)
{
    char err[512];

    for (int i = 0; i < srv->cfg.n_models; i++) {
        struct nf_style *st = &srv->styles[i];
        int rc = nf_model_load(srv->cfg.models[i], &st->model, err, sizeof err);
        if (rc) {
            fprintf(stderr, "nextframe: %s\n", err);
            return rc;
        }
        srv->n_styles++;
        st->name = nf_model_name(st->model);
        for (int k = 0; k < i; k++) {
            if (strcmp(srv->styles[k].name, st->name) == 0) {
                fprintf(stderr,
                        "nextframe: %s: style '%s' is already loaded from "
                        "%s; give each model its own nf.name\n",
                        srv->cfg.models[i], st->name, srv->cfg.models[k]);
                return NF_EINVAL;
            }
        }
        rc = nf_backend_init(srv->cfg.backend, st->model, srv->cfg.threads,
                             &st->backend);
        if (rc) {
            const char *const *names = nf_backend_list();
            const char *why = nf_backend_why_unavailable(srv->cfg.backend);
            fprintf(stderr, "nextframe: backend '%s' for %s: %s%s%s",
                    srv->cfg.backend, srv->cfg.models[i], nf_strerror(rc),
                    why ? ": " : "", why ? why : "");
            fprintf(stderr, " (available here:");
            for (int k = 0; names[k]; k++)
                fprintf(stderr, " %s", names[k]);
            fprintf(stderr, "; also auto and cpu)\n");
            return rc;
        }
        srv->backend_name = nf_backend_name(st->backend);
    }
    /* Say why "auto" did not take the GPU (kernels/backend-load.h). */
    const char *why = nf_backend_why_unavailable("cuda");
    if (strcmp(srv->cfg.backend, "auto") == 0 && why != NULL)
        fprintf(stderr, "nextframe: backend auto: %s; using %s\n", why,
                srv->backend_name);
    return 0;
}

static void free_styles(struct nf_server *srv)
{
    for (int i = 0; i < srv->n_styles; i++) {
        nf_backend_free(srv->styles[i].backend);
        nf_model_free(srv->styles[i].model);
    }
    srv->n_styles = 0;
}

static void on_sched_closed(void *arg)
{
    struct nf_server *srv = arg;
    srv->sched = NULL;
}

/* Second half of shutdown: once sessions are gone or the grace is over. */
static void finish_shutdown(struct nf_server *srv)
{
    uv_timer_stop(&srv->tick);
    uv_close((uv_handle_t *)&srv->tick, NULL);
    uv_timer_stop(&srv->mjpeg_tick);
    uv_close((uv_handle_t *)&srv->mjpeg_tick, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    /* Closes the remaining connections (their CLOSED callbacks cancel
     * waiting jobs); lws finishes tearing down as the loop drains. */
    if (srv->ctx)
        lws_context_destroy(srv->ctx);
    /* Jobs still running come back through the mailbox, then the worker
     * stops. */
    nf_sched_close(srv->sched, on_sched_closed, srv);
}

static void begin_shutdown(struct nf_server *srv)
{
    if (srv->shutting_down)
        return;
    srv->shutting_down = 1;
    srv->shutdown_started_us = nf_now_us();
    fprintf(stderr, "nextframe: shutting down, closing %d session(s)\n",
            srv->n_sessions);
    for (struct nf_session *s = srv->sessions; s; s = s->next)
        nf__session_close(s, NF_CLOSE_GOING_AWAY, NULL);
    lws_cancel_service(srv->ctx);
    if (srv->n_sessions == 0)
        finish_shutdown(srv);
}

static void on_signal(uv_signal_t *h, int signum)
{
    begin_shutdown(h->data);
}

static void on_mjpeg_tick(uv_timer_t *t)
{
    nf__mjpeg_tick(t->data);
}

static void on_tick(uv_timer_t *t)
{
    struct nf_server *srv = t->data;
    uint64_t now = nf_now_us();

    /* lws 4.1.6 can leave pending work (a writeable callback we asked for
     * outside its own service) unserviced until the next network event
     * (fixed upstream in 4.3.3): wake it regularly. */
    if (srv->ctx)
        lws_cancel_service(srv->ctx);
    if (srv->shutting_down) {
        if (srv->n_sessions == 0 ||
            now - srv->shutdown_started_us > NF_SHUTDOWN_GRACE_US)
            finish_shutdown(srv);
        return;
    }
    nf__session_sweep_idle(srv, now);
}

/*
 * --metrics-port: /metrics on its own listener bound to 127.0.0.1 (plain
 * HTTP), for a scraper on the same machine; the main port then answers
 * 404 for it.
 */
static int start_metrics_vhost(struct nf_server *srv)
{
    static struct lws_http_mount mount;
    struct lws_context_creation_info info;

    memset(&mount, 0, sizeof mount);
    mount.mountpoint = "/metrics";
    mount.mountpoint_len = (unsigned char)strlen(mount.mountpoint);
    mount.origin = "nf-http";
    mount.origin_protocol = LWSMPRO_CALLBACK;
    memset(&info, 0, sizeof info);
    info.port = srv->cfg.metrics_port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.mounts = &mount;
    info.vhost_name = "nextframe-metrics";
    srv->metrics_vhost = lws_create_vhost(srv->ctx, &info);
    if (!srv->metrics_vhost) {
        fprintf(stderr,
                "nextframe: cannot listen on 127.0.0.1:%d for /metrics "
                "(--metrics-port; address in use?)\n",
                srv->cfg.metrics_port);
        return NF_EIO;
    }
    return 0;
}

/* Reads the token files (access.h). */
static int load_tokens(struct nf_server *srv)
{
    char err[512];
    int rc = 0;

    if (srv->cfg.token_file)
        rc = nf_token_read(srv->cfg.token_file, srv->token, err, sizeof err);
    if (!rc && srv->cfg.view_token_file)
        rc = nf_token_read(srv->cfg.view_token_file, srv->view_token, err,
                           sizeof err);
    if (rc) {
        fprintf(stderr, "nextframe: %s\n", err);
        return rc;
    }
    if (srv->token[0] && strcmp(srv->token, srv->view_token) == 0) {
        fprintf(stderr, "nextframe: the stream and viewer tokens are the "
                        "same; the viewer token is read-only and must "
                        "differ\n");
        return NF_EINVAL;
    }
    return 0;
}

static int start_lws(struct nf_server *srv)
{
    static struct lws_http_mount mounts[6];
    static char origin[PATH_MAX];
    struct lws_context_creation_info info;
    void *loops[1] = {&srv->loop};
    static const char *const api[] = {"/livez", "/readyz", "/metrics",
                                      "/mjpeg"};

    if (!realpath(srv->cfg.web_root, origin)) {
        fprintf(stderr, "nextframe: web root '%s' not found (--web-root)\n",
                srv->cfg.web_root);
        return NF_EIO;
    }
    memset(mounts, 0, sizeof mounts);
    for (int i = 0; i < 4; i++) {
        mounts[i].mountpoint = api[i];
        mounts[i].mountpoint_len = (unsigned char)strlen(api[i]);
        mounts[i].origin = i == 3 ? "nf-mjpeg" : "nf-http";
        mounts[i].origin_protocol = LWSMPRO_CALLBACK;
    }
    mounts[4].mountpoint = "/view"; /* The viewer page (http.c). */
    mounts[4].origin = "nf-http";
    mounts[4].origin_protocol = LWSMPRO_CALLBACK;
    mounts[5].mountpoint = "/";
    mounts[5].def = "index.html";
    mounts[5].origin = origin;
    mounts[5].origin_protocol = LWSMPRO_FILE;
    for (int i = 4; i < 6; i++)
        mounts[i].mountpoint_len = (unsigned char)strlen(mounts[i].mountpoint);
    for (int i = 0; i < 5; i++)
        mounts[i].mount_next = &mounts[i + 1];
    snprintf(srv->web_root, sizeof srv->web_root, "%s", origin);

    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (srv->cfg.cert)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.foreign_loops = loops;
    info.user = srv;
    info.pcontext = &srv->ctx;
    /* Slow-header clients are cut after 5 s; a whole handshake (TLS,
     * headers, upgrade) gets handshake_timeout_s. */
    info.timeout_secs_ah_idle = 5;
    info.timeout_secs = srv->cfg.handshake_timeout_s;
    srv->ctx = lws_create_context(&info);
    if (!srv->ctx) {
        fprintf(stderr, "nextframe: cannot create the lws context (is "
                        "libwebsockets-evlib-uv installed?)\n");
        return NF_EIO;
    }
    info.port = srv->cfg.port; /* 0: the kernel picks a free port. */
    info.iface = srv->cfg.host;
    info.protocols = protocols;
    info.mounts = mounts;
    info.headers = &hdr_csp;
    info.vhost_name = "nextframe";
    info.ssl_cert_filepath = srv->cfg.cert;
    info.ssl_private_key_filepath = srv->cfg.key;
    srv->vhost = lws_create_vhost(srv->ctx, &info);
    if (!srv->vhost) {
        if (srv->cfg.cert)
            fprintf(stderr,
                    "nextframe: cannot listen with TLS on %s:%d: check "
                    "that --cert %s and --key %s are a matching PEM "
                    "certificate and key (or the address is in use)\n",
                    srv->cfg.host, srv->cfg.port, srv->cfg.cert, srv->cfg.key);
        else
            fprintf(stderr,
                    "nextframe: cannot listen on %s:%d (address in use "
                    "or not available?)\n",
                    srv->cfg.host, srv->cfg.port);
        return NF_EIO;
    }
    srv->port = lws_get_vhost_listen_port(srv->vhost);
    return srv->cfg.metrics_port ? start_metrics_vhost(srv) : 0;
}

/* --codec-threads, 0 resolved: half the online CPUs, at least one (on two
 * cores the codec thread and the predict thread get one each). */
static int codec_threads(const struct nf_config *cfg)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cfg->codec_threads > 0)
        return cfg->codec_threads;
    return cpus >= 4 ? (int)(cpus / 2 < 32 ? cpus / 2 : 32) : 1;
}

static int start_loop_handles(struct nf_server *srv)
{
    struct nf_sched_config sc = {.max_batch = srv->cfg.max_batch,
                                 .codec_threads = codec_threads(&srv->cfg),
                                 .out_headroom = LWS_PRE,
                                 .on_release = nf__session_on_release};
    int rc;

    srv->cfg.codec_threads = sc.codec_threads;
    rc = nf_sched_init(&srv->sched, &srv->loop, &srv->pool, &sc,
                       nf__session_on_job, srv);
    if (rc)
        return rc;
    uv_signal_init(&srv->loop, &srv->sigint);
    uv_signal_init(&srv->loop, &srv->sigterm);
    srv->sigint.data = srv->sigterm.data = srv;
    uv_signal_start(&srv->sigint, on_signal, SIGINT);
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    uv_timer_init(&srv->loop, &srv->tick);
    srv->tick.data = srv;
    uv_timer_start(&srv->tick, on_tick, NF_TICK_MS, NF_TICK_MS);
    uv_timer_init(&srv->loop, &srv->mjpeg_tick);
    srv->mjpeg_tick.data = srv;
    uv_timer_start(&srv->mjpeg_tick, on_mjpeg_tick, 1000 / NF_MJPEG_FPS,
                   1000 / NF_MJPEG_FPS);
    return 0;
}

static void free_jobs(struct nf_server *srv)
{
    while (srv->free_jobs) {
        struct nf_job *j = srv->free_jobs;
        srv->free_jobs = j->next;
        free(j);
    }
}

int nf_server_run(const struct nf_config *cfg)
{
    struct nf_server *srv = calloc(1, sizeof *srv);
    int rc, handles = 0;

    if (!srv)
        return NF_ENOMEM;
    srv->cfg = *cfg;
    srv->backend_name = "none";
    nf_temporal_params_default(&srv->params);
    srv->params.correct = cfg->correction;
    nf_metrics_init(&srv->metrics);
    lws_set_log_level(LLL_ERR | LLL_WARN | LLL_USER, log_line);
    signal(SIGPIPE, SIG_IGN);
    if ((rc = uv_loop_init(&srv->loop)) != 0) {
        free(srv);
        return NF_EIO;
    }
    rc = nf_bufpool_init(&srv->pool);
    if (!rc)
        rc = nf_jpeg_init(&srv->jpeg);
    if (!rc)
        rc = load_tokens(srv);
    if (!rc)
        rc = load_styles(srv);
    if (!rc)
        rc = start_lws(srv);
    if (!rc && (rc = start_loop_handles(srv)) == 0)
        handles = 1;
    if (!rc) {
        fprintf(stderr,
                "nextframe: backend %s, %d style(s), default '%s', %d codec "
                "thread(s)\n",
                srv->backend_name, srv->n_styles, srv->styles[0].name,
                srv->cfg.codec_threads);
        if (srv->metrics_vhost)
            fprintf(stderr, "nextframe: /metrics on http://127.0.0.1:%d\n",
                    lws_get_vhost_listen_port(srv->metrics_vhost));
        printf("listening on %s://%s:%d\n", srv->cfg.cert ? "https" : "http",
               srv->cfg.host, srv->port);
        fflush(stdout);
        uv_run(&srv->loop, UV_RUN_DEFAULT);
    }
    if (!handles && srv->ctx)
        lws_context_destroy(srv->ctx);
    /* On a foreign loop lws needs a second destroy after the loop drained
     * to free everything. */
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    if (srv->ctx)
        lws_context_destroy(srv->ctx);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&srv->loop) != 0) {
        fprintf(stderr, "nextframe: uv_loop_close: handles still open\n");
        if (!rc)
            rc = NF_EIO;
    }
    free_styles(srv);
    free_jobs(srv);
    nf_jpeg_free(srv->jpeg);
    nf_bufpool_free(&srv->pool);
    free(srv);
    return rc;
}
