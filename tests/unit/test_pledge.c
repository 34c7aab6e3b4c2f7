/*
 * Pledge engine (RFC 9031 sections 7.2, 7.3, 8; RFC 8613 Appendix B).
 * The JRC side is built by hand: an OSCORE context with sender id "JRC",
 * recipient id empty and ID Context = pledge id, whose responses and
 * parameter updates are made with cj_oscore_protect_response/_request.
 * The platform is the in-memory port; a "reboot" is a new cj_pledge_t on
 * the same cj_mem_platform_t.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cojp/coap.h"
#include "cojp/cojp.h"
#include "cojp/crypto.h"
#include "cojp/oscore.h"
#include "cojp/pledge.h"
#include "../../src/port/platform_mem.h"
#include "../test.h"

static const uint8_t pid[8] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};
static const uint8_t psk[16] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
                                0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf};
static const uint8_t net_cafe[2] = {0xca, 0xfe};
static const uint8_t upd_token[8] = {1, 2, 3, 4, 5, 6, 7, 8};

/* RFC 9031 Appendix A: the Configuration of the example. */
#define APPX_A_CONFIG "a202820150e6bf4287c2d7618d6a9687445ffd33e6038142af93"
#define APPX_A_KEY "e6bf4287c2d7618d6a9687445ffd33e6"

#define BUF 512

/* The derived context of pid and psk (RFC 8613 section 3.2: Sender Key,
 * Recipient Key, Common IV; HKDF-SHA256 computed independently), as a
 * provisioning tool hands it to a pledge (RFC 9031 Appendix B). */
#define PID_OKM                                                            \
    "b24662a22f175b41be41253ada5ac0dc"                                     \
    "f2306fb6cbbbf1c5ea2e416b6aacface"                                     \
    "fbb43f04b4f76b04b95da68853"

typedef struct world {
    cj_mem_platform_t mem;
    cj_pledge_cfg_t cfg;
    cj_pledge_t p;
    cj_oscore_ctx_t jrc;
    uint8_t buf[BUF];
    cj_out_t out;
    uint64_t now;
} world_t;

static cj_addr_t addr(uint8_t n)
{
    cj_addr_t a;
    memset(&a, 0, sizeof a);
    a.len = 2;
    a.b[0] = 0xfe;
    a.b[1] = n;
    return a;
}

/* The OSCORE option of msg, decoded into *ov.  A failed parse, lookup or
 * decode is a test failure and returns false with *ov all-absent, so
 * callers never read an option view that was not filled. */
static bool oscore_opt_of(const uint8_t *msg, size_t len,
                          cj_oscore_option_t *ov)
{
    cj_coap_msg_t m;
    cj_coap_opt_t o;
    int found;
    memset(ov, 0, sizeof *ov);
    CHECK_EQ(cj_coap_parse(&m, msg, len), CJ_OK);
    CHECK_EQ(found = cj_coap_opt_find(&m, CJ_COAP_OPT_OSCORE, &o), 1);
    if (found != 1)
        return false;
    if (cj_oscore_option_decode(o.val, o.len, ov) != CJ_OK) {
        CHECK(!"OSCORE option decodes");
        memset(ov, 0, sizeof *ov);
        return false;
    }
    return true;
}

/* A context of the test's JRC side.  A build without key derivation
 * (CJ_OSCORE_DERIVE 0) derives here with the crypto port's HKDF and an
 * info structure written out by hand (RFC 8613 section 3.2.1), then
 * loads the result: an independent derivation, no salt, IDs of up to 23
 * bytes. */
static int test_derive(cj_oscore_ctx_t *c, const cj_oscore_params_t *pr)
{
#if CJ_OSCORE_DERIVE
    return cj_oscore_ctx_derive(c, pr);
#else
    uint8_t okm[CJ_OSCORE_OKM_LEN], info[64];
    for (int k = 0; k < 3; k++) {
        const uint8_t *id = k == 0 ? pr->sender_id : pr->recipient_id;
        size_t idl = k == 0 ? pr->sender_id_len
                     : k == 1 ? pr->recipient_id_len : 0;
        size_t n = 0, L = k < 2 ? CJ_OSCORE_KEY_LEN : CJ_OSCORE_NONCE_LEN;
        info[n++] = 0x85;
        info[n++] = (uint8_t)(0x40 + idl);
        if (idl)
            memcpy(info + n, id, idl);
        n += idl;
        info[n++] = (uint8_t)(0x40 + pr->id_context_len);
        memcpy(info + n, pr->id_context, pr->id_context_len);
        n += pr->id_context_len;
        info[n++] = 0x0a; /* AES-CCM-16-64-128 */
        if (k < 2) {
            memcpy(info + n, "\x63Key", 4);
            n += 4;
        } else {
            memcpy(info + n, "\x62IV", 3);
            n += 3;
        }
        info[n++] = (uint8_t)L;
        if (cj_crypto_hkdf_sha256(NULL, 0, pr->master_secret,
                                  pr->master_secret_len, info, n,
                                  okm + 16 * k, L) != CJ_OK)
            return CJ_ERR_INVALID;
    }
    return cj_oscore_ctx_load(c, pr, okm);
#endif
}

/* The JRC's context for ID Context idc (section 7.3, roles reversed). */
static void jrc_ctx(cj_oscore_ctx_t *c, const uint8_t *idc, size_t idc_len)
{
    static const uint8_t jrc_id[3] = {'J', 'R', 'C'};
    cj_oscore_params_t pr;
    memset(&pr, 0, sizeof pr);
    pr.master_secret = psk;
    pr.master_secret_len = sizeof psk;
    pr.sender_id = jrc_id;
    pr.sender_id_len = 3;
    pr.id_context = idc;
    pr.id_context_len = idc_len;
    pr.has_id_context = true;
    CHECK_EQ(test_derive(c, &pr), CJ_OK);
}

static void world_cfg(world_t *w)
{
    memset(w, 0, sizeof *w);
    cj_mem_platform_init(&w->mem);
    w->cfg.pledge_id = pid;
    w->cfg.pledge_id_len = sizeof pid;
    memcpy(w->cfg.psk, psk, sizeof psk);
#if !CJ_OSCORE_DERIVE
    {
        /* this build cannot derive: the context is given (Appendix B) */
        static uint8_t okm[CJ_OSCORE_OKM_LEN];
        CHECK_EQ(cj_hex(PID_OKM, okm, sizeof okm), sizeof okm);
        w->cfg.okm = okm;
    }
#endif
    w->cfg.counter_base = 10;
    w->out.buf = w->buf;
    w->out.cap = sizeof w->buf;
    w->now = 1000;
}

static void world_boot(world_t *w)
{
    CHECK_EQ(cj_pledge_init(&w->p, &w->cfg, &w->mem.port), CJ_OK);
}

/* The JRC's context and njps JP candidates (network ids ca fe, ca ff ...). */
static void world_start(world_t *w, uint8_t njps)
{
    jrc_ctx(&w->jrc, pid, sizeof pid);
    for (uint8_t i = 0; i < njps; i++) {
        uint8_t net[2] = {0xca, (uint8_t)(0xfe + i)};
        cj_addr_t a = addr(i);
        CHECK_EQ(cj_pledge_add_jp(&w->p, &a, net, 2), CJ_OK);
    }
}

static void world_init(world_t *w, uint8_t njps)
{
    world_cfg(w);
    world_boot(w);
    world_start(w, njps);
}

/* The same with the pledge given its derived context (RFC 9031 Appendix
 * B) instead of the PSK, which it then never sees. */
static void world_init_okm(world_t *w, uint8_t njps, uint8_t *okm)
{
    world_cfg(w);
    CHECK_EQ(cj_hex(PID_OKM, okm, CJ_OSCORE_OKM_LEN), CJ_OSCORE_OKM_LEN);
    memset(w->cfg.psk, 0, sizeof w->cfg.psk);
    w->cfg.okm = okm;
    world_boot(w);
    world_start(w, njps);
}

/* Poll once; returns the datagram length (copied to req). */
static size_t poll_send(world_t *w, uint8_t *req)
{
    int r = cj_pledge_poll(&w->p, w->now, &w->out);
    CHECK_EQ(r, 1);
    CHECK(w->out.len > 0);
    if (req && w->out.len)
        memcpy(req, w->buf, w->out.len);
    return w->out.len;
}

/* Let the attempt under way run out: its retransmissions, then the
 * TIMEOUT that ends it. */
static void attempt_times_out(world_t *w)
{
    for (unsigned k = 0; k < CJ_COJP_MAX_RETRANSMIT; k++) {
        w->now = cj_pledge_next_timer(&w->p);
        poll_send(w, NULL);
    }
    w->now = cj_pledge_next_timer(&w->p);
    CHECK_EQ(cj_pledge_poll(&w->p, w->now, &w->out), 1);
    CHECK_EQ(w->out.event, CJ_PLEDGE_EV_TIMEOUT);
}

/* JRC: verify a Join Request; plain gets the unprotected message.  Works
 * on a copy of the context, so a request may be opened more than once
 * (inspected by the test, then answered). */
static int jrc_open(const cj_oscore_ctx_t *jrc, const uint8_t *req,
                    size_t len, cj_oscore_req_t *bind, uint8_t *plain,
                    size_t cap)
{
    static cj_oscore_ctx_t tmp;
    uint8_t copy[BUF];
    tmp = *jrc;
    memcpy(copy, req, len);
    return cj_oscore_unprotect_request(&tmp, copy, len, plain, cap, bind);
}

/* A fresh one-JP world whose pledge sent its first Join Request: req
 * (BUF bytes) and m the request, bind and plain (BUF bytes) what the JRC
 * opened of it.  Returns the request's length. */
static size_t first_request(world_t *w, uint8_t *req, cj_coap_msg_t *m,
                            cj_oscore_req_t *bind, uint8_t *plain)
{
    size_t n;

    world_init(w, 1);
    CHECK_EQ(cj_pledge_start(&w->p, w->now), CJ_OK);
    n = poll_send(w, req);
    CHECK_EQ(cj_coap_parse(m, req, n), CJ_OK);
    CHECK(jrc_open(&w->jrc, req, n, bind, plain, BUF) > 0);
    return n;
}

/* JRC: answer the request req (piggybacked ACK) with code and payload,
 * protected with the JRC's own Partial IV.  Returns the length. */
static size_t jrc_answer(cj_oscore_ctx_t *jrc, const uint8_t *req,
                         size_t len, uint8_t code, const uint8_t *pl,
                         size_t pllen, uint8_t *out)
{
    cj_oscore_req_t bind;
    cj_coap_msg_t m;
    cj_coap_builder_t b;
    uint8_t plain[BUF], msg[BUF];
    int n;

    CHECK_EQ(cj_coap_parse(&m, req, len), CJ_OK);
    n = jrc_open(jrc, req, len, &bind, plain, sizeof plain);
    CHECK(n > 0);
    cj_coap_build_init(&b, msg, sizeof msg, CJ_COAP_ACK, code, m.mid, m.token,
                       m.token_len);
    cj_coap_build_payload(&b, pl, pllen);
    n = cj_coap_build_finish(&b);
    CHECK(n > 0);
    n = cj_oscore_protect_response(jrc, &bind, true, msg, (size_t)n, out, BUF);
    CHECK(n > 0);
    return n > 0 ? (size_t)n : 0;
}

/* A parameter update (section 8.2.1) from the JRC. */
static size_t jrc_update(cj_oscore_ctx_t *jrc, uint16_t mid,
                         const uint8_t *pl, size_t pllen, uint8_t *out)
{
    cj_coap_builder_t b;
    cj_oscore_req_t bind;
    uint8_t msg[BUF];
    int n;

    cj_coap_build_init(&b, msg, sizeof msg, CJ_COAP_CON, CJ_COAP_POST, mid,
                       upd_token, sizeof upd_token);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "6tisch.arpa");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "j");
    cj_coap_build_payload(&b, pl, pllen);
    n = cj_coap_build_finish(&b);
    CHECK(n > 0);
    n = cj_oscore_protect_request(jrc, msg, (size_t)n, out, BUF, &bind);
    CHECK(n > 0);
    return n > 0 ? (size_t)n : 0;
}

/* JRC: open the pledge's answer to an update made with jrc_update. */
static int jrc_open_update_resp(cj_oscore_ctx_t *jrc, const uint8_t *upd,
                                size_t ulen, const uint8_t *resp,
                                size_t rlen, uint8_t *plain)
{
    cj_oscore_req_t bind;
    cj_oscore_option_t ov;
    uint8_t copy[BUF];

    if (!oscore_opt_of(upd, ulen, &ov))
        return CJ_ERR_INVALID;
    memset(&bind, 0, sizeof bind);
    memcpy(bind.kid, "JRC", 3);
    bind.kid_len = 3;
    memcpy(bind.piv, ov.piv, ov.piv_len);
    bind.piv_len = (uint8_t)ov.piv_len;
    memcpy(copy, resp, rlen);
    return cj_oscore_unprotect_response(jrc, &bind, copy, rlen, plain, BUF);
}

static size_t config_bytes(const cj_cojp_config_t *c, uint8_t *out)
{
    int n = cj_cojp_config_encode(c, out, BUF);
    CHECK(n > 0);
    return n > 0 ? (size_t)n : 0;
}

static int feed(world_t *w, uint8_t *msg, size_t len)
{
    cj_addr_t from = addr(0);
    return cj_pledge_input(&w->p, w->now, &from, msg, len, &w->out);
}

/* A parameter update with Configuration cfg_hex (message ID mid) that the
 * pledge cannot use: answered 4.00 with payload want_hex, no event. */
static void update_rejected(world_t *w, const char *cfg_hex, uint16_t mid,
                            const char *want_hex)
{
    uint8_t cfg[64], plain[BUF], upd[BUF], copy[BUF];
    cj_coap_msg_t in;
    size_t n = cj_hex(cfg_hex, cfg, sizeof cfg), un;
    int r;

    un = jrc_update(&w->jrc, mid, cfg, n, upd);
    memcpy(copy, upd, un);
    CHECK_EQ(feed(w, copy, un), 1);
    CHECK_EQ(w->out.event, 0);
    r = jrc_open_update_resp(&w->jrc, upd, un, w->buf, w->out.len, plain);
    CHECK(r > 0);
    if (r <= 0)
        return;
    CHECK_EQ(cj_coap_parse(&in, plain, (size_t)r), CJ_OK);
    CHECK_EQ(in.code, CJ_COAP_BAD_REQUEST);
    CHECK_HEX(in.payload, in.payload_len, want_hex);
}

/* Answer the Join Request of a fresh one-JP world with the Configuration
 * cfg (cfg_len bytes) that the pledge cannot use: the attempt is
 * REJECTED with nothing installed, and the next Join Request, left in req
 * (BUF bytes; its length returned), reports want_hex as its payload. */
static size_t join_refused(world_t *w, const uint8_t *cfg, size_t cfg_len,
                           uint8_t *req, const char *want_hex)
{
    uint8_t resp[BUF], plain[BUF];
    cj_oscore_req_t bind;
    cj_coap_msg_t in;
    size_t n, r;
    int pl;

    CHECK_EQ(cj_pledge_start(&w->p, w->now), CJ_OK);
    n = poll_send(w, req);
    r = jrc_answer(&w->jrc, req, n, CJ_COAP_CHANGED, cfg, cfg_len, resp);
    CHECK_EQ(feed(w, resp, r), 1);
    CHECK_EQ(w->out.event, CJ_PLEDGE_EV_REJECTED);
    CHECK_EQ(cj_pledge_get_state(&w->p), CJ_PLEDGE_BACKOFF);
    CHECK_EQ(cj_pledge_keys(&w->p, NULL), 0);
    CHECK_EQ(cj_pledge_short_id(&w->p, NULL, NULL), CJ_ERR_NOTFOUND);
    n = poll_send(w, req);
    pl = jrc_open(&w->jrc, req, n, &bind, plain, sizeof plain);
    CHECK(pl > 0);
    if (pl > 0) {
        CHECK_EQ(cj_coap_parse(&in, plain, (size_t)pl), CJ_OK);
        CHECK_HEX(in.payload, in.payload_len, want_hex);
    }
    return n;
}

/* Join through JP 0 with the Appendix A Configuration (or pl). */
static void join_with(world_t *w, const uint8_t *pl, size_t pllen)
{
    uint8_t req[BUF], resp[BUF];
    size_t n, r;

    CHECK_EQ(cj_pledge_start(&w->p, w->now), CJ_OK);
    n = poll_send(w, req);
    r = jrc_answer(&w->jrc, req, n, CJ_COAP_CHANGED, pl, pllen, resp);
    CHECK_EQ(feed(w, resp, r), 1);
    CHECK_EQ(w->out.event, CJ_PLEDGE_EV_JOINED);
    CHECK_EQ(w->out.len, 0);
    CHECK_EQ(cj_pledge_get_state(&w->p), CJ_PLEDGE_JOINED);
}

static void join_appx_a(world_t *w)
{
    uint8_t cfg[64];
    size_t n = cj_hex(APPX_A_CONFIG, cfg, sizeof cfg);
    join_with(w, cfg, n);
}

/* Partial IV of a protected request as a number. */
static uint64_t piv_of(const uint8_t *msg, size_t len)
{
    cj_oscore_option_t ov;
    if (!oscore_opt_of(msg, len, &ov))
        return 0;
    return cj_oscore_piv_value(ov.piv, ov.piv_len);
}

/* ---- Join Request --------------------------------------------------------- */

TEST(pledge_join_request_layout)
{
    static world_t w;
    uint8_t req[BUF], plain[BUF];
    cj_coap_msg_t m, in;
    cj_coap_opt_iter_t it;
    cj_coap_opt_t o;
    cj_oscore_option_t ov;
    cj_oscore_req_t bind;
    int n;
    size_t len;

    world_init(&w, 1);
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_IDLE);
    CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 0); /* not started */
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    len = poll_send(&w, req);
    CHECK(cj_addr_equal(&w.out.to, &(cj_addr_t){2, {0xfe, 0}}));
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_JOINING);

    CHECK_EQ(cj_coap_parse(&m, req, len), CJ_OK);
    CHECK_EQ(m.type, CJ_COAP_CON);
    CHECK_EQ(m.code, CJ_COAP_POST);
    CHECK_EQ(m.token_len, 4);
    CHECK_EQ(m.opt_count, 3);
    cj_coap_opt_iter_init(&it, &m);
    CHECK(cj_coap_opt_next(&it, &o));
    CHECK_EQ(o.num, CJ_COAP_OPT_URI_HOST);
    CHECK_MEM(o.val, o.len, "6tisch.arpa", 11);
    CHECK(cj_coap_opt_next(&it, &o));
    CHECK_EQ(o.num, CJ_COAP_OPT_OSCORE);
    /* flags h | k | n=1, Partial IV 0 (fresh counter), s = 8, kid
     * context = pledge id, empty kid (RFC 9031 section 7.3) */
    CHECK_HEX(o.val, o.len, "19 00 08 0011223344556677");
    CHECK_EQ(cj_oscore_option_decode(o.val, o.len, &ov), CJ_OK);
    CHECK(ov.has_kid && ov.kid_len == 0);
    CHECK(cj_coap_opt_next(&it, &o));
    CHECK_EQ(o.num, CJ_COAP_OPT_PROXY_SCHEME);
    CHECK_MEM(o.val, o.len, "coap", 4);
    CHECK(!cj_coap_opt_next(&it, &o));

    n = jrc_open(&w.jrc, req, len, &bind, plain, sizeof plain);
    CHECK(n > 0);
    CHECK_EQ(cj_coap_parse(&in, plain, (size_t)n), CJ_OK);
    CHECK_EQ(in.code, CJ_COAP_POST);
    CHECK_EQ(in.mid, m.mid);
    CHECK(cj_coap_opt_find(&in, CJ_COAP_OPT_URI_PATH, &o));
    CHECK_MEM(o.val, o.len, "j", 1);
    /* RFC 9031 Appendix A: Join_Request for network id cafe */
    CHECK_HEX(in.payload, in.payload_len, "a10542cafe");
}

/* The defaults are the recommended values of RFC 9031 Table 1 (CoAP
 * settings during the join) and Table 8 (CoJP settings); the timing
 * tests here derive their expectations from these constants. */
TEST(pledge_defaults_tables_1_and_8)
{
    CHECK_EQ(CJ_COJP_ACK_TIMEOUT_MS, 10000);       /* ACK_TIMEOUT 10 s */
    CHECK_EQ(CJ_COJP_ACK_RANDOM_FACTOR_PCT, 150);  /* 1.5 */
    CHECK_EQ(CJ_COJP_MAX_RETRANSMIT, 4);
    CHECK_EQ(CJ_COJP_MAX_JOIN_ATTEMPTS, 4);
    CHECK_EQ(CJ_COJP_REKEYING_GUARD_TIME, 12);     /* seconds */
}

TEST(pledge_retransmissions)
{
    static world_t w;
    uint8_t first[BUF], again[BUF];
    size_t n1, n2;
    uint64_t t0 = 0, sent;

    world_init(&w, 1);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    CHECK_EQ(cj_pledge_next_timer(&w.p), w.now);
    n1 = poll_send(&w, first);
    sent = w.now;
    for (unsigned k = 0; k <= CJ_COJP_MAX_RETRANSMIT; k++) {
        uint64_t t = cj_pledge_next_timer(&w.p) - sent;
        /* RFC 7252 section 4.2 with Table 1: [10 s, 15 s] * 2^k */
        CHECK(t >= (uint64_t)CJ_COJP_ACK_TIMEOUT_MS << k);
        CHECK(t <= ((uint64_t)CJ_COJP_ACK_TIMEOUT_MS * 3 / 2) << k);
        if (k == 0)
            t0 = t;
        else
            CHECK_EQ(t, t0 << k);
        w.now = sent + t - 1;
        CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 0);
        w.now = sent + t;
        if (k == CJ_COJP_MAX_RETRANSMIT)
            break;
        n2 = poll_send(&w, again);
        CHECK_MEM(again, n2, first, n1); /* byte-identical */
        sent = w.now;
    }
    CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_TIMEOUT);
    CHECK_EQ(w.out.len, 0);
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_BACKOFF);
    n2 = poll_send(&w, again);
    CHECK(n2 != n1 || memcmp(again, first, n1) != 0);
}

TEST(pledge_attempts_rotate_then_fail)
{
    static world_t w;
    uint8_t req[BUF], plain[BUF];
    cj_oscore_req_t bind;
    cj_coap_msg_t m, in;
    uint16_t prev_mid = 0;

    world_init(&w, 3);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    for (unsigned a = 0; a < CJ_COJP_MAX_JOIN_ATTEMPTS; a++) {
        size_t n = poll_send(&w, req);
        int pl;
        CHECK_EQ(w.out.to.b[1], a % 3); /* next JP each attempt */
        CHECK_EQ(cj_coap_parse(&m, req, n), CJ_OK);
        if (a)
            CHECK_EQ(m.mid, (uint16_t)(prev_mid + 1));
        prev_mid = m.mid;
        pl = jrc_open(&w.jrc, req, n, &bind, plain, sizeof plain);
        CHECK(pl > 0);
        CHECK_EQ(cj_coap_parse(&in, plain, (size_t)pl), CJ_OK);
        /* network id of that JP (section 8.1.1) */
        CHECK_EQ(in.payload_len, 5);
        CHECK_EQ(in.payload[4], (uint8_t)(0xfe + a % 3));
        attempt_times_out(&w);
    }
    CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_FAILED);
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_FAILED);
    CHECK_EQ(cj_pledge_poll(&w.p, w.now + 100000000, &w.out), 0);
    CHECK_EQ(cj_pledge_next_timer(&w.p), CJ_TIME_NEVER);
    /* start again: a fresh attempt count */
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    poll_send(&w, NULL);
}

/* RFC 9032 section 2: a Join Proxy whose beacons turn to proxy priority
 * 0x7f is withdrawn with cj_pledge_remove_jp().  Later attempts skip
 * it; the attempt under way keeps its JP to its end; with no candidate
 * left the pledge waits in BACKOFF with no timer until one is offered. */
TEST(pledge_remove_jp)
{
    static world_t w;
    cj_addr_t a0 = addr(0), a1 = addr(1), a2 = addr(2), a9 = addr(9);

    world_init(&w, 3);
    CHECK_EQ(cj_pledge_remove_jp(&w.p, &a9), CJ_ERR_NOTFOUND);
    CHECK_EQ(cj_pledge_remove_jp(NULL, &a1), CJ_ERR_INVALID);
    CHECK_EQ(cj_pledge_remove_jp(&w.p, NULL), CJ_ERR_INVALID);
    CHECK_EQ(cj_pledge_remove_jp(&w.p, &a1), CJ_OK);
    CHECK_EQ(cj_pledge_remove_jp(&w.p, &a1), CJ_ERR_NOTFOUND);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);

    /* attempts alternate between JPs 0 and 2 only */
    for (unsigned a = 0; a < 3; a++) {
        poll_send(&w, NULL);
        CHECK_EQ(w.out.to.b[1], a % 2 ? 2 : 0);
        if (a < 2)
            attempt_times_out(&w);
    }

    /* both withdrawn during the third attempt (JP 0): it still goes to
     * JP 0 until it times out */
    CHECK_EQ(cj_pledge_remove_jp(&w.p, &a0), CJ_OK);
    CHECK_EQ(cj_pledge_remove_jp(&w.p, &a2), CJ_OK);
    for (unsigned k = 0; k < CJ_COJP_MAX_RETRANSMIT; k++) {
        w.now = cj_pledge_next_timer(&w.p);
        poll_send(&w, NULL);
        CHECK_EQ(w.out.to.b[1], 0);
    }
    w.now = cj_pledge_next_timer(&w.p);
    CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_TIMEOUT);
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_BACKOFF);
    /* no candidate: nothing to send, no timer */
    CHECK_EQ(cj_pledge_next_timer(&w.p), CJ_TIME_NEVER);
    CHECK_EQ(cj_pledge_poll(&w.p, w.now + 3600000, &w.out), 0);
    CHECK_EQ(w.out.len, 0);
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_BACKOFF);

    /* a JP offered again: the fourth attempt goes to it at once */
    CHECK_EQ(cj_pledge_add_jp(&w.p, &a1, net_cafe, 2), CJ_OK);
    CHECK(cj_pledge_next_timer(&w.p) <= w.now);
    poll_send(&w, NULL);
    CHECK_EQ(w.out.to.b[1], 1);
}

/* Section 7.3: requests protected under one PSK never share a sequence
 * number, also when the attempts go to different JPs, networks and hence
 * possibly different JRCs.  Every attempt, and a restart of joining
 * after FAILED, carries a Partial IV above all the earlier ones, and the
 * retransmissions of one attempt repeat their own. */
TEST(pledge_piv_grows_across_attempts_and_networks)
{
    static world_t w;
    uint8_t req[BUF];
    cj_coap_msg_t m;
    cj_coap_opt_t o;
    cj_oscore_option_t ov;
    uint64_t prev = 0, piv;
    bool first = true;

    world_init(&w, 3);
    for (unsigned round = 0; round < 2; round++) {
        CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
        for (unsigned a = 0; a < CJ_COJP_MAX_JOIN_ATTEMPTS; a++) {
            size_t n = poll_send(&w, req);
            CHECK_EQ(cj_coap_parse(&m, req, n), CJ_OK);
            CHECK(cj_coap_opt_find(&m, CJ_COAP_OPT_OSCORE, &o));
            CHECK_EQ(cj_oscore_option_decode(o.val, o.len, &ov), CJ_OK);
            CHECK(ov.piv_len > 0);
            piv = cj_oscore_piv_value(ov.piv, ov.piv_len);
            if (!first)
                CHECK(piv > prev);
            first = false;
            prev = piv;
            for (unsigned k = 0; k < CJ_COJP_MAX_RETRANSMIT; k++) {
                uint8_t again[BUF];
                size_t r;
                w.now = cj_pledge_next_timer(&w.p);
                r = poll_send(&w, again);
                CHECK_MEM(again, r, req, n);
            }
            w.now = cj_pledge_next_timer(&w.p);
            CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 1);
            CHECK_EQ(w.out.event, CJ_PLEDGE_EV_TIMEOUT);
        }
        CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 1);
        CHECK_EQ(w.out.event, CJ_PLEDGE_EV_FAILED);
    }
}

TEST(pledge_joined_appendix_a)
{
    static world_t w;
    const cj_pledge_key_t *keys;
    uint8_t sid[2];
    uint64_t exp = 0;
    size_t nl;

    world_init(&w, 1);
    join_appx_a(&w);
    CHECK_EQ(cj_pledge_keys(&w.p, &keys), 1);
    CHECK_EQ(keys[0].key_id, 1);
    CHECK_EQ(keys[0].key_usage, CJ_COJP_KEY_USAGE_K1K2_ENC_MIC32);
    CHECK_HEX(keys[0].key, 16, APPX_A_KEY);
    CHECK(cj_pledge_tx_key(&w.p, CJ_PLEDGE_K1) == &keys[0]);
    CHECK(cj_pledge_tx_key(&w.p, CJ_PLEDGE_K2) == &keys[0]);
    CHECK(cj_pledge_rx_key(&w.p, 1) == &keys[0]);
    CHECK(cj_pledge_rx_key(&w.p, 2) == NULL);
    /* Appendix A: short address af93 (bstr 42 af93), infinite lease */
    CHECK_EQ(cj_pledge_short_id(&w.p, sid, &exp), CJ_OK);
    CHECK_HEX(sid, 2, "af93");
    CHECK_EQ(exp, CJ_TIME_NEVER);
    CHECK(cj_pledge_jrc_address(&w.p) == NULL);
    CHECK_EQ(cj_pledge_join_rate(&w.p), CJ_PLEDGE_JOIN_RATE_INFINITE);
    CHECK_EQ(cj_pledge_blacklist_count(&w.p), 0);
    {
        const uint8_t *net = cj_pledge_network_id(&w.p, &nl);
        CHECK_MEM(net, nl, net_cafe, 2);
    }
    CHECK_EQ(cj_pledge_next_timer(&w.p), CJ_TIME_NEVER);
    CHECK_EQ(cj_pledge_poll(&w.p, w.now + 1000000, &w.out), 0);
}

/* A verified CON response is acknowledged with an empty ACK. */
TEST(pledge_con_response_acked)
{
    static world_t w;
    uint8_t req[BUF], plain[BUF], msg[BUF], resp[BUF], cfg[64];
    cj_oscore_req_t bind;
    cj_coap_msg_t m;
    cj_coap_builder_t b;
    size_t cl = cj_hex(APPX_A_CONFIG, cfg, sizeof cfg);
    int r;

    (void)first_request(&w, req, &m, &bind, plain);
    cj_coap_build_init(&b, msg, sizeof msg, CJ_COAP_CON, CJ_COAP_CHANGED,
                       0x7777, m.token, m.token_len);
    cj_coap_build_payload(&b, cfg, cl);
    r = cj_coap_build_finish(&b);
    r = cj_oscore_protect_response(&w.jrc, &bind, true, msg, (size_t)r, resp,
                                   sizeof resp);
    CHECK(r > 0);
    CHECK_EQ(feed(&w, resp, (size_t)r), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_JOINED);
    CHECK_HEX(w.buf, w.out.len, "60 00 7777");
}

/* ---- attacks: silently dropped, nothing changes --------------------------- */

static void expect_dropped(world_t *w, const uint8_t *msg, size_t len)
{
    static cj_pledge_t before;
    uint8_t copy[BUF];
    memcpy(&before, &w->p, sizeof before);
    memcpy(copy, msg, len);
    CHECK_EQ(feed(w, copy, len), 0);
    CHECK_EQ(w->out.len, 0);
    CHECK_EQ(w->out.event, 0);
    CHECK(memcmp(&before, &w->p, sizeof before) == 0);
}

TEST(pledge_drops_attacks_while_joining)
{
    static world_t w;
    static cj_oscore_ctx_t wrong, saved;
    uint8_t req[BUF], resp[BUF], bad[BUF], cfg[64], k2[16];
    cj_coap_msg_t m;
    cj_coap_builder_t b;
    size_t n, r, cl = cj_hex(APPX_A_CONFIG, cfg, sizeof cfg);
    int u;

    world_init(&w, 1);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    n = poll_send(&w, req);
    CHECK_EQ(cj_coap_parse(&m, req, n), CJ_OK);
    saved = w.jrc;
    r = jrc_answer(&w.jrc, req, n, CJ_COAP_CHANGED, cfg, cl, resp);

    /* unprotected 2.04 with the Configuration, and an unprotected 4.00 */
    cj_coap_build_init(&b, bad, sizeof bad, CJ_COAP_ACK, CJ_COAP_CHANGED,
                       m.mid, m.token, m.token_len);
    cj_coap_build_payload(&b, cfg, cl);
    u = cj_coap_build_finish(&b);
    expect_dropped(&w, bad, (size_t)u);
    cj_coap_build_init(&b, bad, sizeof bad, CJ_COAP_ACK, CJ_COAP_BAD_REQUEST,
                       m.mid, m.token, m.token_len);
    u = cj_coap_build_finish(&b);
    expect_dropped(&w, bad, (size_t)u);

    /* wrong key: a JRC context derived from another PSK */
    {
        cj_oscore_params_t pr;
        memset(&pr, 0, sizeof pr);
        memset(k2, 0x55, sizeof k2);
        pr.master_secret = k2;
        pr.master_secret_len = 16;
        pr.sender_id = (const uint8_t *)"JRC";
        pr.sender_id_len = 3;
        pr.id_context = pid;
        pr.id_context_len = sizeof pid;
        pr.has_id_context = true;
        CHECK_EQ(test_derive(&wrong, &pr), CJ_OK);
        wrong.replay.valid = false;
    }
    {
        /* the wrong JRC cannot open the request; build its answer with a
         * binding taken from the option */
        cj_oscore_req_t bind;
        uint8_t msg[BUF];
        memset(&bind, 0, sizeof bind);
        bind.piv[0] = 0;
        bind.piv_len = 1;
        cj_coap_build_init(&b, msg, sizeof msg, CJ_COAP_ACK, CJ_COAP_CHANGED,
                           m.mid, m.token, m.token_len);
        cj_coap_build_payload(&b, cfg, cl);
        u = cj_coap_build_finish(&b);
        u = cj_oscore_protect_response(&wrong, &bind, true, msg, (size_t)u,
                                       bad, sizeof bad);
        CHECK(u > 0);
        expect_dropped(&w, bad, (size_t)u);
    }

    /* every bit flip after the header, and every truncation */
    for (size_t i = 4; i < r; i++) {
        memcpy(bad, resp, r);
        bad[i] ^= 0x01;
        expect_dropped(&w, bad, r);
    }
    for (size_t l = 0; l < r; l++)
        expect_dropped(&w, resp, l);

    /* wrong token, wrong MID in an ACK */
    memcpy(bad, resp, r);
    bad[4] ^= 0x80;
    expect_dropped(&w, bad, r);
    memcpy(bad, resp, r);
    bad[3] ^= 0x01;
    expect_dropped(&w, bad, r);

    /* garbage */
    for (unsigned s = 0; s < 64; s++) {
        size_t gl = 1 + s * 3;
        cj_crypto_random(bad, gl);
        expect_dropped(&w, bad, gl);
    }
    /* RST with our MID */
    {
        uint8_t rst[4] = {0x70, 0x00, (uint8_t)(m.mid >> 8), (uint8_t)m.mid};
        expect_dropped(&w, rst, 4);
    }

    /* replayed response: a 4.00 under a Partial IV already accepted */
    {
        uint8_t rej[BUF];
        cj_oscore_ctx_t again = saved;
        size_t rl = jrc_answer(&saved, req, n, CJ_COAP_BAD_REQUEST, NULL, 0,
                               rej);
        CHECK_EQ(feed(&w, rej, rl), 1);
        CHECK_EQ(w.out.event, CJ_PLEDGE_EV_REJECTED);
        /* the old response now has a stale token */
        expect_dropped(&w, rej, rl);
        n = poll_send(&w, req);
        /* same JRC Partial IV again, bound to the new request */
        again.replay = saved.replay;
        rl = jrc_answer(&again, req, n, CJ_COAP_CHANGED, cfg, cl, rej);
        expect_dropped(&w, rej, rl);
        /* a fresh one joins */
        rl = jrc_answer(&saved, req, n, CJ_COAP_CHANGED, cfg, cl, rej);
        CHECK_EQ(feed(&w, rej, rl), 1);
        CHECK_EQ(w.out.event, CJ_PLEDGE_EV_JOINED);
        /* once joined, even the valid response is ignored */
        expect_dropped(&w, rej, rl);
    }
}

/* ---- rejections ------------------------------------------------------------ */

TEST(pledge_diagnostic_response_rejected)
{
    static world_t w;
    uint8_t req[BUF], resp[BUF], plain[BUF];
    cj_oscore_req_t bind;
    cj_coap_msg_t in;
    /* Unsupported_Configuration [0, 1, 1]: role 1 unsupported */
    static const uint8_t diag[] = {0x83, 0x00, 0x01, 0x01};
    size_t n, r;
    int pl;

    world_init(&w, 2);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    n = poll_send(&w, req);
    r = jrc_answer(&w.jrc, req, n, CJ_COAP_BAD_REQUEST, diag, sizeof diag,
                   resp);
    CHECK_EQ(feed(&w, resp, r), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_REJECTED);
    CHECK_EQ(w.out.len, 0);
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_BACKOFF);
    n = poll_send(&w, req);
    CHECK_EQ(w.out.to.b[1], 1); /* the other JP */
    pl = jrc_open(&w.jrc, req, n, &bind, plain, sizeof plain);
    CHECK(pl > 0);
    CHECK_EQ(cj_coap_parse(&in, plain, (size_t)pl), CJ_OK);
    CHECK_HEX(in.payload, in.payload_len, "a10542caff"); /* no report */
}

TEST(pledge_unusable_config_reported)
{
    static world_t w;
    uint8_t req[BUF], resp[BUF], plain[BUF], cfgb[BUF], key[16];
    cj_oscore_req_t bind;
    cj_coap_msg_t in;
    cj_cojp_config_t c;
    cj_cojp_join_request_t jr;
    size_t n, r, cl;
    int pl;

    world_cfg(&w);
    /* this node supports only key usage 0 */
    w.cfg.key_usages = 1u << CJ_COJP_KEY_USAGE_K1K2_ENC_MIC32;
    world_boot(&w);
    jrc_ctx(&w.jrc, pid, sizeof pid);
    {
        cj_addr_t a = addr(0);
        CHECK_EQ(cj_pledge_add_jp(&w.p, &a, net_cafe, 2), CJ_OK);
    }
    memset(&c, 0, sizeof c);
    memset(key, 0x11, sizeof key);
    c.key_count = 1;
    c.keys[0].key_id = 1;
    c.keys[0].key_usage = CJ_COJP_KEY_USAGE_K2_ENC_MIC64; /* 13 */
    c.keys[0].key = key;
    cl = config_bytes(&c, cfgb);

    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    n = poll_send(&w, req);
    r = jrc_answer(&w.jrc, req, n, CJ_COAP_CHANGED, cfgb, cl, resp);
    CHECK_EQ(feed(&w, resp, r), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_REJECTED);
    CHECK_EQ(cj_pledge_keys(&w.p, NULL), 0);

    n = poll_send(&w, req);
    pl = jrc_open(&w.jrc, req, n, &bind, plain, sizeof plain);
    CHECK(pl > 0);
    CHECK_EQ(cj_coap_parse(&in, plain, (size_t)pl), CJ_OK);
    /* {5: h'cafe', 8: [0, 2, [1, 13, h'11..11']]}: the refused key as a
     * key set of one (sections 8.4.1, 8.4.5) */
    CHECK_HEX(in.payload, in.payload_len,
              "a2 0542cafe 08 830002 83010d50 11111111111111111111111111111111");
    CHECK_EQ(cj_cojp_join_request_decode(in.payload, in.payload_len, &jr,
                                         NULL),
             CJ_OK);
    CHECK(jr.has_unsupported);

    /* a Join Response without a key set is unusable too (an invalid
     * short identifier no longer is: section 8.4.4 has it ignored); the
     * report is not repeated after it was sent once */
    {
        uint8_t bad_cfg[BUF];
        size_t bl = cj_hex("a1 03 81 42 af93", bad_cfg, sizeof bad_cfg);
        r = jrc_answer(&w.jrc, req, n, CJ_COAP_CHANGED, bad_cfg, bl, resp);
        CHECK_EQ(feed(&w, resp, r), 1);
        CHECK_EQ(w.out.event, CJ_PLEDGE_EV_REJECTED);
        n = poll_send(&w, req);
        pl = jrc_open(&w.jrc, req, n, &bind, plain, sizeof plain);
        CHECK(pl > 0);
        CHECK_EQ(cj_coap_parse(&in, plain, (size_t)pl), CJ_OK);
        /* {5: h'cafe', 8: [0, 2, null]} */
        CHECK_HEX(in.payload, in.payload_len, "a2 0542cafe 08 830002f6");
    }
    /* a Configuration that does not decode: reported as the codec says */
    {
        uint8_t bad_cfg[8];
        size_t bl = cj_hex("a1 18 63 00", bad_cfg, sizeof bad_cfg);
        r = jrc_answer(&w.jrc, req, n, CJ_COAP_CHANGED, bad_cfg, bl, resp);
        CHECK_EQ(feed(&w, resp, r), 1);
        CHECK_EQ(w.out.event, CJ_PLEDGE_EV_REJECTED);
        /* fourth attempt was the last: FAILED follows */
        n = poll_send(&w, req);
        pl = jrc_open(&w.jrc, req, n, &bind, plain, sizeof plain);
        CHECK(pl > 0);
        CHECK_EQ(cj_coap_parse(&in, plain, (size_t)pl), CJ_OK);
        CHECK_HEX(in.payload, in.payload_len, "a2 0542cafe 08 83001863f6");
        CHECK_EQ(cj_cojp_join_request_decode(in.payload, in.payload_len,
                                             &jr, NULL),
                 CJ_OK);
        CHECK(jr.has_unsupported && jr.unsupported.params[0].label == 99);
        r = jrc_answer(&w.jrc, req, n, CJ_COAP_BAD_REQUEST, NULL, 0, resp);
        CHECK_EQ(feed(&w, resp, r), 1);
        CHECK_EQ(w.out.event, CJ_PLEDGE_EV_REJECTED);
        CHECK_EQ(cj_pledge_next_timer(&w.p), 0);
        CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 1);
        CHECK_EQ(w.out.event, CJ_PLEDGE_EV_FAILED);
        CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_FAILED);
    }
}

/* ---- parameter updates ------------------------------------------------------ */

static size_t keyset_cfg(uint8_t *out, uint8_t id1, uint8_t v1, uint8_t id2,
                         uint8_t v2, uint8_t usage2)
{
    cj_cojp_config_t c;
    static uint8_t ka[16], kb[16];
    memset(&c, 0, sizeof c);
    memset(ka, v1, sizeof ka);
    memset(kb, v2, sizeof kb);
    c.key_count = 2;
    c.keys[0].key_id = id1;
    c.keys[0].key_usage = CJ_COJP_KEY_USAGE_K1_MIC32;
    c.keys[0].key = ka;
    c.keys[1].key_id = id2;
    c.keys[1].key_usage = usage2;
    c.keys[1].key = kb;
    return config_bytes(&c, out);
}

/* Send an update; expect a piggybacked 2.04 (or code) and event ev. */
static void update_expect(world_t *w, uint16_t mid, const uint8_t *pl,
                          size_t pllen, uint8_t code, int ev)
{
    uint8_t upd[BUF], copy[BUF], plain[BUF];
    cj_coap_msg_t rm, in;
    size_t n = jrc_update(&w->jrc, mid, pl, pllen, upd);
    int r;

    memcpy(copy, upd, n);
    CHECK_EQ(feed(w, copy, n), 1);
    CHECK_EQ(w->out.event, ev);
    CHECK(w->out.len > 0);
    CHECK_EQ(cj_coap_parse(&rm, w->buf, w->out.len), CJ_OK);
    CHECK_EQ(rm.type, CJ_COAP_ACK);
    CHECK_EQ(rm.mid, mid);
    CHECK_MEM(rm.token, rm.token_len, upd_token, 8);
    r = jrc_open_update_resp(&w->jrc, upd, n, w->buf, w->out.len, plain);
    CHECK(r > 0);
    CHECK_EQ(cj_coap_parse(&in, plain, (size_t)r), CJ_OK);
    CHECK_EQ(in.code, code);
}

TEST(pledge_update_rekey_6ln)
{
    static world_t w;
    uint8_t cfg[BUF];
    size_t n;

    world_init(&w, 1);
    n = keyset_cfg(cfg, 1, 0x11, 2, 0x22, CJ_COJP_KEY_USAGE_K2_ENC_MIC32);
    join_with(&w, cfg, n);
    CHECK_EQ(cj_pledge_tx_key(&w.p, CJ_PLEDGE_K1)->key_id, 1);
    CHECK_EQ(cj_pledge_tx_key(&w.p, CJ_PLEDGE_K2)->key_id, 2);

    /* new K2 (id 3); K1 unchanged */
    n = keyset_cfg(cfg, 1, 0x11, 3, 0x33, CJ_COJP_KEY_USAGE_K2_ENC_MIC32);
    update_expect(&w, 0x100, cfg, n, CJ_COAP_CHANGED, CJ_PLEDGE_EV_UPDATED);
    CHECK_EQ(cj_pledge_next_timer(&w.p), CJ_TIME_NEVER); /* nothing queued */
    /* installed for reception, tx still on the old K2 */
    CHECK(cj_pledge_rx_key(&w.p, 3) != NULL);
    CHECK_EQ(cj_pledge_rx_key(&w.p, 3)->key[0], 0x33);
    CHECK_EQ(cj_pledge_tx_key(&w.p, CJ_PLEDGE_K2)->key_id, 2);
    /* frames under old or shared keys do not switch */
    CHECK_EQ(cj_pledge_rx_used(&w.p, w.now, 2, &w.out), 0);
    CHECK_EQ(cj_pledge_rx_used(&w.p, w.now, 1, &w.out), 0);
    CHECK_EQ(cj_pledge_tx_key(&w.p, CJ_PLEDGE_K2)->key_id, 2);
    /* a frame under the new key id switches tx */
    w.now += 5000;
    CHECK_EQ(cj_pledge_rx_used(&w.p, w.now, 3, &w.out), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_KEYS_SWITCHED);
    CHECK_EQ(cj_pledge_tx_key(&w.p, CJ_PLEDGE_K2)->key_id, 3);
    CHECK_EQ(cj_pledge_tx_key(&w.p, CJ_PLEDGE_K1)->key_id, 1);
    CHECK(cj_pledge_rx_key(&w.p, 2) != NULL); /* guard time */
    CHECK_EQ(cj_pledge_next_timer(&w.p),
             w.now + CJ_COJP_REKEYING_GUARD_TIME * 1000u);
    CHECK_EQ(cj_pledge_poll(&w.p, w.now + CJ_COJP_REKEYING_GUARD_TIME * 1000u
                                      - 1, &w.out), 0);
    CHECK(cj_pledge_rx_key(&w.p, 2) != NULL);
    CHECK_EQ(cj_pledge_poll(&w.p, w.now + CJ_COJP_REKEYING_GUARD_TIME * 1000u,
                            &w.out), 0);
    CHECK(cj_pledge_rx_key(&w.p, 2) == NULL); /* old set gone */
    CHECK(cj_pledge_rx_key(&w.p, 3) != NULL);
    CHECK_EQ(cj_pledge_rx_used(&w.p, w.now, 3, &w.out), 0);

    /* the same set again changes nothing */
    update_expect(&w, 0x101, cfg, n, CJ_COAP_CHANGED, CJ_PLEDGE_EV_UPDATED);
    CHECK_EQ(cj_pledge_rx_used(&w.p, w.now, 3, &w.out), 0);
    CHECK_EQ(cj_pledge_next_timer(&w.p), CJ_TIME_NEVER);
}

TEST(pledge_update_rekey_6lbr)
{
    static world_t w;
    uint8_t cfg[BUF];
    size_t n;

    world_cfg(&w);
    w.cfg.role = CJ_COJP_ROLE_6LBR;
    w.cfg.rekey_guard_ms = 3000;
    world_boot(&w);
    jrc_ctx(&w.jrc, pid, sizeof pid);
    {
        cj_addr_t a = addr(0);
        CHECK_EQ(cj_pledge_add_jp(&w.p, &a, net_cafe, 2), CJ_OK);
    }
    n = keyset_cfg(cfg, 1, 0x11, 2, 0x22, CJ_COJP_KEY_USAGE_K2_ENC_MIC32);
    join_with(&w, cfg, n);
    n = keyset_cfg(cfg, 4, 0x44, 5, 0x55, CJ_COJP_KEY_USAGE_K2_ENC_MIC32);
    update_expect(&w, 0x200, cfg, n, CJ_COAP_CHANGED, CJ_PLEDGE_EV_UPDATED);
    /* section 8.4.3.1: immediately */
    CHECK_EQ(cj_pledge_tx_key(&w.p, CJ_PLEDGE_K1)->key_id, 4);
    CHECK_EQ(cj_pledge_tx_key(&w.p, CJ_PLEDGE_K2)->key_id, 5);
    CHECK_EQ(cj_pledge_next_timer(&w.p), 0);
    CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_KEYS_SWITCHED);
    CHECK(cj_pledge_rx_key(&w.p, 1) != NULL);
    CHECK_EQ(cj_pledge_next_timer(&w.p), w.now + 3000);
    CHECK_EQ(cj_pledge_poll(&w.p, w.now + 3000, &w.out), 0);
    CHECK(cj_pledge_rx_key(&w.p, 1) == NULL);
    CHECK(cj_pledge_rx_key(&w.p, 2) == NULL);
}

TEST(pledge_update_short_id_blacklist_rate)
{
    static world_t w;
    uint8_t cfg[BUF], sid[2];
    static const uint8_t new_sid[2] = {0x12, 0x34};
    static const uint8_t jrc_addr[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t bad1[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    cj_cojp_config_t c;
    uint64_t exp;
    size_t n;

    world_init(&w, 1);
    join_appx_a(&w);
    memset(&c, 0, sizeof c);
    c.short_id = new_sid;
    c.has_lease_time = true;
    c.lease_time = 2;
    c.jrc_address = jrc_addr;
    c.has_blacklist = true;
    c.blacklist_count = 1;
    c.blacklist[0].p = bad1;
    c.blacklist[0].len = 8;
    c.has_join_rate = true;
    c.join_rate = 7;
    n = config_bytes(&c, cfg);
    update_expect(&w, 0x300, cfg, n, CJ_COAP_CHANGED, CJ_PLEDGE_EV_UPDATED);
    CHECK_EQ(cj_pledge_short_id(&w.p, sid, &exp), CJ_OK);
    CHECK_HEX(sid, 2, "1234");
    CHECK_EQ(exp, w.now + 2 * 3600000ull);
    CHECK_MEM(cj_pledge_jrc_address(&w.p), 16, jrc_addr, 16);
    CHECK_EQ(cj_pledge_blacklist_count(&w.p), 1);
    CHECK(cj_pledge_is_blacklisted(&w.p, bad1, 8));
    CHECK(!cj_pledge_is_blacklisted(&w.p, pid, 8));
    CHECK_EQ(cj_pledge_join_rate(&w.p), 7);
    CHECK_EQ(cj_pledge_keys(&w.p, NULL), 1); /* absent: unchanged */

    /* empty blacklist clears it; rate 0 */
    memset(&c, 0, sizeof c);
    c.has_blacklist = true;
    c.has_join_rate = true;
    c.join_rate = 0;
    n = config_bytes(&c, cfg);
    update_expect(&w, 0x301, cfg, n, CJ_COAP_CHANGED, CJ_PLEDGE_EV_UPDATED);
    CHECK_EQ(cj_pledge_blacklist_count(&w.p), 0);
    CHECK_EQ(cj_pledge_join_rate(&w.p), 0);
    CHECK_EQ(cj_pledge_short_id(&w.p, sid, NULL), CJ_OK);
    CHECK_HEX(sid, 2, "1234");

    /* unusable update: 4.00 with the Unsupported_Configuration, nothing
     * applied */
    /* a 9-byte blacklist entry (longer than an EUI-64) */
    update_rejected(&w, "a1 06 81 49 000102030405060708", 0x302, "830006f6");
    CHECK_EQ(cj_pledge_short_id(&w.p, sid, NULL), CJ_OK);
    CHECK_HEX(sid, 2, "1234");
    /* an unknown negative label: reported with its own encoding, code
     * Unsupported, addinfo null */
    update_rejected(&w, "a1 3903e7 00", 0x3020, "83003903e7f6"); /* label -1000 */
    /* an invalid short identifier is silently ignored (section 8.4.4,
     * review fix: it used to make the update unusable): 2.04, the
     * current identifier stays */
    {
        uint8_t plain[BUF], upd[BUF], copy[BUF];
        cj_coap_msg_t in;
        int r;
        n = cj_hex("a1 03 81 41 01", cfg, sizeof cfg); /* 1-byte short id */
        size_t un = jrc_update(&w.jrc, 0x303, cfg, n, upd);
        memcpy(copy, upd, un);
        CHECK_EQ(feed(&w, copy, un), 1);
        CHECK_EQ(w.out.event, CJ_PLEDGE_EV_UPDATED);
        r = jrc_open_update_resp(&w.jrc, upd, un, w.buf, w.out.len, plain);
        CHECK(r > 0);
        CHECK_EQ(cj_coap_parse(&in, plain, (size_t)r), CJ_OK);
        CHECK_EQ(in.code, CJ_COAP_CHANGED);
        CHECK_EQ(cj_pledge_short_id(&w.p, sid, NULL), CJ_OK);
        CHECK_HEX(sid, 2, "1234");
    }
}

TEST(pledge_lease_expiry_rejoins)
{
    static world_t w;
    uint8_t cfg[BUF];
    static const uint8_t sid[2] = {0x00, 0x07};
    cj_cojp_config_t c;
    size_t n;

    world_init(&w, 1);
    join_appx_a(&w);
    memset(&c, 0, sizeof c);
    c.short_id = sid;
    c.has_lease_time = true;
    c.lease_time = 1;
    n = config_bytes(&c, cfg);
    update_expect(&w, 0x400, cfg, n, CJ_COAP_CHANGED, CJ_PLEDGE_EV_UPDATED);
    CHECK_EQ(cj_pledge_next_timer(&w.p), w.now + 3600000u);
    CHECK_EQ(cj_pledge_poll(&w.p, w.now + 3599999u, &w.out), 0);
    w.now += 3600000u;
    CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_LEASE_EXPIRED);
    CHECK_EQ(cj_pledge_short_id(&w.p, NULL, NULL), CJ_ERR_NOTFOUND);
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_BACKOFF);
    poll_send(&w, NULL); /* a new Join Request */
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_JOINING);
}

TEST(pledge_lease_zero_evicts)
{
    static world_t w;
    uint8_t cfg[BUF], req[BUF];
    static const uint8_t sid[2] = {0x00, 0x07};
    cj_cojp_config_t c;
    size_t n;

    world_init(&w, 1);
    join_appx_a(&w);
    memset(&c, 0, sizeof c);
    c.short_id = sid;
    c.has_lease_time = true;
    c.lease_time = 0;
    n = config_bytes(&c, cfg);
    update_expect(&w, 0x500, cfg, n, CJ_COAP_CHANGED,
                  CJ_PLEDGE_EV_LEASE_EXPIRED);
    CHECK_EQ(cj_pledge_short_id(&w.p, NULL, NULL), CJ_ERR_NOTFOUND);
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_BACKOFF);
    n = poll_send(&w, req);
    CHECK(n > 0);
}

TEST(pledge_update_duplicate_from_cache)
{
    static world_t w;
    uint8_t cfg[BUF], upd[BUF], copy[BUF], first[BUF];
    static const uint8_t sid[2] = {0x00, 0x09};
    cj_cojp_config_t c;
    size_t n, un, fl;
    unsigned long stores;

    world_init(&w, 1);
    join_appx_a(&w);
    memset(&c, 0, sizeof c);
    c.short_id = sid;
    n = config_bytes(&c, cfg);
    un = jrc_update(&w.jrc, 0x600, cfg, n, upd);
    memcpy(copy, upd, un);
    CHECK_EQ(feed(&w, copy, un), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_UPDATED);
    fl = w.out.len;
    memcpy(first, w.buf, fl);
    stores = w.mem.stores;
    /* the retransmission: same bytes back, no event, no storage write */
    memcpy(copy, upd, un);
    CHECK_EQ(feed(&w, copy, un), 1);
    CHECK_EQ(w.out.event, 0);
    CHECK_MEM(w.buf, w.out.len, first, fl);
    CHECK_EQ(w.mem.stores, stores);
    /* same MID and Partial IV but another tag: not the same request */
    memcpy(copy, upd, un);
    copy[un - 1] ^= 1;
    expect_dropped(&w, copy, un);
}

TEST(pledge_update_dropped_attacks)
{
    static world_t w;
    uint8_t cfg[BUF], upd[BUF], copy[BUF];
    static const uint8_t sid[2] = {0x00, 0x0a};
    cj_cojp_config_t c;
    size_t n, un;

    world_init(&w, 1);
    /* not joined: updates are ignored */
    memset(&c, 0, sizeof c);
    c.short_id = sid;
    n = config_bytes(&c, cfg);
    un = jrc_update(&w.jrc, 0x700, cfg, n, upd);
    expect_dropped(&w, upd, un);
    join_appx_a(&w);
    /* token and Uri-Host are not integrity protected (RFC 8613 4.1):
     * flip from the OSCORE option on (4 + 8 + 12 bytes in) */
    for (size_t i = 24; i < un; i++) {
        memcpy(copy, upd, un);
        copy[i] ^= 0x04;
        expect_dropped(&w, copy, un);
    }
    for (size_t l = 0; l < un; l++)
        expect_dropped(&w, upd, l);
    /* an older Partial IV than one already seen */
    {
        uint8_t newer[BUF];
        size_t nn = jrc_update(&w.jrc, 0x701, cfg, n, newer);
        memcpy(copy, newer, nn);
        CHECK_EQ(feed(&w, copy, nn), 1);
        CHECK_EQ(w.out.event, CJ_PLEDGE_EV_UPDATED);
        memcpy(copy, upd, un); /* PIV below the window's newest, unseen */
        /* accepted: it is inside the window and not seen yet */
        CHECK_EQ(feed(&w, copy, un), 1);
        memcpy(copy, upd, un);
        copy[3] ^= 0x10; /* another MID: no cache hit, PIV replayed */
        expect_dropped(&w, copy, un);
    }
}

/* ---- persistence ------------------------------------------------------------- */

TEST(pledge_update_replay_after_reboot)
{
    static world_t w;
    uint8_t cfg[BUF], upd[BUF], copy[BUF];
    static const uint8_t sid[2] = {0x00, 0x0b};
    cj_cojp_config_t c;
    cj_oscore_replay_t win;
    size_t n, un;

    world_init(&w, 1);
    join_appx_a(&w);
    memset(&c, 0, sizeof c);
    c.short_id = sid;
    n = config_bytes(&c, cfg);
    un = jrc_update(&w.jrc, 0x800, cfg, n, upd);
    memcpy(copy, upd, un);
    CHECK_EQ(feed(&w, copy, un), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_UPDATED);
    win = w.p.osc.replay;

    /* reboot: new engine, same platform */
    world_boot(&w);
    {
        cj_addr_t a = addr(0);
        CHECK_EQ(cj_pledge_add_jp(&w.p, &a, net_cafe, 2), CJ_OK);
    }
    CHECK(w.p.osc.replay.valid);
    CHECK_EQ(w.p.osc.replay.highest, win.highest);
    join_appx_a(&w);
    memcpy(copy, upd, un);
    expect_dropped(&w, copy, un);
    /* a fresh update still works */
    update_expect(&w, 0x801, cfg, n, CJ_COAP_CHANGED, CJ_PLEDGE_EV_UPDATED);
}

TEST(pledge_ssn_never_reused_across_reboot)
{
    static world_t w;
    uint8_t req[BUF];
    uint64_t pivs[64];
    size_t np = 0;
    uint64_t max_prev = 0;
    bool any_prev = false;

    world_init(&w, 2);
    for (int boot = 0; boot < 3; boot++) {
        uint64_t max_this = 0;
        if (boot) {
            cj_addr_t a = addr(0);
            world_boot(&w);
            CHECK_EQ(cj_pledge_add_jp(&w.p, &a, net_cafe, 2), CJ_OK);
        }
        for (int s = 0; s < 5; s++) {
            size_t n;
            CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
            n = poll_send(&w, req);
            pivs[np] = piv_of(req, n);
            /* Appendix B.1.1: above everything used before the reboot */
            CHECK(!any_prev || pivs[np] > max_prev);
            for (size_t i = 0; i < np; i++)
                CHECK(pivs[i] != pivs[np]);
            if (pivs[np] > max_this)
                max_this = pivs[np];
            np++;
        }
        max_prev = max_this;
        any_prev = true;
    }
    CHECK_EQ(np, 15);
}

TEST(pledge_persist_failure)
{
    static world_t w;
    uint8_t req[BUF], cfg[BUF], upd[BUF], copy[BUF];
    static const uint8_t sid[2] = {0x00, 0x0c};
    cj_cojp_config_t c;
    size_t n, un;

    world_init(&w, 1);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    w.mem.fail_stores = 1; /* the SSN reservation fails */
    CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 0);
    CHECK_EQ(w.out.len, 0);
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_BACKOFF);
    CHECK_EQ(cj_pledge_next_timer(&w.p), w.now + CJ_PLEDGE_STORAGE_RETRY_MS);
    CHECK_EQ(cj_pledge_poll(&w.p, w.now + 1, &w.out), 0);
    w.now += CJ_PLEDGE_STORAGE_RETRY_MS;
    n = poll_send(&w, req);
    CHECK_EQ(piv_of(req, n), 0);

    /* a Join Response whose window cannot be stored is not accepted */
    {
        uint8_t resp[BUF], cfga[64];
        size_t cl = cj_hex(APPX_A_CONFIG, cfga, sizeof cfga), r;
        r = jrc_answer(&w.jrc, req, n, CJ_COAP_CHANGED, cfga, cl, resp);
        memcpy(copy, resp, r);
        w.mem.fail_stores = 1;
        CHECK_EQ(feed(&w, copy, r), 0);
        CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_JOINING);
        CHECK(!w.p.osc.replay.valid);
        /* the same response again (JRC cache after our retransmission) */
        memcpy(copy, resp, r);
        CHECK_EQ(feed(&w, copy, r), 1);
        CHECK_EQ(w.out.event, CJ_PLEDGE_EV_JOINED);
    }

    memset(&c, 0, sizeof c);
    c.short_id = sid;
    n = config_bytes(&c, cfg);
    un = jrc_update(&w.jrc, 0x900, cfg, n, upd);
    memcpy(copy, upd, un);
    w.mem.fail_stores = 1;
    CHECK_EQ(feed(&w, copy, un), 0);
    CHECK_EQ(w.out.len, 0);
    CHECK_EQ(cj_pledge_short_id(&w.p, NULL, NULL), CJ_OK);
    {
        uint8_t s[2];
        cj_pledge_short_id(&w.p, s, NULL);
        CHECK_HEX(s, 2, "af93"); /* not applied */
    }
    /* the JRC's retransmission is processed */
    memcpy(copy, upd, un);
    CHECK_EQ(feed(&w, copy, un), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_UPDATED);
    {
        uint8_t s[2];
        cj_pledge_short_id(&w.p, s, NULL);
        CHECK_HEX(s, 2, "000c");
    }
}

TEST(pledge_init_errors)
{
    static world_t w;
    world_cfg(&w);
    w.mem.fail_loads = 1;
    CHECK_EQ(cj_pledge_init(&w.p, &w.cfg, &w.mem.port), CJ_ERR_STORAGE);
    CHECK_EQ(cj_pledge_init(&w.p, &w.cfg, NULL), CJ_ERR_INVALID);
    w.cfg.pledge_id_len = 0;
    CHECK_EQ(cj_pledge_init(&w.p, &w.cfg, &w.mem.port), CJ_ERR_INVALID);
    w.cfg.pledge_id_len = CJ_OSCORE_MAX_ID_CONTEXT + 1;
    CHECK_EQ(cj_pledge_init(&w.p, &w.cfg, &w.mem.port), CJ_ERR_INVALID);
    w.cfg.pledge_id_len = 8;
    w.cfg.role = 7;
    CHECK_EQ(cj_pledge_init(&w.p, &w.cfg, &w.mem.port), CJ_ERR_INVALID);
    w.cfg.role = 0;
    CHECK_EQ(cj_pledge_init(&w.p, &w.cfg, &w.mem.port), CJ_OK);
    CHECK_EQ(cj_pledge_start(&w.p, 0), CJ_ERR_STATE); /* no JP */
    {
        cj_addr_t a = addr(1);
        uint8_t longnet[CJ_PLEDGE_MAX_NETID + 1] = {0};
        CHECK_EQ(cj_pledge_add_jp(&w.p, &a, longnet, sizeof longnet),
                 CJ_ERR_INVALID);
        for (uint8_t i = 0; i < CJ_PLEDGE_MAX_JPS + 2; i++) {
            a = addr(i);
            CHECK_EQ(cj_pledge_add_jp(&w.p, &a, net_cafe, 2), CJ_OK);
        }
        CHECK_EQ(w.p.jp_count, CJ_PLEDGE_MAX_JPS);
        a = addr(3);
        CHECK_EQ(cj_pledge_add_jp(&w.p, &a, net_cafe, 1), CJ_OK);
        CHECK_EQ(w.p.jp_count, CJ_PLEDGE_MAX_JPS);
    }
}

/* ---- recovery (section 8.3.3, RFC 8613 Appendix B.2) ----------------------- */

/* The JRC's recovery answer to the pledge's first Join Request: a 4.01
 * protected under ID Context R2 || ID1 naming R2 alone as 'kid context'.
 * Returns its length in resp (0 on failure); *piv1 gets the request's
 * Partial IV. */
static size_t recovery_401(world_t *w, const uint8_t r2[8], uint8_t *resp,
                           uint64_t *piv1)
{
    static cj_oscore_ctx_t c2;
    uint8_t req[BUF], plain[BUF], id2[16];
    cj_oscore_req_t bind;
    cj_coap_msg_t m;
    cj_coap_builder_t b;
    size_t n;
    int r;

    CHECK_EQ(cj_pledge_start(&w->p, w->now), CJ_OK);
    n = poll_send(w, req);
    *piv1 = piv_of(req, n);
    CHECK_EQ(cj_coap_parse(&m, req, n), CJ_OK);
    /* the JRC verifies with the pledge-id context ... */
    CHECK(jrc_open(&w->jrc, req, n, &bind, plain, sizeof plain) > 0);
    /* ... and answers 4.01 under R2 || ID1, carrying R2 as kid context */
    memcpy(id2, r2, 8);
    memcpy(id2 + 8, pid, 8);
    jrc_ctx(&c2, id2, sizeof id2);
    memcpy(c2.id_context, r2, 8);
    c2.id_context_len = 8;
    c2.send_kid_context = true;
    cj_coap_build_init(&b, plain, sizeof plain, CJ_COAP_ACK,
                       CJ_COAP_UNAUTHORIZED, m.mid, m.token, m.token_len);
    r = cj_coap_build_finish(&b);
    CHECK(r > 0);
    if (r <= 0)
        return 0;
    r = cj_oscore_protect_response(&c2, &bind, true, plain, (size_t)r, resp,
                                   BUF);
    CHECK(r > 0);
    return r > 0 ? (size_t)r : 0;
}

/* Recovery is a compile-time switch (CJ_PLEDGE_RECOVERY in
 * cojp/config.h); each build runs the test of the behaviour it has. */
#if CJ_PLEDGE_RECOVERY
TEST(pledge_recovery)
{
    static world_t w;
    static cj_oscore_ctx_t c3;
    uint8_t req[BUF], resp[BUF], cfg[64];
    uint8_t r2[8] = {0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7};
    uint8_t id3[16];
    cj_oscore_option_t ov;
    size_t n, r, cl = cj_hex(APPX_A_CONFIG, cfg, sizeof cfg);
    uint64_t piv1;

    world_init(&w, 2);
    r = recovery_401(&w, r2, resp, &piv1);
    if (r == 0)
        return;
    /* tampered: dropped */
    {
        uint8_t bad[BUF];
        memcpy(bad, resp, r);
        bad[r - 1] ^= 1;
        expect_dropped(&w, bad, r);
    }
    CHECK_EQ(feed(&w, resp, r), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_RECOVERY);
    CHECK_EQ(w.out.len, 0);

    n = poll_send(&w, req);
    CHECK_EQ(w.out.to.b[1], 0); /* same JP: its JRC holds R2 */
    CHECK(piv_of(req, n) > piv1);
    /* ov is inspected only when the request carries a decodable option
     * with a kid context of R2 || R3. */
    if (!oscore_opt_of(req, n, &ov))
        return;
    CHECK(ov.has_kid_context);
    CHECK_EQ(ov.kid_context_len, 16);
    if (ov.kid_context_len != 16)
        return;
    CHECK_MEM(ov.kid_context, 8, r2, 8);
    memcpy(id3, ov.kid_context, 16);
    CHECK(memcmp(id3 + 8, pid, 8) != 0); /* R3 is fresh, not ID1 */

    jrc_ctx(&c3, id3, sizeof id3);
    n = jrc_answer(&c3, req, n, CJ_COAP_CHANGED, cfg, cl, resp);
    CHECK_EQ(feed(&w, resp, n), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_JOINED);

    /* the new context survives a reboot, with its replay window */
    {
        uint8_t upd[BUF], copy[BUF];
        static const uint8_t sid[2] = {0, 0x0d};
        cj_cojp_config_t c;
        size_t un, cl2;
        uint8_t cb[BUF];
        memset(&c, 0, sizeof c);
        c.short_id = sid;
        cl2 = config_bytes(&c, cb);
        un = jrc_update(&c3, 0xa00, cb, cl2, upd);
        memcpy(copy, upd, un);
        CHECK_EQ(feed(&w, copy, un), 1);
        CHECK_EQ(w.out.event, CJ_PLEDGE_EV_UPDATED);
        world_boot(&w);
        CHECK_MEM(w.p.osc.id_context, w.p.osc.id_context_len, id3, 16);
        CHECK(w.p.osc.replay.valid);
        {
            cj_addr_t a = addr(0);
            CHECK_EQ(cj_pledge_add_jp(&w.p, &a, net_cafe, 2), CJ_OK);
        }
        w.jrc = c3;
        join_appx_a(&w);
        memcpy(copy, upd, un);
        expect_dropped(&w, copy, un);
    }
}
/* A recovery stays with the JP whose JRC holds R2 (above) while that JP
 * is a candidate, also when withdrawing another one moves it in the
 * table; once it is withdrawn itself, the next attempt goes elsewhere. */
static void recovery_at_second_jp(world_t *w, uint8_t *resp, size_t *r)
{
    static const uint8_t r2[8] = {0xd0, 0xd1, 0xd2, 0xd3,
                                  0xd4, 0xd5, 0xd6, 0xd7};
    uint64_t piv1;

    /* a first attempt (JP 0) times out, so the next one goes to JP 1,
     * the last entry of the table, and is answered with a 4.01 */
    world_init(w, 2);
    CHECK_EQ(cj_pledge_start(&w->p, w->now), CJ_OK);
    poll_send(w, NULL);
    attempt_times_out(w);
    *r = recovery_401(w, r2, resp, &piv1);
    CHECK_EQ(w->out.to.b[1], 1);
    if (*r == 0)
        return;
    CHECK_EQ(feed(w, resp, *r), 1);
    CHECK_EQ(w->out.event, CJ_PLEDGE_EV_RECOVERY);
}

TEST(pledge_recovery_jp_withdrawn)
{
    static world_t w;
    uint8_t resp[BUF];
    cj_addr_t a0 = addr(0), a1 = addr(1), a5 = addr(5);
    size_t r;

    /* JP 0 withdrawn: JP 1 moves to its place and keeps the recovery
     * (JP 5, offered next, takes the place JP 1 left) */
    recovery_at_second_jp(&w, resp, &r);
    if (r == 0)
        return;
    CHECK_EQ(cj_pledge_remove_jp(&w.p, &a0), CJ_OK);
    CHECK_EQ(cj_pledge_add_jp(&w.p, &a5, net_cafe, 2), CJ_OK);
    poll_send(&w, NULL);
    CHECK_EQ(w.out.to.b[1], 1);

    /* JP 1 itself withdrawn: the next attempt goes to JP 0 */
    recovery_at_second_jp(&w, resp, &r);
    if (r == 0)
        return;
    CHECK_EQ(cj_pledge_remove_jp(&w.p, &a1), CJ_OK);
    poll_send(&w, NULL);
    CHECK_EQ(w.out.to.b[1], 0);
}
#else
/* CJ_PLEDGE_RECOVERY 0: the JRC's recovery 4.01 is dropped like any
 * message that does not verify in the current context (section 7.3.2),
 * the R2/R3 counters are never written and the pledge keeps the
 * pledge-identifier context. */
TEST(pledge_recovery_disabled)
{
    static world_t w;
    uint8_t req[BUF], resp[BUF];
    uint8_t r2[8] = {0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7};
    cj_oscore_option_t ov;
    size_t n, r;
    uint64_t piv1;

    world_init(&w, 2);
    r = recovery_401(&w, r2, resp, &piv1);
    if (r == 0)
        return;
    expect_dropped(&w, resp, r);
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_JOINING);
    for (unsigned i = 0; i < CJ_MEM_COUNTERS; i++)
        CHECK(!w.mem.used[i] ||
              (w.mem.ids[i] != w.cfg.counter_base + CJ_PLEDGE_CTR_R2 &&
               w.mem.ids[i] != w.cfg.counter_base + CJ_PLEDGE_CTR_R3));
    CHECK_MEM(w.p.osc.id_context, w.p.osc.id_context_len, pid, sizeof pid);

    /* The retransmission still names the pledge identifier. */
    w.now = cj_pledge_next_timer(&w.p);
    n = poll_send(&w, req);
    CHECK(n > 0);
    if (!oscore_opt_of(req, n, &ov))
        return;
    CHECK(ov.has_kid_context);
    CHECK_MEM(ov.kid_context, ov.kid_context_len, pid, sizeof pid);
    CHECK_EQ(piv_of(req, n), piv1); /* byte-identical retransmission */
}
#endif

/* ---- review fixes ------------------------------------------------------------ */

#if CJ_PLEDGE_RECOVERY
/* Counter n (relative to counter_base) of the in-memory platform. */
static bool mem_ctr(const world_t *w, uint32_t n, uint64_t *v)
{
    for (unsigned i = 0; i < CJ_MEM_COUNTERS; i++)
        if (w->mem.used[i] && w->mem.ids[i] == w->cfg.counter_base + n) {
            if (v)
                *v = w->mem.values[i];
            return true;
        }
    return false;
}

/* Run the outstanding attempt out: retransmissions until the TIMEOUT. */
static void run_to_timeout(world_t *w)
{
    for (int i = 0; i < 16; i++) {
        w->now = cj_pledge_next_timer(&w->p);
        if (cj_pledge_poll(&w->p, w->now, &w->out) == 1 &&
            w->out.event == CJ_PLEDGE_EV_TIMEOUT)
            return;
    }
    CHECK(!"attempt timed out");
}

/* M1 (RFC 8613 Appendix B.2 step 5): R2 || R3 is on trial until a
 * response under it verifies.  Nothing is durable after the 4.01 (a
 * reboot finds ID1), and when the attempt under R2 || R3 times out (the
 * JRC lost R2) the next one goes back to ID1, with a sequence number
 * above every one used before.  Before the fix the pair was written at
 * once and kept for ever. */
TEST(pledge_recovery_trial_falls_back_to_id1)
{
    static world_t w;
    static cj_pledge_t q;
    uint8_t req[BUF], resp[BUF];
    uint8_t r2[8] = {0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7};
    cj_oscore_option_t ov;
    size_t n, r;
    uint64_t piv1, piv2;

    world_init(&w, 2);
    r = recovery_401(&w, r2, resp, &piv1);
    if (r == 0)
        return;
    CHECK_EQ(feed(&w, resp, r), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_RECOVERY);
    CHECK(!mem_ctr(&w, CJ_PLEDGE_CTR_R2, NULL));
    CHECK(!mem_ctr(&w, CJ_PLEDGE_CTR_R3, NULL));
    CHECK(!mem_ctr(&w, CJ_PLEDGE_CTR_PAIR, NULL));
    /* a reboot now would come back with the pledge-id context */
    CHECK_EQ(cj_pledge_init(&q, &w.cfg, &w.mem.port), CJ_OK);
    CHECK_MEM(q.osc.id_context, q.osc.id_context_len, pid, sizeof pid);

    /* request #2 under R2 || R3 goes unanswered */
    n = poll_send(&w, req);
    piv2 = piv_of(req, n);
    CHECK(piv2 > piv1);
    if (!oscore_opt_of(req, n, &ov))
        return;
    CHECK_EQ(ov.kid_context_len, 16);
    run_to_timeout(&w);

    /* the next attempt is back on ID1, numbers still growing */
    n = poll_send(&w, req);
    if (!oscore_opt_of(req, n, &ov))
        return;
    CHECK_MEM(ov.kid_context, ov.kid_context_len, pid, sizeof pid);
    CHECK(piv_of(req, n) > piv2);
    CHECK_MEM(w.p.osc.id_context, w.p.osc.id_context_len, pid, sizeof pid);
    /* and a JRC that answers under ID1 is heard */
    r = jrc_answer(&w.jrc, req, n, CJ_COAP_CHANGED, NULL, 0, resp);
    CHECK_EQ(feed(&w, resp, r), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_REJECTED); /* no keys: verified */
    CHECK(!mem_ctr(&w, CJ_PLEDGE_CTR_PAIR, NULL));
}

/* A platform that logs the order of counter writes and fails the k-th. */
typedef struct order_pf {
    cj_platform_t port;
    cj_mem_platform_t *mem;
    uint32_t ids[32];
    unsigned n;
    unsigned fail_at; /* 1-based index of the write to fail; 0: none */
} order_pf_t;

static int order_store(void *ctx, uint32_t id, uint64_t v)
{
    order_pf_t *o = ctx;
    unsigned k = o->n + 1;
    if (o->fail_at == k) {
        o->fail_at = 0;
        return CJ_ERR_STORAGE;
    }
    if (o->n < 32)
        o->ids[o->n] = id;
    o->n++;
    return o->mem->port.counter_store(o->mem->port.ctx, id, v);
}

static int order_load(void *ctx, uint32_t id, uint64_t *v)
{
    order_pf_t *o = ctx;
    return o->mem->port.counter_load(o->mem->port.ctx, id, v);
}

/* M1 persistence order: after response #2 verified, R2, R3 and the
 * "pair valid" marker are written, marker last, then the new context's
 * replay window; a failure at any of these writes drops the response
 * (nothing applied, the trial goes on) and a restart finds ID1; the
 * JRC's repeated response is then accepted. */
TEST(pledge_recovery_confirm_order_and_failures)
{
    static world_t w;
    static cj_pledge_t q;
    static order_pf_t o;
    static cj_oscore_ctx_t c3;
    uint8_t req[BUF], resp[BUF], copy[BUF], cfg[64];
    uint8_t r2[8] = {0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7};
    cj_oscore_option_t ov;
    size_t n, r, cl = cj_hex(APPX_A_CONFIG, cfg, sizeof cfg);
    uint64_t piv1;
    uint32_t b = 10;

    world_cfg(&w);
    memset(&o, 0, sizeof o);
    o.mem = &w.mem;
    o.port.ctx = &o;
    o.port.counter_store = order_store;
    o.port.counter_load = order_load;
    CHECK_EQ(cj_pledge_init(&w.p, &w.cfg, &o.port), CJ_OK);
    jrc_ctx(&w.jrc, pid, sizeof pid);
    {
        cj_addr_t a = addr(0);
        CHECK_EQ(cj_pledge_add_jp(&w.p, &a, net_cafe, 2), CJ_OK);
    }
    r = recovery_401(&w, r2, resp, &piv1);
    if (r == 0)
        return;
    CHECK_EQ(feed(&w, resp, r), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_RECOVERY);
    n = poll_send(&w, req);
    if (!oscore_opt_of(req, n, &ov) || ov.kid_context_len != 16)
        return;
    jrc_ctx(&c3, ov.kid_context, 16);
    r = jrc_answer(&c3, req, n, CJ_COAP_CHANGED, cfg, cl, resp);

    for (unsigned k = 1; k <= 4; k++) {
        unsigned before = o.n;
        o.fail_at = before + k;
        memcpy(copy, resp, r);
        CHECK_EQ(feed(&w, copy, r), 0);
        CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_JOINING);
        CHECK_EQ(cj_pledge_init(&q, &w.cfg, &o.port), CJ_OK);
        if (k < 4) /* the pair is not complete: ID1 after a restart */
            CHECK_MEM(q.osc.id_context, q.osc.id_context_len, pid, 8);
        if (k == 4) {
            /* the pair is durable (R2, R3, marker last), only the window
             * that follows failed */
            CHECK_MEM(q.osc.id_context, q.osc.id_context_len,
                      ov.kid_context, 16);
            CHECK_EQ(o.n, before + 3);
            CHECK_EQ(o.ids[before], b + CJ_PLEDGE_CTR_R2);
            CHECK_EQ(o.ids[before + 1], b + CJ_PLEDGE_CTR_R3);
            CHECK_EQ(o.ids[before + 2], b + CJ_PLEDGE_CTR_PAIR);
        }
    }
    o.n = 0;
    memcpy(copy, resp, r);
    CHECK_EQ(feed(&w, copy, r), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_JOINED);
    /* then the window of the new context */
    CHECK_EQ(o.n, 1);
    CHECK_EQ(o.ids[0], b + CJ_PLEDGE_CTR_REPLAY);
    CHECK_EQ(cj_pledge_init(&q, &w.cfg, &o.port), CJ_OK);
    CHECK_MEM(q.osc.id_context, q.osc.id_context_len, ov.kid_context, 16);
    CHECK(q.osc.replay.valid);
}

/* Low: a torn write of a later pair (a new R2 beside the old R3, as a
 * power cut between the two writes leaves it) never yields a mixed
 * context: the marker does not match, the pledge starts on ID1.  Before
 * the fix R2 || R3 was used whenever both counters existed. */
TEST(pledge_recovery_torn_pair_write)
{
    static world_t w;
    static cj_oscore_ctx_t c3;
    uint8_t req[BUF], resp[BUF], cfg[64];
    uint8_t r2[8] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7};
    cj_oscore_option_t ov;
    size_t n, r, cl = cj_hex(APPX_A_CONFIG, cfg, sizeof cfg);
    uint64_t piv1, r2v = 0;

    world_init(&w, 1);
    r = recovery_401(&w, r2, resp, &piv1);
    if (r == 0)
        return;
    CHECK_EQ(feed(&w, resp, r), 1);
    n = poll_send(&w, req);
    if (!oscore_opt_of(req, n, &ov) || ov.kid_context_len != 16)
        return;
    jrc_ctx(&c3, ov.kid_context, 16);
    r = jrc_answer(&c3, req, n, CJ_COAP_CHANGED, cfg, cl, resp);
    CHECK_EQ(feed(&w, resp, r), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_JOINED);
    world_boot(&w);
    CHECK_EQ(w.p.osc.id_context_len, 16);
    /* torn: only R2 of a next pair reached storage */
    CHECK(mem_ctr(&w, CJ_PLEDGE_CTR_R2, &r2v));
    CHECK_EQ(w.mem.port.counter_store(w.mem.port.ctx,
                                      w.cfg.counter_base + CJ_PLEDGE_CTR_R2,
                                      r2v ^ 0x0102030405060708u),
             CJ_OK);
    world_boot(&w);
    CHECK_MEM(w.p.osc.id_context, w.p.osc.id_context_len, pid, sizeof pid);
    CHECK_EQ(w.p.ctx_tag, 0);
}
#endif

/* M6: OSCORE decrypts in place; the Configuration (with its link-layer
 * keys) must not stay in the caller's buffer, for a Join Response or a
 * parameter update.  Before the fix the plaintext was left in msg. */
TEST(pledge_plaintext_wiped_from_input)
{
    static world_t w;
    uint8_t req[BUF], resp[BUF], key[16], upd[BUF], cfgb[BUF];
    cj_cojp_config_t c;
    size_t n, r, cl, un;
    bool found = false;

    world_init(&w, 1);
    cj_hex(APPX_A_KEY, key, sizeof key);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    n = poll_send(&w, req);
    {
        uint8_t cfga[64];
        cl = cj_hex(APPX_A_CONFIG, cfga, sizeof cfga);
        r = jrc_answer(&w.jrc, req, n, CJ_COAP_CHANGED, cfga, cl, resp);
    }
    CHECK_EQ(feed(&w, resp, r), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_JOINED);
    for (size_t i = 0; i + 16 <= r; i++)
        found |= memcmp(resp + i, key, 16) == 0;
    CHECK(!found);

    /* an update with a new key set */
    memset(&c, 0, sizeof c);
    memset(key, 0x5c, sizeof key);
    c.key_count = 1;
    c.keys[0].key_id = 2;
    c.keys[0].key = key;
    cl = config_bytes(&c, cfgb);
    un = jrc_update(&w.jrc, 0x777, cfgb, cl, upd);
    CHECK_EQ(feed(&w, upd, un), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_UPDATED);
    found = false;
    for (size_t i = 0; i + 16 <= un; i++)
        found |= memcmp(upd + i, key, 16) == 0;
    CHECK(!found);
    /* a tampered one is wiped too (unprotect wipes on a bad tag) */
    un = jrc_update(&w.jrc, 0x778, cfgb, cl, upd);
    upd[un - 1] ^= 1;
    CHECK_EQ(feed(&w, upd, un), 0);
    found = false;
    for (size_t i = 0; i + 16 <= un; i++)
        found |= memcmp(upd + i, key, 16) == 0;
    CHECK(!found);
}

/* Section 8.4.4: "If the identifier is invalid, the decoder MUST silently
 * ignore the Short_Identifier object."  A Join Response with keys and an
 * invalid short identifier joins without one (before the fix: REJECTED
 * with a Malformed report). */
TEST(pledge_join_invalid_short_id_ignored)
{
    static world_t w;
    uint8_t cfgb[BUF];
    size_t n = cj_hex("a2 02 820150 e6bf4287c2d7618d6a9687445ffd33e6 "
                      "03 81 43 af9300",
                      cfgb, sizeof cfgb);

    world_init(&w, 1);
    join_with(&w, cfgb, n);
    CHECK_EQ(cj_pledge_keys(&w.p, NULL), 1);
    CHECK_EQ(cj_pledge_short_id(&w.p, NULL, NULL), CJ_ERR_NOTFOUND);
    /* 0xffff is invalid too */
    n = cj_hex("a2 02 820150 e6bf4287c2d7618d6a9687445ffd33e6 03 81 42 ffff",
               cfgb, sizeof cfgb);
    world_init(&w, 1);
    join_with(&w, cfgb, n);
    CHECK_EQ(cj_pledge_short_id(&w.p, NULL, NULL), CJ_ERR_NOTFOUND);
}

/* Low: the cached update response goes back only to the source of the
 * request answered (before the fix any source that echoed MID, Partial
 * IV and tag got it); a NON duplicate is dropped by the replay window,
 * as pledge.h now says. */
TEST(pledge_update_duplicate_same_source_only)
{
    static world_t w;
    uint8_t upd[BUF], copy[BUF], cfgb[BUF];
    static const uint8_t sid[2] = {0x00, 0x21};
    cj_cojp_config_t c;
    cj_addr_t other = addr(9);
    size_t n, un;

    world_init(&w, 1);
    join_appx_a(&w);
    memset(&c, 0, sizeof c);
    c.short_id = sid;
    n = config_bytes(&c, cfgb);
    un = jrc_update(&w.jrc, 0x901, cfgb, n, upd);
    memcpy(copy, upd, un);
    CHECK_EQ(feed(&w, copy, un), 1);
    /* the duplicate from elsewhere: nothing */
    memcpy(copy, upd, un);
    CHECK_EQ(cj_pledge_input(&w.p, w.now, &other, copy, un, &w.out), 0);
    CHECK_EQ(w.out.len, 0);
    /* from the same source: the cached bytes */
    memcpy(copy, upd, un);
    CHECK_EQ(feed(&w, copy, un), 1);
    CHECK(w.out.len > 0);

    /* NON: answered once, the duplicate is dropped */
    {
        cj_coap_builder_t b;
        cj_oscore_req_t bind;
        uint8_t plain[BUF];
        int k;
        cj_coap_build_init(&b, plain, sizeof plain, CJ_COAP_NON,
                           CJ_COAP_POST, 0x902, upd_token, sizeof upd_token);
        cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "6tisch.arpa");
        cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "j");
        cj_coap_build_payload(&b, cfgb, n);
        k = cj_coap_build_finish(&b);
        CHECK(k > 0);
        k = cj_oscore_protect_request(&w.jrc, plain, (size_t)k, upd, BUF,
                                      &bind);
        CHECK(k > 0);
        un = k > 0 ? (size_t)k : 0;
        memcpy(copy, upd, un);
        CHECK_EQ(feed(&w, copy, un), 1);
        memcpy(copy, upd, un);
        CHECK_EQ(feed(&w, copy, un), 0);
    }
}

/* Low: a 6LBR update that switches keys and ends the lease (lease 0)
 * reports LEASE_EXPIRED and then, queued, KEYS_SWITCHED (before the fix
 * the key switch happened but its event was suppressed). */
TEST(pledge_lease_zero_6lbr_keys_switched)
{
    static world_t w;
    uint8_t upd[BUF], cfgb[BUF], key[16];
    static const uint8_t sid[2] = {0x00, 0x22};
    cj_cojp_config_t c;
    size_t n, un;

    world_cfg(&w);
    w.cfg.role = CJ_COJP_ROLE_6LBR;
    world_boot(&w);
    jrc_ctx(&w.jrc, pid, sizeof pid);
    {
        cj_addr_t a = addr(0);
        CHECK_EQ(cj_pledge_add_jp(&w.p, &a, net_cafe, 2), CJ_OK);
    }
    join_appx_a(&w);
    memset(&c, 0, sizeof c);
    memset(key, 0x6b, sizeof key);
    c.key_count = 1;
    c.keys[0].key_id = 7;
    c.keys[0].key = key;
    c.short_id = sid;
    c.has_lease_time = true;
    c.lease_time = 0;
    n = config_bytes(&c, cfgb);
    un = jrc_update(&w.jrc, 0x903, cfgb, n, upd);
    CHECK_EQ(feed(&w, upd, un), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_LEASE_EXPIRED);
    CHECK_EQ(cj_pledge_next_timer(&w.p), 0);
    CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_KEYS_SWITCHED);
    CHECK(cj_pledge_tx_key(&w.p, CJ_PLEDGE_K2) != NULL &&
          cj_pledge_tx_key(&w.p, CJ_PLEDGE_K2)->key_id == 7);
}

/* M5 (pledge side): the retransmission timeout doubles saturating, so a
 * large MAX_RETRANSMIT never wraps it to a short one (before the fix the
 * 32-bit timeout wrapped to 0 after about 20 doublings); an empty ACK
 * from another source than the JP is ignored. */
TEST(pledge_timeouts_saturate)
{
    static world_t w;
    uint8_t req[BUF], ack[4];
    uint64_t last = 0;
    cj_addr_t other = addr(9);

    world_cfg(&w);
    w.cfg.timing.ack_timeout_ms = 10000;
    w.cfg.timing.ack_random_factor_pct = 150;
    w.cfg.timing.max_retransmit = 40;
    world_boot(&w);
    {
        cj_addr_t a = addr(0);
        CHECK_EQ(cj_pledge_add_jp(&w.p, &a, net_cafe, 2), CJ_OK);
    }
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    poll_send(&w, req);
    /* an empty ACK from elsewhere does not stop the retransmissions */
    ack[0] = 0x60;
    ack[1] = 0;
    ack[2] = (uint8_t)(w.p.mid >> 8);
    ack[3] = (uint8_t)w.p.mid;
    CHECK_EQ(cj_pledge_input(&w.p, w.now, &other, ack, 4, &w.out), 0);
    CHECK(!w.p.acked);
    for (int i = 0; i < 40; i++) {
        uint64_t t = cj_pledge_next_timer(&w.p);
        CHECK(t > w.now);
        CHECK(t - w.now >= last);
        last = t - w.now;
        w.now = t;
        CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 1);
        CHECK(w.out.len > 0);
    }
    CHECK(last >= UINT32_MAX / 2u);
    /* the empty ACK from the JP: the remaining wait saturates too */
    ack[2] = (uint8_t)(w.p.mid >> 8);
    ack[3] = (uint8_t)w.p.mid;
    CHECK_EQ(feed(&w, ack, 4), 0);
    CHECK(w.p.acked);
    CHECK(cj_pledge_next_timer(&w.p) > w.now);
}

/* ---- RFC 9031 Appendix B: the context given, not derived ------------------ */

/* cj_pledge_okm() yields the context a PSK pledge derives, and a pledge
 * given it (no PSK) joins as in Appendix A. */
TEST(pledge_okm_appendix_b)
{
    static world_t a, b;
    static uint8_t okm[CJ_OSCORE_OKM_LEN];
    const cj_pledge_key_t *keys;
    uint8_t ra[BUF], rb[BUF], pa[BUF], pb[BUF];
    cj_oscore_req_t bind;
    size_t na, nb;
    int ka, kb;

#if CJ_OSCORE_DERIVE
    {
        uint8_t mine[CJ_OSCORE_OKM_LEN];
        CHECK_EQ(cj_pledge_okm(pid, sizeof pid, psk, mine), CJ_OK);
        CHECK_HEX(mine, sizeof mine, PID_OKM);
    }
#endif
    world_init(&a, 1);
    world_init_okm(&b, 1, okm);
    CHECK_MEM(b.p.osc.sender_key, CJ_OSCORE_KEY_LEN, a.p.osc.sender_key,
              CJ_OSCORE_KEY_LEN);
    CHECK_MEM(b.p.osc.recipient_key, CJ_OSCORE_KEY_LEN,
              a.p.osc.recipient_key, CJ_OSCORE_KEY_LEN);
    CHECK_MEM(b.p.osc.common_iv, CJ_OSCORE_NONCE_LEN, a.p.osc.common_iv,
              CJ_OSCORE_NONCE_LEN);
    CHECK_MEM(b.p.osc.id_context, b.p.osc.id_context_len, pid, sizeof pid);
    CHECK_MEM(okm, CJ_OSCORE_KEY_LEN, a.p.osc.sender_key, CJ_OSCORE_KEY_LEN);

    /* the first Join Requests open to the same plaintext under the JRC's
     * PSK-derived context */
    CHECK_EQ(cj_pledge_start(&a.p, a.now), CJ_OK);
    CHECK_EQ(cj_pledge_start(&b.p, b.now), CJ_OK);
    na = poll_send(&a, ra);
    nb = poll_send(&b, rb);
    ka = jrc_open(&a.jrc, ra, na, &bind, pa, sizeof pa);
    kb = jrc_open(&b.jrc, rb, nb, &bind, pb, sizeof pb);
    CHECK(ka > 4 && kb > 4);
    if (ka > 4 && kb > 4) {
        cj_coap_msg_t ma, mb;
        CHECK_EQ(cj_coap_parse(&ma, pa, (size_t)ka), CJ_OK);
        CHECK_EQ(cj_coap_parse(&mb, pb, (size_t)kb), CJ_OK);
        CHECK_MEM(mb.payload, mb.payload_len, ma.payload, ma.payload_len);
    }
    CHECK_EQ(piv_of(rb, nb), piv_of(ra, na));

    /* and b joins (its own attempt, answered as in Appendix A) */
    world_init_okm(&b, 1, okm);
    join_appx_a(&b);
    CHECK_EQ(cj_pledge_get_state(&b.p), CJ_PLEDGE_JOINED);
    CHECK_EQ(cj_pledge_keys(&b.p, &keys), 1);
    CHECK_HEX(keys[0].key, 16, APPX_A_KEY);

    CHECK_EQ(cj_pledge_okm(pid, 0, psk, okm), CJ_ERR_INVALID);
    CHECK_EQ(cj_pledge_okm(NULL, sizeof pid, psk, okm), CJ_ERR_INVALID);
    CHECK_EQ(cj_pledge_okm(pid, sizeof pid, NULL, okm), CJ_ERR_INVALID);
    CHECK_EQ(cj_pledge_okm(pid, CJ_OSCORE_MAX_ID_CONTEXT + 1, psk, okm),
             CJ_ERR_INVALID);
#if !CJ_OSCORE_DERIVE
    /* nothing to derive with in this build */
    CHECK_EQ(cj_pledge_okm(pid, sizeof pid, psk, okm), CJ_ERR_INVALID);
#endif
}

#if CJ_PLEDGE_RECOVERY
/* Recovery derives R2 || ID1 from the PSK; a pledge given its context
 * cannot, so the 4.01 is dropped as one that does not verify, and the
 * pledge keeps the pledge identifier and writes no R2/R3. */
TEST(pledge_okm_no_recovery)
{
    static world_t w;
    static uint8_t okm[CJ_OSCORE_OKM_LEN];
    uint8_t resp[BUF];
    uint8_t r2[8] = {0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7};
    uint64_t piv1;
    size_t r;

    world_init_okm(&w, 2, okm);
    r = recovery_401(&w, r2, resp, &piv1);
    if (r == 0)
        return;
    expect_dropped(&w, resp, r);
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_JOINING);
    CHECK_MEM(w.p.osc.id_context, w.p.osc.id_context_len, pid, sizeof pid);
    for (unsigned i = 0; i < CJ_MEM_COUNTERS; i++)
        CHECK(!w.mem.used[i] ||
              w.mem.ids[i] != w.cfg.counter_base + CJ_PLEDGE_CTR_R2);
}
#endif

#if !CJ_OSCORE_DERIVE
/* This build cannot derive a context: a configuration without one is
 * refused. */
TEST(pledge_light_needs_okm)
{
    static world_t w;
    world_cfg(&w);
    w.cfg.okm = NULL;
    CHECK_EQ(cj_pledge_init(&w.p, &w.cfg, &w.mem.port), CJ_ERR_INVALID);
}
#endif

/* ---- further behaviour of the contract ---------------------------------- */

/* A protected request of type type and code code from the JRC, with
 * token tok (tkl bytes, RFC 8974 lengths allowed), Uri-Host, the npath
 * Uri-Path segments and payload pl; *bind (may be NULL) the binding the
 * pledge answers it under. */
static size_t jrc_request_as(cj_oscore_ctx_t *jrc, uint8_t type, uint8_t code,
                             uint16_t mid, const uint8_t *tok, size_t tkl,
                             const char *const *path, size_t npath,
                             const uint8_t *pl, size_t pllen, uint8_t *out,
                             cj_oscore_req_t *bind)
{
    cj_coap_builder_t b;
    uint8_t msg[BUF];
    int n;

    cj_coap_build_init(&b, msg, sizeof msg, type, code, mid, tok, tkl);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "6tisch.arpa");
    for (size_t i = 0; i < npath; i++)
        cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, path[i]);
    cj_coap_build_payload(&b, pl, pllen);
    n = cj_coap_build_finish(&b);
    CHECK(n > 0);
    n = cj_oscore_protect_request(jrc, msg, (size_t)n, out, BUF, bind);
    CHECK(n > 0);
    return n > 0 ? (size_t)n : 0;
}

/* A protected CON request from the JRC with method code and Uri-Path
 * segments of the caller's choice (npath of them, from path). */
static size_t jrc_request(cj_oscore_ctx_t *jrc, uint8_t code, uint16_t mid,
                          const char *const *path, size_t npath,
                          const uint8_t *pl, size_t pllen, uint8_t *out)
{
    return jrc_request_as(jrc, CJ_COAP_CON, code, mid, upd_token,
                          sizeof upd_token, path, npath, pl, pllen, out, NULL);
}

/* Section 8.2 and pledge.h: a protected request off /j is answered 4.04,
 * one to /j with a method other than POST 4.05; both without payload,
 * without an event, and nothing of their payload is applied. */
TEST(pledge_update_wrong_resource_or_method)
{
    static world_t w;
    static const char *const other[] = {"x"};
    static const char *const deeper[] = {"j", "k"};
    static const char *const j[] = {"j"};
    static const struct {
        uint8_t code;
        const char *const *path;
        size_t npath;
        uint8_t want;
    } cases[] = {
        {CJ_COAP_POST, other, 1, CJ_COAP_NOT_FOUND},
        {CJ_COAP_POST, deeper, 2, CJ_COAP_NOT_FOUND},
        {CJ_COAP_POST, NULL, 0, CJ_COAP_NOT_FOUND},
        {CJ_COAP_GET, j, 1, CJ_COAP_METHOD_NOT_ALLOWED},
        {CJ_COAP_PUT, j, 1, CJ_COAP_METHOD_NOT_ALLOWED},
    };
    static const uint8_t sid[2] = {0x00, 0x31};
    uint8_t cfgb[BUF], upd[BUF], copy[BUF], plain[BUF], s[2];
    cj_cojp_config_t c;
    size_t n;

    world_init(&w, 1);
    join_appx_a(&w);
    memset(&c, 0, sizeof c);
    c.short_id = sid;
    n = config_bytes(&c, cfgb);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cj_coap_msg_t rm, in;
        size_t un = jrc_request(&w.jrc, cases[i].code, (uint16_t)(0xb00 + i),
                                cases[i].path, cases[i].npath, cfgb, n, upd);
        int r;
        memcpy(copy, upd, un);
        CHECK_EQ(feed(&w, copy, un), 1);
        CHECK_EQ(w.out.event, 0);
        CHECK_EQ(cj_coap_parse(&rm, w.buf, w.out.len), CJ_OK);
        CHECK_EQ(rm.type, CJ_COAP_ACK);
        CHECK_EQ(rm.mid, 0xb00 + i);
        r = jrc_open_update_resp(&w.jrc, upd, un, w.buf, w.out.len, plain);
        CHECK(r > 0);
        if (r <= 0)
            continue;
        CHECK_EQ(cj_coap_parse(&in, plain, (size_t)r), CJ_OK);
        CHECK_EQ(in.code, cases[i].want);
        CHECK_EQ(in.payload_len, 0);
        CHECK_EQ(cj_pledge_short_id(&w.p, s, NULL), CJ_OK);
        CHECK_HEX(s, 2, "af93"); /* the Appendix A one stays */
    }
    /* the same Configuration POSTed to /j is applied */
    update_expect(&w, 0xbff, cfgb, n, CJ_COAP_CHANGED, CJ_PLEDGE_EV_UPDATED);
    CHECK_EQ(cj_pledge_short_id(&w.p, s, NULL), CJ_OK);
    CHECK_HEX(s, 2, "0031");
}

/* pledge.h: a Join Response may not give the short identifier a lease of
 * 0 (section 8.4.4: the node would have to stop using it at once).  The
 * attempt is REJECTED, nothing is installed, and the next Join_Request
 * reports [UNSUPPORTED, 3 (short identifier), [identifier, 0]]
 * (sections 8.3.1, 8.4.5). */
TEST(pledge_join_lease_zero_refused)
{
    static world_t w;
    uint8_t cfgb[BUF], req[BUF];
    size_t cl = cj_hex("a2 02 820150 e6bf4287c2d7618d6a9687445ffd33e6 "
                       "03 82 42 af93 00",
                       cfgb, sizeof cfgb);

    world_init(&w, 1);
    /* addinfo in the Short_Identifier structure: [h'af93', 0] */
    join_refused(&w, cfgb, cl, req, "a2 0542cafe 08 830003 8242af9300");
}

/* Section 8.4.3.3: one key value is never used with two MIC lengths.  A
 * key set that gives one value usages of different MIC lengths is
 * refused: in a Join Response the attempt is REJECTED and the next
 * Join_Request names the later key as a key set of one (section 8.4.5);
 * in an update the answer is 4.00 with the same report and the keys in
 * use stay.  One value for K1 and K2 at one MIC length is usable. */
TEST(pledge_key_one_mic_length)
{
    static world_t w;
    uint8_t cfg[BUF], req[BUF], resp[BUF];
    size_t n, n_req, r;

    world_init(&w, 1);
    /* K1 MIC-32 (usage 6) and K2 ENC-MIC-64 (13), one value */
    n = keyset_cfg(cfg, 1, 0x11, 2, 0x11, CJ_COJP_KEY_USAGE_K2_ENC_MIC64);
    n_req = join_refused(&w, cfg, n, req,
                         "a2 0542cafe 08 830002 83020d50 11111111111111111111111111111111");

    /* K1 MIC-32 and K2 ENC-MIC-32, one value: joins */
    n = keyset_cfg(cfg, 1, 0x11, 2, 0x11, CJ_COJP_KEY_USAGE_K2_ENC_MIC32);
    r = jrc_answer(&w.jrc, req, n_req, CJ_COAP_CHANGED, cfg, n, resp);
    CHECK_EQ(feed(&w, resp, r), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_JOINED);
    CHECK_EQ(cj_pledge_keys(&w.p, NULL), 2);

    /* an update adding K2 ENC-MIC-128 (14) under the same value */
    update_rejected(&w,
                    "a1 02 86 01 06 50 11111111111111111111111111111111 03 0e 50 11111111111111111111111111111111",
                    0x400, "830002 83030e50 11111111111111111111111111111111");
    CHECK_EQ(cj_pledge_keys(&w.p, NULL), 2);
    CHECK_EQ(cj_pledge_tx_key(&w.p, CJ_PLEDGE_K2)->key_id, 2);
    CHECK(cj_pledge_rx_key(&w.p, 3) == NULL);
}

/* Section 8.4.3.3: key_addinfo is kept with its key.  A key with key_id
 * 0 is a pairwise key (Key ID Mode 0x00, the peer's address as addinfo):
 * found by rx_key(), never chosen by tx_key() for the group traffic, so
 * with the other key serving K1 only (Table 6) there is no K2 key. */
TEST(pledge_key_addinfo_and_pairwise_key)
{
    static world_t w;
    static const uint8_t peer[8] = {0x02, 0x12, 0x4b, 0, 0x11, 0x22, 0x33,
                                    0x44};
    static const uint8_t src4[4] = {0xde, 0xad, 0xbe, 0xef};
    uint8_t cfgb[BUF], ka[16], kb[16];
    cj_cojp_config_t c;
    const cj_pledge_key_t *k;
    size_t n;

    world_init(&w, 1);
    memset(&c, 0, sizeof c);
    memset(ka, 0x0a, sizeof ka);
    memset(kb, 0x0b, sizeof kb);
    c.key_count = 2;
    c.keys[0].key_id = 0;
    c.keys[0].key_usage = CJ_COJP_KEY_USAGE_K1K2_ENC_MIC32;
    c.keys[0].key = ka;
    c.keys[0].addinfo = peer;
    c.keys[0].addinfo_len = sizeof peer;
    c.keys[1].key_id = 5;
    c.keys[1].key_usage = CJ_COJP_KEY_USAGE_K1_MIC32;
    c.keys[1].key = kb;
    c.keys[1].addinfo = src4;
    c.keys[1].addinfo_len = sizeof src4;
    n = config_bytes(&c, cfgb);
    join_with(&w, cfgb, n);
    CHECK_EQ(cj_pledge_keys(&w.p, NULL), 2);
    k = cj_pledge_rx_key(&w.p, 0);
    CHECK(k != NULL);
    if (k != NULL) {
        CHECK_MEM(k->key, 16, ka, 16);
        CHECK_MEM(k->addinfo, k->addinfo_len, peer, sizeof peer);
    }
    k = cj_pledge_tx_key(&w.p, CJ_PLEDGE_K1);
    CHECK(k != NULL && k->key_id == 5);
    if (k != NULL)
        CHECK_MEM(k->addinfo, k->addinfo_len, src4, sizeof src4);
    CHECK(cj_pledge_tx_key(&w.p, CJ_PLEDGE_K2) == NULL);
}

/* RFC 8613 section 8.3: a response may be protected with the request's
 * nonce instead of a Partial IV of its own.  Such a Join Response joins;
 * it leaves the replay window as it was, so nothing is written for it
 * (RFC 9031 section 7.3.1 asks for a write per window update). */
TEST(pledge_response_without_partial_iv)
{
    static world_t w;
    uint8_t req[BUF], plain[BUF], msg[BUF], resp[BUF], cfg[64];
    cj_oscore_req_t bind;
    cj_oscore_option_t ov;
    cj_coap_msg_t m;
    cj_coap_builder_t b;
    size_t cl = cj_hex(APPX_A_CONFIG, cfg, sizeof cfg);
    unsigned long stores;
    int r;

    (void)first_request(&w, req, &m, &bind, plain);
    cj_coap_build_init(&b, msg, sizeof msg, CJ_COAP_ACK, CJ_COAP_CHANGED,
                       m.mid, m.token, m.token_len);
    cj_coap_build_payload(&b, cfg, cl);
    r = cj_coap_build_finish(&b);
    r = cj_oscore_protect_response(&w.jrc, &bind, false, msg, (size_t)r, resp,
                                   sizeof resp);
    CHECK(r > 0);
    if (r <= 0 || !oscore_opt_of(resp, (size_t)r, &ov))
        return;
    CHECK_EQ(ov.piv_len, 0);
    stores = w.mem.stores;
    CHECK_EQ(feed(&w, resp, (size_t)r), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_JOINED);
    CHECK(!w.p.osc.replay.valid);
    CHECK_EQ(w.mem.stores, stores);
    CHECK_EQ(cj_pledge_keys(&w.p, NULL), 1);
}

/* Section 8.4.4: the lease runs lease_time hours from reception; one too
 * long for the millisecond clock saturates at the latest finite time
 * instead of wrapping to a short lease. */
TEST(pledge_lease_too_long_saturates)
{
    static world_t w;
    static const uint8_t sid[2] = {0x00, 0x32};
    /* the largest lease whose product fits 64 bits, the next one, and
     * the largest encodable */
    static const uint64_t leases[] = {CJ_TIME_NEVER / 3600000u,
                                      CJ_TIME_NEVER / 3600000u + 1,
                                      UINT64_MAX};
    uint8_t cfgb[BUF];
    cj_cojp_config_t c;
    uint64_t exp = 0;

    world_init(&w, 1);
    join_appx_a(&w);
    for (size_t i = 0; i < 3; i++) {
        size_t n;
        memset(&c, 0, sizeof c);
        c.short_id = sid;
        c.has_lease_time = true;
        c.lease_time = leases[i];
        n = config_bytes(&c, cfgb);
        update_expect(&w, (uint16_t)(0xc00 + i), cfgb, n, CJ_COAP_CHANGED,
                      CJ_PLEDGE_EV_UPDATED);
        CHECK_EQ(cj_pledge_short_id(&w.p, NULL, &exp), CJ_OK);
        if (i == 0) /* fits: reception time + lease, to the ms */
            CHECK(exp == w.now + leases[0] * 3600000u);
        else
            CHECK(exp == CJ_TIME_NEVER - 1);
        CHECK(cj_pledge_next_timer(&w.p) == exp);
        CHECK_EQ(cj_pledge_poll(&w.p, w.now + 1000u * 3600000u, &w.out), 0);
        CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_JOINED);
    }
}

/* A network identifier given at init goes with every JP (whatever the
 * JP advertised) in the Join_Request (section 8.4.1); the accessors give
 * the JP and network of the attempt that joined. */
TEST(pledge_configured_network_id)
{
    static world_t w;
    static const uint8_t mine[3] = {0xbe, 0xef, 0x01};
    uint8_t req[BUF], plain[BUF];
    cj_oscore_req_t bind;
    cj_coap_msg_t in;
    const uint8_t *net;
    size_t n, nl = 0;
    int pl;

    world_cfg(&w);
    w.cfg.network_id = mine;
    w.cfg.network_id_len = sizeof mine;
    world_boot(&w);
    world_start(&w, 2);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    for (unsigned a = 0; a < 2; a++) {
        n = poll_send(&w, req);
        CHECK_EQ(w.out.to.b[1], a);
        pl = jrc_open(&w.jrc, req, n, &bind, plain, sizeof plain);
        CHECK(pl > 0);
        if (pl <= 0)
            return;
        CHECK_EQ(cj_coap_parse(&in, plain, (size_t)pl), CJ_OK);
        CHECK_HEX(in.payload, in.payload_len, "a1 05 43 beef01");
        if (a == 0) {
            /* the first JP's JRC refuses: the next attempt, JP 1 */
            uint8_t resp[BUF];
            size_t r = jrc_answer(&w.jrc, req, n, CJ_COAP_BAD_REQUEST, NULL,
                                  0, resp);
            CHECK_EQ(feed(&w, resp, r), 1);
            CHECK_EQ(w.out.event, CJ_PLEDGE_EV_REJECTED);
        }
    }
    {
        uint8_t resp[BUF], cfg[64];
        size_t cl = cj_hex(APPX_A_CONFIG, cfg, sizeof cfg);
        size_t r = jrc_answer(&w.jrc, req, n, CJ_COAP_CHANGED, cfg, cl, resp);
        cj_addr_t a1 = addr(1);
        CHECK_EQ(feed(&w, resp, r), 1);
        CHECK_EQ(w.out.event, CJ_PLEDGE_EV_JOINED);
        CHECK(cj_addr_equal(cj_pledge_joined_jp(&w.p), &a1));
    }
    net = cj_pledge_network_id(&w.p, &nl);
    CHECK_MEM(net, nl, mine, sizeof mine);
}

/* Without a configured network identifier the JP's own goes with the
 * attempt: joined through the second JP, the accessors name it and its
 * network (caff). */
TEST(pledge_joined_jp_is_the_attempts)
{
    static world_t w;
    uint8_t req[BUF], resp[BUF], cfg[64];
    size_t n, r, nl = 0, cl = cj_hex(APPX_A_CONFIG, cfg, sizeof cfg);
    cj_addr_t a1 = addr(1);
    const uint8_t *net;

    world_init(&w, 2);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    poll_send(&w, NULL);
    for (unsigned k = 0; k < CJ_COJP_MAX_RETRANSMIT; k++) {
        w.now = cj_pledge_next_timer(&w.p);
        poll_send(&w, NULL);
    }
    w.now = cj_pledge_next_timer(&w.p);
    CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_TIMEOUT);
    n = poll_send(&w, req);
    CHECK(cj_addr_equal(&w.out.to, &a1));
    r = jrc_answer(&w.jrc, req, n, CJ_COAP_CHANGED, cfg, cl, resp);
    CHECK_EQ(feed(&w, resp, r), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_JOINED);
    CHECK(cj_addr_equal(cj_pledge_joined_jp(&w.p), &a1));
    net = cj_pledge_network_id(&w.p, &nl);
    CHECK_HEX(net, nl, "caff");
}

/* cfg.max_join_attempts replaces COJP_MAX_JOIN_ATTEMPTS (section 8.3.1):
 * with 2, the second failed attempt ends joining with FAILED. */
TEST(pledge_max_join_attempts_configured)
{
    static world_t w;
    uint8_t req[BUF], resp[BUF];
    size_t n, r;

    world_cfg(&w);
    w.cfg.max_join_attempts = 2;
    world_boot(&w);
    world_start(&w, 3);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    for (unsigned a = 0; a < 2; a++) {
        n = poll_send(&w, req);
        r = jrc_answer(&w.jrc, req, n, CJ_COAP_BAD_REQUEST, NULL, 0, resp);
        CHECK_EQ(feed(&w, resp, r), 1);
        CHECK_EQ(w.out.event, CJ_PLEDGE_EV_REJECTED);
    }
    CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_FAILED);
    CHECK_EQ(w.out.len, 0);
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_FAILED);
    CHECK_EQ(cj_pledge_poll(&w.p, w.now + 3600000u, &w.out), 0);
}

/* RFC 7252 section 4.2 with the settings of cfg.timing: a factor below
 * 1 counts as 1 (no random spread), MAX_RETRANSMIT 0 means the first
 * timeout ends the attempt; a zero ACK_TIMEOUT takes Table 1's; and an
 * ACK_TIMEOUT near 2^32 ms still gives a first timeout that fits 32
 * bits. */
TEST(pledge_timing_settings)
{
    static world_t w;
    uint64_t sent, t;

    world_cfg(&w);
    w.cfg.timing.ack_timeout_ms = 2000;
    world_boot(&w);
    world_start(&w, 1);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    poll_send(&w, NULL);
    sent = w.now;
    CHECK_EQ(cj_pledge_next_timer(&w.p), sent + 2000);
    CHECK_EQ(cj_pledge_poll(&w.p, sent + 1999, &w.out), 0);
    w.now = sent + 2000;
    CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_TIMEOUT); /* no retransmission */
    CHECK_EQ(w.out.len, 0);

    /* ACK_TIMEOUT 0: Table 1's 10 s; factor 0: exactly that */
    world_cfg(&w);
    w.cfg.timing.max_retransmit = 1;
    world_boot(&w);
    world_start(&w, 1);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    poll_send(&w, NULL);
    CHECK_EQ(cj_pledge_next_timer(&w.p), w.now + CJ_COJP_ACK_TIMEOUT_MS);
    w.now += CJ_COJP_ACK_TIMEOUT_MS;
    poll_send(&w, NULL); /* the one retransmission */
    CHECK_EQ(cj_pledge_next_timer(&w.p), w.now + 2 * CJ_COJP_ACK_TIMEOUT_MS);

    /* the spread is capped so that the timeout fits 32 bits */
    for (int run = 0; run < 8; run++) {
        world_cfg(&w);
        w.cfg.timing.ack_timeout_ms = UINT32_MAX - 1000u;
        w.cfg.timing.ack_random_factor_pct = 300;
        world_boot(&w);
        world_start(&w, 1);
        CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
        poll_send(&w, NULL);
        t = cj_pledge_next_timer(&w.p) - w.now;
        CHECK(t >= UINT32_MAX - 1000u);
        CHECK(t <= UINT32_MAX);
    }
}

/* RFC 7252 section 5.2.2: an empty ACK of the Join Request stops the
 * retransmissions; the separate response then has what the
 * retransmissions had left, and after that the attempt ends with
 * TIMEOUT, nothing sent.  Empty messages that are not that ACK (another
 * MID, CON or NON, a second ACK) change nothing. */
TEST(pledge_separate_response_wait)
{
    static world_t w;
    uint8_t req[BUF], e[4];
    cj_coap_msg_t m;
    uint64_t sent, first, deadline, end = 0;
    size_t n;

    world_init(&w, 1);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    n = poll_send(&w, req);
    CHECK_EQ(cj_coap_parse(&m, req, n), CJ_OK);
    sent = w.now;
    first = cj_pledge_next_timer(&w.p) - sent;
    /* every timeout of the attempt: first * (2^(MAX_RETRANSMIT+1) - 1) */
    for (unsigned k = 0; k <= CJ_COJP_MAX_RETRANSMIT; k++)
        end += first << k;

    e[1] = CJ_COAP_EMPTY;
    e[2] = (uint8_t)((m.mid + 1) >> 8);
    e[3] = (uint8_t)(m.mid + 1);
    e[0] = 0x60; /* ACK, another MID */
    expect_dropped(&w, e, 4);
    e[2] = (uint8_t)(m.mid >> 8);
    e[3] = (uint8_t)m.mid;
    e[0] = 0x40; /* CON (a ping) */
    expect_dropped(&w, e, 4);
    e[0] = 0x50; /* NON */
    expect_dropped(&w, e, 4);

    w.now = sent + 100;
    e[0] = 0x60;
    CHECK_EQ(feed(&w, e, 4), 0);
    CHECK_EQ(w.out.len, 0);
    deadline = w.now + end;
    CHECK_EQ(cj_pledge_next_timer(&w.p), deadline);
    /* a duplicate ACK, later, does not extend the wait */
    w.now += 50;
    expect_dropped(&w, e, 4);
    CHECK_EQ(cj_pledge_next_timer(&w.p), deadline);
    /* no retransmission when the first timeout is over */
    CHECK_EQ(cj_pledge_poll(&w.p, sent + first, &w.out), 0);
    CHECK_EQ(w.out.len, 0);
    CHECK_EQ(cj_pledge_poll(&w.p, deadline - 1, &w.out), 0);
    w.now = deadline;
    CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_TIMEOUT);
    CHECK_EQ(w.out.len, 0);
    /* once the attempt is over, an ACK of it changes nothing */
    expect_dropped(&w, e, 4);
}

/* RFC 8613 section 7.2.1: a context whose sequence numbers are used up
 * must not protect another message.  A pledge whose persisted mark is
 * past the last number sends nothing and ends joining with FAILED at
 * once: no later attempt could do better. */
TEST(pledge_sequence_numbers_exhausted)
{
    static world_t w;

    world_cfg(&w);
    CHECK_EQ(w.mem.port.counter_store(w.mem.port.ctx,
                                      w.cfg.counter_base + CJ_PLEDGE_CTR_SSN,
                                      CJ_OSCORE_MAX_SSN + 1),
             CJ_OK);
    world_boot(&w);
    world_start(&w, 2);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    CHECK_EQ(cj_pledge_poll(&w.p, w.now, &w.out), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_FAILED);
    CHECK_EQ(w.out.len, 0);
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_FAILED);
    CHECK_EQ(cj_pledge_next_timer(&w.p), CJ_TIME_NEVER); /* not queued */
    CHECK_EQ(cj_pledge_poll(&w.p, w.now + 3600000u, &w.out), 0);
    CHECK_EQ(w.out.len, 0);
}

/* A platform that fails the load of one counter id. */
static struct {
    cj_platform_t port;
    cj_mem_platform_t *mem;
    uint32_t fail_id;
} one_fail;

static int one_fail_load(void *ctx, uint32_t id, uint64_t *v)
{
    (void)ctx;
    if (id == one_fail.fail_id)
        return CJ_ERR_STORAGE;
    return one_fail.mem->port.counter_load(one_fail.mem->port.ctx, id, v);
}

static int one_fail_store(void *ctx, uint32_t id, uint64_t v)
{
    (void)ctx;
    return one_fail.mem->port.counter_store(one_fail.mem->port.ctx, id, v);
}

/* pledge.h: CJ_ERR_STORAGE when loading fails, whichever counter it is
 * (the sequence number mark or the replay window), and nothing of the
 * context derived so far is left in the struct. */
TEST(pledge_init_load_failures)
{
    static world_t w;
    static const uint32_t which[] = {CJ_PLEDGE_CTR_SSN, CJ_PLEDGE_CTR_REPLAY};
    static const uint8_t zero[sizeof(cj_pledge_t)];

    world_cfg(&w);
    one_fail.mem = &w.mem;
    one_fail.port = w.mem.port;
    one_fail.port.counter_load = one_fail_load;
    one_fail.port.counter_store = one_fail_store;
    for (size_t i = 0; i < 2; i++) {
        one_fail.fail_id = w.cfg.counter_base + which[i];
        memset(&w.p, 0x5a, sizeof w.p);
        CHECK_EQ(cj_pledge_init(&w.p, &w.cfg, &one_fail.port),
                 CJ_ERR_STORAGE);
        CHECK(memcmp(&w.p, zero, sizeof w.p) == 0);
    }
    /* counters that do not exist yet are not a failure */
    one_fail.fail_id = w.cfg.counter_base + CJ_PLEDGE_COUNTERS;
    CHECK_EQ(cj_pledge_init(&w.p, &w.cfg, &one_fail.port), CJ_OK);
    /* a platform without counters cannot keep the state section 7.3.1
     * requires */
    one_fail.port.counter_load = NULL;
    CHECK_EQ(cj_pledge_init(&w.p, &w.cfg, &one_fail.port), CJ_ERR_INVALID);
}

/* pledge.h: CJ_ERR_INVALID for a JP address longer than CJ_ADDR_MAX or
 * a network identifier that is missing while its length is not 0; the
 * table is left as it was. */
TEST(pledge_add_jp_invalid)
{
    static world_t w;
    cj_addr_t a = addr(1);

    world_cfg(&w);
    world_boot(&w);
    CHECK_EQ(cj_pledge_add_jp(&w.p, &a, NULL, 2), CJ_ERR_INVALID);
    a.len = CJ_ADDR_MAX + 1;
    CHECK_EQ(cj_pledge_add_jp(&w.p, &a, net_cafe, 2), CJ_ERR_INVALID);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_ERR_STATE);
    /* no network identifier at all is allowed: an empty one is sent */
    a = addr(1);
    CHECK_EQ(cj_pledge_add_jp(&w.p, &a, NULL, 0), CJ_OK);
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    {
        uint8_t req[BUF], plain[BUF];
        cj_oscore_req_t bind;
        cj_coap_msg_t in;
        size_t n = poll_send(&w, req);
        int pl;
        jrc_ctx(&w.jrc, pid, sizeof pid);
        pl = jrc_open(&w.jrc, req, n, &bind, plain, sizeof plain);
        CHECK(pl > 0);
        if (pl > 0) {
            CHECK_EQ(cj_coap_parse(&in, plain, (size_t)pl), CJ_OK);
            CHECK_HEX(in.payload, in.payload_len, "a1 05 40");
        }
    }
}

/* A response that names the pledge's own ID Context as 'kid context'
 * (RFC 8613 section 6.1 lets a sender include it) is no recovery
 * request: it is verified in the current context and joins. */
TEST(pledge_response_with_own_kid_context)
{
    static world_t w;
    uint8_t req[BUF], resp[BUF], cfg[64];
    cj_oscore_option_t ov;
    size_t n, r, cl = cj_hex(APPX_A_CONFIG, cfg, sizeof cfg);

    world_init(&w, 1);
    w.jrc.send_kid_context = true;
    CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
    n = poll_send(&w, req);
    r = jrc_answer(&w.jrc, req, n, CJ_COAP_CHANGED, cfg, cl, resp);
    if (!oscore_opt_of(resp, r, &ov))
        return;
    CHECK(ov.has_kid_context);
    CHECK_MEM(ov.kid_context, ov.kid_context_len, pid, sizeof pid);
    CHECK_EQ(feed(&w, resp, r), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_JOINED);
    CHECK_MEM(w.p.osc.id_context, w.p.osc.id_context_len, pid, sizeof pid);
}

#if CJ_PLEDGE_RECOVERY
/* Section 8.3.3 / RFC 8613 Appendix B.2: only a 4.01 carrying an R2 of
 * CJ_PLEDGE_RECOVERY_NONCE_LEN bytes starts recovery.  An R2 of another
 * length, and a response under R2 || ID1 that verifies but is not a
 * 4.01, are dropped silently with no state change; the pledge stays on
 * the pledge identifier and the genuine 4.01 still works afterwards. */
TEST(pledge_recovery_needs_401_with_nonce)
{
    static world_t w;
    static cj_oscore_ctx_t c2;
    uint8_t req[BUF], plain[BUF], bad[BUF], resp[BUF], cfg[64];
    uint8_t r2[8] = {0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7};
    uint8_t id2[16];
    cj_oscore_req_t bind;
    cj_coap_msg_t m;
    cj_coap_builder_t b;
    size_t cl = cj_hex(APPX_A_CONFIG, cfg, sizeof cfg);
    int k;

    (void)first_request(&w, req, &m, &bind, plain);
    memcpy(id2, r2, 8);
    memcpy(id2 + 8, pid, 8);

    /* a 4.01 whose kid context is 5 bytes of R2 */
    jrc_ctx(&c2, id2, sizeof id2);
    c2.id_context_len = 5;
    c2.send_kid_context = true;
    cj_coap_build_init(&b, plain, sizeof plain, CJ_COAP_ACK,
                       CJ_COAP_UNAUTHORIZED, m.mid, m.token, m.token_len);
    k = cj_coap_build_finish(&b);
    k = cj_oscore_protect_response(&c2, &bind, true, plain, (size_t)k, bad,
                                   sizeof bad);
    CHECK(k > 0);
    if (k > 0)
        expect_dropped(&w, bad, (size_t)k);

    /* a 2.04 with a Configuration under R2 || ID1, naming R2 */
    jrc_ctx(&c2, id2, sizeof id2);
    c2.id_context_len = 8;
    c2.send_kid_context = true;
    cj_coap_build_init(&b, plain, sizeof plain, CJ_COAP_ACK, CJ_COAP_CHANGED,
                       m.mid, m.token, m.token_len);
    cj_coap_build_payload(&b, cfg, cl);
    k = cj_coap_build_finish(&b);
    k = cj_oscore_protect_response(&c2, &bind, true, plain, (size_t)k, bad,
                                   sizeof bad);
    CHECK(k > 0);
    if (k > 0)
        expect_dropped(&w, bad, (size_t)k);
    CHECK_EQ(cj_pledge_get_state(&w.p), CJ_PLEDGE_JOINING);
    CHECK_MEM(w.p.osc.id_context, w.p.osc.id_context_len, pid, sizeof pid);

    /* the 4.01 of the same context starts recovery */
    cj_coap_build_init(&b, plain, sizeof plain, CJ_COAP_ACK,
                       CJ_COAP_UNAUTHORIZED, m.mid, m.token, m.token_len);
    k = cj_coap_build_finish(&b);
    k = cj_oscore_protect_response(&c2, &bind, true, plain, (size_t)k, resp,
                                   sizeof resp);
    CHECK(k > 0);
    if (k <= 0)
        return;
    CHECK_EQ(feed(&w, resp, (size_t)k), 1);
    CHECK_EQ(w.out.event, CJ_PLEDGE_EV_RECOVERY);
}
#endif

/* The pledge writes its two message shapes itself (the Join Request and
 * the answer to an update) and seals them with the OSCORE core.  Each
 * must be, byte for byte, what the general codec makes of the same
 * unprotected message with the same context: opened by the JRC, then
 * protected again with a copy of the pledge's context taken before. */
TEST(pledge_messages_match_general_codec)
{
    static world_t w;
    static cj_oscore_ctx_t before;
    static const char *const path_j[] = {"j"};
    uint8_t req[BUF], plain[BUF], again[BUF], upd[BUF], tok[20];
    cj_oscore_req_t bind, pbind;
    size_t n, un;
    int pl, r;

    /* Join Requests: the first, and a later one with a larger Partial IV
     * and an Unsupported_Configuration in its payload. */
    for (int round = 0; round < 2; round++) {
        if (round == 0) {
            world_init(&w, 1);
            CHECK_EQ(cj_pledge_start(&w.p, w.now), CJ_OK);
            before = w.p.osc;
            n = poll_send(&w, req);
        } else {
            uint8_t cfg[64];
            size_t cl = cj_hex("a2 02 820150 e6bf4287c2d7618d6a9687445ffd33e6 "
                               "03 82 42 af93 00",
                               cfg, sizeof cfg);
            world_init(&w, 1);
            w.p.osc.ssn = 0x123456;
            n = join_refused(&w, cfg, cl, req,
                             "a2 0542cafe 08 830003 8242af9300");
            CHECK(n > 0);
            before = w.p.osc; /* the second request: re-run from a copy */
            before.ssn--;
        }
        pl = jrc_open(&w.jrc, req, n, &bind, plain, sizeof plain);
        CHECK(pl > 0);
        r = cj_oscore_protect_request(&before, plain, (size_t)pl, again,
                                      sizeof again, &pbind);
        CHECK_MEM(again, (size_t)(r > 0 ? r : 0), req, n);
        CHECK_MEM(&pbind, sizeof pbind, &w.p.req, sizeof w.p.req);
    }

    /* Answers to updates: CON with an 8-byte token (2.04, empty), NON
     * with a 20-byte token (RFC 8974: one extension byte), and a refused
     * Configuration (4.00 with a payload). */
    world_init(&w, 1);
    join_appx_a(&w);
    for (int k = 0; k < 3; k++) {
        uint8_t cfg[64];
        size_t cl, tkl = k == 1 ? sizeof tok : 8;
        cj_coap_msg_t m;
        memset(tok, 0x40 + k, sizeof tok);
        cl = cj_hex(k == 2 ? "a1 06 81 49 000102030405060708" : APPX_A_CONFIG,
                    cfg, sizeof cfg);
        un = jrc_request_as(&w.jrc, k == 1 ? CJ_COAP_NON : CJ_COAP_CON,
                            CJ_COAP_POST, (uint16_t)(0x700 + k), tok, tkl,
                            path_j, 1, cfg, cl, upd, &bind);
        before = w.p.osc;
        CHECK_EQ(feed(&w, upd, un), 1);
        CHECK(w.out.len > 0);
        CHECK_EQ(cj_coap_parse(&m, w.buf, w.out.len), CJ_OK);
        CHECK_EQ(m.type, k == 1 ? CJ_COAP_NON : CJ_COAP_ACK);
        CHECK_MEM(m.token, m.token_len, tok, tkl);
        pl = cj_oscore_unprotect_response(&w.jrc, &bind, w.buf, w.out.len,
                                          plain, sizeof plain);
        CHECK(pl > 0);
        /* the pledge's side of the binding: the request it answered */
        memcpy(pbind.kid, "JRC", 3);
        pbind.kid_len = 3;
        memcpy(pbind.piv, bind.piv, bind.piv_len);
        pbind.piv_len = bind.piv_len;
        r = cj_oscore_protect_response(&before, &pbind, false, plain,
                                       (size_t)pl, again, sizeof again);
        /* w.buf was decrypted in place above: compare with the cache */
        CHECK_MEM(again, (size_t)(r > 0 ? r : 0), w.p.resp, w.p.resp_len);
    }
}
