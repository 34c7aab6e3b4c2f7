/*
 * test_sim.c - the model pieces of `cojp sim` (src/sim/), tested on the
 * simulator's internals: TSCH CSMA-CA backoff, the PDR loss model,
 * collisions, the link-layer security acceptance rules and the lower
 * bound of the join time.  The networks are built with sim_init() and
 * frames are put on the air by hand with sim_build_tx() /
 * sim_resolve_slot(), or handed to sim_rx_frame() directly.
 */
#include <stdlib.h>
#include <string.h>

#include "cojp/wpan.h"
#include "sim/sim.h"
#include "test.h"

static void cfg_default(sim_cfg_t *c, uint32_t nodes, int topology)
{
    memset(c, 0, sizeof *c);
    c->nodes = nodes;
    c->topology = topology;
    c->seed = 7;
    c->duration_s = 600;
    c->eb_period_ms = 16000;
    c->slotframe = 101;
    c->autonomous = true;
    c->r1 = 1.0;
    c->r2 = 2.0;
    c->min_pdr = 0.5;
    c->max_retries = 3;
    c->min_be = 1;
    c->max_be = 5;
    c->join_wait_ms = 3000;
    c->rekey_at_ms = -1;
}

static sim_t *sim_new(const sim_cfg_t *c)
{
    sim_t *s = calloc(1, sizeof *s);
    if (!s || sim_init(s, c) != 0) {
        if (s)
            sim_free(s);
        free(s);
        return NULL;
    }
    return s;
}

static void sim_del(sim_t *s)
{
    sim_free(s);
    free(s);
}

/* Move to a fresh slot after everything the run scheduled (so the
 * per-slot bookkeeping starts clean).  Minimal-cell slots when
 * minimal is set. */
static void next_slot(sim_t *s, bool minimal)
{
    s->asn++;
    if (minimal)
        s->asn += (s->cfg.slotframe - s->asn % s->cfg.slotframe) % s->cfg.slotframe;
    s->now = s->asn * SIM_SLOT_MS;
}

/* An unsecured frame of kind `kind` from mote `from` (to `to`, -1
 * broadcast) in s->txs[k], on channel ch. */
static sim_pkt_t *put_plain(sim_t *s, size_t k, uint32_t from, uint8_t kind, int32_t to,
                            uint8_t ch)
{
    static const uint8_t coap[] = {0x42, 0x02, 0x12, 0x34, 0xab, 0xcd, 0xb1, 'j'};
    sim_tx_t *tx = &s->txs[k];
    sim_pkt_t *p = sim_pkt_new(kind, to, (int32_t)from, to, coap, kind == PK_JOIN ? sizeof coap : 0);
    uint16_t next = 0;
    memset(tx, 0, sizeof *tx);
    tx->mote = from;
    tx->pkt = p;
    p->dsn = (uint8_t)(s->asn + k);
    p->dsn_set = true;
    int len = sim_frame_build(s, from, p, s->asn, NULL, 0, 0, tx->frame, sizeof tx->frame, &next);
    CHECK(len > 0);
    tx->len = (uint16_t)(len > 0 ? len : 0);
    tx->ch = ch;
    return p;
}

/* The frame the simulator itself would send (secured as the sender's
 * keys say) in s->txs[k]. */
static sim_pkt_t *put_real(sim_t *s, size_t k, uint32_t from, uint8_t kind, int32_t to)
{
    sim_tx_t *tx = &s->txs[k];
    sim_pkt_t *p = sim_pkt_new(kind, to, (int32_t)from, to, NULL, 0);
    memset(tx, 0, sizeof *tx);
    tx->mote = from;
    tx->pkt = p;
    CHECK(sim_build_tx(s, tx));
    return p;
}

/* Flip one bit of the MIC (the last 4 bytes before the FCS) and put a
 * correct FCS back, so only the MIC check can refuse the frame. */
static void flip_mic(sim_tx_t *tx)
{
    size_t mpdu = (size_t)tx->len - SIM_FCS_LEN;
    tx->frame[mpdu - 2] ^= 0x10;
    CHECK_EQ(cj_wpan_fcs_append(tx->frame, mpdu, sizeof tx->frame), tx->len);
    tx->nverify = 0;
}

/* ---- TSCH CSMA-CA ------------------------------------------------------ */

TEST(sim_csma_backoff_window)
{
    /* IEEE 802.15.4-2015 6.2.5.3: BE starts at macMinBe, grows by one
     * per failed transmission up to macMaxBe, and a success resets it;
     * the backoff is uniform over [0, 2^BE - 1] cell occurrences */
    sim_cfg_t c;
    cfg_default(&c, 2, 1);
    sim_t *s = sim_new(&c);
    CHECK(s != NULL);
    if (!s)
        return;
    uint8_t be = c.min_be;
    static const uint8_t grow[] = {2, 3, 4, 5, 5, 5};
    for (size_t k = 0; k < sizeof grow; k++) {
        be = sim_csma_be(&c, be, false);
        CHECK_EQ(be, grow[k]);
    }
    CHECK_EQ(sim_csma_be(&c, be, true), 1);
    CHECK_EQ(sim_csma_be(&c, 3, true), 1);
    for (uint8_t e = 1; e <= 5; e++) {
        unsigned lo = ~0u, hi = 0, n = 4000;
        double sum = 0;
        for (unsigned i = 0; i < n; i++) {
            unsigned b = sim_csma_backoff(s, e);
            lo = b < lo ? b : lo;
            hi = b > hi ? b : hi;
            sum += b;
        }
        unsigned w = (1u << e) - 1;
        CHECK_EQ(lo, 0);
        CHECK_EQ(hi, w); /* the whole window is used, nothing beyond */
        double mean = sum / n, want = w / 2.0;
        CHECK(mean > want * 0.9 - 0.05 && mean < want * 1.1 + 0.05);
    }
    sim_del(s);
}

/* ---- radio: PDR and collisions ----------------------------------------- */

TEST(sim_pdr_model_and_empirical_ratio)
{
    sim_cfg_t c;
    cfg_default(&c, 2, 1); /* line: two motes 1 apart */
    c.r1 = 0.5;
    c.r2 = 2.0;
    CHECK(sim_pdr(&c, 0.4) == 1.0);
    CHECK(sim_pdr(&c, 2.0) == 0.0);
    CHECK(sim_pdr(&c, 3.0) == 0.0);
    double want = sim_pdr(&c, 1.0);
    CHECK(want > 0.66 && want < 0.67); /* (2 - 1) / (2 - 0.5) */
    sim_t *s = sim_new(&c);
    CHECK(s != NULL);
    if (!s)
        return;
    /* mote 1 listens on its scan channel and ignores what it hears
     * (ST_WAIT); the root sends it a frame in each of n slots */
    sim_mote_t *r = &s->m[1];
    r->state = ST_WAIT;
    r->t_restart = SIM_NEVER;
    uint32_t before = r->rx_frames;
    const unsigned n = 20000;
    for (unsigned i = 0; i < n; i++) {
        next_slot(s, false);
        sim_pkt_t *p = put_plain(s, 0, 0, PK_EB, -1, r->scan_ch);
        sim_resolve_slot(s, 1);
        free(p);
    }
    double got = (double)(r->rx_frames - before) / n;
    /* binomial: sd = sqrt(p (1 - p) / n) = 0.0033 */
    CHECK(got > want - 0.015 && got < want + 0.015);
    CHECK_EQ(s->collisions, 0);
    sim_del(s);
}

TEST(sim_collision_same_channel_neither_other_channel_both)
{
    sim_cfg_t c;
    cfg_default(&c, 5, 1);
    sim_t *s = sim_new(&c);
    CHECK(s != NULL);
    if (!s)
        return;
    /* senders A (1) and B (2) 2 apart, out of each other's range;
     * receivers R1 (3) and R2 (4) between them, in range of both with
     * PDR 1; the root far away */
    static const float pos[5][2] = {{20, 20}, {0, 0}, {2, 0}, {1, 0}, {1, 0.3f}};
    for (int i = 0; i < 5; i++) {
        s->m[i].x = pos[i][0];
        s->m[i].y = pos[i][1];
    }
    s->cfg.r1 = 1.1;
    CHECK_EQ(sim_relink(s), 0);
    for (int i = 3; i <= 4; i++) {
        s->m[i].state = ST_WAIT;
        s->m[i].t_restart = SIM_NEVER;
    }
    uint8_t ca = 15, cb = 20;
    /* same slot, same channel: a collision at both receivers */
    s->m[3].scan_ch = ca;
    s->m[4].scan_ch = ca;
    next_slot(s, false);
    sim_pkt_t *pa = put_plain(s, 0, 1, PK_EB, -1, ca);
    sim_pkt_t *pb = put_plain(s, 1, 2, PK_EB, -1, ca);
    sim_resolve_slot(s, 2);
    CHECK_EQ(s->m[3].rx_frames, 0);
    CHECK_EQ(s->m[4].rx_frames, 0);
    CHECK_EQ(s->m[3].collisions, 1);
    CHECK_EQ(s->m[4].collisions, 1);
    free(pa);
    free(pb);
    /* same slot, different channels, each receiver on one of them:
     * both frames get through */
    s->m[4].scan_ch = cb;
    next_slot(s, false);
    pa = put_plain(s, 0, 1, PK_EB, -1, ca);
    pb = put_plain(s, 1, 2, PK_EB, -1, cb);
    sim_resolve_slot(s, 2);
    CHECK_EQ(s->m[3].rx_frames, 1);
    CHECK_EQ(s->m[4].rx_frames, 1);
    CHECK_EQ(s->m[3].collisions, 1);
    CHECK_EQ(s->m[4].collisions, 1);
    CHECK_EQ(s->collisions, 2);
    free(pa);
    free(pb);
    /* one sender alone: no collision (control) */
    next_slot(s, false);
    pa = put_plain(s, 0, 1, PK_EB, -1, ca);
    sim_resolve_slot(s, 1);
    CHECK_EQ(s->m[3].rx_frames, 2);
    CHECK_EQ(s->collisions, 2);
    free(pa);
    sim_del(s);
}

/* ---- security acceptance rules ----------------------------------------- */

/* A 3-mote line (root 0, motes 1 and 2), EBs every second, not run. */
static sim_t *line3(uint32_t duration_s)
{
    sim_cfg_t c;
    cfg_default(&c, 3, 1);
    c.eb_period_ms = 1000;
    c.duration_s = duration_s;
    sim_t *s = sim_new(&c);
    CHECK(s != NULL);
    return s;
}

/* A 3-mote line run until every mote joined. */
static sim_t *joined_line(void)
{
    sim_t *s = line3(900);
    if (!s)
        return NULL;
    sim_run(s);
    for (uint32_t i = 0; i < 3; i++)
        CHECK_EQ(s->m[i].state, ST_JOINED);
    if (s->m[1].state != ST_JOINED || s->m[2].state != ST_JOINED) {
        sim_del(s);
        return NULL;
    }
    return s;
}

TEST(sim_security_unsecured_only_join_traffic_jp_from_pledge)
{
    sim_cfg_t c;
    cfg_default(&c, 3, 1);
    sim_t *s = sim_new(&c);
    CHECK(s != NULL);
    if (!s)
        return;
    /* after sim_init the root has joined (JP); motes 1 and 2 scan */
    CHECK_EQ(s->m[0].state, ST_JOINED);
    CHECK(s->m[0].jp != NULL);
    CHECK_EQ(s->m[1].state, ST_SCAN);
    const cj_proxy_stats_t *jst = &s->m[0].jp->stats;
    unsigned long seen = jst->forwarded + jst->dropped_malformed;

    /* join traffic (link-local, to UDP 5683) from a pledge to the JP:
     * accepted and handed to the Join Proxy engine */
    next_slot(s, false);
    sim_pkt_t *p = put_plain(s, 0, 1, PK_JOIN, 0, 0);
    CHECK(sim_rx_frame(s, 0, &s->txs[0]));
    CHECK(jst->forwarded + jst->dropped_malformed > seen);
    free(p);

    /* the same frame to a mote that is no JP (not joined): refused */
    p = put_plain(s, 0, 1, PK_JOIN, 2, 0);
    CHECK(!sim_rx_frame(s, 2, &s->txs[0]));
    free(p);

    /* unsecured traffic that is not join traffic, even to the JP:
     * refused (RPL control must be secured with K2) */
    p = put_plain(s, 0, 1, PK_DIS, 0, 0); /* same DSN as the join frame */
    p->nexthop = 0;
    CHECK(!sim_rx_frame(s, 0, &s->txs[0]));
    free(p);

    /* a joining pledge takes join traffic from its JP candidates only,
     * and only as the JP must send it (RFC 9031 section 5.1):
     * authenticated with K2, at the MIC-only level of K2's MIC length
     * (usage 12, ENC-MIC-32: level 1), which the pledge reads without
     * the key; the pledge's own join frames are unsecured */
    sim_mote_t *pl = &s->m[1];
    cj_wpan_frame_t f;
    pl->state = ST_JOINING;
    pl->ncand = 1;
    pl->cand[0].idx = 0;
    p = put_plain(s, 0, 2, PK_JOIN, 1, 0); /* from mote 2: no candidate */
    CHECK(!sim_rx_frame(s, 1, &s->txs[0]));
    free(p);
    p = put_plain(s, 0, 0, PK_JOIN, 1, 0); /* from its JP, unsecured */
    CHECK(!sim_rx_frame(s, 1, &s->txs[0]));
    free(p);
    next_slot(s, false);
    p = put_real(s, 0, 0, PK_JOIN, 1); /* from its JP, as sent */
    CHECK_EQ(cj_wpan_frame_decode(s->txs[0].frame, s->txs[0].len, CJ_WPAN_DEC_FCS, &f), CJ_OK);
    CHECK(f.security);
    CHECK(!f.encrypted);
    CHECK_EQ(f.sec.level, 1);
    CHECK(sim_rx_frame(s, 1, &s->txs[0]));
    CHECK_EQ(pl->k2_rejected_unjoined, 0);
    CHECK_EQ(pl->k2_accepted_unjoined, 0);
    free(p);
    next_slot(s, false);
    p = put_real(s, 0, 1, PK_JOIN, 0); /* the pledge's own */
    CHECK_EQ(cj_wpan_frame_decode(s->txs[0].frame, s->txs[0].len, CJ_WPAN_DEC_FCS, &f), CJ_OK);
    CHECK(!f.security);
    free(p);
    sim_del(s);
}

/* RFC 9031 section 5.1: every pledge that joins through a JP has the
 * frame carrying its Join Response verified under the keys it got, and
 * only then counts as joined.  A pledge whose notion of the ASN is off
 * (it synchronised to a replayed EB: asn_skew) cannot verify that frame:
 * it does not join, starts over from the EBs, and joins once its time is
 * right. */
TEST(sim_join_response_frame_verified_asn)
{
    sim_t *s = line3(300);
    if (!s)
        return;
    sim_run(s);
    for (uint32_t i = 1; i < 3; i++)
        CHECK_EQ(s->m[i].state, ST_JOINED);
    CHECK(s->asn_verified >= 2);
    CHECK_EQ(s->asn_rejected, 0);
    sim_del(s);

    s = line3(300);
    if (!s)
        return;
    s->m[2].asn_skew = 101 * 7; /* seven slotframes behind */
    sim_run(s);
    CHECK_EQ(s->m[1].state, ST_JOINED);
    CHECK_EQ(s->m[1].asn_rejected, 0);
    CHECK(s->m[2].state != ST_JOINED);
    CHECK(s->m[2].asn_rejected >= 2); /* it tried again */
    CHECK_EQ(s->m[2].t_joined, SIM_NEVER);
    CHECK_EQ(s->asn_rejected, s->m[2].asn_rejected);
    sim_del(s);
}

/* RFC 9031 section 8.4.2: a pledge on the JRC's blacklist.  The motes'
 * JPs get the blacklist from their own Configurations and drop its
 * frames at the MAC by their extended source address, before the Join
 * Proxy engine sees them; the JRC never admits it. */
TEST(sim_blacklist_pledge_never_admitted_frames_dropped_at_jp)
{
    static const uint32_t bl[] = {3};
    sim_cfg_t c;
    cfg_default(&c, 4, 1); /* line 0 - 1 - 2 - 3: mote 3 hears mote 2 */
    c.eb_period_ms = 1000;
    c.duration_s = 900;
    c.blacklist = bl;
    c.nblacklist = 1;
    sim_t *s = sim_new(&c);
    CHECK(s != NULL);
    if (!s)
        return;
    sim_run(s);
    for (uint32_t i = 0; i < 3; i++) {
        CHECK_EQ(s->m[i].state, ST_JOINED);
        CHECK(s->m[i].jp != NULL);
        if (s->m[i].jp) {
            CHECK_EQ(s->m[i].jp->blacklist_count, 1);
            CHECK(cj_proxy_blacklisted(s->m[i].jp, s->m[3].eui, 8));
            CHECK(!cj_proxy_blacklisted(s->m[i].jp, s->m[1].eui, 8));
            /* the MAC caught it first: the engine never saw it */
            CHECK_EQ(s->m[i].jp->stats.dropped_blacklist, 0);
        }
    }
    CHECK(s->m[3].state != ST_JOINED);
    CHECK_EQ(s->m[3].t_joined, SIM_NEVER);
    CHECK(s->m[3].join_msgs > 0); /* it did try */
    CHECK_EQ(s->jrc->stats.joins, 3);
    CHECK(s->m[2].bl_dropped > 0);
    CHECK_EQ(s->m[0].bl_dropped + s->m[1].bl_dropped + s->m[2].bl_dropped + s->m[3].bl_dropped,
             s->bl_drops);
    CHECK_EQ(s->m[3].bl_dropped, 0); /* not a JP */

    /* one join frame by hand: from mote 3, refused without an ACK and
     * counted; the same frame from mote 1 reaches the Join Proxy */
    const cj_proxy_stats_t *st = &s->m[2].jp->stats;
    unsigned long seen = st->forwarded + st->dropped_malformed;
    uint32_t dropped = s->m[2].bl_dropped;
    next_slot(s, false);
    sim_pkt_t *p = put_plain(s, 0, 3, PK_JOIN, 2, 0);
    CHECK(!sim_rx_frame(s, 2, &s->txs[0]));
    CHECK_EQ(s->m[2].bl_dropped, dropped + 1);
    CHECK_EQ(st->forwarded + st->dropped_malformed, seen);
    free(p);
    p = put_plain(s, 0, 1, PK_JOIN, 2, 0);
    CHECK(sim_rx_frame(s, 2, &s->txs[0]));
    CHECK_EQ(s->m[2].bl_dropped, dropped + 1);
    CHECK(st->forwarded + st->dropped_malformed > seen);
    free(p);
    sim_del(s);

    /* the same network without the blacklist: mote 3 joins */
    c.blacklist = NULL;
    c.nblacklist = 0;
    s = sim_new(&c);
    CHECK(s != NULL);
    if (!s)
        return;
    sim_run(s);
    CHECK_EQ(s->m[3].state, ST_JOINED);
    CHECK_EQ(s->bl_drops, 0);
    sim_del(s);

    /* a blacklist the JRC cannot hold, or naming no mote: refused */
    static const uint32_t bad[] = {4};
    c.blacklist = bad;
    c.nblacklist = 1;
    s = calloc(1, sizeof *s);
    CHECK(s != NULL);
    if (s) {
        CHECK(sim_init(s, &c) != 0);
        sim_free(s);
        free(s);
    }
}

TEST(sim_security_k2_refused_by_unjoined)
{
    sim_cfg_t c;
    cfg_default(&c, 3, 1);
    sim_t *s = sim_new(&c);
    CHECK(s != NULL);
    if (!s)
        return;
    /* the root's DIO is K2 (ENC-MIC-32): a scanning mote holds no K2 */
    next_slot(s, false);
    sim_pkt_t *p = put_real(s, 0, 0, PK_DIO, -1);
    cj_wpan_frame_t f;
    CHECK_EQ(cj_wpan_frame_decode(s->txs[0].frame, s->txs[0].len, CJ_WPAN_DEC_FCS, &f), CJ_OK);
    CHECK(f.security);
    CHECK(f.encrypted);
    CHECK(!sim_rx_frame(s, 1, &s->txs[0]));
    CHECK_EQ(s->m[1].k2_rejected_unjoined, 1);
    CHECK_EQ(s->m[1].k2_accepted_unjoined, 0);
    CHECK_EQ(s->mic_checks, 0); /* refused before any MIC work */
    free(p);
    sim_del(s);
}

TEST(sim_security_k1_eb_verified_and_flipped_mic_refused)
{
    sim_t *s = joined_line();
    if (!s)
        return;
    /* an EB from mote 1 (K1, MIC-32, not encrypted) heard by mote 2,
     * joined: the MIC is verified with K1 */
    next_slot(s, true);
    sim_pkt_t *p = put_real(s, 0, 1, PK_EB, -1);
    cj_wpan_frame_t f;
    CHECK_EQ(cj_wpan_frame_decode(s->txs[0].frame, s->txs[0].len, CJ_WPAN_DEC_FCS, &f), CJ_OK);
    CHECK(f.security);
    CHECK(!f.encrypted);
    uint64_t checks = s->mic_checks, fails = s->mic_fail;
    sim_rx_frame(s, 2, &s->txs[0]);
    CHECK_EQ(s->mic_checks, checks + 1);
    CHECK_EQ(s->mic_fail, fails);
    /* the same EB with one MIC bit flipped (FCS still right): refused */
    flip_mic(&s->txs[0]);
    sim_rx_frame(s, 2, &s->txs[0]);
    CHECK_EQ(s->mic_checks, checks + 2);
    CHECK_EQ(s->mic_fail, fails + 1);
    free(p);

    /* a K2 DIO from mote 1: accepted by joined mote 2, refused once
     * a MIC bit is flipped */
    next_slot(s, true);
    p = put_real(s, 0, 1, PK_DIO, -1);
    CHECK(sim_rx_frame(s, 2, &s->txs[0]));
    flip_mic(&s->txs[0]);
    fails = s->mic_fail;
    CHECK(!sim_rx_frame(s, 2, &s->txs[0]));
    CHECK_EQ(s->mic_fail, fails + 1);
    free(p);
    for (uint32_t i = 0; i < 3; i++)
        CHECK_EQ(s->m[i].k2_accepted_unjoined, 0);
    sim_del(s);
}

/* ---- RFC 9032: what a pledge makes of Join Info IEs ------------------- */

/* *tx = the EB orig (sent by the root in this slot) as mote `as` would
 * send it with the given Join Info priorities: source address, the IE's
 * first word and its PAN priority rewritten, the FCS put back.  A pledge
 * reads EBs without verifying the MIC (it has no K1 yet), so the MIC the
 * rewrite spoils does not matter to it. */
static void eb_as(const sim_t *s, sim_tx_t *tx, const sim_tx_t *orig,
                  uint32_t as, uint8_t proxy, uint16_t rank, uint8_t pan)
{
    const uint8_t *from = s->m[orig->mote].eui, *to = s->m[as].eui;
    size_t mpdu = (size_t)orig->len - SIM_FCS_LEN, hits = 0;
    cj_wpan_frame_t f;
    cj_wpan_ie_iter_t it;
    cj_wpan_ie_t ie;

    *tx = *orig;
    tx->mote = as;
    tx->nverify = 0;
    /* the extended source address is on the air low byte first */
    for (size_t i = 0; i + 8 <= mpdu; i++) {
        size_t k = 0;
        while (k < 8 && tx->frame[i + k] == from[7 - k])
            k++;
        if (k < 8)
            continue;
        for (k = 0; k < 8; k++)
            tx->frame[i + k] = to[7 - k];
        hits++;
    }
    CHECK_EQ(hits, 1);
    CHECK_EQ(cj_wpan_frame_decode(tx->frame, mpdu, 0, &f), CJ_OK);
    cj_wpan_ie_iter_init(&it, f.pie, f.pie_len);
    while (cj_wpan_pie_next(&it, &ie) > 0) {
        if (ie.id != CJ_WPAN_PIE_IETF || ie.len < 5 ||
            ie.content[0] != CJ_WPAN_IETF_JOIN_INFO)
            continue;
        /* Figure 1: R P res(3) proxy(7) rank(12), then PAN priority */
        uint8_t *c = tx->frame + (ie.content - tx->frame);
        c[1] = (uint8_t)((c[1] & 0xf8u) | (proxy >> 4));
        c[2] = (uint8_t)((proxy & 0xfu) << 4 | rank >> 8);
        c[3] = (uint8_t)rank;
        c[4] = pan;
        hits++;
    }
    CHECK_EQ(hits, 2);
    CHECK_EQ(cj_wpan_fcs_append(tx->frame, mpdu, sizeof tx->frame), tx->len);
}

/* RFC 9032 section 2 at a pledge (mote 4, scanning): an announcer with
 * proxy priority 0x7f is never a Join Proxy candidate, and one that
 * switches to 0x7f is dropped from the candidates; the rank priority is
 * ignored; among the rest a lower PAN priority comes first (the MAY the
 * simulator takes), then a lower proxy priority. */
TEST(sim_pledge_join_proxy_choice_rfc9032)
{
    sim_cfg_t c;
    sim_t *s;
    sim_tx_t eb, tx;
    sim_pkt_t *p;
    sim_mote_t *m;
    int32_t first[2] = {-1, -1};

    cfg_default(&c, 5, 1);
    s = sim_new(&c);
    CHECK(s != NULL);
    if (!s)
        return;
    m = &s->m[4];
    CHECK_EQ(m->state, ST_SCAN);
    next_slot(s, true);
    p = put_real(s, 0, 0, PK_EB, -1);
    eb = s->txs[0];

    /* 0x7f: synchronised on it, but no candidate */
    eb_as(s, &tx, &eb, 1, 0x7f, 0, 0);
    sim_rx_frame(s, 4, &tx);
    CHECK_EQ(m->state, ST_COLLECT);
    CHECK_EQ(m->ncand, 0);

    /* equal but for the rank priority: the same order either way round */
    for (int swap = 0; swap < 2; swap++) {
        m->ncand = 0;
        eb_as(s, &tx, &eb, 1, 5, swap ? 0xfff : 0, 0);
        sim_rx_frame(s, 4, &tx);
        eb_as(s, &tx, &eb, 2, 5, swap ? 0 : 0xfff, 0);
        sim_rx_frame(s, 4, &tx);
        CHECK_EQ(m->ncand, 2);
        first[swap] = m->cand[0].idx;
    }
    CHECK_EQ(first[0], first[1]);

    /* PAN priority first, then proxy priority */
    m->ncand = 0;
    eb_as(s, &tx, &eb, 1, 9, 0, 0);
    sim_rx_frame(s, 4, &tx);
    eb_as(s, &tx, &eb, 2, 3, 0, 0);
    sim_rx_frame(s, 4, &tx);
    eb_as(s, &tx, &eb, 3, 0, 0, 1);
    sim_rx_frame(s, 4, &tx);
    CHECK_EQ(m->ncand, 3);
    CHECK_EQ(m->cand[0].idx, 2);
    CHECK_EQ(m->cand[1].idx, 1);
    CHECK_EQ(m->cand[2].idx, 3);

    /* mote 2 now announces 0x7f: it is no candidate any more */
    eb_as(s, &tx, &eb, 2, 0x7f, 0, 0);
    sim_rx_frame(s, 4, &tx);
    CHECK_EQ(m->ncand, 2);
    CHECK_EQ(m->cand[0].idx, 1);
    CHECK_EQ(m->cand[1].idx, 3);
    free(p);
    sim_del(s);
}

/* ---- lower bound of the join time -------------------------------------- */

TEST(sim_bound_formula)
{
    sim_cfg_t c;
    cfg_default(&c, 2, 0);
    /* 16 channels, gcd(101, 16) = 1: 1 - (15/16)^k >= 1/2 first at k = 11 */
    CHECK_EQ(sim_bound_ebs(&c), 11);
    /* 10 x 16 s / 4 + 3 s + (2 x 2 - 1) x 1.01 s */
    double b = sim_bound_s(&c, 2, 4);
    CHECK(b > 46.029 && b < 46.031);
    /* slotframe 32: the minimal cell visits 2 channels, k = 1 */
    c.slotframe = 32;
    CHECK_EQ(sim_bound_ebs(&c), 1);
    c.slotframe = 12; /* gcd 4: 4 channels, 1 - (3/4)^3 >= 1/2 */
    CHECK_EQ(sim_bound_ebs(&c), 3);
}

TEST(sim_bound_below_simulated_medians)
{
    /* the default network: every hop group's median join time is at
     * least its bound */
    sim_cfg_t c;
    cfg_default(&c, 50, 0);
    c.duration_s = 3600;
    for (uint64_t seed = 1; seed <= 2; seed++) {
        c.seed = seed;
        sim_t *s = sim_new(&c);
        CHECK(s != NULL);
        if (!s)
            return;
        sim_run(s);
        sim_hopstat_t hs[32];
        size_t nh = sim_hop_stats(s, hs, 32);
        CHECK(nh >= 3);
        for (size_t k = 0; k < nh; k++) {
            CHECK(hs[k].joined > 0);
            CHECK(hs[k].bound_s > 0);
            if (hs[k].joined)
                CHECK(hs[k].median_s >= hs[k].bound_s);
        }
        sim_del(s);
    }
}
