/*
 * proxy.c - the stateless Join Proxy engine (RFC 9031 section 7.1,
 * RFC 8974 sections 3 and 4).  The token state format, the consumed-token
 * window and the join-rate meter are specified in cojp/proxy.h.
 */
#include "cojp/proxy.h"

#include <string.h>

#include "cojp/coap.h"
#include "cojp/crypto.h"
#include "cojp/oscore.h"

#define TS_LEN 6
#define TS_MASK ((UINT64_C(1) << (8 * TS_LEN)) - 1)
#define FLAG_NON 0x80u
#define FLAG_TKL 0x7fu
/* Plaintext fields other than the pledge token and address. */
#define PT_FIXED (1 + 2 + TS_LEN)

_Static_assert(CJ_PROXY_STATE_OVERHEAD ==
                   CJ_PROXY_CTR_LEN + PT_FIXED + CJ_PROXY_TAG_LEN,
               "state overhead out of step with the layout");
/* The agreed case (RFC 7252 token of up to 8 bytes, largest address)
 * must always fit the extended token (RFC 8974 section 2.1). */
_Static_assert(CJ_PROXY_STATE_OVERHEAD + 8 + CJ_ADDR_MAX <= CJ_COAP_MAX_TOKEN,
               "token state does not fit CJ_COAP_MAX_TOKEN");
_Static_assert(CJ_COAP_MAX_TOKEN <= FLAG_TKL, "pledge token length field");
_Static_assert(CJ_PROXY_REPLAY_BITS >= 8 && CJ_PROXY_REPLAY_BITS % 8 == 0,
               "CJ_PROXY_REPLAY_BITS must be a positive multiple of 8");
/* The burst allowance must hold one maximum-size forwarded request. */
_Static_assert(CJ_PROXY_MAX_MSG >= 64, "CJ_PROXY_MAX_MSG too small");

static void note(const cj_proxy_t *jp, const char *what)
{
    if (jp->platform != NULL && jp->platform->log != NULL)
        jp->platform->log(jp->platform->ctx, CJ_LOG_DEBUG, what);
}

static int drop(cj_proxy_t *jp, unsigned long *counter, const char *why)
{
    (*counter)++;
    note(jp, why);
    return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static bool opt_is(const cj_coap_opt_t *o, const char *s)
{
    size_t n = strlen(s);
    return o->len == n && memcmp(o->val, s, n) == 0;
}

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
    while (n--) {
        p[n] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void make_nonce(const cj_proxy_t *jp, const uint8_t ctr[CJ_PROXY_CTR_LEN],
                       uint8_t nonce[CJ_CCM_NONCE_LEN])
{
    memcpy(nonce, jp->nonce_prefix, CJ_PROXY_NONCE_PREFIX_LEN);
    memcpy(nonce + CJ_PROXY_NONCE_PREFIX_LEN, ctr, CJ_PROXY_CTR_LEN);
}

/* ---- join-rate meter (RFC 9031 sections 7.2, 8.4.2, 9) ----------------
 * Budget in milli-bytes so that rate [B/s] * elapsed [ms] needs no
 * division.  rate * window < 2^64 for any two 32-bit values. */

static uint64_t rate_capacity(const cj_proxy_t *jp)
{
    uint64_t cap, floor = (uint64_t)CJ_PROXY_MAX_MSG * 1000u;

    if (jp->cfg.join_rate == 0)
        return 0;
    cap = (uint64_t)jp->cfg.join_rate * jp->cfg.rate_window_ms;
    return cap > floor ? cap : floor;
}

/* The bucket content at time now, without storing it: a dropped request
 * leaves the engine untouched. */
static uint64_t rate_bucket_at(const cj_proxy_t *jp, uint64_t now)
{
    uint64_t cap = rate_capacity(jp), b = jp->rate_budget_milli, room, el;

    if (b >= cap)
        return cap;
    if (now <= jp->rate_last_ms || jp->cfg.join_rate == 0)
        return b;
    el = now - jp->rate_last_ms;
    room = cap - b;
    if (el > room / jp->cfg.join_rate)
        return cap;
    return b + el * jp->cfg.join_rate;
}

/* ---- consumed-token window ------------------------------------------- */

static size_t win_index(uint64_t ctr)
{
    return (size_t)(ctr % CJ_PROXY_REPLAY_BITS);
}

static bool win_get(const cj_proxy_t *jp, uint64_t ctr)
{
    size_t i = win_index(ctr);
    return (jp->replay_bits[i / 8] >> (i % 8)) & 1u;
}

static void win_set(cj_proxy_t *jp, uint64_t ctr, bool v)
{
    size_t i = win_index(ctr);
    uint8_t m = (uint8_t)(1u << (i % 8));
    jp->replay_bits[i / 8] = (uint8_t)(v ? (jp->replay_bits[i / 8] | m)
                                         : (jp->replay_bits[i / 8] & ~m));
}

/* ---- configuration ---------------------------------------------------- */

int cj_proxy_init(cj_proxy_t *jp, const cj_proxy_cfg_t *cfg,
                  const cj_platform_t *platform)
{
    uint8_t mid[2];

    memset(jp, 0, sizeof *jp);
    jp->cfg = *cfg;
    jp->platform = platform;
    if (jp->cfg.rate_window_ms == 0)
        jp->cfg.rate_window_ms = CJ_COJP_ACK_TIMEOUT_MS;
    if (jp->cfg.token_lifetime_ms == 0)
        jp->cfg.token_lifetime_ms = 4u * CJ_COJP_ACK_TIMEOUT_MS;
    if (jp->cfg.jrc.len > CJ_ADDR_MAX)
        jp->cfg.jrc.len = CJ_ADDR_MAX;
    if ((all_zero(jp->cfg.token_key, sizeof jp->cfg.token_key) &&
         cj_crypto_random(jp->cfg.token_key, sizeof jp->cfg.token_key) != CJ_OK) ||
        cj_crypto_random(jp->nonce_prefix, sizeof jp->nonce_prefix) != CJ_OK ||
        cj_crypto_random(mid, sizeof mid) != CJ_OK) {
        cj_crypto_wipe(jp, sizeof *jp);
        return CJ_ERR_CRYPTO;
    }
    jp->next_mid = (uint16_t)(mid[0] << 8 | mid[1]);
    jp->rate_budget_milli = rate_capacity(jp);
    return CJ_OK;
}

int cj_proxy_set_blacklist(cj_proxy_t *jp, const uint8_t *const *ids,
                           const size_t *lens, size_t count)
{
    if (count > CJ_PROXY_MAX_BLACKLIST)
        return CJ_ERR_NOSPACE;
    for (size_t i = 0; i < count; i++)
        if (lens[i] > CJ_PROXY_MAX_ID)
            return CJ_ERR_NOSPACE;
    memset(jp->blacklist, 0, sizeof jp->blacklist);
    memset(jp->blacklist_len, 0, sizeof jp->blacklist_len);
    for (size_t i = 0; i < count; i++) {
        if (lens[i])
            memcpy(jp->blacklist[i], ids[i], lens[i]);
        jp->blacklist_len[i] = (uint8_t)lens[i];
    }
    jp->blacklist_count = (uint8_t)count;
    return CJ_OK;
}

void cj_proxy_set_join_rate(cj_proxy_t *jp, uint32_t bytes_per_s)
{
    uint64_t cap;

    jp->cfg.join_rate = bytes_per_s;
    cap = rate_capacity(jp);
    if (jp->rate_budget_milli > cap)
        jp->rate_budget_milli = cap;
}

void cj_proxy_set_jrc(cj_proxy_t *jp, const cj_addr_t *jrc)
{
    jp->cfg.jrc = *jrc;
    if (jp->cfg.jrc.len > CJ_ADDR_MAX)
        jp->cfg.jrc.len = CJ_ADDR_MAX;
}

static bool blacklisted(const cj_proxy_t *jp, const uint8_t *id, size_t len)
{
    for (size_t i = 0; i < jp->blacklist_count; i++)
        if (jp->blacklist_len[i] == len &&
            (len == 0 || memcmp(jp->blacklist[i], id, len) == 0))
            return true;
    return false;
}

bool cj_proxy_blacklisted(const cj_proxy_t *jp, const uint8_t *ll_src,
                          size_t len)
{
    if (jp == NULL || ll_src == NULL || len == 0)
        return false;
    return blacklisted(jp, ll_src, len);
}

int cj_proxy_eui64_from_ipv6(const uint8_t ipv6[16], uint8_t eui64[8])
{
    /* fe80::/64: fe80 followed by 48 zero bits (RFC 4291 section 2.5.6). */
    static const uint8_t ll[8] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0};
    /* RFC 4944 section 6: 0000:00ff:fe00:XXXX from a short address. */
    static const uint8_t short_form[6] = {0, 0, 0, 0xff, 0xfe, 0};

    if (ipv6 == NULL || eui64 == NULL || memcmp(ipv6, ll, sizeof ll) != 0 ||
        memcmp(ipv6 + 8, short_form, sizeof short_form) == 0)
        return CJ_ERR_INVALID;
    memcpy(eui64, ipv6 + 8, 8);
    eui64[0] ^= 0x02; /* RFC 4291 Appendix A: invert the U/L bit back */
    return CJ_OK;
}

void cj_proxy_ipv6_from_eui64(const uint8_t prefix[8], const uint8_t eui64[8],
                              uint8_t ipv6[16])
{
    memcpy(ipv6, prefix, 8);
    memcpy(ipv6 + 8, eui64, 8);
    ipv6[8] ^= 0x02; /* RFC 4291 Appendix A: the U/L bit inverted */
}

/* ---- pledge -> JRC (section 7.1; RFC 8974 section 4) ------------------ */

/* The checks that make a datagram a join request worth relaying.  The
 * OSCORE option is only decoded, never processed: the JP holds no
 * OSCORE context (section 7.1). */
static bool join_request_ok(const cj_coap_msg_t *m, cj_oscore_option_t *osc)
{
    cj_coap_opt_iter_t it;
    cj_coap_opt_t o, oscore = {0, 0, NULL};
    unsigned schemes = 0, hosts = 0, oscores = 0;

    /* A request: method code class 0 (not Empty), CON or NON. */
    if ((m->type != CJ_COAP_CON && m->type != CJ_COAP_NON) ||
        m->code == CJ_COAP_EMPTY || (m->code >> 5) != 0)
        return false;
    cj_coap_opt_iter_init(&it, m);
    while (cj_coap_opt_next(&it, &o)) {
        switch (o.num) {
        case CJ_COAP_OPT_PROXY_SCHEME:
            if (!opt_is(&o, CJ_COJP_PROXY_SCHEME))
                return false;
            schemes++;
            break;
        case CJ_COAP_OPT_URI_HOST:
            if (!opt_is(&o, CJ_COJP_URI_HOST))
                return false;
            hosts++;
            break;
        case CJ_COAP_OPT_OSCORE:
            oscore = o;
            oscores++;
            break;
        case CJ_COAP_OPT_OBSERVE:   /* RFC 8974 section 4.1 */
        case CJ_COAP_OPT_PROXY_URI: /* not the form of section 8.1.1 */
            return false;
        default:
            break;
        }
    }
    if (schemes != 1 || hosts != 1 || oscores != 1)
        return false;
    /* The pledge identifier travels as 'kid context' (section 8.1.1). */
    return cj_oscore_option_decode(oscore.val, oscore.len, osc) == CJ_OK &&
           osc->has_kid_context;
}

/* The JP's own answer to a CON: an Empty ACK or RST echoing its message
 * ID (RFC 7252 sections 3 and 4.2), to `to` (the JRC, or a pledge whose
 * CON is rejected).  ack has room (checked by the caller). */
static CJ_NOINLINE void answer_con(cj_proxy_t *jp, cj_out_t *ack,
                                   uint8_t type, uint16_t mid,
                                   const cj_addr_t *to)
{
    ack->buf[0] = (uint8_t)(0x40 | type << 4); /* version 1, TKL 0 */
    ack->buf[1] = CJ_COAP_EMPTY;
    ack->buf[2] = (uint8_t)(mid >> 8);
    ack->buf[3] = (uint8_t)mid;
    ack->len = CJ_PROXY_ACK_LEN;
    ack->to = *to;
    if (type == CJ_COAP_ACK)
        jp->stats.acks++;
    else
        jp->stats.resets++;
}

/* Drop a datagram from a pledge that is not forwarded for its form
 * (counted as malformed).  A version 1 CON among them is rejected with a
 * RST echoing its message ID, to the pledge (RFC 7252 section 4.2: a
 * message format error, an Empty CON, a reserved code class, anything
 * the JP has no use for), which is also the answer RFC 8974 section
 * 2.2.2 has a client learn from that its token is too long: returns 2
 * with the RST in out; otherwise 0. */
static int refuse(cj_proxy_t *jp, const uint8_t *msg, size_t len,
                  const cj_addr_t *from, cj_out_t *out, const char *why)
{
    drop(jp, &jp->stats.dropped_malformed, why);
    if (len < 4 || (msg[0] & 0xf0) != 0x40 || out->cap < CJ_PROXY_ACK_LEN)
        return 0; /* 0x40: version 1, type CON */
    answer_con(jp, out, CJ_COAP_RST, (uint16_t)(msg[2] << 8 | msg[3]), from);
    return 2;
}

int cj_proxy_input_pledge(cj_proxy_t *jp, uint64_t now,
                          const cj_addr_t *from, const uint8_t *msg,
                          size_t len, cj_out_t *out)
{
    uint8_t tok[CJ_COAP_MAX_TOKEN], nonce[CJ_CCM_NONCE_LEN], *pt;
    cj_coap_msg_t m;
    cj_coap_opt_iter_t it;
    cj_coap_opt_t o;
    cj_oscore_option_t osc;
    cj_coap_builder_t b;
    size_t state_len, tok_off;
    uint64_t bucket = 0, ctr = jp->token_counter;
    bool limited = jp->cfg.join_rate != CJ_PROXY_RATE_UNLIMITED;
    int n;

    cj_out_reset(out);
    if (msg == NULL || out->buf == NULL || len > CJ_PROXY_MAX_MSG ||
        from->len > CJ_ADDR_MAX)
        return drop(jp, &jp->stats.dropped_malformed, "jp: not a join request");
    if (cj_coap_parse(&m, msg, len) != CJ_OK || !join_request_ok(&m, &osc))
        return refuse(jp, msg, len, from, out, "jp: not a join request");
    /* RFC 8974 section 4.4: bound what is serialised into the token. */
    state_len = CJ_PROXY_STATE_OVERHEAD + m.token_len + from->len;
    if (state_len > CJ_COAP_MAX_TOKEN)
        return refuse(jp, msg, len, from, out, "jp: token too long");
    if (blacklisted(jp, osc.kid_context, osc.kid_context_len))
        return drop(jp, &jp->stats.dropped_blacklist, "jp: blacklisted");
    /* Join rate 0: silently drop all join traffic (section 8.4.2); an
     * exhausted counter space would mean nonce reuse. */
    if (jp->cfg.join_rate == 0 || ctr > CJ_PROXY_MAX_COUNTER)
        return drop(jp, &jp->stats.dropped_rate, "jp: join rate");

    /* Build with a placeholder token first: the size decides whether the
     * join rate allows the request, and no nonce is spent on a request
     * that is then dropped. */
    memset(tok, 0, state_len);
    cj_coap_build_init(&b, out->buf, out->cap, CJ_COAP_NON, m.code,
                       jp->next_mid, tok, state_len);
    cj_coap_opt_iter_init(&it, &m);
    while (cj_coap_opt_next(&it, &o))
        if (o.num != CJ_COAP_OPT_PROXY_SCHEME)
            cj_coap_build_opt(&b, o.num, o.val, o.len);
    cj_coap_build_payload(&b, m.payload, m.payload_len);
    n = cj_coap_build_finish(&b);
    if (n < 0 || (size_t)n > CJ_PROXY_MAX_MSG)
        return drop(jp, &jp->stats.dropped_malformed, "jp: too big");
    if (limited) {
        bucket = rate_bucket_at(jp, now);
        if (bucket < (uint64_t)n * 1000u)
            return drop(jp, &jp->stats.dropped_rate, "jp: join rate");
    }

    /* Seal the state object (layout in cojp/proxy.h). */
    put_be(tok, ctr, CJ_PROXY_CTR_LEN);
    pt = tok + CJ_PROXY_CTR_LEN;
    pt[0] = (uint8_t)((m.type == CJ_COAP_NON ? FLAG_NON : 0) | m.token_len);
    if (m.token_len)
        memcpy(pt + 1, m.token, m.token_len);
    put_be(pt + 1 + m.token_len, m.mid, 2);
    put_be(pt + 3 + m.token_len, now & TS_MASK, TS_LEN);
    if (from->len)
        memcpy(pt + PT_FIXED + m.token_len, from->b, from->len);
    make_nonce(jp, tok, nonce);
    /* The counter is spent as soon as a seal was attempted. */
    jp->token_counter = ctr + 1;
    if (cj_crypto_ccm_seal(jp->cfg.token_key, nonce, NULL, 0, pt,
                           PT_FIXED + m.token_len + from->len,
                           CJ_PROXY_TAG_LEN) < 0) {
        cj_crypto_wipe(tok, sizeof tok);
        return drop(jp, &jp->stats.dropped_malformed, "jp: seal failed");
    }
    /* The token follows the 4-byte header and its extended length. */
    tok_off = 4 + (state_len >= 269 ? 2 : state_len >= 13 ? 1 : 0);
    memcpy(out->buf + tok_off, tok, state_len);

    /* Counter ctr is now the newest in the window; its bit belonged to
     * ctr - CJ_PROXY_REPLAY_BITS, which has just left the window. */
    win_set(jp, ctr, false);
    jp->next_mid++;
    if (limited) {
        jp->rate_budget_milli = bucket - (uint64_t)n * 1000u;
        if (now > jp->rate_last_ms)
            jp->rate_last_ms = now;
    }
    out->len = (size_t)n;
    out->to = jp->cfg.jrc;
    jp->stats.forwarded++;
    return 1;
}

/* ---- JRC -> pledge (RFC 8974 sections 3.1, 3.3, 5.2) ------------------ */

int cj_proxy_input_jrc(cj_proxy_t *jp, uint64_t now, const cj_addr_t *from,
                       const uint8_t *msg, size_t len, cj_out_t *out,
                       cj_out_t *ack)
{
    uint8_t tok[CJ_COAP_MAX_TOKEN], nonce[CJ_CCM_NONCE_LEN], *pt, flags;
    cj_coap_msg_t m;
    cj_coap_builder_t b;
    const uint8_t *rest;
    size_t ptlen, tkl, alen, rest_len;
    uint64_t ctr, ts;
    uint16_t pmid;
    uint8_t reply = CJ_COAP_ACK; /* to a CON whose token opened */
    bool con;
    int rc, n, ret;

    cj_out_reset(out);
    if (ack != NULL)
        cj_out_reset(ack);
    if (!cj_addr_equal(from, &jp->cfg.jrc))
        return drop(jp, &jp->stats.dropped_source, "jp: not from the JRC");
    /* Codes 2.xx-5.xx are responses (RFC 7252 section 12.1).  NON (the
     * answer of cojp's JRC) or CON, a separate response (RFC 8974 section
     * 3.3), which needs room for its ACK.  No ACK can answer the JP's NON
     * request, and ACK and RST are never answered (RFC 7252 section 4.2). */
    if (msg == NULL || cj_coap_parse(&m, msg, len) != CJ_OK ||
        (m.code >> 5) < 2 || (m.code >> 5) > 5 ||
        (m.type != CJ_COAP_NON &&
         (m.type != CJ_COAP_CON || ack == NULL || ack->buf == NULL ||
          ack->cap < CJ_PROXY_ACK_LEN)))
        return drop(jp, &jp->stats.dropped_malformed, "jp: not a response");
    con = m.type == CJ_COAP_CON;
    /* A CON whose token does not open gets no RST (RFC 7252 section 4.2
     * would allow one): it is unauthenticated, and a RST would echo a
     * message ID of the sender's choice to the JRC, cancelling whatever
     * CON of the JRC's to this node carries that ID (cojp/proxy.h). */
    if (m.token_len < CJ_PROXY_STATE_OVERHEAD)
        return drop(jp, &jp->stats.dropped_token, "jp: not our token");

    /* Integrity first (RFC 8974 section 3.1): nothing in the token is
     * looked at before the tag verified, except the counter, which is
     * bound by being the nonce. */
    memcpy(tok, m.token, m.token_len);
    make_nonce(jp, tok, nonce);
    rc = cj_crypto_ccm_open(jp->cfg.token_key, nonce, NULL, 0,
                            tok + CJ_PROXY_CTR_LEN,
                            m.token_len - CJ_PROXY_CTR_LEN, CJ_PROXY_TAG_LEN);
    if (rc < 0)
        return drop(jp, &jp->stats.dropped_token, "jp: token does not open");
    ctr = get_be(tok, CJ_PROXY_CTR_LEN);
    pt = tok + CJ_PROXY_CTR_LEN;
    ptlen = (size_t)rc;
    flags = pt[0];
    tkl = flags & FLAG_TKL;
    /* Only this engine seals under the key, so a mismatch is a bug, not
     * an attack; stay defensive all the same. */
    if (PT_FIXED + tkl > ptlen || ptlen - PT_FIXED - tkl > CJ_ADDR_MAX) {
        cj_crypto_wipe(tok, sizeof tok);
        return drop(jp, &jp->stats.dropped_token, "jp: bad state");
    }
    alen = ptlen - PT_FIXED - tkl;
    pmid = (uint16_t)get_be(pt + 1 + tkl, 2);
    ts = get_be(pt + 3 + tkl, TS_LEN);

    /* From here on the token is authentic: a CON is the JRC's (or a copy
     * of it), so answering its message ID is safe.
     * Freshness (section 3.1): a timestamp ahead of now wraps to a huge
     * age and is stale too.  A stale separate response is rejected with
     * a RST (RFC 8974 section 3.3, RFC 7252 section 4.2), which also ends
     * the JRC's retransmissions. */
    if (((now - ts) & TS_MASK) > jp->cfg.token_lifetime_ms) {
        reply = CJ_COAP_RST;
        ret = drop(jp, &jp->stats.dropped_stale, "jp: stale token");
    } else if (ctr >= jp->token_counter ||
               jp->token_counter - ctr > CJ_PROXY_REPLAY_BITS ||
               win_get(jp, ctr)) {
        /* Replay (section 5.2): only the last CJ_PROXY_REPLAY_BITS
         * counters issued have a bit of their own.  A CON whose counter
         * is spent is the JRC's retransmission of a response already
         * relayed, its ACK lost: acknowledged again, relayed only once
         * (RFC 7252 section 4.5).  A counter out of the window may never
         * have been relayed, but the JP cannot tell, and relaying stays
         * at most once. */
        ret = drop(jp, &jp->stats.dropped_replay, "jp: token reused");
    } else {
        /* Agreement 4: CON request -> piggybacked ACK with the pledge's
         * MID and token; NON -> NON with a fresh MID.  Options and
         * payload are copied as they are: their encoding does not depend
         * on the token. */
        if (flags & FLAG_NON)
            cj_coap_build_init(&b, out->buf, out->cap, CJ_COAP_NON, m.code,
                               jp->next_mid, pt + 1, tkl);
        else
            cj_coap_build_init(&b, out->buf, out->cap, CJ_COAP_ACK, m.code,
                               pmid, pt + 1, tkl);
        n = cj_coap_build_finish(&b);
        rest = m.token + m.token_len;
        rest_len = len - (size_t)(rest - msg);
        /* Not even an ACK then: the JRC's retransmission may fit. */
        if (n < 0 || out->cap - (size_t)n < rest_len) {
            cj_crypto_wipe(tok, sizeof tok);
            return drop(jp, &jp->stats.dropped_malformed, "jp: no room");
        }
        if (rest_len)
            memcpy(out->buf + n, rest, rest_len);

        win_set(jp, ctr, true);
        if (flags & FLAG_NON)
            jp->next_mid++;
        out->len = (size_t)n + rest_len;
        out->to.len = (uint8_t)alen;
        memset(out->to.b, 0, sizeof out->to.b);
        memcpy(out->to.b, pt + PT_FIXED + tkl, alen);
        jp->stats.relayed++;
        ret = 1;
    }
    cj_crypto_wipe(tok, sizeof tok);
    if (con)
        answer_con(jp, ack, reply, m.mid, from);
    return ret;
}

bool cj_proxy_for_node(const uint8_t *msg, size_t len)
{
    cj_coap_msg_t m;
    unsigned cls;

    if (cj_coap_parse(&m, msg, len) != CJ_OK)
        return false;
    if (m.type == CJ_COAP_ACK || m.type == CJ_COAP_RST)
        return true;
    cls = m.code >> 5;
    /* Requests; and responses too short to carry a JP token, which can
     * only answer the node's own request. */
    return (cls == 0 && m.code != CJ_COAP_EMPTY) ||
           (cls >= 2 && cls <= 5 && m.token_len < CJ_PROXY_STATE_OVERHEAD);
}
