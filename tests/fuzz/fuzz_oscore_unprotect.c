/*
 * Fuzz harness for OSCORE unprotect (RFC 8613 sections 8.2 and 8.4).
 *
 * The input is one datagram.  It is copied into a local buffer (unprotect
 * decrypts in place) and run through
 *   - cj_oscore_unprotect_request with the server context of Appendix
 *     C.1.2, and
 *   - cj_oscore_unprotect_response with the client context of Appendix
 *     C.1.1 and the binding of the C.4 request (kid h'', PIV 0x14),
 * both from a fresh copy of the derived contexts.  Checked: a failure
 * leaves the context byte-for-byte unchanged; a success yields a message
 * that parses as CoAP, fits the output buffer, and moves the replay
 * window so that the same datagram is then refused as a replay.
 *
 * The same datagram also goes to the core step both of those run on,
 * cj_oscore_open() (the pledge engine calls it directly), with the
 * datagram's OSCORE option and payload.  Checked: it never changes the
 * context (the caller enters the Partial IV); a bad tag leaves the
 * decrypted region wiped; a success returns the payload less the tag
 * and binds the message's own Partial IV; and whenever unprotect
 * accepted the datagram, open accepts it too with the same inner code.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cojp/coap.h"
#include "cojp/oscore.h"

#define FUZZ_ASSERT(c)                                                     \
    do {                                                                   \
        if (!(c))                                                          \
            __builtin_trap();                                              \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSG 1024

static cj_oscore_ctx_t g_server, g_client;
static bool g_ready;

/* RFC 8613 Appendix C.1 parameters. */
static void setup(void)
{
    static const uint8_t ms[16] = {1, 2, 3, 4, 5, 6, 7, 8,
                                   9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t salt[8] = {0x9e, 0x7c, 0xa9, 0x22,
                                    0x23, 0x78, 0x63, 0x40};
    static const uint8_t id01[1] = {0x01};
    cj_oscore_params_t p;

    memset(&p, 0, sizeof p);
    p.master_secret = ms;
    p.master_secret_len = sizeof ms;
    p.master_salt = salt;
    p.master_salt_len = sizeof salt;
    p.sender_id = id01;
    p.sender_id_len = 1;
    FUZZ_ASSERT(cj_oscore_ctx_derive(&g_server, &p) == CJ_OK);
    p.sender_id = NULL;
    p.sender_id_len = 0;
    p.recipient_id = id01;
    p.recipient_id_len = 1;
    FUZZ_ASSERT(cj_oscore_ctx_derive(&g_client, &p) == CJ_OK);
    g_ready = true;
}

static void check_result(int rc, const cj_oscore_ctx_t *before,
                         const cj_oscore_ctx_t *after, const uint8_t *out,
                         size_t cap)
{
    cj_coap_msg_t m;

    if (rc < 0) {
        FUZZ_ASSERT(memcmp(before, after, sizeof *before) == 0);
        return;
    }
    FUZZ_ASSERT((size_t)rc <= cap);
    FUZZ_ASSERT(cj_coap_parse(&m, out, (size_t)rc) == CJ_OK);
}

static int has_oscore(const uint8_t *out, size_t len)
{
    cj_coap_msg_t m;
    cj_coap_opt_t o;
    if (cj_coap_parse(&m, out, len) != CJ_OK)
        return -1;
    return cj_coap_opt_find(&m, CJ_COAP_OPT_OSCORE, &o);
}

/* cj_oscore_open() on the outer OSCORE option and payload of data, with
 * a fresh copy of base; xrc and xout are what unprotect made of data with
 * the same context and binding. */
static void check_open(const uint8_t *data, size_t size,
                       const cj_oscore_ctx_t *base, const cj_oscore_req_t *req,
                       int xrc, const uint8_t *xout)
{
    static uint8_t buf[MAX_MSG];
    cj_oscore_ctx_t ctx;
    cj_oscore_option_t ov;
    cj_oscore_req_t own;
    cj_coap_msg_t m;
    cj_coap_opt_t o;
    uint8_t *ct;
    size_t len;
    int rc;

    FUZZ_ASSERT(cj_coap_parse(&m, data, size) == CJ_OK);
    if (cj_coap_opt_find(&m, CJ_COAP_OPT_OSCORE, &o) != 1 ||
        cj_oscore_option_decode(o.val, o.len, &ov) != CJ_OK) {
        FUZZ_ASSERT(xrc < 0);
        return;
    }
    memcpy(buf, data, size);
    len = m.payload_len;
    ct = buf + (len ? (size_t)(m.payload - data) : size);
    memcpy(&ctx, base, sizeof ctx);
    rc = cj_oscore_open(&ctx, &ov, req, ct, len, &own);
    FUZZ_ASSERT(memcmp(&ctx, base, sizeof ctx) == 0);
    if (rc == CJ_ERR_AUTH)
        for (size_t i = 0; i < len - CJ_OSCORE_TAG_LEN; i++)
            FUZZ_ASSERT(ct[i] == 0);
    if (xrc >= 0)
        FUZZ_ASSERT(rc >= 0 && ct[0] == xout[1]);
    if (rc < 0)
        return;
    FUZZ_ASSERT((size_t)rc == len - CJ_OSCORE_TAG_LEN);
    FUZZ_ASSERT(own.piv_len == ov.piv_len);
    if (own.piv_len)
        FUZZ_ASSERT(memcmp(own.piv, ov.piv, ov.piv_len) == 0 &&
                    cj_oscore_replay_check(
                        &ctx.replay, cj_oscore_piv_value(own.piv,
                                                         own.piv_len)) ==
                    CJ_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[MAX_MSG], out[MAX_MSG];
    cj_oscore_ctx_t ctx;
    cj_oscore_req_t req;
    cj_coap_msg_t m;
    int rc;

    if (!g_ready)
        setup();
    if (size > MAX_MSG)
        return 0;
    /* Only well-formed CoAP gets this far in a real stack. */
    if (cj_coap_parse(&m, data, size) != CJ_OK)
        return 0;

    /* As a request to the C.1.2 server. */
    memcpy(&ctx, &g_server, sizeof ctx);
    memcpy(buf, data, size);
    rc = cj_oscore_unprotect_request(&ctx, buf, size, out, sizeof out, &req);
    check_result(rc, &g_server, &ctx, out, sizeof out);
    check_open(data, size, &g_server, NULL, rc, out);
    if (rc >= 0) {
        FUZZ_ASSERT(has_oscore(out, (size_t)rc) == 0);
        FUZZ_ASSERT(ctx.replay.valid);
        memcpy(buf, data, size);
        FUZZ_ASSERT(cj_oscore_unprotect_request(&ctx, buf, size, out,
                                                sizeof out, NULL) ==
                    CJ_ERR_REPLAY);
    }

    /* As a response to the C.4 request, at the C.1.1 client. */
    memset(&req, 0, sizeof req);
    req.piv[0] = 0x14;
    req.piv_len = 1;
    memcpy(&ctx, &g_client, sizeof ctx);
    memcpy(buf, data, size);
    rc = cj_oscore_unprotect_response(&ctx, &req, buf, size, out, sizeof out);
    check_result(rc, &g_client, &ctx, out, sizeof out);
    check_open(data, size, &g_client, &req, rc, out);
    if (rc >= 0)
        FUZZ_ASSERT(has_oscore(out, (size_t)rc) == 0);

    /* A too-small output buffer must fail cleanly, never overrun. */
    memcpy(&ctx, &g_server, sizeof ctx);
    memcpy(buf, data, size);
    rc = cj_oscore_unprotect_request(&ctx, buf, size, out, size / 2, NULL);
    check_result(rc, &g_server, &ctx, out, size / 2);
    return 0;
}
