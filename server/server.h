/*
 * server.h - the nextframe server: one process, one libuv loop.
 *
 * libwebsockets runs on the libuv loop (a foreign loop) and serves, on one
 * port: the demo page's static files, the stream endpoint /v1/stream,
 * /livez, /readyz and /metrics. Inference runs on the scheduler's worker
 * thread (scheduler.h). SIGINT and SIGTERM close every session with "going
 * away", stop the server and make nf_server_run() return 0.
 */
#ifndef NF_SERVER_H
#define NF_SERVER_H

#include "config.h"

/*
 * Loads the models, starts listening and runs until a signal stops the
 * server. Prints "listening on http://HOST:PORT" once it accepts
 * connections. Returns 0 after a clean shutdown (uv_loop_close() returned
 * 0), or a negative NF_E* code with a message on stderr.
 */
int nf_server_run(const struct nf_config *cfg);

#endif /* NF_SERVER_H */
