/*
 * test-obs-exchange.c - the OBS filter's frame exchange (clients/obs/
 * exchange.c) without OBS: pixel conversion and the strength blend, the
 * newest-wins slot, the seq rule for frames in flight, the reconnect
 * backoff, and the exchange against a real nextframe server started on
 * loopback ($BUILD/nextframe; those tests skip when it is missing).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "exchange.h"
#include "mono-clock.h"
#include "nf-test.h"

extern char **environ;

/* ---- Conversion and blend ----------------------------------------------- */

NF_TEST(obs_to_rgb_swaps_bgra_and_skips_stride_padding)
{
    /* 2x2 pixels, rows padded to 12 bytes. */
    const uint8_t bgra[24] = {1, 2,  3,  4,  5,  6,  7,  8,  99, 99, 99, 99,
                              9, 10, 11, 12, 13, 14, 15, 16, 99, 99, 99, 99};
    const uint8_t want[12] = {3, 2, 1, 7, 6, 5, 11, 10, 9, 15, 14, 13};
    uint8_t rgb[12];

    nf_obs_to_rgb(bgra, 12, NF_OBS_BGRA, 2, 2, rgb, 6);
    NF_CHECK(memcmp(rgb, want, sizeof(want)) == 0);
    nf_obs_to_rgb(bgra, 12, NF_OBS_RGBA, 2, 2, rgb, 6);
    NF_CHECK_INT_EQ(rgb[0], 1);
    NF_CHECK_INT_EQ(rgb[2], 3);
    NF_CHECK_INT_EQ(rgb[9], 13);
}

NF_TEST(obs_strength_q8_clamps)
{
    NF_CHECK_INT_EQ(nf_obs_strength_q8(0.0f), 0);
    NF_CHECK_INT_EQ(nf_obs_strength_q8(-1.0f), 0);
    NF_CHECK_INT_EQ(nf_obs_strength_q8(NAN), 0);
    NF_CHECK_INT_EQ(nf_obs_strength_q8(0.5f), 128);
    NF_CHECK_INT_EQ(nf_obs_strength_q8(1.0f), 256);
    NF_CHECK_INT_EQ(nf_obs_strength_q8(7.0f), 256);
}

NF_TEST(obs_compose_strength_0_is_original_1_is_stylized)
{
    const uint8_t orig[8] = {10, 20, 30, 255, 200, 100, 0, 255}; /* BGRA */
    const uint8_t styl[6] = {90, 80, 70, 0, 255, 128};           /* RGB */
    uint8_t out[8];

    nf_obs_compose(orig, 8, NF_OBS_BGRA, styl, 6, 2, 1, 0, out, 8, NF_OBS_RGBA);
    NF_CHECK_INT_EQ(out[0], 30); /* R of the original. */
    NF_CHECK_INT_EQ(out[1], 20);
    NF_CHECK_INT_EQ(out[2], 10);
    NF_CHECK_INT_EQ(out[3], 255);
    NF_CHECK_INT_EQ(out[4], 0);
    NF_CHECK_INT_EQ(out[6], 200);
    nf_obs_compose(orig, 8, NF_OBS_BGRA, styl, 6, 2, 1, 256, out, 8,
                   NF_OBS_RGBA);
    NF_CHECK(memcmp(out, (const uint8_t[]){90, 80, 70, 255, 0, 255, 128, 255},
                    8) == 0);
}

NF_TEST(obs_compose_blends_linearly_with_rounding)
{
    const uint8_t orig[4] = {0, 100, 255, 255}; /* RGBA */
    const uint8_t styl[3] = {255, 101, 0};
    uint8_t out[4];

    /* out = o + s * (t - o): 127.5 -> 128, 100.5 -> 101, 127.5 -> 128. */
    nf_obs_compose(orig, 4, NF_OBS_RGBA, styl, 3, 1, 1, 128, out, 4,
                   NF_OBS_RGBA);
    NF_CHECK_INT_EQ(out[0], 128);
    NF_CHECK_INT_EQ(out[1], 101);
    NF_CHECK_INT_EQ(out[2], 128);
    /* A quarter: 0 + 63.75 -> 64. */
    nf_obs_compose(orig, 4, NF_OBS_RGBA, styl, 3, 1, 1, 64, out, 4,
                   NF_OBS_RGBA);
    NF_CHECK_INT_EQ(out[0], 64);
    /* Every weight stays between the two ends. */
    for (int s = 0; s <= 256; s++) {
        nf_obs_compose(orig, 4, NF_OBS_RGBA, styl, 3, 1, 1, s, out, 4,
                       NF_OBS_RGBA);
        NF_CHECK(out[2] <= 255 && out[0] <= (s * 255 + 255) / 256);
    }
}

NF_TEST(obs_compose_keeps_alpha_and_premultiplies)
{
    const uint8_t orig[8] = {0, 0, 0, 0, 40, 40, 40, 128}; /* RGBA */
    const uint8_t styl[6] = {200, 200, 200, 200, 100, 0};
    uint8_t out[8];

    nf_obs_compose(orig, 8, NF_OBS_RGBA, styl, 6, 2, 1, 256, out, 8,
                   NF_OBS_RGBA);
    NF_CHECK(memcmp(out, (const uint8_t[]){0, 0, 0, 0}, 4) == 0);
    NF_CHECK_INT_EQ(out[4], 100); /* 200 * 128 / 255, rounded. */
    NF_CHECK_INT_EQ(out[5], 50);
    NF_CHECK_INT_EQ(out[6], 0);
    NF_CHECK_INT_EQ(out[7], 128);
}

NF_TEST(obs_compose_without_original_is_opaque_stylized)
{
    const uint8_t styl[3] = {1, 2, 3};
    uint8_t out[4];

    nf_obs_compose(NULL, 0, NF_OBS_RGBA, styl, 3, 1, 1, 128, out, 4,
                   NF_OBS_BGRA);
    NF_CHECK(memcmp(out, (const uint8_t[]){3, 2, 1, 255}, 4) == 0);
}

NF_TEST(obs_image_reserve_grows_only_when_needed)
{
    struct nf_obs_image img = {0};
    uint8_t *first;

    NF_CHECK_INT_EQ(nf_obs_image_reserve(&img, 0, 10), NF_EINVAL);
    NF_CHECK_INT_EQ(nf_obs_image_reserve(&img, 16385, 10), NF_EINVAL);
    NF_CHECK_INT_EQ(nf_obs_image_reserve(&img, 64, 48), 0);
    NF_CHECK_INT_EQ(img.stride, 256);
    first = img.data;
    NF_CHECK_INT_EQ(nf_obs_image_reserve(&img, 32, 32), 0);
    NF_CHECK(img.data == first);
    NF_CHECK_INT_EQ(img.width, 32);
    NF_CHECK_INT_EQ(nf_obs_image_reserve(&img, 640, 480), 0);
    NF_CHECK(img.cap >= 640 * 480 * 4);
    free(img.data);
}

/* ---- Slot --------------------------------------------------------------- */

static struct nf_obs_image *make(struct nf_obs_slot *s, uint32_t seq)
{
    struct nf_obs_image *img = nf_obs_slot_acquire(s);

    if (img != NULL && nf_obs_image_reserve(img, 4, 4) == 0) {
        img->seq = seq;
        img->data[0] = (uint8_t)seq;
    }
    return img;
}

NF_TEST(obs_slot_newest_wins)
{
    struct nf_obs_slot s;
    struct nf_obs_image *img;

    NF_CHECK_INT_EQ(nf_obs_slot_init(&s), 0);
    NF_CHECK(nf_obs_slot_take(&s) == NULL);
    NF_CHECK(!nf_obs_slot_has_pending(&s));
    for (uint32_t i = 1; i <= 3; i++)
        nf_obs_slot_publish(&s, make(&s, i));
    NF_CHECK(nf_obs_slot_has_pending(&s));
    img = nf_obs_slot_take(&s);
    NF_CHECK(img != NULL);
    NF_CHECK_INT_EQ(img->seq, 3);
    NF_CHECK_INT_EQ(img->data[0], 3);
    NF_CHECK(nf_obs_slot_take(&s) == NULL);
    NF_CHECK_INT_EQ(s.published, 3);
    NF_CHECK_INT_EQ(s.overwritten, 2);
    nf_obs_slot_release(&s, img);
    nf_obs_slot_free(&s);
}

NF_TEST(obs_slot_recycles_buffers)
{
    struct nf_obs_slot s;
    struct nf_obs_image *a, *b, *seen[2];

    NF_CHECK_INT_EQ(nf_obs_slot_init(&s), 0);
    /* Warm up: one in the producer's hands, one pending, one taken. */
    a = make(&s, 1);
    nf_obs_slot_publish(&s, a);
    b = make(&s, 2);
    seen[0] = a;
    seen[1] = b;
    nf_obs_slot_release(&s, nf_obs_slot_take(&s));
    nf_obs_slot_publish(&s, b);
    /* From now on every buffer handed out is one of the two. */
    for (uint32_t i = 3; i < 100; i++) {
        struct nf_obs_image *img = make(&s, i);

        NF_CHECK(img == seen[0] || img == seen[1]);
        nf_obs_slot_publish(&s, img);
        img = nf_obs_slot_take(&s);
        NF_CHECK_INT_EQ(img->seq, i);
        nf_obs_slot_release(&s, img);
    }
    nf_obs_slot_free(&s);
}

struct slot_race {
    struct nf_obs_slot s;
    uint32_t n;
    int ok; /* The consumer saw strictly increasing seqs. */
    uint32_t taken;
};

static void *producer(void *arg)
{
    struct slot_race *r = arg;

    for (uint32_t i = 1; i <= r->n; i++) {
        struct nf_obs_image *img = make(&r->s, i);

        if (img == NULL)
            break;
        memset(img->data, (int)(i & 0xff), img->cap);
        nf_obs_slot_publish(&r->s, img);
        if (i % 64 == 0)
            sched_yield();
    }
    nf_obs_slot_kick(&r->s);
    return NULL;
}

NF_TEST(obs_slot_two_threads_see_only_newer_frames)
{
    static struct slot_race r;
    uint32_t last = 0;
    pthread_t t;

    memset(&r, 0, sizeof(r));
    r.n = 20000;
    r.ok = 1;
    NF_CHECK_INT_EQ(nf_obs_slot_init(&r.s), 0);
    NF_CHECK_INT_EQ(pthread_create(&t, NULL, producer, &r), 0);
    for (;;) {
        int more = nf_obs_slot_wait(&r.s, 100000);
        struct nf_obs_image *img = nf_obs_slot_take(&r.s);

        if (img != NULL) {
            /* The whole buffer is one frame's: never torn. */
            if (img->seq <= last || img->data[0] != (uint8_t)img->seq ||
                img->data[img->cap - 1] != (uint8_t)img->seq)
                r.ok = 0;
            last = img->seq;
            r.taken++;
            nf_obs_slot_release(&r.s, img);
        } else if (!more && r.s.kicked) {
            break;
        }
    }
    pthread_join(t, NULL);
    NF_CHECK(r.ok);
    NF_CHECK_INT_EQ(last, r.n);
    NF_CHECK_INT_EQ(r.s.published, r.n);
    NF_CHECK_INT_EQ(r.taken + r.s.overwritten, r.n);
    NF_CHECK(r.s.pool_n <= NF_OBS_POOL_MAX);
    nf_obs_slot_free(&r.s);
}

NF_TEST(obs_slot_wait_times_out_then_wakes)
{
    struct nf_obs_slot s;
    uint64_t t0;

    NF_CHECK_INT_EQ(nf_obs_slot_init(&s), 0);
    t0 = nf_mono_us();
    NF_CHECK_INT_EQ(nf_obs_slot_wait(&s, 30000), 0);
    NF_CHECK(nf_mono_us() - t0 >= 29000);
    nf_obs_slot_publish(&s, make(&s, 7));
    t0 = nf_mono_us();
    NF_CHECK_INT_EQ(nf_obs_slot_wait(&s, 5000000), 1);
    NF_CHECK(nf_mono_us() - t0 < 1000000);
    nf_obs_slot_free(&s); /* Frees the pending image too. */
}

/* ---- In flight ---------------------------------------------------------- */

NF_TEST(obs_inflight_reply_drops_older_frames)
{
    struct nf_obs_slot pool;
    struct nf_obs_inflight t;
    struct nf_obs_image *orig, *sent[3];

    NF_CHECK_INT_EQ(nf_obs_slot_init(&pool), 0);
    nf_obs_inflight_init(&t, 3, 100, &pool);
    for (int i = 0; i < 3; i++) {
        NF_CHECK(nf_obs_inflight_can_send(&t));
        sent[i] = make(&pool, 0);
        NF_CHECK_INT_EQ(nf_obs_inflight_push(&t, sent[i], 1000), 100 + i);
    }
    NF_CHECK(!nf_obs_inflight_can_send(&t));
    /* The reply to 101 means 100 was dropped by the server. */
    NF_CHECK_INT_EQ(nf_obs_inflight_reply(&t, 101, 2000, &orig), 1);
    NF_CHECK(orig == sent[1]);
    NF_CHECK_INT_EQ(nf_obs_inflight_count(&t), 1);
    NF_CHECK_INT_EQ(pool.pool_n, 1); /* 100's original went back. */
    nf_obs_slot_release(&pool, orig);
    /* Old and repeated seqs are late; future ones were never sent. */
    NF_CHECK_INT_EQ(nf_obs_inflight_reply(&t, 100, 2000, &orig), NF_EAGAIN);
    NF_CHECK_INT_EQ(nf_obs_inflight_reply(&t, 101, 2000, &orig), NF_EAGAIN);
    NF_CHECK_INT_EQ(nf_obs_inflight_reply(&t, 103, 2000, &orig), NF_ERANGE);
    NF_CHECK_INT_EQ(nf_obs_inflight_reply(&t, 99 - 5000, 2000, &orig),
                    NF_ERANGE);
    NF_CHECK(orig == NULL);
    NF_CHECK_INT_EQ(nf_obs_inflight_reply(&t, 102, 2000, &orig), 0);
    NF_CHECK(orig == sent[2]);
    nf_obs_slot_release(&pool, orig);
    NF_CHECK_INT_EQ(nf_obs_inflight_count(&t), 0);
    nf_obs_slot_free(&pool);
}

NF_TEST(obs_inflight_seq_wraps)
{
    struct nf_obs_slot pool;
    struct nf_obs_inflight t;
    struct nf_obs_image *orig;

    NF_CHECK_INT_EQ(nf_obs_slot_init(&pool), 0);
    nf_obs_inflight_init(&t, 4, 0xfffffffeu, &pool);
    for (int i = 0; i < 4; i++)
        nf_obs_inflight_push(&t, make(&pool, (uint32_t)i), 0);
    NF_CHECK_INT_EQ(t.next_seq, 2);
    NF_CHECK_INT_EQ(nf_obs_inflight_count(&t), 4);
    NF_CHECK_INT_EQ(nf_obs_inflight_reply(&t, 0, 0, &orig), 2);
    NF_CHECK(orig != NULL && orig->seq == 2);
    nf_obs_slot_release(&pool, orig);
    NF_CHECK_INT_EQ(nf_obs_inflight_reply(&t, 1, 0, &orig), 0);
    NF_CHECK(orig != NULL && orig->seq == 3);
    nf_obs_slot_release(&pool, orig);
    nf_obs_slot_free(&pool);
}

NF_TEST(obs_inflight_expires_only_without_progress)
{
    struct nf_obs_slot pool;
    struct nf_obs_inflight t;
    struct nf_obs_image *orig;

    NF_CHECK_INT_EQ(nf_obs_slot_init(&pool), 0);
    nf_obs_inflight_init(&t, 2, 5, &pool);
    NF_CHECK_INT_EQ(nf_obs_inflight_expire(&t, 9000000, 2000000), 0);
    nf_obs_inflight_push(&t, make(&pool, 0), 1000000); /* seq 5 */
    nf_obs_inflight_push(&t, make(&pool, 0), 1500000); /* seq 6 */
    NF_CHECK_INT_EQ(nf_obs_inflight_expire(&t, 2900000, 2000000), 0);
    /* A slow server: a reply every 1.9 s keeps the rest alive. */
    NF_CHECK_INT_EQ(nf_obs_inflight_reply(&t, 5, 2900000, &orig), 0);
    nf_obs_slot_release(&pool, orig);
    nf_obs_inflight_push(&t, make(&pool, 0), 2950000); /* seq 7 */
    NF_CHECK_INT_EQ(nf_obs_inflight_expire(&t, 4800000, 2000000), 0);
    /* Then nothing for over 2 s: both outstanding frames are forgotten. */
    NF_CHECK_INT_EQ(nf_obs_inflight_expire(&t, 4900001, 2000000), 2);
    NF_CHECK_INT_EQ(nf_obs_inflight_count(&t), 0);
    NF_CHECK_INT_EQ(t.next_seq, 8);  /* Seqs go on. */
    NF_CHECK_INT_EQ(pool.pool_n, 2); /* seq 7 reused 5's buffer. */
    /* Their replies may still come: late, not errors. */
    NF_CHECK_INT_EQ(nf_obs_inflight_reply(&t, 7, 5000000, &orig), NF_EAGAIN);
    /* The next send starts a new wait. */
    nf_obs_inflight_push(&t, make(&pool, 0), 8000000);
    NF_CHECK_INT_EQ(nf_obs_inflight_expire(&t, 9000000, 2000000), 0);
    NF_CHECK_INT_EQ(nf_obs_inflight_expire(&t, 10000001, 2000000), 1);
    nf_obs_slot_free(&pool);
}

/* ---- Backoff ------------------------------------------------------------ */

NF_TEST(obs_backoff_doubles_caps_and_resets)
{
    static const uint32_t want[] = {250, 500, 1000, 2000, 4000, 5000, 5000};
    struct nf_obs_backoff b;

    nf_obs_backoff_init(&b, 250, 5000);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        NF_CHECK_INT_EQ(nf_obs_backoff_next(&b), want[i]);
    NF_CHECK_INT_EQ(b.failures, 7);
    nf_obs_backoff_reset(&b);
    NF_CHECK_INT_EQ(nf_obs_backoff_next(&b), 250);
    /* Degenerate settings stay sane and never overflow. */
    nf_obs_backoff_init(&b, 0, 0);
    NF_CHECK_INT_EQ(nf_obs_backoff_next(&b), 1);
    NF_CHECK_INT_EQ(nf_obs_backoff_next(&b), 1);
    nf_obs_backoff_init(&b, 3000000000u, 4000000000u);
    NF_CHECK_INT_EQ(nf_obs_backoff_next(&b), 3000000000u);
    NF_CHECK_INT_EQ(nf_obs_backoff_next(&b), 4000000000u);
}

NF_TEST(obs_style_names)
{
    NF_CHECK(nf_obs_style_valid("toon"));
    NF_CHECK(nf_obs_style_valid("oil-2.v_1"));
    NF_CHECK(!nf_obs_style_valid(""));
    NF_CHECK(!nf_obs_style_valid("two words"));
    NF_CHECK(!nf_obs_style_valid("\"quote"));
    NF_CHECK(nf_obs_style_valid(
        "a23456789012345678901234567890123456789012345678901234567890123"));
    NF_CHECK(!nf_obs_style_valid(
        "a234567890123456789012345678901234567890123456789012345678901234"));
}

/* ---- The exchange, with and without a server ---------------------------- */

/* Collects log lines so that tests can look for them. */
struct log_buf {
    pthread_mutex_t lock;
    char text[16384];
    size_t len;
};

static void log_collect(void *user, int level, const char *line)
{
    struct log_buf *b = user;
    int n;

    (void)level;
    pthread_mutex_lock(&b->lock);
    n = snprintf(b->text + b->len, sizeof(b->text) - b->len, "%s\n", line);
    if (n > 0 && (size_t)n < sizeof(b->text) - b->len)
        b->len += (size_t)n;
    pthread_mutex_unlock(&b->lock);
    if (getenv("NF_TEST_VERBOSE") != NULL)
        printf("  log: %s\n", line);
}

static int log_has(struct log_buf *b, const char *what)
{
    int r;

    pthread_mutex_lock(&b->lock);
    r = strstr(b->text, what) != NULL;
    pthread_mutex_unlock(&b->lock);
    return r;
}

/* How many lines contain what. */
static int log_count(struct log_buf *b, const char *what)
{
    const char *p;
    int n = 0;

    pthread_mutex_lock(&b->lock);
    for (p = b->text; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    pthread_mutex_unlock(&b->lock);
    return n;
}

static void sleep_us(uint64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/*
 * Submits one 4-byte-per-pixel test frame: R holds tag, G a horizontal and
 * B a vertical gradient, alpha 255. Returns the time the submit took.
 */
static uint64_t submit_frame(struct nf_obs_exchange *x, int w, int h,
                             uint8_t tag, uint64_t *stamp)
{
    uint64_t t0 = nf_mono_us();
    struct nf_obs_image *img =
        nf_obs_exchange_frame_acquire(x, w, h, NF_OBS_BGRA);

    if (img == NULL)
        return UINT64_MAX;
    for (int y = 0; y < h; y++) {
        uint8_t *p = img->data + (size_t)y * (size_t)img->stride;

        for (int i = 0; i < w; i++, p += 4) {
            p[0] = (uint8_t)(y * 255 / h); /* B */
            p[1] = (uint8_t)(i * 255 / w); /* G */
            p[2] = tag;                    /* R */
            p[3] = 255;
        }
    }
    if (stamp != NULL)
        *stamp = img->stamp_us;
    nf_obs_exchange_frame_submit(x, img);
    return nf_mono_us() - t0;
}

struct server {
    pid_t pid;
    int out_fd; /* The read end of its stdout; kept open until stop. */
    int port;
    char url[128];
};

/*
 * Starts $BUILD/nextframe on 127.0.0.1:port (0: any) and waits for its
 * "listening on" line. Returns 0, or -1 if there is no server binary or
 * it did not start within 10 s.
 */
/*
 * Servers started and not yet stopped: a failed check returns from its
 * test at once, so whatever it started is killed when the binary exits.
 */
static pid_t live_servers[8];

static void kill_live_servers(void)
{
    for (size_t i = 0; i < sizeof live_servers / sizeof live_servers[0]; i++)
        if (live_servers[i] > 0)
            kill(live_servers[i], SIGKILL);
}

static void track_server(pid_t pid, pid_t instead)
{
    static int registered;
    if (!registered)
        registered = atexit(kill_live_servers) == 0;
    for (size_t i = 0; i < sizeof live_servers / sizeof live_servers[0]; i++)
        if (live_servers[i] == instead) {
            live_servers[i] = pid;
            return;
        }
}

static int server_start_with(struct server *s, int port, const char *token_file)
{
    const char *build = getenv("BUILD") != NULL ? getenv("BUILD") : "build";
    char bin[256], portarg[16], buf[512];
    char *argv[] = {bin,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    portarg,
                    "--model",
                    "models/default.safetensors",
                    token_file ? "--token-file" : NULL,
                    (char *)token_file,
                    NULL};
    posix_spawn_file_actions_t fa;
    size_t used = 0;
    uint64_t deadline = nf_mono_us() + 10000000;
    int fds[2], rc;

    snprintf(bin, sizeof(bin), "%s/nextframe", build);
    snprintf(portarg, sizeof(portarg), "%d", port);
    if (access(bin, X_OK) != 0 || pipe(fds) != 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    rc = posix_spawn(&s->pid, bin, &fa, NULL, argv, environ);
    if (rc == 0)
        track_server(s->pid, 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    s->out_fd = fds[0];
    if (rc != 0) {
        close(fds[0]);
        return -1;
    }
    while (nf_mono_us() < deadline && used < sizeof(buf) - 1) {
        struct pollfd p = {.fd = s->out_fd, .events = POLLIN};
        const char *at;
        ssize_t n;

        if (poll(&p, 1, 100) <= 0)
            continue;
        n = read(s->out_fd, buf + used, sizeof(buf) - 1 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
        buf[used] = '\0';
        at = strstr(buf, "listening on http://127.0.0.1:");
        if (at != NULL && strchr(at, '\n') != NULL) {
            s->port = atoi(at + strlen("listening on http://127.0.0.1:"));
            snprintf(s->url, sizeof(s->url), "ws://127.0.0.1:%d/v1/stream",
                     s->port);
            return 0;
        }
    }
    track_server(0, s->pid);
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    close(s->out_fd);
    return -1;
}

static int server_start(struct server *s, int port)
{
    return server_start_with(s, port, NULL);
}

static void server_kill(struct server *s, int sig)
{
    track_server(0, s->pid);
    kill(s->pid, sig);
    waitpid(s->pid, NULL, 0);
    close(s->out_fd);
}

static void config_for(struct nf_obs_exchange_config *cfg, const char *url,
                       struct log_buf *log)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->settings.url, sizeof(cfg->settings.url), "%s", url);
    cfg->settings.strength = 1.0f;
    cfg->backoff_min_ms = 50;
    cfg->backoff_max_ms = 400;
    cfg->log = log_collect;
    cfg->log_user = log;
}

/* Submits frames every 10 ms until stats.received reaches n (or 20 s). */
static int stream_until(struct nf_obs_exchange *x, uint64_t n,
                        uint64_t *max_submit_us)
{
    uint64_t deadline = nf_mono_us() + 20000000;
    struct nf_obs_stats st;
    uint8_t tag = 0;

    do {
        uint64_t us = submit_frame(x, 160, 120, tag++, NULL);

        if (max_submit_us != NULL && us > *max_submit_us)
            *max_submit_us = us;
        nf_obs_exchange_result_release(x, nf_obs_exchange_result_take(x));
        sleep_us(10000);
        nf_obs_exchange_get_stats(x, &st);
        if (st.received >= n)
            return 0;
    } while (nf_mono_us() < deadline);
    return -1;
}

NF_TEST(obs_exchange_server_down_never_blocks)
{
    static struct log_buf log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct nf_obs_exchange_config cfg;
    struct nf_obs_exchange *x;
    struct nf_obs_stats st;
    uint64_t worst = 0, t0;

    /* Port 1 on loopback: nothing listens there; connects are refused. */
    config_for(&cfg, "ws://127.0.0.1:1/v1/stream", &log);
    NF_CHECK_INT_EQ(nf_obs_exchange_init(&x, &cfg), 0);
    t0 = nf_mono_us();
    while (nf_mono_us() - t0 < 1500000) {
        uint64_t us = submit_frame(x, 320, 240, 1, NULL);

        if (us > worst)
            worst = us;
        NF_CHECK(nf_obs_exchange_result_take(x) == NULL);
        sleep_us(5000);
    }
    nf_obs_exchange_get_stats(x, &st);
    printf("  server down: %llu connect failures in 1.5 s, slowest submit "
           "%.3f ms\n",
           (unsigned long long)st.connect_failures, worst / 1000.0);
    NF_CHECK(st.connect_failures >= 3); /* 50, 100, 200, 400 ms backoff. */
    NF_CHECK(st.connect_failures <= 12);
    NF_CHECK_INT_EQ(st.sent, 0);
    NF_CHECK(st.submitted > 100);
    NF_CHECK(st.superseded >= st.submitted - 1);
    NF_CHECK(st.last_error[0] != '\0');
    NF_CHECK(log_has(&log, "cannot stream to ws://127.0.0.1:1/v1/stream"));
    /* A copy of 320x240 pixels, not a wait for the network. */
    NF_CHECK(worst < 50000);
    t0 = nf_mono_us();
    nf_obs_exchange_free(x);
    NF_CHECK(nf_mono_us() - t0 < 1000000);
}

NF_TEST(obs_exchange_bad_url_is_reported)
{
    static struct log_buf log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct nf_obs_exchange_config cfg;
    struct nf_obs_exchange *x;
    struct nf_obs_stats st;

    config_for(&cfg, "http://127.0.0.1:8080/", &log);
    NF_CHECK_INT_EQ(nf_obs_exchange_init(&x, &cfg), 0);
    submit_frame(x, 16, 16, 0, NULL);
    for (int i = 0; i < 100 && !log_has(&log, "ws://"); i++)
        sleep_us(10000);
    nf_obs_exchange_get_stats(x, &st);
    nf_obs_exchange_free(x);
    NF_CHECK(st.connect_failures >= 1);
    NF_CHECK(strstr(st.last_error, "ws://") != NULL);
}

NF_TEST(obs_exchange_idle_never_connects)
{
    static struct log_buf log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct nf_obs_exchange_config cfg;
    struct nf_obs_exchange *x;
    struct nf_obs_stats st;

    config_for(&cfg, "ws://127.0.0.1:1/v1/stream", &log);
    NF_CHECK_INT_EQ(nf_obs_exchange_init(&x, &cfg), 0);
    sleep_us(300000);
    nf_obs_exchange_get_stats(x, &st);
    nf_obs_exchange_free(x);
    NF_CHECK_INT_EQ(st.connect_failures, 0);
    NF_CHECK_INT_EQ(st.state, NF_OBS_IDLE);
}

NF_TEST(obs_exchange_round_trip_blends_the_right_original)
{
    static struct log_buf log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct nf_obs_exchange_config cfg;
    struct nf_obs_settings set;
    struct nf_obs_exchange *x;
    struct nf_obs_stats st;
    struct server srv;
    uint64_t stamps[256] = {0}, deadline;
    int checked = 0, stylized = 0;

    if (server_start(&srv, 0) < 0)
        NF_SKIP("no server: build $BUILD/nextframe first");
    config_for(&cfg, srv.url, &log);
    cfg.settings.strength = 0.0f; /* Result == the original it answers. */
    NF_CHECK_INT_EQ(nf_obs_exchange_init(&x, &cfg), 0);
    deadline = nf_mono_us() + 20000000;
    for (unsigned i = 0; checked < 10 && nf_mono_us() < deadline; i++) {
        struct nf_obs_image *r;

        submit_frame(x, 160, 120, (uint8_t)i, &stamps[i & 0xff]);
        sleep_us(10000);
        r = nf_obs_exchange_result_take(x);
        if (r == NULL)
            continue;
        /* R is the tag of the frame whose capture_us the reply echoes. */
        uint8_t tag = r->data[0];
        int ok = r->width == 160 && r->height == 120 &&
                 r->format == NF_OBS_RGBA && stamps[tag] == r->capture_us &&
                 r->data[3] == 255 && r->data[(size_t)119 * r->stride] == tag;
        nf_obs_exchange_result_release(x, r);
        NF_CHECK(ok);
        checked++;
    }
    NF_CHECK_INT_EQ(checked, 10);
    /* Full strength: the model's output, not the original. */
    set = cfg.settings;
    set.strength = 1.0f;
    nf_obs_exchange_set(x, &set);
    sleep_us(100000);
    nf_obs_exchange_result_release(x, nf_obs_exchange_result_take(x));
    deadline = nf_mono_us() + 20000000;
    while (stylized == 0 && nf_mono_us() < deadline) {
        struct nf_obs_image *r;

        submit_frame(x, 160, 120, 7, NULL);
        sleep_us(10000);
        r = nf_obs_exchange_result_take(x);
        if (r == NULL)
            continue;
        long diff = 0;
        for (size_t k = 0; k < (size_t)160 * 120 * 4; k += 4)
            diff += labs((long)r->data[k] - 7);
        nf_obs_exchange_result_release(x, r);
        stylized = diff > 160 * 120 * 2 ? 1 : -1;
    }
    NF_CHECK_INT_EQ(stylized, 1);
    nf_obs_exchange_get_stats(x, &st);
    printf("  round trip: sent %llu, received %llu, dropped %llu, latency "
           "%.1f ms\n",
           (unsigned long long)st.sent, (unsigned long long)st.received,
           (unsigned long long)st.dropped, st.last_latency_us / 1000.0);
    NF_CHECK_INT_EQ(st.state, NF_OBS_STREAMING);
    NF_CHECK_INT_EQ(st.connects, 1);
    NF_CHECK(st.sent >= st.received);
    NF_CHECK_INT_EQ(st.bad_replies, 0);
    NF_CHECK(log_has(&log, "connected to ws://127.0.0.1:"));
    nf_obs_exchange_free(x);
    server_kill(&srv, SIGTERM);
}

NF_TEST(obs_exchange_sends_style_and_token)
{
    static struct log_buf log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    static struct log_buf log2 = {.lock = PTHREAD_MUTEX_INITIALIZER};
    static const char token[] = "obs-token-0123456789abcdef";
    char path[] = "/tmp/nf-obs-token.XXXXXX";
    struct nf_obs_exchange_config cfg;
    struct nf_obs_settings set;
    struct nf_obs_exchange *x = NULL;
    struct server srv;
    int fd = mkstemp(path), streamed = -1, states = 0, refused = 0;

    NF_CHECK(fd >= 0);
    NF_CHECK(write(fd, token, sizeof token - 1) == (ssize_t)(sizeof token - 1));
    close(fd);
    if (server_start_with(&srv, 0, path) < 0) {
        unlink(path);
        NF_SKIP("no server: build $BUILD/nextframe first");
    }
    unlink(path);
    /* Everything is measured first and checked after the server is
     * stopped, so that a failed check leaves no server behind. */
    config_for(&cfg, srv.url, &log);
    snprintf(cfg.settings.style, sizeof(cfg.settings.style), "nope");
    snprintf(cfg.settings.token, sizeof(cfg.settings.token), "%s", token);
    if (nf_obs_exchange_init(&x, &cfg) == 0) {
        /* The token is accepted; an unknown style is refused but the
         * session goes on; set then brings a second state. */
        streamed = stream_until(x, 3, NULL);
        states = log_count(&log, "style default");
        set = cfg.settings;
        snprintf(set.style, sizeof(set.style), "default");
        nf_obs_exchange_set(x, &set);
        for (int i = 0; i < 200 && log_count(&log, "style default") < 2; i++)
            sleep_us(10000);
        nf_obs_exchange_free(x);
        x = NULL;
    }
    /* A wrong token: the server's 4403 reaches the log. */
    config_for(&cfg, srv.url, &log2);
    snprintf(cfg.settings.token, sizeof(cfg.settings.token),
             "obs-token-0123456789abcdeX");
    if (nf_obs_exchange_init(&x, &cfg) == 0) {
        for (int i = 0; i < 300 && !log_has(&log2, "4403"); i++) {
            submit_frame(x, 160, 120, 0, NULL);
            sleep_us(10000);
        }
        refused = log_has(&log2, "4403");
        nf_obs_exchange_free(x);
    }
    server_kill(&srv, SIGTERM);
    NF_CHECK_INT_EQ(streamed, 0);
    NF_CHECK(log_has(&log, "server error unknown_style"));
    NF_CHECK_INT_EQ(states, 1); /* The state that answered hello. */
    NF_CHECK_INT_EQ(log_count(&log, "style default"), 2);
    NF_CHECK_INT_EQ(log_count(&log, "unknown_style"), 1);
    NF_CHECK(!log_has(&log, token)); /* Never logged. */
    NF_CHECK(refused);
}

NF_TEST(obs_exchange_reconnects_after_server_restart)
{
    static struct log_buf log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct nf_obs_exchange_config cfg;
    struct nf_obs_exchange *x;
    struct nf_obs_stats st;
    struct server srv;
    uint64_t worst = 0, before, t0;

    if (server_start(&srv, 0) < 0)
        NF_SKIP("no server: build $BUILD/nextframe first");
    config_for(&cfg, srv.url, &log);
    NF_CHECK_INT_EQ(nf_obs_exchange_init(&x, &cfg), 0);
    NF_CHECK_INT_EQ(stream_until(x, 5, &worst), 0);
    /* The server dies without a close frame; frames keep coming. */
    server_kill(&srv, SIGKILL);
    t0 = nf_mono_us();
    while (nf_mono_us() - t0 < 1000000) {
        uint64_t us = submit_frame(x, 160, 120, 0, NULL);

        worst = us > worst ? us : worst;
        nf_obs_exchange_result_release(x, nf_obs_exchange_result_take(x));
        sleep_us(10000);
    }
    nf_obs_exchange_get_stats(x, &st);
    NF_CHECK(st.connect_failures >= 1);
    before = st.received;
    /* Back on the same port: the exchange finds it by itself. */
    NF_CHECK_INT_EQ(server_start(&srv, srv.port), 0);
    NF_CHECK_INT_EQ(stream_until(x, before + 5, &worst), 0);
    nf_obs_exchange_get_stats(x, &st);
    printf("  reconnect: %llu sessions, %llu failed attempts, slowest submit "
           "%.3f ms\n",
           (unsigned long long)st.connects,
           (unsigned long long)st.connect_failures, worst / 1000.0);
    NF_CHECK_INT_EQ(st.connects, 2);
    NF_CHECK(worst < 50000);
    nf_obs_exchange_free(x);
    server_kill(&srv, SIGTERM);
}

/* clang-format off */
NF_TEST_MAIN(
    NF_TEST_ENTRY(obs_to_rgb_swaps_bgra_and_skips_stride_padding)
    NF_TEST_ENTRY(obs_strength_q8_clamps)
    NF_TEST_ENTRY(obs_compose_strength_0_is_original_1_is_stylized)
    NF_TEST_ENTRY(obs_compose_blends_linearly_with_rounding)
    NF_TEST_ENTRY(obs_compose_keeps_alpha_and_premultiplies)
    NF_TEST_ENTRY(obs_compose_without_original_is_opaque_stylized)
    NF_TEST_ENTRY(obs_image_reserve_grows_only_when_needed)
    NF_TEST_ENTRY(obs_slot_newest_wins)
    NF_TEST_ENTRY(obs_slot_recycles_buffers)
    NF_TEST_ENTRY(obs_slot_two_threads_see_only_newer_frames)
    NF_TEST_ENTRY(obs_slot_wait_times_out_then_wakes)
    NF_TEST_ENTRY(obs_inflight_reply_drops_older_frames)
    NF_TEST_ENTRY(obs_inflight_seq_wraps)
    NF_TEST_ENTRY(obs_inflight_expires_only_without_progress)
    NF_TEST_ENTRY(obs_backoff_doubles_caps_and_resets)
    NF_TEST_ENTRY(obs_style_names)
    NF_TEST_ENTRY(obs_exchange_server_down_never_blocks)
    NF_TEST_ENTRY(obs_exchange_bad_url_is_reported)
    NF_TEST_ENTRY(obs_exchange_idle_never_connects)
    NF_TEST_ENTRY(obs_exchange_round_trip_blends_the_right_original)
    NF_TEST_ENTRY(obs_exchange_sends_style_and_token)
    NF_TEST_ENTRY(obs_exchange_reconnects_after_server_restart)
)
/* clang-format on */
