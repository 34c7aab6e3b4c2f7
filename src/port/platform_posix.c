#include "platform_posix.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t posix_now(void *ctx)
{
    struct timespec ts;
    (void)ctx;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int fsync_dir_of(const char *path)
{
    char copy[4096];
    int fd, rc;
    snprintf(copy, sizeof copy, "%s", path);
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

static int save_file(const cj_posix_platform_t *p)
{
    char tmp[4200];
    FILE *f;
    int e = 0;
    snprintf(tmp, sizeof tmp, "%s.tmp", p->path);
    f = fopen(tmp, "w");
    if (!f)
        return errno ? errno : EIO;
    for (int i = 0; i < p->count; i++)
        fprintf(f, "%" PRIu32 " %" PRIu64 "\n", p->ids[i], p->values[i]);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        e = errno ? errno : EIO;
    if (fclose(f) != 0 && !e)
        e = errno ? errno : EIO;
    if (!e && (rename(tmp, p->path) != 0 || fsync_dir_of(p->path) != 0))
        e = errno ? errno : EIO;
    if (e) {
        unlink(tmp);
        return e;
    }
    return 0;
}

/* Write the file; a failure is logged once until a write succeeds again
 * (the engine retries, and nothing goes out meanwhile: RFC 8613 B.1.1). */
static int save(cj_posix_platform_t *p)
{
    int e = save_file(p);
    if (e && !p->save_errno && p->port.log) {
        char msg[4300];
        snprintf(msg, sizeof msg, "cannot write the state file %s: %s; nothing is sent until it can be",
                 p->path, strerror(e));
        p->port.log(p->port.ctx, CJ_LOG_ERROR, msg);
    }
    p->save_errno = e;
    return e ? CJ_ERR_STORAGE : CJ_OK;
}

static int posix_store(void *ctx, uint32_t id, uint64_t value)
{
    cj_posix_platform_t *p = ctx;
    int i;
    uint64_t old = 0;
    bool added = false;
    for (i = 0; i < p->count && p->ids[i] != id; i++)
        ;
    if (i == p->count) {
        if (p->count == CJ_POSIX_COUNTERS)
            return CJ_ERR_STORAGE;
        p->ids[i] = id;
        p->count++;
        added = true;
    } else {
        old = p->values[i];
    }
    p->values[i] = value;
    if (p->path[0] && save(p) != CJ_OK) {
        /* Keep memory equal to what is on disk. */
        if (added)
            p->count--;
        else
            p->values[i] = old;
        return CJ_ERR_STORAGE;
    }
    return CJ_OK;
}

static int posix_load(void *ctx, uint32_t id, uint64_t *value)
{
    cj_posix_platform_t *p = ctx;
    for (int i = 0; i < p->count; i++) {
        if (p->ids[i] == id) {
            *value = p->values[i];
            return CJ_OK;
        }
    }
    return CJ_ERR_NOTFOUND;
}

static void posix_log(void *ctx, int level, const char *msg)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    cj_posix_platform_t *p = ctx;
    if (level > p->log_level || level < 0 || level > 3)
        return;
    if (p->log_json)
        fprintf(stderr, "{\"level\":\"%s\",\"msg\":\"%s\"}\n", names[level], msg);
    else
        fprintf(stderr, "%s: %s\n", names[level], msg);
}

/* One decimal number of at most max at *s (digits only, no sign, no
 * leading zero unless it is 0), ending at the character stop; *s moves
 * past stop.  False on anything else. */
static bool state_number(const char **s, const char *end, char stop,
                         uint64_t max, uint64_t *v)
{
    const char *q = *s;
    uint64_t x = 0;

    if (q == end || *q < '0' || *q > '9' || (*q == '0' && q + 1 < end && q[1] != stop))
        return false;
    for (; q < end && *q != stop; q++) {
        if (*q < '0' || *q > '9' || x > (max - (uint64_t)(*q - '0')) / 10)
            return false;
        x = x * 10 + (uint64_t)(*q - '0');
    }
    if (q == end)
        return false; /* the line or field is not terminated */
    *s = q + 1;
    *v = x;
    return true;
}

int cj_posix_platform_parse(cj_posix_platform_t *p, const char *text,
                            size_t len)
{
    const char *s = text, *end = text + len;
    uint32_t ids[CJ_POSIX_COUNTERS];
    uint64_t values[CJ_POSIX_COUNTERS];
    int count = 0;

    while (s < end) {
        uint64_t id, v;
        if (count == CJ_POSIX_COUNTERS ||
            !state_number(&s, end, ' ', UINT32_MAX, &id) ||
            !state_number(&s, end, '\n', UINT64_MAX, &v))
            return CJ_ERR_STORAGE;
        for (int i = 0; i < count; i++)
            if (ids[i] == id)
                return CJ_ERR_STORAGE; /* one value per counter */
        ids[count] = (uint32_t)id;
        values[count++] = v;
    }
    memcpy(p->ids, ids, sizeof ids);
    memcpy(p->values, values, sizeof values);
    p->count = count;
    return CJ_OK;
}

int cj_posix_platform_init(cj_posix_platform_t *p, const char *path)
{
    /* a file save() wrote: at most 16 lines of two numbers */
    char text[CJ_POSIX_COUNTERS * 32 + 1];
    size_t len;
    FILE *f;
    int rc;

    memset(p, 0, sizeof *p);
    p->port.ctx = p;
    p->port.now_ms = posix_now;
    p->port.counter_store = posix_store;
    p->port.counter_load = posix_load;
    p->port.log = posix_log;
    p->log_level = CJ_LOG_INFO;
    if (!path)
        return CJ_OK;
    if (strlen(path) >= sizeof p->path)
        return CJ_ERR_STORAGE;
    strcpy(p->path, path);
    f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? CJ_OK : CJ_ERR_STORAGE;
    len = fread(text, 1, sizeof text, f);
    rc = ferror(f) || len == sizeof text ? CJ_ERR_STORAGE
                                         : cj_posix_platform_parse(p, text, len);
    fclose(f);
    return rc;
}

uint64_t cj_wall_clock_now(cj_wall_clock_t *c, uint64_t wall, uint64_t mono)
{
    uint64_t t = wall;
    if (c->started) {
        /* the monotonic clock and the wall clock run at one rate (NTP
         * slews both); only a step of the wall clock tells them apart */
        uint64_t run = c->now + (mono > c->mono ? mono - c->mono : 0);
        if (run > t)
            t = run;
    }
    c->now = t;
    c->mono = mono;
    c->started = true;
    return t;
}
