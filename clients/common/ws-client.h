/*
 * ws-client.h - one WebSocket client connection for the C tools.
 *
 * A thin layer over libwebsockets 4.1.6's client on its own poll() loop
 * (no libuv): it parses a ws:// URL, reassembles fragmented messages,
 * turns the ways a connection ends into one struct nf_ws_end, and keeps
 * lws's rules in one place (one write per writeable callback, LWS_PRE
 * bytes of headroom in front of every buffer). Used by nf-client and
 * nf-probe; not by the server. Single-threaded: every call and callback
 * happens on the thread that runs nf_ws_client_service().
 */
#ifndef NF_WS_CLIENT_H
#define NF_WS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Bytes every buffer passed to nf_ws_client_write() must have free and
 * writable in front of the data (lws's LWS_PRE, rounded up).
 */
#define NF_WS_PRE 32

/* Message kinds for nf_ws_client_write(); OR NF_WS_NO_FIN to fragment. */
enum nf_ws_kind {
    NF_WS_TEXT = 1,
    NF_WS_BINARY = 2,
    NF_WS_CONTINUATION = 3, /* A later fragment of a message. */
};
#define NF_WS_NO_FIN 0x100 /* More fragments of this message follow. */

/* How the connection ended. */
enum nf_ws_end_how {
    NF_WS_OPEN = 0,       /* Not ended. */
    NF_WS_CONNECT_FAILED, /* Never opened: no TCP connection. */
    NF_WS_REFUSED,        /* Connected, but the server refused the upgrade
                             (an HTTP error, a subprotocol mismatch). */
    NF_WS_PEER_CLOSED,    /* The peer sent a close frame. */
    NF_WS_LOCAL_CLOSED,   /* We closed it (nf_ws_client_close()). */
    NF_WS_DROPPED,        /* Lost without a close frame. */
};

struct nf_ws_end {
    int how;          /* enum nf_ws_end_how */
    int code;         /* Close code: the peer's, ours, 1005 when the peer's
                         close frame had none, 1006 when dropped or never
                         opened (as browsers report). */
    char reason[128]; /* Close reason, or what failed (lws's words). */
};

struct nf_ws_client;

/* Callbacks; any may be NULL. user is the pointer given at init. */
struct nf_ws_client_ops {
    /* The handshake completed; the connection is open. */
    void (*on_open)(struct nf_ws_client *c, void *user);
    /* One whole message (fragments joined). msg is valid during the call. */
    void (*on_message)(struct nf_ws_client *c, void *user, const uint8_t *msg,
                       size_t len, int binary);
    /* The socket takes one write now: call nf_ws_client_write() at most
     * once, then nf_ws_client_want_write() if there is more to send. */
    void (*on_writable)(struct nf_ws_client *c, void *user);
    /* The timer set with nf_ws_client_set_timer() fired. */
    void (*on_timer)(struct nf_ws_client *c, void *user);
    /* The connection ended; called once. */
    void (*on_end)(struct nf_ws_client *c, void *user,
                   const struct nf_ws_end *end);
};

struct nf_ws_client_config {
    const char *url;         /* ws://host[:port][/path] */
    const char *subprotocol; /* Offered in the handshake; NULL offers none. */
    const char *origin;      /* Origin header; NULL sends none. */
    size_t max_message;      /* Longest incoming message; 0 = 64 MiB. */
    int verbose;             /* Let lws log errors and warnings. */
};

/*
 * Creates the lws context and starts connecting. Returns 0 with *out set,
 * or NF_EINVAL (bad URL; err says why), NF_ENOMEM or NF_EIO (lws failed to
 * start). A connection that fails later, even at once, is reported through
 * on_end, never here.
 */
int nf_ws_client_init(struct nf_ws_client **out,
                      const struct nf_ws_client_config *cfg,
                      const struct nf_ws_client_ops *ops, void *user, char *err,
                      size_t errlen);

/* Destroys the context, closing the socket if open. NULL is fine. */
void nf_ws_client_free(struct nf_ws_client *c);

/*
 * Waits for and handles events (sockets, the timer, signals: a signal
 * interrupts the wait). Returns 0, or a negative code if lws failed.
 */
int nf_ws_client_service(struct nf_ws_client *c);

/* The end state: how == NF_WS_OPEN while the connection lives. */
const struct nf_ws_end *nf_ws_client_end(const struct nf_ws_client *c);

/* Asks for one on_writable callback. */
void nf_ws_client_want_write(struct nf_ws_client *c);

/*
 * Sends data (len bytes, with NF_WS_PRE writable bytes in front of it:
 * lws builds the frame header there) as kind | optional NF_WS_NO_FIN.
 * Only from on_writable, once per callback. Returns 0, or NF_EIO. A write
 * the socket cannot take at once is buffered by lws, which then holds back
 * on_writable until it has drained: natural backpressure.
 */
int nf_ws_client_write(struct nf_ws_client *c, uint8_t *data, size_t len,
                       int kind);

/*
 * Starts a clean close with code and reason (truncated to 123 bytes). If
 * the connection is not open yet it is abandoned at once. on_end follows.
 */
void nf_ws_client_close(struct nf_ws_client *c, int code, const char *reason);

/* Fires on_timer once, us microseconds from now; 0 cancels. */
void nf_ws_client_set_timer(struct nf_ws_client *c, uint64_t us);

#endif /* NF_WS_CLIENT_H */
