/*
 * wire.h - nextframe protocol v1: binary frame messages and close codes.
 *
 * Pure C: no allocation, no I/O, no globals. Used by the server, the C
 * clients, the benchmarks and the tests; clients/web/ speaks the same bytes.
 * The full specification is protocol/PROTOCOL.md.
 *
 * A frame travels as ONE binary WebSocket message: a fixed header followed by
 * the payload (a baseline JPEG). All integers are little-endian; the header is
 * read and written with explicit byte loads/stores, never by casting structs.
 *
 * Input frame (client -> server), type 1 FRAME_IN, header_len 40:
 *
 *   off size field
 *    0   4   magic        'N' 'F' 'R' 'M'
 *    4   1   version      1
 *    5   1   type         1 = FRAME_IN, 2 = FRAME_OUT
 *    6   2   header_len   40 for FRAME_IN, 72 for FRAME_OUT
 *    8   4   flags        bit 0 NF_FLAG_RESET: reset the cache before this
 *                         frame; other bits reserved, must be 0
 *   12   4   seq          client's sequence number, echoed in the reply
 *   16   8   capture_us   client capture time in microseconds (client's
 *                         clock, opaque to the server), echoed in the reply
 *   24   2   width        pixels, 1..65535; must equal the JPEG's width
 *   26   2   height       pixels, 1..65535; must equal the JPEG's height
 *   28   1   format       1 = JPEG
 *   29   3   reserved     0
 *   32   4   payload_len  bytes after the header; header_len + payload_len
 *                         must equal the message length exactly
 *   36   4   reserved     0
 *
 * Output frame (server -> client), type 2 FRAME_OUT, header_len 72: the same
 * first 40 bytes (seq and capture_us echoed from the input frame, width and
 * height of the output), then the server's timings and state:
 *
 *   40   4   recv_us      first to last byte of the input message
 *   44   4   queue_us     input received -> inference started
 *   48   4   decode_us    JPEG decode
 *   52   4   predict_us   model forward pass
 *   56   4   encode_us    JPEG encode
 *   60   4   server_us    input received -> reply queued for the socket
 *   64   4   dropped      frames of this session dropped so far (all reasons)
 *   68   4   drift        float32: the session's drift value (0 when unused)
 */
#ifndef NF_WIRE_H
#define NF_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define NF_WIRE_MAGIC0  'N'
#define NF_WIRE_MAGIC1  'F'
#define NF_WIRE_MAGIC2  'R'
#define NF_WIRE_MAGIC3  'M'
#define NF_WIRE_VERSION 1

#define NF_WIRE_FRAME_IN_LEN   40
#define NF_WIRE_FRAME_OUT_LEN  72
#define NF_WIRE_MAX_HEADER_LEN NF_WIRE_FRAME_OUT_LEN

/* The WebSocket subprotocol that selects protocol v1. */
#define NF_WIRE_SUBPROTOCOL "nextframe.v1"

enum nf_msg_type {
    NF_MSG_FRAME_IN = 1,
    NF_MSG_FRAME_OUT = 2,
};

enum nf_frame_format {
    NF_FORMAT_JPEG = 1,
};

#define NF_FLAG_RESET      0x1u
#define NF_FLAG_KNOWN_MASK (NF_FLAG_RESET)

/*
 * One decoded frame header. For FRAME_IN the timing fields are 0 and
 * ignored by the encoder.
 */
struct nf_frame_header {
    uint8_t type;         /* enum nf_msg_type */
    uint32_t flags;       /* NF_FLAG_* */
    uint32_t seq;         /* Echoed by the server. */
    uint64_t capture_us;  /* Client clock; echoed by the server. */
    uint16_t width;       /* Pixels. */
    uint16_t height;      /* Pixels. */
    uint8_t format;       /* enum nf_frame_format */
    uint32_t payload_len; /* Bytes following the header. */
    /* FRAME_OUT only: */
    uint32_t recv_us;
    uint32_t queue_us;
    uint32_t decode_us;
    uint32_t predict_us;
    uint32_t encode_us;
    uint32_t server_us;
    uint32_t dropped;
    float drift;
};

/*
 * Decodes the header at the start of buf (len bytes available).
 * Returns the header length consumed (40 or 72) on success, 0 if len is too
 * short to hold the whole header yet, or a negative NF_EWIRE_* code:
 * NF_EWIRE_MAGIC, _VERSION, _TYPE, _HEADER_LEN (header_len does not match the
 * type), _FORMAT, _DIMS (width or height 0), _RESERVED (reserved bytes or
 * unknown flag bits set). It does not check payload_len against a message
 * length: see nf_wire_check_message(). *h is written only on success (for
 * FRAME_IN its timing fields are set to 0). NF_EINVAL if h is NULL, or buf
 * is NULL with len > 0. Any thread.
 */
int nf_wire_decode_header(const uint8_t *buf, size_t len,
                          struct nf_frame_header *h);

/*
 * Checks a whole message of msg_len bytes whose header was decoded into h
 * (consumed = the value nf_wire_decode_header() returned): returns 0 when
 * consumed + h->payload_len == msg_len, else NF_EWIRE_PAYLOAD_LEN.
 */
int nf_wire_check_message(const struct nf_frame_header *h, size_t consumed,
                          size_t msg_len);

/*
 * Encodes h as a header of its type into buf (cap bytes). Returns the number
 * of bytes written (40 or 72), NF_EINVAL for an unknown type, or
 * NF_ERANGE when cap is too small. Any thread.
 */
int nf_wire_encode_header(const struct nf_frame_header *h, uint8_t *buf,
                          size_t cap);

/*
 * WebSocket close codes, one per way a session can end. The reason text
 * sent with each is nf_wire_close_reason(code). UNSUPPORTED_DATA is not sent
 * by a v1 server (every text message is a control message, every binary
 * message a frame); it is kept reserved. See PROTOCOL.md section 8.
 */
#define NF_CLOSE_MAP(XX)                                                       \
    XX(NORMAL, 1000, "normal closure")                                         \
    XX(GOING_AWAY, 1001, "server going away")                                  \
    XX(UNSUPPORTED_DATA, 1003, "unsupported data")                             \
    XX(POLICY, 1008, "policy violation")                                       \
    XX(TOO_BIG, 1009, "message too big")                                       \
    XX(INTERNAL, 1011, "internal server error")                                \
    XX(TRY_AGAIN, 1013, "server full, try again later")                        \
    XX(BAD_MESSAGE, 4400, "malformed message")                                 \
    XX(BAD_VERSION, 4401, "unsupported protocol version")                      \
    XX(BAD_CONTROL, 4402, "malformed control message")                         \
    XX(UNAUTHORIZED, 4403, "stream token missing or wrong")                    \
    XX(UNSUPPORTED_FORMAT, 4415, "unsupported payload format")                 \
    XX(BAD_JPEG, 4422, "corrupt or unsupported JPEG")                          \
    XX(DIMS_TOO_BIG, 4413, "frame dimensions exceed the server's limits")      \
    XX(IDLE, 4408, "idle timeout")

enum nf_close_code {
#define NF_CLOSE_ENUM(name, val, msg) NF_CLOSE_##name = (val),
    NF_CLOSE_MAP(NF_CLOSE_ENUM)
#undef NF_CLOSE_ENUM
};

/* Returns the documented reason text for a close code ("" if unknown). */
const char *nf_wire_close_reason(int code);

/*
 * Maps an NF_E* error met while handling a client's message to the close code
 * that ends its session (for example NF_EWIRE_MAGIC -> NF_CLOSE_BAD_MESSAGE,
 * NF_EJPEG_DIMS -> NF_CLOSE_DIMS_TOO_BIG, NF_ETOO_BIG -> NF_CLOSE_TOO_BIG).
 * Unknown errors map to NF_CLOSE_INTERNAL.
 */
int nf_wire_close_code_for(int err);

#endif /* NF_WIRE_H */
