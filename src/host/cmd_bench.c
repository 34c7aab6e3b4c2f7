/*
 * cojp bench - JRC join exchanges per second over loopback UDP, measured
 * against the limit of the same path: a plain UDP echo server answering
 * the same datagrams with datagrams of a Join Response's size.
 *
 * Both servers are separate processes (the real `cojp jrc serve` daemon,
 * and a fork running echo_serve()), pinned to CPU 0 when there are at
 * least two; this process is the load generator, pinned to CPU 1.
 *
 * The generator plays N pledges behind one Join Proxy.  Before a phase it
 * derives each pledge's OSCORE context (PSK = HKDF(seed, pledge id), the
 * same function that wrote the provisioning CSV) and protects its Join
 * Request exactly as the pledge engine does (CON POST, Uri-Host, OSCORE
 * with 'kid context', protected Uri-Path "j", Proxy-Scheme, payload
 * Join_Request).  During the phase each request goes through a real Join
 * Proxy engine, which turns it into what the JRC receives (NON, RFC 8974
 * extended token sealing the pledge's address), and each answer goes
 * back through the same engine, which matches it by token and names the
 * pledge; the generator then verifies the Join Response under the
 * pledge's context and decodes its Configuration.  Every pledge is used
 * once, so every JRC exchange is a first admission (context derivation,
 * registry reads and writes, group commit).
 *
 * A bounded window of requests is kept in flight; a request unanswered
 * after LOST_MS counts as lost.  A phase ends after its duration or when
 * the pledges are used up, whichever comes first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cli.h"
#include "cojp/coap.h"
#include "cojp/cojp.h"
#include "cojp/crypto.h"
#include "cojp/oscore.h"
#include "cojp/proxy.h"
#include "net.h"
#include "util.h"

#define CMD "cojp bench"
#define LOST_MS 2000u       /* an answer later than this counts as lost */
#define DRAIN_MS 1000u      /* wait for stragglers at the end of a phase */
#define MAX_WINDOW 1024
#define MAX_ROUNDS 9
#define HIST_US 2000000u    /* latency histogram: 1 us buckets up to 2 s */
#define ECHO_LIFETIME_S 600 /* an orphaned echo server stops by itself */
#define REQ_CAP 128
#define NETWORK_ID "\xca\xfe"

typedef struct pledge_set {
    size_t n;
    uint8_t run[3];             /* per-run id prefix: ids never collide */
    uint8_t seed[16];
    cj_oscore_ctx_t *ctx;       /* pledge side */
    cj_oscore_req_t *req;       /* binding of each pledge's request */
    uint8_t (*msg)[REQ_CAP];    /* the request as the pledge sends it */
    uint8_t *len;
} pledge_set_t;

typedef struct phase {
    const char *name;
    bool verify;                /* decrypt and decode every answer */
    bool cycle;                 /* reuse the pledges (echo: nothing is stored) */
    uint64_t sent, answered, verified, bad, lost, late;
    uint64_t bytes_out, bytes_in;
    double secs, gen_cpu, srv_cpu;
    uint32_t *hist;
    uint64_t hist_over;
} phase_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_self(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime + stime of another process, in seconds (/proc/PID/stat). */
static double cpu_of(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;
    size_t n;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r")))
        return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    p = strrchr(buf, ')');
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                     &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int ncpus(void)
{
    cpu_set_t s;
    if (sched_getaffinity(0, sizeof s, &s) != 0)
        return 1;
    return CPU_COUNT(&s);
}

/* The number of the idx-th CPU the calling process may run on, or -1.
 * Taken before anything is pinned: a child inherits its parent's mask. */
static int cpu_at(int idx)
{
    cpu_set_t s;
    int seen = 0;
    if (sched_getaffinity(0, sizeof s, &s) != 0)
        return -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &s) && seen++ == idx)
            return c;
    return -1;
}

/* Pin the calling process to CPU number cpu. */
static int pin(int cpu)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof one, &one) == 0 ? cpu : -1;
}

/* ---- pledges ------------------------------------------------------------- */

static void pledge_id(const pledge_set_t *ps, size_t i, uint8_t id[8])
{
    id[0] = 0x02;
    memcpy(id + 1, ps->run, 3);
    id[4] = (uint8_t)(i >> 24);
    id[5] = (uint8_t)(i >> 16);
    id[6] = (uint8_t)(i >> 8);
    id[7] = (uint8_t)i;
}

/* The provisioned PSK: both the CSV and the generator compute it. */
static int pledge_psk(const pledge_set_t *ps, const uint8_t id[8], uint8_t psk[16])
{
    return cj_crypto_hkdf_sha256(ps->seed, sizeof ps->seed, id, 8,
                                 (const uint8_t *)"cojp bench psk", 14, psk, 16);
}

/* The pledge's address on the link: fe80::<index>, port 5683, scope 1. */
static void pledge_addr(size_t i, cj_addr_t *a)
{
    memset(a, 0, sizeof *a);
    a->len = 23;
    a->b[0] = 6;
    a->b[1] = 0x16;
    a->b[2] = 0x33;
    a->b[3] = 0xfe;
    a->b[4] = 0x80;
    a->b[15] = (uint8_t)(i >> 24);
    a->b[16] = (uint8_t)(i >> 16);
    a->b[17] = (uint8_t)(i >> 8);
    a->b[18] = (uint8_t)i;
    a->b[22] = 1;
}

static long addr_index(const cj_addr_t *a)
{
    if (a->len != 23 || a->b[0] != 6 || a->b[3] != 0xfe || a->b[4] != 0x80)
        return -1;
    return (long)((uint32_t)a->b[15] << 24 | (uint32_t)a->b[16] << 16 |
                  (uint32_t)a->b[17] << 8 | a->b[18]);
}

/* Derive pledge i's context and protect its Join Request as the pledge
 * engine does (RFC 9031 sections 7.3 and 8.1.1). */
static int pledge_build(pledge_set_t *ps, size_t i)
{
    uint8_t id[8], psk[16], payload[32], plain[REQ_CAP];
    uint8_t token[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
    cj_oscore_params_t p;
    cj_cojp_join_request_t jr;
    cj_coap_builder_t b;
    int n, rc;

    pledge_id(ps, i, id);
    if (pledge_psk(ps, id, psk) != CJ_OK)
        return -1;
    memset(&p, 0, sizeof p);
    p.master_secret = psk;
    p.master_secret_len = 16;
    p.sender_id = (const uint8_t *)"";
    p.recipient_id = (const uint8_t *)"JRC";
    p.recipient_id_len = 3;
    p.id_context = id;
    p.id_context_len = 8;
    p.has_id_context = true;
    rc = cj_oscore_ctx_derive(&ps->ctx[i], &p);
    cj_crypto_wipe(psk, sizeof psk);
    if (rc != CJ_OK)
        return -1;
    ps->ctx[i].send_kid_context = true;

    memset(&jr, 0, sizeof jr);
    jr.role = CJ_COJP_ROLE_6LN;
    jr.network_id = (const uint8_t *)NETWORK_ID;
    jr.network_id_len = 2;
    if ((n = cj_cojp_join_request_encode(&jr, payload, sizeof payload)) < 0)
        return -1;
    cj_coap_build_init(&b, plain, sizeof plain, CJ_COAP_CON, CJ_COAP_POST, (uint16_t)(i + 1),
                       token, sizeof token);
    cj_coap_build_opt(&b, CJ_COAP_OPT_URI_HOST, CJ_COJP_URI_HOST, sizeof CJ_COJP_URI_HOST - 1);
    cj_coap_build_opt(&b, CJ_COAP_OPT_URI_PATH, CJ_COJP_URI_PATH, sizeof CJ_COJP_URI_PATH - 1);
    cj_coap_build_opt(&b, CJ_COAP_OPT_PROXY_SCHEME, CJ_COJP_PROXY_SCHEME,
                      sizeof CJ_COJP_PROXY_SCHEME - 1);
    cj_coap_build_payload(&b, payload, (size_t)n);
    if ((n = cj_coap_build_finish(&b)) < 0)
        return -1;
    n = cj_oscore_protect_request(&ps->ctx[i], plain, (size_t)n, ps->msg[i], REQ_CAP,
                                  &ps->req[i]);
    if (n < 0)
        return -1;
    ps->len[i] = (uint8_t)n;
    return 0;
}

static int pledges_init(pledge_set_t *ps, size_t n)
{
    ps->n = n;
    ps->ctx = calloc(n, sizeof *ps->ctx);
    ps->req = calloc(n, sizeof *ps->req);
    ps->msg = calloc(n, sizeof *ps->msg);
    ps->len = calloc(n, 1);
    if (!ps->ctx || !ps->req || !ps->msg || !ps->len)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (pledge_build(ps, i) != 0)
            return -1;
    return 0;
}

static void pledges_free(pledge_set_t *ps)
{
    if (ps->ctx)
        cj_crypto_wipe(ps->ctx, ps->n * sizeof *ps->ctx);
    free(ps->ctx);
    free(ps->req);
    free(ps->msg);
    free(ps->len);
    ps->ctx = NULL;
    ps->req = NULL;
    ps->msg = NULL;
    ps->len = NULL;
    ps->n = 0;
}

static int write_csv(const pledge_set_t *ps, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (size_t i = 0; i < ps->n; i++) {
        uint8_t id[8], psk[16];
        char hid[17], hpsk[33];
        pledge_id(ps, i, id);
        if (pledge_psk(ps, id, psk) != CJ_OK) {
            fclose(f);
            return -1;
        }
        fprintf(f, "%s,%s\n", cj_hex_fmt(hid, id, 8), cj_hex_fmt(hpsk, psk, 16));
        cj_crypto_wipe(psk, sizeof psk);
    }
    return fclose(f);
}

/* ---- the answer a pledge gets -------------------------------------------- */

/* A relayed Join Response: OSCORE-verified under the pledge's context and
 * carrying a Configuration with link-layer keys and a short id. */
static bool verify_answer(pledge_set_t *ps, size_t i, uint8_t *msg, size_t len)
{
    uint8_t out[512];
    cj_coap_msg_t m;
    cj_cojp_config_t cfg;
    int n = cj_oscore_unprotect_response(&ps->ctx[i], &ps->req[i], msg, len, out, sizeof out);
    if (n < 0 || cj_coap_parse(&m, out, (size_t)n) != CJ_OK || m.code != CJ_COAP_CHANGED)
        return false;
    if (cj_cojp_config_decode(m.payload, m.payload_len, &cfg, NULL) != CJ_OK)
        return false;
    return cfg.key_count > 0 && cfg.short_id != NULL;
}

/* ---- echo server ----------------------------------------------------------- */

/* Answer every datagram with `size` bytes: the request's CoAP header and
 * token with type NON and code 2.04 (so the Join Proxy relays it like a
 * JRC answer), then a payload of filler.  poll + recvfrom/sendto, one
 * datagram per call: a plain UDP server. */
static int echo_serve(int fd, size_t size)
{
    uint8_t in[1500], out[1500];
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (size < 8 || size > sizeof out)
        return 2;
    memset(out, 0x5a, sizeof out);
    alarm(ECHO_LIFETIME_S);
    for (;;) {
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return 1;
        for (int k = 0; k < 64; k++) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            ssize_t n = recvfrom(fd, in, sizeof in, 0, (struct sockaddr *)&ss, &sl);
            size_t head;
            if (n < 0)
                break;
            if (n < 4)
                continue;
            head = 4 + (size_t)(in[0] & 15); /* plain tokens only */
            if ((in[0] & 15) == 13 && n > 4)
                head = 5 + 13 + (size_t)in[4];
            else if ((in[0] & 15) == 14)
                head = 6 + 269 + ((size_t)in[4] << 8 | in[5]);
            if (head + 2 > size || head > (size_t)n)
                continue;
            memcpy(out, in, head);
            out[0] = (uint8_t)((in[0] & 0xcf) | CJ_COAP_NON << 4);
            out[1] = CJ_COAP_CHANGED;
            out[head] = 0xff;
            sendto(fd, out, size, 0, (struct sockaddr *)&ss, sl);
        }
    }
}

/* ---- generator ----------------------------------------------------------- */

static void hist_add(phase_t *ph, uint64_t ns)
{
    uint64_t us = ns / 1000u;
    if (us >= HIST_US)
        ph->hist_over++;
    else
        ph->hist[us]++;
}

static double hist_pct(const phase_t *ph, double q)
{
    uint64_t total = ph->hist_over, want, acc = 0;
    for (uint32_t i = 0; i < HIST_US; i++)
        total += ph->hist[i];
    if (!total)
        return 0;
    want = (uint64_t)(q * (double)total);
    if (want >= total)
        want = total - 1;
    for (uint32_t i = 0; i < HIST_US; i++) {
        acc += ph->hist[i];
        if (acc > want)
            return (i + 0.5) / 1000.0;
    }
    return HIST_US / 1000.0;
}

/* Run one phase against the server at srv: up to `window` requests in
 * flight, pledges taken in order, until `secs` pass or every pledge was
 * sent (then DRAIN_MS for the last answers). */
static int run_phase(phase_t *ph, pledge_set_t *ps, const struct sockaddr_storage *srv,
                     socklen_t srvlen, unsigned window, double secs, pid_t server)
{
    cj_proxy_t jp;
    cj_proxy_cfg_t pc;
    uint64_t *sent_ns = calloc(ps->n, sizeof *sent_ns);
    uint64_t t0, t_end, head = 0, next = 0, inflight = 0;
    double c0, s0;
    int fd, rc = 0;
    struct mmsghdr rm[64];
    struct iovec riov[64];
    static uint8_t rbuf[64][1500];

    ph->hist = calloc(HIST_US, sizeof *ph->hist);
    if (!sent_ns || !ph->hist)
        return -1;
    memset(&pc, 0, sizeof pc);
    cj_net_to_addr((const struct sockaddr *)srv, &pc.jrc);
    pc.join_rate = CJ_PROXY_RATE_UNLIMITED;
    pc.token_lifetime_ms = 4 * LOST_MS;
    if (cj_proxy_init(&jp, &pc, NULL) != CJ_OK)
        return -1;
    fd = socket(srv->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)srv, srvlen) != 0)
        return -1;
    cj_net_set_rcvbuf(fd, 4 << 20);
    for (int k = 0; k < 64; k++) {
        riov[k].iov_base = rbuf[k];
        riov[k].iov_len = sizeof rbuf[k];
        memset(&rm[k], 0, sizeof rm[k]);
        rm[k].msg_hdr.msg_iov = &riov[k];
        rm[k].msg_hdr.msg_iovlen = 1;
    }

    c0 = cpu_self();
    s0 = cpu_of(server);
    t0 = now_ns();
    t_end = t0 + (uint64_t)(secs * 1e9);
    for (;;) {
        uint64_t t = now_ns();
        bool sending = t < t_end && (ph->cycle || next < ps->n);

        if (!sending && inflight == 0)
            break;
        if (!sending && t > t_end + DRAIN_MS * 1000000ull && next >= head)
            break; /* drain time over: what is left is lost */
        /* fill the window */
        if (sending && inflight < window) {
            static uint8_t sbuf[64][512];
            struct mmsghdr sm[64];
            struct iovec siov[64];
            unsigned k = 0;
            while (k < 64 && inflight + k < window && (ph->cycle || next + k < ps->n)) {
                size_t i = (size_t)((next + k) % ps->n);
                cj_addr_t from;
                cj_out_t o = {.buf = sbuf[k], .cap = sizeof sbuf[k]};
                pledge_addr(i, &from);
                if (cj_proxy_input_pledge(&jp, t / 1000000u, &from, ps->msg[i], ps->len[i], &o) != 1)
                    return -1;
                siov[k].iov_base = sbuf[k];
                siov[k].iov_len = o.len;
                memset(&sm[k], 0, sizeof sm[k]);
                sm[k].msg_hdr.msg_iov = &siov[k];
                sm[k].msg_hdr.msg_iovlen = 1;
                ph->bytes_out += o.len;
                sent_ns[i] = now_ns();
                k++;
            }
            int s = k ? sendmmsg(fd, sm, k, 0) : 0;
            if (s < 0)
                s = 0; /* ENOBUFS/EAGAIN: retried next round */
            next += (uint64_t)s;
            inflight += (uint64_t)s;
            ph->sent += (uint64_t)s;
            for (unsigned j = (unsigned)s; j < k; j++)
                sent_ns[(next + j - (unsigned)s) % ps->n] = 0;
        }
        /* answers */
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, inflight >= window || !sending ? 10 : 0) > 0) {
            int got = recvmmsg(fd, rm, 64, MSG_DONTWAIT, NULL);
            uint64_t tr = now_ns();
            for (int k = 0; k < got; k++) {
                uint8_t rel[1500], abuf[CJ_PROXY_ACK_LEN];
                cj_out_t o = {.buf = rel, .cap = sizeof rel};
                cj_out_t ack = {.buf = abuf, .cap = sizeof abuf};
                long i;
                int relayed;
                ph->bytes_in += rm[k].msg_len;
                relayed = cj_proxy_input_jrc(&jp, tr / 1000000u, &pc.jrc, rbuf[k], rm[k].msg_len,
                                             &o, &ack);
                if (ack.len) /* the ACK of a CON answer (fd is connected) */
                    (void)send(fd, ack.buf, ack.len, 0);
                if (relayed != 1 || (i = addr_index(&o.to)) < 0 || (size_t)i >= ps->n) {
                    ph->bad++;
                    continue;
                }
                if (!sent_ns[i]) {
                    ph->late++; /* already counted lost */
                    continue;
                }
                hist_add(ph, tr - sent_ns[i]);
                sent_ns[i] = 0;
                inflight--;
                ph->answered++;
                if (ph->verify) {
                    if (verify_answer(ps, (size_t)i, rel, o.len))
                        ph->verified++;
                    else
                        ph->bad++;
                }
            }
        }
        /* losses: the oldest request still unanswered after LOST_MS */
        t = now_ns();
        while (head < next && (!sent_ns[head % ps->n] ||
                               t - sent_ns[head % ps->n] > LOST_MS * 1000000ull)) {
            if (sent_ns[head % ps->n]) {
                sent_ns[head % ps->n] = 0;
                inflight--;
                ph->lost++;
            }
            head++;
        }
    }
    ph->secs = (double)(now_ns() - t0) / 1e9;
    ph->lost += inflight;
    ph->gen_cpu = (cpu_self() - c0) / ph->secs;
    ph->srv_cpu = (cpu_of(server) - s0) / ph->secs;
    close(fd);
    free(sent_ns);
    return rc;
}

/* ---- processes ------------------------------------------------------------ */

static char self_exe[4096];

/* Start argv (a cojp subcommand) with stdout to /dev/null and stderr to
 * log (NULL: inherited), pinned to CPU number cpu when cpu >= 0. */
static pid_t spawn(char *const argv[], const char *log, int cpu, const char *exe)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (cpu >= 0)
        pin(cpu);
    int nul = open("/dev/null", O_WRONLY);
    if (nul >= 0)
        dup2(nul, STDOUT_FILENO);
    if (log) {
        int l = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (l >= 0)
            dup2(l, STDERR_FILENO);
    }
    execv(exe ? exe : self_exe, argv);
    _exit(127);
}

static int run_wait(char *const argv[])
{
    int st;
    pid_t pid = spawn(argv, NULL, -1, NULL);
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int stop_child(pid_t pid)
{
    int st = 0;
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return st;
}

/* Wait until the daemon logged its start (it binds before logging). */
static int wait_started(pid_t pid, const char *log)
{
    char buf[8192];
    for (int i = 0; i < 1000; i++) {
        int st;
        FILE *f = fopen(log, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = 0;
            if (strstr(buf, "\"event\":\"start\""))
                return 0;
        }
        if (waitpid(pid, &st, WNOHANG) == pid)
            return -1;
        usleep(10000);
    }
    return -1;
}

/* A field of the daemon's last "shutdown" record, or 0. */
static unsigned long log_field(const char *log, const char *key)
{
    static char buf[1 << 16];
    char pat[64], *p, *last = NULL;
    FILE *f = fopen(log, "r");
    size_t n;
    long off;
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    off = ftell(f) - (long)sizeof buf + 1;
    fseek(f, off > 0 ? off : 0, SEEK_SET);
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    for (p = buf; (p = strstr(p, "\"event\":\"shutdown\"")); p++)
        last = p;
    if (!last)
        return 0;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = strstr(last, pat);
    return p ? strtoul(p + strlen(pat), NULL, 10) : 0;
}

static int free_port(struct sockaddr_storage *ss, socklen_t *sl)
{
    int fd;
    cj_net_parse("127.0.0.1:0", ss, sl);
    if ((fd = cj_net_udp_bind(ss, *sl)) < 0)
        return -1;
    cj_net_local(fd, ss, sl);
    close(fd);
    return 0;
}

static void print_phase(const phase_t *ph, const char *unit)
{
    printf("bench %s: %" PRIu64 " requests, %" PRIu64 " responses", ph->name, ph->sent,
           ph->answered);
    if (ph->verify)
        printf(" (%" PRIu64 " verified)", ph->verified);
    printf(", %.0f %s/s, p50 %.2f ms, p99 %.2f ms, lost %" PRIu64, ph->answered / ph->secs,
           unit, hist_pct(ph, 0.50), hist_pct(ph, 0.99), ph->lost);
    if (ph->bad)
        printf(", bad %" PRIu64, ph->bad);
    printf("; %.1f s, server cpu %.0f%% (%.1f us per answer), generator cpu %.0f%%\n",
           ph->secs, 100 * ph->srv_cpu,
           ph->answered ? 1e6 * ph->srv_cpu * ph->secs / (double)ph->answered : 0.0,
           100 * ph->gen_cpu);
    fflush(stdout);
}

/* The files a round leaves in dir. */
static void rm_files(const char *dir)
{
    static const char *const files[] = {"jrc.db", "jrc.db-wal", "jrc.db-shm", "jrc.db-journal",
                                        "pledges.csv", "jrc.log"};
    char f[4200];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(f, sizeof f, "%s/%s", dir, files[i]);
        unlink(f);
    }
}

static void rm_dir(const char *dir)
{
    rm_files(dir);
    rmdir(dir);
}

/* libpq's notices (such as DROP's list of what it cascades to) are not
 * the bench's output. */
static void pg_quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* Run one statement on a new connection to the PostgreSQL database at
 * uri: 0, or -1 with the server's or libpq's message (first line) in
 * err. */
static int pg_exec(const char *uri, const char *sql, char *err, size_t cap)
{
    PGconn *c = PQconnectdb(uri);
    PGresult *r = NULL;
    int rc;

    if (PQstatus(c) == CONNECTION_OK) {
        PQsetNoticeProcessor(c, pg_quiet, NULL);
        r = PQexec(c, sql);
    }
    rc = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;

    if (rc != 0) {
        snprintf(err, cap, "%s", PQerrorMessage(c));
        err[strcspn(err, "\n")] = '\0';
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}

static void usage(void)
{
    printf("usage: cojp bench [--db postgresql://URI | --pg] [--duration S] [--pledges N]\n"
           "                  [--window W] [--rounds R]\n"
           "       cojp bench --echo-server ADDR --size BYTES\n"
           "\n"
           "Join exchanges per second of 'cojp jrc serve' over loopback, and the\n"
           "rate of a plain UDP echo server answering the same datagrams with\n"
           "datagrams of a Join Response's size; prints both, their ratio and\n"
           "p50/p99 latency.  The servers run pinned to one CPU, this process (the\n"
           "load generator: N pledges behind a Join Proxy engine) to another.\n"
           "  --db URI      registry: default a SQLite file in a new temporary\n"
           "                directory (synchronous=FULL, WAL; removed afterwards)\n"
           "  --pg          registry at $COJP_PG_URI (tests/pg-server.sh run ...)\n"
           "                (in PostgreSQL the run's tables go into a schema of its\n"
           "                own, dropped afterwards)\n"
           "  --duration S  seconds per phase (default 5, at most 60)\n"
           "  --pledges N   provisioned pledges, each joins once (default 60000;\n"
           "                at most 65000: a network has 65533 short ids)\n"
           "  --window W    requests in flight (default 1024, at most %d)\n"
           "  --rounds R    rounds of both phases, each JRC phase on a registry\n"
           "                of its own (default 3, at most %d); the last line\n"
           "                gives the medians and the median of the ratios\n"
           "  --echo-server ADDR --size BYTES   only run the echo server\n"
           "Environment: COJP_BENCH_JRC=PATH runs the JRC of another cojp build\n"
           "(to compare builds); the generator stays this one.\n",
           MAX_WINDOW, MAX_ROUNDS);
}

/* What a round measured: joins/s and echo answers/s. */
typedef struct round_res {
    double rj, re;
} round_res_t;

/* A round's setting. */
typedef struct round {
    const char *dir;    /* the run's folder: SQLite file, CSV, JRC log */
    const char *pgbase; /* PostgreSQL URI; NULL: an SQLite file in dir */
    bool pg;
    pledge_set_t *ps;
    uint32_t n, window, secs;
    int srv_cpu;
} round_t;

/* The median of v[0..n) (n >= 1), which it sorts. */
static double median(double *v, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One round: N pledges of a fresh id prefix provisioned into a registry
 * of the round's own (a new SQLite file, or a PostgreSQL schema dropped
 * afterwards), the JRC phase, then the echo phase answering with
 * datagrams of the Join Responses' size.  0, or 1 after a one-line
 * error. */
static int one_round(const round_t *rd, round_res_t *res)
{
    char dbpath[4200], csv[4200], log[4200], listen_s[64], size_s[16], schema[32] = "",
         pguri[4300], sql[64];
    const char *db;
    struct sockaddr_storage srv;
    socklen_t srvlen;
    pledge_set_t *ps = rd->ps;
    phase_t pj, pe;
    uint32_t size;
    pid_t pid;
    int rc = 1;

    memset(&pj, 0, sizeof pj);
    memset(&pe, 0, sizeof pe);
    pj.name = rd->pg ? "jrc-postgresql" : "jrc-sqlite";
    pj.verify = true;
    pe.name = "udp-echo";
    pe.cycle = true;
    rm_files(rd->dir); /* the previous round's */
    snprintf(dbpath, sizeof dbpath, "%s/jrc.db", rd->dir);
    snprintf(csv, sizeof csv, "%s/pledges.csv", rd->dir);
    snprintf(log, sizeof log, "%s/jrc.log", rd->dir);
    db = dbpath;
    /* A random id prefix per round: a reused PostgreSQL database never
     * sees an id twice, and no request is answered twice under one key
     * by registries holding different network keys. */
    pledges_free(ps);
    if (cj_crypto_random(ps->run, sizeof ps->run) != CJ_OK)
        goto out;
    if (rd->pgbase) {
        /* A schema of this round's own (dropped at the end), so runs on
         * one database never meet each other's rows or live leases. */
        char hex[2 * sizeof ps->run + 1], err[256] = "URI too long";
        snprintf(schema, sizeof schema, "cojp_bench_%s", cj_hex_fmt(hex, ps->run, sizeof ps->run));
        snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
        if (strlen(rd->pgbase) + 64 > sizeof pguri ||
            pg_exec(rd->pgbase, sql, err, sizeof err) != 0) {
            schema[0] = '\0';
            cj_fail(1, CMD, "cannot create a schema for the run: %s", err);
            goto out;
        }
        snprintf(pguri, sizeof pguri, "%s%coptions=-csearch_path%%3D%s", rd->pgbase,
                 strchr(rd->pgbase, '?') ? '&' : '?', schema);
        db = pguri;
    }

    /* provision */
    if (pledges_init(ps, rd->n) != 0 || write_csv(ps, csv) != 0) {
        cj_fail(1, CMD, "cannot prepare the pledges");
        goto out;
    }
    {
        char *av[] = {"cojp", "jrc", "import", "--db", (char *)db, csv, NULL};
        if (run_wait(av) != 0) {
            cj_fail(1, CMD, "cojp jrc import failed");
            goto out;
        }
    }

    /* phase 1: the JRC daemon */
    if (free_port(&srv, &srvlen) != 0)
        goto out;
    cj_net_fmt((struct sockaddr *)&srv, listen_s, sizeof listen_s);
    {
        char *av[] = {"cojp", "jrc", "serve", "--db", (char *)db, "--listen", listen_s,
                      "--network-id", "cafe", NULL};
        pid = spawn(av, log, rd->srv_cpu, getenv("COJP_BENCH_JRC"));
    }
    if (pid < 0 || wait_started(pid, log) != 0) {
        cj_fail(1, CMD, "the JRC did not start (log: %s)", log);
        if (pid > 0)
            stop_child(pid);
        goto out;
    }
    rc = run_phase(&pj, ps, &srv, srvlen, rd->window, rd->secs, pid);
    stop_child(pid);
    if (rc != 0) {
        cj_fail(1, CMD, "the JRC phase failed");
        rc = 1;
        goto out;
    }
    print_phase(&pj, "joins");
    {
        unsigned long commits = log_field(log, "commits"), joins = log_field(log, "joins");
        if (commits)
            printf("bench %s: %lu joins in %lu commits (%.1f per commit)\n", pj.name, joins,
                   commits, (double)joins / (double)commits);
    }
    if (!pj.answered) {
        cj_fail(1, CMD, "no answer from the JRC (log: %s)", log);
        rc = 1;
        goto out;
    }

    /* phase 2: the echo server, answering with a Join Response's size */
    size = (uint32_t)(pj.bytes_in / pj.answered);
    if (free_port(&srv, &srvlen) != 0) {
        rc = 1;
        goto out;
    }
    cj_net_fmt((struct sockaddr *)&srv, listen_s, sizeof listen_s);
    snprintf(size_s, sizeof size_s, "%u", (unsigned)size);
    {
        char *av[] = {"cojp", "bench", "--echo-server", listen_s, "--size", size_s, NULL};
        pid = spawn(av, NULL, rd->srv_cpu, NULL);
    }
    if (pid < 0) {
        rc = 1;
        goto out;
    }
    usleep(200000); /* bind */
    rc = run_phase(&pe, ps, &srv, srvlen, rd->window, rd->secs, pid);
    stop_child(pid);
    if (rc != 0 || !pe.answered) {
        cj_fail(1, CMD, "the echo phase failed");
        rc = 1;
        goto out;
    }
    print_phase(&pe, "answers");
    res->rj = pj.answered / pj.secs;
    res->re = pe.answered / pe.secs;
    printf("bench %s: %.0f joins/s p50 %.2f ms p99 %.2f ms; udp-echo: %.0f/s p50 %.2f ms "
           "p99 %.2f ms (%u-byte requests, %u-byte answers); ratio %.3f (goal >= 0.5)\n",
           pj.name, res->rj, hist_pct(&pj, 0.5), hist_pct(&pj, 0.99), res->re,
           hist_pct(&pe, 0.5), hist_pct(&pe, 0.99),
           (unsigned)(pj.bytes_out / (pj.sent ? pj.sent : 1)), (unsigned)size,
           res->rj / res->re);
    fflush(stdout);
    rc = pj.bad || pj.verified != pj.answered ? 1 : 0;
    if (rc)
        cj_fail(1, CMD, "%" PRIu64 " answers failed verification", pj.bad);
out:
    if (schema[0]) {
        char err[256];
        snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", schema);
        if (pg_exec(rd->pgbase, sql, err, sizeof err) != 0)
            fprintf(stderr, "%s: schema %s left behind: %s\n", CMD, schema, err);
    }
    free(pj.hist);
    free(pe.hist);
    return rc;
}

int cj_cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},       {"pg", no_argument, NULL, 'P'},
        {"duration", required_argument, NULL, 't'}, {"pledges", required_argument, NULL, 'n'},
        {"window", required_argument, NULL, 'w'},   {"echo-server", required_argument, NULL, 'E'},
        {"size", required_argument, NULL, 's'},     {"rounds", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *db = NULL, *echo_addr = NULL;
    uint32_t secs = 5, npledges = 60000, window = MAX_WINDOW, size = 0, rounds = 3;
    char dir[] = "/tmp/cojp-bench.XXXXXX";
    struct sockaddr_storage srv;
    socklen_t srvlen;
    pledge_set_t ps;
    round_res_t res[MAX_ROUNDS];
    int c, cores, srv_cpu = -1, gen_cpu = -1, rc = 1;
    bool pg = false;
    ssize_t n;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'P': pg = true; break;
        case 't':
            if (cj_parse_u32(optarg, 1, 60, &secs))
                return cj_fail(2, CMD, "--duration must be 1..60 seconds");
            break;
        case 'n':
            if (cj_parse_u32(optarg, 1000, 65000, &npledges))
                return cj_fail(2, CMD, "--pledges must be 1000..65000");
            break;
        case 'w':
            if (cj_parse_u32(optarg, 1, MAX_WINDOW, &window))
                return cj_fail(2, CMD, "--window must be 1..%d", MAX_WINDOW);
            break;
        case 'r':
            if (cj_parse_u32(optarg, 1, MAX_ROUNDS, &rounds))
                return cj_fail(2, CMD, "--rounds must be 1..%d", MAX_ROUNDS);
            break;
        case 'E': echo_addr = optarg; break;
        case 's':
            if (cj_parse_u32(optarg, 8, 1280, &size))
                return cj_fail(2, CMD, "--size must be 8..1280 bytes");
            break;
        case 'h': usage(); return 0;
        default: return cj_fail(2, CMD, "unknown or incomplete option '%s' (try --help)",
                                argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cj_fail(2, CMD, "unexpected argument '%s'", argv[optind]);
    if (echo_addr) {
        int fd;
        if (!size)
            return cj_fail(2, CMD, "--echo-server needs --size");
        if (cj_net_parse(echo_addr, &srv, &srvlen))
            return cj_fail(2, CMD, "bad address '%s'", echo_addr);
        if ((fd = cj_net_udp_bind(&srv, srvlen)) < 0)
            return cj_fail(1, CMD, "cannot bind %s: %s", echo_addr, strerror(errno));
        cj_net_set_rcvbuf(fd, 8 << 20);
        return echo_serve(fd, size);
    }
    if (pg) {
        db = getenv("COJP_PG_URI");
        if (!db || !*db)
            return cj_fail(2, CMD, "--pg needs COJP_PG_URI (tests/pg-server.sh run ...)");
    }
    if (db && strncmp(db, "postgres", 8))
        return cj_fail(2, CMD, "--db takes a postgresql:// URI (default: a SQLite file)");
    if ((n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1)) <= 0)
        return cj_fail(1, CMD, "cannot find my own executable");
    self_exe[n] = 0;
    if (!mkdtemp(dir))
        return cj_fail(1, CMD, "mkdtemp: %s", strerror(errno));

    memset(&ps, 0, sizeof ps);
    /* A fixed seed (both sides derive the PSKs from it). */
    memcpy(ps.seed, "cojp bench seed!", 16);
    cores = ncpus();
    if (cores >= 2) {
        srv_cpu = cpu_at(0);
        gen_cpu = cpu_at(1);
    }
    if (srv_cpu < 0 || gen_cpu < 0 || pin(gen_cpu) < 0)
        srv_cpu = gen_cpu = -1;
    printf("bench setup: %d cores; ", cores);
    if (gen_cpu >= 0)
        printf("servers pinned to cpu %d, generator to cpu %d (sched_setaffinity)",
               srv_cpu, gen_cpu);
    else
        printf("not pinned (one core)");
    printf("; window %u, %u s per phase, %u pledges provisioned per round, %u round%s (%s)\n",
           (unsigned)window, (unsigned)secs, (unsigned)npledges, (unsigned)rounds,
           rounds == 1 ? "" : "s",
           pg ? "PostgreSQL" : "SQLite file, synchronous=FULL, WAL, group commit");
    fflush(stdout);

    for (uint32_t k = 0; k < rounds; k++) {
        round_t rd = {.dir = dir, .pgbase = db, .pg = pg, .ps = &ps, .n = npledges,
                      .window = window, .secs = secs, .srv_cpu = srv_cpu};
        if ((rc = one_round(&rd, &res[k])) != 0)
            goto out;
    }
    if (rounds > 1) {
        double rj[MAX_ROUNDS], re[MAX_ROUNDS], ra[MAX_ROUNDS];
        for (uint32_t k = 0; k < rounds; k++) {
            rj[k] = res[k].rj;
            re[k] = res[k].re;
            ra[k] = res[k].rj / res[k].re;
        }
        printf("bench %s: median of %u rounds: %.0f joins/s; udp-echo: %.0f/s; ratio %.3f "
               "(rounds:", pg ? "jrc-postgresql" : "jrc-sqlite", (unsigned)rounds,
               median(rj, rounds), median(re, rounds), median(ra, rounds));
        for (uint32_t k = 0; k < rounds; k++)
            printf(" %.3f", res[k].rj / res[k].re);
        printf(") (goal >= 0.5)\n");
    }
    rc = 0;
out:
    pledges_free(&ps);
    rm_dir(dir);
    return rc;
}
