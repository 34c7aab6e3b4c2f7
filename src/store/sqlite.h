/*
 * store/sqlite.h - the JRC registry in an SQLite file: an implementation
 * of cj_jrc_store_t (cojp/jrc.h) for the JRC daemon, plus the
 * provisioning calls the CLI needs (add, CSV import, list, eviction,
 * node addresses, campaign outcomes).  Host layer: uses libc, malloc and
 * libsqlite3.
 *
 * Durability (RFC 9031 section 7.3.1: a JRC must never reuse a nonce
 * after a crash).  The file is opened in WAL mode with synchronous=FULL,
 * so every committed transaction is on stable storage before the commit
 * returns, power loss included.  Foreign keys are enforced and a busy
 * handler waits up to CJ_SQLITE_BUSY_MS for a lock held by another
 * process, so several processes (a serving JRC and the CLI, or two JRCs)
 * may share one file; write transactions take the write lock up front
 * (BEGIN IMMEDIATE), so they queue instead of failing.
 *
 * Transactions.  The engine calls the store synchronously.  Two modes:
 *   - No transaction open (the default): every store call that writes is
 *     its own transaction, durable when the call returns.
 *   - Group commit: the host calls cj_sqlite_begin(), feeds a batch of
 *     datagrams to the engine (every store call joins the open
 *     transaction), calls cj_sqlite_commit() and sends the batch's
 *     responses only when it returned CJ_OK.  One fsync serves the batch.
 *     When the commit fails, everything of the batch is gone: the host
 *     must drop the batch's responses and re-initialise the engine
 *     (cj_jrc_init) so its cached contexts are reloaded from the store.
 *   - Pipelined group commit (below): the same, but the host processes
 *     the next batch while the previous one's sync runs on a helper
 *     thread.
 * Either way a store call that fails leaves the store as it was before
 * the call (a call of several statements runs inside a savepoint; one
 * of a single statement relies on SQLite undoing a failed statement), as
 * cojp/jrc.h requires.  reserve_ssn and accept_piv read and write the
 * pledge's row within one such unit, which holds the file's write lock
 * from its start, so they are atomic across handles and processes
 * (cojp/jrc.h, "Several instances").  While a transaction is open this
 * handle holds the file's write lock: keep batches short (milliseconds).
 *
 * Inside a host transaction nobody else writes, so the handle remembers
 * the pledge row it last read (lookup) and makes that row's writes of an
 * admission (replay window, sequence number mark, join record, repeat
 * cache, and a short-id lease the unique index was asked about first)
 * as one UPDATE, before any other statement touches the row or another
 * pledge takes a short id, and before COMMIT.  Reads always see them.  Should that UPDATE fail, calls that already returned success
 * would be undone, so the whole transaction fails instead: the commit
 * returns CJ_ERR_STORAGE and the host drops the batch as above.
 *
 * Short identifiers (RFC 9031 section 8.4.4.1).  A live lease is a pledge
 * row whose lease_until is set; a partial UNIQUE index on short_id over
 * those rows makes it impossible, whatever the code does, for two rows
 * (nodes) to hold the same short id, across processes too.  Expired
 * leases are cleared (lease_until set to NULL) inside the transaction
 * that hands out an id, so their ids become free.  Ids are handed out in
 * sequence from a cursor kept in the file (0x0001..0xfffd, wrapping,
 * skipping 0x0000, the reserved 0xfffe and 0xffff and every live lease),
 * as cojp/jrc_memstore.h does, so a freed id is not reused at once.
 *
 * PSKs (RFC 9031 section 3: each pledge has a PSK of its own).  A UNIQUE
 * index on the PSK column makes it impossible for two pledges to hold
 * one PSK, across processes too: cj_sqlite_add() and the CSV import
 * refuse a PSK another pledge holds (CJ_ERR_PSK_REUSED).  A PSK that
 * leaves a pledge (cj_sqlite_set_psk, cj_sqlite_remove) is retired and
 * refused alike from then on (store/common.h: a PSK given out again
 * would bring back keys whose nonces were used).
 *
 * Campaign outcomes are recorded under (session, campaign): every
 * cj_sqlite_open() takes a new session number from the file.  A serving
 * JRC also keeps the next campaign number in the network row and starts
 * its engine from it (cj_jrc_cfg_t.first_campaign), so campaign numbers
 * are unique across restarts too.
 *
 * Errors.  Store callbacks return what cojp/jrc.h says: CJ_OK,
 * CJ_ERR_NOTFOUND, CJ_ERR_NOSPACE (no free short id) or CJ_ERR_STORAGE
 * (anything SQLite reports, including a full disk).  cj_sqlite_errmsg()
 * gives SQLite's text for the last failure, for logs.
 *
 * Threading: a handle is used by one thread at a time (the pipeline's
 * helper thread only calls fdatasync on its own descriptor).
 */
#ifndef COJP_STORE_SQLITE_H
#define COJP_STORE_SQLITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cojp/engine.h"
#include "cojp/jrc.h"

/* Milliseconds a call waits for another process's lock before failing. */
#ifndef CJ_SQLITE_BUSY_MS
#define CJ_SQLITE_BUSY_MS 5000
#endif

/* Schema version this code writes; older files are migrated on open.
 * 2: the network row and the queue of pending operations (below).
 * 3: the pledge's repeat cache (cojp/jrc.h save_repeat).
 * 4: the derived material of the pledge's OSCORE context (cj_jrc_pledge_okm).
 * 5: a PSK per pledge (the unique index above); a file in which pledges
 *    already share a PSK is not migrated (cj_sqlite_open_as), unless
 *    repaired (cj_sqlite_repair).
 * 6: retired PSKs (cj_sqlite_set_psk, cj_sqlite_remove).
 * 7: the readmit operation (CJ_SQLITE_OP_READMIT).
 * 8: the recovery mark (cj_sqlite_mark_recover).
 * 9: the campaign lock (cj_sqlite_campaign_put).
 * 10: no index on the lease end or on joined pledges (cheaper
 *    admissions; see CJ_SQLITE_SWEEP_GAP_MS).
 * 11: outcome retention (cj_sqlite_prune). */
#define CJ_SQLITE_SCHEMA_VERSION 11

typedef struct cj_sqlite cj_sqlite_t;
struct sqlite3;

/* Open (creating when missing, with mode 0600: it holds PSKs) the
 * registry at path, apply pending
 * migrations in order (one transaction) and take a new session number.
 * Returns CJ_OK and *out, or CJ_ERR_STORAGE (cannot open, not a cojp
 * registry, I/O error; *out is NULL), CJ_ERR_UNSUPPORTED (the file was
 * written by a newer cojp: schema version above CJ_SQLITE_SCHEMA_VERSION),
 * CJ_ERR_BUSY (locked by another process beyond the busy timeout),
 * CJ_ERR_PSK_REUSED (an older file whose pledges share a PSK: below). */
int cj_sqlite_open(cj_sqlite_t **out, const char *path);

/* cj_sqlite_open(), or with reader set, for a process that only reads:
 * the file must exist, and while its schema is the current one nothing
 * is written (no migration, no session number), so reading needs neither
 * the write lock nor free space; an older schema is migrated as above.
 * A file older than schema 5 in which pledges share a PSK cannot be
 * migrated without dropping or changing one of them: the open fails with
 * CJ_ERR_PSK_REUSED, the file left exactly as it was, and why (may be
 * NULL) gets one line naming those pledges ("pledges sharing a PSK:
 * {id, id}, ..."; never the PSKs), cut to whycap bytes.  On any other
 * outcome why is "". */
int cj_sqlite_open_as(cj_sqlite_t **out, const char *path, bool reader,
                      char *why, size_t whycap);

/* Close the handle (an open transaction is rolled back).  NULL is ok. */
void cj_sqlite_close(cj_sqlite_t *db);

/* The cj_jrc_store_t to hand to cj_jrc_init(); lives as long as db. */
const cj_jrc_store_t *cj_sqlite_store(cj_sqlite_t *db);

/* Group commit (see above).  begin: CJ_OK, CJ_ERR_STATE (one is already
 * open), CJ_ERR_BUSY (write lock not obtained within the busy timeout),
 * CJ_ERR_STORAGE.  commit: CJ_OK once everything is on stable storage;
 * CJ_ERR_STATE when none is open; CJ_ERR_STORAGE when the transaction
 * could not be committed (it is then rolled back, nothing of it
 * remains).  rollback: drops everything since begin (CJ_OK, or
 * CJ_ERR_STATE when none is open). */
int cj_sqlite_begin(cj_sqlite_t *db);
int cj_sqlite_commit(cj_sqlite_t *db);
int cj_sqlite_rollback(cj_sqlite_t *db);
bool cj_sqlite_in_transaction(const cj_sqlite_t *db);

/* Reading ahead, for a batch of admissions.  In the host's transaction:
 * read the rows of the n pledges ids[i] (lens[i] bytes) with one query,
 * so that their lookups that follow run none of their own; each row
 * read serves one lookup of its pledge (lookup, not lookup_context),
 * and the rows are given up as soon as anything but the deferred writes
 * of the row last looked up changes the file through this handle (any
 * other store call that writes, a failure, cj_sqlite_raw()), so a
 * lookup always sees what a query would.  Each call replaces the rows
 * of the previous one.  Unknown and malformed ids are skipped; past the
 * first CJ_SQLITE_PREFETCH the lookups read the rows.  Outside a
 * transaction it does nothing (CJ_OK).  CJ_OK, or CJ_ERR_STORAGE:
 * either the deferred writes of the row last looked up failed, which
 * loses the transaction as when a store call fails (its commit fails),
 * or the query did, and the lookups read the rows themselves. */
#ifndef CJ_SQLITE_PREFETCH
#define CJ_SQLITE_PREFETCH 64
#endif
int cj_sqlite_prefetch(cj_sqlite_t *db, const uint8_t *const *ids,
                       const uint8_t *lens, size_t n);

/* Ended leases are cleared by a sweep that scans the table (no index
 * covers the lease end, which spares each admission an index write);
 * after a sweep the next one waits until the earliest lease left ends,
 * and at least this long (ms), unless an assignment finds no free id
 * while a lease has ended;
 * when another connection wrote to the file (leases the handle does not
 * know of), the next sweep comes this long after the last one.  A short
 * id whose lease ended is thus given to another pledge up to this much
 * later. */
#ifndef CJ_SQLITE_SWEEP_GAP_MS
#define CJ_SQLITE_SWEEP_GAP_MS 10000
#endif

/* ---- pipelined group commit ------------------------------------------------
 *
 * cj_sqlite_commit() makes the host wait for the batch's fsync (3-8 ms on
 * a virtual disk) before it can take the next batch.  The pipelined form
 * lets batch N+1 be processed while batch N is being made durable; the
 * responses of a batch still leave only once it is durable:
 *
 *   cj_sqlite_pipeline(db, NULL, NULL);          once, after open
 *   loop:
 *     cj_sqlite_begin_async(db);  ... engine ...  cj_sqlite_commit_async(db, &t);
 *     keep the batch's responses under ticket t;
 *     when cj_sqlite_sync_fd() is readable: cj_sqlite_durable(db, false, &d)
 *     and send every batch with ticket <= d (on CJ_ERR_STORAGE: drop every
 *     batch above d and re-initialise the engine, as after a failed commit).
 *
 * How it works and why it is as durable as synchronous=FULL.  The batch's
 * transaction runs under synchronous=OFF (set before BEGIN; SQLite refuses
 * to change it inside a transaction), so its COMMIT appends the frames,
 * commit frame last, to the -wal file with write(2) and returns without a
 * sync.  The handle keeps its own read-only descriptor of the -wal file;
 * after the COMMIT returned, the batch's ticket is handed to a helper
 * thread, which calls fdatasync(2) on that descriptor.  fdatasync flushes
 * the file (whichever descriptor wrote it) including its size, so when it
 * returns every frame written before it started is on stable storage, and
 * a ticket is reported durable only if its COMMIT returned before the
 * fdatasync that covers it started.  After a crash, WAL recovery keeps the
 * longest run of intact frames from the start of the WAL and every
 * transaction whose commit frame lies in it; frames are appended, never
 * rewritten in place across transactions, so every batch reported durable
 * (and every batch before it) survives; batches after it may survive too,
 * which is harmless since their responses were never sent (as when a
 * crash hits between COMMIT and send).  Durable batches are reported in
 * commit order, so a batch that read another batch's writes is released
 * only after that batch.
 *
 * What could reuse WAL space are checkpoints: a WAL restart overwrites it
 * from the start once a checkpoint backfilled every frame.  Hence
 *   - automatic checkpoints are off on this handle (sqlite3_wal_hook
 *     replaces them), so none runs inside an unsynced COMMIT;
 *   - the handle runs its own checkpoints (PRAGMA wal_checkpoint(TRUNCATE)
 *     semantics, via sqlite3_wal_checkpoint_v2) only between batches,
 *     after every pending ticket became durable, with synchronous=FULL
 *     back in force: SQLite then syncs the WAL before copying frames into
 *     the database and syncs the database before the WAL may be reset
 *     (SQLite's documentation of PRAGMA synchronous and of
 *     sqlite3_wal_checkpoint_v2); it does so once the WAL holds
 *     CJ_SQLITE_CKPT_FRAMES frames, at the start of a batch;
 *   - every other connection (CLI, another JRC) runs synchronous=FULL
 *     (cj_sqlite_open checks it), so its checkpoints sync the WAL (ours
 *     included) before backfilling;
 *   - outside asynchronous batches the handle is back in synchronous=FULL,
 *     so cj_sqlite_begin()/commit() and the store calls made outside a
 *     transaction (parameter updates from timers) are durable when they
 *     return, as before; their own sync covers any pending batch too.
 * A single connection is the only way: SQLite's write transaction and its
 * COMMIT belong to one connection, and a second connection cannot begin
 * batch N+1 while batch N's COMMIT (which holds the write lock through
 * its sync under synchronous=FULL) has not returned, so a "commit thread
 * with its own connection" would serialise exactly as before.
 *
 * A failed fdatasync: cj_sqlite_durable() reports CJ_ERR_STORAGE once;
 * every ticket above *upto is lost to the host, which must drop those
 * batches' responses and reload its engine.  The kernel may have dropped
 * the pages it could not write, and a later successful fdatasync would
 * not write them again, so the handle refuses every write until it has
 * copied the WAL into the database and cut it (a TRUNCATE checkpoint
 * under synchronous=FULL): from then on SQLite reads what the database
 * file durably holds.  The residual risk is the one every database has
 * after an fsync error on Linux: that copy reads the WAL through the page
 * cache, which normally still holds the unwritten pages; if the kernel
 * evicted them in the meantime, the copy takes whatever the disk holds.
 * An operator should treat an fsync error as a failing disk.
 *
 * cj_sqlite_pipeline: start the helper thread (fn NULL: fdatasync; tests
 * pass a hook that may delay or fail, returning 0 or -1, called on the
 * helper thread with the WAL descriptor).  CJ_OK, CJ_ERR_STATE (already on,
 * or a transaction is open), CJ_ERR_UNSUPPORTED (no WAL file: in-memory
 * database), CJ_ERR_STORAGE.  Off until called; cj_sqlite_close() waits
 * for the pending syncs and stops the thread.
 * cj_sqlite_begin_async: as cj_sqlite_begin (plain begin when the
 * pipeline is off); may first wait for pending syncs and checkpoint.
 * cj_sqlite_commit_async: CJ_OK and *ticket (> 0, increasing) once the
 * batch is committed, durable later; CJ_ERR_STORAGE as cj_sqlite_commit
 * (nothing of the batch remains).  A transaction begun with
 * cj_sqlite_begin_async may also end with cj_sqlite_commit (it then waits
 * for its sync) or cj_sqlite_rollback.
 * cj_sqlite_durable: *upto = the highest durable ticket (every lower one
 * is durable too); wait: block until every committed ticket is durable
 * or a sync failed.  CJ_OK, or CJ_ERR_STORAGE after a failed sync (see
 * above).  cj_sqlite_sync_fd: a descriptor that becomes readable when a
 * sync finished (-1 while the pipeline is off); cj_sqlite_durable drains
 * it.  All of these are for the thread that uses the handle. */

/* WAL frames after which an asynchronous batch first checkpoints. */
#ifndef CJ_SQLITE_CKPT_FRAMES
#define CJ_SQLITE_CKPT_FRAMES 1000
#endif

typedef int (*cj_sqlite_sync_fn)(void *arg, int fd);

int cj_sqlite_pipeline(cj_sqlite_t *db, cj_sqlite_sync_fn fn, void *arg);
int cj_sqlite_begin_async(cj_sqlite_t *db);
int cj_sqlite_commit_async(cj_sqlite_t *db, uint64_t *ticket);
int cj_sqlite_durable(cj_sqlite_t *db, bool wait, uint64_t *upto);
int cj_sqlite_sync_fd(const cj_sqlite_t *db);

/* SQLite's message for the last failure on this handle (never NULL). */
const char *cj_sqlite_errmsg(const cj_sqlite_t *db);
/* This handle's session number (>= 1), under which outcomes of the
 * engine's campaigns are recorded. */
uint64_t cj_sqlite_session(const cj_sqlite_t *db);
/* The underlying connection, for diagnostics and tests only. */
struct sqlite3 *cj_sqlite_raw(cj_sqlite_t *db);

/* ---- provisioning -------------------------------------------------------- */

/* Allowed-role mask (CJ_JRC_ALLOW_*) of a CLI role name: "node" allows
 * the 6TiSCH Node role; "6lbr" allows 6LBR and also the plain node role
 * (the role is a permission, not an obligation).  CJ_ERR_INVALID for any
 * other name. */
int cj_sqlite_role_mask(const char *name);

/* Provision a pledge: id 1..CJ_JRC_MAX_ID bytes, 16-byte PSK, non-zero
 * allowed_roles.  CJ_OK, CJ_ERR_INVALID (bad length or roles),
 * CJ_ERR_STATE (already provisioned, whatever the PSK),
 * CJ_ERR_PSK_REUSED (another pledge holds this PSK, or it was retired),
 * CJ_ERR_STORAGE. */
int cj_sqlite_add(cj_sqlite_t *db, const uint8_t *id, size_t id_len,
                  const uint8_t psk[16], uint8_t allowed_roles);

/* Give provisioned pledge id a new PSK (recommissioning to a new owner,
 * RFC 9031 section 3), in one transaction (or the open one).  Its old
 * OSCORE context ends, and what the registry keeps for it starts afresh
 * as for a pledge just provisioned with this id: the derived material
 * (cj_jrc_pledge_okm of the new PSK), the sequence number mark (0), the
 * replay window (empty), the repeat cache (none) and a recovered ID
 * Context (none).  Its admission ends (joined cleared, so campaigns pass
 * it by until it joins under the new PSK).  Its short-id lease stays as
 * it is: the device may still use that id in the network, so the id is
 * handed to nobody else before the lease ends; the pledge gets it back
 * when it joins while the lease lives.  The eviction mark, update
 * address and campaign outcomes stay.  The old PSK is retired.  An
 * engine that caches the old context cannot use it any more (cojp/jrc.h
 * "PSK changes").  CJ_OK, CJ_ERR_INVALID, CJ_ERR_NOTFOUND (not
 * provisioned), CJ_ERR_PSK_REUSED (psk is held by a pledge, this one
 * included, or retired), CJ_ERR_BUSY, CJ_ERR_STORAGE; nothing changes
 * on failure. */
int cj_sqlite_set_psk(cj_sqlite_t *db, const uint8_t *id, size_t id_len,
                      const uint8_t psk[16]);

/* After restoring the file from a backup, before any JRC serves it: its
 * OSCORE state (sequence number marks, replay windows) and short-id
 * leases may be older than what the network saw.  In one transaction
 * every pledge is marked must_recover (cojp/jrc.h: its next verified
 * request gets a recovery 4.01 and a fresh context, campaigns skip it
 * until then) and the search for free short identifiers moves skip_short
 * ids on (0..65533), past ids assigned after the backup that nodes may
 * still hold.  *marked (may be NULL) counts the pledges.  A new context
 * (the engine's save_context) or a new PSK clears a pledge's mark.
 * CJ_OK, CJ_ERR_INVALID, CJ_ERR_BUSY, CJ_ERR_STORAGE; nothing changes on
 * failure. */
int cj_sqlite_mark_recover(cj_sqlite_t *db, uint32_t skip_short,
                           uint64_t *marked);

/* Remove provisioned pledge id (decommissioning), in one transaction:
 * its row and campaign outcomes go, its PSK is retired, its id may be
 * provisioned again (with another PSK).  Refused while it holds a
 * short-id lease live at now_ms (wall-clock ms): the device may still
 * use that id, which must not go to another pledge before the lease
 * ends; an eviction ends the lease.  Removing a pledge does not take a
 * device that joined out of the network (it keeps the link-layer keys
 * until a rekey): evict it for that.  CJ_OK, CJ_ERR_INVALID,
 * CJ_ERR_NOTFOUND, CJ_ERR_STATE (live lease), CJ_ERR_BUSY,
 * CJ_ERR_STORAGE; nothing changes on failure. */
int cj_sqlite_remove(cj_sqlite_t *db, const uint8_t *id, size_t id_len,
                     uint64_t now_ms);

/* Repair a file that cannot be opened because its pledges share PSKs
 * (an older schema, cj_sqlite_open_as CJ_ERR_PSK_REUSED) with one of the
 * two changes above: pledge id gets psk, or is removed when psk is NULL
 * (lease live at now_ms as for cj_sqlite_remove).  The change is made in
 * the migration's transaction, where migration 5 would refuse: when no
 * pledges share a PSK afterwards, the file is migrated to the current
 * schema in the same transaction (*upgraded set); otherwise the change
 * and the migrations before 5 are committed and why names the pledges
 * that still share one (*upgraded false), so each repair makes progress
 * and the last one completes the upgrade.  A file that needs no repair
 * is migrated as by cj_sqlite_open() and then changed.  CJ_OK when the
 * change was made; otherwise the change's error (as for
 * cj_sqlite_set_psk / cj_sqlite_remove) or the open's, and the file is
 * unchanged.  No cojp that serves the file may run meanwhile: an older
 * one does not know the PSK changed under its cached contexts. */
int cj_sqlite_repair(const char *path, const uint8_t *id, size_t id_len,
                     const uint8_t *psk, uint64_t now_ms, bool *upgraded,
                     char *why, size_t whycap);

/* Import provisioning lines "id,psk[,role]" (hex id of 1..CJ_JRC_MAX_ID
 * bytes, 32 hex digits of PSK, role node|6lbr, default node; spaces
 * around fields, CR before LF, blank lines and lines starting with '#'
 * are ignored) from text[0..len), all in one transaction.  On CJ_OK
 * *count (may be NULL) is the number of pledges added.  On any bad line
 * nothing is imported and *bad_line (may be NULL) is its 1-based number:
 * CJ_ERR_MALFORMED (syntax, length), CJ_ERR_STATE (id already
 * provisioned, in the file or in the registry), CJ_ERR_PSK_REUSED (the
 * PSK is held by another pledge, in the file or in the registry, or was
 * retired).
 * CJ_ERR_STORAGE otherwise (*bad_line 0). */
int cj_sqlite_import_csv(cj_sqlite_t *db, const char *text, size_t len,
                         size_t *bad_line, size_t *count);

/* Everything the registry knows about one pledge, as list passes it. */
typedef struct cj_sqlite_info {
    cj_jrc_pledge_t rec;         /* includes the PSK: never print it */
    bool has_lease;              /* rec.short_id is leased (maybe expired) */
    uint64_t lease_until;        /* ms; UINT64_MAX: no expiry */
    bool has_joined_at;
    uint64_t joined_at;          /* ms of the last admission */
    bool evicted;
    cj_addr_t addr;              /* len 0: none set (the id is used) */
    bool has_update;             /* an outcome was recorded */
    uint64_t update_session;     /* of the last recorded outcome */
    uint32_t update_campaign;
    bool update_acked;
    uint64_t update_at;          /* ms, wall clock */
} cj_sqlite_info_t;

/* Called once per pledge; a non-zero return stops the iteration and is
 * returned by the caller.  It must not call into db. */
typedef int (*cj_sqlite_info_fn)(void *arg, const cj_sqlite_info_t *info);

/* Every provisioned pledge in provisioning order.  CJ_OK (or the
 * callback's non-zero value), CJ_ERR_STORAGE. */
int cj_sqlite_list(cj_sqlite_t *db, cj_sqlite_info_fn fn, void *arg);

/* Pledges a campaign did not reach: those whose recorded outcome for
 * (session, campaign) is "not acknowledged", in provisioning order
 * (session 0: this handle's).  Same returns as cj_sqlite_list. */
int cj_sqlite_unreached(cj_sqlite_t *db, uint64_t session, uint32_t campaign,
                        cj_sqlite_info_fn fn, void *arg);

/* Outcome retention.  Every campaign adds one outcome per pledge it
 * tried; the registry keeps the latest keep of each pledge (a setting of
 * the registry, CJ_STORE_KEEP_OUTCOMES unless changed; 0: all of them):
 * recording an outcome removes, in the same transaction, that pledge's
 * outcomes beyond its keep latest.  A lower setting applies to a pledge
 * at its next outcome; cj_sqlite_prune applies it to every pledge now,
 * in transactions of at most chunk outcomes (0, or more than
 * CJ_STORE_PRUNE_CHUNK: CJ_STORE_PRUNE_CHUNK),
 * so that a serving JRC waits for none of them long, adding the number
 * removed to *removed.  The latest outcome, the one list shows, is kept
 * whatever the setting.  keep_outcomes reads the setting,
 * set_keep_outcomes changes it (CJ_ERR_INVALID above
 * CJ_STORE_KEEP_MAX); CJ_OK, CJ_ERR_BUSY, CJ_ERR_STORAGE.  A prune that
 * fails keeps what its earlier transactions removed. */
int cj_sqlite_keep_outcomes(cj_sqlite_t *db, uint32_t *keep);
int cj_sqlite_set_keep_outcomes(cj_sqlite_t *db, uint32_t keep);
int cj_sqlite_prune(cj_sqlite_t *db, size_t chunk, uint64_t *removed);

/* Set the address node_address() returns for a pledge (addr->len 0
 * clears it: the pledge id is then used, as in jrc_memstore).  CJ_OK,
 * CJ_ERR_NOTFOUND, CJ_ERR_INVALID, CJ_ERR_STORAGE. */
int cj_sqlite_set_address(cj_sqlite_t *db, const uint8_t *id, size_t id_len,
                          const cj_addr_t *addr);

/* Eviction record.  cj_sqlite_evict() ends the admission and lease (as
 * the store's release) and marks the pledge evicted, in one transaction:
 * the CLI uses it when no JRC runs, a daemon after cj_jrc_evict()
 * succeeded.  The registry still holds the pledge; cj_sqlite_blacklist()
 * enumerates evicted ids (eviction order, oldest first) so a daemon can
 * rebuild cj_jrc_cfg_t.blacklist at start; cj_sqlite_readmit() clears the
 * mark.  CJ_OK, CJ_ERR_NOTFOUND, CJ_ERR_STORAGE. */
int cj_sqlite_evict(cj_sqlite_t *db, const uint8_t *id, size_t id_len);
int cj_sqlite_readmit(cj_sqlite_t *db, const uint8_t *id, size_t id_len);
int cj_sqlite_blacklist(cj_sqlite_t *db, cj_sqlite_info_fn fn, void *arg);

/* ---- network settings and pending operations (schema 2) ------------------ */

/* What a serving JRC needs to restart as the same network: at most one
 * row.  Keys are secrets like the PSKs beside them: protect the file. */
typedef struct cj_sqlite_network {
    uint8_t network_id[16];
    uint8_t network_id_len;           /* 0: none configured */
    cj_jrc_key_t keys[CJ_COJP_MAX_KEYS];
    uint8_t key_count;                /* 1..CJ_COJP_MAX_KEYS */
    uint8_t jrc_address[16];
    bool has_jrc_address;
    uint32_t join_rate;               /* UINT32_MAX: none sent */
    uint32_t lease_hours;             /* 0: no lease_time sent */
    uint32_t next_campaign;           /* >= 1 */
} cj_sqlite_network_t;

/* Load the network row: CJ_OK, CJ_ERR_NOTFOUND (never saved),
 * CJ_ERR_STORAGE (also for a row this code could not have written).
 * Save replaces it (one unit of work, or part of an open transaction):
 * CJ_OK, CJ_ERR_INVALID (bad lengths or key count), CJ_ERR_STORAGE. */
int cj_sqlite_network_load(cj_sqlite_t *db, cj_sqlite_network_t *out);
int cj_sqlite_network_save(cj_sqlite_t *db, const cj_sqlite_network_t *n);

/* The campaign lock of several JRC instances sharing the registry: the
 * instance that runs a rekey, eviction or readmission campaign (its
 * session number; 0: none) and when it last said it still does (wall
 * ms), beside the network row and never changed by network_save.  Get
 * reads them (CJ_ERR_NOTFOUND without a network row).  Put is a
 * compare-and-set: where the owner is expect (0: none), it becomes owner
 * with alive_ms (owner 0: none, the time cleared); CJ_ERR_NOTFOUND,
 * nothing changed, when the owner is another.  One unit of work, or part
 * of an open transaction. */
int cj_sqlite_campaign_get(cj_sqlite_t *db, uint64_t *owner,
                           uint64_t *alive_ms);
int cj_sqlite_campaign_put(cj_sqlite_t *db, uint64_t expect, uint64_t owner,
                           uint64_t alive_ms);

/* Operations queued by `cojp jrc rekey` / `evict` / `readmit` for the
 * serving JRC, oldest first. */
#define CJ_SQLITE_OP_REKEY 1
#define CJ_SQLITE_OP_EVICT 2
#define CJ_SQLITE_OP_READMIT 3 /* schema 7 */
typedef struct cj_sqlite_op {
    int64_t seq;                /* set by next() */
    int kind;                   /* CJ_SQLITE_OP_* */
    uint8_t id[CJ_JRC_MAX_ID];  /* evict, readmit: the pledge */
    uint8_t id_len;
    uint8_t key[16];            /* rekey: the new K2 when has_key */
    bool has_key;
    uint64_t queued_at;         /* ms, wall clock (set by push) */
} cj_sqlite_op_t;

/* push: CJ_OK, CJ_ERR_INVALID (kind, or evict or readmit without id),
 * CJ_ERR_STORAGE.  next: the oldest queued operation without removing it
 * (CJ_OK, CJ_ERR_NOTFOUND, CJ_ERR_STORAGE); done: remove it (CJ_OK,
 * CJ_ERR_NOTFOUND, CJ_ERR_STORAGE).  A JRC takes an operation with
 * begin, next, its own writes, done, commit, so a crash in between
 * leaves it queued. */
int cj_sqlite_op_push(cj_sqlite_t *db, const cj_sqlite_op_t *op);
int cj_sqlite_op_next(cj_sqlite_t *db, cj_sqlite_op_t *op);
int cj_sqlite_op_done(cj_sqlite_t *db, int64_t seq);

#endif
