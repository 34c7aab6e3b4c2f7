/*
 * store/postgres.h - the JRC registry in a PostgreSQL database: an
 * implementation of cj_jrc_store_t (cojp/jrc.h) plus the provisioning
 * calls the CLI needs, function for function the API of store/sqlite.h
 * (cj_pg_* for cj_sqlite_*), so the CLI can pick either by the --db
 * value.  Host layer: uses libc, malloc and libpq.
 *
 * What PostgreSQL adds: several JRC instances (processes, machines) may
 * serve one network from one database.  The database, not the code,
 * guarantees that no short identifier is ever held by two nodes at once:
 *   - a partial UNIQUE index on short_id over rows holding a lease;
 *   - the short-id cursor row is locked (SELECT ... FOR UPDATE) by every
 *     call that hands out an id, so concurrent assignments queue, and the
 *     free-id query that follows (READ COMMITTED: a fresh snapshot per
 *     statement) sees every lease committed before;
 *   - should a conflict still happen (a unique violation, a deadlock,
 *     a serialization failure), the call's unit of work is rolled back
 *     and run again, at most CJ_PG_RETRIES times;
 *   - reserve_ssn is one UPDATE ... RETURNING that raises ssn_reserved
 *     (GREATEST) by the block size under the row lock, so blocks handed
 *     to concurrent instances never overlap and no nonce is used twice;
 *     accept_piv checks and records a Partial IV under a row lock
 *     (SELECT ... FOR UPDATE), so each is accepted by one instance only
 *     (RFC 9031 section 7.3.1, RFC 8613 sections 7.2.1 and 7.4).
 * Nor can two pledges hold one PSK (RFC 9031 section 3): a UNIQUE index
 * on the PSK column refuses the second, also when two instances
 * provision at once (the second insert waits for the first transaction
 * and fails with CJ_ERR_PSK_REUSED once that committed).  Nor is a
 * retired PSK given out again, also while its retirement is in flight:
 * add and import hold one advisory lock shared, set_psk and remove
 * (which retire a PSK) hold it exclusive, so a call waits for the
 * transactions in progress of the other kind (at most CJ_PG_LOCK_MS,
 * then CJ_ERR_BUSY) and then reads what they committed.
 * Leases are compared with the now_ms the engine passes: hosts sharing a
 * database must pass wall-clock milliseconds (the same clock everywhere).
 *
 * Durability.  Each connection sets synchronous_commit = on, so a commit
 * returns only once it is flushed to the server's disk (and to
 * synchronous standbys when configured); isolation is READ COMMITTED with
 * explicit row locks; lock waits are bounded by CJ_PG_LOCK_MS.
 *
 * Transactions: as store/sqlite.h.  No transaction open: every store call
 * that writes is its own transaction, durable when the call returns.
 * Group commit: cj_pg_begin(), a batch of engine calls (each writing
 * call inside a savepoint, so a failed call changes nothing; the
 * savepoint is released in the round trip that opens the next one; a
 * read that fails on the server loses the batch, whose commit then
 * fails), cj_pg_commit(); send the
 * batch's responses only when commit returned CJ_OK, else drop them and
 * re-initialise the engine.  Inside a group transaction a deadlock with
 * another instance fails the call (no retry: the locks this batch holds
 * would deadlock again) and rows locked by the batch stay locked until
 * commit: keep batches short.  If the server connection is lost outside
 * a group transaction the next call reconnects once.  A JRC daemon's
 * batches use cj_pg_begin_batch() instead (below): fewer round trips,
 * and a failed write loses the whole batch.
 *
 * Schema.  Tables pledges, updates, registry_state and schema_version in
 * the connection's current schema (give cojp a database or schema of its
 * own, e.g. ...?options=-csearch_path%3Dcojp).  Migrations run on open in
 * one transaction under an advisory lock, so instances starting together
 * do not race.  Short ids are handed out in sequence from a cursor shared
 * by all instances (0x0001..0xfffd, wrapping, skipping 0x0000, the
 * reserved 0xfffe and 0xffff and every live lease), as
 * cojp/jrc_memstore.h does; an expired lease is cleared when its id is
 * handed out again.  Campaign outcomes are recorded under (session,
 * campaign); every cj_pg_open() takes a new session number.
 *
 * Errors: CJ_OK, CJ_ERR_NOTFOUND, CJ_ERR_NOSPACE (no free short id),
 * CJ_ERR_BUSY (a lock wait timed out or retries ran out) or
 * CJ_ERR_STORAGE (anything else the server or connection reports);
 * cj_pg_errmsg() gives the server's text for logs.
 *
 * Threading: a handle is used by one thread at a time; use one handle per
 * thread.
 */
#ifndef COJP_STORE_POSTGRES_H
#define COJP_STORE_POSTGRES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cojp/engine.h"
#include "cojp/jrc.h"
#include "store/sqlite.h"

/* Milliseconds a statement waits for a row lock held by another
 * connection before the call fails with CJ_ERR_BUSY. */
#ifndef CJ_PG_LOCK_MS
#define CJ_PG_LOCK_MS 5000
#endif
/* Times a unit of work is run when it meets a conflict (unique
 * violation, deadlock, serialization failure) before giving up. */
#ifndef CJ_PG_RETRIES
#define CJ_PG_RETRIES 8
#endif

/* Schema version this code writes; older databases are migrated on open.
 * 3: the pledge's repeat cache (cojp/jrc.h save_repeat).
 * 4: the derived material of the pledge's OSCORE context.
 * 5: a PSK per pledge (above); a database in which pledges already share
 *    a PSK is not migrated (cj_pg_open_as), unless repaired (cj_pg_repair).
 * 6: retired PSKs (cj_pg_set_psk, cj_pg_remove; store/common.h).
 * 7: the readmit operation (CJ_PG_OP_READMIT).
 * 8: the recovery mark (cj_pg_mark_recover).
 * 9: the campaign lock (cj_pg_campaign_put).
 * 10: no index of joined pledges (one index write fewer per admission).
 * 11: outcome retention (cj_pg_prune). */
#define CJ_PG_SCHEMA_VERSION 11

typedef struct cj_pg cj_pg_t;
struct pg_conn; /* libpq's PGconn */

/* The rows list/unreached/blacklist pass are those of the SQLite store,
 * so one CLI callback serves both. */
typedef cj_sqlite_info_t cj_pg_info_t;
typedef cj_sqlite_info_fn cj_pg_info_fn;

/* True when a --db value names a PostgreSQL database (postgresql:// or
 * postgres:// URI) rather than an SQLite file. */
bool cj_pg_is_uri(const char *db);

/* Connect to the database named by a libpq connection URI
 * (postgresql://user@host:port/dbname?...), create or migrate the schema
 * and take a new session number.  Returns CJ_OK and *out, or
 * CJ_ERR_STORAGE (cannot connect, not a cojp registry, server error; *out
 * is NULL), CJ_ERR_UNSUPPORTED (schema written by a newer cojp),
 * CJ_ERR_BUSY (the migration lock was not obtained in time),
 * CJ_ERR_PSK_REUSED (an older database whose pledges share a PSK:
 * cj_pg_open_as). */
int cj_pg_open(cj_pg_t **out, const char *uri);

/* cj_pg_open() giving the reason of a refusal, as cj_sqlite_open_as()
 * does (there is no reader mode: whoever opens may migrate).  A database
 * older than schema 5 in which pledges share a PSK is not migrated: the
 * open fails with CJ_ERR_PSK_REUSED, the migration's transaction rolled
 * back (nothing changed), and why (may be NULL) gets one line naming
 * those pledges, never the PSKs; otherwise why is "". */
int cj_pg_open_as(cj_pg_t **out, const char *uri, char *why, size_t whycap);

/* Close the handle (an open transaction is rolled back).  NULL is ok. */
void cj_pg_close(cj_pg_t *db);

/* The cj_jrc_store_t to hand to cj_jrc_init(); lives as long as db. */
const cj_jrc_store_t *cj_pg_store(cj_pg_t *db);

/* Group commit (see above).  begin: CJ_OK, CJ_ERR_STATE (one is already
 * open), CJ_ERR_STORAGE.  commit: CJ_OK once the server has flushed it;
 * CJ_ERR_STATE when none is open; CJ_ERR_STORAGE when it could not be
 * committed (nothing of it remains).  rollback: drops everything since
 * begin (CJ_OK, or CJ_ERR_STATE when none is open). */
int cj_pg_begin(cj_pg_t *db);
/* The same for a JRC's batch of admissions: the writes it makes to rows
 * it holds locked need no answer and travel with its next question
 * (libpq's pipeline mode), and those writes run outside savepoints, so
 * any failure among them loses the batch (its commit fails).  Between
 * begin and commit only this handle's store calls may use the
 * connection (not cj_pg_raw()). */
int cj_pg_begin_batch(cj_pg_t *db);
/* In a batch: lock and read the rows of the n pledges ids[i] (lens[i]
 * bytes) in one round trip, so that their lookups that follow need none
 * (each row serves one lookup, while the batch has not written to it).
 * Unknown ids are skipped; past the first 256 the lookups read the rows.  Outside a batch it does nothing (CJ_OK); a
 * failure loses the batch (CJ_ERR_STORAGE). */
int cj_pg_prefetch(cj_pg_t *db, const uint8_t *const *ids,
                   const uint8_t *lens, size_t n);
int cj_pg_commit(cj_pg_t *db);
int cj_pg_rollback(cj_pg_t *db);
bool cj_pg_in_transaction(const cj_pg_t *db);

/* Run SQL of one's own on the handle's connection (tests, tools): inside
 * a batch one statement, queued behind its writes (and the batch then
 * forgets which rows it holds; a failure loses the batch), else any
 * number.  With value: the first column of the first row as an integer
 * (-1: no row, or NULL).  CJ_OK or CJ_ERR_STORAGE (cj_pg_errmsg). */
int cj_pg_sql(cj_pg_t *db, const char *sql, long long *value);

/* The server's or libpq's message for the last failure (never NULL). */
const char *cj_pg_errmsg(const cj_pg_t *db);
/* This handle's session number (>= 1). */
uint64_t cj_pg_session(const cj_pg_t *db);
/* The underlying connection, for diagnostics and tests only. */
struct pg_conn *cj_pg_raw(cj_pg_t *db);

/* ---- provisioning -------------------------------------------------------- */

/* As cj_sqlite_role_mask(): "node" or "6lbr" to CJ_JRC_ALLOW_* bits. */
int cj_pg_role_mask(const char *name);

/* As cj_sqlite_add(): CJ_OK, CJ_ERR_INVALID, CJ_ERR_STATE (already
 * provisioned), CJ_ERR_PSK_REUSED (another pledge holds this PSK, or it
 * was retired), CJ_ERR_BUSY, CJ_ERR_STORAGE. */
int cj_pg_add(cj_pg_t *db, const uint8_t *id, size_t id_len,
              const uint8_t psk[16], uint8_t allowed_roles);

/* As cj_sqlite_set_psk(), cj_sqlite_remove() and cj_sqlite_repair(),
 * each one transaction.  The row is locked (a serving JRC's batch
 * holding it makes the change wait for its commit).  The repair runs in
 * the migration's transaction under its advisory lock; stop every JRC
 * instance serving the database first. */
int cj_pg_set_psk(cj_pg_t *db, const uint8_t *id, size_t id_len,
                  const uint8_t psk[16]);
int cj_pg_remove(cj_pg_t *db, const uint8_t *id, size_t id_len,
                 uint64_t now_ms);
int cj_pg_repair(const char *uri, const uint8_t *id, size_t id_len,
                 const uint8_t *psk, uint64_t now_ms, bool *upgraded,
                 char *why, size_t whycap);

/* As cj_sqlite_mark_recover(), one transaction: after a restore
 * (pg_restore, point-in-time recovery), before any instance serves. */
int cj_pg_mark_recover(cj_pg_t *db, uint32_t skip_short, uint64_t *marked);

/* As cj_sqlite_import_csv(): lines "id,psk[,role]", all in one
 * transaction; on a bad line nothing is imported and *bad_line is its
 * number (CJ_ERR_MALFORMED, CJ_ERR_STATE for an id already provisioned,
 * CJ_ERR_PSK_REUSED for a PSK another pledge holds or a retired one). */
int cj_pg_import_csv(cj_pg_t *db, const char *text, size_t len,
                     size_t *bad_line, size_t *count);

/* As cj_sqlite_list(), cj_sqlite_unreached() (session 0: this handle's)
 * and cj_sqlite_blacklist(): the callback runs after the query completed
 * and must not call into db. */
int cj_pg_list(cj_pg_t *db, cj_pg_info_fn fn, void *arg);
int cj_pg_unreached(cj_pg_t *db, uint64_t session, uint32_t campaign,
                    cj_pg_info_fn fn, void *arg);
int cj_pg_blacklist(cj_pg_t *db, cj_pg_info_fn fn, void *arg);

/* As cj_sqlite_keep_outcomes(), cj_sqlite_set_keep_outcomes() and
 * cj_sqlite_prune(): outcome retention.  A unit of work that is retried
 * (serialization failure, lost connection) runs again from its start,
 * so the count stays exact. */
int cj_pg_keep_outcomes(cj_pg_t *db, uint32_t *keep);
int cj_pg_set_keep_outcomes(cj_pg_t *db, uint32_t keep);
int cj_pg_prune(cj_pg_t *db, size_t chunk, uint64_t *removed);

/* As cj_sqlite_set_address(), cj_sqlite_evict(), cj_sqlite_readmit(). */
int cj_pg_set_address(cj_pg_t *db, const uint8_t *id, size_t id_len,
                      const cj_addr_t *addr);
int cj_pg_evict(cj_pg_t *db, const uint8_t *id, size_t id_len);
int cj_pg_readmit(cj_pg_t *db, const uint8_t *id, size_t id_len);

/* ---- network settings and pending operations (schema 2) ------------------ */

/* As the SQLite store: the network row a serving JRC restarts from, and
 * the queue of operations (rekey, evict, readmit) the CLI leaves for it. */
typedef cj_sqlite_network_t cj_pg_network_t;
typedef cj_sqlite_op_t cj_pg_op_t;
#define CJ_PG_OP_REKEY CJ_SQLITE_OP_REKEY
#define CJ_PG_OP_EVICT CJ_SQLITE_OP_EVICT
#define CJ_PG_OP_READMIT CJ_SQLITE_OP_READMIT

/* As cj_sqlite_network_load() / cj_sqlite_network_save(). */
int cj_pg_network_load(cj_pg_t *db, cj_pg_network_t *out);
int cj_pg_network_save(cj_pg_t *db, const cj_pg_network_t *n);
/* As cj_sqlite_campaign_get() / cj_sqlite_campaign_put().  Instances on
 * several hosts stamp and judge the lock with cj_pg_clock(), the
 * server's clock (Unix milliseconds), not their own. */
int cj_pg_clock(cj_pg_t *db, uint64_t *now_ms);
/* Short-id leases (and the admission time, joined_at, that goes with
 * them) are stamped and judged on the server's clock too: the
 * handle reads it at open and at each cj_pg_clock() (a serving JRC: twice
 * a second) and moves the times its host gives by the difference, when
 * that is this much (ms) or more; a smaller one is left alone (leases
 * last hours; the reading's own error is half a round trip). */
#ifndef CJ_PG_SKEW_MIN_MS
#define CJ_PG_SKEW_MIN_MS 1000
#endif
/* That difference (the server's clock minus this host's, ms; 0 when
 * under CJ_PG_SKEW_MIN_MS). */
int64_t cj_pg_clock_skew(const cj_pg_t *db);
int cj_pg_campaign_get(cj_pg_t *db, uint64_t *owner, uint64_t *alive_ms);
int cj_pg_campaign_put(cj_pg_t *db, uint64_t expect, uint64_t owner,
                       uint64_t alive_ms);

/* As cj_sqlite_op_push(), cj_sqlite_op_next(), cj_sqlite_op_done().
 * Several instances: next skips an operation another instance's open
 * transaction has taken (it stays locked until that commits), so within
 * begin ... commit each operation is carried out by one JRC only. */
int cj_pg_op_push(cj_pg_t *db, const cj_pg_op_t *op);
int cj_pg_op_next(cj_pg_t *db, cj_pg_op_t *op);
int cj_pg_op_done(cj_pg_t *db, int64_t seq);

#endif
