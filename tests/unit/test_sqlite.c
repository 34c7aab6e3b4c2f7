/*
 * SQLite JRC store (store/sqlite.h) against real files in a temporary
 * directory, checked against the semantics of the in-memory store
 * (cojp/jrc_memstore.h) and, at the end, under the JRC engine.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cojp/coap.h"
#include "cojp/cojp.h"
#include "cojp/jrc.h"
#include "cojp/jrc_memstore.h"
#include "cojp/oscore.h"
#include "store/sqlite.h"
#include "../test.h"

/* ---- fixtures ------------------------------------------------------------ */

static char dir[64];
static char dbpath[128];

/* A fresh directory with a path for the registry file in it. */
static void tmp_setup(void)
{
    strcpy(dir, "/tmp/cojp-sqlite-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(dbpath, sizeof dbpath, "%s/jrc.db", dir);
}

static void tmp_cleanup(void)
{
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    char p[160];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", dbpath, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
}

static cj_sqlite_t *open_db(void)
{
    cj_sqlite_t *db = NULL;
    CHECK_EQ(cj_sqlite_open(&db, dbpath), CJ_OK);
    CHECK(db != NULL);
    return db;
}

static long long sql_int(cj_sqlite_t *db, const char *sql)
{
    sqlite3_stmt *q;
    long long v = -1;
    if (sqlite3_prepare_v2(cj_sqlite_raw(db), sql, -1, &q, NULL) != SQLITE_OK)
        return -2;
    if (sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

static void sql_exec(cj_sqlite_t *db, const char *sql)
{
    CHECK_EQ(sqlite3_exec(cj_sqlite_raw(db), sql, NULL, NULL, NULL), SQLITE_OK);
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

static void add_n(cj_sqlite_t *db, unsigned n)
{
    uint8_t id[8], psk[16];
    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    for (unsigned i = 0; i < n; i++) {
        make_id(id, i);
        make_psk(psk, i);
        CHECK_EQ(cj_sqlite_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    }
    CHECK_EQ(cj_sqlite_commit(db), CJ_OK);
}

/* ---- schema ---------------------------------------------------------------- */

TEST(sqlite_schema_create_and_reopen)
{
    cj_sqlite_t *db;
    uint64_t s1;

    tmp_setup();
    db = open_db();
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM schema_version"),
             CJ_SQLITE_SCHEMA_VERSION);
    CHECK_EQ(sql_int(db, "SELECT max(version) FROM schema_version"),
             CJ_SQLITE_SCHEMA_VERSION);
    CHECK_EQ(sql_int(db, "PRAGMA foreign_keys"), 1);
    CHECK_EQ(sql_int(db, "PRAGMA synchronous"), 2); /* FULL */
    CHECK_EQ(sql_int(db, "PRAGMA application_id"), 0x636f6a70);
    {
        sqlite3_stmt *q;
        CHECK_EQ(sqlite3_prepare_v2(cj_sqlite_raw(db), "PRAGMA journal_mode",
                                    -1, &q, NULL),
                 SQLITE_OK);
        CHECK_EQ(sqlite3_step(q), SQLITE_ROW);
        CHECK(strcmp((const char *)sqlite3_column_text(q, 0), "wal") == 0);
        sqlite3_finalize(q);
    }
    s1 = cj_sqlite_session(db);
    CHECK(s1 >= 1);
    add_n(db, 2);
    cj_sqlite_close(db);

    /* reopening applies nothing twice and keeps the data */
    db = open_db();
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM schema_version"),
             CJ_SQLITE_SCHEMA_VERSION);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges"), 2);
    CHECK_EQ(cj_sqlite_session(db), s1 + 1);
    /* a file from a newer cojp is refused, not downgraded */
    sql_exec(db, "INSERT INTO schema_version VALUES (99, 0)");
    cj_sqlite_close(db);
    db = NULL;
    CHECK_EQ(cj_sqlite_open(&db, dbpath), CJ_ERR_UNSUPPORTED);
    CHECK(db == NULL);
    tmp_cleanup();

    /* another program's database is not touched */
    tmp_setup();
    {
        sqlite3 *raw;
        CHECK_EQ(sqlite3_open(dbpath, &raw), SQLITE_OK);
        CHECK_EQ(sqlite3_exec(raw, "PRAGMA application_id = 42;"
                                   "CREATE TABLE t (x)", NULL, NULL, NULL),
                 SQLITE_OK);
        sqlite3_close(raw);
    }
    CHECK_EQ(cj_sqlite_open(&db, dbpath), CJ_ERR_STORAGE);
    tmp_cleanup();
}

/* ---- the same scenario against memstore and SQLite ------------------------ */

/* Results of every call, in order, so the two stores can be compared. */
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
    put(t, r->psk[0]);
    put(t, r->allowed_roles);
    put(t, (long long)r->ssn_reserved);
    put(t, (long long)r->replay.highest);
    put(t, r->replay.bitmap);
    put(t, r->replay.valid);
    put(t, r->id_context_len);
    put(t, r->id_context_len ? r->id_context[0] : -1);
    put(t, r->joined);
    put(t, r->role);
    put(t, r->short_id);
}

static const uint8_t nobody[8] = {9, 9, 9, 9, 9, 9, 9, 9};

/* Raise ssn_reserved to at least v (a reservation of no numbers). */
static int raise_ssn(const cj_jrc_store_t *st, void *c, const uint8_t *id,
                     uint64_t v)
{
    uint64_t first = 0;
    return st->reserve_ssn(c, id, 8, NULL, 0, v, 0, &first);
}

static void scenario(const cj_jrc_store_t *st, void (*set_cursor)(uint16_t),
                     trace_t *t)
{
    void *c = st->ctx;
    uint8_t id[4][8];
    cj_jrc_pledge_t r;
    cj_oscore_replay_t w;
    static const uint8_t ctxid[16] = {0xa1, 2, 3, 4, 5, 6, 7, 8,
                                      0, 0x12, 0x4b, 0, 0, 0, 0, 1};
    uint16_t s = 0;
    uint64_t cur = 0, first = 0;
    cj_addr_t a;

    for (unsigned i = 0; i < 4; i++)
        make_id(id[i], i);
    put_rec(t, st->lookup(c, id[0], 8, &r), &r);
    put_rec(t, st->lookup(c, nobody, 8, &r), &r);
    /* blocks: from below the mark, above it, raise only (count 0) */
    put(t, st->reserve_ssn(c, id[0], 8, NULL, 0, 1234567, 32, &first));
    put(t, (long long)first);
    put(t, st->reserve_ssn(c, id[0], 8, NULL, 0, 5, 1, &first));
    put(t, (long long)first);
    put(t, st->reserve_ssn(c, id[0], 8, NULL, 0, 3000000, 0, &first));
    put(t, (long long)first);
    put(t, st->reserve_ssn(c, nobody, 8, NULL, 0, 1, 1, &first));
    put(t, st->reserve_ssn(c, id[0], 8, ctxid, 8, 1, 1, &first));
    /* Partial IVs: new, repeated, within the window, too old */
    static const uint64_t pivs[] = {41, 41, 9, 10, 70, 38, 38, 9, 1};
    for (size_t i = 0; i < sizeof pivs / sizeof pivs[0]; i++) {
        memset(&w, 0, sizeof w);
        put(t, st->accept_piv(c, id[0], 8, NULL, 0, pivs[i], &w));
        put(t, (long long)w.highest);
        put(t, w.bitmap);
        put(t, w.valid);
    }
    put(t, st->accept_piv(c, nobody, 8, NULL, 0, 1, &w));
    put_rec(t, st->lookup(c, id[0], 8, &r), &r);
    put(t, st->save_context(c, id[1], 8, ctxid, sizeof ctxid));
    put_rec(t, st->lookup_context(c, ctxid, sizeof ctxid, &r), &r);
    put_rec(t, st->lookup_context(c, ctxid, 8, &r), &r);
    /* only under the current ID Context */
    put(t, st->reserve_ssn(c, id[1], 8, NULL, 0, 77, 1, &first));
    put(t, st->accept_piv(c, id[1], 8, NULL, 0, 3, &w));
    put(t, st->reserve_ssn(c, id[1], 8, ctxid, 8, 77, 1, &first));
    put(t, st->reserve_ssn(c, id[1], 8, ctxid, sizeof ctxid, 77, 1, &first));
    put(t, (long long)first);
    put(t, st->accept_piv(c, id[1], 8, ctxid, sizeof ctxid, 3, &w));
    put(t, st->save_context(c, id[1], 8, ctxid, 8)); /* resets state */
    put_rec(t, st->lookup(c, id[1], 8, &r), &r);

    /* short ids: reserved values skipped, renew, fresh, expiry */
    set_cursor(0xfffd);
    put(t, st->assign_short_id(c, id[0], 8, 1000, 1, false, &s));
    put(t, s);
    put(t, st->assign_short_id(c, id[1], 8, 1000, 1, false, &s));
    put(t, s);
    put(t, st->assign_short_id(c, id[1], 8, 2000, 1, false, &s)); /* renew */
    put(t, s);
    put(t, st->assign_short_id(c, id[1], 8, 2000, 1, true, &s)); /* fresh */
    put(t, s);
    put(t, st->assign_short_id(c, id[2], 8, 2000, 0, false, &s));
    put(t, s);
    put(t, st->assign_short_id(c, nobody, 8, 2000, 0, false, &s));
    /* id[0]'s lease (until 3601000) is over: its id is free again */
    set_cursor(0xfffd);
    put(t, st->assign_short_id(c, id[3], 8, 3601000, 1, false, &s));
    put(t, s);
    put(t, st->assign_short_id(c, id[0], 8, 3601000, 1, false, &s));
    put(t, s);
    put(t, st->record_join(c, id[0], 8, 0, s, 3601000));
    put(t, st->record_join(c, id[2], 8, 1, 3, 3601000));
    put(t, st->record_join(c, nobody, 8, 1, 3, 3601000));
    put_rec(t, st->lookup(c, id[2], 8, &r), &r);

    /* joined nodes in a stable order */
    for (int k = 0; k < 4; k++) {
        int rc = st->next_joined(c, &cur, &r);
        put_rec(t, rc, &r);
    }
    put(t, st->release(c, id[0], 8));
    put(t, st->release(c, nobody, 8));
    cur = 0;
    put_rec(t, st->next_joined(c, &cur, &r), &r);
    put_rec(t, st->next_joined(c, &cur, &r), &r);
    /* released: its short id is free for the next pledge at the cursor */
    set_cursor(0x0001);
    put(t, st->assign_short_id(c, id[1], 8, 3601000, 1, true, &s));
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
static cj_sqlite_t *cur_db;

static void ms_cursor(uint16_t v)
{
    cmp_ms.next_short = v;
}

static void db_cursor(uint16_t v)
{
    char sql[80];
    snprintf(sql, sizeof sql, "UPDATE registry_state SET next_short = %u", v);
    sql_exec(cur_db, sql);
}

TEST(sqlite_same_results_as_memstore)
{
    static trace_t tm, ts;
    uint8_t id[8], psk[16];

    memset(&tm, 0, sizeof tm);
    memset(&ts, 0, sizeof ts);
    cj_jrc_memstore_init(&cmp_ms, cmp_entries, 8);
    for (unsigned i = 0; i < 4; i++) {
        make_id(id, i);
        make_psk(psk, i);
        CHECK_EQ(cj_jrc_memstore_add(&cmp_ms, id, 8, psk, CJ_JRC_ALLOW_NODE),
                 CJ_OK);
    }
    scenario(&cmp_ms.store, ms_cursor, &tm);

    tmp_setup();
    cur_db = open_db();
    add_n(cur_db, 4);
    scenario(cj_sqlite_store(cur_db), db_cursor, &ts);
    CHECK_EQ(ts.n, tm.n);
    for (size_t i = 0; i < tm.n && i < ts.n; i++)
        if (tm.v[i] != ts.v[i]) {
            cj_test_failf(__FILE__, __LINE__,
                          "trace %zu: memstore %lld, sqlite %lld", i,
                          tm.v[i], ts.v[i]);
            break;
        }
    /* the last outcome is what list reports */
    CHECK_EQ(sql_int(cur_db, "SELECT count(*) FROM updates"), 2);
    cj_sqlite_close(cur_db);
    tmp_cleanup();
}

/* ---- short identifiers ------------------------------------------------------ */

#define NP 300

TEST(sqlite_short_ids_unique_2000_with_expiry)
{
    /* The test's own model of live leases: holder and end per short id. */
    static int holder[65536];
    static uint64_t until[65536];
    static uint16_t held[NP];
    cj_sqlite_t *db;
    const cj_jrc_store_t *st;
    uint64_t now = 1000;
    unsigned bad = 0, reused = 0;
    uint32_t rng = 12345;

    memset(holder, -1, sizeof holder);
    memset(held, 0, sizeof held);
    tmp_setup();
    db = open_db();
    st = cj_sqlite_store(db);
    add_n(db, NP);
    /* start near the top so the cursor wraps several times and ids of
     * expired leases are handed out again */
    sql_exec(db, "UPDATE registry_state SET next_short = 65000");
    for (unsigned n = 0; n < 2000; n++) {
        uint8_t id[8];
        uint16_t s = 0;
        unsigned p;
        uint32_t hours;
        bool fresh;
        int rc;

        rng = rng * 1103515245u + 12345u;
        p = (rng >> 8) % NP;
        hours = 1 + (rng >> 20) % 3;
        fresh = (rng >> 24) % 7 == 0;
        now += 1 + (rng >> 4) % 700000; /* up to ~12 min per step */
        make_id(id, p);
        /* rewind the cursor now and then, as if it had wrapped: the
         * search must skip live leases and may take expired ones */
        if (n % 100 == 0)
            sql_exec(db, "UPDATE registry_state SET next_short = 1");
        /* group commit for some batches, one transaction per call else */
        if (n % 100 == 50)
            CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
        rc = st->assign_short_id(st->ctx, id, 8, now, hours, fresh, &s);
        if (n % 100 == 99 && cj_sqlite_in_transaction(db))
            CHECK_EQ(cj_sqlite_commit(db), CJ_OK);
        CHECK_EQ(rc, CJ_OK);
        if (s == 0 || s >= 0xfffe) {
            bad++;
            continue;
        }
        /* unique among live leases (a lease ending exactly now is over) */
        if (holder[s] >= 0 && holder[s] != (int)p && until[s] > now)
            bad++;
        if (holder[s] >= 0 && holder[s] != (int)p)
            reused++;
        if (held[p] != 0 && held[p] != s && holder[held[p]] == (int)p)
            holder[held[p]] = -1; /* fresh: the old lease ended */
        if (fresh && held[p] == s && until[s] > now)
            bad++; /* fresh must change a live id */
        holder[s] = (int)p;
        until[s] = now + (uint64_t)hours * 3600000u;
        held[p] = s;
    }
    CHECK_EQ(bad, 0);
    CHECK(reused > 0); /* expired ids did come back */
    /* and the file agrees: no short id held twice */
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM (SELECT short_id FROM pledges"
                         " WHERE lease_until IS NOT NULL GROUP BY short_id"
                         " HAVING count(*) > 1)"),
             0);
    /* the database itself refuses a second live holder */
    CHECK(sqlite3_exec(cj_sqlite_raw(db),
                       "UPDATE pledges SET short_id = 77, lease_until ="
                       " 9223372036854775807 WHERE seq IN (1, 2)",
                       NULL, NULL, NULL) != SQLITE_OK);
    cj_sqlite_close(db);
    tmp_cleanup();
}

TEST(sqlite_short_ids_exhausted)
{
    cj_sqlite_t *db;
    const cj_jrc_store_t *st;
    uint8_t id[8], psk[16];
    uint16_t s = 0;
    unsigned bad = 0;

    tmp_setup();
    db = open_db();
    st = cj_sqlite_store(db);
    /* 65533 usable ids (0x0001..0xfffd): one pledge more than that */
    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    for (unsigned i = 0; i < 65534; i++) {
        make_id(id, i);
        make_psk(psk, i);
        CHECK_EQ(cj_sqlite_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
        if (i < 65533) {
            if (st->assign_short_id(st->ctx, id, 8, 0, 0, false, &s) != CJ_OK ||
                s != i + 1)
                bad++;
        }
    }
    CHECK_EQ(bad, 0);
    make_id(id, 65533);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 0, 0, false, &s),
             CJ_ERR_NOSPACE);
    /* a failed call inside the batch does not spoil it */
    CHECK_EQ(cj_sqlite_commit(db), CJ_OK);
    /* one release frees exactly that id, found by wrapping around */
    make_id(id, 99);
    CHECK_EQ(st->release(st->ctx, id, 8), CJ_OK);
    make_id(id, 65533);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 0, 0, false, &s), CJ_OK);
    CHECK_EQ(s, 100);
    cj_sqlite_close(db);
    tmp_cleanup();
}

/* Two processes on one file (two handles here): ids never collide. */
TEST(sqlite_two_handles_never_collide)
{
    static int holder[65536];
    cj_sqlite_t *a, *b;
    unsigned bad = 0;

    memset(holder, -1, sizeof holder);
    tmp_setup();
    a = open_db();
    b = open_db();
    CHECK(cj_sqlite_session(a) != cj_sqlite_session(b));
    add_n(a, 200);
    for (unsigned n = 0; n < 400; n++) {
        cj_sqlite_t *h = n % 2 ? b : a;
        const cj_jrc_store_t *st = cj_sqlite_store(h);
        unsigned p = (n * 37) % 200;
        uint8_t id[8];
        uint16_t s = 0;
        make_id(id, p);
        /* batches in one handle while the other waits on the lock */
        if (n % 50 == 10)
            CHECK_EQ(cj_sqlite_begin(h), CJ_OK);
        if (st->assign_short_id(st->ctx, id, 8, 0, 0, n % 3 == 0, &s) != CJ_OK)
            bad++;
        if (cj_sqlite_in_transaction(h))
            CHECK_EQ(cj_sqlite_commit(h), CJ_OK);
        for (unsigned k = 1; k < 65536; k++)
            if (holder[k] == (int)p)
                holder[k] = -1;
        if (holder[s] >= 0)
            bad++;
        holder[s] = (int)p;
    }
    CHECK_EQ(bad, 0);
    /* while one handle holds the write lock the other's write waits and,
     * past the busy timeout, fails without changing anything (not run to
     * the full timeout here: only checked that a reader is not blocked) */
    CHECK_EQ(cj_sqlite_begin(a), CJ_OK);
    {
        cj_jrc_pledge_t r;
        uint8_t id[8];
        make_id(id, 1);
        CHECK_EQ(cj_sqlite_store(b)->lookup(b, id, 8, &r), CJ_OK);
    }
    CHECK_EQ(cj_sqlite_begin(a), CJ_ERR_STATE);
    CHECK_EQ(cj_sqlite_commit(a), CJ_OK);
    CHECK_EQ(cj_sqlite_commit(a), CJ_ERR_STATE);
    cj_sqlite_close(a);
    cj_sqlite_close(b);
    tmp_cleanup();
}

/* ---- durability and atomicity ---------------------------------------------- */

TEST(sqlite_durable_across_reopen)
{
    cj_sqlite_t *db;
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    cj_oscore_replay_t w;
    uint8_t id[8];
    uint16_t s = 0;
    uint64_t cur = 0;

    tmp_setup();
    db = open_db();
    st = cj_sqlite_store(db);
    add_n(db, 3);
    make_id(id, 2);
    CHECK_EQ(raise_ssn(st, db, id, (UINT64_C(1) << 40) - 1), CJ_OK);
    CHECK_EQ(st->accept_piv(db, id, 8, NULL, 0, 997, &w), CJ_OK);
    CHECK_EQ(st->accept_piv(db, id, 8, NULL, 0, 1000, &w), CJ_OK);
    CHECK_EQ(st->accept_piv(db, id, 8, NULL, 0, 999, &w), CJ_OK);
    CHECK_EQ(st->assign_short_id(db, id, 8, 5000, 24, false, &s), CJ_OK);
    CHECK_EQ(st->record_join(db, id, 8, CJ_COJP_ROLE_6LBR, s, 5000), CJ_OK);
    cj_sqlite_close(db); /* no commit call: each write was its own */

    db = open_db();
    st = cj_sqlite_store(db);
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
    /* the lease survived too: a renewal keeps the id */
    {
        uint16_t s2 = 0;
        CHECK_EQ(st->assign_short_id(db, id, 8, 6000, 24, false, &s2), CJ_OK);
        CHECK_EQ(s2, s);
    }
    cj_sqlite_close(db);
    tmp_cleanup();
}

TEST(sqlite_rollback_leaves_nothing)
{
    cj_sqlite_t *db;
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    uint8_t id[8], psk[16];
    uint16_t s = 0;

    tmp_setup();
    db = open_db();
    st = cj_sqlite_store(db);
    add_n(db, 1);
    make_id(id, 0);
    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    CHECK_EQ(raise_ssn(st, db, id, 99), CJ_OK);
    CHECK_EQ(st->assign_short_id(db, id, 8, 0, 0, false, &s), CJ_OK);
    CHECK_EQ(st->record_join(db, id, 8, 0, s, 0), CJ_OK);
    make_id(id, 1);
    make_psk(psk, 1);
    CHECK_EQ(cj_sqlite_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    /* the open transaction sees its own writes */
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(cj_sqlite_rollback(db), CJ_OK);
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_ERR_NOTFOUND);
    make_id(id, 0);
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, 0);
    CHECK(!r.joined);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges WHERE lease_until"
                         " IS NOT NULL"),
             0);
    CHECK_EQ(sql_int(db, "SELECT next_short FROM registry_state"), 1);
    CHECK_EQ(cj_sqlite_rollback(db), CJ_ERR_STATE);
    /* nothing of an uncommitted batch survives a close either */
    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    CHECK_EQ(raise_ssn(st, db, id, 555), CJ_OK);
    cj_sqlite_close(db);
    db = open_db();
    st = cj_sqlite_store(db);
    CHECK_EQ(st->lookup(db, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, 0);
    cj_sqlite_close(db);
    tmp_cleanup();
}

/* A call that fails half-way changes nothing, in a batch or alone. */
TEST(sqlite_failed_call_changes_nothing)
{
    cj_sqlite_t *db;
    const cj_jrc_store_t *st;
    uint8_t id[8];
    uint16_t s = 0;

    tmp_setup();
    db = open_db();
    st = cj_sqlite_store(db);
    add_n(db, 3);
    make_id(id, 0);
    CHECK_EQ(st->assign_short_id(db, id, 8, 0, 1, false, &s), CJ_OK);
    CHECK_EQ(s, 1);
    /* taking an id after the expiry sweep fails (injected) */
    sql_exec(db, "CREATE TRIGGER inject BEFORE UPDATE OF short_id ON pledges"
                 " WHEN NEW.short_id = 2 BEGIN SELECT RAISE(ABORT, 'x'); END");
    for (int batch = 0; batch < 2; batch++) {
        make_id(id, 1);
        if (batch)
            CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
        CHECK_EQ(raise_ssn(st, db, id, 7), CJ_OK);
        CHECK_EQ(st->assign_short_id(db, id, 8, 7200000, 1, false, &s),
                 CJ_ERR_STORAGE);
        if (batch)
            CHECK_EQ(cj_sqlite_commit(db), CJ_OK);
        /* pledge 0's expired lease was swept in the failed call: restored */
        CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges WHERE"
                             " lease_until IS NOT NULL"),
                 1);
        CHECK_EQ(sql_int(db, "SELECT next_short FROM registry_state"), 2);
        /* the write before it in the batch stays */
        CHECK_EQ(sql_int(db, "SELECT ssn_reserved FROM pledges WHERE seq = 2"),
                 7);
        sql_exec(db, "UPDATE pledges SET ssn_reserved = 0");
    }
    sql_exec(db, "DROP TRIGGER inject");
    CHECK_EQ(st->assign_short_id(db, id, 8, 7200000, 1, false, &s), CJ_OK);
    CHECK_EQ(s, 2);
    cj_sqlite_close(db);
    tmp_cleanup();
}

/* ---- provisioning ------------------------------------------------------------ */

static int count_cb(void *arg, const cj_sqlite_info_t *info)
{
    (void)info;
    (*(unsigned *)arg)++;
    return 0;
}

TEST(sqlite_csv_import)
{
    static const char good[] =
        "# id,psk,role\n"
        "00124b0000000001,000102030405060708090a0b0c0d0e0f\n"
        "\n"
        "  00124B0000000002 , 101112131415161718191a1b1c1d1e1f , 6lbr\r\n"
        "0a0b,202122232425262728292a2b2c2d2e2f,node";
    cj_sqlite_t *db;
    cj_jrc_pledge_t r;
    size_t bad = 99, count = 99;
    unsigned n = 0;

    tmp_setup();
    db = open_db();
    CHECK_EQ(cj_sqlite_import_csv(db, good, strlen(good), &bad, &count), CJ_OK);
    CHECK_EQ(bad, 0);
    CHECK_EQ(count, 3);
    {
        static const uint8_t id2[8] = {0, 0x12, 0x4b, 0, 0, 0, 0, 2};
        static const uint8_t id3[2] = {0x0a, 0x0b};
        const cj_jrc_store_t *st = cj_sqlite_store(db);
        CHECK_EQ(st->lookup(db, id2, 8, &r), CJ_OK);
        CHECK_EQ(r.allowed_roles, CJ_JRC_ALLOW_NODE | CJ_JRC_ALLOW_6LBR);
        CHECK_HEX(r.psk, 16, "101112131415161718191a1b1c1d1e1f");
        CHECK_EQ(st->lookup(db, id3, 2, &r), CJ_OK);
        CHECK_EQ(r.allowed_roles, CJ_JRC_ALLOW_NODE);
    }

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
            {"0101\n", 1, CJ_ERR_MALFORMED},
            {"0101,000102030405060708090a0b0c0d0e0f,node,x\n", 1,
             CJ_ERR_MALFORMED},
            {"0101,000102030405060708090a0b0c0d0e0f\n"
             "0101,000102030405060708090a0b0c0d0e0f\n", 2, CJ_ERR_STATE},
            {"0202,000102030405060708090a0b0c0d0e0f\n"
             "0a0b,000102030405060708090a0b0c0d0e0f\n", 2, CJ_ERR_STATE},
        };
        for (size_t i = 0; i < sizeof badv / sizeof badv[0]; i++) {
            bad = 0;
            count = 99;
            CHECK_EQ(cj_sqlite_import_csv(db, badv[i].text,
                                          strlen(badv[i].text), &bad, &count),
                     badv[i].err);
            CHECK_EQ(bad, badv[i].line);
            CHECK_EQ(count, 0);
        }
    }
    CHECK_EQ(cj_sqlite_list(db, count_cb, &n), CJ_OK);
    CHECK_EQ(n, 3);

    /* add: duplicates and bad arguments */
    {
        uint8_t id[8], psk[16];
        make_id(id, 1);
        make_psk(psk, 1);
        CHECK_EQ(cj_sqlite_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_ERR_STATE);
        CHECK_EQ(cj_sqlite_add(db, id, 9, psk, CJ_JRC_ALLOW_NODE),
                 CJ_ERR_INVALID);
        CHECK_EQ(cj_sqlite_add(db, id, 8, psk, 0), CJ_ERR_INVALID);
        CHECK_EQ(cj_sqlite_role_mask("node"), CJ_JRC_ALLOW_NODE);
        CHECK_EQ(cj_sqlite_role_mask("6LBR"), CJ_ERR_INVALID);
    }
    cj_sqlite_close(db);
    tmp_cleanup();
}

typedef struct seen {
    unsigned n;
    cj_sqlite_info_t last[4];
} seen_t;

static int keep_cb(void *arg, const cj_sqlite_info_t *info)
{
    seen_t *s = arg;
    if (s->n < 4)
        s->last[s->n] = *info;
    s->n++;
    return 0;
}

static int stop_cb(void *arg, const cj_sqlite_info_t *info)
{
    (void)arg;
    (void)info;
    return 7;
}

TEST(sqlite_list_outcomes_address_evict)
{
    cj_sqlite_t *db;
    const cj_jrc_store_t *st;
    seen_t sn;
    uint8_t id[3][8];
    uint16_t s = 0;
    cj_addr_t a = {3, {0xfe, 0x80, 0x01}}, got;

    tmp_setup();
    db = open_db();
    st = cj_sqlite_store(db);
    add_n(db, 3);
    for (unsigned i = 0; i < 3; i++)
        make_id(id[i], i);
    CHECK_EQ(st->assign_short_id(db, id[1], 8, 10, 2, false, &s), CJ_OK);
    CHECK_EQ(st->record_join(db, id[1], 8, 0, s, 10), CJ_OK);
    CHECK_EQ(st->record_update(db, id[1], 8, 1, false), CJ_OK);
    CHECK_EQ(st->record_update(db, id[2], 8, 1, false), CJ_OK);
    CHECK_EQ(st->record_update(db, id[1], 8, 2, true), CJ_OK);
    CHECK_EQ(cj_sqlite_set_address(db, id[0], 8, &a), CJ_OK);
    CHECK_EQ(cj_sqlite_set_address(db, nobody, 8, &a), CJ_ERR_NOTFOUND);
    CHECK_EQ(st->node_address(db, id[0], 8, &got), CJ_OK);
    CHECK(cj_addr_equal(&got, &a));

    memset(&sn, 0, sizeof sn);
    CHECK_EQ(cj_sqlite_list(db, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 3);
    CHECK(!sn.last[0].has_update);
    CHECK(cj_addr_equal(&sn.last[0].addr, &a));
    CHECK(sn.last[1].rec.joined);
    CHECK(sn.last[1].has_lease);
    CHECK_EQ(sn.last[1].lease_until, 10 + 2 * 3600000);
    CHECK(sn.last[1].has_joined_at);
    CHECK(sn.last[1].has_update);
    CHECK_EQ(sn.last[1].update_campaign, 2);
    CHECK(sn.last[1].update_acked);
    CHECK_EQ(sn.last[1].update_session, cj_sqlite_session(db));
    CHECK(sn.last[2].has_update && !sn.last[2].update_acked);
    CHECK_EQ(cj_sqlite_list(db, stop_cb, NULL), 7);

    /* campaign 1 did not reach nodes 1 and 2; campaign 2 reached all */
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(cj_sqlite_unreached(db, 0, 1, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 2);
    CHECK_MEM(sn.last[0].rec.id, 8, id[1], 8);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(cj_sqlite_unreached(db, 0, 2, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 0);
    /* a later session's campaign 1 is another campaign */
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(cj_sqlite_unreached(db, cj_sqlite_session(db) + 1, 1, keep_cb,
                                 &sn),
             CJ_OK);
    CHECK_EQ(sn.n, 0);

    /* eviction: admission and lease end, the blacklist remembers */
    CHECK_EQ(cj_sqlite_evict(db, id[1], 8), CJ_OK);
    CHECK_EQ(cj_sqlite_evict(db, nobody, 8), CJ_ERR_NOTFOUND);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(cj_sqlite_blacklist(db, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 1);
    CHECK(sn.last[0].evicted && !sn.last[0].rec.joined &&
          !sn.last[0].has_lease);
    {
        uint64_t cur = 0;
        cj_jrc_pledge_t r;
        CHECK_EQ(st->next_joined(db, &cur, &r), CJ_ERR_NOTFOUND);
    }
    CHECK_EQ(cj_sqlite_readmit(db, id[1], 8), CJ_OK);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(cj_sqlite_blacklist(db, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 0);
    cj_sqlite_close(db);
    tmp_cleanup();
}

/* ---- the JRC engine over the SQLite store ----------------------------------- */

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

/* A Join Request (section 8.1.1) as a stateless JP forwards it: NON with
 * the JP's token, Proxy-Scheme removed. */
static size_t join_request(cj_oscore_ctx_t *ctx, cj_oscore_req_t *bind,
                           uint8_t *msg, size_t cap)
{
    static const uint8_t jr[5] = {0xa1, 0x05, 0x42, 0xca, 0xfe};
    static const uint8_t tok[2] = {0xbe, 0xef}, jptok[6] = {1, 2, 3, 4, 5, 6};
    uint8_t coap[128], prot[160];
    cj_coap_builder_t b;
    cj_coap_msg_t m;
    cj_coap_opt_iter_t it;
    cj_coap_opt_t o;
    int n;

    cj_coap_build_init(&b, coap, sizeof coap, CJ_COAP_CON, CJ_COAP_POST,
                       0x1234, tok, sizeof tok);
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
    cj_coap_build_init(&b, msg, cap, CJ_COAP_NON, m.code, 0x7001, jptok,
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

TEST(sqlite_jrc_admission)
{
    static const uint8_t netid[2] = {0xca, 0xfe};
    static const cj_addr_t jp = {2, {0x0a, 0x01}};
    cj_sqlite_t *db;
    cj_jrc_cfg_t cfg;
    cj_oscore_ctx_t pctx;
    cj_oscore_req_t bind;
    uint8_t id[8], psk[16], msg[256], obuf[512], plain[512];
    cj_out_t out;
    cj_coap_msg_t m;
    cj_cojp_config_t conf;
    cj_jrc_pledge_t r;
    size_t n;
    int pn;

    tmp_setup();
    db = open_db();
    add_n(db, 3);
    sql_exec(db, "UPDATE registry_state SET next_short = 44947"); /* af93 */
    memset(&cfg, 0, sizeof cfg);
    cfg.network_id = netid;
    cfg.network_id_len = sizeof netid;
    cfg.keys[0].key_id = 1;
    cj_hex("e6bf4287c2d7618d6a9687445ffd33e6", cfg.keys[0].key, 16);
    cfg.key_count = 1;
    cfg.join_rate = UINT32_MAX;
    cfg.slots = eng_slots;
    cfg.slot_count = 4;
    CHECK_EQ(cj_jrc_init(&eng, &cfg, cj_sqlite_store(db), NULL), CJ_OK);

    make_id(id, 1);
    make_psk(psk, 1);
    pledge_ctx(&pctx, id, psk);
    n = join_request(&pctx, &bind, msg, sizeof msg);
    memset(&out, 0, sizeof out);
    out.buf = obuf;
    out.cap = sizeof obuf;
    /* group commit: the answer leaves only after the commit */
    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    CHECK_EQ(cj_jrc_input(&eng, 1000, &jp, msg, n, &out), 1);
    CHECK_EQ(cj_sqlite_commit(db), CJ_OK);
    CHECK_EQ(out.event, CJ_JRC_EV_JOINED);
    CHECK(out.len > 0);
    CHECK_EQ(cj_coap_parse(&m, out.buf, out.len), CJ_OK);
    CHECK_EQ(m.code, CJ_COAP_CHANGED);
    pn = cj_oscore_unprotect_response(&pctx, &bind, out.buf, out.len, plain,
                                      sizeof plain);
    CHECK(pn > 0);
    CHECK_EQ(cj_coap_parse(&m, plain, pn > 0 ? (size_t)pn : 0), CJ_OK);
    CHECK_EQ(m.code, CJ_COAP_CHANGED);
    /* RFC 9031 Appendix A: key set with K1 and short address af93 */
    CHECK_HEX(m.payload, m.payload_len,
              "a202820150e6bf4287c2d7618d6a9687445ffd33e6038142af93");
    CHECK_EQ(cj_cojp_config_decode(m.payload, m.payload_len, &conf, NULL),
             CJ_OK);
    cj_sqlite_close(db);

    /* the row, read back by a fresh handle (another process) */
    db = open_db();
    CHECK_EQ(cj_sqlite_store(db)->lookup(db, id, 8, &r), CJ_OK);
    CHECK(r.joined);
    CHECK_EQ(r.role, CJ_COJP_ROLE_6LN);
    CHECK_EQ(r.short_id, 0xaf93);
    CHECK(r.replay.valid);
    CHECK_EQ(r.replay.highest, 0);
    CHECK(r.ssn_reserved > 0);
    CHECK_EQ(sql_int(db, "SELECT joined_at FROM pledges WHERE seq = 2"), 1000);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges WHERE"
                         " lease_until IS NOT NULL"),
             1);
    cj_sqlite_close(db);
    tmp_cleanup();
}

/* ---- schema 2: network row and pending operations ------------------------ */

TEST(sqlite_migration_1_to_2_keeps_pledges)
{
    cj_sqlite_t *db;

    tmp_setup();
    db = open_db();
    add_n(db, 3);
    /* turn the file back into a version 1 registry */
    sql_exec(db, "DROP TABLE network; DROP TABLE pending_ops;"
                 " DELETE FROM schema_version WHERE version = 2");
    cj_sqlite_close(db);
    db = open_db();
    CHECK_EQ(sql_int(db, "SELECT max(version) FROM schema_version"), 2);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges"), 3);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM network"), 0);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pending_ops"), 0);
    cj_sqlite_close(db);
    tmp_cleanup();
}

TEST(sqlite_network_row_round_trip)
{
    cj_sqlite_t *db;
    cj_sqlite_network_t n, got;

    tmp_setup();
    db = open_db();
    CHECK_EQ(cj_sqlite_network_load(db, &got), CJ_ERR_NOTFOUND);
    memset(&n, 0, sizeof n);
    n.network_id[0] = 0xca;
    n.network_id[1] = 0xfe;
    n.network_id_len = 2;
    n.key_count = 2;
    n.keys[0].key_id = 1;
    n.keys[0].key_usage = CJ_COJP_KEY_USAGE_K1_MIC32;
    memset(n.keys[0].key, 0x11, 16);
    n.keys[1].key_id = 2;
    n.keys[1].key_usage = CJ_COJP_KEY_USAGE_K2_ENC_MIC32;
    memset(n.keys[1].key, 0x22, 16);
    n.join_rate = UINT32_MAX;
    n.lease_hours = 24;
    n.next_campaign = 7;
    CHECK_EQ(cj_sqlite_network_save(db, &n), CJ_OK);
    cj_sqlite_close(db);
    db = open_db();
    CHECK_EQ(cj_sqlite_network_load(db, &got), CJ_OK);
    CHECK(memcmp(&got, &n, sizeof n) == 0);
    /* replaced, not added; a rolled back save leaves the old row */
    n.has_jrc_address = true;
    n.jrc_address[15] = 1;
    n.join_rate = 0;
    memset(n.network_id, 0, sizeof n.network_id);
    n.network_id_len = 0;
    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    CHECK_EQ(cj_sqlite_network_save(db, &n), CJ_OK);
    CHECK_EQ(cj_sqlite_rollback(db), CJ_OK);
    CHECK_EQ(cj_sqlite_network_load(db, &got), CJ_OK);
    CHECK_EQ(got.next_campaign, 7);
    CHECK_EQ(got.network_id_len, 2);
    CHECK_EQ(cj_sqlite_network_save(db, &n), CJ_OK);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM network"), 1);
    CHECK_EQ(cj_sqlite_network_load(db, &got), CJ_OK);
    CHECK(memcmp(&got, &n, sizeof n) == 0);
    n.key_count = 0;
    CHECK_EQ(cj_sqlite_network_save(db, &n), CJ_ERR_INVALID);
    n.key_count = 2;
    n.next_campaign = 0;
    CHECK_EQ(cj_sqlite_network_save(db, &n), CJ_ERR_INVALID);
    cj_sqlite_close(db);
    tmp_cleanup();
}

TEST(sqlite_pending_ops_fifo)
{
    cj_sqlite_t *db;
    cj_sqlite_op_t op, got;

    tmp_setup();
    db = open_db();
    CHECK_EQ(cj_sqlite_op_next(db, &got), CJ_ERR_NOTFOUND);
    memset(&op, 0, sizeof op);
    op.kind = CJ_SQLITE_OP_EVICT;
    CHECK_EQ(cj_sqlite_op_push(db, &op), CJ_ERR_INVALID); /* no pledge */
    op.kind = 9;
    CHECK_EQ(cj_sqlite_op_push(db, &op), CJ_ERR_INVALID);
    op.kind = CJ_SQLITE_OP_REKEY;
    op.has_key = true;
    memset(op.key, 0x5a, 16);
    CHECK_EQ(cj_sqlite_op_push(db, &op), CJ_OK);
    memset(&op, 0, sizeof op);
    op.kind = CJ_SQLITE_OP_EVICT;
    op.id[0] = 0x02;
    op.id[7] = 0x07;
    op.id_len = 8;
    CHECK_EQ(cj_sqlite_op_push(db, &op), CJ_OK);
    cj_sqlite_close(db);

    db = open_db();
    CHECK_EQ(cj_sqlite_op_next(db, &got), CJ_OK);
    CHECK_EQ(got.kind, CJ_SQLITE_OP_REKEY);
    CHECK(got.has_key);
    CHECK_EQ(got.key[15], 0x5a);
    CHECK_EQ(got.id_len, 0);
    CHECK(got.queued_at > 0);
    /* taking it inside a rolled back transaction leaves it queued */
    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    CHECK_EQ(cj_sqlite_op_done(db, got.seq), CJ_OK);
    CHECK_EQ(cj_sqlite_rollback(db), CJ_OK);
    CHECK_EQ(cj_sqlite_op_next(db, &op), CJ_OK);
    CHECK_EQ(op.seq, got.seq);
    CHECK_EQ(cj_sqlite_op_done(db, got.seq), CJ_OK);
    CHECK_EQ(cj_sqlite_op_done(db, got.seq), CJ_ERR_NOTFOUND);
    CHECK_EQ(cj_sqlite_op_next(db, &got), CJ_OK);
    CHECK_EQ(got.kind, CJ_SQLITE_OP_EVICT);
    CHECK_EQ(got.id_len, 8);
    CHECK_EQ(got.id[7], 0x07);
    CHECK(!got.has_key);
    CHECK_EQ(cj_sqlite_op_done(db, got.seq), CJ_OK);
    CHECK_EQ(cj_sqlite_op_next(db, &got), CJ_ERR_NOTFOUND);
    cj_sqlite_close(db);
    tmp_cleanup();
}

/* ---- two JRC engines on one file ------------------------------------------ */

#include "jrc_multi.h"

/* Two handles on one file (two JRC processes, as far as SQLite can
 * tell): the harness of jrc_multi.h, in autocommit and with one engine
 * in group commits. */
TEST(sqlite_two_engines_one_file)
{
    cj_sqlite_t *a, *b;
    jm_result_t r;

    for (unsigned v = 0; v < 4; v++) {
        uint32_t block = v & 1;
        size_t nslots = v & 2 ? 3 : JM_MAXP;
        tmp_setup();
        a = open_db();
        b = open_db();
        for (unsigned i = 0; i < 6; i++) {
            uint8_t id[8], psk[16];
            jm_make_id(id, i);
            jm_make_psk(psk, i);
            CHECK_EQ(cj_sqlite_add(a, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
        }
        jm_alternate(cj_sqlite_store(a), cj_sqlite_store(b), 6, 12, block,
                     nslots, &r);
        CHECK_EQ(r.answered, 72);
        CHECK_EQ(r.replays_accepted, 0);
        CHECK_EQ(r.replays_dropped, 36);
        CHECK_EQ(r.conflicts, 0);
        CHECK_EQ(r.short_dup, 0);
        CHECK_EQ(r.short_moved, 0);
        CHECK(r.repeats > 0);
        if (block == 1)
            CHECK_EQ(r.pledge_ok, 72);
        cj_sqlite_close(a);
        cj_sqlite_close(b);
        tmp_cleanup();
    }
}
