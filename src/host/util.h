/*
 * util.h - small helpers shared by the cojp subcommands: clock; hex,
 * number and address parsing for command-line arguments and the one-line
 * errors of bad ones; the JSON/text log of the daemons; and sending an
 * engine's output datagram.
 *
 * Exit codes of every subcommand: 0 success, 1 runtime failure
 * (unreachable peer, unreadable database, timeout), 2 bad arguments.
 */
#ifndef COJP_HOST_UTIL_H
#define COJP_HOST_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cojp/engine.h"

#define CJ_EXIT_OK 0
#define CJ_EXIT_RUNTIME 1
#define CJ_EXIT_USAGE 2

/* CLOCK_MONOTONIC in ms (engine time) and CLOCK_REALTIME in ms (logs,
 * lease bookkeeping shown to operators). */
uint64_t cj_host_now(void);
uint64_t cj_host_wall(void);

/* Parse exactly `want` bytes of hex (want 0: any length 1..cap) into
 * out; either case, nothing else.  Returns the byte count or -1.  The
 * digits are decoded by the registry's cj_store_hex_decode(), so a PSK
 * given on the command line and one in a CSV file read alike. */
int cj_hex_parse(const char *s, uint8_t *out, size_t cap, size_t want);
/* A key argument (--psk, --okm, --k2): hex as for cj_hex_parse, or
 * "@FILE" for the hex held in FILE (one line; white space around it is
 * ignored), so that the key does not show in the process list.  Returns
 * the byte count; on failure prints the one-line error of cmd and
 * returns -1 with *rc the exit code: 1 when FILE cannot be read, 2 with
 * the message bad when the hex is not what is wanted. */
int cj_secret_arg(const char *cmd, const char *arg, uint8_t *out, size_t cap,
                  size_t want, const char *bad, int *rc);
/* Lower-case hex of p[0..n) into out (2n+1 bytes). */
char *cj_hex_fmt(char *out, const uint8_t *p, size_t n);
/* Decimal unsigned in [min, max]: 0 or -1. */
int cj_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *v);

/* One-line error for subcommand cmd ("cojp proxy"), then returns code. */
int cj_fail(int code, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* After getopt_long (which leaves optind behind the option it could not
 * take) for subcommand cmd: the one-line error for an unknown option or
 * one without its argument; returns CJ_EXIT_USAGE. */
int cj_opt_unknown(const char *cmd, char **argv);
/* Once getopt_long is done: 0 when it took every argument, else
 * CJ_EXIT_USAGE after the one-line error naming the first one left. */
int cj_opt_extra(const char *cmd, int argc, char **argv);

/* Parse address argument s of subcommand cmd with cj_net_parse(): 0, or
 * CJ_EXIT_USAGE after the one-line error naming the accepted forms. */
int cj_addr_arg(const char *cmd, const char *s, struct sockaddr_storage *ss,
                socklen_t *len);

/* ---- log -------------------------------------------------------------- */

/* Daemon logs go to stderr, one record per line: a JSON object
 *   {"ts":"2024-05-01T12:00:00.123Z","level":"info","event":"joined",...}
 * by default, or "TS LEVEL EVENT key=value ..." with --log text. */
typedef enum { CJ_HLOG_JSON = 0, CJ_HLOG_TEXT } cj_hlog_fmt_t;
void cj_hlog_set_format(cj_hlog_fmt_t f);
/* "json" or "text": 0, else -1. */
int cj_hlog_parse_format(const char *s);
/* Records below this level are dropped: 0 error, 1 warn, 2 info (the
 * default), 3 debug. */
void cj_hlog_set_level(int level);
/* The daemons' log options, with option codes 'l', 'V' and 'Y':
 *   --log json|text, --log-level error|warn|info|debug and
 *   --stats-interval SECONDS (a `stats` record of the daemon's counters
 *   every SECONDS, default 3600, 0: only on SIGUSR1). */
#define CJ_HLOG_OPTIONS                                                        \
    {"log", required_argument, NULL, 'l'},                                     \
        {"log-level", required_argument, NULL, 'V'},                           \
        {"stats-interval", required_argument, NULL, 'Y'}
#define CJ_HLOG_HELP                                                           \
    "  --log FORMAT     stderr log as json (default) or text\n"                \
    "  --log-level L    error, warn, info (default) or debug; start, stats\n"  \
    "                   and shutdown records are always written\n"             \
    "  --stats-interval S  log the counters every S seconds (default 3600;\n" \
    "                   0: only on SIGUSR1, which logs them at any time)\n"
#define CJ_HLOG_STATS_DEFAULT_S 3600u
#define CJ_HLOG_STATS_MAX_S 604800u /* a week */
/* Apply the log option c ('l', 'V' or 'Y') with its argument: 0, or the
 * exit code after the one-line error of cmd. */
int cj_hlog_option(const char *cmd, int c, const char *arg);
/* The interval --stats-interval set, in ms (0: none). */
uint64_t cj_hlog_stats_ms(void);
/* Begin a daemon's counters record, its shutdown record or a stats
 * record, which no level filters out: event, the daemon's role, the
 * signal that ended the run (signo > 0) and uptime_s since started
 * (monotonic ms); the caller adds the counters and ends it. */
void cj_hlog_counters_begin(const char *level, const char *event, const char *role,
                            int signo, uint64_t started);

/* Build one record: begin, any number of fields, end.  Records are built
 * in a static buffer (single-threaded hosts) and written with one
 * write(2).  level: "error", "warn", "info", "debug". */
void cj_hlog_begin(const char *level, const char *event);
/* The same for a record that no level filters out (a daemon's start and
 * shutdown). */
void cj_hlog_begin_always(const char *level, const char *event);
void cj_hlog_str(const char *key, const char *val);
void cj_hlog_int(const char *key, long long val);
void cj_hlog_uint(const char *key, unsigned long long val);
void cj_hlog_bool(const char *key, bool val);
void cj_hlog_hex(const char *key, const uint8_t *p, size_t n);
void cj_hlog_addr(const char *key, const cj_addr_t *a);
void cj_hlog_end(void);
/* Batch records: after cj_hlog_hold() finished records are kept in a
 * buffer (written early only when it fills) until cj_hlog_flush() writes
 * them, in order, and ends the hold.  For a daemon logging one record
 * per datagram of a batch: one write(2) per batch. */
void cj_hlog_hold(void);
void cj_hlog_flush(void);

/* A cj_platform_t log callback writing through the above (event
 * "engine", field "msg"). */
void cj_hlog_platform(void *ctx, int level, const char *msg);

/* Send out->buf[0..out->len) to out->to on fd (nothing when len is 0).
 * 0, or -1 (address not a host address, or sendto failed other than
 * with EAGAIN). */
int cj_send_out(int fd, const cj_out_t *out);
/* The same with the datagram marked with dscp (cj_net_send_dscp); dscp
 * -1: unmarked, as cj_send_out. */
int cj_send_out_dscp(int fd, const cj_out_t *out, int dscp);

/* CoAP ping (RFC 7252 section 4.3): when buf is an empty Confirmable
 * message, answer it on fd with the Reset of its Message ID and return
 * true; false for anything else.  The engines of a Join Proxy and a
 * pledge drop such a message, so their daemons answer it here. */
bool cj_answer_ping(int fd, const uint8_t *buf, size_t len, const cj_addr_t *from);

#endif
