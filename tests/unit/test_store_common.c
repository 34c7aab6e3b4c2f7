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
