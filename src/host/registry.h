/*
 * registry.h - the JRC's database as the `cojp jrc` commands see it,
 * whatever holds it.  --db takes a file path (SQLite, store/sqlite.h) or
 * a postgresql:// URI (PostgreSQL, store/postgres.h); cj_reg_open() picks
 * the backend and every other call forwards to it, so a backend is one
 * branch per function here.
 *
 * Besides the engine's cj_jrc_store_t and provisioning, the registry
 * keeps what `jrc serve` needs to restart as the same network (the
 * network row: network id, link-layer key set, JRC address, join rate,
 * lease hours, next campaign number) and the queue of pending operations
 * (`jrc rekey`, `jrc evict`, `jrc readmit`) that separate processes write
 * and the serving JRC takes.
 */
#ifndef COJP_HOST_REGISTRY_H
#define COJP_HOST_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cojp/jrc.h"
#include "store/sqlite.h"

typedef struct cj_reg cj_reg_t;

/* Open db (creating an SQLite file when missing).  CJ_OK, or an error
 * with a message in err: CJ_ERR_UNSUPPORTED (backend not built / newer
 * schema), CJ_ERR_STORAGE, CJ_ERR_BUSY, CJ_ERR_PSK_REUSED (an older
 * registry whose pledges share a PSK, left unchanged: the message names
 * them). */
int cj_reg_open(cj_reg_t **out, const char *db, char *err, size_t errcap);
/* The same for a command that only reads: an SQLite file is then opened
 * without writing to it (cj_sqlite_open_as); PostgreSQL as above. */
int cj_reg_open_as(cj_reg_t **out, const char *db, bool reader, char *err, size_t errcap);
void cj_reg_close(cj_reg_t *r);
const char *cj_reg_errmsg(const cj_reg_t *r);

const cj_jrc_store_t *cj_reg_store(cj_reg_t *r);
int cj_reg_begin(cj_reg_t *r);
int cj_reg_commit(cj_reg_t *r);
int cj_reg_rollback(cj_reg_t *r);

/* Pipelined group commit (store/sqlite.h "pipelined group commit"):
 * batch_commit returns a ticket that becomes durable later; durable()
 * reports the highest durable ticket (CJ_ERR_STORAGE: a sync failed and
 * every ticket above *upto is lost); sync_fd() is readable when a sync
 * finished (-1: none, every ticket is durable when batch_commit returns,
 * as with PostgreSQL, whose commit waits for the server's flush). */
int cj_reg_pipeline(cj_reg_t *r);
int cj_reg_batch_begin(cj_reg_t *r);
int cj_reg_batch_commit(cj_reg_t *r, uint64_t *ticket);
int cj_reg_durable(cj_reg_t *r, bool wait, uint64_t *upto);
int cj_reg_sync_fd(cj_reg_t *r);
/* Batches are faster with the rows of the batch's pledges read at once:
 * cj_reg_prefetch() (store/postgres.h cj_pg_prefetch: a round trip per
 * batch instead of one per lookup; store/sqlite.h cj_sqlite_prefetch:
 * one query instead of one per lookup). */
int cj_reg_prefetch(cj_reg_t *r, const uint8_t *const *ids,
                    const uint8_t *lens, size_t n);

int cj_reg_role_mask(const char *name);
int cj_reg_add(cj_reg_t *r, const uint8_t *id, size_t id_len,
               const uint8_t psk[16], uint8_t roles);
int cj_reg_import_csv(cj_reg_t *r, const char *text, size_t len,
                      size_t *bad_line, size_t *count);
int cj_reg_list(cj_reg_t *r, cj_sqlite_info_fn fn, void *arg);
int cj_reg_blacklist(cj_reg_t *r, cj_sqlite_info_fn fn, void *arg);
int cj_reg_set_address(cj_reg_t *r, const uint8_t *id, size_t id_len,
                       const cj_addr_t *addr);
/* Outcome retention (store/sqlite.h cj_sqlite_keep_outcomes, _set_keep_
 * outcomes, and cj_sqlite_prune in transactions of the default size). */
int cj_reg_keep_outcomes(cj_reg_t *r, uint32_t *keep);
int cj_reg_set_keep_outcomes(cj_reg_t *r, uint32_t keep);
int cj_reg_prune(cj_reg_t *r, uint64_t *removed);
int cj_reg_evict(cj_reg_t *r, const uint8_t *id, size_t id_len);
int cj_reg_readmit(cj_reg_t *r, const uint8_t *id, size_t id_len);
/* store/sqlite.h cj_sqlite_mark_recover(): after a restore. */
int cj_reg_mark_recover(cj_reg_t *r, uint32_t skip_short, uint64_t *marked);
/* store/sqlite.h cj_sqlite_set_psk() and cj_sqlite_remove() (now_ms:
 * wall clock), and cj_sqlite_repair() for a registry cj_reg_open()
 * refused with CJ_ERR_PSK_REUSED (psk NULL: remove), whichever backend
 * db names. */
int cj_reg_set_psk(cj_reg_t *r, const uint8_t *id, size_t id_len,
                   const uint8_t psk[16]);
int cj_reg_remove(cj_reg_t *r, const uint8_t *id, size_t id_len,
                  uint64_t now_ms);
int cj_reg_repair(const char *db, const uint8_t *id, size_t id_len,
                  const uint8_t *psk, uint64_t now_ms, bool *upgraded,
                  char *why, size_t whycap);

int cj_reg_network_load(cj_reg_t *r, cj_sqlite_network_t *n);
int cj_reg_network_save(cj_reg_t *r, const cj_sqlite_network_t *n);
/* store/sqlite.h cj_sqlite_campaign_get() / _put(), and the handle's
 * session number (what names this instance as a campaign's owner). */
int cj_reg_campaign_get(cj_reg_t *r, uint64_t *owner, uint64_t *alive_ms);
int cj_reg_campaign_put(cj_reg_t *r, uint64_t expect, uint64_t owner,
                        uint64_t alive_ms);
uint64_t cj_reg_session(const cj_reg_t *r);
/* The registry's clock in Unix milliseconds, the one every instance
 * sharing the registry reads for the campaign lock: for SQLite, on one
 * host, this host's; for PostgreSQL the server's, so that instances on
 * hosts whose clocks disagree still agree on when a lock went stale. */
int cj_reg_clock(cj_reg_t *r, uint64_t *now_ms);
/* How far the registry's clock is ahead of this host's (ms; negative:
 * behind), as the last cj_reg_clock() found it: what short-id leases are
 * moved by (cj_pg_clock_skew); 0 for SQLite. */
int64_t cj_reg_clock_skew(const cj_reg_t *r);
int cj_reg_op_push(cj_reg_t *r, const cj_sqlite_op_t *op);
int cj_reg_op_next(cj_reg_t *r, cj_sqlite_op_t *op);
int cj_reg_op_done(cj_reg_t *r, int64_t seq);

#endif
