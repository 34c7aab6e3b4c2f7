/*
 * CoJP objects (RFC 9031 section 8.4): Appendix A vectors both ways,
 * every decoder error path with the parameter it reports, truncation,
 * limits and round trips.
 */
#include <string.h>

#include "../test.h"
#include "cojp/cbor.h"
#include "cojp/cojp.h"

/* RFC 9031 Appendix A: Join_Request {5: h'cafe'}. */
#define A_JOIN_REQUEST "a10542cafe"
/* RFC 9031 Appendix A: Configuration {2: [1, h'e6bf...33e6'],
 * 3: [h'af93']}. */
#define A_KEY "e6bf4287c2d7618d6a9687445ffd33e6"
#define A_CONFIG "a202820150" A_KEY "038142af93"

/* A 16-byte key for hand-written vectors. */
#define K16 "000102030405060708090a0b0c0d0e0f"

static const uint8_t key_a[16] = {0xe6, 0xbf, 0x42, 0x87, 0xc2, 0xd7,
                                  0x61, 0x8d, 0x6a, 0x96, 0x87, 0x44,
                                  0x5f, 0xfd, 0x33, 0xe6};

static bool bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b,
                     size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool config_eq(const cj_cojp_config_t *a, const cj_cojp_config_t *b)
{
    size_t i;
    if (a->key_count != b->key_count ||
        (a->short_id == NULL) != (b->short_id == NULL) ||
        (a->jrc_address == NULL) != (b->jrc_address == NULL) ||
        a->has_lease_time != b->has_lease_time ||
        a->has_blacklist != b->has_blacklist ||
        a->blacklist_count != b->blacklist_count ||
        a->has_join_rate != b->has_join_rate)
        return false;
    for (i = 0; i < a->key_count; i++) {
        const cj_cojp_key_t *x = &a->keys[i], *y = &b->keys[i];
        if (x->key_id != y->key_id || x->key_usage != y->key_usage ||
            memcmp(x->key, y->key, CJ_COJP_KEY_LEN) != 0 ||
            !bytes_eq(x->addinfo, x->addinfo_len, y->addinfo,
                      y->addinfo_len))
            return false;
    }
    if (a->short_id &&
        (memcmp(a->short_id, b->short_id, CJ_COJP_SHORT_ID_LEN) != 0 ||
         (a->has_lease_time && a->lease_time != b->lease_time)))
        return false;
    if (a->jrc_address &&
        memcmp(a->jrc_address, b->jrc_address, CJ_COJP_JRC_ADDRESS_LEN))
        return false;
    for (i = 0; i < a->blacklist_count; i++)
        if (!bytes_eq(a->blacklist[i].p, a->blacklist[i].len,
                      b->blacklist[i].p, b->blacklist[i].len))
            return false;
    return !a->has_join_rate || a->join_rate == b->join_rate;
}

static bool unsupported_eq(const cj_cojp_unsupported_t *a,
                           const cj_cojp_unsupported_t *b)
{
    size_t i;
    if (a->count != b->count)
        return false;
    for (i = 0; i < a->count; i++)
        if (a->params[i].code != b->params[i].code ||
            a->params[i].label != b->params[i].label ||
            !bytes_eq(a->params[i].addinfo, a->params[i].addinfo_len,
                      b->params[i].addinfo, b->params[i].addinfo_len))
            return false;
    return true;
}

/* ---- Appendix A ------------------------------------------------------- */

TEST(cojp_appendix_a_join_request_decode)
{
    uint8_t in[8], out[16];
    size_t n = cj_hex(A_JOIN_REQUEST, in, sizeof in);
    cj_cojp_join_request_t jr;
    cj_cojp_report_t why;
    CHECK_EQ(cj_cojp_join_request_decode(in, n, &jr, &why), CJ_OK);
    CHECK(!why.has_param);
    CHECK_EQ(jr.role, CJ_COJP_ROLE_6LN); /* absent: default 6LN */
    CHECK_HEX(jr.network_id, jr.network_id_len, "cafe");
    CHECK(!jr.has_unsupported);
    CHECK_EQ(cj_cojp_join_request_encode(&jr, out, sizeof out), 5);
    CHECK_HEX(out, 5, A_JOIN_REQUEST);
}

TEST(cojp_appendix_a_join_request_encode)
{
    static const uint8_t pan[2] = {0xca, 0xfe};
    cj_cojp_join_request_t jr;
    uint8_t out[16];
    memset(&jr, 0, sizeof jr);
    jr.network_id = pan;
    jr.network_id_len = 2;
    CHECK_EQ(cj_cojp_join_request_encode(&jr, NULL, 0), 5);
    CHECK_EQ(cj_cojp_join_request_encode(&jr, out, sizeof out), 5);
    CHECK_HEX(out, 5, A_JOIN_REQUEST);
    CHECK_EQ(cj_cojp_join_request_encode(&jr, out, 4), CJ_ERR_NOSPACE);
}

TEST(cojp_appendix_a_config_decode)
{
    uint8_t in[32], out[32];
    size_t n = cj_hex(A_CONFIG, in, sizeof in);
    cj_cojp_config_t c;
    cj_cojp_report_t why;
    CHECK_EQ(n, 26);
    CHECK_EQ(cj_cojp_config_decode(in, n, &c, &why), CJ_OK);
    CHECK(!why.has_param);
    CHECK_EQ(c.key_count, 1);
    CHECK_EQ(c.keys[0].key_id, 1);
    CHECK_EQ(c.keys[0].key_usage, CJ_COJP_KEY_USAGE_K1K2_ENC_MIC32);
    CHECK_HEX(c.keys[0].key, CJ_COJP_KEY_LEN, A_KEY);
    CHECK_EQ(c.keys[0].addinfo_len, 0); /* Key ID Mode 0x01 */
    CHECK(c.short_id != NULL);
    CHECK_HEX(c.short_id, CJ_COJP_SHORT_ID_LEN, "af93");
    CHECK(!c.has_lease_time); /* positive infinity */
    CHECK(c.jrc_address == NULL);
    CHECK(!c.has_blacklist);
    CHECK(!c.has_join_rate);
    CHECK_EQ(c.ignored, 0);
    CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), 26);
    CHECK_HEX(out, 26, A_CONFIG);
}

TEST(cojp_appendix_a_config_encode)
{
    static const uint8_t sid[2] = {0xaf, 0x93};
    cj_cojp_config_t c;
    uint8_t out[32];
    memset(&c, 0, sizeof c);
    c.key_count = 1;
    c.keys[0].key_id = 1;
    c.keys[0].key = key_a;
    c.short_id = sid;
    CHECK_EQ(cj_cojp_config_encode(&c, NULL, 0), 26);
    CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), 26);
    CHECK_HEX(out, 26, A_CONFIG);
}

/* A hand-encoded Configuration with every parameter (section 8.4.2
 * CDDL), checked against the encoder independently of the decoder. */
#define ALL_CONFIG                                                         \
    "a5"                                                                   \
    "02830c0c50" K16 /* 2: [12, 12, key]: key_id 12, K2-ENC-MIC32 */       \
    "03824200011818" /* 3: [h'0001', 24] */                                \
    "0450fe800000000000000000000000000001" /* 4: fe80::1 */             \
    "0681420102"     /* 6: [h'0102'] */                                    \
    "070a"           /* 7: 10 */

TEST(cojp_config_all_parameters_hex)
{
    uint8_t in[64], out[64];
    size_t n = cj_hex(ALL_CONFIG, in, sizeof in);
    cj_cojp_config_t c;
    CHECK_EQ(cj_cojp_config_decode(in, n, &c, NULL), CJ_OK);
    CHECK_EQ(c.key_count, 1);
    CHECK_EQ(c.keys[0].key_id, 12);
    CHECK_EQ(c.keys[0].key_usage, CJ_COJP_KEY_USAGE_K2_ENC_MIC32);
    CHECK_HEX(c.keys[0].key, 16, K16);
    CHECK_HEX(c.short_id, 2, "0001");
    CHECK(c.has_lease_time);
    CHECK_EQ(c.lease_time, 24);
    CHECK_HEX(c.jrc_address, 16, "fe800000000000000000000000000001");
    CHECK(c.has_blacklist);
    CHECK_EQ(c.blacklist_count, 1);
    CHECK_HEX(c.blacklist[0].p, c.blacklist[0].len, "0102");
    CHECK(c.has_join_rate);
    CHECK_EQ(c.join_rate, 10);
    CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), (int)n);
    CHECK_MEM(out, n, in, n);
}

/* ---- decoder error paths ---------------------------------------------- */

enum { JR, CF, UC };

typedef struct vec {
    int kind;
    const char *hex;
    int rc;
    int has_param;
    int code;
    long long label;
    const char *addinfo; /* hex of the reported addinfo; "" for null */
} vec_t;

#define NONE 0, 0, 0, ""
#define UNS(l) 1, CJ_COJP_CODE_UNSUPPORTED, (l)
#define MAL(l) 1, CJ_COJP_CODE_MALFORMED, (l), ""

static const vec_t vectors[] = {
    /* CBOR level: nothing can be named. */
    {JR, "", CJ_ERR_TRUNCATED, NONE},
    {JR, "a10542ca", CJ_ERR_TRUNCATED, NONE},
    {JR, A_JOIN_REQUEST "00", CJ_ERR_TRAILING, NONE},
    {JR, "a1055f42cafeff", CJ_ERR_MALFORMED, NONE},  /* indefinite */
    {JR, "a105580242cafe", CJ_ERR_MALFORMED, NONE},  /* not shortest */
    {JR, "a1051c", CJ_ERR_MALFORMED, NONE},          /* reserved ai */
    {CF, "a107f93c00", CJ_ERR_MALFORMED, NONE},      /* float */
    {CF, "a107c100", CJ_ERR_MALFORMED, NONE},        /* tag */
    {CF, "a109818181818181818181818100", CJ_ERR_MALFORMED, NONE}, /* depth */
    {CF, "a000", CJ_ERR_TRAILING, NONE},
    {JR, "8105", CJ_ERR_TYPE, NONE},                 /* not a map */
    {CF, "42a0a0", CJ_ERR_TYPE, NONE},
    {JR, "a261610005" "42cafe", CJ_ERR_TYPE, NONE},  /* text label */
    {CF, "a1f400", CJ_ERR_TYPE, NONE},               /* false as label */
    /* Join_Request labels (Table 2). */
    {JR, "a20542cafe0900", CJ_ERR_UNSUPPORTED, UNS(9), ""},
    {JR, "a20542cafe0000", CJ_ERR_UNSUPPORTED, UNS(0), ""},
    {JR, "a20542cafe2000", CJ_ERR_UNSUPPORTED, UNS(-1), ""},
    {JR, "a20542cafe0200", CJ_ERR_UNSUPPORTED, UNS(2), ""},
    {JR, "a20542cafe1a0001000000", CJ_ERR_UNSUPPORTED, UNS(65536), ""},
    {JR, "a20542cafe3bffffffffffffffff00", CJ_ERR_UNSUPPORTED, NONE},
    {JR, "a20542cafe0542beef", CJ_ERR_MALFORMED, MAL(5)},
    {JR, "a301000542cafe0101", CJ_ERR_MALFORMED, MAL(1)},
    {JR, "a201400542cafe", CJ_ERR_TYPE, MAL(1)},
    {JR, "a201200542cafe", CJ_ERR_TYPE, MAL(1)},
    {JR, "a201020542cafe", CJ_ERR_RANGE, UNS(1), "02"},
    {JR, "a2011bffffffffffffffff0542cafe", CJ_ERR_RANGE, UNS(1),
     "1bffffffffffffffff"},
    {JR, "a1056161", CJ_ERR_TYPE, MAL(5)},
    {JR, "a10580", CJ_ERR_TYPE, MAL(5)},
    {JR, "a0", CJ_ERR_TYPE, MAL(5)},                 /* 5 is mandatory */
    {JR, "a10101", CJ_ERR_TYPE, MAL(5)},
    {JR, "a20542cafe0800", CJ_ERR_TYPE, MAL(8)},
    {JR, "a20542cafe0880", CJ_ERR_TYPE, MAL(8)},
    {JR, "a20542cafe08820002", CJ_ERR_TYPE, MAL(8)},
    {JR, "a20542cafe08836161" "02f6", CJ_ERR_TYPE, MAL(8)},
    {JR, "a20542cafe088300f6f6", CJ_ERR_TYPE, MAL(8)},
    {JR, "a20542cafe08833bffffffffffffffff02f6", CJ_ERR_RANGE, MAL(8)},
    {JR, "a20542cafe0883003bfffffffffffffffff6", CJ_ERR_RANGE, MAL(8)},
    /* Configuration labels (Table 4). */
    {CF, "a10100", CJ_ERR_UNSUPPORTED, UNS(1), ""},
    {CF, A_JOIN_REQUEST, CJ_ERR_UNSUPPORTED, UNS(5), ""},
    {CF, "a10880", CJ_ERR_UNSUPPORTED, UNS(8), ""},
    {CF, "a1390100f6", CJ_ERR_UNSUPPORTED, UNS(-257), ""},
    {CF, "a207000701", CJ_ERR_MALFORMED, MAL(7)},
    {CF, "a2038142af93038142af94", CJ_ERR_MALFORMED, MAL(3)},
    /* link-layer key set (sections 8.4.2, 8.4.3). */
    {CF, "a10201", CJ_ERR_TYPE, MAL(2)},
    {CF, "a10280", CJ_ERR_TYPE, MAL(2)},             /* "at least one" */
    {CF, "a1028250" K16 "01", CJ_ERR_TYPE, MAL(2)},  /* key first */
    {CF, "a1028101", CJ_ERR_TYPE, MAL(2)},           /* no key_value */
    {CF, "a102820100", CJ_ERR_TYPE, MAL(2)},         /* usage, no key */
    {CF, "a10282016161", CJ_ERR_TYPE, MAL(2)},
    {CF, "a102822050" K16, CJ_ERR_TYPE, MAL(2)},     /* nint key_id */
    {CF, "a1028401" "50" K16 "44aabbccdd41aa", CJ_ERR_TYPE, MAL(2)},
    {CF, "a1028301" "50" K16 "f6", CJ_ERR_TYPE, MAL(2)},
    {CF, "a1028218ff50" K16, CJ_ERR_RANGE, UNS(2), "8218ff50" K16},
    {CF, "a1028219010050" K16, CJ_ERR_RANGE, UNS(2), "8219010050" K16},
    {CF, "a10283010f50" K16, CJ_ERR_RANGE, UNS(2), "83010f50" K16},
    {CF, "a102830120" "50" K16, CJ_ERR_RANGE, UNS(2), "83012050" K16},
    {CF, "a10283013bffffffffffffffff50" K16, CJ_ERR_RANGE, UNS(2),
     "83013bffffffffffffffff50" K16},
    {CF, "a10282014f000102030405060708090a0b0c0d0e", CJ_ERR_RANGE, MAL(2)},
    {CF, "a102820151000102030405060708090a0b0c0d0e0f10", CJ_ERR_RANGE,
     MAL(2)},
    {CF, "a102820050" K16, CJ_ERR_RANGE, MAL(2)},    /* mode 0: addinfo */
    {CF, "a102830050" K16 "43aabbcc", CJ_ERR_RANGE, MAL(2)},
    {CF, "a102830150" K16 "43aabbcc", CJ_ERR_RANGE, MAL(2)},
    {CF, "a102830150" K16 "40", CJ_ERR_RANGE, MAL(2)},
    /* the first of two keys is fine, the second is not */
    {CF, "a1028401" "50" K16 "18ff50" K16, CJ_ERR_RANGE, UNS(2),
     "840150" K16 "18ff50" K16},
    /* short identifier (section 8.4.4) */
    {CF, "a10342af93", CJ_ERR_TYPE, MAL(3)},
    {CF, "a10380", CJ_ERR_TYPE, MAL(3)},
    {CF, "a1038342af930102", CJ_ERR_TYPE, MAL(3)},
    {CF, "a1038101", CJ_ERR_TYPE, MAL(3)},
    {CF, "a1038242af9320", CJ_ERR_TYPE, MAL(3)},
    {CF, "a1038242af9342af93", CJ_ERR_TYPE, MAL(3)},
    /* JRC address, blacklist, join rate */
    {CF, "a10400", CJ_ERR_TYPE, MAL(4)},
    {CF, "a1046161", CJ_ERR_TYPE, MAL(4)},
    {CF, "a10600", CJ_ERR_TYPE, MAL(6)},
    {CF, "a1068100", CJ_ERR_TYPE, MAL(6)},
    {CF, "a106824101a0", CJ_ERR_TYPE, MAL(6)},
    {CF, "a10720", CJ_ERR_TYPE, MAL(7)},
    {CF, "a10741aa", CJ_ERR_TYPE, MAL(7)},
    /* Unsupported_Configuration alone (section 8.4.5) */
    {UC, "", CJ_ERR_TRUNCATED, NONE},
    {UC, "830002", CJ_ERR_TRUNCATED, NONE},
    {UC, "830002f600", CJ_ERR_TRAILING, NONE},
    {UC, "9f0002f6ff", CJ_ERR_MALFORMED, NONE},
    {UC, "a0", CJ_ERR_TYPE, NONE},
    {UC, "80", CJ_ERR_TYPE, NONE},
    {UC, "820002", CJ_ERR_TYPE, NONE},
    {UC, "840002f600", CJ_ERR_TYPE, NONE},
    {UC, "834100" "02f6", CJ_ERR_TYPE, NONE},
    {UC, "8300f5f6", CJ_ERR_TYPE, NONE},
    {UC, "833bffffffffffffffff02f6", CJ_ERR_RANGE, NONE},
};

static int decode_kind(int kind, const uint8_t *in, size_t n,
                       cj_cojp_report_t *why)
{
    static cj_cojp_join_request_t jr;
    static cj_cojp_config_t c;
    static cj_cojp_unsupported_t u;
    memset(why, 0, sizeof *why);
    if (kind == JR)
        return cj_cojp_join_request_decode(in, n, &jr, why);
    if (kind == CF)
        return cj_cojp_config_decode(in, n, &c, why);
    return cj_cojp_unsupported_decode(in, n, &u);
}

TEST(cojp_decode_error_paths)
{
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const vec_t *v = &vectors[i];
        uint8_t in[128], ai[64];
        size_t n = cj_hex(v->hex, in, sizeof in);
        size_t ain = cj_hex(v->addinfo, ai, sizeof ai);
        cj_cojp_report_t why;
        int rc = decode_kind(v->kind, in, n, &why);
        if (rc != v->rc || why.has_param != (v->has_param != 0) ||
            (why.has_param &&
             (why.param.code != v->code || why.param.label != v->label ||
              !bytes_eq(why.param.addinfo, why.param.addinfo_len, ai,
                        ain))))
            cj_test_failf(__FILE__, __LINE__,
                          "vector %zu (%s): rc %d want %d, has %d "
                          "code %lld label %lld addinfo_len %zu",
                          i, v->hex, rc, v->rc, why.has_param,
                          (long long)why.param.code,
                          (long long)why.param.label,
                          why.param.addinfo_len);
    }
}

/* The struct of every vector that must decode without error and what
 * re-encoding gives (the preferred form). */
TEST(cojp_decode_accepts_and_normalises)
{
    static const struct {
        int kind;
        const char *in, *out;
    } ok[] = {
        {JR, "a201010542cafe", "a201010542cafe"},      /* role 6LBR */
        {JR, "a20542cafe0100", A_JOIN_REQUEST},        /* explicit 6LN */
        {JR, "a10540", "a10540"},                      /* empty network id */
        {JR, "a30883000af60101" "0542cafe", "a301010542cafe0883000af6"},
        {CF, "a0", "a0"},
        {CF, "a10680", "a10680"},                      /* empty blacklist */
        {CF, "a1071bffffffffffffffff", "a1071bffffffffffffffff"},
        {CF, "a1070000", NULL},                        /* trailing: no */
        {CF, "a102830100" "50" K16, "a102820150" K16}, /* usage 0 omitted */
        {CF, "a102830050" K16 "4a00010203040506070809",
         "a102830050" K16 "4a00010203040506070809"},   /* mode 0, 10 B */
        {CF, "a102830050" K16 "420001", "a102830050" K16 "420001"},
        {CF, "a1028301" "50" K16 "44aabbccdd",
         "a1028301" "50" K16 "44aabbccdd"},            /* mode 2 */
        {CF, "a102840e0250" K16 "480102030405060708",
         "a102840e0250" K16 "480102030405060708"},     /* mode 3 */
        {CF, "a20701038142af93", "a2038142af930701"},  /* any order */
        {CF, "a10382420000" "1b0000000100000000",
         "a10382420000" "1b0000000100000000"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint8_t in[128], want[128], out[128];
        size_t n = cj_hex(ok[i].in, in, sizeof in);
        cj_cojp_join_request_t jr;
        cj_cojp_config_t c;
        int rc, len;
        if (ok[i].kind == JR)
            rc = cj_cojp_join_request_decode(in, n, &jr, NULL);
        else
            rc = cj_cojp_config_decode(in, n, &c, NULL);
        if (ok[i].out == NULL) {
            CHECK(rc < 0);
            continue;
        }
        if (rc != CJ_OK) {
            cj_test_failf(__FILE__, __LINE__, "ok %zu: rc %d", i, rc);
            continue;
        }
        len = ok[i].kind == JR
                  ? cj_cojp_join_request_encode(&jr, out, sizeof out)
                  : cj_cojp_config_encode(&c, out, sizeof out);
        n = cj_hex(ok[i].out, want, sizeof want);
        CHECK_EQ(len, (int)n);
        if (len > 0)
            CHECK_MEM(out, (size_t)len, want, n);
    }
}

/* Sections 8.4.2 and 8.4.4.1: parameters the RFC says to drop silently. */
TEST(cojp_config_discarded_parameters)
{
    static const struct {
        const char *hex;
        uint8_t ignored;
    } v[] = {
        {"a1038142fffe", 1u << 3},           /* reserved 0xfffe */
        {"a1038242ffff01", 1u << 3},         /* reserved 0xffff */
        {"a1038143af9300", 1u << 3},         /* 3 bytes */
        {"a1038140", 1u << 3},               /* empty */
        {"a104" "4f000102030405060708090a0b0c0d0e", 1u << 4}, /* 15 B */
        {"a10440", 1u << 4},
        {"a20440038141aa", (1u << 3) | (1u << 4)},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t in[64], out[8];
        size_t n = cj_hex(v[i].hex, in, sizeof in);
        cj_cojp_config_t c;
        cj_cojp_report_t why;
        CHECK_EQ(cj_cojp_config_decode(in, n, &c, &why), CJ_OK);
        CHECK(!why.has_param);
        CHECK_EQ(c.ignored, v[i].ignored);
        CHECK(c.short_id == NULL);
        CHECK(!c.has_lease_time);
        CHECK(c.jrc_address == NULL);
        CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), 1);
        CHECK_HEX(out, 1, "a0");
    }
}

/* ---- limits ------------------------------------------------------------ */

static uint8_t big[1024];

TEST(cojp_config_too_many_keys)
{
    cj_cbor_enc_t e;
    cj_cojp_config_t c;
    cj_cojp_report_t why;
    size_t vstart;
    int n;
    cj_cbor_enc_init(&e, big, sizeof big);
    cj_cbor_put_map(&e, 1);
    cj_cbor_put_uint(&e, CJ_COJP_LABEL_KEY_SET);
    vstart = e.len;
    cj_cbor_put_array(&e, 2 * (CJ_COJP_MAX_KEYS + 1));
    for (unsigned i = 0; i <= CJ_COJP_MAX_KEYS; i++) {
        cj_cbor_put_uint(&e, i + 1);
        cj_cbor_put_bstr(&e, key_a, 16);
    }
    n = cj_cbor_enc_finish(&e);
    CHECK(n > 0);
    CHECK_EQ(cj_cojp_config_decode(big, (size_t)n, &c, &why),
             CJ_ERR_NOSPACE);
    CHECK(why.has_param);
    CHECK_EQ(why.param.code, CJ_COJP_CODE_UNSUPPORTED);
    CHECK_EQ(why.param.label, CJ_COJP_LABEL_KEY_SET);
    CHECK_MEM(why.param.addinfo, why.param.addinfo_len, big + vstart,
              (size_t)n - vstart);
}

TEST(cojp_config_too_many_blacklisted)
{
    static const uint8_t id[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    cj_cbor_enc_t e;
    cj_cojp_config_t c;
    cj_cojp_report_t why;
    size_t vstart;
    int n;
    cj_cbor_enc_init(&e, big, sizeof big);
    cj_cbor_put_map(&e, 1);
    cj_cbor_put_uint(&e, CJ_COJP_LABEL_BLACKLIST);
    vstart = e.len;
    cj_cbor_put_array(&e, CJ_COJP_MAX_BLACKLIST + 1);
    for (unsigned i = 0; i <= CJ_COJP_MAX_BLACKLIST; i++)
        cj_cbor_put_bstr(&e, id, sizeof id);
    n = cj_cbor_enc_finish(&e);
    CHECK_EQ(cj_cojp_config_decode(big, (size_t)n, &c, &why),
             CJ_ERR_NOSPACE);
    CHECK(why.has_param);
    CHECK_EQ(why.param.code, CJ_COJP_CODE_UNSUPPORTED);
    CHECK_EQ(why.param.label, CJ_COJP_LABEL_BLACKLIST);
    CHECK_MEM(why.param.addinfo, why.param.addinfo_len, big + vstart,
              (size_t)n - vstart);
}

TEST(cojp_unsupported_too_many)
{
    static const uint8_t pan[2] = {0xca, 0xfe};
    cj_cbor_enc_t e;
    cj_cojp_join_request_t jr;
    cj_cojp_unsupported_t u;
    cj_cojp_report_t why;
    size_t vstart;
    int n;
    cj_cbor_enc_init(&e, big, sizeof big);
    cj_cbor_put_map(&e, 2);
    cj_cbor_put_uint(&e, CJ_COJP_LABEL_NETWORK_ID);
    cj_cbor_put_bstr(&e, pan, 2);
    cj_cbor_put_uint(&e, CJ_COJP_LABEL_UNSUPPORTED);
    vstart = e.len;
    cj_cbor_put_array(&e, 3 * (CJ_COJP_MAX_UNSUPPORTED + 1));
    for (unsigned i = 0; i <= CJ_COJP_MAX_UNSUPPORTED; i++) {
        cj_cbor_put_uint(&e, CJ_COJP_CODE_UNSUPPORTED);
        cj_cbor_put_uint(&e, 100 + i);
        cj_cbor_put_null(&e);
    }
    n = cj_cbor_enc_finish(&e);
    CHECK_EQ(cj_cojp_join_request_decode(big, (size_t)n, &jr, &why),
             CJ_ERR_NOSPACE);
    CHECK(why.has_param);
    CHECK_EQ(why.param.code, CJ_COJP_CODE_UNSUPPORTED);
    CHECK_EQ(why.param.label, CJ_COJP_LABEL_UNSUPPORTED);
    CHECK_MEM(why.param.addinfo, why.param.addinfo_len, big + vstart,
              (size_t)n - vstart);
    CHECK_EQ(cj_cojp_unsupported_decode(big + vstart, (size_t)n - vstart,
                                        &u),
             CJ_ERR_NOSPACE);
}

/* ---- round trips ------------------------------------------------------- */

/* Every parameter, every table at its limit, every Key ID Mode. */
static void fill_full_config(cj_cojp_config_t *c)
{
    static const uint8_t sid[2] = {0x00, 0x01};
    static const uint8_t jrc[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                    0,    0,    0,    0,    0, 0, 0, 1};
    static const uint8_t ai[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    static const uint8_t ids[8] = {0xa0, 1, 2, 3, 4, 5, 6, 7};
    static const size_t ai_len[4] = {8, 0, 4, 8};
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < CJ_COJP_MAX_KEYS; i++) {
        cj_cojp_key_t *k = &c->keys[i];
        k->key_id = (uint8_t)(i % 4 == 0 ? 0 : CJ_COJP_MAX_KEY_ID - i);
        k->key_usage = (uint8_t)((i * 5) % (CJ_COJP_KEY_USAGE_MAX + 1));
        k->key = key_a;
        k->addinfo_len = ai_len[i % 4];
        k->addinfo = k->addinfo_len ? ai : NULL;
    }
    c->key_count = CJ_COJP_MAX_KEYS;
    c->short_id = sid;
    c->has_lease_time = true;
    c->lease_time = UINT64_C(0x100000000);
    c->jrc_address = jrc;
    c->has_blacklist = true;
    c->blacklist_count = CJ_COJP_MAX_BLACKLIST;
    for (size_t i = 0; i < CJ_COJP_MAX_BLACKLIST; i++) {
        c->blacklist[i].p = ids;
        c->blacklist[i].len = i % sizeof ids; /* 0..7 bytes */
    }
    c->has_join_rate = true;
    c->join_rate = 0; /* zero: drop all join traffic (section 8.4.2) */
}

TEST(cojp_config_round_trip_full)
{
    cj_cojp_config_t c, d;
    uint8_t buf2[1024];
    int n, n2;
    fill_full_config(&c);
    n = cj_cojp_config_encode(&c, NULL, 0);
    CHECK(n > 0);
    CHECK_EQ(cj_cojp_config_encode(&c, big, sizeof big), n);
    CHECK_EQ(cj_cojp_config_decode(big, (size_t)n, &d, NULL), CJ_OK);
    CHECK(config_eq(&c, &d));
    CHECK_EQ(d.ignored, 0);
    n2 = cj_cojp_config_encode(&d, buf2, sizeof buf2);
    CHECK_EQ(n2, n);
    CHECK_MEM(buf2, (size_t)n2, big, (size_t)n);
    for (int cap = 0; cap < n; cap++)
        CHECK_EQ(cj_cojp_config_encode(&c, buf2, (size_t)cap),
                 CJ_ERR_NOSPACE);
}

TEST(cojp_config_round_trip_subsets)
{
    /* Each subset of the five parameters of the full configuration. */
    for (unsigned mask = 0; mask < 32; mask++) {
        cj_cojp_config_t c, d;
        int n;
        fill_full_config(&c);
        if (!(mask & 1))
            c.key_count = 0;
        if (!(mask & 2))
            c.short_id = NULL, c.has_lease_time = false;
        if (!(mask & 4))
            c.jrc_address = NULL;
        if (!(mask & 8))
            c.has_blacklist = false, c.blacklist_count = 0;
        if (!(mask & 16))
            c.has_join_rate = false;
        n = cj_cojp_config_encode(&c, big, sizeof big);
        CHECK(n > 0);
        CHECK_EQ(cj_cojp_config_decode(big, (size_t)n, &d, NULL), CJ_OK);
        CHECK(config_eq(&c, &d));
    }
}

TEST(cojp_truncation_fails_cleanly)
{
    static const char *const objs[] = {A_JOIN_REQUEST, A_CONFIG, ALL_CONFIG,
                                       "a301010542cafe0886000af6010281f5"};
    cj_cojp_config_t c;
    int n;
    for (size_t k = 0; k < sizeof objs / sizeof objs[0]; k++) {
        uint8_t in[128];
        size_t len = cj_hex(objs[k], in, sizeof in);
        for (size_t cut = 0; cut < len; cut++) {
            cj_cojp_report_t why;
            CHECK_EQ(decode_kind(JR, in, cut, &why), CJ_ERR_TRUNCATED);
            CHECK(!why.has_param);
            CHECK_EQ(decode_kind(CF, in, cut, &why), CJ_ERR_TRUNCATED);
        }
    }
    fill_full_config(&c);
    n = cj_cojp_config_encode(&c, big, sizeof big);
    for (int cut = 0; cut < n; cut++) {
        cj_cojp_report_t why;
        CHECK_EQ(decode_kind(CF, big, (size_t)cut, &why), CJ_ERR_TRUNCATED);
    }
    {
        uint8_t in[32];
        size_t len = cj_hex("86000af601023a00010000", in, sizeof in);
        cj_cojp_report_t why;
        CHECK_EQ(decode_kind(UC, in, len, &why), CJ_OK);
        for (size_t cut = 0; cut < len; cut++)
            CHECK_EQ(decode_kind(UC, in, cut, &why), CJ_ERR_TRUNCATED);
    }
}

TEST(cojp_unsupported_round_trip)
{
    /* Section 8.4.5: null addinfo, and a key set value as addinfo. */
    static const char *const hex = "86" "000af6" "0102" "8201" "50" A_KEY;
    uint8_t in[64], out[64];
    size_t n = cj_hex(hex, in, sizeof in);
    cj_cojp_unsupported_t u, v;
    CHECK_EQ(cj_cojp_unsupported_decode(in, n, &u), CJ_OK);
    CHECK_EQ(u.count, 2);
    CHECK_EQ(u.params[0].code, CJ_COJP_CODE_UNSUPPORTED);
    CHECK_EQ(u.params[0].label, 10);
    CHECK(u.params[0].addinfo == NULL);
    CHECK_EQ(u.params[0].addinfo_len, 0);
    CHECK_EQ(u.params[1].code, CJ_COJP_CODE_MALFORMED);
    CHECK_EQ(u.params[1].label, CJ_COJP_LABEL_KEY_SET);
    CHECK_HEX(u.params[1].addinfo, u.params[1].addinfo_len,
              "820150" A_KEY);
    CHECK_EQ(cj_cojp_unsupported_encode(&u, NULL, 0), (int)n);
    CHECK_EQ(cj_cojp_unsupported_encode(&u, out, sizeof out), (int)n);
    CHECK_MEM(out, n, in, n);
    CHECK_EQ(cj_cojp_unsupported_decode(out, n, &v), CJ_OK);
    CHECK(unsupported_eq(&u, &v));
    CHECK_EQ(cj_cojp_unsupported_encode(&u, out, n - 1), CJ_ERR_NOSPACE);

    /* negative and large codes and labels survive */
    memset(&u, 0, sizeof u);
    u.count = 1;
    u.params[0].code = INT64_MIN;
    u.params[0].label = INT64_MAX;
    n = (size_t)cj_cojp_unsupported_encode(&u, out, sizeof out);
    CHECK_HEX(out, n, "833b7fffffffffffffff1b7ffffffffffffffff6");
    CHECK_EQ(cj_cojp_unsupported_decode(out, n, &v), CJ_OK);
    CHECK(unsupported_eq(&u, &v));
}

/* A report feeds straight into an Unsupported_Configuration, which a
 * pledge puts into its next Join_Request (section 8.3.1). */
TEST(cojp_report_to_join_request)
{
    static const uint8_t pan[2] = {0xca, 0xfe};
    uint8_t in[64], out[128];
    size_t n = cj_hex("a10283010f50" K16, in, sizeof in);
    cj_cojp_config_t c;
    cj_cojp_report_t why;
    cj_cojp_join_request_t jr, back;
    int len;
    CHECK_EQ(cj_cojp_config_decode(in, n, &c, &why), CJ_ERR_RANGE);
    CHECK(why.has_param);
    memset(&jr, 0, sizeof jr);
    jr.role = CJ_COJP_ROLE_6LBR;
    jr.network_id = pan;
    jr.network_id_len = sizeof pan;
    jr.has_unsupported = true;
    jr.unsupported.count = 1;
    jr.unsupported.params[0] = why.param;
    len = cj_cojp_join_request_encode(&jr, out, sizeof out);
    CHECK_HEX(out, (size_t)len,
              "a3 0101 0542cafe 0883 00 02 83010f50" K16);
    CHECK_EQ(cj_cojp_join_request_decode(out, (size_t)len, &back, NULL),
             CJ_OK);
    CHECK_EQ(back.role, CJ_COJP_ROLE_6LBR);
    CHECK(back.has_unsupported);
    CHECK(unsupported_eq(&jr.unsupported, &back.unsupported));
    for (int cap = 0; cap < len; cap++)
        CHECK_EQ(cj_cojp_join_request_encode(&jr, out, (size_t)cap),
                 CJ_ERR_NOSPACE);
}

/* ---- encoder refusals -------------------------------------------------- */

TEST(cojp_encode_invalid)
{
    static const uint8_t bad_item[2] = {0x82, 0x01}; /* truncated */
    static const uint8_t two_items[2] = {0x00, 0x00};
    static const uint8_t ffff[2] = {0xff, 0xff};
    static const uint8_t ai3[3] = {1, 2, 3};
    cj_cojp_join_request_t jr;
    cj_cojp_unsupported_t u;
    cj_cojp_config_t c;
    uint8_t out[256];

    memset(&jr, 0, sizeof jr);
    jr.role = 2;
    CHECK_EQ(cj_cojp_join_request_encode(&jr, out, sizeof out),
             CJ_ERR_INVALID);
    jr.role = 0;
    jr.network_id_len = 1; /* NULL pointer */
    CHECK_EQ(cj_cojp_join_request_encode(&jr, out, sizeof out),
             CJ_ERR_INVALID);
    jr.network_id_len = 0; /* NULL/0 is an empty network identifier */
    CHECK_EQ(cj_cojp_join_request_encode(&jr, out, sizeof out), 3);
    CHECK_HEX(out, 3, "a10540");
    jr.has_unsupported = true; /* with count 0 */
    CHECK_EQ(cj_cojp_join_request_encode(&jr, out, sizeof out),
             CJ_ERR_INVALID);

    memset(&u, 0, sizeof u);
    CHECK_EQ(cj_cojp_unsupported_encode(&u, out, sizeof out),
             CJ_ERR_INVALID);
    u.count = CJ_COJP_MAX_UNSUPPORTED + 1;
    CHECK_EQ(cj_cojp_unsupported_encode(&u, out, sizeof out),
             CJ_ERR_INVALID);
    u.count = 1;
    u.params[0].addinfo = bad_item;
    u.params[0].addinfo_len = sizeof bad_item;
    CHECK_EQ(cj_cojp_unsupported_encode(&u, out, sizeof out),
             CJ_ERR_INVALID);
    u.params[0].addinfo = two_items;
    CHECK_EQ(cj_cojp_unsupported_encode(&u, out, sizeof out),
             CJ_ERR_INVALID);
    u.params[0].addinfo = NULL;
    CHECK_EQ(cj_cojp_unsupported_encode(&u, out, sizeof out),
             CJ_ERR_INVALID);

    fill_full_config(&c);
    c.key_count = CJ_COJP_MAX_KEYS + 1;
    CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), CJ_ERR_INVALID);
    fill_full_config(&c);
    c.blacklist_count = CJ_COJP_MAX_BLACKLIST + 1;
    CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), CJ_ERR_INVALID);
    fill_full_config(&c);
    c.short_id = ffff;
    CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), CJ_ERR_INVALID);
    fill_full_config(&c);
    c.keys[1].key_id = 255;
    CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), CJ_ERR_INVALID);
    fill_full_config(&c);
    c.keys[1].key_usage = CJ_COJP_KEY_USAGE_MAX + 1;
    CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), CJ_ERR_INVALID);
    fill_full_config(&c);
    c.keys[1].key = NULL;
    CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), CJ_ERR_INVALID);
    fill_full_config(&c);
    c.keys[0].addinfo = NULL; /* key_id 0 needs an address */
    c.keys[0].addinfo_len = 0;
    CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), CJ_ERR_INVALID);
    fill_full_config(&c);
    c.keys[1].addinfo = ai3;
    c.keys[1].addinfo_len = sizeof ai3;
    CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), CJ_ERR_INVALID);
    fill_full_config(&c);
    c.blacklist[1].p = NULL;
    c.blacklist[1].len = 1;
    CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), CJ_ERR_INVALID);
}

/* Boundaries of two validity rules.  Section 8.4.4.1: of the short
 * addresses only 0xfffe and 0xffff are reserved, so 0xfffd and 0xff00
 * are kept (both ways).  Section 8.4.3.3: key_addinfo is at most 10
 * bytes (a long and a short address, Key ID Mode 0x00) or 8 (key
 * source, mode 0x03): longer is a malformed key set. */
TEST(cojp_short_id_and_addinfo_boundaries)
{
    static const char *const kept[] = {"a1038142fffd", "a1038142ff00"};
    static const char *const too_long[] = {
        "a102830050" K16 "4b000102030405060708090a",       /* id 0, 11 B */
        "a102830150" K16 "4b000102030405060708090a",       /* id 1, 11 B */
        "a102830150" K16 "50000102030405060708090a0b0c0d0e0f", /* 16 B */
    };
    uint8_t in[64], out[64];
    cj_cojp_config_t c;
    cj_cojp_report_t why;
    size_t n;

    for (size_t i = 0; i < 2; i++) {
        n = cj_hex(kept[i], in, sizeof in);
        CHECK_EQ(cj_cojp_config_decode(in, n, &c, &why), CJ_OK);
        CHECK(c.short_id != NULL);
        CHECK_EQ(c.ignored, 0);
        if (c.short_id != NULL)
            CHECK_MEM(c.short_id, 2, in + 4, 2);
        CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), (int)n);
        CHECK_MEM(out, n, in, n);
    }
    for (size_t i = 0; i < 3; i++) {
        n = cj_hex(too_long[i], in, sizeof in);
        CHECK_EQ(cj_cojp_config_decode(in, n, &c, &why), CJ_ERR_RANGE);
        CHECK(why.has_param);
        CHECK_EQ(why.param.code, CJ_COJP_CODE_MALFORMED);
        CHECK_EQ(why.param.label, CJ_COJP_LABEL_KEY_SET);
    }
    /* the encoder applies the same rule */
    {
        static const uint8_t ai[11] = {0};
        uint8_t key[16] = {0};
        memset(&c, 0, sizeof c);
        c.key_count = 1;
        c.keys[0].key_id = 0;
        c.keys[0].key = key;
        c.keys[0].addinfo = ai;
        c.keys[0].addinfo_len = 11;
        CHECK_EQ(cj_cojp_config_encode(&c, out, sizeof out), CJ_ERR_INVALID);
        c.keys[0].addinfo_len = 10;
        CHECK(cj_cojp_config_encode(&c, out, sizeof out) > 0);
    }
}
