/*
 * cojp/port.h - the platform port: what an engine needs from the device
 * besides cryptography (see cojp/crypto.h).
 *
 * A table of function pointers plus an opaque context, so that hosts and
 * tests can supply their own (the test port injects failing writes and
 * jumping clocks).  Engines receive the table at init time and call it
 * synchronously; none of the functions may call back into cojp.
 */
#ifndef COJP_PORT_H
#define COJP_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "cojp/err.h"

enum { CJ_LOG_ERROR = 0, CJ_LOG_WARN = 1, CJ_LOG_INFO = 2, CJ_LOG_DEBUG = 3 };

typedef struct cj_platform {
    void *ctx; /* passed as the first argument of every call */

    /* Monotonic time in milliseconds; never goes backwards. */
    uint64_t (*now_ms)(void *ctx);

    /* Persistent counters, identified by a small integer the caller
     * chooses.  store must not return before the value is durable (a
     * power cut after it returns keeps the value).  load returns
     * CJ_ERR_NOTFOUND for a counter never stored.  Both return CJ_OK or
     * CJ_ERR_STORAGE. */
    int (*counter_store)(void *ctx, uint32_t id, uint64_t value);
    int (*counter_load)(void *ctx, uint32_t id, uint64_t *value);

    /* Optional (may be NULL): one line of diagnostic text, no newline. */
    void (*log)(void *ctx, int level, const char *msg);
} cj_platform_t;

#endif
