/*
 * fuzz-jpeg.c - libFuzzer harness for the JPEG admission check and decode
 * (common/jpeg.h) on TurboJPEG 2.1.5.
 *
 * The input is a frame's payload. The harness does what the server does
 * with it: nf_jpeg_probe() with the server's default limits (3840 x 2160,
 * server/config.h), and only if the probe admits the frame, a decode into
 * an RGB buffer sized from the probe (server/scheduler.c). Properties:
 *
 *   - the probe returns NF_EJPEG or NF_EJPEG_DIMS with a size of 0 x 0, or
 *     0 with a size inside the limits;
 *   - the decode of an admitted frame returns 0 or NF_EJPEG and writes
 *     only inside the buffer (a malloc of exactly w * h * 3 bytes);
 *   - a frame cannot change how the next one is handled: after every input
 *     a known-good 16 x 16 JPEG (encoded at start-up by nf_jpeg_encode_rgb)
 *     must still probe and decode on the same struct nf_jpeg, as the
 *     server's next frame from another session would. With
 *     NF_FUZZ_CANARY=0 in the environment a failure replaces the decoder
 *     instead of aborting, to look for other bugs while a finding of this
 *     kind is open (tests/fuzz/README.md, F1).
 *
 * A frame the probe admits must not cost more memory than its pixels
 * justify. Run with -malloc_limit_mb=256 (and -rss_limit_mb): an
 * allocation that large from one small input is a decompression bomb and
 * libFuzzer reports it as a crash. TurboJPEG is Debian's build, not
 * instrumented: coverage guidance sees only jpeg.c, and AddressSanitizer
 * sees TurboJPEG's bad accesses only through the functions it intercepts
 * (memcpy, memset, ...) and its allocations.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fuzz-check.h"
#include "jpeg.h"

#define MAX_WIDTH  3840
#define MAX_HEIGHT 2160

#define CANARY_SIZE 16

/* One decoder for the whole run, as one server thread keeps one. */
static struct nf_jpeg *jpeg;

/* The known-good frame: its JPEG bytes, written once at start-up. */
static uint8_t canary[4096];
static int canary_len;
/*
 * 1: an input after which the canary fails is a finding (abort). 0
 * (NF_FUZZ_CANARY=0): the decoder is replaced instead, as if the bug were
 * fixed, so that fuzzing can go on past it.
 */
static int canary_aborts = 1;

static void make_canary(void)
{
    uint8_t rgb[CANARY_SIZE * CANARY_SIZE * 3];
    const char *env = getenv("NF_FUZZ_CANARY");

    canary_aborts = !(env != NULL && strcmp(env, "0") == 0);
    for (size_t i = 0; i < sizeof rgb; i++)
        rgb[i] = (uint8_t)(i * 7);
    canary_len = nf_jpeg_encode_rgb(jpeg, rgb, CANARY_SIZE, CANARY_SIZE,
                                    CANARY_SIZE * 3, 90, canary, sizeof canary);
    NF_FUZZ_CHECK(canary_len > 0);
}

/* 1 if the known-good frame probes and decodes on the current decoder. */
static int canary_ok(void)
{
    static uint8_t rgb[CANARY_SIZE * CANARY_SIZE * 3];
    int w = 0, h = 0;

    return nf_jpeg_probe(jpeg, canary, (size_t)canary_len, NULL, &w, &h) == 0 &&
           w == CANARY_SIZE && h == CANARY_SIZE &&
           nf_jpeg_decode_rgb(jpeg, canary, (size_t)canary_len, rgb, w, h,
                              w * 3) == 0;
}

/* After each input: the next frame must not be affected by this one. */
static void check_canary(void)
{
    int next_frame_still_decodes = canary_ok();

    if (next_frame_still_decodes)
        return;
    NF_FUZZ_CHECK(next_frame_still_decodes || !canary_aborts);
    nf_jpeg_free(jpeg);
    NF_FUZZ_CHECK(nf_jpeg_init(&jpeg) == 0);
    NF_FUZZ_CHECK(canary_ok());
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    NF_FUZZ_CHECK(nf_jpeg_init(&jpeg) == 0);
    make_canary();
    return 0;
}

/* What the server does with one frame's payload. */
static void admit_and_decode(const uint8_t *data, size_t size)
{
    const struct nf_jpeg_limits lim = {MAX_WIDTH, MAX_HEIGHT,
                                       (uint64_t)MAX_WIDTH * MAX_HEIGHT};
    int w = -1, h = -1, rc;
    uint8_t *rgb;

    rc = nf_jpeg_probe(jpeg, data, size, &lim, &w, &h);
    if (rc < 0) {
        NF_FUZZ_CHECK(rc == NF_EJPEG || rc == NF_EJPEG_DIMS);
        NF_FUZZ_CHECK(w == 0 && h == 0);
        return;
    }
    NF_FUZZ_CHECK(rc == 0);
    NF_FUZZ_CHECK(w >= 1 && w <= MAX_WIDTH && h >= 1 && h <= MAX_HEIGHT);
    rgb = malloc((size_t)w * (size_t)h * 3);
    NF_FUZZ_CHECK(rgb != NULL);
    rc = nf_jpeg_decode_rgb(jpeg, data, size, rgb, w, h, w * 3);
    NF_FUZZ_CHECK(rc == 0 || rc == NF_EJPEG);
    free(rgb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    admit_and_decode(data, size);
    check_canary();
    return 0;
}
