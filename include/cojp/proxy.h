/*
 * cojp/proxy.h - the Join Proxy engine (RFC 9031 section 7.1, RFC 8974).
 *
 * A joined node relays join traffic between pledges (on the link-local
 * side) and the JRC.  It keeps no per-pledge state: everything it needs to
 * return a response - the pledge's address, its token and message ID and
 * the message type - travels inside the token of the request it forwards,
 * sealed with AES-CCM under a key only this JP knows, together with a
 * timestamp.  A response is relayed only if its token opens under that
 * key, is younger than the freshness bound and has not been used before,
 * so neither a forged nor a replayed response makes the JP send anything
 * (RFC 8974 sections 3.1 and 5.2).
 *
 * What the engine does hold is constant in size whatever the number of
 * pledges: the token key, nonce prefix and counter, a window of consumed
 * token counters, the join-rate meter and the blacklist.
 *
 * Requests from pledges are forwarded only when they are CoAP requests
 * (CON or NON) carrying exactly one Proxy-Scheme "coap", exactly one
 * Uri-Host "6tisch.arpa", no Observe (RFC 8974 section 4.1) and an OSCORE
 * option with a 'kid context'; the Proxy-Scheme option is removed,
 * everything else is copied, and the request goes to the JRC as a NON
 * message with a JP message ID and the sealed state as its token (section
 * 7.1).  The JP never decrypts CoJP payloads.  Join traffic is dropped
 * when forwarding it would exceed the join rate (PROBING_RATE, bytes per
 * second averaged over a window of ACK_TIMEOUT; 0 drops all join traffic;
 * sections 7.2, 8.4.2 and 9), and when the OSCORE 'kid context' equals a
 * blacklisted identifier.
 *
 * Blacklist: the link layer is where it applies.  Section 8.4.2: "The
 * joined node MUST silently drop any link-layer frames originating from
 * the pledge identifiers enclosed in the blacklist parameter."  The 'kid
 * context' is chosen by the sender (and is R2 || R3, not the identifier,
 * after a recovery), so the check in cj_proxy_input_pledge() is only an
 * extra filter.  HOSTS MUST call cj_proxy_blacklisted() with the
 * link-layer source of every received frame (the 802.15.4 extended
 * source address, an EUI-64, in the byte order of the pledge identifier)
 * and drop the frame when it returns true, before any other processing
 * (not only join traffic).  A host that only sees UDP datagrams from
 * link-local IPv6 sources derives the EUI-64 from the interface
 * identifier with cj_proxy_eui64_from_ipv6() (RFC 4291 Appendix A) and
 * applies the same check; that is only as good as the binding between
 * the link-layer source and the IPv6 address (RFC 4944 / RFC 6282
 * compression derives it from the MAC address), so a MAC-level check is
 * preferred wherever the host has one.
 *
 * Responses are accepted only from cfg.jrc, only with a response code,
 * and are relayed with code, options and payload copied byte for byte:
 * as an ACK carrying the pledge's message ID and token when the pledge's
 * request was CON (piggybacked), as a NON with a fresh JP message ID
 * otherwise.  The JRC may answer the JP's NON request with a NON
 * response (cojp's JRC always does) or with a separate response in a CON
 * message (RFC 7252 sections 5.2.2 and 5.2.3; RFC 8974 section 3.3 has a
 * stateless client take all three kinds).  A CON response is the JP's
 * own exchange with the JRC, so the JP answers it itself, in a second
 * output slot (see cj_proxy_input_jrc()), with a 4-byte Empty message
 * echoing its message ID:
 *
 *   token opens, fresh, counter unused   relayed once; empty ACK
 *   token opens, fresh, counter spent    not relayed; empty ACK (the
 *     or out of the consumed-token       JRC's retransmission after a
 *     window                             lost ACK, RFC 7252 section 4.5)
 *   token opens, stale                   not relayed; RST (rejected,
 *                                        RFC 8974 section 3.3 / RFC 7252
 *                                        section 4.2)
 *   token does not open                  nothing at all
 *
 * No answer to a token that does not open: RFC 7252 section 4.2 would
 * reject it with a RST, but the JP sends nothing in response to what it
 * cannot authenticate.  A RST is small (no amplification) and goes only
 * to cfg.jrc, yet its message ID would be the sender's choice, and RFC
 * 7252 section 4.2 has the JRC cancel its CON message with that ID to
 * this JP on receipt, so anyone able to forge the JRC's source address
 * (a pledge on the JP's link can) could cancel the JRC's parameter
 * updates to this node and its CON responses through it, and make the
 * JP transmit into the network outside the join rate.  The cost is one
 * case: after a JP restart (new nonce prefix) a JRC retransmits a CON
 * response the JP can no longer open until MAX_RETRANSMIT.  A token
 * that opens came from the JRC (or is a copy of what it sent), so the
 * ACK and RST carry no chosen message ID.  ACK and RST messages from the
 * JRC are dropped (the JP's requests are NON, so no piggybacked response
 * exists, and RFC 7252 section 4.2 forbids answering either), and so is
 * an Empty or reserved-class CON, without a Reset.
 *
 * Token state object (the token sent to the JRC), all integers
 * big-endian:
 *
 *     counter (5) | AES-CCM( flags (1) | pledge token (T) | pledge MID (2)
 *                            | timestamp (6) | pledge address (A) ) | tag (8)
 *
 *   counter    the token counter; never reused for one engine instance.
 *              CCM nonce = nonce_prefix (8 bytes, drawn at random by
 *              cj_proxy_init) || counter, so even a configured token_key
 *              kept across reboots never sees a nonce twice, and tokens
 *              issued before a restart (whose consumed-token window was
 *              lost) no longer open.
 *   flags      bit 7: the pledge's request was NON; bits 0..6: T.
 *   timestamp  `now` of the forwarded request, ms modulo 2^48.
 *   address    the cj_addr_t bytes; A = what remains (its length is not
 *              stored: the token length gives it).
 *
 * The state object is 22 + T + A bytes: 54 for a 24-byte address and an
 * 8-byte token, within CJ_COAP_MAX_TOKEN (64).  A request whose state
 * would exceed CJ_COAP_MAX_TOKEN (a long pledge token) is not forwarded
 * (RFC 8974 section 4.4): like any other CON from a pledge that the JP
 * cannot process, it is rejected with a RST (RFC 7252 section 4.2), the
 * signal from which a client learns by trial and error that its token is
 * too long (RFC 8974 section 2.2.2; without CSM over UDP the JP never
 * announces a limit above the base value of 8 bytes, which every pledge
 * token within it fits).  Pledges of this library use 4-byte tokens.
 *
 * Consumed-token window: bit (c mod CJ_PROXY_REPLAY_BITS) of the bitmap
 * belongs to token counter c.  Issuing counter c clears its bit; a
 * response with counter c is relayed only when
 *     token_counter - CJ_PROXY_REPLAY_BITS <= c < token_counter
 * (c is among the last CJ_PROXY_REPLAY_BITS tokens issued) and its bit is
 * clear, which then gets set.  So at most one response per forwarded
 * request is ever relayed, in any order, and a response to a request
 * older than the last CJ_PROXY_REPLAY_BITS forwarded ones is dropped
 * even when fresh.
 *
 * Join rate: a token bucket refilled at join_rate bytes/s holding at most
 *     max(join_rate * rate_window_ms / 1000, CJ_PROXY_MAX_MSG) bytes,
 * full after init.  Only the bytes of forwarded requests (the datagram
 * sent to the JRC) are charged; a request that does not fit the bucket is
 * dropped and charges nothing.  Over any interval of T ms the JP forwards
 * at most capacity + join_rate * T / 1000 bytes.  The CJ_PROXY_MAX_MSG
 * floor is the burst allowance: it lets even a small rate (the default
 * PROBING_RATE of 1 byte/s) pass one maximum-size request now and then.
 * join_rate 0 drops all join traffic; CJ_PROXY_RATE_UNLIMITED disables
 * the meter.
 */
#ifndef COJP_PROXY_H
#define COJP_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cojp/crypto.h"
#include "cojp/engine.h"
#include "cojp/port.h"

#ifndef CJ_PROXY_MAX_BLACKLIST
#define CJ_PROXY_MAX_BLACKLIST 16 /* pledge identifiers */
#endif
#ifndef CJ_PROXY_MAX_ID
#define CJ_PROXY_MAX_ID 8 /* bytes of one pledge identifier (EUI-64) */
#endif
/* Consumed-token window, in tokens: a response whose token counter is
 * older than this many forwarded requests is dropped.  Constant memory of
 * CJ_PROXY_REPLAY_BITS / 8 bytes; must be a multiple of 8. */
#ifndef CJ_PROXY_REPLAY_BITS
#define CJ_PROXY_REPLAY_BITS 1024
#endif
/* Largest datagram the JP accepts from a pledge and forwards to the JRC,
 * in bytes.  A Join Request is well under 128 bytes (RFC 9031 Appendix
 * A); 256 leaves room for Unsupported_Configuration and the JP's token.
 * It is also the join-rate burst allowance (see above). */
#ifndef CJ_PROXY_MAX_MSG
#define CJ_PROXY_MAX_MSG 256
#endif

#define CJ_PROXY_RATE_UNLIMITED UINT32_MAX

/* Token state object layout (see above), in bytes. */
#define CJ_PROXY_CTR_LEN 5
#define CJ_PROXY_NONCE_PREFIX_LEN (CJ_CCM_NONCE_LEN - CJ_PROXY_CTR_LEN)
#define CJ_PROXY_TAG_LEN 8
#define CJ_PROXY_STATE_OVERHEAD 22 /* 5 + 1 + 2 + 6 + 8 */
#define CJ_PROXY_MAX_COUNTER ((UINT64_C(1) << 40) - 1)

/* Events reported in cj_out_t.event (a dropped message is not an event;
 * see cj_proxy_stats_t). */
enum { CJ_PROXY_EV_NONE = 0 };

/* Size of what cj_proxy_input_jrc() puts in its ack slot: an Empty ACK or
 * RST, header only (RFC 7252 section 3), in bytes. */
#define CJ_PROXY_ACK_LEN 4

typedef struct cj_proxy_cfg {
    cj_addr_t jrc;               /* where join requests go */
    uint8_t token_key[16];       /* JP-local secret; all zero: drawn at random */
    uint32_t join_rate;          /* bytes/s; 0 drops all join traffic, so a
                                  * host without a join rate parameter sets
                                  * CJ_PROXY_RATE_UNLIMITED (section 8.4.2:
                                  * absent = positive infinity) */
    uint32_t rate_window_ms;     /* averaging window; 0: ACK_TIMEOUT */
    uint32_t token_lifetime_ms;  /* freshness bound; 0: 4 * ACK_TIMEOUT */
} cj_proxy_cfg_t;

/* Every input call either returns 1 (and counts forwarded or relayed) or
 * returns 0 or 2 and counts exactly one dropped_* reason.  acks and
 * resets count in addition the JP's own Empty ACKs and RSTs: those
 * cj_proxy_input_jrc() put in its ack slot, and the RSTs with which
 * cj_proxy_input_pledge() rejects a pledge's CON (return value 2). */
typedef struct cj_proxy_stats {
    unsigned long forwarded;        /* requests sent to the JRC */
    unsigned long relayed;          /* responses sent to pledges */
    unsigned long acks;             /* empty ACKs to the JRC's CON responses
                                     * (relayed ones and duplicates) */
    unsigned long resets;           /* RSTs: to CON responses with a stale
                                     * token, to pledge CONs not forwarded
                                     * for their form */
    unsigned long dropped_malformed;/* not CoAP, not a join request, not a
                                     * NON or CON response (a CON without
                                     * an ack slot), too big, token too
                                     * long, output buffer too small */
    unsigned long dropped_blacklist;/* kid context on the blacklist */
    unsigned long dropped_rate;     /* join rate exceeded (or 0), or the
                                     * token counter space is used up */
    unsigned long dropped_source;   /* response not from cfg.jrc */
    unsigned long dropped_token;    /* response token does not open (forged,
                                     * altered, other key or instance) */
    unsigned long dropped_stale;    /* token older than token_lifetime_ms */
    unsigned long dropped_replay;   /* token already used, or older than the
                                     * consumed-token window */
} cj_proxy_stats_t;

typedef struct cj_proxy {
    cj_proxy_cfg_t cfg;             /* defaults filled in by init */
    const cj_platform_t *platform;  /* may be NULL */
    uint8_t nonce_prefix[CJ_PROXY_NONCE_PREFIX_LEN]; /* random per init */
    uint64_t token_counter;         /* next token counter, never reused */
    uint16_t next_mid;              /* MID of the next NON the JP sends */
    uint8_t replay_bits[CJ_PROXY_REPLAY_BITS / 8]; /* 1 = consumed */
    /* join-rate meter: token bucket refilled at join_rate */
    uint64_t rate_last_ms;          /* time of the last refill */
    uint64_t rate_budget_milli;     /* bytes * 1000 available */
    uint8_t blacklist[CJ_PROXY_MAX_BLACKLIST][CJ_PROXY_MAX_ID];
    uint8_t blacklist_len[CJ_PROXY_MAX_BLACKLIST];
    uint8_t blacklist_count;
    cj_proxy_stats_t stats;
} cj_proxy_t;

/* Initialise from cfg (copied; zero fields get their defaults).  Draws the
 * nonce prefix, the first message ID and, when cfg->token_key is all
 * zero, the token key with cj_crypto_random().  The platform port (NULL
 * allowed) is used for the log only; time is always passed in.  The
 * blacklist starts empty.  Returns CJ_OK or CJ_ERR_CRYPTO when random
 * bytes could not be drawn. */
int cj_proxy_init(cj_proxy_t *jp, const cj_proxy_cfg_t *cfg,
                  const cj_platform_t *platform);

/* Replace the blacklist (RFC 9031 section 8.4.2: a new value overwrites
 * the old; count 0 empties it).  CJ_ERR_NOSPACE, with the old blacklist
 * kept, when there are more than CJ_PROXY_MAX_BLACKLIST entries or one is
 * longer than CJ_PROXY_MAX_ID. */
int cj_proxy_set_blacklist(cj_proxy_t *jp, const uint8_t *const *ids,
                           const size_t *lens, size_t count);
/* Set PROBING_RATE from a join rate parameter (section 8.4.2): bytes/s,
 * 0 drops all join traffic, CJ_PROXY_RATE_UNLIMITED for none given.  The
 * bucket keeps its content, clamped to the new capacity. */
void cj_proxy_set_join_rate(cj_proxy_t *jp, uint32_t bytes_per_s);
void cj_proxy_set_jrc(cj_proxy_t *jp, const cj_addr_t *jrc);

/* Section 8.4.2 at the link layer: true when ll_src (len bytes, the
 * frame's link-layer source, normally an 8-byte EUI-64) equals an entry
 * of the blacklist; the host then drops the frame silently.  false for
 * NULL or an empty source.  Pure: no state change, no stats (the host
 * counts what it drops).  See "Blacklist" above. */
bool cj_proxy_blacklisted(const cj_proxy_t *jp, const uint8_t *ll_src,
                          size_t len);

/* The EUI-64 behind a link-local IPv6 address (fe80::/64) whose
 * interface identifier was formed from it (RFC 4291 Appendix A: the
 * identifier is the EUI-64 with the universal/local bit, 0x02 of the
 * first byte, inverted; inverting it again gives the EUI-64).  Returns
 * CJ_OK with eui64 filled, or CJ_ERR_INVALID (eui64 untouched) when the
 * address is not fe80::/64 or its identifier has the form RFC 4944
 * section 6 derives from a 16-bit short address (0000:00ff:fe00:XXXX),
 * which carries no EUI-64. */
int cj_proxy_eui64_from_ipv6(const uint8_t ipv6[16], uint8_t eui64[8]);

/* The inverse, for any /64 prefix: the IPv6 address made of prefix (its
 * first 8 bytes) and the interface identifier formed from eui64 (the
 * universal/local bit inverted).  With fe80::/64 it is the node's
 * link-local address; with the network's prefix, the global address the
 * JRC derives for a joined node (RFC 9031 section 8.2.1). */
void cj_proxy_ipv6_from_eui64(const uint8_t prefix[8], const uint8_t eui64[8],
                              uint8_t ipv6[16]);

/* A datagram from a pledge (link-local side).  Returns 1 with out filled
 * (the request for the JRC, out->to = cfg.jrc), 0 when dropped (out->len
 * 0; the reason is counted in jp->stats and nothing else changes, except
 * that a crypto backend failure while sealing spends the counter), or 2
 * when dropped and answered: out holds a RST of CJ_PROXY_ACK_LEN bytes
 * for the pledge (out->to = *from), to be sent on the link-local side.
 * That answers a version 1 CON the JP does not forward for its form (not
 * CoAP, not a join request, a token too long to carry: RFC 7252 section
 * 4.2, RFC 8974 section 2.2.2); a blacklisted or rate-limited request is
 * dropped silently (RFC 9031 sections 8.4.2 and 7.2), as is an oversize
 * datagram, a NON, or anything when out->cap is below CJ_PROXY_ACK_LEN.
 * Forwarding uses one token counter and one JP message ID and charges the
 * join-rate meter. */
int cj_proxy_input_pledge(cj_proxy_t *jp, uint64_t now,
                          const cj_addr_t *from, const uint8_t *msg,
                          size_t len, cj_out_t *out);

/* Whether a datagram from the JRC belongs to the Join Proxy's own node
 * rather than to a pledge it relays for.  A JP is a joined node, so the
 * JRC also talks to it directly: its requests (parameter updates, RFC
 * 9031 section 8.2), its ACK/RST (the piggybacked answer to the node's
 * own Join Request, or the empty ACK announcing a separate one) and any
 * response whose token is shorter than CJ_PROXY_STATE_OVERHEAD (no JP
 * token is: a separate CON or a NON response to the node's own Join
 * Request, RFC 7252 sections 5.2.2 and 5.2.3) go to the node's pledge
 * engine.  Every other response, NON or CON, answers a request the JP
 * relayed (RFC 8974 stateless proxy) and goes to cj_proxy_input_jrc().
 * False for a datagram that is not CoAP, and for an Empty CON (a CoAP
 * ping, see docs/porting.md) or a reserved code class. */
bool cj_proxy_for_node(const uint8_t *msg, size_t len);

/* A datagram from the JRC side.  Two outputs, slots of the caller's
 * (buf and cap set, as for any cj_out_t; distinct buffers):
 *
 *   out  the response for the pledge, to the address recovered from the
 *        token.  The return value is 1 when out was filled, else 0 (the
 *        datagram is not relayed; the reason is counted in jp->stats).
 *   ack  the JP's own answer to a CON response (see the table above):
 *        ack->len is CJ_PROXY_ACK_LEN with an empty ACK or a RST echoing
 *        the response's message ID, ack->to = from (the JRC), or 0.  It
 *        may be filled whatever the return value: with 1 (a response
 *        relayed, ACK) and with 0 (a duplicate, ACK; a stale token, RST).
 *        ack->cap must be at least CJ_PROXY_ACK_LEN; with a smaller slot
 *        or NULL every CON response is dropped unanswered
 *        (dropped_malformed), so a JRC answering CON retransmits it until
 *        it gives up.
 *
 * The host sends both when both are set, in either order, ack through
 * the socket it sends to the JRC with.  A relayed response consumes its
 * token counter; a response not relayed changes nothing but the stats
 * (an ACK or RST keeps no state).  A relay that does not fit out->cap is dropped
 * without an ACK, so the JRC's retransmission can still be relayed. */
int cj_proxy_input_jrc(cj_proxy_t *jp, uint64_t now, const cj_addr_t *from,
                       const uint8_t *msg, size_t len, cj_out_t *out,
                       cj_out_t *ack);

#endif
