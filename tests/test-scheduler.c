/*
 * test-scheduler.c - the two-stage inference pipeline (server/scheduler.c):
 * every submitted job comes back exactly once (finished or superseded),
 * each session's frames in order with their own pixels, decode and encode
 * of one batch overlap the forward pass of another, and closing with frames
 * in the pipeline hands them all back.
 *
 * The model is out = frame + conv(relu(conv(frame))) with the second
 * convolution's weights zero: the reference backend does real work (about
 * 5 MFLOP a frame at 64x48) and the output equals the input, so each reply
 * must decode to the flat colour its input had.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "backend.h"
#include "error.h"
#include "jpeg.h"
#include "model.h"
#include "nf-test.h"
#include "scheduler.h"
#include "temporal.h"

#include "model-template.h"

#define W        64
#define H        48
#define CLIENTS  4
#define MAX_JOBS 512

static struct nf_model *busy_identity_model(void)
{
    static float w[16 * 27 + 16 + 3 * 16 * 9];
    for (int i = 0; i < 16 * 27; i++)
        w[i] = (float)((i * 7) % 11 - 5) / 50.0f;
    return load_model(
        "{'w1':{'dtype':'F32','shape':[16,3,3,3],'data_offsets':[0,1728]},"
        "'b1':{'dtype':'F32','shape':[16],'data_offsets':[1728,1792]},"
        "'w2':{'dtype':'F32','shape':[3,16,3,3],'data_offsets':[1792,3520]},"
        "'__metadata__':{'nf.format':'1','nf.name':'busy',"
        "'nf.graph':'{`nodes`:["
        "{`name`:`c1`,`op`:`conv2d`,`inputs`:[`frame`],`weight`:`w1`,"
        "`bias`:`b1`,`padding`:1},"
        "{`name`:`r`,`op`:`relu`,`inputs`:[`c1`]},"
        "{`name`:`c2`,`op`:`conv2d`,`inputs`:[`r`],`weight`:`w2`,"
        "`padding`:1},"
        "{`name`:`o`,`op`:`add`,`inputs`:[`frame`,`c2`]}],"
        "`output`:`o`}'}}",
        w, sizeof w / sizeof w[0]);
}

/* What came back, in order. */
struct returned {
    int client, seq, superseded, status, value, held;
};

struct fixture {
    uv_loop_t loop;
    struct nf_bufpool pool;
    struct nf_sched *sched;
    struct nf_model *model;
    struct nf_backend *backend;
    struct nf_jpeg *jpeg;
    struct nf_sched_client clients[CLIENTS];
    struct nf_job jobs[MAX_JOBS];
    int n_jobs;
    struct returned back[MAX_JOBS];
    int n_back;
    int closed;
    /* Releases (on_release): the client index and n_back at that time. */
    int released[MAX_JOBS], released_after[MAX_JOBS];
    int n_released;
};

/* The flat colour of frame seq of client c. */
static int value_of(int c, int seq)
{
    return 40 + 50 * c + (seq % 8) * 4;
}

static void on_done(struct nf_sched *s, struct nf_job *job, int superseded,
                    void *arg)
{
    (void)s;
    struct fixture *f = arg;
    struct returned *r = &f->back[f->n_back++];
    r->client = (int)(job->client - f->clients);
    r->seq = (int)job->hdr.seq;
    r->superseded = superseded;
    r->status = job->status;
    r->held = job->held;
    r->value = -1;
    if (!superseded && job->status == 0) {
        uint8_t rgb[W * H * 3];
        size_t off = NF_WIRE_FRAME_OUT_LEN; /* out_headroom is 0. */
        if (nf_jpeg_decode_rgb(f->jpeg, job->out->data + off, job->out_jpeg_len,
                               rgb, W, H, W * 3) == 0)
            r->value = rgb[(H / 2 * W + W / 2) * 3 + 1];
    }
    nf_bufpool_put(&f->pool, job->in);
    if (job->out)
        nf_bufpool_put(&f->pool, job->out);
    job->in = job->out = NULL;
}

static void on_release(struct nf_sched *s, void *session, void *arg)
{
    (void)s;
    struct fixture *f = arg;
    f->released_after[f->n_released] = f->n_back;
    f->released[f->n_released++] =
        (int)((struct nf_sched_client *)session - f->clients);
}

/* early: hand anchor frames back before their anchors run (on_release);
 * codec: the codec threads (crew.h); batch: max_batch. */
static int setup_with(struct fixture *f, int early, int codec, int batch)
{
    memset(f, 0, sizeof *f);
    struct nf_sched_config cfg = {.max_batch = batch,
                                  .codec_threads = codec,
                                  .on_release = early ? on_release : NULL};
    if (uv_loop_init(&f->loop) != 0 || nf_bufpool_init(&f->pool) != 0 ||
        nf_jpeg_init(&f->jpeg) != 0)
        return -1;
    f->model = busy_identity_model();
    if (f->model == NULL || nf_backend_init("ref", f->model, 1, &f->backend))
        return -1;
    return nf_sched_init(&f->sched, &f->loop, &f->pool, &cfg, on_done, f);
}

static int setup(struct fixture *f)
{
    return setup_with(f, 0, 1, CLIENTS);
}

static void on_closed(void *arg)
{
    ((struct fixture *)arg)->closed = 1;
}

static void teardown(struct fixture *f)
{
    if (f->sched) {
        nf_sched_close(f->sched, on_closed, f);
        while (!f->closed)
            uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_loop_close(&f->loop);
    for (int c = 0; c < CLIENTS; c++)
        for (int k = 0; k < 16; k++)
            nf_temporal_free(f->clients[c].temporal[k]);
    nf_backend_free(f->backend);
    nf_model_free(f->model);
    nf_jpeg_free(f->jpeg);
    nf_bufpool_free(&f->pool);
}

/* Submits frame seq of client c: a flat JPEG, correction off. */
static int submit(struct fixture *f, int c, int seq)
{
    uint8_t rgb[W * H * 3];
    memset(rgb, value_of(c, seq), sizeof rgb);
    struct nf_buf *b = nf_bufpool_get(&f->pool, 64 + nf_jpeg_bound(W, H));
    if (b == NULL || f->n_jobs == MAX_JOBS)
        return -1;
    int n = nf_jpeg_encode_rgb(f->jpeg, rgb, W, H, W * 3, 95, b->data + 40,
                               b->cap - 40);
    if (n < 0)
        return -1;
    struct nf_job *j = &f->jobs[f->n_jobs++];
    memset(j, 0, sizeof *j);
    j->client = &f->clients[c];
    j->session = &f->clients[c]; /* What on_release gets back. */
    j->backend = f->backend;
    j->quality = 95;
    nf_temporal_params_default(&j->params);
    j->params.correct = 0;
    j->params.anchor_skip = 0; /* Anchors run as scheduled (not timing). */
    j->params_set = 1;
    j->hdr.seq = (uint32_t)seq;
    j->hdr.width = W;
    j->hdr.height = H;
    j->width = W;
    j->height = H;
    j->hdr.payload_len = (uint32_t)n;
    j->in = b;
    j->payload_off = 40;
    nf_sched_submit(f->sched, j);
    return 0;
}

/* Runs the loop until n jobs came back or 10 s passed. */
static void wait_back(struct fixture *f, int n)
{
    uint64_t t0 = uv_hrtime();
    while (f->n_back < n && uv_hrtime() - t0 < 10000000000ull)
        uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Every client submits as fast as it can with `codec` codec threads. */
static void every_job_back(struct nf_test_ctx *nf__t, int codec)
{
    struct fixture f;
    NF_CHECK_INT_EQ(setup_with(&f, 0, codec, CLIENTS), 0);
    int frames = 24;
    /* Every client submits as fast as it can: many frames supersede. */
    for (int k = 0; k < frames; k++) {
        for (int c = 0; c < CLIENTS; c++)
            NF_CHECK_INT_EQ(submit(&f, c, k), 0);
        uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    wait_back(&f, f.n_jobs);
    struct nf_sched_stats st;
    nf_sched_get_stats(f.sched, &st);
    teardown(&f);
    NF_CHECK_INT_EQ(f.n_back, f.n_jobs);
    int last[CLIENTS], finished = 0, superseded = 0;
    for (int c = 0; c < CLIENTS; c++)
        last[c] = -1;
    for (int i = 0; i < f.n_back; i++) {
        struct returned *r = &f.back[i];
        if (r->superseded) {
            superseded++;
            continue;
        }
        finished++;
        NF_CHECK_INT_EQ(r->status, 0);
        NF_CHECK(r->seq > last[r->client]);
        last[r->client] = r->seq;
        NF_CHECK(abs(r->value - value_of(r->client, r->seq)) <= 2);
    }
    /* Each session's newest frame is never superseded. */
    for (int c = 0; c < CLIENTS; c++)
        NF_CHECK_INT_EQ(last[c], frames - 1);
    NF_CHECK_INT_EQ(st.jobs, (uint64_t)finished);
    NF_CHECK_INT_EQ(finished + superseded, f.n_jobs);
    printf("  %d codec thread(s): %d finished, %d superseded, %llu batches\n",
           codec, finished, superseded, (unsigned long long)st.batches);
}

NF_TEST(sched_every_job_back_once_in_order_with_its_pixels)
{
    every_job_back(nf__t, 1);
}

/* The same with a crew of codec threads: batches' frames decoded and
 * encoded in parallel, each with the right pixels. */
NF_TEST(sched_codec_crew_every_job_back_once)
{
    every_job_back(nf__t, 4);
}

NF_TEST(sched_prepares_while_predicting)
{
    struct fixture f;
    /* One frame per client at a time, resubmitted as each comes back. With
     * max_batch 2 the 4 sessions never fit one batch, so while the predict
     * thread runs one the codec thread has the others to prepare (with 4,
     * all could come back and leave together, and no batch would overlap:
     * seen once in 30 runs). */
    NF_CHECK_INT_EQ(setup_with(&f, 0, 1, 2), 0);
    int rounds = 20, next[CLIENTS] = {0}, seen = 0;
    for (int c = 0; c < CLIENTS; c++)
        NF_CHECK_INT_EQ(submit(&f, c, next[c]++), 0);
    uint64_t t0 = uv_hrtime();
    while (f.n_back < rounds * CLIENTS && uv_hrtime() - t0 < 10000000000ull) {
        uv_run(&f.loop, UV_RUN_ONCE);
        for (; seen < f.n_back; seen++) {
            int c = f.back[seen].client;
            if (next[c] < rounds)
                NF_CHECK_INT_EQ(submit(&f, c, next[c]++), 0);
        }
    }
    struct nf_sched_stats st;
    nf_sched_get_stats(f.sched, &st);
    teardown(&f);
    NF_CHECK_INT_EQ(f.n_back, rounds * CLIENTS);
    for (int i = 0; i < f.n_back; i++)
        NF_CHECK(!f.back[i].superseded && f.back[i].status == 0);
    printf("  %llu batches, %llu prepared during a forward pass\n",
           (unsigned long long)st.batches, (unsigned long long)st.overlapped);
    NF_CHECK(st.overlapped > 0);
    NF_CHECK(st.batches > (uint64_t)rounds);
}

NF_TEST(sched_close_hands_back_frames_in_the_pipeline)
{
    struct fixture f;
    NF_CHECK_INT_EQ(setup(&f), 0);
    for (int k = 0; k < 3; k++)
        for (int c = 0; c < CLIENTS; c++)
            NF_CHECK_INT_EQ(submit(&f, c, k), 0);
    /* What still waits is cancelled, as a closing session does; what is
     * in the pipeline comes back through on_done when the scheduler
     * closes. */
    int cancelled = 0;
    for (int c = 0; c < CLIENTS; c++) {
        struct nf_job *j = nf_sched_cancel(f.sched, &f.clients[c]);
        if (j != NULL) {
            cancelled++;
            nf_bufpool_put(&f.pool, j->in);
        }
    }
    teardown(&f);
    NF_CHECK_INT_EQ(f.n_back + cancelled, f.n_jobs);
}

static void anchors_after_frames(struct nf_test_ctx *nf__t, int codec)
{
    struct fixture f;
    NF_CHECK_INT_EQ(setup_with(&f, 1, codec, CLIENTS), 0);
    /* Two sessions, one frame at a time each; anchor_every is 8, so frames
     * 7 and 15 of each session carry an anchor. */
    int rounds = 17, next[2] = {0}, seen = 0;
    for (int c = 0; c < 2; c++)
        NF_CHECK_INT_EQ(submit(&f, c, next[c]++), 0);
    /* Until every frame is back and every held one released. The loop
     * never blocks, so the deadline holds (uv_run(UV_RUN_ONCE) would wait
     * for ever for a release that is not coming). */
    uint64_t t0 = uv_hrtime();
    int held = 0;
    while ((f.n_back < 2 * rounds || f.n_released < held) &&
           uv_hrtime() - t0 < 10000000000ull) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        for (; seen < f.n_back; seen++) {
            int c = f.back[seen].client;
            held += f.back[seen].held;
            if (next[c] < rounds)
                NF_CHECK_INT_EQ(submit(&f, c, next[c]++), 0);
        }
    }
    teardown(&f);
    NF_CHECK_INT_EQ(f.n_back, 2 * rounds);
    for (int i = 0; i < f.n_back; i++) {
        struct returned *r = &f.back[i];
        NF_CHECK(!r->superseded && r->status == 0);
        /* Only anchor frames are held, and only when their anchor still
         * runs as the frame is finished: one whose anchor ended first has
         * nothing to wait for and goes back unheld. */
        NF_CHECK(!r->held || r->seq % 8 == 7);
        NF_CHECK(abs(r->value - value_of(r->client, r->seq)) <= 2);
    }
    /* How many are held depends on timing here (none when every anchor
     * ends before the codec thread finishes its frame, seen once in 20 runs
     * with both cores busy); sched_lone_session_runs_solo checks that a
     * frame goes back before its anchor. */
    printf("  %d of the 4 anchor frames went back before their anchor\n", held);
    /* One release per held frame, after that frame came back and before
     * the same session's next frame did. */
    NF_CHECK_INT_EQ(f.n_released, held);
    for (int k = 0; k < f.n_released; k++) {
        int c = f.released[k], last = -1;
        for (int i = 0; i < f.released_after[k]; i++)
            if (f.back[i].client == c)
                last = i;
        NF_CHECK(last >= 0 && f.back[last].held);
    }
}

NF_TEST(sched_anchor_frames_go_back_before_their_anchor)
{
    anchors_after_frames(nf__t, 1);
}

NF_TEST(sched_codec_crew_anchor_frames_go_back_before_their_anchor)
{
    anchors_after_frames(nf__t, 3);
}

/* A single stream, one frame at a time: every frame runs start to finish
 * on the predict thread (no hand-off), anchors included, with its pixels
 * and in order. (The two-session anchor tests above also check the order
 * of releases: a release once reached the loop after its session's next
 * frame when the machine was loaded.) */
NF_TEST(sched_lone_session_runs_solo)
{
    struct fixture f;
    NF_CHECK_INT_EQ(setup_with(&f, 1, 1, CLIENTS), 0);
    int frames = 20, next = 0, seen = 0;
    NF_CHECK_INT_EQ(submit(&f, 0, next++), 0);
    uint64_t t0 = uv_hrtime();
    while (f.n_back < frames && uv_hrtime() - t0 < 10000000000ull) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        for (; seen < f.n_back; seen++)
            if (next < frames)
                NF_CHECK_INT_EQ(submit(&f, 0, next++), 0);
    }
    struct nf_sched_stats st;
    nf_sched_get_stats(f.sched, &st);
    teardown(&f);
    NF_CHECK_INT_EQ(f.n_back, frames);
    for (int i = 0; i < f.n_back; i++) {
        NF_CHECK(!f.back[i].superseded && f.back[i].status == 0);
        NF_CHECK_INT_EQ(f.back[i].seq, i);
        NF_CHECK(abs(f.back[i].value - value_of(0, i)) <= 2);
    }
    printf("  %llu of %d frames solo, %d held for their anchor\n",
           (unsigned long long)st.solo, frames, f.n_released);
    NF_CHECK_INT_EQ(st.solo, (uint64_t)frames);
    NF_CHECK_INT_EQ(st.batches, (uint64_t)frames);
    NF_CHECK_INT_EQ(st.overlapped, 0);
    /* Frames 7 and 15 carry anchors; a solo frame goes back before its
     * anchor runs, so both are held and released. */
    NF_CHECK_INT_EQ(f.n_released, 2);
}

NF_TEST_MAIN(
    NF_TEST_ENTRY(sched_every_job_back_once_in_order_with_its_pixels)
        NF_TEST_ENTRY(sched_codec_crew_every_job_back_once)
            NF_TEST_ENTRY(sched_prepares_while_predicting) NF_TEST_ENTRY(
                sched_close_hands_back_frames_in_the_pipeline)
                NF_TEST_ENTRY(sched_anchor_frames_go_back_before_their_anchor)
                    NF_TEST_ENTRY(
                        sched_codec_crew_anchor_frames_go_back_before_their_anchor)
                        NF_TEST_ENTRY(sched_lone_session_runs_solo))
