#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "store/postgres.h"
#include "util.h"

/* Backends: store/sqlite.h and its function-for-function mirror
 * store/postgres.h.  Another backend is one more kind and one more case
 * in DISPATCH. */
enum { REG_SQLITE = 1, REG_PG };

struct cj_reg {
    int kind;
    cj_sqlite_t *sq;
    cj_pg_t *pg;
    uint64_t pg_ticket; /* PostgreSQL batches: durable at commit */
};

#define DISPATCH(r, sqcall, pgcall)             \
    do {                                        \
        switch ((r)->kind) {                    \
        case REG_SQLITE:                        \
            return sqcall;                      \
        case REG_PG:                            \
            return pgcall;                      \
        default:                                \
            return CJ_ERR_UNSUPPORTED;          \
        }                                       \
    } while (0)

int cj_reg_open(cj_reg_t **out, const char *db, char *err, size_t errcap)
{
    return cj_reg_open_as(out, db, false, err, errcap);
}

/* Why a PostgreSQL registry did not open when the store gives no
 * reason: libpq's first line for a connection that fails ("connection
 * to server at ... failed: Connection refused", "password authentication
 * failed for user ..."), which never holds the password.  A URI libpq
 * cannot parse is only called that: its message may quote a part of it.
 * "" when a new connection succeeds (the failure came later). */
static void pg_reason(const char *uri, char *out, size_t cap)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(uri, &perr);
    PGconn *c;

    out[0] = 0;
    if (!opts) {
        snprintf(out, cap, "not a valid connection URI");
        PQfreemem(perr);
        return;
    }
    PQconninfoFree(opts);
    c = PQconnectdb(uri);
    if (c && PQstatus(c) != CONNECTION_OK) {
        const char *m = PQerrorMessage(c);
        size_t n = strcspn(m, "\n");
        snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), m);
    }
    PQfinish(c);
}

int cj_reg_open_as(cj_reg_t **out, const char *db, bool reader, char *err, size_t errcap)
{
    char why[200];
    cj_reg_t *r;
    int rc;

    *out = NULL;
    r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errcap, "out of memory");
        return CJ_ERR_NOSPACE;
    }
    if (cj_pg_is_uri(db)) {
        r->kind = REG_PG;
        rc = cj_pg_open_as(&r->pg, db, why, sizeof why);
        if (rc != CJ_OK) {
            /* never echo the URI: it may carry a password */
            if (rc == CJ_ERR_PSK_REUSED)
                snprintf(err, errcap, "the PostgreSQL registry cannot be upgraded: %s"
                         " (give each pledge its own PSK: docs/operator.md)", why);
            else if (rc == CJ_ERR_UNSUPPORTED)
                snprintf(err, errcap, "the PostgreSQL registry was written by a newer cojp");
            else if (rc == CJ_ERR_BUSY)
                snprintf(err, errcap, "the PostgreSQL registry is locked (migration)");
            else {
                pg_reason(db, why, sizeof why);
                snprintf(err, errcap, "cannot open the PostgreSQL registry%s%s",
                         why[0] ? ": " : "", why);
            }
            free(r);
            return rc;
        }
        *out = r;
        return CJ_OK;
    }
    r->kind = REG_SQLITE;
    rc = cj_sqlite_open_as(&r->sq, db, reader, why, sizeof why);
    if (rc != CJ_OK) {
        if (rc == CJ_ERR_PSK_REUSED)
            snprintf(err, errcap, "'%s' cannot be upgraded: %s"
                     " (give each pledge its own PSK: docs/operator.md)", db, why);
        else if (rc == CJ_ERR_UNSUPPORTED)
            snprintf(err, errcap, "'%s' was written by a newer cojp", db);
        else if (rc == CJ_ERR_BUSY)
            snprintf(err, errcap, "'%s' is locked by another process", db);
        else
            snprintf(err, errcap, "cannot open registry '%s'", db);
        free(r);
        return rc;
    }
    *out = r;
    return CJ_OK;
}

void cj_reg_close(cj_reg_t *r)
{
    if (!r)
        return;
    if (r->kind == REG_SQLITE)
        cj_sqlite_close(r->sq);
    else if (r->kind == REG_PG)
        cj_pg_close(r->pg);
    free(r);
}

const char *cj_reg_errmsg(const cj_reg_t *r)
{
    return r->kind == REG_SQLITE ? cj_sqlite_errmsg(r->sq) : cj_pg_errmsg(r->pg);
}

const cj_jrc_store_t *cj_reg_store(cj_reg_t *r)
{
    return r->kind == REG_SQLITE ? cj_sqlite_store(r->sq) : cj_pg_store(r->pg);
}

int cj_reg_begin(cj_reg_t *r) { DISPATCH(r, cj_sqlite_begin(r->sq), cj_pg_begin(r->pg)); }
int cj_reg_commit(cj_reg_t *r) { DISPATCH(r, cj_sqlite_commit(r->sq), cj_pg_commit(r->pg)); }
int cj_reg_rollback(cj_reg_t *r) { DISPATCH(r, cj_sqlite_rollback(r->sq), cj_pg_rollback(r->pg)); }

int cj_reg_pipeline(cj_reg_t *r)
{
    return r->kind == REG_SQLITE ? cj_sqlite_pipeline(r->sq, NULL, NULL) : CJ_OK;
}

int cj_reg_prefetch(cj_reg_t *r, const uint8_t *const *ids,
                    const uint8_t *lens, size_t n)
{
    DISPATCH(r, cj_sqlite_prefetch(r->sq, ids, lens, n),
             cj_pg_prefetch(r->pg, ids, lens, n));
}

int cj_reg_batch_begin(cj_reg_t *r) { DISPATCH(r, cj_sqlite_begin_async(r->sq), cj_pg_begin_batch(r->pg)); }

int cj_reg_batch_commit(cj_reg_t *r, uint64_t *ticket)
{
    int rc;
    if (r->kind == REG_SQLITE)
        return cj_sqlite_commit_async(r->sq, ticket);
    rc = cj_pg_commit(r->pg);
    if (rc == CJ_OK)
        *ticket = ++r->pg_ticket;
    return rc;
}

int cj_reg_durable(cj_reg_t *r, bool wait, uint64_t *upto)
{
    if (r->kind == REG_SQLITE)
        return cj_sqlite_durable(r->sq, wait, upto);
    *upto = r->pg_ticket;
    return CJ_OK;
}

int cj_reg_sync_fd(cj_reg_t *r)
{
    return r->kind == REG_SQLITE ? cj_sqlite_sync_fd(r->sq) : -1;
}

int cj_reg_role_mask(const char *name)
{
    return cj_sqlite_role_mask(name);
}

int cj_reg_add(cj_reg_t *r, const uint8_t *id, size_t id_len,
               const uint8_t psk[16], uint8_t roles)
{
    DISPATCH(r, cj_sqlite_add(r->sq, id, id_len, psk, roles), cj_pg_add(r->pg, id, id_len, psk, roles));
}

int cj_reg_import_csv(cj_reg_t *r, const char *text, size_t len,
                      size_t *bad_line, size_t *count)
{
    DISPATCH(r, cj_sqlite_import_csv(r->sq, text, len, bad_line, count), cj_pg_import_csv(r->pg, text, len, bad_line, count));
}

int cj_reg_list(cj_reg_t *r, cj_sqlite_info_fn fn, void *arg)
{
    DISPATCH(r, cj_sqlite_list(r->sq, fn, arg), cj_pg_list(r->pg, fn, arg));
}

int cj_reg_blacklist(cj_reg_t *r, cj_sqlite_info_fn fn, void *arg)
{
    DISPATCH(r, cj_sqlite_blacklist(r->sq, fn, arg), cj_pg_blacklist(r->pg, fn, arg));
}

int cj_reg_keep_outcomes(cj_reg_t *r, uint32_t *keep)
{
    DISPATCH(r, cj_sqlite_keep_outcomes(r->sq, keep), cj_pg_keep_outcomes(r->pg, keep));
}

int cj_reg_set_keep_outcomes(cj_reg_t *r, uint32_t keep)
{
    DISPATCH(r, cj_sqlite_set_keep_outcomes(r->sq, keep),
             cj_pg_set_keep_outcomes(r->pg, keep));
}

int cj_reg_prune(cj_reg_t *r, uint64_t *removed)
{
    DISPATCH(r, cj_sqlite_prune(r->sq, 0, removed), cj_pg_prune(r->pg, 0, removed));
}

int cj_reg_set_address(cj_reg_t *r, const uint8_t *id, size_t id_len,
                       const cj_addr_t *addr)
{
    DISPATCH(r, cj_sqlite_set_address(r->sq, id, id_len, addr), cj_pg_set_address(r->pg, id, id_len, addr));
}

int cj_reg_evict(cj_reg_t *r, const uint8_t *id, size_t id_len)
{
    DISPATCH(r, cj_sqlite_evict(r->sq, id, id_len), cj_pg_evict(r->pg, id, id_len));
}

int cj_reg_readmit(cj_reg_t *r, const uint8_t *id, size_t id_len)
{
    DISPATCH(r, cj_sqlite_readmit(r->sq, id, id_len), cj_pg_readmit(r->pg, id, id_len));
}

int cj_reg_mark_recover(cj_reg_t *r, uint32_t skip_short, uint64_t *marked)
{
    DISPATCH(r, cj_sqlite_mark_recover(r->sq, skip_short, marked),
             cj_pg_mark_recover(r->pg, skip_short, marked));
}

int cj_reg_set_psk(cj_reg_t *r, const uint8_t *id, size_t id_len,
                   const uint8_t psk[16])
{
    DISPATCH(r, cj_sqlite_set_psk(r->sq, id, id_len, psk), cj_pg_set_psk(r->pg, id, id_len, psk));
}

int cj_reg_remove(cj_reg_t *r, const uint8_t *id, size_t id_len,
                  uint64_t now_ms)
{
    DISPATCH(r, cj_sqlite_remove(r->sq, id, id_len, now_ms), cj_pg_remove(r->pg, id, id_len, now_ms));
}

int cj_reg_repair(const char *db, const uint8_t *id, size_t id_len,
                  const uint8_t *psk, uint64_t now_ms, bool *upgraded,
                  char *why, size_t whycap)
{
    if (cj_pg_is_uri(db))
        return cj_pg_repair(db, id, id_len, psk, now_ms, upgraded, why, whycap);
    return cj_sqlite_repair(db, id, id_len, psk, now_ms, upgraded, why, whycap);
}

int cj_reg_network_load(cj_reg_t *r, cj_sqlite_network_t *n)
{
    DISPATCH(r, cj_sqlite_network_load(r->sq, n), cj_pg_network_load(r->pg, n));
}

int cj_reg_network_save(cj_reg_t *r, const cj_sqlite_network_t *n)
{
    DISPATCH(r, cj_sqlite_network_save(r->sq, n), cj_pg_network_save(r->pg, n));
}

int cj_reg_campaign_get(cj_reg_t *r, uint64_t *owner, uint64_t *alive_ms)
{
    DISPATCH(r, cj_sqlite_campaign_get(r->sq, owner, alive_ms),
             cj_pg_campaign_get(r->pg, owner, alive_ms));
}

int cj_reg_campaign_put(cj_reg_t *r, uint64_t expect, uint64_t owner,
                        uint64_t alive_ms)
{
    DISPATCH(r, cj_sqlite_campaign_put(r->sq, expect, owner, alive_ms),
             cj_pg_campaign_put(r->pg, expect, owner, alive_ms));
}

/* A SQLite registry lives on this host: its clock is this host's. */
static int host_clock(uint64_t *now_ms)
{
    *now_ms = cj_host_wall();
    return CJ_OK;
}

int cj_reg_clock(cj_reg_t *r, uint64_t *now_ms)
{
    DISPATCH(r, host_clock(now_ms), cj_pg_clock(r->pg, now_ms));
}

int64_t cj_reg_clock_skew(const cj_reg_t *r)
{
    return r->kind == REG_PG ? cj_pg_clock_skew(r->pg) : 0;
}

uint64_t cj_reg_session(const cj_reg_t *r)
{
    return r->kind == REG_SQLITE ? cj_sqlite_session(r->sq)
           : r->kind == REG_PG   ? cj_pg_session(r->pg)
                                 : 0;
}

int cj_reg_op_push(cj_reg_t *r, const cj_sqlite_op_t *op)
{
    DISPATCH(r, cj_sqlite_op_push(r->sq, op), cj_pg_op_push(r->pg, op));
}

int cj_reg_op_next(cj_reg_t *r, cj_sqlite_op_t *op)
{
    DISPATCH(r, cj_sqlite_op_next(r->sq, op), cj_pg_op_next(r->pg, op));
}

int cj_reg_op_done(cj_reg_t *r, int64_t seq)
{
    DISPATCH(r, cj_sqlite_op_done(r->sq, seq), cj_pg_op_done(r->pg, seq));
}
