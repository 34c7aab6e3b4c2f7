/*
 * cj_crypto_random (cojp/crypto.h) for the emulated test board.
 *
 *     NOT FOR PRODUCTION.  THIS GENERATOR IS DETERMINISTIC.
 *
 * QEMU's mps2-an385 has no true random number generator, so the test
 * image draws "random" bytes from xorshift64* with a fixed seed: every
 * run produces the same sequence, which keeps on-target tests
 * reproducible.  Nonces, tokens and recovery nonces made from it are
 * predictable; a real device must link a port that reads its TRNG
 * (conditioned, e.g. through a DRBG) instead of this file.
 *
 * The file refuses to compile unless CJ_FW_TEST_RANDOM is defined, so it
 * cannot slip into a product build unnoticed.
 */
#ifndef CJ_FW_TEST_RANDOM
#error "random_test.c is a deterministic test generator; define CJ_FW_TEST_RANDOM only in test images"
#endif

#include <stddef.h>
#include <stdint.h>

#include "cojp/crypto.h"

static uint64_t g_state = UINT64_C(0x636f6a7074657374); /* "cojptest" */

int cj_crypto_random(uint8_t *buf, size_t len)
{
    if (buf == NULL && len > 0)
        return CJ_ERR_INVALID;
    for (size_t i = 0; i < len; i++) {
        g_state ^= g_state >> 12;
        g_state ^= g_state << 25;
        g_state ^= g_state >> 27;
        buf[i] = (uint8_t)((g_state * UINT64_C(0x2545f4914f6cdd1d)) >> 56);
    }
    return CJ_OK;
}
