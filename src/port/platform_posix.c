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

static int save(const cj_posix_platform_t *p)
{
    char tmp[4200];
    FILE *f;
    int ok;
    snprintf(tmp, sizeof tmp, "%s.tmp", p->path);
    f = fopen(tmp, "w");
    if (!f)
        return CJ_ERR_STORAGE;
    for (int i = 0; i < p->count; i++)
        fprintf(f, "%" PRIu32 " %" PRIu64 "\n", p->ids[i], p->values[i]);
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, p->path) != 0 || fsync_dir_of(p->path) != 0) {
        unlink(tmp);
        return CJ_ERR_STORAGE;
    }
    return CJ_OK;
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

int cj_posix_platform_init(cj_posix_platform_t *p, const char *path)
{
    FILE *f;
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
    for (;;) {
        uint32_t id;
        uint64_t v;
        int n = fscanf(f, "%" SCNu32 " %" SCNu64, &id, &v);
        if (n == EOF)
            break;
        if (n != 2 || p->count == CJ_POSIX_COUNTERS) {
            fclose(f);
            return CJ_ERR_STORAGE;
        }
        p->ids[p->count] = id;
        p->values[p->count] = v;
        p->count++;
    }
    fclose(f);
    return CJ_OK;
}
