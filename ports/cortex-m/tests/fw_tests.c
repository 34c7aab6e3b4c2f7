/*
 * On-target tests: the pledge-side library built freestanding for
 * Cortex-M3 and run on QEMU's mps2-an385, with mbedTLS compiled for the
 * target behind the crypto port.  The vectors are the ones the host unit
 * tests use (tests/unit/test_oscore.c, test_cojp.c, test_cbor.c,
 * test_coap.c), so a difference between the host and the target build
 * (endianness slips, alignment, 32-bit size_t, integer promotion, the
 * mbedTLS configuration) shows up here.
 *
 * Output: one line per test with the stack it needed, the stack
 * high-water mark of the whole run, and "firmware: N passed, N failed";
 * the exit status (through semihosting, QEMU's own) is 0 only when every
 * check passed.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../board.h"
#include "cojp/cbor.h"
#include "cojp/coap.h"
#include "cojp/cojp.h"
#include "cojp/crypto.h"
#include "cojp/jrc.h"
#include "cojp/jrc_memstore.h"
#include "cojp/oscore.h"
#include "cojp/pledge.h"
#include "cojp/proxy.h"

int main(void);

/* ---- a minimal harness -------------------------------------------------- */

static unsigned g_fails; /* failed checks in the current test */
/* Stack already reached in the current test before it repainted the
 * stack to measure one call alone. */
static size_t g_stack_seen;

static void check_fail(int line, const char *what)
{
    if (g_fails++ < 4) {
        cj_fw_puts("    check failed, line ");
        cj_fw_put_dec((uint32_t)line);
        cj_fw_puts(": ");
        cj_fw_puts(what);
        cj_fw_puts("\n");
    }
}

#define CHECK(c)                                                           \
    do {                                                                   \
        if (!(c))                                                          \
            check_fail(__LINE__, #c);                                      \
    } while (0)
#define CHECK_EQ(a, b) CHECK((long long)(a) == (long long)(b))

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex string to bytes; returns the byte count (stops at cap). */
static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (s[0] && s[1] && n < cap) {
        out[n++] = (uint8_t)(hexval(s[0]) << 4 | hexval(s[1]));
        s += 2;
    }
    return n;
}

static bool mem_is_hex(const uint8_t *p, size_t n, const char *hex)
{
    uint8_t want[128];
    size_t wn = unhex(hex, want, sizeof want);
    if (wn != n || memcmp(p, want, n) != 0) {
        cj_fw_puts("    got  ");
        cj_fw_put_bytes(p, n);
        cj_fw_puts("\n    want ");
        cj_fw_puts(hex);
        cj_fw_puts("\n");
        return false;
    }
    return true;
}

#define CHECK_HEX(p, n, hex) CHECK(mem_is_hex((p), (n), (hex)))

/* ---- RFC 8613 Appendix C ------------------------------------------------ */

/* C.1 - C.3 inputs: Master Secret, Master Salt, ID Context. */
static const uint8_t ms[16] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                               0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
                               0x0d, 0x0e, 0x0f, 0x10};
static const uint8_t salt[8] = {0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40};
static const uint8_t idctx[8] = {0x37, 0xcb, 0xf3, 0x21, 0x00, 0x17, 0xa2, 0xd3};
static const uint8_t id00[1] = {0x00};
static const uint8_t id01[1] = {0x01};

/* Test vector 1 (C.1: salt), 2 (C.2: no salt, client id 00) or 3 (C.3:
 * salt and ID Context); client or server side. */
static int derive_tv(cj_oscore_ctx_t *ctx, int tv, bool client)
{
    cj_oscore_params_t p;
    const uint8_t *cid = tv == 2 ? id00 : NULL;
    size_t cid_len = tv == 2 ? 1 : 0;

    memset(&p, 0, sizeof p);
    p.master_secret = ms;
    p.master_secret_len = sizeof ms;
    if (tv != 2) {
        p.master_salt = salt;
        p.master_salt_len = sizeof salt;
    }
    if (tv == 3) {
        p.id_context = idctx;
        p.id_context_len = sizeof idctx;
        p.has_id_context = true;
    }
    p.sender_id = client ? cid : id01;
    p.sender_id_len = client ? cid_len : 1;
    p.recipient_id = client ? id01 : cid;
    p.recipient_id_len = client ? 1 : cid_len;
    return cj_oscore_ctx_derive(ctx, &p);
}

static cj_oscore_ctx_t g_cli, g_srv; /* static: keeps main's frame small */

/* RFC 8613 Appendix C.1.1 / C.1.2 */
static void oscore_c1_derive(void)
{
    CHECK_EQ(derive_tv(&g_cli, 1, true), CJ_OK);
    CHECK_HEX(g_cli.sender_key, 16, "f0910ed7295e6ad4b54fc793154302ff");
    CHECK_HEX(g_cli.recipient_key, 16, "ffb14e093c94c9cac9471648b4f98710");
    CHECK_HEX(g_cli.common_iv, 13, "4622d4dd6d944168eefb54987c");
    CHECK_EQ(derive_tv(&g_srv, 1, false), CJ_OK);
    CHECK_HEX(g_srv.sender_key, 16, "ffb14e093c94c9cac9471648b4f98710");
    CHECK_HEX(g_srv.recipient_key, 16, "f0910ed7295e6ad4b54fc793154302ff");
    CHECK_HEX(g_srv.common_iv, 13, "4622d4dd6d944168eefb54987c");
}

/* RFC 8613 Appendix C.2.1 / C.2.2 */
static void oscore_c2_derive(void)
{
    CHECK_EQ(derive_tv(&g_cli, 2, true), CJ_OK);
    CHECK_HEX(g_cli.sender_key, 16, "321b26943253c7ffb6003b0b64d74041");
    CHECK_HEX(g_cli.recipient_key, 16, "e57b5635815177cd679ab4bcec9d7dda");
    CHECK_HEX(g_cli.common_iv, 13, "be35ae297d2dace910c52e99f9");
    CHECK_EQ(derive_tv(&g_srv, 2, false), CJ_OK);
    CHECK_HEX(g_srv.sender_key, 16, "e57b5635815177cd679ab4bcec9d7dda");
    CHECK_HEX(g_srv.recipient_key, 16, "321b26943253c7ffb6003b0b64d74041");
}

/* RFC 8613 Appendix C.3.1 / C.3.2 */
static void oscore_c3_derive(void)
{
    CHECK_EQ(derive_tv(&g_cli, 3, true), CJ_OK);
    CHECK_HEX(g_cli.sender_key, 16, "af2a1300a5e95788b356336eeecd2b92");
    CHECK_HEX(g_cli.recipient_key, 16, "e39a0c7c77b43f03b4b39ab9a268699f");
    CHECK_HEX(g_cli.common_iv, 13, "2ca58fb85ff1b81c0b7181b85e");
}

/* C.4 - C.6 requests (unprotected, protected) and C.7 / C.8 responses. */
#define C4_PLAIN "44015d1f00003974396c6f63616c686f737483747631"
#define C4_PROT "44025d1f00003974396c6f63616c686f7374620914ff612f1092f1776f1c1668b3825e"
#define C5_PLAIN "440171c30000b932396c6f63616c686f737483747631"
#define C5_PROT "440271c30000b932396c6f63616c686f737463091400ff4ed339a5a379b0b8bc731fffb0"
#define C6_PLAIN "44012f8eef9bbf7a396c6f63616c686f737483747631"
#define C6_PROT "44022f8eef9bbf7a396c6f63616c686f73746b19140837cbf3210017a2d3ff72cd7273fd331ac45cffbe55c3"
#define C7_PLAIN "64455d1f00003974ff48656c6c6f20576f726c6421"
#define C7_PROT "64445d1f0000397490ffdbaad1e9a7e7b2a813d3c31524378303cdafae119106"
#define C8_PROT "64445d1f00003974920100ff4d4c13669384b67354b2b6175ff4b8658c666a6cf88e"

/* Protect the request with the client context at sequence number 20,
 * compare bytes, unprotect at the server, then check that a replay and a
 * flipped tag bit both fail. */
static void request_vector(int tv, bool kid_ctx, const char *plain_hex,
                           const char *prot_hex)
{
    cj_oscore_req_t creq, sreq;
    uint8_t plain[48], prot[64], out[96], buf[64];
    size_t pl = unhex(plain_hex, plain, sizeof plain);
    size_t ptl = unhex(prot_hex, prot, sizeof prot);
    int rc;

    CHECK_EQ(derive_tv(&g_cli, tv, true), CJ_OK);
    CHECK_EQ(derive_tv(&g_srv, tv, false), CJ_OK);
    g_cli.send_kid_context = kid_ctx;
    g_cli.ssn = 20;

    rc = cj_oscore_protect_request(&g_cli, plain, pl, out, sizeof out, &creq);
    CHECK_EQ(rc, (int)ptl);
    if (rc > 0)
        CHECK_HEX(out, (size_t)rc, prot_hex);
    CHECK_EQ(g_cli.ssn, 21);

    memcpy(buf, prot, ptl);
    rc = cj_oscore_unprotect_request(&g_srv, buf, ptl, out, sizeof out, &sreq);
    CHECK_EQ(rc, (int)pl);
    if (rc > 0)
        CHECK_HEX(out, (size_t)rc, plain_hex);
    CHECK_EQ(sreq.piv_len, 1);
    CHECK_EQ(sreq.piv[0], 0x14);

    memcpy(buf, prot, ptl);
    CHECK_EQ(cj_oscore_unprotect_request(&g_srv, buf, ptl, out, sizeof out,
                                         NULL),
             CJ_ERR_REPLAY);

    CHECK_EQ(derive_tv(&g_srv, tv, false), CJ_OK);
    memcpy(buf, prot, ptl);
    buf[ptl - 1] ^= 0x01;
    CHECK_EQ(cj_oscore_unprotect_request(&g_srv, buf, ptl, out, sizeof out,
                                         NULL),
             CJ_ERR_AUTH);
}

/* RFC 8613 Appendix C.4 */
static void oscore_c4_request(void)
{
    request_vector(1, false, C4_PLAIN, C4_PROT);
}

/* RFC 8613 Appendix C.5 */
static void oscore_c5_request(void)
{
    request_vector(2, false, C5_PLAIN, C5_PROT);
}

/* RFC 8613 Appendix C.6 */
static void oscore_c6_request(void)
{
    request_vector(3, true, C6_PLAIN, C6_PROT);
}

/* Responses to C.4 (request kid h'', Partial IV 0x14): protect at the
 * server, compare bytes, unprotect at the client. */
static void response_vector(bool new_piv, const char *prot_hex)
{
    cj_oscore_req_t req;
    uint8_t plain[32], prot[48], out[64], buf[48];
    size_t pl = unhex(C7_PLAIN, plain, sizeof plain);
    size_t ptl = unhex(prot_hex, prot, sizeof prot);
    int rc;

    memset(&req, 0, sizeof req);
    req.piv[0] = 0x14;
    req.piv_len = 1;
    CHECK_EQ(derive_tv(&g_cli, 1, true), CJ_OK);
    CHECK_EQ(derive_tv(&g_srv, 1, false), CJ_OK);
    g_cli.ssn = 21;

    rc = cj_oscore_protect_response(&g_srv, &req, new_piv, plain, pl, out,
                                    sizeof out);
    CHECK_EQ(rc, (int)ptl);
    if (rc > 0)
        CHECK_HEX(out, (size_t)rc, prot_hex);

    memcpy(buf, prot, ptl);
    rc = cj_oscore_unprotect_response(&g_cli, &req, buf, ptl, out, sizeof out);
    CHECK_EQ(rc, (int)pl);
    if (rc > 0)
        CHECK_HEX(out, (size_t)rc, C7_PLAIN);
}

/* RFC 8613 Appendix C.7 */
static void oscore_c7_response(void)
{
    response_vector(false, C7_PROT);
}

/* RFC 8613 Appendix C.8 */
static void oscore_c8_response(void)
{
    response_vector(true, C8_PROT);
}

/* ---- RFC 9031 Appendix A ------------------------------------------------ */

#define A_JOIN_REQUEST "a10542cafe"
#define A_KEY "e6bf4287c2d7618d6a9687445ffd33e6"
#define A_CONFIG "a202820150" A_KEY "038142af93"

/* RFC 9031 Appendix A: Join_Request {5: h'cafe'} both ways. */
static void cojp_appendix_a_join_request(void)
{
    static const uint8_t pan[2] = {0xca, 0xfe};
    cj_cojp_join_request_t jr;
    cj_cojp_report_t why;
    uint8_t in[8], out[16];
    size_t n = unhex(A_JOIN_REQUEST, in, sizeof in);

    memset(&jr, 0, sizeof jr);
    jr.network_id = pan;
    jr.network_id_len = sizeof pan;
    CHECK_EQ(cj_cojp_join_request_encode(&jr, out, sizeof out), 5);
    CHECK_HEX(out, 5, A_JOIN_REQUEST);

    CHECK_EQ(cj_cojp_join_request_decode(in, n, &jr, &why), CJ_OK);
    CHECK_EQ(jr.role, CJ_COJP_ROLE_6LN);
    CHECK(jr.network_id_len == 2 && memcmp(jr.network_id, pan, 2) == 0);
    CHECK(!jr.has_unsupported);
}

/* RFC 9031 Appendix A: Configuration {2: [1, h'e6bf...33e6'],
 * 3: [h'af93']} both ways. */
static void cojp_appendix_a_configuration(void)
{
    static const uint8_t sid[2] = {0xaf, 0x93};
    uint8_t key[16], in[32], out[32];
    cj_cojp_config_t c;
    cj_cojp_report_t why;
    size_t n = unhex(A_CONFIG, in, sizeof in);

    unhex(A_KEY, key, sizeof key);
    memset(&c, 0, sizeof c);
    c.key_count = 1;
    c.keys[0].key_id = 1;
    c.keys[0].key = key;
    c.short_id = sid;
    CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), 26);
    CHECK_HEX(out, 26, A_CONFIG);

    CHECK_EQ(n, 26);
    CHECK_EQ(cj_cojp_config_decode(in, n, &c, &why), CJ_OK);
    CHECK_EQ(c.key_count, 1);
    CHECK_EQ(c.keys[0].key_id, 1);
    CHECK_EQ(c.keys[0].key_usage, CJ_COJP_KEY_USAGE_K1K2_ENC_MIC32);
    CHECK_HEX(c.keys[0].key, 16, A_KEY);
    CHECK(c.short_id != NULL && memcmp(c.short_id, sid, 2) == 0);
    CHECK(!c.has_lease_time);
    CHECK(c.jrc_address == NULL);
    CHECK(!c.has_blacklist && !c.has_join_rate);
}

/* ---- CBOR (RFC 8949 Appendix A) and CoAP -------------------------------- */

/* RFC 8949 Appendix A: integers at every head size, both signs, 64-bit
 * values (which a 32-bit target handles in register pairs). */
static void cbor_appendix_a_integers(void)
{
    static const struct {
        int64_t v;
        const char *hex;
    } vec[] = {
        {0, "00"},
        {23, "17"},
        {24, "1818"},
        {1000, "1903e8"},
        {1000000, "1a000f4240"},
        {1000000000000, "1b000000e8d4a51000"},
        {-1, "20"},
        {-100, "3863"},
        {-1000, "3903e7"},
    };
    uint8_t buf[16];

    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        cj_cbor_enc_t e;
        cj_cbor_dec_t d;
        int64_t got = 0;
        int n;

        cj_cbor_enc_init(&e, buf, sizeof buf);
        cj_cbor_put_int(&e, vec[i].v);
        n = cj_cbor_enc_finish(&e);
        CHECK(n > 0);
        if (n > 0)
            CHECK_HEX(buf, (size_t)n, vec[i].hex);
        cj_cbor_dec_init(&d, buf, n > 0 ? (size_t)n : 0);
        CHECK_EQ(cj_cbor_get_int(&d, &got), CJ_OK);
        CHECK(got == vec[i].v);
        CHECK(cj_cbor_dec_done(&d));
    }
    {
        cj_cbor_dec_t d;
        uint64_t u = 0;
        size_t n = unhex("1bffffffffffffffff", buf, sizeof buf);
        cj_cbor_dec_init(&d, buf, n);
        CHECK_EQ(cj_cbor_get_uint(&d, &u), CJ_OK);
        CHECK(u == UINT64_MAX);
    }
}

/* RFC 8949 Appendix A: h'01020304', "IETF", [1, [2, 3], [4, 5]],
 * {1: 2, 3: 4}. */
static void cbor_appendix_a_containers(void)
{
    static const uint8_t b4[4] = {1, 2, 3, 4};
    uint8_t buf[32];
    cj_cbor_enc_t e;
    cj_cbor_dec_t d;
    const uint8_t *p;
    const char *s;
    size_t n, count;
    uint64_t u;
    int len;

    cj_cbor_enc_init(&e, buf, sizeof buf);
    cj_cbor_put_bstr(&e, b4, 4);
    cj_cbor_put_tstr(&e, "IETF", 4);
    cj_cbor_put_array(&e, 3);
    cj_cbor_put_uint(&e, 1);
    cj_cbor_put_array(&e, 2);
    cj_cbor_put_uint(&e, 2);
    cj_cbor_put_uint(&e, 3);
    cj_cbor_put_array(&e, 2);
    cj_cbor_put_uint(&e, 4);
    cj_cbor_put_uint(&e, 5);
    cj_cbor_put_map(&e, 2);
    cj_cbor_put_uint(&e, 1);
    cj_cbor_put_uint(&e, 2);
    cj_cbor_put_uint(&e, 3);
    cj_cbor_put_uint(&e, 4);
    len = cj_cbor_enc_finish(&e);
    CHECK(len > 0);
    if (len <= 0)
        return;
    CHECK_HEX(buf, (size_t)len,
              "4401020304" "6449455446" "8301820203820405" "a201020304");
    /* One item validates; the sequence of four has trailing items. */
    CHECK_EQ(cj_cbor_validate(buf + 10, 8), CJ_OK);
    CHECK_EQ(cj_cbor_validate(buf, (size_t)len), CJ_ERR_TRAILING);

    cj_cbor_dec_init(&d, buf, (size_t)len);
    CHECK_EQ(cj_cbor_get_bstr(&d, &p, &n), CJ_OK);
    CHECK(n == 4 && memcmp(p, b4, 4) == 0);
    CHECK_EQ(cj_cbor_get_tstr(&d, &s, &n), CJ_OK);
    CHECK(n == 4 && memcmp(s, "IETF", 4) == 0);
    CHECK_EQ(cj_cbor_get_array(&d, &count), CJ_OK);
    CHECK_EQ(count, 3);
    CHECK_EQ(cj_cbor_get_uint(&d, &u), CJ_OK);
    CHECK(u == 1);
    CHECK_EQ(cj_cbor_skip(&d), CJ_OK);
    CHECK_EQ(cj_cbor_skip(&d), CJ_OK);
    CHECK_EQ(cj_cbor_get_map(&d, &count), CJ_OK);
    CHECK_EQ(count, 2);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(cj_cbor_get_uint(&d, &u), CJ_OK);
        CHECK(u == (uint64_t)(i + 1));
    }
    CHECK(cj_cbor_dec_done(&d));
}

/* The unprotected request of RFC 8613 Appendix C.4 as a CoAP vector:
 * CON GET, MID 0x5d1f, token 00003974, Uri-Host "localhost", Uri-Path
 * "tv1".  Built with the builder, then parsed back. */
static void coap_build_parse_c4(void)
{
    static const uint8_t tok[4] = {0x00, 0x00, 0x39, 0x74};
    uint8_t buf[48];
    cj_coap_builder_t b;
    cj_coap_msg_t m;
    cj_coap_opt_t o;
    cj_coap_opt_iter_t it;
    int n;

    cj_coap_build_init(&b, buf, sizeof buf, CJ_COAP_CON, CJ_COAP_GET, 0x5d1f,
                       tok, sizeof tok);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "localhost");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "tv1");
    n = cj_coap_build_finish(&b);
    CHECK(n > 0);
    if (n <= 0)
        return;
    CHECK_HEX(buf, (size_t)n, C4_PLAIN);

    CHECK_EQ(cj_coap_parse(&m, buf, (size_t)n), CJ_OK);
    CHECK_EQ(m.type, CJ_COAP_CON);
    CHECK_EQ(m.code, CJ_COAP_GET);
    CHECK_EQ(m.mid, 0x5d1f);
    CHECK(m.token_len == 4 && memcmp(m.token, tok, 4) == 0);
    CHECK_EQ(m.opt_count, 2);
    CHECK_EQ(m.payload_len, 0);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_URI_PATH, &o), 1);
    CHECK(o.len == 3 && memcmp(o.val, "tv1", 3) == 0);
    cj_coap_opt_iter_init(&it, &m);
    CHECK_EQ(cj_coap_opt_next(&it, &o), 1);
    CHECK_EQ(o.num, CJ_COAP_OPT_URI_HOST);
    CHECK_EQ(cj_coap_opt_next(&it, &o), 1);
    CHECK_EQ(cj_coap_opt_next(&it, &o), 0);

    /* Every truncation is refused or parses to a shorter, valid view. */
    for (int l = 0; l < 4; l++)
        CHECK_EQ(cj_coap_parse(&m, buf, (size_t)l), CJ_ERR_TRUNCATED);
    CHECK_EQ(cj_coap_parse(&m, buf, 6), CJ_ERR_TRUNCATED);
}

/* ---- engines: pledge -> Join Proxy -> back ------------------------------ */

/* Counters in RAM: enough for the engines' persistence contract here. */
static struct {
    uint64_t v[8];
    bool set[8];
    uint64_t now;
} g_plat_state;

static uint64_t plat_now(void *ctx)
{
    (void)ctx;
    return g_plat_state.now;
}

static int plat_store(void *ctx, uint32_t id, uint64_t v)
{
    (void)ctx;
    if (id >= 8)
        return CJ_ERR_STORAGE;
    g_plat_state.v[id] = v;
    g_plat_state.set[id] = true;
    return CJ_OK;
}

static int plat_load(void *ctx, uint32_t id, uint64_t *v)
{
    (void)ctx;
    if (id >= 8)
        return CJ_ERR_STORAGE;
    if (!g_plat_state.set[id])
        return CJ_ERR_NOTFOUND;
    *v = g_plat_state.v[id];
    return CJ_OK;
}

static const cj_platform_t g_plat = {NULL, plat_now, plat_store, plat_load,
                                     NULL};

static cj_pledge_t g_pledge;
static cj_proxy_t g_proxy;
static uint8_t g_buf1[256], g_buf2[256], g_buf3[256], g_ack[CJ_PROXY_ACK_LEN];

/* A two-byte test address hi lo. */
static void addr2(cj_addr_t *a, uint8_t hi, uint8_t lo)
{
    memset(a, 0, sizeof *a);
    a->len = 2;
    a->b[0] = hi;
    a->b[1] = lo;
}

/* A pledge emits its Join Request (RFC 9031 section 8.1.1); the Join
 * Proxy forwards it with its state in an RFC 8974 extended token; a
 * response carrying that token, a separate response in a CON message
 * (RFC 8974 section 3.3), comes back to the pledge's address once and
 * gets the JP's empty ACK every time it arrives; the pledge drops it
 * silently since it is not OSCORE-protected (section 7.3.2). */
static void engines_join_request_through_proxy(void)
{
    static const uint8_t pid[8] = {0x02, 0, 0, 0, 0, 0, 0, 0x01};
    static const uint8_t netid[2] = {0xca, 0xfe};
    cj_pledge_cfg_t pc;
    cj_proxy_cfg_t jc;
    cj_addr_t jp_addr, jrc_addr, pledge_addr;
    cj_out_t o1, o2, o3, oa;
    cj_coap_msg_t m;
    cj_coap_opt_t opt;
    cj_coap_builder_t b;
    int n;

    memset(&g_plat_state, 0, sizeof g_plat_state);
    addr2(&jp_addr, 0, 1);
    addr2(&jrc_addr, 0, 9);
    addr2(&pledge_addr, 0, 5);

    memset(&pc, 0, sizeof pc);
    pc.pledge_id = pid;
    pc.pledge_id_len = sizeof pid;
    memcpy(pc.psk, ms, 16);
    pc.role = CJ_COJP_ROLE_6LN;
    CHECK_EQ(cj_pledge_init(&g_pledge, &pc, &g_plat), CJ_OK);
    CHECK_EQ(cj_pledge_add_jp(&g_pledge, &jp_addr, netid, sizeof netid),
             CJ_OK);
    CHECK_EQ(cj_pledge_start(&g_pledge, 0), CJ_OK);

    o1.buf = g_buf1;
    o1.cap = sizeof g_buf1;
    cj_out_reset(&o1);
    CHECK_EQ(cj_pledge_poll(&g_pledge, 0, &o1), 1);
    CHECK(o1.len > 0);
    CHECK(cj_addr_equal(&o1.to, &jp_addr));
    CHECK_EQ(cj_coap_parse(&m, g_buf1, o1.len), CJ_OK);
    CHECK_EQ(m.type, CJ_COAP_CON);
    CHECK_EQ(m.code, CJ_COAP_POST);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_URI_HOST, &opt), 1);
    CHECK(opt.len == 11 && memcmp(opt.val, "6tisch.arpa", 11) == 0);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_OSCORE, &opt), 1);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_URI_PATH, &opt), 0);

    memset(&jc, 0, sizeof jc);
    jc.jrc = jrc_addr;
    jc.join_rate = CJ_PROXY_RATE_UNLIMITED;
    CHECK_EQ(cj_proxy_init(&g_proxy, &jc, NULL), CJ_OK);
    o2.buf = g_buf2;
    o2.cap = sizeof g_buf2;
    cj_out_reset(&o2);
    CHECK_EQ(cj_proxy_input_pledge(&g_proxy, 0, &pledge_addr, g_buf1, o1.len,
                                   &o2),
             1);
    CHECK(cj_addr_equal(&o2.to, &jrc_addr));
    CHECK_EQ(cj_coap_parse(&m, g_buf2, o2.len), CJ_OK);
    CHECK_EQ(m.type, CJ_COAP_NON);
    CHECK(m.token_len > 8); /* the JP's state travels in the token */
    if (m.token_len == 0 || m.token_len > CJ_COAP_MAX_TOKEN)
        return;

    /* The JRC answers CON 2.04 with the JP's token. */
    cj_coap_build_init(&b, g_buf3, sizeof g_buf3, CJ_COAP_CON,
                       CJ_COAP_CODE(2, 4), 0x1234, m.token, m.token_len);
    cj_coap_build_payload(&b, (const uint8_t *)"x", 1);
    n = cj_coap_build_finish(&b);
    CHECK(n > 0);
    if (n <= 0)
        return;
    o3.buf = g_buf1;
    o3.cap = sizeof g_buf1;
    cj_out_reset(&o3);
    oa.buf = g_ack;
    oa.cap = sizeof g_ack;
    CHECK_EQ(cj_proxy_input_jrc(&g_proxy, 1, &jrc_addr, g_buf3, (size_t)n,
                                &o3, &oa),
             1);
    CHECK(cj_addr_equal(&o3.to, &pledge_addr));
    CHECK_EQ(g_proxy.stats.forwarded, 1);
    CHECK_EQ(g_proxy.stats.relayed, 1);
    /* the empty ACK of MID 0x1234 to the JRC */
    CHECK_EQ(oa.len, CJ_PROXY_ACK_LEN);
    CHECK(cj_addr_equal(&oa.to, &jrc_addr));
    CHECK(g_ack[0] == 0x60 && g_ack[1] == 0 && g_ack[2] == 0x12 &&
          g_ack[3] == 0x34);

    /* Its retransmission: acknowledged again, not relayed. */
    cj_out_reset(&o2);
    CHECK_EQ(cj_proxy_input_jrc(&g_proxy, 2, &jrc_addr, g_buf3, (size_t)n,
                                &o2, &oa),
             0);
    CHECK_EQ(o2.len, 0);
    CHECK_EQ(oa.len, CJ_PROXY_ACK_LEN);
    CHECK_EQ(g_proxy.stats.relayed, 1);
    CHECK_EQ(g_proxy.stats.acks, 2);

    /* A forged copy (token bit flipped): neither relayed nor answered. */
    g_buf3[5] ^= 0x01;
    cj_out_reset(&o2);
    CHECK_EQ(cj_proxy_input_jrc(&g_proxy, 1, &jrc_addr, g_buf3, (size_t)n,
                                &o2, &oa),
             0);
    CHECK_EQ(oa.len, 0);

    /* The pledge ignores the unprotected response. */
    o2.buf = g_buf2;
    o2.cap = sizeof g_buf2;
    cj_out_reset(&o2);
    CHECK_EQ(cj_pledge_input(&g_pledge, 1, &jp_addr, g_buf1, o3.len, &o2), 0);
    CHECK_EQ(cj_pledge_get_state(&g_pledge), CJ_PLEDGE_JOINING);
}

/* A complete join on the target (RFC 9031 sections 8.1 and 8.2): pledge
 * -> Join Proxy -> JRC -> Join Proxy -> pledge, ending JOINED with the
 * key and short identifier the JRC handed out.  The JRC engine is not
 * pledge-side code; it is linked into the test image only to answer. */
/* RFC 9031 Appendix B on the target: a pledge given its derived context
 * (cj_pledge_okm(), as a provisioning tool computes it) holds the context
 * a pledge derives from the PSK. */
static void pledge_okm_context(void)
{
    static const uint8_t pid[8] = {0x02, 0, 0, 0, 0, 0, 0, 0x03};
    static cj_pledge_t q;
    static uint8_t okm[CJ_OSCORE_OKM_LEN];
    cj_pledge_cfg_t pc;

    memset(&g_plat_state, 0, sizeof g_plat_state);
    memset(&pc, 0, sizeof pc);
    pc.pledge_id = pid;
    pc.pledge_id_len = sizeof pid;
    memcpy(pc.psk, ms, 16);
    CHECK_EQ(cj_pledge_init(&g_pledge, &pc, &g_plat), CJ_OK);
    CHECK_EQ(cj_pledge_okm(pid, sizeof pid, ms, okm), CJ_OK);
    memset(pc.psk, 0, sizeof pc.psk);
    pc.okm = okm;
    memset(&g_plat_state, 0, sizeof g_plat_state);
    CHECK_EQ(cj_pledge_init(&q, &pc, &g_plat), CJ_OK);
    CHECK(memcmp(q.osc.sender_key, g_pledge.osc.sender_key,
                 CJ_OSCORE_KEY_LEN) == 0);
    CHECK(memcmp(q.osc.recipient_key, g_pledge.osc.recipient_key,
                 CJ_OSCORE_KEY_LEN) == 0);
    CHECK(memcmp(q.osc.common_iv, g_pledge.osc.common_iv,
                 CJ_OSCORE_NONCE_LEN) == 0);
}

static cj_jrc_t g_jrc;

/* Stack needed by one engine call (the call and what it calls, mbedTLS
 * included), deepest seen over every test that runs the queue: the
 * pledge's input of a Join Response, of a parameter update and of a
 * recovery 4.01 (two context derivations), and the Join Proxy's input;
 * the Join Response once more as engines_full_join() steps it (rsp_step);
 * cj_pledge_init() (key derivation) in engines_setup(); and the crypto
 * port's two heaviest calls on their own (crypto_port_stack). */
static struct {
    size_t init, rsp, rsp_step, upd, rec, jp;
    size_t ccm, hkdf; /* the crypto port alone, for scale */
} g_stk;

/* Start measuring the stack of one engine call made from the caller's
 * frame: returns the depth at the call.  stack_end() then gives what the
 * call needed by itself. */
static size_t stack_begin(void)
{
    size_t used = cj_fw_stack_high_water();

    if (used > g_stack_seen)
        g_stack_seen = used;
    cj_fw_stack_repaint();
    return cj_fw_stack_depth();
}

static void stack_end(size_t depth, size_t *max)
{
    size_t used = cj_fw_stack_high_water() - depth;

    if (used > *max)
        *max = used;
}
static cj_jrc_memstore_t g_ms;
static cj_jrc_mementry_t g_entries[2];
static cj_jrc_slot_t g_slots[2];

/* The three engines for pledge pid (PSK ms, network cafe): the JRC with
 * an in-memory store holding the pledge and one key for K1 and K2 (key
 * id 1, usage 0, value k1), the Join Proxy relaying to jrc, the pledge
 * with jp as its one candidate.  next_short: the first short identifier
 * the store hands out (0: its own default); recovery: the JRC runs in
 * the recovery mode of section 8.3.3. */
static void engines_setup(const uint8_t pid[8], const uint8_t k1[16],
                          uint16_t next_short, bool recovery,
                          const cj_addr_t *jp, const cj_addr_t *jrc)
{
    static const uint8_t netid[2] = {0xca, 0xfe};
    cj_pledge_cfg_t pc;
    cj_proxy_cfg_t jc;
    cj_jrc_cfg_t rc;

    memset(&g_plat_state, 0, sizeof g_plat_state);
    cj_jrc_memstore_init(&g_ms, g_entries, 2);
    if (next_short)
        g_ms.next_short = next_short;
    CHECK_EQ(cj_jrc_memstore_add(&g_ms, pid, 8, ms, CJ_JRC_ALLOW_NODE),
             CJ_OK);
    memset(&rc, 0, sizeof rc);
    rc.network_id = netid;
    rc.network_id_len = sizeof netid;
    rc.keys[0].key_id = 1;
    memcpy(rc.keys[0].key, k1, 16);
    rc.key_count = 1;
    rc.join_rate = UINT32_MAX;
    rc.slots = g_slots;
    rc.slot_count = 2;
    rc.recovery = recovery;
    CHECK_EQ(cj_jrc_init(&g_jrc, &rc, &g_ms.store, NULL), CJ_OK);

    memset(&jc, 0, sizeof jc);
    jc.jrc = *jrc;
    jc.join_rate = CJ_PROXY_RATE_UNLIMITED;
    CHECK_EQ(cj_proxy_init(&g_proxy, &jc, NULL), CJ_OK);

    memset(&pc, 0, sizeof pc);
    pc.pledge_id = pid;
    pc.pledge_id_len = 8;
    memcpy(pc.psk, ms, 16);
    pc.role = CJ_COJP_ROLE_6LN;
    {
        size_t depth = stack_begin();
        CHECK_EQ(cj_pledge_init(&g_pledge, &pc, &g_plat), CJ_OK);
        stack_end(depth, &g_stk.init);
    }
    CHECK_EQ(cj_pledge_add_jp(&g_pledge, jp, netid, sizeof netid), CJ_OK);
}

static void engines_full_join(void)
{
    static const uint8_t pid[8] = {0x02, 0, 0, 0, 0, 0, 0, 0x02};
    static const uint8_t k1[16] = {0xe6, 0xbf, 0x42, 0x87, 0xc2, 0xd7,
                                   0x61, 0x8d, 0x6a, 0x96, 0x87, 0x44,
                                   0x5f, 0xfd, 0x33, 0xe6};
    cj_addr_t jp_addr, jp_seen_by_jrc, jrc_addr, pledge_addr;
    cj_out_t o;
    const cj_pledge_key_t *keys;
    uint8_t sid[2];

    addr2(&jp_addr, 0, 1);
    addr2(&jp_seen_by_jrc, 0xfd, 1);
    addr2(&jrc_addr, 0, 9);
    addr2(&pledge_addr, 0, 6);
    /* Appendix A's short identifier */
    engines_setup(pid, k1, 0xaf93, false, &jp_addr, &jrc_addr);
    CHECK_EQ(cj_pledge_start(&g_pledge, 0), CJ_OK);

    /* pledge -> JP */
    o.buf = g_buf1;
    o.cap = sizeof g_buf1;
    cj_out_reset(&o);
    CHECK_EQ(cj_pledge_poll(&g_pledge, 0, &o), 1);
    CHECK(cj_addr_equal(&o.to, &jp_addr));
    /* JP -> JRC */
    {
        size_t n = o.len;
        o.buf = g_buf2;
        o.cap = sizeof g_buf2;
        cj_out_reset(&o);
        CHECK_EQ(cj_proxy_input_pledge(&g_proxy, 10, &pledge_addr, g_buf1, n,
                                       &o),
                 1);
        CHECK(cj_addr_equal(&o.to, &jrc_addr));
    }
    /* JRC -> JP */
    {
        size_t n = o.len;
        o.buf = g_buf3;
        o.cap = sizeof g_buf3;
        cj_out_reset(&o);
        CHECK_EQ(cj_jrc_input(&g_jrc, 20, &jp_seen_by_jrc, g_buf2, n, &o), 1);
        CHECK_EQ(o.event, CJ_JRC_EV_JOINED);
        CHECK(cj_addr_equal(&o.to, &jp_seen_by_jrc));
    }
    /* JP -> pledge */
    {
        size_t n = o.len;
        o.buf = g_buf1;
        o.cap = sizeof g_buf1;
        cj_out_reset(&o);
        cj_out_t oa = {g_ack, sizeof g_ack, 0, {0, {0}}, 0};
        CHECK_EQ(cj_proxy_input_jrc(&g_proxy, 30, &jrc_addr, g_buf3, n, &o,
                                    &oa),
                 1);
        CHECK(cj_addr_equal(&o.to, &pledge_addr));
        CHECK_EQ(oa.len, 0); /* a NON response: nothing to acknowledge */
    }
    /* pledge: Join Response */
    {
        size_t n = o.len;
        o.buf = g_buf2;
        o.cap = sizeof g_buf2;
        cj_out_reset(&o);
        size_t depth = stack_begin();
        CHECK_EQ(cj_pledge_input(&g_pledge, 40, &jp_addr, g_buf1, n, &o), 1);
        stack_end(depth, &g_stk.rsp_step);
        CHECK_EQ(o.event, CJ_PLEDGE_EV_JOINED);
    }
    CHECK_EQ(cj_pledge_get_state(&g_pledge), CJ_PLEDGE_JOINED);
    CHECK_EQ(cj_pledge_keys(&g_pledge, &keys), 1);
    CHECK(keys[0].key_id == 1 && memcmp(keys[0].key, k1, 16) == 0);
    CHECK_EQ(cj_pledge_short_id(&g_pledge, sid, NULL), CJ_OK);
    CHECK(sid[0] == 0xaf && sid[1] == 0x93);
}

/* ---- engines over an in-image datagram queue ---------------------------- */

/* The three engines of a join exchange wired by a queue of datagrams, as
 * a mote, its neighbour and the JRC would be by radio and network: every
 * datagram an engine emits is queued with its source and destination,
 * and delivered to the engine at that destination.  drop_to_pledge
 * datagrams on their way to the pledge are lost. */
#define NET_QLEN 8
typedef struct {
    cj_addr_t from, to;
    uint16_t len;
    uint8_t b[256];
} net_dgram_t;

static struct {
    net_dgram_t q[NET_QLEN];
    unsigned head, n;
    /* addresses: the pledge before (link-local) and after joining, the
     * JP towards the pledge and towards the JRC, the JRC */
    cj_addr_t pledge, pledge_global, jp, jp_up, jrc;
    unsigned drop_to_pledge, dropped;
    unsigned to_jp, to_jrc, to_pledge; /* datagrams delivered */
    int pledge_ev, jrc_ev;             /* last event of each */
    unsigned pledge_evs;               /* bit e: pledge event e seen */
    unsigned jrc_acked, jrc_done;      /* UPDATE_ACKED, CAMPAIGN_DONE */
} g_net;

static void net_send(const cj_addr_t *from, const cj_out_t *o)
{
    net_dgram_t *d;

    if (o->len == 0)
        return;
    CHECK(g_net.n < NET_QLEN && o->len <= sizeof d->b);
    if (g_net.n >= NET_QLEN || o->len > sizeof d->b)
        return;
    d = &g_net.q[(g_net.head + g_net.n++) % NET_QLEN];
    d->from = *from;
    d->to = o->to;
    d->len = (uint16_t)o->len;
    memcpy(d->b, o->buf, o->len);
}

static void net_pledge_event(int ev)
{
    if (ev == CJ_PLEDGE_EV_NONE)
        return;
    g_net.pledge_ev = ev;
    g_net.pledge_evs |= 1u << ev;
}

static void net_jrc_event(int ev)
{
    if (ev == CJ_JRC_EV_NONE)
        return;
    g_net.jrc_ev = ev;
    g_net.jrc_acked += ev == CJ_JRC_EV_UPDATE_ACKED;
    g_net.jrc_done += ev == CJ_JRC_EV_CAMPAIGN_DONE;
}

/* Deliver the oldest queued datagram at time now. */
static void net_deliver(uint64_t now)
{
    static net_dgram_t d;
    cj_out_t o = {g_buf1, sizeof g_buf1, 0, {0, {0}}, 0};
    size_t depth;
    int r;

    d = g_net.q[g_net.head];
    g_net.head = (g_net.head + 1) % NET_QLEN;
    g_net.n--;
    if (cj_addr_equal(&d.to, &g_net.jp)) {
        g_net.to_jp++;
        depth = stack_begin();
        r = cj_proxy_input_pledge(&g_proxy, now, &d.from, d.b, d.len, &o);
        stack_end(depth, &g_stk.jp);
        if (r)
            net_send(&g_net.jp_up, &o);
    } else if (cj_addr_equal(&d.to, &g_net.jp_up)) {
        cj_out_t oa = {g_ack, sizeof g_ack, 0, {0, {0}}, 0};
        depth = stack_begin();
        r = cj_proxy_input_jrc(&g_proxy, now, &d.from, d.b, d.len, &o, &oa);
        stack_end(depth, &g_stk.jp);
        if (r) {
            net_send(&g_net.jp, &o);
            net_send(&g_net.jp_up, &oa);
        }
    } else if (cj_addr_equal(&d.to, &g_net.jrc)) {
        g_net.to_jrc++;
        if (cj_jrc_input(&g_jrc, now, &d.from, d.b, d.len, &o)) {
            net_send(&g_net.jrc, &o);
            net_jrc_event(o.event);
        }
    } else if (cj_addr_equal(&d.to, &g_net.pledge) ||
               cj_addr_equal(&d.to, &g_net.pledge_global)) {
        bool joined = cj_pledge_get_state(&g_pledge) == CJ_PLEDGE_JOINED;
        if (g_net.drop_to_pledge) {
            g_net.drop_to_pledge--;
            g_net.dropped++;
            return;
        }
        g_net.to_pledge++;
        depth = stack_begin();
        r = cj_pledge_input(&g_pledge, now, &d.from, d.b, d.len, &o);
        stack_end(depth, joined ? &g_stk.upd
                         : r && o.event == CJ_PLEDGE_EV_RECOVERY
                             ? &g_stk.rec
                             : &g_stk.rsp);
        if (r) {
            net_send(&d.to, &o);
            net_pledge_event(o.event);
        }
    } else {
        CHECK(!"datagram to an unknown address");
    }
}

/* Run the network from *now: deliver what is queued, let the engines'
 * timers fire, until nothing is queued and no timer is due before until.
 * *now ends at the last time something happened. */
static void net_run(uint64_t *now, uint64_t until)
{
    cj_out_t o = {g_buf2, sizeof g_buf2, 0, {0, {0}}, 0};
    unsigned steps = 0;

    while (steps++ < 1000) {
        uint64_t t, tj;
        while (g_net.n)
            net_deliver(*now);
        while (cj_pledge_poll(&g_pledge, *now, &o)) {
            net_send(&g_net.pledge, &o);
            net_pledge_event(o.event);
        }
        while (cj_jrc_poll(&g_jrc, *now, &o)) {
            net_send(&g_net.jrc, &o);
            net_jrc_event(o.event);
        }
        if (g_net.n)
            continue;
        t = cj_pledge_next_timer(&g_pledge);
        tj = cj_jrc_next_timer(&g_jrc);
        if (tj < t)
            t = tj;
        if (t >= until)
            return;
        if (t > *now)
            *now = t;
    }
    CHECK(!"the network did not settle");
}

/* An empty queue and the addresses: the pledge link-local (fe80::4)
 * before it joins, fd00::4 after; the JP fe80::1 towards the pledge and
 * fd00::1 towards the JRC, fd00::9. */
static void net_setup(void)
{
    memset(&g_net, 0, sizeof g_net);
    g_net.pledge.len = g_net.pledge_global.len = g_net.jp.len = 16;
    g_net.jp_up.len = g_net.jrc.len = 16;
    g_net.pledge.b[0] = g_net.jp.b[0] = 0xfe;
    g_net.pledge.b[1] = g_net.jp.b[1] = 0x80;
    g_net.pledge_global.b[0] = g_net.jp_up.b[0] = g_net.jrc.b[0] = 0xfd;
    g_net.pledge.b[15] = g_net.pledge_global.b[15] = 4;
    g_net.jp.b[15] = g_net.jp_up.b[15] = 1;
    g_net.jrc.b[15] = 9;
}

/* RFC 9031 sections 8.1 and 8.2 end to end inside the image: the Join
 * Response is lost once on its way to the pledge, the pledge
 * retransmits its Join Request byte for byte after its timeout and the
 * JRC answers it from its cache; then the JRC rekeys the network with a
 * new K1 and a new K2 (a parameter update, sent to the joined node's
 * address), the pledge answers 2.04 and, as a 6LN, installs the set for
 * reception and moves its own traffic to it once a frame under a new
 * key verifies (section 8.4.3.2); the old key goes after the guard
 * time. */
static void engines_lost_response_and_rekey(void)
{
    static const uint8_t pid[8] = {0x02, 0, 0, 0, 0, 0, 0, 0x04};
    static const uint8_t k1[16] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
                                   0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc,
                                   0xdd, 0xee, 0xff, 0x00};
    cj_jrc_key_t nk[2];
    const cj_pledge_key_t *k;
    cj_out_t o = {g_buf3, sizeof g_buf3, 0, {0, {0}}, 0};
    uint64_t now = 0;

    net_setup();
    engines_setup(pid, k1, 0, false, &g_net.jp, &g_net.jrc);
    /* updates go to the joined node's own address */
    CHECK_EQ(cj_jrc_memstore_set_address(&g_ms, pid, sizeof pid,
                                         &g_net.pledge_global),
             CJ_OK);

    /* the join, its first Join Response lost */
    g_net.drop_to_pledge = 1;
    CHECK_EQ(cj_pledge_start(&g_pledge, now), CJ_OK);
    net_run(&now, CJ_TIME_NEVER);
    CHECK_EQ(cj_pledge_get_state(&g_pledge), CJ_PLEDGE_JOINED);
    CHECK_EQ(g_net.pledge_ev, CJ_PLEDGE_EV_JOINED);
    CHECK_EQ(g_net.dropped, 1);
    CHECK_EQ(g_net.to_jp, 2);  /* the Join Request and its retransmission */
    CHECK_EQ(g_net.to_jrc, 2);
    CHECK_EQ(g_jrc.stats.joins, 1);
    CHECK_EQ(g_jrc.stats.repeats, 1);
    /* the retransmission came after ACK_TIMEOUT * [1, 1.5] (Table 1) */
    CHECK(now >= CJ_COJP_ACK_TIMEOUT_MS &&
          now <= CJ_COJP_ACK_TIMEOUT_MS * 3 / 2);
    CHECK_EQ(cj_pledge_keys(&g_pledge, &k), 1);
    CHECK(k[0].key_id == 1 && memcmp(k[0].key, k1, 16) == 0);

    /* the rekey: K1 and K2 as two keys of their own */
    memset(nk, 0, sizeof nk);
    nk[0].key_id = 2;
    nk[0].key_usage = CJ_COJP_KEY_USAGE_K1_MIC32;
    memset(nk[0].key, 0xa1, 16);
    nk[1].key_id = 3;
    nk[1].key_usage = CJ_COJP_KEY_USAGE_K2_ENC_MIC32;
    memset(nk[1].key, 0xb2, 16);
    g_net.pledge_ev = CJ_PLEDGE_EV_NONE;
    CHECK(cj_jrc_rekey(&g_jrc, now, nk, 2) > 0);
    net_run(&now, CJ_TIME_NEVER);
    CHECK_EQ(g_net.pledge_ev, CJ_PLEDGE_EV_UPDATED);
    CHECK_EQ(g_net.jrc_acked, 1);
    CHECK_EQ(g_net.jrc_done, 1);
    CHECK_EQ(g_jrc.stats.updates_sent, 1);
    CHECK_EQ(g_net.to_pledge, 2); /* the Join Response, the update */
    /* a 6LN keeps sending with the set in use and receives with both */
    k = cj_pledge_tx_key(&g_pledge, CJ_PLEDGE_K2);
    CHECK(k != NULL && k->key_id == 1);
    k = cj_pledge_rx_key(&g_pledge, 3);
    CHECK(k != NULL && k->key[0] == 0xb2);
    /* a frame under the new K2 verified: the network switched */
    CHECK_EQ(cj_pledge_rx_used(&g_pledge, now, 3, &o), 1);
    CHECK_EQ(o.event, CJ_PLEDGE_EV_KEYS_SWITCHED);
    k = cj_pledge_tx_key(&g_pledge, CJ_PLEDGE_K2);
    CHECK(k != NULL && k->key_id == 3 && k->key[15] == 0xb2);
    k = cj_pledge_tx_key(&g_pledge, CJ_PLEDGE_K1);
    CHECK(k != NULL && k->key_id == 2 && k->key[15] == 0xa1);
    CHECK(cj_pledge_rx_key(&g_pledge, 1) != NULL);
    /* the old set goes when the guard time is over */
    now += CJ_COJP_REKEYING_GUARD_TIME * 1000u;
    CHECK_EQ(cj_pledge_poll(&g_pledge, now, &o), 0);
    CHECK(cj_pledge_rx_key(&g_pledge, 1) == NULL);
    CHECK(cj_pledge_rx_key(&g_pledge, 3) != NULL);
}

/* Recovery (RFC 9031 section 8.3.3, RFC 8613 Appendix B.2) inside the
 * image: a JRC in recovery mode answers the pledge's first Join Request
 * with a 4.01 naming R2; the pledge verifies it under a context derived
 * for R2 || ID1, draws R3 and sends its next Join Request under R2 || R3
 * through the same JP; the JRC derives the same context, stores it and
 * answers 2.04; the pledge makes the pair durable (R2, R3 and the marker
 * in its counters) and joins. */
static void engines_recovery(void)
{
    static const uint8_t pid[8] = {0x02, 0, 0, 0, 0, 0, 0, 0x05};
    static const uint8_t k1[16] = {0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
                                   0x5a, 0x5a, 0xa5, 0xa5, 0xa5, 0xa5,
                                   0xa5, 0xa5, 0xa5, 0xa5};
    const cj_pledge_key_t *k;
    uint64_t now = 0;

    net_setup();
    engines_setup(pid, k1, 0, true, &g_net.jp, &g_net.jrc);
    CHECK_EQ(cj_pledge_start(&g_pledge, now), CJ_OK);
    net_run(&now, CJ_TIME_NEVER);
    CHECK_EQ(cj_pledge_get_state(&g_pledge), CJ_PLEDGE_JOINED);
    CHECK(g_net.pledge_evs & 1u << CJ_PLEDGE_EV_RECOVERY);
    CHECK_EQ(g_net.pledge_ev, CJ_PLEDGE_EV_JOINED);
    CHECK_EQ(g_jrc.stats.recoveries, 1);
    CHECK_EQ(g_jrc.stats.joins, 1);
    CHECK_EQ(g_net.to_jrc, 2);
    CHECK_EQ(now, 0); /* no timeout: each answer came at once */
    /* the ID Context is now R2 || R3, durable: R2, R3, marker */
    CHECK_EQ(g_pledge.osc.id_context_len, 2 * CJ_PLEDGE_RECOVERY_NONCE_LEN);
    CHECK(g_plat_state.set[CJ_PLEDGE_CTR_R2] &&
          g_plat_state.set[CJ_PLEDGE_CTR_R3] &&
          g_plat_state.set[CJ_PLEDGE_CTR_PAIR]);
    CHECK_EQ(cj_pledge_keys(&g_pledge, &k), 1);
    CHECK(k[0].key_id == 1 && memcmp(k[0].key, k1, 16) == 0);
}

/* The stack of the crypto port over mbedTLS by itself: one AES-CCM
 * decryption that fails its tag (the whole message is still decrypted,
 * then wiped) and one HKDF-SHA-256 (RFC 5869 Appendix A.3: no salt, no
 * info, 22-byte IKM, its first 16 bytes of output checked). */
static void crypto_port_stack(void)
{
    static const uint8_t nonce[CJ_CCM_NONCE_LEN] = {0};
    static uint8_t key[16], buf[40], ikm[22], okm[16];
    size_t depth;

    memset(buf, 0x3c, sizeof buf);
    depth = stack_begin();
    CHECK_EQ(cj_crypto_ccm_open(key, nonce, NULL, 0, buf, sizeof buf, 8),
             CJ_ERR_AUTH);
    stack_end(depth, &g_stk.ccm);
    for (size_t i = 0; i < sizeof buf - 8; i++)
        CHECK_EQ(buf[i], 0);

    memset(ikm, 0x0b, sizeof ikm);
    depth = stack_begin();
    CHECK_EQ(cj_crypto_hkdf_sha256(NULL, 0, ikm, sizeof ikm, NULL, 0, okm,
                                   sizeof okm),
             CJ_OK);
    stack_end(depth, &g_stk.hkdf);
    CHECK_HEX(okm, sizeof okm, "8da4e775a563c18f715f802a063c5a31");
}

/* ---- runner ------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"oscore_c1_derive", oscore_c1_derive},
    {"oscore_c2_derive", oscore_c2_derive},
    {"oscore_c3_derive", oscore_c3_derive},
    {"oscore_c4_request", oscore_c4_request},
    {"oscore_c5_request", oscore_c5_request},
    {"oscore_c6_request", oscore_c6_request},
    {"oscore_c7_response", oscore_c7_response},
    {"oscore_c8_response", oscore_c8_response},
    {"cojp_appendix_a_join_request", cojp_appendix_a_join_request},
    {"cojp_appendix_a_configuration", cojp_appendix_a_configuration},
    {"cbor_appendix_a_integers", cbor_appendix_a_integers},
    {"cbor_appendix_a_containers", cbor_appendix_a_containers},
    {"coap_build_parse_c4", coap_build_parse_c4},
    {"engines_join_request_through_proxy", engines_join_request_through_proxy},
    {"engines_full_join", engines_full_join},
    {"pledge_okm_context", pledge_okm_context},
    {"engines_lost_response_and_rekey", engines_lost_response_and_rekey},
    {"engines_recovery", engines_recovery},
    {"crypto_port_stack", crypto_port_stack},
};

static const struct {
    const char *what;
    const size_t *bytes;
} stack_figures[] = {
    {"cj_pledge_init() (key derivation)", &g_stk.init},
    {"cj_pledge_input(), Join Response", &g_stk.rsp},
    {"cj_pledge_input(), Join Response (engines_full_join)",
     &g_stk.rsp_step},
    {"cj_pledge_input(), parameter update", &g_stk.upd},
    {"cj_pledge_input(), recovery 4.01", &g_stk.rec},
    {"Join Proxy input", &g_stk.jp},
    {"crypto port, AES-CCM decryption", &g_stk.ccm},
    {"crypto port, HKDF-SHA-256", &g_stk.hkdf},
};

int main(void)
{
    unsigned passed = 0, failed = 0;
    size_t deepest = 0, base;
    const char *deepest_name = "";

    cj_fw_puts("firmware: cojp on Cortex-M3 (mps2-an385), stack ");
    cj_fw_put_dec((uint32_t)cj_fw_stack_size());
    cj_fw_puts(" bytes\n");
    /* What main and the runner use before any test starts. */
    base = cj_fw_stack_high_water();

    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        size_t used;

        g_fails = 0;
        g_stack_seen = 0;
        cj_fw_stack_repaint();
        tests[i].fn();
        used = cj_fw_stack_high_water();
        if (g_stack_seen > used)
            used = g_stack_seen;
        if (used > deepest) {
            deepest = used;
            deepest_name = tests[i].name;
        }
        cj_fw_puts(g_fails == 0 ? "ok   " : "FAIL ");
        cj_fw_puts(tests[i].name);
        cj_fw_puts(" (stack ");
        cj_fw_put_dec((uint32_t)used);
        cj_fw_puts(")\n");
        if (g_fails == 0)
            passed++;
        else
            failed++;
    }

    cj_fw_puts("firmware: stack high-water ");
    cj_fw_put_dec((uint32_t)deepest);
    cj_fw_puts(" of ");
    cj_fw_put_dec((uint32_t)cj_fw_stack_size());
    cj_fw_puts(" bytes (deepest: ");
    cj_fw_puts(deepest_name);
    cj_fw_puts("; startup and runner alone ");
    cj_fw_put_dec((uint32_t)base);
    cj_fw_puts("); mbedTLS pool peak ");
    cj_fw_put_dec(cj_port_mbedtls_pool_peak());
    cj_fw_puts(" slots\n");
    /* Each engine call by itself: the pledge's deepest paths, the Join
     * Proxy, and the crypto port for scale. */
    for (size_t i = 0; i < sizeof stack_figures / sizeof stack_figures[0];
         i++) {
        cj_fw_puts("firmware: stack by itself, ");
        cj_fw_puts(stack_figures[i].what);
        cj_fw_puts(": ");
        cj_fw_put_dec((uint32_t)*stack_figures[i].bytes);
        cj_fw_puts(" bytes\n");
    }
    if (deepest >= cj_fw_stack_size()) {
        cj_fw_puts("firmware: stack exhausted\n");
        failed++;
    }
    cj_fw_puts("firmware: ");
    cj_fw_put_dec(passed);
    cj_fw_puts(" passed, ");
    cj_fw_put_dec(failed);
    cj_fw_puts(" failed\n");
    return failed == 0 ? 0 : 1;
}
