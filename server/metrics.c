/* metrics.c - counters, histograms and Prometheus text (see metrics.h). */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

/* Upper bounds of the histogram buckets, in seconds. */
static const double bucket_le[NF_HIST_BUCKETS] = {
    0.0005, 0.001, 0.002, 0.005, 0.010, 0.015, 0.020,
    0.030,  0.050, 0.100, 0.250, 0.500, 1.0,   5.0};

static const char *const stage_names[NF_STAGE_COUNT] = {
    "receive", "queue", "decode", "predict", "encode", "server"};

static const char *const drop_names[NF_DROP_COUNT] = {
    "superseded", "slow_reader", "closed", "error"};

static const char *const end_names[NF_SESSION_END_COUNT] = {"normal", "error",
                                                            "refused"};

void nf_metrics_init(struct nf_metrics *m)
{
    memset(m, 0, sizeof *m);
}

void nf_metrics_observe(struct nf_metrics *m, enum nf_stage s, uint64_t us)
{
    struct nf_hist *h = &m->stage[s];
    double sec = (double)us / 1e6;
    int i = 0;

    while (i < NF_HIST_BUCKETS && sec > bucket_le[i])
        i++;
    h->counts[i]++;
    h->n++;
    h->sum_s += sec;
}

uint64_t nf_metrics_dropped(const struct nf_metrics *m)
{
    uint64_t n = 0;
    for (int i = 0; i < NF_DROP_COUNT; i++)
        n += m->frames_dropped[i];
    return n;
}

/* An appending printf that remembers overflow. */
struct out {
    char *buf;
    size_t cap, len;
    int overflow;
};

static void emit(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->overflow)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len)
        o->overflow = 1;
    else
        o->len += (size_t)n;
}

static void emit_counter(struct out *o, const char *name, const char *help,
                         uint64_t v)
{
    emit(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name,
         name, (unsigned long long)v);
}

static void emit_hist(struct out *o, const struct nf_metrics *m)
{
    const char *name = "nf_stage_seconds";

    emit(o, "# HELP %s Per-stage latency of frames.\n", name);
    emit(o, "# TYPE %s histogram\n", name);
    for (int s = 0; s < NF_STAGE_COUNT; s++) {
        const struct nf_hist *h = &m->stage[s];
        uint64_t cum = 0;
        for (int i = 0; i < NF_HIST_BUCKETS; i++) {
            cum += h->counts[i];
            emit(o, "%s_bucket{stage=\"%s\",le=\"%g\"} %llu\n", name,
                 stage_names[s], bucket_le[i], (unsigned long long)cum);
        }
        cum += h->counts[NF_HIST_BUCKETS];
        emit(o, "%s_bucket{stage=\"%s\",le=\"+Inf\"} %llu\n", name,
             stage_names[s], (unsigned long long)cum);
        emit(o, "%s_sum{stage=\"%s\"} %.6f\n", name, stage_names[s], h->sum_s);
        emit(o, "%s_count{stage=\"%s\"} %llu\n", name, stage_names[s],
             (unsigned long long)h->n);
    }
}

int nf_metrics_render(const struct nf_metrics *m, int ready, char *buf,
                      size_t cap)
{
    struct out o = {buf, cap, 0, 0};

    if (cap == 0)
        return NF_ERANGE;
    emit(&o,
         "# HELP nf_ready 1 when the server accepts new sessions.\n"
         "# TYPE nf_ready gauge\nnf_ready %d\n",
         ready);
    emit(&o,
         "# HELP nf_sessions Sessions open now.\n"
         "# TYPE nf_sessions gauge\nnf_sessions %llu\n",
         (unsigned long long)m->sessions_active);
    emit_counter(&o, "nf_sessions_opened_total", "Sessions accepted.",
                 m->sessions_total);
    emit(&o, "# HELP nf_sessions_closed_total Sessions ended, by kind.\n"
             "# TYPE nf_sessions_closed_total counter\n");
    for (int i = 0; i < NF_SESSION_END_COUNT; i++)
        emit(&o, "nf_sessions_closed_total{kind=\"%s\"} %llu\n", end_names[i],
             (unsigned long long)m->sessions_ended[i]);
    emit_counter(&o, "nf_frames_received_total", "Input frames received.",
                 m->frames_received);
    emit_counter(&o, "nf_frames_sent_total", "Output frames sent.",
                 m->frames_sent);
    emit(&o, "# HELP nf_frames_dropped_total Frames not answered, by reason.\n"
             "# TYPE nf_frames_dropped_total counter\n");
    for (int i = 0; i < NF_DROP_COUNT; i++)
        emit(&o, "nf_frames_dropped_total{reason=\"%s\"} %llu\n", drop_names[i],
             (unsigned long long)m->frames_dropped[i]);
    emit_counter(&o, "nf_bytes_received_total", "Bytes of frame messages in.",
                 m->bytes_received);
    emit_counter(&o, "nf_bytes_sent_total", "Bytes of frame messages out.",
                 m->bytes_sent);
    emit_hist(&o, m);
    if (o.overflow)
        return NF_ERANGE;
    return (int)o.len;
}
