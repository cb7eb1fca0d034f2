/*
 * y4m.c - YUV4MPEG2 reader and writer (8-bit 4:2:0 only); see y4m.h.
 *
 * Header and frame lines are read byte by byte with getc() so the reader
 * never consumes pixel data that follows a line, which keeps it correct on
 * pipes. Planes are read with one fread() per frame.
 */
#include "y4m.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "i420.h"

#define LINE_MAX_BYTES 4096 /* Longest header or FRAME line accepted. */

static const char y4m_magic[] = "YUV4MPEG2";

struct nf_y4m_reader {
    FILE *f; /* Borrowed. */
    struct nf_y4m_info info;
    long data_off;  /* Offset of the first FRAME, -1 on a pipe. */
    uint8_t *frame; /* Owned; nf_i420_size() bytes. */
    size_t frame_size;
    uint64_t frames; /* Frames read. */
    char line[LINE_MAX_BYTES];
    char err[256];
};

static void set_err(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;

    if (dst == NULL || cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

/*
 * Reads one line without its '\n' into buf (cap bytes). Returns its length,
 * -1 at end of file before any byte, -2 when the line is too long or the
 * file ends inside it, -3 on a read error.
 */
static int read_line(FILE *f, char *buf, size_t cap)
{
    size_t n = 0;
    int c;

    while ((c = getc(f)) != EOF) {
        if (c == '\n') {
            buf[n] = '\0';
            return (int)n;
        }
        if (n + 1 >= cap)
            return -2;
        buf[n++] = (char)c;
    }
    if (ferror(f))
        return -3;
    return n == 0 ? -1 : -2;
}

/* Parses a positive decimal int in [1, max] filling the whole of s. */
static int parse_pos_int(const char *s, long max, int *out)
{
    char *end;
    long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* Parses "num:den" (both >= 0; 0:0 means unknown). */
static int parse_ratio(const char *s, int *num, int *den)
{
    char *end;
    long n, d;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    n = strtol(s, &end, 10);
    if (errno != 0 || *end != ':' || n < 0 || n > INT_MAX)
        return -1;
    s = end + 1;
    if (*s < '0' || *s > '9')
        return -1;
    d = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || d < 0 || d > INT_MAX)
        return -1;
    if ((n == 0) != (d == 0))
        return -1;
    *num = (int)n;
    *den = (int)d;
    return 0;
}

static int chroma_supported(const char *c)
{
    static const char *const ok[] = {"420jpeg", "420", "420paldv", "420mpeg2"};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (strcmp(c, ok[i]) == 0)
            return 1;
    }
    return 0;
}

/* Applies one header tag to info. Returns 0 or a negative NF_E* code. */
static int parse_tag(char *tag, struct nf_y4m_info *info, char *err,
                     size_t errlen)
{
    char *v = tag + 1;

    switch (tag[0]) {
    case 'W':
        if (parse_pos_int(v, NF_Y4M_MAX_DIM, &info->width) < 0)
            goto bad;
        return 0;
    case 'H':
        if (parse_pos_int(v, NF_Y4M_MAX_DIM, &info->height) < 0)
            goto bad;
        return 0;
    case 'F':
        if (parse_ratio(v, &info->fps_num, &info->fps_den) < 0)
            goto bad;
        return 0;
    case 'C':
        if (strlen(v) >= sizeof(info->chroma) || !chroma_supported(v)) {
            set_err(err, errlen,
                    "y4m: unsupported chroma C%.20s (only 8-bit 4:2:0: "
                    "C420jpeg, C420, C420paldv, C420mpeg2; convert with "
                    "ffmpeg -pix_fmt yuv420p)",
                    v);
            return NF_EUNSUPPORTED;
        }
        strcpy(info->chroma, v);
        return 0;
    case 'X':
        if (strcmp(v, "COLORRANGE=FULL") == 0)
            info->full_range = 1;
        else if (strcmp(v, "COLORRANGE=LIMITED") == 0)
            info->full_range = 0;
        return 0;
    default:
        /* I (interlacing), A (aspect): not needed here. */
        return 0;
    }
bad:
    set_err(err, errlen, "y4m: bad header tag '%.40s'", tag);
    return NF_EINVAL;
}

/* Parses the stream header line (without "\n") into info. */
static int parse_header(char *line, struct nf_y4m_info *info, char *err,
                        size_t errlen)
{
    size_t mlen = sizeof(y4m_magic) - 1;
    char *save = NULL, *tag;

    if (strncmp(line, y4m_magic, mlen) != 0 ||
        (line[mlen] != ' ' && line[mlen] != '\0')) {
        set_err(err, errlen, "y4m: not a YUV4MPEG2 stream (no magic)");
        return NF_EINVAL;
    }
    memset(info, 0, sizeof(*info));
    strcpy(info->chroma, "420");
    for (tag = strtok_r(line + mlen, " ", &save); tag != NULL;
         tag = strtok_r(NULL, " ", &save)) {
        int rc = parse_tag(tag, info, err, errlen);

        if (rc < 0)
            return rc;
    }
    if (info->width == 0 || info->height == 0) {
        set_err(err, errlen, "y4m: header lacks W or H");
        return NF_EINVAL;
    }
    return 0;
}

int nf_y4m_reader_init(struct nf_y4m_reader **out, FILE *f, char *err,
                       size_t errlen)
{
    struct nf_y4m_reader *r;
    int n, rc;

    *out = NULL;
    set_err(err, errlen, "%s", "");
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NF_ENOMEM;
    r->f = f;
    n = read_line(f, r->line, sizeof(r->line));
    if (n < 0) {
        rc = n == -1 || n == -3 ? NF_EIO : NF_EINVAL;
        set_err(err, errlen, "%s",
                n == -1   ? "y4m: empty input"
                : n == -3 ? "y4m: read error"
                          : "y4m: not a YUV4MPEG2 stream (no header line)");
        goto fail;
    }
    rc = parse_header(r->line, &r->info, err, errlen);
    if (rc < 0)
        goto fail;
    r->frame_size = nf_i420_size(r->info.width, r->info.height);
    r->frame = malloc(r->frame_size);
    if (r->frame == NULL) {
        rc = NF_ENOMEM;
        set_err(err, errlen, "y4m: out of memory for a %dx%d frame",
                r->info.width, r->info.height);
        goto fail;
    }
    r->data_off = ftell(f);
    *out = r;
    return 0;

fail:
    nf_y4m_reader_free(r);
    return rc;
}

void nf_y4m_reader_free(struct nf_y4m_reader *r)
{
    if (r == NULL)
        return;
    free(r->frame);
    free(r);
}

const struct nf_y4m_info *nf_y4m_reader_info(const struct nf_y4m_reader *r)
{
    return &r->info;
}

uint64_t nf_y4m_reader_frames(const struct nf_y4m_reader *r)
{
    return r->frames;
}

const char *nf_y4m_reader_error(const struct nf_y4m_reader *r)
{
    return r->err;
}

int nf_y4m_reader_read(struct nf_y4m_reader *r, const uint8_t *planes[3])
{
    uint8_t *p[3];
    size_t got;
    int n;

    r->err[0] = '\0';
    n = read_line(r->f, r->line, sizeof(r->line));
    if (n == -1)
        return 0;
    if (n == -3 || n == -2) {
        set_err(r->err, sizeof(r->err), "y4m: %s before frame %llu",
                n == -3 ? "read error" : "truncated or overlong FRAME line",
                (unsigned long long)r->frames);
        return n == -3 ? NF_EIO : NF_EINVAL;
    }
    if (strncmp(r->line, "FRAME", 5) != 0 ||
        (r->line[5] != ' ' && r->line[5] != '\0')) {
        set_err(r->err, sizeof(r->err), "y4m: frame %llu: no FRAME marker",
                (unsigned long long)r->frames);
        return NF_EINVAL;
    }
    got = fread(r->frame, 1, r->frame_size, r->f);
    if (got != r->frame_size) {
        set_err(r->err, sizeof(r->err),
                "y4m: truncated frame %llu: got %zu of %zu bytes",
                (unsigned long long)r->frames, got, r->frame_size);
        return NF_EIO;
    }
    nf_i420_planes(r->frame, r->info.width, r->info.height, p);
    planes[0] = p[0];
    planes[1] = p[1];
    planes[2] = p[2];
    r->frames++;
    return 1;
}

int nf_y4m_reader_rewind(struct nf_y4m_reader *r)
{
    if (r->data_off < 0 || fseek(r->f, r->data_off, SEEK_SET) != 0) {
        set_err(r->err, sizeof(r->err), "y4m: input cannot seek (a pipe?)");
        return NF_EUNSUPPORTED;
    }
    clearerr(r->f);
    return 0;
}

int nf_y4m_writer_init(struct nf_y4m_writer *w, FILE *f, int width, int height,
                       int fps_num, int fps_den, int full_range)
{
    memset(w, 0, sizeof(*w));
    if (f == NULL || width < 1 || height < 1 || width > NF_Y4M_MAX_DIM ||
        height > NF_Y4M_MAX_DIM || fps_num < 0 || fps_den < 0)
        return NF_EINVAL;
    if (fps_num == 0 || fps_den == 0) {
        fps_num = 25;
        fps_den = 1;
    }
    w->f = f;
    w->width = width;
    w->height = height;
    if (fprintf(f, "%s W%d H%d F%d:%d Ip A1:1 C420jpeg XCOLORRANGE=%s\n",
                y4m_magic, width, height, fps_num, fps_den,
                full_range ? "FULL" : "LIMITED") < 0)
        return NF_EIO;
    return 0;
}

int nf_y4m_writer_write(struct nf_y4m_writer *w, const uint8_t *const planes[3])
{
    size_t luma = (size_t)w->width * (size_t)w->height;
    size_t chroma = (size_t)nf_i420_chroma_dim(w->width) *
                    (size_t)nf_i420_chroma_dim(w->height);

    if (fputs("FRAME\n", w->f) == EOF)
        return NF_EIO;
    if (fwrite(planes[0], 1, luma, w->f) != luma ||
        fwrite(planes[1], 1, chroma, w->f) != chroma ||
        fwrite(planes[2], 1, chroma, w->f) != chroma)
        return NF_EIO;
    w->frames++;
    return 0;
}
