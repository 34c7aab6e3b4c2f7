/*
 * node.h - a pledge engine driven over a UDP socket, shared by
 * `cojp pledge` and by `cojp proxy --id/--psk` (a Join Proxy is itself a
 * joined node).  It joins through one Join Proxy candidate, logs every
 * outcome, and once joined answers parameter updates (RFC 9031 section
 * 8.2) arriving on the same socket.
 *
 * Persistent OSCORE state (sender sequence number mark, replay window,
 * recovery nonces) lives in the counters of a platform_posix state file
 * (--state FILE, layout in cojp/pledge.h, counter_base 0), so a restarted
 * node never reuses a nonce.  Without a state file it lives in memory and
 * the node must not be restarted with the same PSK.
 *
 * Key switch: a host with a radio reports frames verified under a new
 * key with cj_pledge_rx_used(); these hosts have no radio, so right after
 * an update that installed a new key set the node reports the set's key
 * ids as used, which switches outgoing traffic to it at once (section
 * 8.4.3.2 then keeps the old set for reception during the guard time).
 */
#ifndef COJP_HOST_NODE_H
#define COJP_HOST_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cojp/pledge.h"
#include "port/platform_posix.h"

typedef struct cj_node cj_node_t;
/* Called for every engine event (CJ_PLEDGE_EV_*) after it was logged. */
typedef void (*cj_node_event_fn)(void *arg, cj_node_t *n, int ev,
                                 uint64_t now);

struct cj_node {
    cj_pledge_t eng;
    cj_posix_platform_t pf;
    uint8_t id[CJ_OSCORE_MAX_ID_CONTEXT];
    size_t id_len;
    int fd;
    cj_node_event_fn on_event;
    void *arg;
    uint64_t joined_at; /* monotonic ms of the last JOINED */
    unsigned long updates, rejected, timeouts;
    uint8_t obuf[1280];
};

/* The command-line options of a node, shared by `cojp pledge` and
 * `cojp proxy`: --id, --psk or --okm, --network-id and --state.  The
 * command's getopt_long table gives them the values 'i', 'k', 'o', 'n'
 * and 's'. */
typedef struct cj_node_args {
    uint8_t id[8];
    uint8_t psk[16];
    uint8_t okm[CJ_OSCORE_OKM_LEN]; /* --okm: the context instead of the PSK */
    uint8_t netid[CJ_PLEDGE_MAX_NETID];
    int id_len, psk_len, okm_len, netid_len; /* 0: not given */
    const char *state;                       /* NULL: not given */
} cj_node_args_t;

/* Take getopt_long result c with argument arg into a when it is one of
 * the node's options: true, with *rc 0, or CJ_EXIT_USAGE after the
 * one-line error for cmd ("cojp pledge").  False, a untouched and *rc 0,
 * for any other option. */
bool cj_node_arg(cj_node_args_t *a, int c, const char *arg, const char *cmd,
                 int *rc);

/* Set up (pf loaded from state_path, which may be NULL) with psk, or the
 * derived context okm when not NULL.  Returns CJ_OK,
 * CJ_ERR_STORAGE (state file unreadable) or another engine error. */
/* The secret of a node's arguments: a PSK, or (a non-NULL *okm) its
 * derived context (RFC 9031 Appendix B); exactly one must be given.
 * CJ_EXIT_USAGE after the one-line error for cmd, else 0. */
int cj_node_secret(const cj_node_args_t *a, const char *cmd,
                   const uint8_t **okm);

int cj_node_init(cj_node_t *n, const uint8_t *id, size_t id_len,
                 const uint8_t psk[16], const uint8_t *okm, uint8_t role,
                 const char *state_path,
                 const uint8_t *network_id, size_t network_id_len,
                 const cj_addr_t *jp, int fd);
int cj_node_start(cj_node_t *n, uint64_t now);
/* A datagram for the engine (buf is modified). */
void cj_node_input(cj_node_t *n, uint64_t now, const cj_addr_t *from,
                   uint8_t *buf, size_t len);
/* Run due timers; returns the next deadline. */
uint64_t cj_node_poll(cj_node_t *n, uint64_t now);

/* The installed configuration as the one JSON object of `cojp pledge
 * --json` (docs/operator.md), followed by a newline. */
void cj_node_print_json(const cj_node_t *n, FILE *f, uint64_t now);

#endif
