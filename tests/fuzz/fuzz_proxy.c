/*
 * Fuzz harness for the Join Proxy engine, both input paths.
 *
 * Input: byte 0 chooses the path and the setting, the rest is a datagram.
 *
 *   bit 0 = 0  pledge path.  bits 1-2: join rate (unlimited, 100 B/s,
 *              0, 1 B/s); bit 3: the CoJP pledge id 0200000000000001 is
 *              blacklisted; bits 4-7: source address length (0..24).
 *   bit 0 = 1  JRC path.  A fixed Join Request is forwarded first; then
 *              the datagram arrives from the JRC side.  bit 1: its token
 *              is replaced by the genuine state token (when it parses as
 *              CoAP), so the checks after the tag are reached; bit 2: it
 *              comes from another address; bits 3-7: arrival time,
 *              10 s steps after the request (the lifetime is 40 s).
 *
 * Properties checked on every input:
 *   - nothing is read or written outside the buffers (ASan);
 *   - a dropped datagram leaves the engine as it was, statistics aside,
 *     and counts exactly one drop;
 *   - a forwarded request parses, is NON, carries the state token of the
 *     documented length, no Proxy-Scheme, the same payload, goes to the
 *     JRC; echoing its token in a response gets the pledge's token (and
 *     MID for CON) back to the pledge's address, exactly once;
 *   - a relayed response parses, goes to the pledge and carries its
 *     token; the same datagram again is dropped;
 *   - the ack slot holds something only for a CON response whose token
 *     opened: the Empty ACK of its message ID, to the JRC, when it was
 *     relayed or its token was spent, the RST when the token was stale;
 *     a relayed CON is always acknowledged, a NON never.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cojp/coap.h"
#include "cojp/proxy.h"

#define REQUIRE(c)                                                         \
    do {                                                                   \
        if (!(c))                                                          \
            abort();                                                       \
    } while (0)

static const uint8_t KEY[16] = {1, 2, 3, 4, 5, 6, 7, 8,
                                9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t PLEDGE_ID[8] = {2, 0, 0, 0, 0, 0, 0, 1};

/* Agreement 1 Join Request from pledge [fe80::1]:5683, token a1b2c3d4. */
static const uint8_t FIXED_REQ[] = {
    0x44, 0x02, 0x12, 0x34, 0xa1, 0xb2, 0xc3, 0xd4,
    0x3b, '6', 't', 'i', 's', 'c', 'h', '.', 'a', 'r', 'p', 'a',
    0x6b, 0x19, 0x05, 0x08, 2, 0, 0, 0, 0, 0, 0, 1,
    0xd4, 0x11, 'c', 'o', 'a', 'p',
    0xff, 0xc0, 0xc1, 0xc2, 0xc3};

static cj_proxy_t jp, snap;
static uint8_t in[1 << 12], out[1 << 12], out2[1 << 12], resp[1 << 12];
static uint8_t ackbuf[CJ_PROXY_ACK_LEN];

static cj_addr_t addr(uint8_t first, uint8_t len)
{
    cj_addr_t a;
    memset(&a, 0, sizeof a);
    a.len = len;
    for (uint8_t i = 0; i < len; i++)
        a.b[i] = (uint8_t)(first + i);
    return a;
}

static unsigned long drops(const cj_proxy_stats_t *s)
{
    return s->dropped_malformed + s->dropped_blacklist + s->dropped_rate +
           s->dropped_source + s->dropped_token + s->dropped_stale +
           s->dropped_replay;
}

static void setup(uint32_t rate)
{
    cj_proxy_cfg_t cfg;

    memset(&cfg, 0, sizeof cfg);
    cfg.jrc = addr(0xfd, 18);
    memcpy(cfg.token_key, KEY, sizeof KEY);
    cfg.join_rate = rate;
    REQUIRE(cj_proxy_init(&jp, &cfg, NULL) == CJ_OK);
    /* Deterministic runs: fix what init draws at random. */
    memset(jp.nonce_prefix, 0x5c, sizeof jp.nonce_prefix);
    jp.next_mid = 0x0100;
}

/* A dropped datagram changed nothing but one drop counter. */
static void check_dropped(const cj_out_t *o)
{
    cj_proxy_t x = jp, y = snap;

    REQUIRE(o->len == 0);
    REQUIRE(drops(&jp.stats) == drops(&snap.stats) + 1);
    memset(&x.stats, 0, sizeof x.stats);
    memset(&y.stats, 0, sizeof y.stats);
    REQUIRE(memcmp(&x, &y, sizeof x) == 0);
}

static cj_out_t slot(uint8_t *buf, size_t cap)
{
    cj_out_t o;
    memset(&o, 0, sizeof o);
    o.buf = buf;
    o.cap = cap;
    return o;
}

/* The ack slot after a datagram msg from `from` (snap: the engine before
 * the call, rc: what the call returned); see the properties above. */
static void check_ack(const cj_out_t *a, const cj_addr_t *from,
                      const uint8_t *msg, size_t len, int rc)
{
    unsigned long acks = jp.stats.acks - snap.stats.acks;
    unsigned long resets = jp.stats.resets - snap.stats.resets;
    cj_coap_msg_t m;

    if (a->len == 0) {
        REQUIRE(acks + resets == 0);
        if (rc == 1)
            REQUIRE(cj_coap_parse(&m, msg, len) == CJ_OK &&
                    m.type == CJ_COAP_NON);
        return;
    }
    REQUIRE(a->len == CJ_PROXY_ACK_LEN && acks + resets == 1);
    REQUIRE(cj_addr_equal(&a->to, from) && cj_addr_equal(from, &jp.cfg.jrc));
    REQUIRE(cj_coap_parse(&m, msg, len) == CJ_OK && m.type == CJ_COAP_CON);
    REQUIRE(a->buf[1] == 0 && a->buf[2] == (uint8_t)(m.mid >> 8) &&
            a->buf[3] == (uint8_t)m.mid);
    if (a->buf[0] == 0x60)
        REQUIRE(acks == 1 &&
                (rc == 1 ||
                 jp.stats.dropped_replay == snap.stats.dropped_replay + 1));
    else
        REQUIRE(a->buf[0] == 0x70 && resets == 1 && rc == 0 &&
                jp.stats.dropped_stale == snap.stats.dropped_stale + 1);
}

static void pledge_path(uint8_t sel, const uint8_t *msg, size_t len)
{
    static const uint32_t rates[4] = {CJ_PROXY_RATE_UNLIMITED, 100, 0, 1};
    cj_addr_t from = addr(0xfe, (uint8_t)((sel >> 4) * 8 / 5));
    cj_addr_t jrc;
    cj_coap_msg_t m, f, r;
    cj_coap_opt_t opt;
    cj_coap_builder_t b;
    cj_out_t o = slot(out, sizeof out), o2, a;
    int rc, n;

    setup(rates[(sel >> 1) & 3]);
    if (sel & 8) {
        const uint8_t *ids[1] = {PLEDGE_ID};
        size_t lens[1] = {8};
        REQUIRE(cj_proxy_set_blacklist(&jp, ids, lens, 1) == CJ_OK);
    }
    snap = jp;
    rc = cj_proxy_input_pledge(&jp, 5000, &from, msg, len, &o);
    if (rc == 0) {
        check_dropped(&o);
        return;
    }
    if (rc == 2) {
        /* a version 1 CON not forwarded for its form: dropped as
         * malformed and rejected with the RST of its message ID, to the
         * pledge, nothing else changed */
        cj_proxy_t x = jp, y = snap;
        REQUIRE(len >= 4 && (msg[0] & 0xf0) == 0x40);
        REQUIRE(o.len == CJ_PROXY_ACK_LEN && o.buf[0] == 0x70 &&
                o.buf[1] == 0 && memcmp(o.buf + 2, msg + 2, 2) == 0 &&
                cj_addr_equal(&o.to, &from));
        REQUIRE(jp.stats.dropped_malformed == snap.stats.dropped_malformed + 1 &&
                jp.stats.resets == snap.stats.resets + 1 &&
                drops(&jp.stats) == drops(&snap.stats) + 1);
        memset(&x.stats, 0, sizeof x.stats);
        memset(&y.stats, 0, sizeof y.stats);
        REQUIRE(memcmp(&x, &y, sizeof x) == 0);
        return;
    }
    REQUIRE(rc == 1 && jp.stats.forwarded == 1);
    REQUIRE(o.len <= CJ_PROXY_MAX_MSG);
    REQUIRE(cj_coap_parse(&m, msg, len) == CJ_OK);
    REQUIRE(cj_coap_parse(&f, o.buf, o.len) == CJ_OK);
    jrc = jp.cfg.jrc;
    REQUIRE(cj_addr_equal(&o.to, &jrc));
    REQUIRE(f.type == CJ_COAP_NON && f.code == m.code && f.mid == 0x0100);
    REQUIRE(f.token_len == CJ_PROXY_STATE_OVERHEAD + m.token_len + from.len);
    REQUIRE(cj_coap_opt_find(&f, CJ_COAP_OPT_PROXY_SCHEME, &opt) == 0);
    REQUIRE(cj_coap_opt_find(&f, CJ_COAP_OPT_URI_HOST, &opt) == 1);
    REQUIRE(cj_coap_opt_find(&f, CJ_COAP_OPT_OSCORE, &opt) == 1);
    REQUIRE(f.opt_count + 1 == m.opt_count);
    REQUIRE(f.payload_len == m.payload_len &&
            (m.payload_len == 0 ||
             memcmp(f.payload, m.payload, m.payload_len) == 0));

    /* The JRC answers NON 2.05 echoing the token, with the pledge's own
     * options and payload as stand-in content. */
    cj_coap_build_init(&b, resp, sizeof resp, CJ_COAP_NON, CJ_COAP_CONTENT,
                       0x7777, f.token, f.token_len);
    n = cj_coap_build_finish(&b);
    REQUIRE(n > 0);
    {
        size_t rest_len = len - (size_t)(m.opts - msg);
        memcpy(resp + n, m.opts, rest_len);
        n += (int)rest_len;
    }
    o2 = slot(out2, sizeof out2);
    a = slot(ackbuf, sizeof ackbuf);
    snap = jp;
    REQUIRE(cj_proxy_input_jrc(&jp, 6000, &jrc, resp, (size_t)n, &o2, &a) == 1);
    REQUIRE(a.len == 0);
    REQUIRE(cj_addr_equal(&o2.to, &from));
    REQUIRE(cj_coap_parse(&r, o2.buf, o2.len) == CJ_OK);
    REQUIRE(r.token_len == m.token_len &&
            (m.token_len == 0 || memcmp(r.token, m.token, m.token_len) == 0));
    REQUIRE(r.code == CJ_COAP_CONTENT);
    if (m.type == CJ_COAP_CON)
        REQUIRE(r.type == CJ_COAP_ACK && r.mid == m.mid);
    else
        REQUIRE(r.type == CJ_COAP_NON && r.mid == 0x0101);
    /* Options and payload verbatim. */
    REQUIRE(o2.len - (size_t)(r.opts - o2.buf) ==
            len - (size_t)(m.opts - msg));
    REQUIRE(memcmp(r.opts, m.opts, len - (size_t)(m.opts - msg)) == 0);
    /* Exactly once. */
    snap = jp;
    o2 = slot(out2, sizeof out2);
    REQUIRE(cj_proxy_input_jrc(&jp, 6000, &jrc, resp, (size_t)n, &o2, &a) == 0);
    REQUIRE(jp.stats.dropped_replay == snap.stats.dropped_replay + 1);
    REQUIRE(a.len == 0);
    check_dropped(&o2);
}

static void jrc_path(uint8_t sel, const uint8_t *msg, size_t len)
{
    cj_addr_t pledge = addr(0xfe, 18), from;
    cj_coap_msg_t f, m, r;
    cj_out_t o = slot(out, sizeof out), a;
    uint64_t now = 5000 + (uint64_t)(sel >> 3) * 10000;
    int rc;

    setup(CJ_PROXY_RATE_UNLIMITED);
    REQUIRE(cj_proxy_input_pledge(&jp, 5000, &pledge, FIXED_REQ,
                                  sizeof FIXED_REQ, &o) == 1);
    REQUIRE(cj_coap_parse(&f, o.buf, o.len) == CJ_OK);
    from = (sel & 4) ? addr(0xfd, 17) : jp.cfg.jrc;

    /* Splice the genuine token into a datagram that parses. */
    if ((sel & 2) && cj_coap_parse(&m, msg, len) == CJ_OK &&
        m.code != CJ_COAP_EMPTY) {
        cj_coap_builder_t b;
        size_t rest = len - (size_t)(m.opts - msg);
        int n;
        cj_coap_build_init(&b, resp, sizeof resp, m.type, m.code, m.mid,
                           f.token, f.token_len);
        n = cj_coap_build_finish(&b);
        REQUIRE(n > 0 && (size_t)n + rest <= sizeof resp);
        memcpy(resp + n, m.opts, rest);
        msg = resp;
        len = (size_t)n + rest;
    }

    snap = jp;
    o = slot(out2, sizeof out2);
    a = slot(ackbuf, sizeof ackbuf);
    rc = cj_proxy_input_jrc(&jp, now, &from, msg, len, &o, &a);
    check_ack(&a, &from, msg, len, rc);
    if (rc == 0) {
        check_dropped(&o);
        return;
    }
    REQUIRE(rc == 1 && jp.stats.relayed == 1);
    REQUIRE(cj_addr_equal(&o.to, &pledge));
    REQUIRE(cj_coap_parse(&r, o.buf, o.len) == CJ_OK);
    REQUIRE(r.type == CJ_COAP_ACK && r.mid == 0x1234);
    REQUIRE(r.token_len == 4 && memcmp(r.token, FIXED_REQ + 4, 4) == 0);
    snap = jp;
    o = slot(out2, sizeof out2);
    a = slot(ackbuf, sizeof ackbuf);
    REQUIRE(cj_proxy_input_jrc(&jp, now, &from, msg, len, &o, &a) == 0);
    check_ack(&a, &from, msg, len, 0);
    check_dropped(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t sel;

    if (size < 1 || size - 1 > sizeof in)
        return 0;
    sel = data[0];
    /* The engine takes const input; a copy keeps views stable anyway. */
    memcpy(in, data + 1, size - 1);
    if (sel & 1)
        jrc_path(sel, in, size - 1);
    else
        pledge_path(sel, in, size - 1);
    return 0;
}
