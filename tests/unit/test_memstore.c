/*
 * The in-memory JRC store (cojp/jrc_memstore.h) through the store
 * conformance suite (store_suite.h), where its semantics are meant to be
 * those of the database stores: short-id allocation against a model of
 * live leases, the Partial IV window, state kept over a simulated JRC
 * restart, and the JRC engine admitting an RFC 9031 Appendix A pledge.
 * The database stores are compared call by call with this one in
 * test_sqlite.c and test_pg.c.
 */
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
