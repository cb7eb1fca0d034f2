/*
 * error.h - nextframe's one table of error codes.
 *
 * Every fallible function in the project returns an int: 0 (or a count) on
 * success, or one of the negative NF_E* codes below. The table is an X-macro
 * (as libuv's UV_ERRNO_MAP) so that nf_strerror() and nf_errname() can never
 * fall out of step with the codes.
 */
#ifndef NF_ERROR_H
#define NF_ERROR_H

#define NF_ERRNO_MAP(XX)                                                       \
    XX(NOMEM, -1, "out of memory")                                             \
    XX(INVAL, -2, "invalid argument")                                          \
    XX(IO, -3, "I/O error")                                                    \
    XX(RANGE, -4, "value out of range")                                        \
    XX(AGAIN, -5, "resource temporarily unavailable")                          \
    XX(UNSUPPORTED, -6, "unsupported")                                         \
    XX(WIRE_MAGIC, -10, "bad magic")                                           \
    XX(WIRE_VERSION, -11, "unsupported protocol version")                      \
    XX(WIRE_TYPE, -12, "unknown message type")                                 \
    XX(WIRE_HEADER_LEN, -13, "bad header length")                              \
    XX(WIRE_PAYLOAD_LEN, -14, "payload length does not match the message")     \
    XX(WIRE_FORMAT, -15, "unsupported payload format")                         \
    XX(WIRE_DIMS, -16, "bad frame dimensions")                                 \
    XX(WIRE_RESERVED, -17, "reserved field is not zero")                       \
    XX(CTRL_JSON, -20, "control message is not valid JSON")                    \
    XX(CTRL_TYPE, -21, "unknown control message type")                         \
    XX(CTRL_FIELD, -22, "bad control message field")                           \
    XX(CTRL_VERSION, -23, "unsupported protocol version in hello")             \
    XX(TOO_BIG, -30, "message too big")                                        \
    XX(JPEG, -31, "corrupt or unsupported JPEG")                               \
    XX(JPEG_DIMS, -32, "JPEG dimensions exceed the server's limit")            \
    XX(MODEL_IO, -40, "cannot read model file")                                \
    XX(MODEL_FORMAT, -41, "malformed model file")                              \
    XX(MODEL_GRAPH, -42, "bad model graph")                                    \
    XX(BACKEND, -50, "backend failure")                                        \
    XX(NO_BACKEND, -51, "backend not available")                               \
    XX(FULL, -60, "server full")                                               \
    XX(CLOSED, -61, "session closed")                                          \
    XX(POLICY, -62, "policy violation")                                        \
    XX(UNAUTHORIZED, -63, "not authorized")

enum nf_errno {
#define NF_ERR_ENUM(name, val, msg) NF_E##name = (val),
    NF_ERRNO_MAP(NF_ERR_ENUM)
#undef NF_ERR_ENUM
};

/* Returns a static, human-readable message for an NF_E* code. */
const char *nf_strerror(int err);

/* Returns the code's name without prefix ("WIRE_MAGIC"), or "UNKNOWN". */
const char *nf_errname(int err);

#endif /* NF_ERROR_H */
