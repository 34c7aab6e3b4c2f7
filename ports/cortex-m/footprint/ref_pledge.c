/*
 * Footprint reference program for the pledge library: calls every public
 * entry point of cojp/pledge.h once, so that a --gc-sections link keeps
 * exactly the code a pledge firmware needs (codecs reached from the
 * engine, the engine itself).  Linked by scripts/footprint.sh, never run.
 * Inputs come through volatile pointers so nothing is folded away.
 */
#include <stddef.h>
#include <stdint.h>

#include "cojp/pledge.h"

int main(void);

static cj_pledge_t pledge;
static uint8_t buf[CJ_PLEDGE_TX_MAX];
static cj_platform_t platform;
static cj_pledge_cfg_t cfg;
static cj_addr_t addr;

/* Opaque to the optimiser. */
static void *volatile sink;
static volatile uint64_t now;
static volatile size_t len;

int main(void)
{
    cj_out_t out = {buf, sizeof buf, 0, {0, {0}}, 0};
    const cj_pledge_key_t *keys;
    uint8_t sid[2];
    uint64_t expiry;
    size_t nid;
    int acc = 0;

    acc += cj_pledge_init(&pledge, &cfg, &platform);
    acc += cj_pledge_add_jp(&pledge, &addr, buf, len);
    acc += cj_pledge_remove_jp(&pledge, &addr);
    acc += cj_pledge_start(&pledge, now);
    acc += cj_pledge_input(&pledge, now, &addr, buf, len, &out);
    acc += cj_pledge_poll(&pledge, now, &out);
    acc += (int)cj_pledge_next_timer(&pledge);
    sink = (void *)cj_pledge_tx_key(&pledge, CJ_PLEDGE_K2);
    sink = (void *)cj_pledge_rx_key(&pledge, (uint8_t)len);
    acc += cj_pledge_rx_used(&pledge, now, (uint8_t)len, &out);
    acc += (int)cj_pledge_get_state(&pledge);
    acc += (int)cj_pledge_keys(&pledge, &keys);
    sink = (void *)keys;
    acc += cj_pledge_short_id(&pledge, sid, &expiry);
    sink = (void *)cj_pledge_jrc_address(&pledge);
    acc += (int)cj_pledge_join_rate(&pledge);
    acc += (int)cj_pledge_blacklist_count(&pledge);
    acc += cj_pledge_is_blacklisted(&pledge, buf, len);
    sink = (void *)cj_pledge_network_id(&pledge, &nid);
    sink = (void *)cj_pledge_joined_jp(&pledge);
    return acc + (int)nid + sid[0] + (int)expiry;
}
