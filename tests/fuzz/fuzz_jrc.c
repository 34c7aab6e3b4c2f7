/*
 * Fuzz harness for the JRC engine's input path (cojp/jrc.h).
 *
 * The first byte picks how the rest reaches cj_jrc_input():
 *   0  raw datagram from a JP;
 *   1  Join_Request payload, protected by a provisioned pledge (exercises
 *      the CoJP decoder, diagnostics and admission);
 *   2  inner code byte, then payload, protected (method/path handling);
 *   3  XOR mask over a valid protected Join Request (tampering, replay);
 *   4  answer to a parameter update: a rekey campaign is started, its
 *      first request polled out, and the rest (MID patched to match)
 *      is fed back as the node's datagram, then time runs out;
 *   5  like 1 with the JRC in recovery mode.
 * Properties: no crash or sanitizer report, out.len within out.cap,
 * every datagram sent parses as CoAP, and every protected Join Request
 * of modest size (modes 1 and 5) is answered.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cojp/coap.h"
#include "cojp/jrc.h"
#include "cojp/jrc_memstore.h"
#include "cojp/oscore.h"

#define REQUIRE(c)                                                         \
    do {                                                                   \
        if (!(c))                                                          \
            abort();                                                       \
    } while (0)

static cj_jrc_mementry_t entries[4];
static cj_jrc_memstore_t ms;
static cj_jrc_slot_t slots[2];
static cj_jrc_t jrc;
static uint8_t outbuf[1024];
static uint8_t msg[2048];
static const uint8_t pid[8] = {0x00, 0x12, 0x4b, 0, 0, 0, 0, 1};
static const uint8_t psk[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t netid[2] = {0xca, 0xfe};
static const cj_addr_t jp = {1, {7}};

static void pledge_ctx(cj_oscore_ctx_t *c)
{
    static const uint8_t jrcid[3] = {0x4a, 0x52, 0x43};
    cj_oscore_params_t p;
    memset(&p, 0, sizeof p);
    p.master_secret = psk;
    p.master_secret_len = 16;
    p.recipient_id = jrcid;
    p.recipient_id_len = 3;
    p.id_context = pid;
    p.id_context_len = 8;
    p.has_id_context = true;
    REQUIRE(cj_oscore_ctx_derive(c, &p) == CJ_OK);
    c->send_kid_context = true;
}

/* A protected Join Request as the JP forwards it (NON, no Proxy-Scheme). */
static size_t protected_request(cj_oscore_ctx_t *c, uint8_t code,
                                const uint8_t *pl, size_t n)
{
    static uint8_t coap[1200];
    cj_coap_builder_t b;
    static const uint8_t tok[4] = {9, 9, 9, 9};
    int len;

    cj_coap_build_init(&b, coap, sizeof coap, CJ_COAP_NON, code, 77, tok, 4);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "6tisch.arpa");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "j");
    cj_coap_build_payload(&b, pl, n);
    len = cj_coap_build_finish(&b);
    if (len < 0)
        return 0;
    len = cj_oscore_protect_request(c, coap, (size_t)len, msg, sizeof msg, NULL);
    return len < 0 ? 0 : (size_t)len;
}

static void setup(bool recovery)
{
    cj_jrc_cfg_t cfg;

    cj_jrc_memstore_init(&ms, entries, 4);
    REQUIRE(cj_jrc_memstore_add(&ms, pid, 8, psk,
                                CJ_JRC_ALLOW_NODE | CJ_JRC_ALLOW_6LBR) == CJ_OK);
    memset(&cfg, 0, sizeof cfg);
    cfg.network_id = netid;
    cfg.network_id_len = 2;
    cfg.keys[0].key_id = 1;
    cfg.key_count = 1;
    cfg.join_rate = UINT32_MAX;
    cfg.lease_hours = 1;
    cfg.recovery = recovery;
    cfg.timing.ack_timeout_ms = 100;
    cfg.timing.ack_random_factor_pct = 150;
    cfg.timing.max_retransmit = 1;
    cfg.slots = slots;
    cfg.slot_count = 2;
    REQUIRE(cj_jrc_init(&jrc, &cfg, &ms.store, NULL) == CJ_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cj_oscore_ctx_t c;
    cj_out_t out;
    size_t n = 0;
    uint8_t mode;
    int r;

    if (size < 1 || size > 1024)
        return 0;
    mode = data[0] % 6;
    data++;
    size--;
    setup(mode == 5);
    out.buf = outbuf;
    out.cap = sizeof outbuf;

    switch (mode) {
    case 0:
        memcpy(msg, data, size);
        r = cj_jrc_input(&jrc, 1, &jp, msg, size, &out);
        REQUIRE(out.len <= out.cap);
        if (r == 1 && out.len > 0) {
            cj_coap_msg_t m;
            REQUIRE(cj_coap_parse(&m, out.buf, out.len) == CJ_OK);
        }
        break;
    case 1:
    case 5:
        pledge_ctx(&c);
        n = protected_request(&c, CJ_COAP_POST, data, size);
        if (n) {
            r = cj_jrc_input(&jrc, 1, &jp, msg, n, &out);
            REQUIRE(out.len <= out.cap);
            /* requests beyond CJ_JRC_SCRATCH are dropped by design */
            REQUIRE(size > 200 || (r == 1 && out.len > 0));
        }
        break;
    case 2:
        if (size < 1 || data[0] == 0 || (data[0] >> 5) != 0)
            break;
        pledge_ctx(&c);
        n = protected_request(&c, data[0], data + 1, size - 1);
        if (n) {
            r = cj_jrc_input(&jrc, 1, &jp, msg, n, &out);
            REQUIRE(out.len <= out.cap);
        }
        break;
    case 3: {
        static const uint8_t jr[5] = {0xa1, 0x05, 0x42, 0xca, 0xfe};
        pledge_ctx(&c);
        n = protected_request(&c, CJ_COAP_POST, jr, sizeof jr);
        for (size_t i = 0; i < size && i < n; i++)
            msg[i] ^= data[i];
        r = cj_jrc_input(&jrc, 1, &jp, msg, n, &out);
        REQUIRE(out.len <= out.cap);
        break;
    }
    case 4: {
        static const uint8_t jr[5] = {0xa1, 0x05, 0x42, 0xca, 0xfe};
        cj_jrc_key_t k;
        cj_coap_msg_t m;
        uint64_t now = 10;
        pledge_ctx(&c);
        n = protected_request(&c, CJ_COAP_POST, jr, sizeof jr);
        REQUIRE(cj_jrc_input(&jrc, 1, &jp, msg, n, &out) == 1);
        memset(&k, 0, sizeof k);
        k.key_id = 2;
        REQUIRE(cj_jrc_rekey(&jrc, now, &k, 1) > 0);
        REQUIRE(cj_jrc_poll(&jrc, now, &out) == 1 && out.len > 0);
        REQUIRE(cj_coap_parse(&m, out.buf, out.len) == CJ_OK);
        memcpy(msg, data, size);
        if (size >= 4) {
            msg[2] = (uint8_t)(m.mid >> 8);
            msg[3] = (uint8_t)m.mid;
        }
        cj_addr_t from = out.to;
        r = cj_jrc_input(&jrc, now, &from, msg, size, &out);
        REQUIRE(out.len <= out.cap);
        for (int guard = 0; guard < 50; guard++) {
            uint64_t t = cj_jrc_next_timer(&jrc);
            if (t == CJ_TIME_NEVER)
                break;
            now = t > now ? t : now;
            r = cj_jrc_poll(&jrc, now, &out);
            REQUIRE(out.len <= out.cap);
            if (r == 1 && out.event == CJ_JRC_EV_CAMPAIGN_DONE)
                break;
        }
        break;
    }
    default:
        break;
    }
    return 0;
}
