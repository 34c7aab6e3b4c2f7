/*
 * PostgreSQL JRC store (store/postgres.h) against a real server: the URI
 * comes from COJP_PG_URI (`make check-pg` starts a throwaway server with
 * tests/pg-server.sh and sets it).  Without it these tests are not
 * registered at all, so they count neither as passed nor as failed.
 *
 * Each test works in a schema of its own making (cojp_unit, dropped and
 * created afresh), reached through the search_path connection option.
 * The store conformance suite (store_suite.h: every store call against
 * the in-memory store's results, short-id uniqueness under expiry and
 * reuse, durability, rollback, CSV import, the JRC engine admitting a
 * pledge, two engines on one registry) runs here as on SQLite; this file
 * adds what needs a server: migration by instances starting together,
 * two instances (threads with their own connections) assigning at once,
 * ssn_reserved and replay windows never moving back under concurrent
 * writers, a dropped connection, operations taken by two instances, a
 * retired PSK refused to an instance that gives it while the retirement
 * is in flight.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "cojp/jrc.h"
#include "store/postgres.h"
#include "store_suite.h"
#include "jrc_multi.h"
#include "../test.h"
#include "pg_test.h"

__attribute__((constructor)) static void pg_announce(void)
{
    if (!pg_enabled())
        fputs("pg: skipped (COJP_PG_URI not set)\n", stderr);
}

/* ---- the backend ----------------------------------------------------------- */

#define SCHEMA "cojp_unit"
static char uri[1024];

/* Drop and recreate the test schema; uri then points into it. */
static void fresh(void)
{
    const char *base = getenv("COJP_PG_URI");
    PGconn *c = PQconnectdb(base);
    PGresult *r;

    CHECK(PQstatus(c) == CONNECTION_OK);
    r = PQexec(c, "SET client_min_messages = warning;"
                  "DROP SCHEMA IF EXISTS " SCHEMA " CASCADE;"
                  "CREATE SCHEMA " SCHEMA);
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
    snprintf(uri, sizeof uri, "%s%soptions=-csearch_path%%3D" SCHEMA, base,
             strchr(base, '?') ? "&" : "?");
}

static int pg_try_open(void **h)
{
    cj_pg_t *db = NULL;
    int rc = cj_pg_open(&db, uri);
    *h = db;
    return rc;
}

static int pg_try_open_why(void **h, char *why, size_t cap)
{
    cj_pg_t *db = NULL;
    int rc = cj_pg_open_as(&db, uri, why, cap);
    *h = db;
    return rc;
}

/* The first value of a query on a connection of its own (NULL: the
 * query failed), malloc'd. */
static char *outside(const char *sql)
{
    PGconn *c = PQconnectdb(uri);
    PGresult *r = PQexec(c, sql);
    char *v = NULL;
    ExecStatusType st = PQresultStatus(r);

    if (st == PGRES_COMMAND_OK)
        v = strdup("");
    else if (st == PGRES_TUPLES_OK && PQntuples(r) > 0)
        v = strdup(PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return v;
}

static bool pg_outside(const char *sql)
{
    char *v = outside(sql);
    free(v);
    return v != NULL;
}

/* Every row of every table, the schema versions, the indexes and the
 * pledges' columns, as text. */
static char *pg_snapshot(size_t *len)
{
    char *v = outside(
        "SELECT concat_ws(E'\\n--\\n',"
        " (SELECT string_agg(t::text, E'\\n' ORDER BY t.seq) FROM pledges t),"
        " (SELECT string_agg(t::text, E'\\n' ORDER BY t.seq) FROM updates t),"
        " (SELECT string_agg(t::text, '') FROM registry_state t),"
        " (SELECT string_agg(t::text, '') FROM network t),"
        " (SELECT string_agg(t::text, E'\\n' ORDER BY t.seq) FROM pending_ops t),"
        " (SELECT string_agg(t::text, E'\\n' ORDER BY t.version)"
        "  FROM schema_version t),"
        " (SELECT string_agg(indexdef, E'\\n' ORDER BY indexname) FROM pg_indexes"
        "  WHERE schemaname = current_schema()),"
        " (SELECT string_agg(column_name, ',' ORDER BY ordinal_position)"
        "  FROM information_schema.columns WHERE table_schema = current_schema()"
        "  AND table_name = 'pledges'))");
    *len = v != NULL ? strlen(v) : 0;
    return v;
}

/* One integer from a query on the handle's connection (-2: failed). */
static long long sql_int(void *h, const char *sql)
{
    long long v = -1;
    return cj_pg_sql(h, sql, &v) == CJ_OK ? v : -2;
}

static bool sql_try(void *h, const char *sql)
{
    return cj_pg_sql(h, sql, NULL) == CJ_OK;
}

static void sql_exec(cj_pg_t *db, const char *sql)
{
    CHECK(sql_try(db, sql));
}

static void set_cursor(void *h, unsigned v)
{
    char sql[80];
    snprintf(sql, sizeof sql, "UPDATE registry_state SET next_short = %u", v);
    sql_exec(h, sql);
}

SS_ADAPT(cj_pg)

static int pg_repair(const uint8_t *id, size_t id_len, const uint8_t *psk,
                     uint64_t now_ms, bool *upgraded, char *why, size_t cap)
{
    return cj_pg_repair(uri, id, id_len, psk, now_ms, upgraded, why, cap);
}

/* Migration 11 undone (outcome retention), then the index schema
 * versions 1 to 9 had (migration 10 drops it) put back: first when a
 * database is turned back into an older version. */
#define V10_RETENTION                                                    \
    "DROP TRIGGER updates_retention ON updates;"                         \
    "DROP FUNCTION updates_retention();"                                 \
    "ALTER TABLE registry_state DROP COLUMN keep_outcomes;"
#define V9_INDEXES                                                       \
    V10_RETENTION "CREATE INDEX pledges_joined ON pledges(seq) WHERE joined;"

static const ss_backend_t pgb = {
    .name = "pg",
    .schema_version = CJ_PG_SCHEMA_VERSION,
    .fresh = fresh,
    .try_open = pg_try_open,
    .set_cursor = set_cursor,
    .sql_int = sql_int,
    .sql_try = sql_try,
    .inject_sql = "CREATE FUNCTION inject() RETURNS trigger LANGUAGE plpgsql"
                  " AS $$BEGIN IF NEW.short_id = 2 THEN"
                  " RAISE EXCEPTION 'injected'; END IF; RETURN NEW; END$$;"
                  "CREATE TRIGGER inject BEFORE UPDATE OF short_id ON pledges"
                  " FOR EACH ROW EXECUTE FUNCTION inject()",
    .uninject_sql = "DROP TRIGGER inject ON pledges",
    .v1_sql = V9_INDEXES
              "DROP TABLE retired_psks; DROP INDEX pledges_psk;"
              "ALTER TABLE pledges DROP COLUMN repeat_cache, DROP COLUMN okm,"
              " DROP COLUMN must_recover;"
              "DROP TABLE network, pending_ops;"
              "DELETE FROM schema_version WHERE version >= 2",
    .v2_sql = V9_INDEXES
              "DROP TABLE retired_psks; DROP INDEX pledges_psk;"
              "ALTER TABLE pledges DROP COLUMN repeat_cache, DROP COLUMN okm,"
              " DROP COLUMN must_recover;"
              "ALTER TABLE network DROP COLUMN campaign_owner,"
              " DROP COLUMN campaign_alive;"
              "DELETE FROM schema_version WHERE version >= 3",
    .v4_sql = V9_INDEXES
              "DROP TABLE retired_psks; DROP INDEX pledges_psk;"
              "ALTER TABLE pledges DROP COLUMN must_recover;"
              "ALTER TABLE network DROP COLUMN campaign_owner,"
              " DROP COLUMN campaign_alive;"
              "DELETE FROM schema_version WHERE version >= 5",
    /* pending_ops as migration 2 made it, constraint names included */
    .v6_sql = V9_INDEXES
              "ALTER TABLE pledges DROP COLUMN must_recover;"
              "ALTER TABLE network DROP COLUMN campaign_owner,"
              " DROP COLUMN campaign_alive;"
              "DROP TABLE pending_ops;"
              "CREATE TABLE pending_ops ("
              " seq bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
              " kind bigint NOT NULL CHECK (kind IN (1, 2)),"
              " pledge bytea CHECK (pledge IS NULL OR length(pledge) BETWEEN 1 AND 8),"
              " key bytea CHECK (key IS NULL OR length(key) = 16),"
              " queued_at bigint NOT NULL,"
              " CHECK (kind <> 2 OR pledge IS NOT NULL));"
              "DELETE FROM schema_version WHERE version >= 7",
    .v7_sql = V9_INDEXES
              "ALTER TABLE pledges DROP COLUMN must_recover;"
              "ALTER TABLE network DROP COLUMN campaign_owner,"
              " DROP COLUMN campaign_alive;"
              "DELETE FROM schema_version WHERE version >= 8",
    .v8_sql = V9_INDEXES
              "ALTER TABLE network DROP COLUMN campaign_owner,"
              " DROP COLUMN campaign_alive;"
              "DELETE FROM schema_version WHERE version >= 9",
    .v9_sql = V9_INDEXES "DELETE FROM schema_version WHERE version >= 10",
    .v10_dropped_sql = "SELECT count(*) FROM pg_indexes WHERE"
                       " indexname = 'pledges_joined'"
                       " AND schemaname = current_schema()",
    .v10_sql = V10_RETENTION "DELETE FROM schema_version WHERE version >= 11",
    .dup_id_err = CJ_ERR_STATE,
    .try_open_why = pg_try_open_why,
    .sql_outside = pg_outside,
    .snapshot = pg_snapshot,
    .repair = pg_repair,
    .exact_evict_order = true,
    SS_ADAPTED(cj_pg),
};

/* The same registry driven in batches as the JRC daemon runs it
 * (cj_pg_begin_batch: pipeline mode, queued writes to held rows). */
static int pg_batch_begin(void *h) { return cj_pg_begin_batch(h); }

static ss_backend_t pgbb;

static const ss_backend_t *batched(void)
{
    pgbb = pgb;
    pgbb.name = "pg-batch";
    pgbb.begin = pg_batch_begin;
    return &pgbb;
}

/* ---- the conformance suite --------------------------------------------------- */

PG_TEST(pg_same_results_as_memstore) { ss_same_results_as_memstore(&pgb); }
PG_TEST(pg_short_ids_unique_2000_with_expiry) { ss_short_ids_vs_memstore(&pgb); }
PG_TEST(pg_short_ids_model) { ss_short_ids_model(&pgb); }
PG_TEST(pg_short_ids_batch_run) { ss_short_ids_batch_run(&pgb); }
PG_TEST(pg_accept_piv_window) { ss_accept_piv_window(&pgb); }
PG_TEST(pg_durable_across_reopen) { ss_durable_across_reopen(&pgb); }
PG_TEST(pg_rollback_leaves_nothing) { ss_rollback_leaves_nothing(&pgb); }
PG_TEST(pg_failed_call_changes_nothing) { ss_failed_call_changes_nothing(&pgb); }
PG_TEST(pg_csv_import) { ss_csv_import(&pgb); }
PG_TEST(pg_list_outcomes_address_evict) { ss_list_outcomes_address_evict(&pgb); }
PG_TEST(pg_jrc_admission) { ss_jrc_admission(&pgb); }
PG_TEST(pg_migration_1_to_2_keeps_pledges) { ss_migration_1_to_2(&pgb); }
PG_TEST(pg_pending_ops_fifo) { ss_pending_ops_fifo(&pgb); }
PG_TEST(pg_migration_2_to_3_repeat_cache) { ss_migration_2_to_3(&pgb); }
PG_TEST(pg_repeat_cache) { ss_repeat_cache(&pgb); }
PG_TEST(pg_jrc_restart_repeats_answer) { ss_jrc_restart_repeat(&pgb); }
/* Two engines over two connections (jrc_multi.h). */
PG_TEST(pg_two_engines_alternate) { ss_two_engines(&pgb); }
/* The suite's batched tests again, batches in pipeline mode. */
PG_TEST(pg_batch_same_results_as_memstore) { ss_same_results_as_memstore(batched()); }
PG_TEST(pg_batch_short_ids_unique_2000_with_expiry) { ss_short_ids_vs_memstore(batched()); }
PG_TEST(pg_batch_short_ids_model) { ss_short_ids_model(batched()); }
PG_TEST(pg_batch_short_ids_batch_run) { ss_short_ids_batch_run(batched()); }
PG_TEST(pg_batch_accept_piv_window) { ss_accept_piv_window(batched()); }
PG_TEST(pg_batch_durable_across_reopen) { ss_durable_across_reopen(batched()); }
PG_TEST(pg_batch_rollback_leaves_nothing) { ss_rollback_leaves_nothing(batched()); }
PG_TEST(pg_batch_failed_call_changes_nothing) { ss_failed_call_changes_nothing(batched()); }
PG_TEST(pg_batch_jrc_admission) { ss_jrc_admission(batched()); }
PG_TEST(pg_batch_repeat_cache) { ss_repeat_cache(batched()); }
PG_TEST(pg_batch_jrc_restart_repeats_answer) { ss_jrc_restart_repeat(batched()); }
PG_TEST(pg_batch_two_engines_alternate) { ss_two_engines(batched()); }
PG_TEST(pg_psk_per_pledge) { ss_psk_per_pledge(&pgb); }
PG_TEST(pg_batch_psk_per_pledge) { ss_psk_per_pledge(batched()); }
PG_TEST(pg_migration_4_to_5_psk_per_pledge) { ss_migration_4_to_5(&pgb); }
PG_TEST(pg_set_psk) { ss_set_psk(&pgb); }
PG_TEST(pg_batch_set_psk) { ss_set_psk(batched()); }
PG_TEST(pg_remove) { ss_remove(&pgb); }
PG_TEST(pg_batch_remove) { ss_remove(batched()); }
PG_TEST(pg_repair_shared_psks) { ss_repair(&pgb); }
PG_TEST(pg_migration_6_to_7_readmit_op) { ss_migration_6_to_7(&pgb); }
PG_TEST(pg_migration_7_to_8_recovery_mark) { ss_migration_7_to_8(&pgb); }
PG_TEST(pg_mark_recover) { ss_mark_recover(&pgb); }
PG_TEST(pg_migration_8_to_9_campaign_lock) { ss_migration_8_to_9(&pgb); }
PG_TEST(pg_migration_9_to_10_fewer_indexes) { ss_migration_9_to_10(&pgb); }
PG_TEST(pg_outcome_retention) { ss_outcome_retention(&pgb); }
PG_TEST(pg_migration_10_to_11_retention) { ss_migration_10_to_11(&pgb); }
PG_TEST(pg_campaign_lock) { ss_campaign_lock(&pgb); }

/* The campaign lock's clock is the server's (cj_pg_clock): the time now,
 * also inside a transaction (clock_timestamp(), not the transaction's
 * start), and the server's own reading, which this test's host shares. */
PG_TEST(pg_clock_is_the_servers)
{
    cj_pg_t *db = NULL;
    uint64_t a = 0, b = 0;
    struct timespec ts, pause = {0, 30 * 1000 * 1000};
    char *srv;

    fresh();
    CHECK_EQ(cj_pg_open(&db, uri), CJ_OK);
    CHECK_EQ(cj_pg_begin(db), CJ_OK);
    CHECK_EQ(cj_pg_clock(db, &a), CJ_OK);
    nanosleep(&pause, NULL);
    CHECK_EQ(cj_pg_clock(db, &b), CJ_OK);
    CHECK(b >= a + 25 && b < a + 5000);
    CHECK_EQ(cj_pg_commit(db), CJ_OK);
    clock_gettime(CLOCK_REALTIME, &ts);
    a = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    CHECK(b + 5000 > a && b < a + 5000);
    srv = outside("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::int8");
    CHECK(srv != NULL);
    if (srv) {
        uint64_t v = strtoull(srv, NULL, 10);
        CHECK(v >= b && v < b + 5000);
    }
    free(srv);
    cj_pg_close(db);
}

/* ---- schema ---------------------------------------------------------------- */

/* Schema 4: a pledge's derived OSCORE material is written with its PSK
 * and read back by lookup (in a batch too); rows of a version-3 database
 * have none until then, and lookup says so (the engine derives on load). */
PG_TEST(pg_okm_kept_and_migrated)
{
    ss_okm_kept_and_migrated(batched(),
                             V9_INDEXES
                             "DROP TABLE retired_psks; DROP INDEX pledges_psk;"
                             " ALTER TABLE pledges DROP COLUMN okm;"
                             " ALTER TABLE pledges DROP COLUMN must_recover;"
                             " ALTER TABLE network DROP COLUMN campaign_owner,"
                             " DROP COLUMN campaign_alive;"
                             " DELETE FROM schema_version WHERE version >= 4",
                             "UPDATE pledges SET okm = '\\x00'::bytea");
}

PG_TEST(pg_schema_create_and_reopen)
{
    cj_pg_t *db;

    CHECK(cj_pg_is_uri("postgresql://x@h/db"));
    CHECK(cj_pg_is_uri("postgres:///db?host=/tmp"));
    CHECK(!cj_pg_is_uri("/var/lib/cojp/jrc.db"));
    CHECK(!cj_pg_is_uri("postgresql:"));

    fresh();
    db = ss_open(&pgb);
    CHECK_EQ(sql_int(db, "SELECT (current_setting('synchronous_commit')"
                         " = 'on')::int"),
             1);
    CHECK_EQ(sql_int(db, "SELECT (current_setting('transaction_isolation')"
                         " = 'read committed')::int"),
             1);
    cj_pg_close(db);

    ss_schema_reopen(&pgb);

    /* another program's tables are not taken over */
    fresh();
    {
        PGconn *c = PQconnectdb(uri);
        PGresult *r = PQexec(c, "CREATE TABLE pledges (x int)");
        CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
        PQclear(r);
        PQfinish(c);
    }
    CHECK_EQ(cj_pg_open(&db, uri), CJ_ERR_STORAGE);
    CHECK(db == NULL);
    /* and no server at all */
    CHECK_EQ(cj_pg_open(&db, "postgresql:///x?host=/nonexistent-cojp&"
                             "connect_timeout=2"),
             CJ_ERR_STORAGE);
    CHECK(db == NULL);
    cj_pg_close(NULL);
}

/* Instances starting together on an empty database: one migrates, the
 * others wait for it, every one gets its own session. */
typedef struct opener {
    pthread_t t;
    int rc;
    uint64_t session;
} opener_t;

static void *open_thread(void *arg)
{
    opener_t *o = arg;
    cj_pg_t *db = NULL;
    o->rc = cj_pg_open(&db, uri);
    if (db != NULL) {
        o->session = cj_pg_session(db);
        cj_pg_close(db);
    }
    return NULL;
}

PG_TEST(pg_concurrent_open_migrates_once)
{
    opener_t o[4];
    cj_pg_t *db;

    fresh();
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_create(&o[i].t, NULL, open_thread, &o[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(o[i].t, NULL);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(o[i].rc, CJ_OK);
        for (int k = 0; k < i; k++)
            CHECK(o[i].session != o[k].session);
    }
    db = ss_open(&pgb);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM schema_version"),
             CJ_PG_SCHEMA_VERSION);
    CHECK_EQ(cj_pg_session(db), 5);
    cj_pg_close(db);
}

/* ---- short identifiers ------------------------------------------------------ */

PG_TEST(pg_short_ids_exhausted)
{
    cj_pg_t *db;
    const cj_jrc_store_t *st;
    uint8_t id[8], psk[16];
    uint16_t s = 0;

    fresh();
    db = ss_open(&pgb);
    st = cj_pg_store(db);
    /* 65533 live leases (0x0001..0xfffd), written straight in SQL, each
     * pledge with a PSK of its own */
    sql_exec(db, "INSERT INTO pledges (id, psk, allowed_roles, short_id,"
                 " lease_until) SELECT int8send(g), '\\xf0f1f2f3f4f5f6f7'::bytea"
                 " || int8send(g), 1, g, 9223372036854775807 FROM"
                 " generate_series(1, 65533) g");
    ss_make_id(id, 1);
    ss_make_psk(psk, 1);
    CHECK_EQ(cj_pg_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 0, 0, false, &s),
             CJ_ERR_NOSPACE);
    /* inside a batch the failure spoils nothing */
    CHECK_EQ(cj_pg_begin(db), CJ_OK);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 0, 0, true, &s),
             CJ_ERR_NOSPACE);
    CHECK_EQ(ss_raise_ssn(st, st->ctx, id, 5), CJ_OK);
    CHECK_EQ(cj_pg_commit(db), CJ_OK);
    /* one release frees exactly that id, found by wrapping around */
    {
        static const uint8_t id777[8] = {0, 0, 0, 0, 0, 0, 0x03, 0x09};
        CHECK_EQ(st->release(st->ctx, id777, 8), CJ_OK);
    }
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 0, 0, false, &s), CJ_OK);
    CHECK_EQ(s, 0x309);
    cj_pg_close(db);
}

/* Two JRC instances (threads, one connection each) assigning at the same
 * time: every id handed out is distinct (the cursor never wraps here, so
 * no id may ever come twice), in one transaction per call and in group
 * commits. */
#define HAMMER 500

typedef struct hammer {
    pthread_t t;
    unsigned first;     /* pledges first .. first + HAMMER - 1 */
    bool batches;
    int errors;
    int last_rc;
    uint16_t ids[2 * HAMMER];
    unsigned n;
} hammer_t;

static void *hammer_thread(void *arg)
{
    hammer_t *h = arg;
    cj_pg_t *db = NULL;
    const cj_jrc_store_t *st;

    if (cj_pg_open(&db, uri) != CJ_OK) {
        h->errors++;
        return NULL;
    }
    st = cj_pg_store(db);
    for (unsigned k = 0; k < 2 * HAMMER; k++) {
        uint8_t id[8];
        uint16_t s = 0;
        int rc;
        /* first pass: one lease per pledge; second: fresh ids */
        ss_make_id(id, h->first + k % HAMMER);
        if (h->batches && k % 10 == 0 && cj_pg_begin_batch(db) != CJ_OK)
            h->errors++;
        rc = st->assign_short_id(st->ctx, id, 8, 1000 + k, 0, k >= HAMMER,
                                 &s);
        if (rc == CJ_OK && cj_pg_in_transaction(db) && k % 10 == 9)
            rc = cj_pg_commit(db);
        if (rc != CJ_OK) {
            h->errors++;
            h->last_rc = rc;
            if (cj_pg_in_transaction(db))
                cj_pg_rollback(db);
            continue;
        }
        h->ids[h->n++] = s;
    }
    if (cj_pg_in_transaction(db) && cj_pg_commit(db) != CJ_OK)
        h->errors++;
    cj_pg_close(db);
    return NULL;
}

PG_TEST(pg_two_instances_never_collide)
{
    static hammer_t h[2];
    static bool seen[65536];
    cj_pg_t *db;
    unsigned dup = 0;

    memset(h, 0, sizeof h);
    memset(seen, 0, sizeof seen);
    fresh();
    db = ss_open(&pgb);
    ss_add_n(&pgb, db, 2 * HAMMER);
    h[0].first = 0;
    h[1].first = HAMMER;
    h[1].batches = true;
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&h[i].t, NULL, hammer_thread, &h[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(h[i].t, NULL);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(h[i].errors, 0);
        CHECK_EQ(h[i].last_rc, 0);
        CHECK_EQ(h[i].n, 2 * HAMMER);
        for (unsigned k = 0; k < h[i].n; k++) {
            uint16_t s = h[i].ids[k];
            if (s == 0 || s >= 0xfffe || seen[s])
                dup++;
            seen[s] = true;
        }
    }
    CHECK_EQ(dup, 0);
    /* each pledge holds the last id it was given, all distinct */
    CHECK_EQ(sql_int(db, "SELECT count(DISTINCT short_id) FROM pledges"
                         " WHERE lease_until IS NOT NULL"),
             2 * HAMMER);
    CHECK_EQ(sql_int(db, "SELECT next_short FROM registry_state"),
             4 * HAMMER + 1);
    cj_pg_close(db);
}

/* ---- monotonic OSCORE state -------------------------------------------------- */

typedef struct ssn_writer {
    pthread_t t;
    unsigned seed;
    int errors;
    int backwards;
    uint64_t max_saved;
} ssn_writer_t;

static void *ssn_thread(void *arg)
{
    ssn_writer_t *w = arg;
    cj_pg_t *db = NULL;
    const cj_jrc_store_t *st;
    uint8_t id[8];
    uint64_t seen = 0;
    uint32_t rng = w->seed;

    if (cj_pg_open(&db, uri) != CJ_OK) {
        w->errors++;
        return NULL;
    }
    st = cj_pg_store(db);
    ss_make_id(id, 0);
    for (unsigned k = 0; k < 400; k++) {
        cj_jrc_pledge_t r;
        uint64_t v;
        rng = rng * 1103515245u + 12345u;
        /* mostly rising, sometimes a stale (lower) value */
        v = (uint64_t)k * 50 + (rng >> 16) % 200;
        if ((rng >> 8) % 5 == 0)
            v /= 3;
        if (k % 7 == 3 && cj_pg_begin(db) != CJ_OK)
            w->errors++;
        if (ss_raise_ssn(st, st->ctx, id, v) != CJ_OK)
            w->errors++;
        if (cj_pg_in_transaction(db) && cj_pg_commit(db) != CJ_OK)
            w->errors++;
        if (v > w->max_saved)
            w->max_saved = v;
        if (st->lookup(st->ctx, id, 8, &r) != CJ_OK) {
            w->errors++;
            continue;
        }
        /* never below what this writer saved, never below before */
        if (r.ssn_reserved < v || r.ssn_reserved < seen)
            w->backwards++;
        seen = r.ssn_reserved;
    }
    cj_pg_close(db);
    return NULL;
}

PG_TEST(pg_ssn_never_decreases_under_concurrent_writers)
{
    static ssn_writer_t w[2];
    cj_pg_t *db;
    cj_jrc_pledge_t r;
    uint8_t id[8];

    memset(w, 0, sizeof w);
    fresh();
    db = ss_open(&pgb);
    ss_add_n(&pgb, db, 1);
    w[0].seed = 1;
    w[1].seed = 99;
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&w[i].t, NULL, ssn_thread, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(w[i].t, NULL);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(w[i].errors, 0);
        CHECK_EQ(w[i].backwards, 0);
    }
    ss_make_id(id, 0);
    CHECK_EQ(cj_pg_store(db)->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved,
             w[0].max_saved > w[1].max_saved ? w[0].max_saved : w[1].max_saved);
    /* a single writer lowering it does not either */
    CHECK_EQ(ss_raise_ssn(cj_pg_store(db), db, id, 3), CJ_OK);
    CHECK_EQ(cj_pg_store(db)->lookup(db, id, 8, &r), CJ_OK);
    CHECK(r.ssn_reserved > 3);
    /* only a new ID Context (recovery) starts it afresh */
    CHECK_EQ(
        cj_pg_store(db)->save_context(db, id, 8, ss_psk_of(id), ss_nobody, 8),
        CJ_OK);
    CHECK_EQ(cj_pg_store(db)->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, 0);
    cj_pg_close(db);
}

/* ---- a dropped connection ------------------------------------------------- */

/* The server drops the connection: the next call reconnects (outside a
 * batch); a batch in flight is lost and says so at commit. */
/* A fresh registry with pledge 0 (id), a handle db and a second one to
 * end db's server session with drop_session(). */
static const cj_jrc_store_t *drop_setup(cj_pg_t **db, cj_pg_t **killer,
                                        uint8_t id[8])
{
    fresh();
    *db = ss_open(&pgb);
    *killer = ss_open(&pgb);
    ss_add_n(&pgb, *db, 1);
    ss_make_id(id, 0);
    return cj_pg_store(*db);
}

static void drop_session(cj_pg_t *killer, cj_pg_t *db)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)::int",
             PQbackendPID(cj_pg_raw(db)));
    CHECK_EQ(sql_int(killer, sql), 1);
}

PG_TEST(pg_reconnects_after_server_drop)
{
    cj_pg_t *db, *killer;
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    uint8_t id[8];

    st = drop_setup(&db, &killer, id);
    drop_session(killer, db);
    CHECK_EQ(ss_raise_ssn(st, db, id, 11), CJ_OK);
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, 11);

    CHECK_EQ(cj_pg_begin(db), CJ_OK);
    CHECK_EQ(ss_raise_ssn(st, db, id, 12), CJ_OK);
    drop_session(killer, db);
    CHECK(ss_raise_ssn(st, db, id, 13) != CJ_OK);
    CHECK_EQ(cj_pg_commit(db), CJ_ERR_STORAGE);
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, 11);
    cj_pg_close(killer);
    cj_pg_close(db);
}

/* The same in a batch whose queued writes are in flight: the batch is
 * lost (commit fails, nothing of it stays), the next call reconnects. */
PG_TEST(pg_batch_lost_with_connection)
{
    cj_pg_t *db, *killer;
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    cj_oscore_replay_t w;
    uint64_t first = 0;
    uint8_t id[8];

    st = drop_setup(&db, &killer, id);
    CHECK_EQ(ss_raise_ssn(st, db, id, 11), CJ_OK);

    CHECK_EQ(cj_pg_begin_batch(db), CJ_OK);
    CHECK_EQ(st->accept_piv(db, id, 8, ss_psk_of(id), NULL, 0, 5, &w), CJ_OK);
    CHECK_EQ(st->reserve_ssn(db, id, 8, ss_psk_of(id), NULL, 0, 0, 32, &first),
             CJ_OK);
    CHECK_EQ(first, 11);
    drop_session(killer, db);
    CHECK(st->lookup(db, id, 8, &r) != CJ_OK);
    CHECK(st->reserve_ssn(db, id, 8, ss_psk_of(id), NULL, 0, 0, 32, &first) !=
          CJ_OK);
    CHECK_EQ(cj_pg_commit(db), CJ_ERR_STORAGE);
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, 11);
    CHECK(!r.replay.valid);
    /* and batches work again on the new connection */
    CHECK_EQ(cj_pg_begin_batch(db), CJ_OK);
    CHECK_EQ(st->accept_piv(db, id, 8, ss_psk_of(id), NULL, 0, 5, &w), CJ_OK);
    CHECK_EQ(st->reserve_ssn(db, id, 8, ss_psk_of(id), NULL, 0, 0, 32, &first),
             CJ_OK);
    CHECK_EQ(cj_pg_commit(db), CJ_OK);
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, 43);
    CHECK(r.replay.valid);
    cj_pg_close(killer);
    cj_pg_close(db);
}

/* ---- network settings and pending operations ------------------------------ */

PG_TEST(pg_network_and_pending_ops)
{
    cj_pg_t *a, *b;
    cj_pg_op_t op, oa, ob;

    ss_network_row(&pgb);

    fresh();
    a = ss_open(&pgb);
    b = ss_open(&pgb);
    /* the queue, oldest first */
    memset(&op, 0, sizeof op);
    CHECK_EQ(cj_pg_op_next(a, &oa), CJ_ERR_NOTFOUND);
    op.kind = CJ_PG_OP_EVICT;
    CHECK_EQ(cj_pg_op_push(a, &op), CJ_ERR_INVALID); /* evict: no id */
    op.kind = 7;
    CHECK_EQ(cj_pg_op_push(a, &op), CJ_ERR_INVALID);
    op.kind = CJ_PG_OP_REKEY;
    op.has_key = true;
    memset(op.key, 0x11, 16);
    CHECK_EQ(cj_pg_op_push(a, &op), CJ_OK);
    memset(&op, 0, sizeof op);
    op.kind = CJ_PG_OP_EVICT;
    ss_make_id(op.id, 4);
    op.id_len = 8;
    CHECK_EQ(cj_pg_op_push(a, &op), CJ_OK);

    /* two instances each take a different operation while both hold
     * theirs in an open transaction */
    CHECK_EQ(cj_pg_begin(a), CJ_OK);
    CHECK_EQ(cj_pg_op_next(a, &oa), CJ_OK);
    CHECK_EQ(oa.kind, CJ_PG_OP_REKEY);
    CHECK(oa.has_key && oa.key[15] == 0x11);
    CHECK(oa.queued_at > 0);
    CHECK_EQ(cj_pg_begin(b), CJ_OK);
    CHECK_EQ(cj_pg_op_next(b, &ob), CJ_OK);
    CHECK_EQ(ob.kind, CJ_PG_OP_EVICT);
    CHECK(!ob.has_key);
    CHECK_MEM(ob.id, ob.id_len, op.id, 8);
    CHECK(ob.seq > oa.seq);
    CHECK_EQ(cj_pg_op_done(b, ob.seq), CJ_OK);
    CHECK_EQ(cj_pg_commit(b), CJ_OK);
    /* a rolled back take leaves it queued */
    CHECK_EQ(cj_pg_op_done(a, oa.seq), CJ_OK);
    CHECK_EQ(cj_pg_rollback(a), CJ_OK);
    CHECK_EQ(cj_pg_op_next(b, &ob), CJ_OK);
    CHECK_EQ(ob.seq, oa.seq);
    CHECK_EQ(cj_pg_op_done(b, ob.seq), CJ_OK);
    CHECK_EQ(cj_pg_op_done(b, ob.seq), CJ_ERR_NOTFOUND);
    CHECK_EQ(cj_pg_op_next(a, &oa), CJ_ERR_NOTFOUND);
    cj_pg_close(a);
    cj_pg_close(b);
}

/* ---- several JRC engines, one database ------------------------------------ */

/* Two engines in two threads, one connection each, fed the same stream
 * of Join Requests at the same time (engine 1 in group commits of four
 * requests, sending a batch's answers only after its commit).  Each
 * request is admitted at most once in all: when both engines answer one
 * (the second through the stored repeat cache: the same JP sent it to
 * both), the answers are the same bytes.  No Partial IV carries two
 * ciphertexts, and the database holds no short id twice. */
#define MT_NP 6
#define MT_ROUNDS 30
#define MT_REQ (MT_NP * MT_ROUNDS)

typedef struct mt_req {
    uint8_t msg[256];
    size_t len;
    uint8_t pledge;
} mt_req_t;

static mt_req_t mt_reqs[MT_REQ];

typedef struct mt_thread {
    pthread_t t;
    unsigned no;
    bool batches;
    unsigned errors;
    unsigned lost_batches;
    bool accepted[MT_REQ];
    unsigned logi[MT_REQ];      /* its answer in log */
    jm_log_t log;
    cj_jrc_t eng;
    cj_jrc_cfg_t cfg;
    cj_jrc_slot_t slots[MT_NP]; /* every context stays cached */
} mt_thread_t;

static void *mt_run(void *arg)
{
    mt_thread_t *th = arg;
    static const cj_addr_t jp = {2, {0x0a, 0x03}};
    cj_pg_t *db = NULL;
    uint8_t msg[256], obuf[1024];
    cj_out_t out;
    /* answers of the open batch: request index and bytes */
    unsigned held[4];
    uint8_t hbuf[4][512];
    size_t hlen[4];
    unsigned nheld = 0;

    if (cj_pg_open(&db, uri) != CJ_OK) {
        th->errors++;
        return NULL;
    }
    if (jm_engine_init(&th->eng, &th->cfg, th->slots, MT_NP, cj_pg_store(db), 1) !=
        CJ_OK)
        th->errors++;
    out.buf = obuf;
    out.cap = sizeof obuf;
    for (unsigned kk = 0; kk < MT_REQ; kk++) {
        /* engine 0 takes each round's pledges in reverse order, so the
         * two meet on the same requests in every round */
        unsigned k = th->no ? kk
                            : kk - kk % MT_NP + (MT_NP - 1 - kk % MT_NP);
        const mt_req_t *q = &mt_reqs[k];
        int rc;

        if (th->batches && kk % 4 == 0 && cj_pg_begin_batch(db) != CJ_OK)
            th->errors++;
        memcpy(msg, q->msg, q->len);
        rc = cj_jrc_input(&th->eng, 1000 + kk, &jp, msg, q->len, &out);
        if (rc == 1 && out.len > 0 && out.len <= sizeof hbuf[0]) {
            held[nheld] = k;
            memcpy(hbuf[nheld], out.buf, out.len);
            hlen[nheld++] = out.len;
        }
        if (cj_pg_in_transaction(db) && kk % 4 != 3 && kk + 1 < MT_REQ)
            continue;
        if (cj_pg_in_transaction(db) && cj_pg_commit(db) != CJ_OK) {
            /* store/postgres.h: drop the batch, reload the engine */
            th->lost_batches++;
            nheld = 0;
            if (jm_engine_init(&th->eng, &th->cfg, th->slots, MT_NP,
                               cj_pg_store(db), 1) != CJ_OK)
                th->errors++;
            continue;
        }
        for (unsigned h = 0; h < nheld; h++) {
            th->accepted[held[h]] = true;
            th->logi[held[h]] = th->log.n;
            jm_log_add(&th->log, mt_reqs[held[h]].pledge, th->no, hbuf[h],
                       hlen[h]);
        }
        nheld = 0;
    }
    cj_pg_close(db);
    return NULL;
}

PG_TEST(pg_two_engines_two_threads)
{
    static mt_thread_t th[2];
    static jm_pledge_t pl[MT_NP];
    static jm_log_t all;
    cj_pg_t *db;
    unsigned twice = 0, answered = 0;

    memset(th, 0, sizeof th);
    fresh();
    db = ss_open(&pgb);
    ss_add_jm(&pgb, db, MT_NP);
    for (unsigned i = 0; i < MT_NP; i++)
        jm_pledge_init(&pl[i], i);
    for (unsigned k = 0; k < MT_REQ; k++) {
        mt_reqs[k].pledge = (uint8_t)(k % MT_NP);
        mt_reqs[k].len = jm_request(&pl[k % MT_NP], mt_reqs[k].msg,
                                    sizeof mt_reqs[k].msg);
        CHECK(mt_reqs[k].len > 0);
    }
    th[1].batches = true;
    for (unsigned i = 0; i < 2; i++) {
        th[i].no = i;
        CHECK_EQ(pthread_create(&th[i].t, NULL, mt_run, &th[i]), 0);
    }
    for (unsigned i = 0; i < 2; i++)
        pthread_join(th[i].t, NULL);
    memset(&all, 0, sizeof all);
    for (unsigned i = 0; i < 2; i++) {
        CHECK_EQ(th[i].errors, 0);
        for (unsigned e = 0; e < th[i].log.n; e++)
            all.e[all.n++] = th[i].log.e[e];
    }
    for (unsigned k = 0; k < MT_REQ; k++) {
        if (th[0].accepted[k] && th[1].accepted[k]) {
            const jm_entry_t *a = &th[0].log.e[th[0].logi[k]];
            const jm_entry_t *b = &th[1].log.e[th[1].logi[k]];
            twice += a->piv != b->piv || a->len != b->len ||
                     memcmp(a->body, b->body, a->len) != 0;
        }
        answered += th[0].accepted[k] || th[1].accepted[k];
    }
    CHECK_EQ(twice, 0);
    CHECK_EQ(jm_log_conflicts(&all), 0);
    /* a lost batch or a deadlock victim drops a few; most get through */
    CHECK(answered >= MT_REQ / 2);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM (SELECT short_id FROM pledges"
                         " WHERE lease_until IS NOT NULL GROUP BY short_id"
                         " HAVING count(*) > 1) d"),
             0);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges WHERE joined"), MT_NP);
    fprintf(stderr, "  pg: two threads answered %u of %u requests"
                    " (%u and %u), %u batches lost\n",
            answered, MT_REQ, th[0].log.n, th[1].log.n,
            th[1].lost_batches);
    cj_pg_close(db);
}

/* ---- batches: a queued write that fails ------------------------------------ */

/* In a batch the writes to a row the batch holds are queued without
 * waiting for an answer.  One of them failing on the server (here the
 * repeat cache, refused by a trigger) loses the whole batch: its commit
 * fails and nothing of it is left; once the cause is gone the same
 * request is admitted in the next batch. */
PG_TEST(pg_batch_failed_queued_write_loses_batch)
{
    static const cj_addr_t jp = {2, {0x0a, 0x03}};
    static cj_jrc_t eng;
    static cj_jrc_cfg_t cfg;
    static cj_jrc_slot_t slots[2];
    jm_pledge_t pl;
    uint8_t msg[256], buf[512], obuf[512];
    cj_out_t out = {.buf = obuf, .cap = sizeof obuf};
    size_t len;
    cj_pg_t *db;

    fresh();
    db = ss_open(&pgb);
    ss_add_jm(&pgb, db, 2);
    jm_pledge_init(&pl, 0);
    len = jm_request(&pl, msg, sizeof msg);
    CHECK(len > 0);
    sql_exec(db, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql"
                 " AS $$BEGIN IF NEW.repeat_cache IS NOT NULL THEN"
                 " RAISE EXCEPTION 'injected'; END IF; RETURN NEW; END$$;"
                 "CREATE TRIGGER refuse BEFORE UPDATE OF repeat_cache ON pledges"
                 " FOR EACH ROW EXECUTE FUNCTION refuse()");
    CHECK_EQ(jm_engine_init(&eng, &cfg, slots, 2, cj_pg_store(db), 1), CJ_OK);
    CHECK_EQ(cj_pg_begin_batch(db), CJ_OK);
    memcpy(buf, msg, len);
    /* answered: the refused write is only seen when the batch ends */
    CHECK_EQ(cj_jrc_input(&eng, 1000, &jp, buf, len, &out), 1);
    CHECK_EQ(cj_pg_commit(db), CJ_ERR_STORAGE);
    CHECK(!cj_pg_in_transaction(db));
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges WHERE joined OR"
                         " lease_until IS NOT NULL OR replay_valid OR"
                         " ssn_reserved > 0 OR repeat_cache IS NOT NULL"),
             0);
    CHECK_EQ(sql_int(db, "SELECT next_short FROM registry_state"), 1);

    /* the host drops the batch's answers and reloads its engine */
    sql_exec(db, "DROP TRIGGER refuse ON pledges");
    CHECK_EQ(jm_engine_init(&eng, &cfg, slots, 2, cj_pg_store(db), 1), CJ_OK);
    CHECK_EQ(cj_pg_begin_batch(db), CJ_OK);
    memcpy(buf, msg, len);
    out.len = 0;
    CHECK_EQ(cj_jrc_input(&eng, 1001, &jp, buf, len, &out), 1);
    CHECK_EQ(cj_pg_commit(db), CJ_OK);
    CHECK(jm_open(&pl, out.buf, out.len) >= 1);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges WHERE joined AND"
                         " lease_until IS NOT NULL AND replay_valid AND"
                         " ssn_reserved > 0 AND repeat_cache IS NOT NULL"),
             1);
    CHECK_EQ(sql_int(db, "SELECT next_short FROM registry_state"), 2);
    cj_pg_close(db);
}

/* ---- batches: rows read ahead ------------------------------------------------ */

/* cj_pg_prefetch() reads and locks several rows in one round trip; each
 * serves one lookup while the batch has not written to it, and a later
 * lookup sees the batch's own writes.  Unknown ids are skipped; outside a
 * batch it does nothing. */
PG_TEST(pg_batch_prefetch)
{
    cj_pg_t *db;
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t plain, ahead, again;
    cj_oscore_replay_t w;
    uint8_t id1[8], id2[8];
    const uint8_t *ids[3];
    uint8_t lens[3] = {8, 8, 8};

    fresh();
    db = ss_open(&pgb);
    st = cj_pg_store(db);
    ss_add_n(&pgb, db, 3);
    ss_make_id(id1, 1);
    ss_make_id(id2, 2);
    ids[0] = id1;
    ids[1] = ss_nobody;
    ids[2] = id2;
    CHECK_EQ(cj_pg_prefetch(db, ids, lens, 3), CJ_OK); /* no batch: nothing */
    CHECK_EQ(st->lookup(db, id1, 8, &plain), CJ_OK);

    CHECK_EQ(cj_pg_begin_batch(db), CJ_OK);
    CHECK_EQ(cj_pg_prefetch(db, ids, lens, 3), CJ_OK);
    memset(&ahead, 0, sizeof ahead);
    CHECK_EQ(st->lookup(db, id1, 8, &ahead), CJ_OK);
    CHECK_MEM(ahead.id, ahead.id_len, plain.id, plain.id_len);
    CHECK(memcmp(ahead.psk, plain.psk, 16) == 0);
    CHECK_EQ(ahead.allowed_roles, plain.allowed_roles);
    CHECK_EQ(ahead.ssn_reserved, plain.ssn_reserved);
    CHECK_EQ(ahead.replay.valid, plain.replay.valid);
    CHECK_EQ(ahead.joined, plain.joined);
    CHECK_EQ(ahead.short_id, plain.short_id);
    CHECK(ahead.has_okm && plain.has_okm &&
          memcmp(ahead.okm, plain.okm, sizeof plain.okm) == 0);
    CHECK_EQ(st->accept_piv(db, id1, 8, ss_psk_of(id1), NULL, 0, 7, &w), CJ_OK);
    CHECK_EQ(st->lookup(db, id1, 8, &again), CJ_OK);
    CHECK(again.replay.valid);
    CHECK_EQ(again.replay.highest, 7);
    CHECK_EQ(st->lookup(db, ss_nobody, 8, &again), CJ_ERR_NOTFOUND);
    CHECK_EQ(cj_pg_commit(db), CJ_OK);
    /* committed: the prefetched rows were locked, written once */
    CHECK_EQ(st->lookup(db, id1, 8, &again), CJ_OK);
    CHECK_EQ(again.replay.highest, 7);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges WHERE replay_valid"), 1);
    cj_pg_close(db);
}

/* Two JRC instances provisioning at once cannot give two pledges one
 * PSK (RFC 9031 section 3): the second insert waits for the first
 * instance's transaction, then is refused when that committed, and
 * succeeds when it rolled back. */
typedef struct adder {
    pthread_t t;
    int rc;
} adder_t;

static void *add_thread(void *arg)
{
    adder_t *a = arg;
    cj_pg_t *db = NULL;
    uint8_t id[8], psk[16];

    a->rc = cj_pg_open(&db, uri);
    if (a->rc != CJ_OK)
        return NULL;
    ss_make_id(id, 2);
    ss_make_psk(psk, 1000);
    a->rc = cj_pg_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE);
    cj_pg_close(db);
    return NULL;
}

PG_TEST(pg_two_instances_one_psk)
{
    for (int commit = 1; commit >= 0; commit--) {
        struct timespec nap = {0, 20 * 1000 * 1000};
        uint8_t id[8], psk[16];
        bool waited = false;
        adder_t a = {0};
        cj_pg_t *db;

        fresh();
        db = ss_open(&pgb);
        CHECK_EQ(cj_pg_begin(db), CJ_OK);
        ss_make_id(id, 1);
        ss_make_psk(psk, 1000);
        CHECK_EQ(cj_pg_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
        CHECK_EQ(pthread_create(&a.t, NULL, add_thread, &a), 0);
        /* up to 3 s (the waiter gives up after CJ_PG_LOCK_MS) */
        for (int i = 0; i < 150 && !waited; i++) {
            char *v = outside("SELECT count(*) FROM pg_stat_activity"
                              " WHERE wait_event_type = 'Lock'"
                              " AND datname = current_database()");
            waited = v != NULL && atoi(v) > 0;
            free(v);
            if (!waited)
                nanosleep(&nap, NULL);
        }
        CHECK(waited);
        CHECK_EQ(commit ? cj_pg_commit(db) : cj_pg_rollback(db), CJ_OK);
        pthread_join(a.t, NULL);
        CHECK_EQ(a.rc, commit ? CJ_ERR_PSK_REUSED : CJ_OK);
        /* the PSK's one holder: the first instance's pledge, or else the
         * second's */
        CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges"), 1);
        CHECK_EQ(sql_int(db, "SELECT get_byte(id, 7) FROM pledges"), commit ? 1 : 2);
        cj_pg_close(db);
    }
}

/* A PSK that leaves a pledge is never given out again (RFC 9031 section
 * 3), not even by an instance that gives it while the PSK change or
 * removal retiring it is in flight on another.  The first instance
 * changes pledge X's PSK from P to Q, or removes X, in a transaction it
 * leaves open (a group transaction, then a batch in pipeline mode: the
 * window a `jrc psk` or `jrc remove` has before its commit).  The second
 * gives P to a new pledge Z (add, import) or to pledge Y (PSK change);
 * once it waits for a lock (or is done), the first commits.  The second
 * must be refused, and P held by nobody.  Under READ COMMITTED an add
 * or import that checked retired_psks before that commit, and whose
 * insert waited for it on the unique index, would otherwise succeed (a
 * PSK change to P was refused either way: it counts the pledges holding
 * P, X among them until the commit). */
enum { GIVE_ADD, GIVE_IMPORT, GIVE_SET_PSK };

typedef struct giver {
    pthread_t t;
    int kind;
    unsigned pledge, psk; /* ss_make_id, ss_make_psk numbers */
    atomic_int pid;       /* its server process, once connected */
    atomic_bool done;
    int rc;
    size_t bad_line;
} giver_t;

static void hex_of(char *out, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void *give_thread(void *arg)
{
    giver_t *g = arg;
    cj_pg_t *db = NULL;
    uint8_t id[8], psk[16];

    ss_make_id(id, g->pledge);
    ss_make_psk(psk, g->psk);
    g->rc = cj_pg_open(&db, uri);
    if (g->rc == CJ_OK) {
        atomic_store(&g->pid, PQbackendPID(cj_pg_raw(db)));
        if (g->kind == GIVE_ADD) {
            g->rc = cj_pg_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE);
        } else if (g->kind == GIVE_IMPORT) {
            char line[2 * 8 + 1 + 2 * 16 + 2];
            hex_of(line, id, 8);
            line[16] = ',';
            hex_of(line + 17, psk, 16);
            line[49] = '\n';
            g->rc = cj_pg_import_csv(db, line, 50, &g->bad_line, NULL);
        } else {
            g->rc = cj_pg_set_psk(db, id, 8, psk);
        }
    }
    cj_pg_close(db);
    atomic_store(&g->done, true);
    return NULL;
}

/* Whether server process pid waits for a lock. */
static bool waits_for_lock(int pid)
{
    char sql[128], *v;
    bool w;

    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity"
                              " WHERE pid = %d AND wait_event_type = 'Lock'",
             pid);
    v = outside(sql);
    w = v != NULL && atoi(v) > 0;
    free(v);
    return w;
}

/* Pledges with that id (NULL: any) and that PSK (NULL: any). */
static long long pledges_with(cj_pg_t *db, const uint8_t *id,
                              const uint8_t *psk)
{
    char sql[200], idh[17] = "", pskh[33] = "";

    if (id != NULL)
        hex_of(idh, id, 8);
    if (psk != NULL)
        hex_of(pskh, psk, 16);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pledges WHERE (%s OR id = '\\x%s'::bytea)"
             " AND (%s OR psk = '\\x%s'::bytea)",
             id == NULL ? "true" : "false", idh, psk == NULL ? "true" : "false",
             pskh);
    return sql_int(db, sql);
}

PG_TEST(pg_psk_not_given_while_retired)
{
    static const int kinds[] = {GIVE_ADD, GIVE_IMPORT, GIVE_SET_PSK};
    struct timespec nap = {0, 20 * 1000 * 1000};
    unsigned n = 0;
    cj_pg_t *db;

    fresh();
    db = ss_open(&pgb);
    for (int batch = 0; batch <= 1; batch++) {
        for (int removal = 0; removal <= 1; removal++) {
            for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++, n++) {
                /* pledge x holds PSK x, gets PSK x + 1; y holds y */
                unsigned x = 10 * n + 1, y = x + 2, z = x + 3;
                uint8_t idx[8], idy[8], idz[8], p[16], q[16], py[16];
                giver_t g = {.kind = kinds[k], .psk = x};
                bool waited = false;

                g.pledge = g.kind == GIVE_SET_PSK ? y : z;
                atomic_init(&g.pid, 0);
                atomic_init(&g.done, false);
                ss_make_id(idx, x);
                ss_make_id(idy, y);
                ss_make_id(idz, z);
                ss_make_psk(p, x);
                ss_make_psk(q, x + 1);
                ss_make_psk(py, y);
                CHECK_EQ(cj_pg_add(db, idx, 8, p, CJ_JRC_ALLOW_NODE), CJ_OK);
                CHECK_EQ(cj_pg_add(db, idy, 8, py, CJ_JRC_ALLOW_NODE), CJ_OK);

                CHECK_EQ(batch ? cj_pg_begin_batch(db) : cj_pg_begin(db), CJ_OK);
                CHECK_EQ(removal ? cj_pg_remove(db, idx, 8, 0)
                                 : cj_pg_set_psk(db, idx, 8, q),
                         CJ_OK);
                CHECK_EQ(pthread_create(&g.t, NULL, give_thread, &g), 0);
                /* up to 4 s (the waiter gives up after CJ_PG_LOCK_MS) */
                for (int i = 0; i < 200 && !waited && !atomic_load(&g.done); i++) {
                    int pid = atomic_load(&g.pid);
                    waited = pid != 0 && waits_for_lock(pid);
                    if (!waited)
                        nanosleep(&nap, NULL);
                }
                CHECK(waited || atomic_load(&g.done));
                CHECK_EQ(cj_pg_commit(db), CJ_OK);
                pthread_join(g.t, NULL);

                CHECK_EQ(g.rc, CJ_ERR_PSK_REUSED);
                if (g.kind == GIVE_IMPORT)
                    CHECK_EQ(g.bad_line, 1);
                CHECK_EQ(pledges_with(db, NULL, p), 0);
                CHECK_EQ(pledges_with(db, idx, NULL), removal ? 0 : 1);
                CHECK_EQ(pledges_with(db, idx, q), removal ? 0 : 1);
                CHECK_EQ(pledges_with(db, idy, py), 1);
                CHECK_EQ(pledges_with(db, idz, NULL), 0);
                CHECK_EQ(sql_int(db, "SELECT count(*) FROM retired_psks"), n + 1);
                /* and refused from now on */
                CHECK_EQ(cj_pg_add(db, idz, 8, p, CJ_JRC_ALLOW_NODE),
                         CJ_ERR_PSK_REUSED);
            }
        }
    }
    cj_pg_close(db);
}
