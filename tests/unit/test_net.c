/*
 * In-process network tests (virtual time, no sockets): one JRC engine,
 * several Join Proxy engines and many pledge engines exchanging datagrams
 * over links that lose, duplicate, delay and reorder them.  Everything
 * here drives the same engines the daemons and the simulator run.
 *
 * Addresses are two bytes: the node index.  Node 0 is the JRC, nodes
 * 1..jps the Join Proxies, the rest pledges.  A Join Proxy tells its two
 * sides apart by the sender: datagrams from the JRC are responses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cojp/coap.h"
#include "cojp/jrc.h"
#include "cojp/jrc_memstore.h"
#include "cojp/oscore.h"
#include "cojp/pledge.h"
#include "cojp/proxy.h"
#include "port/platform_mem.h"
#include "test.h"

/* ---- a tiny deterministic PRNG (xorshift64*) --------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}
static double rnd01(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

/* ---- event queues: datagrams and timers in one binary heap ------------- */

typedef struct ev {
    uint64_t t;
    uint64_t seq;      /* FIFO among equal times, for determinism */
    int kind;          /* 0 datagram, 1 timer, 2 pledge start, 3 CON timer */
    uint16_t from, to; /* datagram ends; timer: node in `to` */
    uint16_t len;
    uint32_t con;      /* kind 3: index into net_t.con */
    uint8_t *data;
} ev_t;

typedef struct net {
    ev_t *heap;
    size_t n, cap;
    uint64_t seq;
    uint64_t now;
    /* link model */
    double loss, dup;
    uint32_t delay_min, delay_max;
    /* nodes */
    size_t jps, pledges;
    cj_jrc_t *jrc;
    cj_jrc_memstore_t ms;
    cj_jrc_mementry_t *entries;
    cj_jrc_slot_t *slots;
    cj_jrc_cfg_t jcfg;
    cj_mem_platform_t jrc_pf;
    cj_proxy_t *proxy;
    cj_mem_platform_t *proxy_pf;
    cj_pledge_t *pl;
    cj_mem_platform_t *pl_pf;
    uint8_t (*ids)[8];
    uint8_t (*psks)[16];
    /* what happened */
    unsigned *joined_events;
    unsigned *failed_events;
    unsigned *switched_events;
    unsigned long delivered, lost, duplicated;
    unsigned jrc_joined_events, campaign_done;
    /* nonce audit: every OSCORE message the JRC emitted, per pledge */
    struct audit {
        uint32_t pledge;
        uint64_t ctx; /* kid context named in the option, 0 if none */
        uint64_t piv;
        uint64_t fp;  /* fingerprint of the ciphertext */
    } *audit;
    size_t audit_n, audit_cap;
    unsigned long nonce_reuse;
    /* token -> pledge, learnt when a JP forwards a request */
    struct tokmap {
        uint64_t h;
        uint32_t pledge;
    } *tok;
    size_t tok_cap;
    /* A JRC of another implementation (jrc_con): its responses to the
     * JPs go out as CON messages (separate responses, RFC 7252 section
     * 5.2.2), each retransmitted after con_timeout_ms, doubling, up to
     * MAX_RETRANSMIT times until an Empty ACK or RST from that JP with
     * its message ID arrives (section 4.2).  Those never reach the JRC
     * engine. */
    bool jrc_con;
    uint32_t con_timeout_ms;
    struct con {
        uint8_t *data;
        uint16_t len, mid, to;
        uint8_t tries;
        uint8_t state; /* CON_PENDING, CON_ACKED, CON_RESET, CON_GAVE_UP */
        uint32_t timeout;
    } *con;
    size_t con_n, con_cap;
    unsigned long con_retx, con_late_answers;
    /* injection hook for attack tests */
    bool capture_jrc_out;
    uint8_t last_jrc_out[512];
    size_t last_jrc_out_len;
} net_t;

static void heap_push(net_t *n, ev_t e)
{
    if (n->n == n->cap) {
        n->cap = n->cap ? n->cap * 2 : 1024;
        n->heap = realloc(n->heap, n->cap * sizeof *n->heap);
    }
    e.seq = n->seq++;
    size_t i = n->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (n->heap[p].t < e.t || (n->heap[p].t == e.t && n->heap[p].seq < e.seq))
            break;
        n->heap[i] = n->heap[p];
        i = p;
    }
    n->heap[i] = e;
}

static ev_t heap_pop(net_t *n)
{
    ev_t top = n->heap[0], last = n->heap[--n->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const ev_t *best = &last;
        if (l < n->n && (n->heap[l].t < best->t || (n->heap[l].t == best->t && n->heap[l].seq < best->seq))) {
            m = l;
            best = &n->heap[l];
        }
        if (r < n->n && (n->heap[r].t < best->t || (n->heap[r].t == best->t && n->heap[r].seq < best->seq)))
            m = r;
        if (m == i)
            break;
        n->heap[i] = n->heap[m];
        i = m;
    }
    if (n->n)
        n->heap[i] = last;
    return top;
}

static cj_addr_t addr_of(size_t node)
{
    cj_addr_t a = {.len = 2, .b = {(uint8_t)(node >> 8), (uint8_t)node}};
    return a;
}
static size_t node_of(const cj_addr_t *a) { return (size_t)a->b[0] << 8 | a->b[1]; }
static size_t pledge_node(const net_t *n, size_t i) { return 1 + n->jps + i; }

static uint64_t fnv(const uint8_t *p, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static void tok_put(net_t *n, const uint8_t *t, size_t len, uint32_t pledge)
{
    uint64_t h = fnv(t, len) | 1;
    size_t i = h % n->tok_cap;
    while (n->tok[i].h && n->tok[i].h != h)
        i = (i + 1) % n->tok_cap;
    n->tok[i].h = h;
    n->tok[i].pledge = pledge;
}

static long tok_get(const net_t *n, const uint8_t *t, size_t len)
{
    uint64_t h = fnv(t, len) | 1;
    size_t i = h % n->tok_cap;
    while (n->tok[i].h) {
        if (n->tok[i].h == h)
            return n->tok[i].pledge;
        i = (i + 1) % n->tok_cap;
    }
    return -1;
}

/* Record an OSCORE message the JRC sent towards a pledge; a Partial IV
 * seen before for that pledge and context with other ciphertext is a
 * nonce reuse.  A recovery 4.01 names its own context (kid context R2);
 * the audit is reset by a test when all contexts change. */
static void audit_jrc(net_t *n, size_t pledge, const uint8_t *msg, size_t len)
{
    cj_coap_msg_t m;
    cj_coap_opt_t o;
    cj_oscore_option_t oo;
    if (cj_coap_parse(&m, msg, len) != CJ_OK || !cj_coap_opt_find(&m, CJ_COAP_OPT_OSCORE, &o))
        return;
    if (cj_oscore_option_decode(o.val, o.len, &oo) != CJ_OK || oo.piv_len == 0)
        return; /* response under the request nonce: bound to a pledge PIV */
    uint64_t piv = cj_oscore_piv_value(oo.piv, oo.piv_len);
    uint64_t fp = fnv(m.payload, m.payload_len);
    /* Without a kid context the message is under the pledge's current
     * ID Context (the one it is trying, RFC 8613 Appendix B.2): a pledge
     * whose response #2 was lost goes back to ID1 and recovers again, so
     * two recovered contexts of one pledge each start at Partial IV 0
     * under different keys. */
    const cj_oscore_ctx_t *pc = &n->pl[pledge].osc;
    uint64_t ctx = oo.has_kid_context ? fnv(oo.kid_context, oo.kid_context_len)
                                      : fnv(pc->id_context, pc->id_context_len);
    for (size_t i = 0; i < n->audit_n; i++) {
        if (n->audit[i].pledge == pledge && n->audit[i].ctx == ctx && n->audit[i].piv == piv) {
            if (n->audit[i].fp != fp)
                n->nonce_reuse++;
            return;
        }
    }
    if (n->audit_n == n->audit_cap) {
        n->audit_cap = n->audit_cap ? n->audit_cap * 2 : 4096;
        n->audit = realloc(n->audit, n->audit_cap * sizeof *n->audit);
    }
    n->audit[n->audit_n++] = (struct audit){(uint32_t)pledge, ctx, piv, fp};
}

static void schedule_timer(net_t *n, size_t node, uint64_t t)
{
    if (t == CJ_TIME_NEVER)
        return;
    if (t < n->now)
        t = n->now;
    heap_push(n, (ev_t){.t = t, .kind = 1, .to = (uint16_t)node});
}

static uint64_t next_timer_of(net_t *n, size_t node)
{
    if (node == 0)
        return cj_jrc_next_timer(n->jrc);
    if (node <= n->jps)
        return CJ_TIME_NEVER;
    return cj_pledge_next_timer(&n->pl[node - 1 - n->jps]);
}

enum { CON_PENDING, CON_ACKED, CON_RESET, CON_GAVE_UP };

/* The link model: the datagram arrives 0, 1 or 2 times, delayed. */
static void link_send(net_t *n, size_t from, size_t to, const uint8_t *buf, size_t len)
{
    int copies = 1;
    if (rnd01() < n->loss) {
        n->lost++;
        copies = 0;
    } else if (rnd01() < n->dup) {
        n->duplicated++;
        copies = 2;
    }
    for (int c = 0; c < copies; c++) {
        ev_t e = {.kind = 0, .from = (uint16_t)from, .to = (uint16_t)to, .len = (uint16_t)len};
        e.t = n->now + n->delay_min + (n->delay_max > n->delay_min ? rnd() % (n->delay_max - n->delay_min + 1) : 0);
        e.data = malloc(len);
        memcpy(e.data, buf, len);
        heap_push(n, e);
    }
}

/* jrc_con: the JRC's NON response to JP `to` leaves as a CON. */
static void con_send(net_t *n, size_t to, const uint8_t *buf, size_t len)
{
    if (n->con_n == n->con_cap) {
        n->con_cap = n->con_cap ? n->con_cap * 2 : 256;
        n->con = realloc(n->con, n->con_cap * sizeof *n->con);
    }
    struct con *c = &n->con[n->con_n];
    c->data = malloc(len);
    memcpy(c->data, buf, len);
    c->data[0] = (uint8_t)((c->data[0] & 0xcf) | CJ_COAP_CON << 4);
    c->len = (uint16_t)len;
    c->mid = (uint16_t)(buf[2] << 8 | buf[3]);
    c->to = (uint16_t)to;
    c->tries = 0;
    c->state = CON_PENDING;
    c->timeout = n->con_timeout_ms;
    heap_push(n, (ev_t){.t = n->now + c->timeout, .kind = 3, .con = (uint32_t)n->con_n});
    n->con_n++;
    link_send(n, 0, to, c->data, len);
}

static void con_timer(net_t *n, size_t i)
{
    struct con *c = &n->con[i];
    if (c->state != CON_PENDING)
        return;
    if (c->tries == CJ_COJP_MAX_RETRANSMIT) {
        c->state = CON_GAVE_UP;
        return;
    }
    c->tries++;
    c->timeout *= 2;
    n->con_retx++;
    heap_push(n, (ev_t){.t = n->now + c->timeout, .kind = 3, .con = (uint32_t)i});
    link_send(n, 0, c->to, c->data, c->len);
}

/* jrc_con: an Empty ACK or RST from JP `from` for the newest CON to it
 * with that message ID. */
static void con_answer(net_t *n, size_t from, const uint8_t *msg, size_t len)
{
    uint8_t type = (uint8_t)(msg[0] >> 4 & 3);
    uint16_t mid = (uint16_t)(msg[2] << 8 | msg[3]);
    CHECK(len == 4 && msg[1] == CJ_COAP_EMPTY && (type == CJ_COAP_ACK || type == CJ_COAP_RST));
    for (size_t i = n->con_n; i-- > 0;) {
        struct con *c = &n->con[i];
        if (c->to != from || c->mid != mid)
            continue;
        if (c->state == CON_PENDING)
            c->state = type == CJ_COAP_ACK ? CON_ACKED : CON_RESET;
        else
            n->con_late_answers++;
        return;
    }
    CHECK(!"an ACK or RST for no CON sent");
}

/* Put a datagram on the link from -> to. */
static void transmit(net_t *n, size_t from, const cj_out_t *out)
{
    size_t to = node_of(&out->to);
    if (from == 0) {
        /* the JRC talks to JPs (join responses) and to nodes (updates) */
        cj_coap_msg_t m;
        long p = -1;
        if (to >= 1 && to <= n->jps) {
            if (cj_coap_parse(&m, out->buf, out->len) == CJ_OK)
                p = tok_get(n, m.token, m.token_len);
        } else if (to > n->jps) {
            p = (long)(to - 1 - n->jps);
        }
        if (p >= 0)
            audit_jrc(n, (size_t)p, out->buf, out->len);
        if (n->capture_jrc_out && out->len <= sizeof n->last_jrc_out) {
            memcpy(n->last_jrc_out, out->buf, out->len);
            n->last_jrc_out_len = out->len;
        }
        if (n->jrc_con && to >= 1 && to <= n->jps && out->len >= 4 &&
            (out->buf[0] >> 4 & 3) == CJ_COAP_NON && (out->buf[1] >> 5) >= 2) {
            con_send(n, to, out->buf, out->len);
            return;
        }
    }
    link_send(n, from, to, out->buf, out->len);
}

static void pledge_event(net_t *n, size_t i, int event)
{
    if (event == CJ_PLEDGE_EV_JOINED)
        n->joined_events[i]++;
    else if (event == CJ_PLEDGE_EV_FAILED) {
        n->failed_events[i]++;
        /* A device that gave up tries again a minute later, as a host
         * that signalled the failure out of band would. */
        heap_push(n, (ev_t){.t = n->now + 60000, .kind = 2, .to = (uint16_t)pledge_node(n, i)});
    } else if (event == CJ_PLEDGE_EV_KEYS_SWITCHED)
        n->switched_events[i]++;
}

static void deliver(net_t *n, const ev_t *e)
{
    uint8_t obuf[1280], msg[1280];
    cj_out_t out = {.buf = obuf, .cap = sizeof obuf};
    cj_addr_t from = addr_of(e->from);
    size_t to = e->to;
    memcpy(msg, e->data, e->len);
    cj_out_reset(&out);
    n->delivered++;
    if (to == 0 && n->jrc_con && e->from >= 1 && e->from <= n->jps && e->len >= 2 &&
        msg[1] == CJ_COAP_EMPTY) {
        con_answer(n, e->from, msg, e->len);
        return;
    }
    if (to == 0) {
        n->jrc_pf.now = n->now;
        if (cj_jrc_input(n->jrc, n->now, &from, msg, e->len, &out) == 1) {
            if (out.event == CJ_JRC_EV_JOINED)
                n->jrc_joined_events++;
            if (out.event == CJ_JRC_EV_CAMPAIGN_DONE)
                n->campaign_done++;
            if (out.len)
                transmit(n, 0, &out);
        }
    } else if (to <= n->jps) {
        cj_proxy_t *jp = &n->proxy[to - 1];
        if (e->from == 0) {
            uint8_t abuf[CJ_PROXY_ACK_LEN];
            cj_out_t ack = {.buf = abuf, .cap = sizeof abuf};
            if (cj_proxy_input_jrc(jp, n->now, &from, msg, e->len, &out, &ack) == 1 && out.len)
                transmit(n, to, &out);
            if (ack.len)
                transmit(n, to, &ack);
        } else if (cj_proxy_input_pledge(jp, n->now, &from, msg, e->len, &out) == 1 && out.len) {
            cj_coap_msg_t m;
            if (cj_coap_parse(&m, out.buf, out.len) == CJ_OK)
                tok_put(n, m.token, m.token_len, (uint32_t)(e->from - 1 - n->jps));
            transmit(n, to, &out);
        }
    } else {
        size_t i = to - 1 - n->jps;
        n->pl_pf[i].now = n->now;
        if (cj_pledge_input(&n->pl[i], n->now, &from, msg, e->len, &out) == 1) {
            pledge_event(n, i, out.event);
            if (out.len)
                transmit(n, to, &out);
        }
    }
    schedule_timer(n, to, next_timer_of(n, to));
}

static void fire(net_t *n, size_t node)
{
    uint8_t obuf[1280];
    cj_out_t out = {.buf = obuf, .cap = sizeof obuf};
    for (int guard = 0; guard < 64; guard++) {
        int r;
        cj_out_reset(&out);
        if (node == 0) {
            n->jrc_pf.now = n->now;
            if (cj_jrc_next_timer(n->jrc) > n->now)
                break;
            r = cj_jrc_poll(n->jrc, n->now, &out);
            if (r == 1 && out.event == CJ_JRC_EV_CAMPAIGN_DONE)
                n->campaign_done++;
        } else {
            size_t i = node - 1 - n->jps;
            n->pl_pf[i].now = n->now;
            if (cj_pledge_next_timer(&n->pl[i]) > n->now)
                break;
            r = cj_pledge_poll(&n->pl[i], n->now, &out);
            if (r == 1)
                pledge_event(n, i, out.event);
        }
        if (r != 1)
            break;
        if (out.len)
            transmit(n, node, &out);
    }
    schedule_timer(n, node, next_timer_of(n, node));
}

/* Run until time `until` or until done(n) holds. */
static void run(net_t *n, uint64_t until, bool (*done)(net_t *))
{
    while (n->n && n->heap[0].t <= until) {
        ev_t e = heap_pop(n);
        n->now = e.t;
        if (e.kind == 0) {
            deliver(n, &e);
            free(e.data);
        } else if (e.kind == 1) {
            fire(n, e.to);
        } else if (e.kind == 3) {
            con_timer(n, e.con);
        } else {
            size_t i = e.to - 1 - n->jps;
            if (cj_pledge_start(&n->pl[i], n->now) == CJ_OK)
                fire(n, e.to);
        }
        if (done && done(n))
            return;
    }
    if (n->now < until && (!n->n))
        n->now = until;
}

static void jrc_start(net_t *n)
{
    n->jrc_pf.now = n->now;
    CHECK_EQ(cj_jrc_init(n->jrc, &n->jcfg, &n->ms.store, &n->jrc_pf.port), CJ_OK);
}

static const uint8_t NETID[] = {0xca, 0xfe};

static void net_init(net_t *n, size_t jps, size_t pledges, size_t slots, uint64_t seed)
{
    memset(n, 0, sizeof *n);
    rng_state = seed;
    n->jps = jps;
    n->pledges = pledges;
    n->delay_min = 5;
    n->delay_max = 40;
    n->entries = calloc(pledges, sizeof *n->entries);
    n->slots = calloc(slots, sizeof *n->slots);
    n->jrc = calloc(1, sizeof *n->jrc);
    n->proxy = calloc(jps, sizeof *n->proxy);
    n->proxy_pf = calloc(jps, sizeof *n->proxy_pf);
    n->pl = calloc(pledges, sizeof *n->pl);
    n->pl_pf = calloc(pledges, sizeof *n->pl_pf);
    n->ids = calloc(pledges, sizeof *n->ids);
    n->psks = calloc(pledges, sizeof *n->psks);
    n->joined_events = calloc(pledges, sizeof(unsigned));
    n->failed_events = calloc(pledges, sizeof(unsigned));
    n->switched_events = calloc(pledges, sizeof(unsigned));
    n->tok_cap = 1 << 20;
    n->tok = calloc(n->tok_cap, sizeof *n->tok);

    cj_jrc_memstore_init(&n->ms, n->entries, pledges);
    cj_mem_platform_init(&n->jrc_pf);
    memset(&n->jcfg, 0, sizeof n->jcfg);
    n->jcfg.network_id = NETID;
    n->jcfg.network_id_len = sizeof NETID;
    n->jcfg.keys[0] = (cj_jrc_key_t){.key_id = 1, .key_usage = CJ_COJP_KEY_USAGE_K1_MIC32};
    n->jcfg.keys[1] = (cj_jrc_key_t){.key_id = 2, .key_usage = CJ_COJP_KEY_USAGE_K2_ENC_MIC32};
    memset(n->jcfg.keys[0].key, 0x11, 16);
    memset(n->jcfg.keys[1].key, 0x22, 16);
    n->jcfg.key_count = 2;
    n->jcfg.join_rate = UINT32_MAX;
    n->jcfg.lease_hours = 0;
    n->jcfg.slots = n->slots;
    n->jcfg.slot_count = slots;
    jrc_start(n);

    for (size_t j = 0; j < jps; j++) {
        cj_proxy_cfg_t pc;
        memset(&pc, 0, sizeof pc);
        pc.jrc = addr_of(0);
        pc.join_rate = CJ_PROXY_RATE_UNLIMITED;
        memset(pc.token_key, (int)(0x40 + j), 16);
        cj_mem_platform_init(&n->proxy_pf[j]);
        CHECK_EQ(cj_proxy_init(&n->proxy[j], &pc, &n->proxy_pf[j].port), CJ_OK);
    }
    for (size_t i = 0; i < pledges; i++) {
        cj_pledge_cfg_t pc;
        cj_addr_t a = addr_of(pledge_node(n, i));
        for (int b = 0; b < 8; b++)
            n->ids[i][b] = (uint8_t)rnd();
        n->ids[i][6] = (uint8_t)(i >> 8); /* keep ids distinct */
        n->ids[i][7] = (uint8_t)i;
        for (int b = 0; b < 16; b++)
            n->psks[i][b] = (uint8_t)rnd();
        CHECK_EQ(cj_jrc_memstore_add(&n->ms, n->ids[i], 8, n->psks[i], CJ_JRC_ALLOW_NODE), CJ_OK);
        CHECK_EQ(cj_jrc_memstore_set_address(&n->ms, n->ids[i], 8, &a), CJ_OK);
        cj_mem_platform_init(&n->pl_pf[i]);
        memset(&pc, 0, sizeof pc);
        pc.pledge_id = n->ids[i];
        pc.pledge_id_len = 8;
        memcpy(pc.psk, n->psks[i], 16);
        pc.role = CJ_COJP_ROLE_6LN;
        CHECK_EQ(cj_pledge_init(&n->pl[i], &pc, &n->pl_pf[i].port), CJ_OK);
        /* its nearest JP first, another as fallback */
        cj_addr_t jp1 = addr_of(1 + i % jps), jp2 = addr_of(1 + (i + 1) % jps);
        CHECK_EQ(cj_pledge_add_jp(&n->pl[i], &jp1, NETID, sizeof NETID), CJ_OK);
        if (jps > 1)
            CHECK_EQ(cj_pledge_add_jp(&n->pl[i], &jp2, NETID, sizeof NETID), CJ_OK);
    }
}

static void net_start_pledges(net_t *n, uint64_t spread_ms)
{
    for (size_t i = 0; i < n->pledges; i++)
        heap_push(n, (ev_t){.t = n->now + (spread_ms ? rnd() % spread_ms : 0), .kind = 2,
                            .to = (uint16_t)pledge_node(n, i)});
}

static void net_free(net_t *n)
{
    while (n->n) {
        ev_t e = heap_pop(n);
        if (e.kind == 0)
            free(e.data);
    }
    free(n->heap);
    free(n->entries);
    free(n->slots);
    free(n->jrc);
    free(n->proxy);
    free(n->proxy_pf);
    free(n->pl);
    free(n->pl_pf);
    free(n->ids);
    free(n->psks);
    free(n->joined_events);
    free(n->failed_events);
    free(n->switched_events);
    free(n->audit);
    free(n->tok);
    for (size_t i = 0; i < n->con_n; i++)
        free(n->con[i].data);
    free(n->con);
}

static bool all_joined(net_t *n)
{
    for (size_t i = 0; i < n->pledges; i++)
        if (!n->joined_events[i])
            return false;
    return true;
}

static size_t count_joined(const net_t *n)
{
    size_t c = 0;
    for (size_t i = 0; i < n->pledges; i++)
        c += n->joined_events[i] != 0;
    return c;
}

/* Short ids of all pledges distinct, and equal to what the JRC recorded. */
static void check_short_ids(net_t *n)
{
    uint8_t *seen = calloc(65536, 1);
    for (size_t i = 0; i < n->pledges; i++) {
        uint8_t s[2];
        if (cj_pledge_short_id(&n->pl[i], s, NULL) != CJ_OK) {
            CHECK(!"pledge has no short id");
            continue;
        }
        unsigned v = (unsigned)s[0] << 8 | s[1];
        if (seen[v])
            cj_test_failf(__FILE__, __LINE__, "short id %04x handed out twice", v);
        seen[v] = 1;
        cj_jrc_mementry_t *e = cj_jrc_memstore_find(&n->ms, n->ids[i], 8);
        CHECK(e && e->rec.joined && e->rec.short_id == v);
    }
    free(seen);
}

/* ---- tests -------------------------------------------------------------- */

TEST(net_join_1000_through_5_jps_with_30pct_loss)
{
    net_t *n = calloc(1, sizeof *n);
    net_init(n, 5, 1000, 1000, 0x9031);
    n->loss = 0.30;
    n->dup = 0.05;
    net_start_pledges(n, 60000);
    run(n, 6 * 3600 * 1000ULL, all_joined);
    size_t joined = count_joined(n);
    CHECK_EQ(joined, 1000);
    for (size_t i = 0; i < n->pledges; i++)
        if (n->joined_events[i] != 1)
            cj_test_failf(__FILE__, __LINE__, "pledge %zu joined %u times", i, n->joined_events[i]);
    check_short_ids(n);
    /* one store lookup per pledge: every later request hits the cache */
    CHECK_EQ(n->jrc->stats.lookups, 1000);
    CHECK_EQ(n->nonce_reuse, 0);
    for (size_t i = 0; i < n->pledges; i++) {
        const cj_pledge_key_t *k2 = cj_pledge_tx_key(&n->pl[i], CJ_PLEDGE_K2);
        CHECK(k2 && k2->key_id == 2);
    }
    printf("  net: 1000 pledges joined in %.1f s virtual; %lu datagrams delivered, "
           "%lu lost, %lu duplicated; JRC %lu joins, %lu cached repeats, %lu lookups\n",
           (double)n->now / 1000, n->delivered, n->lost, n->duplicated,
           n->jrc->stats.joins, n->jrc->stats.repeats, n->jrc->stats.lookups);
    net_free(n);
    free(n);
}

/* RFC 8974 section 3.3 end to end: a JRC of another implementation
 * answers the JPs' NON requests with separate responses in CON messages
 * and retransmits each until the JP's Empty ACK arrives, over links that
 * lose 15 % and duplicate 5 %.  Every pledge joins exactly once; every
 * CON is answered with an ACK (none rejected: retransmissions end within
 * the token lifetime), lost ACKs are made good by acknowledging the
 * retransmissions again, and no response is relayed twice. */
TEST(net_join_through_jps_answered_in_con)
{
    net_t *n = calloc(1, sizeof *n);
    unsigned long relayed = 0, acks = 0, resets = 0, replays = 0;
    size_t st[4] = {0, 0, 0, 0};

    net_init(n, 2, 200, 200, 0x8974);
    n->loss = 0.15;
    n->dup = 0.05;
    n->jrc_con = true;
    n->con_timeout_ms = 2000; /* RFC 7252 ACK_TIMEOUT: 2, 6, 14, 30 s */
    net_start_pledges(n, 20000);
    run(n, 3600 * 1000ULL, all_joined);
    CHECK_EQ(count_joined(n), 200);
    for (size_t i = 0; i < n->pledges; i++)
        if (n->joined_events[i] != 1)
            cj_test_failf(__FILE__, __LINE__, "pledge %zu joined %u times", i, n->joined_events[i]);
    check_short_ids(n);
    CHECK_EQ(n->nonce_reuse, 0);
    /* let every CON exchange end */
    run(n, n->now + 120 * 1000ULL, NULL);
    for (size_t i = 0; i < n->con_n; i++)
        st[n->con[i].state]++;
    for (size_t j = 0; j < n->jps; j++) {
        relayed += n->proxy[j].stats.relayed;
        acks += n->proxy[j].stats.acks;
        resets += n->proxy[j].stats.resets;
        replays += n->proxy[j].stats.dropped_replay;
    }
    CHECK(n->con_n >= 200);
    CHECK_EQ(st[CON_PENDING], 0);
    CHECK_EQ(st[CON_RESET] + resets, 0);
    /* a CON lost with all its retransmissions, or all their ACKs, is
     * possible (0.28^5 each) but rare */
    CHECK(st[CON_GAVE_UP] * 50 <= n->con_n);
    CHECK_EQ(st[CON_ACKED] + st[CON_GAVE_UP], n->con_n);
    /* once per response at most; copies (retransmissions, duplicates)
     * are acknowledged again and counted as spent tokens */
    CHECK(relayed <= n->con_n);
    CHECK(n->con_retx > 0 && n->con_late_answers > 0);
    CHECK(acks > relayed);
    CHECK_EQ(acks, relayed + replays);
    printf("  net: %zu CON responses (%lu retransmitted), %lu relayed, %lu ACKs "
           "(%lu for copies), %zu given up\n",
           n->con_n, n->con_retx, relayed, acks, replays, st[CON_GAVE_UP]);
    net_free(n);
    free(n);
}

static bool campaign_over(net_t *n) { return n->campaign_done > 0; }

TEST(net_rekey_1000_with_20pct_loss)
{
    net_t *n = calloc(1, sizeof *n);
    net_init(n, 5, 1000, 1000, 0x8613);
    net_start_pledges(n, 10000);
    run(n, 3600 * 1000ULL, all_joined);
    CHECK_EQ(count_joined(n), 1000);

    n->loss = 0.20;
    cj_jrc_key_t nk[2] = {
        {.key_id = 1, .key_usage = CJ_COJP_KEY_USAGE_K1_MIC32},
        {.key_id = 3, .key_usage = CJ_COJP_KEY_USAGE_K2_ENC_MIC32},
    };
    memset(nk[0].key, 0x11, 16);
    memset(nk[1].key, 0x33, 16);
    int campaign = cj_jrc_rekey(n->jrc, n->now, nk, 2);
    CHECK(campaign > 0);
    schedule_timer(n, 0, n->now);
    run(n, n->now + 6 * 3600 * 1000ULL, campaign_over);
    CHECK_EQ(n->campaign_done, 1);

    size_t acked = cj_jrc_memstore_list(&n->ms, (uint32_t)campaign, true, NULL, 0);
    size_t missed = cj_jrc_memstore_list(&n->ms, (uint32_t)campaign, false, NULL, 0);
    CHECK_EQ(acked + missed, 1000);
    printf("  net: rekey campaign %d: %zu acknowledged, %zu listed as not reached\n",
           campaign, acked, missed);

    /* Traffic under the new K2 reaches every node that installed it. */
    uint8_t obuf[256];
    cj_out_t out = {.buf = obuf, .cap = sizeof obuf};
    for (size_t i = 0; i < n->pledges; i++)
        if (cj_pledge_rx_key(&n->pl[i], 3)) {
            cj_out_reset(&out);
            if (cj_pledge_rx_used(&n->pl[i], n->now, 3, &out) == 1)
                pledge_event(n, i, out.event);
        }
    /* Nodes the JRC lists as not reached rejoin and get the new set. */
    const cj_jrc_mementry_t **list = calloc(missed + 1, sizeof *list);
    cj_jrc_memstore_list(&n->ms, (uint32_t)campaign, false, list, missed);
    for (size_t k = 0; k < missed; k++) {
        for (size_t i = 0; i < n->pledges; i++)
            if (!memcmp(list[k]->rec.id, n->ids[i], 8)) {
                n->joined_events[i] = 0;
                heap_push(n, (ev_t){.t = n->now, .kind = 2, .to = (uint16_t)pledge_node(n, i)});
            }
    }
    free(list);
    n->loss = 0.0;
    run(n, n->now + 3600 * 1000ULL, all_joined);
    for (size_t i = 0; i < n->pledges; i++) {
        const cj_pledge_key_t *k2 = cj_pledge_tx_key(&n->pl[i], CJ_PLEDGE_K2);
        if (!k2 || k2->key_id != 3)
            cj_test_failf(__FILE__, __LINE__, "node %zu not on the new K2", i);
    }
    CHECK_EQ(n->nonce_reuse, 0);
    net_free(n);
    free(n);
}

TEST(net_jrc_restart_mid_join_reuses_no_nonce)
{
    net_t *n = calloc(1, sizeof *n);
    net_init(n, 3, 300, 64, 0xdead);
    n->loss = 0.10;
    n->dup = 0.05;
    net_start_pledges(n, 120000);
    /* crash twice while joins are in full swing */
    run(n, 40000, NULL);
    size_t before = count_joined(n);
    memset(n->jrc, 0xa5, sizeof *n->jrc);
    memset(n->slots, 0x5a, 64 * sizeof *n->slots);
    jrc_start(n);
    run(n, 90000, NULL);
    memset(n->jrc, 0xa5, sizeof *n->jrc);
    jrc_start(n);
    run(n, 6 * 3600 * 1000ULL, all_joined);
    CHECK(before > 0 && before < 300);
    CHECK_EQ(count_joined(n), 300);
    check_short_ids(n);
    CHECK_EQ(n->nonce_reuse, 0);
    CHECK(n->audit_n >= 300);
    printf("  net: restarts at 40 s and 90 s (%zu joined before); %zu JRC nonces audited, none reused\n",
           before, n->audit_n);
    net_free(n);
    free(n);
}

/* Deliver one crafted datagram to a node right now and report whether
 * the node sent anything. */
static int inject(net_t *n, size_t from, size_t to, const uint8_t *msg, size_t len)
{
    uint8_t obuf[1280], copy[1280];
    cj_out_t out = {.buf = obuf, .cap = sizeof obuf};
    cj_addr_t f = addr_of(from);
    memcpy(copy, msg, len);
    cj_out_reset(&out);
    /* The JRC rejects a version 1 CON it cannot process with the Reset
     * of its Message ID (RFC 7252 section 4.2): four bytes, no state,
     * not an answer in the sense of these tests. */
    if (to == 0)
        return cj_jrc_input(n->jrc, n->now, &f, copy, len, &out) == 1 && out.len > 0 &&
               !(len >= 4 && (msg[0] & 0xf0) == 0x40 && out.len == 4 && out.buf[0] == 0x70 &&
                 out.buf[1] == 0 && !memcmp(out.buf + 2, msg + 2, 2));
    if (to <= n->jps) {
        uint8_t abuf[CJ_PROXY_ACK_LEN];
        cj_out_t ack = {.buf = abuf, .cap = sizeof abuf};
        int r = from == 0 ? cj_proxy_input_jrc(&n->proxy[to - 1], n->now, &f, copy, len, &out, &ack)
                          : cj_proxy_input_pledge(&n->proxy[to - 1], n->now, &f, copy, len, &out);
        return (r == 1 && out.len > 0) || ack.len > 0;
    }
    return cj_pledge_input(&n->pl[to - 1 - n->jps], n->now, &f, copy, len, &out) == 1 && out.len > 0;
}

TEST(net_attacks_are_dropped_and_change_nothing)
{
    net_t *n = calloc(1, sizeof *n);
    net_init(n, 1, 20, 20, 0xbeef);
    net_start_pledges(n, 1000);
    run(n, 600000, all_joined);
    CHECK_EQ(count_joined(n), 20);

    /* A genuine request of pledge 0 as the JP forwards it, captured from
     * a fresh attempt; and the response the JRC gave it. */
    uint8_t obuf[512], req[512], resp[512];
    size_t req_len, resp_len;
    cj_out_t out = {.buf = obuf, .cap = sizeof obuf};
    cj_addr_t jp = addr_of(1), p0 = addr_of(pledge_node(n, 0));
    CHECK_EQ(cj_pledge_start(&n->pl[0], n->now), CJ_OK);
    cj_out_reset(&out);
    CHECK_EQ(cj_pledge_poll(&n->pl[0], n->now, &out), 1);
    cj_out_t fw = {.buf = req, .cap = sizeof req};
    cj_out_reset(&fw);
    CHECK_EQ(cj_proxy_input_pledge(&n->proxy[0], n->now, &p0, obuf, out.len, &fw), 1);
    req_len = fw.len;
    uint8_t tmp[512];
    memcpy(tmp, req, req_len);
    cj_out_t r = {.buf = resp, .cap = sizeof resp};
    cj_out_reset(&r);
    CHECK_EQ(cj_jrc_input(n->jrc, n->now, &jp, tmp, req_len, &r), 1);
    resp_len = r.len;
    CHECK(resp_len > 0);
    /* the JP relays it once; the same response again is refused */
    cj_out_t back = {.buf = tmp, .cap = sizeof tmp};
    cj_out_reset(&back);
    cj_addr_t jrc = addr_of(0);
    CHECK_EQ(cj_proxy_input_jrc(&n->proxy[0], n->now, &jrc, resp, resp_len, &back, NULL), 1);

    /* Snapshot durable state (the store) and the JRC's counters. */
    cj_jrc_mementry_t *snap = malloc(n->pledges * sizeof *snap);
    memcpy(snap, n->entries, n->pledges * sizeof *snap);
    unsigned long joins = n->jrc->stats.joins;

    /* 1. response replayed to the JP */
    CHECK(!inject(n, 0, 1, resp, resp_len));
    /* 2. forged JP token: flip one bit of the token */
    uint8_t forged[512];
    memcpy(forged, resp, resp_len);
    forged[5] ^= 0x01;
    CHECK(!inject(n, 0, 1, forged, resp_len));
    /* 3. an older request of pledge 0 (its first attempt's PIV) replayed:
     *    build one under an earlier sequence number with a shadow pledge. */
    cj_oscore_ctx_t shadow;
    cj_oscore_params_t prm = {.master_secret = n->psks[0], .master_secret_len = 16,
                              .sender_id = (const uint8_t *)"", .sender_id_len = 0,
                              .recipient_id = (const uint8_t *)"JRC", .recipient_id_len = 3,
                              .id_context = n->ids[0], .id_context_len = 8, .has_id_context = true};
    CHECK_EQ(cj_oscore_ctx_derive(&shadow, &prm), CJ_OK);
    shadow.send_kid_context = true;
    uint8_t plain[128], prot[256];
    cj_coap_builder_t b;
    cj_oscore_req_t bind;
    cj_coap_build_init(&b, plain, sizeof plain, CJ_COAP_NON, CJ_COAP_POST, 7, (const uint8_t *)"\x01\x02", 2);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "6tisch.arpa");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "j");
    cj_coap_build_payload(&b, (const uint8_t *)"\xa1\x05\x42\xca\xfe", 5);
    int plen = cj_coap_build_finish(&b);
    CHECK(plen > 0);
    shadow.ssn = 0; /* already used by the pledge's first attempt */
    int olen = cj_oscore_protect_request(&shadow, plain, (size_t)plen, prot, sizeof prot, &bind);
    CHECK(olen > 0);
    CHECK(!inject(n, 1, 0, prot, (size_t)olen));
    /* 4. wrong PSK */
    uint8_t wrong[16];
    memset(wrong, 0x77, 16);
    prm.master_secret = wrong;
    CHECK_EQ(cj_oscore_ctx_derive(&shadow, &prm), CJ_OK);
    shadow.send_kid_context = true;
    shadow.ssn = 1000;
    olen = cj_oscore_protect_request(&shadow, plain, (size_t)plen, prot, sizeof prot, &bind);
    CHECK(!inject(n, 1, 0, prot, (size_t)olen));
    /* 5. unknown pledge id */
    static const uint8_t stranger[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    prm.id_context = stranger;
    CHECK_EQ(cj_oscore_ctx_derive(&shadow, &prm), CJ_OK);
    shadow.send_kid_context = true;
    olen = cj_oscore_protect_request(&shadow, plain, (size_t)plen, prot, sizeof prot, &bind);
    CHECK(!inject(n, 1, 0, prot, (size_t)olen));
    /* 6. every single-bit flip of the genuine request, past the header */
    for (size_t i = 4; i < req_len; i++) {
        uint8_t bad[512];
        memcpy(bad, req, req_len);
        bad[i] ^= 0x10;
        /* A flip in the message ID or the token leaves the OSCORE message
         * intact: a cached repeat, answered with the cached response and
         * no state change.  Anything else must get no answer. */
        unsigned long rep = n->jrc->stats.repeats;
        int sent = inject(n, 1, 0, bad, req_len);
        if (sent && n->jrc->stats.repeats != rep + 1)
            cj_test_failf(__FILE__, __LINE__, "flipped byte %zu answered", i);
    }
    /* 7. truncations and garbage */
    for (size_t l = 0; l < req_len; l++)
        CHECK(!inject(n, 1, 0, req, l));
    for (int k = 0; k < 200; k++) {
        uint8_t junk[100];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (uint8_t)rnd();
        size_t l = (size_t)(rnd() % sizeof junk);
        CHECK(!inject(n, 1, 0, junk, l));
        CHECK(!inject(n, 0, 1, junk, l));
        CHECK(!inject(n, pledge_node(n, 3), 1, junk, l));
        CHECK(!inject(n, 1, pledge_node(n, 2), junk, l));
    }
    /* nothing durable changed, nobody was admitted */
    CHECK(!memcmp(snap, n->entries, n->pledges * sizeof *snap));
    CHECK_EQ(n->jrc->stats.joins, joins);
    CHECK(n->proxy[0].stats.dropped_replay >= 1);
    CHECK(n->proxy[0].stats.dropped_token >= 1);
    free(snap);
    net_free(n);
    free(n);
}

/* Needs the pledge side of recovery, a compile-time switch
 * (CJ_PLEDGE_RECOVERY in cojp/config.h). */
#if CJ_PLEDGE_RECOVERY
/* RFC 9031 section 8.3.3: the JRC lost every pledge's mutable OSCORE
 * state (database restored from an old backup).  Restarted in recovery
 * mode, it answers each pledge's next Join Request with a 4.01 carrying
 * R2; the pledges move to ID Context R2 || R3 and join again, and the
 * JRC finds them under the new context afterwards. */
TEST(net_recovery_after_state_loss)
{
    net_t *n = calloc(1, sizeof *n);
    net_init(n, 2, 50, 50, 0x8303);
    n->loss = 0.10;
    net_start_pledges(n, 5000);
    run(n, 3600 * 1000ULL, all_joined);
    CHECK_EQ(count_joined(n), 50);

    /* Lose the mutable state: sequence numbers and replay windows. */
    for (size_t i = 0; i < n->pledges; i++) {
        n->entries[i].rec.ssn_reserved = 0;
        memset(&n->entries[i].rec.replay, 0, sizeof n->entries[i].rec.replay);
    }
    n->jcfg.recovery = true;
    memset(n->jrc, 0xa5, sizeof *n->jrc);
    jrc_start(n);
    /* New keys from here on: audit the new contexts afresh. */
    n->audit_n = 0;
    for (size_t i = 0; i < n->pledges; i++) {
        n->joined_events[i] = 0;
        heap_push(n, (ev_t){.t = n->now + rnd() % 5000, .kind = 2, .to = (uint16_t)pledge_node(n, i)});
    }
    run(n, n->now + 3600 * 1000ULL, all_joined);
    CHECK_EQ(count_joined(n), 50);
    CHECK(n->jrc->stats.recoveries >= 50);
    for (size_t i = 0; i < n->pledges; i++)
        CHECK_EQ(n->entries[i].rec.id_context_len, 16);
    check_short_ids(n);
    CHECK_EQ(n->nonce_reuse, 0);

    /* Out of recovery mode, the pledges keep joining under R2 || R3. */
    n->jcfg.recovery = false;
    memset(n->jrc, 0xa5, sizeof *n->jrc);
    jrc_start(n);
    unsigned long recov = n->jrc->stats.recoveries;
    for (size_t i = 0; i < n->pledges; i++) {
        n->joined_events[i] = 0;
        heap_push(n, (ev_t){.t = n->now + rnd() % 5000, .kind = 2, .to = (uint16_t)pledge_node(n, i)});
    }
    run(n, n->now + 3600 * 1000ULL, all_joined);
    CHECK_EQ(count_joined(n), 50);
    CHECK_EQ(n->jrc->stats.recoveries, recov);
    printf("  net: recovery: 50 pledges re-established under R2||R3 and rejoined\n");
    net_free(n);
    free(n);
}
#endif
