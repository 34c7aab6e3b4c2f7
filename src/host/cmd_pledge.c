/*
 * cojp pledge - join a network through a Join Proxy over UDP; optionally
 * stay up as a joined node answering parameter updates (--serve).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cojp/crypto.h"
#include "loop.h"
#include "net.h"
#include "node.h"
#include "util.h"

#define CMD "cojp pledge"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cojp pledge --id HEX --psk HEX|--okm HEX --proxy ADDR [--state FILE]\n"
            "                   [--network-id HEX] [--role node|6lbr] [--json]\n"
            "                   [--serve ADDR] [--timeout S] [--log json|text]\n"
            "                   [--log-level error|warn|info|debug]\n"
            "\n"
            "Joins a 6TiSCH network through the Join Proxy at ADDR ([IPv6%%zone]:port\n"
            "or IPv4:port) with the pledge identifier (1-8 bytes hex, EUI-64) and\n"
            "its 16-byte PSK.  Exits 0 once joined; --json prints the received\n"
            "configuration as one JSON object on stdout.\n"
            "\n"
            "  --psk, --okm     hex, or @FILE: the hex read from FILE (keeps the key\n"
            "                   out of the process list)\n"
            "  --okm HEX        instead of --psk: the pledge's OSCORE context as\n"
            "                   'cojp jrc derive' prints it (RFC 9031 Appendix B)\n"
            "  --state FILE     keep the OSCORE sequence number and replay window\n"
            "                   in FILE so a restart never reuses a nonce\n"
            "  --network-id HEX network identifier to ask for (default: none;\n"
            "                   required with --role 6lbr)\n"
            "  --serve ADDR     join from ADDR and stay up as a joined node that\n"
            "                   answers parameter updates on it; new key sets are\n"
            "                   put in use as soon as they are installed\n"
            "  --timeout S      give up joining after S seconds (default 120)\n"
            CJ_HLOG_HELP
            "                   (without --serve the default is warn)\n");
}

typedef struct pledge_run {
    cj_node_t node;
    cj_loop_t loop;
    uint64_t started; /* monotonic ms */
    bool json, serve, joined, failed;
} pledge_run_t;

/* A serving node's counters as a record: the shutdown record, and a
 * stats record on SIGUSR1 and every --stats-interval. */
static void counters(pledge_run_t *r, const char *event)
{
    cj_hlog_counters_begin("info", event, "pledge", 0, r->started);
    cj_hlog_bool("joined", r->joined);
    cj_hlog_uint("updates", r->node.updates);
    cj_hlog_uint("rejected", r->node.rejected);
    cj_hlog_uint("timeouts", r->node.timeouts);
    cj_hlog_end();
}

static void report(void *arg)
{
    counters(arg, "stats");
}

static void on_readable(void *arg, int fd, uint64_t now)
{
    pledge_run_t *r = arg;
    uint8_t buf[1280];
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        cj_addr_t from;
        ssize_t len = cj_net_recv(fd, buf, sizeof buf, &ss, &from);
        if (len == CJ_NET_OVERSIZE)
            continue;
        if (len < 0)
            break;
        if (cj_answer_ping(fd, buf, (size_t)len, &from))
            continue;
        cj_node_input(&r->node, now, &from, buf, (size_t)len);
    }
}

static uint64_t on_tick(void *arg, uint64_t now)
{
    pledge_run_t *r = arg;
    return cj_node_poll(&r->node, now);
}

static void on_event(void *arg, cj_node_t *n, int ev, uint64_t now)
{
    pledge_run_t *r = arg;
    if (ev == CJ_PLEDGE_EV_JOINED) {
        if (r->json && !r->joined)
            cj_node_print_json(n, stdout, now);
        r->joined = true;
        if (!r->serve)
            cj_loop_stop(&r->loop);
    } else if (ev == CJ_PLEDGE_EV_FAILED) {
        r->failed = true;
        cj_loop_stop(&r->loop);
    }
}

int cj_cmd_pledge(int argc, char **argv)
{
    static const struct option opts[] = {
        {"id", required_argument, NULL, 'i'},
        {"psk", required_argument, NULL, 'k'},
        {"okm", required_argument, NULL, 'o'},
        {"proxy", required_argument, NULL, 'p'},
        {"state", required_argument, NULL, 's'},
        {"network-id", required_argument, NULL, 'n'},
        {"role", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        {"serve", required_argument, NULL, 'S'},
        {"timeout", required_argument, NULL, 't'},
        CJ_HLOG_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    cj_node_args_t na = {0};
    int c, rc;
    const uint8_t *okm = NULL;
    const char *proxy = NULL, *serve = NULL;
    uint8_t role = CJ_COJP_ROLE_6LN;
    bool json = false, level_given = false;
    uint32_t timeout_s = 120;
    struct sockaddr_storage jp_ss, own_ss;
    socklen_t jp_sl, own_sl;
    cj_addr_t jp;
    pledge_run_t *r;
    int fd;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cj_node_arg(&na, c, optarg, CMD, &rc)) {
            if (rc)
                return rc;
            continue;
        }
        switch (c) {
        case 'p':
            proxy = optarg;
            break;
        case 'r':
            if (!strcmp(optarg, "node"))
                role = CJ_COJP_ROLE_6LN;
            else if (!strcmp(optarg, "6lbr"))
                role = CJ_COJP_ROLE_6LBR;
            else
                return cj_fail(2, CMD, "--role must be node or 6lbr");
            break;
        case 'j':
            json = true;
            break;
        case 'S':
            serve = optarg;
            break;
        case 't':
            if (cj_parse_u32(optarg, 1, 86400, &timeout_s))
                return cj_fail(2, CMD, "--timeout must be 1..86400 seconds");
            break;
        case 'l':
        case 'V':
        case 'Y':
            if ((rc = cj_hlog_option(CMD, c, optarg)) != 0)
                return rc;
            level_given |= c == 'V';
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return cj_opt_unknown(CMD, argv);
        }
    }
    if ((rc = cj_opt_extra(CMD, argc, argv)) != 0)
        return rc;
    if (!na.id_len || !proxy)
        return cj_fail(2, CMD, "--id, --psk (or --okm) and --proxy are required");
    /* RFC 9031 section 3: a 6LBR pledge is provisioned with the network
     * identifier (it hears no Enhanced Beacon to learn it from) */
    if (role == CJ_COJP_ROLE_6LBR && na.netid_len <= 0)
        return cj_fail(2, CMD, "--role 6lbr needs --network-id (RFC 9031 section 3)");
    if ((rc = cj_node_secret(&na, CMD, &okm)) != 0)
        return rc;
    if ((rc = cj_addr_arg(CMD, proxy, &jp_ss, &jp_sl)) != 0)
        return rc;
    if (serve) {
        if ((rc = cj_addr_arg(CMD, serve, &own_ss, &own_sl)) != 0)
            return rc;
        if (own_ss.ss_family != jp_ss.ss_family)
            return cj_fail(2, CMD, "--serve and --proxy must both be IPv6 or both IPv4");
    } else {
        cj_net_parse(jp_ss.ss_family == AF_INET6 ? "[::]:0" : "0.0.0.0:0", &own_ss,
                     &own_sl);
    }
    r = calloc(1, sizeof *r);
    if (!r)
        return cj_fail(1, CMD, "out of memory");
    r->json = json;
    r->serve = serve != NULL;
    /* A one-shot pledge reports through its exit status, its one-line
     * error and --json; only warnings go to the log. */
    if (!serve && !level_given)
        cj_hlog_set_level(1);

    fd = cj_net_udp_bind(&own_ss, own_sl);
    if (fd < 0) {
        rc = cj_fail(1, CMD, "cannot bind %s: %s", serve ? serve : "a UDP socket",
                     strerror(errno));
        free(r);
        return rc;
    }
    cj_net_to_addr((struct sockaddr *)&jp_ss, &jp);
    rc = cj_node_init(&r->node, na.id, (size_t)na.id_len, na.psk, okm, role,
                      na.state, na.netid, (size_t)na.netid_len, &jp, fd);
    cj_crypto_wipe(&na, sizeof na);
    if (rc != CJ_OK) {
        close(fd);
        free(r);
        if (rc == CJ_ERR_STORAGE)
            return cj_fail(1, CMD, "cannot read state file '%s'", na.state);
        return cj_fail(1, CMD, "cannot initialise the pledge (%s)", cj_strerror(rc));
    }
    r->node.on_event = on_event;
    r->node.arg = r;
    if (cj_loop_init(&r->loop) != 0) {
        close(fd);
        free(r);
        return cj_fail(1, CMD, "cannot set up the event loop: %s", strerror(errno));
    }
    cj_loop_add(&r->loop, fd, on_readable, r);
    cj_loop_set_tick(&r->loop, on_tick, r);
    r->started = cj_host_now();
    if (serve) {
        cj_loop_set_report(&r->loop, report, r, cj_hlog_stats_ms());
        cj_hlog_begin_always("info", "start");
        cj_hlog_str("role", "pledge");
        cj_hlog_str("serve", serve);
        cj_hlog_str("proxy", proxy);
        cj_hlog_end();
    }
    cj_node_start(&r->node, cj_host_now());

    uint64_t deadline = cj_host_now() + (uint64_t)timeout_s * 1000u;
    int res = cj_loop_run(&r->loop, deadline);
    if (!r->joined) {
        if (r->failed)
            rc = cj_fail(1, CMD, "join failed after every attempt");
        else if (res == CJ_LOOP_DEADLINE && r->node.pf.save_errno)
            rc = cj_fail(1, CMD, "not joined within %u s: cannot write the state file %s (%s)",
                         (unsigned)timeout_s, r->node.pf.path, strerror(r->node.pf.save_errno));
        else if (res == CJ_LOOP_DEADLINE)
            rc = cj_fail(1, CMD, "not joined within %u s (is the proxy at %s up?)",
                         (unsigned)timeout_s, proxy);
        else if (res > 0)
            rc = cj_fail(1, CMD, "interrupted before joining");
        else
            rc = cj_fail(1, CMD, "poll failed: %s", strerror(errno));
    } else if (r->serve) {
        /* joined: serve updates until a signal; no deadline any more */
        if (res == CJ_LOOP_DEADLINE)
            res = cj_loop_run(&r->loop, CJ_TIME_NEVER);
        if (r->failed)
            rc = cj_fail(1, CMD, "rejoin failed after every attempt");
        else if (res == -1)
            rc = cj_fail(1, CMD, "poll failed: %s", strerror(errno));
        else
            rc = 0;
    } else {
        rc = 0;
    }
    if (r->serve)
        counters(r, "shutdown");
    cj_loop_close(&r->loop);
    close(fd);
    cj_crypto_wipe(r, sizeof *r);
    free(r);
    return rc;
}
