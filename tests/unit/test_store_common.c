/*
 * Registry names in logs (store/common.h cj_store_uri_redact): a
 * PostgreSQL URI loses its password, wherever libpq would take it from;
 * everything else is shown as given.
 */
#include <string.h>

#include "store/common.h"
#include "../test.h"

static const char *redact(const char *in)
{
    static char out[256];
    return cj_store_uri_redact(in, out, sizeof out);
}

TEST(store_uri_redact_password)
{
    CHECK(!strcmp(redact("postgresql://jrc:s3cret@db.example/cojp"),
                  "postgresql://jrc:***@db.example/cojp"));
    CHECK(!strcmp(redact("postgres://jrc:s3cret@db.example:5432/cojp?sslmode=require"),
                  "postgres://jrc:***@db.example:5432/cojp?sslmode=require"));
    /* an unescaped '@' or '/' in the password is still covered */
    CHECK(!strcmp(redact("postgresql://jrc:p@ss/w@db/cojp"), "postgresql://jrc:***@db/cojp"));
    CHECK(!strcmp(redact("postgresql://:pw@db/cojp"), "postgresql://:***@db/cojp"));
    /* as a parameter, in any position */
    CHECK(!strcmp(redact("postgresql:///cojp?host=/run/pg&password=s3cret&user=jrc"),
                  "postgresql:///cojp?host=/run/pg&password=***&user=jrc"));
    CHECK(!strcmp(redact("postgresql://db/cojp?password=s3cret"),
                  "postgresql://db/cojp?password=***"));
    CHECK(!strcmp(redact("postgresql://jrc:a@db/x?password=b&passwordx=c"),
                  "postgresql://jrc:***@db/x?password=***&passwordx=c"));
}

TEST(store_uri_redact_leaves_the_rest)
{
    static const char *const same[] = {
        "jrc.db",
        "/var/lib/cojp/jrc:1@x.db",
        "postgresql:///postgres?host=/tmp/pg&user=postgres",
        "postgresql://jrc@db.example:5432/cojp",
        "postgresql://db.example:5432/cojp",
        "postgresql://",
    };
    char small[12];

    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        CHECK(!strcmp(redact(same[i]), same[i]));
    /* cut to the buffer, never past it, the password never shown */
    CHECK(!strcmp(cj_store_uri_redact("postgresql://u:secret@h/d", small, sizeof small),
                  "postgresql:"));
    CHECK(!strcmp(cj_store_uri_redact("postgresql://u:secret@h/d", small, 1), ""));
}

/* The line naming pledges that share a PSK (cj_store_shared_*): a group
 * per PSK, whole ids only, and when the buffer is short the count of
 * what did not fit instead. */
TEST(store_shared_psk_line)
{
    static const uint8_t a[2] = {0x0a, 0x01}, b[2] = {0x0a, 0x02},
                         c[1] = {0xc0}, d[8] = {0, 0x12, 0x4b, 0, 0, 0, 0, 9};
    cj_store_shared_t l;
    char out[160], small[100], tiny[8];

    cj_store_shared_init(&l, out, sizeof out);
    CHECK_EQ(cj_store_shared_end(&l), 0);
    CHECK(!strcmp(out, ""));

    cj_store_shared_init(&l, out, sizeof out);
    cj_store_shared_add(&l, 2, a, sizeof a);
    cj_store_shared_add(&l, 2, b, sizeof b);
    cj_store_shared_add(&l, 5, c, sizeof c);
    cj_store_shared_add(&l, 5, d, sizeof d);
    CHECK_EQ(cj_store_shared_end(&l), 4);
    CHECK(!strcmp(out, "pledges sharing a PSK: {0a01, 0a02}, {c0, 00124b0000000009}"));

    /* cut at an id, the total given */
    cj_store_shared_init(&l, small, sizeof small);
    for (int i = 0; i < 6; i++)
        cj_store_shared_add(&l, i / 2, d, sizeof d);
    CHECK_EQ(cj_store_shared_end(&l), 6);
    CHECK(!strcmp(small, "pledges sharing a PSK: {00124b0000000009,"
                         " 00124b0000000009, ... (6 pledges in all)"));
    /* not even one id fits */
    cj_store_shared_init(&l, out, 60);
    cj_store_shared_add(&l, 1, d, sizeof d);
    cj_store_shared_add(&l, 1, d, sizeof d);
    CHECK_EQ(cj_store_shared_end(&l), 2);
    CHECK(!strcmp(out, "2 pledges share PSKs"));
    cj_store_shared_init(&l, tiny, sizeof tiny);
    cj_store_shared_add(&l, 1, d, sizeof d);
    CHECK_EQ(cj_store_shared_end(&l), 1);
    CHECK(strlen(tiny) < sizeof tiny);
}

/* Times move within 0..INT64_MAX: leases without end stay without end,
 * a skew never takes a time below 0. */
TEST(store_add_ms_saturates)
{
    CHECK_EQ(cj_store_add_ms(1000, 500), 1500);
    CHECK_EQ(cj_store_add_ms(1000, -500), 500);
    CHECK_EQ(cj_store_add_ms(1000, -1000), 0);
    CHECK_EQ(cj_store_add_ms(1000, -1001), 0);
    CHECK(cj_store_add_ms(CJ_STORE_NO_EXPIRY, 1) == CJ_STORE_NO_EXPIRY);
    CHECK(cj_store_add_ms(CJ_STORE_NO_EXPIRY - 1, 10) == CJ_STORE_NO_EXPIRY);
    CHECK(cj_store_add_ms(0, INT64_MIN) == 0);
    CHECK(cj_store_lease_end(5, 0) == CJ_STORE_NO_EXPIRY);
    CHECK(cj_store_lease_end(5, 1) == 5 + CJ_STORE_HOUR_MS);
    CHECK(cj_store_lease_end(CJ_STORE_NO_EXPIRY - 5, 1) == CJ_STORE_NO_EXPIRY);
}
