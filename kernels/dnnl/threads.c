/*
 * threads.c - the adaptive thread plan: how many threads the next frame
 * gets (README.md, "Thread plan", has the measurements behind it).
 *
 * An OpenMP team is only as fast as its slowest thread: every oneDNN
 * primitive and every kernel of ours ends in a barrier, so when another
 * process takes one of the team's cores, frames get 10-40x slower instead
 * of 2x. The plan therefore runs either one thread or the whole team,
 * whichever has been faster recently, per padded pixel (so that frame
 * sizes can change freely):
 *
 * - Every frame updates the smoothed time of the mode it ran in; a time
 *   far off the estimate (a collapse starting or ending) replaces it when
 *   the next frame in that mode confirms it (or at once for a try of the
 *   other mode, whose estimate may be old). A lone far-off frame (the VM
 *   pausing a core for a moment) is left out: taken at face value it
 *   switched modes for PROBE_FIRST frames, each about twice as slow.
 * - When the current mode becomes slower than the other's estimate, the
 *   next frames try the other one; besides, the other mode is re-tried
 *   after an interval that doubles (up to PROBE_MAX frames) while the
 *   tries confirm the choice. A try lasts TRY_FRAMES frames and counts
 *   its fastest: the team's first frame after a stretch on one thread
 *   wakes threads that slept (22-53 ms against 11), and judged by that
 *   frame alone the team lost its try and the plan stayed on one thread,
 *   twice as slow, for the doubled interval.
 * - On Linux, the team is only tried while /proc/stat shows enough idle
 *   CPU for its extra threads, so a core kept busy by another process
 *   costs no slow trial frames at all.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnnl-impl.h"

#define PROBE_START 2     /* Frames before the very first try. */
#define PROBE_FIRST 8     /* Frames before a try after a switch. */
#define PROBE_MAX   512   /* Longest interval between tries. */
#define TRY_FRAMES  2     /* Frames of a try, judged by the fastest. */
#define SAMPLE_MS   200.0 /* Least time between two /proc/stat samples. */

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

void nf__dnnl_threads_init(struct nf_dnnl_threads *t, int team, int adaptive)
{
    memset(t, 0, sizeof *t);
    t->team = team < 1 ? 1 : team;
    t->adaptive = adaptive && t->team > 1;
    t->mode = t->team > 1;
    t->interval = PROBE_FIRST;
    t->until_probe = PROBE_START;
    t->idle_cores = -1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    t->cpus = cpus > 0 ? (int)cpus : 1;
}

/*
 * Idle CPUs (in cores) averaged since the previous sample, from the first
 * line of /proc/stat, refreshed at most every SAMPLE_MS; -1 when unknown.
 */
static double idle_cores(struct nf_dnnl_threads *t)
{
#ifdef __linux__
    if (t->cpus == 0) /* Sampling off (tests). */
        return -1;
    double now = now_ms();
    if (now - t->sampled_ms < SAMPLE_MS)
        return t->idle_cores;
    /* read(2) into the stack: no stdio buffer allocated per sample. */
    char buf[256];
    unsigned long long v[8] = {0}, total = 0;
    int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    ssize_t len = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[len > 0 ? len : 0] = '\0';
    if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
               &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 5)
        return -1;
    for (int i = 0; i < 8; i++)
        total += v[i];
    unsigned long long idle = v[3] + v[4];
    if (t->sampled_ms > 0 && total > t->total) {
        /* Jiffies of all CPUs: idle share times the number of CPUs. */
        double share = (double)(idle - t->idle) / (double)(total - t->total);
        t->idle_cores = share * (double)t->cpus;
    }
    t->sampled_ms = now;
    t->total = total;
    t->idle = idle;
    return t->idle_cores;
#else
    (void)t;
    return -1;
#endif
}

int nf__dnnl_threads_pick(struct nf_dnnl_threads *t)
{
    if (!t->adaptive)
        return t->mode;
    if (t->until_probe > 0 && t->mode == 0 && t->busy) {
        /* The cores were busy: try the team as soon as they are not. */
        double idle = idle_cores(t);
        if (idle >= (t->team - 1) * 0.8) {
            t->busy = 0;
            t->until_probe = 0;
            t->interval = PROBE_FIRST;
        }
    }
    if (t->until_probe > 0) {
        t->until_probe--;
        return t->mode;
    }
    /* A try of the team needs idle cores for its extra threads. */
    double idle = t->mode == 0 ? idle_cores(t) : -1;
    if (idle >= 0 && idle < (t->team - 1) * 0.8) {
        t->busy = 1;
        t->tries = 0; /* A try cut short starts over. */
        t->until_probe = PROBE_FIRST;
        return 0;
    }
    return !t->mode;
}

void nf__dnnl_threads_account(struct nf_dnnl_threads *t, int mode, double ms,
                              double pixels)
{
    if (!t->adaptive || pixels <= 0)
        return;
    double v = ms / pixels * 1e6, *m = &t->ns_px[mode];
    int far = *m > 0 && (v > 2 * *m || v < *m / 2);
    if (far && mode == t->mode && !t->far) {
        t->far = 1; /* Wait for the next frame to confirm it. */
        return;
    }
    if (mode != t->mode) {
        /* A try: keep its fastest frame until its last. */
        t->try_best = t->tries == 0 || v < t->try_best ? v : t->try_best;
        if (++t->tries < TRY_FRAMES) {
            t->until_probe = 0;
            return;
        }
        v = t->try_best;
        t->tries = 0;
    }
    t->far = 0;
    if (*m == 0 || far || mode != t->mode) /* A try's estimate is new. */
        *m = v;
    else
        *m = 0.8 * *m + 0.2 * v;
    double other = t->ns_px[!mode];
    if (mode != t->mode) {
        /* A try: switch if clearly faster, else wait longer next time. */
        if (*m < 0.9 * t->ns_px[t->mode]) {
            t->mode = mode;
            t->interval = PROBE_FIRST;
        } else if (t->interval < PROBE_MAX) {
            t->interval *= 2;
        }
        t->until_probe = t->interval;
    } else if (other > 0 && *m > 1.2 * other) {
        t->until_probe = 0; /* Got slower than the other mode: try it. */
    }
}
