#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cojp/crypto.h"
#include "net.h"
#include "store/common.h"

static uint64_t clock_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t cj_host_now(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

uint64_t cj_host_wall(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int cj_hex_parse(const char *s, uint8_t *out, size_t cap, size_t want)
{
    size_t n = strlen(s);
    /* the length is checked first so that out stays untouched */
    if (want && n != 2 * want)
        return -1;
    return cj_store_hex_decode(s, s + n, out, cap);
}

int cj_secret_arg(const char *cmd, const char *arg, uint8_t *out, size_t cap,
                  size_t want, const char *bad, int *rc)
{
    char text[512];
    const char *s = arg;
    int n;

    if (arg[0] == '@') {
        FILE *f = fopen(arg + 1, "r");
        size_t len = 0, b = 0;
        if (f) {
            len = fread(text, 1, sizeof text, f);
            if (ferror(f) || len == sizeof text)
                len = sizeof text; /* unreadable or far too long */
            fclose(f);
        }
        if (!f || len == sizeof text) {
            *rc = cj_fail(CJ_EXIT_RUNTIME, cmd, "cannot read the key file '%s'%s%s", arg + 1,
                          f ? "" : ": ", f ? "" : strerror(errno));
            cj_crypto_wipe(text, sizeof text);
            return -1;
        }
        while (len > 0 && isspace((unsigned char)text[len - 1]))
            len--;
        while (b < len && isspace((unsigned char)text[b]))
            b++;
        text[len] = '\0';
        s = text + b;
    }
    n = cj_hex_parse(s, out, cap, want);
    cj_crypto_wipe(text, sizeof text);
    if (n < 0)
        *rc = cj_fail(CJ_EXIT_USAGE, cmd, "%s", bad);
    return n;
}

char *cj_hex_fmt(char *out, const uint8_t *p, size_t n)
{
    *cj_store_hex_encode(out, p, n) = '\0';
    return out;
}

int cj_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *v)
{
    unsigned long x;
    if (cj_parse_dec(s, max, &x) || x < min)
        return -1;
    *v = (uint32_t)x;
    return 0;
}

int cj_fail(int code, const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cj_opt_unknown(const char *cmd, char **argv)
{
    return cj_fail(CJ_EXIT_USAGE, cmd, "unknown or incomplete option '%s' (try --help)",
                   argv[optind - 1]);
}

int cj_opt_extra(const char *cmd, int argc, char **argv)
{
    if (optind == argc)
        return 0;
    return cj_fail(CJ_EXIT_USAGE, cmd, "unexpected argument '%s'", argv[optind]);
}

int cj_addr_arg(const char *cmd, const char *s, struct sockaddr_storage *ss,
                socklen_t *len)
{
    const char *pct = s[0] == '[' ? strchr(s, '%') : NULL;
    const char *close = pct ? strchr(pct, ']') : NULL;

    if (cj_net_parse(s, ss, len) == 0)
        return 0;
    if (close && close > pct + 1 && !isdigit((unsigned char)pct[1])) {
        /* "[fe80::1%wpan0]:5683" on a host without wpan0: the address
         * is right without its zone, which names no interface here */
        char zone[IF_NAMESIZE + 1], bare[128];
        size_t n = (size_t)(close - pct - 1), head = (size_t)(pct - s);
        struct sockaddr_storage t;
        socklen_t tl;
        if (n < sizeof zone && head + strlen(close) < sizeof bare) {
            memcpy(zone, pct + 1, n);
            zone[n] = 0;
            memcpy(bare, s, head);
            strcpy(bare + head, close);
            if (if_nametoindex(zone) == 0 && cj_net_parse(bare, &t, &tl) == 0)
                return cj_fail(CJ_EXIT_USAGE, cmd,
                               "bad address '%s': this host has no interface '%s'", s, zone);
        }
    }
    return cj_fail(CJ_EXIT_USAGE, cmd,
                   "bad address '%s' (want [IPv6%%zone]:port or IPv4:port)", s);
}

/* ---- log -------------------------------------------------------------- */

static cj_hlog_fmt_t log_fmt = CJ_HLOG_JSON;
static char log_buf[4096];
static size_t log_len;
static int log_level = 2;
static bool log_muted;
static uint32_t stats_s = CJ_HLOG_STATS_DEFAULT_S;

uint64_t cj_hlog_stats_ms(void)
{
    return (uint64_t)stats_s * 1000u;
}

void cj_hlog_set_level(int level)
{
    log_level = level;
}

static int level_num(const char *level)
{
    if (!strcmp(level, "error"))
        return 0;
    if (!strcmp(level, "warn"))
        return 1;
    if (!strcmp(level, "info"))
        return 2;
    return 3;
}

void cj_hlog_set_format(cj_hlog_fmt_t f)
{
    log_fmt = f;
}

int cj_hlog_option(const char *cmd, int c, const char *arg)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    if (c == 'l') {
        if (cj_hlog_parse_format(arg))
            return cj_fail(CJ_EXIT_USAGE, cmd, "--log must be json or text");
        return 0;
    }
    if (c == 'Y') {
        if (cj_parse_u32(arg, 0, CJ_HLOG_STATS_MAX_S, &stats_s))
            return cj_fail(CJ_EXIT_USAGE, cmd, "--stats-interval must be 0..%u seconds",
                           CJ_HLOG_STATS_MAX_S);
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        if (!strcmp(arg, names[i])) {
            cj_hlog_set_level(i);
            return 0;
        }
    }
    return cj_fail(CJ_EXIT_USAGE, cmd, "--log-level must be error, warn, info or debug");
}

int cj_hlog_parse_format(const char *s)
{
    if (!strcmp(s, "json"))
        cj_hlog_set_format(CJ_HLOG_JSON);
    else if (!strcmp(s, "text"))
        cj_hlog_set_format(CJ_HLOG_TEXT);
    else
        return -1;
    return 0;
}

static void put(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void put(const char *fmt, ...)
{
    va_list ap;
    int n;
    if (log_muted || log_len >= sizeof log_buf - 1)
        return;
    va_start(ap, fmt);
    n = vsnprintf(log_buf + log_len, sizeof log_buf - log_len, fmt, ap);
    va_end(ap);
    if (n > 0)
        log_len += (size_t)n < sizeof log_buf - log_len ? (size_t)n
                                                        : sizeof log_buf - 1 - log_len;
}

/* Appenders without printf (a record per join: the hot path). */
static void put_mem(const char *p, size_t n)
{
    if (log_muted)
        return;
    if (n > sizeof log_buf - 1 - log_len)
        n = sizeof log_buf - 1 - log_len;
    memcpy(log_buf + log_len, p, n);
    log_len += n;
}

static void put_lit(const char *s)
{
    put_mem(s, strlen(s));
}

static void put_u64(unsigned long long v)
{
    char d[20];
    size_t i = sizeof d;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put_mem(d + i, sizeof d - i);
}

/* A string value: JSON-escaped, or as is in text mode (quoted when it
 * holds a space). */
static void put_str(const char *s)
{
    if (log_fmt == CJ_HLOG_TEXT) {
        put(strchr(s, ' ') ? "\"%s\"" : "%s", s);
        return;
    }
    put_lit("\"");
    while (*s) {
        /* a run that needs no escape goes in with one copy */
        const char *e = s;
        unsigned char c;
        while ((c = (unsigned char)*e) >= 0x20 && c != '"' && c != '\\')
            e++;
        if (e > s)
            put_mem(s, (size_t)(e - s));
        if (!c)
            break;
        if (c == '"' || c == '\\')
            put("\\%c", c);
        else
            put("\\u%04x", c);
        s = e + 1;
    }
    put_lit("\"");
}

static void put_key(const char *key)
{
    put_lit(log_fmt == CJ_HLOG_TEXT ? " " : ",\"");
    put_lit(key);
    put_lit(log_fmt == CJ_HLOG_TEXT ? "=" : "\":");
}

/* UTC time with milliseconds, ISO 8601; the date and time of day are
 * formatted once per second. */
static void format_ts(char ts[96])
{
    static time_t last = (time_t)-1;
    static char base[80];
    static size_t n;
    uint64_t w = cj_host_wall();
    time_t t = (time_t)(w / 1000);
    unsigned ms = (unsigned)(w % 1000);

    if (t != last) {
        struct tm tm;
        int k;
        gmtime_r(&t, &tm);
        k = snprintf(base, sizeof base, "%04d-%02d-%02dT%02d:%02d:%02d",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
        n = k > 0 && (size_t)k < sizeof base ? (size_t)k : 0;
        last = t;
    }
    memcpy(ts, base, n);
    ts[n] = '.';
    ts[n + 1] = (char)('0' + ms / 100);
    ts[n + 2] = (char)('0' + ms / 10 % 10);
    ts[n + 3] = (char)('0' + ms % 10);
    ts[n + 4] = 'Z';
    ts[n + 5] = '\0';
}

static void begin(const char *level, const char *event, bool always)
{
    char ts[96];

    log_len = 0;
    log_muted = !always && level_num(level) > log_level;
    if (log_muted)
        return;
    format_ts(ts);
    if (log_fmt == CJ_HLOG_TEXT) {
        put("%s %-5s %s", ts, level, event);
    } else {
        put_lit("{\"ts\":\"");
        put_lit(ts);
        put_lit("\",\"level\":");
        put_str(level);
        put_lit(",\"event\":");
        put_str(event);
    }
}

void cj_hlog_begin(const char *level, const char *event)
{
    begin(level, event, false);
}

void cj_hlog_begin_always(const char *level, const char *event)
{
    begin(level, event, true);
}

void cj_hlog_counters_begin(const char *level, const char *event, const char *role,
                            int signo, uint64_t started)
{
    cj_hlog_begin_always(level, event);
    cj_hlog_str("role", role);
    if (signo > 0)
        cj_hlog_int("signal", signo);
    cj_hlog_uint("uptime_s", (cj_host_now() - started) / 1000u);
}

void cj_hlog_str(const char *key, const char *val)
{
    put_key(key);
    if (val)
        put_str(val);
    else
        put_lit("null");
}

void cj_hlog_int(const char *key, long long val)
{
    put_key(key);
    if (val < 0) {
        put_lit("-");
        put_u64(0ull - (unsigned long long)val);
    } else {
        put_u64((unsigned long long)val);
    }
}

void cj_hlog_uint(const char *key, unsigned long long val)
{
    put_key(key);
    put_u64(val);
}

void cj_hlog_bool(const char *key, bool val)
{
    put_key(key);
    put_lit(val ? "true" : "false");
}

/* Hex digits need no escape and hold no space: they go in with one copy,
 * quoted in JSON, as put_str would write them. */
void cj_hlog_hex(const char *key, const uint8_t *p, size_t n)
{
    char h[2 * 64 + 2];
    bool json = log_fmt != CJ_HLOG_TEXT;
    if (n > 64)
        n = 64;
    put_key(key);
    h[0] = '"';
    *cj_store_hex_encode(h + 1, p, n) = '"';
    put_mem(json ? h : h + 1, 2 * n + (json ? 2 : 0));
}

/* Addresses as last formatted.  A JRC logs a record per join naming
 * the Join Proxy it came through, and a network has few of those, so
 * the text (inet_ntop and printf: most of a record's cost) is kept for
 * the last few.  Only addresses without a zone: the name of an
 * interface index may change while the daemon runs. */
#define ADDR_MEMO 4
static struct {
    cj_addr_t a;
    char text[96];
} addr_memo[ADDR_MEMO];
static unsigned addr_memo_next;

static const char *addr_text(const cj_addr_t *a, char *b, size_t cap)
{
    bool zoned = a->len == 23 && (a->b[19] | a->b[20] | a->b[21] | a->b[22]);
    unsigned i;

    if (a->len == 0 || zoned)
        return cj_net_fmt_addr(a, b, cap);
    for (i = 0; i < ADDR_MEMO; i++)
        if (cj_addr_equal(&addr_memo[i].a, a))
            return addr_memo[i].text;
    i = addr_memo_next++ % ADDR_MEMO;
    addr_memo[i].a = *a;
    cj_net_fmt_addr(a, addr_memo[i].text, sizeof addr_memo[i].text);
    return addr_memo[i].text;
}

void cj_hlog_addr(const char *key, const cj_addr_t *a)
{
    char b[96];
    if (log_muted)
        return;
    cj_hlog_str(key, addr_text(a, b, sizeof b));
}

/* Records held back by cj_hlog_hold(), written by cj_hlog_flush(). */
static char hold_buf[64 * 1024];
static size_t hold_len;
static bool holding;

static void hold_write(void)
{
    size_t off = 0;
    while (off < hold_len) {
        ssize_t n = write(STDERR_FILENO, hold_buf + off, hold_len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    hold_len = 0;
}

void cj_hlog_end(void)
{
    if (log_muted)
        return;
    if (log_fmt == CJ_HLOG_JSON)
        put_lit("}");
    put_lit("\n");
    if (log_buf[log_len - 1] != '\n') /* truncated: still one line */
        log_buf[log_len - 1] = '\n';
    if (holding) {
        if (hold_len + log_len > sizeof hold_buf)
            hold_write();
        memcpy(hold_buf + hold_len, log_buf, log_len);
        hold_len += log_len;
    } else {
        (void)!write(STDERR_FILENO, log_buf, log_len);
    }
    log_len = 0;
}

void cj_hlog_hold(void)
{
    holding = true;
}

void cj_hlog_flush(void)
{
    hold_write();
    holding = false;
}

void cj_hlog_platform(void *ctx, int level, const char *msg)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    (void)ctx;
    if (level < 0 || level > 3)
        level = 0;
    if (level == 3)
        return;
    cj_hlog_begin(names[level], "engine");
    cj_hlog_str("msg", msg);
    cj_hlog_end();
}

bool cj_answer_ping(int fd, const uint8_t *buf, size_t len, const cj_addr_t *from)
{
    /* version 1, CON, no token, code 0.00, nothing after the header */
    uint8_t rst[4];
    cj_out_t out = {.buf = rst, .cap = sizeof rst, .len = sizeof rst, .to = *from};
    if (len != 4 || buf[0] != 0x40 || buf[1] != 0)
        return false;
    rst[0] = 0x70; /* version 1, RST */
    rst[1] = 0;
    rst[2] = buf[2];
    rst[3] = buf[3];
    cj_send_out(fd, &out);
    return true;
}

int cj_send_out_dscp(int fd, const cj_out_t *out, int dscp)
{
    struct sockaddr_storage ss;
    socklen_t len;
    ssize_t n;
    if (!out->len)
        return 0;
    if (cj_net_from_addr(&out->to, &ss, &len) != 0)
        return -1;
    n = dscp < 0 ? sendto(fd, out->buf, out->len, 0, (struct sockaddr *)&ss, len)
                 : cj_net_send_dscp(fd, out->buf, out->len, &ss, len, dscp);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return -1;
    return 0;
}

int cj_send_out(int fd, const cj_out_t *out)
{
    return cj_send_out_dscp(fd, out, -1);
}
