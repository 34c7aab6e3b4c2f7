/*
 * The pledge engine (RFC 9031 sections 7.3, 8.1-8.4; RFC 8613 Appendix
 * B.1 and B.2).  See cojp/pledge.h for the contract.
 *
 * Invariants:
 *   - tx_len > 0 exactly while state is JOINING: the protected request
 *     in tx is what retransmissions repeat byte for byte;
 *   - the OSCORE replay window in RAM never runs ahead of the persisted
 *     one for longer than one input() call: it is snapshotted before a
 *     message is verified and restored when the store fails;
 *   - nothing derived from a message is applied before its Partial IV is
 *     durable in the window (section 7.3.1);
 *   - the sender sequence number counter only grows, also across the
 *     Appendix B.2 context changes (trial, confirmation and fallback);
 *   - rec_trial is set exactly while osc runs an unconfirmed R2 || R3;
 *     nothing of it is durable until a response under it verified, and
 *     the durable context (pledge id, or the confirmed pair) is what a
 *     restart or a failed trial goes back to;
 *   - no plaintext of an input survives the input() call: neither in
 *     out->buf nor in the caller's msg (OSCORE decrypts in place).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cojp/cojp.h"
#include "cojp/coap.h"
#include "cojp/crypto.h"
#include "cojp/oscore.h"
#include "cojp/pledge.h"

#define EV_BIT(e) ((uint16_t)(1u << (e)))
#define HOUR_MS UINT64_C(3600000)

/* ---- small helpers ------------------------------------------------------ */

static bool bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b,
                     size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static uint32_t rand32(void)
{
    uint8_t b[4] = {0, 0, 0, 0};
    (void)cj_crypto_random(b, sizeof b);
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
           b[3];
}

#if CJ_PLEDGE_RECOVERY
/* Recovery nonces are persisted as 64-bit counter values, big-endian. */
static uint64_t be64(const uint8_t b[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

static void put_be64(uint8_t b[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        b[i] = (uint8_t)v;
        v >>= 8;
    }
}
#endif

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    if (b >= CJ_TIME_NEVER - 1)
        return CJ_TIME_NEVER - 1;
    return a > CJ_TIME_NEVER - 1 - b ? CJ_TIME_NEVER - 1 : a + b;
}

/* RFC 7252 section 4.2 doubling of a 32-bit timeout, saturating (a large
 * MAX_RETRANSMIT must not wrap a timeout to 0 and retransmit in a burst). */
static uint32_t double_sat(uint32_t t)
{
    return t > UINT32_MAX / 2u ? UINT32_MAX : t * 2u;
}

/* The region of msg that OSCORE decrypted in place: the outer payload
 * (m was parsed from msg before unprotecting).  Wiped once the plaintext
 * is no longer needed, so the Configuration's keys do not stay in the
 * caller's buffer. */
static void wipe_payload(uint8_t *msg, const cj_coap_msg_t *m)
{
    if (m->payload_len)
        cj_crypto_wipe(msg + (m->payload - msg), m->payload_len);
}

static int ctr_load(const cj_pledge_t *p, uint32_t n, uint64_t *v)
{
    return p->platform->counter_load(p->platform->ctx, p->counter_base + n, v);
}

static int ctr_store(const cj_pledge_t *p, uint32_t n, uint64_t v)
{
    return p->platform->counter_store(p->platform->ctx, p->counter_base + n,
                                      v) == CJ_OK
               ? CJ_OK
               : CJ_ERR_STORAGE;
}

/* Derive (or, rederive, derive anew keeping the persistence of) ctx
 * with this pledge's OSCORE parameters (RFC 9031 section 7.3: PSK as
 * Master Secret, empty salt and Sender ID, Recipient ID "JRC") and ID
 * Context idctx. */
static int derive(const cj_pledge_t *p, cj_oscore_ctx_t *ctx,
                  const uint8_t *idctx, size_t idctx_len, bool rederive)
{
    static const uint8_t jrc_id[CJ_COJP_JRC_ID_LEN] = {0x4a, 0x52, 0x43};
    cj_oscore_params_t pr;

    memset(&pr, 0, sizeof pr);
    pr.master_secret = p->psk;
    pr.master_secret_len = sizeof p->psk;
    pr.recipient_id = jrc_id;
    pr.recipient_id_len = sizeof jrc_id;
    pr.id_context = idctx;
    pr.id_context_len = idctx_len;
    pr.has_id_context = true;
    return rederive ? cj_oscore_ctx_rederive(ctx, &pr)
                    : cj_oscore_ctx_derive(ctx, &pr);
}

#if CJ_PLEDGE_RECOVERY
/* Tag of a recovered ID Context for the persisted replay window: never 0
 * (0 is the pledge-identifier context), and a half-written R2/R3 pair
 * most likely yields a tag no window was stored with. */
static uint8_t ctx_tag_of(const uint8_t *idctx, size_t len)
{
    unsigned x = 0;
    for (size_t i = 0; i < len; i++)
        x = (x * 31u + idctx[i]) % 255u;
    return (uint8_t)(x + 1u);
}

/* "Pair valid" marker of a confirmed R2 || R3 (counter CJ_PLEDGE_CTR_PAIR,
 * written last).  Any change of either nonce changes it, so a torn write
 * (a new R3 beside an old R2, or a new pair beside an old marker) is seen
 * on restore.  Not a secret and not an integrity check against an
 * attacker with access to the storage, only against interruption. */
static uint64_t pair_check(const uint8_t idctx[2 * CJ_PLEDGE_RECOVERY_NONCE_LEN])
{
    uint64_t a = be64(idctx), b = be64(idctx + CJ_PLEDGE_RECOVERY_NONCE_LEN);

    return a ^ (b << 29 | b >> 35) ^ UINT64_C(0x436f4a5052324133);
}

/* End a trial of R2 || R3 that no verified response confirmed: go back
 * to the durable context (pledge id or confirmed pair) and its replay
 * window, keeping the sender sequence number (it only grows). */
static void trial_end(cj_pledge_t *p)
{
    uint64_t ssn = p->osc.ssn, reserved = p->osc.ssn_reserved;
    const uint8_t *id = p->has_pair ? p->pair : p->pledge_id;
    size_t id_len = p->has_pair ? sizeof p->pair : p->pledge_id_len;

    if (!p->rec_trial)
        return;
    /* Cannot fail: these parameters were derived at init or confirmed. */
    if (derive(p, &p->osc, id, id_len, true) == CJ_OK) {
        p->osc.ssn = ssn;
        p->osc.ssn_reserved = reserved;
        p->osc.replay = p->base_replay;
        p->ctx_tag = p->base_tag;
    }
    p->rec_trial = false;
    cj_crypto_wipe(p->rec_idctx, sizeof p->rec_idctx);
}

/* Appendix B.2 step 5: a response under R2 || R3 verified, so the JRC
 * holds the pair; make it the durable context, marker last.  On failure
 * the trial goes on (the response is dropped; the retransmission or the
 * JRC's repeat brings it again) and a restart still finds the old
 * context: the marker does not match a half-written pair. */
static int trial_confirm(cj_pledge_t *p)
{
    const uint8_t *r = p->rec_idctx;

    if (ctr_store(p, CJ_PLEDGE_CTR_R3,
                  be64(r + CJ_PLEDGE_RECOVERY_NONCE_LEN)) != CJ_OK ||
        ctr_store(p, CJ_PLEDGE_CTR_R2, be64(r)) != CJ_OK ||
        ctr_store(p, CJ_PLEDGE_CTR_PAIR, pair_check(r)) != CJ_OK)
        return CJ_ERR_STORAGE;
    memcpy(p->pair, r, sizeof p->pair);
    p->has_pair = true;
    p->rec_trial = false;
    cj_crypto_wipe(p->rec_idctx, sizeof p->rec_idctx);
    return CJ_OK;
}
#endif

/* ---- replay window persistence (section 7.3.1) -------------------------- */

static uint64_t replay_pack(const cj_oscore_replay_t *w, uint8_t tag)
{
    if (!w->valid)
        return tag;
    /* Bit 0 of the bitmap (the highest value itself) is always set in a
     * valid window, which tells a stored window from an empty one. */
    return w->highest << 24 | (uint64_t)(w->bitmap & 0xffffu) << 8 | tag;
}

static void replay_unpack(uint64_t v, uint8_t tag, cj_oscore_replay_t *w)
{
    memset(w, 0, sizeof *w);
    if ((uint8_t)v != tag || ((v >> 8) & 1u) == 0)
        return;
    w->highest = v >> 24;
    /* The 16 older positions were not stored: count them as seen. */
    w->bitmap = (uint32_t)((v >> 8) & 0xffffu) | 0xffff0000u;
    w->valid = true;
}

static bool replay_same(const cj_oscore_replay_t *a,
                        const cj_oscore_replay_t *b)
{
    return a->valid == b->valid && a->highest == b->highest &&
           a->bitmap == b->bitmap;
}

/* After an accepted message: make the window durable or undo it. */
static int replay_commit(cj_pledge_t *p, const cj_oscore_replay_t *before)
{
    if (replay_same(before, &p->osc.replay))
        return CJ_OK;
    if (ctr_store(p, CJ_PLEDGE_CTR_REPLAY,
                  replay_pack(&p->osc.replay, p->ctx_tag)) != CJ_OK) {
        p->osc.replay = *before;
        return CJ_ERR_STORAGE;
    }
    return CJ_OK;
}

/* ---- key sets ------------------------------------------------------------ */

static const cj_pledge_key_t *set_find(const cj_pledge_keyset_t *s,
                                       uint8_t key_id)
{
    for (uint8_t i = 0; i < s->n; i++)
        if (s->k[i].key_id == key_id)
            return &s->k[i];
    return NULL;
}

/* Key sets are secret: compared in constant time over the entries in
 * use (every byte of an entry is defined: set_from_config zeroes first). */
static bool set_equal(const cj_pledge_keyset_t *a,
                      const cj_pledge_keyset_t *b)
{
    if (a->n != b->n)
        return false;
    return a->n == 0 ||
           cj_crypto_ct_compare(a->k, b->k, a->n * sizeof a->k[0]) == 0;
}

static void set_wipe(cj_pledge_keyset_t *s)
{
    cj_crypto_wipe(s, sizeof *s);
}

static void set_from_config(cj_pledge_keyset_t *s, const cj_cojp_config_t *c)
{
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < c->key_count; i++) {
        cj_pledge_key_t *k = &s->k[i];
        k->key_id = c->keys[i].key_id;
        k->key_usage = c->keys[i].key_usage;
        memcpy(k->key, c->keys[i].key, CJ_COJP_KEY_LEN);
        if (c->keys[i].addinfo_len) {
            memcpy(k->addinfo, c->keys[i].addinfo, c->keys[i].addinfo_len);
            k->addinfo_len = (uint8_t)c->keys[i].addinfo_len;
        }
    }
    s->n = (uint8_t)c->key_count;
}

/* Sections 8.4.3.1-2: the staged set in new_keys goes into use; the
 * previous one stays for reception until the guard time is over. */
static void keys_switch(cj_pledge_t *p, uint64_t now)
{
    p->old_keys = p->keys;
    p->keys = p->new_keys;
    set_wipe(&p->new_keys);
    p->old_keys_expire = add_sat(now, p->rekey_guard_ms);
}

/* Table 6: usages 0-5 serve K1 and K2, 6-8 K1 only, 9-14 K2 only. */
static bool usage_covers(uint8_t usage, uint8_t cls)
{
    if (usage <= CJ_COJP_KEY_USAGE_K1K2_MIC128)
        return true;
    if (usage <= CJ_COJP_KEY_USAGE_K1_MIC128)
        return cls == CJ_PLEDGE_K1;
    return cls == CJ_PLEDGE_K2;
}

/* ---- Configuration checks (section 8.3.1) ------------------------------- */

/* Decode the Configuration of *in and check that the node can act upon
 * it (section 8.3.1); joining: it is a Join Response, which must carry
 * keys.  0: usable, *c filled.  1: refused, nothing to report.  2:
 * refused, the parameter to report (section 8.4.5) is left in
 * p->unsup_code, unsup_label and unsup_addinfo; report_unsupported is
 * the caller's to set. */
static int config_read(cj_pledge_t *p, const cj_coap_msg_t *in, bool joining,
                       cj_cojp_config_t *c)
{
    static const uint8_t zero = 0x00; /* CBOR 0 */
    cj_cojp_report_t why;
    int64_t code = CJ_COJP_CODE_UNSUPPORTED, label = CJ_COJP_LABEL_KEY_SET;
    const uint8_t *ai = NULL;
    size_t ai_len = 0, i;
    uint8_t u = 0;

    if (cj_cojp_config_decode(in->payload, in->payload_len, c, &why) !=
        CJ_OK) {
        if (!why.has_param)
            return 1;
        code = why.param.code;
        label = why.param.label;
        ai = why.param.addinfo;
        ai_len = why.param.addinfo_len;
        goto report;
    }
    if (joining && c->key_count == 0)
        goto report;
    for (i = 0; i < c->key_count; i++) {
        u = c->keys[i].key_usage;
        if (u > CJ_COJP_KEY_USAGE_MAX || !(p->key_usages & (1u << u)) ||
            c->keys[i].addinfo_len > CJ_PLEDGE_KEY_ADDINFO_MAX) {
            /* addinfo: the usage as a CBOR unsigned integer (u <= 23) */
            ai = &u;
            ai_len = u <= 23 ? 1 : 0;
            goto report;
        }
    }
    /* An invalid short identifier was discarded by the codec
     * (c->short_id NULL, its bit in c->ignored): section 8.4.4 says the
     * decoder MUST silently ignore it, so the rest of the object is used
     * as if it were absent. */
    label = CJ_COJP_LABEL_SHORT_ID;
    if (joining && c->short_id != NULL && c->has_lease_time &&
        c->lease_time == 0) {
        ai = &zero;
        ai_len = 1;
        goto report;
    }
    label = CJ_COJP_LABEL_BLACKLIST;
    for (i = 0; c->has_blacklist && i < c->blacklist_count; i++)
        if (c->blacklist[i].len > CJ_PLEDGE_MAX_BLACKLIST_ID)
            goto report;
    return 0;

report:
    /* An addinfo longer than the room kept is reported as null. */
    p->unsup_code = code;
    p->unsup_label = label;
    p->unsup_addinfo_len = 0;
    if (ai_len && ai_len <= sizeof p->unsup_addinfo) {
        memcpy(p->unsup_addinfo, ai, ai_len);
        p->unsup_addinfo_len = (uint8_t)ai_len;
    }
    return 2;
}

/* The parameter left by config_read() as the single entry of an
 * Unsupported_Configuration (section 8.4.5); *u is zeroed by the caller. */
static void unsup_fill(const cj_pledge_t *p, cj_cojp_unsupported_t *u)
{
    u->count = 1;
    u->params[0].code = p->unsup_code;
    u->params[0].label = p->unsup_label;
    u->params[0].addinfo = p->unsup_addinfo_len ? p->unsup_addinfo : NULL;
    u->params[0].addinfo_len = p->unsup_addinfo_len;
}

/* ---- installing a Configuration ----------------------------------------- */

static void drop_short_id(cj_pledge_t *p)
{
    p->has_short_id = false;
    memset(p->short_id, 0, sizeof p->short_id);
    p->lease_expiry = CJ_TIME_NEVER;
}

/* Apply a checked Configuration.  Returns true when a lease of 0 took
 * the short identifier away (update only). */
static bool config_apply(cj_pledge_t *p, uint64_t now,
                         const cj_cojp_config_t *c, bool joining)
{
    bool expired = false;

    if (c->key_count) {
        /* The received set is staged in new_keys, where section 8.4.3.2
         * wants it on a 6LN; the other cases move it on at once. */
        set_from_config(&p->new_keys, c);
        if (joining) {
            keys_switch(p, now);
            set_wipe(&p->old_keys);
            p->old_keys_expire = CJ_TIME_NEVER;
        } else if (set_equal(&p->new_keys, &p->keys)) {
            set_wipe(&p->new_keys); /* nothing to switch to */
        } else if (p->role == CJ_COJP_ROLE_6LBR) {
            /* Section 8.4.3.1: switch now, keep the old set for rx. */
            keys_switch(p, now);
            p->pending |= EV_BIT(CJ_PLEDGE_EV_KEYS_SWITCHED);
        }
    }

    if (c->short_id != NULL) {
        memcpy(p->short_id, c->short_id, CJ_COJP_SHORT_ID_LEN);
        p->has_short_id = true;
        if (!c->has_lease_time)
            p->lease_expiry = CJ_TIME_NEVER;
        else if (c->lease_time == 0)
            expired = true;
        else if (c->lease_time > (CJ_TIME_NEVER - 1) / HOUR_MS)
            p->lease_expiry = CJ_TIME_NEVER - 1;
        else
            p->lease_expiry = add_sat(now, c->lease_time * HOUR_MS);
        if (expired)
            drop_short_id(p);
    } else if (joining) {
        drop_short_id(p);
    }

    if (c->jrc_address != NULL) {
        memcpy(p->jrc_address, c->jrc_address, CJ_COJP_JRC_ADDRESS_LEN);
        p->has_jrc_address = true;
    } else if (joining) {
        p->has_jrc_address = false; /* co-located with the 6LBR (8.4.2) */
    }

    if (c->has_blacklist || joining) {
        memset(p->blacklist, 0, sizeof p->blacklist);
        memset(p->blacklist_len, 0, sizeof p->blacklist_len);
        p->blacklist_count = 0;
        for (size_t i = 0; c->has_blacklist && i < c->blacklist_count; i++) {
            if (c->blacklist[i].len)
                memcpy(p->blacklist[i], c->blacklist[i].p,
                       c->blacklist[i].len);
            p->blacklist_len[i] = (uint8_t)c->blacklist[i].len;
            p->blacklist_count++;
        }
    }

    if (c->has_join_rate)
        p->join_rate = c->join_rate;
    else if (joining)
        p->join_rate = CJ_PLEDGE_JOIN_RATE_INFINITE;
    return expired;
}

/* ---- init / JPs / start -------------------------------------------------- */

int cj_pledge_init(cj_pledge_t *p, const cj_pledge_cfg_t *cfg,
                   const cj_platform_t *platform)
{
#if CJ_PLEDGE_RECOVERY
    uint8_t idctx[2 * CJ_PLEDGE_RECOVERY_NONCE_LEN];
#endif
    const uint8_t *ctx_id;
    size_t ctx_len;
    uint64_t rw = 0;
#if CJ_PLEDGE_RECOVERY
    uint64_t r2 = 0, r3 = 0, mark = 0;
#endif
    int rc;

    if (p == NULL || cfg == NULL)
        return CJ_ERR_INVALID;
    memset(p, 0, sizeof *p);
    if (platform == NULL || platform->counter_load == NULL ||
        platform->counter_store == NULL || cfg->pledge_id == NULL ||
        cfg->pledge_id_len == 0 ||
        cfg->pledge_id_len > CJ_OSCORE_MAX_ID_CONTEXT ||
        cfg->role > CJ_COJP_ROLE_6LBR ||
        (cfg->network_id == NULL && cfg->network_id_len > 0) ||
        cfg->network_id_len > CJ_PLEDGE_MAX_NETID ||
        cfg->counter_base > UINT32_MAX - CJ_PLEDGE_COUNTERS)
        return CJ_ERR_INVALID;

    memcpy(p->pledge_id, cfg->pledge_id, cfg->pledge_id_len);
    p->pledge_id_len = (uint8_t)cfg->pledge_id_len;
    memcpy(p->psk, cfg->psk, sizeof p->psk);
    p->role = cfg->role;
    if (cfg->network_id != NULL) {
        if (cfg->network_id_len)
            memcpy(p->network_id, cfg->network_id, cfg->network_id_len);
        p->network_id_len = (uint8_t)cfg->network_id_len;
        p->fixed_network_id = true;
    }
    p->timing = cfg->timing;
    if (p->timing.ack_timeout_ms == 0 && p->timing.ack_random_factor_pct == 0 &&
        p->timing.max_retransmit == 0)
        p->timing = cj_coap_timing_default();
    if (p->timing.ack_timeout_ms == 0)
        p->timing.ack_timeout_ms = CJ_COJP_ACK_TIMEOUT_MS;
    if (p->timing.ack_random_factor_pct < 100)
        p->timing.ack_random_factor_pct = 100;
    p->max_join_attempts = cfg->max_join_attempts
                               ? cfg->max_join_attempts
                               : CJ_COJP_MAX_JOIN_ATTEMPTS;
    p->rekey_guard_ms = cfg->rekey_guard_ms
                            ? cfg->rekey_guard_ms
                            : CJ_COJP_REKEYING_GUARD_TIME * 1000u;
    p->counter_base = cfg->counter_base;
    p->key_usages = cfg->key_usages ? cfg->key_usages : 0x7fffu;
    p->platform = platform;

    ctx_id = p->pledge_id;
    ctx_len = p->pledge_id_len;
#if CJ_PLEDGE_RECOVERY
    /* Appendix B.2 state: a confirmed pair is R2, R3 and a marker that
     * matches them (written last); anything else is the pledge id. */
    rc = ctr_load(p, CJ_PLEDGE_CTR_R2, &r2);
    if (rc == CJ_OK)
        rc = ctr_load(p, CJ_PLEDGE_CTR_R3, &r3);
    if (rc == CJ_OK)
        rc = ctr_load(p, CJ_PLEDGE_CTR_PAIR, &mark);
    if (rc == CJ_OK) {
        put_be64(idctx, r2);
        put_be64(idctx + CJ_PLEDGE_RECOVERY_NONCE_LEN, r3);
        if (mark == pair_check(idctx)) {
            memcpy(p->pair, idctx, sizeof p->pair);
            p->has_pair = true;
            ctx_id = p->pair;
            ctx_len = sizeof p->pair;
            p->ctx_tag = ctx_tag_of(idctx, sizeof idctx);
        }
    } else if (rc != CJ_ERR_NOTFOUND) {
        goto storage;
    }
#endif

    rc = derive(p, &p->osc, ctx_id, ctx_len, false);
#if CJ_PLEDGE_RECOVERY
    cj_crypto_wipe(idctx, sizeof idctx);
#endif
    if (rc != CJ_OK) {
        cj_crypto_wipe(p, sizeof *p);
        return rc;
    }
    p->osc.send_kid_context = true; /* section 7.3: kid context = ID Ctx */
    rc = cj_oscore_ctx_attach(&p->osc, platform,
                              p->counter_base + CJ_PLEDGE_CTR_SSN);
    if (rc != CJ_OK)
        goto storage;
    rc = ctr_load(p, CJ_PLEDGE_CTR_REPLAY, &rw);
    if (rc == CJ_OK)
        replay_unpack(rw, p->ctx_tag, &p->osc.replay);
    else if (rc != CJ_ERR_NOTFOUND)
        goto storage;

    p->state = CJ_PLEDGE_IDLE;
    p->timer = CJ_TIME_NEVER;
    p->mid = (uint16_t)rand32(); /* first request uses mid + 1 */
    p->old_keys_expire = CJ_TIME_NEVER;
    p->lease_expiry = CJ_TIME_NEVER;
    p->join_rate = CJ_PLEDGE_JOIN_RATE_INFINITE;
    return CJ_OK;

storage:
    cj_crypto_wipe(p, sizeof *p);
    return CJ_ERR_STORAGE;
}

int cj_pledge_add_jp(cj_pledge_t *p, const cj_addr_t *jp,
                     const uint8_t *network_id, size_t network_id_len)
{
    cj_pledge_jp_t *e = NULL;

    if (p == NULL || jp == NULL || jp->len > CJ_ADDR_MAX ||
        network_id_len > CJ_PLEDGE_MAX_NETID ||
        (network_id == NULL && network_id_len > 0))
        return CJ_ERR_INVALID;
    for (uint8_t i = 0; i < p->jp_count; i++)
        if (cj_addr_equal(&p->jps[i].addr, jp))
            e = &p->jps[i];
    if (e == NULL) {
        if (p->jp_count < CJ_PLEDGE_MAX_JPS) {
            e = &p->jps[p->jp_count++];
        } else {
            e = &p->jps[p->jp_replace];
            p->jp_replace = (uint8_t)((p->jp_replace + 1) % CJ_PLEDGE_MAX_JPS);
        }
    }
    memset(e, 0, sizeof *e);
    e->addr = *jp;
    if (network_id_len)
        memcpy(e->network_id, network_id, network_id_len);
    e->network_id_len = (uint8_t)network_id_len;
    return CJ_OK;
}

/* Join again from the first attempt (start, lease expiry). */
static void begin_joining(cj_pledge_t *p, uint64_t now)
{
#if CJ_PLEDGE_RECOVERY
    trial_end(p); /* a restarted join does not count on an old R2 */
#endif
    p->state = CJ_PLEDGE_BACKOFF;
    p->attempts = 0;
    p->same_jp = false;
    p->tx_len = 0;
    p->acked = false;
    p->timer = now;
}

int cj_pledge_start(cj_pledge_t *p, uint64_t now)
{
    if (p == NULL)
        return CJ_ERR_INVALID;
    if (p->jp_count == 0)
        return CJ_ERR_STATE;
    begin_joining(p, now);
    p->report_unsupported = false;
    return CJ_OK;
}

/* ---- Join Request -------------------------------------------------------- */

static void emit(cj_out_t *out, const uint8_t *b, size_t n,
                 const cj_addr_t *to)
{
    if (out->buf == NULL || n > out->cap)
        return; /* lost like a dropped frame; retransmission covers it */
    memcpy(out->buf, b, n);
    out->len = n;
    out->to = *to;
}

/* End the current attempt with event ev; the next one starts at the next
 * poll, or the pledge gives up (section 8.3.1). */
static void attempt_end(cj_pledge_t *p, uint64_t now, int ev, cj_out_t *out)
{
#if CJ_PLEDGE_RECOVERY
    /* An attempt under R2 || R3 that ends without a verified response
     * (a verified one confirmed the pair before getting here): the JRC
     * may have lost R2, so the next attempt goes back to ID1 (RFC 8613
     * Appendix B.2 step 5 marks the new context only on success). */
    if (ev != CJ_PLEDGE_EV_RECOVERY)
        trial_end(p);
#endif
    p->tx_len = 0;
    p->acked = false;
    if (!p->same_jp && p->jp_count)
        p->jp_next = (uint8_t)((p->jp_cur + 1) % p->jp_count);
    out->event = ev;
    if (p->attempts >= p->max_join_attempts) {
        p->state = CJ_PLEDGE_FAILED;
        p->timer = CJ_TIME_NEVER;
        p->same_jp = false;
        p->pending |= EV_BIT(CJ_PLEDGE_EV_FAILED);
        return;
    }
    p->state = CJ_PLEDGE_BACKOFF;
    p->timer = now;
}

/* Build, protect and send the next Join Request (section 8.1.1). */
static int attempt_start(cj_pledge_t *p, uint64_t now, cj_out_t *out)
{
    cj_cojp_join_request_t jr;
    cj_coap_builder_t b;
    const cj_pledge_jp_t *jp;
    uint8_t payload[96];
    uint8_t plain[CJ_PLEDGE_TX_MAX];
    uint8_t token[4];
    uint16_t mid = (uint16_t)(p->mid + 1u);
    uint32_t spread;
    int n, rc;

    if (p->jp_count == 0) {
        p->timer = CJ_TIME_NEVER; /* add_jp then start again */
        return 0;
    }
    if (!p->same_jp)
        p->jp_cur = p->jp_next < p->jp_count ? p->jp_next : 0;
    jp = &p->jps[p->jp_cur];

    memset(&jr, 0, sizeof jr);
    jr.role = p->role;
    if (p->fixed_network_id) {
        jr.network_id = p->network_id;
        jr.network_id_len = p->network_id_len;
    } else {
        jr.network_id = jp->network_id;
        jr.network_id_len = jp->network_id_len;
    }
    jr.has_unsupported = p->report_unsupported;
    unsup_fill(p, &jr.unsupported); /* read only when has_unsupported */
    for (;;) {
        n = cj_cojp_join_request_encode(&jr, payload, sizeof payload);
        if (n >= 0 || !jr.has_unsupported)
            break;
        /* A report the encoder refuses is left out rather than block. */
        jr.has_unsupported = false;
    }
    if (n < 0)
        goto fatal;

    if (cj_crypto_random(token, sizeof token) != CJ_OK)
        goto retry;
    cj_coap_build_init(&b, plain, sizeof plain, CJ_COAP_CON, CJ_COAP_POST, mid,
                       token, sizeof token);
    /* Section 8.1.1; literal lengths, so no strlen() is linked. */
    cj_coap_build_opt(&b, CJ_COAP_OPT_URI_HOST, CJ_COJP_URI_HOST,
                      sizeof CJ_COJP_URI_HOST - 1);
    cj_coap_build_opt(&b, CJ_COAP_OPT_URI_PATH, CJ_COJP_URI_PATH,
                      sizeof CJ_COJP_URI_PATH - 1);
    cj_coap_build_opt(&b, CJ_COAP_OPT_PROXY_SCHEME, CJ_COJP_PROXY_SCHEME,
                      sizeof CJ_COJP_PROXY_SCHEME - 1);
    cj_coap_build_payload(&b, payload, (size_t)n);
    rc = cj_coap_build_finish(&b);
    if (rc < 0)
        goto fatal;
    rc = cj_oscore_protect_request(&p->osc, plain, (size_t)rc, p->tx,
                                   sizeof p->tx, &p->req);
    cj_crypto_wipe(plain, sizeof plain);
    if (rc == CJ_ERR_STORAGE)
        goto retry; /* Appendix B.1.1: not durable, not sent */
    if (rc < 0)
        goto fatal;

    p->tx_len = (uint16_t)rc;
    p->mid = mid;
    memcpy(p->token, token, sizeof token);
    p->attempts++;
    p->retransmits = 0;
    p->acked = false;
    p->same_jp = false;
    p->report_unsupported = false;
    memcpy(p->attempt_netid, jr.network_id, jr.network_id_len);
    p->attempt_netid_len = (uint8_t)jr.network_id_len;
    p->tx_to = jp->addr;
    /* RFC 7252 section 4.2: ACK_TIMEOUT * [1, ACK_RANDOM_FACTOR].  The
     * spread ACK_TIMEOUT * (factor - 1) is split into quotient and
     * remainder by 100 so that it needs no 64-bit division (a libgcc
     * helper on Cortex-M); the sum equals the 64-bit product / 100
     * truncated to 32 bits. */
    spread = p->timing.ack_random_factor_pct - 100u;
    if (spread != 0 &&
        p->timing.ack_timeout_ms / 100u > (UINT32_MAX - 65535u) / spread)
        spread = UINT32_MAX; /* saturate; capped just below */
    else
        spread = p->timing.ack_timeout_ms / 100u * spread +
                 p->timing.ack_timeout_ms % 100u * spread / 100u;
    if (spread > UINT32_MAX - p->timing.ack_timeout_ms)
        spread = UINT32_MAX - p->timing.ack_timeout_ms;
    p->timeout_ms = p->timing.ack_timeout_ms +
                    (spread ? rand32() % (spread + 1u) : 0u);
    p->timer = add_sat(now, p->timeout_ms);
    p->state = CJ_PLEDGE_JOINING;
    emit(out, p->tx, p->tx_len, &p->tx_to);
    return 1;

retry:
    p->timer = add_sat(now, CJ_PLEDGE_STORAGE_RETRY_MS);
    return 0;
fatal:
    /* The context cannot produce a request (sequence numbers exhausted,
     * limits too small): no later attempt would do better. */
    p->attempts = p->max_join_attempts;
    attempt_end(p, now, CJ_PLEDGE_EV_NONE, out);
    p->pending &= (uint16_t)~EV_BIT(CJ_PLEDGE_EV_FAILED);
    out->event = CJ_PLEDGE_EV_FAILED;
    return 1;
}

/* ---- responses to the Join Request -------------------------------------- */

static void ack_response(cj_out_t *out, uint8_t type, uint16_t mid,
                         const cj_addr_t *to)
{
    uint8_t ack[4];

    if (type != CJ_COAP_CON)
        return;
    ack[0] = (uint8_t)(0x40 | CJ_COAP_ACK << 4);
    ack[1] = CJ_COAP_EMPTY;
    ack[2] = (uint8_t)(mid >> 8);
    ack[3] = (uint8_t)mid;
    emit(out, ack, sizeof ack, to);
}

#if CJ_PLEDGE_RECOVERY
/* Section 8.3.3 / Appendix B.2 step 3: a 4.01 naming R2.  Verified with
 * a context for R2 || ID1; then R3 is drawn and made durable and the
 * context becomes R2 || R3. */
static int recovery(cj_pledge_t *p, uint64_t now, const cj_addr_t *from,
                    const cj_oscore_option_t *ov, uint8_t type, uint16_t mid,
                    uint8_t *msg, size_t len, cj_out_t *out)
{
    cj_oscore_ctx_t tmp;
    uint8_t id2[CJ_OSCORE_MAX_ID_CONTEXT];
    uint8_t id3[2 * CJ_PLEDGE_RECOVERY_NONCE_LEN];
    size_t id1_len = p->osc.id_context_len;
    uint64_t ssn, reserved;
    int rc;

    if (ov->kid_context_len != CJ_PLEDGE_RECOVERY_NONCE_LEN ||
        id1_len + CJ_PLEDGE_RECOVERY_NONCE_LEN > sizeof id2)
        return 0;
    memcpy(id2, ov->kid_context, CJ_PLEDGE_RECOVERY_NONCE_LEN);
    memcpy(id2 + CJ_PLEDGE_RECOVERY_NONCE_LEN, p->osc.id_context, id1_len);
    memcpy(id3, ov->kid_context, CJ_PLEDGE_RECOVERY_NONCE_LEN);
    if (derive(p, &tmp, id2, CJ_PLEDGE_RECOVERY_NONCE_LEN + id1_len,
               false) != CJ_OK)
        return 0;
    /* The response names its context by R2 alone while the keys come
     * from R2 || ID1: let the temporary context match on R2. */
    memcpy(tmp.id_context, id3, CJ_PLEDGE_RECOVERY_NONCE_LEN);
    tmp.id_context_len = CJ_PLEDGE_RECOVERY_NONCE_LEN;
    rc = cj_oscore_unprotect_response(&tmp, &p->req, msg, len, out->buf,
                                      out->cap);
    cj_crypto_wipe(&tmp, sizeof tmp);
    cj_crypto_wipe(id2, sizeof id2);
    if (rc < 4 || out->buf[1] != CJ_COAP_UNAUTHORIZED) {
        if (rc > 0)
            cj_crypto_wipe(out->buf, (size_t)rc);
        return 0;
    }
    cj_crypto_wipe(out->buf, (size_t)rc);

    /* R3, then R2 || R3 on trial: nothing is written until a response
     * under it verifies (trial_confirm); the durable context and its
     * window stay the fallback (Appendix B.2 step 5). */
    if (cj_crypto_random(id3 + CJ_PLEDGE_RECOVERY_NONCE_LEN,
                         CJ_PLEDGE_RECOVERY_NONCE_LEN) != CJ_OK) {
        cj_crypto_wipe(id3, sizeof id3);
        return 0; /* a retransmission brings the 4.01 again */
    }
    if (!p->rec_trial) {
        p->base_replay = p->osc.replay;
        p->base_tag = p->ctx_tag;
    }
    ssn = p->osc.ssn;
    reserved = p->osc.ssn_reserved;
    rc = derive(p, &p->osc, id3, sizeof id3, true);
    if (rc == CJ_OK) {
        /* One counter serves every context: keep it growing. */
        p->osc.ssn = ssn;
        p->osc.ssn_reserved = reserved;
        p->ctx_tag = ctx_tag_of(id3, sizeof id3);
        memcpy(p->rec_idctx, id3, sizeof id3);
        p->rec_trial = true;
    }
    cj_crypto_wipe(id3, sizeof id3);
    if (rc != CJ_OK)
        return 0;
    ack_response(out, type, mid, from);
    p->same_jp = true; /* the JRC behind this JP holds R2 */
    attempt_end(p, now, CJ_PLEDGE_EV_RECOVERY, out);
    return 1;
}
#endif

/* The decoded OSCORE option of m; false when absent or malformed. */
static bool oscore_option(const cj_coap_msg_t *m, cj_oscore_option_t *ov)
{
    cj_coap_opt_t o;

    return cj_coap_opt_find(m, CJ_COAP_OPT_OSCORE, &o) &&
           cj_oscore_option_decode(o.val, o.len, ov) == CJ_OK;
}

static int join_response(cj_pledge_t *p, uint64_t now, const cj_addr_t *from,
                         const cj_coap_msg_t *m, uint8_t *msg, size_t len,
                         cj_out_t *out)
{
    cj_oscore_replay_t before = p->osc.replay;
    cj_oscore_option_t ov;
    cj_coap_msg_t in;
    cj_cojp_config_t c;
    uint8_t type = m->type;
    uint16_t mid = m->mid;
    int rc;

    if (p->state != CJ_PLEDGE_JOINING || p->tx_len == 0)
        return 0;
    if (m->token_len != sizeof p->token ||
        memcmp(m->token, p->token, sizeof p->token) != 0)
        return 0;
    if (type == CJ_COAP_RST || (type == CJ_COAP_ACK && mid != p->mid))
        return 0;
    /* Section 7.3.2: anything unprotected is ignored. */
    if (!oscore_option(m, &ov))
        return 0;
    if (out->buf == NULL)
        return 0;
    if (ov.has_kid_context &&
        !bytes_eq(ov.kid_context, ov.kid_context_len, p->osc.id_context,
                  p->osc.id_context_len)) {
#if CJ_PLEDGE_RECOVERY
        rc = recovery(p, now, from, &ov, type, mid, msg, len, out);
        wipe_payload(msg, m);
        return rc;
#else
        return 0; /* recovery not built in: unverifiable, dropped (7.3.2) */
#endif
    }

    rc = cj_oscore_unprotect_response(&p->osc, &p->req, msg, len, out->buf,
                                      out->cap);
    wipe_payload(msg, m); /* the plaintext lives on in out->buf only */
    if (rc < 0)
        return 0;
#if CJ_PLEDGE_RECOVERY
    /* Appendix B.2 step 5: a response verified under R2 || R3; durable
     * before anything of it is acted upon. */
    if (p->rec_trial && trial_confirm(p) != CJ_OK) {
        p->osc.replay = before;
        cj_crypto_wipe(out->buf, (size_t)rc);
        return 0;
    }
#endif
    if (replay_commit(p, &before) != CJ_OK ||
        cj_coap_parse(&in, out->buf, (size_t)rc) != CJ_OK) {
        p->osc.replay = before;
        cj_crypto_wipe(out->buf, (size_t)rc);
        return 0;
    }

    /* A 4.00 Diagnostic Response or any other protected error: the JRC
     * refused; nothing of ours to report. */
    rc = in.code == CJ_COAP_CHANGED ? config_read(p, &in, true, &c) : 1;
    if (rc == 0) {
        config_apply(p, now, &c, true);
        memcpy(p->joined_netid, p->attempt_netid, p->attempt_netid_len);
        p->joined_netid_len = p->attempt_netid_len;
        p->joined_jp = p->tx_to;
        p->state = CJ_PLEDGE_JOINED;
        p->tx_len = 0;
        p->attempts = 0;
        p->same_jp = false;
        p->timer = CJ_TIME_NEVER;
        p->has_last = false;
    }
    cj_crypto_wipe(&c, sizeof c);
    cj_crypto_wipe(out->buf, out->cap);
    ack_response(out, type, mid, from);
    if (rc == 0) {
        out->event = CJ_PLEDGE_EV_JOINED;
        return 1;
    }
    p->report_unsupported = rc == 2;
    attempt_end(p, now, CJ_PLEDGE_EV_REJECTED, out);
    return 1;
}

/* ---- parameter update server (section 8.2) ------------------------------- */

/* Inner options of an update: exactly Uri-Path "j" addresses /j. */
static bool path_is_j(const cj_coap_msg_t *in)
{
    cj_coap_opt_iter_t it;
    cj_coap_opt_t o;
    int paths = 0;
    bool ok = false;

    cj_coap_opt_iter_init(&it, in);
    while (cj_coap_opt_next(&it, &o)) {
        if (o.num != CJ_COAP_OPT_URI_PATH)
            continue;
        paths++;
        ok = o.len == 1 && o.val[0] == 'j';
    }
    return paths == 1 && ok;
}

static int update_request(cj_pledge_t *p, uint64_t now, const cj_addr_t *from,
                          const cj_coap_msg_t *m, uint8_t *msg, size_t len,
                          cj_out_t *out)
{
    cj_oscore_replay_t before = p->osc.replay;
    cj_oscore_option_t ov;
    cj_oscore_req_t req;
    cj_coap_msg_t in;
    cj_coap_builder_t b;
    cj_cojp_config_t c;
    uint8_t tag[CJ_OSCORE_TAG_LEN];
    uint8_t payload[8 + CJ_PLEDGE_ADDINFO_MAX + 16];
    uint8_t plain[CJ_PLEDGE_RESP_MAX];
    uint8_t resp[CJ_PLEDGE_RESP_MAX];
    size_t payload_len = 0;
    uint8_t type = m->type, code;
    uint16_t mid = m->mid;
    bool usable = false, expired = false;
    int rc;

    if (type != CJ_COAP_CON && type != CJ_COAP_NON)
        return 0;
    if (!oscore_option(m, &ov) || ov.piv_len == 0 ||
        m->payload_len < CJ_OSCORE_TAG_LEN)
        return 0;
    memcpy(tag, m->payload + m->payload_len - CJ_OSCORE_TAG_LEN, sizeof tag);

    /* A retransmission of the request last answered: same bytes back,
     * nothing processed again (RFC 7252 section 4.5). */
    if (p->has_last && type == CJ_COAP_CON && mid == p->last_mid &&
        cj_addr_equal(from, &p->last_from) &&
        bytes_eq(ov.piv, ov.piv_len, p->last_piv, p->last_piv_len) &&
        memcmp(tag, p->last_tag, sizeof tag) == 0) {
        emit(out, p->resp, p->resp_len, from);
        return out->len ? 1 : 0;
    }
    if (p->state != CJ_PLEDGE_JOINED || out->buf == NULL)
        return 0;

    rc = cj_oscore_unprotect_request(&p->osc, msg, len, out->buf, out->cap,
                                     &req);
    wipe_payload(msg, m); /* the plaintext lives on in out->buf only */
    if (rc < 0)
        return 0;
    if (cj_coap_parse(&in, out->buf, (size_t)rc) != CJ_OK) {
        p->osc.replay = before;
        cj_crypto_wipe(out->buf, (size_t)rc);
        return 0;
    }

    /* Decide the answer before anything is applied. */
    rc = 1;
    if (!path_is_j(&in)) {
        code = CJ_COAP_NOT_FOUND;
    } else if (in.code != CJ_COAP_POST) {
        code = CJ_COAP_METHOD_NOT_ALLOWED;
    } else if ((rc = config_read(p, &in, false, &c)) != 0) {
        code = CJ_COAP_BAD_REQUEST;
    } else {
        code = CJ_COAP_CHANGED;
        usable = true;
    }
    if (rc == 2) {
        cj_cojp_unsupported_t u;
        memset(&u, 0, sizeof u);
        unsup_fill(p, &u);
        rc = cj_cojp_unsupported_encode(&u, payload, sizeof payload);
        payload_len = rc > 0 ? (size_t)rc : 0;
    }

    /* Piggybacked in the ACK for CON (section 8.2.1 agreement), NON
     * otherwise; protected with the request's nonce. */
    cj_coap_build_init(&b, plain, sizeof plain,
                       type == CJ_COAP_CON ? CJ_COAP_ACK : CJ_COAP_NON, code,
                       type == CJ_COAP_CON ? mid : (uint16_t)(p->mid + 1u),
                       in.token, in.token_len);
    cj_coap_build_payload(&b, payload, payload_len);
    rc = cj_coap_build_finish(&b);
    if (rc >= 0)
        rc = cj_oscore_protect_response(&p->osc, &req, false, plain,
                                        (size_t)rc, resp, sizeof resp);
    if (rc < 0 || replay_commit(p, &before) != CJ_OK) {
        p->osc.replay = before;
        if (usable)
            cj_crypto_wipe(&c, sizeof c);
        cj_crypto_wipe(out->buf, out->cap);
        return 0;
    }

    if (usable) {
        expired = config_apply(p, now, &c, false);
        cj_crypto_wipe(&c, sizeof c);
    }
    cj_crypto_wipe(out->buf, out->cap);
    if (type != CJ_COAP_CON)
        p->mid = (uint16_t)(p->mid + 1u);
    memcpy(p->resp, resp, (size_t)rc);
    p->resp_len = (uint16_t)rc;
    p->has_last = type == CJ_COAP_CON;
    p->last_from = *from;
    p->last_mid = mid;
    memcpy(p->last_piv, req.piv, req.piv_len);
    p->last_piv_len = req.piv_len;
    memcpy(p->last_tag, tag, sizeof tag);
    emit(out, p->resp, p->resp_len, from);
    if (expired) {
        /* Lease 0 (section 8.4.4): stop using the identifier, rejoin.
         * A 6LBR key switch of the same update stays queued. */
        out->event = CJ_PLEDGE_EV_LEASE_EXPIRED;
        begin_joining(p, now);
    } else if (usable) {
        out->event = CJ_PLEDGE_EV_UPDATED;
    }
    return 1;
}

/* ---- input / poll -------------------------------------------------------- */

int cj_pledge_input(cj_pledge_t *p, uint64_t now, const cj_addr_t *from,
                    uint8_t *msg, size_t len, cj_out_t *out)
{
    cj_coap_msg_t m;
    uint8_t cls;

    if (p == NULL || out == NULL)
        return 0;
    cj_out_reset(out);
    if (from == NULL || msg == NULL || cj_coap_parse(&m, msg, len) != CJ_OK)
        return 0;
    cls = (uint8_t)(m.code >> 5);
    if (cls >= 2 && cls <= 5)
        return join_response(p, now, from, &m, msg, len, out);
    if (cls == 0 && m.code != CJ_COAP_EMPTY)
        return update_request(p, now, from, &m, msg, len, out);
    if (m.code == CJ_COAP_EMPTY && m.type == CJ_COAP_ACK &&
        p->state == CJ_PLEDGE_JOINING && p->tx_len && m.mid == p->mid &&
        !p->acked && cj_addr_equal(from, &p->tx_to)) {
        /* RFC 7252 section 5.2.2: a separate response follows; stop
         * retransmitting and give it what the retransmissions had left
         * (never more: the attempt ends when it would have anyway).
         * Saturating, whatever MAX_RETRANSMIT is. */
        uint64_t left = 0, t = p->timeout_ms;
        for (unsigned i = p->retransmits; i <= p->timing.max_retransmit; i++) {
            left = add_sat(left, t);
            t = add_sat(t, t);
        }
        p->acked = true;
        p->timer = add_sat(now, left);
    }
    return 0;
}

static int deliver_pending(cj_pledge_t *p, cj_out_t *out)
{
    for (int e = 1; e < 16; e++)
        if (p->pending & EV_BIT(e)) {
            p->pending &= (uint16_t)~EV_BIT(e);
            out->event = e;
            return 1;
        }
    return 0;
}

int cj_pledge_poll(cj_pledge_t *p, uint64_t now, cj_out_t *out)
{
    if (p == NULL || out == NULL)
        return 0;
    cj_out_reset(out);
    if (p->pending)
        return deliver_pending(p, out);

    /* Guard time over: the old key set goes (sections 8.4.3.1-2). */
    if (p->old_keys.n && now >= p->old_keys_expire) {
        set_wipe(&p->old_keys);
        p->old_keys_expire = CJ_TIME_NEVER;
    }

    switch (p->state) {
    case CJ_PLEDGE_BACKOFF:
        if (now < p->timer)
            return 0;
        return attempt_start(p, now, out);
    case CJ_PLEDGE_JOINING:
        if (now < p->timer)
            return 0;
        if (!p->acked && p->retransmits < p->timing.max_retransmit) {
            p->retransmits++;
            p->timeout_ms = double_sat(p->timeout_ms);
            p->timer = add_sat(now, p->timeout_ms);
            emit(out, p->tx, p->tx_len, &p->tx_to);
            return 1;
        }
        attempt_end(p, now, CJ_PLEDGE_EV_TIMEOUT, out);
        return 1;
    case CJ_PLEDGE_JOINED:
        if (p->has_short_id && now >= p->lease_expiry) {
            drop_short_id(p);
            begin_joining(p, now);
            out->event = CJ_PLEDGE_EV_LEASE_EXPIRED;
            return 1;
        }
        return 0;
    default:
        return 0;
    }
}

uint64_t cj_pledge_next_timer(const cj_pledge_t *p)
{
    uint64_t t = CJ_TIME_NEVER;

    if (p == NULL)
        return t;
    if (p->pending)
        return 0;
    if (p->old_keys.n)
        t = p->old_keys_expire;
    switch (p->state) {
    case CJ_PLEDGE_BACKOFF:
    case CJ_PLEDGE_JOINING:
        if (p->timer < t)
            t = p->timer;
        break;
    case CJ_PLEDGE_JOINED:
        if (p->has_short_id && p->lease_expiry < t)
            t = p->lease_expiry;
        break;
    default:
        break;
    }
    return t;
}

/* ---- link-layer keys ------------------------------------------------------ */

const cj_pledge_key_t *cj_pledge_tx_key(const cj_pledge_t *p, uint8_t cls)
{
    if (p == NULL)
        return NULL;
    for (uint8_t i = 0; i < p->keys.n; i++)
        if (p->keys.k[i].key_id != 0 &&
            usage_covers(p->keys.k[i].key_usage, cls))
            return &p->keys.k[i];
    return NULL;
}

const cj_pledge_key_t *cj_pledge_rx_key(const cj_pledge_t *p, uint8_t key_id)
{
    const cj_pledge_key_t *k;

    if (p == NULL)
        return NULL;
    if ((k = set_find(&p->keys, key_id)) != NULL)
        return k;
    if ((k = set_find(&p->new_keys, key_id)) != NULL)
        return k;
    return set_find(&p->old_keys, key_id);
}

int cj_pledge_rx_used(cj_pledge_t *p, uint64_t now, uint8_t key_id,
                      cj_out_t *out)
{
    if (p == NULL || out == NULL)
        return 0;
    cj_out_reset(out);
    if (p->new_keys.n == 0 || set_find(&p->new_keys, key_id) == NULL ||
        set_find(&p->keys, key_id) != NULL)
        return 0;
    /* Section 8.4.3.2: the network switched; follow. */
    keys_switch(p, now);
    out->event = CJ_PLEDGE_EV_KEYS_SWITCHED;
    return 1;
}

/* ---- accessors ------------------------------------------------------------ */

cj_pledge_state_t cj_pledge_get_state(const cj_pledge_t *p)
{
    return p->state;
}

size_t cj_pledge_keys(const cj_pledge_t *p, const cj_pledge_key_t **keys)
{
    if (keys != NULL)
        *keys = p->keys.k;
    return p->keys.n;
}

int cj_pledge_short_id(const cj_pledge_t *p, uint8_t id[2], uint64_t *expiry)
{
    if (!p->has_short_id)
        return CJ_ERR_NOTFOUND;
    if (id != NULL)
        memcpy(id, p->short_id, CJ_COJP_SHORT_ID_LEN);
    if (expiry != NULL)
        *expiry = p->lease_expiry;
    return CJ_OK;
}

const uint8_t *cj_pledge_jrc_address(const cj_pledge_t *p)
{
    return p->has_jrc_address ? p->jrc_address : NULL;
}

uint64_t cj_pledge_join_rate(const cj_pledge_t *p)
{
    return p->join_rate;
}

size_t cj_pledge_blacklist_count(const cj_pledge_t *p)
{
    return p->blacklist_count;
}

bool cj_pledge_is_blacklisted(const cj_pledge_t *p, const uint8_t *id,
                              size_t len)
{
    for (uint8_t i = 0; i < p->blacklist_count; i++)
        if (bytes_eq(p->blacklist[i], p->blacklist_len[i], id, len))
            return true;
    return false;
}

const uint8_t *cj_pledge_network_id(const cj_pledge_t *p, size_t *len)
{
    if (len != NULL)
        *len = p->joined_netid_len;
    return p->joined_netid;
}

const cj_addr_t *cj_pledge_joined_jp(const cj_pledge_t *p)
{
    return &p->joined_jp;
}
