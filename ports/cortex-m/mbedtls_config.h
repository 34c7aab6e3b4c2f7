/*
 * mbedTLS 2.28 configuration for the Cortex-M build (MBEDTLS_CONFIG_FILE):
 * only what the cojp crypto port (src/port/crypto_mbedtls.c) calls -
 * AES-128 in CCM mode through the cipher layer, SHA-256, HMAC through the
 * MD layer, and HKDF.  No entropy source, DRBG, networking, file system,
 * time, threading or self tests: random numbers come from the board port
 * (see ports/cortex-m/random_test.c).
 *
 * The cipher and MD layers allocate their contexts with mbedtls_calloc;
 * here that is a fixed pool in ports/cortex-m/mbedtls_pool.c, so the
 * image links no heap.
 */
#ifndef CJ_CORTEX_M_MBEDTLS_CONFIG_H
#define CJ_CORTEX_M_MBEDTLS_CONFIG_H

#include <stddef.h>

/* Block cipher and AEAD. */
#define MBEDTLS_AES_C
#define MBEDTLS_CIPHER_C
#define MBEDTLS_CCM_C
/* Tables in flash, one quarter of them: saves about 8 KiB of RAM and
 * 6 KiB of flash against the default at some speed cost. */
#define MBEDTLS_AES_ROM_TABLES
#define MBEDTLS_AES_FEWER_TABLES

/* Hash, HMAC, HKDF. */
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA256_SMALLER
#define MBEDTLS_MD_C
#define MBEDTLS_HKDF_C

/* Memory: the cipher and MD contexts come from a static pool. */
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_PLATFORM_NO_STD_FUNCTIONS
#define MBEDTLS_PLATFORM_CALLOC_MACRO cj_port_mbedtls_calloc
#define MBEDTLS_PLATFORM_FREE_MACRO cj_port_mbedtls_free
void *cj_port_mbedtls_calloc(size_t n, size_t size);
void cj_port_mbedtls_free(void *p);

#include "mbedtls/check_config.h"

#endif
