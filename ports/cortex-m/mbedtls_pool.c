/*
 * mbedtls_calloc / mbedtls_free for the Cortex-M build (see
 * mbedtls_config.h): a fixed pool of equal slots instead of a heap.
 *
 * What allocates, for the functions the crypto port calls:
 *   CCM (mbedtls_ccm_setkey -> cipher setup): one AES context;
 *   HKDF (HMAC via mbedtls_md_setup with hmac=1): one SHA-256 context and
 *   the HMAC pads (2 x 64 bytes).
 * The port frees everything before returning and never nests the two, so
 * two slots are enough; one more leaves room for a caller that keeps a
 * context of its own.  The crypto port is not reentrant (cojp/crypto.h),
 * and neither is this pool.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "mbedtls/aes.h"
#include "mbedtls/sha256.h"

#define SLOTS 3
#define SLOT_WORDS 72 /* 288 bytes */

_Static_assert(sizeof(mbedtls_aes_context) <= SLOT_WORDS * 4,
               "pool slot too small for an AES context");
_Static_assert(sizeof(mbedtls_sha256_context) <= SLOT_WORDS * 4,
               "pool slot too small for a SHA-256 context");
_Static_assert(2 * 64 <= SLOT_WORDS * 4, "pool slot too small for HMAC pads");

static uint32_t g_slot[SLOTS][SLOT_WORDS];
static uint8_t g_used[SLOTS];
static unsigned g_in_use, g_peak;

void *cj_port_mbedtls_calloc(size_t n, size_t size)
{
    if (n == 0 || size == 0 || size > SLOT_WORDS * 4 / n)
        return NULL;
    for (unsigned i = 0; i < SLOTS; i++) {
        if (!g_used[i]) {
            g_used[i] = 1;
            if (++g_in_use > g_peak)
                g_peak = g_in_use;
            memset(g_slot[i], 0, sizeof g_slot[i]);
            return g_slot[i];
        }
    }
    return NULL; /* mbedTLS turns this into an ALLOC_FAILED error */
}

void cj_port_mbedtls_free(void *p)
{
    for (unsigned i = 0; i < SLOTS; i++) {
        if (p == g_slot[i] && g_used[i]) {
            /* Contexts held keys; mbedTLS zeroizes them too, but the pool
             * does not rely on it. */
            memset(g_slot[i], 0, sizeof g_slot[i]);
            __asm__ volatile("" : : "r"(g_slot[i]) : "memory");
            g_used[i] = 0;
            g_in_use--;
            return;
        }
    }
}

/* Most slots in use at once since reset (for the test report). */
unsigned cj_port_mbedtls_pool_peak(void)
{
    return g_peak;
}
