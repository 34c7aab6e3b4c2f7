/*
 * The crypto port (cojp/crypto.h) over mbedTLS 2.28.  Every primitive is
 * mbedTLS's; this file only adapts calling conventions, enforces the
 * tag-before-plaintext rule and wipes what it touched, except the one
 * HKDF pseudorandom key and the one CCM context it keeps between calls
 * on Linux (see CJ_CRYPTO_PRK_CACHE and CJ_CRYPTO_CCM_KEEP below: the
 * last secret it was given and the last key's expansion, which the
 * caller holds anyway).
 *
 * cj_crypto_random is not here: it needs an entropy source, which is
 * platform-specific (src/port/random_posix.c on Linux; each firmware port
 * brings its own, see ports/cortex-m/).  This file builds unchanged for
 * Linux and for mbedTLS compiled for a microcontroller.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <mbedtls/ccm.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

#include "cojp/crypto.h"

/* CCM tag lengths this port offers (OSCORE uses 8; 802.15.4 CCM* uses
 * 4, 8 or 16 with authentication). */
static int tag_len_ok(size_t tag_len)
{
    return tag_len == 4 || tag_len == 8 || tag_len == 16;
}

/* One CCM context per thread, kept on Linux.  mbedtls_ccm_setkey()
 * gives up the context's cipher and allocates a new one on every call,
 * about a quarter of the instructions of a short OSCORE message; a JRC
 * changes keys with every message (each pledge has its own), so the kept
 * context only takes the new key (mbedtls_cipher_setkey(), the AES key
 * expansion), CCM itself staying mbedTLS's.  The expansion of the last
 * key stays in the context until the next call, as the PRK cache below
 * keeps its secret; a thread that ends gives its context up (zeroized)
 * through a thread-specific key's destructor.  A microcontroller builds
 * a context per message on its stack, as does a thread that cannot have
 * the destructor. */
#ifndef CJ_CRYPTO_CCM_KEEP
#if defined(__linux__) && !defined(MBEDTLS_CCM_ALT) /* reaches cipher_ctx */
#define CJ_CRYPTO_CCM_KEEP 1
#else
#define CJ_CRYPTO_CCM_KEEP 0
#endif
#endif

#if CJ_CRYPTO_CCM_KEEP
#include <pthread.h>

static _Thread_local struct ccm_kept {
    bool ready;
    mbedtls_ccm_context ccm;
} ccm_kept;
static pthread_key_t ccm_key;
static pthread_once_t ccm_once = PTHREAD_ONCE_INIT;
static bool ccm_key_ok;

static void ccm_drop(void *p)
{
    struct ccm_kept *k = p;
    mbedtls_ccm_free(&k->ccm); /* zeroizes the expanded key */
    k->ready = false;
}

static void ccm_key_make(void)
{
    ccm_key_ok = pthread_key_create(&ccm_key, ccm_drop) == 0;
}
#endif

/* The context to run CCM with under key: the thread's kept one, or
 * *local set up here; give it back with ccm_end().  NULL if the key
 * cannot be set. */
static mbedtls_ccm_context *ccm_begin(mbedtls_ccm_context *local,
                                      const uint8_t key[CJ_AES_KEY_LEN])
{
#if CJ_CRYPTO_CCM_KEEP
    if (ccm_kept.ready) {
        if (mbedtls_cipher_setkey(&ccm_kept.ccm.cipher_ctx, key,
                                  CJ_AES_KEY_LEN * 8, MBEDTLS_ENCRYPT) == 0)
            return &ccm_kept.ccm;
        ccm_drop(&ccm_kept);
    }
    (void)pthread_once(&ccm_once, ccm_key_make);
    if (ccm_key_ok && pthread_setspecific(ccm_key, &ccm_kept) == 0) {
        mbedtls_ccm_init(&ccm_kept.ccm);
        if (mbedtls_ccm_setkey(&ccm_kept.ccm, MBEDTLS_CIPHER_ID_AES, key,
                               CJ_AES_KEY_LEN * 8) == 0) {
            ccm_kept.ready = true;
            return &ccm_kept.ccm;
        }
        ccm_drop(&ccm_kept);
        return NULL;
    }
#endif
    mbedtls_ccm_init(local);
    if (mbedtls_ccm_setkey(local, MBEDTLS_CIPHER_ID_AES, key,
                           CJ_AES_KEY_LEN * 8) == 0)
        return local;
    mbedtls_ccm_free(local);
    return NULL;
}

static void ccm_end(mbedtls_ccm_context *ccm, mbedtls_ccm_context *local)
{
    if (ccm == local)
        mbedtls_ccm_free(local); /* zeroizes the expanded key */
}

int cj_crypto_ccm_seal(const uint8_t key[CJ_AES_KEY_LEN],
                       const uint8_t nonce[CJ_CCM_NONCE_LEN],
                       const uint8_t *aad, size_t aad_len, uint8_t *buf,
                       size_t len, size_t tag_len)
{
    mbedtls_ccm_context local, *ccm;
    int rc = -1;

    /* buf also takes the tag: never NULL, even for an empty plaintext */
    if (key == NULL || nonce == NULL || buf == NULL ||
        (aad == NULL && aad_len > 0) || !tag_len_ok(tag_len))
        return CJ_ERR_INVALID;
    /* A 13-byte nonce leaves a 2-byte length field (RFC 3610 section 2):
     * messages stop at 65535 bytes. */
    if (len > 0xffff || len + tag_len > (size_t)INT32_MAX)
        return CJ_ERR_INVALID;

    ccm = ccm_begin(&local, key);
    if (ccm != NULL) {
        /* In place: mbedTLS reads each block before writing it. */
        rc = mbedtls_ccm_encrypt_and_tag(ccm, len, nonce, CJ_CCM_NONCE_LEN,
                                         aad, aad_len, buf, buf, buf + len,
                                         tag_len);
        ccm_end(ccm, &local);
    }
    if (rc != 0) {
        mbedtls_platform_zeroize(buf, len + tag_len);
        return CJ_ERR_CRYPTO;
    }
    return (int)(len + tag_len);
}

int cj_crypto_ccm_open(const uint8_t key[CJ_AES_KEY_LEN],
                       const uint8_t nonce[CJ_CCM_NONCE_LEN],
                       const uint8_t *aad, size_t aad_len, uint8_t *buf,
                       size_t len, size_t tag_len)
{
    mbedtls_ccm_context local, *ccm;
    size_t pt_len;
    int rc = -1;

    if (key == NULL || nonce == NULL || (buf == NULL && len > 0) ||
        (aad == NULL && aad_len > 0) || !tag_len_ok(tag_len))
        return CJ_ERR_INVALID;
    if (len < tag_len)
        return CJ_ERR_TRUNCATED;
    pt_len = len - tag_len;
    if (pt_len > 0xffff)
        return CJ_ERR_INVALID;

    ccm = ccm_begin(&local, key);
    if (ccm != NULL) {
        /* The tag sits after the ciphertext, so it does not overlap the
         * region decrypted in place. */
        rc = mbedtls_ccm_auth_decrypt(ccm, pt_len, nonce, CJ_CCM_NONCE_LEN,
                                      aad, aad_len, buf, buf, buf + pt_len,
                                      tag_len);
        ccm_end(ccm, &local);
    }
    if (rc != 0) {
        /* mbedTLS already zeroizes the output on a tag mismatch; do it
         * again so the guarantee does not rest on a library detail, and
         * for every other failure too. */
        mbedtls_platform_zeroize(buf, pt_len);
        return rc == MBEDTLS_ERR_CCM_AUTH_FAILED ? CJ_ERR_AUTH : CJ_ERR_CRYPTO;
    }
    return (int)pt_len;
}

/* The pseudorandom key of the last extract step (RFC 5869 section 2.2),
 * per thread.  An OSCORE context derivation (RFC 8613 section 3.2.1)
 * expands three outputs from one salt and one secret; the extract step
 * they share then runs once instead of three times.  Inputs longer than
 * the fields are not cached.  On by default where derivations are
 * frequent (a JRC on Linux); a microcontroller saves the RAM. */
#ifndef CJ_CRYPTO_PRK_CACHE
#ifdef __linux__
#define CJ_CRYPTO_PRK_CACHE 1
#else
#define CJ_CRYPTO_PRK_CACHE 0
#endif
#endif

#if CJ_CRYPTO_PRK_CACHE
static _Thread_local struct {
    bool valid;
    uint8_t salt[64], ikm[64];
    size_t salt_len, ikm_len;
    uint8_t prk[CJ_SHA256_LEN];
} prk_cache;

static bool prk_cached(const uint8_t *salt, size_t salt_len,
                       const uint8_t *ikm, size_t ikm_len)
{
    return prk_cache.valid && prk_cache.salt_len == salt_len &&
           prk_cache.ikm_len == ikm_len &&
           cj_crypto_ct_compare(prk_cache.salt, salt, salt_len) == 0 &&
           cj_crypto_ct_compare(prk_cache.ikm, ikm, ikm_len) == 0;
}
#endif

int cj_crypto_hkdf_sha256(const uint8_t *salt, size_t salt_len,
                          const uint8_t *ikm, size_t ikm_len,
                          const uint8_t *info, size_t info_len, uint8_t *okm,
                          size_t okm_len)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    int rc = 0;

    if (md == NULL)
        return CJ_ERR_CRYPTO;
    if ((salt == NULL && salt_len > 0) || (ikm == NULL && ikm_len > 0) ||
        (info == NULL && info_len > 0) || okm == NULL || okm_len == 0 ||
        okm_len > 255 * CJ_SHA256_LEN)
        return CJ_ERR_INVALID;
#if CJ_CRYPTO_PRK_CACHE
    if (!prk_cached(salt, salt_len, ikm, ikm_len)) {
        prk_cache.valid = false;
        /* RFC 5869 section 2.2: an absent salt is HashLen zero bytes,
         * which HMAC treats exactly like an empty key; mbedTLS does the
         * same for a NULL salt. */
        rc = mbedtls_hkdf_extract(md, salt_len ? salt : NULL, salt_len, ikm,
                                  ikm_len, prk_cache.prk);
        if (rc == 0 && salt_len <= sizeof prk_cache.salt &&
            ikm_len <= sizeof prk_cache.ikm) {
            if (salt_len > 0)
                memcpy(prk_cache.salt, salt, salt_len);
            if (ikm_len > 0)
                memcpy(prk_cache.ikm, ikm, ikm_len);
            prk_cache.salt_len = salt_len;
            prk_cache.ikm_len = ikm_len;
            prk_cache.valid = true;
        }
    }
    if (rc == 0)
        rc = mbedtls_hkdf_expand(md, prk_cache.prk, sizeof prk_cache.prk,
                                 info, info_len, okm, okm_len);
    if (!prk_cache.valid)
        mbedtls_platform_zeroize(&prk_cache, sizeof prk_cache);
#else
    rc = mbedtls_hkdf(md, salt_len ? salt : NULL, salt_len, ikm, ikm_len,
                      info, info_len, okm, okm_len);
#endif
    if (rc != 0) {
        mbedtls_platform_zeroize(okm, okm_len);
        return CJ_ERR_CRYPTO;
    }
    return CJ_OK;
}

int cj_crypto_ct_compare(const void *a, const void *b, size_t n)
{
    /* Volatile reads keep the compiler from turning the loop into an
     * early-exit memcmp; every byte is always read. */
    const volatile uint8_t *x = (const volatile uint8_t *)a;
    const volatile uint8_t *y = (const volatile uint8_t *)b;
    uint8_t acc = 0;
    size_t i;

    for (i = 0; i < n; i++)
        acc |= (uint8_t)(x[i] ^ y[i]);
    return acc != 0;
}

void cj_crypto_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        mbedtls_platform_zeroize(p, n);
}
