/*
 * loop.h - the daemons' event loop: poll(2) over a few descriptors (UDP
 * sockets) plus the engines' timers, with SIGINT/SIGTERM turned into an
 * orderly return through a self-pipe.  No busy waiting: the loop sleeps
 * until a descriptor is readable, the earliest timer is due or a signal
 * arrives.  SIGUSR1 asks for a report (the daemon's counters) and never
 * ends the loop; the report also comes at a fixed interval.
 *
 * Each round: tick(now) runs whatever is due and returns the next
 * deadline (CJ_TIME_NEVER for none); poll waits until then; every
 * readable descriptor's callback runs once (it should drain its socket,
 * boundedly).  A callback may call cj_loop_stop() to leave after the
 * round.
 */
#ifndef COJP_HOST_LOOP_H
#define COJP_HOST_LOOP_H

#include <poll.h>
#include <stdint.h>

#define CJ_LOOP_MAX_FDS 8

typedef void (*cj_loop_fd_fn)(void *arg, int fd, uint64_t now);
typedef uint64_t (*cj_loop_tick_fn)(void *arg, uint64_t now);
typedef void (*cj_loop_report_fn)(void *arg);

typedef struct cj_loop {
    struct pollfd pfd[CJ_LOOP_MAX_FDS + 1]; /* [0]: the signal pipe */
    cj_loop_fd_fn fn[CJ_LOOP_MAX_FDS + 1];
    void *arg[CJ_LOOP_MAX_FDS + 1];
    int n;
    cj_loop_tick_fn tick;
    void *tick_arg;
    cj_loop_report_fn report;
    void *report_arg;
    uint64_t report_every, report_next; /* ms; every 0: on SIGUSR1 only */
    int stop;
} cj_loop_t;

/* Results of cj_loop_run(). */
#define CJ_LOOP_DEADLINE 0 /* the deadline passed */
#define CJ_LOOP_STOPPED (-1000) /* cj_loop_stop() was called */
/* > 0: the signal number (SIGINT or SIGTERM) that ended the loop;
 * -1: poll failed. */

/* Set up and install the SIGINT/SIGTERM/SIGUSR1 handlers (SIGPIPE
 * ignored).  0, or -1 with errno set. */
int cj_loop_init(cj_loop_t *l);
/* Watch fd for input.  0, or -1 when full. */
int cj_loop_add(cj_loop_t *l, int fd, cj_loop_fd_fn fn, void *arg);
void cj_loop_set_tick(cj_loop_t *l, cj_loop_tick_fn fn, void *arg);
/* Call fn on each SIGUSR1 and every every_ms of monotonic time from now
 * (0: on the signal only).  Without a report, SIGUSR1 is ignored. */
void cj_loop_set_report(cj_loop_t *l, cj_loop_report_fn fn, void *arg,
                        uint64_t every_ms);
void cj_loop_stop(cj_loop_t *l);
/* Run until deadline (monotonic ms, CJ_TIME_NEVER for none), a stop or
 * a signal. */
int cj_loop_run(cj_loop_t *l, uint64_t deadline);
/* Close the signal pipe and restore default signal dispositions. */
void cj_loop_close(cj_loop_t *l);

#endif
