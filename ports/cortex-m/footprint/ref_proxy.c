/*
 * Footprint reference program for the Join Proxy engine: calls every
 * public entry point of cojp/proxy.h once (see ref_pledge.c).  Linked by
 * scripts/footprint.sh, never run.
 */
#include <stddef.h>
#include <stdint.h>

#include "cojp/proxy.h"

int main(void);

static cj_proxy_t proxy;
static uint8_t buf[CJ_PROXY_MAX_MSG], ackbuf[CJ_PROXY_ACK_LEN];
static cj_proxy_cfg_t cfg;
static cj_addr_t addr;

static volatile uint64_t now;
static volatile size_t len;
static volatile uint32_t rate;

int main(void)
{
    cj_out_t out = {buf, sizeof buf, 0, {0, {0}}, 0};
    cj_out_t ack = {ackbuf, sizeof ackbuf, 0, {0, {0}}, 0};
    const uint8_t *ids[1] = {buf};
    size_t lens[1] = {8};
    int acc = 0;

    acc += cj_proxy_init(&proxy, &cfg, NULL);
    acc += cj_proxy_set_blacklist(&proxy, ids, lens, len);
    cj_proxy_set_join_rate(&proxy, rate);
    cj_proxy_set_jrc(&proxy, &addr);
    acc += cj_proxy_input_pledge(&proxy, now, &addr, buf, len, &out);
    acc += cj_proxy_input_jrc(&proxy, now, &addr, buf, len, &out, &ack);
    acc += cj_proxy_for_node(buf, len);
    return acc;
}
