/*
 * store/common.h - what the SQLite and PostgreSQL registries
 * (store/sqlite.h, store/postgres.h) share apart from their SQL: argument
 * checks, the CSV provisioning format, hex fields, the encoding of the
 * network row's key set and the range checks every row read from a
 * database must pass before it becomes a cj_jrc_pledge_t.  Host layer
 * (uses libc); internal to src/store, not an API of its own.
 *
 * Row checks exist because a registry file or database may have been
 * edited by hand or by a newer cojp: a row this code could not have
 * written is reported as CJ_ERR_STORAGE by the backends, never passed on
 * half-read.
 */
#ifndef COJP_STORE_COMMON_H
#define COJP_STORE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cojp/jrc.h"
#include "store/sqlite.h"

/* The columns of a pledge row in the order read_pledge() of either
 * backend reads them (0..10), and of a list row: those of p, then lease,
 * admission, eviction and address (11..14), then the last outcome u
 * (15..18). */
#define CJ_STORE_PLEDGE_COLS                                               \
    "id, psk, allowed_roles, ssn_reserved, replay_highest, replay_bitmap, " \
    "replay_valid, id_context, joined, role, short_id"
#define CJ_STORE_INFO_COLS                                                 \
    "p.id, p.psk, p.allowed_roles, p.ssn_reserved, p.replay_highest, "      \
    "p.replay_bitmap, p.replay_valid, p.id_context, p.joined, p.role, "     \
    "p.short_id, p.lease_until, p.joined_at, p.evicted_at, p.address, "     \
    "u.session, u.campaign, u.acked, u.at, p.must_recover"

/* The cj_jrc_store_t of a backend over ctx, whose callbacks are the
 * statics st_lookup, st_lookup_context, ... st_record_update of the
 * including file (one name per member of cj_jrc_store_t). */
#define CJ_STORE_CALLBACKS(ctx_)                                           \
    {                                                                      \
        .ctx = (ctx_), .lookup = st_lookup,                                \
        .lookup_context = st_lookup_context, .reserve_ssn = st_reserve_ssn, \
        .accept_piv = st_accept_piv, .save_repeat = st_save_repeat,        \
        .save_context = st_save_context,                                   \
        .assign_short_id = st_assign_short_id,                             \
        .record_join = st_record_join, .release = st_release,              \
        .next_joined = st_next_joined, .node_address = st_node_address,    \
        .record_update = st_record_update,                                 \
    }

#define CJ_STORE_HOUR_MS INT64_C(3600000)
/* lease_until of a lease without expiry (lease_hours 0) */
#define CJ_STORE_NO_EXPIRY INT64_MAX
/* highest short id handed out: 0xfffe and 0xffff are reserved (RFC 9031
 * section 8.4.4.1) */
#define CJ_STORE_SHORT_MAX 0xfffd
/* Campaign outcomes the registry keeps per pledge (the registry's
 * keep_outcomes setting; 0: every one), as migration 11 sets it and the
 * most it accepts; older outcomes go when a newer one is recorded. */
#define CJ_STORE_KEEP_OUTCOMES 16
#define CJ_STORE_KEEP_MAX 1000000
/* Most outcomes one transaction of a prune removes (cj_sqlite_prune). */
#define CJ_STORE_PRUNE_CHUNK 10000
/* One transaction of a prune: the outcomes beyond each pledge's latest
 * KEEP, of pledges from FROM on in pledge order, at most CHUNK of them,
 * each deleted row's pledge returned (the last one is where the next
 * transaction starts: its surplus may not all be gone).  ROWID orders
 * outcomes by when they were recorded. */
#define CJ_STORE_PRUNE_SQL(rowid, keep, chunk, from)                       \
    "DELETE FROM updates WHERE " rowid " IN (SELECT u." rowid              \
    " FROM updates u WHERE u.pledge >= " from " AND u." rowid " <="        \
    " (SELECT x." rowid " FROM updates x WHERE x.pledge = u.pledge"        \
    "  ORDER BY x." rowid " DESC LIMIT 1 OFFSET " keep ")"                 \
    " ORDER BY u.pledge LIMIT " chunk ") RETURNING pledge"
/* Where a prune goes on: the last pledge its transaction took from. */
typedef struct cj_store_from {
    uint8_t b[CJ_JRC_MAX_ID];
    size_t len;
} cj_store_from_t;
/* Move *from on to pledge id p (len bytes) when p sorts after it as SQL
 * compares blobs (bytes first, then the longer after its prefix). */
void cj_store_from_max(cj_store_from_t *from, const uint8_t *p, size_t len);
/* One key of the network row's key set: key_id, key_usage, 16 key bytes. */
#define CJ_STORE_KEY_REC 18
#define CJ_STORE_KEYS_MAX (CJ_COJP_MAX_KEYS * CJ_STORE_KEY_REC)

/* v clamped to INT64_MAX (database integers are signed 64-bit). */
int64_t cj_store_i64(uint64_t v);

/* Wall-clock milliseconds (CLOCK_REALTIME), for the *_at columns. */
uint64_t cj_store_wall_ms(void);

/* A pledge id of 1..CJ_JRC_MAX_ID bytes. */
bool cj_store_id_ok(const uint8_t *id, size_t id_len);

/* An ID Context argument: len 0 (the pledge id is the ID Context) or
 * 1..CJ_OSCORE_MAX_ID_CONTEXT bytes at ctx_id. */
bool cj_store_ctx_ok(const uint8_t *ctx_id, size_t ctx_len);

/* Time t (ms, >= 0) moved by ms (either way), kept within 0..INT64_MAX
 * (CJ_STORE_NO_EXPIRY). */
int64_t cj_store_add_ms(int64_t t, int64_t ms);

/* lease_until for a lease of lease_hours starting at now (ms):
 * CJ_STORE_NO_EXPIRY for 0 hours or when the end would overflow. */
int64_t cj_store_lease_end(int64_t now, uint32_t lease_hours);

/* As cj_sqlite_role_mask(): "node" or "6lbr" to CJ_JRC_ALLOW_* bits,
 * CJ_ERR_INVALID for anything else (NULL included). */
int cj_store_role_mask(const char *name);

/* Hex digits [p, e) (either case, nothing else) into out, at most cap
 * bytes: the byte count (>= 1), or -1 when empty, odd, too long or not
 * hex. */
int cj_store_hex_decode(const char *p, const char *e, uint8_t *out,
                        size_t cap);

/* n bytes at p as 2n lowercase hex digits at out (no terminator);
 * returns the end of what was written. */
char *cj_store_hex_encode(char *out, const uint8_t *p, size_t n);

/* The integer and boolean columns of a pledge row, as read. */
typedef struct cj_store_row {
    int64_t allowed_roles;
    int64_t ssn_reserved;
    int64_t replay_highest;
    int64_t replay_bitmap;
    int64_t role;
    int64_t short_id;
    bool replay_valid;
    bool joined;
} cj_store_row_t;

/* Check the ranges of v and copy it into r (id, psk and id_context are
 * the caller's).  False, r unchanged, for a row this code could not have
 * written. */
bool cj_store_row_fill(cj_jrc_pledge_t *r, const cj_store_row_t *v);

/* ---- repeat cache (schema 3) ------------------------------------------ */

/* The pledge row's repeat_cache column (NULL: none) holds a
 * cj_jrc_repeat_t as: req_opt_len (1 byte), req_len (2, big endian),
 * resp_len (2), from.len (1), then req, resp and the address bytes. */
#define CJ_STORE_REPEAT_MAX \
    (6 + CJ_JRC_REQ_CACHE + CJ_JRC_RESP_CACHE + CJ_ADDR_MAX)

/* Encode r (which must hold a request and a response); returns the byte
 * count, 0 when r is empty or out of range (nothing to store). */
size_t cj_store_repeat_pack(const cj_jrc_repeat_t *r,
                            uint8_t out[CJ_STORE_REPEAT_MAX]);

/* Decode b[0..len) into *r (cleared first); false, r empty, for bytes
 * cj_store_repeat_pack could not have written. */
bool cj_store_repeat_unpack(const uint8_t *b, size_t len, cj_jrc_repeat_t *r);

/* ---- one PSK per pledge (schema 5) -------------------------------------- */

/* Both backends refuse a second pledge with a PSK another pledge holds
 * through a unique index on the PSK column (RFC 9031 section 3: every
 * pledge has a PSK of its own), added by migration 5.  A registry whose
 * pledges already share PSKs cannot take the index without losing or
 * changing a pledge, so the open that would migrate it fails instead,
 * changing nothing, and names them.  This query finds them: the id of
 * every pledge whose PSK another holds and the seq of the first pledge
 * provisioned with it (the group), in provisioning order; the PSKs are
 * not read. */
#define CJ_STORE_SHARED_PSK_SQL                                            \
    "SELECT p.id, d.g FROM pledges p JOIN (SELECT psk, min(seq) AS g"       \
    " FROM pledges GROUP BY psk HAVING count(*) > 1) d ON d.psk = p.psk"   \
    " ORDER BY d.g, p.seq"

/* The one-line list of those rows, built as they are read:
 * "pledges sharing a PSK: {id, id}, {id, id, id}", ids in hex, a group
 * per PSK.  What does not fit in out[0..cap) is cut at an id and the
 * line ends "... (N pledges in all)". */
typedef struct cj_store_shared {
    char *out;
    size_t cap, len;
    int64_t group;  /* of the last id added */
    size_t n;       /* ids added */
    bool cut;
} cj_store_shared_t;

/* Start an empty list in out[0..cap) (cap >= 1). */
void cj_store_shared_init(cj_store_shared_t *l, char *out, size_t cap);
/* Add the id of a row; group as the query returns it. */
void cj_store_shared_add(cj_store_shared_t *l, int64_t group,
                         const uint8_t *id, size_t id_len);
/* Finish the line; the number of ids added (0: nothing shares a PSK,
 * out is ""). */
size_t cj_store_shared_end(cj_store_shared_t *l);

/* ---- PSK changes and removal (schema 6) -------------------------------- */

/* A PSK that leaves a pledge (a new PSK given, the pledge removed) is
 * retired: the registry keeps a fingerprint of it and refuses it to
 * every later add, import or PSK change.  The keys of a pledge's OSCORE
 * context follow from its PSK and id alone, and a new PSK restarts the
 * context (sequence numbers from 0, empty replay window), so a PSK given
 * back to the same id would make the JRC reuse nonces under the old keys
 * and accept old requests again; given to another id it would be a PSK
 * the old device knows (RFC 9031 section 3).  The fingerprint is 16
 * bytes of HKDF-SHA256 (salt "cojp retired PSK") of the PSK, so the
 * registry keeps no key it no longer uses.  The table is created by
 * migration 6, or earlier by a repair (cj_sqlite_repair, cj_pg_repair),
 * hence IF NOT EXISTS. */
#define CJ_STORE_RETIRED_FP 16
#define CJ_STORE_RETIRED_TABLE(blob, i64)                                  \
    "CREATE TABLE IF NOT EXISTS retired_psks ("                            \
    " fp " blob " PRIMARY KEY CHECK (length(fp) = 16),"                     \
    " retired_at " i64 " NOT NULL);"

/* The fingerprint of a retired PSK: CJ_OK, or CJ_ERR_CRYPTO. */
int cj_store_psk_fp(const uint8_t psk[16], uint8_t fp[CJ_STORE_RETIRED_FP]);

/* What a repair of a registry whose pledges share a PSK does (store/
 * sqlite.h cj_sqlite_repair): pledge id gets PSK psk, or is removed when
 * psk is NULL (then a lease live at now_ms refuses it); done is set once
 * the change is made inside the migration's transaction. */
typedef struct cj_store_fix {
    const uint8_t *id;
    size_t id_len;
    const uint8_t *psk;
    uint64_t now_ms;
    bool done;
} cj_store_fix_t;

/* ---- CSV provisioning (cj_sqlite_import_csv, cj_pg_import_csv) -------- */

/* Called per pledge line with the parsed fields; CJ_OK to go on, any
 * other value stops the import and is returned. */
typedef int (*cj_store_csv_fn)(void *arg, const uint8_t *id, size_t id_len,
                               const uint8_t psk[16], uint8_t roles);

/* Walk text[0..len) line by line ("id,psk[,role]"; blanks around fields,
 * CR before LF, blank lines and '#' lines ignored: store/sqlite.h).
 * Returns CJ_OK with *added (pledge lines passed to fn, may be NULL) and
 * *line 0, or the first failure with *line its 1-based number:
 * CJ_ERR_MALFORMED for a line that does not parse, else what fn
 * returned.  The PSK copy is wiped. */
int cj_store_csv_each(const char *text, size_t len, cj_store_csv_fn fn,
                      void *arg, size_t *line, size_t *added);

/* ---- network row and pending operations -------------------------------- */

/* A row cj_*_network_save() may write: 1..CJ_COJP_MAX_KEYS keys, a
 * network id of at most 16 bytes, next_campaign >= 1. */
bool cj_store_network_ok(const cj_sqlite_network_t *n);

/* The key set of n as stored (n->key_count records of CJ_STORE_KEY_REC
 * bytes); returns the byte count.  n must pass cj_store_network_ok. */
size_t cj_store_keys_pack(const cj_sqlite_network_t *n,
                          uint8_t out[CJ_STORE_KEYS_MAX]);

/* The rest of a network row once its blobs are read (network_id is
 * already in out): key set keys[0..klen), jrc_address length alen (0:
 * none), join_rate (negative: NULL), lease_hours, next_campaign.  False,
 * out's other fields unchanged, when any is out of range. */
bool cj_store_network_fill(cj_sqlite_network_t *out, const uint8_t *keys,
                           size_t klen, size_t alen, int64_t rate,
                           int64_t lease, int64_t next);

/* A registry name fit for logs: a postgresql:// or postgres:// URI with
 * the password of its user information and the value of any 'password'
 * parameter replaced by "***"; anything else (an SQLite path) as it is.
 * Writes at most cap bytes including the terminating NUL (cap >= 1),
 * cutting what does not fit; returns out. */
char *cj_store_uri_redact(const char *db, char *out, size_t cap);

/* An operation cj_*_op_push() may queue: a known kind, an evict or
 * readmit with a pledge id, never an id longer than CJ_JRC_MAX_ID. */
bool cj_store_op_ok(const cj_sqlite_op_t *op);

#endif
