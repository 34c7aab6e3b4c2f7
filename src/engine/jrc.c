/*
 * JRC engine (cojp/jrc.h): RFC 9031 sections 7.3, 8.1-8.4 and the
 * Appendix B.2 context renegotiation of RFC 8613.
 *
 * Invariants:
 *  - A pledge has at most one slot.  A slot's osc is derived from the
 *    record's ID Context as last read; its replay window is a subset of
 *    the stored one (the store's is authoritative: accept_piv decides),
 *    and [osc.ssn, osc.ssn_reserved) is a block of sender sequence
 *    numbers reserve_ssn gave this engine alone.  ssn_ready() runs before
 *    every protect that takes a new Partial IV, so the codec never needs
 *    to reserve (RFC 8613 Appendix B.1.1); the ssn_port it is attached to
 *    refuses if it ever asks.
 *  - A store call that reports the slot's ID Context replaced (another
 *    engine ran a recovery) clears the slot: it is reloaded on next use.
 *  - Nothing leaves the engine before every store write it depends on
 *    succeeded; on a store failure the in-memory replay window is rolled
 *    back so the same request is processed afresh when retransmitted.
 *  - A request's Partial IV is claimed on the store (accept_piv) before
 *    any other write it causes (lease, join record, sequence numbers), so
 *    a replay that reaches an engine with a stale window changes nothing.
 *    A claimed request whose answer then failed stays in the slot
 *    (req_claimed): its byte-identical retransmission is processed again
 *    without a second claim, by this engine only.
 *  - The pledge-identifier context of a record that holds a recovered
 *    one (KIND_OLD) is answered only for Partial IVs above everything
 *    seen from the pledge under the recovered context and not yet seen
 *    under the old one (old_replay): the pledge has one sequence number
 *    counter for every context, so anything else is a replay.
 *  - An update exchange holds a copy of the node's context that is used
 *    only to verify the answer (responses carry no Partial IV that would
 *    need persisting), so slot eviction never strands an exchange.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cojp/cbor.h"
#include "cojp/coap.h"
#include "cojp/cojp.h"
#include "cojp/crypto.h"
#include "cojp/jrc.h"
#include "cojp/oscore.h"

/* Update exchange states. */
enum { UPD_FREE = 0, UPD_WAIT, UPD_SEPARATE, UPD_RECORD };

/* Campaign kinds and phases. */
enum { CAMP_REKEY = 1, CAMP_REASSIGN, CAMP_EVICT, CAMP_READMIT };
enum { PH_TARGET = 0, PH_6LN, PH_WAIT_6LN, PH_6LBR, PH_DONE };

/* How a kid context matched a slot. */
enum { KIND_NONE = 0, KIND_CURRENT, KIND_OLD, KIND_R2 };

/* Largest Configuration or Unsupported_Configuration we encode; see the
 * bound in jrc.h next to CJ_JRC_RESP_CACHE. */
#define OBJ_MAX 256

static const uint8_t jrc_id[CJ_COJP_JRC_ID_LEN] = {0x4a, 0x52, 0x43};

static bool bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b,
                     size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* ---- sequence number adaptor (agreement 9) ------------------------------ */

/* The codec asks only when ssn_ready() was skipped; a mark raised here
 * would not say which numbers are this engine's, so refuse (the protect
 * fails and nothing is sent). */
static int ssn_store(void *ctx, uint32_t id, uint64_t value)
{
    (void)ctx;
    (void)id;
    (void)value;
    return CJ_ERR_STORAGE;
}

static int ssn_load(void *ctx, uint32_t id, uint64_t *value)
{
    cj_jrc_t *j = ctx;

    if (id >= j->cfg.slot_count)
        return CJ_ERR_STORAGE;
    *value = j->cfg.slots[id].rec.ssn_reserved;
    return CJ_OK;
}

/* ---- contexts and slots ------------------------------------------------- */

/* Section 7.3: Master Secret = PSK, empty salt, JRC Sender ID "JRC",
 * pledge (recipient) ID empty, ID Context as given. */
static void jrc_params(cj_oscore_params_t *p, const uint8_t psk[16],
                       const uint8_t *idc, size_t idc_len)
{
    memset(p, 0, sizeof *p);
    p->master_secret = psk;
    p->master_secret_len = 16;
    p->sender_id = jrc_id;
    p->sender_id_len = sizeof jrc_id;
    p->recipient_id = NULL;
    p->recipient_id_len = 0;
    p->id_context = idc;
    p->id_context_len = idc_len;
    p->has_id_context = true;
}

/* The context under ID Context idc: derived, or set up from okm (the
 * store's derived material of the pledge-id context) when given. */
static int derive_with(cj_oscore_ctx_t *ctx, const uint8_t psk[16],
                       const uint8_t *idc, size_t idc_len, const uint8_t *okm)
{
    cj_oscore_params_t p;

    jrc_params(&p, psk, idc, idc_len);
    return okm != NULL ? cj_oscore_ctx_load(ctx, &p, okm)
                       : cj_oscore_ctx_derive(ctx, &p);
}

static int derive(cj_oscore_ctx_t *ctx, const uint8_t psk[16],
                  const uint8_t *idc, size_t idc_len)
{
    return derive_with(ctx, psk, idc, idc_len, NULL);
}

int cj_jrc_pledge_okm(const uint8_t psk[16], const uint8_t *id, size_t id_len,
                      uint8_t okm[CJ_OSCORE_OKM_LEN])
{
    cj_oscore_params_t p;

    if (psk == NULL || id == NULL || id_len == 0 || id_len > CJ_JRC_MAX_ID)
        return CJ_ERR_INVALID;
    jrc_params(&p, psk, id, id_len);
    return cj_oscore_okm(&p, okm);
}

/* ---- slot index ---------------------------------------------------------- */

/* Hash tables (one bucket per slot, heads kept in the slot whose index is
 * the bucket number) and LRU lists, all linked through the slots by
 * index, so a lookup and the choice of a victim take constant time with
 * no memory beyond the caller's array.  Invariants: a used slot is in
 * the KEY_ID table under rec.id, in KEY_CTX under rec.id_context when
 * that is set, in KEY_R2 under r2 when r2_valid; every slot is in exactly
 * one list, the one list_of() names, ordered by last_use (free slots by
 * index), least recent first.  Keys are removed before the field they
 * hash changes and added after. */
enum { KEY_ID = 0, KEY_CTX, KEY_R2 };
enum { LIST_FREE = 0, LIST_PLAIN, LIST_R2 };

static uint32_t key_hash(const cj_jrc_t *j, const uint8_t *k, size_t kl)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < kl; i++) {
        h ^= k[i];
        h *= 16777619u;
    }
    return (uint32_t)(h % j->cfg.slot_count);
}

/* The key of slot s in table t; false when it has none there. */
static bool slot_key(const cj_jrc_slot_t *s, int t, const uint8_t **k,
                     size_t *kl)
{
    if (!s->used)
        return false;
    if (t == KEY_ID) {
        *k = s->rec.id;
        *kl = s->rec.id_len;
        return true;
    }
    if (t == KEY_CTX) {
        *k = s->rec.id_context;
        *kl = s->rec.id_context_len;
        return *kl > 0;
    }
    *k = s->r2;
    *kl = CJ_JRC_NONCE_LEN;
    return s->r2_valid;
}

static void index_add(cj_jrc_t *j, uint32_t idx, int t)
{
    cj_jrc_slot_t *sl = j->cfg.slots;
    const uint8_t *k;
    size_t kl;
    uint32_t b;

    if (!slot_key(&sl[idx], t, &k, &kl))
        return;
    b = key_hash(j, k, kl);
    sl[idx].next[t] = sl[b].head[t];
    sl[b].head[t] = idx;
}

static void index_del(cj_jrc_t *j, uint32_t idx, int t)
{
    cj_jrc_slot_t *sl = j->cfg.slots;
    const uint8_t *k;
    size_t kl;
    uint32_t *p;

    if (!slot_key(&sl[idx], t, &k, &kl))
        return;
    p = &sl[key_hash(j, k, kl)].head[t];
    while (*p != CJ_JRC_NIL && *p != idx)
        p = &sl[*p].next[t];
    if (*p == idx)
        *p = sl[idx].next[t];
    sl[idx].next[t] = CJ_JRC_NIL;
}

/* The slot whose key in table t is k, or CJ_JRC_NIL. */
static uint32_t index_find(const cj_jrc_t *j, int t, const uint8_t *k,
                           size_t kl)
{
    const cj_jrc_slot_t *sl = j->cfg.slots;
    const uint8_t *sk;
    size_t skl;

    for (uint32_t i = sl[key_hash(j, k, kl)].head[t]; i != CJ_JRC_NIL;
         i = sl[i].next[t])
        if (slot_key(&sl[i], t, &sk, &skl) && bytes_eq(k, kl, sk, skl))
            return i;
    return CJ_JRC_NIL;
}

static int list_of(const cj_jrc_slot_t *s)
{
    return !s->used ? LIST_FREE : s->r2_valid ? LIST_R2 : LIST_PLAIN;
}

static void list_unlink(cj_jrc_t *j, uint32_t idx, int l)
{
    cj_jrc_slot_t *s = &j->cfg.slots[idx];

    if (s->lru_prev != CJ_JRC_NIL)
        j->cfg.slots[s->lru_prev].lru_next = s->lru_next;
    else
        j->lru_first[l] = s->lru_next;
    if (s->lru_next != CJ_JRC_NIL)
        j->cfg.slots[s->lru_next].lru_prev = s->lru_prev;
    else
        j->lru_last[l] = s->lru_prev;
    s->lru_prev = s->lru_next = CJ_JRC_NIL;
}

/* Into list l at its place in the order: normally at the end (the slot
 * was just used, or is freed in index order) or, for a free slot that
 * goes back before all others (slot_load clears the first free slot
 * before taking it), at the start, so the walk is short. */
static void list_insert(cj_jrc_t *j, uint32_t idx, int l)
{
    cj_jrc_slot_t *sl = j->cfg.slots;
    uint64_t key = l == LIST_FREE ? idx : sl[idx].last_use;
    uint32_t p = j->lru_last[l], f = j->lru_first[l];

    if (f != CJ_JRC_NIL && (l == LIST_FREE ? (uint64_t)f : sl[f].last_use) > key)
        p = CJ_JRC_NIL; /* before the first */
    while (p != CJ_JRC_NIL &&
           (l == LIST_FREE ? (uint64_t)p : sl[p].last_use) > key)
        p = sl[p].lru_prev;
    sl[idx].lru_prev = p;
    sl[idx].lru_next = p == CJ_JRC_NIL ? j->lru_first[l] : sl[p].lru_next;
    if (sl[idx].lru_next != CJ_JRC_NIL)
        sl[sl[idx].lru_next].lru_prev = idx;
    else
        j->lru_last[l] = idx;
    if (p != CJ_JRC_NIL)
        sl[p].lru_next = idx;
    else
        j->lru_first[l] = idx;
}

static uint32_t slot_idx(const cj_jrc_t *j, const cj_jrc_slot_t *s)
{
    return (uint32_t)(s - j->cfg.slots);
}

/* Mark a slot used now (most recently used of its list). */
static void slot_touch(cj_jrc_t *j, cj_jrc_slot_t *s)
{
    uint32_t idx = slot_idx(j, s);

    list_unlink(j, idx, list_of(s));
    s->last_use = ++j->use_clock;
    list_insert(j, idx, list_of(s));
}

/* Empty a slot: out of the tables, content wiped, onto the free list. */
static void slot_clear(cj_jrc_t *j, cj_jrc_slot_t *s)
{
    uint32_t idx = slot_idx(j, s);

    for (int t = 0; t < CJ_JRC_INDEX_KEYS; t++)
        index_del(j, idx, t);
    list_unlink(j, idx, list_of(s));
    cj_crypto_wipe(&s->used, sizeof *s - offsetof(cj_jrc_slot_t, used));
    list_insert(j, idx, LIST_FREE);
}

/* Set (r2 non-NULL) or drop a slot's pending recovery nonce. */
static void slot_set_r2(cj_jrc_t *j, cj_jrc_slot_t *s, const uint8_t *r2)
{
    uint32_t idx = slot_idx(j, s);

    index_del(j, idx, KEY_R2);
    list_unlink(j, idx, list_of(s));
    if (r2 != NULL)
        memcpy(s->r2, r2, CJ_JRC_NONCE_LEN);
    else
        memset(s->r2, 0, sizeof s->r2);
    s->r2_valid = r2 != NULL;
    list_insert(j, idx, list_of(s));
    index_add(j, idx, KEY_R2);
}

/* Fill slot idx from a registry record: derive the current context and
 * restore the persisted replay window, sequence number mark and repeat
 * cache. */
static int slot_load(cj_jrc_t *j, uint32_t idx, const cj_jrc_pledge_t *rec)
{
    cj_jrc_slot_t *s = &j->cfg.slots[idx];
    const uint8_t *idc = rec->id_context_len ? rec->id_context : rec->id;
    size_t idc_len = rec->id_context_len ? rec->id_context_len : rec->id_len;
    const cj_jrc_repeat_t *rp = &rec->repeat;
    int rc;

    slot_clear(j, s);
    if (rec->id_len == 0 || rec->id_len > CJ_JRC_MAX_ID ||
        idc_len > CJ_OSCORE_MAX_ID_CONTEXT)
        return CJ_ERR_INVALID;
    s->rec = *rec;
    /* a cache this engine could not have written is not used */
    if (rp->req_len > sizeof rp->req || rp->req_opt_len > rp->req_len ||
        rp->resp_len > sizeof rp->resp || rp->from.len > CJ_ADDR_MAX ||
        rp->req_len == 0 || rp->resp_len == 0)
        memset(&s->rec.repeat, 0, sizeof s->rec.repeat);
    rc = derive_with(&s->osc, rec->psk, idc, idc_len,
                     rec->has_okm && rec->id_context_len == 0 ? rec->okm
                                                              : NULL);
    if (rc == CJ_OK)
        rc = cj_oscore_ctx_attach(&s->osc, &j->ssn_port, idx);
    if (rc != CJ_OK) {
        slot_clear(j, s);
        return rc;
    }
    s->osc.replay = rec->replay;
    s->osc.send_kid_context = false;
    list_unlink(j, idx, LIST_FREE);
    s->used = true;
    s->last_use = ++j->use_clock;
    list_insert(j, idx, LIST_PLAIN);
    index_add(j, idx, KEY_ID);
    index_add(j, idx, KEY_CTX);
    return CJ_OK;
}

/* A free slot, else the least recently used one that holds no pending
 * recovery nonce, else the least recently used one.  Slots are loaded for
 * requests not yet verified; a slot holding R2 is the only place request
 * #2 of Appendix B.2 can be matched, and its pledge already switched to
 * R2 || R3, so unverified traffic must not push it out (RFC 9031 section
 * 7.3.2).  Only verified requests #1 create such slots, so one is evicted
 * only when every slot holds one. */
static uint32_t slot_victim(const cj_jrc_t *j)
{
    if (j->lru_first[LIST_FREE] != CJ_JRC_NIL)
        return j->lru_first[LIST_FREE];
    if (j->lru_first[LIST_PLAIN] != CJ_JRC_NIL)
        return j->lru_first[LIST_PLAIN];
    return j->lru_first[LIST_R2];
}

/* How kid context k names slot s (KIND_NONE: not at all). */
static int slot_kind(const cj_jrc_slot_t *s, const uint8_t *k, size_t kl)
{
    if (!s->used)
        return KIND_NONE;
    if (s->rec.id_context_len) {
        if (bytes_eq(k, kl, s->rec.id_context, s->rec.id_context_len))
            return KIND_CURRENT;
        if (bytes_eq(k, kl, s->rec.id, s->rec.id_len))
            return KIND_OLD;
    } else if (bytes_eq(k, kl, s->rec.id, s->rec.id_len)) {
        return KIND_CURRENT;
    }
    if (s->r2_valid && kl > CJ_JRC_NONCE_LEN &&
        memcmp(k, s->r2, CJ_JRC_NONCE_LEN) == 0)
        return KIND_R2;
    return KIND_NONE;
}

/* The slot a kid context names and how: the current ID Context of a
 * slot, the pledge id of a slot whose record holds a recovered one, or
 * the R2 prefix of request #2 of a recovery. */
static uint32_t slot_match(const cj_jrc_t *j, const uint8_t *k, size_t kl,
                           int *kind)
{
    uint32_t i = index_find(j, KEY_CTX, k, kl);

    if (i != CJ_JRC_NIL) {
        *kind = KIND_CURRENT;
        return i;
    }
    i = index_find(j, KEY_ID, k, kl);
    if (i != CJ_JRC_NIL) {
        *kind = j->cfg.slots[i].rec.id_context_len ? KIND_OLD : KIND_CURRENT;
        return i;
    }
    if (kl > CJ_JRC_NONCE_LEN) {
        i = index_find(j, KEY_R2, k, CJ_JRC_NONCE_LEN);
        if (i != CJ_JRC_NIL) {
            *kind = KIND_R2;
            return i;
        }
    }
    *kind = KIND_NONE;
    return CJ_JRC_NIL;
}

static bool store_ok(cj_jrc_t *j, int rc)
{
    if (rc != CJ_OK && rc != CJ_ERR_NOTFOUND)
        j->stats.store_errors++;
    return rc == CJ_OK;
}

/* The ID Context a slot's osc uses, as the store names it (length 0: the
 * pledge id). */
static const uint8_t *slot_ctx_id(const cj_jrc_slot_t *s, size_t *len)
{
    *len = s->rec.id_context_len;
    return s->rec.id_context;
}

/* Make the slot's next sender sequence number one reserved to this
 * engine alone: take a fresh block from the store when the cached one is
 * used up, jumping forward past whatever other engines reserved. */
static int ssn_ready(cj_jrc_t *j, cj_jrc_slot_t *s)
{
    uint64_t first = 0, count = j->cfg.ssn_block ? j->cfg.ssn_block
                                                 : CJ_JRC_SSN_BLOCK;
    const uint8_t *c;
    size_t cl;
    int rc;

    if (s->osc.ssn < s->osc.ssn_reserved)
        return CJ_OK;
    if (s->osc.ssn > CJ_OSCORE_MAX_SSN)
        return CJ_ERR_SEQ_EXHAUSTED;
    /* section 7.2.1 of RFC 8613: 2^40 - 1 is the last usable number */
    if (count > CJ_OSCORE_MAX_SSN + 1 - s->osc.ssn)
        count = CJ_OSCORE_MAX_SSN + 1 - s->osc.ssn;
    c = slot_ctx_id(s, &cl);
    rc = j->store.reserve_ssn(j->store.ctx, s->rec.id, s->rec.id_len,
                              s->rec.psk, c, cl, s->osc.ssn, count, &first);
    if (rc == CJ_ERR_NOTFOUND) {
        slot_clear(j, s);
        return rc;
    }
    if (!store_ok(j, rc))
        return CJ_ERR_STORAGE;
    if (first < s->osc.ssn) {
        j->stats.store_errors++; /* a store that lowers the mark */
        return CJ_ERR_STORAGE;
    }
    if (first > CJ_OSCORE_MAX_SSN)
        return CJ_ERR_SEQ_EXHAUSTED;
    s->osc.ssn = first;
    s->osc.ssn_reserved = first + count;
    s->rec.ssn_reserved = first + count;
    return CJ_OK;
}

/* Record the request's Partial IV in the stored replay window, the
 * engines' common one, and adopt the merged window.  CJ_ERR_REPLAY when
 * another engine accepted it first (or this one, before a restart). */
static int claim_piv(cj_jrc_t *j, cj_jrc_slot_t *s,
                     const cj_oscore_req_t *bind)
{
    cj_oscore_replay_t w;
    const uint8_t *c;
    size_t cl;
    int rc;

    memset(&w, 0, sizeof w);
    c = slot_ctx_id(s, &cl);
    rc = j->store.accept_piv(j->store.ctx, s->rec.id, s->rec.id_len,
                             s->rec.psk, c, cl,
                             cj_oscore_piv_value(bind->piv, bind->piv_len),
                             &w);
    if (rc == CJ_ERR_NOTFOUND) {
        slot_clear(j, s);
        return rc;
    }
    if (rc == CJ_ERR_REPLAY)
        return rc;
    if (!store_ok(j, rc))
        return CJ_ERR_STORAGE;
    s->osc.replay = w;
    s->rec.replay = w;
    return CJ_OK;
}

/* now + CJ_JRC_RECHECK_MS, saturating */
static uint64_t recheck_time(uint64_t now)
{
    return now > UINT64_MAX - CJ_JRC_RECHECK_MS ? UINT64_MAX
                                                : now + CJ_JRC_RECHECK_MS;
}

/* Slot for a Join Request's kid context: cached, or loaded from the store
 * by pledge id, then by recovered ID Context (the record just read is
 * not read again for a failed verification before CJ_JRC_RECHECK_MS).
 * Returns the index or -1. */
static long slot_for_kid_context(cj_jrc_t *j, uint64_t now, const uint8_t *k,
                                 size_t kl, int *kind)
{
    cj_jrc_pledge_t rec;
    uint32_t idx = slot_match(j, k, kl, kind);
    int rc;

    if (idx != CJ_JRC_NIL) {
        slot_touch(j, &j->cfg.slots[idx]);
        return (long)idx;
    }
    j->stats.lookups++;
    rc = j->store.lookup(j->store.ctx, k, kl, &rec);
    if (rc == CJ_ERR_NOTFOUND) {
        j->stats.lookups++;
        rc = j->store.lookup_context(j->store.ctx, k, kl, &rec);
    }
    if (!store_ok(j, rc)) {
        cj_crypto_wipe(&rec, sizeof rec); /* may be partly filled */
        return -1;
    }
    idx = slot_victim(j);
    rc = slot_load(j, idx, &rec);
    cj_crypto_wipe(&rec, sizeof rec);
    if (rc != CJ_OK)
        return -1;
    j->cfg.slots[idx].recheck_at = recheck_time(now);
    *kind = slot_kind(&j->cfg.slots[idx], k, kl);
    return *kind == KIND_NONE ? -1 : (long)idx;
}

/* A request naming cached slot idx could not be verified under its
 * context: has the operator given the pledge another PSK since the slot
 * was loaded (or removed it)?  Reads the record, at most once per
 * CJ_JRC_RECHECK_MS, and reloads the slot from it when its PSK differs
 * ("PSK changes" in cojp/jrc.h); a record that is gone empties the slot.
 * True when the slot now holds another context, so the request is worth
 * a second try. */
static bool slot_recheck(cj_jrc_t *j, uint32_t idx, uint64_t now)
{
    cj_jrc_slot_t *s = &j->cfg.slots[idx];
    cj_jrc_pledge_t rec;
    bool moved = false;
    int rc;

    if (!s->used || now < s->recheck_at)
        return false;
    s->recheck_at = recheck_time(now);
    j->stats.lookups++;
    rc = j->store.lookup(j->store.ctx, s->rec.id, s->rec.id_len, &rec);
    if (rc == CJ_ERR_NOTFOUND) {
        slot_clear(j, s);
    } else if (store_ok(j, rc) &&
               cj_crypto_ct_compare(rec.psk, s->rec.psk, sizeof rec.psk) != 0) {
        moved = slot_load(j, idx, &rec) == CJ_OK;
        if (moved)
            s->recheck_at = recheck_time(now);
    }
    cj_crypto_wipe(&rec, sizeof rec);
    return moved;
}

/* Slot of a pledge by id (parameter updates); psk (may be NULL) is the
 * PSK of the record the caller just read: a cached slot holding a
 * context of another one is reloaded.  Returns the index, or a negative
 * error (CJ_ERR_NOTFOUND, CJ_ERR_STORAGE). */
static long slot_for_id(cj_jrc_t *j, const uint8_t *id, size_t id_len,
                        const uint8_t *psk)
{
    cj_jrc_pledge_t rec;
    uint32_t idx = index_find(j, KEY_ID, id, id_len);
    int rc;

    if (idx != CJ_JRC_NIL && psk != NULL &&
        cj_crypto_ct_compare(j->cfg.slots[idx].rec.psk, psk, 16) != 0) {
        slot_clear(j, &j->cfg.slots[idx]);
        idx = CJ_JRC_NIL;
    }
    if (idx != CJ_JRC_NIL) {
        slot_touch(j, &j->cfg.slots[idx]);
        return (long)idx;
    }
    j->stats.lookups++;
    rc = j->store.lookup(j->store.ctx, id, id_len, &rec);
    if (!store_ok(j, rc)) {
        cj_crypto_wipe(&rec, sizeof rec);
        return rc == CJ_ERR_NOTFOUND ? CJ_ERR_NOTFOUND : CJ_ERR_STORAGE;
    }
    idx = slot_victim(j);
    rc = slot_load(j, idx, &rec);
    cj_crypto_wipe(&rec, sizeof rec);
    return rc == CJ_OK ? (long)idx : rc;
}

static bool blacklisted(const cj_jrc_t *j, const uint8_t *id, size_t len)
{
    for (size_t i = 0; i < j->bl_count; i++)
        if (bytes_eq(id, len, j->bl[i], j->bl_len[i]))
            return true;
    return false;
}

/* ---- objects ------------------------------------------------------------ */

/* Optional parameters a pledge said it cannot act upon at all (an
 * Unsupported_Parameter with null addinfo, RFC 9031 section 8.4.5): the
 * JRC does not configure them again. */
enum { OMIT_JRC_ADDRESS = 1, OMIT_BLACKLIST = 2, OMIT_JOIN_RATE = 4 };

static unsigned omitted(const cj_cojp_join_request_t *jr)
{
    unsigned m = 0;
    for (size_t i = 0; jr->has_unsupported && i < jr->unsupported.count; i++) {
        const cj_cojp_param_t *u = &jr->unsupported.params[i];
        if (u->addinfo_len != 0)
            continue; /* a value it cannot use, not the parameter */
        m |= u->label == CJ_COJP_LABEL_JRC_ADDRESS ? OMIT_JRC_ADDRESS
           : u->label == CJ_COJP_LABEL_BLACKLIST   ? OMIT_BLACKLIST
           : u->label == CJ_COJP_LABEL_JOIN_RATE   ? OMIT_JOIN_RATE
                                                   : 0u;
    }
    return m;
}

/* The engine's blacklist into c (section 8.4.2), present even when
 * empty. */
static void set_blacklist(const cj_jrc_t *j, cj_cojp_config_t *c)
{
    c->has_blacklist = true;
    c->blacklist_count = j->bl_count;
    for (size_t i = 0; i < j->bl_count; i++) {
        c->blacklist[i].p = j->bl[i];
        c->blacklist[i].len = j->bl_len[i];
    }
}

/* Configuration (section 8.4.2).  short_id < 0: absent; omit: OMIT_*
 * bits of parameters left out. */
static int build_config(const cj_jrc_t *j, uint8_t *buf, size_t cap,
                        bool keys, long short_id, bool has_lease,
                        uint64_t lease, bool full, unsigned omit)
{
    cj_cojp_config_t c;
    uint8_t sid[CJ_COJP_SHORT_ID_LEN];

    memset(&c, 0, sizeof c);
    if (keys) {
        for (size_t i = 0; i < j->key_count; i++) {
            c.keys[i].key_id = j->keys[i].key_id;
            c.keys[i].key_usage = j->keys[i].key_usage;
            c.keys[i].key = j->keys[i].key;
        }
        c.key_count = j->key_count;
    }
    if (short_id >= 0) {
        sid[0] = (uint8_t)(short_id >> 8);
        sid[1] = (uint8_t)short_id;
        c.short_id = sid;
        c.has_lease_time = has_lease;
        c.lease_time = lease;
    }
    if (full) {
        if (!(omit & OMIT_JRC_ADDRESS))
            c.jrc_address = j->cfg.jrc_address;
        if (j->cfg.join_rate != UINT32_MAX && !(omit & OMIT_JOIN_RATE)) {
            c.has_join_rate = true;
            c.join_rate = j->cfg.join_rate;
        }
    }
    if (keys && j->bl_count > 0 && !(omit & OMIT_BLACKLIST))
        set_blacklist(j, &c);
    return cj_cojp_config_encode(&c, buf, cap);
}

/* Configuration carrying the blacklist alone (section 8.4.2), present
 * even when empty: an empty one clears the node's list. */
static int build_blacklist(const cj_jrc_t *j, uint8_t *buf, size_t cap)
{
    cj_cojp_config_t c;

    memset(&c, 0, sizeof c);
    set_blacklist(j, &c);
    return cj_cojp_config_encode(&c, buf, cap);
}

/* Unsupported_Configuration with one parameter; addinfo is one CBOR item
 * or NULL for null.  Returns the length or a negative error. */
static int build_unsupported(uint8_t *buf, size_t cap, int64_t code,
                             int64_t label, const uint8_t *addinfo,
                             size_t addinfo_len)
{
    cj_cojp_unsupported_t u;

    memset(&u, 0, sizeof u);
    u.count = 1;
    u.params[0].code = code;
    u.params[0].label = label;
    u.params[0].addinfo = addinfo;
    u.params[0].addinfo_len = addinfo_len;
    return cj_cojp_unsupported_encode(&u, buf, cap);
}

/* ---- join exchange ------------------------------------------------------ */

/* What the caller of respond() hands over. */
typedef struct req_in {
    const cj_coap_msg_t *m;      /* outer request as received */
    const cj_addr_t *from;
    const uint8_t *copy;         /* option value + payload, for the cache */
    size_t copy_len;             /* 0: too long to cache */
    size_t copy_opt_len;
    bool claimed;                /* its Partial IV is already ours */
} req_in_t;

/* The request of rq as the slot's repeat cache holds it: claimed, no
 * response yet (nothing when it is too long to cache). */
static void cache_request(cj_jrc_slot_t *s, const req_in_t *rq)
{
    cj_jrc_repeat_t *c = &s->rec.repeat;

    memset(c, 0, sizeof *c);
    s->req_claimed = false;
    if (rq->copy_len == 0)
        return;
    memcpy(c->req, rq->copy, rq->copy_len);
    c->req_len = (uint16_t)rq->copy_len;
    c->req_opt_len = (uint8_t)rq->copy_opt_len;
    c->from = *rq->from;
    s->req_claimed = true;
}

/* Add the protected response resp to the cached request (claimed by
 * cache_request); a response too long to keep empties the cache. */
static void cache_response(cj_jrc_slot_t *s, const uint8_t *resp,
                           size_t resp_len)
{
    cj_jrc_repeat_t *c = &s->rec.repeat;
    cj_coap_msg_t m;
    size_t off;

    s->req_claimed = false;
    if (c->req_len == 0 || cj_coap_parse(&m, resp, resp_len) != CJ_OK) {
        memset(c, 0, sizeof *c);
        return;
    }
    off = m.token_len ? (size_t)(m.token + m.token_len - resp) : 4;
    if (1 + resp_len - off > CJ_JRC_RESP_CACHE) {
        memset(c, 0, sizeof *c);
        return;
    }
    c->resp[0] = m.code;
    memcpy(c->resp + 1, resp + off, resp_len - off);
    c->resp_len = (uint16_t)(1 + resp_len - off);
}

/* Whether the request in rq is byte for byte the slot's cached one
 * (OSCORE option value and payload; the source is checked apart). */
static bool cache_same(const cj_jrc_repeat_t *c, const req_in_t *rq)
{
    return c->req_len && rq->copy_len == c->req_len &&
           rq->copy_opt_len == c->req_opt_len &&
           memcmp(rq->copy, c->req, c->req_len) == 0;
}

/* Re-send the cached response under the token of request m (agreement
 * 3): no OSCORE processing, same bytes after the token.  Returns 1 or
 * 0 (does not fit out). */
static int send_cached(cj_jrc_t *j, const cj_jrc_repeat_t *c,
                       const cj_coap_msg_t *m, const cj_addr_t *to,
                       cj_out_t *out);

/* Claim the request's Partial IV on the store before anything else of it
 * is written (several engines, one store: a replay that passed a stale
 * in-memory window ends here, changing nothing).  The claimed request is
 * remembered (with its source) so that its retransmission can be
 * answered if a later step fails (the store cannot release a claim).
 * CJ_OK, or CJ_ERR_REPLAY / CJ_ERR_NOTFOUND (slot cleared) /
 * CJ_ERR_STORAGE. */
static int claim_first(cj_jrc_t *j, cj_jrc_slot_t *s,
                       const cj_oscore_req_t *bind, const req_in_t *rq)
{
    int rc;

    if (rq->claimed)
        return CJ_OK;
    rc = claim_piv(j, s, bind);
    if (rc != CJ_OK)
        return rc;
    cache_request(s, rq);
    return CJ_OK;
}

/* Another engine answered this request first (accept_piv refused its
 * Partial IV): if the record's repeat cache, as the store holds it now,
 * is this very request from this source, adopt it so the answer is that
 * engine's bytes.  True when adopted. */
static bool cache_refresh(cj_jrc_t *j, cj_jrc_slot_t *s, const req_in_t *rq)
{
    cj_jrc_pledge_t rec;
    const cj_jrc_repeat_t *c = &rec.repeat;
    bool ok;
    int rc;

    if (rq->copy_len == 0)
        return false;
    j->stats.lookups++;
    rc = j->store.lookup(j->store.ctx, s->rec.id, s->rec.id_len, &rec);
    ok = store_ok(j, rc) &&
         bytes_eq(rec.id_context, rec.id_context_len, s->rec.id_context,
                  s->rec.id_context_len) &&
         c->req_len <= sizeof c->req && c->resp_len <= sizeof c->resp &&
         c->resp_len > 0 && c->from.len <= CJ_ADDR_MAX && cache_same(c, rq) &&
         cj_addr_equal(&c->from, rq->from);
    if (ok) {
        s->rec.repeat = rec.repeat;
        s->req_claimed = false;
    }
    cj_crypto_wipe(&rec, sizeof rec);
    return ok;
}

/* Header of an answer to request m: a piggybacked ACK to a CON, else a
 * NON with a fresh MID (agreement 3). */
static void answer_init(cj_jrc_t *j, cj_coap_builder_t *b, uint8_t *buf,
                        size_t cap, const cj_coap_msg_t *m, uint8_t code)
{
    bool con = m->type == CJ_COAP_CON;
    uint16_t mid = con ? m->mid : j->mid++;

    cj_coap_build_init(b, buf, cap, con ? CJ_COAP_ACK : CJ_COAP_NON, code, mid,
                       m->token, m->token_len);
}

/* Protect and emit an answer under ctx (new Partial IV, section 8.3); the
 * request's Partial IV was claimed before (claim_first).  On failure roll
 * the window back to *saved and send nothing (the slot may have been
 * cleared as stale: callers only write its replay window then, which a
 * cleared slot ignores).  Returns 1 or 0. */
static int respond(cj_jrc_t *j, cj_jrc_slot_t *s, cj_oscore_ctx_t *ctx,
                   const cj_oscore_replay_t *saved, const cj_oscore_req_t *bind,
                   const req_in_t *rq, uint8_t code, const uint8_t *payload,
                   size_t plen, cj_out_t *out)
{
    cj_coap_builder_t b;
    bool persistent = ctx == &s->osc;
    int n;

    answer_init(j, &b, j->body, sizeof j->body, rq->m, code);
    cj_coap_build_payload(&b, payload, plen);
    n = cj_coap_build_finish(&b);
    if (n >= 0 && persistent)
        n = ssn_ready(j, s) == CJ_OK ? n : CJ_ERR_STORAGE;
    if (n >= 0)
        n = cj_oscore_protect_response(ctx, bind, true, j->body, (size_t)n,
                                       out->buf, out->cap);
    cj_crypto_wipe(j->body, sizeof j->body);
    if (n < 0) {
        if (persistent)
            s->osc.replay = *saved;
        out->len = 0;
        return 0;
    }
    out->len = (size_t)n;
    out->to = *rq->from;
    cache_response(s, out->buf, out->len);
    if (!persistent)
        return 1;
    /* The cache goes to the store with the admission, before the answer
     * leaves: a restarted engine then repeats these bytes (jrc.h).  When
     * that fails the request stays claimed and unanswered. */
    {
        const uint8_t *c;
        size_t cl;
        int rc;

        c = slot_ctx_id(s, &cl);
        rc = j->store.save_repeat(j->store.ctx, s->rec.id, s->rec.id_len,
                                  s->rec.psk, c, cl, &s->rec.repeat);
        if (rc == CJ_OK)
            return 1;
        if (rc == CJ_ERR_NOTFOUND) {
            slot_clear(j, s);
        } else {
            (void)store_ok(j, rc);
            s->osc.replay = *saved;
            s->rec.repeat.resp_len = 0;
            memset(s->rec.repeat.resp, 0, sizeof s->rec.repeat.resp);
            s->req_claimed = s->rec.repeat.req_len != 0;
        }
    }
    cj_crypto_wipe(out->buf, out->len);
    out->len = 0;
    return 0;
}

static bool uri_path_is_j(const cj_coap_msg_t *m)
{
    cj_coap_opt_iter_t it;
    cj_coap_opt_t o;
    int seen = 0;

    cj_coap_opt_iter_init(&it, m);
    while (cj_coap_opt_next(&it, &o)) {
        if (o.num != CJ_COAP_OPT_URI_PATH)
            continue;
        if (seen++ || o.len != 1 || o.val[0] != 'j')
            return false;
    }
    return seen == 1;
}

static void set_ev(cj_jrc_t *j, const cj_jrc_slot_t *s, int ev, cj_out_t *out)
{
    memcpy(j->ev_id, s->rec.id, s->rec.id_len);
    j->ev_id_len = s->rec.id_len;
    out->event = ev;
}

/* A verified request under the slot's current context (plain holds it,
 * plain_len bytes): CoJP processing of sections 8.1 and 8.3. */
static int process_join(cj_jrc_t *j, uint64_t now, cj_jrc_slot_t *s,
                        const cj_oscore_replay_t *saved,
                        const cj_oscore_req_t *bind, const req_in_t *rq,
                        size_t plain_len, cj_out_t *out)
{
    cj_coap_msg_t im;
    cj_cojp_join_request_t jr;
    cj_cojp_report_t why;
    uint8_t obj[OBJ_MAX];
    uint8_t addinfo[40];
    cj_cbor_enc_t e;
    uint16_t short_id = 0;
    int n, rc;

    if (cj_coap_parse(&im, j->plain, plain_len) != CJ_OK)
        goto drop;
    /* The Partial IV first, before any admission write (jrc.h "Several
     * instances").  Refused: another engine answered this request (or
     * this one before a restart whose cache was not loaded yet); its
     * answer, if the store holds it for this request and source, is
     * repeated as is. */
    rc = claim_first(j, s, bind, rq);
    if (rc == CJ_ERR_REPLAY && cache_refresh(j, s, rq)) {
        s->osc.replay = *saved;
        cj_crypto_wipe(obj, sizeof obj);
        return send_cached(j, &s->rec.repeat, rq->m, rq->from, out);
    }
    if (rc != CJ_OK)
        goto drop;
    /* Section 8.1.1 defines POST to /j only. */
    if (im.code != CJ_COAP_POST || !uri_path_is_j(&im)) {
        uint8_t code = im.code != CJ_COAP_POST ? CJ_COAP_METHOD_NOT_ALLOWED
                                                : CJ_COAP_NOT_FOUND;
        if (!respond(j, s, &s->osc, saved, bind, rq, code, NULL, 0, out))
            goto drop_quiet;
        j->stats.refused++;
        set_ev(j, s, CJ_JRC_EV_REJECTED, out);
        return 1;
    }

    rc = cj_cojp_join_request_decode(im.payload, im.payload_len, &jr, &why);
    n = -1;
    if (rc != CJ_OK) {
        /* Section 8.3.1: a parameter problem in a request gets a
         * Diagnostic Response; without a nameable parameter, no payload
         * (cojp.h). */
        if (why.has_param)
            n = build_unsupported(obj, sizeof obj, why.param.code,
                                  why.param.label, why.param.addinfo,
                                  why.param.addinfo_len);
    } else if (j->cfg.network_id_len > 0 &&
               !bytes_eq(jr.network_id, jr.network_id_len, j->cfg.network_id,
                         j->cfg.network_id_len)) {
        /* Wrong network.  Section 8.4.5: "If the pledge can act on the
         * parameter, but cannot configure the setting indicated by the
         * parameter value, the pledge can hint this to the JRC.  In this
         * case, parameter_addinfo MUST be set to the value of the
         * parameter that cannot be acted upon following the normative
         * parameter structure specified in this document."  The JRC is in
         * the same position: it knows label 5 but not this value, so
         * code Unsupported (0), label 5, addinfo the bstr received. */
        rc = CJ_ERR_RANGE;
        cj_cbor_enc_init(&e, addinfo, sizeof addinfo);
        cj_cbor_put_bstr(&e, jr.network_id, jr.network_id_len);
        n = cj_cbor_enc_finish(&e);
        n = build_unsupported(obj, sizeof obj, CJ_COJP_CODE_UNSUPPORTED,
                              CJ_COJP_LABEL_NETWORK_ID, n > 0 ? addinfo : NULL,
                              n > 0 ? (size_t)n : 0);
    } else if ((s->rec.allowed_roles & (1u << jr.role)) == 0) {
        /* Role not allowed for this pledge: same sentence of section
         * 8.4.5; code Unsupported (0), label 1, addinfo the role asked. */
        rc = CJ_ERR_RANGE;
        cj_cbor_enc_init(&e, addinfo, sizeof addinfo);
        cj_cbor_put_uint(&e, jr.role);
        n = cj_cbor_enc_finish(&e);
        n = build_unsupported(obj, sizeof obj, CJ_COJP_CODE_UNSUPPORTED,
                              CJ_COJP_LABEL_ROLE, addinfo, (size_t)n);
    }
    if (rc != CJ_OK) {
        if (!respond(j, s, &s->osc, saved, bind, rq, CJ_COAP_BAD_REQUEST,
                     n > 0 ? obj : NULL, n > 0 ? (size_t)n : 0, out))
            goto drop_quiet;
        j->stats.diagnostics++;
        set_ev(j, s, CJ_JRC_EV_REJECTED, out);
        return 1;
    }

    /* Admission (section 8.1.2), after the claim.  Lease and join record
     * are idempotent, so a later failure leaves nothing the claimed
     * request's retransmission could not redo. */
    rc = j->store.assign_short_id(j->store.ctx, s->rec.id, s->rec.id_len, now,
                                  j->cfg.lease_hours, false, &short_id);
    if (!store_ok(j, rc) || short_id >= 0xfffe) {
        if (rc == CJ_OK)
            j->stats.store_errors++;
        s->osc.replay = *saved;
        goto drop_quiet;
    }
    rc = j->store.record_join(j->store.ctx, s->rec.id, s->rec.id_len, jr.role,
                              short_id, now);
    if (!store_ok(j, rc)) {
        s->osc.replay = *saved;
        goto drop_quiet;
    }
    s->rec.joined = true;
    s->rec.role = jr.role;
    s->rec.short_id = short_id;
    /* A pledge that cannot act on the key set or the short identifier
     * cannot take part in the network: those are sent regardless. */
    n = build_config(j, obj, sizeof obj, true, short_id,
                     j->cfg.lease_hours != 0, j->cfg.lease_hours, true, omitted(&jr));
    if (n < 0 || !respond(j, s, &s->osc, saved, bind, rq, CJ_COAP_CHANGED,
                          obj, (size_t)n, out)) {
        s->osc.replay = *saved;
        goto drop_quiet;
    }
    cj_crypto_wipe(obj, sizeof obj);
    j->stats.joins++;
    j->ev_short_id = short_id;
    set_ev(j, s, CJ_JRC_EV_JOINED, out);
    return 1;

drop:
    s->osc.replay = *saved;
drop_quiet:
    cj_crypto_wipe(obj, sizeof obj);
    j->stats.dropped++;
    out->len = 0;
    return 0;
}

/* Appendix B.2 step 2: verified request #1 under the pledge-id context;
 * answer 4.01 under R2 || ID1 with R2 as 'kid context'. */
static int recovery_first(cj_jrc_t *j, cj_jrc_slot_t *s, cj_oscore_ctx_t *vctx,
                          const cj_oscore_replay_t *saved,
                          const cj_oscore_req_t *bind, const req_in_t *rq,
                          cj_out_t *out)
{
    cj_oscore_ctx_t r2ctx;
    uint8_t r2[CJ_JRC_NONCE_LEN];
    uint8_t idc[CJ_OSCORE_MAX_ID_CONTEXT];
    cj_coap_builder_t b;
    bool persistent = vctx == &s->osc;
    /* ID1: the ID Context the request was verified under, the slot's own
     * (the pledge id, or the recovered one of a must_recover record) or
     * the temporary pledge-id context (vctx, already wiped) */
    bool pair = persistent && s->rec.id_context_len;
    const uint8_t *id1 = pair ? s->rec.id_context : s->rec.id;
    size_t id1_len = pair ? s->rec.id_context_len : s->rec.id_len;
    int n;

    if (sizeof r2 + id1_len > sizeof idc ||
        cj_crypto_random(r2, sizeof r2) != CJ_OK)
        goto fail;
    memcpy(idc, r2, sizeof r2);
    memcpy(idc + sizeof r2, id1, id1_len);
    if (derive(&r2ctx, s->rec.psk, idc, sizeof r2 + id1_len) != CJ_OK)
        goto fail;
    /* The keys are bound to R2 || ID1; the option carries R2 alone, which
     * protect takes from id_context when send_kid_context is set (the
     * ID Context is not part of the AAD, RFC 8613 section 5.4). */
    memcpy(r2ctx.id_context, r2, sizeof r2);
    r2ctx.id_context_len = sizeof r2;
    r2ctx.send_kid_context = true;
    /* R2 is never reused, so its context's Partial IV 0 needs no
     * persistence.  The request's Partial IV is claimed first. */
    n = persistent && claim_first(j, s, bind, rq) != CJ_OK ? CJ_ERR_STORAGE
                                                           : 0;
    answer_init(j, &b, j->body, sizeof j->body, rq->m, CJ_COAP_UNAUTHORIZED);
    if (n >= 0)
        n = cj_coap_build_finish(&b);
    if (n >= 0)
        n = cj_oscore_protect_response(&r2ctx, bind, true, j->body, (size_t)n,
                                       out->buf, out->cap);
    cj_oscore_ctx_wipe(&r2ctx);
    cj_crypto_wipe(j->body, sizeof j->body);
    if (n < 0)
        goto fail;
    slot_set_r2(j, s, r2);
    out->len = (size_t)n;
    out->to = *rq->from;
    if (!persistent)
        cache_request(s, rq);
    /* memory only: R2 is not persisted either */
    cache_response(s, out->buf, out->len);
    j->stats.recoveries++;
    set_ev(j, s, CJ_JRC_EV_RECOVERY, out);
    return 1;

fail:
    if (persistent)
        s->osc.replay = *saved;
    j->stats.dropped++;
    out->len = 0;
    return 0;
}

static int send_cached(cj_jrc_t *j, const cj_jrc_repeat_t *c,
                       const cj_coap_msg_t *m, const cj_addr_t *to,
                       cj_out_t *out)
{
    cj_coap_builder_t b;
    int n;

    answer_init(j, &b, out->buf, out->cap, m, c->resp[0]);
    n = cj_coap_build_finish(&b);
    if (n < 0 || out->cap - (size_t)n < (size_t)c->resp_len - 1) {
        j->stats.dropped++;
        out->len = 0;
        return 0;
    }
    memcpy(out->buf + n, c->resp + 1, (size_t)c->resp_len - 1);
    out->len = (size_t)n + c->resp_len - 1;
    out->to = *to;
    j->stats.repeats++;
    return 1;
}

/* One pass over a request.  When it is dropped because the context of
 * the cached slot it names could not verify it, *stale is set to that
 * slot (the drop is then left to the caller to count), else -1. */
static int request_once(cj_jrc_t *j, uint64_t now, const cj_addr_t *from,
                        const cj_coap_msg_t *m, uint8_t *msg, size_t len,
                        cj_out_t *out, long *stale)
{
    cj_coap_opt_t opt;
    cj_oscore_option_t ov;
    cj_oscore_req_t bind;
    cj_oscore_replay_t saved;
    cj_oscore_ctx_t tmp;
    uint8_t copy[CJ_JRC_REQ_CACHE];
    req_in_t rq;
    cj_jrc_slot_t *s;
    long idx;
    int kind = KIND_NONE, n, rc;

    *stale = -1;
    /* Agreement 1: kid present and empty, kid context = the ID Context. */
    if (!cj_coap_opt_find(m, CJ_COAP_OPT_OSCORE, &opt) ||
        cj_oscore_option_decode(opt.val, opt.len, &ov) != CJ_OK ||
        ov.piv_len == 0 || !ov.has_kid || ov.kid_len != 0 ||
        !ov.has_kid_context || ov.kid_context_len == 0 ||
        ov.kid_context_len > CJ_OSCORE_MAX_ID_CONTEXT)
        goto drop;
    idx = slot_for_kid_context(j, now, ov.kid_context, ov.kid_context_len,
                               &kind);
    if (idx < 0)
        goto drop;
    s = &j->cfg.slots[idx];
    if (blacklisted(j, s->rec.id, s->rec.id_len))
        goto drop;

    rq.m = m;
    rq.from = from;
    rq.copy = copy;
    rq.copy_opt_len = opt.len;
    rq.copy_len = 0;
    rq.claimed = false;
    if ((size_t)opt.len + m->payload_len <= sizeof copy && opt.len <= 255) {
        memcpy(copy, opt.val, opt.len);
        if (m->payload_len)
            memcpy(copy + opt.len, m->payload, m->payload_len);
        rq.copy_len = opt.len + m->payload_len;
    }

    /* Agreement 3: a byte-identical repeat of the last request gets the
     * cached answer without OSCORE processing. */
    if (cache_same(&s->rec.repeat, &rq) &&
        (s->req_claimed || s->rec.repeat.resp_len)) {
        /* Only the source of the original gets anything: the pledge's
         * retransmissions come through the same JP, a copy from elsewhere
         * must not be able to reflect the response (or have the claimed
         * request answered) to another address. */
        if (!cj_addr_equal(from, &s->rec.repeat.from))
            goto drop;
        if (!s->req_claimed)
            return send_cached(j, &s->rec.repeat, m, from, out);
        /* Claimed by us, not answered (a store step failed after the
         * claim): process it again without a second claim. */
        rq.claimed = true;
    }

    if (kind == KIND_CURRENT) {
        saved = s->osc.replay;
        n = cj_oscore_unprotect_request(&s->osc, msg, len, j->plain,
                                        sizeof j->plain, &bind);
        if (n < 0)
            goto unverified;
        if ((j->cfg.recovery && s->rec.id_context_len == 0) ||
            s->rec.must_recover) {
            cj_crypto_wipe(j->plain, sizeof j->plain);
            return recovery_first(j, s, &s->osc, &saved, &bind, &rq, out);
        }
        n = process_join(j, now, s, &saved, &bind, &rq, (size_t)n, out);
        cj_crypto_wipe(j->plain, sizeof j->plain);
        return n;
    }

    if (kind == KIND_OLD) {
        /* The record runs a recovered context; the pledge-id context has
         * no trustworthy mutable state any more.  Only a new recovery run
         * may answer it (its 4.01 uses a fresh R2 context), and only for
         * a request the pledge sent after everything seen from it: its
         * one sequence number counter serves every context (RFC 8613
         * Appendix B.2), so a Partial IV not above the recovered
         * context's window is a captured old request.  Replayed, it would
         * replace the pending R2 and the repeat cache of the genuine
         * pledge.  old_replay (memory only) catches repeats of newer
         * ones while the slot is cached. */
        cj_oscore_replay_t w;
        uint64_t piv = cj_oscore_piv_value(ov.piv, ov.piv_len);

        if (!(j->cfg.recovery || s->rec.must_recover) ||
            (s->rec.replay.valid && piv <= s->rec.replay.highest) ||
            derive(&tmp, s->rec.psk, s->rec.id, s->rec.id_len) != CJ_OK)
            goto unverified;
        tmp.replay = s->old_replay;
        n = cj_oscore_unprotect_request(&tmp, msg, len, j->plain,
                                        sizeof j->plain, &bind);
        w = tmp.replay;
        cj_oscore_ctx_wipe(&tmp);
        cj_crypto_wipe(j->plain, sizeof j->plain);
        if (n < 0)
            goto unverified;
        saved = s->osc.replay;
        n = recovery_first(j, s, &tmp, &saved, &bind, &rq, out);
        if (n == 1)
            s->old_replay = w;
        return n;
    }

    /* KIND_R2, Appendix B.2 step 4: request #2 under R2 || R3. */
    if (derive(&tmp, s->rec.psk, ov.kid_context, ov.kid_context_len) !=
        CJ_OK)
        goto drop;
    n = cj_oscore_unprotect_request(&tmp, msg, len, j->plain, sizeof j->plain,
                                    &bind);
    rc = n < 0 ? n
               : j->store.save_context(j->store.ctx, s->rec.id, s->rec.id_len,
                                       s->rec.psk, ov.kid_context,
                                       ov.kid_context_len);
    if (rc != CJ_OK) {
        /* CJ_ERR_NOTFOUND: the record holds another PSK now, or is gone,
         * so the slot's context is dead */
        if (n >= 0) {
            (void)store_ok(j, rc); /* counts any other failure */
            if (rc == CJ_ERR_NOTFOUND)
                slot_clear(j, s);
        }
        cj_oscore_ctx_wipe(&tmp);
        cj_crypto_wipe(j->plain, sizeof j->plain);
        goto drop;
    }
    /* The new context replaces the old one; R2 is spent. */
    index_del(j, (uint32_t)idx, KEY_CTX);
    memcpy(s->rec.id_context, ov.kid_context, ov.kid_context_len);
    s->rec.id_context_len = (uint8_t)ov.kid_context_len;
    index_add(j, (uint32_t)idx, KEY_CTX);
    s->rec.ssn_reserved = 0;
    memset(&s->rec.replay, 0, sizeof s->rec.replay);
    s->rec.must_recover = false;
    slot_set_r2(j, s, NULL);
    memset(&s->rec.repeat, 0, sizeof s->rec.repeat);
    s->req_claimed = false;
    memset(&s->old_replay, 0, sizeof s->old_replay);
    cj_oscore_ctx_wipe(&s->osc);
    s->osc = tmp;
    cj_oscore_ctx_wipe(&tmp);
    s->osc.send_kid_context = false;
    if (cj_oscore_ctx_attach(&s->osc, &j->ssn_port, (uint32_t)idx) != CJ_OK) {
        /* cannot happen with our adaptor; keep the slot consistent */
        slot_clear(j, s);
        cj_crypto_wipe(j->plain, sizeof j->plain);
        goto drop;
    }
    memset(&saved, 0, sizeof saved);
    n = process_join(j, now, s, &saved, &bind, &rq, (size_t)n, out);
    cj_crypto_wipe(j->plain, sizeof j->plain);
    return n;

unverified:
    /* the slot may hold a context whose PSK the registry replaced */
    *stale = idx;
    out->len = 0;
    return 0;

drop:
    j->stats.dropped++;
    out->len = 0;
    return 0;
}

/* A request (cj_jrc_input).  When the context of the cached slot it
 * names cannot verify it, the slot may be stale ("PSK changes" in
 * cojp/jrc.h): after slot_recheck() reloaded it, the request is
 * processed once more from a copy taken before the first try (the first
 * try decrypts in place and wipes what does not verify). */
static int handle_request(cj_jrc_t *j, uint64_t now, const cj_addr_t *from,
                          const cj_coap_msg_t *m, uint8_t *msg, size_t len,
                          cj_out_t *out)
{
    bool kept = len <= sizeof j->body;
    long stale;
    int n;

    if (kept)
        memcpy(j->body, msg, len);
    n = request_once(j, now, from, m, msg, len, out, &stale);
    if (stale >= 0 && slot_recheck(j, (uint32_t)stale, now) && kept) {
        memcpy(msg, j->body, len);
        n = request_once(j, now, from, m, msg, len, out, &stale);
    }
    if (stale >= 0)
        j->stats.dropped++;
    return n;
}

/* ---- parameter updates -------------------------------------------------- */

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > CJ_TIME_NEVER - 1 - b || b >= CJ_TIME_NEVER - 1
               ? CJ_TIME_NEVER - 1
               : a + b;
}

/* How far above ACK_TIMEOUT a first timeout may be drawn: ACK_TIMEOUT *
 * (ACK_RANDOM_FACTOR - 1) (RFC 7252 section 4.2). */
static uint32_t timeout_spread(const cj_jrc_t *j)
{
    uint64_t s64 = (uint64_t)j->timing.ack_timeout_ms *
                   (j->timing.ack_random_factor_pct - 100u) / 100u;

    /* saturate: ACK_TIMEOUT plus the spread must stay a 32-bit timeout */
    if (s64 > UINT32_MAX - j->timing.ack_timeout_ms)
        s64 = UINT32_MAX - j->timing.ack_timeout_ms;
    return (uint32_t)s64;
}

/* The largest first timeout a sender with this timing may draw. */
static uint32_t first_timeout_max(const cj_jrc_t *j)
{
    return j->timing.ack_timeout_ms + timeout_spread(j);
}

static uint32_t first_timeout(const cj_jrc_t *j)
{
    uint32_t r = 0, span = timeout_spread(j);

    (void)cj_crypto_random((uint8_t *)&r, sizeof r);
    return j->timing.ack_timeout_ms +
           (span ? r % (span == UINT32_MAX ? span : span + 1u) : 0);
}

/* The whole life of an exchange whose first timeout is t (RFC 7252
 * section 4.8.2 MAX_TRANSMIT_WAIT with the timeout drawn): t * (2^(n+1)
 * - 1) for n = MAX_RETRANSMIT, summed saturating so no shift or
 * multiplication can overflow whatever the configured values. */
static uint64_t transmit_wait(const cj_jrc_t *j, uint32_t t)
{
    uint64_t sum = 0, step = t;

    for (unsigned i = 0; i <= j->timing.max_retransmit; i++) {
        sum = add_sat(sum, step);
        step = add_sat(step, step);
    }
    return sum;
}

static void upd_free(cj_jrc_update_t *u)
{
    cj_crypto_wipe(u, sizeof *u);
    u->state = UPD_FREE;
}

static size_t upd_in_use(const cj_jrc_t *j)
{
    size_t n = 0;

    for (size_t i = 0; i < CJ_JRC_MAX_INFLIGHT; i++)
        n += j->upd[i].state != UPD_FREE;
    return n;
}

static cj_jrc_update_t *upd_free_entry(cj_jrc_t *j)
{
    for (size_t i = 0; i < CJ_JRC_MAX_INFLIGHT; i++)
        if (j->upd[i].state == UPD_FREE)
            return &j->upd[i];
    return NULL;
}

/* Record an exchange's outcome; the event goes out once the store took
 * it.  Returns 1 when out carries the event. */
static int settle(cj_jrc_t *j, cj_jrc_update_t *u, uint64_t now, bool acked,
                  cj_out_t *out)
{
    int rc = j->store.record_update(j->store.ctx, u->id, u->id_len,
                                    j->camp_number, acked);

    if (!store_ok(j, rc)) {
        if (rc == CJ_ERR_NOTFOUND) {
            /* the node vanished from the registry: nothing to record */
            upd_free(u);
            return 0;
        }
        u->state = UPD_RECORD;
        u->acked = acked;
        u->deadline = now + CJ_JRC_STORE_RETRY_MS;
        return 0;
    }
    memcpy(j->ev_id, u->id, u->id_len);
    j->ev_id_len = u->id_len;
    j->ev_campaign = j->camp_number;
    out->event = acked ? CJ_JRC_EV_UPDATE_ACKED : CJ_JRC_EV_UPDATE_FAILED;
    upd_free(u);
    return 1;
}

/* Send one update to node rec.  Returns 1 (datagram or event in out), 0
 * when the node was settled silently, CJ_ERR_STORAGE to retry later. */
static int dispatch(cj_jrc_t *j, uint64_t now, const cj_jrc_pledge_t *rec,
                    cj_out_t *out)
{
    cj_jrc_update_t *u = upd_free_entry(j);
    cj_coap_builder_t b;
    uint8_t obj[OBJ_MAX];
    cj_jrc_slot_t *s;
    long idx;
    int n, rc;

    if (u == NULL)
        return CJ_ERR_BUSY;
    memset(u, 0, sizeof *u);
    memcpy(u->id, rec->id, rec->id_len);
    u->id_len = rec->id_len;

    rc = j->store.node_address(j->store.ctx, rec->id, rec->id_len, &u->to);
    if (rc == CJ_ERR_NOTFOUND)
        return settle(j, u, now, false, out);
    if (!store_ok(j, rc)) {
        upd_free(u);
        return CJ_ERR_STORAGE;
    }
    idx = slot_for_id(j, rec->id, rec->id_len, rec->psk);
    if (idx == CJ_ERR_NOTFOUND)
        return settle(j, u, now, false, out);
    if (idx < 0) {
        upd_free(u);
        return CJ_ERR_STORAGE;
    }
    s = &j->cfg.slots[idx];
    if (s->rec.must_recover)
        /* its stored sequence number may be one the node saw already */
        return settle(j, u, now, false, out);

    if (j->camp_phase == PH_TARGET && j->camp_kind == CAMP_EVICT)
        /* Section 8.4.4: lease_time 0 ends the lease at once. */
        n = build_config(j, obj, sizeof obj, false, j->camp_target_short,
                         true, 0, false, 0);
    else if (j->camp_phase == PH_TARGET)
        n = build_config(j, obj, sizeof obj, false, j->camp_target_short,
                         j->cfg.lease_hours != 0, j->cfg.lease_hours, false, 0);
    else if (j->camp_kind == CAMP_READMIT)
        n = build_blacklist(j, obj, sizeof obj);
    else
        n = build_config(j, obj, sizeof obj, true, -1, false, 0, false, 0);
    if (n < 0 || cj_crypto_random(u->token, sizeof u->token) != CJ_OK) {
        upd_free(u);
        return CJ_ERR_STORAGE;
    }
    /* Section 8.2.1: CON POST, Uri-Host "6tisch.arpa", Uri-Path "j". */
    u->mid = j->mid++;
    cj_coap_build_init(&b, j->body, sizeof j->body, CJ_COAP_CON,
                       CJ_COAP_POST, u->mid, u->token, sizeof u->token);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, CJ_COJP_URI_HOST);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, CJ_COJP_URI_PATH);
    cj_coap_build_payload(&b, obj, (size_t)n);
    n = cj_coap_build_finish(&b);
    cj_crypto_wipe(obj, sizeof obj);
    if (n >= 0 && ssn_ready(j, s) != CJ_OK)
        n = CJ_ERR_STORAGE;
    if (n >= 0)
        n = cj_oscore_protect_request(&s->osc, j->body, (size_t)n, u->msg,
                                      sizeof u->msg, &u->bind);
    cj_crypto_wipe(j->body, sizeof j->body);
    if (n < 0 || (size_t)n > out->cap) {
        /* A number burnt by a protect whose output we drop is harmless. */
        upd_free(u);
        return CJ_ERR_STORAGE;
    }
    u->msg_len = (uint16_t)n;
    u->osc = s->osc;
    u->osc.platform = NULL;
    u->state = UPD_WAIT;
    u->timeout_ms = first_timeout(j);
    u->deadline = add_sat(now, u->timeout_ms);
    u->give_up = add_sat(now, transmit_wait(j, u->timeout_ms));
    memcpy(out->buf, u->msg, u->msg_len);
    out->len = u->msg_len;
    out->to = u->to;
    j->stats.updates_sent++;
    return 1;
}

static bool phase_dispatching(const cj_jrc_t *j)
{
    return j->camp_phase == PH_TARGET || j->camp_phase == PH_6LN ||
           j->camp_phase == PH_6LBR;
}

/* Advance the campaign by at most one datagram or event. */
static int campaign_step(cj_jrc_t *j, uint64_t now, cj_out_t *out)
{
    cj_jrc_pledge_t rec;
    int rc;

    if (j->camp_phase == PH_WAIT_6LN && upd_in_use(j) == 0) {
        /* Section 8.4.3.1: 6LBRs switch at once, so they get the new set
         * only after every 6LN exchange settled. */
        j->camp_phase = PH_6LBR;
        j->camp_cursor = 0;
    }
    while (phase_dispatching(j) && j->camp_retry_at <= now &&
           upd_free_entry(j) != NULL) {
        if (j->camp_phase == PH_TARGET) {
            j->stats.lookups++;
            rc = j->store.lookup(j->store.ctx, j->camp_target,
                                 j->camp_target_len, &rec);
            if (rc == CJ_OK)
                rc = dispatch(j, now, &rec, out);
            else if (rc == CJ_ERR_NOTFOUND)
                rc = 0;
            else
                j->stats.store_errors++;
            cj_crypto_wipe(&rec, sizeof rec); /* every path above */
            if (rc == CJ_ERR_STORAGE || rc < 0) {
                j->camp_retry_at = now + CJ_JRC_STORE_RETRY_MS;
                return 0;
            }
            j->camp_phase = j->camp_kind == CAMP_EVICT ? PH_6LN : PH_DONE;
            j->camp_cursor = 0;
            if (rc == 1)
                return 1;
            continue;
        }
        uint64_t c = j->camp_cursor;
        rc = j->store.next_joined(j->store.ctx, &c, &rec);
        if (rc != CJ_OK)
            cj_crypto_wipe(&rec, sizeof rec); /* may be partly filled */
        if (rc == CJ_ERR_NOTFOUND) {
            j->camp_phase = j->camp_phase == PH_6LN ? PH_WAIT_6LN : PH_DONE;
            if (j->camp_phase == PH_WAIT_6LN && upd_in_use(j) == 0) {
                j->camp_phase = PH_6LBR;
                j->camp_cursor = 0;
            }
            continue;
        }
        if (rc != CJ_OK) {
            j->stats.store_errors++;
            j->camp_retry_at = now + CJ_JRC_STORE_RETRY_MS;
            return 0;
        }
        if (c == j->camp_cursor) {
            /* a store whose cursor does not move would loop forever */
            cj_crypto_wipe(&rec, sizeof rec);
            j->camp_phase = j->camp_phase == PH_6LN ? PH_WAIT_6LN : PH_DONE;
            continue;
        }
        bool want = j->camp_phase == PH_6LN ? rec.role != CJ_COJP_ROLE_6LBR
                                            : rec.role == CJ_COJP_ROLE_6LBR;
        if (!want || blacklisted(j, rec.id, rec.id_len) ||
            bytes_eq(rec.id, rec.id_len, j->camp_target, j->camp_target_len)) {
            cj_crypto_wipe(&rec, sizeof rec);
            j->camp_cursor = c;
            continue;
        }
        rc = dispatch(j, now, &rec, out);
        cj_crypto_wipe(&rec, sizeof rec);
        if (rc < 0) {
            j->camp_retry_at = now + CJ_JRC_STORE_RETRY_MS;
            return 0;
        }
        j->camp_cursor = c;
        if (rc == 1)
            return 1;
    }
    if (j->camp_phase == PH_DONE && upd_in_use(j) == 0) {
        j->camp_active = false;
        j->ev_campaign = j->camp_number;
        out->event = CJ_JRC_EV_CAMPAIGN_DONE;
        return 1;
    }
    return 0;
}

int cj_jrc_poll(cj_jrc_t *j, uint64_t now, cj_out_t *out)
{
    if (j == NULL || out == NULL)
        return 0;
    cj_out_reset(out);
    for (size_t i = 0; i < CJ_JRC_MAX_INFLIGHT; i++) {
        cj_jrc_update_t *u = &j->upd[i];
        if (u->state == UPD_FREE || u->deadline > now)
            continue;
        if (u->state == UPD_RECORD) {
            if (settle(j, u, now, u->acked, out))
                return 1;
            continue;
        }
        /* RFC 7252 section 4.2: retransmit with doubled timeout until
         * MAX_RETRANSMIT, then give up; an empty ACK only stopped the
         * retransmissions, never moving the give-up time. */
        if (u->state == UPD_WAIT && u->retransmits < j->timing.max_retransmit &&
            u->msg_len <= out->cap) {
            u->retransmits++;
            u->timeout_ms = u->timeout_ms > UINT32_MAX / 2u
                                ? UINT32_MAX
                                : u->timeout_ms * 2u;
            u->deadline = add_sat(now, u->timeout_ms);
            memcpy(out->buf, u->msg, u->msg_len);
            out->len = u->msg_len;
            out->to = u->to;
            j->stats.updates_sent++;
            return 1;
        }
        if (settle(j, u, now, false, out))
            return 1;
    }
    if (j->camp_active)
        return campaign_step(j, now, out);
    return 0;
}

uint64_t cj_jrc_next_timer(const cj_jrc_t *j)
{
    uint64_t t = CJ_TIME_NEVER;

    for (size_t i = 0; i < CJ_JRC_MAX_INFLIGHT; i++)
        if (j->upd[i].state != UPD_FREE && j->upd[i].deadline < t)
            t = j->upd[i].deadline;
    if (j->camp_active) {
        bool free_entry = false;
        for (size_t i = 0; i < CJ_JRC_MAX_INFLIGHT; i++)
            free_entry |= j->upd[i].state == UPD_FREE;
        if (phase_dispatching(j) && free_entry && j->camp_retry_at < t)
            t = j->camp_retry_at;
        if ((j->camp_phase == PH_DONE || j->camp_phase == PH_WAIT_6LN) &&
            upd_in_use(j) == 0)
            t = 0;
    }
    return t;
}

/* An empty message of the given type echoing mid, to `to`: the ACK of a
 * CON or the Reset rejecting one.  Four bytes in answer to at least four:
 * no amplification.  Returns 1 when out carries it. */
static int answer_empty(cj_out_t *out, const cj_addr_t *to, uint8_t type,
                        uint16_t mid)
{
    cj_coap_builder_t b;
    int n;

    cj_coap_build_init(&b, out->buf, out->cap, type, CJ_COAP_EMPTY, mid, NULL,
                       0);
    n = cj_coap_build_finish(&b);
    if (n <= 0)
        return 0;
    out->len = (size_t)n;
    out->to = *to;
    return 1;
}

/* Remember a CON separate response just acknowledged, for as long as its
 * sender may retransmit it: the exchange lifetime is bounded by the
 * span of the sender's retransmissions under this engine's own timing
 * (RFC 7252 section 4.8.2; the node uses Table 1 of RFC 9031 as the
 * engine does).  The oldest record gives way when all are taken. */
static void acked_remember(cj_jrc_t *j, uint64_t now, const cj_addr_t *from,
                           uint16_t mid)
{
    cj_jrc_acked_t *a = &j->acked[j->acked_next];

    j->acked_next = (uint8_t)((j->acked_next + 1u) % CJ_JRC_MAX_INFLIGHT);
    a->from = *from;
    a->mid = mid;
    a->until = add_sat(now, transmit_wait(j, first_timeout_max(j)));
}

static bool acked_before(const cj_jrc_t *j, uint64_t now,
                         const cj_addr_t *from, uint16_t mid)
{
    for (size_t i = 0; i < CJ_JRC_MAX_INFLIGHT; i++) {
        const cj_jrc_acked_t *a = &j->acked[i];
        if (a->until > now && a->mid == mid && cj_addr_equal(&a->from, from))
            return true;
    }
    return false;
}

/* An ACK, RST or separate response to one of our updates. */
static int handle_response(cj_jrc_t *j, uint64_t now, const cj_addr_t *from,
                           const cj_coap_msg_t *m, uint8_t *msg, size_t len,
                           cj_out_t *out)
{
    cj_jrc_update_t *u = NULL;
    bool by_mid = m->type == CJ_COAP_ACK || m->type == CJ_COAP_RST;
    int n, r;

    for (size_t i = 0; i < CJ_JRC_MAX_INFLIGHT && u == NULL; i++) {
        cj_jrc_update_t *c = &j->upd[i];
        if ((c->state != UPD_WAIT && c->state != UPD_SEPARATE) ||
            !cj_addr_equal(from, &c->to))
            continue;
        if (by_mid ? (c->state == UPD_WAIT && c->mid == m->mid)
                   : (m->token_len == sizeof c->token &&
                      memcmp(m->token, c->token, sizeof c->token) == 0))
            u = c;
    }
    if (u == NULL) {
        /* RFC 7252 sections 4.5 and 5.3.2: a CON response that belongs
         * to no open exchange is a copy of one acknowledged already (the
         * node missed the ACK: the same ACK again, nothing else happens)
         * or one the engine has no memory of, which it rejects with the
         * matching Reset so the node stops retransmitting it.  Neither
         * answer is authenticated or changes state. */
        if (m->type != CJ_COAP_CON)
            return 0;
        if (acked_before(j, now, from, m->mid))
            return answer_empty(out, from, CJ_COAP_ACK, m->mid);
        j->stats.dropped++;
        return answer_empty(out, from, CJ_COAP_RST, m->mid);
    }
    /* RST and empty ACK are not authenticated (anyone who saw or guessed
     * the MID can send them), so they are advisory only: an RST changes
     * nothing (the exchange goes on until the normal give-up, then the
     * node is recorded as not reached); an empty ACK stops the
     * retransmissions to wait for the separate response (RFC 7252
     * section 5.2.2) but only until the give-up time fixed when the
     * request was first sent (MAX_TRANSMIT_WAIT), never later. */
    if (m->type == CJ_COAP_RST) {
        j->stats.dropped++;
        return 0;
    }
    if (m->code == CJ_COAP_EMPTY) {
        if (m->type == CJ_COAP_ACK) {
            u->state = UPD_SEPARATE;
            u->deadline = u->give_up;
        }
        return 0;
    }
    if (by_mid && (m->token_len != sizeof u->token ||
                   memcmp(m->token, u->token, sizeof u->token) != 0))
        return 0;
    n = cj_oscore_unprotect_response(&u->osc, &u->bind, msg, len, j->plain,
                                     sizeof j->plain);
    if (n < 0) {
        cj_crypto_wipe(j->plain, sizeof j->plain);
        j->stats.dropped++;
        return 0; /* section 7.3.2: keep waiting, keep retransmitting */
    }
    {
        cj_coap_msg_t im;
        uint8_t code = 0;
        if (cj_coap_parse(&im, j->plain, (size_t)n) == CJ_OK)
            code = im.code;
        cj_crypto_wipe(j->plain, sizeof j->plain);
        /* A 2.04 means the node acted on the Configuration; a protected
         * 4.00 (section 8.3.2) or anything else means it did not. */
        r = settle(j, u, now, code == CJ_COAP_CHANGED, out);
    }
    if (m->type == CJ_COAP_CON) {
        /* A separate response in a CON is acknowledged (RFC 7252 5.2.2),
         * and so is each copy of it that follows (section 4.5). */
        acked_remember(j, now, from, m->mid);
        if (answer_empty(out, from, CJ_COAP_ACK, m->mid))
            r = 1;
    }
    return r;
}

int cj_jrc_input(cj_jrc_t *j, uint64_t now, const cj_addr_t *from,
                 uint8_t *msg, size_t len, cj_out_t *out)
{
    cj_coap_msg_t m;
    uint8_t cls;

    if (j == NULL || out == NULL || out->buf == NULL || from == NULL)
        return 0;
    cj_out_reset(out);
    if (msg == NULL || cj_coap_parse(&m, msg, len) != CJ_OK) {
        j->stats.dropped++;
        /* RFC 7252 section 4.2: a Confirmable message with a message
         * format error is rejected with the Reset of its Message ID, which
         * is also how a client learns that a token is longer than this
         * JRC takes (RFC 8974 section 2.2.2).  Anything else that does not
         * parse is ignored: a NON may be (section 4.3), another version
         * must be (section 3). */
        if (msg != NULL && len >= 4 && (msg[0] & 0xf0) == 0x40)
            return answer_empty(out, from, CJ_COAP_RST,
                                (uint16_t)(msg[2] << 8 | msg[3]));
        return 0;
    }
    cls = (uint8_t)(m.code >> 5);
    if (m.type == CJ_COAP_ACK || m.type == CJ_COAP_RST ||
        (cls >= 2 && cls <= 5))
        return handle_response(j, now, from, &m, msg, len, out);
    if (cls == 0 && m.code != CJ_COAP_EMPTY)
        return handle_request(j, now, from, &m, msg, len, out);
    if (m.type == CJ_COAP_CON) {
        /* CoAP ping: an empty CON is rejected with the matching Reset
         * (RFC 7252 sections 4.2 and 4.3), which tells the sender the
         * JRC is up; so is a CON of a reserved class (1, 6, 7), which
         * the JRC cannot process (section 4.2). */
        j->stats.dropped += m.code != CJ_COAP_EMPTY;
        return answer_empty(out, from, CJ_COAP_RST, m.mid);
    }
    /* Reserved classes and empty NONs: nothing to say. */
    j->stats.dropped++;
    return 0;
}

/* ---- set-up and campaigns ----------------------------------------------- */

/* A key set the JRC may hand out: Key ID Mode 0x01 ids, usages of Table
 * 6, and no key value under two usages whose MIC lengths differ (section
 * 8.4.3.3: one key must not serve MIC-32 and MIC-64, say).  Table 6
 * cycles MIC-32, MIC-64, MIC-128, so usage % 3 names the MIC length. */
static bool keys_valid(const cj_jrc_key_t *keys, size_t count)
{
    if (count > CJ_COJP_MAX_KEYS || (count > 0 && keys == NULL))
        return false;
    for (size_t i = 0; i < count; i++) {
        if (keys[i].key_id == 0 || keys[i].key_id > CJ_COJP_MAX_KEY_ID ||
            keys[i].key_usage > CJ_COJP_KEY_USAGE_MAX)
            return false;
        for (size_t k = 0; k < i; k++)
            if (keys[k].key_usage % 3 != keys[i].key_usage % 3 &&
                cj_crypto_ct_compare(keys[k].key, keys[i].key,
                                     sizeof keys[i].key) == 0)
                return false;
    }
    return true;
}

int cj_jrc_init(cj_jrc_t *j, const cj_jrc_cfg_t *cfg,
                const cj_jrc_store_t *store, const cj_platform_t *platform)
{
    const cj_jrc_store_t *st = store;

    if (j == NULL || cfg == NULL || st == NULL || cfg->slots == NULL ||
        cfg->slot_count == 0 || cfg->slot_count >= CJ_JRC_NIL ||
        !keys_valid(cfg->keys, cfg->key_count) ||
        cfg->blacklist_count > CJ_COJP_MAX_BLACKLIST ||
        (cfg->blacklist_count > 0 &&
         (cfg->blacklist == NULL || cfg->blacklist_lens == NULL)) ||
        (cfg->network_id_len > 0 && cfg->network_id == NULL) ||
        st->lookup == NULL || st->lookup_context == NULL ||
        st->reserve_ssn == NULL || st->accept_piv == NULL ||
        st->save_repeat == NULL ||
        st->save_context == NULL || st->assign_short_id == NULL ||
        st->record_join == NULL || st->release == NULL ||
        st->next_joined == NULL || st->node_address == NULL ||
        st->record_update == NULL)
        return CJ_ERR_INVALID;
    for (size_t i = 0; i < cfg->blacklist_count; i++)
        if (cfg->blacklist[i] == NULL || cfg->blacklist_lens[i] == 0 ||
            cfg->blacklist_lens[i] > CJ_JRC_MAX_ID)
            return CJ_ERR_INVALID;

    memset(j, 0, sizeof *j);
    j->cfg = *cfg;
    j->store = *st;
    j->platform = platform;
    j->ssn_port.ctx = j;
    j->ssn_port.counter_store = ssn_store;
    j->ssn_port.counter_load = ssn_load;
    j->timing = cfg->timing;
    if (j->timing.ack_timeout_ms == 0)
        j->timing = cj_coap_timing_default();
    if (j->timing.ack_random_factor_pct < 100)
        j->timing.ack_random_factor_pct = 100;
    memcpy(j->keys, cfg->keys, sizeof j->keys);
    j->key_count = cfg->key_count;
    for (size_t i = 0; i < cfg->blacklist_count; i++) {
        memcpy(j->bl[i], cfg->blacklist[i], cfg->blacklist_lens[i]);
        j->bl_len[i] = (uint8_t)cfg->blacklist_lens[i];
    }
    j->bl_count = (uint8_t)cfg->blacklist_count;
    /* campaign_start() pre-increments; numbers stay in 1..2^31-1 */
    j->camp_seq = cfg->first_campaign > 0 &&
                          cfg->first_campaign <= CJ_JRC_MAX_CAMPAIGN
                      ? cfg->first_campaign - 1u
                      : 0;
    for (size_t l = 0; l < 3; l++)
        j->lru_first[l] = j->lru_last[l] = CJ_JRC_NIL;
    for (size_t i = 0; i < cfg->slot_count; i++) {
        cj_jrc_slot_t *s = &cfg->slots[i];
        cj_crypto_wipe(s, sizeof *s);
        for (int t = 0; t < CJ_JRC_INDEX_KEYS; t++)
            s->head[t] = s->next[t] = CJ_JRC_NIL;
        list_insert(j, (uint32_t)i, LIST_FREE);
    }
    if (cj_crypto_random((uint8_t *)&j->mid, sizeof j->mid) != CJ_OK)
        return CJ_ERR_CRYPTO;
    return CJ_OK;
}

static int campaign_start(cj_jrc_t *j, uint8_t kind, uint8_t phase)
{
    j->camp_active = true;
    j->camp_kind = kind;
    j->camp_phase = phase;
    j->camp_cursor = 0;
    j->camp_retry_at = 0;
    /* Numbers run 1 .. 2^31 - 1 (they are returned as a positive int),
     * then wrap to 1, never 0; a host that persists them sees the wrap
     * as the next number being smaller. */
    j->camp_seq = j->camp_seq >= CJ_JRC_MAX_CAMPAIGN ? 1u : j->camp_seq + 1u;
    j->camp_number = j->camp_seq;
    return (int)j->camp_number;
}

int cj_jrc_rekey(cj_jrc_t *j, uint64_t now, const cj_jrc_key_t *keys,
                 size_t count)
{
    (void)now;
    if (j == NULL)
        return CJ_ERR_INVALID;
    if (j->camp_active)
        return CJ_ERR_BUSY;
    if (count == 0 || !keys_valid(keys, count))
        return CJ_ERR_INVALID;
    memset(j->keys, 0, sizeof j->keys);
    memcpy(j->keys, keys, count * sizeof *keys);
    j->key_count = (uint8_t)count;
    j->camp_target_len = 0;
    return campaign_start(j, CAMP_REKEY, PH_6LN);
}

int cj_jrc_reassign(cj_jrc_t *j, uint64_t now, const uint8_t *id,
                    size_t id_len)
{
    cj_jrc_pledge_t rec;
    uint16_t sid = 0;
    bool joined;
    int rc;

    if (j == NULL || id == NULL || id_len == 0 || id_len > CJ_JRC_MAX_ID)
        return CJ_ERR_INVALID;
    if (j->camp_active)
        return CJ_ERR_BUSY;
    j->stats.lookups++;
    rc = j->store.lookup(j->store.ctx, id, id_len, &rec);
    if (!store_ok(j, rc)) {
        cj_crypto_wipe(&rec, sizeof rec);
        return rc == CJ_ERR_NOTFOUND ? CJ_ERR_NOTFOUND : CJ_ERR_STORAGE;
    }
    joined = rec.joined;
    cj_crypto_wipe(&rec, sizeof rec);
    if (!joined)
        return CJ_ERR_NOTFOUND;
    rc = j->store.assign_short_id(j->store.ctx, id, id_len, now,
                                  j->cfg.lease_hours, true, &sid);
    if (!store_ok(j, rc))
        return rc == CJ_ERR_NOSPACE || rc == CJ_ERR_NOTFOUND ? rc
                                                            : CJ_ERR_STORAGE;
    if (sid >= 0xfffe)
        return CJ_ERR_STORAGE;
    for (size_t i = 0; i < j->cfg.slot_count; i++)
        if (j->cfg.slots[i].used &&
            bytes_eq(id, id_len, j->cfg.slots[i].rec.id,
                     j->cfg.slots[i].rec.id_len))
            j->cfg.slots[i].rec.short_id = sid;
    memcpy(j->camp_target, id, id_len);
    j->camp_target_len = (uint8_t)id_len;
    j->camp_target_short = sid;
    return campaign_start(j, CAMP_REASSIGN, PH_TARGET);
}

int cj_jrc_evict(cj_jrc_t *j, uint64_t now, const uint8_t *id, size_t id_len)
{
    cj_jrc_pledge_t rec;
    cj_jrc_key_t fresh[CJ_COJP_MAX_KEYS];
    bool listed;
    int rc;

    (void)now;
    if (j == NULL || id == NULL || id_len == 0 || id_len > CJ_JRC_MAX_ID)
        return CJ_ERR_INVALID;
    if (j->camp_active)
        return CJ_ERR_BUSY;
    listed = blacklisted(j, id, id_len);
    if (!listed && j->bl_count >= CJ_COJP_MAX_BLACKLIST)
        return CJ_ERR_NOSPACE;
    j->stats.lookups++;
    rc = j->store.lookup(j->store.ctx, id, id_len, &rec);
    if (!store_ok(j, rc)) {
        cj_crypto_wipe(&rec, sizeof rec);
        return rc == CJ_ERR_NOTFOUND ? CJ_ERR_NOTFOUND : CJ_ERR_STORAGE;
    }
    /* Fresh keys first: if randomness fails nothing has changed. */
    memcpy(fresh, j->keys, sizeof fresh);
    for (size_t i = 0; i < j->key_count; i++) {
        /* Key ids move past the current set so nodes holding both sets
         * tell them apart (section 8.4.3.2); they stay in 1..254. */
        fresh[i].key_id = (uint8_t)((j->keys[i].key_id - 1u + j->key_count) %
                                        CJ_COJP_MAX_KEY_ID +
                                    1u);
        if (cj_crypto_random(fresh[i].key, sizeof fresh[i].key) != CJ_OK) {
            cj_crypto_wipe(fresh, sizeof fresh);
            cj_crypto_wipe(&rec, sizeof rec);
            return CJ_ERR_CRYPTO;
        }
    }
    rc = j->store.release(j->store.ctx, id, id_len);
    if (!store_ok(j, rc)) {
        cj_crypto_wipe(fresh, sizeof fresh);
        cj_crypto_wipe(&rec, sizeof rec);
        return rc == CJ_ERR_NOTFOUND ? CJ_ERR_NOTFOUND : CJ_ERR_STORAGE;
    }
    if (!listed) {
        memcpy(j->bl[j->bl_count], id, id_len);
        j->bl_len[j->bl_count] = (uint8_t)id_len;
        j->bl_count++;
    }
    memcpy(j->keys, fresh, sizeof j->keys);
    cj_crypto_wipe(fresh, sizeof fresh);
    /* Its cached context must not answer for it any more. */
    for (size_t i = 0; i < j->cfg.slot_count; i++)
        if (j->cfg.slots[i].used &&
            bytes_eq(id, id_len, j->cfg.slots[i].rec.id,
                     j->cfg.slots[i].rec.id_len))
            j->cfg.slots[i].rec.joined = false;
    memcpy(j->camp_target, id, id_len);
    j->camp_target_len = (uint8_t)id_len;
    j->camp_target_short = rec.short_id;
    rc = campaign_start(j, CAMP_EVICT,
                        rec.joined && rec.short_id < 0xfffe ? PH_TARGET
                                                            : PH_6LN);
    cj_crypto_wipe(&rec, sizeof rec);
    return rc;
}

int cj_jrc_readmit(cj_jrc_t *j, uint64_t now, const uint8_t *id,
                   size_t id_len)
{
    size_t i = 0;

    (void)now;
    if (j == NULL || id == NULL || id_len == 0 || id_len > CJ_JRC_MAX_ID)
        return CJ_ERR_INVALID;
    if (j->camp_active)
        return CJ_ERR_BUSY;
    while (i < j->bl_count && !bytes_eq(id, id_len, j->bl[i], j->bl_len[i]))
        i++;
    if (i == j->bl_count)
        return CJ_ERR_NOTFOUND;
    /* The rest keep their eviction order, as the store lists them. */
    for (; i + 1 < j->bl_count; i++) {
        memcpy(j->bl[i], j->bl[i + 1], sizeof j->bl[i]);
        j->bl_len[i] = j->bl_len[i + 1];
    }
    j->bl_count--;
    memset(j->bl[j->bl_count], 0, sizeof j->bl[j->bl_count]);
    j->bl_len[j->bl_count] = 0;
    /* Every joined node, 6LBRs included, drops the id from its list; no
     * key changes, so the 6LN-first order costs nothing and is kept. */
    j->camp_target_len = 0;
    return campaign_start(j, CAMP_READMIT, PH_6LN);
}
