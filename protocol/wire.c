/*
 * wire.c - encode and decode of protocol v1 binary frame headers.
 *
 * The byte layout is documented in wire.h and PROTOCOL.md. Everything here
 * is pure: no allocation, no I/O, no state but const tables, so the decoder
 * can be fuzzed alone. Bytes are read and written through the explicit
 * little-endian helpers of le.h, never through struct casts.
 */
#include "wire.h"

#include <string.h>

#include "error.h"
#include "le.h"

/* drift travels as the bit pattern of an IEEE 754 binary32. */
_Static_assert(sizeof(float) == sizeof(uint32_t), "float must be 32 bits");

/* Byte offsets of the header fields (see the table in wire.h). */
enum {
    OFF_MAGIC = 0,
    OFF_VERSION = 4,
    OFF_TYPE = 5,
    OFF_HEADER_LEN = 6,
    OFF_FLAGS = 8,
    OFF_SEQ = 12,
    OFF_CAPTURE_US = 16,
    OFF_WIDTH = 24,
    OFF_HEIGHT = 26,
    OFF_FORMAT = 28,
    OFF_RESERVED0 = 29, /* 3 bytes */
    OFF_PAYLOAD_LEN = 32,
    OFF_RESERVED1 = 36, /* 4 bytes */
    OFF_RECV_US = 40,
    OFF_QUEUE_US = 44,
    OFF_DECODE_US = 48,
    OFF_PREDICT_US = 52,
    OFF_ENCODE_US = 56,
    OFF_SERVER_US = 60,
    OFF_DROPPED = 64,
    OFF_DRIFT = 68,
};

static const uint8_t wire_magic[4] = {NF_WIRE_MAGIC0, NF_WIRE_MAGIC1,
                                      NF_WIRE_MAGIC2, NF_WIRE_MAGIC3};

/* Returns the header length of a message type, or 0 for an unknown type. */
static size_t header_len_for(unsigned type)
{
    switch (type) {
    case NF_MSG_FRAME_IN:
        return NF_WIRE_FRAME_IN_LEN;
    case NF_MSG_FRAME_OUT:
        return NF_WIRE_FRAME_OUT_LEN;
    default:
        return 0;
    }
}

static int is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0)
            return 0;
    }
    return 1;
}

/*
 * Checks the fixed prefix (magic, version, type, header_len) as far as the
 * len available bytes allow. Returns the header length the type requires,
 * 0 when more bytes are needed to tell, or a negative NF_EWIRE_* code. A bad
 * byte is reported as soon as it is seen, so that a peer speaking another
 * protocol is refused after its first few bytes.
 */
static int check_prefix(const uint8_t *buf, size_t len)
{
    size_t n = len < sizeof wire_magic ? len : sizeof wire_magic;
    size_t need;

    if (memcmp(buf + OFF_MAGIC, wire_magic, n) != 0)
        return NF_EWIRE_MAGIC;
    if (len <= OFF_VERSION)
        return 0;
    if (buf[OFF_VERSION] != NF_WIRE_VERSION)
        return NF_EWIRE_VERSION;
    if (len <= OFF_TYPE)
        return 0;
    need = header_len_for(buf[OFF_TYPE]);
    if (need == 0)
        return NF_EWIRE_TYPE;
    if (len < OFF_HEADER_LEN + 2)
        return 0;
    if (nf__le_load16(buf + OFF_HEADER_LEN) != need)
        return NF_EWIRE_HEADER_LEN;
    return (int)need;
}

/* Reads the FRAME_OUT timing block (bytes 40..71) into h. */
static void decode_timings(const uint8_t *buf, struct nf_frame_header *h)
{
    uint32_t bits = nf__le_load32(buf + OFF_DRIFT);

    h->recv_us = nf__le_load32(buf + OFF_RECV_US);
    h->queue_us = nf__le_load32(buf + OFF_QUEUE_US);
    h->decode_us = nf__le_load32(buf + OFF_DECODE_US);
    h->predict_us = nf__le_load32(buf + OFF_PREDICT_US);
    h->encode_us = nf__le_load32(buf + OFF_ENCODE_US);
    h->server_us = nf__le_load32(buf + OFF_SERVER_US);
    h->dropped = nf__le_load32(buf + OFF_DROPPED);
    memcpy(&h->drift, &bits, sizeof h->drift);
}

int nf_wire_decode_header(const uint8_t *buf, size_t len,
                          struct nf_frame_header *h)
{
    struct nf_frame_header out;
    int need;

    if (h == NULL || (buf == NULL && len > 0))
        return NF_EINVAL;
    if (len == 0)
        return 0;
    need = check_prefix(buf, len);
    if (need <= 0 || len < (size_t)need)
        return need < 0 ? need : 0;

    memset(&out, 0, sizeof out);
    out.type = buf[OFF_TYPE];
    out.flags = nf__le_load32(buf + OFF_FLAGS);
    out.seq = nf__le_load32(buf + OFF_SEQ);
    out.capture_us = nf__le_load64(buf + OFF_CAPTURE_US);
    out.width = nf__le_load16(buf + OFF_WIDTH);
    out.height = nf__le_load16(buf + OFF_HEIGHT);
    out.format = buf[OFF_FORMAT];
    out.payload_len = nf__le_load32(buf + OFF_PAYLOAD_LEN);

    /*
     * The format is checked before the reserved bits so that a client
     * sending a newer payload format learns that (4415) rather than only
     * that its message is malformed.
     */
    if (out.format != NF_FORMAT_JPEG)
        return NF_EWIRE_FORMAT;
    if ((out.flags & ~(uint32_t)NF_FLAG_KNOWN_MASK) != 0 ||
        !is_zero(buf + OFF_RESERVED0, 3) || !is_zero(buf + OFF_RESERVED1, 4))
        return NF_EWIRE_RESERVED;
    if (out.width == 0 || out.height == 0)
        return NF_EWIRE_DIMS;
    if (out.type == NF_MSG_FRAME_OUT)
        decode_timings(buf, &out);

    *h = out;
    return need;
}

int nf_wire_check_message(const struct nf_frame_header *h, size_t consumed,
                          size_t msg_len)
{
    /* Subtract rather than add: consumed + payload_len may overflow. */
    if (h == NULL || msg_len < consumed ||
        msg_len - consumed != (size_t)h->payload_len)
        return NF_EWIRE_PAYLOAD_LEN;
    return 0;
}

/* Writes the FRAME_OUT timing block (bytes 40..71) of h into buf. */
static void encode_timings(const struct nf_frame_header *h, uint8_t *buf)
{
    uint32_t bits;

    memcpy(&bits, &h->drift, sizeof bits);
    nf__le_store32(buf + OFF_RECV_US, h->recv_us);
    nf__le_store32(buf + OFF_QUEUE_US, h->queue_us);
    nf__le_store32(buf + OFF_DECODE_US, h->decode_us);
    nf__le_store32(buf + OFF_PREDICT_US, h->predict_us);
    nf__le_store32(buf + OFF_ENCODE_US, h->encode_us);
    nf__le_store32(buf + OFF_SERVER_US, h->server_us);
    nf__le_store32(buf + OFF_DROPPED, h->dropped);
    nf__le_store32(buf + OFF_DRIFT, bits);
}

int nf_wire_encode_header(const struct nf_frame_header *h, uint8_t *buf,
                          size_t cap)
{
    size_t n;

    if (h == NULL)
        return NF_EINVAL;
    n = header_len_for(h->type);
    if (n == 0)
        return NF_EINVAL;
    if (cap < n)
        return NF_ERANGE;
    if (buf == NULL)
        return NF_EINVAL;

    /* Zeroing first leaves every reserved byte 0. */
    memset(buf, 0, n);
    memcpy(buf + OFF_MAGIC, wire_magic, sizeof wire_magic);
    buf[OFF_VERSION] = NF_WIRE_VERSION;
    buf[OFF_TYPE] = h->type;
    nf__le_store16(buf + OFF_HEADER_LEN, (uint16_t)n);
    nf__le_store32(buf + OFF_FLAGS, h->flags);
    nf__le_store32(buf + OFF_SEQ, h->seq);
    nf__le_store64(buf + OFF_CAPTURE_US, h->capture_us);
    nf__le_store16(buf + OFF_WIDTH, h->width);
    nf__le_store16(buf + OFF_HEIGHT, h->height);
    buf[OFF_FORMAT] = h->format;
    nf__le_store32(buf + OFF_PAYLOAD_LEN, h->payload_len);
    if (h->type == NF_MSG_FRAME_OUT)
        encode_timings(h, buf);
    return (int)n;
}

const char *nf_wire_close_reason(int code)
{
    switch (code) {
#define NF_CLOSE_REASON(name, val, msg)                                        \
    case NF_CLOSE_##name:                                                      \
        return msg;
        NF_CLOSE_MAP(NF_CLOSE_REASON)
#undef NF_CLOSE_REASON
    default:
        return "";
    }
}

int nf_wire_close_code_for(int err)
{
    switch (err) {
    case NF_EWIRE_MAGIC:
    case NF_EWIRE_TYPE:
    case NF_EWIRE_HEADER_LEN:
    case NF_EWIRE_PAYLOAD_LEN:
    case NF_EWIRE_DIMS:
    case NF_EWIRE_RESERVED:
        return NF_CLOSE_BAD_MESSAGE;
    case NF_EWIRE_VERSION:
    case NF_ECTRL_VERSION:
        return NF_CLOSE_BAD_VERSION;
    case NF_EWIRE_FORMAT:
        return NF_CLOSE_UNSUPPORTED_FORMAT;
    case NF_ECTRL_JSON:
    case NF_ECTRL_TYPE:
    case NF_ECTRL_FIELD:
        return NF_CLOSE_BAD_CONTROL;
    case NF_ETOO_BIG:
        return NF_CLOSE_TOO_BIG;
    case NF_EJPEG:
        return NF_CLOSE_BAD_JPEG;
    case NF_EJPEG_DIMS:
        return NF_CLOSE_DIMS_TOO_BIG;
    case NF_EFULL:
        return NF_CLOSE_TRY_AGAIN;
    case NF_ECLOSED:
        return NF_CLOSE_NORMAL;
    case NF_EPOLICY:
        return NF_CLOSE_POLICY;
    case NF_EUNAUTHORIZED:
        return NF_CLOSE_UNAUTHORIZED;
    default:
        return NF_CLOSE_INTERNAL;
    }
}
