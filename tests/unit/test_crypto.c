/*
 * Crypto port: RFC 5869 Appendix A (HKDF-SHA256) and RFC 3610 section 8
 * (AES-CCM) vectors, plus tamper, truncation, random and compare checks.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "cojp/crypto.h"
#include "../test.h"

/* ---- RFC 5869 Appendix A ------------------------------------------------ */

TEST(crypto_hkdf_rfc5869_a1)
{
    uint8_t ikm[64], salt[64], info[64], okm[128];
    size_t ni = cj_hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", ikm,
                       sizeof ikm);
    size_t ns = cj_hex("000102030405060708090a0b0c", salt, sizeof salt);
    size_t nf = cj_hex("f0f1f2f3f4f5f6f7f8f9", info, sizeof info);
    CHECK_EQ(cj_crypto_hkdf_sha256(salt, ns, ikm, ni, info, nf, okm, 42),
             CJ_OK);
    CHECK_HEX(okm, 42, "3cb25f25faacd57a90434f64d0362f2a"
                       "2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                       "34007208d5b887185865");
}

TEST(crypto_hkdf_rfc5869_a2)
{
    uint8_t ikm[128], salt[128], info[128], okm[128];
    size_t ni = cj_hex("000102030405060708090a0b0c0d0e0f"
                       "101112131415161718191a1b1c1d1e1f"
                       "202122232425262728292a2b2c2d2e2f"
                       "303132333435363738393a3b3c3d3e3f"
                       "404142434445464748494a4b4c4d4e4f",
                       ikm, sizeof ikm);
    size_t ns = cj_hex("606162636465666768696a6b6c6d6e6f"
                       "707172737475767778797a7b7c7d7e7f"
                       "808182838485868788898a8b8c8d8e8f"
                       "909192939495969798999a9b9c9d9e9f"
                       "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
                       salt, sizeof salt);
    size_t nf = cj_hex("b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
                       "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
                       "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
                       "e0e1e2e3e4e5e6e7e8e9eaebecedeeef"
                       "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
                       info, sizeof info);
    CHECK_EQ(ni, 80);
    CHECK_EQ(ns, 80);
    CHECK_EQ(nf, 80);
    CHECK_EQ(cj_crypto_hkdf_sha256(salt, ns, ikm, ni, info, nf, okm, 82),
             CJ_OK);
    CHECK_HEX(okm, 82, "b11e398dc80327a1c8e7f78c596a4934"
                       "4f012eda2d4efad8a050cc4c19afa97c"
                       "59045a99cac7827271cb41c65e590e09"
                       "da3275600c2f09b8367793a9aca3db71"
                       "cc30c58179ec3e87c14c01d5c1f3434f"
                       "1d87");
}

TEST(crypto_hkdf_rfc5869_a3)
{
    uint8_t ikm[64], okm[64];
    size_t ni = cj_hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", ikm,
                       sizeof ikm);
    CHECK_EQ(cj_crypto_hkdf_sha256(NULL, 0, ikm, ni, NULL, 0, okm, 42),
             CJ_OK);
    CHECK_HEX(okm, 42, "8da4e775a563c18f715f802a063c5a31"
                       "b8a11f5c5ee1879ec3454e5f3c738d2d"
                       "9d201395faa4b61a96c8");
}

/* A.1 and A.3 share their IKM and differ in salt; interleaved with each
 * other and with a changed IKM, each call still gives its own vector
 * (the port may reuse an extract step between calls with equal salt
 * and IKM, never between others). */
TEST(crypto_hkdf_interleaved_inputs)
{
    uint8_t ikm[32], salt[16], info[16], okm[42];
    size_t ni = cj_hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", ikm,
                       sizeof ikm);
    size_t ns = cj_hex("000102030405060708090a0b0c", salt, sizeof salt);
    size_t nf = cj_hex("f0f1f2f3f4f5f6f7f8f9", info, sizeof info);
    static const char a1[] = "3cb25f25faacd57a90434f64d0362f2a"
                             "2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                             "34007208d5b887185865";
    static const char a3[] = "8da4e775a563c18f715f802a063c5a31"
                             "b8a11f5c5ee1879ec3454e5f3c738d2d"
                             "9d201395faa4b61a96c8";
    uint8_t first[42];

    for (int round = 0; round < 2; round++) {
        CHECK_EQ(cj_crypto_hkdf_sha256(salt, ns, ikm, ni, info, nf, okm, 42),
                 CJ_OK);
        CHECK_HEX(okm, 42, a1);
        CHECK_EQ(cj_crypto_hkdf_sha256(salt, ns, ikm, ni, info, nf, okm, 42),
                 CJ_OK);
        CHECK_HEX(okm, 42, a1);
        CHECK_EQ(cj_crypto_hkdf_sha256(NULL, 0, ikm, ni, NULL, 0, okm, 42),
                 CJ_OK);
        CHECK_HEX(okm, 42, a3);
    }
    /* one IKM byte changed, same salt: another output */
    CHECK_EQ(cj_crypto_hkdf_sha256(salt, ns, ikm, ni, info, nf, first, 42),
             CJ_OK);
    ikm[ni - 1] ^= 1;
    CHECK_EQ(cj_crypto_hkdf_sha256(salt, ns, ikm, ni, info, nf, okm, 42),
             CJ_OK);
    CHECK(memcmp(first, okm, 42) != 0);
    ikm[ni - 1] ^= 1;
    /* the same salt bytes, one shorter */
    CHECK_EQ(cj_crypto_hkdf_sha256(salt, ns - 1, ikm, ni, info, nf, okm, 42),
             CJ_OK);
    CHECK(memcmp(first, okm, 42) != 0);
    CHECK_EQ(cj_crypto_hkdf_sha256(salt, ns, ikm, ni, info, nf, okm, 42),
             CJ_OK);
    CHECK_HEX(okm, 42, a1);
}

TEST(crypto_hkdf_rejects_bad_lengths)
{
    uint8_t ikm[4] = {1, 2, 3, 4}, okm[8];
    CHECK_EQ(cj_crypto_hkdf_sha256(NULL, 0, ikm, 4, NULL, 0, okm, 0),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_hkdf_sha256(NULL, 0, ikm, 4, NULL, 0, okm,
                                   255 * 32 + 1),
             CJ_ERR_INVALID);
}

/* ---- RFC 3610 section 8: packet vectors with an 8-byte tag (M = 8) ---- */

/* Packets #1..#6 are the ones with M = 8 (#7..#12 use a 10-byte tag,
 * which this port does not offer).  The AAD is the first hdr bytes of
 * the input packet; the output packet is that header, the ciphertext and
 * the tag. */
struct ccm_vec {
    const char *nonce;
    size_t hdr;
    const char *in;
    const char *out;
};

static const struct ccm_vec rfc3610_vecs[] = {
    {/* Packet Vector #1 */
     "00000003020100a0a1a2a3a4a5", 8,
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
     "0001020304050607588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417"
     "e8d12cfdf926e0"},
    {/* Packet Vector #2 */
     "00000004030201a0a1a2a3a4a5", 8,
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "000102030405060772c91a36e135f8cf291ca894085c87e3cc15c439c9e43a3b"
     "a091d56e10400916"},
    {/* Packet Vector #3 */
     "00000005040302a0a1a2a3a4a5", 8,
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
     "000102030405060751b1e5f44a197d1da46b0f8e2d282ae871e838bb64da8596"
     "574adaa76fbd9fb0c5"},
    {/* Packet Vector #4 */
     "00000006050403a0a1a2a3a4a5", 12,
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
     "000102030405060708090a0ba28c6865939a9a79faaa5c4c2a9d4a91cdac8c96"
     "c861b9c9e61ef1"},
    {/* Packet Vector #5 */
     "00000007060504a0a1a2a3a4a5", 12,
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "000102030405060708090a0bdcf1fb7b5d9e23fb9d4e131253658ad86ebdca3e"
     "51e83f077d9c2d93"},
    {/* Packet Vector #6 */
     "00000008070605a0a1a2a3a4a5", 12,
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
     "000102030405060708090a0b6fc1b011f006568b5171a42d953d469b2570a4bd"
     "87405a0443ac91cb94"},
};

/* RFC 3610 section 8: every packet vector uses this key. */
static const char rfc3610_key[] = "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf";

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

/* Each vector is sealed and opened right after a message under another
 * key, as a JRC answers a different pledge each time; opening it under
 * that other key fails and leaves nothing behind. */
TEST(crypto_ccm_rfc3610_seal_open)
{
    uint8_t key[16], other[16], nonce[16], in[64], want[64], buf[64];
    CHECK_EQ(cj_hex(rfc3610_key, key, sizeof key), 16);
    for (size_t i = 0; i < sizeof other; i++)
        other[i] = (uint8_t)(key[i] ^ 0x5a);
    for (size_t v = 0; v < sizeof rfc3610_vecs / sizeof rfc3610_vecs[0]; v++) {
        const struct ccm_vec *t = &rfc3610_vecs[v];
        size_t nn = cj_hex(t->nonce, nonce, sizeof nonce);
        size_t ni = cj_hex(t->in, in, sizeof in);
        size_t no = cj_hex(t->out, want, sizeof want);
        size_t ml = ni - t->hdr;
        CHECK_EQ(nn, 13);
        CHECK_EQ(no, ni + 8);

        /* Seal in place after the header, under the other key first. */
        memcpy(buf, in, ni);
        CHECK_EQ(cj_crypto_ccm_seal(other, nonce, in, t->hdr, buf + t->hdr,
                                    ml, 8),
                 (int)(ml + 8));
        CHECK(memcmp(buf, want, no) != 0);
        memcpy(buf, in, ni);
        CHECK_EQ(cj_crypto_ccm_seal(key, nonce, in, t->hdr, buf + t->hdr, ml,
                                    8),
                 (int)(ml + 8));
        CHECK_MEM(buf, ni + 8, want, no);

        /* And open back in place, under the other key first. */
        CHECK_EQ(cj_crypto_ccm_open(other, nonce, want, t->hdr, buf + t->hdr,
                                    ml + 8, 8),
                 CJ_ERR_AUTH);
        CHECK(all_zero(buf + t->hdr, ml));
        memcpy(buf, want, no);
        CHECK_EQ(cj_crypto_ccm_open(key, nonce, want, t->hdr, buf + t->hdr,
                                    ml + 8, 8),
                 (int)ml);
        CHECK_MEM(buf, ni, in, ni);
    }
}

/* Threads that seal and open, then end (a store's test threads, a
 * daemon's helpers): each gets the right output, and a thread's kept CCM
 * context goes with it (under LeakSanitizer, make check-asan, a context
 * left behind is a leak). */
static void *ccm_thread(void *arg)
{
    const struct ccm_vec *t = arg;
    uint8_t key[16], nonce[16], in[64], want[64], buf[64];
    size_t ni, no, ml;
    intptr_t ok = 1;

    (void)cj_hex(rfc3610_key, key, sizeof key);
    (void)cj_hex(t->nonce, nonce, sizeof nonce);
    ni = cj_hex(t->in, in, sizeof in);
    no = cj_hex(t->out, want, sizeof want);
    ml = ni - t->hdr;
    for (int round = 0; round < 50; round++) {
        memcpy(buf, in, ni);
        ok &= cj_crypto_ccm_seal(key, nonce, in, t->hdr, buf + t->hdr, ml, 8) ==
                  (int)(ml + 8) &&
              memcmp(buf, want, no) == 0;
        ok &= cj_crypto_ccm_open(key, nonce, want, t->hdr, buf + t->hdr,
                                 ml + 8, 8) == (int)ml &&
              memcmp(buf, in, ni) == 0;
    }
    return (void *)ok;
}

TEST(crypto_ccm_in_threads)
{
    enum { NT = sizeof rfc3610_vecs / sizeof rfc3610_vecs[0] };
    pthread_t th[NT];
    void *ok;

    for (int i = 0; i < NT; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, ccm_thread,
                                (void *)&rfc3610_vecs[i]),
                 0);
    for (int i = 0; i < NT; i++) {
        CHECK_EQ(pthread_join(th[i], &ok), 0);
        CHECK(ok == (void *)1);
    }
}

TEST(crypto_ccm_rfc3610_tamper_and_truncate)
{
    uint8_t key[16], nonce[16], pkt[64], buf[64];
    CHECK_EQ(cj_hex(rfc3610_key, key, sizeof key), 16);
    for (size_t v = 0; v < sizeof rfc3610_vecs / sizeof rfc3610_vecs[0]; v++) {
        const struct ccm_vec *t = &rfc3610_vecs[v];
        size_t n = cj_hex(t->out, pkt, sizeof pkt);
        size_t body = n - t->hdr;
        cj_hex(t->nonce, nonce, sizeof nonce);

        /* Every ciphertext and tag byte flipped: rejected, output wiped. */
        for (size_t i = 0; i < body; i++) {
            memcpy(buf, pkt + t->hdr, body);
            buf[i] ^= 0x01;
            CHECK_EQ(cj_crypto_ccm_open(key, nonce, pkt, t->hdr, buf, body, 8),
                     CJ_ERR_AUTH);
            CHECK(all_zero(buf, body - 8));
        }
        /* Every AAD byte flipped: rejected. */
        for (size_t i = 0; i < t->hdr; i++) {
            uint8_t aad[16];
            memcpy(aad, pkt, t->hdr);
            aad[i] ^= 0x80;
            memcpy(buf, pkt + t->hdr, body);
            CHECK_EQ(cj_crypto_ccm_open(key, nonce, aad, t->hdr, buf, body, 8),
                     CJ_ERR_AUTH);
            CHECK(all_zero(buf, body - 8));
        }
        /* Nonce flipped: rejected. */
        nonce[12] ^= 1;
        memcpy(buf, pkt + t->hdr, body);
        CHECK_EQ(cj_crypto_ccm_open(key, nonce, pkt, t->hdr, buf, body, 8),
                 CJ_ERR_AUTH);
        nonce[12] ^= 1;
        /* Truncated at every length. */
        for (size_t l = 0; l < body; l++) {
            int rc;
            memcpy(buf, pkt + t->hdr, body);
            rc = cj_crypto_ccm_open(key, nonce, pkt, t->hdr, buf, l, 8);
            CHECK(rc < 0);
            if (l < 8)
                CHECK_EQ(rc, CJ_ERR_TRUNCATED);
            else
                CHECK_EQ(rc, CJ_ERR_AUTH);
        }
    }
}

TEST(crypto_ccm_tag_lengths)
{
    uint8_t key[16] = {0}, nonce[13] = {0}, buf[48];
    static const size_t ok[] = {4, 8, 16};
    for (size_t k = 0; k < 3; k++) {
        memset(buf, 0xa5, sizeof buf);
        CHECK_EQ(cj_crypto_ccm_seal(key, nonce, NULL, 0, buf, 20, ok[k]),
                 (int)(20 + ok[k]));
        CHECK_EQ(cj_crypto_ccm_open(key, nonce, NULL, 0, buf, 20 + ok[k],
                                    ok[k]),
                 20);
        for (size_t i = 0; i < 20; i++)
            CHECK_EQ(buf[i], 0xa5);
    }
    CHECK_EQ(cj_crypto_ccm_seal(key, nonce, NULL, 0, buf, 20, 10),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_ccm_seal(key, nonce, NULL, 0, buf, 20, 0),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_ccm_open(key, nonce, NULL, 0, buf, 20, 12),
             CJ_ERR_INVALID);
    /* Empty plaintext: the tag alone. */
    CHECK_EQ(cj_crypto_ccm_seal(key, nonce, NULL, 0, buf, 0, 8), 8);
    CHECK_EQ(cj_crypto_ccm_open(key, nonce, NULL, 0, buf, 8, 8), 0);
}

TEST(crypto_random_differs)
{
    uint8_t a[32], b[32], zero[32] = {0};
    CHECK_EQ(cj_crypto_random(a, sizeof a), CJ_OK);
    CHECK_EQ(cj_crypto_random(b, sizeof b), CJ_OK);
    CHECK(memcmp(a, b, sizeof a) != 0);
    CHECK(memcmp(a, zero, sizeof a) != 0);
    CHECK_EQ(cj_crypto_random(NULL, 0), CJ_OK);
    {
        static uint8_t big[3000];
        CHECK_EQ(cj_crypto_random(big, sizeof big), CJ_OK);
        CHECK(!all_zero(big + 2048, sizeof big - 2048));
    }
}

TEST(crypto_ct_compare_and_wipe)
{
    uint8_t a[16], b[16];
    memset(a, 0x3c, sizeof a);
    memcpy(b, a, sizeof b);
    CHECK_EQ(cj_crypto_ct_compare(a, b, 16), 0);
    CHECK_EQ(cj_crypto_ct_compare(a, b, 0), 0);
    for (size_t i = 0; i < 16; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            CHECK(cj_crypto_ct_compare(a, b, 16) != 0);
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    cj_crypto_wipe(a, sizeof a);
    CHECK(all_zero(a, sizeof a));
    cj_crypto_wipe(NULL, 0);
}

/* ---- arguments and limits ------------------------------------------------ */

/* crypto.h: CJ_ERR_INVALID for inputs the port cannot use, never a
 * crash.  Sealing always writes a tag, so it needs a buffer even for an
 * empty plaintext (before the fix a NULL buffer with length 0 had the
 * tag written through the NULL pointer). */
TEST(crypto_ccm_rejects_missing_inputs)
{
    uint8_t key[16] = {0}, nonce[13] = {0}, buf[32] = {0}, aad[4] = {0};

    CHECK_EQ(cj_crypto_ccm_seal(NULL, nonce, NULL, 0, buf, 8, 8),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_ccm_seal(key, NULL, NULL, 0, buf, 8, 8),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_ccm_seal(key, nonce, NULL, 0, NULL, 8, 8),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_ccm_seal(key, nonce, NULL, 0, NULL, 0, 8),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_ccm_seal(key, nonce, NULL, 4, buf, 8, 8),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_ccm_seal(key, nonce, aad, 4, buf, 8, 8), 16);

    CHECK_EQ(cj_crypto_ccm_open(NULL, nonce, aad, 4, buf, 16, 8),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_ccm_open(key, NULL, aad, 4, buf, 16, 8),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_ccm_open(key, nonce, aad, 4, NULL, 16, 8),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_ccm_open(key, nonce, NULL, 4, buf, 16, 8),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_ccm_open(key, nonce, aad, 4, buf, 16, 8), 8);
    /* nothing to open at all: too short for the tag */
    CHECK_EQ(cj_crypto_ccm_open(key, nonce, NULL, 0, NULL, 0, 8),
             CJ_ERR_TRUNCATED);
}

/* RFC 3610 section 2: a 13-byte nonce leaves L = 2 octets for the
 * message length, so a message is at most 65535 bytes.  That one seals
 * and opens; one byte more is refused both ways. */
TEST(crypto_ccm_length_limit)
{
    static uint8_t big[65536 + 16];
    uint8_t key[16], nonce[13] = {1};

    memset(key, 0x42, sizeof key);
    for (size_t i = 0; i < 65535; i++)
        big[i] = (uint8_t)i;
    CHECK_EQ(cj_crypto_ccm_seal(key, nonce, NULL, 0, big, 65535, 8),
             65535 + 8);
    CHECK_EQ(cj_crypto_ccm_open(key, nonce, NULL, 0, big, 65535 + 8, 8),
             65535);
    CHECK_EQ(big[65534], (uint8_t)65534);
    CHECK_EQ(cj_crypto_ccm_seal(key, nonce, NULL, 0, big, 65536, 8),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_ccm_open(key, nonce, NULL, 0, big, 65536 + 8, 8),
             CJ_ERR_INVALID);
}

TEST(crypto_hkdf_rejects_missing_inputs)
{
    uint8_t b[8] = {1, 2, 3, 4, 5, 6, 7, 8}, okm[16];

    CHECK_EQ(cj_crypto_hkdf_sha256(NULL, 4, b, 8, b, 8, okm, 16),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_hkdf_sha256(b, 4, NULL, 8, b, 8, okm, 16),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_hkdf_sha256(b, 4, b, 8, NULL, 8, okm, 16),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_crypto_hkdf_sha256(b, 4, b, 8, b, 8, NULL, 16),
             CJ_ERR_INVALID);
    /* empty salt, IKM and info are fine (RFC 5869 section 2.2) */
    CHECK_EQ(cj_crypto_hkdf_sha256(NULL, 0, NULL, 0, NULL, 0, okm, 16),
             CJ_OK);
}

/* The port may reuse the extract step of the previous call when salt
 * and IKM are equal (crypto_mbedtls.c), never otherwise.  Inputs that
 * differ from each other only in one byte or one length are each
 * derived right after every other one, and must give what they give
 * after an unrelated call (which no cached step can serve). */
TEST(crypto_hkdf_extract_reuse_exact)
{
    static const struct {
        uint8_t salt_len, salt_last, ikm_len, ikm_last;
    } in[] = {
        {13, 0x0c, 22, 0x0b}, {13, 0x0d, 22, 0x0b}, {12, 0x0b, 22, 0x0b},
        {13, 0x0c, 21, 0x0b}, {13, 0x0c, 22, 0x0c}, {0, 0, 22, 0x0b},
        {13, 0x0c, 0, 0},     {13, 0x0c, 64, 0x0b}, {13, 0x0c, 65, 0x0b},
    };
    enum { N = sizeof in / sizeof in[0] };
    static const uint8_t info[3] = {0xf0, 0xf1, 0xf2};
    uint8_t cold[N][42], okm[42], salt[16], ikm[80];
    uint8_t other[5] = {9, 9, 9, 9, 9};

    for (size_t x = 0; x < N + N * N; x++) {
        size_t i = x < N ? x : (x - N) / N, j = x < N ? x : (x - N) % N;
        for (int k = 0; k < 2; k++) {
            /* first the unrelated call (cold run) or input j, then i */
            size_t which = k ? i : j;
            memset(salt, 0x5a, sizeof salt);
            memset(ikm, 0x0b, sizeof ikm);
            if (in[which].salt_len)
                salt[in[which].salt_len - 1] = in[which].salt_last;
            if (in[which].ikm_len)
                ikm[in[which].ikm_len - 1] = in[which].ikm_last;
            if (k == 0 && x < N)
                CHECK_EQ(cj_crypto_hkdf_sha256(other, 5, other, 5, NULL, 0,
                                               okm, 16),
                         CJ_OK);
            else
                CHECK_EQ(cj_crypto_hkdf_sha256(
                             in[which].salt_len ? salt : NULL,
                             in[which].salt_len, in[which].ikm_len ? ikm : NULL,
                             in[which].ikm_len, info, sizeof info, okm, 42),
                         CJ_OK);
        }
        if (x < N)
            memcpy(cold[i], okm, 42);
        else
            CHECK_MEM(okm, 42, cold[i], 42);
    }
    /* and the inputs are really different ones */
    for (size_t i = 0; i < N; i++)
        for (size_t j = i + 1; j < N; j++)
            CHECK(memcmp(cold[i], cold[j], 42) != 0);
}
