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
#include "port/random_posix.h"

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

/* Deterministic entropy for cj_random_posix_seed(): an endless stream
 * derived from the seed (splitmix64), so that the DRBG's instantiation and
 * any later reseed draw the same bytes in every run. */
static uint64_t g_seed_state;

static int seeded_entropy(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    while (len > 0) {
        uint64_t z = (g_seed_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        for (int i = 0; i < 8 && len > 0; i++, len--)
            *out++ = (unsigned char)(z >> (8 * i));
    }
    return 0;
}

int cj_random_posix_seed(uint64_t seed)
{
    static const unsigned char pers[] = "cojp-deterministic";

    if (g_drbg_ready) {
        mbedtls_ctr_drbg_free(&g_drbg);
        mbedtls_entropy_free(&g_entropy);
        g_drbg_ready = 0;
    }
    g_seed_state = seed;
    mbedtls_ctr_drbg_init(&g_drbg);
    if (mbedtls_ctr_drbg_seed(&g_drbg, seeded_entropy, NULL, pers,
                              sizeof pers - 1) != 0) {
        mbedtls_ctr_drbg_free(&g_drbg);
        return CJ_ERR_CRYPTO;
    }
    /* drbg_ready() must not re-instantiate from the platform sources */
    mbedtls_entropy_init(&g_entropy);
    g_drbg_ready = 1;
    return CJ_OK;
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
