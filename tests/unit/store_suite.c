/*
 * The JRC store conformance suite (store_suite.h).  Each scenario is the
 * union of what the SQLite and PostgreSQL tests checked before they
 * shared it; steps a backend lacks (transactions, SQL, provisioning) are
 * skipped, never replaced by weaker checks.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cojp/coap.h"
#include "cojp/cojp.h"
#include "cojp/jrc.h"
#include "cojp/jrc_memstore.h"
#include "cojp/oscore.h"
#include "store/common.h"
#include "store_suite.h"
#include "jrc_multi.h"
#include "../test.h"

/* ---- the in-memory store as a backend ------------------------------------- */

#define MS_CAP 512
static cj_jrc_memstore_t ms;
static cj_jrc_mementry_t ms_entries[MS_CAP];

static void ms_fresh(void)
{
    cj_jrc_memstore_init(&ms, ms_entries, MS_CAP);
}

static int ms_try_open(void **h)
{
    *h = &ms;
    return CJ_OK;
}

static void ms_close(void *h)
{
    (void)h;
}

static const cj_jrc_store_t *ms_store(void *h)
{
    return &((cj_jrc_memstore_t *)h)->store;
}

static int ms_add(void *h, const uint8_t *id, size_t id_len,
                  const uint8_t psk[16], uint8_t roles)
{
    return cj_jrc_memstore_add(h, id, id_len, psk, roles);
}

static void ms_set_cursor(void *h, unsigned v)
{
    ((cj_jrc_memstore_t *)h)->next_short = (uint16_t)v;
}

static int ms_set_psk(void *h, const uint8_t *id, size_t id_len,
                      const uint8_t psk[16])
{
    return cj_jrc_memstore_set_psk(h, id, id_len, psk);
}

static int ms_remove(void *h, const uint8_t *id, size_t id_len,
                     uint64_t now_ms)
{
    return cj_jrc_memstore_remove(h, id, id_len, now_ms);
}

const ss_backend_t ss_memstore = {
    .name = "memstore",
    .fresh = ms_fresh,
    .try_open = ms_try_open,
    .close = ms_close,
    .store = ms_store,
    .add = ms_add,
    .set_cursor = ms_set_cursor,
    .dup_id_err = CJ_ERR_INVALID,
    .set_psk = ms_set_psk,
    .remove = ms_remove,
};

/* ---- fixtures -------------------------------------------------------------- */

const uint8_t ss_nobody[8] = {9, 9, 9, 9, 9, 9, 9, 9};

void ss_repeat_of(unsigned i, cj_jrc_repeat_t *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->req_len = 6;
    rep->req_opt_len = 2;
    memset(rep->req, 0x40 + (int)i, rep->req_len);
    rep->resp_len = 9;
    memset(rep->resp, 0x60 + (int)i, rep->resp_len);
    rep->from.len = 8;
    memset(rep->from.b, (int)i, 8);
}

void ss_make_id(uint8_t id[8], unsigned i)
{
    static const uint8_t base[8] = {0x00, 0x12, 0x4b, 0x00, 0x00, 0x00, 0, 0};
    memcpy(id, base, 8);
    id[5] = (uint8_t)(i >> 16);
    id[6] = (uint8_t)(i >> 8);
    id[7] = (uint8_t)i;
}

void ss_make_psk(uint8_t psk[16], unsigned i)
{
    for (unsigned k = 0; k < 16; k++)
        psk[k] = (uint8_t)(0x30 + k + 7 * i);
    /* i itself at the end: a PSK of its own for each of 2^24 pledges,
     * as the registries require (RFC 9031 section 3) */
    psk[13] = (uint8_t)(i >> 16);
    psk[14] = (uint8_t)(i >> 8);
    psk[15] = (uint8_t)i;
}

const uint8_t *ss_psk_of(const uint8_t id[8])
{
    static uint8_t ring[4][16];
    static unsigned next;
    static const uint8_t base[5] = {0x00, 0x12, 0x4b, 0x00, 0x00};
    uint8_t *psk = ring[next++ % 4];

    memset(psk, 0xee, 16);
    if (id != NULL && memcmp(id, base, sizeof base) == 0)
        ss_make_psk(psk, (unsigned)id[5] << 16 | (unsigned)id[6] << 8 | id[7]);
    return psk;
}

void *ss_open(const ss_backend_t *b)
{
    void *h = NULL;
    CHECK_EQ(b->try_open(&h), CJ_OK);
    CHECK(h != NULL);
    return h;
}

static void add_with(const ss_backend_t *b, void *h, unsigned n,
                     void (*mk_id)(uint8_t *, unsigned),
                     void (*mk_psk)(uint8_t *, unsigned))
{
    uint8_t id[8], psk[16];
    if (b->begin)
        CHECK_EQ(b->begin(h), CJ_OK);
    for (unsigned i = 0; i < n; i++) {
        mk_id(id, i);
        mk_psk(psk, i);
        CHECK_EQ(b->add(h, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    }
    if (b->commit)
        CHECK_EQ(b->commit(h), CJ_OK);
}

static void jm_id(uint8_t *id, unsigned i)
{
    jm_make_id(id, i);
}

static void jm_psk(uint8_t *psk, unsigned i)
{
    jm_make_psk(psk, i);
}

static void ss_id(uint8_t *id, unsigned i)
{
    ss_make_id(id, i);
}

static void ss_psk(uint8_t *psk, unsigned i)
{
    ss_make_psk(psk, i);
}

void ss_add_n(const ss_backend_t *b, void *h, unsigned n)
{
    add_with(b, h, n, ss_id, ss_psk);
}

void *ss_start(const ss_backend_t *b, unsigned n, const cj_jrc_store_t **st)
{
    void *h;

    b->fresh();
    h = ss_open(b);
    *st = b->store(h);
    ss_add_n(b, h, n);
    return h;
}

void ss_add_jm(const ss_backend_t *b, void *h, unsigned n)
{
    add_with(b, h, n, jm_id, jm_psk);
}

int ss_raise_ssn(const cj_jrc_store_t *st, void *c, const uint8_t *id,
                 uint64_t v)
{
    uint64_t first = 0;
    return st->reserve_ssn(c, id, 8, ss_psk_of(id), NULL, 0, v, 0, &first);
}

/* accept_piv for pledge id under its own PSK and the pledge-id context. */
static int accept(const cj_jrc_store_t *st, const uint8_t id[8], uint64_t piv,
                  cj_oscore_replay_t *w)
{
    return st->accept_piv(st->ctx, id, 8, ss_psk_of(id), NULL, 0, piv, w);
}

static void cleanup(const ss_backend_t *b)
{
    if (b->cleanup)
        b->cleanup();
}

static void sql_exec(const ss_backend_t *b, void *h, const char *sql)
{
    CHECK(b->sql_try(h, sql));
}

/* Take the registry h of pledges 0..6 back to schema 4 and make 1 and 4
 * share a PSK, and 2, 3 and 6 another (as an older cojp allowed). */
static void share_psks(const ss_backend_t *b, void *h)
{
    sql_exec(b, h, b->v4_sql);
    sql_exec(b, h, "UPDATE pledges SET psk = (SELECT psk FROM pledges"
                   " WHERE seq = 2) WHERE seq = 5");
    sql_exec(b, h, "UPDATE pledges SET psk = (SELECT psk FROM pledges"
                   " WHERE seq = 3) WHERE seq IN (4, 7)");
}

/* ---- schema ---------------------------------------------------------------- */

void ss_schema_reopen(const ss_backend_t *b)
{
    void *db;
    uint64_t s1;

    b->fresh();
    db = ss_open(b);
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM schema_version"),
             b->schema_version);
    CHECK_EQ(b->sql_int(db, "SELECT max(version) FROM schema_version"),
             b->schema_version);
    s1 = b->session(db);
    CHECK(s1 >= 1);
    ss_add_n(b, db, 2);
    b->close(db);

    /* reopening applies nothing twice and keeps the data */
    db = ss_open(b);
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM schema_version"),
             b->schema_version);
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pledges"), 2);
    CHECK_EQ(b->session(db), s1 + 1);
    /* a registry from a newer cojp is refused, not downgraded */
    sql_exec(b, db, "INSERT INTO schema_version VALUES (99, 0)");
    b->close(db);
    db = NULL;
    CHECK_EQ(b->try_open(&db), CJ_ERR_UNSUPPORTED);
    CHECK(db == NULL);
    cleanup(b);
}

void ss_migration_1_to_2(const ss_backend_t *b)
{
    void *db;

    b->fresh();
    db = ss_open(b);
    ss_add_n(b, db, 3);
    sql_exec(b, db, b->v1_sql);
    b->close(db);
    db = ss_open(b);
    CHECK_EQ(b->sql_int(db, "SELECT max(version) FROM schema_version"),
             b->schema_version);
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pledges"), 3);
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM network"), 0);
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pending_ops"), 0);
    b->close(db);
    cleanup(b);
}

/* ---- the same scenarios against memstore and the backend ------------------ */

/* Results of every call, in order, so two stores can be compared. */
typedef struct trace {
    long long v[320];
    size_t n;
} trace_t;

static void put(trace_t *t, long long v)
{
    if (t->n < sizeof t->v / sizeof t->v[0])
        t->v[t->n++] = v;
}

static void put_rec(trace_t *t, int rc, const cj_jrc_pledge_t *r)
{
    put(t, rc);
    if (rc != CJ_OK)
        return;
    put(t, r->id[7]);
    put(t, r->psk[0]);
    put(t, r->psk[15]);
    put(t, r->allowed_roles);
    put(t, (long long)r->ssn_reserved);
    put(t, (long long)r->replay.highest);
    put(t, r->replay.bitmap);
    put(t, r->replay.valid);
    put(t, r->id_context_len);
    put(t, r->id_context_len ? r->id_context[0] : -1);
    put(t, r->id_context_len ? r->id_context[r->id_context_len - 1] : -1);
    put(t, r->joined);
    put(t, r->role);
    put(t, r->short_id);
}

typedef void scenario_fn(const ss_backend_t *b, void *h, trace_t *t);

/* Sequence-number blocks of pledge id (from below the mark, above it,
 * raise only with count 0, unknown pledge, wrong ID Context), then
 * Partial IVs (new, repeated, within the window, too old). */
static void trace_ssn_piv(const cj_jrc_store_t *st, const uint8_t *id,
                          const uint8_t *ctxid, uint64_t from, uint64_t raise,
                          const uint64_t pivs[9], trace_t *t)
{
    void *c = st->ctx;
    cj_oscore_replay_t w;
    uint64_t first = 0;

    put(t, st->reserve_ssn(c, id, 8, ss_psk_of(id), NULL, 0, from, 32, &first));
    put(t, (long long)first);
    put(t, st->reserve_ssn(c, id, 8, ss_psk_of(id), NULL, 0, 5, 1, &first));
    put(t, (long long)first);
    put(t, st->reserve_ssn(c, id, 8, ss_psk_of(id), NULL, 0, raise, 0, &first));
    put(t, (long long)first);
    put(t, st->reserve_ssn(c, ss_nobody, 8, ss_psk_of(ss_nobody), NULL, 0, 1, 1,
                           &first));
    put(t, st->reserve_ssn(c, id, 8, ss_psk_of(id), ctxid, 8, 1, 1, &first));
    for (size_t i = 0; i < 9; i++) {
        memset(&w, 0, sizeof w);
        put(t, st->accept_piv(c, id, 8, ss_psk_of(id), NULL, 0, pivs[i], &w));
        put(t, (long long)w.highest);
        put(t, w.bitmap);
        put(t, w.valid);
    }
    put(t,
        st->accept_piv(c, ss_nobody, 8, ss_psk_of(ss_nobody), NULL, 0, 1, &w));
}

/* Node address and update outcomes of pledge id and of an unknown one. */
static void trace_tail(const cj_jrc_store_t *st, const uint8_t *id,
                       trace_t *t)
{
    void *c = st->ctx;
    cj_addr_t a;

    memset(&a, 0, sizeof a);
    put(t, st->node_address(c, id, 8, &a));
    put(t, a.len);
    put(t, a.b[7]);
    put(t, st->node_address(c, ss_nobody, 8, &a));
    put(t, st->record_update(c, id, 8, 5, true));
    put(t, st->record_update(c, id, 8, 6, false));
    put(t, st->record_update(c, ss_nobody, 8, 6, false));
}

/* Every store call, valid and not (pledge 0 first, short ids around the
 * top of the range). */
static void scenario_a(const ss_backend_t *b, void *h, trace_t *t)
{
    const cj_jrc_store_t *st = b->store(h);
    void *c = st->ctx;
    const uint8_t *nobody = ss_nobody;
    uint8_t id[4][8];
    cj_jrc_pledge_t r;
    cj_oscore_replay_t w;
    static const uint8_t ctxid[16] = {0xa1, 2, 3, 4, 5, 6, 7, 8,
                                      0, 0x12, 0x4b, 0, 0, 0, 0, 1};
    uint16_t s = 0;
    uint64_t cur = 0, first = 0;

    for (unsigned i = 0; i < 4; i++)
        ss_make_id(id[i], i);
    put_rec(t, st->lookup(c, id[0], 8, &r), &r);
    put_rec(t, st->lookup(c, nobody, 8, &r), &r);
    static const uint64_t pivs[9] = {41, 41, 9, 10, 70, 38, 38, 9, 1};
    trace_ssn_piv(st, id[0], ctxid, 1234567, 3000000, pivs, t);
    put_rec(t, st->lookup(c, id[0], 8, &r), &r);
    put(t,
        st->save_context(c, id[1], 8, ss_psk_of(id[1]), ctxid, sizeof ctxid));
    put_rec(t, st->lookup_context(c, ctxid, sizeof ctxid, &r), &r);
    put_rec(t, st->lookup_context(c, ctxid, 8, &r), &r);
    /* only under the current ID Context */
    put(t,
        st->reserve_ssn(c, id[1], 8, ss_psk_of(id[1]), NULL, 0, 77, 1, &first));
    put(t, st->accept_piv(c, id[1], 8, ss_psk_of(id[1]), NULL, 0, 3, &w));
    put(t, st->reserve_ssn(c, id[1], 8, ss_psk_of(id[1]), ctxid, 8, 77, 1,
                           &first));
    put(t, st->reserve_ssn(c, id[1], 8, ss_psk_of(id[1]), ctxid, sizeof ctxid,
                           77, 1, &first));
    put(t, (long long)first);
    put(t, st->accept_piv(c, id[1], 8, ss_psk_of(id[1]), ctxid, sizeof ctxid, 3,
                          &w));
    /* resets state */
    put(t, st->save_context(c, id[1], 8, ss_psk_of(id[1]), ctxid, 8));
    put_rec(t, st->lookup(c, id[1], 8, &r), &r);

    /* short ids: reserved values skipped, renew, fresh, expiry */
    b->set_cursor(h, 0xfffd);
    put(t, st->assign_short_id(c, id[0], 8, 1000, 1, false, &s));
    put(t, s);
    put(t, st->assign_short_id(c, id[1], 8, 1000, 1, false, &s));
    put(t, s);
    put(t, st->assign_short_id(c, id[1], 8, 2000, 1, false, &s)); /* renew */
    put(t, s);
    put(t, st->assign_short_id(c, id[1], 8, 2000, 1, true, &s)); /* fresh */
    put(t, s);
    put(t, st->assign_short_id(c, id[2], 8, 2000, 0, false, &s));
    put(t, s);
    put(t, st->assign_short_id(c, nobody, 8, 2000, 0, false, &s));
    /* id[0]'s lease (until 3601000) is over: its id is free again */
    b->set_cursor(h, 0xfffd);
    put(t, st->assign_short_id(c, id[3], 8, 3601000, 1, false, &s));
    put(t, s);
    put(t, st->assign_short_id(c, id[0], 8, 3601000, 1, false, &s));
    put(t, s);
    put(t, st->record_join(c, id[0], 8, 0, s, 3601000));
    put(t, st->record_join(c, id[2], 8, 1, 3, 3601000));
    put(t, st->record_join(c, nobody, 8, 1, 3, 3601000));
    put_rec(t, st->lookup(c, id[2], 8, &r), &r);

    /* joined nodes in a stable order */
    for (int k = 0; k < 4; k++) {
        int rc = st->next_joined(c, &cur, &r);
        put_rec(t, rc, &r);
    }
    put(t, st->release(c, id[0], 8));
    put(t, st->release(c, nobody, 8));
    cur = 0;
    put_rec(t, st->next_joined(c, &cur, &r), &r);
    put_rec(t, st->next_joined(c, &cur, &r), &r);
    /* released: its short id is free for the next pledge at the cursor */
    b->set_cursor(h, 0x0001);
    put(t, st->assign_short_id(c, id[1], 8, 3601000, 1, true, &s));
    put(t, s);

    trace_tail(st, id[2], t);
}

/* The same calls in another order and with other values (pledge 3
 * first, a bad id length, an expired lease taken over by a fresh id). */
static void scenario_b(const ss_backend_t *b, void *h, trace_t *t)
{
    const cj_jrc_store_t *st = b->store(h);
    void *c = st->ctx;
    const uint8_t *nobody = ss_nobody;
    uint8_t id[4][8];
    cj_jrc_pledge_t r;
    cj_oscore_replay_t w;
    uint64_t first = 0;
    static const uint8_t ctxid[16] = {0xb1, 2, 3, 4, 5, 6, 7, 8,
                                      0, 0x12, 0x4b, 0, 0, 0, 0, 2};
    uint16_t s = 0, s3 = 0;
    uint64_t cur = 0;

    for (unsigned i = 0; i < 4; i++)
        ss_make_id(id[i], i);
    put_rec(t, st->lookup(c, id[3], 8, &r), &r);
    put_rec(t, st->lookup(c, nobody, 8, &r), &r);
    put_rec(t, st->lookup(c, id[3], 7, &r), &r);
    static const uint64_t pivs[9] = {73, 73, 45, 41, 72, 100, 69, 68, 68};
    trace_ssn_piv(st, id[3], ctxid, 987654321, 987700000, pivs, t);
    put_rec(t, st->lookup(c, id[3], 8, &r), &r);
    put(t,
        st->save_context(c, id[2], 8, ss_psk_of(id[2]), ctxid, sizeof ctxid));
    put(t, st->save_context(c, nobody, 8, ss_psk_of(nobody), ctxid, 4));
    put_rec(t, st->lookup_context(c, ctxid, sizeof ctxid, &r), &r);
    put_rec(t, st->lookup_context(c, ctxid, 15, &r), &r);
    /* only under the current ID Context */
    put(t, st->reserve_ssn(c, id[2], 8, ss_psk_of(id[2]), NULL, 0, 500, 1,
                           &first));
    put(t, st->accept_piv(c, id[2], 8, ss_psk_of(id[2]), NULL, 0, 3, &w));
    put(t, st->reserve_ssn(c, id[2], 8, ss_psk_of(id[2]), ctxid, sizeof ctxid,
                           500, 1, &first));
    put(t, (long long)first);
    put(t, st->accept_piv(c, id[2], 8, ss_psk_of(id[2]), ctxid, sizeof ctxid, 3,
                          &w));
    put(t, (long long)w.highest);
    /* resets state */
    put(t, st->save_context(c, id[2], 8, ss_psk_of(id[2]), ctxid, 9));
    put_rec(t, st->lookup(c, id[2], 8, &r), &r);
    put_rec(t, st->lookup_context(c, ctxid, 9, &r), &r);

    /* short ids: reserved values skipped, renew, fresh, expiry, reuse */
    b->set_cursor(h, 0xfffc);
    put(t, st->assign_short_id(c, id[0], 8, 5000, 1, false, &s));
    put(t, s);
    put(t, st->assign_short_id(c, id[1], 8, 5000, 2, false, &s));
    put(t, s);
    put(t, st->assign_short_id(c, id[2], 8, 5000, 1, false, &s));
    put(t, s);
    put(t, st->assign_short_id(c, id[1], 8, 9000, 2, false, &s)); /* renew */
    put(t, s);
    put(t, st->assign_short_id(c, id[1], 8, 9000, 2, true, &s)); /* fresh */
    put(t, s);
    put(t, st->assign_short_id(c, nobody, 8, 9000, 0, false, &s));
    /* one hour later id[0]'s and id[2]'s leases are over */
    b->set_cursor(h, 0xfffc);
    put(t, st->assign_short_id(c, id[3], 8, 3605000, 0, false, &s3));
    put(t, s3);
    put(t, st->assign_short_id(c, id[2], 8, 3605000, 1, true, &s));
    put(t, s);
    put(t, st->assign_short_id(c, id[0], 8, 3605000, 1, false, &s));
    put(t, s);
    put(t, st->record_join(c, id[0], 8, CJ_COJP_ROLE_6LBR, s, 3605000));
    put(t, st->record_join(c, id[3], 8, CJ_COJP_ROLE_6LN, s3, 3605000));
    put(t, st->record_join(c, nobody, 8, 1, 3, 3605000));
    put_rec(t, st->lookup(c, id[0], 8, &r), &r);

    /* joined nodes in a stable order */
    for (int k = 0; k < 4; k++)
        put_rec(t, st->next_joined(c, &cur, &r), &r);
    put(t, st->release(c, id[3], 8));
    put(t, st->release(c, nobody, 8));
    cur = 0;
    put_rec(t, st->next_joined(c, &cur, &r), &r);
    put_rec(t, st->next_joined(c, &cur, &r), &r);
    /* released: its id is free for the next assignment at the cursor */
    b->set_cursor(h, 0xfffd);
    put(t, st->assign_short_id(c, id[1], 8, 3605000, 1, true, &s));
    put(t, s);

    trace_tail(st, id[2], t);
}

static void compare(const char *name, const trace_t *tm, const trace_t *tb,
                    int line)
{
    if (tm->n != tb->n)
        cj_test_failf(__FILE__, line, "trace lengths %zu != %zu", tm->n,
                      tb->n);
    for (size_t i = 0; i < tm->n && i < tb->n; i++)
        if (tm->v[i] != tb->v[i]) {
            cj_test_failf(__FILE__, line, "trace %zu: memstore %lld, %s %lld",
                          i, tm->v[i], name, tb->v[i]);
            break;
        }
}

/* Run fn on a fresh registry of 4 pledges of backend b, alone (group
 * false) or all inside one group transaction. */
static void run_scenario(const ss_backend_t *b, scenario_fn *fn, bool group,
                         trace_t *t)
{
    void *db;

    memset(t, 0, sizeof *t);
    b->fresh();
    db = ss_open(b);
    ss_add_n(b, db, 4);
    if (group)
        CHECK_EQ(b->begin(db), CJ_OK);
    fn(b, db, t);
    if (group)
        CHECK_EQ(b->commit(db), CJ_OK);
    /* two outcomes recorded for one pledge, two rows */
    if (b->sql_int)
        CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM updates"), 2);
    b->close(db);
    cleanup(b);
}

void ss_same_results_as_memstore(const ss_backend_t *b)
{
    static scenario_fn *const fns[] = {scenario_a, scenario_b};
    static trace_t tm, tb;

    for (size_t k = 0; k < 2; k++) {
        run_scenario(&ss_memstore, fns[k], false, &tm);
        run_scenario(b, fns[k], false, &tb);
        compare(b->name, &tm, &tb, __LINE__);
        if (b->begin == NULL)
            continue;
        /* the same again with every call inside one group transaction */
        run_scenario(b, fns[k], true, &tb);
        compare(b->name, &tm, &tb, __LINE__);
    }
}

/* ---- short identifiers ------------------------------------------------------ */

#define NP 300
#define DUP_LIVE_SQL                                                       \
    "SELECT count(*) FROM (SELECT short_id FROM pledges"                   \
    " WHERE lease_until IS NOT NULL GROUP BY short_id"                     \
    " HAVING count(*) > 1) d"
#define SECOND_HOLDER_SQL                                                  \
    "UPDATE pledges SET short_id = 77, lease_until ="                      \
    " 9223372036854775807 WHERE seq IN (1, 2)"

/* 2000 assignments against the test's own model of live leases. */
void ss_short_ids_model(const ss_backend_t *b)
{
    /* The test's own model of live leases: holder and end per short id. */
    static int holder[65536];
    static uint64_t until[65536];
    static uint16_t held[NP];
    void *db;
    const cj_jrc_store_t *st;
    uint64_t now = 1000;
    unsigned bad = 0, reused = 0;
    uint32_t rng = 12345;

    memset(holder, -1, sizeof holder);
    memset(held, 0, sizeof held);
    db = ss_start(b, NP, &st);
    /* start near the top so the cursor wraps several times and ids of
     * expired leases are handed out again */
    b->set_cursor(db, 65000);
    for (unsigned n = 0; n < 2000; n++) {
        uint8_t id[8];
        uint16_t s = 0;
        unsigned p;
        uint32_t hours;
        bool fresh;
        int rc;

        rng = rng * 1103515245u + 12345u;
        p = (rng >> 8) % NP;
        hours = 1 + (rng >> 20) % 3;
        fresh = (rng >> 24) % 7 == 0;
        now += 1 + (rng >> 4) % 700000; /* up to ~12 min per step */
        ss_make_id(id, p);
        /* rewind the cursor now and then, as if it had wrapped: the
         * search must skip live leases and may take expired ones */
        if (n % 100 == 0)
            b->set_cursor(db, 1);
        /* group commit for some batches, one transaction per call else */
        if (n % 100 == 50 && b->begin)
            CHECK_EQ(b->begin(db), CJ_OK);
        /* as the engine does, look the pledge up first most of the
         * time: inside a batch that makes its row the one a store may
         * keep in memory, and takes the store's own path for it */
        if ((rng >> 28) % 4 != 0) {
            cj_jrc_pledge_t rec;
            CHECK_EQ(st->lookup(st->ctx, id, 8, &rec), CJ_OK);
        }
        rc = st->assign_short_id(st->ctx, id, 8, now, hours, fresh, &s);
        if (n % 100 == 99 && b->in_tx && b->in_tx(db))
            CHECK_EQ(b->commit(db), CJ_OK);
        CHECK_EQ(rc, CJ_OK);
        if (s == 0 || s >= 0xfffe) {
            bad++;
            continue;
        }
        /* unique among live leases (a lease ending exactly now is over) */
        if (holder[s] >= 0 && holder[s] != (int)p && until[s] > now)
            bad++;
        if (holder[s] >= 0 && holder[s] != (int)p)
            reused++;
        if (held[p] != 0 && held[p] != s && holder[held[p]] == (int)p)
            holder[held[p]] = -1; /* fresh: the old lease ended */
        if (fresh && held[p] == s && until[s] > now)
            bad++; /* fresh must change a live id */
        holder[s] = (int)p;
        until[s] = now + (uint64_t)hours * 3600000u;
        held[p] = s;
    }
    CHECK_EQ(bad, 0);
    CHECK(reused > 0); /* expired ids did come back */
    if (b->sql_int) {
        /* and the registry agrees: no short id held twice */
        CHECK_EQ(b->sql_int(db, DUP_LIVE_SQL), 0);
        /* the database itself refuses a second live holder */
        CHECK(!b->sql_try(db, SECOND_HOLDER_SQL));
    }
    b->close(db);
    cleanup(b);
}

/* Inside one batch, pledges looked up first (as the engine does) take
 * the ids at the cursor: the free ids around live leases of other
 * pledges, across the wrap from 0xfffd to 1.  A store may find the run
 * of free ids at the cursor once per batch; this checks its bounds, and
 * that ids in a run whose leases expired are taken only once those
 * leases are given up (a store may skip that step for ids no row holds). */
void ss_short_ids_batch_run(const ss_backend_t *b)
{
    static const uint16_t want[] = {65530, 65531, 65533, 1, 3, 4};
    void *db;
    const cj_jrc_store_t *st;
    uint8_t id[8];
    uint16_t s = 0;

    db = ss_start(b, 10, &st);
    /* pledges 8 and 9 hold 65532 and 2, taken outside the batch */
    b->set_cursor(db, 65532);
    ss_make_id(id, 8);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 1000, 1, false, &s), CJ_OK);
    CHECK_EQ(s, 65532);
    b->set_cursor(db, 2);
    ss_make_id(id, 9);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 1000, 1, false, &s), CJ_OK);
    CHECK_EQ(s, 2);
    b->set_cursor(db, 65530);
    if (b->begin)
        CHECK_EQ(b->begin(db), CJ_OK);
    for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++) {
        cj_jrc_pledge_t rec;
        ss_make_id(id, i);
        CHECK_EQ(st->lookup(st->ctx, id, 8, &rec), CJ_OK);
        CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 2000, 1, false, &s),
                 CJ_OK);
        CHECK_EQ(s, want[i]);
    }
    if (b->commit)
        CHECK_EQ(b->commit(db), CJ_OK);
    if (b->sql_int) {
        CHECK_EQ(b->sql_int(db, DUP_LIVE_SQL), 0);
        CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pledges"
                                " WHERE lease_until IS NOT NULL"),
                 8);
    }

    /* Every lease above has expired.  From 65528 a second batch takes
     * two ids no row ever held, then ids whose expired leases belong to
     * pledges of the batch (0, 1, 2) and to one outside it (8, at
     * 65532), which must give them up first. */
    b->set_cursor(db, 65528);
    if (b->begin)
        CHECK_EQ(b->begin(db), CJ_OK);
    for (unsigned i = 0; i < 6; i++) {
        cj_jrc_pledge_t rec;
        ss_make_id(id, 5 - i);
        CHECK_EQ(st->lookup(st->ctx, id, 8, &rec), CJ_OK);
        CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 3602001, 1, false, &s),
                 CJ_OK);
        CHECK_EQ(s, 65528 + i);
    }
    if (b->commit)
        CHECK_EQ(b->commit(db), CJ_OK);
    if (b->sql_int) {
        CHECK_EQ(b->sql_int(db, DUP_LIVE_SQL), 0);
        CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pledges"
                                " WHERE lease_until IS NOT NULL"
                                " AND short_id = 65532"),
                 1);
    }
    b->close(db);
    cleanup(b);
}

/* 2000 assignments with leases expiring and ids coming back, compared
 * call by call with the in-memory store (same sequential policy). */
void ss_short_ids_vs_memstore(const ss_backend_t *b)
{
    static cj_jrc_mementry_t ments[NP];
    static cj_jrc_memstore_t mst;
    static bool used[65536];
    void *db;
    const cj_jrc_store_t *st;
    uint64_t now = 1000;
    unsigned differ = 0, failed = 0, reused = 0;
    uint32_t rng = 4242;

    memset(used, 0, sizeof used);
    cj_jrc_memstore_init(&mst, ments, NP);
    db = ss_start(b, NP, &st);
    for (unsigned i = 0; i < NP; i++) {
        uint8_t id[8], psk[16];
        ss_make_id(id, i);
        ss_make_psk(psk, i);
        CHECK_EQ(cj_jrc_memstore_add(&mst, id, 8, psk, CJ_JRC_ALLOW_NODE),
                 CJ_OK);
    }
    /* start near the top so the cursor wraps */
    b->set_cursor(db, 65400);
    mst.next_short = 65400;
    for (unsigned n = 0; n < 2000; n++) {
        uint8_t id[8];
        uint16_t s = 0, sm = 0;
        unsigned p;
        uint32_t hours;
        bool fresh_id;
        int rc, rm;

        rng = rng * 1103515245u + 12345u;
        p = (rng >> 8) % NP;
        hours = 1 + (rng >> 20) % 3;
        fresh_id = (rng >> 24) % 7 == 0;
        now += 1 + (rng >> 4) % 700000;
        ss_make_id(id, p);
        if (n % 150 == 0) {
            b->set_cursor(db, 1);
            mst.next_short = 1;
        }
        if (n % 100 == 50 && b->begin)
            CHECK_EQ(b->begin(db), CJ_OK);
        rc = st->assign_short_id(st->ctx, id, 8, now, hours, fresh_id, &s);
        if (n % 100 == 99 && b->in_tx && b->in_tx(db))
            CHECK_EQ(b->commit(db), CJ_OK);
        rm = mst.store.assign_short_id(&mst, id, 8, now, hours, fresh_id, &sm);
        if (rc != CJ_OK || rm != CJ_OK)
            failed++;
        if (s != sm)
            differ++;
        if (used[s])
            reused++;
        used[s] = true;
        if (n % 97 == 0 && b->sql_int)
            CHECK_EQ(b->sql_int(db, DUP_LIVE_SQL), 0);
    }
    CHECK_EQ(failed, 0);
    CHECK_EQ(differ, 0);
    CHECK(reused > 0);
    /* the database itself refuses a second live holder */
    if (b->sql_try)
        CHECK(!b->sql_try(db, SECOND_HOLDER_SQL));
    b->close(db);
    cleanup(b);
}

/* ---- OSCORE state ------------------------------------------------------------ */

/* accept_piv against the stored window (RFC 8613 section 7.4): a Partial
 * IV is accepted once, within the window in any order, never when older
 * than the window; a failed accept changes nothing. */
void ss_accept_piv_window(const ss_backend_t *b)
{
    void *db;
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    cj_oscore_replay_t w;
    uint8_t id[8];

    db = ss_start(b, 1, &st);
    ss_make_id(id, 0);
    CHECK_EQ(accept(st, id, 100, &w), CJ_OK);
    CHECK_EQ(accept(st, id, 98, &w), CJ_OK);
    CHECK_EQ(accept(st, id, 90, &w), CJ_OK);
    CHECK(w.valid);
    CHECK_EQ(w.highest, 100);
    CHECK_EQ(w.bitmap, 0x5u | (1u << 10)); /* ages 0, 2, 10 */
    CHECK_EQ(accept(st, id, 98, &w), CJ_ERR_REPLAY);
    CHECK_EQ(accept(st, id, 68, &w), CJ_ERR_REPLAY);
    CHECK_EQ(accept(st, id, UINT64_C(1) << 40, &w), CJ_ERR_REPLAY);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
    CHECK_EQ(r.replay.highest, 100);
    CHECK_EQ(r.replay.bitmap, 0x5u | (1u << 10));
    /* inside a batch a refused one spoils nothing either */
    if (b->begin)
        CHECK_EQ(b->begin(db), CJ_OK);
    CHECK_EQ(accept(st, id, 100, &w), CJ_ERR_REPLAY);
    CHECK_EQ(accept(st, id, 200, &w), CJ_OK);
    if (b->commit)
        CHECK_EQ(b->commit(db), CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
    CHECK_EQ(r.replay.highest, 200);
    CHECK_EQ(r.replay.bitmap, 1);
    /* another ID Context than the record's: not found, nothing changes */
    CHECK_EQ(
        st->accept_piv(st->ctx, id, 8, ss_psk_of(id), ss_nobody, 8, 300, &w),
        CJ_ERR_NOTFOUND);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
    CHECK_EQ(r.replay.highest, 200);
    b->close(db);
    cleanup(b);
}

/* ---- durability and atomicity ---------------------------------------------- */

void ss_durable_across_reopen(const ss_backend_t *b)
{
    void *db;
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    cj_oscore_replay_t w;
    uint8_t id[8];
    uint16_t s = 0, s2 = 0;
    uint64_t cur = 0;

    db = ss_start(b, 3, &st);
    ss_make_id(id, 2);
    CHECK_EQ(ss_raise_ssn(st, st->ctx, id, (UINT64_C(1) << 40) - 1), CJ_OK);
    CHECK_EQ(accept(st, id, 997, &w), CJ_OK);
    CHECK_EQ(accept(st, id, 1000, &w), CJ_OK);
    CHECK_EQ(accept(st, id, 999, &w), CJ_OK);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 5000, 24, false, &s), CJ_OK);
    CHECK_EQ(st->record_join(st->ctx, id, 8, CJ_COJP_ROLE_6LBR, s, 5000),
             CJ_OK);
    b->close(db); /* no commit call: each write was its own */

    db = ss_open(b);
    st = b->store(db);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, (UINT64_C(1) << 40) - 1);
    CHECK_EQ(r.replay.highest, 1000);
    CHECK_EQ(r.replay.bitmap, 0xbu); /* ages 0, 1 and 3 */
    CHECK(r.replay.valid);
    CHECK(r.joined);
    CHECK_EQ(r.role, CJ_COJP_ROLE_6LBR);
    CHECK_EQ(r.short_id, s);
    CHECK_EQ(st->next_joined(st->ctx, &cur, &r), CJ_OK);
    CHECK_MEM(r.id, r.id_len, id, 8);
    CHECK_EQ(st->next_joined(st->ctx, &cur, &r), CJ_ERR_NOTFOUND);
    /* the lease survived too: a renewal keeps the id */
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 6000, 24, false, &s2), CJ_OK);
    CHECK_EQ(s2, s);
    b->close(db);
    cleanup(b);
}

void ss_rollback_leaves_nothing(const ss_backend_t *b)
{
    void *db;
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    uint8_t id[8], psk[16];
    uint16_t s = 0;
    size_t bad = 0, count = 0;

    db = ss_start(b, 1, &st);
    ss_make_id(id, 0);
    CHECK_EQ(b->begin(db), CJ_OK);
    CHECK_EQ(b->begin(db), CJ_ERR_STATE);
    CHECK(b->in_tx(db));
    CHECK_EQ(ss_raise_ssn(st, st->ctx, id, 99), CJ_OK);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 0, 0, false, &s), CJ_OK);
    CHECK_EQ(st->record_join(st->ctx, id, 8, 0, s, 0), CJ_OK);
    CHECK_EQ(b->evict(db, id, 8), CJ_OK);
    ss_make_id(id, 1);
    ss_make_psk(psk, 1);
    CHECK_EQ(b->add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    CHECK_EQ(b->import_csv(db, "0a0b,000102030405060708090a0b0c0d0e0f\n", 38,
                           &bad, &count),
             CJ_OK);
    CHECK_EQ(count, 1);
    /* the open transaction sees its own writes */
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
    CHECK_EQ(b->rollback(db), CJ_OK);
    CHECK(!b->in_tx(db));
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_ERR_NOTFOUND);
    ss_make_id(id, 0);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, 0);
    CHECK(!r.joined);
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pledges"), 1);
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pledges WHERE lease_until"
                            " IS NOT NULL OR evicted_at IS NOT NULL"),
             0);
    CHECK_EQ(b->sql_int(db, "SELECT next_short FROM registry_state"), 1);
    CHECK_EQ(b->rollback(db), CJ_ERR_STATE);
    CHECK_EQ(b->commit(db), CJ_ERR_STATE);
    /* nothing of an uncommitted batch survives a close either */
    CHECK_EQ(b->begin(db), CJ_OK);
    CHECK_EQ(ss_raise_ssn(st, st->ctx, id, 555), CJ_OK);
    b->close(db);
    db = ss_open(b);
    st = b->store(db);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
    CHECK_EQ(r.ssn_reserved, 0);
    b->close(db);
    cleanup(b);
}

/* A call that fails half-way (an injected database error) changes
 * nothing, in a batch or alone, and the batch goes on. */
void ss_failed_call_changes_nothing(const ss_backend_t *b)
{
    void *db;
    const cj_jrc_store_t *st;
    uint8_t id[8];
    uint16_t s = 0;

    db = ss_start(b, 3, &st);
    ss_make_id(id, 0);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 0, 1, false, &s), CJ_OK);
    CHECK_EQ(s, 1);
    /* taking an id after the expiry sweep fails */
    sql_exec(b, db, b->inject_sql);
    for (int batch = 0; batch < 2; batch++) {
        ss_make_id(id, 1);
        if (batch)
            CHECK_EQ(b->begin(db), CJ_OK);
        CHECK_EQ(ss_raise_ssn(st, st->ctx, id, 7), CJ_OK);
        CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 7200000, 1, false, &s),
                 CJ_ERR_STORAGE);
        CHECK(strstr(b->errmsg(db), "injected") != NULL);
        if (batch)
            CHECK_EQ(b->commit(db), CJ_OK);
        /* pledge 0's expired lease was swept in the failed call: restored */
        CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pledges WHERE"
                                " lease_until IS NOT NULL"),
                 1);
        CHECK_EQ(b->sql_int(db, "SELECT next_short FROM registry_state"), 2);
        /* the write before it in the batch stays */
        CHECK_EQ(b->sql_int(db, "SELECT ssn_reserved FROM pledges WHERE"
                                " seq = 2"),
                 7);
        sql_exec(b, db, "UPDATE pledges SET ssn_reserved = 0");
    }
    sql_exec(b, db, b->uninject_sql);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 7200000, 1, false, &s), CJ_OK);
    CHECK_EQ(s, 2);
    b->close(db);
    cleanup(b);
}

/* ---- provisioning ------------------------------------------------------------ */

static int count_cb(void *arg, const cj_sqlite_info_t *info)
{
    (void)info;
    (*(unsigned *)arg)++;
    return 0;
}

void ss_csv_import(const ss_backend_t *b)
{
    static const char good[] =
        "# id,psk,role\n"
        "00124b0000000001,000102030405060708090a0b0c0d0e0f\n"
        "\n"
        "   \t\n"
        "  00124B0000000002 , 101112131415161718191a1b1c1d1e1f , 6lbr\r\n"
        "0a0b,202122232425262728292a2b2c2d2e2f,node";
    void *db;
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    size_t bad = 99, count = 99;
    unsigned n = 0;

    b->fresh();
    db = ss_open(b);
    st = b->store(db);
    CHECK_EQ(b->import_csv(db, good, strlen(good), &bad, &count), CJ_OK);
    CHECK_EQ(bad, 0);
    CHECK_EQ(count, 3);
    {
        static const uint8_t id2[8] = {0, 0x12, 0x4b, 0, 0, 0, 0, 2};
        static const uint8_t id3[2] = {0x0a, 0x0b};
        CHECK_EQ(st->lookup(st->ctx, id2, 8, &r), CJ_OK);
        CHECK_EQ(r.allowed_roles, CJ_JRC_ALLOW_NODE | CJ_JRC_ALLOW_6LBR);
        CHECK_HEX(r.psk, 16, "101112131415161718191a1b1c1d1e1f");
        CHECK_EQ(st->lookup(st->ctx, id3, 2, &r), CJ_OK);
        CHECK_EQ(r.allowed_roles, CJ_JRC_ALLOW_NODE);
    }
    CHECK_EQ(b->import_csv(db, "", 0, &bad, &count), CJ_OK);
    CHECK_EQ(count, 0);
    CHECK_EQ(b->import_csv(db, NULL, 3, &bad, &count), CJ_ERR_INVALID);

    /* any bad line: nothing imported, its number reported */
    {
        static const struct {
            const char *text;
            size_t line;
            int err;
        } badv[] = {
            {"0101,f00102030405060708090a0b0c0d0e0f\n"
             "0102,f10102030405060708090a0b0c0d0e0f\n"
             "0103,00010203040506070809\n", 3, CJ_ERR_MALFORMED},
            {"0101,000102030405060708090a0b0c0d0e0f,router\n", 1,
             CJ_ERR_MALFORMED},
            {"\n#\n01x1,000102030405060708090a0b0c0d0e0f\n", 3,
             CJ_ERR_MALFORMED},
            {"010203040506070809,000102030405060708090a0b0c0d0e0f\n", 1,
             CJ_ERR_MALFORMED},
            {"010,000102030405060708090a0b0c0d0e0f\n", 1, CJ_ERR_MALFORMED},
            {"0101\n", 1, CJ_ERR_MALFORMED},
            {",000102030405060708090a0b0c0d0e0f\n", 1, CJ_ERR_MALFORMED},
            {"0101,000102030405060708090a0b0c0d0e0f,\n", 1, CJ_ERR_MALFORMED},
            {"0101,000102030405060708090a0b0c0d0e0f,node,x\n", 1,
             CJ_ERR_MALFORMED},
            {"0101,000102030405060708090a0b0c0d0e0f00\n", 1,
             CJ_ERR_MALFORMED},
            {"0101,f00102030405060708090a0b0c0d0e0f\n"
             "0101,f10102030405060708090a0b0c0d0e0f\n", 2, CJ_ERR_STATE},
            /* the id's conflict is named, whatever the PSK */
            {"0101,f00102030405060708090a0b0c0d0e0f\n"
             "0101,f00102030405060708090a0b0c0d0e0f\n", 2, CJ_ERR_STATE},
            {"0202,f00102030405060708090a0b0c0d0e0f\n"
             "0a0b,202122232425262728292a2b2c2d2e2f\n", 2, CJ_ERR_STATE},
            /* a PSK of its own per pledge (RFC 9031 section 3): not one
             * held in the registry, nor one earlier in the file */
            {"0303,f00102030405060708090a0b0c0d0e0f\n"
             "0304,101112131415161718191a1b1c1d1e1f,6lbr\n", 2,
             CJ_ERR_PSK_REUSED},
            {"# new pledges\n"
             "0303,f00102030405060708090a0b0c0d0e0f\n"
             "0304,f10102030405060708090a0b0c0d0e0f\n"
             "0305,f00102030405060708090a0b0c0d0e0f\n", 4,
             CJ_ERR_PSK_REUSED},
        };
        for (size_t i = 0; i < sizeof badv / sizeof badv[0]; i++) {
            bad = 0;
            count = 99;
            CHECK_EQ(b->import_csv(db, badv[i].text, strlen(badv[i].text),
                                   &bad, &count),
                     badv[i].err);
            CHECK_EQ(bad, badv[i].line);
            CHECK_EQ(count, 0);
        }
    }
    CHECK_EQ(b->list(db, count_cb, &n), CJ_OK);
    CHECK_EQ(n, 3);

    /* add: duplicates and bad arguments */
    {
        uint8_t id[8], psk[16];
        ss_make_id(id, 1);
        ss_make_psk(psk, 1);
        CHECK_EQ(b->add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_ERR_STATE);
        CHECK_EQ(b->add(db, id, 9, psk, CJ_JRC_ALLOW_NODE), CJ_ERR_INVALID);
        CHECK_EQ(b->add(db, id, 0, psk, CJ_JRC_ALLOW_NODE), CJ_ERR_INVALID);
        CHECK_EQ(b->add(db, id, 8, psk, 0), CJ_ERR_INVALID);
        CHECK_EQ(b->role_mask("node"), CJ_JRC_ALLOW_NODE);
        CHECK_EQ(b->role_mask("6lbr"), CJ_JRC_ALLOW_NODE | CJ_JRC_ALLOW_6LBR);
        CHECK_EQ(b->role_mask("6LBR"), CJ_ERR_INVALID);
        CHECK_EQ(b->role_mask(NULL), CJ_ERR_INVALID);
    }
    b->close(db);
    cleanup(b);
}

typedef struct seen {
    unsigned n;
    cj_sqlite_info_t last[4];
} seen_t;

static int keep_cb(void *arg, const cj_sqlite_info_t *info)
{
    seen_t *s = arg;
    if (s->n < 4)
        s->last[s->n] = *info;
    s->n++;
    return 0;
}

static int stop_cb(void *arg, const cj_sqlite_info_t *info)
{
    (void)arg;
    (void)info;
    return 7;
}

void ss_list_outcomes_address_evict(const ss_backend_t *b)
{
    const uint8_t *nobody = ss_nobody;
    void *db;
    const cj_jrc_store_t *st;
    seen_t sn;
    uint8_t id[3][8];
    uint16_t s = 0;
    uint64_t cur = 0;
    cj_jrc_pledge_t r;
    cj_addr_t a = {3, {0xfe, 0x80, 0x01}}, none = {0, {0}}, got;

    db = ss_start(b, 3, &st);
    for (unsigned i = 0; i < 3; i++)
        ss_make_id(id[i], i);
    CHECK_EQ(st->assign_short_id(st->ctx, id[1], 8, 10, 2, false, &s), CJ_OK);
    CHECK_EQ(st->record_join(st->ctx, id[1], 8, 0, s, 10), CJ_OK);
    CHECK_EQ(st->record_update(st->ctx, id[1], 8, 1, false), CJ_OK);
    CHECK_EQ(st->record_update(st->ctx, id[2], 8, 1, false), CJ_OK);
    CHECK_EQ(st->record_update(st->ctx, id[1], 8, 2, true), CJ_OK);
    CHECK_EQ(b->set_address(db, id[0], 8, &a), CJ_OK);
    CHECK_EQ(b->set_address(db, nobody, 8, &a), CJ_ERR_NOTFOUND);
    CHECK_EQ(st->node_address(st->ctx, id[0], 8, &got), CJ_OK);
    CHECK(cj_addr_equal(&got, &a));

    memset(&sn, 0, sizeof sn);
    CHECK_EQ(b->list(db, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 3);
    CHECK(!sn.last[0].has_update);
    CHECK(cj_addr_equal(&sn.last[0].addr, &a));
    CHECK(sn.last[1].rec.joined);
    CHECK(sn.last[1].has_lease);
    CHECK_EQ(sn.last[1].lease_until, 10 + 2 * 3600000);
    CHECK(sn.last[1].has_joined_at);
    CHECK_EQ(sn.last[1].joined_at, 10);
    CHECK(sn.last[1].has_update);
    CHECK_EQ(sn.last[1].update_campaign, 2);
    CHECK(sn.last[1].update_acked);
    CHECK_EQ(sn.last[1].update_session, b->session(db));
    CHECK(sn.last[1].update_at > 0);
    CHECK(sn.last[2].has_update && !sn.last[2].update_acked);
    CHECK_EQ(b->list(db, stop_cb, NULL), 7);

    /* campaign 1 did not reach nodes 1 and 2; campaign 2 reached all */
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(b->unreached(db, 0, 1, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 2);
    CHECK_MEM(sn.last[0].rec.id, 8, id[1], 8);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(b->unreached(db, 0, 2, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 0);
    /* a later session's campaign 1 is another campaign */
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(b->unreached(db, b->session(db) + 1, 1, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 0);

    /* the same campaign recorded again replaces its outcome */
    CHECK_EQ(st->record_update(st->ctx, id[1], 8, 1, true), CJ_OK);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(b->list(db, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.last[1].update_campaign, 1);
    CHECK(sn.last[1].update_acked);
    /* campaign 1 did not reach node 2 any more; campaign 2 reached all */
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(b->unreached(db, 0, 1, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 1);
    CHECK_MEM(sn.last[0].rec.id, 8, id[2], 8);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(b->unreached(db, b->session(db), 2, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 0);

    /* eviction: admission and lease end, the blacklist remembers */
    CHECK_EQ(b->evict(db, id[1], 8), CJ_OK);
    CHECK_EQ(b->evict(db, nobody, 8), CJ_ERR_NOTFOUND);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(b->blacklist(db, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 1);
    CHECK(sn.last[0].evicted && !sn.last[0].rec.joined &&
          !sn.last[0].has_lease);
    CHECK_EQ(st->next_joined(st->ctx, &cur, &r), CJ_ERR_NOTFOUND);
    CHECK_EQ(b->readmit(db, id[1], 8), CJ_OK);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(b->blacklist(db, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 0);

    /* the blacklist keeps the order of evictions */
    CHECK_EQ(b->evict(db, id[1], 8), CJ_OK);
    CHECK_EQ(b->evict(db, id[0], 8), CJ_OK);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(b->blacklist(db, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 2);
    if (b->exact_evict_order)
        CHECK_MEM(sn.last[0].rec.id, 8, id[1], 8);
    CHECK(sn.last[0].evicted && !sn.last[0].rec.joined &&
          !sn.last[0].has_lease);
    cur = 0;
    CHECK_EQ(st->next_joined(st->ctx, &cur, &r), CJ_ERR_NOTFOUND);
    CHECK_EQ(b->readmit(db, id[1], 8), CJ_OK);
    CHECK_EQ(b->readmit(db, nobody, 8), CJ_ERR_NOTFOUND);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(b->blacklist(db, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 1);
    CHECK_MEM(sn.last[0].rec.id, 8, id[0], 8);

    /* clearing the address falls back to the pledge id */
    CHECK_EQ(b->set_address(db, id[0], 8, &none), CJ_OK);
    CHECK_EQ(st->node_address(st->ctx, id[0], 8, &got), CJ_OK);
    CHECK_MEM(got.b, got.len, id[0], 8);
    b->close(db);
    cleanup(b);
}

/* ---- the JRC engine over the store ------------------------------------------ */

/* A pledge of jrc_multi.h joins through the engine: RFC 9031 Appendix A
 * Configuration (K1, short address af93), and what the store holds
 * afterwards as another handle (another JRC instance) sees it. */
void ss_jrc_admission(const ss_backend_t *b)
{
    static const uint8_t netid[2] = {0xca, 0xfe};
    static const cj_addr_t jp = {2, {0x0a, 0x01}};
    static cj_jrc_slot_t slots[4];
    static cj_jrc_t eng;
    static jm_pledge_t pl;
    void *db, *other;
    cj_jrc_cfg_t cfg;
    uint8_t msg[256], obuf[512], plain[512];
    cj_out_t out;
    cj_coap_msg_t m;
    cj_cojp_config_t conf;
    cj_jrc_pledge_t r;
    size_t n;
    int pn;

    b->fresh();
    db = ss_open(b);
    ss_add_jm(b, db, 3);
    b->set_cursor(db, 0xaf93); /* RFC 9031 Appendix A short address */
    memset(&cfg, 0, sizeof cfg);
    cfg.network_id = netid;
    cfg.network_id_len = sizeof netid;
    cfg.keys[0].key_id = 1;
    cj_hex("e6bf4287c2d7618d6a9687445ffd33e6", cfg.keys[0].key, 16);
    cfg.key_count = 1;
    cfg.join_rate = UINT32_MAX;
    cfg.slots = slots;
    cfg.slot_count = 4;
    CHECK_EQ(cj_jrc_init(&eng, &cfg, b->store(db), NULL), CJ_OK);

    jm_pledge_init(&pl, 1);
    n = jm_request(&pl, msg, sizeof msg);
    CHECK(n > 0);
    memset(&out, 0, sizeof out);
    out.buf = obuf;
    out.cap = sizeof obuf;
    /* group commit: the answer leaves only after the commit */
    if (b->begin)
        CHECK_EQ(b->begin(db), CJ_OK);
    CHECK_EQ(cj_jrc_input(&eng, 1000, &jp, msg, n, &out), 1);
    if (b->commit)
        CHECK_EQ(b->commit(db), CJ_OK);
    CHECK_EQ(out.event, CJ_JRC_EV_JOINED);
    CHECK_EQ(eng.ev_short_id, 0xaf93);
    CHECK(out.len > 0);
    CHECK_EQ(cj_coap_parse(&m, out.buf, out.len), CJ_OK);
    CHECK_EQ(m.code, CJ_COAP_CHANGED);
    pn = cj_oscore_unprotect_response(&pl.ctx, &pl.bind, out.buf, out.len,
                                      plain, sizeof plain);
    CHECK(pn > 0);
    CHECK_EQ(cj_coap_parse(&m, plain, pn > 0 ? (size_t)pn : 0), CJ_OK);
    CHECK_EQ(m.code, CJ_COAP_CHANGED);
    /* RFC 9031 Appendix A: key set with K1 and short address af93 */
    CHECK_HEX(m.payload, m.payload_len,
              "a202820150e6bf4287c2d7618d6a9687445ffd33e6038142af93");
    CHECK_EQ(cj_cojp_config_decode(m.payload, m.payload_len, &conf, NULL),
             CJ_OK);

    /* another instance sees the admission at once */
    other = ss_open(b);
    CHECK_EQ(b->store(other)->lookup(b->store(other)->ctx, pl.id, 8, &r),
             CJ_OK);
    CHECK(r.joined);
    CHECK_EQ(r.role, CJ_COJP_ROLE_6LN);
    CHECK_EQ(r.short_id, 0xaf93);
    CHECK(r.replay.valid);
    CHECK_EQ(r.replay.highest, 0);
    CHECK(r.ssn_reserved > 0);
    if (b->sql_int) {
        CHECK_EQ(b->sql_int(other, "SELECT joined_at FROM pledges"
                                   " WHERE seq = 2"),
                 1000);
        CHECK_EQ(b->sql_int(other, "SELECT count(*) FROM pledges WHERE"
                                   " lease_until IS NOT NULL"),
                 1);
    }
    /* and its next assignment does not hand out af93 again */
    {
        const cj_jrc_store_t *ost = b->store(other);
        uint8_t id2[8];
        uint16_t s = 0;
        jm_make_id(id2, 2);
        CHECK_EQ(ost->assign_short_id(ost->ctx, id2, 8, 1000, 0, false, &s),
                 CJ_OK);
        CHECK_EQ(s, 0xaf94);
    }
    b->close(other);
    b->close(db);
    cleanup(b);
}

/* ---- network settings and pending operations -------------------------------- */

/* The network row through two handles: saved by one, read by the other
 * and after a reopen; replaced, never added; a rolled back save leaves
 * the old row. */
void ss_network_row(const ss_backend_t *b)
{
    void *a, *o;
    cj_sqlite_network_t n, got;

    b->fresh();
    a = ss_open(b);
    o = ss_open(b);
    CHECK_EQ(b->network_load(a, &got), CJ_ERR_NOTFOUND);
    memset(&n, 0, sizeof n);
    CHECK_EQ(b->network_save(a, &n), CJ_ERR_INVALID); /* no key */
    n.network_id[0] = 0xca;
    n.network_id[1] = 0xfe;
    n.network_id_len = 2;
    n.key_count = 2;
    n.keys[0].key_id = 1;
    n.keys[0].key_usage = CJ_COJP_KEY_USAGE_K1_MIC32;
    memset(n.keys[0].key, 0x11, 16);
    n.keys[1].key_id = 2;
    n.keys[1].key_usage = 3;
    memset(n.keys[1].key, 0x5a, 16);
    n.join_rate = UINT32_MAX;
    n.lease_hours = 24;
    n.next_campaign = 7;
    CHECK_EQ(b->network_save(a, &n), CJ_OK);
    CHECK_EQ(b->network_load(o, &got), CJ_OK);
    CHECK_MEM(got.network_id, got.network_id_len, n.network_id, 2);
    CHECK_EQ(got.key_count, 2);
    CHECK_EQ(got.keys[1].key_usage, 3);
    CHECK_MEM(got.keys[1].key, 16, n.keys[1].key, 16);
    CHECK(!got.has_jrc_address);
    CHECK_EQ(got.join_rate, UINT32_MAX);
    CHECK_EQ(got.lease_hours, 24);
    b->close(a);
    a = ss_open(b);
    CHECK_EQ(b->network_load(a, &got), CJ_OK);
    CHECK(memcmp(&got, &n, sizeof n) == 0);

    /* replaced, not added; a rolled back save leaves the old row */
    n.has_jrc_address = true;
    n.jrc_address[15] = 1;
    n.join_rate = 7;
    n.next_campaign = 9;
    memset(n.network_id, 0, sizeof n.network_id);
    n.network_id_len = 0;
    CHECK_EQ(b->begin(a), CJ_OK);
    CHECK_EQ(b->network_save(a, &n), CJ_OK);
    CHECK_EQ(b->rollback(a), CJ_OK);
    CHECK_EQ(b->network_load(a, &got), CJ_OK);
    CHECK_EQ(got.next_campaign, 7);
    CHECK_EQ(got.network_id_len, 2);
    CHECK_EQ(b->network_save(o, &n), CJ_OK);
    CHECK_EQ(b->network_load(a, &got), CJ_OK);
    CHECK(got.has_jrc_address && got.jrc_address[15] == 1);
    CHECK_EQ(got.join_rate, 7);
    CHECK_EQ(got.next_campaign, 9);
    CHECK_EQ(got.network_id_len, 0);
    CHECK(memcmp(&got, &n, sizeof n) == 0);
    CHECK_EQ(b->sql_int(a, "SELECT count(*) FROM network"), 1);
    n.key_count = 0;
    CHECK_EQ(b->network_save(a, &n), CJ_ERR_INVALID);
    n.key_count = 2;
    n.next_campaign = 0;
    CHECK_EQ(b->network_save(a, &n), CJ_ERR_INVALID);
    b->close(o);
    b->close(a);
    cleanup(b);
}

/* The queue of operations, oldest first, kept across a reopen; taking
 * one inside a rolled back transaction leaves it queued. */
void ss_pending_ops_fifo(const ss_backend_t *b)
{
    void *db;
    cj_sqlite_op_t op, got;

    b->fresh();
    db = ss_open(b);
    CHECK_EQ(b->op_next(db, &got), CJ_ERR_NOTFOUND);
    memset(&op, 0, sizeof op);
    op.kind = CJ_SQLITE_OP_EVICT;
    CHECK_EQ(b->op_push(db, &op), CJ_ERR_INVALID); /* no pledge */
    op.kind = CJ_SQLITE_OP_READMIT;
    CHECK_EQ(b->op_push(db, &op), CJ_ERR_INVALID); /* no pledge */
    op.kind = 9;
    CHECK_EQ(b->op_push(db, &op), CJ_ERR_INVALID);
    op.kind = CJ_SQLITE_OP_REKEY;
    op.has_key = true;
    memset(op.key, 0x5a, 16);
    CHECK_EQ(b->op_push(db, &op), CJ_OK);
    memset(&op, 0, sizeof op);
    op.kind = CJ_SQLITE_OP_EVICT;
    op.id[0] = 0x02;
    op.id[7] = 0x07;
    op.id_len = 8;
    CHECK_EQ(b->op_push(db, &op), CJ_OK);
    b->close(db);

    db = ss_open(b);
    CHECK_EQ(b->op_next(db, &got), CJ_OK);
    CHECK_EQ(got.kind, CJ_SQLITE_OP_REKEY);
    CHECK(got.has_key);
    CHECK_EQ(got.key[15], 0x5a);
    CHECK_EQ(got.id_len, 0);
    CHECK(got.queued_at > 0);
    /* taking it inside a rolled back transaction leaves it queued */
    CHECK_EQ(b->begin(db), CJ_OK);
    CHECK_EQ(b->op_done(db, got.seq), CJ_OK);
    CHECK_EQ(b->rollback(db), CJ_OK);
    CHECK_EQ(b->op_next(db, &op), CJ_OK);
    CHECK_EQ(op.seq, got.seq);
    CHECK_EQ(b->op_done(db, got.seq), CJ_OK);
    CHECK_EQ(b->op_done(db, got.seq), CJ_ERR_NOTFOUND);
    CHECK_EQ(b->op_next(db, &got), CJ_OK);
    CHECK_EQ(got.kind, CJ_SQLITE_OP_EVICT);
    CHECK_EQ(got.id_len, 8);
    CHECK_EQ(got.id[7], 0x07);
    CHECK(!got.has_key);
    CHECK_EQ(b->op_done(db, got.seq), CJ_OK);
    CHECK_EQ(b->op_next(db, &got), CJ_ERR_NOTFOUND);
    b->close(db);
    cleanup(b);
}

void ss_migration_6_to_7(const ss_backend_t *b)
{
    static const char sql[] =
        "INSERT INTO pending_ops (kind, pledge, queued_at) VALUES (3, NULL, 1)";
    cj_sqlite_op_t op, got;
    int64_t last;
    void *db;

    b->fresh();
    db = ss_open(b);
    sql_exec(b, db, b->v6_sql);
    memset(&op, 0, sizeof op);
    op.kind = CJ_SQLITE_OP_REKEY;
    CHECK_EQ(b->op_push(db, &op), CJ_OK);
    op.kind = CJ_SQLITE_OP_EVICT;
    ss_make_id(op.id, 4);
    op.id_len = 8;
    CHECK_EQ(b->op_push(db, &op), CJ_OK);
    /* the newest taken: its number must not come back */
    op.kind = CJ_SQLITE_OP_REKEY;
    CHECK_EQ(b->op_push(db, &op), CJ_OK);
    last = b->sql_int(db, "SELECT max(seq) FROM pending_ops");
    CHECK_EQ(b->op_done(db, last), CJ_OK);
    CHECK(!b->sql_try(db, sql)); /* schema 6 knows no kind 3 */
    b->close(db);

    db = ss_open(b);
    CHECK_EQ(b->sql_int(db, "SELECT max(version) FROM schema_version"),
             b->schema_version);
    CHECK(!b->sql_try(db, sql)); /* a readmit names its pledge */
    op.kind = CJ_SQLITE_OP_READMIT;
    op.id_len = 0;
    CHECK_EQ(b->op_push(db, &op), CJ_ERR_INVALID);
    op.id_len = 8;
    CHECK_EQ(b->op_push(db, &op), CJ_OK);
    CHECK_EQ(b->op_next(db, &got), CJ_OK);
    CHECK_EQ(got.kind, CJ_SQLITE_OP_REKEY);
    CHECK_EQ(b->op_done(db, got.seq), CJ_OK);
    CHECK_EQ(b->op_next(db, &got), CJ_OK);
    CHECK_EQ(got.kind, CJ_SQLITE_OP_EVICT);
    CHECK_MEM(got.id, got.id_len, op.id, 8);
    CHECK(got.seq < last);
    CHECK_EQ(b->op_done(db, got.seq), CJ_OK);
    CHECK_EQ(b->op_next(db, &got), CJ_OK);
    CHECK_EQ(got.kind, CJ_SQLITE_OP_READMIT);
    CHECK_MEM(got.id, got.id_len, op.id, 8);
    CHECK(got.seq > last);
    CHECK_EQ(b->op_done(db, got.seq), CJ_OK);
    CHECK_EQ(b->op_next(db, &got), CJ_ERR_NOTFOUND);
    b->close(db);
    cleanup(b);
}

void ss_migration_7_to_8(const ss_backend_t *b)
{
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t rec;
    uint8_t id[8];
    uint64_t marked = 0;
    void *db = ss_start(b, 3, &st);

    sql_exec(b, db, b->v7_sql);
    b->close(db);

    db = ss_open(b);
    st = b->store(db);
    CHECK_EQ(b->sql_int(db, "SELECT max(version) FROM schema_version"),
             b->schema_version);
    ss_make_id(id, 2);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &rec), CJ_OK);
    CHECK(!rec.must_recover);
    CHECK(!b->sql_try(db, "UPDATE pledges SET must_recover = 2"));
    CHECK_EQ(b->mark_recover(db, 0, &marked), CJ_OK);
    CHECK_EQ(marked, 3);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &rec), CJ_OK);
    CHECK(rec.must_recover);
    b->close(db);
    cleanup(b);
}

/* After a restore (store/sqlite.h cj_sqlite_mark_recover): every pledge
 * marked in one step, the search for free short ids moved on; both
 * lookups tell the mark; a new context or a new PSK clears it; the marks
 * are durable and nothing else of the rows changed. */
void ss_mark_recover(const ss_backend_t *b)
{
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t rec, before;
    cj_oscore_replay_t w;
    uint8_t id[8], ctx[16], psk[16];
    uint64_t marked = 0;
    uint16_t sid = 0;
    void *db = ss_start(b, 4, &st);

    ss_make_id(id, 0);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &rec), CJ_OK);
    CHECK(!rec.must_recover);
    CHECK_EQ(accept(st, id, 9, &w), CJ_OK);
    CHECK_EQ(ss_raise_ssn(st, st->ctx, id, 40), CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &before), CJ_OK);
    /* pledge 1 runs a recovered context */
    ss_make_id(id, 1);
    memset(ctx, 0x5c, sizeof ctx);
    CHECK_EQ(st->save_context(st->ctx, id, 8, ss_psk_of(id), ctx, sizeof ctx),
             CJ_OK);
    b->set_cursor(db, 65530);
    CHECK_EQ(b->mark_recover(db, 65534, &marked), CJ_ERR_INVALID);
    CHECK_EQ(marked, 0);
    CHECK_EQ(b->mark_recover(db, 10, &marked), CJ_OK);
    CHECK_EQ(marked, 4);
    for (unsigned i = 0; i < 4; i++) {
        ss_make_id(id, i);
        CHECK_EQ(st->lookup(st->ctx, id, 8, &rec), CJ_OK);
        CHECK(rec.must_recover);
    }
    CHECK_EQ(st->lookup_context(st->ctx, ctx, sizeof ctx, &rec), CJ_OK);
    CHECK(rec.must_recover);
    /* the rest of a row is as it was */
    ss_make_id(id, 0);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &rec), CJ_OK);
    CHECK_EQ(rec.ssn_reserved, before.ssn_reserved);
    CHECK_EQ(rec.replay.highest, 9);
    CHECK(rec.replay.valid);
    /* from 65530, ten ids on: 65533 is followed by 1, so 7 */
    ss_make_id(id, 2);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 0, 0, false, &sid), CJ_OK);
    CHECK_EQ(sid, 7);

    /* a new context clears the mark, so does a new PSK */
    ss_make_id(id, 1);
    memset(ctx, 0x6d, sizeof ctx);
    CHECK_EQ(st->save_context(st->ctx, id, 8, ss_psk_of(id), ctx, sizeof ctx),
             CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &rec), CJ_OK);
    CHECK(!rec.must_recover);
    ss_make_id(id, 3);
    ss_make_psk(psk, 99);
    CHECK_EQ(b->set_psk(db, id, 8, psk), CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &rec), CJ_OK);
    CHECK(!rec.must_recover);

    b->close(db);
    db = ss_open(b);
    st = b->store(db);
    for (unsigned i = 0; i < 4; i++) {
        ss_make_id(id, i);
        CHECK_EQ(st->lookup(st->ctx, id, 8, &rec), CJ_OK);
        CHECK_EQ(rec.must_recover, i == 0 || i == 2);
    }
    b->close(db);
    cleanup(b);
}

/* A network record with one key, next campaign c. */
static void net_record(cj_sqlite_network_t *n, uint32_t c)
{
    memset(n, 0, sizeof *n);
    n->key_count = 1;
    n->keys[0].key_id = 1;
    memset(n->keys[0].key, 0x21, 16);
    n->join_rate = UINT32_MAX;
    n->next_campaign = c;
}

/* store/sqlite.h campaign lock: none before a network record, a
 * compare-and-set after, seen from another handle, untouched by
 * network_save, durable. */
void ss_campaign_lock(const ss_backend_t *b)
{
    cj_sqlite_network_t n;
    uint64_t owner = 1, alive = 1;
    void *a, *o;

    b->fresh();
    a = ss_open(b);
    o = ss_open(b);
    CHECK_EQ(b->campaign_get(a, &owner, &alive), CJ_ERR_NOTFOUND);
    CHECK_EQ(owner + alive, 0);
    CHECK_EQ(b->campaign_put(a, 0, 5, 1000), CJ_ERR_NOTFOUND);
    net_record(&n, 1);
    CHECK_EQ(b->network_save(a, &n), CJ_OK);
    CHECK_EQ(b->campaign_get(o, &owner, &alive), CJ_OK);
    CHECK_EQ(owner, 0);
    CHECK_EQ(alive, 0);

    CHECK_EQ(b->campaign_put(a, 0, 5, 1000), CJ_OK);
    CHECK_EQ(b->campaign_put(o, 0, 6, 2000), CJ_ERR_NOTFOUND); /* taken */
    CHECK_EQ(b->campaign_put(o, 4, 6, 2000), CJ_ERR_NOTFOUND);
    CHECK_EQ(b->campaign_get(o, &owner, &alive), CJ_OK);
    CHECK_EQ(owner, 5);
    CHECK_EQ(alive, 1000);
    /* alive again; a new record leaves the lock as it is */
    CHECK_EQ(b->campaign_put(a, 5, 5, 3000), CJ_OK);
    net_record(&n, 2);
    CHECK_EQ(b->network_save(o, &n), CJ_OK);
    CHECK_EQ(b->campaign_get(o, &owner, &alive), CJ_OK);
    CHECK_EQ(owner, 5);
    CHECK_EQ(alive, 3000);
    /* in a transaction rolled back, a claim is undone */
    CHECK_EQ(b->begin(o), CJ_OK);
    CHECK_EQ(b->campaign_put(o, 5, 6, 4000), CJ_OK);
    CHECK_EQ(b->rollback(o), CJ_OK);
    CHECK_EQ(b->campaign_get(a, &owner, &alive), CJ_OK);
    CHECK_EQ(owner, 5);
    /* given up: anyone's to take; durable */
    CHECK_EQ(b->campaign_put(a, 5, 0, 0), CJ_OK);
    CHECK_EQ(b->campaign_put(a, 5, 0, 0), CJ_ERR_NOTFOUND);
    CHECK_EQ(b->campaign_put(o, 0, 6, 5000), CJ_OK);
    b->close(a);
    b->close(o);
    a = ss_open(b);
    CHECK_EQ(b->campaign_get(a, &owner, &alive), CJ_OK);
    CHECK_EQ(owner, 6);
    CHECK_EQ(alive, 5000);
    CHECK_EQ(b->network_load(a, &n), CJ_OK);
    CHECK_EQ(n.next_campaign, 2);
    b->close(a);
    cleanup(b);
}

void ss_migration_8_to_9(const ss_backend_t *b)
{
    cj_sqlite_network_t n;
    uint64_t owner = 1, alive = 1;
    void *db;

    b->fresh();
    db = ss_open(b);
    net_record(&n, 3);
    CHECK_EQ(b->network_save(db, &n), CJ_OK);
    sql_exec(b, db, b->v8_sql);
    b->close(db);

    db = ss_open(b);
    CHECK_EQ(b->sql_int(db, "SELECT max(version) FROM schema_version"),
             b->schema_version);
    CHECK_EQ(b->network_load(db, &n), CJ_OK);
    CHECK_EQ(n.next_campaign, 3);
    CHECK_EQ(b->campaign_get(db, &owner, &alive), CJ_OK);
    CHECK_EQ(owner + alive, 0);
    CHECK(!b->sql_try(db, "UPDATE network SET campaign_owner = 0"));
    CHECK_EQ(b->campaign_put(db, 0, 9, 1), CJ_OK);
    b->close(db);
    cleanup(b);
}

/* Schema 9 to 10: the indexes no admission should pay for go, nothing
 * else does; joined pledges are still walked in provisioning order. */
void ss_migration_9_to_10(const ss_backend_t *b)
{
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    uint8_t id[8];
    uint16_t s = 0;
    uint64_t cur = 0;
    void *db = ss_start(b, 5, &st);

    for (unsigned i = 3; i-- > 1;) {
        ss_make_id(id, i);
        CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 1000, 1, false, &s), CJ_OK);
        CHECK_EQ(st->record_join(st->ctx, id, 8, 0, s, 1000), CJ_OK);
    }
    sql_exec(b, db, b->v9_sql);
    CHECK(b->sql_int(db, b->v10_dropped_sql) > 0);
    b->close(db);

    db = ss_open(b);
    st = b->store(db);
    CHECK_EQ(b->sql_int(db, "SELECT max(version) FROM schema_version"),
             b->schema_version);
    CHECK_EQ(b->sql_int(db, b->v10_dropped_sql), 0);
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pledges WHERE"
                            " lease_until = 3601000 AND short_id IN (1, 2)"),
             2);
    for (unsigned i = 1; i < 3; i++) {
        CHECK_EQ(st->next_joined(st->ctx, &cur, &r), CJ_OK);
        ss_make_id(id, i);
        CHECK(r.id_len == 8 && memcmp(r.id, id, 8) == 0);
    }
    CHECK_EQ(st->next_joined(st->ctx, &cur, &r), CJ_ERR_NOTFOUND);
    b->close(db);
    cleanup(b);
}

/* ---- outcome retention ------------------------------------------------------ */

/* f(campaign) over the outcomes of the pledge provisioned i-th (from 0):
 * count(*), min(campaign), ... */
static long long outcomes(const ss_backend_t *b, void *db, const char *f,
                          unsigned i)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM updates u JOIN pledges p ON p.id = u.pledge"
             " WHERE p.seq = %u", f, i + 1);
    return b->sql_int(db, sql);
}

/* Record outcomes of campaigns first..last for pledge i, acknowledged
 * for even campaigns. */
static void record_range(const cj_jrc_store_t *st, unsigned i,
                         uint32_t first, uint32_t last)
{
    uint8_t id[8];
    ss_make_id(id, i);
    for (uint32_t c = first; c <= last; c++)
        CHECK_EQ(st->record_update(st->ctx, id, 8, c, c % 2 == 0), CJ_OK);
}

void ss_outcome_retention(const ss_backend_t *b)
{
    const cj_jrc_store_t *st;
    uint32_t keep = 0;
    uint64_t removed = 0;
    uint8_t id[8];
    seen_t sn;
    void *db;

    if (b->prune == NULL)
        return;
    db = ss_start(b, 3, &st);
    CHECK_EQ(b->keep_outcomes(db, &keep), CJ_OK);
    CHECK_EQ(keep, CJ_STORE_KEEP_OUTCOMES);

    /* recording trims the pledge's own outcomes to the latest 16 */
    record_range(st, 0, 1, 20);
    record_range(st, 1, 1, 3);
    CHECK_EQ(outcomes(b, db, "count(*)", 0), 16);
    CHECK_EQ(outcomes(b, db, "min(campaign)", 0), 5);
    CHECK_EQ(outcomes(b, db, "count(*)", 1), 3);
    /* recorded again (the same campaign): replaced, not added */
    ss_make_id(id, 0);
    CHECK_EQ(st->record_update(st->ctx, id, 8, 20, false), CJ_OK);
    CHECK_EQ(outcomes(b, db, "count(*)", 0), 16);
    CHECK_EQ(outcomes(b, db, "min(campaign)", 0), 5);

    /* a lower setting waits for the next outcome, or a prune, which goes
     * over every pledge, here in chunks of 4 (the first ends inside
     * pledge 0's surplus of 14) */
    CHECK_EQ(b->set_keep_outcomes(db, 2), CJ_OK);
    CHECK_EQ(outcomes(b, db, "count(*)", 0), 16);
    CHECK_EQ(b->prune(db, 4, &removed), CJ_OK);
    CHECK_EQ(removed, 14 + 1);
    CHECK_EQ(outcomes(b, db, "count(*)", 0), 2);
    CHECK_EQ(outcomes(b, db, "min(campaign)", 0), 19);
    CHECK_EQ(outcomes(b, db, "count(*)", 1), 2);
    CHECK_EQ(outcomes(b, db, "min(campaign)", 1), 2);
    removed = 0;
    CHECK_EQ(b->prune(db, 0, &removed), CJ_OK);
    CHECK_EQ(removed, 0);
    /* the latest outcome is what list and unreached still show */
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(b->list(db, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 3);
    CHECK(sn.last[0].has_update && sn.last[0].update_campaign == 20 &&
          !sn.last[0].update_acked);
    CHECK(sn.last[1].has_update && sn.last[1].update_campaign == 3);
    CHECK(!sn.last[2].has_update);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(b->unreached(db, 0, 3, keep_cb, &sn), CJ_OK);
    CHECK_EQ(sn.n, 1);
    record_range(st, 0, 21, 21);
    CHECK_EQ(outcomes(b, db, "count(*)", 0), 2);
    CHECK_EQ(outcomes(b, db, "min(campaign)", 0), 20);

    /* a trim is part of the recording's transaction */
    if (b->begin) {
        CHECK_EQ(b->set_keep_outcomes(db, 1), CJ_OK);
        CHECK_EQ(b->begin(db), CJ_OK);
        record_range(st, 0, 22, 22);
        CHECK_EQ(outcomes(b, db, "count(*)", 0), 1);
        CHECK_EQ(b->rollback(db), CJ_OK);
        CHECK_EQ(outcomes(b, db, "count(*)", 0), 2);
        CHECK_EQ(outcomes(b, db, "max(campaign)", 0), 21);
    }

    /* 'all' (0) keeps every outcome; a bad setting changes nothing */
    CHECK_EQ(b->set_keep_outcomes(db, 0), CJ_OK);
    record_range(st, 0, 22, 40);
    CHECK_EQ(outcomes(b, db, "count(*)", 0), 21);
    CHECK_EQ(b->prune(db, 4, &removed), CJ_OK);
    CHECK_EQ(removed, 0);
    CHECK_EQ(b->set_keep_outcomes(db, CJ_STORE_KEEP_MAX + 1), CJ_ERR_INVALID);
    CHECK_EQ(b->keep_outcomes(db, &keep), CJ_OK);
    CHECK_EQ(keep, 0);
    CHECK_EQ(b->set_keep_outcomes(db, CJ_STORE_KEEP_MAX), CJ_OK);
    CHECK_EQ(b->keep_outcomes(db, &keep), CJ_OK);
    CHECK_EQ(keep, CJ_STORE_KEEP_MAX);
    CHECK(!b->sql_try(db, "UPDATE registry_state SET keep_outcomes = 1000001"));
    CHECK(!b->sql_try(db, "UPDATE registry_state SET keep_outcomes = -1"));

    /* the setting is the registry's: another handle finds it */
    CHECK_EQ(b->set_keep_outcomes(db, 5), CJ_OK);
    b->close(db);
    db = ss_open(b);
    st = b->store(db);
    CHECK_EQ(b->keep_outcomes(db, &keep), CJ_OK);
    CHECK_EQ(keep, 5);
    CHECK_EQ(b->prune(db, 0, &removed), CJ_OK);
    CHECK_EQ(removed, 16);
    CHECK_EQ(outcomes(b, db, "count(*)", 0), 5);
    CHECK_EQ(outcomes(b, db, "min(campaign)", 0), 36);
    b->close(db);
    cleanup(b);
}

void ss_migration_10_to_11(const ss_backend_t *b)
{
    const cj_jrc_store_t *st;
    uint32_t keep = 0;
    uint64_t removed = 0;
    void *db;

    if (b->v10_sql == NULL)
        return;
    db = ss_start(b, 2, &st);
    sql_exec(b, db, b->v10_sql);
    record_range(st, 0, 1, 20);
    record_range(st, 1, 1, 18);
    CHECK_EQ(outcomes(b, db, "count(*)", 0), 20);
    b->close(db);

    db = ss_open(b);
    st = b->store(db);
    CHECK_EQ(b->sql_int(db, "SELECT max(version) FROM schema_version"),
             b->schema_version);
    CHECK_EQ(b->keep_outcomes(db, &keep), CJ_OK);
    CHECK_EQ(keep, CJ_STORE_KEEP_OUTCOMES);
    /* nothing goes at the migration itself */
    CHECK_EQ(outcomes(b, db, "count(*)", 0), 20);
    CHECK_EQ(outcomes(b, db, "count(*)", 1), 18);
    record_range(st, 0, 21, 21);
    CHECK_EQ(outcomes(b, db, "count(*)", 0), 16);
    CHECK_EQ(outcomes(b, db, "min(campaign)", 0), 6);
    CHECK_EQ(b->prune(db, 0, &removed), CJ_OK);
    CHECK_EQ(removed, 2);
    CHECK_EQ(outcomes(b, db, "count(*)", 1), 16);
    CHECK_EQ(outcomes(b, db, "min(campaign)", 1), 3);
    b->close(db);
    cleanup(b);
}

/* ---- several JRC engines, one registry ------------------------------------- */

/* Two engines over two handles serve the same pledges in turn
 * (jrc_multi.h), in autocommit and with one engine in group commits: no
 * Partial IV with two ciphertexts, a request accepted by one is dropped
 * by the other, short ids unique and stable. */
void ss_two_engines(const ss_backend_t *b)
{
    void *a, *o;
    jm_result_t r;

    for (unsigned v = 0; v < 4; v++) {
        uint32_t block = v & 1;
        size_t nslots = v & 2 ? 3 : JM_MAXP;
        b->fresh();
        a = ss_open(b);
        o = ss_open(b);
        ss_add_jm(b, a, 6);
        jm_alternate(b->store(a), b->store(o), 6, 12, block, nslots, &r);
        CHECK_EQ(r.answered, 72);
        CHECK_EQ(r.replays_accepted, 0);
        CHECK_EQ(r.replays_dropped, 18);
        CHECK_EQ(r.cross_repeats, 18);
        CHECK_EQ(r.conflicts, 0);
        CHECK_EQ(r.short_dup, 0);
        CHECK_EQ(r.short_moved, 0);
        CHECK(r.repeats > 0);
        if (block == 1)
            CHECK_EQ(r.pledge_ok, 72);
        b->close(a);
        b->close(o);
        cleanup(b);
    }
}

/* ---- the repeat cache (schema 3) -------------------------------------------- */

static bool repeat_eq(const cj_jrc_repeat_t *a, const cj_jrc_repeat_t *b)
{
    return a->req_len == b->req_len && a->req_opt_len == b->req_opt_len &&
           a->resp_len == b->resp_len &&
           memcmp(a->req, b->req, a->req_len) == 0 &&
           memcmp(a->resp, b->resp, a->resp_len) == 0 &&
           cj_addr_equal(&a->from, &b->from);
}

static void repeat_fill(cj_jrc_repeat_t *r, uint8_t seed, size_t resp_len,
                        uint8_t from_len)
{
    memset(r, 0, sizeof *r);
    r->req_len = 20;
    r->req_opt_len = 12;
    for (size_t i = 0; i < r->req_len; i++)
        r->req[i] = (uint8_t)(seed + i);
    r->resp_len = (uint16_t)resp_len;
    for (size_t i = 0; i < resp_len; i++)
        r->resp[i] = (uint8_t)(seed * 3 + i);
    r->from.len = from_len;
    for (size_t i = 0; i < from_len; i++)
        r->from.b[i] = (uint8_t)(0xa0 + i);
}

/* save_repeat and what lookup returns: round trip at the largest sizes,
 * seen by another handle and after a reopen, refused under an ID Context
 * that is not current or for an unknown pledge, undone by a rollback,
 * cleared by an empty cache and by save_context. */
void ss_repeat_cache(const ss_backend_t *b)
{
    static const uint8_t rctx[16] = {1, 2, 3, 4, 5, 6, 7, 8,
                                     9, 10, 11, 12, 13, 14, 15, 16};
    const cj_jrc_store_t *st;
    cj_jrc_repeat_t r, r2, none;
    cj_jrc_pledge_t p;
    uint8_t id[8], id1[8];
    void *db, *o;

    b->fresh();
    db = ss_open(b);
    ss_add_n(b, db, 2);
    st = b->store(db);
    ss_make_id(id, 0);
    ss_make_id(id1, 1);
    memset(&none, 0, sizeof none);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &p), CJ_OK);
    CHECK(repeat_eq(&p.repeat, &none));

    repeat_fill(&r, 7, CJ_JRC_RESP_CACHE, CJ_ADDR_MAX);
    r.req_len = CJ_JRC_REQ_CACHE;
    CHECK_EQ(st->save_repeat(st->ctx, id, 8, ss_psk_of(id), NULL, 0, &r),
             CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &p), CJ_OK);
    CHECK(repeat_eq(&p.repeat, &r));
    CHECK_EQ(st->lookup(st->ctx, id1, 8, &p), CJ_OK);
    CHECK(repeat_eq(&p.repeat, &none));
    o = ss_open(b);
    CHECK_EQ(b->store(o)->lookup(b->store(o)->ctx, id, 8, &p), CJ_OK);
    CHECK(repeat_eq(&p.repeat, &r));
    b->close(o);

    /* not the current ID Context, unknown pledge: nothing changes */
    repeat_fill(&r2, 9, 40, 2);
    CHECK_EQ(
        st->save_repeat(st->ctx, id, 8, ss_psk_of(id), rctx, sizeof rctx, &r2),
        CJ_ERR_NOTFOUND);
    CHECK_EQ(st->save_repeat(st->ctx, ss_nobody, 8, ss_psk_of(ss_nobody), NULL,
                             0, &r2),
             CJ_ERR_NOTFOUND);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &p), CJ_OK);
    CHECK(repeat_eq(&p.repeat, &r));
    if (b->begin) {
        CHECK_EQ(b->begin(db), CJ_OK);
        CHECK_EQ(st->save_repeat(st->ctx, id, 8, ss_psk_of(id), NULL, 0, &r2),
                 CJ_OK);
        CHECK_EQ(b->rollback(db), CJ_OK);
        CHECK_EQ(st->lookup(st->ctx, id, 8, &p), CJ_OK);
        CHECK(repeat_eq(&p.repeat, &r));
    }
    /* replaced, and durable */
    CHECK_EQ(st->save_repeat(st->ctx, id, 8, ss_psk_of(id), NULL, 0, &r2),
             CJ_OK);
    b->close(db);
    db = ss_open(b);
    st = b->store(db);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &p), CJ_OK);
    CHECK(repeat_eq(&p.repeat, &r2));
    /* an empty cache clears it */
    CHECK_EQ(st->save_repeat(st->ctx, id, 8, ss_psk_of(id), NULL, 0, &none),
             CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &p), CJ_OK);
    CHECK(repeat_eq(&p.repeat, &none));
    /* a new ID Context starts without one */
    CHECK_EQ(st->save_repeat(st->ctx, id, 8, ss_psk_of(id), NULL, 0, &r2),
             CJ_OK);
    CHECK_EQ(st->save_context(st->ctx, id, 8, ss_psk_of(id), rctx, sizeof rctx),
             CJ_OK);
    CHECK_EQ(st->lookup_context(st->ctx, rctx, sizeof rctx, &p), CJ_OK);
    CHECK(repeat_eq(&p.repeat, &none));
    CHECK_EQ(st->save_repeat(st->ctx, id, 8, ss_psk_of(id), NULL, 0, &r2),
             CJ_ERR_NOTFOUND);
    CHECK_EQ(
        st->save_repeat(st->ctx, id, 8, ss_psk_of(id), rctx, sizeof rctx, &r),
        CJ_OK);
    CHECK_EQ(st->lookup_context(st->ctx, rctx, sizeof rctx, &p), CJ_OK);
    CHECK(repeat_eq(&p.repeat, &r));
    CHECK_EQ(st->lookup(st->ctx, id, 8, &p), CJ_OK);
    CHECK(repeat_eq(&p.repeat, &r));
    b->close(db);
    cleanup(b);
}

/* Schema 2 to 3: the pledges stay, without a repeat cache, and the
 * engine writes one. */
void ss_migration_2_to_3(const ss_backend_t *b)
{
    cj_jrc_repeat_t r;
    cj_jrc_pledge_t p;
    uint8_t id[8];
    void *db;

    b->fresh();
    db = ss_open(b);
    ss_add_n(b, db, 3);
    sql_exec(b, db, b->v2_sql);
    b->close(db);
    db = ss_open(b);
    CHECK_EQ(b->sql_int(db, "SELECT max(version) FROM schema_version"),
             b->schema_version);
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pledges"), 3);
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pledges"
                            " WHERE repeat_cache IS NULL"),
             3);
    ss_make_id(id, 2);
    repeat_fill(&r, 3, 30, 4);
    CHECK_EQ(b->store(db)->save_repeat(b->store(db)->ctx, id, 8, ss_psk_of(id),
                                       NULL, 0, &r),
             CJ_OK);
    CHECK_EQ(b->store(db)->lookup(b->store(db)->ctx, id, 8, &p), CJ_OK);
    CHECK(repeat_eq(&p.repeat, &r));
    b->close(db);
    cleanup(b);
}

/* The JRC crashes after committing an admission, before its answer
 * reached the pledge: a fresh engine over a new handle (a restart, or
 * another instance) answers the pledge's retransmission, relayed under a
 * new token, with the very same protected bytes from the store's repeat
 * cache.  The same bytes from another address get nothing, and a
 * different request with the same Partial IV is still a replay. */
void ss_jrc_restart_repeat(const ss_backend_t *b)
{
    static const uint8_t jr2[5] = {0xa1, 0x05, 0x42, 0xca, 0xff};
    static const cj_addr_t jp = {2, {0x0a, 0x01}};
    static const cj_addr_t elsewhere = {2, {0x0a, 0x07}};
    static cj_jrc_slot_t slots[4];
    static cj_jrc_t eng;
    static jm_pledge_t pl, snap;
    cj_jrc_cfg_t cfg;
    uint8_t msg[256], again[256], copy[256], forged[256];
    uint8_t obuf[512], first[512];
    size_t n, flen, tok_end;
    cj_coap_msg_t m;
    cj_out_t out;
    void *db;

    b->fresh();
    db = ss_open(b);
    ss_add_jm(b, db, 3);
    CHECK_EQ(jm_engine_init(&eng, &cfg, slots, 4, b->store(db), 0), CJ_OK);
    jm_pledge_init(&pl, 1);
    snap = pl;
    n = jm_request(&pl, msg, sizeof msg);
    CHECK(n > 0);
    memcpy(again, msg, n);
    memcpy(copy, msg, n);
    memset(&out, 0, sizeof out);
    out.buf = obuf;
    out.cap = sizeof obuf;
    if (b->begin)
        CHECK_EQ(b->begin(db), CJ_OK);
    CHECK_EQ(cj_jrc_input(&eng, 1000, &jp, msg, n, &out), 1);
    if (b->commit)
        CHECK_EQ(b->commit(db), CJ_OK);
    CHECK_EQ(out.event, CJ_JRC_EV_JOINED);
    flen = out.len;
    memcpy(first, out.buf, flen);
    /* the answer is lost with the JRC */
    b->close(db);

    db = ss_open(b);
    CHECK_EQ(jm_engine_init(&eng, &cfg, slots, 4, b->store(db), 0), CJ_OK);
    /* the JP relays the retransmission under a new token */
    CHECK_EQ(cj_coap_parse(&m, again, n), CJ_OK);
    tok_end = (size_t)(m.token + m.token_len - again);
    for (size_t i = 4; i < tok_end; i++)
        again[i] ^= 0x5a;
    CHECK_EQ(cj_jrc_input(&eng, 2000, &jp, again, n, &out), 1);
    CHECK_EQ(out.event, CJ_JRC_EV_NONE);
    CHECK_EQ(out.len, flen);
    CHECK_EQ(cj_coap_parse(&m, out.buf, out.len), CJ_OK);
    CHECK_EQ(m.token_len, 12);
    CHECK_MEM(m.token, m.token_len, again + 4, 12);
    CHECK_MEM(out.buf + tok_end, out.len - tok_end, first + tok_end,
              flen - tok_end);
    CHECK_EQ(eng.stats.repeats, 1);
    /* the pledge, which never saw the first answer, accepts it */
    CHECK(jm_open(&pl, out.buf, out.len) >= 0);
    /* from another address: nothing */
    memcpy(msg, copy, n);
    CHECK_EQ(cj_jrc_input(&eng, 2001, &elsewhere, msg, n, &out), 0);
    CHECK_EQ(out.len, 0);
    /* another request under the same Partial IV: a replay */
    n = jm_request_with(&snap, jr2, sizeof jr2, forged, sizeof forged);
    CHECK(n > 0);
    CHECK_EQ(cj_jrc_input(&eng, 2002, &jp, forged, n, &out), 0);
    CHECK_EQ(out.len, 0);
    CHECK_EQ(eng.stats.repeats, 1);
    CHECK_EQ(eng.stats.joins, 0);
    b->close(db);
    cleanup(b);
}

void ss_okm_kept_and_migrated(const ss_backend_t *b, const char *drop_v4_sql,
                              const char *bad_okm_sql)
{
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    uint8_t id[8], psk[16], okm[CJ_OSCORE_OKM_LEN];
    void *db;

    db = ss_start(b, 2, &st);
    ss_make_id(id, 1);
    ss_make_psk(psk, 1);
    CHECK_EQ(cj_jrc_pledge_okm(psk, id, 8, okm), CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
    CHECK(r.has_okm);
    CHECK(memcmp(r.okm, okm, sizeof okm) == 0);
    if (b->begin) {
        CHECK_EQ(b->begin(db), CJ_OK);
        memset(&r, 0, sizeof r);
        CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
        CHECK(r.has_okm && memcmp(r.okm, okm, sizeof okm) == 0);
        CHECK_EQ(b->commit(db), CJ_OK);
    }
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pledges WHERE length(okm) = 45"), 2);
    CHECK(b->sql_try(db, drop_v4_sql));
    b->close(db);
    db = ss_open(b);
    st = b->store(db);
    CHECK_EQ(b->sql_int(db, "SELECT max(version) FROM schema_version"),
             b->schema_version);
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pledges WHERE okm IS NULL"), 2);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
    CHECK(!r.has_okm);
    CHECK(!b->sql_try(db, bad_okm_sql));
    b->close(db);
    cleanup(b);
}

/* ---- a PSK per pledge (RFC 9031 section 3) --------------------------------- */

void ss_psk_per_pledge(const ss_backend_t *b)
{
    const cj_jrc_store_t *st;
    cj_jrc_pledge_t r;
    uint8_t id[8], psk[16], held[16];
    void *db;

    db = ss_start(b, 3, &st);
    /* pledge 1's PSK for another pledge: refused, nothing added */
    ss_make_psk(held, 1);
    ss_make_id(id, 7);
    CHECK_EQ(b->add(db, id, 8, held, CJ_JRC_ALLOW_NODE), CJ_ERR_PSK_REUSED);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_ERR_NOTFOUND);
    /* pledge 1 itself is already provisioned, whichever PSK comes with it */
    ss_make_id(id, 1);
    CHECK_EQ(b->add(db, id, 8, held, CJ_JRC_ALLOW_NODE), b->dup_id_err);
    ss_make_psk(psk, 9);
    CHECK_EQ(b->add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), b->dup_id_err);
    ss_make_psk(psk, 2);
    CHECK_EQ(b->add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), b->dup_id_err);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
    CHECK_MEM(r.psk, 16, held, 16);
    /* one bit off is another PSK */
    memcpy(psk, held, 16);
    psk[0] ^= 0x80;
    ss_make_id(id, 7);
    CHECK_EQ(b->add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
    CHECK_MEM(r.psk, 16, psk, 16);
    if (b->begin) {
        /* in a group transaction, which goes on after the refusal */
        CHECK_EQ(b->begin(db), CJ_OK);
        ss_make_id(id, 20);
        ss_make_psk(psk, 20);
        CHECK_EQ(b->add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
        ss_make_id(id, 21);
        CHECK_EQ(b->add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_ERR_PSK_REUSED);
        CHECK_EQ(b->add(db, id, 8, held, CJ_JRC_ALLOW_NODE), CJ_ERR_PSK_REUSED);
        ss_make_psk(psk, 21);
        CHECK_EQ(b->add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
        CHECK_EQ(b->commit(db), CJ_OK);
        CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_OK);
        CHECK_MEM(r.psk, 16, psk, 16);
        /* a pledge rolled back leaves its PSK free */
        CHECK_EQ(b->begin(db), CJ_OK);
        ss_make_id(id, 22);
        ss_make_psk(psk, 22);
        CHECK_EQ(b->add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
        CHECK_EQ(b->rollback(db), CJ_OK);
        ss_make_id(id, 23);
        CHECK_EQ(b->add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    }
    if (b->sql_try) {
        /* the database's own guarantee, whoever writes */
        CHECK(!b->sql_try(db, "UPDATE pledges SET psk = (SELECT psk FROM"
                              " pledges WHERE seq = 1) WHERE seq = 2"));
        CHECK_EQ(b->sql_int(db, "SELECT count(DISTINCT psk) FROM pledges"),
                 b->sql_int(db, "SELECT count(*) FROM pledges"));
    }
    /* and after a restart */
    b->close(db);
    db = ss_open(b);
    st = b->store(db);
    ss_make_id(id, 30);
    CHECK_EQ(b->add(db, id, 8, held, CJ_JRC_ALLOW_NODE), CJ_ERR_PSK_REUSED);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_ERR_NOTFOUND);
    b->close(db);
    cleanup(b);
}

/* "{id, id}" of ss pledges a..: the groups of the refusal's message. */
static void group_text(char *out, const unsigned *members, size_t n)
{
    uint8_t id[8];
    strcat(out, "{");
    for (size_t i = 0; i < n; i++) {
        char h[17];
        ss_make_id(id, members[i]);
        for (size_t k = 0; k < 8; k++)
            snprintf(h + 2 * k, 3, "%02x", id[k]);
        strcat(out, h);
        strcat(out, i + 1 < n ? ", " : "}");
    }
}

void ss_migration_4_to_5(const ss_backend_t *b)
{
    static const unsigned g1[2] = {1, 4}, g2[3] = {2, 3, 6};
    char why[512], want[512], *before, *after;
    size_t nb = 0, na = 0;
    uint8_t id[8], psk[16];
    void *db;

    /* every pledge with a PSK of its own: migrated, pledges kept */
    b->fresh();
    db = ss_open(b);
    ss_add_n(b, db, 4);
    sql_exec(b, db, b->v4_sql);
    CHECK_EQ(b->sql_int(db, "SELECT max(version) FROM schema_version"), 4);
    b->close(db);
    db = NULL;
    memset(why, 'x', sizeof why);
    CHECK_EQ(b->try_open_why(&db, why, sizeof why), CJ_OK);
    CHECK_EQ(why[0], '\0');
    CHECK_EQ(b->sql_int(db, "SELECT max(version) FROM schema_version"),
             b->schema_version);
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pledges"), 4);
    ss_make_id(id, 9);
    ss_make_psk(psk, 2);
    CHECK_EQ(b->add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_ERR_PSK_REUSED);
    b->close(db);
    cleanup(b);

    /* pledges 1 and 4 share a PSK, and so do 2, 3 and 6 */
    b->fresh();
    db = ss_open(b);
    ss_add_n(b, db, 7);
    share_psks(b, db);
    b->close(db);
    before = b->snapshot(&nb);
    CHECK(before != NULL);
    db = &db;
    CHECK_EQ(b->try_open_why(&db, why, sizeof why), CJ_ERR_PSK_REUSED);
    CHECK(db == NULL);
    strcpy(want, "pledges sharing a PSK: ");
    group_text(want, g1, 2);
    strcat(want, ", ");
    group_text(want, g2, 3);
    CHECK(strcmp(why, want) == 0);
    if (strcmp(why, want) != 0)
        fprintf(stderr, "  %s: got '%s'\n  want '%s'\n", b->name, why, want);
    /* never a PSK */
    for (unsigned i = 0; i < 7; i++) {
        char h[33];
        ss_make_psk(psk, i);
        for (size_t k = 0; k < 16; k++)
            snprintf(h + 2 * k, 3, "%02x", psk[k]);
        CHECK(strstr(why, h) == NULL);
    }
    /* the plain open is refused alike; the registry is as it was */
    db = &db;
    CHECK_EQ(b->try_open(&db), CJ_ERR_PSK_REUSED);
    CHECK(db == NULL);
    after = b->snapshot(&na);
    CHECK(after != NULL && na == nb && memcmp(after, before, nb) == 0);
    free(before);
    free(after);

    /* the operator removes all but one pledge of each group
     * (docs/operator.md): migrated, and they are provisioned again with
     * PSKs of their own */
    CHECK(b->sql_outside("DELETE FROM pledges WHERE seq IN (4, 5, 7)"));
    db = NULL;
    CHECK_EQ(b->try_open_why(&db, why, sizeof why), CJ_OK);
    CHECK_EQ(why[0], '\0');
    CHECK_EQ(b->sql_int(db, "SELECT max(version) FROM schema_version"),
             b->schema_version);
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pledges"), 4);
    for (unsigned i = 3; i <= 6; i += i == 4 ? 2 : 1) {
        ss_make_id(id, i);
        ss_make_psk(psk, 2);
        CHECK_EQ(b->add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_ERR_PSK_REUSED);
        ss_make_psk(psk, i);
        CHECK_EQ(b->add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    }
    CHECK_EQ(b->sql_int(db, "SELECT count(DISTINCT psk) FROM pledges"), 7);
    b->close(db);
    cleanup(b);
}

/* ---- PSK changes and removal (RFC 9031 section 3) -------------------- */

#define SS_HOUR_MS UINT64_C(3600000)

/* A PSK no fixture pledge holds. */
static void new_psk(uint8_t psk[16], unsigned tag)
{
    memset(psk, 0xd0, 16);
    psk[0] = (uint8_t)tag;
    psk[1] = (uint8_t)(tag >> 8);
}

/* What the store holds of pledge id, for "nothing changed" checks
 * (lookup's record, the okm and repeat cache included). */
static void rec_of(const cj_jrc_store_t *st, const uint8_t *id,
                   cj_jrc_pledge_t *r)
{
    memset(r, 0, sizeof *r);
    CHECK_EQ(st->lookup(st->ctx, id, 8, r), CJ_OK);
}

/* Pledge id as the engine leaves it after an admission: Partial IV 5
 * accepted, a sequence number block, a repeat cache, a lease on a short
 * id (lease_hours 0: no expiry) and the join record; its short id. */
static uint16_t admit(const cj_jrc_store_t *st, const uint8_t *id,
                      uint64_t now, uint32_t lease_hours)
{
    const uint8_t *psk = ss_psk_of(id);
    cj_oscore_replay_t w;
    cj_jrc_repeat_t rep;
    uint64_t first = 0;
    uint16_t s = 0;

    CHECK_EQ(st->accept_piv(st->ctx, id, 8, psk, NULL, 0, 5, &w), CJ_OK);
    CHECK_EQ(st->reserve_ssn(st->ctx, id, 8, psk, NULL, 0, 0, 32, &first),
             CJ_OK);
    ss_repeat_of(id[7], &rep);
    CHECK_EQ(st->save_repeat(st->ctx, id, 8, psk, NULL, 0, &rep), CJ_OK);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, now, lease_hours, false, &s),
             CJ_OK);
    CHECK_EQ(st->record_join(st->ctx, id, 8, CJ_COJP_ROLE_6LN, s, now),
             CJ_OK);
    return s;
}

/* Every store call naming the context of psk for pledge id (no
 * recovered ID Context) is refused. */
static void calls_refused(const cj_jrc_store_t *st, const uint8_t *id,
                          const uint8_t *psk)
{
    cj_oscore_replay_t w;
    cj_jrc_repeat_t rep;
    uint64_t first = 0;
    static const uint8_t ctx[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

    ss_repeat_of(0x33, &rep);
    CHECK_EQ(st->reserve_ssn(st->ctx, id, 8, psk, NULL, 0, 900, 1, &first),
             CJ_ERR_NOTFOUND);
    CHECK_EQ(st->accept_piv(st->ctx, id, 8, psk, NULL, 0, 900, &w),
             CJ_ERR_NOTFOUND);
    CHECK_EQ(st->save_repeat(st->ctx, id, 8, psk, NULL, 0, &rep),
             CJ_ERR_NOTFOUND);
    CHECK_EQ(st->save_context(st->ctx, id, 8, psk, ctx, sizeof ctx),
             CJ_ERR_NOTFOUND);
}

/* The same for a pledge that holds another PSK now: nothing changes. */
static void old_context_refused(const cj_jrc_store_t *st, const uint8_t *id,
                                const uint8_t *psk)
{
    cj_jrc_pledge_t before, after;

    rec_of(st, id, &before);
    calls_refused(st, id, psk);
    rec_of(st, id, &after);
    CHECK(memcmp(&before, &after, sizeof before) == 0);
}

/* The record of pledge id right after it got psk: as just provisioned,
 * with the short id s still its own. */
static void fresh_record(const cj_jrc_store_t *st, const uint8_t *id,
                         const uint8_t *psk, uint16_t s, bool sql)
{
    cj_jrc_pledge_t r;
    uint8_t okm[CJ_OSCORE_OKM_LEN];

    rec_of(st, id, &r);
    CHECK_MEM(r.psk, 16, psk, 16);
    CHECK_EQ(r.ssn_reserved, 0);
    CHECK(!r.replay.valid);
    CHECK_EQ(r.replay.highest, 0);
    CHECK_EQ(r.replay.bitmap, 0);
    CHECK_EQ(r.repeat.req_len, 0);
    CHECK_EQ(r.id_context_len, 0);
    CHECK(!r.joined);
    CHECK_EQ(r.short_id, s);
    CHECK_EQ(r.allowed_roles, CJ_JRC_ALLOW_NODE);
    /* the registries keep the derived material: that of the new PSK */
    CHECK(r.has_okm == sql);
    CHECK_EQ(cj_jrc_pledge_okm(psk, id, 8, okm), CJ_OK);
    if (r.has_okm)
        CHECK_MEM(r.okm, sizeof okm, okm, sizeof okm);
}

void ss_set_psk(const ss_backend_t *b)
{
    const cj_jrc_store_t *st;
    const bool sql = b->sql_int != NULL;
    uint8_t id[8], other[8], psk[16], old[16], psk2[16];
    static const uint8_t rctx[12] = {0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    cj_jrc_pledge_t before, r;
    cj_oscore_replay_t w;
    uint64_t cur = 0, first = 0;
    uint16_t s, s2 = 0;
    void *db;

    db = ss_start(b, 5, &st);
    ss_make_id(id, 1);
    memcpy(old, ss_psk_of(id), 16);
    s = admit(st, id, 1000, 0);
    rec_of(st, id, &before);
    CHECK(before.joined && before.replay.valid && before.ssn_reserved == 32);

    /* refused, nothing changes: unknown pledge, another pledge's PSK,
     * its own PSK (a "new" context under the old keys would start its
     * sequence numbers at 0 again) */
    new_psk(psk, 1);
    CHECK_EQ(b->set_psk(db, ss_nobody, 8, psk), CJ_ERR_NOTFOUND);
    ss_make_id(other, 2);
    CHECK_EQ(b->set_psk(db, id, 8, ss_psk_of(other)), CJ_ERR_PSK_REUSED);
    CHECK_EQ(b->set_psk(db, id, 8, old), CJ_ERR_PSK_REUSED);
    rec_of(st, id, &r);
    CHECK(memcmp(&before, &r, sizeof r) == 0);

    /* the change: the old context is gone, the lease stays */
    CHECK_EQ(b->set_psk(db, id, 8, psk), CJ_OK);
    fresh_record(st, id, psk, s, sql);
    old_context_refused(st, id, old);
    CHECK_EQ(st->next_joined(st->ctx, &cur, &r), CJ_ERR_NOTFOUND);
    /* the id stays reserved to it: nobody else gets it, it gets it back */
    if (b->set_cursor)
        b->set_cursor(db, s);
    CHECK_EQ(st->assign_short_id(st->ctx, other, 8, 2000, 0, false, &s2),
             CJ_OK);
    CHECK(s2 != s);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, 3000, 0, false, &s2), CJ_OK);
    CHECK_EQ(s2, s);
    /* the new context works as a new pledge's does */
    CHECK_EQ(st->accept_piv(st->ctx, id, 8, psk, NULL, 0, 0, &w), CJ_OK);
    CHECK_EQ(st->reserve_ssn(st->ctx, id, 8, psk, NULL, 0, 0, 1, &first),
             CJ_OK);
    CHECK_EQ(first, 0);

    /* the old PSK is retired: for this pledge, another, a new one */
    new_psk(psk2, 2);
    CHECK_EQ(b->set_psk(db, id, 8, old), CJ_ERR_PSK_REUSED);
    CHECK_EQ(b->set_psk(db, other, 8, old), CJ_ERR_PSK_REUSED);
    ss_make_id(other, 40);
    CHECK_EQ(b->add(db, other, 8, old, CJ_JRC_ALLOW_NODE), CJ_ERR_PSK_REUSED);
    CHECK_EQ(st->lookup(st->ctx, other, 8, &r), CJ_ERR_NOTFOUND);
    CHECK_EQ(b->add(db, other, 8, psk2, CJ_JRC_ALLOW_NODE), CJ_OK);
    if (b->import_csv) {
        /* an import naming it on its second line imports nothing */
        const uint8_t *cells[4];
        char csv[256], *o = csv;
        size_t bad = 0, count = 7;
        uint8_t id41[8], id42[8], psk41[16];

        ss_make_id(id41, 41);
        ss_make_id(id42, 42);
        new_psk(psk41, 41);
        cells[0] = id41;
        cells[1] = psk41;
        cells[2] = id42;
        cells[3] = old;
        for (int k = 0; k < 4; k++) {
            for (size_t n = 0; n < (k % 2 ? 16u : 8u); n++)
                o += sprintf(o, "%02x", cells[k][n]);
            *o++ = k % 2 ? '\n' : ',';
        }
        *o = '\0';
        CHECK_EQ(b->import_csv(db, csv, strlen(csv), &bad, &count),
                 CJ_ERR_PSK_REUSED);
        CHECK_EQ(bad, 2);
        CHECK_EQ(st->lookup(st->ctx, id41, 8, &r), CJ_ERR_NOTFOUND);
    }

    /* a recovered ID Context ends with the old PSK */
    ss_make_id(other, 3);
    CHECK_EQ(st->save_context(st->ctx, other, 8, ss_psk_of(other), rctx,
                              sizeof rctx),
             CJ_OK);
    new_psk(psk2, 3);
    CHECK_EQ(b->set_psk(db, other, 8, psk2), CJ_OK);
    fresh_record(st, other, psk2, 0, sql);
    CHECK_EQ(st->lookup_context(st->ctx, rctx, sizeof rctx, &r),
             CJ_ERR_NOTFOUND);

    if (b->begin) {
        /* inside a group transaction, behind an admission's deferred
         * writes to the same row: they land first, then the change */
        ss_make_id(other, 4);
        CHECK_EQ(b->begin(db), CJ_OK);
        CHECK_EQ(st->lookup(st->ctx, other, 8, &r), CJ_OK);
        CHECK_EQ(st->accept_piv(st->ctx, other, 8, ss_psk_of(other), NULL, 0,
                                7, &w),
                 CJ_OK);
        new_psk(psk2, 4);
        CHECK_EQ(b->set_psk(db, other, 8, psk2), CJ_OK);
        CHECK_EQ(st->accept_piv(st->ctx, other, 8, ss_psk_of(other), NULL, 0,
                                8, &w),
                 CJ_ERR_NOTFOUND);
        CHECK_EQ(st->accept_piv(st->ctx, other, 8, psk2, NULL, 0, 3, &w),
                 CJ_OK);
        CHECK_EQ(b->commit(db), CJ_OK);
        rec_of(st, other, &r);
        CHECK_MEM(r.psk, 16, psk2, 16);
        CHECK_EQ(r.replay.highest, 3);
        /* rolled back: the PSK and the state as they were */
        CHECK_EQ(b->begin(db), CJ_OK);
        new_psk(psk, 5);
        CHECK_EQ(b->set_psk(db, other, 8, psk), CJ_OK);
        CHECK_EQ(b->rollback(db), CJ_OK);
        rec_of(st, other, &before);
        CHECK_MEM(before.psk, 16, psk2, 16);
        CHECK_EQ(before.replay.highest, 3);
        CHECK_EQ(b->set_psk(db, other, 8, psk), CJ_OK); /* not retired */
    }

    /* durable */
    b->close(db);
    db = ss_open(b);
    st = b->store(db);
    ss_make_id(id, 1);
    new_psk(psk, 1);
    rec_of(st, id, &r);
    CHECK_MEM(r.psk, 16, psk, 16);
    CHECK_EQ(b->add(db, ss_nobody, 8, old, CJ_JRC_ALLOW_NODE),
             CJ_ERR_PSK_REUSED);
    b->close(db);
    cleanup(b);
}

void ss_remove(const ss_backend_t *b)
{
    const cj_jrc_store_t *st;
    uint8_t id[8], other[8], psk[16], old[16];
    cj_jrc_pledge_t r;
    uint64_t cur = 0;
    uint16_t s, s2 = 0;
    void *db;

    db = ss_start(b, 4, &st);
    ss_make_id(id, 1);
    memcpy(old, ss_psk_of(id), 16);
    s = admit(st, id, 1000, 1); /* leased for an hour */
    CHECK_EQ(st->record_update(st->ctx, id, 8, 3, true), CJ_OK);

    CHECK_EQ(b->remove(db, ss_nobody, 8, 2000), CJ_ERR_NOTFOUND);
    /* the lease lives: the device may still use the id */
    CHECK_EQ(b->remove(db, id, 8, 1000 + SS_HOUR_MS - 1), CJ_ERR_STATE);
    rec_of(st, id, &r);
    CHECK(r.joined);
    /* once it ended, the pledge goes */
    CHECK_EQ(b->remove(db, id, 8, 1000 + SS_HOUR_MS), CJ_OK);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_ERR_NOTFOUND);
    CHECK_EQ(b->remove(db, id, 8, 1000 + SS_HOUR_MS), CJ_ERR_NOTFOUND);
    calls_refused(st, id, old);
    CHECK_EQ(st->next_joined(st->ctx, &cur, &r), CJ_ERR_NOTFOUND);
    if (b->sql_int)
        CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM updates"), 0);
    /* its short id is free */
    ss_make_id(other, 2);
    if (b->set_cursor)
        b->set_cursor(db, s);
    CHECK_EQ(st->assign_short_id(st->ctx, other, 8, 1000 + SS_HOUR_MS, 0,
                                 false, &s2),
             CJ_OK);
    if (b->set_cursor)
        CHECK_EQ(s2, s);
    /* no expiry: only an eviction (release) ends it */
    CHECK_EQ(b->remove(db, other, 8, UINT64_C(1) << 50), CJ_ERR_STATE);
    CHECK_EQ(st->release(st->ctx, other, 8), CJ_OK);
    CHECK_EQ(b->remove(db, other, 8, 0), CJ_OK);
    /* never provisioned or never leased: goes at once */
    ss_make_id(other, 3);
    CHECK_EQ(b->remove(db, other, 8, 0), CJ_OK);

    /* the id comes back, not with its old PSK */
    CHECK_EQ(b->add(db, id, 8, old, CJ_JRC_ALLOW_NODE), CJ_ERR_PSK_REUSED);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_ERR_NOTFOUND);
    new_psk(psk, 9);
    CHECK_EQ(b->add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    fresh_record(st, id, psk, 0, b->sql_int != NULL);
    old_context_refused(st, id, old);
    CHECK_EQ(b->set_psk(db, other, 8, old), CJ_ERR_NOTFOUND);
    ss_make_id(other, 0);
    CHECK_EQ(b->set_psk(db, other, 8, old), CJ_ERR_PSK_REUSED);

    if (b->begin) {
        /* rolled back: still there */
        ss_make_id(other, 0);
        CHECK_EQ(b->begin(db), CJ_OK);
        CHECK_EQ(b->remove(db, other, 8, 0), CJ_OK);
        CHECK_EQ(b->rollback(db), CJ_OK);
        CHECK_EQ(st->lookup(st->ctx, other, 8, &r), CJ_OK);
    }
    b->close(db);
    cleanup(b);
}

/* Pledges 0..6 at schema 4, with 1 and 4 sharing a PSK, and 2, 3 and 6
 * another; pledge 5 holds a live lease on a short id. */
static void shared_registry(const ss_backend_t *b)
{
    const cj_jrc_store_t *st;
    uint8_t id[8];
    void *db;

    db = ss_start(b, 7, &st);
    ss_make_id(id, 5);
    (void)admit(st, id, 1000, 0);
    share_psks(b, db);
    b->close(db);
}

/* A repair that cannot be made changes nothing. */
static void repair_refused(const ss_backend_t *b, unsigned who,
                           const uint8_t *psk, int want)
{
    char why[256], *before, *after;
    size_t nb = 0, na = 0;
    bool up = true;
    uint8_t id[8];

    before = b->snapshot(&nb);
    CHECK(before != NULL);
    ss_make_id(id, who);
    CHECK_EQ(b->repair(id, 8, psk, 2000, &up, why, sizeof why), want);
    CHECK(!up);
    after = b->snapshot(&na);
    CHECK(after != NULL && na == nb && memcmp(after, before, nb) == 0);
    free(before);
    free(after);
}

void ss_repair(const ss_backend_t *b)
{
    static const unsigned g2[3] = {2, 3, 6}, g3[2] = {2, 3};
    const cj_jrc_store_t *st;
    char why[512], want[512];
    uint8_t id[8], psk[16], shared[16];
    cj_jrc_pledge_t r;
    bool up = true;
    void *db;

    b->fresh();
    shared_registry(b);
    ss_make_id(id, 1);
    memcpy(shared, ss_psk_of(id), 16);

    /* refused, nothing changes: unknown pledge, a PSK held, a live lease */
    new_psk(psk, 1);
    repair_refused(b, 99, psk, CJ_ERR_NOTFOUND);
    repair_refused(b, 4, ss_psk_of(id), CJ_ERR_PSK_REUSED);
    ss_make_id(id, 0);
    repair_refused(b, 4, ss_psk_of(id), CJ_ERR_PSK_REUSED);
    repair_refused(b, 5, NULL, CJ_ERR_STATE);

    /* pledge 4 gets a PSK of its own: {1, 4} is gone, the file stays at
     * schema 4 and still refuses to open, naming what is left */
    ss_make_id(id, 4);
    CHECK_EQ(b->repair(id, 8, psk, 2000, &up, why, sizeof why), CJ_OK);
    CHECK(!up);
    strcpy(want, "pledges sharing a PSK: ");
    group_text(want, g2, 3);
    CHECK(strcmp(why, want) == 0);
    if (strcmp(why, want) != 0)
        fprintf(stderr, "  %s: got '%s'\n  want '%s'\n", b->name, why, want);
    db = &db;
    CHECK_EQ(b->try_open_why(&db, why, sizeof why), CJ_ERR_PSK_REUSED);
    CHECK(db == NULL);
    CHECK(strcmp(why, want) == 0);

    /* pledge 6 removed: {2, 3} left */
    ss_make_id(id, 6);
    CHECK_EQ(b->repair(id, 8, NULL, 2000, &up, why, sizeof why), CJ_OK);
    CHECK(!up);
    strcpy(want, "pledges sharing a PSK: ");
    group_text(want, g3, 2);
    CHECK(strcmp(why, want) == 0);
    /* a PSK already given by a repair is refused to the next */
    ss_make_id(id, 3);
    repair_refused(b, 3, psk, CJ_ERR_PSK_REUSED);

    /* pledge 3 gets one: the last share is gone, the file upgraded */
    new_psk(psk, 3);
    CHECK_EQ(b->repair(id, 8, psk, 2000, &up, why, sizeof why), CJ_OK);
    CHECK(up);
    CHECK_EQ(why[0], '\0');
    db = NULL;
    CHECK_EQ(b->try_open(&db), CJ_OK);
    st = b->store(db);
    CHECK_EQ(b->sql_int(db, "SELECT max(version) FROM schema_version"),
             b->schema_version);
    CHECK_EQ(b->sql_int(db, "SELECT count(*) FROM pledges"), 6);
    CHECK_EQ(b->sql_int(db, "SELECT count(DISTINCT psk) FROM pledges"), 6);
    fresh_record(st, id, psk, 0, true);
    ss_make_id(id, 4);
    new_psk(psk, 1);
    fresh_record(st, id, psk, 0, true);
    ss_make_id(id, 6);
    CHECK_EQ(st->lookup(st->ctx, id, 8, &r), CJ_ERR_NOTFOUND);
    /* the PSKs that left a pledge during the repair are retired: pledge
     * 1 gives its (once shared) PSK up, nobody gets it back */
    ss_make_id(id, 1);
    new_psk(psk, 7);
    CHECK_EQ(b->set_psk(db, id, 8, psk), CJ_OK);
    ss_make_id(id, 20);
    CHECK_EQ(b->add(db, id, 8, shared, CJ_JRC_ALLOW_NODE), CJ_ERR_PSK_REUSED);
    b->close(db);

    /* a registry that needs no repair: migrated, then changed */
    ss_make_id(id, 2);
    new_psk(psk, 8);
    CHECK_EQ(b->repair(id, 8, psk, 2000, &up, why, sizeof why), CJ_OK);
    CHECK(up);
    db = ss_open(b);
    st = b->store(db);
    fresh_record(st, id, psk, 0, true);
    b->close(db);
    cleanup(b);
}
