/*
 * Fuzz the Linux platform port's state file parser
 * (port/platform_posix.h), which restores a pledge's persistent counters.
 * Accepted text is exactly what the port would write for the counters it
 * yields; refused text leaves the counters as they were.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cojp/err.h"
#include "port/platform_posix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cj_posix_platform_t p;
    char out[CJ_POSIX_COUNTERS * 32 + 1];
    size_t n = 0;

    memset(&p, 0, sizeof p);
    p.count = 1;
    p.ids[0] = 77;
    p.values[0] = 88;
    if (cj_posix_platform_parse(&p, (const char *)data, size) != CJ_OK) {
        if (p.count != 1 || p.ids[0] != 77 || p.values[0] != 88)
            abort();
        return 0;
    }
    if (p.count < 0 || p.count > CJ_POSIX_COUNTERS)
        abort();
    for (int i = 0; i < p.count; i++) {
        for (int j = 0; j < i; j++)
            if (p.ids[j] == p.ids[i])
                abort();
        n += (size_t)snprintf(out + n, sizeof out - n, "%" PRIu32 " %" PRIu64 "\n",
                              p.ids[i], p.values[i]);
    }
    if (n != size || memcmp(out, data, size) != 0)
        abort();
    return 0;
}
