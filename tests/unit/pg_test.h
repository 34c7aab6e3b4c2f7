/*
 * PG_TEST(name) { ... }: a unit test like TEST(), registered only when a
 * PostgreSQL server is configured (COJP_PG_URI, set by
 * tests/pg-server.sh run), so a run without one skips it.
 */
#ifndef COJP_TESTS_PG_TEST_H
#define COJP_TESTS_PG_TEST_H

#include <stdbool.h>
#include <stdlib.h>

#include "../test.h"

static inline bool pg_enabled(void)
{
    const char *u = getenv("COJP_PG_URI");
    return u != NULL && *u != '\0';
}

#define PG_TEST(name)                                                      \
    static void test_##name(void);                                         \
    __attribute__((constructor)) static void register_##name(void)        \
    {                                                                      \
        if (pg_enabled())                                                  \
            cj_test_register(#name, test_##name);                          \
    }                                                                      \
    static void test_##name(void)

#endif
