/*
 * cj_crypto_random (cojp/crypto.h) for POSIX hosts: mbedTLS CTR_DRBG
 * seeded from mbedTLS's platform entropy sources (getrandom or
 * /dev/urandom).  Kept apart from crypto_mbedtls.c so that a firmware
 * port can link the same AEAD/HKDF adapter with its own random source.
 */
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>

#include "cojp/crypto.h"

/* One DRBG for the process, seeded from the platform entropy sources on
 * first use.  Not thread-safe by design (see the port contract). */
static mbedtls_entropy_context g_entropy;
static mbedtls_ctr_drbg_context g_drbg;
static int g_drbg_ready;

static int drbg_ready(void)
{
    static const unsigned char pers[] = "cojp";

    if (g_drbg_ready)
        return 1;
    mbedtls_entropy_init(&g_entropy);
    mbedtls_ctr_drbg_init(&g_drbg);
    if (mbedtls_ctr_drbg_seed(&g_drbg, mbedtls_entropy_func, &g_entropy,
                              pers, sizeof pers - 1) != 0) {
        mbedtls_ctr_drbg_free(&g_drbg);
        mbedtls_entropy_free(&g_entropy);
        return 0;
    }
    g_drbg_ready = 1;
    return 1;
}

int cj_crypto_random(uint8_t *buf, size_t len)
{
    if (buf == NULL && len > 0)
        return CJ_ERR_INVALID;
    if (!drbg_ready())
        return CJ_ERR_CRYPTO;
    while (len > 0) {
        size_t chunk = len < MBEDTLS_CTR_DRBG_MAX_REQUEST
                           ? len
                           : MBEDTLS_CTR_DRBG_MAX_REQUEST;
        if (mbedtls_ctr_drbg_random(&g_drbg, buf, chunk) != 0)
            return CJ_ERR_CRYPTO;
        buf += chunk;
        len -= chunk;
    }
    return CJ_OK;
}
