/*
 * sim_out.c - what `cojp sim` reports: the per-mote timeline, the JSON
 * summary (byte-identical for one seed: only simulated quantities, no
 * wall-clock figures), the SVG plot (join-time CDF and topology map
 * coloured by join time) and a pcap of every frame put on the air.
 */
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"

/* ---- pcap ---------------------------------------------------------------
 * Two formats.  LINKTYPE_IEEE802_15_4_WITHFCS (195), the default: each
 * record is the PSDU as sent, FCS included; any tool reads it, secured
 * frames stay opaque (the CCM* nonce needs the slot's ASN, which this
 * format cannot carry).  LINKTYPE_IEEE802_15_4_TAP (283, --pcap-format
 * tap): a TAP header with three TLVs before the same PSDU: FCS type (1:
 * 16-bit), channel assignment (channel, page 0) and the ASN of the slot,
 * which Wireshark puts in the CCM* nonce of TSCH frames (802.15.4-2015
 * section 9.3.2.2), so K1/K2 frames decrypt with the keys of FILE.keys. */

static void put32(FILE *f, uint32_t v) { fwrite(&v, 4, 1, f); }
static void put16(FILE *f, uint16_t v) { fwrite(&v, 2, 1, f); }
static void put_le(FILE *f, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        fputc((int)(v >> (8 * i) & 0xff), f);
}

int sim_pcap_open(sim_t *s, const char *path)
{
    s->pcap = fopen(path, "wb");
    if (!s->pcap)
        return -1;
    s->pcap_path = strdup(path);
    setvbuf(s->pcap, NULL, _IOFBF, 1 << 20);
    put32(s->pcap, 0xa1b2c3d4); /* microsecond timestamps, host order */
    put16(s->pcap, 2);
    put16(s->pcap, 4);
    put32(s->pcap, 0);
    put32(s->pcap, 0);
    put32(s->pcap, 65535);
    put32(s->pcap, s->pcap_tap ? 283 : 195);
    return 0;
}

#define TAP_HDR_LEN 32u /* 4 + FCS type (8) + channel (8) + ASN (12) */

/* sub 0: the frame at TsTxOffset (2120 us into the slot, RFC 8180 / IEEE
 * 802.15.4 defaults); sub 1: its ACK after TsTxAckDelay. */
void sim_pcap_frame(sim_t *s, uint64_t asn, unsigned sub, uint8_t ch, const uint8_t *fr,
                    size_t len)
{
    FILE *f = s->pcap;
    uint64_t us = asn * SIM_SLOT_MS * 1000 + (sub ? 6000 : 2120);
    uint32_t hdr = s->pcap_tap ? TAP_HDR_LEN : 0;
    put32(f, (uint32_t)(us / 1000000));
    put32(f, (uint32_t)(us % 1000000));
    put32(f, (uint32_t)(len + hdr));
    put32(f, (uint32_t)(len + hdr));
    if (!s->pcap_tap) {
        fwrite(fr, 1, len, f);
        return;
    }
    put_le(f, 0, 1);              /* version */
    put_le(f, 0, 1);              /* reserved */
    put_le(f, TAP_HDR_LEN, 2);
    put_le(f, 0, 2);              /* FCS type */
    put_le(f, 1, 2);
    put_le(f, 1, 4);              /* 16-bit, padded */
    put_le(f, 3, 2);              /* channel assignment */
    put_le(f, 3, 2);
    put_le(f, ch, 2);
    put_le(f, 0, 2);              /* page 0, padded */
    put_le(f, 7, 2);              /* ASN */
    put_le(f, 8, 2);
    put_le(f, asn, 8);
    fwrite(fr, 1, len, f);
}

void sim_key_seen(sim_t *s, uint8_t key_id, const uint8_t key[16])
{
    for (unsigned k = 0; k < s->nkeys_seen; k++)
        if (s->keys_seen[k].key_id == key_id && !memcmp(s->keys_seen[k].key, key, 16))
            return;
    if (s->nkeys_seen == sizeof s->keys_seen / sizeof s->keys_seen[0])
        return;
    s->keys_seen[s->nkeys_seen].key_id = key_id;
    memcpy(s->keys_seen[s->nkeys_seen].key, key, 16);
    s->nkeys_seen++;
}

/* FILE.keys: one Wireshark "ieee802154_keys" UAT record per link-layer
 * key (key, key index, hash), usable as is with
 *   tshark -o 'uat:ieee802154_keys:RECORD' ...
 * or copied to the Wireshark profile's ieee802154_keys file. */
static void write_keys(const sim_t *s)
{
    size_t l = strlen(s->pcap_path);
    char *path = malloc(l + 6);
    memcpy(path, s->pcap_path, l);
    memcpy(path + l, ".keys", 6);
    FILE *f = fopen(path, "w");
    if (f) {
        for (unsigned k = 0; k < s->nkeys_seen; k++) {
            fputc('"', f);
            for (int b = 0; b < 16; b++)
                fprintf(f, "%02x", s->keys_seen[k].key[b]);
            fprintf(f, "\",\"%u\",\"No hash\"\n", s->keys_seen[k].key_id);
        }
        fclose(f);
    }
    free(path);
}

void sim_pcap_close(sim_t *s)
{
    if (s->pcap) {
        fclose(s->pcap);
        write_keys(s);
    }
    free(s->pcap_path);
    s->pcap_path = NULL;
    s->pcap = NULL;
}

/* ---- figures ----------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

size_t sim_join_times(const sim_t *s, uint64_t *out)
{
    size_t k = 0;
    for (uint32_t i = 1; i < s->n; i++)
        if (s->m[i].t_joined != SIM_NEVER)
            out[k++] = s->m[i].t_joined;
    qsort(out, k, sizeof *out, cmp_u64);
    return k;
}

/* Nearest-rank percentile of sorted v[0..n). */
static uint64_t pct(const uint64_t *v, size_t n, unsigned p)
{
    size_t r = (n * p + 99) / 100;
    if (r == 0)
        r = 1;
    return v[r - 1];
}

/* ---- lower bound of the join time (docs/simulator.md) -------------------
 * A pledge h radio hops from the root, with N radio neighbours, cannot
 * do better than this: (1) hear an EB: scanning one channel, it hears an
 * EB only when the minimal cell falls on that channel; even if all N
 * neighbours beacon from the start, every P seconds on average, half of
 * the pledges wait for at least k - 1 of the merged EB gaps of mean P / N
 * (k = the median number of EBs until one is on the pledge's channel:
 * 11 for 16 channels), so the median wait is at least (k - 1) P / N;
 * (2) gather EBs for the configured join wait; (3) carry the exchange
 * over 2h links: the pledge-JP request and response are one frame each
 * and wait on average half a slotframe for their cell, together one
 * slotframe; every relayed datagram between the JP and the root (with
 * the JP's 34-byte token) takes two 6LoWPAN fragments, the second one
 * slotframe after the first, so each of the 2(h - 1) relayed crossings
 * takes at least one slotframe.  Queueing, collisions, losses, backoff
 * and neighbours that are not beaconing yet only add to this. */

static unsigned gcd(unsigned a, unsigned b)
{
    while (b) {
        unsigned t = a % b;
        a = b;
        b = t;
    }
    return a;
}

unsigned sim_bound_ebs(const sim_cfg_t *c)
{
    /* The minimal cell (slot offset 0) of slotframe j is on channel
     * HOP[(j L) mod 16]: it visits 16 / g channels, g = gcd(L, 16), and
     * the +-25 % jitter spreads an EB over many slotframes, so a pledge
     * on one of them hears a given EB with probability g / 16. */
    double miss = 1.0 - (double)gcd(c->slotframe, SIM_NUM_CH) / SIM_NUM_CH, left = miss;
    unsigned k = 1;
    while (left > 0.5) {
        k++;
        left *= miss;
    }
    return k;
}

double sim_bound_s(const sim_cfg_t *c, unsigned hops, unsigned nb)
{
    if (!hops || !nb)
        return 0;
    double period = c->eb_period_ms / 1000.0;
    double sf = c->slotframe * (double)SIM_SLOT_MS / 1000.0;
    return (sim_bound_ebs(c) - 1) * period / nb + c->join_wait_ms / 1000.0 + (2.0 * hops - 1) * sf;
}

size_t sim_hop_stats(const sim_t *s, sim_hopstat_t *out, size_t cap)
{
    uint32_t maxh = 0;
    for (uint32_t i = 1; i < s->n; i++)
        if (s->m[i].hops > maxh)
            maxh = s->m[i].hops;
    uint64_t *t = malloc((s->n + 1) * sizeof *t);
    size_t cnt = 0;
    for (uint32_t h = 1; h <= maxh && cnt < cap; h++) {
        sim_hopstat_t st = {h, 0, 0, 0, -1.0, 0};
        size_t nj = 0;
        for (uint32_t i = 1; i < s->n; i++) {
            const sim_mote_t *m = &s->m[i];
            if (m->hops != h)
                continue;
            st.pledges++;
            if (m->nb_cnt > st.nb_max)
                st.nb_max = m->nb_cnt;
            if (m->t_joined != SIM_NEVER)
                t[nj++] = m->t_joined;
        }
        if (!st.pledges)
            continue;
        st.joined = (uint32_t)nj;
        if (nj) {
            qsort(t, nj, sizeof *t, cmp_u64);
            st.median_s = (double)t[(nj - 1) / 2] / 1000; /* lower median */
        }
        st.bound_s = sim_bound_s(&s->cfg, h, st.nb_max);
        out[cnt++] = st;
    }
    free(t);
    return cnt;
}

double sim_bound_overall_s(const sim_t *s)
{
    /* the median of the pledges' own bounds (their hop count and
     * neighbour count), beside the median join time of the network */
    uint64_t *b = malloc((s->n + 1) * sizeof *b);
    size_t k = 0;
    for (uint32_t i = 1; i < s->n; i++)
        if (s->m[i].hops)
            b[k++] = (uint64_t)(sim_bound_s(&s->cfg, s->m[i].hops, s->m[i].nb_cnt) * 1000 + 0.5);
    double r = 0;
    if (k) {
        qsort(b, k, sizeof *b, cmp_u64);
        r = (double)b[(k - 1) / 2] / 1000;
    }
    free(b);
    return r;
}

static void eui_hex(const uint8_t *e, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++) {
        out[2 * i] = hx[e[i] >> 4];
        out[2 * i + 1] = hx[e[i] & 15];
    }
    out[16] = 0;
}

static void put_time(FILE *f, const char *key, uint64_t t, bool comma)
{
    if (t == SIM_NEVER)
        fprintf(f, "\"%s\":null%s", key, comma ? "," : "");
    else
        fprintf(f, "\"%s\":%.2f%s", key, (double)t / 1000, comma ? "," : "");
}

static const char *topo_name(int t) { return t == 0 ? "grid" : t == 1 ? "line" : "random"; }

static uint8_t key_id_in_use(const sim_mote_t *m, uint8_t cls)
{
    const cj_pledge_key_t *k = m->pl ? cj_pledge_tx_key(m->pl, cls) : NULL;
    return k ? k->key_id : 0;
}

void sim_print_json(const sim_t *s, FILE *f)
{
    uint64_t *jt = malloc((s->n + 1) * sizeof *jt);
    size_t nj = sim_join_times(s, jt);
    uint64_t k2_acc = 0, k2_rej = 0, attempts = 0;
    size_t have_new = 0, switched = 0, updated = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        const sim_mote_t *m = &s->m[i];
        k2_acc += m->k2_accepted_unjoined;
        k2_rej += m->k2_rejected_unjoined;
        attempts += m->join_attempts;
        if (s->rekeyed && m->pl && cj_pledge_rx_key(m->pl, s->new_k2_id))
            have_new++;
        if (s->rekeyed && key_id_in_use(m, CJ_PLEDGE_K2) == s->new_k2_id)
            switched++;
        updated += m->updates > 0;
    }
    fprintf(f, "{\"nodes\":%u,\"topology\":\"%s\",\"seed\":%llu,\"duration_s\":%u,", s->n,
            topo_name(s->cfg.topology), (unsigned long long)s->cfg.seed, s->cfg.duration_s);
    fprintf(f, "\"slotframe\":%u,\"eb_period_s\":%.3f,\"autonomous\":%s,\"pdr_r1\":%.3f,\"pdr_r2\":%.3f,",
            s->cfg.slotframe, (double)s->cfg.eb_period_ms / 1000, s->cfg.autonomous ? "true" : "false",
            s->cfg.r1, s->cfg.r2);
    fprintf(f, "\"links\":%zu,\"joined\":%zu,\"join_time_s\":", s->nb_total / 2, nj);
    if (nj)
        fprintf(f, "{\"min\":%.2f,\"median\":%.2f,\"p90\":%.2f,\"max\":%.2f},", (double)jt[0] / 1000,
                (double)pct(jt, nj, 50) / 1000, (double)pct(jt, nj, 90) / 1000,
                (double)jt[nj - 1] / 1000);
    else
        fprintf(f, "null,");
    fprintf(f, "\"join_attempts\":%llu,", (unsigned long long)attempts);
    {
        sim_hopstat_t hs[64];
        size_t nh = sim_hop_stats(s, hs, 64);
        fprintf(f, "\"bound\":{\"median_ebs\":%u,\"join_wait_s\":%.3f,\"median_s\":%.2f},"
                   "\"per_hop\":[",
                sim_bound_ebs(&s->cfg), (double)s->cfg.join_wait_ms / 1000, sim_bound_overall_s(s));
        for (size_t k = 0; k < nh; k++) {
            fprintf(f, "%s{\"hops\":%u,\"pledges\":%u,\"joined\":%u,\"neighbours_max\":%u,",
                    k ? "," : "", hs[k].hops, hs[k].pledges, hs[k].joined, hs[k].nb_max);
            if (hs[k].joined)
                fprintf(f, "\"median_s\":%.2f,\"bound_s\":%.2f,\"ratio\":%.3f}", hs[k].median_s,
                        hs[k].bound_s, hs[k].median_s / hs[k].bound_s);
            else
                fprintf(f, "\"median_s\":null,\"bound_s\":%.2f,\"ratio\":null}", hs[k].bound_s);
        }
        fprintf(f, "],");
    }
    fprintf(f,
            "\"frames\":{\"total\":%llu,\"bytes\":%llu,\"eb\":%llu,\"dio\":%llu,\"dis\":%llu,"
            "\"dao\":%llu,\"dao_ack\":%llu,\"join\":%llu,\"udp\":%llu,\"ack\":%llu,"
            "\"max_bytes\":%u},",
            (unsigned long long)s->frames, (unsigned long long)s->bytes, (unsigned long long)s->eb_tx,
            (unsigned long long)s->dio_tx, (unsigned long long)s->dis_tx, (unsigned long long)s->dao_tx,
            (unsigned long long)s->dao_ack_tx, (unsigned long long)s->join_tx,
            (unsigned long long)s->udp_tx, (unsigned long long)s->acks, s->max_frame);
    fprintf(f, "\"collisions\":%llu,\"mac_drops\":%llu,\"mac_duplicates\":%llu,"
               "\"queue_drops\":%llu,\"no_route\":%llu,",
            (unsigned long long)s->collisions, (unsigned long long)s->mac_drops,
            (unsigned long long)s->mac_dups, (unsigned long long)s->queue_drops,
            (unsigned long long)s->no_route);
    fprintf(f, "\"lowpan\":{\"fragmented\":%llu,\"fragments\":%llu,\"reassembled\":%llu,"
               "\"reass_timeouts\":%llu,\"reass_no_buffer\":%llu,\"reass_orphans\":%llu,"
               "\"reass_bad\":%llu},",
            (unsigned long long)s->frag_dgrams, (unsigned long long)s->frag_frames,
            (unsigned long long)s->reassembled, (unsigned long long)s->reass_timeouts,
            (unsigned long long)s->reass_nobuf, (unsigned long long)s->reass_orphans,
            (unsigned long long)s->reass_bad);
    fprintf(f, "\"rpl\":{\"dao\":%llu,\"dao_retx\":%llu,\"dao_acked\":%llu,\"no_path\":%llu,"
               "\"routes_removed\":%llu},",
            (unsigned long long)s->dao_sent, (unsigned long long)s->dao_retx,
            (unsigned long long)s->dao_acked, (unsigned long long)s->nopath_sent,
            (unsigned long long)s->routes_removed);
    fprintf(f, "\"mic\":{\"checks\":%llu,\"shared\":%llu,\"failed\":%llu},",
            (unsigned long long)s->mic_checks, (unsigned long long)s->mic_shared,
            (unsigned long long)s->mic_fail);
    fprintf(f, "\"k2_accepted_unjoined\":%llu,\"k2_rejected_unjoined\":%llu,",
            (unsigned long long)k2_acc, (unsigned long long)k2_rej);
    fprintf(f, "\"join_frames\":{\"verified\":%llu,\"refused\":%llu},",
            (unsigned long long)s->asn_verified, (unsigned long long)s->asn_rejected);
    fprintf(f, "\"jrc\":{\"joins\":%lu,\"repeats\":%lu,\"dropped\":%lu,\"updates_sent\":%lu},",
            s->jrc->stats.joins, s->jrc->stats.repeats, s->jrc->stats.dropped,
            s->jrc->stats.updates_sent);
    cj_proxy_stats_t ps;
    memset(&ps, 0, sizeof ps);
    for (uint32_t i = 0; i < s->n; i++)
        if (s->m[i].jp) {
            const cj_proxy_stats_t *q = &s->m[i].jp->stats;
            ps.forwarded += q->forwarded;
            ps.relayed += q->relayed;
            ps.dropped_malformed += q->dropped_malformed;
            ps.dropped_rate += q->dropped_rate;
            ps.dropped_blacklist += q->dropped_blacklist;
            ps.dropped_token += q->dropped_token + q->dropped_source;
            ps.dropped_stale += q->dropped_stale;
            ps.dropped_replay += q->dropped_replay;
        }
    fprintf(f,
            "\"jp\":{\"forwarded\":%lu,\"relayed\":%lu,\"dropped_malformed\":%lu,"
            "\"dropped_rate\":%lu,\"dropped_token\":%lu,\"dropped_stale\":%lu,\"dropped_replay\":%lu,"
            "\"dropped_blacklist\":%lu,\"dropped_blacklist_frames\":%llu},",
            ps.forwarded, ps.relayed, ps.dropped_malformed, ps.dropped_rate, ps.dropped_token,
            ps.dropped_stale, ps.dropped_replay, ps.dropped_blacklist,
            (unsigned long long)s->bl_drops);
    if (s->rekeyed)
        fprintf(f,
                "\"rekey\":{\"at_s\":%.2f,\"campaign\":%d,\"done\":%s,\"acked\":%u,\"failed\":%u,"
                "\"motes_updated\":%zu,\"motes_with_new_k2\":%zu,\"motes_sending_new_k2\":%zu,"
                "\"motes_joined\":%zu},",
                (double)s->cfg.rekey_at_ms / 1000, s->rekey_campaign,
                s->campaign_done ? "true" : "false", s->upd_acked, s->upd_failed, updated, have_new,
                switched, nj + 1);
    fprintf(f, "\"motes\":[");
    for (uint32_t i = 0; i < s->n; i++) {
        const sim_mote_t *m = &s->m[i];
        char id[17];
        eui_hex(m->eui, id);
        fprintf(f, "%s{\"id\":\"%s\",\"x\":%.2f,\"y\":%.2f,\"hops\":%u,\"neighbours\":%u,",
                i ? "," : "", id, (double)m->x, (double)m->y, m->hops, m->nb_cnt);
        put_time(f, "first_eb_s", m->t_first_eb, true);
        put_time(f, "sync_s", m->t_sync, true);
        put_time(f, "join_req_s", m->t_join_req, true);
        put_time(f, "joined_s", m->t_joined, true);
        put_time(f, "parent_s", m->t_parent, true);
        fprintf(f,
                "\"parent\":%d,\"rank\":%u,\"attempts\":%u,\"join_msgs\":%u,\"frames\":%u,\"bytes\":%u,"
                "\"acks\":%u,\"rx\":%u,\"mac_retx\":%u,\"mac_drops\":%u,\"queue_drops\":%u,\"dao\":%u,"
                "\"collisions\":%u,\"updates\":%u,\"k1\":%u,\"k2\":%u}",
                m->parent, m->rank, m->join_attempts, m->join_msgs, m->tx_frames, m->tx_bytes,
                m->tx_acks, m->rx_frames, m->mac_retx, m->mac_drops, m->queue_drops, m->dao_sent, m->collisions,
                m->updates, key_id_in_use(m, CJ_PLEDGE_K1), key_id_in_use(m, CJ_PLEDGE_K2));
    }
    fprintf(f, "]}\n");
    free(jt);
}

void sim_print_summary(const sim_t *s, FILE *f)
{
    uint64_t *jt = malloc((s->n + 1) * sizeof *jt);
    size_t nj = sim_join_times(s, jt);
    const sim_cfg_t *c = &s->cfg;
    fprintf(f, "cojp sim: %u motes (%s), %u s simulated, seed %llu\n", s->n, topo_name(c->topology),
            c->duration_s, (unsigned long long)c->seed);
    fprintf(f, "  schedule: slotframe %u x %u ms, minimal cell%s; EB period %.1f s (+-25 %%)\n",
            c->slotframe, SIM_SLOT_MS, c->autonomous ? " + RFC 9033 autonomous cells" : " only",
            (double)c->eb_period_ms / 1000);
    fprintf(f, "  joined %zu of %u pledges\n", nj, s->n - 1);
    if (nj) {
        double bnd = sim_bound_overall_s(s);
        fprintf(f, "  join time: min %.1f s, median %.1f s, p90 %.1f s, max %.1f s\n",
                (double)jt[0] / 1000, (double)pct(jt, nj, 50) / 1000,
                (double)pct(jt, nj, 90) / 1000, (double)jt[nj - 1] / 1000);
        if (bnd > 0)
            fprintf(f, "  median against the lower bound: %.1f s / %.1f s = %.2f\n",
                    (double)pct(jt, nj, 50) / 1000, bnd, (double)pct(jt, nj, 50) / 1000 / bnd);
    }
    fprintf(f, "  frames %llu (%llu bytes): EB %llu, DIO %llu, DIS %llu, DAO %llu, DAO-ACK %llu, "
               "join %llu, CoAP %llu, ACK %llu\n",
            (unsigned long long)s->frames, (unsigned long long)s->bytes,
            (unsigned long long)s->eb_tx, (unsigned long long)s->dio_tx,
            (unsigned long long)s->dis_tx, (unsigned long long)s->dao_tx,
            (unsigned long long)s->dao_ack_tx, (unsigned long long)s->join_tx,
            (unsigned long long)s->udp_tx, (unsigned long long)s->acks);
    fprintf(f, "  collisions %llu (receiver-slots), MAC retransmission drops %llu, queue drops %llu\n",
            (unsigned long long)s->collisions, (unsigned long long)s->mac_drops,
            (unsigned long long)s->queue_drops);
    fprintf(f, "  Join Response frames verified once keyed (ASN valid, RFC 9031 5.1) %llu, refused %llu\n",
            (unsigned long long)s->asn_verified, (unsigned long long)s->asn_rejected);
    sim_hopstat_t hs[64];
    size_t nh = sim_hop_stats(s, hs, 64);
    if (nh) {
        fprintf(f, "  join time per hop count, against the lower bound (docs/simulator.md):\n");
        fprintf(f, "    %4s %7s %6s %8s %9s %8s %6s\n", "hops", "pledges", "joined", "max nbrs",
                "median s", "bound s", "ratio");
        for (size_t k = 0; k < nh; k++) {
            fprintf(f, "    %4u %7u %6u %8u ", hs[k].hops, hs[k].pledges, hs[k].joined, hs[k].nb_max);
            if (hs[k].joined)
                fprintf(f, "%9.1f %8.1f %6.2f\n", hs[k].median_s, hs[k].bound_s,
                        hs[k].median_s / hs[k].bound_s);
            else
                fprintf(f, "%9s %8.1f %6s\n", "-", hs[k].bound_s, "-");
        }
        fprintf(f, "    bound = (%u - 1) x EB period / neighbours + join wait %.0f s + (2 x hops - 1) "
                   "slotframes\n",
                sim_bound_ebs(c), (double)c->join_wait_ms / 1000);
    }
    if (s->rekeyed)
        fprintf(f, "  rekey at %.0f s: campaign %d %s, %u acknowledged, %u not reached\n",
                (double)c->rekey_at_ms / 1000, s->rekey_campaign,
                s->campaign_done ? "done" : "still running", s->upd_acked, s->upd_failed);
    free(jt);
}

void sim_print_timeline(const sim_t *s, FILE *f)
{
    fprintf(f, "%-5s %-16s %8s %8s %8s %8s %8s %6s %4s %4s %6s %6s\n", "mote", "eui-64",
            "first-EB", "sync", "join-req", "joined", "parent", "rank", "att", "retx", "frames",
            "macRtx");
    for (uint32_t i = 0; i < s->n; i++) {
        const sim_mote_t *m = &s->m[i];
        char id[17], t[5][16];
        uint64_t tv[5] = {m->t_first_eb, m->t_sync, m->t_join_req, m->t_joined, m->t_parent};
        eui_hex(m->eui, id);
        for (int k = 0; k < 5; k++) {
            if (tv[k] == SIM_NEVER)
                strcpy(t[k], "-");
            else
                snprintf(t[k], sizeof t[k], "%.2f", (double)tv[k] / 1000);
        }
        unsigned retx = m->join_msgs > m->join_attempts ? m->join_msgs - m->join_attempts : 0;
        fprintf(f, "%-5u %-16s %8s %8s %8s %8s %8s %6u %4u %4u %6u %6u%s\n", i, id, t[0], t[1], t[2],
                t[3], t[4], m->rank == SIM_INFINITE_RANK ? 0 : m->rank, m->join_attempts, retx,
                m->tx_frames, m->mac_retx, m->is_root ? "  (root, JRC)" : "");
    }
}

/* ---- SVG ---------------------------------------------------------------- */

/* A perceptually ordered ramp (dark blue, teal, green, yellow) for join
 * time; red for motes that never joined. */
static void ramp(double v, char *out)
{
    static const double st[5][3] = {
        {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    if (v < 0)
        v = 0;
    if (v > 1)
        v = 1;
    double x = v * 4;
    int k = (int)x;
    if (k > 3)
        k = 3;
    double t = x - k;
    int c[3];
    for (int j = 0; j < 3; j++)
        c[j] = (int)(st[k][j] + (st[k + 1][j] - st[k][j]) * t + 0.5);
    sprintf(out, "#%02x%02x%02x", c[0], c[1], c[2]);
}

int sim_write_svg(const sim_t *s, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    uint64_t *jt = malloc((s->n + 1) * sizeof *jt);
    size_t nj = sim_join_times(s, jt);
    const double W = 1100, H = 560;
    double tmax = nj ? (double)jt[nj - 1] / 1000 : 1;
    if (tmax <= 0)
        tmax = 1;
    /* round the axis up to a readable value */
    static const double nice[] = {1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600,
                                  7200, 14400, 28800, 86400};
    double axis = nice[sizeof nice / sizeof nice[0] - 1];
    for (size_t k = 0; k < sizeof nice / sizeof nice[0]; k++)
        if (nice[k] >= tmax) {
            axis = nice[k];
            break;
        }
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n",
            W, H, W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%.0f\" y=\"28\" font-size=\"20\" text-anchor=\"middle\">cojp sim: %u motes, "
               "%s, seed %llu: %zu of %u joined in %u s</text>\n",
            W / 2, s->n, topo_name(s->cfg.topology), (unsigned long long)s->cfg.seed, nj, s->n - 1,
            s->cfg.duration_s);

    /* left: CDF */
    const double x0 = 70, y0 = 480, pw = 400, ph = 400;
    fprintf(f, "<text x=\"%.0f\" y=\"64\" font-size=\"16\" text-anchor=\"middle\">Join time CDF</text>\n",
            x0 + pw / 2);
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#333\"/>\n",
            x0, y0 - ph, pw, ph);
    for (int k = 0; k <= 5; k++) {
        double gx = x0 + pw * k / 5, gy = y0 - ph * k / 5;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#ddd\"/>\n", gx,
                y0, gx, y0 - ph);
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x0,
                gy, x0 + pw, gy);
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"13\" text-anchor=\"middle\">%g</text>\n",
                gx, y0 + 18, axis * k / 5);
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"end\">%d%%</text>\n",
                x0 - 6, gy + 4, k * 20);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"14\" text-anchor=\"middle\">seconds since "
               "start</text>\n",
            x0 + pw / 2, y0 + 40);
    fprintf(f, "<text x=\"20\" y=\"%.0f\" font-size=\"14\" text-anchor=\"middle\" "
               "transform=\"rotate(-90 20 %.0f)\">pledges joined</text>\n",
            y0 - ph / 2, y0 - ph / 2);
    if (nj) {
        double total = s->n > 1 ? s->n - 1 : 1;
        fprintf(f, "<polyline fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"2.5\" points=\"%.1f,%.1f",
                x0, y0);
        for (size_t k = 0; k < nj; k++) {
            double x = x0 + pw * ((double)jt[k] / 1000) / axis;
            fprintf(f, " %.1f,%.1f %.1f,%.1f", x, y0 - ph * (double)k / total, x,
                    y0 - ph * (double)(k + 1) / total);
        }
        fprintf(f, " %.1f,%.1f\"/>\n", x0 + pw * (double)s->cfg.duration_s / axis > x0 + pw
                                            ? x0 + pw
                                            : x0 + pw * (double)s->cfg.duration_s / axis,
                y0 - ph * (double)nj / total);
        double med = (double)pct(jt, nj, 50) / 1000, p90 = (double)pct(jt, nj, 90) / 1000;
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"13\">median %.1f s, p90 %.1f s, max "
                   "%.1f s</text>\n",
                x0 + 10, y0 - ph + 20, med, p90, (double)jt[nj - 1] / 1000);
        /* per hop count: simulated median beside the lower bound */
        sim_hopstat_t hs[8];
        size_t nh = sim_hop_stats(s, hs, 8);
        if (nh)
            fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" fill=\"#444\">hops: median / "
                       "lower bound</text>\n",
                    x0 + 10, y0 - ph + 40);
        for (size_t k = 0; k < nh; k++)
            if (hs[k].joined)
                fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" fill=\"#444\">%u: %.0f s / "
                           "%.0f s</text>\n",
                        x0 + 10, y0 - ph + 56 + 15 * (double)k, hs[k].hops, hs[k].median_s,
                        hs[k].bound_s);
    }

    /* right: map */
    const double mx0 = 560, my0 = 80, mw = 400, mh = 400;
    float minx = s->m[0].x, maxx = minx, miny = s->m[0].y, maxy = miny;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->m[i].x < minx) minx = s->m[i].x;
        if (s->m[i].x > maxx) maxx = s->m[i].x;
        if (s->m[i].y < miny) miny = s->m[i].y;
        if (s->m[i].y > maxy) maxy = s->m[i].y;
    }
    double span = maxx - minx > maxy - miny ? maxx - minx : maxy - miny;
    if (span <= 0)
        span = 1;
    double sc = mw / span;
    double oy = my0 + (mh - (maxy - miny) * sc) / 2;
#define PX(i) (mx0 + (s->m[i].x - minx) * sc)
#define PY(i) (oy + (s->m[i].y - miny) * sc)
    fprintf(f, "<text x=\"%.0f\" y=\"64\" font-size=\"16\" text-anchor=\"middle\">Topology "
               "(lines: RPL parent), colour: join time</text>\n",
            mx0 + mw / 2);
    double r = 200.0 / (s->n > 1 ? __builtin_sqrt((double)s->n) : 1);
    if (r > 9)
        r = 9;
    if (r < 1.2)
        r = 1.2;
    fprintf(f, "<g stroke=\"#999\" stroke-width=\"%.2f\">\n", r > 4 ? 1.5 : 0.6);
    for (uint32_t i = 1; i < s->n; i++)
        if (s->m[i].parent >= 0)
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PX(i), PY(i),
                    PX(s->m[i].parent), PY(s->m[i].parent));
    fprintf(f, "</g>\n");
    for (uint32_t i = 1; i < s->n; i++) {
        char col[8];
        if (s->m[i].t_joined == SIM_NEVER)
            strcpy(col, "#e02020");
        else
            ramp((double)s->m[i].t_joined / 1000 / axis, col);
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" stroke=\"#222\" "
                   "stroke-width=\"%.1f\"/>\n",
                PX(i), PY(i), r, col, r > 4 ? 0.8 : 0.0);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"black\"/>\n",
            PX(0) - r * 1.4, PY(0) - r * 1.4, r * 2.8, r * 2.8);
#undef PX
#undef PY
    /* colour bar */
    const double cbx = mx0, cby = 505, cbw = 300, cbh = 14;
    for (int k = 0; k < 60; k++) {
        char col[8];
        ramp(k / 59.0, col);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\" fill=\"%s\"/>\n",
                cbx + cbw * k / 60, cby, cbw / 60 + 0.5, cbh, col);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">0 s</text>\n", cbx, cby + 30);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" text-anchor=\"end\">%g s</text>\n",
            cbx + cbw, cby + 30, axis);
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"12\" fill=\"black\"/>"
               "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">root (6LBR + JRC)</text>\n",
            cbx + cbw + 20, cby + 1, cbx + cbw + 36, cby + 12);
    fprintf(f, "<circle cx=\"%.0f\" cy=\"%.0f\" r=\"6\" fill=\"#e02020\"/>"
               "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">not joined</text>\n",
            cbx + cbw + 26, cby + 28, cbx + cbw + 36, cby + 32);
    fprintf(f, "</svg>\n");
    free(jt);
    return fclose(f) == 0 ? 0 : -1;
}
