/*
 * y4m.h - YUV4MPEG2 (.y4m) reader and writer for 8-bit 4:2:0 video.
 *
 * The format, as ffmpeg and mjpegtools write it:
 *
 *   "YUV4MPEG2" { " " TAG } "\n"           stream header, one line
 *   { "FRAME" { " " TAG } "\n" PLANES }     frames, until end of file
 *
 * Header tags: W<width> H<height> F<num>:<den> (frame rate) I<p|t|b|m>
 * (interlacing) A<num>:<den> (pixel aspect) C<chroma> X<anything>; of the
 * X tags only ffmpeg's XCOLORRANGE=FULL|LIMITED is read. PLANES is
 * one I420 image (see i420.h): Y, then U and V of ceil(w/2) x ceil(h/2).
 * Accepted chroma tags: C420jpeg, C420, C420paldv, C420mpeg2, or none (which
 * means 4:2:0). They differ only in chroma siting, which this reader ignores.
 * Anything else (C422, C444, C420p10, Cmono, ...) is refused with a message
 * saying so.
 *
 * Works on any FILE*, stdin included (ffmpeg -f yuv4mpegpipe - | ...). The
 * reader allocates its frame buffer once, in nf_y4m_reader_init(); reading
 * frames allocates nothing. The writer allocates nothing at all.
 */
#ifndef NF_Y4M_H
#define NF_Y4M_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NF_Y4M_MAX_DIM 65535 /* The wire format's limit. */

/* What the stream header says. */
struct nf_y4m_info {
    int width;
    int height;
    int fps_num;     /* Frame rate numerator; 0 when the header has none. */
    int fps_den;     /* Frame rate denominator; 0 when the header has none. */
    char chroma[16]; /* The C tag without the 'C', "420" when absent. */
    int full_range;  /* 1 for XCOLORRANGE=FULL; else limited (the y4m
                        default, and what ffmpeg's yuv420p means). */
};

struct nf_y4m_reader;

/*
 * Reads the stream header from f (not closed by the reader) and allocates
 * the frame buffer. Returns 0 with *out set, or NF_EINVAL (not a y4m
 * stream, malformed header), NF_EUNSUPPORTED (chroma other than 4:2:0 8-bit),
 * NF_EIO (read error, empty input), NF_ENOMEM. On failure *out is NULL and,
 * when err is not NULL, err (errlen bytes) holds a one-line message such as
 * "y4m: unsupported chroma C422 (only 8-bit 4:2:0 ...)". One thread at a
 * time per reader.
 */
int nf_y4m_reader_init(struct nf_y4m_reader **out, FILE *f, char *err,
                       size_t errlen);

/* Frees r (NULL is fine); does not close its FILE. */
void nf_y4m_reader_free(struct nf_y4m_reader *r);

/* The stream header of r. */
const struct nf_y4m_info *nf_y4m_reader_info(const struct nf_y4m_reader *r);

/*
 * Reads the next frame. Returns 1 with planes[0..2] pointing at its Y, U
 * and V planes (owned by r, valid until the next call), 0 at a clean end of
 * stream, or NF_EINVAL (bad frame marker) / NF_EIO (read error, truncated
 * frame); nf_y4m_reader_error() then says what went wrong.
 */
int nf_y4m_reader_read(struct nf_y4m_reader *r, const uint8_t *planes[3]);

/*
 * Seeks back to the first frame (for looping a file). Returns 0, or
 * NF_EUNSUPPORTED when the input cannot seek (a pipe).
 */
int nf_y4m_reader_rewind(struct nf_y4m_reader *r);

/* Frames read so far (since the last rewind too: it keeps counting). */
uint64_t nf_y4m_reader_frames(const struct nf_y4m_reader *r);

/* The message of the last error, "" if none. */
const char *nf_y4m_reader_error(const struct nf_y4m_reader *r);

/* A writer: plain state, no allocation. All fields owned by its user. */
struct nf_y4m_writer {
    FILE *f; /* Borrowed; not closed by the writer. */
    int width;
    int height;
    uint64_t frames; /* Frames written. */
};

/*
 * Writes a C420jpeg stream header for width x height at fps_num/fps_den
 * frames per second (both 0: 25:1) to f, tagged XCOLORRANGE=FULL or
 * XCOLORRANGE=LIMITED by full_range. Returns 0, NF_EINVAL or NF_EIO.
 */
int nf_y4m_writer_init(struct nf_y4m_writer *w, FILE *f, int width, int height,
                       int fps_num, int fps_den, int full_range);

/* Writes one frame of tightly packed I420 planes. Returns 0 or NF_EIO. */
int nf_y4m_writer_write(struct nf_y4m_writer *w,
                        const uint8_t *const planes[3]);

#endif /* NF_Y4M_H */
