/*
 * In-memory JRC store (cojp/jrc_memstore.h).
 *
 * Invariants: entries[0..count) are provisioned pledges with distinct
 * ids, and retired entries (id_len 0: nothing but a PSK no longer in
 * use); no two entries hold one PSK (RFC 9031 section 3); at most one
 * entry with a live lease holds any given short id; a failed operation
 * changes nothing but fail_count.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cojp/crypto.h"
#include "cojp/jrc_memstore.h"

#define MS_HOUR_MS UINT64_C(3600000)

/* The injected error for operation op, or 0 (and op counted). */
static int fail(cj_jrc_memstore_t *ms, int op)
{
    ms->calls[op]++;
    if (ms->fail_count > 0 && (ms->fail_mask & (1u << op)) != 0) {
        ms->fail_count--;
        return ms->fail_rc != 0 ? ms->fail_rc : CJ_ERR_STORAGE;
    }
    return 0;
}

static cj_jrc_mementry_t *find(cj_jrc_memstore_t *ms, const uint8_t *id,
                               size_t id_len)
{
    if (id == NULL || id_len == 0 || id_len > CJ_JRC_MAX_ID)
        return NULL;
    for (size_t i = 0; i < ms->count; i++) {
        cj_jrc_mementry_t *e = &ms->entries[i];
        if (e->rec.id_len == id_len && memcmp(e->rec.id, id, id_len) == 0)
            return e;
    }
    return NULL;
}

cj_jrc_mementry_t *cj_jrc_memstore_find(cj_jrc_memstore_t *ms,
                                        const uint8_t *id, size_t id_len)
{
    return find(ms, id, id_len);
}

/* The preamble of every per-pledge operation: count the call, inject a
 * failure when asked, find the entry.  CJ_OK with *e set, CJ_ERR_STORAGE
 * (injected) or CJ_ERR_NOTFOUND. */
static int entry_for(cj_jrc_memstore_t *ms, int op, const uint8_t *id,
                     size_t id_len, cj_jrc_mementry_t **e)
{
    int frc = fail(ms, op);
    if (frc != 0)
        return frc;
    *e = find(ms, id, id_len);
    return *e == NULL ? CJ_ERR_NOTFOUND : CJ_OK;
}

static bool lease_live(const cj_jrc_mementry_t *e, uint64_t now)
{
    return e->has_lease && e->lease_until > now;
}

static int ms_lookup(void *ctx, const uint8_t *id, size_t id_len,
                     cj_jrc_pledge_t *out)
{
    cj_jrc_memstore_t *ms = ctx;
    cj_jrc_mementry_t *e;
    int rc;

    rc = entry_for(ms, CJ_MEMSTORE_OP_LOOKUP, id, id_len, &e);
    if (rc != CJ_OK)
        return rc;
    *out = e->rec;
    return CJ_OK;
}

static int ms_lookup_context(void *ctx, const uint8_t *ctx_id, size_t len,
                             cj_jrc_pledge_t *out)
{
    cj_jrc_memstore_t *ms = ctx;

    int frc = fail(ms, CJ_MEMSTORE_OP_LOOKUP_CONTEXT);

    if (frc != 0)

        return frc;
    if (len == 0)
        return CJ_ERR_NOTFOUND;
    for (size_t i = 0; i < ms->count; i++) {
        const cj_jrc_pledge_t *r = &ms->entries[i].rec;
        if (r->id_context_len == len && memcmp(r->id_context, ctx_id, len) == 0) {
            *out = *r;
            return CJ_OK;
        }
    }
    return CJ_ERR_NOTFOUND;
}

/* The record e, if its current context is the one derived from psk
 * under ID Context ctx_id (length 0: the pledge id). */
static bool ctx_is(const cj_jrc_mementry_t *e, const uint8_t *psk,
                   const uint8_t *ctx_id, size_t ctx_len)
{
    return psk != NULL &&
           cj_crypto_ct_compare(e->rec.psk, psk, sizeof e->rec.psk) == 0 &&
           e->rec.id_context_len == ctx_len &&
           (ctx_len == 0 || memcmp(e->rec.id_context, ctx_id, ctx_len) == 0);
}

/* One engine call at a time (no threads), so each is atomic as is. */
static int ms_reserve_ssn(void *ctx, const uint8_t *id, size_t id_len,
                          const uint8_t *psk, const uint8_t *ctx_id,
                          size_t ctx_len, uint64_t from, uint64_t count,
                          uint64_t *first)
{
    cj_jrc_memstore_t *ms = ctx;
    cj_jrc_mementry_t *e;
    uint64_t f;

    int frc = fail(ms, CJ_MEMSTORE_OP_SAVE_SSN);

    if (frc != 0)

        return frc;
    e = find(ms, id, id_len);
    if (e == NULL || !ctx_is(e, psk, ctx_id, ctx_len))
        return CJ_ERR_NOTFOUND;
    f = e->rec.ssn_reserved > from ? e->rec.ssn_reserved : from;
    if (count > UINT64_MAX - f)
        return CJ_ERR_RANGE;
    e->rec.ssn_reserved = f + count;
    *first = f;
    return CJ_OK;
}

static int ms_accept_piv(void *ctx, const uint8_t *id, size_t id_len,
                         const uint8_t *psk, const uint8_t *ctx_id,
                         size_t ctx_len, uint64_t piv, cj_oscore_replay_t *w)
{
    cj_jrc_memstore_t *ms = ctx;
    cj_jrc_mementry_t *e;

    int frc = fail(ms, CJ_MEMSTORE_OP_SAVE_REPLAY);

    if (frc != 0)

        return frc;
    e = find(ms, id, id_len);
    if (e == NULL || !ctx_is(e, psk, ctx_id, ctx_len))
        return CJ_ERR_NOTFOUND;
    if (cj_oscore_replay_check(&e->rec.replay, piv) != CJ_OK)
        return CJ_ERR_REPLAY;
    cj_oscore_replay_update(&e->rec.replay, piv);
    *w = e->rec.replay;
    return CJ_OK;
}

static int ms_save_repeat(void *ctx, const uint8_t *id, size_t id_len,
                          const uint8_t *psk, const uint8_t *ctx_id,
                          size_t ctx_len, const cj_jrc_repeat_t *r)
{
    cj_jrc_memstore_t *ms = ctx;
    cj_jrc_mementry_t *e;

    int frc = fail(ms, CJ_MEMSTORE_OP_SAVE_REPEAT);

    if (frc != 0)

        return frc;
    e = find(ms, id, id_len);
    if (e == NULL || !ctx_is(e, psk, ctx_id, ctx_len))
        return CJ_ERR_NOTFOUND;
    if (r == NULL || r->req_len > sizeof r->req ||
        r->req_opt_len > r->req_len || r->resp_len > sizeof r->resp ||
        r->from.len > CJ_ADDR_MAX)
        return CJ_ERR_INVALID;
    memset(&e->rec.repeat, 0, sizeof e->rec.repeat);
    if (r->req_len > 0 && r->resp_len > 0)
        e->rec.repeat = *r;
    return CJ_OK;
}

static int ms_save_context(void *ctx, const uint8_t *id, size_t id_len,
                           const uint8_t *psk, const uint8_t *ctx_id,
                           size_t ctx_len)
{
    cj_jrc_memstore_t *ms = ctx;
    cj_jrc_mementry_t *e;
    int rc;

    rc = entry_for(ms, CJ_MEMSTORE_OP_SAVE_CONTEXT, id, id_len, &e);
    if (rc != CJ_OK)
        return rc;
    if (psk == NULL ||
        cj_crypto_ct_compare(e->rec.psk, psk, sizeof e->rec.psk) != 0)
        return CJ_ERR_NOTFOUND;
    if (ctx_len > CJ_OSCORE_MAX_ID_CONTEXT)
        return CJ_ERR_INVALID;
    memset(e->rec.id_context, 0, sizeof e->rec.id_context);
    if (ctx_len)
        memcpy(e->rec.id_context, ctx_id, ctx_len);
    e->rec.id_context_len = (uint8_t)ctx_len;
    e->rec.ssn_reserved = 0;
    memset(&e->rec.replay, 0, sizeof e->rec.replay);
    memset(&e->rec.repeat, 0, sizeof e->rec.repeat);
    e->rec.must_recover = false;
    return CJ_OK;
}

static bool short_taken(const cj_jrc_memstore_t *ms, uint16_t s, uint64_t now)
{
    for (size_t i = 0; i < ms->count; i++) {
        const cj_jrc_mementry_t *e = &ms->entries[i];
        if (lease_live(e, now) && e->rec.short_id == s)
            return true;
    }
    return false;
}

static int ms_assign_short_id(void *ctx, const uint8_t *id, size_t id_len,
                              uint64_t now_ms, uint32_t lease_hours,
                              bool fresh, uint16_t *short_id)
{
    cj_jrc_memstore_t *ms = ctx;
    cj_jrc_mementry_t *e;
    int rc;
    uint64_t until;
    uint16_t s;

    rc = entry_for(ms, CJ_MEMSTORE_OP_ASSIGN_SHORT_ID, id, id_len, &e);
    if (rc != CJ_OK)
        return rc;
    until = lease_hours == 0 ? UINT64_MAX
                             : now_ms + (uint64_t)lease_hours * MS_HOUR_MS;
    if (!fresh && lease_live(e, now_ms)) {
        e->lease_until = until;
        *short_id = e->rec.short_id;
        return CJ_OK;
    }
    /* Sequential search over the 65533 usable values (0x0001..0xfffd);
     * the node's own current id counts as taken, so fresh gets another. */
    s = ms->next_short;
    for (uint32_t tries = 0; tries < 0xfffdu; tries++) {
        if (s == 0 || s >= 0xfffe)
            s = 1;
        if (!short_taken(ms, s, now_ms)) {
            e->rec.short_id = s;
            e->has_lease = true;
            e->lease_until = until;
            ms->next_short = (uint16_t)(s + 1);
            *short_id = s;
            return CJ_OK;
        }
        s++;
    }
    return CJ_ERR_NOSPACE;
}

static int ms_record_join(void *ctx, const uint8_t *id, size_t id_len,
                          uint8_t role, uint16_t short_id, uint64_t now_ms)
{
    cj_jrc_memstore_t *ms = ctx;
    cj_jrc_mementry_t *e;
    int rc;

    rc = entry_for(ms, CJ_MEMSTORE_OP_RECORD_JOIN, id, id_len, &e);
    if (rc != CJ_OK)
        return rc;
    e->rec.joined = true;
    e->rec.role = role;
    e->rec.short_id = short_id;
    e->joined_at = now_ms;
    return CJ_OK;
}

static int ms_release(void *ctx, const uint8_t *id, size_t id_len)
{
    cj_jrc_memstore_t *ms = ctx;
    cj_jrc_mementry_t *e;
    int rc;

    rc = entry_for(ms, CJ_MEMSTORE_OP_RELEASE, id, id_len, &e);
    if (rc != CJ_OK)
        return rc;
    e->rec.joined = false;
    e->has_lease = false;
    return CJ_OK;
}

static int ms_next_joined(void *ctx, uint64_t *cursor, cj_jrc_pledge_t *out)
{
    cj_jrc_memstore_t *ms = ctx;

    int frc = fail(ms, CJ_MEMSTORE_OP_NEXT_JOINED);

    if (frc != 0)

        return frc;
    for (uint64_t i = *cursor; i < ms->count; i++) {
        if (ms->entries[i].rec.joined) {
            *out = ms->entries[i].rec;
            *cursor = i + 1;
            return CJ_OK;
        }
    }
    *cursor = ms->count;
    return CJ_ERR_NOTFOUND;
}

static int ms_node_address(void *ctx, const uint8_t *id, size_t id_len,
                           cj_addr_t *addr)
{
    cj_jrc_memstore_t *ms = ctx;
    cj_jrc_mementry_t *e;
    int rc;

    rc = entry_for(ms, CJ_MEMSTORE_OP_NODE_ADDRESS, id, id_len, &e);
    if (rc != CJ_OK)
        return rc;
    if (e->addr.len) {
        *addr = e->addr;
    } else {
        memset(addr, 0, sizeof *addr);
        addr->len = e->rec.id_len;
        memcpy(addr->b, e->rec.id, e->rec.id_len);
    }
    return CJ_OK;
}

static int ms_record_update(void *ctx, const uint8_t *id, size_t id_len,
                            uint32_t campaign, bool acked)
{
    cj_jrc_memstore_t *ms = ctx;
    cj_jrc_mementry_t *e;
    int rc;

    rc = entry_for(ms, CJ_MEMSTORE_OP_RECORD_UPDATE, id, id_len, &e);
    if (rc != CJ_OK)
        return rc;
    e->has_update = true;
    e->update_campaign = campaign;
    e->update_acked = acked;
    if (acked)
        e->acks++;
    else
        e->misses++;
    return CJ_OK;
}

void cj_jrc_memstore_init(cj_jrc_memstore_t *ms, cj_jrc_mementry_t *entries,
                          size_t cap)
{
    memset(ms, 0, sizeof *ms);
    if (entries != NULL && cap > 0)
        memset(entries, 0, cap * sizeof *entries);
    ms->entries = entries;
    ms->cap = entries != NULL ? cap : 0;
    ms->next_short = 1;
    ms->store.ctx = ms;
    ms->store.lookup = ms_lookup;
    ms->store.lookup_context = ms_lookup_context;
    ms->store.reserve_ssn = ms_reserve_ssn;
    ms->store.accept_piv = ms_accept_piv;
    ms->store.save_repeat = ms_save_repeat;
    ms->store.save_context = ms_save_context;
    ms->store.assign_short_id = ms_assign_short_id;
    ms->store.record_join = ms_record_join;
    ms->store.release = ms_release;
    ms->store.next_joined = ms_next_joined;
    ms->store.node_address = ms_node_address;
    ms->store.record_update = ms_record_update;
}

/* Whether some provisioned pledge holds psk or held it (retired). */
static bool psk_held(const cj_jrc_memstore_t *ms, const uint8_t psk[16])
{
    for (size_t i = 0; i < ms->count; i++)
        if (memcmp(ms->entries[i].rec.psk, psk, 16) == 0)
            return true;
    return false;
}

int cj_jrc_memstore_add(cj_jrc_memstore_t *ms, const uint8_t *id,
                        size_t id_len, const uint8_t psk[16],
                        uint8_t allowed_roles)
{
    cj_jrc_mementry_t *e;

    if (id == NULL || psk == NULL || id_len == 0 || id_len > CJ_JRC_MAX_ID ||
        find(ms, id, id_len) != NULL)
        return CJ_ERR_INVALID;
    if (psk_held(ms, psk))
        return CJ_ERR_PSK_REUSED;
    if (ms->count == ms->cap)
        return CJ_ERR_NOSPACE;
    e = &ms->entries[ms->count++];
    memset(e, 0, sizeof *e);
    memcpy(e->rec.id, id, id_len);
    e->rec.id_len = (uint8_t)id_len;
    memcpy(e->rec.psk, psk, 16);
    e->rec.allowed_roles = allowed_roles;
    return CJ_OK;
}

/* Turn e into a retired entry that keeps only psk (not within e). */
static void retire(cj_jrc_mementry_t *e, const uint8_t psk[16])
{
    cj_crypto_wipe(e, sizeof *e);
    memcpy(e->rec.psk, psk, sizeof e->rec.psk);
}

int cj_jrc_memstore_set_psk(cj_jrc_memstore_t *ms, const uint8_t *id,
                            size_t id_len, const uint8_t psk[16])
{
    cj_jrc_mementry_t *e = find(ms, id, id_len);
    cj_jrc_pledge_t *r;

    if (psk == NULL)
        return CJ_ERR_INVALID;
    if (e == NULL)
        return CJ_ERR_NOTFOUND;
    if (psk_held(ms, psk))
        return CJ_ERR_PSK_REUSED;
    if (ms->count == ms->cap)
        return CJ_ERR_NOSPACE;
    r = &e->rec;
    retire(&ms->entries[ms->count++], r->psk);
    memcpy(r->psk, psk, sizeof r->psk);
    r->has_okm = false;
    cj_crypto_wipe(r->okm, sizeof r->okm);
    r->ssn_reserved = 0;
    memset(&r->replay, 0, sizeof r->replay);
    memset(r->id_context, 0, sizeof r->id_context);
    r->id_context_len = 0;
    memset(&r->repeat, 0, sizeof r->repeat);
    r->joined = false;
    r->must_recover = false; /* a new PSK starts a context with no past */
    return CJ_OK;
}

int cj_jrc_memstore_remove(cj_jrc_memstore_t *ms, const uint8_t *id,
                           size_t id_len, uint64_t now_ms)
{
    cj_jrc_mementry_t *e = find(ms, id, id_len);
    uint8_t psk[16];

    if (e == NULL)
        return CJ_ERR_NOTFOUND;
    if (lease_live(e, now_ms))
        return CJ_ERR_STATE;
    /* in place: next_joined cursors (entry indices) stay valid */
    memcpy(psk, e->rec.psk, sizeof psk);
    retire(e, psk);
    cj_crypto_wipe(psk, sizeof psk);
    return CJ_OK;
}

int cj_jrc_memstore_set_address(cj_jrc_memstore_t *ms, const uint8_t *id,
                                size_t id_len, const cj_addr_t *addr)
{
    cj_jrc_mementry_t *e = find(ms, id, id_len);

    if (e == NULL)
        return CJ_ERR_NOTFOUND;
    e->addr = *addr;
    return CJ_OK;
}

int cj_jrc_memstore_outcome(const cj_jrc_memstore_t *ms, const uint8_t *id,
                            size_t id_len, uint32_t campaign)
{
    const cj_jrc_mementry_t *e = find((cj_jrc_memstore_t *)ms, id, id_len);

    if (e == NULL || !e->has_update || e->update_campaign != campaign)
        return CJ_ERR_NOTFOUND;
    return e->update_acked ? 1 : 0;
}

size_t cj_jrc_memstore_list(const cj_jrc_memstore_t *ms, uint32_t campaign,
                            bool acked, const cj_jrc_mementry_t **out,
                            size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < ms->count; i++) {
        const cj_jrc_mementry_t *e = &ms->entries[i];
        if (!e->has_update || e->update_campaign != campaign ||
            e->update_acked != acked)
            continue;
        if (out != NULL && n < max)
            out[n] = e;
        n++;
    }
    return n;
}
