/*
 * access.h - who may use the server: the Origin allowlist for WebSocket
 * upgrades, the stream token and the read-only viewer token, and sessions
 * per client address. README.md ("Access and limits") and PROTOCOL.md
 * section 1 describe the policy. Loop thread only.
 */
#ifndef NF_ACCESS_H
#define NF_ACCESS_H

#include <stddef.h>

#include "token.h"

struct lws;
struct nf_server;

/*
 * Whether the WebSocket upgrade on wsi may proceed: its Origin header, if
 * any, is on the allowlist (exact match), or, with no allowlist, names
 * this server itself (scheme://Host). Clients that send no Origin (every
 * non-browser client) pass. Returns 1 to allow, 0 to refuse.
 */
int nf__access_origin_ok(const struct nf_server *srv, struct lws *wsi);

/* Whether the upgrade on wsi offers the stream token as a subprotocol
 * (always 1 when the server has none). */
int nf__access_stream_token_ok(const struct nf_server *srv, struct lws *wsi);

/* Whether an HTTP request for the viewer page or an MJPEG stream carries
 * the viewer token as ?token=... (always 1 when the server has none). */
int nf__access_view_token_ok(const struct nf_server *srv, struct lws *wsi);

/* Copies the value of query argument `name` into buf (len bytes);
 * returns 0, or -1 when absent or too long. */
int nf__query_arg(struct lws *wsi, const char *name, char *buf, int len);

/* The client's address as text (for the per-address limit): the TCP
 * peer's, or, when that is a --trusted-proxy, the last X-Forwarded-For
 * entry it added. Call while the request headers are there. */
void nf__access_peer(const struct nf_server *srv, struct lws *wsi, char *buf,
                     size_t len);

/* Open sessions from address peer. */
int nf__access_sessions_from(const struct nf_server *srv, const char *peer);

#endif /* NF_ACCESS_H */
