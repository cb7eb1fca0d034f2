/*
 * le.h - little-endian loads and stores for the wire format.
 *
 * Each helper reads or writes exactly the bytes its name says, one byte at a
 * time, so it is independent of the host's byte order and alignment. This is
 * what wire.c uses instead of casting buffers to packed structs. Internal to
 * protocol/; not part of the public API.
 */
#ifndef NF_LE_H
#define NF_LE_H

#include <stdint.h>

static inline uint16_t nf__le_load16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static inline uint32_t nf__le_load32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline uint64_t nf__le_load64(const uint8_t *p)
{
    return (uint64_t)nf__le_load32(p) | (uint64_t)nf__le_load32(p + 4) << 32;
}

static inline void nf__le_store16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void nf__le_store32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void nf__le_store64(uint8_t *p, uint64_t v)
{
    nf__le_store32(p, (uint32_t)v);
    nf__le_store32(p + 4, (uint32_t)(v >> 32));
}

#endif /* NF_LE_H */
