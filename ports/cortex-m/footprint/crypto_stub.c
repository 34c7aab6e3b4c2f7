/*
 * Crypto port stubs for the footprint reference programs: they satisfy
 * the linker so that the figures printed by scripts/footprint.sh count
 * the cojp library alone, crypto excluded (the real backend is
 * src/port/crypto_mbedtls.c over mbedTLS, measured separately).
 * Never run: the reference programs are linked, not executed.
 */
#include <stddef.h>
#include <stdint.h>

#include "cojp/crypto.h"

int cj_crypto_ccm_seal(const uint8_t key[CJ_AES_KEY_LEN],
                       const uint8_t nonce[CJ_CCM_NONCE_LEN],
                       const uint8_t *aad, size_t aad_len, uint8_t *buf,
                       size_t len, size_t tag_len)
{
    (void)key, (void)nonce, (void)aad, (void)aad_len, (void)buf;
    return (int)(len + tag_len);
}

int cj_crypto_ccm_open(const uint8_t key[CJ_AES_KEY_LEN],
                       const uint8_t nonce[CJ_CCM_NONCE_LEN],
                       const uint8_t *aad, size_t aad_len, uint8_t *buf,
                       size_t len, size_t tag_len)
{
    (void)key, (void)nonce, (void)aad, (void)aad_len, (void)buf;
    return (int)(len - tag_len);
}

int cj_crypto_hkdf_sha256(const uint8_t *salt, size_t salt_len,
                          const uint8_t *ikm, size_t ikm_len,
                          const uint8_t *info, size_t info_len, uint8_t *okm,
                          size_t okm_len)
{
    (void)salt, (void)salt_len, (void)ikm, (void)ikm_len, (void)info;
    (void)info_len, (void)okm, (void)okm_len;
    return CJ_OK;
}

int cj_crypto_random(uint8_t *buf, size_t len)
{
    (void)buf, (void)len;
    return CJ_OK;
}

int cj_crypto_ct_compare(const void *a, const void *b, size_t n)
{
    (void)a, (void)b, (void)n;
    return 0;
}

void cj_crypto_wipe(void *p, size_t n)
{
    (void)p, (void)n;
}
