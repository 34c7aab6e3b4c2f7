/*
 * cojp/engine.h - what the three CoJP engines (pledge, Join Proxy, JRC)
 * have in common: opaque peer addresses, the output slot through which an
 * engine hands back a datagram and an event, and the CoAP/CoJP timing
 * settings of RFC 9031 sections 7.2 and 8.5.
 *
 * Engines own no socket, clock or file.  A host feeds them datagrams and
 * the current time and carries out what they return:
 *
 *     cj_X_input(eng, now, from, msg, len, &out)  a datagram arrived
 *     cj_X_poll(eng, now, &out)                   time passed; call again
 *                                                 while it returns 1
 *     cj_X_next_timer(eng)                        when to call poll next
 *
 * Each call produces at most one datagram (out.len > 0, to out.to) and at
 * most one event (out.event, engine-specific, 0 for none); the one
 * exception, cj_proxy_input_jrc(), takes a second slot for the Join
 * Proxy's own ACK or RST to the JRC (cojp/proxy.h).  The same engines
 * run in the Linux daemons, the simulator and firmware.
 */
#ifndef COJP_ENGINE_H
#define COJP_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cojp/config.h"
#include "cojp/err.h"

/* A peer address, opaque to the engines: the host decides what the bytes
 * mean (IPv6 address + port + interface on Linux, a mote number in the
 * simulator).  Two addresses are equal when length and bytes are. */
#ifndef CJ_ADDR_MAX
#define CJ_ADDR_MAX 24
#endif
typedef struct cj_addr {
    uint8_t len;
    uint8_t b[CJ_ADDR_MAX];
} cj_addr_t;

static inline bool cj_addr_equal(const cj_addr_t *a, const cj_addr_t *b)
{
    return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

/* Output slot.  The caller sets buf and cap; the engine sets len (0: send
 * nothing), to, and event. */
typedef struct cj_out {
    uint8_t *buf;
    size_t cap;
    size_t len;
    cj_addr_t to;
    int event;
} cj_out_t;

static inline void cj_out_reset(cj_out_t *o)
{
    o->len = 0;
    o->to.len = 0;
    o->event = 0;
}

/* CoAP retransmission settings (RFC 7252 section 4.8, values of RFC 9031
 * Table 1 by default). */
typedef struct cj_coap_timing {
    uint32_t ack_timeout_ms;
    uint16_t ack_random_factor_pct; /* 150 = 1.5 */
    uint8_t max_retransmit;
} cj_coap_timing_t;

#ifndef CJ_COJP_ACK_TIMEOUT_MS
#define CJ_COJP_ACK_TIMEOUT_MS 10000u /* RFC 9031 Table 1 */
#endif
#ifndef CJ_COJP_ACK_RANDOM_FACTOR_PCT
#define CJ_COJP_ACK_RANDOM_FACTOR_PCT 150u
#endif
#ifndef CJ_COJP_MAX_RETRANSMIT
#define CJ_COJP_MAX_RETRANSMIT 4u
#endif
/* COJP_MAX_JOIN_ATTEMPTS and COJP_REKEYING_GUARD_TIME (RFC 9031 Table
 * 8) are CJ_COJP_MAX_JOIN_ATTEMPTS and CJ_COJP_REKEYING_GUARD_TIME (in
 * seconds) in cojp/config.h. */

/* The defaults above as a struct. */
static inline cj_coap_timing_t cj_coap_timing_default(void)
{
    cj_coap_timing_t t = {CJ_COJP_ACK_TIMEOUT_MS, CJ_COJP_ACK_RANDOM_FACTOR_PCT,
                          CJ_COJP_MAX_RETRANSMIT};
    return t;
}

/* The well-known JRC alias and resource (RFC 9031 section 8.1.1). */
#define CJ_COJP_URI_HOST "6tisch.arpa"
#define CJ_COJP_URI_PATH "j"
#define CJ_COJP_PROXY_SCHEME "coap"

/* OSCORE identifiers of the CoJP profile (RFC 9031 section 7.3). */
#define CJ_COJP_JRC_ID "JRC" /* 0x4a5243 */
#define CJ_COJP_JRC_ID_LEN 3

#define CJ_TIME_NEVER UINT64_MAX

#endif
