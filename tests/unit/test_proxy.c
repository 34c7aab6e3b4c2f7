/*
 * Join Proxy engine tests (RFC 9031 sections 7.1, 7.2, 8.4.2 and 9;
 * RFC 8974 sections 3 and 4).  The pledge side and the JRC side are
 * crafted by hand as CoAP bytes; the expected token state object is
 * sealed independently here with the layout documented in cojp/proxy.h.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cojp/coap.h"
#include "cojp/crypto.h"
#include "cojp/proxy.h"
#include "../../src/port/platform_mem.h"
#include "../test.h"

/* A JP-local token key (any 16 bytes; RFC 8974 section 5.2: purely a
 * local matter). */
static const uint8_t KEY[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
                                0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
                                0xcc, 0xdd, 0xee, 0xff};
/* Pledge identifier = OSCORE ID Context = 'kid context' (section 8.1.1). */
static const uint8_t PLEDGE_ID[8] = {0x02, 0x00, 0x00, 0x00,
                                     0x00, 0x00, 0x00, 0x01};
static const uint8_t OTHER_ID[8] = {0x02, 0x00, 0x00, 0x00,
                                    0x00, 0x00, 0x00, 0x02};
static const uint8_t PTOK[4] = {0xa1, 0xb2, 0xc3, 0xd4};

static cj_mem_platform_t plat;
static uint8_t outbuf[1024], outbuf2[1024];

/* Pledge: [fe80::200:0:0:1]:5683 as 16 address bytes + 2 port bytes. */
static cj_addr_t pledge_addr(uint16_t n)
{
    cj_addr_t a;
    memset(&a, 0, sizeof a);
    a.len = 18;
    a.b[0] = 0xfe;
    a.b[1] = 0x80;
    a.b[8] = 0x02;
    a.b[14] = (uint8_t)(n >> 8);
    a.b[15] = (uint8_t)n;
    a.b[16] = 0x16;
    a.b[17] = 0x33;
    return a;
}

/* JRC: [fd00::1]:5683. */
static cj_addr_t jrc_addr(void)
{
    cj_addr_t a;
    memset(&a, 0, sizeof a);
    a.len = 18;
    a.b[0] = 0xfd;
    a.b[15] = 0x01;
    a.b[16] = 0x16;
    a.b[17] = 0x33;
    return a;
}

static void jp_setup_cfg(cj_proxy_t *jp, uint32_t rate, uint32_t window_ms)
{
    cj_proxy_cfg_t cfg;

    memset(&cfg, 0, sizeof cfg);
    cfg.jrc = jrc_addr();
    memcpy(cfg.token_key, KEY, sizeof KEY);
    cfg.join_rate = rate;
    cfg.rate_window_ms = window_ms;
    cj_mem_platform_init(&plat);
    CHECK_EQ(cj_proxy_init(jp, &cfg, &plat.port), CJ_OK);
    jp->next_mid = 0x0100; /* drawn at random; fixed for exact bytes */
}

static void jp_setup(cj_proxy_t *jp)
{
    jp_setup_cfg(jp, CJ_PROXY_RATE_UNLIMITED, 0);
}

static cj_out_t out_slot(uint8_t *buf, size_t cap)
{
    cj_out_t o;
    memset(&o, 0, sizeof o);
    o.buf = buf;
    o.cap = cap;
    return o;
}

/* The ack slot of cj_proxy_input_jrc() (filled for CON responses only),
 * fresh for each call. */
static uint8_t ackbuf[CJ_PROXY_ACK_LEN];
static cj_out_t ack;

static cj_out_t *ack_slot(void)
{
    ack = out_slot(ackbuf, sizeof ackbuf);
    return &ack;
}

/* A Join Request as the pledge sends it (agreement 1): Uri-Host, OSCORE
 * {flags h|k|n=1, PIV 05, kid context = id, empty kid}, Proxy-Scheme,
 * payload = paylen stand-in ciphertext bytes. */
static size_t pledge_req(uint8_t *buf, uint8_t type, uint16_t mid,
                         const uint8_t *tok, size_t tkl, const uint8_t *id,
                         size_t paylen)
{
    cj_coap_builder_t b;
    uint8_t osc[3 + 8], pay[512];
    int n;

    osc[0] = 0x19;
    osc[1] = 0x05;
    osc[2] = 0x08;
    memcpy(osc + 3, id, 8);
    for (size_t i = 0; i < paylen; i++)
        pay[i] = (uint8_t)(0xc0 + i);
    cj_coap_build_init(&b, buf, 512, type, CJ_COAP_POST, mid, tok, tkl);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "6tisch.arpa");
    cj_coap_build_opt(&b, CJ_COAP_OPT_OSCORE, osc, sizeof osc);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_PROXY_SCHEME, "coap");
    cj_coap_build_payload(&b, pay, paylen);
    n = cj_coap_build_finish(&b);
    CHECK(n > 0);
    return n > 0 ? (size_t)n : 0;
}

/* The JRC's answer (agreement 3): NON 2.04, JRC MID 0x7777, the request
 * token echoed, OSCORE option {n=1, PIV 07}, 12 bytes of ciphertext. */
static size_t jrc_resp(uint8_t *buf, uint8_t type, uint8_t code,
                       const uint8_t *tok, size_t tkl)
{
    static const uint8_t osc[2] = {0x01, 0x07};
    static const uint8_t pay[12] = {0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5,
                                    0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb};
    cj_coap_builder_t b;
    int n;

    cj_coap_build_init(&b, buf, 512, type, code, 0x7777, tok, tkl);
    cj_coap_build_opt(&b, CJ_COAP_OPT_OSCORE, osc, sizeof osc);
    cj_coap_build_payload(&b, pay, sizeof pay);
    n = cj_coap_build_finish(&b);
    CHECK(n > 0);
    return n > 0 ? (size_t)n : 0;
}

/* The token of a forwarded request, copied out. */
static size_t fwd_token(const uint8_t *fwd, size_t len, uint8_t *tok)
{
    cj_coap_msg_t m;
    if (cj_coap_parse(&m, fwd, len) != CJ_OK)
        return 0;
    if (m.token_len)
        memcpy(tok, m.token, m.token_len);
    return m.token_len;
}

/* Forward one request from pledge n; returns its token. */
static size_t forward(cj_proxy_t *jp, uint64_t now, uint16_t n, uint8_t type,
                      uint8_t *tok)
{
    uint8_t req[512];
    cj_addr_t a = pledge_addr(n);
    cj_out_t o = out_slot(outbuf, sizeof outbuf);
    size_t len = pledge_req(req, type, (uint16_t)(0x1000 + n), PTOK, 4,
                            PLEDGE_ID, 16);
    if (cj_proxy_input_pledge(jp, now, &a, req, len, &o) != 1)
        return 0;
    return fwd_token(o.buf, o.len, tok);
}

/* Answer a token as the JRC; returns what input_jrc returned. */
static int answer(cj_proxy_t *jp, uint64_t now, const uint8_t *tok,
                  size_t tkl, cj_out_t *o)
{
    uint8_t resp[512];
    cj_addr_t j = jrc_addr();
    size_t len = jrc_resp(resp, CJ_COAP_NON, CJ_COAP_CHANGED, tok, tkl);
    *o = out_slot(outbuf2, sizeof outbuf2);
    return cj_proxy_input_jrc(jp, now, &j, resp, len, o, ack_slot());
}

/* The engine equals the snapshot except for its statistics. */
static bool same_but_stats(const cj_proxy_t *a, const cj_proxy_t *b)
{
    cj_proxy_t x = *a, y = *b;
    memset(&x.stats, 0, sizeof x.stats);
    memset(&y.stats, 0, sizeof y.stats);
    return memcmp(&x, &y, sizeof x) == 0;
}

static unsigned long drops(const cj_proxy_stats_t *s)
{
    return s->dropped_malformed + s->dropped_blacklist + s->dropped_rate +
           s->dropped_source + s->dropped_token + s->dropped_stale +
           s->dropped_replay;
}

/* ---- exact bytes ------------------------------------------------------ */

/* Agreement 1 Join Request: CON POST, MID 0x1234, token a1b2c3d4. */
static const char sample_req[] =
    "44 02 1234 a1b2c3d4"             /* CON POST, TKL 4, MID, token */
    "3b 3674697363682e61727061"      /* Uri-Host (3) "6tisch.arpa" */
    "6b 19 05 08 0200000000000001"    /* OSCORE (9): h k n=1, PIV 5,
                                       * kid context = pledge id */
    "d4 11 636f6170"                  /* Proxy-Scheme (39) "coap" */
    "ff c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"; /* ciphertext stand-in */

/* The token the JP must produce, sealed here from the documented
 * layout: counter | CCM(flags | token | MID | timestamp | address) | tag. */
static size_t expect_token(const cj_proxy_t *jp, uint64_t ctr, uint8_t flags,
                           const uint8_t *ptok, size_t tkl, uint16_t mid,
                           uint64_t ts, const cj_addr_t *a, uint8_t *tok)
{
    uint8_t nonce[13];
    size_t p = 0;

    for (int i = 4; i >= 0; i--)
        tok[p++] = (uint8_t)(ctr >> (8 * i));
    tok[p++] = (uint8_t)(flags | tkl);
    memcpy(tok + p, ptok, tkl);
    p += tkl;
    tok[p++] = (uint8_t)(mid >> 8);
    tok[p++] = (uint8_t)mid;
    for (int i = 5; i >= 0; i--)
        tok[p++] = (uint8_t)(ts >> (8 * i));
    memcpy(tok + p, a->b, a->len);
    p += a->len;
    memcpy(nonce, jp->nonce_prefix, 8);
    memcpy(nonce + 8, tok, 5);
    CHECK_EQ(cj_crypto_ccm_seal(KEY, nonce, NULL, 0, tok + 5, p - 5, 8),
             (int)(p - 5 + 8));
    return p + 8;
}

TEST(proxy_forward_exact_bytes)
{
    cj_proxy_t jp;
    uint8_t req[256], exp[256], tok[64];
    cj_addr_t a = pledge_addr(1);
    cj_out_t o = out_slot(outbuf, sizeof outbuf);
    size_t len, n, tl;

    jp_setup(&jp);
    len = cj_hex(sample_req, req, sizeof req);
    /* The helper builds exactly the sample. */
    CHECK_EQ(pledge_req(exp, CJ_COAP_CON, 0x1234, PTOK, 4, PLEDGE_ID, 16), len);
    CHECK_MEM(exp, len, req, len);

    CHECK_EQ(cj_proxy_input_pledge(&jp, 123456, &a, req, len, &o), 1);
    CHECK(cj_addr_equal(&o.to, &jp.cfg.jrc));
    CHECK_EQ(o.event, CJ_PROXY_EV_NONE);

    /* Expected: NON, same code, JP MID, 44-byte state token (22 + 4 + 18,
     * RFC 8974 TKL 13 + 31), options minus Proxy-Scheme, same payload. */
    tl = expect_token(&jp, 0, 0x00, PTOK, 4, 0x1234, 123456, &a, tok);
    CHECK_EQ(tl, 44);
    n = cj_hex("5d 02 0100 1f", exp, sizeof exp); /* NON POST TKL13 MID ext */
    memcpy(exp + n, tok, tl);
    n += tl;
    n += cj_hex("3b 3674697363682e61727061"      /* Uri-Host */
                "6b 19 05 08 0200000000000001"    /* OSCORE */
                "ff c0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
                exp + n, sizeof exp - n);
    CHECK_MEM(o.buf, o.len, exp, n);
    CHECK_EQ(o.len, len - 4 - 6 + 1 + 44);
    CHECK_EQ(jp.stats.forwarded, 1);
    CHECK_EQ(jp.token_counter, 1);
    CHECK_EQ(jp.next_mid, 0x0101);

    /* The counter (first 5 bytes) is in the clear, the rest is sealed:
     * neither the pledge token nor its address shows. */
    CHECK_HEX(o.buf + 5, 5, "0000000000");
    CHECK(memcmp(o.buf + 10, PTOK, 4) != 0);

    /* A second request gets counter 1 and the next MID. */
    CHECK_EQ(cj_proxy_input_pledge(&jp, 123457, &a, req, len, &o), 1);
    CHECK_HEX(o.buf, 4, "5d020101");
    CHECK_HEX(o.buf + 5, 5, "0000000001");
}

TEST(proxy_relay_con_as_ack_exact)
{
    cj_proxy_t jp;
    uint8_t tok[64], resp[256];
    cj_out_t o;
    size_t tl = 0, rl;
    cj_addr_t j = jrc_addr(), a = pledge_addr(1);

    jp_setup(&jp);
    {
        uint8_t req[256];
        size_t len = cj_hex(sample_req, req, sizeof req);
        o = out_slot(outbuf, sizeof outbuf);
        CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 1);
        tl = fwd_token(o.buf, o.len, tok);
    }
    rl = jrc_resp(resp, CJ_COAP_NON, CJ_COAP_CHANGED, tok, tl);
    o = out_slot(outbuf2, sizeof outbuf2);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 2000, &j, resp, rl, &o, ack_slot()), 1);
    /* Agreement 4: the pledge's request was CON -> piggybacked ACK with
     * its MID and token; code, options, payload verbatim. */
    CHECK_HEX(o.buf, o.len,
              "64 44 1234 a1b2c3d4"       /* ACK 2.04, pledge MID, token */
              "92 0107"                   /* OSCORE (9): n=1, PIV 7 */
              "ff e0e1e2e3e4e5e6e7e8e9eaeb");
    CHECK(cj_addr_equal(&o.to, &a));
    CHECK_EQ(jp.stats.relayed, 1);
    CHECK_EQ(jp.next_mid, 0x0101); /* an ACK uses no JP MID */
    CHECK_EQ(ack.len, 0); /* a NON response is not acknowledged */
    CHECK_EQ(jp.stats.acks + jp.stats.resets, 0);
}

TEST(proxy_relay_non_as_non_exact)
{
    cj_proxy_t jp;
    uint8_t req[256], tok[64];
    cj_addr_t a = pledge_addr(7);
    cj_out_t o = out_slot(outbuf, sizeof outbuf);
    size_t len, tl;

    jp_setup(&jp);
    len = cj_hex("54 02 1234 a1b2c3d4"            /* NON POST */
                 "3b 3674697363682e61727061"
                 "6b 19 05 08 0200000000000001"
                 "d4 11 636f6170"
                 "ff c0c1c2c3",
                 req, sizeof req);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 1);
    tl = fwd_token(o.buf, o.len, tok);
    /* The flags byte records NON (bit 7). */
    {
        uint8_t exp[64];
        CHECK_EQ(expect_token(&jp, 0, 0x80, PTOK, 4, 0x1234, 1000, &a, exp),
                 tl);
        CHECK_MEM(tok, tl, exp, tl);
    }
    CHECK_EQ(answer(&jp, 1500, tok, tl, &o), 1);
    /* NON response with a fresh JP MID (0x0101: 0x0100 went to the JRC). */
    CHECK_HEX(o.buf, o.len,
              "54 44 0101 a1b2c3d4 92 0107 ff e0e1e2e3e4e5e6e7e8e9eaeb");
    CHECK(cj_addr_equal(&o.to, &a));
    CHECK_EQ(jp.next_mid, 0x0102);
    CHECK_EQ(ack.len, 0);
}

/* ---- separate (CON) responses (RFC 8974 section 3.3) ------------------ */

/* A JRC of another implementation answers the JP's NON request with a
 * separate response in a CON message (RFC 7252 section 5.2.2).  The JP
 * relays it exactly as a NON response and acknowledges it to the JRC with
 * an Empty ACK of the same message ID; a retransmission (the ACK was
 * lost) is acknowledged again and not relayed (RFC 7252 section 4.5). */
TEST(proxy_con_response_acked_and_relayed_once)
{
    cj_proxy_t jp, snap;
    uint8_t req[256], tok[64], resp[256];
    cj_addr_t j = jrc_addr(), a = pledge_addr(1);
    cj_out_t o = out_slot(outbuf, sizeof outbuf);
    size_t len, tl, rl;

    jp_setup(&jp);
    len = cj_hex(sample_req, req, sizeof req);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 1);
    tl = fwd_token(o.buf, o.len, tok);
    rl = jrc_resp(resp, CJ_COAP_CON, CJ_COAP_CHANGED, tok, tl);
    CHECK_EQ(resp[0] >> 4, 0x4); /* version 1, CON */

    o = out_slot(outbuf2, sizeof outbuf2);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 2000, &j, resp, rl, &o, ack_slot()), 1);
    /* To the pledge: the same bytes a NON response gives (agreement 4). */
    CHECK_HEX(o.buf, o.len,
              "64 44 1234 a1b2c3d4 92 0107 ff e0e1e2e3e4e5e6e7e8e9eaeb");
    CHECK(cj_addr_equal(&o.to, &a));
    /* To the JRC: Empty ACK, message ID of the response. */
    CHECK_HEX(ack.buf, ack.len, "60 00 7777");
    CHECK(cj_addr_equal(&ack.to, &j));
    CHECK_EQ(ack.event, CJ_PROXY_EV_NONE);
    CHECK_EQ(jp.stats.relayed, 1);
    CHECK_EQ(jp.stats.acks, 1);
    CHECK_EQ(jp.next_mid, 0x0101);

    /* The JRC's retransmissions (ACK_TIMEOUT later, then twice that): ACK
     * again, nothing to the pledge, nothing changes. */
    snap = jp;
    o = out_slot(outbuf2, sizeof outbuf2);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 12000, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(o.len, 0);
    CHECK_HEX(ack.buf, ack.len, "60 00 7777");
    CHECK(cj_addr_equal(&ack.to, &j));
    CHECK_EQ(cj_proxy_input_jrc(&jp, 32000, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(o.len, 0);
    CHECK_HEX(ack.buf, ack.len, "60 00 7777");
    CHECK_EQ(jp.stats.relayed, 1);
    CHECK_EQ(jp.stats.acks, 3);
    CHECK_EQ(jp.stats.dropped_replay, 2);
    CHECK_EQ(drops(&jp.stats), 2);
    CHECK(same_but_stats(&jp, &snap));

    /* Another CON response with the spent token (another message ID):
     * acknowledged under its own ID, not relayed; the token counts. */
    resp[2] = 0x88;
    resp[3] = 0x01;
    CHECK_EQ(cj_proxy_input_jrc(&jp, 32000, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_HEX(ack.buf, ack.len, "60 00 8801");
    CHECK_EQ(jp.stats.relayed, 1);

    /* A NON response to the spent token is dropped as before, unanswered. */
    rl = jrc_resp(resp, CJ_COAP_NON, CJ_COAP_CHANGED, tok, tl);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 32000, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(ack.len, 0);
    CHECK_EQ(jp.stats.dropped_replay, 4);
    CHECK_EQ(jp.stats.acks, 4);
}

/* The pledge's request was NON: the CON response goes to it as a NON with
 * a fresh JP message ID, and the JRC gets its ACK.  Tokens are
 * independent: answering one in CON and another in NON, in any order. */
TEST(proxy_con_response_to_non_request)
{
    cj_proxy_t jp;
    uint8_t t1[64], t2[64], resp[256];
    cj_addr_t j = jrc_addr();
    cj_out_t o;
    size_t l1, l2, rl;

    jp_setup(&jp);
    l1 = forward(&jp, 1000, 1, CJ_COAP_NON, t1);
    l2 = forward(&jp, 1000, 2, CJ_COAP_CON, t2);
    CHECK_EQ(jp.next_mid, 0x0102);
    rl = jrc_resp(resp, CJ_COAP_CON, CJ_COAP_CONTENT, t1, l1);
    o = out_slot(outbuf2, sizeof outbuf2);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1500, &j, resp, rl, &o, ack_slot()), 1);
    CHECK_HEX(o.buf, 8, "54 45 0102 a1b2c3d4"); /* NON 2.05, JP MID */
    {
        cj_addr_t p1 = pledge_addr(1);
        CHECK(cj_addr_equal(&o.to, &p1));
    }
    CHECK_HEX(ack.buf, ack.len, "60 00 7777");
    CHECK_EQ(jp.next_mid, 0x0103);
    CHECK_EQ(answer(&jp, 1600, t2, l2, &o), 1);
    CHECK_EQ(ack.len, 0);
    CHECK_EQ(jp.stats.relayed, 2);
    CHECK_EQ(jp.stats.acks, 1);
}

/* A CON response whose token does not open gets nothing: no relay, no
 * ACK and no RST (cojp/proxy.h: a RST would echo a message ID of an
 * unauthenticated sender's choice to the JRC).  The engine is unchanged. */
TEST(proxy_con_response_bad_token_unanswered)
{
    cj_proxy_t jp, snap, other;
    uint8_t tok[64], bad[64], resp[256];
    cj_addr_t j = jrc_addr(), stranger = jrc_addr();
    cj_out_t o;
    size_t tl, rl;
    unsigned long tried = 0;

    jp_setup(&jp);
    tl = forward(&jp, 1000, 1, CJ_COAP_CON, tok);
    snap = jp;
    /* every single bit flip of the token */
    for (size_t i = 0; i < tl; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, tok, tl);
            bad[i] ^= (uint8_t)(1u << bit);
            rl = jrc_resp(resp, CJ_COAP_CON, CJ_COAP_CHANGED, bad, tl);
            o = out_slot(outbuf2, sizeof outbuf2);
            CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
            CHECK_EQ(o.len + ack.len, 0);
            tried++;
        }
    }
    /* random, truncated, too short to be ours, none at all */
    CHECK_EQ(cj_crypto_random(bad, tl), CJ_OK);
    rl = jrc_resp(resp, CJ_COAP_CON, CJ_COAP_CHANGED, bad, tl);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(ack.len, 0);
    rl = jrc_resp(resp, CJ_COAP_CON, CJ_COAP_CHANGED, tok, tl - 1);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(ack.len, 0);
    rl = jrc_resp(resp, CJ_COAP_CON, CJ_COAP_CHANGED, PTOK, 4);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(ack.len, 0);
    rl = jrc_resp(resp, CJ_COAP_CON, CJ_COAP_CHANGED, NULL, 0);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(ack.len, 0);
    CHECK_EQ(jp.stats.dropped_token, tried + 4);
    /* the genuine token from a stranger's address: not even looked at */
    stranger.b[15] = 0x02;
    rl = jrc_resp(resp, CJ_COAP_CON, CJ_COAP_CHANGED, tok, tl);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &stranger, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(ack.len, 0);
    CHECK_EQ(jp.stats.dropped_source, 1);
    /* a token of another instance (a JP restart) */
    jp_setup(&other);
    CHECK_EQ(cj_proxy_input_jrc(&other, 1100, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(ack.len, 0);
    CHECK_EQ(other.stats.dropped_token, 1);
    CHECK_EQ(jp.stats.acks + jp.stats.resets + jp.stats.relayed, 0);
    CHECK(same_but_stats(&jp, &snap));
    /* the genuine response still goes through, acknowledged */
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 1);
    CHECK_HEX(ack.buf, ack.len, "60 00 7777");
}

/* A CON response whose token opens but is stale is rejected with a RST
 * (RFC 8974 section 3.3, RFC 7252 section 4.2) and not relayed; a stale
 * retransmission of a response already relayed gets the RST too. */
TEST(proxy_con_response_stale_reset)
{
    cj_proxy_t jp, snap;
    uint8_t t1[64], t2[64], resp[256];
    cj_addr_t j = jrc_addr();
    cj_out_t o;
    size_t l1, l2, rl;
    uint64_t life;

    jp_setup(&jp);
    life = jp.cfg.token_lifetime_ms;
    l1 = forward(&jp, 5000, 1, CJ_COAP_CON, t1);
    l2 = forward(&jp, 5000, 2, CJ_COAP_CON, t2);
    snap = jp;
    rl = jrc_resp(resp, CJ_COAP_CON, CJ_COAP_CHANGED, t1, l1);
    o = out_slot(outbuf2, sizeof outbuf2);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 5000 + life + 1, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(o.len, 0);
    CHECK_HEX(ack.buf, ack.len, "70 00 7777");
    CHECK(cj_addr_equal(&ack.to, &j));
    /* a time before the request is not fresh either */
    CHECK_EQ(cj_proxy_input_jrc(&jp, 4999, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_HEX(ack.buf, ack.len, "70 00 7777");
    CHECK_EQ(jp.stats.dropped_stale, 2);
    CHECK_EQ(jp.stats.resets, 2);
    CHECK_EQ(jp.stats.acks + jp.stats.relayed, 0);
    CHECK(same_but_stats(&jp, &snap));
    /* Exactly at the lifetime: fresh, relayed and acknowledged; a copy
     * past it, its ACK lost, gets the RST. */
    rl = jrc_resp(resp, CJ_COAP_CON, CJ_COAP_CHANGED, t2, l2);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 5000 + life, &j, resp, rl, &o, ack_slot()), 1);
    CHECK_HEX(ack.buf, ack.len, "60 00 7777");
    CHECK_EQ(cj_proxy_input_jrc(&jp, 5000 + life + 1, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(o.len, 0);
    CHECK_HEX(ack.buf, ack.len, "70 00 7777");
    CHECK_EQ(jp.stats.relayed, 1);
    CHECK_EQ(jp.stats.resets, 3);
    /* A stale NON response stays unanswered (RFC 7252 section 4.3: a RST
     * is optional there). */
    rl = jrc_resp(resp, CJ_COAP_NON, CJ_COAP_CHANGED, t1, l1);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 5000 + life + 1, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(ack.len, 0);
    CHECK_EQ(jp.stats.dropped_stale, 4);
}

/* The ack slot: a CON response needs one of CJ_PROXY_ACK_LEN bytes; with
 * none (or a smaller one) it is dropped unanswered and its token stays
 * unused.  A relay that does not fit out is not acknowledged either, so
 * the JRC's retransmission can still be relayed. */
TEST(proxy_con_response_needs_room)
{
    cj_proxy_t jp, snap;
    uint8_t tok[64], resp[256], small[CJ_PROXY_ACK_LEN - 1];
    cj_addr_t j = jrc_addr();
    cj_out_t o, tiny;
    size_t tl, rl;

    jp_setup(&jp);
    tl = forward(&jp, 1000, 1, CJ_COAP_CON, tok);
    rl = jrc_resp(resp, CJ_COAP_CON, CJ_COAP_CHANGED, tok, tl);
    snap = jp;
    o = out_slot(outbuf2, sizeof outbuf2);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, NULL), 0);
    tiny = out_slot(small, sizeof small);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, &tiny), 0);
    CHECK_EQ(tiny.len, 0);
    tiny = out_slot(NULL, CJ_PROXY_ACK_LEN);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, &tiny), 0);
    o = out_slot(outbuf2, 20);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(o.len + ack.len, 0);
    CHECK_EQ(jp.stats.dropped_malformed, 4);
    CHECK_EQ(jp.stats.acks, 0);
    CHECK(same_but_stats(&jp, &snap));
    /* NON responses need no ack slot. */
    {
        uint8_t t2[64], r2[256];
        size_t l2 = forward(&jp, 1000, 2, CJ_COAP_CON, t2);
        size_t n2 = jrc_resp(r2, CJ_COAP_NON, CJ_COAP_CHANGED, t2, l2);
        o = out_slot(outbuf2, sizeof outbuf2);
        CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, r2, n2, &o, NULL), 1);
    }
    /* The retransmission, with room: relayed and acknowledged. */
    o = out_slot(outbuf2, sizeof outbuf2);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 1);
    CHECK_HEX(ack.buf, ack.len, "60 00 7777");
    CHECK_EQ(jp.stats.relayed, 2);
}

/* ---- attacks on the response path ------------------------------------- */

TEST(proxy_forged_token)
{
    cj_proxy_t jp, snap;
    uint8_t tok[64], forged[64];
    cj_out_t o;
    size_t tl;

    jp_setup(&jp);
    tl = forward(&jp, 1000, 1, CJ_COAP_CON, tok);
    CHECK_EQ(tl, 44);
    snap = jp;
    /* Random bytes, all zeros, and the right counter with a made-up
     * body: none opens. */
    CHECK_EQ(cj_crypto_random(forged, tl), CJ_OK);
    CHECK_EQ(answer(&jp, 1100, forged, tl, &o), 0);
    memset(forged, 0, tl);
    CHECK_EQ(answer(&jp, 1100, forged, tl, &o), 0);
    memcpy(forged, tok, 5);
    CHECK_EQ(answer(&jp, 1100, forged, tl, &o), 0);
    CHECK_EQ(o.len, 0);
    CHECK_EQ(jp.stats.dropped_token, 3);
    CHECK(same_but_stats(&jp, &snap));
    /* The genuine one still goes through. */
    CHECK_EQ(answer(&jp, 1100, tok, tl, &o), 1);
}

TEST(proxy_flipped_token_bits)
{
    cj_proxy_t jp, snap;
    uint8_t tok[64], bad[64];
    cj_out_t o;
    size_t tl;
    unsigned long tried = 0;

    jp_setup(&jp);
    tl = forward(&jp, 1000, 1, CJ_COAP_CON, tok);
    snap = jp;
    for (size_t i = 0; i < tl; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, tok, tl);
            bad[i] ^= (uint8_t)(1u << bit);
            CHECK_EQ(answer(&jp, 1100, bad, tl, &o), 0);
            tried++;
        }
    }
    /* Truncated and extended tokens do not open either. */
    CHECK_EQ(answer(&jp, 1100, tok, tl - 1, &o), 0);
    memcpy(bad, tok, tl);
    bad[tl] = 0;
    CHECK_EQ(answer(&jp, 1100, bad, tl + 1, &o), 0);
    CHECK_EQ(jp.stats.dropped_token, tried + 2);
    CHECK_EQ(jp.stats.relayed, 0);
    CHECK(same_but_stats(&jp, &snap));
    CHECK_EQ(answer(&jp, 1100, tok, tl, &o), 1);
}

TEST(proxy_stale_token)
{
    cj_proxy_t jp, snap;
    uint8_t t1[64], t2[64];
    cj_out_t o;
    size_t l1, l2;
    uint64_t life;

    jp_setup(&jp);
    life = jp.cfg.token_lifetime_ms;
    CHECK_EQ(life, 4 * CJ_COJP_ACK_TIMEOUT_MS); /* default */
    l1 = forward(&jp, 5000, 1, CJ_COAP_CON, t1);
    l2 = forward(&jp, 5000, 2, CJ_COAP_CON, t2);
    snap = jp;
    /* One millisecond past the lifetime: dropped, nothing consumed. */
    CHECK_EQ(answer(&jp, 5000 + life + 1, t1, l1, &o), 0);
    CHECK_EQ(jp.stats.dropped_stale, 1);
    CHECK(same_but_stats(&jp, &snap));
    /* A time before the request (clock misuse) is not fresh either. */
    CHECK_EQ(answer(&jp, 4999, t1, l1, &o), 0);
    CHECK_EQ(jp.stats.dropped_stale, 2);
    /* Exactly at the lifetime: still fresh. */
    CHECK_EQ(answer(&jp, 5000 + life, t2, l2, &o), 1);
    CHECK_EQ(jp.stats.relayed, 1);
}

TEST(proxy_response_replayed)
{
    cj_proxy_t jp, snap;
    uint8_t tok[64];
    cj_out_t o;
    size_t tl;

    jp_setup(&jp);
    tl = forward(&jp, 1000, 1, CJ_COAP_CON, tok);
    CHECK_EQ(answer(&jp, 1200, tok, tl, &o), 1);
    snap = jp;
    /* The same response again (and once more): dropped, no change. */
    CHECK_EQ(answer(&jp, 1300, tok, tl, &o), 0);
    CHECK_EQ(o.len, 0);
    CHECK_EQ(answer(&jp, 1400, tok, tl, &o), 0);
    CHECK_EQ(jp.stats.dropped_replay, 2);
    CHECK_EQ(jp.stats.relayed, 1);
    CHECK(same_but_stats(&jp, &snap));
    /* A different response (other code) with the used token: dropped
     * too, the token is what counts. */
    {
        uint8_t resp[256];
        cj_addr_t j = jrc_addr();
        size_t rl = jrc_resp(resp, CJ_COAP_NON, CJ_COAP_BAD_REQUEST, tok, tl);
        o = out_slot(outbuf2, sizeof outbuf2);
        CHECK_EQ(cj_proxy_input_jrc(&jp, 1500, &j, resp, rl, &o, ack_slot()), 0);
        CHECK_EQ(jp.stats.dropped_replay, 3);
    }
}

TEST(proxy_response_wrong_source)
{
    cj_proxy_t jp, snap;
    uint8_t tok[64], resp[256];
    cj_addr_t other = jrc_addr(), shorter = jrc_addr(), j = jrc_addr();
    cj_addr_t pl = pledge_addr(1);
    cj_out_t o;
    size_t tl, rl;

    jp_setup(&jp);
    tl = forward(&jp, 1000, 1, CJ_COAP_CON, tok);
    rl = jrc_resp(resp, CJ_COAP_NON, CJ_COAP_CHANGED, tok, tl);
    snap = jp;
    other.b[15] = 0x02;  /* fd00::2 */
    shorter.len = 16;    /* same bytes, no port */
    o = out_slot(outbuf2, sizeof outbuf2);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &other, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &shorter, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &pl, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(jp.stats.dropped_source, 3);
    CHECK(same_but_stats(&jp, &snap));
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 1);
    /* After cj_proxy_set_jrc the old address is a stranger. */
    tl = forward(&jp, 1000, 1, CJ_COAP_CON, tok);
    rl = jrc_resp(resp, CJ_COAP_NON, CJ_COAP_CHANGED, tok, tl);
    cj_proxy_set_jrc(&jp, &other);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &other, resp, rl, &o, ack_slot()), 1);
}

TEST(proxy_other_instance_token)
{
    /* Same configured key, new instance (a reboot): the random nonce
     * prefix differs, so old tokens do not open (the old consumed-token
     * window is gone) and nonces are never repeated under the key. */
    cj_proxy_t a, b;
    uint8_t tok[64];
    cj_out_t o;
    size_t tl;

    jp_setup(&a);
    jp_setup(&b);
    CHECK(memcmp(a.nonce_prefix, b.nonce_prefix, 8) != 0);
    tl = forward(&a, 1000, 1, CJ_COAP_CON, tok);
    CHECK_EQ(answer(&b, 1100, tok, tl, &o), 0);
    CHECK_EQ(b.stats.dropped_token, 1);
    CHECK_EQ(answer(&a, 1100, tok, tl, &o), 1);
}

/* ---- blacklist (section 8.4.2) ---------------------------------------- */

TEST(proxy_blacklist)
{
    cj_proxy_t jp, snap;
    uint8_t req[256], big[9] = {0};
    const uint8_t *ids[CJ_PROXY_MAX_BLACKLIST + 1];
    size_t lens[CJ_PROXY_MAX_BLACKLIST + 1];
    cj_addr_t a = pledge_addr(1);
    cj_out_t o = out_slot(outbuf, sizeof outbuf);
    size_t len, olen;

    jp_setup(&jp);
    ids[0] = PLEDGE_ID;
    lens[0] = 8;
    CHECK_EQ(cj_proxy_set_blacklist(&jp, ids, lens, 1), CJ_OK);
    snap = jp;
    len = pledge_req(req, CJ_COAP_CON, 1, PTOK, 4, PLEDGE_ID, 8);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 0);
    CHECK_EQ(o.len, 0);
    CHECK_EQ(jp.stats.dropped_blacklist, 1);
    CHECK(same_but_stats(&jp, &snap));
    /* Another pledge passes. */
    olen = pledge_req(req, CJ_COAP_CON, 1, PTOK, 4, OTHER_ID, 8);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, olen, &o), 1);

    /* A prefix of a blacklisted id is a different id. */
    ids[0] = PLEDGE_ID;
    lens[0] = 7;
    CHECK_EQ(cj_proxy_set_blacklist(&jp, ids, lens, 1), CJ_OK);
    len = pledge_req(req, CJ_COAP_CON, 1, PTOK, 4, PLEDGE_ID, 8);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 1);

    /* Too many entries or one too long: refused, the old list stays. */
    for (size_t i = 0; i <= CJ_PROXY_MAX_BLACKLIST; i++) {
        ids[i] = PLEDGE_ID;
        lens[i] = 8;
    }
    snap = jp;
    CHECK_EQ(cj_proxy_set_blacklist(&jp, ids, lens, CJ_PROXY_MAX_BLACKLIST + 1),
             CJ_ERR_NOSPACE);
    ids[1] = big;
    lens[1] = sizeof big;
    CHECK_EQ(cj_proxy_set_blacklist(&jp, ids, lens, 2), CJ_ERR_NOSPACE);
    CHECK(memcmp(&jp, &snap, sizeof jp) == 0);

    /* A full list of the largest size works; the new value overwrites. */
    ids[1] = OTHER_ID;
    lens[1] = 8;
    CHECK_EQ(cj_proxy_set_blacklist(&jp, ids, lens, CJ_PROXY_MAX_BLACKLIST),
             CJ_OK);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 0);
    len = pledge_req(req, CJ_COAP_CON, 1, PTOK, 4, OTHER_ID, 8);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 0);
    CHECK_EQ(jp.stats.dropped_blacklist, 3);
    /* Empty blacklist: all pass again. */
    CHECK_EQ(cj_proxy_set_blacklist(&jp, NULL, NULL, 0), CJ_OK);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 1);
}

/* ---- join rate (sections 7.2, 8.4.2, 9) ------------------------------- */

#define RATE_MAX_EVENTS 8192
static uint64_t ev_time[RATE_MAX_EVENTS];
static uint32_t ev_bytes[RATE_MAX_EVENTS];

/* Offer one request every `every` ms for `dur` ms; record forwards.
 * Returns the number of forwards. */
static size_t offer(cj_proxy_t *jp, uint64_t start, uint64_t dur,
                    uint64_t every, size_t paylen)
{
    uint8_t req[512];
    cj_addr_t a = pledge_addr(3);
    size_t len = pledge_req(req, CJ_COAP_CON, 1, PTOK, 4, PLEDGE_ID, paylen);
    size_t k = 0;

    for (uint64_t t = start; t < start + dur; t += every) {
        cj_out_t o = out_slot(outbuf, sizeof outbuf);
        int r = cj_proxy_input_pledge(jp, t, &a, req, len, &o);
        CHECK(r == 0 || r == 1);
        if (r == 1 && k < RATE_MAX_EVENTS) {
            ev_time[k] = t;
            ev_bytes[k] = (uint32_t)o.len;
            k++;
        } else {
            CHECK_EQ(o.len, 0);
        }
    }
    return k;
}

/* Over every interval [t_i, t_j] between forwards, the bytes forwarded
 * stay within capacity + rate * (t_j - t_i). */
static bool within_bound(size_t k, uint64_t cap_bytes, uint64_t rate)
{
    for (size_t i = 0; i < k; i++) {
        uint64_t sum = 0;
        for (size_t j = i; j < k; j++) {
            sum += ev_bytes[j];
            if (sum * 1000 > cap_bytes * 1000 + rate * (ev_time[j] - ev_time[i]))
                return false;
        }
    }
    return true;
}

TEST(proxy_join_rate_bound)
{
    /* 100 B/s averaged over 10 s: a bucket of 1000 bytes.  A pledge
     * offers ~900 B/s for five simulated minutes. */
    cj_proxy_t jp;
    size_t k;
    uint64_t total = 0, dur = 5 * 60 * 1000;

    jp_setup_cfg(&jp, 100, 10000);
    k = offer(&jp, 1000, dur, 100, 16);
    CHECK(k > 0);
    for (size_t i = 0; i < k; i++)
        total += ev_bytes[i];
    CHECK(within_bound(k, 1000, 100));
    CHECK(total <= 1000 + 100 * dur / 1000);
    /* ...and the meter does not throttle below the rate: the whole
     * allowance minus less than one request is used. */
    CHECK(total + ev_bytes[0] >= 100 * dur / 1000);
    CHECK_EQ(jp.stats.forwarded, k);
    CHECK(jp.stats.dropped_rate > 0);
    CHECK_EQ(jp.stats.dropped_rate + k, dur / 100);
    /* Only forwarded bytes count: blacklisted traffic does not drain the
     * bucket.  Idle 20 s (full bucket again), blacklist, flood, then the
     * full burst is still there. */
    {
        const uint8_t *ids[1] = {PLEDGE_ID};
        size_t lens[1] = {8};
        uint64_t t0 = 1000 + dur + 20000;
        CHECK_EQ(cj_proxy_set_blacklist(&jp, ids, lens, 1), CJ_OK);
        CHECK_EQ(offer(&jp, t0, 1000, 1, 16), 0);
        CHECK_EQ(cj_proxy_set_blacklist(&jp, NULL, NULL, 0), CJ_OK);
        /* 1000-byte bucket: floor(1000 / size) back-to-back requests
         * (20 ms refill 2 bytes, not enough for one more). */
        k = offer(&jp, t0 + 1000, 20, 1, 16);
        CHECK_EQ(k, 1000 / ev_bytes[0]);
    }
}

TEST(proxy_join_rate_burst_small_rate)
{
    /* 1 byte/s (PROBING_RATE of Table 1) over 10 s would be a 10-byte
     * bucket, too small for any request: the CJ_PROXY_MAX_MSG floor lets
     * requests through, and the long-run average stays 1 B/s. */
    cj_proxy_t jp;
    size_t k, size;
    uint64_t total = 0, dur = 30 * 60 * 1000;

    jp_setup_cfg(&jp, 1, 0);
    CHECK_EQ(jp.cfg.rate_window_ms, CJ_COJP_ACK_TIMEOUT_MS);
    k = offer(&jp, 0, 1000, 10, 16);
    CHECK(k >= 1);
    size = ev_bytes[0];
    /* The whole burst at once, then nothing. */
    CHECK_EQ(k, CJ_PROXY_MAX_MSG / size);
    k = offer(&jp, 1000, dur, 1000, 16);
    for (size_t i = 0; i < k; i++)
        total += ev_bytes[i];
    CHECK(within_bound(k, CJ_PROXY_MAX_MSG, 1));
    CHECK(total <= CJ_PROXY_MAX_MSG + dur / 1000);
    CHECK(total + 2 * size >= dur / 1000);
    /* A maximum-size request still passes at this rate (after the
     * bucket refilled). */
    {
        uint8_t req[512];
        cj_addr_t a = pledge_addr(3);
        cj_out_t o = out_slot(outbuf, sizeof outbuf);
        size_t len = pledge_req(req, CJ_COAP_CON, 1, PTOK, 4, PLEDGE_ID,
                                CJ_PROXY_MAX_MSG - 74);
        CHECK_EQ(len + 35, CJ_PROXY_MAX_MSG);
        CHECK_EQ(cj_proxy_input_pledge(&jp, 10 * 1000 * 1000, &a, req, len, &o),
                 1);
        CHECK_EQ(o.len, CJ_PROXY_MAX_MSG);
    }
}

TEST(proxy_join_rate_zero_and_unlimited)
{
    cj_proxy_t jp, snap;
    size_t k;

    /* 0: all join traffic dropped (section 8.4.2), however long idle. */
    jp_setup_cfg(&jp, 0, 0);
    snap = jp;
    CHECK_EQ(offer(&jp, 0, 600000, 1000, 0), 0);
    CHECK_EQ(jp.stats.dropped_rate, 600);
    CHECK(same_but_stats(&jp, &snap));

    /* Unlimited: everything passes, even 5000 requests in 5 ms. */
    cj_proxy_set_join_rate(&jp, CJ_PROXY_RATE_UNLIMITED);
    k = offer(&jp, 700000, 5, 1, 16);
    CHECK_EQ(k, 5);
    jp_setup(&jp);
    for (int i = 0; i < 5000; i++) {
        uint8_t tok[64];
        CHECK(forward(&jp, 1000, (uint16_t)i, CJ_COAP_CON, tok) > 0);
    }
    CHECK_EQ(jp.stats.forwarded, 5000);

    /* Turning the rate to 0 at run time stops forwarding at once; a rate
     * again starts from the clamped (empty) bucket and refills. */
    cj_proxy_set_join_rate(&jp, 0);
    CHECK_EQ(jp.rate_budget_milli, 0);
    CHECK_EQ(offer(&jp, 2000, 100, 1, 16), 0);
    cj_proxy_set_join_rate(&jp, 100);
    CHECK(offer(&jp, 3000, 1, 1, 16) == 1);
}

/* ---- constant state, consumed-token window ---------------------------- */

#define N_PLEDGES 10000
static uint8_t many_tok[N_PLEDGES][CJ_COAP_MAX_TOKEN];
static uint8_t many_len[N_PLEDGES];
static uint16_t order[N_PLEDGES];

static void shuffle(uint16_t *v, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (uint16_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j;
        seed = seed * 1103515245u + 12345u;
        j = (seed >> 8) % (i + 1);
        uint16_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

TEST(proxy_state_constant_10000_pledges)
{
    cj_proxy_t jp, before;
    size_t relayed = 0, first_ok = N_PLEDGES - CJ_PROXY_REPLAY_BITS;
    bool seen[N_PLEDGES];

    /* The whole engine is one caller-allocated struct, sized by the
     * config header alone. */
    CHECK(sizeof(cj_proxy_t) <= 256 + CJ_PROXY_REPLAY_BITS / 8 +
                                    CJ_PROXY_MAX_BLACKLIST *
                                        (CJ_PROXY_MAX_ID + 1));
    jp_setup(&jp);
    before = jp;
    for (int i = 0; i < N_PLEDGES; i++) {
        many_len[i] = (uint8_t)forward(&jp, 1000 + (uint64_t)i, (uint16_t)i,
                                       CJ_COAP_CON, many_tok[i]);
        CHECK_EQ(many_len[i], 44);
    }
    /* What changed after 10,000 pledges: the counter, the MID, the bits
     * and the stats; configuration, key and blacklist are as before. */
    CHECK(memcmp(&jp.cfg, &before.cfg, sizeof jp.cfg) == 0);
    CHECK(memcmp(jp.blacklist, before.blacklist, sizeof jp.blacklist) == 0);
    CHECK_EQ(jp.token_counter, N_PLEDGES);

    /* Answer all, in random order, within the lifetime. */
    memset(seen, 0, sizeof seen);
    shuffle(order, N_PLEDGES, 12345);
    for (int k = 0; k < N_PLEDGES; k++) {
        uint16_t i = order[k];
        cj_out_t o;
        int r = answer(&jp, 1000 + N_PLEDGES + 100, many_tok[i], many_len[i],
                       &o);
        if (r == 1) {
            cj_addr_t want = pledge_addr(i);
            CHECK(cj_addr_equal(&o.to, &want));
            CHECK_EQ(o.buf[2] << 8 | o.buf[3], 0x1000 + i);
            CHECK(!seen[i]);
            seen[i] = true;
            relayed++;
        }
        /* Exact boundary: only the last CJ_PROXY_REPLAY_BITS counters
         * (those >= token_counter - CJ_PROXY_REPLAY_BITS) are relayed. */
        CHECK_EQ(r, i >= first_ok ? 1 : 0);
    }
    CHECK_EQ(relayed, CJ_PROXY_REPLAY_BITS);
    CHECK_EQ(jp.stats.relayed, CJ_PROXY_REPLAY_BITS);
    CHECK_EQ(jp.stats.dropped_replay, first_ok);
}

TEST(proxy_window_all_in_flight_relayed)
{
    /* Up to CJ_PROXY_REPLAY_BITS requests in flight: every answer is
     * relayed once, in any order; the second round is all replays. */
    cj_proxy_t jp;
    size_t relayed = 0;

    jp_setup(&jp);
    for (int i = 0; i < CJ_PROXY_REPLAY_BITS; i++)
        many_len[i] = (uint8_t)forward(&jp, 1000, (uint16_t)i, CJ_COAP_NON,
                                       many_tok[i]);
    shuffle(order, CJ_PROXY_REPLAY_BITS, 777);
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < CJ_PROXY_REPLAY_BITS; k++) {
            cj_out_t o;
            relayed += (size_t)answer(&jp, 2000, many_tok[order[k]],
                                      many_len[order[k]], &o);
        }
        CHECK_EQ(relayed, CJ_PROXY_REPLAY_BITS);
    }
    CHECK_EQ(jp.stats.dropped_replay, CJ_PROXY_REPLAY_BITS);
}

TEST(proxy_window_exact_boundary)
{
    /* After CJ_PROXY_REPLAY_BITS + 1 forwards (counters 0..BITS), the
     * window is [1, BITS]: counter 0 is dropped though fresh and unused,
     * counter 1 is relayed. */
    cj_proxy_t jp, snap;
    cj_out_t o;

    jp_setup(&jp);
    for (int i = 0; i <= CJ_PROXY_REPLAY_BITS; i++)
        many_len[i] = (uint8_t)forward(&jp, 1000, (uint16_t)i, CJ_COAP_CON,
                                       many_tok[i]);
    CHECK_EQ(jp.token_counter, CJ_PROXY_REPLAY_BITS + 1);
    snap = jp;
    CHECK_EQ(answer(&jp, 1001, many_tok[0], many_len[0], &o), 0);
    CHECK_EQ(jp.stats.dropped_replay, 1);
    CHECK(same_but_stats(&jp, &snap));
    CHECK_EQ(answer(&jp, 1001, many_tok[1], many_len[1], &o), 1);
    CHECK_EQ(answer(&jp, 1001, many_tok[CJ_PROXY_REPLAY_BITS],
                    many_len[CJ_PROXY_REPLAY_BITS], &o), 1);
    /* Two more forwards (counters BITS+1, BITS+2): the window is
     * [3, BITS+2]; counter 2 has just left it, 3 is the new lower edge. */
    {
        uint8_t ta[64], tb[64];
        size_t la = forward(&jp, 1000, 0, CJ_COAP_CON, ta);
        size_t lb = forward(&jp, 1000, 0, CJ_COAP_CON, tb);
        CHECK_EQ(answer(&jp, 1001, many_tok[2], many_len[2], &o), 0);
        CHECK_EQ(answer(&jp, 1001, many_tok[3], many_len[3], &o), 1);
        CHECK_EQ(answer(&jp, 1001, tb, lb, &o), 1);
        CHECK_EQ(answer(&jp, 1001, ta, la, &o), 1);
        CHECK_EQ(jp.stats.dropped_replay, 2);
    }
}

/* ---- malformed input -------------------------------------------------- */

#define HDR "44 02 1234 a1b2c3d4"
#define HOST "3b 3674697363682e61727061"
#define OSC "6b 19 05 08 0200000000000001"
#define SCHEME "d4 11 636f6170"
#define PAY "ff c0c1c2c3"

static const char *const bad_requests[] = {
    "",                                         /* empty datagram */
    "44",                                       /* truncated header */
    "84 02 1234 a1b2c3d4" HOST OSC SCHEME PAY,  /* version 2 */
    "4f 02 1234 a1b2c3d4" HOST OSC SCHEME PAY,  /* TKL 15: reserved */
    "44 44 1234 a1b2c3d4" HOST OSC SCHEME PAY,  /* 2.04: a response */
    "64 02 1234 a1b2c3d4" HOST OSC SCHEME PAY,  /* ACK */
    "74 02 1234 a1b2c3d4" HOST OSC SCHEME PAY,  /* RST */
    "40 00 1234",                               /* Empty CON (ping) */
    "44 20 1234 a1b2c3d4" HOST OSC SCHEME PAY,  /* 1.00: reserved class */
    HDR HOST OSC PAY,                           /* no Proxy-Scheme */
    HDR HOST OSC "d5 11 636f617073" PAY,        /* Proxy-Scheme "coaps" */
    HDR HOST OSC "d0 11" PAY,                   /* Proxy-Scheme empty */
    HDR HOST OSC SCHEME "04 636f6170" PAY,      /* two Proxy-Schemes */
    HDR "9b 19 05 08 0200000000000001" SCHEME PAY, /* no Uri-Host */
    HDR "3b 3674697363682e61727062" OSC SCHEME PAY, /* "6tisch.arpb" */
    HDR "3a 3674697363682e617270" OSC SCHEME PAY,   /* "6tisch.arp" */
    HDR HOST "0b 3674697363682e61727061" OSC SCHEME PAY, /* two hosts */
    HDR HOST "d4 17 636f6170" PAY,              /* no OSCORE */
    HDR HOST "60" SCHEME PAY,                   /* OSCORE empty */
    HDR HOST "62 09 05" SCHEME PAY,             /* no kid context */
    HDR HOST "62 e1 05" SCHEME PAY,             /* reserved flag bits */
    HDR HOST "67 19 05 08 02000000" SCHEME PAY, /* kid context cut */
    HDR HOST OSC "0b 19 05 08 0200000000000001" SCHEME PAY, /* two OSCORE */
    HDR HOST "30" "3b 19 05 08 0200000000000001" SCHEME PAY, /* Observe */
    HDR HOST OSC "d0 0d" "44 636f6170" PAY,     /* Proxy-Uri */
    HDR HOST OSC SCHEME "ff",                   /* marker, no payload */
    HDR HOST OSC "d4 11 636f61",                /* option runs past end */
};

/* None is forwarded.  A version 1 CON among them is rejected with the
 * RST of its message ID, to the pledge (RFC 7252 section 4.2); the rest
 * gets nothing. */
TEST(proxy_malformed_requests)
{
    cj_proxy_t jp, snap;
    uint8_t req[512];
    cj_addr_t a = pledge_addr(1), toolong = pledge_addr(1);
    cj_out_t o;
    size_t len, n = sizeof bad_requests / sizeof bad_requests[0], rst = 0;

    jp_setup(&jp);
    snap = jp;
    for (size_t i = 0; i < n; i++) {
        int want, rc;
        o = out_slot(outbuf, sizeof outbuf);
        len = cj_hex(bad_requests[i], req, sizeof req);
        want = len >= 4 && req[0] >> 4 == 4 ? 2 : 0; /* version 1, CON */
        rc = cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o);
        if (rc != want)
            cj_test_failf(__FILE__, __LINE__, "bad request %zu: %d", i, rc);
        if (want) {
            rst++;
            CHECK_HEX(o.buf, o.len, "7000 1234");
            CHECK(cj_addr_equal(&o.to, &a));
        } else {
            CHECK_EQ(o.len, 0);
        }
        CHECK_EQ(jp.stats.dropped_malformed, i + 1);
        CHECK_EQ(jp.stats.resets, rst);
    }
    CHECK_EQ(rst, n - 5); /* empty, truncated, version 2, ACK, RST */
    /* no room for the RST: dropped without it */
    o = out_slot(outbuf, CJ_PROXY_ACK_LEN - 1);
    len = cj_hex("40 00 1234", req, sizeof req);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 0);
    CHECK_EQ(o.len, 0);
    /* a NON gets nothing either (RFC 7252 section 4.3) */
    o = out_slot(outbuf, sizeof outbuf);
    len = cj_hex("54 44 1234 a1b2c3d4" HOST OSC SCHEME PAY, req, sizeof req);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 0);
    CHECK_EQ(o.len, 0);
    CHECK_EQ(jp.stats.resets, rst);
    CHECK_EQ(jp.stats.dropped_malformed, n + 2);
    n += 2;
    /* The same well-formed request from an over-long address. */
    len = cj_hex(HDR HOST OSC SCHEME PAY, req, sizeof req);
    toolong.len = CJ_ADDR_MAX + 1;
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &toolong, req, len, &o), 0);
    /* NULL message. */
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, NULL, 0, &o), 0);
    /* Output buffer too small for the forwarded request. */
    o = out_slot(outbuf, 40);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 0);
    CHECK_EQ(o.len, 0);
    CHECK_EQ(jp.stats.dropped_malformed, n + 3);
    CHECK_EQ(drops(&jp.stats), n + 3);
    CHECK(same_but_stats(&jp, &snap));
    /* The reference request itself is fine, and so is any method. */
    o = out_slot(outbuf, sizeof outbuf);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 1);
    req[1] = CJ_COAP_FETCH;
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 1);
    CHECK_EQ(o.buf[1], CJ_COAP_FETCH);
}

TEST(proxy_oversize_request)
{
    /* CJ_PROXY_MAX_MSG bounds both the datagram accepted and the one
     * forwarded (which grows by the state token): the forwarded size is
     * input + 35 here (44-byte token + 1 length byte - 4-byte token - 6
     * bytes of Proxy-Scheme). */
    cj_proxy_t jp;
    uint8_t req[512];
    cj_addr_t a = pledge_addr(1);
    cj_out_t o = out_slot(outbuf, sizeof outbuf);
    size_t fit = CJ_PROXY_MAX_MSG - 74, len; /* request = 39 + payload */

    jp_setup(&jp);
    len = pledge_req(req, CJ_COAP_CON, 1, PTOK, 4, PLEDGE_ID, fit);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 1);
    CHECK_EQ(o.len, CJ_PROXY_MAX_MSG);
    len = pledge_req(req, CJ_COAP_CON, 1, PTOK, 4, PLEDGE_ID, fit + 1);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 0);
    len = pledge_req(req, CJ_COAP_CON, 1, PTOK, 4, PLEDGE_ID,
                     CJ_PROXY_MAX_MSG);
    CHECK(len > CJ_PROXY_MAX_MSG);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 0);
    CHECK_EQ(jp.stats.dropped_malformed, 2);
}

TEST(proxy_pledge_token_limit)
{
    /* 24-byte address: state = 22 + T + 24 <= 64 allows T <= 18. */
    cj_proxy_t jp, snap;
    uint8_t req[512], ptok[20], tok[64];
    cj_addr_t a;
    cj_out_t o = out_slot(outbuf, sizeof outbuf);
    size_t len, tl;

    memset(&a, 0x5a, sizeof a);
    a.len = CJ_ADDR_MAX;
    for (int i = 0; i < 20; i++)
        ptok[i] = (uint8_t)(0x70 + i);
    jp_setup(&jp);
    snap = jp;
    /* one byte too many: a CON is rejected with its RST (RFC 8974
     * section 2.2.2: a client learns the limit by trial and error), a
     * NON is dropped */
    len = pledge_req(req, CJ_COAP_CON, 0x4242, ptok, 19, PLEDGE_ID, 4);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 2);
    CHECK_HEX(o.buf, o.len, "7000 4242");
    CHECK(cj_addr_equal(&o.to, &a));
    len = pledge_req(req, CJ_COAP_NON, 0x4243, ptok, 19, PLEDGE_ID, 4);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 0);
    CHECK_EQ(o.len, 0);
    CHECK_EQ(jp.stats.dropped_malformed, 2);
    CHECK_EQ(jp.stats.resets, 1);
    CHECK(same_but_stats(&jp, &snap));
    len = pledge_req(req, CJ_COAP_CON, 0x4242, ptok, 18, PLEDGE_ID, 4);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 1);
    tl = fwd_token(o.buf, o.len, tok);
    CHECK_EQ(tl, CJ_COAP_MAX_TOKEN);
    CHECK_EQ(answer(&jp, 1001, tok, tl, &o), 1);
    CHECK(cj_addr_equal(&o.to, &a));
    CHECK_EQ(o.buf[0], 0x40 | 0x20 | 13); /* ACK, TKL 13 */
    CHECK_EQ(o.buf[4], 18 - 13);
    CHECK_MEM(o.buf + 5, 18, ptok, 18);
    /* Agreed case: 8-byte token, 24-byte address, 54 bytes. */
    len = pledge_req(req, CJ_COAP_NON, 1, ptok, 8, PLEDGE_ID, 4);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 1);
    CHECK_EQ(fwd_token(o.buf, o.len, tok), 54);
    /* Empty pledge token and empty address: the shortest state, 22. */
    a.len = 0;
    len = pledge_req(req, CJ_COAP_CON, 9, NULL, 0, PLEDGE_ID, 4);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 1);
    tl = fwd_token(o.buf, o.len, tok);
    CHECK_EQ(tl, CJ_PROXY_STATE_OVERHEAD);
    CHECK_EQ(answer(&jp, 1001, tok, tl, &o), 1);
    CHECK_EQ(o.to.len, 0);
    CHECK_HEX(o.buf, 4, "6044 0009");
}

TEST(proxy_malformed_responses)
{
    cj_proxy_t jp, snap;
    uint8_t tok[64], resp[512], junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    cj_addr_t j = jrc_addr();
    cj_out_t o;
    size_t tl, rl;
    /* All with the genuine token: the type and code alone decide.  ACK
     * and RST are never answered (RFC 7252 section 4.2), a request or a
     * reserved class in a CON gets no Reset either. */
    static const uint8_t types_codes[][2] = {
        {CJ_COAP_ACK, CJ_COAP_CHANGED},  /* ACK to a NON request */
        {CJ_COAP_RST, CJ_COAP_CHANGED},
        {CJ_COAP_NON, CJ_COAP_POST},     /* a request */
        {CJ_COAP_CON, CJ_COAP_POST},
        {CJ_COAP_NON, CJ_COAP_CODE(1, 0)}, /* reserved classes */
        {CJ_COAP_NON, CJ_COAP_CODE(6, 0)},
        {CJ_COAP_NON, CJ_COAP_CODE(7, 31)},
        {CJ_COAP_CON, CJ_COAP_CODE(1, 0)},
        {CJ_COAP_CON, CJ_COAP_CODE(6, 0)},
    };
    size_t nt = sizeof types_codes / sizeof types_codes[0];

    jp_setup(&jp);
    tl = forward(&jp, 1000, 1, CJ_COAP_CON, tok);
    snap = jp;
    for (size_t i = 0; i < nt; i++) {
        rl = jrc_resp(resp, types_codes[i][0], types_codes[i][1], tok, tl);
        o = out_slot(outbuf2, sizeof outbuf2);
        CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
        CHECK_EQ(jp.stats.dropped_malformed, i + 1);
        CHECK_EQ(o.len + ack.len, 0);
    }
    /* Not CoAP at all; Empty NON; Empty CON (a ping: no Reset from the
     * engine); truncated after the token. */
    rl = cj_hex("ff", resp, sizeof resp);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
    rl = cj_hex("50 00 7777", resp, sizeof resp);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
    rl = cj_hex("40 00 7777", resp, sizeof resp);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(ack.len, 0);
    /* Empty ACK and RST (what a JRC answers a CON with) */
    rl = cj_hex("60 00 7777", resp, sizeof resp);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
    rl = cj_hex("70 00 7777", resp, sizeof resp);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(ack.len, 0);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, 0, &o, ack_slot()), 0);
    rl = jrc_resp(resp, CJ_COAP_NON, CJ_COAP_CHANGED, tok, tl);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, 20, &o, ack_slot()), 0);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, NULL, 0, &o, ack_slot()), 0);
    CHECK_EQ(jp.stats.dropped_malformed, nt + 8);
    /* Tokens that cannot be ours: none, 8 bytes, 21 bytes. */
    rl = jrc_resp(resp, CJ_COAP_NON, CJ_COAP_CHANGED, NULL, 0);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
    rl = jrc_resp(resp, CJ_COAP_NON, CJ_COAP_CHANGED, junk, 8);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
    rl = jrc_resp(resp, CJ_COAP_NON, CJ_COAP_CHANGED, tok, 21);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(jp.stats.dropped_token, 3);
    /* Output buffer too small: dropped, token not consumed. */
    rl = jrc_resp(resp, CJ_COAP_NON, CJ_COAP_CHANGED, tok, tl);
    o = out_slot(outbuf2, 20);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 0);
    CHECK_EQ(o.len, 0);
    CHECK_EQ(jp.stats.dropped_malformed, nt + 9);
    CHECK_EQ(jp.stats.relayed + jp.stats.acks + jp.stats.resets, 0);
    CHECK(same_but_stats(&jp, &snap));
    /* The genuine response after all that. */
    o = out_slot(outbuf2, sizeof outbuf2);
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 1);
    /* A bare response (no options, no payload) is relayed as a bare
     * ACK; an error code too. */
    tl = forward(&jp, 1000, 1, CJ_COAP_CON, tok);
    {
        cj_coap_builder_t b;
        cj_coap_build_init(&b, resp, sizeof resp, CJ_COAP_NON,
                           CJ_COAP_UNAUTHORIZED, 1, tok, tl);
        rl = (size_t)cj_coap_build_finish(&b);
    }
    CHECK_EQ(cj_proxy_input_jrc(&jp, 1100, &j, resp, rl, &o, ack_slot()), 1);
    CHECK_HEX(o.buf, o.len, "64 81 1001 a1b2c3d4");
}

/* ---- init and setters ------------------------------------------------- */

TEST(proxy_init_defaults)
{
    cj_proxy_t jp;
    cj_proxy_cfg_t cfg;

    memset(&cfg, 0, sizeof cfg);
    cfg.join_rate = CJ_PROXY_RATE_UNLIMITED;
    CHECK_EQ(cj_proxy_init(&jp, &cfg, NULL), CJ_OK);
    /* All-zero key: drawn at random (all zero again has 2^-128 odds). */
    {
        uint8_t zero[16] = {0};
        CHECK(memcmp(jp.cfg.token_key, zero, 16) != 0);
    }
    CHECK_EQ(jp.cfg.rate_window_ms, CJ_COJP_ACK_TIMEOUT_MS);
    CHECK_EQ(jp.cfg.token_lifetime_ms, 4 * CJ_COJP_ACK_TIMEOUT_MS);
    CHECK_EQ(jp.token_counter, 0);
    CHECK_EQ(jp.blacklist_count, 0);
    CHECK_EQ(drops(&jp.stats) + jp.stats.forwarded + jp.stats.relayed, 0);
    /* Works without a platform (no log): the JRC is the empty address. */
    {
        uint8_t tok[64];
        cj_out_t o;
        size_t tl = forward(&jp, 10, 1, CJ_COAP_CON, tok);
        cj_addr_t none;
        uint8_t resp[256];
        CHECK_EQ(tl, 44);
        memset(&none, 0, sizeof none);
        o = out_slot(outbuf2, sizeof outbuf2);
        CHECK_EQ(cj_proxy_input_jrc(&jp, 20, &none, resp,
                                    jrc_resp(resp, CJ_COAP_NON,
                                             CJ_COAP_CHANGED, tok, tl),
                                    &o, ack_slot()),
                 1);
    }
}

static unsigned log_lines;
static void count_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    (void)msg;
    log_lines++;
}

TEST(proxy_logs_drops)
{
    cj_proxy_t jp;
    cj_out_t o = out_slot(outbuf, sizeof outbuf);
    cj_addr_t a = pledge_addr(1);

    jp_setup(&jp);
    plat.port.log = count_log;
    log_lines = 0;
    CHECK_EQ(cj_proxy_input_pledge(&jp, 0, &a, (const uint8_t *)"x", 1, &o), 0);
    CHECK_EQ(log_lines, 1);
}

/* M4 (RFC 9031 section 8.4.2: "The joined node MUST silently drop any
 * link-layer frames originating from the pledge identifiers enclosed in
 * the blacklist parameter").  The kid context is the sender's choice: a
 * blacklisted pledge sending R2 || R3 (or any other value) as kid context
 * passes the in-engine filter, so the host checks the link-layer source
 * with cj_proxy_blacklisted(); a UDP host derives the EUI-64 from the
 * link-local interface identifier (RFC 4291 Appendix A). */
TEST(proxy_blacklist_link_layer_source)
{
    cj_proxy_t jp;
    uint8_t req[256], eui[8];
    const uint8_t *ids[1] = {PLEDGE_ID};
    size_t lens[1] = {8};
    static const uint8_t r2r3[8] = {0x99, 0x98, 0x97, 0x96,
                                    0x95, 0x94, 0x93, 0x92};
    /* fe80::0000:0000:0000:0001 with the U/L bit of PLEDGE_ID inverted:
     * PLEDGE_ID = 02 00 00 00 00 00 00 01, so the IID is 00 00 .. 01 */
    uint8_t ll[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    cj_addr_t a = pledge_addr(1);
    cj_out_t o = out_slot(outbuf, sizeof outbuf);
    size_t len;

    memcpy(ll + 8, PLEDGE_ID, 8);
    ll[8] ^= 0x02;
    jp_setup(&jp);
    CHECK_EQ(cj_proxy_set_blacklist(&jp, ids, lens, 1), CJ_OK);

    /* the kid-context filter alone lets the disguised request through */
    len = pledge_req(req, CJ_COAP_CON, 1, PTOK, 4, r2r3, 8);
    CHECK_EQ(cj_proxy_input_pledge(&jp, 1000, &a, req, len, &o), 1);

    /* the link-layer check catches the source */
    CHECK(cj_proxy_blacklisted(&jp, PLEDGE_ID, 8));
    CHECK(!cj_proxy_blacklisted(&jp, OTHER_ID, 8));
    CHECK(!cj_proxy_blacklisted(&jp, NULL, 8));
    CHECK(!cj_proxy_blacklisted(&jp, PLEDGE_ID, 0));
    CHECK(!cj_proxy_blacklisted(&jp, PLEDGE_ID, 7));
    CHECK_EQ(cj_proxy_eui64_from_ipv6(ll, eui), CJ_OK);
    CHECK_MEM(eui, 8, PLEDGE_ID, 8);
    CHECK(cj_proxy_blacklisted(&jp, eui, sizeof eui));

    /* RFC 4291 Appendix A example: EUI-64 00-12-4b-00-01-02-03-04 gives
     * the IID 0212:4b00:0102:0304 */
    {
        uint8_t a6[16];
        cj_hex("fe80000000000000 02124b0001020304", a6, sizeof a6);
        CHECK_EQ(cj_proxy_eui64_from_ipv6(a6, eui), CJ_OK);
        CHECK_HEX(eui, 8, "00124b0001020304");
        /* not link-local */
        a6[0] = 0x20;
        a6[1] = 0x01;
        memset(eui, 0xee, sizeof eui);
        CHECK_EQ(cj_proxy_eui64_from_ipv6(a6, eui), CJ_ERR_INVALID);
        CHECK_HEX(eui, 8, "eeeeeeeeeeeeeeee");
        /* fe80:0:0:1::/64 is not fe80::/64 */
        cj_hex("fe80000000000001 02124b0001020304", a6, sizeof a6);
        CHECK_EQ(cj_proxy_eui64_from_ipv6(a6, eui), CJ_ERR_INVALID);
        /* an IID made from a 16-bit short address carries no EUI-64 */
        cj_hex("fe80000000000000 000000fffe00af93", a6, sizeof a6);
        CHECK_EQ(cj_proxy_eui64_from_ipv6(a6, eui), CJ_ERR_INVALID);

        /* the inverse: the same example under fe80::/64 and under a
         * global prefix (the address a JRC derives, RFC 9031 section
         * 8.2.1), and back */
        static const uint8_t ll64[8] = {0xfe, 0x80};
        uint8_t prefix[8], e[8];
        cj_hex("00124b0001020304", e, sizeof e);
        cj_proxy_ipv6_from_eui64(ll64, e, a6);
        CHECK_HEX(a6, 16, "fe80000000000000 02124b0001020304");
        CHECK_EQ(cj_proxy_eui64_from_ipv6(a6, eui), CJ_OK);
        CHECK_MEM(eui, 8, e, 8);
        cj_hex("20010db800000001", prefix, sizeof prefix);
        cj_hex("0a00000000000001", e, sizeof e);
        cj_proxy_ipv6_from_eui64(prefix, e, a6);
        CHECK_HEX(a6, 16, "20010db800000001 0800000000000001");
    }
}

/* Datagrams from the JRC: requests (parameter updates), ACK/RST and
 * responses with a token too short to be the JP's go to the JP's own
 * node; responses, NON or CON, with a token of JP size (22 bytes at
 * least) to the relay (RFC 7252 section 3 for the header bytes below;
 * 5d = NON TKL 13, 4d = CON TKL 13, extended length 09: 22 bytes). */
#define TOK22 "09 00112233445566778899aabbccddeeff001122334455"
TEST(proxy_for_node_split)
{
    static const struct {
        const char *hex;
        bool node;
    } cases[] = {
        {"60441234", true},          /* ACK 2.04, no token */
        {"70001234", true},          /* RST */
        {"60001234", true},          /* empty ACK: a separate response follows */
        {"42021234a1b2b16a", true},  /* CON POST, token a1b2, Uri-Path j */
        {"5202abcdc1c2", true},      /* NON POST, token c1c2 */
        {"5d44abcd" TOK22, false},   /* NON 2.04, JP-size token: relayed */
        {"4d44abcd" TOK22, false},   /* CON 2.04, JP-size token: relayed */
        {"4d84abcd" TOK22, false},   /* CON 4.04 likewise */
        {"4d02abcd" TOK22, true},    /* CON POST with a long token */
        {"4444abcda1b2c3d4", true},  /* CON 2.04, 4-byte token: the node's
                                      * own separate Join Response */
        {"5244abcdc1c2", true},      /* NON 2.04, 2-byte token: its own */
        {"4c44abcd 00112233445566778899aabb", true}, /* 12 bytes */
        {"4d44abcd 08 00112233445566778899aabbccddeeff0011223344", true},
                                     /* 21 bytes: one short of a JP token */
        {"4d24abcd" TOK22, false},   /* reserved class 1: nobody's */
        {"40001234", false},         /* CON Empty (ping): nobody's */
        {"5f441234", false},         /* token length 15: not CoAP */
        {"", false},
    };
    uint8_t buf[64];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = cj_hex(cases[i].hex, buf, sizeof buf);
        if (cj_proxy_for_node(buf, n) != cases[i].node)
            cj_test_failf(__FILE__, __LINE__, "case %zu (%s)", i, cases[i].hex);
    }
}

/* ---- join rate without time passing, token counter space ---------------- */

/* The bucket refills only as time advances: a burst at one instant gets
 * what the bucket holds and no more; a clock that steps back gives
 * nothing either (and a dropped request leaves the engine as it was);
 * the next request passes exactly when join_rate has refilled the
 * missing bytes (section 8.4.2, PROBING_RATE in bytes per second). */
TEST(proxy_join_rate_no_refill_without_time)
{
    static cj_proxy_t jp, snap;
    uint8_t req[512];
    cj_addr_t a = pledge_addr(5);
    size_t len = pledge_req(req, CJ_COAP_CON, 9, PTOK, 4, PLEDGE_ID, 16);
    size_t k = 0, size = 0, left;
    uint64_t t0 = 50000, wait;
    cj_out_t o;

    jp_setup_cfg(&jp, 100, 10000); /* 1000-byte bucket, full */
    for (;;) {
        o = out_slot(outbuf, sizeof outbuf);
        if (cj_proxy_input_pledge(&jp, t0, &a, req, len, &o) != 1)
            break;
        size = o.len;
        k++;
    }
    CHECK(size > 0);
    if (size == 0)
        return;
    CHECK_EQ(k, 1000 / size);
    CHECK_EQ(jp.stats.dropped_rate, 1);
    left = 1000 - k * size;
    snap = jp;
    o = out_slot(outbuf, sizeof outbuf);
    CHECK_EQ(cj_proxy_input_pledge(&jp, t0 - 4000, &a, req, len, &o), 0);
    CHECK_EQ(o.len, 0);
    CHECK_EQ(jp.stats.dropped_rate, 2);
    CHECK(same_but_stats(&jp, &snap));
    /* (size - left) bytes at 100 B/s: 10 ms per byte */
    wait = (size - left) * 10;
    o = out_slot(outbuf, sizeof outbuf);
    CHECK_EQ(cj_proxy_input_pledge(&jp, t0 + wait - 1, &a, req, len, &o), 0);
    CHECK(same_but_stats(&jp, &snap));
    o = out_slot(outbuf, sizeof outbuf);
    CHECK_EQ(cj_proxy_input_pledge(&jp, t0 + wait, &a, req, len, &o), 1);
    CHECK_EQ(o.len, size);
}

/* proxy.h: a token counter is never reused, since it is half of the CCM
 * nonce (RFC 3610 section 2: a nonce must not repeat under one key).
 * The last counter, 2^40 - 1, is still issued and its answer relayed;
 * after it every request is dropped (counted as dropped_rate) and
 * nothing else changes. */
TEST(proxy_token_counter_exhausted)
{
    static cj_proxy_t jp, snap;
    uint8_t tok[64], tok2[64];
    size_t tl;
    cj_out_t o;

    jp_setup(&jp);
    jp.token_counter = CJ_PROXY_MAX_COUNTER;
    tl = forward(&jp, 1000, 1, CJ_COAP_CON, tok);
    CHECK(tl > 5);
    CHECK_HEX(tok, 5, "ffffffffff");
    CHECK_EQ(jp.token_counter, CJ_PROXY_MAX_COUNTER + 1);
    snap = jp;
    CHECK_EQ(forward(&jp, 1001, 2, CJ_COAP_CON, tok2), 0);
    CHECK_EQ(forward(&jp, 1002, 2, CJ_COAP_NON, tok2), 0);
    CHECK_EQ(jp.stats.dropped_rate, 2);
    CHECK_EQ(jp.stats.forwarded, 1);
    CHECK(same_but_stats(&jp, &snap));
    CHECK_EQ(answer(&jp, 1100, tok, tl, &o), 1);
    CHECK_EQ(jp.stats.relayed, 1);
}
