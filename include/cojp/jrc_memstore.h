/*
 * cojp/jrc_memstore.h - an in-memory cj_jrc_store_t for tests and the
 * simulator.  The registry is a caller-provided fixed array of entries;
 * nothing is allocated.  "Durable" means: kept in the struct, which
 * survives a simulated JRC restart (a fresh cj_jrc_t over the same
 * memstore) as long as the caller keeps it.
 *
 * Short identifiers are handed out sequentially from cj_jrc_memstore_t
 * .next_short (0x0001 after init), skipping 0x0000, the reserved 0xfffe
 * and 0xffff (RFC 9031 section 8.4.4.1) and every id held by a live
 * lease, so they are unique among live leases.
 *
 * PSKs are never given out twice (RFC 9031 section 3): a PSK replaced by
 * cj_jrc_memstore_set_psk() or held by a removed pledge stays in the
 * array as a retired entry (id_len 0, only the PSK kept; it counts
 * against cap), and adding or setting it again is refused.
 *
 * Fault injection: while fail_count is non-zero, every operation whose
 * bit (CJ_MEMSTORE_OP_*) is set in fail_mask fails with fail_rc
 * (CJ_ERR_STORAGE when 0; CJ_ERR_NOTFOUND plays a record that went
 * away), changes nothing and decrements fail_count.  calls[] counts every
 * operation by kind.  Lookups are linear scans: fine for thousands.
 */
#ifndef COJP_JRC_MEMSTORE_H
#define COJP_JRC_MEMSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cojp/jrc.h"

enum {
    CJ_MEMSTORE_OP_LOOKUP = 0,
    CJ_MEMSTORE_OP_LOOKUP_CONTEXT,
    CJ_MEMSTORE_OP_SAVE_SSN,       /* reserve_ssn */
    CJ_MEMSTORE_OP_SAVE_REPLAY,    /* accept_piv */
    CJ_MEMSTORE_OP_SAVE_CONTEXT,
    CJ_MEMSTORE_OP_ASSIGN_SHORT_ID,
    CJ_MEMSTORE_OP_RECORD_JOIN,
    CJ_MEMSTORE_OP_RELEASE,
    CJ_MEMSTORE_OP_NEXT_JOINED,
    CJ_MEMSTORE_OP_NODE_ADDRESS,
    CJ_MEMSTORE_OP_RECORD_UPDATE,
    CJ_MEMSTORE_OP_SAVE_REPEAT,
    CJ_MEMSTORE_OP_COUNT
};
#define CJ_MEMSTORE_FAIL_ALL ((1u << CJ_MEMSTORE_OP_COUNT) - 1u)
#define CJ_MEMSTORE_FAIL_WRITES                                            \
    ((1u << CJ_MEMSTORE_OP_SAVE_SSN) | (1u << CJ_MEMSTORE_OP_SAVE_REPLAY) | \
     (1u << CJ_MEMSTORE_OP_SAVE_CONTEXT) |                                 \
     (1u << CJ_MEMSTORE_OP_ASSIGN_SHORT_ID) |                              \
     (1u << CJ_MEMSTORE_OP_RECORD_JOIN) | (1u << CJ_MEMSTORE_OP_RELEASE) | \
     (1u << CJ_MEMSTORE_OP_RECORD_UPDATE) |                             \
     (1u << CJ_MEMSTORE_OP_SAVE_REPEAT))

/* One provisioned pledge. */
typedef struct cj_jrc_mementry {
    cj_jrc_pledge_t rec;
    bool has_lease;        /* rec.short_id is leased */
    uint64_t lease_until;  /* ms; UINT64_MAX: no expiry */
    uint64_t joined_at;    /* ms of the last record_join */
    cj_addr_t addr;        /* len 0: the pledge id is the address */
    /* outcome of the last parameter update recorded for this node */
    bool has_update;
    uint32_t update_campaign;
    bool update_acked;
    unsigned long acks;    /* record_update(acked) calls so far */
    unsigned long misses;  /* record_update(not acked) calls so far */
} cj_jrc_mementry_t;

typedef struct cj_jrc_memstore {
    cj_jrc_store_t store;          /* hand &store to cj_jrc_init() */
    cj_jrc_mementry_t *entries;    /* caller-owned array */
    size_t cap;
    size_t count;
    uint16_t next_short;           /* next candidate short id */
    uint32_t fail_mask;            /* CJ_MEMSTORE_OP_* bits */
    unsigned fail_count;           /* failures left to inject */
    int fail_rc;                   /* their error (0: CJ_ERR_STORAGE) */
    unsigned long calls[CJ_MEMSTORE_OP_COUNT];
} cj_jrc_memstore_t;

/* Set up over entries[0..cap) (cleared). */
void cj_jrc_memstore_init(cj_jrc_memstore_t *ms, cj_jrc_mementry_t *entries,
                          size_t cap);

/* Provision a pledge (id 1..CJ_JRC_MAX_ID bytes, 16-byte PSK).  CJ_OK,
 * CJ_ERR_NOSPACE (array full), CJ_ERR_INVALID (bad length, id already
 * provisioned), CJ_ERR_PSK_REUSED (another pledge holds this PSK, or it
 * was retired: RFC 9031 section 3 wants one per pledge); nothing is
 * added on failure. */
int cj_jrc_memstore_add(cj_jrc_memstore_t *ms, const uint8_t *id,
                        size_t id_len, const uint8_t psk[16],
                        uint8_t allowed_roles);

/* Give provisioned pledge id a new PSK (recommissioning, RFC 9031
 * section 3).  Everything kept for its old OSCORE context starts afresh
 * as for a pledge just added: sequence number mark 0, empty replay
 * window, no repeat cache, no recovered ID Context; it is no longer
 * joined (it must join under the new PSK), while its short-id lease, if
 * any, stays as it is, so that id is not handed to another pledge while
 * the device may still use it.  The old PSK is retired.  CJ_OK,
 * CJ_ERR_INVALID (psk NULL), CJ_ERR_NOTFOUND (not provisioned),
 * CJ_ERR_PSK_REUSED (psk is held by a pledge, this one included, or
 * retired), CJ_ERR_NOSPACE (no entry left for the retired PSK); nothing
 * changes on failure. */
int cj_jrc_memstore_set_psk(cj_jrc_memstore_t *ms, const uint8_t *id,
                            size_t id_len, const uint8_t psk[16]);

/* Remove provisioned pledge id (decommissioning); its PSK is retired and
 * its id may be provisioned again.  Refused with CJ_ERR_STATE while it
 * holds a short-id lease live at now_ms (the device may still use that
 * id: evict it first, which ends the lease, or wait for the lease to
 * end).  CJ_OK, CJ_ERR_NOTFOUND, CJ_ERR_STATE; nothing changes on
 * failure. */
int cj_jrc_memstore_remove(cj_jrc_memstore_t *ms, const uint8_t *id,
                           size_t id_len, uint64_t now_ms);

/* Set the address node_address() returns for a pledge (default: the
 * pledge id bytes).  CJ_OK or CJ_ERR_NOTFOUND. */
int cj_jrc_memstore_set_address(cj_jrc_memstore_t *ms, const uint8_t *id,
                                size_t id_len, const cj_addr_t *addr);

/* The entry of a pledge, or NULL. */
cj_jrc_mementry_t *cj_jrc_memstore_find(cj_jrc_memstore_t *ms,
                                        const uint8_t *id, size_t id_len);

/* Outcome of campaign for a pledge: 1 acknowledged, 0 not reached,
 * CJ_ERR_NOTFOUND when nothing was recorded for that campaign. */
int cj_jrc_memstore_outcome(const cj_jrc_memstore_t *ms, const uint8_t *id,
                            size_t id_len, uint32_t campaign);

/* Number of pledges whose last recorded outcome is for campaign with the
 * given acked value; the first up to max of their entries go to out
 * (may be NULL), in registry order.  List the nodes a campaign did not
 * reach with acked = false. */
size_t cj_jrc_memstore_list(const cj_jrc_memstore_t *ms, uint32_t campaign,
                            bool acked, const cj_jrc_mementry_t **out,
                            size_t max);

#endif
