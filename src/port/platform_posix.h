/*
 * platform_posix.h - the Linux platform port: CLOCK_MONOTONIC time and
 * persistent counters kept in one small state file.
 *
 * Every store rewrites the file through a temporary file, fsync and
 * rename, then fsyncs the folder, so a crash leaves either the old or the
 * new value and a returned store is durable.  Without a path the counters
 * live in memory only.
 */
#ifndef COJP_PLATFORM_POSIX_H
#define COJP_PLATFORM_POSIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cojp/port.h"

#define CJ_POSIX_COUNTERS 16

typedef struct cj_posix_platform {
    cj_platform_t port;
    char path[4096]; /* empty: memory only */
    uint32_t ids[CJ_POSIX_COUNTERS];
    uint64_t values[CJ_POSIX_COUNTERS];
    int count;
    int log_level; /* messages above this level are dropped */
    bool log_json;
    int save_errno; /* why the last write of the file failed; 0 after
                     * one that succeeded (a failure is logged once, at
                     * the first after a success) */
} cj_posix_platform_t;

/* Initialise; when path is not NULL, load the counters it holds (a missing
 * file is an empty store).  Returns CJ_OK or CJ_ERR_STORAGE when the file
 * exists but cannot be read or parsed. */
int cj_posix_platform_init(cj_posix_platform_t *p, const char *path);

/* The counters of a state file's text[0..len): lines "ID VALUE\n" in
 * decimal (ID up to 2^32-1, VALUE up to 2^64-1, no sign, no leading
 * zeros, one space), at most CJ_POSIX_COUNTERS of them, each ID once:
 * exactly what the port writes.  CJ_OK with p's counters replaced, or
 * CJ_ERR_STORAGE with p unchanged. */
int cj_posix_platform_parse(cj_posix_platform_t *p, const char *text,
                            size_t len);

/* Engine time for a host whose engine needs wall-clock milliseconds
 * (the JRC: short-id leases are stored as UTC times).  It follows the
 * wall clock forward, never goes backwards, and when the wall clock is
 * stepped back it runs on with the monotonic clock from where it was
 * (timers keep firing; leases granted meanwhile end later, never
 * earlier, so no short id is reused early) until the wall clock has
 * caught up.  Start from a zeroed struct. */
typedef struct cj_wall_clock {
    uint64_t now, mono;
    bool started;
} cj_wall_clock_t;

/* The engine time for the current wall and monotonic readings (ms). */
uint64_t cj_wall_clock_now(cj_wall_clock_t *c, uint64_t wall, uint64_t mono);

#endif
