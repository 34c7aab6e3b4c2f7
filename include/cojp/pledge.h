/*
 * cojp/pledge.h - the pledge engine (RFC 9031 sections 7.3, 8.1, 8.2,
 * 8.3, 8.4.3 and 8.4.4): a device joining a 6TiSCH network and, once
 * joined, the CoAP server of the parameter update exchange.
 *
 * Life cycle:
 *   cj_pledge_init()     derive the OSCORE context from the PSK (section
 *                        7.3) and restore the mutable OSCORE state from the
 *                        platform's persistent counters;
 *   cj_pledge_add_jp()   offer Join Proxies learnt from Enhanced Beacons
 *                        (or configured); attempts rotate over them;
 *                        cj_pledge_remove_jp() withdraws one;
 *   cj_pledge_start()    begin joining; poll() then emits the Join Request
 *                        (CON POST, options Uri-Host "6tisch.arpa",
 *                        OSCORE, protected Uri-Path "j", Proxy-Scheme
 *                        "coap"; payload Join_Request) and its
 *                        retransmissions with the section 7.2 settings;
 *   cj_pledge_input()    any datagram; anything that is not a valid OSCORE
 *                        message for this context is dropped silently
 *                        (section 7.3.2), with no state change;
 *   cj_pledge_poll()     retransmissions, next attempts, lease and guard
 *                        time expiry, queued events.
 *
 * Join attempts.  Each attempt is one Join Request (new token of 4 random
 * bytes, message ID + 1, new OSCORE sequence number) sent to the next
 * Join Proxy candidate in turn, so consecutive attempts go to different
 * JPs (and networks) when more than one is known (sections 8.1.1 and
 * 8.3.1).  Retransmissions of one attempt are byte-identical; timeouts
 * start at ACK_TIMEOUT * [1, ACK_RANDOM_FACTOR] and double, up to
 * MAX_RETRANSMIT (RFC 7252 section 4.2).  An attempt ends with:
 *   - a protected 2.04 carrying a usable Configuration: JOINED;
 *   - a protected 2.04 whose Configuration cannot be acted upon:
 *     REJECTED, and the next Join_Request carries the
 *     Unsupported_Configuration naming the parameter (section 8.3.1);
 *   - any other protected response (4.00 Diagnostic Response, ...):
 *     REJECTED;
 *   - no verified response after the last retransmission: TIMEOUT;
 *   - a protected 4.01 naming a new 'kid context' R2 (recovery, below):
 *     RECOVERY.
 * Every one of these but JOINED starts the next attempt at once, unless
 * max_join_attempts attempts were made: then FAILED (the host should
 * signal it out of band, section 8.1.1).  A response matches the
 * outstanding request by token (and message ID when it is an ACK); a
 * verified CON response is acknowledged with an empty ACK.  Unprotected
 * responses, RST and anything failing OSCORE are ignored.
 *
 * A Configuration is usable when every link-layer key has a key usage
 * listed in cfg.key_usages (16-byte keys are guaranteed by the codec),
 * no key value is given usages of two MIC lengths (section 8.4.3.3), a
 * Join Response carries at least one key, a Join Response does not give
 * the short identifier a lease of 0, and every blacklist entry fits
 * CJ_PLEDGE_MAX_BLACKLIST_ID.  An invalid short identifier (not 2 bytes,
 * or 0xfffe/0xffff) is silently ignored as section 8.4.4 requires: the
 * object is used without it (a Join Response then joins without a short
 * identifier; an update keeps the current one).  What is refused is
 * reported (section 8.4.5) as code UNSUPPORTED (0) or MALFORMED (1), the
 * parameter's label and as addinfo the refused value in its parameter's
 * structure: the first refused key as a key set of one ([key_id,
 * key_usage, key_value, ?key_addinfo]), [identifier, 0] for a lease of
 * 0; null for a Join Response without keys and for a blacklist entry
 * longer than the node keeps (it can never act on such entries; null
 * has the JRC leave the blacklist out), or for a value longer than
 * CJ_PLEDGE_ADDINFO_MAX.  Errors the codec finds carry the value as
 * received.
 *
 * Parameter updates (section 8.2; joined, and afterwards for duplicates).
 * A request whose OSCORE 'kid' is "JRC" is verified against the replay
 * window, the window is made durable, and the node answers in an ACK
 * (piggybacked; NON requests get a NON) protected with the request's
 * nonce: 2.04 without payload after applying the Configuration, 4.00 with
 * an Unsupported_Configuration if it cannot be acted upon, 4.04 for a
 * Uri-Path other than "j", 4.05 for a method other than POST.  A
 * duplicate of the last CON request answered (same source address,
 * message ID, Partial IV and authentication tag) gets the cached response
 * bytes again, to that source only, without any processing (RFC 7252
 * section 4.5).  A duplicate NON request is not answered again: its
 * Partial IV is in the replay window, so it is dropped silently (RFC 7252
 * section 4.5 lets a server ignore duplicate NONs).  Parameters absent
 * from an update keep their values.
 *   - link-layer key set: a 6LN installs the set for reception and keeps
 *     sending with the current set until cj_pledge_rx_used() reports a
 *     frame verified under a key_id of the new set that the current set
 *     does not use; it then switches (KEYS_SWITCHED) and removes the old
 *     set COJP_REKEYING_GUARD_TIME later (section 8.4.3.2).  A 6LBR
 *     switches at once (UPDATED, then KEYS_SWITCHED from poll) and
 *     removes the old set after the guard time (section 8.4.3.1).  A set
 *     equal to the one in use changes nothing.  The JRC must give new
 *     keys new key_ids.
 *   - short identifier: replaces the old one; its lease runs lease_time
 *     hours from reception (absent: no limit, section 8.4.4), measured
 *     on the `now` the host passes in: a TSCH host must derive `now`
 *     from the Absolute Slot Number (ASN times the slot duration), the
 *     only time reference section 8.4.4.1 allows for it.  Lease 0,
 *     or expiry seen by poll, removes it: LEASE_EXPIRED and a new join
 *     (the keys stay until the new Configuration replaces them).  When
 *     the same update also switched a 6LBR's keys, KEYS_SWITCHED is
 *     queued and delivered by the next poll().
 *   - JRC address, blacklist (replaces the old list), join rate.
 *
 * Recovery (section 8.3.3, RFC 8613 Appendix B.2).  A protected 4.01 to
 * the Join Request whose OSCORE option carries a 'kid context' R2 of
 * CJ_PLEDGE_RECOVERY_NONCE_LEN bytes other than the ID Context in use
 * (ID1) is verified under a context derived with ID Context R2 || ID1.
 * If it verifies, the pledge draws R3, derives its context anew with ID
 * Context R2 || R3 and starts the next attempt at once through the same
 * JP (the JRC holds R2), sending R2 || R3 as 'kid context'.  R2 || R3 is
 * only on trial: nothing is written, and the ID1 context (with its replay
 * window) is kept as the fallback.  Following Appendix B.2 step 5 ("the
 * client marks the third security context to be used with this server"
 * once response #2 verifies), the pair becomes the context only when a
 * response under R2 || R3 verifies (a 2.04, or any other protected
 * response: the JRC stored the context before answering); it is then
 * made durable before the response is acted upon.  If the attempt under
 * R2 || R3 ends without such a response (TIMEOUT, a restart of joining
 * with cj_pledge_start(), or a reboot, which never persisted the trial),
 * the next attempt uses ID1 again, which a JRC still in recovery mode
 * answers with a new 4.01 and a new R2: a JRC that lost R2 (slot evicted,
 * restart, another instance, backup restored) cannot strand the pledge.
 * The sender sequence number keeps counting across every context change,
 * so no Partial IV is ever used twice under any context.
 *
 * Events (cj_out_t.event).  input() and rx_used() report at most one;
 * when more happen at once the others are queued and returned by the
 * following poll() calls (next_timer() is then 0):
 *   CJ_PLEDGE_EV_JOINED        a 2.04 with a usable Configuration arrived;
 *                              read it with the accessors below;
 *   CJ_PLEDGE_EV_UPDATED       a parameter update was applied;
 *   CJ_PLEDGE_EV_KEYS_SWITCHED outgoing traffic moved to the new key set;
 *   CJ_PLEDGE_EV_LEASE_EXPIRED the short identifier expired (or the JRC
 *                              set its lease to 0); the pledge rejoins;
 *   CJ_PLEDGE_EV_REJECTED      a join attempt ended with a protected error
 *                              response or an unusable Configuration;
 *   CJ_PLEDGE_EV_FAILED        max_join_attempts attempts failed;
 *   CJ_PLEDGE_EV_TIMEOUT       a join attempt got no verified response;
 *   CJ_PLEDGE_EV_RECOVERY      the JRC asked for a new context (above).
 *
 * Persistent state: counters of the platform port, ids counter_base + n:
 *   n = CJ_PLEDGE_CTR_SSN (0)    the OSCORE sender sequence number mark
 *       (cj_oscore_ctx_attach): every number below it may have been
 *       used, so a restart continues from it (RFC 8613 Appendix B.1.1).
 *       It only grows, across context changes too.
 *   n = CJ_PLEDGE_CTR_REPLAY (1) the replay window of messages from the
 *       JRC (Join Responses with their own Partial IV and parameter
 *       updates share it), written after every accepted message and
 *       before the engine acts on it or answers (RFC 9031 section 7.3.1):
 *       bits 63..24 highest Partial IV, bits 23..8 the low 16 bits of the
 *       window bitmap, bits 7..0 the tag of the context it belongs to (0
 *       for the pledge-identifier context).  0 (or another context's tag)
 *       means empty.  On restore the 16 older positions not stored count
 *       as seen, so a restart can only make the window stricter.
 *   n = CJ_PLEDGE_CTR_R2 (2), CJ_PLEDGE_CTR_R3 (3)  the two 8-byte
 *       recovery nonces of a confirmed pair, big-endian;
 *   n = CJ_PLEDGE_CTR_PAIR (4)  "pair valid" marker: a 64-bit check
 *       value computed from R2 and R3.  The ID Context is R2 || R3 only
 *       when all three exist and the marker matches the nonces; otherwise
 *       it is the pledge identifier.  Written R2, R3, marker last, and
 *       only after a response under R2 || R3 verified; then the replay
 *       window of the new context.  A write torn anywhere leaves a marker
 *       that does not match the nonces, so a restart never derives a
 *       context mixing an old and a new nonce (it falls back to the
 *       pledge identifier, which a JRC in recovery mode answers with a
 *       new R2).  Hosts reserve CJ_PLEDGE_COUNTERS ids from counter_base.
 * A failed store means nothing is sent and nothing is applied: a Join
 * Request is retried CJ_PLEDGE_STORAGE_RETRY_MS later, a response or
 * update is dropped with the window unchanged (the JRC's retransmission
 * or the pledge's own retransmission brings it again).
 *
 * Buffers: out->buf must hold the largest datagram the engine sends (a
 * Join Request, an update answer or an empty ACK); CJ_PLEDGE_TX_MAX is
 * enough.  msg passed to input() is modified: OSCORE decrypts in place,
 * and the engine wipes the decrypted region (the payload of the outer
 * message, which held the Configuration with its link-layer keys) before
 * input() returns, on every path, so no plaintext is left in the
 * caller's buffer.  msg and out->buf must not overlap.
 */
#ifndef COJP_PLEDGE_H
#define COJP_PLEDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cojp/cojp.h"
#include "cojp/engine.h"
#include "cojp/oscore.h"
#include "cojp/port.h"

#ifndef CJ_PLEDGE_MAX_JPS
#define CJ_PLEDGE_MAX_JPS 4 /* candidate Join Proxies remembered */
#endif
#ifndef CJ_PLEDGE_TX_MAX
/* bytes of the Join Request kept for retransmission: header, token,
 * options with a 24-byte kid context, Join_Request with a reported
 * Unsupported_Configuration, tag */
#define CJ_PLEDGE_TX_MAX 192
#endif
#ifndef CJ_PLEDGE_RESP_MAX
/* bytes of the cached parameter update response (8-byte token, 4.00 with
 * an Unsupported_Configuration) */
#define CJ_PLEDGE_RESP_MAX 96
#endif
#ifndef CJ_PLEDGE_MAX_NETID
#define CJ_PLEDGE_MAX_NETID 16 /* bytes of a network identifier */
#endif
#ifndef CJ_PLEDGE_ADDINFO_MAX
/* bytes of parameter_addinfo kept for an Unsupported_Configuration
 * report; a longer one is reported as null.  32 holds a refused
 * Link-Layer_Key in its key set structure (section 8.4.5). */
#define CJ_PLEDGE_ADDINFO_MAX 32
#endif
/* bytes of an encoded Unsupported_Configuration with one parameter:
 * array head, code, label (up to 9 bytes), addinfo */
#define CJ_PLEDGE_UNSUP_MAX (3 + 9 + CJ_PLEDGE_ADDINFO_MAX)
#ifndef CJ_PLEDGE_MAX_BLACKLIST_ID
#define CJ_PLEDGE_MAX_BLACKLIST_ID 8 /* bytes of a blacklisted id (EUI-64) */
#endif
#ifndef CJ_PLEDGE_KEY_ADDINFO_MAX
#define CJ_PLEDGE_KEY_ADDINFO_MAX 10 /* key_addinfo, section 8.4.3.3 */
#endif
#ifndef CJ_PLEDGE_STORAGE_RETRY_MS
/* ms before a Join Request whose sequence number reservation failed is
 * tried again */
#define CJ_PLEDGE_STORAGE_RETRY_MS 1000u
#endif

/* Recovery nonces R2 and R3 (section 8.3.3: at least 8 bytes). */
#define CJ_PLEDGE_RECOVERY_NONCE_LEN 8

/* Counter layout, relative to cfg.counter_base (see above). */
#define CJ_PLEDGE_CTR_SSN 0u
#define CJ_PLEDGE_CTR_REPLAY 1u
#define CJ_PLEDGE_CTR_R2 2u
#define CJ_PLEDGE_CTR_R3 3u
#define CJ_PLEDGE_CTR_PAIR 4u
#define CJ_PLEDGE_COUNTERS 5u

/* Frame classes for cj_pledge_tx_key() (Table 6). */
#define CJ_PLEDGE_K1 1 /* Enhanced Beacons */
#define CJ_PLEDGE_K2 2 /* DATA and ACKNOWLEDGMENT frames */

/* Join rate when the Configuration carries none (positive infinity). */
#define CJ_PLEDGE_JOIN_RATE_INFINITE UINT64_MAX

enum {
    CJ_PLEDGE_EV_NONE = 0,
    CJ_PLEDGE_EV_JOINED,
    CJ_PLEDGE_EV_UPDATED,
    CJ_PLEDGE_EV_KEYS_SWITCHED,
    CJ_PLEDGE_EV_LEASE_EXPIRED,
    CJ_PLEDGE_EV_REJECTED,
    CJ_PLEDGE_EV_FAILED,
    CJ_PLEDGE_EV_TIMEOUT,
    CJ_PLEDGE_EV_RECOVERY
};

typedef enum cj_pledge_state {
    CJ_PLEDGE_IDLE = 0, /* not started */
    CJ_PLEDGE_JOINING,  /* a Join Request is outstanding */
    CJ_PLEDGE_BACKOFF,  /* joining; the next Join Request is due at
                           next_timer() (at once, or after a failed
                           storage write) */
    CJ_PLEDGE_JOINED,
    CJ_PLEDGE_FAILED
} cj_pledge_state_t;

typedef struct cj_pledge_cfg {
    const uint8_t *pledge_id; /* EUI-64 or other, 1..CJ_OSCORE_MAX_ID_CONTEXT;
                                 at most 16 for recovery to work */
    size_t pledge_id_len;
    uint8_t psk[16];           /* not used when okm is given */
    /* RFC 9031 Appendix B: the OSCORE context of the pledge identifier,
     * derived beforehand from the PSK (cj_pledge_okm(): Sender Key,
     * Recipient Key, Common IV).  NULL: derive it from psk here (not
     * possible with CJ_OSCORE_DERIVE 0).  A pledge given okm takes no part
     * in recovery (section 8.3.3), which derives new contexts. */
    const uint8_t *okm;
    uint8_t role;              /* CJ_COJP_ROLE_* */
    const uint8_t *network_id; /* NULL: take it from the JP candidate */
    size_t network_id_len;
    cj_coap_timing_t timing;   /* all zero: RFC 9031 Table 1 */
    uint8_t max_join_attempts; /* 0: CJ_COJP_MAX_JOIN_ATTEMPTS */
    uint32_t rekey_guard_ms;   /* 0: CJ_COJP_REKEYING_GUARD_TIME */
    uint32_t counter_base;     /* ids counter_base .. + CJ_PLEDGE_COUNTERS-1 */
    uint16_t key_usages;       /* bit u: key usage u supported; 0: all of
                                  Table 6 */
} cj_pledge_cfg_t;

/* An installed link-layer key (RFC 9031 section 8.4.3). */
typedef struct cj_pledge_key {
    uint8_t key_id;
    uint8_t key_usage;
    uint8_t key[16];
    uint8_t addinfo[CJ_PLEDGE_KEY_ADDINFO_MAX];
    uint8_t addinfo_len;
} cj_pledge_key_t;

typedef struct cj_pledge_keyset {
    cj_pledge_key_t k[CJ_COJP_MAX_KEYS];
    uint8_t n;
} cj_pledge_keyset_t;

typedef struct cj_pledge_jp {
    cj_addr_t addr;
    uint8_t network_id[CJ_PLEDGE_MAX_NETID];
    uint8_t network_id_len;
} cj_pledge_jp_t;

/* Fields are the engine's; read them through the functions below. */
typedef struct cj_pledge {
    /* scalars first, then tables and buffers */
    uint8_t state;           /* cj_pledge_state_t */
    uint8_t role;
    uint8_t max_join_attempts;
    uint8_t max_retransmit;
    bool fixed_network_id;
    uint8_t pledge_id_len;
    uint8_t network_id_len;
    /* join exchange */
    uint8_t jp_count;
    uint8_t retransmits;     /* retransmissions of the current request */
    bool acked;              /* empty ACK seen: no more retransmissions */
    bool same_jp;            /* next attempt stays with jp_cur */
    /* Unsupported_Parameter for the next Join_Request (section 8.3.1) */
    bool report_unsupported;
    uint8_t jp_replace;      /* entry replaced when the table is full */
    uint8_t jp_next;         /* candidate of the next attempt */
    uint8_t jp_cur;          /* candidate of the current attempt */
    uint8_t attempts;        /* attempts started since start/rejoin */
    uint8_t unsup_len;       /* bytes of unsup */
    /* parameter update server: a cached response is valid */
    bool has_last;
    /* installed parameters */
    bool has_short_id;
    bool has_jrc_address;
    uint8_t blacklist_count;
    /* OSCORE: tag of the ID Context of osc for the persisted replay
     * window (0: pledge identifier) */
    uint8_t ctx_tag;
#if CJ_PLEDGE_RECOVERY
    /* Appendix B.2: has_pair when the durable ID Context is the confirmed
     * pair R2 || R3 in pair (else the pledge identifier).  rec_trial: osc
     * runs R2 || R3 (its ID Context) on trial; base_replay is the window
     * of the durable context to go back to.  has_psk: psk holds the PSK
     * (recovery possible; not when the context was given, cfg.okm). */
    bool has_pair;
    bool rec_trial;
    bool has_psk;
#endif
    uint8_t token[4];
    uint16_t mid;            /* message ID of the last request */
    uint16_t pending;        /* bit e: event e queued for poll */
    uint16_t tx_len;         /* bytes of tx (while JOINING) */
    uint16_t resp_len;
    uint16_t key_usages;
    uint32_t timeout_ms;     /* current retransmission timeout */
    uint32_t rekey_guard_ms;
    uint32_t counter_base;
    const cj_platform_t *platform;
    /* retransmission settings (RFC 7252 section 4.2): ACK_TIMEOUT and
     * ACK_TIMEOUT * (ACK_RANDOM_FACTOR - 1), capped at UINT32_MAX in
     * total */
    uint32_t ack_timeout_ms;
    uint32_t ack_spread_ms;
    uint64_t timer;          /* next poll deadline (BACKOFF, JOINING) */
    uint64_t old_keys_expire;
    uint64_t lease_expiry;       /* CJ_TIME_NEVER: no lease limit */
    uint64_t join_rate;          /* bytes/s; CJ_PLEDGE_JOIN_RATE_INFINITE */

    /* configuration */
    uint8_t pledge_id[CJ_OSCORE_MAX_ID_CONTEXT];
#if CJ_PLEDGE_RECOVERY
    uint8_t psk[16];         /* recovery derives new contexts from it */
#endif
    uint8_t network_id[CJ_PLEDGE_MAX_NETID];

    /* OSCORE: the one context with the JRC */
    cj_oscore_ctx_t osc;
#if CJ_PLEDGE_RECOVERY
    uint8_t pair[2 * CJ_PLEDGE_RECOVERY_NONCE_LEN];
    cj_oscore_replay_t base_replay;
#endif

    /* join exchange */
    cj_pledge_jp_t jps[CJ_PLEDGE_MAX_JPS];
    cj_oscore_req_t req;     /* binding of the outstanding request */
    uint8_t tx[CJ_PLEDGE_TX_MAX];
    cj_pledge_jp_t att;      /* JP and network id of the attempt */
    /* the Unsupported_Configuration to report, encoded */
    uint8_t unsup[CJ_PLEDGE_UNSUP_MAX];

    /* installed parameters */
    cj_pledge_jp_t joined;   /* JP and network id that joined */
    /* in this order: a switch moves keys and new_keys down by one */
    cj_pledge_keyset_t old_keys; /* rx only until old_keys_expire */
    cj_pledge_keyset_t keys;     /* in use for tx (and rx) */
    cj_pledge_keyset_t new_keys; /* installed for rx, not yet for tx */
    uint8_t short_id[CJ_COJP_SHORT_ID_LEN];
    uint8_t jrc_address[CJ_COJP_JRC_ADDRESS_LEN];
    uint8_t blacklist[CJ_COJP_MAX_BLACKLIST][CJ_PLEDGE_MAX_BLACKLIST_ID];
    uint8_t blacklist_len[CJ_COJP_MAX_BLACKLIST];

    /* parameter update server: the last CON request answered, known by
     * source, message ID (2 bytes, big-endian), Partial IV length and
     * value (zero-padded) and authentication tag; resp is the response
     * sent */
    cj_addr_t last_from;
    uint8_t last_key[3 + CJ_OSCORE_MAX_PIV_LEN + CJ_OSCORE_TAG_LEN];
    uint8_t resp[CJ_PLEDGE_RESP_MAX];
} cj_pledge_t;

/* Initialise.  Derives the OSCORE context (PSK as Master Secret, empty
 * salt, Sender ID empty, Recipient ID "JRC", ID Context = pledge id, or
 * R2 || R3 after a recovery), or takes it as given (cfg.okm), and
 * restores sequence number and replay window from the platform counters
 * (platform required).  A new cj_pledge_t on the same platform continues
 * where the old one stopped.  CJ_ERR_INVALID for bad lengths or role (or
 * no okm with CJ_OSCORE_DERIVE 0), CJ_ERR_STORAGE when loading fails. */
int cj_pledge_init(cj_pledge_t *p, const cj_pledge_cfg_t *cfg,
                   const cj_platform_t *platform);

/* Offer a Join Proxy (from an Enhanced Beacon) with the network it
 * advertises.  A known address updates its entry; beyond
 * CJ_PLEDGE_MAX_JPS the oldest is replaced.  CJ_ERR_INVALID when the
 * network identifier is longer than CJ_PLEDGE_MAX_NETID. */
int cj_pledge_add_jp(cj_pledge_t *p, const cj_addr_t *jp,
                     const uint8_t *network_id, size_t network_id_len);

/* Withdraw a Join Proxy offered before: its Enhanced Beacons now announce
 * proxy priority 0x7f, "never a Join Proxy" (RFC 9032 section 2), or the
 * host lost it.  The next attempts go to the other candidates; an
 * attempt under way keeps its JP until it ends.  With no candidate left
 * the pledge waits in BACKOFF, with no timer, until cj_pledge_add_jp()
 * offers one.  CJ_ERR_NOTFOUND for an address not offered. */
int cj_pledge_remove_jp(cj_pledge_t *p, const cj_addr_t *jp);

/* Begin (or restart) joining at time now with a fresh attempt count; the
 * first request is emitted by the next cj_pledge_poll().  CJ_ERR_STATE
 * without any JP candidate. */
int cj_pledge_start(cj_pledge_t *p, uint64_t now);

/* A datagram arrived from `from`.  Returns 1 when out holds a reply or an
 * event, 0 otherwise (including every silently dropped message). */
int cj_pledge_input(cj_pledge_t *p, uint64_t now, const cj_addr_t *from,
                    uint8_t *msg, size_t len, cj_out_t *out);

/* Time passed.  Returns 1 when out holds a datagram or an event (call
 * again), 0 when nothing is due. */
int cj_pledge_poll(cj_pledge_t *p, uint64_t now, cj_out_t *out);

/* Earliest time poll has work, or CJ_TIME_NEVER. */
uint64_t cj_pledge_next_timer(const cj_pledge_t *p);

/* Link-layer key use (section 8.4.3.2).  tx_key: the key of the set in
 * use for frame class CJ_PLEDGE_K1 or CJ_PLEDGE_K2 (first key whose usage
 * covers that class and whose key_id is not 0, the pairwise mode), NULL
 * if none.  rx_key: any installed key with that key_id (in use, new, or
 * old within the guard time; poll removes expired ones).  rx_used: the
 * host reports that a frame secured with key_id verified; a key_id of the
 * new set that the set in use lacks switches outgoing traffic to the new
 * set: returns 1 with KEYS_SWITCHED in out, else 0. */
const cj_pledge_key_t *cj_pledge_tx_key(const cj_pledge_t *p, uint8_t cls);
const cj_pledge_key_t *cj_pledge_rx_key(const cj_pledge_t *p, uint8_t key_id);
int cj_pledge_rx_used(cj_pledge_t *p, uint64_t now, uint8_t key_id,
                      cj_out_t *out);

/* ---- accessors (valid once JOINED; views live as long as *p) ---------- */

cj_pledge_state_t cj_pledge_get_state(const cj_pledge_t *p);

/* The key set in use; returns the count and points *keys at it. */
size_t cj_pledge_keys(const cj_pledge_t *p, const cj_pledge_key_t **keys);

/* The short identifier: CJ_OK with id (2 bytes) and the lease expiry
 * time in ms (CJ_TIME_NEVER: no limit; either pointer may be NULL), or
 * CJ_ERR_NOTFOUND. */
int cj_pledge_short_id(const cj_pledge_t *p, uint8_t id[2],
                       uint64_t *expiry);

/* The JRC address (16 bytes) or NULL when the JRC shares the 6LBR's. */
const uint8_t *cj_pledge_jrc_address(const cj_pledge_t *p);

/* Join rate in bytes per second, CJ_PLEDGE_JOIN_RATE_INFINITE if none. */
uint64_t cj_pledge_join_rate(const cj_pledge_t *p);

/* Blacklist: number of entries, and whether id is on it. */
size_t cj_pledge_blacklist_count(const cj_pledge_t *p);
bool cj_pledge_is_blacklisted(const cj_pledge_t *p, const uint8_t *id,
                              size_t len);

/* Network identifier and JP of the attempt that joined. */
const uint8_t *cj_pledge_network_id(const cj_pledge_t *p, size_t *len);
const cj_addr_t *cj_pledge_joined_jp(const cj_pledge_t *p);

/* For provisioning tools (RFC 9031 Appendix B): the derived OSCORE
 * context of a pledge (cj_pledge_cfg_t.okm) from its identifier and PSK.
 * Needs HKDF in the crypto port; a firmware that only joins never links
 * it.  CJ_ERR_INVALID for a bad identifier length, and always with
 * CJ_OSCORE_DERIVE 0. */
int cj_pledge_okm(const uint8_t *pledge_id, size_t pledge_id_len,
                  const uint8_t psk[16], uint8_t okm[CJ_OSCORE_OKM_LEN]);

#endif
