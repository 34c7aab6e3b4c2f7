/*
 * The JRC store conformance suite: scenarios every registry backend must
 * pass alike (cojp/jrc.h store contract, store/sqlite.h provisioning
 * API), written once against a small table of backend operations and
 * run by test_sqlite.c, test_pg.c and test_memstore.c under their own
 * test names (sqlite_*, pg_*, memstore_*).
 *
 * A backend fills ss_backend_t; what it cannot do stays NULL (the
 * in-memory store has no transactions, SQL or provisioning calls) and
 * the scenarios skip those steps.  SQL given to sql_int/sql_try is the
 * dialect common to SQLite and PostgreSQL.  Pledges come from
 * ss_make_id/ss_make_psk (or jm_make_id/jm_make_psk of jrc_multi.h).
 */
#ifndef COJP_TEST_STORE_SUITE_H
#define COJP_TEST_STORE_SUITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cojp/jrc.h"
#include "cojp/jrc_memstore.h"
#include "store/sqlite.h"

typedef struct ss_backend {
    const char *name;
    unsigned schema_version;
    /* a new empty registry; try_open returns the open call's result
     * (*h NULL on failure); cleanup (may be NULL) removes what fresh made */
    void (*fresh)(void);
    int (*try_open)(void **h);
    void (*close)(void *h);
    void (*cleanup)(void);
    const cj_jrc_store_t *(*store)(void *h);
    int (*add)(void *h, const uint8_t *id, size_t id_len,
               const uint8_t psk[16], uint8_t roles);
    void (*set_cursor)(void *h, unsigned next_short);
    /* group commit (NULL: none) */
    int (*begin)(void *h);
    int (*commit)(void *h);
    int (*rollback)(void *h);
    bool (*in_tx)(void *h);
    /* raw SQL on the handle's connection (NULL: no SQL); sql_int gives
     * -2 when the query failed */
    long long (*sql_int)(void *h, const char *sql);
    bool (*sql_try)(void *h, const char *sql);
    /* SQL that makes taking short id 2 fail with "injected", and undoes
     * it; SQL turning the registry back into schema version 1 */
    const char *inject_sql, *uninject_sql, *v1_sql;
    /* SQL turning the registry back into schema version 2, and into
     * version 4 (PSKs not unique) */
    const char *v2_sql, *v4_sql;
    /* SQL turning an empty queue of operations back into schema version
     * 6's (no readmit), the pledges into version 7's (no recovery mark),
     * the network row into version 8's (no campaign lock) */
    const char *v6_sql, *v7_sql, *v8_sql;
    /* SQL turning the registry back into schema version 9 (the indexes
     * migration 10 drops), and a query counting those indexes; into
     * version 10 (no outcome retention) */
    const char *v9_sql, *v10_dropped_sql, *v10_sql;
    /* what add returns for an id already provisioned */
    int dup_id_err;
    /* try_open, also giving the reason of a refusal (NULL: none) */
    int (*try_open_why)(void **h, char *why, size_t cap);
    /* from outside any handle, for a registry that may not open (NULL:
     * none): run SQL on it, and all of it as bytes (malloc'd, *len) that
     * are equal when the registry is unchanged */
    bool (*sql_outside)(const char *sql);
    char *(*snapshot)(size_t *len);
    /* the blacklist keeps eviction order within one millisecond too */
    bool exact_evict_order;
    /* the provisioning API of store/sqlite.h (NULL: none) */
    uint64_t (*session)(void *h);
    const char *(*errmsg)(void *h);
    int (*role_mask)(const char *name);
    int (*import_csv)(void *h, const char *text, size_t len,
                      size_t *bad_line, size_t *count);
    int (*list)(void *h, cj_sqlite_info_fn fn, void *arg);
    int (*unreached)(void *h, uint64_t session, uint32_t campaign,
                     cj_sqlite_info_fn fn, void *arg);
    int (*blacklist)(void *h, cj_sqlite_info_fn fn, void *arg);
    int (*set_address)(void *h, const uint8_t *id, size_t id_len,
                       const cj_addr_t *addr);
    int (*evict)(void *h, const uint8_t *id, size_t id_len);
    int (*readmit)(void *h, const uint8_t *id, size_t id_len);
    int (*network_load)(void *h, cj_sqlite_network_t *out);
    int (*network_save)(void *h, const cj_sqlite_network_t *n);
    int (*op_push)(void *h, const cj_sqlite_op_t *op);
    int (*op_next)(void *h, cj_sqlite_op_t *op);
    int (*op_done)(void *h, int64_t seq);
    /* recommissioning and decommissioning (cj_sqlite_set_psk,
     * cj_sqlite_remove; the memstore's alike) */
    int (*set_psk)(void *h, const uint8_t *id, size_t id_len,
                   const uint8_t psk[16]);
    int (*remove)(void *h, const uint8_t *id, size_t id_len, uint64_t now_ms);
    /* cj_sqlite_mark_recover, _campaign_get, _campaign_put (NULL: none) */
    int (*mark_recover)(void *h, uint32_t skip_short, uint64_t *marked);
    int (*campaign_get)(void *h, uint64_t *owner, uint64_t *alive_ms);
    int (*campaign_put)(void *h, uint64_t expect, uint64_t owner,
                        uint64_t alive_ms);
    /* outcome retention (cj_sqlite_keep_outcomes, _set_keep_outcomes,
     * cj_sqlite_prune; NULL: none) */
    int (*keep_outcomes)(void *h, uint32_t *keep);
    int (*set_keep_outcomes)(void *h, uint32_t keep);
    int (*prune)(void *h, size_t chunk, uint64_t *removed);
    /* the repair of a registry that does not open (cj_sqlite_repair; NULL:
     * none) */
    int (*repair)(const uint8_t *id, size_t id_len, const uint8_t *psk,
                  uint64_t now_ms, bool *upgraded, char *why, size_t cap);
} ss_backend_t;

/* Adapters for a backend whose API is store/sqlite.h's with prefix P
 * (cj_sqlite, cj_pg): SS_ADAPT(P) defines them, SS_ADAPTED(P) names them
 * in an ss_backend_t initializer. */
#define SS_ADAPT(P)                                                        \
    static void P##_ss_close(void *h) { P##_close(h); }                   \
    static const cj_jrc_store_t *P##_ss_store(void *h)                    \
    {                                                                      \
        return P##_store(h);                                               \
    }                                                                      \
    static int P##_ss_add(void *h, const uint8_t *id, size_t n,           \
                          const uint8_t psk[16], uint8_t roles)           \
    {                                                                      \
        return P##_add(h, id, n, psk, roles);                              \
    }                                                                      \
    static int P##_ss_begin(void *h) { return P##_begin(h); }             \
    static int P##_ss_commit(void *h) { return P##_commit(h); }           \
    static int P##_ss_rollback(void *h) { return P##_rollback(h); }       \
    static bool P##_ss_in_tx(void *h) { return P##_in_transaction(h); }   \
    static uint64_t P##_ss_session(void *h) { return P##_session(h); }    \
    static const char *P##_ss_errmsg(void *h) { return P##_errmsg(h); }   \
    static int P##_ss_import_csv(void *h, const char *t, size_t n,        \
                                 size_t *bad, size_t *count)              \
    {                                                                      \
        return P##_import_csv(h, t, n, bad, count);                        \
    }                                                                      \
    static int P##_ss_list(void *h, cj_sqlite_info_fn fn, void *arg)      \
    {                                                                      \
        return P##_list(h, fn, arg);                                       \
    }                                                                      \
    static int P##_ss_unreached(void *h, uint64_t s, uint32_t c,          \
                                cj_sqlite_info_fn fn, void *arg)          \
    {                                                                      \
        return P##_unreached(h, s, c, fn, arg);                            \
    }                                                                      \
    static int P##_ss_blacklist(void *h, cj_sqlite_info_fn fn, void *arg) \
    {                                                                      \
        return P##_blacklist(h, fn, arg);                                  \
    }                                                                      \
    static int P##_ss_set_address(void *h, const uint8_t *id, size_t n,   \
                                  const cj_addr_t *a)                     \
    {                                                                      \
        return P##_set_address(h, id, n, a);                               \
    }                                                                      \
    static int P##_ss_evict(void *h, const uint8_t *id, size_t n)         \
    {                                                                      \
        return P##_evict(h, id, n);                                        \
    }                                                                      \
    static int P##_ss_readmit(void *h, const uint8_t *id, size_t n)       \
    {                                                                      \
        return P##_readmit(h, id, n);                                      \
    }                                                                      \
    static int P##_ss_net_load(void *h, cj_sqlite_network_t *o)           \
    {                                                                      \
        return P##_network_load(h, o);                                     \
    }                                                                      \
    static int P##_ss_net_save(void *h, const cj_sqlite_network_t *n)     \
    {                                                                      \
        return P##_network_save(h, n);                                     \
    }                                                                      \
    static int P##_ss_op_push(void *h, const cj_sqlite_op_t *o)           \
    {                                                                      \
        return P##_op_push(h, o);                                          \
    }                                                                      \
    static int P##_ss_op_next(void *h, cj_sqlite_op_t *o)                 \
    {                                                                      \
        return P##_op_next(h, o);                                          \
    }                                                                      \
    static int P##_ss_op_done(void *h, int64_t seq)                       \
    {                                                                      \
        return P##_op_done(h, seq);                                        \
    }                                                                      \
    static int P##_ss_set_psk(void *h, const uint8_t *id, size_t n,       \
                              const uint8_t psk[16])                      \
    {                                                                      \
        return P##_set_psk(h, id, n, psk);                                 \
    }                                                                      \
    static int P##_ss_remove(void *h, const uint8_t *id, size_t n,        \
                             uint64_t now)                                \
    {                                                                      \
        return P##_remove(h, id, n, now);                                  \
    }                                                                      \
    static int P##_ss_mark_recover(void *h, uint32_t skip, uint64_t *n)   \
    {                                                                      \
        return P##_mark_recover(h, skip, n);                               \
    }                                                                      \
    static int P##_ss_camp_get(void *h, uint64_t *o, uint64_t *a)         \
    {                                                                      \
        return P##_campaign_get(h, o, a);                                  \
    }                                                                      \
    static int P##_ss_camp_put(void *h, uint64_t e, uint64_t o,           \
                               uint64_t a)                                \
    {                                                                      \
        return P##_campaign_put(h, e, o, a);                               \
    }                                                                      \
    static int P##_ss_keep_get(void *h, uint32_t *k)                      \
    {                                                                      \
        return P##_keep_outcomes(h, k);                                    \
    }                                                                      \
    static int P##_ss_keep_set(void *h, uint32_t k)                       \
    {                                                                      \
        return P##_set_keep_outcomes(h, k);                                \
    }                                                                      \
    static int P##_ss_prune(void *h, size_t chunk, uint64_t *n)           \
    {                                                                      \
        return P##_prune(h, chunk, n);                                     \
    }

#define SS_ADAPTED(P)                                                      \
    .close = P##_ss_close, .store = P##_ss_store, .add = P##_ss_add,      \
    .begin = P##_ss_begin, .commit = P##_ss_commit,                       \
    .rollback = P##_ss_rollback, .in_tx = P##_ss_in_tx,                   \
    .session = P##_ss_session, .errmsg = P##_ss_errmsg,                   \
    .role_mask = P##_role_mask, .import_csv = P##_ss_import_csv,          \
    .list = P##_ss_list, .unreached = P##_ss_unreached,                   \
    .blacklist = P##_ss_blacklist, .set_address = P##_ss_set_address,     \
    .evict = P##_ss_evict, .readmit = P##_ss_readmit,                     \
    .network_load = P##_ss_net_load, .network_save = P##_ss_net_save,     \
    .op_push = P##_ss_op_push, .op_next = P##_ss_op_next,                 \
    .op_done = P##_ss_op_done, .set_psk = P##_ss_set_psk,                 \
    .remove = P##_ss_remove, .mark_recover = P##_ss_mark_recover,       \
    .campaign_get = P##_ss_camp_get, .campaign_put = P##_ss_camp_put,     \
    .keep_outcomes = P##_ss_keep_get, .set_keep_outcomes = P##_ss_keep_set, \
    .prune = P##_ss_prune

/* The in-memory store as a backend (one registry of 512 entries; open
 * hands out the same store every time, so a "reopen" is a simulated JRC
 * restart over kept state, as cojp/jrc_memstore.h defines durability). */
extern const ss_backend_t ss_memstore;

/* The SQLite backend of test_sqlite.c (a registry file in a fresh
 * temporary directory) and that file's path, for tests of the file
 * itself (test_sqlite_faults.c). */
const ss_backend_t *ss_sqlite_backend(void);
const char *ss_sqlite_path(void);

/* ---- fixtures -------------------------------------------------------------- */

extern const uint8_t ss_nobody[8]; /* an id never provisioned */
void ss_make_id(uint8_t id[8], unsigned i);
/* A repeat cache (cojp/jrc.h save_repeat) whose bytes tell pledge i's. */
void ss_repeat_of(unsigned i, cj_jrc_repeat_t *rep);
void ss_make_psk(uint8_t psk[16], unsigned i);
/* The PSK ss_make_psk gives the pledge of an ss_make_id id (another id:
 * 16 bytes of 0xee, a PSK no fixture holds), as store calls name a
 * context (cojp/jrc.h); valid until the fourth call after. */
const uint8_t *ss_psk_of(const uint8_t id[8]);
/* Open the fresh registry (CHECKed). */
void *ss_open(const ss_backend_t *b);
/* Provision ss_make_id/psk 0..n-1 (jm_make_id/psk with ss_add_jm), in
 * one group transaction when the backend has them. */
void ss_add_n(const ss_backend_t *b, void *h, unsigned n);
void ss_add_jm(const ss_backend_t *b, void *h, unsigned n);
/* A fresh registry of the backend, opened, with its store in *st and
 * pledges 0..n-1 provisioned (ss_add_n): how most scenarios start. */
void *ss_start(const ss_backend_t *b, unsigned n, const cj_jrc_store_t **st);
/* Raise ssn_reserved to at least v (a reservation of no numbers). */
int ss_raise_ssn(const cj_jrc_store_t *st, void *c, const uint8_t *id,
                 uint64_t v);

/* ---- scenarios (each starts from b->fresh and cleans up) ------------------- */

void ss_schema_reopen(const ss_backend_t *b);
void ss_migration_1_to_2(const ss_backend_t *b);
void ss_same_results_as_memstore(const ss_backend_t *b);
void ss_short_ids_model(const ss_backend_t *b);
void ss_short_ids_vs_memstore(const ss_backend_t *b);
void ss_short_ids_batch_run(const ss_backend_t *b);
void ss_accept_piv_window(const ss_backend_t *b);
void ss_durable_across_reopen(const ss_backend_t *b);
void ss_rollback_leaves_nothing(const ss_backend_t *b);
void ss_failed_call_changes_nothing(const ss_backend_t *b);
void ss_csv_import(const ss_backend_t *b);
void ss_list_outcomes_address_evict(const ss_backend_t *b);
void ss_jrc_admission(const ss_backend_t *b);
void ss_network_row(const ss_backend_t *b);
void ss_pending_ops_fifo(const ss_backend_t *b);
void ss_two_engines(const ss_backend_t *b);
void ss_migration_2_to_3(const ss_backend_t *b);
void ss_repeat_cache(const ss_backend_t *b);
/* Schema 4: derived OSCORE material written with the PSK, read back by
 * lookup (in a group transaction too); drop_v4_sql turns the registry
 * back into version 3, bad_okm_sql stores material of a wrong length
 * (which the schema must refuse). */
void ss_okm_kept_and_migrated(const ss_backend_t *b, const char *drop_v4_sql,
                              const char *bad_okm_sql);
void ss_jrc_restart_repeat(const ss_backend_t *b);
/* Schema 7: the readmit operation; the operations queued under schema 6
 * are kept by the migration, in order, and no sequence number comes
 * twice. */
void ss_migration_6_to_7(const ss_backend_t *b);
void ss_migration_7_to_8(const ss_backend_t *b);
void ss_mark_recover(const ss_backend_t *b);
void ss_migration_8_to_9(const ss_backend_t *b);
void ss_migration_9_to_10(const ss_backend_t *b);
/* Outcome retention: each pledge keeps its latest keep_outcomes outcomes
 * as they are recorded (in the recording's transaction), a prune applies
 * a lower setting to all in chunks, 'all' keeps everything, the latest
 * outcome stays, the setting is durable and checked. */
void ss_outcome_retention(const ss_backend_t *b);
/* Schema 10 to 11: outcomes recorded before are kept by the migration
 * and trimmed from the next one on, or by a prune. */
void ss_migration_10_to_11(const ss_backend_t *b);
void ss_campaign_lock(const ss_backend_t *b);
/* A PSK per pledge (RFC 9031 section 3): add and import refuse a PSK
 * another pledge holds, and so does the database itself. */
void ss_psk_per_pledge(const ss_backend_t *b);
/* Schema 4 to 5: migrated when every pledge has a PSK of its own, else
 * refused, unchanged, naming the pledges that share one. */
void ss_migration_4_to_5(const ss_backend_t *b);
/* A new PSK for a provisioned pledge (RFC 9031 section 3,
 * recommissioning): its OSCORE state starts afresh, its admission ends,
 * its lease stays, the old PSK is retired, store calls naming the old
 * context are refused; refusals change nothing. */
void ss_set_psk(const ss_backend_t *b);
/* Removal: refused while a lease lives, then the pledge, its outcomes
 * and its context are gone, its short id is free, its PSK retired and
 * its id may come back with a new PSK. */
void ss_remove(const ss_backend_t *b);
/* The repair of a registry whose pledges share PSKs, one change at a
 * time, the last one completing the upgrade (b->repair). */
void ss_repair(const ss_backend_t *b);

#endif
