/*
 * cojp/jrc.h - the Join Registrar/Coordinator engine (RFC 9031 sections
 * 7.3, 8.1-8.4): admits pledges and later updates their parameters.
 *
 * Registry and durable state live behind cj_jrc_store_t, which the host
 * implements (SQLite, PostgreSQL, or memory in tests and the simulator:
 * cojp/jrc_memstore.h).  The engine keeps derived OSCORE contexts in a
 * caller-provided table of slots (least recently used first to go), so
 * the store is asked for a pledge only when its context is not cached.
 *
 * Join exchange.  A request is looked up by its OSCORE 'kid context' (the
 * pledge identifier, or the ID Context a recovery established).  Unknown
 * pledges, blacklisted pledges, failed verification and replays are
 * dropped silently (section 7.3.2).  A verified request that is not a
 * POST gets a protected 4.05, one whose Uri-Path is not exactly "j" a
 * protected 4.04 (both without payload; section 8.1.1 defines only POST
 * to /j).  A verified Join_Request whose parameters cannot be acted upon
 * gets a protected 4.00 (Diagnostic Response) with an
 * Unsupported_Configuration (section 8.3.2):
 *   - malformed object: what cj_cojp_join_request_decode() reports (no
 *     payload when it cannot name a parameter);
 *   - network identifier other than cfg.network_id (when one is
 *     configured): code Unsupported (0), label 5, addinfo the received
 *     network identifier as a CBOR byte string;
 *   - role the registry does not allow: code Unsupported (0), label 1,
 *     addinfo the requested role as a CBOR unsigned integer.
 * Otherwise the JRC answers 2.04 with a Configuration: the current
 * link-layer key set, a short identifier the store guarantees unique
 * (with lease_time when cfg.lease_hours is set), the JRC address when
 * configured, the blacklist when not empty and the join rate when not
 * UINT32_MAX.  Responses carry the JRC's own Partial IV, so nonce
 * uniqueness rests only on the persisted sender sequence number.  Every
 * write a response depends on (short-id lease, join record, sequence
 * number reservation, replay window) is handed to the store before the
 * response is returned (durable once the host commits; hosts send after
 * committing).  The request's Partial IV is claimed (accept_piv) first,
 * before the lease, the join record or a sequence number reservation, so
 * a replay that another engine's stale window let through changes
 * nothing in the store.  When a store call fails, nothing is sent and the
 * in-memory replay window is rolled back; the claimed request stays in
 * the pledge's slot, and its byte-identical retransmission (the pledge's
 * CoAP retransmission) is processed again by this engine without a new
 * claim, so it is answered as before.
 *
 * Atomicity.  The host's transaction is the unit of atomicity: a host
 * that wraps each input (or each batch, group commit) in a transaction
 * and rolls it back when the engine reports a store failure leaves no
 * trace of the failed request.  Outside a transaction (or when the host
 * commits a batch in which one request failed), each successful call
 * stays: the claim makes the Partial IV unusable for other engines and
 * for this engine after a restart (the pledge's next attempt, with a new
 * Partial IV, gets through), and a lease or join record written before a
 * later failure is idempotent and redone by the retransmission.
 *
 * Retransmissions through a stateless JP arrive as new NON messages with
 * a new token but the same OSCORE message: a byte-identical repeat of a
 * pledge's last request (OSCORE option value and payload) from the
 * source address the request came from is answered with the cached
 * protected response under the new token and a new MID, without OSCORE
 * processing or state change; the same bytes from any other address are
 * dropped (the cache must not reflect responses to third parties).  A
 * request that arrives CON (a 6LBR pledge talking to the JRC directly) is
 * answered with a piggybacked ACK instead.  Responses under the pledge's
 * current context (2.04, 4.00, 4.04, 4.05) are persisted with
 * save_repeat before they are returned, in the unit of work of their
 * accept_piv and join record, so the cache survives a restart: a JRC
 * that crashed after committing an admission answers the pledge's
 * retransmission with the identical bytes instead of dropping it as a
 * replay.  The 4.01 of a recovery is cached in memory only (its R2 is
 * too).
 *
 * Parameter updates.  The JRC acts as CoAP client (section 8.2): CON POST
 * to the node's /j with a Configuration (OSCORE kid "JRC", no kid
 * context), retransmitted per RFC 7252 section 4.2 with cfg.timing.
 * Network-wide K2 rotation, short identifier reassignment, eviction and
 * readmission are campaigns over the store's list of joined nodes with at
 * most CJ_JRC_MAX_INFLIGHT exchanges in flight.  A rekey reaches every 6LN
 * first; the 6LBRs are sent the new set only once every 6LN exchange has
 * settled, since a 6LBR switches at once (section 8.4.3.1).  A verified
 * 2.04 records the node as acknowledged, a protected error response or
 * MAX_RETRANSMIT retransmissions without answer as not reached.  RST and
 * empty ACK are unauthenticated and only advisory: an RST changes
 * nothing (retransmissions go on), an empty ACK stops retransmitting to
 * wait for a separate response until the give-up time fixed when the
 * request was first sent (MAX_TRANSMIT_WAIT of RFC 7252 section 4.8.2
 * with the drawn first timeout), never later.  Timeouts saturate, so any
 * cfg.timing is safe.  Campaign numbers run 1..CJ_JRC_MAX_CAMPAIGN and
 * then wrap to 1; never 0.
 *
 * Recovery (section 8.3.3, RFC 8613 Appendix B.2).  With cfg.recovery
 * set, a verified Join Request under the pledge-identifier context is
 * answered with a 4.01 protected under ID Context R2 || ID1 (R2: 8 fresh
 * random bytes, cached in the pledge's slot, sent alone as 'kid
 * context').  The pledge's next Join Request uses ID Context R2 || R3; the
 * engine maps R2 back to the pledge, verifies, persists the new ID
 * Context (save_context) and processes the Join Request under it.  Only
 * the most recent R2 of a pledge is kept, and only while its slot is
 * cached; a slot holding an R2 is evicted only when every slot holds one
 * (unverified requests cannot push it out).  A pledge whose record
 * already holds a recovered ID Context is not served under the
 * pledge-identifier context outside recovery mode (the stored sequence
 * number belongs to the recovered context, so answering could reuse a
 * nonce): such requests are dropped.  In recovery mode such a request is
 * answered (4.01, new R2) only when its Partial IV is above the stored
 * window of the recovered context and not seen before under the pledge
 * identifier while the slot is cached: the pledge's sequence number
 * keeps counting across contexts, so an older one is a captured request
 * being replayed, which must not replace the pending R2 or the repeat
 * cache of the genuine pledge.
 *
 * A record marked must_recover (its sequence number mark and replay
 * window may be older than what the pledge and the network saw: a
 * registry restored from a backup) is treated as in recovery mode
 * whatever cfg.recovery says, and for every context: a verified request
 * under its pledge-identifier context or under its stored recovered ID
 * Context gets the 4.01, ID1 being the ID Context the request used.  The
 * 4.01 and everything after it are protected with keys derived from a
 * fresh R2, so a request replayed against the stale window cannot make
 * the engine reuse a nonce under an old key.  Until save_context clears
 * the mark, campaigns record the node as not reached without sending it
 * anything (the stored sequence number cannot be trusted either).
 *
 * PSK changes.  An operator may give a provisioned pledge a new PSK or
 * remove it from the registry while engines serve it (RFC 9031 section
 * 3: recommissioning a device to a new owner changes its PSK).  Its old
 * context then dies: the store calls name the context by its PSK too and
 * refuse the old one (CJ_ERR_NOTFOUND), so a cached slot never answers
 * or updates anyone under it again; the engine drops the request and
 * forgets the slot.  A request under the new PSK does not verify under
 * a cached old context: when a request naming a cached pledge cannot be
 * verified (or is dropped as naming a context the slot no longer runs),
 * the engine reads the pledge's record again, at most once per
 * CJ_JRC_RECHECK_MS per slot, and when the record holds another PSK it
 * reloads the slot and processes the request once more under it
 * (requests of up to CJ_JRC_SCRATCH bytes; a longer one is dropped and
 * its retransmission finds the new context).  A record that is gone
 * empties the slot.  A campaign that finds the slot of a node whose
 * record it just read holding another PSK reloads it likewise.
 *
 * Several instances, one store.  Any number of engines (threads,
 * processes, machines) may serve one network from one store, each with
 * its own slot cache.  Two store calls carry all mutable OSCORE state and
 * are atomic in the store, so no cache needs to be coherent for safety:
 *   - reserve_ssn hands a block of sender sequence numbers to one engine
 *     alone (stored mark = max(mark, from) + count, the engine gets the
 *     block's first number and jumps its sequence number forward when
 *     another engine reserved past it).  Blocks of different engines
 *     never overlap, so no two responses or update requests ever carry
 *     the same Partial IV under one key, whichever engine sent them
 *     (RFC 8613 section 7.2.1, RFC 9031 section 7.3.1).
 *   - accept_piv records a request's Partial IV in the stored replay
 *     window and refuses one already recorded (or older than the
 *     window): a request accepted by one engine and replayed to another
 *     is dropped by the second (RFC 8613 section 7.4).  It is the first
 *     store call a verified request causes, before the short-id lease,
 *     the join record and any sequence number reservation, so a replay
 *     reaching an engine whose cached window is stale is refused before
 *     it can restart a lease or rewrite a join record.  A failure after
 *     it leaves the Partial IV claimed; the engine that claimed it
 *     answers the byte-identical retransmission (see Atomicity above),
 *     other engines drop it and the pledge's next attempt gets through.
 *   - both name the context the engine's cached one is: its PSK and its
 *     ID Context, and fail with CJ_ERR_NOTFOUND once the record holds
 *     another one (a recovery done by another engine, a new PSK given by
 *     the operator, the pledge removed): the engine then drops the
 *     request and forgets the slot, so the retransmission is served from
 *     the store's current record.  This also keeps the reset of the mark
 *     to 0 by save_context and by a PSK change safe: no block of the old
 *     context is handed out after it, and no request is answered under a
 *     context the registry no longer holds.
 * With one engine these are the single-instance guarantees above.  With
 * several, pledges see the Partial IVs of different engines interleaved;
 * a pledge's replay window accepts a Partial IV only within
 * CJ_OSCORE_REPLAY_WINDOW of the highest it saw, so engines sharing a
 * store should reserve one number at a time (cfg.ssn_block = 1: one
 * store write per protected message): the numbers then reach the pledge
 * in the order they were reserved.  The repeat cache is shared through
 * the store (save_repeat; lookup returns it): a retransmission that
 * reaches another engine than the first is answered by it with the
 * cached bytes, whether it loads the pledge afresh or finds its own
 * cached window stale (accept_piv refuses the Partial IV, and the engine
 * then re-reads the record's repeat cache).  What stays per engine: a
 * claimed request not answered yet (see Atomicity), the recovery nonce R2 (request #2 of Appendix
 * B.2 must reach the engine that sent R2), the key set and the blacklist
 * (cfg; hosts load them from the store), and the cached registry fields
 * (role, joined, short id), which decide nothing the store does not
 * decide again.
 *
 * Threading: none.  The engine must not be moved in memory after
 * cj_jrc_init() (cached contexts point back into it).  Engines sharing a
 * store each need their own store handle when the store says so.
 */
#ifndef COJP_JRC_H
#define COJP_JRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cojp/cojp.h"
#include "cojp/engine.h"
#include "cojp/oscore.h"
#include "cojp/port.h"

#ifndef CJ_JRC_MAX_ID
#define CJ_JRC_MAX_ID 8 /* bytes of a pledge identifier (EUI-64) */
#endif
#ifndef CJ_JRC_REQ_CACHE
#define CJ_JRC_REQ_CACHE 96 /* bytes of a request kept to spot repeats */
#endif
/* Bytes of a cached protected response from the code byte on: enough
 * for the largest Configuration the engine can build (4 keys, short id
 * with lease, JRC address, CJ_COJP_MAX_BLACKLIST ids of CJ_JRC_MAX_ID
 * bytes, join rate: about 230 bytes) plus OSCORE option and tag. */
#ifndef CJ_JRC_RESP_CACHE
#define CJ_JRC_RESP_CACHE 288
#endif
#ifndef CJ_JRC_MAX_INFLIGHT
#define CJ_JRC_MAX_INFLIGHT 32 /* parameter updates in flight at once */
#endif
/* Bytes of a protected parameter update request kept for retransmission
 * (header, 8-byte token, options, same Configuration bound as above). */
#ifndef CJ_JRC_UPDATE_MAX
#define CJ_JRC_UPDATE_MAX 320
#endif
/* Bytes of the scratch buffers holding an unprotected message; a
 * request that does not fit is dropped. */
#ifndef CJ_JRC_SCRATCH
#define CJ_JRC_SCRATCH (CJ_COAP_MAX_TOKEN + CJ_JRC_UPDATE_MAX)
#endif
/* Milliseconds before a campaign step that failed on the store is tried
 * again. */
#ifndef CJ_JRC_STORE_RETRY_MS
#define CJ_JRC_STORE_RETRY_MS 1000u
#endif
/* Milliseconds before a cached pledge's record is read again because a
 * request naming it could not be verified under the cached context (a
 * PSK the operator changed is picked up so, see "PSK changes" above);
 * bounds the store reads a flood of forged requests can cause to one
 * per cached pledge per this many milliseconds. */
#ifndef CJ_JRC_RECHECK_MS
#define CJ_JRC_RECHECK_MS 1000u
#endif
/* Sender sequence numbers one reserve_ssn call reserves by default: a
 * store write per that many protected messages of a pledge. */
#ifndef CJ_JRC_SSN_BLOCK
#define CJ_JRC_SSN_BLOCK 32u
#endif
#define CJ_JRC_NONCE_LEN 8 /* R2 and R3, RFC 9031 section 8.3.3 minimum */
/* Largest campaign number; the next one is 1 (returned as an int > 0). */
#define CJ_JRC_MAX_CAMPAIGN 0x7fffffffu

enum {
    CJ_JRC_EV_NONE = 0,
    CJ_JRC_EV_JOINED,          /* a pledge was admitted */
    CJ_JRC_EV_UPDATE_ACKED,    /* a node acknowledged a parameter update */
    CJ_JRC_EV_UPDATE_FAILED,   /* a node did not answer or refused */
    CJ_JRC_EV_CAMPAIGN_DONE,   /* every node of a campaign is settled */
    CJ_JRC_EV_REJECTED,        /* a 4.00/4.04/4.05 was sent to a pledge */
    CJ_JRC_EV_RECOVERY         /* a 4.01 with R2 was sent (section 8.3.3) */
};

/* Roles a pledge may be allowed (bit mask of 1 << CJ_COJP_ROLE_*). */
#define CJ_JRC_ALLOW_NODE (1u << 0)
#define CJ_JRC_ALLOW_6LBR (1u << 1)

/* The repeat cache of a pledge: its last answered request and the
 * protected response it got (see "Retransmissions" above), kept in the
 * pledge's slot and persisted with the admission (save_repeat), so that a
 * restarted engine, or another engine sharing the store, answers the
 * pledge's retransmission with the very same protected bytes (same
 * ciphertext and Partial IV: no new encryption, no nonce used twice).
 * Only the source the request came from (the JP it was relayed by) is
 * answered from it; a copy from anywhere else gets nothing. */
typedef struct cj_jrc_repeat {
    uint8_t req[CJ_JRC_REQ_CACHE];   /* OSCORE option value, then payload */
    uint16_t req_len;                /* 0: nothing cached */
    uint8_t req_opt_len;             /* how much of req is the option value */
    uint8_t resp[CJ_JRC_RESP_CACHE]; /* code byte, then what follows the
                                      * token (options, payload) */
    uint16_t resp_len;               /* 0: no response (nothing to repeat) */
    cj_addr_t from;                  /* source address of req */
} cj_jrc_repeat_t;

/* A registry entry as the store returns it. */
typedef struct cj_jrc_pledge {
    uint8_t id[CJ_JRC_MAX_ID];
    uint8_t id_len;
    uint8_t psk[16];
    uint8_t allowed_roles;      /* CJ_JRC_ALLOW_* */
    /* mutable OSCORE state, as last persisted */
    uint64_t ssn_reserved;      /* first sender sequence number not reserved */
    cj_oscore_replay_t replay;
    /* ID Context in use when it is not the pledge id (after recovery) */
    uint8_t id_context[CJ_OSCORE_MAX_ID_CONTEXT];
    uint8_t id_context_len;     /* 0: the pledge id */
    bool joined;
    uint8_t role;               /* role it joined with */
    uint16_t short_id;
    /* repeat cache as last saved (save_repeat) under the current ID
     * Context; lookup and lookup_context fill it (req_len 0: none),
     * next_joined may leave it empty */
    cj_jrc_repeat_t repeat;
    /* The derived material of the pledge-id context (cj_jrc_pledge_okm()
     * of psk and id), for a store that keeps it: the engine then sets the
     * context up without the HKDF derivation.  has_okm false: derived on
     * load.  Unused while id_context_len is not 0. */
    uint8_t okm[CJ_OSCORE_OKM_LEN];
    bool has_okm;
    /* The mutable state above cannot be trusted (a registry restored from
     * a backup, "Recovery" above): the pledge's next verified request
     * gets a recovery 4.01 whatever context it uses, and campaigns send
     * it nothing.  save_context clears it. */
    bool must_recover;
} cj_jrc_pledge_t;

/* Storage interface.  Every function returns CJ_OK, CJ_ERR_NOTFOUND where
 * noted, or CJ_ERR_STORAGE (any other negative value is treated alike).
 * A failed call must leave the store unchanged.  Writes become durable
 * when the host commits; a host must commit before it sends the
 * datagram that follows them.  The engine calls the store synchronously
 * from cj_jrc_input(), cj_jrc_poll() and the campaign starters only. */
typedef struct cj_jrc_store {
    void *ctx;
    /* Registry entry of pledge id (CJ_ERR_NOTFOUND if not provisioned). */
    int (*lookup)(void *ctx, const uint8_t *id, size_t id_len,
                  cj_jrc_pledge_t *out);
    /* Registry entry whose current ID Context is ctx_id (after recovery;
     * CJ_ERR_NOTFOUND if none). */
    int (*lookup_context)(void *ctx, const uint8_t *ctx_id, size_t len,
                          cj_jrc_pledge_t *out);
    /* The next three (and save_context) name the context the caller has
     * cached: the PSK it was derived from (psk, 16 bytes) and its ID
     * Context (ctx_id, ctx_len; ctx_len 0: the pledge id, i.e. no
     * recovered ID Context).  They fail with CJ_ERR_NOTFOUND, changing
     * nothing, when the pledge is unknown or its record holds another
     * PSK or another ID Context (a registry never gives a PSK out twice,
     * so a pledge removed and provisioned again is another context too).
     * Each is atomic against every other caller of the same store (see
     * "Several instances" above).
     *
     * Reserve count sender sequence numbers for the caller alone: with M
     * the stored ssn_reserved (first number not reserved), *first =
     * max(M, from) and M becomes *first + count.  count 0 only raises M
     * to from.  The caller may use [*first, *first + count). */
    int (*reserve_ssn)(void *ctx, const uint8_t *id, size_t id_len,
                       const uint8_t psk[16], const uint8_t *ctx_id,
                       size_t ctx_len, uint64_t from, uint64_t count,
                       uint64_t *first);
    /* Record Partial IV piv of an accepted request in the stored replay
     * window: CJ_ERR_REPLAY, changing nothing, when the stored window
     * rejects piv (cj_oscore_replay_check: already recorded, or older
     * than the window); otherwise piv is merged in (cj_oscore_replay_
     * update) and the stored window after the merge is copied to *w. */
    int (*accept_piv)(void *ctx, const uint8_t *id, size_t id_len,
                      const uint8_t psk[16], const uint8_t *ctx_id,
                      size_t ctx_len, uint64_t piv, cj_oscore_replay_t *w);
    /* Replace the pledge's persisted repeat cache with *r (r->req_len 0
     * or r->resp_len 0: clear it).  Called after the response was
     * protected and before it is returned, so it is part of the same
     * host transaction as the accept_piv, lease and join record of the
     * request it answers.  Context named as for reserve_ssn. */
    int (*save_repeat)(void *ctx, const uint8_t *id, size_t id_len,
                       const uint8_t psk[16], const uint8_t *ctx_id,
                       size_t ctx_len, const cj_jrc_repeat_t *r);
    /* Persist a new ID Context (recovery) with reset mutable state:
     * ssn_reserved 0, an empty replay window and no repeat cache.  psk
     * is the PSK the caller derived the new context from: CJ_ERR_NOTFOUND,
     * changing nothing, when the record holds another one (or the pledge
     * is unknown). */
    int (*save_context)(void *ctx, const uint8_t *id, size_t id_len,
                        const uint8_t psk[16], const uint8_t *ctx_id,
                        size_t ctx_len);
    /* A short identifier for the pledge, unique among live leases of the
     * network and never 0xfffe or 0xffff.  Without fresh: its current one
     * if it holds a live lease (the lease restarts at now), else a free
     * one.  With fresh: always a free one other than the current, whose
     * lease ends.  Leased until now + lease_hours (0: no expiry).
     * CJ_ERR_NOSPACE when none is free, CJ_ERR_NOTFOUND for an unknown
     * pledge. */
    int (*assign_short_id)(void *ctx, const uint8_t *id, size_t id_len,
                           uint64_t now_ms, uint32_t lease_hours, bool fresh,
                           uint16_t *short_id);
    /* Record an admission: joined, role and short id. */
    int (*record_join)(void *ctx, const uint8_t *id, size_t id_len,
                       uint8_t role, uint16_t short_id, uint64_t now_ms);
    /* End an admission (eviction): the node is no longer joined, so
     * next_joined skips it, and its short-id lease ends. */
    int (*release)(void *ctx, const uint8_t *id, size_t id_len);
    /* Campaign bookkeeping: iterate joined nodes in a stable order
     * (cursor starts at 0, *cursor advanced; CJ_ERR_NOTFOUND at the end;
     * each entry with its id, PSK, roles and join record at least),
     * a node's address (for any provisioned pledge; CJ_ERR_NOTFOUND when
     * none is known), and the outcome per node. */
    int (*next_joined)(void *ctx, uint64_t *cursor, cj_jrc_pledge_t *out);
    int (*node_address)(void *ctx, const uint8_t *id, size_t id_len,
                        cj_addr_t *addr);
    int (*record_update)(void *ctx, const uint8_t *id, size_t id_len,
                         uint32_t campaign, bool acked);
} cj_jrc_store_t;

/* Number of hash tables of the slot index: pledge id, recovered ID
 * Context, recovery nonce R2. */
#define CJ_JRC_INDEX_KEYS 3

/* One cached pledge context.  The caller allocates an array of these;
 * the engine owns their contents after cj_jrc_init().
 *
 * The slots also carry their own index, so finding a slot and choosing a
 * victim take constant time without memory beyond the array: chained
 * hash tables with slot_count buckets per key (bucket b's head is kept
 * in slot b, whatever that slot holds), and least-recently-used lists
 * (free slots; slots without a pending R2; slots with one) linked
 * through the slots.  Links are slot indices, CJ_JRC_NIL for none. */
#define CJ_JRC_NIL UINT32_MAX
typedef struct cj_jrc_slot {
    /* index (engine-internal; survives the slot's content) */
    uint32_t head[CJ_JRC_INDEX_KEYS]; /* bucket heads of bucket "this index" */
    uint32_t next[CJ_JRC_INDEX_KEYS]; /* next slot in this slot's buckets */
    uint32_t lru_prev, lru_next;      /* neighbours in this slot's list */
    /* content (cleared together, from here to the end) */
    bool used;
    uint64_t last_use;
    cj_jrc_pledge_t rec;        /* rec.repeat: last request and response */
    cj_oscore_ctx_t osc;        /* context of the current ID Context */
    bool req_claimed;           /* rec.repeat.req's Partial IV is claimed on
                                 * the store but not answered (resp_len 0) */
    /* recovery: the last R2 sent to this pledge (RFC 8613 B.2 step 2) */
    uint8_t r2[CJ_JRC_NONCE_LEN];
    bool r2_valid;
    /* Partial IVs answered under the pledge-id context while the record
     * holds a recovered one (memory only; see Recovery above) */
    cj_oscore_replay_t old_replay;
    /* engine time before which an unverifiable request does not make the
     * engine read the record again (CJ_JRC_RECHECK_MS) */
    uint64_t recheck_at;
} cj_jrc_slot_t;

/* Link-layer key handed out in Configurations (Key ID Mode 0x01, so
 * key_id 1..254, no key_addinfo; section 8.4.3.3). */
typedef struct cj_jrc_key {
    uint8_t key_id;
    uint8_t key_usage;
    uint8_t key[16];
} cj_jrc_key_t;

typedef struct cj_jrc_cfg {
    const uint8_t *network_id;           /* NULL/0: any is accepted */
    size_t network_id_len;
    cj_jrc_key_t keys[CJ_COJP_MAX_KEYS]; /* K1 then K2, say */
    uint8_t key_count;                   /* 0: no key set sent */
    const uint8_t *jrc_address;          /* 16 bytes, or NULL */
    uint32_t join_rate;                  /* UINT32_MAX: not sent */
    uint32_t lease_hours;                /* 0: no lease_time sent */
    const uint8_t *const *blacklist;     /* pledge ids, may be NULL */
    const size_t *blacklist_lens;
    size_t blacklist_count;              /* <= CJ_COJP_MAX_BLACKLIST */
    cj_coap_timing_t timing;             /* zero: RFC 9031 Table 1 */
    bool recovery;                       /* section 8.3.3 mode */
    uint32_t first_campaign;             /* number of the first campaign
                                          * (0: 1); a host persists the
                                          * next number so numbers stay
                                          * unique across restarts */
    uint32_t ssn_block;                  /* sender sequence numbers per
                                          * reserve_ssn call (0:
                                          * CJ_JRC_SSN_BLOCK); 1 when
                                          * engines share the store */
    cj_jrc_slot_t *slots;                /* caller-owned context cache */
    size_t slot_count;                   /* 1 .. CJ_JRC_NIL - 1 */
} cj_jrc_cfg_t;

typedef struct cj_jrc_stats {
    unsigned long lookups;       /* store lookup/lookup_context calls
                                  * (context cache misses) */
    unsigned long joins;         /* 2.04 sent for a new request */
    unsigned long repeats;       /* cached responses re-sent */
    unsigned long diagnostics;   /* 4.00 sent */
    unsigned long refused;       /* 4.04/4.05 sent */
    unsigned long recoveries;    /* 4.01 with R2 sent */
    unsigned long dropped;       /* silently dropped datagrams */
    unsigned long store_errors;  /* store calls that failed */
    unsigned long updates_sent;  /* update requests incl. retransmissions */
} cj_jrc_stats_t;

/* One parameter update exchange (engine-internal). */
typedef struct cj_jrc_update {
    uint8_t state;               /* free, awaiting answer, outcome pending */
    bool acked;                  /* outcome when pending the store */
    uint8_t id[CJ_JRC_MAX_ID];
    uint8_t id_len;
    cj_addr_t to;
    uint16_t mid;
    uint8_t token[8];
    uint8_t retransmits;
    uint32_t timeout_ms;
    uint64_t deadline;
    uint64_t give_up;            /* fixed at the first send: no verified
                                  * answer by then = not reached */
    cj_oscore_req_t bind;        /* what the response is bound to */
    cj_oscore_ctx_t osc;         /* copy for verifying the response only */
    uint8_t msg[CJ_JRC_UPDATE_MAX];
    uint16_t msg_len;
} cj_jrc_update_t;

/* A Confirmable separate response the engine acknowledged (engine-
 * internal): a copy of it from the same node, within the time the node
 * may retransmit it, gets the same empty ACK again (RFC 7252 section
 * 4.5). */
typedef struct cj_jrc_acked {
    cj_addr_t from;
    uint16_t mid;
    uint64_t until;              /* 0: unused */
} cj_jrc_acked_t;

/* The engine.  Fields are the engine's; hosts read only stats and the
 * ev_* fields. */
typedef struct cj_jrc {
    /* Subject of the event last reported in cj_out_t.event, valid until
     * the next call: the pledge (JOINED, UPDATE_*, REJECTED, RECOVERY),
     * its short id (JOINED) and the campaign (UPDATE_*, CAMPAIGN_DONE). */
    uint8_t ev_id[CJ_JRC_MAX_ID];
    uint8_t ev_id_len;
    uint16_t ev_short_id;
    uint32_t ev_campaign;
    cj_jrc_stats_t stats;

    cj_jrc_cfg_t cfg;
    cj_jrc_store_t store;
    const cj_platform_t *platform;
    cj_platform_t ssn_port;      /* counter id = slot index; loads only
                                  * (reserve_ssn is called before protect) */
    cj_coap_timing_t timing;
    cj_jrc_key_t keys[CJ_COJP_MAX_KEYS];
    uint8_t key_count;
    uint8_t bl[CJ_COJP_MAX_BLACKLIST][CJ_JRC_MAX_ID];
    uint8_t bl_len[CJ_COJP_MAX_BLACKLIST];
    uint8_t bl_count;
    uint16_t mid;
    uint64_t use_clock;          /* LRU stamp */
    /* slot lists (first = least recently used, last = most): free
     * slots, slots without a pending R2, slots holding one */
    uint32_t lru_first[3];
    uint32_t lru_last[3];

    /* campaign */
    bool camp_active;
    uint8_t camp_kind;
    uint8_t camp_phase;
    uint32_t camp_number;
    uint32_t camp_seq;
    uint64_t camp_cursor;
    uint64_t camp_retry_at;
    uint8_t camp_target[CJ_JRC_MAX_ID];
    uint8_t camp_target_len;
    uint16_t camp_target_short;
    cj_jrc_update_t upd[CJ_JRC_MAX_INFLIGHT];
    cj_jrc_acked_t acked[CJ_JRC_MAX_INFLIGHT];
    uint8_t acked_next;          /* ring position of the next record */

    /* scratch */
    uint8_t plain[CJ_JRC_SCRATCH];
    uint8_t body[CJ_JRC_SCRATCH];
} cj_jrc_t;

/* The derived material of pledge id's OSCORE context under psk, as the
 * engine derives it (section 7.3: the JRC's Sender ID "JRC", the pledge's
 * empty, ID Context the pledge id), for a store that keeps it with the
 * PSK (cj_jrc_pledge_t.okm).  It is as secret as the PSK. */
int cj_jrc_pledge_okm(const uint8_t psk[16], const uint8_t *id, size_t id_len,
                      uint8_t okm[CJ_OSCORE_OKM_LEN]);

/* Initialise with a configuration, a store and a platform (may be NULL:
 * time is passed in, random bytes come from the crypto port).  The cfg
 * pointers (network id, JRC address, slots) must outlive the engine; the
 * key set and blacklist are copied.  The slots are cleared.  Errors:
 * CJ_ERR_INVALID (missing store function, no slot, key or blacklist out
 * of bounds, one key value given with usages of different MIC lengths:
 * section 8.4.3.3), CJ_ERR_CRYPTO (no randomness). */
int cj_jrc_init(cj_jrc_t *jrc, const cj_jrc_cfg_t *cfg,
                const cj_jrc_store_t *store, const cj_platform_t *platform);

/* A datagram arrived (msg is modified: decrypted in place).  Returns 1
 * when out carries a datagram and/or an event, 0 when nothing is to be
 * done (dropped, or an ACK absorbed without outcome). */
int cj_jrc_input(cj_jrc_t *jrc, uint64_t now, const cj_addr_t *from,
                 uint8_t *msg, size_t len, cj_out_t *out);

/* Time passed: emits parameter update requests, retransmissions and
 * campaign events, one datagram or event per call while it returns 1. */
int cj_jrc_poll(cj_jrc_t *jrc, uint64_t now, cj_out_t *out);
/* When poll has work next (0: now; CJ_TIME_NEVER: nothing pending). */
uint64_t cj_jrc_next_timer(const cj_jrc_t *jrc);

/* Start a network-wide rekey: the new key set (1..CJ_COJP_MAX_KEYS keys,
 * key_id 1..254) replaces cfg.keys in every Configuration from now on and
 * is sent to every joined node (6LNs first, 6LBRs last, section 8.4.3.1).
 * Returns the campaign number (> 0), CJ_ERR_BUSY while another campaign
 * runs, CJ_ERR_INVALID for a bad key set (as for cj_jrc_init: also one
 * key value under usages of different MIC lengths). */
int cj_jrc_rekey(cj_jrc_t *jrc, uint64_t now, const cj_jrc_key_t *keys,
                 size_t count);
/* Give one node a new short identifier (parameter update carrying the
 * Short_Identifier alone).  Returns the campaign number, CJ_ERR_BUSY,
 * CJ_ERR_NOTFOUND (unknown or not joined), CJ_ERR_STORAGE or
 * CJ_ERR_NOSPACE (no free short id). */
int cj_jrc_reassign(cj_jrc_t *jrc, uint64_t now, const uint8_t *id,
                    size_t id_len);
/* Evict a node: it is released in the store, added to the blacklist, sent
 * its short identifier with lease_time 0, and the rest of the network is
 * rekeyed with a fresh random key set (same usages, key ids moved past
 * the current ones) and the new blacklist.  Returns the campaign number,
 * CJ_ERR_BUSY, CJ_ERR_NOTFOUND, CJ_ERR_NOSPACE (blacklist full) or
 * CJ_ERR_STORAGE.  The host should persist the blacklist (it is read from
 * cfg at init). */
int cj_jrc_evict(cj_jrc_t *jrc, uint64_t now, const uint8_t *id,
                 size_t id_len);
/* Lift an eviction: id leaves the blacklist and every joined node is sent
 * the new blacklist alone (present even when empty, which clears the
 * node's list: section 8.4.2); no keys change.  The node may then join
 * again.  Returns the campaign number, CJ_ERR_BUSY, CJ_ERR_NOTFOUND (id
 * not blacklisted) or CJ_ERR_INVALID.  The host should persist the
 * blacklist (it is read from cfg at init). */
int cj_jrc_readmit(cj_jrc_t *jrc, uint64_t now, const uint8_t *id,
                   size_t id_len);

#endif
