/* Unit-test runner: runs every registered test, or those whose name
 * contains one of the command-line arguments. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

#define MAX_TESTS 2048

static struct {
    const char *name;
    cj_test_fn fn;
} tests[MAX_TESTS];
static size_t ntests;
static int current_failures;
static const char *current_name;

void cj_test_register(const char *name, cj_test_fn fn)
{
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "too many tests\n");
        exit(2);
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
}

void cj_test_fail(const char *file, int line, const char *what)
{
    current_failures++;
    if (current_failures <= 20)
        printf("  FAIL %s: %s:%d: %s\n", current_name, file, line, what);
}

void cj_test_failf(const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cj_test_fail(file, line, msg);
}

static void hexdump(char *out, size_t cap, const void *p, size_t n)
{
    const uint8_t *b = p;
    size_t i, o = 0;
    for (i = 0; i < n && o + 3 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%02x", b[i]);
    if (i < n && o + 4 < cap)
        snprintf(out + o, cap - o, "...");
}

void cj_test_check_mem(const char *file, int line, const char *what,
                       const void *a, size_t alen, const void *b, size_t blen)
{
    char ha[300], hb[300];
    if (alen == blen && (alen == 0 || memcmp(a, b, alen) == 0))
        return;
    hexdump(ha, sizeof ha, a, alen);
    hexdump(hb, sizeof hb, b, blen);
    cj_test_failf(file, line, "%s:\n      got  %s (%zu)\n      want %s (%zu)",
                  what, ha, alen, hb, blen);
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t cj_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *hex; hex++) {
        int v;
        if (*hex == ' ' || *hex == '\n' || *hex == '\t')
            continue;
        v = nibble(*hex);
        if (v < 0 || (hi < 0 && n == cap)) {
            fprintf(stderr, "cj_hex: bad test vector near '%s'\n", hex);
            exit(2);
        }
        if (hi < 0) {
            hi = v;
        } else {
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0) {
        fprintf(stderr, "cj_hex: odd number of digits\n");
        exit(2);
    }
    return n;
}

/* A test that hangs must not hang the run: each gets TEST_TIMEOUT_S. */
#define TEST_TIMEOUT_S 300
static void on_alarm(int sig)
{
    static const char msg[] = "FAIL (time limit exceeded, run aborted): ";
    size_t n = 0;
    (void)sig;
    while (current_name && current_name[n])
        n++;
    if (write(STDOUT_FILENO, msg, sizeof msg - 1) < 0 ||
        write(STDOUT_FILENO, current_name, n) < 0 || write(STDOUT_FILENO, "\n", 1) < 0)
        _exit(3);
    _exit(3);
}

static int selected(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i]))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, on_alarm);
    for (size_t i = 0; i < ntests; i++) {
        if (!selected(tests[i].name, argc, argv))
            continue;
        current_name = tests[i].name;
        current_failures = 0;
        alarm(TEST_TIMEOUT_S);
        tests[i].fn();
        alarm(0);
        if (current_failures) {
            printf("FAIL %s (%d checks)\n", tests[i].name, current_failures);
            failed++;
        } else {
            passed++;
        }
    }
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
