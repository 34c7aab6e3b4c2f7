/*
 * The pledge engine (RFC 9031 sections 7.3, 8.1-8.4; RFC 8613 Appendix
 * B.1 and B.2).  See cojp/pledge.h for the contract.
 *
 * Invariants:
 *   - while state is JOINING, tx[0..tx_len) is the protected request of
 *     the current attempt, which retransmissions repeat byte for byte;
 *     acked, retransmits, token and att belong to it too.  Other
 *     fields are only read in the states that set them: timer in
 *     BACKOFF and JOINING, lease_expiry while has_short_id,
 *     old_keys_expire while old_keys.n;
 *   - a join is only started with a candidate; jp_next is below
 *     jp_count whenever there is one, and jp_cur too until a candidate
 *     is withdrawn (attempt_end only takes it modulo jp_count); BACKOFF
 *     without a candidate waits, with no timer, for one to be offered;
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
 *   - no plaintext of an input survives the input() call: OSCORE
 *     decrypts in place in the caller's msg, and input() wipes that
 *     region on its way out.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cojp/cbor.h"
#include "cojp/coap.h"
#include "cojp/cojp.h"
#include "cojp/crypto.h"
#include "cojp/oscore.h"
#include "cojp/pledge.h"

#define EV_BIT(e) ((uint16_t)(1u << (e)))

_Static_assert(offsetof(cj_pledge_t, resp) ==
                   offsetof(cj_pledge_t, last_key) +
                       sizeof(((cj_pledge_t *)0)->last_key),
               "the response cache is stored with one copy");
_Static_assert(offsetof(cj_pledge_t, keys) ==
                       offsetof(cj_pledge_t, old_keys) +
                           sizeof(cj_pledge_keyset_t) &&
                   offsetof(cj_pledge_t, new_keys) ==
                       offsetof(cj_pledge_t, keys) +
                           sizeof(cj_pledge_keyset_t),
               "keys_switch() moves old_keys, keys and new_keys as one");
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

/* a + b, saturating at the latest finite time CJ_TIME_NEVER - 1. */
static CJ_NOINLINE uint64_t add_sat(uint64_t a, uint64_t b)
{
    uint64_t s = a + b;

    return s < a || s == CJ_TIME_NEVER ? CJ_TIME_NEVER - 1 : s;
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
                                      v);
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
#endif

/* OSCORE parameters of the pledge's context with ID Context id (section
 * 7.3: empty Sender ID, Recipient ID "JRC"): loaded from okm when given
 * (Appendix B), else derived with secret as Master Secret. */
static CJ_ALWAYS_INLINE void params_of(cj_oscore_params_t *pr,
                                        const uint8_t *id, size_t len,
                                        const uint8_t *secret,
                                        const uint8_t *okm)
{
    static const uint8_t jrc_id[CJ_COJP_JRC_ID_LEN] = {0x4a, 0x52, 0x43};

    memset(pr, 0, sizeof *pr);
    pr->recipient_id = jrc_id;
    pr->recipient_id_len = sizeof jrc_id;
    pr->id_context = id;
    pr->id_context_len = len;
    pr->has_id_context = true;
    pr->master_secret = secret;
    pr->master_secret_len = 16;
    pr->okm = okm;
}

#if CJ_PLEDGE_RECOVERY
/* Set ctx up for ID Context id: loaded from okm when given, else derived
 * from the PSK in p->psk.  p->osc is derived anew, keeping its persistence and sequence
 * number (at init they are still zero, as a fresh derivation would leave
 * them), and ctx_tag becomes the tag its persisted replay window
 * carries: 0 for the pledge identifier, ctx_tag_of() for a recovered
 * R2 || R3; on failure ctx_tag is kept (and a failed rederive leaves ctx
 * as it was).  Any other context is derived from scratch. */
static CJ_NOINLINE int context(cj_pledge_t *p, cj_oscore_ctx_t *ctx,
                               const uint8_t *id, size_t len,
                               const uint8_t *okm)
{
    cj_oscore_params_t pr;
    int rc;

    params_of(&pr, id, len, p->psk, okm);
    rc = ctx == &p->osc ? cj_oscore_ctx_rederive(ctx, &pr)
                        : cj_oscore_ctx_derive(ctx, &pr);
    if (rc == CJ_OK && ctx == &p->osc)
        p->ctx_tag = id == p->pledge_id ? 0 : ctx_tag_of(id, len);
    return rc;
}
#endif

int cj_pledge_okm(const uint8_t *pledge_id, size_t pledge_id_len,
                  const uint8_t psk[16], uint8_t okm[CJ_OSCORE_OKM_LEN])
{
    cj_oscore_params_t pr;

    if (pledge_id == NULL || pledge_id_len == 0 ||
        pledge_id_len > CJ_OSCORE_MAX_ID_CONTEXT || psk == NULL)
        return CJ_ERR_INVALID;
    params_of(&pr, pledge_id, pledge_id_len, psk, NULL);
    return cj_oscore_okm(&pr, okm);
}

#if CJ_PLEDGE_RECOVERY
/* context() from the PSK; CJ_ERR_UNSUPPORTED without it (a context given
 * at init, Appendix B). */
static CJ_NOINLINE int derive(cj_pledge_t *p, cj_oscore_ctx_t *ctx,
                              const uint8_t *id, size_t len)
{
    if (!p->has_psk)
        return CJ_ERR_UNSUPPORTED;
    return context(p, ctx, id, len, NULL);
}

/* The durable context into p->osc (anew, keeping its sequence number):
 * the confirmed pair R2 || R3 when there is one, else the pledge
 * identifier (section 7.3).  okm: the context given at init (Appendix
 * B); otherwise psk holds the PSK (a pledge given okm has no pair and is
 * never on trial, so only init comes here without the PSK). */
static CJ_NOINLINE int durable(cj_pledge_t *p, const uint8_t *okm)
{
    return context(p, &p->osc, p->has_pair ? p->pair : p->pledge_id,
                   p->has_pair ? sizeof p->pair : p->pledge_id_len, okm);
}
#endif

#if CJ_PLEDGE_RECOVERY
/* "Pair valid" marker of a confirmed R2 || R3 (counter CJ_PLEDGE_CTR_PAIR,
 * written last).  Any change of either nonce changes it, so a torn write
 * (a new R2 beside an old R3, or a new pair beside an old marker) is seen
 * on restore.  Not a secret and not an integrity check against an
 * attacker with access to the storage, only against interruption. */
static CJ_NOINLINE uint64_t pair_check(uint64_t r2, uint64_t r3)
{
    return r2 ^ (r3 << 29 | r3 >> 35) ^ UINT64_C(0x436f4a5052324133);
}

/* End a trial of R2 || R3 that no verified response confirmed: go back
 * to the durable context (pledge id or confirmed pair) and its replay
 * window.  cj_oscore_ctx_rederive() keeps the sender sequence number (it
 * only grows). */
static CJ_NOINLINE void trial_end(cj_pledge_t *p)
{
    if (!p->rec_trial)
        return;
    /* Cannot fail: these parameters were derived at init or confirmed. */
    if (durable(p, NULL) == CJ_OK)
        p->osc.replay = p->base_replay;
    p->rec_trial = false;
}

/* Appendix B.2 step 5: a response under R2 || R3 (the ID Context of
 * p->osc while rec_trial) verified, so the JRC holds the pair; make it
 * the durable context, marker last.  On failure the trial goes on (the
 * response is dropped; the retransmission or the JRC's repeat brings it
 * again) and a restart still finds the old context: the marker does not
 * match a half-written pair. */
static CJ_ALWAYS_INLINE int trial_confirm(cj_pledge_t *p)
{
    const uint8_t *r = p->osc.id_context;
    /* R2 and R3, the nonces as big-endian numbers (like a Partial IV),
     * then the marker: the consecutive counters init reads, written in
     * that order */
    uint64_t v[3];
    unsigned i;

    for (i = 0; i < 2; i++)
        v[i] = cj_oscore_piv_value(r + i * CJ_PLEDGE_RECOVERY_NONCE_LEN,
                                   CJ_PLEDGE_RECOVERY_NONCE_LEN);
    v[2] = pair_check(v[0], v[1]);
    for (i = 0; i < 3; i++)
        if (ctr_store(p, CJ_PLEDGE_CTR_R2 + i, v[i]) != CJ_OK)
            return CJ_ERR_STORAGE;
    memcpy(p->pair, r, sizeof p->pair);
    p->has_pair = true;
    p->rec_trial = false;
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

/* An accepted message, bound by *own: its Partial IV, if it has one,
 * enters the window (section 7.4; it passed the replay check when it
 * was opened), and the window is made durable.  A message without one
 * leaves the window as it was.  On failure the caller puts the window
 * back. */
static int replay_commit(cj_pledge_t *p, const cj_oscore_req_t *own)
{
    if (own->piv_len == 0)
        return CJ_OK;
    cj_oscore_replay_update(&p->osc.replay,
                            cj_oscore_piv_value(own->piv, own->piv_len));
    return ctr_store(p, CJ_PLEDGE_CTR_REPLAY,
                     replay_pack(&p->osc.replay, p->ctx_tag));
}

/* ---- key sets ------------------------------------------------------------ */

static const cj_pledge_key_t *set_find(const cj_pledge_keyset_t *s,
                                       uint8_t key_id)
{
    for (unsigned i = 0; i < s->n; i++)
        if (s->k[i].key_id == key_id)
            return &s->k[i];
    return NULL;
}

static CJ_NOINLINE void set_wipe(cj_pledge_keyset_t *s)
{
    cj_crypto_wipe(s, sizeof *s);
}

/* Sections 8.4.3.1-2: the staged set in new_keys goes into use; the
 * previous one stays for reception until the guard time is over. */
static CJ_NOINLINE void keys_switch(cj_pledge_t *p, uint64_t now)
{
    /* old_keys = keys and keys = new_keys in one move (the three sets
     * are consecutive members of one type, without padding) */
    memmove((uint8_t *)p + offsetof(cj_pledge_t, old_keys),
            (uint8_t *)p + offsetof(cj_pledge_t, keys), 2 * sizeof p->keys);
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

/* Longest value config_read builds for a report: one Link-Layer_Key as a
 * key set of one (array head, key_id, key_usage, key_value and a
 * key_addinfo of at most 10 bytes, which the codec guarantees whatever
 * CJ_PLEDGE_KEY_ADDINFO_MAX is, with their heads). */
#define VALUE_MAX (1 + 2 + 1 + 1 + CJ_COJP_KEY_LEN + 1 + 10)

/* A byte string of at most 23 bytes (one-byte head) at q; returns the
 * end.  One copy for the three strings of a report. */
static CJ_NOINLINE uint8_t *bstr_put(uint8_t *q, const uint8_t *b,
                                     size_t len)
{
    *q++ = (uint8_t)(CJ_CBOR_BSTR << 5 | len);
    memcpy(q, b, len);
    return q + len;
}

/* Decode the Configuration payload[0..payload_len) and check that the
 * node can act upon it (section 8.3.1); joining: it is a Join Response,
 * which must carry keys.  0: usable, *c filled.  1: refused, nothing to
 * report.  2: refused, the parameter to report (section 8.4.5) is left
 * encoded as an Unsupported_Configuration in p->unsup;
 * report_unsupported is the caller's to set. */
static int config_read(cj_pledge_t *p, const uint8_t *payload,
                       size_t payload_len, bool joining, cj_cojp_config_t *c)
{
    cj_cojp_report_t why;
    int64_t code = CJ_COJP_CODE_UNSUPPORTED, label = CJ_COJP_LABEL_KEY_SET;
    const uint8_t *ai = NULL;
    /* addinfo built here: the refused value in its parameter's structure
     * (section 8.4.5), at most one Link-Layer_Key as a key set of one */
    uint8_t val[VALUE_MAX], *q = val;
    size_t ai_len = 0, i, j;

    if (cj_cojp_config_decode(payload, payload_len, c, &why) != CJ_OK) {
        if (!why.has_param)
            return 1;
        code = why.param.code;
        label = why.param.label;
        ai = why.param.addinfo;
        ai_len = why.param.addinfo_len;
        goto report;
    }
    if (joining && c->key_count == 0)
        goto report; /* null: no key set at all */
    for (i = 0; i < c->key_count; i++) {
        const cj_cojp_key_t *k = &c->keys[i];
        /* The codec only lets through usages of Table 6 (0..14), so
         * key_usage is a valid shift and its own one-byte CBOR encoding.
         * It lets key_addinfo through with at most 10 bytes (section
         * 8.4.3.3): the length test only matters when the room kept is
         * smaller. */
        bool bad = !(p->key_usages & (1u << k->key_usage)) ||
                   (CJ_PLEDGE_KEY_ADDINFO_MAX < 10 &&
                    k->addinfo_len > CJ_PLEDGE_KEY_ADDINFO_MAX);
        /* Section 8.4.3.3: one key value is never used with two MIC
         * lengths (the usage modulo 3 is the MIC length, Table 6). */
        for (j = 0; j < i; j++)
            if ((c->keys[j].key_usage - k->key_usage) % 3 &&
                !cj_crypto_ct_compare(c->keys[j].key, k->key,
                                      CJ_COJP_KEY_LEN))
                bad = true;
        if (bad) {
            /* [key_id, key_usage, key_value, ?key_addinfo]; a key and an
             * addinfo of at most 10 bytes have one-byte heads */
            *q++ = (uint8_t)(CJ_CBOR_ARRAY << 5 | (3 + !!k->addinfo_len));
            q += cj_cbor_head(q, CJ_CBOR_UINT, k->key_id);
            *q++ = k->key_usage;
            q = bstr_put(q, k->key, CJ_COJP_KEY_LEN);
            if (k->addinfo_len)
                q = bstr_put(q, k->addinfo, k->addinfo_len);
            goto built;
        }
    }
    /* An invalid short identifier was discarded by the codec
     * (c->short_id NULL, its bit in c->ignored): section 8.4.4 says the
     * decoder MUST silently ignore it, so the rest of the object is used
     * as if it were absent. */
    label = CJ_COJP_LABEL_SHORT_ID;
    if (joining && c->short_id != NULL && c->has_lease_time &&
        c->lease_time == 0) {
        /* [identifier, 0] */
        *q++ = CJ_CBOR_ARRAY << 5 | 2;
        q = bstr_put(q, c->short_id, CJ_COJP_SHORT_ID_LEN);
        *q++ = 0;
        goto built;
    }
    label = CJ_COJP_LABEL_BLACKLIST;
    /* An entry longer than the node keeps: null, since it can never act
     * on such entries, and a JRC then leaves the blacklist out (a value
     * named instead would have it send the same list again). */
    for (i = 0; c->has_blacklist && i < c->blacklist_count; i++)
        if (c->blacklist[i].len > CJ_PLEDGE_MAX_BLACKLIST_ID)
            goto report;
    return 0;

built:
    ai = val;
    ai_len = (size_t)(q - val);
report:
    /* [code, label, addinfo]: the code is one of the decoder's (0 or 1, a
     * one-byte unsigned integer), a negative label -1 - n has major type
     * 1 and argument n = ~label, the addinfo is one well-formed item (the
     * value as received, or built above); absent or longer than the room
     * kept, it is null. */
    q = p->unsup;
    *q++ = CJ_CBOR_ARRAY << 5 | 3;
    *q++ = (uint8_t)code;
    q += cj_cbor_head(q, label < 0 ? CJ_CBOR_NINT : CJ_CBOR_UINT,
                      label < 0 ? ~(uint64_t)label : (uint64_t)label);
    if (ai_len && ai_len <= CJ_PLEDGE_ADDINFO_MAX) {
        memcpy(q, ai, ai_len);
        q += ai_len;
    } else {
        *q++ = 0xf6; /* null */
    }
    p->unsup_len = (uint8_t)(q - p->unsup);
    return 2;
}

/* ---- installing a Configuration ----------------------------------------- */

/* Apply a checked Configuration.  A Join Response replaces every
 * parameter (what it leaves out takes the default of section 8.4.2: no
 * short identifier, JRC co-located with the 6LBR, no blacklist, no join
 * rate limit); an update keeps the parameters it leaves out.  Returns
 * true when a lease of 0 took the short identifier away (update only:
 * config_read refuses it in a Join Response).  Values a flag marks
 * absent (lease_expiry without a short identifier, old_keys_expire
 * without old keys, bytes past a length) are never read. */
static bool config_apply(cj_pledge_t *p, uint64_t now,
                         const cj_cojp_config_t *c, bool joining)
{
    bool expired = false, same;

    if (joining) {
        p->has_short_id = false;
        p->has_jrc_address = false;
        p->blacklist_count = 0;
        p->join_rate = CJ_PLEDGE_JOIN_RATE_INFINITE;
    }

    if (c->key_count) {
        /* The received set is staged in new_keys, where section 8.4.3.2
         * wants it on a 6LN; the other cases move it on at once.  Every
         * byte of an entry is defined, so that equal sets compare equal
         * (in constant time: keys are secret). */
        cj_pledge_keyset_t *s = &p->new_keys;
        memset(s, 0, sizeof *s);
        for (size_t i = 0; i < c->key_count; i++) {
            cj_pledge_key_t *k = &s->k[i];
            k->key_id = c->keys[i].key_id;
            k->key_usage = c->keys[i].key_usage;
            memcpy(k->key, c->keys[i].key, CJ_COJP_KEY_LEN);
            k->addinfo_len = (uint8_t)c->keys[i].addinfo_len;
            if (k->addinfo_len)
                memcpy(k->addinfo, c->keys[i].addinfo, k->addinfo_len);
        }
        s->n = (uint8_t)c->key_count;
        same = s->n == p->keys.n &&
               cj_crypto_ct_compare(s->k, p->keys.k,
                                    s->n * sizeof s->k[0]) == 0;
        if (joining || (!same && p->role == CJ_COJP_ROLE_6LBR)) {
            /* Joining: the old set is not kept (wiped before it moves
             * to old_keys).  A 6LBR switches now and keeps the old set
             * for rx (section 8.4.3.1). */
            if (joining)
                set_wipe(&p->keys);
            else
                p->pending |= EV_BIT(CJ_PLEDGE_EV_KEYS_SWITCHED);
            keys_switch(p, now);
        } else if (same) {
            set_wipe(s); /* nothing to switch to */
        }
    }

    if (c->short_id != NULL) {
        memcpy(p->short_id, c->short_id, CJ_COJP_SHORT_ID_LEN);
        p->has_short_id = true;
        p->lease_expiry = CJ_TIME_NEVER;
        if (c->has_lease_time) {
            /* A lease too long for the clock saturates. */
            if (c->lease_time == 0) {
                p->has_short_id = false;
                expired = true;
            } else {
                p->lease_expiry = add_sat(
                    now, c->lease_time > CJ_TIME_NEVER / HOUR_MS
                             ? CJ_TIME_NEVER
                             : c->lease_time * HOUR_MS);
            }
        }
    }

    if (c->jrc_address != NULL) {
        memcpy(p->jrc_address, c->jrc_address, CJ_COJP_JRC_ADDRESS_LEN);
        p->has_jrc_address = true;
    }

    if (c->has_blacklist) {
        for (size_t i = 0; i < c->blacklist_count; i++) {
            p->blacklist_len[i] = (uint8_t)c->blacklist[i].len;
            if (p->blacklist_len[i])
                memcpy(p->blacklist[i], c->blacklist[i].p,
                       p->blacklist_len[i]);
        }
        p->blacklist_count = (uint8_t)c->blacklist_count;
    }

    if (c->has_join_rate)
        p->join_rate = c->join_rate;
    return expired;
}

/* ---- init / JPs / start -------------------------------------------------- */

int cj_pledge_init(cj_pledge_t *p, const cj_pledge_cfg_t *cfg,
                   const cj_platform_t *platform)
{
    uint32_t ack, spread, room;
#if CJ_PLEDGE_RECOVERY
    /* R2, R3 and the marker: consecutive counters */
    uint64_t r[3];
#endif
    uint64_t rw;
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
#if CJ_PLEDGE_RECOVERY
    if (cfg->okm == NULL) {
        memcpy(p->psk, cfg->psk, sizeof p->psk);
        p->has_psk = true;
    }
#endif
    p->role = cfg->role;
    if (cfg->network_id != NULL) {
        memcpy(p->network_id, cfg->network_id, cfg->network_id_len);
        p->network_id_len = (uint8_t)cfg->network_id_len;
        p->fixed_network_id = true;
    }
    /* All zero: RFC 9031 Table 1; otherwise a zero ACK_TIMEOUT takes
     * Table 1's and ACK_RANDOM_FACTOR is at least 1. */
    ack = cfg->timing.ack_timeout_ms;
    spread = cfg->timing.ack_random_factor_pct;
    p->max_retransmit = cfg->timing.max_retransmit;
    if (ack == 0 && spread == 0 && p->max_retransmit == 0) {
        spread = CJ_COJP_ACK_RANDOM_FACTOR_PCT;
        p->max_retransmit = CJ_COJP_MAX_RETRANSMIT;
    }
    if (ack == 0)
        ack = CJ_COJP_ACK_TIMEOUT_MS;
    spread = spread < 100 ? 0 : spread - 100;
    /* RFC 7252 section 4.2: timeouts start in ACK_TIMEOUT * [1,
     * ACK_RANDOM_FACTOR]; the spread ACK_TIMEOUT * (factor - 1) is capped
     * so that a timeout fits 32 bits.  The cap is tested on the exact
     * 64-bit product (a multiplication, no libgcc helper); below it the
     * spread fits 32 bits and is computed by quotient and remainder of
     * ACK_TIMEOUT by 100, which needs no 64-bit division. */
    room = UINT32_MAX - ack;
    if ((uint64_t)ack * spread >= (uint64_t)room * 100u)
        spread = room;
    else
        spread = ack / 100u * spread + ack % 100u * spread / 100u;
    p->ack_timeout_ms = ack;
    p->ack_spread_ms = spread;
    p->max_join_attempts = cfg->max_join_attempts
                               ? cfg->max_join_attempts
                               : CJ_COJP_MAX_JOIN_ATTEMPTS;
    p->rekey_guard_ms = cfg->rekey_guard_ms
                            ? cfg->rekey_guard_ms
                            : CJ_COJP_REKEYING_GUARD_TIME * 1000u;
    p->counter_base = cfg->counter_base;
    p->key_usages = cfg->key_usages ? cfg->key_usages : 0x7fffu;
    p->platform = platform;

#if CJ_PLEDGE_RECOVERY
    /* Appendix B.2 state: a confirmed pair is R2, R3 and a marker that
     * matches them (written last); anything else is the pledge id.  A
     * pledge without its PSK keeps the pledge id. */
    rc = p->has_psk ? CJ_OK : CJ_ERR_NOTFOUND;
    for (unsigned i = 0; i < 3 && rc == CJ_OK; i++)
        rc = ctr_load(p, CJ_PLEDGE_CTR_R2 + i, &r[i]);
    if (rc == CJ_OK) {
        if (r[2] == pair_check(r[0], r[1])) {
            /* the nonces are stored big-endian */
            for (unsigned i = 2 * CJ_PLEDGE_RECOVERY_NONCE_LEN; i-- > 0;) {
                uint64_t *v = &r[i / CJ_PLEDGE_RECOVERY_NONCE_LEN];
                p->pair[i] = (uint8_t)*v;
                *v >>= 8;
            }
            p->has_pair = true;
        }
    } else if (rc != CJ_ERR_NOTFOUND) {
        goto storage;
    }
#endif

    /* the durable context (only a pledge given its PSK has a pair, so
     * cfg->okm is NULL then) */
#if CJ_PLEDGE_RECOVERY
    rc = durable(p, cfg->okm);
#else
    {
        cj_oscore_params_t pr;

        params_of(&pr, p->pledge_id, p->pledge_id_len, cfg->psk, cfg->okm);
        rc = cj_oscore_ctx_derive(&p->osc, &pr);
    }
#endif
    if (rc != CJ_OK)
        goto fail;
    p->osc.send_kid_context = true; /* section 7.3: kid context = ID Ctx */
    if (cj_oscore_ctx_attach(&p->osc, platform,
                             p->counter_base + CJ_PLEDGE_CTR_SSN) != CJ_OK)
        goto storage;
    rc = ctr_load(p, CJ_PLEDGE_CTR_REPLAY, &rw);
    if (rc == CJ_OK) {
        /* Bits 63..24 highest, 23..8 the newest 16 bitmap bits, 7..0 the
         * context tag; the 16 older positions were not stored: count
         * them as seen. */
        if ((uint8_t)rw == p->ctx_tag && ((rw >> 8) & 1u)) {
            p->osc.replay.highest = rw >> 24;
            p->osc.replay.bitmap = (uint32_t)(rw >> 8) | 0xffff0000u;
            p->osc.replay.valid = true;
        }
    } else if (rc != CJ_ERR_NOTFOUND) {
        goto storage;
    }

    p->mid = (uint16_t)rand32(); /* first request uses mid + 1 */
    p->join_rate = CJ_PLEDGE_JOIN_RATE_INFINITE;
    return CJ_OK; /* state CJ_PLEDGE_IDLE (0) */

storage:
    rc = CJ_ERR_STORAGE;
fail:
    cj_crypto_wipe(p, sizeof *p);
    return rc;
}

/* Index of the candidate with address jp; jp_count when none. */
static CJ_NOINLINE unsigned jp_index(const cj_pledge_t *p, const cj_addr_t *jp)
{
    unsigned i = 0;

    while (i < p->jp_count && !cj_addr_equal(&p->jps[i].addr, jp))
        i++;
    return i;
}

int cj_pledge_add_jp(cj_pledge_t *p, const cj_addr_t *jp,
                     const uint8_t *network_id, size_t network_id_len)
{
    cj_pledge_jp_t *e;
    unsigned i;

    if (p == NULL || jp == NULL || jp->len > CJ_ADDR_MAX ||
        network_id_len > CJ_PLEDGE_MAX_NETID ||
        (network_id == NULL && network_id_len > 0))
        return CJ_ERR_INVALID;
    i = jp_index(p, jp);
    if (i == CJ_PLEDGE_MAX_JPS) { /* unknown, table full */
        i = p->jp_replace;
        p->jp_replace = (uint8_t)((i + 1) % CJ_PLEDGE_MAX_JPS);
    } else if (i == p->jp_count) {
        p->jp_count++;
    }
    e = &p->jps[i];
    memcpy(&e->addr, jp, sizeof e->addr);
    if (p->fixed_network_id) {
        /* the configured network identifier goes with every JP */
        network_id = p->network_id;
        network_id_len = p->network_id_len;
    }
    if (network_id_len)
        memcpy(e->network_id, network_id, network_id_len);
    e->network_id_len = (uint8_t)network_id_len;
    return CJ_OK;
}

int cj_pledge_remove_jp(cj_pledge_t *p, const cj_addr_t *jp)
{
    unsigned i, last;

    if (p == NULL || jp == NULL)
        return CJ_ERR_INVALID;
    i = jp_index(p, jp);
    if (i == p->jp_count)
        return CJ_ERR_NOTFOUND;
    /* The last candidate takes the place of the one withdrawn.  An
     * attempt under way keeps its JP (a copy in att) until it ends; a
     * recovery that was to stay with the withdrawn JP moves on. */
    last = --p->jp_count;
    memcpy(&p->jps[i], &p->jps[last], sizeof p->jps[i]);
    if (p->jp_cur == i)
        p->same_jp = false;
    else if (p->jp_cur == last)
        p->jp_cur = (uint8_t)i;
    if (p->jp_next >= p->jp_count)
        p->jp_next = 0;
    return CJ_OK;
}

/* Join again from the first attempt (start, lease expiry). */
static CJ_NOINLINE void begin_joining(cj_pledge_t *p, uint64_t now)
{
#if CJ_PLEDGE_RECOVERY
    trial_end(p); /* a restarted join does not count on an old R2 */
#endif
    p->state = CJ_PLEDGE_BACKOFF;
    p->attempts = 0;
    p->same_jp = false;
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

/* A Join Request as sent (sections 8.1.1 and 7.3; RFC 8613 sections 4
 * and 5.3): CON POST, 4-byte token; outer options Uri-Host "6tisch.arpa"
 * (3), OSCORE (9) and Proxy-Scheme "coap" (39); the payload marker; then
 * the plaintext: inner code POST, Uri-Path "j" (11, the only Class E
 * option, delta from 0), its own payload marker and the Join_Request;
 * the tag.  The message ID and the token are filled in, the OSCORE
 * option (delta 6, its value's length in the head or, from 13 bytes, in
 * one extension byte) goes between REQ_HEAD and REQ_TAIL. */
#define REQ_HEAD_LEN 20
#define REQ_TAIL_LEN 11
/* Longest Join_Request: map head, role, network identifier with its
 * head, Unsupported_Configuration with its label. */
#define REQ_PAYLOAD_MAX                                                    \
    (3 + 1 + 9 + CJ_PLEDGE_MAX_NETID + 1 + CJ_PLEDGE_UNSUP_MAX)
_Static_assert(CJ_PLEDGE_TX_MAX >= REQ_HEAD_LEN + 2 + CJ_OSCORE_OPT_MAX +
                                       REQ_TAIL_LEN + REQ_PAYLOAD_MAX +
                                       CJ_OSCORE_TAG_LEN,
               "CJ_PLEDGE_TX_MAX holds the longest Join Request");

static void emit(cj_out_t *out, const uint8_t *b, size_t n,
                 const cj_addr_t *to)
{
    if (out->buf == NULL || n > out->cap)
        return; /* lost like a dropped frame; retransmission covers it */
    memcpy(out->buf, b, n);
    out->len = n;
    memcpy(&out->to, to, sizeof out->to);
}

/* End the current attempt with event ev (the caller reports it); the
 * next one starts at the next poll, or the pledge gives up (section
 * 8.3.1). */
static void attempt_end(cj_pledge_t *p, int ev, uint64_t now)
{
#if CJ_PLEDGE_RECOVERY
    /* An attempt under R2 || R3 that ends without a verified response
     * (a verified one confirmed the pair before getting here): the JRC
     * may have lost R2, so the next attempt goes back to ID1 (RFC 8613
     * Appendix B.2 step 5 marks the new context only on success). */
    if (ev != CJ_PLEDGE_EV_RECOVERY)
        trial_end(p);
#else
    (void)ev;
#endif
    if (!p->same_jp && p->jp_count)
        p->jp_next = (uint8_t)((p->jp_cur + 1) % p->jp_count);
    p->state = CJ_PLEDGE_BACKOFF;
    p->timer = now;
    if (p->attempts >= p->max_join_attempts) {
        p->state = CJ_PLEDGE_FAILED;
        p->pending |= EV_BIT(CJ_PLEDGE_EV_FAILED);
    }
}

/* Build and protect the next Join Request (section 8.1.1).  -1: it is
 * in tx, state JOINING, for the caller to send; otherwise what poll
 * returns (1 with an event, 0 when it is retried later). */
static CJ_ALWAYS_INLINE int attempt_start(cj_pledge_t *p, uint64_t now,
                                          cj_out_t *out)
{
    static const uint8_t head[REQ_HEAD_LEN] = {
        0x44, CJ_COAP_POST, 0, 0, 0, 0, 0, 0,
        0x3b, '6', 't', 'i', 's', 'c', 'h', '.', 'a', 'r', 'p', 'a'};
    static const uint8_t tail[REQ_TAIL_LEN] = {
        0xd4, 39 - 9 - 13, 'c', 'o', 'a', 'p', 0xff,
        CJ_COAP_POST, 0xb1, 'j', 0xff};
    uint8_t opt[CJ_OSCORE_OPT_MAX];
    uint8_t *q = p->tx, *pt;
    uint16_t mid = (uint16_t)(p->mid + 1u);
    int rc;

    if (!p->same_jp)
        p->jp_cur = p->jp_next;
    /* The JP of this attempt and the network named in the request. */
    memcpy(&p->att, &p->jps[p->jp_cur], sizeof p->att);

    memcpy(q, head, sizeof head);
    q[2] = (uint8_t)(mid >> 8);
    q[3] = (uint8_t)mid;
    if (cj_crypto_random(q + 4, sizeof p->token) != CJ_OK)
        goto retry;
    memcpy(p->token, q + 4, sizeof p->token);
    rc = cj_oscore_seal_begin(&p->osc, NULL, true, &p->req, opt);
    if (rc < 0)
        goto fatal;
    q += sizeof head;
    *q++ = (uint8_t)(0x60 | (rc < 13 ? rc : 13));
    if (rc >= 13)
        *q++ = (uint8_t)(rc - 13);
    memcpy(q, opt, (size_t)rc);
    q += rc;
    memcpy(q, tail, sizeof tail);
    q += sizeof tail;
    pt = q - 4; /* the plaintext starts at its code */

    /* Join_Request (section 8.4.1): a map of role (when not the default
     * 6LN), network identifier and, after a refused Configuration, the
     * Unsupported_Configuration naming the parameter (section 8.3.1). */
    *q++ = (uint8_t)(CJ_CBOR_MAP << 5 | (1 + (p->role != CJ_COJP_ROLE_6LN) +
                                         p->report_unsupported));
    if (p->role != CJ_COJP_ROLE_6LN) {
        *q++ = CJ_COJP_LABEL_ROLE;
        *q++ = p->role; /* 6LBR: 1 */
    }
    *q++ = CJ_COJP_LABEL_NETWORK_ID;
    q += cj_cbor_head(q, CJ_CBOR_BSTR, p->att.network_id_len);
    memcpy(q, p->att.network_id, p->att.network_id_len);
    q += p->att.network_id_len;
    if (p->report_unsupported) {
        *q++ = CJ_COJP_LABEL_UNSUPPORTED;
        memcpy(q, p->unsup, p->unsup_len);
        q += p->unsup_len;
    }

    rc = cj_oscore_seal(&p->osc, &p->req, NULL, pt, (size_t)(q - pt));
    if (rc < 0) {
        /* not sealed: nothing sent, no plaintext kept */
        cj_crypto_wipe(p->tx, sizeof p->tx);
        if (rc == CJ_ERR_STORAGE)
            goto retry; /* Appendix B.1.1: not durable */
        goto fatal;
    }

    p->tx_len = (uint16_t)(pt - p->tx + rc);
    p->mid = mid;
    p->attempts++;
    p->retransmits = 0;
    p->acked = false;
    p->same_jp = false;
    p->report_unsupported = false;
    /* RFC 7252 section 4.2: ACK_TIMEOUT * [1, ACK_RANDOM_FACTOR] */
    p->timeout_ms = p->ack_timeout_ms;
    if (p->ack_spread_ms)
        p->timeout_ms += rand32() % (p->ack_spread_ms + 1u);
    p->state = CJ_PLEDGE_JOINING;
    return -1; /* to be sent */

retry:
    p->timer = add_sat(now, CJ_PLEDGE_STORAGE_RETRY_MS);
    return 0;
fatal:
    /* The context cannot produce a request (sequence numbers exhausted,
     * limits too small): no later attempt would do better. */
    p->attempts = p->max_join_attempts;
    attempt_end(p, CJ_PLEDGE_EV_FAILED, now);
    out->event = CJ_PLEDGE_EV_FAILED;
    p->pending = (uint16_t)(p->pending & ~EV_BIT(CJ_PLEDGE_EV_FAILED));
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
 * a context for R2 || ID1 (recovery_ctx(), into tmp); then R3 is drawn
 * and the context becomes R2 || R3 on trial (recovery_next(); nothing is
 * written until a response under it verifies: trial_confirm), the
 * durable context and its window staying the fallback (Appendix B.2
 * step 5).  id is R2 || ID1, then R2 || R3; ID Contexts travel in the
 * clear. */
static CJ_ALWAYS_INLINE bool recovery_ctx(cj_pledge_t *p,
                                          const cj_oscore_option_t *ov,
                                          cj_oscore_ctx_t *tmp, uint8_t *id)
{
    size_t id1_len = p->osc.id_context_len;

    if (ov->kid_context_len != CJ_PLEDGE_RECOVERY_NONCE_LEN ||
        id1_len + CJ_PLEDGE_RECOVERY_NONCE_LEN > CJ_OSCORE_MAX_ID_CONTEXT)
        return false;
    memcpy(id, ov->kid_context, CJ_PLEDGE_RECOVERY_NONCE_LEN);
    memcpy(id + CJ_PLEDGE_RECOVERY_NONCE_LEN, p->osc.id_context, id1_len);
    if (derive(p, tmp, id, CJ_PLEDGE_RECOVERY_NONCE_LEN + id1_len) != CJ_OK)
        return false;
    /* The response names its context by R2 alone while the keys come
     * from R2 || ID1: let the temporary context match on R2, the first
     * bytes of its ID Context. */
    tmp->id_context_len = CJ_PLEDGE_RECOVERY_NONCE_LEN;
    return true;
}

/* The 4.01 verified: R3 is drawn and the context becomes R2 || R3 on
 * trial. */
static CJ_ALWAYS_INLINE bool recovery_next(cj_pledge_t *p, uint8_t *id)
{
    /* R3; a failed draw waits for the retransmission of the 4.01 */
    if (cj_crypto_random(id + CJ_PLEDGE_RECOVERY_NONCE_LEN,
                         CJ_PLEDGE_RECOVERY_NONCE_LEN) != CJ_OK)
        return false;
    if (!p->rec_trial)
        p->base_replay = p->osc.replay;
    /* One sequence number counter serves every context: rederive keeps
     * it growing. */
    if (derive(p, &p->osc, id, 2 * CJ_PLEDGE_RECOVERY_NONCE_LEN) != CJ_OK)
        return false;
    p->rec_trial = true;
    p->same_jp = true; /* the JRC behind this JP holds R2 */
    return true;
}
#endif

/* Options p[0..len), then possibly a payload marker and the payload
 * (*pl, *pl_len): how many are numbered num, *o the first of them; -1
 * when malformed or more than CJ_COAP_MAX_OPTIONS (OSCORE would not
 * process such a message either). */
static int opt_count(const uint8_t *p, size_t len, uint16_t num,
                     cj_coap_opt_t *o, const uint8_t **pl, size_t *pl_len)
{
    cj_coap_opt_t t[CJ_COAP_MAX_OPTIONS];
    int i = cj_coap_opts_decode(p, len, t, CJ_COAP_MAX_OPTIONS, pl, pl_len);
    int n = 0;

    if (i < 0)
        return -1;
    while (i-- > 0)
        if (t[i].num == num) {
            *o = t[i];
            n++;
        }
    return n;
}

/* An empty ACK of the outstanding request (RFC 7252 section 5.2.2): a
 * separate response follows; stop retransmitting and give it what the
 * retransmissions had left (never more: the attempt ends when it would
 * have anyway): the timeouts poll() would have waited, doubled the way
 * it doubles them.  Saturating, whatever MAX_RETRANSMIT is. */
static void separate_ack(cj_pledge_t *p, uint64_t now, const cj_addr_t *from,
                         const cj_coap_msg_t *m)
{
    uint32_t t = p->timeout_ms;

    if (m->type != CJ_COAP_ACK || p->state != CJ_PLEDGE_JOINING ||
        m->mid != p->mid || p->acked || !cj_addr_equal(from, &p->att.addr))
        return;
    for (unsigned i = p->retransmits; i <= p->max_retransmit; i++) {
        now = add_sat(now, t);
        t = double_sat(t); /* as poll() doubles it */
    }
    p->acked = true;
    p->timer = now;
}

/* A protected message (anything else is ignored, section 7.3.2): a
 * response to the outstanding Join Request (section 8.1.1), or, from a
 * request code, a parameter update (section 8.2).  Both are verified,
 * their Partial IV made durable (section 7.3.1) and their Configuration
 * checked before anything is applied or sent.
 *
 * A response is matched by token (and message ID when it is an ACK);
 * state JOINING means a request is outstanding.  A verified
 * CON response gets an empty ACK.
 *
 * An update is answered in an ACK (piggybacked; NON requests get a NON)
 * protected with the request's nonce: 2.04 after applying, 4.00 with an
 * Unsupported_Configuration, 4.04 off /j, 4.05 for a method other than
 * POST.  A retransmission of the last CON request answered (same source,
 * message ID, Partial IV and tag) gets the same bytes again without any
 * processing (RFC 7252 section 4.5). */
int cj_pledge_input(cj_pledge_t *p, uint64_t now, const cj_addr_t *from,
                    uint8_t *msg, size_t len, cj_out_t *out)
{
    cj_coap_msg_t msg_parsed, *m = &msg_parsed;
    cj_oscore_replay_t before;
    cj_oscore_option_t ov;
    cj_oscore_req_t req;
    cj_coap_opt_t o;
    /* the plaintext in msg (section 5.3), and the payload inside it */
    uint8_t *pt;
    const uint8_t *payload;
    size_t payload_len;
    /* the Configuration, or (recovery, section 8.3.3) a temporary
     * context for a 4.01 naming R2 and the ID Contexts it is derived
     * for: never both */
    union {
        cj_cojp_config_t c;
#if CJ_PLEDGE_RECOVERY
        struct {
            cj_oscore_ctx_t ctx;
            uint8_t id[CJ_OSCORE_MAX_ID_CONTEXT];
        } rec;
#endif
    } u;
    cj_oscore_ctx_t *ctx = &p->osc; /* to verify a response with */
    /* what identifies a retransmission (MID, Partial IV, tag) and the
     * response, laid out like last_key and resp for one copy */
    struct {
        uint8_t key[sizeof p->last_key];
        uint8_t resp[CJ_PLEDGE_RESP_MAX];
    } nx;
    _Static_assert(sizeof nx == sizeof nx.key + sizeof nx.resp,
                   "key and resp of nx are adjacent");
    uint8_t *key = nx.key, *q = nx.resp;
    uint8_t type, code = CJ_COAP_CHANGED, icode;
    uint16_t mid;
    bool request, expired = false;
    int rc, how = 1, ev, ret = 0;

    if (p == NULL || out == NULL)
        return 0;
    cj_out_reset(out);
    if (from == NULL || msg == NULL || cj_coap_parse(m, msg, len) != CJ_OK)
        return 0;
    if (m->code == CJ_COAP_EMPTY) {
        separate_ack(p, now, from, m);
        return 0;
    }
    /* Requests (class 0) and responses (classes 2 to 5) with exactly one
     * OSCORE option (RFC 8613 section 2) */
    type = m->type;
    mid = m->mid;
    request = m->code < CJ_COAP_CODE(1, 0);
    if ((m->code >> 5) == 1 || (m->code >> 5) > 5 || out->buf == NULL ||
        opt_count(m->opts, m->opts_len, CJ_COAP_OPT_OSCORE, &o, &payload,
                  &payload_len) != 1 ||
        cj_oscore_option_decode(o.val, o.len, &ov) != CJ_OK)
        return 0;
    before = p->osc.replay;
    if (request) {
        /* CON or NON, with a Partial IV and room for the tag */
        if (type > CJ_COAP_NON || ov.piv_len == 0 ||
            m->payload_len < CJ_OSCORE_TAG_LEN)
            return 0;
        memset(key, 0, sizeof nx.key);
        key[0] = (uint8_t)(mid >> 8);
        key[1] = (uint8_t)mid;
        key[2] = (uint8_t)ov.piv_len; /* at most CJ_OSCORE_MAX_PIV_LEN */
        memcpy(key + 3, ov.piv, ov.piv_len);
        memcpy(key + 3 + CJ_OSCORE_MAX_PIV_LEN,
               m->payload + m->payload_len - CJ_OSCORE_TAG_LEN,
               CJ_OSCORE_TAG_LEN);
        if (p->has_last && type == CJ_COAP_CON &&
            memcmp(key, p->last_key, sizeof nx.key) == 0 &&
            cj_addr_equal(from, &p->last_from)) {
            emit(out, p->resp, p->resp_len, from);
            return out->len ? 1 : 0;
        }
        if (p->state != CJ_PLEDGE_JOINED)
            return 0;
    } else {
        if (p->state != CJ_PLEDGE_JOINING ||
            m->token_len != sizeof p->token ||
            memcmp(m->token, p->token, sizeof p->token) != 0 ||
            type == CJ_COAP_RST || (type == CJ_COAP_ACK && mid != p->mid))
            return 0;
        if (ov.has_kid_context &&
            !bytes_eq(ov.kid_context, ov.kid_context_len, p->osc.id_context,
                      p->osc.id_context_len)) {
#if CJ_PLEDGE_RECOVERY
            if (!recovery_ctx(p, &ov, &u.rec.ctx, u.rec.id))
                return 0;
            ctx = &u.rec.ctx;
#else
            return 0; /* recovery not built in: unverifiable (7.3.2) */
#endif
        }
    }
    /* Section 8.2 for a request, 8.4 for a response to the one bound in
     * p->req, decrypted in place (the payload is at the end of msg):
     * from here on every exit goes through done, which wipes it.  req
     * receives the message's binding (only a request's is used). */
    pt = msg + len - m->payload_len;
    rc = cj_oscore_open(ctx, &ov, request ? NULL : &p->req, pt,
                        m->payload_len, &req);
#if CJ_PLEDGE_RECOVERY
    if (ctx != &p->osc)
        cj_crypto_wipe(&u.rec.ctx, sizeof u.rec.ctx);
#endif
    if (rc < 0)
        goto done;
    /* Section 5.3: the inner code, Class E options and payload; a code
     * of the message's kind, no nested OSCORE (section 4.1.3.7). */
    icode = pt[0];
    if ((request ? icode >> 5 != 0 || icode == CJ_COAP_EMPTY
                 : (icode >> 5) - 2u >= 4u) ||
        opt_count(pt + 1, (size_t)rc - 1, CJ_COAP_OPT_OSCORE, &o, &payload,
                  &payload_len) != 0)
        goto done;
#if CJ_PLEDGE_RECOVERY
    if (ctx != &p->osc) {
        if (icode != CJ_COAP_UNAUTHORIZED || !recovery_next(p, u.rec.id))
            goto done;
        ev = CJ_PLEDGE_EV_RECOVERY;
        goto answer;
    }
#endif
    /* A response is durable before it is parsed, and (Appendix B.2 step
     * 5) one verified under R2 || R3 makes the pair durable first; an
     * update is durable once its answer could be protected, below. */
    if (!request && (
#if CJ_PLEDGE_RECOVERY
                        (p->rec_trial && trial_confirm(p) != CJ_OK) ||
#endif
                        replay_commit(p, &req) != CJ_OK))
        goto drop;

    /* how: 0 usable, 1 refused (a 4.00 Diagnostic Response or any other
     * protected error of the JRC; an update off /j or not a POST), 2
     * refused with the parameter to report.  code: of the response to
     * an update; of a response, its own.  An update addresses /j by
     * exactly one inner Uri-Path "j". */
    if (!request)
        code = icode;
    else if (opt_count(pt + 1, (size_t)rc - 1, CJ_COAP_OPT_URI_PATH, &o,
                       &payload, &payload_len) != 1 ||
             o.len != 1 || o.val[0] != 'j')
        code = CJ_COAP_NOT_FOUND;
    else if (icode != CJ_COAP_POST)
        code = CJ_COAP_METHOD_NOT_ALLOWED;
    /* a 2.04 Join Response, or a POST to /j */
    if (code == CJ_COAP_CHANGED &&
        (how = config_read(p, payload, payload_len, !request, &u.c)) != 0)
        code = CJ_COAP_BAD_REQUEST;
    if (request) {
        /* The answer (section 8.2; RFC 8613 section 8.3): ACK to a CON
         * (same MID), NON to a NON (a MID of ours), the request's token
         * (RFC 8974 lengths), outer code 2.04, an empty OSCORE option
         * (the request's nonce), then the plaintext: the code and,
         * after a refused parameter, the Unsupported_Configuration. */
        size_t tkl = m->token_len;
        uint16_t rmid = type == CJ_COAP_CON ? mid : (uint16_t)(p->mid + 1u);
        cj_oscore_req_t own;
        uint8_t opt[CJ_OSCORE_OPT_MAX], *rpt;

        payload_len = how == 2 ? p->unsup_len : 0;
        if (4 + 1 + tkl + 2 + 2 + payload_len + CJ_OSCORE_TAG_LEN >
            sizeof nx.resp)
            goto drop_config;
        *q++ = (uint8_t)(0x40 | (type == CJ_COAP_CON ? CJ_COAP_ACK
                                                     : CJ_COAP_NON) << 4 |
                         (tkl < 13 ? tkl : 13));
        *q++ = CJ_COAP_CHANGED;
        *q++ = (uint8_t)(rmid >> 8);
        *q++ = (uint8_t)rmid;
        if (tkl >= 13)
            *q++ = (uint8_t)(tkl - 13);
        memcpy(q, m->token, tkl);
        q += tkl;
        *q++ = CJ_COAP_OPT_OSCORE << 4; /* delta 9, empty */
        *q++ = 0xff;
        rpt = q;
        *q++ = code;
        if (payload_len) {
            *q++ = 0xff;
            memcpy(q, p->unsup, payload_len);
            q += payload_len;
        }
        /* empty: no Partial IV of its own (rc 0) */
        rc = cj_oscore_seal_begin(&p->osc, &req, false, &own, opt);
        if (rc == 0)
            rc = cj_oscore_seal(&p->osc, &own, &req, rpt, (size_t)(q - rpt));
        if (rc < 0 || replay_commit(p, &req) != CJ_OK)
            goto drop_config;
        rc += (int)(rpt - nx.resp);
    }

    if (how == 0)
        expired = config_apply(p, now, &u.c, !request);
    cj_crypto_wipe(&u.c, sizeof u.c);

    ret = 1;
    if (request) {
        if (type != CJ_COAP_CON)
            p->mid = (uint16_t)(p->mid + 1u);
        memcpy((uint8_t *)p + offsetof(cj_pledge_t, last_key), &nx,
               sizeof nx.key + (size_t)rc);
        p->resp_len = (uint16_t)rc;
        p->has_last = type == CJ_COAP_CON;
        memcpy(&p->last_from, from, sizeof p->last_from);
        emit(out, p->resp, p->resp_len, from);
        if (expired) {
            /* Lease 0 (section 8.4.4): stop using the identifier,
             * rejoin.  A 6LBR key switch of the same update stays
             * queued. */
            out->event = CJ_PLEDGE_EV_LEASE_EXPIRED;
            begin_joining(p, now);
        } else if (how == 0) {
            out->event = CJ_PLEDGE_EV_UPDATED;
        }
        goto done;
    }

    ev = CJ_PLEDGE_EV_JOINED;
    if (how == 0) {
        memcpy(&p->joined, &p->att, sizeof p->joined);
        /* attempts and same_jp are reset when joining starts again */
        p->state = CJ_PLEDGE_JOINED;
        p->has_last = false;
    } else {
        p->report_unsupported = how == 2;
        ev = CJ_PLEDGE_EV_REJECTED;
    }
#if CJ_PLEDGE_RECOVERY
answer:
#endif
    ret = 1;
    ack_response(out, type, mid, from);
    out->event = ev;
    if (ev != CJ_PLEDGE_EV_JOINED)
        attempt_end(p, ev, now);
    goto done;

drop_config:
    cj_crypto_wipe(&u.c, sizeof u.c);
drop:
    /* verified but not acted upon: the window as it was */
    p->osc.replay = before;
done:
    wipe_payload(msg, m);
    return ret;
}

/* ---- input / poll -------------------------------------------------------- */


/* The lowest event queued in pending (not 0: bit 0, EV_NONE, is never
 * set). */
static int deliver_pending(cj_pledge_t *p, cj_out_t *out)
{
    int e = 1;

    while (!(p->pending & EV_BIT(e)))
        e++;
    p->pending &= (uint16_t)~EV_BIT(e);
    out->event = e;
    return 1;
}

int cj_pledge_poll(cj_pledge_t *p, uint64_t now, cj_out_t *out)
{
    if (p == NULL || out == NULL)
        return 0;
    cj_out_reset(out);
    if (p->pending)
        return deliver_pending(p, out);

    /* Guard time over: the old key set goes (sections 8.4.3.1-2). */
    if (p->old_keys.n && now >= p->old_keys_expire)
        set_wipe(&p->old_keys);

    if (p->state == CJ_PLEDGE_BACKOFF || p->state == CJ_PLEDGE_JOINING) {
        /* no candidate left: the next attempt waits for one */
        if (now < p->timer || (p->state == CJ_PLEDGE_BACKOFF && !p->jp_count))
            return 0;
        if (p->state == CJ_PLEDGE_BACKOFF) {
            int rc = attempt_start(p, now, out);
            if (rc >= 0)
                return rc;
        } else if (!p->acked && p->retransmits < p->max_retransmit) {
            p->retransmits++;
            p->timeout_ms = double_sat(p->timeout_ms);
        } else {
            attempt_end(p, CJ_PLEDGE_EV_TIMEOUT, now);
            out->event = CJ_PLEDGE_EV_TIMEOUT;
            return 1;
        }
        /* The request of the attempt, first sent or repeated; the next
         * retransmission is due timeout_ms later. */
        p->timer = add_sat(now, p->timeout_ms);
        emit(out, p->tx, p->tx_len, &p->att.addr);
        return 1;
    }
    if (p->state == CJ_PLEDGE_JOINED && p->has_short_id &&
        now >= p->lease_expiry) {
        p->has_short_id = false;
        begin_joining(p, now);
        out->event = CJ_PLEDGE_EV_LEASE_EXPIRED;
        return 1;
    }
    return 0;
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
    if (p->state == CJ_PLEDGE_BACKOFF && !p->jp_count)
        return t; /* the next attempt waits for a candidate */
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
    for (unsigned i = 0; i < p->keys.n; i++)
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
    if (set_find(&p->new_keys, key_id) == NULL ||
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
    return (cj_pledge_state_t)p->state;
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
        *len = p->joined.network_id_len;
    return p->joined.network_id;
}

const cj_addr_t *cj_pledge_joined_jp(const cj_pledge_t *p)
{
    return &p->joined.addr;
}
