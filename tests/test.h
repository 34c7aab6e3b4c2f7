/*
 * tests/test.h - the unit-test harness.
 *
 * TEST(name) { ... } defines a test that registers itself at start-up;
 * no list needs editing when a test file is added.  A test passes when
 * none of its CHECKs failed.  The runner prints one line per failure and
 * closes with "N passed, N failed".
 */
#ifndef COJP_TEST_H
#define COJP_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef void (*cj_test_fn)(void);
void cj_test_register(const char *name, cj_test_fn fn);
void cj_test_fail(const char *file, int line, const char *what);
void cj_test_failf(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define TEST(name)                                                         \
    static void test_##name(void);                                         \
    __attribute__((constructor)) static void register_##name(void)        \
    {                                                                      \
        cj_test_register(#name, test_##name);                              \
    }                                                                      \
    static void test_##name(void)

#define CHECK(c)                                                           \
    do {                                                                   \
        if (!(c))                                                          \
            cj_test_fail(__FILE__, __LINE__, #c);                          \
    } while (0)

/* Integer equality, printing both values on failure. */
#define CHECK_EQ(a, b)                                                     \
    do {                                                                   \
        long long cj_a_ = (long long)(a), cj_b_ = (long long)(b);          \
        if (cj_a_ != cj_b_)                                                \
            cj_test_failf(__FILE__, __LINE__, "%s == %s (%lld != %lld)",   \
                          #a, #b, cj_a_, cj_b_);                           \
    } while (0)

/* Buffer equality, printing both in hex on failure. */
#define CHECK_MEM(a, alen, b, blen)                                        \
    cj_test_check_mem(__FILE__, __LINE__, #a, (a), (alen), (b), (blen))

/* Buffer equals the hex string (spaces and newlines ignored). */
#define CHECK_HEX(a, alen, hex)                                            \
    do {                                                                   \
        uint8_t cj_h_[4096];                                               \
        size_t cj_n_ = cj_hex(hex, cj_h_, sizeof cj_h_);                   \
        CHECK_MEM(a, alen, cj_h_, cj_n_);                                  \
    } while (0)

void cj_test_check_mem(const char *file, int line, const char *what,
                       const void *a, size_t alen, const void *b,
                       size_t blen);

/* Decode hex (whitespace ignored) into out; returns the byte count.
 * Aborts the run on bad hex or overflow: that is a bug in the test. */
size_t cj_hex(const char *hex, uint8_t *out, size_t cap);

#endif
