/*
 * The in-memory JRC store (cojp/jrc_memstore.h) through the store
 * conformance suite (store_suite.h), where its semantics are meant to be
 * those of the database stores: short-id allocation against a model of
 * live leases, the Partial IV window, state kept over a simulated JRC
 * restart, and the JRC engine admitting an RFC 9031 Appendix A pledge.
 * The database stores are compared call by call with this one in
 * test_sqlite.c and test_pg.c.  What only the memstore has (its
 * provisioning calls and fault injection) is tested last.
 */
#include "cojp/jrc_memstore.h"
#include "store_suite.h"
#include "../test.h"

TEST(memstore_short_ids_unique_2000_with_expiry)
{
    ss_short_ids_model(&ss_memstore);
}

TEST(memstore_short_ids_batch_run) { ss_short_ids_batch_run(&ss_memstore); }
TEST(memstore_accept_piv_window) { ss_accept_piv_window(&ss_memstore); }
TEST(memstore_durable_across_reopen) { ss_durable_across_reopen(&ss_memstore); }
TEST(memstore_jrc_admission) { ss_jrc_admission(&ss_memstore); }
TEST(memstore_repeat_cache) { ss_repeat_cache(&ss_memstore); }
TEST(memstore_jrc_restart_repeats_answer)
{
    ss_jrc_restart_repeat(&ss_memstore);
}
TEST(memstore_psk_per_pledge) { ss_psk_per_pledge(&ss_memstore); }

/* The memstore's own contract (cojp/jrc_memstore.h and the store
 * interface of cojp/jrc.h): provisioning refuses bad ids, duplicate ids,
 * a PSK another pledge holds and a full array; what is not there is
 * CJ_ERR_NOTFOUND; an injected failure is CJ_ERR_STORAGE; and a refused
 * call changes nothing. */
TEST(memstore_refusals_change_nothing)
{
    static cj_jrc_mementry_t ents[2];
    static cj_jrc_memstore_t m;
    static const uint8_t id0[8] = {0, 1, 2, 3, 4, 5, 6, 0};
    static const uint8_t id1[8] = {0, 1, 2, 3, 4, 5, 6, 1};
    static const uint8_t id2[8] = {0, 1, 2, 3, 4, 5, 6, 2};
    static const uint8_t other_ctx[16] = {9};
    uint8_t long_ctx[CJ_OSCORE_MAX_ID_CONTEXT + 1];
    uint8_t psk[16];
    cj_jrc_store_t *st = &m.store;
    cj_jrc_mementry_t *e;
    cj_jrc_pledge_t rec;
    cj_jrc_repeat_t rp;
    cj_oscore_replay_t w;
    cj_addr_t a = {2, {0x0a, 0x01}};
    uint64_t first = 0;

    memset(psk, 0x11, sizeof psk);
    memset(long_ctx, 0x22, sizeof long_ctx);
    cj_jrc_memstore_init(&m, ents, 2);
    CHECK_EQ(cj_jrc_memstore_add(&m, id0, 0, psk, CJ_JRC_ALLOW_NODE),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_jrc_memstore_add(&m, id0, CJ_JRC_MAX_ID + 1, psk,
                                 CJ_JRC_ALLOW_NODE),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_jrc_memstore_add(&m, id0, 8, NULL, CJ_JRC_ALLOW_NODE),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_jrc_memstore_add(&m, id0, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    CHECK_EQ(cj_jrc_memstore_add(&m, id0, 8, psk, CJ_JRC_ALLOW_NODE),
             CJ_ERR_INVALID);
    /* a PSK another pledge holds (RFC 9031 section 3) */
    CHECK_EQ(cj_jrc_memstore_add(&m, id1, 8, psk, CJ_JRC_ALLOW_NODE),
             CJ_ERR_PSK_REUSED);
    CHECK_EQ(m.count, 1);
    CHECK(cj_jrc_memstore_find(&m, id1, 8) == NULL);
    psk[15] ^= 1;
    CHECK_EQ(cj_jrc_memstore_add(&m, id1, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    psk[15] ^= 2;
    CHECK_EQ(cj_jrc_memstore_add(&m, id2, 8, psk, CJ_JRC_ALLOW_NODE),
             CJ_ERR_NOSPACE);
    CHECK_EQ(m.count, 2);
    CHECK(cj_jrc_memstore_find(&m, id2, 8) == NULL);
    CHECK_EQ(cj_jrc_memstore_set_address(&m, id2, 8, &a), CJ_ERR_NOTFOUND);
    CHECK_EQ(st->lookup(st->ctx, id2, 8, &rec), CJ_ERR_NOTFOUND);
    CHECK_EQ(cj_jrc_memstore_outcome(&m, id0, 8, 1), CJ_ERR_NOTFOUND);
    CHECK_EQ(cj_jrc_memstore_outcome(&m, id2, 8, 1), CJ_ERR_NOTFOUND);

    /* no recovered context anywhere: none matches, not even an empty one */
    CHECK_EQ(st->lookup_context(st->ctx, other_ctx, 0, &rec), CJ_ERR_NOTFOUND);
    CHECK_EQ(st->lookup_context(st->ctx, other_ctx, 16, &rec),
             CJ_ERR_NOTFOUND);
    m.fail_mask = 1u << CJ_MEMSTORE_OP_LOOKUP_CONTEXT;
    m.fail_count = 1;
    CHECK_EQ(st->lookup_context(st->ctx, other_ctx, 16, &rec), CJ_ERR_STORAGE);
    CHECK_EQ(m.fail_count, 0);
    CHECK_EQ(m.calls[CJ_MEMSTORE_OP_LOOKUP_CONTEXT], 3);

    e = cj_jrc_memstore_find(&m, id0, 8);
    /* a block that would run past 2^64 */
    CHECK_EQ(st->reserve_ssn(st->ctx, id0, 8, e->rec.psk, NULL, 0,
                             UINT64_MAX - 1, 5, &first),
             CJ_ERR_RANGE);
    CHECK_EQ(e->rec.ssn_reserved, 0);
    /* calls naming an ID Context the record does not hold */
    CHECK_EQ(st->reserve_ssn(st->ctx, id0, 8, e->rec.psk, other_ctx, 16, 0, 5,
                             &first),
             CJ_ERR_NOTFOUND);
    CHECK_EQ(e->rec.ssn_reserved, 0);
    CHECK_EQ(st->accept_piv(st->ctx, id0, 8, e->rec.psk, other_ctx, 16, 7, &w),
             CJ_ERR_NOTFOUND);
    CHECK(!e->rec.replay.valid);
    /* an ID Context longer than OSCORE allows */
    CHECK_EQ(st->save_context(st->ctx, id0, 8, e->rec.psk, long_ctx,
                              sizeof long_ctx),
             CJ_ERR_INVALID);
    CHECK_EQ(e->rec.id_context_len, 0);
    /* repeat caches no engine could have written */
    memset(&rp, 0, sizeof rp);
    rp.req_len = 4;
    rp.req_opt_len = 2;
    rp.resp_len = 3;
    CHECK_EQ(st->save_repeat(st->ctx, id0, 8, e->rec.psk, NULL, 0, &rp), CJ_OK);
    CHECK_EQ(e->rec.repeat.req_len, 4);
    rp.req_opt_len = 5;
    CHECK_EQ(st->save_repeat(st->ctx, id0, 8, e->rec.psk, NULL, 0, &rp),
             CJ_ERR_INVALID);
    rp.req_opt_len = 2;
    rp.resp_len = sizeof rp.resp + 1;
    CHECK_EQ(st->save_repeat(st->ctx, id0, 8, e->rec.psk, NULL, 0, &rp),
             CJ_ERR_INVALID);
    rp.resp_len = 3;
    rp.from.len = CJ_ADDR_MAX + 1;
    CHECK_EQ(st->save_repeat(st->ctx, id0, 8, e->rec.psk, NULL, 0, &rp),
             CJ_ERR_INVALID);
    CHECK_EQ(st->save_repeat(st->ctx, id0, 8, e->rec.psk, NULL, 0, NULL),
             CJ_ERR_INVALID);
    CHECK_EQ(e->rec.repeat.req_len, 4);
    CHECK_EQ(e->rec.repeat.req_opt_len, 2);
    CHECK_EQ(e->rec.repeat.resp_len, 3);
}
TEST(memstore_set_psk) { ss_set_psk(&ss_memstore); }
TEST(memstore_remove) { ss_remove(&ss_memstore); }
