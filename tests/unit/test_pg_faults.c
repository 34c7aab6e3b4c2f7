/*
 * The PostgreSQL store (store/postgres.h) when its connection fails.  A
 * proxy thread sits between libpq and the throwaway server's unix socket
 * and forwards the protocol one request (the client's messages up to a
 * Sync, Query or Terminate, or the startup packet) or one answer (the
 * server's messages up to ReadyForQuery) at a time.  Armed, it meets the
 * Nth request or answer after arming with one fault:
 *   - req-half:   half of the request's bytes reach the server, then the
 *                 connection is cut (both sides closed);
 *   - resp-none:  the server ran the request, the client gets nothing of
 *                 its answer, the connection is cut;
 *   - resp-half:  the client gets half of the answer's bytes, then cut;
 *   - resp-noready: the client gets all of the answer but its final
 *                 ReadyForQuery, then cut;
 *   - stall:      half of the answer, a pause, then the rest (no cut).
 * After a cut the proxy reads the server side to its end, so the server
 * session is gone (its transaction ended, its locks released) before
 * anything else reaches the server.  Every scenario runs once per fault
 * and point (N = 1, 2, ... until it completes without meeting the
 * fault), each time from the same registry content.  Then, the proxy
 * passing everything again, it checks: each call returned success or its
 * documented error (never a crash or a hang: a watchdog cuts every
 * connection and fails the test); the handle reconnects and works; the
 * registry holds, for every unit of work, all of it or nothing of it,
 * all of it whenever the call reported success (cojp/jrc.h store
 * contract, store/postgres.h); no short id is held twice; no sequence
 * number reservation is below one handed out by committed work.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cojp/jrc.h"
#include "store/postgres.h"
#include "store_suite.h"
#include "../test.h"
#include "pg_test.h"

/* ---- the proxy --------------------------------------------------------------- */

enum { K_REQ_HALF, K_RESP_NONE, K_RESP_HALF, K_RESP_NOREADY, K_STALL, N_KINDS };
static const char *const kind_name[N_KINDS] = {
    "req-half", "resp-none", "resp-half", "resp-noready", "stall",
};
#define ALL_KINDS ((1u << N_KINDS) - 1)
/* Outside a batch a request is one statement: what the store can tell
 * apart is whether the server ran it before the cut. */
#define CUT_KINDS (1u << K_REQ_HALF | 1u << K_RESP_NONE)

#define PX_PAIRS 8
#define STALL_MS 2
/* a step taking longer than this is hung: every connection is cut */
#define WATCHDOG_MS 15000
/* a cut server session must end within this */
#define DRAIN_MS 10000

typedef struct buf {
    uint8_t *b;
    size_t n, cap;
} buf_t;

typedef struct pair {
    int c, s;      /* client and server side; -1: closed */
    buf_t up, dn;  /* bytes read, not forwarded yet */
    bool started;  /* the client's startup packet went through */
} pair_t;

static struct {
    pthread_t t;
    pthread_mutex_t mu;
    int lfd;
    /* the proxy's socket, its directory, the server's socket (each
     * fits sun_path) */
    char dir[64], sock[96], real[96];
    atomic_bool stop;
    pair_t p[PX_PAIRS];
    atomic_int npairs;
    /* the fault (under mu) */
    bool armed, fired;
    int kind;
    unsigned at, nreq, nresp;
    /* watchdog: monotonic ms by which the step must end (0: none) */
    atomic_llong deadline;
    atomic_bool hung, drain_failed;
} px;

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void buf_add(buf_t *b, const uint8_t *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        b->b = realloc(b->b, cap);
        if (b->b == NULL)
            abort();
        b->cap = cap;
    }
    memcpy(b->b + b->n, d, n);
    b->n += n;
}

static void buf_drop(buf_t *b, size_t n)
{
    memmove(b->b, b->b + n, b->n - n);
    b->n -= n;
}

static void buf_free(buf_t *b)
{
    free(b->b);
    memset(b, 0, sizeof *b);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Length of the first whole request (up) or answer (!up) in b, 0 while
 * it is incomplete. */
static size_t unit_len(const buf_t *b, bool up, bool started)
{
    size_t off = 0;

    if (up && !started) {
        if (b->n < 4)
            return 0;
        off = be32(b->b);
        return off >= 8 && off <= b->n ? off : 0;
    }
    while (off + 5 <= b->n) {
        uint8_t type = b->b[off];
        size_t len = 1 + (size_t)be32(b->b + off + 1);
        if (off + len > b->n)
            return 0;
        off += len;
        if (up ? (type == 'S' || type == 'Q' || type == 'X') : type == 'Z')
            return off;
    }
    return 0;
}

static void send_all(int fd, const uint8_t *b, size_t n)
{
    while (fd >= 0 && n > 0) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return; /* the peer is gone: so is what it would have read */
        b += k;
        n -= (size_t)k;
    }
}

/* Read the server side to its end: the session has ended then (its
 * socket closes after its transaction was aborted and its locks
 * released). */
static void drain_server(pair_t *p)
{
    uint8_t tmp[4096];
    long long until = mono_ms() + DRAIN_MS;

    shutdown(p->s, SHUT_WR);
    for (;;) {
        struct pollfd f = {p->s, POLLIN, 0};
        long long left = until - mono_ms();
        ssize_t k;
        if (left <= 0) {
            atomic_store(&px.drain_failed, true);
            break;
        }
        if (poll(&f, 1, (int)left) <= 0)
            continue;
        k = read(p->s, tmp, sizeof tmp);
        if (k == 0 || (k < 0 && errno != EINTR))
            break;
    }
}

static void pair_close(pair_t *p)
{
    if (p->c >= 0)
        close(p->c);
    if (p->s >= 0) {
        drain_server(p);
        close(p->s);
    }
    p->c = p->s = -1;
    buf_free(&p->up);
    buf_free(&p->dn);
    atomic_fetch_sub(&px.npairs, 1);
}

/* The fault this unit meets, or -1. */
static int fault_for(bool up)
{
    int k = -1;

    pthread_mutex_lock(&px.mu);
    if (px.armed && !px.fired) {
        unsigned n = up ? ++px.nreq : ++px.nresp;
        bool mine = (px.kind == K_REQ_HALF) == up;
        if (mine && n == px.at) {
            px.fired = true;
            k = px.kind;
        }
    }
    pthread_mutex_unlock(&px.mu);
    return k;
}

/* Forward every whole unit of one direction; false once the pair is
 * cut. */
static bool forward(pair_t *p, bool up)
{
    buf_t *b = up ? &p->up : &p->dn;
    int to = up ? p->s : p->c;
    size_t len;

    while ((len = unit_len(b, up, p->started)) > 0) {
        int k = fault_for(up);
        size_t cut = len;

        if (up)
            p->started = true;
        switch (k) {
        case K_REQ_HALF:
        case K_RESP_HALF:
            cut = len / 2;
            break;
        case K_RESP_NONE:
            cut = 0;
            break;
        case K_RESP_NOREADY:
            cut = len - 6; /* ReadyForQuery is 6 bytes */
            break;
        case K_STALL:
            send_all(to, b->b, len / 2);
            sleep_ms(STALL_MS);
            send_all(to, b->b + len / 2, len - len / 2);
            buf_drop(b, len);
            continue;
        default:
            break;
        }
        send_all(to, b->b, cut);
        if (cut < len) {
            pair_close(p);
            return false;
        }
        buf_drop(b, len);
    }
    return true;
}

/* Read what one side has; false once the pair is closed. */
static bool pump(pair_t *p, bool up)
{
    uint8_t tmp[16384];
    ssize_t k = read(up ? p->c : p->s, tmp, sizeof tmp);

    if (k < 0 && errno == EINTR)
        return true;
    if (k <= 0) {
        /* one side ended: the other gets what was left, then the end */
        if (!up)
            send_all(p->c, p->dn.b, p->dn.n);
        pair_close(p);
        return false;
    }
    buf_add(up ? &p->up : &p->dn, tmp, (size_t)k);
    return forward(p, up);
}

static void accept_one(void)
{
    struct sockaddr_un sa;
    int c = accept(px.lfd, NULL, NULL), s;

    if (c < 0)
        return;
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, px.real, sizeof px.real);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (s >= 0)
            close(s);
        close(c);
        return;
    }
    for (int i = 0; i < PX_PAIRS; i++) {
        if (px.p[i].c < 0 && px.p[i].s < 0) {
            memset(&px.p[i], 0, sizeof px.p[i]);
            px.p[i].c = c;
            px.p[i].s = s;
            atomic_fetch_add(&px.npairs, 1);
            return;
        }
    }
    close(s);
    close(c);
}

static void *px_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&px.stop)) {
        struct pollfd f[1 + 2 * PX_PAIRS];
        int where[1 + 2 * PX_PAIRS];
        int n = 0;
        long long dl = atomic_load(&px.deadline);

        f[n].fd = px.lfd;
        f[n].events = POLLIN;
        where[n++] = -1;
        for (int i = 0; i < PX_PAIRS; i++) {
            if (px.p[i].c < 0)
                continue;
            f[n].fd = px.p[i].c;
            f[n].events = POLLIN;
            where[n++] = 2 * i;
            f[n].fd = px.p[i].s;
            f[n].events = POLLIN;
            where[n++] = 2 * i + 1;
        }
        if (dl != 0 && mono_ms() > dl) {
            /* hung: cut everything so that the step can end and fail */
            atomic_store(&px.hung, true);
            atomic_store(&px.deadline, 0);
            for (int i = 0; i < PX_PAIRS; i++)
                if (px.p[i].c >= 0)
                    pair_close(&px.p[i]);
            continue;
        }
        if (poll(f, (nfds_t)n, 20) <= 0)
            continue;
        for (int j = 0; j < n; j++) {
            pair_t *p;
            if (!(f[j].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (where[j] < 0) {
                accept_one();
                continue;
            }
            p = &px.p[where[j] / 2];
            if (p->c >= 0 && p->s >= 0)
                (void)pump(p, where[j] % 2 == 0);
        }
    }
    for (int i = 0; i < PX_PAIRS; i++)
        if (px.p[i].c >= 0)
            pair_close(&px.p[i]);
    return NULL;
}

/* The server's socket from COJP_PG_URI (host= and port= parameters);
 * false when it names no unix socket directory. */
static bool server_socket(char *out, size_t cap)
{
    const char *u = getenv("COJP_PG_URI"), *h, *p;
    int port = 5432;
    size_t n;

    h = strstr(u, "host=");
    if (h == NULL || h[5] != '/')
        return false;
    h += 5;
    n = strcspn(h, "&");
    p = strstr(u, "port=");
    if (p != NULL)
        port = atoi(p + 5);
    return (size_t)snprintf(out, cap, "%.*s/.s.PGSQL.%d", (int)n, h, port) <
           cap;
}

static bool px_start(void)
{
    struct sockaddr_un sa;

    memset(&px, 0, sizeof px);
    pthread_mutex_init(&px.mu, NULL);
    for (int i = 0; i < PX_PAIRS; i++)
        px.p[i].c = px.p[i].s = -1;
    if (!server_socket(px.real, sizeof px.real))
        return false;
    snprintf(px.dir, sizeof px.dir, "%s/cojp-pgpx.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (strlen(px.dir) > 40 || mkdtemp(px.dir) == NULL)
        return false;
    snprintf(px.sock, sizeof px.sock, "%s/.s.PGSQL.5432", px.dir);
    px.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, px.sock, sizeof px.sock);
    CHECK(px.lfd >= 0);
    CHECK_EQ(bind(px.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(listen(px.lfd, 16), 0);
    CHECK_EQ(pthread_create(&px.t, NULL, px_main, NULL), 0);
    return true;
}

static void px_stop(void)
{
    atomic_store(&px.stop, true);
    pthread_join(px.t, NULL);
    close(px.lfd);
    unlink(px.sock);
    rmdir(px.dir);
    pthread_mutex_destroy(&px.mu);
}

static void px_arm(int kind, unsigned at)
{
    pthread_mutex_lock(&px.mu);
    px.armed = true;
    px.fired = false;
    px.kind = kind;
    px.at = at;
    px.nreq = px.nresp = 0;
    pthread_mutex_unlock(&px.mu);
}

/* Whether the armed fault was met. */
static bool px_disarm(void)
{
    bool fired;
    pthread_mutex_lock(&px.mu);
    px.armed = false;
    fired = px.fired;
    pthread_mutex_unlock(&px.mu);
    return fired;
}

/* Wait until at most n connections pass the proxy (a closed handle's
 * server session has ended). */
static void px_settle(int n)
{
    long long until = mono_ms() + DRAIN_MS;
    while (atomic_load(&px.npairs) > n && mono_ms() < until)
        sleep_ms(1);
    CHECK(atomic_load(&px.npairs) <= n);
}

/* ---- the registry as a later reader sees it -------------------------------------- */

#define SCHEMA "cojp_fault"
#define SNAP "cojp_fault_snap"
#define NOW 100000000u /* ms, the engine's clock in these scenarios */
#define HOUR 3600000u

static char direct_uri[1024]; /* the server itself */
static char proxy_uri[1024];  /* through the proxy */
static PGconn *chk;           /* the checker's own connection, direct */

/* The connection URI with its host replaced by dir and the test schema
 * as search path. */
static void make_uri(char *out, size_t cap, const char *dir)
{
    const char *u = getenv("COJP_PG_URI"), *h = strstr(u, "host=");
    size_t pre = (size_t)(h - u) + 5, rest = strcspn(h + 5, "&");
    int n = snprintf(out, cap,
                     "%.*s%s%s&sslmode=disable&gssencmode=disable"
                     "&options=-csearch_path%%3D" SCHEMA,
                     (int)pre, u, dir ? dir : "", h + 5 + (dir ? rest : 0));
    CHECK(n > 0 && (size_t)n < cap);
}

static void chk_exec(const char *sql)
{
    PGresult *r = PQexec(chk, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK &&
        PQresultStatus(r) != PGRES_TUPLES_OK)
        cj_test_failf(__FILE__, __LINE__, "%s: %s", sql, PQerrorMessage(chk));
    PQclear(r);
}

/* The first column of the first row (malloc'd; "" for NULL or none). */
static char *chk_text(const char *sql)
{
    PGresult *r = PQexec(chk, sql);
    char *t;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        cj_test_failf(__FILE__, __LINE__, "%s: %s", sql, PQerrorMessage(chk));
    t = strdup(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                   ? PQgetvalue(r, 0, 0)
                   : "");
    PQclear(r);
    return t;
}

static long long chk_int(const char *sql)
{
    char *t = chk_text(sql);
    long long v = *t ? strtoll(t, NULL, 10) : -1;
    free(t);
    return v;
}

/* Everything the store keeps, without what the wall clock or an
 * identity sequence decides (those move with failed work too): rows in
 * a fixed order, provisioning and queue order as ranks. */
static char *dump(void)
{
    return chk_text(
        "SELECT concat_ws(E'\\n--\\n',"
        " (SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')"
        "  FROM (SELECT id, rank() OVER (ORDER BY seq) AS o, psk,"
        "  allowed_roles, ssn_reserved, replay_highest, replay_bitmap,"
        "  replay_valid, id_context, joined, role, short_id, lease_until,"
        "  joined_at, address, evicted_at IS NOT NULL AS evicted,"
        "  repeat_cache, okm FROM pledges) t),"
        " (SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t.pledge,"
        "  t.campaign), '') FROM (SELECT session, campaign, pledge, acked"
        "  FROM updates) t),"
        " (SELECT coalesce(string_agg(t::text, ''), '') FROM"
        "  (SELECT next_short, sessions FROM registry_state) t),"
        " (SELECT coalesce(string_agg(t::text, ''), '') FROM"
        "  (SELECT network_id, keys, jrc_address, join_rate, lease_hours,"
        "  next_campaign FROM network) t),"
        " (SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t.o), '')"
        "  FROM (SELECT rank() OVER (ORDER BY seq) AS o, kind, pledge, key"
        "  FROM pending_ops) t),"
        " (SELECT string_agg(version::text, ',' ORDER BY version)"
        "  FROM schema_version))");
}

/* Tables of the test schema. */
static long long n_tables(void)
{
    return chk_int("SELECT count(*) FROM information_schema.tables"
                   " WHERE table_schema = '" SCHEMA "'");
}

/* Registry-wide invariants that hold whatever failed. */
static void check_invariants(void)
{
    /* the partial unique index makes it impossible; asked all the same */
    CHECK_EQ(chk_int("SELECT count(*) FROM (SELECT short_id FROM pledges"
                     " WHERE lease_until IS NOT NULL GROUP BY short_id"
                     " HAVING count(*) > 1) d"),
             0);
    CHECK_EQ(chk_int("SELECT count(*) FROM pledges WHERE lease_until IS NOT"
                     " NULL AND (short_id < 1 OR short_id > 65533)"),
             0);
    /* no server session is left behind in a transaction */
    CHECK_EQ(chk_int("SELECT count(*) FROM pg_stat_activity WHERE"
                     " pid <> pg_backend_pid() AND datname = current_database()"
                     " AND state LIKE 'idle in transaction%'"),
             0);
}

static const char *const snap_tables[] = {
    "pledges", "updates", "registry_state", "network", "pending_ops",
};
#define N_SNAP (sizeof snap_tables / sizeof snap_tables[0])

/* Keep the registry's content (rows and identity sequences) aside. */
static void snapshot(void)
{
    char sql[512];

    chk_exec("SET client_min_messages = warning;"
             "DROP SCHEMA IF EXISTS " SNAP " CASCADE; CREATE SCHEMA " SNAP);
    for (size_t i = 0; i < N_SNAP; i++) {
        snprintf(sql, sizeof sql, "CREATE TABLE " SNAP ".%s AS SELECT * FROM %s",
                 snap_tables[i], snap_tables[i]);
        chk_exec(sql);
    }
    chk_exec("CREATE TABLE " SNAP ".seqs AS"
             " SELECT 'pledges_seq_seq' AS name, last_value AS v, is_called AS c"
             " FROM pledges_seq_seq UNION ALL"
             " SELECT 'updates_seq_seq', last_value, is_called FROM updates_seq_seq"
             " UNION ALL SELECT 'pending_ops_seq_seq', last_value, is_called"
             " FROM pending_ops_seq_seq UNION ALL"
             " SELECT 'evictions', last_value, is_called FROM evictions");
}

/* Put the content kept by snapshot() back. */
static void restore(void)
{
    chk_exec("BEGIN;"
             "DELETE FROM updates; DELETE FROM pending_ops; DELETE FROM network;"
             "DELETE FROM pledges; DELETE FROM registry_state;"
             "INSERT INTO pledges SELECT * FROM " SNAP ".pledges;"
             "INSERT INTO updates SELECT * FROM " SNAP ".updates;"
             "INSERT INTO registry_state SELECT * FROM " SNAP ".registry_state;"
             "INSERT INTO network SELECT * FROM " SNAP ".network;"
             "INSERT INTO pending_ops SELECT * FROM " SNAP ".pending_ops;"
             "SELECT setval(name::regclass, v, c) FROM " SNAP ".seqs;"
             "COMMIT");
}

/* ---- steps ------------------------------------------------------------------- */

/* Where the sweep is, for failure messages. */
static int cur_kind;
static unsigned cur_at;

#define FCHECK(c)                                                          \
    do {                                                                   \
        if (!(c))                                                          \
            cj_test_failf(__FILE__, __LINE__, "%s (fault %s at %u)", #c,   \
                          kind_name[cur_kind], cur_at);                    \
    } while (0)

/* got must be one of the n dumps want[]. */
static void check_one_of(const char *got, const char *const *want, int n,
                         const char *what)
{
    size_t i = 0;
    for (int k = 0; k < n; k++)
        if (want[k] != NULL && strcmp(got, want[k]) == 0)
            return;
    while (got[i] != '\0' && got[i] == want[0][i])
        i++;
    i = i > 80 ? i - 80 : 0;
    cj_test_failf(__FILE__, __LINE__,
                  "%s: fault %s at %u: the registry is none of the %d states"
                  " allowed:\n      got   ...%.300s\n      first ...%.300s",
                  what, kind_name[cur_kind], cur_at, n, got + i, want[0] + i);
}

/* Runs in which some call reported a failure (the sweep prints it). */
static unsigned n_failing;
static bool run_failed;

/* A call's result under connection faults: success or the store's
 * failure; never a wrong answer such as "not found". */
static bool io_result(int r)
{
    if (r == CJ_ERR_STORAGE)
        run_failed = true;
    return r == CJ_OK || r == CJ_ERR_STORAGE;
}

/* The handle after a run: no transaction open, on the client nor on
 * the server, no pipeline left. */
static void check_idle(cj_pg_t *db)
{
    PGconn *c = cj_pg_raw(db);
    FCHECK(!cj_pg_in_transaction(db));
    if (PQstatus(c) == CONNECTION_OK) {
        FCHECK(PQtransactionStatus(c) == PQTRANS_IDLE);
        FCHECK(PQpipelineStatus(c) == PQ_PIPELINE_OFF);
    }
}

/* The registry restored, a handle opened through the (passing) proxy. */
static cj_pg_t *start_run(void)
{
    cj_pg_t *db = NULL;
    px_settle(0);
    restore();
    CHECK_EQ(cj_pg_open(&db, proxy_uri), CJ_OK);
    return db;
}

static void end_run(cj_pg_t *db)
{
    cj_pg_close(db);
    px_settle(0);
    check_invariants();
}

static void arm(int kind, unsigned at)
{
    cur_kind = kind;
    cur_at = at;
    run_failed = false;
    atomic_store(&px.deadline, mono_ms() + WATCHDOG_MS);
    px_arm(kind, at);
}

static bool disarm(void)
{
    bool fired = px_disarm();
    n_failing += run_failed;
    FCHECK(!atomic_load(&px.hung));
    FCHECK(!atomic_load(&px.drain_failed));
    atomic_store(&px.hung, false);
    atomic_store(&px.drain_failed, false);
    return fired;
}

/* Points beyond which a scenario is taken to loop. */
#define MAX_POINTS 400

typedef bool (*step_fn)(int kind, unsigned at);

/* Run step for every fault of kinds (a mask) at every point; prints
 * and returns the number of runs that met their fault.  some_fail: some
 * run must see a call fail (else the faults never reach the store). */
static unsigned sweep(const char *name, step_fn step, unsigned kinds,
                      bool some_fail)
{
    unsigned total = 0, per[N_KINDS] = {0};
    long long t0 = mono_ms();

    n_failing = 0;
    for (int k = 0; k < N_KINDS; k++) {
        unsigned n;
        if (!(kinds & (1u << k)))
            continue;
        for (n = 1; n <= MAX_POINTS && step(k, n); n++)
            per[k]++;
        CHECK(n <= MAX_POINTS);
        total += per[k];
    }
    fprintf(stderr, "  pg-faults %s: %u runs (", name, total);
    for (int k = 0; k < N_KINDS; k++)
        if (kinds & (1u << k))
            fprintf(stderr, "%s%s %u", k ? ", " : "", kind_name[k], per[k]);
    fprintf(stderr, ") in %lld ms, %u with a call failing\n", mono_ms() - t0,
            n_failing);
    if (some_fail)
        CHECK(n_failing > 0);
    return total;
}

/* Reference dumps by key (the calls a fault-free run makes), kept: a
 * scenario asks for few distinct ones, many times. */
typedef struct ref {
    int key[16];
    char *dump;
} ref_t;

static ref_t refs[64];
static size_t n_refs;

static const char *ref_find(const int *key)
{
    for (size_t i = 0; i < n_refs; i++)
        if (memcmp(refs[i].key, key, sizeof refs[i].key) == 0)
            return refs[i].dump;
    return NULL;
}

static const char *ref_put(const int *key, char *dump_text)
{
    CHECK(n_refs < sizeof refs / sizeof refs[0]);
    if (n_refs == sizeof refs / sizeof refs[0]) {
        free(dump_text);
        return "";
    }
    memcpy(refs[n_refs].key, key, sizeof refs[n_refs].key);
    refs[n_refs].dump = dump_text;
    return refs[n_refs++].dump;
}

static void refs_free(void)
{
    for (size_t i = 0; i < n_refs; i++)
        free(refs[i].dump);
    n_refs = 0;
}

/* ---- the fixture ------------------------------------------------------------ */

/* Pledges 0..5; pledge 0 admitted before (window at 5, short id, join,
 * 64 sequence numbers, repeat cache); pledge 5's lease expired, then
 * recovered under a new ID Context; the short-id cursor on pledge 0's
 * id; an outcome recorded for pledge 0; the network row; two pending
 * operations (a rekey, then an evict of pledge 4). */
static const uint8_t ctx5[12] = {0xc5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static uint16_t sid0;
static uint64_t fixture_session;
static cj_pg_network_t net0;

static void net_of(cj_pg_network_t *n, uint32_t lease_hours)
{
    memset(n, 0, sizeof *n);
    n->network_id[0] = 0xca;
    n->network_id[1] = 0xfe;
    n->network_id_len = 2;
    n->key_count = 1;
    n->keys[0].key_id = 1;
    n->keys[0].key_usage = CJ_COJP_KEY_USAGE_K1_MIC32;
    memset(n->keys[0].key, 0x11, 16);
    n->join_rate = UINT32_MAX;
    n->lease_hours = lease_hours;
    n->next_campaign = 3;
}

static void op_of(cj_pg_op_t *op, int kind, unsigned who)
{
    memset(op, 0, sizeof *op);
    op->kind = kind;
    if (kind == CJ_PG_OP_EVICT) {
        ss_make_id(op->id, who);
        op->id_len = 8;
    } else {
        op->has_key = true;
        memset(op->key, (int)who, 16);
    }
}

/* A fresh test schema (empty), the checker connected to it. */
static void fresh_schema(void)
{
    chk_exec("SET client_min_messages = warning;"
             "DROP SCHEMA IF EXISTS " SCHEMA " CASCADE;"
             "CREATE SCHEMA " SCHEMA ";"
             "SET search_path = " SCHEMA);
}

/* Start the proxy and the checker; false (the test is skipped) when the
 * server is not reached through a unix socket. */
static bool scenario_begin(void)
{
    if (!px_start()) {
        fputs("  pg-faults: skipped (COJP_PG_URI names no unix socket)\n",
              stderr);
        return false;
    }
    make_uri(direct_uri, sizeof direct_uri, NULL);
    make_uri(proxy_uri, sizeof proxy_uri, px.dir);
    chk = PQconnectdb(direct_uri);
    CHECK(PQstatus(chk) == CONNECTION_OK);
    fresh_schema();
    return true;
}

static void scenario_end(void)
{
    refs_free();
    chk_exec("SET client_min_messages = warning;"
             "DROP SCHEMA IF EXISTS " SNAP " CASCADE;"
             "DROP SCHEMA IF EXISTS " SCHEMA " CASCADE");
    PQfinish(chk);
    chk = NULL;
    px_stop();
}

static void fixture(void)
{
    cj_pg_t *db = NULL;
    const cj_jrc_store_t *st;
    cj_oscore_replay_t w;
    cj_jrc_repeat_t rep;
    cj_pg_op_t op;
    uint8_t id[8], psk[16];
    uint64_t first = 0;
    uint16_t sid = 0;

    CHECK_EQ(cj_pg_open(&db, direct_uri), CJ_OK);
    st = cj_pg_store(db);
    fixture_session = cj_pg_session(db);
    for (unsigned i = 0; i < 6; i++) {
        ss_make_id(id, i);
        ss_make_psk(psk, i);
        CHECK_EQ(cj_pg_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE), CJ_OK);
    }
    ss_make_id(id, 5);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, NOW - 3 * HOUR, 1, false, &sid),
             CJ_OK);
    CHECK_EQ(st->save_context(st->ctx, id, 8, ss_psk_of(id), ctx5, sizeof ctx5),
             CJ_OK);
    ss_make_id(id, 0);
    ss_repeat_of(0, &rep);
    CHECK_EQ(cj_pg_begin(db), CJ_OK);
    CHECK_EQ(st->accept_piv(st->ctx, id, 8, ss_psk_of(id), NULL, 0, 5, &w),
             CJ_OK);
    CHECK_EQ(st->assign_short_id(st->ctx, id, 8, NOW, 1, false, &sid0), CJ_OK);
    CHECK_EQ(st->record_join(st->ctx, id, 8, 0, sid0, NOW), CJ_OK);
    CHECK_EQ(
        st->reserve_ssn(st->ctx, id, 8, ss_psk_of(id), NULL, 0, 0, 64, &first),
        CJ_OK);
    CHECK_EQ(st->save_repeat(st->ctx, id, 8, ss_psk_of(id), NULL, 0, &rep),
             CJ_OK);
    CHECK_EQ(st->record_update(st->ctx, id, 8, 1, false), CJ_OK);
    CHECK_EQ(cj_pg_commit(db), CJ_OK);
    CHECK_EQ(cj_pg_sql(db, "UPDATE registry_state SET next_short = "
                           "(SELECT short_id FROM pledges WHERE lease_until"
                           " > 100000000)", NULL),
             CJ_OK);
    net_of(&net0, 24);
    CHECK_EQ(cj_pg_network_save(db, &net0), CJ_OK);
    op_of(&op, CJ_PG_OP_REKEY, 0x11);
    CHECK_EQ(cj_pg_op_push(db, &op), CJ_OK);
    op_of(&op, CJ_PG_OP_EVICT, 4);
    CHECK_EQ(cj_pg_op_push(db, &op), CJ_OK);
    cj_pg_close(db);
    snapshot();
}

/* ---- opening: connect, create the schema ------------------------------------ */

/* cj_pg_open on an empty schema: it fails (no handle) or gives a working
 * handle; the schema is there whole or not at all, whichever it said;
 * a session number is never handed out twice. */
static char *created;

static bool open_step(int kind, unsigned at)
{
    cj_pg_t *db = (cj_pg_t *)&db; /* must become NULL on failure */
    uint8_t id[8], psk[16];
    uint64_t sess = 0;
    long long tables;
    bool fired;
    int rc;

    px_settle(0);
    fresh_schema();
    arm(kind, at);
    rc = cj_pg_open(&db, proxy_uri);
    FCHECK(io_result(rc));
    fired = disarm();
    if (rc != CJ_OK)
        FCHECK(db == NULL);
    else
        sess = cj_pg_session(db);
    px_settle(rc == CJ_OK ? 1 : 0);
    tables = n_tables();
    if (rc == CJ_OK || tables != 0) {
        char *got = dump();
        const char *want[] = {created};
        FCHECK(tables == 7);
        check_one_of(got, want, 1, "created registry");
        free(got);
    }
    if (rc == CJ_OK) {
        /* the handle works once the faults stop */
        FCHECK(sess == 1);
        check_idle(db);
    } else {
        FCHECK(cj_pg_open(&db, proxy_uri) == CJ_OK);
        /* a session number taken by the failed open is never reused */
        FCHECK(cj_pg_session(db) == (tables != 0 ? 2u : 1u));
    }
    ss_make_id(id, 1);
    ss_make_psk(psk, 1);
    FCHECK(cj_pg_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE) == CJ_OK);
    FCHECK(chk_int("SELECT max(version) FROM schema_version") ==
           CJ_PG_SCHEMA_VERSION);
    end_run(db);
    return fired;
}

PG_TEST(pg_faults_open)
{
    cj_pg_t *db = NULL;

    if (!scenario_begin())
        return;
    CHECK_EQ(cj_pg_open(&db, proxy_uri), CJ_OK);
    created = dump();
    cj_pg_close(db);
    CHECK(sweep("open", open_step, CUT_KINDS, true) >= 2 * 20);
    free(created);
    scenario_end();
}

/* ---- provisioning ------------------------------------------------------------ */

/* Units of work each on its own: a CSV import (6 pledges), an add, an
 * address, the network row, an eviction, then a plain group transaction
 * (two adds and an outcome).  Each is in the registry whole or not at
 * all, and whole when it reported success. */
#define PROV_UNITS 6

static int prov_run(cj_pg_t *db, unsigned only, int *rc)
{
    const cj_jrc_store_t *st = cj_pg_store(db);
    char csv[1024];
    size_t o = 0, bad = 9, count = 9;
    uint8_t id[8], psk[16];
    cj_addr_t addr = {16, {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};
    cj_pg_network_t n;

    for (int u = 0; u < PROV_UNITS; u++)
        rc[u] = CJ_OK;
    for (unsigned i = 10; i < 16; i++) {
        ss_make_id(id, i);
        ss_make_psk(psk, i);
        for (int k = 0; k < 8; k++)
            o += (size_t)sprintf(csv + o, "%02x", id[k]);
        csv[o++] = ',';
        for (int k = 0; k < 16; k++)
            o += (size_t)sprintf(csv + o, "%02x", psk[k]);
        o += (size_t)sprintf(csv + o, "%s\n", i == 12 ? ",6lbr" : "");
    }
    if (only & 1) {
        rc[0] = cj_pg_import_csv(db, csv, o, &bad, &count);
        FCHECK(io_result(rc[0]));
        FCHECK(rc[0] == CJ_OK ? count == 6 : bad == 0);
    }
    if (only & 2) {
        ss_make_id(id, 20);
        ss_make_psk(psk, 20);
        rc[1] = cj_pg_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE);
    }
    if (only & 4) {
        ss_make_id(id, 1);
        rc[2] = cj_pg_set_address(db, id, 8, &addr);
    }
    if (only & 8) {
        net_of(&n, 48);
        rc[3] = cj_pg_network_save(db, &n);
    }
    if (only & 16) {
        ss_make_id(id, 2);
        rc[4] = cj_pg_evict(db, id, 8);
    }
    if (only & 32) {
        rc[5] = cj_pg_begin(db);
        for (unsigned i = 21; i < 23 && rc[5] == CJ_OK; i++) {
            ss_make_id(id, i);
            ss_make_psk(psk, i);
            rc[5] = cj_pg_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE);
        }
        ss_make_id(id, 1);
        if (rc[5] == CJ_OK)
            rc[5] = st->record_update(st->ctx, id, 8, 2, true);
        if (rc[5] == CJ_OK)
            rc[5] = cj_pg_commit(db);
        else if (cj_pg_in_transaction(db))
            FCHECK(cj_pg_rollback(db) == CJ_OK);
    }
    for (int u = 0; u < PROV_UNITS; u++)
        FCHECK(io_result(rc[u]));
    return 0;
}

/* The registry after the units in mask only, fault-free (kept). */
static void mask_ref(int (*run)(cj_pg_t *, unsigned, int *), unsigned only,
                     int nunits)
{
    int key[16] = {0}, rc[16];
    cj_pg_t *db;

    key[0] = (int)only;
    if (ref_find(key) != NULL)
        return;
    db = start_run();
    run(db, only, rc);
    for (int u = 0; u < nunits; u++)
        if (only & (1u << u))
            CHECK_EQ(rc[u], CJ_OK);
    cj_pg_close(db);
    px_settle(0);
    ref_put(key, dump());
}

/* The references a run with one fault may need: all units, and all but
 * any one of them. */
static void mask_refs(int (*run)(cj_pg_t *, unsigned, int *), int nunits)
{
    unsigned all = (1u << nunits) - 1;
    mask_ref(run, all, nunits);
    for (int u = 0; u < nunits; u++)
        mask_ref(run, all & ~(1u << u), nunits);
}

/* The registry must hold every unit that succeeded, and of those that
 * failed any (each whole or not at all).  Returns the mask that matched
 * (-1: none). */
static int check_units(const int *rc, int nunits, const char *got,
                       const char *what)
{
    unsigned ok = 0, failed = 0;
    const char *want[64];
    unsigned masks[64];
    int n = 0;

    for (int u = 0; u < nunits; u++)
        if (rc[u] == CJ_OK)
            ok |= 1u << u;
        else
            failed |= 1u << u;
    /* every subset of the failed units */
    for (unsigned sub = failed;; sub = (sub - 1) & failed) {
        int key[16] = {0};
        key[0] = (int)(ok | sub);
        if (n < 64 && ref_find(key) != NULL) {
            masks[n] = ok | sub;
            want[n++] = ref_find(key);
        }
        if (sub == 0)
            break;
    }
    for (int k = 0; k < n; k++)
        if (strcmp(got, want[k]) == 0)
            return (int)masks[k];
    if (n == 0)
        cj_test_failf(__FILE__, __LINE__,
                      "%s: fault %s at %u: units 0x%x failed at once", what,
                      kind_name[cur_kind], cur_at, failed);
    else
        check_one_of(got, want, n, what);
    return -1;
}

static bool prov_step(int kind, unsigned at)
{
    cj_pg_t *db = start_run();
    int rc[PROV_UNITS];
    uint8_t id[8], psk[16];
    cj_jrc_pledge_t rec;
    bool fired;
    char *got;

    arm(kind, at);
    prov_run(db, (1u << PROV_UNITS) - 1, rc);
    fired = disarm();
    check_idle(db);
    got = dump();
    check_units(rc, PROV_UNITS, got, "provisioning");
    free(got);
    /* the handle works again */
    ss_make_id(id, 99);
    ss_make_psk(psk, 99);
    FCHECK(cj_pg_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE) == CJ_OK);
    FCHECK(cj_pg_store(db)->lookup(db, id, 8, &rec) == CJ_OK);
    end_run(db);
    return fired;
}

PG_TEST(pg_faults_provision)
{
    if (!scenario_begin())
        return;
    fixture();
    mask_refs(prov_run, PROV_UNITS);
    CHECK(sweep("provision", prov_step, CUT_KINDS, true) >= 2 * 30);
    scenario_end();
}

/* ---- admissions --------------------------------------------------------------- */

/* The calls the JRC engine makes to admit pledges 1, 0 (again: a
 * renewal; its context is cached, so no lookup), 2 and 3: lookup,
 * accept_piv, assign_short_id, record_join, two sequence-number blocks,
 * the repeat cache.  Each pledge's calls stop at its first failure (the
 * engine drops that request). */
#define ADMIT_CALLS 7
static const unsigned admit_order[] = {1, 0, 2, 3};
static unsigned admit_n; /* how many of admit_order are admitted */

/* Call k of pledge i's admission; checks what a successful call gives. */
static int admit_call(const cj_jrc_store_t *st, unsigned i, int k,
                      uint16_t *sid)
{
    cj_jrc_pledge_t rec;
    cj_oscore_replay_t w;
    cj_jrc_repeat_t rep;
    uint64_t first = 99, base = i == 0 ? 64 : 0;
    uint8_t id[8];
    int r = CJ_ERR_INVALID;

    ss_make_id(id, i);
    switch (k) {
    case 0:
        if (i == 0)
            return CJ_OK;
        r = st->lookup(st->ctx, id, 8, &rec);
        if (r == CJ_OK)
            FCHECK(rec.ssn_reserved == base && !rec.joined);
        break;
    case 1:
        r = st->accept_piv(st->ctx, id, 8, ss_psk_of(id), NULL, 0, 7 + i, &w);
        if (r == CJ_OK)
            FCHECK(w.valid && w.highest == 7 + i);
        break;
    case 2:
        r = st->assign_short_id(st->ctx, id, 8, NOW + i, 1, false, sid);
        if (r == CJ_OK)
            FCHECK(*sid >= 1 && *sid <= 0xfffd && (i != 0 || *sid == sid0));
        break;
    case 3:
        r = st->record_join(st->ctx, id, 8, 0, *sid, NOW + i);
        break;
    case 4:
    case 5:
        /* the block follows every one handed out before */
        r = st->reserve_ssn(st->ctx, id, 8, ss_psk_of(id), NULL, 0, 0, 32,
                            &first);
        if (r == CJ_OK)
            FCHECK(first == base + 32 * (uint64_t)(k - 4));
        break;
    case 6:
        ss_repeat_of(i, &rep);
        r = st->save_repeat(st->ctx, id, 8, ss_psk_of(id), NULL, 0, &rep);
        break;
    }
    FCHECK(io_result(r));
    return r;
}

/* The admissions as one group transaction: a JRC batch (pipeline mode,
 * the rows read ahead) or a plain one.  Returns the commit's result;
 * *all_ok: every call succeeded. */
static int admit_group(cj_pg_t *db, bool batch, bool *all_ok)
{
    const cj_jrc_store_t *st = cj_pg_store(db);
    uint8_t ids[4][8];
    const uint8_t *idp[4];
    uint8_t lens[4] = {8, 8, 8, 8};
    int rc;

    *all_ok = true;
    rc = batch ? cj_pg_begin_batch(db) : cj_pg_begin(db);
    FCHECK(io_result(rc));
    if (rc != CJ_OK) {
        *all_ok = false;
        return rc;
    }
    if (batch) {
        for (unsigned j = 0; j < 3; j++) {
            ss_make_id(ids[j], 1 + j);
            idp[j] = ids[j];
        }
        idp[3] = ss_nobody;
        rc = cj_pg_prefetch(db, idp, lens, 4);
        FCHECK(io_result(rc));
        if (rc != CJ_OK)
            *all_ok = false;
    }
    for (unsigned j = 0; j < admit_n; j++) {
        uint16_t sid = 0;
        for (int k = 0; k < ADMIT_CALLS; k++) {
            if (admit_call(st, admit_order[j], k, &sid) != CJ_OK) {
                *all_ok = false;
                break;
            }
        }
    }
    rc = cj_pg_commit(db);
    FCHECK(io_result(rc));
    FCHECK(!cj_pg_in_transaction(db));
    return rc;
}

static bool admit_batch;
static const char *admit_ref[2]; /* before, after */

static bool admit_step(int kind, unsigned at)
{
    const cj_jrc_store_t *st;
    cj_pg_t *db = start_run();
    bool fired, all_ok, after;
    uint16_t sid = 0;
    uint64_t first = 0;
    uint8_t id[8];
    char *got;
    int rc;

    arm(kind, at);
    rc = admit_group(db, admit_batch, &all_ok);
    fired = disarm();
    check_idle(db);
    got = dump();
    if (rc == CJ_OK) {
        /* committed: every call reached the registry */
        FCHECK(all_ok);
        check_one_of(got, &admit_ref[1], 1, "committed admissions");
    } else {
        /* failed: nothing of it, or (its COMMIT was sent, the answer
         * lost) all of it, which only calls that all succeeded made */
        check_one_of(got, admit_ref, 2, "failed admissions");
    }
    after = strcmp(got, admit_ref[1]) == 0;
    if (after)
        FCHECK(all_ok);
    free(got);

    /* the handle works again: pledge 4 is admitted in a batch of its own */
    st = cj_pg_store(db);
    FCHECK(cj_pg_begin_batch(db) == CJ_OK);
    for (int k = 0; k < ADMIT_CALLS; k++)
        FCHECK(admit_call(st, 4, k, &sid) == CJ_OK);
    FCHECK(cj_pg_commit(db) == CJ_OK);
    FCHECK(chk_int("SELECT ssn_reserved + joined::int + (lease_until IS NOT"
                   " NULL)::int FROM pledges WHERE id = '\\x00124b0000000004'")
           == 66);
    /* a new block for pledge 1 starts where the committed ones ended,
     * never below one handed out by a commit that succeeded */
    ss_make_id(id, 1);
    FCHECK(st->reserve_ssn(st->ctx, id, 8, ss_psk_of(id), NULL, 0, 0, 1,
                           &first) == CJ_OK);
    FCHECK(first == (after ? 64u : 0u));
    if (rc == CJ_OK)
        FCHECK(first >= 64);
    end_run(db);
    return fired;
}

static void admissions(bool batch, unsigned n, unsigned kinds,
                       const char *name)
{
    cj_pg_t *db;
    bool all_ok;

    if (!scenario_begin())
        return;
    fixture();
    admit_batch = batch;
    admit_n = n;
    db = start_run();
    cj_pg_close(db);
    px_settle(0);
    admit_ref[0] = ref_put((int[16]){1}, dump());
    db = start_run();
    CHECK_EQ(admit_group(db, batch, &all_ok), CJ_OK);
    CHECK(all_ok);
    cj_pg_close(db);
    px_settle(0);
    admit_ref[1] = ref_put((int[16]){2}, dump());
    CHECK(sweep(name, admit_step, kinds, true) >= 20);
    scenario_end();
}

/* A JRC daemon's batch: pipeline mode, rows read ahead, queued writes. */
PG_TEST(pg_faults_admission_batch)
{
    admissions(true, 4, ALL_KINDS, "admission batch");
}

/* The calls of pledges 1 and 0 (a new id, a renewal) in a plain group
 * transaction: a savepoint per call, each a round trip of its own. */
PG_TEST(pg_faults_admission_transaction)
{
    admissions(false, 2, CUT_KINDS, "admission transaction");
}

/* The calls of pledges 1 and 0 each durable on its own: each lands whole
 * or not at all, and whole when it succeeded; the calls of a pledge stop
 * at its first failure. */
static int calls_run(cj_pg_t *db, const int *upto, int *did)
{
    const cj_jrc_store_t *st = cj_pg_store(db);

    for (unsigned j = 0; j < 2; j++) {
        unsigned i = admit_order[j];
        uint16_t sid = sid0;
        did[j] = 0;
        while (did[j] < upto[j] && admit_call(st, i, did[j], &sid) == CJ_OK)
            did[j]++;
    }
    return 0;
}

static void calls_ref(int d1, int d0)
{
    int key[16] = {3, d1, d0}, upto[2] = {d1, d0}, did[2];
    cj_pg_t *db;

    if (ref_find(key) != NULL)
        return;
    db = start_run();
    calls_run(db, upto, did);
    CHECK(did[0] == d1 && did[1] == d0);
    cj_pg_close(db);
    px_settle(0);
    ref_put(key, dump());
}

static bool calls_step(int kind, unsigned at)
{
    static const int all[2] = {ADMIT_CALLS, ADMIT_CALLS};
    cj_pg_t *db = start_run();
    const char *want[3];
    int did[2], n = 0;
    bool fired;
    char *got;

    arm(kind, at);
    calls_run(db, all, did);
    fired = disarm();
    check_idle(db);
    got = dump();
    /* the calls that succeeded; the one that failed, if any, whole or
     * not at all */
    want[n++] = ref_find((int[16]){3, did[0], did[1]});
    if (did[0] < ADMIT_CALLS)
        want[n++] = ref_find((int[16]){3, did[0] + 1, did[1]});
    if (did[1] < ADMIT_CALLS)
        want[n++] = ref_find((int[16]){3, did[0], did[1] + 1});
    FCHECK(want[0] != NULL && (n == 1 || want[1] != NULL) &&
           (n < 3 || want[2] != NULL));
    if (want[0] != NULL)
        check_one_of(got, want, n, "admission calls");
    free(got);
    /* the handle works again */
    {
        const cj_jrc_store_t *st = cj_pg_store(db);
        uint16_t sid = 0;
        for (int k = 0; k < ADMIT_CALLS; k++)
            FCHECK(admit_call(st, 4, k, &sid) == CJ_OK);
    }
    end_run(db);
    return fired;
}

PG_TEST(pg_faults_admission_calls)
{
    if (!scenario_begin())
        return;
    fixture();
    /* every outcome a single fault can leave */
    for (int k = 0; k <= ADMIT_CALLS; k++) {
        calls_ref(k, ADMIT_CALLS);
        calls_ref(ADMIT_CALLS, k);
    }
    CHECK(sweep("admission calls", calls_step, CUT_KINDS, true) >= 2 * 30);
    scenario_end();
}

/* ---- the operation queue ------------------------------------------------------- */

/* Units: push an operation; take the oldest in a group transaction
 * (next, done, commit).  Then a read outside a transaction sees the
 * queue as the registry holds it. */
#define OPS_UNITS 2

static int ops_run(cj_pg_t *db, unsigned only, int *rc)
{
    cj_pg_op_t op, got;

    rc[0] = rc[1] = CJ_OK;
    if (only & 1) {
        op_of(&op, CJ_PG_OP_REKEY, 0x33);
        rc[0] = cj_pg_op_push(db, &op);
    }
    if (only & 2) {
        rc[1] = cj_pg_begin(db);
        if (rc[1] == CJ_OK) {
            rc[1] = cj_pg_op_next(db, &got);
            if (rc[1] == CJ_OK) {
                FCHECK(got.kind == CJ_PG_OP_REKEY && got.key[0] == 0x11);
                rc[1] = cj_pg_op_done(db, got.seq);
            }
            if (rc[1] == CJ_OK)
                rc[1] = cj_pg_commit(db);
            else
                FCHECK(cj_pg_rollback(db) == CJ_OK);
        }
    }
    FCHECK(io_result(rc[0]) && io_result(rc[1]));
    return 0;
}

static bool ops_step(int kind, unsigned at)
{
    cj_pg_t *db = start_run();
    cj_pg_op_t next;
    int rc[OPS_UNITS], rn, m, left = 0;
    bool fired;
    char *got;

    arm(kind, at);
    ops_run(db, (1u << OPS_UNITS) - 1, rc);
    rn = cj_pg_op_next(db, &next);
    FCHECK(io_result(rn));
    fired = disarm();
    check_idle(db);
    got = dump();
    m = check_units(rc, OPS_UNITS, got, "operation queue");
    free(got);
    /* the read saw the queue the registry holds: the rekey still first
     * unless it was taken */
    if (rn == CJ_OK && m >= 0)
        FCHECK(next.kind == ((m & 2) ? CJ_PG_OP_EVICT : CJ_PG_OP_REKEY));
    /* the handle works again: every operation left is taken once */
    while ((rn = cj_pg_op_next(db, &next)) == CJ_OK &&
           cj_pg_op_done(db, next.seq) == CJ_OK)
        left++;
    FCHECK(rn == CJ_ERR_NOTFOUND);
    if (m >= 0)
        FCHECK(left == 2 + (m & 1) - ((m & 2) ? 1 : 0));
    end_run(db);
    return fired;
}

PG_TEST(pg_faults_operations)
{
    if (!scenario_begin())
        return;
    fixture();
    mask_refs(ops_run, OPS_UNITS);
    CHECK(sweep("operations", ops_step, CUT_KINDS, true) >= 2 * 8);
    scenario_end();
}

/* ---- reads ---------------------------------------------------------------------- */

/* Every read of the store and the CLI: each returns the registry's
 * answer or a failure, never a wrong one (a lost row read as "not
 * found"), and changes nothing.  (Outside a transaction a read that
 * lost its connection is run again on a new one: all may succeed.) */
static int count_rows(void *arg, const cj_pg_info_t *info)
{
    (void)info;
    ++*(int *)arg;
    return CJ_OK;
}

static const char *reads_before;

static bool reads_step(int kind, unsigned at)
{
    cj_pg_t *db = start_run();
    const cj_jrc_store_t *st = cj_pg_store(db);
    cj_jrc_pledge_t rec;
    cj_pg_network_t net;
    cj_pg_op_t op;
    cj_addr_t addr;
    uint64_t cursor = 0;
    uint8_t id[8];
    int r, rows, joined = 0;
    bool fired;
    char *got;

    arm(kind, at);
    ss_make_id(id, 0);
    r = st->lookup(st->ctx, id, 8, &rec);
    FCHECK(io_result(r));
    if (r == CJ_OK)
        FCHECK(rec.ssn_reserved == 64 && rec.joined && rec.short_id == sid0 &&
               rec.repeat.resp_len == 9);
    r = st->lookup_context(st->ctx, ctx5, sizeof ctx5, &rec);
    FCHECK(io_result(r));
    if (r == CJ_OK)
        FCHECK(rec.id[7] == 5 && rec.id_context_len == sizeof ctx5);
    while ((r = st->next_joined(st->ctx, &cursor, &rec)) == CJ_OK)
        joined++;
    FCHECK(r == CJ_ERR_NOTFOUND || r == CJ_ERR_STORAGE);
    if (r == CJ_ERR_NOTFOUND)
        FCHECK(joined == 1);
    ss_make_id(id, 1);
    r = st->node_address(st->ctx, id, 8, &addr);
    FCHECK(io_result(r));
    if (r == CJ_OK)
        FCHECK(addr.len == 8 && memcmp(addr.b, id, 8) == 0);
    rows = 0;
    r = cj_pg_list(db, count_rows, &rows);
    FCHECK(io_result(r));
    if (r == CJ_OK)
        FCHECK(rows == 6);
    rows = 0;
    r = cj_pg_unreached(db, fixture_session, 1, count_rows, &rows);
    FCHECK(io_result(r));
    if (r == CJ_OK)
        FCHECK(rows == 1);
    rows = 0;
    r = cj_pg_blacklist(db, count_rows, &rows);
    FCHECK(io_result(r));
    if (r == CJ_OK)
        FCHECK(rows == 0);
    r = cj_pg_network_load(db, &net);
    FCHECK(io_result(r));
    if (r == CJ_OK)
        FCHECK(net.lease_hours == 24 && net.key_count == 1 &&
               memcmp(net.keys[0].key, net0.keys[0].key, 16) == 0);
    r = cj_pg_op_next(db, &op);
    FCHECK(io_result(r));
    if (r == CJ_OK)
        FCHECK(op.kind == CJ_PG_OP_REKEY);
    fired = disarm();
    check_idle(db);
    got = dump();
    check_one_of(got, &reads_before, 1, "reads");
    free(got);
    ss_make_id(id, 0);
    FCHECK(st->lookup(st->ctx, id, 8, &rec) == CJ_OK);
    end_run(db);
    return fired;
}

PG_TEST(pg_faults_reads)
{
    cj_pg_t *db;

    if (!scenario_begin())
        return;
    fixture();
    db = start_run();
    cj_pg_close(db);
    px_settle(0);
    reads_before = ref_put((int[16]){4}, dump());
    CHECK(sweep("reads", reads_step, CUT_KINDS, false) >= 2 * 10);
    scenario_end();
}
