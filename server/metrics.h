/*
 * metrics.h - the server's counters and latency histograms, and their
 * Prometheus text rendering for /metrics.
 *
 * Loop thread only: every update happens on the loop thread (the worker's
 * stage timings travel back with each job and are recorded there).
 */
#ifndef NF_METRICS_H
#define NF_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum nf_stage {
    NF_STAGE_RECV,  /* First to last byte of an input message. */
    NF_STAGE_QUEUE, /* Received -> inference started. */
    NF_STAGE_DECODE,
    NF_STAGE_PREDICT,
    NF_STAGE_ENCODE,
    NF_STAGE_SERVER, /* Received -> reply handed to the socket. */
    NF_STAGE_COUNT
};

/* Why a frame did not make it back to its client. */
enum nf_drop_reason {
    NF_DROP_SUPERSEDED,  /* A newer input of the same session arrived. */
    NF_DROP_SLOW_READER, /* A newer reply was ready before this was sent. */
    NF_DROP_CLOSED,      /* The session ended with the frame in flight. */
    NF_DROP_ERROR,       /* Decode, predict or encode failed. */
    NF_DROP_COUNT
};

enum nf_close_kind {
    NF_SESSION_END_NORMAL,
    NF_SESSION_END_ERROR,   /* Closed by the server for bad input. */
    NF_SESSION_END_REFUSED, /* Server full. */
    NF_SESSION_END_COUNT
};

#define NF_HIST_BUCKETS 14

struct nf_hist {
    uint64_t counts[NF_HIST_BUCKETS + 1]; /* Last one: +Inf. */
    uint64_t n;
    double sum_s;
};

struct nf_metrics {
    uint64_t sessions_active;
    uint64_t sessions_total;
    uint64_t sessions_ended[NF_SESSION_END_COUNT];
    uint64_t frames_received;
    uint64_t frames_sent;
    uint64_t frames_dropped[NF_DROP_COUNT];
    uint64_t bytes_received;
    uint64_t bytes_sent;
    struct nf_hist stage[NF_STAGE_COUNT];
};

void nf_metrics_init(struct nf_metrics *m);

/* Records one duration (microseconds) of a stage. */
void nf_metrics_observe(struct nf_metrics *m, enum nf_stage s, uint64_t us);

/* Total of frames_dropped over all reasons. */
uint64_t nf_metrics_dropped(const struct nf_metrics *m);

/*
 * Writes the Prometheus text exposition into buf (cap bytes). Returns the
 * length, or NF_ERANGE if it does not fit.
 */
int nf_metrics_render(const struct nf_metrics *m, int ready, char *buf,
                      size_t cap);

#endif /* NF_METRICS_H */
