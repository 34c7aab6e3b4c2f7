/*
 * SQLite JRC store (store/sqlite.h) against real files in a temporary
 * directory: the store conformance suite (store_suite.h), checked
 * against the semantics of the in-memory store (cojp/jrc_memstore.h)
 * and under the JRC engine, plus what only a file has (pragmas, another
 * program's database, two handles taking the write lock in turn).
 */
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

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

static int sq_try_open_why(void **h, char *why, size_t cap)
{
    cj_sqlite_t *db = NULL;
    int rc = cj_sqlite_open_as(&db, dbpath, false, why, cap);
    *h = db;
    return rc;
}

/* SQL on the file through a connection of its own. */
static bool sq_outside(const char *sql)
{
    sqlite3 *raw;
    bool ok = sqlite3_open(dbpath, &raw) == SQLITE_OK &&
              sqlite3_exec(raw, sql, NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(raw);
    return ok;
}

/* The registry file's bytes, then the WAL's if there is one. */
static char *sq_snapshot(size_t *len)
{
    char *buf = NULL, p[160];
    size_t n = 0;

    for (int i = 0; i < 2; i++) {
        FILE *f;
        long sz;
        snprintf(p, sizeof p, "%s%s", dbpath, i ? "-wal" : "");
        if ((f = fopen(p, "rb")) == NULL)
            continue;
        if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 &&
            fseek(f, 0, SEEK_SET) == 0) {
            char *t = realloc(buf, n + (size_t)sz + 1);
            if (t != NULL) {
                buf = t;
                n += fread(buf + n, 1, (size_t)sz, f);
            }
        }
        fclose(f);
    }
    *len = n;
    return buf;
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

static int sq_repair(const uint8_t *id, size_t id_len, const uint8_t *psk,
                     uint64_t now_ms, bool *upgraded, char *why, size_t cap)
{
    return cj_sqlite_repair(dbpath, id, id_len, psk, now_ms, upgraded, why,
                            cap);
}

/* Migration 11 undone (outcome retention), then the indexes schema
 * versions 1 to 9 had (migration 10 drops them) put back: first when a
 * file is turned back into an older version. */
#define V10_RETENTION                                                    \
    "DROP TRIGGER updates_retention;"                                    \
    "ALTER TABLE registry_state DROP COLUMN keep_outcomes;"
#define V9_INDEXES                                                       \
    V10_RETENTION                                                        \
    "CREATE INDEX pledges_lease_until ON pledges(lease_until)"           \
    " WHERE lease_until IS NOT NULL;"                                    \
    "CREATE INDEX pledges_joined ON pledges(seq) WHERE joined = 1;"

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
    .v1_sql = V9_INDEXES
              "ALTER TABLE pledges DROP COLUMN must_recover;"
              " DROP TABLE retired_psks; DROP INDEX pledges_psk;"
              " ALTER TABLE pledges DROP COLUMN okm;"
              " ALTER TABLE pledges DROP COLUMN repeat_cache;"
              " DROP TABLE network; DROP TABLE pending_ops;"
              " DELETE FROM schema_version WHERE version >= 2",
    .v2_sql = V9_INDEXES
              "ALTER TABLE pledges DROP COLUMN must_recover;"
              " ALTER TABLE network DROP COLUMN campaign_owner;"
              " ALTER TABLE network DROP COLUMN campaign_alive;"
              " DROP TABLE retired_psks; DROP INDEX pledges_psk;"
              " ALTER TABLE pledges DROP COLUMN okm;"
              " ALTER TABLE pledges DROP COLUMN repeat_cache;"
              " DELETE FROM schema_version WHERE version >= 3",
    .v4_sql = V9_INDEXES
              "ALTER TABLE pledges DROP COLUMN must_recover;"
              " ALTER TABLE network DROP COLUMN campaign_owner;"
              " ALTER TABLE network DROP COLUMN campaign_alive;"
              " DROP TABLE retired_psks; DROP INDEX pledges_psk;"
              " DELETE FROM schema_version WHERE version >= 5",
    /* pending_ops as migration 2 made it */
    .v6_sql = V9_INDEXES
              "ALTER TABLE pledges DROP COLUMN must_recover;"
              " ALTER TABLE network DROP COLUMN campaign_owner;"
              " ALTER TABLE network DROP COLUMN campaign_alive;"
              " DROP TABLE pending_ops;"
              " CREATE TABLE pending_ops ("
              " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
              " kind INTEGER NOT NULL CHECK (kind IN (1, 2)),"
              " pledge BLOB CHECK (pledge IS NULL OR length(pledge) BETWEEN 1 AND 8),"
              " key BLOB CHECK (key IS NULL OR length(key) = 16),"
              " queued_at INTEGER NOT NULL,"
              " CHECK (kind <> 2 OR pledge IS NOT NULL));"
              " DELETE FROM schema_version WHERE version >= 7",
    .v7_sql = V9_INDEXES
              "ALTER TABLE pledges DROP COLUMN must_recover;"
              " ALTER TABLE network DROP COLUMN campaign_owner;"
              " ALTER TABLE network DROP COLUMN campaign_alive;"
              " DELETE FROM schema_version WHERE version >= 8",
    .v8_sql = V9_INDEXES
              "ALTER TABLE network DROP COLUMN campaign_owner;"
              " ALTER TABLE network DROP COLUMN campaign_alive;"
              " DELETE FROM schema_version WHERE version >= 9",
    .v9_sql = V9_INDEXES "DELETE FROM schema_version WHERE version >= 10",
    .v10_dropped_sql = "SELECT count(*) FROM sqlite_master WHERE name IN"
                       " ('pledges_joined', 'pledges_lease_until')",
    .v10_sql = V10_RETENTION "DELETE FROM schema_version WHERE version >= 11",
    .dup_id_err = CJ_ERR_STATE,
    .try_open_why = sq_try_open_why,
    .sql_outside = sq_outside,
    .snapshot = sq_snapshot,
    .repair = sq_repair,
    SS_ADAPTED(cj_sqlite),
};

const ss_backend_t *ss_sqlite_backend(void) { return &sq; }
const char *ss_sqlite_path(void) { return dbpath; }

/* ---- the conformance suite --------------------------------------------------- */

TEST(sqlite_same_results_as_memstore) { ss_same_results_as_memstore(&sq); }
TEST(sqlite_short_ids_unique_2000_with_expiry) { ss_short_ids_model(&sq); }
TEST(sqlite_short_ids_same_as_memstore) { ss_short_ids_vs_memstore(&sq); }
TEST(sqlite_short_ids_batch_run) { ss_short_ids_batch_run(&sq); }
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
TEST(sqlite_migration_2_to_3_repeat_cache) { ss_migration_2_to_3(&sq); }
TEST(sqlite_repeat_cache) { ss_repeat_cache(&sq); }
TEST(sqlite_jrc_restart_repeats_answer) { ss_jrc_restart_repeat(&sq); }
TEST(sqlite_psk_per_pledge) { ss_psk_per_pledge(&sq); }
TEST(sqlite_migration_4_to_5_psk_per_pledge) { ss_migration_4_to_5(&sq); }
TEST(sqlite_set_psk) { ss_set_psk(&sq); }
TEST(sqlite_remove) { ss_remove(&sq); }
TEST(sqlite_repair_shared_psks) { ss_repair(&sq); }
TEST(sqlite_migration_6_to_7_readmit_op) { ss_migration_6_to_7(&sq); }
TEST(sqlite_migration_7_to_8_recovery_mark) { ss_migration_7_to_8(&sq); }
TEST(sqlite_mark_recover) { ss_mark_recover(&sq); }
TEST(sqlite_migration_8_to_9_campaign_lock) { ss_migration_8_to_9(&sq); }
TEST(sqlite_migration_9_to_10_fewer_indexes) { ss_migration_9_to_10(&sq); }
TEST(sqlite_outcome_retention) { ss_outcome_retention(&sq); }
TEST(sqlite_migration_10_to_11_retention) { ss_migration_10_to_11(&sq); }
TEST(sqlite_campaign_lock) { ss_campaign_lock(&sq); }
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
    CHECK_EQ(cj_sqlite_open_as(&db, dbpath, true, NULL, 0), CJ_ERR_STORAGE);
    {
        /* still in its own journal mode, with its own table */
        sqlite3 *raw;
        sqlite3_stmt *q;
        CHECK_EQ(sqlite3_open(dbpath, &raw), SQLITE_OK);
        CHECK_EQ(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
        CHECK_EQ(sqlite3_step(q), SQLITE_ROW);
        CHECK(strcmp((const char *)sqlite3_column_text(q, 0), "delete") == 0);
        sqlite3_finalize(q);
        CHECK_EQ(sqlite3_prepare_v2(raw, "SELECT count(*) FROM sqlite_master", -1, &q, NULL),
                 SQLITE_OK);
        CHECK_EQ(sqlite3_step(q), SQLITE_ROW);
        CHECK_EQ(sqlite3_column_int(q, 0), 1);
        sqlite3_finalize(q);
        sqlite3_close(raw);
    }
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

/* Statements run on a connection that look for the earliest lease end
 * (one of a sweep's two scans). */
static int count_sweeps(unsigned t, void *arg, void *p, void *x)
{
    (void)t;
    (void)p;
    if (strncmp((const char *)x, "SELECT min(lease_until)", 23) == 0)
        (*(int *)arg)++;
    return 0;
}

/* Lease every usable short id (1..65533) to a pledge of its own, id
 * i's lease ending at the SQL expression until (of i). */
static bool lease_every_id(cj_sqlite_t *db, const char *until)
{
    char sql[400];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
             " WHERE i < 65533) INSERT INTO pledges (id, seq, psk,"
             " allowed_roles, joined, short_id, lease_until)"
             " SELECT CAST(printf('%%08x', i) AS BLOB), 1000000 + i,"
             " CAST(printf('%%016x', i) AS BLOB), 1, 1, i, %s FROM n",
             until);
    return sql_try(db, sql);
}

/* Leases that ended are cleared by a sweep (a table scan since schema
 * 10) at most once per CJ_SQLITE_SWEEP_GAP_MS; until then their ids stay
 * held, unless an assignment finds no free id, which sweeps at once. */
TEST(sqlite_sweep_put_off_until_needed)
{
    enum { T = 1000000 };
    cj_sqlite_t *db;
    const cj_jrc_store_t *st;
    uint8_t id[8];
    uint16_t s = 0;

    db = ss_start(&sq, 6, &st);
    /* every usable id leased, id k's lease ending at T + k */
    CHECK(lease_every_id(db, "1000000 + i"));
    /* at T + 5: ids 1..5 swept, the next sweep put off by the gap */
    ss_make_id(id, 0);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, T + 5, 1, false, &s), CJ_OK);
    CHECK_EQ(s, 1);
    /* at T + 505 (within the gap): the free ids first, ids 6..505 held */
    for (unsigned i = 1; i < 5; i++) {
        ss_make_id(id, i);
        CHECK_EQ(st->assign_short_id(st->ctx, id, 8, T + 505, 1, false, &s),
                 CJ_OK);
        CHECK_EQ(s, i + 1);
    }
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges WHERE lease_until"
                         " <= 1000505"),
             500);
    /* none free: the put-off sweep runs now */
    ss_make_id(id, 5);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, T + 505, 1, false, &s), CJ_OK);
    CHECK_EQ(s, 6);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges WHERE lease_until"
                         " <= 1000505"),
             0);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges WHERE lease_until"
                         " IS NOT NULL"),
             65533 - 499);
    cj_sqlite_close(db);
    tmp_cleanup();
}

/* No id free and none whose lease ended: the assignment fails without
 * scanning the table again, however often a pledge retries; once a
 * lease has ended, the next assignment sweeps at once (within the gap)
 * and takes its id. */
TEST(sqlite_sweep_not_repeated_while_full)
{
    enum { T = 1000000 };
    cj_sqlite_t *db;
    const cj_jrc_store_t *st;
    uint8_t id[8];
    uint16_t s = 0;
    int sweeps = 0;

    db = ss_start(&sq, 6, &st);
    /* every usable id leased, all ending at T + 5000 (within the gap) */
    CHECK(lease_every_id(db, "1005000"));
    sqlite3_trace_v2(cj_sqlite_raw(db), SQLITE_TRACE_STMT, count_sweeps, &sweeps);
    ss_make_id(id, 0);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, T, 1, false, &s), CJ_ERR_NOSPACE);
    CHECK_EQ(sweeps, 1);
    for (unsigned i = 1; i <= 3; i++)
        CHECK_EQ(st->assign_short_id(st->ctx, id, 8, T + i, 1, false, &s),
                 CJ_ERR_NOSPACE);
    CHECK_EQ(sweeps, 1);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, T + 5000, 1, false, &s), CJ_OK);
    CHECK_EQ(sweeps, 2);
    CHECK_EQ(s, 1);
    cj_sqlite_close(db);
    tmp_cleanup();
}

/* What a handle knows of the earliest lease end outlives its
 * transactions.  A write it did not make (by another connection, PRAGMA
 * data_version; through its own outside the store calls) may have left
 * leases it does not know of: they are swept at most
 * CJ_SQLITE_SWEEP_GAP_MS after its last sweep, so two handles that take
 * turns on one file do not scan the table at every batch. */
TEST(sqlite_sweep_sees_other_writers)
{
    enum { T = 100000000, HOUR = 3600000, GAP = CJ_SQLITE_SWEEP_GAP_MS };
    cj_sqlite_t *a, *b;
    const cj_jrc_store_t *sa, *sb;
    cj_jrc_pledge_t r;
    uint8_t id[8];
    uint16_t s = 0;
    int sweeps_a = 0, sweeps_b = 0;
    char sql[160];

    a = ss_start(&sq, 30, &sa);
    b = ss_open(&sq);
    sb = cj_sqlite_store(b);
    sqlite3_trace_v2(cj_sqlite_raw(a), SQLITE_TRACE_STMT, count_sweeps,
                     &sweeps_a);
    sqlite3_trace_v2(cj_sqlite_raw(b), SQLITE_TRACE_STMT, count_sweeps,
                     &sweeps_b);
    /* a's first assignment sweeps; the earliest end it knows: T + 1 h */
    ss_make_id(id, 0);
    CHECK_EQ(sa->assign_short_id(sa->ctx, id, 8, T, 1, false, &s), CJ_OK);
    CHECK_EQ(sweeps_a, 1);
    /* a's own batches keep what it knows: no sweep before T + 1 h */
    for (unsigned i = 1; i < 3; i++) {
        CHECK_EQ(cj_sqlite_begin(a), CJ_OK);
        ss_make_id(id, i);
        CHECK_EQ(sa->assign_short_id(sa->ctx, id, 8, T + 3 * GAP, 1, false, &s),
                 CJ_OK);
        CHECK_EQ(cj_sqlite_commit(a), CJ_OK);
    }
    CHECK_EQ(sweeps_a, 1);
    /* through a's connection, not a store call: a lease ending at
     * T + 3 gaps + 1 ms; swept by the first assignment a gap after the
     * last sweep, not before */
    snprintf(sql, sizeof sql,
             "UPDATE pledges SET short_id = 900, lease_until = %lld"
             " WHERE seq = 4",
             (long long)T + 3 * GAP + 1);
    CHECK(sql_try(a, sql));
    ss_make_id(id, 4);
    CHECK_EQ(sa->assign_short_id(sa->ctx, id, 8, T + 3 * GAP + 2, 1, true, &s),
             CJ_OK);
    CHECK_EQ(sweeps_a, 2);
    CHECK_EQ(sql_int(a, "SELECT count(*) FROM pledges WHERE short_id = 900"
                        " AND lease_until IS NOT NULL"),
             0);
    /* b (another connection): a lease ending at T + 4 gaps; a sweeps it
     * a gap after its last sweep */
    ss_make_id(id, 5);
    CHECK_EQ(sb->assign_short_id(sb->ctx, id, 8, T + 4 * GAP - HOUR, 1, false,
                                 &s),
             CJ_OK);
    CHECK_EQ(sweeps_b, 1);
    CHECK_EQ(cj_sqlite_begin(a), CJ_OK);
    ss_make_id(id, 6);
    CHECK_EQ(sa->assign_short_id(sa->ctx, id, 8, T + 4 * GAP + 3, 1, false, &s),
             CJ_OK);
    CHECK_EQ(cj_sqlite_commit(a), CJ_OK);
    CHECK_EQ(sweeps_a, 3);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pledges WHERE lease_until <= %lld",
             (long long)T + 4 * GAP);
    CHECK_EQ(sql_int(a, sql), 0);
    /* a wrote: b sweeps (its last sweep was long before) */
    ss_make_id(id, 3);
    CHECK_EQ(sb->assign_short_id(sb->ctx, id, 8, T + 4 * GAP + 4, 1, false, &s),
             CJ_OK);
    CHECK_EQ(sweeps_b, 2);
    /* a and b take turns, twenty batches within one gap: no more sweeps */
    for (unsigned i = 10; i < 30; i++) {
        cj_sqlite_t *h = i % 2 ? a : b;
        const cj_jrc_store_t *st = i % 2 ? sa : sb;
        CHECK_EQ(cj_sqlite_begin(h), CJ_OK);
        ss_make_id(id, i);
        CHECK_EQ(st->assign_short_id(st->ctx, id, 8, T + 4 * GAP + 5 + i, 1,
                                     false, &s),
                 CJ_OK);
        CHECK_EQ(cj_sqlite_commit(h), CJ_OK);
    }
    CHECK_EQ(sweeps_a, 3);
    CHECK_EQ(sweeps_b, 2);
    /* b wrote: a sweeps again once a gap has passed */
    ss_make_id(id, 7);
    CHECK_EQ(sa->assign_short_id(sa->ctx, id, 8, T + 6 * GAP, 1, false, &s),
             CJ_OK);
    CHECK_EQ(sweeps_a, 4);
    /* a batch that only read, rolled back, keeps what a knows; one that
     * wrote, rolled back, makes it stale */
    CHECK_EQ(cj_sqlite_begin(a), CJ_OK);
    CHECK_EQ(sa->lookup(sa->ctx, id, 8, &r), CJ_OK);
    CHECK_EQ(cj_sqlite_rollback(a), CJ_OK);
    ss_make_id(id, 8);
    CHECK_EQ(sa->assign_short_id(sa->ctx, id, 8, T + 8 * GAP, 1, false, &s),
             CJ_OK);
    CHECK_EQ(sweeps_a, 4);
    CHECK_EQ(cj_sqlite_begin(a), CJ_OK);
    ss_make_id(id, 9);
    CHECK_EQ(sa->assign_short_id(sa->ctx, id, 8, T + 8 * GAP, 1, false, &s),
             CJ_OK);
    CHECK_EQ(cj_sqlite_rollback(a), CJ_OK);
    CHECK_EQ(sa->assign_short_id(sa->ctx, id, 8, T + 10 * GAP, 1, false, &s),
             CJ_OK);
    CHECK_EQ(sweeps_a, 5);
    sqlite3_trace_v2(cj_sqlite_raw(a), 0, NULL, NULL);
    sqlite3_trace_v2(cj_sqlite_raw(b), 0, NULL, NULL);
    cj_sqlite_close(a);
    cj_sqlite_close(b);
    tmp_cleanup();
}

/* One admission's writes inside a batch: the known row's deferred writes
 * are seen by every later read (in the batch and after the commit), and
 * when writing them fails the whole batch fails and nothing of it stays. */
static void admit_in_batch(const cj_jrc_store_t *st, const uint8_t id[8],
                           uint16_t *s)
{
    cj_jrc_pledge_t r;
    cj_oscore_replay_t w;
    cj_jrc_repeat_t rep;
    uint64_t first = 0;

    memset(&rep, 0, sizeof rep);
    rep.req_len = 3;
    rep.req_opt_len = 1;
    rep.resp_len = 4;
    memset(rep.req, 0x11, 3);
    memset(rep.resp, 0x22, 4);
    rep.from.len = 4;
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
    CHECK_EQ(st->accept_piv(st->ctx, id, 8, ss_psk_of(id), NULL, 0, 5, &w),
             CJ_OK);
    CHECK_EQ(st->accept_piv(st->ctx, id, 8, ss_psk_of(id), NULL, 0, 5, &w),
             CJ_ERR_REPLAY);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 0, 0, false, s), CJ_OK);
    CHECK_EQ(st->record_join(st->ctx, id, 8, 0, *s, 1000), CJ_OK);
    CHECK_EQ(
        st->reserve_ssn(st->ctx, id, 8, ss_psk_of(id), NULL, 0, 0, 32, &first),
        CJ_OK);
    CHECK_EQ(first, 0);
    CHECK_EQ(
        st->reserve_ssn(st->ctx, id, 8, ss_psk_of(id), NULL, 0, 0, 32, &first),
        CJ_OK);
    CHECK_EQ(first, 32);
    CHECK_EQ(st->save_repeat(st->ctx, id, 8, ss_psk_of(id), NULL, 0, &rep),
             CJ_OK);
}

TEST(sqlite_batch_deferred_row_writes)
{
    cj_sqlite_t *db;
    const cj_jrc_store_t *st;
    uint8_t id[8], other[8];
    cj_jrc_pledge_t r;
    uint64_t cur = 0;
    uint16_t s = 0;

    tmp_setup();
    db = ss_open(&sq);
    st = cj_sqlite_store(db);
    ss_add_n(&sq, db, 2);
    ss_make_id(id, 0);
    ss_make_id(other, 1);

    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    admit_in_batch(st, id, &s);
    /* reads inside the batch see every write */
    CHECK_EQ(st->next_joined(st->ctx, &cur, &r), CJ_OK);
    CHECK(memcmp(r.id, id, 8) == 0);
    CHECK_EQ(r.short_id, s);
    CHECK_EQ(sql_int(db, "SELECT ssn_reserved FROM pledges WHERE seq = 1"), 64);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
    CHECK(r.replay.valid && r.replay.highest == 5);
    CHECK_EQ(r.repeat.resp_len, 4);
    /* another pledge's call in between, then more for the first one */
    CHECK_EQ(st->lookup(st->ctx, other, 8, &r), CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
    CHECK_EQ(
        st->accept_piv(st->ctx, id, 8, ss_psk_of(id), NULL, 0, 6, &r.replay),
        CJ_OK);
    CHECK_EQ(cj_sqlite_commit(db), CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
    CHECK(r.joined && r.short_id == s && r.ssn_reserved == 64);
    CHECK(r.replay.valid && r.replay.highest == 6 && r.repeat.resp_len == 4);

    /* the deferred UPDATE fails at commit: the batch is lost whole */
    CHECK(sql_try(db, "CREATE TRIGGER inject BEFORE UPDATE OF repeat_cache"
                      " ON pledges WHEN NEW.repeat_cache IS NOT NULL"
                      " BEGIN SELECT RAISE(ABORT, 'injected'); END"));
    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    admit_in_batch(st, other, &s);
    CHECK_EQ(cj_sqlite_commit(db), CJ_ERR_STORAGE);
    CHECK(strstr(cj_sqlite_errmsg(db), "injected") != NULL);
    CHECK_EQ(st->lookup(st->ctx, other, 8, &r), CJ_OK);
    CHECK(!r.joined && !r.replay.valid && r.ssn_reserved == 0);
    CHECK_EQ(r.repeat.req_len, 0);
    CHECK_EQ(sql_int(db, "SELECT count(*) FROM pledges WHERE"
                         " lease_until IS NOT NULL"),
             1);
    /* ... and the next batch starts clean */
    CHECK(sql_try(db, "DROP TRIGGER inject"));
    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    admit_in_batch(st, other, &s);
    CHECK_EQ(cj_sqlite_commit(db), CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, other, 8, &r), CJ_OK);
    CHECK(r.joined && r.replay.highest == 5 && r.ssn_reserved == 64);
    cj_sqlite_close(db);
    tmp_cleanup();
}

/* Statements run on a connection that look a pledge up by id. */
static int count_lookups(unsigned t, void *arg, void *p, void *x)
{
    (void)t;
    (void)p;
    if (strstr((const char *)x, "FROM pledges WHERE id = ?1") != NULL &&
        strncmp((const char *)x, "SELECT id, psk", 14) == 0)
        (*(int *)arg)++;
    return 0;
}

/* Reading ahead (cj_sqlite_prefetch): lookups of the pledges named run
 * no query of their own, and every lookup returns what a query would:
 * after the writes of the admission looked up before, for a pledge
 * named twice, for the row whose writes wait when the rows are read,
 * and after a write to a row read ahead.  A deferred write that fails
 * when the rows are read loses the batch. */
TEST(sqlite_batch_prefetch)
{
    cj_sqlite_t *db;
    const cj_jrc_store_t *st;
    uint8_t id[5][8], none[8], ctx_id[3] = {0xab, 0xcd, 0xef};
    const uint8_t *ids[6];
    uint8_t lens[6] = {8, 8, 8, 8, 8, 0};
    cj_jrc_pledge_t r;
    cj_oscore_replay_t w;
    uint16_t s = 0;
    int lookups = 0;

    tmp_setup();
    db = ss_open(&sq);
    st = cj_sqlite_store(db);
    ss_add_n(&sq, db, 5);
    for (int i = 0; i < 5; i++)
        ss_make_id(id[i], (unsigned)i);
    ss_make_id(none, 99);
    sqlite3_trace_v2(cj_sqlite_raw(db), SQLITE_TRACE_STMT, count_lookups,
                     &lookups);
    ids[0] = id[0];
    ids[1] = id[1];
    ids[2] = id[0];
    ids[3] = id[3];
    ids[4] = none;
    ids[5] = id[2]; /* length 0: skipped */

    /* outside a transaction nothing is read ahead */
    CHECK_EQ(cj_sqlite_prefetch(db, ids, lens, 2), CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, id[0], 8, &r), CJ_OK);
    CHECK_EQ(lookups, 1);

    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    /* pledge 3's replay window waits to be written */
    CHECK_EQ(st->lookup(st->ctx, id[3], 8, &r), CJ_OK);
    CHECK_EQ(st->accept_piv(st->ctx, id[3], 8, ss_psk_of(id[3]), NULL, 0, 7,
                            &w),
             CJ_OK);
    lookups = 0;
    CHECK_EQ(cj_sqlite_prefetch(db, ids, lens, 6), CJ_OK);
    /* ... and more of them after the rows were read */
    CHECK_EQ(st->accept_piv(st->ctx, id[3], 8, ss_psk_of(id[3]), NULL, 0, 8,
                            &w),
             CJ_OK);
    admit_in_batch(st, id[0], &s);
    CHECK_EQ(st->lookup(st->ctx, id[1], 8, &r), CJ_OK);
    CHECK(memcmp(r.id, id[1], 8) == 0 && !r.joined && !r.replay.valid);
    CHECK(memcmp(r.psk, ss_psk_of(id[1]), 16) == 0 && r.has_okm);
    CHECK_EQ(lookups, 0);
    /* named twice: the second lookup sees the first admission */
    CHECK_EQ(st->lookup(st->ctx, id[0], 8, &r), CJ_OK);
    CHECK(r.joined && r.short_id == s && r.ssn_reserved == 64);
    CHECK(r.replay.valid && r.replay.highest == 5 && r.repeat.resp_len == 4);
    /* the row whose writes waited is read with them */
    CHECK_EQ(st->lookup(st->ctx, id[3], 8, &r), CJ_OK);
    CHECK(r.replay.valid && r.replay.highest == 8);
    CHECK_EQ(st->lookup(st->ctx, none, 8, &r), CJ_ERR_NOTFOUND);

    /* any other write gives the rows read ahead up */
    ids[0] = id[1];
    ids[1] = id[2];
    CHECK_EQ(cj_sqlite_prefetch(db, ids, lens, 2), CJ_OK);
    lookups = 0;
    CHECK_EQ(st->save_context(st->ctx, id[2], 8, ss_psk_of(id[2]), ctx_id, 3),
             CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, id[2], 8, &r), CJ_OK);
    CHECK(r.id_context_len == 3 && memcmp(r.id_context, ctx_id, 3) == 0);
    CHECK_EQ(st->lookup(st->ctx, id[1], 8, &r), CJ_OK);
    CHECK_EQ(lookups, 2);
    CHECK_EQ(cj_sqlite_commit(db), CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, id[0], 8, &r), CJ_OK);
    CHECK(r.joined && r.short_id == s && r.replay.highest == 5);
    CHECK_EQ(st->lookup(st->ctx, id[3], 8, &r), CJ_OK);
    CHECK(r.replay.valid && r.replay.highest == 8);

    /* a row read ahead carries the recovery mark too; a longer batch
     * (the long query), its last id included (as many as a build reads
     * ahead: check-minimal takes few) */
    CHECK_EQ(cj_sqlite_mark_recover(db, 0, NULL), CJ_OK);
    {
        enum { LONG = CJ_SQLITE_PREFETCH < 40 ? CJ_SQLITE_PREFETCH : 40 };
        const uint8_t *many[LONG];
        uint8_t mlens[LONG];
        for (int i = 0; i < LONG; i++) {
            many[i] = none;
            mlens[i] = 8;
        }
        many[0] = id[2];
        many[LONG - 1] = id[1];
        CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
        CHECK_EQ(cj_sqlite_prefetch(db, many, mlens, LONG), CJ_OK);
        lookups = 0;
        CHECK_EQ(st->lookup(st->ctx, id[2], 8, &r), CJ_OK);
        CHECK(r.must_recover && r.id_context_len == 3);
        CHECK_EQ(st->lookup(st->ctx, id[1], 8, &r), CJ_OK);
        CHECK(r.must_recover && memcmp(r.id, id[1], 8) == 0);
        CHECK_EQ(lookups, 0);
        CHECK_EQ(cj_sqlite_rollback(db), CJ_OK);
    }

    /* the waiting writes fail as the rows are read: the batch is lost */
    CHECK(sql_try(db, "CREATE TRIGGER inject BEFORE UPDATE OF repeat_cache"
                      " ON pledges WHEN NEW.repeat_cache IS NOT NULL"
                      " BEGIN SELECT RAISE(ABORT, 'injected'); END"));
    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    admit_in_batch(st, id[4], &s);
    CHECK_EQ(cj_sqlite_prefetch(db, ids, lens, 2), CJ_ERR_STORAGE);
    CHECK_EQ(cj_sqlite_commit(db), CJ_ERR_STORAGE);
    CHECK_EQ(st->lookup(st->ctx, id[4], 8, &r), CJ_OK);
    CHECK(!r.joined && !r.replay.valid && r.ssn_reserved == 0);
    sqlite3_trace_v2(cj_sqlite_raw(db), 0, NULL, NULL);
    cj_sqlite_close(db);
    tmp_cleanup();
}

/* A short-id lease deferred with the known row's other writes never
 * collides with another pledge's, whether that one was looked up first
 * or not, searched for or taken at the cursor, or reassigned fresh. */
TEST(sqlite_batch_deferred_lease_unique)
{
    cj_sqlite_t *db;
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    uint8_t id[5][8];
    uint16_t sid[5] = {0}, again = 0;

    tmp_setup();
    db = ss_open(&sq);
    st = cj_sqlite_store(db);
    ss_add_n(&sq, db, 5);
    for (int i = 0; i < 5; i++)
        ss_make_id(id[i], (unsigned)i);
    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, id[0], 8, &r), CJ_OK);
    CHECK_EQ(st->assign_short_id(st->ctx, id[0], 8, 0, 1, false, &sid[0]),
             CJ_OK);
    /* not looked up: taken at the cursor, after the first one's lease */
    CHECK_EQ(st->assign_short_id(st->ctx, id[1], 8, 0, 1, false, &sid[1]),
             CJ_OK);
    CHECK(sid[1] != sid[0]);
    /* the cursor put back on a leased id: the search must skip both */
    CHECK_EQ(st->lookup(st->ctx, id[2], 8, &r), CJ_OK);
    set_cursor(db, sid[0]);
    CHECK_EQ(st->assign_short_id(st->ctx, id[2], 8, 0, 1, false, &sid[2]),
             CJ_OK);
    CHECK(sid[2] != sid[0] && sid[2] != sid[1]);
    /* a deferred lease, then a fresh one for the same pledge */
    CHECK_EQ(st->lookup(st->ctx, id[3], 8, &r), CJ_OK);
    CHECK_EQ(st->assign_short_id(st->ctx, id[3], 8, 0, 1, false, &sid[3]),
             CJ_OK);
    CHECK_EQ(st->assign_short_id(st->ctx, id[3], 8, 0, 1, false, &again),
             CJ_OK);
    CHECK_EQ(again, sid[3]); /* a live lease is kept */
    CHECK_EQ(st->assign_short_id(st->ctx, id[3], 8, 0, 1, true, &sid[3]),
             CJ_OK);
    CHECK(sid[3] != again);
    CHECK_EQ(st->lookup(st->ctx, id[4], 8, &r), CJ_OK);
    CHECK_EQ(st->assign_short_id(st->ctx, id[4], 8, 0, 1, false, &sid[4]),
             CJ_OK);
    /* the store's reads in the batch see the deferred lease (the next
     * statement that reads the row writes it first) */
    CHECK_EQ(st->lookup(st->ctx, id[4], 8, &r), CJ_OK);
    CHECK_EQ(r.short_id, sid[4]);
    CHECK_EQ(sql_int(db, "SELECT count(DISTINCT short_id) FROM pledges"
                         " WHERE lease_until IS NOT NULL"),
             5);
    CHECK_EQ(cj_sqlite_commit(db), CJ_OK);
    CHECK_EQ(sql_int(db, "SELECT count(DISTINCT short_id) FROM pledges"
                         " WHERE lease_until IS NOT NULL"),
             5);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(st->lookup(st->ctx, id[i], 8, &r), CJ_OK);
        CHECK_EQ(r.short_id, sid[i]);
    }
    cj_sqlite_close(db);
    tmp_cleanup();
}

/* Schema 4: a pledge's derived OSCORE material is written with its PSK
 * and read back by lookup; rows of a version-3 file have none until
 * then, and lookup says so (the engine derives on load). */
TEST(sqlite_okm_kept_and_migrated)
{
    ss_okm_kept_and_migrated(&sq,
                             V9_INDEXES
                             "DROP TABLE retired_psks; DROP INDEX pledges_psk;"
                             " ALTER TABLE pledges DROP COLUMN okm;"
                             " ALTER TABLE pledges DROP COLUMN must_recover;"
                             " ALTER TABLE network DROP COLUMN campaign_owner;"
                             " ALTER TABLE network DROP COLUMN campaign_alive;"
                             " DELETE FROM schema_version WHERE version >= 4",
                             "UPDATE pledges SET okm = zeroblob(44) WHERE seq = 2");
}

/* A reader (cojp jrc list, derive) writes nothing while the schema is
 * current: it neither waits for a serving JRC's write lock nor takes a
 * session number, and it never creates a file; an older file it
 * migrates like any opener. */
TEST(sqlite_reader_writes_nothing)
{
    cj_sqlite_t *w, *r;
    cj_jrc_pledge_t rec;
    uint8_t id[8];
    uint64_t s1;

    tmp_setup();
    CHECK_EQ(cj_sqlite_open_as(&r, dbpath, true, NULL, 0), CJ_ERR_STORAGE);
    CHECK(r == NULL);
    CHECK(access(dbpath, F_OK) != 0);

    w = ss_open(&sq);
    ss_add_n(&sq, w, 3);
    s1 = cj_sqlite_session(w);
    /* the writer holds the write lock with a change not yet committed */
    CHECK_EQ(cj_sqlite_begin(w), CJ_OK);
    CHECK_EQ(sqlite3_exec(cj_sqlite_raw(w), "UPDATE registry_state SET sessions = sessions",
                          NULL, NULL, NULL),
             SQLITE_OK);
    /* an opener that wants the write lock fails here with CJ_ERR_BUSY */
    CHECK_EQ(cj_sqlite_open_as(&r, dbpath, true, NULL, 0), CJ_OK);
    ss_make_id(id, 1);
    CHECK_EQ(cj_sqlite_store(r)->lookup(cj_sqlite_store(r)->ctx, id, 8, &rec), CJ_OK);
    CHECK_EQ(cj_sqlite_session(r), 0);
    cj_sqlite_close(r);
    CHECK_EQ(cj_sqlite_commit(w), CJ_OK);
    cj_sqlite_close(w);
    w = ss_open(&sq);
    CHECK_EQ(cj_sqlite_session(w), s1 + 1); /* the reader took none */

    /* a file one schema version behind: the reader brings it up to date */
    CHECK_EQ(sqlite3_exec(cj_sqlite_raw(w),
                          "DROP TABLE retired_psks;"
                          " DELETE FROM schema_version WHERE version = 6",
                          NULL, NULL, NULL),
             SQLITE_OK);
    cj_sqlite_close(w);
    CHECK_EQ(cj_sqlite_open_as(&r, dbpath, true, NULL, 0), CJ_OK);
    CHECK_EQ(sql_int(r, "SELECT max(version) FROM schema_version"), CJ_SQLITE_SCHEMA_VERSION);
    CHECK_EQ(cj_sqlite_store(r)->lookup(cj_sqlite_store(r)->ctx, id, 8, &rec), CJ_OK);
    cj_sqlite_close(r);
    tmp_cleanup();
}

/* The registry holds PSKs: a file it creates is its owner's only, and
 * so are the WAL and shared-memory files SQLite adds; a file that exists
 * keeps the mode its owner gave it. */
TEST(sqlite_new_registry_owner_only)
{
    cj_sqlite_t *db;
    struct stat st;
    char wal[160];

    tmp_setup();
    db = ss_open(&sq);
    ss_add_n(&sq, db, 2);
    CHECK_EQ(stat(dbpath, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    CHECK_EQ(stat(wal, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    cj_sqlite_close(db);
    CHECK_EQ(chmod(dbpath, 0640), 0);
    db = ss_open(&sq);
    CHECK_EQ(stat(dbpath, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0640);
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

/* ---- pipelined group commit (store/sqlite.h) ------------------------------- */

/* A sync hook the test drives: call k (0-based) blocks until the test
 * allows it (allowed > k) and then succeeds, or fails when k is fail_at. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, allowed, fail_at, finished;
} gate_t;

static int gated_sync(void *arg, int fd)
{
    gate_t *g = arg;
    int k, rc;
    pthread_mutex_lock(&g->mu);
    k = g->started++;
    pthread_cond_broadcast(&g->cv);
    while (g->allowed <= k)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    rc = k == g->fail_at ? -1 : fdatasync(fd);
    pthread_mutex_lock(&g->mu);
    g->finished++;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    return rc;
}

static void gate_allow(gate_t *g, int n)
{
    pthread_mutex_lock(&g->mu);
    g->allowed = n;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void gate_wait_started(gate_t *g, int n)
{
    pthread_mutex_lock(&g->mu);
    while (g->started < n)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_wait_finished(gate_t *g, int n)
{
    pthread_mutex_lock(&g->mu);
    while (g->finished < n)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static bool fd_readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

/* One batch: raise pledge i's reserved sequence numbers to v. */
static uint64_t async_batch(cj_sqlite_t *db, unsigned i, uint64_t v)
{
    const cj_jrc_store_t *st = cj_sqlite_store(db);
    uint8_t id[8];
    uint64_t t = 0;
    ss_make_id(id, i);
    CHECK_EQ(cj_sqlite_begin_async(db), CJ_OK);
    CHECK_EQ(ss_raise_ssn(st, st->ctx, id, v), CJ_OK);
    CHECK_EQ(cj_sqlite_commit_async(db, &t), CJ_OK);
    return t;
}

/* A batch's ticket is reported durable only after a sync that started
 * after its COMMIT completed: never while that sync is held back, never
 * by a sync that was already running when it committed; a failed sync
 * loses every batch it was to cover, and the handle recovers. */
TEST(sqlite_pipeline_releases_only_after_sync)
{
    gate_t g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 1, 0};
    cj_sqlite_t *db;
    uint64_t t1, t2, t3, t4, d = 99;

    tmp_setup();
    db = ss_open(&sq);
    ss_add_n(&sq, db, 4);
    CHECK_EQ(cj_sqlite_sync_fd(db), -1);
    CHECK_EQ(cj_sqlite_pipeline(db, gated_sync, &g), CJ_OK);
    CHECK_EQ(cj_sqlite_pipeline(db, gated_sync, &g), CJ_ERR_STATE);
    CHECK(cj_sqlite_sync_fd(db) >= 0);
    CHECK_EQ(sql_int(db, "PRAGMA synchronous"), 2); /* FULL between batches */

    t1 = async_batch(db, 0, 10);
    CHECK(t1 > 0);
    CHECK_EQ(sql_int(db, "PRAGMA synchronous"), 2);
    gate_wait_started(&g, 1);
    /* sync 0 (covering t1) is held: batch 2 commits meanwhile */
    t2 = async_batch(db, 1, 20);
    CHECK(t2 > t1);
    CHECK(!fd_readable(cj_sqlite_sync_fd(db), 20));
    CHECK_EQ(cj_sqlite_durable(db, false, &d), CJ_OK);
    CHECK_EQ(d, 0);
    /* sync 0 ends: t1 only (t2 committed after it started) */
    gate_allow(&g, 1);
    gate_wait_started(&g, 2);
    CHECK(fd_readable(cj_sqlite_sync_fd(db), 1000));
    CHECK_EQ(cj_sqlite_durable(db, false, &d), CJ_OK);
    CHECK_EQ(d, t1);
    /* the data of a batch still waiting is visible to the next one */
    CHECK_EQ(sql_int(db, "SELECT ssn_reserved FROM pledges WHERE seq = 2"), 20);

    /* sync 1 (covering t2) fails, t3 committed while it ran: both lost */
    t3 = async_batch(db, 2, 30);
    gate_allow(&g, 2);
    gate_wait_finished(&g, 2);
    CHECK_EQ(cj_sqlite_durable(db, true, &d), CJ_ERR_STORAGE);
    CHECK_EQ(d, t1);
    CHECK(t3 > t2);
    CHECK(strstr(cj_sqlite_errmsg(db), "fdatasync") != NULL);
    /* reported once; the next batch first copies the WAL into the
     * database (checkpoint under synchronous=FULL) and goes on */
    gate_allow(&g, 100);
    t4 = async_batch(db, 3, 40);
    CHECK(t4 > t3);
    CHECK_EQ(cj_sqlite_durable(db, true, &d), CJ_OK);
    CHECK_EQ(d, t4);
    /* a transaction begun async may still end synchronously */
    CHECK_EQ(cj_sqlite_begin_async(db), CJ_OK);
    CHECK_EQ(cj_sqlite_commit(db), CJ_OK);
    CHECK_EQ(cj_sqlite_begin_async(db), CJ_OK);
    CHECK_EQ(cj_sqlite_rollback(db), CJ_OK);
    CHECK_EQ(sql_int(db, "PRAGMA synchronous"), 2);
    cj_sqlite_close(db);

    /* everything reported durable is in the file */
    db = ss_open(&sq);
    CHECK_EQ(sql_int(db, "SELECT ssn_reserved FROM pledges WHERE seq = 1"), 10);
    CHECK_EQ(sql_int(db, "SELECT ssn_reserved FROM pledges WHERE seq = 4"), 40);
    cj_sqlite_close(db);
    tmp_cleanup();
}

/* Real fdatasync, many batches: checkpoints run between batches (the WAL
 * is restarted, not grown without bound) and nothing is lost. */
TEST(sqlite_pipeline_checkpoints_and_keeps_everything)
{
    cj_sqlite_t *db;
    uint64_t t = 0, d = 0;
    long long wal_max = 0;

    tmp_setup();
    db = ss_open(&sq);
    ss_add_n(&sq, db, 50);
    CHECK_EQ(cj_sqlite_pipeline(db, NULL, NULL), CJ_OK);
    for (unsigned k = 1; k <= 600; k++) {
        t = async_batch(db, k % 50, k);
        if (k % 50 == 0) {
            char p[160];
            FILE *f;
            snprintf(p, sizeof p, "%s-wal", dbpath);
            if ((f = fopen(p, "rb")) != NULL) {
                fseek(f, 0, SEEK_END);
                if (ftell(f) > wal_max)
                    wal_max = ftell(f);
                fclose(f);
            }
        }
        CHECK_EQ(cj_sqlite_durable(db, false, &d), CJ_OK);
        CHECK(d <= t);
    }
    CHECK_EQ(cj_sqlite_durable(db, true, &d), CJ_OK);
    CHECK_EQ(d, t);
    /* 1000 frames of 4 KiB and a little: checkpoints kept it bounded */
    CHECK(wal_max > 0 && wal_max < 8 * 1024 * 1024);
    cj_sqlite_close(db);
    db = ss_open(&sq);
    /* pledge j last raised by batch 550 + j (j = 0: batch 600) */
    CHECK_EQ(sql_int(db, "SELECT sum(ssn_reserved) FROM pledges"),
             600 + 49 * 550 + 49 * 50 / 2);
    cj_sqlite_close(db);
    tmp_cleanup();
}
