/*
 * SQLite JRC store (store/sqlite.h) against real files in a temporary
 * directory: the store conformance suite (store_suite.h), checked
 * against the semantics of the in-memory store (cojp/jrc_memstore.h)
 * and under the JRC engine, plus what only a file has (pragmas, another
 * program's database, two handles taking the write lock in turn).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cojp/jrc.h"
#include "store/sqlite.h"
#include "store_suite.h"
#include "../test.h"

/* ---- the backend ----------------------------------------------------------- */

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

static int sq_try_open(void **h)
{
    cj_sqlite_t *db = NULL;
    int rc = cj_sqlite_open(&db, dbpath);
    *h = db;
    return rc;
}

static long long sql_int(void *h, const char *sql)
{
    sqlite3_stmt *q;
    long long v = -1;
    if (sqlite3_prepare_v2(cj_sqlite_raw(h), sql, -1, &q, NULL) != SQLITE_OK)
        return -2;
    if (sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

static bool sql_try(void *h, const char *sql)
{
    return sqlite3_exec(cj_sqlite_raw(h), sql, NULL, NULL, NULL) == SQLITE_OK;
}

static void set_cursor(void *h, unsigned v)
{
    char sql[80];
    snprintf(sql, sizeof sql, "UPDATE registry_state SET next_short = %u", v);
    CHECK(sql_try(h, sql));
}

SS_ADAPT(cj_sqlite)

static const ss_backend_t sq = {
    .name = "sqlite",
    .schema_version = CJ_SQLITE_SCHEMA_VERSION,
    .fresh = tmp_setup,
    .try_open = sq_try_open,
    .cleanup = tmp_cleanup,
    .set_cursor = set_cursor,
    .sql_int = sql_int,
    .sql_try = sql_try,
    .inject_sql = "CREATE TRIGGER inject BEFORE UPDATE OF short_id ON pledges"
                  " WHEN NEW.short_id = 2 BEGIN"
                  " SELECT RAISE(ABORT, 'injected'); END",
    .uninject_sql = "DROP TRIGGER inject",
    .v1_sql = "DROP TABLE network; DROP TABLE pending_ops;"
              " DELETE FROM schema_version WHERE version = 2",
    SS_ADAPTED(cj_sqlite),
};

/* ---- the conformance suite --------------------------------------------------- */

TEST(sqlite_same_results_as_memstore) { ss_same_results_as_memstore(&sq); }
TEST(sqlite_short_ids_unique_2000_with_expiry) { ss_short_ids_model(&sq); }
TEST(sqlite_short_ids_same_as_memstore) { ss_short_ids_vs_memstore(&sq); }
TEST(sqlite_accept_piv_window) { ss_accept_piv_window(&sq); }
TEST(sqlite_durable_across_reopen) { ss_durable_across_reopen(&sq); }
TEST(sqlite_rollback_leaves_nothing) { ss_rollback_leaves_nothing(&sq); }
TEST(sqlite_failed_call_changes_nothing) { ss_failed_call_changes_nothing(&sq); }
TEST(sqlite_csv_import) { ss_csv_import(&sq); }
TEST(sqlite_list_outcomes_address_evict) { ss_list_outcomes_address_evict(&sq); }
TEST(sqlite_jrc_admission) { ss_jrc_admission(&sq); }
TEST(sqlite_migration_1_to_2_keeps_pledges) { ss_migration_1_to_2(&sq); }
TEST(sqlite_network_row_round_trip) { ss_network_row(&sq); }
TEST(sqlite_pending_ops_fifo) { ss_pending_ops_fifo(&sq); }
/* Two handles on one file (two JRC processes, as far as SQLite can
 * tell). */
TEST(sqlite_two_engines_one_file) { ss_two_engines(&sq); }

/* ---- what only the file has ---------------------------------------------------- */

TEST(sqlite_schema_create_and_reopen)
{
    cj_sqlite_t *db;

    tmp_setup();
    db = ss_open(&sq);
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
    cj_sqlite_close(db);
    tmp_cleanup();

    ss_schema_reopen(&sq);

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

TEST(sqlite_short_ids_exhausted)
{
    cj_sqlite_t *db;
    const cj_jrc_store_t *st;
    uint8_t id[8], psk[16];
    uint16_t s = 0;
    unsigned bad = 0;

    tmp_setup();
    db = ss_open(&sq);
    st = cj_sqlite_store(db);
    /* 65533 usable ids (0x0001..0xfffd): one pledge more than that */
    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    for (unsigned i = 0; i < 65534; i++) {
        ss_make_id(id, i);
        ss_make_psk(psk, i);
        CHECK_EQ(cj_sqlite_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
        if (i < 65533) {
            if (st->assign_short_id(st->ctx, id, 8, 0, 0, false, &s) != CJ_OK ||
                s != i + 1)
                bad++;
        }
    }
    CHECK_EQ(bad, 0);
    ss_make_id(id, 65533);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 0, 0, false, &s),
             CJ_ERR_NOSPACE);
    /* a failed call inside the batch does not spoil it */
    CHECK_EQ(cj_sqlite_commit(db), CJ_OK);
    /* one release frees exactly that id, found by wrapping around */
    ss_make_id(id, 99);
    CHECK_EQ(st->release(st->ctx, id, 8), CJ_OK);
    ss_make_id(id, 65533);
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
    a = ss_open(&sq);
    b = ss_open(&sq);
    CHECK(cj_sqlite_session(a) != cj_sqlite_session(b));
    ss_add_n(&sq, a, 200);
    for (unsigned n = 0; n < 400; n++) {
        cj_sqlite_t *h = n % 2 ? b : a;
        const cj_jrc_store_t *st = cj_sqlite_store(h);
        unsigned p = (n * 37) % 200;
        uint8_t id[8];
        uint16_t s = 0;
        ss_make_id(id, p);
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
        ss_make_id(id, 1);
        CHECK_EQ(cj_sqlite_store(b)->lookup(b, id, 8, &r), CJ_OK);
    }
    CHECK_EQ(cj_sqlite_begin(a), CJ_ERR_STATE);
    CHECK_EQ(cj_sqlite_commit(a), CJ_OK);
    CHECK_EQ(cj_sqlite_commit(a), CJ_ERR_STATE);
    cj_sqlite_close(a);
    cj_sqlite_close(b);
    tmp_cleanup();
}
