/*
 * CoAP codec tests.  Messages are built by hand from RFC 7252 section 3
 * (header, token, options, payload marker) and RFC 8974 section 2.1
 * (extended token length); each byte group is commented with its field.
 */
#include <string.h>

#include "cojp/coap.h"
#include "../test.h"

static size_t unhex(const char *hex, uint8_t *out)
{
    return cj_hex(hex, out, 4096);
}

/* RFC 7252 Appendix A style: CON GET /temperature with a 2-byte token. */
static const char get_temperature[] =
    "42"       /* Ver 1, T CON (0), TKL 2 */
    "01"       /* Code 0.01 GET */
    "7d34"     /* Message ID 0x7d34 */
    "71c5"     /* Token */
    "bb"       /* Option delta 11 (Uri-Path), length 11 */
    "74656d7065726174757265"; /* "temperature" */

/* Its piggybacked answer: ACK 2.05, Content-Format 0, payload "22.3 C". */
static const char content_response[] =
    "62"       /* Ver 1, T ACK (2), TKL 2 */
    "45"       /* Code 2.05 Content */
    "7d34"     /* Message ID 0x7d34 */
    "71c5"     /* Token */
    "c0"       /* Option delta 12 (Content-Format), length 0: value 0 */
    "ff"       /* Payload marker */
    "32322e332043"; /* "22.3 C" */

/* Outer shape of a CoJP Join Request (RFC 9031 section 8.1.1 with the
 * OSCORE option of RFC 8613 section 6.1). */
static const char join_request[] =
    "44"       /* Ver 1, T CON (0), TKL 4 */
    "02"       /* Code 0.02 POST */
    "0001"     /* Message ID 1 */
    "a1b2c3d4" /* Token */
    "3b"       /* Option delta 3 (Uri-Host), length 11 */
    "367469736368 2e61727061" /* "6tisch.arpa" */
    "6b"       /* Option delta 6 (3 + 6 = 9, OSCORE), length 11 */
    "19"       /* OSCORE flags: h (kid context), k (kid), n = 1 */
    "05"       /* Partial IV */
    "08"       /* kid context length 8 */
    "0011223344556677" /* kid context = pledge identifier; kid empty */
    "d4 11"    /* Option delta 13 + 0x11 = 30 (9 + 30 = 39, Proxy-Scheme),
                  length 4 */
    "636f6170" /* "coap" */
    "ff"       /* Payload marker */
    "aabbccddeeff0011"; /* payload (ciphertext) */

static const uint8_t jr_token[] = {0xa1, 0xb2, 0xc3, 0xd4};
static const uint8_t jr_oscore[] = {0x19, 0x05, 0x08, 0x00, 0x11, 0x22,
                                    0x33, 0x44, 0x55, 0x66, 0x77};
static const uint8_t jr_payload[] = {0xaa, 0xbb, 0xcc, 0xdd,
                                     0xee, 0xff, 0x00, 0x11};

TEST(coap_parse_get_temperature)
{
    uint8_t buf[64];
    size_t n = unhex(get_temperature, buf);
    cj_coap_msg_t m;
    cj_coap_opt_iter_t it;
    cj_coap_opt_t o;

    CHECK_EQ(cj_coap_parse(&m, buf, n), CJ_OK);
    CHECK(m.buf == buf);
    CHECK_EQ(m.len, n);
    CHECK_EQ(m.type, CJ_COAP_CON);
    CHECK_EQ(m.code, CJ_COAP_GET);
    CHECK_EQ(m.mid, 0x7d34);
    CHECK_EQ(m.token_len, 2);
    CHECK(m.token == buf + 4);
    CHECK(m.opts == buf + 6);
    CHECK_EQ(m.opts_len, 12);
    CHECK_EQ(m.opt_count, 1);
    CHECK(m.payload == NULL);
    CHECK_EQ(m.payload_len, 0);

    cj_coap_opt_iter_init(&it, &m);
    CHECK_EQ(cj_coap_opt_next(&it, &o), 1);
    CHECK_EQ(o.num, CJ_COAP_OPT_URI_PATH);
    CHECK_MEM(o.val, o.len, "temperature", 11);
    CHECK_EQ(cj_coap_opt_next(&it, &o), 0);
    CHECK_EQ(cj_coap_opt_next(&it, &o), 0);
}

TEST(coap_build_get_temperature)
{
    static const uint8_t tok[] = {0x71, 0xc5};
    uint8_t out[64];
    cj_coap_builder_t b;

    cj_coap_build_init(&b, out, sizeof out, CJ_COAP_CON, CJ_COAP_GET, 0x7d34,
                       tok, sizeof tok);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "temperature");
    cj_coap_build_payload(&b, NULL, 0); /* writes nothing */
    CHECK_EQ(cj_coap_build_finish(&b), 18);
    CHECK_HEX(out, 18, get_temperature);
}

TEST(coap_content_response)
{
    static const uint8_t tok[] = {0x71, 0xc5};
    uint8_t buf[64], out[64];
    size_t n = unhex(content_response, buf);
    cj_coap_msg_t m;
    cj_coap_opt_t o;
    cj_coap_builder_t b;
    uint32_t v = 99;

    CHECK_EQ(cj_coap_parse(&m, buf, n), CJ_OK);
    CHECK_EQ(m.type, CJ_COAP_ACK);
    CHECK_EQ(m.code, CJ_COAP_CONTENT);
    CHECK_EQ(m.opt_count, 1);
    CHECK_EQ(m.opts_len, 1);
    CHECK_MEM(m.payload, m.payload_len, "22.3 C", 6);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_CONTENT_FORMAT, &o), 1);
    CHECK_EQ(o.len, 0);
    CHECK_EQ(cj_coap_opt_uint(&o, &v), CJ_OK);
    CHECK_EQ(v, 0);

    cj_coap_build_init(&b, out, sizeof out, CJ_COAP_ACK, CJ_COAP_CONTENT,
                       0x7d34, tok, sizeof tok);
    cj_coap_build_opt_uint(&b, CJ_COAP_OPT_CONTENT_FORMAT, 0);
    cj_coap_build_payload(&b, (const uint8_t *)"22.3 C", 6);
    CHECK_EQ(cj_coap_build_finish(&b), (int)n);
    CHECK_MEM(out, n, buf, n);
}

TEST(coap_join_request_shape)
{
    uint8_t buf[64], out[64];
    size_t n = unhex(join_request, buf);
    cj_coap_msg_t m;
    cj_coap_opt_iter_t it;
    cj_coap_opt_t o;
    cj_coap_builder_t b;
    uint16_t nums[3];
    size_t k = 0;

    CHECK_EQ(n, 47);
    cj_coap_build_init(&b, out, sizeof out, CJ_COAP_CON, CJ_COAP_POST, 1,
                       jr_token, sizeof jr_token);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "6tisch.arpa");
    cj_coap_build_opt(&b, CJ_COAP_OPT_OSCORE, jr_oscore, sizeof jr_oscore);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_PROXY_SCHEME, "coap");
    cj_coap_build_payload(&b, jr_payload, sizeof jr_payload);
    CHECK_EQ(cj_coap_build_finish(&b), 47);
    CHECK_MEM(out, 47, buf, n);

    CHECK_EQ(cj_coap_parse(&m, buf, n), CJ_OK);
    CHECK_EQ(m.type, CJ_COAP_CON);
    CHECK_EQ(m.code, CJ_COAP_POST);
    CHECK_EQ(m.mid, 1);
    CHECK_MEM(m.token, m.token_len, jr_token, sizeof jr_token);
    CHECK_EQ(m.opt_count, 3);
    CHECK_EQ(m.opts_len, 30);
    CHECK_MEM(m.payload, m.payload_len, jr_payload, sizeof jr_payload);

    cj_coap_opt_iter_init(&it, &m);
    while (k < 3 && cj_coap_opt_next(&it, &o)) {
        nums[k++] = o.num;
        if (o.num == CJ_COAP_OPT_URI_HOST)
            CHECK_MEM(o.val, o.len, "6tisch.arpa", 11);
        else if (o.num == CJ_COAP_OPT_OSCORE)
            CHECK_MEM(o.val, o.len, jr_oscore, sizeof jr_oscore);
        else
            CHECK_MEM(o.val, o.len, "coap", 4);
    }
    CHECK_EQ(k, 3);
    CHECK_EQ(cj_coap_opt_next(&it, &o), 0);
    CHECK_EQ(nums[0], 3);
    CHECK_EQ(nums[1], 9);
    CHECK_EQ(nums[2], 39);

    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_PROXY_SCHEME, &o), 1);
    CHECK_MEM(o.val, o.len, "coap", 4);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_URI_PATH, &o), 0);
    CHECK_EQ(cj_coap_opt_find(&m, 40, &o), 0);
}

/* Every prefix of the Join Request: the header, token and each option are
 * all-or-nothing, a bare payload marker is an error, and a cut inside the
 * payload is a valid message with a shorter payload. */
TEST(coap_truncation_every_length)
{
    static const size_t opt_end[] = {8, 20, 32, 38}; /* after token, opt 1..3 */
    uint8_t buf[64];
    size_t n = unhex(join_request, buf);
    size_t k, i;
    cj_coap_msg_t m;

    for (k = 0; k < n; k++) {
        int rc = cj_coap_parse(&m, buf, k);
        int want = CJ_ERR_TRUNCATED;
        size_t count = 0;
        for (i = 0; i < 4; i++)
            if (k == opt_end[i]) {
                want = CJ_OK;
                count = i;
            }
        if (k == 39)
            want = CJ_ERR_COAP_PAYLOAD;
        if (k > 39) {
            want = CJ_OK;
            count = 3;
        }
        if (rc != want)
            cj_test_failf(__FILE__, __LINE__, "length %zu: rc %d want %d", k,
                          rc, want);
        if (rc == CJ_OK) {
            CHECK_EQ(m.opt_count, count);
            CHECK_EQ(m.payload_len, k > 39 ? k - 39 : 0);
            CHECK_EQ(m.opts_len, (k > 38 ? 38 : k) - 8);
        }
    }
}

/* One option after a 4-byte header: encode, check the delta/length
 * header bytes (RFC 7252 3.1), parse back. */
static void check_option(uint16_t prev, uint16_t num, size_t len,
                         const char *hdr_hex, int line)
{
    static uint8_t val[70000], enc[70000], msg[70010];
    uint8_t hdr[8];
    size_t hn = unhex(hdr_hex, hdr), i;
    int rc;
    cj_coap_msg_t m;
    cj_coap_opt_t o, tab[2];
    const uint8_t *pl;
    size_t pll;

    for (i = 0; i < len; i++)
        val[i] = (uint8_t)(i * 7 + 1);
    rc = cj_coap_opt_encode(enc, sizeof enc, prev, num, val, len);
    if (rc != (int)(hn + len)) {
        cj_test_failf(__FILE__, line, "encode %u->%u len %zu: rc %d", prev,
                      num, len, rc);
        return;
    }
    CHECK_MEM(enc, hn, hdr, hn);
    CHECK(memcmp(enc + hn, val, len) == 0);
    /* One byte short of room fails cleanly. */
    CHECK_EQ(cj_coap_opt_encode(enc, (size_t)rc - 1, prev, num, val, len),
             CJ_ERR_NOSPACE);

    if (prev != 0)
        return;
    msg[0] = 0x40; /* Ver 1, CON, TKL 0 */
    msg[1] = 0x01; /* GET */
    msg[2] = 0x00;
    msg[3] = 0x00; /* MID 0 */
    memcpy(msg + 4, enc, (size_t)rc);
    if (cj_coap_parse(&m, msg, 4 + (size_t)rc) != CJ_OK) {
        cj_test_failf(__FILE__, line, "parse option %u len %zu", num, len);
        return;
    }
    CHECK_EQ(m.opt_count, 1);
    CHECK_EQ(cj_coap_opt_find(&m, num, &o), 1);
    CHECK_EQ(o.num, num);
    CHECK_EQ(o.len, len);
    CHECK(o.val == msg + 4 + hn);
    CHECK_EQ(cj_coap_opts_decode(enc, (size_t)rc, tab, 2, &pl, &pll), 1);
    CHECK_EQ(tab[0].num, num);
    CHECK_EQ(tab[0].len, len);
    CHECK(pl == NULL);
    /* Cut the value short by one byte: truncated. */
    if (len)
        CHECK_EQ(cj_coap_parse(&m, msg, 3 + (size_t)rc), CJ_ERR_TRUNCATED);
}

TEST(coap_option_boundaries)
{
    /* Delta and length in the 4-bit form up to 12, then 13 + one byte
     * (13..268), then 269 + two bytes (RFC 7252 section 3.1). */
    check_option(0, 0, 0, "00", __LINE__);
    check_option(0, 12, 12, "cc", __LINE__);
    check_option(0, 13, 13, "dd 00 00", __LINE__);
    check_option(0, 14, 1, "d1 01", __LINE__);
    check_option(0, 268, 268, "dd ff ff", __LINE__);
    check_option(0, 269, 269, "ee 0000 0000", __LINE__);
    check_option(0, 270, 12, "ec 0001", __LINE__);
    check_option(0, 524, 525, "ee 00ff 0100", __LINE__);
    check_option(0, 65535, 0, "e0 fef2", __LINE__);
    check_option(0, 1000, 65535, "ee 02db fef2", __LINE__);
    /* Deltas from a previous option. */
    check_option(3, 9, 0, "60", __LINE__);
    check_option(9, 39, 4, "d4 11", __LINE__);
    check_option(11, 11, 1, "01", __LINE__);
    check_option(1, 269, 0, "d0 ff", __LINE__);
    check_option(1, 270, 0, "e0 0000", __LINE__);
    check_option(65535, 65535, 3, "03", __LINE__);
}

TEST(coap_option_encode_errors)
{
    uint8_t out[8];
    CHECK_EQ(cj_coap_opt_encode(out, sizeof out, 12, 11, NULL, 0),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_coap_opt_encode(out, sizeof out, 0, 1, out, 65536),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_coap_opt_encode(out, 0, 0, 1, NULL, 0), CJ_ERR_NOSPACE);
    CHECK_EQ(cj_coap_opt_encode(out, 1, 0, 13, NULL, 0), CJ_ERR_NOSPACE);
    CHECK_EQ(cj_coap_opt_encode(out, 2, 0, 13, NULL, 0), 2);
    CHECK_HEX(out, 2, "d0 00");
}

/* Token lengths of RFC 8974 section 2.1: 0..12 in the nibble, 13 + one
 * byte, 269 + two bytes.  Lengths above CJ_COAP_MAX_TOKEN are refused by
 * both sides. */
TEST(coap_token_lengths)
{
    static const struct {
        size_t len;
        const char *hdr; /* byte 0, code GET, MID 0x1234, extension */
    } v[] = {
        {0, "40 01 1234"},      {1, "41 01 1234"},
        {8, "48 01 1234"},      {9, "49 01 1234"},
        {12, "4c 01 1234"},     {13, "4d 01 1234 00"},
        {14, "4d 01 1234 01"},  {64, "4d 01 1234 33"},
        {65, "4d 01 1234 34"},  {255, "4d 01 1234 f2"},
        {268, "4d 01 1234 ff"}, {269, "4e 01 1234 0000"},
        {270, "4e 01 1234 0001"}, {65804, "4e 01 1234 ffff"},
    };
    static uint8_t msg[70000], out[70000], tok[65804];
    size_t i, j;

    for (j = 0; j < sizeof tok; j++)
        tok[j] = (uint8_t)(j ^ 0x5a);
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t hn = unhex(v[i].hdr, msg), len = v[i].len;
        cj_coap_msg_t m;
        cj_coap_builder_t b;
        int rc;

        memcpy(msg + hn, tok, len);
        rc = cj_coap_parse(&m, msg, hn + len);
        cj_coap_build_init(&b, out, sizeof out, CJ_COAP_CON, CJ_COAP_GET,
                           0x1234, tok, len);
        if (len <= CJ_COAP_MAX_TOKEN) {
            CHECK_EQ(rc, CJ_OK);
            CHECK_EQ(m.token_len, len);
            CHECK(m.token == (len ? msg + hn : NULL));
            CHECK_EQ(m.opt_count, 0);
            CHECK_EQ(cj_coap_build_finish(&b), (int)(hn + len));
            CHECK_MEM(out, hn + len, msg, hn + len);
            /* One token byte missing. */
            if (len)
                CHECK_EQ(cj_coap_parse(&m, msg, hn + len - 1),
                         CJ_ERR_TRUNCATED);
        } else {
            if (rc != CJ_ERR_COAP_TOKEN)
                cj_test_failf(__FILE__, __LINE__, "token %zu: rc %d", len, rc);
            CHECK_EQ(cj_coap_build_finish(&b), CJ_ERR_INVALID);
        }
    }
}

/* Malformed headers and option sequences: each error code of
 * cj_coap_parse() at least once (RFC 7252 sections 3, 4.1, 5.4). */
TEST(coap_malformed)
{
    static const struct {
        const char *hex;
        int err;
    } v[] = {
        {"", CJ_ERR_TRUNCATED},
        {"40", CJ_ERR_TRUNCATED},
        {"40 01 00", CJ_ERR_TRUNCATED},
        /* Version 0, 2, 3 */
        {"00 01 0000", CJ_ERR_COAP_VERSION},
        {"80 01 0000", CJ_ERR_COAP_VERSION},
        {"c0 01 0000", CJ_ERR_COAP_VERSION},
        {"30 00 0000 ff", CJ_ERR_COAP_VERSION},
        /* TKL 15 reserved; token missing; extension missing */
        {"4f 01 0000", CJ_ERR_COAP_TOKEN},
        {"4f 01 0000 00000000", CJ_ERR_COAP_TOKEN},
        {"41 01 0000", CJ_ERR_TRUNCATED},
        {"48 01 0000 01020304050607", CJ_ERR_TRUNCATED},
        {"4d 01 0000", CJ_ERR_TRUNCATED},
        {"4e 01 0000 00", CJ_ERR_TRUNCATED},
        /* 65804-byte token: over the limit, or else missing */
        {"4e 01 0000 ffff", CJ_COAP_MAX_TOKEN < 65804 ? CJ_ERR_COAP_TOKEN
                                                      : CJ_ERR_TRUNCATED},
        /* Option nibble 15 in delta or length, not a marker */
        {"40 01 0000 f0", CJ_ERR_COAP_OPTION},
        {"40 01 0000 0f", CJ_ERR_COAP_OPTION},
        {"40 01 0000 fe 0000", CJ_ERR_COAP_OPTION},
        {"40 01 0000 bb 74656d7065726174757265 1f", CJ_ERR_COAP_OPTION},
        /* Option number above 65535: one delta, then a sum */
        {"40 01 0000 e0 fef3", CJ_ERR_COAP_OPTION},
        {"40 01 0000 e0 ffff", CJ_ERR_COAP_OPTION},
        {"40 01 0000 e0 fef2 10", CJ_ERR_COAP_OPTION},
        {"40 01 0000 e0 fe00 e0 00f3", CJ_ERR_COAP_OPTION},
        /* Option length above 65535 (65536 = 269 + 0xfef3) */
        {"40 01 0000 0e fef3", CJ_ERR_COAP_OPTION},
        /* Extended delta/length bytes or value past the end */
        {"40 01 0000 d0", CJ_ERR_TRUNCATED},
        {"40 01 0000 e0 00", CJ_ERR_TRUNCATED},
        {"40 01 0000 0d", CJ_ERR_TRUNCATED},
        {"40 01 0000 de 00 00", CJ_ERR_TRUNCATED},
        {"40 01 0000 01", CJ_ERR_TRUNCATED},
        {"40 01 0000 0d 00 0102", CJ_ERR_TRUNCATED},
        /* Payload marker with nothing after it */
        {"40 01 0000 ff", CJ_ERR_COAP_PAYLOAD},
        {"41 01 0000 aa b1 6a ff", CJ_ERR_COAP_PAYLOAD},
        /* Empty message (0.00) with a token, option or payload byte */
        {"40 00 0000 00", CJ_ERR_COAP_EMPTY},
        {"40 00 0000 ff 01", CJ_ERR_COAP_EMPTY},
        {"41 00 0000", CJ_ERR_COAP_EMPTY},
        {"41 00 0000 aa", CJ_ERR_COAP_EMPTY},
        {"60 00 0000 ff", CJ_ERR_COAP_EMPTY},
    };
    size_t i;

    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t buf[64];
        size_t n = unhex(v[i].hex, buf);
        cj_coap_msg_t m;
        int rc = cj_coap_parse(&m, buf, n);
        if (rc != v[i].err)
            cj_test_failf(__FILE__, __LINE__, "case %zu (%s): rc %d want %d",
                          i, v[i].hex, rc, v[i].err);
    }
}

/* Well-formed edge cases that must parse. */
TEST(coap_accepts_edges)
{
    static const struct {
        const char *hex;
        size_t opts, payload;
    } v[] = {
        {"40 00 abcd", 0, 0},          /* Empty CON: ping */
        {"70 00 abcd", 0, 0},          /* Empty RST */
        {"40 20 0001", 0, 0},          /* reserved class 1.00 */
        {"50 ff 0001 01 aa", 1, 0},    /* class 7.31 */
        {"40 e0 0001", 0, 0},          /* class 7.00 */
        {"40 01 0001 ff 00", 0, 1},    /* one payload byte */
        {"40 01 0001 00 00 00", 3, 0}, /* option 0 three times */
        {"40 01 0001 e0 fef2 00", 2, 0}, /* 65535 twice */
        {"40 01 0001 c3 000001 ff ff", 1, 1}, /* uint with leading zeros */
    };
    size_t i;

    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t buf[64];
        size_t n = unhex(v[i].hex, buf);
        cj_coap_msg_t m;
        int rc = cj_coap_parse(&m, buf, n);
        if (rc != CJ_OK) {
            cj_test_failf(__FILE__, __LINE__, "case %zu (%s): rc %d", i,
                          v[i].hex, rc);
            continue;
        }
        CHECK_EQ(m.opt_count, v[i].opts);
        CHECK_EQ(m.payload_len, v[i].payload);
        CHECK_EQ(m.code, buf[1]);
        CHECK_EQ(m.type, buf[0] >> 4 & 3);
    }
}

TEST(coap_opt_uint)
{
    static const struct {
        const char *val;
        uint32_t v;
    } ok[] = {
        {"", 0}, {"00", 0}, {"01", 1}, {"0000 0001", 1}, {"ff", 255},
        {"0100", 256}, {"12345678", 0x12345678}, {"ffffffff", 0xffffffffu},
    };
    uint8_t buf[8];
    cj_coap_opt_t o;
    uint32_t v;
    size_t i;

    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        o.num = CJ_COAP_OPT_MAX_AGE;
        o.len = (uint16_t)unhex(ok[i].val, buf);
        o.val = buf;
        v = 7;
        CHECK_EQ(cj_coap_opt_uint(&o, &v), CJ_OK);
        CHECK_EQ(v, ok[i].v);
    }
    o.len = 5;
    CHECK_EQ(cj_coap_opt_uint(&o, &v), CJ_ERR_RANGE);
}

TEST(coap_build_opt_uint_shortest)
{
    static const struct {
        uint32_t v;
        const char *opt; /* option 14 (Max-Age) after none: delta 13+1 */
    } t[] = {
        {0, "d0 01"},
        {1, "d1 01 01"},
        {255, "d1 01 ff"},
        {256, "d2 01 0100"},
        {65535, "d2 01 ffff"},
        {65536, "d3 01 010000"},
        {0x01000000, "d4 01 01000000"},
        {0xffffffffu, "d4 01 ffffffff"},
    };
    size_t i;

    for (i = 0; i < sizeof t / sizeof t[0]; i++) {
        uint8_t out[16], want[16];
        size_t wn = unhex("40 01 0000", want);
        cj_coap_builder_t b;
        cj_coap_msg_t m;
        cj_coap_opt_t o;
        uint32_t v;

        wn += unhex(t[i].opt, want + wn);
        cj_coap_build_init(&b, out, sizeof out, CJ_COAP_CON, CJ_COAP_GET, 0,
                           NULL, 0);
        cj_coap_build_opt_uint(&b, CJ_COAP_OPT_MAX_AGE, t[i].v);
        CHECK_EQ(cj_coap_build_finish(&b), (int)wn);
        CHECK_MEM(out, wn, want, wn);
        CHECK_EQ(cj_coap_parse(&m, out, wn), CJ_OK);
        CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_MAX_AGE, &o), 1);
        CHECK_EQ(cj_coap_opt_uint(&o, &v), CJ_OK);
        CHECK_EQ(v, t[i].v);
    }
}

TEST(coap_find_repeated)
{
    uint8_t buf[64];
    size_t n = unhex("40 01 0000"
                     "b1 61"  /* Uri-Path "a" */
                     "01 62"  /* Uri-Path "b" */
                     "41 78"  /* Uri-Query (15) "x" */
                     "c1 05", /* Block1 (27): delta 12 */
                     buf);
    cj_coap_msg_t m;
    cj_coap_opt_t o;

    CHECK_EQ(cj_coap_parse(&m, buf, n), CJ_OK);
    CHECK_EQ(m.opt_count, 4);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_URI_PATH, &o), 1);
    CHECK_MEM(o.val, o.len, "a", 1);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_URI_QUERY, &o), 1);
    CHECK_MEM(o.val, o.len, "x", 1);
    CHECK_EQ(cj_coap_opt_find(&m, CJ_COAP_OPT_BLOCK1, &o), 1);
    CHECK_EQ(o.len, 1);
    CHECK_EQ(cj_coap_opt_find(&m, 12, &o), 0);
    CHECK_EQ(cj_coap_opt_find(&m, 0, &o), 0);
    CHECK_EQ(cj_coap_opt_find(&m, 28, &o), 0);
}

TEST(coap_check_critical)
{
    static const uint16_t known[] = {CJ_COAP_OPT_URI_HOST, CJ_COAP_OPT_OSCORE,
                                     CJ_COAP_OPT_URI_PATH,
                                     CJ_COAP_OPT_PROXY_SCHEME};
    uint8_t buf[128];
    cj_coap_builder_t b;
    cj_coap_msg_t m;
    uint16_t bad = 0;
    int n;

    /* Known critical options plus unknown elective ones (12 is known as
     * Content-Format elsewhere but not listed; 2048 is elective). */
    cj_coap_build_init(&b, buf, sizeof buf, CJ_COAP_CON, CJ_COAP_POST, 1,
                       NULL, 0);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "6tisch.arpa");
    cj_coap_build_opt(&b, CJ_COAP_OPT_OSCORE, NULL, 0);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "j");
    cj_coap_build_opt_uint(&b, CJ_COAP_OPT_CONTENT_FORMAT, 0);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_PROXY_SCHEME, "coap");
    cj_coap_build_opt(&b, 2048, NULL, 0);
    n = cj_coap_build_finish(&b);
    CHECK(n > 0);
    CHECK_EQ(cj_coap_parse(&m, buf, (size_t)n), CJ_OK);
    CHECK_EQ(cj_coap_check_critical(&m, known, 4, &bad), CJ_OK);
    CHECK_EQ(bad, 0);
    CHECK_EQ(cj_coap_check_critical(&m, known, 4, NULL), CJ_OK);

    /* Without Proxy-Scheme in the list, it is the first unknown. */
    CHECK_EQ(cj_coap_check_critical(&m, known, 3, &bad), CJ_ERR_COAP_CRITICAL);
    CHECK_EQ(bad, CJ_COAP_OPT_PROXY_SCHEME);
    CHECK_EQ(cj_coap_check_critical(&m, NULL, 0, &bad), CJ_ERR_COAP_CRITICAL);
    CHECK_EQ(bad, CJ_COAP_OPT_URI_HOST);
    CHECK_EQ(cj_coap_check_critical(&m, NULL, 0, NULL), CJ_ERR_COAP_CRITICAL);

    /* An unknown critical option (65001, odd) after the known ones. */
    cj_coap_build_init(&b, buf, sizeof buf, CJ_COAP_CON, CJ_COAP_GET, 2,
                       NULL, 0);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "j");
    cj_coap_build_opt(&b, 2048, NULL, 0);
    cj_coap_build_opt(&b, 65001, "z", 1);
    n = cj_coap_build_finish(&b);
    CHECK_EQ(cj_coap_parse(&m, buf, (size_t)n), CJ_OK);
    CHECK_EQ(cj_coap_check_critical(&m, known, 4, &bad), CJ_ERR_COAP_CRITICAL);
    CHECK_EQ(bad, 65001);

    /* No options at all. */
    CHECK_EQ(cj_coap_parse(&m, buf, 4), CJ_OK);
    CHECK_EQ(cj_coap_check_critical(&m, NULL, 0, NULL), CJ_OK);
}

TEST(coap_build_nospace_sticky)
{
    uint8_t want[64], out[64];
    size_t n = unhex(join_request, want), cap;

    /* Every capacity short of the full message fails with NOSPACE, the
     * exact size succeeds, and nothing is written past cap. */
    for (cap = 0; cap <= n; cap++) {
        cj_coap_builder_t b;
        memset(out, 0xee, sizeof out);
        cj_coap_build_init(&b, out, cap, CJ_COAP_CON, CJ_COAP_POST, 1,
                           jr_token, sizeof jr_token);
        cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "6tisch.arpa");
        cj_coap_build_opt(&b, CJ_COAP_OPT_OSCORE, jr_oscore,
                          sizeof jr_oscore);
        cj_coap_build_opt_str(&b, CJ_COAP_OPT_PROXY_SCHEME, "coap");
        cj_coap_build_payload(&b, jr_payload, sizeof jr_payload);
        CHECK_EQ(cj_coap_build_finish(&b), cap < n ? CJ_ERR_NOSPACE : (int)n);
        CHECK_EQ(out[cap], 0xee);
    }

    /* After NOSPACE, a small option that would fit does not clear it and
     * an order violation does not replace it. */
    {
        cj_coap_builder_t b;
        cj_coap_build_init(&b, out, 10, CJ_COAP_CON, CJ_COAP_GET, 0, NULL, 0);
        cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "temperature");
        CHECK_EQ(cj_coap_build_finish(&b), CJ_ERR_NOSPACE);
        cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "t");
        CHECK_EQ(cj_coap_build_finish(&b), CJ_ERR_NOSPACE);
        cj_coap_build_opt(&b, CJ_COAP_OPT_URI_HOST, NULL, 0);
        cj_coap_build_payload(&b, (const uint8_t *)"x", 1);
        CHECK_EQ(cj_coap_build_finish(&b), CJ_ERR_NOSPACE);
        CHECK_EQ(b.len, 4);
    }
}

TEST(coap_build_order_and_misuse)
{
    uint8_t out[64];
    cj_coap_builder_t b;
    int n;

    /* Decreasing option number. */
    cj_coap_build_init(&b, out, sizeof out, CJ_COAP_CON, CJ_COAP_GET, 0, NULL,
                       0);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "a");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "h");
    CHECK_EQ(cj_coap_build_finish(&b), CJ_ERR_INVALID);
    /* Sticky: a later valid option and payload change nothing. */
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_QUERY, "q");
    cj_coap_build_payload(&b, (const uint8_t *)"p", 1);
    CHECK_EQ(cj_coap_build_finish(&b), CJ_ERR_INVALID);
    CHECK_EQ(b.len, 6);

    /* Repeated numbers are fine; an option after the payload is not. */
    cj_coap_build_init(&b, out, sizeof out, CJ_COAP_NON, CJ_COAP_PUT, 0x0102,
                       NULL, 0);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "a");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "b");
    cj_coap_build_payload(&b, (const uint8_t *)"xy", 2);
    CHECK_EQ(cj_coap_build_finish(&b), 11);
    CHECK_HEX(out, 11, "50 03 0102" /* NON, TKL 0, PUT, MID */
                       "b1 61 01 62" /* Uri-Path "a", Uri-Path "b" */
                       "ff 7879");   /* marker, "xy" */
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_QUERY, "q");
    CHECK_EQ(cj_coap_build_finish(&b), CJ_ERR_INVALID);

    /* An empty payload writes nothing and does not close the options. */
    cj_coap_build_init(&b, out, sizeof out, CJ_COAP_CON, CJ_COAP_GET, 0, NULL,
                       0);
    cj_coap_build_payload(&b, NULL, 0);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "a");
    CHECK_EQ(cj_coap_build_finish(&b), 6);
    CHECK_HEX(out, 6, "40 01 0000 b1 61");

    /* Two payload calls extend one payload behind a single marker. */
    cj_coap_build_payload(&b, (const uint8_t *)"ab", 2);
    cj_coap_build_payload(&b, (const uint8_t *)"c", 1);
    n = cj_coap_build_finish(&b);
    CHECK_EQ(n, 10);
    CHECK_HEX(out, 10, "40 01 0000 b1 61 ff 616263");

    /* Token longer than CJ_COAP_MAX_TOKEN. */
    {
        static uint8_t tok[CJ_COAP_MAX_TOKEN + 1];
        cj_coap_build_init(&b, out, sizeof out, CJ_COAP_CON, CJ_COAP_GET, 0,
                           tok, sizeof tok);
        CHECK_EQ(cj_coap_build_finish(&b), CJ_ERR_INVALID);
    }

    /* Empty message: bare header only (RFC 7252 section 4.1). */
    cj_coap_build_init(&b, out, sizeof out, CJ_COAP_ACK, CJ_COAP_EMPTY,
                       0xbeef, NULL, 0);
    CHECK_EQ(cj_coap_build_finish(&b), 4);
    CHECK_HEX(out, 4, "60 00 beef");
    cj_coap_build_payload(&b, NULL, 0);
    CHECK_EQ(cj_coap_build_finish(&b), 4);
    cj_coap_build_opt(&b, CJ_COAP_OPT_URI_PATH, "a", 1);
    CHECK_EQ(cj_coap_build_finish(&b), CJ_ERR_INVALID);
    cj_coap_build_init(&b, out, sizeof out, CJ_COAP_ACK, CJ_COAP_EMPTY,
                       0xbeef, NULL, 0);
    cj_coap_build_payload(&b, (const uint8_t *)"a", 1);
    CHECK_EQ(cj_coap_build_finish(&b), CJ_ERR_INVALID);
    cj_coap_build_init(&b, out, sizeof out, CJ_COAP_CON, CJ_COAP_EMPTY, 1,
                       jr_token, 1);
    CHECK_EQ(cj_coap_build_finish(&b), CJ_ERR_INVALID);
}

/* Bare option sequences as found in an OSCORE plaintext (RFC 8613 5.3):
 * same rules as inside a message. */
TEST(coap_opts_decode)
{
    static const struct {
        const char *hex;
        int rc;
        size_t payload;
    } v[] = {
        {"", 0, 0},
        {"b1 6a", 1, 0},              /* Uri-Path "j" */
        {"b1 6a ff a1 02", 1, 2},     /* Uri-Path "j", payload a102 */
        {"ff 00", 0, 1},              /* payload only */
        {"b1 6a 01 6b 41 71", 3, 0},  /* 11, 11, 15 */
        {"ff", CJ_ERR_COAP_PAYLOAD, 0},
        {"b1 6a ff", CJ_ERR_COAP_PAYLOAD, 0},
        {"f1 00", CJ_ERR_COAP_OPTION, 0},
        {"e0 fef2 10", CJ_ERR_COAP_OPTION, 0},
        {"d0", CJ_ERR_TRUNCATED, 0},
        {"b2 6a", CJ_ERR_TRUNCATED, 0},
    };
    size_t i;

    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t buf[32];
        size_t n = unhex(v[i].hex, buf), pll = 99;
        const uint8_t *pl = buf;
        cj_coap_opt_t tab[4];
        int rc = cj_coap_opts_decode(buf, n, tab, 4, &pl, &pll);
        if (rc != v[i].rc) {
            cj_test_failf(__FILE__, __LINE__, "case %zu (%s): rc %d want %d",
                          i, v[i].hex, rc, v[i].rc);
            continue;
        }
        if (rc < 0)
            continue;
        CHECK_EQ(pll, v[i].payload);
        CHECK(pl == (v[i].payload ? buf + n - v[i].payload : NULL));
    }

    {
        uint8_t buf[32];
        size_t n = unhex("b1 6a 01 6b 41 71 ff 01", buf), pll;
        const uint8_t *pl;
        cj_coap_opt_t tab[3];

        CHECK_EQ(cj_coap_opts_decode(buf, n, tab, 3, &pl, &pll), 3);
        CHECK_EQ(tab[0].num, 11);
        CHECK_MEM(tab[0].val, tab[0].len, "j", 1);
        CHECK_EQ(tab[1].num, 11);
        CHECK_MEM(tab[1].val, tab[1].len, "k", 1);
        CHECK_EQ(tab[2].num, 15);
        CHECK_MEM(tab[2].val, tab[2].len, "q", 1);
        CHECK_EQ(pll, 1);
        /* Too small a table; a malformed tail outranks NOSPACE. */
        CHECK_EQ(cj_coap_opts_decode(buf, n, tab, 2, &pl, &pll),
                 CJ_ERR_NOSPACE);
        CHECK_EQ(cj_coap_opts_decode(buf, n, NULL, 0, &pl, &pll),
                 CJ_ERR_NOSPACE);
        CHECK_EQ(cj_coap_opts_decode(buf, 7, tab, 2, &pl, &pll),
                 CJ_ERR_COAP_PAYLOAD);
    }
}

/* Build pseudo-random messages, parse them back and compare every field. */
TEST(coap_round_trip)
{
    uint32_t seed = 12345;
    int round;

    for (round = 0; round < 300; round++) {
        uint8_t out[1024], tok[CJ_COAP_MAX_TOKEN], vals[16][300], pay[64];
        uint16_t nums[16];
        size_t lens[16], tl, nopt, pl, i;
        uint8_t type, code;
        uint16_t mid, num = 0;
        cj_coap_builder_t b;
        cj_coap_msg_t m;
        cj_coap_opt_iter_t it;
        cj_coap_opt_t o;
        int n;

#define RND() (seed = seed * 1103515245u + 12345u, (seed >> 8) & 0xffffff)
        type = (uint8_t)(RND() & 3);
        code = (uint8_t)(1 + RND() % 255);
        mid = (uint16_t)RND();
        tl = RND() % (CJ_COAP_MAX_TOKEN + 1);
        for (i = 0; i < tl; i++)
            tok[i] = (uint8_t)RND();
        nopt = RND() % 17;
        for (i = 0; i < nopt; i++) {
            size_t j;
            uint32_t step = RND() % 4;
            uint32_t d = step == 0 ? 0 : step == 1 ? RND() % 13
                         : step == 2 ? RND() % 300 : RND() % 3000;
            if (num + d > 65535)
                d = 0;
            num = (uint16_t)(num + d);
            nums[i] = num;
            lens[i] = RND() % 4 == 0 ? RND() % 300 : RND() % 14;
            for (j = 0; j < lens[i]; j++)
                vals[i][j] = (uint8_t)RND();
        }
        pl = RND() % 3 == 0 ? 0 : RND() % 64;
        for (i = 0; i < pl; i++)
            pay[i] = (uint8_t)RND();
#undef RND

        cj_coap_build_init(&b, out, sizeof out, type, code, mid, tok, tl);
        for (i = 0; i < nopt; i++)
            cj_coap_build_opt(&b, nums[i], vals[i], lens[i]);
        cj_coap_build_payload(&b, pay, pl);
        n = cj_coap_build_finish(&b);
        if (n == CJ_ERR_NOSPACE)
            continue;
        CHECK(n > 0);
        if (n <= 0 || cj_coap_parse(&m, out, (size_t)n) != CJ_OK) {
            cj_test_failf(__FILE__, __LINE__, "round %d: n %d", round, n);
            continue;
        }
        CHECK_EQ(m.type, type);
        CHECK_EQ(m.code, code);
        CHECK_EQ(m.mid, mid);
        CHECK_MEM(m.token, m.token_len, tok, tl);
        CHECK_EQ(m.opt_count, nopt);
        CHECK_MEM(m.payload, m.payload_len, pay, pl);
        cj_coap_opt_iter_init(&it, &m);
        for (i = 0; i < nopt; i++) {
            CHECK_EQ(cj_coap_opt_next(&it, &o), 1);
            CHECK_EQ(o.num, nums[i]);
            CHECK_MEM(o.val, o.len, vals[i], lens[i]);
        }
        CHECK_EQ(cj_coap_opt_next(&it, &o), 0);
    }
}
