/*
 * cojp/crypto.h - the crypto port: the only cryptography cojp uses.
 *
 * A backend is chosen at link time by linking one implementation of these
 * functions (src/port/crypto_mbedtls.c on Linux; the Cortex-M build links
 * the same file against mbedTLS compiled for the target).  Nothing here
 * is implemented by cojp itself except the constant-time helpers.
 *
 * AES-CCM with a 16-byte key and a 13-byte nonce serves both OSCORE
 * (AES-CCM-16-64-128: 8-byte tag, RFC 8613 / RFC 9053) and IEEE 802.15.4
 * CCM* (4, 8 or 16-byte MIC; tag length 0 means no authentication is not
 * supported here).
 */
#ifndef COJP_CRYPTO_H
#define COJP_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "cojp/err.h"

#define CJ_AES_KEY_LEN 16
#define CJ_CCM_NONCE_LEN 13
#define CJ_SHA256_LEN 32

/* Encrypt buf[0..len) in place and write the tag_len-byte tag right after
 * it, at buf[len..len+tag_len).  tag_len is 4, 8 or 16.  Returns
 * len + tag_len, or CJ_ERR_INVALID / CJ_ERR_CRYPTO. */
int cj_crypto_ccm_seal(const uint8_t key[CJ_AES_KEY_LEN],
                       const uint8_t nonce[CJ_CCM_NONCE_LEN],
                       const uint8_t *aad, size_t aad_len, uint8_t *buf,
                       size_t len, size_t tag_len);

/* Verify and decrypt buf[0..len) in place, where the last tag_len bytes
 * are the tag.  Returns the plaintext length len - tag_len, or CJ_ERR_AUTH
 * when the tag does not verify; then buf[0..len - tag_len) is wiped and no
 * plaintext is released.  CJ_ERR_TRUNCATED when len < tag_len. */
int cj_crypto_ccm_open(const uint8_t key[CJ_AES_KEY_LEN],
                       const uint8_t nonce[CJ_CCM_NONCE_LEN],
                       const uint8_t *aad, size_t aad_len, uint8_t *buf,
                       size_t len, size_t tag_len);

/* HKDF-SHA256 (RFC 5869): extract with salt (NULL/0 = no salt) and ikm,
 * expand with info into okm[0..okm_len), okm_len <= 255 * 32. */
int cj_crypto_hkdf_sha256(const uint8_t *salt, size_t salt_len,
                          const uint8_t *ikm, size_t ikm_len,
                          const uint8_t *info, size_t info_len, uint8_t *okm,
                          size_t okm_len);

/* Fill buf with len cryptographically strong random bytes. */
int cj_crypto_random(uint8_t *buf, size_t len);

/* 0 when a[0..n) equals b[0..n), non-zero otherwise; time depends on n
 * only. */
int cj_crypto_ct_compare(const void *a, const void *b, size_t n);

/* Overwrite n bytes at p with zeros in a way the compiler cannot elide.
 * The library calls it with n == 0 too (p then may be NULL): a port does
 * nothing then. */
void cj_crypto_wipe(void *p, size_t n);

#endif
