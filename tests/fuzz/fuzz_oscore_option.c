/*
 * Fuzz harness for the OSCORE option value codec (RFC 8613 section 6.1).
 *
 * The decoder accepts only the canonical form (no non-empty value with
 * all flags zero, no Partial IV with a leading zero byte, nothing after
 * the fields the flags announce), so whenever decode succeeds, encoding
 * the result must reproduce the input exactly, and every view it
 * returned must lie inside the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cojp/oscore.h"

#define FUZZ_ASSERT(c)                                                     \
    do {                                                                   \
        if (!(c))                                                          \
            __builtin_trap();                                              \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const uint8_t *p, size_t n, const uint8_t *data,
                  size_t size)
{
    if (n == 0)
        return 1;
    return p >= data && p <= data + size && n <= (size_t)(data + size - p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cj_oscore_option_t o;
    uint8_t out[300];
    int n;

    if (cj_oscore_option_decode(data, size, &o) != CJ_OK)
        return 0;
    FUZZ_ASSERT(o.piv_len <= CJ_OSCORE_MAX_PIV_LEN);
    FUZZ_ASSERT(inside(o.piv, o.piv_len, data, size));
    FUZZ_ASSERT(inside(o.kid_context, o.kid_context_len, data, size));
    FUZZ_ASSERT(inside(o.kid, o.kid_len, data, size));
    FUZZ_ASSERT(o.has_kid || o.kid_len == 0);
    FUZZ_ASSERT(o.has_kid_context || o.kid_context_len == 0);
    if (o.piv_len)
        FUZZ_ASSERT(cj_oscore_piv_value(o.piv, o.piv_len) <=
                    CJ_OSCORE_MAX_SSN);

    n = cj_oscore_option_encode(out, sizeof out, &o);
    FUZZ_ASSERT(n >= 0);
    FUZZ_ASSERT((size_t)n == size);
    FUZZ_ASSERT(size == 0 || memcmp(out, data, size) == 0);
    /* One byte short of room must be refused, never overrun. */
    if (size > 0)
        FUZZ_ASSERT(cj_oscore_option_encode(out, size - 1, &o) ==
                    CJ_ERR_NOSPACE);
    return 0;
}
