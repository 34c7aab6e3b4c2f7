/*
 * sim.c - the discrete-event core of `cojp sim`: topology and radio, the
 * TSCH MAC (minimal cell, optional autonomous cells, CSMA-CA backoff in
 * shared cells, ACKs and retransmissions, duplicate detection, drop-tail
 * queues), 6LoWPAN reassembly, the pledge's scan and JP selection, a
 * small RPL (DIO/DIS with Trickle; storing mode with DAO, DAO-ACK,
 * No-Path DAOs and route lifetimes), and the glue feeding datagrams to
 * the engines.
 *
 * The scheduler is event driven: each mote has one wake-up slot (the
 * earlier of its next transmission opportunity and its next timer) in a
 * binary heap; only slots in which some mote wakes are processed.  Motes
 * that merely listen cost nothing until a neighbour transmits.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cojp/crypto.h"
#include "cojp/wpan.h"
#include "sim/sim.h"

/* Trickle for DIOs.  RFC 6550's defaults (Imin 2^3 ms, 20 doublings)
 * put every DIO of a reset inside the next minimal cell, where they all
 * collide; like TSCH implementations (Contiki-NG, OpenWSN) the simulator
 * uses Imin 2^12 ms and 8 doublings (docs/simulator.md). */
#define TRICKLE_IMIN_MS 4096u
#define TRICKLE_DOUBLINGS 8u
#define TRICKLE_K 10u
#define DIS_PERIOD_MS 10000u
#define PARENT_SWITCH_THRESHOLD 384u
#define PARENT_FAIL_LIMIT 3u
#define RESTART_AFTER_FAIL_MS 60000u
#define HOP_LIMIT 64u

/* RPL storing mode (RFC 6550 section 9).  Route lifetimes are in units
 * of 60 s, as the DIO's DODAG Configuration option says (sim_frame.c):
 * 30 min, refreshed by a DAO of the target every 10 min (+-10 %), so
 * two refreshes may be lost before a route expires; upward traffic
 * from a target through the child a route points to refreshes it too.
 * A DAO waits DAO_DELAY (+-50 %) so targets learnt together travel in
 * one DAO; it asks for a DAO-ACK from the parent and is retransmitted
 * after DAO_ACK_TIMEOUT, doubling up to DAO_MAX_BACKOFF and never given
 * up while the parent stays. */
#define DAO_LIFETIME_UNITS 30u
#define DAO_LIFETIME_MS (DAO_LIFETIME_UNITS * 60000ull)
#define DAO_REFRESH_MS 600000u
#define DAO_DELAY_MS 2000u
#define DAO_ACK_TIMEOUT_MS 15000u
#define DAO_MAX_BACKOFF_MS 120000u

/* CoAP timing of the JRC's parameter updates.  RFC 9031 Table 1 (10 s
 * ACK_TIMEOUT) is for the join exchange; an update campaign sends up to
 * CJ_JRC_MAX_INFLIGHT requests at once through the root's one RX cell,
 * each 2-3 fragments per hop, so a round trip takes tens of seconds with
 * autonomous cells and minutes with the minimal cell alone.  With 60 s
 * the four retransmissions span 60..90 s up to 1860..2790 s: late enough
 * not to add load while the first copies are still queued, long enough
 * for a multi-hop path through one shared cell per slotframe. */
#define UPDATE_ACK_TIMEOUT_MS 60000u
#define UPDATE_MAX_RETRANSMIT 4u

enum { E_PLEDGE = 1, E_PROXY, E_JRC };

/* ---- random numbers (the simulator's own, independent of the DRBG) ---- */

static uint64_t rnd(sim_t *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rnd01(sim_t *s) { return (double)(rnd(s) >> 11) / 9007199254740992.0; }

static uint64_t rnd_range(sim_t *s, uint64_t n) { return n ? rnd(s) % n : 0; }

/* ---- addresses --------------------------------------------------------- */

/* Mote i's EUI-64: a fixed OUI-style prefix and the index. */
static void eui_of(uint32_t i, uint8_t eui[8])
{
    static const uint8_t pfx[5] = {0x00, 0x12, 0x4b, 0x00, 0x00};
    memcpy(eui, pfx, 5);
    eui[5] = (uint8_t)(i >> 16);
    eui[6] = (uint8_t)(i >> 8);
    eui[7] = (uint8_t)i;
}

static cj_addr_t addr_of(const sim_t *s, uint32_t i)
{
    cj_addr_t a;
    a.len = 8;
    memcpy(a.b, s->m[i].eui, 8);
    return a;
}

static cj_addr_t addr_jrc(void)
{
    cj_addr_t a;
    memset(&a, 0, sizeof a);
    a.len = 1; /* the JRC service on the root */
    return a;
}

const char *sim_kind_name(uint8_t kind)
{
    static const char *const names[] = {"?", "eb", "dio", "dis", "dao", "dao_ack", "udp", "join"};
    return kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

/* ---- scheduler heap ---------------------------------------------------- */

static bool heap_less(const sim_heap_ent_t *a, const sim_heap_ent_t *b)
{
    return a->asn < b->asn || (a->asn == b->asn && a->mote < b->mote);
}

static void heap_push(sim_t *s, sim_heap_ent_t e)
{
    if (s->hn == s->hcap) {
        s->hcap = s->hcap ? s->hcap * 2 : 1024;
        s->heap = realloc(s->heap, s->hcap * sizeof *s->heap);
    }
    size_t i = s->hn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &s->heap[p]))
            break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = e;
}

static sim_heap_ent_t heap_pop(sim_t *s)
{
    sim_heap_ent_t top = s->heap[0], last = s->heap[--s->hn];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const sim_heap_ent_t *best = &last;
        if (l < s->hn && heap_less(&s->heap[l], best)) {
            m = l;
            best = &s->heap[l];
        }
        if (r < s->hn && heap_less(&s->heap[r], best))
            m = r;
        if (m == i)
            break;
        s->heap[i] = s->heap[m];
        i = m;
    }
    if (s->hn)
        s->heap[i] = last;
    return top;
}

/* ---- downward routes: (mote, destination) -> next hop ------------------
 * Open addressing; a removed route keeps its key with expires = 0. */

static uint64_t route_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

static sim_route_t *route_slot(sim_t *s, uint32_t at, uint32_t dst);

static void route_grow(sim_t *s)
{
    sim_route_t *old = s->routes;
    size_t oc = s->rcap;
    s->rcap = oc ? oc * 2 : 4096;
    s->routes = calloc(s->rcap, sizeof *s->routes);
    s->rcount = 0;
    for (size_t i = 0; i < oc; i++)
        if (old[i].key) {
            sim_route_t *e = route_slot(s, (uint32_t)(old[i].key >> 32) - 1, (uint32_t)old[i].key);
            e->next = old[i].next;
            e->seq = old[i].seq;
            e->expires = old[i].expires;
        }
    free(old);
}

/* The entry of (at, dst), created (not live) when absent. */
static sim_route_t *route_slot(sim_t *s, uint32_t at, uint32_t dst)
{
    if (2 * (s->rcount + 1) > s->rcap)
        route_grow(s);
    uint64_t key = (uint64_t)(at + 1) << 32 | dst;
    size_t i = route_hash(key) & (s->rcap - 1);
    while (s->routes[i].key && s->routes[i].key != key)
        i = (i + 1) & (s->rcap - 1);
    if (!s->routes[i].key) {
        s->rcount++;
        s->routes[i].key = key;
        s->routes[i].expires = 0;
    }
    return &s->routes[i];
}

/* The live route of (at, dst), or NULL. */
static sim_route_t *route_live(const sim_t *s, uint32_t at, uint32_t dst)
{
    if (!s->rcap)
        return NULL;
    uint64_t key = (uint64_t)(at + 1) << 32 | dst;
    size_t i = route_hash(key) & (s->rcap - 1);
    while (s->routes[i].key) {
        if (s->routes[i].key == key)
            return s->routes[i].expires > s->now ? &s->routes[i] : NULL;
        i = (i + 1) & (s->rcap - 1);
    }
    return NULL;
}

/* Path Sequence comparison (RFC 6550 section 7.2, circular region):
 * true when a is older than b. */
static bool seq_older(uint8_t a, uint8_t b) { return (int8_t)(uint8_t)(a - b) < 0; }

/* ---- TSCH CSMA-CA (IEEE 802.15.4-2015 section 6.2.5.3) -----------------
 * In shared cells a sender keeps a backoff exponent BE.  It starts at
 * macMinBe; after a transmission that got no ACK, BE = min(BE + 1,
 * macMaxBe) and the sender skips a random number of occurrences of the
 * cell, uniform in [0, 2^BE - 1]; after a success (or a frame given up
 * after macMaxFrameRetries) BE goes back to macMinBe.  Broadcasts are
 * never acknowledged and never backed off. */

uint8_t sim_csma_be(const sim_cfg_t *c, uint8_t be, bool success)
{
    if (success)
        return c->min_be;
    return be < c->max_be ? (uint8_t)(be + 1) : c->max_be;
}

unsigned sim_csma_backoff(sim_t *s, uint8_t be)
{
    return (unsigned)rnd_range(s, 1ull << be);
}

/* ---- TSCH schedule ----------------------------------------------------- */

/* Cell used to send pkt: the minimal cell (slot 0, channel offset 0) for
 * broadcasts and, without autonomous cells, for everything; with them,
 * unicast goes in the destination's autonomous cell (RFC 9033 section
 * 3: AutoTxCell = the neighbour's AutoRxCell coordinates). */
static void cell_of(const sim_t *s, const sim_pkt_t *p, uint16_t *slot, uint16_t *ch)
{
    if (s->cfg.autonomous && p->nexthop >= 0) {
        *slot = s->m[p->nexthop].auto_slot;
        *ch = s->m[p->nexthop].auto_ch;
    } else {
        *slot = 0;
        *ch = 0;
    }
}

/* First slot >= from whose offset is `slot`, skipping `skip` occurrences
 * (the CSMA-CA backoff counter counts occurrences of the cell). */
static uint64_t next_occurrence(const sim_t *s, uint64_t from, uint16_t slot, unsigned skip)
{
    uint64_t sf = s->cfg.slotframe;
    uint64_t off = from % sf;
    uint64_t a = from + ((slot + sf - off) % sf);
    return a + (uint64_t)skip * sf;
}

static bool listening(const sim_t *s, const sim_mote_t *m, uint64_t asn, uint8_t ch)
{
    if (m->state == ST_SCAN || m->state == ST_WAIT)
        return ch == m->scan_ch;
    uint64_t off = asn % s->cfg.slotframe;
    if (off == 0)
        return ch == sim_channel(asn, 0);
    if (s->cfg.autonomous && off == m->auto_slot)
        return ch == sim_channel(asn, m->auto_ch);
    return false;
}

/* The MAC serves the queue per cell, as TSCH implementations keep one
 * queue per neighbour: the next transmission is the earliest cell
 * occurrence of any queued packet (after its backoff), FIFO among
 * packets of the same cell, so a packet waiting for one neighbour's
 * cell never blocks traffic for another. */
static uint64_t pkt_slot(const sim_t *s, const sim_pkt_t *p)
{
    uint16_t slot, ch;
    uint64_t from = s->asn + 1 > p->not_before ? s->asn + 1 : p->not_before;
    cell_of(s, p, &slot, &ch);
    return next_occurrence(s, from, slot, 0);
}

static void update_tx_asn(sim_t *s, sim_mote_t *m)
{
    m->tx_asn = SIM_NEVER;
    for (unsigned k = 0; k < m->qn; k++) {
        uint64_t a = pkt_slot(s, m->q[(m->qh + k) % SIM_QUEUE_MAX]);
        if (a < m->tx_asn)
            m->tx_asn = a;
    }
}

/* Index (from the head) of the packet to send in slot asn, or -1. */
static int pick_tx(const sim_t *s, const sim_mote_t *m)
{
    for (unsigned k = 0; k < m->qn; k++) {
        const sim_pkt_t *p = m->q[(m->qh + k) % SIM_QUEUE_MAX];
        uint16_t slot, ch;
        cell_of(s, p, &slot, &ch);
        if (p->not_before <= s->asn && s->asn % s->cfg.slotframe == slot)
            return (int)k;
    }
    return -1;
}

static bool has_rank(const sim_mote_t *m)
{
    return m->state == ST_JOINED && (m->is_root || m->parent >= 0);
}

static uint64_t mote_timer(const sim_t *s, const sim_mote_t *m)
{
    uint64_t t = SIM_NEVER;
#define MIN_T(x)          \
    do {                  \
        uint64_t v_ = (x); \
        if (v_ < t)       \
            t = v_;       \
    } while (0)
    if (m->pl && (m->state == ST_JOINING || m->state == ST_JOINED))
        MIN_T(cj_pledge_next_timer(m->pl));
    if (m->is_root) {
        MIN_T(cj_jrc_next_timer(s->jrc));
        if (s->cfg.rekey_at_ms >= 0 && !s->rekeyed)
            MIN_T((uint64_t)s->cfg.rekey_at_ms);
    }
    if (m->state == ST_COLLECT)
        MIN_T(m->t_collect_end);
    if (m->state == ST_WAIT)
        MIN_T(m->t_restart);
    if (has_rank(m)) {
        MIN_T(m->next_eb);
        MIN_T(m->tr_fired ? m->tr_end : m->tr_t);
    }
    if (m->state == ST_JOINED && !m->is_root && m->parent < 0)
        MIN_T(m->next_dis);
    if (m->state == ST_JOINED && !m->is_root && m->parent >= 0) {
        MIN_T(m->dao_timer);
        MIN_T(m->dao_refresh);
    }
#undef MIN_T
    return t;
}

static void resched(sim_t *s, uint32_t i)
{
    sim_mote_t *m = &s->m[i];
    uint64_t t = mote_timer(s, m), w;
    if (t == SIM_NEVER)
        w = SIM_NEVER;
    else {
        w = (t + SIM_SLOT_MS - 1) / SIM_SLOT_MS;
        if (w <= s->asn)
            w = s->asn + 1;
    }
    if (m->tx_asn < w)
        w = m->tx_asn;
    if (w == m->wake)
        return;
    m->wake = w;
    m->gen++;
    if (w != SIM_NEVER)
        heap_push(s, (sim_heap_ent_t){w, i, m->gen});
}

/* ---- queue ------------------------------------------------------------- */

sim_pkt_t *sim_pkt_new(uint8_t kind, int32_t nexthop, int32_t src, int32_t dst,
                       const uint8_t *data, size_t len)
{
    sim_pkt_t *p = calloc(1, sizeof *p + len);
    p->kind = kind;
    p->retries = 0;
    p->hop_limit = kind == PK_JOIN || kind == PK_DIO || kind == PK_DIS ? 255 : HOP_LIMIT;
    p->not_before = 0;
    p->nexthop = nexthop;
    p->src = src;
    p->dst = dst;
    p->len = (uint16_t)len;
    if (len)
        memcpy(p->data, data, len);
    return p;
}

static void enqueue(sim_t *s, uint32_t i, sim_pkt_t *p)
{
    sim_mote_t *m = &s->m[i];
    /* one pending beacon/DIO/DIS at a time: a newer one would say the
     * same thing */
    if (p->kind == PK_EB || p->kind == PK_DIO || p->kind == PK_DIS) {
        for (unsigned k = 0; k < m->qn; k++)
            if (m->q[(m->qh + k) % SIM_QUEUE_MAX]->kind == p->kind) {
                free(p);
                return;
            }
    }
    if (m->qn == SIM_QUEUE_MAX) { /* drop-tail */
        m->queue_drops++;
        s->queue_drops++;
        free(p);
        return;
    }
    m->q[(m->qh + m->qn) % SIM_QUEUE_MAX] = p;
    m->qn++;
    update_tx_asn(s, m);
}

/* Remove (and free) packet p from the queue of m. */
static void dequeue(sim_t *s, sim_mote_t *m, sim_pkt_t *p)
{
    unsigned k = 0;
    while (k < m->qn && m->q[(m->qh + k) % SIM_QUEUE_MAX] != p)
        k++;
    if (k == m->qn)
        return;
    for (; k + 1 < m->qn; k++)
        m->q[(m->qh + k) % SIM_QUEUE_MAX] = m->q[(m->qh + k + 1) % SIM_QUEUE_MAX];
    m->qn--;
    free(p);
    update_tx_asn(s, m);
}

/* ---- routing ----------------------------------------------------------- */

static void forward(sim_t *s, uint32_t at, sim_pkt_t *p, int32_t came_from)
{
    sim_mote_t *m = &s->m[at];
    const sim_route_t *r = route_live(s, at, (uint32_t)p->dst);
    if (r && (int32_t)r->next != came_from) {
        p->nexthop = (int32_t)r->next;
    } else if (!m->is_root && m->parent >= 0 && came_from != m->parent) {
        p->nexthop = m->parent;
    } else {
        s->no_route++;
        free(p);
        return;
    }
    enqueue(s, at, p);
}

/* ---- engines glue ------------------------------------------------------ */

static void on_joined(sim_t *s, uint32_t i);
static void deliver_local(sim_t *s, uint32_t i, int target, const cj_addr_t *from,
                          uint8_t *msg, size_t len, int depth);

static void count_jrc_event(sim_t *s, int ev)
{
    if (ev == CJ_JRC_EV_UPDATE_ACKED)
        s->upd_acked++;
    else if (ev == CJ_JRC_EV_UPDATE_FAILED)
        s->upd_failed++;
    else if (ev == CJ_JRC_EV_CAMPAIGN_DONE)
        s->campaign_done = true;
}

/* A mote's Join Proxy obeys the mote's own Configuration: join rate and
 * blacklist, at join and after every parameter update (RFC 9031 section
 * 8.4.2; a new blacklist replaces the old one, an absent join rate is
 * unlimited).  The entries are read from the engine's fields: cojp/pledge.h
 * has no accessor listing them. */
static void jp_configure(sim_mote_t *m)
{
    const uint8_t *ids[CJ_COJP_MAX_BLACKLIST];
    size_t lens[CJ_COJP_MAX_BLACKLIST];
    size_t n = cj_pledge_blacklist_count(m->pl);
    uint64_t rate = cj_pledge_join_rate(m->pl);

    cj_proxy_set_join_rate(m->jp, rate >= CJ_PROXY_RATE_UNLIMITED ? CJ_PROXY_RATE_UNLIMITED
                                                                   : (uint32_t)rate);
    for (size_t k = 0; k < n; k++) {
        ids[k] = m->pl->blacklist[k];
        lens[k] = m->pl->blacklist_len[k];
    }
    /* cannot fail: CJ_COJP_MAX_BLACKLIST entries of CJ_PLEDGE_MAX_BLACKLIST_ID
     * bytes fit the proxy's table (checked at compile time below) */
    (void)cj_proxy_set_blacklist(m->jp, ids, lens, n);
}
_Static_assert(CJ_COJP_MAX_BLACKLIST <= CJ_PROXY_MAX_BLACKLIST &&
                   CJ_PLEDGE_MAX_BLACKLIST_ID <= CJ_PROXY_MAX_ID,
               "a Configuration's blacklist must fit the Join Proxy's");

static bool key_for(const cj_pledge_key_t *k, uint8_t type, uint8_t *level);
static void report_rx_used(sim_t *s, uint32_t i, uint8_t key_id);

/* RFC 9031 section 5.1: once the Join Response installed the keys, the
 * frame that carried it is verified under them, and only then is the
 * ASN the pledge took from an unauthenticated EB declared valid.  The
 * root joins over a local exchange: no frame, its own time.  (A Join
 * Response in several fragments: the last one is verified.) */
static bool join_frame_verified(sim_t *s, uint32_t i)
{
    sim_mote_t *m = &s->m[i];
    sim_tx_t *tx = m->jr_tx;
    cj_wpan_frame_t f;

    if (tx == NULL)
        return true;
    if (cj_wpan_frame_decode(tx->frame, tx->len, CJ_WPAN_DEC_FCS, &f) != CJ_OK || !f.security)
        return false;
    const cj_pledge_key_t *k = cj_pledge_rx_key(m->pl, f.sec.key_index);
    if (!key_for(k, CJ_WPAN_TYPE_DATA, NULL))
        return false;
    /* the nonce holds the ASN as the pledge believes it */
    uint8_t buf[SIM_FRAME_MAX];
    memcpy(buf, tx->frame, tx->len - SIM_FCS_LEN);
    s->mic_checks++;
    if (cj_wpan_unprotect(buf, tx->len - SIM_FCS_LEN, k->key, s->m[tx->mote].eui,
                          s->asn - m->asn_skew) < 0) {
        s->mic_fail++;
        return false;
    }
    s->asn_verified++;
    report_rx_used(s, i, k->key_id);
    return true;
}

static void pledge_event(sim_t *s, uint32_t i, int ev)
{
    sim_mote_t *m = &s->m[i];
    switch (ev) {
    case CJ_PLEDGE_EV_JOINED:
        if (!join_frame_verified(s, i)) {
            /* the ASN may be a replayed one: start over from the EBs */
            m->asn_rejected++;
            s->asn_rejected++;
            m->state = ST_WAIT;
            m->t_restart = s->now;
            break;
        }
        on_joined(s, i);
        break;
    case CJ_PLEDGE_EV_UPDATED:
        m->updates++;
        if (m->jp)
            jp_configure(m);
        break;
    case CJ_PLEDGE_EV_KEYS_SWITCHED:
        m->keys_switched++;
        break;
    case CJ_PLEDGE_EV_REJECTED:
    case CJ_PLEDGE_EV_TIMEOUT:
    case CJ_PLEDGE_EV_RECOVERY:
        m->join_attempts++;
        break;
    case CJ_PLEDGE_EV_FAILED:
        /* signalled out of band; the device rescans a minute later */
        m->state = ST_WAIT;
        m->t_restart = s->now + RESTART_AFTER_FAIL_MS;
        break;
    default:
        break;
    }
}

/* Carry out what an engine on mote i returned. */
static void emit(sim_t *s, uint32_t i, int engine, cj_out_t *out, int depth)
{
    sim_mote_t *m = &s->m[i];
    if (!out->len)
        return;
    if (out->to.len == 1) { /* to the JRC */
        if (m->is_root) {
            cj_addr_t from = addr_of(s, i);
            deliver_local(s, i, E_JRC, &from, out->buf, out->len, depth + 1);
        } else if (m->state == ST_JOINED) {
            forward(s, i, sim_pkt_new(PK_UDP, -1, (int32_t)i, 0, out->buf, out->len), -1);
        }
        return;
    }
    int32_t dst = out->to.len == 8 ? sim_mote_of(s, out->to.b) : -1;
    if (dst < 0)
        return;
    if (engine == E_JRC) {
        if ((uint32_t)dst == i) {
            cj_addr_t from = addr_jrc();
            /* a request goes to the root's pledge engine (parameter
             * update), a response to the pledge while it is joining,
             * else to the root's Join Proxy */
            bool request = out->len >= 2 && (out->buf[1] >> 5) == 0 && out->buf[1] != 0;
            int target = request || m->state != ST_JOINED ? E_PLEDGE : E_PROXY;
            deliver_local(s, i, target, &from, out->buf, out->len, depth + 1);
        } else {
            forward(s, i, sim_pkt_new(PK_UDP, -1, (int32_t)i, dst, out->buf, out->len), -1);
        }
        return;
    }
    /* pledge <-> JP: link-local, unsecured (RFC 9031 section 5) */
    enqueue(s, i, sim_pkt_new(PK_JOIN, dst, (int32_t)i, dst, out->buf, out->len));
    if (engine == E_PLEDGE) {
        m->join_msgs++;
        if (m->t_join_req == SIM_NEVER)
            m->t_join_req = s->now;
    }
}

static void pledge_poll(sim_t *s, uint32_t i, int depth)
{
    sim_mote_t *m = &s->m[i];
    uint8_t buf[512];
    cj_out_t out = {.buf = buf, .cap = sizeof buf};
    for (int guard = 0; guard < 32 && m->pl; guard++) {
        if (cj_pledge_next_timer(m->pl) > s->now)
            break;
        cj_out_reset(&out);
        m->pf.now = s->now;
        if (cj_pledge_poll(m->pl, s->now, &out) != 1)
            break;
        if (out.event)
            pledge_event(s, i, out.event);
        emit(s, i, E_PLEDGE, &out, depth);
    }
}

static void jrc_poll(sim_t *s, int depth)
{
    uint8_t buf[512];
    cj_out_t out = {.buf = buf, .cap = sizeof buf};
    for (int guard = 0; guard < 256; guard++) {
        if (cj_jrc_next_timer(s->jrc) > s->now)
            break;
        cj_out_reset(&out);
        s->jrc_pf.now = s->now;
        if (cj_jrc_poll(s->jrc, s->now, &out) != 1)
            break;
        count_jrc_event(s, out.event);
        emit(s, 0, E_JRC, &out, depth);
    }
}

/* A datagram for one of the engines of mote i. */
static void deliver_local(sim_t *s, uint32_t i, int target, const cj_addr_t *from,
                          uint8_t *msg, size_t len, int depth)
{
    sim_mote_t *m = &s->m[i];
    uint8_t buf[512], copy[512];
    cj_out_t out = {.buf = buf, .cap = sizeof buf};
    if (depth > 8 || len > sizeof copy)
        return;
    memcpy(copy, msg, len);
    cj_out_reset(&out);
    switch (target) {
    case E_JRC:
        s->jrc_pf.now = s->now;
        if (cj_jrc_input(s->jrc, s->now, from, copy, len, &out) == 1) {
            count_jrc_event(s, out.event);
            emit(s, 0, E_JRC, &out, depth);
        }
        jrc_poll(s, depth);
        break;
    case E_PROXY:
        if (!m->jp)
            return;
        if (from->len == 1) {
            /* the JP's ACK (or RST) of a CON response goes to the JRC */
            uint8_t abuf[CJ_PROXY_ACK_LEN];
            cj_out_t ack = {.buf = abuf, .cap = sizeof abuf};
            if (cj_proxy_input_jrc(m->jp, s->now, from, copy, len, &out, &ack) == 1)
                emit(s, i, E_PROXY, &out, depth);
            emit(s, i, E_PROXY, &ack, depth);
        } else if (cj_proxy_input_pledge(m->jp, s->now, from, copy, len, &out) > 0) {
            /* forwarded to the JRC, or (2) a RST for the pledge */
            emit(s, i, E_PROXY, &out, depth);
        }
        break;
    case E_PLEDGE:
        if (!m->pl)
            return;
        m->pf.now = s->now;
        if (cj_pledge_input(m->pl, s->now, from, copy, len, &out) == 1) {
            if (out.event)
                pledge_event(s, i, out.event);
            emit(s, i, E_PLEDGE, &out, depth);
        }
        pledge_poll(s, i, depth);
        break;
    default:
        break;
    }
}

/* ---- RPL --------------------------------------------------------------- */

static void trickle_reset(sim_t *s, sim_mote_t *m)
{
    m->tr_i = TRICKLE_IMIN_MS;
    m->tr_c = 0;
    m->tr_fired = false;
    m->tr_end = s->now + m->tr_i;
    m->tr_t = s->now + m->tr_i / 2 + rnd_range(s, m->tr_i / 2);
}

static void trickle_next(sim_t *s, sim_mote_t *m)
{
    uint64_t imax = (uint64_t)TRICKLE_IMIN_MS << TRICKLE_DOUBLINGS;
    uint64_t start = m->tr_end;
    m->tr_i = m->tr_i * 2 > imax ? imax : m->tr_i * 2;
    m->tr_c = 0;
    m->tr_fired = false;
    m->tr_end = start + m->tr_i;
    m->tr_t = start + m->tr_i / 2 + rnd_range(s, m->tr_i / 2);
}

/* Rank through neighbour nb: OF0 with step_of_rank = 3 * ETX - 2 (RFC
 * 8180 section 5.1.1), ETX taken as 1 / PDR of the link. */
static uint32_t rank_via(const sim_nb_t *nb)
{
    double etx = 1.0 / nb->pdr;
    double step = 3.0 * etx - 2.0;
    return nb->rank + (uint32_t)(step * SIM_MIN_HOP_RANK + 0.5);
}

/* ---- RPL storing mode: DAO, DAO-ACK, No-Path ------------------------- */

typedef struct tgt {
    uint32_t idx;
    uint8_t seq;
} tgt_t;

static void adv_add(sim_mote_t *m, uint32_t t)
{
    for (uint32_t k = 0; k < m->nadv; k++)
        if (m->adv[k] == t)
            return;
    if (m->nadv == m->cadv) {
        m->cadv = m->cadv ? m->cadv * 2 : 8;
        m->adv = realloc(m->adv, m->cadv * sizeof *m->adv);
    }
    m->adv[m->nadv++] = t;
}

/* Schedule a DAO after DAO_DELAY (+-50 %) unless one is due earlier or
 * one awaits its DAO-ACK (the next follows the ACK). */
static void dao_soon(sim_t *s, sim_mote_t *m)
{
    uint64_t t = s->now + DAO_DELAY_MS / 2 + rnd_range(s, DAO_DELAY_MS);
    if (!m->dao_wait && (m->dao_timer == SIM_NEVER || m->dao_timer > t))
        m->dao_timer = t;
}

/* Queue a DAO from mote i to its neighbour `to` for targets t[0..n),
 * path lifetime `life` units (0: No-Path). */
static void send_dao_pkt(sim_t *s, uint32_t i, int32_t to, uint8_t seq, bool k, const tgt_t *t,
                         unsigned n, uint8_t life)
{
    uint8_t d[3 + 6 * SIM_DAO_TARGETS];
    d[0] = seq;
    d[1] = k;
    d[2] = (uint8_t)n;
    for (unsigned x = 0; x < n; x++) {
        uint8_t *e = d + 3 + 6 * x;
        e[0] = (uint8_t)(t[x].idx >> 24);
        e[1] = (uint8_t)(t[x].idx >> 16);
        e[2] = (uint8_t)(t[x].idx >> 8);
        e[3] = (uint8_t)t[x].idx;
        e[4] = t[x].seq;
        e[5] = life;
    }
    enqueue(s, i, sim_pkt_new(PK_DAO, to, (int32_t)i, to, d, 3 + 6 * n));
    s->m[i].dao_sent++;
    s->dao_sent++;
    if (!life)
        s->nopath_sent++;
}

/* Live routes held by mote i: its sub-DODAG.  *out is malloc'd. */
static unsigned subtree(const sim_t *s, uint32_t i, tgt_t **out)
{
    unsigned n = 0, cap = 0;
    *out = NULL;
    for (size_t k = 0; k < s->rcap; k++) {
        const sim_route_t *e = &s->routes[k];
        if (!e->key || (uint32_t)(e->key >> 32) - 1 != i || e->expires <= s->now)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = realloc(*out, cap * sizeof **out);
        }
        (*out)[n++] = (tgt_t){(uint32_t)e->key, e->seq};
    }
    return n;
}

/* The DAO timer of mote i: (re)transmit the DAO awaiting its ACK, or
 * send the next targets waiting to be advertised. */
static void dao_fire(sim_t *s, uint32_t i)
{
    sim_mote_t *m = &s->m[i];
    m->dao_timer = SIM_NEVER;
    if (m->is_root || m->parent < 0 || m->state != ST_JOINED)
        return;
    if (m->dao_wait) {
        /* still queued here (congested cell): no second copy */
        for (unsigned k = 0; k < m->qn; k++) {
            const sim_pkt_t *q = m->q[(m->qh + k) % SIM_QUEUE_MAX];
            if (q->kind == PK_DAO && q->data[1] && q->data[0] == m->dao_out_seq) {
                m->dao_timer = s->now + DAO_ACK_TIMEOUT_MS;
                return;
            }
        }
        m->dao_tries++;
        m->dao_retx++;
        s->dao_retx++;
    } else {
        if (!m->nadv)
            return;
        m->ndao_out = 0;
        while (m->nadv && m->ndao_out < SIM_DAO_TARGETS) {
            m->dao_out[m->ndao_out++] = m->adv[0];
            memmove(m->adv, m->adv + 1, (m->nadv - 1) * sizeof *m->adv);
            m->nadv--;
        }
        m->dao_out_seq = ++m->dao_seq;
        m->dao_tries = 0;
        m->dao_wait = true;
    }
    tgt_t t[SIM_DAO_TARGETS];
    unsigned n = 0;
    for (unsigned k = 0; k < m->ndao_out; k++) {
        uint32_t x = m->dao_out[k];
        const sim_route_t *e;
        if (x == i)
            t[n++] = (tgt_t){i, m->path_seq};
        else if ((e = route_live(s, i, x)) != NULL)
            t[n++] = (tgt_t){x, e->seq};
    }
    if (!n) { /* every target went away meanwhile */
        m->dao_wait = false;
        m->ndao_out = 0;
        if (m->nadv)
            dao_soon(s, m);
        return;
    }
    send_dao_pkt(s, i, m->parent, m->dao_out_seq, true, t, n, DAO_LIFETIME_UNITS);
    uint64_t to = (uint64_t)DAO_ACK_TIMEOUT_MS << (m->dao_tries < 4 ? m->dao_tries : 4);
    m->dao_timer = s->now + (to > DAO_MAX_BACKOFF_MS ? DAO_MAX_BACKOFF_MS : to);
}

/* The DAO awaiting its ACK goes back to the targets to advertise. */
static void dao_requeue(sim_mote_t *m)
{
    for (unsigned k = 0; k < m->ndao_out; k++)
        adv_add(m, m->dao_out[k]);
    m->ndao_out = 0;
    m->dao_wait = false;
    m->dao_tries = 0;
}

/* Mote i took a new preferred parent (old: the previous one, or -1).
 * RFC 6550 section 9: a new Path Sequence for our own target, No-Path
 * DAOs to the old parent for ourselves and every target below us (so the
 * old branch forgets them), and DAOs for all of them to the new parent
 * (the common ancestor replaces its route: newer or equal sequence,
 * latest wins). */
static void parent_changed(sim_t *s, uint32_t i, int32_t old)
{
    sim_mote_t *m = &s->m[i];
    tgt_t *sub;
    unsigned ns = subtree(s, i, &sub);
    m->path_seq++;
    if (old >= 0) {
        tgt_t chunk[SIM_DAO_TARGETS];
        unsigned c = 0;
        chunk[c++] = (tgt_t){i, m->path_seq};
        for (unsigned k = 0; k <= ns; k++) {
            if (c == SIM_DAO_TARGETS || (k == ns && c)) {
                send_dao_pkt(s, i, old, ++m->dao_seq, false, chunk, c, 0);
                c = 0;
            }
            if (k < ns)
                chunk[c++] = sub[k];
        }
    }
    dao_requeue(m);
    adv_add(m, i);
    for (unsigned k = 0; k < ns; k++)
        adv_add(m, sub[k].idx);
    free(sub);
    m->dao_timer = SIM_NEVER;
    dao_soon(s, m);
    if (m->dao_refresh == SIM_NEVER)
        m->dao_refresh = s->now + DAO_REFRESH_MS * 9 / 10 + rnd_range(s, DAO_REFRESH_MS / 5);
}

/* A DAO from child `from` at mote r (storing mode, section 9.2). */
static void rx_dao(sim_t *s, uint32_t r, uint32_t from, const sim_rx_t *rx)
{
    sim_mote_t *m = &s->m[r];
    tgt_t gone[SIM_DAO_TARGETS];
    unsigned ng = 0;
    bool changed = false;
    for (unsigned k = 0; k < rx->ntargets; k++) {
        uint32_t t = (uint32_t)rx->target[k];
        uint8_t seq = rx->target_seq[k], life = rx->target_life[k];
        if (t == r || (int32_t)from == m->parent)
            continue; /* would make a loop */
        sim_route_t *e = route_live(s, r, t);
        if (life == 0) {
            if (e && e->next == from && !seq_older(seq, e->seq)) {
                e->expires = 0;
                s->routes_removed++;
                gone[ng++] = (tgt_t){t, seq};
            }
            continue;
        }
        if (e && seq_older(seq, e->seq))
            continue; /* stale */
        bool ch = !e || e->next != from || e->seq != seq;
        e = route_slot(s, r, t);
        e->next = from;
        e->seq = seq;
        e->expires = s->now + (uint64_t)life * 60000;
        if (ch && !m->is_root) {
            adv_add(m, t);
            changed = true;
        }
    }
    if (changed)
        dao_soon(s, m);
    /* a removal travels up as far as routes pointed this way */
    if (ng && !m->is_root && m->parent >= 0)
        send_dao_pkt(s, r, m->parent, ++m->dao_seq, false, gone, ng, 0);
    if (rx->dao_k) {
        uint8_t d[2] = {rx->dao_seq, 0};
        enqueue(s, r, sim_pkt_new(PK_DAO_ACK, (int32_t)from, (int32_t)r, (int32_t)from, d, 2));
    }
}

static void rx_dao_ack(sim_t *s, uint32_t r, uint32_t from, const sim_rx_t *rx)
{
    sim_mote_t *m = &s->m[r];
    if (!m->dao_wait || rx->dao_seq != m->dao_out_seq || (int32_t)from != m->parent)
        return;
    m->dao_wait = false;
    m->ndao_out = 0;
    m->dao_acked++;
    s->dao_acked++;
    m->dao_timer = SIM_NEVER;
    if (m->nadv)
        dao_soon(s, m);
}

static void select_parent(sim_t *s, uint32_t i)
{
    sim_mote_t *m = &s->m[i];
    if (m->is_root || m->state != ST_JOINED)
        return;
    int32_t best = -1;
    uint32_t best_rank = UINT32_MAX, cur_rank = UINT32_MAX;
    for (uint32_t k = 0; k < m->nb_cnt; k++) {
        const sim_nb_t *nb = &s->nb[m->nb_off + k];
        if (nb->rank == SIM_INFINITE_RANK || nb->pdr < s->cfg.min_pdr)
            continue;
        uint32_t r = rank_via(nb);
        if ((int32_t)nb->idx == m->parent)
            cur_rank = r;
        /* never through a neighbour ranked at or below us (a child) */
        if (m->parent >= 0 && (int32_t)nb->idx != m->parent && nb->rank >= m->rank)
            continue;
        if (r < best_rank) {
            best_rank = r;
            best = (int32_t)nb->idx;
        }
    }
    if (best < 0) {
        if (m->parent >= 0 && cur_rank == UINT32_MAX) {
            m->parent = -1; /* parent lost: solicit DIOs */
            m->rank = SIM_INFINITE_RANK;
            m->next_dis = s->now;
            dao_requeue(m);
            m->dao_timer = SIM_NEVER;
        }
        return;
    }
    if (m->parent < 0) {
        m->parent = best;
        m->rank = (uint16_t)(best_rank > 0xfffe ? 0xfffe : best_rank);
        if (m->t_parent == SIM_NEVER)
            m->t_parent = s->now;
        m->next_eb = s->now + rnd_range(s, s->cfg.eb_period_ms);
        trickle_reset(s, m);
        parent_changed(s, i, -1);
        return;
    }
    if (best != m->parent && (cur_rank == UINT32_MAX ||
                              best_rank + PARENT_SWITCH_THRESHOLD <= cur_rank)) {
        int32_t old = m->parent;
        m->parent = best;
        m->parent_changes++;
        m->rank = (uint16_t)(best_rank > 0xfffe ? 0xfffe : best_rank);
        parent_changed(s, i, old);
    } else if (cur_rank != UINT32_MAX) {
        m->rank = (uint16_t)(cur_rank > 0xfffe ? 0xfffe : cur_rank);
    }
}

static sim_nb_t *find_nb(sim_t *s, uint32_t i, uint32_t j)
{
    sim_mote_t *m = &s->m[i];
    for (uint32_t k = 0; k < m->nb_cnt; k++)
        if (s->nb[m->nb_off + k].idx == j)
            return &s->nb[m->nb_off + k];
    return NULL;
}

static void on_joined(sim_t *s, uint32_t i)
{
    sim_mote_t *m = &s->m[i];
    m->state = ST_JOINED;
    if (m->t_joined == SIM_NEVER)
        m->t_joined = s->now;
    if (!m->jp) {
        cj_proxy_cfg_t pc;
        memset(&pc, 0, sizeof pc);
        pc.jrc = addr_jrc();
        uint64_t rate = cj_pledge_join_rate(m->pl);
        pc.join_rate = rate >= CJ_PROXY_RATE_UNLIMITED ? CJ_PROXY_RATE_UNLIMITED : (uint32_t)rate;
        /* A relayed response is useful as long as the pledge waits for
         * it: MAX_TRANSMIT_WAIT of the join exchange (RFC 7252 section
         * 4.8.2 with RFC 9031 Table 1: 10 s * (2^5 - 1) * 1.5 = 465 s).
         * The engine's default, 4 * ACK_TIMEOUT = 40 s, is shorter than
         * a round trip through a congested multi-hop TSCH network, where
         * the JP would then drop the JRC's answers as stale. */
        cj_coap_timing_t jt = cj_coap_timing_default();
        pc.token_lifetime_ms = (uint32_t)((uint64_t)jt.ack_timeout_ms *
                                          ((2u << jt.max_retransmit) - 1) *
                                          jt.ack_random_factor_pct / 100);
        m->jp = calloc(1, sizeof *m->jp);
        cj_proxy_init(m->jp, &pc, NULL);
    }
    jp_configure(m);
    if (m->is_root) {
        m->rank = SIM_MIN_HOP_RANK;
        m->next_eb = s->now + rnd_range(s, s->cfg.eb_period_ms);
        trickle_reset(s, m);
    } else {
        m->rank = SIM_INFINITE_RANK;
        m->parent = -1;
        m->next_dis = s->now + rnd_range(s, 2000);
    }
}

/* ---- join life cycle --------------------------------------------------- */

static int cand_cmp(const sim_cand_t *a, const sim_cand_t *b)
{
    /* RFC 9032: PAN priority, then proxy priority (lower is better);
     * pledges ignore the rank priority.  Ties: the better link (what a
     * real pledge would read from the RSSI). */
    if (a->pan_prio != b->pan_prio)
        return a->pan_prio < b->pan_prio ? -1 : 1;
    if (a->proxy_prio != b->proxy_prio)
        return a->proxy_prio < b->proxy_prio ? -1 : 1;
    if (a->pdr != b->pdr)
        return a->pdr > b->pdr ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static void add_candidate(sim_t *s, uint32_t i, int32_t jp, const cj_wpan_join_info_t *ji)
{
    sim_mote_t *m = &s->m[i];
    sim_nb_t *nb = find_nb(s, i, (uint32_t)jp);
    sim_cand_t c = {jp, ji->proxy_prio, ji->pan_prio, nb ? nb->pdr : 0.0f};
    for (unsigned k = 0; k < m->ncand; k++)
        if (m->cand[k].idx == jp) {
            if (ji->proxy_prio == 0x7f) {
                /* no longer willing: forgotten, the order of the rest
                 * kept */
                memmove(&m->cand[k], &m->cand[k + 1],
                        (m->ncand - k - 1) * sizeof m->cand[0]);
                m->ncand--;
                return;
            }
            m->cand[k] = c;
            goto sort;
        }
    /* RFC 9032 section 2: 0x7f is never a JP, whatever it said before */
    if (ji->proxy_prio == 0x7f)
        return;
    if (m->ncand < SIM_MAX_CAND)
        m->cand[m->ncand++] = c;
    else if (cand_cmp(&c, &m->cand[SIM_MAX_CAND - 1]) < 0)
        m->cand[SIM_MAX_CAND - 1] = c;
sort:
    for (unsigned a = 1; a < m->ncand; a++)
        for (unsigned b = a; b > 0 && cand_cmp(&m->cand[b], &m->cand[b - 1]) < 0; b--) {
            sim_cand_t t = m->cand[b];
            m->cand[b] = m->cand[b - 1];
            m->cand[b - 1] = t;
        }
}

static void start_join(sim_t *s, uint32_t i)
{
    sim_mote_t *m = &s->m[i];
    for (unsigned k = 0; k < m->ncand; k++) {
        cj_addr_t a = addr_of(s, (uint32_t)m->cand[k].idx);
        cj_pledge_add_jp(m->pl, &a, s->netid, sizeof s->netid);
    }
    if (cj_pledge_start(m->pl, s->now) != CJ_OK) {
        m->state = ST_SCAN;
        return;
    }
    m->state = ST_JOINING;
    m->join_attempts++;
    pledge_poll(s, i, 0);
}

/* ---- transmissions and receptions ------------------------------------- */

static bool key_for(const cj_pledge_key_t *k, uint8_t type, uint8_t *level)
{
    cj_wpan_key_policy_t pol;
    if (!k || cj_wpan_key_policy(k->key_usage, &pol) != CJ_OK)
        return false;
    if (!(pol.types & (1u << type)))
        return false;
    if (level)
        *level = type == CJ_WPAN_TYPE_BEACON ? pol.beacon_level : pol.data_level;
    return true;
}

/* Verify and decrypt tx's frame under key, once per transmission and
 * key: receivers holding the same key share the result. */
static const sim_verify_t *verify_shared(sim_t *s, sim_tx_t *tx, const uint8_t key[16])
{
    for (unsigned k = 0; k < tx->nverify; k++)
        if (!memcmp(tx->verify[k].key, key, 16)) {
            s->mic_shared++;
            return &tx->verify[k];
        }
    unsigned slot = tx->nverify < 3 ? tx->nverify++ : 2;
    sim_verify_t *v = &tx->verify[slot];
    memcpy(v->key, key, 16);
    memcpy(v->plain, tx->frame, tx->len - SIM_FCS_LEN);
    v->result = cj_wpan_unprotect(v->plain, tx->len - SIM_FCS_LEN, key, s->m[tx->mote].eui, s->asn);
    s->mic_checks++;
    if (v->result < 0)
        s->mic_fail++;
    return v;
}

static void report_rx_used(sim_t *s, uint32_t i, uint8_t key_id)
{
    sim_mote_t *m = &s->m[i];
    uint8_t buf[64];
    cj_out_t out = {.buf = buf, .cap = sizeof buf};
    cj_out_reset(&out);
    if (cj_pledge_rx_used(m->pl, s->now, key_id, &out) == 1 && out.event)
        pledge_event(s, i, out.event);
}

static void rx_eb(sim_t *s, uint32_t r, sim_tx_t *tx)
{
    sim_mote_t *m = &s->m[r];
    cj_wpan_frame_t f;
    if (m->state == ST_JOINED) {
        /* authenticate with K1 */
        if (cj_wpan_frame_decode(tx->frame, tx->len, CJ_WPAN_DEC_FCS, &f) != CJ_OK || !f.security)
            return;
        const cj_pledge_key_t *k = cj_pledge_rx_key(m->pl, f.sec.key_index);
        if (!key_for(k, CJ_WPAN_TYPE_BEACON, NULL))
            return;
        const sim_verify_t *v = verify_shared(s, tx, k->key);
        if (v->result >= 0)
            report_rx_used(s, r, k->key_id);
        return;
    }
    if (m->state != ST_SCAN && m->state != ST_COLLECT)
        return;
    /* A pledge holds no K1 yet: it reads the IEs (in the clear at a
     * MIC-only level) without verifying the MIC, RFC 9031 section 6.1 */
    cj_wpan_eb_t eb;
    if (cj_wpan_frame_decode(tx->frame, tx->len, CJ_WPAN_DEC_FCS, &f) != CJ_OK ||
        f.type != CJ_WPAN_TYPE_BEACON ||
        f.encrypted || cj_wpan_eb_decode(&f, &eb) != CJ_OK || !eb.has_sync || !eb.has_join_info)
        return;
    if (f.src_mode != CJ_WPAN_ADDR_EXT)
        return;
    int32_t jp = sim_mote_of(s, f.src.ext);
    if (jp < 0 || eb.asn != s->asn)
        return;
    if (eb.join_info.network_id_len != sizeof s->netid ||
        memcmp(eb.join_info.network_id, s->netid, sizeof s->netid))
        return;
    if (m->state == ST_SCAN) {
        if (m->t_first_eb == SIM_NEVER)
            m->t_first_eb = s->now;
        m->t_sync = s->now; /* ASN adopted from the Sync IE */
        m->state = ST_COLLECT;
        m->t_collect_end = s->now + s->cfg.join_wait_ms;
        m->ncand = 0;
    }
    add_candidate(s, r, jp, &eb.join_info);
}

/* Network-layer handling of a verified K2 datagram at mote r. */
static void rx_net(sim_t *s, uint32_t r, uint32_t from, const sim_rx_t *rx)
{
    sim_mote_t *m = &s->m[r];
    switch (rx->kind) {
    case PK_DIO: {
        sim_nb_t *nb = find_nb(s, r, from);
        if (!nb)
            return;
        nb->rank = rx->rank;
        if (has_rank(m))
            m->tr_c++; /* counts as consistent (RFC 6206 section 4.2) */
        select_parent(s, r);
        return;
    }
    case PK_DIS:
        if (has_rank(m))
            trickle_reset(s, m);
        return;
    case PK_DAO:
        if (rx->dst == (int32_t)r)
            rx_dao(s, r, from, rx);
        return;
    case PK_DAO_ACK:
        if (rx->dst == (int32_t)r)
            rx_dao_ack(s, r, from, rx);
        return;
    case PK_UDP: {
        if (rx->src < 0 || rx->dst < 0)
            return;
        /* upward traffic refreshes the route to its source */
        if ((int32_t)from != m->parent && (uint32_t)rx->src != r) {
            sim_route_t *e = route_live(s, r, (uint32_t)rx->src);
            if (e && e->next == from && e->expires < s->now + DAO_LIFETIME_MS)
                e->expires = s->now + DAO_LIFETIME_MS;
        }
        if ((uint32_t)rx->dst == r) {
            if (rx->sport != SIM_UDP_PORT || rx->dport != SIM_UDP_PORT)
                return;
            uint8_t msg[SIM_DGRAM_MAX];
            if (rx->len > sizeof msg)
                return;
            memcpy(msg, rx->data, rx->len);
            if (m->is_root) {
                cj_addr_t a = addr_of(s, (uint32_t)rx->src);
                deliver_local(s, r, E_JRC, &a, msg, rx->len, 0);
            } else if (rx->src == 0) {
                cj_addr_t a = addr_jrc();
                bool request = rx->len >= 2 && (msg[1] >> 5) == 0 && msg[1] != 0;
                deliver_local(s, r, request ? E_PLEDGE : E_PROXY, &a, msg, rx->len, 0);
            }
            return;
        }
        if (rx->hop_limit <= 1) {
            s->no_route++;
            return;
        }
        sim_pkt_t *p = sim_pkt_new(PK_UDP, -1, rx->src, rx->dst, rx->data, rx->len);
        p->hop_limit = (uint8_t)(rx->hop_limit - 1);
        forward(s, r, p, (int32_t)from);
        return;
    }
    default:
        return;
    }
}

/* ---- 6LoWPAN reassembly (RFC 4944 section 5.3) -------------------------
 * At most SIM_REASS_SLOTS datagrams per mote, keyed by link-layer
 * sender, datagram_tag and datagram_size; a buffer is freed when its
 * datagram completes or SIM_REASS_TIMEOUT_MS after its first fragment.
 * A sender transmits the fragments of a datagram in order, each
 * acknowledged before the next, so a FRAGN without a buffer (its FRAG1
 * was refused, or the buffer timed out) is dropped. */

static void reass_expire(sim_t *s, sim_mote_t *m)
{
    for (unsigned k = 0; k < SIM_REASS_SLOTS; k++)
        if (m->reass[k] && m->reass[k]->deadline <= s->now) {
            s->reass_timeouts++;
            free(m->reass[k]);
            m->reass[k] = NULL;
        }
}

static int reass_find(const sim_mote_t *m, uint32_t from, const uint8_t *p)
{
    uint16_t size = (uint16_t)((p[0] & 7) << 8 | p[1]), tag = (uint16_t)(p[2] << 8 | p[3]);
    for (unsigned k = 0; k < SIM_REASS_SLOTS; k++) {
        const sim_reass_t *e = m->reass[k];
        if (e && e->from == from && e->tag == tag && e->size == size)
            return (int)k;
    }
    return -1;
}

/* A fragment p[0..len) from `from`.  Returns the length of the datagram
 * it completed (copied to out, compressed form), 0 when more fragments
 * are needed, -1 when it was dropped. */
static int reass_input(sim_t *s, uint32_t r, uint32_t from, bool secured, const uint8_t *p,
                       size_t len, uint8_t *out)
{
    sim_mote_t *m = &s->m[r];
    bool first = (p[0] & 0xf8) == SIM_FRAG1;
    reass_expire(s, m);
    if (len <= (first ? 4u : 5u)) {
        s->reass_bad++;
        return -1;
    }
    uint16_t size = (uint16_t)((p[0] & 7) << 8 | p[1]);
    int k = reass_find(m, from, p);
    if (k >= 0 && m->reass[k]->secured != secured) {
        s->reass_bad++;
        return -1;
    }
    if (k < 0) {
        if (!first) {
            s->reass_orphans++;
            return -1;
        }
        if (size > SIM_DGRAM_MAX) {
            s->reass_bad++;
            return -1;
        }
        for (unsigned x = 0; x < SIM_REASS_SLOTS && k < 0; x++)
            if (!m->reass[x])
                k = (int)x;
        if (k < 0) {
            s->reass_nobuf++;
            return -1;
        }
        sim_reass_t *n = calloc(1, sizeof *n);
        n->from = from;
        n->tag = (uint16_t)(p[2] << 8 | p[3]);
        n->size = size;
        n->secured = secured;
        n->deadline = s->now + SIM_REASS_TIMEOUT_MS;
        m->reass[k] = n;
    }
    sim_reass_t *e = m->reass[k];
    if (first) {
        uint16_t hc, hu;
        size_t fl = len - 4;
        if (sim_lowpan_hdr(p + 4, fl, &hc, &hu) != 0 || (hu + fl - hc) % 8 ||
            hu + fl - hc > size || fl > sizeof e->first)
            goto bad;
        memcpy(e->first, p + 4, fl);
        e->first_len = (uint16_t)fl;
        e->hdr_c = hc;
        e->hdr_u = hu;
    } else {
        size_t off = (size_t)p[4] * 8, fl = len - 5;
        if (off == 0 || off + fl > size || (fl % 8 && off + fl != size))
            goto bad;
        memcpy(e->buf + off, p + 5, fl);
        for (size_t u = off / 8; u < (off + fl + 7) / 8; u++)
            e->have[u / 8] |= (uint8_t)(1u << (u % 8));
    }
    if (!e->first_len)
        return 0;
    size_t start = e->hdr_u + (size_t)(e->first_len - e->hdr_c);
    for (size_t u = start / 8; u < ((size_t)size + 7) / 8; u++)
        if (!(e->have[u / 8] & (1u << (u % 8))))
            return 0;
    size_t n = e->first_len;
    memcpy(out, e->first, n);
    memcpy(out + n, e->buf + start, size - start);
    n += size - start;
    free(e);
    m->reass[k] = NULL;
    s->reassembled++;
    return (int)n;
bad:
    s->reass_bad++;
    free(e);
    m->reass[k] = NULL;
    return -1;
}

/* MAC duplicate detection: a unicast frame whose ACK was lost comes
 * again with the same sequence number; it is acknowledged again but not
 * passed up twice. */
static bool dup_seen(const sim_mote_t *m, uint32_t src, uint8_t dsn)
{
    for (unsigned k = 0; k < SIM_DUP_HIST; k++)
        if (m->dup_src[k] == src && m->dup_dsn[k] == dsn)
            return true;
    return false;
}

static void dup_record(sim_mote_t *m, uint32_t src, uint8_t dsn)
{
    m->dup_src[m->dup_pos] = src;
    m->dup_dsn[m->dup_pos] = dsn;
    m->dup_pos = (uint8_t)((m->dup_pos + 1) % SIM_DUP_HIST);
}

static bool is_cand(const sim_mote_t *m, uint32_t j)
{
    for (unsigned k = 0; k < m->ncand; k++)
        if (m->cand[k].idx == (int32_t)j)
            return true;
    return false;
}

/* RFC 9031 section 8.4.2: "The joined node MUST silently drop any
 * link-layer frames originating from the pledge identifiers enclosed in
 * the blacklist parameter."  A mote acting as JP checks the frame's
 * 802.15.4 extended source address (the EUI-64, most significant byte
 * first like the pledge identifier) before anything else; frames with a
 * short or no source address carry no identifier to match. */
static bool src_blacklisted(const sim_mote_t *m, const sim_tx_t *tx)
{
    cj_wpan_frame_t f;
    if (cj_wpan_frame_decode(tx->frame, tx->len, CJ_WPAN_DEC_FCS, &f) != CJ_OK ||
        f.src_mode != CJ_WPAN_ADDR_EXT)
        return false;
    return cj_proxy_blacklisted(m->jp, f.src.ext, sizeof f.src.ext);
}

/* A frame of tx arrived intact at mote r.  Returns true when the MAC
 * accepted it (a unicast frame is then acknowledged). */
bool sim_rx_frame(sim_t *s, uint32_t r, sim_tx_t *tx)
{
    sim_mote_t *m = &s->m[r];
    const sim_pkt_t *pkt = tx->pkt;
    cj_wpan_frame_t f, pf;
    sim_rx_t rx;
    const uint8_t *pl;
    size_t pll;
    bool unicast = pkt->nexthop == (int32_t)r;
    uint8_t dsn = tx->frame[2];

    m->rx_frames++;
    if (m->jp && m->jp->blacklist_count && src_blacklisted(m, tx)) {
        m->bl_dropped++;
        s->bl_drops++;
        return false; /* silently: no ACK, nothing else looked at */
    }
    if (pkt->kind == PK_EB) {
        rx_eb(s, r, tx);
        return false;
    }
    if (cj_wpan_frame_decode(tx->frame, tx->len, CJ_WPAN_DEC_FCS, &f) != CJ_OK)
        return false;
    bool secured = f.security;
    /* RFC 9031 section 5.1: a joining pledge takes a frame its JP
     * authenticated under a key the pledge does not hold yet as if it
     * were unsecured (a promiscuous read of a MIC-only frame); the frame
     * that completes the Join Response is verified once the keys are in
     * (join_frame_verified).  Its own frames, and the ACKs of these, are
     * unsecured, which the JP accepts from a pledge (secExempt). */
    bool promisc = secured && m->state == ST_JOINING && unicast && !f.encrypted &&
                   f.type == CJ_WPAN_TYPE_DATA && is_cand(m, tx->mote);
    if (promisc) {
        secured = false;
        pl = f.payload;
        pll = f.payload_len;
    } else if (secured) {
        if (m->state != ST_JOINED) {
            m->k2_rejected_unjoined++; /* no K2: cannot even verify */
            return false;
        }
        const cj_pledge_key_t *k = cj_pledge_rx_key(m->pl, f.sec.key_index);
        if (!key_for(k, CJ_WPAN_TYPE_DATA, NULL))
            return false;
        const sim_verify_t *v = verify_shared(s, tx, k->key);
        if (v->result < 0)
            return false;
        if (cj_wpan_frame_decode(v->plain, (size_t)v->result, CJ_WPAN_DEC_UNPROTECTED, &pf) != CJ_OK)
            return false;
        report_rx_used(s, r, k->key_id);
        pl = pf.payload;
        pll = pf.payload_len;
    } else {
        pl = f.payload;
        pll = f.payload_len;
    }
    if (pll < 5)
        return false;
    uint8_t disp = pl[0] & 0xf8;
    bool frag = disp == SIM_FRAG1 || disp == SIM_FRAGN;
    if (!secured) {
        /* Unsecured: only join traffic between a pledge and its JP, to
         * the CoJP port, between link-local addresses (RFC 9031 sections
         * 5 and 6.1); a FRAG1 is judged by its headers, a FRAGN only
         * continues a datagram whose FRAG1 was accepted.  Anything else
         * is dropped without an ACK. */
        if (!unicast || !((m->state == ST_JOINED && m->jp && !f.security) || promisc))
            return false;
        if (disp == SIM_FRAGN) {
            if (reass_find(m, tx->mote, pl) < 0)
                return false;
        } else if (sim_lowpan_parse(s, frag ? pl + 4 : pl, frag ? pll - 4 : pll, (int32_t)tx->mote,
                                    pkt->nexthop, &rx) != 0 ||
                   rx.kind != PK_JOIN || !rx.link_local || rx.dport != SIM_UDP_PORT) {
            return false;
        }
    }
    /* duplicates are recognised only among frames that passed the
     * security rules: a refused frame is never acknowledged */
    if (unicast && dup_seen(m, tx->mote, dsn)) {
        m->mac_dups++;
        s->mac_dups++;
        return true;
    }
    if (unicast)
        dup_record(m, tx->mote, dsn);
    uint8_t dg[SIM_DGRAM_MAX];
    if (frag) {
        int n = reass_input(s, r, tx->mote, secured, pl, pll, dg);
        if (n <= 0)
            return true; /* the MAC took the frame; 6LoWPAN keeps or drops it */
        pl = dg;
        pll = (size_t)n;
    }
    if (sim_lowpan_parse(s, pl, pll, (int32_t)tx->mote, pkt->nexthop, &rx) != 0)
        return !frag ? false : true;
    if (secured) {
        if (rx.link_local && rx.kind == PK_JOIN)
            return true; /* JP-to-pledge join traffic to a mote that has
                            joined meanwhile: dropped */
        if (m->state != ST_JOINED)
            m->k2_accepted_unjoined++;
        rx_net(s, r, tx->mote, &rx);
        return true;
    }
    if (rx.kind != PK_JOIN || !rx.link_local || rx.dport != SIM_UDP_PORT)
        return true;
    uint8_t msg[SIM_DGRAM_MAX];
    memcpy(msg, rx.data, rx.len);
    cj_addr_t from = addr_of(s, tx->mote);
    if (m->state == ST_JOINED && m->jp)
        deliver_local(s, r, E_PROXY, &from, msg, rx.len, 0);
    else if (promisc) {
        m->jr_tx = tx;
        deliver_local(s, r, E_PLEDGE, &from, msg, rx.len, 0);
        m->jr_tx = NULL;
    }
    return true;
}

/* The receiver of an accepted unicast frame answers with an Enhanced
 * ACK, secured like the frame; the sender verifies it. */
static bool ack(sim_t *s, sim_tx_t *tx, uint32_t r, float pdr)
{
    sim_mote_t *rm = &s->m[r], *tm = &s->m[tx->mote];
    uint8_t a[SIM_PHY_MAX];
    const cj_pledge_key_t *k = NULL;
    uint8_t level = 0;
    cj_wpan_frame_t f;
    bool secured = tx->pkt->kind != PK_JOIN;
    if (secured) {
        k = cj_pledge_tx_key(rm->pl, CJ_PLEDGE_K2);
        if (!key_for(k, CJ_WPAN_TYPE_ACK, &level))
            return false;
    }
    uint8_t seq = tx->frame[2];
    int len = sim_ack_build(s, r, tx->mote, seq, s->asn, k ? k->key : NULL, k ? k->key_id : 0,
                            level, a, sizeof a);
    if (len < 0)
        return false;
    rm->tx_acks++;
    rm->tx_bytes += (uint32_t)len;
    s->acks++;
    s->frames++;
    s->bytes += (uint64_t)len;
    if ((uint32_t)len > s->max_frame)
        s->max_frame = (uint32_t)len;
    if (s->pcap)
        sim_pcap_frame(s, s->asn, 1, tx->ch, a, (size_t)len);
    if (rnd01(s) >= pdr)
        return false;
    if (!secured)
        return true;
    if (cj_wpan_frame_decode(a, (size_t)len, CJ_WPAN_DEC_FCS, &f) != CJ_OK)
        return false;
    const cj_pledge_key_t *tk = tm->pl ? cj_pledge_rx_key(tm->pl, f.sec.key_index) : NULL;
    if (!tk)
        return false;
    s->mic_checks++;
    if (cj_wpan_unprotect(a, (size_t)len - SIM_FCS_LEN, tk->key, rm->eui, s->asn) < 0) {
        s->mic_fail++;
        return false;
    }
    return true;
}

bool sim_build_tx(sim_t *s, sim_tx_t *tx)
{
    sim_mote_t *m = &s->m[tx->mote];
    sim_pkt_t *p = tx->pkt;
    const cj_pledge_key_t *k = NULL;
    uint8_t level = 0;
    uint16_t slot, ch;
    if (p->kind == PK_EB) {
        k = cj_pledge_tx_key(m->pl, CJ_PLEDGE_K1);
        if (!key_for(k, CJ_WPAN_TYPE_BEACON, &level))
            return false;
    } else if (p->kind != PK_JOIN) {
        k = cj_pledge_tx_key(m->pl, CJ_PLEDGE_K2);
        if (!key_for(k, CJ_WPAN_TYPE_DATA, &level))
            return false;
    } else if (m->state == ST_JOINED) {
        /* RFC 9031 section 5.1: what a JP sends a pledge during joining
         * is authenticated with the key in use in the network.  The
         * pledge holds no key yet and must read the frame before it can
         * verify it, so the level is the MIC-only one of the key's MIC
         * length (levels 5-7 -> 1-3); the pledge's own frames stay
         * unsecured. */
        k = cj_pledge_tx_key(m->pl, CJ_PLEDGE_K2);
        if (!key_for(k, CJ_WPAN_TYPE_DATA, &level))
            return false;
        level &= 3u;
    }
    if (!p->dsn_set) {
        p->dsn = ++m->dsn;
        p->dsn_set = true;
    }
    if (!p->tag_set) {
        p->tag = ++m->frag_tag;
        p->tag_set = true;
    }
    int len = sim_frame_build(s, tx->mote, p, s->asn, k ? k->key : NULL, k ? k->key_id : 0, level,
                              tx->frame, sizeof tx->frame, &tx->next_off);
    if (len < 0)
        return false;
    tx->len = (uint16_t)len;
    if (k && s->pcap)
        sim_key_seen(s, k->key_id, k->key);
    if ((tx->next_off || p->frag_off) && p->retries == 0) {
        s->frag_frames++;
        if (!p->frag_off)
            s->frag_dgrams++;
    }
    cell_of(s, p, &slot, &ch);
    tx->ch = sim_channel(s->asn, ch);
    tx->acked = false;
    tx->nverify = 0;
    return true;
}

static void tx_done(sim_t *s, sim_tx_t *tx)
{
    sim_mote_t *m = &s->m[tx->mote];
    sim_pkt_t *p = tx->pkt;
    if (p->nexthop < 0 || tx->acked) {
        if (p->nexthop >= 0 && p->nexthop == m->parent)
            m->parent_fail = 0;
        m->be = sim_csma_be(&s->cfg, m->be, true);
        if (tx->acked && tx->next_off) { /* next fragment */
            p->frag_off = tx->next_off;
            p->retries = 0;
            p->dsn_set = false;
            p->not_before = 0;
            update_tx_asn(s, m);
            return;
        }
        dequeue(s, m, p);
        return;
    }
    /* TSCH CSMA-CA in a shared cell (802.15.4-2015 6.2.5.3): BE grows,
     * a random number of cell occurrences is skipped */
    p->retries++;
    m->be = sim_csma_be(&s->cfg, m->be, false);
    {
        uint16_t slot, ch;
        cell_of(s, p, &slot, &ch);
        p->not_before = next_occurrence(s, s->asn + 1, slot, sim_csma_backoff(s, m->be));
    }
    if (p->retries > s->cfg.max_retries) {
        int32_t to = p->nexthop;
        m->mac_drops++;
        s->mac_drops++;
        m->be = sim_csma_be(&s->cfg, m->be, true); /* frame done: fresh BE */
        dequeue(s, m, p);
        if (to == m->parent && ++m->parent_fail >= PARENT_FAIL_LIMIT) {
            sim_nb_t *nb = find_nb(s, tx->mote, (uint32_t)to);
            if (nb)
                nb->rank = SIM_INFINITE_RANK;
            m->parent_fail = 0;
            select_parent(s, tx->mote);
        }
        return;
    }
    m->mac_retx++; /* the frame goes out again: a retransmission */
    update_tx_asn(s, m);
}

void sim_resolve_slot(sim_t *s, size_t ntx)
{
    size_t ntouched = 0;
    for (size_t t = 0; t < ntx; t++)
        s->m[s->txs[t].mote].stamp = s->asn | (1ULL << 63); /* transmitting */
    for (size_t t = 0; t < ntx; t++) {
        sim_tx_t *tx = &s->txs[t];
        sim_mote_t *m = &s->m[tx->mote];
        for (uint32_t k = 0; k < m->nb_cnt; k++) {
            const sim_nb_t *nb = &s->nb[m->nb_off + k];
            sim_mote_t *r = &s->m[nb->idx];
            if (r->stamp == (s->asn | (1ULL << 63)))
                continue; /* half duplex */
            if (!listening(s, r, s->asn, tx->ch))
                continue;
            if (r->stamp != s->asn) {
                r->stamp = s->asn;
                r->rx_hits = 1;
                r->rx_who = (uint32_t)t;
                s->touched[ntouched++] = nb->idx;
            } else {
                r->rx_hits++;
            }
        }
    }
    for (size_t u = 0; u < ntouched; u++) {
        uint32_t ri = s->touched[u];
        sim_mote_t *r = &s->m[ri];
        if (r->rx_hits > 1) {
            r->collisions++;
            s->collisions++;
            continue;
        }
        sim_tx_t *tx = &s->txs[r->rx_who];
        const sim_nb_t *nb = find_nb(s, tx->mote, ri);
        if (!nb || rnd01(s) >= nb->pdr)
            continue;
        /* address filtering: unicast frames for another mote are dropped
         * before any parsing */
        if (tx->pkt->nexthop >= 0 && tx->pkt->nexthop != (int32_t)ri)
            continue;
        bool ok = sim_rx_frame(s, ri, tx);
        if (ok && tx->pkt->nexthop == (int32_t)ri)
            tx->acked = ack(s, tx, ri, nb->pdr);
        resched(s, ri);
    }
    for (size_t t = 0; t < ntx; t++) {
        tx_done(s, &s->txs[t]);
        resched(s, s->txs[t].mote);
    }
}

/* Timers of mote i at the current slot. */
static void tick(sim_t *s, uint32_t i)
{
    sim_mote_t *m = &s->m[i];
    uint64_t now = s->now;
    if (m->is_root) {
        if (s->cfg.rekey_at_ms >= 0 && !s->rekeyed && now >= (uint64_t)s->cfg.rekey_at_ms) {
            cj_jrc_key_t nk[2];
            memset(nk, 0, sizeof nk);
            nk[0].key_id = 3;
            nk[0].key_usage = CJ_COJP_KEY_USAGE_K1_MIC32;
            nk[1].key_id = 4;
            nk[1].key_usage = CJ_COJP_KEY_USAGE_K2_ENC_MIC32;
            for (int b = 0; b < 16; b++) {
                nk[0].key[b] = (uint8_t)rnd(s);
                nk[1].key[b] = (uint8_t)rnd(s);
            }
            s->rekey_campaign = cj_jrc_rekey(s->jrc, now, nk, 2);
            s->new_k2_id = 4;
            s->rekeyed = true;
        }
        jrc_poll(s, 0);
    }
    if (m->pl && (m->state == ST_JOINING || m->state == ST_JOINED))
        pledge_poll(s, i, 0);
    if (m->state == ST_COLLECT && now >= m->t_collect_end)
        start_join(s, i);
    if (m->state == ST_WAIT && now >= m->t_restart) {
        m->state = ST_SCAN;
        m->ncand = 0;
    }
    if (has_rank(m)) {
        if (now >= m->next_eb) {
            enqueue(s, i, sim_pkt_new(PK_EB, -1, (int32_t)i, -1, NULL, 0));
            /* EB period jittered by +-25 % */
            uint64_t p = s->cfg.eb_period_ms;
            m->next_eb = now + p * 3 / 4 + rnd_range(s, p / 2 + 1);
        }
        for (int guard = 0; guard < 64; guard++) {
            if (!m->tr_fired && now >= m->tr_t) {
                m->tr_fired = true;
                if (m->tr_c < TRICKLE_K)
                    enqueue(s, i, sim_pkt_new(PK_DIO, -1, (int32_t)i, -1, NULL, 0));
            }
            if (m->tr_fired && now >= m->tr_end)
                trickle_next(s, m);
            else
                break;
        }
    }
    if (m->state == ST_JOINED && !m->is_root && m->parent >= 0) {
        if (now >= m->dao_refresh) {
            m->path_seq++;
            adv_add(m, i);
            dao_soon(s, m);
            m->dao_refresh = now + DAO_REFRESH_MS * 9 / 10 + rnd_range(s, DAO_REFRESH_MS / 5);
        }
        if (now >= m->dao_timer)
            dao_fire(s, i);
    }
    if (m->state == ST_JOINED && !m->is_root && m->parent < 0 && now >= m->next_dis) {
        enqueue(s, i, sim_pkt_new(PK_DIS, -1, (int32_t)i, -1, NULL, 0));
        m->next_dis = now + DIS_PERIOD_MS / 2 + rnd_range(s, DIS_PERIOD_MS);
    }
}

/* ---- topology ---------------------------------------------------------- */

double sim_pdr(const sim_cfg_t *c, double d)
{
    if (d <= c->r1)
        return 1.0;
    if (d >= c->r2)
        return 0.0;
    return (c->r2 - d) / (c->r2 - c->r1);
}

static void place(sim_t *s)
{
    uint32_t n = s->n;
    if (s->cfg.topology == 1) { /* line, root at one end */
        for (uint32_t i = 0; i < n; i++) {
            s->m[i].x = (float)i;
            s->m[i].y = 0;
        }
        return;
    }
    if (s->cfg.topology == 0) { /* grid of unit spacing, root in the middle */
        uint32_t w = (uint32_t)ceil(sqrt((double)n));
        uint32_t rows = (n + w - 1) / w;
        uint32_t centre = (rows / 2) * w + w / 2;
        if (centre >= n)
            centre = 0;
        for (uint32_t k = 0; k < n; k++) {
            /* position k goes to mote k, except that the centre and
             * position 0 swap so mote 0 (the root) sits in the middle */
            uint32_t pos = k == 0 ? centre : k == centre ? 0 : k;
            s->m[k].x = (float)(pos % w);
            s->m[k].y = (float)(pos / w);
        }
        return;
    }
    /* random geometric: uniform in a square sized for ~10 neighbours in
     * range r2, root at the centre; motes out of reach of everybody are
     * moved until they hear someone (so the graph is usually connected) */
    double side = sqrt((double)n * M_PI * s->cfg.r2 * s->cfg.r2 / 10.0);
    if (side < s->cfg.r1)
        side = s->cfg.r1;
    s->m[0].x = (float)(side / 2);
    s->m[0].y = (float)(side / 2);
    for (uint32_t i = 1; i < n; i++) {
        for (int tries = 0; tries < 100; tries++) {
            s->m[i].x = (float)(rnd01(s) * side);
            s->m[i].y = (float)(rnd01(s) * side);
            /* accept when some earlier mote is within a good link */
            bool ok = false;
            for (uint32_t j = 0; j < i && !ok; j++) {
                double dx = s->m[i].x - s->m[j].x, dy = s->m[i].y - s->m[j].y;
                ok = sqrt(dx * dx + dy * dy) < (s->cfg.r1 + s->cfg.r2) / 2;
            }
            if (ok)
                break;
        }
    }
}

int sim_relink(sim_t *s)
{
    free(s->nb);
    s->nb = NULL;
    uint32_t n = s->n;
    /* bucket grid of cell size r2 */
    double cell = s->cfg.r2;
    float minx = s->m[0].x, miny = s->m[0].y, maxx = minx, maxy = miny;
    for (uint32_t i = 0; i < n; i++) {
        if (s->m[i].x < minx) minx = s->m[i].x;
        if (s->m[i].y < miny) miny = s->m[i].y;
        if (s->m[i].x > maxx) maxx = s->m[i].x;
        if (s->m[i].y > maxy) maxy = s->m[i].y;
    }
    uint32_t gw = (uint32_t)((maxx - minx) / cell) + 1, gh = (uint32_t)((maxy - miny) / cell) + 1;
    uint32_t *head = malloc((size_t)gw * gh * sizeof *head), *next = malloc(n * sizeof *next);
    for (size_t c = 0; c < (size_t)gw * gh; c++)
        head[c] = UINT32_MAX;
    for (uint32_t i = n; i-- > 0;) {
        uint32_t cx = (uint32_t)((s->m[i].x - minx) / cell), cy = (uint32_t)((s->m[i].y - miny) / cell);
        next[i] = head[(size_t)cy * gw + cx];
        head[(size_t)cy * gw + cx] = i;
    }
    size_t cap = (size_t)n * 8, cnt = 0;
    s->nb = malloc(cap * sizeof *s->nb);
    for (uint32_t i = 0; i < n; i++) {
        s->m[i].nb_off = (uint32_t)cnt;
        int cx = (int)((s->m[i].x - minx) / cell), cy = (int)((s->m[i].y - miny) / cell);
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int x = cx + dx, y = cy + dy;
                if (x < 0 || y < 0 || x >= (int)gw || y >= (int)gh)
                    continue;
                for (uint32_t j = head[(size_t)y * gw + (size_t)x]; j != UINT32_MAX; j = next[j]) {
                    if (j == i)
                        continue;
                    double ddx = s->m[i].x - s->m[j].x, ddy = s->m[i].y - s->m[j].y;
                    double pdr = sim_pdr(&s->cfg, sqrt(ddx * ddx + ddy * ddy));
                    if (pdr <= 0.0)
                        continue;
                    if (cnt == cap) {
                        cap *= 2;
                        s->nb = realloc(s->nb, cap * sizeof *s->nb);
                    }
                    s->nb[cnt++] = (sim_nb_t){j, (float)pdr, SIM_INFINITE_RANK};
                }
            }
        s->m[i].nb_cnt = (uint32_t)(cnt - s->m[i].nb_off);
        /* deterministic order: by index */
        sim_nb_t *a = &s->nb[s->m[i].nb_off];
        for (uint32_t x = 1; x < s->m[i].nb_cnt; x++)
            for (uint32_t y = x; y > 0 && a[y].idx < a[y - 1].idx; y--) {
                sim_nb_t t = a[y];
                a[y] = a[y - 1];
                a[y - 1] = t;
            }
    }
    s->nb_total = cnt;
    free(head);
    free(next);
    /* hop counts: breadth-first from the root over every link in range
     * (PDR > 0); no join exchange can take fewer radio hops */
    uint32_t *fifo = malloc(n * sizeof *fifo), qh = 0, qt = 0;
    for (uint32_t i = 0; i < n; i++)
        s->m[i].hops = UINT16_MAX;
    s->m[0].hops = 0;
    fifo[qt++] = 0;
    while (qh < qt) {
        const sim_mote_t *m = &s->m[fifo[qh++]];
        for (uint32_t k = 0; k < m->nb_cnt; k++) {
            sim_mote_t *o = &s->m[s->nb[m->nb_off + k].idx];
            if (o->hops == UINT16_MAX) {
                o->hops = m->hops + 1 < UINT16_MAX ? (uint16_t)(m->hops + 1) : UINT16_MAX - 1;
                fifo[qt++] = (uint32_t)(o - s->m);
            }
        }
    }
    for (uint32_t i = 0; i < n; i++)
        if (s->m[i].hops == UINT16_MAX)
            s->m[i].hops = 0;
    free(fifo);
    return 0;
}

/* ---- set-up and main loop --------------------------------------------- */

int sim_init(sim_t *s, const sim_cfg_t *cfg)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->n = cfg->nodes;
    /* The generator walks a Weyl sequence (state += golden gamma), so
     * seeds must not be mere multiples of the gamma: seed k would then
     * replay seed 1's stream shifted by k-1 draws.  The start point is
     * the seed passed through the output mix. */
    s->rng = cfg->seed ^ 0x6a09e667f3bcc909ULL;
    s->rng = rnd(s);
    s->netid[0] = 0xca;
    s->netid[1] = 0xfe;
    s->m = calloc(s->n, sizeof *s->m);
    s->due = malloc(s->n * sizeof *s->due);
    s->txs = malloc(s->n * sizeof *s->txs);
    s->touched = malloc(s->n * sizeof *s->touched);
    s->end_asn = (uint64_t)cfg->duration_s * 1000 / SIM_SLOT_MS;
    place(s);
    sim_relink(s);

    s->entries = calloc(s->n, sizeof *s->entries);
    size_t nslots = s->n < 4096 ? s->n : 4096;
    s->slots = calloc(nslots, sizeof *s->slots);
    s->jrc = calloc(1, sizeof *s->jrc);
    cj_jrc_memstore_init(&s->ms, s->entries, s->n);
    cj_mem_platform_init(&s->jrc_pf);
    memset(&s->jcfg, 0, sizeof s->jcfg);
    s->jcfg.network_id = s->netid;
    s->jcfg.network_id_len = sizeof s->netid;
    s->jcfg.keys[0].key_id = 1;
    s->jcfg.keys[0].key_usage = CJ_COJP_KEY_USAGE_K1_MIC32;
    s->jcfg.keys[1].key_id = 2;
    s->jcfg.keys[1].key_usage = CJ_COJP_KEY_USAGE_K2_ENC_MIC32;
    for (int b = 0; b < 16; b++) {
        s->jcfg.keys[0].key[b] = (uint8_t)rnd(s);
        s->jcfg.keys[1].key[b] = (uint8_t)rnd(s);
    }
    s->jcfg.key_count = 2;
    s->jcfg.join_rate = UINT32_MAX;
    s->jcfg.timing.ack_timeout_ms = UPDATE_ACK_TIMEOUT_MS;
    s->jcfg.timing.ack_random_factor_pct = 150;
    s->jcfg.timing.max_retransmit = UPDATE_MAX_RETRANSMIT;
    s->jcfg.slots = s->slots;
    s->jcfg.slot_count = nslots;
    if (cfg->nblacklist > CJ_COJP_MAX_BLACKLIST)
        return -1;
    for (uint32_t k = 0; k < cfg->nblacklist; k++) {
        if (cfg->blacklist[k] >= s->n)
            return -1;
        eui_of(cfg->blacklist[k], s->bl[k]);
        s->bl_ids[k] = s->bl[k];
        s->bl_lens[k] = 8;
    }
    s->jcfg.blacklist = s->bl_ids;
    s->jcfg.blacklist_lens = s->bl_lens;
    s->jcfg.blacklist_count = cfg->nblacklist;
    if (cj_jrc_init(s->jrc, &s->jcfg, &s->ms.store, &s->jrc_pf.port) != CJ_OK)
        return -1;

    for (uint32_t i = 0; i < s->n; i++) {
        sim_mote_t *m = &s->m[i];
        uint8_t psk[16];
        eui_of(i, m->eui);
        for (int b = 0; b < 16; b++)
            psk[b] = (uint8_t)rnd(s);
        m->is_root = i == 0;
        m->state = ST_SCAN;
        m->scan_ch = sim_channel(rnd_range(s, SIM_NUM_CH), 0);
        m->auto_slot = (uint16_t)(1 + sim_sax(m->eui, (uint16_t)(cfg->slotframe - 1)));
        m->auto_ch = sim_sax(m->eui, SIM_NUM_CH);
        m->t_first_eb = m->t_sync = m->t_join_req = m->t_joined = m->t_parent = SIM_NEVER;
        m->parent = -1;
        m->rank = SIM_INFINITE_RANK;
        m->be = cfg->min_be;
        m->tx_asn = SIM_NEVER;
        m->wake = SIM_NEVER;
        m->stamp = SIM_NEVER;
        m->dsn = (uint8_t)rnd(s);
        m->dao_timer = m->dao_refresh = SIM_NEVER;
        for (unsigned k = 0; k < SIM_DUP_HIST; k++)
            m->dup_src[k] = UINT32_MAX;
        if (cj_jrc_memstore_add(&s->ms, m->eui, 8, psk,
                                m->is_root ? CJ_JRC_ALLOW_6LBR : CJ_JRC_ALLOW_NODE) != CJ_OK)
            return -1;
        cj_pledge_cfg_t pc;
        memset(&pc, 0, sizeof pc);
        pc.pledge_id = m->eui;
        pc.pledge_id_len = 8;
        memcpy(pc.psk, psk, 16);
        pc.role = m->is_root ? CJ_COJP_ROLE_6LBR : CJ_COJP_ROLE_6LN;
        m->pl = calloc(1, sizeof *m->pl);
        cj_mem_platform_init(&m->pf);
        if (cj_pledge_init(m->pl, &pc, &m->pf.port) != CJ_OK)
            return -1;
    }
    /* The 6LBR gets its keys like every node, from the JRC it hosts,
     * over a local exchange that never touches the air. */
    sim_mote_t *root = &s->m[0];
    cj_addr_t j = addr_jrc();
    cj_pledge_add_jp(root->pl, &j, s->netid, sizeof s->netid);
    cj_pledge_start(root->pl, 0);
    root->state = ST_JOINING;
    root->join_attempts = 1;
    root->t_first_eb = root->t_sync = 0;
    pledge_poll(s, 0, 0);
    for (uint32_t i = 0; i < s->n; i++)
        resched(s, i);
    return 0;
}

void sim_run(sim_t *s)
{
    uint64_t last_progress = 0;
    while (s->hn) {
        sim_heap_ent_t e = s->heap[0];
        if (e.asn >= s->end_asn)
            break;
        s->asn = e.asn;
        s->now = e.asn * SIM_SLOT_MS;
        size_t ndue = 0;
        while (s->hn && s->heap[0].asn == s->asn) {
            e = heap_pop(s);
            sim_mote_t *m = &s->m[e.mote];
            if (e.gen != m->gen || m->wake != s->asn)
                continue;
            m->wake = SIM_NEVER; /* consumed; resched() sets the next */
            s->due[ndue++] = e.mote;
        }
        if (!ndue)
            continue;
        s->slots_processed++;
        for (size_t k = 0; k < ndue; k++)
            tick(s, s->due[k]);
        size_t ntx = 0;
        for (size_t k = 0; k < ndue; k++) {
            uint32_t i = s->due[k];
            sim_mote_t *m = &s->m[i];
            if (m->tx_asn != s->asn || !m->qn)
                continue;
            int pick = pick_tx(s, m);
            if (pick < 0) {
                update_tx_asn(s, m);
                continue;
            }
            sim_tx_t *tx = &s->txs[ntx];
            tx->mote = i;
            tx->pkt = m->q[(m->qh + (unsigned)pick) % SIM_QUEUE_MAX];
            if (!sim_build_tx(s, tx)) {
                dequeue(s, m, tx->pkt);
                continue;
            }
            switch (tx->pkt->kind) {
            case PK_EB: s->eb_tx++; break;
            case PK_DIO: s->dio_tx++; break;
            case PK_DIS: s->dis_tx++; break;
            case PK_DAO: s->dao_tx++; break;
            case PK_DAO_ACK: s->dao_ack_tx++; break;
            case PK_JOIN: s->join_tx++; break;
            default: s->udp_tx++; break;
            }
            m->tx_frames++;
            m->tx_bytes += tx->len;
            s->frames++;
            s->bytes += tx->len;
            if (tx->len > s->max_frame)
                s->max_frame = tx->len;
            if (s->pcap)
                sim_pcap_frame(s, s->asn, 0, tx->ch, tx->frame, tx->len);
            if (s->trace)
                fprintf(s->trace, "%llu,%u,%s,%d,%u,%u\n", (unsigned long long)s->asn, i,
                        sim_kind_name(tx->pkt->kind), tx->pkt->nexthop, tx->ch, tx->len);
            ntx++;
        }
        sim_resolve_slot(s, ntx);
        for (size_t k = 0; k < ndue; k++)
            resched(s, s->due[k]);
        if (s->cfg.progress && s->asn - last_progress >= s->end_asn / 100 + 1) {
            last_progress = s->asn;
            size_t joined = 0;
            for (uint32_t i = 0; i < s->n; i++)
                joined += s->m[i].state == ST_JOINED;
            unsigned pct = (unsigned)(s->asn * 100 / s->end_asn);
            char bar[41];
            for (unsigned b = 0; b < 40; b++)
                bar[b] = b < pct * 40 / 100 ? '#' : '.';
            bar[40] = 0;
            fprintf(stderr, "\r[%s] %3u%%  t=%6.0f s  joined %zu/%u", bar, pct,
                    (double)s->now / 1000, joined, s->n);
            fflush(stderr);
        }
    }
    s->asn = s->end_asn;
    s->now = s->end_asn * SIM_SLOT_MS;
    if (s->cfg.progress)
        fprintf(stderr, "\r%70s\r", "");
}

void sim_free(sim_t *s)
{
    for (uint32_t i = 0; i < s->n; i++) {
        sim_mote_t *m = &s->m[i];
        while (m->qn) {
            free(m->q[m->qh]);
            m->qh = (uint8_t)((m->qh + 1) % SIM_QUEUE_MAX);
            m->qn--;
        }
        free(m->pl);
        free(m->jp);
        free(m->adv);
        for (unsigned k = 0; k < SIM_REASS_SLOTS; k++)
            free(m->reass[k]);
    }
    free(s->m);
    free(s->nb);
    free(s->due);
    free(s->txs);
    free(s->touched);
    free(s->heap);
    free(s->routes);
    free(s->entries);
    free(s->slots);
    free(s->jrc);
}
