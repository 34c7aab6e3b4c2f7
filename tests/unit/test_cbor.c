/*
 * Unit tests for the CBOR subset (src/codec/cbor.c).
 *
 * Vectors come from RFC 8949: Appendix A (examples of encoded items) and
 * Appendix F.1 (items that are not well-formed).  The rest are edge cases
 * of the strictness rules in cojp/cbor.h: preferred serialization
 * (section 4.2.1), UTF-8 text (section 3.1, RFC 3629), nesting bound.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cojp/cbor.h"
#include "../test.h"

/* Validate the hex vector; returns the result of cj_cbor_validate. */
static int validate_hex(const char *hex)
{
    uint8_t b[256];
    size_t n = cj_hex(hex, b, sizeof b);
    return cj_cbor_validate(b, n);
}

/* Every proper prefix of a valid item must fail (never crash); the whole
 * item must validate.  The prefix is copied to an exact-size buffer so
 * the sanitizers see any overread. */
static void check_prefixes(const uint8_t *b, size_t n)
{
    CHECK(n <= 512);
    if (n > 512)
        return;
    CHECK_EQ(cj_cbor_validate(b, n), CJ_OK);
    for (size_t k = 0; k < n; k++) {
        uint8_t cut[512];
        int r;
        memcpy(cut, b, k);
        r = cj_cbor_validate(k ? cut : NULL, k);
        CHECK_EQ(r, CJ_ERR_TRUNCATED);
        {
            cj_cbor_dec_t d;
            cj_cbor_dec_init(&d, cut, k);
            CHECK(cj_cbor_skip(&d) < 0);
            CHECK(d.p == cut);
        }
    }
}

/* ---- RFC 8949 Appendix A: integers ------------------------------------ */

static const struct {
    uint64_t v;
    const char *hex;
} uint_vec[] = {
    /* RFC 8949 Appendix A, Table 6 */
    {0, "00"},
    {1, "01"},
    {10, "0a"},
    {23, "17"},
    {24, "1818"},
    {25, "1819"},
    {100, "1864"},
    {1000, "1903e8"},
    {1000000, "1a000f4240"},
    {1000000000000ull, "1b000000e8d4a51000"},
    {18446744073709551615ull, "1bffffffffffffffff"},
};

TEST(cbor_appendix_a_uint)
{
    for (size_t i = 0; i < sizeof uint_vec / sizeof uint_vec[0]; i++) {
        uint8_t want[16], out[16];
        size_t n = cj_hex(uint_vec[i].hex, want, sizeof want);
        cj_cbor_enc_t e;
        cj_cbor_dec_t d;
        uint64_t v = 7;
        int64_t s = 7;

        cj_cbor_enc_init(&e, out, sizeof out);
        cj_cbor_put_uint(&e, uint_vec[i].v);
        CHECK_EQ(cj_cbor_enc_finish(&e), n);
        CHECK_MEM(out, e.len, want, n);

        if (uint_vec[i].v <= (uint64_t)INT64_MAX) {
            cj_cbor_enc_init(&e, out, sizeof out);
            cj_cbor_put_int(&e, (int64_t)uint_vec[i].v);
            CHECK_MEM(out, e.len, want, n);
        }

        cj_cbor_dec_init(&d, want, n);
        CHECK_EQ(cj_cbor_peek_type(&d), CJ_CBOR_UINT);
        CHECK_EQ(cj_cbor_get_uint(&d, &v), CJ_OK);
        CHECK(v == uint_vec[i].v);
        CHECK(cj_cbor_dec_done(&d));

        cj_cbor_dec_init(&d, want, n);
        if (uint_vec[i].v <= (uint64_t)INT64_MAX) {
            CHECK_EQ(cj_cbor_get_int(&d, &s), CJ_OK);
            CHECK(s == (int64_t)uint_vec[i].v);
            CHECK(cj_cbor_dec_done(&d));
        } else {
            CHECK_EQ(cj_cbor_get_int(&d, &s), CJ_ERR_RANGE);
            CHECK(d.p == want);
        }
        CHECK_EQ(cj_cbor_validate(want, n), CJ_OK);
        check_prefixes(want, n);
    }
}

static const struct {
    int64_t v;
    const char *hex;
} nint_vec[] = {
    /* RFC 8949 Appendix A, Table 6 */
    {-1, "20"},
    {-10, "29"},
    {-100, "3863"},
    {-1000, "3903e7"},
};

TEST(cbor_appendix_a_nint)
{
    for (size_t i = 0; i < sizeof nint_vec / sizeof nint_vec[0]; i++) {
        uint8_t want[16], out[16];
        size_t n = cj_hex(nint_vec[i].hex, want, sizeof want);
        cj_cbor_enc_t e;
        cj_cbor_dec_t d;
        int64_t s = 0;
        uint64_t a = 0;

        cj_cbor_enc_init(&e, out, sizeof out);
        cj_cbor_put_int(&e, nint_vec[i].v);
        CHECK_EQ(cj_cbor_enc_finish(&e), n);
        CHECK_MEM(out, e.len, want, n);

        cj_cbor_enc_init(&e, out, sizeof out);
        cj_cbor_put_nint_arg(&e, (uint64_t)(-1 - nint_vec[i].v));
        CHECK_MEM(out, e.len, want, n);

        cj_cbor_dec_init(&d, want, n);
        CHECK_EQ(cj_cbor_peek_type(&d), CJ_CBOR_NINT);
        CHECK_EQ(cj_cbor_get_int(&d, &s), CJ_OK);
        CHECK_EQ(s, nint_vec[i].v);
        CHECK(cj_cbor_dec_done(&d));

        cj_cbor_dec_init(&d, want, n);
        CHECK_EQ(cj_cbor_get_nint_arg(&d, &a), CJ_OK);
        CHECK(a == (uint64_t)(-1 - nint_vec[i].v));

        /* A negative integer is not a uint. */
        cj_cbor_dec_init(&d, want, n);
        CHECK_EQ(cj_cbor_get_uint(&d, &a), CJ_ERR_TYPE);
        CHECK(d.p == want);
        check_prefixes(want, n);
    }
}

TEST(cbor_appendix_a_nint_min)
{
    /* RFC 8949 Appendix A: -18446744073709551616 */
    static const char hex[] = "3bffffffffffffffff";
    uint8_t want[9], out[9];
    size_t n = cj_hex(hex, want, sizeof want);
    cj_cbor_enc_t e;
    cj_cbor_dec_t d;
    uint64_t a = 0;
    int64_t s = 0;

    cj_cbor_enc_init(&e, out, sizeof out);
    cj_cbor_put_nint_arg(&e, UINT64_MAX);
    CHECK_EQ(cj_cbor_enc_finish(&e), 9);
    CHECK_MEM(out, e.len, want, n);

    cj_cbor_dec_init(&d, want, n);
    CHECK_EQ(cj_cbor_get_nint_arg(&d, &a), CJ_OK);
    CHECK(a == UINT64_MAX);
    CHECK(cj_cbor_dec_done(&d));
    cj_cbor_dec_init(&d, want, n);
    CHECK_EQ(cj_cbor_get_int(&d, &s), CJ_ERR_RANGE);
    CHECK(d.p == want);
    CHECK_EQ(cj_cbor_validate(want, n), CJ_OK);
    check_prefixes(want, n);
}

TEST(cbor_int64_limits)
{
    uint8_t out[9];
    cj_cbor_enc_t e;
    cj_cbor_dec_t d;
    int64_t s = 0;

    cj_cbor_enc_init(&e, out, sizeof out);
    cj_cbor_put_int(&e, INT64_MIN);
    CHECK_EQ(cj_cbor_enc_finish(&e), 9);
    CHECK_HEX(out, e.len, "3b7fffffffffffffff");
    cj_cbor_dec_init(&d, out, e.len);
    CHECK_EQ(cj_cbor_get_int(&d, &s), CJ_OK);
    CHECK(s == INT64_MIN);

    cj_cbor_enc_init(&e, out, sizeof out);
    cj_cbor_put_int(&e, INT64_MAX);
    CHECK_HEX(out, e.len, "1b7fffffffffffffff");
    cj_cbor_dec_init(&d, out, e.len);
    CHECK_EQ(cj_cbor_get_int(&d, &s), CJ_OK);
    CHECK(s == INT64_MAX);

    /* -2^63 - 1: one past int64_t */
    cj_cbor_dec_init(&d, (const uint8_t *)"\x3b\x80\0\0\0\0\0\0\0", 9);
    CHECK_EQ(cj_cbor_get_int(&d, &s), CJ_ERR_RANGE);
}

TEST(cbor_head_boundaries)
{
    /* Each width at both of its ends (preferred serialization, RFC 8949
     * section 4.2.1). */
    static const struct {
        uint64_t v;
        const char *hex;
    } v[] = {
        {0xff, "18ff"},
        {0x100, "190100"},
        {0xffff, "19ffff"},
        {0x10000, "1a00010000"},
        {0xffffffffu, "1affffffff"},
        {0x100000000ull, "1b0000000100000000"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t out[9];
        uint64_t got = 0;
        cj_cbor_enc_t e;
        cj_cbor_dec_t d;
        cj_cbor_enc_init(&e, out, sizeof out);
        cj_cbor_put_uint(&e, v[i].v);
        CHECK_HEX(out, e.len, v[i].hex);
        cj_cbor_dec_init(&d, out, e.len);
        CHECK_EQ(cj_cbor_get_uint(&d, &got), CJ_OK);
        CHECK(got == v[i].v);
        /* the bare head writer gives the same bytes */
        memset(out, 0, sizeof out);
        CHECK_EQ(cj_cbor_head(out, CJ_CBOR_UINT, v[i].v), e.len);
        CHECK_HEX(out, e.len, v[i].hex);
    }
    {
        uint8_t out[9];
        /* -24 and -25 (RFC 8949 Appendix A), a byte string head of 24 */
        CHECK_EQ(cj_cbor_head(out, CJ_CBOR_NINT, 23), 1);
        CHECK_HEX(out, 1, "37");
        CHECK_EQ(cj_cbor_head(out, CJ_CBOR_NINT, 24), 2);
        CHECK_HEX(out, 2, "3818");
        CHECK_EQ(cj_cbor_head(out, CJ_CBOR_BSTR, 24), 2);
        CHECK_HEX(out, 2, "5818");
        CHECK_EQ(cj_cbor_head(out, CJ_CBOR_UINT, UINT64_MAX), 9);
        CHECK_HEX(out, 9, "1bffffffffffffffff");
    }
}

/* ---- RFC 8949 Appendix A: strings ------------------------------------- */

static const struct {
    bool text;
    const char *val; /* raw bytes as a C string */
    size_t len;
    const char *hex;
} str_vec[] = {
    /* RFC 8949 Appendix A, Table 6 */
    {false, "", 0, "40"},
    {false, "\x01\x02\x03\x04", 4, "4401020304"},
    {true, "", 0, "60"},
    {true, "a", 1, "6161"},
    {true, "IETF", 4, "6449455446"},
    {true, "\"\\", 2, "62225c"},
    {true, "\xc3\xbc", 2, "62c3bc"},             /* U+00FC */
    {true, "\xe6\xb0\xb4", 3, "63e6b0b4"},       /* U+6C34 */
    {true, "\xf0\x90\x85\x91", 4, "64f0908591"}, /* U+10151 */
};

TEST(cbor_appendix_a_strings)
{
    for (size_t i = 0; i < sizeof str_vec / sizeof str_vec[0]; i++) {
        uint8_t want[16], out[16];
        size_t n = cj_hex(str_vec[i].hex, want, sizeof want);
        cj_cbor_enc_t e;
        cj_cbor_dec_t d;
        const uint8_t *p = NULL;
        const char *s = NULL;
        size_t len = 99;

        cj_cbor_enc_init(&e, out, sizeof out);
        if (str_vec[i].text)
            cj_cbor_put_tstr(&e, str_vec[i].val, str_vec[i].len);
        else
            cj_cbor_put_bstr(&e, (const uint8_t *)str_vec[i].val,
                             str_vec[i].len);
        CHECK_EQ(cj_cbor_enc_finish(&e), n);
        CHECK_MEM(out, e.len, want, n);

        cj_cbor_dec_init(&d, want, n);
        if (str_vec[i].text) {
            CHECK_EQ(cj_cbor_peek_type(&d), CJ_CBOR_TSTR);
            CHECK_EQ(cj_cbor_get_bstr(&d, &p, &len), CJ_ERR_TYPE);
            CHECK_EQ(cj_cbor_get_tstr(&d, &s, &len), CJ_OK);
            CHECK_MEM(s, len, str_vec[i].val, str_vec[i].len);
            CHECK(s == (const char *)want + 1);
        } else {
            CHECK_EQ(cj_cbor_peek_type(&d), CJ_CBOR_BSTR);
            CHECK_EQ(cj_cbor_get_tstr(&d, &s, &len), CJ_ERR_TYPE);
            CHECK_EQ(cj_cbor_get_bstr(&d, &p, &len), CJ_OK);
            CHECK_MEM(p, len, str_vec[i].val, str_vec[i].len);
            CHECK(p == want + 1);
        }
        CHECK(cj_cbor_dec_done(&d));
        check_prefixes(want, n);
    }
}

/* ---- RFC 8949 Appendix A: simple values ------------------------------- */

TEST(cbor_appendix_a_simple)
{
    uint8_t out[4];
    cj_cbor_enc_t e;
    cj_cbor_dec_t d;
    bool b = true;

    /* RFC 8949 Appendix A: false f4, true f5, null f6 */
    cj_cbor_enc_init(&e, out, sizeof out);
    cj_cbor_put_bool(&e, false);
    cj_cbor_put_bool(&e, true);
    cj_cbor_put_null(&e);
    CHECK_EQ(cj_cbor_enc_finish(&e), 3);
    CHECK_HEX(out, e.len, "f4f5f6");

    cj_cbor_dec_init(&d, out, 3);
    CHECK_EQ(cj_cbor_peek_type(&d), CJ_CBOR_SIMPLE);
    CHECK_EQ(cj_cbor_get_null(&d), CJ_ERR_TYPE);
    CHECK_EQ(cj_cbor_get_bool(&d, &b), CJ_OK);
    CHECK(!b);
    CHECK_EQ(cj_cbor_get_bool(&d, &b), CJ_OK);
    CHECK(b);
    CHECK_EQ(cj_cbor_get_bool(&d, &b), CJ_ERR_TYPE);
    CHECK(d.p == out + 2);
    CHECK_EQ(cj_cbor_get_null(&d), CJ_OK);
    CHECK(cj_cbor_dec_done(&d));
    CHECK_EQ(cj_cbor_peek_type(&d), CJ_ERR_TRUNCATED);
    CHECK_EQ(cj_cbor_get_null(&d), CJ_ERR_TRUNCATED);

    CHECK_EQ(validate_hex("f4"), CJ_OK);
    CHECK_EQ(validate_hex("f5"), CJ_OK);
    CHECK_EQ(validate_hex("f6"), CJ_OK);
}

/* ---- RFC 8949 Appendix A: arrays and maps ------------------------------ */

/* RFC 8949 Appendix A, Table 6: the definite-length containers. */
static const char *const container_vec[] = {
    "80",
    "83010203",
    "8301820203820405",
    "98190102030405060708090a0b0c0d0e0f101112131415161718181819",
    "a0",
    "a201020304",
    "a26161016162820203",
    "826161a161626163",
    "a56161614161626142616361436164614461656145",
};

/* Encode each of container_vec with the typed put calls. */
static void encode_container(size_t i, cj_cbor_enc_t *e)
{
    switch (i) {
    case 0: /* [] */
        cj_cbor_put_array(e, 0);
        break;
    case 1: /* [1, 2, 3] */
        cj_cbor_put_array(e, 3);
        for (int k = 1; k <= 3; k++)
            cj_cbor_put_uint(e, (uint64_t)k);
        break;
    case 2: /* [1, [2, 3], [4, 5]] */
        cj_cbor_put_array(e, 3);
        cj_cbor_put_uint(e, 1);
        cj_cbor_put_array(e, 2);
        cj_cbor_put_uint(e, 2);
        cj_cbor_put_uint(e, 3);
        cj_cbor_put_array(e, 2);
        cj_cbor_put_uint(e, 4);
        cj_cbor_put_uint(e, 5);
        break;
    case 3: /* [1, ..., 25] */
        cj_cbor_put_array(e, 25);
        for (int k = 1; k <= 25; k++)
            cj_cbor_put_int(e, k);
        break;
    case 4: /* {} */
        cj_cbor_put_map(e, 0);
        break;
    case 5: /* {1: 2, 3: 4} */
        cj_cbor_put_map(e, 2);
        for (int k = 1; k <= 4; k++)
            cj_cbor_put_uint(e, (uint64_t)k);
        break;
    case 6: /* {"a": 1, "b": [2, 3]} */
        cj_cbor_put_map(e, 2);
        cj_cbor_put_tstr(e, "a", 1);
        cj_cbor_put_uint(e, 1);
        cj_cbor_put_tstr(e, "b", 1);
        cj_cbor_put_array(e, 2);
        cj_cbor_put_uint(e, 2);
        cj_cbor_put_uint(e, 3);
        break;
    case 7: /* ["a", {"b": "c"}] */
        cj_cbor_put_array(e, 2);
        cj_cbor_put_tstr(e, "a", 1);
        cj_cbor_put_map(e, 1);
        cj_cbor_put_tstr(e, "b", 1);
        cj_cbor_put_tstr(e, "c", 1);
        break;
    case 8: /* {"a": "A", ..., "e": "E"} */
        cj_cbor_put_map(e, 5);
        for (char c = 'a'; c <= 'e'; c++) {
            char up = (char)(c - 'a' + 'A');
            cj_cbor_put_tstr(e, &c, 1);
            cj_cbor_put_tstr(e, &up, 1);
        }
        break;
    }
}

TEST(cbor_appendix_a_containers_encode)
{
    for (size_t i = 0; i < sizeof container_vec / sizeof container_vec[0];
         i++) {
        uint8_t want[64], out[64];
        size_t n = cj_hex(container_vec[i], want, sizeof want);
        cj_cbor_enc_t e;

        cj_cbor_enc_init(&e, out, sizeof out);
        encode_container(i, &e);
        CHECK_EQ(cj_cbor_enc_finish(&e), n);
        CHECK_MEM(out, e.len, want, n);

        /* Dry run gives the same size. */
        cj_cbor_enc_init(&e, NULL, 0);
        encode_container(i, &e);
        CHECK_EQ(cj_cbor_enc_finish(&e), n);

        /* Every too-small buffer fails with NOSPACE, writes nothing past
         * cap, and still counts the full size. */
        for (size_t cap = 0; cap < n; cap++) {
            memset(out, 0xee, sizeof out);
            cj_cbor_enc_init(&e, out, cap);
            encode_container(i, &e);
            CHECK_EQ(cj_cbor_enc_finish(&e), CJ_ERR_NOSPACE);
            CHECK_EQ(e.len, n);
            CHECK(out[cap] == 0xee);
        }

        CHECK_EQ(cj_cbor_validate(want, n), CJ_OK);
        check_prefixes(want, n);
    }
}

TEST(cbor_appendix_a_containers_decode)
{
    uint8_t b[64];
    size_t n, cnt = 0, len = 0;
    uint64_t v = 0;
    int64_t s = 0;
    const char *t = NULL;
    cj_cbor_dec_t d;

    /* [] */
    n = cj_hex("80", b, sizeof b);
    cj_cbor_dec_init(&d, b, n);
    CHECK_EQ(cj_cbor_peek_type(&d), CJ_CBOR_ARRAY);
    CHECK_EQ(cj_cbor_get_map(&d, &cnt), CJ_ERR_TYPE);
    CHECK_EQ(cj_cbor_get_array(&d, &cnt), CJ_OK);
    CHECK_EQ(cnt, 0);
    CHECK(cj_cbor_dec_done(&d));

    /* [1, 2, 3] */
    n = cj_hex("83010203", b, sizeof b);
    cj_cbor_dec_init(&d, b, n);
    CHECK_EQ(cj_cbor_get_array(&d, &cnt), CJ_OK);
    CHECK_EQ(cnt, 3);
    for (uint64_t k = 1; k <= 3; k++) {
        CHECK_EQ(cj_cbor_get_uint(&d, &v), CJ_OK);
        CHECK_EQ(v, k);
    }
    CHECK(cj_cbor_dec_done(&d));

    /* [1, [2, 3], [4, 5]] */
    n = cj_hex("8301820203820405", b, sizeof b);
    cj_cbor_dec_init(&d, b, n);
    CHECK_EQ(cj_cbor_get_array(&d, &cnt), CJ_OK);
    CHECK_EQ(cnt, 3);
    CHECK_EQ(cj_cbor_get_uint(&d, &v), CJ_OK);
    CHECK_EQ(v, 1);
    for (uint64_t k = 2; k <= 4; k += 2) {
        CHECK_EQ(cj_cbor_get_array(&d, &cnt), CJ_OK);
        CHECK_EQ(cnt, 2);
        CHECK_EQ(cj_cbor_get_uint(&d, &v), CJ_OK);
        CHECK_EQ(v, k);
        CHECK_EQ(cj_cbor_get_uint(&d, &v), CJ_OK);
        CHECK_EQ(v, k + 1);
    }
    CHECK(cj_cbor_dec_done(&d));
    /* skip over the nested item from the start */
    cj_cbor_dec_init(&d, b, n);
    CHECK_EQ(cj_cbor_skip(&d), CJ_OK);
    CHECK(cj_cbor_dec_done(&d));

    /* [1, ..., 25] */
    n = cj_hex("98190102030405060708090a0b0c0d0e0f10111213141516171818"
               "1819", b, sizeof b);
    cj_cbor_dec_init(&d, b, n);
    CHECK_EQ(cj_cbor_get_array(&d, &cnt), CJ_OK);
    CHECK_EQ(cnt, 25);
    for (int64_t k = 1; k <= 25; k++) {
        CHECK_EQ(cj_cbor_get_int(&d, &s), CJ_OK);
        CHECK_EQ(s, k);
    }
    CHECK(cj_cbor_dec_done(&d));

    /* {} */
    n = cj_hex("a0", b, sizeof b);
    cj_cbor_dec_init(&d, b, n);
    CHECK_EQ(cj_cbor_peek_type(&d), CJ_CBOR_MAP);
    CHECK_EQ(cj_cbor_get_array(&d, &cnt), CJ_ERR_TYPE);
    CHECK_EQ(cj_cbor_get_map(&d, &cnt), CJ_OK);
    CHECK_EQ(cnt, 0);
    CHECK(cj_cbor_dec_done(&d));

    /* {1: 2, 3: 4} */
    n = cj_hex("a201020304", b, sizeof b);
    cj_cbor_dec_init(&d, b, n);
    CHECK_EQ(cj_cbor_get_map(&d, &cnt), CJ_OK);
    CHECK_EQ(cnt, 2);
    for (uint64_t k = 1; k <= 4; k++) {
        CHECK_EQ(cj_cbor_get_uint(&d, &v), CJ_OK);
        CHECK_EQ(v, k);
    }
    CHECK(cj_cbor_dec_done(&d));

    /* {"a": 1, "b": [2, 3]} */
    n = cj_hex("a26161016162820203", b, sizeof b);
    cj_cbor_dec_init(&d, b, n);
    CHECK_EQ(cj_cbor_get_map(&d, &cnt), CJ_OK);
    CHECK_EQ(cnt, 2);
    CHECK_EQ(cj_cbor_get_tstr(&d, &t, &len), CJ_OK);
    CHECK_MEM(t, len, "a", 1);
    CHECK_EQ(cj_cbor_get_uint(&d, &v), CJ_OK);
    CHECK_EQ(v, 1);
    CHECK_EQ(cj_cbor_get_tstr(&d, &t, &len), CJ_OK);
    CHECK_MEM(t, len, "b", 1);
    CHECK_EQ(cj_cbor_get_array(&d, &cnt), CJ_OK);
    CHECK_EQ(cnt, 2);
    CHECK_EQ(cj_cbor_get_uint(&d, &v), CJ_OK);
    CHECK_EQ(v, 2);
    CHECK_EQ(cj_cbor_get_uint(&d, &v), CJ_OK);
    CHECK_EQ(v, 3);
    CHECK(cj_cbor_dec_done(&d));

    /* ["a", {"b": "c"}] */
    n = cj_hex("826161a161626163", b, sizeof b);
    cj_cbor_dec_init(&d, b, n);
    CHECK_EQ(cj_cbor_get_array(&d, &cnt), CJ_OK);
    CHECK_EQ(cnt, 2);
    CHECK_EQ(cj_cbor_get_tstr(&d, &t, &len), CJ_OK);
    CHECK_MEM(t, len, "a", 1);
    CHECK_EQ(cj_cbor_get_map(&d, &cnt), CJ_OK);
    CHECK_EQ(cnt, 1);
    CHECK_EQ(cj_cbor_get_tstr(&d, &t, &len), CJ_OK);
    CHECK_MEM(t, len, "b", 1);
    CHECK_EQ(cj_cbor_get_tstr(&d, &t, &len), CJ_OK);
    CHECK_MEM(t, len, "c", 1);
    CHECK(cj_cbor_dec_done(&d));

    /* {"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"} */
    n = cj_hex("a56161614161626142616361436164614461656145", b, sizeof b);
    cj_cbor_dec_init(&d, b, n);
    CHECK_EQ(cj_cbor_get_map(&d, &cnt), CJ_OK);
    CHECK_EQ(cnt, 5);
    for (char c = 'a'; c <= 'e'; c++) {
        char up = (char)(c - 'a' + 'A');
        CHECK_EQ(cj_cbor_get_tstr(&d, &t, &len), CJ_OK);
        CHECK_MEM(t, len, &c, 1);
        CHECK_EQ(cj_cbor_get_tstr(&d, &t, &len), CJ_OK);
        CHECK_MEM(t, len, &up, 1);
    }
    CHECK(cj_cbor_dec_done(&d));
}

/* ---- RFC 8949 Appendix A: examples outside the subset ------------------ */

TEST(cbor_appendix_a_unsupported)
{
    /* RFC 8949 Appendix A, Table 6: bignums, floats, undefined, simple
     * values, tags and indefinite lengths. */
    static const char *const v[] = {
        "c249010000000000000000", "c349010000000000000000",
        "f90000", "f98000", "f93c00", "fb3ff199999999999a", "f93e00",
        "f97bff", "fa47c35000", "fa7f7fffff", "fb7e37e43c8800759c",
        "f90001", "f90400", "f9c400", "fbc010666666666666", "f97c00",
        "f97e00", "f9fc00", "fa7f800000", "fa7fc00000", "faff800000",
        "fb7ff0000000000000", "fb7ff8000000000000", "fbfff0000000000000",
        "f7", "f0", "f8ff",
        "c074323031332d30332d32315432303a30343a30305a",
        "c11a514b67b0", "c1fb41d452d9ec200000", "d74401020304",
        "d818456449455446",
        "d82076687474703a2f2f7777772e6578616d706c652e636f6d",
        "5f42010243030405ff", "7f657374726561646d696e67ff", "9fff",
        "9f018202039f0405ffff", "9f01820203820405ff",
        "83018202039f0405ff", "83019f0203ff820405",
        "9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff",
        "bf61610161629f0203ffff", "826161bf61626163ff",
        "bf6346756ef563416d7421ff",
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int r = validate_hex(v[i]);
        if (r != CJ_ERR_UNSUPPORTED)
            cj_test_failf(__FILE__, __LINE__, "%s: %d", v[i], r);
    }
}

/* ---- RFC 8949 Appendix F.1: not well-formed ---------------------------- */

TEST(cbor_appendix_f1_truncated)
{
    /* RFC 8949 Appendix F.1: end of input in a head; definite-length
     * strings with short data; definite-length containers not closed. */
    static const char *const v[] = {
        "18", "19", "1a", "1b", "1901", "1a0102", "1b01020304050607",
        "38", "58", "78", "98", "9a01ff00", "b8", "d8", "f8", "f900",
        "fa0000", "fb000000",
        "41", "61", "5affffffff00", "5bffffffffffffffff010203",
        "7affffffff00", "7b7fffffffffffffff010203",
        "81", "818181818181818181", "8200", "a1", "a20102", "a100",
        "a2000000",
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int r = validate_hex(v[i]);
        if (r != CJ_ERR_TRUNCATED)
            cj_test_failf(__FILE__, __LINE__, "%s: %d", v[i], r);
    }
}

TEST(cbor_appendix_f1_rejected)
{
    /* RFC 8949 Appendix F.1: tag without content, unclosed and
     * ill-formed indefinite-length items, misplaced breaks.  Tags and
     * indefinite lengths are outside the subset, so these fail as
     * unsupported before their inner error is reached, except where the
     * first error is a lone or misplaced break. */
    static const struct {
        const char *hex;
        int err;
    } v[] = {
        {"c0", CJ_ERR_UNSUPPORTED},
        {"5f4100", CJ_ERR_UNSUPPORTED},
        {"7f6100", CJ_ERR_UNSUPPORTED},
        {"9f", CJ_ERR_UNSUPPORTED},
        {"9f0102", CJ_ERR_UNSUPPORTED},
        {"bf", CJ_ERR_UNSUPPORTED},
        {"bf01020102", CJ_ERR_UNSUPPORTED},
        {"819f", CJ_ERR_UNSUPPORTED},
        {"9f8000", CJ_ERR_UNSUPPORTED},
        {"9f9f9f9f9fffffffff", CJ_ERR_UNSUPPORTED},
        {"9f819f819f9fffffff", CJ_ERR_UNSUPPORTED},
        /* Subkind 3: bad chunks of indefinite-length strings */
        {"5f00ff", CJ_ERR_UNSUPPORTED},
        {"5f21ff", CJ_ERR_UNSUPPORTED},
        {"5f6100ff", CJ_ERR_UNSUPPORTED},
        {"5f80ff", CJ_ERR_UNSUPPORTED},
        {"5fa0ff", CJ_ERR_UNSUPPORTED},
        {"5fc000ff", CJ_ERR_UNSUPPORTED},
        {"5fe0ff", CJ_ERR_UNSUPPORTED},
        {"7f4100ff", CJ_ERR_UNSUPPORTED},
        {"5f5f4100ffff", CJ_ERR_UNSUPPORTED},
        {"7f7f6100ffff", CJ_ERR_UNSUPPORTED},
        /* Subkind 4: break outside an indefinite-length item */
        {"ff", CJ_ERR_MALFORMED},
        {"81ff", CJ_ERR_MALFORMED},
        {"8200ff", CJ_ERR_MALFORMED},
        {"a1ff", CJ_ERR_TRUNCATED},
        {"a1ff00", CJ_ERR_MALFORMED},
        {"a100ff", CJ_ERR_MALFORMED},
        {"a20000ff", CJ_ERR_TRUNCATED},
        {"9f81ff", CJ_ERR_UNSUPPORTED},
        {"9f829f819f9fffffffff", CJ_ERR_UNSUPPORTED},
        {"bf00ff", CJ_ERR_UNSUPPORTED},
        {"bf000000ff", CJ_ERR_UNSUPPORTED},
        /* Subkind 2: two-byte simple values below 32 */
        {"f800", CJ_ERR_MALFORMED},
        {"f801", CJ_ERR_MALFORMED},
        {"f818", CJ_ERR_MALFORMED},
        {"f81f", CJ_ERR_MALFORMED},
        /* Subkind 5: additional information 31 on major types 0, 1, 6 */
        {"1f", CJ_ERR_MALFORMED},
        {"3f", CJ_ERR_MALFORMED},
        {"df", CJ_ERR_MALFORMED},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int r = validate_hex(v[i].hex);
        if (r != v[i].err)
            cj_test_failf(__FILE__, __LINE__, "%s: %d, want %d", v[i].hex,
                          r, v[i].err);
    }
}

TEST(cbor_appendix_f1_reserved_ai)
{
    /* RFC 8949 Appendix F.1 subkind 1: additional information 28..30 in
     * every major type. */
    for (unsigned mt = 0; mt < 8; mt++) {
        for (unsigned ai = 28; ai <= 30; ai++) {
            uint8_t b[2] = {(uint8_t)(mt << 5 | ai), 0};
            cj_cbor_dec_t d;
            uint64_t v;
            CHECK_EQ(cj_cbor_validate(b, 1), CJ_ERR_MALFORMED);
            CHECK_EQ(cj_cbor_validate(b, 2), CJ_ERR_MALFORMED);
            cj_cbor_dec_init(&d, b, 2);
            CHECK_EQ(cj_cbor_get_uint(&d, &v), CJ_ERR_MALFORMED);
            CHECK_EQ(cj_cbor_skip(&d), CJ_ERR_MALFORMED);
            CHECK(d.p == b);
        }
    }
}

/* ---- strictness beyond the RFC examples -------------------------------- */

TEST(cbor_noncanonical)
{
    /* Preferred serialization, RFC 8949 section 4.2.1: the argument must
     * use the shortest head. */
    static const char *const v[] = {
        "1817", "1800", "190017", "1900ff", "1a0000ffff", "1a00000017",
        "1b00000000ffffffff", "1b0000000000000000", "3817", "39000f",
        "5800", "580161", "590000", "7800", "9800", "99000101",
        "b800", "ba000000010101",
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int r = validate_hex(v[i]);
        if (r != CJ_ERR_NONCANONICAL)
            cj_test_failf(__FILE__, __LINE__, "%s: %d", v[i], r);
    }
    /* Also inside a container, and through the typed getters with the
     * cursor left in place. */
    CHECK_EQ(validate_hex("82011817"), CJ_ERR_NONCANONICAL);
    {
        uint8_t b[3] = {0x19, 0x00, 0x17};
        cj_cbor_dec_t d;
        uint64_t u = 0;
        int64_t s;
        cj_cbor_dec_init(&d, b, 3);
        CHECK_EQ(cj_cbor_get_uint(&d, &u), CJ_ERR_NONCANONICAL);
        CHECK_EQ(cj_cbor_get_int(&d, &s), CJ_ERR_NONCANONICAL);
        CHECK(d.p == b);
    }
}

TEST(cbor_trailing)
{
    CHECK_EQ(validate_hex("0000"), CJ_ERR_TRAILING);
    CHECK_EQ(validate_hex("8001"), CJ_ERR_TRAILING);
    CHECK_EQ(validate_hex("a0ff"), CJ_ERR_TRAILING);
    CHECK_EQ(validate_hex("6161" "00"), CJ_ERR_TRAILING);
    CHECK_EQ(cj_cbor_validate(NULL, 0), CJ_ERR_TRUNCATED);
}

TEST(cbor_count_exceeds_input)
{
    /* Counts that the remaining bytes cannot hold are truncated input,
     * found from the head alone (no walk over a huge count). */
    static const char *const v[] = {
        "9bffffffffffffffff", "bbffffffffffffffff", "9a0001000001",
        "8201", "a2010203", "5bffffffffffffffff", "7b0000000100000000",
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t b[16];
        size_t n = cj_hex(v[i], b, sizeof b);
        cj_cbor_dec_t d;
        size_t cnt = 0;
        CHECK_EQ(cj_cbor_validate(b, n), CJ_ERR_TRUNCATED);
        cj_cbor_dec_init(&d, b, n);
        if (b[0] >> 5 == CJ_CBOR_ARRAY)
            CHECK_EQ(cj_cbor_get_array(&d, &cnt), CJ_ERR_TRUNCATED);
        if (b[0] >> 5 == CJ_CBOR_MAP)
            CHECK_EQ(cj_cbor_get_map(&d, &cnt), CJ_ERR_TRUNCATED);
        CHECK(d.p == b);
    }
    /* Exactly enough: a map of 2 pairs needs 4 more bytes. */
    CHECK_EQ(validate_hex("a201020304"), CJ_OK);
    CHECK_EQ(validate_hex("a2010203"), CJ_ERR_TRUNCATED);
}

TEST(cbor_depth)
{
    uint8_t b[CJ_CBOR_MAX_DEPTH + 3];
    cj_cbor_dec_t d;

    /* CJ_CBOR_MAX_DEPTH nested arrays around 0: accepted. */
    memset(b, 0x81, sizeof b);
    b[CJ_CBOR_MAX_DEPTH] = 0x00;
    CHECK_EQ(cj_cbor_validate(b, CJ_CBOR_MAX_DEPTH + 1), CJ_OK);
    /* Innermost empty array as the last level: still accepted. */
    b[CJ_CBOR_MAX_DEPTH - 1] = 0x80;
    CHECK_EQ(cj_cbor_validate(b, CJ_CBOR_MAX_DEPTH), CJ_OK);

    /* One level more, empty or not, map or array: rejected. */
    memset(b, 0x81, sizeof b);
    b[CJ_CBOR_MAX_DEPTH] = 0x80;
    CHECK_EQ(cj_cbor_validate(b, CJ_CBOR_MAX_DEPTH + 1), CJ_ERR_DEPTH);
    b[CJ_CBOR_MAX_DEPTH] = 0xa0;
    CHECK_EQ(cj_cbor_validate(b, CJ_CBOR_MAX_DEPTH + 1), CJ_ERR_DEPTH);
    b[CJ_CBOR_MAX_DEPTH] = 0x81;
    b[CJ_CBOR_MAX_DEPTH + 1] = 0x00;
    CHECK_EQ(cj_cbor_validate(b, CJ_CBOR_MAX_DEPTH + 2), CJ_ERR_DEPTH);
    cj_cbor_dec_init(&d, b, CJ_CBOR_MAX_DEPTH + 2);
    CHECK_EQ(cj_cbor_skip(&d), CJ_ERR_DEPTH);
    CHECK(d.p == b);

    /* Deep via maps: {0: {0: ... }} */
    {
        uint8_t m[2 * CJ_CBOR_MAX_DEPTH + 4];
        size_t n = 0;
        for (int i = 0; i <= CJ_CBOR_MAX_DEPTH; i++) {
            m[n++] = 0xa1;
            m[n++] = 0x00;
        }
        m[n++] = 0x00;
        CHECK_EQ(cj_cbor_validate(m, n), CJ_ERR_DEPTH);
        CHECK_EQ(cj_cbor_validate(m + 2, n - 2), CJ_OK);
    }

    /* Depth returns after siblings: [[[..]], [[..]]] each within bound. */
    {
        uint8_t w[2 * CJ_CBOR_MAX_DEPTH + 2];
        size_t n = 0;
        w[n++] = 0x82;
        for (int k = 0; k < 2; k++) {
            for (int i = 0; i < CJ_CBOR_MAX_DEPTH - 2; i++)
                w[n++] = 0x81;
            w[n++] = 0x80;
        }
        CHECK_EQ(cj_cbor_validate(w, n), CJ_OK);
    }

    /* Huge hostile nesting costs no stack: fails at the bound. */
    {
        static uint8_t big[100000];
        memset(big, 0x81, sizeof big);
        CHECK_EQ(cj_cbor_validate(big, sizeof big), CJ_ERR_DEPTH);
    }
}

TEST(cbor_utf8)
{
    static const struct {
        const char *hex;
        int err;
    } v[] = {
        /* accepted: the edges of each UTF-8 length (RFC 3629 section 4) */
        {"617f", CJ_OK},
        {"62c280", CJ_OK},
        {"62dfbf", CJ_OK},
        {"63e0a080", CJ_OK},
        {"63ed9fbf", CJ_OK},     /* U+D7FF */
        {"63ee8080", CJ_OK},     /* U+E000 */
        {"63efbfbf", CJ_OK},
        {"64f0908080", CJ_OK},
        {"64f48fbfbf", CJ_OK},   /* U+10FFFF */
        {"6100", CJ_OK},
        /* rejected */
        {"6180", CJ_ERR_MALFORMED},       /* lone continuation */
        {"61bf", CJ_ERR_MALFORMED},
        {"62c0af", CJ_ERR_MALFORMED},     /* overlong '/' */
        {"62c1bf", CJ_ERR_MALFORMED},     /* overlong */
        {"63e08080", CJ_ERR_MALFORMED},   /* overlong U+0000 */
        {"63e09fbf", CJ_ERR_MALFORMED},   /* overlong U+07FF */
        {"64f08fbfbf", CJ_ERR_MALFORMED}, /* overlong U+FFFF */
        {"63eda080", CJ_ERR_MALFORMED},   /* U+D800 */
        {"63edbfbf", CJ_ERR_MALFORMED},   /* U+DFFF */
        {"64f4908080", CJ_ERR_MALFORMED}, /* U+110000 */
        {"64f5808080", CJ_ERR_MALFORMED},
        {"64f7bfbfbf", CJ_ERR_MALFORMED},
        {"65f888808080", CJ_ERR_MALFORMED}, /* 5-byte form */
        {"64f8908080", CJ_ERR_MALFORMED},
        {"61fe", CJ_ERR_MALFORMED},
        {"61ff", CJ_ERR_MALFORMED},
        {"61c3", CJ_ERR_MALFORMED},       /* sequence cut by the length */
        {"62e6b0", CJ_ERR_MALFORMED},
        {"63f09085", CJ_ERR_MALFORMED},
        {"62c341", CJ_ERR_MALFORMED},     /* bad continuation */
        {"63e641b4", CJ_ERR_MALFORMED},
        {"64f0904141", CJ_ERR_MALFORMED},
        {"8161c3", CJ_ERR_MALFORMED},     /* inside a container */
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int r = validate_hex(v[i].hex);
        if (r != v[i].err)
            cj_test_failf(__FILE__, __LINE__, "%s: %d, want %d", v[i].hex,
                          r, v[i].err);
    }
    /* The getter rejects and keeps the cursor; bytes are fine in bstr. */
    {
        uint8_t b[3] = {0x62, 0xed, 0xa0};
        cj_cbor_dec_t d;
        const char *s;
        size_t n;
        cj_cbor_dec_init(&d, b, 3);
        CHECK_EQ(cj_cbor_get_tstr(&d, &s, &n), CJ_ERR_MALFORMED);
        CHECK(d.p == b);
        b[0] = 0x42;
        CHECK_EQ(cj_cbor_validate(b, 3), CJ_OK);
    }
}

/* ---- encoder behaviour -------------------------------------------------- */

/* A message touching every put call. */
static void encode_all(cj_cbor_enc_t *e)
{
    static const uint8_t raw[] = {0xa1, 0x01, 0x02};
    cj_cbor_put_array(e, 11);
    cj_cbor_put_uint(e, 500);
    cj_cbor_put_int(e, -500);
    cj_cbor_put_nint_arg(e, 1ull << 40);
    cj_cbor_put_bstr(e, (const uint8_t *)"\x01\x02\x03", 3);
    cj_cbor_put_tstr(e, "CoJP", 4);
    cj_cbor_put_bstr_head(e, sizeof raw);
    cj_cbor_put_raw(e, raw, sizeof raw);
    cj_cbor_put_map(e, 1);
    cj_cbor_put_uint(e, 1);
    cj_cbor_put_bstr(e, NULL, 0);
    cj_cbor_put_bool(e, true);
    cj_cbor_put_bool(e, false);
    cj_cbor_put_null(e);
    cj_cbor_put_int(e, 0);
}

static const char encode_all_hex[] =
    "8b" "1901f4" "3901f3" "3b0000010000000000" "43010203" "64436f4a50"
    "43a10102" "a1" "01" "40" "f5" "f4" "f6" "00";

TEST(cbor_encode_dry_run_and_nospace)
{
    uint8_t out[64];
    cj_cbor_enc_t e;
    int size;

    cj_cbor_enc_init(&e, NULL, 0);
    encode_all(&e);
    size = cj_cbor_enc_finish(&e);
    CHECK(size > 0);

    cj_cbor_enc_init(&e, out, sizeof out);
    encode_all(&e);
    CHECK_EQ(cj_cbor_enc_finish(&e), size);
    CHECK_HEX(out, e.len, encode_all_hex);
    CHECK_EQ(cj_cbor_validate(out, e.len), CJ_OK);

    /* Dry run ignores cap. */
    cj_cbor_enc_init(&e, NULL, 3);
    encode_all(&e);
    CHECK_EQ(cj_cbor_enc_finish(&e), size);

    for (int cap = 0; cap < size; cap++) {
        memset(out, 0xee, sizeof out);
        cj_cbor_enc_init(&e, out, (size_t)cap);
        encode_all(&e);
        CHECK_EQ(cj_cbor_enc_finish(&e), CJ_ERR_NOSPACE);
        CHECK(out[cap] == 0xee);
        CHECK_EQ(e.len, size);
    }

    /* Sticky: once full, a later small item that would fit the room left
     * is not written. */
    memset(out, 0xee, sizeof out);
    cj_cbor_enc_init(&e, out, 2);
    cj_cbor_put_uint(&e, 0x1234); /* 3 bytes: does not fit */
    cj_cbor_put_uint(&e, 1);      /* 1 byte: would fit, must not land */
    CHECK_EQ(cj_cbor_enc_finish(&e), CJ_ERR_NOSPACE);
    CHECK(out[0] == 0xee);
    CHECK(e.err == CJ_ERR_NOSPACE);

    /* An empty buffer is fine until something is written. */
    cj_cbor_enc_init(&e, out, 0);
    CHECK_EQ(cj_cbor_enc_finish(&e), 0);
    cj_cbor_put_raw(&e, NULL, 0);
    CHECK_EQ(cj_cbor_enc_finish(&e), 0);
    cj_cbor_put_null(&e);
    CHECK_EQ(cj_cbor_enc_finish(&e), CJ_ERR_NOSPACE);
}

TEST(cbor_cursor_unchanged_on_failure)
{
    /* "1a 00 01" : uint with a truncated 4-byte argument */
    static const uint8_t trunc[] = {0x1a, 0x00, 0x01};
    static const uint8_t tstr[] = {0x61, 0x41};
    cj_cbor_dec_t d;
    uint64_t v;
    int64_t s;
    const uint8_t *p;
    const char *t;
    size_t n;
    bool b;

    cj_cbor_dec_init(&d, trunc, sizeof trunc);
    CHECK_EQ(cj_cbor_get_uint(&d, &v), CJ_ERR_TRUNCATED);
    CHECK_EQ(cj_cbor_get_int(&d, &s), CJ_ERR_TRUNCATED);
    CHECK_EQ(cj_cbor_skip(&d), CJ_ERR_TRUNCATED);
    CHECK(d.p == trunc);

    cj_cbor_dec_init(&d, tstr, sizeof tstr);
    CHECK_EQ(cj_cbor_get_uint(&d, &v), CJ_ERR_TYPE);
    CHECK_EQ(cj_cbor_get_nint_arg(&d, &v), CJ_ERR_TYPE);
    CHECK_EQ(cj_cbor_get_int(&d, &s), CJ_ERR_TYPE);
    CHECK_EQ(cj_cbor_get_bstr(&d, &p, &n), CJ_ERR_TYPE);
    CHECK_EQ(cj_cbor_get_array(&d, &n), CJ_ERR_TYPE);
    CHECK_EQ(cj_cbor_get_map(&d, &n), CJ_ERR_TYPE);
    CHECK_EQ(cj_cbor_get_bool(&d, &b), CJ_ERR_TYPE);
    CHECK_EQ(cj_cbor_get_null(&d), CJ_ERR_TYPE);
    CHECK(d.p == tstr);
    CHECK_EQ(cj_cbor_get_tstr(&d, &t, &n), CJ_OK);
    CHECK(d.p == tstr + 2);
    CHECK_EQ(cj_cbor_get_tstr(&d, &t, &n), CJ_ERR_TRUNCATED);
    CHECK_EQ(cj_cbor_skip(&d), CJ_ERR_TRUNCATED);
    CHECK(d.p == tstr + 2);

    /* skip fails deep inside a container: cursor still at the start */
    {
        static const uint8_t bad[] = {0x82, 0x81, 0x01, 0x81, 0xf7};
        cj_cbor_dec_init(&d, bad, sizeof bad);
        CHECK_EQ(cj_cbor_skip(&d), CJ_ERR_UNSUPPORTED);
        CHECK(d.p == bad);
    }
}

TEST(cbor_skip_sequence)
{
    /* skip walks items one by one through a sequence (RFC 8742 style) */
    uint8_t b[64];
    size_t n = cj_hex("00 8301820203820405 a26161016162820203 f6 6449455446",
                      b, sizeof b);
    cj_cbor_dec_t d;
    const char *s;
    size_t len;
    int items = 0;

    cj_cbor_dec_init(&d, b, n);
    while (!cj_cbor_dec_done(&d)) {
        const uint8_t *before = d.p;
        if (cj_cbor_peek_type(&d) == CJ_CBOR_TSTR) {
            CHECK_EQ(cj_cbor_get_tstr(&d, &s, &len), CJ_OK);
            CHECK_MEM(s, len, "IETF", 4);
        } else {
            CHECK_EQ(cj_cbor_skip(&d), CJ_OK);
        }
        CHECK(d.p > before);
        items++;
        if (items > 10)
            break;
    }
    CHECK_EQ(items, 5);
}

TEST(cbor_round_trip)
{
    /* Integers across every head width, both signs. */
    static const uint64_t u[] = {
        0, 1, 23, 24, 255, 256, 65535, 65536, 0xffffffffu,
        0x100000000ull, 0x123456789abcdefull, UINT64_MAX,
    };
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        uint8_t out[32];
        cj_cbor_enc_t e;
        cj_cbor_dec_t d;
        uint64_t a = 0, b = 0;
        cj_cbor_enc_init(&e, out, sizeof out);
        cj_cbor_put_array(&e, 2);
        cj_cbor_put_uint(&e, u[i]);
        cj_cbor_put_nint_arg(&e, u[i]);
        CHECK(cj_cbor_enc_finish(&e) > 0);
        CHECK_EQ(cj_cbor_validate(out, e.len), CJ_OK);
        cj_cbor_dec_init(&d, out, e.len);
        size_t cnt = 0;
        CHECK_EQ(cj_cbor_get_array(&d, &cnt), CJ_OK);
        CHECK_EQ(cnt, 2);
        CHECK_EQ(cj_cbor_get_uint(&d, &a), CJ_OK);
        CHECK_EQ(cj_cbor_get_nint_arg(&d, &b), CJ_OK);
        CHECK(a == u[i] && b == u[i]);
        CHECK(cj_cbor_dec_done(&d));
    }

    /* Long strings: the 1-, 2-byte length heads. */
    {
        static uint8_t data[300], out[310];
        cj_cbor_enc_t e;
        cj_cbor_dec_t d;
        const uint8_t *p;
        size_t n;
        for (size_t i = 0; i < sizeof data; i++)
            data[i] = (uint8_t)i;
        cj_cbor_enc_init(&e, out, sizeof out);
        cj_cbor_put_bstr(&e, data, sizeof data);
        CHECK_EQ(cj_cbor_enc_finish(&e), 303);
        CHECK_HEX(out, 3, "59012c");
        cj_cbor_dec_init(&d, out, e.len);
        CHECK_EQ(cj_cbor_get_bstr(&d, &p, &n), CJ_OK);
        CHECK_MEM(p, n, data, sizeof data);
        check_prefixes(out, e.len);
    }

    /* The decoder is the encoder's inverse on the all-calls message. */
    {
        uint8_t b[64];
        size_t n = cj_hex(encode_all_hex, b, sizeof b), cnt, len;
        cj_cbor_dec_t d;
        uint64_t v;
        int64_t s;
        const uint8_t *p;
        const char *t;
        bool f;
        cj_cbor_dec_init(&d, b, n);
        CHECK_EQ(cj_cbor_get_array(&d, &cnt), CJ_OK);
        CHECK_EQ(cnt, 11);
        CHECK_EQ(cj_cbor_get_uint(&d, &v), CJ_OK);
        CHECK_EQ(v, 500);
        CHECK_EQ(cj_cbor_get_int(&d, &s), CJ_OK);
        CHECK_EQ(s, -500);
        CHECK_EQ(cj_cbor_get_nint_arg(&d, &v), CJ_OK);
        CHECK(v == 1ull << 40);
        CHECK_EQ(cj_cbor_get_bstr(&d, &p, &len), CJ_OK);
        CHECK_MEM(p, len, "\x01\x02\x03", 3);
        CHECK_EQ(cj_cbor_get_tstr(&d, &t, &len), CJ_OK);
        CHECK_MEM(t, len, "CoJP", 4);
        CHECK_EQ(cj_cbor_get_bstr(&d, &p, &len), CJ_OK);
        CHECK_EQ(cj_cbor_validate(p, len), CJ_OK); /* bstr-wrapped CBOR */
        CHECK_EQ(cj_cbor_get_map(&d, &cnt), CJ_OK);
        CHECK_EQ(cnt, 1);
        CHECK_EQ(cj_cbor_get_uint(&d, &v), CJ_OK);
        CHECK_EQ(cj_cbor_get_bstr(&d, &p, &len), CJ_OK);
        CHECK_EQ(len, 0);
        CHECK_EQ(cj_cbor_get_bool(&d, &f), CJ_OK);
        CHECK(f);
        CHECK_EQ(cj_cbor_get_bool(&d, &f), CJ_OK);
        CHECK(!f);
        CHECK_EQ(cj_cbor_get_null(&d), CJ_OK);
        CHECK_EQ(cj_cbor_get_int(&d, &s), CJ_OK);
        CHECK_EQ(s, 0);
        CHECK(cj_cbor_dec_done(&d));
        check_prefixes(b, n);
    }
}

TEST(cbor_every_initial_byte)
{
    /* Every initial byte followed by enough zero bytes: the decoder's
     * verdict must match the table of RFC 8949 Appendix B restricted to
     * the subset, and must never read past the buffer. */
    for (unsigned ib = 0; ib < 256; ib++) {
        uint8_t b[16] = {(uint8_t)ib};
        unsigned mt = ib >> 5, ai = ib & 31;
        int r = cj_cbor_validate(b, 1);
        if (ai >= 28 && ai <= 30)
            CHECK_EQ(r, CJ_ERR_MALFORMED);
        else if (ai == 31)
            CHECK_EQ(r, mt >= 2 && mt <= 5 ? CJ_ERR_UNSUPPORTED
                                           : CJ_ERR_MALFORMED);
        else if (mt == CJ_CBOR_TAG)
            CHECK(r == CJ_ERR_UNSUPPORTED || r == CJ_ERR_TRUNCATED);
        else if (mt == CJ_CBOR_SIMPLE)
            CHECK_EQ(r, ai >= 20 && ai <= 22 ? CJ_OK
                        : ai >= 24 ? CJ_ERR_TRUNCATED : CJ_ERR_UNSUPPORTED);
        else if (ai >= 24 || (mt >= 2 && ai > 0))
            CHECK_EQ(r, CJ_ERR_TRUNCATED);
        else
            CHECK_EQ(r, CJ_OK);
    }
}
