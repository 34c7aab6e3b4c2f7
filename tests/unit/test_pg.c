/*
 * PostgreSQL JRC store (store/postgres.h) against a real server: the URI
 * comes from COJP_PG_URI (`make check-pg` starts a throwaway server with
 * tests/pg-server.sh and sets it).  Without it these tests are not
 * registered at all, so they count neither as passed nor as failed.
 *
 * Each test works in a schema of its own making (cojp_unit, dropped and
 * created afresh), reached through the search_path connection option.
 * Checked: schema creation and migration, every store call against the
 * in-memory store's results, short-id uniqueness under expiry and reuse,
 * two instances (threads with their own connections) assigning at once,
 * ssn_reserved and replay windows never moving back under concurrent
 * writers, CSV import, rollback, and the JRC engine admitting a pledge.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cojp/coap.h"
#include "cojp/cojp.h"
#include "cojp/jrc.h"
#include "cojp/jrc_memstore.h"
#include "cojp/oscore.h"
#include "store/postgres.h"
#include "../test.h"

static bool pg_enabled(void)
{
    const char *u = getenv("COJP_PG_URI");
    return u != NULL && *u != '\0';
}

/* Like TEST(), but registered only when a server is configured. */
#define PG_TEST(name)                                                      \
    static void test_##name(void);                                         \
    __attribute__((constructor)) static void register_##name(void)        \
    {                                                                      \
        if (pg_enabled())                                                  \
            cj_test_register(#name, test_##name);                          \
    }                                                                      \
    static void test_##name(void)

__attribute__((constructor)) static void pg_announce(void)
{
    if (!pg_enabled())
        fputs("pg: skipped (COJP_PG_URI not set)\n", stderr);
}

/* ---- fixtures ------------------------------------------------------------ */

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

static cj_pg_t *open_db(void)
{
    cj_pg_t *db = NULL;
    int rc = cj_pg_open(&db, uri);
    CHECK_EQ(rc, CJ_OK);
    CHECK(db != NULL);
    return db;
}

/* One integer from a query on the handle's connection (-2: failed). */
static long long sql_int(cj_pg_t *db, const char *sql)
{
    PGresult *r = PQexec(cj_pg_raw(db), sql);
    long long v = -1;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -2;
    }
    if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static bool sql_try(cj_pg_t *db, const char *sql)
{
    PGresult *r = PQexec(cj_pg_raw(db), sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
              PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok;
}

static void sql_exec(cj_pg_t *db, const char *sql)
{
    CHECK(sql_try(db, sql));
}

static void make_id(uint8_t id[8], unsigned i)
{
    static const uint8_t base[8] = {0x00, 0x12, 0x4b, 0x00, 0x00, 0x00, 0, 0};
    memcpy(id, base, 8);
    id[5] = (uint8_t)(i >> 16);
    id[6] = (uint8_t)(i >> 8);
    id[7] = (uint8_t)i;
}

static void make_psk(uint8_t psk[16], unsigned i)
{
    for (unsigned k = 0; k < 16; k++)
        psk[k] = (uint8_t)(0x30 + k + 7 * i);
}

static void add_n(cj_pg_t *db, unsigned n)
{
    uint8_t id[8], psk[16];
    CHECK_EQ(cj_pg_begin(db), CJ_OK);
    for (unsigned i = 0; i < n; i++) {
        make_id(id, i);
        make_psk(psk, i);
        CHECK_EQ(cj_pg_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    }
    CHECK_EQ(cj_pg_commit(db), CJ_OK);
}

static void set_cursor(cj_pg_t *db, unsigned v)
{
    char sql[80];
    snprintf(sql, sizeof sql, "UPDATE registry_state SET next_short = %u", v);
    sql_exec(db, sql);
}

/* ---- schema ---------------------------------------------------------------- */

PG_TEST(pg_schema_create_and_reopen)
{
    cj_pg_t *db;
    uint64_t s1;

    CHECK(cj_pg_is_uri("postgresql://x@h/db"));
    CHECK(cj_pg_is_uri("postgres:///db?host=/tmp"));
    CHECK(!cj_pg_is_uri("/var/lib/cojp/jrc.db"));
    CHECK(!cj_pg_is_uri("postgresql:"));

    fresh();
    db = open_db();
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM schema_version"),
             CJ_PG_SCHEMA_VERSION);
    CHECK_EQ(sql_int(db, "SELECT max(version) FROM schema_version"),
             CJ_PG_SCHEMA_VERSION);
    CHECK_EQ(sql_int(db, "SELECT (current_setting('synchronous_commit')"
                         " = 'on')::int"),
             1);
    CHECK_EQ(sql_int(db, "SELECT (current_setting('transaction_isolation')"
                         " = 'read committed')::int"),
             1);
    s1 = cj_pg_session(db);
    CHECK(s1 >= 1);
    add_n(db, 2);
    cj_pg_close(db);

    /* reopening applies nothing twice and keeps the data */
    db = open_db();
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM schema_version"),
             CJ_PG_SCHEMA_VERSION);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges"), 2);
    CHECK_EQ(cj_pg_session(db), s1 + 1);
    /* a version 1 database is brought up to date, data kept */
    sql_exec(db, "DROP TABLE network, pending_ops;"
                 "DELETE FROM schema_version WHERE version = 2");
    cj_pg_close(db);
    db = open_db();
    CHECK_EQ(sql_int(db, "SELECT max(version) FROM schema_version"), 2);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pending_ops"), 0);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges"), 2);
    /* a database from a newer cojp is refused, not downgraded */
    sql_exec(db, "INSERT INTO schema_version VALUES (99, 0)");
    cj_pg_close(db);
    db = NULL;
    CHECK_EQ(cj_pg_open(&db, uri), CJ_ERR_UNSUPPORTED);
    CHECK(db == NULL);

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
    db = open_db();
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM schema_version"),
             CJ_PG_SCHEMA_VERSION);
    CHECK_EQ(cj_pg_session(db), 5);
    cj_pg_close(db);
}

/* ---- the same scenario against memstore and PostgreSQL -------------------- */

typedef struct trace {
    long long v[256];
    size_t n;
} trace_t;

static void put(trace_t *t, long long v)
{
    if (t->n < sizeof t->v / sizeof t->v[0])
        t->v[t->n++] = v;
}

static void put_rec(trace_t *t, int rc, const cj_jrc_pledge_t *r)
{
    put(t, rc);
    if (rc != CJ_OK)
        return;
    put(t, r->id[7]);
    put(t, r->psk[15]);
    put(t, r->allowed_roles);
    put(t, (long long)r->ssn_reserved);
    put(t, (long long)r->replay.highest);
    put(t, r->replay.bitmap);
    put(t, r->replay.valid);
    put(t, r->id_context_len);
    put(t, r->id_context_len ? r->id_context[r->id_context_len - 1] : -1);
    put(t, r->joined);
    put(t, r->role);
    put(t, r->short_id);
}

static const uint8_t nobody[8] = {9, 9, 9, 9, 9, 9, 9, 9};

/* Every store call, valid and not; set_cur moves the short-id cursor. */
/* Raise ssn_reserved to at least v (a reservation of no numbers). */
static int raise_ssn(const cj_jrc_store_t *st, void *c, const uint8_t *id,
                     uint64_t v)
{
    uint64_t first = 0;
    return st->reserve_ssn(c, id, 8, NULL, 0, v, 0, &first);
}

static void scenario(const cj_jrc_store_t *st, void (*set_cur)(unsigned),
                     trace_t *t)
{
    void *c = st->ctx;
    uint8_t id[4][8];
    cj_jrc_pledge_t r;
    cj_oscore_replay_t w;
    uint64_t first = 0;
    static const uint8_t ctxid[16] = {0xb1, 2, 3, 4, 5, 6, 7, 8,
                                      0, 0x12, 0x4b, 0, 0, 0, 0, 2};
    uint16_t s = 0, s3 = 0;
    uint64_t cur = 0;
    cj_addr_t a;

    for (unsigned i = 0; i < 4; i++)
        make_id(id[i], i);
    put_rec(t, st->lookup(c, id[3], 8, &r), &r);
    put_rec(t, st->lookup(c, nobody, 8, &r), &r);
    put_rec(t, st->lookup(c, id[3], 7, &r), &r);
    /* blocks: from below the mark, above it, raise only (count 0) */
    put(t, st->reserve_ssn(c, id[3], 8, NULL, 0, 987654321, 32, &first));
    put(t, (long long)first);
    put(t, st->reserve_ssn(c, id[3], 8, NULL, 0, 5, 1, &first));
    put(t, (long long)first);
    put(t, st->reserve_ssn(c, id[3], 8, NULL, 0, 987700000, 0, &first));
    put(t, (long long)first);
    put(t, st->reserve_ssn(c, nobody, 8, NULL, 0, 1, 1, &first));
    put(t, st->reserve_ssn(c, id[3], 8, ctxid, 8, 1, 1, &first));
    /* Partial IVs: new, repeated, within the window, too old */
    static const uint64_t pivs[] = {73, 73, 45, 41, 72, 100, 69, 68, 68};
    for (size_t i = 0; i < sizeof pivs / sizeof pivs[0]; i++) {
        memset(&w, 0, sizeof w);
        put(t, st->accept_piv(c, id[3], 8, NULL, 0, pivs[i], &w));
        put(t, (long long)w.highest);
        put(t, w.bitmap);
        put(t, w.valid);
    }
    put(t, st->accept_piv(c, nobody, 8, NULL, 0, 1, &w));
    put_rec(t, st->lookup(c, id[3], 8, &r), &r);
    put(t, st->save_context(c, id[2], 8, ctxid, sizeof ctxid));
    put(t, st->save_context(c, nobody, 8, ctxid, 4));
    put_rec(t, st->lookup_context(c, ctxid, sizeof ctxid, &r), &r);
    put_rec(t, st->lookup_context(c, ctxid, 15, &r), &r);
    /* only under the current ID Context */
    put(t, st->reserve_ssn(c, id[2], 8, NULL, 0, 500, 1, &first));
    put(t, st->accept_piv(c, id[2], 8, NULL, 0, 3, &w));
    put(t, st->reserve_ssn(c, id[2], 8, ctxid, sizeof ctxid, 500, 1, &first));
    put(t, (long long)first);
    put(t, st->accept_piv(c, id[2], 8, ctxid, sizeof ctxid, 3, &w));
    put(t, (long long)w.highest);
    put(t, st->save_context(c, id[2], 8, ctxid, 9)); /* resets state */
    put_rec(t, st->lookup(c, id[2], 8, &r), &r);
    put_rec(t, st->lookup_context(c, ctxid, 9, &r), &r);

    /* short ids: reserved values skipped, renew, fresh, expiry, reuse */
    set_cur(0xfffc);
    put(t, st->assign_short_id(c, id[0], 8, 5000, 1, false, &s));
    put(t, s);
    put(t, st->assign_short_id(c, id[1], 8, 5000, 2, false, &s));
    put(t, s);
    put(t, st->assign_short_id(c, id[2], 8, 5000, 1, false, &s));
    put(t, s);
    put(t, st->assign_short_id(c, id[1], 8, 9000, 2, false, &s)); /* renew */
    put(t, s);
    put(t, st->assign_short_id(c, id[1], 8, 9000, 2, true, &s)); /* fresh */
    put(t, s);
    put(t, st->assign_short_id(c, nobody, 8, 9000, 0, false, &s));
    /* one hour later id[0]'s and id[2]'s leases are over */
    set_cur(0xfffc);
    put(t, st->assign_short_id(c, id[3], 8, 3605000, 0, false, &s3));
    put(t, s3);
    put(t, st->assign_short_id(c, id[2], 8, 3605000, 1, true, &s));
    put(t, s);
    put(t, st->assign_short_id(c, id[0], 8, 3605000, 1, false, &s));
    put(t, s);
    put(t, st->record_join(c, id[0], 8, CJ_COJP_ROLE_6LBR, s, 3605000));
    put(t, st->record_join(c, id[3], 8, CJ_COJP_ROLE_6LN, s3, 3605000));
    put(t, st->record_join(c, nobody, 8, 1, 3, 3605000));
    put_rec(t, st->lookup(c, id[0], 8, &r), &r);

    /* joined nodes in a stable order */
    for (int k = 0; k < 4; k++)
        put_rec(t, st->next_joined(c, &cur, &r), &r);
    put(t, st->release(c, id[3], 8));
    put(t, st->release(c, nobody, 8));
    cur = 0;
    put_rec(t, st->next_joined(c, &cur, &r), &r);
    put_rec(t, st->next_joined(c, &cur, &r), &r);
    /* released: its id is free for the next assignment at the cursor */
    set_cur(0xfffd);
    put(t, st->assign_short_id(c, id[1], 8, 3605000, 1, true, &s));
    put(t, s);

    memset(&a, 0, sizeof a);
    put(t, st->node_address(c, id[2], 8, &a));
    put(t, a.len);
    put(t, a.b[7]);
    put(t, st->node_address(c, nobody, 8, &a));
    put(t, st->record_update(c, id[2], 8, 5, true));
    put(t, st->record_update(c, id[2], 8, 6, false));
    put(t, st->record_update(c, nobody, 8, 6, false));
}

static cj_jrc_memstore_t cmp_ms;
static cj_jrc_mementry_t cmp_entries[8];
static cj_pg_t *cur_db;

static void ms_cursor(unsigned v)
{
    cmp_ms.next_short = (uint16_t)v;
}

static void db_cursor(unsigned v)
{
    set_cursor(cur_db, v);
}

static void compare(const trace_t *tm, const trace_t *tp, int line)
{
    if (tm->n != tp->n)
        cj_test_failf(__FILE__, line, "trace lengths %zu != %zu", tm->n,
                      tp->n);
    for (size_t i = 0; i < tm->n && i < tp->n; i++)
        if (tm->v[i] != tp->v[i]) {
            cj_test_failf(__FILE__, line, "trace %zu: memstore %lld, pg %lld",
                          i, tm->v[i], tp->v[i]);
            break;
        }
}

PG_TEST(pg_same_results_as_memstore)
{
    static trace_t tm, tp;
    uint8_t id[8], psk[16];

    memset(&tm, 0, sizeof tm);
    memset(&tp, 0, sizeof tp);
    cj_jrc_memstore_init(&cmp_ms, cmp_entries, 8);
    for (unsigned i = 0; i < 4; i++) {
        make_id(id, i);
        make_psk(psk, i);
        CHECK_EQ(cj_jrc_memstore_add(&cmp_ms, id, 8, psk, CJ_JRC_ALLOW_NODE),
                 CJ_OK);
    }
    scenario(&cmp_ms.store, ms_cursor, &tm);

    fresh();
    cur_db = open_db();
    add_n(cur_db, 4);
    scenario(cj_pg_store(cur_db), db_cursor, &tp);
    compare(&tm, &tp, __LINE__);
    CHECK_EQ(sql_int(cur_db, "SELECT count(*) FROM updates"), 2);
    cj_pg_close(cur_db);

    /* the same again with every call inside one group transaction */
    memset(&tp, 0, sizeof tp);
    fresh();
    cur_db = open_db();
    add_n(cur_db, 4);
    CHECK_EQ(cj_pg_begin(cur_db), CJ_OK);
    scenario(cj_pg_store(cur_db), db_cursor, &tp);
    CHECK_EQ(cj_pg_commit(cur_db), CJ_OK);
    compare(&tm, &tp, __LINE__);
    cj_pg_close(cur_db);
}

/* ---- short identifiers ------------------------------------------------------ */

#define NP 300

/* 2000 assignments with leases expiring and ids coming back, compared
 * call by call with the in-memory store (same sequential policy). */
PG_TEST(pg_short_ids_unique_2000_with_expiry)
{
    static cj_jrc_mementry_t ments[NP];
    static cj_jrc_memstore_t mst;
    cj_pg_t *db;
    const cj_jrc_store_t *st;
    uint64_t now = 1000;
    unsigned differ = 0, failed = 0, reused = 0;
    uint32_t rng = 4242;
    static bool used[65536];

    memset(used, 0, sizeof used);
    cj_jrc_memstore_init(&mst, ments, NP);
    fresh();
    db = open_db();
    st = cj_pg_store(db);
    add_n(db, NP);
    for (unsigned i = 0; i < NP; i++) {
        uint8_t id[8], psk[16];
        make_id(id, i);
        make_psk(psk, i);
        CHECK_EQ(cj_jrc_memstore_add(&mst, id, 8, psk, CJ_JRC_ALLOW_NODE),
                 CJ_OK);
    }
    /* start near the top so the cursor wraps */
    set_cursor(db, 65400);
    mst.next_short = 65400;
    for (unsigned n = 0; n < 2000; n++) {
        uint8_t id[8];
        uint16_t s = 0, sm = 0;
        unsigned p;
        uint32_t hours;
        bool fresh_id;
        int rc, rm;

        rng = rng * 1103515245u + 12345u;
        p = (rng >> 8) % NP;
        hours = 1 + (rng >> 20) % 3;
        fresh_id = (rng >> 24) % 7 == 0;
        now += 1 + (rng >> 4) % 700000;
        make_id(id, p);
        if (n % 150 == 0) {
            set_cursor(db, 1);
            mst.next_short = 1;
        }
        if (n % 100 == 50)
            CHECK_EQ(cj_pg_begin(db), CJ_OK);
        rc = st->assign_short_id(st->ctx, id, 8, now, hours, fresh_id, &s);
        if (n % 100 == 99 && cj_pg_in_transaction(db))
            CHECK_EQ(cj_pg_commit(db), CJ_OK);
        rm = mst.store.assign_short_id(&mst, id, 8, now, hours, fresh_id, &sm);
        if (rc != CJ_OK || rm != CJ_OK)
            failed++;
        if (s != sm)
            differ++;
        if (used[s])
            reused++;
        used[s] = true;
        if (n % 97 == 0)
            CHECK_EQ(sql_int(db, "SELECT count(*) FROM (SELECT short_id"
                                 " FROM pledges WHERE lease_until IS NOT NULL"
                                 " GROUP BY short_id HAVING count(*) > 1) d"),
                     0);
    }
    CHECK_EQ(failed, 0);
    CHECK_EQ(differ, 0);
    CHECK(reused > 0);
    /* the database itself refuses a second live holder */
    CHECK(!sql_try(db, "UPDATE pledges SET short_id = 77, lease_until ="
                       " 9223372036854775807 WHERE seq IN (1, 2)"));
    cj_pg_close(db);
}

PG_TEST(pg_short_ids_exhausted)
{
    cj_pg_t *db;
    const cj_jrc_store_t *st;
    uint8_t id[8], psk[16];
    uint16_t s = 0;

    fresh();
    db = open_db();
    st = cj_pg_store(db);
    /* 65533 live leases (0x0001..0xfffd), written straight in SQL */
    sql_exec(db, "INSERT INTO pledges (id, psk, allowed_roles, short_id,"
                 " lease_until) SELECT int8send(g), '\\x000102030405060708090a0b"
                 "0c0d0e0f'::bytea, 1, g, 9223372036854775807 FROM"
                 " generate_series(1, 65533) g");
    make_id(id, 1);
    make_psk(psk, 1);
    CHECK_EQ(cj_pg_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 0, 0, false, &s),
             CJ_ERR_NOSPACE);
    /* inside a batch the failure spoils nothing */
    CHECK_EQ(cj_pg_begin(db), CJ_OK);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 0, 0, true, &s),
             CJ_ERR_NOSPACE);
    CHECK_EQ(raise_ssn(st, st->ctx, id, 5), CJ_OK);
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
        make_id(id, h->first + k % HAMMER);
        if (h->batches && k % 10 == 0 && cj_pg_begin(db) != CJ_OK)
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
    db = open_db();
    add_n(db, 2 * HAMMER);
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
    make_id(id, 0);
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
        if (raise_ssn(st, st->ctx, id, v) != CJ_OK)
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
    db = open_db();
    add_n(db, 1);
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
    make_id(id, 0);
    CHECK_EQ(cj_pg_store(db)->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved,
             w[0].max_saved > w[1].max_saved ? w[0].max_saved : w[1].max_saved);
    /* a single writer lowering it does not either */
    CHECK_EQ(raise_ssn(cj_pg_store(db), db, id, 3), CJ_OK);
    CHECK_EQ(cj_pg_store(db)->lookup(db, id, 8, &r), CJ_OK);
    CHECK(r.ssn_reserved > 3);
    /* only a new ID Context (recovery) starts it afresh */
    CHECK_EQ(cj_pg_store(db)->save_context(db, id, 8, nobody, 8), CJ_OK);
    CHECK_EQ(cj_pg_store(db)->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, 0);
    cj_pg_close(db);
}

/* accept_piv against the stored window (RFC 8613 section 7.4): a Partial
 * IV is accepted once, within the window in any order, never when older
 * than the window; a failed accept changes nothing. */
PG_TEST(pg_accept_piv_window)
{
    cj_pg_t *db;
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    cj_oscore_replay_t w;
    uint8_t id[8];

    fresh();
    db = open_db();
    st = cj_pg_store(db);
    add_n(db, 1);
    make_id(id, 0);
    CHECK_EQ(st->accept_piv(db, id, 8, NULL, 0, 100, &w), CJ_OK);
    CHECK_EQ(st->accept_piv(db, id, 8, NULL, 0, 98, &w), CJ_OK);
    CHECK_EQ(st->accept_piv(db, id, 8, NULL, 0, 90, &w), CJ_OK);
    CHECK(w.valid);
    CHECK_EQ(w.highest, 100);
    CHECK_EQ(w.bitmap, 0x5u | (1u << 10)); /* ages 0, 2, 10 */
    CHECK_EQ(st->accept_piv(db, id, 8, NULL, 0, 98, &w), CJ_ERR_REPLAY);
    CHECK_EQ(st->accept_piv(db, id, 8, NULL, 0, 68, &w), CJ_ERR_REPLAY);
    CHECK_EQ(st->accept_piv(db, id, 8, NULL, 0, UINT64_C(1) << 40, &w),
             CJ_ERR_REPLAY);
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.replay.highest, 100);
    CHECK_EQ(r.replay.bitmap, 0x5u | (1u << 10));
    /* inside a batch a refused one spoils nothing either */
    CHECK_EQ(cj_pg_begin(db), CJ_OK);
    CHECK_EQ(st->accept_piv(db, id, 8, NULL, 0, 100, &w), CJ_ERR_REPLAY);
    CHECK_EQ(st->accept_piv(db, id, 8, NULL, 0, 200, &w), CJ_OK);
    CHECK_EQ(cj_pg_commit(db), CJ_OK);
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.replay.highest, 200);
    CHECK_EQ(r.replay.bitmap, 1);
    /* another ID Context than the record's: not found, nothing changes */
    CHECK_EQ(st->accept_piv(db, id, 8, nobody, 8, 300, &w), CJ_ERR_NOTFOUND);
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.replay.highest, 200);
    cj_pg_close(db);
}

/* ---- durability and atomicity ---------------------------------------------- */

PG_TEST(pg_durable_across_reopen)
{
    cj_pg_t *db;
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    cj_oscore_replay_t w;
    uint8_t id[8];
    uint16_t s = 0, s2 = 0;
    uint64_t cur = 0;

    fresh();
    db = open_db();
    st = cj_pg_store(db);
    add_n(db, 3);
    make_id(id, 2);
    CHECK_EQ(raise_ssn(st, db, id, (UINT64_C(1) << 40) - 1), CJ_OK);
    CHECK_EQ(st->accept_piv(db, id, 8, NULL, 0, 997, &w), CJ_OK);
    CHECK_EQ(st->accept_piv(db, id, 8, NULL, 0, 1000, &w), CJ_OK);
    CHECK_EQ(st->accept_piv(db, id, 8, NULL, 0, 999, &w), CJ_OK);
    CHECK_EQ(st->assign_short_id(db, id, 8, 5000, 24, false, &s), CJ_OK);
    CHECK_EQ(st->record_join(db, id, 8, CJ_COJP_ROLE_6LBR, s, 5000), CJ_OK);
    cj_pg_close(db);

    db = open_db();
    st = cj_pg_store(db);
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, (UINT64_C(1) << 40) - 1);
    CHECK_EQ(r.replay.highest, 1000);
    CHECK_EQ(r.replay.bitmap, 0xbu); /* ages 0, 1 and 3 */
    CHECK(r.replay.valid);
    CHECK(r.joined);
    CHECK_EQ(r.role, CJ_COJP_ROLE_6LBR);
    CHECK_EQ(r.short_id, s);
    CHECK_EQ(st->next_joined(db, &cur, &r), CJ_OK);
    CHECK_MEM(r.id, r.id_len, id, 8);
    CHECK_EQ(st->next_joined(db, &cur, &r), CJ_ERR_NOTFOUND);
    CHECK_EQ(st->assign_short_id(db, id, 8, 6000, 24, false, &s2), CJ_OK);
    CHECK_EQ(s2, s);
    cj_pg_close(db);
}

PG_TEST(pg_rollback_leaves_nothing)
{
    cj_pg_t *db;
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    uint8_t id[8], psk[16];
    uint16_t s = 0;
    size_t bad = 0, count = 0;

    fresh();
    db = open_db();
    st = cj_pg_store(db);
    add_n(db, 1);
    make_id(id, 0);
    CHECK_EQ(cj_pg_begin(db), CJ_OK);
    CHECK_EQ(cj_pg_begin(db), CJ_ERR_STATE);
    CHECK(cj_pg_in_transaction(db));
    CHECK_EQ(raise_ssn(st, db, id, 99), CJ_OK);
    CHECK_EQ(st->assign_short_id(db, id, 8, 0, 0, false, &s), CJ_OK);
    CHECK_EQ(st->record_join(db, id, 8, 0, s, 0), CJ_OK);
    CHECK_EQ(cj_pg_evict(db, id, 8), CJ_OK);
    make_id(id, 1);
    make_psk(psk, 1);
    CHECK_EQ(cj_pg_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    CHECK_EQ(cj_pg_import_csv(db, "0a0b,000102030405060708090a0b0c0d0e0f\n",
                              38, &bad, &count),
             CJ_OK);
    CHECK_EQ(count, 1);
    /* the open transaction sees its own writes */
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(cj_pg_rollback(db), CJ_OK);
    CHECK(!cj_pg_in_transaction(db));
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_ERR_NOTFOUND);
    make_id(id, 0);
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, 0);
    CHECK(!r.joined);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges"), 1);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges WHERE lease_until"
                         " IS NOT NULL OR evicted_at IS NOT NULL"),
             0);
    CHECK_EQ(sql_int(db, "SELECT next_short FROM registry_state"), 1);
    CHECK_EQ(cj_pg_rollback(db), CJ_ERR_STATE);
    CHECK_EQ(cj_pg_commit(db), CJ_ERR_STATE);
    /* nothing of an uncommitted batch survives a close either */
    CHECK_EQ(cj_pg_begin(db), CJ_OK);
    CHECK_EQ(raise_ssn(st, db, id, 555), CJ_OK);
    cj_pg_close(db);
    db = open_db();
    st = cj_pg_store(db);
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, 0);
    cj_pg_close(db);
}

/* A call that fails half-way (an injected server error) changes nothing,
 * in a batch or alone, and the batch goes on. */
PG_TEST(pg_failed_call_changes_nothing)
{
    cj_pg_t *db;
    const cj_jrc_store_t *st;
    uint8_t id[8];
    uint16_t s = 0;

    fresh();
    db = open_db();
    st = cj_pg_store(db);
    add_n(db, 3);
    make_id(id, 0);
    CHECK_EQ(st->assign_short_id(db, id, 8, 0, 1, false, &s), CJ_OK);
    CHECK_EQ(s, 1);
    sql_exec(db, "CREATE FUNCTION inject() RETURNS trigger LANGUAGE plpgsql"
                 " AS $$BEGIN IF NEW.short_id = 2 THEN"
                 " RAISE EXCEPTION 'injected'; END IF; RETURN NEW; END$$;"
                 "CREATE TRIGGER inject BEFORE UPDATE OF short_id ON pledges"
                 " FOR EACH ROW EXECUTE FUNCTION inject()");
    for (int batch = 0; batch < 2; batch++) {
        make_id(id, 1);
        if (batch)
            CHECK_EQ(cj_pg_begin(db), CJ_OK);
        CHECK_EQ(raise_ssn(st, db, id, 7), CJ_OK);
        CHECK_EQ(st->assign_short_id(db, id, 8, 7200000, 1, false, &s),
                 CJ_ERR_STORAGE);
        CHECK(strstr(cj_pg_errmsg(db), "injected") != NULL);
        if (batch)
            CHECK_EQ(cj_pg_commit(db), CJ_OK);
        CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges WHERE"
                             " lease_until IS NOT NULL"),
                 1);
        CHECK_EQ(sql_int(db, "SELECT next_short FROM registry_state"), 2);
        /* the write before it stays */
        CHECK_EQ(sql_int(db, "SELECT ssn_reserved FROM pledges WHERE seq = 2"),
                 7);
        sql_exec(db, "UPDATE pledges SET ssn_reserved = 0");
    }
    sql_exec(db, "DROP TRIGGER inject ON pledges");
    CHECK_EQ(st->assign_short_id(db, id, 8, 7200000, 1, false, &s), CJ_OK);
    CHECK_EQ(s, 2);
    cj_pg_close(db);
}

/* The server drops the connection: the next call reconnects (outside a
 * batch); a batch in flight is lost and says so at commit. */
PG_TEST(pg_reconnects_after_server_drop)
{
    cj_pg_t *db, *killer;
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    uint8_t id[8];
    char sql[96];

    fresh();
    db = open_db();
    killer = open_db();
    st = cj_pg_store(db);
    add_n(db, 1);
    make_id(id, 0);
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)::int",
             PQbackendPID(cj_pg_raw(db)));
    CHECK_EQ(sql_int(killer, sql), 1);
    CHECK_EQ(raise_ssn(st, db, id, 11), CJ_OK);
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, 11);

    CHECK_EQ(cj_pg_begin(db), CJ_OK);
    CHECK_EQ(raise_ssn(st, db, id, 12), CJ_OK);
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)::int",
             PQbackendPID(cj_pg_raw(db)));
    CHECK_EQ(sql_int(killer, sql), 1);
    CHECK(raise_ssn(st, db, id, 13) != CJ_OK);
    CHECK_EQ(cj_pg_commit(db), CJ_ERR_STORAGE);
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, 11);
    cj_pg_close(killer);
    cj_pg_close(db);
}

/* ---- provisioning ------------------------------------------------------------ */

static int count_cb(void *arg, const cj_pg_info_t *info)
{
    (void)info;
    (*(unsigned *)arg)++;
    return 0;
}

PG_TEST(pg_csv_import)
{
    static const char good[] =
        "# id,psk,role\n"
        "00124b0000000001,000102030405060708090a0b0c0d0e0f\n"
        "\n"
        "   \t\n"
        "  00124B0000000002 , 101112131415161718191a1b1c1d1e1f , 6lbr\r\n"
        "0a0b,202122232425262728292a2b2c2d2e2f,node";
    cj_pg_t *db;
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    size_t bad = 99, count = 99;
    unsigned n = 0;

    fresh();
    db = open_db();
    st = cj_pg_store(db);
    CHECK_EQ(cj_pg_import_csv(db, good, strlen(good), &bad, &count), CJ_OK);
    CHECK_EQ(bad, 0);
    CHECK_EQ(count, 3);
    {
        static const uint8_t id2[8] = {0, 0x12, 0x4b, 0, 0, 0, 0, 2};
        static const uint8_t id3[2] = {0x0a, 0x0b};
        CHECK_EQ(st->lookup(db, id2, 8, &r), CJ_OK);
        CHECK_EQ(r.allowed_roles, CJ_JRC_ALLOW_NODE | CJ_JRC_ALLOW_6LBR);
        CHECK_HEX(r.psk, 16, "101112131415161718191a1b1c1d1e1f");
        CHECK_EQ(st->lookup(db, id3, 2, &r), CJ_OK);
        CHECK_EQ(r.allowed_roles, CJ_JRC_ALLOW_NODE);
    }
    CHECK_EQ(cj_pg_import_csv(db, "", 0, &bad, &count), CJ_OK);
    CHECK_EQ(count, 0);
    CHECK_EQ(cj_pg_import_csv(db, NULL, 3, &bad, &count), CJ_ERR_INVALID);

    /* any bad line: nothing imported, its number reported */
    {
        static const struct {
            const char *text;
            size_t line;
            int err;
        } badv[] = {
            {"0101,000102030405060708090a0b0c0d0e0f\n"
             "0102,000102030405060708090a0b0c0d0e0f\n"
             "0103,00010203040506070809\n", 3, CJ_ERR_MALFORMED},
            {"0101,000102030405060708090a0b0c0d0e0f,router\n", 1,
             CJ_ERR_MALFORMED},
            {"\n#\n01x1,000102030405060708090a0b0c0d0e0f\n", 3,
             CJ_ERR_MALFORMED},
            {"010203040506070809,000102030405060708090a0b0c0d0e0f\n", 1,
             CJ_ERR_MALFORMED},
            {"010,000102030405060708090a0b0c0d0e0f\n", 1, CJ_ERR_MALFORMED},
            {"0101\n", 1, CJ_ERR_MALFORMED},
            {",000102030405060708090a0b0c0d0e0f\n", 1, CJ_ERR_MALFORMED},
            {"0101,000102030405060708090a0b0c0d0e0f,\n", 1, CJ_ERR_MALFORMED},
            {"0101,000102030405060708090a0b0c0d0e0f,node,x\n", 1,
             CJ_ERR_MALFORMED},
            {"0101,000102030405060708090a0b0c0d0e0f00\n", 1,
             CJ_ERR_MALFORMED},
            {"0101,000102030405060708090a0b0c0d0e0f\n"
             "0101,000102030405060708090a0b0c0d0e0f\n", 2, CJ_ERR_STATE},
            {"0202,000102030405060708090a0b0c0d0e0f\n"
             "0a0b,000102030405060708090a0b0c0d0e0f\n", 2, CJ_ERR_STATE},
        };
        for (size_t i = 0; i < sizeof badv / sizeof badv[0]; i++) {
            bad = 0;
            count = 99;
            CHECK_EQ(cj_pg_import_csv(db, badv[i].text, strlen(badv[i].text),
                                      &bad, &count),
                     badv[i].err);
            CHECK_EQ(bad, badv[i].line);
            CHECK_EQ(count, 0);
        }
    }
    CHECK_EQ(cj_pg_list(db, count_cb, &n), CJ_OK);
    CHECK_EQ(n, 3);

    {
        uint8_t id[8], psk[16];
        make_id(id, 1);
        make_psk(psk, 1);
        CHECK_EQ(cj_pg_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_ERR_STATE);
        CHECK_EQ(cj_pg_add(db, id, 9, psk, CJ_JRC_ALLOW_NODE), CJ_ERR_INVALID);
        CHECK_EQ(cj_pg_add(db, id, 0, psk, CJ_JRC_ALLOW_NODE), CJ_ERR_INVALID);
        CHECK_EQ(cj_pg_add(db, id, 8, psk, 0), CJ_ERR_INVALID);
        CHECK_EQ(cj_pg_role_mask("node"), CJ_JRC_ALLOW_NODE);
        CHECK_EQ(cj_pg_role_mask("6lbr"), CJ_JRC_ALLOW_NODE | CJ_JRC_ALLOW_6LBR);
        CHECK_EQ(cj_pg_role_mask("6LBR"), CJ_ERR_INVALID);
        CHECK_EQ(cj_pg_role_mask(NULL), CJ_ERR_INVALID);
    }
    cj_pg_close(db);
}

typedef struct seen {
    unsigned n;
    cj_pg_info_t last[4];
} seen_t;

static int keep_cb(void *arg, const cj_pg_info_t *info)
{
    seen_t *s = arg;
    if (s->n < 4)
        s->last[s->n] = *info;
    s->n++;
    return 0;
}

static int stop_cb(void *arg, const cj_pg_info_t *info)
{
    (void)arg;
    (void)info;
    return 7;
}

PG_TEST(pg_list_outcomes_address_evict)
{
    cj_pg_t *db;
    const cj_jrc_store_t *st;
    seen_t sn;
    uint8_t id[3][8];
    uint16_t s = 0;
    cj_addr_t a = {3, {0xfe, 0x80, 0x01}}, none = {0, {0}}, got;

    fresh();
    db = open_db();
    st = cj_pg_store(db);
    add_n(db, 3);
    for (unsigned i = 0; i < 3; i++)
        make_id(id[i], i);
    CHECK_EQ(st->assign_short_id(db, id[1], 8, 10, 2, false, &s), CJ_OK);
    CHECK_EQ(st->record_join(db, id[1], 8, 0, s, 10), CJ_OK);
    CHECK_EQ(st->record_update(db, id[1], 8, 1, false), CJ_OK);
    CHECK_EQ(st->record_update(db, id[2], 8, 1, false), CJ_OK);
    CHECK_EQ(st->record_update(db, id[1], 8, 2, true), CJ_OK);
    CHECK_EQ(cj_pg_set_address(db, id[0], 8, &a), CJ_OK);
    CHECK_EQ(cj_pg_set_address(db, nobody, 8, &a), CJ_ERR_NOTFOUND);
    CHECK_EQ(st->node_address(db, id[0], 8, &got), CJ_OK);
    CHECK(cj_addr_equal(&got, &a));

    memset(&sn, 0, sizeof sn);
    CHECK_EQ(cj_pg_list(db, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 3);
    CHECK(!sn.last[0].has_update);
    CHECK(cj_addr_equal(&sn.last[0].addr, &a));
    CHECK(sn.last[1].rec.joined);
    CHECK(sn.last[1].has_lease);
    CHECK_EQ(sn.last[1].lease_until, 10 + 2 * 3600000);
    CHECK(sn.last[1].has_joined_at);
    CHECK_EQ(sn.last[1].joined_at, 10);
    CHECK(sn.last[1].has_update);
    CHECK_EQ(sn.last[1].update_campaign, 2);
    CHECK(sn.last[1].update_acked);
    CHECK_EQ(sn.last[1].update_session, cj_pg_session(db));
    CHECK(sn.last[1].update_at > 0);
    CHECK(sn.last[2].has_update && !sn.last[2].update_acked);
    CHECK_EQ(cj_pg_list(db, stop_cb, NULL), 7);
    /* the same campaign recorded again replaces its outcome */
    CHECK_EQ(st->record_update(db, id[1], 8, 1, true), CJ_OK);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(cj_pg_list(db, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.last[1].update_campaign, 1);
    CHECK(sn.last[1].update_acked);

    /* campaign 1 did not reach node 2 any more; campaign 2 reached all */
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(cj_pg_unreached(db, 0, 1, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 1);
    CHECK_MEM(sn.last[0].rec.id, 8, id[2], 8);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(cj_pg_unreached(db, cj_pg_session(db), 2, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 0);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(cj_pg_unreached(db, cj_pg_session(db) + 1, 1, keep_cb, &sn),
             CJ_OK);
    CHECK_EQ(sn.n, 0);

    /* eviction: admission and lease end, the blacklist keeps the order */
    CHECK_EQ(cj_pg_evict(db, id[1], 8), CJ_OK);
    CHECK_EQ(cj_pg_evict(db, id[0], 8), CJ_OK);
    CHECK_EQ(cj_pg_evict(db, nobody, 8), CJ_ERR_NOTFOUND);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(cj_pg_blacklist(db, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 2);
    CHECK_MEM(sn.last[0].rec.id, 8, id[1], 8);
    CHECK(sn.last[0].evicted && !sn.last[0].rec.joined &&
          !sn.last[0].has_lease);
    {
        uint64_t cur = 0;
        cj_jrc_pledge_t r;
        CHECK_EQ(st->next_joined(db, &cur, &r), CJ_ERR_NOTFOUND);
    }
    CHECK_EQ(cj_pg_readmit(db, id[1], 8), CJ_OK);
    CHECK_EQ(cj_pg_readmit(db, nobody, 8), CJ_ERR_NOTFOUND);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(cj_pg_blacklist(db, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 1);
    CHECK_MEM(sn.last[0].rec.id, 8, id[0], 8);

    /* clearing the address falls back to the pledge id */
    CHECK_EQ(cj_pg_set_address(db, id[0], 8, &none), CJ_OK);
    CHECK_EQ(st->node_address(db, id[0], 8, &got), CJ_OK);
    CHECK_MEM(got.b, got.len, id[0], 8);
    cj_pg_close(db);
}

/* ---- network settings and pending operations ------------------------------ */

PG_TEST(pg_network_and_pending_ops)
{
    cj_pg_t *a, *b;
    cj_pg_network_t n, got;
    cj_pg_op_t op, oa, ob;

    fresh();
    a = open_db();
    b = open_db();
    CHECK_EQ(cj_pg_network_load(a, &got), CJ_ERR_NOTFOUND);
    memset(&n, 0, sizeof n);
    CHECK_EQ(cj_pg_network_save(a, &n), CJ_ERR_INVALID); /* no key */
    n.network_id[0] = 0xca;
    n.network_id[1] = 0xfe;
    n.network_id_len = 2;
    n.key_count = 2;
    n.keys[0].key_id = 1;
    n.keys[1].key_id = 2;
    n.keys[1].key_usage = 3;
    memset(n.keys[1].key, 0x5a, 16);
    n.join_rate = UINT32_MAX;
    n.lease_hours = 24;
    n.next_campaign = 1;
    CHECK_EQ(cj_pg_network_save(a, &n), CJ_OK);
    CHECK_EQ(cj_pg_network_load(b, &got), CJ_OK);
    CHECK_MEM(got.network_id, got.network_id_len, n.network_id, 2);
    CHECK_EQ(got.key_count, 2);
    CHECK_EQ(got.keys[1].key_usage, 3);
    CHECK_MEM(got.keys[1].key, 16, n.keys[1].key, 16);
    CHECK(!got.has_jrc_address);
    CHECK_EQ(got.join_rate, UINT32_MAX);
    CHECK_EQ(got.lease_hours, 24);
    n.has_jrc_address = true;
    n.jrc_address[15] = 1;
    n.join_rate = 7;
    n.next_campaign = 9;
    n.network_id_len = 0;
    CHECK_EQ(cj_pg_network_save(b, &n), CJ_OK); /* replaces the row */
    CHECK_EQ(cj_pg_network_load(a, &got), CJ_OK);
    CHECK(got.has_jrc_address && got.jrc_address[15] == 1);
    CHECK_EQ(got.join_rate, 7);
    CHECK_EQ(got.next_campaign, 9);
    CHECK_EQ(got.network_id_len, 0);
    CHECK_EQ(sql_int(a, "SELECT count(*) FROM network"), 1);

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
    make_id(op.id, 4);
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

/* ---- the JRC engine over the PostgreSQL store ------------------------------- */

static cj_jrc_slot_t eng_slots[4];
static cj_jrc_t eng;

/* Pledge side of RFC 9031 section 7.3: Master Secret = PSK, sender id
 * empty, recipient id "JRC", ID Context = pledge id. */
static void pledge_ctx(cj_oscore_ctx_t *ctx, const uint8_t id[8],
                       const uint8_t psk[16])
{
    static const uint8_t jrcid[3] = {0x4a, 0x52, 0x43};
    cj_oscore_params_t prm;
    memset(&prm, 0, sizeof prm);
    prm.master_secret = psk;
    prm.master_secret_len = 16;
    prm.recipient_id = jrcid;
    prm.recipient_id_len = 3;
    prm.id_context = id;
    prm.id_context_len = 8;
    prm.has_id_context = true;
    CHECK_EQ(cj_oscore_ctx_derive(ctx, &prm), CJ_OK);
    ctx->send_kid_context = true;
}

/* A Join Request (section 8.1.1) with the Appendix A Join_Request
 * (network identifier h'cafe'), re-framed as a stateless JP forwards it:
 * NON, the JP's token, Proxy-Scheme removed. */
static size_t join_request(cj_oscore_ctx_t *ctx, cj_oscore_req_t *bind,
                           uint8_t *msg, size_t cap)
{
    static const uint8_t jr[5] = {0xa1, 0x05, 0x42, 0xca, 0xfe};
    static const uint8_t tok[2] = {0xca, 0x11}, jptok[6] = {6, 5, 4, 3, 2, 1};
    uint8_t coap[128], prot[160];
    cj_coap_builder_t b;
    cj_coap_msg_t m;
    cj_coap_opt_iter_t it;
    cj_coap_opt_t o;
    int n;

    cj_coap_build_init(&b, coap, sizeof coap, CJ_COAP_CON, CJ_COAP_POST,
                       0x2345, tok, sizeof tok);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "6tisch.arpa");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "j");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_PROXY_SCHEME, "coap");
    cj_coap_build_payload(&b, jr, sizeof jr);
    n = cj_coap_build_finish(&b);
    CHECK(n > 0);
    n = cj_oscore_protect_request(ctx, coap, (size_t)n, prot, sizeof prot,
                                  bind);
    CHECK(n > 0);
    CHECK_EQ(cj_coap_parse(&m, prot, (size_t)n), CJ_OK);
    cj_coap_build_init(&b, msg, cap, CJ_COAP_NON, m.code, 0x7002, jptok,
                       sizeof jptok);
    cj_coap_opt_iter_init(&it, &m);
    while (cj_coap_opt_next(&it, &o))
        if (o.num != CJ_COAP_OPT_PROXY_SCHEME)
            cj_coap_build_opt(&b, o.num, o.val, o.len);
    cj_coap_build_payload(&b, m.payload, m.payload_len);
    n = cj_coap_build_finish(&b);
    CHECK(n > 0);
    return n > 0 ? (size_t)n : 0;
}

PG_TEST(pg_jrc_admission)
{
    static const uint8_t netid[2] = {0xca, 0xfe};
    static const cj_addr_t jp = {2, {0x0a, 0x01}};
    cj_pg_t *db, *other;
    cj_jrc_cfg_t cfg;
    cj_oscore_ctx_t pctx;
    cj_oscore_req_t bind;
    uint8_t id[8], psk[16], msg[256], obuf[512], plain[512];
    cj_out_t out;
    cj_coap_msg_t m;
    cj_jrc_pledge_t r;
    size_t n;
    int pn;

    fresh();
    db = open_db();
    add_n(db, 3);
    set_cursor(db, 0xaf93); /* RFC 9031 Appendix A short address */
    memset(&cfg, 0, sizeof cfg);
    cfg.network_id = netid;
    cfg.network_id_len = sizeof netid;
    cfg.keys[0].key_id = 1;
    cj_hex("e6bf4287c2d7618d6a9687445ffd33e6", cfg.keys[0].key, 16);
    cfg.key_count = 1;
    cfg.join_rate = UINT32_MAX;
    cfg.slots = eng_slots;
    cfg.slot_count = 4;
    CHECK_EQ(cj_jrc_init(&eng, &cfg, cj_pg_store(db), NULL), CJ_OK);

    make_id(id, 1);
    make_psk(psk, 1);
    pledge_ctx(&pctx, id, psk);
    n = join_request(&pctx, &bind, msg, sizeof msg);
    memset(&out, 0, sizeof out);
    out.buf = obuf;
    out.cap = sizeof obuf;
    /* group commit: the answer leaves only after the commit */
    CHECK_EQ(cj_pg_begin(db), CJ_OK);
    CHECK_EQ(cj_jrc_input(&eng, 1000, &jp, msg, n, &out), 1);
    CHECK_EQ(cj_pg_commit(db), CJ_OK);
    CHECK_EQ(out.event, CJ_JRC_EV_JOINED);
    CHECK_EQ(eng.ev_short_id, 0xaf93);
    CHECK(out.len > 0);
    pn = cj_oscore_unprotect_response(&pctx, &bind, out.buf, out.len, plain,
                                      sizeof plain);
    CHECK(pn > 0);
    CHECK_EQ(cj_coap_parse(&m, plain, pn > 0 ? (size_t)pn : 0), CJ_OK);
    CHECK_EQ(m.code, CJ_COAP_CHANGED);
    /* RFC 9031 Appendix A: key set with K1 and short address af93 */
    CHECK_HEX(m.payload, m.payload_len,
              "a202820150e6bf4287c2d7618d6a9687445ffd33e6038142af93");

    /* another instance sees the admission at once */
    other = open_db();
    CHECK_EQ(cj_pg_store(other)->lookup(other, id, 8, &r), CJ_OK);
    CHECK(r.joined);
    CHECK_EQ(r.role, CJ_COJP_ROLE_6LN);
    CHECK_EQ(r.short_id, 0xaf93);
    CHECK(r.replay.valid);
    CHECK_EQ(r.replay.highest, 0);
    CHECK(r.ssn_reserved > 0);
    CHECK_EQ(sql_int(other, "SELECT joined_at FROM pledges WHERE seq = 2"),
             1000);
    /* and its next assignment does not hand out af93 again */
    {
        uint8_t id2[8];
        uint16_t s = 0;
        make_id(id2, 2);
        CHECK_EQ(cj_pg_store(other)->assign_short_id(other, id2, 8, 1000, 0,
                                                     false, &s),
                 CJ_OK);
        CHECK_EQ(s, 0xaf94);
    }
    cj_pg_close(other);
    cj_pg_close(db);
}

/* ---- several JRC engines, one database ------------------------------------ */

#include "jrc_multi.h"

static void add_jm(cj_pg_t *db, unsigned n)
{
    uint8_t id[8], psk[16];
    for (unsigned i = 0; i < n; i++) {
        jm_make_id(id, i);
        jm_make_psk(psk, i);
        CHECK_EQ(cj_pg_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    }
}

/* Two engines over two connections serve the same pledges in turn
 * (jrc_multi.h): no Partial IV with two ciphertexts, a request accepted
 * by one is dropped by the other, short ids unique and stable. */
PG_TEST(pg_two_engines_alternate)
{
    cj_pg_t *a, *b;
    jm_result_t r;

    for (unsigned v = 0; v < 4; v++) {
        uint32_t block = v & 1;
        size_t nslots = v & 2 ? 3 : JM_MAXP;
        fresh();
        a = open_db();
        b = open_db();
        add_jm(a, 6);
        jm_alternate(cj_pg_store(a), cj_pg_store(b), 6, 12, block, nslots,
                     &r);
        CHECK_EQ(r.answered, 72);
        CHECK_EQ(r.replays_accepted, 0);
        CHECK_EQ(r.replays_dropped, 36);
        CHECK_EQ(r.conflicts, 0);
        CHECK_EQ(r.short_dup, 0);
        CHECK_EQ(r.short_moved, 0);
        CHECK(r.repeats > 0);
        if (block == 1)
            CHECK_EQ(r.pledge_ok, 72);
        cj_pg_close(a);
        cj_pg_close(b);
    }
}

/* Two engines in two threads, one connection each, fed the same stream
 * of Join Requests at the same time (engine 1 in group commits of four
 * requests, sending a batch's answers only after its commit).  Each
 * request is answered at most once in all, no Partial IV carries two
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

        if (th->batches && kk % 4 == 0 && cj_pg_begin(db) != CJ_OK)
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
    db = open_db();
    add_jm(db, MT_NP);
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
        twice += th[0].accepted[k] && th[1].accepted[k];
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
