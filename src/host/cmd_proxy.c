/*
 * cojp proxy - the Join Proxy daemon (RFC 9031 section 7.1): relays join
 * traffic between pledges and the JRC statelessly.  One UDP socket serves
 * both sides (two when --listen is link-local, see open_jrc_side):
 * datagrams from the JRC's address are responses (or, for a JP that
 * joined itself, parameter updates), everything else comes from pledges.
 * A JRC answering with a separate response in a CON message gets the
 * JP's empty ACK (or RST, cojp/proxy.h) on the JRC-side socket.
 *
 * With --id/--psk the JP is a joined node first: it joins the JRC
 * directly (a pledge engine whose only JP candidate is the JRC address;
 * the JRC answers the CON Join Request with a piggybacked ACK), relays
 * nothing until joined, and then takes the JRC address, join rate and
 * blacklist from its Configuration and from every later parameter
 * update.  A parameter absent from the Configuration keeps the value
 * given on the command line; for the blacklist, a Configuration list
 * with entries replaces --blacklist and an empty or absent one falls
 * back to it, so an update that empties the JRC's list takes effect.
 *
 * Blacklist at the link layer (RFC 9031 section 8.4.2, cojp/proxy.h):
 * a daemon sees UDP datagrams, not frames, so it takes the EUI-64 behind
 * a link-local source address (the interface identifier a 6LoWPAN stack
 * derives from the MAC address) and drops everything from a blacklisted
 * one before the Join Proxy engine sees it.  The engine's own check of
 * the 'kid context' stays as a second filter.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cojp/coap.h"
#include "cojp/crypto.h"
#include "cojp/proxy.h"
#include "loop.h"
#include "net.h"
#include "node.h"
#include "util.h"

#define CMD "cojp proxy"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cojp proxy --listen ADDR --jrc ADDR [--join-rate N]\n"
            "                  [--blacklist ID,...] [--id HEX --psk|--okm HEX [--state FILE]\n"
            "                  [--network-id HEX]] [--log json|text] [--log-level LEVEL]\n"
            "\n"
            "Join Proxy daemon.  Listens on ADDR ([IPv6%%zone]:port or IPv4:port)\n"
            "for pledges and relays their Join Requests to the JRC at --jrc.\n"
            "\n"
            "  --join-rate N    PROBING_RATE in bytes/s (default: unlimited; 0 drops\n"
            "                   all join traffic)\n"
            "  --blacklist IDS  comma-separated pledge identifiers (hex, EUI-64): drop\n"
            "                   all datagrams from a link-local source whose interface\n"
            "                   identifier carries a listed EUI-64, and join requests\n"
            "                   naming a listed id (the JRC's list replaces it)\n"
            "  --id, --psk      join the JRC first as a node and take JRC address,\n"
            "                   join rate and blacklist from the Configuration and\n"
            "                   its parameter updates; --state keeps its OSCORE\n"
            "                   counters across restarts (--okm HEX instead of\n"
            "                   --psk: 'cojp jrc derive'; either as @FILE reads the\n"
            "                   hex from FILE, out of the process list)\n"
            CJ_HLOG_HELP
            "Stops cleanly on SIGINT/SIGTERM, logging its counters (SIGUSR1 logs\n"
            "them at any time).\n");
}

typedef struct proxy_run {
    cj_proxy_t jp;
    uint64_t started; /* monotonic ms */
    cj_node_t *node; /* NULL without --id */
    cj_loop_t loop;
    cj_addr_t jrc_cli; /* --jrc as given */
    int fd;  /* --listen: pledges */
    int jfd; /* towards the JRC: fd, or a second socket (open_jrc_side) */
    unsigned long not_joined; /* pledge requests dropped before joining */
    unsigned long not_jrc; /* on jfd (when separate) but not from the JRC */
    unsigned long ll_blacklisted; /* link-local source on the blacklist */
    /* --blacklist, restored when the Configuration carries none */
    uint8_t cli_bl[CJ_PROXY_MAX_BLACKLIST][CJ_PROXY_MAX_ID];
    size_t cli_bl_len[CJ_PROXY_MAX_BLACKLIST];
    size_t cli_bl_count;
    uint8_t obuf[1280];
} proxy_run_t;

static void apply_config(proxy_run_t *r)
{
    const cj_pledge_t *p = &r->node->eng;
    const uint8_t *ja = cj_pledge_jrc_address(p);
    uint64_t rate = cj_pledge_join_rate(p);

    if (ja) {
        /* The JRC address is an IPv6 address (section 8.4.2); the port
         * stays the one given with --jrc.  An IPv4-mapped address goes
         * back to IPv4 so a v4 deployment keeps working. */
        cj_addr_t a = r->jrc_cli;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memset(a.b + 3, 0, sizeof a.b - 3);
        if (!memcmp(ja, mapped, 12)) {
            a.b[0] = 4;
            memcpy(a.b + 3, ja + 12, 4);
            a.len = 7;
        } else {
            a.b[0] = 6;
            memcpy(a.b + 3, ja, 16);
            a.len = 23;
        }
        cj_proxy_set_jrc(&r->jp, &a);
    }
    if (rate != CJ_PLEDGE_JOIN_RATE_INFINITE)
        cj_proxy_set_join_rate(&r->jp, rate >= CJ_PROXY_RATE_UNLIMITED
                                           ? CJ_PROXY_RATE_UNLIMITED - 1
                                           : (uint32_t)rate);
    /* Section 8.4.2: a blacklist replaces the previous one.  The pledge
     * engine cannot tell an absent list from an empty one, so both mean
     * "none from the JRC": the --blacklist entries apply again. */
    {
        const uint8_t *ids[CJ_PROXY_MAX_BLACKLIST];
        size_t lens[CJ_PROXY_MAX_BLACKLIST], n = 0;
        if (p->blacklist_count > 0) {
            for (; n < p->blacklist_count && n < CJ_PROXY_MAX_BLACKLIST; n++) {
                ids[n] = p->blacklist[n];
                lens[n] = p->blacklist_len[n];
            }
        } else {
            for (; n < r->cli_bl_count; n++) {
                ids[n] = r->cli_bl[n];
                lens[n] = r->cli_bl_len[n];
            }
        }
        if (cj_proxy_set_blacklist(&r->jp, ids, lens, n) != CJ_OK) {
            cj_hlog_begin("warn", "blacklist_too_long");
            cj_hlog_uint("entries", n);
            cj_hlog_end();
        }
    }
    cj_hlog_begin("info", "proxy_config");
    cj_hlog_addr("jrc", &r->jp.cfg.jrc);
    if (r->jp.cfg.join_rate == CJ_PROXY_RATE_UNLIMITED)
        cj_hlog_str("join_rate", NULL);
    else
        cj_hlog_uint("join_rate", r->jp.cfg.join_rate);
    cj_hlog_uint("blacklist", r->jp.blacklist_count);
    cj_hlog_end();
}

static void on_node_event(void *arg, cj_node_t *n, int ev, uint64_t now)
{
    proxy_run_t *r = arg;
    (void)n;
    (void)now;
    if (ev == CJ_PLEDGE_EV_JOINED || ev == CJ_PLEDGE_EV_UPDATED)
        apply_config(r);
    /* Every attempt failed (RFC 9031 section 8.1.1: signal it): a JP
     * that is not joined relays nothing, so it stops with exit 1 (a
     * service manager may start it again) instead of idling. */
    if (ev == CJ_PLEDGE_EV_FAILED)
        cj_loop_stop(&r->loop);
}

static bool from_jrc(const proxy_run_t *r, const cj_addr_t *from)
{
    return cj_addr_equal(from, &r->jp.cfg.jrc) || cj_addr_equal(from, &r->jrc_cli);
}

/* A parameter update (RFC 9031 section 8.2) for the JP's own node from
 * a JRC instance other than the JP's JRC address (several instances
 * serve one registry, and any of them may run a campaign): a CoAP
 * request with an OSCORE option and no Proxy-Scheme, which a pledge's
 * Join Request carries (section 8.1.1).  The node's engine verifies it
 * under its own OSCORE context and drops anything else. */
static bool update_for_node(const proxy_run_t *r, const uint8_t *buf, size_t len)
{
    cj_coap_msg_t m;
    cj_coap_opt_t o;

    if (!r->node || cj_pledge_get_state(&r->node->eng) != CJ_PLEDGE_JOINED)
        return false;
    if (cj_coap_parse(&m, buf, len) != CJ_OK || m.code == CJ_COAP_EMPTY || m.code >> 5 != 0)
        return false;
    return cj_coap_opt_find(&m, CJ_COAP_OPT_OSCORE, &o) == 1 &&
           cj_coap_opt_find(&m, CJ_COAP_OPT_PROXY_SCHEME, &o) == 0;
}

/* Section 8.4.2 for a host that sees datagrams: the EUI-64 behind a
 * link-local IPv6 source, checked against the JP's blacklist.  Sources
 * without one (IPv4, routable, short-address identifiers) pass. */
static bool ll_blacklisted(const proxy_run_t *r, const struct sockaddr_storage *ss)
{
    uint8_t eui64[8];
    if (ss->ss_family != AF_INET6 || r->jp.blacklist_count == 0)
        return false;
    if (cj_proxy_eui64_from_ipv6(((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr,
                                 eui64) != CJ_OK)
        return false;
    return cj_proxy_blacklisted(&r->jp, eui64, sizeof eui64);
}

static void on_readable(void *arg, int fd, uint64_t now)
{
    proxy_run_t *r = arg;
    uint8_t buf[1280], abuf[CJ_PROXY_ACK_LEN];
    cj_out_t out = {.buf = r->obuf, .cap = sizeof r->obuf};
    cj_out_t ack = {.buf = abuf, .cap = sizeof abuf};

    for (int i = 0; i < 256; i++) {
        struct sockaddr_storage ss;
        cj_addr_t from;
        ssize_t len = cj_net_recv(fd, buf, sizeof buf, &ss, &from);
        if (len == CJ_NET_OVERSIZE)
            continue;
        if (len < 0)
            break;
        cj_out_reset(&out);
        if (ll_blacklisted(r, &ss)) { /* before anything else, section 8.4.2 */
            r->ll_blacklisted++;
            cj_hlog_begin("debug", "blacklisted_source");
            cj_hlog_addr("pledge_addr", &from);
            cj_hlog_end();
            continue;
        }
        if (cj_answer_ping(fd, buf, (size_t)len, &from))
            continue;
        if (from_jrc(r, &from)) {
            if (r->node && cj_proxy_for_node(buf, (size_t)len)) {
                cj_node_input(r->node, now, &from, buf, (size_t)len);
                continue;
            }
            int relayed = cj_proxy_input_jrc(&r->jp, now, &from, buf, (size_t)len,
                                             &out, &ack);
            if (ack.len) {
                /* the JP's own answer to a separate (CON) response: an
                 * empty ACK, or a RST for a stale token (cojp/proxy.h);
                 * part of the join exchange, so AF43 like the request */
                cj_send_out_dscp(r->jfd, &ack, CJ_DSCP_AF43);
                cj_hlog_begin("debug", ack.buf[0] >> 4 == 0x6 ? "acked" : "reset");
                cj_hlog_uint("mid", (unsigned)(ack.buf[2] << 8 | ack.buf[3]));
                cj_hlog_end();
            }
            if (relayed == 1) {
                cj_send_out(r->fd, &out);
                cj_hlog_begin("info", "relayed");
                cj_hlog_addr("pledge_addr", &out.to);
                cj_hlog_uint("bytes", out.len);
                cj_hlog_end();
            }
            continue;
        }
        if (fd == r->jfd && update_for_node(r, buf, (size_t)len)) {
            cj_node_input(r->node, now, &from, buf, (size_t)len);
            continue;
        }
        if (fd != r->fd) {
            /* the JRC side of a link-local JP is no way in for pledges */
            r->not_jrc++;
            continue;
        }
        if (r->node && cj_pledge_get_state(&r->node->eng) != CJ_PLEDGE_JOINED) {
            r->not_joined++;
            continue;
        }
        int rc = cj_proxy_input_pledge(&r->jp, now, &from, buf, (size_t)len, &out);
        if (rc == 1) {
            /* RFC 9031 section 6.1.1: forwarded join traffic is AF43 */
            cj_send_out_dscp(r->jfd, &out, CJ_DSCP_AF43);
            cj_hlog_begin("debug", "forwarded");
            cj_hlog_addr("pledge_addr", &from);
            cj_hlog_uint("bytes", out.len);
            cj_hlog_end();
        } else if (rc == 2) {
            /* a CON the JP does not forward for its form: its RST, back
             * on the pledge's side (cojp/proxy.h) */
            cj_send_out(r->fd, &out);
            cj_hlog_begin("debug", "reset");
            cj_hlog_addr("pledge_addr", &from);
            cj_hlog_uint("mid", (unsigned)(out.buf[2] << 8 | out.buf[3]));
            cj_hlog_end();
        }
    }
}

static uint64_t on_tick(void *arg, uint64_t now)
{
    proxy_run_t *r = arg;
    return r->node ? cj_node_poll(r->node, now) : CJ_TIME_NEVER;
}

/* A socket bound to a link-local address only reaches its own link:
 * the kernel refuses to send from it to a routable JRC (ENETUNREACH).
 * Then the JRC side gets a second socket, bound to the address the
 * routing table picks towards the JRC and to the --listen port, so the
 * JRC (and its parameter updates to a JP joined with --id) sees a
 * routable address and the pledges' link stays link-local.  Returns fd
 * itself when one socket serves both sides, -1 with errno on failure. */
static int open_jrc_side(int fd, const struct sockaddr_storage *lss,
                         const struct sockaddr_storage *jss, socklen_t jsl)
{
    const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)lss;
    const struct sockaddr_in6 *j6 = (const struct sockaddr_in6 *)jss;
    struct sockaddr_storage src;
    socklen_t sl;
    int probe, e;

    if (lss->ss_family != AF_INET6 || !IN6_IS_ADDR_LINKLOCAL(&l6->sin6_addr) ||
        IN6_IS_ADDR_LINKLOCAL(&j6->sin6_addr))
        return fd;
    /* connect() on UDP sends nothing: it only asks for a route */
    probe = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return -1;
    if (connect(probe, (const struct sockaddr *)jss, jsl) != 0 ||
        cj_net_local(probe, &src, &sl) != 0) {
        e = errno;
        close(probe);
        errno = e;
        return -1;
    }
    close(probe);
    ((struct sockaddr_in6 *)&src)->sin6_port = l6->sin6_port;
    return cj_net_udp_bind(&src, sl);
}

/* Close r's sockets and free it, wiping the node's keys. */
static void run_free(proxy_run_t *r)
{
    close(r->fd);
    if (r->jfd != r->fd)
        close(r->jfd);
    if (r->node)
        cj_crypto_wipe(r->node, sizeof *r->node);
    free(r->node);
    free(r);
}

static int parse_blacklist(const char *s, proxy_run_t *r)
{
    uint8_t ids[CJ_PROXY_MAX_BLACKLIST][CJ_PROXY_MAX_ID];
    const uint8_t *ptr[CJ_PROXY_MAX_BLACKLIST];
    size_t lens[CJ_PROXY_MAX_BLACKLIST], n = 0;
    char item[64];

    while (*s) {
        const char *comma = strchr(s, ',');
        size_t l = comma ? (size_t)(comma - s) : strlen(s);
        int got;
        if (n == CJ_PROXY_MAX_BLACKLIST || l == 0 || l >= sizeof item)
            return -1;
        memcpy(item, s, l);
        item[l] = 0;
        if ((got = cj_hex_parse(item, ids[n], CJ_PROXY_MAX_ID, 0)) < 0)
            return -1;
        ptr[n] = ids[n];
        lens[n] = (size_t)got;
        n++;
        s += l + (comma ? 1 : 0);
        if (comma && !*s)
            return -1;
    }
    if (cj_proxy_set_blacklist(&r->jp, ptr, lens, n) != CJ_OK)
        return -1;
    memcpy(r->cli_bl, ids, sizeof ids);
    memcpy(r->cli_bl_len, lens, sizeof lens);
    r->cli_bl_count = n;
    return 0;
}

/* The run's counters as a record: the shutdown record, and a stats
 * record on SIGUSR1 and every --stats-interval (signo > 0: the signal
 * that ended the run). */
static void counters(proxy_run_t *r, const char *level, const char *event, int signo)
{
    const cj_proxy_stats_t *st = &r->jp.stats;

    cj_hlog_counters_begin(level, event, "proxy", signo, r->started);
    cj_hlog_uint("forwarded", st->forwarded);
    cj_hlog_uint("relayed", st->relayed);
    cj_hlog_uint("acks", st->acks);
    cj_hlog_uint("resets", st->resets);
    cj_hlog_uint("dropped_malformed", st->dropped_malformed);
    cj_hlog_uint("dropped_blacklist", st->dropped_blacklist + r->ll_blacklisted);
    cj_hlog_uint("dropped_rate", st->dropped_rate);
    cj_hlog_uint("dropped_source", st->dropped_source + r->not_jrc);
    cj_hlog_uint("dropped_token", st->dropped_token);
    cj_hlog_uint("dropped_stale", st->dropped_stale);
    cj_hlog_uint("dropped_replay", st->dropped_replay);
    if (r->node) {
        cj_hlog_uint("dropped_not_joined", r->not_joined);
        cj_hlog_uint("updates", r->node->updates);
    }
    cj_hlog_end();
}

static void report(void *arg)
{
    counters(arg, "info", "stats", 0);
}

int cj_cmd_proxy(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'L'},
        {"jrc", required_argument, NULL, 'J'},
        {"join-rate", required_argument, NULL, 'r'},
        {"blacklist", required_argument, NULL, 'b'},
        {"id", required_argument, NULL, 'i'},
        {"psk", required_argument, NULL, 'k'},
        {"okm", required_argument, NULL, 'o'},
        {"state", required_argument, NULL, 's'},
        {"network-id", required_argument, NULL, 'n'},
        CJ_HLOG_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *listen_s = NULL, *jrc_s = NULL, *bl = NULL;
    cj_node_args_t na = {0};
    const uint8_t *okm = NULL;
    int c, rc = 0;
    uint32_t rate = CJ_PROXY_RATE_UNLIMITED;
    struct sockaddr_storage lss, jss;
    socklen_t lsl, jsl;
    cj_proxy_cfg_t cfg;
    proxy_run_t *r;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cj_node_arg(&na, c, optarg, CMD, &rc)) {
            if (rc)
                return rc;
            continue;
        }
        switch (c) {
        case 'L':
            listen_s = optarg;
            break;
        case 'J':
            jrc_s = optarg;
            break;
        case 'r':
            if (cj_parse_u32(optarg, 0, CJ_PROXY_RATE_UNLIMITED - 1, &rate))
                return cj_fail(2, CMD, "--join-rate must be 0..%u bytes/s",
                               CJ_PROXY_RATE_UNLIMITED - 1);
            break;
        case 'b':
            bl = optarg;
            break;
        case 'l':
        case 'V':
        case 'Y':
            if ((rc = cj_hlog_option(CMD, c, optarg)) != 0)
                return rc;
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
    if (!listen_s || !jrc_s)
        return cj_fail(2, CMD, "--listen and --jrc are required");
    if (!na.id_len != !(na.psk_len || na.okm_len))
        return cj_fail(2, CMD, "--id and --psk (or --okm) go together");
    if (na.id_len && (rc = cj_node_secret(&na, CMD, &okm)) != 0)
        return rc;
    if ((na.state || na.netid_len) && !na.id_len)
        return cj_fail(2, CMD, "--state and --network-id need --id and --psk");
    if ((rc = cj_addr_arg(CMD, listen_s, &lss, &lsl)) != 0)
        return rc;
    if ((rc = cj_addr_arg(CMD, jrc_s, &jss, &jsl)) != 0)
        return rc;
    if (lss.ss_family != jss.ss_family)
        return cj_fail(2, CMD, "--listen and --jrc must both be IPv6 or both IPv4");

    r = calloc(1, sizeof *r);
    if (!r)
        return cj_fail(1, CMD, "out of memory");
    memset(&cfg, 0, sizeof cfg);
    cj_net_to_addr((struct sockaddr *)&jss, &cfg.jrc);
    r->jrc_cli = cfg.jrc;
    cfg.join_rate = rate;
    if (cj_proxy_init(&r->jp, &cfg, NULL) != CJ_OK) {
        free(r);
        return cj_fail(1, CMD, "cannot initialise the proxy (no randomness)");
    }
    if (bl && parse_blacklist(bl, r)) {
        free(r);
        return cj_fail(2, CMD, "--blacklist must be up to %d comma-separated hex ids of 1-%d bytes",
                       CJ_PROXY_MAX_BLACKLIST, CJ_PROXY_MAX_ID);
    }
    r->fd = cj_net_udp_bind(&lss, lsl);
    if (r->fd < 0) {
        rc = cj_fail(1, CMD, "cannot bind %s: %s", listen_s, strerror(errno));
        free(r);
        return rc;
    }
    cj_net_set_rcvbuf(r->fd, 4 << 20);
    r->jfd = open_jrc_side(r->fd, &lss, &jss, jsl);
    if (r->jfd < 0) {
        rc = cj_fail(1, CMD, "no socket towards the JRC %s: %s", jrc_s, strerror(errno));
        close(r->fd);
        free(r);
        return rc;
    }
    if (r->jfd != r->fd)
        cj_net_set_rcvbuf(r->jfd, 4 << 20);
    if (na.id_len) {
        r->node = calloc(1, sizeof *r->node);
        rc = r->node ? cj_node_init(r->node, na.id, (size_t)na.id_len, na.psk,
                                    okm, CJ_COJP_ROLE_6LN, na.state, na.netid,
                                    (size_t)na.netid_len, &cfg.jrc, r->jfd)
                     : CJ_ERR_NOSPACE;
        cj_crypto_wipe(&na, sizeof na);
        if (rc != CJ_OK) {
            run_free(r);
            if (rc == CJ_ERR_STORAGE)
                return cj_fail(1, CMD, "cannot read state file '%s'", na.state);
            return cj_fail(1, CMD, "cannot initialise the node (%s)", cj_strerror(rc));
        }
        r->node->on_event = on_node_event;
        r->node->arg = r;
    }
    if (cj_loop_init(&r->loop) != 0) {
        run_free(r);
        return cj_fail(1, CMD, "cannot set up the event loop: %s", strerror(errno));
    }
    cj_loop_add(&r->loop, r->fd, on_readable, r);
    if (r->jfd != r->fd)
        cj_loop_add(&r->loop, r->jfd, on_readable, r);
    cj_loop_set_tick(&r->loop, on_tick, r);
    r->started = cj_host_now();
    cj_loop_set_report(&r->loop, report, r, cj_hlog_stats_ms());

    cj_hlog_begin_always("info", "start");
    cj_hlog_str("role", "proxy");
    cj_hlog_str("listen", listen_s);
    cj_hlog_str("jrc", jrc_s);
    if (r->jfd != r->fd) {
        struct sockaddr_storage js;
        socklen_t jl;
        char a[96];
        if (cj_net_local(r->jfd, &js, &jl) == 0)
            cj_hlog_str("jrc_side", cj_net_fmt((struct sockaddr *)&js, a, sizeof a));
    }
    if (rate == CJ_PROXY_RATE_UNLIMITED)
        cj_hlog_str("join_rate", NULL);
    else
        cj_hlog_uint("join_rate", rate);
    cj_hlog_uint("blacklist", r->jp.blacklist_count);
    cj_hlog_bool("joins_first", r->node != NULL);
    cj_hlog_end();
    if (r->node)
        cj_node_start(r->node, cj_host_now());

    int res = cj_loop_run(&r->loop, CJ_TIME_NEVER);
    rc = res == -1 ? 1 : 0;
    if (r->node && r->node->eng.state == CJ_PLEDGE_FAILED)
        rc = cj_fail(1, CMD, "%s failed after every attempt",
                     r->node->joined_at ? "rejoin" : "join");
    counters(r, rc ? "error" : "info", "shutdown", res);
    cj_loop_close(&r->loop);
    run_free(r);
    return rc;
}
