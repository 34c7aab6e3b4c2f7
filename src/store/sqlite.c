/*
 * The JRC registry in SQLite (store/sqlite.h).
 *
 * Invariants:
 *  - every write runs inside a transaction of its own (BEGIN IMMEDIATE)
 *    or, when the host opened one, inside a savepoint, so a failed call
 *    leaves the file as it was (cojp/jrc.h store contract);
 *  - a pledge row with lease_until set holds a lease on short_id, and the
 *    partial unique index pledges_live_short makes two such rows with one
 *    short id impossible (RFC 9031 section 8.4.4.1: unique in the
 *    network); an ended lease keeps its id until a sweep clears it;
 *  - every prepared statement is reset after use, so COMMIT and ROLLBACK
 *    never meet a pending statement.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cojp/crypto.h"
#include "store/common.h"
#include "store/sqlite.h"

#define APP_ID 0x636f6a70 /* "cojp" in the file header */

/* ---- schema and migrations --------------------------------------------- */

static int psks_unique(cj_sqlite_t *s, char *why, size_t whycap);

/* Migration N brings a file from version N-1 to N.  Add version 2 as one
 * more entry; never edit an entry that has shipped.  check (may be NULL)
 * runs first, in the same transaction: CJ_OK, or why the file cannot
 * take the migration as it is (the open fails, the file unchanged). */
static const struct {
    int version;
    const char *sql;
    int (*check)(cj_sqlite_t *s, char *why, size_t whycap);
} migrations[] = {
    {1,
     "CREATE TABLE pledges ("
     " id BLOB PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 8),"
     /* provisioning order, stable for next_joined cursors (a rowid may
      * change on VACUUM, this column does not) */
     " seq INTEGER NOT NULL UNIQUE,"
     " psk BLOB NOT NULL CHECK (length(psk) = 16),"
     " allowed_roles INTEGER NOT NULL CHECK (allowed_roles BETWEEN 1 AND 255),"
     " ssn_reserved INTEGER NOT NULL DEFAULT 0 CHECK (ssn_reserved >= 0),"
     " replay_highest INTEGER NOT NULL DEFAULT 0,"
     " replay_bitmap INTEGER NOT NULL DEFAULT 0,"
     " replay_valid INTEGER NOT NULL DEFAULT 0,"
     /* NULL: the pledge id is the ID Context (no recovery happened) */
     " id_context BLOB CHECK (id_context IS NULL OR"
     "  length(id_context) BETWEEN 1 AND 24),"
     " joined INTEGER NOT NULL DEFAULT 0,"
     " role INTEGER NOT NULL DEFAULT 0,"
     " short_id INTEGER NOT NULL DEFAULT 0 CHECK (short_id BETWEEN 0 AND 65535),"
     /* ms; NULL: no lease held; 9223372036854775807: no expiry */
     " lease_until INTEGER CHECK (lease_until IS NULL OR"
     "  short_id BETWEEN 1 AND 65533),"
     " joined_at INTEGER,"
     " address BLOB CHECK (address IS NULL OR length(address) BETWEEN 1 AND 24),"
     " evicted_at INTEGER"
     ");"
     "CREATE UNIQUE INDEX pledges_live_short ON pledges(short_id)"
     " WHERE lease_until IS NOT NULL;"
     "CREATE INDEX pledges_lease_until ON pledges(lease_until)"
     " WHERE lease_until IS NOT NULL;"
     "CREATE UNIQUE INDEX pledges_id_context ON pledges(id_context)"
     " WHERE id_context IS NOT NULL;"
     "CREATE INDEX pledges_joined ON pledges(seq) WHERE joined = 1;"
     "CREATE TABLE updates ("
     " session INTEGER NOT NULL,"
     " campaign INTEGER NOT NULL,"
     " pledge BLOB NOT NULL REFERENCES pledges(id) ON DELETE CASCADE,"
     " acked INTEGER NOT NULL,"
     " at INTEGER NOT NULL,"
     " PRIMARY KEY (session, campaign, pledge));"
     "CREATE INDEX updates_pledge ON updates(pledge);"
     "CREATE TABLE registry_state ("
     " one INTEGER PRIMARY KEY CHECK (one = 1),"
     " next_short INTEGER NOT NULL,"
     " sessions INTEGER NOT NULL);"
     "INSERT INTO registry_state VALUES (1, 1, 0);", NULL},
    {2,
     /* keys: key_count records of key_id, key_usage, 16 key bytes */
     "CREATE TABLE network ("
     " one INTEGER PRIMARY KEY CHECK (one = 1),"
     " network_id BLOB CHECK (network_id IS NULL OR"
     "  length(network_id) BETWEEN 1 AND 16),"
     " keys BLOB NOT NULL CHECK (length(keys) % 18 = 0 AND"
     "  length(keys) BETWEEN 18 AND 72),"
     " jrc_address BLOB CHECK (jrc_address IS NULL OR length(jrc_address) = 16),"
     " join_rate INTEGER CHECK (join_rate IS NULL OR"
     "  join_rate BETWEEN 0 AND 4294967294),"
     " lease_hours INTEGER NOT NULL CHECK (lease_hours BETWEEN 0 AND 4294967295),"
     " next_campaign INTEGER NOT NULL CHECK (next_campaign BETWEEN 1 AND 4294967295),"
     " updated_at INTEGER NOT NULL);"
     "CREATE TABLE pending_ops ("
     " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
     " kind INTEGER NOT NULL CHECK (kind IN (1, 2)),"
     " pledge BLOB CHECK (pledge IS NULL OR length(pledge) BETWEEN 1 AND 8),"
     " key BLOB CHECK (key IS NULL OR length(key) = 16),"
     " queued_at INTEGER NOT NULL,"
     " CHECK (kind <> 2 OR pledge IS NOT NULL));", NULL},
    {3,
     /* the repeat cache (cj_store_repeat_pack; NULL: none), written with
      * the admission so a restarted JRC repeats its last answer */
     "ALTER TABLE pledges ADD COLUMN repeat_cache BLOB CHECK"
     " (repeat_cache IS NULL OR length(repeat_cache) BETWEEN 8 AND 1024);", NULL},
    {4,
     /* the derived material of the pledge-id OSCORE context
      * (cj_jrc_pledge_okm), written with the PSK, so an admission skips
      * the derivation; NULL (rows of older files): derived on load */
     "ALTER TABLE pledges ADD COLUMN okm BLOB CHECK"
     " (okm IS NULL OR length(okm) = 45);", NULL},
    {5,
     /* a PSK per pledge (RFC 9031 section 3); a file whose pledges
      * already share one is refused (psks_unique), not changed */
     "CREATE UNIQUE INDEX pledges_psk ON pledges(psk);",
     psks_unique},
    {6,
     /* fingerprints of the PSKs that left a pledge (jrc psk, jrc remove),
      * never given out again (store/common.h) */
     CJ_STORE_RETIRED_TABLE("BLOB", "INTEGER"), NULL},
    {7,
     /* the readmit operation (kind 3, with a pledge).  SQLite cannot
      * change a CHECK: the queue is copied into a new table, queued
      * operations and the sequence's high mark with it, so a sequence
      * number is never given twice */
     "CREATE TABLE pending_ops_7 ("
     " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
     " kind INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),"
     " pledge BLOB CHECK (pledge IS NULL OR length(pledge) BETWEEN 1 AND 8),"
     " key BLOB CHECK (key IS NULL OR length(key) = 16),"
     " queued_at INTEGER NOT NULL,"
     " CHECK (kind = 1 OR pledge IS NOT NULL));"
     "INSERT INTO pending_ops_7 (seq, kind, pledge, key, queued_at)"
     " SELECT seq, kind, pledge, key, queued_at FROM pending_ops;"
     "DELETE FROM sqlite_sequence WHERE name = 'pending_ops_7';"
     "UPDATE sqlite_sequence SET name = 'pending_ops_7'"
     " WHERE name = 'pending_ops';"
     "DROP TABLE pending_ops;"
     "ALTER TABLE pending_ops_7 RENAME TO pending_ops;", NULL},
    {8,
     /* 1: the row's OSCORE state cannot be trusted (cj_sqlite_mark_
      * recover, after a restore); the pledge's next request recovers */
     "ALTER TABLE pledges ADD COLUMN must_recover INTEGER NOT NULL"
     " DEFAULT 0 CHECK (must_recover IN (0, 1));", NULL},
    {9,
     /* the campaign lock (cj_sqlite_campaign_put): the session of the
      * serving instance that runs a campaign, and when it last said so */
     "ALTER TABLE network ADD COLUMN campaign_owner INTEGER"
     " CHECK (campaign_owner IS NULL OR campaign_owner > 0);"
     "ALTER TABLE network ADD COLUMN campaign_alive INTEGER;", NULL},
    {10,
     /* two indexes fewer for an admission to update: campaigns walk the
      * pledges in seq order (the seq index) and skip the unjoined ones;
      * expired leases are found by scanning, at most once per
      * CJ_SQLITE_SWEEP_GAP_MS (sweep_due) */
     "DROP INDEX pledges_joined;"
     "DROP INDEX pledges_lease_until;", NULL},
    {11,
     /* outcome retention: recording a campaign outcome removes the
      * pledge's outcomes beyond its keep_outcomes latest (0: none is
      * removed), so the table stays within keep_outcomes rows per pledge
      * however many campaigns run (cj_sqlite_prune) */
     "ALTER TABLE registry_state ADD COLUMN keep_outcomes INTEGER NOT NULL"
     " DEFAULT 16 CHECK (keep_outcomes BETWEEN 0 AND 1000000);"
     "CREATE TRIGGER updates_retention AFTER INSERT ON updates"
     " WHEN (SELECT keep_outcomes FROM registry_state WHERE one = 1) > 0"
     " BEGIN DELETE FROM updates WHERE pledge = NEW.pledge AND rowid <="
     "  (SELECT rowid FROM updates WHERE pledge = NEW.pledge"
     "   ORDER BY rowid DESC LIMIT 1 OFFSET"
     "   (SELECT keep_outcomes FROM registry_state WHERE one = 1));"
     " END;", NULL},
};
#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

/* ---- prepared statements ------------------------------------------------ */

#define PLEDGE_COLS CJ_STORE_PLEDGE_COLS
#define INFO_COLS CJ_STORE_INFO_COLS
/* What a lookup reads: the pledge, its repeat cache, whether it holds a
 * live lease, its derived key material, the recovery mark and its rowid
 * (columns 11..15). */
#define LOOKUP_COLS                                                     \
    PLEDGE_COLS ", repeat_cache, lease_until IS NOT NULL, okm,"         \
                " must_recover, rowid"
#define LOOKUP_NCOLS 16

enum {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,
    S_LOOKUP,
    S_LOOKUP_CTX,
    S_SSN_OF,
    S_SAVE_SSN,
    S_REPLAY_OF,
    S_SAVE_REPLAY,
    S_SAVE_CTX,
    S_SAVE_REPEAT,
    S_EXPIRE,
    S_LEASE_MIN,
    S_DATA_VERSION,
    S_LEASE_OF,
    S_RENEW,
    S_CURSOR_GET,
    S_CURSOR_SET,
    S_FREE_FROM,
    S_FLUSH,
    S_PROBE,
    S_TAKE,
    S_TAKE_ROW,
    S_ADMIT_ROW,
    S_JOIN,
    S_RELEASE_LEASE,
    S_NEXT_JOINED,
    S_ADDRESS,
    S_RECORD_UPDATE,
    S_ADD,
    S_SET_ADDR,
    S_LIST,
    S_UNREACHED,
    S_EVICT,
    S_READMIT,
    S_BLACKLIST,
    S_NET_GET,
    S_NET_PUT,
    S_CAMP_GET,
    S_CAMP_PUT,
    S_OP_PUSH,
    S_OP_NEXT,
    S_OP_DONE,
    S_RETIRED,
    S_COUNT
};

#define PENDING_SET                                                     \
    "replay_highest = iif(?2 & 1, ?3, replay_highest),"                 \
    " replay_bitmap = iif(?2 & 1, ?4, replay_bitmap),"                  \
    " replay_valid = iif(?2 & 1, ?5, replay_valid),"                    \
    " ssn_reserved = iif(?2 & 2, ?6, ssn_reserved),"                    \
    " joined = iif(?2 & 4, 1, joined), role = iif(?2 & 4, ?7, role),"   \
    " joined_at = iif(?2 & 4, ?8, joined_at),"                          \
    " repeat_cache = iif(?2 & 8, ?9, repeat_cache)"

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT cj_op",
    [S_RELEASE] = "RELEASE cj_op",
    [S_ROLLBACK_TO] = "ROLLBACK TO cj_op",
    [S_LOOKUP] = "SELECT " LOOKUP_COLS " FROM pledges WHERE id = ?1",
    [S_LOOKUP_CTX] = "SELECT " LOOKUP_COLS " FROM pledges"
                     " WHERE id_context = ?1",
    /* the row only while ?3 is its PSK and ?2 its current ID Context
     * (NULL: pledge id) */
    [S_SSN_OF] = "SELECT ssn_reserved FROM pledges"
                 " WHERE id = ?1 AND id_context IS ?2 AND psk = ?3",
    [S_SAVE_SSN] = "UPDATE pledges SET ssn_reserved = ?2 WHERE id = ?1",
    [S_REPLAY_OF] = "SELECT replay_highest, replay_bitmap, replay_valid"
                    " FROM pledges WHERE id = ?1 AND id_context IS ?2"
                    " AND psk = ?3",
    [S_SAVE_REPLAY] = "UPDATE pledges SET replay_highest = ?2,"
                      " replay_bitmap = ?3, replay_valid = ?4 WHERE id = ?1",
    [S_SAVE_CTX] = "UPDATE pledges SET id_context = ?2, ssn_reserved = 0,"
                   " replay_highest = 0, replay_bitmap = 0, replay_valid = 0,"
                   " repeat_cache = NULL, must_recover = 0"
                   " WHERE id = ?1 AND psk = ?3",
    [S_SAVE_REPEAT] = "UPDATE pledges SET repeat_cache = ?4"
                      " WHERE id = ?1 AND id_context IS ?2 AND psk = ?3",
    [S_EXPIRE] = "UPDATE pledges SET lease_until = NULL"
                 " WHERE lease_until IS NOT NULL AND lease_until <= ?1",
    [S_LEASE_MIN] = "SELECT min(lease_until) FROM pledges"
                    " WHERE lease_until IS NOT NULL",
    [S_DATA_VERSION] = "PRAGMA data_version",
    [S_LEASE_OF] = "SELECT lease_until, short_id FROM pledges WHERE id = ?1",
    [S_RENEW] = "UPDATE pledges SET lease_until = ?2 WHERE id = ?1",
    [S_CURSOR_GET] = "SELECT next_short FROM registry_state WHERE one = 1",
    [S_CURSOR_SET] = "UPDATE registry_state SET next_short = ?1 WHERE one = 1",
    /* The first free id at or after ?1: ?1 itself, or the successor of a
     * leased id at or after ?1 whose successor is not leased. */
    [S_FREE_FROM] =
        "SELECT s FROM ("
        " SELECT ?1 AS s WHERE NOT EXISTS (SELECT 1 FROM pledges"
        "  WHERE lease_until IS NOT NULL AND short_id = ?1)"
        " UNION ALL"
        " SELECT a.short_id + 1 FROM pledges a"
        "  WHERE a.lease_until IS NOT NULL AND a.short_id >= ?1"
        "  AND a.short_id < 65533 AND NOT EXISTS (SELECT 1 FROM pledges b"
        "   WHERE b.lease_until IS NOT NULL AND b.short_id = a.short_id + 1)"
        ") ORDER BY s LIMIT 1",
    /* The known row's deferred writes (?2: a PEND_* mask), alone or with
     * the lease a short-id assignment takes (?10, ?11).  The row is
     * found by the rowid its lookup read (?12), which spares a search of
     * the id index; the id still has to match. */
    [S_FLUSH] = "UPDATE pledges SET " PENDING_SET
                " WHERE rowid = ?12 AND id = ?1",
    /* the lowest leased short id at or after ?1 (NULL: none); the
     * partial unique index answers */
    [S_PROBE] = "SELECT min(short_id) FROM pledges WHERE short_id >= ?1"
                " AND lease_until IS NOT NULL",
    [S_TAKE] = "UPDATE pledges SET " PENDING_SET ","
               " short_id = ?10, lease_until = ?11 WHERE id = ?1",
    [S_TAKE_ROW] = "UPDATE pledges SET " PENDING_SET ","
                   " short_id = ?10, lease_until = ?11"
                   " WHERE rowid = ?12 AND id = ?1",
    /* S_TAKE_ROW with every deferred write (PEND_ALL), the admission's:
     * no choice to make per column */
    [S_ADMIT_ROW] = "UPDATE pledges SET replay_highest = ?3,"
                    " replay_bitmap = ?4, replay_valid = ?5,"
                    " ssn_reserved = ?6, joined = 1, role = ?7,"
                    " joined_at = ?8, repeat_cache = ?9, short_id = ?10,"
                    " lease_until = ?11 WHERE rowid = ?12 AND id = ?1",
    [S_JOIN] = "UPDATE pledges SET joined = 1, role = ?2, short_id = ?3,"
               " joined_at = ?4 WHERE id = ?1",
    [S_RELEASE_LEASE] = "UPDATE pledges SET joined = 0, lease_until = NULL"
                        " WHERE id = ?1",
    [S_NEXT_JOINED] = "SELECT " PLEDGE_COLS ", seq FROM pledges"
                      " WHERE joined = 1 AND seq >= ?1 ORDER BY seq LIMIT 1",
    [S_ADDRESS] = "SELECT address, id FROM pledges WHERE id = ?1",
    [S_RECORD_UPDATE] = "INSERT OR REPLACE INTO updates"
                        " (session, campaign, pledge, acked, at)"
                        " SELECT ?2, ?3, id, ?4, ?5 FROM pledges WHERE id = ?1",
    /* an id already there inserts nothing, whatever the PSK: the id's
     * conflict is the one reported (insert_pledge) */
    [S_ADD] = "INSERT INTO pledges (id, seq, psk, allowed_roles, okm) VALUES"
              " (?1, (SELECT coalesce(max(seq), 0) + 1 FROM pledges), ?2, ?3,"
              " ?4) ON CONFLICT (id) DO NOTHING",
    [S_SET_ADDR] = "UPDATE pledges SET address = ?2 WHERE id = ?1",
    [S_LIST] = "SELECT " INFO_COLS " FROM pledges p LEFT JOIN updates u"
               " ON u.rowid = (SELECT max(rowid) FROM updates"
               "  WHERE pledge = p.id) ORDER BY p.seq",
    [S_UNREACHED] = "SELECT " INFO_COLS " FROM pledges p JOIN updates u"
                    " ON u.pledge = p.id WHERE u.session = ?1"
                    " AND u.campaign = ?2 AND u.acked = 0 ORDER BY p.seq",
    [S_EVICT] = "UPDATE pledges SET joined = 0, lease_until = NULL,"
                " evicted_at = coalesce(evicted_at, ?2) WHERE id = ?1",
    [S_READMIT] = "UPDATE pledges SET evicted_at = NULL WHERE id = ?1",
    [S_BLACKLIST] = "SELECT " INFO_COLS " FROM pledges p LEFT JOIN updates u"
                    " ON u.rowid = (SELECT max(rowid) FROM updates"
                    "  WHERE pledge = p.id) WHERE p.evicted_at IS NOT NULL"
                    " ORDER BY p.evicted_at, p.seq",
    [S_NET_GET] = "SELECT network_id, keys, jrc_address, join_rate, lease_hours,"
                  " next_campaign FROM network WHERE one = 1",
    /* the campaign lock is not part of the record */
    [S_NET_PUT] = "INSERT INTO network (one, network_id, keys,"
                  " jrc_address, join_rate, lease_hours, next_campaign,"
                  " updated_at) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                  " ON CONFLICT (one) DO UPDATE SET"
                  " network_id = excluded.network_id, keys = excluded.keys,"
                  " jrc_address = excluded.jrc_address,"
                  " join_rate = excluded.join_rate,"
                  " lease_hours = excluded.lease_hours,"
                  " next_campaign = excluded.next_campaign,"
                  " updated_at = excluded.updated_at",
    [S_CAMP_GET] = "SELECT coalesce(campaign_owner, 0),"
                   " coalesce(campaign_alive, 0) FROM network WHERE one = 1",
    [S_CAMP_PUT] = "UPDATE network SET campaign_owner = ?2,"
                   " campaign_alive = ?3 WHERE one = 1"
                   " AND campaign_owner IS ?1",
    [S_OP_PUSH] = "INSERT INTO pending_ops (kind, pledge, key, queued_at)"
                  " VALUES (?1, ?2, ?3, ?4)",
    [S_OP_NEXT] = "SELECT seq, kind, pledge, key, queued_at FROM pending_ops"
                  " ORDER BY seq LIMIT 1",
    [S_OP_DONE] = "DELETE FROM pending_ops WHERE seq = ?1",
    /* prepared once the table exists: migration 6, or a repair's fix */
    [S_RETIRED] = "SELECT 1 FROM retired_psks WHERE fp = ?1",
};

/* Pipelined group commit (store/sqlite.h).  Tickets number the batches
 * committed with cj_sqlite_commit_async(): committed is the last one
 * handed out, requested the last one a sync was asked for, durable the
 * last one covered by an fdatasync of the WAL that started after its
 * COMMIT returned.  durable <= requested <= committed at all times. */
typedef struct pipe_state {
    bool on;
    int wal_fd;             /* our own descriptor of <path>-wal, or -1 */
    char *wal_path;
    int wake[2];            /* helper -> host: one byte per finished sync */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t committed, requested, durable;
    bool busy;              /* a sync is running on the helper thread */
    bool failed;            /* a sync failed; not yet reported */
    bool stop;
    bool recover;           /* checkpoint before the next write (below) */
    bool tx_async;          /* the open transaction began with synchronous=OFF */
    int wal_frames;         /* frames in the WAL after the last commit */
    int ckpt_at;            /* checkpoint once wal_frames reaches this */
    cj_sqlite_sync_fn sync_fn;
    void *sync_arg;
} pipe_state_t;

/* What this handle knows of the file inside the host's transaction, which
 * began with BEGIN IMMEDIATE and so holds the write lock: no other handle
 * or process changes a row until it ends.  A pledge's row as this handle
 * last read or wrote it spares the read half of the next read-modify-
 * write on it (an admission's store calls all touch one row); the
 * short-id cursor and a lower bound of the live leases' ends spare a
 * read per assignment.  Everything is forgotten when the transaction
 * ends, whenever a statement fails (SQLite may have undone more than
 * the statement) and when anything wrote through the connection that
 * this file did not run (cj_sqlite_raw(): the change counter moved), and
 * the row when code that does not keep it up to date writes. */
typedef struct known {
    bool row;                /* the fields below describe a row */
    uint8_t id[CJ_JRC_MAX_ID];
    uint8_t id_len;
    uint8_t ctx[CJ_OSCORE_MAX_ID_CONTEXT]; /* id_context (ctx_len 0: NULL) */
    uint8_t ctx_len;
    uint8_t psk[16];
    int64_t rowid;
    int64_t ssn_reserved;
    int64_t replay_highest, replay_bitmap;
    bool replay_valid;
    bool live;               /* lease_until IS NOT NULL */
    int64_t short_id;
    bool cursor_ok;          /* the cursor is next_short ... */
    bool cursor_dirty;       /* ... or will be when the transaction commits */
    int64_t cursor;
    int64_t free_lo, free_hi; /* no live lease in [free_lo, free_hi) */
    int changes;             /* sqlite3_total_changes() after our last write */
    /* Writes to the known row not made yet (PEND_*): the row's
     * replay_*, ssn_reserved and the fields below.  They reach the file
     * in one UPDATE before anything else reads or writes it and before
     * the transaction commits; if that UPDATE fails, the transaction is
     * lost as a whole (tx_lost), so nothing half-written commits. */
    unsigned pend;
    int64_t role, joined_at, lease_until;
    uint8_t repeat[CJ_STORE_REPEAT_MAX];
    size_t repeat_len;       /* 0: NULL */
} known_t;

enum {
    PEND_REPLAY = 1,
    PEND_SSN = 2,
    PEND_JOIN = 4,
    PEND_REPEAT = 8,
    PEND_LEASE = 16, /* short_id, lease_until: see assign() */
    PEND_ALL = 31
};

/* Rows read ahead by cj_sqlite_prefetch(), in the order of the ids it
 * was given; each serves one lookup of its pledge (which then becomes
 * the known row).  They hold while nothing but the known row's
 * deferred writes changed the file through this handle since they were
 * read (changes: sqlite3_total_changes() then, moved on by flush()),
 * and the known row itself is never among them: one taken for a lookup
 * is marked used, and a pledge named twice is read ahead once. */
typedef struct ahead_row {
    cj_jrc_pledge_t rec;
    int64_t rowid;
    bool live;               /* lease_until IS NOT NULL */
    bool ok;                 /* rec holds the row, not used yet */
} ahead_row_t;

/* cj_sqlite_prefetch()'s seen[] holds 1 + a row index in a byte */
_Static_assert(CJ_SQLITE_PREFETCH >= 1 && CJ_SQLITE_PREFETCH < 255,
               "CJ_SQLITE_PREFETCH must be 1..254");

typedef struct ahead {
    ahead_row_t row[CJ_SQLITE_PREFETCH];
    size_t n;                /* rows 0..n-1 describe the last prefetch */
    size_t next;             /* where the next lookup looks first */
    int changes;
    sqlite3_stmt *q[2];      /* the prefetch queries, long and short
                              * (ahead_query: prepared on first use) */
} ahead_t;

/* When the next sweep is due (sweep_due).  ok: no live lease ends
 * before min (the earliest end the last sweep left, or an earlier one
 * taken since); the next sweep comes at min, but not before
 * CJ_SQLITE_SWEEP_GAP_MS after the last one (swept_at) unless an
 * assignment finds no free id.  Unlike what is known, the bound outlives
 * the host's transaction.  It only says when ended leases are cleared, never
 * whether an id is free (the unique index of live leases does), so a
 * bound that is too late only keeps ended leases' ids held longer: when
 * another connection changed the file (PRAGMA data_version moved) or a
 * write through this handle happened since its last commit (sqlite3_
 * total_changes moved: undone by a rollback, or made through
 * cj_sqlite_raw()), leases the bound does not know of may exist, and it
 * is only taken as stale (lease_check): the next sweep comes at most
 * CJ_SQLITE_SWEEP_GAP_MS after the last one, so handles that take turns
 * on one file do not each scan the table at every batch.  Failures drop
 * it (forget_all): the next assignment sweeps. */
typedef struct lease_bound {
    bool ok;
    bool stale;
    int64_t min;
    int64_t swept_at;        /* when the last sweep ran */
    int64_t version;         /* PRAGMA data_version when last looked */
    int changes;             /* sqlite3_total_changes() when our last
                              * transaction ended */
} lease_bound_t;

struct cj_sqlite {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    cj_jrc_store_t store;
    bool in_tx;        /* the host's transaction is open */
    bool tx_lost;      /* SQLite rolled it back on its own (I/O error) */
    known_t known;     /* valid only while in_tx */
    lease_bound_t lease;
    ahead_t ahead;     /* valid only while in_tx, see there */
    uint64_t session;
    pipe_state_t pp;
    char err[160];
};

static int pipe_recover(cj_sqlite_t *s);

static void forget_all(cj_sqlite_t *s);
static int flush(cj_sqlite_t *s);

/* Forget the rows read ahead (their keys wiped). */
static void ahead_drop(cj_sqlite_t *s)
{
    ahead_t *a = &s->ahead;
    for (size_t i = 0; i < a->n; i++) {
        cj_crypto_wipe(a->row[i].rec.psk, sizeof a->row[i].rec.psk);
        cj_crypto_wipe(a->row[i].rec.okm, sizeof a->row[i].rec.okm);
        a->row[i].ok = false;
    }
    a->n = 0;
    a->next = 0;
}

static void note_error(cj_sqlite_t *s)
{
    const char *m = sqlite3_errmsg(s->db);
    size_t n = strlen(m);
    if (n >= sizeof s->err)
        n = sizeof s->err - 1;
    memcpy(s->err, m, n);
    s->err[n] = '\0';
    forget_all(s);
}

/* Forget what is known inside a transaction (the lease bound stays, see
 * lease_bound_t).  Deferred writes forgotten unwritten take the
 * transaction with them (the calls that made them already returned
 * success); a deferred cursor write costs the next assignment a search,
 * nothing more (the cursor only says where a search starts). */
static void forget_tx(cj_sqlite_t *s)
{
    if (s->known.pend && s->in_tx)
        s->tx_lost = true;
    cj_crypto_wipe(&s->known, sizeof s->known);
    s->known.changes = sqlite3_total_changes(s->db);
    ahead_drop(s);
}

/* Forget everything known, the bound on the leases too. */
static void forget_all(cj_sqlite_t *s)
{
    forget_tx(s);
    s->lease.ok = false;
}

/* Forget the row, after writing what is deferred for it. */
static void forget_row(cj_sqlite_t *s)
{
    (void)flush(s);
    s->known.row = false;
}

/* Whether what is known still holds: inside the host's transaction, and
 * nobody else wrote through the connection since this file last did. */
static bool known_holds(cj_sqlite_t *s)
{
    if (!s->in_tx)
        return false;
    if (sqlite3_total_changes(s->db) != s->known.changes) {
        (void)flush(s);
        forget_all(s);
    }
    return !s->tx_lost;
}

/* The known row, if it is pledge id's (whatever its ID Context). */
static bool known_is(cj_sqlite_t *s, const uint8_t *id, size_t id_len)
{
    return known_holds(s) && s->known.row && s->known.id_len == id_len &&
           memcmp(s->known.id, id, id_len) == 0;
}

/* Whether the known row's context is the one derived from psk under ID
 * Context ctx_id (length 0: the pledge id). */
static bool known_ctx_is(const cj_sqlite_t *s, const uint8_t *psk,
                         const uint8_t *ctx_id, size_t ctx_len)
{
    return cj_crypto_ct_compare(s->known.psk, psk, sizeof s->known.psk) == 0 &&
           s->known.ctx_len == ctx_len &&
           (ctx_len == 0 || memcmp(s->known.ctx, ctx_id, ctx_len) == 0);
}

/* Statements that neither read nor write what a deferred write holds
 * (the row's replay window, sequence number mark, join record, repeat
 * cache), or that write it themselves: all others run after the deferred
 * writes (stmt()). */
static bool leaves_pending(int which)
{
    switch (which) {
    case S_FLUSH: case S_TAKE: case S_TAKE_ROW: case S_ADMIT_ROW:
    case S_CURSOR_GET: case S_CURSOR_SET:
    case S_PROBE:
    case S_BEGIN: case S_COMMIT: case S_ROLLBACK:
    case S_SAVEPOINT: case S_RELEASE: case S_ROLLBACK_TO:
        return true;
    default:
        return false;
    }
}

static sqlite3_stmt *stmt(cj_sqlite_t *s, int which)
{
    if (s->known.pend && !leaves_pending(which) && flush(s) != CJ_OK)
        return NULL;
    if (s->st[which] == NULL &&
        sqlite3_prepare_v3(s->db, stmt_sql[which], -1,
                           SQLITE_PREPARE_PERSISTENT, &s->st[which],
                           NULL) != SQLITE_OK) {
        note_error(s);
        s->st[which] = NULL;
    }
    return s->st[which];
}

/* Run a statement that returns no row; resets it.  SQLITE_DONE or the
 * error code. */
static int exec_stmt(cj_sqlite_t *s, sqlite3_stmt *q)
{
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        rc = SQLITE_DONE;
    if (rc != SQLITE_DONE)
        note_error(s);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    s->known.changes = sqlite3_total_changes(s->db);
    return rc;
}

static void done(sqlite3_stmt *q)
{
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
}

/* Statement which with ?1 bound to the pledge id (NULL: not prepared). */
static sqlite3_stmt *stmt_id(cj_sqlite_t *s, int which, const uint8_t *id,
                             size_t id_len)
{
    sqlite3_stmt *q = stmt(s, which);
    if (q != NULL)
        sqlite3_bind_blob(q, 1, id, (int)id_len, SQLITE_STATIC);
    return q;
}

/* Bind ?2..?9 of S_FLUSH and S_TAKE: the deferred writes to the known
 * row when it is pledge id's, none otherwise. */
static void bind_pending(cj_sqlite_t *s, sqlite3_stmt *q, bool mine)
{
    const known_t *k = &s->known;
    unsigned m = mine ? k->pend : 0;

    sqlite3_bind_int(q, 2, (int)m);
    if (m & PEND_REPLAY) {
        sqlite3_bind_int64(q, 3, k->replay_highest);
        sqlite3_bind_int64(q, 4, k->replay_bitmap);
        sqlite3_bind_int(q, 5, k->replay_valid ? 1 : 0);
    }
    if (m & PEND_SSN)
        sqlite3_bind_int64(q, 6, k->ssn_reserved);
    if (m & PEND_JOIN) {
        sqlite3_bind_int64(q, 7, k->role);
        sqlite3_bind_int64(q, 8, k->joined_at);
    }
    if ((m & PEND_REPEAT) && k->repeat_len > 0)
        sqlite3_bind_blob(q, 9, k->repeat, (int)k->repeat_len, SQLITE_STATIC);
}

/* Make the known row's deferred writes.  On failure the transaction is
 * lost (forget_all). */
static int flush(cj_sqlite_t *s)
{
    sqlite3_stmt *q;
    int before;

    if (!s->known.pend)
        return CJ_OK;
    if (!s->in_tx || s->tx_lost || sqlite3_get_autocommit(s->db)) {
        /* the transaction is gone: writing now would commit on its own */
        forget_all(s);
        return CJ_ERR_STORAGE;
    }
    if ((q = stmt_id(s, s->known.pend == PEND_ALL    ? S_ADMIT_ROW
                        : s->known.pend & PEND_LEASE ? S_TAKE_ROW
                                                     : S_FLUSH,
                     s->known.id, s->known.id_len)) == NULL)
        return CJ_ERR_STORAGE;
    bind_pending(s, q, true);
    sqlite3_bind_int64(q, 12, s->known.rowid);
    if (s->known.pend & PEND_LEASE) {
        sqlite3_bind_int64(q, 10, s->known.short_id);
        sqlite3_bind_int64(q, 11, s->known.lease_until);
    }
    before = sqlite3_total_changes(s->db);
    if (exec_stmt(s, q) != SQLITE_DONE)
        return CJ_ERR_STORAGE; /* note_error: forgotten, transaction lost */
    if (sqlite3_changes(s->db) != 1) {
        forget_all(s); /* the row went away under us: cannot be */
        return CJ_ERR_STORAGE;
    }
    s->known.pend = 0;
    /* the known row is not among the rows read ahead: they still hold */
    if (s->ahead.n > 0 && s->ahead.changes == before)
        s->ahead.changes = sqlite3_total_changes(s->db);
    return CJ_OK;
}

/* Step a bound query to its first row: CJ_OK with the row current (the
 * caller resets q), else CJ_ERR_NOTFOUND or CJ_ERR_STORAGE with q reset. */
static int step_row(cj_sqlite_t *s, sqlite3_stmt *q)
{
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        return CJ_OK;
    if (rc != SQLITE_DONE)
        note_error(s);
    done(q);
    return rc == SQLITE_DONE ? CJ_ERR_NOTFOUND : CJ_ERR_STORAGE;
}

static int run(cj_sqlite_t *s, int which)
{
    sqlite3_stmt *q = stmt(s, which);
    return q == NULL ? SQLITE_ERROR : exec_stmt(s, q);
}

/* A transaction began: the lease bound is stale when somebody else
 * changed the file since this handle last looked. */
static void lease_check(cj_sqlite_t *s)
{
    sqlite3_stmt *q = stmt(s, S_DATA_VERSION);
    int64_t v = -1;

    if (q != NULL && sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    if (q != NULL)
        done(q);
    if (v < 0 || v != s->lease.version ||
        sqlite3_total_changes(s->db) != s->lease.changes)
        s->lease.stale = true;
    s->lease.version = v;
}

/* One of this file's transactions committed: its writes kept the bound
 * up to date. */
static void lease_committed(cj_sqlite_t *s)
{
    s->lease.changes = sqlite3_total_changes(s->db);
}

/* ---- per-call atomicity ------------------------------------------------- */

/* Start a unit of work: a savepoint inside the host's transaction, else a
 * transaction of its own.  A unit whose only write is one statement
 * (single) needs no savepoint inside the host's transaction: SQLite
 * undoes a failed statement by itself, and the transaction, which began
 * with BEGIN IMMEDIATE, already holds the write lock its reads rely on. */
static int unit_begin(cj_sqlite_t *s, bool single)
{
    int rc;
    if (s->in_tx) {
        if (!s->tx_lost && sqlite3_get_autocommit(s->db)) {
            /* SQLite rolled the transaction back on its own (an I/O
             * error, even in a read): a write now would commit alone */
            s->tx_lost = true;
            forget_all(s);
        }
        if (s->tx_lost)
            return CJ_ERR_STORAGE;
        if (single)
            return CJ_OK;
        /* deferred writes go first: undoing the unit must not undo them */
        if (flush(s) != CJ_OK)
            return CJ_ERR_STORAGE;
        return run(s, S_SAVEPOINT) == SQLITE_DONE ? CJ_OK : CJ_ERR_STORAGE;
    }
    if (s->pp.recover && pipe_recover(s) != CJ_OK)
        return CJ_ERR_STORAGE;
    rc = run(s, S_BEGIN);
    if (rc == SQLITE_DONE) {
        lease_check(s);
        return CJ_OK;
    }
    return (rc & 0xff) == SQLITE_BUSY ? CJ_ERR_BUSY : CJ_ERR_STORAGE;
}

/* End it: commit when result is CJ_OK, undo otherwise.  Returns result,
 * or CJ_ERR_STORAGE when the commit itself failed. */
static int unit_end(cj_sqlite_t *s, int result, bool single)
{
    if (s->in_tx) {
        if (sqlite3_get_autocommit(s->db)) {
            /* SQLite abandoned the whole transaction (I/O error, full
             * disk): nothing of the batch is left to commit. */
            s->tx_lost = true;
            forget_all(s);
            return result == CJ_OK ? CJ_ERR_STORAGE : result;
        }
        if (single)
            return result;
        if (result != CJ_OK) {
            forget_all(s);
            run(s, S_ROLLBACK_TO);
        }
        if (run(s, S_RELEASE) != SQLITE_DONE)
            return CJ_ERR_STORAGE;
        return result;
    }
    if (result == CJ_OK) {
        if (run(s, S_COMMIT) == SQLITE_DONE) {
            lease_committed(s);
            return CJ_OK;
        }
        result = CJ_ERR_STORAGE;
    }
    if (!sqlite3_get_autocommit(s->db))
        run(s, S_ROLLBACK);
    return result;
}

/* A unit of work of code that does not keep the known row up to date. */
static int op_begin(cj_sqlite_t *s)
{
    forget_row(s);
    return unit_begin(s, false);
}

static int op_end(cj_sqlite_t *s, int result)
{
    return unit_end(s, result, false);
}

/* ---- reading rows ------------------------------------------------------- */

static bool blob_col(sqlite3_stmt *q, int col, uint8_t *dst, size_t cap,
                     size_t min, uint8_t *len)
{
    const void *b = sqlite3_column_blob(q, col);
    int n = sqlite3_column_bytes(q, col);
    if (n < 0 || (size_t)n < min || (size_t)n > cap)
        return false;
    if (n > 0)
        memcpy(dst, b, (size_t)n);
    if (len != NULL)
        *len = (uint8_t)n;
    return true;
}

/* Columns PLEDGE_COLS from col 0.  False when the row is not one this
 * code could have written (corrupted or hand-edited file). */
static bool read_pledge(sqlite3_stmt *q, cj_jrc_pledge_t *r)
{
    cj_store_row_t v = {
        .allowed_roles = sqlite3_column_int64(q, 2),
        .ssn_reserved = sqlite3_column_int64(q, 3),
        .replay_highest = sqlite3_column_int64(q, 4),
        .replay_bitmap = sqlite3_column_int64(q, 5),
        .replay_valid = sqlite3_column_int(q, 6) != 0,
        .joined = sqlite3_column_int(q, 8) != 0,
        .role = sqlite3_column_int64(q, 9),
        .short_id = sqlite3_column_int64(q, 10),
    };

    memset(r, 0, sizeof *r);
    if (!blob_col(q, 0, r->id, sizeof r->id, 1, &r->id_len))
        return false;
    if (sqlite3_column_bytes(q, 1) != 16 ||
        !blob_col(q, 1, r->psk, 16, 16, NULL))
        return false;
    if (sqlite3_column_type(q, 7) != SQLITE_NULL &&
        !blob_col(q, 7, r->id_context, sizeof r->id_context, 1,
                  &r->id_context_len))
        return false;
    return cj_store_row_fill(r, &v);
}

/* Inside the host's transaction, remember the row just read (lookups). */
static void know_row(cj_sqlite_t *s, const cj_jrc_pledge_t *r, bool live,
                     int64_t rowid)
{
    known_t *k = &s->known;

    if (!s->in_tx || s->tx_lost)
        return;
    k->row = true;
    memcpy(k->id, r->id, r->id_len);
    k->id_len = r->id_len;
    memcpy(k->ctx, r->id_context, r->id_context_len);
    k->ctx_len = r->id_context_len;
    memcpy(k->psk, r->psk, sizeof k->psk);
    k->ssn_reserved = (int64_t)r->ssn_reserved;
    k->replay_highest = (int64_t)r->replay.highest;
    k->replay_bitmap = (int64_t)r->replay.bitmap;
    k->replay_valid = r->replay.valid;
    k->live = live;
    k->short_id = r->short_id;
    k->rowid = rowid;
}

/* The current row of a lookup (LOOKUP_COLS) into *out, *live and
 * *rowid: CJ_OK, or CJ_ERR_STORAGE for a row this code could not have
 * written. */
static int read_lookup(sqlite3_stmt *q, cj_jrc_pledge_t *out, bool *live,
                       int64_t *rowid)
{
    int r = read_pledge(q, out) ? CJ_OK : CJ_ERR_STORAGE;
    if (r == CJ_OK && sqlite3_column_type(q, 11) != SQLITE_NULL &&
        !cj_store_repeat_unpack(sqlite3_column_blob(q, 11),
                                (size_t)sqlite3_column_bytes(q, 11),
                                &out->repeat))
        r = CJ_ERR_STORAGE;
    *live = sqlite3_column_int(q, 12) != 0;
    *rowid = sqlite3_column_int64(q, 15);
    if (r == CJ_OK && sqlite3_column_type(q, 13) != SQLITE_NULL)
        out->has_okm = blob_col(q, 13, out->okm, sizeof out->okm,
                                sizeof out->okm, NULL);
    out->must_recover = sqlite3_column_int(q, 14) != 0;
    return r;
}

/* A row read ahead is no longer one when it becomes the known row by
 * another way (a lookup by ID Context): the known row's writes do not
 * make the rows read ahead stale. */
static void ahead_forget_row(cj_sqlite_t *s, int64_t rowid)
{
    for (size_t i = 0; i < s->ahead.n; i++)
        if (s->ahead.row[i].ok && s->ahead.row[i].rowid == rowid)
            s->ahead.row[i].ok = false;
}

/* Step a single-row query into *out: CJ_OK, CJ_ERR_NOTFOUND or
 * CJ_ERR_STORAGE.  Resets q.  A query of LOOKUP_COLS (the lookups) also
 * reads the repeat cache, whether a lease is live, the derived material,
 * the recovery mark and the rowid, and the row becomes the known one. */
static int fetch_pledge(cj_sqlite_t *s, sqlite3_stmt *q, cj_jrc_pledge_t *out)
{
    bool full = sqlite3_column_count(q) == LOOKUP_NCOLS, live = false;
    int64_t rowid = 0;
    int r = step_row(s, q);
    if (r != CJ_OK)
        return r;
    if (full)
        r = read_lookup(q, out, &live, &rowid);
    else
        r = read_pledge(q, out) ? CJ_OK : CJ_ERR_STORAGE;
    done(q);
    if (r == CJ_OK && full) {
        ahead_forget_row(s, rowid);
        know_row(s, out, live, rowid);
    }
    return r;
}

/* ---- reading ahead ------------------------------------------------------ */

/* The query of cj_sqlite_prefetch() for up to `ids` ids (?1.., NULL for
 * none): their rows, each with the position of its id (column
 * LOOKUP_NCOLS).  The ids drive the loop (CROSS JOIN), each row found
 * through the id index, as a lookup finds it.  Every position of the
 * list costs a step, so a short batch takes the short list (AHEAD_SHORT
 * ids, while CJ_SQLITE_PREFETCH is longer). */
#define AHEAD_SHORT 16

static sqlite3_stmt *ahead_query(cj_sqlite_t *s, size_t ids)
{
    int which = ids <= AHEAD_SHORT && AHEAD_SHORT < CJ_SQLITE_PREFETCH;
    int len = which ? AHEAD_SHORT : CJ_SQLITE_PREFETCH;
    char sql[256 + 16 * CJ_SQLITE_PREFETCH];
    size_t n;

    if (s->ahead.q[which] != NULL)
        return s->ahead.q[which];
    n = (size_t)snprintf(sql, sizeof sql, "WITH q(i, k) AS (VALUES ");
    for (int i = 0; i < len && n < sizeof sql; i++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%s(%d, ?%d)",
                              i ? ", " : "", i, i + 1);
    if (n < sizeof sql)
        n += (size_t)snprintf(sql + n, sizeof sql - n,
                              ") SELECT " LOOKUP_COLS ", q.i FROM q"
                              " CROSS JOIN pledges ON pledges.id = q.k");
    if (n >= sizeof sql ||
        sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                           &s->ahead.q[which], NULL) != SQLITE_OK) {
        note_error(s);
        s->ahead.q[which] = NULL;
    }
    return s->ahead.q[which];
}

int cj_sqlite_prefetch(cj_sqlite_t *db, const uint8_t *const *ids,
                       const uint8_t *lens, size_t n)
{
    ahead_t *a = &db->ahead;
    uint8_t seen[2 * CJ_SQLITE_PREFETCH]; /* 1 + index, by rowid */
    sqlite3_stmt *q;
    int rc;

    ahead_drop(db);
    if (!db->in_tx || n == 0)
        return CJ_OK;
    if (db->tx_lost)
        return CJ_ERR_STORAGE;
    if (n > CJ_SQLITE_PREFETCH)
        n = CJ_SQLITE_PREFETCH;
    /* the known row's deferred writes first (it may be among them) */
    if (flush(db) != CJ_OK || (q = ahead_query(db, n)) == NULL)
        return CJ_ERR_STORAGE;
    for (size_t i = 0; i < n; i++)
        if (cj_store_id_ok(ids[i], lens[i]))
            sqlite3_bind_blob(q, (int)i + 1, ids[i], lens[i], SQLITE_STATIC);
    memset(seen, 0, sizeof seen);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t i = sqlite3_column_int64(q, LOOKUP_NCOLS);
        ahead_row_t *r;
        size_t h;

        if (i < 0 || (size_t)i >= n)
            continue;
        r = &a->row[i];
        if (read_lookup(q, &r->rec, &r->live, &r->rowid) != CJ_OK)
            continue; /* its lookup reads it and reports it */
        /* the known row is read by its lookup (its later writes would
         * not show here), and a pledge named twice only once */
        if (db->known.row && r->rowid == db->known.rowid)
            continue;
        h = (size_t)((uint64_t)r->rowid * 0x9e3779b97f4a7c15u >> 32) %
            sizeof seen;
        while (seen[h] && a->row[seen[h] - 1].rowid != r->rowid)
            h = (h + 1) % sizeof seen;
        if (seen[h])
            continue;
        seen[h] = (uint8_t)(i + 1);
        r->ok = true;
    }
    if (rc != SQLITE_DONE)
        note_error(db); /* forgets everything, the rows read too */
    done(q);
    if (rc != SQLITE_DONE)
        return CJ_ERR_STORAGE;
    a->n = n;
    a->next = 0;
    a->changes = sqlite3_total_changes(db->db);
    return CJ_OK;
}

/* A lookup that a row read ahead answers: CJ_OK (the row becomes the
 * known one), CJ_ERR_NOTFOUND (none does: read it) or CJ_ERR_STORAGE. */
static int ahead_take(cj_sqlite_t *s, const uint8_t *id, size_t id_len,
                      cj_jrc_pledge_t *out)
{
    ahead_t *a = &s->ahead;

    /* what the previous admission deferred is written first, as before
     * any read; then nothing else may have changed the file */
    if (flush(s) != CJ_OK)
        return CJ_ERR_STORAGE;
    if (a->n == 0 || !s->in_tx || s->tx_lost ||
        sqlite3_total_changes(s->db) != a->changes) {
        ahead_drop(s);
        return CJ_ERR_NOTFOUND;
    }
    /* lookups come in the order of the datagrams, as the ids did */
    for (size_t k = 0; k < a->n; k++) {
        size_t i = (a->next + k) % a->n;
        ahead_row_t *r = &a->row[i];
        if (r->ok && r->rec.id_len == id_len &&
            memcmp(r->rec.id, id, id_len) == 0) {
            memcpy(out, &r->rec, sizeof *out);
            r->ok = false;
            a->next = i + 1;
            know_row(s, out, r->live, r->rowid);
            return CJ_OK;
        }
    }
    return CJ_ERR_NOTFOUND;
}

/* ---- the store interface ------------------------------------------------ */

static int st_lookup(void *ctx, const uint8_t *id, size_t id_len,
                     cj_jrc_pledge_t *out)
{
    cj_sqlite_t *s = ctx;
    sqlite3_stmt *q;
    if (!cj_store_id_ok(id, id_len))
        return CJ_ERR_NOTFOUND;
    if (s->ahead.n > 0) {
        int r = ahead_take(s, id, id_len, out);
        if (r != CJ_ERR_NOTFOUND)
            return r;
    }
    if ((q = stmt_id(s, S_LOOKUP, id, id_len)) == NULL)
        return CJ_ERR_STORAGE;
    return fetch_pledge(s, q, out);
}

static int st_lookup_context(void *ctx, const uint8_t *ctx_id, size_t len,
                             cj_jrc_pledge_t *out)
{
    cj_sqlite_t *s = ctx;
    sqlite3_stmt *q;
    if (ctx_id == NULL || len == 0 || len > CJ_OSCORE_MAX_ID_CONTEXT)
        return CJ_ERR_NOTFOUND;
    if ((q = stmt(s, S_LOOKUP_CTX)) == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_blob(q, 1, ctx_id, (int)len, SQLITE_STATIC);
    return fetch_pledge(s, q, out);
}

/* Run a bound write statement as one unit: CJ_OK, CJ_ERR_NOTFOUND (it
 * changed no row and need_row is set) or CJ_ERR_STORAGE. */
static int write_unit(cj_sqlite_t *s, sqlite3_stmt *q, bool need_row)
{
    int r;

    forget_row(s); /* written first: this write comes after it */
    r = unit_begin(s, true);
    if (r != CJ_OK) {
        done(q);
        return CJ_ERR_STORAGE;
    }
    if (exec_stmt(s, q) != SQLITE_DONE)
        r = CJ_ERR_STORAGE;
    else if (need_row && sqlite3_changes(s->db) == 0)
        r = CJ_ERR_NOTFOUND;
    return unit_end(s, r, true);
}

/* An UPDATE keyed by pledge id (?1) as one unit: CJ_ERR_NOTFOUND when
 * there is no such pledge. */
static int update_one(cj_sqlite_t *s, sqlite3_stmt *q)
{
    return write_unit(s, q, true);
}

/* Bind ?1 = pledge id, ?2 = ID Context (NULL for the pledge id) and
 * ?3 = the PSK: the context a caller names (cojp/jrc.h). */
static void bind_id_ctx(sqlite3_stmt *q, const uint8_t *id, size_t id_len,
                        const uint8_t *psk, const uint8_t *ctx_id,
                        size_t ctx_len)
{
    sqlite3_bind_blob(q, 1, id, (int)id_len, SQLITE_STATIC);
    if (ctx_len > 0)
        sqlite3_bind_blob(q, 2, ctx_id, (int)ctx_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, 2);
    sqlite3_bind_blob(q, 3, psk, 16, SQLITE_STATIC);
}

/* The first n integer columns of statement which's row for pledge id
 * under the context of psk and ID Context ctx_id: CJ_OK, CJ_ERR_NOTFOUND
 * (no such row) or CJ_ERR_STORAGE. */
static int row_ints(cj_sqlite_t *s, int which, const uint8_t *id,
                    size_t id_len, const uint8_t *psk, const uint8_t *ctx_id,
                    size_t ctx_len, sqlite3_int64 *v, int n)
{
    sqlite3_stmt *q = stmt(s, which);
    int rc;

    if (q == NULL)
        return CJ_ERR_STORAGE;
    bind_id_ctx(q, id, id_len, psk, ctx_id, ctx_len);
    if ((rc = step_row(s, q)) != CJ_OK)
        return rc;
    for (int i = 0; i < n; i++)
        v[i] = sqlite3_column_int64(q, i);
    done(q);
    return CJ_OK;
}

/* Read-modify-write inside one unit: the unit holds the file's write
 * lock from its start (BEGIN IMMEDIATE, or the host's transaction that
 * began so), so no other handle or process writes in between. */
static int reserve(cj_sqlite_t *s, const uint8_t *id, size_t id_len,
                   const uint8_t *psk, const uint8_t *ctx_id, size_t ctx_len,
                   uint64_t from, uint64_t count, uint64_t *first)
{
    sqlite3_stmt *q;
    sqlite3_int64 have;
    uint64_t f;
    int rc;

    if (known_is(s, id, id_len)) {
        if (!known_ctx_is(s, psk, ctx_id, ctx_len))
            return CJ_ERR_NOTFOUND;
        have = s->known.ssn_reserved;
    } else {
        if ((rc = row_ints(s, S_SSN_OF, id, id_len, psk, ctx_id, ctx_len,
                           &have, 1)) != CJ_OK)
            return rc;
    }
    if (have < 0)
        return CJ_ERR_STORAGE;
    f = (uint64_t)have > from ? (uint64_t)have : from;
    if (f > (uint64_t)INT64_MAX || count > (uint64_t)INT64_MAX - f)
        return CJ_ERR_RANGE;
    if (known_is(s, id, id_len)) {
        s->known.ssn_reserved = (int64_t)(f + count);
        s->known.pend |= PEND_SSN;
        *first = f;
        return CJ_OK;
    }
    if ((q = stmt_id(s, S_SAVE_SSN, id, id_len)) == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_int64(q, 2, (sqlite3_int64)(f + count));
    if (exec_stmt(s, q) != SQLITE_DONE)
        return CJ_ERR_STORAGE;
    *first = f;
    return CJ_OK;
}

static int st_reserve_ssn(void *ctx, const uint8_t *id, size_t id_len,
                          const uint8_t *psk, const uint8_t *ctx_id,
                          size_t ctx_len, uint64_t from, uint64_t count,
                          uint64_t *first)
{
    cj_sqlite_t *s = ctx;
    uint64_t f = 0;
    int r;

    if (!cj_store_id_ok(id, id_len))
        return CJ_ERR_NOTFOUND;
    if (!cj_store_ctx_ok(ctx_id, ctx_len) || psk == NULL || first == NULL)
        return CJ_ERR_INVALID;
    if ((r = unit_begin(s, true)) != CJ_OK)
        return CJ_ERR_STORAGE;
    r = unit_end(s, reserve(s, id, id_len, psk, ctx_id, ctx_len, from, count,
                            &f),
                 true);
    if (r == CJ_OK)
        *first = f;
    return r;
}

static int accept(cj_sqlite_t *s, const uint8_t *id, size_t id_len,
                  const uint8_t *psk, const uint8_t *ctx_id, size_t ctx_len,
                  uint64_t piv, cj_oscore_replay_t *w)
{
    sqlite3_stmt *q;
    sqlite3_int64 hi = 0, bm = 0;
    int rc;

    if (known_is(s, id, id_len)) {
        if (!known_ctx_is(s, psk, ctx_id, ctx_len))
            return CJ_ERR_NOTFOUND;
        hi = s->known.replay_highest;
        bm = s->known.replay_bitmap;
        w->valid = s->known.replay_valid;
    } else {
        sqlite3_int64 v[3];
        if ((rc = row_ints(s, S_REPLAY_OF, id, id_len, psk, ctx_id, ctx_len,
                           v, 3)) != CJ_OK)
            return rc;
        hi = v[0];
        bm = v[1];
        w->valid = v[2] != 0;
    }
    if (hi < 0 || bm < 0 || bm > UINT32_MAX)
        return CJ_ERR_STORAGE;
    w->highest = (uint64_t)hi;
    w->bitmap = (uint32_t)bm;
    if (cj_oscore_replay_check(w, piv) != CJ_OK)
        return CJ_ERR_REPLAY;
    cj_oscore_replay_update(w, piv);
    if (known_is(s, id, id_len)) {
        s->known.replay_highest = cj_store_i64(w->highest);
        s->known.replay_bitmap = (int64_t)w->bitmap;
        s->known.replay_valid = w->valid;
        s->known.pend |= PEND_REPLAY;
        return CJ_OK;
    }
    if ((q = stmt_id(s, S_SAVE_REPLAY, id, id_len)) == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_int64(q, 2, cj_store_i64(w->highest));
    sqlite3_bind_int64(q, 3, (sqlite3_int64)w->bitmap);
    sqlite3_bind_int(q, 4, w->valid ? 1 : 0);
    return exec_stmt(s, q) == SQLITE_DONE ? CJ_OK : CJ_ERR_STORAGE;
}

static int st_accept_piv(void *ctx, const uint8_t *id, size_t id_len,
                         const uint8_t *psk, const uint8_t *ctx_id,
                         size_t ctx_len, uint64_t piv, cj_oscore_replay_t *w)
{
    cj_sqlite_t *s = ctx;
    cj_oscore_replay_t m;
    int r;

    if (!cj_store_id_ok(id, id_len))
        return CJ_ERR_NOTFOUND;
    if (!cj_store_ctx_ok(ctx_id, ctx_len) || psk == NULL || w == NULL)
        return CJ_ERR_INVALID;
    memset(&m, 0, sizeof m);
    if ((r = unit_begin(s, true)) != CJ_OK)
        return CJ_ERR_STORAGE;
    r = unit_end(s, accept(s, id, id_len, psk, ctx_id, ctx_len, piv, &m),
                 true);
    if (r == CJ_OK)
        *w = m;
    return r;
}

static int st_save_repeat(void *ctx, const uint8_t *id, size_t id_len,
                          const uint8_t *psk, const uint8_t *ctx_id,
                          size_t ctx_len, const cj_jrc_repeat_t *r)
{
    cj_sqlite_t *s = ctx;
    uint8_t b[CJ_STORE_REPEAT_MAX];
    size_t n;
    sqlite3_stmt *q;

    if (!cj_store_id_ok(id, id_len))
        return CJ_ERR_NOTFOUND;
    if (!cj_store_ctx_ok(ctx_id, ctx_len) || psk == NULL || r == NULL)
        return CJ_ERR_INVALID;
    if (known_is(s, id, id_len)) {
        if (!known_ctx_is(s, psk, ctx_id, ctx_len))
            return CJ_ERR_NOTFOUND;
        s->known.repeat_len = cj_store_repeat_pack(r, s->known.repeat);
        s->known.pend |= PEND_REPEAT;
        return CJ_OK;
    }
    if ((q = stmt(s, S_SAVE_REPEAT)) == NULL)
        return CJ_ERR_STORAGE;
    bind_id_ctx(q, id, id_len, psk, ctx_id, ctx_len);
    n = cj_store_repeat_pack(r, b);
    if (n > 0)
        sqlite3_bind_blob(q, 4, b, (int)n, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, 4);
    return update_one(s, q);
}

static int st_save_context(void *ctx, const uint8_t *id, size_t id_len,
                           const uint8_t *psk, const uint8_t *ctx_id,
                           size_t ctx_len)
{
    cj_sqlite_t *s = ctx;
    sqlite3_stmt *q;
    if (!cj_store_id_ok(id, id_len))
        return CJ_ERR_NOTFOUND;
    if (!cj_store_ctx_ok(ctx_id, ctx_len) || psk == NULL)
        return CJ_ERR_INVALID;
    if ((q = stmt(s, S_SAVE_CTX)) == NULL)
        return CJ_ERR_STORAGE;
    bind_id_ctx(q, id, id_len, psk, ctx_id, ctx_len);
    return update_one(s, q);
}

/* Clear ended leases (for everyone), so that their ids can be taken
 * again.  No index covers lease_until (migration 10: it cost every
 * admission an index write), so a sweep scans the table twice: once to
 * clear what ended by now, once for the earliest end left.  That bound
 * outlives the transaction (lease_bound_t), and a sweep is put off until
 * CJ_SQLITE_SWEEP_GAP_MS after the last one, so leases that end one
 * after another cost one sweep per gap, not one per assignment; an id
 * whose lease ended is held that much longer, or until an assignment
 * finds no free id (assign() then sweeps at once). */
static bool sweep_due(cj_sqlite_t *s, int64_t now)
{
    if (s->in_tx)
        (void)known_holds(s); /* writes it did not make drop the bound */
    if (!s->lease.ok)
        return true;
    if (now < cj_store_add_ms(s->lease.swept_at, CJ_SQLITE_SWEEP_GAP_MS))
        return false;
    return s->lease.stale || now >= s->lease.min;
}

static int sweep(cj_sqlite_t *s, int64_t now)
{
    sqlite3_stmt *q;
    int64_t m;
    bool cleared;
    int rc;

    if ((q = stmt(s, S_EXPIRE)) == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_int64(q, 1, now);
    if (exec_stmt(s, q) != SQLITE_DONE)
        return CJ_ERR_STORAGE;
    cleared = sqlite3_changes(s->db) > 0;
    if (cleared)
        forget_row(s); /* its lease may have been one of them */
    if ((q = stmt(s, S_LEASE_MIN)) == NULL)
        return CJ_ERR_STORAGE;
    if ((rc = step_row(s, q)) != CJ_OK)
        return CJ_ERR_STORAGE;
    m = sqlite3_column_type(q, 0) == SQLITE_NULL ? INT64_MAX
                                                  : sqlite3_column_int64(q, 0);
    done(q);
    s->lease.ok = true;
    s->lease.stale = false;
    s->lease.swept_at = now;
    s->lease.min = m;
    /* The scan saw every write made through this connection so far: the
     * bound covers them, committed or not, unless the sweep itself
     * cleared leases, which a rollback would bring back (then the next
     * commit, or the next begin's lease_check, settles it). */
    if (!cleared)
        s->lease.changes = sqlite3_total_changes(s->db);
    return CJ_OK;
}

/* A lease of the pledge ends at until now: lower the bound if needed.
 * took: by S_TAKE, which also made the row's deferred writes. */
static void lease_taken(cj_sqlite_t *s, const uint8_t *id, size_t id_len,
                        int64_t until, int64_t short_id, bool took)
{
    if (s->lease.ok && until < s->lease.min)
        s->lease.min = until;
    if (known_is(s, id, id_len)) {
        s->known.live = true;
        s->known.short_id = short_id;
        if (took)
            s->known.pend = 0;
    }
    if (short_id == s->known.free_lo && short_id < s->known.free_hi)
        s->known.free_lo++;
    else if (short_id > s->known.free_lo && short_id < s->known.free_hi)
        s->known.free_hi = short_id;
}

/* Whether short id cur is free (no live lease): 1, 0, or CJ_ERR_STORAGE.
 * Inside the host's transaction, one query finds the run of free ids
 * that starts at cur (up to the next live lease); the run stays free
 * until the transaction ends but for the ids this handle takes from it
 * (lease_taken), so the next assignments at the cursor ask nothing. */
static int id_free(cj_sqlite_t *s, int64_t cur)
{
    sqlite3_stmt *q;
    int64_t next;
    int rc;

    if (known_holds(s) && cur >= s->known.free_lo && cur < s->known.free_hi)
        return 1;
    if ((q = stmt(s, S_PROBE)) == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_int64(q, 1, cur);
    if ((rc = step_row(s, q)) != CJ_OK)
        return CJ_ERR_STORAGE; /* an aggregate always has a row */
    next = sqlite3_column_type(q, 0) == SQLITE_NULL
               ? CJ_STORE_SHORT_MAX + 1
               : sqlite3_column_int64(q, 0);
    done(q);
    /* the known row's lease may still wait for its flush */
    if ((s->known.pend & PEND_LEASE) && s->known.short_id >= cur &&
        s->known.short_id < next)
        next = s->known.short_id;
    if (next == cur)
        return 0;
    if (known_holds(s)) {
        s->known.free_lo = cur;
        s->known.free_hi = next;
    }
    return 1;
}

/* The cursor: where the search for a free id starts.  Inside the host's
 * transaction it is read once and written when the transaction commits
 * (cursor_flush), so an assignment writes one row only. */
static int cursor_get(cj_sqlite_t *s, int64_t *cur)
{
    sqlite3_stmt *q;
    int rc;

    if (known_holds(s) && s->known.cursor_ok) {
        *cur = s->known.cursor;
        return CJ_OK;
    }
    if ((q = stmt(s, S_CURSOR_GET)) == NULL)
        return CJ_ERR_STORAGE;
    if ((rc = step_row(s, q)) != CJ_OK)
        return CJ_ERR_STORAGE;
    *cur = sqlite3_column_int64(q, 0);
    done(q);
    if (s->in_tx) {
        s->known.cursor_ok = true;
        s->known.cursor = *cur;
        s->known.cursor_dirty = false;
    }
    return CJ_OK;
}

static int cursor_set(cj_sqlite_t *s, int64_t v)
{
    sqlite3_stmt *q;

    if (s->in_tx) {
        s->known.cursor = v;
        s->known.cursor_dirty = true;
        return CJ_OK;
    }
    if ((q = stmt(s, S_CURSOR_SET)) == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_int64(q, 1, v);
    return exec_stmt(s, q) == SQLITE_DONE ? CJ_OK : CJ_ERR_STORAGE;
}

/* Write the cursor before the host's transaction commits. */
static int cursor_flush(cj_sqlite_t *s)
{
    sqlite3_stmt *q;

    if (!s->known.cursor_dirty)
        return CJ_OK;
    if ((q = stmt(s, S_CURSOR_SET)) == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_int64(q, 1, s->known.cursor);
    if (exec_stmt(s, q) != SQLITE_DONE)
        return CJ_ERR_STORAGE;
    s->known.cursor_dirty = false;
    return CJ_OK;
}

/* Body of assign_short_id, inside a unit of work (see there). */
static int assign(cj_sqlite_t *s, const uint8_t *id, size_t id_len,
                  int64_t now, int64_t until, bool fresh, uint16_t *short_id)
{
    sqlite3_stmt *q;
    int64_t cur, found = 0, mine;
    bool taken = false, live, swept = false;
    int rc;

    if (sweep_due(s, now)) {
        if ((rc = sweep(s, now)) != CJ_OK)
            return rc;
        swept = true; /* a second one at the same time would clear nothing */
    }
    /* a deferred lease of the known row is made before another pledge
     * takes an id */
    if ((s->known.pend & PEND_LEASE) && !known_is(s, id, id_len) &&
        flush(s) != CJ_OK)
        return CJ_ERR_STORAGE;

    if (known_is(s, id, id_len)) {
        live = s->known.live;
        mine = s->known.short_id;
    } else {
        if ((q = stmt_id(s, S_LEASE_OF, id, id_len)) == NULL)
            return CJ_ERR_STORAGE;
        if ((rc = step_row(s, q)) != CJ_OK)
            return rc;
        live = sqlite3_column_type(q, 0) != SQLITE_NULL;
        mine = sqlite3_column_int64(q, 1);
        done(q);
    }

    if (!fresh && live) {
        /* keep the id, the lease restarts at now */
        if (mine < 1 || mine > CJ_STORE_SHORT_MAX)
            return CJ_ERR_STORAGE; /* not a row this code wrote */
        if ((q = stmt_id(s, S_RENEW, id, id_len)) == NULL)
            return CJ_ERR_STORAGE;
        sqlite3_bind_int64(q, 2, until);
        if (exec_stmt(s, q) != SQLITE_DONE)
            return CJ_ERR_STORAGE;
        lease_taken(s, id, id_len, until, mine, false);
        *short_id = (uint16_t)mine;
        return CJ_OK;
    }

    if ((rc = cursor_get(s, &cur)) != CJ_OK)
        return rc;
    if (cur < 1 || cur > CJ_STORE_SHORT_MAX)
        cur = 1;

    /* The cursor itself is free unless the ids wrapped around.  For the
     * known row, ask the unique index (id_free) and, when it is free,
     * make the lease one of the row's deferred writes: inside the
     * transaction no other writer exists and every other row's writes
     * are made (only the known row defers), so the answer stays true
     * until the flush.  For any other pledge, take it at once; the unique
     * index refuses it when it is leased (the failed statement changes
     * nothing). */
    if (!(live && mine == cur) && known_is(s, id, id_len)) {
        if ((rc = id_free(s, cur)) < 0)
            return CJ_ERR_STORAGE;
        if (rc == 1) {
            s->known.lease_until = until;
            s->known.pend |= PEND_LEASE;
            lease_taken(s, id, id_len, until, cur, false);
            *short_id = (uint16_t)cur;
            return cursor_set(s, cur + 1 > CJ_STORE_SHORT_MAX ? 1 : cur + 1);
        }
    } else if (!(live && mine == cur)) {
        if ((q = stmt_id(s, S_TAKE, id, id_len)) == NULL)
            return CJ_ERR_STORAGE;
        bind_pending(s, q, known_is(s, id, id_len));
        sqlite3_bind_int64(q, 10, cur);
        sqlite3_bind_int64(q, 11, until);
        rc = sqlite3_step(q);
        done(q);
        s->known.changes = sqlite3_total_changes(s->db);
        if (rc == SQLITE_DONE)
            found = cur, taken = true;
        else if ((rc & 0xff) != SQLITE_CONSTRAINT ||
                 sqlite3_get_autocommit(s->db)) {
            note_error(s);
            return CJ_ERR_STORAGE;
        }
    }

    /* From the cursor to 0xfffd, then from 1: the node's own live id
     * (fresh) is still leased during the search, so it is skipped.  When
     * none is free but leases may have ended unswept (a sweep put off,
     * or leases the bound does not know of), sweep and search again;
     * should the call fail after all, the sweep stands: clearing leases
     * that ended changes nothing a caller can tell. */
search:
    for (int pass = 0; pass < 2 && found == 0; pass++) {
        if ((q = stmt(s, S_FREE_FROM)) == NULL)
            return CJ_ERR_STORAGE;
        sqlite3_bind_int64(q, 1, pass == 0 ? cur : 1);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            found = sqlite3_column_int64(q, 0);
        else if (rc != SQLITE_DONE)
            note_error(s);
        done(q);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return CJ_ERR_STORAGE;
        if (found > CJ_STORE_SHORT_MAX)
            found = 0;
    }
    if (found == 0 && !swept &&
        (!s->lease.ok || s->lease.stale || now >= s->lease.min)) {
        if ((rc = sweep(s, now)) != CJ_OK)
            return rc;
        swept = true;
        goto search;
    }
    if (found == 0)
        return CJ_ERR_NOSPACE;

    if (!taken) {
        if ((q = stmt_id(s, S_TAKE, id, id_len)) == NULL)
            return CJ_ERR_STORAGE;
        bind_pending(s, q, known_is(s, id, id_len));
        sqlite3_bind_int64(q, 10, found);
        sqlite3_bind_int64(q, 11, until);
        if (exec_stmt(s, q) != SQLITE_DONE)
            return CJ_ERR_STORAGE;
    }
    lease_taken(s, id, id_len, until, found, true);
    if ((rc = cursor_set(s, found + 1 > CJ_STORE_SHORT_MAX ? 1 : found + 1)) !=
        CJ_OK)
        return rc;
    *short_id = (uint16_t)found;
    return CJ_OK;
}

/* One unit of work.  Inside the host's transaction, when no sweep is due
 * and the cursor waits for the commit, the only write is the one UPDATE
 * that takes or renews the lease: no savepoint then (unit_begin).  A
 * direct take refused by the unique index is undone by SQLite alone. */
static int st_assign_short_id(void *ctx, const uint8_t *id, size_t id_len,
                              uint64_t now_ms, uint32_t lease_hours,
                              bool fresh, uint16_t *short_id)
{
    cj_sqlite_t *s = ctx;
    int64_t now = cj_store_i64(now_ms);
    int64_t until = cj_store_lease_end(now, lease_hours);
    bool single = s->in_tx && !sweep_due(s, now);
    uint16_t sid = 0;
    int r;

    if (!cj_store_id_ok(id, id_len))
        return CJ_ERR_NOTFOUND;
    if ((r = unit_begin(s, single)) != CJ_OK)
        return CJ_ERR_STORAGE;
    r = unit_end(s, assign(s, id, id_len, now, until, fresh, &sid), single);
    if (r == CJ_OK)
        *short_id = sid;
    return r == CJ_ERR_NOTFOUND || r == CJ_ERR_NOSPACE || r == CJ_OK
               ? r
               : CJ_ERR_STORAGE;
}

static int st_record_join(void *ctx, const uint8_t *id, size_t id_len,
                          uint8_t role, uint16_t short_id, uint64_t now_ms)
{
    cj_sqlite_t *s = ctx;
    sqlite3_stmt *q;
    if (!cj_store_id_ok(id, id_len))
        return CJ_ERR_NOTFOUND;
    if (known_is(s, id, id_len) && s->known.short_id == short_id) {
        /* the usual case, right after the assignment: short_id is in
         * the row already */
        s->known.role = role;
        s->known.joined_at = cj_store_i64(now_ms);
        s->known.pend |= PEND_JOIN;
        return CJ_OK;
    }
    s->known.free_hi = 0; /* the row may hold a lease under another id */
    if ((q = stmt_id(s, S_JOIN, id, id_len)) == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_int(q, 2, role);
    sqlite3_bind_int(q, 3, short_id);
    sqlite3_bind_int64(q, 4, cj_store_i64(now_ms));
    return update_one(s, q);
}

/* update_one of statement which binding only the pledge id (?1) and,
 * when stamp, the wall clock (?2). */
static int update_id(cj_sqlite_t *s, int which, const uint8_t *id,
                     size_t id_len, bool stamp)
{
    sqlite3_stmt *q;
    if (!cj_store_id_ok(id, id_len))
        return CJ_ERR_NOTFOUND;
    if ((q = stmt_id(s, which, id, id_len)) == NULL)
        return CJ_ERR_STORAGE;
    if (stamp)
        sqlite3_bind_int64(q, 2, cj_store_i64(cj_store_wall_ms()));
    return update_one(s, q);
}

static int st_release(void *ctx, const uint8_t *id, size_t id_len)
{
    return update_id(ctx, S_RELEASE_LEASE, id, id_len, false);
}

static int st_next_joined(void *ctx, uint64_t *cursor, cj_jrc_pledge_t *out)
{
    cj_sqlite_t *s = ctx;
    sqlite3_stmt *q = stmt(s, S_NEXT_JOINED);
    int r;
    sqlite3_int64 seq = 0;

    if (q == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_int64(q, 1, cj_store_i64(*cursor));
    if ((r = step_row(s, q)) != CJ_OK)
        return r;
    seq = sqlite3_column_int64(q, 11);
    r = read_pledge(q, out) && seq >= 0 ? CJ_OK : CJ_ERR_STORAGE;
    done(q);
    if (r == CJ_OK)
        *cursor = (uint64_t)seq + 1;
    return r;
}

static int st_node_address(void *ctx, const uint8_t *id, size_t id_len,
                           cj_addr_t *addr)
{
    cj_sqlite_t *s = ctx;
    sqlite3_stmt *q;
    cj_addr_t a;
    int col, r;

    if (!cj_store_id_ok(id, id_len))
        return CJ_ERR_NOTFOUND;
    if ((q = stmt_id(s, S_ADDRESS, id, id_len)) == NULL)
        return CJ_ERR_STORAGE;
    memset(&a, 0, sizeof a);
    if ((r = step_row(s, q)) != CJ_OK)
        return r;
    /* no address set: the pledge id stands for it (jrc_memstore) */
    col = sqlite3_column_type(q, 0) == SQLITE_NULL ? 1 : 0;
    r = blob_col(q, col, a.b, sizeof a.b, 1, &a.len) ? CJ_OK : CJ_ERR_STORAGE;
    done(q);
    if (r == CJ_OK)
        *addr = a;
    return r;
}

static int st_record_update(void *ctx, const uint8_t *id, size_t id_len,
                            uint32_t campaign, bool acked)
{
    cj_sqlite_t *s = ctx;
    sqlite3_stmt *q;
    if (!cj_store_id_ok(id, id_len))
        return CJ_ERR_NOTFOUND;
    if ((q = stmt_id(s, S_RECORD_UPDATE, id, id_len)) == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_int64(q, 2, cj_store_i64(s->session));
    sqlite3_bind_int64(q, 3, (sqlite3_int64)campaign);
    sqlite3_bind_int(q, 4, acked ? 1 : 0);
    sqlite3_bind_int64(q, 5, cj_store_i64(cj_store_wall_ms()));
    return update_one(s, q);
}

/* ---- open, close, migrations --------------------------------------------- */

static int exec_sql(cj_sqlite_t *s, const char *sql)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        note_error(s);
    return rc;
}

static int map_rc(int rc)
{
    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW)
        return CJ_OK;
    return (rc & 0xff) == SQLITE_BUSY ? CJ_ERR_BUSY : CJ_ERR_STORAGE;
}

static int query_int(cj_sqlite_t *s, const char *sql, sqlite3_int64 *v)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
    if (rc != SQLITE_OK) {
        note_error(s);
        return rc;
    }
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int64(q, 0);
        rc = SQLITE_OK;
    } else {
        note_error(s);
    }
    sqlite3_finalize(q);
    return rc;
}

/* Migration 5's check: CJ_OK when no two pledges share a PSK, else
 * CJ_ERR_PSK_REUSED with their ids listed in why. */
static int psks_unique(cj_sqlite_t *s, char *why, size_t whycap)
{
    cj_store_shared_t l;
    char none[1];
    sqlite3_stmt *q;
    int rc;

    if (why == NULL || whycap == 0) {
        why = none;
        whycap = sizeof none;
    }
    cj_store_shared_init(&l, why, whycap);
    if (sqlite3_prepare_v2(s->db, CJ_STORE_SHARED_PSK_SQL, -1, &q, NULL) != SQLITE_OK) {
        note_error(s);
        return CJ_ERR_STORAGE;
    }
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        uint8_t id[CJ_JRC_MAX_ID], n = 0;
        if (!blob_col(q, 0, id, sizeof id, 1, &n)) {
            rc = SQLITE_CORRUPT;
            break;
        }
        cj_store_shared_add(&l, sqlite3_column_int64(q, 1), id, n);
    }
    if (rc != SQLITE_DONE)
        note_error(s);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return CJ_ERR_STORAGE;
    return cj_store_shared_end(&l) == 0 ? CJ_OK : CJ_ERR_PSK_REUSED;
}

static int apply_fix(cj_sqlite_t *s, cj_store_fix_t *fix);

/* Bring the schema up to date and take a session number, in one write
 * transaction, so two processes opening a new file at once cannot both
 * run migration 1.  A migration's check that fails rolls everything
 * back (its reason in why).
 *
 * With fix (a repair, cj_sqlite_repair), a check refusing pledges that
 * share a PSK makes the fix first, in the same transaction, and is asked
 * again; if it still refuses, the migrations before it and the fix are
 * committed, no further migration runs and CJ_ERR_PSK_REUSED is returned
 * (fix->done set).  A fix no check asked for is made once the schema is
 * current.  A fix that fails rolls everything back; its error is
 * returned. */
static int migrate(cj_sqlite_t *s, char *why, size_t whycap,
                   cj_store_fix_t *fix)
{
    sqlite3_int64 have = 0, app = 0, sess = 0;
    bool stopped = false;
    int rc;

    rc = exec_sql(s, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK)
        return map_rc(rc);
    rc = query_int(s, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK && app != 0 && app != APP_ID) {
        exec_sql(s, "ROLLBACK");
        return CJ_ERR_STORAGE; /* some other program's database */
    }
    if (rc == SQLITE_OK)
        rc = exec_sql(s, "CREATE TABLE IF NOT EXISTS schema_version ("
                         " version INTEGER PRIMARY KEY,"
                         " applied_at INTEGER NOT NULL)");
    if (rc == SQLITE_OK)
        rc = query_int(s, "SELECT coalesce(max(version), 0) FROM schema_version",
                       &have);
    if (rc == SQLITE_OK && have > migrations[N_MIGRATIONS - 1].version) {
        exec_sql(s, "ROLLBACK");
        return CJ_ERR_UNSUPPORTED;
    }
    for (size_t i = 0; rc == SQLITE_OK && i < N_MIGRATIONS; i++) {
        char row[96];
        int r;
        if (migrations[i].version <= have)
            continue;
        if (migrations[i].check != NULL &&
            (r = migrations[i].check(s, why, whycap)) != CJ_OK) {
            if (r == CJ_ERR_PSK_REUSED && fix != NULL && !fix->done) {
                if ((r = apply_fix(s, fix)) == CJ_OK)
                    r = migrations[i].check(s, why, whycap);
            }
            if (r == CJ_ERR_PSK_REUSED && fix != NULL && fix->done) {
                stopped = true;
                break;
            }
            if (r != CJ_OK) {
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                if (fix != NULL)
                    fix->done = false;
                return r;
            }
        }
        rc = exec_sql(s, migrations[i].sql);
        if (rc != SQLITE_OK)
            break;
        snprintf(row, sizeof row,
                 "INSERT INTO schema_version VALUES (%d, %llu)",
                 migrations[i].version, (unsigned long long)cj_store_wall_ms());
        rc = exec_sql(s, row);
    }
    if (rc == SQLITE_OK && fix != NULL && !fix->done && !stopped) {
        int r = apply_fix(s, fix);
        if (r != CJ_OK) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return r;
        }
    }
    if (rc == SQLITE_OK && app == 0) {
        char pragma[48];
        snprintf(pragma, sizeof pragma, "PRAGMA application_id = %d", APP_ID);
        rc = exec_sql(s, pragma);
    }
    if (rc == SQLITE_OK)
        rc = exec_sql(s, "UPDATE registry_state SET sessions = sessions + 1");
    if (rc == SQLITE_OK)
        rc = query_int(s, "SELECT sessions FROM registry_state", &sess);
    if (rc == SQLITE_OK)
        rc = exec_sql(s, "COMMIT");
    if (rc != SQLITE_OK) {
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        if (fix != NULL)
            fix->done = false;
        return map_rc(rc);
    }
    s->session = (uint64_t)sess;
    return stopped ? CJ_ERR_PSK_REUSED : CJ_OK;
}

/* A reader's check of the schema: in one read transaction, the file is
 * a cojp registry whose schema is the current one.  CJ_ERR_STATE when it
 * is older (the caller migrates), else as migrate(). */
static int schema_current(cj_sqlite_t *s)
{
    sqlite3_int64 have = 0, app = 0;
    int rc = exec_sql(s, "BEGIN");
    if (rc != SQLITE_OK)
        return map_rc(rc);
    rc = query_int(s, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK && app != APP_ID)
        rc = app == 0 ? SQLITE_DONE : SQLITE_ERROR; /* new file / foreign */
    if (rc == SQLITE_OK)
        rc = query_int(s, "SELECT coalesce(max(version), 0) FROM schema_version", &have);
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc == SQLITE_DONE)
        return CJ_ERR_STATE;
    if (rc != SQLITE_OK)
        return map_rc(rc);
    if (have > migrations[N_MIGRATIONS - 1].version)
        return CJ_ERR_UNSUPPORTED;
    return have == migrations[N_MIGRATIONS - 1].version ? CJ_OK : CJ_ERR_STATE;
}

int cj_sqlite_open(cj_sqlite_t **out, const char *path)
{
    return cj_sqlite_open_as(out, path, false, NULL, 0);
}

static int open_with(cj_sqlite_t **out, const char *path, bool reader,
                     char *why, size_t whycap, cj_store_fix_t *fix);

int cj_sqlite_open_as(cj_sqlite_t **out, const char *path, bool reader,
                      char *why, size_t whycap)
{
    return open_with(out, path, reader, why, whycap, NULL);
}

int cj_sqlite_repair(const char *path, const uint8_t *id, size_t id_len,
                     const uint8_t *psk, uint64_t now_ms, bool *upgraded,
                     char *why, size_t whycap)
{
    cj_store_fix_t fix = {id, id_len, psk, now_ms, false};
    cj_sqlite_t *s = NULL;
    int rc;

    *upgraded = false;
    if (!cj_store_id_ok(id, id_len))
        return CJ_ERR_INVALID;
    rc = open_with(&s, path, false, why, whycap, &fix);
    cj_sqlite_close(s);
    if (rc == CJ_OK)
        *upgraded = true;
    else if (!fix.done)
        return rc;
    return CJ_OK;
}

/* SQLite's memory: the library this is built against may lack its own
 * cache of small allocations (SQLITE_OMIT_LOOKASIDE, as Debian's), and
 * every statement run allocates and frees a dozen buffers (records,
 * column values).  Blocks up to MEM_SMALL bytes, in classes of MEM_STEP,
 * go back to a list of the freeing thread's instead of to malloc (at
 * most MEM_KEEP per class and thread; a thread's lists are freed when it
 * ends), everything else to malloc.  Each block starts with its size. */
#define MEM_STEP 64
#define MEM_SMALL 1024
#define MEM_CLASSES (MEM_SMALL / MEM_STEP)
#define MEM_KEEP 32

typedef union mem_hdr {
    size_t size;             /* usable bytes after the header */
    max_align_t align;
    union mem_hdr *next;     /* while on a list: the next block */
} mem_hdr_t;

typedef struct mem_lists {
    mem_hdr_t *head[MEM_CLASSES];
    unsigned n[MEM_CLASSES];
    bool keyed;              /* mem_key holds this thread's lists */
} mem_lists_t;

static _Thread_local mem_lists_t mem_tl;
static pthread_key_t mem_key;

static void mem_release(void *arg)
{
    mem_lists_t *l = arg;
    for (size_t c = 0; c < MEM_CLASSES; c++) {
        while (l->head[c] != NULL) {
            mem_hdr_t *h = l->head[c];
            l->head[c] = h->next;
            free(h);
        }
        l->n[c] = 0;
    }
    l->keyed = false; /* a later free registers the lists again */
}

static int mem_roundup(int n)
{
    if (n <= 0)
        return MEM_STEP;
    if (n <= MEM_SMALL)
        return (n + MEM_STEP - 1) / MEM_STEP * MEM_STEP;
    return n > INT_MAX - 8 ? n : (n + 7) & ~7;
}

static void *mem_malloc(int n)
{
    size_t sz = (size_t)mem_roundup(n);
    mem_hdr_t *h;

    if (sz <= MEM_SMALL) {
        size_t c = sz / MEM_STEP - 1;
        if ((h = mem_tl.head[c]) != NULL) {
            mem_tl.head[c] = h->next;
            mem_tl.n[c]--;
            h->size = sz;
            return h + 1;
        }
    }
    if ((h = malloc(sizeof *h + sz)) == NULL)
        return NULL;
    h->size = sz;
    return h + 1;
}

static void mem_free(void *p)
{
    mem_hdr_t *h = (mem_hdr_t *)p - 1;

    if (h->size <= MEM_SMALL) {
        size_t c = h->size / MEM_STEP - 1;
        if (mem_tl.n[c] < MEM_KEEP &&
            (mem_tl.keyed ||
             (mem_tl.keyed = pthread_setspecific(mem_key, &mem_tl) == 0))) {
            h->next = mem_tl.head[c];
            mem_tl.head[c] = h;
            mem_tl.n[c]++;
            return;
        }
    }
    free(h);
}

static int mem_size(void *p)
{
    return p == NULL ? 0 : (int)((mem_hdr_t *)p - 1)->size;
}

static void *mem_realloc(void *p, int n)
{
    void *q;
    int have = mem_size(p);

    if (n <= have)
        return p;
    if ((q = mem_malloc(n)) == NULL)
        return NULL;
    memcpy(q, p, (size_t)have);
    mem_free(p);
    return q;
}

static int mem_init(void *arg)
{
    (void)arg;
    return SQLITE_OK;
}

static void mem_shutdown(void *arg)
{
    (void)arg;
}

/* Process-wide settings, made before SQLite initialises (later they
 * cannot be changed, and sqlite3_config() refuses harmlessly): the
 * allocator above, and memory statistics off: with them, every
 * allocation takes a global mutex and updates counters nobody here
 * reads. */
static void sqlite_setup(void)
{
    static const sqlite3_mem_methods mem = {
        mem_malloc, mem_free, mem_realloc, mem_size, mem_roundup,
        mem_init,   mem_shutdown, NULL,
    };

    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (pthread_key_create(&mem_key, mem_release) == 0)
        (void)sqlite3_config(SQLITE_CONFIG_MALLOC, &mem);
}

static int open_with(cj_sqlite_t **out, const char *path, bool reader,
                     char *why, size_t whycap, cj_store_fix_t *fix)
{
    static pthread_once_t setup = PTHREAD_ONCE_INIT;
    cj_sqlite_t *s;
    sqlite3_int64 sync = 0;
    int rc, r;

    *out = NULL;
    (void)pthread_once(&setup, sqlite_setup);
    if (why != NULL && whycap > 0)
        why[0] = '\0';
    /* The registry holds PSKs: a new file is made readable by its owner
     * only (SQLite gives the -wal and -shm files the same mode). */
    if (!reader && strcmp(path, ":memory:") != 0 && strncmp(path, "file:", 5) != 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
        else if (errno != EEXIST)
            return CJ_ERR_STORAGE;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return CJ_ERR_STORAGE;
    rc = sqlite3_open_v2(path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                             (reader ? 0 : SQLITE_OPEN_CREATE),
                         NULL);
    if (rc != SQLITE_OK) {
        if (s->db != NULL)
            sqlite3_close(s->db);
        free(s);
        return CJ_ERR_STORAGE;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, CJ_SQLITE_BUSY_MS);

    /* Another program's database is left exactly as it is: refused
     * before anything (the journal mode below) could change it. */
    {
        sqlite3_int64 app = 0;
        if (query_int(s, "PRAGMA application_id", &app) != SQLITE_OK ||
            (app != 0 && app != APP_ID)) {
            sqlite3_close(s->db);
            free(s);
            return CJ_ERR_STORAGE;
        }
    }
    /* WAL needs to be set outside a transaction and sticks to the file;
     * synchronous=FULL makes every commit fsync the WAL, so a committed
     * transaction survives power loss (NORMAL would only keep the file
     * consistent, possibly losing the last commits: a reused nonce). */
    r = CJ_ERR_STORAGE;
    {
        sqlite3_stmt *q;
        rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &q,
                                NULL);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(q);
            if (rc == SQLITE_ROW &&
                strcmp((const char *)sqlite3_column_text(q, 0), "wal") == 0)
                rc = SQLITE_OK;
            else
                r = map_rc(rc == SQLITE_ROW ? SQLITE_ERROR : rc);
            sqlite3_finalize(q);
        }
    }
    if (rc == SQLITE_OK)
        rc = exec_sql(s, "PRAGMA synchronous = FULL");
    if (rc == SQLITE_OK)
        rc = exec_sql(s, "PRAGMA foreign_keys = ON");
    if (rc == SQLITE_OK)
        rc = exec_sql(s, "PRAGMA trusted_schema = OFF");
    if (rc == SQLITE_OK && query_int(s, "PRAGMA synchronous", &sync) == SQLITE_OK &&
        sync != 2)
        rc = SQLITE_ERROR;
    if (rc == SQLITE_OK) {
        /* A reader writes nothing while the schema is current (no
         * session number: it records no campaign outcome). */
        r = reader ? schema_current(s) : CJ_ERR_STATE;
        if (r == CJ_ERR_STATE)
            r = migrate(s, why, whycap, fix);
    }
    if (rc != SQLITE_OK || r != CJ_OK) {
        if (r == CJ_OK)
            r = CJ_ERR_STORAGE;
        /* a repair's change may have prepared statements (S_RETIRED):
         * sqlite3_close() leaves a connection with any open */
        for (int i = 0; i < S_COUNT; i++)
            sqlite3_finalize(s->st[i]);
        sqlite3_close(s->db);
        free(s);
        return r;
    }

    s->store = (cj_jrc_store_t)CJ_STORE_CALLBACKS(s);
    s->pp.wal_fd = -1;
    s->pp.wake[0] = s->pp.wake[1] = -1;
    {
        const char *f = sqlite3_db_filename(s->db, "main");
        if (f != NULL && *f != '\0' &&
            (s->pp.wal_path = malloc(strlen(f) + 5)) != NULL)
            sprintf(s->pp.wal_path, "%s-wal", f);
    }
    *out = s;
    return CJ_OK;
}

static void pipe_stop(cj_sqlite_t *s);

void cj_sqlite_close(cj_sqlite_t *db)
{
    if (db == NULL)
        return;
    pipe_stop(db);
    if (!sqlite3_get_autocommit(db->db))
        sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(db->st[i]);
    sqlite3_finalize(db->ahead.q[0]);
    sqlite3_finalize(db->ahead.q[1]);
    sqlite3_close(db->db);
    ahead_drop(db);
    free(db);
}

const cj_jrc_store_t *cj_sqlite_store(cj_sqlite_t *db)
{
    return &db->store;
}

const char *cj_sqlite_errmsg(const cj_sqlite_t *db)
{
    return db->err[0] ? db->err : "no error";
}

uint64_t cj_sqlite_session(const cj_sqlite_t *db)
{
    return db->session;
}

struct sqlite3 *cj_sqlite_raw(cj_sqlite_t *db)
{
    return db->db;
}

/* ---- host transactions ---------------------------------------------------- */

/* End the host's transaction up to its COMMIT: make the deferred writes
 * (known row, cursor) and forget what was known.  CJ_OK with the
 * transaction still open and ready to commit; else it is rolled back
 * (or was already gone) and CJ_ERR_STORAGE. */
static int tx_close(cj_sqlite_t *db)
{
    int rc = db->tx_lost ? CJ_ERR_STORAGE : flush(db);

    if (rc == CJ_OK)
        rc = cursor_flush(db);
    db->in_tx = false;
    forget_tx(db);
    if (rc == CJ_OK && !sqlite3_get_autocommit(db->db))
        return CJ_OK;
    if (!sqlite3_get_autocommit(db->db))
        run(db, S_ROLLBACK);
    return CJ_ERR_STORAGE;
}

int cj_sqlite_begin(cj_sqlite_t *db)
{
    int rc;
    if (db->in_tx)
        return CJ_ERR_STATE;
    if (db->pp.recover && pipe_recover(db) != CJ_OK)
        return CJ_ERR_STORAGE;
    rc = run(db, S_BEGIN);
    if (rc != SQLITE_DONE)
        return map_rc(rc);
    forget_tx(db);
    lease_check(db);
    db->in_tx = true;
    db->tx_lost = false;
    return CJ_OK;
}

int cj_sqlite_commit(cj_sqlite_t *db)
{
    int rc;
    if (!db->in_tx)
        return CJ_ERR_STATE;
    if (db->pp.tx_async) {
        /* begun with synchronous=OFF: commit, then wait for the sync
         * that covers it (and everything committed before) */
        uint64_t t = 0, d = 0;
        rc = cj_sqlite_commit_async(db, &t);
        if (rc == CJ_OK)
            rc = cj_sqlite_durable(db, true, &d);
        return rc == CJ_OK && d >= t ? CJ_OK : CJ_ERR_STORAGE;
    }
    if (tx_close(db) != CJ_OK)
        return CJ_ERR_STORAGE;
    rc = run(db, S_COMMIT);
    if (rc == SQLITE_DONE) {
        lease_committed(db);
        return CJ_OK;
    }
    /* A COMMIT that failed with BUSY leaves the transaction open; any
     * failure means the batch is not durable: drop all of it. */
    if (!sqlite3_get_autocommit(db->db))
        run(db, S_ROLLBACK);
    return CJ_ERR_STORAGE;
}

static void sync_full(cj_sqlite_t *s);

int cj_sqlite_rollback(cj_sqlite_t *db)
{
    if (!db->in_tx)
        return CJ_ERR_STATE;
    db->in_tx = false;
    /* the lease bound stays for a transaction that only read (the
     * daemon's look at its queue); any write, undone now, moved
     * sqlite3_total_changes(), which drops it at the next begin */
    forget_tx(db);
    if (!sqlite3_get_autocommit(db->db))
        run(db, S_ROLLBACK);
    if (db->pp.tx_async)
        sync_full(db);
    return CJ_OK;
}

bool cj_sqlite_in_transaction(const cj_sqlite_t *db)
{
    return db->in_tx;
}

/* ---- pipelined group commit ------------------------------------------------ */

/* Why this is as durable as synchronous=FULL (the full argument is in
 * store/sqlite.h): a COMMIT under synchronous=OFF appends the batch's
 * frames, commit frame last, to the -wal file with write(2) and syncs
 * nothing; an fdatasync of that file (any descriptor of it) that starts
 * after the COMMIT returned puts every frame written before it on stable
 * storage, and WAL recovery keeps every transaction whose frames (and
 * those of every transaction before it) are intact.  Frames are only
 * appended, never rewritten, until the WAL restarts, and a restart needs
 * a checkpoint that backfilled every frame; with automatic checkpoints
 * off, the only checkpoints are ours (run with synchronous=FULL, which
 * syncs the WAL before copying and the database before the WAL may be
 * reused) and those of other connections, which all run with
 * synchronous=FULL (cj_sqlite_open insists on it). */

static void *sync_main(void *arg)
{
    cj_sqlite_t *s = arg;
    pipe_state_t *p = &s->pp;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        uint64_t target;
        int fd, rc;
        while (!p->stop && (p->failed || p->requested == p->durable))
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop)
            break;
        /* Everything committed up to requested was written before this
         * point (the host bumps requested after COMMIT returned), so
         * the sync below covers it. */
        target = p->requested;
        fd = p->wal_fd;
        p->busy = true;
        pthread_mutex_unlock(&p->mu);
        if (p->sync_fn != NULL) {
            rc = p->sync_fn(p->sync_arg, fd);
        } else {
            do
                rc = fdatasync(fd);
            while (rc != 0 && errno == EINTR);
        }
        pthread_mutex_lock(&p->mu);
        p->busy = false;
        if (rc == 0) {
            if (target > p->durable)
                p->durable = target;
        } else {
            p->failed = true; /* nothing more is synced until reported */
        }
        pthread_cond_broadcast(&p->cv);
        (void)!write(p->wake[1], "", 1);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int wal_frames_cb(void *arg, sqlite3 *db, const char *name, int frames)
{
    cj_sqlite_t *s = arg;
    (void)db;
    if (strcmp(name, "main") == 0)
        s->pp.wal_frames = frames;
    return SQLITE_OK;
}

/* Back to synchronous=FULL after an asynchronous batch; if that fails,
 * no write may run until it worked (pipe_recover), since a unit of work
 * would otherwise commit without any sync. */
static void sync_full(cj_sqlite_t *s)
{
    sqlite3_int64 v = 0;
    s->pp.tx_async = false;
    if (exec_sql(s, "PRAGMA synchronous = FULL") != SQLITE_OK ||
        query_int(s, "PRAGMA synchronous", &v) != SQLITE_OK || v != 2)
        s->pp.recover = true;
}

/* Open (or reopen, should the file have been replaced) our descriptor
 * of the WAL.  Only while no sync runs.  A new descriptor also syncs
 * the directory once, so the file's name is as durable as its frames. */
static int wal_open(cj_sqlite_t *s)
{
    pipe_state_t *p = &s->pp;
    struct stat a, b;
    int fd;

    if (p->wal_path == NULL || stat(p->wal_path, &a) != 0)
        return CJ_ERR_STORAGE;
    if (p->wal_fd >= 0 && fstat(p->wal_fd, &b) == 0 && a.st_ino == b.st_ino &&
        a.st_dev == b.st_dev)
        return CJ_OK;
    fd = open(p->wal_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return CJ_ERR_STORAGE;
    {
        char *dir = strdup(p->wal_path), *slash;
        int dfd;
        if (dir == NULL) {
            close(fd);
            return CJ_ERR_STORAGE;
        }
        slash = strrchr(dir, '/');
        if (slash == dir)
            slash[1] = '\0';
        else if (slash != NULL)
            *slash = '\0';
        dfd = open(slash != NULL ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(dir);
        if (dfd < 0 || fsync(dfd) != 0) {
            if (dfd >= 0)
                close(dfd);
            close(fd);
            return CJ_ERR_STORAGE;
        }
        close(dfd);
    }
    pthread_mutex_lock(&p->mu);
    if (p->wal_fd >= 0)
        close(p->wal_fd);
    p->wal_fd = fd;
    pthread_mutex_unlock(&p->mu);
    return CJ_OK;
}

/* Wait until no batch awaits its sync.  CJ_ERR_STORAGE when a sync
 * failed and the host has not been told yet (cj_sqlite_durable). */
static int pipe_idle(cj_sqlite_t *s)
{
    pipe_state_t *p = &s->pp;
    int r;
    if (!p->on)
        return CJ_OK;
    pthread_mutex_lock(&p->mu);
    while (!p->failed && (p->busy || p->durable < p->committed))
        pthread_cond_wait(&p->cv, &p->mu);
    r = p->failed ? CJ_ERR_STORAGE : CJ_OK;
    pthread_mutex_unlock(&p->mu);
    return r;
}

/* A checkpoint under synchronous=FULL, with no batch pending: SQLite
 * syncs the WAL, copies it into the database, and syncs the database
 * before the WAL may be reused (PASSIVE, what SQLite's own automatic
 * checkpoint does: the next writer restarts the WAL from its start once
 * every frame is copied, overwriting the file in place, so it keeps its
 * size and an fdatasync need not write its inode; TRUNCATE: wait for
 * readers, copy everything and cut the file to zero bytes).  busy_ms
 * bounds the wait for other processes (TRUNCATE only). */
static int checkpoint_full(cj_sqlite_t *s, int mode, int busy_ms)
{
    int rc, log = 0, done_frames = 0;
    if (s->pp.tx_async || pipe_idle(s) != CJ_OK)
        return CJ_ERR_STORAGE;
    sqlite3_busy_timeout(s->db, busy_ms);
    rc = sqlite3_wal_checkpoint_v2(s->db, "main", mode, &log, &done_frames);
    sqlite3_busy_timeout(s->db, CJ_SQLITE_BUSY_MS);
    if (rc != SQLITE_OK) {
        note_error(s);
        return CJ_ERR_STORAGE;
    }
    if (done_frames >= log)
        s->pp.wal_frames = 0; /* all copied: the next batch restarts the WAL */
    /* nothing in flight: the moment to check the descriptor */
    return s->pp.on ? wal_open(s) : CJ_OK;
}

/* After a failed sync (or a failed return to synchronous=FULL): the WAL
 * may hold frames the kernel could not write, and a later successful
 * fdatasync would not write them again.  Copy the WAL into the database
 * under synchronous=FULL and cut it, so what SQLite reads from here on
 * is what the database file durably holds; until that worked, no write
 * runs.  (Residual risk: the copy reads the WAL through the page cache;
 * see store/sqlite.h.) */
static int pipe_recover(cj_sqlite_t *s)
{
    sqlite3_int64 v = 0;
    s->lease.ok = false; /* batches whose sweeps set it may be lost */
    if (exec_sql(s, "PRAGMA synchronous = FULL") != SQLITE_OK ||
        query_int(s, "PRAGMA synchronous", &v) != SQLITE_OK || v != 2)
        return CJ_ERR_STORAGE;
    if (checkpoint_full(s, SQLITE_CHECKPOINT_TRUNCATE, CJ_SQLITE_BUSY_MS) != CJ_OK)
        return CJ_ERR_STORAGE;
    s->pp.recover = false;
    return CJ_OK;
}

int cj_sqlite_pipeline(cj_sqlite_t *db, cj_sqlite_sync_fn fn, void *arg)
{
    pipe_state_t *p = &db->pp;

    if (p->on || db->in_tx)
        return CJ_ERR_STATE;
    if (p->wal_path == NULL)
        return CJ_ERR_UNSUPPORTED;
    if (pipe(p->wake) != 0)
        return CJ_ERR_STORAGE;
    for (int i = 0; i < 2; i++) {
        fcntl(p->wake[i], F_SETFL, fcntl(p->wake[i], F_GETFL) | O_NONBLOCK);
        fcntl(p->wake[i], F_SETFD, FD_CLOEXEC);
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->sync_fn = fn;
    p->sync_arg = arg;
    p->committed = p->requested = p->durable = 0;
    p->ckpt_at = CJ_SQLITE_CKPT_FRAMES;
    /* No checkpoint may run inside a COMMIT made with synchronous=OFF:
     * the frame counter below replaces SQLite's automatic checkpoint. */
    sqlite3_wal_autocheckpoint(db->db, 0);
    sqlite3_wal_hook(db->db, wal_frames_cb, db);
    if (wal_open(db) != CJ_OK ||
        pthread_create(&p->thread, NULL, sync_main, db) != 0) {
        sqlite3_wal_autocheckpoint(db->db, 1000);
        if (p->wal_fd >= 0)
            close(p->wal_fd);
        p->wal_fd = -1;
        close(p->wake[0]);
        close(p->wake[1]);
        p->wake[0] = p->wake[1] = -1;
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        return CJ_ERR_STORAGE;
    }
    p->on = true;
    return CJ_OK;
}

static void pipe_stop(cj_sqlite_t *s)
{
    pipe_state_t *p = &s->pp;
    if (p->on) {
        (void)pipe_idle(s);
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        close(p->wake[0]);
        close(p->wake[1]);
        if (p->wal_fd >= 0)
            close(p->wal_fd);
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        p->on = false;
        if (p->tx_async || p->recover)
            sync_full(s);
    }
    free(p->wal_path);
    p->wal_path = NULL;
}

int cj_sqlite_begin_async(cj_sqlite_t *db)
{
    pipe_state_t *p = &db->pp;
    int rc;

    if (!p->on)
        return cj_sqlite_begin(db);
    if (db->in_tx)
        return CJ_ERR_STATE;
    if (p->recover && pipe_recover(db) != CJ_OK)
        return CJ_ERR_STORAGE;
    if (p->wal_frames >= p->ckpt_at) {
        /* waits for the batches in flight; a reader of another process
         * may keep it from finishing: try again later */
        if (checkpoint_full(db, SQLITE_CHECKPOINT_PASSIVE, 0) == CJ_OK &&
            db->pp.wal_frames == 0)
            p->ckpt_at = CJ_SQLITE_CKPT_FRAMES;
        else
            p->ckpt_at = p->wal_frames + CJ_SQLITE_CKPT_FRAMES;
    }
    if (exec_sql(db, "PRAGMA synchronous = OFF") != SQLITE_OK) {
        sync_full(db);
        return CJ_ERR_STORAGE;
    }
    p->tx_async = true;
    rc = run(db, S_BEGIN);
    if (rc != SQLITE_DONE) {
        sync_full(db);
        return map_rc(rc);
    }
    forget_tx(db);
    lease_check(db);
    db->in_tx = true;
    db->tx_lost = false;
    return CJ_OK;
}

int cj_sqlite_commit_async(cj_sqlite_t *db, uint64_t *ticket)
{
    pipe_state_t *p = &db->pp;
    int rc;

    if (!db->in_tx)
        return CJ_ERR_STATE;
    if (!p->tx_async) {
        /* a plain transaction: durable when its COMMIT returns */
        rc = cj_sqlite_commit(db);
        if (rc == CJ_OK)
            *ticket = p->on ? p->committed : 0;
        return rc;
    }
    if (tx_close(db) != CJ_OK) {
        sync_full(db);
        return CJ_ERR_STORAGE;
    }
    rc = run(db, S_COMMIT);
    if (rc != SQLITE_DONE) {
        if (!sqlite3_get_autocommit(db->db))
            run(db, S_ROLLBACK);
        sync_full(db);
        return CJ_ERR_STORAGE;
    }
    lease_committed(db);
    sync_full(db);
    /* Committed, not yet durable: the helper's next fdatasync starts
     * after this point, so it covers the batch.  (The descriptor stays
     * valid: SQLite removes the WAL only when its last connection
     * closes, and this one is open.) */
    pthread_mutex_lock(&p->mu);
    *ticket = ++p->committed;
    p->requested = p->committed;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return CJ_OK;
}

int cj_sqlite_durable(cj_sqlite_t *db, bool wait, uint64_t *upto)
{
    pipe_state_t *p = &db->pp;
    char drain[64];
    int r = CJ_OK;

    if (!p->on) {
        *upto = p->committed;
        return CJ_OK;
    }
    while (read(p->wake[0], drain, sizeof drain) > 0)
        ;
    pthread_mutex_lock(&p->mu);
    while (wait && !p->failed && p->durable < p->committed)
        pthread_cond_wait(&p->cv, &p->mu);
    *upto = p->durable;
    if (p->failed) {
        /* every batch above durable is lost to the host: it must drop
         * their responses and reload its engine */
        p->durable = p->requested = p->committed;
        p->failed = false;
        p->recover = true;
        r = CJ_ERR_STORAGE;
    }
    pthread_mutex_unlock(&p->mu);
    if (r != CJ_OK)
        snprintf(db->err, sizeof db->err, "fdatasync of the WAL failed");
    return r;
}

int cj_sqlite_sync_fd(const cj_sqlite_t *db)
{
    return db->pp.on ? db->pp.wake[0] : -1;
}

/* ---- provisioning ----------------------------------------------------------- */

int cj_sqlite_role_mask(const char *name)
{
    return cj_store_role_mask(name);
}

/* Insert inside an open unit of work: CJ_OK, CJ_ERR_STATE (id already
 * provisioned), CJ_ERR_PSK_REUSED (the unique index pledges_psk: another
 * pledge holds the PSK; seq, the only other unique column, is always
 * new), CJ_ERR_STORAGE. */
/* ---- retired PSKs, PSK changes, removal ---------------------------------- */

/* Statements of these rare paths are prepared for one use; the repair
 * (below) runs them on a file that is not at the current schema yet. */
static sqlite3_stmt *adhoc(cj_sqlite_t *s, const char *sql)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK) {
        note_error(s);
        sqlite3_finalize(q);
        return NULL;
    }
    return q;
}

/* Step ad hoc statement q once and finalize it: SQLITE_ROW with *v its
 * first column (v may be NULL), SQLITE_DONE, or the error (noted). */
static int adhoc_step(cj_sqlite_t *s, sqlite3_stmt *q, sqlite3_int64 *v)
{
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW && v != NULL)
        *v = sqlite3_column_int64(q, 0);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        note_error(s);
    sqlite3_finalize(q);
    s->known.changes = sqlite3_total_changes(s->db);
    return rc;
}

/* CJ_ERR_PSK_REUSED when psk was retired, CJ_OK when not (a prepared
 * statement: every line of a CSV import asks). */
static int psk_retired(cj_sqlite_t *s, const uint8_t psk[16])
{
    uint8_t fp[CJ_STORE_RETIRED_FP];
    sqlite3_stmt *q;
    int rc;

    if (cj_store_psk_fp(psk, fp) != CJ_OK || (q = stmt(s, S_RETIRED)) == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_blob(q, 1, fp, sizeof fp, SQLITE_TRANSIENT);
    rc = step_row(s, q);
    if (rc == CJ_OK)
        done(q);
    return rc == CJ_OK ? CJ_ERR_PSK_REUSED
                       : rc == CJ_ERR_NOTFOUND ? CJ_OK : CJ_ERR_STORAGE;
}

/* Retire psk (store/common.h). */
static int psk_retire(cj_sqlite_t *s, const uint8_t psk[16])
{
    uint8_t fp[CJ_STORE_RETIRED_FP];
    sqlite3_stmt *q;

    if (cj_store_psk_fp(psk, fp) != CJ_OK)
        return CJ_ERR_STORAGE;
    q = adhoc(s, "INSERT OR IGNORE INTO retired_psks (fp, retired_at)"
                 " VALUES (?1, ?2)");
    if (q == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_blob(q, 1, fp, sizeof fp, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 2, cj_store_i64(cj_store_wall_ms()));
    return adhoc_step(s, q, NULL) == SQLITE_DONE ? CJ_OK : CJ_ERR_STORAGE;
}

/* The PSK pledge id holds now: CJ_OK, CJ_ERR_NOTFOUND, CJ_ERR_STORAGE;
 * with lease (may be NULL) its lease_until (-1: none). */
static int pledge_psk(cj_sqlite_t *s, const uint8_t *id, size_t id_len,
                      uint8_t psk[16], sqlite3_int64 *lease)
{
    sqlite3_stmt *q = adhoc(s, "SELECT psk, lease_until FROM pledges"
                               " WHERE id = ?1");
    int rc;

    if (q == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_blob(q, 1, id, (int)id_len, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_bytes(q, 0) != 16 ||
            !blob_col(q, 0, psk, 16, 16, NULL))
            rc = SQLITE_CORRUPT;
        else if (lease != NULL)
            *lease = sqlite3_column_type(q, 1) == SQLITE_NULL
                         ? -1
                         : sqlite3_column_int64(q, 1);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        note_error(s);
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? CJ_OK
                            : rc == SQLITE_DONE ? CJ_ERR_NOTFOUND
                                                : CJ_ERR_STORAGE;
}

/* Give pledge id PSK psk, inside an open transaction (store/sqlite.h
 * cj_sqlite_set_psk).  Needs no index on the PSK column: the check is
 * explicit, so a repair can run it on a schema-4 file. */
static int set_psk_in(cj_sqlite_t *s, const uint8_t *id, size_t id_len,
                      const uint8_t psk[16])
{
    uint8_t old[16], okm[CJ_OSCORE_OKM_LEN];
    sqlite3_int64 held = 0;
    sqlite3_stmt *q;
    int rc;

    if ((rc = pledge_psk(s, id, id_len, old, NULL)) != CJ_OK)
        return rc;
    q = adhoc(s, "SELECT count(*) FROM pledges WHERE psk = ?1");
    if (q == NULL)
        goto fail;
    sqlite3_bind_blob(q, 1, psk, 16, SQLITE_STATIC);
    if (adhoc_step(s, q, &held) != SQLITE_ROW)
        goto fail;
    rc = held > 0 ? CJ_ERR_PSK_REUSED : psk_retired(s, psk);
    if (rc != CJ_OK)
        goto out;
    if (cj_jrc_pledge_okm(psk, id, id_len, okm) != CJ_OK)
        goto fail;
    /* the pledge's old OSCORE context ends: everything kept for it
     * starts afresh, its admission ends; the short-id lease stays */
    q = adhoc(s, "UPDATE pledges SET psk = ?2, okm = ?3, ssn_reserved = 0,"
                 " replay_highest = 0, replay_bitmap = 0, replay_valid = 0,"
                 " id_context = NULL, repeat_cache = NULL, joined = 0"
                 " WHERE id = ?1");
    if (q == NULL)
        goto fail;
    sqlite3_bind_blob(q, 1, id, (int)id_len, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, psk, 16, SQLITE_STATIC);
    sqlite3_bind_blob(q, 3, okm, sizeof okm, SQLITE_STATIC);
    rc = adhoc_step(s, q, NULL);
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        rc = CJ_ERR_PSK_REUSED;
        goto out;
    }
    if (rc != SQLITE_DONE || sqlite3_changes(s->db) != 1)
        goto fail;
    rc = psk_retire(s, old);
    goto out;
fail:
    rc = CJ_ERR_STORAGE;
out:
    cj_crypto_wipe(old, sizeof old);
    cj_crypto_wipe(okm, sizeof okm);
    return rc;
}

/* Remove pledge id, inside an open transaction (cj_sqlite_remove). */
static int remove_in(cj_sqlite_t *s, const uint8_t *id, size_t id_len,
                     uint64_t now_ms)
{
    uint8_t old[16];
    sqlite3_int64 lease = -1;
    sqlite3_stmt *q;
    int rc;

    if ((rc = pledge_psk(s, id, id_len, old, &lease)) != CJ_OK)
        return rc;
    if (lease >= 0 && lease > cj_store_i64(now_ms)) {
        rc = CJ_ERR_STATE; /* a live lease: the device may use the id */
    } else if ((q = adhoc(s, "DELETE FROM pledges WHERE id = ?1")) == NULL) {
        rc = CJ_ERR_STORAGE;
    } else {
        /* its campaign outcomes go with it (ON DELETE CASCADE) */
        sqlite3_bind_blob(q, 1, id, (int)id_len, SQLITE_STATIC);
        rc = adhoc_step(s, q, NULL) == SQLITE_DONE &&
                     sqlite3_changes(s->db) == 1
                 ? psk_retire(s, old)
                 : CJ_ERR_STORAGE;
    }
    cj_crypto_wipe(old, sizeof old);
    return rc;
}

int cj_sqlite_set_psk(cj_sqlite_t *db, const uint8_t *id, size_t id_len,
                      const uint8_t psk[16])
{
    sqlite3_stmt *q;
    int r;
    if (!cj_store_id_ok(id, id_len) || psk == NULL)
        return CJ_ERR_INVALID;
    if ((r = op_begin(db)) != CJ_OK)
        return r;
    r = set_psk_in(db, id, id_len, psk);
    /* A context with no past has nothing to recover from.  Not in
     * set_psk_in: a repair runs that on files older than the column. */
    if (r == CJ_OK) {
        q = adhoc(db, "UPDATE pledges SET must_recover = 0 WHERE id = ?1");
        if (q != NULL)
            sqlite3_bind_blob(q, 1, id, (int)id_len, SQLITE_STATIC);
        if (q == NULL || adhoc_step(db, q, NULL) != SQLITE_DONE)
            r = CJ_ERR_STORAGE;
    }
    return op_end(db, r);
}

int cj_sqlite_mark_recover(cj_sqlite_t *db, uint32_t skip_short,
                           uint64_t *marked)
{
    sqlite3_stmt *q;
    int r;

    if (skip_short > CJ_STORE_SHORT_MAX)
        return CJ_ERR_INVALID;
    if ((r = op_begin(db)) != CJ_OK)
        return r;
    q = adhoc(db, "UPDATE pledges SET must_recover = 1");
    r = q != NULL && adhoc_step(db, q, NULL) == SQLITE_DONE ? CJ_OK
                                                           : CJ_ERR_STORAGE;
    if (r == CJ_OK && marked != NULL)
        *marked = (uint64_t)sqlite3_changes(db->db);
    if (r == CJ_OK) {
        q = adhoc(db, "UPDATE registry_state SET next_short ="
                      " (next_short - 1 + ?1) % 65533 + 1 WHERE one = 1");
        if (q != NULL)
            sqlite3_bind_int64(q, 1, skip_short);
        if (q == NULL || adhoc_step(db, q, NULL) != SQLITE_DONE ||
            sqlite3_changes(db->db) != 1)
            r = CJ_ERR_STORAGE;
    }
    return op_end(db, r);
}

int cj_sqlite_remove(cj_sqlite_t *db, const uint8_t *id, size_t id_len,
                     uint64_t now_ms)
{
    int r;
    if (!cj_store_id_ok(id, id_len))
        return CJ_ERR_INVALID;
    if ((r = op_begin(db)) != CJ_OK)
        return r;
    return op_end(db, remove_in(db, id, id_len, now_ms));
}

/* The change a repair makes (cj_sqlite_repair), in the migration's
 * transaction; the retired table may predate migration 6 then. */
static int apply_fix(cj_sqlite_t *s, cj_store_fix_t *fix)
{
    int rc;

    if (exec_sql(s, CJ_STORE_RETIRED_TABLE("BLOB", "INTEGER")) != SQLITE_OK)
        return CJ_ERR_STORAGE;
    rc = fix->psk != NULL ? set_psk_in(s, fix->id, fix->id_len, fix->psk)
                          : remove_in(s, fix->id, fix->id_len, fix->now_ms);
    fix->done = rc == CJ_OK;
    return rc;
}

static int insert_pledge(cj_sqlite_t *s, const uint8_t *id, size_t id_len,
                         const uint8_t *psk, uint8_t roles)
{
    sqlite3_stmt *q = stmt_id(s, S_ADD, id, id_len);
    int rc;
    if (q == NULL)
        return CJ_ERR_STORAGE;
    uint8_t okm[CJ_OSCORE_OKM_LEN];
    if (cj_jrc_pledge_okm(psk, id, id_len, okm) != CJ_OK) {
        done(q);
        return CJ_ERR_INVALID;
    }
    sqlite3_bind_blob(q, 2, psk, 16, SQLITE_STATIC);
    sqlite3_bind_int(q, 3, roles);
    sqlite3_bind_blob(q, 4, okm, sizeof okm, SQLITE_STATIC);
    rc = exec_stmt(s, q);
    cj_crypto_wipe(okm, sizeof okm);
    if (rc == SQLITE_DONE)
        /* an id already there is reported as such, whatever the PSK; a
         * retired PSK undoes the insert with the unit */
        return sqlite3_changes(s->db) == 1 ? psk_retired(s, psk)
                                           : CJ_ERR_STATE;
    return rc == SQLITE_CONSTRAINT_UNIQUE ? CJ_ERR_PSK_REUSED : CJ_ERR_STORAGE;
}

int cj_sqlite_add(cj_sqlite_t *db, const uint8_t *id, size_t id_len,
                  const uint8_t psk[16], uint8_t allowed_roles)
{
    int r;
    if (!cj_store_id_ok(id, id_len) || psk == NULL || allowed_roles == 0)
        return CJ_ERR_INVALID;
    if ((r = op_begin(db)) != CJ_OK)
        return r;
    return op_end(db, insert_pledge(db, id, id_len, psk, allowed_roles));
}

static int import_one(void *arg, const uint8_t *id, size_t id_len,
                      const uint8_t psk[16], uint8_t roles)
{
    return insert_pledge(arg, id, id_len, psk, roles);
}

int cj_sqlite_import_csv(cj_sqlite_t *db, const char *text, size_t len,
                         size_t *bad_line, size_t *count)
{
    size_t line = 0, added = 0;
    int r;

    if (bad_line)
        *bad_line = 0;
    if (count)
        *count = 0;
    if (text == NULL && len > 0)
        return CJ_ERR_INVALID;
    if ((r = op_begin(db)) != CJ_OK)
        return r;
    r = op_end(db, cj_store_csv_each(text, len, import_one, db, &line, &added));
    if (r == CJ_OK && count)
        *count = added;
    if ((r == CJ_ERR_MALFORMED || r == CJ_ERR_STATE || r == CJ_ERR_PSK_REUSED) &&
        bad_line)
        *bad_line = line;
    return r;
}

/* Columns INFO_COLS into *info. */
static bool read_info(sqlite3_stmt *q, cj_sqlite_info_t *info)
{
    memset(info, 0, sizeof *info);
    if (!read_pledge(q, &info->rec))
        return false;
    if (sqlite3_column_type(q, 11) != SQLITE_NULL) {
        sqlite3_int64 u = sqlite3_column_int64(q, 11);
        info->has_lease = true;
        info->lease_until = u == CJ_STORE_NO_EXPIRY ? UINT64_MAX : (uint64_t)u;
    }
    if (sqlite3_column_type(q, 12) != SQLITE_NULL) {
        info->has_joined_at = true;
        info->joined_at = (uint64_t)sqlite3_column_int64(q, 12);
    }
    info->evicted = sqlite3_column_type(q, 13) != SQLITE_NULL;
    if (sqlite3_column_type(q, 14) != SQLITE_NULL &&
        !blob_col(q, 14, info->addr.b, sizeof info->addr.b, 1,
                  &info->addr.len))
        return false;
    if (sqlite3_column_type(q, 15) != SQLITE_NULL) {
        info->has_update = true;
        info->update_session = (uint64_t)sqlite3_column_int64(q, 15);
        info->update_campaign = (uint32_t)sqlite3_column_int64(q, 16);
        info->update_acked = sqlite3_column_int(q, 17) != 0;
        info->update_at = (uint64_t)sqlite3_column_int64(q, 18);
    }
    info->rec.must_recover = sqlite3_column_int(q, 19) != 0;
    return true;
}

/* Step q (bound) calling fn per row; resets q.  The PSK copy on the
 * stack is wiped before returning. */
static int iterate(cj_sqlite_t *s, sqlite3_stmt *q, cj_sqlite_info_fn fn,
                   void *arg)
{
    cj_sqlite_info_t info;
    int rc, r = CJ_OK;

    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (!read_info(q, &info)) {
            r = CJ_ERR_STORAGE;
            break;
        }
        r = fn(arg, &info);
        if (r != 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        note_error(s);
        r = CJ_ERR_STORAGE;
    }
    done(q);
    memset(&info, 0, sizeof info);
    return r;
}

int cj_sqlite_list(cj_sqlite_t *db, cj_sqlite_info_fn fn, void *arg)
{
    sqlite3_stmt *q = stmt(db, S_LIST);
    return q == NULL ? CJ_ERR_STORAGE : iterate(db, q, fn, arg);
}

int cj_sqlite_unreached(cj_sqlite_t *db, uint64_t session, uint32_t campaign,
                        cj_sqlite_info_fn fn, void *arg)
{
    sqlite3_stmt *q = stmt(db, S_UNREACHED);
    if (q == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_int64(q, 1, cj_store_i64(session ? session : db->session));
    sqlite3_bind_int64(q, 2, (sqlite3_int64)campaign);
    return iterate(db, q, fn, arg);
}

/* ---- outcome retention ------------------------------------------------------ */

int cj_sqlite_keep_outcomes(cj_sqlite_t *db, uint32_t *keep)
{
    sqlite3_stmt *q = adhoc(db, "SELECT keep_outcomes FROM registry_state"
                                " WHERE one = 1");
    sqlite3_int64 v = -1;

    if (q == NULL || adhoc_step(db, q, &v) != SQLITE_ROW || v < 0 ||
        v > CJ_STORE_KEEP_MAX)
        return CJ_ERR_STORAGE;
    *keep = (uint32_t)v;
    return CJ_OK;
}

int cj_sqlite_set_keep_outcomes(cj_sqlite_t *db, uint32_t keep)
{
    sqlite3_stmt *q;
    int r;

    if (keep > CJ_STORE_KEEP_MAX)
        return CJ_ERR_INVALID;
    if ((r = op_begin(db)) != CJ_OK)
        return r;
    q = adhoc(db, "UPDATE registry_state SET keep_outcomes = ?1 WHERE one = 1");
    if (q != NULL)
        sqlite3_bind_int64(q, 1, keep);
    r = q != NULL && adhoc_step(db, q, NULL) == SQLITE_DONE &&
                sqlite3_changes(db->db) == 1
            ? CJ_OK
            : CJ_ERR_STORAGE;
    return op_end(db, r);
}

/* One transaction of a prune (CJ_STORE_PRUNE_SQL); *n counts what it
 * removed. */
static int prune_chunk(cj_sqlite_t *s, size_t chunk, cj_store_from_t *from,
                       size_t *n)
{
    uint32_t keep = 0;
    sqlite3_stmt *q;
    int rc = cj_sqlite_keep_outcomes(s, &keep);

    if (rc != CJ_OK || keep == 0)
        return rc;
    q = adhoc(s, CJ_STORE_PRUNE_SQL("rowid", "?1", "?2", "?3"));
    if (q == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_int64(q, 1, keep);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)chunk);
    sqlite3_bind_blob(q, 3, from->b, (int)from->len, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const uint8_t *p = sqlite3_column_blob(q, 0);
        int len = sqlite3_column_bytes(q, 0);
        cj_store_from_max(from, p, len > 0 ? (size_t)len : 0);
        ++*n;
    }
    if (rc != SQLITE_DONE)
        note_error(s);
    sqlite3_finalize(q);
    s->known.changes = sqlite3_total_changes(s->db);
    return rc == SQLITE_DONE ? CJ_OK : CJ_ERR_STORAGE;
}

int cj_sqlite_prune(cj_sqlite_t *db, size_t chunk, uint64_t *removed)
{
    cj_store_from_t from = {{0}, 0};

    if (chunk == 0 || chunk > CJ_STORE_PRUNE_CHUNK)
        chunk = CJ_STORE_PRUNE_CHUNK;
    for (;;) {
        size_t n = 0;
        int r = op_begin(db);
        if (r == CJ_OK)
            r = op_end(db, prune_chunk(db, chunk, &from, &n));
        if (r != CJ_OK)
            return r;
        *removed += n;
        if (n < chunk)
            return CJ_OK;
    }
}

int cj_sqlite_blacklist(cj_sqlite_t *db, cj_sqlite_info_fn fn, void *arg)
{
    sqlite3_stmt *q = stmt(db, S_BLACKLIST);
    return q == NULL ? CJ_ERR_STORAGE : iterate(db, q, fn, arg);
}

int cj_sqlite_set_address(cj_sqlite_t *db, const uint8_t *id, size_t id_len,
                          const cj_addr_t *addr)
{
    sqlite3_stmt *q;
    if (!cj_store_id_ok(id, id_len) || addr == NULL || addr->len > CJ_ADDR_MAX)
        return CJ_ERR_INVALID;
    if ((q = stmt_id(db, S_SET_ADDR, id, id_len)) == NULL)
        return CJ_ERR_STORAGE;
    if (addr->len)
        sqlite3_bind_blob(q, 2, addr->b, addr->len, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, 2);
    return update_one(db, q);
}

int cj_sqlite_evict(cj_sqlite_t *db, const uint8_t *id, size_t id_len)
{
    return update_id(db, S_EVICT, id, id_len, true);
}

int cj_sqlite_readmit(cj_sqlite_t *db, const uint8_t *id, size_t id_len)
{
    return update_id(db, S_READMIT, id, id_len, false);
}

/* ---- network settings and pending operations ------------------------------ */

int cj_sqlite_network_load(cj_sqlite_t *db, cj_sqlite_network_t *out)
{
    sqlite3_stmt *q;
    uint8_t keys[CJ_STORE_KEYS_MAX], klen = 0, alen = 0;
    bool ok;
    int r;

    memset(out, 0, sizeof *out);
    if ((q = stmt(db, S_NET_GET)) == NULL)
        return CJ_ERR_STORAGE;
    if ((r = step_row(db, q)) != CJ_OK)
        return r;
    ok = blob_col(q, 0, out->network_id, sizeof out->network_id, 0,
                  &out->network_id_len) &&
         blob_col(q, 1, keys, sizeof keys, CJ_STORE_KEY_REC, &klen) &&
         blob_col(q, 2, out->jrc_address, sizeof out->jrc_address, 0, &alen) &&
         cj_store_network_fill(out, keys, klen, alen,
                               sqlite3_column_type(q, 3) == SQLITE_NULL
                                   ? -1
                                   : sqlite3_column_int64(q, 3),
                               sqlite3_column_int64(q, 4),
                               sqlite3_column_int64(q, 5));
    done(q);
    cj_crypto_wipe(keys, sizeof keys);
    if (!ok) {
        snprintf(db->err, sizeof db->err, "network row is malformed");
        return CJ_ERR_STORAGE;
    }
    return CJ_OK;
}

int cj_sqlite_network_save(cj_sqlite_t *db, const cj_sqlite_network_t *n)
{
    sqlite3_stmt *q;
    uint8_t keys[CJ_STORE_KEYS_MAX];
    size_t klen;
    int r;

    if (!cj_store_network_ok(n))
        return CJ_ERR_INVALID;
    klen = cj_store_keys_pack(n, keys);
    if ((q = stmt(db, S_NET_PUT)) == NULL)
        return CJ_ERR_STORAGE;
    if (n->network_id_len)
        sqlite3_bind_blob(q, 1, n->network_id, n->network_id_len, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, keys, (int)klen, SQLITE_STATIC);
    if (n->has_jrc_address)
        sqlite3_bind_blob(q, 3, n->jrc_address, 16, SQLITE_STATIC);
    if (n->join_rate != UINT32_MAX)
        sqlite3_bind_int64(q, 4, n->join_rate);
    sqlite3_bind_int64(q, 5, n->lease_hours);
    sqlite3_bind_int64(q, 6, n->next_campaign);
    sqlite3_bind_int64(q, 7, cj_store_i64(cj_store_wall_ms()));
    r = write_unit(db, q, false);
    cj_crypto_wipe(keys, sizeof keys);
    return r;
}

int cj_sqlite_campaign_get(cj_sqlite_t *db, uint64_t *owner,
                           uint64_t *alive_ms)
{
    sqlite3_stmt *q = stmt(db, S_CAMP_GET);
    int r;

    *owner = *alive_ms = 0;
    if (q == NULL)
        return CJ_ERR_STORAGE;
    if ((r = step_row(db, q)) != CJ_OK)
        return r;
    *owner = (uint64_t)sqlite3_column_int64(q, 0);
    *alive_ms = (uint64_t)sqlite3_column_int64(q, 1);
    done(q);
    return CJ_OK;
}

int cj_sqlite_campaign_put(cj_sqlite_t *db, uint64_t expect, uint64_t owner,
                           uint64_t alive_ms)
{
    sqlite3_stmt *q = stmt(db, S_CAMP_PUT);

    if (q == NULL)
        return CJ_ERR_STORAGE;
    if (expect)
        sqlite3_bind_int64(q, 1, cj_store_i64(expect));
    if (owner) {
        sqlite3_bind_int64(q, 2, cj_store_i64(owner));
        sqlite3_bind_int64(q, 3, cj_store_i64(alive_ms));
    }
    return write_unit(db, q, true);
}

int cj_sqlite_op_push(cj_sqlite_t *db, const cj_sqlite_op_t *op)
{
    sqlite3_stmt *q;

    if (!cj_store_op_ok(op))
        return CJ_ERR_INVALID;
    if ((q = stmt(db, S_OP_PUSH)) == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_int(q, 1, op->kind);
    if (op->id_len)
        sqlite3_bind_blob(q, 2, op->id, op->id_len, SQLITE_STATIC);
    if (op->has_key)
        sqlite3_bind_blob(q, 3, op->key, 16, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, cj_store_i64(cj_store_wall_ms()));
    return write_unit(db, q, false);
}

int cj_sqlite_op_next(cj_sqlite_t *db, cj_sqlite_op_t *op)
{
    sqlite3_stmt *q;
    uint8_t klen = 0;
    int r;

    memset(op, 0, sizeof *op);
    if ((q = stmt(db, S_OP_NEXT)) == NULL)
        return CJ_ERR_STORAGE;
    if ((r = step_row(db, q)) != CJ_OK)
        return r;
    op->seq = sqlite3_column_int64(q, 0);
    op->kind = sqlite3_column_int(q, 1);
    if (!blob_col(q, 2, op->id, sizeof op->id, 0, &op->id_len) ||
        !blob_col(q, 3, op->key, sizeof op->key, 0, &klen) ||
        (klen != 0 && klen != 16)) {
        done(q);
        snprintf(db->err, sizeof db->err, "pending operation is malformed");
        return CJ_ERR_STORAGE;
    }
    op->has_key = klen == 16;
    op->queued_at = (uint64_t)sqlite3_column_int64(q, 4);
    done(q);
    return CJ_OK;
}

int cj_sqlite_op_done(cj_sqlite_t *db, int64_t seq)
{
    sqlite3_stmt *q;

    if ((q = stmt(db, S_OP_DONE)) == NULL)
        return CJ_ERR_STORAGE;
    sqlite3_bind_int64(q, 1, seq);
    return write_unit(db, q, true);
}
