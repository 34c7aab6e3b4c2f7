/*
 * Fuzz the pledge engine's input path (RFC 9031 sections 8.1-8.3) in the
 * JOINING and JOINED states.  The first input byte picks the mode:
 *   0  the rest is a raw datagram for a pledge with a Join Request out;
 *   1  the rest is a raw datagram for a joined pledge;
 *   2  the rest is the payload of a Join Response that a JRC protects
 *      correctly (exercises everything behind OSCORE);
 *   3  the rest is the payload of a correctly protected parameter update,
 *      fed twice (the second time is a duplicate) to a joined pledge;
 *   with bit 2 set (6 and 7): the rest is the whole plaintext (RFC 8613
 *      section 5.3: inner code, options, payload) of such a response or
 *      update, sealed by the JRC with the OSCORE core, so that the
 *      pledge's own reading of the inner message meets arbitrary bytes.
 * Each run then polls the engine through its timers.  The engine must
 * never write past its output buffer, and a dropped message must leave
 * no trace.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cojp/coap.h"
#include "cojp/oscore.h"
#include "cojp/pledge.h"
#include "../../src/port/platform_mem.h"

#define BUF 600

static const uint8_t pid[8] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};
static const uint8_t psk[16] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
                                0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf};
/* RFC 9031 Appendix A Configuration */
static const uint8_t appx_a[] = {
    0xa2, 0x02, 0x82, 0x01, 0x50, 0xe6, 0xbf, 0x42, 0x87, 0xc2, 0xd7,
    0x61, 0x8d, 0x6a, 0x96, 0x87, 0x44, 0x5f, 0xfd, 0x33, 0xe6, 0x03,
    0x81, 0x42, 0xaf, 0x93};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ready;
static cj_mem_platform_t mem_joining, mem_joined, mem;
static cj_pledge_t joining, joined, p;
static cj_oscore_ctx_t jrc0, jrc1, jrc;
static cj_oscore_req_t bind;
static uint8_t req[BUF];
static size_t req_len;
static uint8_t obuf[BUF + 16];

static void fail(void)
{
    abort();
}

/* The JRC's answer to the outstanding Join Request. */
static size_t jrc_answer(cj_oscore_ctx_t *c, uint8_t code, const uint8_t *pl,
                         size_t pllen, uint8_t *out)
{
    cj_coap_msg_t m;
    cj_coap_builder_t b;
    uint8_t msg[BUF];
    int n;

    if (cj_coap_parse(&m, req, req_len) != CJ_OK)
        fail();
    cj_coap_build_init(&b, msg, sizeof msg, CJ_COAP_ACK, code, m.mid, m.token,
                       m.token_len);
    cj_coap_build_payload(&b, pl, pllen);
    n = cj_coap_build_finish(&b);
    if (n < 0)
        return 0;
    n = cj_oscore_protect_response(c, &bind, true, msg, (size_t)n, out, BUF);
    return n > 0 ? (size_t)n : 0;
}

/* A message of type, code and token tok[0..tkl) whose outer options are
 * Uri-Host (requests only) and OSCORE, with the plaintext pt[0..n)
 * sealed by the JRC as a request (r NULL) or as a response to *r with
 * its own Partial IV.  Returns the length, 0 when it does not fit. */
static size_t jrc_seal(cj_oscore_ctx_t *c, const cj_oscore_req_t *r,
                       uint8_t type, uint8_t code, uint16_t mid,
                       const uint8_t *tok, size_t tkl, const uint8_t *pt,
                       size_t n, uint8_t *out)
{
    cj_coap_builder_t b;
    cj_oscore_req_t own;
    uint8_t opt[CJ_OSCORE_OPT_MAX];
    int ol = cj_oscore_seal_begin(c, r, true, &own, opt), len;

    if (ol < 0 || n == 0)
        return 0;
    cj_coap_build_init(&b, out, BUF - CJ_OSCORE_TAG_LEN, type, code, mid,
                       tok, tkl);
    if (r == NULL)
        cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "6tisch.arpa");
    cj_coap_build_opt(&b, CJ_COAP_OPT_OSCORE, opt, (size_t)ol);
    cj_coap_build_payload(&b, pt, n);
    len = cj_coap_build_finish(&b);
    if (len < 0 ||
        cj_oscore_seal(c, &own, r, out + len - n, n) != (int)n + CJ_OSCORE_TAG_LEN)
        return 0;
    return (size_t)len + CJ_OSCORE_TAG_LEN;
}

static void setup(void)
{
    static const uint8_t jrc_id[3] = {'J', 'R', 'C'};
    static const uint8_t net[2] = {0xca, 0xfe};
    cj_pledge_cfg_t cfg;
    cj_oscore_params_t pr;
    cj_out_t out = {obuf, BUF, 0, {0, {0}}, 0};
    cj_addr_t jp = {2, {0xfe, 0x01}};
    uint8_t copy[BUF], plain[BUF], resp[BUF];
    size_t n;

    cj_mem_platform_init(&mem_joining);
    memset(&cfg, 0, sizeof cfg);
    cfg.pledge_id = pid;
    cfg.pledge_id_len = sizeof pid;
    memcpy(cfg.psk, psk, sizeof psk);
    if (cj_pledge_init(&joining, &cfg, &mem_joining.port) != CJ_OK ||
        cj_pledge_add_jp(&joining, &jp, net, 2) != CJ_OK ||
        cj_pledge_start(&joining, 0) != CJ_OK ||
        cj_pledge_poll(&joining, 0, &out) != 1 || out.len == 0)
        fail();
    memcpy(req, obuf, out.len);
    req_len = out.len;

    memset(&pr, 0, sizeof pr);
    pr.master_secret = psk;
    pr.master_secret_len = sizeof psk;
    pr.sender_id = jrc_id;
    pr.sender_id_len = 3;
    pr.id_context = pid;
    pr.id_context_len = sizeof pid;
    pr.has_id_context = true;
    if (cj_oscore_ctx_derive(&jrc0, &pr) != CJ_OK)
        fail();
    memcpy(copy, req, req_len);
    if (cj_oscore_unprotect_request(&jrc0, copy, req_len, plain, sizeof plain,
                                    &bind) < 0)
        fail();

    /* a joined pledge: the same one after the Appendix A response */
    joined = joining;
    mem_joined = mem_joining;
    mem_joined.port.ctx = &mem_joined;
    joined.platform = &mem_joined.port;
    joined.osc.platform = &mem_joined.port;
    jrc1 = jrc0;
    n = jrc_answer(&jrc1, CJ_COAP_CHANGED, appx_a, sizeof appx_a, resp);
    if (n == 0 || cj_pledge_input(&joined, 1, &jp, resp, n, &out) != 1 ||
        out.event != CJ_PLEDGE_EV_JOINED)
        fail();
    ready = true;
}

/* Fresh copies; the platform pointer must follow the copy. */
static void take(const cj_pledge_t *src, const cj_mem_platform_t *m,
                 const cj_oscore_ctx_t *j)
{
    p = *src;
    mem = *m;
    mem.port.ctx = &mem;
    p.platform = &mem.port;
    p.osc.platform = &mem.port;
    jrc = *j;
}

static void run(uint8_t *msg, size_t len, uint64_t now)
{
    static cj_pledge_t before;
    cj_out_t out = {obuf, BUF, 0, {0, {0}}, 0};
    cj_addr_t from = {2, {0xfe, 0x01}};
    int r;

    memcpy(&before, &p, sizeof before);
    memset(obuf + BUF, 0xa5, 16);
    r = cj_pledge_input(&p, now, &from, msg, len, &out);
    if (out.len > BUF || (r == 0 && (out.len || out.event)))
        fail();
    if (r == 0 && memcmp(&before, &p, sizeof before) != 0 &&
        !(p.state == CJ_PLEDGE_JOINING && p.acked))
        fail(); /* only an empty ACK may change state silently */
    for (int i = 0; i < 16; i++)
        if (obuf[BUF + i] != 0xa5)
            fail();
}

static void poll_all(uint64_t now)
{
    cj_out_t out = {obuf, BUF, 0, {0, {0}}, 0};
    for (int i = 0; i < 24; i++) {
        uint64_t t = cj_pledge_next_timer(&p);
        if (t == CJ_TIME_NEVER)
            break;
        if (t > now)
            now = t;
        (void)cj_pledge_poll(&p, now, &out);
        if (out.len > BUF)
            fail();
        (void)cj_pledge_rx_used(&p, now, (uint8_t)i, &out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t msg[BUF];
    uint8_t mode;

    if (!ready)
        setup();
    if (size < 1 || size > 400)
        return 0;
    mode = data[0] & 7;
    data++;
    size--;

    switch (mode) {
    case 6: {
        cj_coap_msg_t m;
        size_t n;
        take(&joining, &mem_joining, &jrc0);
        if (cj_coap_parse(&m, req, req_len) != CJ_OK)
            fail();
        n = jrc_seal(&jrc, &bind, CJ_COAP_ACK, CJ_COAP_CHANGED, m.mid,
                     m.token, m.token_len, data, size, msg);
        if (n)
            run(msg, n, 5);
        break;
    }
    case 7: {
        static const uint8_t tok[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        uint8_t upd[BUF];
        size_t n;
        take(&joined, &mem_joined, &jrc1);
        n = jrc_seal(&jrc, NULL, CJ_COAP_CON, CJ_COAP_POST, 0x1234, tok,
                     sizeof tok, data, size, upd);
        if (n == 0)
            break;
        memcpy(msg, upd, n);
        run(msg, n, 5);
        memcpy(msg, upd, n);
        run(msg, n, 6);
        break;
    }
    case 0:
    case 1:
    case 4:
    case 5:
        if (mode % 4 == 0)
            take(&joining, &mem_joining, &jrc0);
        else
            take(&joined, &mem_joined, &jrc1);
        memcpy(msg, data, size);
        run(msg, size, 5);
        break;
    case 2: {
        size_t n;
        take(&joining, &mem_joining, &jrc0);
        n = jrc_answer(&jrc, CJ_COAP_CHANGED, data, size, msg);
        if (n)
            run(msg, n, 5);
        break;
    }
    default: {
        cj_coap_builder_t b;
        cj_oscore_req_t ub;
        uint8_t plain[BUF], upd[BUF];
        static const uint8_t tok[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        int n;
        take(&joined, &mem_joined, &jrc1);
        cj_coap_build_init(&b, plain, sizeof plain, CJ_COAP_CON, CJ_COAP_POST,
                           0x1234, tok, sizeof tok);
        cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "6tisch.arpa");
        cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "j");
        cj_coap_build_payload(&b, data, size);
        n = cj_coap_build_finish(&b);
        if (n < 0)
            break;
        n = cj_oscore_protect_request(&jrc, plain, (size_t)n, upd, sizeof upd,
                                      &ub);
        if (n < 0)
            break;
        memcpy(msg, upd, (size_t)n);
        run(msg, (size_t)n, 5);
        memcpy(msg, upd, (size_t)n);
        run(msg, (size_t)n, 6);
        break;
    }
    }
    poll_all(10);
    return 0;
}
