/*
 * The Linux platform port's state file (port/platform_posix.h): the
 * persistent counters a pledge keeps across restarts (OSCORE sequence
 * number marks, replay windows).  What the port writes reads back; what
 * it could not have written is refused as a whole and changes nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "cojp/err.h"
#include "port/platform_posix.h"
#include "test.h"

static int parse(cj_posix_platform_t *p, const char *text)
{
    return cj_posix_platform_parse(p, text, strlen(text));
}

TEST(posix_state_accepts_what_the_port_writes)
{
    cj_posix_platform_t p;
    memset(&p, 0, sizeof p);
    CHECK_EQ(parse(&p, ""), CJ_OK);
    CHECK_EQ(p.count, 0);
    CHECK_EQ(parse(&p, "0 0\n4294967295 18446744073709551615\n7 12\n"), CJ_OK);
    CHECK_EQ(p.count, 3);
    CHECK_EQ(p.ids[0], 0);
    CHECK_EQ(p.values[0], 0);
    CHECK_EQ(p.ids[1], UINT32_MAX);
    CHECK(p.values[1] == UINT64_MAX);
    CHECK_EQ(p.ids[2], 7);
    CHECK_EQ(p.values[2], 12);
}

TEST(posix_state_refuses_anything_else_unchanged)
{
    static const char *const bad[] = {
        "1 2",                                   /* no line end */
        "1 2\n3",                                /* a cut line */
        "1  2\n", " 1 2\n", "1 2 \n", "1\t2\n",  /* other blanks */
        "1 2\r\n", "\n", "1\n",                  /* other lines */
        "-1 2\n", "1 -2\n", "+1 2\n", "1 +2\n",  /* signs */
        "01 2\n", "1 02\n",                      /* leading zeros */
        "4294967296 1\n",                        /* id past 32 bits */
        "1 18446744073709551616\n",              /* value past 64 bits */
        "1 99999999999999999999\n", "0x1 2\n", "1 2e3\n",
        "5 1\n6 2\n5 3\n",                       /* a counter twice */
    };
    cj_posix_platform_t p;
    char many[256];
    size_t n = 0;

    memset(&p, 0, sizeof p);
    CHECK_EQ(parse(&p, "9 99\n"), CJ_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(&p, bad[i]) != CJ_ERR_STORAGE)
            cj_test_failf(__FILE__, __LINE__, "accepted: \"%s\"", bad[i]);
        CHECK_EQ(p.count, 1);
        CHECK_EQ(p.ids[0], 9);
        CHECK_EQ(p.values[0], 99);
    }
    /* one counter more than the port keeps */
    for (int i = 0; i <= CJ_POSIX_COUNTERS; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%d 0\n", i);
    CHECK_EQ(parse(&p, many), CJ_ERR_STORAGE);
    CHECK_EQ(p.count, 1);
    /* a NUL inside the text is not a digit either */
    CHECK_EQ(cj_posix_platform_parse(&p, "1 2\n3\0 4\n", 9), CJ_ERR_STORAGE);
    CHECK_EQ(p.count, 1);
}

TEST(posix_state_file_round_trip)
{
    char dir[] = "/tmp/cojp-posix-XXXXXX", path[64];
    cj_posix_platform_t p;
    uint64_t v = 0;
    FILE *f;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/state", dir);
    /* a missing file is an empty store */
    CHECK_EQ(cj_posix_platform_init(&p, path), CJ_OK);
    CHECK_EQ(p.port.counter_load(p.port.ctx, 3, &v), CJ_ERR_NOTFOUND);
    CHECK_EQ(p.port.counter_store(p.port.ctx, 3, UINT64_MAX), CJ_OK);
    CHECK_EQ(p.port.counter_store(p.port.ctx, 1, 40), CJ_OK);
    CHECK_EQ(p.port.counter_store(p.port.ctx, 3, 41), CJ_OK);
    CHECK_EQ(cj_posix_platform_init(&p, path), CJ_OK);
    CHECK_EQ(p.count, 2);
    CHECK_EQ(p.port.counter_load(p.port.ctx, 3, &v), CJ_OK);
    CHECK_EQ(v, 41);
    CHECK_EQ(p.port.counter_load(p.port.ctx, 1, &v), CJ_OK);
    CHECK_EQ(v, 40);
    /* a damaged file is an error, not an empty or partial store */
    CHECK((f = fopen(path, "w")) != NULL);
    if (f != NULL) {
        fputs("3 41\n1 4", f);
        fclose(f);
    }
    CHECK_EQ(cj_posix_platform_init(&p, path), CJ_ERR_STORAGE);
    /* so is one larger than the port ever writes */
    CHECK((f = fopen(path, "w")) != NULL);
    if (f != NULL) {
        for (int i = 0; i < 100; i++)
            fputs("1 1\n", f);
        fclose(f);
    }
    CHECK_EQ(cj_posix_platform_init(&p, path), CJ_ERR_STORAGE);
    unlink(path);
    rmdir(dir);
}

static unsigned logged_errors;
static char logged[512];

static void count_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (level == CJ_LOG_ERROR) {
        logged_errors++;
        snprintf(logged, sizeof logged, "%s", msg);
    }
}

/* A state file that cannot be written: the store fails with memory left
 * as on disk, the reason is kept (errno) and logged once until a write
 * succeeds again, then once at the next failure. */
TEST(posix_state_write_failure_reported_once)
{
    char dir[] = "/tmp/cojp-posix-XXXXXX", sub[64], path[96];
    cj_posix_platform_t p;
    uint64_t v = 0;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(sub, sizeof sub, "%s/gone", dir);
    snprintf(path, sizeof path, "%s/state", sub);
    CHECK_EQ(cj_posix_platform_init(&p, path), CJ_OK); /* nothing there yet */
    p.port.log = count_log;
    logged_errors = 0;
    CHECK_EQ(p.port.counter_store(p.port.ctx, 1, 7), CJ_ERR_STORAGE);
    CHECK_EQ(p.port.counter_store(p.port.ctx, 1, 8), CJ_ERR_STORAGE);
    CHECK_EQ(p.save_errno, ENOENT);
    CHECK_EQ(logged_errors, 1);
    CHECK(strstr(logged, path) != NULL && strstr(logged, strerror(ENOENT)) != NULL);
    CHECK_EQ(p.port.counter_load(p.port.ctx, 1, &v), CJ_ERR_NOTFOUND);
    /* the folder appears: the next write succeeds and clears the reason */
    CHECK_EQ(mkdir(sub, 0700), 0);
    CHECK_EQ(p.port.counter_store(p.port.ctx, 1, 9), CJ_OK);
    CHECK_EQ(p.save_errno, 0);
    CHECK_EQ(logged_errors, 1);
    unlink(path);
    CHECK_EQ(rmdir(sub), 0);
    CHECK_EQ(p.port.counter_store(p.port.ctx, 1, 10), CJ_ERR_STORAGE);
    CHECK_EQ(logged_errors, 2);
    CHECK_EQ(p.port.counter_load(p.port.ctx, 1, &v), CJ_OK);
    CHECK_EQ(v, 9); /* what the file last held */
    rmdir(dir);
}

/* The JRC daemon's engine time (cj_wall_clock_t): the wall clock while
 * it moves forward, never backwards, and after a backward step the
 * monotonic clock's pace from where it was until the wall clock catches
 * up, so timers keep firing and no lease ends earlier than granted. */
TEST(posix_wall_clock_never_back_never_stalls)
{
    cj_wall_clock_t c;
    const uint64_t w0 = 1800000000000ull, m0 = 5000;
    uint64_t t, prev;

    memset(&c, 0, sizeof c);
    CHECK_EQ(cj_wall_clock_now(&c, w0, m0), w0);
    CHECK_EQ(cj_wall_clock_now(&c, w0 + 250, m0 + 250), w0 + 250);
    /* the wall clock is stepped back an hour: time keeps its pace */
    t = cj_wall_clock_now(&c, w0 + 500 - 3600000, m0 + 500);
    CHECK_EQ(t, w0 + 500);
    CHECK_EQ(cj_wall_clock_now(&c, w0 + 10500 - 3600000, m0 + 10500), w0 + 10500);
    /* until the wall clock is ahead again, from then on it follows it */
    CHECK_EQ(cj_wall_clock_now(&c, w0 + 20000, m0 + 11500), w0 + 20000);
    CHECK_EQ(cj_wall_clock_now(&c, w0 + 21000, m0 + 12500), w0 + 21000);
    /* a forward step is taken at once */
    CHECK_EQ(cj_wall_clock_now(&c, w0 + 7200000, m0 + 12600), w0 + 7200000);
    /* readings in the same millisecond, or a monotonic reading that does
     * not move, never take time back */
    prev = cj_wall_clock_now(&c, w0 + 7200000, m0 + 12600);
    CHECK_EQ(prev, w0 + 7200000);
    CHECK_EQ(cj_wall_clock_now(&c, w0 + 7199990, m0 + 12600), prev);
    /* millisecond truncation of the two clocks never adds up */
    memset(&c, 0, sizeof c);
    prev = 0;
    for (uint64_t ns = 0; ns < 2000000000ull; ns += 700000) {
        uint64_t w = (w0 * 1000000 + ns + 300000) / 1000000;
        uint64_t m = (m0 * 1000000 + ns + 900000) / 1000000;
        t = cj_wall_clock_now(&c, w, m);
        CHECK(t >= prev && t >= w && t <= w + 2);
        prev = t;
    }
}
