/*
 * The SQLite store (store/sqlite.h) under I/O failures of the file
 * itself.  A VFS shim, SQLite's default VFS while a test runs, forwards
 * to the "unix" VFS and fails the Nth open, read, write, sync or truncate
 * after it was armed, with SQLITE_IOERR_* or SQLITE_FULL, once or from
 * then on.  Each scenario runs once per fault point (N = 1, 2, ... until
 * the operation ends without reaching the fault), every run from the
 * same file image.  Then the faults stop and the file is checked as a
 * later reader sees it: it opens, passes PRAGMA integrity_check and
 * holds exactly what the calls that succeeded wrote and nothing of those
 * that failed (store/sqlite.h, cojp/jrc.h store contract).  Every call
 * must return success or one of its documented errors, and the handle
 * that met the fault must work again once the faults stop.
 *
 * The shim's xSync counts (and fails) but does not reach the disk: what
 * is checked is what SQLite and the store report and keep, not survival
 * of power loss, and a few thousand runs must stay fast.
 */
#include <fcntl.h>
#include <stdatomic.h>
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

/* ---- the shim ---------------------------------------------------------------- */

enum { FV_OPEN, FV_READ, FV_WRITE, FV_SYNC, FV_TRUNCATE };

typedef struct fault {
    int kind;     /* FV_* */
    int err;      /* what the failing call returns */
    bool persist; /* every later call of the kind fails too */
} fault_t;

/* Every kind with its own I/O error, writes also with a full disk. */
static const fault_t faults[] = {
    {FV_WRITE, SQLITE_IOERR_WRITE, false},  {FV_WRITE, SQLITE_IOERR_WRITE, true},
    {FV_WRITE, SQLITE_FULL, false},         {FV_WRITE, SQLITE_FULL, true},
    {FV_SYNC, SQLITE_IOERR_FSYNC, false},   {FV_SYNC, SQLITE_IOERR_FSYNC, true},
    {FV_READ, SQLITE_IOERR_READ, false},    {FV_READ, SQLITE_IOERR_READ, true},
    {FV_TRUNCATE, SQLITE_IOERR_TRUNCATE, false},
    {FV_TRUNCATE, SQLITE_IOERR_TRUNCATE, true},
    {FV_OPEN, SQLITE_CANTOPEN, false},      {FV_OPEN, SQLITE_CANTOPEN, true},
};
#define N_FAULTS (sizeof faults / sizeof faults[0])

/* Runs of one fault beyond which a scenario is taken to loop. */
#define MAX_POINTS 400

static struct {
    sqlite3_vfs vfs;
    sqlite3_vfs *real;
    bool armed;
    fault_t f;
    unsigned at;    /* the at-th call of kind f.kind after arming fails */
    unsigned calls; /* calls of that kind since arming */
    unsigned hits;  /* failures injected since arming */
} fv;

typedef struct fv_file {
    sqlite3_file base;
    sqlite3_file *real; /* the unix VFS's file, right after this struct */
} fv_file_t;

#define REAL(f) (((fv_file_t *)(f))->real)

static int fv_fail(int kind)
{
    if (!fv.armed || kind != fv.f.kind)
        return SQLITE_OK;
    fv.calls++;
    if (fv.calls == fv.at || (fv.f.persist && fv.calls > fv.at)) {
        fv.hits++;
        return fv.f.err;
    }
    return SQLITE_OK;
}

static int fv_close(sqlite3_file *f)
{
    return REAL(f)->pMethods->xClose(REAL(f));
}

static int fv_read(sqlite3_file *f, void *b, int n, sqlite3_int64 off)
{
    int rc = fv_fail(FV_READ);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xRead(REAL(f), b, n, off);
}

static int fv_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 off)
{
    int rc = fv_fail(FV_WRITE);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xWrite(REAL(f), b, n, off);
}

static int fv_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    int rc = fv_fail(FV_TRUNCATE);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int fv_sync(sqlite3_file *f, int flags)
{
    (void)f;
    (void)flags;
    return fv_fail(FV_SYNC); /* see the top of the file */
}

static int fv_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int fv_lock(sqlite3_file *f, int level)
{
    return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int fv_unlock(sqlite3_file *f, int level)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int fv_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int fv_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int fv_sector(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int fv_device(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int fv_shm_map(sqlite3_file *f, int pg, int sz, int extend,
                      void volatile **p)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, p);
}

static int fv_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void fv_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int fv_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int fv_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **p)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, p);
}

static int fv_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods fv_io = {
    3,           fv_close,    fv_read,        fv_write,     fv_truncate,
    fv_sync,     fv_size,     fv_lock,        fv_unlock,    fv_reserved,
    fv_control,  fv_sector,   fv_device,      fv_shm_map,   fv_shm_lock,
    fv_shm_barrier, fv_shm_unmap, fv_fetch,   fv_unfetch,
};

static int fv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
                   int flags, int *out_flags)
{
    fv_file_t *p = (fv_file_t *)f;
    int rc;

    (void)vfs;
    p->base.pMethods = NULL;
    p->real = (sqlite3_file *)(p + 1);
    if ((rc = fv_fail(FV_OPEN)) != SQLITE_OK)
        return rc;
    rc = fv.real->xOpen(fv.real, name, p->real, flags, out_flags);
    /* SQLite closes a file whose methods are set, even after a failure */
    if (p->real->pMethods != NULL) {
        CHECK(p->real->pMethods->iVersion >= 3);
        p->base.pMethods = &fv_io;
    }
    return rc;
}

static int fv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return fv.real->xDelete(fv.real, name, sync_dir);
}

static int fv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return fv.real->xAccess(fv.real, name, flags, out);
}

static int fv_full_path(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return fv.real->xFullPathname(fv.real, name, n, out);
}

/* Make the shim the default VFS (the other methods of the unix VFS do
 * not look at their VFS argument and are taken as they are). */
static void fv_install(void)
{
    memset(&fv, 0, sizeof fv);
    fv.real = sqlite3_vfs_find("unix");
    CHECK(fv.real != NULL && fv.real == sqlite3_vfs_find(NULL));
    fv.vfs = *fv.real;
    fv.vfs.pNext = NULL;
    fv.vfs.zName = "cojp-faults";
    fv.vfs.szOsFile = (int)sizeof(fv_file_t) + fv.real->szOsFile;
    fv.vfs.xOpen = fv_open;
    fv.vfs.xDelete = fv_delete;
    fv.vfs.xAccess = fv_access;
    fv.vfs.xFullPathname = fv_full_path;
    CHECK_EQ(sqlite3_vfs_register(&fv.vfs, 1), SQLITE_OK);
}

static void fv_remove(void)
{
    CHECK_EQ(sqlite3_vfs_unregister(&fv.vfs), SQLITE_OK);
    CHECK(sqlite3_vfs_find(NULL) == fv.real);
}

static void fv_arm(const fault_t *f, unsigned at)
{
    fv.f = *f;
    fv.at = at;
    fv.calls = fv.hits = 0;
    fv.armed = true;
}

/* Stop injecting; whether the fault was reached. */
static bool fv_disarm(void)
{
    fv.armed = false;
    return fv.hits > 0;
}

/* ---- files and what a later reader sees -------------------------------------- */

static const ss_backend_t *B;
#define PATH ss_sqlite_path()
#define NOW 100000000u /* ms, the engine's clock in these scenarios */
#define HOUR 3600000u

static uint8_t *img;
static size_t img_len;

static void rm_files(void)
{
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    char p[192];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", PATH, sfx[i]);
        unlink(p);
    }
}

/* Keep the registry file as the image every run starts from (every
 * handle closed: the WAL is folded into the file and removed). */
static void img_save(void)
{
    char p[192];
    FILE *f = fopen(PATH, "rb");
    long n;

    snprintf(p, sizeof p, "%s-wal", PATH);
    CHECK(access(p, F_OK) != 0);
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    free(img);
    img = malloc((size_t)n);
    CHECK(img != NULL && n > 0);
    img_len = fread(img, 1, (size_t)n, f);
    CHECK_EQ(img_len, n);
    fclose(f);
}

static void img_restore(void)
{
    FILE *f;
    rm_files();
    f = fopen(PATH, "wb");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    CHECK_EQ(fwrite(img, 1, img_len, f), img_len);
    fclose(f);
}

static void img_free(void)
{
    free(img);
    img = NULL;
    img_len = 0;
}

/* A connection of another program (through the shim, never armed
 * while it is open). */
static sqlite3 *raw_open(void)
{
    sqlite3 *r = NULL;
    CHECK(!fv.armed);
    CHECK_EQ(sqlite3_open_v2(PATH, &r, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                             NULL),
             SQLITE_OK);
    return r;
}

/* The first column of the first row as a string ("" for no row or
 * NULL, "error: ..." when the query failed); free() it. */
static char *raw_text(sqlite3 *r, const char *sql)
{
    sqlite3_stmt *q;
    const char *t = "";
    char *out;
    int rc = sqlite3_prepare_v2(r, sql, -1, &q, NULL);

    if (rc != SQLITE_OK) {
        out = malloc(strlen(sqlite3_errmsg(r)) + 8);
        sprintf(out, "error: %s", sqlite3_errmsg(r));
        return out;
    }
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW && sqlite3_column_text(q, 0) != NULL)
        t = (const char *)sqlite3_column_text(q, 0);
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        t = "error: step";
    out = strdup(t);
    sqlite3_finalize(q);
    return out;
}

static long long raw_int(sqlite3 *r, const char *sql)
{
    char *t = raw_text(r, sql);
    long long v = strncmp(t, "error", 5) == 0 ? -2 : atoll(t);
    free(t);
    return v;
}

static bool raw_ok(sqlite3 *r)
{
    char *t = raw_text(r, "PRAGMA integrity_check");
    bool ok = strcmp(t, "ok") == 0;
    free(t);
    return ok && raw_int(r, "SELECT count(*) FROM pragma_foreign_key_check") == 0;
}

/* Everything of a schema-4 registry but what comes from the wall clock
 * (queued_at, updated_at, applied_at, the outcome's at, evicted_at's
 * value), the session counter (every open takes one) and the short-id
 * cursor (where a search starts; a lost cursor write is allowed and
 * costs a search): pledges, pending operations, network row, outcomes,
 * schema versions.  Pledge skip (its seq) is left out. */
static char *dump(sqlite3 *r, int skip)
{
    char *sql = sqlite3_mprintf(
        "SELECT coalesce((SELECT group_concat(x, ' | ') FROM (SELECT"
        " hex(id) || ',' || seq || ',' || hex(psk) || ',' || allowed_roles"
        " || ',' || ssn_reserved || ',' || replay_highest || ','"
        " || replay_bitmap || ',' || replay_valid || ',' || quote(id_context)"
        " || ',' || joined || ',' || role || ',' || short_id || ','"
        " || quote(lease_until) || ',' || quote(joined_at) || ','"
        " || quote(address) || ',' || (evicted_at IS NOT NULL) || ','"
        " || quote(repeat_cache) || ',' || quote(okm) AS x"
        " FROM pledges WHERE seq <> %d ORDER BY seq)), '')"
        " || ' # ' || coalesce((SELECT group_concat(x, ' | ') FROM (SELECT"
        " seq || ',' || kind || ',' || quote(pledge) || ',' || quote(key) AS x"
        " FROM pending_ops ORDER BY seq)), '')"
        " || ' # ' || coalesce((SELECT quote(network_id) || ',' || hex(keys)"
        " || ',' || quote(jrc_address) || ',' || quote(join_rate) || ','"
        " || lease_hours || ',' || next_campaign FROM network), '')"
        " || ' # ' || coalesce((SELECT group_concat(x, ' | ') FROM (SELECT"
        " session || ',' || campaign || ',' || hex(pledge) || ',' || acked AS x"
        " FROM updates ORDER BY rowid)), '')"
        " || ' # ' || (SELECT group_concat(version) FROM"
        " (SELECT version FROM schema_version ORDER BY version))",
        skip);
    char *t = raw_text(r, sql);
    sqlite3_free(sql);
    return t;
}

/* The registry as connection r sees it: it passes integrity_check, the
 * short-id cursor is in range, and its dump (less pledge skip). */
static char *checked_dump(sqlite3 *r, int skip)
{
    char *t;
    CHECK(raw_ok(r));
    CHECK_EQ(raw_int(r, "SELECT next_short BETWEEN 1 AND 65533 FROM registry_state"), 1);
    t = dump(r, skip);
    CHECK(strncmp(t, "error", 5) != 0);
    return t;
}

/* The file as another program sees it. */
static char *file_dump(int skip)
{
    sqlite3 *r = raw_open();
    char *t = checked_dump(r, skip);
    sqlite3_close(r);
    return t;
}

static cj_sqlite_t *open_ok(void);

/* The file as the store opens it again. */
static char *reopen_dump(int skip)
{
    cj_sqlite_t *db = open_ok();
    char *t = checked_dump(cj_sqlite_raw(db), skip);
    cj_sqlite_close(db);
    return t;
}

/* got must equal want; on failure both are printed from a little before
 * where they first differ. */
static void check_same(const char *got, const char *want, const char *what,
                       const fault_t *f, unsigned n)
{
    size_t i = 0;
    if (strcmp(got, want) == 0)
        return;
    while (got[i] != '\0' && got[i] == want[i])
        i++;
    i = i > 60 ? i - 60 : 0;
    cj_test_failf(__FILE__, __LINE__,
                  "%s: fault kind %d err %d%s at %u:\n      got  ...%.300s\n"
                  "      want ...%.300s",
                  what, f->kind, f->err, f->persist ? " persistent" : "", n,
                  got + i, want + i);
}

static cj_sqlite_t *open_ok(void)
{
    cj_sqlite_t *db = NULL;
    CHECK_EQ(cj_sqlite_open(&db, PATH), CJ_OK);
    return db;
}

/* A result a call may give under I/O failures. */
static bool io_result(int r)
{
    return r == CJ_OK || r == CJ_ERR_STORAGE;
}

/* Run scenario step once per fault point of every fault; returns the
 * number of runs in which a fault was injected.  step arms the shim
 * itself (fv_arm(f, n)) around the operation under test and returns
 * whether the fault was reached (fv_disarm()). */
static unsigned fault_sweep(bool (*step)(const fault_t *f, unsigned n))
{
    unsigned points = 0;
    for (size_t i = 0; i < N_FAULTS; i++) {
        unsigned n;
        for (n = 1; n <= MAX_POINTS && step(&faults[i], n); n++)
            points++;
        CHECK(n <= MAX_POINTS);
    }
    return points;
}

static void scenario_begin(void)
{
    B = ss_sqlite_backend();
    B->fresh();
    fv_install();
}

static void scenario_end(void)
{
    fv_remove();
    img_free();
    B->cleanup();
}

/* ---- creating a registry -------------------------------------------------------- */

/* cj_sqlite_open on a path with no file: the schema is created whole or
 * not at all. */
static char *created; /* dump of a freshly created registry */

static bool create_step(const fault_t *f, unsigned n)
{
    cj_sqlite_t *db = (cj_sqlite_t *)&db; /* must become NULL on failure */
    sqlite3 *r;
    uint8_t id[8], psk[16];
    bool hit;
    long long tables;
    char *t;
    int rc;

    rm_files();
    fv_arm(f, n);
    rc = cj_sqlite_open(&db, PATH);
    hit = fv_disarm();
    CHECK(rc == CJ_OK || rc == CJ_ERR_STORAGE);
    if (rc != CJ_OK)
        CHECK(db == NULL);
    else {
        /* the handle works once the faults stop */
        ss_make_id(id, 1);
        ss_make_psk(psk, 1);
        CHECK_EQ(cj_sqlite_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
        cj_sqlite_close(db);
    }

    /* no file, an empty one, or the whole schema */
    r = raw_open();
    CHECK(raw_ok(r));
    tables = raw_int(r, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                        " AND name NOT LIKE 'sqlite_%'");
    if (rc == CJ_OK || tables != 0) {
        CHECK_EQ(tables, 7);
        t = dump(r, 1);
        check_same(t, created, "created registry", f, n);
        free(t);
        CHECK(raw_int(r, "SELECT sessions FROM registry_state") >= 1);
    }
    sqlite3_close(r);
    db = open_ok();
    CHECK_EQ(B->sql_int(db, "SELECT max(version) FROM schema_version"),
             CJ_SQLITE_SCHEMA_VERSION);
    cj_sqlite_close(db);
    return hit;
}

TEST(sqlite_faults_create)
{
    cj_sqlite_t *db;
    unsigned points;

    scenario_begin();
    db = open_ok();
    cj_sqlite_close(db);
    created = file_dump(1);
    points = fault_sweep(create_step);
    CHECK(points >= 20);
    free(created);
    scenario_end();
}

/* ---- provisioning ---------------------------------------------------------------- */

/* A CSV import (one transaction), then a group transaction of adds, on
 * an empty registry: each lands whole or not at all, and exactly when
 * it reported success. */
static char *prov_want[4]; /* dumps: neither, CSV only, adds only, both */

static void prov_run(cj_sqlite_t *db, int *csv_rc, int *tx_rc)
{
    char csv[1024];
    size_t o = 0, bad = 9, count = 9;
    uint8_t id[8], psk[16];

    for (unsigned i = 0; i < 8; i++) {
        ss_make_id(id, i);
        ss_make_psk(psk, i);
        for (int k = 0; k < 8; k++)
            o += (size_t)sprintf(csv + o, "%02x", id[k]);
        csv[o++] = ',';
        for (int k = 0; k < 16; k++)
            o += (size_t)sprintf(csv + o, "%02x", psk[k]);
        o += (size_t)sprintf(csv + o, "%s\n", i == 3 ? ",6lbr" : "");
    }
    *csv_rc = cj_sqlite_import_csv(db, csv, o, &bad, &count);
    CHECK(io_result(*csv_rc));
    if (*csv_rc == CJ_OK)
        CHECK_EQ(count, 8);
    else
        CHECK_EQ(bad, 0);
    *tx_rc = cj_sqlite_begin(db);
    CHECK(io_result(*tx_rc));
    if (*tx_rc != CJ_OK)
        return;
    for (unsigned i = 8; i < 14; i++) {
        int r;
        ss_make_id(id, i);
        ss_make_psk(psk, i);
        r = cj_sqlite_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE);
        CHECK(io_result(r));
        if (r != CJ_OK)
            *tx_rc = r; /* the host drops a batch in which one failed */
    }
    if (*tx_rc == CJ_OK)
        *tx_rc = cj_sqlite_commit(db);
    else
        CHECK_EQ(cj_sqlite_rollback(db), CJ_OK);
    CHECK(io_result(*tx_rc));
}

static bool prov_step(const fault_t *f, unsigned n)
{
    cj_sqlite_t *db;
    uint8_t id[8], psk[16];
    int csv_rc, tx_rc, extra;
    bool hit;
    char *got, *again;

    img_restore();
    db = open_ok();
    fv_arm(f, n);
    prov_run(db, &csv_rc, &tx_rc);
    hit = fv_disarm();
    got = file_dump(99);
    check_same(got, prov_want[(csv_rc == CJ_OK) + 2 * (tx_rc == CJ_OK)],
               "provisioning", f, n);
    /* the handle recovers: one more pledge */
    ss_make_id(id, 99);
    ss_make_psk(psk, 99);
    CHECK_EQ(cj_sqlite_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    extra = (int)B->sql_int(db, "SELECT seq FROM pledges"
                                " WHERE id = x'00124b0000000063'");
    CHECK(extra > 0);
    cj_sqlite_close(db);
    /* and the file opens with everything as seen before */
    again = reopen_dump(extra);
    check_same(again, got, "provisioning, reopened", f, n);
    free(again);
    free(got);
    return hit;
}

TEST(sqlite_faults_provision)
{
    cj_sqlite_t *db;
    unsigned points;
    int a, b;

    scenario_begin();
    db = open_ok();
    cj_sqlite_close(db);
    img_save();
    /* the four outcomes, fault-free: both, then each alone by undoing */
    for (int want = 0; want < 4; want++) {
        img_restore();
        db = open_ok();
        prov_run(db, &a, &b);
        CHECK_EQ(a, CJ_OK);
        CHECK_EQ(b, CJ_OK);
        if (!(want & 1))
            CHECK(B->sql_try(db, "DELETE FROM pledges WHERE seq <= 8;"
                                 " UPDATE pledges SET seq = seq - 8"));
        if (!(want & 2))
            CHECK(B->sql_try(db, "DELETE FROM pledges WHERE hex(id) >="
                                 " '00124B0000000008'"));
        cj_sqlite_close(db);
        prov_want[want] = file_dump(99);
    }
    points = fault_sweep(prov_step);
    CHECK(points >= 20);
    for (int i = 0; i < 4; i++)
        free(prov_want[i]);
    scenario_end();
}

/* ---- admissions ---------------------------------------------------------------- */

/* Pledges 0..5 provisioned, pledge 0 admitted before (short id, join
 * record, 64 sequence numbers, window at 5, repeat cache), pledge 5's
 * lease expired, the short-id cursor on pledge 0's id.  The batch:
 * the admission calls of pledges 1, 0 (again: renewal; the engine has
 * its context cached and does not look it up), 2 and 3 as the engine
 * makes them, each pledge's stopping at its first failure (the engine
 * drops that request and goes on with the next datagram). */
#define ADMIT_CALLS 7
static const unsigned admit_order[] = {1, 0, 2, 3};
#define ADMITTED 4
static unsigned admit_n; /* how many of admit_order are admitted */

/* Call k of pledge i's admission; checks what a successful call gives. */
static int admit_call(const cj_jrc_store_t *st, unsigned i, int k,
                      uint16_t *sid)
{
    cj_jrc_pledge_t rec;
    cj_oscore_replay_t w;
    cj_jrc_repeat_t rep;
    uint64_t first = 99, base = i == 0 ? 64 : 0;
    uint8_t id[8];
    int r = CJ_ERR_INVALID;

    ss_make_id(id, i);
    switch (k) {
    case 0:
        if (i == 0)
            return CJ_OK; /* its context is in the engine's cache */
        r = st->lookup(st->ctx, id, 8, &rec);
        if (r == CJ_OK)
            CHECK(rec.ssn_reserved == base && rec.joined == (i == 0));
        break;
    case 1:
        r = st->accept_piv(st->ctx, id, 8, ss_psk_of(id), NULL, 0, 7 + i, &w);
        if (r == CJ_OK)
            CHECK(w.valid && w.highest == 7 + i);
        break;
    case 2:
        r = st->assign_short_id(st->ctx, id, 8, NOW + i, 1, false, sid);
        if (r == CJ_OK)
            CHECK(*sid >= 1 && *sid <= 0xfffd);
        break;
    case 3:
        r = st->record_join(st->ctx, id, 8, 0, *sid, NOW + i);
        break;
    case 4:
    case 5:
        r = st->reserve_ssn(st->ctx, id, 8, ss_psk_of(id), NULL, 0, 0, 32,
                            &first);
        if (r == CJ_OK)
            CHECK_EQ(first, base + 32 * (uint64_t)(k - 4));
        break;
    case 6:
        ss_repeat_of(i, &rep);
        r = st->save_repeat(st->ctx, id, 8, ss_psk_of(id), NULL, 0, &rep);
        break;
    }
    return r;
}

/* The batch (or, batch false, the same calls each durable on its own),
 * each pledge's calls up to upto[] (ADMIT_CALLS: all) or its first
 * failure; did[] is how many succeeded.  Returns the commit's result
 * (CJ_OK outside a batch). */
static int admit_run(cj_sqlite_t *db, bool batch, const int *upto, int *did)
{
    const cj_jrc_store_t *st = cj_sqlite_store(db);
    int rc = CJ_OK;

    memset(did, 0, ADMITTED * sizeof *did);
    if (batch) {
        rc = cj_sqlite_begin(db);
        CHECK(io_result(rc));
        if (rc != CJ_OK)
            return rc;
    }
    for (unsigned j = 0; j < admit_n; j++) {
        unsigned i = admit_order[j];
        uint16_t sid = 0;
        did[i] = 0;
        while (did[i] < upto[i]) {
            int r = admit_call(st, i, did[i], &sid);
            CHECK(io_result(r));
            if (r != CJ_OK)
                break;
            did[i]++;
        }
    }
    if (batch) {
        rc = cj_sqlite_commit(db);
        CHECK(io_result(rc));
    }
    return rc;
}

static const char *admit_before;
static bool admit_batch;
static bool admit_cold; /* a page cache too small for the registry */

/* The dump of the image's registry with only the given calls made
 * (kept: a scenario asks for few distinct ones, many times). */
static struct {
    int did[ADMITTED];
    char *dump;
} refs[64];
static size_t n_refs;

static const char *admit_reference(const int *did)
{
    cj_sqlite_t *db;
    int again[ADMITTED];

    for (size_t i = 0; i < n_refs; i++)
        if (memcmp(refs[i].did, did, sizeof refs[i].did) == 0)
            return refs[i].dump;
    CHECK(n_refs < sizeof refs / sizeof refs[0]);
    if (n_refs == sizeof refs / sizeof refs[0])
        return "";
    img_restore();
    db = open_ok();
    CHECK_EQ(admit_run(db, admit_batch, did, again), CJ_OK);
    CHECK(memcmp(again, did, sizeof again) == 0);
    cj_sqlite_close(db);
    memcpy(refs[n_refs].did, did, sizeof refs[n_refs].did);
    refs[n_refs].dump = file_dump(5);
    return refs[n_refs++].dump;
}

static void refs_free(void)
{
    for (size_t i = 0; i < n_refs; i++)
        free(refs[i].dump);
    n_refs = 0;
}

static bool admit_step(const fault_t *f, unsigned n)
{
    static const int all[ADMITTED] = {ADMIT_CALLS, ADMIT_CALLS, ADMIT_CALLS,
                                      ADMIT_CALLS};
    cj_sqlite_t *db;
    int did[ADMITTED], rc;
    bool hit;
    char *got, *later;

    img_restore();
    db = open_ok();
    if (admit_cold)
        CHECK(B->sql_try(db, "PRAGMA cache_size = 1"));
    fv_arm(f, n);
    rc = admit_run(db, admit_batch, all, did);
    hit = fv_disarm();
    CHECK(!cj_sqlite_in_transaction(db));

    /* what a later reader sees: a failed batch left nothing; otherwise
     * exactly the calls that returned success */
    got = file_dump(5);
    if (rc != CJ_OK)
        check_same(got, admit_before, "failed admission batch", f, n);
    else
        check_same(got, admit_reference(did), "admission calls", f, n);

    /* the handle recovers: pledge 4 is admitted whole */
    {
        const cj_jrc_store_t *st = cj_sqlite_store(db);
        uint16_t sid = 0;
        CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
        for (int k = 0; k < ADMIT_CALLS; k++)
            CHECK_EQ(admit_call(st, 4, k, &sid), CJ_OK);
        CHECK_EQ(cj_sqlite_commit(db), CJ_OK);
    }
    CHECK_EQ(B->sql_int(db, "SELECT joined + ssn_reserved + (lease_until IS NOT NULL)"
                            " FROM pledges WHERE seq = 5"),
             66);
    cj_sqlite_close(db);
    later = reopen_dump(5);
    check_same(later, got, "admissions, reopened", f, n);
    free(later);
    free(got);
    return hit;
}

static void admissions(bool batch, bool cold, unsigned n)
{
    static const int none[ADMITTED] = {0};
    const cj_jrc_store_t *st;
    cj_sqlite_t *db;
    cj_oscore_replay_t w;
    cj_jrc_repeat_t rep;
    uint8_t id[8];
    uint64_t first = 0;
    uint16_t sid = 0;
    unsigned points;

    scenario_begin();
    admit_batch = batch;
    admit_cold = cold;
    admit_n = n;
    db = open_ok();
    st = cj_sqlite_store(db);
    ss_add_n(B, db, 6);
    ss_make_id(id, 5);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, NOW - 3 * HOUR, 1, false, &sid),
             CJ_OK);
    ss_make_id(id, 0);
    ss_repeat_of(0, &rep);
    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    CHECK_EQ(st->accept_piv(st->ctx, id, 8, ss_psk_of(id), NULL, 0, 5, &w),
             CJ_OK);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, NOW, 1, false, &sid), CJ_OK);
    CHECK_EQ(st->record_join(st->ctx, id, 8, 0, sid, NOW), CJ_OK);
    CHECK_EQ(
        st->reserve_ssn(st->ctx, id, 8, ss_psk_of(id), NULL, 0, 0, 64, &first),
        CJ_OK);
    CHECK_EQ(st->save_repeat(st->ctx, id, 8, ss_psk_of(id), NULL, 0, &rep),
             CJ_OK);
    CHECK_EQ(cj_sqlite_commit(db), CJ_OK);
    /* the cursor on pledge 0's id: the batch's first assignment sweeps
     * pledge 5's expired lease and searches */
    B->set_cursor(db, sid);
    cj_sqlite_close(db);
    img_save();
    admit_before = admit_reference(none);
    points = fault_sweep(admit_step);
    CHECK(points >= 30); /* 34 for the batch: one write per page touched */
    refs_free();
    scenario_end();
}

TEST(sqlite_faults_admission_batch) { admissions(true, false, ADMITTED); }
/* Each call durable on its own: two pledges' calls (one a renewal) are
 * enough for every path and keep the many commits' fault points few. */
TEST(sqlite_faults_admission_calls) { admissions(false, false, 2); }
/* A registry larger than the page cache: reads fail in the middle of a
 * batch too. */
TEST(sqlite_faults_admission_batch_cold) { admissions(true, true, ADMITTED); }

/* ---- pipelined group commit ------------------------------------------------------ */

/* The helper thread's sync: fails once when asked to, else succeeds
 * without reaching the disk (as the shim's xSync). */
static atomic_int sync_fail;

static int pp_sync(void *arg, int fd)
{
    (void)arg;
    (void)fd;
    return atomic_exchange(&sync_fail, 0) ? -1 : 0;
}

/* One asynchronous batch: pledge i looked up (so its writes wait for
 * the commit), its mark raised to v and a short id for it, committed
 * whatever the calls returned (as the daemon does).  The ticket, or 0
 * when the batch is lost; *ok tells which calls succeeded (1: the
 * mark, 2: the lease). */
static uint64_t pp_batch(cj_sqlite_t *db, unsigned i, uint64_t v, int *ok)
{
    const cj_jrc_store_t *st = cj_sqlite_store(db);
    cj_jrc_pledge_t rec;
    uint8_t id[8];
    uint16_t sid;
    uint64_t t = 0;
    int r;

    *ok = 0;
    ss_make_id(id, i);
    r = cj_sqlite_begin_async(db);
    CHECK(io_result(r));
    if (r != CJ_OK)
        return 0;
    CHECK(io_result(st->lookup(st->ctx, id, 8, &rec)));
    r = ss_raise_ssn(st, st->ctx, id, v);
    CHECK(io_result(r));
    *ok |= r == CJ_OK ? 1 : 0;
    r = st->assign_short_id(st->ctx, id, 8, NOW, 1, false, &sid);
    CHECK(io_result(r));
    *ok |= r == CJ_OK ? 2 : 0;
    r = cj_sqlite_commit_async(db, &t);
    CHECK(io_result(r));
    if (r != CJ_OK)
        *ok = 0;
    return r == CJ_OK ? t : 0;
}

/* What pledge i's row must show after a batch with outcome ok. */
static void pp_expect(char *out, unsigned i, uint64_t v, int ok)
{
    sprintf(out + strlen(out), "%s%u:%llu:%d", *out ? " " : "", i,
            (unsigned long long)(ok & 1 ? v : 0), (ok & 2) != 0);
}

#define PP_ROWS "SELECT group_concat(x, ' ') FROM (SELECT (seq - 1) || ':'"    \
                " || ssn_reserved || ':' || (lease_until IS NOT NULL) AS x" \
                " FROM pledges ORDER BY seq)"

/* The rows as a reader of the reopened file sees them. */
static char *pp_rows(void)
{
    cj_sqlite_t *db = open_ok();
    char *t;
    CHECK_EQ(B->sql_int(db, "SELECT count(*) FROM pragma_integrity_check"
                            " WHERE integrity_check = 'ok'"),
             1);
    t = raw_text(cj_sqlite_raw(db), PP_ROWS);
    cj_sqlite_close(db);
    return t;
}

/* Faults in the batches: each one committed wholly (and durable once
 * reported so) or not at all, and the handle goes on afterwards. */
static bool pp_step(const fault_t *f, unsigned n)
{
    cj_sqlite_t *db;
    uint64_t t[5] = {0}, d = 0;
    int ok[5] = {0};
    char want[128] = "";
    char *got;
    bool hit;

    img_restore();
    db = open_ok();
    CHECK_EQ(cj_sqlite_pipeline(db, pp_sync, NULL), CJ_OK);
    t[0] = pp_batch(db, 0, 10, &ok[0]);
    CHECK(t[0] > 0 && ok[0] == 3);
    fv_arm(f, n);
    for (unsigned i = 1; i < 4; i++)
        t[i] = pp_batch(db, i, 10 * (i + 1), &ok[i]);
    CHECK_EQ(cj_sqlite_durable(db, true, &d), CJ_OK);
    hit = fv_disarm();
    for (unsigned i = 0; i < 4; i++)
        CHECK(t[i] <= d);
    /* the handle goes on */
    t[4] = pp_batch(db, 4, 50, &ok[4]);
    CHECK(t[4] > d && ok[4] == 3);
    CHECK_EQ(cj_sqlite_durable(db, true, &d), CJ_OK);
    CHECK_EQ(d, t[4]);
    cj_sqlite_close(db);
    for (unsigned i = 0; i < 5; i++)
        pp_expect(want, i, 10 * (i + 1), ok[i]);
    got = pp_rows();
    check_same(got, want, "pipelined batches", f, n);
    free(got);
    return hit;
}

/* A failed fdatasync, then faults in the recovery (the WAL copied into
 * the database and cut under synchronous=FULL) that the next write
 * runs: until it has worked no write commits, and it is tried again. */
static bool pp_recover_step(const fault_t *f, unsigned n)
{
    const cj_jrc_store_t *st;
    cj_sqlite_t *db;
    uint64_t t[5] = {0}, d = 0;
    int ok[5] = {0}, r;
    uint8_t id[8];
    char want[128] = "", alt[128] = "";
    char *got;
    bool hit;

    img_restore();
    db = open_ok();
    st = cj_sqlite_store(db);
    CHECK_EQ(cj_sqlite_pipeline(db, pp_sync, NULL), CJ_OK);
    t[0] = pp_batch(db, 0, 10, &ok[0]);
    CHECK_EQ(cj_sqlite_durable(db, true, &d), CJ_OK);
    atomic_store(&sync_fail, 1);
    t[1] = pp_batch(db, 1, 20, &ok[1]);
    CHECK(t[1] > t[0] && ok[1] == 3);
    CHECK_EQ(cj_sqlite_durable(db, true, &d), CJ_ERR_STORAGE);
    CHECK_EQ(d, t[0]);

    fv_arm(f, n);
    t[2] = pp_batch(db, 2, 30, &ok[2]);
    /* a write outside a batch needs the recovery too */
    ss_make_id(id, 3);
    r = ss_raise_ssn(st, st->ctx, id, 40);
    CHECK(io_result(r));
    ok[3] = r == CJ_OK ? 1 : 0;
    /* and so does a plain transaction */
    r = cj_sqlite_begin(db);
    CHECK(io_result(r));
    if (r == CJ_OK)
        CHECK_EQ(cj_sqlite_rollback(db), CJ_OK);
    CHECK_EQ(cj_sqlite_durable(db, true, &d), CJ_OK);
    hit = fv_disarm();
    CHECK(t[2] <= d);

    t[4] = pp_batch(db, 4, 50, &ok[4]);
    CHECK(t[4] > 0 && ok[4] == 3);
    CHECK_EQ(cj_sqlite_durable(db, true, &d), CJ_OK);
    CHECK_EQ(d, t[4]);
    cj_sqlite_close(db);
    /* batch 1 was lost to the host: its data may or may not remain */
    for (unsigned i = 0; i < 5; i++) {
        pp_expect(want, i, 10 * (i + 1), ok[i]);
        pp_expect(alt, i, 10 * (i + 1), i == 1 ? 0 : ok[i]);
    }
    got = pp_rows();
    if (strcmp(got, alt) != 0)
        check_same(got, want, "recovery after a failed sync", f, n);
    free(got);
    return hit;
}

static void pipelined(bool (*step)(const fault_t *, unsigned), unsigned min)
{
    cj_sqlite_t *db;

    scenario_begin();
    db = open_ok();
    ss_add_n(B, db, 5);
    cj_sqlite_close(db);
    img_save();
    CHECK(fault_sweep(step) >= min);
    scenario_end();
}

TEST(sqlite_faults_pipeline) { pipelined(pp_step, 20); }
TEST(sqlite_faults_pipeline_recovery) { pipelined(pp_recover_step, 10); }

/* ---- migration and readers ----------------------------------------------------- */

/* The columns and rows a schema-1 registry has. */
#define V1_ROWS "SELECT group_concat(x, ' | ') FROM (SELECT hex(id) || ','"   \
                " || seq || ',' || hex(psk) || ',' || ssn_reserved || ','"     \
                " || joined || ',' || short_id || ',' || quote(lease_until)"  \
                " AS x FROM pledges WHERE seq <= 3 ORDER BY seq)"
/* 1: schema 1 as it was, 11: the current one (the queue rebuilt to take
 * readmits, no copy left behind; the recovery mark; the campaign lock;
 * no index on lease ends or joined pledges; outcome retention), anything
 * else a mix */
#define SCHEMA_SHAPE                                                          \
    "SELECT CASE WHEN v = 1 AND c = 0 AND t = 0 AND i = 2 THEN 1"             \
    " WHEN v = 11 AND c = 6 AND t = 5 AND k = 1 AND i = 0 THEN 11"            \
    " ELSE -v END FROM (SELECT"                                               \
    " (SELECT max(version) FROM schema_version) AS v,"                        \
    " (SELECT count(*) FROM sqlite_master WHERE name IN"                      \
    "  ('pledges_joined', 'pledges_lease_until')) AS i,"                      \
    " (SELECT count(*) FROM pragma_table_info('pledges')"                     \
    "  WHERE name IN ('okm', 'repeat_cache', 'must_recover')) +"             \
    " (SELECT count(*) FROM pragma_table_info('network')"                     \
    "  WHERE name IN ('campaign_owner', 'campaign_alive')) +"                 \
    " (SELECT count(*) FROM pragma_table_info('registry_state')"              \
    "  WHERE name = 'keep_outcomes') AS c,"                                   \
    " (SELECT count(*) FROM sqlite_master WHERE name IN"                      \
    "  ('network', 'pending_ops', 'pledges_psk', 'retired_psks',"             \
    "   'updates_retention')) AS t,"                                          \
    " (SELECT count(*) FROM sqlite_master WHERE name = 'pending_ops'"         \
    "  AND sql LIKE '%IN (1, 2, 3)%' AND NOT EXISTS (SELECT 1"                \
    "  FROM sqlite_master WHERE name = 'pending_ops_7')) AS k)"

static char *v1_rows;

/* Opening a schema-1 file migrates it to the current schema in one
 * transaction: after a fault the file is either untouched or migrated
 * whole, never in between, and its pledges are kept. */
static bool migrate_step(const fault_t *f, unsigned n)
{
    cj_sqlite_t *db = (cj_sqlite_t *)&db;
    sqlite3 *r;
    uint8_t id[8], psk[16];
    long long shape;
    char *t;
    bool hit;
    int rc;

    img_restore();
    fv_arm(f, n);
    rc = cj_sqlite_open(&db, PATH);
    hit = fv_disarm();
    CHECK(rc == CJ_OK || rc == CJ_ERR_STORAGE);
    if (rc != CJ_OK) {
        CHECK(db == NULL);
    } else {
        ss_make_id(id, 7);
        ss_make_psk(psk, 7);
        CHECK_EQ(cj_sqlite_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
        cj_sqlite_close(db);
    }
    r = raw_open();
    CHECK(raw_ok(r));
    shape = raw_int(r, SCHEMA_SHAPE);
    CHECK(shape == 11 || (shape == 1 && rc != CJ_OK));
    t = raw_text(r, V1_ROWS);
    check_same(t, v1_rows, "pledges across the migration", f, n);
    free(t);
    sqlite3_close(r);
    /* the next open migrates */
    db = open_ok();
    CHECK_EQ(B->sql_int(db, SCHEMA_SHAPE), 11);
    t = raw_text(cj_sqlite_raw(db), V1_ROWS);
    check_same(t, v1_rows, "pledges after the migration", f, n);
    free(t);
    cj_sqlite_close(db);
    return hit;
}

/* A reader's open of a current file writes nothing, whatever fails. */
static char *reader_before;

static bool reader_step(const fault_t *f, unsigned n)
{
    cj_sqlite_t *db = (cj_sqlite_t *)&db;
    cj_jrc_pledge_t rec;
    uint8_t id[8];
    sqlite3 *r;
    char *t;
    bool hit;
    int rc;

    img_restore();
    fv_arm(f, n);
    rc = cj_sqlite_open_as(&db, PATH, true, NULL, 0);
    hit = fv_disarm();
    CHECK(rc == CJ_OK || rc == CJ_ERR_STORAGE);
    if (rc != CJ_OK) {
        CHECK(db == NULL);
    } else {
        ss_make_id(id, 2);
        CHECK_EQ(cj_sqlite_store(db)->lookup(db, id, 8, &rec), CJ_OK);
        cj_sqlite_close(db);
    }
    r = raw_open();
    CHECK(raw_ok(r));
    t = raw_text(r, "SELECT sessions FROM registry_state");
    check_same(t, reader_before, "reader", f, n);
    free(t);
    sqlite3_close(r);
    return hit;
}

TEST(sqlite_faults_migration_and_reader)
{
    cj_sqlite_t *db;
    const cj_jrc_store_t *st;
    uint8_t id[8];
    uint16_t sid;
    sqlite3 *r;

    scenario_begin();
    db = open_ok();
    st = cj_sqlite_store(db);
    ss_add_n(B, db, 3);
    ss_make_id(id, 1);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, NOW, 0, false, &sid), CJ_OK);
    CHECK_EQ(ss_raise_ssn(st, st->ctx, id, 96), CJ_OK);
    CHECK(B->sql_try(db, B->v1_sql));
    cj_sqlite_close(db);
    img_save();
    r = raw_open();
    CHECK_EQ(raw_int(r, SCHEMA_SHAPE), 1);
    v1_rows = raw_text(r, V1_ROWS);
    sqlite3_close(r);
    CHECK(fault_sweep(migrate_step) >= 20);
    free(v1_rows);

    /* the migrated file as the readers' image */
    db = open_ok();
    cj_sqlite_close(db);
    img_save();
    r = raw_open();
    reader_before = raw_text(r, "SELECT sessions FROM registry_state");
    sqlite3_close(r);
    CHECK(fault_sweep(reader_step) >= 3);
    free(reader_before);
    scenario_end();
}

/* ---- pending operations, eviction, network row --------------------------------- */

/* Two operations queued (`cojp jrc evict`, `cojp jrc rekey`), the
 * network row saved, then the serving JRC takes the oldest operation
 * (begin, next, evict, done, commit; rolled back when a step fails).
 * The file holds exactly what succeeded. */
enum { OPS_EVICT = 1, OPS_REKEY = 2, OPS_NET = 4, OPS_TOOK = 8 };

static int ops_run(cj_sqlite_t *db, int only)
{
    cj_sqlite_op_t op;
    cj_sqlite_network_t net;
    int done = 0, r;

    memset(&op, 0, sizeof op);
    op.kind = CJ_SQLITE_OP_EVICT;
    ss_make_id(op.id, 1);
    op.id_len = 8;
    if (only & OPS_EVICT) {
        r = cj_sqlite_op_push(db, &op);
        CHECK(io_result(r));
        done |= r == CJ_OK ? OPS_EVICT : 0;
    }
    memset(&op, 0, sizeof op);
    op.kind = CJ_SQLITE_OP_REKEY;
    op.has_key = true;
    memset(op.key, 0x77, 16);
    if (only & OPS_REKEY) {
        r = cj_sqlite_op_push(db, &op);
        CHECK(io_result(r));
        done |= r == CJ_OK ? OPS_REKEY : 0;
    }
    memset(&net, 0, sizeof net);
    net.key_count = 1;
    net.keys[0].key_id = 1;
    memset(net.keys[0].key, 0x11, 16);
    net.join_rate = UINT32_MAX;
    net.lease_hours = 1;
    net.next_campaign = 3;
    if (only & OPS_NET) {
        r = cj_sqlite_network_save(db, &net);
        CHECK(io_result(r));
        done |= r == CJ_OK ? OPS_NET : 0;
    }
    if ((only & OPS_TOOK) && (r = cj_sqlite_begin(db)) == CJ_OK) {
        r = cj_sqlite_op_next(db, &op);
        CHECK(r == CJ_OK || r == CJ_ERR_STORAGE ||
              (r == CJ_ERR_NOTFOUND && !(done & (OPS_EVICT | OPS_REKEY))));
        if (r == CJ_OK && op.kind == CJ_SQLITE_OP_EVICT) {
            r = cj_sqlite_evict(db, op.id, op.id_len);
            CHECK(io_result(r));
        }
        if (r == CJ_OK) {
            r = cj_sqlite_op_done(db, op.seq);
            CHECK(io_result(r));
        }
        if (r == CJ_OK) {
            r = cj_sqlite_commit(db);
            CHECK(io_result(r));
        } else {
            CHECK_EQ(cj_sqlite_rollback(db), CJ_OK);
        }
        done |= r == CJ_OK ? OPS_TOOK : 0;
    } else if (only & OPS_TOOK) {
        CHECK(io_result(r));
    }
    return done;
}

static char *ops_ref[16];

static bool ops_step(const fault_t *f, unsigned n)
{
    cj_sqlite_t *db;
    cj_sqlite_op_t op;
    char *got;
    bool hit;
    int done;

    img_restore();
    db = open_ok();
    fv_arm(f, n);
    done = ops_run(db, 15);
    hit = fv_disarm();
    got = file_dump(99);
    if (ops_ref[done] == NULL) {
        /* the same calls, only those, without faults */
        cj_sqlite_close(db);
        img_restore();
        db = open_ok();
        CHECK_EQ(ops_run(db, done), done);
        cj_sqlite_close(db);
        ops_ref[done] = file_dump(99);
        db = open_ok();
    }
    check_same(got, ops_ref[done], "operations", f, n);
    free(got);
    /* the handle works: the queue is drained */
    CHECK_EQ(cj_sqlite_begin(db), CJ_OK);
    while (cj_sqlite_op_next(db, &op) == CJ_OK)
        CHECK_EQ(cj_sqlite_op_done(db, op.seq), CJ_OK);
    CHECK_EQ(cj_sqlite_commit(db), CJ_OK);
    cj_sqlite_close(db);
    got = reopen_dump(99);
    CHECK(strstr(got, " #  # ") != NULL); /* no operation left */
    free(got);
    return hit;
}

TEST(sqlite_faults_operations)
{
    cj_sqlite_t *db;
    const cj_jrc_store_t *st;
    uint8_t id[8];
    uint16_t sid;

    scenario_begin();
    db = open_ok();
    st = cj_sqlite_store(db);
    ss_add_n(B, db, 3);
    ss_make_id(id, 1);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, NOW, 1, false, &sid), CJ_OK);
    CHECK_EQ(st->record_join(st->ctx, id, 8, 0, sid, NOW), CJ_OK);
    cj_sqlite_close(db);
    img_save();
    CHECK(fault_sweep(ops_step) >= 20);
    for (int i = 0; i < 16; i++) {
        free(ops_ref[i]);
        ops_ref[i] = NULL;
    }
    scenario_end();
}

/* ---- reads ------------------------------------------------------------------------- */

/* Every reading call, with a page cache too small for the registry:
 * each gives the right answer or CJ_ERR_STORAGE, never a wrong one (a
 * provisioned pledge reported unknown, a list cut short as if it were
 * complete), and writes nothing.  Pledge 1 is admitted with an address
 * and an outcome not acknowledged, pledge 2 evicted, pledge 3 under a
 * recovered ID Context; a network row and an operation are stored. */
static const uint8_t reads_ctx[12] = {0xc7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static uint16_t reads_sid;
static uint64_t reads_session;
static char *reads_before;

static int reads_count(void *arg, const cj_sqlite_info_t *info)
{
    unsigned *seen = arg;
    *seen = *seen * 10 + info->rec.id[7] + 1;
    return 0;
}

/* A listing: CJ_ERR_STORAGE, or complete (pledges listed as digits of
 * their number + 1, in order). */
static void reads_list(int r, unsigned seen, unsigned want)
{
    CHECK(io_result(r));
    if (r == CJ_OK)
        CHECK_EQ(seen, want);
}

static bool reads_step(const fault_t *f, unsigned n)
{
    const cj_jrc_store_t *st;
    cj_sqlite_t *db;
    cj_jrc_pledge_t rec;
    cj_sqlite_network_t net;
    cj_sqlite_op_t op;
    cj_addr_t addr;
    uint8_t id[8];
    uint64_t cur = 0;
    unsigned seen = 0;
    char *got;
    bool hit;
    int r;

    img_restore();
    db = open_ok();
    st = cj_sqlite_store(db);
    CHECK(B->sql_try(db, "PRAGMA cache_size = 1"));
    fv_arm(f, n);
    ss_make_id(id, 1);
    r = st->lookup(st->ctx, id, 8, &rec);
    CHECK(io_result(r));
    if (r == CJ_OK)
        CHECK(rec.joined && rec.short_id == reads_sid && rec.has_okm);
    r = st->lookup(st->ctx, ss_nobody, 8, &rec);
    CHECK(r == CJ_ERR_NOTFOUND || r == CJ_ERR_STORAGE);
    r = st->lookup_context(st->ctx, reads_ctx, sizeof reads_ctx, &rec);
    CHECK(io_result(r));
    if (r == CJ_OK)
        CHECK(rec.id[7] == 3 && rec.id_context_len == sizeof reads_ctx);
    while ((r = st->next_joined(st->ctx, &cur, &rec)) == CJ_OK)
        seen = seen * 10 + rec.id[7] + 1;
    CHECK(r == CJ_ERR_NOTFOUND || r == CJ_ERR_STORAGE);
    if (r == CJ_ERR_NOTFOUND)
        CHECK_EQ(seen, 2);
    r = st->node_address(st->ctx, id, 8, &addr);
    CHECK(io_result(r));
    if (r == CJ_OK)
        CHECK(addr.len == 16 && addr.b[0] == 0xfe);
    seen = 0;
    r = cj_sqlite_list(db, reads_count, &seen);
    reads_list(r, seen, 1234);
    seen = 0;
    r = cj_sqlite_unreached(db, reads_session, 1, reads_count, &seen);
    reads_list(r, seen, 2);
    seen = 0;
    r = cj_sqlite_blacklist(db, reads_count, &seen);
    reads_list(r, seen, 3);
    r = cj_sqlite_network_load(db, &net);
    CHECK(io_result(r));
    if (r == CJ_OK)
        CHECK(net.key_count == 1 && net.next_campaign == 2);
    r = cj_sqlite_op_next(db, &op);
    CHECK(io_result(r));
    if (r == CJ_OK)
        CHECK(op.kind == CJ_SQLITE_OP_REKEY && !op.has_key);
    hit = fv_disarm();
    /* the handle still answers, and nothing was written */
    CHECK_EQ(st->lookup(st->ctx, id, 8, &rec), CJ_OK);
    cj_sqlite_close(db);
    got = reopen_dump(99);
    check_same(got, reads_before, "reads", f, n);
    free(got);
    return hit;
}

TEST(sqlite_faults_reads)
{
    const cj_jrc_store_t *st;
    cj_sqlite_t *db;
    cj_sqlite_network_t net;
    cj_sqlite_op_t op;
    cj_addr_t addr = {.len = 16, .b = {0xfe, 0x80}};
    uint8_t id[8];

    scenario_begin();
    db = open_ok();
    st = cj_sqlite_store(db);
    reads_session = cj_sqlite_session(db);
    ss_add_n(B, db, 4);
    ss_make_id(id, 1);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, NOW, 1, false, &reads_sid), CJ_OK);
    CHECK_EQ(st->record_join(st->ctx, id, 8, 0, reads_sid, NOW), CJ_OK);
    CHECK_EQ(cj_sqlite_set_address(db, id, 8, &addr), CJ_OK);
    CHECK_EQ(st->record_update(st->ctx, id, 8, 1, false), CJ_OK);
    ss_make_id(id, 2);
    CHECK_EQ(cj_sqlite_evict(db, id, 8), CJ_OK);
    ss_make_id(id, 3);
    CHECK_EQ(st->save_context(st->ctx, id, 8, ss_psk_of(id), reads_ctx,
                              sizeof reads_ctx),
             CJ_OK);
    memset(&net, 0, sizeof net);
    net.key_count = 1;
    net.join_rate = UINT32_MAX;
    net.next_campaign = 2;
    CHECK_EQ(cj_sqlite_network_save(db, &net), CJ_OK);
    memset(&op, 0, sizeof op);
    op.kind = CJ_SQLITE_OP_REKEY;
    CHECK_EQ(cj_sqlite_op_push(db, &op), CJ_OK);
    cj_sqlite_close(db);
    img_save();
    reads_before = file_dump(99);
    CHECK(fault_sweep(reads_step) >= 20);
    free(reads_before);
    scenario_end();
}
