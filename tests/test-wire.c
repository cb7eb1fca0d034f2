/*
 * test-wire.c - unit tests of the binary frame header (protocol/wire.c).
 *
 * The round trips are checked against hand-written byte images of the
 * layout in wire.h, not only against the decoder, so that a mistake made
 * the same way in both directions still fails. Build with
 * -fsanitize=address to check that no decode reads past len.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "nf-test.h"
#include "wire.h"

/* A FRAME_IN header with every field set to a distinctive value. */
static const uint8_t golden_in[NF_WIRE_FRAME_IN_LEN] = {
    'N',  'F',  'R',  'M',  /*  0 magic */
    1,                      /*  4 version */
    1,                      /*  5 type FRAME_IN */
    40,   0,                /*  6 header_len */
    0x01, 0x00, 0x00, 0x00, /*  8 flags: RESET */
    0x78, 0x56, 0x34, 0x12, /* 12 seq 0x12345678 */
    0xef, 0xcd, 0xab, 0x89, /* 16 capture_us 0x0123456789abcdef */
    0x67, 0x45, 0x23, 0x01, /*    */
    0x80, 0x02,             /* 24 width 640 */
    0xe0, 0x01,             /* 26 height 480 */
    1,                      /* 28 format JPEG */
    0,    0,    0,          /* 29 reserved */
    0x10, 0x27, 0x00, 0x00, /* 32 payload_len 10000 */
    0,    0,    0,    0,    /* 36 reserved */
};

/* The timing block of a FRAME_OUT header (bytes 40..71); drift is -1.5f. */
static const uint8_t golden_out_tail[32] = {
    0x01, 0x00, 0x00, 0x00, /* 40 recv_us 1 */
    0x02, 0x01, 0x00, 0x00, /* 44 queue_us 0x102 */
    0x03, 0x02, 0x01, 0x00, /* 48 decode_us 0x10203 */
    0x04, 0x03, 0x02, 0x01, /* 52 predict_us 0x1020304 */
    0xff, 0xff, 0xff, 0xff, /* 56 encode_us 0xffffffff */
    0x06, 0x00, 0x00, 0x80, /* 60 server_us 0x80000006 */
    0x07, 0x00, 0x00, 0x00, /* 64 dropped 7 */
    0x00, 0x00, 0xc0, 0xbf, /* 68 drift -1.5f (0xbfc00000) */
};

static struct nf_frame_header golden_in_header(void)
{
    struct nf_frame_header h;

    memset(&h, 0, sizeof h);
    h.type = NF_MSG_FRAME_IN;
    h.flags = NF_FLAG_RESET;
    h.seq = 0x12345678u;
    h.capture_us = 0x0123456789abcdefull;
    h.width = 640;
    h.height = 480;
    h.format = NF_FORMAT_JPEG;
    h.payload_len = 10000;
    return h;
}

static struct nf_frame_header golden_out_header(void)
{
    struct nf_frame_header h = golden_in_header();

    h.type = NF_MSG_FRAME_OUT;
    h.recv_us = 1;
    h.queue_us = 0x102;
    h.decode_us = 0x10203;
    h.predict_us = 0x1020304;
    h.encode_us = 0xffffffffu;
    h.server_us = 0x80000006u;
    h.dropped = 7;
    h.drift = -1.5f;
    return h;
}

/* Builds the golden FRAME_OUT image: FRAME_IN's bytes with type 2, len 72. */
static void golden_out(uint8_t buf[NF_WIRE_FRAME_OUT_LEN])
{
    memcpy(buf, golden_in, sizeof golden_in);
    memcpy(buf + 40, golden_out_tail, sizeof golden_out_tail);
    buf[5] = NF_MSG_FRAME_OUT;
    buf[6] = 72;
}

static int headers_equal(const struct nf_frame_header *a,
                         const struct nf_frame_header *b)
{
    return a->type == b->type && a->flags == b->flags && a->seq == b->seq &&
           a->capture_us == b->capture_us && a->width == b->width &&
           a->height == b->height && a->format == b->format &&
           a->payload_len == b->payload_len && a->recv_us == b->recv_us &&
           a->queue_us == b->queue_us && a->decode_us == b->decode_us &&
           a->predict_us == b->predict_us && a->encode_us == b->encode_us &&
           a->server_us == b->server_us && a->dropped == b->dropped &&
           memcmp(&a->drift, &b->drift, sizeof a->drift) == 0;
}

/* Decodes buf from an exact-size heap copy, so ASan sees any over-read. */
static int decode_copy(const uint8_t *buf, size_t len,
                       struct nf_frame_header *h)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    int rc;

    if (copy == NULL)
        abort();
    if (len > 0)
        memcpy(copy, buf, len);
    rc = nf_wire_decode_header(copy, len, h);
    free(copy);
    return rc;
}

NF_TEST(wire_frame_in_encodes_golden_bytes)
{
    struct nf_frame_header h = golden_in_header();
    uint8_t buf[NF_WIRE_MAX_HEADER_LEN + 8];

    /* Timing fields of a FRAME_IN are ignored by the encoder. */
    h.recv_us = 99;
    h.drift = 3.0f;
    memset(buf, 0xa5, sizeof buf);
    NF_CHECK_INT_EQ(nf_wire_encode_header(&h, buf, sizeof buf), 40);
    NF_CHECK(memcmp(buf, golden_in, sizeof golden_in) == 0);
    NF_CHECK_INT_EQ(buf[40], 0xa5);
}

NF_TEST(wire_frame_in_round_trip)
{
    struct nf_frame_header want = golden_in_header(), got;
    uint8_t buf[NF_WIRE_FRAME_IN_LEN];

    memset(&got, 0x5a, sizeof got);
    NF_CHECK_INT_EQ(nf_wire_decode_header(golden_in, sizeof golden_in, &got),
                    40);
    NF_CHECK(headers_equal(&got, &want));
    NF_CHECK_INT_EQ(nf_wire_encode_header(&got, buf, sizeof buf), 40);
    NF_CHECK(memcmp(buf, golden_in, sizeof buf) == 0);
}

NF_TEST(wire_frame_out_round_trip)
{
    struct nf_frame_header want = golden_out_header(), got;
    uint8_t image[NF_WIRE_FRAME_OUT_LEN], buf[NF_WIRE_FRAME_OUT_LEN];

    golden_out(image);
    NF_CHECK_INT_EQ(nf_wire_encode_header(&want, buf, sizeof buf), 72);
    NF_CHECK(memcmp(buf, image, sizeof image) == 0);
    memset(&got, 0x5a, sizeof got);
    NF_CHECK_INT_EQ(nf_wire_decode_header(image, sizeof image, &got), 72);
    NF_CHECK(headers_equal(&got, &want));
    NF_CHECK_NEAR(got.drift, -1.5, 0.0);
}

NF_TEST(wire_decode_ignores_bytes_after_header)
{
    uint8_t buf[NF_WIRE_FRAME_IN_LEN + 5];
    struct nf_frame_header h;

    memcpy(buf, golden_in, sizeof golden_in);
    memset(buf + 40, 0xff, 5);
    NF_CHECK_INT_EQ(nf_wire_decode_header(buf, sizeof buf, &h), 40);
    NF_CHECK_INT_EQ(h.payload_len, 10000);
}

/* Returns the decode result of golden_in with byte off set to val. */
static int decode_patched(size_t off, uint8_t val)
{
    uint8_t buf[NF_WIRE_FRAME_IN_LEN];
    struct nf_frame_header h;

    memcpy(buf, golden_in, sizeof buf);
    buf[off] = val;
    return decode_copy(buf, sizeof buf, &h);
}

NF_TEST(wire_header_rejects_bad_magic)
{
    struct nf_frame_header h;

    for (size_t i = 0; i < 4; i++) {
        uint8_t buf[NF_WIRE_FRAME_IN_LEN];

        NF_CHECK_INT_EQ(decode_patched(i, 'x'), NF_EWIRE_MAGIC);
        NF_CHECK_INT_EQ(decode_patched(i, (uint8_t)(golden_in[i] ^ 0x20)),
                        NF_EWIRE_MAGIC);
        /* A bad magic byte is reported as soon as it is available. */
        memcpy(buf, golden_in, sizeof buf);
        buf[i] = 0;
        NF_CHECK_INT_EQ(decode_copy(buf, i + 1, &h), NF_EWIRE_MAGIC);
        NF_CHECK_INT_EQ(decode_copy(buf, i, &h), 0);
    }
    NF_CHECK_INT_EQ(decode_copy((const uint8_t *)"GET / HTTP/1.1", 14, &h),
                    NF_EWIRE_MAGIC);
}

NF_TEST(wire_header_rejects_bad_version)
{
    static const uint8_t bad[] = {0, 2, 3, 0x81, 255};
    struct nf_frame_header h;
    uint8_t buf[NF_WIRE_FRAME_IN_LEN];

    for (size_t i = 0; i < sizeof bad; i++)
        NF_CHECK_INT_EQ(decode_patched(4, bad[i]), NF_EWIRE_VERSION);
    memcpy(buf, golden_in, sizeof buf);
    buf[4] = 2;
    NF_CHECK_INT_EQ(decode_copy(buf, 5, &h), NF_EWIRE_VERSION);
}

NF_TEST(wire_header_rejects_unknown_type)
{
    static const uint8_t bad[] = {0, 3, 4, 0x81, 255};
    struct nf_frame_header h;
    uint8_t buf[NF_WIRE_FRAME_IN_LEN];

    for (size_t i = 0; i < sizeof bad; i++)
        NF_CHECK_INT_EQ(decode_patched(5, bad[i]), NF_EWIRE_TYPE);
    memcpy(buf, golden_in, sizeof buf);
    buf[5] = 3;
    NF_CHECK_INT_EQ(decode_copy(buf, 6, &h), NF_EWIRE_TYPE);
}

NF_TEST(wire_header_rejects_lying_header_len)
{
    static const uint16_t bad_in[] = {0, 8, 39, 41, 72, 0x2800, 0xffff};
    static const uint16_t bad_out[] = {0, 40, 71, 73, 0x4800, 0xffff};
    uint8_t in[NF_WIRE_FRAME_OUT_LEN], out[NF_WIRE_FRAME_OUT_LEN];
    struct nf_frame_header h;

    memcpy(in, golden_in, sizeof golden_in);
    memset(in + 40, 0, 32);
    golden_out(out);
    for (size_t i = 0; i < sizeof bad_in / sizeof bad_in[0]; i++) {
        in[6] = (uint8_t)bad_in[i];
        in[7] = (uint8_t)(bad_in[i] >> 8);
        NF_CHECK_INT_EQ(decode_copy(in, sizeof in, &h), NF_EWIRE_HEADER_LEN);
        NF_CHECK_INT_EQ(decode_copy(in, 8, &h), NF_EWIRE_HEADER_LEN);
    }
    for (size_t i = 0; i < sizeof bad_out / sizeof bad_out[0]; i++) {
        out[6] = (uint8_t)bad_out[i];
        out[7] = (uint8_t)(bad_out[i] >> 8);
        NF_CHECK_INT_EQ(decode_copy(out, sizeof out, &h), NF_EWIRE_HEADER_LEN);
        NF_CHECK_INT_EQ(decode_copy(out, 8, &h), NF_EWIRE_HEADER_LEN);
    }
}

NF_TEST(wire_header_rejects_unknown_format)
{
    NF_CHECK_INT_EQ(decode_patched(28, 0), NF_EWIRE_FORMAT);
    NF_CHECK_INT_EQ(decode_patched(28, 2), NF_EWIRE_FORMAT);
    NF_CHECK_INT_EQ(decode_patched(28, 255), NF_EWIRE_FORMAT);
}

NF_TEST(wire_header_rejects_zero_dims)
{
    uint8_t buf[NF_WIRE_FRAME_IN_LEN];
    struct nf_frame_header h;

    memcpy(buf, golden_in, sizeof buf);
    buf[24] = buf[25] = 0;
    NF_CHECK_INT_EQ(decode_copy(buf, sizeof buf, &h), NF_EWIRE_DIMS);
    memcpy(buf, golden_in, sizeof buf);
    buf[26] = buf[27] = 0;
    NF_CHECK_INT_EQ(decode_copy(buf, sizeof buf, &h), NF_EWIRE_DIMS);
    /* The extremes 1 and 65535 are valid. */
    buf[24] = buf[25] = 0xff;
    buf[26] = 1;
    buf[27] = 0;
    NF_CHECK_INT_EQ(decode_copy(buf, sizeof buf, &h), 40);
    NF_CHECK_INT_EQ(h.width, 65535);
    NF_CHECK_INT_EQ(h.height, 1);
}

NF_TEST(wire_header_rejects_nonzero_reserved)
{
    static const size_t reserved[] = {29, 30, 31, 36, 37, 38, 39};

    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        NF_CHECK_INT_EQ(decode_patched(reserved[i], 1), NF_EWIRE_RESERVED);
        NF_CHECK_INT_EQ(decode_patched(reserved[i], 0x80), NF_EWIRE_RESERVED);
    }
}

NF_TEST(wire_header_rejects_unknown_flags)
{
    uint8_t buf[NF_WIRE_FRAME_OUT_LEN];
    struct nf_frame_header h;

    for (int bit = 1; bit < 32; bit++) {
        memcpy(buf, golden_in, sizeof golden_in);
        buf[8 + bit / 8] |= (uint8_t)(1u << (bit % 8));
        NF_CHECK_INT_EQ(decode_copy(buf, 40, &h), NF_EWIRE_RESERVED);
        golden_out(buf);
        buf[8 + bit / 8] |= (uint8_t)(1u << (bit % 8));
        NF_CHECK_INT_EQ(decode_copy(buf, 72, &h), NF_EWIRE_RESERVED);
    }
    /* No flags at all is valid. */
    memcpy(buf, golden_in, sizeof golden_in);
    buf[8] = 0;
    NF_CHECK_INT_EQ(decode_copy(buf, 40, &h), 40);
    NF_CHECK_INT_EQ(h.flags, 0);
}

NF_TEST(wire_short_buffers_need_more)
{
    uint8_t out[NF_WIRE_FRAME_OUT_LEN];
    struct nf_frame_header h, before;

    golden_out(out);
    memset(&h, 0x5a, sizeof h);
    before = h;
    for (size_t len = 0; len < NF_WIRE_FRAME_IN_LEN; len++) {
        NF_CHECK_INT_EQ(decode_copy(golden_in, len, &h), 0);
        NF_CHECK(memcmp(&h, &before, sizeof h) == 0);
    }
    for (size_t len = 0; len < NF_WIRE_FRAME_OUT_LEN; len++) {
        NF_CHECK_INT_EQ(decode_copy(out, len, &h), 0);
        NF_CHECK(memcmp(&h, &before, sizeof h) == 0);
    }
    NF_CHECK_INT_EQ(nf_wire_decode_header(NULL, 0, &h), 0);
    NF_CHECK_INT_EQ(nf_wire_decode_header(NULL, 1, &h), NF_EINVAL);
    NF_CHECK_INT_EQ(nf_wire_decode_header(golden_in, 40, NULL), NF_EINVAL);
}

NF_TEST(wire_check_message_matches_payload_len)
{
    struct nf_frame_header h = golden_in_header();

    NF_CHECK_INT_EQ(nf_wire_check_message(&h, 40, 40 + 10000), 0);
    NF_CHECK_INT_EQ(nf_wire_check_message(&h, 40, 40 + 9999),
                    NF_EWIRE_PAYLOAD_LEN);
    NF_CHECK_INT_EQ(nf_wire_check_message(&h, 40, 40 + 10001),
                    NF_EWIRE_PAYLOAD_LEN);
    NF_CHECK_INT_EQ(nf_wire_check_message(&h, 40, 39), NF_EWIRE_PAYLOAD_LEN);
    NF_CHECK_INT_EQ(nf_wire_check_message(&h, 40, 0), NF_EWIRE_PAYLOAD_LEN);
    h.payload_len = 0;
    NF_CHECK_INT_EQ(nf_wire_check_message(&h, 40, 40), 0);
    NF_CHECK_INT_EQ(nf_wire_check_message(&h, 72, 40), NF_EWIRE_PAYLOAD_LEN);
    /* A sum that would wrap must not pass. */
    h.payload_len = UINT32_MAX;
    NF_CHECK_INT_EQ(nf_wire_check_message(&h, SIZE_MAX, 39),
                    NF_EWIRE_PAYLOAD_LEN);
    NF_CHECK_INT_EQ(nf_wire_check_message(NULL, 40, 40), NF_EWIRE_PAYLOAD_LEN);
}

NF_TEST(wire_encode_refuses_small_buffer)
{
    struct nf_frame_header in = golden_in_header(), out = golden_out_header();
    uint8_t buf[NF_WIRE_FRAME_OUT_LEN + 16];

    for (size_t cap = 0; cap < NF_WIRE_FRAME_OUT_LEN; cap++) {
        memset(buf, 0xa5, sizeof buf);
        NF_CHECK_INT_EQ(nf_wire_encode_header(&out, buf, cap), NF_ERANGE);
        if (cap < NF_WIRE_FRAME_IN_LEN)
            NF_CHECK_INT_EQ(nf_wire_encode_header(&in, buf, cap), NF_ERANGE);
        for (size_t i = 0; i < sizeof buf; i++)
            NF_CHECK_INT_EQ(buf[i], 0xa5);
    }
    NF_CHECK_INT_EQ(nf_wire_encode_header(&in, buf, 40), 40);
    NF_CHECK_INT_EQ(nf_wire_encode_header(&out, buf, 72), 72);
}

NF_TEST(wire_encode_refuses_unknown_type)
{
    struct nf_frame_header h = golden_in_header();
    uint8_t buf[NF_WIRE_MAX_HEADER_LEN];

    h.type = 0;
    NF_CHECK_INT_EQ(nf_wire_encode_header(&h, buf, sizeof buf), NF_EINVAL);
    h.type = 3;
    NF_CHECK_INT_EQ(nf_wire_encode_header(&h, buf, sizeof buf), NF_EINVAL);
    NF_CHECK_INT_EQ(nf_wire_encode_header(NULL, buf, sizeof buf), NF_EINVAL);
    h.type = NF_MSG_FRAME_IN;
    NF_CHECK_INT_EQ(nf_wire_encode_header(&h, NULL, 40), NF_EINVAL);
}

NF_TEST(wire_close_code_for_each_error)
{
    static const struct {
        int err, code;
    } map[] = {
        {NF_EWIRE_MAGIC, 4400},
        {NF_EWIRE_TYPE, 4400},
        {NF_EWIRE_HEADER_LEN, 4400},
        {NF_EWIRE_PAYLOAD_LEN, 4400},
        {NF_EWIRE_DIMS, 4400},
        {NF_EWIRE_RESERVED, 4400},
        {NF_EWIRE_VERSION, 4401},
        {NF_ECTRL_VERSION, 4401},
        {NF_EWIRE_FORMAT, 4415},
        {NF_ECTRL_JSON, 4402},
        {NF_ECTRL_TYPE, 4402},
        {NF_ECTRL_FIELD, 4402},
        {NF_ETOO_BIG, 1009},
        {NF_EJPEG, 4422},
        {NF_EJPEG_DIMS, 4413},
        {NF_EFULL, 1013},
        {NF_ECLOSED, 1000},
        {NF_EPOLICY, 1008},
        {NF_EUNAUTHORIZED, 4403},
        {NF_ENOMEM, 1011},
        {NF_EINVAL, 1011},
        {NF_EIO, 1011},
        {NF_ERANGE, 1011},
        {NF_EAGAIN, 1011},
        {NF_EUNSUPPORTED, 1011},
        {NF_EMODEL_IO, 1011},
        {NF_EMODEL_FORMAT, 1011},
        {NF_EMODEL_GRAPH, 1011},
        {NF_EBACKEND, 1011},
        {NF_ENO_BACKEND, 1011},
        {0, 1011},
        {-9999, 1011},
    };

    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        NF_CHECK_INT_EQ(nf_wire_close_code_for(map[i].err), map[i].code);
}

NF_TEST(wire_close_reason_for_each_code)
{
    static const struct {
        int code;
        const char *reason;
    } map[] = {
        {1000, "normal closure"},
        {1001, "server going away"},
        {1003, "unsupported data"},
        {1008, "policy violation"},
        {1009, "message too big"},
        {1011, "internal server error"},
        {1013, "server full, try again later"},
        {4400, "malformed message"},
        {4401, "unsupported protocol version"},
        {4402, "malformed control message"},
        {4403, "stream token missing or wrong"},
        {4408, "idle timeout"},
        {4413, "frame dimensions exceed the server's limits"},
        {4415, "unsupported payload format"},
        {4422, "corrupt or unsupported JPEG"},
        {0, ""},
        {1002, ""},
        {4999, ""},
    };

    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *r = nf_wire_close_reason(map[i].code);

        NF_CHECK(r != NULL && strcmp(r, map[i].reason) == 0);
        /* RFC 6455 limits a close frame's reason to 123 bytes. */
        NF_CHECK(strlen(r) <= 123);
    }
}

/* xorshift32: a fixed, portable sequence of pseudo-random bytes. */
static uint32_t next_random(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/*
 * Decodes every prefix of many garbage buffers, some starting with a valid
 * header prefix so that the later checks are reached too. Each decode reads
 * an exact-size heap copy (ASan would flag any read past len) and must
 * return need-more, a header length whose fields are valid, or an error.
 */
NF_TEST(wire_decode_garbage_stays_in_bounds)
{
    uint32_t seed = 0x9e3779b9u;
    uint8_t buf[NF_WIRE_FRAME_OUT_LEN + 8], out[NF_WIRE_FRAME_OUT_LEN];
    int ok = 0;

    golden_out(out);
    for (int iter = 0; iter < 3000; iter++) {
        size_t keep = next_random(&seed) % (sizeof out + 1);
        const uint8_t *valid = (iter & 1) ? out : golden_in;

        if (!(iter & 1) && keep > sizeof golden_in)
            keep = sizeof golden_in;
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (uint8_t)next_random(&seed);
        /* Random single-bit damage inside the copied valid prefix. */
        memcpy(buf, valid, keep);
        if (keep > 0 && (iter % 3) == 0)
            buf[next_random(&seed) % keep] ^=
                (uint8_t)(1u << (next_random(&seed) % 8));
        for (size_t len = 0; len <= sizeof buf; len++) {
            struct nf_frame_header h;
            int rc = decode_copy(buf, len, &h);

            NF_CHECK(rc == 0 || rc == 40 || rc == 72 ||
                     (rc <= NF_EWIRE_MAGIC && rc >= NF_EWIRE_RESERVED));
            if (rc > 0) {
                NF_CHECK((size_t)rc <= len);
                NF_CHECK(h.format == NF_FORMAT_JPEG && h.width > 0 &&
                         h.height > 0 && (h.flags & ~NF_FLAG_KNOWN_MASK) == 0);
                ok++;
            }
        }
    }
    /* The valid prefixes must have been decoded at least sometimes. */
    NF_CHECK(ok > 0);
}

/* clang-format off */
NF_TEST_MAIN(
    NF_TEST_ENTRY(wire_frame_in_encodes_golden_bytes)
    NF_TEST_ENTRY(wire_frame_in_round_trip)
    NF_TEST_ENTRY(wire_frame_out_round_trip)
    NF_TEST_ENTRY(wire_decode_ignores_bytes_after_header)
    NF_TEST_ENTRY(wire_header_rejects_bad_magic)
    NF_TEST_ENTRY(wire_header_rejects_bad_version)
    NF_TEST_ENTRY(wire_header_rejects_unknown_type)
    NF_TEST_ENTRY(wire_header_rejects_lying_header_len)
    NF_TEST_ENTRY(wire_header_rejects_unknown_format)
    NF_TEST_ENTRY(wire_header_rejects_zero_dims)
    NF_TEST_ENTRY(wire_header_rejects_nonzero_reserved)
    NF_TEST_ENTRY(wire_header_rejects_unknown_flags)
    NF_TEST_ENTRY(wire_short_buffers_need_more)
    NF_TEST_ENTRY(wire_check_message_matches_payload_len)
    NF_TEST_ENTRY(wire_encode_refuses_small_buffer)
    NF_TEST_ENTRY(wire_encode_refuses_unknown_type)
    NF_TEST_ENTRY(wire_close_code_for_each_error)
    NF_TEST_ENTRY(wire_close_reason_for_each_code)
    NF_TEST_ENTRY(wire_decode_garbage_stays_in_bounds)
)
/* clang-format on */
