/*
 * platform_mem.h - an in-memory platform port with a virtual clock and
 * fault injection.  Used by the unit tests, the in-process network harness
 * and the simulator, where every mote keeps its "non-volatile" counters in
 * one of these.  Survives a simulated reboot as long as the struct does.
 */
#ifndef COJP_PLATFORM_MEM_H
#define COJP_PLATFORM_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "cojp/port.h"

#ifndef CJ_MEM_COUNTERS
#define CJ_MEM_COUNTERS 8
#endif

typedef struct cj_mem_platform {
    cj_platform_t port;        /* hand &port to engines */
    uint64_t now;              /* virtual time in ms, set by the caller */
    uint32_t ids[CJ_MEM_COUNTERS];
    uint64_t values[CJ_MEM_COUNTERS];
    bool used[CJ_MEM_COUNTERS];
    unsigned fail_stores;      /* the next this-many stores fail */
    unsigned fail_loads;       /* the next this-many loads fail */
    unsigned long stores;      /* successful stores so far */
} cj_mem_platform_t;

void cj_mem_platform_init(cj_mem_platform_t *m);

#endif
