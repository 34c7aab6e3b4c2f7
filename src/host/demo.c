/*
 * cojp demo - the main job: a JRC over a real SQLite registry, a Join
 * Proxy and N pledges on loopback UDP, each with its own socket, driven by
 * one poll loop.  The JRC side uses group commit as the daemon does: the
 * datagrams that are ready are handled in one transaction and their
 * responses leave only after it committed.  Prints one row per pledge
 * (identifier, short address, key id, join time) and exits 0 when every
 * pledge joined within the deadline.
 *
 * Engine time is wall-clock milliseconds (cj_host_wall): the registry
 * stores short-id leases as points in time that must mean the same after
 * a restart, as in `cojp jrc serve`.  A demo lasts seconds, so a clock
 * step during it is not a concern.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cojp/crypto.h"
#include "cojp/jrc.h"
#include "cojp/pledge.h"
#include "cojp/proxy.h"
#include "net.h"
#include "registry.h"
#include "util.h"
#include "port/platform_mem.h"

#define DEMO_MAX_PLEDGES 5000
#define DEMO_WAVE 100

typedef struct demo_pledge {
    cj_pledge_t eng;
    cj_mem_platform_t pf;
    uint8_t id[8];
    uint8_t psk[16];
    int fd;
    uint64_t started_at;
    uint64_t joined_at;
    bool joined;
} demo_pledge_t;

/* Group commit on the JRC side: every datagram that is ready (up to
 * DEMO_BATCH) is handled inside one transaction; the responses are sent
 * only once it committed.  If the commit fails nothing is sent and the
 * engine reloads its state from the registry.  Returns 0, or -1 when the
 * registry is unusable. */
#define DEMO_BATCH 64
static int jrc_batch(cj_jrc_t *jrc, cj_mem_platform_t *pf, cj_reg_t *reg,
                     const cj_jrc_cfg_t *cfg, int fd)
{
    static uint8_t in[1280], outbuf[DEMO_BATCH][1280];
    static cj_out_t pending[DEMO_BATCH];
    int count = 0;
    if (cj_reg_begin(reg) != CJ_OK) {
        fprintf(stderr, "cojp demo: %s\n", cj_reg_errmsg(reg));
        return -1;
    }
    while (count < DEMO_BATCH) {
        struct sockaddr_storage ss;
        cj_addr_t from;
        ssize_t r = cj_net_recv(fd, in, sizeof in, &ss, &from);
        uint64_t now = cj_host_wall();
        if (r == CJ_NET_OVERSIZE)
            continue;
        if (r < 0)
            break;
        pending[count].buf = outbuf[count];
        pending[count].cap = sizeof outbuf[count];
        cj_out_reset(&pending[count]);
        pf->now = now;
        if (cj_jrc_input(jrc, now, &from, in, (size_t)r, &pending[count]) == 1 &&
            pending[count].len)
            count++;
    }
    if (cj_reg_commit(reg) != CJ_OK) {
        fprintf(stderr, "cojp demo: commit failed (%s); reloading\n", cj_reg_errmsg(reg));
        cj_reg_rollback(reg);
        return cj_jrc_init(jrc, cfg, cj_reg_store(reg), &pf->port) == CJ_OK ? 0 : -1;
    }
    for (int i = 0; i < count; i++)
        cj_send_out(fd, &pending[i]);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cojp demo [--pledges N] [--timeout SECONDS] [--db FILE] [--json]\n"
            "\n"
            "Creates a SQLite registry (a temporary one, removed afterwards,\n"
            "unless --db names a new file to keep), provisions N pledges\n"
            "(default 10, at most %d) with fresh random PSKs, starts a JRC, a\n"
            "Join Proxy and the pledges on loopback UDP ([::1], or 127.0.0.1\n"
            "without IPv6), lets them join through the proxy and prints one\n"
            "row per pledge.  Exits 0 when\n"
            "all joined before the timeout (default 60 s).\n",
            DEMO_MAX_PLEDGES);
}

/* Every socket of the demo on one loopback: [::1], or 127.0.0.1 where
 * the host has no IPv6 (decided by the first bind). */
static const char *loopback = "[::1]:0";

static int bind_loopback(void)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;
    cj_net_parse(loopback, &ss, &len);
    fd = cj_net_udp_bind(&ss, len);
    if (fd < 0 && ss.ss_family == AF_INET6 &&
        (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT)) {
        loopback = "127.0.0.1:0";
        return bind_loopback();
    }
    return fd;
}

static void addr_of(int fd, cj_addr_t *a)
{
    struct sockaddr_storage ss;
    socklen_t len;
    cj_net_local(fd, &ss, &len);
    cj_net_to_addr((struct sockaddr *)&ss, a);
}

int cj_cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        {"pledges", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    long n = 10, timeout_s = 60;
    bool json = false;
    const char *db_arg = NULL;
    char tmpdir[] = "/tmp/cojp-demo.XXXXXX", db_path[64];
    bool made_tmp = false;
    cj_reg_t *reg = NULL;
    int c, rc = 1;
    unsigned long v;

    optind = 1;
    opterr = 0; /* one line of our own instead of getopt's and the usage */
    while ((c = getopt_long(argc, argv, "n:t:jd:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (cj_parse_dec(optarg, DEMO_MAX_PLEDGES, &v) || v < 1) {
                fprintf(stderr, "cojp demo: --pledges must be 1..%d\n", DEMO_MAX_PLEDGES);
                return 2;
            }
            n = (long)v;
            break;
        case 't':
            if (cj_parse_dec(optarg, 3600, &v) || v < 1) {
                fprintf(stderr, "cojp demo: --timeout must be 1..3600 seconds\n");
                return 2;
            }
            timeout_s = (long)v;
            break;
        case 'j':
            json = true;
            break;
        case 'd':
            db_arg = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return cj_opt_unknown("cojp demo", argv);
        }
    }
    if (optind != argc) {
        fprintf(stderr, "cojp demo: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    /* One descriptor per pledge plus three. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)n + 64) {
            fprintf(stderr, "cojp demo: need %ld file descriptors, limit is %lu\n",
                    n + 64, (unsigned long)rl.rlim_cur);
            return 1;
        }
    }

    /* The network: keys K1 (beacons) and K2 (data), a network id. */
    static const uint8_t network_id[] = {0xca, 0xfe};
    cj_jrc_cfg_t jcfg;
    memset(&jcfg, 0, sizeof jcfg);
    jcfg.network_id = network_id;
    jcfg.network_id_len = sizeof network_id;
    jcfg.keys[0].key_id = 1;
    jcfg.keys[0].key_usage = CJ_COJP_KEY_USAGE_K1_MIC32;
    jcfg.keys[1].key_id = 2;
    jcfg.keys[1].key_usage = CJ_COJP_KEY_USAGE_K2_ENC_MIC32;
    jcfg.key_count = 2;
    jcfg.join_rate = UINT32_MAX;
    jcfg.lease_hours = 24;
    if (cj_crypto_random(jcfg.keys[0].key, 16) || cj_crypto_random(jcfg.keys[1].key, 16)) {
        fprintf(stderr, "cojp demo: no randomness\n");
        return 1;
    }

    cj_jrc_slot_t *slots = calloc((size_t)n, sizeof *slots);
    demo_pledge_t *pl = calloc((size_t)n, sizeof *pl);
    cj_jrc_t *jrc = calloc(1, sizeof *jrc);
    cj_proxy_t *jp = calloc(1, sizeof *jp);
    struct pollfd *pfd = calloc((size_t)n + 3, sizeof *pfd);
    cj_mem_platform_t jrc_pf, jp_pf;
    int jrc_fd = -1, jp_down = -1, jp_up = -1;
    uint8_t buf[1280], obuf[1280], abuf[CJ_PROXY_ACK_LEN];

    if (!slots || !pl || !jrc || !jp || !pfd) {
        fprintf(stderr, "cojp demo: out of memory\n");
        goto done;
    }
    for (long i = 0; i < n; i++)
        pl[i].fd = -1;
    if (db_arg) {
        struct stat st;
        if (stat(db_arg, &st) == 0) {
            fprintf(stderr, "cojp demo: %s exists; --db takes a new file\n", db_arg);
            goto done;
        }
        snprintf(db_path, sizeof db_path, "%s", db_arg);
        if (strlen(db_arg) >= sizeof db_path) {
            fprintf(stderr, "cojp demo: --db path too long\n");
            goto done;
        }
    } else {
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "cojp demo: cannot create a temporary folder: %s\n", strerror(errno));
            goto done;
        }
        made_tmp = true;
        snprintf(db_path, sizeof db_path, "%s/registry.db", tmpdir);
    }
    {
        char err[256];
        if (cj_reg_open(&reg, db_path, err, sizeof err) != CJ_OK) {
            fprintf(stderr, "cojp demo: %s\n", err);
            goto done;
        }
    }
    cj_mem_platform_init(&jrc_pf);
    cj_mem_platform_init(&jp_pf);
    jcfg.slots = slots;
    jcfg.slot_count = (size_t)n;

    jrc_fd = bind_loopback();
    jp_down = bind_loopback();
    jp_up = bind_loopback();
    if (jrc_fd < 0 || jp_down < 0 || jp_up < 0) {
        fprintf(stderr, "cojp demo: cannot bind UDP on the loopback: %s\n", strerror(errno));
        goto done;
    }
    cj_net_set_rcvbuf(jrc_fd, 8 << 20);
    cj_net_set_rcvbuf(jp_down, 8 << 20);
    cj_net_set_rcvbuf(jp_up, 8 << 20);
    jrc_pf.now = cj_host_wall();
    if (cj_jrc_init(jrc, &jcfg, cj_reg_store(reg), &jrc_pf.port) != CJ_OK) {
        fprintf(stderr, "cojp demo: JRC init failed\n");
        goto done;
    }
    cj_proxy_cfg_t pcfg;
    memset(&pcfg, 0, sizeof pcfg);
    addr_of(jrc_fd, &pcfg.jrc);
    pcfg.join_rate = CJ_PROXY_RATE_UNLIMITED;
    if (cj_proxy_init(jp, &pcfg, &jp_pf.port) != CJ_OK) {
        fprintf(stderr, "cojp demo: proxy init failed\n");
        goto done;
    }
    cj_addr_t jp_addr;
    addr_of(jp_down, &jp_addr);

    uint64_t t0 = cj_host_wall();
    /* Provisioning is one transaction, as `cojp jrc import` does it. */
    if (cj_reg_begin(reg) != CJ_OK) {
        fprintf(stderr, "cojp demo: %s\n", cj_reg_errmsg(reg));
        goto done;
    }
    for (long i = 0; i < n; i++) {
        demo_pledge_t *d = &pl[i];
        cj_pledge_cfg_t cfg;
        if (cj_crypto_random(d->id, 8) || cj_crypto_random(d->psk, 16))
            goto done;
        d->id[0] = (uint8_t)((d->id[0] & 0xfc) | 0x02); /* locally administered */
        if (cj_reg_add(reg, d->id, 8, d->psk, CJ_JRC_ALLOW_NODE) != CJ_OK) {
            fprintf(stderr, "cojp demo: provisioning failed\n");
            goto done;
        }
        d->fd = bind_loopback();
        if (d->fd < 0) {
            fprintf(stderr, "cojp demo: cannot bind pledge socket: %s\n", strerror(errno));
            goto done;
        }
        cj_mem_platform_init(&d->pf);
        d->pf.now = t0;
        memset(&cfg, 0, sizeof cfg);
        cfg.pledge_id = d->id;
        cfg.pledge_id_len = 8;
        memcpy(cfg.psk, d->psk, 16);
        cfg.role = CJ_COJP_ROLE_6LN;
        if (cj_pledge_init(&d->eng, &cfg, &d->pf.port) != CJ_OK ||
            cj_pledge_add_jp(&d->eng, &jp_addr, network_id, sizeof network_id) != CJ_OK) {
            fprintf(stderr, "cojp demo: pledge init failed\n");
            goto done;
        }
    }

    if (cj_reg_commit(reg) != CJ_OK) {
        fprintf(stderr, "cojp demo: %s\n", cj_reg_errmsg(reg));
        goto done;
    }

    pfd[0].fd = jrc_fd;
    pfd[1].fd = jp_down;
    pfd[2].fd = jp_up;
    for (long i = 0; i < n; i++)
        pfd[3 + i].fd = pl[i].fd;
    for (long i = 0; i < n + 3; i++)
        pfd[i].events = POLLIN;

    /* Pledges are switched on in waves of DEMO_WAVE, one wave per loop
     * turn: a real deployment does not power every mote in the same
     * millisecond, and loopback drops bursts beyond its backlog. */
    long joined = 0, failed = 0, started = 0;
    uint64_t deadline = t0 + (uint64_t)timeout_s * 1000u;
    cj_out_t out = {.buf = obuf, .cap = sizeof obuf};
    cj_out_t ack = {.buf = abuf, .cap = sizeof abuf};
    for (;;) {
        uint64_t now = cj_host_wall();
        uint64_t next = deadline;
        for (long w = 0; w < DEMO_WAVE && started < n; w++, started++) {
            pl[started].started_at = now;
            pl[started].pf.now = now;
            if (cj_pledge_start(&pl[started].eng, now) != CJ_OK) {
                fprintf(stderr, "cojp demo: pledge start failed\n");
                goto done;
            }
        }
        if (started < n)
            next = now;
        /* timers */
        for (long i = 0; i < n; i++) {
            demo_pledge_t *d = &pl[i];
            d->pf.now = now;
            while (cj_pledge_next_timer(&d->eng) <= now) {
                cj_out_reset(&out);
                if (cj_pledge_poll(&d->eng, now, &out) != 1)
                    break;
                cj_send_out(d->fd, &out);
                if (out.event == CJ_PLEDGE_EV_FAILED)
                    failed++;
            }
            if (cj_pledge_next_timer(&d->eng) < next)
                next = cj_pledge_next_timer(&d->eng);
        }
        jrc_pf.now = now;
        while (cj_jrc_next_timer(jrc) <= now) {
            cj_out_reset(&out);
            if (cj_jrc_poll(jrc, now, &out) != 1)
                break;
            cj_send_out(jrc_fd, &out);
        }
        if (cj_jrc_next_timer(jrc) < next)
            next = cj_jrc_next_timer(jrc);
        if (joined + failed == n || now >= deadline)
            break;

        int wait = next > now ? (int)(next - now) : 0;
        int ready = poll(pfd, (nfds_t)(n + 3), wait);
        if (ready < 0 && errno != EINTR) {
            perror("cojp demo: poll");
            goto done;
        }
        if (ready > 0 && (pfd[0].revents & POLLIN) &&
            jrc_batch(jrc, &jrc_pf, reg, &jcfg, jrc_fd) != 0)
            goto done;
        for (long k = 1; ready > 0 && k < n + 3; k++) {
            if (!(pfd[k].revents & POLLIN))
                continue;
            for (;;) {
                struct sockaddr_storage ss;
                cj_addr_t from;
                ssize_t r = cj_net_recv(pfd[k].fd, buf, sizeof buf, &ss, &from);
                if (r == CJ_NET_OVERSIZE)
                    continue;
                if (r < 0)
                    break;
                now = cj_host_wall();
                cj_out_reset(&out);
                if (k == 1) {
                    int fw = cj_proxy_input_pledge(jp, now, &from, buf, (size_t)r, &out);
                    if (fw == 1)
                        cj_send_out(jp_up, &out);
                    else if (fw == 2) /* a RST for the pledge */
                        cj_send_out(jp_down, &out);
                } else if (k == 2) {
                    if (cj_proxy_input_jrc(jp, now, &from, buf, (size_t)r, &out, &ack) == 1)
                        cj_send_out(jp_down, &out);
                    cj_send_out(jp_up, &ack); /* a CON response's ACK, if any */
                } else {
                    demo_pledge_t *d = &pl[k - 3];
                    d->pf.now = now;
                    if (cj_pledge_input(&d->eng, now, &from, buf, (size_t)r, &out) == 1) {
                        cj_send_out(d->fd, &out);
                        if (out.event == CJ_PLEDGE_EV_JOINED && !d->joined) {
                            d->joined = true;
                            d->joined_at = now;
                            joined++;
                        }
                    }
                }
            }
        }
    }

    uint64_t total = cj_host_wall() - t0;
    if (json)
        printf("{\"pledges\":%ld,\"joined\":%ld,\"elapsed_ms\":%" PRIu64 ",\"nodes\":[", n, joined, total);
    else
        printf("%-18s %-8s %-6s %s\n", "pledge", "short", "key", "join ms");
    for (long i = 0; i < n; i++) {
        demo_pledge_t *d = &pl[i];
        char id[17], sid[5] = "-";
        uint8_t s[2];
        const cj_pledge_key_t *k2 = cj_pledge_tx_key(&d->eng, CJ_PLEDGE_K2);
        int key_id = k2 ? k2->key_id : -1;
        cj_hex_fmt(id, d->id, 8);
        if (d->joined && cj_pledge_short_id(&d->eng, s, NULL) == CJ_OK)
            cj_hex_fmt(sid, s, 2);
        if (json)
            printf("%s{\"pledge\":\"%s\",\"joined\":%s,\"short_id\":\"%s\",\"key_id\":%d,\"join_ms\":%" PRIu64 "}",
                   i ? "," : "", id, d->joined ? "true" : "false", sid, key_id,
                   d->joined ? d->joined_at - d->started_at : 0);
        else if (d->joined && d->joined_at == d->started_at)
            printf("%-18s %-8s %-6d <1\n", id, sid, key_id); /* ms clock */
        else if (d->joined)
            printf("%-18s %-8s %-6d %" PRIu64 "\n", id, sid, key_id, d->joined_at - d->started_at);
        else
            printf("%-18s %-8s %-6s %s\n", id, "-", "-", "not joined");
    }
    if (json)
        printf("]}\n");
    else
        printf("%ld of %ld pledges joined in %" PRIu64 " ms (JRC: %lu joins, %lu registry "
               "lookups; SQLite %s%s)\n",
               joined, n, total, jrc->stats.joins, jrc->stats.lookups,
               made_tmp ? "temporary registry" : "registry ", made_tmp ? "" : db_path);
    rc = joined == n ? 0 : 1;
    if (rc)
        fprintf(stderr, "cojp demo: %ld of %ld pledges did not join\n", n - joined, n);

done:
    if (pl)
        for (long i = 0; i < n; i++)
            if (pl[i].fd >= 0)
                close(pl[i].fd);
    if (jrc_fd >= 0)
        close(jrc_fd);
    if (jp_down >= 0)
        close(jp_down);
    if (jp_up >= 0)
        close(jp_up);
    free(slots);
    free(pl);
    if (reg)
        cj_reg_close(reg);
    if (made_tmp) {
        char path[128];
        static const char *const files[] = {"registry.db", "registry.db-wal", "registry.db-shm"};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", tmpdir, files[i]);
            unlink(path);
        }
        rmdir(tmpdir);
    }
    free(jrc);
    free(jp);
    free(pfd);
    return rc;
}
