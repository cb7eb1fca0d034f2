/*
 * fuzz-wire.c - libFuzzer harness for the frame header decoder
 * (protocol/wire.h).
 *
 * The input is one binary WebSocket message as a client or server would
 * send it: a header and a payload. The harness does what the server does
 * with it (server/session.c): nf_wire_decode_header() on the bytes that
 * have arrived so far, then on the whole message, then
 * nf_wire_check_message(). Each prefix is copied into a buffer of exactly
 * its length, so AddressSanitizer sees any read past what the decoder was
 * given. Properties checked for every input:
 *
 *   - a prefix never yields a header: it returns 0 ("need more") or the
 *     error the whole message returns, and once the header is complete the
 *     result no longer depends on the length;
 *   - a decoded header encodes back to exactly the bytes it came from, and
 *     the encoder refuses a buffer one byte too small;
 *   - nf_wire_check_message() accepts exactly header + payload_len bytes;
 *   - every wire error maps to a close code with a documented reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fuzz-check.h"
#include "wire.h"

/* Decodes the first len bytes of data from a copy of exactly len bytes. */
static int decode_prefix(const uint8_t *data, size_t len,
                         struct nf_frame_header *h)
{
    uint8_t *copy = malloc(len ? len : 1);
    int rc;

    NF_FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, len);
    rc = nf_wire_decode_header(len ? copy : NULL, len, h);
    free(copy);
    return rc;
}

static int is_wire_error(int rc)
{
    return rc == NF_EWIRE_MAGIC || rc == NF_EWIRE_VERSION ||
           rc == NF_EWIRE_TYPE || rc == NF_EWIRE_HEADER_LEN ||
           rc == NF_EWIRE_FORMAT || rc == NF_EWIRE_DIMS ||
           rc == NF_EWIRE_RESERVED;
}

/* Every error a session can meet here must close it with a known code. */
static void check_close_code(int err)
{
    int code = nf_wire_close_code_for(err);

    NF_FUZZ_CHECK(code != NF_CLOSE_INTERNAL);
    NF_FUZZ_CHECK(nf_wire_close_reason(code)[0] != '\0');
}

/* The header decoded from data re-encodes to the same need bytes. */
static void check_round_trip(const uint8_t *data, int need,
                             const struct nf_frame_header *h)
{
    uint8_t out[NF_WIRE_MAX_HEADER_LEN];

    NF_FUZZ_CHECK(nf_wire_encode_header(h, out, (size_t)need - 1) == NF_ERANGE);
    NF_FUZZ_CHECK(nf_wire_encode_header(h, out, sizeof out) == need);
    NF_FUZZ_CHECK(memcmp(out, data, (size_t)need) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nf_frame_header h, hp;
    int full = nf_wire_decode_header(data, size, &h);
    size_t last =
        size < NF_WIRE_MAX_HEADER_LEN + 1 ? size : NF_WIRE_MAX_HEADER_LEN + 1;

    NF_FUZZ_CHECK(full == 0 || full == NF_WIRE_FRAME_IN_LEN ||
                  full == NF_WIRE_FRAME_OUT_LEN || is_wire_error(full));
    NF_FUZZ_CHECK(nf_wire_decode_header(data, size, NULL) == NF_EINVAL);
    for (size_t k = 0; k <= last; k++) {
        int rc = decode_prefix(data, k, &hp);

        if (full > 0 && k < (size_t)full) {
            NF_FUZZ_CHECK(rc == 0);
        } else if (full > 0) {
            NF_FUZZ_CHECK(rc == full);
            check_round_trip(data, rc, &hp);
        } else if (k >= NF_WIRE_MAX_HEADER_LEN) {
            NF_FUZZ_CHECK(rc == full);
        } else {
            NF_FUZZ_CHECK(rc == 0 || rc == full);
        }
    }
    if (full < 0) {
        check_close_code(full);
        return 0;
    }
    if (full == 0)
        return 0;

    NF_FUZZ_CHECK(h.width != 0 && h.height != 0);
    NF_FUZZ_CHECK(h.format == NF_FORMAT_JPEG);
    NF_FUZZ_CHECK((h.flags & ~(uint32_t)NF_FLAG_KNOWN_MASK) == 0);
    check_round_trip(data, full, &h);
    if (size - (size_t)full == h.payload_len) {
        NF_FUZZ_CHECK(nf_wire_check_message(&h, (size_t)full, size) == 0);
    } else {
        NF_FUZZ_CHECK(nf_wire_check_message(&h, (size_t)full, size) ==
                      NF_EWIRE_PAYLOAD_LEN);
        check_close_code(NF_EWIRE_PAYLOAD_LEN);
    }
    /* A length shorter than the header itself is never a whole message. */
    NF_FUZZ_CHECK(nf_wire_check_message(&h, (size_t)full, (size_t)full - 1) ==
                  NF_EWIRE_PAYLOAD_LEN);
    return 0;
}
