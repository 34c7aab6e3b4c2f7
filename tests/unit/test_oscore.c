/*
 * OSCORE: every RFC 8613 Appendix C vector, tamper / truncation runs over
 * each protected message, replay window edges, sequence-number
 * persistence (Appendix B.1.1) with a fault-injecting platform port,
 * Appendix B.2 re-derivation and a CoJP-shaped exchange (RFC 9031 7.3).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cojp/coap.h"
#include "cojp/crypto.h"
#include "cojp/oscore.h"
#include "../test.h"

/* ---- Appendix C inputs -------------------------------------------------- */

/* C.1 - C.3: Master Secret, Master Salt, ID Context. */
static const uint8_t ms[16] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                               0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
                               0x0d, 0x0e, 0x0f, 0x10};
static const uint8_t salt[8] = {0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40};
static const uint8_t idctx[8] = {0x37, 0xcb, 0xf3, 0x21, 0x00, 0x17, 0xa2, 0xd3};
static const uint8_t id00[1] = {0x00};
static const uint8_t id01[1] = {0x01};

enum { TV1 = 1, TV2 = 2, TV3 = 3 };

/* Derive the client (sender = the C.x "client" side) or server context of
 * test vector tv (C.1, C.2 or C.3). */
static int derive_tv(cj_oscore_ctx_t *ctx, int tv, bool client)
{
    cj_oscore_params_t p;
    memset(&p, 0, sizeof p);
    p.master_secret = ms;
    p.master_secret_len = sizeof ms;
    if (tv != TV2) {
        p.master_salt = salt;
        p.master_salt_len = sizeof salt;
    }
    if (tv == TV3) {
        p.id_context = idctx;
        p.id_context_len = sizeof idctx;
        p.has_id_context = true;
    }
    /* C.1 / C.3: client id h'', server id h'01.  C.2: 00 and 01. */
    const uint8_t *cid = tv == TV2 ? id00 : NULL;
    size_t cid_len = tv == TV2 ? 1 : 0;
    p.sender_id = client ? cid : id01;
    p.sender_id_len = client ? cid_len : 1;
    p.recipient_id = client ? id01 : cid;
    p.recipient_id_len = client ? 1 : cid_len;
    return cj_oscore_ctx_derive(ctx, &p);
}

/* Section 5.2, computed independently of the library: the Appendix C
 * "sender nonce" / "recipient nonce" lines follow from the IDs and the
 * derived Common IV. */
static void nonce_ref(uint8_t n[13], const uint8_t civ[13], const uint8_t *id,
                      size_t id_len, uint64_t piv)
{
    memset(n, 0, 13);
    n[0] = (uint8_t)id_len;
    memcpy(n + 8 - id_len, id, id_len);
    for (int i = 0; i < 5; i++)
        n[12 - i] = (uint8_t)(piv >> (8 * i));
    for (int i = 0; i < 13; i++)
        n[i] ^= civ[i];
}

static void check_nonces(const cj_oscore_ctx_t *c, const char *snonce,
                         const char *rnonce)
{
    uint8_t n[13];
    nonce_ref(n, c->common_iv, c->sender_id, c->sender_id_len, 0);
    CHECK_HEX(n, 13, snonce);
    nonce_ref(n, c->common_iv, c->recipient_id, c->recipient_id_len, 0);
    CHECK_HEX(n, 13, rnonce);
}

/* RFC 8613 Appendix C.1.1 / C.1.2 */
TEST(oscore_c1_key_derivation_with_salt)
{
    cj_oscore_ctx_t c, s;
    CHECK_EQ(derive_tv(&c, TV1, true), CJ_OK);
    CHECK_HEX(c.sender_key, 16, "f0910ed7295e6ad4b54fc793154302ff");
    CHECK_HEX(c.recipient_key, 16, "ffb14e093c94c9cac9471648b4f98710");
    CHECK_HEX(c.common_iv, 13, "4622d4dd6d944168eefb54987c");
    check_nonces(&c, "4622d4dd6d944168eefb54987c",
                 "4722d4dd6d944169eefb54987c");
    CHECK_EQ(c.ssn, 0);
    CHECK(!c.replay.valid);
    CHECK(c.platform == NULL);
    CHECK(!c.has_id_context);

    CHECK_EQ(derive_tv(&s, TV1, false), CJ_OK);
    CHECK_HEX(s.sender_key, 16, "ffb14e093c94c9cac9471648b4f98710");
    CHECK_HEX(s.recipient_key, 16, "f0910ed7295e6ad4b54fc793154302ff");
    CHECK_HEX(s.common_iv, 13, "4622d4dd6d944168eefb54987c");
    check_nonces(&s, "4722d4dd6d944169eefb54987c",
                 "4622d4dd6d944168eefb54987c");
}

/* The derived material of C.3's server context, kept and loaded again,
 * gives the very context cj_oscore_ctx_derive() gives; loading checks
 * the parameters as deriving does. */
TEST(oscore_okm_load_matches_derive)
{
    cj_oscore_ctx_t d, l;
    cj_oscore_params_t p;
    uint8_t okm[CJ_OSCORE_OKM_LEN];

    memset(&p, 0, sizeof p);
    p.master_secret = ms;
    p.master_secret_len = sizeof ms;
    p.master_salt = salt;
    p.master_salt_len = sizeof salt;
    p.id_context = idctx;
    p.id_context_len = sizeof idctx;
    p.has_id_context = true;
    p.sender_id = id01;
    p.sender_id_len = 1;
    CHECK_EQ(cj_oscore_okm(&p, okm), CJ_OK);
    /* RFC 8613 Appendix C.3.2: server Sender Key, Recipient Key, IV */
    CHECK_HEX(okm, sizeof okm, "e39a0c7c77b43f03b4b39ab9a268699f"
                               "af2a1300a5e95788b356336eeecd2b92"
                               "2ca58fb85ff1b81c0b7181b85e");
    CHECK_EQ(derive_tv(&d, TV3, false), CJ_OK);
    memset(&l, 0xa5, sizeof l);
    CHECK_EQ(cj_oscore_ctx_load(&l, &p, okm), CJ_OK);
    CHECK(memcmp(&d, &l, sizeof d) == 0);
    CHECK_EQ(cj_oscore_ctx_load(&l, &p, NULL), CJ_ERR_INVALID);
    p.recipient_id = id01; /* equal IDs (section 3.3) */
    p.recipient_id_len = 1;
    CHECK_EQ(cj_oscore_ctx_load(&l, &p, okm), CJ_ERR_INVALID);
    CHECK_EQ(cj_oscore_okm(&p, okm), CJ_ERR_INVALID);
}

/* RFC 8613 Appendix C.2.1 / C.2.2 */
TEST(oscore_c2_key_derivation_without_salt)
{
    cj_oscore_ctx_t c, s;
    CHECK_EQ(derive_tv(&c, TV2, true), CJ_OK);
    CHECK_HEX(c.sender_key, 16, "321b26943253c7ffb6003b0b64d74041");
    CHECK_HEX(c.recipient_key, 16, "e57b5635815177cd679ab4bcec9d7dda");
    CHECK_HEX(c.common_iv, 13, "be35ae297d2dace910c52e99f9");
    check_nonces(&c, "bf35ae297d2dace910c52e99f9",
                 "bf35ae297d2dace810c52e99f9");

    CHECK_EQ(derive_tv(&s, TV2, false), CJ_OK);
    CHECK_HEX(s.sender_key, 16, "e57b5635815177cd679ab4bcec9d7dda");
    CHECK_HEX(s.recipient_key, 16, "321b26943253c7ffb6003b0b64d74041");
    CHECK_HEX(s.common_iv, 13, "be35ae297d2dace910c52e99f9");
    check_nonces(&s, "bf35ae297d2dace810c52e99f9",
                 "bf35ae297d2dace910c52e99f9");
}

/* RFC 8613 Appendix C.3.1 / C.3.2 */
TEST(oscore_c3_key_derivation_with_id_context)
{
    cj_oscore_ctx_t c, s;
    CHECK_EQ(derive_tv(&c, TV3, true), CJ_OK);
    CHECK_HEX(c.sender_key, 16, "af2a1300a5e95788b356336eeecd2b92");
    CHECK_HEX(c.recipient_key, 16, "e39a0c7c77b43f03b4b39ab9a268699f");
    CHECK_HEX(c.common_iv, 13, "2ca58fb85ff1b81c0b7181b85e");
    check_nonces(&c, "2ca58fb85ff1b81c0b7181b85e",
                 "2da58fb85ff1b81d0b7181b85e");
    CHECK(c.has_id_context);
    CHECK_MEM(c.id_context, c.id_context_len, idctx, sizeof idctx);

    CHECK_EQ(derive_tv(&s, TV3, false), CJ_OK);
    CHECK_HEX(s.sender_key, 16, "e39a0c7c77b43f03b4b39ab9a268699f");
    CHECK_HEX(s.recipient_key, 16, "af2a1300a5e95788b356336eeecd2b92");
    CHECK_HEX(s.common_iv, 13, "2ca58fb85ff1b81c0b7181b85e");
    check_nonces(&s, "2da58fb85ff1b81d0b7181b85e",
                 "2ca58fb85ff1b81c0b7181b85e");
}

TEST(oscore_derive_rejects_bad_ids)
{
    cj_oscore_ctx_t c;
    cj_oscore_params_t p;
    static const uint8_t long_id[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t long_ctx[CJ_OSCORE_MAX_ID_CONTEXT + 1] = {0};
    memset(&p, 0, sizeof p);
    p.master_secret = ms;
    p.master_secret_len = 16;
    p.sender_id = long_id;
    p.sender_id_len = 8; /* section 3.3: at most nonce length - 6 = 7 */
    p.recipient_id = id01;
    p.recipient_id_len = 1;
    CHECK_EQ(cj_oscore_ctx_derive(&c, &p), CJ_ERR_INVALID);
    p.sender_id_len = 7;
    CHECK_EQ(cj_oscore_ctx_derive(&c, &p), CJ_OK);
    /* Equal Sender and Recipient IDs would share nonces (section 3.3). */
    p.sender_id = id01;
    p.sender_id_len = 1;
    CHECK_EQ(cj_oscore_ctx_derive(&c, &p), CJ_ERR_INVALID);
    p.sender_id_len = 0;
    p.recipient_id_len = 0;
    CHECK_EQ(cj_oscore_ctx_derive(&c, &p), CJ_ERR_INVALID);
    p.recipient_id_len = 1;
    p.id_context = long_ctx;
    p.id_context_len = sizeof long_ctx;
    p.has_id_context = true;
    CHECK_EQ(cj_oscore_ctx_derive(&c, &p), CJ_ERR_INVALID);
}

/* ---- Appendix C.4 - C.8 messages ---------------------------------------- */

/* C.4 */
#define C4_PLAIN "44015d1f00003974396c6f63616c686f737483747631"
#define C4_PROT "44025d1f00003974396c6f63616c686f7374620914ff612f1092f1776f1c1668b3825e"
/* C.5 */
#define C5_PLAIN "440171c30000b932396c6f63616c686f737483747631"
#define C5_PROT "440271c30000b932396c6f63616c686f737463091400ff4ed339a5a379b0b8bc731fffb0"
/* C.6 */
#define C6_PLAIN "44012f8eef9bbf7a396c6f63616c686f737483747631"
#define C6_PROT "44022f8eef9bbf7a396c6f63616c686f73746b19140837cbf3210017a2d3ff72cd7273fd331ac45cffbe55c3"
/* C.7 and C.8 (both answer C.4) */
#define C7_PLAIN "64455d1f00003974ff48656c6c6f20576f726c6421"
#define C7_PROT "64445d1f0000397490ffdbaad1e9a7e7b2a813d3c31524378303cdafae119106"
#define C8_PROT "64445d1f00003974920100ff4d4c13669384b67354b2b6175ff4b8658c666a6cf88e"

/* The vectors' COSE inputs, checked against the port directly: sealing
 * plaintext under key / nonce / AAD gives the ciphertext. */
static void check_cose(const char *key, const char *nonce, const char *aad,
                       const char *pt, const char *ct)
{
    uint8_t k[16], n[13], a[64], buf[64];
    size_t al, pl;
    CHECK_EQ(cj_hex(key, k, sizeof k), 16);
    CHECK_EQ(cj_hex(nonce, n, sizeof n), 13);
    al = cj_hex(aad, a, sizeof a);
    pl = cj_hex(pt, buf, sizeof buf);
    CHECK_EQ(cj_crypto_ccm_seal(k, n, a, al, buf, pl, 8), (int)(pl + 8));
    CHECK_HEX(buf, pl + 8, ct);
}

/* The OSCORE option value of a message. */
static void check_option(const uint8_t *msg, size_t len, const char *hex)
{
    cj_coap_msg_t m;
    cj_coap_opt_t o;
    CHECK_EQ(cj_coap_parse(&m, msg, len), CJ_OK);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_OSCORE, &o), 1);
    CHECK_HEX(o.val, o.len, hex);
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Run every way of breaking msg that must fail against ctx and check that
 * ctx is untouched afterwards, then that the genuine msg still verifies
 * to want.  req == NULL: a request; otherwise a response bound to *req. */
static void tamper_all(const cj_oscore_ctx_t *ctx0, const cj_oscore_req_t *req,
                       const uint8_t *msg, size_t len, const uint8_t *want,
                       size_t want_len)
{
    cj_oscore_ctx_t ctx;
    cj_coap_msg_t m;
    cj_coap_opt_t opt;
    uint8_t buf[128], out[128];
    size_t pay_off, opt_off;
    int rc;

    memcpy(&ctx, ctx0, sizeof ctx);
    CHECK_EQ(cj_coap_parse(&m, msg, len), CJ_OK);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_OSCORE, &opt), 1);
    pay_off = (size_t)(m.payload - msg);
    opt_off = (size_t)(opt.val - msg);

#define UNPROTECT(b, l)                                                    \
    (req ? cj_oscore_unprotect_response(&ctx, req, (b), (l), out, sizeof out) \
         : cj_oscore_unprotect_request(&ctx, (b), (l), out, sizeof out, NULL))

    /* Every ciphertext and tag byte, every bit. */
    for (size_t i = pay_off; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(buf, msg, len);
            buf[i] ^= (uint8_t)(1u << bit);
            CHECK_EQ(UNPROTECT(buf, len), CJ_ERR_AUTH);
            /* No plaintext released: the region was wiped. */
            CHECK(all_zero(buf + pay_off, len - pay_off - 8));
            CHECK(memcmp(&ctx, ctx0, sizeof ctx) == 0);
        }
    }
    /* Every byte of the OSCORE option value (flags, PIV, kid context,
     * kid), every bit. */
    for (size_t i = opt_off; i < opt_off + opt.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(buf, msg, len);
            buf[i] ^= (uint8_t)(1u << bit);
            rc = UNPROTECT(buf, len);
            CHECK(rc < 0);
            CHECK(memcmp(&ctx, ctx0, sizeof ctx) == 0);
        }
    }
    /* Every truncation. */
    for (size_t l = 0; l < len; l++) {
        memcpy(buf, msg, len);
        rc = UNPROTECT(buf, l);
        CHECK(rc < 0);
        CHECK(memcmp(&ctx, ctx0, sizeof ctx) == 0);
    }
    /* An output buffer one byte short fails and changes nothing. */
    memcpy(buf, msg, len);
    rc = req ? cj_oscore_unprotect_response(&ctx, req, buf, len, out,
                                            want_len - 1)
             : cj_oscore_unprotect_request(&ctx, buf, len, out, want_len - 1,
                                           NULL);
    CHECK_EQ(rc, CJ_ERR_NOSPACE);
    CHECK(memcmp(&ctx, ctx0, sizeof ctx) == 0);

    /* The genuine message still verifies after all that. */
    memcpy(buf, msg, len);
    rc = UNPROTECT(buf, len);
    CHECK_EQ(rc, (int)want_len);
    if (rc > 0)
        CHECK_MEM(out, (size_t)rc, want, want_len);
#undef UNPROTECT
}

/* Protect a request vector with the client context at ssn 20 and check
 * the option and the whole message, then verify it at the server, replay
 * it, and tamper with it. */
static void run_request_vector(int tv, bool kid_ctx, const char *plain_hex,
                               const char *prot_hex, const char *optval,
                               const char *kid_hex)
{
    cj_oscore_ctx_t cli, srv, srv0;
    cj_oscore_req_t creq, sreq;
    uint8_t plain[64], prot[96], out[128], buf[128];
    size_t pl = cj_hex(plain_hex, plain, sizeof plain);
    size_t ptl = cj_hex(prot_hex, prot, sizeof prot);
    int rc;

    CHECK_EQ(derive_tv(&cli, tv, true), CJ_OK);
    CHECK_EQ(derive_tv(&srv, tv, false), CJ_OK);
    cli.send_kid_context = kid_ctx;
    cli.ssn = 20;

    rc = cj_oscore_protect_request(&cli, plain, pl, out, sizeof out, &creq);
    CHECK_EQ(rc, (int)ptl);
    CHECK_MEM(out, (size_t)(rc > 0 ? rc : 0), prot, ptl);
    check_option(out, (size_t)(rc > 0 ? rc : 0), optval);
    CHECK_EQ(cli.ssn, 21);
    CHECK_EQ(creq.piv_len, 1);
    CHECK_EQ(creq.piv[0], 0x14);
    CHECK_HEX(creq.kid, creq.kid_len, kid_hex);

    /* The server recovers the unprotected request byte for byte. */
    memcpy(&srv0, &srv, sizeof srv);
    tamper_all(&srv0, NULL, prot, ptl, plain, pl);
    memcpy(buf, prot, ptl);
    rc = cj_oscore_unprotect_request(&srv, buf, ptl, out, sizeof out, &sreq);
    CHECK_EQ(rc, (int)pl);
    CHECK_MEM(out, (size_t)(rc > 0 ? rc : 0), plain, pl);
    CHECK_MEM(sreq.kid, sreq.kid_len, creq.kid, creq.kid_len);
    CHECK_MEM(sreq.piv, sreq.piv_len, creq.piv, creq.piv_len);
    CHECK(srv.replay.valid);
    CHECK_EQ(srv.replay.highest, 20);
    CHECK_EQ(srv.replay.bitmap, 1);

    /* Replaying it fails before decryption, leaving the bytes alone. */
    memcpy(buf, prot, ptl);
    memcpy(&srv0, &srv, sizeof srv);
    CHECK_EQ(cj_oscore_unprotect_request(&srv, buf, ptl, out, sizeof out,
                                         NULL),
             CJ_ERR_REPLAY);
    CHECK_MEM(buf, ptl, prot, ptl);
    CHECK(memcmp(&srv, &srv0, sizeof srv) == 0);
}

/* RFC 8613 Appendix C.4 */
TEST(oscore_c4_request)
{
    check_cose("f0910ed7295e6ad4b54fc793154302ff", "4622d4dd6d944168eefb549868",
               "8368456e63727970743040488501810a40411440", "01b3747631",
               "612f1092f1776f1c1668b3825e");
    run_request_vector(TV1, false, C4_PLAIN, C4_PROT, "0914", "");
}

/* RFC 8613 Appendix C.5 */
TEST(oscore_c5_request)
{
    check_cose("321b26943253c7ffb6003b0b64d74041", "bf35ae297d2dace910c52e99ed",
               "8368456e63727970743040498501810a4100411440", "01b3747631",
               "4ed339a5a379b0b8bc731fffb0");
    run_request_vector(TV2, false, C5_PLAIN, C5_PROT, "091400", "00");
}

/* RFC 8613 Appendix C.6 */
TEST(oscore_c6_request_with_kid_context)
{
    check_cose("af2a1300a5e95788b356336eeecd2b92", "2ca58fb85ff1b81c0b7181b84a",
               "8368456e63727970743040488501810a40411440", "01b3747631",
               "72cd7273fd331ac45cffbe55c3");
    run_request_vector(TV3, true, C6_PLAIN, C6_PROT, "19140837cbf3210017a2d3",
                       "");
}

/* The binding the C.4 request leaves on both sides: kid h'', PIV 0x14. */
static cj_oscore_req_t c4_binding(void)
{
    cj_oscore_req_t r;
    memset(&r, 0, sizeof r);
    r.piv[0] = 0x14;
    r.piv_len = 1;
    return r;
}

static void run_response_vector(bool new_piv, const char *prot_hex,
                                const char *optval)
{
    cj_oscore_ctx_t cli, cli0, srv;
    cj_oscore_req_t req = c4_binding();
    uint8_t plain[64], prot[96], out[128], buf[128];
    size_t pl = cj_hex(C7_PLAIN, plain, sizeof plain);
    size_t ptl = cj_hex(prot_hex, prot, sizeof prot);
    int rc;

    CHECK_EQ(derive_tv(&cli, TV1, true), CJ_OK);
    CHECK_EQ(derive_tv(&srv, TV1, false), CJ_OK);
    cli.ssn = 21; /* the client sent C.4 */

    rc = cj_oscore_protect_response(&srv, &req, new_piv, plain, pl, out,
                                    sizeof out);
    CHECK_EQ(rc, (int)ptl);
    CHECK_MEM(out, (size_t)(rc > 0 ? rc : 0), prot, ptl);
    check_option(out, (size_t)(rc > 0 ? rc : 0), optval);
    CHECK_EQ(srv.ssn, new_piv ? 1 : 0);

    memcpy(&cli0, &cli, sizeof cli);
    tamper_all(&cli0, &req, prot, ptl, plain, pl);
    memcpy(buf, prot, ptl);
    rc = cj_oscore_unprotect_response(&cli, &req, buf, ptl, out, sizeof out);
    CHECK_EQ(rc, (int)pl);
    CHECK_MEM(out, (size_t)(rc > 0 ? rc : 0), plain, pl);
    CHECK_EQ(cli.replay.valid, new_piv);

    /* Bound to the request: another request PIV breaks it. */
    req.piv[0] = 0x15;
    memcpy(buf, prot, ptl);
    memcpy(&cli0, &cli, sizeof cli);
    rc = cj_oscore_unprotect_response(&cli, &req, buf, ptl, out, sizeof out);
    CHECK(rc == CJ_ERR_AUTH || rc == CJ_ERR_REPLAY);
    CHECK(memcmp(&cli, &cli0, sizeof cli) == 0);
}

/* RFC 8613 Appendix C.7 */
TEST(oscore_c7_response_without_piv)
{
    check_cose("ffb14e093c94c9cac9471648b4f98710", "4622d4dd6d944168eefb549868",
               "8368456e63727970743040488501810a40411440",
               "45ff48656c6c6f20576f726c6421",
               "dbaad1e9a7e7b2a813d3c31524378303cdafae119106");
    run_response_vector(false, C7_PROT, "");
}

/* RFC 8613 Appendix C.8 */
TEST(oscore_c8_response_with_piv)
{
    check_cose("ffb14e093c94c9cac9471648b4f98710", "4722d4dd6d944169eefb54987c",
               "8368456e63727970743040488501810a40411440",
               "45ff48656c6c6f20576f726c6421",
               "4d4c13669384b67354b2b6175ff4b8658c666a6cf88e");
    run_response_vector(true, C8_PROT, "0100");
}

TEST(oscore_c8_response_piv_replayed)
{
    cj_oscore_ctx_t cli;
    cj_oscore_req_t req = c4_binding();
    uint8_t prot[96], buf[96], out[96];
    size_t ptl = cj_hex(C8_PROT, prot, sizeof prot);
    CHECK_EQ(derive_tv(&cli, TV1, true), CJ_OK);
    memcpy(buf, prot, ptl);
    CHECK_EQ(cj_oscore_unprotect_response(&cli, &req, buf, ptl, out,
                                          sizeof out),
             21);
    memcpy(buf, prot, ptl);
    CHECK_EQ(cj_oscore_unprotect_response(&cli, &req, buf, ptl, out,
                                          sizeof out),
             CJ_ERR_REPLAY);
}

/* ---- unprotect error classes -------------------------------------------- */

/* Seal a hand-made plaintext as the C.4 client would (PIV 20, kid h'')
 * behind the given outer part, for inputs protect never produces. */
static size_t forge_c4(uint8_t *msg, const char *outer_hex, const char *pt_hex)
{
    cj_oscore_ctx_t cli;
    uint8_t nonce[13], aad[32];
    size_t n = cj_hex(outer_hex, msg, 128), pl, al;
    derive_tv(&cli, TV1, true);
    cj_hex("4622d4dd6d944168eefb549868", nonce, sizeof nonce);
    al = cj_hex("8368456e63727970743040488501810a40411440", aad, sizeof aad);
    msg[n++] = 0xff;
    pl = cj_hex(pt_hex, msg + n, 128);
    CHECK_EQ(cj_crypto_ccm_seal(cli.sender_key, nonce, aad, al, msg + n, pl, 8),
             (int)(pl + 8));
    return n + pl + 8;
}

TEST(oscore_unprotect_discards_misplaced_options)
{
    cj_oscore_ctx_t srv;
    uint8_t msg[160], out[160];
    /* Outer: ETag (Class E, discarded) and the OSCORE option.  Inner:
     * Uri-Host (Class U, discarded) and Uri-Path. */
    size_t n = forge_c4(msg, "44025d1f00003974 41aa 520914",
                        "01 396c6f63616c686f7374 83747631");
    CHECK_EQ(derive_tv(&srv, TV1, false), CJ_OK);
    int rc = cj_oscore_unprotect_request(&srv, msg, n, out, sizeof out, NULL);
    CHECK_EQ(rc, 12);
    CHECK_HEX(out, (size_t)(rc > 0 ? rc : 0), "44015d1f00003974 b3747631");
}

TEST(oscore_unprotect_bad_plaintext)
{
    static const char *const bad[] = {
        "45 b3747631",   /* response code inside a request */
        "ff b3747631",   /* no code: a payload marker */
        "01 f1",         /* reserved option nibble */
        "01 b5747631",   /* option runs past the end */
        "01 ff",         /* payload marker with nothing after it */
        "01 90 23747631", /* an OSCORE option inside (section 4.1.3.7) */
        "01 90",          /* the same, alone */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cj_oscore_ctx_t srv, srv0;
        uint8_t msg[160], out[160];
        size_t n = forge_c4(msg, "44025d1f00003974 920914", bad[i]);
        CHECK_EQ(derive_tv(&srv, TV1, false), CJ_OK);
        memcpy(&srv0, &srv, sizeof srv);
        CHECK_EQ(cj_oscore_unprotect_request(&srv, msg, n, out, sizeof out,
                                             NULL),
                 CJ_ERR_OSCORE_DECODE);
        CHECK(memcmp(&srv, &srv0, sizeof srv) == 0);
        /* The tag verified, yet no plaintext is left behind. */
        CHECK_EQ(msg[11], 0xff);
        CHECK(all_zero(msg + 12, n - 12 - 8));
    }
}

TEST(oscore_unprotect_option_errors)
{
    cj_oscore_ctx_t srv;
    uint8_t msg[160], out[160];
    size_t n;
    CHECK_EQ(derive_tv(&srv, TV1, false), CJ_OK);

    /* No OSCORE option at all. */
    n = forge_c4(msg, "44025d1f00003974", "01b3747631");
    CHECK_EQ(cj_oscore_unprotect_request(&srv, msg, n, out, sizeof out, NULL),
             CJ_ERR_OSCORE_DECODE);
    /* Two OSCORE options (not repeatable, section 2). */
    n = forge_c4(msg, "44025d1f00003974 920914 020914", "01b3747631");
    CHECK_EQ(cj_oscore_unprotect_request(&srv, msg, n, out, sizeof out, NULL),
             CJ_ERR_OSCORE_DECODE);
    /* Reserved flag bit. */
    n = forge_c4(msg, "44025d1f00003974 922914", "01b3747631");
    CHECK_EQ(cj_oscore_unprotect_request(&srv, msg, n, out, sizeof out, NULL),
             CJ_ERR_OSCORE_DECODE);
    /* A request without Partial IV. */
    n = forge_c4(msg, "44025d1f00003974 9108", "01b3747631");
    CHECK_EQ(cj_oscore_unprotect_request(&srv, msg, n, out, sizeof out, NULL),
             CJ_ERR_OSCORE_DECODE);
    /* kid 0x01 is not this server's Recipient ID (h''). */
    n = forge_c4(msg, "44025d1f00003974 93091401", "01b3747631");
    CHECK_EQ(cj_oscore_unprotect_request(&srv, msg, n, out, sizeof out, NULL),
             CJ_ERR_UNKNOWN_CONTEXT);
    /* A kid context this context does not have. */
    n = forge_c4(msg, "44025d1f00003974 94191401aa", "01b3747631");
    CHECK_EQ(cj_oscore_unprotect_request(&srv, msg, n, out, sizeof out, NULL),
             CJ_ERR_UNKNOWN_CONTEXT);
    /* PIV present, kid flag clear. */
    n = forge_c4(msg, "44025d1f00003974 920114", "01b3747631");
    CHECK_EQ(cj_oscore_unprotect_request(&srv, msg, n, out, sizeof out, NULL),
             CJ_ERR_UNKNOWN_CONTEXT);
    /* OSCORE option but no payload (section 2: malformed). */
    cj_hex("44025d1f00003974 920914", msg, sizeof msg);
    CHECK_EQ(cj_oscore_unprotect_request(&srv, msg, 11, out, sizeof out, NULL),
             CJ_ERR_OSCORE_DECODE);
    CHECK(!srv.replay.valid);
}

/* ---- option value codec (section 6.1) ----------------------------------- */

TEST(oscore_option_decode_vectors)
{
    cj_oscore_option_t o;
    uint8_t v[32], enc[64];
    size_t n;

    CHECK_EQ(cj_oscore_option_decode(NULL, 0, &o), CJ_OK);
    CHECK(!o.has_kid && !o.has_kid_context && o.piv_len == 0);
    CHECK_EQ(cj_oscore_option_encode(enc, sizeof enc, &o), 0);

    /* C.6: PIV 14, kid context 37cbf3210017a2d3, empty kid. */
    n = cj_hex("19140837cbf3210017a2d3", v, sizeof v);
    CHECK_EQ(cj_oscore_option_decode(v, n, &o), CJ_OK);
    CHECK_HEX(o.piv, o.piv_len, "14");
    CHECK(o.has_kid_context);
    CHECK_MEM(o.kid_context, o.kid_context_len, idctx, 8);
    CHECK(o.has_kid);
    CHECK_EQ(o.kid_len, 0);
    CHECK_EQ(cj_oscore_option_encode(enc, sizeof enc, &o), (int)n);
    CHECK_MEM(enc, n, v, n);
    CHECK_EQ(cj_oscore_option_encode(enc, n - 1, &o), CJ_ERR_NOSPACE);

    /* C.5: PIV 14, kid 00. */
    n = cj_hex("091400", v, sizeof v);
    CHECK_EQ(cj_oscore_option_decode(v, n, &o), CJ_OK);
    CHECK_HEX(o.kid, o.kid_len, "00");
    /* C.8: PIV 00 only. */
    n = cj_hex("0100", v, sizeof v);
    CHECK_EQ(cj_oscore_option_decode(v, n, &o), CJ_OK);
    CHECK_HEX(o.piv, o.piv_len, "00");
    CHECK(!o.has_kid);
    /* Largest PIV, kid context of length 0. */
    n = cj_hex("15ffffffffff00", v, sizeof v);
    CHECK_EQ(cj_oscore_option_decode(v, n, &o), CJ_OK);
    CHECK_EQ(cj_oscore_piv_value(o.piv, o.piv_len), CJ_OSCORE_MAX_SSN);
    CHECK(o.has_kid_context && o.kid_context_len == 0);

    static const char *const bad[] = {
        "00",           /* all flags zero: must be the empty value */
        "0000",         /* same, with a trailing byte */
        "20",           /* reserved bit */
        "8914",         /* reserved bit */
        "06010203040506", /* n = 6 */
        "0701020304050607", /* n = 7 */
        "02",           /* PIV past the end */
        "0214",         /* PIV past the end */
        "020014",       /* PIV with a leading zero byte */
        "10",           /* kid context length missing */
        "1002aa",       /* kid context past the end */
        "0114aa",       /* bytes left with k = 0 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = cj_hex(bad[i], v, sizeof v);
        CHECK_EQ(cj_oscore_option_decode(v, n, &o), CJ_ERR_OSCORE_DECODE);
    }
}

TEST(oscore_option_encode_invalid)
{
    cj_oscore_option_t o;
    uint8_t piv[6] = {1, 2, 3, 4, 5, 6}, out[16];
    memset(&o, 0, sizeof o);
    o.piv = piv;
    o.piv_len = 6;
    CHECK_EQ(cj_oscore_option_encode(out, sizeof out, &o), CJ_ERR_INVALID);
    piv[0] = 0;
    o.piv_len = 2;
    CHECK_EQ(cj_oscore_option_encode(out, sizeof out, &o), CJ_ERR_INVALID);
    o.piv_len = 1;
    CHECK_EQ(cj_oscore_option_encode(out, sizeof out, &o), 2);
    CHECK_HEX(out, 2, "0100");
}

/* ---- replay window (section 7.4) ---------------------------------------- */

TEST(oscore_replay_window_edges)
{
    cj_oscore_replay_t w;
    memset(&w, 0, sizeof w);

    /* Empty window: anything goes, 0 included. */
    CHECK_EQ(cj_oscore_replay_check(&w, 0), CJ_OK);
    cj_oscore_replay_update(&w, 0);
    CHECK_EQ(cj_oscore_replay_check(&w, 0), CJ_ERR_REPLAY);
    CHECK_EQ(cj_oscore_replay_check(&w, 1), CJ_OK);

    cj_oscore_replay_update(&w, 100);
    CHECK_EQ(cj_oscore_replay_check(&w, 100), CJ_ERR_REPLAY); /* duplicate */
    CHECK_EQ(cj_oscore_replay_check(&w, 69), CJ_OK);  /* 31 below: inside */
    CHECK_EQ(cj_oscore_replay_check(&w, 68), CJ_ERR_REPLAY); /* 32 below */
    CHECK_EQ(cj_oscore_replay_check(&w, 0), CJ_ERR_REPLAY);
    cj_oscore_replay_update(&w, 69);
    CHECK_EQ(cj_oscore_replay_check(&w, 69), CJ_ERR_REPLAY);
    CHECK_EQ(cj_oscore_replay_check(&w, 70), CJ_OK);
    CHECK_EQ(cj_oscore_replay_check(&w, 99), CJ_OK);

    /* One step forward: 69 falls out of the window, 70 still inside. */
    cj_oscore_replay_update(&w, 101);
    CHECK_EQ(cj_oscore_replay_check(&w, 69), CJ_ERR_REPLAY);
    CHECK_EQ(cj_oscore_replay_check(&w, 70), CJ_OK);
    CHECK_EQ(cj_oscore_replay_check(&w, 100), CJ_ERR_REPLAY);

    /* Out-of-order arrivals inside the window. */
    for (uint64_t p = 99; p > 70; p -= 3)
        cj_oscore_replay_update(&w, p);
    for (uint64_t p = 70; p <= 101; p++) {
        bool seen = p == 100 || p == 101 || (p <= 99 && (99 - p) % 3 == 0);
        CHECK_EQ(cj_oscore_replay_check(&w, p), seen ? CJ_ERR_REPLAY : CJ_OK);
    }

    /* Far jump: the whole old window is gone. */
    cj_oscore_replay_update(&w, 1000000);
    CHECK_EQ(w.bitmap, 1);
    CHECK_EQ(cj_oscore_replay_check(&w, 101), CJ_ERR_REPLAY);
    CHECK_EQ(cj_oscore_replay_check(&w, 999999), CJ_OK);
    /* Jump of exactly the window size. */
    cj_oscore_replay_update(&w, 999999);
    cj_oscore_replay_update(&w, 1000000 + 32);
    CHECK_EQ(w.bitmap, 1);
    cj_oscore_replay_update(&w, 1000000 + 31 + 32);
    CHECK_EQ(w.bitmap, 0x80000001u);

    /* Updates below the window are ignored. */
    cj_oscore_replay_update(&w, 5);
    CHECK_EQ(w.highest, 1000000 + 31 + 32);
    CHECK_EQ(w.bitmap, 0x80000001u);

    /* The last usable Partial IV, and nothing above it. */
    CHECK_EQ(cj_oscore_replay_check(&w, CJ_OSCORE_MAX_SSN), CJ_OK);
    cj_oscore_replay_update(&w, CJ_OSCORE_MAX_SSN);
    CHECK_EQ(cj_oscore_replay_check(&w, CJ_OSCORE_MAX_SSN), CJ_ERR_REPLAY);
    CHECK_EQ(cj_oscore_replay_check(&w, CJ_OSCORE_MAX_SSN - 31), CJ_OK);
    CHECK_EQ(cj_oscore_replay_check(&w, CJ_OSCORE_MAX_SSN - 32),
             CJ_ERR_REPLAY);
    CHECK_EQ(cj_oscore_replay_check(&w, CJ_OSCORE_MAX_SSN + 1),
             CJ_ERR_REPLAY);
}

TEST(oscore_piv_value)
{
    static const uint8_t p[5] = {0x01, 0x02, 0x03, 0x04, 0x05};
    CHECK_EQ(cj_oscore_piv_value(p, 0), 0);
    CHECK_EQ(cj_oscore_piv_value(p, 1), 1);
    CHECK_EQ(cj_oscore_piv_value(p, 5), 0x0102030405ull);
}

/* Protect many requests and verify them in a shuffled order: each is
 * accepted once. */
TEST(oscore_replay_through_unprotect)
{
    cj_oscore_ctx_t cli, srv;
    uint8_t plain[32], msgs[40][64], out[64];
    size_t lens[40], pl = cj_hex(C4_PLAIN, plain, sizeof plain);
    CHECK_EQ(derive_tv(&cli, TV1, true), CJ_OK);
    CHECK_EQ(derive_tv(&srv, TV1, false), CJ_OK);
    for (int i = 0; i < 40; i++) {
        int rc = cj_oscore_protect_request(&cli, plain, pl, msgs[i], 64, NULL);
        CHECK(rc > 0);
        lens[i] = rc > 0 ? (size_t)rc : 0;
    }
    /* 39 first, then 8..38 descending (all within 31 of 39), then the
     * rest which are too old. */
    static const int order_hi = 39;
    uint8_t buf[64];
    memcpy(buf, msgs[order_hi], lens[order_hi]);
    CHECK_EQ(cj_oscore_unprotect_request(&srv, buf, lens[order_hi], out,
                                         sizeof out, NULL),
             (int)pl);
    for (int i = 38; i >= 0; i--) {
        int rc;
        memcpy(buf, msgs[i], lens[i]);
        rc = cj_oscore_unprotect_request(&srv, buf, lens[i], out, sizeof out,
                                         NULL);
        CHECK_EQ(rc, 39 - i <= 31 ? (int)pl : CJ_ERR_REPLAY);
        memcpy(buf, msgs[i], lens[i]);
        rc = cj_oscore_unprotect_request(&srv, buf, lens[i], out, sizeof out,
                                         NULL);
        CHECK_EQ(rc, CJ_ERR_REPLAY);
    }
}

/* ---- sequence numbers and persistence (Appendix B.1.1) ------------------ */

/* A test platform port: counters in a static array, a switch that makes
 * stores fail, one that makes loads fail. */
#define TP_COUNTERS 4
static uint64_t tp_val[TP_COUNTERS];
static bool tp_set[TP_COUNTERS];
static bool tp_fail_store, tp_fail_load;
static unsigned tp_stores;

static uint64_t tp_now(void *c)
{
    (void)c;
    return 0;
}

static int tp_store(void *c, uint32_t id, uint64_t v)
{
    (void)c;
    if (tp_fail_store || id >= TP_COUNTERS)
        return CJ_ERR_STORAGE;
    tp_val[id] = v;
    tp_set[id] = true;
    tp_stores++;
    return CJ_OK;
}

static int tp_load(void *c, uint32_t id, uint64_t *v)
{
    (void)c;
    if (tp_fail_load || id >= TP_COUNTERS)
        return CJ_ERR_STORAGE;
    if (!tp_set[id])
        return CJ_ERR_NOTFOUND;
    *v = tp_val[id];
    return CJ_OK;
}

static const cj_platform_t tp = {NULL, tp_now, tp_store, tp_load, NULL};

static void tp_reset(void)
{
    memset(tp_val, 0, sizeof tp_val);
    memset(tp_set, 0, sizeof tp_set);
    tp_fail_store = tp_fail_load = false;
    tp_stores = 0;
}

static uint8_t g_plain[32];
static size_t g_plain_len;

static int send_one(cj_oscore_ctx_t *c, uint64_t *piv)
{
    uint8_t out[96];
    cj_oscore_req_t r;
    int rc;
    if (!g_plain_len)
        g_plain_len = cj_hex(C4_PLAIN, g_plain, sizeof g_plain);
    rc = cj_oscore_protect_request(c, g_plain, g_plain_len, out, sizeof out,
                                   &r);
    if (rc > 0 && piv)
        *piv = cj_oscore_piv_value(r.piv, r.piv_len);
    return rc;
}

TEST(oscore_ssn_reserve_ahead)
{
    cj_oscore_ctx_t c;
    uint64_t piv;
    tp_reset();
    CHECK_EQ(derive_tv(&c, TV1, true), CJ_OK);
    CHECK_EQ(cj_oscore_ctx_attach(&c, &tp, 2), CJ_OK);
    CHECK_EQ(tp_stores, 0); /* nothing written before it is needed */
    CHECK_EQ(c.ssn, 0);

    CHECK(send_one(&c, &piv) > 0);
    CHECK_EQ(piv, 0);
    CHECK_EQ(tp_stores, 1);
    CHECK_EQ(tp_val[2], CJ_OSCORE_SSN_PERSIST_STEP);
    for (int i = 1; i < CJ_OSCORE_SSN_PERSIST_STEP; i++)
        CHECK(send_one(&c, &piv) > 0);
    CHECK_EQ(tp_stores, 1);
    CHECK(send_one(&c, &piv) > 0);
    CHECK_EQ(piv, CJ_OSCORE_SSN_PERSIST_STEP);
    CHECK_EQ(tp_stores, 2);
    CHECK_EQ(tp_val[2], 2 * CJ_OSCORE_SSN_PERSIST_STEP);
}

TEST(oscore_ssn_store_failure_sends_nothing)
{
    cj_oscore_ctx_t c, c0;
    uint8_t out[96];
    uint8_t zero[96] = {0};
    tp_reset();
    CHECK_EQ(derive_tv(&c, TV1, true), CJ_OK);
    CHECK_EQ(cj_oscore_ctx_attach(&c, &tp, 0), CJ_OK);

    /* The very first reservation fails. */
    tp_fail_store = true;
    memcpy(&c0, &c, sizeof c);
    if (!g_plain_len)
        g_plain_len = cj_hex(C4_PLAIN, g_plain, sizeof g_plain);
    memset(out, 0x5a, sizeof out);
    CHECK_EQ(cj_oscore_protect_request(&c, g_plain, g_plain_len, out,
                                       sizeof out, NULL),
             CJ_ERR_STORAGE);
    CHECK(memcmp(&c, &c0, sizeof c) == 0);
    CHECK(memcmp(out, zero, sizeof out) == 0);
    CHECK(!tp_set[0]);

    /* Storage back: works, then fails again at the next reservation. */
    tp_fail_store = false;
    for (int i = 0; i < CJ_OSCORE_SSN_PERSIST_STEP; i++)
        CHECK(send_one(&c, NULL) > 0);
    CHECK_EQ(c.ssn, CJ_OSCORE_SSN_PERSIST_STEP);
    tp_fail_store = true;
    memcpy(&c0, &c, sizeof c);
    CHECK_EQ(send_one(&c, NULL), CJ_ERR_STORAGE);
    CHECK(memcmp(&c, &c0, sizeof c) == 0);
    CHECK_EQ(tp_val[0], CJ_OSCORE_SSN_PERSIST_STEP);

    /* Responses with their own PIV reserve the same way. */
    {
        cj_oscore_req_t req = c4_binding();
        uint8_t resp[32];
        size_t rl = cj_hex(C7_PLAIN, resp, sizeof resp);
        CHECK_EQ(cj_oscore_protect_response(&c, &req, true, resp, rl, out,
                                            sizeof out),
                 CJ_ERR_STORAGE);
        CHECK(memcmp(&c, &c0, sizeof c) == 0);
        /* Reusing the request nonce needs no sequence number. */
        CHECK(cj_oscore_protect_response(&c, &req, false, resp, rl, out,
                                         sizeof out) > 0);
        CHECK(memcmp(&c, &c0, sizeof c) == 0);
    }
    tp_fail_store = false;
    uint64_t piv;
    CHECK(send_one(&c, &piv) > 0);
    CHECK_EQ(piv, CJ_OSCORE_SSN_PERSIST_STEP);
}

TEST(oscore_ssn_reboot_never_reuses)
{
    static uint64_t sent[400];
    size_t nsent = 0, before;
    cj_oscore_ctx_t c;
    tp_reset();

    /* Three "boots", each sending a different number of messages and
     * dying without warning (the context is simply re-derived). */
    static const int per_boot[] = {5, 70, 33, 1, 0, 32};
    for (size_t boot = 0; boot < sizeof per_boot / sizeof per_boot[0];
         boot++) {
        CHECK_EQ(derive_tv(&c, TV1, true), CJ_OK);
        CHECK_EQ(cj_oscore_ctx_attach(&c, &tp, 1), CJ_OK);
        before = nsent;
        for (int i = 0; i < per_boot[boot]; i++) {
            uint64_t piv;
            CHECK(send_one(&c, &piv) > 0);
            sent[nsent++] = piv;
        }
        /* Every number of this boot is above every earlier one. */
        for (size_t i = before; i < nsent; i++)
            for (size_t k = 0; k < before; k++)
                CHECK(sent[i] > sent[k]);
        /* And nothing sent is at or above what is durable. */
        if (nsent)
            CHECK(sent[nsent - 1] < tp_val[1]);
    }
    for (size_t i = 0; i < nsent; i++)
        for (size_t k = i + 1; k < nsent; k++)
            CHECK(sent[i] != sent[k]);

    /* A load failure is reported, not treated as "start from zero". */
    tp_fail_load = true;
    CHECK_EQ(derive_tv(&c, TV1, true), CJ_OK);
    CHECK_EQ(cj_oscore_ctx_attach(&c, &tp, 1), CJ_ERR_STORAGE);
}

TEST(oscore_ssn_exhaustion)
{
    cj_oscore_ctx_t c;
    uint64_t piv;
    uint8_t out[96];
    cj_oscore_req_t r;
    tp_reset();
    CHECK_EQ(derive_tv(&c, TV1, true), CJ_OK);
    c.ssn = CJ_OSCORE_MAX_SSN - 1;
    CHECK(send_one(&c, &piv) > 0);
    CHECK_EQ(piv, CJ_OSCORE_MAX_SSN - 1);
    if (!g_plain_len)
        g_plain_len = cj_hex(C4_PLAIN, g_plain, sizeof g_plain);
    CHECK(cj_oscore_protect_request(&c, g_plain, g_plain_len, out, sizeof out,
                                    &r) > 0);
    CHECK_HEX(r.piv, r.piv_len, "ffffffffff");
    check_option(out, 39, "0dffffffffff");
    CHECK_EQ(send_one(&c, NULL), CJ_ERR_SEQ_EXHAUSTED);
    CHECK_EQ(c.ssn, CJ_OSCORE_MAX_SSN + 1);

    /* With persistence the reservation is capped at 2^40. */
    CHECK_EQ(derive_tv(&c, TV1, true), CJ_OK);
    CHECK_EQ(cj_oscore_ctx_attach(&c, &tp, 3), CJ_OK);
    c.ssn = c.ssn_reserved = CJ_OSCORE_MAX_SSN - 2;
    CHECK(send_one(&c, NULL) > 0);
    CHECK_EQ(tp_val[3], CJ_OSCORE_MAX_SSN + 1);
    CHECK(send_one(&c, NULL) > 0);
    CHECK(send_one(&c, NULL) > 0);
    CHECK_EQ(send_one(&c, NULL), CJ_ERR_SEQ_EXHAUSTED);
    /* After a reboot the context stays exhausted. */
    CHECK_EQ(derive_tv(&c, TV1, true), CJ_OK);
    CHECK_EQ(cj_oscore_ctx_attach(&c, &tp, 3), CJ_OK);
    CHECK_EQ(send_one(&c, NULL), CJ_ERR_SEQ_EXHAUSTED);
}

TEST(oscore_piv_minimal_encoding)
{
    static const struct {
        uint64_t ssn;
        const char *opt;
    } t[] = {
        {0, "0900"}, {1, "0901"}, {255, "09ff"}, {256, "0a0100"},
        {65535, "0affff"}, {65536, "0b010000"}, {0x1000000, "0c01000000"},
        {0x100000000ull, "0d0100000000"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        cj_oscore_ctx_t c;
        uint8_t out[96];
        int rc;
        derive_tv(&c, TV1, true);
        c.ssn = t[i].ssn;
        if (!g_plain_len)
            g_plain_len = cj_hex(C4_PLAIN, g_plain, sizeof g_plain);
        rc = cj_oscore_protect_request(&c, g_plain, g_plain_len, out,
                                       sizeof out, NULL);
        CHECK(rc > 0);
        check_option(out, rc > 0 ? (size_t)rc : 0, t[i].opt);
    }
}

/* ---- Appendix B.2 re-derivation ----------------------------------------- */

TEST(oscore_rederive_matches_fresh_derive)
{
    cj_oscore_ctx_t c, fresh;
    cj_oscore_params_t p;
    tp_reset();
    CHECK_EQ(derive_tv(&c, TV1, true), CJ_OK);
    CHECK_EQ(cj_oscore_ctx_attach(&c, &tp, 1), CJ_OK);
    c.send_kid_context = true;
    for (int i = 0; i < 50; i++)
        CHECK(send_one(&c, NULL) > 0);
    cj_oscore_replay_update(&c.replay, 7);

    /* New ID Context: C.3's parameters are C.1's plus an ID Context. */
    memset(&p, 0, sizeof p);
    p.master_secret = ms;
    p.master_secret_len = 16;
    p.master_salt = salt;
    p.master_salt_len = 8;
    p.recipient_id = id01;
    p.recipient_id_len = 1;
    p.id_context = idctx;
    p.id_context_len = 8;
    p.has_id_context = true;
    CHECK_EQ(cj_oscore_ctx_rederive(&c, &p), CJ_OK);
    CHECK_EQ(derive_tv(&fresh, TV3, true), CJ_OK);
    CHECK_MEM(c.sender_key, 16, fresh.sender_key, 16);
    CHECK_MEM(c.recipient_key, 16, fresh.recipient_key, 16);
    CHECK_MEM(c.common_iv, 13, fresh.common_iv, 13);
    CHECK_MEM(c.id_context, c.id_context_len, idctx, 8);
    CHECK_HEX(c.sender_key, 16, "af2a1300a5e95788b356336eeecd2b92");
    /* The sequence number keeps counting on the same counter (review
     * fix: it used to restart at 0, below the persisted mark); the replay
     * window is the new context's own. */
    CHECK_EQ(c.ssn, 50);
    CHECK(!c.replay.valid);
    CHECK(c.platform == &tp);
    CHECK(c.send_kid_context);

    /* Persistence stays attached; the next number is 50, covered by the
     * mark reserved before the change. */
    uint64_t piv;
    CHECK(send_one(&c, &piv) > 0);
    CHECK_EQ(piv, 50);
    CHECK(tp_val[1] > 50);

    /* A rejected re-derivation leaves the context as it was. */
    cj_oscore_ctx_t before;
    memcpy(&before, &c, sizeof c);
    p.recipient_id_len = 0; /* equal to the empty sender id */
    CHECK_EQ(cj_oscore_ctx_rederive(&c, &p), CJ_ERR_INVALID);
    CHECK(memcmp(&c, &before, sizeof c) == 0);

    cj_oscore_ctx_wipe(&c);
    uint8_t zero[sizeof c];
    memset(zero, 0, sizeof zero);
    CHECK(memcmp(&c, zero, sizeof c) == 0);
}

/* ---- CoJP-shaped exchange (RFC 9031 section 7.3 / 8.1) ------------------ */

TEST(oscore_cojp_join_request_round_trip)
{
    static const uint8_t psk[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
                                    0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
                                    0xcc, 0xdd, 0xee, 0xff};
    static const uint8_t pledge_id[8] = {0x00, 0x12, 0x4b, 0x00,
                                         0x14, 0xb5, 0xd9, 0x2f};
    static const uint8_t jrc[3] = {'J', 'R', 'C'};
    static const uint8_t join_req[] = {0xa1, 0x05, 0x41, 0x01};
    cj_oscore_params_t p;
    cj_oscore_ctx_t pledge, jrcctx;
    cj_oscore_req_t preq, jreq;
    cj_oscore_option_t o;
    cj_coap_builder_t b;
    cj_coap_msg_t m;
    cj_coap_opt_t opt;
    uint8_t plain[96], prot[128], out[128], resp[64];
    int pl, n, rl;

    memset(&p, 0, sizeof p);
    p.master_secret = psk;
    p.master_secret_len = 16;
    p.sender_id = NULL;
    p.sender_id_len = 0;
    p.recipient_id = jrc;
    p.recipient_id_len = 3;
    p.id_context = pledge_id;
    p.id_context_len = 8;
    p.has_id_context = true;
    CHECK_EQ(cj_oscore_ctx_derive(&pledge, &p), CJ_OK);
    pledge.send_kid_context = true;
    p.sender_id = jrc;
    p.sender_id_len = 3;
    p.recipient_id = NULL;
    p.recipient_id_len = 0;
    CHECK_EQ(cj_oscore_ctx_derive(&jrcctx, &p), CJ_OK);
    CHECK_MEM(pledge.sender_key, 16, jrcctx.recipient_key, 16);

    /* Join Request: POST, Uri-Host "6tisch.arpa", Uri-Path "j",
     * Proxy-Scheme "coap", payload (RFC 9031 section 8.1.1). */
    static const uint8_t tok[2] = {0xbe, 0xef};
    cj_coap_build_init(&b, plain, sizeof plain, CJ_COAP_CON, CJ_COAP_POST,
                       0x1234, tok, 2);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "6tisch.arpa");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "j");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_PROXY_SCHEME, "coap");
    cj_coap_build_payload(&b, join_req, sizeof join_req);
    pl = cj_coap_build_finish(&b);
    CHECK(pl > 0);

    n = cj_oscore_protect_request(&pledge, plain, (size_t)pl, prot,
                                  sizeof prot, &preq);
    CHECK(n > 0);
    CHECK_EQ(cj_coap_parse(&m, prot, (size_t)n), CJ_OK);
    CHECK_EQ(m.code, CJ_COAP_POST);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_OSCORE, &opt), 1);
    /* flags h|k|n=1, PIV 00, s = 8, the pledge id, empty kid */
    CHECK_HEX(opt.val, opt.len, "19 00 08 00124b0014b5d92f");
    CHECK_EQ(cj_oscore_option_decode(opt.val, opt.len, &o), CJ_OK);
    CHECK(o.has_kid && o.kid_len == 0);
    CHECK(o.has_kid_context);
    CHECK_MEM(o.kid_context, o.kid_context_len, pledge_id, 8);
    /* Uri-Path travels inside only. */
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_URI_PATH, &opt), 0);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_PROXY_SCHEME, &opt), 1);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_URI_HOST, &opt), 1);

    /* The JRC gets the Join Request back byte for byte. */
    int ul = cj_oscore_unprotect_request(&jrcctx, prot, (size_t)n, out,
                                         sizeof out, &jreq);
    CHECK_EQ(ul, pl);
    CHECK_MEM(out, (size_t)(ul > 0 ? ul : 0), plain, (size_t)pl);
    CHECK_EQ(jreq.kid_len, 0);
    CHECK_HEX(jreq.piv, jreq.piv_len, "00");

    /* Its 2.04 Changed with a Configuration, request nonce reused. */
    static const uint8_t cfg[] = {0xa1, 0x02, 0x81, 0x00};
    cj_coap_build_init(&b, resp, sizeof resp, CJ_COAP_ACK, CJ_COAP_CHANGED,
                       0x1234, tok, 2);
    cj_coap_build_payload(&b, cfg, sizeof cfg);
    rl = cj_coap_build_finish(&b);
    n = cj_oscore_protect_response(&jrcctx, &jreq, false, resp, (size_t)rl,
                                   prot, sizeof prot);
    CHECK(n > 0);
    ul = cj_oscore_unprotect_response(&pledge, &preq, prot, (size_t)n, out,
                                      sizeof out);
    CHECK_EQ(ul, rl);
    CHECK_MEM(out, (size_t)(ul > 0 ? ul : 0), resp, (size_t)rl);

    /* A response with its own PIV from the JRC carries the kid context
     * only if the JRC asks for it; either way the pledge accepts it. */
    jrcctx.send_kid_context = true;
    n = cj_oscore_protect_response(&jrcctx, &jreq, true, resp, (size_t)rl,
                                   prot, sizeof prot);
    CHECK(n > 0);
    check_option(prot, (size_t)n, "11 00 08 00124b0014b5d92f");
    ul = cj_oscore_unprotect_response(&pledge, &preq, prot, (size_t)n, out,
                                      sizeof out);
    CHECK_EQ(ul, rl);
}

TEST(oscore_protect_rejects)
{
    cj_oscore_ctx_t c;
    uint8_t msg[64], out[64];
    size_t n;
    derive_tv(&c, TV1, true);
    /* Already carries an OSCORE option (section 4.1.3.7). */
    n = cj_hex("44015d1f00003974 920914 42aaaa", msg, sizeof msg);
    CHECK_EQ(cj_oscore_protect_request(&c, msg, n, out, sizeof out, NULL),
             CJ_ERR_INVALID);
    /* Proxy-Uri must be split first. */
    n = cj_hex("44015d1f00003974 d11661", msg, sizeof msg);
    CHECK_EQ(cj_oscore_protect_request(&c, msg, n, out, sizeof out, NULL),
             CJ_ERR_INVALID);
    /* A response is not a request, and the other way round. */
    n = cj_hex(C7_PLAIN, msg, sizeof msg);
    CHECK_EQ(cj_oscore_protect_request(&c, msg, n, out, sizeof out, NULL),
             CJ_ERR_INVALID);
    cj_oscore_req_t r = c4_binding();
    n = cj_hex(C4_PLAIN, msg, sizeof msg);
    CHECK_EQ(cj_oscore_protect_response(&c, &r, false, msg, n, out,
                                        sizeof out),
             CJ_ERR_INVALID);
    /* Too small an output: nothing advances. */
    CHECK_EQ(cj_oscore_protect_request(&c, msg, n, out, 34, NULL),
             CJ_ERR_NOSPACE);
    CHECK_EQ(c.ssn, 0);
    CHECK_EQ(cj_oscore_protect_request(&c, msg, n, out, 35, NULL), 35);
    CHECK_EQ(c.ssn, 1);
}

/* Split and merge (section 4.1) with every protect-able Class U option,
 * repeated options of either class and option numbers up to 65000: the
 * outer options are exactly Uri-Host, Uri-Port, OSCORE and Proxy-Scheme
 * in number order, and unprotect merges them back with the inner ones
 * into the original message, byte for byte. */
TEST(oscore_split_merge_many_options)
{
    static const uint16_t outer_want[] = {
        CJ_COAP_OPT_URI_HOST, CJ_COAP_OPT_URI_PORT, CJ_COAP_OPT_OSCORE,
        CJ_COAP_OPT_PROXY_SCHEME};
    static const uint8_t tok[2] = {0x01, 0x02};
    cj_oscore_ctx_t cli, srv;
    cj_coap_builder_t b;
    cj_coap_msg_t m;
    cj_coap_opt_iter_t it;
    cj_coap_opt_t o;
    uint8_t plain[128], prot[192], out[192];
    size_t i = 0;
    int pl, n, ul;

    CHECK_EQ(derive_tv(&cli, TV1, true), CJ_OK);
    CHECK_EQ(derive_tv(&srv, TV1, false), CJ_OK);
    cj_coap_build_init(&b, plain, sizeof plain, CJ_COAP_CON, CJ_COAP_POST,
                       0x1234, tok, sizeof tok);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "h");
    cj_coap_build_opt(&b, CJ_COAP_OPT_ETAG, "\xaa", 1);
    cj_coap_build_opt(&b, CJ_COAP_OPT_ETAG, "\xbb", 1);
    cj_coap_build_opt_uint(&b, CJ_COAP_OPT_URI_PORT, 5683);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "a");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "b");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "c");
    cj_coap_build_opt_uint(&b, CJ_COAP_OPT_CONTENT_FORMAT, 60);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_QUERY, "x=1");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_QUERY, "y=2");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_PROXY_SCHEME, "coap");
    cj_coap_build_opt(&b, 2048, "z", 1);
    cj_coap_build_opt(&b, 65000, NULL, 0);
    cj_coap_build_payload(&b, (const uint8_t *)"hello", 5);
    pl = cj_coap_build_finish(&b);
    CHECK(pl > 0);

    n = cj_oscore_protect_request(&cli, plain, (size_t)(pl > 0 ? pl : 0),
                                  prot, sizeof prot, NULL);
    CHECK(n > 0);
    CHECK_EQ(cj_coap_parse(&m, prot, (size_t)(n > 0 ? n : 0)), CJ_OK);
    CHECK_EQ(m.code, CJ_COAP_POST);
    cj_coap_opt_iter_init(&it, &m);
    while (cj_coap_opt_next(&it, &o)) {
        if (i < 4)
            CHECK_EQ(o.num, outer_want[i]);
        i++;
    }
    CHECK_EQ(i, 4);
    ul = cj_oscore_unprotect_request(&srv, prot, (size_t)(n > 0 ? n : 0),
                                     out, sizeof out, NULL);
    CHECK_EQ(ul, pl);
    CHECK_MEM(out, (size_t)(ul > 0 ? ul : 0), plain, (size_t)pl);
}

/* ---- Observe (section 4.1.3.5) ------------------------------------------ */

/* Observe handling is a compile-time switch (CJ_OSCORE_OBSERVE in
 * cojp/config.h); each build runs the test of the behaviour it has. */
#if CJ_OSCORE_OBSERVE
TEST(oscore_observe_round_trip)
{
    cj_oscore_ctx_t cli, srv;
    cj_oscore_req_t creq, sreq;
    uint8_t plain[64], prot[96], out[96];
    cj_coap_msg_t m;
    cj_coap_opt_t o;
    size_t pl;
    int n, ul, found;
    derive_tv(&cli, TV1, true);
    derive_tv(&srv, TV1, false);

    /* GET with Observe 0 (registration) and Uri-Path "tv1". */
    pl = cj_hex("44015d1f00003974 60 53747631", plain, sizeof plain);
    n = cj_oscore_protect_request(&cli, plain, pl, prot, sizeof prot, &creq);
    CHECK(n > 0);
    CHECK_EQ(cj_coap_parse(&m, prot, (size_t)n), CJ_OK);
    CHECK_EQ(m.code, CJ_COAP_FETCH);
    /* o is only filled when the lookup succeeds. */
    CHECK_EQ(found = cj_coap_opt_find(&m, CJ_COAP_OPT_OBSERVE, &o), 1);
    if (found == 1)
        CHECK_EQ(o.len, 0);
    ul = cj_oscore_unprotect_request(&srv, prot, (size_t)n, out, sizeof out,
                                     &sreq);
    CHECK_EQ(ul, (int)pl);
    CHECK_MEM(out, (size_t)(ul > 0 ? ul : 0), plain, pl);

    /* Notification 2.05 with Observe 5, sent with PIV 5. */
    srv.ssn = 5;
    pl = cj_hex("54455d1f00003974 6105 ff 2a", plain, sizeof plain);
    n = cj_oscore_protect_response(&srv, &sreq, true, plain, pl, prot,
                                   sizeof prot);
    CHECK(n > 0);
    CHECK_EQ(cj_coap_parse(&m, prot, (size_t)n), CJ_OK);
    CHECK_EQ(m.code, CJ_COAP_CONTENT);
    CHECK_EQ(found = cj_coap_opt_find(&m, CJ_COAP_OPT_OBSERVE, &o), 1);
    if (found == 1)
        CHECK_HEX(o.val, o.len, "05");
    ul = cj_oscore_unprotect_response(&cli, &creq, prot, (size_t)n, out,
                                      sizeof out);
    CHECK_EQ(ul, (int)pl);
    CHECK_MEM(out, (size_t)(ul > 0 ? ul : 0), plain, pl);
}
#else
/* CJ_OSCORE_OBSERVE 0: Observe is an ordinary Class E option, encrypted
 * and never outside, and the outer codes stay POST / 2.04 (cojp/config.h);
 * the inner message still round-trips unchanged. */
TEST(oscore_observe_disabled_class_e)
{
    cj_oscore_ctx_t cli, srv;
    cj_oscore_req_t creq, sreq;
    uint8_t plain[64], prot[96], out[96];
    cj_coap_msg_t m;
    cj_coap_opt_t o;
    size_t pl;
    int n, ul;
    derive_tv(&cli, TV1, true);
    derive_tv(&srv, TV1, false);

    pl = cj_hex("44015d1f00003974 60 53747631", plain, sizeof plain);
    n = cj_oscore_protect_request(&cli, plain, pl, prot, sizeof prot, &creq);
    CHECK(n > 0);
    CHECK_EQ(cj_coap_parse(&m, prot, (size_t)(n > 0 ? n : 0)), CJ_OK);
    CHECK_EQ(m.code, CJ_COAP_POST);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_OBSERVE, &o), 0);
    ul = cj_oscore_unprotect_request(&srv, prot, (size_t)(n > 0 ? n : 0),
                                     out, sizeof out, &sreq);
    CHECK_EQ(ul, (int)pl);
    CHECK_MEM(out, (size_t)(ul > 0 ? ul : 0), plain, pl);

    srv.ssn = 5;
    pl = cj_hex("54455d1f00003974 6105 ff 2a", plain, sizeof plain);
    n = cj_oscore_protect_response(&srv, &sreq, true, plain, pl, prot,
                                   sizeof prot);
    CHECK(n > 0);
    CHECK_EQ(cj_coap_parse(&m, prot, (size_t)(n > 0 ? n : 0)), CJ_OK);
    CHECK_EQ(m.code, CJ_COAP_CHANGED);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_OBSERVE, &o), 0);
    ul = cj_oscore_unprotect_response(&cli, &creq, prot,
                                      (size_t)(n > 0 ? n : 0), out,
                                      sizeof out);
    CHECK_EQ(ul, (int)pl);
    CHECK_MEM(out, (size_t)(ul > 0 ? ul : 0), plain, pl);
}
#endif

/* Review fix (Low): cj_oscore_ctx_rederive() keeps the sender sequence
 * number counting on the same persistent counter.  Before the fix it
 * restarted at 0 and the next reservation lowered the stored mark below
 * numbers already used, so a reboot after the change restored a sequence
 * number that had been used (RFC 8613 Appendix B.1.1). */
TEST(oscore_rederive_keeps_counting)
{
    cj_oscore_ctx_t c, r;
    cj_oscore_params_t p;
    uint64_t piv = 0, mark, last = 0;

    tp_reset();
    CHECK_EQ(derive_tv(&c, TV1, true), CJ_OK);
    CHECK_EQ(cj_oscore_ctx_attach(&c, &tp, 1), CJ_OK);
    for (int i = 0; i < 40; i++)
        CHECK(send_one(&c, &last) > 0);
    mark = tp_val[1];
    CHECK(mark > last);

    memset(&p, 0, sizeof p);
    p.master_secret = ms;
    p.master_secret_len = 16;
    p.master_salt = salt;
    p.master_salt_len = 8;
    p.recipient_id = id01;
    p.recipient_id_len = 1;
    p.id_context = idctx;
    p.id_context_len = 8;
    p.has_id_context = true;
    CHECK_EQ(cj_oscore_ctx_rederive(&c, &p), CJ_OK);
    CHECK(send_one(&c, &piv) > 0);
    CHECK_EQ(piv, last + 1);
    CHECK(tp_val[1] >= mark); /* the stored mark never goes down */

    /* a reboot resumes above every number used, under any context */
    CHECK_EQ(derive_tv(&r, TV3, true), CJ_OK);
    CHECK_EQ(cj_oscore_ctx_attach(&r, &tp, 1), CJ_OK);
    CHECK(r.ssn > piv);
    cj_oscore_ctx_wipe(&c);
    cj_oscore_ctx_wipe(&r);
}

/* ---- limits and arguments ----------------------------------------------- */

/* Section 2: the OSCORE option value is 0 to 255 bytes.  A longer one
 * does not decode; the encoder refuses to produce one, and refuses
 * fields it would have to read through a NULL pointer. */
TEST(oscore_option_value_length_limit)
{
    static uint8_t v[300], enc[300], ctxb[255], kid[16];
    cj_oscore_option_t o;

    memset(v, 0xab, sizeof v);
    v[0] = 0x08; /* k: the kid is the rest of the value */
    CHECK_EQ(cj_oscore_option_decode(v, 255, &o), CJ_OK);
    CHECK(o.has_kid && o.kid_len == 254);
    CHECK_EQ(cj_oscore_option_decode(v, 256, &o), CJ_ERR_OSCORE_DECODE);
    CHECK(!o.has_kid && o.kid_len == 0);
    CHECK_EQ(cj_oscore_option_decode(NULL, 3, &o), CJ_ERR_OSCORE_DECODE);

    memset(&o, 0, sizeof o);
    o.has_kid_context = true;
    o.kid_context = ctxb;
    o.kid_context_len = 253; /* flags, s, 253 bytes: 255 */
    CHECK_EQ(cj_oscore_option_encode(enc, sizeof enc, &o), 255);
    o.has_kid = true;
    o.kid = kid;
    o.kid_len = 1; /* 256 */
    CHECK_EQ(cj_oscore_option_encode(enc, sizeof enc, &o), CJ_ERR_INVALID);
    o.has_kid = false;
    o.kid_context_len = 256; /* s is one byte */
    CHECK_EQ(cj_oscore_option_encode(enc, sizeof enc, &o), CJ_ERR_INVALID);
    o.kid_context_len = 2;
    o.kid_context = NULL;
    CHECK_EQ(cj_oscore_option_encode(enc, sizeof enc, &o), CJ_ERR_INVALID);
    o.kid_context = ctxb;
    o.has_kid = true;
    o.kid = NULL;
    o.kid_len = 1;
    CHECK_EQ(cj_oscore_option_encode(enc, sizeof enc, &o), CJ_ERR_INVALID);
    o.kid_len = 0; /* an empty kid needs no bytes */
    CHECK_EQ(cj_oscore_option_encode(enc, sizeof enc, &o), 4);
    CHECK_HEX(enc, 4, "18 02 0000");
    memset(&o, 0, sizeof o);
    o.piv_len = 1;
    CHECK_EQ(cj_oscore_option_encode(enc, sizeof enc, &o), CJ_ERR_INVALID);
    /* no room to say how long it would be */
    o.piv = kid;
    CHECK_EQ(cj_oscore_option_encode(NULL, 0, &o), CJ_ERR_NOSPACE);
}

/* More options than CJ_COAP_MAX_OPTIONS (cojp/config.h) cannot be split
 * or merged: CJ_ERR_NOSPACE, on either side of either direction, and
 * nothing of the context moves (no sequence number spent, no Partial IV
 * entered in the window); an unprotected plaintext that cannot be
 * reassembled is wiped from the caller's buffer. */
TEST(oscore_too_many_options)
{
    cj_oscore_ctx_t cli, srv, srv0;
    cj_coap_builder_t b;
    uint8_t plain[160], prot[200], out[200], msg[200];
    size_t n;
    int pl;

    CHECK_EQ(derive_tv(&cli, TV1, true), CJ_OK);
    CHECK_EQ(derive_tv(&srv, TV1, false), CJ_OK);
    /* protect: CJ_COAP_MAX_OPTIONS + 1 Uri-Path segments */
    cj_coap_build_init(&b, plain, sizeof plain, CJ_COAP_CON, CJ_COAP_GET,
                       0x0102, NULL, 0);
    for (int i = 0; i <= CJ_COAP_MAX_OPTIONS; i++)
        cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "a");
    pl = cj_coap_build_finish(&b);
    CHECK(pl > 0);
    CHECK_EQ(cj_oscore_protect_request(&cli, plain, (size_t)pl, prot,
                                       sizeof prot, NULL),
             CJ_ERR_NOSPACE);
    CHECK_EQ(cli.ssn, 0);

    /* unprotect, outer: as many ETags (Class E outside, discarded) */
    {
        char hex[200] = "44025d1f00003974 41aa";
        for (int i = 1; i <= CJ_COAP_MAX_OPTIONS; i++)
            strcat(hex, " 01aa");
        strcat(hex, " 520914"); /* the OSCORE option (9) */
        n = forge_c4(msg, hex, "01 b3747631");
    }
    srv0 = srv;
    CHECK_EQ(cj_oscore_unprotect_request(&srv, msg, n, out, sizeof out,
                                         NULL),
             CJ_ERR_NOSPACE);
    CHECK(memcmp(&srv, &srv0, sizeof srv) == 0);

    /* unprotect, inner: an authentic plaintext with too many options */
    {
        char hex[200] = "01 b161";
        for (int i = 1; i <= CJ_COAP_MAX_OPTIONS; i++)
            strcat(hex, " 0161");
        n = forge_c4(msg, "44025d1f00003974 920914", hex);
    }
    CHECK_EQ(cj_oscore_unprotect_request(&srv, msg, n, out, sizeof out,
                                         NULL),
             CJ_ERR_NOSPACE);
    CHECK(memcmp(&srv, &srv0, sizeof srv) == 0);
    CHECK_EQ(msg[11], 0xff);
    CHECK(all_zero(msg + 12, n - 12 - 8));
}

/* A response is bound to a request by its kid (at most CJ_OSCORE_MAX_ID
 * bytes, section 3.3) and a Partial IV of 1 to 5 bytes (section 6.1):
 * any other binding is refused before anything is done with it. */
TEST(oscore_response_binding_checked)
{
    cj_oscore_ctx_t c;
    cj_oscore_req_t r;
    uint8_t msg[64], out[64];
    size_t n = cj_hex(C7_PLAIN, msg, sizeof msg);
    int i;

    CHECK_EQ(derive_tv(&c, TV1, false), CJ_OK);
    for (i = 0; i < 3; i++) {
        r = c4_binding();
        if (i == 0)
            r.kid_len = CJ_OSCORE_MAX_ID + 1;
        else
            r.piv_len = i == 1 ? 0 : CJ_OSCORE_MAX_PIV_LEN + 1;
        CHECK_EQ(cj_oscore_protect_response(&c, &r, true, msg, n, out,
                                            sizeof out),
                 CJ_ERR_INVALID);
        CHECK_EQ(cj_oscore_unprotect_response(&c, &r, msg, n, out,
                                              sizeof out),
                 CJ_ERR_INVALID);
    }
    CHECK_EQ(c.ssn, 0);
    CHECK(!c.replay.valid);
    /* the C.4 binding itself is fine */
    r = c4_binding();
    CHECK(cj_oscore_protect_response(&c, &r, false, msg, n, out,
                                     sizeof out) > 0);
}

/* Attaching: a platform without counter functions is refused; attaching
 * no platform detaches, after which protecting stores nothing. */
TEST(oscore_attach_and_detach)
{
    cj_oscore_ctx_t c;
    cj_platform_t half = tp;
    uint64_t piv = 0;

    tp_reset();
    CHECK_EQ(derive_tv(&c, TV1, true), CJ_OK);
    half.counter_store = NULL;
    CHECK_EQ(cj_oscore_ctx_attach(&c, &half, 0), CJ_ERR_INVALID);
    half = tp;
    half.counter_load = NULL;
    CHECK_EQ(cj_oscore_ctx_attach(&c, &half, 0), CJ_ERR_INVALID);
    CHECK_EQ(cj_oscore_ctx_attach(&c, &tp, 1), CJ_OK);
    CHECK(send_one(&c, &piv) > 0);
    CHECK_EQ(tp_stores, 1);
    CHECK_EQ(cj_oscore_ctx_attach(&c, NULL, 1), CJ_OK);
    for (int i = 0; i < 2 * CJ_OSCORE_SSN_PERSIST_STEP; i++)
        CHECK(send_one(&c, &piv) > 0);
    CHECK_EQ(tp_stores, 1);
    CHECK_EQ(piv, 2 * CJ_OSCORE_SSN_PERSIST_STEP);
}

/* Section 3.2: a parameter given by length must have its bytes; without
 * them (or without parameters, or without a place for the result)
 * nothing is derived and the context is left wiped. */
TEST(oscore_derive_rejects_missing_inputs)
{
    cj_oscore_ctx_t c;
    cj_oscore_params_t p;
    uint8_t okm[CJ_OSCORE_OKM_LEN];
    static const uint8_t zero[sizeof(cj_oscore_ctx_t)];

    CHECK_EQ(derive_tv(&c, TV1, true), CJ_OK);
    memset(&p, 0, sizeof p);
    p.master_secret = NULL;
    p.master_secret_len = 16;
    p.recipient_id = id01;
    p.recipient_id_len = 1;
    CHECK_EQ(cj_oscore_ctx_derive(&c, &p), CJ_ERR_INVALID);
    CHECK(memcmp(&c, zero, sizeof c) == 0);
    p.master_secret = ms;
    p.master_salt_len = 8; /* salt NULL */
    CHECK_EQ(cj_oscore_ctx_derive(&c, &p), CJ_ERR_INVALID);
    p.master_salt_len = 0;
    p.has_id_context = true;
    p.id_context_len = 4; /* id_context NULL */
    CHECK_EQ(cj_oscore_ctx_derive(&c, &p), CJ_ERR_INVALID);
    CHECK_EQ(cj_oscore_ctx_derive(&c, NULL), CJ_ERR_INVALID);
    CHECK_EQ(cj_oscore_okm(&p, okm), CJ_ERR_INVALID);
    p.has_id_context = false;
    CHECK_EQ(cj_oscore_okm(&p, NULL), CJ_ERR_INVALID);
    CHECK_EQ(cj_oscore_ctx_load(&c, &p, NULL), CJ_ERR_INVALID);
    CHECK_EQ(cj_oscore_ctx_load(&c, NULL, okm), CJ_ERR_INVALID);
    /* a context to rederive is required */
    CHECK_EQ(cj_oscore_ctx_rederive(NULL, &p), CJ_ERR_INVALID);
}

#if CJ_OSCORE_OBSERVE
/* Client and server contexts of test vector 1 and a request between
 * them, for the notifications below. */
static void observe_pair(cj_oscore_ctx_t *cli, cj_oscore_ctx_t *srv,
                         cj_oscore_req_t *creq, cj_oscore_req_t *sreq)
{
    uint8_t plain[64], prot[96], out[96];
    size_t pl;
    int n;

    CHECK_EQ(derive_tv(cli, TV1, true), CJ_OK);
    CHECK_EQ(derive_tv(srv, TV1, false), CJ_OK);
    pl = cj_hex("44015d1f00003974 60 53747631", plain, sizeof plain);
    n = cj_oscore_protect_request(cli, plain, pl, prot, sizeof prot, creq);
    CHECK(n > 0);
    CHECK_EQ(cj_oscore_unprotect_request(srv, prot, (size_t)(n > 0 ? n : 0),
                                         out, sizeof out, sreq),
             (int)pl);
}

/* Section 4.1.3.5.2: the inner Observe of a notification is empty,
 * whatever value the server's application gave it (that value travels
 * only as the outer Observe, for proxies), and the client takes the
 * order of notifications from the authenticated Partial IV, handing the
 * application its three low bytes, never the outer value, which anyone
 * on the path may change. */
TEST(oscore_observe_notification_inner_empty_piv_orders)
{
    static const char *const notes[2] = {
        "54455d1f00003974 6105 ff 2a",     /* Observe 5 */
        "54455d1f00003974 63123456 ff 2a", /* Observe 0x123456 */
    };
    static const char *const handed[2] = {"010203", "010204"};
    cj_oscore_ctx_t cli, srv;
    cj_oscore_req_t creq, sreq;
    uint8_t plain[64], prot[96], out[96];
    cj_coap_msg_t m;
    cj_coap_opt_t o;
    size_t pl, sealed = 0;
    int n, ul;

    observe_pair(&cli, &srv, &creq, &sreq);
    srv.ssn = 0x010203;
    for (int i = 0; i < 2; i++) {
        memset(&o, 0, sizeof o);
        pl = cj_hex(notes[i], plain, sizeof plain);
        n = cj_oscore_protect_response(&srv, &sreq, true, plain, pl, prot,
                                       sizeof prot);
        CHECK(n > 0);
        if (n <= 0)
            return;
        CHECK_EQ(cj_coap_parse(&m, prot, (size_t)n), CJ_OK);
        CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_OBSERVE, &o), 1);
        if (o.val == NULL || o.len == 0)
            return;
        /* the outer value is the application's, for proxies */
        CHECK_HEX(o.val, o.len, i == 0 ? "05" : "123456");
        /* an empty inner Observe: the same sealed length for a 1-byte
         * and a 3-byte value */
        if (i == 0)
            sealed = m.payload_len;
        else
            CHECK_EQ(m.payload_len, sealed);
        /* a proxy rewrites the outer value: the notification still
         * verifies, and the value handed over comes from the Partial IV */
        prot[o.val - prot] ^= 0x40;
        ul = cj_oscore_unprotect_response(&cli, &creq, prot, (size_t)n, out,
                                          sizeof out);
        CHECK(ul > 0);
        if (ul <= 0)
            return;
        CHECK_EQ(cj_coap_parse(&m, out, (size_t)ul), CJ_OK);
        memset(&o, 0, sizeof o);
        CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_OBSERVE, &o), 1);
        CHECK_HEX(o.val, o.len, handed[i]);
        CHECK_HEX(m.payload, m.payload_len, "2a");
    }
}

/* The same with 5-byte Partial IVs whose three low bytes start with
 * zeros: the value handed over is the shortest CoAP uint of those bytes
 * (0x0000ff, 0x000100), as the sender's Observe would have been. */
TEST(oscore_observe_notification_long_piv_low_bytes)
{
    static const char *const handed[2] = {"ff", "0100"};
    cj_oscore_ctx_t cli, srv;
    cj_oscore_req_t creq, sreq;
    uint8_t plain[64], prot[96], out[96];
    cj_coap_msg_t m;
    cj_coap_opt_t o;
    size_t pl;
    int n, ul;

    observe_pair(&cli, &srv, &creq, &sreq);
    srv.ssn = UINT64_C(0x01000000ff);
    for (int i = 0; i < 2; i++) {
        pl = cj_hex("54455d1f00003974 6105 ff 2a", plain, sizeof plain);
        n = cj_oscore_protect_response(&srv, &sreq, true, plain, pl, prot,
                                       sizeof prot);
        CHECK(n > 0);
        if (n <= 0)
            return;
        ul = cj_oscore_unprotect_response(&cli, &creq, prot, (size_t)n, out,
                                          sizeof out);
        CHECK(ul > 0);
        if (ul <= 0)
            return;
        CHECK_EQ(cj_coap_parse(&m, out, (size_t)ul), CJ_OK);
        memset(&o, 0, sizeof o);
        CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_OBSERVE, &o), 1);
        CHECK_HEX(o.val, o.len, handed[i]);
    }
}
#endif

/* Options with their own paragraphs in section 4.1.3 that OSCORE carries
 * as plain Class E: Max-Age (4.1.3.1, the inner one), Block1 and Block2
 * (4.1.3.4.1, inner block-wise), No-Response (4.1.3.6, which must be
 * inner), next to Size1 and Size2.  None of them appears outside, and
 * the receiver gets them back in place. */
TEST(oscore_special_options_travel_inside)
{
    static const uint16_t inner[] = {CJ_COAP_OPT_MAX_AGE, 23, 27, 28, 60,
                                     258};
    static const uint8_t tok[1] = {0x7e};
    cj_oscore_ctx_t cli, srv;
    cj_coap_builder_t b;
    cj_coap_msg_t m;
    cj_coap_opt_t o;
    uint8_t plain[96], prot[160], out[160];
    int pl, n, ul;

    CHECK_EQ(derive_tv(&cli, TV1, true), CJ_OK);
    CHECK_EQ(derive_tv(&srv, TV1, false), CJ_OK);
    cj_coap_build_init(&b, plain, sizeof plain, CJ_COAP_CON, CJ_COAP_POST,
                       0x0203, tok, sizeof tok);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "h");
    for (size_t i = 0; i < sizeof inner / sizeof inner[0]; i++)
        cj_coap_build_opt_uint(&b, inner[i], (uint32_t)(i + 1));
    cj_coap_build_payload(&b, (const uint8_t *)"x", 1);
    pl = cj_coap_build_finish(&b);
    CHECK(pl > 0);
    n = cj_oscore_protect_request(&cli, plain, (size_t)(pl > 0 ? pl : 0),
                                  prot, sizeof prot, NULL);
    CHECK(n > 0);
    if (n <= 0)
        return;
    CHECK_EQ(cj_coap_parse(&m, prot, (size_t)n), CJ_OK);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_URI_HOST, &o), 1);
    for (size_t i = 0; i < sizeof inner / sizeof inner[0]; i++)
        CHECK_EQ(cj_coap_opt_find(&m, inner[i], &o), 0);
    ul = cj_oscore_unprotect_request(&srv, prot, (size_t)n, out, sizeof out,
                                     NULL);
    CHECK_EQ(ul, pl);
    CHECK_MEM(out, (size_t)(ul > 0 ? ul : 0), plain, (size_t)pl);
}

/* The core steps (seal_begin, seal, open) on the RFC 8613 vectors the
 * pledge's two exchanges look like: C.6 (a request with kid context and
 * empty kid), C.7 and C.8 (responses to C.4 without and with their own
 * Partial IV); then what open refuses, and what it leaves alone. */
TEST(oscore_core_vectors)
{
    cj_oscore_ctx_t cli, srv, srv0;
    cj_oscore_req_t own, sown, req = c4_binding();
    cj_oscore_option_t ov;
    uint8_t opt[CJ_OSCORE_OPT_MAX], pt[64], ct[64], keep[64];
    size_t n;
    int rc;

    /* C.6, client side: the option value, then the ciphertext in place */
    CHECK_EQ(derive_tv(&cli, TV3, true), CJ_OK);
    CHECK_EQ(derive_tv(&srv, TV3, false), CJ_OK);
    cli.send_kid_context = true;
    cli.ssn = 20;
    rc = cj_oscore_seal_begin(&cli, NULL, true, &own, opt);
    CHECK_HEX(opt, (size_t)(rc > 0 ? rc : 0), "19140837cbf3210017a2d3");
    CHECK_EQ(cli.ssn, 20); /* begin spends nothing */
    n = cj_hex("01b3747631", pt, sizeof pt);
    rc = cj_oscore_seal(&cli, &own, NULL, pt, n);
    CHECK_EQ(rc, (int)(n + CJ_OSCORE_TAG_LEN));
    CHECK_HEX(pt, (size_t)(rc > 0 ? rc : 0), "72cd7273fd331ac45cffbe55c3");
    CHECK_EQ(cli.ssn, 21);
    /* the same binding again: its number is spent, nothing is sealed */
    memcpy(keep, pt, sizeof keep);
    CHECK_EQ(cj_oscore_seal(&cli, &own, NULL, pt, n), CJ_ERR_INVALID);
    CHECK_MEM(pt, sizeof pt, keep, sizeof keep);
    CHECK_EQ(cli.ssn, 21);

    /* C.6, server side */
    CHECK_EQ(cj_oscore_option_decode(opt, 11, &ov), CJ_OK);
    memcpy(ct, keep, 13);
    memcpy(&srv0, &srv, sizeof srv);
    rc = cj_oscore_open(&srv, &ov, NULL, ct, 13, &sown);
    CHECK_EQ(rc, 5);
    CHECK_HEX(ct, 5, "01b3747631");
    CHECK_EQ(sown.kid_len, 0);
    CHECK_HEX(sown.piv, sown.piv_len, "14");
    /* open leaves the window to the caller */
    CHECK(memcmp(&srv, &srv0, sizeof srv) == 0);
    /* truncated: no room for a code and the tag */
    memcpy(ct, keep, 13);
    CHECK_EQ(cj_oscore_open(&srv, &ov, NULL, ct, 8, &sown),
             CJ_ERR_OSCORE_DECODE);
    CHECK_MEM(ct, 13, keep, 13);
    /* a request without a Partial IV, or without kid */
    {
        cj_oscore_option_t bad = ov;
        bad.piv_len = 0;
        CHECK_EQ(cj_oscore_open(&srv, &bad, NULL, ct, 13, &sown),
                 CJ_ERR_OSCORE_DECODE);
        bad = ov;
        bad.has_kid = false;
        CHECK_EQ(cj_oscore_open(&srv, &bad, NULL, ct, 13, &sown),
                 CJ_ERR_UNKNOWN_CONTEXT);
        bad = ov;
        bad.kid_context_len = 7;
        CHECK_EQ(cj_oscore_open(&srv, &bad, NULL, ct, 13, &sown),
                 CJ_ERR_UNKNOWN_CONTEXT);
    }
    CHECK_MEM(ct, 13, keep, 13);
    /* every flipped bit fails the tag, and what was decrypted is wiped */
    for (size_t i = 0; i < 13 * 8; i++) {
        memcpy(ct, keep, 13);
        ct[i / 8] ^= (uint8_t)(1u << (i % 8));
        CHECK_EQ(cj_oscore_open(&srv, &ov, NULL, ct, 13, &sown), CJ_ERR_AUTH);
        for (size_t j = 0; j < 13 - CJ_OSCORE_TAG_LEN; j++)
            CHECK_EQ(ct[j], 0);
    }
    /* once entered, the Partial IV is a replay, checked before the tag */
    cj_oscore_replay_update(&srv.replay, 20);
    memcpy(ct, keep, 13);
    CHECK_EQ(cj_oscore_open(&srv, &ov, NULL, ct, 13, &sown), CJ_ERR_REPLAY);
    CHECK_MEM(ct, 13, keep, 13);

    /* C.7 and C.8: the server answers C.4 */
    for (int new_piv = 0; new_piv < 2; new_piv++) {
        CHECK_EQ(derive_tv(&srv, TV1, false), CJ_OK);
        CHECK_EQ(derive_tv(&cli, TV1, true), CJ_OK);
        rc = cj_oscore_seal_begin(&srv, &req, new_piv, &own, opt);
        CHECK_HEX(opt, (size_t)(rc > 0 ? rc : 0), new_piv ? "0100" : "");
        n = cj_hex("45ff48656c6c6f20576f726c6421", pt, sizeof pt);
        rc = cj_oscore_seal(&srv, &own, &req, pt, n);
        CHECK_EQ(rc, (int)(n + CJ_OSCORE_TAG_LEN));
        CHECK_HEX(pt, (size_t)(rc > 0 ? rc : 0),
                  new_piv ? "4d4c13669384b67354b2b6175ff4b8658c666a6cf88e"
                          : "dbaad1e9a7e7b2a813d3c31524378303cdafae119106");
        CHECK_EQ(srv.ssn, (uint64_t)new_piv);
        /* the client opens it under its request's binding */
        CHECK_EQ(cj_oscore_option_decode(opt, (size_t)(new_piv ? 2 : 0), &ov),
                 CJ_OK);
        memcpy(ct, pt, sizeof ct);
        rc = cj_oscore_open(&cli, &ov, &req, ct, n + CJ_OSCORE_TAG_LEN, &sown);
        CHECK_EQ(rc, (int)n);
        CHECK_HEX(ct, n, "45ff48656c6c6f20576f726c6421");
        CHECK_HEX(sown.kid, sown.kid_len, "01");
        CHECK_EQ(sown.piv_len, (uint8_t)new_piv);
        /* bound to C.4: under another request it does not verify */
        {
            cj_oscore_req_t other = req;
            other.piv[0] = 0x15;
            memcpy(ct, pt, sizeof ct);
            CHECK_EQ(cj_oscore_open(&cli, &ov, &other, ct,
                                    n + CJ_OSCORE_TAG_LEN, &sown),
                     CJ_ERR_AUTH);
        }
    }
    /* a malformed binding is refused by all three */
    req.piv_len = 0;
    CHECK_EQ(cj_oscore_seal_begin(&srv, &req, false, &own, opt),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_oscore_seal(&srv, &own, &req, pt, 1), CJ_ERR_INVALID);
    CHECK_EQ(cj_oscore_open(&cli, &ov, &req, ct, 9, &sown), CJ_ERR_INVALID);
    /* sequence numbers exhausted: nothing to begin with */
    cli.ssn = CJ_OSCORE_MAX_SSN + 1;
    CHECK_EQ(cj_oscore_seal_begin(&cli, NULL, true, &own, opt),
             CJ_ERR_SEQ_EXHAUSTED);
}
